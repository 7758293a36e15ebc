"""INT8 on CPU for the embedded SmolLM2-135M: speed, perplexity, size and build time of each variant.

Variants (all but the first run in ONNX Runtime, exported by Optimum):

* PyTorch float32 (the baseline) and ONNX Runtime float32;
* dynamic INT8 with Optimum's default operator list (which also rounds the
  embedding table, shared with the output layer), of every MatMul, and of the
  linear projections only;
* static INT8 of the linear projections, calibrated (min/max) on ``CALIBRATION_TEXTS``;
* a sensitivity sweep: dynamic INT8 of one MatMul group at a time (perplexity only);
* weight-only ``MatMulNBits`` (8 and 4 bits, block 32), with the kernel's default
  float compute and with ``accuracy_level=4`` (int8 compute), and with the
  output layer quantized too;
* 4-bit on the file's own grid (``four_bit_on_source_grid``): ``MatMulNBits`` holding the Q4_1
  codes, steps and minimums exactly (float zero points), so no second rounding;
* a diagnostic row: the recommended 8-bit model decoded by ``BareGreedyLoop`` (the
  ONNX Runtime session called in a plain numpy loop), so the gap to the same model
  under transformers' ``generate`` is that loop's cost per token. It is never the
  recommendation (the course teaches ``generate``).

The embedded model was converted from a Q4_1 GGUF file and dequantized to
float32: each block of 32 projection weights holds 16 evenly spaced values. So
8-bit weight-only rows measure a second, much finer rounding of 4-bit weights
(nearly free), and 4-bit rows a second rounding on a grid that ONNX Runtime
shifts by a fraction of a step (integer zero point): about +25% perplexity.
On the hub's bfloat16 weights neither would hold.

Method: torch and ONNX Runtime pinned to 2 threads; greedy decoding of
``helpers.REFERENCE_PROMPT`` at batch 1, ``max_new_tokens == min_new_tokens == 32``.
Every timed model is loaded first, then timed round-robin (one warm-up each,
then 5 rounds in which each model runs once), so that a burst of load from
other processes hits all variants alike, with ``PAUSE_S`` of idle time before
every timed run so that the threads of the arm before have stopped spinning.
ONNX Runtime's workers spin while they wait (its default; ``--no-spinning``
parks them, which cost about 4 ms per step here), and an ONNX Runtime model's
``generate`` runs torch on one thread (``helpers.quantization.load_ort``): with
two, torch's pool fights ONNX Runtime's for the two cores. Decode tokens/s = 31 / (median time
of 32 new tokens - median time of 1 new token); the 1-token run is the
prefill. Perplexity: all of ``helpers.EVAL_TEXTS``, batches of 4, right
padding, padding excluded, token-weighted. Ratios are against PyTorch float32
measured in the same run.

    .venv/bin/python benchmarks/quantization_study.py [--rebuild] [--no-spinning] [--no-llama-cpp]
    .venv/bin/python benchmarks/quantization_study.py --only weight_only_8bit_acc4_head   # + the baseline

Reference row, ``llama.cpp Q4_1 (reference)``: llama.cpp (llama-cpp-python, built from source
by ``bash benchmarks/build_llama_cpp.sh`` into its own venv, ``benchmarks/.llama-cpp-venv/``)
decoding the very GGUF file the embedded model was converted from, with the same prompt, new
tokens, threads and method, its rounds interleaved with the round-robin rounds (see
``benchmarks/llama_cpp_reference.py``). Skipped, with a message, where it is not built, or
with ``--no-llama-cpp``. ``pct_of_llama_cpp`` is each row's decode speed as a share of it.
Its perplexity is measured on the same token ids (``LlamaCppRunner.perplexity``).

Row ``ONNX Runtime GenAI``: the recommended 8-bit scheme built by ONNX Runtime GenAI's model
builder (fused graph, C++ decode loop), installed by ``bash benchmarks/build_ort_genai.sh`` into
``benchmarks/.ort-genai-venv/`` and run in a child process like llama.cpp
(``benchmarks/ort_genai_reference.py``); skipped with a message where it is not installed, or with
``--no-ort-genai``. It, the bare loop and llama.cpp are never the recommendation, which stays
among the variants the notebook runs; a second line names the fastest row within 3% of all.

Then, for every timed row, what stops it (``verdicts``: perplexity change above 3%, decode below
80% of llama.cpp, with its share of the bandwidth bound), and the plot ``frontier.png`` (decode
tokens/s against perplexity change, llama.cpp on it, the rows no other row beats on both joined).

Bandwidth bound: ``helpers.measure_memory_bandwidth(threads=2)`` just before the timing, and
the bytes one decode step reads, counted as the course's ``decode_bytes_per_token`` (exercise 1,
Part B7) does: PyTorch, every parameter once (tied weights once; an untied input embedding one
row); ONNX, every initializer as stored (4-bit types half a byte; an initializer read only as
the data input of ``Gather`` is a lookup, one row); the GGUF, every tensor's stored bytes
(``gguf.GGUFReader``; the token embedding is tied to the output layer, so read in full); plus
the KV cache at the prompt's length + half the new tokens (float32 for PyTorch and ONNX
Runtime, float16 for llama.cpp). ``bound_ms_per_token`` = bytes / bandwidth;
``pct_of_bound`` = bound / measured ms per decoded token (100% = at the memory limit).

    .venv/bin/python benchmarks/quantization_study.py --only weight_only_4bit --no-llama-cpp

Built models are kept under ``artifacts/quantization_study/`` and reused by
later runs (their build time is the one recorded when they were built);
``--rebuild`` builds everything again. Expect 15 to 25 minutes with builds,
and peaks of about 5 GB of memory during the export.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script: make `benchmarks` and `helpers` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, row  # noqa: E402
from helpers.paths import REPO_ROOT  # noqa: E402

NAME = "quantization_study"
THREADS = 2
NEW_TOKENS = 32
ROUNDS = 5
# Idle time before each timed run: the threads of the arm that ran before (torch's OpenMP pool, ONNX
# Runtime's spinning workers, llama.cpp's) go on spinning for a while after their work and would take
# cores from the next arm. Measured here: without the pause llama.cpp decoded at 115.9 tok/s, with it 138.9.
PAUSE_S = 0.2
EVAL_BATCH = 4
PPL_TOLERANCE = 0.03      # "within 3% of float32 perplexity"
TARGET_SPEEDUP = 2.0      # decode tokens/s vs PyTorch float32
TARGET_SHARE_OF_LLAMA_CPP = 0.8   # decode tokens/s vs llama.cpp on the same weights
WORK_DIR = REPO_ROOT / "artifacts" / NAME
BUILD_INFO = "study_build.json"


@dataclass
class Variant:
    name: str
    label: str
    build: Callable[[Path, Path], Path] | None   # (fp32 export dir, target dir) -> folder; None for PyTorch
    file_name: str = "model.onnx"
    timed: bool = True
    session: dict = field(default_factory=dict)   # extra load_ort keyword arguments
    same_model_as: str | None = None   # reuse that variant's built model and perplexity (same file_name, session)
    bare_loop: bool = False            # time with BareGreedyLoop instead of transformers' generate


def variants(q) -> list[Variant]:
    """Every variant of the study, in table order; ``q`` is helpers.quantization."""
    from benchmarks import int8_reference as int8

    calibration = {}

    def static(fp32, target):
        calibration["ds"] = q.calibration_dataset(str(_embedded()), fp32, list(q.CALIBRATION_TEXTS))
        return int8.quantize_static(fp32, target, calibration.pop("ds"), groups=q.PROJECTION_GROUPS)

    out = [
        Variant("pytorch_fp32", "PyTorch float32 (baseline)", None),
        Variant("ort_fp32", "ONNX Runtime float32", None),
        Variant("dynamic_optimum_default", "dynamic INT8, Optimum's default operators (MatMul + embedding Gather)",
                lambda src, dst: int8.quantize_dynamic(src, dst, operators_to_quantize=None), q.QUANTIZED_FILE),
        Variant("dynamic_all", "dynamic INT8, every MatMul",
                lambda src, dst: int8.quantize_dynamic(src, dst), q.QUANTIZED_FILE),
        Variant("dynamic_proj", "dynamic INT8, linear projections only",
                lambda src, dst: int8.quantize_dynamic(src, dst, groups=q.PROJECTION_GROUPS), q.QUANTIZED_FILE),
        Variant("static_proj", "static INT8 (min/max calibration), linear projections only",
                static, q.QUANTIZED_FILE),
    ]
    for group in q.PROJECTION_GROUPS + ("lm_head",):
        out.append(Variant(f"sensitivity_{group}", f"sensitivity: dynamic INT8 of {group} only",
                           lambda src, dst, g=group: int8.quantize_dynamic(src, dst, groups=[g]),
                           q.QUANTIZED_FILE, timed=False))
    out += [
        Variant("weight_only_8bit", "weight-only 8-bit, block 32 (default compute)",
                lambda src, dst: q.weight_only_int8(src, dst, bits=8, block_size=32)),
        Variant("weight_only_8bit_acc4", "weight-only 8-bit, block 32, accuracy_level=4 (int8 compute)",
                lambda src, dst: q.weight_only_int8(src, dst, bits=8, block_size=32, accuracy_level=4)),
        Variant("weight_only_8bit_acc4_head", "weight-only 8-bit, block 32, accuracy_level=4, lm_head too",
                lambda src, dst: q.weight_only_int8(src, dst, bits=8, block_size=32, accuracy_level=4,
                                                    quantize_lm_head=True)),
        Variant("weight_only_8bit_acc4_head_bare", "weight-only 8-bit, acc4, lm_head too: bare ONNX Runtime "
                "loop (no transformers generate)", None, same_model_as="weight_only_8bit_acc4_head", bare_loop=True),
        Variant("weight_only_4bit", "weight-only 4-bit, block 32 (default compute)",
                lambda src, dst: q.weight_only_int8(src, dst, bits=4, block_size=32)),
        Variant("weight_only_4bit_acc4", "weight-only 4-bit, block 32, accuracy_level=4 (int8 compute)",
                lambda src, dst: q.weight_only_int8(src, dst, bits=4, block_size=32, accuracy_level=4)),
        Variant("weight_only_4bit_acc4_head", "weight-only 4-bit, block 32, accuracy_level=4, lm_head too",
                lambda src, dst: q.weight_only_int8(src, dst, bits=4, block_size=32, accuracy_level=4,
                                                    quantize_lm_head=True)),
        Variant("weight_only_4bit_source_grid", "weight-only 4-bit on the file's own Q4_1 grid (float zero points)",
                lambda src, dst: four_bit_on_source_grid(q, src, dst)),
    ]
    return out


class BareGreedyLoop:
    """Greedy decoding straight on an ORT model's InferenceSession: numpy in and out, argmax, the
    KV cache handed from one step's outputs to the next step's inputs. What transformers' generate
    adds per step (logits processors, stopping criteria, cache objects, torch/numpy copies) is left
    out, so the difference to the same model under generate is that loop's cost per token.
    Batch 1 only; ``generate`` takes and returns what transformers' does for that case."""

    def __init__(self, ort_model):
        import numpy as np

        self.session = ort_model.model
        config = ort_model.config
        heads = config.num_attention_heads
        self.kv_shape = (1, getattr(config, "num_key_value_heads", None) or heads, 0,
                         getattr(config, "head_dim", None) or config.hidden_size // heads)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.past_names = sorted(n for n in self.inputs if n.startswith("past_key_values."))
        self.np = np

    def generate(self, input_ids, attention_mask=None, max_new_tokens=1, **ignored):
        import torch

        np = self.np
        if input_ids.shape[0] != 1:
            raise ValueError(f"BareGreedyLoop decodes batch 1 only, got {input_ids.shape[0]} rows")
        tokens = input_ids[0].tolist()
        step_ids = input_ids.numpy().astype(np.int64)
        past = {name: np.zeros(self.kv_shape, np.float32) for name in self.past_names}
        for _ in range(int(max_new_tokens)):
            feed = {"input_ids": step_ids, "attention_mask": np.ones((1, len(tokens)), np.int64), **past}
            if "position_ids" in self.inputs:
                feed["position_ids"] = np.arange(len(tokens) - step_ids.shape[1], len(tokens), dtype=np.int64)[None]
            logits, *presents = self.session.run(self.outputs, feed)
            past = {name.replace("present.", "past_key_values."): value
                    for name, value in zip(self.outputs[1:], presents)}
            tokens.append(int(logits[0, -1].argmax()))
            step_ids = np.array([[tokens[-1]]], np.int64)
        return torch.tensor([tokens])


def four_bit_on_source_grid(q, fp32_dir: Path, target: Path) -> Path:
    """4-bit weight-only that stores the Q4_1 weights exactly: ``MatMulNBits`` (4 bits, block 32,
    accuracy_level=4) with each block's own step as its scale and a **float** zero point.

    The dequantized Q4_1 block is ``minimum + step * code`` with codes 0..15, so ``step = (max - min) / 15``
    and ``code = (w - min) / step`` are recovered exactly from the float32 weights, and
    ``(code - zero_point) * step`` with ``zero_point = -min / step`` gives them back. ONNX Runtime's
    quantizer cannot: its zero point is a whole number, which shifts the grid (see the module docstring).
    Raises if a block is not on a 16-level grid (weights that did not come from Q4_1)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    staged = q.weight_only_int8(fp32_dir, target, bits=4, block_size=32, accuracy_level=4)
    model = onnx.load(str(staged / q.ONNX_FILE))
    originals = {t.name: t for t in onnx.load(str(Path(fp32_dir) / q.ONNX_FILE)).graph.initializer}
    position = {t.name: i for i, t in enumerate(model.graph.initializer)}

    def put(name, array):
        model.graph.initializer[position[name]].CopyFrom(numpy_helper.from_array(array, name))

    for node in model.graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
        weight = numpy_helper.to_array(originals[node.input[1].removesuffix("_Q4")]).astype(np.float32)  # [K, N]
        blocks_per_column = -(-k // block)
        padded = np.zeros((n, blocks_per_column * block), np.float32)
        padded[:, :k] = weight.T
        blocks = padded.reshape(n, blocks_per_column, block)
        low, high = blocks.min(axis=2), blocks.max(axis=2)
        step = np.where(high > low, (high - low) / 15, 1).astype(np.float32)
        codes = np.rint((blocks - low[..., None]) / step[..., None])
        if np.abs(codes * step[..., None] + low[..., None] - blocks).max() > 1e-6 * np.abs(blocks).max():
            raise ValueError(f"{node.name}: the weights are not on a 16-level grid per block of {block}")
        codes = codes.astype(np.uint8)
        put(node.input[1], codes[..., 0::2] | (codes[..., 1::2] << 4))   # two codes per byte, low nibble first
        put(node.input[2], step)
        put(node.input[3], (-low / step).astype(np.float32))
    onnx.save(model, str(staged / q.ONNX_FILE))
    return staged


def _embedded() -> Path:
    import helpers

    if not (Path(helpers.EMBEDDED_DIR) / "model.safetensors").is_file():
        raise FileNotFoundError(f"embedded model missing at {helpers.EMBEDDED_DIR}: run `make setup` first")
    return Path(helpers.EMBEDDED_DIR)


# --------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------

def perplexity(model, tokenizer, texts, batch_size: int = EVAL_BATCH) -> tuple[float, int]:
    """Token-weighted perplexity over ``texts``: right padding, padded positions excluded.

    Works for a PyTorch model and for an ORTModelForCausalLM alike (both take
    ``input_ids`` + ``attention_mask`` and return ``.logits``). Returns
    ``(perplexity, predicted tokens)``.
    """
    import torch
    import torch.nn.functional as F

    tokenizer.padding_side = "right"  # positions of real tokens then start at 0 in every row
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True)
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["input_ids"][:, 1:]
        keep = batch["attention_mask"][:, 1:].bool()
        nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")
        total_nll += float(nll[keep].double().sum())
        total_tokens += int(keep.sum())
    return math.exp(total_nll / total_tokens), total_tokens


def time_round_robin(models: dict, tokenizer, prompt: str, rounds: int = ROUNDS, references=None) -> dict:
    """Per model: raw times of ``NEW_TOKENS`` and of 1 new token, measured round-robin.

    ``references``: started child runners by name (``llama_cpp_reference.LlamaCppRunner``,
    ``ort_genai_reference.OrtGenaiRunner``), warmed up with the others and run once per round
    after them; their times stay in the runners. One whose child fails is dropped (its ``error``
    set), and the study goes on without it.
    """
    import torch

    encoded = tokenizer(prompt, return_tensors="pt")

    def generate(model, new_tokens):
        with torch.inference_mode():
            out = model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert out.shape[1] == encoded["input_ids"].shape[1] + new_tokens, "generate stopped early"

    times = {name: {"full_s": [], "prefill_s": []} for name in models}
    for name, model in models.items():  # warm-up: first-call allocations, kernel selection
        generate(model, NEW_TOKENS)
    live = dict(references or {})

    def run_references(step: str):
        for name, runner in list(live.items()):
            time.sleep(PAUSE_S)
            try:
                getattr(runner, step)()
            except RuntimeError as exc:
                print(f"[{NAME}] {runner.label} row dropped: {exc}", flush=True)
                runner.error = str(exc)
                del live[name]

    run_references("warmup")
    for _ in range(rounds):
        for name, model in models.items():
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            generate(model, NEW_TOKENS)
            times[name]["full_s"].append(time.perf_counter() - start)
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            generate(model, 1)
            times[name]["prefill_s"].append(time.perf_counter() - start)
        run_references("round")
    for entry in times.values():
        full, prefill = statistics.median(entry["full_s"]), statistics.median(entry["prefill_s"])
        entry["decode_tok_s"] = (NEW_TOKENS - 1) / (full - prefill) if full > prefill else float("nan")
        entry["e2e_tok_s"] = NEW_TOKENS / full
        entry["prefill_ms"] = prefill * 1e3
    return times


# --------------------------------------------------------------------------
# Bytes per decode step (the course's decode_bytes_per_token, exercise 1 Part B7)
# --------------------------------------------------------------------------

def _kv_cache_bytes(config, context_tokens: int, element_size: int, batch_size: int = 1) -> int:
    get = config.get if isinstance(config, dict) else (lambda key, default=None: getattr(config, key, default))
    layers, heads = int(get("num_hidden_layers")), int(get("num_attention_heads"))
    kv_heads = int(get("num_key_value_heads", None) or heads)
    head_dim = int(get("head_dim", None) or int(get("hidden_size")) // heads)
    return 2 * layers * kv_heads * head_dim * int(context_tokens) * batch_size * int(element_size)


def torch_decode_bytes(model, context_tokens: int, batch_size: int = 1) -> int:
    """Every parameter once (shared memory once); an untied input embedding: one row per sequence; + KV cache."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embedding.data_ptr()
    seen, weights = set(), 0
    for param in model.parameters():
        if param.data_ptr() in seen:
            continue
        seen.add(param.data_ptr())
        if param.data_ptr() == embedding.data_ptr() and not tied:
            weights += batch_size * (param.numel() // param.shape[0]) * param.element_size()
        else:
            weights += param.numel() * param.element_size()
    element = next(model.parameters()).element_size()
    return weights + _kv_cache_bytes(model.config, context_tokens, element, batch_size)


def onnx_decode_bytes(onnx_path: Path, context_tokens: int, batch_size: int = 1, kv_bytes: int = 4) -> int:
    """Every initializer as stored (4-bit: half a byte); one read only by Gather's data input: one row; + KV cache."""
    import onnx

    path = Path(onnx_path)
    graph = onnx.load(str(path), load_external_data=False).graph
    uses: dict[str, list] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, position))
    four_bit = {onnx.TensorProto.INT4, onnx.TensorProto.UINT4}
    weights = 0
    for tensor in graph.initializer:
        count = math.prod(tensor.dims)
        if tensor.data_type in four_bit:
            stored = (count + 1) // 2
        else:
            stored = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        readers = uses.get(tensor.name, [])
        if readers and tensor.dims and all(op == "Gather" and position == 0 for op, position in readers):
            stored = batch_size * stored // tensor.dims[0]
        weights += stored
    config = json.loads((path.parent / "config.json").read_text())
    return weights + _kv_cache_bytes(config, context_tokens, kv_bytes, batch_size)


