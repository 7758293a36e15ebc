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

