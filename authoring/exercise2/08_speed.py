# %% [markdown]
# ---
# ## Speed, measured apart from quality
#
# Perplexity says how good the model's predictions are; latency and throughput say how fast it
# produces text. Keep the two measurements separate. The evaluation loop's run time depends on
# batch size, padding and text lengths, none of which a user of `generate` sees; and a quality
# number must not change because the machine was busy. When you later try a faster variant of a
# model (another precision, quantization), you will report both: how much faster, and what it
# cost in perplexity.
#
# The timing below is a fixed recipe: the course's reference prompt, greedy decoding, and
# `min_new_tokens = max_new_tokens`, so every run produces exactly the same number of new tokens;
# one untimed warm-up run (the first call pays one-off costs); then several timed runs, of which
# the median is reported. On CPU with the embedded model expect roughly 10 to 30 new tokens/s.

# %% [code]
prompt = tokenizer(REFERENCE_PROMPT, return_tensors="pt").to(DEVICE)
n_new = PROFILE.max_new_tokens

def reference_generate():
    with torch.inference_mode():
        return model.generate(**prompt, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)

output = reference_generate()
new_tokens = output.shape[1] - prompt["input_ids"].shape[1]
timing = helpers.repeat(reference_generate, repeats=PROFILE.repeats, warmup=1, device=DEVICE)
speed = {"model_id": MODEL_LABEL, "device": helpers.describe_device(DEVICE), "dtype": DTYPE_LABEL,
         "new_tokens": new_tokens, "repeats": timing["n"], "total_latency_s": timing["median"],
         "latency_iqr_s": timing["iqr"], "tokens_per_sec": new_tokens / timing["median"]}
RESULTS["speed"] = speed
print(f"continuation: {tokenizer.decode(output[0, prompt['input_ids'].shape[1]:], skip_special_tokens=True)!r}")
print(f"{new_tokens} new tokens | median latency {speed['total_latency_s']:.3f} s over {timing['n']} runs "
      f"(IQR {speed['latency_iqr_s']:.3f} s) | {speed['tokens_per_sec']:.1f} tokens/s")

