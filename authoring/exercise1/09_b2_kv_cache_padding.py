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

