"""grader.reviews: a person's reading of a held grade is recorded, publishes that submission only,
and a new submission is held again."""
from __future__ import annotations

import json

import pytest

from grader import reviews
from grader.reports import GradeRow

FINDING = "review for tampering, seen in the kernel: sys.settrace"


def _course(tmp_path, text="print(1)"):
    folder = tmp_path / "submitted" / "alice" / "exercise1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "exercise1.ipynb").write_text(text)
    feedback = tmp_path / "feedback" / "alice" / "exercise1"
    feedback.mkdir(parents=True, exist_ok=True)
    return tmp_path


def _held_row():
    return GradeRow("alice", "exercise1", "graded", score=7, max_score=9, reason=FINDING, held_for_review=[FINDING])


def _write_results(course, row):
    (course / "feedback" / "alice" / "exercise1" / "results.json").write_text(json.dumps(row.results()))


def test_a_released_grade_is_published_with_its_findings_and_who_released_it(tmp_path, capsys):
    course = _course(tmp_path)
    row = _held_row()
    assert reviews.apply(course, [row]) == [] and row.shown_status() == "graded, held for review"

    assert reviews.main(["--course-root", str(course), "release", "alice", "exercise1",
                         "--by", "TA Kim", "--note", "settrace is a line profiler"]) == 0
    assert "next grading run publishes it" in capsys.readouterr().out
    _write_results(course, row)
    assert reviews.apply(course, [row]) == [row]
    assert row.shown_status() == "graded" and row.held_for_review == []
    assert FINDING in row.reason and "released by TA Kim" in row.reason and "line profiler" in row.reason
    results = json.loads((course / "feedback" / "alice" / "exercise1" / "results.json").read_text())
    assert results["status"] == "graded" and "released by TA Kim" in results["reason"]


def test_a_new_submission_is_held_again_and_hold_keeps_it_held(tmp_path):
    course = _course(tmp_path)
    reviews.record(course, "alice", "exercise1", "release", "TA Kim", "fine")
    _course(tmp_path, text="print(2)")  # handed in again after the review
    row = _held_row()
    assert reviews.apply(course, [row]) == [] and row.held_for_review == [FINDING]

    reviews.record(course, "alice", "exercise1", "hold", "TA Kim", "rewrites the test's globals")
    row = _held_row()
    assert reviews.apply(course, [row]) == [] and row.shown_status() == "graded, held for review"
    assert "kept held" in row.reason
    # The newest record of the same submission wins, and the log keeps all three.
    reviews.record(course, "alice", "exercise1", "release", "Prof. Lee", "asked the student: a debugging aid")
    row = _held_row()
    assert reviews.apply(course, [row]) == [row]
    assert [r.decision for r in reviews.read_reviews(course)] == ["release", "hold", "release"]


def test_bad_reviews_are_refused_and_nothing_is_written(tmp_path, capsys):
    course = _course(tmp_path)
    assert reviews.main(["--course-root", str(course), "release", "bob", "exercise1", "--by", "x", "--note", "y"]) == 2
    assert "no submission at" in capsys.readouterr().err
    with pytest.raises(reviews.ReviewError, match="accepted: release, hold"):
        reviews.record(course, "alice", "exercise1", "approve", "x", "y")
    with pytest.raises(reviews.ReviewError, match="--by"):
        reviews.record(course, "alice", "exercise1", "release", " ", "y")
    assert not (course / reviews.REVIEWS_FILE).exists()
    (course / reviews.REVIEWS_FILE).write_text("student,assignment\nalice,exercise1\n")
    row = _held_row()
    with pytest.raises(reviews.ReviewError, match="columns .* are missing"):
        reviews.apply(course, [row])
    assert row.held_for_review == [FINDING]
