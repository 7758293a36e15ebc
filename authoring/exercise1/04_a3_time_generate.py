# %% [markdown]
# ---
# ## Part A3: timing `generate` (7 points)
#
# A fair timing of one `generate` call needs five things:
#
# 1. **One untimed warm-up call.** The first call pays one-off costs (memory allocation, kernel
#    selection, lazy initialisation) that a user does not pay on every request. The warm-up
#    belongs to a *setting* (model, prompt, batch, cache on or off), not to each measurement:
#    when the same setting is timed several times in a row, each timed call has already warmed
#    up the next one, so `warmup=False` skips the extra call (`time_repeats` below does this).
# 2. **`torch.inference_mode()`** around the timed call: no autograd bookkeeping, which is what
#    serving does; timing with gradients on measures a slower program.
# 3. **`time.perf_counter()`**, monotonic and fine-grained; and on CUDA, **`torch.cuda.synchronize()`
#    right before and right after**: GPU work is queued asynchronously, so without it the clock
#    stops when the work was *queued*, not done.
# 4. **Inputs on the model's device** (`model.device`).
# 5. **A fixed number of new tokens**: greedy decoding (`do_sample=False`) with
#    `min_new_tokens = max_new_tokens`. Otherwise the model may stop early at an end-of-text token,
#    and two runs that generated 3 and 30 tokens cannot be compared by latency.
#
# Count **only new tokens**: the output of `generate` contains the prompt too. For a batch
# (a list of prompts), count the new tokens of every sequence. Pad on the tokenizer's
# `padding_side` as you find it: the callers set it (left for generation; one ablation arm in
# Part B pads on the right on purpose).
# The metrics must agree: `tokens_per_sec = tokens_generated / total_latency_s` and
# `avg_latency_per_token_ms = 1000 * total_latency_s / tokens_generated`.
#
# Write `time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True,
# **generate_kwargs)` returning a dict with at least `total_latency_s`, `tokens_generated`,
# `tokens_per_sec`, `avg_latency_per_token_ms`. More keys are welcome but not graded here: the
# reference also returns `batch_size` and `prompt_tokens` (the longest prompt's length in tokens,
# padding not counted), and no later part reads them from this dict.
# With `warmup=False` it skips the warm-up call. Extra keyword arguments go through to `generate`.
# `helpers.synchronize(device)` is a ready-made "synchronize if CUDA" if you want it. (The grader
# has no GPU: it checks points 3 and 4 with a stand-in model that reports a CUDA device, whose
# generate returns before its work is done, as a GPU's does.)

# %% [solution id=time_generate]
def _model_device(model):
    """The device a model's inputs belong on (PyTorch or ONNX Runtime model)."""
    device = getattr(model, "device", None)
    if device is None:
        device = next(model.parameters()).device
    return torch.device(device)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Time one greedy generate call, after one untimed warm-up unless warmup=False.

    prompt: a str or a list of str (a batch, padded by the tokenizer).
    max_new_tokens: new tokens per sequence (forced with min_new_tokens).
    use_cache: passed to generate; generate_kwargs: passed through too.
    warmup: False when the same setting was just run (by an earlier timed call).
    Returns a dict: total_latency_s (s), tokens_generated (new tokens over the batch),
    tokens_per_sec, avg_latency_per_token_ms (ms), prompt_tokens, batch_size.
    """
    ### BEGIN SOLUTION
    device = _model_device(model)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    encoded = tokenizer(prompts, return_tensors="pt", padding=True)
    inputs = {key: value.to(device) for key, value in encoded.items()}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings = dict(max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                    do_sample=False, use_cache=use_cache, pad_token_id=pad_id)
    settings.update(generate_kwargs)
    with torch.inference_mode():
        if warmup:
            model.generate(**inputs, **settings)  # not timed
        helpers.synchronize(device)
        start = time.perf_counter()
        output = model.generate(**inputs, **settings)
        helpers.synchronize(device)
        latency_s = time.perf_counter() - start
    prompt_len = inputs["input_ids"].shape[1]
    tokens = int(output.shape[0]) * (int(output.shape[1]) - int(prompt_len))
    return {
        "total_latency_s": latency_s,
        "tokens_generated": tokens,
        "tokens_per_sec": tokens / latency_s,
        "avg_latency_per_token_ms": 1000.0 * latency_s / tokens,
        "prompt_tokens": int(encoded["attention_mask"].sum(dim=1).max()),
        "batch_size": len(prompts),
    }
    ### END SOLUTION

# %% [markdown]
# Try it: a dict with `tokens_generated` equal to `PROFILE.max_new_tokens`, a latency of a fraction of a second to a few seconds, and
# `tokens_per_sec * total_latency_s == tokens_generated`. The embedded model writes roughly
# 15 to 30 new tokens per second on two CPU cores.

# %% [code]
baseline = time_generate(model, tokenizer, REFERENCE_PROMPT, PROFILE.max_new_tokens)
print(baseline)

# %% [tests id=test_time_generate points=2]
"""Check that time_generate returns consistent metrics for a real model."""
_r = time_generate(model, tokenizer, REFERENCE_PROMPT, 4)
for _key in ("total_latency_s", "tokens_generated", "tokens_per_sec", "avg_latency_per_token_ms"):
    assert _key in _r, f"the result must have the key {_key!r}"
assert _r["tokens_generated"] == 4, \
    f"4 new tokens were asked for; got tokens_generated={_r['tokens_generated']} (count only new tokens, " \
    "and force the count with min_new_tokens)"
assert _r["total_latency_s"] > 0, "total_latency_s must be positive"
assert abs(_r["tokens_per_sec"] * _r["total_latency_s"] - _r["tokens_generated"]) < 1e-6 * _r["tokens_generated"], \
    "tokens_per_sec must equal tokens_generated / total_latency_s"

# %% [tests id=test_time_generate_hidden points=5]
"""Check warm-up, inference mode, the clock, GPU synchronisation and inputs, new-token counting, units, pass-through."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, a clock from a fresh instance of
# the time module, tensor work through C-level methods with torch-function overrides off. So nothing
# the submission could have replaced (time.sleep, time.perf_counter, torch.is_inference_mode_enabled,
# torch.cat, builtins such as abs or len) answers for the test, and results are read as real numbers.
import importlib.util as _ilu
import time as _shared_time
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

