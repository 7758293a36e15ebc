"""Planted mistakes and alternative correct answers for Exercise 1 (timing, sweeps, INT8, perplexity).

Each case replaces one solution cell of ``source/exercise1/exercise1.ipynb`` and says what
autograding must do: ``"full"`` (all points) or ``"lose"`` (each listed test cell loses points).

Mistakes are small edits of the solution cell (``_mistake``), so each case shows exactly what is
wrong; an edit fails loudly if the solution no longer contains the text it replaces. Alternative
correct answers are written out in full, in a style different from the solution's.
"""
from __future__ import annotations

from tests.cases.table import Table

ASSIGNMENT = "exercise1"
_TABLE = Table(ASSIGNMENT)
_solution, _mistake, _correct = _TABLE.solution, _TABLE.mistake, _TABLE.correct


RD = "resolve_dtype"
LD = "load_model_and_tokenizer"
TG = "time_generate"
LEN = "run_for_varied_lengths"
MP = "make_prompt"
PR = "run_varied_precision"
BA = "measure_batched"
AB = "ablate_cache_and_padding"
PX = "compare_perplexity"
PTQ = "run_static_ptq_optimum"
RT = "build_results_table"
EP = "probe_edge_prompts"
TPD = "time_prefill_decode"
PDS = "run_prefill_decode_for_lengths"

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
    if key == "float16" and kind == "cpu":
        return torch.float32, "float32 (forced on CPU)"
    if key == "bfloat16" and on_gpu and not torch.cuda.is_bf16_supported():
        return torch.float32, "float32 (no bfloat16 on this GPU)"
    return _BY_NAME[key], key
