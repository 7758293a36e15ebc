"""Write the example students under submitted/ from the current release and solution.

    python -m tools.make_example_submissions

- ``alice``: a complete, correct attempt: the release notebook with every
  answer cell filled in from the solution (markers removed, as a student
  would write it).
- ``bob``: a partly wrong attempt: the same, with two answer cells replaced
  by planted mistakes from ``tests/cases/<assignment>.py``, so the main
  command shows what lost points and why.

Re-run after changing a notebook; a test checks the examples are current.
"""
from __future__ import annotations

import importlib
import re
import sys

import nbformat

from helpers.paths import REPO_ROOT
STUDENTS = ("alice", "bob")
_MARKER_LINE = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def _answer(source: str) -> str:
    """A solution cell's text as a student would hand it in: markers gone."""
    return "\n".join(line for line in source.splitlines() if not _MARKER_LINE.match(line))


def _solution_cells(notebook) -> dict[str, str]:
    return {cell.metadata["nbgrader"]["grade_id"]: _answer(cell.source)
            for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("solution")}


def _partial_mistakes(assignment: str, limit: int = 2) -> dict[str, str]:
    """The first ``limit`` planted mistakes that touch different answer cells."""
    try:
        cases = importlib.import_module(f"tests.cases.{assignment}").CASES
    except ModuleNotFoundError:
        return {}
    chosen: dict[str, str] = {}
    for case in cases:
        if case["expect"] == "lose" and case["cell"] not in chosen:
            chosen[case["cell"]] = case["source"]
        if len(chosen) == limit:
            break
    return chosen


def build(assignment: str) -> dict[str, nbformat.NotebookNode]:
    release = nbformat.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    source = nbformat.read(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = _solution_cells(source)
    mistakes = _partial_mistakes(assignment)
    out = {}
    for student in STUDENTS:
        notebook = nbformat.reads(nbformat.writes(release), as_version=4)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = mistakes.get(grade_id, answers[grade_id]) if student == "bob" else answers[grade_id]
        out[student] = notebook
    return out


def main() -> int:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    assignments = sorted(p.name for p in (REPO_ROOT / "release").iterdir() if p.is_dir())
    for assignment in assignments:
        for student, notebook in build(assignment).items():
            path = REPO_ROOT / "submitted" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
