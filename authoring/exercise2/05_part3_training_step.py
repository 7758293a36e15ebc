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

