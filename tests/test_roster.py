"""The roster (students.csv) and the LMS exports (grader/roster.py), on a real nbgrader
gradebook in a temporary sqlite file: no mocks.

The roster import sets names, emails and LMS ids, is idempotent, and refuses every bad
file with a message saying what is wrong and what is accepted, leaving the gradebook as it
was; the Canvas and Moodle files have exactly the expected rows for a small class with two
assignments and a missing submission.
"""
from __future__ import annotations

import csv
import sqlite3

import pytest

from tests.pipeline import REPO_ROOT, copy_of_repository
from grader import __main__ as grade, gradebook as grader_gradebook, roster

ROSTER = ("id,first_name,last_name,email,lms_user_id\n"
          "alice,Alice,Example,alice@example.org,EX1001\n"
          "bob,Bob,Sample,bob@example.org,EX1002\n")


def _gradebook_url(path):
    return "sqlite:///" + str(path)


def _students(db_path):
    with sqlite3.connect(db_path) as db:
        return sorted(db.execute("select id, first_name, last_name, email, lms_user_id from student"))


@pytest.fixture
def gradebook(tmp_path):
    """A gradebook with exercise1 (max 38) and exercise2 (max 25): alice submitted both
    (38, 25), bob only exercise1 (29), carol (not in the roster) only exercise2 (12.5)."""
    from nbgrader.api import Gradebook

    grader_gradebook._venv_bin_on_path()
    grader_gradebook.serialised_gradebook()
    db_path = tmp_path / "gradebook.db"
    with Gradebook(_gradebook_url(db_path)) as gb:
        for assignment, maximum in (("exercise1", 38), ("exercise2", 25)):
            gb.add_assignment(assignment)
            gb.add_notebook(assignment, assignment)
            gb.add_grade_cell("test_a", assignment, assignment, max_score=maximum, cell_type="code")
        for student, assignment, score in (("alice", "exercise1", 38), ("alice", "exercise2", 25),
                                           ("bob", "exercise1", 29), ("carol", "exercise2", 12.5)):
            gb.update_or_create_student(student)
            gb.add_submission(assignment, student)
            gb.find_grade("test_a", assignment, assignment, student).auto_score = score
            gb.db.commit()
    return db_path


