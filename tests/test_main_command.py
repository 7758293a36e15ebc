"""The README's main command on the example class the repository ships.

The committed ``submitted/`` must be what ``tools.make_example_submissions``
builds from the current release and solution (otherwise the example students
grade an old notebook), and ``python -m grader`` run on a copy of the
course must grade them: alice (complete) full marks, bob (partly wrong) fewer,
with the cells bob got wrong named in the table and in grades.csv; a second
run gives the same scores and no duplicate rows.
"""
from __future__ import annotations

import csv
import json
import sqlite3

import nbformat
import pytest

from tests.pipeline import REPO_ROOT, copy_of_repository
from tools import make_example_submissions

pytestmark = pytest.mark.pipeline

ASSIGNMENTS = sorted(p.name for p in (REPO_ROOT / "release").iterdir() if p.is_dir())


def _cells(notebook):
    return [(c.cell_type, c.source) for c in notebook.cells]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_example_submissions_are_current(assignment):
    for student, expected in make_example_submissions.build(assignment).items():
        path = REPO_ROOT / "submitted" / student / assignment / f"{assignment}.ipynb"
        assert path.exists(), f"{path} missing: run `python -m tools.make_example_submissions`"
        committed = nbformat.read(path, as_version=4)
        assert _cells(committed) == _cells(expected), \
            f"submitted/{student}/{assignment} is stale: run `python -m tools.make_example_submissions`"


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    from grader import __main__ as grade

    root = copy_of_repository(tmp_path_factory.mktemp("course"),
                              "nbgrader_config.py", "students.csv", "source", "submitted")
    runs = []
    for _ in range(2):
        assert grade.main(["--course-root", str(root)]) == 0
        with open(root / "grades.csv", newline="") as handle:
            runs.append(list(csv.DictReader(handle)))
    return root, runs


def test_main_command_grades_the_example_class(graded_class):
    root, (first, _) = graded_class
    by_key = {(r["student"], r["assignment"]): r for r in first}
    assert set(by_key) == {(s, a) for s in make_example_submissions.STUDENTS for a in ASSIGNMENTS}
    for assignment in ASSIGNMENTS:
        alice, bob = by_key["alice", assignment], by_key["bob", assignment]
        assert float(alice["score"]) == float(alice["max_score"]) > 0, alice
        assert float(bob["score"]) < float(bob["max_score"]), bob
        assert bob["failed"], "bob lost points but the table does not say where"
        assert (root / "release" / assignment / f"{assignment}.ipynb").exists()
        feedback = root / "feedback" / "alice" / assignment
        assert list(feedback.glob("*.html")), f"no feedback written in {feedback}"
        assert any(column.startswith("points:test_") and alice[column] for column in alice), alice


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_partly_wrong_feedback_holds_no_hidden_test_line(graded_class, assignment):
    """bob fails hidden tests of both exercises: his feedback names them, with their messages,
    and holds not one line of hidden-test code (nbgrader #917: tracebacks print it)."""
    from grader import hidden_tests

    root, _ = graded_class
    source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    secrets = hidden_tests.secret_lines(source, release)
    assert len(secrets) > 100, "the hidden tests should have more lines than this to protect"
    folder = root / "feedback" / "bob" / assignment
    page = folder / f"{assignment}.html"
    assert page.is_file(), f"bob's feedback is missing (withheld?): {sorted(folder.iterdir())}"
    for path in folder.iterdir():
        leaked = hidden_tests.leaked_lines(path.read_text(encoding="utf-8", errors="replace"), secrets)
        assert leaked == [], f"{path.name} shows {len(leaked)} hidden-test lines, e.g. {leaked[:3]}"
    results = json.loads((folder / "results.json").read_text())
    failed = [t for t in results["tests"] if not t["passed"]]
    assert failed and all(t["message"] for t in failed), failed
    assert sum(t["points"] for t in results["tests"]) == results["score"]


def test_regrading_is_idempotent(graded_class):
    root, (first, second) = graded_class
    strip = lambda rows: sorted((r["student"], r["assignment"], r["score"], r["max_score"], r["failed"]) for r in rows)
    assert strip(first) == strip(second)
    with sqlite3.connect(root / "gradebook.db") as db:
        submissions = db.execute("select count(*) from submitted_assignment").fetchone()[0]
    assert submissions == len(first), "regrading duplicated submissions in the gradebook"


def test_formgrader_names_and_lms_exports(graded_class):
    """The roster's names are in the gradebook the Formgrader reads (not "None, None"), and the
    Canvas and Moodle files hold each student's total per assignment, as grades.csv does."""
    from grader import roster

    root, (first, _) = graded_class
    shipped = roster.load_roster(REPO_ROOT / "students.csv").students
    with sqlite3.connect(root / "gradebook.db") as db:
        names = {row[0]: row[1:] for row in db.execute(
            "select id, first_name, last_name, email, lms_user_id from student")}
    for student in make_example_submissions.STUDENTS:
        expected = shipped[student]
        assert names[student] == (expected["first_name"], expected["last_name"], expected["email"],
                                  expected["lms_user_id"]), names
    totals = {(r["student"], r["assignment"]): f"{float(r['score']):g}" for r in first}
    maxima = {r["assignment"]: f"{float(r['max_score']):g}" for r in first}
    with open(root / roster.CANVAS_FILE, newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *ASSIGNMENTS]
    assert canvas[1] == ["Points Possible", "", "", "", "", *(maxima[a] for a in ASSIGNMENTS)]
    by_sis_id = {row[2]: row for row in canvas[2:]}
    with open(root / roster.MOODLE_FILE, newline="") as handle:
        moodle = list(csv.DictReader(handle))
    by_email = {row["Email address"]: row for row in moodle}
    for student in make_example_submissions.STUDENTS:
        info = shipped[student]
        row = by_sis_id[info["lms_user_id"]]
        assert row[0] == f"{info['last_name']}, {info['first_name']}"
        assert row[5:] == [totals[student, a] for a in ASSIGNMENTS], (student, row)
        assert by_email[info["email"]]["ID number"] == info["lms_user_id"]
        assert [by_email[info["email"]][a] for a in ASSIGNMENTS] == [totals[student, a] for a in ASSIGNMENTS]


def test_no_release_on_a_new_gradebook_is_a_clear_error(tmp_path, capsys):
    """--no-release cannot grade an assignment the gradebook has never seen: say so, grade nothing."""
    from grader import __main__ as grade

    copy_of_repository(tmp_path, "nbgrader_config.py", "source", "submitted")
    assert grade.main(["--course-root", str(tmp_path), "--no-release"]) == 2
    message = capsys.readouterr().err
    assert "does not know" in message and "without --no-release" in message, message
    assert not (tmp_path / "grades.csv").exists() and not (tmp_path / "autograded").exists()
