# %% [markdown]
# ---
# ## Summary and artifacts
#
# The last cell gathers what you measured into two tables, quality and speed, kept apart as
# argued above, and a plot of sliding-window perplexity against the stride. They are written to
# `artifacts/` next to this notebook (`exercise2_quality.csv`, `exercise2_speed.csv`,
# `exercise2_sliding_window.png`).

# %% [code]
missing = [key for key in ("evaluation", "mean_of_means", "sliding", "speed") if key not in RESULTS]
if missing:
    raise NotImplementedError(f"run the cells above first (and complete the functions they call); missing: {missing}")
ev, mm, sl = RESULTS["evaluation"], RESULTS["mean_of_means"], RESULTS["sliding"]
quality_rows = [
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "eval texts, token-weighted",
     "n_tokens": ev["n_tokens"], "avg_loss": ev["avg_loss"], "perplexity": ev["perplexity"]},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "mixed lengths, mean of batch means (biased)",
     "n_tokens": mm["overall"]["n_tokens"], "avg_loss": mm["mean_of_means_loss"],
     "perplexity": math.exp(mm["mean_of_means_loss"])},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "mixed lengths, token-weighted",
     "n_tokens": mm["overall"]["n_tokens"], "avg_loss": mm["overall"]["avg_loss"], "perplexity": mm["overall"]["perplexity"]},
    {"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL, "measure": "long text, whole in one pass",
     "n_tokens": sl["whole"]["n_tokens"], "avg_loss": sl["whole"]["avg_loss"], "perplexity": sl["whole"]["perplexity"]},
] + [{"model_id": MODEL_LABEL, "dtype": DTYPE_LABEL,
      "measure": f"long text, window {row['max_length_tokens']}, stride {row['stride_tokens']}",
      "n_tokens": row["n_tokens"], "avg_loss": row["avg_loss"], "perplexity": row["perplexity"]}
     for row in sl["rows"]]
quality = helpers.results_frame(quality_rows, columns=["model_id", "dtype", "measure", "n_tokens", "avg_loss", "perplexity"])
speed_table = helpers.results_frame([RESULTS["speed"]])
print(quality.to_string(index=False))
print()
print(speed_table.to_string(index=False))
helpers.save_table(quality, "exercise2_quality")
helpers.save_table(speed_table, "exercise2_speed")
figure = helpers.plot_metric([r["stride_tokens"] for r in sl["rows"]], [r["perplexity"] for r in sl["rows"]],
                             x_key="stride (tokens)", y_key="perplexity", label="sliding window",
                             title=f"Sliding window of {SLIDING['max_length']} tokens: {MODEL_LABEL}")
figure.axes[0].axhline(sl["whole"]["perplexity"], color="gray", linestyle="--", label="whole text in one pass")
figure.axes[0].legend()
helpers.save_figure(figure, "exercise2_sliding_window")
print("saved to", helpers.artifacts_dir())
