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

