"""The gradebook: where it is, one writer at a time, a backup, moving a submission's grades.

The gradebook is nbgrader's database, named by a URL: sqlite (``gradebook.db`` in the course,
the default: ``sqlite_url``) or PostgreSQL (``postgresql://...``, for a large class and several
graders at once). Functions here take a course folder and an optional ``db_url``; without one
they use the course's sqlite file.

Every nbgrader ``Gradebook`` session in a process on this machine holds an exclusive lock per
gradebook URL (``serialised_gradebook``), so concurrent autogrades never interleave their
writes. ``_backup_gradebook`` copies a sqlite gradebook aside before a run;
``_forget_submission`` removes a submission's rows when its run failed for the environment's
sake. ``export_submission`` and ``record_submission`` carry one submission's autograder results
from the gradebook a cluster worker graded into (a private sqlite file) to the course's.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path


def _venv_bin_on_path() -> None:
    """Ready nbgrader to create gradebooks: its `alembic` command on PATH, and read in-process.

    To create a gradebook nbgrader runs the `alembic` command, a new interpreter that costs about
    2 CPU s, only to read the head revision of its migrations; every grading worker creates a few
    gradebooks, so that revision is read once per process here instead (the same value: a test
    compares the two)."""
    import nbgrader.api

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    if nbgrader.api.get_alembic_version is not alembic_head:
        nbgrader.api.get_alembic_version = alembic_head


@functools.cache
def alembic_head() -> str:
    """The head revision of nbgrader's gradebook migrations (what `alembic heads` prints first)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()



def sqlite_url(course_root: Path) -> str:
    """The course's own sqlite gradebook, ``<course_root>/gradebook.db``."""
    return "sqlite:///" + str(Path(course_root).resolve() / "gradebook.db")


def as_url(db) -> str:
    """A gradebook URL from a URL or the path of a sqlite file."""
    text = str(db)
    return text if "://" in text else "sqlite:///" + str(Path(db).resolve())


def _backup_gradebook(course_root: Path, db_url: str | None = None) -> None:
    # A copy taken before grading, so a crash mid-run can never cost the old grades.
    # (A PostgreSQL gradebook is backed up by the database's own means: pg_dump.)
    if db_url and db_url != sqlite_url(course_root):
        return
    db = course_root / "gradebook.db"
    if db.exists():
        tmp = course_root / "gradebook.db.bak.tmp"
        shutil.copy2(db, tmp)
        tmp.replace(course_root / "gradebook.db.bak")


def ensure_gradebook(course_root: Path, db_url: str | None = None) -> None:
    """Create or upgrade the gradebook once, before any worker opens it."""
    from nbgrader.api import Gradebook

    _venv_bin_on_path()
    serialised_gradebook()
    Gradebook(db_url or sqlite_url(course_root)).close()


def gradebook_assignments(course_root: Path, db_url: str | None = None) -> set[str]:
    """Assignments the gradebook knows (``generate_release`` adds them); empty without a gradebook."""
    if not db_url and not (Path(course_root).resolve() / "gradebook.db").exists():
        return set()
    from nbgrader.api import Gradebook

    _venv_bin_on_path()
    serialised_gradebook()
    with Gradebook(db_url or sqlite_url(course_root)) as gradebook:
        return {a.name for a in gradebook.assignments}


_lock = {"depth": 0, "fd": None, "guard": threading.RLock()}


