"""Each exercise through the real nbgrader pipeline, as the course grades it.

For every assignment in source/: the committed release is what nbgrader
generates now (not stale) and leaks nothing; the solution gets full marks;
the unchanged starter scores zero and fails only with NotImplementedError in
the cells a student fills; and every planted mistake in tests/cases/<a>.py
loses points in the cells it names, while every alternative correct
implementation keeps full marks. A new case is one entry in that table.
Submissions are graded through ``grader.dispatch.grade_submissions``, the
main command's parallel path. Cases that cannot affect each other's verdicts
are graded together as one submission (``tests/cases/packing.py``); a packed
result that does not look as its members predict is graded again case by case.
"""
from __future__ import annotations

import filecmp
import importlib
import re
import time
from pathlib import Path

import nbformat
import pytest

from tests.cases import packing
from tests.pipeline import REPO_ROOT, Course
import grader

pytestmark = pytest.mark.pipeline

ASSIGNMENTS = sorted(p.parent.name for p in (REPO_ROOT / "source").glob("*/*.ipynb"))


def _cases(assignment):
    try:
        module = importlib.import_module(f"tests.cases.{assignment}")
    except ModuleNotFoundError:
        return []
    return list(module.CASES)


ALL_CASES = [(a, case) for a in ASSIGNMENTS for case in _cases(a)]


class _GradedCourses(dict):
    """``assignment -> (course, rows)``, each assignment graded on first use (so ``-k exercise2``
    grades only Exercise 2)."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.tmp_path_factory = tmp_path_factory

    def __missing__(self, assignment):
        course = Course(self.tmp_path_factory.mktemp(assignment), [assignment])
        solution = course.source_notebook(assignment)
        course.submit("solution", assignment, solution)
        course.submit("starter", assignment, course.release_notebook(assignment))
        groups = packing.pack(solution, _cases(assignment))
        packs = {}
        for index, group in enumerate(groups):
            student = f"case-{group[0]['name']}" if len(group) == 1 else f"pack-{index:03d}"
            packs[student] = group
            course.submit(student, assignment, packing.packed_notebook(solution, group))
        rows = self._grade(course, assignment, ["solution", "starter", *packs])
        # A packed result that members cannot all be judged by: each member again, alone.
        again = [case for student, group in packs.items()
                 if not packing.trusted(solution, group, rows[student]) for case in group]
        for case in again:
            course.submit(f"case-{case['name']}", assignment, packing.packed_notebook(solution, [case]))
        if again:
            rows.update(self._grade(course, assignment, [f"case-{case['name']}" for case in again]))
        for student, group in packs.items():
            for case in group:
                rows.setdefault(f"case-{case['name']}", rows[student])
        self[assignment] = (course, rows)
        return self[assignment]

    @staticmethod
    def _grade(course, assignment, students):
        # Graded the way the main command grades: in parallel worker processes (as many as
        # there are cores), each kernel in the sandbox where bubblewrap works.
        pairs = [(student, assignment) for student in students]
        started = time.perf_counter()
        rows = grader.grade_submissions(course.root, pairs, overrides=course.overrides, feedback=False)
        print(f"\n[{assignment}] {len(pairs)} submissions graded in {time.perf_counter() - started:.1f} s")
        return {row.student: row for row in rows}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Per assignment: a course with solution, starter and every case submitted and graded."""
    return _GradedCourses(tmp_path_factory)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_current(graded, assignment):
    """Check that release/ is what nbgrader generates from source/ now (regenerate with `make grade`)."""
    course, _ = graded[assignment]
    fresh = course.releases[assignment]
    committed = REPO_ROOT / "release" / assignment
    assert committed.is_dir(), f"release/{assignment} missing: run `make grade`"
    comparison = filecmp.dircmp(fresh, committed, ignore=["artifacts", ".ipynb_checkpoints", "__pycache__"])
    assert not comparison.left_only and not comparison.right_only, comparison.report()
    for name in comparison.common_files:
        assert (fresh / name).read_bytes() == (committed / name).read_bytes(), \
            f"release/{assignment}/{name} is stale: run `make grade` and commit release/"


def _solution_lines(notebook):
    lines = set()
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 30:
                lines.add(line.strip())
    outside = set()
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN" in line:
                inside = True
            elif "### END" in line:
                inside = False
            elif not inside:
                outside.add(line.strip())
    return lines - outside


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_leaks_no_solution_or_hidden_tests(graded, assignment):
    course, _ = graded[assignment]
    release_dir = REPO_ROOT / "release" / assignment
    text = "\n".join(p.read_text(errors="replace") for p in release_dir.rglob("*") if p.is_file())
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME"):
        assert marker not in text, f"{marker} found in release/{assignment}"
    # Whole lines, not substrings: teaching prose may quote a formula, and a visible test's
    # `_prompts = ...` contains the solution's `prompts = ...`; neither gives an answer away.
    release_lines = set()
    for path in release_dir.rglob("*"):
        if path.suffix == ".ipynb":
            cells = nbformat.read(path, as_version=4).cells
            release_lines.update(line.strip() for cell in cells for line in cell.source.splitlines())
        elif path.is_file():
            release_lines.update(line.strip() for line in path.read_text(errors="replace").splitlines())
    leaked = sorted(line for line in _solution_lines(course.source_notebook(assignment)) if line in release_lines)
    assert not leaked, f"solution or hidden-test lines in release/{assignment}: {leaked[:3]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(graded, assignment):
    _, rows = graded[assignment]
    row = rows["solution"]
    assert row.status == "graded", row.reason
    assert row.max_score > 0 and row.score == row.max_score, f"solution lost points in {row.failed}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_starter_scores_zero_and_fails_only_with_not_implemented(graded, assignment):
    course, rows = graded[assignment]
    row = rows["starter"]
    assert row.status == "graded" and row.score == 0, f"starter scored {row.score} ({row.failed})"
    executed = course.autograded_notebook("starter", assignment)
    bad = []
    for cell in executed.cells:
        grade = cell.metadata.get("nbgrader", {}).get("grade", False)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and not grade and output.get("ename") != "NotImplementedError":
                bad.append(f"{cell.get('id')}: {output.get('ename')}: {output.get('evalue')}"[:200])
    assert not bad, "the starter fails with something other than NotImplementedError:\n" + "\n".join(bad)


@pytest.mark.parametrize("assignment, case", ALL_CASES, ids=[f"{a}-{c['name']}" for a, c in ALL_CASES])
def test_grading_accuracy(graded, assignment, case):
    course, rows = graded[assignment]
    row = rows[f"case-{case['name']}"]
    assert row.status == "graded", row.reason
    if case["expect"] == "full":
        assert row.score == row.max_score, \
            f"a correct alternative lost points in {row.failed}; see the autograded notebook"
    else:
        assert row.score < row.max_score, "a planted mistake kept full marks"
        missing = sorted(set(case["lose"]) - set(row.failed))
        assert not missing, f"expected to lose points in {missing}, lost in {row.failed}"
