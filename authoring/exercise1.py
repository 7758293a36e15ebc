# %% [define name=fresh_module]
def _fresh(name):
    """A new instance of a built-in module: what a submission replaced on the imported one is original here."""
    _spec = _ilu.find_spec(name)
    _module = _spec.loader.create_module(_spec)
    _spec.loader.exec_module(_module)
    return _module

# %% [define name=true_number]
def _num(value, what):
    """The true value of an int, float or numpy scalar (a subclass's overridden methods are ignored)."""
    for _c in _mro(_type(value)):
        if _c is _float:
            return _float.__float__(value)
        if _c is _int:
            return _int.__int__(value)
        if _name(_c) == "generic" and not _flags(_c) & 512:  # numpy.generic, a C type
            return _num(_c.item(value), what)
    assert False, f"{what} must be a number, got {_name(_type(value))}"

# %% [define name=true_text]
def _text(value, what):
    for _c in _mro(_type(value)):
        if _c is _str:
            return _str.__str__(value)
    assert False, f"{what} must be a str, got {_name(_type(value))}"

# %% [define name=simulated_gpu]
def _on_gpu(tensor):
    """Whether a tensor went through .to(<cuda device>) (simulated: the stand-in GPU keeps it on the CPU)."""
    try:
        return _dict.get(_object.__getattribute__(tensor, "__dict__"), "_course_on_gpu", False) is True
    except BaseException:
        return False


class _FakeGpuParameter:
    device = _torch.device("cuda", 0)


def _is_cuda(value):
    if _type(value) is _str:
        return _str.startswith(value, "cuda")
    return _type(value) is _type(_torch.device("cpu")) and value.type == "cuda"


def _fake_tensor_to(tensor, *args, **kwargs):
    """Tensor.to on the simulated GPU: a CUDA target is dropped (the data stays on the CPU) and noted."""
    _gpu, _rest = False, []
    for _a in args:
        if _is_cuda(_a):
            _gpu = True
        else:
            _list.append(_rest, _a)
    if _is_cuda(kwargs.get("device")):
        _gpu = True
        _dict.pop(kwargs, "device")
    _moved = _TB.to(tensor, *_rest, **kwargs)
    if _gpu:
        _object.__setattr__(_moved, "_course_on_gpu", True)
    return _moved


def _fake_tensor_cuda(tensor, *args, **kwargs):
    return _fake_tensor_to(tensor, "cuda")


def _on_simulated_gpu(fake, *args, **kwargs):
    """_timed(fake, ...) on a stand-in for a simulated GPU (its synchronize method waits for its queued
    work), with torch.cuda and Tensor.to pointed at the simulation."""
    _saved = (_torch.cuda.synchronize, _torch.cuda.is_available, _torch.Tensor.to, _torch.Tensor.cuda)
    _torch.cuda.synchronize, _torch.cuda.is_available = fake.synchronize, lambda: True
    _torch.Tensor.to, _torch.Tensor.cuda = _fake_tensor_to, _fake_tensor_cuda
    try:
        return _timed(fake, *args, **kwargs)
    finally:
        _torch.cuda.synchronize, _torch.cuda.is_available, _torch.Tensor.to, _torch.Tensor.cuda = _saved

# %% [define name=is_png]
def _is_png(path):
    try:
        _fd = _posix.open(path, _posix.O_RDONLY)
    except:  # noqa: E722 (no exception name a submission could rebind)
        return False
    try:
        return _posix.read(_fd, 8) == b"\x89PNG\r\n\x1a\n"
    finally:
        _posix.close(_fd)

# %% [define name=enter_scratch_dir]
_home = _posix.getcwd()
_scratch = _home + "/.hidden-test-" + _str(_clock.perf_counter_ns())
_posix.mkdir(_scratch)
_posix.chdir(_scratch)

# %% [define name=leave_scratch_dir]
_posix.chdir(_home)
_plt.close("all")
import shutil as _shutil
_shutil.rmtree(_scratch, ignore_errors=True)

# %% [markdown]
# # Exercise 1: generation latency, throughput and INT8 quantization
#
# How fast does a language model write, and what makes it faster without making it worse?
# This notebook answers both questions with measurements you can trust:
#
# **Part A, measuring.** Turn a precision request into a real dtype (with a CPU guard), load a
# model, time `generate` correctly (warm-up, `inference_mode`, synchronisation, only new tokens
# counted), sweep the prompt length and the numeric precision, then split one call into its
# prefill (time to first token) and its decode steps (time per output token).
#
# **Part B, speeding up.** Quantize the model to INT8 with Optimum and ONNX Runtime, ablate
# the KV cache and the padding side, batch requests, check that quality held with perplexity,
# probe awkward prompts, and gather everything in one table with takeaways computed from it.
#
# **Points: 54 in total.** Each graded part names its points. Visible tests help you;
# hidden tests, run when your notebook is graded, do the real checking.
#
# **Profiles.** On your laptop the notebook uses SmolLM2-135M-Instruct (the `full` profile:
# about 5 minutes on a quiet 2-core machine in the course's recorded run, several times that when
# other programs share the cores). When it is graded, or with `COURSE_PROFILE=fast`, it uses a
# tiny random model with the same tokenizer: the text is gibberish and the perplexity huge,
# which is expected. The tests always use the tiny model or stand-ins.

# %% [readonly id=setup]
import atexit
import contextlib
import math
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import helpers  # import before transformers: switches hub ids to offline mode when there is no network
from helpers import quantization as hq
from helpers.texts import BASE_PROMPT, EDGE_PROMPTS, REFERENCE_PROMPT, eval_texts

import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _physical_cores() -> int:
    """Threads to use: OMP_NUM_THREADS when set (a grader running several notebooks at once
    gives each its share this way), else the physical cores (hyper-threads share one core's
    arithmetic units); at least 1."""
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    try:
        import psutil
        count = psutil.cpu_count(logical=False)
    except Exception:
        count = None
    return max(1, int(count or os.cpu_count() or 1))


# One thread count for the whole notebook, for PyTorch and ONNX Runtime alike: letting each
# library pick its own, or changing it between arms, makes timings noisy and unfair. (While an
# ONNX Runtime model from `hq.load_ort` generates, torch only does the bookkeeping of each step and
# runs on one thread: two thread pools spinning on the same cores slow each other down.)
NUM_THREADS = _physical_cores()
torch.set_num_threads(NUM_THREADS)
torch.manual_seed(0)
PROFILE = helpers.get_profile()
DEVICE = helpers.pick_device()
CANDIDATES = helpers.model_candidates()
# Repeats for the "try it" cells of Part B: one in a graded run (the tests re-measure), all otherwise.
TRY_REPEATS = 1 if PROFILE.is_fast else PROFILE.repeats
# ONNX exports and quantized models, kept outside the assignment folder (they are hundreds of MB).
# A student's full run keeps them in a cache folder and reuses the export; a graded run starts empty.
WORK_DIR = (Path(tempfile.mkdtemp(prefix="exercise1-")) if PROFILE.is_fast
            else Path.home() / ".cache" / "llm-course" / "exercise1")
if PROFILE.is_fast:
    atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)


@contextlib.contextmanager
def scratch_folder():
    """Run a block in an empty temporary working folder (the tests use it, so that their small
    runs save their plots there and never overwrite the ones in your artifacts/ folder)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="exercise1-test-") as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(previous)


print(f"profile={PROFILE.name} | device={helpers.describe_device(DEVICE)} | torch threads={NUM_THREADS} | "
      f"torch {torch.__version__} | transformers {transformers.__version__}")

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

# %% [markdown]
# ---
# ## Part A2: loading tokenizer and model (3 points)
#
# Tokenizer and model always come from the **same id**: another model's tokenizer maps text
# to different ids, and every measurement would silently be made on nonsense. The candidate ids
# are tried in order (the hub id first for those online, then the local copy); when every one
# fails, the error must say which ids were tried and why, which is what you need to fix it.
#
# Write `load_model_and_tokenizer(candidates, precision, device)`: use `_resolve_dtype`, load
# both from the first id from which both load (an id whose tokenizer loads but whose model does
# not is a failed candidate, like any other), move the model to the device and dtype, put it in eval
# mode (no dropout), print one line `Loaded: <id> | device=<device> | dtype=<label>` and return
# `(tokenizer, model, model_id_used, dtype_label)`. `device` is any device PyTorch knows: "cpu",
# "cuda", or "meta" (weights without memory, which the tests use to see where your model went).
# When every candidate fails, raise a `RuntimeError` that names each id tried and, next to it,
# the error it raised (its type or its message).

# %% [solution id=load_model_and_tokenizer]
def load_model_and_tokenizer(candidates, precision="float32", device="cpu"):
    """Load tokenizer and model from the first candidate id that loads.

    candidates: model ids or local folders, tried in order. precision: as for _resolve_dtype.
    device: "cpu", "cuda", "meta"... Returns (tokenizer, model, model_id_used, dtype_label) with the
    model in eval mode on device and dtype. Raises RuntimeError naming every id tried and the error
    each one raised.
    """
    ### BEGIN SOLUTION
    dtype, label = _resolve_dtype(precision, device)
    failures = []
    for model_id in [candidates] if isinstance(candidates, (str, Path)) else list(candidates):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_id))
            model = AutoModelForCausalLM.from_pretrained(str(model_id), dtype=dtype)
        except Exception as error:  # offline hub id, missing folder, broken files...
            reason = " ".join(str(error).split())[:200]
            failures.append(f"{model_id}: {type(error).__name__}: {reason}")
            continue
        model = model.to(device=device, dtype=dtype).eval()
        print(f"Loaded: {model_id} | device={device} | dtype={label}")
        return tokenizer, model, str(model_id), label
    raise RuntimeError("no model candidate could be loaded; tried:\n  "
                       + "\n  ".join(failures or ["(no candidates given)"]))
    ### END SOLUTION

# %% [markdown]
# Loading the model the rest of the notebook uses. Until your function works, this cell falls
# back to the course's own loader so that the later parts can still run.
#
# **Which weights you are measuring.** Offline, the model is the embedded copy,
# `models/SmolLM2-135M-Instruct`, which the set-up converted from the file
# `SmolLM2-135M-Instruct.Q4_1.gguf`. That file stores every attention and MLP weight in GGUF's
# 4-bit **Q4_1** format: each block of 32 consecutive weights of a row keeps a 4-bit integer per
# weight plus one float16 scale and one float16 minimum (weight = minimum + scale x integer);
# the embedding table, which is also the output layer, is stored as Q8_0 (8 bits, block 32).
# transformers dequantizes all of it to float32 on load. So the "float32" model computes and
# stores in float32, 4 bytes per weight, but in every block of 32 projection weights there are
# only 16 distinct values: it is a 4-bit model in float32 clothing. Its speed is that of any
# float32 model of its size (the kernels do not care where the values came from), and its
# quality is that of the 4-bit file; Part B8 shows what this means for quantizing it again.
# Online, the hub id loads first and gives the original weights, published in bfloat16 and
# converted to float32 here: a slightly different model (its perplexity will not match the
# walkthrough's numbers) to which none of this applies. Whichever loads, every later part uses
# that one model: `MODEL_ID`, and `helpers.local_model_dir(MODEL_ID)` for its files.

# %% [code]
try:
    tokenizer, model, MODEL_ID, DTYPE_LABEL = load_model_and_tokenizer(CANDIDATES, "float32", DEVICE)
except NotImplementedError:
    print("load_model_and_tokenizer is not written yet: using helpers.load_causal_lm for now")
    tokenizer, model, MODEL_ID = helpers.load_causal_lm(CANDIDATES, device=DEVICE)
    DTYPE_LABEL = "float32"

# %% [tests id=test_load_model_and_tokenizer points=1]
"""Check that load_model_and_tokenizer loads a candidate in eval mode and reports it."""
import contextlib as _contextlib
import io as _io

_buffer = _io.StringIO()
with _contextlib.redirect_stdout(_buffer):
    _tok, _mdl, _used, _label = load_model_and_tokenizer([str(helpers.TINY_DIR)], "float32", "cpu")
assert _used == str(helpers.TINY_DIR), f"model_id_used must be the id that loaded, got {_used!r}"
assert not _mdl.training, "the model must be in eval mode: call model.eval()"
assert _label == "float32", f"dtype label must be 'float32', got {_label!r}"
assert f"Loaded: {helpers.TINY_DIR} | device=cpu | dtype=float32" in _buffer.getvalue(), \
    f"print one line 'Loaded: <id> | device=<device> | dtype=<label>', got {_buffer.getvalue()!r}"

# %% [tests id=test_load_model_and_tokenizer_hidden points=2]
"""Check the fallback order, one id for both, the error when all fail, and the model's dtype and device."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, dtypes and devices read by C-level
# descriptors, printed text captured in a buffer from a fresh instance of the io module, the real
# RuntimeError taken from an error Python itself raises.
import contextlib as _contextlib
import importlib.util as _ilu
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_str, _int, _tuple, _list = "".__class__, (0).__class__, ().__class__, [].__class__
_mro, _name = _type.__dict__["__mro__"].__get__, _type.__dict__["__name__"].__get__
_dtype_of = _torch._C.TensorBase.dtype.__get__
_device_of = _torch._C.TensorBase.device.__get__


def _stop_in_generator():
    yield ().__iter__().__next__()  # StopIteration inside a generator becomes RuntimeError (PEP 479)


try:
    _stop_in_generator().__next__()
except BaseException as _caught:
    _RuntimeError = _caught.__class__


# include: fresh_module


_StringIO = _fresh("_io").StringIO


def _load(candidates, precision, device):
    """(tokenizer, model, id, label) from the student's loader, and what it printed (a real str)."""
    _buffer = _StringIO()
    with _contextlib.redirect_stdout(_buffer):
        _result = load_model_and_tokenizer(candidates, precision, device)
    _size = _tuple.__len__(_result) if _type(_result) is _tuple else _list.__len__(_result) \
        if _type(_result) is _list else -1
    assert _size == 4, \
        "load_model_and_tokenizer must return (tokenizer, model, model_id_used, dtype_label)"
    _printed = _buffer.getvalue()
    assert _type(_printed) is _str
    return _result, _printed


def _dtypes(model):
    return {_str(_dtype_of(_p)) for _p in model.parameters()}


def _devices(model):
    return {_str(_device_of(_p).type) for _p in model.parameters()}


def _in_eval_mode(model):
    for _module in model.modules():
        if _module.training is not False:
            return False
    return True


_tiny = _str(_helpers.TINY_DIR)
_missing = ["/nonexistent/course-model-a", "/nonexistent/course-model-b"]
(_tok, _mdl, _used, _label), _printed = _load([_missing[0], _tiny], " FLOAT16 ", "cpu")
assert _type(_used) is _str and _used == _tiny, f"after a failing candidate the next one must be used, got {_used!r}"
assert _type(_label) is _str and _label == "float32 (forced on CPU)", \
    f"float16 on CPU must be labelled 'float32 (forced on CPU)', got {_label!r}"
assert _dtypes(_mdl) == {"torch.float32"}, f"float16 requested on CPU: the model must be float32, got {_dtypes(_mdl)}"
_vocab_tok, _vocab_mdl = _tok.vocab_size, _mdl.config.vocab_size
assert _type(_vocab_tok) is _int and _type(_vocab_mdl) is _int and _vocab_tok == _vocab_mdl, \
    "tokenizer and model must come from the same id"
assert _in_eval_mode(_mdl), "the model must be in eval mode"
assert "dtype=float32 (forced on CPU)" in _printed, f"the Loaded line must show the fallback label, got {_printed!r}"
assert f"Loaded: {_tiny} | device=cpu | dtype=float32 (forced on CPU)" in _printed, \
    f"print one line 'Loaded: <id> | device=<device> | dtype=<label>', got {_printed!r}"
(_tok, _mdl, _used, _label), _printed = _load([_tiny], "bfloat16", _torch.device("cpu"))
assert _dtypes(_mdl) == {"torch.bfloat16"} and _type(_label) is _str and _label == "bfloat16", \
    "bfloat16 on CPU must load a bfloat16 model labelled 'bfloat16'"
# Where the model goes: the meta device holds weights without data, so a CPU grader can see whether
# the model was moved to the device it was asked for.
(_tok, _mdl, _used, _label), _printed = _load([_tiny], "float32", "meta")
assert _devices(_mdl) == {"meta"}, \
    f"the model must be moved to the device asked for ('meta' here), its weights are on {_devices(_mdl)}"
# Two candidates that both load (a link to the tiny model, then the model itself): the first one is
# used, and tokenizer and model both come from it.
_posix, _clock = _fresh("posix"), _fresh("time")
_alias = _posix.getcwd() + "/.hidden-test-model-" + _str(_clock.perf_counter_ns())
_posix.symlink(_tiny, _alias)
try:
    (_tok, _mdl, _used, _label), _printed = _load([_alias, _tiny], "float32", "cpu")
finally:
    _posix.unlink(_alias)
assert _type(_used) is _str and _used == _alias, \
    f"the candidates are tried in order and the first that loads is used ({_alias!r}), got {_used!r}"
assert _str(_tok.name_or_path) == _alias and _str(_mdl.name_or_path) == _alias, \
    "tokenizer and model must both be loaded from the id that is used (the first that loads)"


def _read(path):
    _fd = _posix.open(path, _posix.O_RDONLY)
    _chunks = []
    try:
        _chunk = _posix.read(_fd, 1 << 16)
        while _chunk:
            _list.append(_chunks, _chunk)
            _chunk = _posix.read(_fd, 1 << 16)
    finally:
        _posix.close(_fd)
    return b"".join(_chunks)


def _ids_of(tokenizer, text):
    _ids = tokenizer(text).input_ids
    assert _type(_ids) is _list, "the tokenizer returned must give input_ids as a list"
    return _ids


# A candidate whose tokenizer loads but whose model does not: a folder with the tiny model's tokenizer
# files, set to put a BOS token in front of every text (so it encodes text differently), and no config or
# weights. Tried before the tiny model, tokenizer and model must both come from the tiny model.
_tok_only = _posix.getcwd() + "/.hidden-test-tokenizer-only-" + _str(_clock.perf_counter_ns())
_text = "The cat sat on the mat."
_tried = [_missing[0], _tok_only, _missing[1]]
_posix.mkdir(_tok_only)
try:
    _settings = _read(_tiny + "/tokenizer_config.json")
    _changed = _settings.replace(b'"add_bos_token": false', b'"add_bos_token": true')
    assert _changed != _settings, "test set-up: the tiny model's tokenizer must have add_bos_token false"
    _fd = _posix.open(_tok_only + "/tokenizer_config.json", _posix.O_WRONLY | _posix.O_CREAT | _posix.O_TRUNC, 0o644)
    try:
        _posix.write(_fd, _changed)
    finally:
        _posix.close(_fd)
    for _file in ("tokenizer.json", "special_tokens_map.json"):
        _posix.symlink(_tiny + "/" + _file, _tok_only + "/" + _file)
    _want, _other = _ids_of(_AutoTokenizer.from_pretrained(_tiny), _text), \
        _ids_of(_AutoTokenizer.from_pretrained(_tok_only), _text)
    assert _want != _other, "test set-up: the two tokenizers must encode the text differently"
    (_tok, _mdl, _used, _label), _printed = _load([_tok_only, _tiny], "float32", "cpu")
    assert _type(_used) is _str and _used == _tiny, \
        f"{_tok_only!r} has a tokenizer but no model, so it does not load: the next candidate must be used, got {_used!r}"
    _got = _ids_of(_tok, _text)
    assert _got == _want and _got != _other and _str(_tok.name_or_path) == _tiny, \
        f"tokenizer and model must both come from the id that is used ({_tiny!r}); the tokenizer returned is " \
        f"the one of {_tok_only!r}, which has a tokenizer but no model"
    # Every candidate fails: the first and the last are missing, the middle one has no model.
    _raised = None
    try:
        with _contextlib.redirect_stdout(_StringIO()):
            load_model_and_tokenizer(_tried, "float32", "cpu")
    except BaseException as _error:
        _raised = _error
    # What from_pretrained says about each of them: the starts of its messages (between the ids they name).
    _pieces = {}
    for _id in _tried:
        _pieces[_id] = []
        for _loader in (_AutoTokenizer.from_pretrained, _AutoModel.from_pretrained):
            try:
                _loader(_id)
            except BaseException as _error:
                _list.append(_pieces[_id], " ".join(_str.__str__(_type(_error).__str__(_error)).split()))
finally:
    for _file in ("tokenizer_config.json", "tokenizer.json", "special_tokens_map.json"):
        try:
            _posix.unlink(_tok_only + "/" + _file)
        except:  # noqa: E722 (no exception name a submission could rebind)
            pass
    try:
        _posix.rmdir(_tok_only)
    except:  # noqa: E722
        pass
assert _raised is not None, "loading only candidates that fail must raise an error"
_is_runtime_error = False
for _c in _mro(_type(_raised)):
    _is_runtime_error = _is_runtime_error or _c is _RuntimeError
assert _is_runtime_error, f"when every candidate fails raise RuntimeError, got {_name(_type(_raised))}"
_msg = _str.__str__(_type(_raised).__str__(_raised))
for _id in _tried:
    assert _id in _msg, f"when every candidate fails the error must name every id tried, got: {_msg}"
