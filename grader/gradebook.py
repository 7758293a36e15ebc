"""The gradebook: one writer at a time, a backup before grading, forgetting a submission.

Every nbgrader ``Gradebook`` session, in any process, holds an exclusive lock on the
gradebook file (``serialised_gradebook``), so concurrent autogrades never interleave their
writes. ``_backup_gradebook`` copies it aside before a run; ``_forget_submission`` removes a
submission's rows when its run failed for the environment's sake.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path


def _venv_bin_on_path() -> None:
    # nbgrader runs the `alembic` command when it creates a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")



def _backup_gradebook(course_root: Path) -> None:
    # A copy taken before grading, so a crash mid-run can never cost the old grades.
    db = course_root / "gradebook.db"
    if db.exists():
        tmp = course_root / "gradebook.db.bak.tmp"
        shutil.copy2(db, tmp)
        tmp.replace(course_root / "gradebook.db.bak")


def ensure_gradebook(course_root: Path) -> None:
    """Create or upgrade the gradebook once, before any worker opens it."""
    from nbgrader.api import Gradebook

    _venv_bin_on_path()
    serialised_gradebook()
    Gradebook("sqlite:///" + str(Path(course_root).resolve() / "gradebook.db")).close()



def gradebook_assignments(course_root: Path) -> set[str]:
    """Assignments the gradebook knows (``generate_release`` adds them); empty without a gradebook."""
    db = Path(course_root).resolve() / "gradebook.db"
    if not db.exists():
        return set()
    from nbgrader.api import Gradebook

    serialised_gradebook()
    with Gradebook("sqlite:///" + str(db)) as gradebook:
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



def _forget_submission(course_root: Path, assignment: str, student: str) -> None:
    """Remove a submission's gradebook rows: an environment fault must leave no score behind."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook("sqlite:///" + str(course_root / "gradebook.db")) as gradebook:
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            pass
