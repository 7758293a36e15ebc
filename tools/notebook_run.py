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


class TreeMemory:
    """Resident memory of everything this process starts (the kernel and any process the kernel
    starts), summed over the process tree and sampled every ``interval_s`` seconds while a notebook
    runs, with the peak kept per cell. A sum of RSS counts pages that two processes share twice,
    so it errs high, never low; one process's maximum would miss what its children hold."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.peak_cell = None                 # index of the cell running when the peak was seen
        self.by_cell: dict[int, int] = {}     # cell index -> peak bytes while it ran
        self.samples = 0
        self.peak_after = ""                  # the last line the notebook printed before the peak
        self._cell = None
        self._printed = ""
        self._stop = None

    def cell_started(self, cell, cell_index, **_):  # nbclient's on_cell_execute hook
        self._cell = cell_index
        self._printed = ""

    def printed(self, msg: dict):
        """A kernel message with output: its last non-empty line marks where the cell has got to."""
        text = msg.get("content", {}).get("text", "")
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        if lines:
            self._printed = lines[-1][:100]

    def _tree_bytes(self) -> int:
        import psutil

        total = 0
        for child in psutil.Process().children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # ended between the listing and the reading
                pass
        return total

    def _sample(self):
        while not self._stop.wait(self.interval_s):
            used, cell = self._tree_bytes(), self._cell
            self.samples += 1
            if cell is not None:
                self.by_cell[cell] = max(self.by_cell.get(cell, 0), used)
            if used > self.peak_bytes:
                self.peak_bytes, self.peak_cell, self.peak_after = used, cell, self._printed

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_copy(assignment: str, work_root: Path, profile: str = "full", timeout_s: int = CELL_TIMEOUT_S,
             extra_cells=(), unset_env=(), memory: TreeMemory | None = None):
    """Execute a copy of source/<assignment> in ``work_root/<assignment>`` (replaced if there) with
    ``COURSE_PROFILE=profile``; ``extra_cells`` are appended first, ``unset_env`` variables removed.
    With ``memory``, the kernel's process tree is sampled into it while the notebook runs.

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
        if memory is None:
            client.execute()
        else:
            client.on_cell_execute = memory.cell_started
            output = client.output

            def output_seen(outs, msg, display_id, cell_index):
                memory.printed(msg)
                return output(outs, msg, display_id, cell_index)

            client.output = output_seen
            with memory:
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
