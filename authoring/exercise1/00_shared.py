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

# %% [define name=trusted_types_with_torch]
_type = (0).__class__.__class__
_float, _int, _str, _list, _tuple, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, \
    ().__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_object = _mro(_int)[-1]
_C = _torch._C
_TB, _VF = _C.TensorBase, _C._VariableFunctions

# %% [define name=timed_generate_call_checks]
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

# %% [define name=dict_field_start]
def _field(result, key):
    """result[key] as a real number, read through dict itself."""
    _is_dict = False
    for _c in _mro(_type(result)):
        _is_dict = _is_dict or _c is _dict

# %% [define name=column_of_numbers]
def _column(frame, key):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [_num(_v, key) for _v in _values]

