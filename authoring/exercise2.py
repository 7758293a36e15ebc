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

# %% [markdown]
# # Exercise 2: loss and perplexity, measured correctly
#
# A language model gives every possible next token a probability. How good the
# model is at a text comes down to one question: how much probability did it put
# on the token that actually came next, position after position? This notebook
# builds that measurement from the ground up and then uses it on a real model:
#
# 1. token ids into (input, target) pairs, shifted by one position;
# 2. a forward pass to **logits**, and softmax to **probabilities**;
# 3. **cross-entropy** written by hand, checked against PyTorch and against the model's own loss;
# 4. one **training step** (backward, optimizer step, clear the gradients);
# 5. **evaluation**: batched, without gradients, padding excluded, one token-weighted loss over the
#    whole set, and **perplexity** = exp(loss); why a mean of per-batch means drifts away from it;
# 6. texts longer than the model's context: **sliding-window** evaluation with a stride;
# 7. timing a reference `generate`, kept apart from the quality numbers.
#
# **Points: 25 in total.** Each graded part names its points. Visible tests help you;
# hidden tests, run when your notebook is graded, do the real checking.
#
# **Profiles.** On your laptop the notebook uses SmolLM2-135M-Instruct (the `full` profile).
# When it is graded, or with `COURSE_PROFILE=fast`, it uses a tiny random model with the
# same tokenizer so that a run takes seconds; its text is gibberish and its perplexity huge,
# which is expected. The tests always use the tiny model.

# %% [readonly id=setup]
import itertools
import math
import warnings

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

import helpers  # import before transformers: switches hub ids to offline mode when there is no network
from helpers.texts import REFERENCE_PROMPT, eval_texts, long_text

import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="transformers")

torch.manual_seed(0)
PROFILE = helpers.get_profile()
DEVICE = helpers.pick_device()
# Sliding-window settings: a small pretend context, so the effect of the stride shows in seconds.
SLIDING = (dict(min_words=300, max_length=64, strides=(64, 32, 16)) if PROFILE.is_fast
           else dict(min_words=1500, max_length=256, strides=(256, 128, 64)))
RESULTS = {}  # filled as you go; the summary at the end reads it
print(f"profile={PROFILE.name} | device={helpers.describe_device(DEVICE)} | "
      f"torch {torch.__version__} | transformers {transformers.__version__}")

# %% [markdown]
# ## Loading the model
#
# Tokenizer and model always come from the **same id**: a tokenizer from another model
# maps text to different ids, and the loss would be measured on nonsense without any error.
# The candidates are tried in order (the hub id first for those online, then the local copy);
# when every one fails, the error says which ids were tried and why, which is what you need
# to fix it. Quality is measured in float32 here, so that the numbers are a reference that
# faster, lower-precision variants can later be compared with.

# %% [readonly id=load_model]
def load_model_and_tokenizer(candidates, device):
    """Load tokenizer and model from the first candidate id that works.

    candidates: model ids or local folders, tried in order. device: "cpu" or "cuda".
    Returns (tokenizer, model, model_id_used, dtype_label), the model in eval mode on
    ``device``. Prints ``Loaded: <id> | device=<device> | dtype=<label>``.
    """
    failures = []
    for model_id in candidates:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id)
            model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch.float32)
        except Exception as error:  # offline hub id, missing folder, broken files...
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            failures.append(f"{model_id}: {type(error).__name__}: {reason}")
            continue
        model.to(device).eval()
        dtype_label = str(model.dtype).replace("torch.", "")
        print(f"Loaded: {model_id} | device={device} | dtype={dtype_label}")
        return tokenizer, model, str(model_id), dtype_label
    raise RuntimeError(
        "no model candidate could be loaded; tried:\n  " + "\n  ".join(failures or ["(no candidates given)"])
        + "\nThe local folders are built by the course set-up (`make setup` in the course repository; on the "
        "course's JupyterHub they are already there: tell your instructor)."
    )


tokenizer, model, MODEL_ID, DTYPE_LABEL = load_model_and_tokenizer(helpers.model_candidates(), DEVICE)
MODEL_LABEL = helpers.model_label(MODEL_ID)  # the folder name or hub id, for tables and titles

# %% [markdown]
# ---
# ## Part 1: input and target pairs (3 points)
#
# A causal language model reads tokens left to right and, at every position, predicts the
# **next** token. So training and evaluation data are the same sequence twice, offset by one:
#
# ```
# token ids : 12  7  30  5  9
# inputs    : 12  7  30  5
# targets   :  7 30   5  9
# ```
#
# `targets[t]` is the token that follows `inputs[t]`. The very first token of a text is never a
# target: nothing comes before it, so the model has nothing to predict it from.
#
# A PyTorch `Dataset` hands out one example at a time; a `DataLoader` stacks examples into
# batches. Write `NextTokenDataset`: it cuts a long list of token ids into consecutive,
# **non-overlapping** chunks of `seq_len` (input, target) pairs, so every token after the first
# is a target exactly once. Chunk `i` covers token ids `i*seq_len` to `(i+1)*seq_len` inclusive
# (that is `seq_len + 1` ids: the inputs are the first `seq_len`, the targets the last `seq_len`).
# Leftover ids at the end that cannot fill a whole chunk are dropped, so all examples have the
# same length and stack into a batch without padding.

# %% [solution id=next_token_dataset]
class NextTokenDataset(Dataset):
    """Consecutive (inputs, targets) chunks of a token sequence, targets shifted by one.

    token_ids: a list of ints or a 1-D tensor of token ids.
    seq_len: tokens per example (an int >= 1).

    ``len(dataset)`` is ``(len(token_ids) - 1) // seq_len``. ``dataset[i]`` returns
    ``(inputs, targets)``, two ``torch.long`` tensors of shape ``[seq_len]``, where
    ``inputs = token_ids[i*seq_len : (i+1)*seq_len]`` and
    ``targets = token_ids[i*seq_len + 1 : (i+1)*seq_len + 1]``.
    An index ``>= len(dataset)`` raises IndexError; a negative index either counts from the end,
    as for a list, or raises IndexError.
    Raises ValueError when ``seq_len < 1`` or when there are fewer than ``seq_len + 1`` ids.
    """

    def __init__(self, token_ids, seq_len):
        ### BEGIN SOLUTION
        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        if int(seq_len) < 1:
            raise ValueError(f"seq_len must be at least 1, got {seq_len}")
        if ids.numel() < int(seq_len) + 1:
            raise ValueError(f"need at least seq_len + 1 = {int(seq_len) + 1} token ids, got {ids.numel()}")
        self.ids = ids
        self.seq_len = int(seq_len)
        ### END SOLUTION

    def __len__(self):
        ### BEGIN SOLUTION
        return (self.ids.numel() - 1) // self.seq_len
        ### END SOLUTION

    def __getitem__(self, index):
        ### BEGIN SOLUTION
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is outside 0..{len(self) - 1}")
        start = index * self.seq_len
        chunk = self.ids[start:start + self.seq_len + 1]
        return chunk[:-1].clone(), chunk[1:].clone()
        ### END SOLUTION

# %% [markdown]
# **Try it.** Ten ids and `seq_len=3` give `(10 - 1) // 3 = 3` examples; the first should be
# `inputs=[0, 1, 2]`, `targets=[1, 2, 3]`. The real text (two evaluation paragraphs, about 430
# tokens) gives batches of shape `[4, 32]` for both inputs and targets.

# %% [code]
token_ids = tokenizer("\n\n".join(eval_texts(2))).input_ids  # used again below
toy = NextTokenDataset(list(range(10)), seq_len=3)
print("examples:", len(toy), "| first:", toy[0])

loader = DataLoader(NextTokenDataset(token_ids, seq_len=32), batch_size=4, shuffle=False)
inputs, targets = next(iter(loader))
print(f"{len(token_ids)} token ids -> {len(loader.dataset)} examples -> {len(loader)} batches")
print("batch shapes:", tuple(inputs.shape), tuple(targets.shape))

# %% [tests id=test_next_token_dataset points=1]
"""Check that NextTokenDataset shifts targets by one and has the documented length."""
_ds = NextTokenDataset(list(range(10)), seq_len=3)
assert len(_ds) == 3, f"10 ids with seq_len=3 give (10 - 1) // 3 = 3 examples, got len {len(_ds)}"
_x, _y = _ds[0]
assert isinstance(_x, torch.Tensor) and isinstance(_y, torch.Tensor), "return two tensors (inputs, targets)"
assert _x.tolist() == [0, 1, 2], f"inputs of example 0 should be [0, 1, 2], got {_x.tolist()}"
assert _y.tolist() == [1, 2, 3], (
    f"targets of example 0 should be [1, 2, 3] (the inputs moved one step ahead), got {_y.tolist()}")
assert _ds[2][0].tolist() == [6, 7, 8] and _ds[2][1].tolist() == [7, 8, 9], (
    "example 2 should be inputs [6, 7, 8], targets [7, 8, 9]: chunks do not overlap")
try:
    NextTokenDataset([1, 2, 3], seq_len=3)
except ValueError:
    pass
else:
    raise AssertionError("3 ids cannot make one example of seq_len=3 (it needs 4): raise ValueError")
print("NextTokenDataset: visible tests passed")

