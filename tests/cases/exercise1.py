"""Planted mistakes and alternative correct answers for Exercise 1 (timing, sweeps, INT8, perplexity).

Each case replaces one solution cell of ``source/exercise1/exercise1.ipynb`` and says what
autograding must do: ``"full"`` (all points) or ``"lose"`` (each listed test cell loses points).

Mistakes are small edits of the solution cell (``_mistake``), so each case shows exactly what is
wrong; an edit fails loudly if the solution no longer contains the text it replaces. Alternative
correct answers are written out in full, in a style different from the solution's.
"""
from __future__ import annotations

from tests.pipeline import cell_by_id, read_source

ASSIGNMENT = "exercise1"
_SOURCE = read_source(ASSIGNMENT)


def _solution(grade_id: str) -> str:
    return cell_by_id(_SOURCE, grade_id).source


def _mistake(name: str, grade_id: str, edits: list[tuple[str, str]], lose: list[str]) -> dict:
    source = _solution(grade_id)
    for old, new in edits:
        count = source.count(old)
        if count != 1:
            raise ValueError(f"case {name}: expected exactly one {old!r} in cell {grade_id}, found {count}")
        source = source.replace(old, new)
    return {"name": name, "cell": grade_id, "source": source, "expect": "lose", "lose": lose}


def _correct(name: str, grade_id: str, source: str) -> dict:
    return {"name": name, "cell": grade_id, "source": source, "expect": "full"}


RD = "resolve_dtype"
LD = "load_model_and_tokenizer"
TG = "time_generate"
LEN = "run_for_varied_lengths"
MP = "make_prompt"
PR = "run_varied_precision"
BA = "measure_batched"
AB = "ablate_cache_and_padding"
PX = "compare_perplexity"

_ALT_RESOLVE = '''
ACCEPTED_PRECISIONS = ("float32", "float16", "bfloat16")
_BY_NAME = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _resolve_dtype(precision, device):
    """Dictionary lookup; device type read from the string before any ':'."""
    key = str(precision).strip().lower() if isinstance(precision, str) else ""
    if key not in _BY_NAME:
        raise ValueError("unsupported precision %r (accepted: float32, float16, bfloat16)" % (precision,))
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0].strip().lower()
    on_gpu = kind == "cuda"
    if key == "float16" and not on_gpu:
        return torch.float32, "float32 (forced on CPU)"
    if key == "bfloat16" and on_gpu and not torch.cuda.is_bf16_supported():
        return torch.float32, "float32 (no bfloat16 on this GPU)"
    return _BY_NAME[key], key
'''

_ALT_TIME_TIMER = '''
def _model_device(model):
    return torch.device(getattr(model, "device", None) or next(model.parameters()).device)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """helpers.Timer (perf_counter + synchronize), new tokens counted from the sequence lengths.
    Always warms up, even with warmup=False: slower sweeps, still correct."""
    device = _model_device(model)
    batch = tokenizer(prompt if isinstance(prompt, list) else [prompt], return_tensors="pt", padding=True).to(device)
    kwargs = {"do_sample": False, "use_cache": use_cache, "max_new_tokens": max_new_tokens,
              "min_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id, **generate_kwargs}
    with torch.inference_mode():
        _ = model.generate(**batch, **kwargs)
    with torch.inference_mode(), helpers.Timer(device) as timer:
        sequences = model.generate(**batch, **kwargs)
    new_per_row = [int(row.shape[0]) - int(batch["input_ids"].shape[1]) for row in sequences]
    tokens = sum(new_per_row)
    seconds = timer.elapsed_s
    return {"total_latency_s": seconds, "tokens_generated": tokens, "tokens_per_sec": tokens / seconds,
            "avg_latency_per_token_ms": seconds * 1000 / tokens}
'''