def _start_reference(enabled: bool, work: Path, prompt: str):
    """A started LlamaCppRunner and its GGUF path, or (None, None) with the reason printed."""
    if not enabled:
        print(f"[{NAME}] llama.cpp reference row: off (--no-llama-cpp)", flush=True)
        return None, None
    from benchmarks import llama_cpp_reference as ref

    if ref.venv_python() is None:
        print(f"[{NAME}] {ref.skip_message()}", flush=True)
        return None, None
    try:
        gguf_path = ref.embedded_gguf(work)
        runner = ref.LlamaCppRunner(gguf_path, prompt, NEW_TOKENS, THREADS).__enter__()
    except Exception as exc:  # noqa: BLE001 -- the reference row is optional: the study goes on without it
        print(f"[{NAME}] {ref.LABEL}: skipped, it could not start: {exc}", flush=True)
        return None, None
    print(f"[{NAME}] llama.cpp reference: llama-cpp-python {runner.info.get('llama_cpp_version')}, "
          f"{runner.info.get('threads')} threads, {runner.info.get('prompt_tokens')} prompt tokens; "
          f"{runner.info.get('system_info')}", flush=True)
    return runner, gguf_path


def _start_ort_genai(enabled: bool, work: Path, source: Path, prompt_ids: list[int]):
    """A started OrtGenaiRunner, its model folder and build seconds, or (None, None, nan) with the reason printed."""
    if not enabled:
        print(f"[{NAME}] ONNX Runtime GenAI row: off (--no-ort-genai)", flush=True)
        return None, None, float("nan")
    from benchmarks import ort_genai_reference as genai

    if genai.venv_python() is None:
        print(f"[{NAME}] {genai.skip_message()}", flush=True)
        return None, None, float("nan")
    try:
        built = Variant(genai.MODEL_FOLDER, genai.LABEL, lambda _fp32, dst: genai.build_model(source, dst, THREADS))
        folder, build_s = _build(built, work / "ort_fp32", work)
        print(f"[{NAME}] built ort_genai: {build_s:.1f} s, {_folder_mb(folder):.0f} MB", flush=True)
        runner = genai.OrtGenaiRunner(folder, prompt_ids, NEW_TOKENS, THREADS).__enter__()
    except Exception as exc:  # noqa: BLE001 -- an optional row: the study goes on without it
        print(f"[{NAME}] {genai.LABEL}: skipped, it could not start: {exc}", flush=True)
        return None, None, float("nan")
    print(f"[{NAME}] ONNX Runtime GenAI {runner.info.get('onnxruntime_genai_version')}, "
          f"{runner.info.get('threads')} threads, {runner.info.get('prompt_tokens')} prompt tokens", flush=True)
    return runner, folder, build_s


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.name.startswith("model.onnx")) / 1e6


