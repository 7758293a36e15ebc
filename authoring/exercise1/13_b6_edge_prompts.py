# %% [markdown]
# ---
# ## Part B6: edge prompts (3 points)
#
# Averages hide the awkward cases: a one-word prompt (almost no prefill), a very long one (prefill
# dominates and the cache grows large), a multi-line list, and a repetitive text (which greedy
# decoding tends to keep repeating). Write `probe_edge_prompts(model, tokenizer, max_new_tokens,
# repeats, prompts=EDGE_PROMPTS)`: for each named prompt, in order, time `repeats` runs of
# `time_generate` with the same `max_new_tokens` and report the median of each metric; a DataFrame
# with one row per prompt and the columns `prompt_name`, `prompt_tokens` (the number of tokens the
# tokenizer gives the prompt), `tokens_generated`, `total_latency_s`, `tokens_per_sec`,
# `avg_latency_per_token_ms`, and a `continuation` column with the first 60 characters of the
# greedy continuation (the new tokens only, decoded).

# %% [solution id=probe_edge_prompts]
def probe_edge_prompts(model, tokenizer, max_new_tokens, repeats, prompts=EDGE_PROMPTS):
    """Median generate timings and a continuation preview per edge prompt. Returns a DataFrame."""
    ### BEGIN SOLUTION
    rows = []
    for name, text in prompts.items():
        encoded = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():  # the preview, which also warms this prompt up for the timed runs
            out = model.generate(**{k: v.to(_model_device(model)) for k, v in encoded.items()},
                                 max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens),
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        runs = [time_generate(model, tokenizer, text, max_new_tokens, warmup=False) for _ in range(int(repeats))]
        row = {"prompt_name": name, "prompt_tokens": int(encoded["input_ids"].shape[1]),
               "tokens_generated": runs[0]["tokens_generated"], "max_new_tokens": int(max_new_tokens)}
        row.update(helpers.medians_with_iqr(runs))
        row["continuation"] = tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)[:60]
        rows.append(row)
    return pd.DataFrame(rows)
    ### END SOLUTION

# %% [code]
edge = probe_edge_prompts(model, tokenizer, PROFILE.max_new_tokens, TRY_REPEATS)
edge

# %% [tests id=test_edge_prompts points=1]
"""Check one row per edge prompt, identical max_new_tokens, measured prompt lengths, medians and continuations."""
_frame = probe_edge_prompts(model, tokenizer, 3, 1)
assert list(_frame["prompt_name"]) == list(EDGE_PROMPTS), "one row per edge prompt, in order"
assert set(_frame["tokens_generated"]) == {3}, "every edge prompt must generate the same max_new_tokens"
assert _frame.set_index("prompt_name")["prompt_tokens"]["very_long"] > 5 * \
    _frame.set_index("prompt_name")["prompt_tokens"]["multi_line"], "prompt_tokens must be measured in tokens"
# Medians and the continuation: the tiny model, and time_generate replaced by a stand-in whose third
# run of each prompt is 4x slower (median 1 s, mean 2 s).
_saved_time_generate = time_generate
_runs = {}


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _runs[prompt] = _runs.get(prompt, 0) + 1
    latency = 4.0 if _runs[prompt] == 3 else 1.0
    return {"total_latency_s": latency, "tokens_generated": int(max_new_tokens),
            "tokens_per_sec": int(max_new_tokens) / latency, "avg_latency_per_token_ms": 1000 * latency / int(max_new_tokens)}


_tiny_tok = AutoTokenizer.from_pretrained(str(helpers.TINY_DIR))
_tiny = AutoModelForCausalLM.from_pretrained(str(helpers.TINY_DIR), dtype=torch.float32).eval()
_edge = {"short": "Bread.", "list": "Shopping list:\n- flour\n- eggs"}
try:
    _frame = probe_edge_prompts(_tiny, _tiny_tok, 20, 3, prompts=_edge)
finally:
    time_generate = _saved_time_generate
assert list(_frame["total_latency_s"]) == [1.0, 1.0] and list(_frame["tokens_per_sec"]) == [20.0, 20.0], \
    "report the median of each prompt's runs (not the mean)"
assert "continuation" in _frame.columns, "add a continuation column"
for _name, _text in _edge.items():
    _ids = _tiny_tok(_text, return_tensors="pt")
    with torch.inference_mode():
        _out = _tiny.generate(**_ids, max_new_tokens=20, min_new_tokens=20, do_sample=False,
                              pad_token_id=_tiny_tok.pad_token_id)
    _expected = _tiny_tok.decode(_out[0, _ids["input_ids"].shape[1]:], skip_special_tokens=True)
    _got = str(_frame.set_index("prompt_name")["continuation"][_name])
    assert len(_got) <= 60 and _got.strip() in (_expected[:60].strip(), _expected.strip()[:60].strip()), \
        f"continuation of {_name!r}: the first 60 characters of the greedy continuation (new tokens only), got {_got!r}"

