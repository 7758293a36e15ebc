# %% [markdown]
# ---
# ## Part A4: prompt length in tokens (5 points)
#
# Generation has two phases. **Prefill** reads the whole prompt in one forward pass; **decode**
# then produces one token per step, each step attending to everything before it. A longer prompt
# costs more prefill and makes every decode step attend to more positions, so latency grows with
# the prompt. Models see **tokens**, not characters: a prompt "of 500 characters" can be 100
# tokens of English or 300 of code, so the sweep sets its lengths in tokens.
#
# First write `make_prompt(tokenizer, n_tokens, base_text=BASE_PROMPT)`: repeat `base_text`
# until it has enough tokens, keep the first `n_tokens` token ids and decode them back to text.
# (Re-encoding decoded text can merge or split a token at the cut, so the result may be off by one.)
#
# Then `run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats,
# use_cache=True)`: for each target length, build the prompt with `make_prompt`, time it
# `repeats` times with the **same** `max_new_tokens` and `use_cache` (the lengths are the
# settings compared: taking turns with `time_round_robin` is best, see above), and report
# the **median** of each metric (one slow run skews a mean) with the interquartile range (75th
# minus 25th percentile) as the spread. Return a DataFrame with one row per length and at least
# the columns `prompt_tokens` (measured on the prompt that was timed), `max_new_tokens`,
# `use_cache`, `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms`,
# `total_latency_s_iqr`, `tokens_per_sec_iqr`; draw latency vs prompt tokens and tokens/s vs
# prompt tokens with the IQR as error bars and save both (`helpers.plot_columns`, or
# `helpers.plot_metric` and `helpers.save_figure`).

