"""A student's full run: every source notebook executed top to bottom in the full profile.

Time per section, and the peak resident memory of the kernel's whole process tree (sampled every
0.1 s, tools.notebook_run.TreeMemory) with the cells where it peaks. The run starts as a first
run on a new laptop does: ``HOME`` points to an empty folder, so no cached ONNX export is reused.

    python -m benchmarks.notebooks [exercise1 ...]

The engine, shared with tools/refresh_course_outputs.py, is tools/notebook_run.py.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import row
from helpers.paths import REPO_ROOT
from tools.notebook_run import CELL_TIMEOUT_S, TreeMemory, run_copy, section_seconds


def execute(assignment: str, out_dir: Path, profile: str = "full", timeout_s: int = CELL_TIMEOUT_S,
            memory: TreeMemory | None = None):
    """Run source/<assignment> in a copy under ``out_dir``, with ``HOME`` set to an empty folder in
    it; return (notebook, section_seconds, total_s)."""
    import nbformat

    home_before = os.environ.get("HOME")
    os.environ["HOME"] = str(Path(out_dir) / f"{assignment}-home")
    Path(os.environ["HOME"]).mkdir(parents=True, exist_ok=True)
    try:
        notebook, total, work = run_copy(assignment, out_dir, profile, timeout_s, memory=memory)
    finally:
        if home_before is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home_before
    nbformat.write(notebook, work / f"{assignment}.ipynb")
    return notebook, section_times(notebook), total


def peak_cells(notebook, memory: TreeMemory, top: int = 5) -> list[tuple[int, str, float]]:
    """The ``top`` cells with the highest tree memory while they ran: (index, first line, GB)."""
    ranked = sorted(memory.by_cell.items(), key=lambda item: -item[1])[:top]
    return [(index, notebook.cells[index].source.strip().splitlines()[0][:70] if notebook.cells[index].source.strip()
             else "", used / 1e9) for index, used in ranked]


def section_times(notebook) -> dict[str, float]:
    """Seconds per level-1/2 markdown section that ran timed cells ("start" before the first)."""
    sections: dict[str, float] = {}
    for name, seconds in section_seconds(notebook, first="start"):
        if seconds > 0:
            sections[name] = sections.get(name, 0.0) + seconds
    return sections


def main(assignments=None) -> list[dict]:
    from grader import pipeline

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in assignments or pipeline.source_assignments(REPO_ROOT):
            memory = TreeMemory()
            notebook, sections, total = execute(assignment, Path(tmp), memory=memory)
            rows.append(row("full run", f"{assignment}: whole notebook, full profile", total, "s",
                            "one nbclient run of the solution on the embedded model, no cached export"))
            rows.append(row("full run", f"{assignment}: peak resident memory", memory.peak_bytes / 1e9, "GB",
                            f"sum of RSS over the kernel's process tree, {memory.samples} samples 0.1 s apart; "
                            f"at the peak, cell {memory.peak_cell} had last printed: {memory.peak_after!r}"))
            for index, first_line, gigabytes in peak_cells(notebook, memory):
                rows.append(row("full run", f"{assignment} cell {index}: {first_line}", gigabytes, "GB",
                                "peak of the tree while this cell ran"))
            for name, seconds in sections.items():
                rows.append(row("full run", f"{assignment} / {name}", seconds, "s", "sum of cell times"))
    return rows


if __name__ == "__main__":
    import sys

    for figure in main(sys.argv[1:] or None):
        print(figure)
