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