# %% [solution id=make_prompt]
def make_prompt(tokenizer, n_tokens, base_text=BASE_PROMPT):
    """A prompt of about n_tokens tokens (within 2), made by repeating base_text. Returns a str."""
    ### BEGIN SOLUTION
    n_tokens = int(n_tokens)
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be 1 or more, got {n_tokens}")
    base = base_text.strip()
    per_copy = len(tokenizer(base, add_special_tokens=False).input_ids)
    long_text = " ".join([base] * (n_tokens // max(1, per_copy) + 2))  # repeat as text, then tokenize once
    ids = tokenizer(long_text, add_special_tokens=False).input_ids
    return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
    ### END SOLUTION


# %% [solution id=run_for_varied_lengths]
def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    """Time generate at several prompt lengths (in tokens), repeats runs each, medians reported.

    Returns a DataFrame, one row per length: prompt_tokens, max_new_tokens, use_cache, repeats,
    total_latency_s, tokens_per_sec, avg_latency_per_token_ms (medians) and *_iqr spreads.
    Saves prompt_length_latency.png and prompt_length_throughput.png.
    """
    ### BEGIN SOLUTION
    targets = [int(target) for target in lengths_tokens]
    prompts = [make_prompt(tokenizer, target) for target in targets]

    def arm(prompt):  # one timed call of this length; time_round_robin says when to warm up
        return lambda warmup: time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=use_cache,
                                            warmup=warmup)

    timings = time_round_robin([arm(prompt) for prompt in prompts], repeats)  # lengths take turns
    rows = []
    for target, prompt, runs in zip(targets, prompts, timings):
        row = {"target_tokens": int(target),
               "prompt_tokens": len(tokenizer(prompt).input_ids),
               "max_new_tokens": int(max_new_tokens), "use_cache": use_cache, "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(runs))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        helpers.plot_columns(frame, "prompt_tokens", key, name,
                             title=f"{max_new_tokens} new tokens, use_cache={use_cache}, median of {repeats}")
        plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: a table with one row per length in `PROFILE.prompt_lengths_tokens`; `prompt_tokens`
# within a token or two of each target; latency rising with the prompt and tokens/s falling.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
length_sweep = run_for_varied_lengths(model, tokenizer, PROFILE.prompt_lengths_tokens,
                                      PROFILE.max_new_tokens, PROFILE.repeats)
length_sweep

# %% [tests id=test_varied_lengths points=1]
"""Check that make_prompt counts tokens and run_for_varied_lengths returns one row per length."""
for _n in (10, 120):
    _count = len(tokenizer(make_prompt(tokenizer, _n)).input_ids)
    assert abs(_count - _n) <= 2, f"make_prompt(tokenizer, {_n}) gave {_count} tokens: cut token ids, not characters"
with scratch_folder():
    _frame = run_for_varied_lengths(model, tokenizer, [8, 24], 3, 1)
assert len(_frame) == 2, "one row per target length"
for _col in ("prompt_tokens", "total_latency_s", "tokens_per_sec", "total_latency_s_iqr", "tokens_per_sec_iqr"):
    assert _col in _frame.columns, f"missing column {_col!r}"
plt.close("all")

# %% [tests id=test_varied_lengths_hidden points=4]
"""Check prompt lengths in tokens, base_text, fixed settings across lengths, medians, IQRs, columns, plots."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module (a replaced Path.is_file or os.path.exists cannot answer), results read
# as real numbers. The plots are written into an empty scratch folder, so only this call can pass.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers
from helpers.texts import BASE_PROMPT as _BASE

_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


# include: column_of_numbers


def _n_tokens(tokenizer, text):
    _ids = tokenizer(text).input_ids
    assert _type(_ids) is _list
    return _list.__len__(_ids)


# include: is_png


_posix, _clock = _fresh("posix"), _fresh("time")
_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
for _n in (1, 7, 64, 300, 700):
    _p = make_prompt(_tok, _n)
    assert _type(_p) is _str, "make_prompt must return a str"
    _count = _n_tokens(_tok, _p)
    assert -2 <= _count - _n <= 2, f"make_prompt(tokenizer, {_n}) has {_count} tokens; the target counts tokens"
assert make_prompt(_tok, 300).split()[:3] == _BASE.split()[:3], "build the prompt by repeating BASE_PROMPT"
_other = "Cats sleep for most of the day and hunt at night."
_p = make_prompt(_tok, 40, base_text=_other)
assert _type(_p) is _str and _p.split()[:4] == _other.split()[:4] and -2 <= _n_tokens(_tok, _p) - 40 <= 2, \
    "make_prompt must repeat the base_text it is given (the argument), not always BASE_PROMPT"

_saved_time_generate = time_generate
_calls = []
_latencies = (1.0, 1.0, 10.0)  # per length: the median is 1 s, the mean 4 s


# The latency of a run depends on its prompt and on how many runs of that prompt came before, never on
# the order of the lengths: a sweep that interleaves the lengths (round-robin) is as right as one that
# times each length in turn.
def _nth_run(key):
    return _list.__len__([_c for _c in _calls if _c["key"] == key])


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _n = _n_tokens(tokenizer, prompt)
    _latency = _latencies[_nth_run(_n) % 3]
    _list.append(_calls, {"key": _n, "n": _n, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "use_cache": use_cache})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


# include: enter_scratch_dir
try:
    _frame = run_for_varied_lengths(None, _tok, [16, 48, 160], 5, 3, use_cache=False)
    _plots = [_is_png(_scratch + "/artifacts/" + _f) for _f in ("prompt_length_latency.png", "prompt_length_throughput.png")]
finally:
    time_generate = _saved_time_generate
    # include: leave_scratch_dir
assert _list.__len__(_calls) == 9, f"3 lengths x 3 repeats = 9 timed runs through time_generate, got {_list.__len__(_calls)}"
for _c in _calls:
    assert _c["max_new_tokens"] == 5, "max_new_tokens must be the same at every length"
    assert _c["use_cache"] is False, "use_cache must be the same at every length"
_ns = [_c["n"] for _c in _calls]
_per_length = {}
for _n in _ns:
    _per_length[_n] = _per_length.get(_n, 0) + 1
_lengths = _list(_per_length)
_list.sort(_lengths)
assert _list.__len__(_lengths) == 3 and [_per_length[_n] for _n in _lengths] == [3, 3, 3] and \
    -2 <= _lengths[0] - 16 <= 2 and -2 <= _lengths[1] - 48 <= 2 and -2 <= _lengths[2] - 160 <= 2, \
    f"prompt token counts per run were {_ns}: build each prompt to its target length in tokens, 3 runs each"
_lat = _column(_frame, "total_latency_s")
assert _lat == [1.0, 1.0, 1.0], f"report the median over repeats (latencies 1, 1, 10 s give 1 s), got {_lat}"
assert _column(_frame, "tokens_per_sec") == [5.0, 5.0, 5.0], "report the median tokens_per_sec"
_measured = _column(_frame, "prompt_tokens")
assert -2 <= _measured[0] - 16 <= 2 and -2 <= _measured[2] - 160 <= 2, \
    "prompt_tokens must be the measured prompt length in tokens"
assert _plots == [True, True], \
    "save both plots (helpers.plot_columns, or helpers.save_figure): artifacts/prompt_length_latency.png and prompt_length_throughput.png"

# Second run: 8 repeats per length, whose 25th and 75th percentiles are the same under every usual
# definition; make_prompt replaced by one that overshoots by 6 tokens, so prompt_tokens must be
# measured; the figures handed to helpers.save_figure are inspected for error bars.
_student_make_prompt, _saved_save_figure = make_prompt, _helpers.save_figure
_base_ids = _tok(_BASE, add_special_tokens=False).input_ids


def make_prompt(tokenizer, n_tokens, base_text=_BASE):
    return _tok.decode((_base_ids * 40)[:_int(n_tokens) + 6])


def _latency(first_length, nth_run):
    """Length 1: seven runs of 1 s and one of 10 s (median 1, IQR 0); length 2: 1, 5, 1, 5... (median 3, IQR 4)."""
    if first_length:
        return 10.0 if nth_run == 7 else 1.0
    return 1.0 if nth_run % 2 == 0 else 5.0


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _n = _n_tokens(tokenizer, prompt)
    _lat_s = _latency(_n < 25, _nth_run(_n))  # the prompts have 16 and 36 tokens (10 and 30, plus 6)
    _list.append(_calls, {"key": _n, "n": _n})
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _lat_s, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _lat_s,
            "avg_latency_per_token_ms": 1000.0 * _lat_s / _tokens, "prompt_tokens": _n}


def _save_figure_spy(figure, name, *args, **kwargs):
    _bars = 0
    for _ax in figure.axes:
        for _container in _ax.containers:
            if _name(_type(_container)) == "ErrorbarContainer" and _container.has_yerr is True:
                _bars += 1
    _list.append(_saved_figures, _bars)
    return _saved_save_figure(figure, name, *args, **kwargs)


_calls, _saved_figures = [], []
_helpers.save_figure = _save_figure_spy
_scratch = _home + "/.hidden-test-" + _str(_clock.perf_counter_ns())
_posix.mkdir(_scratch)
_posix.chdir(_scratch)
try:
    _frame = run_for_varied_lengths(None, _tok, [10, 30], 5, 8, use_cache=False)
finally:
    time_generate, make_prompt, _helpers.save_figure = _saved_time_generate, _student_make_prompt, _saved_save_figure
    _posix.chdir(_home)
    _plt.close("all")
    _shutil.rmtree(_scratch, ignore_errors=True)
assert _list.__len__(_calls) == 16, f"2 lengths x 8 repeats = 16 timed runs, got {_list.__len__(_calls)}"
for _key in ("prompt_tokens", "max_new_tokens", "use_cache", "total_latency_s", "tokens_per_sec",
             "avg_latency_per_token_ms", "total_latency_s_iqr", "tokens_per_sec_iqr"):
    assert _key in _frame.columns, f"missing column {_key!r}"
_measured = _column(_frame, "prompt_tokens")
_timed = _list({_c["n"] for _c in _calls})
_list.sort(_timed)
assert _list.__len__(_timed) == 2 and -1 <= _measured[0] - _timed[0] <= 1 and -1 <= _measured[1] - _timed[1] <= 1, \
    f"prompt_tokens must be measured on the prompt that was timed ({_timed} tokens " \
    f"here), not copied from the target length; got {_measured}"


def _near(values, expected):
    if _list.__len__(values) != _list.__len__(expected):
        return False
    for _v, _e in zip(values, expected):
        if not -1e-9 <= _v - _e <= 1e-9:
            return False
    return True


assert _column(_frame, "max_new_tokens") == [5, 5] and _column(_frame, "use_cache") == [0, 0], \
    "the max_new_tokens and use_cache columns must hold the settings used (5 and False here)"
assert _near(_column(_frame, "total_latency_s"), [1.0, 3.0]) and _near(_column(_frame, "tokens_per_sec"), [5.0, 3.0]) \
    and _near(_column(_frame, "avg_latency_per_token_ms"), [200.0, 600.0]), \
    "report the median of every metric over the repeats (total_latency_s, tokens_per_sec, avg_latency_per_token_ms)"
_iqr = _column(_frame, "total_latency_s_iqr") + _column(_frame, "tokens_per_sec_iqr")
assert _near(_iqr, [0.0, 4.0, 0.0, 4.0]), \
    f"the *_iqr columns must hold the interquartile range (75th minus 25th percentile) of the repeats: " \
    f"[0, 4] for latency and for tokens/s here, got {_iqr}"
assert _list.__len__(_saved_figures) >= 2 and 0 not in _saved_figures, \
    "draw each plot with the IQR as error bars (helpers.plot_columns does, or helpers.plot_metric(..., yerr=...)) and save it"
### END HIDDEN TESTS