# %% [tests id=test_next_token_dataset_hidden points=2]
"""Check NextTokenDataset on a longer sequence, with a tensor input, through a DataLoader, and at its edges."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

from torch.utils.data import DataLoader as _DataLoader

with _raw():
    _LONG = _T.dtype.__get__(_VF.tensor([1]))            # int64, read off a fresh tensor

def _dtype(t):
    with _raw():
        return _T.dtype.__get__(t)

_ids, _k = [], 0
while _k < 103:                                           # 103 distinct ids, no library involved
    _ids.append((_k * 37 + 11) % 1000)
    _k += 1
_checked = 0
for _source in (_ids, _VF.tensor(_ids)):
    _ds = NextTokenDataset(_source, seq_len=10)
    _n = _int(_ds.__len__())
    assert _n == 10, f"103 ids with seq_len=10 give (103 - 1) // 10 = 10 examples, got {_n}"
    _i = 0
    while _i < 10:
        _x, _y = _ds[_i]
        assert _dtype(_x) is _LONG and _dtype(_y) is _LONG, "inputs and targets must be torch.long tensors"
        _xv, _yv = _vals(_x), _vals(_y)
        assert _type(_xv) is _list and _list.__len__(_xv) == 10 and _list.__len__(_yv) == 10, (
            f"example {_i}: shapes must be [seq_len]")
        assert _xv == _ids[_i * 10:_i * 10 + 10], f"example {_i}: wrong inputs"
        assert _yv == _ids[_i * 10 + 1:_i * 10 + 11], f"example {_i}: targets are not inputs shifted by one"
        _i += 1
        _checked += 1
assert _checked == 20, "not every example was checked"
# Every token after the first is a target exactly once, in order.
_all_targets, _i = [], 0
while _i < 10:
    _all_targets += _vals(_ds[_i][1])
    _i += 1
assert _all_targets == _ids[1:101], "targets must cover ids[1:], each once, in order"
_batches = [_b for _b in _DataLoader(NextTokenDataset(_ids, seq_len=10), batch_size=4, shuffle=False)]
assert [[_list.__len__(_row) for _row in _vals(_b[0])] for _b in _batches] == [[10] * 4, [10] * 4, [10] * 2], (
    "DataLoader batches have wrong shapes")
assert _vals(_batches[1][1])[0] == _ids[41:51], "batch 1, row 0 has wrong targets"
assert _int(NextTokenDataset([0, 1, 2, 3, 4], seq_len=4).__len__()) == 1, "5 ids with seq_len=4 give exactly one example"
try:
    NextTokenDataset([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], seq_len=3)[3]
except IndexError:
    pass
else:
    raise AssertionError("index 3 of a 3-example dataset must raise IndexError")
# A length that is a multiple of seq_len: the last id has no target after it, so it is dropped.
assert _int(NextTokenDataset(_ids[:100], seq_len=10).__len__()) == 9, (
    "100 ids with seq_len=10 give (100 - 1) // 10 = 9 examples: a 10th would have no target for its last input")
# A negative index counts from the end, as for a list, or raises IndexError.
_ds = NextTokenDataset(_ids[:31], seq_len=10)             # 3 examples
try:
    _x, _y = _ds[-1]
except IndexError:
    pass
else:
    assert _vals(_x) == _ids[20:30] and _vals(_y) == _ids[21:31], (
        "dataset[-1] must be the last example (as for a list) or raise IndexError")
try:
    _ds[-4]
except IndexError:
    pass
else:
    raise AssertionError("index -4 of a 3-example dataset must raise IndexError")
for _bad in (0, -2):
    try:
        NextTokenDataset(_ids, seq_len=_bad)
    except ValueError:
        continue
    raise AssertionError(f"seq_len={_bad}: raise ValueError (seq_len must be at least 1)")
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## A forward pass: logits and probabilities
#
# Calling the model on a batch of ids returns **logits**, shape `[batch, sequence, vocabulary]`:
# one unnormalised score per vocabulary entry, at every position. Softmax turns each row into a
# probability distribution, `p_i = exp(z_i) / sum_j exp(z_j)`, non-negative and summing to one.
# The row at the last position is the model's guess for the token after the prompt. Run the cell:
# the five likeliest next tokens should be plausible words for the embedded model (random for
# the tiny one), and every row should sum to 1.

# %% [code]
prompt_ids = tokenizer(REFERENCE_PROMPT, return_tensors="pt").input_ids.to(DEVICE)
with torch.inference_mode():
    logits = model(input_ids=prompt_ids).logits
probs = torch.softmax(logits.float(), dim=-1)
print("logits shape [batch, sequence, vocabulary]:", tuple(logits.shape))
print("largest |row sum - 1|:", float((probs.sum(dim=-1) - 1).abs().max()))
top = torch.topk(probs[0, -1], k=5)
print(f"after {REFERENCE_PROMPT!r} the model expects:")
for p, token_id in zip(top.values.tolist(), top.indices.tolist()):
    print(f"  {tokenizer.decode([token_id])!r:>16}  p={p:.3f}")

# %% [markdown]
# ---
# ## Part 2: cross-entropy by hand (4 points)
#
# The loss at one position is the **negative log-probability of the true next token**:
# `-log p(target)`. If the model gave the right token probability 1 the loss is 0; probability
# 1/49,152 (a uniform guess over this vocabulary) gives about 10.8 nats. The loss of a batch is
# the mean over the positions that count.
#
# Two details matter:
#
# - Use **log-softmax**, `log p_i = z_i - logsumexp(z)`, not `log(softmax(z))`. Softmax of large
#   logits underflows to exactly 0 for unlikely tokens, and `log(0)` is `-inf`; log-softmax
#   never forms the tiny probability, so it stays finite.
# - Positions whose target equals `ignore_index` (PyTorch's convention is `-100`) do not count:
#   they contribute nothing to the sum **and** are not in the count you divide by. Padding is
#   excluded this way.
#
# Write it with tensor operations (`torch.log_softmax`, or `logits - torch.logsumexp(...)`, which is
# the same thing; `gather` or indexing; a mask; `F.nll_loss` applied to your own log-softmax is
# allowed too), without running torch's own cross-entropy under
# any name: not `torch.nn.functional.cross_entropy` (however it is imported or renamed), not
# `torch.nn.CrossEntropyLoss`, not the `torch._C._nn.cross_entropy_loss` that both of them call.
# The graded test looks at the torch operators your function runs, so every spelling counts.

# %% [solution id=cross_entropy_from_logits]
def cross_entropy_from_logits(logits, targets, ignore_index=-100):
    """Mean cross-entropy (nats per counted position), computed from log-softmax.

    logits: float tensor ``[..., vocab]`` (e.g. ``[batch, seq, vocab]`` or ``[N, vocab]``).
    targets: integer tensor with the shape of ``logits`` minus its last dimension, on the same
        device as ``logits``.
    ignore_index: positions whose target equals it are excluded from sum and count.

    Returns a 0-dim tensor (so it can be back-propagated), equal to
    ``torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1),
    ignore_index=ignore_index)`` within float tolerance.
    Raises ValueError when no position counts (all targets equal ``ignore_index``).
    """
    ### BEGIN SOLUTION
    vocab = logits.shape[-1]
    flat_logits = logits.reshape(-1, vocab)
    flat_targets = targets.reshape(-1).to(flat_logits.device)
    keep = flat_targets != ignore_index
    count = int(keep.sum())
    if count == 0:
        raise ValueError("no position counts: every target equals ignore_index")
    log_probs = torch.log_softmax(flat_logits.float(), dim=-1)
    safe_targets = flat_targets.masked_fill(~keep, 0)  # any valid id; these rows are masked out below
    picked = log_probs.gather(1, safe_targets.unsqueeze(1)).squeeze(1)
    return -(picked * keep).sum() / count
    ### END SOLUTION

# %% [markdown]
# **Try it.** The textbook example first: logits `[1.0, 2.0, 0.1]` with target 1 give
# softmax probability `0.659` to the target, so the loss is `-log(0.659) = 0.4170`. Then the batch
# from Part 1 through the model (its targets moved to the logits' device): your value and
# PyTorch's should agree to about 5 or 6 significant digits (float32 rounding; a different order
# of summation moves the last digits).

# %% [code]
example = cross_entropy_from_logits(torch.tensor([[1.0, 2.0, 0.1]]), torch.tensor([1]))
print(f"textbook example: {float(example):.4f} (expected 0.4170)")

with torch.inference_mode():
    batch_logits = model(input_ids=inputs.to(DEVICE)).logits
mine = cross_entropy_from_logits(batch_logits, targets.to(DEVICE))
reference = F.cross_entropy(batch_logits.reshape(-1, batch_logits.shape[-1]).float(), targets.reshape(-1).to(DEVICE))
print(f"by hand: {float(mine):.6f} | torch: {float(reference):.6f} nats/token")

# %% [markdown]
# **The model's own loss.** Hugging Face causal LMs compute this loss themselves when given
# `labels`. They expect `labels=input_ids` (not the shifted targets) and shift **inside**:
# position `t`'s logits are scored against `labels[t+1]`, and the last position, whose next
# token is not in the batch, is dropped. So `model(ids, labels=ids).loss` must equal your
# function on `logits[:, :-1]` and `ids[:, 1:]`; a mismatch here is almost always an
# off-by-one shift. (Passing already-shifted targets as `labels` would shift twice.) The cell
# uses one row of 64 token ids from the evaluation text.

# %% [code]
ids = torch.tensor([token_ids[:64]], device=DEVICE)
with torch.inference_mode():
    own = model(input_ids=ids, labels=ids)
mine_shifted = cross_entropy_from_logits(own.logits[:, :-1], ids[:, 1:])
print(f"model loss with labels=input_ids: {float(own.loss):.6f} | "
      f"by hand on logits[:, :-1] vs ids[:, 1:]: {float(mine_shifted):.6f}")

# %% [tests id=test_cross_entropy_from_logits points=1]
"""Check cross_entropy_from_logits on the textbook example and on a small batch with ignored positions."""
_v = cross_entropy_from_logits(torch.tensor([[1.0, 2.0, 0.1]]), torch.tensor([1]))
assert isinstance(_v, torch.Tensor) and _v.dim() == 0, "return a 0-dim tensor (not a float, not a vector)"
assert abs(float(_v) - 0.4170300162778335) < 1e-5, f"-log softmax([1, 2, 0.1])[1] is 0.41703, got {float(_v)}"
torch.manual_seed(1)
_logits = torch.randn(2, 5, 11)
_targets = torch.randint(0, 11, (2, 5))
_targets[0, 0] = -100
_targets[1, 3] = -100
_expected = F.cross_entropy(_logits.reshape(-1, 11), _targets.reshape(-1))
assert abs(float(cross_entropy_from_logits(_logits, _targets)) - float(_expected)) < 1e-5, (
    "does not match torch's cross_entropy with two ignored (-100) positions: "
    "leave them out of the sum AND out of the count you divide by")
try:
    cross_entropy_from_logits(_logits, torch.full((2, 5), -100))
except ValueError:
    pass
else:
    raise AssertionError("when every target is ignore_index nothing counts: raise ValueError")
print("cross_entropy_from_logits: visible tests passed")

# %% [tests id=test_cross_entropy_from_logits_hidden points=3]
"""Check cross_entropy_from_logits against torch on several shapes, a custom ignore_index, large logits and gradients, and that it never runs torch's own cross-entropy."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

