# %% [markdown]
# ---
# ## Part B7: how close to the memory limit? (7 points)
#
# Every decode step reads **every weight once** (plus the KV cache), and does only about two
# floating-point operations per weight read. On a CPU (and on a GPU at batch 1) the arithmetic is
# quick; what takes the time is moving the bytes from memory. So a step can never be faster than
#
# **bound (ms per token) = bytes read per step / memory bandwidth**
#
# and how close a variant comes to that line says how much there is left to gain. Quantization
# shrinks the bytes, which lowers the bound; batching reads the weights once for the whole batch.
#
# `helpers.measure_memory_bandwidth()` measures the bandwidth: `torch.sum` over a float32
# buffer far larger than the caches (a read-dominated kernel, as decode is), one untimed
# warm-up, the median of repeats, in GB/s where **GB = 10⁹ bytes** (not GiB). It prints how.
#
# Write `decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1,
# kv_bytes_per_element=None)`: the bytes that **one decode step** reads, for a batch of
# `batch_size` sequences whose KV cache holds `context_tokens` tokens each (the prompt plus what
# was generated so far). Return an `int`. The step makes one new token for each sequence.
#
# * **A PyTorch model** (a Hugging Face `torch.nn.Module`): every parameter counts
#   `numel() × element_size()`, **once**: weights that share memory (tied weights, same
#   `data_ptr()`) are read once. The exception is the input embedding
#   (`model.get_input_embeddings()`): a lookup reads only one row per sequence, so it counts
#   `batch_size` rows, unless it is tied to the output layer (`model.get_output_embeddings()`),
#   which multiplies by the whole matrix: then it counts in full, once.
# * **An ONNX model**: a path to a `.onnx` file, or to a folder holding `model.onnx` (or else a
#   single `.onnx` file). Count every initializer of the graph **as stored**: number of elements
#   (the product of its `dims`) × the size of its `data_type` (`onnx.helper.tensor_dtype_to_np_dtype`),
#   half a byte for 4-bit types. So int8 weights count 1 byte each, and the scales and zero points of
#   quantized weights count too (`MatMulNBits` keeps 4- or 8-bit weights packed in `uint8` plus
#   per-block scales and zero points). The exception, as above: an initializer that nodes read only
#   as the data (first) input of `Gather` is an embedding lookup and counts `batch_size` rows (its
#   first dimension indexes the rows). The rule goes by the ops that read an initializer, not by its
#   name or purpose: a table that any other op reads counts in full, even where a step uses one row
#   of it (for example the rotary cos/sin caches that fused exports pass to `com.microsoft`
#   `RotaryEmbedding` or `GroupQueryAttention`; the course's own exports have none). Load the graph with `onnx.load(path, load_external_data=False)`:
#   sizes come from `dims`, so large external weight files need not be read (`raw_data` is empty then).
# * **The KV cache**, both kinds: keys and values, so
#   `2 × num_hidden_layers × num_key_value_heads × head_dim × context_tokens × batch_size × kv_bytes_per_element`,
#   from the model's config (`model.config`; for ONNX, the `config.json` next to the `.onnx` file).
#   With grouped-query attention `num_key_value_heads` is smaller than `num_attention_heads`; a config
#   without it has one KV head per attention head. `head_dim` comes from the config when it has one,
#   else `hidden_size // num_attention_heads`. `kv_bytes_per_element` defaults to the model's element
#   size for PyTorch (4 for float32, 2 for float16) and to 4 for ONNX (its cache is float32).

# %% [solution id=decode_bytes_per_token]
import json

import onnx


def decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1, kv_bytes_per_element=None):
    """Bytes one decode step reads: the weights as stored, each once (an untied input embedding: one row per
    sequence), plus the KV cache of batch_size sequences of context_tokens tokens. Returns an int.

    model_or_onnx_path: a Hugging Face PyTorch model, or an ONNX model (a .onnx file, or a folder holding
    model.onnx, with config.json beside it). kv_bytes_per_element: bytes per cached number (default: the
    PyTorch model's element size; 4 for ONNX, whose cache is float32).
    """
    ### BEGIN SOLUTION
    context_tokens, batch_size = int(context_tokens), int(batch_size)
    if context_tokens < 0 or batch_size < 1:
        raise ValueError(f"need context_tokens >= 0 and batch_size >= 1, got {context_tokens} and {batch_size}")

    def kv_cache_bytes(config, element_size):
        get = config.get if isinstance(config, dict) else (lambda key, default=None: getattr(config, key, default))
        layers, heads = int(get("num_hidden_layers")), int(get("num_attention_heads"))
        kv_heads = int(get("num_key_value_heads", None) or heads)
        head_dim = int(get("head_dim", None) or int(get("hidden_size")) // heads)
        return 2 * layers * kv_heads * head_dim * context_tokens * batch_size * int(element_size)

    if isinstance(model_or_onnx_path, torch.nn.Module):
        model = model_or_onnx_path
        embedding = model.get_input_embeddings().weight
        head = model.get_output_embeddings()
        tied = head is not None and head.weight.data_ptr() == embedding.data_ptr()
        seen, weights = set(), 0
        for param in model.parameters():
            if param.data_ptr() in seen:
                continue  # shares memory with a parameter already counted
            seen.add(param.data_ptr())
            if param.data_ptr() == embedding.data_ptr() and not tied:
                weights += batch_size * (param.numel() // param.shape[0]) * param.element_size()  # a lookup
            else:
                weights += param.numel() * param.element_size()
        element = kv_bytes_per_element or next(model.parameters()).element_size()
        return weights + kv_cache_bytes(model.config, element)

    path = Path(getattr(model_or_onnx_path, "path", None) or model_or_onnx_path)  # an ORTModel has .path
    if path.is_dir():
        found = [path / hq.ONNX_FILE] if (path / hq.ONNX_FILE).is_file() else sorted(path.glob("*.onnx"))
        if len(found) != 1:
            raise ValueError(f"{path} must hold model.onnx or a single .onnx file, found {[p.name for p in found]}")
        path = found[0]
    graph = onnx.load(str(path), load_external_data=False).graph
    uses = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, position))
    four_bit = {onnx.TensorProto.INT4, onnx.TensorProto.UINT4}
    weights = 0
    for tensor in graph.initializer:
        count = math.prod(tensor.dims)
        if tensor.data_type in four_bit:
            stored = (count + 1) // 2
        else:
            stored = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        readers = uses.get(tensor.name, [])
        if readers and tensor.dims and all(op == "Gather" and position == 0 for op, position in readers):
            stored = batch_size * stored // tensor.dims[0]  # an embedding lookup: one row per sequence
        weights += stored
    config = json.loads((path.parent / "config.json").read_text())
    return weights + kv_cache_bytes(config, kv_bytes_per_element or 4)
    ### END SOLUTION

# %% [markdown]
# Try it: the bytes of one decode step of the PyTorch model and, once Part B1 works, of the
# dynamic INT8 model, at the reference prompt's length plus half of the new tokens (the average
# cache length while decoding), and the bound each implies on this machine.

# %% [code]
bandwidth = helpers.measure_memory_bandwidth(size_mb=256 if PROFILE.is_fast else None,
                                             repeats=3 if PROFILE.is_fast else 7)
print(f"memory bandwidth {bandwidth['gbps']:.1f} GB/s: {bandwidth['method']}")
context = len(tokenizer(REFERENCE_PROMPT).input_ids) + PROFILE.max_new_tokens // 2
for label, source in (("pytorch float32", model), ("onnxruntime int8 dynamic", globals().get("int8_model"))):
    if source is not None:
        step_bytes = decode_bytes_per_token(source if label.startswith("pytorch") else Path(source.path), context)
        print(f"{label:<26} {step_bytes / 1e6:8.2f} MB per step at {context} tokens of context -> "
              f"at least {1000 * step_bytes / (bandwidth['gbps'] * 1e9):.3f} ms per token")

# %% [tests id=test_decode_bytes points=1]
"""Check decode_bytes_per_token on the notebook's model: every weight once, plus the KV cache."""
_cfg = model.config
_unique = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
_emb, _head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
_weights = sum(_unique.values())
if _emb.data_ptr() != _head.data_ptr():  # untied: the lookup reads one row
    _weights -= (_emb.shape[0] - 1) * _emb.shape[1] * _emb.element_size()
