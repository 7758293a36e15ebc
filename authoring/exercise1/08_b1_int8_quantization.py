# %% [markdown]
# ---
# # Part B: making generation faster, and checking it stayed good
#
# ## Part B1: INT8 post-training quantization with Optimum and ONNX Runtime (3 points)
#
# **Quantization** stores numbers in fewer bits. INT8 keeps a weight matrix as 8-bit integers
# plus a float scale (per output channel here), four times smaller than float32. Generating one
# token reads every weight once, so on a CPU fewer bytes means more tokens per second, and
# integer matrix products (VNNI, AVX2 or ARM dot-product instructions) are fast.
# *Post-training* means no retraining: the trained model is converted as it is.
#
# The activations (the numbers flowing between layers) need a range too:
# * **dynamic**: each MatMul measures its input's min/max at run time, for every call. No data needed.
# * **static**: the ranges are measured once on **calibration** texts and frozen into the graph;
#   there is no run-time min/max, but ranges that do not fit a new input clip it.
#
# The tools: Optimum exports the PyTorch model to an ONNX graph that ONNX Runtime runs
# (`helpers.quantization.export_onnx`); `ORTQuantizer` rewrites that graph to INT8 following an
# `AutoQuantizationConfig` chosen for the CPU's instruction set (`avx512_vnni`, `avx2`,
# `arm64`); for static quantization `AutoCalibrationConfig.minmax(dataset)` and
# `quantizer.fit(...)` compute the ranges first. For a decoder the calibration rows must include
# a real key/value cache, which `helpers.quantization.calibration_dataset` builds for you.
# Which MatMuls to quantize matters: the attention products and the output layer are far more
# sensitive than the linear projections, so `groups` lets you quantize only some layer types
# (`hq.matmul_groups` names every MatMul by layer type; `hq.nodes_outside` lists the others).
# Pass `operators_to_quantize=["MatMul"]` to the configuration: Optimum's default list also
# quantizes other operators (the embedding lookup; in static mode every Add, Mul and Softmax),
# which `nodes_to_exclude`, a list of MatMul names, does not cover.
#
# Write `run_static_ptq_optimum(model_dir, work_dir, scheme="dynamic", calibration_texts=None,
# groups=None)`. It returns `(ort_model, info)`: the quantized model, which generates through the
# same `generate` API (so `time_generate` works on it), and an info string that names the
# backend (ONNX Runtime) and the scheme (dynamic or static INT8, per channel, instruction set).
# Only the dynamic scheme is graded: calibrating a static model takes too long for the grader, so
# the static branch is yours to try (and compare) but no test runs it.

# %% [solution id=run_static_ptq_optimum]
from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoCalibrationConfig, AutoQuantizationConfig


def int8_config(is_static, per_channel=True, nodes_to_exclude=()):
    """An AutoQuantizationConfig for this CPU, and the instruction set it targets."""
    isa = hq.cpu_instruction_set()  # from /proc/cpuinfo flags; "avx2" when unsure (the safe choice)
    # Only MatMuls: Optimum's default operator list also rounds the embedding table (Gather), and in
    # static mode the inputs of every Add, Mul and Softmax, whatever `groups` says.
    args = dict(is_static=is_static, per_channel=per_channel, nodes_to_exclude=list(nodes_to_exclude),
                operators_to_quantize=["MatMul"])
    if isa == "avx512_vnni":
        return AutoQuantizationConfig.avx512_vnni(**args), isa
    if isa == "arm64":
        return AutoQuantizationConfig.arm64(**args), isa
    if isa == "avx512":
        return AutoQuantizationConfig.avx512(reduce_range=True, **args), isa
    return AutoQuantizationConfig.avx2(reduce_range=True, **args), "avx2"