# include: trusted_types_with_torch


# include: fresh_module


# include: true_number


# include: dict_field_start
    assert _is_dict, f"time_generate must return a dict, got {_name(_type(result))}"
    assert _dict.__contains__(result, key), f"the result must have the key {key!r}"
    return _num(_dict.__getitem__(result, key), key)


_clock = _fresh("time")
_wall_jump_s = [0.0]  # added to time.time() while the stand-ins run: a wall clock being adjusted


class _RecordingLM(_torch.nn.Module):
    """Stand-in for a causal LM. generate sleeps on the test's own clock (long on the first call: a cold
    start), records its arguments, the attention mask and the grad / inference-mode state it runs under
    (read from a tensor it computes), and appends new tokens; without min_new_tokens it stops after 2,
    as a model that emits end-of-text would. Each call moves the wall clock (time.time) on by 1000 s."""

    def __init__(self, cold_s, warm_s):
        super().__init__()
        self.weight = _torch.nn.Parameter(_torch.zeros(1))
        self.cold_s, self.warm_s, self.calls = cold_s, warm_s, []

    @property
    def device(self):
        return _torch.device("cpu")

    def _work(self, seconds):
        _clock.sleep(seconds)

    def generate(self, input_ids=None, attention_mask=None, **kwargs):
        with _C.DisableTorchFunction():
            _wall_jump_s[0] = _wall_jump_s[0] + 1000.0
            _probe = _TB.mul(self.weight, 2.0)  # an inference tensor in inference mode; needs grad only with grad on
            _record = _dict(kwargs)
            _record["inference"] = _TB.is_inference(_probe)
            _record["grad"] = _TB.requires_grad.__get__(_probe)
            _record["shape"] = _tuple(_TB.size(input_ids))
            _record["mask"] = None if attention_mask is None else _TB.tolist(attention_mask)
            _record["on_gpu"] = _on_gpu(input_ids) and (attention_mask is None or _on_gpu(attention_mask))
            _list.append(self.calls, _record)
            self._work(self.cold_s if _list.__len__(self.calls) == 1 else self.warm_s)
            _wanted = _num(kwargs.get("max_new_tokens") or 20, "max_new_tokens")
            _k = _wanted if _num(kwargs.get("min_new_tokens") or 0, "min_new_tokens") >= _wanted else 2
            _new = _VF.full((_record["shape"][0], _k), 7, dtype=_TB.dtype.__get__(input_ids))
            return _VF.cat([input_ids, _new], 1)