from torch._C._autograd import _disable_profiler_legacy as _profiler_off, _enable_profiler_legacy as _profiler_on
from torch._C._profiler import (ProfilerConfig as _ProfilerConfig, ProfilerState as _ProfilerState,
                                _ExperimentalConfig as _ExperimentalConfig)

with _raw():
    _F64 = _T.dtype.__get__(_T.double(_VF.zeros([1])))   # float64, read off a fresh tensor

def _operators_run(call):
    """(what call() returns, the names of the torch operators it ran), as torch's CPU profiler
    records them in C++ at the dispatcher, whatever Python name or module led there."""
    _profiler_on(_ProfilerConfig(_ProfilerState.CPU, False, False, False, False, False, _ExperimentalConfig()))
    try:
        result = call()
    finally:
        threads = _profiler_off()
    return result, [_event.name() for _thread in threads for _event in _thread]

def _loss_value(loss):
    """The value of a 0-dim loss tensor, read by torch's C code (TypeError for anything else)."""
    with _raw():
        assert _T.dim(loss) == 0, "return a 0-dim tensor (not a float, not a vector)"
        return _T.item(loss)

def _ref_ce(logits, targets, ignore_index=-100):
    """Mean -log p(target) over the counted positions: float64 log-softmax, summed in Python."""
    with _raw():
        vocab = _T.size(logits, -1)
        rows = _T.tolist(_VF.log_softmax(_T.reshape(_T.double(logits), [-1, vocab]), -1))
        flat = _T.tolist(_T.reshape(targets, [-1]))
    total, count, i = 0.0, 0, 0
    for target in flat:
        if target != ignore_index:
            total -= rows[i][target]
            count += 1
        i += 1
    return total / count

def _targets(generator, high, shape, ignored):
    """Random targets as a tensor, the (row, column) positions in `ignored` set to -100."""
    with _raw():
        rows = _T.tolist(_VF.randint(0, high, shape, generator=generator))
    for r, c in ignored:
        rows[r][c] = -100
    return _VF.tensor(rows)

_gen = _torch._C.Generator()
_gen.manual_seed(3)
# 3-D with ignored positions; 2-D; a custom ignore_index that is a real token id (-100 absent).
_l3 = _VF.mul(_VF.randn([3, 9, 40], generator=_gen), 3.0)
_t3 = _targets(_gen, 40, [3, 9], [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (2, 5), (2, 6), (2, 7), (2, 8)])
_l2 = _VF.randn([17, 25], generator=_gen)
_t2 = _targets(_gen, 25, [17], [])
_t2_list, _t2c_list, _k = _vals(_t2), [], 0
while _k < 17:                                            # every third target becomes 4
    _t2c_list.append(4 if _k % 3 == 0 else _t2_list[_k])
    _k += 1
_t2c = _VF.tensor(_t2c_list)
assert _vals(_t3)[2][5:] == [-100] * 4 and _vals(_t2c)[3] == 4, "the test's inputs were not built as intended"
_checked = 0
for _name, _args, _kw in (("[batch, seq, vocab]", (_l3, _t3), {}),
                          ("[N, vocab]", (_l2, _t2), {}),
                          ("ignore_index=4", (_l2, _t2c), {"ignore_index": 4})):
    _got = _loss_value(cross_entropy_from_logits(*_args, **_kw))
    _want = _ref_ce(*_args, **_kw)
    # float32 log-softmax vs float64 reference: 1e-5 relative is about 100x float32 rounding.
    assert _near(_got, _want, 1e-5, 1e-6), f"{_name}: got {_got}, expected {_want}"
    _checked += 1
assert _checked == 3, "not every shape was checked"

# Large logits: log(softmax(z)) underflows to -inf here; log-softmax stays finite.
_big = _VF.tensor([[1000.0, 0.0, -1000.0], [0.0, 800.0, 5.0]])
_bt = _VF.tensor([2, 0])
_got = _loss_value(cross_entropy_from_logits(_big, _bt))
assert _got == _got and -1e300 < _got < 1e300, "loss is inf/nan for large logits: use log_softmax, not log(softmax(...))"
assert _near(_got, _ref_ce(_big, _bt), 1e-4), f"large logits: got {_got}, expected {_ref_ce(_big, _bt)}"

# Gradients flow back to the logits and equal (softmax - one_hot) / count on counted rows, 0 elsewhere.
with _raw():
    _lg = _T.requires_grad_(_VF.randn([4, 6, 13], generator=_gen))
_tg = _targets(_gen, 13, [4, 6], [(1, 2)])
_loss = cross_entropy_from_logits(_lg, _tg)
with _raw():
    _connected = _T.requires_grad.__get__(_loss)
assert _connected, "return a 0-dim tensor that is still connected to the logits (no .item(), no detach)"
_loss_value(_loss)
_loss.backward()
with _raw():
    _grad = _T.tolist(_T.reshape(_T.grad.__get__(_lg), [-1, 13]))   # TypeError if no gradient reached it
    _soft = _T.tolist(_VF.softmax(_T.reshape(_T.double(_T.detach(_lg)), [-1, 13]), -1))
_flat_t = [_t for _row in _vals(_tg) for _t in _row]
_count = 23
_checked = 0
_i = 0
for _t in _flat_t:
    _j = 0
    while _j < 13:
        _want = 0.0 if _t == -100 else (_soft[_i][_j] - (1.0 if _j == _t else 0.0)) / _count
        assert _near(_grad[_i][_j], _want, 1e-4, 1e-7), "gradient differs from that of the mean cross-entropy"
        _j += 1
        _checked += 1
    _i += 1
assert _checked == 24 * 13, "not every gradient entry was checked"

# Written by hand: torch's own cross-entropy never runs. F.cross_entropy (under any name),
# nn.CrossEntropyLoss and torch._C._nn.cross_entropy_loss all run the operator
# aten::cross_entropy_loss, which the profiler sees; log-softmax with F.nll_loss does not.
_checked = 0
for _name, _args, _kw in (("[batch, seq, vocab]", (_l3, _t3), {}), ("ignore_index=4", (_l2, _t2c), {"ignore_index": 4})):
    _loss, _ran = _operators_run(lambda: cross_entropy_from_logits(*_args, **_kw))
    assert "aten::cross_entropy_loss" not in _ran, (
        f"{_name}: cross_entropy_from_logits ran torch's own cross-entropy (aten::cross_entropy_loss, which "
        "F.cross_entropy under any name, nn.CrossEntropyLoss and torch._C._nn.cross_entropy_loss all run): "
        "write it by hand, from log-softmax")
    _got, _want = _loss_value(_loss), _ref_ce(*_args, **_kw)
    assert _near(_got, _want, 1e-5, 1e-6), f"{_name}: got {_got}, expected {_want}"
    _checked += 1
assert _checked == 2, "not every call was checked"
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part 3: one training step (4 points)
#
# Training repeats three moves on batch after batch:
#
# 1. `loss.backward()` computes the gradient of the loss with respect to every weight;
# 2. `optimizer.step()` moves each weight a little against its gradient;
# 3. the gradients are cleared (`optimizer.zero_grad()`), because PyTorch **adds** new gradients
#    to the stored ones: forget this and every step also applies all the previous steps' gradients.
#    Clearing them at the start of the step (before `backward`) or at its end (after `step`) both
#    work; what matters is that each step moves the weights along its own batch's gradient only.
#
# Write `train_step`. It returns the loss computed **before** the update, as a Python float
# (`.item()`: keeping the tensor would keep its whole computation graph alive). The loss is the
# mean cross-entropy of the logits against `targets` over every position of the batch (the
# batches here have no ignored positions: every target is a real token); you may use your
# `cross_entropy_from_logits` or `F.cross_entropy`. The model may arrive in eval mode
# (after an evaluation, say): switch it to training mode first.
#
# We train the **tiny** model here, never the one we evaluate: a training step changes the
# weights, and the perplexity below must be that of the model as loaded. (Training the 135M
# model with AdamW on a laptop would also need about 2 GB for the optimizer's state.)

# %% [solution id=train_step]
def train_step(model, batch, optimizer):
    """One optimisation step on one batch; returns the loss before the update.

    model: a causal LM (``model(input_ids=...).logits`` has shape ``[batch, seq, vocab]``).
    batch: ``(inputs, targets)``, two long tensors ``[batch, seq]`` as a DataLoader over
        NextTokenDataset yields them.
    optimizer: a torch optimizer over the model's parameters.

    Puts the model in training mode, computes the mean cross-entropy of the logits against
    ``targets`` over all positions, back-propagates and steps the optimizer once. Gradients are
    cleared once per call (before the backward pass or after the step), so each call's step
    follows the gradient of its own batch only, never one accumulated over earlier calls.
    Returns the loss computed before the update (nats per token), as a Python float.
    """
    ### BEGIN SOLUTION
    model.train()
    inputs, targets = batch
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    logits = model(input_ids=inputs).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()
    ### END SOLUTION

