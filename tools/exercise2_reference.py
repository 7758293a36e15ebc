"""Exercise 2's solution and an independent computation to check it against.

``load_solution`` executes the solution cells of ``source/exercise2/exercise2.ipynb`` as they
are. The ``kv_cache_*`` functions share none of their bookkeeping: each text is fed to the
model one token at a time through the KV cache, and ``-log p(next token)`` is summed in float64.
``tests/test_exercise2_reference.py`` (tiny model) and ``benchmarks/exercise2_reference.py``
(embedded model) require agreement to ``REL_TOL``.
"""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import torch

from helpers.paths import REPO_ROOT

NOTEBOOK = REPO_ROOT / "source" / "exercise2" / "exercise2.ipynb"
SOLUTION_CELLS = ("cross_entropy_from_logits", "evaluate_perplexity", "sliding_window_perplexity")
REL_TOL = 5e-5  # 4 significant figures


def load_solution(notebook: Path = NOTEBOOK) -> dict:
    """Namespace holding the notebook's setup cell and solution functions, executed from source."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(notebook, as_version=4).cells}
    namespace: dict = {"__name__": "exercise2_solution"}
    for grade_id in ("setup",) + SOLUTION_CELLS:
        if grade_id not in cells:
            raise KeyError(f"{notebook} has no cell {grade_id!r}: rebuild it with python -m tools.notebook_builder")
        exec(compile(cells[grade_id], f"{notebook.name}:{grade_id}", "exec"), namespace)
    return namespace


def kv_cache_nll(model, ids: list[int], score_from: int = 1) -> tuple[float, int]:
    """Sum of ``-log p(ids[t] | ids[:t])`` for ``t >= score_from``, one token at a time via the KV cache."""
    device = next(model.parameters()).device
    total, count, past = 0.0, 0, None
    with torch.inference_mode():
        for t in range(len(ids) - 1):
            out = model(input_ids=torch.tensor([[ids[t]]], device=device), past_key_values=past, use_cache=True)
            past = out.past_key_values
            if t + 1 >= score_from:
                total -= float(torch.log_softmax(out.logits[0, -1].double(), dim=-1)[ids[t + 1]])
                count += 1
    return total, count


def kv_cache_perplexity(model, tokenizer, texts, max_length=None) -> dict:
    """Token-weighted loss over ``texts``, each fed token by token (no batching, no padding)."""
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        if max_length is not None:
            ids = ids[:max_length]
        nll, n = kv_cache_nll(model, ids)
        total += nll
        count += n
    return {"avg_loss": total / count, "perplexity": math.exp(total / count), "n_tokens": count}


def kv_cache_sliding_perplexity(model, tokenizer, text, max_length, stride) -> dict:
    """Sliding window computed directly: each window [b, b + max_length) is fed token by token
    from its start, and only tokens no earlier window reached are scored (no label masking)."""
    ids = tokenizer(text)["input_ids"]
    total, count, scored_up_to = 0.0, 0, 1
    for begin in range(0, len(ids), stride):
        end = min(begin + max_length, len(ids))
        nll, n = kv_cache_nll(model, ids[begin:end], score_from=max(scored_up_to - begin, 1))
        total += nll
        count += n
        scored_up_to = end
        if end == len(ids):
            break
    return {"avg_loss": total / count, "perplexity": math.exp(total / count), "n_tokens": count}
