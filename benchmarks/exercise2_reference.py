"""Exercise 2's solution against an independent computation, on the embedded model.

The solution's ``evaluate_perplexity`` (batched, right-padded, one forward pass per batch) runs
on all of ``EVAL_TEXTS``; the reference feeds each text one token at a time through the KV
cache and sums ``-log p(next token)`` in float64. The same is done for
``sliding_window_perplexity`` on a long text, against windows fed token by token. Both figures
must agree to 4 significant figures (relative difference below 5e-5).

    .venv/bin/python benchmarks/exercise2_reference.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script: make `benchmarks` and `tools` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, pin_threads, row  # noqa: E402

NAME = "exercise2_reference"
BATCH_SIZE = 4           # the full profile's eval_batch_size
SLIDING_WORDS = 600      # long text for the sliding-window check (about 800 tokens)
SLIDING_MAX_LENGTH = 256
SLIDING_STRIDE = 128


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tools.exercise2_reference import (
        REL_TOL, kv_cache_perplexity, kv_cache_sliding_perplexity, load_solution,
    )

    threads = pin_threads()
    solution = load_solution()
    helpers = solution["helpers"]
    from helpers.texts import EVAL_TEXTS, long_text

    folder = helpers.EMBEDDED_DIR
    print(f"[{NAME}] {machine()}; torch threads pinned to {threads}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    texts = list(EVAL_TEXTS)
    rows = []

    def compare(label, got, want, t_got, t_want, method_got, method_want):
        rel_loss = abs(got["avg_loss"] - want["avg_loss"]) / want["avg_loss"]
        rel_ppl = abs(got["perplexity"] - want["perplexity"]) / want["perplexity"]
        agree = rel_loss < REL_TOL and rel_ppl < REL_TOL and got["n_tokens"] == want["n_tokens"]
        print(f"[{NAME}] {label}: solution ppl {got['perplexity']:.6f} (loss {got['avg_loss']:.7f}, "
              f"{got['n_tokens']} tokens, {t_got:.1f} s) | reference ppl {want['perplexity']:.6f} "
              f"(loss {want['avg_loss']:.7f}, {want['n_tokens']} tokens, {t_want:.1f} s) | "
              f"relative difference ppl {rel_ppl:.2e}, loss {rel_loss:.2e} -> "
              f"{'AGREE to 4 significant figures' if agree else 'DISAGREE'}", flush=True)
        rows.extend([
            row(NAME, f"{label}: perplexity, solution", got["perplexity"], "", method_got),
            row(NAME, f"{label}: perplexity, reference", want["perplexity"], "", method_want),
            row(NAME, f"{label}: relative difference in perplexity", rel_ppl, "ratio", "|solution - reference| / reference"),
            row(NAME, f"{label}: relative difference in loss", rel_loss, "ratio", "|solution - reference| / reference"),
            row(NAME, f"{label}: predicted tokens (solution = reference)", got["n_tokens"], "tokens",
                f"equal: {got['n_tokens'] == want['n_tokens']}"),
            row(NAME, f"{label}: solution time", t_got, "s", f"one run, {threads} threads"),
            row(NAME, f"{label}: reference time", t_want, "s", f"one run, {threads} threads"),
        ])
        return agree

    got, t_got = _timed(lambda: solution["evaluate_perplexity"](model, tokenizer, texts, batch_size=BATCH_SIZE))
    want, t_want = _timed(lambda: kv_cache_perplexity(model, tokenizer, texts))
    ok_eval = compare("embedded, all EVAL_TEXTS", got, want, t_got, t_want,
                      f"solution evaluate_perplexity, batch_size={BATCH_SIZE}, right padding, float32",
                      "token by token through the KV cache, float64 sum of -log p")

    text = long_text(SLIDING_WORDS)
    got, t_got = _timed(lambda: solution["sliding_window_perplexity"](
        model, tokenizer, text, max_length=SLIDING_MAX_LENGTH, stride=SLIDING_STRIDE))
    want, t_want = _timed(lambda: kv_cache_sliding_perplexity(model, tokenizer, text, SLIDING_MAX_LENGTH, SLIDING_STRIDE))
    ok_sliding = compare(f"embedded, sliding window {SLIDING_MAX_LENGTH}/{SLIDING_STRIDE}", got, want, t_got, t_want,
                         "solution sliding_window_perplexity (masked overlap)",
                         "each window fed token by token via the KV cache, new tokens scored")
    if not (ok_eval and ok_sliding):
        raise AssertionError(f"{NAME}: the solution and the independent computation disagree (see above)")
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)