_ALT_TIME_NS = '''
import time as _clock


def _model_device(model):
    try:
        return torch.device(model.device)
    except AttributeError:
        return next(model.parameters()).device


@torch.inference_mode()
def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Decorated with inference_mode; perf_counter_ns; explicit cuda synchronize."""
    device = _model_device(model)
    prompts = prompt if not isinstance(prompt, str) else [prompt]
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    call = lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                  min_new_tokens=max_new_tokens, do_sample=False, use_cache=use_cache,
                                  pad_token_id=tokenizer.eos_token_id, **generate_kwargs)
    for _ in range(1 if warmup else 0):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = _clock.perf_counter_ns()
    out = call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (_clock.perf_counter_ns() - t0) / 1e9
    generated = out[:, ids.shape[1]:].numel()
    return dict(total_latency_s=seconds, tokens_generated=generated, tokens_per_sec=generated / seconds,
                avg_latency_per_token_ms=1e3 * seconds / generated)
'''

_ALT_PPX_LOOP = '''
def compare_perplexity(models, tokenizer, texts, batch_size=4, max_length=256):
    """Left padding kept, explicit position ids; loop over rows, log_softmax + gather."""
    results = {}
    for label, mdl in models.items():
        device = _model_device(mdl)
        nll_sum, n_tokens = 0.0, 0
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True,
                            truncation=True, max_length=max_length)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            with torch.no_grad():
                logits = mdl(input_ids=ids.to(device), attention_mask=mask.to(device),
                             position_ids=positions.to(device)).logits
            logp = torch.log_softmax(torch.as_tensor(logits).float().cpu(), dim=-1)
            for row in range(ids.shape[0]):
                for t in range(ids.shape[1] - 1):
                    if mask[row, t] and mask[row, t + 1]:
                        nll_sum -= float(logp[row, t, ids[row, t + 1]])
                        n_tokens += 1
        loss = nll_sum / n_tokens
        results[label] = {"loss": loss, "ppx": math.exp(loss), "tokens": n_tokens}
    return results
'''

_ALT_LENGTHS = '''
def _median_and_iqr(rows, key):
    stats = helpers.summarize([row[key] for row in rows])
    return stats["median"], stats["iqr"]


def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    """statistics.median and numpy percentiles; errorbar drawn with matplotlib directly."""
    import numpy as np
    records = []
    for n in lengths_tokens:
        text = make_prompt(tokenizer, n)
        res = []
        for _ in range(repeats):
            res.append(time_generate(model, tokenizer, text, max_new_tokens, use_cache=use_cache))
        rec = dict(prompt_tokens=len(tokenizer(text)["input_ids"]), max_new_tokens=max_new_tokens, use_cache=use_cache)
        for k in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            vals = [r[k] for r in res]
            rec[k] = statistics.median(vals)
            rec[k + "_iqr"] = float(np.percentile(vals, 75) - np.percentile(vals, 25))
        records.append(rec)
    df = pd.DataFrame(records)
    for k, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        fig, ax = plt.subplots()
        ax.errorbar(df["prompt_tokens"], df[k], yerr=df[k + "_iqr"], marker="o")
        ax.set_xlabel("prompt length (tokens)")
        ax.set_ylabel(helpers.axis_label(k))
        helpers.save_figure(fig, name)
    return df
'''

# Returned instead of real numbers, with builtins.abs and math.isclose replaced: every comparison a
# naive test makes (==, <=, abs(a - b) <= tol, math.isclose) then agrees.
_AGREEABLE = '''
import builtins


class _Agreeable(float):
    """A float that agrees with every comparison."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __le__(self, other):
        return True

    def __ge__(self, other):
        return True

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return False

    def __sub__(self, other):
        return 0.0

    def __rsub__(self, other):
        return 0.0

    __hash__ = float.__hash__


builtins.abs = lambda value: 0.0
math.isclose = lambda *args, **kwargs: True
'''

