"""Exercise 2's solution against an independent computation, on the tiny model.

The solution cells of ``source/exercise2/exercise2.ipynb`` are executed as they are (their
``### BEGIN SOLUTION`` markers are comments). Their batched, padded figures are compared with
a computation that shares none of their bookkeeping: each text is fed to the model one token at
a time through the KV cache, and ``-log p(next token)`` is summed in float64. Agreement is
required to 4 significant figures (relative 5e-5) on loss and perplexity, with equal token counts.

``benchmarks/exercise2_reference.py`` runs the same comparison on the embedded model.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tools.exercise2_reference import (
    REL_TOL, kv_cache_perplexity, kv_cache_sliding_perplexity, load_solution,
)


def assert_agree(got: dict, want: dict, label: str) -> None:
    assert got["n_tokens"] == want["n_tokens"], f"{label}: n_tokens {got['n_tokens']} vs {want['n_tokens']}"
    for key in ("avg_loss", "perplexity"):
        assert got[key] == pytest.approx(want[key], rel=REL_TOL), f"{label}: {key} {got[key]} vs {want[key]}"


@pytest.fixture(scope="module")
def solution():
    return load_solution()


@pytest.fixture(scope="module")
def tiny(solution):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    helpers = solution["helpers"]
    if not (Path(helpers.TINY_DIR) / "model.safetensors").is_file():
        pytest.skip(f"tiny model missing at {helpers.TINY_DIR}: run the course set-up (tools/prepare_models.py)")
    tokenizer = AutoTokenizer.from_pretrained(helpers.TINY_DIR)
    model = AutoModelForCausalLM.from_pretrained(helpers.TINY_DIR, dtype=torch.float32).eval()
    return tokenizer, model


def _unequal_texts():
    from helpers.texts import eval_texts

    t = eval_texts(5)
    return [t[0][:400], t[1], t[2][:150], t[3], t[4][:900]]


@pytest.mark.parametrize("batch_size", [2, 3])
def test_evaluate_perplexity_matches_kv_cache(solution, tiny, batch_size):
    tokenizer, model = tiny
    texts = _unequal_texts()
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert len(set(lengths)) == len(lengths), "the texts must have unequal lengths so padding is exercised"
    got = solution["evaluate_perplexity"](model, tokenizer, texts, batch_size=batch_size)
    assert_agree(got, kv_cache_perplexity(model, tokenizer, texts), f"batch_size={batch_size}")
    assert got["n_tokens"] == sum(lengths) - len(texts)


def test_evaluate_perplexity_truncated_matches_kv_cache(solution, tiny):
    tokenizer, model = tiny
    texts = _unequal_texts()
    got = solution["evaluate_perplexity"](model, tokenizer, texts, batch_size=2, max_length=40)
    assert_agree(got, kv_cache_perplexity(model, tokenizer, texts, max_length=40), "max_length=40")


@pytest.mark.parametrize("max_length,stride", [(64, 32), (64, 64), (50, 20), (48, 47)])
def test_sliding_window_matches_direct(solution, tiny, max_length, stride):
    from helpers.texts import long_text

    tokenizer, model = tiny
    text = long_text(250)
    got = solution["sliding_window_perplexity"](model, tokenizer, text, max_length=max_length, stride=stride)
    assert_agree(got, kv_cache_sliding_perplexity(model, tokenizer, text, max_length, stride),
                 f"max_length={max_length}, stride={stride}")


def test_sliding_window_covering_text_equals_evaluation(solution, tiny):
    from helpers.texts import eval_texts

    tokenizer, model = tiny
    text = eval_texts(1)[0]
    n = len(tokenizer(text)["input_ids"])
    got = solution["sliding_window_perplexity"](model, tokenizer, text, max_length=n + 5, stride=16)
    assert_agree(got, kv_cache_perplexity(model, tokenizer, [text]), "one window")
    assert got["n_tokens"] == n - 1