# Why each one failed, next to its id (between the ids named before and after it): the error that
# loading it raised, by the name of its type (a name ending in Error or Exception) or by the start of
# its message as from_pretrained gives it. A loader that raises its own error (say FileNotFoundError
# for a missing folder) and names its type is as right as one that passes from_pretrained's on.
_flat = " ".join(_msg.split())
_marks = []
for _id in _tried:
    _at = _flat.find(_id)
    while _at >= 0:
        _list.append(_marks, (_at, _at + _str.__len__(_id), _id))
        _at = _flat.find(_id, _at + 1)
_list.sort(_marks)


def _names_an_error_type(text):
    for _word in ("Error", "Exception"):
        _at = text.find(_word)
        while _at >= 0:
            if _at > 0 and text[_at - 1].isalpha():
                return True
            _at = text.find(_word, _at + 1)
    return False


def _quotes_a_message(text, messages):
    for _message in messages:
        _parts = [_message]
        for _id in _tried:
            _parts = [_piece for _part in _parts for _piece in _part.split(_id)]
        for _part in _parts:
            _part = _part.strip(" '\"`:.,;()[]")
            if _str.__len__(_part) >= 8 and _part[:24] in text:
                return True
    return False


_explained = {_id: False for _id in _tried}
_index = 0
while _index < _list.__len__(_marks):
    _start, _end, _id = _marks[_index]
    _before = _flat[_marks[_index - 1][1] if _index > 0 else 0:_start]
    _after = _flat[_end:_marks[_index + 1][0] if _index + 1 < _list.__len__(_marks) else _str.__len__(_flat)]
    for _near in (_before, _after):
        if _names_an_error_type(_near) or _quotes_a_message(_near, _pieces[_id]):
            _explained[_id] = True
    _index += 1
for _id in _tried:
    assert _explained[_id], \
        f"when every candidate fails the error must say, next to each id tried, why it failed (the error " \
        f"loading it raised: its type or its message); nothing of the kind next to {_id!r} in: {_msg}"
del _tok, _mdl
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part A3: timing `generate` (7 points)
#
# A fair timing of one `generate` call needs five things:
#
# 1. **One untimed warm-up call.** The first call pays one-off costs (memory allocation, kernel
#    selection, lazy initialisation) that a user does not pay on every request. The warm-up
#    belongs to a *setting* (model, prompt, batch, cache on or off), not to each measurement:
#    when the same setting is timed several times in a row, each timed call has already warmed
#    up the next one, so `warmup=False` skips the extra call (`time_repeats` below does this).
# 2. **`torch.inference_mode()`** around the timed call: no autograd bookkeeping, which is what
#    serving does; timing with gradients on measures a slower program.
# 3. **`time.perf_counter()`**, monotonic and fine-grained; and on CUDA, **`torch.cuda.synchronize()`
#    right before and right after**: GPU work is queued asynchronously, so without it the clock
#    stops when the work was *queued*, not done.
# 4. **Inputs on the model's device** (`model.device`).
# 5. **A fixed number of new tokens**: greedy decoding (`do_sample=False`) with
#    `min_new_tokens = max_new_tokens`. Otherwise the model may stop early at an end-of-text token,
#    and two runs that generated 3 and 30 tokens cannot be compared by latency.
#
# Count **only new tokens**: the output of `generate` contains the prompt too. For a batch
# (a list of prompts), count the new tokens of every sequence. Pad on the tokenizer's
# `padding_side` as you find it: the callers set it (left for generation; one ablation arm in
# Part B pads on the right on purpose).
# The metrics must agree: `tokens_per_sec = tokens_generated / total_latency_s` and
# `avg_latency_per_token_ms = 1000 * total_latency_s / tokens_generated`.
#
# Write `time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True,
# **generate_kwargs)` returning a dict with at least `total_latency_s`, `tokens_generated`,
# `tokens_per_sec`, `avg_latency_per_token_ms`. More keys are welcome but not graded here: the
# reference also returns `batch_size` and `prompt_tokens` (the longest prompt's length in tokens,
# padding not counted), and no later part reads them from this dict.
# With `warmup=False` it skips the warm-up call. Extra keyword arguments go through to `generate`.
# `helpers.synchronize(device)` is a ready-made "synchronize if CUDA" if you want it. (The grader
# has no GPU: it checks points 3 and 4 with a stand-in model that reports a CUDA device, whose
# generate returns before its work is done, as a GPU's does.)

# %% [solution id=time_generate]
def _model_device(model):
    """The device a model's inputs belong on (PyTorch or ONNX Runtime model)."""
    device = getattr(model, "device", None)
    if device is None:
        device = next(model.parameters()).device
    return torch.device(device)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Time one greedy generate call, after one untimed warm-up unless warmup=False.

    prompt: a str or a list of str (a batch, padded by the tokenizer).
    max_new_tokens: new tokens per sequence (forced with min_new_tokens).
    use_cache: passed to generate; generate_kwargs: passed through too.
    warmup: False when the same setting was just run (by an earlier timed call).
    Returns a dict: total_latency_s (s), tokens_generated (new tokens over the batch),
    tokens_per_sec, avg_latency_per_token_ms (ms), prompt_tokens, batch_size.
    """
    ### BEGIN SOLUTION
    device = _model_device(model)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    inputs = {key: value.to(device) for key, value in encoded.items()}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings = dict(max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                    do_sample=False, use_cache=use_cache, pad_token_id=pad_id)
    settings.update(generate_kwargs)
    with torch.inference_mode():
        if warmup:
            model.generate(**inputs, **settings)  # not timed
        helpers.synchronize(device)
        start = time.perf_counter()
        output = model.generate(**inputs, **settings)
        helpers.synchronize(device)
        latency_s = time.perf_counter() - start
    prompt_len = inputs["input_ids"].shape[1]
    tokens = int(output.shape[0]) * (int(output.shape[1]) - int(prompt_len))
    return {
        "total_latency_s": latency_s,
        "tokens_generated": tokens,
        "tokens_per_sec": tokens / latency_s,
        "avg_latency_per_token_ms": 1000.0 * latency_s / tokens,
        "prompt_tokens": int(encoded["attention_mask"].sum(dim=1).max()),
        "batch_size": len(prompts),
    }
    ### END SOLUTION

# %% [markdown]
# Try it: a dict with `tokens_generated` equal to `PROFILE.max_new_tokens`, a latency of a fraction of a second to a few seconds, and
# `tokens_per_sec * total_latency_s == tokens_generated`. The embedded model writes roughly
# 15 to 30 new tokens per second on two CPU cores.

# %% [code]
baseline = time_generate(model, tokenizer, REFERENCE_PROMPT, PROFILE.max_new_tokens)
print(baseline)

# %% [tests id=test_time_generate points=2]
"""Check that time_generate returns consistent metrics for a real model."""
_r = time_generate(model, tokenizer, REFERENCE_PROMPT, 4)
for _key in ("total_latency_s", "tokens_generated", "tokens_per_sec", "avg_latency_per_token_ms"):
    assert _key in _r, f"the result must have the key {_key!r}"
assert _r["tokens_generated"] == 4, \
    f"4 new tokens were asked for; got tokens_generated={_r['tokens_generated']} (count only new tokens, " \
    "and force the count with min_new_tokens)"
assert _r["total_latency_s"] > 0, "total_latency_s must be positive"
assert abs(_r["tokens_per_sec"] * _r["total_latency_s"] - _r["tokens_generated"]) < 1e-6 * _r["tokens_generated"], \
    "tokens_per_sec must equal tokens_generated / total_latency_s"

# %% [tests id=test_time_generate_hidden points=5]
"""Check warm-up, inference mode, the clock, GPU synchronisation and inputs, new-token counting, units, pass-through."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, a clock from a fresh instance of
# the time module, tensor work through C-level methods with torch-function overrides off. So nothing
# the submission could have replaced (time.sleep, time.perf_counter, torch.is_inference_mode_enabled,
# torch.cat, builtins such as abs or len) answers for the test, and results are read as real numbers.
import importlib.util as _ilu
import time as _shared_time
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _tuple, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, \
    ().__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_object = _mro(_int)[-1]
_C = _torch._C
_TB, _VF = _C.TensorBase, _C._VariableFunctions


# include: fresh_module


# include: true_number


def _field(result, key):
    """result[key] as a real number, read through dict itself."""
    _is_dict = False
    for _c in _mro(_type(result)):
        _is_dict = _is_dict or _c is _dict
    assert _is_dict, f"time_generate must return a dict, got {_name(_type(result))}"
    assert _dict.__contains__(result, key), f"the result must have the key {key!r}"
    return _num(_dict.__getitem__(result, key), key)


_clock = _fresh("time")
_wall_jump_s = [0.0]  # added to time.time() while the stand-ins run: a wall clock being adjusted


class _RecordingLM(_torch.nn.Module):
    """Stand-in for a causal LM. generate sleeps on the test's own clock (long on the first call: a cold
    start), records its arguments, the attention mask and the grad / inference-mode state it runs under
    (read from a tensor it computes), and appends new tokens; without min_new_tokens it stops after 2,
    as a model that emits end-of-text would. Each call moves the wall clock (time.time) on by 1000 s."""

    def __init__(self, cold_s, warm_s):
        super().__init__()
        self.weight = _torch.nn.Parameter(_torch.zeros(1))
        self.cold_s, self.warm_s, self.calls = cold_s, warm_s, []

    @property
    def device(self):
        return _torch.device("cpu")

    def _work(self, seconds):
        _clock.sleep(seconds)

    def generate(self, input_ids=None, attention_mask=None, **kwargs):
        with _C.DisableTorchFunction():
            _wall_jump_s[0] = _wall_jump_s[0] + 1000.0
            _probe = _TB.mul(self.weight, 2.0)  # an inference tensor in inference mode; needs grad only with grad on
            _record = _dict(kwargs)
            _record["inference"] = _TB.is_inference(_probe)
            _record["grad"] = _TB.requires_grad.__get__(_probe)
            _record["shape"] = _tuple(_TB.size(input_ids))
            _record["mask"] = None if attention_mask is None else _TB.tolist(attention_mask)
            _record["on_gpu"] = _on_gpu(input_ids) and (attention_mask is None or _on_gpu(attention_mask))
            _list.append(self.calls, _record)
            self._work(self.cold_s if _list.__len__(self.calls) == 1 else self.warm_s)
            _wanted = _num(kwargs.get("max_new_tokens") or 20, "max_new_tokens")
            _k = _wanted if _num(kwargs.get("min_new_tokens") or 0, "min_new_tokens") >= _wanted else 2
            _new = _VF.full((_record["shape"][0], _k), 7, dtype=_TB.dtype.__get__(input_ids))
            return _VF.cat([input_ids, _new], 1)


class _SimulatedGpuLM(_RecordingLM):
    """The same stand-in on a simulated GPU: it reports a CUDA device, and generate only queues its work,
    which torch.cuda.synchronize (replaced while it runs) then waits for, as on a real GPU."""

    queued_s = 0.0

    @property
    def device(self):
        return _torch.device("cuda", 0)

    def parameters(self, recurse=True):
        yield _FakeGpuParameter()

    def to(self, *args, **kwargs):
        return self

    def _work(self, seconds):
        self.queued_s = self.queued_s + seconds

    def synchronize(self, device=None):
        _clock.sleep(self.queued_s)
        self.queued_s = 0.0


# include: simulated_gpu


def _timed(fake, *args, **kwargs):
    """time_generate's result, and the wall time of the whole call on the test's clock."""
    _start = _clock.perf_counter()
    _result = time_generate(fake, *args, **kwargs)
    return _result, _clock.perf_counter() - _start


def _check_metrics(result, tokens, warm_s, cold_s, wall_s):
    _n, _lat = _field(result, "tokens_generated"), _field(result, "total_latency_s")
    _rate, _ms = _field(result, "tokens_per_sec"), _field(result, "avg_latency_per_token_ms")
    assert _n == tokens, f"{tokens} new tokens were generated; got tokens_generated={_n} (count only the new tokens)"
    # The timed call sleeps warm_s; the warm-up (a cold start of cold_s) must stay outside the timed
    # region, and both ran within wall_s on the test's clock. 1 ms of slack for clock resolution.
    assert warm_s - 1e-3 <= _lat <= wall_s - cold_s + 1e-3, \
        f"total_latency_s={_lat:.4f} s, but the timed generate took {warm_s} s after a {cold_s} s warm-up: " \
        "time only the call after the warm-up, in seconds"
    assert -1e-6 * _rate <= _rate - _n / _lat <= 1e-6 * _rate, "tokens_per_sec must be tokens_generated / total_latency_s"
    assert -1e-6 * _ms <= _ms - 1000.0 * _lat / _n <= 1e-6 * _ms, \
        "avg_latency_per_token_ms must be 1000 * total_latency_s / tokens_generated"


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_prompt = "The history of the printing press begins"
_fake = _RecordingLM(cold_s=0.6, warm_s=0.12)
# While the stand-in runs, time.time() (the wall clock) jumps 1000 s per generate call, as when the
# system clock is adjusted; time.perf_counter() is monotonic and does not.
_saved_wall = (_shared_time.time, _shared_time.time_ns)
_shared_time.time = lambda: _clock.time() + _wall_jump_s[0]
_shared_time.time_ns = lambda: _clock.time_ns() + _int(_wall_jump_s[0] * 1e9)
try:
    _r, _wall = _timed(_fake, _tok, _prompt, 5, use_cache=False, repetition_penalty=1.0)
finally:
    _shared_time.time, _shared_time.time_ns = _saved_wall
_jumped = _field(_r, "total_latency_s")
assert -100.0 < _jumped < 100.0, \
    f"total_latency_s={_jumped:.1f} s for a call of 0.12 s: the wall clock (time.time) was adjusted during " \
    "the call, as the system clock can be; time with time.perf_counter(), which is monotonic"
assert _list.__len__(_fake.calls) >= 2, "do one untimed warm-up generate before the timed one"
_last = _fake.calls[-1]
assert _last["inference"] is True and _last["grad"] is False, "the timed generate must run inside torch.inference_mode()"
_sample = _last.get("do_sample")
assert (_sample is False or _sample is None) and _num(_last.get("num_beams", 1), "num_beams") == 1, \
    "use greedy decoding"
assert _num(_last.get("min_new_tokens", 0), "min_new_tokens") == 5 and \
    _num(_last.get("max_new_tokens", 0), "max_new_tokens") == 5, \
    "pass max_new_tokens and min_new_tokens = max_new_tokens to generate"
assert _last.get("use_cache") is False, "use_cache must be passed to generate"
assert _num(_last.get("repetition_penalty", 0), "repetition_penalty") == 1.0, \
    "extra keyword arguments must be passed through to generate"
_check_metrics(_r, 5, 0.12, 0.6, _wall)
# warmup=False: the timed call is the only call.
_fake = _RecordingLM(cold_s=0.1, warm_s=0.1)
_r, _wall = _timed(_fake, _tok, _prompt, 3, warmup=False)
assert _list.__len__(_fake.calls) == 1, \
    f"with warmup=False call generate once (the timed call, no warm-up), got {_list.__len__(_fake.calls)} calls"
# A simulated GPU: generate returns at once and its work runs until torch.cuda.synchronize.
_fake = _SimulatedGpuLM(cold_s=0.3, warm_s=0.1)
_r, _wall = _on_simulated_gpu(_fake, _tok, _prompt, 3)
assert _list.__len__(_fake.calls) >= 2 and _fake.calls[-1]["on_gpu"], \
    "move the inputs (input_ids and attention_mask) to the model's device (model.device) before generate"
_lat = _field(_r, "total_latency_s")
assert _lat >= 0.1 - 1e-3, \
    f"on a GPU generate returns before its work is done: total_latency_s={_lat:.3f} s for 0.1 s of work; " \
    "call torch.cuda.synchronize() (helpers.synchronize(device)) right after the timed call, before reading the clock"
assert _lat <= _wall - 0.3 + 1e-3, \
    f"on a GPU the warm-up's queued work ran into the timed interval (total_latency_s={_lat:.3f} s for 0.1 s " \
    "of work): synchronize right before starting the clock too"
_check_metrics(_r, 3, 0.1, 0.3, _wall)
# A batch of prompts of different lengths: new tokens of every sequence are counted, and the batch is
# padded on the side the tokenizer is set to (right here, as in the ablation's right-padding arm).
_fake = _RecordingLM(cold_s=0.3, warm_s=0.05)
_tok.padding_side = "right"
_r, _wall = _timed(_fake, _tok, ["Hello there.", _prompt, "A much longer prompt than the first one, " * 3], 3)
assert _fake.calls[-1]["shape"][0] == 3, "a list of prompts must be generated as one batch"
_mask = _fake.calls[-1]["mask"]
assert _mask is not None, "pass the attention mask to generate: the batch is padded"
assert _tok.padding_side == "right" and [_row[0] for _row in _mask] == [1, 1, 1] and _mask[0][-1] == 0, \
    "pad on the tokenizer's padding_side as the caller set it (right here): do not change it in time_generate"
_tok.padding_side = "left"
_check_metrics(_r, 9, 0.05, 0.3, _wall)
# A real model: the counts are exact.
_mdl_r = _AutoModel.from_pretrained(_str(_helpers.TINY_DIR)).eval()
_r = time_generate(_mdl_r, _tok, ["One.", "Two and three and four."], 6)
assert _field(_r, "tokens_generated") == 12, "2 prompts x 6 new tokens = 12 new tokens"
with _C.DisableTorchFunction():
    _grad_after = _TB.requires_grad.__get__(_TB.mul(_fake.weight, 2.0))
assert _grad_after is True, "time_generate must not switch gradients off globally"
del _mdl_r
### END HIDDEN TESTS

# %% [markdown]
# Every sweep below times each setting several times. Two given tools do that:
#
# - `time_repeats` times **one** setting `repeats` times in a row, with one warm-up.
# - `time_round_robin` times **several** settings fairly: each one is warmed up once, then the timed
#   runs take turns (round 1 times every setting once, then round 2, ...). On a shared laptop or
#   server the speed drifts (another program, the CPU's clock, the temperature); timing setting A
#   five times and then setting B five times lets that drift land on one of them and pass for a
#   difference between them. Taking turns spreads it over all settings alike, which is how
#   serious benchmarks compare their arms. Prefer it whenever you compare settings. In A4, A5
#   and B3 timing each setting in turn also earns full marks (it makes noisier comparisons);
#   Part A6 asks you to take turns.
#
# Two helpers write the table and the plot around each measurement, so that your code is about
# what is measured and how:
#
# - `helpers.medians_with_iqr(runs, keys=helpers.TIMED_KEYS)` turns a list of timing dicts (one per
#   repeat) into one row's numbers: the median of each key (one slow run skews a mean) and its
#   interquartile range as `<key>_iqr`. `row.update(helpers.medians_with_iqr(runs))` adds
#   `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms` and their `_iqr` columns.
# - `helpers.plot_columns(frame, x_key, y_key, name, title=...)` plots one column of a table against
#   another with the `<y_key>_iqr` column as error bars and saves it as `artifacts/<name>.png`
#   (built on `helpers.plot_metric` and `helpers.save_figure`, which you may use instead).

# %% [readonly id=time_repeats]
def time_repeats(model, tokenizer, prompt, max_new_tokens, repeats, **kwargs):
    """`repeats` timings of one setting, a list of time_generate dicts; only the first call warms up,
    because each timed call leaves the next one warm. kwargs go to time_generate (use_cache=...)."""
    return [time_generate(model, tokenizer, prompt, max_new_tokens, warmup=(i == 0), **kwargs)
            for i in range(int(repeats))]


def time_round_robin(arms, repeats):
    """Fair timings of several settings. `arms` is a list of functions `run(warmup)`, each making one
    time_generate call of its setting. Round 1 calls every arm with warmup=True (its untimed warm-up,
    then its first timed run); rounds 2 to `repeats` call every arm once more, in turn, with
    warmup=False. Returns one list of time_generate dicts per arm, in the order of `arms`."""
    timings = [[] for _ in arms]
    for round_index in range(int(repeats)):
        for arm_index, run in enumerate(arms):
            timings[arm_index].append(run(round_index == 0))
    return timings

# %% [markdown]
# ---
# ## Part A4: prompt length in tokens (5 points)
#
# Generation has two phases. **Prefill** reads the whole prompt in one forward pass; **decode**
# then produces one token per step, each step attending to everything before it. A longer prompt
# costs more prefill and makes every decode step attend to more positions, so latency grows with
# the prompt. Models see **tokens**, not characters: a prompt "of 500 characters" can be 100
# tokens of English or 300 of code, so the sweep sets its lengths in tokens.
#
# First write `make_prompt(tokenizer, n_tokens, base_text=BASE_PROMPT)`: repeat `base_text`
# until it has enough tokens, keep the first `n_tokens` token ids and decode them back to text.
# (Re-encoding decoded text can merge or split a token at the cut, so the result may be off by one.)
#
# Then `run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats,
# use_cache=True)`: for each target length, build the prompt with `make_prompt`, time it
# `repeats` times with the **same** `max_new_tokens` and `use_cache` (the lengths are the
# settings compared: taking turns with `time_round_robin` is best, see above), and report
# the **median** of each metric (one slow run skews a mean) with the interquartile range (75th
# minus 25th percentile) as the spread. Return a DataFrame with one row per length and at least
# the columns `prompt_tokens` (measured on the prompt that was timed), `max_new_tokens`,
# `use_cache`, `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms`,
# `total_latency_s_iqr`, `tokens_per_sec_iqr`; draw latency vs prompt tokens and tokens/s vs
# prompt tokens with the IQR as error bars and save both (`helpers.plot_columns`, or
# `helpers.plot_metric` and `helpers.save_figure`).

