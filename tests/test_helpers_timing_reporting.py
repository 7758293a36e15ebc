"""helpers.timing, helpers.reporting, helpers.texts and helpers.device."""
from __future__ import annotations

import time

import pytest
import torch

import helpers
from helpers import device as hdevice
from helpers import timing


def test_timer_measures_wall_time():
    with helpers.Timer("cpu") as t:
        time.sleep(0.05)
    assert 0.04 <= t.elapsed_s < 1.0


def test_timer_synchronises_cuda_before_and_after(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("sync", str(device))))
    with helpers.Timer("cuda:0"):
        calls.append(("work", None))
    assert [c[0] for c in calls] == ["sync", "work", "sync"]


def test_timer_does_not_touch_cuda_on_cpu(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("synchronize called on CPU")
    monkeypatch.setattr(torch.cuda, "synchronize", boom)
    with helpers.Timer(torch.device("cpu")):
        pass


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_timer_on_real_cuda():
    x = torch.randn(2048, 2048, device="cuda")
    with helpers.Timer("cuda") as t:
        (x @ x).sum()
    assert t.elapsed_s > 0


def test_summarize_statistics():
    stats = helpers.summarize([3.0, 1.0, 2.0, 10.0], unit="s")
    assert stats["n"] == 4 and stats["median"] == 2.5 and stats["min"] == 1.0 and stats["max"] == 10.0
    assert stats["mean"] == pytest.approx(4.0)
    assert stats["stdev"] == pytest.approx(4.0824829, rel=1e-6)
    assert stats["iqr"] == pytest.approx(4.75 - 1.75)  # linear interpolation: q1 = 1.75, q3 = 4.75
    assert stats["unit"] == "s"


def test_summarize_single_value_and_errors():
    assert helpers.summarize([5])["stdev"] == 0.0
    with pytest.raises(ValueError, match="at least one"):
        helpers.summarize([])
    with pytest.raises(ValueError, match="NaN"):
        helpers.summarize([1.0, float("nan")])


def test_repeat_warms_up_then_times():
    calls = []
    stats = helpers.repeat(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5
    assert stats["n"] == 3 and len(stats["values_s"]) == 3


@pytest.mark.parametrize("kwargs, message", [({"repeats": 0}, "repeats"), ({"repeats": 1, "warmup": -1}, "warmup")])
def test_repeat_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        helpers.repeat(lambda: None, **kwargs)


def test_pick_device():
    assert hdevice.pick_device("CPU") == "cpu"
    with pytest.raises(ValueError, match="accepted values"):
        hdevice.pick_device("tpu")
    if not torch.cuda.is_available():
        assert hdevice.pick_device() == "cpu"
        with pytest.raises(ValueError, match="is_available"):
            hdevice.pick_device("cuda")


def test_save_table_and_figure(tmp_path):
    import pandas as pd

    path = helpers.save_table([{"a": 1, "tokens_per_sec": 2.5}], "results", folder=tmp_path)
    assert path == tmp_path / "results.csv"
    assert pd.read_csv(path).to_dict("records") == [{"a": 1, "tokens_per_sec": 2.5}]
    fig = helpers.plot_metric([16, 64], [0.5, 0.9], yerr=[0.01, 0.02], x_key="prompt_tokens", y_key="total_latency_s")
    png = helpers.save_figure(fig, "sweep.png", folder=tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_xlabel() == "prompt length (tokens)"
    assert fig.axes[0].get_ylabel() == "total latency (s)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "sweep.png"]  # no temp files left


def test_medians_with_iqr_gives_one_rows_numbers():
    runs = [{"total_latency_s": s, "tokens_per_sec": 8 / s, "avg_latency_per_token_ms": 125 * s} for s in (1.0, 4.0, 2.0)]
    row = helpers.medians_with_iqr(runs)
    assert row["total_latency_s"] == 2.0 and row["tokens_per_sec"] == 4.0  # medians, not means (7/3 s)
    assert row["total_latency_s_iqr"] == 1.5  # inclusive quartiles of 1, 2, 4: 1.5 and 3
    assert set(row) == {k + s for k in helpers.TIMED_KEYS for s in ("", "_iqr")}
    assert helpers.medians_with_iqr(runs, ("tokens_per_sec",)).keys() == {"tokens_per_sec", "tokens_per_sec_iqr"}
    with pytest.raises(KeyError, match="run\\(s\\) \\[1\\] have no 'ttft_s'"):
        helpers.medians_with_iqr([{"ttft_s": 1.0}, {}], ("ttft_s",))


def test_plot_columns_draws_iqr_bars_and_saves_through_save_figure(tmp_path, monkeypatch):
    import pandas as pd

    frame = pd.DataFrame({"prompt_tokens": [16, 64], "tokens_per_sec": [30.0, 20.0], "tokens_per_sec_iqr": [1.0, 2.0]})
    saved = []
    real_save = helpers.save_figure
    monkeypatch.setattr(helpers, "save_figure", lambda fig, name: saved.append(name) or real_save(fig, name, folder=tmp_path))
    figure = helpers.plot_columns(frame, "prompt_tokens", "tokens_per_sec", "sweep", title="t")
    assert saved == ["sweep"] and (tmp_path / "sweep.png").is_file()
    bars = figure.axes[0].containers[0]  # the errorbar container: its vertical bars span median -/+ IQR
    assert bars.has_yerr and len(bars.lines[2][0].get_segments()) == 2
    assert figure.axes[0].get_ylabel() == helpers.axis_label("tokens_per_sec")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    helpers.plot_columns(frame, "prompt_tokens", "tokens_per_sec", "not_saved", ax=ax)
    assert saved == ["sweep"], "drawing into an axis of the caller's figure saves nothing"
    with pytest.raises(KeyError, match="no column 'latency'"):
        helpers.plot_columns(frame, "prompt_tokens", "latency", "x")


def test_artifacts_default_next_to_the_notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = helpers.save_table([{"x": 1}], "t")
    assert path == tmp_path / "artifacts" / "t.csv"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", 3])
def test_artifact_names_are_checked(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        helpers.save_table([{"x": 1}], name, folder=tmp_path)


def test_plot_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        helpers.plot_metric([1, 2], [1], x_key="prompt_tokens", y_key="tokens_per_sec")


def test_results_frame_orders_columns_and_keeps_the_rest():
    frame = helpers.results_frame([{"b": 1, "a": 2, "z": 3}], columns=["a", "b"])
    assert list(frame.columns) == ["a", "b", "z"]
    with pytest.raises(ValueError, match="no rows"):
        helpers.results_frame([])


def test_texts_are_long_enough_and_checked(tiny_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    n_tokens = sum(len(tokenizer(t).input_ids) for t in helpers.EVAL_TEXTS)
    assert n_tokens >= 2500, f"evaluation texts hold only {n_tokens} tokens"
    assert set(helpers.EDGE_PROMPTS) == {"very_short", "very_long", "multi_line", "repetitive"}
    assert "\n" in helpers.EDGE_PROMPTS["multi_line"]
    assert len(helpers.eval_texts(3)) == 3
    for bad in (0, -1, True, 1.5, len(helpers.EVAL_TEXTS) + 1):
        with pytest.raises(ValueError):
            helpers.eval_texts(bad)


def test_artifacts_of_a_graded_or_validated_run_stay_out_of_the_notebook_folder(tmp_path, monkeypatch):
    """Under nbgrader (validate, autograde) the notebook folder's artifacts/ is never written."""
    from helpers import reporting

    notebook_dir = tmp_path / "notebook"
    notebook_dir.mkdir()
    monkeypatch.chdir(notebook_dir)
    monkeypatch.setattr(reporting, "NOTEBOOK_DIR", notebook_dir)
    monkeypatch.setattr(reporting, "_private_dir", None)
    monkeypatch.delenv("COURSE_ARTIFACTS_DIR", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    saved = helpers.save_table([{"x": 1}], "t")
    assert notebook_dir not in saved.parents and saved.is_file()
    assert helpers.artifacts_dir() == saved.parent, "one folder for the whole run"
    assert not (notebook_dir / "artifacts").exists()
    # A test's scratch folder keeps ./artifacts, where the test looks for what was saved.
    scratch = notebook_dir / ".scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    assert helpers.save_table([{"x": 1}], "t") == scratch / "artifacts" / "t.csv"
    # An explicit folder wins; without nbgrader the notebook folder's artifacts/ is used.
    monkeypatch.chdir(notebook_dir)
    monkeypatch.setenv("COURSE_ARTIFACTS_DIR", str(tmp_path / "mine"))
    assert helpers.save_table([{"x": 1}], "t") == tmp_path / "mine" / "t.csv"
    monkeypatch.delenv("COURSE_ARTIFACTS_DIR")
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert helpers.save_table([{"x": 1}], "t") == notebook_dir / "artifacts" / "t.csv"


@pytest.mark.parametrize("model_id, label", [
    ("/home/me/course/models/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct"),
    ("/home/me/course/models/tiny-smollm2/", "tiny-smollm2"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
])
def test_model_label_is_short(model_id, label):
    assert helpers.model_label(model_id) == label
    assert helpers.model_label(helpers.TINY_DIR) == "tiny-smollm2"