# --------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------

def _build(variant: Variant, fp32: Path, work: Path) -> tuple[Path, float]:
    target = work / variant.name
    info = target / BUILD_INFO
    if info.is_file() and (target / variant.file_name).is_file():
        return target, json.loads(info.read_text())["build_s"]
    start = time.perf_counter()
    variant.build(fp32, target)
    seconds = time.perf_counter() - start
    info.write_text(json.dumps({"build_s": round(seconds, 2)}))
    return target, seconds


def main(rebuild: bool = False, work_dir: Path | None = None, spinning: bool = True,
         only: list[str] | None = None, llama_cpp: bool = True, ort_genai: bool = True) -> list[dict]:
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import helpers
    from helpers import quantization as q

    torch.set_num_threads(THREADS)
    work = Path(work_dir or WORK_DIR)
    if rebuild and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    source = _embedded()
    session = {"num_threads": THREADS, "allow_spinning": spinning}
    print(f"[{NAME}] {machine()}; torch and ONNX Runtime threads: {THREADS}; "
          f"ORT thread spinning {'on' if spinning else 'off'}", flush=True)

    # 1. Build every variant (or reuse what an earlier run built).
    fp32 = work / "ort_fp32"
    existed = q.is_complete_export(fp32, str(source))
    start = time.perf_counter()
    q.export_onnx(str(source), fp32, num_threads=THREADS)
    export_s = json.loads((fp32 / "export_info.json").read_text())["export_s"] if existed else \
        time.perf_counter() - start
    print(f"[{NAME}] export: {export_s:.1f} s{' (reused)' if existed else ''}", flush=True)
    table = {}
    all_variants = variants(q)
    if only:  # a subset, always with the baseline that every ratio is taken against
        unknown = sorted(set(only) - {v.name for v in all_variants})
        if unknown:
            raise SystemExit(f"[{NAME}] unknown variant(s) {unknown}; accepted: "
                             + ", ".join(v.name for v in all_variants))
        wanted = set(only) | {"pytorch_fp32"}
        wanted |= {v.same_model_as for v in all_variants if v.name in wanted and v.same_model_as}
        all_variants = [v for v in all_variants if v.name in wanted]
    for v in all_variants:
        if v.name == "pytorch_fp32":
            folder, build_s = source, float("nan")
        elif v.name == "ort_fp32":
            folder, build_s = fp32, export_s
        elif v.same_model_as:
            table[v.name] = dict(table[v.same_model_as], variant=v.label, outside_notebook=v.bare_loop)
            continue
        else:
            folder, build_s = _build(v, fp32, work)
            print(f"[{NAME}] built {v.name}: {build_s:.1f} s, {q.dir_size_mb(folder):.0f} MB", flush=True)
        size = q.dir_size_mb(folder / v.file_name) if v.build or v.name == "ort_fp32" else \
            q.dir_size_mb(folder / "model.safetensors")
        table[v.name] = {"variant": v.label, "folder": folder, "size_mb": size, "build_s": build_s,
                         "outside_notebook": False}

    # 2. Perplexity, one model in memory at a time.
    texts = list(helpers.EVAL_TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(source)
    for v in all_variants:
        if v.same_model_as:  # the same model as another row: the same perplexity
            table[v.name].update(perplexity=table[v.same_model_as]["perplexity"],
                                 n_tokens=table[v.same_model_as]["n_tokens"])
            continue
        start = time.perf_counter()
        model = _load(v, table[v.name]["folder"], q, session)
        ppl, n_tokens = perplexity(model, tokenizer, texts)
        table[v.name].update(perplexity=ppl, n_tokens=n_tokens)
        print(f"[{NAME}] perplexity {v.name}: {ppl:.3f} over {n_tokens} tokens "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        del model
        gc.collect()

    # 3. Speed, every timed model loaded, round-robin (llama.cpp's rounds interleaved), and the
    #    bandwidth bound: bytes per decode step at the mean context while decoding.
    generate_tokenizer = AutoTokenizer.from_pretrained(source)
    context = len(generate_tokenizer(helpers.REFERENCE_PROMPT).input_ids) + NEW_TOKENS // 2
    timed = {v.name: _load(v, table[v.name]["folder"], q, session) for v in all_variants if v.timed}
    for v in all_variants:
        if v.timed:
            table[v.name]["step_bytes"] = torch_decode_bytes(timed[v.name], context) \
                if v.name == "pytorch_fp32" else onnx_decode_bytes(table[v.name]["folder"] / v.file_name, context)
    bandwidth = helpers.measure_memory_bandwidth(threads=THREADS)
    print(f"[{NAME}] memory bandwidth {bandwidth['gbps']:.2f} GB/s (IQR {bandwidth['iqr_gbps']:.2f}): "
          f"{bandwidth['method']}", flush=True)
    runner, gguf_path = _start_reference(llama_cpp, work, helpers.REFERENCE_PROMPT)
    genai_runner, genai_folder, genai_build_s = _start_ort_genai(
        ort_genai, work, source, generate_tokenizer(helpers.REFERENCE_PROMPT).input_ids)
    children = {name: r for name, r in (("llama_cpp", runner), ("ort_genai", genai_runner)) if r is not None}
    child_ppl = {}
    try:
        times = time_round_robin(timed, generate_tokenizer, helpers.REFERENCE_PROMPT, references=children)
        for name, child in children.items():  # each engine scores the course's texts, the same token ids
            if child.error is None:
                start = time.perf_counter()
                child_ppl[name] = child.perplexity([tokenizer(t).input_ids for t in texts])
                print(f"[{NAME}] perplexity {name}: {child_ppl[name][0]:.3f} over {child_ppl[name][1]} tokens "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    finally:
        for child in children.values():
            child.__exit__(None, None, None)
    del timed
    gc.collect()
    reference_ppl = child_ppl.get("llama_cpp")
    if genai_runner is not None and genai_runner.error is None:
        from benchmarks import ort_genai_reference as genai

        summary = genai_runner.summary()
        ppl, n_tokens = child_ppl.get("ort_genai", (float("nan"), 0))
        table["ort_genai"] = {"variant": genai.LABEL, "folder": genai_folder, "size_mb": _folder_mb(genai_folder),
                              "build_s": genai_build_s, "perplexity": ppl, "n_tokens": n_tokens,
                              "outside_notebook": True,
                              "step_bytes": onnx_decode_bytes(genai_folder / "model.onnx", context)}
        times["ort_genai"] = {k: summary[k] for k in ("decode_tok_s", "e2e_tok_s", "prefill_ms")}
        print(f"[{NAME}] ONNX Runtime GenAI: {summary['decode_tok_s']:.1f} decode tok/s "
              f"(in-run median {summary['decode_tok_s_in_run']:.1f}); TTFT {summary['ttft_ms']:.1f} ms", flush=True)
    reference = None
    if runner is not None and runner.error is None:
        from benchmarks import llama_cpp_reference as ref

        reference = runner.summary()
        ref_context = int(reference["prompt_tokens"]) + NEW_TOKENS // 2
        table["llama_cpp"] = {"variant": ref.LABEL, "folder": gguf_path, "size_mb": gguf_path.stat().st_size / 1e6,
                              "build_s": float("nan"),
                              "perplexity": reference_ppl[0] if reference_ppl else float("nan"),
                              "n_tokens": reference_ppl[1] if reference_ppl else 0,
                              "step_bytes": ref.gguf_decode_bytes(gguf_path, ref_context)["total"]}
        times["llama_cpp"] = {k: reference[k] for k in ("decode_tok_s", "e2e_tok_s", "prefill_ms")}
        print(f"[{NAME}] llama.cpp: {reference['decode_tok_s']:.1f} decode tok/s "
              f"(in-run median {reference['decode_tok_s_in_run']:.1f}, IQR {reference['decode_tok_s_in_run_iqr']:.1f}); "
              f"TTFT {reference['ttft_ms']:.1f} ms (IQR {reference['ttft_ms_iqr']:.1f}); "
              f"continuation {reference.get('continuation', '')[:60]!r}", flush=True)

    # 4. Ratios, recommendation, rows.
    base = table["pytorch_fp32"]
    base_tps = times["pytorch_fp32"]["decode_tok_s"]
    ref_tps = times["llama_cpp"]["decode_tok_s"] if "llama_cpp" in times else float("nan")
    for name, entry in table.items():
        entry["delta_ppl_pct"] = 100 * (entry["perplexity"] / base["perplexity"] - 1)
        if name in times:
            entry.update({k: times[name][k] for k in ("decode_tok_s", "e2e_tok_s", "prefill_ms")})
            entry["speedup"] = entry["decode_tok_s"] / base_tps
            entry["pct_of_llama_cpp"] = 100 * entry["decode_tok_s"] / ref_tps
        if "step_bytes" in entry:
            entry["bound_ms_per_token"] = 1e3 * entry["step_bytes"] / (bandwidth["gbps"] * 1e9)
            entry["pct_of_bound"] = entry["bound_ms_per_token"] * entry.get("decode_tok_s", float("nan")) / 10
    eligible = [n for n, e in table.items()  # what the notebook runs: not llama.cpp, GenAI or the bare loop
                if n != "llama_cpp" and not e.get("outside_notebook") and "speedup" in e and abs(e["delta_ppl_pct"]) <= 100 * PPL_TOLERANCE]
    best = max(eligible, key=lambda n: table[n]["decode_tok_s"])
    frame = pd.DataFrame([
        {"variant": e["variant"], "decode tok/s": e.get("decode_tok_s"), "x PyTorch fp32": e.get("speedup"),
         "prefill ms": e.get("prefill_ms"), "perplexity": e["perplexity"], "ppl delta %": e["delta_ppl_pct"],
         "size MB": e["size_mb"], "build s": e["build_s"], "pct_of_llama_cpp": e.get("pct_of_llama_cpp"),
         "MB/step": e["step_bytes"] / 1e6 if "step_bytes" in e else None,
         "bound_ms_per_token": e.get("bound_ms_per_token"), "pct_of_bound": e.get("pct_of_bound")}
        for e in table.values()
    ])
    with pd.option_context("display.width", 220, "display.max_colwidth", 70, "display.float_format", "{:.3g}".format):
        print(f"\n[{NAME}] results ({ROUNDS} rounds round-robin, median; batch 1, {NEW_TOKENS} new tokens, "
              f"{THREADS} threads; bandwidth {bandwidth['gbps']:.2f} GB/s; bound at {context} tokens of context)\n"
              + frame.to_string(index=False))
    met = table[best]["speedup"] >= TARGET_SPEEDUP
    share = table[best].get("pct_of_llama_cpp", float("nan"))
    share_text = "no llama.cpp row" if math.isnan(share) else \
        f"{share:.0f}% of llama.cpp (target {TARGET_SHARE_OF_LLAMA_CPP:.0%}: " \
        f"{'met' if share >= 100 * TARGET_SHARE_OF_LLAMA_CPP else 'NOT met'})"
    print(f"\n[{NAME}] recommendation: {table[best]['variant']}: {table[best]['decode_tok_s']:.1f} decode tok/s, "
          f"x{table[best]['speedup']:.2f} PyTorch float32 (target x{TARGET_SPEEDUP}: {'met' if met else 'NOT met'}), "
          f"{share_text}, perplexity {table[best]['perplexity']:.2f} ({table[best]['delta_ppl_pct']:+.1f}%)",
          flush=True)
    within = [n for n in table if n != "llama_cpp" and "speedup" in table[n]
              and abs(table[n]["delta_ppl_pct"]) <= 100 * PPL_TOLERANCE]
    fastest = max(within, key=lambda n: table[n]["decode_tok_s"])
    if fastest != best:
        print(f"[{NAME}] fastest row within {PPL_TOLERANCE:.0%} of float32 perplexity, the notebook's or not: "
              f"{table[fastest]['variant']}: {table[fastest]['decode_tok_s']:.1f} decode tok/s, "
              f"{table[fastest].get('pct_of_llama_cpp', float('nan')):.0f}% of llama.cpp, "
              f"perplexity {table[fastest]['delta_ppl_pct']:+.2f}%", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    frame.to_csv(work / "results.csv", index=False)
    print(f"\n[{NAME}] what stops each timed row (targets: perplexity change <= {PPL_TOLERANCE:.0%}, "
          f"decode >= {TARGET_SHARE_OF_LLAMA_CPP:.0%} of llama.cpp)")
    for name, verdict in verdicts(table).items():
        print(f"  {table[name]['variant']}: {verdict}")
    print(f"[{NAME}] frontier plot: {plot_frontier(table, work / 'frontier.png')}", flush=True)

    timing_method = (f"greedy, batch 1, {NEW_TOKENS} new tokens (min=max), REFERENCE_PROMPT, {THREADS} threads; "
                     f"{ROUNDS} round-robin rounds after 1 warm-up; (N-1)/(median t_N - median t_1)")
    bound_method = (f"bytes per decode step (course rule: weights as stored, each once, lookups one row, + KV "
                    f"cache at {context} tokens) / {bandwidth['gbps']:.2f} GB/s ({bandwidth['method']})")
    ppl_method = (f"all {len(texts)} EVAL_TEXTS, batch {EVAL_BATCH}, right padding, padding excluded, "
                  "token-weighted")
    rows = []
    for name, e in table.items():
        label = e["variant"]
        if "decode_tok_s" in e:
            rows.append(row(NAME, f"{label}: decode speed", e["decode_tok_s"], "tokens/s", timing_method))
            rows.append(row(NAME, f"{label}: decode speed vs PyTorch float32", e["speedup"], "ratio",
                            "same run, same method"))
            rows.append(row(NAME, f"{label}: prefill (1 new token)", e["prefill_ms"], "ms", timing_method))
            if reference is not None and name != "llama_cpp":
                rows.append(row(NAME, f"{label}: decode speed vs llama.cpp", e["pct_of_llama_cpp"], "%",
                                "same run, same method, same prompt and threads; llama.cpp on the Q4_1 GGUF"))
        if "bound_ms_per_token" in e:
            rows.append(row(NAME, f"{label}: bandwidth bound", e["bound_ms_per_token"], "ms/token", bound_method))
            rows.append(row(NAME, f"{label}: share of the bandwidth bound", e["pct_of_bound"], "%",
                            "bound ms/token x decode tok/s x 100"))
        if name == "llama_cpp":
            rows.append(row(NAME, f"{label}: time to first token", reference["ttft_ms"], "ms",
                            f"median of {reference['rounds']} in-run TTFTs (IQR {reference['ttft_ms_iqr']:.2f} ms); "
                            f"llama-cpp-python {reference.get('llama_cpp_version')}, {reference.get('system_info')}"))
            rows.append(row(NAME, f"{label}: size on disk", e["size_mb"], "MB", "the GGUF file, 10**6 bytes"))
            if not math.isnan(e["perplexity"]):
                rows.append(row(NAME, f"{label}: perplexity change vs PyTorch float32", e["delta_ppl_pct"], "%",
                                ppl_method + "; llama.cpp scores the same token ids, one text at a time"))
            continue
        rows.append(row(NAME, f"{label}: perplexity", e["perplexity"], "", ppl_method))
        rows.append(row(NAME, f"{label}: perplexity change vs PyTorch float32", e["delta_ppl_pct"], "%", ppl_method))
        rows.append(row(NAME, f"{label}: size on disk", e["size_mb"], "MB", "weights file(s), 10**6 bytes"))
        if not math.isnan(e["build_s"]):
            rows.append(row(NAME, f"{label}: time to build", e["build_s"], "s",
                            "export from the PyTorch folder" if name == "ort_fp32"
                            else "from the float32 export (excludes the export)"))
    rows.append(row(NAME, f"recommended: {table[best]['variant']}", table[best]["speedup"], "ratio",
                    f"fastest decode within {PPL_TOLERANCE:.0%} of float32 perplexity; target x{TARGET_SPEEDUP} "
                    f"{'met' if met else 'not met'}"))
    return rows


def verdicts(table: dict) -> dict:
    """Per timed row (the llama.cpp row aside), which target stops it, in words with its figures."""
    reference = table.get("llama_cpp", {}).get("decode_tok_s", float("nan"))
    reference_bound = table.get("llama_cpp", {}).get("pct_of_bound", float("nan"))
    out = {}
    for name, e in table.items():
        if name == "llama_cpp" or "decode_tok_s" not in e:
            continue
        reasons = []
        if abs(e["delta_ppl_pct"]) > 100 * PPL_TOLERANCE:
            reasons.append(f"perplexity {e['delta_ppl_pct']:+.1f}% (limit {PPL_TOLERANCE:.0%})")
        if not math.isnan(reference) and e["decode_tok_s"] < TARGET_SHARE_OF_LLAMA_CPP * reference:
            reasons.append(f"speed {e['pct_of_llama_cpp']:.0f}% of llama.cpp; it uses "
                           f"{e.get('pct_of_bound', float('nan')):.0f}% of its bandwidth bound "
                           f"(llama.cpp {reference_bound:.0f}%)")
        out[name] = "stopped by " + " and ".join(reasons) if reasons else \
            (f"meets both ({e['delta_ppl_pct']:+.2f}%, {e['pct_of_llama_cpp']:.0f}% of llama.cpp)"
             if not math.isnan(reference) else f"meets the perplexity limit ({e['delta_ppl_pct']:+.2f}%); "
                                                "no llama.cpp row to compare speed with")
    return out


def frontier(points: dict) -> list:
    """Names of the points (perplexity change %, decode tok/s) that no other point beats on both
    (no larger perplexity change and no lower speed, one of them strictly), by perplexity change."""
    def beaten(p):
        return any(o[0] <= p[0] and o[1] >= p[1] and o != p for o in points.values())

    return sorted((n for n, p in points.items() if not beaten(p)), key=lambda n: points[n])


def plot_frontier(table: dict, path: Path) -> Path:
    """Decode tokens/s against perplexity change, one point per timed row (llama.cpp among them when it
    has a perplexity), the rows no other row beats on both joined, the two targets drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {n: (e["delta_ppl_pct"], e["decode_tok_s"]) for n, e in table.items()
              if "decode_tok_s" in e and not math.isnan(e["delta_ppl_pct"]) and not math.isnan(e["decode_tok_s"])}
    front = [points[n] for n in frontier(points)]
    figure, ax = plt.subplots(figsize=(8, 5))
    for name, (x, y) in points.items():
        ax.scatter([x], [y], color="tab:red" if name == "llama_cpp" else "tab:blue", zorder=3)
        ax.annotate(name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.plot([p[0] for p in front], [p[1] for p in front], color="gray", linestyle=":", label="frontier")
    ax.axvline(100 * PPL_TOLERANCE, color="green", linestyle="--", label=f"perplexity limit +{PPL_TOLERANCE:.0%}")
    if "llama_cpp" in table and "decode_tok_s" in table["llama_cpp"]:
        ax.axhline(TARGET_SHARE_OF_LLAMA_CPP * table["llama_cpp"]["decode_tok_s"], color="tab:red", linestyle="--",
                   label=f"{TARGET_SHARE_OF_LLAMA_CPP:.0%} of llama.cpp")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(min(-0.5, 1.2 * min(p[0] for p in points.values())), 1.5 * max(p[0] for p in points.values()) + 5)
    ax.set_xlabel("perplexity change vs PyTorch float32 (%, symmetric log scale)")
    ax.set_ylabel("decode tokens/s (batch 1)")
    ax.set_title("speed against quality, same weights, same machine and run")
    ax.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _load(variant: Variant, folder: Path, q, session: dict):
    if variant.name == "pytorch_fp32":
        import torch
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    model = q.load_ort(folder, variant.file_name, **session, **variant.session)
    return BareGreedyLoop(model) if variant.bare_loop else model


def _cli(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build every variant again (else reuse)")
    parser.add_argument("--spinning", action=argparse.BooleanOptionalAction, default=True,
                        help="ONNX Runtime's threads spin while they wait for work (its default; "
                             "--no-spinning parks them: slower steps, see the module docstring)")
    parser.add_argument("--work-dir", type=Path, default=None, help=f"where built models go (default {WORK_DIR})")
    parser.add_argument("--only", nargs="+", metavar="VARIANT",
                        help="measure only these variants (and the PyTorch float32 baseline), e.g. "
                             "weight_only_8bit_acc4_head dynamic_all")
    parser.add_argument("--llama-cpp", action=argparse.BooleanOptionalAction, default=True,
                        help="add the llama.cpp reference row (default on; skipped with a message when "
                             "benchmarks/.llama-cpp-venv is not built: bash benchmarks/build_llama_cpp.sh)")
    parser.add_argument("--ort-genai", action=argparse.BooleanOptionalAction, default=True,
                        help="add the ONNX Runtime GenAI row (default on; skipped with a message when "
                             "benchmarks/.ort-genai-venv is not installed: bash benchmarks/build_ort_genai.sh)")
    args = parser.parse_args(argv)
    main(rebuild=args.rebuild, work_dir=args.work_dir, spinning=args.spinning, only=args.only,
         llama_cpp=args.llama_cpp, ort_genai=args.ort_genai)
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
