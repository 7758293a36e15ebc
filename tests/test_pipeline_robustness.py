"""The real nbgrader pipeline against misbehaving submissions (tests/fixtures/robust.py).

One temporary course; every submission below is graded through
``grader`` exactly as the main command grades, then each test reads
the outcome. Full marks for the fixture: test_square 2 + test_mean 3 = 5.
"""
from __future__ import annotations

import sqlite3

import nbformat
import pytest

from tests.pipeline import Course, cell_by_id, with_cell_replaced

pytestmark = pytest.mark.pipeline

A = "robust"
# Per-cell limit for this course. It must stop the infinite loop quickly, yet leave the cell that
# prints megabytes time to finish on a loaded 2-core machine: at 5 s it timed out there once
# during a full `make test` (3/5 instead of 5/5).
CELL_TIMEOUT_S = 15


def _solution(course):
    return course.source_notebook(A)


def _variant(course, cell_id, source):
    return with_cell_replaced(_solution(course), cell_id, source)


SUBMISSIONS = {
    "correct": lambda c: _solution(c),
    "starter": lambda c: c.release_notebook(A),
    "raises_at_top": lambda c: _variant(c, "square", "raise RuntimeError('oops')\ndef square(x):\n    return x * x"),
    "loops_forever": lambda c: _variant(c, "square", "while True:\n    pass"),
    "prints_megabytes": lambda c: _variant(c, "square", "for i in range(200_000):\n    print('spam' * 10, i)\n"
                                                        "def square(x):\n    return x * x"),
    "wrong_and_disarms_tests": None,   # built below: wrong answer + test cell replaced by `pass`
    "wrong_and_deletes_tests": None,   # wrong answer + test cell removed
    "inflates_points": None,           # test cell metadata claims 100 points
    "warns_in_answer": lambda c: _variant(c, "mean", "import warnings\ndef mean(values):\n"
                                                     "    warnings.warn('old API', DeprecationWarning)\n"
                                                     "    return sum(values) / len(values)"),
    "real_error_beside_noise": lambda c: _variant(c, "mean", "def mean(values):\n    return 0"),
}


def _wrong_and_disarms(course):
    nb = _variant(course, "square", "def square(x):\n    return x + x")
    cell_by_id(nb, "test_square").source = "pass"
    return nb


def _wrong_and_deletes(course):
    nb = _variant(course, "square", "def square(x):\n    return x + x")
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_square"]
    return nb


def _inflates(course):
    nb = _solution(course)
    cell_by_id(nb, "test_square").metadata["nbgrader"]["points"] = 100
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    c = Course(tmp_path_factory.mktemp("course"), [], fixtures=[A],
               overrides={"Execute.timeout": CELL_TIMEOUT_S})
    builders = dict(SUBMISSIONS, wrong_and_disarms_tests=_wrong_and_disarms,
                    wrong_and_deletes_tests=_wrong_and_deletes, inflates_points=_inflates)
    for student, build in builders.items():
        c.submit(student, A, build(c))
    c.submit("malformed", A, raw_text='{"cells": [ this is not json')
    (c.root / "submitted" / "no_notebook" / A).mkdir(parents=True)
    (c.root / "submitted" / "no_notebook" / A / "notes.txt").write_text("forgot the notebook")
    c.rows = {student: c.grade(student, A, feedback=True) for student, _ in
              [(s, A) for s in [*builders, "malformed", "no_notebook"]]}
    return c


def score(course, student):
    row = course.rows[student]
    assert row.status == "graded", f"{student} not graded: {row.reason}"
    return row.score, row.max_score


def test_solution_gets_full_marks(course):
    assert score(course, "correct") == (5, 5)


