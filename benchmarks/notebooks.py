"""A student's full run: every source notebook executed top to bottom in the full profile.

Also the engine behind tools/refresh_course_outputs.py, which copies the
figures and numbers of such a run into course/.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import row

from helpers.paths import REPO_ROOT


def execute(assignment: str, out_dir: Path, profile: str = "full", timeout_s: int = 1800):
    """Run source/<assignment> in a copy under ``out_dir``; return (notebook, section_seconds, total_s)."""
    import nbformat
    from nbclient import NotebookClient

    work = Path(out_dir) / assignment
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(REPO_ROOT / "source" / assignment, work, ignore=shutil.ignore_patterns("artifacts"))
    path = work / f"{assignment}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    env_before = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile
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
    nbformat.write(notebook, path)
    return notebook, section_times(notebook), total


def section_times(notebook) -> dict[str, float]:
    """Seconds per level-1/2 markdown section, from nbclient's recorded cell timings."""
    from datetime import datetime

    sections, current = {}, "start"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## ") or line.startswith("# "):
                    current = line.lstrip("# ").strip()
                    break
            continue
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if begin and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds()
            sections[current] = sections.get(current, 0.0) + seconds
    return sections


def main() -> list[dict]:
    from tools import grading

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in grading.source_assignments(REPO_ROOT):
            _, sections, total = execute(assignment, Path(tmp))
            rows.append(row("full run", f"{assignment}: whole notebook, full profile", total, "s",
                            "one nbclient run of the solution on the embedded model"))
            for name, seconds in sections.items():
                rows.append(row("full run", f"{assignment} / {name}", seconds, "s", "sum of cell times"))
    return rows
