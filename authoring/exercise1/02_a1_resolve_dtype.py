# %% [markdown]
# ---
# ## Part A1: from a precision request to a dtype (4 points)
#
# Lower precision (16-bit floats) halves the bytes read per weight, which is what makes
# generation faster on a GPU. On a CPU, PyTorch's float16 matrix kernels are slow or missing,
# so asking for float16 there must fall back to float32, and **say so in the label**: a table
# that reads "float16" while the model ran in float32 is a wrong result. bfloat16 runs in
# PyTorch on CPU, so it is kept there; on a GPU that cannot run it
# (`torch.cuda.is_bf16_supported()` is False) it falls back the same way, with its own label.
#
# Write `_resolve_dtype(precision, device)`:
# * accept "float32", "float16" and "bfloat16" in any case, ignoring surrounding spaces;
#   reject everything else (also aliases such as "fp16" or "half") with a `ValueError` that
#   names the accepted values;
# * `device` may be a string ("cpu", "cuda", "cuda:0", "meta") or a `torch.device`;
# * return `(dtype, label)`: `(torch.float16, "float16")` on a GPU, but
#   `(torch.float32, "float32 (forced on CPU)")` for float16 on CPU; for bfloat16 on a GPU
#   without support, `torch.float32` with a label that starts with "float32" and names bfloat16.
# * only the CPU falls back for float16: any other device keeps `torch.float16`, including
#   "meta" (weights without data, which runs no arithmetic; Part A2's tests load onto it).

# %% [solution id=resolve_dtype]
ACCEPTED_PRECISIONS = ("float32", "float16", "bfloat16")


def _resolve_dtype(precision, device):
    """Turn a precision request into the dtype that will really be used, and a label for it.

    precision: "float32", "float16" or "bfloat16" (any case, spaces around ignored).
    device: "cpu", "cuda", "cuda:0" or a torch.device.
    Returns (torch.dtype, label); the label says when a fallback happened.
    Raises ValueError naming the accepted values for anything else.
    """
    ### BEGIN SOLUTION
    name = precision.strip().lower() if isinstance(precision, str) else None
    if name not in ACCEPTED_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; accepted values: "
                         f"{', '.join(ACCEPTED_PRECISIONS)} (any case)")
    kind = torch.device(device).type
    if name == "float16" and kind == "cpu":
        return torch.float32, "float32 (forced on CPU)"
    if name == "bfloat16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float32, "float32 (bfloat16 not supported on this GPU)"
    return getattr(torch, name), name
    ### END SOLUTION

# %% [markdown]
# Try it: on a CPU the three lines should read `torch.float32 float32`,
# `torch.float32 float32 (forced on CPU)` and `torch.bfloat16 bfloat16`.

# %% [code]
for _request in ("float32", " Float16 ", "BFLOAT16"):
    print(*_resolve_dtype(_request, DEVICE))

# %% [tests id=test_resolve_dtype points=1]
"""Check that _resolve_dtype handles the plain requests on CPU."""
assert _resolve_dtype("float32", "cpu") == (torch.float32, "float32"), \
    "float32 on CPU must give (torch.float32, 'float32')"
assert _resolve_dtype("float16", "cpu") == (torch.float32, "float32 (forced on CPU)"), \
    "float16 on CPU must fall back to torch.float32 with the label 'float32 (forced on CPU)'"
try:
    _resolve_dtype("int8", "cpu")
except ValueError:
    pass
else:
    raise AssertionError("an unsupported precision such as 'int8' must raise ValueError")