# %% [markdown]
# **Try it.** A fresh copy of the tiny model, AdamW, and the batches of Part 1. The first two
# values are the loss before and after one step on the same batch: the second should be lower.
# Then ten passes over the first four batches: the loss falls steadily from about 10.8 (a uniform
# guess) as the model memorises them.

# %% [code]
torch.manual_seed(0)
tiny = AutoModelForCausalLM.from_pretrained(helpers.TINY_DIR, dtype=torch.float32)
tiny_tokenizer = AutoTokenizer.from_pretrained(helpers.TINY_DIR)
train_loader = DataLoader(NextTokenDataset(tiny_tokenizer("\n\n".join(eval_texts(2))).input_ids, seq_len=32),
                          batch_size=4, shuffle=False)
optimizer = torch.optim.AdamW(tiny.parameters(), lr=3e-3)
first_batch = next(iter(train_loader))
before = train_step(tiny, first_batch, optimizer)
with torch.no_grad():
    after_logits = tiny(input_ids=first_batch[0]).logits
after = float(cross_entropy_from_logits(after_logits, first_batch[1]))
print(f"same batch, loss before the step: {before:.4f} | after: {after:.4f} nats/token")
few_batches = list(itertools.islice(train_loader, 4))
history = []
for epoch in range(10):
    history.append(sum(train_step(tiny, b, optimizer) for b in few_batches) / len(few_batches))
print("mean training loss per pass:", " ".join(f"{v:.2f}" for v in history))

# %% [tests id=test_train_step points=1]
"""Check that train_step returns a float and that repeated steps lower the loss of a batch."""
torch.manual_seed(0)
_m = AutoModelForCausalLM.from_pretrained(helpers.TINY_DIR, dtype=torch.float32)
_g = torch.Generator().manual_seed(0)
_ids = torch.randint(0, 500, (2, 17), generator=_g)
_batch = (_ids[:, :-1], _ids[:, 1:])
_opt = torch.optim.AdamW(_m.parameters(), lr=1e-2)
_first = train_step(_m, _batch, _opt)
assert isinstance(_first, float), f"return the loss as a Python float (use .item()), got {type(_first).__name__}"
assert 9.0 < _first < 12.5, f"the untrained tiny model's loss should be about ln(49152) = 10.8, got {_first}"
for _ in range(4):
    _last = train_step(_m, _batch, _opt)
assert _last < _first - 0.5, f"five steps on the same batch should lower the loss clearly: {_first} -> {_last}"
print("train_step: visible tests passed")

# %% [tests id=test_train_step_hidden points=3]
"""Check train_step's behaviour: training mode, the loss before the update, and each call one step along its own batch's gradient."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

from transformers import AutoModelForCausalLM as _AutoLM

_tuple = ().__class__
_engine, _run_backward = _torch._C._ImperativeEngine(), _torch._C._ImperativeEngine.run_backward

def _has_gradient(p):
    with _raw():
        g = _T.grad.__get__(p)
        return g is not None and _T.item(_T.sum(_T.abs(g))) > 0

def _params(model):
    return [_p for _p in model.parameters()]

class _RecordingSGD(_torch.optim.SGD):
    """Plain SGD (a step is exactly -lr * gradient) that records, at each step, whether the
    parameters held gradients."""
    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.steps_with_grads = []
    def step(self, closure=None):
        found = False
        for group in self.param_groups:
            for p in group["params"]:
                found = found or _has_gradient(p)
        self.steps_with_grads.append(found)
        return super().step(closure)

class _SpyLM(_torch.nn.Module):
    """Test double: the tiny model, recording at every forward call whether it was in training mode."""
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.modes = []
    def forward(self, *args, **kwargs):
        self.modes.append(self.inner.training)
        return self.inner(*args, **kwargs)
    # include: delegate_to_inner

def _loss_now(model, batch):
    """Mean cross-entropy of the model on the batch now: float64 log-softmax, summed in Python."""
    with _torch.no_grad():   # for speed only: the values are read below either way
        logits = model(input_ids=batch[0]).logits
    with _raw():
        vocab = _T.size(logits, -1)
        rows = _T.tolist(_VF.log_softmax(_T.reshape(_T.double(_T.detach(logits)), [-1, vocab]), -1))
        flat = _T.tolist(_T.reshape(batch[1], [-1]))
    total, i = 0.0, 0
    for target in flat:
        total -= rows[i][target]
        i += 1
    return total / i

def _fresh_gradient(model, batch, params):
    """The gradient of the batch's mean cross-entropy at the current weights, from torch's C
    autograd engine; nothing is added to the parameters' .grad."""
    logits = model(input_ids=batch[0]).logits
    with _raw():
        vocab = _T.size(logits, -1)
        log_probs = _VF.log_softmax(_T.reshape(_T.float(logits), [-1, vocab]), -1)
        picked = _T.gather(log_probs, 1, _T.unsqueeze(_T.reshape(batch[1], [-1]), 1))
        loss = _T.neg(_T.mean(picked))
        return _run_backward(_engine, (loss,), (_VF.ones_like(loss),), False, False, _tuple(params), True, False)

def _snapshot(params):
    with _raw():
        return [_T.clone(_T.detach(_p)) for _p in params]

_LR = 0.5

def _step_off(before, after, gradients, plus=None):
    """How far the step `after - before` lies from -_LR * gradients (plus the steps in `plus`, when
    given), in float64: (squared distance, squared size of the step wanted)."""
    off, size, k = 0.0, 0.0, 0
    assert _list.__len__(before) == _list.__len__(after) == _list.__len__(gradients) > 0, (
        "the model's parameters changed in number")
    while k < _list.__len__(before):
        with _raw():
            step = _T.sub(_T.double(_T.detach(after[k])), _T.double(before[k]))
            want = _VF.zeros_like(step) if gradients[k] is None else _T.mul(_T.double(gradients[k]), -_LR)
            if plus is not None:
                want = _T.add(want, plus[k])
            off += _T.item(_T.sum(_T.pow(_T.sub(step, want), 2)))
            size += _T.item(_T.sum(_T.pow(want, 2)))
        k += 1
    assert size > 0, "the test's reference step is zero"
    return off, size

_inner = _AutoLM.from_pretrained(helpers.TINY_DIR, dtype=_torch.float32)
_m = _SpyLM(_inner)
_m.eval()  # as a model is after evaluation: train_step must switch training mode on itself
assert _m.training is False and _inner.training is False, "the test could not set up its model"
_gen = _torch._C.Generator()
_gen.manual_seed(5)
with _raw():
    _ids = _VF.randint(0, 2000, [3, 13], generator=_gen)
    _batch = (_T.clone(_T.narrow(_ids, 1, 0, 12)), _T.clone(_T.narrow(_ids, 1, 1, 12)))
    _ids2 = _VF.randint(0, 2000, [3, 13], generator=_gen)
    _batch2 = (_T.clone(_T.narrow(_ids2, 1, 0, 12)), _T.clone(_T.narrow(_ids2, 1, 1, 12)))
_before = _snapshot(_params(_m))
_expected = _loss_now(_inner, _batch)
_fresh1 = [_g for _g in _fresh_gradient(_inner, _batch, _params(_m))]   # no dropout in the tiny model
_opt = _RecordingSGD(_params(_m), lr=_LR)
_got = train_step(_m, _batch, _opt)
assert _type(_got) is _float, f"return a Python float (loss.item()), got {_type(_got).__name__}"
assert _list.__len__(_m.modes) > 0, "train_step never called the model"
assert [_mode for _mode in _m.modes if _mode is not True] == [], (
    "the forward pass ran in eval mode: call model.train() at the start of train_step")
# float32 forward vs float64 reference: 1e-4 relative leaves a wide margin over rounding.
assert _near(_got, _expected, 1e-4), (
    f"returned {_got}, but the batch's loss before the update is {_expected}: return the loss computed "
    "before optimizer.step(), averaged over all positions of targets")
assert _opt.steps_with_grads == [True], (
    f"optimizer.step() must be called exactly once, after loss.backward(); recorded {_opt.steps_with_grads}")
_after, _changed, _k = _params(_m), 0, 0
assert _list.__len__(_after) == _list.__len__(_before) > 0, "the model's parameters changed shape"
while _k < _list.__len__(_before):
    with _raw():
        _changed += 0 if _VF.equal(_before[_k], _T.detach(_after[_k])) else 1
    _k += 1
assert _changed > 0, "the weights did not change"
# Plain SGD: the step is exactly -lr times the gradient the optimizer found. Same float32 arithmetic
# on both sides: a 1e-3 relative difference is far above rounding, and far below the difference a
# wrong gradient makes (of the order of the step itself).
_off, _size = _step_off(_before, _params(_m), _fresh1)
assert _off <= 1e-6 * _size, (
    "the first call's step was not -lr times the gradient of this batch's mean cross-entropy at the "
    "weights the call started from (checked with plain SGD, lr=0.5): back-propagate that loss and step once")
# A second call, on another batch: its loss is the loss before its own step, and its step is
# -lr times a fresh gradient of that batch at the new weights. Gradients left over from the first
# call would be added to it (PyTorch accumulates .grad), whenever they are cleared.
_theta1 = _snapshot(_params(_m))
_step1, _k = [], 0                                        # the first call's step, in float64
while _k < _list.__len__(_before):
    with _raw():
        _step1.append(_T.sub(_T.double(_theta1[_k]), _T.double(_before[_k])))
    _k += 1
_fresh = [_g for _g in _fresh_gradient(_inner, _batch2, _params(_m))]
_expected2 = _loss_now(_inner, _batch2)
_m.modes.clear()
_got2 = train_step(_m, _batch2, _opt)
assert _type(_got2) is _float and _near(_got2, _expected2, 1e-4), (
    "second call: the returned loss is not the loss before its step")
