"""Pieces of benchmarks/quantization_study.py: what stops each row, the frontier, the bare decode loop.

Fast: stand-in tables, and the tiny model's ONNX export for the loop.
"""
from __future__ import annotations

import pytest

from benchmarks import quantization_study as study


def _row(ppl_pct, tok_s, bound_pct=30.0, **extra):
    return {"variant": extra.pop("variant", "v"), "delta_ppl_pct": ppl_pct, "decode_tok_s": tok_s,
            "pct_of_bound": bound_pct, **extra}


def _table(with_reference=True):
    table = {
        "pytorch_fp32": _row(0.0, 30.0, 55.0),
        "fast_but_wrong": _row(25.0, 95.0),
        "slow_but_exact": _row(0.4, 60.0),
        "good": _row(1.0, 90.0),
    }
    if with_reference:
        table["llama_cpp"] = _row(0.4, 100.0, 44.0)
    reference = table.get("llama_cpp", {}).get("decode_tok_s", float("nan"))
    for entry in table.values():
        entry["pct_of_llama_cpp"] = 100 * entry["decode_tok_s"] / reference
    return table


def test_verdicts_name_the_target_that_stops_each_row():
    out = study.verdicts(_table())
    assert "llama_cpp" not in out
    assert out["fast_but_wrong"].startswith("stopped by perplexity +25.0%") and "speed" not in out["fast_but_wrong"]
    assert out["slow_but_exact"].startswith("stopped by speed 60% of llama.cpp")
    assert "llama.cpp 44%" in out["slow_but_exact"]
    assert out["good"].startswith("meets both") and "90% of llama.cpp" in out["good"]
    assert "perplexity" not in out["pytorch_fp32"] and "speed 30%" in out["pytorch_fp32"]


def test_verdicts_without_llama_cpp_judge_perplexity_only():
    out = study.verdicts(_table(with_reference=False))
    assert out["slow_but_exact"].startswith("meets the perplexity limit") and "no llama.cpp row" in out["slow_but_exact"]
    assert out["fast_but_wrong"].startswith("stopped by perplexity")


def test_frontier_keeps_only_rows_no_other_row_beats_on_both():
    points = {name: (e["delta_ppl_pct"], e["decode_tok_s"]) for name, e in _table().items()}
    # llama_cpp (0.4%, 100) beats slow_but_exact (0.4%, 60) and good (1.0%, 90); pytorch_fp32 has 0%
    assert study.frontier(points) == ["pytorch_fp32", "llama_cpp"]
    points["llama_cpp"] = (2.0, 100.0)
    assert study.frontier(points) == ["pytorch_fp32", "slow_but_exact", "good", "llama_cpp"]


def test_plot_frontier_writes_a_png(tmp_path):
    table = _table()
    table["no_speed"] = {"variant": "perplexity only", "delta_ppl_pct": 3.0}
    path = study.plot_frontier(table, tmp_path / "plots" / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


pytest.importorskip("optimum.onnxruntime")


def test_bare_loop_decodes_what_generate_decodes(tiny_dir, tmp_path):
    """The bare ONNX Runtime loop is the same greedy decoding as transformers' generate, step for step."""
    import torch
    from transformers import AutoTokenizer

    import helpers
    from helpers import quantization as q

    onnx_dir = q.export_onnx(str(tiny_dir), tmp_path / "onnx")
    model = q.load_ort(onnx_dir)
    encoded = AutoTokenizer.from_pretrained(onnx_dir)(helpers.REFERENCE_PROMPT, return_tensors="pt")
    want = model.generate(**encoded, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    loop = study.BareGreedyLoop(model)
    got = loop.generate(**encoded, max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(got, want), (got, want)
    with pytest.raises(ValueError, match="batch 1 only"):
        loop.generate(input_ids=torch.ones((2, 3), dtype=torch.long), max_new_tokens=1)


def test_four_bit_on_source_grid_gives_q4_1_weights_back_exactly(tmp_path, one_matmul_model):
    """Blocks of 32 on Q4_1 grids (own step, own float minimum, not a whole number of steps from
    zero): the float zero point gives every weight back, where ONNX Runtime's integer zero point
    rounds them again; weights off such a grid are refused."""
    import numpy as np
    import onnxruntime as ort

    from helpers import quantization as q

    rng = np.random.default_rng(1)
    k, n = 64, 3
    weight = np.empty((k, n), np.float32)
    for column in range(n):
        for start in range(0, k, 32):
            step, minimum = rng.uniform(0.005, 0.05), rng.uniform(-0.4, -0.1)
            codes = rng.permutation(np.tile(np.arange(16), 2))  # every level used
            weight[start:start + 32, column] = minimum + step * codes
    source = one_matmul_model(tmp_path / "fp32", weight)
    identity = {"X": np.eye(k, dtype=np.float32)}  # identity in: the weights out

    def rebuilt(folder):
        session = ort.InferenceSession(str(folder / q.ONNX_FILE), providers=["CPUExecutionProvider"])
        return session.run(None, identity)[0]

    exact = study.four_bit_on_source_grid(q, source, tmp_path / "grid")
    shifted = q.weight_only_int8(source, tmp_path / "ort4", bits=4, block_size=32)
    assert np.abs(rebuilt(exact) - weight).max() < 1e-6
    assert np.abs(rebuilt(shifted) - weight).max() > 1e-3   # the integer zero point's second rounding

    off_grid = weight + rng.normal(0, 1e-3, weight.shape).astype(np.float32)
    with pytest.raises(ValueError, match="not on a 16-level grid"):
        study.four_bit_on_source_grid(q, one_matmul_model(tmp_path / "off", off_grid), tmp_path / "off_grid")