_kv_per_token = 2 * _cfg.num_hidden_layers * _cfg.num_key_value_heads * _cfg.head_dim * _emb.element_size()
for _context in (0, 1, 100):
    _got = decode_bytes_per_token(model, _context)
    assert _got == _weights + _context * _kv_per_token, \
        f"at {_context} tokens of context expected {_weights} bytes of weights + {_context * _kv_per_token} of KV " \
        f"cache = {_weights + _context * _kv_per_token}, got {_got}"

# %% [tests id=test_decode_bytes_torch_hidden points=2]
"""Check decode_bytes_per_token on small PyTorch models: tied and untied embeddings, batches, float16, GQA, head_dim."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, the expected byte counts are
# literal arithmetic on the stand-ins' shapes (worked out by hand below), and results are read as
# real numbers and compared with plain arithmetic.
import torch as _torch
from transformers import LlamaConfig as _LlamaConfig, LlamaForCausalLM as _Llama

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


def _stand_in(tied, **sizes):
    _args = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=tied)
    _args.update(sizes)
    with _torch.random.fork_rng():  # the random weights do not matter; the notebook's random state is kept
        return _Llama(_LlamaConfig(**_args)).eval()


# Parameters of the 64-token, 16-wide, 2-layer stand-in (intermediate 32, 4 heads, 2 KV heads of 4):
# per layer q 16x16 + k 16x8 + v 16x8 + o 16x16 + gate/up/down 3 x 16x32 + 2 norms of 16 = 2336;
# layers 4672 + final norm 16 = 4688, plus the embedding 64x16 = 1024, plus an untied head 1024.
# KV bytes per token and sequence: 2 x 2 layers x 2 KV heads x head_dim 4 x 4 bytes = 128.
_untied, _tied = _stand_in(False), _stand_in(True)
# 1 KV head of head_dim 8 (q is 16 -> 32 wide): q 16x32 + k 16x8 + v 16x8 + o 32x16 + 1536 + 32 = 2848 per
# layer, 5696 + 16 = 5712, plus embedding and head 1024 each; float16: 2 bytes each.
# KV bytes per token and sequence: 2 x 2 layers x 1 KV head x head_dim 8 x 2 bytes = 64.
_gqa16 = _stand_in(False, num_key_value_heads=1, head_dim=8).to(_torch.float16)
_cases = (
    ("an untied model, batch 1, 10 tokens of context", _untied, 10, 1, None, (4688 + 1024 + 16) * 4 + 10 * 128),
    ("an untied model, batch 3 (the lookup reads 3 rows; the weights are read once for the whole batch)",
     _untied, 10, 3, None, (4688 + 1024 + 3 * 16) * 4 + 3 * 10 * 128),
    ("an untied model, 0 tokens of context", _untied, 0, 1, None, (4688 + 1024 + 16) * 4),
    ("a model whose output layer is tied to the embedding, batch 2, 7 tokens of context", _tied, 7, 2, None,
     (4688 + 1024) * 4 + 2 * 7 * 128),
    ("a float16 model with 1 KV head for 4 attention heads and head_dim 8 in its config, batch 2, 5 tokens",
     _gqa16, 5, 2, None, (5712 + 1024 + 2 * 16) * 2 + 2 * 5 * 64),
    ("the same float16 model with kv_bytes_per_element=1 (an 8-bit cache)", _gqa16, 5, 2, 1,
     (5712 + 1024 + 2 * 16) * 2 + 2 * 5 * 32),
)
_checked = 0
for _case_what, _case_model, _case_context, _case_batch, _case_kv, _case_want in _cases:
    if _case_kv is None:
        _got = _num(decode_bytes_per_token(_case_model, _case_context, batch_size=_case_batch),
                    "decode_bytes_per_token(...)")
    else:
        _got = _num(decode_bytes_per_token(_case_model, _case_context, batch_size=_case_batch,
                                           kv_bytes_per_element=_case_kv), "decode_bytes_per_token(...)")
    assert -0.5 <= _got - _case_want <= 0.5, f"{_case_what}: expected {_case_want} bytes per decode step, got {_got}"
    _checked += 1
assert _checked == 6
del _untied, _tied, _gqa16, _case_model, _cases
### END HIDDEN TESTS

# %% [tests id=test_decode_bytes_onnx_hidden points=2]
"""Check decode_bytes_per_token on small ONNX graphs: float32, float16, int8, MatMulNBits, 4-bit, lookups, external data."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files written through a fresh
# instance of the os module into an empty scratch folder, the expected byte counts literal arithmetic
# on the graphs' initializers (listed by hand below), results read as real numbers.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
import numpy as _np
import onnx as _onnx
from onnx import TensorProto as _TP, helper as _onnx_helper, numpy_helper as _onh

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