assert _opt.steps_with_grads == [True, True], "second call: exactly one optimizer.step() with gradients"
assert [_mode for _mode in _m.modes if _mode is not True] == [], "second call: the forward pass ran in eval mode"
_theta2 = _params(_m)
_off, _size = _step_off(_theta1, _theta2, _fresh)
if _off > 1e-6 * _size:
    # The first call's gradient still in .grad: this step is -lr * (fresh + first) = -lr * fresh + step 1.
    _off_left, _size_left = _step_off(_theta1, _theta2, _fresh, plus=_step1)
    assert _off_left > 1e-6 * _size_left, (
        "the second call's step was -lr times its own batch's gradient plus the first call's: the first "
        "call's gradients were still stored (PyTorch adds new gradients to them). Clear them once per "
        "call with optimizer.zero_grad(), before loss.backward() or after optimizer.step()")
    raise AssertionError(
        "the second call's step was not -lr times the gradient of its own batch's mean cross-entropy at "
        "the weights it started from (checked with plain SGD, lr=0.5); gradients left over from an "
        "earlier call are one possible cause")
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Part 4: evaluation and perplexity (9 points)
#
# Evaluating is the loss without the training: no `backward`, so no gradients are needed at all.
# Run the forward passes inside `torch.inference_mode()` (or `torch.no_grad()`): PyTorch then
# keeps no record of the computation, which saves memory and time, and put the model in eval
# mode (`model.eval()`: dropout off, so the result is deterministic).
#
# Texts have different lengths, so a batch is **padded** to its longest text; the attention mask
# marks the real tokens. Three rules make the number right:
#
# - **Padding is not data.** A padded position is neither a target nor counted.
# - **The first token of each text is not a target:** with `n` tokens a text has `n - 1`
#   predictions.
# - **One global, token-weighted average.** Add up the loss of every predicted token over the
#   whole set and divide by the number of predicted tokens. Then
#   **perplexity = exp(average loss)**: the model was, on average, as unsure as if it chose
#   uniformly among that many tokens. A random model over 49,152 tokens has perplexity near
#   49,152; a good small model on ordinary prose, a few tens.
#
# Use **right padding** for this (`tokenizer(..., padding=True, padding_side="right")`). With left
# padding the real tokens start at a different position in each row; it can be done, but the
# mask must then also drop the first real token of every row, which is easy to get wrong.
#
# `max_length`, when given, truncates each text to its first `max_length` tokens. An empty list,
# or texts that give nothing to predict (every text shorter than two tokens), must raise
# `ValueError` with a clear message, not return NaN.
#
# `device` says where the inputs go (the tokenizer returns them on the CPU). When it is given, use
# it as given, even if the model's parameters report another device (a model whose weights are
# offloaded, for instance, can report its parameters on the `meta` device while it runs elsewhere).
# When it is `None`, use the device of the model's parameters.

# %% [solution id=evaluate_perplexity]
def evaluate_perplexity(model, tokenizer, texts, batch_size, max_length=None, device=None):
    """Token-weighted loss and perplexity of ``model`` over ``texts``.

    model: a causal LM; tokenizer: its tokenizer (must have a pad token).
    texts: a list of strings. batch_size: texts per forward pass (int >= 1).
    max_length: if given, each text is truncated to its first ``max_length`` tokens.
    device: where the inputs go. None (the default): the device of the model's parameters.
        Given (e.g. ``"cpu"``): that device, even when the model's parameters report another
        one (a model whose weights are offloaded, say).

    Batched, inside inference mode (no gradients), the model left in eval mode. Padding
    and the first token of every text are not predictions and are excluded.
    Returns ``{"avg_loss": float (nats per predicted token), "perplexity": float
    (exp(avg_loss)), "n_tokens": int (predicted tokens that counted)}``.
    Raises ValueError when ``texts`` is empty or nothing can be predicted.
    """
    ### BEGIN SOLUTION
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string: wrap it as [text]")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: give at least one text to evaluate")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch_size = int(batch_size)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    total_nll, n_tokens = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                                padding_side="right", truncation=max_length is not None,
                                max_length=max_length)
            input_ids = encoded["input_ids"].to(device)
            attention_mask = encoded["attention_mask"].to(device)
            if input_ids.shape[1] < 2:
                continue  # no text in this batch has a token to predict
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            labels = input_ids.masked_fill(attention_mask == 0, -100)
            shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
            shift_labels = labels[:, 1:].reshape(-1)
            total_nll += F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum").item()
            n_tokens += int((shift_labels != -100).sum())
    if n_tokens == 0:
        raise ValueError("nothing to predict: every text is shorter than two tokens")
    avg_loss = total_nll / n_tokens
    return {"avg_loss": avg_loss, "perplexity": math.exp(avg_loss), "n_tokens": n_tokens}
    ### END SOLUTION

# %% [markdown]
# **Try it.** On the course's evaluation texts: a dict with `avg_loss` in nats per token,
# `perplexity` and `n_tokens`. The embedded model should land around 30 on all sixteen texts
# (3,392 predicted tokens); the tiny random model near 50,000.

# %% [code]
evaluation = evaluate_perplexity(model, tokenizer, eval_texts(PROFILE.n_eval_texts), PROFILE.eval_batch_size)
RESULTS["evaluation"] = evaluation
print(f"{MODEL_LABEL} | {evaluation['n_tokens']} predicted tokens | "
      f"loss {evaluation['avg_loss']:.4f} nats/token | perplexity {evaluation['perplexity']:.2f}")

# %% [tests id=test_evaluate_perplexity points=2]
"""Check evaluate_perplexity's keys, token count, exp relation and independence from the batch size."""
_tok = AutoTokenizer.from_pretrained(helpers.TINY_DIR)
_m = AutoModelForCausalLM.from_pretrained(helpers.TINY_DIR, dtype=torch.float32).eval()
_texts = ["The sea was calm.", eval_texts(1)[0], "Bread rises because of yeast in the warm dough."]
_lengths = [len(_tok(t).input_ids) for t in _texts]
_r = evaluate_perplexity(_m, _tok, _texts, batch_size=2)
assert isinstance(_r, dict) and {"avg_loss", "perplexity", "n_tokens"} <= set(_r), (
    f"return a dict with avg_loss, perplexity and n_tokens; got {_r!r:.200}")
assert _r["n_tokens"] == sum(_lengths) - len(_texts), (
    f"n_tokens should be {sum(_lengths) - len(_texts)} (each text of n tokens has n - 1 predictions), got "
    f"{_r['n_tokens']}: {'padding is being counted' if _r['n_tokens'] > sum(_lengths) else 'check the shift'}")
assert math.isfinite(_r["perplexity"]) and abs(_r["perplexity"] - math.exp(_r["avg_loss"])) <= 1e-6 * _r["perplexity"], (
    f"perplexity {_r['perplexity']} must be exp(avg_loss) = {math.exp(_r['avg_loss'])} (exp of the average, not of the sum)")
assert 9.0 < _r["avg_loss"] < 12.5, f"the random tiny model's loss should be about ln(49152) = 10.8, got {_r['avg_loss']}"
_r1 = evaluate_perplexity(_m, _tok, _texts, batch_size=1)
_r3 = evaluate_perplexity(_m, _tok, _texts, batch_size=3)
for _other, _bs in ((_r1, 1), (_r3, 3)):
    assert abs(_other["avg_loss"] - _r["avg_loss"]) <= 1e-4 * _r["avg_loss"], (
        f"batch_size={_bs} gives loss {_other['avg_loss']} but batch_size=2 gives {_r['avg_loss']}: the global "
        "token-weighted average must not depend on how texts are batched (sum losses and counts, divide once)")
print("evaluate_perplexity: visible tests passed")

