"""A student's full run: every source notebook executed top to bottom in the full profile.

The engine, shared with tools/refresh_course_outputs.py, is tools/notebook_run.py.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import row
from helpers.paths import REPO_ROOT
from tools.notebook_run import CELL_TIMEOUT_S, run_copy, section_seconds


def execute(assignment: str, out_dir: Path, profile: str = "full", timeout_s: int = CELL_TIMEOUT_S):
    """Run source/<assignment> in a copy under ``out_dir``; return (notebook, section_seconds, total_s)."""
    import nbformat

    notebook, total, work = run_copy(assignment, out_dir, profile, timeout_s)
    nbformat.write(notebook, work / f"{assignment}.ipynb")
    return notebook, section_times(notebook), total


def section_times(notebook) -> dict[str, float]:
    """Seconds per level-1/2 markdown section that ran timed cells ("start" before the first)."""
    sections: dict[str, float] = {}
    for name, seconds in section_seconds(notebook, first="start"):
        if seconds > 0:
            sections[name] = sections.get(name, 0.0) + seconds
    return sections


def main() -> list[dict]:
    from grader import pipeline

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in pipeline.source_assignments(REPO_ROOT):
            _, sections, total = execute(assignment, Path(tmp))
            rows.append(row("full run", f"{assignment}: whole notebook, full profile", total, "s",
                            "one nbclient run of the solution on the embedded model"))
            for name, seconds in sections.items():
                rows.append(row("full run", f"{assignment} / {name}", seconds, "s", "sum of cell times"))
    return rows
