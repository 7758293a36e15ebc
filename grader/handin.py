"""What a submission may hand in: the assignment's notebooks and the files it declares.

nbgrader copies every file of ``submitted/<student>/<assignment>/`` into the graded folder,
where the notebook can import it: a ``.py`` file beside the notebook is code that runs in the
grading kernel without standing in any cell that a person or the tamper review reads. So the
graded copy keeps only

- the assignment's notebooks (the ``*.ipynb`` of ``source/<assignment>/``),
- the course's own files of the assignment (nbgrader overwrites them from ``source/`` anyway),
- the files the assignment declares (``c.GradingGate.handed_in_files``, globs per assignment),
- nbgrader's ``timestamp.txt`` and ``submission_secret.txt``, and what ``CourseDirectory.ignore``
  already skips.

Anything else is *refused*: removed from the graded copy before any kernel starts, by the
first autograde step of every door (``grader.every_door.GradingGate``). The submission itself
is left as it was handed in, so the refusal is recomputed from it wherever it is reported
(``refused_files``): nothing a run writes can get out of step with it, and nothing is lost.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

# nbgrader's own files in a submission folder: the submission time, and the secret its exchange
# writes at submit and reads back to release feedback (exchange/default/submit.py, release_feedback.py).
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")
# CourseDirectory.ignore's default: never copied into the graded folder, so never refused.
DEFAULT_IGNORED = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")


def _ignored(relative: str, ignore) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in Path(relative).parts for pattern in ignore)


def _accepted(relative: str, course_files: set[str], declared) -> bool:
    if relative in course_files or relative in NBGRADER_FILES:
        return True
    return any(fnmatch.fnmatch(relative, pattern) for pattern in declared)


def course_files(course_root: Path, assignment: str) -> set[str]:
    """Paths (relative, with ``/``) of the files ``source/<assignment>/`` holds: its notebooks
    and anything the course ships with them."""
    source = Path(course_root) / "source" / assignment
    return {path.relative_to(source).as_posix() for path in source.rglob("*") if path.is_file()}


def refused_files(folder: Path, course_root: Path, assignment: str, declared=(),
                  ignore=DEFAULT_IGNORED) -> list[str]:
    """The files of a submission (or graded) ``folder`` that the assignment does not accept,
    as sorted relative paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    known = course_files(course_root, assignment)
    refused = []
    for dirname, _, filenames in os.walk(folder):
        for name in filenames:
            relative = (Path(dirname) / name).relative_to(folder).as_posix()
            if not _ignored(relative, ignore) and not _accepted(relative, known, declared):
                refused.append(relative)
    return sorted(refused)


def remove_refused(graded: Path, course_root: Path, assignment: str, declared=(),
                   ignore=DEFAULT_IGNORED) -> list[str]:
    """Delete the refused files from the *graded copy* ``graded`` (never from ``submitted/``),
    then the folders they leave empty; the refused paths."""
    graded = Path(graded)
    refused = refused_files(graded, course_root, assignment, declared, ignore)
    for relative in refused:
        (graded / relative).unlink()
    for dirname, _, _ in sorted(os.walk(graded), key=lambda entry: -len(entry[0])):
        path = Path(dirname)
        if path != graded and not any(path.iterdir()):
            path.rmdir()
    return refused


# Files Python (or a kernel) could load as code: handing one in is an attempt to run it.
CODE_SUFFIXES = (".py", ".pyc", ".pyw", ".pyx", ".so", ".pyd", ".pth", ".ipy", ".ipynb", ".sh", ".whl", ".egg", ".zip")


def is_code(relative: str) -> bool:
    return relative.lower().endswith(CODE_SUFFIXES)


def refusal_note(refused: list[str], assignment: str) -> str:
    """How a refusal reads in the grader's table, grades.csv and results.json."""
    shown = ", ".join(refused[:6]) + (f" and {len(refused) - 6} more" if len(refused) > 6 else "")
    return (f"refused (not graded, not run): {shown}: {assignment} accepts its notebooks and the files it "
            "declares only")
