# %% [markdown]
# ---
# ## Part A5: numeric precision (3 points)
#
# Same prompt, same `max_new_tokens`, same cache setting; only the precision changes. On a GPU,
# float16 and bfloat16 usually beat float32 (half the bytes, faster tensor cores). On a CPU,
# float16 falls back to float32 (the label shows it) and bfloat16 depends on the processor's
# support for it. Write `run_varied_precision(candidates, device, prompt, max_new_tokens,
# repeats, precisions=("float32", "float16", "bfloat16"))`: load each precision with your loader,
# on `device`, time it `repeats` times with `time_generate`, and return a DataFrame with one row
# per entry of `precisions`, in order: `requested_precision` (the request as given), `dtype_label`,
# the median `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms`, and `max_new_tokens`.
# Draw a bar chart of tokens/s and save it as `precision_sweep`.

# %% [solution id=run_varied_precision]
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats,
                         precisions=("float32", "float16", "bfloat16")):
    """Median generate timings per precision on one prompt. Returns a DataFrame (one row per request)."""
    ### BEGIN SOLUTION
    loaded = []  # every precision's model first (a few hundred MB each), so that the timed runs take turns
    for precision in tqdm(list(precisions), desc="precisions"):
        tok, mdl, model_id, label = load_model_and_tokenizer(candidates, precision, device)
        loaded.append((precision, tok, mdl, model_id, label))

    def arm(precision, tok, mdl):
        return lambda warmup: time_generate(mdl, tok, prompt, max_new_tokens, warmup=warmup)

    timings = time_round_robin([arm(precision, tok, mdl) for precision, tok, mdl, _, _ in loaded], repeats)
    rows = []
    for (precision, tok, mdl, model_id, label), runs in zip(loaded, timings):
        row = {"requested_precision": precision, "dtype_label": label, "model_id": helpers.model_label(model_id),
               "device": str(device), "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(runs))
        rows.append(row)
    del loaded, timings
    frame = pd.DataFrame(rows)
    figure = helpers.plot_bars([f"{r} -> {l}" for r, l in zip(frame["requested_precision"], frame["dtype_label"])],
                               frame["tokens_per_sec"], yerr=frame["tokens_per_sec_iqr"], y_key="tokens_per_sec",
                               title=f"{max_new_tokens} new tokens, median of {repeats}")
    helpers.save_figure(figure, "precision_sweep")
    plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: three rows; on a CPU the float16 row reads `float32 (forced on CPU)`.

# %% [code]
precision_sweep = run_varied_precision(CANDIDATES, DEVICE, REFERENCE_PROMPT, PROFILE.max_new_tokens, TRY_REPEATS)
precision_sweep

# %% [tests id=test_varied_precision points=1]
"""Check that run_varied_precision returns one labelled row per precision."""
with scratch_folder():
    _frame = run_varied_precision([str(helpers.TINY_DIR)], "cpu", "Hello", 2, 1)
plt.close("all")
assert list(_frame["requested_precision"]) == ["float32", "float16", "bfloat16"], "one row per requested precision"
assert list(_frame["dtype_label"])[1] == "float32 (forced on CPU)", "on CPU, float16 must show its fallback label"

# %% [tests id=test_varied_precision_hidden points=2]
"""Check every arm's prompt, limits, dtype and device, the precisions asked for, the columns, medians, the chart."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, dtypes read by a C-level descriptor,
# files through a fresh instance of the os module, results read as real numbers and strings.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
import torch as _torch
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))
_dtype_of = _torch._C.TensorBase.dtype.__get__
_device_of = _torch._C.TensorBase.device.__get__


# include: fresh_module


# include: true_number


# include: true_text


def _column(frame, key, read):
    assert key in frame.columns, f"missing column {key!r}"
    _values = frame[key].tolist()
    assert _type(_values) is _list
    return [read(_v, key) for _v in _values]


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_saved_time_generate = time_generate
_calls = []
_latencies = (2.0, 2.0, 20.0)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    for _p in model.parameters():
        _dtype, _device = _str(_dtype_of(_p)), _str(_device_of(_p).type)
        break
    # The n-th run of a model gets the n-th latency, whatever order the precisions are timed in
    # (one after another, or taking turns).
    _latency = _latencies[_list.__len__([_c for _c in _calls if _c["model"] is model]) % 3]
    _list.append(_calls, {"prompt": _text(prompt, "prompt"), "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "settings": (use_cache, _dict.__repr__(kwargs)), "dtype": _dtype, "device": _device,
                          "model": model})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


# include: enter_scratch_dir
try:
    _frame = run_varied_precision([_str(_helpers.TINY_DIR)], "cpu", "Same prompt for all", 4, 3)
    _chart = _is_png(_scratch + "/artifacts/precision_sweep.png")
    # Only the precisions asked for, on the device asked for ("meta": weights without data).
    _calls_sweep, _calls = _calls, []
    _frame_meta = run_varied_precision([_str(_helpers.TINY_DIR)], "meta", "Same prompt for all", 4, 1,
                                       precisions=("bfloat16",))
    _calls_meta, _calls = _calls, _calls_sweep
finally:
    time_generate = _saved_time_generate
    # include: leave_scratch_dir
assert _list.__len__(_calls) == 9, f"3 precisions x 3 repeats = 9 timed runs, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["prompt"] == "Same prompt for all", "every arm must time the same prompt"
    assert _c["max_new_tokens"] == 4, "every arm must use the same max_new_tokens"
    assert _c["settings"] == _calls[0]["settings"], "every arm must use the same generate settings"
_models = []
for _c in _calls:
    if not [_m for _m in _models if _m is _c["model"]]:
        _list.append(_models, _c["model"])
_runs = [[_c["dtype"] for _c in _calls if _c["model"] is _m] for _m in _models]
assert _runs == [["torch.float32"] * 3, ["torch.float32"] * 3, ["torch.bfloat16"] * 3], \
    "the models timed must be float32, float32 (float16 forced on CPU) and bfloat16, 3 runs each"
assert _column(_frame, "dtype_label", _text) == ["float32", "float32 (forced on CPU)", "bfloat16"], "wrong dtype labels"
assert _column(_frame, "total_latency_s", _num) == [2.0, 2.0, 2.0], "report the median latency over repeats"
assert _column(_frame, "requested_precision", _text) == ["float32", "float16", "bfloat16"], \
    "requested_precision must hold each request, in order"
assert _column(_frame, "tokens_per_sec", _num) == [2.0, 2.0, 2.0] and \
    _column(_frame, "avg_latency_per_token_ms", _num) == [500.0, 500.0, 500.0], \
    "report the median tokens_per_sec and avg_latency_per_token_ms over repeats"
assert _column(_frame, "max_new_tokens", _num) == [4, 4, 4], "the max_new_tokens column must hold the limit used (4)"
assert _chart, "save the chart with helpers.save_figure as artifacts/precision_sweep.png"
assert _list.__len__(_calls_meta) == 1 and _column(_frame_meta, "requested_precision", _text) == ["bfloat16"], \
    "time only the precisions passed in `precisions`, one row each"
assert _calls_meta[0]["dtype"] == "torch.bfloat16" and _calls_meta[0]["device"] == "meta", \
    f"load each precision on the device passed in (here 'meta'), got a model on {_calls_meta[0]['device']!r}"
### END HIDDEN TESTS

