"""Who the students are: the course roster, and the grades an LMS imports.

``students.csv`` at the course root (``ROSTER_FILE``; ``python -m grader --roster``
reads another) lists the students with the columns ``nbgrader db student import``
accepts::

    id,first_name,last_name,email,lms_user_id
    alice,Alice,Example,alice@example.org,1001

Only ``id`` is required (it is the folder name under ``submitted/``). ``load_roster``
checks the whole file first and raises ``RosterError`` saying what is wrong and what is
accepted; ``import_roster`` then creates or updates each student in the gradebook
(``Gradebook.update_or_create_student``), holding the same gradebook lock as the grading
workers (``grader.gradebook.serialised_gradebook``), so the Formgrader shows names.

``write_lms_exports`` writes, from the gradebook, one file per LMS with one column per
assignment (its total score) and an empty cell where a student has no submission:
``grades_canvas.csv`` (Canvas gradebook import) and ``grades_moodle.csv`` (Moodle CSV
grade import). See course/instructor_guide.md, "Students and LMS exports".
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from grader import gradebook as gradebook_module

ROSTER_FILE = "students.csv"
CANVAS_FILE = "grades_canvas.csv"
MOODLE_FILE = "grades_moodle.csv"

# The Student columns of nbgrader's gradebook, as `nbgrader db student import` reads them.
COLUMNS = ("id", "first_name", "last_name", "email", "lms_user_id")
OPTIONAL = COLUMNS[1:]


class RosterError(ValueError):
    """The roster cannot be used; the message says what is wrong and what is accepted."""


@dataclass(frozen=True)
class Roster:
    path: Path
    columns: tuple[str, ...]            # the optional columns the file has (only these are set)
    students: dict[str, dict]           # id -> {column: value or None}, in file order

    def unknown(self, student_ids) -> list[str]:
        """The ids among ``student_ids`` that the roster does not list, sorted, once each."""
        return sorted(set(student_ids) - set(self.students))


def load_roster(path: Path) -> Roster:
    """Read and check ``path``; raise ``RosterError`` on the first kind of problem found.

    Nothing is written anywhere: call this before touching the gradebook.
    """
    path = Path(path)
    accepted = f"accepted columns: {', '.join(COLUMNS)} (id required, the others optional)"
    try:
        text = path.read_text(encoding="utf-8-sig")    # a byte-order mark (Excel) is fine
    except FileNotFoundError:
        raise RosterError(f"{path}: no such roster file") from None
    except UnicodeDecodeError as error:
        raise RosterError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                          "save it as CSV UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise RosterError(f"{path}: empty file; the first line must be a header, {accepted}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise RosterError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise RosterError(f"{path}: unknown column(s) {', '.join(repr(n) for n in unknown)}; {accepted}")
    if "id" not in header:
        raise RosterError(f"{path}: no 'id' column in the header ({', '.join(header)}); {accepted}")
    reader.fieldnames = header
    students: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    problems = []
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append(f"line {line} has more fields than the header")
            continue
        values = {name: (value or "").strip() or None for name, value in row.items()}
        student_id = values.pop("id")
        if student_id is None:
            problems.append(f"line {line} has an empty id (each line needs one: the student's folder under submitted/)")
            continue
        if "/" in student_id or student_id.startswith("."):
            problems.append(f"line {line}: id {student_id!r} cannot be a folder name under submitted/")
            continue
        if values.get("email") and "@" not in values["email"]:
            problems.append(f"line {line}: email {values['email']!r} of {student_id} has no '@'")
        if student_id in students:
            problems.append(f"line {line}: duplicate id {student_id!r} (first on line {first_line[student_id]})")
            continue
        students[student_id] = values
        first_line[student_id] = line
    if problems:
        raise RosterError(f"{path}: " + "; ".join(problems))
    return Roster(path=path, columns=tuple(c for c in header if c != "id"), students=students)


def import_roster(roster: Roster, db) -> int:
    """Create or update every roster student in the gradebook ``db`` (a URL or a sqlite file); returns how many.

    Idempotent. Only the columns the roster has are set (a roster without ``email`` keeps
    the emails already in the gradebook); students not in the roster are left as they are.
    """
    from nbgrader.api import Gradebook

    gradebook_module._venv_bin_on_path()     # nbgrader runs `alembic` when it creates a gradebook
    gradebook_module.serialised_gradebook()
    with Gradebook(gradebook_module.as_url(db)) as gradebook:
        for student_id, values in roster.students.items():
            gradebook.update_or_create_student(student_id, **{c: values.get(c) for c in roster.columns})
    return len(roster.students)


# --------------------------------------------------------------------------
# Grades for an LMS
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassGrades:
    """What the gradebook holds: students (with names), assignments (with maxima), totals."""
    students: list[dict]                        # id, first_name, last_name, email, lms_user_id
    assignments: list[tuple[str, float]]        # (name, maximum), by name
    scores: dict[tuple[str, str], float]        # (student id, assignment) -> total score


def read_class_grades(db) -> ClassGrades:
    """What the gradebook ``db`` (a URL or a sqlite file) holds."""
    from nbgrader.api import Gradebook

    gradebook_module._venv_bin_on_path()
    gradebook_module.serialised_gradebook()
    with Gradebook(gradebook_module.as_url(db)) as gradebook:
        students = [{column: (student.id if column == "id" else getattr(student, column)) for column in COLUMNS}
                    for student in sorted(gradebook.students, key=lambda s: s.id)]
        assignments, scores = [], {}
        for assignment in sorted(gradebook.assignments, key=lambda a: a.name):
            assignments.append((assignment.name, float(assignment.max_score)))
            for submission in assignment.submissions:
                scores[submission.student.id, assignment.name] = float(submission.score)
    return ClassGrades(students=students, assignments=assignments, scores=scores)


def _number(value: float | None) -> str:
    """38.0 -> '38', 12.5 -> '12.5', None (no submission) -> '' (an empty cell, not 0)."""
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def canvas_rows(grades: ClassGrades) -> list[list[str]]:
    """Canvas' gradebook import CSV, as its "How do I import grades in the Gradebook?" guide
    and its own gradebook export lay it out: the header ``Student, ID, SIS User ID, SIS Login ID,
    Section`` then one column per assignment (a name Canvas does not know becomes a new
    assignment); a second row ``Points Possible`` with each assignment's maximum; then one row
    per student, ``Student`` as "Last, First". Canvas matches a row to a student by ID (its own
    numeric user id, which we do not know: left empty), else by SIS User ID: the roster's
    ``lms_user_id`` goes there; Canvas asks about any row it cannot match before importing.
    """
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *(name for name, _ in grades.assignments)],
            ["Points Possible", "", "", "", "", *(_number(maximum) for _, maximum in grades.assignments)]]
    for student in grades.students:
        names = [n for n in (student["last_name"], student["first_name"]) if n]
        rows.append([", ".join(names) or student["id"], "", student["lms_user_id"] or "", "", "",
                     *(_number(grades.scores.get((student["id"], name))) for name, _ in grades.assignments)])
    return rows


def moodle_rows(grades: ClassGrades) -> tuple[list[list[str]], list[str]]:
    """Moodle's CSV grade import: ``ID number`` and ``Email address`` (the column names of
    Moodle's own export), mapped on import to the user field idnumber or email, then one column
    per assignment (mapped to a grade item, or "new grade item"). The maximum is not in the file:
    Moodle takes it from the grade item (course/instructor_guide.md says what to set).

    An identifier column is written when at least one student has that field in the roster.
    Moodle's import does not stop at a row whose mapped identifier is empty (its
    grade/import/csv/classes/load_data.php keeps the previous row's user), so a student
    without every written identifier is left out; the second value lists them, with the reason.
    """
    fields = [(column, title) for column, title in (("lms_user_id", "ID number"), ("email", "Email address"))
              if any(student[column] for student in grades.students)]
    rows = [[title for _, title in fields] + [name for name, _ in grades.assignments]]
    left_out = []
    for student in grades.students:
        missing = [column for column, _ in fields if not student[column]]
        if missing or not fields:
            left_out.append(f"{student['id']} (no {' or '.join(missing or ['email', 'lms_user_id'])} in the roster)")
            continue
        rows.append([student[column] for column, _ in fields]
                    + [_number(grades.scores.get((student["id"], name))) for name, _ in grades.assignments])
    return rows, left_out


def _write_rows(rows: list[list[str]], path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    tmp.replace(path)      # readers never see a half-written file
    return path


def write_lms_exports(db, folder: Path, held=()) -> tuple[dict[str, Path], list[str]]:
    """Write ``grades_canvas.csv`` and ``grades_moodle.csv`` in ``folder`` from the gradebook ``db``.

    ``held``: ``(student, assignment)`` pairs held for review (``GradeRow.held_for_review``):
    their cells stay empty, as for no submission, so an import cannot publish them unread.
    Returns ``({"canvas": path, "moodle": path}, students left out of the Moodle file)``.
    """
    grades = read_class_grades(db)
    for pair in held:
        grades.scores.pop(tuple(pair), None)
    folder = Path(folder)
    moodle, left_out = moodle_rows(grades)
    paths = {"canvas": _write_rows(canvas_rows(grades), folder / CANVAS_FILE),
             "moodle": _write_rows(moodle, folder / MOODLE_FILE)}
    return paths, left_out