def _write(tmp_path, text, name="students.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_sets_names_emails_and_lms_ids_and_is_idempotent(tmp_path, gradebook):
    loaded = roster.load_roster(_write(tmp_path, ROSTER))
    assert roster.import_roster(loaded, gradebook) == 2
    expected = [("alice", "Alice", "Example", "alice@example.org", "EX1001"),
                ("bob", "Bob", "Sample", "bob@example.org", "EX1002"),
                ("carol", None, None, None, None)]
    assert _students(gradebook) == expected
    roster.import_roster(loaded, gradebook)
    assert _students(gradebook) == expected, "a second import changed or duplicated students"
    assert loaded.unknown(["alice", "carol", "carol", "dave"]) == ["carol", "dave"]


def test_an_update_changes_only_the_columns_the_roster_has(tmp_path, gradebook):
    roster.import_roster(roster.load_roster(_write(tmp_path, ROSTER)), gradebook)
    update = _write(tmp_path, "id,last_name\nbob,Sample-Renamed\ndave,Newcomer\n", "update.csv")
    roster.import_roster(roster.load_roster(update), gradebook)
    students = {row[0]: row for row in _students(gradebook)}
    assert students["bob"] == ("bob", "Bob", "Sample-Renamed", "bob@example.org", "EX1002")
    assert students["dave"] == ("dave", None, "Newcomer", None, None)


def test_the_shipped_roster_lists_every_example_student():
    from tools import make_example_submissions

    loaded = roster.load_roster(REPO_ROOT / roster.ROSTER_FILE)
    submitted = {p.name for p in (REPO_ROOT / "submitted").iterdir() if p.is_dir()}
    assert loaded.unknown(submitted | set(make_example_submissions.STUDENTS)) == []
    for student in loaded.students.values():
        assert student["first_name"] and student["last_name"] and student["lms_user_id"]
        assert student["email"].endswith("@example.org"), "example students get example.org emails"


BAD_ROSTERS = {
    "no id column": ("first_name,last_name\nAlice,Example\n", ["no 'id' column", "accepted columns: id,"]),
    "unknown column": ("id,first_name,phone\nalice,Alice,555\n", ["unknown column(s) 'phone'", "accepted columns"]),
    "duplicate id": (ROSTER + "alice,Alicia,Twin,a2@example.org,EX1003\n",
                     ["line 4: duplicate id 'alice' (first on line 2)"]),
    "empty id": (ROSTER + ",Nobody,Blank,n@example.org,EX1009\n", ["line 4 has an empty id", "folder under submitted/"]),
    "blank id": (ROSTER + "   ,Nobody,Blank,n@example.org,EX1009\n", ["line 4 has an empty id"]),
    "repeated column": ("id,email,email\nalice,a@example.org,b@example.org\n", ["email appear more than once"]),
    "extra field": (ROSTER + "dave,Dave,Extra,d@example.org,EX1004,surplus\n", ["line 4 has more fields"]),
    "email without @": (ROSTER + "dave,Dave,Typo,dave.example.org,EX1004\n", ["'dave.example.org' of dave has no '@'"]),
    "id not a folder name": (ROSTER + "../dave,Dave,Path,d@example.org,EX1004\n", ["cannot be a folder name"]),
    "empty file": ("", ["empty file", "accepted columns"]),
}


@pytest.mark.parametrize("case", sorted(BAD_ROSTERS))
def test_a_bad_roster_is_refused_with_its_reason_and_nothing_is_written(tmp_path, gradebook, case):
    text, phrases = BAD_ROSTERS[case]
    before = _students(gradebook)
    with pytest.raises(roster.RosterError) as refused:
        loaded = roster.load_roster(_write(tmp_path, text))
        roster.import_roster(loaded, gradebook)
    for phrase in phrases:
        assert phrase in str(refused.value), f"{case}: {refused.value}"
    assert _students(gradebook) == before


def test_the_grading_command_refuses_a_bad_roster_before_writing_anything(tmp_path, capsys):
    """`python -m grader` checks the roster before the solution check, release or gradebook."""
    copy_of_repository(tmp_path, "nbgrader_config.py", "source", "submitted")
    _write(tmp_path, ROSTER + "alice,Again,Twice,x@example.org,EX9\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert grade.main(["--course-root", str(tmp_path), "--sandbox", "off"]) == 2
    message = capsys.readouterr().err
    assert "REFUSING TO GRADE" in message and "duplicate id 'alice'" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"


def test_a_named_roster_that_does_not_exist_is_an_error(tmp_path, capsys):
    copy_of_repository(tmp_path, "nbgrader_config.py", "source")
    assert grade.main(["--course-root", str(tmp_path), "--roster", str(tmp_path / "missing.csv")]) == 2
    assert "no such roster file" in capsys.readouterr().err


def _read(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_canvas_and_moodle_exports(tmp_path, gradebook):
    roster.import_roster(roster.load_roster(_write(tmp_path, ROSTER)), gradebook)
    paths, left_out = roster.write_lms_exports(gradebook, tmp_path)
    assert paths == {"canvas": tmp_path / "grades_canvas.csv", "moodle": tmp_path / "grades_moodle.csv"}
    assert _read(paths["canvas"]) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "exercise1", "exercise2"],
        ["Points Possible", "", "", "", "", "38", "25"],
        ["Example, Alice", "", "EX1001", "", "", "38", "25"],
        ["Sample, Bob", "", "EX1002", "", "", "29", ""],        # no exercise2 submission: empty, not 0
        ["carol", "", "", "", "", "", "12.5"],                  # not in the roster: her id, Canvas asks
    ]
    assert _read(paths["moodle"]) == [
        ["ID number", "Email address", "exercise1", "exercise2"],
        ["EX1001", "alice@example.org", "38", "25"],
        ["EX1002", "bob@example.org", "29", ""],
    ]
    assert left_out == ["carol (no lms_user_id or email in the roster)"]
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_moodle_export_with_emails_only(tmp_path, gradebook):
    """A roster without LMS ids: Moodle maps from the email column alone; nobody is dropped for it."""
    roster.import_roster(roster.load_roster(_write(tmp_path, "id,email\nalice,alice@example.org\n"
                                                               "bob,bob@example.org\ncarol,carol@example.org\n")),
                         gradebook)
    paths, left_out = roster.write_lms_exports(gradebook, tmp_path)
    assert _read(paths["moodle"]) == [
        ["Email address", "exercise1", "exercise2"],
        ["alice@example.org", "38", "25"],
        ["bob@example.org", "29", ""],
        ["carol@example.org", "", "12.5"],
    ]
    assert left_out == []
    assert _read(paths["canvas"])[2][:3] == ["alice", "", ""]


def test_a_grade_held_for_review_is_left_empty_in_both_exports(tmp_path, gradebook):
    """A submission the tamper review flagged (GradeRow.held_for_review) has a score in the
    gradebook, but no import may publish it before a person has read it."""
    roster.import_roster(roster.load_roster(_write(tmp_path, ROSTER)), gradebook)
    paths, _ = roster.write_lms_exports(gradebook, tmp_path, held=[("alice", "exercise2")])
    assert _read(paths["canvas"])[2] == ["Example, Alice", "", "EX1001", "", "", "38", ""]
    assert _read(paths["moodle"])[1] == ["EX1001", "alice@example.org", "38", ""]
