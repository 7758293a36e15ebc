"""Parallel grading gives the same grades as sequential grading, with nothing lost or duplicated.

A class of ten submissions of tests/fixtures/robust.py (right, wrong, raising,
looping, malformed...) is graded twice on two identical courses: one
submission at a time, and two at a time in worker processes
(``grader.dispatch.grade_submissions``, as the main command does). The rows,
the per-cell scores and the gradebook contents must match; regrading the
parallel course changes nothing; the gradebook lock really excludes a second
process.
"""
from __future__ import annotations

import multiprocessing
import sqlite3
import time

import pytest

from tests.pipeline import Course, with_cell_replaced
import grader

pytestmark = pytest.mark.pipeline

A = "robust"
OVERRIDES = {"Execute.timeout": 5}


def _variant(course, cell_id, source):
    return with_cell_replaced(course.source_notebook(A), cell_id, source)


CLASS = {
    "ada": lambda c: c.source_notebook(A),
    "ben": lambda c: c.release_notebook(A),
    "cleo": lambda c: _variant(c, "square", "def square(x):\n    return x + x"),
    "dev": lambda c: _variant(c, "mean", "def mean(values):\n    return sum(values) / (len(values) - 1)"),
    "eve": lambda c: _variant(c, "square", "raise RuntimeError('oops')"),
    "fay": lambda c: _variant(c, "square", "while True:\n    pass"),
    "gus": lambda c: _variant(c, "square", "def square(x):\n    return x ** 2"),
    "hal": lambda c: _variant(c, "mean", "import statistics\ndef mean(values):\n    return statistics.fmean(values)"),
    "ivy": lambda c: c.source_notebook(A),
}


def _make_course(root):
    course = Course(root, [], fixtures=[A], overrides=OVERRIDES)
    for student, build in CLASS.items():
        course.submit(student, A, build(course))
    course.submit("jon", A, raw_text="{ not a notebook")
    return course


def _pairs():
    return [(s, A) for s in [*CLASS, "jon"]]


def _gradebook(root):
    with sqlite3.connect(root / "gradebook.db") as db:
        return {
            "integrity": db.execute("pragma integrity_check").fetchone()[0],
            "rows": {t: db.execute(f"select count(*) from {t}").fetchone()[0]
                     for t in ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")},
            "scores": sorted(db.execute(
                "select submitted_assignment.student_id, base_cell.name, grade.auto_score from grade "
                "join base_cell on grade.cell_id = base_cell.id "
                "join submitted_notebook on grade.notebook_id = submitted_notebook.id "
                "join submitted_assignment on submitted_notebook.assignment_id = submitted_assignment.id")),
        }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    sequential = _make_course(tmp_path_factory.mktemp("sequential"))
    parallel = _make_course(tmp_path_factory.mktemp("parallel"))
    t0 = time.perf_counter()
    seq_rows = grader.grade_submissions(sequential.root, _pairs(), workers=1, overrides=OVERRIDES, feedback=True)
    t1 = time.perf_counter()
    par_rows = grader.grade_submissions(parallel.root, _pairs(), workers=2, overrides=OVERRIDES, feedback=True)
    t2 = time.perf_counter()
    print(f"\n[parallel grading] {len(_pairs())} submissions: sequential {t1 - t0:.1f} s, "
          f"2 workers {t2 - t1:.1f} s")
    return {"sequential": (sequential, seq_rows), "parallel": (parallel, par_rows)}


def _summary(rows):
    return [(r.student, r.assignment, r.status, r.score, r.max_score, r.failed, r.reason) for r in rows]


def test_parallel_grades_equal_sequential_grades(graded):
    seq_course, seq_rows = graded["sequential"]
    par_course, par_rows = graded["parallel"]
    assert _summary(par_rows) == _summary(seq_rows)
    assert {r.student: r.score for r in seq_rows} == {
        "ada": 5, "ben": 0, "cleo": 3, "dev": 2, "eve": 3, "fay": 3, "gus": 5, "hal": 5, "ivy": 5, "jon": 0}
    assert next(r for r in par_rows if r.student == "jon").status == "not graded"


def test_gradebooks_match_with_one_row_per_thing(graded):
    seq = _gradebook(graded["sequential"][0].root)
    par = _gradebook(graded["parallel"][0].root)
    assert seq["integrity"] == par["integrity"] == "ok"
    assert par == seq
    graded_students = 9
    assert par["rows"]["student"] == graded_students
    assert par["rows"]["submitted_assignment"] == graded_students
    assert par["rows"]["grade"] == graded_students * 2      # two graded cells each


def test_every_submission_has_its_own_results(graded):
    course, rows = graded["parallel"]
    for row in rows:
        if row.status == "graded":
            assert (course.root / "autograded" / row.student / A / f"{A}.ipynb").is_file()
            assert (course.root / "feedback" / row.student / A / f"{A}.html").is_file()


def test_parallel_regrading_is_idempotent(graded):
    course, rows = graded["parallel"]
    before = _gradebook(course.root)
    again = grader.grade_submissions(course.root, _pairs(), workers=2, overrides=OVERRIDES, feedback=False)
    assert [(r.student, r.score) for r in again] == [(r.student, r.score) for r in rows]
    assert _gradebook(course.root) == before


def _hold_gradebook(db_url, seconds, started):
    from nbgrader.api import Gradebook

    grader.serialised_gradebook()
    with Gradebook(db_url):
        started.set()
        time.sleep(seconds)


def test_gradebook_sessions_exclude_each_other_across_processes(graded):
    from nbgrader.api import Gradebook

    course, _ = graded["parallel"]
    db_url = "sqlite:///" + str(course.root / "gradebook.db")
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    holder = context.Process(target=_hold_gradebook, args=(db_url, 2.0, started))
    holder.start()
    try:
        assert started.wait(60), "the holding process never opened the gradebook"
        grader.serialised_gradebook()
        t0 = time.perf_counter()
        with Gradebook(db_url):
            waited = time.perf_counter() - t0
    finally:
        holder.join(30)
    assert waited > 1.0, f"opened the gradebook after {waited:.2f} s while another process held it"
