"""Run the real nbgrader pipeline on a throw-away copy of the course.

``Course`` copies ``nbgrader_config.py`` and the chosen ``source/``
assignments into a temporary folder, generates the release there, and grades
any notebook you hand it as a student's submission, through the same
``grader.pipeline`` functions the main command uses. The tests (``tests/pipeline.py``) and the
grading benchmark (``benchmarks/autograde.py``) both use it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from helpers.paths import REPO_ROOT
from grader import pipeline
from grader.reports import GradeRow


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
    """A throw-away course in ``root``: nbgrader_config.py, the chosen source/ assignments (and
    ``fixtures``: notebooks built from ``fixtures_dir/<name>.py``), their releases generated."""

    fixtures_dir: Path | None = None

    def __init__(self, root: Path, assignments: list[str], overrides: dict | None = None,
                 config_text: str | None = None, fixtures: list[str] = ()):
        """``assignments`` are copied from source/; ``fixtures`` are built from ``fixtures_dir``."""
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
            target.write_text(render(Path(self.fixtures_dir) / f"{name}.py"))
        self.releases = {}
        for assignment in [*assignments, *fixtures]:
            result = pipeline.generate_release(self.root, assignment, self.overrides)
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

    def grade(self, student: str, assignment: str, feedback: bool = False) -> GradeRow:
        return pipeline.autograde_submission(self.root, student, assignment, self.overrides, feedback=feedback)

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
