"""Grading the example class: sequential vs parallel, and what the sandbox costs.

Four runs of ``python -m grader --no-feedback`` (release included) on fresh
copies of the course (new gradebook each time), so they differ only in the
setting measured:

* one submission at a time, sandboxed;
* the default number of workers, sandboxed (the main command's setting);
* one submission at a time, without the sandbox;
* one submission at a time, sandboxed, each kernel limited to the threads a
  parallel worker gets (the scaling at equal resources).

Parallel speed-up = sequential / parallel wall time; sandbox overhead per
submission = (sequential sandboxed - sequential unsandboxed) / submissions.
Per-submission times are the sequential run's own (``seconds`` in grades.csv:
kernel start, notebook, gradebook writes). One run each: on a busy machine,
re-run and compare.
"""
from __future__ import annotations

import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import course_copy, row

from helpers.paths import REPO_ROOT
PARTS = ("nbgrader_config.py", "source", "release", "submitted")


def _grade_seconds(root: Path, *args: str) -> tuple[float, list]:
    """Wall time of one run of the command on ``root``, and the rows it graded."""
    from grader import __main__ as grade, pipeline

    start = time.perf_counter()
    with pipeline.quiet_stdio():
        status, rows = grade.run(["--course-root", str(root), "--no-feedback", *args])
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"python -m grader {' '.join(args)} exited {status}")
    return seconds, rows


def main() -> list[dict]:
    from grader import dispatch, sandbox

    rows = []
    if sandbox.unavailable_reason():
        raise RuntimeError(f"sandbox unavailable ({sandbox.unavailable_reason()}): run `make setup`")
    with tempfile.TemporaryDirectory() as tmp:
        seq_root = course_copy(Path(tmp) / "seq", PARTS)
        sequential, graded_rows = _grade_seconds(seq_root, "--workers", "1", "--sandbox", "on")
        peaks = {}
        for graded_row in graded_rows:
            for report in graded_row.sandbox_reports.values():
                peaks[graded_row.assignment] = max(peaks.get(graded_row.assignment, 0.0), report.peak_memory_mb)
        with open(seq_root / "grades.csv", newline="") as handle:
            graded = list(csv.DictReader(handle))
        n = len(graded_rows)
        workers = dispatch.default_workers(n, REPO_ROOT)
        parallel, _ = _grade_seconds(course_copy(Path(tmp) / "par", PARTS), "--sandbox", "on")
        # Sequential again with each kernel on one thread, the share a parallel worker gets: on a
        # machine with few cores this isolates the scaling from the cores one kernel can use.
        narrow_root = course_copy(Path(tmp) / "seq1", PARTS)
        with open(narrow_root / "nbgrader_config.py", "a", encoding="utf-8") as config:
            config.write(f"\nc.Sandbox.kernel_threads = {max(1, len(os.sched_getaffinity(0)) // workers)}\n")
        narrow, _ = _grade_seconds(narrow_root, "--workers", "1", "--sandbox", "on")
        bare, _ = _grade_seconds(course_copy(Path(tmp) / "bare", PARTS), "--workers", "1", "--sandbox", "off")
    method = f"one run of python -m grader --no-feedback on a fresh copy ({n} submissions)"
    for assignment in sorted({r["assignment"] for r in graded}):
        times = [float(r["seconds"]) for r in graded if r["assignment"] == assignment]
        rows.append(row("class grading", f"{assignment}: one submission, fast profile, sandboxed",
                        statistics.median(times), "s", f"median over the {len(times)} example students, sequential run"))
    for assignment, peak in sorted(peaks.items()):
        rows.append(row("class grading", f"{assignment}: peak memory of one sandboxed submission", peak, "MiB",
                        "largest cgroup memory peak over the example students (0: no cgroups here)"))
    rows.append(row("class grading", "sequential, sandboxed", sequential, "s", method))
    rows.append(row("class grading", f"parallel ({workers} workers), sandboxed", parallel, "s", method))
    rows.append(row("class grading", "parallel speed-up", sequential / parallel, "x",
                    f"sequential / parallel wall time, same run; ideal {workers}x"))
    rows.append(row("class grading", "sequential, sandboxed, one worker's thread share per kernel", narrow, "s", method))
    rows.append(row("class grading", "parallel speed-up at equal threads per kernel", narrow / parallel, "x",
                    f"sequential with each kernel on a worker's share of the cores / parallel; ideal {workers}x"))
    rows.append(row("class grading", "sequential, no sandbox", bare, "s", method))
    rows.append(row("class grading", "sandbox overhead per submission", (sequential - bare) / n, "s",
                    "(sequential sandboxed - sequential unsandboxed) / submissions"))
    return rows