def run_static_ptq_optimum(model_dir, work_dir, scheme="dynamic", calibration_texts=None, groups=None):
    """INT8 post-training quantization of an exported model with Optimum + ONNX Runtime.

    model_dir: local model folder. work_dir: folder for the export and quantized models.
    scheme: "dynamic" or "static" (static needs calibration_texts, a list of str; not graded).
    groups: MatMul layer types to quantize (see hq.matmul_groups), None for every MatMul.
    Returns (ort_model, info): an ORTModelForCausalLM and a str naming backend and scheme.
    """
    ### BEGIN SOLUTION
    scheme = str(scheme).strip().lower()
    if scheme not in ("dynamic", "static"):
        raise ValueError(f"scheme {scheme!r} is not supported; accepted values: dynamic, static")
    work_dir = Path(work_dir)
    onnx_dir = hq.export_onnx(str(model_dir), work_dir / "onnx_float32", num_threads=NUM_THREADS)
    node_groups = hq.matmul_groups(onnx_dir / hq.ONNX_FILE)
    exclude = [] if groups is None else hq.nodes_outside(node_groups, list(groups))
    config, isa = int8_config(scheme == "static", per_channel=True, nodes_to_exclude=exclude)
    tag = "all" if groups is None else "-".join(groups)
    save_dir = work_dir / f"int8_{scheme}_{tag}"
    with hq.quiet(), tempfile.TemporaryDirectory(prefix=".calibration-", dir=work_dir) as scratch:
        quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name=hq.ONNX_FILE)
        ranges = None
        if scheme == "static":
            if not calibration_texts:
                raise ValueError("static quantization needs calibration_texts (a list of str)")
            dataset = hq.calibration_dataset(str(model_dir), onnx_dir, list(calibration_texts))
            # The augmented model (every MatMul input made an output) is as big as the export: scratch.
            ranges = quantizer.fit(dataset=dataset, calibration_config=AutoCalibrationConfig.minmax(dataset),
                                   onnx_augmented_model_name=Path(scratch) / "augmented_model.onnx",
                                   operators_to_quantize=config.operators_to_quantize)
        quantizer.quantize(quantization_config=config, save_dir=save_dir, calibration_tensors_range=ranges)
    hq.copy_side_files(onnx_dir, save_dir)
    ort_model = hq.load_ort(save_dir, hq.QUANTIZED_FILE, num_threads=NUM_THREADS)
    import onnxruntime
    quantized = sum(len(v) for k, v in node_groups.items() if groups is None or k in groups)
    info = (f"backend=onnxruntime {onnxruntime.__version__} (CPUExecutionProvider, {NUM_THREADS} threads) | "
            f"scheme={scheme} INT8, weights int8 per channel, activations uint8, {isa} | "
            f"{quantized} MatMuls quantized ({tag}) | {hq.dir_size_mb(save_dir / hq.QUANTIZED_FILE):.1f} MB")
    return ort_model, info
    ### END SOLUTION

# %% [markdown]
# Try it: an info line such as `backend=onnxruntime ... | scheme=dynamic INT8 ...`, then a
# short continuation written by the quantized model (gibberish for the tiny model).

# %% [code]
int8_model, int8_info = run_static_ptq_optimum(MODEL_ID, WORK_DIR, "dynamic")
print(int8_info)
print(time_generate(int8_model, tokenizer, REFERENCE_PROMPT, PROFILE.max_new_tokens))

# %% [tests id=test_ptq points=1]
"""Check that run_static_ptq_optimum returns a model that generates and an info string."""
_m, _info = run_static_ptq_optimum(str(helpers.TINY_DIR), WORK_DIR / "test_tiny", "dynamic")
assert isinstance(_info, str) and "onnxruntime" in _info.lower() and "dynamic" in _info.lower(), \
    f"info must name the backend (onnxruntime) and the scheme (dynamic), got {_info!r}"
_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
_out = _m.generate(**_tok("Hello", return_tensors="pt"), max_new_tokens=3, min_new_tokens=3, do_sample=False)
assert _out.shape[1] == len(_tok("Hello").input_ids) + 3, "the quantized model must generate through generate()"

# %% [tests id=test_ptq_hidden points=2]
"""Check that the dynamic model is really INT8 and that groups restrict what is quantized."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): the ONNX file is read as bytes through a fresh instance
# of the os module and its operators are counted in the serialized graph (a replaced onnx.load cannot
# answer): a node's op_type is protobuf field 4, written as the byte 0x22, the length, the name.
import importlib.util as _ilu
from transformers import AutoConfig as _AutoConfig
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


def _matmul_counts(model_obj):
    """(float MatMul nodes, MatMulInteger nodes) in the ONNX file the model runs."""
    _fd = _posix.open(_posix.fspath(model_obj.path), _posix.O_RDONLY)
    _chunks = []
    try:
        while True:
            _chunk = _posix.read(_fd, 1 << 24)
            if not _chunk:
                break
            _list.append(_chunks, _chunk)
    finally:
        _posix.close(_fd)
    _data = b"".join(_chunks)
    return _data.count(b'"\x06MatMul'), _data.count(b'"\x0dMatMulInteger')


_posix = _fresh("posix")
_tiny = _str(_helpers.TINY_DIR)
_layers = _num(_AutoConfig.from_pretrained(_tiny).num_hidden_layers, "num_hidden_layers")
_m, _info = run_static_ptq_optimum(_tiny, WORK_DIR / "test_tiny", "dynamic")
_float_all, _int8_all = _matmul_counts(_m)
assert _int8_all > 0, \
    "the dynamic model must contain INT8 MatMuls (MatMulInteger): quantize with ORTQuantizer and load model_quantized.onnx"
assert _float_all == 0, f"with groups=None every MatMul must be quantized; {_float_all} stayed float32"
_m2, _info2 = run_static_ptq_optimum(_tiny, WORK_DIR / "test_tiny", "dynamic", groups=["up_proj"])
_float_up, _int8_up = _matmul_counts(_m2)
assert _int8_up == _layers, \
    f"with groups=['up_proj'] only the {_layers} up_proj MatMuls may be quantized, found {_int8_up}: exclude the others"
assert _float_up + _int8_up == _float_all + _int8_all, "the MatMuls outside the chosen groups must stay in the graph as float32"
### END HIDDEN TESTS

