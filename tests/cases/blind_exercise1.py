"""Wrong answers written by a blind attempt at exercise1 (someone given only what a student receives,
December 2026): each passed every visible test; each must lose points in the hidden tests listed."""
from __future__ import annotations

from tests.cases.table import Table

_wrong = Table("exercise1").wrong

CASES = [
    # A1 _resolve_dtype (passes visible `test_resolve_dtype`)
    _wrong('blind_a1__resolve_dtype', 'resolve_dtype', r'''
def _resolve_dtype(precision, device):
    p = str(precision).strip().lower()
    on_cpu = device == "cpu"
    if p == "float32":
        return torch.float32, "float32"
    if "bf" in p:
        return torch.bfloat16, "bfloat16"
    if "16" in p:
        return (torch.float32, "float32 (forced on CPU)") if on_cpu else (torch.float16, "float16")
    raise ValueError(f"accepted: {ACCEPTED_PRECISIONS}")
''', ['test_resolve_dtype_hidden']),
    # A2 load_model_and_tokenizer (passes visible `test_load_model_and_tokenizer`)
    _wrong('blind_a2_load_model_and_tokenizer', 'load_model_and_tokenizer', r'''
def load_model_and_tokenizer(candidates, precision="float32", device="cpu"):
    dtype, label = _resolve_dtype(precision, device)
    errors = []
    tok = None
    for c in candidates:
        try:
            tok = AutoTokenizer.from_pretrained(str(c)); break
        except Exception as e:
            errors.append(f"{c}: {e}")
    for c in candidates:
        try:
            mdl = AutoModelForCausalLM.from_pretrained(str(c)).to(device).eval()
            print(f"Loaded: {c} | device={device} | dtype={label}")
            return tok, mdl, str(c), label
        except Exception as e:
            errors.append(f"{c}: {e}")
    raise RuntimeError("; ".join(errors))
''', ['test_load_model_and_tokenizer_hidden', 'test_varied_precision_hidden']),
    # A3 time_generate (passes visible `test_time_generate`)
    _wrong('blind_a3_time_generate', 'time_generate', r'''
def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    enc = tokenizer(prompt, return_tensors="pt", padding=not isinstance(prompt, str)).to(_model_device(model))
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                             do_sample=False, use_cache=use_cache, pad_token_id=tokenizer.pad_token_id,
                             **generate_kwargs)
        elapsed = time.perf_counter() - start
    n = out.shape[1] - enc["input_ids"].shape[1]   # one sequence only
    return {"total_latency_s": elapsed, "tokens_generated": n, "tokens_per_sec": n / elapsed,
            "avg_latency_per_token_ms": 1000 * elapsed / n}
''', ['test_time_generate_hidden']),
    # A4 run_for_varied_lengths (passes visible `test_varied_lengths`)
    _wrong('blind_a4_run_for_varied_lengths', 'run_for_varied_lengths', r'''
def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    rows = []
    for n in lengths_tokens:
        runs = time_repeats(model, tokenizer, make_prompt(tokenizer, n), max_new_tokens, repeats, use_cache=use_cache)
        row = {"prompt_tokens": n, "max_new_tokens": max_new_tokens, "use_cache": use_cache}
        for k in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            s = helpers.summarize([r[k] for r in runs])
            row[k], row[k + "_iqr"] = s["mean"], s["iqr"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    for k, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        helpers.save_figure(helpers.plot_metric(frame["prompt_tokens"], frame[k], x_key="prompt_tokens", y_key=k,
                                                yerr=frame[k + "_iqr"]), name)
    return frame
''', ['test_varied_lengths_hidden']),
    # A5 run_varied_precision (passes visible `test_varied_precision`)
    _wrong('blind_a5_run_varied_precision', 'run_varied_precision', r'''
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats, precisions=("float32", "float16", "bfloat16")):
    rows = []
    for p in precisions:
        tok, mdl, _, label = load_model_and_tokenizer(candidates, p, "cpu")
        runs = time_repeats(mdl, tok, prompt, max_new_tokens, repeats)
        rows.append({"requested_precision": p, "dtype_label": label, "max_new_tokens": max_new_tokens,
                     **{k: helpers.summarize([r[k] for r in runs])["median"]
                        for k in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms")}})
    frame = pd.DataFrame(rows)
    helpers.save_figure(helpers.plot_bars(list(frame["dtype_label"]), list(frame["tokens_per_sec"]), y_key="tokens_per_sec"),
                        "precision_sweep")
    return frame
''', ['test_varied_precision_hidden']),
    # A6 time_prefill_decode (passes visible `test_prefill_decode`)
    _wrong('blind_a6_time_prefill_decode', 'time_prefill_decode', r'''
def time_prefill_decode(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    enc = {k: v.to(_model_device(model)) for k, v in tokenizer(prompt, return_tensors="pt").items()}
    args = _generate_args(tokenizer, max_new_tokens, use_cache, generate_kwargs)
    if warmup:
        with torch.inference_mode():
            model.generate(**enc, **args)
    stamps = []
    class S:
        first = True
        def put(self, v):
            if S.first:
                S.first = False
                return
            stamps.append(time.perf_counter())
        def end(self):
            pass
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(**enc, streamer=S(), **args)
        end = time.perf_counter()
    points = [start] + stamps
    gaps = [1000 * (b - a) for a, b in zip(points, points[1:])]
    tpot = statistics.fmean(gaps)
    return {"ttft_s": stamps[0] - start, "tpot_ms": tpot, "decode_tokens_per_sec": 1000 / tpot,
            "total_latency_s": end - start, "tokens_generated": out.shape[1] - enc["input_ids"].shape[1],
            "prompt_tokens": enc["input_ids"].shape[1]}
''', ['test_prefill_decode', 'test_prefill_decode_hidden']),
    # A6 run_prefill_decode_for_lengths (passes visible `test_prefill_decode`)
    _wrong('blind_a6_run_prefill_decode_for_lengths', 'run_prefill_decode_for_lengths', r'''
def _median_and_iqr(rows, key):
    s = helpers.summarize([r[key] for r in rows])
    return s['median'], s['iqr']


def run_prefill_decode_for_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats):
    rows = []
    for n in lengths_tokens:
        p = make_prompt(tokenizer, n)
        runs = [time_prefill_decode(model, tokenizer, p, max_new_tokens) for _ in range(repeats)]
        row = {"prompt_tokens": runs[0]["prompt_tokens"], "max_new_tokens": max_new_tokens}
        for k in ("ttft_s", "tpot_ms", "decode_tokens_per_sec"):
            row[k], row[k + "_iqr"] = _median_and_iqr(runs, k)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for k, name in (("ttft_s", "prefill_decode_ttft"), ("tpot_ms", "prefill_decode_tpot")):
        helpers.save_figure(helpers.plot_metric(frame["prompt_tokens"], frame[k], x_key="prompt_tokens", y_key=k,
                                                yerr=frame[k + "_iqr"]), name)
    return frame
''', ['test_prefill_decode_sweep_hidden']),
    # B1 run_static_ptq_optimum (passes visible `test_ptq`)
    _wrong('blind_b1_run_static_ptq_optimum', 'run_static_ptq_optimum', r'''
def run_static_ptq_optimum(model_dir, work_dir, scheme="dynamic", calibration_texts=None, groups=None):
    onnx_dir = hq.export_onnx(str(model_dir), Path(work_dir) / "onnx", num_threads=NUM_THREADS)
    config = AutoQuantizationConfig.avx2(is_static=False, per_channel=True)
    save = Path(work_dir) / "int8"
    ORTQuantizer.from_pretrained(onnx_dir, file_name="model.onnx").quantize(quantization_config=config, save_dir=save)
    for f in ("config.json", "generation_config.json"):
        if (onnx_dir / f).exists():
            shutil.copy2(onnx_dir / f, save / f)
    return hq.load_ort(save, hq.QUANTIZED_FILE), "onnxruntime dynamic int8"
''', ['test_ptq_hidden']),
    # B2 ablate_cache_and_padding (passes visible `test_ablation`)
    _wrong('blind_b2_ablate_cache_and_padding', 'ablate_cache_and_padding', r'''
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    rows = []
    for use_cache, side in ABLATION_ARMS:
        tokenizer.padding_side = side
        runs = time_repeats(model, tokenizer, prompts, max_new_tokens, repeats, use_cache=use_cache)
        rows.append({"use_cache": use_cache, "padding_side": side, "max_new_tokens": max_new_tokens,
                     **{k: helpers.summarize([r[k] for r in runs])["median"]
                        for k in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms")}})
    tokenizer.padding_side = "left"
    return pd.DataFrame(rows)
''', ['test_ablation_hidden']),
    # B4 compare_perplexity (passes visible `test_perplexity`)
    _wrong('blind_b4_compare_perplexity', 'compare_perplexity', r'''
def compare_perplexity(models, tokenizer, texts, batch_size=4, max_length=256):
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    out = {}
    for label, mdl in models.items():
        losses, count = [], 0
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), return_tensors="pt", padding=True, truncation=True,
                            max_length=max_length)
            with torch.inference_mode():
                logits = mdl(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            tgt = enc["input_ids"][:, 1:].masked_fill(enc["attention_mask"][:, 1:] == 0, -100)
            losses.append(float(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tgt.flatten(), ignore_index=-100)))
            count += int((tgt != -100).sum())
        loss = sum(losses) / len(losses)
        out[label] = {"loss": loss, "ppx": math.exp(loss), "tokens": count}
    tokenizer.padding_side = side
    return out
''', ['test_perplexity_hidden']),
    # B5 build_results_table (passes visible `test_results_table`)
    _wrong('blind_b5_build_results_table', 'build_results_table', r'''
def build_results_table(rows):
    frame = pd.DataFrame(rows)
    base = frame.iloc[0]
    frame["speedup_vs_baseline_x"] = base["avg_latency_per_token_ms"] / frame["avg_latency_per_token_ms"]
    frame["perplexity"] = frame["ppx"] if "ppx" in frame else float("nan")
    frame["perplexity_change_pct"] = 100 * (frame["perplexity"] / base.get("ppx", float("nan")) - 1)
    for c in RESULT_COLUMNS:
        if c not in frame:
            frame[c] = float("nan")
    return frame[RESULT_COLUMNS]
''', ['test_results_table_hidden']),
    # B6 probe_edge_prompts (passes visible `test_edge_prompts`)
    _wrong('blind_b6_probe_edge_prompts', 'probe_edge_prompts', r'''
def probe_edge_prompts(model, tokenizer, max_new_tokens, repeats, prompts=EDGE_PROMPTS):
    rows = []
    for name, text in prompts.items():
        runs = time_repeats(model, tokenizer, text, max_new_tokens, repeats)
        enc = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        rows.append({"prompt_name": name, "prompt_tokens": len(text.split()),
                     **{k: helpers.summarize([r[k] for r in runs])["median"]
                        for k in ("tokens_generated", "total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms")},
                     "continuation": tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)[:60]})
    return pd.DataFrame(rows)
''', ['test_edge_prompts_hidden']),
    # B7 decode_bytes_per_token (passes visible `test_decode_bytes`)
    _wrong('blind_b7_decode_bytes_per_token', 'decode_bytes_per_token', r'''
_correct_decode_bytes = decode_bytes_per_token
def decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1, kv_bytes_per_element=None):
    if isinstance(model_or_onnx_path, torch.nn.Module):
        return _correct_decode_bytes(model_or_onnx_path, context_tokens, batch_size, kv_bytes_per_element)
    path = _onnx_file(model_or_onnx_path)
    graph = onnx.load(str(path), load_external_data=False).graph
    total = sum(math.prod(i.dims) * onnx.helper.tensor_dtype_to_np_dtype(i.data_type).itemsize for i in graph.initializer)
    cfg = json.loads((path.parent / "config.json").read_text())
    return int(total + _kv_bytes(cfg, context_tokens, batch_size, kv_bytes_per_element or 4))
''', ['test_decode_bytes_onnx_hidden']),
    # B7 add_memory_bound (passes visible `test_memory_bound`)
    _wrong('blind_b7_add_memory_bound', 'add_memory_bound', r'''
def add_memory_bound(table, bandwidth_gbps, bytes_by_row, key="variant", ms_column="avg_latency_per_token_ms"):
    table["bound_ms_per_token"] = [bytes_by_row[k] / (bandwidth_gbps * 1e9) * 1000 for k in table[key]]
    table["pct_of_bound"] = 100 * table["bound_ms_per_token"] / table[ms_column]
    return table
''', ['test_memory_bound']),
]
