# %% [define name=trusted_prelude]
# Trusted tools (the rules: course/grading_security.md). Types come from literals, tensor values
# from torch's immutable C types with overrides and modes switched off, so nothing the notebook
# rebinds (builtins, torch.*, torch.Tensor methods, math.*, F.*) can answer for this test.
import torch as _torch
_type, _float, _int, _list = (0).__class__.__class__, (0.0).__class__, (0).__class__, [].__class__
_T, _VF, _raw = _torch._C.TensorBase, _torch._C._VariableFunctions, _torch._C.DisableTorchFunction

def _vals(t):
    """A tensor's values as real Python numbers: a (nested) list, or a number for a 0-dim tensor."""
    with _raw():
        return _T.tolist(t)

def _near(got, want, rel, abs_tol=0.0):
    """Whether the real number got lies within rel * |want| + abs_tol of want."""
    tol = rel * (want if want >= 0 else -want) + abs_tol
    return -tol <= _float(got) - want <= tol

# %% [define name=delegate_to_inner]
def __getattr__(self, name):
    try:
        return super().__getattr__(name)
    except AttributeError:
        inner = self.__dict__.get("_modules", {}).get("inner")
        if inner is None:
            raise
        return getattr(inner, name)

