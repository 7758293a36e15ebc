"""The instructor's pipeline on nbgrader: release, autograde, feedback, grades.

Used by ``tools/grade.py`` (the main command) and by the pipeline tests, so
the tests grade exactly the way the course does. Every step is per
assignment or per submission and reports failures instead of raising, so one
bad submission never stops the others.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _venv_bin_on_path() -> None:
    # nbgrader runs the `alembic` command when it creates a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def load_config(course_root: Path, overrides: dict | None = None):
    """The course's nbgrader config with ``root`` pointed at ``course_root``.

    ``overrides`` maps "Section.option" to a value (tests shorten timeouts).
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    course_root = Path(course_root).resolve()
    config_file = course_root / "nbgrader_config.py"
    if not config_file.is_file():
        raise FileNotFoundError(f"no nbgrader_config.py in {course_root}: is this a course folder?")
    config = PyFileConfigLoader(config_file.name, path=str(course_root)).load_config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = "sqlite:///" + str(course_root / "gradebook.db")
    for key, value in (overrides or {}).items():
        section, _, option = key.partition(".")
        if not option:
            raise ValueError(f"override {key!r} must look like 'Section.option'")
        setattr(config[section], option, value)
    merged = Config()
    merged.merge(config)
    return merged


def make_api(course_root: Path, overrides: dict | None = None, **coursedir_settings):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _venv_bin_on_path()
    config = load_config(course_root, overrides)
    for name, value in coursedir_settings.items():
        setattr(config.CourseDirectory, name, value)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def source_assignments(course_root: Path) -> list[str]:
    source = Path(course_root) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


# --------------------------------------------------------------------------
# Release
# --------------------------------------------------------------------------

def generate_release(course_root: Path, assignment: str, overrides: dict | None = None) -> dict:
    """Regenerate ``release/<assignment>`` from ``source/``, replacing it only on success.

    nbgrader writes into a staging folder first; the old release is swapped
    out only once the new one is complete, so a failure leaves it intact.
    """
    course_root = Path(course_root).resolve()
    staging_name = ".release-staging"
    staging = course_root / staging_name / assignment
    if staging.exists():
        shutil.rmtree(staging)
    api = make_api(course_root, overrides, release_directory=staging_name)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        shutil.rmtree(staging, ignore_errors=True)
        return {"assignment": assignment, "success": False,
                "error": result.get("error") or result.get("log", "")}
    final = course_root / "release" / assignment
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{assignment}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(course_root / staging_name, ignore_errors=True)
    return {"assignment": assignment, "success": True, "error": ""}


# --------------------------------------------------------------------------
# Autograde
# --------------------------------------------------------------------------

@dataclass
class GradeRow:
    student: str
    assignment: str
    status: str                 # "graded" or "not graded"
    score: float = 0.0
    max_score: float = 0.0
    failed: list[str] = field(default_factory=list)   # grade cells that lost points
    reason: str = ""            # why it was not graded, or notes
    seconds: float = 0.0

    def as_csv_row(self) -> dict:
        row = asdict(self)
        row["failed"] = " ".join(self.failed)
        row["seconds"] = round(self.seconds, 1)
        return row


def discover_submissions(course_root: Path) -> list[tuple[str, str]]:
    """``(student, assignment)`` pairs found under ``submitted/``, sorted."""
    submitted = Path(course_root) / "submitted"
    if not submitted.is_dir():
        return []
    pairs = []
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            pairs.append((student_dir.name, assignment_dir.name))
    return pairs


def _check_submission(course_root: Path, student: str, assignment: str) -> str:
    """A reason the submission cannot be graded, or '' if it looks gradable."""
    import nbformat

    source_dir = course_root / "source" / assignment
    if not source_dir.is_dir():
        known = ", ".join(source_assignments(course_root)) or "none"
        return f"no assignment named {assignment!r} in source/ (known: {known})"
    sub_dir = course_root / "submitted" / student / assignment
    expected = sorted(p.name for p in source_dir.glob("*.ipynb"))
    present = [name for name in expected if (sub_dir / name).is_file()]
    if not present:
        return f"none of the expected notebooks ({', '.join(expected)}) is in submitted/{student}/{assignment}/"
    for name in present:
        try:
            nbformat.read(sub_dir / name, as_version=4)
        except Exception as error:  # invalid JSON, wrong schema...
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return f"{name} is not a readable notebook ({type(error).__name__}: {first_line})"
    return ""


def _scores(course_root: Path, assignment: str, student: str) -> tuple[float, float, list[str], bool]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course_root / "gradebook.db")) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        failed = []
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.max_score and (grade.score or 0) < grade.max_score:
                    failed.append(grade.name)
        return (float(submission.score), float(submission.max_score), sorted(failed),
                bool(submission.needs_manual_grade))


def autograde_submission(course_root: Path, student: str, assignment: str,
                         overrides: dict | None = None, feedback: bool = True) -> GradeRow:
    """Autograde one submission and read its scores back; never raises for a bad submission."""
    course_root = Path(course_root).resolve()
    start = time.perf_counter()
    row = GradeRow(student=student, assignment=assignment, status="not graded")
    reason = _check_submission(course_root, student, assignment)
    if reason:
        row.reason = reason
        row.seconds = time.perf_counter() - start
        return row
    api = make_api(course_root, overrides)
    result = api.autograde(assignment, student, force=True, create=True)
    if not result.get("success"):
        log = (result.get("error") or result.get("log") or "").strip().splitlines()
        row.reason = "autograde failed: " + (log[-1] if log else "no message")
        row.seconds = time.perf_counter() - start
        return row
    row.score, row.max_score, row.failed, needs_manual = _scores(course_root, assignment, student)
    row.status = "graded"
    if needs_manual:
        row.reason = "needs manual grading"
    if feedback:
        fb = api.generate_feedback(assignment, student, force=True)
        if not fb.get("success"):
            row.reason = (row.reason + "; " if row.reason else "") + "feedback not generated"
    row.seconds = time.perf_counter() - start
    return row


def write_grades_csv(rows: list[GradeRow], path: Path) -> Path:
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(GradeRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv_row())
    tmp.replace(path)
    return path


def format_table(rows: list[GradeRow]) -> str:
    if not rows:
        return "nothing to grade: submitted/ holds no <student>/<assignment>/ folders"
    header = ("student", "assignment", "score", "max", "status", "lost points in / reason")
    lines = []
    for r in rows:
        detail = ", ".join(r.failed) if r.failed else ""
        if r.reason:
            detail = (detail + " | " if detail else "") + r.reason
        lines.append((r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}", r.status, detail or "-"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    widths[-1] = min(widths[-1], 90)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line[:-1], line[-1][:300]) for line in lines]
    return "\n".join(out)


@contextlib.contextmanager
def quiet_stdio():
    """Silence nbgrader's own chatter (it also reaches us through the result logs)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
