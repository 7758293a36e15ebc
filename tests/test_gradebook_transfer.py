"""Moving one submission's autograder results between gradebooks (grader/gradebook.py).

A cluster worker grades into a private sqlite gradebook; ``export_submission`` reads the
results out as data and ``record_submission`` writes them into the course's gradebook. The rules
are nbgrader's own (``SaveAutoGrades``): auto scores and comments set, a grader's manual score
kept and the cell marked for review again. The write is one transaction: a failure halfway leaves
the gradebook as it was. Planted mistakes each test would catch: a commit per row (nbgrader's
helpers do that) leaves a half-written submission; copying the manual score over, or not marking
the cell, loses a grader's work.
"""
from __future__ import annotations

import copy

import pytest

from grader.gradebook import _venv_bin_on_path, export_submission, record_submission, serialised_gradebook


def _gradebook(path):
    """A sqlite gradebook with assignment ``ex`` of two notebooks, each one graded cell and one solution cell."""
    from nbgrader.api import Gradebook

    _venv_bin_on_path()
    serialised_gradebook()
    url = f"sqlite:///{path}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment("ex")
        for notebook in ("nb1", "nb2"):
            gradebook.add_notebook(notebook, "ex")
            gradebook.add_grade_cell(f"{notebook}_test", notebook, "ex", max_score=5, cell_type="code")
            gradebook.add_solution_cell(f"{notebook}_answer", notebook, "ex")
            gradebook.add_source_cell(f"{notebook}_test", notebook, "ex", cell_type="code", source="assert True")
            gradebook.add_source_cell(f"{notebook}_answer", notebook, "ex", cell_type="code", source="x = 1")
        gradebook.add_student("alice")
    return url


def _graded(url, scores: dict):
    """What an autograde leaves: the submission with the given auto scores, an auto comment."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gradebook:
        gradebook.add_submission("ex", "alice", timestamp="2026-12-01 10:00:00")
        for notebook, score in scores.items():
            grade = gradebook.find_grade(f"{notebook}_test", notebook, "ex", "alice")
            grade.auto_score = score
            grade.needs_manual_grade = False
            comment = gradebook.find_comment(f"{notebook}_answer", notebook, "ex", "alice")
            comment.auto_comment = "No response." if score == 0 else None
        gradebook.db.commit()


def _state(url) -> dict | None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(url) as gradebook:
        try:
            submission = gradebook.find_submission("ex", "alice")
        except MissingEntry:
            return None
        return {notebook.name: {"grades": [(g.name, g.auto_score, g.manual_score, g.needs_manual_grade)
                                           for g in notebook.grades],
                                "comments": [(c.name, c.auto_comment) for c in notebook.comments]}
                for notebook in submission.notebooks} | {"score": submission.score,
                                                         "timestamp": str(submission.timestamp)}


@pytest.fixture
def worker_and_course(tmp_path):
    worker = _gradebook(tmp_path / "worker.db")
    _graded(worker, {"nb1": 5, "nb2": 0})
    return worker, _gradebook(tmp_path / "course.db")


def test_a_submission_moves_with_its_scores_comments_and_timestamp(worker_and_course):
    worker, course = worker_and_course
    export = export_submission(worker, "ex", "alice")
    record_submission(course, export)
    assert _state(course) == _state(worker)
    assert _state(course)["score"] == 5
    record_submission(course, export)        # again: updated in place, nothing added
    assert _state(course) == _state(worker)


def test_a_graders_manual_score_is_kept_and_marked_for_review(worker_and_course):
    from nbgrader.api import Gradebook

    worker, course = worker_and_course
    export = export_submission(worker, "ex", "alice")
    record_submission(course, export)
    with Gradebook(course) as gradebook:
        grade = gradebook.find_grade("nb2_test", "nb2", "ex", "alice")
        grade.manual_score = 3
        grade.needs_manual_grade = False
        gradebook.db.commit()
    record_submission(course, export)        # graded again, after the grader's change
    grades = dict((name, rest) for name, *rest in _state(course)["nb2"]["grades"])
    assert grades["nb2_test"] == [0, 3, True]
    assert _state(course)["score"] == 8


def test_a_failure_halfway_leaves_the_gradebook_as_it_was(worker_and_course):
    worker, course = worker_and_course
    export = export_submission(worker, "ex", "alice")
    broken = copy.deepcopy(export)
    broken["notebooks"]["no_such_notebook"] = broken["notebooks"]["nb2"]   # fails after nb1 and nb2 are set
    with pytest.raises(KeyError):
        record_submission(course, broken)
    assert _state(course) is None, "a new submission must not be left half-written"

    record_submission(course, export)
    before = _state(course)
    better = copy.deepcopy(broken)
    better["notebooks"]["nb2"]["auto_scores"]["nb2_test"] = 5
    with pytest.raises(KeyError):
        record_submission(course, better)
    assert _state(course) == before, "an existing submission must keep its old scores"


def test_gradebook_creation_reads_alembic_head_in_process(tmp_path):
    """A new gradebook is stamped with the same revision nbgrader's `alembic heads` subprocess prints,
    and no `alembic` process is started for it (a planted mistake: a wrong or stale revision, or
    nbgrader's subprocess left in place, each fails here)."""
    import subprocess
    import sys
    from pathlib import Path

    import nbgrader.api
    from nbgrader.dbutil import _temp_alembic_ini
    from sqlalchemy import create_engine, text

    from grader.gradebook import alembic_head

    alembic = str(Path(sys.executable).parent / "alembic")
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'probe.db'}") as ini:
        expected = subprocess.check_output([alembic, "-c", ini, "heads"], text=True).split()[0]
    assert alembic_head() == expected

    _venv_bin_on_path()
    started = []
    real_check_output = nbgrader.api.sp.check_output
    nbgrader.api.sp.check_output = lambda *a, **k: started.append(a) or real_check_output(*a, **k)
    try:
        url = _gradebook(tmp_path / "new.db")
    finally:
        nbgrader.api.sp.check_output = real_check_output
    assert started == []
    with create_engine(url).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == expected