def test_release_holds_no_solution_or_hidden_tests(course):
    text = (course.releases[A] / f"{A}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "return x * x" not in text
    assert "HIDDEN TESTS" not in text and "square(-4)" not in text
    assert "NotImplementedError" in text


def test_unchanged_starter_scores_zero(course):
    assert score(course, "starter") == (0, 5)


def test_exception_in_answer_costs_only_that_part(course):
    assert score(course, "raises_at_top") == (3, 5)
    assert course.rows["raises_at_top"].failed == ["test_square"]


def test_infinite_loop_is_interrupted_and_later_cells_still_run(course):
    assert score(course, "loops_forever") == (3, 5)
    nb = course.autograded_notebook("loops_forever", A)
    outputs = cell_by_id(nb, "square").outputs
    assert any(o.get("output_type") == "error" for o in outputs), "the looping cell should show an error"


def test_huge_output_is_truncated_and_still_graded(course):
    assert score(course, "prints_megabytes") == (5, 5)
    nb = course.autograded_notebook("prints_megabytes", A)
    text = "".join(o.get("text", "") for o in cell_by_id(nb, "square").outputs)
    assert text.count("\n") <= 250, "LimitOutput should cap the output at about 200 lines"
    path = course.root / "autograded" / "prints_megabytes" / A / f"{A}.ipynb"
    assert path.stat().st_size < 200_000


def test_edited_test_cell_is_restored(course):
    assert score(course, "wrong_and_disarms_tests") == (3, 5)
    restored = cell_by_id(course.autograded_notebook("wrong_and_disarms_tests", A), "test_square").source
    assert "square(3) == 9" in restored


def test_deleted_test_cell_is_added_back(course):
    assert score(course, "wrong_and_deletes_tests") == (3, 5)
    assert course.rows["wrong_and_deletes_tests"].reason == ""


def test_points_come_from_the_gradebook_not_the_submission(course):
    assert score(course, "inflates_points") == (5, 5)


def test_warnings_on_stderr_do_not_cost_points(course):
    assert score(course, "warns_in_answer") == (5, 5)


def test_noise_does_not_hide_a_real_failure(course):
    assert score(course, "real_error_beside_noise") == (2, 5)


def test_malformed_notebook_is_reported_by_name(course):
    row = course.rows["malformed"]
    assert row.status == "not graded"
    assert "robust.ipynb is not a readable notebook" in row.reason


def test_missing_notebook_is_reported(course):
    row = course.rows["no_notebook"]
    assert row.status == "not graded" and "robust.ipynb" in row.reason


def test_feedback_hides_hidden_tests(course):
    import html as html_lib
    import re

    raw = (course.root / "feedback" / "correct" / A / f"{A}.html").read_text()
    html = html_lib.unescape(re.sub(r"<[^>]+>", "", raw))  # drop syntax-highlighting spans
    assert "square(3) == 9" in html
    assert "square(-4)" not in html and "HIDDEN TESTS" not in html


def _gradebook_counts(root):
    with sqlite3.connect(root / "gradebook.db") as db:
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("student", "submitted_assignment", "submitted_notebook", "grade")}


def test_regrading_is_idempotent(course):
    before_counts = _gradebook_counts(course.root)
    submitted = (course.root / "submitted" / "correct" / A / f"{A}.ipynb").read_bytes()
    again = {s: course.grade(s, A) for s in ("correct", "raises_at_top", "starter")}
    assert {s: (r.score, r.max_score) for s, r in again.items()} == \
        {s: (course.rows[s].score, course.rows[s].max_score) for s in again}
    assert _gradebook_counts(course.root) == before_counts
    assert (course.root / "submitted" / "correct" / A / f"{A}.ipynb").read_bytes() == submitted


def test_new_cells_after_grading_are_refused_with_a_clear_message(course):
    """nbgrader refuses to change an assignment's cells once it has submissions: say why and how out."""
    import copy

    import grader as grading

    source = course.root / "source" / A / f"{A}.ipynb"
    original = source.read_bytes()
    release_file = course.root / "release" / A / f"{A}.ipynb"
    release = release_file.read_bytes()
    nb = nbformat.read(source, as_version=4)
    locked = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")
                  and not c.metadata["nbgrader"].get("grade"))
    extra = copy.deepcopy(locked)
    extra.metadata["nbgrader"]["grade_id"] = "added_after_grading"
    extra["id"] = "added-after-grading"
    extra.source = "EXTRA = 1"
    nb.cells.append(extra)
    nbformat.write(nb, source)
    try:
        result = grading.generate_release(course.root, A, course.overrides)
    finally:
        source.write_bytes(original)
    assert not result["success"]
    assert f"already holds submissions of {A}" in result["error"], result["error"][:400]
    assert f"nbgrader db assignment remove {A} --force" in result["error"]
    assert release_file.read_bytes() == release, "the previous release must be kept"
    assert _gradebook_counts(course.root)["grade"] > 0, "no grade may be lost"
