"""helpers.quantization on the tiny model: export, ORT sessions, MatMul groups, calibration, INT8 variants.

The tiny model (2 layers, hidden size 64, 3M parameters, random weights) is
exported once per module; every test reads that export. About 20 s in all on
two cores.
"""
from __future__ import annotations

import functools
import importlib
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optimum.onnxruntime")
pytest.importorskip("onnx_ir")  # MatMulNBitsQuantizer needs it

import onnx  # noqa: E402
import torch  # noqa: E402

import helpers  # noqa: E402
from benchmarks import int8_reference as int8  # noqa: E402
from helpers import quantization as q  # noqa: E402

N_LAYERS = 2
NEW_TOKENS = 8


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def export(tiny_dir, tmp_path_factory):
    """One export of the tiny model, with the seconds it took."""
    target = tmp_path_factory.mktemp("onnx") / "tiny"
    start = time.perf_counter()
    q.export_onnx(str(tiny_dir), target)
    return target, time.perf_counter() - start


@pytest.fixture(scope="module")
def onnx_dir(export):
    return export[0]


@pytest.fixture(scope="module")
def tokenizer(onnx_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(onnx_dir)


@pytest.fixture(scope="module")
def pytorch_model(tiny_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def ort_fp32(onnx_dir):
    return q.load_ort(onnx_dir)


@pytest.fixture(scope="module")
def prompt(tokenizer):
    return tokenizer(helpers.REFERENCE_PROMPT, return_tensors="pt")


def _logits(model, encoded) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.float()


def _generate(model, encoded, new_tokens=NEW_TOKENS) -> torch.Tensor:
    with torch.inference_mode():
        return model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)


def _graph(path: Path):
    return onnx.load(str(path), load_external_data=False).graph


# ---------------------------------------------------------------- export and load

def test_export_writes_a_loadable_folder(onnx_dir, tokenizer):
    """Check that the export holds the graph, config and a tokenizer that gives only what generate accepts."""
    for name in ("model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (onnx_dir / name).is_file(), f"export_onnx did not write {name}"
    assert set(tokenizer("hello world").keys()) == {"input_ids", "attention_mask"}
    leftovers = [p.name for p in onnx_dir.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary folders left beside the export: {leftovers}"


def test_ort_fp32_logits_match_pytorch(ort_fp32, pytorch_model, prompt):
    """Check that ONNX Runtime float32 gives PyTorch's logits and greedy tokens."""
    want, got = _logits(pytorch_model, prompt), _logits(ort_fp32, prompt)
    assert got.shape == want.shape
    # Same float32 arithmetic in another order: differences of ~1e-7 are measured here (logits
    # of magnitude ~1); 1e-4 leaves room for other CPUs' kernels and is far below the ~0.1
    # differences a wrong graph (positions, mask, weights) produces.
    assert (got - want).abs().max().item() < 1e-4
    assert torch.equal(_generate(ort_fp32, prompt), _generate(pytorch_model, prompt))


def test_ort_generates_a_left_padded_batch_like_pytorch(ort_fp32, pytorch_model, tokenizer):
    """Check that batched generate (left padding, as the tokenizer pads) agrees with PyTorch."""
    tokenizer.padding_side = "left"
    batch = tokenizer([helpers.REFERENCE_PROMPT, "Hello"], return_tensors="pt", padding=True)
    assert torch.equal(_generate(ort_fp32, batch), _generate(pytorch_model, batch))


def test_ort_generate_runs_torch_on_one_thread_and_restores_it(onnx_dir, prompt):
    """Check that an ORT model's generate runs its steps with torch at GENERATE_TORCH_THREADS
    (torch's pool otherwise competes with ONNX Runtime's for the cores) and gives the setting
    back afterwards, also when generate raises."""
    model = q.load_ort(onnx_dir, num_threads=2)
    seen = []
    forward = model.forward

    @functools.wraps(forward)  # keeps forward's signature, which generate inspects to validate its arguments
    def recording_forward(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(*args, **kwargs)

    model.forward = recording_forward
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = model.generate(**prompt, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        assert out.shape[1] == prompt["input_ids"].shape[1] + 3
        assert seen and set(seen) == {q.GENERATE_TORCH_THREADS}, seen
        assert torch.get_num_threads() == 2
        with pytest.raises(Exception):
            model.generate(input_ids=prompt["input_ids"], max_new_tokens=-1)
        assert torch.get_num_threads() == 2
        with q.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert model.model.get_session_options().intra_op_num_threads == 2  # ONNX Runtime keeps its threads


def test_load_ort_uses_the_requested_threads(onnx_dir):
    """Check that load_ort passes num_threads (default: torch's setting) to the session."""
    assert q.load_ort(onnx_dir, num_threads=1).model.get_session_options().intra_op_num_threads == 1
    expected = torch.get_num_threads()
    assert q.load_ort(onnx_dir).model.get_session_options().intra_op_num_threads == expected
    assert q.ort_num_threads() == expected
    with pytest.raises(ValueError, match="num_threads"):
        q.ort_num_threads(0)


def test_reusing_an_export_is_fast_and_changes_nothing(export, tiny_dir):
    """Check that exporting into a folder that holds a complete export only reuses it."""
    onnx_dir, first_s = export
    before = {p.name: (_sha256(p), p.stat().st_mtime_ns) for p in onnx_dir.iterdir()}
    start = time.perf_counter()
    assert q.export_onnx(str(tiny_dir), onnx_dir) == onnx_dir
    reuse_s = time.perf_counter() - start
    after = {p.name: (_sha256(p), p.stat().st_mtime_ns) for p in onnx_dir.iterdir()}
    assert after == before, "reusing the export rewrote files"
    # Reuse only checks a few files (~1 ms); the export itself takes seconds even for 3M parameters.
    assert reuse_s < 0.5, f"reuse took {reuse_s:.2f} s (first export {first_s:.1f} s)"
    assert q.is_complete_export(onnx_dir, str(tiny_dir))
    assert not q.is_complete_export(onnx_dir, str(helpers.EMBEDDED_DIR)), "an export of another model is not a match"


def test_an_incomplete_folder_is_exported_again(tiny_dir, tmp_path):
    """Check that a folder without a finished export is replaced by a complete one."""
    target = tmp_path / "half"
    target.mkdir()
    (target / "model.onnx").write_bytes(b"truncated")
    assert not q.is_complete_export(target)
    q.export_onnx(str(tiny_dir), target)
    assert q.is_complete_export(target, str(tiny_dir))
    assert (target / "model.onnx").stat().st_size > 1_000_000


# ---------------------------------------------------------------- MatMul groups

def test_matmul_groups_cover_every_matmul_once(onnx_dir):
    """Check that every MatMul of the export is in exactly one group, with the expected counts."""
    groups = q.matmul_groups(onnx_dir / "model.onnx")
    assert tuple(groups) == q.GROUPS
    grouped = [name for names in groups.values() for name in names]
    all_matmuls = [n.name for n in _graph(onnx_dir / "model.onnx").node if n.op_type == "MatMul"]
    assert sorted(grouped) == sorted(all_matmuls), "a MatMul is missing from the groups or counted twice"
    for name in q.PROJECTION_GROUPS:
        assert len(groups[name]) == N_LAYERS, f"{name}: {groups[name]}"
    assert len(groups["lm_head"]) == 1
    # Per layer: queries x keys and weights x values; plus one rotary-embedding product.
    assert len(groups["other"]) == 2 * N_LAYERS + 1, groups["other"]
    assert q.matmul_groups(onnx_dir) == groups, "a folder holding model.onnx is accepted too"


@pytest.mark.parametrize("node_name, group", [
    ("/model/layers.12/self_attn/q_proj/MatMul", "q_proj"),
    ("/model/layers.0/mlp/down_proj/MatMul", "down_proj"),
    ("/lm_head/MatMul", "lm_head"),
    ("/model/layers.0/self_attn/MatMul_1", "other"),
    ("/model/rotary_emb/MatMul", "other"),
    ("/model/layers.0/self_attn/q_projection_extra/MatMul", "other"),
    ("", "other"),
])
def test_matmul_group_reads_node_names(node_name, group):
    """Check that group names must be whole path parts of the node name."""
    assert q.matmul_group(node_name) == group


def test_node_selection_helpers(onnx_dir):
    """Check that nodes_in / nodes_outside split the MatMuls and reject unknown groups."""
    groups = q.matmul_groups(onnx_dir)
    inside = q.nodes_in(groups, q.PROJECTION_GROUPS)
    outside = q.nodes_outside(groups, q.PROJECTION_GROUPS)
    assert len(inside) == 7 * N_LAYERS and not set(inside) & set(outside)
    assert len(inside) + len(outside) == sum(len(v) for v in groups.values())
    with pytest.raises(ValueError, match="unknown group"):
        q.nodes_in(groups, ["qproj"])


def _gpt2_like_export(folder: Path) -> Path:
    """A two-MatMul ONNX graph named as GPT-2 names its layers, with a config.json that says gpt2."""
    from onnx import TensorProto, helper

    folder.mkdir()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="/transformer/h.0/attn/c_attn/MatMul"),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="/transformer/h.0/mlp/c_fc/MatMul")]
    graph = helper.make_graph(nodes, "gpt2_like", [x], [y], initializer=[weight])
    onnx.save(helper.make_model(graph), str(folder / "model.onnx"))
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    return folder


def test_projection_names_are_a_checked_requirement_of_the_export(tmp_path, onnx_dir):
    """Check that a model whose layers are not named like Llama's is refused by name, not quietly
    put in "other" (which would quantize nothing, or everything, without a word)."""
    other = _gpt2_like_export(tmp_path / "gpt2_like")
    with pytest.raises(q.UnsupportedModelError, match=r"type 'gpt2' has no layer named q_proj.*llama"):
        q.matmul_groups(other)
    with pytest.raises(q.UnsupportedModelError, match="gpt2"):
        int8.quantize_dynamic(other, tmp_path / "int8", groups=["up_proj"])
    assert int8.quantize_dynamic(other, tmp_path / "all", groups=None) == tmp_path / "all", \
        "every MatMul (groups=None) needs no layer names"
    assert q.matmul_groups(onnx_dir)["q_proj"], "the course's own (Llama) export passes the check"


def test_projection_names_are_a_checked_requirement_of_the_pytorch_model():
    """Check that simulated_dynamic_int8 names the model type when a requested layer type is absent."""
    from types import SimpleNamespace

    model = torch.nn.ModuleDict({"q_proj": torch.nn.Linear(4, 4), "c_fc": torch.nn.Linear(4, 4)})
    model.config = SimpleNamespace(model_type="gpt2")
    with q.simulated_dynamic_int8(model, ["q_proj"]) as n_layers:  # the layer it has: fine
        assert n_layers == 1
    with pytest.raises(q.UnsupportedModelError, match=r"type 'gpt2' has no layer named up_proj\b"):
        with q.simulated_dynamic_int8(model, ["q_proj", "up_proj"]):
            pass
    assert "forward" not in model["q_proj"].__dict__, "nothing is left patched after the refusal"


# ---------------------------------------------------------------- static INT8

@pytest.fixture(scope="module")
def calibration(tiny_dir, onnx_dir):
    return q.calibration_dataset(str(tiny_dir), onnx_dir, list(q.CALIBRATION_TEXTS[:3]), max_length=48)


def test_calibration_rows_hold_every_input_with_a_real_past(calibration, onnx_dir):
    """Check that each calibration row feeds every ONNX input, past included and non-empty."""
    import datasets

    assert isinstance(calibration, datasets.Dataset)
    assert len(calibration) == 2 * 3, "one continuation row and one prefill row per text"
    inputs = {i.name for i in _graph(onnx_dir / "model.onnx").input}
    assert set(calibration.column_names) == inputs
    assert sum(name.startswith("past_key_values.") for name in inputs) == 2 * N_LAYERS
    kinds = []
    for row in calibration:
        n_new = row["input_ids"].shape[0]
        past = row["past_key_values.0.key"]
        assert past.ndim == 3 and past.shape[1] > 0, f"past must be [kv_heads, past_len > 0, head_dim], got {past.shape}"
        assert past.dtype == np.float32 and row["input_ids"].dtype == np.int64
        n_past = past.shape[1]
        assert n_new > 0 and row["attention_mask"].shape[0] == n_past + n_new
        for layer in range(N_LAYERS):
            for kind in ("key", "value"):
                assert row[f"past_key_values.{layer}.{kind}"].shape == past.shape
        if row["attention_mask"].all():  # continuation: positions go on after a real past
            assert np.abs(past).sum() > 0
            assert row["position_ids"].tolist() == list(range(n_past, n_past + n_new))
            kinds.append("continuation")
        else:  # prefill: a hidden one-slot past, positions from 0
            assert n_past == 1 and row["attention_mask"].tolist() == [0] + [1] * n_new
            assert row["position_ids"].tolist() == list(range(n_new))
            kinds.append("prefill")
    assert sorted(kinds) == ["continuation"] * 3 + ["prefill"] * 3


def test_calibration_rows_reproduce_pytorch_logits(calibration, onnx_dir, pytorch_model):
    """Check that the ONNX graph fed a calibration row computes what PyTorch computes for the text."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    rows = list(calibration)
    for continuation, prefill in zip(rows[0::2], rows[1::2]):  # text by text: continuation, then prefill
        full_ids = torch.from_numpy(np.asarray(prefill["input_ids"]))[None]
        with torch.inference_mode():
            want = pytorch_model(input_ids=full_ids).logits[0].numpy()
        for row in (continuation, prefill):
            logits = session.run(["logits"], {name: np.asarray(v)[None] for name, v in row.items()})[0][0]
            start = int(row["position_ids"][0])
            # Same tolerance as the float32 export check (measured differences ~3e-7).
            assert np.abs(logits - want[start:]).max() < 1e-4


def test_calibration_ranges_with_optimum(calibration, onnx_dir, tmp_path):
    """Check that AutoCalibrationConfig.minmax + ORTQuantizer.fit accept the dataset as is."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    config = int8.cpu_quantization_config(is_static=True, per_channel=True)
    quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name="model.onnx")
    ranges = quantizer.fit(dataset=calibration, calibration_config=AutoCalibrationConfig.minmax(calibration),
                           onnx_augmented_model_name=tmp_path / "augmented.onnx",
                           operators_to_quantize=config.operators_to_quantize)
    names = list(ranges)  # onnxruntime's TensorsData: iterates over tensor names
    assert names, "calibration collected no ranges"
    projection_inputs = {n.input[0] for n in _graph(onnx_dir / "model.onnx").node
                         if q.matmul_group(n.name) in q.PROJECTION_GROUPS}
    assert projection_inputs <= set(names), "the projections' activations were not calibrated"


def test_static_int8_of_projections_generates(calibration, onnx_dir, tmp_path, prompt, ort_fp32):
    """Check that static INT8 of the linear projections builds, quantizes only them, and generates."""
    out = int8.quantize_static(onnx_dir, tmp_path / "static", calibration)
    graph = _graph(out / q.QUANTIZED_FILE)
    fed_by_dequantize = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    quantized = {n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & fed_by_dequantize}
    assert quantized == set(q.nodes_in(q.matmul_groups(onnx_dir), q.PROJECTION_GROUPS))
    model = q.load_ort(out, q.QUANTIZED_FILE)
    assert _generate(model, prompt).shape[1] == prompt["input_ids"].shape[1] + NEW_TOKENS
    # Measured: the largest logit moves by 7% of the largest logit (0.08 of 1.18). Calibrating
    # without the prefill rows, so the prompt's first positions fall outside the ranges and
    # are clipped, moves it by 42%; 20% separates the two.
    reference = _logits(ort_fp32, prompt)
    diff = (_logits(model, prompt) - reference).abs().max().item()
    assert diff < 0.2 * reference.abs().max().item(), f"logits moved by {diff:.3f}"


def test_dynamic_int8_of_one_group(onnx_dir, tmp_path, prompt):
    """Check that dynamic INT8 restricted to one group touches only that group's MatMuls."""
    out = int8.quantize_dynamic(onnx_dir, tmp_path / "dyn_down", groups=["down_proj"])
    graph = _graph(out / q.QUANTIZED_FILE)
    remaining = {n.name for n in graph.node if n.op_type == "MatMul"}
    groups = q.matmul_groups(onnx_dir)
    assert remaining == set(q.nodes_outside(groups, ["down_proj"]))
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == N_LAYERS
    initializers = {i.name for i in onnx.load(str(out / q.QUANTIZED_FILE)).graph.initializer}
    assert "model.embed_tokens.weight" in initializers, "the embedding (shared with lm_head) must stay float32"
    model = q.load_ort(out, q.QUANTIZED_FILE)
    assert _generate(model, prompt).shape[1] == prompt["input_ids"].shape[1] + NEW_TOKENS


# ---------------------------------------------------------------- simulated dynamic INT8

def test_fake_quantized_activation_lies_on_the_uint8_grid():
    """One scale for the tensor, (max - min) / 255 with 0 inside the range; every value on the grid."""
    x = torch.tensor([[-1.0, 0.0, 0.37], [0.5, 2.2, 3.0]])
    out = q.fake_quantize_activation_uint8(x)
    scale = 4.0 / 255
    steps = out / scale
    assert torch.allclose(steps, steps.round(), atol=1e-4), "values must be whole numbers of steps"
    assert (out - x).abs().max() <= scale / 2 + 1e-6, "rounding moves a value by at most half a step"
    assert out[0, 1] == 0.0, "zero is represented exactly"
    assert torch.equal(q.fake_quantize_activation_uint8(torch.zeros(3)), torch.zeros(3))
    # one outlier coarsens every other value: the lesson of the sensitivity sweep
    coarse = q.fake_quantize_activation_uint8(torch.tensor([0.01, 0.02, 0.03, 100.0]))
    assert torch.equal(coarse[:3], torch.zeros(3))


def test_fake_quantized_weight_has_one_int8_scale_per_output_channel():
    weight = torch.tensor([[0.5, -1.27, 0.01], [0.002, 0.001, -0.003]])
    out = q.fake_quantize_weight_int8(weight)
    scales = weight.abs().amax(dim=1, keepdim=True) / 127
    assert torch.allclose(out / scales, (out / scales).round(), atol=1e-4)
    assert ((out - weight).abs() <= scales / 2 + 1e-9).all()
    assert torch.allclose(out.abs().amax(dim=1), weight.abs().amax(dim=1)), "each row's largest value is exact"


@pytest.mark.parametrize("group", ["up_proj", "down_proj", "q_proj"])
def test_simulated_dynamic_int8_reproduces_onnx_runtime(group, onnx_dir, tmp_path, pytorch_model, tokenizer):
    """PyTorch with simulated rounding gives ONNX Runtime's dynamic INT8 logits, far closer than float32 does."""
    batch = tokenizer([helpers.REFERENCE_PROMPT, "A second, longer prompt with a few more words."],
                      return_tensors="pt", padding=True)
    keep = batch["attention_mask"].bool()
    quantized = q.load_ort(int8.quantize_dynamic(onnx_dir, tmp_path / group, groups=[group]), q.QUANTIZED_FILE)
    ort_int8 = _logits(quantized, batch)[keep]
    float32 = _logits(pytorch_model, batch)[keep]
    with q.simulated_dynamic_int8(pytorch_model, [group]) as n_layers:
        simulated = _logits(pytorch_model, batch)[keep]
    assert n_layers == N_LAYERS
    gap = (float32 - ort_int8).abs().max().item()
    assert gap > 1e-5, "quantizing the group must change the logits (else this test shows nothing)"
    assert (simulated - ort_int8).abs().max().item() < 0.01 * gap


def test_simulated_dynamic_int8_restores_the_model(pytorch_model, prompt):
    before = _logits(pytorch_model, prompt)
    with q.simulated_dynamic_int8(pytorch_model, ["down_proj", "lm_head"]):
        assert not torch.equal(_logits(pytorch_model, prompt), before)
    assert torch.equal(_logits(pytorch_model, prompt), before)
    with pytest.raises(RuntimeError, match="inside"):
        with q.simulated_dynamic_int8(pytorch_model, ["up_proj"]):
            raise RuntimeError("an error inside the block")
    assert torch.equal(_logits(pytorch_model, prompt), before), "restored after an error too"
    with pytest.raises(ValueError, match="accepted: q_proj"):
        with q.simulated_dynamic_int8(pytorch_model, ["other"]):
            pass


# ---------------------------------------------------------------- weight-only

def _projection_weight_bytes(path: Path) -> int:
    """Bytes of the constant inputs (weights, scales, zero points) of the projection MatMuls."""
    model = onnx.load(str(path))
    sizes = {init.name: len(init.raw_data) or onnx.numpy_helper.to_array(init).nbytes
             for init in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if q.matmul_group(node.name) in q.PROJECTION_GROUPS and node.op_type in ("MatMul", "MatMulNBits"):
            total += sum(sizes.get(name, 0) for name in node.input)
    return total


@pytest.fixture(scope="module")
def weight_only(onnx_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("weight_only")
    return {bits: q.weight_only_int8(onnx_dir, root / f"wo{bits}", bits=bits, block_size=32) for bits in (8, 4)}


def test_weight_only_8bit_is_smaller_close_and_generates(weight_only, onnx_dir, prompt, ort_fp32, tokenizer):
    """Check the 8-bit weight-only model: MatMulNBits nodes, smaller weights, logits near float32, generates."""
    out = weight_only[8]
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    nodes = [n for n in _graph(out / "model.onnx").node if n.op_type == "MatMulNBits"]
    assert len(nodes) == 7 * N_LAYERS, "every linear projection should become MatMulNBits"
    assert all(onnx.helper.get_attribute_value(a) == 8 for n in nodes for a in n.attribute if a.name == "bits")
    # The tiny model is mostly its (unquantized) embedding, so compare the projections' weights:
    # 8-bit values plus a float scale and a zero point per 32 values: (1 + 4/32 + 1/32) / 4 = 0.29.
    ratio = _projection_weight_bytes(out / "model.onnx") / _projection_weight_bytes(onnx_dir / "model.onnx")
    assert 0.2 < ratio < 0.35, f"projection weights shrank to {ratio:.2f} of float32"
    assert q.dir_size_mb(out / "model.onnx") < q.dir_size_mb(onnx_dir / "model.onnx")
    model = q.load_ort(out)
    reference = _logits(ort_fp32, prompt)
    # Block-wise 8-bit rounding of the weights: measured max difference 0.4% of the largest
    # logit; 2% is generous and still fails for a wrong scale or zero point.
    diff = (_logits(model, prompt) - reference).abs().max().item()
    assert diff < 0.02 * reference.abs().max().item(), f"logits moved by {diff:.4f}"
    assert _generate(model, prompt).shape[1] == prompt["input_ids"].shape[1] + NEW_TOKENS


def test_weight_only_4bit_is_smaller_and_coarser_than_8bit(weight_only, ort_fp32, prompt):
    """Check that bits is honoured: 4-bit weights take less space and move the logits more."""
    size8, size4 = (_projection_weight_bytes(weight_only[b] / "model.onnx") for b in (8, 4))
    assert size4 < size8
    reference = _logits(ort_fp32, prompt)
    diff8, diff4 = ((_logits(q.load_ort(weight_only[b]), prompt) - reference).abs().max().item() for b in (8, 4))
    assert diff4 > diff8


def test_weight_only_can_quantize_the_tied_output_layer(onnx_dir, tmp_path, prompt, ort_fp32):
    """Check that quantize_lm_head also turns the output layer (tied to the embedding) into MatMulNBits."""
    out = q.weight_only_int8(onnx_dir, tmp_path / "wo8_head", bits=8, accuracy_level=4, quantize_lm_head=True)
    graph = _graph(out / "model.onnx")
    assert [n.op_type for n in graph.node if q.matmul_group(n.name) == "lm_head"] == ["MatMulNBits"]
    reference = _logits(ort_fp32, prompt)
    diff = (_logits(q.load_ort(out), prompt) - reference).abs().max().item()
    assert diff < 0.05 * reference.abs().max().item(), f"logits moved by {diff:.4f}"


def test_weight_only_4bit_reproduces_a_4bit_grid_only_when_its_offset_is_whole_steps(tmp_path, one_matmul_model):
    """Weights already on a Q4_1-like grid (16 evenly spaced values per block of 32, as in the
    embedded model, converted from a Q4_1 GGUF) come back exactly from 4-bit MatMulNBits only when
    the grid's minimum is a whole number of steps from zero: its zero point is an integer. With
    Q4_1's arbitrary float minimum the grid is shifted and every weight is rounded a second time;
    8 bits stay within a small fraction of the step either way."""
    import onnxruntime as ort

    step, levels = 0.01, np.tile(np.arange(16), 2)  # each block of 32 uses all 16 levels twice
    rng = np.random.default_rng(0)
    columns = [rng.permutation(levels) for _ in range(4)]
    errors = {}
    for offset in (7.0, 7.4):  # minimum = -offset steps: whole, then fractional
        weight = np.stack([(c - offset) * step for c in columns], axis=1)  # [K=32, N=4], one block per column
        source = one_matmul_model(tmp_path / f"fp32_{offset}", weight)
        for bits in (4, 8):
            out = q.weight_only_int8(source, tmp_path / f"wo{bits}_{offset}", bits=bits, block_size=32)
            session = ort.InferenceSession(str(out / q.ONNX_FILE), providers=["CPUExecutionProvider"])
            rebuilt = session.run(None, {"X": np.eye(32, dtype=np.float32)})[0]  # identity in: the weights out
            errors[offset, bits] = float(np.abs(rebuilt - weight).max()) / step
    assert errors[7.0, 4] < 1e-3, f"a grid through zero should survive 4 bits, error {errors[7.0, 4]:.3f} steps"
    assert 0.3 < errors[7.4, 4] < 0.5, f"a shifted grid should be rounded again, error {errors[7.4, 4]:.3f} steps"
    assert errors[7.0, 8] < 0.05 and errors[7.4, 8] < 0.05, f"8 bits should stay close: {errors}"


# ---------------------------------------------------------------- utilities and errors

def test_dir_size_mb(tmp_path):
    """Check that sizes are summed over a folder's files, in units of 10**6 bytes."""
    (tmp_path / "a.bin").write_bytes(b"x" * 1_500_000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"x" * 500_000)
    assert q.dir_size_mb(tmp_path) == pytest.approx(2.0)
    assert q.dir_size_mb(tmp_path / "a.bin") == pytest.approx(1.5)
    with pytest.raises(FileNotFoundError):
        q.dir_size_mb(tmp_path / "missing")


def test_cpu_quantization_config():
    """Check that the config follows the instruction set and passes exclusions on."""
    assert q.cpu_instruction_set() in ("avx512_vnni", "avx512", "avx2", "arm64")
    config = int8.cpu_quantization_config(is_static=False, per_channel=True, nodes_to_exclude=["/lm_head/MatMul"])
    assert not config.is_static and config.per_channel and config.nodes_to_exclude == ["/lm_head/MatMul"]
    assert int8.cpu_quantization_config(True, False, instruction_set="avx2").reduce_range  # saturation-safe
    assert not int8.cpu_quantization_config(True, False, instruction_set="avx512_vnni").reduce_range
    with pytest.raises(ValueError, match="instruction_set"):
        int8.cpu_quantization_config(True, True, instruction_set="sse9")


def test_clear_errors_for_bad_inputs(onnx_dir, tmp_path, tiny_dir):
    """Check that missing folders and unsupported settings fail at once with a message that says what to do."""
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="no model folder"):
        q.export_onnx(str(missing), tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        q.load_ort(missing)
    with pytest.raises(FileNotFoundError, match="model_quantized.onnx"):
        q.load_ort(onnx_dir, q.QUANTIZED_FILE)
    with pytest.raises(FileNotFoundError):
        q.matmul_groups(missing / "model.onnx")
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        q.weight_only_int8(missing, tmp_path / "wo")
    for bits in (3, 2, 16, True):
        with pytest.raises(ValueError, match=r"bits must be one of \(4, 8\)"):
            q.weight_only_int8(onnx_dir, tmp_path / "wo", bits=bits)
    with pytest.raises(ValueError, match="block_size"):
        q.weight_only_int8(onnx_dir, tmp_path / "wo", block_size=24)
    with pytest.raises(ValueError, match="at least one text"):
        q.calibration_dataset(str(tiny_dir), onnx_dir, [])
    assert not (tmp_path / "wo").exists() and not (tmp_path / "out").exists(), "a failed call left a folder"


def test_helpers_leave_part_b1_to_the_student():
    """Driving ORTQuantizer is Part B1's lesson: no helper a notebook can import does it for the
    student (the course's own version is benchmarks/int8_reference.py)."""
    import ast
    import inspect
    import pkgutil

    for info in pkgutil.iter_modules(helpers.__path__):
        tree = ast.parse(inspect.getsource(importlib.import_module(f"helpers.{info.name}")))
        calls = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        assert not {"quantize", "fit"} & calls or "ORTQuantizer" not in names | calls, \
            f"helpers.{info.name} drives ORTQuantizer: that is the student's Part B1"
