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