'''

_ALT_TIME_TIMER = '''
def _model_device(model):
    return torch.device(getattr(model, "device", None) or next(model.parameters()).device)


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """helpers.Timer (perf_counter + synchronize), new tokens counted from the sequence lengths;
    the BatchEncoding moved as a whole."""
    device = _model_device(model)
    batch = tokenizer(prompt if isinstance(prompt, list) else [prompt], return_tensors="pt", padding=True).to(device)
    kwargs = {"do_sample": False, "use_cache": use_cache, "max_new_tokens": max_new_tokens,
              "min_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id, **generate_kwargs}
    while warmup:
        with torch.inference_mode():
            _ = model.generate(**batch, **kwargs)
        warmup = False
    with torch.inference_mode(), helpers.Timer(device) as timer:
        sequences = model.generate(**batch, **kwargs)
    new_per_row = [int(row.shape[0]) - int(batch["input_ids"].shape[1]) for row in sequences]
    tokens = sum(new_per_row)
    seconds = timer.elapsed_s
    return {"total_latency_s": seconds, "tokens_generated": tokens, "tokens_per_sec": tokens / seconds,
            "avg_latency_per_token_ms": seconds * 1000 / tokens}
'''

_ALT_LOADER = """
def load_model_and_tokenizer(candidates, precision="float32", device="cpu"):
    # device_map places the weights; failures kept as repr() of the error; Path candidates allowed.
    dtype, label = _resolve_dtype(precision, device)
    ids = [candidates] if isinstance(candidates, (str, Path)) else list(candidates)
    tried = []
    for cid in ids:
        try:
            tok = AutoTokenizer.from_pretrained(cid)
            mdl = AutoModelForCausalLM.from_pretrained(cid, dtype=dtype, device_map=str(torch.device(device)))
        except (OSError, ValueError) as err:
            tried.append("- %s -> %r" % (cid, err))
            continue
        mdl.eval()
        print("Loaded: %s | device=%s | dtype=%s" % (cid, device, label))
        return tok, mdl, str(cid), label
    raise RuntimeError("could not load any of %d candidates:\\n%s" % (len(ids), "\\n".join(tried)))
"""

_ALT_LOADER_FOLDER_CHECK = '''
def load_model_and_tokenizer(candidates, precision="float32", device="cpu"):
    """As helpers.load_causal_lm does: a candidate that looks like a path must be an existing folder
    before from_pretrained is asked (its own FileNotFoundError otherwise); each failure reported as
    '<id>: <error type>: <message>'."""
    dtype, label = _resolve_dtype(precision, device)
    attempts = []
    for cid in ([candidates] if isinstance(candidates, (str, Path)) else candidates):
        cid = str(cid)
        try:
            if cid.startswith((".", "/", "~")) and not Path(cid).expanduser().is_dir():
                raise FileNotFoundError(f"no model folder at {cid} (run the set-up: make setup)")
            tok = AutoTokenizer.from_pretrained(cid)
            mdl = AutoModelForCausalLM.from_pretrained(cid, dtype=dtype).to(device).eval()
        except Exception as exc:
            attempts.append(f"  - {cid}: {type(exc).__name__}: {' '.join(str(exc).split())[:240]}")
            continue
        print(f"Loaded: {cid} | device={device} | dtype={label}")
        return tok, mdl, cid, label
    raise RuntimeError(f"none of the {len(attempts)} candidate model(s) could be loaded:\\n" + "\\n".join(attempts))
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

_ALT_LENGTHS_INTERLEAVED = '''
def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    """Round-robin over the lengths (each warmed once, in the first round), as a fair benchmark runs
    its arms; helpers.summarize for medians and IQRs."""
    prompts = [make_prompt(tokenizer, n) for n in lengths_tokens]
    runs = [[] for _ in prompts]
    for round_index in range(int(repeats)):
        for i, text in enumerate(prompts):
            runs[i].append(time_generate(model, tokenizer, text, max_new_tokens, use_cache=use_cache,
                                         warmup=round_index == 0))
    rows = []
    for text, timed in zip(prompts, runs):
        row = {"prompt_tokens": len(tokenizer(text).input_ids), "max_new_tokens": max_new_tokens, "use_cache": use_cache}
        for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            stats = helpers.summarize([r[key] for r in timed])
            row[key], row[key + "_iqr"] = stats["median"], stats["iqr"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        helpers.save_figure(helpers.plot_metric(frame["prompt_tokens"], frame[key], x_key="prompt_tokens", y_key=key,
                                                yerr=frame[key + "_iqr"]), name)
    return frame
'''

_ALT_BATCHED_INTERLEAVED = '''
def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """Round-robin over the batch sizes, statistics.median, side restored in a finally."""
    sizes = [int(b) for b in batch_sizes]
    batches = {b: [prompts[i % len(prompts)] for i in range(b)] for b in sizes}
    latency = {b: [] for b in sizes}
    rate = {b: [] for b in sizes}
    saved_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for r in range(int(repeats)):
            for b in sizes:
                result = time_generate(model, tokenizer, batches[b], max_new_tokens, warmup=r == 0)
                latency[b].append(result["total_latency_s"])
                rate[b].append(result["tokens_per_sec"])
    finally:
        tokenizer.padding_side = saved_side
    frame = pd.DataFrame([{"batch_size": b, "max_new_tokens": max_new_tokens,
                           "total_latency_s": statistics.median(latency[b]),
                           "tokens_per_sec": statistics.median(rate[b]),
                           "per_sample_latency_s": statistics.median(latency[b]),
                           "amortized_latency_per_sample_s": statistics.median(latency[b]) / b} for b in sizes])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    helpers.plot_metric(frame["batch_size"], frame["tokens_per_sec"], x_key="batch_size", y_key="tokens_per_sec",
                        ax=left)
    helpers.plot_metric(frame["batch_size"], frame["per_sample_latency_s"], x_key="batch_size",
                        y_key="per_sample_latency_s", ax=right)
    helpers.save_figure(figure, "batching")
    return frame
'''

_ALT_PRECISION_INTERLEAVED = '''
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats,
                         precisions=("float32", "float16", "bfloat16")):
    """Every precision loaded first, then the timed runs take turns (time_round_robin); numpy medians."""
    import numpy as np
    loaded = [(p, *load_model_and_tokenizer(candidates, p, device)) for p in precisions]
    arms = [(lambda warmup, m=m, t=t: time_generate(m, t, prompt, max_new_tokens, warmup=warmup))
            for _, t, m, _, _ in loaded]
    timings = time_round_robin(arms, repeats)
    rows = []
    for (p, _, _, model_id, label), runs in zip(loaded, timings):
        row = {"requested_precision": p, "dtype_label": label, "model_id": model_id, "device": str(device),
               "max_new_tokens": max_new_tokens}
        for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            values = np.array([r[key] for r in runs])
            row[key] = float(np.median(values))
            row[key + "_iqr"] = float(np.percentile(values, 75) - np.percentile(values, 25))
        rows.append(row)
    frame = pd.DataFrame(rows)
    figure, axis = plt.subplots()
    axis.bar(frame["dtype_label"] + " (" + frame["requested_precision"] + ")", frame["tokens_per_sec"])
    helpers.save_figure(figure, "precision_sweep")
    plt.close(figure)
    return frame
'''

_ALT_ABLATION = '''
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    """Repeats outside the arms (interleaved runs), statistics.median, side restored by hand."""
    side_before = tokenizer.padding_side
    timings = {arm: [] for arm in ABLATION_ARMS}
    batch = list(prompts)
    for _ in range(int(repeats)):
        for use_cache, side in ABLATION_ARMS:
            tokenizer.padding_side = side
            timings[(use_cache, side)].append(time_generate(model, tokenizer, batch, max_new_tokens, use_cache=use_cache))
    tokenizer.padding_side = side_before
    out = []
    for (use_cache, side), runs in timings.items():
        out.append({"use_cache": use_cache, "padding_side": side, "max_new_tokens": max_new_tokens,
                    **{k: statistics.median([r[k] for r in runs])
                       for k in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms")}})
    return pd.DataFrame(out)
'''

_ALT_ABLATION_SEQUENTIAL = '''
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    """One arm after the other (time_repeats per arm), not round-robin: still correct."""
    original_side = tokenizer.padding_side
    rows = []
    try:
        for use_cache, side in ABLATION_ARMS:
            tokenizer.padding_side = side
            runs = time_repeats(model, tokenizer, list(prompts), max_new_tokens, repeats, use_cache=use_cache)
            row = {"use_cache": use_cache, "padding_side": side, "batch_size": len(prompts),
                   "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
            for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
                stats = helpers.summarize([run[key] for run in runs])
                row[key], row[f"{key}_iqr"] = stats["median"], stats["iqr"]
            rows.append(row)
    finally:
        tokenizer.padding_side = original_side
    return pd.DataFrame(rows)
'''

_ALT_PRECISION_SEQUENTIAL = '''
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats,
                         precisions=("float32", "float16", "bfloat16")):
    """One precision after the other (load, time_repeats, free), not round-robin: still correct."""
    rows = []
    for precision in tqdm(list(precisions), desc="precisions"):
        tok, mdl, model_id, label = load_model_and_tokenizer(candidates, precision, device)
        runs = time_repeats(mdl, tok, prompt, max_new_tokens, repeats)
        row = {"requested_precision": precision, "dtype_label": label, "model_id": helpers.model_label(model_id),
               "device": str(device), "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            stats = helpers.summarize([run[key] for run in runs])
            row[key], row[f"{key}_iqr"] = stats["median"], stats["iqr"]
        rows.append(row)
        del mdl
    frame = pd.DataFrame(rows)
    figure = helpers.plot_bars([f"{r} -> {l}" for r, l in zip(frame["requested_precision"], frame["dtype_label"])],
                               frame["tokens_per_sec"], yerr=frame["tokens_per_sec_iqr"], y_key="tokens_per_sec",
                               title=f"{max_new_tokens} new tokens, median of {repeats}")
    helpers.save_figure(figure, "precision_sweep")
    plt.show()
    return frame
'''

_ALT_BATCHED = '''
import itertools


def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """itertools.cycle for the batch, numpy medians, matplotlib directly, saved with helpers.save_figure."""
    import numpy as np
    before = tokenizer.padding_side
    tokenizer.padding_side = "left"
    records = []
    try:
        for b in batch_sizes:
            batch = list(itertools.islice(itertools.cycle(prompts), b))
            lat, rate = [], []
            for _ in range(repeats):
                r = time_generate(model, tokenizer, batch, max_new_tokens)
                lat.append(r["total_latency_s"])
                rate.append(r["tokens_per_sec"])
            med = float(np.median(lat))
            records.append(dict(batch_size=b, total_latency_s=med, tokens_per_sec=float(np.median(rate)),
                                per_sample_latency_s=med, amortized_latency_per_sample_s=med / b,
                                max_new_tokens=max_new_tokens))
    finally:
        tokenizer.padding_side = before
    df = pd.DataFrame(records)
    fig, (left, right) = plt.subplots(1, 2)
    left.plot(df["batch_size"], df["tokens_per_sec"], marker="o")
    right.plot(df["batch_size"], df["per_sample_latency_s"], marker="o")
    helpers.save_figure(fig, "batching")
    plt.close(fig)
    return df
'''

# --- Parts B2, B3 and B5: what only their hidden tests check (test_*_hidden) -----------------------------
_ALT_ABLATION_FRAME = '''
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    """Every run in one long DataFrame, medians by a pandas groupby; one arm after the other (time_repeats);
    the tokenizer's side restored in a finally."""
    saved_side = tokenizer.padding_side
    records = []
    try:
        for use_cache, side in ABLATION_ARMS:
            tokenizer.padding_side = side
            for run in time_repeats(model, tokenizer, list(prompts), max_new_tokens, repeats, use_cache=use_cache):
                records.append({"use_cache": use_cache, "padding_side": side, **run})
    finally:
        tokenizer.padding_side = saved_side
    metrics = ["total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"]
    table = pd.DataFrame(records).groupby(["use_cache", "padding_side"], sort=False)[metrics].median().reset_index()
    table["max_new_tokens"] = max_new_tokens
    return table
'''

_ALT_BATCHED_FRAME_TWIN = '''
def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """time_repeats per batch size, the prompts cycled by repeating the list, pandas medians, left padding in a
    context manager; one chart with a twin axis, the latency drawn in milliseconds."""
    @contextlib.contextmanager
    def padded_on_the_left():
        before = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            yield
        finally:
            tokenizer.padding_side = before

    records = []
    with padded_on_the_left():
        for size in batch_sizes:
            batch = (list(prompts) * (int(size) // len(prompts) + 1))[:int(size)]
            for result in time_repeats(model, tokenizer, batch, max_new_tokens, repeats):
                records.append({"batch_size": int(size), **result})
    medians = pd.DataFrame(records).groupby("batch_size", sort=False)[["total_latency_s", "tokens_per_sec"]].median()
    frame = medians.reset_index()
    frame["per_sample_latency_s"] = frame["total_latency_s"]
    frame["amortized_latency_per_sample_s"] = frame["total_latency_s"] / frame["batch_size"]
    frame["max_new_tokens"] = int(max_new_tokens)
    figure, throughput_axis = plt.subplots()
    throughput_axis.plot(frame["batch_size"], frame["tokens_per_sec"], "o-", color="tab:blue")
    throughput_axis.set_ylabel("tokens/s (all sequences)")
    latency_axis = throughput_axis.twinx()
    latency_axis.plot(frame["batch_size"], 1000.0 * frame["per_sample_latency_s"], "s--", color="tab:red")
    latency_axis.set_ylabel("latency per request (ms)")
    helpers.save_figure(figure, "batching")
    plt.close(figure)
    return frame
'''

_ALT_RESULTS_COLUMNS = '''
RESULT_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
                  "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]


def build_results_table(rows):
    """Whole columns at once with pandas: absent keys become NaN, reindex orders the columns and drops the rest."""
    table = pd.DataFrame.from_records(list(rows)).rename(columns={"ppx": "perplexity"})
    table = table.reindex(columns=RESULT_COLUMNS)
    baseline = table.iloc[0]
    table["speedup_vs_baseline_x"] = table["tokens_per_sec"] / baseline["tokens_per_sec"]
    table["perplexity_change_pct"] = 100.0 * (table["perplexity"].astype(float) / float(baseline["perplexity"]) - 1.0)
    return table
'''

_FASTEST = "fastest = min(runs, key=lambda r: r[\"total_latency_s\"])  # best of the repeats, as timeit reports\n"

RV = "recommend_variant"
_ALT_RECOMMEND_LOOP = '''
def recommend_variant(table, tolerance=PERPLEXITY_TOLERANCE):
    """A loop over the rows; NaN is the one value not equal to itself."""
    best_name, best_rate = None, float("-inf")
    for _, row in table.iterrows():
        change = row["perplexity_change_pct"]
        if change == change and change <= tolerance * 100 and row["tokens_per_sec"] > best_rate:
            best_name, best_rate = row["variant"], row["tokens_per_sec"]
    return best_name
'''

_ALT_RECOMMEND_SORTED = '''
def recommend_variant(table, tolerance=PERPLEXITY_TOLERANCE):
    """Drop the unmeasured, keep the acceptable, sort a copy by speed."""
    ok = table.dropna(subset=["perplexity_change_pct"])
    ok = ok[ok.perplexity_change_pct.le(tolerance * 100)]
    return ok.sort_values("tokens_per_sec", ascending=False, kind="stable")["variant"].iloc[0]
'''

_ALT_RECOMMEND_FROM_PERPLEXITY = '''
def recommend_variant(table, tolerance=PERPLEXITY_TOLERANCE):
    """Quality read from the perplexity column against the baseline's (first row)."""
    base = float(table["perplexity"].iloc[0])
    candidates = [(float(r.tokens_per_sec), str(r.variant)) for r in table.itertuples()
                  if r.perplexity == r.perplexity and r.perplexity / base - 1 <= tolerance + 1e-12]
    return max(candidates)[1]
'''

RECOMMEND_CASES = [
    _mistake("recommend_ignores_quality", RV, [('within = table["perplexity_change_pct"] <= 100 * float(tolerance)',
                                                'within = table["tokens_per_sec"] > 0')],
             ["test_recommend_variant", "test_recommend_variant_hidden"]),
    _mistake("recommend_fixed_three_percent", RV, [("<= 100 * float(tolerance)", "<= 100 * 0.03")],
             ["test_recommend_variant_hidden"]),
    _mistake("recommend_tolerance_read_as_percent", RV, [("<= 100 * float(tolerance)", "<= float(tolerance)")],
             ["test_recommend_variant", "test_recommend_variant_hidden"]),
    _mistake("recommend_improvement_rejected", RV, [('table["perplexity_change_pct"] <= 100',
                                                     'table["perplexity_change_pct"].abs() <= 100')],
             ["test_recommend_variant_hidden"]),
    _mistake("recommend_unmeasured_qualifies", RV, [('within = table["perplexity_change_pct"] <= 100 * float(tolerance)',
                                                     'within = ~(table["perplexity_change_pct"] > 100 * float(tolerance))')],
             ["test_recommend_variant_hidden"]),
    _mistake("recommend_returns_row_label", RV, [('return str(table.loc[fastest, "variant"])', "return fastest")],
             ["test_recommend_variant", "test_recommend_variant_hidden"]),
    _mistake("recommend_sorts_table_in_place", RV, [
        ('    within = table["perplexity_change_pct"]',
         '    table.sort_values("tokens_per_sec", ascending=False, inplace=True)\n    within = table["perplexity_change_pct"]')],
        ["test_recommend_variant_hidden"]),
    _correct("alt_recommend_loop", RV, _ALT_RECOMMEND_LOOP),
    _correct("alt_recommend_sorted_copy", RV, _ALT_RECOMMEND_SORTED),
    _correct("alt_recommend_from_perplexity", RV, _ALT_RECOMMEND_FROM_PERPLEXITY),
]

B2_B3_B5_CASES = [
    # B2 ablate_cache_and_padding
    _mistake("ablation_repeats_hard_coded", AB, [("for use_cache, side in ABLATION_ARMS], repeats)",
                                                  "for use_cache, side in ABLATION_ARMS], 3)")],
             ["test_ablation_hidden"]),
    _mistake("ablation_fastest_run_not_median", AB, [
        ('            row.update(helpers.medians_with_iqr(runs))\n',
         "            " + _FASTEST +
         '            for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):\n'
         '                row[key], row[f"{key}_iqr"] = fastest[key], 0.0\n')],
        ["test_ablation_hidden"]),
    _mistake("ablation_timings_on_wrong_rows", AB, [("zip(ABLATION_ARMS, timings)", "zip(ABLATION_ARMS, timings[::-1])")],
             ["test_ablation_hidden"]),
    _mistake("ablation_side_reset_to_left", AB, [("        tokenizer.padding_side = original_side\n",
                                                  '        tokenizer.padding_side = "left"\n')],
             ["test_ablation_hidden"]),
    _mistake("ablation_left_arms_keep_original_side", AB, [
        ("            tokenizer.padding_side = side\n",
         '            tokenizer.padding_side = side if side == "right" else original_side  # left: as found\n')],
        ["test_ablation_hidden"]),
    _mistake("ablation_batch_first_two_prompts", AB, [("    batch = list(prompts)\n", "    batch = list(prompts)[:2]\n")],
             ["test_ablation_hidden"]),
    _mistake("ablation_max_new_tokens_column_missing", AB, [
        ('"max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}', '"repeats": int(repeats)}')],
        ["test_ablation_hidden"]),
    _correct("alt_ablation_runs_frame_groupby", AB, _ALT_ABLATION_FRAME),
    # B3 measure_batched
    _mistake("batched_first_prompt_repeated", BA, [("batch = [prompts[i % len(prompts)] for i in range(int(size))]",
                                                    "batch = [prompts[0]] * int(size)")],
             ["test_batched_hidden"]),
    _mistake("batched_padding_side_flipped", BA, [
        ('tokenizer.padding_side = "left"  # decoder-only',
         'tokenizer.padding_side = "left" if original_side == "right" else "right"  # flipped; decoder-only')],
        ["test_batched_hidden"]),
    _mistake("batched_side_reset_to_right", BA, [("        tokenizer.padding_side = original_side\n",
                                                  '        tokenizer.padding_side = "right"\n')],
             ["test_batched_hidden"]),
    _mistake("batched_repeats_hard_coded", BA, [("for size in sizes], repeats)", "for size in sizes], 3)")],
             ["test_batched_hidden"]),
    _mistake("batched_fastest_run_not_median", BA, [
        ('                   **helpers.medians_with_iqr(runs, ("total_latency_s", "tokens_per_sec"))}\n',
         '                   "total_latency_s": min(r["total_latency_s"] for r in runs), "total_latency_s_iqr": 0.0,\n'
         '                   "tokens_per_sec": max(r["tokens_per_sec"] for r in runs), "tokens_per_sec_iqr": 0.0}\n')],
        ["test_batched_hidden"]),
    _mistake("batched_max_new_tokens_hard_coded", BA, [
        ("time_generate(model, tokenizer, batch, max_new_tokens, warmup=warmup)",
         "time_generate(model, tokenizer, batch, 4, warmup=warmup)")],
        ["test_batched_hidden"]),
    _mistake("batched_max_new_tokens_column_missing", BA, [
        ('"max_new_tokens": int(max_new_tokens), "repeats": int(repeats),', '"repeats": int(repeats),')],
        ["test_batched_hidden"]),
    _mistake("batched_latency_not_plotted", BA, [
        ('    helpers.plot_columns(frame, "batch_size", "per_sample_latency_s", "batching", title="latency per request",\n'
         '                         iqr_key="total_latency_s_iqr", ax=axes[1])\n', "")],
        ["test_batched_hidden"]),
    _correct("alt_batched_repeats_frame_twin_axis", BA, _ALT_BATCHED_FRAME_TWIN),
    # B5 build_results_table
    _mistake("results_speedup_vs_slowest", RT, [
        ('base_rate, base_ppx = rows[0]["tokens_per_sec"], rows[0].get("ppx")',
         'base_rate, base_ppx = min(row["tokens_per_sec"] for row in rows), rows[0].get("ppx")')],
        ["test_results_table_hidden"]),
    _mistake("results_perplexity_not_carried", RT, [('"perplexity": ppx,', '"perplexity": row.get("perplexity", float("nan")),')],
             ["test_results_table_hidden"]),
    _mistake("results_change_vs_previous_row", RT, [
        ('        ppx = row.get("ppx", float("nan"))\n',
         '        ppx = row.get("ppx", float("nan"))\n'
         '        base_ppx = table[-1]["perplexity"] if table else base_ppx  # wrong: against the row before\n')],
        ["test_results_table_hidden"]),
    _mistake("results_missing_ppx_zero", RT, [('ppx = row.get("ppx", float("nan"))', 'ppx = row.get("ppx", 0.0)')],
             ["test_results_table_hidden"]),
    _mistake("results_baseline_without_ppx_raises", RT, [('rows[0].get("ppx")', 'rows[0]["ppx"]')],
             ["test_results_table_hidden"]),
    _mistake("results_size_not_carried", RT, [('"size_mb": row.get("size_mb", float("nan"))', '"size_mb": float("nan")')],
             ["test_results_table_hidden"]),
    _mistake("results_latencies_swapped", RT, [
        ('"total_latency_s": row["total_latency_s"], "avg_latency_per_token_ms": row["avg_latency_per_token_ms"]',
         '"total_latency_s": row["avg_latency_per_token_ms"], "avg_latency_per_token_ms": row["total_latency_s"]')],
        ["test_results_table_hidden"]),
    _mistake("results_rows_sorted_by_name", RT, [("return pd.DataFrame(table, columns=RESULT_COLUMNS)",
                                                  'return pd.DataFrame(table, columns=RESULT_COLUMNS).sort_values("variant")')],
             ["test_results_table_hidden"]),
    _mistake("results_extra_keys_kept", RT, [
        ("return pd.DataFrame(table, columns=RESULT_COLUMNS)",
         'return pd.DataFrame([{**entry, **{k: v for k, v in row.items() if k not in entry and k != "ppx"}}\n'
         "                         for row, entry in zip(rows, table)])")],
        ["test_results_table_hidden"]),
    _correct("alt_results_table_pandas_columns", RT, _ALT_RESULTS_COLUMNS),
]


_ALT_EDGE = '''
def probe_edge_prompts(model, tokenizer, max_new_tokens, repeats, prompts=EDGE_PROMPTS):
    """time_repeats for the timings, statistics.median, the continuation stripped before the cut."""
    out = []
    for name in prompts:
        text = prompts[name]
        ids = tokenizer(text, return_tensors="pt").to(_model_device(model))
        with torch.no_grad():
            seq = model.generate(**ids, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.eos_token_id)
        n = ids["input_ids"].shape[-1]
        runs = time_repeats(model, tokenizer, text, max_new_tokens, repeats)
        out.append({"prompt_name": name, "prompt_tokens": n, "tokens_generated": runs[-1]["tokens_generated"],
                    "total_latency_s": statistics.median(r["total_latency_s"] for r in runs),
                    "tokens_per_sec": statistics.median(r["tokens_per_sec"] for r in runs),
                    "avg_latency_per_token_ms": statistics.median(r["avg_latency_per_token_ms"] for r in runs),
                    "continuation": tokenizer.decode(seq[0][n:], skip_special_tokens=True).strip()[:60]})
    return pd.DataFrame(out)
'''

_ALT_EDGE_ROUND_ROBIN = '''
import numpy as np


def probe_edge_prompts(model, tokenizer, max_new_tokens, repeats, prompts=EDGE_PROMPTS):
    """One discarded warm-up run per prompt, then the prompts take turns (time_round_robin); numpy
    medians; the length from tokenizer.encode; the preview decoded with batch_decode."""
    names = list(prompts.keys())
    arms = [lambda warm, text=prompts[name]: time_generate(model, tokenizer, text, max_new_tokens, warmup=warm)
            for name in names]
    for arm in arms:
        arm(False)  # warm-up, result discarded
    timings = time_round_robin(arms, repeats)
    device = next(model.parameters()).device
    records = []
    for name, runs in zip(names, timings):
        ids = torch.tensor([tokenizer.encode(prompts[name])], device=device)
        with torch.inference_mode():
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        preview = tokenizer.batch_decode(seq[:, ids.shape[1]:], skip_special_tokens=True)[0]
        record = {"prompt_name": name, "prompt_tokens": int(ids.shape[1])}
        for key in ("tokens_generated", "total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            record[key] = float(np.median([run[key] for run in runs]))
        record["tokens_generated"] = int(record["tokens_generated"])
        record["continuation"] = preview[:60]
        records.append(record)
    return pd.DataFrame.from_records(records)
'''

_ALT_PREFILL_DUCK_NS = '''
import time as _t

import numpy as np


class _Stamps:
    """Duck-typed streamer (put and end only): every put is stamped, the prompt's stamp dropped afterwards."""

    def __init__(self, device):
        self.device, self.stamps = device, []

    def put(self, value):
        helpers.synchronize(self.device)
        self.stamps.append(_t.perf_counter_ns())

    def end(self):
        helpers.synchronize(self.device)


@torch.inference_mode()
def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Decorated with inference_mode; perf_counter_ns; numpy diff and median; the BatchEncoding moved whole."""
    device = _model_device(model)
    batch = tokenizer([prompt], return_tensors="pt").to(device)
    kwargs = {"do_sample": False, "use_cache": use_cache, "max_new_tokens": max_new_tokens,
              "min_new_tokens": max_new_tokens, "pad_token_id": tokenizer.eos_token_id, **generate_kwargs}
    if warmup:
        model.generate(**batch, **kwargs)
    stamps = _Stamps(device)
    helpers.synchronize(device)
    t0 = _t.perf_counter_ns()
    model.generate(**batch, streamer=stamps, **kwargs)
    helpers.synchronize(device)
    t1 = _t.perf_counter_ns()
    new = stamps.stamps[1:]  # the first put is the prompt
    tpot_ms = float(np.median(np.diff(np.array(new, dtype=np.int64)))) / 1e6
    return {"ttft_s": (new[0] - t0) / 1e9, "tpot_ms": tpot_ms, "decode_tokens_per_sec": 1e3 / tpot_ms,
            "total_latency_s": (t1 - t0) / 1e9, "tokens_generated": len(new),
            "prompt_tokens": int(batch["input_ids"].shape[-1])}
'''

_ALT_PREFILL_SHAPE_TIMER = '''
from transformers.generation.streamers import BaseStreamer


class NewTokenTimes(BaseStreamer):
    """Tells the prompt (2-D) from a new token (1-D) by its shape; synchronises, then stamps."""

    def __init__(self, device):
        super().__init__()
        self.device, self.times = device, []

    def put(self, value):
        if value.dim() > 1:
            return
        helpers.synchronize(self.device)
        self.times.append(time.perf_counter())

    def end(self):
        pass


def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """helpers.Timer for the whole call; warm-up and timed call in separate inference_mode blocks."""
    device = _model_device(model)
    enc = tokenizer(prompt, return_tensors="pt")
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)

    def run(streamer=None):
        return model.generate(input_ids=ids, attention_mask=mask, streamer=streamer, do_sample=False,
                              max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, use_cache=use_cache,
                              pad_token_id=tokenizer.eos_token_id, **generate_kwargs)

    if warmup:
        with torch.inference_mode():
            run()
    times = NewTokenTimes(device)
    with torch.inference_mode():
        with helpers.Timer(device) as timer:
            t0 = time.perf_counter()
            out = run(times)
    gaps = [b - a for a, b in zip(times.times[:-1], times.times[1:])]
    tpot_ms = statistics.median(gaps) * 1000
    return {"ttft_s": times.times[0] - t0, "tpot_ms": tpot_ms, "decode_tokens_per_sec": 1000 / tpot_ms,
            "total_latency_s": timer.elapsed_s, "tokens_generated": int(out.shape[-1] - ids.shape[-1]),
            "prompt_tokens": int(ids.shape[-1])}
'''

_ALT_PREFILL_SWEEP = '''
def run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats):
    """No separate warm-up call: the first round warms each length (warmup=True), later rounds do not;
    numpy medians and percentiles; matplotlib errorbar drawn directly; prompt_tokens from the result."""
    import numpy as np
    texts = {n: make_prompt(tokenizer, n) for n in lengths_tokens}
    results = {n: [] for n in lengths_tokens}
    for r in range(repeats):
        for n, text in texts.items():
            results[n].append(time_prefill_decode(model, tokenizer, text, max_new_tokens, warmup=(r == 0)))
    table = []
    for n in lengths_tokens:
        rec = {"prompt_tokens": results[n][0]["prompt_tokens"], "max_new_tokens": max_new_tokens}
        for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec"):
            v = np.array([x[k] for x in results[n]], dtype=float)
            rec[k] = float(np.median(v))
            rec[k + "_iqr"] = float(np.percentile(v, 75) - np.percentile(v, 25))
        table.append(rec)
    df = pd.DataFrame(table)
    for k, name in (("ttft_s", "prefill_decode_ttft"), ("tpot_ms", "prefill_decode_tpot")):
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

# --- Part B7 (memory-bandwidth bound of decode) ---------------------------------------------
DB = "decode_bytes_per_token"
MB = "add_memory_bound"
_DB_ALL = ["test_decode_bytes", "test_decode_bytes_torch_hidden", "test_decode_bytes_onnx_hidden"]
_DB_HIDDEN = ["test_decode_bytes_torch_hidden", "test_decode_bytes_onnx_hidden"]

_ALT_DECODE_STORAGES_NUMPY = '''
import json as _json

import onnx
from onnx import numpy_helper


def _kv_bytes(cfg, context_tokens, batch_size, element):
    cfg = cfg if isinstance(cfg, dict) else cfg.to_dict()
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    kv_heads = cfg.get("num_key_value_heads") or heads
    return 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * context_tokens * batch_size * element


def decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1, kv_bytes_per_element=None):
    """state_dict with storages deduplicated; ONNX arrays read whole through numpy_helper."""
    if isinstance(model_or_onnx_path, torch.nn.Module):
        m = model_or_onnx_path
        emb_key = m.get_input_embeddings().weight.untyped_storage().data_ptr()
        out = m.get_output_embeddings()
        tied = out is not None and out.weight.untyped_storage().data_ptr() == emb_key
        storages = {t.untyped_storage().data_ptr(): t for t in m.state_dict().values()}
        total = 0
        for key, t in storages.items():
            rows = batch_size if key == emb_key and not tied else t.shape[0]
            total += rows * (t.nelement() // t.shape[0]) * t.element_size()
        el = kv_bytes_per_element if kv_bytes_per_element is not None else m.dtype.itemsize
        return total + _kv_bytes(m.config, context_tokens, batch_size, el)
    p = Path(model_or_onnx_path)
    if p.is_dir():
        p = p / "model.onnx" if (p / "model.onnx").exists() else next(p.glob("*.onnx"))
    proto = onnx.load(str(p))  # external data loaded too: numpy_helper needs the bytes
    full_read, lookup = set(), set()
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            (lookup if node.op_type == "Gather" and i == 0 else full_read).add(name)
    total = 0
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)  # 4-bit types come back one element per byte: stored two to a byte
        stored = arr.size // 2 if init.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else arr.nbytes
        total += batch_size * stored // arr.shape[0] if init.name in lookup and init.name not in full_read else stored
    cfg = _json.loads((p.parent / "config.json").read_text())
    el = kv_bytes_per_element if kv_bytes_per_element is not None else 4
    return total + _kv_bytes(cfg, context_tokens, batch_size, el)