# %% [tests id=test_edge_prompts_hidden points=2]
"""Check probe_edge_prompts on other prompts: rows in order, prompt_tokens in tokens, repeats, one max_new_tokens, medians, continuations."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, results read as real numbers, the
# token counts and continuations expected computed here with the tiny model and its tokenizer, and
# time_generate replaced by a stand-in whose latency depends only on the prompt and on how many runs of
# that prompt came before (the third is 5x slower: median 1x, mean 2x the prompt's base latency).
import torch as _torch
from transformers import AutoModelForCausalLM as _AutoModel, AutoTokenizer as _AutoTokenizer
import helpers as _helpers

_type = (0).__class__.__class__
_float, _int, _str, _list, _tuple = (0.0).__class__, (0).__class__, "".__class__, [].__class__, ().__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


def _column(frame, key):
    assert key in frame.columns, f"the DataFrame must have a {key!r} column"
    _values = frame[key].tolist()
    assert _type(_values) is _list and _list.__len__(_values) == 3, f"one row per prompt: 3 values in {key!r}"
    return _values


def _numbers(frame, key):
    return [_num(_v, key) for _v in _column(frame, key)]


def _near(values, expected):
    _i = 0
    while _i < 3:
        if not -1e-9 <= values[_i] - expected[_i] <= 1e-9:
            return False
        _i += 1
    return True


_tok = _AutoTokenizer.from_pretrained(_str(_helpers.TINY_DIR))
_tiny = _AutoModel.from_pretrained(_str(_helpers.TINY_DIR), dtype=_torch.float32).eval()
_names = ["one_word", "memo", "code"]
_texts = ["Rain.", "Dear team,\nthe meeting moves to Friday.\nThanks.", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"]
_base_s = [1.0, 2.0, 0.5]
_prompts = {_names[0]: _texts[0], _names[1]: _texts[1], _names[2]: _texts[2]}
_calls = []


def _which(prompt):
    if _type(prompt) in (_list, _tuple) and prompt.__len__() == 1:
        prompt = prompt[0]
    _i = 0
    while _i < 3:
        if _type(prompt) is _str and prompt == _texts[_i]:
            return _i
        _i += 1
    return -1


_saved_time_generate = time_generate


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **kwargs):
    _i = _which(prompt)
    _n = _list.__len__([_c for _c in _calls if _c[0] == _i])
    _list.append(_calls, (_i, _num(max_new_tokens, "max_new_tokens")))
    _latency = (_base_s[_i] if _i >= 0 else 1.0) * (5.0 if _n == 2 else 1.0)
    _tokens = _num(max_new_tokens, "max_new_tokens")
    return {"total_latency_s": _latency, "tokens_generated": _tokens, "tokens_per_sec": _tokens / _latency,
            "avg_latency_per_token_ms": 1000.0 * _latency / _tokens}


try:
    _frame = probe_edge_prompts(_tiny, _tok, 16, 4, prompts=_prompts)
finally:
    time_generate = _saved_time_generate
_got_names = _column(_frame, "prompt_name")
assert [_str(_v) for _v in _got_names] == _names, \
    f"one row per prompt of the prompts argument, named by its key, in order: expected {_names}, got {_got_names}"
_want_tokens = []
for _text in _texts:
    _ids = _tok(_text).input_ids
    assert _type(_ids) is _list
    _list.append(_want_tokens, _list.__len__(_ids))
_got_tokens = _numbers(_frame, "prompt_tokens")
assert _got_tokens == _want_tokens, \
    f"prompt_tokens must be the number of tokens the tokenizer gives each prompt ({_want_tokens}), got {_got_tokens}"
assert -1 not in [_c[0] for _c in _calls], "time_generate must be called with each prompt's own text"
_per_prompt = [_list.__len__([_c for _c in _calls if _c[0] == _i]) for _i in (0, 1, 2)]
assert _per_prompt[0] >= 4 and _per_prompt[1] >= 4 and _per_prompt[2] >= 4, \
    f"time each prompt `repeats` times (4 here): time_generate ran {_per_prompt} times per prompt"
assert [_c[1] for _c in _calls] == [16] * _list.__len__(_calls) and _numbers(_frame, "tokens_generated") == [16, 16, 16], \
    "every prompt must be timed with the same max_new_tokens (16 here), and tokens_generated report it"
assert _near(_numbers(_frame, "total_latency_s"), [1.0, 2.0, 0.5]) and \
    _near(_numbers(_frame, "tokens_per_sec"), [16.0, 8.0, 32.0]) and \
    _near(_numbers(_frame, "avg_latency_per_token_ms"), [62.5, 125.0, 31.25]), \
    "report, for each prompt, the median over its runs of total_latency_s, tokens_per_sec and avg_latency_per_token_ms"
_got_text = _column(_frame, "continuation")
_checked = 0
for _i in (0, 1, 2):
    _ids = _tok(_texts[_i], return_tensors="pt")
    with _torch.inference_mode():
        _out = _tiny.generate(**_ids, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                              pad_token_id=_tok.pad_token_id)
    _expected = _tok.decode(_out[0, _ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert _type(_expected) is _str and (_i > 0 or _str.__len__(_expected) > 60)  # the first is cut at 60
    _got = _got_text[_i]
    assert _type(_got) is _str and _str.__len__(_got) <= 60 and \
        _got.strip() in (_expected[:60].strip(), _expected.strip()[:60].strip()), \
        f"continuation of {_names[_i]!r}: the first 60 characters of the greedy continuation (the new tokens only, " \
        f"decoded), got {_got!r}"
    _checked += 1
assert _checked == 3
del _tiny
### END HIDDEN TESTS

