"""Plots, tables and saved artifacts with one set of labels and units.

Every metric key carries its unit in its name (``_s``, ``_ms``,
``tokens_per_sec``); ``axis_label`` turns a key into the label the course
uses on every plot and table, so two notebooks never disagree on units.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

AXIS_LABELS = {
    "total_latency_s": "total latency (s)",
    "tokens_generated": "new tokens generated",
    "tokens_per_sec": "throughput (new tokens/s)",
    "avg_latency_per_token_ms": "latency per new token (ms)",
    "ttft_s": "time to first token (s)",
    "tpot_ms": "time per output token (ms)",
    "decode_tokens_per_sec": "decode rate (new tokens/s)",
    "prompt_tokens": "prompt length (tokens)",
    "batch_size": "batch size (sequences)",
    "per_sample_latency_s": "latency per sequence (s)",
    "loss": "mean cross-entropy (nats/token)",
    "ppx": "perplexity",
    "perplexity": "perplexity",
    "size_mb": "model size on disk (MB)",
}

ARTIFACTS_DIRNAME = "artifacts"
ARTIFACTS_ENV = "COURSE_ARTIFACTS_DIR"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _cwd() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the working folder was deleted
        return None


# Jupyter and nbgrader start a notebook's kernel in the notebook's folder, and the notebooks
# import helpers first: this is the folder whose artifacts/ belongs to the student.
NOTEBOOK_DIR = _cwd()
_private_dir: Path | None = None


def axis_label(key: str) -> str:
    """The course's label for a metric key; unknown keys are shown as they are."""
    return AXIS_LABELS.get(key, key)


def _grading_artifacts_dir() -> Path:
    """One private temporary folder per process, removed when the kernel exits."""
    global _private_dir
    if _private_dir is None or not _private_dir.is_dir():
        _private_dir = Path(tempfile.mkdtemp(prefix="course-artifacts-"))
        atexit.register(shutil.rmtree, _private_dir, ignore_errors=True)
    return _private_dir


def artifacts_dir(folder: str | Path | None = None) -> Path:
    """The folder artifacts go to: ``./artifacts`` next to the running notebook by default.

    The notebook's own ``artifacts/`` is replaced by ``$COURSE_ARTIFACTS_DIR`` when that is
    set, and, while nbgrader runs the notebook (``NBGRADER_EXECUTION``: ``nbgrader validate``,
    the Validate button, autograding), by a private temporary folder: a validation runs the
    student's own folder in the fast profile, and must not overwrite the student's tables and
    plots with the tiny model's. Code that moved to another working folder (the tests' scratch
    folders) writes ``./artifacts`` there, where the tests look for it.
    """
    if folder is not None:
        path = Path(folder)
    else:
        cwd = Path.cwd()
        path = cwd / ARTIFACTS_DIRNAME
        if cwd == NOTEBOOK_DIR:
            if os.environ.get(ARTIFACTS_ENV, "").strip():
                path = Path(os.environ[ARTIFACTS_ENV].strip()).expanduser()
            elif os.environ.get("NBGRADER_EXECUTION"):
                path = _grading_artifacts_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _artifact_path(name: str, suffix: str, folder) -> Path:
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(
            f"artifact name {name!r} is not accepted: use a plain file name of letters, digits, "
            f"'_', '-' or '.', with no folder part (e.g. 'prompt_length_sweep')"
        )
    stem = name[: -len(suffix)] if name.lower().endswith(suffix) else name
    return artifacts_dir(folder) / f"{stem}{suffix}"


def save_table(table, name: str, folder: str | Path | None = None) -> Path:
    """Write a pandas DataFrame (or a list of dicts) to ``<artifacts>/<name>.csv``."""
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    path = _artifact_path(name, ".csv", folder)
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)  # never leave a half-written CSV behind
    return path


def save_figure(figure, name: str, folder: str | Path | None = None, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``<artifacts>/<name>.png``."""
    path = _artifact_path(name, ".png", folder)
    tmp = path.with_name(path.stem + ".tmp.png")
    figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_metric(x: Sequence[float], y: Sequence[float], *, x_key: str, y_key: str,
                yerr: Sequence[float] | None = None, title: str | None = None,
                label: str | None = None, ax=None):
    """Line plot of one metric against another, with optional error bars. Returns the figure."""
    import matplotlib.pyplot as plt

    if len(x) != len(y) or (yerr is not None and len(yerr) != len(y)):
        raise ValueError(f"x, y and yerr must have equal lengths, got {len(x)}, {len(y)}, "
                         f"{None if yerr is None else len(yerr)}")
    if ax is None:
        figure, ax = plt.subplots(figsize=(5.5, 3.6))
    else:
        figure = ax.figure
    ax.errorbar(list(x), list(y), yerr=None if yerr is None else list(yerr),
                marker="o", capsize=4, label=label)
    ax.set_xlabel(axis_label(x_key))
    ax.set_ylabel(axis_label(y_key))
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if label:
        ax.legend()
    figure.tight_layout()
    return figure


def plot_columns(frame, x_key: str, y_key: str, name: str, *, title: str | None = None,
                 iqr_key: str | None = None, ax=None):
    """Plot ``frame[y_key]`` against ``frame[x_key]`` with the IQR as error bars (the column
    ``iqr_key``, by default ``<y_key>_iqr`` when the frame has it), and save the figure as
    ``<name>.png`` in the artifacts folder unless ``ax`` draws it into a figure of yours (save
    that one with ``save_figure``). Returns the figure."""
    iqr_key = iqr_key or (f"{y_key}_iqr" if f"{y_key}_iqr" in frame.columns else None)
    for key in (x_key, y_key, iqr_key):
        if key is not None and key not in frame.columns:
            raise KeyError(f"plot_columns: no column {key!r}; the frame has {list(frame.columns)}")
    figure = plot_metric(frame[x_key], frame[y_key], x_key=x_key, y_key=y_key,
                         yerr=None if iqr_key is None else frame[iqr_key], title=title, ax=ax)
    if ax is None:
        import helpers  # through the package, so a replaced helpers.save_figure (a test's recorder) sees it

        helpers.save_figure(figure, name)
    return figure


def plot_bars(labels: Sequence[str], values: Sequence[float], *, y_key: str,
              yerr: Sequence[float] | None = None, title: str | None = None):
    """Bar chart of one metric across named settings. Returns the figure."""
    import matplotlib.pyplot as plt

    if len(labels) != len(values):
        raise ValueError(f"labels and values must have equal lengths, got {len(labels)} and {len(values)}")
    figure, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(labels)), 3.6))
    ax.bar(range(len(values)), list(values), yerr=None if yerr is None else list(yerr), capsize=4)
    ax.set_xticks(range(len(labels)), list(labels), rotation=15, ha="right")
    ax.set_ylabel(axis_label(y_key))
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def results_frame(rows: Iterable[dict], columns: Sequence[str] | None = None):
    """A DataFrame from result rows, with ``columns`` first in the given order.

    Rows may lack some keys (shown as empty cells); unknown keys follow the
    listed ones so nothing measured is dropped.
    """
    import pandas as pd

    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("results_frame() got no rows: run the measurements first")
    frame = pd.DataFrame(rows)
    if columns:
        first = [c for c in columns if c in frame.columns]
        frame = frame[first + [c for c in frame.columns if c not in first]]
    return frame
