"""INT8 building blocks on CPU: ONNX export, ONNX Runtime sessions, and quantization.

The course quantizes a model in three ways, all after training (post-training
quantization), all on an ONNX export of the model:

* **dynamic INT8**: weights stored as int8; each MatMul quantizes its input on
  the fly, one uint8 range for the whole tensor, from its current min/max. No
  calibration data.
* **static INT8** (``calibration_dataset`` gives the rows): activation ranges
  are measured once on calibration texts and frozen into the graph.
* **weight-only** (``weight_only_int8``): ONNX Runtime's ``MatMulNBits``
  stores weights in blocks of ``block_size`` values, each block with its own
  scale and zero point; activations stay float32. Fewer bytes to read per
  generated token without rounding activations.

Driving Optimum's ``ORTQuantizer`` for the two INT8 schemes is Exercise 1's Part B1, so it is
not here: students write it. The course's own version, for the benchmarks and the tests, is
``benchmarks/int8_reference.py``; this module gives the plumbing around it (export, layer
groups, calibration rows, sessions) and what Part B8 builds beyond it.

``simulated_dynamic_int8`` reproduces the dynamic INT8 rounding inside a
PyTorch model (nothing gets faster), so that the perplexity cost of one layer
type can be measured without building an ONNX model per type.

``matmul_groups`` names the MatMul nodes by layer type, so that a variant can
quantize only some of them (for instance only the linear projections, or one
group at a time to see which layer type is sensitive). The groups are the Llama family's
projection names; a model whose layers are named otherwise is refused with
``UnsupportedModelError`` naming its model type (``require_projection_layers``).

On the embedded SmolLM2-135M, measured by ``benchmarks/quantization_study.py``:
quantizing activations costs a lot of perplexity, weight-only 8-bit almost
none, weight-only 4-bit about a quarter; that script prints the figures with
their method (run it with ``python -m benchmarks --all``), and
course/exercise1_solution_walkthrough.md discusses them.

The embedded model is itself a 4-bit model stored in float32: it was converted
from a Q4_1 GGUF file (each block of 32 weights: 4-bit integers, a float16 scale
and a float16 minimum), so each block of 32 projection weights holds 16 evenly
spaced values. ``weight_only_int8(bits=8)`` lands within a small fraction of that
grid's step. ``bits=4`` has the same step, but ``MatMulNBits`` stores the block
offset as an integer zero point, so unless the Q4_1 minimum is a whole number of
steps from zero its grid is shifted, and it rounds the weights a second time.

Every function that writes a folder writes it into a temporary sibling first
and renames it at the end, so an interrupted run never leaves a half-written
model that a later call would take for a complete one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from .cpu import cpu_flags

ONNX_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"  # the name ORTQuantizer gives its output

# Every MatMul of an exported Llama-family decoder falls in exactly one group. The group names
# are the module names of that family's linear layers (LlamaAttention.q_proj ... LlamaMLP.down_proj),
# which the export keeps in its node names. They are a checked requirement, not an assumption:
# matmul_groups and simulated_dynamic_int8 raise UnsupportedModelError, naming the model type,
# when the model actually loaded lacks one of them (require_projection_layers).
PROJECTION_GROUPS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Model types (config.json "model_type") known to name their layers so; others are accepted when
# their layers carry the names too.
PROJECTION_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
GROUPS = PROJECTION_GROUPS + ("lm_head", "other")
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")

# Files copied next to a quantized model so that it loads like the export it came from.
_SIDE_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
)
_EXPORT_INFO = "export_info.json"
_COMPLETE_EXPORT = (ONNX_FILE, "config.json", "tokenizer.json", "tokenizer_config.json")
_WEIGHT_BITS = (4, 8)

# Calibration text for static quantization, kept apart from helpers.EVAL_TEXTS so that
# the perplexity that judges a static model is not measured on the text that set its ranges.
CALIBRATION_TEXTS: tuple[str, ...] = (
    "A kettle switches itself off because of a small disc made of two metals bonded together. "
    "When the steam from the boiling water reaches the disc, one metal expands more than the "
    "other, the disc snaps into a new shape, and it pushes the switch open. As the disc cools "
    "it slowly returns to its first shape, ready for the next cup of tea.",
    "Honey bees tell each other where to find flowers with a dance. A returning forager walks "
    "a short straight line while shaking her body, then loops back and repeats it. The angle "
    "of the straight run against the vertical comb gives the direction of the food relative "
    "to the sun, and the length of the run tells the other bees roughly how far to fly.",
    "Maps of the London Underground are famous for ignoring real distances. In 1931 an "
    "engineering draughtsman named Harry Beck drew the lines as straight strokes at fixed "
    "angles, with stations spaced evenly, much like an electrical circuit diagram. Travellers "
    "cared about the order of stops and the places to change trains, not the exact geography, "
    "and the idea has since been copied by transport networks around the world.",
    "Sourdough starters are kept alive for years by regular feeding. Each day part of the "
    "mixture is thrown away and the rest is given fresh flour and water, which keeps the wild "
    "yeasts and lactic acid bacteria active and stops the culture from becoming too sour. A "
    "healthy starter doubles in size a few hours after a feed and smells pleasantly tangy.",
    "Tides rise and fall about twice a day because the Moon's gravity pulls unevenly on the "
    "Earth. The ocean nearest the Moon is pulled a little more than the planet's centre, and "
    "the ocean on the far side a little less, so two bulges of water form. As the Earth turns "
    "beneath them, most coasts pass through both bulges every lunar day of about twenty-four "
    "hours and fifty minutes.",
    "Library classification schemes give every book a place on a shelf. The Dewey Decimal "
    "system, published in 1876, divides knowledge into ten main classes numbered from zero to "
    "nine hundred, and each class is split again and again with more digits after a decimal "
    "point. A reader who knows the number for a subject can walk straight to the right shelf "
    "and browse the neighbouring books on closely related topics.",
    "Bicycle gears let a rider keep a comfortable pedalling speed on hills and flat roads "
    "alike. A small front ring and a large rear sprocket make each turn of the pedals move the "
    "wheel only a short way, which is easy on a steep climb. A large front ring and a small "
    "rear sprocket do the opposite, covering more ground with each stroke on a fast descent.",
    "Paper was made from rags for centuries before wood pulp took over in the nineteenth "
    "century. Wood was cheap and plentiful, but the acids left in early pulp papers slowly "
    "broke down the fibres, so many books printed then now crumble at the edges. Modern "
    "archival paper is treated to remove those acids and can last for hundreds of years.",
)


# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------

def ort_num_threads(num_threads: int | None = None) -> int:
    """Threads for an ONNX Runtime session: ``num_threads`` if given, else torch's current setting.

    Using torch's number keeps PyTorch and ONNX Runtime comparisons fair:
    ``torch.set_num_threads(2)`` then applies to both.
    """
    if num_threads is None:
        import torch

        num_threads = torch.get_num_threads()
    num_threads = int(num_threads)
    if num_threads < 1:
        raise ValueError(f"num_threads must be 1 or more, got {num_threads}")
    return num_threads


def dir_size_mb(path: Path | str) -> float:
    """Size on disk of a file, or of every file under a folder, in MB (10**6 bytes).

    For a model folder this counts the ONNX graph with its weights and the small
    config and tokenizer files next to it.
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / 1e6
    if not path.is_dir():
        raise FileNotFoundError(f"no file or folder at {path}")
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def cpu_instruction_set() -> str:
    """The int8 instruction set ONNX Runtime can use here: avx512_vnni, avx512, avx2 or arm64.

    Read from /proc/cpuinfo on Linux, from torch's CPU capability elsewhere.
    An x86 CPU that reports none of them is treated as ``avx2``, whose
    configuration (reduced range) is the safe choice there.
    """
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64") or machine.startswith("armv8"):
        return "arm64"
    flags = cpu_flags()
    if not flags:  # not Linux: ask torch what it dispatches to
        try:
            import torch

            capability = torch.backends.cpu.get_cpu_capability().lower()
        except Exception:  # an old torch without the query
            capability = ""
        flags = {"avx512f"} if "avx512" in capability else {"avx2"} if "avx2" in capability else set()
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


