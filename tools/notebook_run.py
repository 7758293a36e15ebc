"""Run a source notebook top to bottom in a copy, and time it by section.

One engine for ``benchmarks/notebooks.py`` (a student's full run, timed) and
``tools/refresh_course_outputs.py`` (the figures and numbers of such a run, copied into course/).
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from pathlib import Path

from helpers.paths import REPO_ROOT


# Per-cell timeout of these full-profile runs (benchmarks/notebooks.py, the recorded course
# outputs); the grader's per-cell timeout is c.Execute.timeout in nbgrader_config.py.
CELL_TIMEOUT_S = 1800


def run_copy(assignment: str, work_root: Path, profile: str = "full", timeout_s: int = CELL_TIMEOUT_S,
             extra_cells=(), unset_env=()):
    """Execute a copy of source/<assignment> in ``work_root/<assignment>`` (replaced if there) with
    ``COURSE_PROFILE=profile``; ``extra_cells`` are appended first, ``unset_env`` variables removed.

    Returns (executed notebook, total seconds, folder); saving the notebook is the caller's choice.
    """
    import nbformat
    from nbclient import NotebookClient

    work = Path(work_root) / assignment
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(REPO_ROOT / "source" / assignment, work, ignore=shutil.ignore_patterns("artifacts"))
    path = work / f"{assignment}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.extend(extra_cells)
    env_before = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile
    for name in unset_env:
        os.environ.pop(name, None)
    try:
        client = NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                                resources={"metadata": {"path": str(work)}}, record_timing=True)
        start = time.perf_counter()
        client.execute()
        total = time.perf_counter() - start
    finally:
        if env_before is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = env_before
    return notebook, total, work


def section_seconds(notebook, first: str) -> list[tuple[str, float]]:
    """``(heading, seconds)`` per level-1/2 markdown section, in order, from nbclient's recorded
    cell timings; cells before the first heading count under ``first``."""
    sections = [(first, 0.0)]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = next((line.lstrip("#").strip() for line in cell.source.splitlines()
                            if line.startswith("# ") or line.startswith("## ")), None)
            if heading:
                sections.append((heading, 0.0))
            continue
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if begin and end:
            seconds = (_dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - _dt.datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds()
            sections[-1] = (sections[-1][0], sections[-1][1] + seconds)
    return sections
