"""Wrong answers written by a blind attempt at exercise1 (someone given only what a student receives,
December 2026): each passed every visible test; each must lose points in the hidden tests listed."""
from __future__ import annotations

from tests.cases.table import Table

_wrong = Table("exercise1").wrong
_correct = Table.correct

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
    # The same attempt's right answers: each of its cells alone, with the solution everywhere else. Left out:
    # its time_prefill_decode, run_prefill_decode_for_lengths and probe_edge_prompts, which call helpers its
    # own earlier cells define (_generate_args, _model_device, _median_and_iqr): whole, the notebook scored 54/54.
    _correct('blind_right_resolve_dtype', 'resolve_dtype', r'''
ACCEPTED_PRECISIONS = ("float32", "float16", "bfloat16")


def _resolve_dtype(precision, device):
    """Turn a precision request into the dtype that will really be used, and a label for it.

    precision: "float32", "float16" or "bfloat16" (any case, spaces around ignored).
    device: "cpu", "cuda", "cuda:0" or a torch.device.
    Returns (torch.dtype, label); the label says when a fallback happened.
    Raises ValueError naming the accepted values for anything else.
    """
    if not isinstance(precision, str):
        raise ValueError(f"precision must be a string, one of {', '.join(ACCEPTED_PRECISIONS)}; got {precision!r}")
    request = precision.strip().lower()
    if request not in ACCEPTED_PRECISIONS:
        raise ValueError(f"unsupported precision {precision!r}; accepted values: {', '.join(ACCEPTED_PRECISIONS)}")
    kind = torch.device(device).type
    if request == "float32":
        return torch.float32, "float32"
    if request == "float16":
        if kind == "cpu":
            return torch.float32, "float32 (forced on CPU)"
        return torch.float16, "float16"
    # bfloat16
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float32, "float32 (bfloat16 not supported on this GPU)"
    return torch.bfloat16, "bfloat16"
'''),
    _correct('blind_right_load_model_and_tokenizer', 'load_model_and_tokenizer', r'''
def load_model_and_tokenizer(candidates, precision="float32", device="cpu"):
    """Load tokenizer and model from the first candidate id that loads.

    candidates: model ids or local folders, tried in order. precision: as for _resolve_dtype.
    device: "cpu", "cuda", "meta"... Returns (tokenizer, model, model_id_used, dtype_label) with the
    model in eval mode on device and dtype. Raises RuntimeError naming every id tried and the error
    each one raised.
    """
    dtype, label = _resolve_dtype(precision, device)
    if isinstance(candidates, (str, Path)):
        candidates = [candidates]
    failures = []
    for candidate in candidates:
        model_id = str(candidate)
        try:
            tok = AutoTokenizer.from_pretrained(model_id)
            mdl = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype)
            mdl = mdl.to(device=device, dtype=dtype)
            mdl.eval()
        except Exception as error:
            failures.append(f"{model_id}: {type(error).__name__}: {' '.join(str(error).split())[:200]}")
            continue
        print(f"Loaded: {model_id} | device={device} | dtype={label}")
        return tok, mdl, model_id, label
    raise RuntimeError("could not load any candidate model; tried:\n  " + "\n  ".join(failures or ["(no candidates given)"]))
'''),
    _correct('blind_right_time_generate', 'time_generate', r'''
def _model_device(model):
    """The device a model's inputs belong on (PyTorch or ONNX Runtime model)."""
    device = getattr(model, "device", None)
    if device is None:
        device = next(model.parameters()).device
    return torch.device(device)


def _generate_args(tokenizer, max_new_tokens, use_cache, generate_kwargs):
    args = dict(max_new_tokens=int(max_new_tokens), min_new_tokens=int(max_new_tokens), do_sample=False,
                use_cache=use_cache)
    if tokenizer.pad_token_id is not None:
        args["pad_token_id"] = tokenizer.pad_token_id
    elif tokenizer.eos_token_id is not None:
        args["pad_token_id"] = tokenizer.eos_token_id
    args.update(generate_kwargs)
    return args


def time_generate(model, tokenizer, prompt, max_new_tokens, use_cache=True, warmup=True, **generate_kwargs):
    """Time one greedy generate call, after one untimed warm-up unless warmup=False.

    prompt: a str or a list of str (a batch, padded by the tokenizer).
    max_new_tokens: new tokens per sequence (forced with min_new_tokens).
    use_cache: passed to generate; generate_kwargs: passed through too.
    warmup: False when the same setting was just run (by an earlier timed call).
    Returns a dict: total_latency_s (s), tokens_generated (new tokens over the batch),
    tokens_per_sec, avg_latency_per_token_ms (ms), prompt_tokens, batch_size.
    """
    device = _model_device(model)
    batch = isinstance(prompt, (list, tuple))
    encoded = tokenizer(list(prompt) if batch else prompt, return_tensors="pt", padding=batch)
    encoded = {k: v.to(device) for k, v in encoded.items()}
    args = _generate_args(tokenizer, max_new_tokens, use_cache, generate_kwargs)
    input_len = encoded["input_ids"].shape[1]
    if warmup:
        with torch.inference_mode():
            model.generate(**encoded, **args)
    with torch.inference_mode():
        helpers.synchronize(device)
        start = time.perf_counter()
        output = model.generate(**encoded, **args)
        helpers.synchronize(device)
        elapsed = time.perf_counter() - start
    sequences = output.sequences if hasattr(output, "sequences") else output
    batch_size = sequences.shape[0]
    new_per_seq = sequences.shape[1] - input_len
    tokens = int(batch_size * new_per_seq)
    return {
        "total_latency_s": elapsed,
        "tokens_generated": tokens,
        "tokens_per_sec": tokens / elapsed,
        "avg_latency_per_token_ms": 1000.0 * elapsed / tokens,
        "prompt_tokens": int(encoded["attention_mask"].sum().item()) if "attention_mask" in encoded
                         else int(encoded["input_ids"].numel()),
        "batch_size": int(batch_size),
    }
'''),
    _correct('blind_right_make_prompt', 'make_prompt', r'''
def make_prompt(tokenizer, n_tokens, base_text=BASE_PROMPT):
    """A prompt of about n_tokens tokens (within 2), made by repeating base_text. Returns a str."""
    n_tokens = int(n_tokens)
    text = base_text
    ids = tokenizer(text, add_special_tokens=False).input_ids
    while len(ids) < n_tokens:
        text = text + " " + base_text
        ids = tokenizer(text, add_special_tokens=False).input_ids
    return tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
'''),
    _correct('blind_right_run_for_varied_lengths', 'run_for_varied_lengths', r'''
def _median_and_iqr(rows, key):
    stats = helpers.summarize([row[key] for row in rows])
    return stats["median"], stats["iqr"]


def run_for_varied_lengths(model, tokenizer, lengths_tokens, max_new_tokens, repeats, use_cache=True):
    """Time generate at several prompt lengths (in tokens), repeats runs each, medians reported.

    Returns a DataFrame, one row per length: prompt_tokens, max_new_tokens, use_cache, repeats,
    total_latency_s, tokens_per_sec, avg_latency_per_token_ms (medians) and *_iqr spreads.
    Saves prompt_length_latency.png and prompt_length_throughput.png.
    """
    prompts = [make_prompt(tokenizer, n) for n in lengths_tokens]
    arms = [(lambda warmup, p=p: time_generate(model, tokenizer, p, max_new_tokens, use_cache=use_cache,
                                               warmup=warmup)) for p in prompts]
    runs_per_length = time_round_robin(arms, repeats)
    rows = []
    for target, prompt, runs in zip(lengths_tokens, prompts, runs_per_length):
        row = {"target_tokens": int(target), "prompt_tokens": len(tokenizer(prompt).input_ids),
               "max_new_tokens": int(max_new_tokens), "use_cache": bool(use_cache), "repeats": int(repeats)}
        for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            row[key], row[f"{key}_iqr"] = _median_and_iqr(runs, key)
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key, name in (("total_latency_s", "prompt_length_latency"), ("tokens_per_sec", "prompt_length_throughput")):
        figure = helpers.plot_metric(frame["prompt_tokens"], frame[key], x_key="prompt_tokens", y_key=key,
                                     yerr=frame[f"{key}_iqr"],
                                     title=f"{max_new_tokens} new tokens, median of {repeats}")
        helpers.save_figure(figure, name)
        plt.show()
    return frame
'''),
    _correct('blind_right_run_varied_precision', 'run_varied_precision', r'''
def run_varied_precision(candidates, device, prompt, max_new_tokens, repeats,
                         precisions=("float32", "float16", "bfloat16")):
    """Median generate timings per precision on one prompt. Returns a DataFrame (one row per request)."""
    rows = []
    for request in precisions:
        tok, mdl, used, label = load_model_and_tokenizer(candidates, request, device)
        runs = time_repeats(mdl, tok, prompt, max_new_tokens, repeats)
        row = {"requested_precision": request, "dtype_label": label, "model_id": used,
               "max_new_tokens": int(max_new_tokens), "repeats": int(repeats)}
        for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
            row[key] = helpers.summarize([r[key] for r in runs])["median"]
        rows.append(row)
        del mdl
    frame = pd.DataFrame(rows)
    labels = [f"{r} -> {l}" for r, l in zip(frame["requested_precision"], frame["dtype_label"])]
    figure = helpers.plot_bars(labels, list(frame["tokens_per_sec"]), y_key="tokens_per_sec",
                               title=f"precision sweep on {device}, median of {repeats}")
    helpers.save_figure(figure, "precision_sweep")
    plt.show()
    return frame
'''),
    _correct('blind_right_run_static_ptq_optimum', 'run_static_ptq_optimum', r'''
from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoCalibrationConfig, AutoQuantizationConfig


def int8_config(is_static, per_channel=True, nodes_to_exclude=()):
    """An AutoQuantizationConfig for this CPU, and the instruction set it targets."""
    isa = hq.cpu_instruction_set()  # from /proc/cpuinfo flags; "avx2" when unsure (the safe choice)
    # Only MatMuls: Optimum's default operator list also rounds the embedding table (Gather), and in
    # static mode the inputs of every Add, Mul and Softmax, whatever `groups` says.
    args = dict(is_static=is_static, per_channel=per_channel, nodes_to_exclude=list(nodes_to_exclude),
                operators_to_quantize=["MatMul"])
    if isa == "avx512_vnni":
        return AutoQuantizationConfig.avx512_vnni(**args), isa
    if isa == "arm64":
        return AutoQuantizationConfig.arm64(**args), isa
    if isa == "avx512":
        return AutoQuantizationConfig.avx512(reduce_range=True, **args), isa
    return AutoQuantizationConfig.avx2(reduce_range=True, **args), "avx2"


def run_static_ptq_optimum(model_dir, work_dir, scheme="dynamic", calibration_texts=None, groups=None):
    """INT8 post-training quantization of an exported model with Optimum + ONNX Runtime.

    model_dir: local model folder. work_dir: folder for the export and quantized models.
    scheme: "dynamic" or "static" (static needs calibration_texts, a list of str; not graded).
    groups: MatMul layer types to quantize (see hq.matmul_groups), None for every MatMul.
    Returns (ort_model, info): an ORTModelForCausalLM and a str naming backend and scheme.
    """
    scheme = str(scheme).strip().lower()
    if scheme not in ("dynamic", "static"):
        raise ValueError(f"scheme must be 'dynamic' or 'static', got {scheme!r}")
    if scheme == "static" and not calibration_texts:
        raise ValueError("static quantization needs calibration_texts (a list of str)")
    source_dir = helpers.local_model_dir(model_dir)
    work_dir = Path(work_dir)
    onnx_dir = hq.export_onnx(str(source_dir), work_dir / "onnx_float32", num_threads=NUM_THREADS)
    onnx_path = onnx_dir / hq.ONNX_FILE
    exclude = []
    if groups is not None:
        exclude = hq.nodes_outside(hq.matmul_groups(onnx_path), list(groups))
    config, isa = int8_config(scheme == "static", per_channel=True, nodes_to_exclude=exclude)
    suffix = "all" if groups is None else "-".join(groups)
    save_dir = work_dir / f"int8_{scheme}_{suffix}"
    quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name=hq.ONNX_FILE)
    ranges = None
    if scheme == "static":
        dataset = hq.calibration_dataset(str(source_dir), onnx_dir, list(calibration_texts))
        calibration = AutoCalibrationConfig.minmax(dataset)
        with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
            ranges = quantizer.fit(dataset=dataset, calibration_config=calibration,
                                   onnx_augmented_model_name=Path(tmp) / "augmented_model.onnx",
                                   operators_to_quantize=config.operators_to_quantize)
    quantizer.quantize(quantization_config=config, save_dir=save_dir, calibration_tensors_range=ranges)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if (onnx_dir / name).is_file() and not (save_dir / name).is_file():
            shutil.copy2(onnx_dir / name, save_dir / name)
    ort_model = hq.load_ort(save_dir, hq.QUANTIZED_FILE, num_threads=NUM_THREADS)
    which = "every MatMul" if groups is None else "MatMuls of " + ", ".join(groups)
    info = (f"backend=onnxruntime (Optimum ORTQuantizer) | scheme={scheme} INT8, per channel, "
            f"instruction set {isa}, {which} | file={save_dir / hq.QUANTIZED_FILE}")
    return ort_model, info
'''),
    _correct('blind_right_ablate_cache_and_padding', 'ablate_cache_and_padding', r'''
def ablate_cache_and_padding(model, tokenizer, prompts, max_new_tokens, repeats):
    """Median timings of each (use_cache, padding_side) arm of ABLATION_ARMS on one batch. Returns a DataFrame."""
    original_side = tokenizer.padding_side
    rows = []
    try:
        for use_cache, side in ABLATION_ARMS:
            tokenizer.padding_side = side
            runs = time_repeats(model, tokenizer, list(prompts), max_new_tokens, repeats, use_cache=use_cache)
            row = {"use_cache": use_cache, "padding_side": side, "max_new_tokens": int(max_new_tokens),
                   "repeats": int(repeats)}
            for key in ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms"):
                stats = helpers.summarize([r[key] for r in runs])
                row[key], row[f"{key}_iqr"] = stats["median"], stats["iqr"]
            rows.append(row)
    finally:
        tokenizer.padding_side = original_side
    return pd.DataFrame(rows)
'''),
    _correct('blind_right_measure_batched', 'measure_batched', r'''
def measure_batched(model, tokenizer, prompts, batch_sizes, max_new_tokens, repeats):
    """Median throughput and per-sample latency per batch size. Returns a DataFrame."""
    original_side = tokenizer.padding_side
    rows = []
    try:
        tokenizer.padding_side = "left"
        for size in batch_sizes:
            size = int(size)
            batch = [prompts[i % len(prompts)] for i in range(size)]
            runs = time_repeats(model, tokenizer, batch, max_new_tokens, repeats)
            latency = helpers.summarize([r["total_latency_s"] for r in runs])
            rate = helpers.summarize([r["tokens_per_sec"] for r in runs])
            rows.append({"batch_size": size, "max_new_tokens": int(max_new_tokens), "repeats": int(repeats),
                         "total_latency_s": latency["median"], "total_latency_s_iqr": latency["iqr"],
                         "tokens_per_sec": rate["median"], "tokens_per_sec_iqr": rate["iqr"],
                         "per_sample_latency_s": latency["median"],
                         "amortized_latency_per_sample_s": latency["median"] / size})
    finally:
        tokenizer.padding_side = original_side
    frame = pd.DataFrame(rows)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    helpers.plot_metric(frame["batch_size"], frame["tokens_per_sec"], x_key="batch_size", y_key="tokens_per_sec",
                        yerr=frame["tokens_per_sec_iqr"], title="total throughput", ax=axes[0])
    helpers.plot_metric(frame["batch_size"], frame["per_sample_latency_s"], x_key="batch_size",
                        y_key="per_sample_latency_s", yerr=frame["total_latency_s_iqr"],
                        title="latency each request waits", ax=axes[1])
    helpers.save_figure(figure, "batching")
    plt.show()
    return frame
'''),
    _correct('blind_right_compare_perplexity', 'compare_perplexity', r'''
def compare_perplexity(models, tokenizer, texts, batch_size=4, max_length=256):
    """Token-weighted loss and perplexity of each model on the same texts, padding excluded.

    models: {label: model}, each callable as model(input_ids=..., attention_mask=...) -> .logits.
    texts: list of str, each truncated to max_length tokens. Returns {label: {"loss", "ppx", "tokens"}}.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    batch_size = max(1, int(batch_size))
    original_side = tokenizer.padding_side
    results = {}
    try:
        tokenizer.padding_side = "right"
        batches = [tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                             max_length=int(max_length)) for i in range(0, len(texts), batch_size)]
    finally:
        tokenizer.padding_side = original_side
    for label, mdl in models.items():
        device = _model_device(mdl)
        total_nll, total_tokens = 0.0, 0
        for enc in batches:
            ids = enc["input_ids"].to(device)
            mask = enc["attention_mask"].to(device)
            with torch.inference_mode():
                logits = mdl(input_ids=ids, attention_mask=mask).logits
            logits = logits[:, :-1, :].float()
            targets = ids[:, 1:]
            # a target counts only if both it and the position predicting it are real tokens
            valid = (mask[:, 1:] * mask[:, :-1]).bool()
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
            nll = nll.view(targets.shape)
            total_nll += float(nll[valid].double().sum())
            total_tokens += int(valid.sum())
        loss = total_nll / total_tokens
        results[label] = {"loss": loss, "ppx": math.exp(loss), "tokens": total_tokens}
    return results
'''),
    _correct('blind_right_build_results_table', 'build_results_table', r'''
RESULT_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
                  "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]


def build_results_table(rows):
    """One DataFrame of every variant (first row = baseline), units in the column names."""
    rows = list(rows)
    if not rows:
        raise ValueError("build_results_table needs at least the baseline row")
    nan = float("nan")

    def num(value):
        return nan if value is None else float(value)

    base = rows[0]
    base_rate = num(base.get("tokens_per_sec"))
    base_ppx = num(base.get("ppx", base.get("perplexity")))
    records = []
    for row in rows:
        ppx = num(row.get("ppx", row.get("perplexity")))
        rate = num(row.get("tokens_per_sec"))
        records.append({
            "variant": row.get("variant"),
            "model_id": row.get("model_id"),
            "device": row.get("device"),
            "dtype_or_backend": row.get("dtype_or_backend"),
            "tokens_per_sec": rate,
            "speedup_vs_baseline_x": rate / base_rate if base_rate and not math.isnan(base_rate) else nan,
            "total_latency_s": num(row.get("total_latency_s")),
            "avg_latency_per_token_ms": num(row.get("avg_latency_per_token_ms")),
            "perplexity": ppx,
            "perplexity_change_pct": 100.0 * (ppx / base_ppx - 1.0) if base_ppx and not math.isnan(base_ppx) else nan,
            "size_mb": num(row.get("size_mb")),
        })
    return pd.DataFrame(records, columns=RESULT_COLUMNS)
'''),
    _correct('blind_right_decode_bytes_per_token', 'decode_bytes_per_token', r'''
import json

import onnx


def _kv_bytes(config, context_tokens, batch_size, bytes_per_element):
    get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    layers = int(get("num_hidden_layers"))
    heads = int(get("num_attention_heads"))
    kv_heads = get("num_key_value_heads") or heads
    head_dim = get("head_dim") or int(get("hidden_size")) // heads
    return 2 * layers * int(kv_heads) * int(head_dim) * int(context_tokens) * int(batch_size) * bytes_per_element


def _onnx_file(path):
    path = Path(path)
    if path.is_dir():
        if (path / "model.onnx").is_file():
            return path / "model.onnx"
        found = sorted(path.glob("*.onnx"))
        if len(found) != 1:
            raise FileNotFoundError(f"{path} holds {len(found)} .onnx files and no model.onnx")
        return found[0]
    return path


def _element_bytes(data_type):
    four_bit = {getattr(onnx.TensorProto, name) for name in ("INT4", "UINT4", "FLOAT4E2M1")
                if hasattr(onnx.TensorProto, name)}
    if data_type in four_bit:
        return 0.5
    return onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize


def decode_bytes_per_token(model_or_onnx_path, context_tokens, batch_size=1, kv_bytes_per_element=None):
    """Bytes one decode step reads: the weights as stored, each once (an untied input embedding: one row per
    sequence), plus the KV cache of batch_size sequences of context_tokens tokens. Returns an int.

    model_or_onnx_path: a Hugging Face PyTorch model, or an ONNX model (a .onnx file, or a folder holding
    model.onnx, with config.json beside it). kv_bytes_per_element: bytes per cached number (default: the
    PyTorch model's element size; 4 for ONNX, whose cache is float32).
    """
    batch_size = int(batch_size)
    if isinstance(model_or_onnx_path, torch.nn.Module):
        model = model_or_onnx_path
        emb = model.get_input_embeddings().weight
        head_module = model.get_output_embeddings()
        head = head_module.weight if head_module is not None else None
        tied = head is not None and head.data_ptr() == emb.data_ptr()
        seen, weights = set(), 0
        for p in model.parameters():
            if p.data_ptr() in seen:
                continue
            seen.add(p.data_ptr())
            if p.data_ptr() == emb.data_ptr() and not tied:
                weights += min(batch_size, emb.shape[0]) * emb.shape[1] * emb.element_size()
            else:
                weights += p.numel() * p.element_size()
        kv_elem = kv_bytes_per_element if kv_bytes_per_element is not None else next(model.parameters()).element_size()
        return int(weights + _kv_bytes(model.config, context_tokens, batch_size, kv_elem))

    path = _onnx_file(model_or_onnx_path)
    graph = onnx.load(str(path), load_external_data=False).graph
    gather_data, other_use = set(), set()
    for node in graph.node:
        for index, name in enumerate(node.input):
            if node.op_type == "Gather" and index == 0:
                gather_data.add(name)
            else:
                other_use.add(name)
    total = 0.0
    for init in graph.initializer:
        dims = list(init.dims)
        count = math.prod(dims) if dims else 1
        size = _element_bytes(init.data_type)
        if init.name in gather_data and init.name not in other_use and dims:
            rows = min(batch_size, dims[0])
            total += rows * (count // dims[0]) * size
        else:
            total += count * size
    config = json.loads((path.parent / "config.json").read_text())
    kv_elem = kv_bytes_per_element if kv_bytes_per_element is not None else 4
    return int(math.ceil(total) + _kv_bytes(config, context_tokens, batch_size, kv_elem))
'''),
    _correct('blind_right_add_memory_bound', 'add_memory_bound', r'''
def add_memory_bound(table, bandwidth_gbps, bytes_by_row, key="variant", ms_column="avg_latency_per_token_ms"):
    """A copy of table with bound_ms_per_token (bytes / bandwidth, in ms) and pct_of_bound (bound / measured x 100)."""
    out = table.copy()
    per_byte_ms = 1000.0 / (float(bandwidth_gbps) * 1e9)
    bound = [float(bytes_by_row[k]) * per_byte_ms if k in bytes_by_row and bytes_by_row[k] is not None
             else float("nan") for k in out[key]]
    out["bound_ms_per_token"] = bound
    out["pct_of_bound"] = [100.0 * b / float(m) if b == b and m else float("nan")
                           for b, m in zip(bound, out[ms_column])]
    return out
'''),
]
