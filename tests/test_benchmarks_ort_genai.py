"""The ONNX Runtime GenAI row of benchmarks/quantization_study.py: skip message, child protocol, and,
where benchmarks/.ort-genai-venv is installed, the real builder and child on the embedded model."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import ort_genai_reference as genai

FAKE_CHILD = r'''
import json, sys
M = "@@reference_child "
args = json.loads(sys.argv[1])
print(M + json.dumps({"ready": True, "threads": args["threads"], "prompt_tokens": len(args["prompt_ids"]),
                      "onnxruntime_genai_version": "fake"}), flush=True)
for line in sys.stdin:
    c = line.strip()
    if c == "quit":
        break
    if c == "warmup":
        print(M + json.dumps({"warmup": True, "tokens": [1]}), flush=True)
    elif c == "round":
        print(M + json.dumps({"ttft_s": 0.02, "full_s": 0.33, "prefill_s": 0.02}), flush=True)
    elif c.startswith("perplexity "):
        print(M + json.dumps({"error": "no logits here"}), flush=True)
'''


def test_not_installed_means_a_skip_message_naming_the_script(tmp_path, monkeypatch):
    assert genai.venv_python(tmp_path) is None
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    assert genai.venv_python(tmp_path) is None  # a venv without onnxruntime_genai is not installed
    monkeypatch.setenv("ORT_GENAI_VENV", str(tmp_path))
    assert "bash benchmarks/build_ort_genai.sh" in genai.skip_message()
    with pytest.raises(FileNotFoundError, match="build_ort_genai.sh"):
        genai.OrtGenaiRunner("model_dir", [1], 4, 2)
    with pytest.raises(FileNotFoundError, match="build_ort_genai.sh"):
        genai.build_model(tmp_path, tmp_path / "out", 2)


def test_runner_speaks_the_reference_protocol(monkeypatch):
    monkeypatch.setattr(genai, "CHILD", FAKE_CHILD)
    with genai.OrtGenaiRunner("model_dir", [5, 6, 7], 32, 2, python=Path(sys.executable)) as runner:
        assert runner.info["prompt_tokens"] == 3 and runner.info["threads"] == 2
        runner.warmup()
        for _ in range(3):
            runner.round()
        summary = runner.summary()
        assert summary["label"] == genai.LABEL and summary["rounds"] == 3
        assert summary["decode_tok_s"] == pytest.approx(31 / 0.31)
        with pytest.raises(RuntimeError, match="no logits here"):
            runner.perplexity([[1, 2, 3]])


@pytest.mark.skipif(genai.venv_python() is None, reason="ONNX Runtime GenAI is not installed (bash benchmarks/build_ort_genai.sh)")
def test_the_built_model_decodes_and_scores_like_the_model_it_came_from(tmp_path):
    """The real builder and child on the embedded model: 8-bit weights, so the perplexity stays within
    2% of float32 PyTorch's; a shifted target or a wrong softmax would be far off; and a 4-token
    round decodes the prompt's greedy continuation's length."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import helpers
    from benchmarks.quantization_study import perplexity

    folder = genai.build_model(Path(helpers.EMBEDDED_DIR), tmp_path / "genai", 2)
    assert (folder / "genai_config.json").is_file() and not (tmp_path / "genai.partial").exists()
    tokenizer = AutoTokenizer.from_pretrained(helpers.EMBEDDED_DIR)
    texts = list(helpers.EVAL_TEXTS[:4])
    model = AutoModelForCausalLM.from_pretrained(helpers.EMBEDDED_DIR, dtype=torch.float32).eval()
    want, want_tokens = perplexity(model, tokenizer, texts)
    with genai.OrtGenaiRunner(folder, tokenizer(helpers.REFERENCE_PROMPT).input_ids, 4, 2) as runner:
        got, tokens = runner.perplexity([tokenizer(t).input_ids for t in texts])
        runner.warmup()
        answer = runner.round()
    assert tokens == want_tokens
    assert got == pytest.approx(want, rel=0.02)
    assert 0 < answer["ttft_s"] < answer["full_s"]