# %% [solution id=make_prompt]
def make_prompt(tokenizer, n_tokens, base_text=BASE_PROMPT):
    """A prompt of about n_tokens tokens (within 2), made by repeating base_text. Returns a str."""
    ### BEGIN SOLUTION
    n_tokens = int(n_tokens)
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be 1 or more, got {n_tokens}")
    base = base_text.strip()
    per_copy = len(tokenizer(base, add_special_tokens=False).input_ids)
    long_text = " ".join([base] * (n_tokens // max(1, per_copy) + 2))  # repeat as text, then tokenize once
    ids = tokenizer(long_text, add_special_tokens=False).input_ids
    return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
    ### END SOLUTION


# %% [solution id=run_for_varied_lengths]
def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    """Time generate at several prompt lengths (in tokens), repeats runs each, medians reported.

    Returns a DataFrame, one row per length: prompt_tokens, max_new_tokens, use_cache, repeats,
    total_latency_s, tokens_per_sec, avg_latency_per_token_ms (medians) and *_iqr spreads.
    Saves prompt_length_latency.png and prompt_length_throughput.png.
    """
    ### BEGIN SOLUTION
    targets = [int(target) for target in lengths_tokens]
    prompts = [make_prompt(tokenizer, target) for target in targets]

    def arm(prompt):  # one timed call of this length; time_round_robin says when to warm up
        return lambda warmup: time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=use_cache,
                                            warmup=warmup)

    timings = time_round_robin([arm(prompt) for prompt in prompts], repeats)  # lengths take turns
    rows = []
    for target, prompt, runs in zip(targets, prompts, timings):
        row = {"target_tokens": int(target),
               "prompt_tokens": len(tokenizer(prompt).input_ids),
               "max_new_tokens": int(max_new_tokens), "use_cache": use_cache, "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(runs))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        helpers.plot_columns(frame, "prompt_tokens", key, name,
                             title=f"{max_new_tokens} new tokens, use_cache={use_cache}, median of {repeats}")
        plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: a table with one row per length in `PROFILE.prompt_lengths_tokens`; `prompt_tokens`
# within a token or two of each target; latency rising with the prompt and tokens/s falling.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
length_sweep = run_for_varied_lengths(model, tokenizer, PROFILE.prompt_lengths_tokens,
                                      PROFILE.max_new_tokens, PROFILE.repeats)
length_sweep

# %% [tests id=test_varied_lengths points=1]
"""Check that make_prompt counts tokens and run_for_varied_lengths returns one row per length."""
for _n in (10, 120):
    _count = len(tokenizer(make_prompt(tokenizer, _n)).input_ids)
    assert abs(_count - _n) <= 2, f"make_prompt(tokenizer, {_n}) gave {_count} tokens: cut token ids, not characters"
with scratch_folder():
    _frame = run_for_varied_lengths(model, tokenizer, [8, 24], 3, 1)
assert len(_frame) == 2, "one row per target length"
for _col in ("prompt_tokens", "total_latency_s", "tokens_per_sec", "total_latency_s_iqr", "tokens_per_sec_iqr"):
    assert _col in _frame.columns, f"missing column {_col!r}"
plt.close("all")

# %% [tests id=test_varied_lengths_hidden points=4]
"""Check prompt lengths in tokens, base_text, fixed settings across lengths, medians, IQRs, columns, plots."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module (a replaced Path.is_file or os.path.exists cannot answer), results read
# as real numbers. The plots are written into an empty scratch folder, so only this call can pass.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers
from helpers.texts import BASE_PROMPT as _BASE

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


def _column(frame, key):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [_num(_v, key) for _v in _values]


def _n_tokens(tokenizer, text):
    _ids = tokenizer(text).input_ids
    assert _type(_ids) is _list
    return _list.__len__(_ids)


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
for _n in (1, 7, 64, 300, 700):
    _p = make_prompt(_tok, _n)
    assert _type(_p) is _str, "make_prompt must return a str"
    _count = _n_tokens(_tok, _p)
    assert -2 <= _count - _n <= 2, f"make_prompt(tokenizer, {_n}) has {_count} tokens; the target counts tokens"
assert make_prompt(_tok, 300).split()[:3] == _BASE.split()[:3], "build the prompt by repeating BASE_PROMPT"
_other = "Cats sleep for most of the day and hunt at night."
_p = make_prompt(_tok, 40, base_text=_other)
assert _type(_p) is _str and _p.split()[:4] == _other.split()[:4] and -2 <= _n_tokens(_tok, _p) - 40 <= 2, \
    "make_prompt must repeat the base_text it is given (the argument), not always BASE_PROMPT"

_saved_time_generate = time_generate
_calls = []
_latencies = (1.0, 1.0, 10.0)  # per length: the median is 1 s, the mean 4 s


# The latency of a run depends on its prompt and on how many runs of that prompt came before, never on
# the order of the lengths: a sweep that interleaves the lengths (round-robin) is as right as one that
# times each length in turn.
def _nth_run(key):
    return _list.__len__([_c for _c in _calls if _c["key"] == key])


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _n = _n_tokens(tokenizer, prompt)
    _latency = _latencies[_nth_run(_n) % 3]
    _list.append(_calls, {"key": _n, "n": _n, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "use_cache": use_cache})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


# include: enter_scratch_dir
try:
    _frame = run_for_varied_lengths(None, _tok, [16, 48, 160], 5, 3, use_cache=False)
    _plots = [_is_png(_scratch + "/artifacts/" + _f) for _f in ("prompt_length_latency.png", "prompt_length_throughput.png")]
finally:
    time_generate = _saved_time_generate
    # include: leave_scratch_dir
assert _list.__len__(_calls) == 9, f"3 lengths x 3 repeats = 9 timed runs through time_generate, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["max_new_tokens"] == 5, "max_new_tokens must be the same at every length"
    assert _c["use_cache"] is False, "use_cache must be the same at every length"
_ns = [_c["n"] for _c in _calls]
_per_length = {}
for _n in _ns:
    _per_length[_n] = _per_length.get(_n, 0) + 1
_lengths = _list(_per_length)
_list.sort(_lengths)
assert _list.__len__(_lengths) == 3 and [_per_length[_n] for _n in _lengths] == [3, 3, 3] and \
    -2 <= _lengths[0] - 16 <= 2 and -2 <= _lengths[1] - 48 <= 2 and -2 <= _lengths[2] - 160 <= 2, \
    f"prompt token counts per run were {_ns}: build each prompt to its target length in tokens, 3 runs each"
_lat = _column(_frame, "total_latency_s")
assert _lat == [1.0, 1.0, 1.0], f"report the median over repeats (latencies 1, 1, 10 s give 1 s), got {_lat}"
assert _column(_frame, "tokens_per_sec") == [5.0, 5.0, 5.0], "report the median tokens_per_sec"
_measured = _column(_frame, "prompt_tokens")
assert -2 <= _measured[0] - 16 <= 2 and -2 <= _measured[2] - 160 <= 2, \
    "prompt_tokens must be the measured prompt length in tokens"
assert _plots == [True, True], \
    "save both plots (helpers.plot_columns, or helpers.save_figure): artifacts/prompt_length_latency.png and prompt_length_throughput.png"

# Second run: 8 repeats per length, whose 25th and 75th percentiles are the same under every usual
# definition; make_prompt replaced by one that overshoots by 6 tokens, so prompt_tokens must be
# measured; the figures handed to helpers.save_figure are inspected for error bars.
_student_make_prompt, _saved_save_figure = make_prompt, _helpers.save_figure
_base_ids = _tok(_BASE, add_special_tokens=False).input_ids


def make_prompt(tokenizer, n_tokens, base_text=_BASE):
    return _tok.decode((_base_ids * 40)[:_int(n_tokens) + 6])


def _latency(first_length, nth_run):
    """Length 1: seven runs of 1 s and one of 10 s (median 1, IQR 0); length 2: 1, 5, 1, 5... (median 3, IQR 4)."""
    if first_length:
        return 10.0 if nth_run == 7 else 1.0
    return 1.0 if nth_run % 2 == 0 else 5.0


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _n = _n_tokens(tokenizer, prompt)
    _lat_s = _latency(_n < 25, _nth_run(_n))  # the prompts have 16 and 36 tokens (10 and 30, plus 6)
    _list.append(_calls, {"key": _n, "n": _n})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _lat_s, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _lat_s,
            "avg_latency_per_token_ms": 1000.0 * _lat_s / _tokens, "prompt_tokens": _n}


def _save_figure_spy(figure, name, *args, **kwargs):
    _bars = 0
    for _ax in figure.axes:
        for _container in _ax.containers:
            if _name(_type(_container)) == "ErrorbarContainer" and _container.has_yerr is True:
                _bars += 1
    _list.append(_saved_figures, _bars)
    return _saved_save_figure(figure, name, *args, **kwargs)


_calls, _saved_figures = [], []
_helpers.save_figure = _save_figure_spy
_scratch = _home + "/.hidden-test-" + _str(_clock.perf_counter_ns())
_posix.mkdir(_scratch)
_posix.chdir(_scratch)
try:
    _frame = run_for_varied_lengths(None, _tok, [10, 30], 5, 8, use_cache=False)
finally:
    time_generate, make_prompt, _helpers.save_figure = _saved_time_generate, _student_make_prompt, _saved_save_figure
    _posix.chdir(_home)
    _plt.close("all")
    _shutil.rmtree(_scratch, ignore_errors=True)
assert _list.__len__(_calls) == 16, f"2 lengths x 8 repeats = 16 timed runs, got {_list.__len__(_calls)}"
for _key in ("prompt_tokens", "max_new_tokens", "use_cache", "total_latency_s", "tokens_per_sec",
             "avg_latency_per_token_ms", "total_latency_s_iqr", "tokens_per_sec_iqr"):
    assert _key in _frame.columns, f"missing column {_key!r}"
_measured = _column(_frame, "prompt_tokens")
_timed = _list({_c["n"] for _c in _calls})
_list.sort(_timed)
assert _list.__len__(_timed) == 2 and -1 <= _measured[0] - _timed[0] <= 1 and -1 <= _measured[1] - _timed[1] <= 1, \
    f"prompt_tokens must be measured on the prompt that was timed ({_timed} tokens " \
    f"here), not copied from the target length; got {_measured}"


def _near(values, expected):
    if _list.__len__(values) != _list.__len__(expected):
        return False
    for _v, _e in zip(values, expected):
        if not -1e-9 <= _v - _e <= 1e-9:
            return False
    return True


assert _column(_frame, "max_new_tokens") == [5, 5] and _column(_frame, "use_cache") == [0, 0], \
    "the max_new_tokens and use_cache columns must hold the settings used (5 and False here)"
assert _near(_column(_frame, "total_latency_s"), [1.0, 3.0]) and _near(_column(_frame, "tokens_per_sec"), [5.0, 3.0]) \
    and _near(_column(_frame, "avg_latency_per_token_ms"), [200.0, 600.0]), \
    "report the median of every metric over the repeats (total_latency_s, tokens_per_sec, avg_latency_per_token_ms)"
_iqr = _column(_frame, "total_latency_s_iqr") + _column(_frame, "tokens_per_sec_iqr")
assert _near(_iqr, [0.0, 4.0, 0.0, 4.0]), \
    f"the *_iqr columns must hold the interquartile range (75th minus 25th percentile) of the repeats: " \
    f"[0, 4] for latency and for tokens/s here, got {_iqr}"
assert _list.__len__(_saved_figures) >= 2 and 0 not in _saved_figures, \
    "draw each plot with the IQR as error bars (helpers.plot_columns does, or helpers.plot_metric(..., yerr=...)) and save it"
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part A5: numeric precision (3 points)
#
# Same prompt, same `max_new_tokens`, same cache setting; only the precision changes. On a GPU,
# float16 and bfloat16 usually beat float32 (half the bytes, faster tensor cores). On a CPU,
# float16 falls back to float32 (the label shows it) and bfloat16 depends on the processor's
# support for it. Write `run_varied_precision(candidates, device, prompt, max_new_tokens,
# repeats, precisions=("float32", "float16", "bfloat16"))`: load each precision with your loader,
# on `device`, time it `repeats` times with `time_generate`, and return a DataFrame with one row
# per entry of `precisions`, in order: `requested_precision` (the request as given), `dtype_label`,
# the median `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms`, and `max_new_tokens`.
# Draw a bar chart of tokens/s and save it as `precision_sweep`.

# %% [solution id=run_varied_precision]
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats,
                         precisions=("float32", "float16", "bfloat16")):
    """Median generate timings per precision on one prompt. Returns a DataFrame (one row per request)."""
    ### BEGIN SOLUTION
    loaded = []  # every precision's model first (a few hundred MB each), so that the timed runs take turns
    for precision in tqdm(list(precisions), desc="precisions"):
        tok, mdl, model_id, label = load_model_and_tokenizer(candidates, precision, device)
        loaded.append((precision, tok, mdl, model_id, label))

    def arm(precision, tok, mdl):
        return lambda warmup: time_generate(mdl, tok, prompt, max_new_tokens, warmup=warmup)

    timings = time_round_robin([arm(precision, tok, mdl) for precision, tok, mdl, _, _ in loaded], repeats)
    rows = []
    for (precision, tok, mdl, model_id, label), runs in zip(loaded, timings):
        row = {"requested_precision": precision, "dtype_label": label, "model_id": helpers.model_label(model_id),
               "device": str(device), "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(runs))
        rows.append(row)
    del loaded, timings
    frame = pd.DataFrame(rows)
    figure = helpers.plot_bars([f"{r} -> {l}" for r, l in zip(frame["requested_precision"], frame["dtype_label"])],
                               frame["tokens_per_sec"], yerr=frame["tokens_per_sec_iqr"], y_key="tokens_per_sec",
                               title=f"{max_new_tokens} new tokens, median of {repeats}")
    helpers.save_figure(figure, "precision_sweep")
    plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: three rows; on a CPU the float16 row reads `float32 (forced on CPU)`.

# %% [code]
precision_sweep = run_varied_precision(CANDIDATES, DEVICE, REFERENCE_PROMPT, PROFILE.max_new_tokens, TRY_REPEATS)
precision_sweep

# %% [tests id=test_varied_precision points=1]
"""Check that run_varied_precision returns one labelled row per precision."""
with scratch_folder():
    _frame = run_varied_precision([str(helpers.TINY_DIR)], "cpu", "Hello", 2, 1)
plt.close("all")
assert list(_frame["requested_precision"]) == ["float32", "float16", "bfloat16"], "one row per requested precision"
assert list(_frame["dtype_label"])[1] == "float32 (forced on CPU)", "on CPU, float16 must show its fallback label"

# %% [tests id=test_varied_precision_hidden points=2]
"""Check every arm's prompt, limits, dtype and device, the precisions asked for, the columns, medians, the chart."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, dtypes read by a C-level descriptor,
# files through a fresh instance of the os module, results read as real numbers and strings.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
import torch as _torch
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_dtype_of = _torch._C.TensorBase.dtype.__get__
_device_of = _torch._C.TensorBase.device.__get__


# include: fresh_module


# include: true_number


# include: true_text


def _column(frame, key, read):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [read(_v, key) for _v in _values]


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_saved_time_generate = time_generate
_calls = []
_latencies = (2.0, 2.0, 20.0)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    for _p in model.parameters():
        _dtype, _device = _str(_dtype_of(_p)), _str(_device_of(_p).type)
        break
    # The n-th run of a model gets the n-th latency, whatever order the precisions are timed in
    # (one after another, or taking turns).
    _latency = _latencies[_list.__len__([_c for _c in _calls if _c["model"] is model]) % 3]
    _list.append(_calls, {"prompt": _text(prompt, "prompt"), "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "settings": (use_cache, _dict.__repr__(kwargs)), "dtype": _dtype, "device": _device,
                          "model": model})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


# include: enter_scratch_dir
try:
    _frame = run_varied_precision([_str(_helpers.TINY_DIR)], "cpu", "Same prompt for all", 4, 3)
    _chart = _is_png(_scratch + "/artifacts/precision_sweep.png")
    # Only the precisions asked for, on the device asked for ("meta": weights without data).
    _calls_sweep, _calls = _calls, []
    _frame_meta = run_varied_precision([_str(_helpers.TINY_DIR)], "meta", "Same prompt for all", 4, 1,
                                       precisions=("bfloat16",))
    _calls_meta, _calls = _calls, _calls_sweep
finally:
    time_generate = _saved_time_generate
    # include: leave_scratch_dir
assert _list.__len__(_calls) == 9, f"3 precisions x 3 repeats = 9 timed runs, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["prompt"] == "Same prompt for all", "every arm must time the same prompt"
    assert _c["max_new_tokens"] == 4, "every arm must use the same max_new_tokens"
    assert _c["settings"] == _calls[0]["settings"], "every arm must use the same generate settings"
_models = []
for _c in _calls:
    if not [_m for _m in _models if _m is _c["model"]]:
        _list.append(_models, _c["model"])
_runs = [[_c["dtype"] for _c in _calls if _c["model"] is _m] for _m in _models]
assert _runs == [["torch.float32"] * 3, ["torch.float32"] * 3, ["torch.bfloat16"] * 3], \
    "the models timed must be float32, float32 (float16 forced on CPU) and bfloat16, 3 runs each"
assert _column(_frame, "dtype_label", _text) == ["float32", "float32 (forced on CPU)", "bfloat16"], "wrong dtype labels"
assert _column(_frame, "total_latency_s", _num) == [2.0, 2.0, 2.0], "report the median latency over repeats"
assert _column(_frame, "requested_precision", _text) == ["float32", "float16", "bfloat16"], \
    "requested_precision must hold each request, in order"
assert _column(_frame, "tokens_per_sec", _num) == [2.0, 2.0, 2.0] and \
    _column(_frame, "avg_latency_per_token_ms", _num) == [500.0, 500.0, 500.0], \
    "report the median tokens_per_sec and avg_latency_per_token_ms over repeats"
assert _column(_frame, "max_new_tokens", _num) == [4, 4, 4], "the max_new_tokens column must hold the limit used (4)"
assert _chart, "save the chart with helpers.save_figure as artifacts/precision_sweep.png"
assert _list.__len__(_calls_meta) == 1 and _column(_frame_meta, "requested_precision", _text) == ["bfloat16"], \
    "time only the precisions passed in `precisions`, one row each"
assert _calls_meta[0]["dtype"] == "torch.bfloat16" and _calls_meta[0]["device"] == "meta", \
    f"load each precision on the device passed in (here 'meta'), got a model on {_calls_meta[0]['device']!r}"
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part A6: prefill and decode, measured apart (7 points)
#
# Part A3 timed a whole `generate` call, and Part A4 saw it grow with the prompt. A user
# feels the two phases of Part A4 separately: **time to first token** (TTFT, prompt in to the
# first new token out: the prefill and the first step) is the wait before anything appears, and
# **time per output token** (TPOT, the gap between two consecutive new tokens: one decode step)
# is how fast the text then flows. Serving systems report both, because a change can help one and
# hurt the other.
#
# **One streamed call, not two calls.** `generate(..., streamer=s)` calls `s.put(ids)` first
# with the prompt's ids, then once per new token (a tensor of the new token's id, batch size 1),
# then `s.end()`. A streamer that reads the clock in `put` sees every token arrive, from a single
# run. Timing two calls instead (one with 1 new token, one with N) and subtracting is worse: they
# are two separate runs, so the prefill is paid twice; whatever else the machine does between them
# (another process, a frequency change) lands in one and not the other; and the difference of two
# noisy numbers is noisier than either, without telling you anything about single steps (a median
# needs the individual gaps).
#
# The rules of Part A3 hold: one untimed warm-up call unless `warmup=False`,
# `torch.inference_mode()` around the timed call, inputs on `model.device`, greedy decoding with
# `min_new_tokens = max_new_tokens`, extra keyword arguments passed to `generate`, and
# `time.perf_counter()` with synchronisation: right before the clock starts, right after the
# timed `generate` returns, and **inside `put` before the clock is read**, because on a GPU a token
# is ready when its work is done, not when it was queued.
#
# Write `time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True,
# warmup=True, **generate_kwargs)` for one prompt (a str, batch size 1) and `max_new_tokens` of 2
# or more. It makes one timed `generate` call with a streamer and returns a dict with at least:
#
# * `ttft_s`: from the clock start (after the synchronisation right before the timed `generate`
#   is called) to the arrival of the **first new token** at the streamer, in seconds. The first
#   `put` is the prompt, not a token: it does not count;
# * `tpot_ms`: the **median** of the gaps between consecutive new-token arrivals, in
#   milliseconds: N new tokens give N - 1 gaps, and the wait for the first token is not one of
#   them (it is TTFT). The median, because one slow step (a page fault, another process) skews a mean;
# * `decode_tokens_per_sec`: `1000 / tpot_ms`, the steady decode rate of a typical step (not
#   `(N - 1) / sum(gaps)`, a mean rate that one slow step drags down);
# * `total_latency_s`: from the same clock start to the end of the timed call (synchronised);
# * `tokens_generated`: the new tokens only (N), never the prompt's;
# * `prompt_tokens`: the prompt's length in tokens, as given to `generate`.
#
# `transformers.generation.BaseStreamer` is the base class for a streamer (methods `put` and
# `end`); any object with those two methods works.
#
# Then write `run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens,
# repeats)`: build each prompt with `make_prompt`, and compare the lengths **fairly**: first warm
# each length up once (one untimed call, or `warmup=True` on its first timed run), then
# **interleave** the timed runs round-robin, repeat r of every length before repeat r + 1 of any,
# with `warmup=False`, so that a noisy minute hits every length alike instead of spoiling one.
# Report, per length and in the order given, the **median** over the `repeats` timed runs and the
# interquartile range. Return a DataFrame with one row per length and at least the columns
# `prompt_tokens` (measured on the prompt that was timed), `max_new_tokens`, `ttft_s`, `tpot_ms`,
# `decode_tokens_per_sec`, `ttft_s_iqr`, `tpot_ms_iqr`. Draw TTFT and TPOT against prompt
# tokens with the IQR as error bars and save them as `prefill_decode_ttft` and
# `prefill_decode_tpot` (`helpers.plot_columns`).

# %% [solution id=time_prefill_decode]
def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Time the prefill and the decode steps of one greedy generate call, from one streamed run.

    prompt: one str (batch size 1). max_new_tokens: 2 or more (forced with min_new_tokens).
    use_cache and generate_kwargs are passed to generate; warmup=False skips the untimed warm-up.
    Returns a dict: ttft_s (clock start to the first new token at the streamer, s), tpot_ms (median
    of the N-1 gaps between new-token arrivals, ms), decode_tokens_per_sec (1000 / tpot_ms),
    total_latency_s (s), tokens_generated (new tokens only), prompt_tokens.
    """
    ### BEGIN SOLUTION
    from transformers.generation.streamers import BaseStreamer

    if int(max_new_tokens) < 2:
        raise ValueError(f"max_new_tokens must be 2 or more (TPOT needs two new tokens), got {max_new_tokens}")
    device = _model_device(model)

    class ArrivalClock(BaseStreamer):
        """Notes the time each new token reaches the streamer (after a device sync)."""

        def __init__(self):
            self.prompt_seen, self.arrivals_s = False, []

        def put(self, value):
            if not self.prompt_seen:  # generate's first put is the prompt
                self.prompt_seen = True
                return
            helpers.synchronize(device)  # on a GPU the token is ready when its work is done
            now = time.perf_counter()
            self.arrivals_s.extend([now] * int(value.numel()))  # batch size 1: one token per put

        def end(self):
            pass

    encoded = tokenizer(prompt, return_tensors="pt")
    inputs = {key: value.to(device) for key, value in encoded.items()}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings = dict(max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                    do_sample=False, use_cache=use_cache, pad_token_id=pad_id)
    settings.update(generate_kwargs)
    clock = ArrivalClock()
    with torch.inference_mode():
        if warmup:
            model.generate(**inputs, **settings)  # not timed
        helpers.synchronize(device)
        start = time.perf_counter()
        output = model.generate(**inputs, **settings, streamer=clock)
        helpers.synchronize(device)
        end = time.perf_counter()
    arrivals = clock.arrivals_s
    gaps_s = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    tpot_ms = 1000.0 * statistics.median(gaps_s)
    prompt_len = int(inputs["input_ids"].shape[1])
    return {
        "ttft_s": arrivals[0] - start,
        "tpot_ms": tpot_ms,
        "decode_tokens_per_sec": 1000.0 / tpot_ms,
        "total_latency_s": end - start,
        "tokens_generated": int(output.shape[1]) - prompt_len,
        "prompt_tokens": prompt_len,
    }
    ### END SOLUTION


# %% [solution id=run_prefill_decode_for_lengths]
def run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats):
    """TTFT and TPOT at several prompt lengths (in tokens): each length warmed up once, then the timed
    runs interleaved round-robin; medians and IQRs reported.

    Returns a DataFrame, one row per length in the order given: prompt_tokens, max_new_tokens, repeats,
    ttft_s, tpot_ms, decode_tokens_per_sec (medians) and their *_iqr spreads.
    Saves prefill_decode_ttft.png and prefill_decode_tpot.png.
    """
    ### BEGIN SOLUTION
    targets = [int(n) for n in lengths_tokens]
    prompts = [make_prompt(tokenizer, n) for n in targets]
    for prompt in prompts:  # warm each arm up once, untimed (its result is discarded)
        time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False)
    runs = [[] for _ in prompts]
    for _ in tqdm(range(int(repeats)), desc="rounds over prompt lengths"):
        for index, prompt in enumerate(prompts):  # repeat r of every length before repeat r + 1
            runs[index].append(time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False))
    rows = []
    for target, prompt, timed in zip(targets, prompts, runs):
        row = {"target_tokens": target, "prompt_tokens": len(tokenizer(prompt).input_ids),
               "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(timed, ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("ttft_s", "prefill_decode_ttft"), ("tpot_ms", "prefill_decode_tpot")):
        helpers.plot_columns(frame, "prompt_tokens", key, name,
                             title=f"{max_new_tokens} new tokens, median of {repeats} (interleaved)")
        plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: one row per length in `PROFILE.prompt_lengths_tokens`. TTFT should rise with the
# prompt, since the prefill reads every prompt token in one forward pass. TPOT should change much
# less: each decode step reads one new token and attends to the cached keys and values, so a
# longer prompt makes it only a little slower. `ttft_s` is not `tpot_ms` of one token: the first
# token also pays for the prompt.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
prefill_decode_sweep = run_prefill_decode_for_lengths(model, tokenizer, PROFILE.prompt_lengths_tokens,
                                                      PROFILE.max_new_tokens, PROFILE.repeats)
prefill_decode_sweep

# %% [tests id=test_prefill_decode points=1]
"""Check that time_prefill_decode and run_prefill_decode_for_lengths return consistent results for a real model."""
_r = time_prefill_decode(model, tokenizer, REFERENCE_PROMPT, 5)
for _key in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s", "tokens_generated", "prompt_tokens"):
    assert _key in _r, f"the result must have the key {_key!r}"
assert _r["tokens_generated"] == 5, \
    f"5 new tokens were asked for; got tokens_generated={_r['tokens_generated']} (count only new tokens)"
assert _r["prompt_tokens"] == len(tokenizer(REFERENCE_PROMPT).input_ids), "prompt_tokens must be the prompt's length in tokens"
assert 0 < _r["ttft_s"] <= _r["total_latency_s"], "ttft_s must be positive and no longer than total_latency_s"
assert _r["tpot_ms"] > 0, "tpot_ms must be positive"
assert abs(_r["decode_tokens_per_sec"] * _r["tpot_ms"] - 1000.0) < 1e-6, "decode_tokens_per_sec must be 1000 / tpot_ms"
with scratch_folder():
    _frame = run_prefill_decode_for_lengths(model, tokenizer, [8, 24], 3, 1)
assert len(_frame) == 2, "one row per target length"
for _col in ("prompt_tokens", "max_new_tokens", "ttft_s", "tpot_ms", "decode_tokens_per_sec", "ttft_s_iqr", "tpot_ms_iqr"):
    assert _col in _frame.columns, f"missing column {_col!r}"
plt.close("all")

# %% [tests id=test_prefill_decode_hidden points=4]
"""Check TTFT, TPOT (median of the gaps between new tokens), the decode rate and counts, warm-up, inference mode, synchronisation, pass-through."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, a clock from a fresh instance of
# the time module, tensor work through C-level methods with torch-function overrides off, results read
# as real numbers. A stand-in model sleeps known times (on the test's clock) for the prefill and each
# decode step and notes, on that clock, when it hands each token to the streamer: so the right TTFT
# and TPOT are bracketed exactly however busy the machine is.
import importlib.util as _ilu
import torch as _torch
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _tuple, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, \
    ().__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_object = _mro(_int)[-1]
_C = _torch._C
_TB, _VF = _C.TensorBase, _C._VariableFunctions


# include: fresh_module


# include: true_number


# include: simulated_gpu


def _field(result, key):
    """result[key] as a real number, read through dict itself."""
    _is_dict = False
    for _c in _mro(_type(result)):
        _is_dict = _is_dict or _c is _dict
    assert _is_dict, f"time_prefill_decode must return a dict, got {_name(_type(result))}"
    assert _dict.__contains__(result, key), f"the result must have the key {key!r}"
    return _num(_dict.__getitem__(result, key), key)


def _median(values):
    _sorted = _list(values)
    _list.sort(_sorted)
    _n = _list.__len__(_sorted)
    return _sorted[_n // 2] if _n % 2 else (_sorted[_n // 2 - 1] + _sorted[_n // 2]) / 2.0


_clock = _fresh("time")


class _StreamingLM(_torch.nn.Module):
    """Stand-in for a causal LM that streams. generate sets up for 30 ms, hands the prompt to
    streamer.put, works prefill_s (plus cold_s on the first call: a cold start), then for each new token
    works the next of steps_s (none before the first) and hands the token to streamer.put; after the
    last one it works tail_s more (generate's own bookkeeping). On the CPU "work" is a sleep; on the simulated GPU (gpu=True) it is
    queued and runs when torch.cuda.synchronize is called. It records each call's arguments, the
    inference-mode state, and on the test's clock when each token could have arrived."""

    def __init__(self, prefill_s, steps_s, cold_s, tail_s, gpu=False):
        super().__init__()
        self.weight = _torch.nn.Parameter(_torch.zeros(1))
        self.prefill_s, self.steps_s, self.cold_s, self.tail_s, self.gpu = prefill_s, steps_s, cold_s, tail_s, gpu
        self.calls, self.queued_s, self.drained = [], 0.0, []

    @property
    def device(self):
        return _torch.device("cuda", 0) if self.gpu else _torch.device("cpu")

    def parameters(self, recurse=True):
        if self.gpu:
            yield _FakeGpuParameter()
        else:
            yield self.weight

    def to(self, *args, **kwargs):
        return self

    def _work(self, seconds):
        if self.gpu:
            self.queued_s = self.queued_s + seconds
        else:
            _clock.sleep(seconds)

    def synchronize(self, device=None):
        if self.queued_s > 0.0:
            _clock.sleep(self.queued_s)
            self.queued_s = 0.0
            _list.append(self.drained, _clock.perf_counter())  # when the queue became empty

    def generate(self, input_ids=None, attention_mask=None, streamer=None, **kwargs):
        with _C.DisableTorchFunction():
            _record = _dict(kwargs)
            _record["enter"] = _clock.perf_counter()
            _record["queued_at_enter"] = self.queued_s
            _probe = _TB.mul(self.weight, 2.0)
            _record["inference"] = _TB.is_inference(_probe)
            _record["grad"] = _TB.requires_grad.__get__(_probe)
            _record["shape"] = _tuple(_TB.size(input_ids))
            _record["on_gpu"] = _on_gpu(input_ids)
            _record["streamer"] = streamer is not None
            _record["puts"] = []
            _list.append(self.calls, _record)
            _wanted = _num(kwargs.get("max_new_tokens") or 20, "max_new_tokens")
            _k = _wanted if _num(kwargs.get("min_new_tokens") or 0, "min_new_tokens") >= _wanted else 2
            _clock.sleep(0.03)  # generate's own set-up (on the CPU), before it hands over the prompt
            if streamer is not None:
                streamer.put(_TB.clone(input_ids))  # first the prompt, as transformers does
            self._work(self.prefill_s + (self.cold_s if _list.__len__(self.calls) == 1 else 0.0))
            _i = 0
            while _i < _k:
                if _i > 0:
                    self._work(self.steps_s[(_i - 1) % _tuple.__len__(self.steps_s)])
                _i = _i + 1
                _before = _clock.perf_counter()
                if streamer is not None:
                    streamer.put(_VF.full((1,), 7, dtype=_TB.dtype.__get__(input_ids)))
                _list.append(_record["puts"], (_before, _clock.perf_counter()))
            self._work(self.tail_s)
            if streamer is not None:
                streamer.end()
            _record["exit"] = _clock.perf_counter()
            _new = _VF.full((_record["shape"][0], _k), 7, dtype=_TB.dtype.__get__(input_ids))
            return _VF.cat([input_ids, _new], 1)


def _timed(fake, *args, **kwargs):
    """time_prefill_decode's result, and when the call began and ended on the test's clock."""
    _start = _clock.perf_counter()
    _result = time_prefill_decode(fake, *args, **kwargs)
    return _result, _start, _clock.perf_counter()


def _drained_between(fake, earliest, latest):
    """The last moment in [earliest, latest] at which the simulated GPU's queue became empty, or None."""
    _when = None
    for _t in fake.drained:
        if earliest <= _t <= latest:
            _when = _t
    return _when


def _check_split(fake, result, began, ended, n_tokens, n_prompt):
    """The result's counts, and its TTFT, TPOT, decode rate and total latency within the exact brackets."""
    _where = "on a GPU (simulated), " if fake.gpu else ""
    _n, _p = _field(result, "tokens_generated"), _field(result, "prompt_tokens")
    assert _n == n_tokens, f"{n_tokens} new tokens were generated; got tokens_generated={_n} (count only the new tokens)"
    assert _p == n_prompt, f"the prompt has {n_prompt} tokens; got prompt_tokens={_p}"
    _call, _earlier = fake.calls[-1], fake.calls[:-1]
    assert _call["streamer"], "pass a streamer to the timed generate: it sees each new token arrive"
    # When the clock may have started: after the previous call's work was done, before generate was called.
    _start_lo = _earlier[-1]["exit"] if _earlier else began
    if fake.gpu:
        assert _call["queued_at_enter"] == 0.0, \
            "on a GPU (simulated), work of the warm-up call was still running when the timed generate began: " \
            "synchronize right before starting the clock"
        _start_lo = _drained_between(fake, _start_lo, _call["enter"]) or _start_lo
    _start_hi = _call["enter"]
    # When each new token arrived: after its work was done (on a GPU: after a synchronize inside put).
    _lo, _hi = [], []
    for _b, _a in _call["puts"]:
        _done = _drained_between(fake, _b, _a) if fake.gpu else _b
        assert _done is not None, \
            "on a GPU (simulated), put read the clock before the new token's work was done: call " \
            "torch.cuda.synchronize() (helpers.synchronize(device)) inside the streamer's put, before reading the clock"
        _list.append(_lo, _done)
        _list.append(_hi, _a)
    _ttft = _field(result, "ttft_s")
    assert _lo[0] - _start_hi - 1e-6 <= _ttft, \
        f"{_where}ttft_s={_ttft:.4f} s, but the first new token came {_lo[0] - _start_hi:.4f} s or more after the clock " \
        "could have started: TTFT runs from the clock start to the arrival of the first NEW token at the streamer " \
        "(generate's first put is the prompt, not a token)" + \
        ("; on a GPU synchronize inside put before reading the clock" if fake.gpu else "")
    assert _ttft <= _hi[0] - _start_lo + 1e-6, \
        f"{_where}ttft_s={_ttft:.4f} s, but at most {_hi[0] - _start_lo:.4f} s passed between the end of the earlier " \
        "work and the first new token: start the clock right before the timed generate, after the warm-up" + \
        (" and after synchronising" if fake.gpu else "")
    assert _list.__len__(_lo) == n_tokens
    _gaps_lo, _gaps_hi, _i = [], [], 1
    while _i < n_tokens:
        _list.append(_gaps_lo, _lo[_i] - _hi[_i - 1])
        _list.append(_gaps_hi, _hi[_i] - _lo[_i - 1])
        _i = _i + 1
    _tpot = _field(result, "tpot_ms")
    assert 1000.0 * _median(_gaps_lo) - 1e-3 <= _tpot <= 1000.0 * _median(_gaps_hi) + 1e-3, \
        f"{_where}tpot_ms={_tpot:.2f}, but the median gap between consecutive new tokens was " \
        f"{1000.0 * _median(_gaps_lo):.2f} ms: TPOT is the median (not the mean) of the N - 1 gaps between " \
        "new-token arrivals, in milliseconds; the wait for the first token is TTFT, not one of the gaps" + \
        ("; on a GPU synchronize inside put before reading the clock" if fake.gpu else "")
    _rate = _field(result, "decode_tokens_per_sec")
    assert -1e-6 * _rate <= _rate - 1000.0 / _tpot <= 1e-6 * _rate, \
        f"decode_tokens_per_sec={_rate:.3f} must be 1000 / tpot_ms = {1000.0 / _tpot:.3f}"
    _end_lo = _call["exit"]
    if fake.gpu:
        _end_lo = _drained_between(fake, _hi[-1], ended)  # the work after the last token done
        assert _end_lo is not None and fake.queued_s == 0.0, \
            "on a GPU (simulated), the timed call's work was still running when time_prefill_decode returned: " \
            "synchronize right after the timed generate, before reading the clock"
    _total = _field(result, "total_latency_s")
    assert _end_lo - _start_hi - 1e-6 <= _total <= ended - _start_lo + 1e-6, \
        f"{_where}total_latency_s={_total:.4f} s, but the timed call took {_end_lo - _start_hi:.4f} s or more and " \
        f"at most {ended - _start_lo:.4f} s: time from the clock start to the end of the timed generate " \
        "(synchronised), in seconds, without the warm-up"


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_prompt = "The history of the printing press begins in a small workshop where metal letters were cast " \
          "by hand, one at a time, and set in rows"
_n_prompt = _list.__len__(_tok(_prompt).input_ids)
# Gaps of 20, 150, 40, 20 ms: the median is 30 ms; the mean (57.5 ms) or the median with the first
# token's 80 ms wait among them (40 ms) is wrong.
_steps = (0.02, 0.15, 0.04, 0.02)
_fake = _StreamingLM(prefill_s=0.08, steps_s=_steps, cold_s=0.25, tail_s=0.05)
_r, _began, _ended = _timed(_fake, _tok, _prompt, 5, use_cache=False, repetition_penalty=1.0)
assert _list.__len__(_fake.calls) >= 2, "do one untimed warm-up generate before the timed one"
_last = _fake.calls[-1]
assert _last["inference"] is True and _last["grad"] is False, "the timed generate must run inside torch.inference_mode()"
_sample = _last.get("do_sample")
assert (_sample is False or _sample is None) and _num(_last.get("num_beams", 1), "num_beams") == 1, \
    "use greedy decoding"
assert _num(_last.get("min_new_tokens", 0), "min_new_tokens") == 5 and \
    _num(_last.get("max_new_tokens", 0), "max_new_tokens") == 5, \
    "pass max_new_tokens and min_new_tokens = max_new_tokens to generate"
assert _last.get("use_cache") is False, "use_cache must be passed to generate"
assert _num(_last.get("repetition_penalty", 0), "repetition_penalty") == 1.0, \
    "extra keyword arguments must be passed through to generate"
assert _last["shape"][0] == 1, "one prompt: a batch of one sequence"
_check_split(_fake, _r, _began, _ended, 5, _n_prompt)
# warmup=False: the timed call is the only call; another prompt and length.
_fake = _StreamingLM(prefill_s=0.05, steps_s=(0.03, 0.01, 0.01), cold_s=0.0, tail_s=0.02)
_r, _began, _ended = _timed(_fake, _tok, "Hello there, how are you?", 4, warmup=False)
assert _list.__len__(_fake.calls) == 1, \
    f"with warmup=False call generate once (the timed call, no warm-up), got {_list.__len__(_fake.calls)} calls"
_check_split(_fake, _r, _began, _ended, 4, _list.__len__(_tok("Hello there, how are you?").input_ids))
# A simulated GPU: generate only queues its work; a token is ready when torch.cuda.synchronize has
# waited for it, and work is still queued when generate returns.
_fake = _StreamingLM(prefill_s=0.08, steps_s=_steps, cold_s=0.2, tail_s=0.15, gpu=True)
_r, _began, _ended = _on_simulated_gpu(_fake, _tok, _prompt, 5)
assert _list.__len__(_fake.calls) >= 2 and _fake.calls[-1]["on_gpu"], \
    "move the inputs to the model's device (model.device) before generate"
_check_split(_fake, _r, _began, _ended, 5, _n_prompt)
with _C.DisableTorchFunction():
    _grad_after = _TB.requires_grad.__get__(_TB.mul(_fake.weight, 2.0))
assert _grad_after is True, "time_prefill_decode must not switch gradients off globally"
### END HIDDEN TESTS

# %% [tests id=test_prefill_decode_sweep_hidden points=2]
"""Check the sweep's warm-up per length, round-robin interleaving, medians and IQRs, prompt lengths in tokens, columns, plots."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module, results read as real numbers. time_prefill_decode is replaced by a
# stand-in that records every call and returns known numbers; make_prompt by one that overshoots by 6
# tokens, so prompt_tokens must be measured. The plots are written into an empty scratch folder.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers
from helpers.texts import BASE_PROMPT as _BASE

_type = (0).__class__.__class__
_float, _int, _str, _list, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


# include: is_png


def _column(frame, key):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [_num(_v, key) for _v in _values]


def _near(values, expected):
    if _list.__len__(values) != _list.__len__(expected):
        return False
    _i = 0
    while _i < _list.__len__(values):
        if not -1e-9 * (1.0 + expected[_i]) <= values[_i] - expected[_i] <= 1e-9 * (1.0 + expected[_i]):
            return False
        _i = _i + 1
    return True


_posix, _clock = _fresh("posix"), _fresh("time")
_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_base_ids = _tok(_BASE, add_special_tokens=False).input_ids
_targets = [10, 30, 60]
_student_make_prompt, _saved_time_prefill_decode = make_prompt, time_prefill_decode
_saved_save_figure = _helpers.save_figure


def make_prompt(tokenizer, n_tokens, base_text=_BASE):
    return _tok.decode((_base_ids * 40)[:_int(n_tokens) + 6])


_expected_n = [_list.__len__(_tok(make_prompt(_tok, _t)).input_ids) for _t in _targets]
_calls, _counted, _saved_figures = [], [[], [], []], []


def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    """Known results. The first call for a length without warmup=True is a cold warm-up run (slow);
    the repeat-th timed run of length i (from 0) has TTFT (i + 1) x (1 or 5 s, alternating) and TPOT
    (i + 1) x 10 ms, except (i + 1) x 1000 ms on the eighth."""
    _n = _list.__len__(tokenizer(prompt).input_ids)
    _arm = -1
    _j = 0
    while _j < 3:
        if _n == _expected_n[_j]:
            _arm = _j
        _j = _j + 1
    _first = True
    for _c in _calls:
        _first = _first and _c["arm"] != _arm
    _list.append(_calls, {"arm": _arm, "warmup": warmup is True, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "n": _n})
    _scale = _arm + 1.0
    if _arm < 0 or (_first and warmup is not True):
        _ttft, _tpot = 100.0, 5000.0
    else:
        _r = _list.__len__(_counted[_arm])
        _list.append(_counted[_arm], _list.__len__(_calls) - 1)
        _ttft = _scale * (1.0 if _r % 2 == 0 else 5.0)
        _tpot = _scale * (1000.0 if _r == 7 else 10.0)
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"ttft_s": _ttft, "tpot_ms": _tpot, "decode_tokens_per_sec": 1000.0 / _tpot,
            "total_latency_s": _ttft + (_tokens - 1) * _tpot / 1000.0, "tokens_generated": _tokens,
            "prompt_tokens": _n}


def _save_figure_spy(figure, name, *args, **kwargs):
    _bars = 0
    for _ax in figure.axes:
        for _container in _ax.containers:
            if _name(_type(_container)) == "ErrorbarContainer" and _container.has_yerr is True:
                _bars += 1
    _list.append(_saved_figures, _bars)
    return _saved_save_figure(figure, name, *args, **kwargs)


_helpers.save_figure = _save_figure_spy
# include: enter_scratch_dir
try:
    _frame = run_prefill_decode_for_lengths(None, _tok, _targets, 5, 8)
    _plots = [_is_png(_scratch + "/artifacts/" + _f) for _f in ("prefill_decode_ttft.png", "prefill_decode_tpot.png")]
finally:
    make_prompt, time_prefill_decode, _helpers.save_figure = _student_make_prompt, _saved_time_prefill_decode, \
        _saved_save_figure
    # include: leave_scratch_dir
for _c in _calls:
    assert _c["arm"] >= 0, \
        f"a prompt of {_c['n']} tokens was timed, which make_prompt did not build for any of the lengths: " \
        "build each prompt with make_prompt(tokenizer, n_tokens)"
    assert _c["max_new_tokens"] == 5, "max_new_tokens must be the same at every length"
_per_arm = [_list.__len__(_runs) for _runs in _counted]
assert _per_arm == [8, 8, 8], \
    f"after its warm-up, each length must be timed `repeats` times (8 here); got {_per_arm} timed runs: warm each " \
    "length up once (one untimed call, or warmup=True on its first timed run), then time it `repeats` times"
_round_of = {}
for _arm_runs in _counted:
    _r = 0
    for _index in _arm_runs:
        _round_of[_index] = _r
        _r = _r + 1
_last_round, _index = 0, 0
while _index < _list.__len__(_calls):
    if _dict.__contains__(_round_of, _index):
        assert _round_of[_index] >= _last_round, \
            "interleave the timed runs round-robin: repeat r of every length before repeat r + 1 of any " \
            "(not all repeats of one length, then the next)"
        _last_round = _round_of[_index]
    _index = _index + 1
for _key in ("prompt_tokens", "max_new_tokens", "ttft_s", "tpot_ms", "decode_tokens_per_sec", "ttft_s_iqr", "tpot_ms_iqr"):
    assert _key in _frame.columns, f"missing column {_key!r}"
_rows = _list.__len__(_column(_frame, "ttft_s"))
assert _rows == 3, f"one row per length (3 here), got {_rows}"
_measured = _column(_frame, "prompt_tokens")
assert _list.__len__(_measured) == 3 and -1 <= _measured[0] - _expected_n[0] <= 1 and \
    -1 <= _measured[1] - _expected_n[1] <= 1 and -1 <= _measured[2] - _expected_n[2] <= 1, \
    f"prompt_tokens must be measured on the prompts that were timed ({_expected_n} tokens here, in the order of " \
    f"the lengths given), not copied from the target lengths; got {_measured}"
assert _column(_frame, "max_new_tokens") == [5, 5, 5], "the max_new_tokens column must hold the limit used (5 here)"
assert _near(_column(_frame, "ttft_s"), [3.0, 6.0, 9.0]) and _near(_column(_frame, "tpot_ms"), [10.0, 20.0, 30.0]) \
    and _near(_column(_frame, "decode_tokens_per_sec"), [100.0, 50.0, 1000.0 / 30.0]), \
    "report, per length in the order given, the median of ttft_s, tpot_ms and decode_tokens_per_sec over the timed " \
    "runs only (not the warm-up)"
_iqr = _column(_frame, "ttft_s_iqr") + _column(_frame, "tpot_ms_iqr")
assert _near(_iqr, [4.0, 8.0, 12.0, 0.0, 0.0, 0.0]), \
    f"the *_iqr columns must hold the interquartile range (75th minus 25th percentile) of the timed runs, got {_iqr}"
assert _plots == [True, True], \
    "save both plots (helpers.plot_columns, or helpers.save_figure): artifacts/prefill_decode_ttft.png and prefill_decode_tpot.png"
assert _list.__len__(_saved_figures) >= 2 and 0 not in _saved_figures, \
    "draw each plot with the IQR as error bars (helpers.plot_columns does, or helpers.plot_metric(..., yerr=...)) and save it"
### END HIDDEN TESTS

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

# %% [markdown]
# ---
# ## Part B2: KV cache and padding side (2 points)
#
# With the **KV cache**, each decode step computes keys and values for the one new token and
# reuses the stored ones; without it, every step recomputes the whole sequence, so the cost of
# step t grows with t. **Padding**: a batch of prompts of different lengths is padded to one
# length. A decoder-only model continues from the *last* position, so padding must go on the
# **left**; with right padding, the new tokens come after pad tokens, and the output is wrong
# even when it is fast. Every arm keeps the prompts and `max_new_tokens` fixed.
#
# An ablation changes **one thing at a time** against a baseline: here the baseline is the cache
# on with left padding, one arm turns the cache off, one pads on the right (`ABLATION_ARMS`; the
# fourth combination, no cache *and* right padding, would cost the most time and teach nothing new).
#
# Write `ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats)`: time the
# batch of `prompts` in each `(use_cache, padding_side)` of `ABLATION_ARMS`, `repeats` times each
# (`time_repeats`), medians reported; restore the tokenizer's padding side afterwards. Return a
# DataFrame, one row per arm in that order, with columns `use_cache`, `padding_side`,
# `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms`, `max_new_tokens`.

# %% [readonly id=ablation_arms]
ABLATION_ARMS = ((True, "left"), (False, "left"), (True, "right"))  # (use_cache, padding_side): baseline first

# %% [solution id=ablate_cache_and_padding]
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    """Median timings of each (use_cache, padding_side) arm of ABLATION_ARMS on one batch. Returns a DataFrame."""
    ### BEGIN SOLUTION
    original_side = tokenizer.padding_side
    batch = list(prompts)

    def arm(use_cache, side):  # one timed run of this arm; each run sets its own padding side
        def run(warmup):
            tokenizer.padding_side = side
            return time_generate(model, tokenizer, batch, max_new_tokens, use_cache=use_cache, warmup=warmup)
        return run

    rows = []
    try:
        timings = time_round_robin([arm(use_cache, side) for use_cache, side in ABLATION_ARMS], repeats)
        for (use_cache, side), runs in zip(ABLATION_ARMS, timings):
            row = {"use_cache": use_cache, "padding_side": side, "batch_size": len(prompts),
                   "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
            row.update(helpers.medians_with_iqr(runs))
            rows.append(row)
    finally:
        tokenizer.padding_side = original_side
    return pd.DataFrame(rows)
    ### END SOLUTION

# %% [markdown]
# Try it: three rows; `use_cache=False` is clearly slower, and right padding about as fast as left.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
ABLATION_PROMPTS = [EDGE_PROMPTS["very_short"], REFERENCE_PROMPT, EDGE_PROMPTS["multi_line"]]
ablation = ablate_cache_and_padding(model, tokenizer, ABLATION_PROMPTS, PROFILE.max_new_tokens, TRY_REPEATS)
ablation

# %% [tests id=test_ablation points=1]
"""Check the arms of the ablation, their identical settings, medians, and the restored tokenizer."""
_saved_time_generate = time_generate
_calls = []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _calls.append(dict(prompt=tuple(prompt) if not isinstance(prompt, str) else prompt, side=tokenizer.padding_side,
                       max_new_tokens=max_new_tokens, use_cache=use_cache))
    # The third run of each arm is 4x slower: its median is 1 s, its mean 2 s.
    _same = sum(1 for _c in _calls if (_c["use_cache"], _c["side"]) == (use_cache, tokenizer.padding_side))
    latency = 4.0 if _same == 3 else 1.0
    return {"total_latency_s": latency, "tokens_generated": 6, "tokens_per_sec": 6.0 / latency,
            "avg_latency_per_token_ms": 1000 * latency / 6}


_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
try:
    _frame = ablate_cache_and_padding(None, _tok, ["a b c", "d"], 3, 3)
finally:
    time_generate = _saved_time_generate
assert _tok.padding_side == "left", "restore the tokenizer's padding side after the ablation"
assert [(u, s) for u, s in zip(_frame["use_cache"], _frame["padding_side"])] == list(ABLATION_ARMS), \
    f"one row per arm of ABLATION_ARMS, in its order: {ABLATION_ARMS}"
assert len(_calls) == 9, f"3 arms x 3 repeats = 9 timed runs, got {len(_calls)}"
assert {_c["prompt"] for _c in _calls} == {("a b c", "d")} and {_c["max_new_tokens"] for _c in _calls} == {3}, \
    "every arm must time the same batch of prompts with the same max_new_tokens"
assert sorted((_c["use_cache"], _c["side"]) for _c in _calls) == sorted([_arm for _arm in ABLATION_ARMS for _ in (1, 2, 3)]), \
    "each arm must really set use_cache and tokenizer.padding_side"
assert list(_frame["total_latency_s"]) == [1.0] * 3 and list(_frame["tokens_per_sec"]) == [6.0] * 3, \
    "report the median of each arm's runs (not the mean)"

# %% [tests id=test_ablation_hidden points=1]
"""Check the ablation on another batch: repeats, each arm's own medians, every column, the padding side restored."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, the frame's columns read as lists and
# each value as a real number or str, the arms written out here (not read from ABLATION_ARMS).
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


# include: true_text


def _column(frame, key, read):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [read(_v, key) for _v in _values]


def _near(values, expected):
    if _list.__len__(values) != _list.__len__(expected):
        return False
    _i = 0
    while _i < _list.__len__(values):
        if not -1e-9 * expected[_i] <= values[_i] - expected[_i] <= 1e-9 * expected[_i]:
            return False
        _i += 1
    return True


_ARMS = [(1, "left"), (0, "left"), (1, "right")]  # (use_cache, padding_side): ABLATION_ARMS, in its order
_SCALE = {(1, "left"): 1.0, (0, "left"): 3.0, (1, "right"): 1.5}
# The n-th run of an arm takes _RUNS[n] times its scale, whatever order the arms are timed in (taking
# turns or one after another): per arm the median is 4 x scale, the mean 4.2, the fastest 1, the first 2.
_RUNS = (2.0, 1.0, 4.0, 9.0, 5.0)
_PROMPTS = ["Hello.", "Two short words", "A third prompt, longer than the other two."]
_saved_time_generate = time_generate
_calls = []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _batch = [_text(prompt, "prompt")] if _type(prompt) is _str else [_text(_p, "prompt") for _p in prompt]
    _arm = (_num(use_cache, "use_cache"), _text(tokenizer.padding_side, "tokenizer.padding_side"))
    _n = _list.__len__([_c for _c in _calls if _c["arm"] == _arm])
    _list.append(_calls, {"arm": _arm, "batch": _batch, "max_new_tokens": _num(max_new_tokens, "max_new_tokens")})
    _latency = _SCALE.get(_arm, 100.0) * _RUNS[_n % 5]
    _tokens = _list.__len__(_batch) * _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_tok.padding_side = "right"  # the side the tokenizer had before: to be restored, and set by every arm itself
try:
    _frame = ablate_cache_and_padding(None, _tok, _list(_PROMPTS), 7, 5)
    _sides = [_tok.padding_side]
    # A second, small run from a tokenizer padding on the left: restored whatever side the last arm set.
    _calls_main, _calls = _calls, []
    _tok.padding_side = "left"
    ablate_cache_and_padding(None, _tok, ["Only one prompt"], 2, 1)
    _list.append(_sides, _tok.padding_side)
    _calls = _calls_main
finally:
    time_generate = _saved_time_generate
assert [_text(_s, "tokenizer.padding_side") for _s in _sides] == ["right", "left"], \
    f"restore the padding side the tokenizer had before the ablation ('right', then 'left' here), got {_sides}"
assert _list.__len__(_calls) == 15, f"3 arms x 5 repeats = 15 timed runs, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["batch"] == _PROMPTS, \
        f"every arm must time the whole batch of prompts it is given ({_PROMPTS}), got {_c['batch']}"
    assert _c["max_new_tokens"] == 7, "every arm must time the max_new_tokens it is given (7 here), the same for all"
_per_arm = [_list.__len__([_c for _c in _calls if _c["arm"] == _a]) for _a in _ARMS]
assert _per_arm == [5, 5, 5], \
    f"each arm must set use_cache and tokenizer.padding_side for every run (the tokenizer pads on the right " \
    f"when the ablation starts); runs of the arms {_ARMS}: {_per_arm}"
_caches, _side_column = _column(_frame, "use_cache", _num), _column(_frame, "padding_side", _text)
_rows, _i = [], 0
while _i < _list.__len__(_caches) and _i < _list.__len__(_side_column):
    _list.append(_rows, (_caches[_i], _side_column[_i]))
    _i += 1
assert _rows == _ARMS, f"one row per arm of ABLATION_ARMS, in its order: {_ARMS}, got {_rows}"
for _key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms", "max_new_tokens"):
    assert _key in _frame.columns, f"missing column {_key!r}"
assert _column(_frame, "max_new_tokens", _num) == [7, 7, 7], "the max_new_tokens column must hold the limit used (7)"
_lat = _column(_frame, "total_latency_s", _num)
assert _near(_lat, [4.0, 12.0, 6.0]), \
    f"each row must hold the median of its own arm's runs (here 4, 12 and 6 s; the fastest runs are 1, 3 and " \
    f"1.5 s, the means 4.2, 12.6 and 6.3 s), got {_lat}"
assert _near(_column(_frame, "tokens_per_sec", _num), [21.0 / 4.0, 21.0 / 12.0, 21.0 / 6.0]), \
    "tokens_per_sec must be the median over each arm's runs"
assert _near(_column(_frame, "avg_latency_per_token_ms", _num), [4000.0 / 21.0, 12000.0 / 21.0, 6000.0 / 21.0]), \
    "avg_latency_per_token_ms must be the median over each arm's runs"
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part B3: batching (2 points)
#
# A batch of B prompts shares every weight read: one forward pass serves B sequences, so
# **total throughput** (new tokens of all sequences per second) rises with B, up to the point
# where the arithmetic, not the memory reads, is the bottleneck. But every sequence in a batch
# finishes when the batch finishes, so the **latency per sample** (how long one request waits)
# does not fall, and usually rises. Prompts are padded on the **left**.
#
# Write `measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats)`: for
# batch size B use the first B prompts (cycling through `prompts` if B is larger), left padding,
# `time_generate` `repeats` times, medians. Return a DataFrame with `batch_size`,
# `total_latency_s`, `tokens_per_sec` (total over the batch), `per_sample_latency_s` (the time a
# request waits: the batch latency), `amortized_latency_per_sample_s` (batch latency / B),
# `max_new_tokens`; plot both throughput and per-sample latency against batch size and save the
# figure as `batching`.

# %% [solution id=measure_batched]
def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """Median throughput and per-sample latency per batch size. Returns a DataFrame."""
    ### BEGIN SOLUTION
    original_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: generation continues from the last position
    rows = []
    sizes = [int(size) for size in batch_sizes]

    def arm(size):  # one timed call of this batch size
        batch = [prompts[i % len(prompts)] for i in range(int(size))]
        return lambda warmup: time_generate(model, tokenizer, batch, max_new_tokens, warmup=warmup)

    try:
        timings = time_round_robin([arm(size) for size in sizes], repeats)  # batch sizes take turns
        for size, runs in zip(sizes, timings):
            row = {"batch_size": int(size), "max_new_tokens": int(max_new_tokens), "repeats": int(repeats),
                   **helpers.medians_with_iqr(runs, ("total_latency_s", "tokens_per_sec"))}
            row["per_sample_latency_s"] = row["total_latency_s"]
            row["amortized_latency_per_sample_s"] = row["total_latency_s"] / int(size)
            rows.append(row)
    finally:
        tokenizer.padding_side = original_side
    frame = pd.DataFrame(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    helpers.plot_columns(frame, "batch_size", "tokens_per_sec", "batching", title="total throughput", ax=axes[0])
    helpers.plot_columns(frame, "batch_size", "per_sample_latency_s", "batching", title="latency per request",
                         iqr_key="total_latency_s_iqr", ax=axes[1])
    helpers.save_figure(figure, "batching")
    plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: one row per batch size in `PROFILE.batch_sizes`; tokens/s should rise with the batch.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
batching = measure_batched(model, tokenizer, ABLATION_PROMPTS, PROFILE.batch_sizes, PROFILE.max_new_tokens,
                           TRY_REPEATS)
batching

# %% [tests id=test_batched points=1]
"""Check batch contents, left padding, identical limits, medians, the per-sample columns and the saved figure."""
_saved_time_generate = time_generate
_calls = []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    _calls.append(dict(n=len(_prompts), side=tokenizer.padding_side, max_new_tokens=max_new_tokens))
    # The third run of each batch size is 3x slower: medians are unchanged, means are not.
    latency = 0.5 * len(_prompts) * (3.0 if sum(1 for _c in _calls if _c["n"] == len(_prompts)) == 3 else 1.0)
    tokens = len(_prompts) * int(max_new_tokens)
    return {"total_latency_s": latency, "tokens_generated": tokens, "tokens_per_sec": tokens / latency,
            "avg_latency_per_token_ms": 1000.0 * latency / tokens}


_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
_tok.padding_side = "right"
try:
    with scratch_folder() as _folder:
        _frame = measure_batched(None, _tok, ["p1", "p2 longer"], [1, 2, 4], 4, 3)
        _figure_saved = (_folder / "artifacts" / "batching.png").is_file()
finally:
    time_generate = _saved_time_generate
    plt.close("all")
assert sorted(_c["n"] for _c in _calls) == [1, 1, 1, 2, 2, 2, 4, 4, 4], \
    "batch size B must time B prompts, repeats times each (in any order)"
assert {_c["side"] for _c in _calls} == {"left"}, "batches must be padded on the left (decoder-only model)"
assert {_c["max_new_tokens"] for _c in _calls} == {4}, "max_new_tokens must be the same for every batch size"
assert _tok.padding_side == "right", "restore the tokenizer's padding side afterwards"
assert list(_frame["total_latency_s"]) == [0.5, 1.0, 2.0], \
    "total_latency_s is the median batch latency over the repeats (not the mean)"
assert list(_frame["per_sample_latency_s"]) == [0.5, 1.0, 2.0], "per_sample_latency_s is the batch latency"
assert list(_frame["amortized_latency_per_sample_s"]) == [0.5, 0.5, 0.5], "amortized latency is batch latency / B"
assert list(_frame["tokens_per_sec"]) == [8.0, 8.0, 8.0], "tokens_per_sec is the median total throughput"
assert _figure_saved, "save the figure with helpers.save_figure(figure, \"batching\") (artifacts/batching.png)"

# %% [tests id=test_batched_hidden points=1]
"""Check batching on other prompts and sizes: batches, padding, medians, every column, the plotted metrics."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module, the frame's columns read as lists and each value as a real number. The
# figure is read from what is saved (every Figure.savefig of the call), in an empty scratch folder.
import importlib.util as _ilu
import matplotlib.figure as _mfigure
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


# include: true_text


def _column(frame, key):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [_num(_v, key) for _v in _values]


def _number_or_none(value):
    for _c in _mro(_type(value)):
        if _c is _float:
            return _float.__float__(value)
        if _c is _int:
            return _int.__int__(value)
        if _name(_c) == "generic" and not _flags(_c) & 512:  # numpy.generic, a C type
            return _number_or_none(_c.item(value))
    return None


def _proportional(series, values):
    """Whether a plotted series is values times one positive factor (a unit change is allowed)."""
    if _list.__len__(series) != _list.__len__(values):
        return False
    _ratio, _i = None, 0
    while _i < _list.__len__(values):
        if series[_i] is None or not series[_i] > 0:
            return False
        if _ratio is None:
            _ratio = series[_i] / values[_i]
        elif not -1e-6 * _ratio <= series[_i] / values[_i] - _ratio <= 1e-6 * _ratio:
            return False
        _i += 1
    return True


def _plotted(figure):
    """Every series a figure shows: each line's y values, each scatter's y offsets, each axes' bar heights."""
    _found = []
    for _ax in figure.axes:
        for _line in _ax.lines:
            _list.append(_found, [_number_or_none(_v) for _v in _line.get_ydata()])
        for _points in _ax.collections:
            if _name(_type(_points)) == "PathCollection":
                _list.append(_found, [_number_or_none(_xy[1]) for _xy in _points.get_offsets()])
        _bars = [_number_or_none(_p.get_height()) for _p in _ax.patches if _name(_type(_p)) == "Rectangle"]
        if _bars:
            _list.append(_found, _bars)
    return _found


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_PROMPTS = ["alpha", "beta gamma", "delta epsilon zeta"]
_EXPECTED_BATCH = {1: ["alpha"], 2: ["alpha", "beta gamma"],
                   5: ["alpha", "beta gamma", "delta epsilon zeta", "alpha", "beta gamma"]}
_BASE = {1: 0.5, 2: 0.75, 5: 1.25}  # seconds per batch size: not proportional to B
# The n-th run of a batch size takes _RUNS[n] times its base, whatever order the sizes are timed in:
# medians 4 x base (2, 3 and 5 s), means 4.2 x, fastest 1 x, first runs 2 x.
_RUNS = (2.0, 1.0, 4.0, 9.0, 5.0)
_saved_time_generate, _saved_savefig = time_generate, _mfigure.Figure.savefig
_calls, _figures = [], []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _batch = [_text(prompt, "prompt")] if _type(prompt) is _str else [_text(_p, "prompt") for _p in prompt]
    _size = _list.__len__(_batch)
    _n = _list.__len__([_c for _c in _calls if _c["size"] == _size])
    _list.append(_calls, {"size": _size, "batch": _batch, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "side": _text(tokenizer.padding_side, "tokenizer.padding_side")})
    _latency = _BASE.get(_size, 100.0) * _RUNS[_n % 5]
    _tokens = _size * _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


def _savefig_spy(figure, *args, **kwargs):
    _list.append(_figures, figure)
    return _saved_savefig(figure, *args, **kwargs)


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_tok.padding_side = "left"  # the side the tokenizer had before: to be restored
# include: enter_scratch_dir
_mfigure.Figure.savefig = _savefig_spy
try:
    _frame = measure_batched(None, _tok, _list(_PROMPTS), [1, 2, 5], 6, 5)
    _series = []
    for _f in _figures:
        _series = _series + _plotted(_f)
    _saved = _is_png(_scratch + "/artifacts/batching.png")
    _sides = [_tok.padding_side]
    # A second, small run from a tokenizer padding on the right: restored, not left on the left.
    _calls_main, _calls = _calls, []
    _tok.padding_side = "right"
    measure_batched(None, _tok, ["only one"], [1], 2, 1)
    _list.append(_sides, _tok.padding_side)
    _calls = _calls_main
finally:
    time_generate, _mfigure.Figure.savefig = _saved_time_generate, _saved_savefig
    # include: leave_scratch_dir
assert [_text(_s, "tokenizer.padding_side") for _s in _sides] == ["left", "right"], \
    f"restore the padding side the tokenizer had before ('left', then 'right' here), got {_sides}"
assert _list.__len__(_calls) == 15, f"3 batch sizes x 5 repeats = 15 timed runs, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["side"] == "left", "pad every batch on the left (decoder-only model)"
    assert _c["max_new_tokens"] == 6, \
        "every batch size must time the max_new_tokens it is given (6 here), the same for all"
    assert _c["batch"] == _EXPECTED_BATCH.get(_c["size"]), \
        f"batch size B must time the first B prompts, cycling through them when B is larger (from {_PROMPTS}: " \
        f"{_EXPECTED_BATCH}), got {_c['batch']}"
_per_size = [_list.__len__([_c for _c in _calls if _c["size"] == _b]) for _b in (1, 2, 5)]
assert _per_size == [5, 5, 5], f"each batch size must be timed `repeats` times (5), got {_per_size} for sizes 1, 2, 5"
_sizes = _column(_frame, "batch_size")
_order = _list(_sizes)
_list.sort(_order)
assert _order == [1, 2, 5], f"one row per batch size (1, 2, 5), got {_sizes}"
_want = {"total_latency_s": {1: 2.0, 2: 3.0, 5: 5.0}, "per_sample_latency_s": {1: 2.0, 2: 3.0, 5: 5.0},
         "amortized_latency_per_sample_s": {1: 2.0, 2: 1.5, 5: 1.0}, "tokens_per_sec": {1: 3.0, 2: 4.0, 5: 6.0},
         "max_new_tokens": {1: 6, 2: 6, 5: 6}}
_what = {"total_latency_s": "the median batch latency over the repeats",
         "per_sample_latency_s": "the median batch latency (how long each request waits)",
         "amortized_latency_per_sample_s": "the median batch latency / B",
         "tokens_per_sec": "the median total throughput of the batch (new tokens of every sequence per second)",
         "max_new_tokens": "the limit used (6)"}
_checked = 0
for _key in ("total_latency_s", "per_sample_latency_s", "amortized_latency_per_sample_s", "tokens_per_sec",
             "max_new_tokens"):
    _got = _column(_frame, _key)
    _i = 0
    while _i < _list.__len__(_sizes):
        _expected = _want[_key][_sizes[_i]]
        assert -1e-9 * _expected <= _got[_i] - _expected <= 1e-9 * _expected, \
            f"{_key} must be {_what[_key]}: expected {_expected} at batch size {_sizes[_i]}, got {_got[_i]}"
        _i += 1
    _checked += 1
assert _checked == 5
assert _saved, "save the figure with helpers.save_figure(figure, \"batching\") (artifacts/batching.png)"
_throughput = [3.0, 4.0, 6.0]
_latency = [2.0, 3.0, 5.0]
assert [_s for _s in _series if _proportional(_s, _throughput)] and \
    [_s for _s in _series if _proportional(_s, _latency)], \
    "the saved figure must plot both the total throughput (tokens/s) and the per-sample latency " \
    "against the batch size"
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part B4: did quality hold? Perplexity, baseline vs quantized (4 points)
#
# Speed is worth nothing if the model got worse. **Perplexity** is exp of the mean
# cross-entropy per predicted token: lower is better, and two variants of one model on the same
# texts compare directly. Three details make it right:
#
# * **token-weighted**: sum the loss over every predicted token of every text, divide by the
#   number of those tokens. A mean of per-batch means gives a short batch as much weight as a
#   long one and drifts away from the true value;
# * **padding excluded**: targets at padded positions are not text;
# * **right padding** for evaluation (or explicit position ids): with left padding and no position
#   ids, a padded row's real tokens sit at shifted positions and score differently.
#
# The ONNX Runtime model returns logits but no loss, so compute the loss from the logits yourself:
# position t predicts token t+1. Write `compare_perplexity(models, tokenizer, texts, batch_size,
# max_length=256)` where `models` maps a label to a model (PyTorch or ONNX Runtime); return
# `{label: {"loss": mean nats per token, "ppx": exp(loss), "tokens": predicted tokens counted}}`.

# %% [solution id=compare_perplexity]
def compare_perplexity(models, tokenizer, texts, batch_size=4, max_length=256):
    """Token-weighted loss and perplexity of each model on the same texts, padding excluded.

    models: {label: model}, each callable as model(input_ids=..., attention_mask=...) -> .logits.
    texts: list of str, each truncated to max_length tokens. Returns {label: {"loss", "ppx", "tokens"}}.
    """
    ### BEGIN SOLUTION
    original_side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # real tokens keep positions 0..n-1 in every row
    results = {}
    try:
        for label, mdl in models.items():
            device = _model_device(mdl)
            total_nll, total_tokens = 0.0, 0
            for start in range(0, len(texts), int(batch_size)):
                encoded = tokenizer(list(texts[start:start + int(batch_size)]), return_tensors="pt", padding=True,
                                    truncation=True, max_length=int(max_length))
                ids, mask = encoded["input_ids"], encoded["attention_mask"]
                with torch.inference_mode():
                    logits = mdl(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                logits = torch.as_tensor(logits).float().cpu()[:, :-1]
                targets, keep = ids[:, 1:], mask[:, 1:].bool()
                nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
                total_nll += float(nll[keep.reshape(-1)].sum())
                total_tokens += int(keep.sum())
            loss = total_nll / total_tokens
            results[label] = {"loss": loss, "ppx": math.exp(loss), "tokens": total_tokens}
    finally:
        tokenizer.padding_side = original_side
    return results
    ### END SOLUTION

# %% [markdown]
# Try it: two entries with nearly equal perplexity if the quantization is gentle (the tiny random
# model's perplexity is in the tens of thousands, the embedded model's around 10 to 30).

# %% [code]
quality_models = {"pytorch float32": model}
if "int8_model" in globals():  # present once run_static_ptq_optimum works
    quality_models["onnxruntime int8 dynamic"] = int8_model
quality = compare_perplexity(quality_models, tokenizer, eval_texts(PROFILE.n_eval_texts), PROFILE.eval_batch_size)
quality

# %% [tests id=test_perplexity points=1]
"""Check the shape of compare_perplexity's result and that ppx = exp(loss)."""
_res = compare_perplexity({"a": model}, tokenizer, eval_texts(2), 2)
assert set(_res) == {"a"} and {"loss", "ppx"} <= set(_res["a"]), "return {label: {'loss': ..., 'ppx': ...}}"
assert abs(_res["a"]["ppx"] - math.exp(_res["a"]["loss"])) <= 1e-6 * _res["a"]["ppx"], "ppx must be exp(loss)"

# %% [tests id=test_perplexity_hidden points=3]
"""Check token weighting, excluded padding and logits-only models against an independent computation."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): the reference losses come from C-level tensor methods
# with torch-function overrides off (torch.log_softmax and friends can be replaced) and plain Python
# sums; results are read as real numbers through dict itself and compared with plain arithmetic.
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_C = _torch._C
_TB, _VF = _C.TensorBase, _C._VariableFunctions


# include: true_number


def _entry(mapping, key, what):
    _is_dict = False
    for _c in _mro(_type(mapping)):
        _is_dict = _is_dict or _c is _dict
    assert _is_dict, f"{what} must be a dict, got {_name(_type(mapping))}"
    assert _dict.__contains__(mapping, key), f"{what} must have the key {key!r}"
    return _dict.__getitem__(mapping, key)


class _Output:
    def __init__(self, logits):
        self.logits = logits


class _LogitsOnly:
    """Like an ONNX Runtime model: called with input_ids/attention_mask, returns only logits."""

    def __init__(self, inner):
        self.inner, self.device, self.calls = inner, _torch.device("cpu"), 0

    def __call__(self, input_ids=None, attention_mask=None, **kwargs):
        self.calls += 1
        with _torch.no_grad():
            return _Output(self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits)


class _PositionalLM:
    """A stand-in whose predictions depend on each token's position, as a trained model's do (the
    random tiny model hardly cares, so it cannot show a padding mistake): logits grow sharper with
    the position. Positions are position_ids when given, else 0..length-1 along the padded row, which
    is what a Hugging Face model does; padding on the left then shifts a short row's positions."""

    def __init__(self, vocab_size):
        self.device, self.calls = _torch.device("cpu"), 0
        with _C.DisableTorchFunction():
            self.vocab_phase = _TB.mul(_VF.arange(vocab_size, dtype=_torch.float32), 0.37)

    def logits(self, input_ids, positions):
        with _C.DisableTorchFunction():
            _sharpness = _TB.unsqueeze(_TB.mul(_TB.float(positions), 0.05), -1)
            _phase = _TB.add(_TB.unsqueeze(_TB.mul(_TB.float(input_ids), 0.11), -1), self.vocab_phase)
            return _TB.mul(_TB.cos(_phase), _sharpness)

    def __call__(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        self.calls += 1
        with _C.DisableTorchFunction():
            _positions = _VF.arange(_TB.size(input_ids, 1)) if position_ids is None else position_ids
        return _Output(self.logits(input_ids, _positions))


def _text_nll(logits_fn, ids):
    """Summed next-token loss of one unpadded text (ids: [1, n]) and its number of predicted tokens."""
    with _C.DisableTorchFunction():
        _logp = _TB.log_softmax(_TB.double(logits_fn(ids)), -1)
        _row = _TB.tolist(ids)[0]
        _n = _list.__len__(_row)
        _nll, _pos = 0.0, 0
        while _pos < _n - 1:  # position t predicts token t + 1
            _nll -= _TB.item(_TB.__getitem__(_logp, (0, _pos, _row[_pos + 1])))
            _pos += 1
    return _nll, _n - 1


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_mdl = _AutoModel.from_pretrained(_str(_helpers.TINY_DIR), dtype=_torch.float32).eval()
_positional = _PositionalLM(_num(_mdl.config.vocab_size, "vocab_size"))
# Lengths 24, 128, 54, 128 and 3 tokens: in batches of 2, short rows are padded by 50 to 100 positions.
_E = _helpers.EVAL_TEXTS
_texts = [_E[2][:120], _E[1], _E[0][:250], _E[3], "Bread."]


def _pt_logits(ids):
    with _torch.no_grad():
        return _mdl(input_ids=ids).logits


def _positional_logits(ids):
    with _C.DisableTorchFunction():
        return _positional.logits(ids, _VF.arange(_TB.size(ids, 1)))


_reference = {}
for _key, _fn in (("pt", _pt_logits), ("positional", _positional_logits)):
    _sums, _counts = [], []
    for _t in _texts:  # one text at a time: no padding at all
        _nll, _n = _text_nll(_fn, _tok(_t, truncation=True, max_length=128, return_tensors="pt").input_ids)
        _list.append(_sums, _nll)
        _list.append(_counts, _n)
    _reference[_key] = (_sums[0] + _sums[1] + _sums[2] + _sums[3] + _sums[4]) / \
        (_counts[0] + _counts[1] + _counts[2] + _counts[3] + _counts[4])
# The positional model must tell the aggregations apart, or this test could not fail a mean of batch
# means (measured: 4% apart; a model rigged to give every token the same loss would make them agree).
_batch_means = ((_sums[0] + _sums[1]) / (_counts[0] + _counts[1]), (_sums[2] + _sums[3]) / (_counts[2] + _counts[3]),
                _sums[4] / _counts[4])
_gap = (_batch_means[0] + _batch_means[1] + _batch_means[2]) / 3 - _reference["positional"]
assert not -0.01 * _reference["positional"] <= _gap <= 0.01 * _reference["positional"], \
    "the reference model does not tell a token-weighted mean from a mean of batch means"

_wrapped = _LogitsOnly(_mdl)
_tok.padding_side = "left"
_res = compare_perplexity({"pt": _mdl, "ort-like": _wrapped, "positional": _positional}, _tok, _texts,
                          batch_size=2, max_length=128)
assert _wrapped.calls == 3 and _positional.calls == 3, \
    f"5 texts in batches of 2 are 3 forward calls per model, got {_wrapped.calls} and {_positional.calls}"
_e = 2.718281828459045
for _label, _expected in (("pt", _reference["pt"]), ("ort-like", _reference["pt"]),
                          ("positional", _reference["positional"])):
    _result = _entry(_res, _label, "the result")
    _loss = _num(_entry(_result, "loss", f"result[{_label!r}]"), "loss")
    _ppx = _num(_entry(_result, "ppx", f"result[{_label!r}]"), "ppx")
    assert -1e-3 * _expected <= _loss - _expected <= 1e-3 * _expected, \
        f"{_label}: loss {_loss:.5f} but the token-weighted mean over all texts is {_expected:.5f}: sum the loss " \
        "over every real target token, divide by their number, skip padded positions (right padding, or " \
        "position ids with left padding)"
    assert -1e-2 * _e ** _expected <= _ppx - _e ** _expected <= 1e-2 * _e ** _expected, f"{_label}: ppx = exp(loss)"
_side = _tok.padding_side
assert _type(_side) is _str and _side == "left", "restore the tokenizer's padding side afterwards"
del _mdl, _positional
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part B5: one results table (2 points)
#
# Results scattered over cells are hard to compare. Write `build_results_table(rows)`: `rows` is a
# list of dicts, one per variant, the first one the baseline, each with `variant`, `model_id`,
# `device`, `dtype_or_backend`, `tokens_per_sec`, `total_latency_s`, `avg_latency_per_token_ms`
# and optionally `ppx` and `size_mb`. Return one DataFrame with exactly these columns, in this
# order: `variant`, `model_id`, `device`, `dtype_or_backend`, `tokens_per_sec`,
# `speedup_vs_baseline_x` (tokens/s over the baseline's), `total_latency_s`,
# `avg_latency_per_token_ms`, `perplexity`, `perplexity_change_pct` (100 x (ppx / baseline ppx - 1)),
# `size_mb`. Missing values stay empty (NaN). Units live in the names.

# %% [solution id=build_results_table]
RESULT_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
                  "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]


def build_results_table(rows):
    """One DataFrame of every variant (first row = baseline), units in the column names."""
    ### BEGIN SOLUTION
    rows = [dict(row) for row in rows]
    if not rows:
        raise ValueError("build_results_table needs at least one row (the baseline)")
    base_rate, base_ppx = rows[0]["tokens_per_sec"], rows[0].get("ppx")
    table = []
    for row in rows:
        ppx = row.get("ppx", float("nan"))
        table.append({
            "variant": row["variant"], "model_id": row["model_id"], "device": row["device"],
            "dtype_or_backend": row["dtype_or_backend"], "tokens_per_sec": row["tokens_per_sec"],
            "speedup_vs_baseline_x": row["tokens_per_sec"] / base_rate,
            "total_latency_s": row["total_latency_s"], "avg_latency_per_token_ms": row["avg_latency_per_token_ms"],
            "perplexity": ppx,
            "perplexity_change_pct": 100.0 * (ppx / base_ppx - 1.0) if base_ppx else float("nan"),
            "size_mb": row.get("size_mb", float("nan")),
        })
    return pd.DataFrame(table, columns=RESULT_COLUMNS)
    ### END SOLUTION

# %% [tests id=test_results_table points=1]
"""Check the columns, the carried values and the derived columns of build_results_table."""
_rows = [dict(variant="base", model_id="m", device="cpu", dtype_or_backend="float32", tokens_per_sec=20.0,
              total_latency_s=1.6, avg_latency_per_token_ms=50.0, ppx=25.0, size_mb=540.0),
         dict(variant="int8", model_id="m", device="cpu", dtype_or_backend="onnxruntime int8", tokens_per_sec=40.0,
              total_latency_s=0.8, avg_latency_per_token_ms=25.0, ppx=26.0)]
_t = build_results_table(_rows)
assert list(_t.columns) == RESULT_COLUMNS, f"columns must be {RESULT_COLUMNS}, got {list(_t.columns)}"
assert list(_t["variant"]) == ["base", "int8"] and list(_t["tokens_per_sec"]) == [20.0, 40.0], "keep rows in order"
assert list(_t["speedup_vs_baseline_x"]) == [1.0, 2.0], "speedup = tokens_per_sec / baseline tokens_per_sec"
assert abs(_t["perplexity_change_pct"][1] - 4.0) < 1e-9 and _t["perplexity_change_pct"][0] == 0.0, \
    "perplexity_change_pct = 100 * (ppx / baseline ppx - 1)"
assert math.isnan(_t["size_mb"][1]), "a missing size stays NaN"

# %% [tests id=test_results_table_hidden points=1]
"""Check the results table on other rows: the first row as baseline, every value carried, empty cells, extra keys."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, the columns written out here (not read
# from RESULT_COLUMNS), the frame's columns read as lists and each value as a real number or str.
_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


# include: true_text


def _cell(value, what):
    """A number, or None for an empty cell (NaN, None or pandas' NA)."""
    if value is None or _name(_type(value)) == "NAType":
        return None
    _v = _num(value, what)
    return None if _v != _v else _v


_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
            "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]
_TEXTS = ("variant", "model_id", "device", "dtype_or_backend")
_WHAT = {"variant": "keep the rows in the order given (the first one is the baseline)",
         "speedup_vs_baseline_x": "speedup_vs_baseline_x = tokens_per_sec / the first row's (the baseline's) "
                                  "tokens_per_sec",
         "perplexity": "perplexity is the row's ppx, empty (NaN) where the row has none",
         "perplexity_change_pct": "perplexity_change_pct = 100 x (ppx / the first row's ppx - 1), empty (NaN) where "
                                  "either ppx is missing",
         "size_mb": "size_mb is the row's size_mb, empty (NaN) where the row has none"}


def _check_table(rows, want):
    _table = build_results_table(rows)
    _names = [_text(_c, "a column name") for _c in _table.columns]
    assert _names == _COLUMNS, \
        f"the columns must be exactly {_COLUMNS}, in this order (extra keys of the rows left out), got {_names}"
    _checked = 0
    for _key in _COLUMNS:
        _values = _table[_key].tolist()
        assert _type(_values) is _list and _list.__len__(_values) == _list.__len__(want[_key]), \
            f"one row per variant, {_list.__len__(want[_key])} here"
        _hint = _WHAT.get(_key, f"carry each row's {_key} unchanged")
        _i = 0
        while _i < _list.__len__(_values):
            _e = want[_key][_i]
            if _key in _TEXTS:
                _g = _text(_values[_i], _key)
                assert _g == _e, f"{_hint}: row {_i} should hold {_e!r} in {_key}, got {_g!r}"
            elif _e is None:
                _g = _cell(_values[_i], _key)
                assert _g is None, f"{_hint}: row {_i} should leave {_key} empty (NaN), got {_g}"
            else:
                _g = _cell(_values[_i], _key)
                _tol = 1e-9 * (_e if _e > 0 else -_e) + 1e-12
                assert _g is not None and -_tol <= _g - _e <= _tol, \
                    f"{_hint}: row {_i} should hold {_e} in {_key}, got {_g}"
            _i += 1
        _checked += 1
    assert _checked == 11


# The baseline is neither the slowest nor the fastest row; the rows are in no sorted order; a variant
# without ppx or size; extra keys that are not columns of the table.
_check_table(
    [{"variant": "pytorch float32", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "float32",
      "tokens_per_sec": 50.0, "total_latency_s": 0.64, "avg_latency_per_token_ms": 20.0, "ppx": 40.0,
      "size_mb": 512.0, "repeats": 5, "notes": "baseline"},
     {"variant": "onnxruntime float32", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "onnxruntime float32",
      "tokens_per_sec": 40.0, "total_latency_s": 0.8, "avg_latency_per_token_ms": 25.0, "ppx": 40.4,
      "size_mb": 520.0, "repeats": 5, "notes": "export"},
     {"variant": "int8 dynamic", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "onnxruntime int8 dynamic",
      "tokens_per_sec": 125.0, "total_latency_s": 0.256, "avg_latency_per_token_ms": 8.0, "ppx": 42.0,
      "size_mb": 140.0, "repeats": 5, "notes": "quantized"},
     {"variant": "bfloat16 on gpu", "model_id": "tiny-bf16", "device": "cuda:0", "dtype_or_backend": "bfloat16",
      "tokens_per_sec": 100.0, "total_latency_s": 0.32, "avg_latency_per_token_ms": 10.0, "repeats": 5,
      "notes": "no ppx"}],
    {"variant": ["pytorch float32", "onnxruntime float32", "int8 dynamic", "bfloat16 on gpu"],
     "model_id": ["tiny", "tiny", "tiny", "tiny-bf16"], "device": ["cpu", "cpu", "cpu", "cuda:0"],
     "dtype_or_backend": ["float32", "onnxruntime float32", "onnxruntime int8 dynamic", "bfloat16"],
     "tokens_per_sec": [50.0, 40.0, 125.0, 100.0], "speedup_vs_baseline_x": [1.0, 0.8, 2.5, 2.0],
     "total_latency_s": [0.64, 0.8, 0.256, 0.32], "avg_latency_per_token_ms": [20.0, 25.0, 8.0, 10.0],
     "perplexity": [40.0, 40.4, 42.0, None], "perplexity_change_pct": [0.0, 1.0, 5.0, None],
     "size_mb": [512.0, 520.0, 140.0, None]})
# A baseline without ppx: no row has a perplexity change.
_check_table(
    [{"variant": "base", "model_id": "m", "device": "cpu", "dtype_or_backend": "float32", "tokens_per_sec": 10.0,
      "total_latency_s": 2.0, "avg_latency_per_token_ms": 100.0, "size_mb": _float("nan")},
     {"variant": "int8", "model_id": "m", "device": "cpu", "dtype_or_backend": "onnxruntime int8",
      "tokens_per_sec": 30.0, "total_latency_s": 0.5, "avg_latency_per_token_ms": 25.0, "ppx": 12.5, "size_mb": 64.0}],
    {"variant": ["base", "int8"], "model_id": ["m", "m"], "device": ["cpu", "cpu"],
     "dtype_or_backend": ["float32", "onnxruntime int8"], "tokens_per_sec": [10.0, 30.0],
     "speedup_vs_baseline_x": [1.0, 3.0], "total_latency_s": [2.0, 0.5], "avg_latency_per_token_ms": [100.0, 25.0],
     "perplexity": [None, 12.5], "perplexity_change_pct": [None, None], "size_mb": [None, 64.0]})
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part B6: edge prompts (3 points)
#
# Averages hide the awkward cases: a one-word prompt (almost no prefill), a very long one (prefill
# dominates and the cache grows large), a multi-line list, and a repetitive text (which greedy
# decoding tends to keep repeating). Write `probe_edge_prompts(model, tokenizer, max_new_tokens,
# repeats, prompts=EDGE_PROMPTS)`: for each named prompt, in order, time `repeats` runs of
# `time_generate` with the same `max_new_tokens` and report the median of each metric; a DataFrame
# with one row per prompt and the columns `prompt_name`, `prompt_tokens` (the number of tokens the
# tokenizer gives the prompt), `tokens_generated`, `total_latency_s`, `tokens_per_sec`,
# `avg_latency_per_token_ms`, and a `continuation` column with the first 60 characters of the
# greedy continuation (the new tokens only, decoded).

# %% [solution id=probe_edge_prompts]
def probe_edge_prompts(model, tokenizer, max_new_tokens, repeats, prompts=EDGE_PROMPTS):
    """Median generate timings and a continuation preview per edge prompt. Returns a DataFrame."""
    ### BEGIN SOLUTION
    rows = []
    for name, text in prompts.items():
        encoded = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():  # the preview, which also warms this prompt up for the timed runs
            out = model.generate(**{k: v.to(_model_device(model)) for k, v in encoded.items()},
                                 max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        runs = [time_generate(model, tokenizer, text, max_new_tokens, warmup=False) for _ in range(int(repeats))]
        row = {"prompt_name": name, "prompt_tokens": int(encoded["input_ids"].shape[1]),
               "tokens_generated": runs[0]["tokens_generated"], "max_new_tokens": int(max_new_tokens)}
        row.update(helpers.medians_with_iqr(runs))
        row["continuation"] = tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)[:60]
        rows.append(row)
    return pd.DataFrame(rows)
    ### END SOLUTION

# %% [code]
edge = probe_edge_prompts(model, tokenizer, PROFILE.max_new_tokens, TRY_REPEATS)
edge

# %% [tests id=test_edge_prompts points=1]
"""Check one row per edge prompt, identical max_new_tokens, measured prompt lengths, medians and continuations."""
_frame = probe_edge_prompts(model, tokenizer, 3, 1)
assert list(_frame["prompt_name"]) == list(EDGE_PROMPTS), "one row per edge prompt, in order"
assert set(_frame["tokens_generated"]) == {3}, "every edge prompt must generate the same max_new_tokens"
assert _frame.set_index("prompt_name")["prompt_tokens"]["very_long"] > 5 * \
    _frame.set_index("prompt_name")["prompt_tokens"]["multi_line"], "prompt_tokens must be measured in tokens"
# Medians and the continuation: the tiny model, and time_generate replaced by a stand-in whose third
# run of each prompt is 4x slower (median 1 s, mean 2 s).
_saved_time_generate = time_generate
_runs = {}


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _runs[prompt] = _runs.get(prompt, 0) + 1
    latency = 4.0 if _runs[prompt] == 3 else 1.0
    return {"total_latency_s": latency, "tokens_generated": int(max_new_tokens),
            "tokens_per_sec": int(max_new_tokens) / latency, "avg_latency_per_token_ms": 1000 * latency / int(max_new_tokens)}


_tiny_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
_tiny = AutoModelForCausalLM.from_pretrained(str(helpers.TINY_DIR), dtype=torch.float32).eval()
_edge = {"short": "Bread.", "list": "Shopping list:\n- flour\n- eggs"}
try:
    _frame = probe_edge_prompts(_tiny, _tiny_tok, 20, 3, prompts=_edge)
finally:
    time_generate = _saved_time_generate
assert list(_frame["total_latency_s"]) == [1.0, 1.0] and list(_frame["tokens_per_sec"]) == [20.0, 20.0], \
    "report the median of each prompt's runs (not the mean)"
assert "continuation" in _frame.columns, "add a continuation column"
for _name, _text in _edge.items():
    _ids = _tiny_tok(_text, return_tensors="pt")
    with torch.inference_mode():
        _out = _tiny.generate(**_ids, max_new_tokens=20, min_new_tokens=20, do_sample=False,
                              pad_token_id=_tiny_tok.pad_token_id)
    _expected = _tiny_tok.decode(_out[0, _ids["input_ids"].shape[1]:], skip_special_tokens=True)
    _got = str(_frame.set_index("prompt_name")["continuation"][_name])
    assert len(_got) <= 60 and _got.strip() in (_expected[:60].strip(), _expected.strip()[:60].strip()), \
        f"continuation of {_name!r}: the first 60 characters of the greedy continuation (new tokens only), got {_got!r}"

# %% [tests id=test_edge_prompts_hidden points=2]
"""Check probe_edge_prompts on other prompts: rows in order, prompt_tokens in tokens, repeats, one max_new_tokens, medians, continuations."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, results read as real numbers, the
# token counts and continuations expected computed here with the tiny model and its tokenizer, and
# time_generate replaced by a stand-in whose latency depends only on the prompt and on how many runs of
# that prompt came before (the third is 5x slower: median 1x, mean 2x the prompt's base latency).
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _tuple = (0.0).__class__, (0).__class__, "".__class__, [].__class__, ().__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


def _column(frame, key):
    assert key in frame.columns, f"the DataFrame must have a {key!r} column"
    _values = frame[key].tolist()
    assert _type(_values) is _list and _list.__len__(_values) == 3, f"one row per prompt: 3 values in {key!r}"
    return _values


def _numbers(frame, key):
    return [_num(_v, key) for _v in _column(frame, key)]


def _near(values, expected):
    _i = 0
    while _i < 3:
        if not -1e-9 <= values[_i] - expected[_i] <= 1e-9:
            return False
        _i += 1
    return True


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_tiny = _AutoModel.from_pretrained(_str(_helpers.TINY_DIR), dtype=_torch.float32).eval()
_names = ["one_word", "memo", "code"]
_texts = ["Rain.", "Dear team,\nthe meeting moves to Friday.\nThanks.", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"]
_base_s = [1.0, 2.0, 0.5]
_prompts = {_names[0]: _texts[0], _names[1]: _texts[1], _names[2]: _texts[2]}
_calls = []


def _which(prompt):
    if _type(prompt) in (_list, _tuple) and prompt.__len__() == 1:
        prompt = prompt[0]
    _i = 0
    while _i < 3:
        if _type(prompt) is _str and prompt == _texts[_i]:
            return _i
        _i += 1
    return -1


_saved_time_generate = time_generate


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _i = _which(prompt)
    _n = _list.__len__([_c for _c in _calls if _c[0] == _i])
    _list.append(_calls, (_i, _num(max_new_tokens, "max_new_tokens")))
    _latency = (_base_s[_i] if _i >= 0 else 1.0) * (5.0 if _n == 2 else 1.0)
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


try:
    _frame = probe_edge_prompts(_tiny, _tok, 16, 4, prompts=_prompts)
finally:
    time_generate = _saved_time_generate
_got_names = _column(_frame, "prompt_name")
assert [_str(_v) for _v in _got_names] == _names, \
    f"one row per prompt of the prompts argument, named by its key, in order: expected {_names}, got {_got_names}"
_want_tokens = []
for _text in _texts:
    _ids = _tok(_text).input_ids
    assert _type(_ids) is _list
    _list.append(_want_tokens, _list.__len__(_ids))
_got_tokens = _numbers(_frame, "prompt_tokens")
assert _got_tokens == _want_tokens, \
    f"prompt_tokens must be the number of tokens the tokenizer gives each prompt ({_want_tokens}), got {_got_tokens}"
assert -1 not in [_c[0] for _c in _calls], "time_generate must be called with each prompt's own text"
_per_prompt = [_list.__len__([_c for _c in _calls if _c[0] == _i]) for _i in (0, 1, 2)]
assert _per_prompt[0] >= 4 and _per_prompt[1] >= 4 and _per_prompt[2] >= 4, \
    f"time each prompt `repeats` times (4 here): time_generate ran {_per_prompt} times per prompt"
assert [_c[1] for _c in _calls] == [16] * _list.__len__(_calls) and _numbers(_frame, "tokens_generated") == [16, 16, 16], \
    "every prompt must be timed with the same max_new_tokens (16 here), and tokens_generated report it"
assert _near(_numbers(_frame, "total_latency_s"), [1.0, 2.0, 0.5]) and \
    _near(_numbers(_frame, "tokens_per_sec"), [16.0, 8.0, 32.0]) and \
    _near(_numbers(_frame, "avg_latency_per_token_ms"), [62.5, 125.0, 31.25]), \
    "report, for each prompt, the median over its runs of total_latency_s, tokens_per_sec and avg_latency_per_token_ms"
_got_text = _column(_frame, "continuation")
_checked = 0
for _i in (0, 1, 2):
    _ids = _tok(_texts[_i], return_tensors="pt")
    with _torch.inference_mode():
        _out = _tiny.generate(**_ids, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                              pad_token_id=_tok.pad_token_id)
    _expected = _tok.decode(_out[0, _ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert _type(_expected) is _str and (_i > 0 or _str.__len__(_expected) > 60)  # the first is cut at 60
    _got = _got_text[_i]
    assert _type(_got) is _str and _str.__len__(_got) <= 60 and \
        _got.strip() in (_expected[:60].strip(), _expected.strip()[:60].strip()), \
        f"continuation of {_names[_i]!r}: the first 60 characters of the greedy continuation (the new tokens only, " \
        f"decoded), got {_got!r}"
    _checked += 1
assert _checked == 3
del _tiny
### END HIDDEN TESTS

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


def _column(frame, key):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [_num(_v, key) for _v in _values]


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

# %% [markdown]
# ---
# ## Part B8: the whole study in one run, and its recommendation (2 points)
#
# `run_quantization_exercise` puts it together, in order, on the same prompt and the same texts:
#
# 1. the float32 PyTorch **baseline**: decode tokens/s at batch 1 (median of repeats) and perplexity;
# 2. the ONNX export, made **once**; every ONNX variant derives from it (`PROFILE.quantization_variants`):
#    ONNX Runtime float32 (to separate the runtime's gain from quantization's), **dynamic INT8** on
#    every MatMul, **weight-only INT8** (ONNX Runtime's block-wise `MatMulNBits`: weights in 8 bits
#    with one scale per block of 32, the output layer included; `accuracy_level=4` lets the kernel
#    round each block of activations to int8 on the fly for integer dot products, far finer than
#    one scale per tensor), a **sensitivity sweep** that quantizes one projection type at a time
#    and measures its perplexity on half of the texts (which layer types cost quality?), and last
#    **static INT8** with calibration of the linear projections, leaving in float32 every type the
#    sweep found to cost more than 3% on its own. In the full profile a last row adds **weight-only
#    4-bit** (`MatMulNBits` with `bits=4`, block 32, the output layer left in float32).
#
#    The sweep does not build seven ONNX models (about 15 s each here). It *simulates* dynamic INT8
#    inside the PyTorch model: `hq.simulated_dynamic_int8(model, groups)` makes the chosen
#    `nn.Linear` layers round their weights per output channel to int8 and each input tensor to
#    uint8, as dynamic INT8 does, then multiply in float32: the quality of INT8 without its
#    speed, a few seconds per layer type. Read `hq.fake_quantize_activation_uint8`: four lines.
#    Every variant stays loaded until all are built; then they are timed taking turns
#    (`time_round_robin`, one warm-up each), so that a busy minute on the machine slows them all
#    alike, and then each one's perplexity is measured.
# 3. one table (`build_results_table`), saved as `artifacts/results.csv`, plus a chart; with the
#    memory-bandwidth bound of each variant (Part B7: `bound_ms_per_token`, `pct_of_bound`, the
#    chart `memory_bound`, and the same for the batch sizes of Part B3 when you ran it);
# 4. the **recommendation**: the fastest variant whose perplexity is within 3% of float32 (your
#    `recommend_variant`, below);
# 5. 3 to 5 takeaways computed from the measured numbers, and the time each section took. Where
#    two measurements differ by less than the spread of their runs, the takeaway says "no
#    difference measurable here" rather than reading a direction into noise. The fast (graded)
#    profile's tiny model and short outputs often show no difference at all; the full profile
#    shows each effect the parts above describe (the solution walkthrough, published when the
#    exercise closes, records one run of it).
#
# In the fast (graded) profile only the dynamic variant is built. The controller is written for
# you: read it, run it, and read its numbers. Its decision is yours:
#
# Write `recommend_variant(table, tolerance=PERPLEXITY_TOLERANCE)`. `table` is a results table
# from `build_results_table` (the baseline in the first row). Return the `variant` name (a str)
# of the row with the most `tokens_per_sec` among those whose `perplexity_change_pct` is at most
# `100 * tolerance` (`tolerance` is a fraction: 0.03 means 3%). A variant that *lowers*
# perplexity qualifies too: the limit is on what quality costs. A row whose perplexity is missing
# (NaN) was never checked for quality, so it cannot be recommended, however fast. The baseline
# (0%) always qualifies, so there is always an answer; leave `table` unchanged.
#
# **The baseline is already 4-bit (Part A2).** The embedded model's projection weights lie on
# the Q4_1 grid of their block: 16 evenly spaced values per block of 32. Quantizing them again
# is not like quantizing a model trained in float:
#
# - weight-only **8-bit**, block 32, has 256 levels where the weights use 16, so it moves each
#   weight by a small fraction of the Q4_1 step and perplexity barely changes (a fraction of a
#   percent). The file was already 4-bit; this row measures how little a second, finer rounding
#   costs, not how well 8 bits preserve a float model.
# - weight-only **4-bit**, block 32, picks the same step as Q4_1 (the block's range / 15), but
#   ONNX Runtime's quantizer stores the block's offset as an integer zero point, so its grid is
#   the Q4_1 grid shifted by a fraction of a step. It does not reproduce the 4-bit weights: it
#   rounds them a second time, as coarsely as rounding arbitrary values, and perplexity rises by
#   about a quarter. Four bits that the file had for free are paid for twice.
#
# If your model came from the hub id (bfloat16 weights), neither effect applies: each variant
# rounds the original weights once, as it would any float model.
#
# **How far is this from the best engine?** `benchmarks/quantization_study.py` (not part of the
# exercise) runs the same weights in llama.cpp and the recommended 8-bit scheme in ONNX Runtime
# GenAI, which builds a graph made for decoding (fused attention and projections) and runs the
# decode loop in C++. On the course's machine GenAI decodes about twice as fast as this notebook's
# 8-bit model, with the same `MatMulNBits` kernels and the same perplexity, close to llama.cpp:
# past the quantization, what is left is the exported graph (thousands of small operations per
# token) and the Python loop around it. The solution walkthrough, published when the exercise
# closes, gives the figures.

# %% [readonly id=perplexity_tolerance]
PERPLEXITY_TOLERANCE = 0.03  # a variant may cost at most 3% perplexity to be recommended


def runs_differ(a, b, column="tokens_per_sec", default_repeats=TRY_REPEATS):
    """Whether two rows' medians differ by more than their spreads: the ranges median +- IQR/2
    do not overlap. Otherwise the runs cannot tell them apart, whatever the medians say. One run
    per setting, or a table without the spread (<column>_iqr), cannot show a difference."""
    runs = min(int(row.get("repeats", default_repeats)) for row in (a, b))
    spreads = [float(row.get(f"{column}_iqr", float("nan"))) for row in (a, b)]
    if runs < 2 or any(spread != spread for spread in spreads):    # NaN: no spread recorded
        return False
    half_a, half_b = (spread / 2 for spread in spreads)
    return a[column] - half_a > b[column] + half_b or b[column] - half_b > a[column] + half_a

# %% [solution id=recommend_variant]
def recommend_variant(table, tolerance=PERPLEXITY_TOLERANCE):
    """The variant name with the most tokens/s among the rows whose perplexity_change_pct is at most
    100 * tolerance; rows with a missing perplexity never qualify. Leaves table unchanged."""
    ### BEGIN SOLUTION
    within = table["perplexity_change_pct"] <= 100 * float(tolerance)  # NaN compares False: never within
    if not within.any():
        raise ValueError("no row is within the tolerance: the baseline (first row, 0%) must have a perplexity")
    fastest = table.loc[within, "tokens_per_sec"].idxmax()
    return str(table.loc[fastest, "variant"])
    ### END SOLUTION

# %% [markdown]
# Try it: on this made-up table the 20 tok/s variant wins: the 30 tok/s one costs 20% perplexity.

# %% [code]
_made_up = pd.DataFrame({"variant": ["baseline", "fast but worse", "a little faster"],
                         "tokens_per_sec": [10.0, 30.0, 20.0], "perplexity": [20.0, 24.0, 20.2],
                         "perplexity_change_pct": [0.0, 20.0, 1.0]})
recommend_variant(_made_up)

# %% [tests id=test_recommend_variant points=1]
"""Check that recommend_variant picks the fastest variant within the tolerance."""
_table = pd.DataFrame({"variant": ["pytorch float32", "int8 a", "int8 b"], "tokens_per_sec": [10.0, 30.0, 20.0],
                       "perplexity": [20.0, 24.0, 20.2], "perplexity_change_pct": [0.0, 20.0, 1.0]})
_got = recommend_variant(_table)
assert isinstance(_got, str), f"return the variant's name (a str), got {type(_got).__name__}"
assert _got == "int8 b", f"'int8 a' is faster but costs 20% perplexity; expected 'int8 b', got {_got!r}"

# %% [tests id=test_recommend_variant_hidden points=1]
"""Check the tolerance argument, improvements, missing perplexities, the fallback and an unchanged table."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): tables built here from literals, the answer compared
# as a real str.
_str = "".__class__
_type = (0).__class__.__class__


def _pick(rates, changes, **kwargs):
    _names = [f"v{_i}" for _i in range(len(rates))]
    _t = pd.DataFrame({"variant": _names, "model_id": "m", "tokens_per_sec": rates, "perplexity_change_pct": changes,
                       "perplexity": [10.0 * (1.0 + _c / 100.0) for _c in changes]})  # NaN stays NaN
    _before = _t.copy(deep=True)
    _got = recommend_variant(_t, **kwargs)
    assert _type(_got) is _str, f"return the variant's name as a str, got {_type(_got).__name__}"
    assert _t.equals(_before), "recommend_variant must leave the table unchanged"
    return _got


assert _pick([10.0, 40.0, 25.0], [0.0, 2.9, 3.1]) == "v1", "2.9% is within 3%: the 40 tok/s variant qualifies"
assert _pick([10.0, 25.0, 40.0], [0.0, 2.9, 3.1]) == "v1", "3.1% is over 3%: the fastest variant must be passed over"
assert _pick([10.0, 25.0, 40.0], [0.0, 2.9, 8.0], tolerance=0.10) == "v2", \
    "with tolerance=0.10 a variant costing 8% qualifies: use the tolerance argument, not a fixed 3%"
assert _pick([10.0, 25.0, 40.0], [0.0, 2.9, 1.0], tolerance=0.02) == "v2", "tolerance=0.02: 1% qualifies, 2.9% not"
assert _pick([10.0, 25.0, 40.0], [0.0, 1.0, -6.0]) == "v2", \
    "a variant that lowers perplexity by 6% costs no quality: it qualifies"
assert _pick([10.0, 25.0, 40.0], [0.0, 1.0, float("nan")]) == "v1", \
    "a row whose perplexity is missing (NaN) was never checked for quality: it cannot be recommended"
assert _pick([10.0, 25.0, 40.0], [0.0, 5.0, 9.0]) == "v0", "when no variant qualifies, the baseline is the answer"
### END HIDDEN TESTS

# %% [readonly id=run_quantization_exercise]

def run_quantization_exercise(model, tokenizer, model_id, device=DEVICE, profile=PROFILE, work_dir=WORK_DIR):
    """Baseline vs INT8 variants on one prompt and one set of texts; table, plots, recommendation.

    Returns a dict: table (DataFrame), recommended (variant name), takeaways (list of str),
    sensitivity (DataFrame or None), timings_s (seconds per section), bandwidth (the measured memory
    bandwidth, helpers.measure_memory_bandwidth), memory_bound_batching (DataFrame or None).
    """
    timings, started = {}, time.perf_counter()

    def lap(name):
        nonlocal started
        now = time.perf_counter()
        timings[name] = round(now - started, 1)
        started = now

    texts = eval_texts(profile.n_eval_texts)
    gen = dict(prompt=REFERENCE_PROMPT, max_new_tokens=profile.max_new_tokens)
    # Part B7: the bytes one decode step of each variant reads, at the mean KV-cache length of the run.
    context = len(tokenizer(gen["prompt"]).input_ids) + gen["max_new_tokens"] // 2
    step_bytes = {}

    def bytes_of(variant, source, **kwargs):
        try:
            return decode_bytes_per_token(source, **kwargs)
        except Exception as error:  # Part B7 not written yet: no bound for this row, the study goes on
            print(f"  (no memory bound for {variant}: {type(error).__name__} {error})")
            return None

    arms = []  # (variant, model, backend, device, size in MB): every variant is loaded, then they take turns

    def add(variant, mdl, backend, dev, size_mb=float("nan")):
        arms.append((variant, mdl, backend, dev, size_mb))

    def timed_run(mdl, warmup):
        # PyTorch and every ONNX Runtime session have thread pools of their own, whose threads keep
        # spinning for a moment after their work: a short idle pause lets the previous variant's threads
        # go quiet before this one's clock starts (without it, quantized variants ran up to a sixth slower
        # here: 12% in a recorded run of this study, 17% for llama.cpp in benchmarks/quantization_study.py).
        time.sleep(0.2)
        return time_generate(mdl, tokenizer, gen["prompt"], gen["max_new_tokens"], warmup=warmup)

    def measure_all():
        """Time every variant, taking turns (time_round_robin), then its perplexity and bytes per step."""
        runs_per_arm = time_round_robin([lambda warmup, mdl=arm[1]: timed_run(mdl, warmup) for arm in arms],
                                        profile.repeats)
        rows = []
        for (variant, mdl, backend, dev, size_mb), runs in zip(arms, runs_per_arm):
            row = {"variant": variant, "model_id": helpers.model_label(model_id), "device": str(dev),
                   "dtype_or_backend": backend, "size_mb": size_mb}
            for key in ("tokens_per_sec", "total_latency_s", "avg_latency_per_token_ms"):
                row[key] = helpers.summarize([r[key] for r in runs])["median"]
            row["ppx"] = compare_perplexity({variant: mdl}, tokenizer, texts, profile.eval_batch_size)[variant]["ppx"]
            print(f"  {variant:<32} {row['tokens_per_sec']:7.1f} tok/s   perplexity {row['ppx']:10.2f}")
            rows.append(row)
            if str(dev).startswith("cuda"):  # the bandwidth below is the CPU's
                print(f"  (no memory bound for {variant}: it ran on the GPU, the bandwidth measured is the CPU's)")
                continue
            source = mdl if isinstance(mdl, torch.nn.Module) else Path(mdl.path)  # an ONNX Runtime model: its file
            found = bytes_of(variant, source, context_tokens=context)
            if found is not None:
                step_bytes[variant] = found
        arms.clear()  # the ONNX Runtime sessions are freed with the list
        return rows

    print(f"== baseline and variants: {gen['max_new_tokens']} new tokens, greedy, batch 1, "
          f"median of {profile.repeats}, the variants taking turns; perplexity on {len(texts)} texts ==")
    model_dir = helpers.local_model_dir(model_id)  # the weights `model` came from (a hub id: its cached copy)
    baseline_size = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    add("pytorch float32", model, DTYPE_LABEL, device, baseline_size)

    work_dir = Path(work_dir)
    onnx_dir = hq.export_onnx(str(model_dir), work_dir / "onnx_float32", num_threads=NUM_THREADS)
    add("onnxruntime float32", hq.load_ort(onnx_dir, num_threads=NUM_THREADS), "onnxruntime float32", "cpu",
        hq.dir_size_mb(onnx_dir / hq.ONNX_FILE))
    lap("onnx export")

    variants = profile.quantization_variants
    if "dynamic" in variants:
        mdl, info = run_static_ptq_optimum(model_dir, work_dir, "dynamic")
        add("int8 dynamic, all MatMuls", mdl, "onnxruntime int8 dynamic", "cpu", hq.dir_size_mb(Path(mdl.path)))
        lap("dynamic int8")
    if "weight_only" in variants:
        # accuracy_level=4 (int8 compute): on CPUs with VNNI/AMX the default float compute of the
        # 8-bit kernel can be slower than float32; the output layer is a fifth of the weights.
        wo_dir = hq.weight_only_int8(onnx_dir, work_dir / "weight_only_int8_acc4_head", bits=8, block_size=32,
                                     accuracy_level=4, quantize_lm_head=True)
        add("int8 weight-only (MatMulNBits)", hq.load_ort(wo_dir, num_threads=NUM_THREADS),
            "onnxruntime int8 weight-only", "cpu", hq.dir_size_mb(wo_dir / hq.ONNX_FILE))
        lap("weight-only int8")
    sensitivity, static_groups = None, list(hq.PROJECTION_GROUPS)
    if "sensitivity" in variants:
        # Dynamic INT8 of one layer type at a time, simulated in the PyTorch model: the same rounding
        # as dynamic INT8 (hq.simulated_dynamic_int8), without building seven ONNX models.
        subset = texts[:8]
        reference = compare_perplexity({"f": model}, tokenizer, subset, profile.eval_batch_size)["f"]["ppx"]
        sens = []
        for group in tqdm(hq.PROJECTION_GROUPS, desc="sensitivity (simulated dynamic int8, one group)"):
            with hq.simulated_dynamic_int8(model, [group]):
                ppx = compare_perplexity({group: model}, tokenizer, subset, profile.eval_batch_size)[group]["ppx"]
            sens.append({"quantized_group": group, "perplexity": ppx,
                         "perplexity_change_pct": 100.0 * (ppx / reference - 1.0)})
        sensitivity = pd.DataFrame(sens)
        helpers.save_table(sensitivity, "quantization_sensitivity")
        figure = helpers.plot_bars(list(sensitivity["quantized_group"]), list(sensitivity["perplexity_change_pct"]),
                                   y_key="perplexity change (%) vs float32",
                                   title=f"dynamic INT8 of one layer type (simulated), {len(subset)} texts")
        helpers.save_figure(figure, "quantization_sensitivity")
        plt.show()
        print(sensitivity.to_string(index=False))
        # The static variant leaves in float32 every layer type that alone costs more than the limit.
        static_groups = [r.quantized_group for r in sensitivity.itertuples()
                         if r.perplexity_change_pct <= 100 * PERPLEXITY_TOLERANCE]
        lap("sensitivity sweep")
    if "static" in variants and static_groups:
        calibration = list(hq.CALIBRATION_TEXTS[:4])  # kept apart from the perplexity texts
        mdl, info = run_static_ptq_optimum(model_dir, work_dir, "static", calibration_texts=calibration,
                                           groups=static_groups)
        kept = [g for g in hq.PROJECTION_GROUPS if g not in static_groups]
        name = "int8 static, projections" + (f" except {', '.join(kept)}" if kept else "")
        add(name, mdl, "onnxruntime int8 static (minmax)", "cpu", hq.dir_size_mb(Path(mdl.path)))
        lap("static int8")
    if "weight_only_4bit" in variants:
        # 4 bits, block 32, asymmetric, output layer in float32, the kernel's default float compute
        # (accuracy_level=4 was slower for 4 bits here: benchmarks/quantization_study.py).
        w4_dir = hq.weight_only_int8(onnx_dir, work_dir / "weight_only_int4", bits=4, block_size=32)
        add("int4 weight-only (MatMulNBits)", hq.load_ort(w4_dir, num_threads=NUM_THREADS),
            "onnxruntime int4 weight-only", "cpu", hq.dir_size_mb(w4_dir / hq.ONNX_FILE))
        lap("weight-only int4")
    print(f"\ntiming {len(arms)} variants, taking turns ({profile.repeats} rounds), then their perplexity:")
    rows = measure_all()
    lap("timing and perplexity")

    table = build_results_table(rows)
    # Part B7: how close each variant comes to bytes read per step / memory bandwidth.
    bandwidth = helpers.measure_memory_bandwidth(size_mb=256 if profile.is_fast else None,
                                                 repeats=3 if profile.is_fast else 7)
    print(f"\n== memory-bandwidth bound: {bandwidth['gbps']:.1f} GB/s (IQR {bandwidth['iqr_gbps']:.1f}); "
          f"KV cache at {context} tokens of context ==\n   {bandwidth['method']}")
    try:
        table = add_memory_bound(table, bandwidth["gbps"], step_bytes)
        shown = ["variant", "avg_latency_per_token_ms", "bound_ms_per_token", "pct_of_bound"]
        print(table[shown].to_string(index=False))
    except Exception as error:  # Part B7 not written yet
        print(f"  (no bound columns: add_memory_bound raised {type(error).__name__} {error})")
    memory_batching = None
    on_cpu = next(model.parameters()).device.type == "cpu"
    if on_cpu and "batching" in globals() and "ABLATION_PROMPTS" in globals() and len(batching) > 0:
        # Part B3's batches (its prompts, padded to the longest): the weights once per step for the whole
        # batch, the KV cache once per sequence; measured time per step = batch latency / new tokens.
        frame = batching[["batch_size", "max_new_tokens", "total_latency_s", "tokens_per_sec"]].copy()
        frame["ms_per_step"] = 1000.0 * frame["total_latency_s"] / frame["max_new_tokens"]
        batch_bytes = {}
        for size, new_tokens in zip(frame["batch_size"], frame["max_new_tokens"]):
            prompts = [ABLATION_PROMPTS[i % len(ABLATION_PROMPTS)] for i in range(int(size))]
            padded = max(len(tokenizer(p).input_ids) for p in prompts)
            found = bytes_of(f"batch {size}", model, context_tokens=padded + int(new_tokens) // 2,
                             batch_size=int(size))
            if found is not None:
                batch_bytes[size] = found
        try:
            memory_batching = add_memory_bound(frame, bandwidth["gbps"], batch_bytes, key="batch_size",
                                               ms_column="ms_per_step").rename(
                columns={"bound_ms_per_token": "bound_ms_per_step"})
            helpers.save_table(memory_batching, "memory_bound_batching")
            shown = ["batch_size", "ms_per_step", "bound_ms_per_step", "pct_of_bound"]
            print(memory_batching[shown].to_string(index=False))
        except Exception as error:
            print(f"  (no bound for the batches: add_memory_bound raised {type(error).__name__} {error})")
            memory_batching = None
    if "bound_ms_per_token" in table.columns and table["bound_ms_per_token"].notna().any():
        panels = 2 if memory_batching is not None else 1
        figure, axes = plt.subplots(1, panels, figsize=(5.6 * panels, 4.2), squeeze=False)
        ax = axes[0][0]
        ax.scatter(table["bound_ms_per_token"], table["avg_latency_per_token_ms"], zorder=3)
        for r in table.itertuples():
            ax.annotate(r.variant, (r.bound_ms_per_token, r.avg_latency_per_token_ms), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        top = 1.15 * max(table["avg_latency_per_token_ms"].max(), table["bound_ms_per_token"].max())
        ax.plot([0, top], [0, top], color="red", linestyle="--", label="the bound: measured = bytes / bandwidth")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("bound: bytes per step / bandwidth (ms per token)")
        ax.set_ylabel("measured (ms per token)")
        ax.set_title(f"batch 1, {bandwidth['gbps']:.1f} GB/s")
        ax.legend(fontsize=8)
        if memory_batching is not None:
            ax = axes[0][1]
            ax.plot(memory_batching["batch_size"], memory_batching["ms_per_step"], "o-", label="measured")
            ax.plot(memory_batching["batch_size"], memory_batching["bound_ms_per_step"], color="red", linestyle="--",
                    label="bound (weights once per step, KV per sequence)")
            ax.set_xlabel("batch size")
            ax.set_ylabel("ms per decode step (one token per sequence)")
            ax.set_ylim(0, None)
            ax.set_title("pytorch float32, batches of Part B3")
            ax.legend(fontsize=8)
        figure.suptitle(f"{Path(str(model_id)).name}: measured time per step against the memory-bandwidth bound")
        figure.tight_layout()
        helpers.save_figure(figure, "memory_bound")
        plt.show()
    lap("memory bound")
    helpers.save_table(table, "results")
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].barh(table["variant"], table["tokens_per_sec"])
    axes[0].set_xlabel(helpers.axis_label("tokens_per_sec"))
    axes[1].barh(table["variant"], table["perplexity_change_pct"])
    axes[1].axvline(100 * PERPLEXITY_TOLERANCE, color="red", linestyle="--", label="3% limit")
    axes[1].set_xlabel("perplexity change vs float32 (%)")
    axes[1].legend()
    figure.suptitle(f"{Path(str(model_id)).name}: speed and quality per variant (batch 1)")
    figure.tight_layout()
    helpers.save_figure(figure, "quantization_results")
    plt.show()

    recommended = recommend_variant(table, PERPLEXITY_TOLERANCE)
    best = table[table["variant"] == recommended].iloc[0]
    acceptable = table[table["perplexity_change_pct"] <= 100 * PERPLEXITY_TOLERANCE]
    base = table.iloc[0]
    takeaways = [
        f"Recommended: {best['variant']} at {best['tokens_per_sec']:.1f} tok/s, {best['speedup_vs_baseline_x']:.2f}x "
        f"the float32 PyTorch baseline ({base['tokens_per_sec']:.1f} tok/s), perplexity "
        f"{best['perplexity_change_pct']:+.1f}% (limit +{100 * PERPLEXITY_TOLERANCE:.0f}%).",
    ]
    rejected = table[table["perplexity_change_pct"] > 100 * PERPLEXITY_TOLERANCE]
    slower = acceptable[acceptable["variant"] != best["variant"]]
    if len(rejected) or len(slower):
        reasons = [f"{r.variant} ({r.tokens_per_sec:.1f} tok/s, but perplexity {r.perplexity_change_pct:+.1f}%)"
                   for r in rejected.itertuples()] + \
                  [f"{r.variant} (within the limit, but only {r.tokens_per_sec:.1f} tok/s)" for r in slower.itertuples()]
        takeaways.append("The others lose: " + "; ".join(reasons) + ".")
    if sensitivity is not None:
        worst = sensitivity.loc[sensitivity["perplexity_change_pct"].idxmax()]
        takeaways.append(f"Most sensitive layer type: {worst['quantized_group']} (quantizing it alone costs "
                         f"{worst['perplexity_change_pct']:+.1f}% perplexity); activation rounding is what hurts.")
    if "batching" in globals() and len(batching) > 1:
        first, last = batching.iloc[0], batching.iloc[-1]
        if runs_differ(last, first):
            takeaways.append(f"Batching {int(last['batch_size'])} requests: {last['tokens_per_sec'] / first['tokens_per_sec']:.2f}x "
                             f"the total tokens/s of batch 1, but each request waits {last['per_sample_latency_s']:.2f} s "
                             f"instead of {first['per_sample_latency_s']:.2f} s.")
        else:
            takeaways.append(f"Batching {int(last['batch_size'])} requests: no difference in total tokens/s measurable here "
                             f"({last['tokens_per_sec']:.1f} vs {first['tokens_per_sec']:.1f}: too few runs, or too much spread between "
                             "them, to tell the two apart).")
    if "ablation" in globals() and len(ablation) >= 2:
        left = ablation[ablation["padding_side"] == "left"]
        on, off = left[left["use_cache"]].iloc[0], left[~left["use_cache"]].iloc[0]
        if runs_differ(on, off):
            takeaways.append(f"The KV cache gives {on['tokens_per_sec'] / off['tokens_per_sec']:.2f}x the tokens/s of "
                             f"recomputing every step ({on['tokens_per_sec']:.1f} vs {off['tokens_per_sec']:.1f} tok/s, "
                             "left padding).")
        else:
            takeaways.append(f"The KV cache: no difference measurable here ({on['tokens_per_sec']:.1f} vs "
                             f"{off['tokens_per_sec']:.1f} tok/s: too few runs, or too much spread between them, to tell the two "
                             "apart). The full profile's repeated, longer runs show the gain.")
    takeaways = takeaways[:5]
    lap("table and takeaways")
    print("\nTakeaways:")
    for line in takeaways:
        print(" -", line)
    print("\nSeconds per section:", timings, f"| total {sum(timings.values()):.0f} s")
    return {"table": table, "recommended": recommended, "takeaways": takeaways, "sensitivity": sensitivity,
            "timings_s": timings, "bandwidth": bandwidth, "memory_bound_batching": memory_batching}

# %% [markdown]
# Run it. In the full profile this takes a few minutes (the export and each quantized model are
# written to `WORK_DIR`, a cache folder from which a second run reuses the export). Expect the
# recommended variant to be clearly faster than the float32 baseline with a perplexity within 3%;
# read the takeaways to see why the others lose.

# %% [code]
study = run_quantization_exercise(model, tokenizer, MODEL_ID)
study["table"]

# %% [readonly id=check_quantization_exercise]
# Check that the study ran: table with the baseline first, CSV saved, 3 to 5 takeaways with numbers.
# (Not graded: the points of Part B8 are recommend_variant's; this says where a run went wrong.)
if "study" not in globals():
    print("The study did not run: fix the first error above, then run the cells from the top again.")
else:
    assert list(study["table"]["variant"])[0] == "pytorch float32", "the baseline comes first"
    assert len(study["table"]) >= 3, "baseline, ONNX float32 and at least the dynamic INT8 variant"
    assert (helpers.artifacts_dir() / "results.csv").is_file(), "save the table as artifacts/results.csv"
    assert 3 <= len(study["takeaways"]) <= 5, "print 3 to 5 takeaways"
    assert sum(any(ch.isdigit() for ch in t) for t in study["takeaways"]) >= 3, "takeaways must quote measured numbers"
    assert study["recommended"] in set(study["table"]["variant"]), "recommend one of the measured variants"
