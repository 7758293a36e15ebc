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