# %% [tests id=test_evaluate_perplexity_hidden points=4]
"""Check evaluate_perplexity against an independent per-text computation on a model with widely varying losses, and that a device given is where the inputs go."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

import torch.nn.functional as _F
from transformers import AutoModelForCausalLM as _AutoLM, AutoTokenizer as _AutoTok
from transformers.modeling_outputs import CausalLMOutputWithPast as _Out
from helpers.texts import EVAL_TEXTS as _EVAL

_get = {}.__class__.__getitem__                          # dict's own lookup, whatever dict subclass comes back
with _raw():
    _F64 = _T.dtype.__get__(_T.double(_VF.zeros([1])))

def _log(x):
    with _raw():
        return _T.item(_VF.log(_VF.tensor(_float(x), dtype=_F64)))

class _ScaledLM(_torch.nn.Module):
    """Test double: the tiny model with logits multiplied by `scale`, so per-token losses vary widely
    (from near 0 to hundreds of nats) and every aggregation mistake moves the result visibly."""
    def __init__(self, inner, scale):
        super().__init__()
        self.inner = inner
        self.scale = scale
    def forward(self, *args, labels=None, **kwargs):
        logits = self.inner(*args, **kwargs).logits * self.scale
        loss = None
        if labels is not None:  # as Hugging Face does: shift inside, mean over labels != -100
            loss = _F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                    labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return _Out(loss=loss, logits=logits)
    # include: delegate_to_inner

def _reference(inner, scale, tok, texts, max_length=None):
    """Independent computation: one text at a time, no padding, float64 log-softmax, sums in Python."""
    total, count = 0.0, 0
    for text in texts:
        ids = [_int(i) for i in tok(text).input_ids]
        if max_length is not None:
            ids = ids[:max_length]
        if _list.__len__(ids) < 2:
            continue
        with _torch.no_grad():   # for speed only: the values are read below either way
            logits = inner(input_ids=_VF.tensor([ids])).logits
        with _raw():
            rows = _T.tolist(_VF.log_softmax(_T.mul(_T.double(_T.detach(_T.select(logits, 0, 0))), scale), -1))
        t = 1
        while t < _list.__len__(ids):
            total -= rows[t - 1][ids[t]]
            count += 1
            t += 1
    return total / count, count

_is_subclass = _type.__subclasscheck__

def _result(r):
    """avg_loss, perplexity, n_tokens of a returned dict, as real numbers; checks their types."""
    loss, ppl, n = _get(r, "avg_loss"), _get(r, "perplexity"), _get(r, "n_tokens")
    assert _is_subclass(_float, _type(loss)) and _is_subclass(_float, _type(ppl)) and _is_subclass(_int, _type(n)), (
        f"return avg_loss and perplexity as Python floats and n_tokens as a Python int, not tensors "
        f"(use .item() or float()); got {_type(loss).__name__}, {_type(ppl).__name__}, {_type(n).__name__}")
    return _float(loss), _float(ppl), _int(n)

_tok = _AutoTok.from_pretrained(helpers.TINY_DIR)  # fresh: padding_side is "left" by default
_inner = _AutoLM.from_pretrained(helpers.TINY_DIR, dtype=_torch.float32).eval()
_model = _ScaledLM(_inner, 30.0)
# Short and long texts mixed, so batches hold very different numbers of tokens.
_texts = ["Bread rises.", "The tide comes in twice a day.", _EVAL[1], _EVAL[2][:400],
          "Why?", _EVAL[3], "A bicycle balances by steering into the lean."]
_ref_loss, _ref_n = _reference(_inner, 30.0, _tok, _texts)
_checked = 0
for _bs in (2, 3):
    _loss, _ppl, _n = _result(evaluate_perplexity(_model, _tok, _texts, batch_size=_bs))
    assert _n == _ref_n, (
        f"batch_size={_bs}: n_tokens {_n}, expected {_ref_n} (padding and first tokens excluded)")
    # float32 model vs float64 reference with logits scaled by 30: 1e-4 relative is ~100x the rounding seen.
    assert _near(_loss, _ref_loss, 1e-4), (
        f"batch_size={_bs}: avg_loss {_loss}, expected {_ref_loss} (token-weighted over all batches)")
    # log(perplexity) must be the global average loss; 1e-3 absolute in log space = 0.1% in perplexity.
    assert 0 < _ppl < 1e300, f"perplexity {_ppl} is not a finite positive number"
    assert _near(_log(_ppl), _ref_loss, 0.0, 1e-3), (
        f"batch_size={_bs}: perplexity {_ppl:.6g}, expected exp(global avg loss) (log {_ref_loss:.6g})")
    _checked += 1
assert _checked == 2, "not every batch size was checked"
# Truncation with max_length.
_ref_loss_t, _ref_n_t = _reference(_inner, 30.0, _tok, _texts, max_length=12)
_loss, _ppl, _n = _result(evaluate_perplexity(_model, _tok, _texts, batch_size=4, max_length=12))
assert _n == _ref_n_t, f"max_length=12: n_tokens {_n}, expected {_ref_n_t}"
assert _near(_loss, _ref_loss_t, 1e-4), f"max_length=12: avg_loss {_loss}, expected {_ref_loss_t}"

# An explicit device argument is where the inputs go, even when the model's parameters report another.
def _device_type(t):
    with _raw():
        return _T.device.__get__(t).type

class _OffloadedLM(_torch.nn.Module):
    """Test double: a model whose weights are offloaded. Its only parameter, and so `.device` and
    next(parameters()).device, is on the meta device, which holds no data; it runs the scaled tiny
    model on the CPU and records the device of every tensor it is called with. `.to(...)` moves
    that parameter, as it would move a real model's."""
    def __init__(self, runner):
        super().__init__()
        self.placement = _torch.nn.Parameter(_VF.empty([1], device="meta"), requires_grad=False)
        self.__dict__["runner"] = runner   # not a submodule: its parameters stay out of parameters()
        self.seen = []
    @property
    def device(self):
        with _raw():
            return _T.device.__get__(self.placement)
    def _apply(self, fn, recurse=True):
        with _raw():
            moved = fn(_VF.zeros([1]))
        self.placement = _torch.nn.Parameter(moved, requires_grad=False)
        return self
    def forward(self, *args, **kwargs):
        places = [_device_type(_v) for _v in [*args, *kwargs.values()] if _is_subclass(_T, _type(_v))]
        self.seen.append(places)
        assert places and [_p for _p in places if _p != "cpu"] == [], (
            f"the model was called with tensors on {places}, but device='cpu' was given")
        return self.runner(*args, **kwargs)
    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            runner = self.__dict__.get("runner")
            if runner is None:
                raise
            return getattr(runner, name)

_offloaded = _OffloadedLM(_model)
assert _device_type(_offloaded.placement) == "meta", "the test could not set up its model"
_ref_loss_d, _ref_n_d = _reference(_inner, 30.0, _tok, _texts[:3])
try:
    _r = evaluate_perplexity(_offloaded, _tok, _texts[:3], batch_size=2, device="cpu")
except Exception as _error:
    raise AssertionError(
        "device='cpu' given, for a model whose parameters report the meta device (as offloaded weights do): "
        f"evaluate_perplexity raised {_type(_error).__name__}: {_error}. When device is given, the inputs go to "
        "that device, whatever device the model's parameters report") from None
assert _list.__len__(_offloaded.seen) > 0, "device='cpu': the model was never called"
_loss, _ppl, _n = _result(_r)
assert _n == _ref_n_d and _near(_loss, _ref_loss_d, 1e-4), (
    f"device='cpu': n_tokens {_n}, avg_loss {_loss}; expected {_ref_n_d}, {_ref_loss_d}")
### END HIDDEN TESTS

