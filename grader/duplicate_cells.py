"""Copies of graded cells in a submission: grade it anyway, keeping the cell that belongs.

Students copy cells by accident (nbgrader issue #1083). nbgrader's own ``DeduplicateIds``
then empties the copies' metadata, and a later step fails on the emptied cell with
"Please see the the above traceback", so the whole submission went ungraded.
``DeduplicateGradeCells`` replaces it in ``Autograde.sanitize_preprocessors``
(nbgrader_config.py):

- a copied **test or read-only cell**: the copy whose code matches the release is kept (the
  first copy when none does; the gradebook restores a locked cell's code anyway), the others
  are dropped;
- a copied **answer cell**: the last copy is the answer (as nbgrader decides), the earlier
  ones stay in place as ordinary code cells, so the student's code still runs in order.

``duplicate_notes`` tells the grader, before grading, what will be done, for the grade's reason.
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    if meta.get("grade") or meta.get("solution") or meta.get("locked"):
        return meta.get("grade_id")
    return None


def _normalised(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def deduplicate(notebook, release=None) -> list[str]:
    """Resolve copied graded cells of ``notebook`` in place; one note per copied cell id."""
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(notebook.cells):
        grade_id = _grade_id(cell)
        if grade_id:
            positions.setdefault(grade_id, []).append(index)
    released = {}
    for cell in (release.cells if release is not None else []):
        if _grade_id(cell):
            released[_grade_id(cell)] = _normalised(cell.source)
    drop, notes = set(), []
    for grade_id, found in positions.items():
        if len(found) < 2:
            continue
        meta = notebook.cells[found[0]].metadata.nbgrader
        copies = len(found) - 1
        if meta.get("solution"):
            keep = found[-1]
            for index in found[:-1]:
                del notebook.cells[index].metadata["nbgrader"]      # an ordinary code cell now
            notes.append(f"answer cell {grade_id} appears {len(found)} times: the last one was graded, "
                         f"the other{'s' if copies > 1 else ''} ran as ordinary code")
            continue
        matching = [i for i in found if _normalised(notebook.cells[i].source) == released.get(grade_id)]
        keep = (matching or found)[0]
        drop |= {i for i in found if i != keep}
        notes.append(f"cell {grade_id} appears {len(found)} times: kept the "
                     f"{'one that matches the release' if matching else 'first'}, dropped "
                     f"{copies} cop{'ies' if copies > 1 else 'y'} (delete copied test cells before submitting)")
    notebook.cells = [cell for i, cell in enumerate(notebook.cells) if i not in drop]
    return notes


def release_notebook(course_root: Path, assignment: str, notebook_name: str):
    import nbformat

    path = Path(course_root) / "release" / assignment / f"{notebook_name}.ipynb"
    return nbformat.read(path, as_version=4) if path.is_file() else None


def duplicate_notes(course_root: Path, student: str, assignment: str) -> list[str]:
    """What ``DeduplicateGradeCells`` will do to this submission, for the grade's reason."""
    import nbformat

    notes = []
    for path in sorted((Path(course_root) / "submitted" / student / assignment).glob("*.ipynb")):
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception:
            continue          # unreadable notebooks are reported by the submission check
        notes += deduplicate(notebook, release_notebook(course_root, assignment, path.stem))
    return notes


class DeduplicateGradeCells(NbGraderPreprocessor):
    """nbgrader's ``DeduplicateIds``, done so that grading goes on (see the module docstring)."""

    def preprocess(self, nb, resources):
        from nbgrader.coursedir import CourseDirectory

        info = resources.get("nbgrader", {})
        root = CourseDirectory(config=self.config).root
        for note in deduplicate(nb, release_notebook(root, info.get("assignment", ""), info.get("notebook", ""))):
            self.log.warning(note)
        return nb, resources