class _SimulatedGpuLM(_RecordingLM):
    """The same stand-in on a simulated GPU: it reports a CUDA device, and generate only queues its work,
    which torch.cuda.synchronize (replaced while it runs) then waits for, as on a real GPU."""

    queued_s = 0.0

    @property
    def device(self):
        return _torch.device("cuda", 0)

    def parameters(self, recurse=True):
        yield _FakeGpuParameter()

    def to(self, *args, **kwargs):
        return self

    def _work(self, seconds):
        self.queued_s = self.queued_s + seconds

    def synchronize(self, device=None):
        _clock.sleep(self.queued_s)
        self.queued_s = 0.0


# include: simulated_gpu


def _timed(fake, *args, **kwargs):
    """time_generate's result, and the wall time of the whole call on the test's clock."""
    _start = _clock.perf_counter()
    _result = time_generate(fake, *args, **kwargs)
    return _result, _clock.perf_counter() - _start


def _check_metrics(result, tokens, warm_s, cold_s, wall_s):
    _n, _lat = _field(result, "tokens_generated"), _field(result, "total_latency_s")
    _rate, _ms = _field(result, "tokens_per_sec"), _field(result, "avg_latency_per_token_ms")
    assert _n == tokens, f"{tokens} new tokens were generated; got tokens_generated={_n} (count only the new tokens)"
    # The timed call sleeps warm_s; the warm-up (a cold start of cold_s) must stay outside the timed
    # region, and both ran within wall_s on the test's clock. 1 ms of slack for clock resolution.
    assert warm_s - 1e-3 <= _lat <= wall_s - cold_s + 1e-3, \
        f"total_latency_s={_lat:.4f} s, but the timed generate took {warm_s} s after a {cold_s} s warm-up: " \
        "time only the call after the warm-up, in seconds"
    assert -1e-6 * _rate <= _rate - _n / _lat <= 1e-6 * _rate, "tokens_per_sec must be tokens_generated / total_latency_s"
    assert -1e-6 * _ms <= _ms - 1000.0 * _lat / _n <= 1e-6 * _ms, \
        "avg_latency_per_token_ms must be 1000 * total_latency_s / tokens_generated"


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_prompt = "The history of the printing press begins"
_fake = _RecordingLM(cold_s=0.6, warm_s=0.12)
# While the stand-in runs, time.time() (the wall clock) jumps 1000 s per generate call, as when the
# system clock is adjusted; time.perf_counter() is monotonic and does not.
_saved_wall = (_shared_time.time, _shared_time.time_ns)
_shared_time.time = lambda: _clock.time() + _wall_jump_s[0]
_shared_time.time_ns = lambda: _clock.time_ns() + _int(_wall_jump_s[0] * 1e9)
try:
    _r, _wall = _timed(_fake, _tok, _prompt, 5, use_cache=False, repetition_penalty=1.0)
finally:
    _shared_time.time, _shared_time.time_ns = _saved_wall
_jumped = _field(_r, "total_latency_s")
assert -100.0 < _jumped < 100.0, \
    f"total_latency_s={_jumped:.1f} s for a call of 0.12 s: the wall clock (time.time) was adjusted during " \
    "the call, as the system clock can be; time with time.perf_counter(), which is monotonic"
# include: timed_generate_call_checks
_check_metrics(_r, 5, 0.12, 0.6, _wall)
# warmup=False: the timed call is the only call.
_fake = _RecordingLM(cold_s=0.1, warm_s=0.1)
_r, _wall = _timed(_fake, _tok, _prompt, 3, warmup=False)
assert _list.__len__(_fake.calls) == 1, \
    f"with warmup=False call generate once (the timed call, no warm-up), got {_list.__len__(_fake.calls)} calls"
# A simulated GPU: generate returns at once and its work runs until torch.cuda.synchronize.
_fake = _SimulatedGpuLM(cold_s=0.3, warm_s=0.1)
_r, _wall = _on_simulated_gpu(_fake, _tok, _prompt, 3)
assert _list.__len__(_fake.calls) >= 2 and _fake.calls[-1]["on_gpu"], \
    "move the inputs (input_ids and attention_mask) to the model's device (model.device) before generate"
_lat = _field(_r, "total_latency_s")
assert _lat >= 0.1 - 1e-3, \
    f"on a GPU generate returns before its work is done: total_latency_s={_lat:.3f} s for 0.1 s of work; " \
    "call torch.cuda.synchronize() (helpers.synchronize(device)) right after the timed call, before reading the clock"