# %% [tests id=test_evaluate_perplexity_no_grad points=2]
"""Check that evaluation runs in batches of batch_size texts, without gradients, and leaves the model in eval mode."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

from transformers import AutoModelForCausalLM as _AutoLM, AutoTokenizer as _AutoTok

def _requires_grad(t):
    with _raw():
        return _T.requires_grad.__get__(t)

with _raw():
    _LEAF = _T.requires_grad_(_VF.ones([1]))

def _grad_mode_on():
    """Whether autograd records operations now, seen from its effect (no Python flag is asked)."""
    with _raw():
        return _T.requires_grad.__get__(_VF.mul(_LEAF, 2.0))

def _rows(t):
    with _raw():
        return _T.size(t, 0)

class _SpyLM(_torch.nn.Module):
    """Test double: records, at every forward call, whether the output is recorded for gradients
    (its logits require grad), whether the model is in training mode, and the number of texts."""
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []
    def forward(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        self.calls.append((_requires_grad(out.logits), self.inner.training, _rows(out.logits)))
        return out
    # include: delegate_to_inner

_tok = _AutoTok.from_pretrained(helpers.TINY_DIR)
_spy = _SpyLM(_AutoLM.from_pretrained(helpers.TINY_DIR, dtype=_torch.float32))
_spy.train()  # as a model might be after a training loop
assert _spy.inner.training is True and _grad_mode_on() is True, "the test could not set up its model"
_params = [_p for _p in _spy.parameters()]
with _raw():
    for _p in _params:                                    # trainable, set through torch's C code
        _T.requires_grad_(_p)
assert _list.__len__(_params) > 0 and _requires_grad(_params[0]), "the test's model must have trainable weights"
evaluate_perplexity(_spy, _tok, ["One short text.", "Another text, a little longer than the first.", "Third."], batch_size=2)
assert _list.__len__(_spy.calls) > 0, "the model was never called"
_with_grad = [_c for _c in _spy.calls if _c[0] is not False]
assert _with_grad == [], (
    f"gradients were recorded in {_list.__len__(_with_grad)} of {_list.__len__(_spy.calls)} forward calls: "
    "evaluate inside torch.inference_mode() or torch.no_grad()")
assert [_c for _c in _spy.calls if _c[1] is not False] == [], "the model ran in training mode: call model.eval() first"
assert _spy.training is False and _spy.inner.training is False, "leave the model in eval mode"
assert _grad_mode_on() is True, "evaluation switched gradients off globally: use a with-block"
# Three texts with batch_size=2: two forward passes, of at most two texts each.
_sizes = [_c[2] for _c in _spy.calls]
assert [_b for _b in _sizes if _b > 2] == [], (
    f"forward passes held {_sizes} texts with batch_size=2: put at most batch_size texts in each pass")
assert _list.__len__(_sizes) <= 2, (
    f"3 texts with batch_size=2 need 2 forward passes, the model was called {_list.__len__(_sizes)} times: "
    "evaluate batch_size texts per pass, not one at a time")
with _raw():
    _grads = [_T.grad.__get__(_p) for _p in _params]
assert [_g for _g in _grads if _g is not None] == [], "evaluation produced gradients"
### END HIDDEN TESTS

# %% [tests id=test_evaluate_perplexity_errors points=1]
"""Check that evaluate_perplexity raises ValueError, not NaN, when there is nothing to predict."""
### BEGIN HIDDEN TESTS
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoLM, AutoTokenizer as _AutoTok

_tok = _AutoTok.from_pretrained(helpers.TINY_DIR)
_m = _AutoLM.from_pretrained(helpers.TINY_DIR, dtype=_torch.float32).eval()
assert [len(_tok(t).input_ids) for t in ("Hello", "Hi")] == [1, 1]
for _bad, _why in (([], "an empty list"), (["Hello", "Hi"], "texts of one token each")):
    try:
        _out = evaluate_perplexity(_m, _tok, _bad, batch_size=2)
    except ValueError:
        continue
    raise AssertionError(f"{_why}: expected ValueError, got {_out!r:.120}")
### END HIDDEN TESTS

# %% [markdown]
# ### Why not average the per-batch losses?
#
# A tempting shortcut is to take each batch's mean loss (what `model(..., labels=...).loss`
# returns) and average those. That gives every **batch** the same weight, whatever the number of
# tokens in it. The cell below evaluates four one-sentence texts and four full paragraphs with
# `batch_size=4`, so one batch holds a few dozen tokens and the other several hundred. The short
# sentences are also harder to predict (little context), so the mean of means over-weights the
# hardest tokens and reports a worse model than the token-weighted figure. It also changes when
# you change the batch size or the order of the texts, which a measurement of the model must not.

# %% [code]
sentences = [text.split(". ")[0] + "." for text in eval_texts(4)]
mixed = sentences + eval_texts(8)[4:]
per_batch = [evaluate_perplexity(model, tokenizer, mixed[i:i + 4], batch_size=4)
             for i in tqdm(range(0, len(mixed), 4), desc="batches", leave=False)]
overall = evaluate_perplexity(model, tokenizer, mixed, batch_size=4)
mean_of_means = sum(b["avg_loss"] for b in per_batch) / len(per_batch)
for i, b in enumerate(per_batch):
    print(f"batch {i}: {b['n_tokens']:4d} tokens, mean loss {b['avg_loss']:.4f}")
print(f"token-weighted: loss {overall['avg_loss']:.4f}, perplexity {overall['perplexity']:.2f}")
print(f"mean of batch means: loss {mean_of_means:.4f}, perplexity {math.exp(mean_of_means):.2f} "
      f"({100 * (math.exp(mean_of_means) / overall['perplexity'] - 1):+.1f}% off)")
RESULTS["mean_of_means"] = {"overall": overall, "mean_of_means_loss": mean_of_means}

# %% [markdown]
# ---
# ## Part 5: texts longer than the context, with a sliding window (5 points)
#
# A model attends to at most a fixed number of tokens (its context, `max_length` here). A longer
# text has to be cut. Cutting it into disjoint chunks is cheap but unfair: the first tokens of
# every chunk are predicted with almost no context, so perplexity comes out too high.
#
# The sliding window (the method of the Hugging Face perplexity guide) moves a window of
# `max_length` tokens along the text by `stride` tokens at a time. Each window is one forward
# pass; only the tokens that **no earlier window has scored** count in it, and the overlap at its
# start serves as context only (their labels are set to `-100`). So each token after the first is
# scored exactly once, with at least `max_length - stride` tokens of context once the window is
# full. A smaller stride gives more context and a fairer figure, at the price of more forward
# passes (about `len / stride`).
#
# ```
# window 1: [t0 ......................... t7]            scores t1..t7
# window 2:            [t4 ...... t7 | t8 ...... t11]    t4..t7 context only, scores t8..t11
# ```
#
# The loop: for `begin` in `0, stride, 2*stride, ...`: `end = min(begin + max_length, n)`; the
# new tokens are those from the previous window's `end` up to this `end`; stop once `end == n`.
# The same bookkeeping as before applies: sum the losses, count the scored tokens, divide once.
# `max_length` must be at least 2 (a window of one token has nothing before its token to predict
# it from) and `stride` between 1 and `max_length`: a `ValueError` otherwise, raised before any
# forward pass. A text of fewer than two tokens is a `ValueError` too. With `stride < max_length` every token after the first is scored, so
# `n_tokens = len - 1`. With `stride = max_length` (disjoint chunks) the first token of each chunk
# has no context inside its window and is not scored, exactly as for the first token of a text.

# %% [solution id=sliding_window_perplexity]
def sliding_window_perplexity(model, tokenizer, text, max_length, stride):
    """Perplexity of one long text with a sliding window of ``max_length`` tokens moved by ``stride``.

    model, tokenizer: a causal LM and its tokenizer. text: one string.
    max_length: tokens per forward pass (int >= 2). stride: tokens the window moves (1..max_length).

    Each token is scored once, in the first window that reaches it, if that window holds at least
    one token before it (so with stride < max_length every token after the first is scored); the
    overlap with the previous window is context only. No gradients; the model left in eval mode.
    Returns ``{"avg_loss": float (nats per scored token), "perplexity": float,
    "n_tokens": int (tokens scored)}``.
    Raises ValueError for a stride outside 1..max_length or a text of fewer than two tokens.
    """
    ### BEGIN SOLUTION
    max_length, stride = int(max_length), int(stride)
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and max_length={max_length}, got {stride}")
    device = next(model.parameters()).device
    ids = tokenizer(text, return_tensors="pt")["input_ids"].to(device)
    n = ids.shape[1]
    if n < 2:
        raise ValueError(f"the text has {n} token(s): at least two are needed to predict anything")
    model.eval()
    total_nll, n_tokens, prev_end = 0.0, 0, 0
    with torch.inference_mode():
        for begin in range(0, n, stride):
            end = min(begin + max_length, n)
            new_tokens = end - prev_end          # tokens no earlier window has scored
            window = ids[:, begin:end]
            labels = window.clone()
            labels[:, :-new_tokens] = -100        # the overlap is context only
            logits = model(input_ids=window).logits
            shift_labels = labels[:, 1:].reshape(-1)
            total_nll += F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shift_labels,
                                         ignore_index=-100, reduction="sum").item()
            n_tokens += int((shift_labels != -100).sum())
            prev_end = end
            if end == n:
                break
    avg_loss = total_nll / n_tokens
    return {"avg_loss": avg_loss, "perplexity": math.exp(avg_loss), "n_tokens": n_tokens}
    ### END SOLUTION

# %% [markdown]
# **Try it.** A long text (several evaluation paragraphs joined), a pretend context of
# `SLIDING["max_length"]` tokens and three strides, from disjoint chunks (`stride = max_length`)
# to a quarter of the window. Expect perplexity to fall as the stride shrinks, towards the figure
# for the whole text in one pass (the real model's context, 8,192 tokens, holds it), and the
# number of forward passes to grow. Which profile shows it: the full profile (the embedded model)
# does, most between disjoint chunks and half the window. The fast profile's tiny random model
# makes almost no use of context, so its three figures are nearly equal and may go either way:
# that says nothing about your function, which the tests check.

# %% [code]
long_doc = long_text(SLIDING["min_words"])
whole = evaluate_perplexity(model, tokenizer, [long_doc], batch_size=1)
print(f"whole text in one pass: {whole['n_tokens'] + 1} tokens, perplexity {whole['perplexity']:.2f}")
sliding_rows = []
for stride in tqdm(SLIDING["strides"], desc="strides", leave=False):
    with helpers.Timer(DEVICE) as timer:
        r = sliding_window_perplexity(model, tokenizer, long_doc, SLIDING["max_length"], stride)
    sliding_rows.append({"max_length_tokens": SLIDING["max_length"], "stride_tokens": stride,
                         "n_tokens": r["n_tokens"], "avg_loss": r["avg_loss"], "perplexity": r["perplexity"],
                         "eval_time_s": timer.elapsed_s})
    print(f"stride {stride:4d}: {r['n_tokens']} tokens scored, perplexity {r['perplexity']:.2f}, "
          f"{timer.elapsed_s:.1f} s")
RESULTS["sliding"] = {"rows": sliding_rows, "whole": whole}

# %% [tests id=test_sliding_window_perplexity points=1]
"""Check sliding_window_perplexity's keys and token count, and that one window equals a plain evaluation."""
_tok = AutoTokenizer.from_pretrained(helpers.TINY_DIR)
_m = AutoModelForCausalLM.from_pretrained(helpers.TINY_DIR, dtype=torch.float32).eval()
_text = eval_texts(1)[0]
_n = len(_tok(_text).input_ids)
_r = sliding_window_perplexity(_m, _tok, _text, max_length=64, stride=32)
assert isinstance(_r, dict) and {"avg_loss", "perplexity", "n_tokens"} <= set(_r), "return avg_loss, perplexity, n_tokens"
assert _r["n_tokens"] == _n - 1, (
    f"every token after the first is scored exactly once: expected {_n - 1}, got {_r['n_tokens']}"
    + (" (the overlap is being counted again)" if _r["n_tokens"] > _n - 1 else ""))
assert math.isfinite(_r["perplexity"]) and abs(_r["perplexity"] - math.exp(_r["avg_loss"])) <= 1e-6 * _r["perplexity"], (
    "perplexity must be exp(avg_loss), the exp of the overall average loss")
# A window longer than the text: one forward pass, the plain full-text loss.
_ids = torch.tensor([_tok(_text).input_ids])
with torch.no_grad():
    _lp = torch.log_softmax(_m(input_ids=_ids).logits[0, :-1].double(), dim=-1)
_full = -float(_lp.gather(1, _ids[0, 1:, None]).mean())
_r = sliding_window_perplexity(_m, _tok, _text, max_length=_n + 10, stride=8)
assert _r["n_tokens"] == _n - 1 and abs(_r["avg_loss"] - _full) <= 1e-4 * _full, (
    f"with max_length longer than the text the result must be the plain loss {_full:.5f}, got {_r['avg_loss']:.5f}")
print("sliding_window_perplexity: visible tests passed")

# %% [tests id=test_sliding_window_perplexity_hidden points=4]
"""Check sliding_window_perplexity against a direct per-window, token-by-token computation."""
### BEGIN HIDDEN TESTS
# include: trusted_prelude

import torch.nn.functional as _F
from transformers import AutoModelForCausalLM as _AutoLM, AutoTokenizer as _AutoTok
from transformers.modeling_outputs import CausalLMOutputWithPast as _Out
from helpers.texts import EVAL_TEXTS as _EVAL

_get = {}.__class__.__getitem__                          # dict's own lookup, whatever dict subclass comes back
_is_subclass = _type.__subclasscheck__
with _raw():
    _F64 = _T.dtype.__get__(_T.double(_VF.zeros([1])))

def _log(x):
    with _raw():
        return _T.item(_VF.log(_VF.tensor(_float(x), dtype=_F64)))

def _requires_grad(t):
    with _raw():
        return _T.requires_grad.__get__(t)