def _write(path, text):
    _fd = _posix.open(path, _posix.O_WRONLY | _posix.O_CREAT | _posix.O_TRUNC, 0o644)
    try:
        _posix.write(_fd, text.encode())
    finally:
        _posix.close(_fd)


def _init(name, shape, dtype):
    return _onh.from_array(_np.zeros(shape, dtype=dtype), name=name)


def _save(folder, file_name, nodes, initializers, config, external=False, opset=17):
    _posix.mkdir(folder)
    _graph = _onnx_helper.make_graph(nodes, "stand_in", [_onnx_helper.make_tensor_value_info("ids", _TP.INT64, ["batch", 1])],
                            [_onnx_helper.make_tensor_value_info("logits", _TP.FLOAT, None)], initializer=initializers)
    _model = _onnx_helper.make_model(_graph, opset_imports=[_onnx_helper.make_opsetid("", opset), _onnx_helper.make_opsetid("com.microsoft", 1)])
    if external:
        _onnx.save_model(_model, folder + "/" + file_name, save_as_external_data=True, all_tensors_to_one_file=True,
                         location=file_name + "_data", size_threshold=0)
    else:
        _onnx.save_model(_model, folder + "/" + file_name)
    _write(folder + "/config.json", config)
    return folder + "/" + file_name