'''

_ALT_DECODE_IDENTITY_AUTOCONFIG = '''
import functools
import operator

import onnx
from transformers import AutoConfig

_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.BFLOAT16: 2,
          onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1,
          onnx.TensorProto.INT16: 2, onnx.TensorProto.UINT16: 2, onnx.TensorProto.INT32: 4,
          onnx.TensorProto.UINT32: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8,
          onnx.TensorProto.BOOL: 1, onnx.TensorProto.INT4: 0.5, onnx.TensorProto.UINT4: 0.5}


def decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1, kv_bytes_per_element=None):
    """named_parameters (ties are the same Parameter object); AutoConfig for the ONNX side; a size table."""
    if hasattr(model_or_onnx_path, "named_parameters"):
        model = model_or_onnx_path
        embed, head = model.get_input_embeddings().weight, getattr(model.get_output_embeddings(), "weight", None)
        total = 0
        for _, p in model.named_parameters():  # duplicates (tied weights) are skipped by default
            if p is embed and head is not embed:
                total += batch_size * p.shape[1] * p.element_size()
            else:
                total += p.numel() * p.element_size()
        config, element = model.config, kv_bytes_per_element or embed.element_size()
    else:
        path = Path(model_or_onnx_path)
        if path.suffix != ".onnx":
            path = path / "model.onnx"
        graph = onnx.load(str(path), load_external_data=False).graph
        readers = {}
        for node in graph.node:
            for index, name in enumerate(node.input):
                readers.setdefault(name, set()).add("lookup" if (node.op_type, index) == ("Gather", 0) else "full")
        total = 0
        for t in graph.initializer:
            size = functools.reduce(operator.mul, t.dims, 1) * _BYTES[t.data_type]
            if readers.get(t.name) == {"lookup"}:
                size = size // t.dims[0] * batch_size
            total += size
        config, element = AutoConfig.from_pretrained(str(path.parent)), kv_bytes_per_element or 4
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    per_token = 2 * config.num_hidden_layers * kv_heads * head_dim * element
    return int(total + per_token * context_tokens * batch_size)
