# %% [markdown]
# ---
# ## Part B3: batching (2 points)
#
# A batch of B prompts shares every weight read: one forward pass serves B sequences, so
# **total throughput** (new tokens of all sequences per second) rises with B, up to the point
# where the arithmetic, not the memory reads, is the bottleneck. But every sequence in a batch
# finishes when the batch finishes, so the **latency per sample** (how long one request waits)
# does not fall, and usually rises. Prompts are padded on the **left**.
#
# Write `measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats)`: for
# batch size B use the first B prompts (cycling through `prompts` if B is larger), left padding,
# `time_generate` `repeats` times, medians. Return a DataFrame with `batch_size`,
# `total_latency_s`, `tokens_per_sec` (total over the batch), `per_sample_latency_s` (the time a
# request waits: the batch latency), `amortized_latency_per_sample_s` (batch latency / B),
# `max_new_tokens`; plot both throughput and per-sample latency against batch size and save the
# figure as `batching`.

# %% [solution id=measure_batched]
def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """Median throughput and per-sample latency per batch size. Returns a DataFrame."""
    ### BEGIN SOLUTION
    original_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: generation continues from the last position
    rows = []
    sizes = [int(size) for size in batch_sizes]

    def arm(size):  # one timed call of this batch size
        batch = [prompts[i % len(prompts)] for i in range(int(size))]
        return lambda warmup: time_generate(model, tokenizer, batch, max_new_tokens, warmup=warmup)

    try:
        timings = time_round_robin([arm(size) for size in sizes], repeats)  # batch sizes take turns
        for size, runs in zip(sizes, timings):
            row = {"batch_size": int(size), "max_new_tokens": int(max_new_tokens), "repeats": int(repeats),
                   **helpers.medians_with_iqr(runs, ("total_latency_s", "tokens_per_sec"))}
            row["per_sample_latency_s"] = row["total_latency_s"]
            row["amortized_latency_per_sample_s"] = row["total_latency_s"] / int(size)
            rows.append(row)
    finally:
        tokenizer.padding_side = original_side
    frame = pd.DataFrame(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    helpers.plot_columns(frame, "batch_size", "tokens_per_sec", "batching", title="total throughput", ax=axes[0])
    helpers.plot_columns(frame, "batch_size", "per_sample_latency_s", "batching", title="latency per request",
                         iqr_key="total_latency_s_iqr", ax=axes[1])
    helpers.save_figure(figure, "batching")
    plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: one row per batch size in `PROFILE.batch_sizes`; tokens/s should rise with the batch.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
batching = measure_batched(model, tokenizer, ABLATION_PROMPTS, PROFILE.batch_sizes, PROFILE.max_new_tokens,
                           TRY_REPEATS)
batching

# %% [tests id=test_batched points=1]
"""Check batch contents, left padding, identical limits, medians, the per-sample columns and the saved figure."""
_saved_time_generate = time_generate
_calls = []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    _calls.append(dict(n=len(_prompts), side=tokenizer.padding_side, max_new_tokens=max_new_tokens))
    # The third run of each batch size is 3x slower: medians are unchanged, means are not.
    latency = 0.5 * len(_prompts) * (3.0 if sum(1 for _c in _calls if _c["n"] == len(_prompts)) == 3 else 1.0)
    tokens = len(_prompts) * int(max_new_tokens)
    return {"total_latency_s": latency, "tokens_generated": tokens, "tokens_per_sec": tokens / latency,
            "avg_latency_per_token_ms": 1000.0 * latency / tokens}


_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
_tok.padding_side = "right"
try:
    with scratch_folder() as _folder:
        _frame = measure_batched(None, _tok, ["p1", "p2 longer"], [1, 2, 4], 4, 3)
        _figure_saved = (_folder / "artifacts" / "batching.png").is_file()
finally:
    time_generate = _saved_time_generate
    plt.close("all")
assert sorted(_c["n"] for _c in _calls) == [1, 1, 1, 2, 2, 2, 4, 4, 4], \
    "batch size B must time B prompts, repeats times each (in any order)"
assert {_c["side"] for _c in _calls} == {"left"}, "batches must be padded on the left (decoder-only model)"
assert {_c["max_new_tokens"] for _c in _calls} == {4}, "max_new_tokens must be the same for every batch size"
assert _tok.padding_side == "right", "restore the tokenizer's padding side afterwards"
assert list(_frame["total_latency_s"]) == [0.5, 1.0, 2.0], \
    "total_latency_s is the median batch latency over the repeats (not the mean)"
assert list(_frame["per_sample_latency_s"]) == [0.5, 1.0, 2.0], "per_sample_latency_s is the batch latency"
assert list(_frame["amortized_latency_per_sample_s"]) == [0.5, 0.5, 0.5], "amortized latency is batch latency / B"
assert list(_frame["tokens_per_sec"]) == [8.0, 8.0, 8.0], "tokens_per_sec is the median total throughput"
assert _figure_saved, "save the figure with helpers.save_figure(figure, \"batching\") (artifacts/batching.png)"

# %% [tests id=test_batched_hidden points=1]
"""Check batching on other prompts and sizes: batches, padding, medians, every column, the plotted metrics."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module, the frame's columns read as lists and each value as a real number. The
# figure is read from what is saved (every Figure.savefig of the call), in an empty scratch folder.
import importlib.util as _ilu
import matplotlib.figure as _mfigure
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


# include: true_text


# include: column_of_numbers


def _number_or_none(value):
    for _c in _mro(_type(value)):
        if _c is _float:
            return _float.__float__(value)
        if _c is _int:
            return _int.__int__(value)
        if _name(_c) == "generic" and not _flags(_c) & 512:  # numpy.generic, a C type
            return _number_or_none(_c.item(value))
    return None


def _proportional(series, values):
    """Whether a plotted series is values times one positive factor (a unit change is allowed)."""
    if _list.__len__(series) != _list.__len__(values):
        return False
    _ratio, _i = None, 0
    while _i < _list.__len__(values):
        if series[_i] is None or not series[_i] > 0:
            return False
        if _ratio is None:
            _ratio = series[_i] / values[_i]
        elif not -1e-6 * _ratio <= series[_i] / values[_i] - _ratio <= 1e-6 * _ratio:
            return False
        _i += 1
    return True


def _plotted(figure):
    """Every series a figure shows: each line's y values, each scatter's y offsets, each axes' bar heights."""
    _found = []
    for _ax in figure.axes:
        for _line in _ax.lines:
            _list.append(_found, [_number_or_none(_v) for _v in _line.get_ydata()])
        for _points in _ax.collections:
            if _name(_type(_points)) == "PathCollection":
                _list.append(_found, [_number_or_none(_xy[1]) for _xy in _points.get_offsets()])
        _bars = [_number_or_none(_p.get_height()) for _p in _ax.patches if _name(_type(_p)) == "Rectangle"]
        if _bars:
            _list.append(_found, _bars)
    return _found


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_PROMPTS = ["alpha", "beta gamma", "delta epsilon zeta"]
_EXPECTED_BATCH = {1: ["alpha"], 2: ["alpha", "beta gamma"],
                   5: ["alpha", "beta gamma", "delta epsilon zeta", "alpha", "beta gamma"]}
_BASE = {1: 0.5, 2: 0.75, 5: 1.25}  # seconds per batch size: not proportional to B
# The n-th run of a batch size takes _RUNS[n] times its base, whatever order the sizes are timed in:
# medians 4 x base (2, 3 and 5 s), means 4.2 x, fastest 1 x, first runs 2 x.
_RUNS = (2.0, 1.0, 4.0, 9.0, 5.0)
_saved_time_generate, _saved_savefig = time_generate, _mfigure.Figure.savefig
_calls, _figures = [], []


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _batch = [_text(prompt, "prompt")] if _type(prompt) is _str else [_text(_p, "prompt") for _p in prompt]
    _size = _list.__len__(_batch)
    _n = _list.__len__([_c for _c in _calls if _c["size"] == _size])
    _list.append(_calls, {"size": _size, "batch": _batch, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "side": _text(tokenizer.padding_side, "tokenizer.padding_side")})
    _latency = _BASE.get(_size, 100.0) * _RUNS[_n % 5]
    _tokens = _size * _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


def _savefig_spy(figure, *args, **kwargs):
    _list.append(_figures, figure)
    return _saved_savefig(figure, *args, **kwargs)


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_tok.padding_side = "left"  # the side the tokenizer had before: to be restored
# include: enter_scratch_dir
_mfigure.Figure.savefig = _savefig_spy
try:
    _frame = measure_batched(None, _tok, _list(_PROMPTS), [1, 2, 5], 6, 5)
    _series = []
    for _f in _figures:
        _series = _series + _plotted(_f)
    _saved = _is_png(_scratch + "/artifacts/batching.png")
    _sides = [_tok.padding_side]
    # A second, small run from a tokenizer padding on the right: restored, not left on the left.
    _calls_main, _calls = _calls, []
    _tok.padding_side = "right"
    measure_batched(None, _tok, ["only one"], [1], 2, 1)
    _list.append(_sides, _tok.padding_side)
    _calls = _calls_main
finally:
    time_generate, _mfigure.Figure.savefig = _saved_time_generate, _saved_savefig
    # include: leave_scratch_dir
assert [_text(_s, "tokenizer.padding_side") for _s in _sides] == ["left", "right"], \
    f"restore the padding side the tokenizer had before ('left', then 'right' here), got {_sides}"
assert _list.__len__(_calls) == 15, f"3 batch sizes x 5 repeats = 15 timed runs, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["side"] == "left", "pad every batch on the left (decoder-only model)"
    assert _c["max_new_tokens"] == 6, \
        "every batch size must time the max_new_tokens it is given (6 here), the same for all"
    assert _c["batch"] == _EXPECTED_BATCH.get(_c["size"]), \
        f"batch size B must time the first B prompts, cycling through them when B is larger (from {_PROMPTS}: " \
        f"{_EXPECTED_BATCH}), got {_c['batch']}"
_per_size = [_list.__len__([_c for _c in _calls if _c["size"] == _b]) for _b in (1, 2, 5)]
assert _per_size == [5, 5, 5], f"each batch size must be timed `repeats` times (5), got {_per_size} for sizes 1, 2, 5"
_sizes = _column(_frame, "batch_size")
_order = _list(_sizes)
_list.sort(_order)
assert _order == [1, 2, 5], f"one row per batch size (1, 2, 5), got {_sizes}"
_want = {"total_latency_s": {1: 2.0, 2: 3.0, 5: 5.0}, "per_sample_latency_s": {1: 2.0, 2: 3.0, 5: 5.0},
         "amortized_latency_per_sample_s": {1: 2.0, 2: 1.5, 5: 1.0}, "tokens_per_sec": {1: 3.0, 2: 4.0, 5: 6.0},
         "max_new_tokens": {1: 6, 2: 6, 5: 6}}
_what = {"total_latency_s": "the median batch latency over the repeats",
         "per_sample_latency_s": "the median batch latency (how long each request waits)",
         "amortized_latency_per_sample_s": "the median batch latency / B",
         "tokens_per_sec": "the median total throughput of the batch (new tokens of every sequence per second)",
         "max_new_tokens": "the limit used (6)"}
_checked = 0
for _key in ("total_latency_s", "per_sample_latency_s", "amortized_latency_per_sample_s", "tokens_per_sec",
             "max_new_tokens"):
    _got = _column(_frame, _key)
    _i = 0
    while _i < _list.__len__(_sizes):
        _expected = _want[_key][_sizes[_i]]
        assert -1e-9 * _expected <= _got[_i] - _expected <= 1e-9 * _expected, \
            f"{_key} must be {_what[_key]}: expected {_expected} at batch size {_sizes[_i]}, got {_got[_i]}"
        _i += 1
    _checked += 1
assert _checked == 5
assert _saved, "save the figure with helpers.save_figure(figure, \"batching\") (artifacts/batching.png)"
_throughput = [3.0, 4.0, 6.0]
_latency = [2.0, 3.0, 5.0]
assert [_s for _s in _series if _proportional(_s, _throughput)] and \
    [_s for _s in _series if _proportional(_s, _latency)], \
    "the saved figure must plot both the total throughput (tokens/s) and the per-sample latency " \
    "against the batch size"
### END HIDDEN TESTS

