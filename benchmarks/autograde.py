"""Grading cost: one submission of each exercise in the fast profile, and the example class."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import course_copy, row

from helpers.paths import REPO_ROOT


def main(repeats: int = 2) -> list[dict]:
    from grader import pipeline
    from grader.throwaway_course import Course

    rows = []
    assignments = pipeline.source_assignments(REPO_ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        course = Course(Path(tmp) / "course", assignments)
        for assignment in assignments:
            course.submit("solution", assignment, course.source_notebook(assignment))
            times = []
            for _ in range(repeats):
                with pipeline.quiet_stdio():
                    result = course.grade("solution", assignment)
                times.append(result.seconds)
            rows.append(row("autograde", f"{assignment}: one submission, fast profile",
                            statistics.median(times), "s",
                            f"median of {repeats} autogrades of the solution (kernel start, run, save grades)"))
            rows.append(row("autograde", f"{assignment}: solution score", result.score, "points",
                            f"of {result.max_score:g}"))

        # The example class exactly as the main command grades it, on a copy of the course.
        copy = course_copy(Path(tmp) / "class")
        if (copy / "submitted").is_dir():
            from grader import __main__ as grade

            start = time.perf_counter()
            with pipeline.quiet_stdio():
                grade.main(["--course-root", str(copy)])
            n = len(pipeline.discover_submissions(copy))
            rows.append(row("autograde", f"example class ({n} submissions), release + grade + feedback",
                            time.perf_counter() - start, "s", "one run of `python -m grader` on a copy"))
    return rows