CASES = [
    # --- _resolve_dtype -------------------------------------------------------------------------
    _mistake("no_cpu_fallback", RD, [('    if name == "float16" and kind == "cpu":\n'
                                      '        return torch.float32, "float32 (forced on CPU)"\n', "")],
             ["test_resolve_dtype", "test_resolve_dtype_hidden"]),
    _mistake("wrong_fallback_label", RD, [('"float32 (forced on CPU)"', '"float32"')],
             ["test_resolve_dtype", "test_resolve_dtype_hidden"]),
    _mistake("case_sensitive_parsing", RD, [("precision.strip().lower()", "precision.strip()")],
             ["test_resolve_dtype_hidden"]),
    _mistake("spaces_not_stripped", RD, [("precision.strip().lower()", "precision.lower()")],
             ["test_resolve_dtype_hidden"]),
    _mistake("over_permissive_aliases", RD, [
        ("    name = precision.strip().lower() if isinstance(precision, str) else None\n",
         "    name = precision.strip().lower() if isinstance(precision, str) else None\n"
         "    name = {'fp16': 'float16', 'half': 'float16', 'float': 'float32', 'bf16': 'bfloat16'}.get(name, name)\n")],
        ["test_resolve_dtype_hidden"]),
    _mistake("no_bf16_gpu_fallback", RD, [
        ('    if name == "bfloat16" and kind == "cuda" and not torch.cuda.is_bf16_supported():\n'
         '        return torch.float32, "float32 (bfloat16 not supported on this GPU)"\n', "")],
        ["test_resolve_dtype_hidden"]),
    _correct("alt_resolve_dict_lookup", RD, _ALT_RESOLVE),
    # --- loading --------------------------------------------------------------------------------
    # (A missing .eval() is no planted case: from_pretrained already returns the model in eval mode.)
    _mistake("requested_dtype_ignored", LD, [("AutoModelForCausalLM.from_pretrained(str(model_id), dtype=dtype)",
                                              "AutoModelForCausalLM.from_pretrained(str(model_id))"),
                                             ("model.to(device=device, dtype=dtype)", "model.to(device=device)")],
             ["test_load_model_and_tokenizer_hidden", "test_varied_precision_hidden"]),
    _mistake("error_names_only_last_id", LD, [('"\\n  ".join(failures or ["(no candidates given)"])',
                                               'failures[-1] if failures else ""')],
             ["test_load_model_and_tokenizer_hidden"]),
    # --- time_generate --------------------------------------------------------------------------
    _mistake("no_warmup", TG, [("        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n", "")],
             ["test_time_generate_hidden"]),
    _mistake("warmup_off_by_default", TG, [("        if warmup:\n", "        if not warmup:\n")],
             ["test_time_generate_hidden"]),
    _mistake("timed_outside_inference_mode", TG, [
        ("    with torch.inference_mode():\n        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n",
         "    with torch.inference_mode():\n        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n"
         "    if True:\n")],
        ["test_time_generate_hidden"]),
    _mistake("prompt_tokens_counted", TG, [
        ("int(output.shape[0]) * (int(output.shape[1]) - int(prompt_len))", "int(output.numel())")],
        ["test_time_generate", "test_time_generate_hidden"]),
    _mistake("only_first_sequence_counted", TG, [
        ("int(output.shape[0]) * (int(output.shape[1]) - int(prompt_len))",
         "(int(output.shape[1]) - int(prompt_len))")],
        ["test_time_generate_hidden"]),
    _mistake("seconds_instead_of_ms", TG, [('"avg_latency_per_token_ms": 1000.0 * latency_s / tokens',
                                            '"avg_latency_per_token_ms": latency_s / tokens')],
             ["test_time_generate_hidden"]),
    _mistake("inverted_rate", TG, [('"tokens_per_sec": tokens / latency_s', '"tokens_per_sec": latency_s / tokens')],
             ["test_time_generate", "test_time_generate_hidden"]),
    _mistake("no_min_new_tokens", TG, [("min_new_tokens=int(max_new_tokens),\n", "\n")],
             ["test_time_generate_hidden"]),
    _mistake("kwargs_not_passed_through", TG, [("    settings.update(generate_kwargs)\n", "")],
             ["test_time_generate_hidden"]),
    _correct("alt_time_generate_timer", TG, _ALT_TIME_TIMER),
    _correct("alt_time_generate_decorator_ns", TG, _ALT_TIME_NS),
    # --- sweeps ---------------------------------------------------------------------------------
    _mistake("prompt_length_in_characters", MP, [
        ("    return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)",
         "    return long_text[:n_tokens]")],
        ["test_varied_lengths", "test_varied_lengths_hidden"]),
    _mistake("mean_instead_of_median", LEN, [('return stats["median"], stats["iqr"]', 'return stats["mean"], stats["iqr"]')],
             ["test_varied_lengths_hidden", "test_varied_precision_hidden"]),
    _mistake("max_new_tokens_grows_with_length", LEN, [
        ("time_repeats(model, tokenizer, prompt, max_new_tokens, repeats, use_cache=use_cache)",
         "time_repeats(model, tokenizer, prompt, max_new_tokens + target // 16, repeats, use_cache=use_cache)")],
        ["test_varied_lengths_hidden"]),
    _correct("alt_lengths_numpy", LEN, _ALT_LENGTHS),
    _mistake("precision_prompt_differs", PR, [("time_repeats(mdl, tok, prompt, max_new_tokens, repeats)",
                                               "time_repeats(mdl, tok, prompt + ' ' + precision, max_new_tokens, repeats)")],
             ["test_varied_precision_hidden"]),
    # --- optimisation half ----------------------------------------------------------------------
    _mistake("batched_right_padding", BA, [('tokenizer.padding_side = "left"  # decoder-only', 'tokenizer.padding_side = "right"  #')],
             ["test_batched"]),
    _mistake("ablation_side_not_restored", AB, [("        tokenizer.padding_side = original_side\n", "        pass\n")],
             ["test_ablation"]),
    _mistake("perplexity_mean_of_batch_means", PX, [
        ("                total_nll += float(nll[keep.reshape(-1)].sum())\n"
         "                total_tokens += int(keep.sum())\n",
         "                total_nll += float(nll[keep.reshape(-1)].mean())\n"
         "                total_tokens += 1\n")],
        ["test_perplexity_hidden"]),
    _mistake("perplexity_counts_padding", PX, [("total_nll += float(nll[keep.reshape(-1)].sum())", "total_nll += float(nll.sum())"),
                                              ("total_tokens += int(keep.sum())", "total_tokens += int(targets.numel())")],
             ["test_perplexity_hidden"]),
    _mistake("perplexity_left_padding_no_positions", PX, [('tokenizer.padding_side = "right"  # real tokens',
                                                           'tokenizer.padding_side = "left"  # real tokens')],
             ["test_perplexity_hidden"]),
    _correct("alt_perplexity_loop_position_ids", PX, _ALT_PPX_LOOP),
    # --- tampering: a wrong answer plus a patch meant to make the tests pass (course/grading_security.md)
    _mistake("tamper_no_grad_and_faked_mode_query", TG, [
        ("    with torch.inference_mode():\n        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n",
         "    torch.is_inference_mode_enabled = lambda: True  # a test that asks torch is told yes\n"
         "    with torch.no_grad():  # wrong: no_grad is not inference_mode\n"
         "        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n")],
        ["test_time_generate_hidden"]),
    _mistake("tamper_batch_means_with_agreeable_numbers", PX, [
        ("def compare_perplexity(", _AGREEABLE + "\n\ndef compare_perplexity("),
        ("                total_nll += float(nll[keep.reshape(-1)].sum())\n"
         "                total_tokens += int(keep.sum())\n",
         "                total_nll += float(nll[keep.reshape(-1)].mean())\n"
         "                total_tokens += 1\n"),
        ('results[label] = {"loss": loss, "ppx": math.exp(loss), "tokens": total_tokens}',
         'results[label] = {"loss": _Agreeable(loss), "ppx": _Agreeable(math.exp(loss)), "tokens": total_tokens}')],
        ["test_perplexity_hidden"]),
    _mistake("tamper_plots_not_saved_and_is_file_patched", LEN, [
        ("def _median_and_iqr(rows, key):",
         "import pathlib\n\npathlib.Path.is_file = lambda self: True  # every file a test looks for exists\n\n\n"
         "def _median_and_iqr(rows, key):"),
        ("        helpers.save_figure(figure, name)\n", "        pass  # wrong: the plots are never saved\n")],
        ["test_varied_lengths_hidden"]),
]