_posix, _clock = _fresh("posix"), _fresh("time")
# include: enter_scratch_dir
try:
    # 1. float32, weights in an external file, passed as a folder: an untied 50x8 embedding read only by Gather
    #    (3 rows of 8 float32 at batch 3), MatMuls of 8x12 and 12x50 float32, and a 1-element int64 index that a
    #    Gather reads as its indices (in full: 8 bytes). KV: 2 layers, 2 KV heads, head_dim 16 // 4 = 4, float32.
    _save("f32", "model.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("MatMul", ["x", "w1"], ["h"]),
        _onnx_helper.make_node("MatMul", ["h", "head"], ["logits"]),
        _onnx_helper.make_node("Shape", ["x"], ["shape"]),
        _onnx_helper.make_node("Gather", ["shape", "axis_index"], ["batch_dim"]),
    ], [_init("embed", (50, 8), _np.float32), _init("w1", (8, 12), _np.float32), _init("head", (12, 50), _np.float32),
        _onh.from_array(_np.array([0], dtype=_np.int64), name="axis_index")],
        '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, '
        '"hidden_size": 16}', external=True)
    # 2. float16, the output layer tied to the embedding (Transpose of it feeds a MatMul): the 50x8 embedding is
    #    read in full, 800 bytes, plus 8x8 float16. KV: 1 layer, 2 KV heads, head_dim 4, 2 bytes as asked.
    _tied_file = _save("tied", "tied.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("MatMul", ["x", "w1"], ["x2"]),
        _onnx_helper.make_node("Transpose", ["embed"], ["embed_t"], perm=[1, 0]),
        _onnx_helper.make_node("MatMul", ["x2", "embed_t"], ["logits"]),
    ], [_init("embed", (50, 8), _np.float16), _init("w1", (8, 8), _np.float16)],
        '{"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, '
        '"hidden_size": 8, "head_dim": 4}')
    # 3. dynamic int8 (as ORTQuantizer writes it): 8x12 int8 weights (96 bytes), 12 float32 scales (48), 12 int8
    #    zero points (12, stored as int32_data, not raw bytes), a 12x50 float32 head (2400), a Gather-only 50x8
    #    float32 embedding (1 row: 32). KV: 3 layers, 1 KV head, head_dim 8 from the config, float32 by default.
    _int8_file = _save("int8", "model_quantized.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
        _onnx_helper.make_node("MatMulInteger", ["xq", "w1_quantized", "xzp", "w1_zero_point"], ["acc"]),
        _onnx_helper.make_node("Cast", ["acc"], ["accf"], to=_TP.FLOAT),
        _onnx_helper.make_node("Mul", ["xs", "w1_scale"], ["scale"]),
        _onnx_helper.make_node("Mul", ["accf", "scale"], ["h"]),
        _onnx_helper.make_node("MatMul", ["h", "head"], ["logits"]),
    ], [_init("embed", (50, 8), _np.float32), _init("w1_quantized", (8, 12), _np.int8),
        _init("w1_scale", (12,), _np.float32), _onnx_helper.make_tensor("w1_zero_point", _TP.INT8, [12], [0] * 12),
        _init("head", (12, 50), _np.float32)],
        '{"model_type": "llama", "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 1, '
        '"hidden_size": 16, "head_dim": 8}')
    # 4. MatMulNBits, passed as a folder: 4-bit 32 -> 12 in blocks of 16 (packed uint8 12x2x8 = 192 bytes, 24 float32
    #    scales = 96, 12 packed zero points = 12), 8-bit 12 -> 50 (uint8 50x1x16 = 800, 50 scales = 200, 50 zero
    #    points = 50), a Gather-only 50x32 float32 embedding (2 rows: 256). KV: 2 layers, 2 KV heads, head_dim
    #    32 // 2 = 16, 1 byte as asked.
    _save("nbits", "model.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("MatMulNBits", ["x", "w4_Q4", "w4_scales", "w4_zero_points"], ["h"], domain="com.microsoft",
                      K=32, N=12, bits=4, block_size=16),
        _onnx_helper.make_node("MatMulNBits", ["h", "w8_Q8", "w8_scales", "w8_zero_points"], ["logits"], domain="com.microsoft",
                      K=12, N=50, bits=8, block_size=16),
    ], [_init("embed", (50, 32), _np.float32), _init("w4_Q4", (12, 2, 8), _np.uint8),
        _init("w4_scales", (24,), _np.float32),
        _init("w4_zero_points", (12,), _np.uint8), _init("w8_Q8", (50, 1, 16), _np.uint8),
        _init("w8_scales", (50,), _np.float32), _init("w8_zero_points", (50,), _np.uint8)],
        '{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2, '
        '"hidden_size": 32}')
    # 5. 4-bit QDQ (DequantizeLinear in blocks of 16), INT4 and UINT4 initializers packed two to a byte: int4
    #    weights 32x12 (384 elements: 192 bytes, written packed in int32_data), float32 scales 2x12 (96), int4
    #    zero points 2x12 (24 elements: 12 bytes); uint4 weights 12x50 (600 elements: 300 bytes, packed in
    #    raw_data), float32 scales 1x50 (200), uint4 zero points 1x50 (50 elements: 25 bytes); a Gather-only
    #    50x32 float32 embedding (1 row: 128). KV: 1 layer, 1 KV head, head_dim 8, float32 by default.
    _int4, _uint4 = (_onnx_helper.tensor_dtype_to_np_dtype(_t) for _t in (_TP.INT4, _TP.UINT4))
    _four_bit_file = _save("four_bit", "model.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("DequantizeLinear", ["w1_q", "w1_scale", "w1_zero_point"], ["w1"], axis=0, block_size=16),
        _onnx_helper.make_node("MatMul", ["x", "w1"], ["h"]),
        _onnx_helper.make_node("DequantizeLinear", ["head_q", "head_scale", "head_zero_point"], ["head"], axis=0,
                               block_size=16),
        _onnx_helper.make_node("MatMul", ["h", "head"], ["logits"]),
    ], [_init("embed", (50, 32), _np.float32), _onnx_helper.make_tensor("w1_q", _TP.INT4, [32, 12], [1] * 384),
        _init("w1_scale", (2, 12), _np.float32), _onnx_helper.make_tensor("w1_zero_point", _TP.INT4, [2, 12], [0] * 24),
        _init("head_q", (12, 50), _uint4), _init("head_scale", (1, 50), _np.float32),
        _init("head_zero_point", (1, 50), _uint4)],
        '{"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 1, '
        '"hidden_size": 32, "head_dim": 8}', opset=21)
    # 6. rotary cos/sin caches read by a fused RotaryEmbedding node (ONNX Runtime's com.microsoft domain): not
    #    Gather, so each 64x4 float32 table counts in full (1024 bytes each); a Gather-only 50x8 float32 embedding
    #    (2 rows: 64), an 8x50 float32 head (1600). KV: 1 layer, 2 KV heads, head_dim 4, float32 by default.
    _rotary_file = _save("rotary", "model.onnx", [
        _onnx_helper.make_node("Gather", ["embed", "ids"], ["x"]),
        _onnx_helper.make_node("RotaryEmbedding", ["x", "ids", "cos_cache", "sin_cache"], ["x_rot"],
                               domain="com.microsoft"),
        _onnx_helper.make_node("MatMul", ["x_rot", "head"], ["logits"]),
    ], [_init("embed", (50, 8), _np.float32), _init("cos_cache", (64, 4), _np.float32),
        _init("sin_cache", (64, 4), _np.float32), _init("head", (8, 50), _np.float32)],
        '{"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, '
        '"hidden_size": 8}')
    _cases = (
        ("a float32 export with its weights in an external data file (a folder), batch 3, 6 tokens of context",
         _scratch + "/f32", 6, 3, None, 3 * 8 * 4 + 8 * 12 * 4 + 12 * 50 * 4 + 8 + 2 * 2 * 2 * 4 * 6 * 3 * 4),
        ("a float16 graph whose output layer is tied to the embedding, batch 2, 3 tokens, kv_bytes_per_element=2",
         _tied_file, 3, 2, 2, 50 * 8 * 2 + 8 * 8 * 2 + 2 * 1 * 2 * 4 * 3 * 2 * 2),
        ("a dynamic int8 graph (int8 weights, float32 scales, int8 zero points), batch 1, 10 tokens of context",
         _int8_file, 10, 1, None, 32 + 96 + 48 + 12 + 2400 + 2 * 3 * 1 * 8 * 10 * 1 * 4),
        ("a MatMulNBits graph (4- and 8-bit blocks with scales and zero points, a folder), batch 2, 4 tokens, "
         "kv_bytes_per_element=1", _scratch + "/nbits", 4, 2, 1,
         192 + 96 + 12 + 800 + 200 + 50 + 2 * 32 * 4 + 2 * 2 * 2 * 16 * 4 * 2 * 1),
        ("a 4-bit QDQ graph (INT4 and UINT4 initializers, half a byte per element), batch 1, 5 tokens of context",
         _four_bit_file, 5, 1, None, 128 + 192 + 96 + 12 + 300 + 200 + 25 + 2 * 1 * 1 * 8 * 5 * 1 * 4),
        ("a graph whose rotary cos/sin tables feed a fused RotaryEmbedding node, not Gather (they count in full), "
         "batch 2, 3 tokens of context", _rotary_file, 3, 2, None, 2 * 8 * 4 + 2 * 64 * 4 * 4 + 8 * 50 * 4
         + 2 * 1 * 2 * 4 * 3 * 2 * 4),
    )
    _checked = 0
    for _case_what, _case_path, _case_context, _case_batch, _case_kv, _case_want in _cases:
        if _case_kv is None:
            _got = _num(decode_bytes_per_token(_case_path, _case_context, batch_size=_case_batch),
                        "decode_bytes_per_token(...)")
        else:
            _got = _num(decode_bytes_per_token(_case_path, _case_context, batch_size=_case_batch,
                                               kv_bytes_per_element=_case_kv), "decode_bytes_per_token(...)")
        assert -0.5 <= _got - _case_want <= 0.5, \
            f"{_case_what}: expected {_case_want} bytes per decode step, got {_got}"
        _checked += 1
    assert _checked == 6
