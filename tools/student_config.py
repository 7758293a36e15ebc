"""Point a student's Jupyter at this course's exchange (one machine, or a shared folder).

    python -m tools.student_config FOLDER

writes FOLDER/nbgrader_config.py with the course id and exchange folder read from the
course's own nbgrader_config.py, so that a Jupyter server started in FOLDER shows the
course in the Assignment List (fetch, validate, submit, fetch feedback). The student's
notebooks then live in FOLDER/<assignment>/. An existing file is only replaced when it
was written by this command.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from helpers.paths import REPO_ROOT
MARKER = "# written by python -m tools.student_config"


def course_settings(course_root: Path = REPO_ROOT) -> tuple[str, str]:
    """``(course_id, exchange folder)`` as the course's nbgrader_config.py sets them."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    return str(config.CourseDirectory.course_id), str(config.Exchange.root)


def config_text(course_id: str, exchange_root: str) -> str:
    return (f"{MARKER}\nc = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {course_id!r}\n"
            f"c.Exchange.root = {exchange_root!r}\n"
            # Validate runs the notebook; its files must not land in the student's upload.
            "c.CourseDirectory.ignore = ['.ipynb_checkpoints', '*.pyc', '__pycache__', 'feedback', 'artifacts']\n")


def write_student_config(folder: Path, course_root: Path = REPO_ROOT) -> Path:
    folder = Path(folder)
    target = folder / "nbgrader_config.py"
    course_id, exchange_root = course_settings(course_root)
    if target.exists() and MARKER not in target.read_text(encoding="utf-8", errors="replace"):
        raise FileExistsError(f"{target} exists and was not written by tools.student_config; move it "
                              f"away, or add these lines to it:\n{config_text(course_id, exchange_root)}")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(config_text(course_id, exchange_root), encoding="utf-8")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the folder the student's Jupyter server starts in")
    parser.add_argument("--course-root", type=Path, default=REPO_ROOT,
                        help="course folder (default: this repository)")
    args = parser.parse_args(argv)
    try:
        target = write_student_config(args.folder, args.course_root.resolve())
    except FileExistsError as error:
        print(f"[student-config] {error}", file=sys.stderr)
        return 2
    course_id, exchange_root = course_settings(args.course_root.resolve())
    print(f"[student-config] {target}: course {course_id!r}, exchange {exchange_root}")
    print(f"[student-config] start Jupyter there: cd {args.folder} && jupyter lab  (Nbgrader > Assignment List)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
