"""An engine from outside the course's environment, run by the quantization study as a child process.

llama.cpp (``llama_cpp_reference``) and ONNX Runtime GenAI (``ort_genai_reference``) each live in
a virtual environment of their own under ``benchmarks/``, because they need packages (or package
versions) that the course's ``.venv/`` does not have. The study talks to each through the same
protocol, kept here once:

* the child is ``python -c <code> <json arguments>``, started with the engine venv's interpreter;
  its code is ``CHILD_PRELUDE`` + the engine's part (which loads the model, defines
  ``generate(n) -> (seconds to the first token, seconds in all, token ids)``,
  ``logits_of(ids, longest)`` returning float64 logits ``[len(ids) - 1, vocab]`` in which row i
  predicts token i + 1, and ``warmup_info(tokens) -> dict``, and says ``ready``) + ``CHILD_LOOP``;
* commands, one a line on stdin: ``warmup``; ``round`` (an N-token and a 1-token generation);
  ``perplexity <json list of token-id lists>``; ``quit``;
* answers, one JSON object a line on stdout after ``MARKER`` (the engine may print lines of its
  own); an answer with ``error`` reports a failed command.

``EngineChild`` is the course side: ``with Engine(...) as e: e.warmup(); e.round() ...;
e.summary(); e.perplexity(token_ids)``. Its timing rule is the study's: decode tokens/s =
(N-1) / (median t_N - median t_1).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
from pathlib import Path

from helpers.paths import REPO_ROOT

MARKER = "@@reference_child "   # prefix of a child's answer lines

CHILD_PRELUDE = f"""
import json, sys, time
import numpy as np

MARKER = {MARKER!r}
""" + r'''
args = json.loads(sys.argv[1])

def say(obj):
    sys.stdout.write(MARKER + json.dumps(obj) + "\n")
    sys.stdout.flush()
'''

CHILD_LOOP = r'''
n = int(args["new_tokens"])
for line in sys.stdin:
    command = line.strip()
    if command == "quit":
        break
    try:
        if command == "warmup":
            first, total, out = generate(n)
            say(dict(warmup_info(out), warmup=True, tokens=out))
        elif command == "round":
            first, total, out = generate(n)
            _, one, _ = generate(1)
            say({"ttft_s": first, "full_s": total, "prefill_s": one})
        elif command.startswith("perplexity "):
            sequences = json.loads(command[len("perplexity "):])
            longest = max(len(ids) for ids in sequences)
            nll, count = 0.0, 0
            for ids in sequences:
                logits = logits_of(ids, longest)  # row i predicts token i + 1
                if logits.shape[0] != len(ids) - 1:
                    raise ValueError(f"logits for {logits.shape[0]} positions, expected {len(ids) - 1}")
                top = logits.max(axis=1, keepdims=True)
                log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
                nll += float((log_z - logits[np.arange(len(ids) - 1), ids[1:]]).sum())
                count += len(ids) - 1
            say({"nll": nll, "tokens": count})
        else:
            say({"error": f"unknown command {command!r}"})
    except Exception as exc:
        say({"error": f"{command.split(' ')[0]}: {type(exc).__name__}: {exc}"})
'''


def venv_python(venv: Path, installed: str) -> Path | None:
    """``venv``'s interpreter, or None when the venv is missing or lacks ``installed`` (a glob under the venv)."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    return python if python.is_file() and any(venv.glob(installed)) else None


def parse_child_output(text: str) -> list[dict]:
    """The JSON answers in a child's output (lines starting with ``MARKER``), in order."""
    return [json.loads(line[len(MARKER):]) for line in text.splitlines() if line.startswith(MARKER)]


def _iqr(values) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(sorted(values), n=4, method="inclusive")
    return q[2] - q[0]


def summarize(rounds: list[dict], new_tokens: int, info: dict | None = None, label: str = "") -> dict:
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


class EngineChild:
    """The course side of one engine child. Subclasses set ``label`` and return their code from ``child_code``."""

    label = "engine"

    def __init__(self, python: Path, args: dict):
        self.python = Path(python)
        self.args = dict(args)
        self.info: dict = {}
        self.rounds: list[dict] = []
        self.error: str | None = None   # set by a caller that gave up on this child
        self.proc = None

    def child_code(self) -> str:
        raise NotImplementedError

    def __enter__(self):
        env = dict(os.environ, OMP_NUM_THREADS=str(self.args.get("threads", 1)))
        self.proc = subprocess.Popen([str(self.python), "-c", self.child_code(), json.dumps(self.args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=str(REPO_ROOT))
        self.info = self._answer()
        return self

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
        """Token-weighted perplexity of the engine on these token-id lists (the course's tokenizer's ids),
        every position but the first predicted; and the token count."""
        sequences = [[int(t) for t in ids] for ids in sequences if len(ids) > 1]
        if not sequences:
            raise ValueError("need at least one sequence of 2 or more tokens")
        answer = self._ask("perplexity " + json.dumps(sequences))
        return math.exp(answer["nll"] / answer["tokens"]), int(answer["tokens"])