@contextlib.contextmanager
def _quiet():
    """Silence the export's tracer warnings and library log chatter (notebooks must stay quiet)."""
    import transformers
    from optimum.utils import logging as optimum_logging

    # Optimum configures its root logger on first use (resetting its level), so go through its API.
    libraries = (transformers.logging, optimum_logging)
    library_levels = [lib.get_verbosity() for lib in libraries]
    loggers = [logging.getLogger(name) for name in ("onnxruntime", "root")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            for lib in libraries:
                lib.set_verbosity_error()
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
            for lib, level in zip(libraries, library_levels):
                lib.set_verbosity(level)


@contextlib.contextmanager
def _staging(target: Path):
    """Yield a temporary folder beside ``target``; rename it to ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _require_onnx(onnx_dir: Path | str, file_name: str = ONNX_FILE) -> Path:
    onnx_dir = Path(onnx_dir)
    if not onnx_dir.is_dir():
        raise FileNotFoundError(
            f"no ONNX model folder at {onnx_dir}: export one first with export_onnx(model_id, {str(onnx_dir)!r})")
    path = onnx_dir / file_name
    if not path.is_file():
        found = sorted(p.name for p in onnx_dir.glob("*.onnx"))
        raise FileNotFoundError(
            f"{onnx_dir} holds no {file_name}; ONNX files there: {found or 'none'}. "
            "Pass file_name= the one you want, or export again with export_onnx.")
    return path


def _copy_side_files(source: Path, target: Path) -> None:
    for name in _SIDE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _load_graph(onnx_path: Path):
    """The ONNX graph without its weights (fast, small)."""
    import onnx

    return onnx.load(str(onnx_path), load_external_data=False).graph


# --------------------------------------------------------------------------
# Export and load
# --------------------------------------------------------------------------

def _source_signature(model_id_or_dir: str) -> dict:
    source = Path(model_id_or_dir)
    if source.is_dir():
        weights = sorted(source.glob("*.safetensors")) + sorted(source.glob("*.bin"))
        return {"source": str(source.resolve()),
                "weights": {w.name: w.stat().st_size for w in weights}}
    return {"source": str(model_id_or_dir)}


def is_complete_export(save_dir: Path | str, model_id_or_dir: str | None = None) -> bool:
    """True if ``save_dir`` holds a finished export (of ``model_id_or_dir``, when given)."""
    save_dir = Path(save_dir)
    if not all((save_dir / name).is_file() for name in _COMPLETE_EXPORT + (_EXPORT_INFO,)):
        return False
    if model_id_or_dir is None:
        return True
    try:
        info = json.loads((save_dir / _EXPORT_INFO).read_text())
    except (OSError, ValueError):
        return False
    wanted = _source_signature(model_id_or_dir)
    return all(info.get(key) == value for key, value in wanted.items())


def export_onnx(model_id_or_dir: str, save_dir: Path, *, num_threads: int | None = None,
                force: bool = False) -> Path:
    """Export a causal LM to ONNX (decoder with past key values) into ``save_dir``; return ``save_dir``.

    Uses Optimum: ``ORTModelForCausalLM.from_pretrained(..., export=True, use_cache=True)``,
    then saves ``model.onnx``, the config and the tokenizer (limited to
    ``input_ids`` and ``attention_mask``, the inputs ``generate`` accepts).

    Args:
        model_id_or_dir: a local model folder (or a hub id, when online).
        save_dir: folder to write. If it already holds a complete export of the
            same source, it is reused as is (takes milliseconds).
        num_threads: ONNX Runtime threads for the check session the export opens.
        force: export again even if a complete export exists.

    The embedded 135M model takes about half a minute and several GB of memory.
    """
    save_dir = Path(save_dir)
    source = Path(str(model_id_or_dir)).expanduser()
    looks_local = str(model_id_or_dir).startswith((".", "/", "~")) or source.exists()
    if looks_local and not source.is_dir():
        raise FileNotFoundError(f"no model folder at {model_id_or_dir}: build it with `make setup` or pass a hub id")
    if not force and is_complete_export(save_dir, str(model_id_or_dir)):
        return save_dir
    from transformers import AutoTokenizer

    start = time.perf_counter()
    with _quiet(), _staging(save_dir) as staged:
        from optimum.onnxruntime import ORTModelForCausalLM

        model = ORTModelForCausalLM.from_pretrained(
            str(model_id_or_dir), export=True, use_cache=True,
            session_options=_session_options(num_threads),
        )
        model.save_pretrained(staged)
        del model
        tokenizer = AutoTokenizer.from_pretrained(str(model_id_or_dir))
        # token_type_ids would make generate() fail: "model_kwargs are not used by the model".
        tokenizer.model_input_names = ["input_ids", "attention_mask"]
        tokenizer.save_pretrained(staged)
        info = _source_signature(str(model_id_or_dir))
        info["export_s"] = round(time.perf_counter() - start, 2)
        (staged / _EXPORT_INFO).write_text(json.dumps(info, indent=1))
    return save_dir


def _session_options(num_threads: int | None = None, graph_optimization_level=None, allow_spinning=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = ort_num_threads(num_threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: keep notebooks quiet
    if graph_optimization_level is not None:
        options.graph_optimization_level = graph_optimization_level
    if allow_spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return options


def load_ort(onnx_dir: Path, file_name: str = ONNX_FILE, *, num_threads: int | None = None,
             graph_optimization_level=None, allow_spinning: bool | None = None, session_options=None):
    """Load an exported (or quantized) model as an ``ORTModelForCausalLM`` on CPU.

    Args:
        onnx_dir: folder with the ONNX file and ``config.json`` (from
            ``export_onnx``, ORTQuantizer, ``weight_only_int8``...).
        file_name: which ONNX file (``model.onnx``; ``model_quantized.onnx``
            for ORTQuantizer's output).
        num_threads: ONNX Runtime intra-op threads; default ``torch.get_num_threads()``.
        graph_optimization_level: an ``onnxruntime.GraphOptimizationLevel``
            (default: ONNX Runtime's own, ORT_ENABLE_ALL).
        session_options: a full ``onnxruntime.SessionOptions`` (overrides the two above).

    The model generates with ``model.generate(**tokenizer(...))`` as long as
    the tokenizer returns only ``input_ids`` and ``attention_mask``; its
    ``generate`` runs torch on ``GENERATE_TORCH_THREADS`` thread(s), so that
    torch's pool does not compete with ONNX Runtime's for the cores.
    """
    path = _require_onnx(onnx_dir, file_name)
    if not (path.parent / "config.json").is_file():
        raise FileNotFoundError(f"{path.parent} has no config.json: copy it from the export folder")
    options = session_options or _session_options(num_threads, graph_optimization_level, allow_spinning)
    with _quiet():
        from optimum.onnxruntime import ORTModelForCausalLM

        model = ORTModelForCausalLM.from_pretrained(
            str(path.parent), file_name=file_name, use_cache=True, session_options=options,
        )
    model.generate = _with_torch_threads(model.generate, GENERATE_TORCH_THREADS)
    return model


# While an ONNX Runtime model generates, torch only does the bookkeeping of each step (a few small
# tensor operations). With torch's pool at 2 threads, those threads keep spinning after each small
# operation and fight ONNX Runtime's own threads for the two cores: measured on the 8-bit weight-only
# model, 53-62 decode tokens/s with torch at 2 threads and 79-80 with torch at 1 (ONNX Runtime's
# spinning on, 2 threads; benchmarks/quantization_study.py and the exercise 1 walkthrough).
GENERATE_TORCH_THREADS = 1


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with torch's intra-op pool at ``count`` threads; the earlier setting comes back after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _with_torch_threads(generate, count: int):
    import functools

    @functools.wraps(generate)
    def generate_with_few_torch_threads(*args, **kwargs):
        with torch_threads(count):
            return generate(*args, **kwargs)

    return generate_with_few_torch_threads


# --------------------------------------------------------------------------
# Which MatMul is which
# --------------------------------------------------------------------------

_PROJECTION_RE = re.compile(r"(?:^|[/.])(" + "|".join(PROJECTION_GROUPS) + r")(?:[/.]|$)")
_LM_HEAD_RE = re.compile(r"(?:^|[/.])lm_head(?:[/.]|$)")


class UnsupportedModelError(ValueError):
    """The model lacks the layer names that the quantization groups are made of."""


def _model_type_near(onnx_path: Path) -> str:
    """``model_type`` from the config.json beside an ONNX file ("unknown" without one)."""
    try:
        return str(json.loads((Path(onnx_path).parent / "config.json").read_text()).get("model_type", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def require_projection_layers(layer_names, model_type, where: str, wanted=PROJECTION_GROUPS) -> None:
    """Raise ``UnsupportedModelError`` unless every group in ``wanted`` names some layer.

    ``layer_names``: MatMul node names of an export, or module names of a PyTorch model;
    a group matches a whole path part (``.../self_attn/q_proj/MatMul``, ``model.layers.0.self_attn.q_proj``).
    The message names the model type and what is supported.
    """
    found = {matmul_group(str(name)) for name in layer_names}
    missing = [group for group in wanted if group not in found]
    if missing:
        raise UnsupportedModelError(
            f"{where}: a model of type {model_type!r} has no layer named {', '.join(missing)}. "
            f"The quantization groups are the projection names of the Llama family "
            f"({', '.join(PROJECTION_GROUPS)}), which model types {', '.join(PROJECTION_MODEL_TYPES)} use. "
            "For another architecture quantize every MatMul (groups=None), or map its layer names "
            "onto these groups in helpers/quantization.py.")


def matmul_group(node_name: str) -> str:
    """The group of one MatMul node, from its name (e.g. ``/model/layers.3/mlp/up_proj/MatMul``)."""
    match = _PROJECTION_RE.search(node_name)
    if match:
        return match.group(1)
    if _LM_HEAD_RE.search(node_name):
        return "lm_head"
    return "other"


def matmul_groups(onnx_path: Path) -> dict[str, list[str]]:
    """MatMul node names of an ONNX model, grouped by layer type.

    Keys, always all present: ``q_proj k_proj v_proj o_proj gate_proj up_proj
    down_proj lm_head other``. ``other`` holds the attention products
    (queries x keys, weights x values), the rotary-embedding product and
    anything unrecognised. Every MatMul is in exactly one group, in graph order.
    ``onnx_path``: an ONNX file, or a folder holding ``model.onnx``. Raises
    ``UnsupportedModelError`` (naming the ``model_type`` of the config.json beside it) when a
    projection group would be empty: the model does not name its layers as the Llama family does.
    """
    onnx_path = Path(onnx_path)
    if onnx_path.is_dir():
        onnx_path = _require_onnx(onnx_path)
    elif not onnx_path.is_file():
        raise FileNotFoundError(f"no ONNX file at {onnx_path}")
    groups: dict[str, list[str]] = {name: [] for name in GROUPS}
    for node in _load_graph(onnx_path).node:
        if node.op_type == "MatMul":
            groups[matmul_group(node.name)].append(node.name)
    require_projection_layers([node for name in PROJECTION_GROUPS for node in groups[name]],
                              _model_type_near(onnx_path), f"the MatMuls of {onnx_path}")
    return groups


def nodes_in(groups: dict[str, list[str]], names) -> list[str]:
    """Node names of the chosen groups, e.g. ``nodes_in(g, PROJECTION_GROUPS)``."""
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; accepted: {', '.join(groups)}")
    return [node for name in names for node in groups[name]]


def nodes_outside(groups: dict[str, list[str]], names) -> list[str]:
    """Node names of every group except the chosen ones (handy for ``nodes_to_exclude``)."""
    keep = set(nodes_in(groups, names))
    return [node for nodes in groups.values() for node in nodes if node not in keep]


def calibration_dataset(model_dir: str, onnx_dir: Path, texts: list[str], *, max_length: int = 128,
                        past_fraction: float = 0.5, prefill_rows: bool = True):
    """Calibration rows for static quantization of an exported decoder, as a ``datasets.Dataset``.

    Every row holds every input of the ONNX graph, with a non-empty
    ``past_key_values.<layer>.key/value`` (float32, ``[kv_heads, past_len, head_dim]``;
    the calibration reader adds the batch axis). An empty past cannot be used:
    Arrow drops the zero-length axis and ONNX Runtime then rejects the rank.
    Each text (first ``max_length`` tokens) gives:

    * a **continuation row**: the first ``past_fraction`` of the tokens run
      through the PyTorch model give a real key/value cache; the other tokens
      are the row's ``input_ids``, with ``position_ids`` continuing after the
      past and an ``attention_mask`` of ones over past + new tokens;
    * then a **prefill row** (``prefill_rows=True``): the whole text as
      ``input_ids`` from position 0, behind a one-slot past that the
      attention mask hides (as left padding does in a batch). Without it the
      first positions of a prompt, whose activations are often the largest,
      would never be seen by the ONNX graph, and their values would be
      clipped by the calibrated ranges.

    Use it with ``AutoCalibrationConfig.minmax(ds)`` and ``ORTQuantizer.fit``.
    Texts need at least 2 tokens.
    """
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("calibration_dataset needs at least one text, got none")
    if not 0.0 < float(past_fraction) < 1.0:
        raise ValueError(f"past_fraction must be strictly between 0 and 1, got {past_fraction}")
    if int(max_length) < 2:
        raise ValueError(f"max_length must be at least 2 (one past token, one new token), got {max_length}")
    graph_inputs = [i.name for i in _load_graph(_require_onnx(onnx_dir)).input]

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()

    def layers(cache):
        if hasattr(cache, "layers"):  # transformers >= 4.56: DynamicCache.layers[i].keys / .values
            return [(layer.keys, layer.values) for layer in cache.layers]
        return [(key, value) for key, value in cache]

    def finish(row):
        missing = [name for name in graph_inputs if name not in row]
        if missing:
            raise ValueError(f"cannot build calibration values for ONNX input(s) {missing} of {onnx_dir}; "
                             "was it exported from the same model as model_dir?")
        return {name: row[name][0] for name in graph_inputs}  # drop our batch axis

    rows = []
    with torch.inference_mode():
        for index, text in enumerate(texts):
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=int(max_length))["input_ids"]
            n = ids.shape[1]
            if n < 2:
                raise ValueError(f"text {index} has {n} token(s); calibration needs at least 2: {text[:40]!r}")
            n_past = min(n - 1, max(1, round(n * float(past_fraction))))
            cache = layers(model(input_ids=ids[:, :n_past], use_cache=True).past_key_values)
            row = {
                "input_ids": ids[:, n_past:].numpy(),
                "attention_mask": np.ones((1, n), dtype=np.int64),
                "position_ids": np.arange(n_past, n, dtype=np.int64)[None, :],
            }
            for layer, (key, value) in enumerate(cache):
                row[f"past_key_values.{layer}.key"] = key.float().numpy()
                row[f"past_key_values.{layer}.value"] = value.float().numpy()
            rows.append(finish(row))
            if prefill_rows:
                row = {
                    "input_ids": ids.numpy(),
                    "attention_mask": np.concatenate([np.zeros((1, 1), np.int64), np.ones((1, n), np.int64)], 1),
                    "position_ids": np.arange(n, dtype=np.int64)[None, :],
                }
                for layer, (key, value) in enumerate(cache):
                    shape = (1, key.shape[1], 1, key.shape[3])
                    row[f"past_key_values.{layer}.key"] = np.zeros(shape, np.float32)
                    row[f"past_key_values.{layer}.value"] = np.zeros((1, value.shape[1], 1, value.shape[3]),
                                                                     np.float32)
                rows.append(finish(row))
    dataset = Dataset.from_list(rows)
    return dataset.with_format("numpy")


# --------------------------------------------------------------------------
# Weight-only block-wise quantization (ONNX Runtime MatMulNBits)
# --------------------------------------------------------------------------

def _fold_transposed_weights(model) -> int:
    """Replace ``Transpose(initializer)`` feeding a MatMul by a transposed initializer; return how many.

    The export ties the output layer to the embedding by computing
    ``lm_head`` weight = Transpose(embedding) in the graph; MatMulNBits only
    quantizes a MatMul whose weight is a constant, so this makes ``lm_head``
    quantizable (at the cost of one more copy of that matrix on disk).
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    folded = 0
    for node in list(graph.node):
        if node.op_type != "Transpose" or node.input[0] not in inits:
            continue
        users = consumers.get(node.output[0], [])
        if not users or any(u.op_type != "MatMul" or u.input[1] != node.output[0] for u in users):
            continue
        perm = [a.ints for a in node.attribute if a.name == "perm"]
        array = numpy_helper.to_array(inits[node.input[0]])
        array = array.transpose(list(perm[0])) if perm else array.T
        graph.initializer.append(numpy_helper.from_array(array.copy(), name=node.output[0]))
        graph.node.remove(node)
        folded += 1
    return folded


def weight_only_int8(onnx_dir: Path, save_dir: Path, *, bits: int = 8, block_size: int = 32,
                     is_symmetric: bool = False, accuracy_level: int | None = None,
                     exclude_groups=(), quantize_lm_head: bool = False, file_name: str = ONNX_FILE) -> Path:
    """Weight-only block-wise quantization of the exported model's MatMuls; return ``save_dir``.

    ONNX Runtime's ``MatMulNBitsQuantizer`` replaces each MatMul whose weight is
    a constant by ``MatMulNBits``: weights in ``bits`` (8 or 4) with one
    float scale and zero point per ``block_size`` consecutive input values;
    activations stay float32. Writes ``save_dir/model.onnx`` plus config and
    tokenizer, so ``load_ort(save_dir)`` works.

    Args:
        bits: 8 or 4.
        block_size: values per scale, a power of two >= 16 (smaller blocks: more
            accurate, slightly larger).
        is_symmetric: symmetric blocks (no zero point).
        accuracy_level: MatMulNBits compute type (None: the kernel's default;
            4: int8 compute, which quantizes activations per block).
        exclude_groups: MatMul groups (see ``matmul_groups``) to leave in float32.
        quantize_lm_head: also quantize the output layer; it shares the
            embedding's weights in the export, so this stores a second
            (quantized) copy of that matrix.
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    if int(bits) not in _WEIGHT_BITS or isinstance(bits, bool):
        raise ValueError(f"bits must be one of {_WEIGHT_BITS} (MatMulNBits weight-only), got {bits!r}")
    block_size = int(block_size)
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two, 16 or more (MatMulNBits), got {block_size}")
    onnx_dir, save_dir = Path(onnx_dir), Path(save_dir)
    source = _require_onnx(onnx_dir, file_name)
    exclude = nodes_in(matmul_groups(source), list(exclude_groups)) if exclude_groups else []

    model = onnx.load(str(source))
    if quantize_lm_head:
        _fold_transposed_weights(model)
    with _quiet(), _staging(save_dir) as staged:
        quantizer = MatMulNBitsQuantizer(
            model, bits=int(bits), block_size=block_size, is_symmetric=bool(is_symmetric),
            accuracy_level=accuracy_level, nodes_to_exclude=exclude, op_types_to_quantize=("MatMul",),
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(staged / ONNX_FILE), use_external_data_format=False)
        _copy_side_files(onnx_dir, staged)
    return save_dir

# --------------------------------------------------------------------------
# Simulated dynamic INT8 in PyTorch (for quick sensitivity sweeps)
# --------------------------------------------------------------------------

SIMULATED_GROUPS = PROJECTION_GROUPS + ("lm_head",)  # the groups that are nn.Linear layers in PyTorch


def fake_quantize_activation_uint8(x):
    """``x`` rounded as ONNX Runtime's ``DynamicQuantizeLinear`` rounds it, returned as floats.

    One asymmetric uint8 range per tensor, from the tensor's own min and max
    (both widened to include 0): scale = (max - min) / 255, zero point =
    round(-min / scale); then x -> (clamp(round(x / scale) + zero point, 0, 255)
    - zero point) * scale. One large value makes the scale coarse for all the others.
    """
    import torch

    low = torch.clamp(x.min(), max=0.0)
    high = torch.clamp(x.max(), min=0.0)
    scale = (high - low) / 255.0
    # An all-zero tensor: any scale represents it exactly; 1 avoids 0/0 without a host sync per call.
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero_point = torch.round(-low / scale).clamp(0, 255)
    return (torch.round(x / scale).add(zero_point).clamp(0, 255) - zero_point) * scale


def fake_quantize_weight_int8(weight):
    """An ``nn.Linear`` weight ``[out, in]`` rounded to symmetric int8, one scale per output channel
    (absmax / 127, values in [-127, 127]), as the dynamic INT8 export stores it; returned as floats."""
    import torch

    scale = weight.abs().amax(dim=1, keepdim=True) / 127.0
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return torch.round(weight / scale).clamp(-127, 127) * scale


@contextlib.contextmanager
def simulated_dynamic_int8(model, groups):
    """Inside the block, the ``nn.Linear`` layers of ``groups`` compute like dynamic INT8.

    Their weights are rounded per output channel to int8 and every input is
    rounded per tensor to uint8 (``fake_quantize_*`` above), then multiplied in
    float32. This reproduces the rounding of dynamic INT8 without
    building an ONNX model, so one layer type can be scored in the time of one
    perplexity evaluation. It is a simulation: nothing gets faster, and the
    integer kernels of ONNX Runtime can differ slightly (tests/test_quantization.py
    compares the two). ``groups``: names from ``SIMULATED_GROUPS``. The model is
    restored on exit, also after an error.
    """
    import torch.nn.functional as F
    from torch import nn

    groups = [groups] if isinstance(groups, str) else list(groups)
    unknown = [g for g in groups if g not in SIMULATED_GROUPS]
    if unknown or not groups:
        raise ValueError(f"cannot simulate group(s) {unknown or groups}; accepted: {', '.join(SIMULATED_GROUPS)} "
                         "(the attention products are not nn.Linear layers)")
    linear = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    model_type = getattr(getattr(model, "config", None), "model_type", None) or type(model).__name__
    require_projection_layers([name for name, _ in linear], model_type,
                              f"simulated_dynamic_int8({', '.join(groups)})", wanted=groups)
    chosen = [module for name, module in linear if name.rsplit(".", 1)[-1] in groups]

    def rounded_forward(layer, weight):
        return lambda x: F.linear(fake_quantize_activation_uint8(x), weight, layer.bias)

    try:
        for layer in chosen:
            layer.forward = rounded_forward(layer, fake_quantize_weight_int8(layer.weight.detach()))
        yield len(chosen)
    finally:
        for layer in chosen:
            layer.__dict__.pop("forward", None)


# Public names for notebooks that call ORTQuantizer themselves (Exercise 1): silence the
# libraries' chatter, and copy config/tokenizer files next to a quantized graph so load_ort works.
quiet = _quiet
copy_side_files = _copy_side_files


__all__ = [
    "ATTENTION_PROJECTIONS", "CALIBRATION_TEXTS", "GROUPS", "MLP_PROJECTIONS", "ONNX_FILE", "PROJECTION_GROUPS",
    "PROJECTION_MODEL_TYPES", "QUANTIZED_FILE", "UnsupportedModelError", "require_projection_layers",
    "calibration_dataset", "copy_side_files", "cpu_instruction_set", "dir_size_mb", "export_onnx",
    "fake_quantize_activation_uint8", "fake_quantize_weight_int8", "is_complete_export", "load_ort", "matmul_group",
    "matmul_groups", "nodes_in", "nodes_outside", "ort_num_threads", "quiet",
    "SIMULATED_GROUPS", "simulated_dynamic_int8", "weight_only_int8",
]