finally:
    # include: leave_scratch_dir
### END HIDDEN TESTS

# %% [markdown]
# Now the table. Write `add_memory_bound(table, bandwidth_gbps, bytes_by_row, key="variant",
# ms_column="avg_latency_per_token_ms")`: return a **copy** of `table` (leave the argument unchanged)
# with two more columns at the end,
#
# * `bound_ms_per_token` = bytes / (bandwidth_gbps × 10⁹) × 1000, the fastest a step could be;
# * `pct_of_bound` = 100 × `bound_ms_per_token` / the measured milliseconds in `ms_column`: 100% is
#   the memory limit, 25% means the step takes four times what its bytes need.
#
# `bytes_by_row` maps a row's value in the `key` column (a variant name; a batch size for the batching
# table) to its bytes per step; a row it does not name gets NaN in both columns.

# %% [solution id=add_memory_bound]
def add_memory_bound(table, bandwidth_gbps, bytes_by_row, key="variant", ms_column="avg_latency_per_token_ms"):
    """A copy of table with bound_ms_per_token (bytes / bandwidth, in ms) and pct_of_bound (bound / measured x 100)."""
    ### BEGIN SOLUTION
    bandwidth_gbps = float(bandwidth_gbps)
    if not bandwidth_gbps > 0:
        raise ValueError(f"bandwidth_gbps must be positive, got {bandwidth_gbps}")
    out = table.copy()
    step_bytes = [float(bytes_by_row[k]) if k in bytes_by_row else float("nan") for k in out[key]]
    out["bound_ms_per_token"] = [b / (bandwidth_gbps * 1e9) * 1000.0 for b in step_bytes]
    out["pct_of_bound"] = 100.0 * out["bound_ms_per_token"] / out[ms_column]
    return out
    ### END SOLUTION

