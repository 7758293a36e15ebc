# %% [markdown]
# ---
# ## Part A6: prefill and decode, measured apart (7 points)
#
# Part A3 timed a whole `generate` call, and Part A4 saw it grow with the prompt. A user
# feels the two phases of Part A4 separately: **time to first token** (TTFT, prompt in to the
# first new token out: the prefill and the first step) is the wait before anything appears, and
# **time per output token** (TPOT, the gap between two consecutive new tokens: one decode step)
# is how fast the text then flows. Serving systems report both, because a change can help one and
# hurt the other.
#
# **One streamed call, not two calls.** `generate(..., streamer=s)` calls `s.put(ids)` first
# with the prompt's ids, then once per new token (a tensor of the new token's id, batch size 1),
# then `s.end()`. A streamer that reads the clock in `put` sees every token arrive, from a single
# run. Timing two calls instead (one with 1 new token, one with N) and subtracting is worse: they
# are two separate runs, so the prefill is paid twice; whatever else the machine does between them
# (another process, a frequency change) lands in one and not the other; and the difference of two
# noisy numbers is noisier than either, without telling you anything about single steps (a median
# needs the individual gaps).
#
# The rules of Part A3 hold: one untimed warm-up call unless `warmup=False`,
# `torch.inference_mode()` around the timed call, inputs on `model.device`, greedy decoding with
# `min_new_tokens = max_new_tokens`, extra keyword arguments passed to `generate`, and
# `time.perf_counter()` with synchronisation: right before the clock starts, right after the
# timed `generate` returns, and **inside `put` before the clock is read**, because on a GPU a token
# is ready when its work is done, not when it was queued.
#
# Write `time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True,
# warmup=True, **generate_kwargs)` for one prompt (a str, batch size 1) and `max_new_tokens` of 2
# or more. It makes one timed `generate` call with a streamer and returns a dict with at least:
#
# * `ttft_s`: from the clock start (after the synchronisation right before the timed `generate`
#   is called) to the arrival of the **first new token** at the streamer, in seconds. The first
#   `put` is the prompt, not a token: it does not count;
# * `tpot_ms`: the **median** of the gaps between consecutive new-token arrivals, in
#   milliseconds: N new tokens give N - 1 gaps, and the wait for the first token is not one of
#   them (it is TTFT). The median, because one slow step (a page fault, another process) skews a mean;
# * `decode_tokens_per_sec`: `1000 / tpot_ms`, the steady decode rate of a typical step (not
#   `(N - 1) / sum(gaps)`, a mean rate that one slow step drags down);
# * `total_latency_s`: from the same clock start to the end of the timed call (synchronised);
# * `tokens_generated`: the new tokens only (N), never the prompt's;
# * `prompt_tokens`: the prompt's length in tokens, as given to `generate`.
#
# `transformers.generation.BaseStreamer` is the base class for a streamer (methods `put` and
# `end`); any object with those two methods works.
#
# Then write `run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens,
# repeats)`: build each prompt with `make_prompt`, and compare the lengths **fairly**: first warm
# each length up once (one untimed call, or `warmup=True` on its first timed run), then
# **interleave** the timed runs round-robin, repeat r of every length before repeat r + 1 of any,
# with `warmup=False`, so that a noisy minute hits every length alike instead of spoiling one.
# Report, per length and in the order given, the **median** over the `repeats` timed runs and the
# interquartile range. Return a DataFrame with one row per length and at least the columns
# `prompt_tokens` (measured on the prompt that was timed), `max_new_tokens`, `ttft_s`, `tpot_ms`,
# `decode_tokens_per_sec`, `ttft_s_iqr`, `tpot_ms_iqr`. Draw TTFT and TPOT against prompt
# tokens with the IQR as error bars and save them as `prefill_decode_ttft` and
# `prefill_decode_tpot` (`helpers.plot_columns`).