assert _lat <= _wall - 0.3 + 1e-3, \
    f"on a GPU the warm-up's queued work ran into the timed interval (total_latency_s={_lat:.3f} s for 0.1 s " \
    "of work): synchronize right before starting the clock too"
_check_metrics(_r, 3, 0.1, 0.3, _wall)
# A batch of prompts of different lengths: new tokens of every sequence are counted, and the batch is
# padded on the side the tokenizer is set to (right here, as in the ablation's right-padding arm).
_fake = _RecordingLM(cold_s=0.3, warm_s=0.05)
_tok.padding_side = "right"
_r, _wall = _timed(_fake, _tok, ["Hello there.", _prompt, "A much longer prompt than the first one, " * 3], 3)
assert _fake.calls[-1]["shape"][0] == 3, "a list of prompts must be generated as one batch"
_mask = _fake.calls[-1]["mask"]
assert _mask is not None, "pass the attention mask to generate: the batch is padded"
assert _tok.padding_side == "right" and [_row[0] for _row in _mask] == [1, 1, 1] and _mask[0][-1] == 0, \
    "pad on the tokenizer's padding_side as the caller set it (right here): do not change it in time_generate"
_tok.padding_side = "left"
_check_metrics(_r, 9, 0.05, 0.3, _wall)
# A real model: the counts are exact.
_mdl_r = _AutoModel.from_pretrained(_str(_helpers.TINY_DIR)).eval()
_r = time_generate(_mdl_r, _tok, ["One.", "Two and three and four."], 6)
assert _field(_r, "tokens_generated") == 12, "2 prompts x 6 new tokens = 12 new tokens"
with _C.DisableTorchFunction():
    _grad_after = _TB.requires_grad.__get__(_TB.mul(_fake.weight, 2.0))
assert _grad_after is True, "time_generate must not switch gradients off globally"
del _mdl_r
### END HIDDEN TESTS

# %% [markdown]
# Every sweep below times each setting several times. Two given tools do that:
#
# - `time_repeats` times **one** setting `repeats` times in a row, with one warm-up.
# - `time_round_robin` times **several** settings fairly: each one is warmed up once, then the timed
#   runs take turns (round 1 times every setting once, then round 2, ...). On a shared laptop or
#   server the speed drifts (another program, the CPU's clock, the temperature); timing setting A
#   five times and then setting B five times lets that drift land on one of them and pass for a
#   difference between them. Taking turns spreads it over all settings alike, which is how
#   serious benchmarks compare their arms. Prefer it whenever you compare settings. In A4, A5
#   and B3 timing each setting in turn also earns full marks (it makes noisier comparisons);
#   Part A6 asks you to take turns.
#
# Two helpers write the table and the plot around each measurement, so that your code is about
# what is measured and how:
#
# - `helpers.medians_with_iqr(runs, keys=helpers.TIMED_KEYS)` turns a list of timing dicts (one per
#   repeat) into one row's numbers: the median of each key (one slow run skews a mean) and its
#   interquartile range as `<key>_iqr`. `row.update(helpers.medians_with_iqr(runs))` adds
#   `total_latency_s`, `tokens_per_sec`, `avg_latency_per_token_ms` and their `_iqr` columns.
# - `helpers.plot_columns(frame, x_key, y_key, name, title=...)` plots one column of a table against
#   another with the `<y_key>_iqr` column as error bars and saves it as `artifacts/<name>.png`
#   (built on `helpers.plot_metric` and `helpers.save_figure`, which you may use instead).

# %% [readonly id=time_repeats]
def time_repeats(model, tokenizer, prompt, max_new_tokens, repeats, **kwargs):
    """`repeats` timings of one setting, a list of time_generate dicts; only the first call warms up,
    because each timed call leaves the next one warm. kwargs go to time_generate (use_cache=...)."""
    return [time_generate(model, tokenizer, prompt, max_new_tokens, warmup=(i == 0), **kwargs)
            for i in range(int(repeats))]


def time_round_robin(arms, repeats):
    """Fair timings of several settings. `arms` is a list of functions `run(warmup)`, each making one
    time_generate call of its setting. Round 1 calls every arm with warmup=True (its untimed warm-up,
    then its first timed run); rounds 2 to `repeats` call every arm once more, in turn, with
    warmup=False. Returns one list of time_generate dicts per arm, in the order of `arms`."""
    timings = [[] for _ in arms]
    for round_index in range(int(repeats)):
        for arm_index, run in enumerate(arms):
            timings[arm_index].append(run(round_index == 0))
    return timings