# %% [tests id=test_memory_bound points=2]
"""Check add_memory_bound: the bound in ms from bytes and GB/s (10**9), the percentage, NaN rows, an unchanged input."""
_t = pd.DataFrame({"variant": ["a", "b"], "avg_latency_per_token_ms": [100.0, 10.0]})
_out = add_memory_bound(_t, 8.0, {"a": 4e8, "b": 4e7})
assert list(_out.columns) == ["variant", "avg_latency_per_token_ms", "bound_ms_per_token", "pct_of_bound"], \
    "keep the table's columns and add bound_ms_per_token and pct_of_bound at the end"
assert abs(_out["bound_ms_per_token"][0] - 50.0) < 1e-9, "4e8 bytes at 8 GB/s (8e9 bytes/s) take 50 ms"
assert abs(_out["pct_of_bound"][0] - 50.0) < 1e-9, "a 50 ms bound measured at 100 ms is 50% of the bound"
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, the frame's columns read as lists and
# each value as a real number, compared with plain arithmetic.
import importlib.util as _ilu
import pandas as _pd

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


# include: column_of_numbers


def _close(got, want, what):
    if want != want:
        assert got != got, f"{what}: a row missing from bytes_by_row must get NaN, got {got}"
    else:
        assert -1e-9 * want <= got - want <= 1e-9 * want, f"{what}: expected {want}, got {got}"


# Three variants at 12.5 GB/s: 2.5e8 bytes -> 20 ms, measured 40 ms -> 50%; 5e7 bytes -> 4 ms, measured 5 ms -> 80%;
# "c" is not in bytes_by_row -> NaN.
_table = _pd.DataFrame({"variant": ["a", "b", "c"], "tokens_per_sec": [25.0, 200.0, 10.0],
                        "avg_latency_per_token_ms": [40.0, 5.0, 100.0]})
_out = add_memory_bound(_table, 12.5, {"a": 2.5e8, "b": 5e7})
assert _list(_table.columns) == ["variant", "tokens_per_sec", "avg_latency_per_token_ms"], \
    "add_memory_bound must return a copy and leave the table it is given unchanged"
_bound, _pct = _column(_out, "bound_ms_per_token"), _column(_out, "pct_of_bound")
_checked = 0
for _i, _want_bound, _want_pct in ((0, 20.0, 50.0), (1, 4.0, 80.0), (2, _float("nan"), _float("nan"))):
    _close(_bound[_i], _want_bound, f"bound_ms_per_token of row {_i} (bytes / (GB/s x 10**9) x 1000)")
    _close(_pct[_i], _want_pct, f"pct_of_bound of row {_i} (100 x bound / measured ms)")
    _checked += 1
# The batching table: rows keyed by batch size, measured ms per decode step in another column.
_batching = _pd.DataFrame({"batch_size": [1, 4], "ms_per_step": [10.0, 16.0]})
_out = add_memory_bound(_batching, 2.0, {1: 1e7, 4: 1.2e7}, key="batch_size", ms_column="ms_per_step")
_bound, _pct = _column(_out, "bound_ms_per_token"), _column(_out, "pct_of_bound")
for _i, _want_bound, _want_pct in ((0, 5.0, 50.0), (1, 6.0, 37.5)):
    _close(_bound[_i], _want_bound, f"batching table, bound_ms_per_token of row {_i}")
    _close(_pct[_i], _want_pct, f"batching table, pct_of_bound of row {_i}")
    _checked += 1
assert _checked == 5
### END HIDDEN TESTS