# %% [solution id=time_prefill_decode]
def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Time the prefill and the decode steps of one greedy generate call, from one streamed run.

    prompt: one str (batch size 1). max_new_tokens: 2 or more (forced with min_new_tokens).
    use_cache and generate_kwargs are passed to generate; warmup=False skips the untimed warm-up.
    Returns a dict: ttft_s (clock start to the first new token at the streamer, s), tpot_ms (median
    of the N-1 gaps between new-token arrivals, ms), decode_tokens_per_sec (1000 / tpot_ms),
    total_latency_s (s), tokens_generated (new tokens only), prompt_tokens.
    """
    ### BEGIN SOLUTION
    from transformers.generation.streamers import BaseStreamer

    if int(max_new_tokens) < 2:
        raise ValueError(f"max_new_tokens must be 2 or more (TPOT needs two new tokens), got {max_new_tokens}")
    device = _model_device(model)

    class ArrivalClock(BaseStreamer):
        """Notes the time each new token reaches the streamer (after a device sync)."""

        def __init__(self):
            self.prompt_seen, self.arrivals_s = False, []

        def put(self, value):
            if not self.prompt_seen:  # generate's first put is the prompt
                self.prompt_seen = True
                return
            helpers.synchronize(device)  # on a GPU the token is ready when its work is done
            now = time.perf_counter()
            self.arrivals_s.extend([now] * int(value.numel()))  # batch size 1: one token per put

        def end(self):
            pass

    encoded = tokenizer(prompt, return_tensors="pt")
    inputs = {key: value.to(device) for key, value in encoded.items()}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings = dict(max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                    do_sample=False, use_cache=use_cache, pad_token_id=pad_id)
    settings.update(generate_kwargs)
    clock = ArrivalClock()
    with torch.inference_mode():
        if warmup:
            model.generate(**inputs, **settings)  # not timed
        helpers.synchronize(device)
        start = time.perf_counter()
        output = model.generate(**inputs, **settings, streamer=clock)
        helpers.synchronize(device)
        end = time.perf_counter()
    arrivals = clock.arrivals_s
    gaps_s = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    tpot_ms = 1000.0 * statistics.median(gaps_s)
    prompt_len = int(inputs["input_ids"].shape[1])
    return {
        "ttft_s": arrivals[0] - start,
        "tpot_ms": tpot_ms,
        "decode_tokens_per_sec": 1000.0 / tpot_ms,
        "total_latency_s": end - start,
        "tokens_generated": int(output.shape[1]) - prompt_len,
        "prompt_tokens": prompt_len,
    }
    ### END SOLUTION


# %% [solution id=run_prefill_decode_for_lengths]
def run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats):
    """TTFT and TPOT at several prompt lengths (in tokens): each length warmed up once, then the timed
    runs interleaved round-robin; medians and IQRs reported.

    Returns a DataFrame, one row per length in the order given: prompt_tokens, max_new_tokens, repeats,
    ttft_s, tpot_ms, decode_tokens_per_sec (medians) and their *_iqr spreads.
    Saves prefill_decode_ttft.png and prefill_decode_tpot.png.
    """
    ### BEGIN SOLUTION
    targets = [int(n) for n in lengths_tokens]
    prompts = [make_prompt(tokenizer, n) for n in targets]
    for prompt in prompts:  # warm each arm up once, untimed (its result is discarded)
        time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False)
    runs = [[] for _ in prompts]
    for _ in tqdm(range(int(repeats)), desc="rounds over prompt lengths"):
        for index, prompt in enumerate(prompts):  # repeat r of every length before repeat r + 1
            runs[index].append(time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False))
    rows = []
    for target, prompt, timed in zip(targets, prompts, runs):
        row = {"target_tokens": target, "prompt_tokens": len(tokenizer(prompt).input_ids),
               "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        row.update(helpers.medians_with_iqr(timed, ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")))
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("ttft_s", "prefill_decode_ttft"), ("tpot_ms", "prefill_decode_tpot")):
        helpers.plot_columns(frame, "prompt_tokens", key, name,
                             title=f"{max_new_tokens} new tokens, median of {repeats} (interleaved)")
        plt.show()
    return frame
    ### END SOLUTION

# %% [markdown]
# Try it: one row per length in `PROFILE.prompt_lengths_tokens`. TTFT should rise with the
# prompt, since the prefill reads every prompt token in one forward pass. TPOT should change much
# less: each decode step reads one new token and attends to the cached keys and values, so a
# longer prompt makes it only a little slower. `ttft_s` is not `tpot_ms` of one token: the first
# token also pays for the prompt.
# Which profile shows it: the full profile (the embedded model) does; the fast profile's tiny
# model makes calls of a few milliseconds, where noise can hide the trend or reverse it.

# %% [code]
prefill_decode_sweep = run_prefill_decode_for_lengths(model, tokenizer, PROFILE.prompt_lengths_tokens,
                                                      PROFILE.max_new_tokens, PROFILE.repeats)
prefill_decode_sweep

# %% [tests id=test_prefill_decode points=1]
"""Check that time_prefill_decode and run_prefill_decode_for_lengths return consistent results for a real model."""
_r = time_prefill_decode(model, tokenizer, REFERENCE_PROMPT, 5)
for _key in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s", "tokens_generated", "prompt_tokens"):
    assert _key in _r, f"the result must have the key {_key!r}"
assert _r["tokens_generated"] == 5, \
    f"5 new tokens were asked for; got tokens_generated={_r['tokens_generated']} (count only new tokens)"
assert _r["prompt_tokens"] == len(tokenizer(REFERENCE_PROMPT).input_ids), "prompt_tokens must be the prompt's length in tokens"
assert 0 < _r["ttft_s"] <= _r["total_latency_s"], "ttft_s must be positive and no longer than total_latency_s"
assert _r["tpot_ms"] > 0, "tpot_ms must be positive"
assert abs(_r["decode_tokens_per_sec"] * _r["tpot_ms"] - 1000.0) < 1e-6, "decode_tokens_per_sec must be 1000 / tpot_ms"
with scratch_folder():
    _frame = run_prefill_decode_for_lengths(model, tokenizer, [8, 24], 3, 1)
assert len(_frame) == 2, "one row per target length"
for _col in ("prompt_tokens", "max_new_tokens", "ttft_s", "tpot_ms", "decode_tokens_per_sec", "ttft_s_iqr", "tpot_ms_iqr"):
    assert _col in _frame.columns, f"missing column {_col!r}"
plt.close("all")

# %% [tests id=test_prefill_decode_hidden points=4]
"""Check TTFT, TPOT (median of the gaps between new tokens), the decode rate and counts, warm-up, inference mode, synchronisation, pass-through."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, a clock from a fresh instance of
# the time module, tensor work through C-level methods with torch-function overrides off, results read
# as real numbers. A stand-in model sleeps known times (on the test's clock) for the prefill and each
# decode step and notes, on that clock, when it hands each token to the streamer: so the right TTFT
# and TPOT are bracketed exactly however busy the machine is.
import importlib.util as _ilu
import torch as _torch
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers

# include: trusted_types_with_torch


# include: fresh_module


# include: true_number


# include: simulated_gpu


# include: dict_field_start
    assert _is_dict, f"time_prefill_decode must return a dict, got {_name(_type(result))}"
    assert _dict.__contains__(result, key), f"the result must have the key {key!r}"
    return _num(_dict.__getitem__(result, key), key)


def _median(values):
    _sorted = _list(values)
    _list.sort(_sorted)
    _n = _list.__len__(_sorted)
    return _sorted[_n // 2] if _n % 2 else (_sorted[_n // 2 - 1] + _sorted[_n // 2]) / 2.0


_clock = _fresh("time")


class _StreamingLM(_torch.nn.Module):
    """Stand-in for a causal LM that streams. generate sets up for 30 ms, hands the prompt to
    streamer.put, works prefill_s (plus cold_s on the first call: a cold start), then for each new token
    works the next of steps_s (none before the first) and hands the token to streamer.put; after the
    last one it works tail_s more (generate's own bookkeeping). On the CPU "work" is a sleep; on the simulated GPU (gpu=True) it is
    queued and runs when torch.cuda.synchronize is called. It records each call's arguments, the
    inference-mode state, and on the test's clock when each token could have arrived."""

    def __init__(self, prefill_s, steps_s, cold_s, tail_s, gpu=False):
        super().__init__()
        self.weight = _torch.nn.Parameter(_torch.zeros(1))
        self.prefill_s, self.steps_s, self.cold_s, self.tail_s, self.gpu = prefill_s, steps_s, cold_s, tail_s, gpu
        self.calls, self.queued_s, self.drained = [], 0.0, []

    @property
    def device(self):
        return _torch.device("cuda", 0) if self.gpu else _torch.device("cpu")

    def parameters(self, recurse=True):
        if self.gpu:
            yield _FakeGpuParameter()
        else:
            yield self.weight

    def to(self, *args, **kwargs):
        return self

    def _work(self, seconds):
        if self.gpu:
            self.queued_s = self.queued_s + seconds
        else:
            _clock.sleep(seconds)

    def synchronize(self, device=None):
        if self.queued_s > 0.0:
            _clock.sleep(self.queued_s)
            self.queued_s = 0.0
            _list.append(self.drained, _clock.perf_counter())  # when the queue became empty

    def generate(self, input_ids=None, attention_mask=None, streamer=None, **kwargs):
        with _C.DisableTorchFunction():
            _record = _dict(kwargs)
            _record["enter"] = _clock.perf_counter()
            _record["queued_at_enter"] = self.queued_s
            _probe = _TB.mul(self.weight, 2.0)
            _record["inference"] = _TB.is_inference(_probe)
            _record["grad"] = _TB.requires_grad.__get__(_probe)
            _record["shape"] = _tuple(_TB.size(input_ids))
            _record["on_gpu"] = _on_gpu(input_ids)
            _record["streamer"] = streamer is not None
            _record["puts"] = []
            _list.append(self.calls, _record)
            _wanted = _num(kwargs.get("max_new_tokens") or 20, "max_new_tokens")
            _k = _wanted if _num(kwargs.get("min_new_tokens") or 0, "min_new_tokens") >= _wanted else 2
            _clock.sleep(0.03)  # generate's own set-up (on the CPU), before it hands over the prompt
            if streamer is not None:
                streamer.put(_TB.clone(input_ids))  # first the prompt, as transformers does
            self._work(self.prefill_s + (self.cold_s if _list.__len__(self.calls) == 1 else 0.0))
            _i = 0
            while _i < _k:
                if _i > 0:
                    self._work(self.steps_s[(_i - 1) % _tuple.__len__(self.steps_s)])
                _i = _i + 1
                _before = _clock.perf_counter()
                if streamer is not None:
                    streamer.put(_VF.full((1,), 7, dtype=_TB.dtype.__get__(input_ids)))
                _list.append(_record["puts"], (_before, _clock.perf_counter()))
            self._work(self.tail_s)
            if streamer is not None:
                streamer.end()
            _record["exit"] = _clock.perf_counter()
            _new = _VF.full((_record["shape"][0], _k), 7, dtype=_TB.dtype.__get__(input_ids))
            return _VF.cat([input_ids, _new], 1)


def _timed(fake, *args, **kwargs):
    """time_prefill_decode's result, and when the call began and ended on the test's clock."""
    _start = _clock.perf_counter()
    _result = time_prefill_decode(fake, *args, **kwargs)
    return _result, _start, _clock.perf_counter()


def _drained_between(fake, earliest, latest):
    """The last moment in [earliest, latest] at which the simulated GPU's queue became empty, or None."""
    _when = None
    for _t in fake.drained:
        if earliest <= _t <= latest:
            _when = _t
    return _when


def _check_split(fake, result, began, ended, n_tokens, n_prompt):
    """The result's counts, and its TTFT, TPOT, decode rate and total latency within the exact brackets."""
    _where = "on a GPU (simulated), " if fake.gpu else ""
    _n, _p = _field(result, "tokens_generated"), _field(result, "prompt_tokens")
    assert _n == n_tokens, f"{n_tokens} new tokens were generated; got tokens_generated={_n} (count only the new tokens)"
    assert _p == n_prompt, f"the prompt has {n_prompt} tokens; got prompt_tokens={_p}"
    _call, _earlier = fake.calls[-1], fake.calls[:-1]
    assert _call["streamer"], "pass a streamer to the timed generate: it sees each new token arrive"
    # When the clock may have started: after the previous call's work was done, before generate was called.
    _start_lo = _earlier[-1]["exit"] if _earlier else began
    if fake.gpu:
        assert _call["queued_at_enter"] == 0.0, \
            "on a GPU (simulated), work of the warm-up call was still running when the timed generate began: " \
            "synchronize right before starting the clock"
        _start_lo = _drained_between(fake, _start_lo, _call["enter"]) or _start_lo
    _start_hi = _call["enter"]
    # When each new token arrived: after its work was done (on a GPU: after a synchronize inside put).
    _lo, _hi = [], []
    for _b, _a in _call["puts"]:
        _done = _drained_between(fake, _b, _a) if fake.gpu else _b
        assert _done is not None, \
            "on a GPU (simulated), put read the clock before the new token's work was done: call " \
            "torch.cuda.synchronize() (helpers.synchronize(device)) inside the streamer's put, before reading the clock"
        _list.append(_lo, _done)
        _list.append(_hi, _a)
    _ttft = _field(result, "ttft_s")
    assert _lo[0] - _start_hi - 1e-6 <= _ttft, \
        f"{_where}ttft_s={_ttft:.4f} s, but the first new token came {_lo[0] - _start_hi:.4f} s or more after the clock " \
        "could have started: TTFT runs from the clock start to the arrival of the first NEW token at the streamer " \
        "(generate's first put is the prompt, not a token)" + \
        ("; on a GPU synchronize inside put before reading the clock" if fake.gpu else "")
    assert _ttft <= _hi[0] - _start_lo + 1e-6, \
        f"{_where}ttft_s={_ttft:.4f} s, but at most {_hi[0] - _start_lo:.4f} s passed between the end of the earlier " \
        "work and the first new token: start the clock right before the timed generate, after the warm-up" + \
        (" and after synchronising" if fake.gpu else "")
    assert _list.__len__(_lo) == n_tokens
    _gaps_lo, _gaps_hi, _i = [], [], 1
    while _i < n_tokens:
        _list.append(_gaps_lo, _lo[_i] - _hi[_i - 1])
        _list.append(_gaps_hi, _hi[_i] - _lo[_i - 1])
        _i = _i + 1
    _tpot = _field(result, "tpot_ms")
    assert 1000.0 * _median(_gaps_lo) - 1e-3 <= _tpot <= 1000.0 * _median(_gaps_hi) + 1e-3, \
        f"{_where}tpot_ms={_tpot:.2f}, but the median gap between consecutive new tokens was " \
        f"{1000.0 * _median(_gaps_lo):.2f} ms: TPOT is the median (not the mean) of the N - 1 gaps between " \
        "new-token arrivals, in milliseconds; the wait for the first token is TTFT, not one of the gaps" + \
        ("; on a GPU synchronize inside put before reading the clock" if fake.gpu else "")
    _rate = _field(result, "decode_tokens_per_sec")
    assert -1e-6 * _rate <= _rate - 1000.0 / _tpot <= 1e-6 * _rate, \
        f"decode_tokens_per_sec={_rate:.3f} must be 1000 / tpot_ms = {1000.0 / _tpot:.3f}"
    _end_lo = _call["exit"]
    if fake.gpu:
        _end_lo = _drained_between(fake, _hi[-1], ended)  # the work after the last token done
        assert _end_lo is not None and fake.queued_s == 0.0, \
            "on a GPU (simulated), the timed call's work was still running when time_prefill_decode returned: " \
            "synchronize right after the timed generate, before reading the clock"
    _total = _field(result, "total_latency_s")
    assert _end_lo - _start_hi - 1e-6 <= _total <= ended - _start_lo + 1e-6, \
        f"{_where}total_latency_s={_total:.4f} s, but the timed call took {_end_lo - _start_hi:.4f} s or more and " \
        f"at most {ended - _start_lo:.4f} s: time from the clock start to the end of the timed generate " \
        "(synchronised), in seconds, without the warm-up"


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_prompt = "The history of the printing press begins in a small workshop where metal letters were cast " \
          "by hand, one at a time, and set in rows"
_n_prompt = _list.__len__(_tok(_prompt).input_ids)
# Gaps of 20, 150, 40, 20 ms: the median is 30 ms; the mean (57.5 ms) or the median with the first
# token's 80 ms wait among them (40 ms) is wrong.
_steps = (0.02, 0.15, 0.04, 0.02)
_fake = _StreamingLM(prefill_s=0.08, steps_s=_steps, cold_s=0.25, tail_s=0.05)
_r, _began, _ended = _timed(_fake, _tok, _prompt, 5, use_cache=False, repetition_penalty=1.0)
# include: timed_generate_call_checks
assert _last["shape"][0] == 1, "one prompt: a batch of one sequence"
_check_split(_fake, _r, _began, _ended, 5, _n_prompt)
# warmup=False: the timed call is the only call; another prompt and length.
_fake = _StreamingLM(prefill_s=0.05, steps_s=(0.03, 0.01, 0.01), cold_s=0.0, tail_s=0.02)
_r, _began, _ended = _timed(_fake, _tok, "Hello there, how are you?", 4, warmup=False)
assert _list.__len__(_fake.calls) == 1, \
    f"with warmup=False call generate once (the timed call, no warm-up), got {_list.__len__(_fake.calls)} calls"
_check_split(_fake, _r, _began, _ended, 4, _list.__len__(_tok("Hello there, how are you?").input_ids))
# A simulated GPU: generate only queues its work; a token is ready when torch.cuda.synchronize has
# waited for it, and work is still queued when generate returns.
_fake = _StreamingLM(prefill_s=0.08, steps_s=_steps, cold_s=0.2, tail_s=0.15, gpu=True)
_r, _began, _ended = _on_simulated_gpu(_fake, _tok, _prompt, 5)
assert _list.__len__(_fake.calls) >= 2 and _fake.calls[-1]["on_gpu"], \
    "move the inputs to the model's device (model.device) before generate"
_check_split(_fake, _r, _began, _ended, 5, _n_prompt)
with _C.DisableTorchFunction():
    _grad_after = _TB.requires_grad.__get__(_TB.mul(_fake.weight, 2.0))
assert _grad_after is True, "time_prefill_decode must not switch gradients off globally"
### END HIDDEN TESTS

# %% [tests id=test_prefill_decode_sweep_hidden points=2]
"""Check the sweep's warm-up per length, round-robin interleaving, medians and IQRs, prompt lengths in tokens, columns, plots."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, files and folders through a fresh
# instance of the os module, results read as real numbers. time_prefill_decode is replaced by a
# stand-in that records every call and returns known numbers; make_prompt by one that overshoots by 6
# tokens, so prompt_tokens must be measured. The plots are written into an empty scratch folder.
import importlib.util as _ilu
import matplotlib.pyplot as _plt
from transformers import AutoTokenizer as _AutoTokenizer
import helpers as _helpers
from helpers.texts import BASE_PROMPT as _BASE

_type = (0).__class__.__class__
_float, _int, _str, _list, _dict = (0.0).__class__, (0).__class__, "".__class__, [].__class__, {}.__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: fresh_module


# include: true_number


# include: is_png


# include: column_of_numbers


def _near(values, expected):
    if _list.__len__(values) != _list.__len__(expected):
        return False
    _i = 0
    while _i < _list.__len__(values):
        if not -1e-9 * (1.0 + expected[_i]) <= values[_i] - expected[_i] <= 1e-9 * (1.0 + expected[_i]):
            return False
        _i = _i + 1
    return True


_posix, _clock = _fresh("posix"), _fresh("time")
_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_base_ids = _tok(_BASE, add_special_tokens=False).input_ids
_targets = [10, 30, 60]
_student_make_prompt, _saved_time_prefill_decode = make_prompt, time_prefill_decode
_saved_save_figure = _helpers.save_figure


def make_prompt(tokenizer, n_tokens, base_text=_BASE):
    return _tok.decode((_base_ids * 40)[:_int(n_tokens) + 6])


_expected_n = [_list.__len__(_tok(make_prompt(_tok, _t)).input_ids) for _t in _targets]
_calls, _counted, _saved_figures = [], [[], [], []], []


def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    """Known results. The first call for a length without warmup=True is a cold warm-up run (slow);
    the repeat-th timed run of length i (from 0) has TTFT (i + 1) x (1 or 5 s, alternating) and TPOT
    (i + 1) x 10 ms, except (i + 1) x 1000 ms on the eighth."""
    _n = _list.__len__(tokenizer(prompt).input_ids)
    _arm = -1
    _j = 0
    while _j < 3:
        if _n == _expected_n[_j]:
            _arm = _j
        _j = _j + 1
    _first = True
    for _c in _calls:
        _first = _first and _c["arm"] != _arm
    _list.append(_calls, {"arm": _arm, "warmup": warmup is True, "max_new_tokens": _num(max_new_tokens, "max_new_tokens"),
                          "n": _n})
    _scale = _arm + 1.0
    if _arm < 0 or (_first and warmup is not True):
        _ttft, _tpot = 100.0, 5000.0
    else:
        _r = _list.__len__(_counted[_arm])
        _list.append(_counted[_arm], _list.__len__(_calls) - 1)
        _ttft = _scale * (1.0 if _r % 2 == 0 else 5.0)
        _tpot = _scale * (1000.0 if _r == 7 else 10.0)
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"ttft_s": _ttft, "tpot_ms": _tpot, "decode_tokens_per_sec": 1000.0 / _tpot,
            "total_latency_s": _ttft + (_tokens - 1) * _tpot / 1000.0, "tokens_generated": _tokens,
            "prompt_tokens": _n}


def _save_figure_spy(figure, name, *args, **kwargs):
    _bars = 0
    for _ax in figure.axes:
        for _container in _ax.containers:
            if _name(_type(_container)) == "ErrorbarContainer" and _container.has_yerr is True:
                _bars += 1
    _list.append(_saved_figures, _bars)
    return _saved_save_figure(figure, name, *args, **kwargs)


_helpers.save_figure = _save_figure_spy
# include: enter_scratch_dir
try:
    _frame = run_prefill_decode_for_lengths(None, _tok, _targets, 5, 8)
    _plots = [_is_png(_scratch + "/artifacts/" + _f) for _f in ("prefill_decode_ttft.png", "prefill_decode_tpot.png")]
finally:
    make_prompt, time_prefill_decode, _helpers.save_figure = _student_make_prompt, _saved_time_prefill_decode, \
        _saved_save_figure
    # include: leave_scratch_dir
for _c in _calls:
    assert _c["arm"] >= 0, \
        f"a prompt of {_c['n']} tokens was timed, which make_prompt did not build for any of the lengths: " \
        "build each prompt with make_prompt(tokenizer, n_tokens)"
    assert _c["max_new_tokens"] == 5, "max_new_tokens must be the same at every length"
_per_arm = [_list.__len__(_runs) for _runs in _counted]
assert _per_arm == [8, 8, 8], \
    f"after its warm-up, each length must be timed `repeats` times (8 here); got {_per_arm} timed runs: warm each " \
    "length up once (one untimed call, or warmup=True on its first timed run), then time it `repeats` times"
_round_of = {}
for _arm_runs in _counted:
    _r = 0
    for _index in _arm_runs:
        _round_of[_index] = _r
        _r = _r + 1
_last_round, _index = 0, 0
while _index < _list.__len__(_calls):
    if _dict.__contains__(_round_of, _index):
        assert _round_of[_index] >= _last_round, \
            "interleave the timed runs round-robin: repeat r of every length before repeat r + 1 of any " \
            "(not all repeats of one length, then the next)"
        _last_round = _round_of[_index]
    _index = _index + 1
for _key in ("prompt_tokens", "max_new_tokens", "ttft_s", "tpot_ms", "decode_tokens_per_sec", "ttft_s_iqr", "tpot_ms_iqr"):
    assert _key in _frame.columns, f"missing column {_key!r}"
_rows = _list.__len__(_column(_frame, "ttft_s"))
assert _rows == 3, f"one row per length (3 here), got {_rows}"
_measured = _column(_frame, "prompt_tokens")
assert _list.__len__(_measured) == 3 and -1 <= _measured[0] - _expected_n[0] <= 1 and \
    -1 <= _measured[1] - _expected_n[1] <= 1 and -1 <= _measured[2] - _expected_n[2] <= 1, \
    f"prompt_tokens must be measured on the prompts that were timed ({_expected_n} tokens here, in the order of " \
    f"the lengths given), not copied from the target lengths; got {_measured}"
assert _column(_frame, "max_new_tokens") == [5, 5, 5], "the max_new_tokens column must hold the limit used (5 here)"
assert _near(_column(_frame, "ttft_s"), [3.0, 6.0, 9.0]) and _near(_column(_frame, "tpot_ms"), [10.0, 20.0, 30.0]) \
    and _near(_column(_frame, "decode_tokens_per_sec"), [100.0, 50.0, 1000.0 / 30.0]), \
    "report, per length in the order given, the median of ttft_s, tpot_ms and decode_tokens_per_sec over the timed " \
    "runs only (not the warm-up)"
_iqr = _column(_frame, "ttft_s_iqr") + _column(_frame, "tpot_ms_iqr")
assert _near(_iqr, [4.0, 8.0, 12.0, 0.0, 0.0, 0.0]), \
    f"the *_iqr columns must hold the interquartile range (75th minus 25th percentile) of the timed runs, got {_iqr}"
assert _plots == [True, True], \
    "save both plots (helpers.plot_columns, or helpers.save_figure): artifacts/prefill_decode_ttft.png and prefill_decode_tpot.png"
assert _list.__len__(_saved_figures) >= 2 and 0 not in _saved_figures, \
    "draw each plot with the IQR as error bars (helpers.plot_columns does, or helpers.plot_metric(..., yerr=...)) and save it"
### END HIDDEN TESTS