'''

_ALT_BOUND_ASSIGN = '''
def add_memory_bound(table, bandwidth_gbps, bytes_by_row, key="variant", ms_column="avg_latency_per_token_ms"):
    """Series.map and DataFrame.assign (which returns a new frame)."""
    ms_per_byte = 1e3 / (float(bandwidth_gbps) * 1e9)
    bound = table[key].map(lambda k: bytes_by_row.get(k, float("nan"))).astype(float) * ms_per_byte
    return table.assign(bound_ms_per_token=bound, pct_of_bound=bound / table[ms_column] * 100)
'''

B7_CASES = [
    _mistake("tied_weights_counted_twice", DB, [
        ("for param in model.parameters():", "for param in model.state_dict().values():"),
        ("            if param.data_ptr() in seen:\n                continue  # shares memory with a parameter already counted\n", "")],
        ["test_decode_bytes", "test_decode_bytes_torch_hidden"]),
    _mistake("untied_embedding_counted_in_full", DB, [
        ("            if param.data_ptr() == embedding.data_ptr() and not tied:", "            if False:")],
        ["test_decode_bytes_torch_hidden"]),
    _mistake("tied_embedding_counted_as_lookup", DB, [
        ("            if param.data_ptr() == embedding.data_ptr() and not tied:",
         "            if param.data_ptr() == embedding.data_ptr():")],
        ["test_decode_bytes", "test_decode_bytes_torch_hidden"]),
    _mistake("lookup_one_row_whatever_the_batch", DB, [
        ("weights += batch_size * (param.numel() // param.shape[0])", "weights += (param.numel() // param.shape[0])")],
        ["test_decode_bytes_torch_hidden"]),
    _mistake("kv_cache_missing", DB, [("return weights + kv_cache_bytes(model.config, element)", "return weights"),
                                      ("return weights + kv_cache_bytes(config, kv_bytes_per_element or 4)", "return weights")],
             _DB_ALL),
    _mistake("kv_keys_only", DB, [("return 2 * layers * kv_heads", "return layers * kv_heads")], _DB_ALL),
    _mistake("kv_attention_heads_not_kv_heads", DB, [
        ('kv_heads = int(get("num_key_value_heads", None) or heads)', "kv_heads = heads")], _DB_ALL),
    _mistake("kv_head_dim_from_hidden_size", DB, [
        ('head_dim = int(get("head_dim", None) or int(get("hidden_size")) // heads)',
         'head_dim = int(get("hidden_size")) // heads')], _DB_HIDDEN),
    _mistake("kv_context_ignored", DB, [("* context_tokens * batch_size *", "* batch_size *")], _DB_ALL),
    _mistake("kv_batch_ignored", DB, [("* context_tokens * batch_size *", "* context_tokens *")], _DB_HIDDEN),
    _mistake("weights_multiplied_by_batch", DB, [
        ("return weights + kv_cache_bytes(model.config, element)",
         "return batch_size * weights + kv_cache_bytes(model.config, element)"),
        ("return weights + kv_cache_bytes(config, kv_bytes_per_element or 4)",
         "return batch_size * weights + kv_cache_bytes(config, kv_bytes_per_element or 4)")], _DB_HIDDEN),
    _mistake("kv_bytes_per_element_ignored", DB, [
        ("element = kv_bytes_per_element or next(model.parameters()).element_size()",
         "element = next(model.parameters()).element_size()"),
        ("kv_cache_bytes(config, kv_bytes_per_element or 4)", "kv_cache_bytes(config, 4)")], _DB_HIDDEN),
    _mistake("float16_counted_as_4_bytes", DB, [
        ("                weights += param.numel() * param.element_size()", "                weights += param.numel() * 4"),
        ("element = kv_bytes_per_element or next(model.parameters()).element_size()",
         "element = kv_bytes_per_element or 4")], ["test_decode_bytes_torch_hidden"]),
    _mistake("onnx_scales_and_zero_points_ignored", DB, [
        ("        count = math.prod(tensor.dims)\n",
         "        if tensor.name.endswith((\"scale\", \"scales\", \"zero_point\", \"zero_points\")):\n"
         "            continue  # only the weights themselves\n"
         "        count = math.prod(tensor.dims)\n")], ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_everything_float32", DB, [
        ("stored = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize", "stored = count * 4")],
        ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_size_from_raw_data", DB, [
        ("stored = count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize",
         "stored = len(tensor.raw_data)")], ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_embedding_counted_in_full", DB, [
        ("        if readers and tensor.dims and all(", "        if False and readers and tensor.dims and all(")],
        ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_any_gather_input_is_a_lookup", DB, [
        ('all(op == "Gather" and position == 0 for op, position in readers)',
         'all(op == "Gather" for op, position in readers)')], ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_rotary_tables_counted_as_lookups", DB, [
        ('all(op == "Gather" and position == 0 for op, position in readers)',
         '(all(op == "Gather" and position == 0 for op, position in readers)\n'
         '                                        or tensor.name.endswith(("cos_cache", "sin_cache")))')],
        ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_kv_default_two_bytes", DB, [("kv_cache_bytes(config, kv_bytes_per_element or 4)",
                                                "kv_cache_bytes(config, kv_bytes_per_element or 2)")],
             ["test_decode_bytes_onnx_hidden"]),
    _mistake("onnx_4bit_counted_as_one_byte", DB, [("four_bit = {onnx.TensorProto.INT4, onnx.TensorProto.UINT4}",
                                                    "four_bit = set()")], ["test_decode_bytes_onnx_hidden"]),
    _correct("alt_decode_bytes_storages_numpy_helper", DB, _ALT_DECODE_STORAGES_NUMPY),
    _correct("alt_decode_bytes_identity_autoconfig", DB, _ALT_DECODE_IDENTITY_AUTOCONFIG),
    _mistake("bound_in_seconds", MB, [("[b / (bandwidth_gbps * 1e9) * 1000.0 for b", "[b / (bandwidth_gbps * 1e9) for b")],
             ["test_memory_bound"]),
    _mistake("bound_gb_as_gib", MB, [("(bandwidth_gbps * 1e9)", "(bandwidth_gbps * 2**30)")], ["test_memory_bound"]),
    _mistake("pct_of_bound_inverted", MB, [('100.0 * out["bound_ms_per_token"] / out[ms_column]',
                                            '100.0 * out[ms_column] / out["bound_ms_per_token"]')],
             ["test_memory_bound"]),
    _mistake("bound_changes_the_input_table", MB, [("out = table.copy()", "out = table")], ["test_memory_bound"]),
    _mistake("bound_missing_row_is_zero", MB, [('else float("nan")', "else 0.0")], ["test_memory_bound"]),
    _mistake("bound_ms_column_ignored", MB, [("/ out[ms_column]", '/ out["avg_latency_per_token_ms"]')],
             ["test_memory_bound"]),
    _mistake("bound_key_ignored", MB, [("for k in out[key]]", 'for k in out["variant"]]')], ["test_memory_bound"]),
    _correct("alt_memory_bound_map_assign", MB, _ALT_BOUND_ASSIGN),
    # tampering: K only (no factor 2), returned as a number that agrees with every comparison
    _mistake("tamper_kv_keys_only_agreeable_number", DB, [
        ("def decode_bytes_per_token(", _AGREEABLE + "\n\ndef decode_bytes_per_token("),
        ("return 2 * layers * kv_heads", "return layers * kv_heads"),
        ("return weights + kv_cache_bytes(model.config, element)",
         "return _Agreeable(weights + kv_cache_bytes(model.config, element))"),
        ("return weights + kv_cache_bytes(config, kv_bytes_per_element or 4)",
         "return _Agreeable(weights + kv_cache_bytes(config, kv_bytes_per_element or 4))")], _DB_HIDDEN),
]


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
    _mistake("error_message_without_accepted_values", RD, [('f"{\', \'.join(ACCEPTED_PRECISIONS)} (any case)")', 'f"see the exercise text")')],
             ["test_resolve_dtype_hidden"]),
    _mistake("bad_precision_raises_key_error", RD, [('raise ValueError(f"precision', 'raise KeyError(f"precision')],
             ["test_resolve_dtype", "test_resolve_dtype_hidden"]),
    _mistake("float16_forced_on_gpu_too", RD, [('if name == "float16" and kind == "cpu":', 'if name == "float16":')],
             ["test_resolve_dtype_hidden"]),
    _mistake("bfloat16_forced_on_cpu", RD, [('    if name == "float16" and kind == "cpu":\n',
                                             '    if name == "bfloat16" and kind == "cpu":\n'
                                             '        return torch.float32, "float32 (forced on CPU)"\n'
                                             '    if name == "float16" and kind == "cpu":\n')],
             ["test_resolve_dtype_hidden"]),
    _mistake("bf16_gpu_fallback_label_plain", RD, [('"float32 (bfloat16 not supported on this GPU)"', '"float32"')],
             ["test_resolve_dtype_hidden"]),
    _mistake("device_object_rejected", RD, [("kind = torch.device(device).type", 'kind = device.split(":")[0]')],
             ["test_resolve_dtype_hidden"]),
    _mistake("float16_forced_wherever_not_cuda", RD, [('if name == "float16" and kind == "cpu":',
                                                       'if name == "float16" and kind != "cuda":')],
             ["test_resolve_dtype_hidden"]),
    _mistake("cuda_index_not_parsed", RD, [("kind = torch.device(device).type", "kind = str(device)")],
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
    _mistake("candidates_tried_in_reverse", LD, [("else list(candidates):", "else list(candidates)[::-1]:")],
             ["test_load_model_and_tokenizer_hidden"]),
    _mistake("tokenizer_from_last_candidate", LD, [
        ("AutoTokenizer.from_pretrained(str(model_id))",
         "AutoTokenizer.from_pretrained(str(([candidates] if isinstance(candidates, (str, Path)) else list(candidates))[-1]))")],
        ["test_load_model_and_tokenizer_hidden"]),
    _mistake("model_not_moved_to_device", LD, [("model.to(device=device, dtype=dtype)", "model.to(dtype=dtype)")],
             ["test_load_model_and_tokenizer_hidden"]),
    _mistake("model_left_in_train_mode", LD, [("model.to(device=device, dtype=dtype).eval()",
                                               "model.to(device=device, dtype=dtype).train()")],
             ["test_load_model_and_tokenizer", "test_load_model_and_tokenizer_hidden"]),
    _mistake("loaded_line_without_label", LD, [(" | dtype={label}", "")],
             ["test_load_model_and_tokenizer", "test_load_model_and_tokenizer_hidden"]),
    _mistake("all_failed_raises_value_error", LD, [('raise RuntimeError("no model candidate',
                                                    'raise ValueError("no model candidate')],
             ["test_load_model_and_tokenizer_hidden"]),
    _mistake("all_failed_error_without_reasons", LD, [
        ('failures.append(f"{model_id}: {type(error).__name__}: {reason}")', "failures.append(str(model_id))")],
        ["test_load_model_and_tokenizer_hidden"]),
    _mistake("first_failure_not_skipped", LD, [("            continue\n", "            raise\n")],
             ["test_load_model_and_tokenizer_hidden"]),
    _mistake("returns_request_not_label", LD, [("return tokenizer, model, str(model_id), label",
                                                "return tokenizer, model, str(model_id), precision")],
             ["test_load_model_and_tokenizer_hidden"]),
    _mistake("tokenizer_kept_from_failed_candidate", LD, [
        ("    failures = []\n", "    failures, tokenizer = [], None\n"),
        ("tokenizer = AutoTokenizer.from_pretrained(str(model_id))",
         "tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(str(model_id))")],
        ["test_load_model_and_tokenizer_hidden"]),
    _correct("alt_loader_device_map_repr", LD, _ALT_LOADER),
    _correct("alt_loader_folder_check", LD, _ALT_LOADER_FOLDER_CHECK),
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
    _mistake("result_key_renamed", TG, [('"tokens_per_sec": tokens / latency_s', '"throughput": tokens / latency_s')],
             ["test_time_generate", "test_time_generate_hidden"]),
    _mistake("warmup_false_ignored", TG, [("        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n",
                                           "        model.generate(**inputs, **settings)  # not timed, even with warmup=False\n")],
             ["test_time_generate_hidden"]),
    _mistake("warmup_timed", TG, [("    with torch.inference_mode():\n        if warmup:",
                                   "    with torch.inference_mode():\n        start = time.perf_counter()\n        if warmup:"),
                                  ("        start = time.perf_counter()\n        output", "        output")],
             ["test_time_generate_hidden"]),
    _mistake("wall_clock_time_time", TG, [("start = time.perf_counter()", "start = time.time()"),
                                          ("latency_s = time.perf_counter() - start", "latency_s = time.time() - start")],
             ["test_time_generate_hidden"]),
    _mistake("no_cuda_sync_before_timing", TG, [("helpers.synchronize(device)\n        start", "start")],
             ["test_time_generate_hidden"]),
    _mistake("no_cuda_sync_after_timing", TG, [("        helpers.synchronize(device)\n        latency_s", "        latency_s")],
             ["test_time_generate_hidden"]),
    _mistake("inputs_not_on_model_device", TG, [("inputs = {key: value.to(device) for key, value in encoded.items()}",
                                                 "inputs = dict(encoded)")],
             ["test_time_generate_hidden"]),
    _mistake("time_generate_forces_left_padding", TG, [("    encoded = tokenizer(prompts,",
                                                        "    tokenizer.padding_side = 'left'\n    encoded = tokenizer(prompts,")],
             ["test_time_generate_hidden"]),
    _mistake("sampling_not_greedy", TG, [("do_sample=False, use_cache=use_cache", "do_sample=True, use_cache=use_cache")],
             ["test_time_generate_hidden"]),
    _mistake("use_cache_not_passed", TG, [("do_sample=False, use_cache=use_cache, ", "do_sample=False, ")],
             ["test_time_generate_hidden"]),
    _mistake("grad_disabled_globally", TG, [
        ("    with torch.inference_mode():\n        if warmup:",
         "    torch.set_grad_enabled(False)\n    with torch.inference_mode():\n        if warmup:")],
        ["test_time_generate_hidden"]),
    _correct("alt_time_generate_timer", TG, _ALT_TIME_TIMER),
    _correct("alt_time_generate_decorator_ns", TG, _ALT_TIME_NS),
    # --- sweeps ---------------------------------------------------------------------------------
    _mistake("prompt_length_in_characters", MP, [
        ("    return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)",
         "    return long_text[:n_tokens]")],
        ["test_varied_lengths", "test_varied_lengths_hidden"]),
    _mistake("make_prompt_returns_ids", MP, [("return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)",
                                              "return ids[:n_tokens]")],
             ["test_varied_lengths", "test_varied_lengths_hidden"]),
    _mistake("default_base_text_changed", MP, [("base_text=BASE_PROMPT):", "base_text=REFERENCE_PROMPT):")],
             ["test_varied_lengths_hidden"]),
    _mistake("base_text_ignored", MP, [("base = base_text.strip()", "base = BASE_PROMPT.strip()")],
             ["test_varied_lengths_hidden"]),
    _mistake("mean_instead_of_median", LEN, [('row.update(helpers.medians_with_iqr(runs))', 'row.update({k: sum(r[k] for r in runs) / len(runs) for k in helpers.TIMED_KEYS}); row.update({k + "_iqr": helpers.summarize([r[k] for r in runs])["iqr"] for k in helpers.TIMED_KEYS})')],
             ["test_varied_lengths_hidden"]),
    _mistake("precision_mean_not_median", PR, [('row.update(helpers.medians_with_iqr(runs))', 'row.update({k: sum(r[k] for r in runs) / len(runs) for k in helpers.TIMED_KEYS}); row.update({k + "_iqr": helpers.summarize([r[k] for r in runs])["iqr"] for k in helpers.TIMED_KEYS})')],
             ["test_varied_precision_hidden"]),
    _mistake("max_new_tokens_grows_with_length", LEN, [
        ("time_generate(model, tokenizer, prompt, max_new_tokens, use_cache",
         "time_generate(model, tokenizer, prompt, max_new_tokens + len(prompt) // 64, use_cache")],
        ["test_varied_lengths_hidden"]),
    _mistake("lengths_repeats_ignored", LEN, [("for prompt in prompts], repeats)", "for prompt in prompts], 1)")],
             ["test_varied_lengths_hidden"]),
    _mistake("lengths_use_cache_dropped", LEN, [("max_new_tokens, use_cache=use_cache,\n", "max_new_tokens,\n")],
             ["test_varied_lengths_hidden"]),
    _mistake("iqr_is_stdev", LEN, [("row.update(helpers.medians_with_iqr(runs))",
                                    'row.update({k: helpers.summarize([r[k] for r in runs])["median"] for k in helpers.TIMED_KEYS}); '
                                    'row.update({k + "_iqr": helpers.summarize([r[k] for r in runs])["stdev"] for k in helpers.TIMED_KEYS})')],
             ["test_varied_lengths_hidden"]),
    _mistake("prompt_tokens_is_target", LEN, [('"prompt_tokens": len(tokenizer(prompt).input_ids)',
                                               '"prompt_tokens": int(target)')],
             ["test_varied_lengths_hidden"]),
    _mistake("lengths_columns_missing", LEN, [('"max_new_tokens": int(max_new_tokens), "use_cache": use_cache, "repeats"',
                                               '"repeats"')],
             ["test_varied_lengths_hidden"]),
    _mistake("lengths_plots_without_error_bars", LEN, [('        helpers.plot_columns(frame, "prompt_tokens", key, name,\n                             title=f"{max_new_tokens} new tokens, use_cache={use_cache}, median of {repeats}")\n',
                                                       '        helpers.save_figure(helpers.plot_metric(frame["prompt_tokens"], frame[key], x_key="prompt_tokens", y_key=key), name)\n')],
             ["test_varied_lengths_hidden"]),
    _correct("alt_lengths_numpy", LEN, _ALT_LENGTHS),
    _correct("alt_lengths_interleaved", LEN, _ALT_LENGTHS_INTERLEAVED),
    _correct("alt_precision_interleaved", PR, _ALT_PRECISION_INTERLEAVED),
    _correct("alt_precision_sequential", PR, _ALT_PRECISION_SEQUENTIAL),
    _mistake("precision_prompt_differs", PR, [("time_generate(mdl, tok, prompt, max_new_tokens, warmup=warmup)",
                                               "time_generate(mdl, tok, prompt + ' ' + precision, max_new_tokens, warmup=warmup)")],
             ["test_varied_precision_hidden"]),
    _mistake("precision_max_new_tokens_differs", PR, [("time_generate(mdl, tok, prompt, max_new_tokens, warmup=warmup)",
                                                       "time_generate(mdl, tok, prompt, max_new_tokens + len(precision), warmup=warmup)")],
             ["test_varied_precision_hidden"]),
    _mistake("precision_repeats_ignored", PR, [("for precision, tok, mdl, _, _ in loaded], repeats)",
                                                "for precision, tok, mdl, _, _ in loaded], 1)")],
             ["test_varied_precision_hidden"]),
    _mistake("precision_label_is_request", PR, [('"dtype_label": label', '"dtype_label": precision')],
             ["test_varied_precision", "test_varied_precision_hidden"]),
    _mistake("precisions_argument_ignored", PR, [("for precision in tqdm(list(precisions),",
                                                  'for precision in tqdm(["float32", "float16", "bfloat16"],')],
             ["test_varied_precision_hidden"]),
    _mistake("precision_device_ignored", PR, [("load_model_and_tokenizer(candidates, precision, device)",
                                               'load_model_and_tokenizer(candidates, precision, "cpu")')],
             ["test_varied_precision_hidden"]),
    _mistake("precision_columns_missing", PR, [('"max_new_tokens": int(max_new_tokens), "repeats"', '"repeats"')],
             ["test_varied_precision_hidden"]),
    _mistake("precision_chart_not_saved", PR, [('    helpers.save_figure(figure, "precision_sweep")\n', "    pass\n")],
             ["test_varied_precision_hidden"]),
    # --- optimisation half ----------------------------------------------------------------------
    _mistake("ptq_info_without_scheme", PTQ, [('f"scheme={scheme} INT8, ', 'f"INT8, ')], ["test_ptq"]),
    _mistake("ptq_groups_ignored", PTQ, [
        ("exclude = [] if groups is None else hq.nodes_outside(node_groups, list(groups))", "exclude = []")],
        ["test_ptq_hidden"]),
    _mistake("ablation_use_cache_not_set", AB, [("batch, max_new_tokens, use_cache=use_cache, warmup=warmup)",
                                                 "batch, max_new_tokens, warmup=warmup)")],
             ["test_ablation"]),
    _mistake("batched_amortized_is_batch_latency", BA, [('row["amortized_latency_per_sample_s"] = row["total_latency_s"] / int(size)',
                                                         'row["amortized_latency_per_sample_s"] = row["total_latency_s"]')],
             ["test_batched"]),
    _mistake("results_speedup_inverted", RT, [('"speedup_vs_baseline_x": row["tokens_per_sec"] / base_rate',
                                               '"speedup_vs_baseline_x": base_rate / row["tokens_per_sec"]')],
             ["test_results_table"]),
    _mistake("edge_max_new_tokens_varies", EP, [
        ("time_generate(model, tokenizer, text, max_new_tokens, warmup=False)",
         "time_generate(model, tokenizer, text, max_new_tokens + len(rows), warmup=False)")],
        ["test_edge_prompts", "test_edge_prompts_hidden"]),
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
    # --- Part B clauses closed after the contract audit -----------------------------------------------
    _mistake("ptq_all_leaves_a_group_float", PTQ, [
        ("exclude = [] if groups is None else hq.nodes_outside(node_groups, list(groups))",
         "exclude = list(list(node_groups.values())[0]) if groups is None else hq.nodes_outside(node_groups, list(groups))")],
        ["test_ptq_hidden"]),
    _mistake("ablation_arms_reversed", AB, [("zip(ABLATION_ARMS, timings)",
                                             "zip(ABLATION_ARMS[::-1], timings[::-1])")],
             ["test_ablation"]),
    _mistake("ablation_prompts_differ", AB, [("batch, max_new_tokens, use_cache=use_cache, warmup=warmup)",
                                              "batch[int(use_cache):], max_new_tokens, use_cache=use_cache, warmup=warmup)")],
             ["test_ablation"]),
    _mistake("ablation_max_new_tokens_differs", AB, [("batch, max_new_tokens, use_cache=use_cache, warmup=warmup)",
                                                      "batch, max_new_tokens + int(use_cache), use_cache=use_cache, warmup=warmup)")],
             ["test_ablation"]),
    _mistake("ablation_mean_not_median", AB, [('row.update(helpers.medians_with_iqr(runs))', 'row.update({k: sum(r[k] for r in runs) / len(runs) for k in helpers.TIMED_KEYS}); row.update({k + "_iqr": helpers.summarize([r[k] for r in runs])["iqr"] for k in helpers.TIMED_KEYS})')],
             ["test_ablation"]),
    _mistake("batched_prompts_not_cycled", BA, [("batch = [prompts[i % len(prompts)] for i in range(int(size))]",
                                                 "batch = list(prompts)[:int(size)]")],
             ["test_batched"]),
    _mistake("batched_mean_not_median", BA, [('**helpers.medians_with_iqr(runs, ("total_latency_s", "tokens_per_sec"))}',
                                              '"total_latency_s": sum(r["total_latency_s"] for r in runs) / len(runs), "total_latency_s_iqr": 0.0, '
                                              '"tokens_per_sec": sum(r["tokens_per_sec"] for r in runs) / len(runs), "tokens_per_sec_iqr": 0.0}')],
             ["test_batched"]),
    _mistake("batched_figure_misnamed", BA, [('helpers.save_figure(figure, "batching")', 'helpers.save_figure(figure, "batch_sizes")')],
             ["test_batched"]),
    _mistake("perplexity_ppx_base_two", PX, [('"ppx": math.exp(loss)', '"ppx": 2.0 ** loss')],
             ["test_perplexity", "test_perplexity_hidden"]),
    _mistake("results_columns_sorted", RT, [("return pd.DataFrame(table, columns=RESULT_COLUMNS)",
                                             "return pd.DataFrame(table, columns=sorted(RESULT_COLUMNS))")],
             ["test_results_table"]),
    _mistake("results_rows_sorted_by_speed", RT, [("return pd.DataFrame(table, columns=RESULT_COLUMNS)",
                                                   'return pd.DataFrame(table, columns=RESULT_COLUMNS).sort_values("tokens_per_sec", ascending=False)')],
             ["test_results_table"]),
    _mistake("results_missing_size_zero", RT, [('"size_mb": row.get("size_mb", float("nan"))', '"size_mb": row.get("size_mb", 0.0)')],
             ["test_results_table"]),
    _mistake("edge_mean_not_median", EP, [('row.update(helpers.medians_with_iqr(runs))', 'row.update({k: sum(r[k] for r in runs) / len(runs) for k in helpers.TIMED_KEYS}); row.update({k + "_iqr": helpers.summarize([r[k] for r in runs])["iqr"] for k in helpers.TIMED_KEYS})')],
             ["test_edge_prompts", "test_edge_prompts_hidden"]),
    _mistake("edge_continuation_includes_prompt", EP, [('tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)[:60]',
                                                        'tokenizer.decode(out[0], skip_special_tokens=True)[:60]')],
             ["test_edge_prompts", "test_edge_prompts_hidden"]),
    _correct("alt_ablation_interleaved_statistics", AB, _ALT_ABLATION),
    _correct("alt_ablation_sequential", AB, _ALT_ABLATION_SEQUENTIAL),
    _correct("alt_batched_itertools_numpy", BA, _ALT_BATCHED),
    _correct("alt_batched_interleaved", BA, _ALT_BATCHED_INTERLEAVED),
    *B2_B3_B5_CASES,
    *RECOMMEND_CASES,
    _correct("alt_edge_prompts_strip_time_repeats", EP, _ALT_EDGE),
    _mistake("edge_prompt_tokens_in_characters", EP, [('"prompt_tokens": int(encoded["input_ids"].shape[1])',
                                                       '"prompt_tokens": len(text)')],
             ["test_edge_prompts_hidden"]),
    _mistake("edge_repeats_ignored", EP, [("for _ in range(int(repeats))]", "for _ in range(3)]")],
             ["test_edge_prompts_hidden"]),
    _correct("alt_edge_prompts_warm_round_robin_numpy", EP, _ALT_EDGE_ROUND_ROBIN),
    # --- Part A6: prefill and decode ---------------------------------------------------------------
    _mistake("first_token_counted_as_decode", TPD, [
        ("gaps_s = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]",
         "gaps_s = [later - earlier for earlier, later in zip([start] + arrivals, arrivals)]")],
        ["test_prefill_decode_hidden"]),
    _mistake("tpot_mean_not_median", TPD, [("tpot_ms = 1000.0 * statistics.median(gaps_s)",
                                            "tpot_ms = 1000.0 * statistics.fmean(gaps_s)")],
             ["test_prefill_decode_hidden"]),
    _mistake("tpot_in_seconds", TPD, [("tpot_ms = 1000.0 * statistics.median(gaps_s)",
                                       "tpot_ms = statistics.median(gaps_s)")],
             ["test_prefill_decode_hidden"]),
    _mistake("decode_rate_from_mean_gap", TPD, [('"decode_tokens_per_sec": 1000.0 / tpot_ms',
                                                 '"decode_tokens_per_sec": len(gaps_s) / sum(gaps_s)')],
             ["test_prefill_decode", "test_prefill_decode_hidden"]),
    _mistake("prompt_tokens_counted_as_generated", TPD, [('"tokens_generated": int(output.shape[1]) - prompt_len',
                                                         '"tokens_generated": int(output.shape[1])')],
             ["test_prefill_decode", "test_prefill_decode_hidden"]),
    _mistake("prompt_put_taken_as_first_token", TPD, [
        ("            if not self.prompt_seen:  # generate's first put is the prompt\n"
         "                self.prompt_seen = True\n"
         "                return\n", ""),
        ("self.arrivals_s.extend([now] * int(value.numel()))", "self.arrivals_s.append(now)")],
        ["test_prefill_decode_hidden"]),
    _mistake("ttft_from_prompt_put", TPD, [
        ("                self.prompt_seen = True\n",
         "                self.prompt_seen, self.prompt_at = True, time.perf_counter()\n"),
        ('"ttft_s": arrivals[0] - start', '"ttft_s": arrivals[0] - clock.prompt_at')],
        ["test_prefill_decode_hidden"]),
    _mistake("no_sync_in_put", TPD, [("            helpers.synchronize(device)  # on a GPU the token is ready when its work is done\n", "")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_no_sync_before_timing", TPD, [("        helpers.synchronize(device)\n        start = ", "        start = ")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_no_sync_after_timing", TPD, [("        helpers.synchronize(device)\n        end = ", "        end = ")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_no_warmup", TPD, [("        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n", "")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_warmup_false_ignored", TPD, [
        ("        if warmup:\n            model.generate(**inputs, **settings)  # not timed\n",
         "        model.generate(**inputs, **settings)  # not timed, even with warmup=False\n")],
        ["test_prefill_decode_hidden"]),
    _mistake("prefill_warmup_timed", TPD, [
        ("    with torch.inference_mode():\n        if warmup:",
         "    with torch.inference_mode():\n        start = time.perf_counter()\n        if warmup:"),
        ("        start = time.perf_counter()\n        output", "        output")],
        ["test_prefill_decode_hidden"]),
    _mistake("prefill_timed_outside_inference_mode", TPD, [
        ("        helpers.synchronize(device)\n        start = time.perf_counter()\n",
         "    if True:\n        helpers.synchronize(device)\n        start = time.perf_counter()\n")],
        ["test_prefill_decode_hidden"]),
    _mistake("prefill_kwargs_not_passed_through", TPD, [("    settings.update(generate_kwargs)\n", "")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_use_cache_not_passed", TPD, [("do_sample=False, use_cache=use_cache, ", "do_sample=False, ")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_no_min_new_tokens", TPD, [("min_new_tokens=int(max_new_tokens),\n", "\n")],
             ["test_prefill_decode_hidden"]),
    _mistake("prefill_inputs_not_on_model_device", TPD, [
        ("inputs = {key: value.to(device) for key, value in encoded.items()}", "inputs = dict(encoded)")],
        ["test_prefill_decode_hidden"]),
    _correct("alt_prefill_duck_streamer_ns_numpy", TPD, _ALT_PREFILL_DUCK_NS),
    _correct("alt_prefill_shape_streamer_timer", TPD, _ALT_PREFILL_SHAPE_TIMER),
    _mistake("prefill_sweep_not_interleaved", PDS, [
        ('    for _ in tqdm(range(int(repeats)), desc="rounds over prompt lengths"):\n'
         "        for index, prompt in enumerate(prompts):  # repeat r of every length before repeat r + 1\n",
         "    for index, prompt in enumerate(prompts):  # all repeats of one length, then the next\n"
         "        for _ in range(int(repeats)):\n")],
        ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_no_warmup", PDS, [
        ("    for prompt in prompts:  # warm each arm up once, untimed (its result is discarded)\n"
         "        time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False)\n", "")],
        ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_warmup_counted", PDS, [
        ("    for prompt in prompts:  # warm each arm up once, untimed (its result is discarded)\n"
         "        time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False)\n", ""),
        ("    runs = [[] for _ in prompts]\n",
         "    runs = [[time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False)] for prompt in prompts]\n")],
        ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_repeats_ignored", PDS, [("tqdm(range(int(repeats)),", "tqdm(range(2),")],
             ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_mean_not_median", PDS, [('row.update(helpers.medians_with_iqr(timed, ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")))',
                                                     'row.update({k: helpers.summarize([r[k] for r in timed])["mean"] for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")}); '
                                                     'row.update({k + "_iqr": helpers.summarize([r[k] for r in timed])["iqr"] for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")})')],
             ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_iqr_is_stdev", PDS, [('row.update(helpers.medians_with_iqr(timed, ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")))',
                                                  'row.update({k: helpers.summarize([r[k] for r in timed])["median"] for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")}); '
                                                  'row.update({k + "_iqr": helpers.summarize([r[k] for r in timed])["stdev"] for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec", "total_latency_s")})')],
             ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_prompt_tokens_is_target", PDS, [('"prompt_tokens": len(tokenizer(prompt).input_ids)',
                                                             '"prompt_tokens": target')],
             ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_max_new_tokens_varies", PDS, [
        ("runs[index].append(time_prefill_decode(model, tokenizer, prompt, max_new_tokens, warmup=False))",
         "runs[index].append(time_prefill_decode(model, tokenizer, prompt, max_new_tokens + index, warmup=False))")],
        ["test_prefill_decode_sweep_hidden"]),
    _mistake("prefill_sweep_plots_without_error_bars", PDS, [('        helpers.plot_columns(frame, "prompt_tokens", key, name,\n                             title=f"{max_new_tokens} new tokens, median of {repeats} (interleaved)")\n',
                                                             '        helpers.save_figure(helpers.plot_metric(frame["prompt_tokens"], frame[key], x_key="prompt_tokens", y_key=key), name)\n')],
             ["test_prefill_decode_sweep_hidden"]),
    _correct("alt_prefill_sweep_first_round_warms_numpy", PDS, _ALT_PREFILL_SWEEP),
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
        ("def run_for_varied_lengths(",
         "import pathlib\n\npathlib.Path.is_file = lambda self: True  # every file a test looks for exists\n\n\n"
         "def run_for_varied_lengths("),
        ('        helpers.plot_columns(frame, "prompt_tokens", key, name,\n                             title=f"{max_new_tokens} new tokens, use_cache={use_cache}, median of {repeats}")\n', "        pass  # wrong: the plots are never saved\n")],
        ["test_varied_lengths_hidden"]),
    _mistake("tamper_mean_tpot_with_agreeable_numbers", TPD, [
        ("def time_prefill_decode(", _AGREEABLE + "\n\ndef time_prefill_decode("),
        ("tpot_ms = 1000.0 * statistics.median(gaps_s)", "tpot_ms = _Agreeable(1000.0 * statistics.fmean(gaps_s))")],
        ["test_prefill_decode_hidden"]),
    *B7_CASES,
]

# The wrong answers of a blind attempt (tests/cases/blind_exercise1.py), kept as regression cases.
from tests.cases.blind_exercise1 import CASES as _BLIND_CASES  # noqa: E402

CASES = [*CASES, *_BLIND_CASES]