def _lock_path(db_url: str) -> Path:
    digest = hashlib.sha1(db_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"course-gradebook-{digest}.lock"


def _acquire(db_url: str) -> None:
    _lock["guard"].acquire()
    if _lock["depth"] == 0:
        fd = os.open(_lock_path(db_url), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)      # waits while another process holds the gradebook
        _lock["fd"] = fd
    _lock["depth"] += 1


def _release() -> None:
    _lock["depth"] -= 1
    if _lock["depth"] == 0:
        fcntl.flock(_lock["fd"], fcntl.LOCK_UN)
        os.close(_lock["fd"])
        _lock["fd"] = None
    _lock["guard"].release()


def serialised_gradebook() -> None:
    """Make every nbgrader ``Gradebook`` session in this process hold an exclusive file lock.

    nbgrader opens the gradebook in short sessions (``with Gradebook(url) as gb``) before and
    after running a notebook, never while a kernel runs. Holding a lock per gradebook file
    from open to close makes those sessions take turns across all grading processes, so
    parallel autogrades cannot interleave or lose writes, while their notebooks still run
    side by side. Idempotent; a lock held by this process is re-entrant.
    """
    from nbgrader.api import Gradebook

    if getattr(Gradebook, "_course_serialised", False):
        return
    original_init, original_close = Gradebook.__init__, Gradebook.close

    def __init__(self, db_url, *args, **kwargs):
        _acquire(db_url)
        self._course_lock_held = True
        try:
            original_init(self, db_url, *args, **kwargs)
        except BaseException:
            self._course_lock_held = False
            _release()
            raise

    def close(self):
        try:
            original_close(self)
        finally:
            if getattr(self, "_course_lock_held", False):
                self._course_lock_held = False
                _release()

    original_add_submission = Gradebook.add_submission

    def add_submission(self, *args, **kwargs):
        # nbgrader builds the new submission's rows while reading the assignment's notebooks;
        # each read autoflushes the session before the submission is added to it, and
        # SQLAlchemy 2 warns "Object of type <SubmittedAssignment> not in session". Nothing
        # needs flushing until nbgrader adds and commits the submission itself.
        with self.db.no_autoflush:
            return original_add_submission(self, *args, **kwargs)

    Gradebook.__init__, Gradebook.close = __init__, close
    Gradebook.add_submission = add_submission
    Gradebook._course_serialised = True



def _forget_submission(course_root: Path, assignment: str, student: str, db_url: str | None = None) -> None:
    """Remove a submission's gradebook rows: an environment fault must leave no score behind."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url or sqlite_url(course_root)) as gradebook:
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            pass


def export_submission(db_url: str, assignment: str, student: str) -> dict:
    """One submission's autograder results, as plain data (what ``SaveAutoGrades`` wrote)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        return {
            "assignment": assignment, "student": student,
            "timestamp": submission.timestamp.isoformat() if submission.timestamp else None,
            "notebooks": {
                notebook.name: {
                    "late_submission_penalty": notebook.late_submission_penalty,
                    "auto_scores": {grade.name: grade.auto_score for grade in notebook.grades},
                    "auto_comments": {comment.name: comment.auto_comment for comment in notebook.comments},
                } for notebook in submission.notebooks},
        }


def record_submission(db_url: str, export: dict) -> None:
    """Write ``export`` (from ``export_submission``) into the gradebook at ``db_url``, all or nothing.

    The same rules as nbgrader's own autograde (``SaveAutoGrades``): the autograder's scores and
    comments are set, a grader's manual scores are kept, and a cell a grader had scored is marked
    for review again. Everything is written in one transaction: a process that dies halfway leaves
    the gradebook as it was, never a submission without its scores.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gradebook:
        session = gradebook.db
        # nbgrader's helpers commit after each row; here they only flush, and one commit ends it.
        session.commit = session.flush
        try:
            try:
                gradebook.find_student(export["student"])
            except MissingEntry:
                gradebook.add_student(export["student"])
            kwargs = {"timestamp": export["timestamp"]} if export["timestamp"] else {}
            submission = gradebook.update_or_create_submission(export["assignment"], export["student"], **kwargs)
            notebooks = {notebook.name: notebook for notebook in submission.notebooks}
            for name, data in export["notebooks"].items():
                notebook = notebooks[name]
                notebook.late_submission_penalty = data["late_submission_penalty"]
                for grade in notebook.grades:
                    if grade.name in data["auto_scores"]:
                        grade.auto_score = data["auto_scores"][grade.name]
                        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
                for comment in notebook.comments:
                    if comment.name in data["auto_comments"]:
                        comment.auto_comment = data["auto_comments"][comment.name]
            del session.commit
            session.commit()
        except BaseException:
            if "commit" in vars(session):
                del session.commit
            session.rollback()
            raise