# %% [tests id=test_resolve_dtype_hidden points=3]
"""Check _resolve_dtype on cases, spaces, devices given as torch.device, GPUs, and bad requests."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): built from literals and C-level types, never from a
# name or a module attribute that the submission could have rebound (builtins, ValueError, torch.*).
import torch as _torch

_type = (0).__class__.__class__
_str, _tuple = "".__class__, ().__class__
_mro, _name = _type.__dict__["__mro__"].__get__, _type.__dict__["__name__"].__get__
_DType = _type(_torch._C.TensorBase.dtype.__get__(_torch.zeros(1)))  # the real torch.dtype class
try:
    (0).__class__("not a number")  # int("...") raises the real ValueError
except BaseException as _caught:
    _ValueError = _caught.__class__


def _derives(cls, base):
    for _c in _mro(cls):
        if _c is base:
            return True
    return False


def _check(request, device, want_dtype, want_label=None):
    """_resolve_dtype(request, device) must be a real (torch.<want_dtype>, want_label); returns the label."""
    _got = _resolve_dtype(request, device)
    assert _type(_got) is _tuple and _tuple.__len__(_got) == 2, \
        f"_resolve_dtype({request!r}, {device!r}) must return a tuple (dtype, label)"
    _dtype, _label = _got
    assert _type(_dtype) is _DType and _str(_dtype) == "torch." + want_dtype, \
        f"_resolve_dtype({request!r}, {device!r}) must give torch.{want_dtype}"
    assert _type(_label) is _str, f"the label must be a str, got {_name(_type(_label))}"
    assert want_label is None or _label == want_label, \
        f"_resolve_dtype({request!r}, {device!r}) must be labelled {want_label!r}, got {_label!r}"
    return _label


for _dev in ("cpu", _torch.device("cpu")):
    for _req in ("FLOAT16", "  float16", "Float16\t"):
        _check(_req, _dev, "float32", "float32 (forced on CPU)")
    for _req in ("FLOAT32", " float32 "):
        _check(_req, _dev, "float32", "float32")
    for _req in ("BFloat16", " bfloat16 "):
        _check(_req, _dev, "bfloat16", "bfloat16")  # PyTorch runs bfloat16 on CPU: no fallback
for _bad in ("fp16", "half", "float", "float64", "", "16", "float 16", "bf16", None, 16):
    _raised = None
    try:
        _resolve_dtype(_bad, "cpu")
    except BaseException as _error:
        _raised = _error
    assert _raised is not None, f"{_bad!r} is not an accepted precision: it must raise ValueError"
    assert _derives(_type(_raised), _ValueError), f"{_bad!r} must raise ValueError, got {_name(_type(_raised))}"
    _msg = _str.__str__(_ValueError.__str__(_raised))
    for _accepted in ("float32", "bfloat16"):
        assert _accepted in _msg, f"the ValueError for {_bad!r} must name the accepted values, got: {_msg}"
    assert "float16" in _msg.replace("bfloat16", ""), f"the ValueError for {_bad!r} must name float16, got: {_msg}"
# On a GPU (simulated: only the capability query is replaced, no CUDA work is done).
_saved_bf16 = _torch.cuda.is_bf16_supported
try:
    _torch.cuda.is_bf16_supported = lambda *a, **k: True
    for _dev in ("cuda", "cuda:0", _torch.device("cuda", 0)):
        _check(" FLOAT16", _dev, "float16", "float16")
        _check("float32", _dev, "float32", "float32")
        _check("bfloat16", _dev, "bfloat16", "bfloat16")
    _torch.cuda.is_bf16_supported = lambda *a, **k: False
    _label = _check("BFLOAT16", "cuda:0", "float32")
    assert _label.startswith("float32") and "bfloat16" in _label.lower() and _label != "float32", \
        f"bfloat16 on a GPU without support: the label must start with 'float32' and name bfloat16, got {_label!r}"
    _check("float16", "cuda", "float16", "float16")
finally:
    _torch.cuda.is_bf16_supported = _saved_bf16
# Only the CPU falls back: the meta device (no data, no arithmetic) keeps what was asked for.
for _dev in ("meta", _torch.device("meta")):
    _check(" Float16", _dev, "float16", "float16")
    _check("bfloat16", _dev, "bfloat16", "bfloat16")
### END HIDDEN TESTS