class _ScaledLM(_torch.nn.Module):
    """Test double: the tiny model with logits scaled, so each token's loss depends strongly on its
    context; records, at every call, whether gradients were recorded and the training mode."""
    def __init__(self, inner, scale):
        super().__init__()
        self.inner = inner
        self.scale = scale
        self.calls = []
    def forward(self, *args, labels=None, **kwargs):
        raw = self.inner(*args, **kwargs).logits
        self.calls.append((_requires_grad(raw), self.inner.training))
        logits = raw * self.scale
        loss = None
        if labels is not None:
            loss = _F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                    labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return _Out(loss=loss, logits=logits)
    # include: delegate_to_inner

def _direct(inner, scale, ids, max_length, stride):
    """Token t is scored in the first window [b, b + max_length) that contains it, with the
    context ids[b:t]; computed here token by token through the KV cache, no label masking."""
    n, total, count, scored_up_to, b = _list.__len__(ids), 0.0, 0, 1, 0
    while b < n:
        e = b + max_length if b + max_length < n else n
        past, t = None, b
        while t < e - 1:  # feed ids[t], read the distribution of ids[t + 1]
            with _torch.no_grad():   # for speed only: the values are read below either way
                out = inner(input_ids=_VF.tensor([[ids[t]]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            if t + 1 >= scored_up_to:
                with _raw():
                    last = _T.detach(_T.select(_T.select(out.logits, 0, 0), 0, -1))
                    row = _T.tolist(_VF.log_softmax(_T.mul(_T.double(last), scale), -1))
                total -= row[ids[t + 1]]
                count += 1
            t += 1
        scored_up_to = scored_up_to if scored_up_to > e else e
        if e == n:
            break
        b += stride
    return total / count, count

_tok = _AutoTok.from_pretrained(helpers.TINY_DIR)
_inner = _AutoLM.from_pretrained(helpers.TINY_DIR, dtype=_torch.float32).eval()
with _raw():
    for _p in _inner.parameters():                        # trainable, so recorded gradients would show
        _T.requires_grad_(_p)
_model = _ScaledLM(_inner, 20.0)
_text = _EVAL[5][:500] + "\n\n" + _EVAL[6][:300]
_ids = [_int(_i) for _i in _tok(_text).input_ids]
assert 120 < _list.__len__(_ids) < 260
_checked = 0
for _L, _s in ((48, 16), (40, 40), (50, 30), (64, 63)):
    _model.calls.clear()
    _model.train()                                         # as a model might be after a training loop
    _r = sliding_window_perplexity(_model, _tok, _text, max_length=_L, stride=_s)
    _loss, _ppl, _n = _get(_r, "avg_loss"), _get(_r, "perplexity"), _get(_r, "n_tokens")
    assert _is_subclass(_float, _type(_loss)) and _is_subclass(_float, _type(_ppl)) and _is_subclass(_int, _type(_n)), (
        f"return avg_loss and perplexity as Python floats and n_tokens as a Python int, not tensors "
        f"(use .item() or float()); got {_type(_loss).__name__}, {_type(_ppl).__name__}, {_type(_n).__name__}")
    _loss, _ppl, _n = _float(_loss), _float(_ppl), _int(_n)
    _ref_loss, _ref_n = _direct(_inner, 20.0, _ids, _L, _s)
    assert _n == _ref_n, (
        f"max_length={_L}, stride={_s}: n_tokens {_n}, expected {_ref_n} (each token scored once)")
    # float32 batched vs float64 token-by-token with logits scaled by 20: 1e-4 relative is ample.
    assert _near(_loss, _ref_loss, 1e-4), (
        f"max_length={_L}, stride={_s}: avg_loss {_loss}, expected {_ref_loss} "
        "(score only the tokens no earlier window scored; sum losses and counts over windows, divide once)")
    assert 0 < _ppl < 1e300 and _near(_log(_ppl), _ref_loss, 0.0, 1e-3), (
        f"max_length={_L}, stride={_s}: perplexity must be exp of the overall average loss")
    assert _list.__len__(_model.calls) > 0, "the model was never called"
    assert [_c for _c in _model.calls if _c[0] is not False] == [], "run the windows without gradients"
    assert [_c for _c in _model.calls if _c[1] is not False] == [], "run the windows in eval mode: call model.eval() first"
    assert _model.inner.training is False, "leave the model in eval mode"
    _checked += 1
assert _checked == 4, "not every window and stride was checked"
for _L, _s, _rule in ((32, 33, "1 <= stride <= max_length"), (32, 0, "1 <= stride <= max_length"),
                      (1, 1, "max_length >= 2: a one-token window predicts nothing"),
                      (0, 1, "max_length >= 2")):
    try:
        sliding_window_perplexity(_model, _tok, _text, max_length=_L, stride=_s)
    except ValueError:
        continue
    raise AssertionError(f"stride={_s} with max_length={_L} must raise ValueError ({_rule})")
try:
    _out = sliding_window_perplexity(_model, _tok, "Hello", max_length=16, stride=8)
except ValueError:
    pass
else:
    raise AssertionError(f"a one-token text has nothing to predict: expected ValueError, got {_out!r:.100}")
### END HIDDEN TESTS

# %% [markdown]
# ---
# ## Speed, measured apart from quality
#
# Perplexity says how good the model's predictions are; latency and throughput say how fast it
# produces text. Keep the two measurements separate. The evaluation loop's run time depends on
# batch size, padding and text lengths, none of which a user of `generate` sees; and a quality
# number must not change because the machine was busy. When you later try a faster variant of a
# model (another precision, quantization), you will report both: how much faster, and what it
# cost in perplexity.
#
# The timing below is a fixed recipe: the course's reference prompt, greedy decoding, and
# `min_new_tokens = max_new_tokens`, so every run produces exactly the same number of new tokens;
# one untimed warm-up run (the first call pays one-off costs); then several timed runs, of which
# the median is reported. On CPU with the embedded model expect roughly 10 to 30 new tokens/s.

# %% [code]
prompt = tokenizer(REFERENCE_PROMPT, return_tensors="pt").to(DEVICE)
n_new = PROFILE.max_new_tokens

def reference_generate():
    with torch.inference_mode():
        return model.generate(**prompt, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)

output = reference_generate()
new_tokens = output.shape[1] - prompt["input_ids"].shape[1]
timing = helpers.repeat(reference_generate, repeats=PROFILE.repeats, warmup=1, device=DEVICE)
speed = {"model_id": MODEL_LABEL, "device": helpers.describe_device(DEVICE), "dtype": DTYPE_LABEL,
         "new_tokens": new_tokens, "repeats": timing["n"], "total_latency_s": timing["median"],
         "latency_iqr_s": timing["iqr"], "tokens_per_sec": new_tokens / timing["median"]}
RESULTS["speed"] = speed
print(f"continuation: {tokenizer.decode(output[0, prompt['input_ids'].shape[1]:], skip_special_tokens=True)!r}")
print(f"{new_tokens} new tokens | median latency {speed['total_latency_s']:.3f} s over {timing['n']} runs "
      f"(IQR {speed['latency_iqr_s']:.3f} s) | {speed['tokens_per_sec']:.1f} tokens/s")

# %% [markdown]
# ---
# ## Summary and artifacts
#
# The last cell gathers what you measured into two tables, quality and speed, kept apart as
# argued above, and a plot of sliding-window perplexity against the stride. They are written to
# `artifacts/` next to this notebook (`exercise2_quality.csv`, `exercise2_speed.csv`,
# `exercise2_sliding_window.png`).

# %% [code]
missing = [key for key in ("evaluation", "mean_of_means", "sliding", "speed") if key not in RESULTS]
if missing:
    raise NotImplementedError(f"run the cells above first (and complete the functions they call); missing: {missing}")
ev, mm, sl = RESULTS["evaluation"], RESULTS["mean_of_means"], RESULTS["sliding"]
quality_rows = [
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "eval texts, token-weighted",
     "n_tokens": ev["n_tokens"], "avg_loss": ev["avg_loss"], "perplexity": ev["perplexity"]},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "mixed lengths, mean of batch means (biased)",
     "n_tokens": mm["overall"]["n_tokens"], "avg_loss": mm["mean_of_means_loss"],
     "perplexity": math.exp(mm["mean_of_means_loss"])},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "mixed lengths, token-weighted",
     "n_tokens": mm["overall"]["n_tokens"], "avg_loss": mm["overall"]["avg_loss"], "perplexity": mm["overall"]["perplexity"]},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "long text, whole in one pass",
     "n_tokens": sl["whole"]["n_tokens"], "avg_loss": sl["whole"]["avg_loss"], "perplexity": sl["whole"]["perplexity"]},
] + [{"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL,
      "measure": f"long text, window {row['max_length_tokens']}, stride {row['stride_tokens']}",
      "n_tokens": row["n_tokens"], "avg_loss": row["avg_loss"], "perplexity": row["perplexity"]}
     for row in sl["rows"]]
quality = helpers.results_frame(quality_rows, columns=["model_id", "dtype", "measure", "n_tokens", "avg_loss", "perplexity"])
speed_table = helpers.results_frame([RESULTS["speed"]])
print(quality.to_string(index=False))
print()
print(speed_table.to_string(index=False))
helpers.save_table(quality, "exercise2_quality")
helpers.save_table(speed_table, "exercise2_speed")
figure = helpers.plot_metric([r["stride_tokens"] for r in sl["rows"]], [r["perplexity"] for r in sl["rows"]],
                             x_key="stride (tokens)", y_key="perplexity", label="sliding window",
                             title=f"Sliding window of {SLIDING['max_length']} tokens: {MODEL_LABEL}")
figure.axes[0].axhline(sl["whole"]["perplexity"], color="gray", linestyle="--", label="whole text in one pass")
figure.axes[0].legend()
helpers.save_figure(figure, "exercise2_sliding_window")
print("saved to", helpers.artifacts_dir())
