"""Run the real nbgrader pipeline on a throw-away copy of the course.

``Course`` copies ``nbgrader_config.py`` and the chosen ``source/``
assignments into a temporary folder, generates the release there, and grades
any notebook you hand it as a student's submission, through the same
``tools.grading`` functions the main command uses.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from tools import grading

from helpers.paths import REPO_ROOT
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


def source_notebook_path(assignment: str, root: Path = REPO_ROOT) -> Path:
    return Path(root) / "source" / assignment / f"{assignment}.ipynb"


def read_source(assignment: str, root: Path = REPO_ROOT):
    return nbformat.read(source_notebook_path(assignment, root), as_version=4)


def cell_by_id(notebook, grade_id: str):
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def with_cell_replaced(notebook, grade_id: str, source: str):
    """A copy of ``notebook`` whose cell ``grade_id`` holds ``source``."""
    copy = nbformat.reads(nbformat.writes(notebook), as_version=4)
    cell_by_id(copy, grade_id).source = source
    return copy


class Course:
    def __init__(self, root: Path, assignments: list[str], overrides: dict | None = None,
                 config_text: str | None = None, fixtures: list[str] = ()):
        """``assignments`` are copied from source/; ``fixtures`` are built from tests/fixtures/<name>.py."""
        self.root = Path(root)
        self.overrides = overrides or {}
        self.root.mkdir(parents=True, exist_ok=True)
        config = (REPO_ROOT / "nbgrader_config.py").read_text()
        (self.root / "nbgrader_config.py").write_text(config + (config_text or ""))
        for assignment in assignments:
            shutil.copytree(REPO_ROOT / "source" / assignment, self.root / "source" / assignment,
                            ignore=shutil.ignore_patterns("artifacts", ".ipynb_checkpoints"))
        from tools.notebook_builder import render

        for name in fixtures:
            target = self.root / "source" / name / f"{name}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(FIXTURES_DIR / f"{name}.py"))
        self.releases = {}
        for assignment in [*assignments, *fixtures]:
            result = grading.generate_release(self.root, assignment, self.overrides)
            if not result["success"]:
                raise RuntimeError(f"generate_assignment {assignment} failed:\n{result['error']}")
            self.releases[assignment] = self.root / "release" / assignment

    def source_notebook(self, assignment: str):
        return read_source(assignment, self.root)

    def release_notebook(self, assignment: str):
        return nbformat.read(self.releases[assignment] / f"{assignment}.ipynb", as_version=4)

    def submit(self, student: str, assignment: str, notebook=None, raw_text: str | None = None,
               filename: str | None = None) -> Path:
        folder = self.root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (filename or f"{assignment}.ipynb")
        if raw_text is not None:
            path.write_text(raw_text)
        elif notebook is not None:
            nbformat.write(notebook, path)
        return path

    def grade(self, student: str, assignment: str, feedback: bool = False) -> grading.GradeRow:
        return grading.autograde_submission(self.root, student, assignment, self.overrides, feedback=feedback)

    def cell_scores(self, student: str, assignment: str) -> dict[str, tuple[float, float]]:
        """``{grade_id: (score, max_score)}`` for every graded cell of the submission."""
        from nbgrader.api import Gradebook

        with Gradebook("sqlite:///" + str(self.root / "gradebook.db")) as gradebook:
            submission = gradebook.find_submission(assignment, student)
            return {g.name: (float(g.score or 0), float(g.max_score))
                    for nb in submission.notebooks for g in nb.grades}

    def autograded_notebook(self, student: str, assignment: str):
        return nbformat.read(self.root / "autograded" / student / assignment / f"{assignment}.ipynb",
                             as_version=4)


def require_sandbox():
    """Skip a sandbox test only where bubblewrap cannot be had; fail where set-up should have installed it.

    tools/setup.sh installs bubblewrap when it runs as root with apt-get (CI does), so there a
    missing bwrap is a broken set-up, not a reason to skip the hostile-submission suite.
    """
    import os
    import shutil

    import pytest

    from tools import sandbox

    reason = sandbox.unavailable_reason()
    if reason.startswith("bwrap not found"):
        can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
        if can_install or os.environ.get("COURSE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"{reason} (run `make setup`: as root it installs bubblewrap)")
        pytest.skip(reason)
    assert not reason, reason
