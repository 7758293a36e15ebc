"""A larger class to grade: the course's example class plus synthetic students built from the case tables.

``build_class(dest)`` copies the course (nbgrader_config.py, source, release, submitted: the
example students alice and bob stay) into ``dest`` and adds ``per_assignment`` synthetic
submissions per assignment that has a case table (tests/cases/<assignment>.py), each written
as nbgrader receives a student's work: the release notebook (release/<a>/<a>.ipynb) with every
answer cell filled in from the source solution, markers removed
(``tools.make_example_submissions.build``, the notebook it writes for the correct example
student), then one case's replacement of one answer cell
(``grader.throwaway_course.with_cell_replaced``), markers removed too.

Cases are chosen deterministically, spread evenly over each table: a third correct
alternatives (``"full"``), the rest planted mistakes (``"lose"``). Student ids are
``synNN_<case name>`` (NN counts over all assignments), cut to ``MAX_ID`` characters.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import NamedTuple

from benchmarks.common import course_copy

PARTS = ("nbgrader_config.py", "source", "release", "submitted")
MAX_ID = 32


class SyntheticSubmission(NamedTuple):
    """One synthetic submission; ``(student, assignment)`` is the pair graded, ``expect`` the
    case's outcome ("full": all points; "lose": fewer points, each ``lose`` cell among the failed)."""
    student: str
    assignment: str
    expect: str
    case: str
    lose: tuple[str, ...]

    @property
    def pair(self) -> tuple[str, str]:
        return self.student, self.assignment


def _cases(assignment: str) -> list[dict]:
    try:
        return list(importlib.import_module(f"tests.cases.{assignment}").CASES)
    except ModuleNotFoundError:
        return []


def _spread(items: list, k: int) -> list:
    """``k`` items spread evenly over ``items`` (all of them if there are fewer), in table order."""
    if k >= len(items):
        return list(items)
    if k <= 0:
        return []
    return [items[(i * len(items)) // k] for i in range(k)]


def choose_cases(assignment: str, count: int) -> list[dict]:
    """``count`` cases of the assignment's table: a third correct alternatives, the rest mistakes."""
    cases = _cases(assignment)
    full = [c for c in cases if c["expect"] == "full"]
    lose = [c for c in cases if c["expect"] == "lose"]
    chosen_full = _spread(full, min(len(full), max(1, count // 3)))
    chosen_lose = _spread(lose, count - len(chosen_full))
    order = {id(c): i for i, c in enumerate(cases)}
    return sorted(chosen_full + chosen_lose, key=lambda c: order[id(c)])


def student_id(number: int, case_name: str) -> str:
    """``synNN_<case name>``; a long name is cut at its last ``_`` that fits in ``MAX_ID`` characters."""
    full = f"syn{number:02d}_{case_name}"
    if len(full) <= MAX_ID:
        return full
    cut = full[:MAX_ID + 1].rsplit("_", 1)[0]
    return cut if len(cut) > len(f"syn{number:02d}_") else full[:MAX_ID]


def build_class(dest: Path, per_assignment: int = 12) -> list[SyntheticSubmission]:
    """The course copied into ``dest`` (created) with ``per_assignment`` synthetic submissions per
    assignment; returns them (``.pair`` is the ``(student, assignment)`` graded, ``.expect`` the outcome).

    The copy keeps the example students under submitted/ (they are graded too, not checked here).
    """
    import nbformat

    from grader.throwaway_course import with_cell_replaced
    from tools.make_example_submissions import _answer, build

    dest = course_copy(Path(dest), PARTS)
    assignments = sorted(p.parent.name for p in (dest / "source").glob("*/*.ipynb"))
    made: list[SyntheticSubmission] = []
    for assignment in assignments:
        cases = choose_cases(assignment, per_assignment)
        if not cases:
            continue
        # The student version of a complete answer: the release with every answer cell filled in.
        filled = build(assignment)["alice"]
        for case in cases:
            student = student_id(len(made) + 1, case["name"])
            notebook = with_cell_replaced(filled, case["cell"], _answer(case["source"]))
            path = dest / "submitted" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True)
            nbformat.write(notebook, path)
            made.append(SyntheticSubmission(student, assignment, case["expect"], case["name"],
                                            tuple(case.get("lose", ()))))
    return made


def check_outcomes(made: list[SyntheticSubmission], rows) -> list[str]:
    """What went wrong: one line per synthetic submission whose grade does not match its case.

    ``rows``: objects or dicts with student, assignment, status, score, max_score, failed
    (a list, or grades.csv's space-separated string)."""
    def get(r, name):
        return r[name] if isinstance(r, dict) else getattr(r, name)

    by_pair = {(get(r, "student"), get(r, "assignment")): r for r in rows}
    problems = []
    for sub in made:
        r = by_pair.get(sub.pair)
        if r is None:
            problems.append(f"{sub.student}/{sub.assignment}: not graded at all")
            continue
        status, score, max_score = get(r, "status"), float(get(r, "score")), float(get(r, "max_score"))
        failed = get(r, "failed")
        failed = set(failed.split() if isinstance(failed, str) else failed)
        if status != "graded":
            problems.append(f"{sub.student}/{sub.assignment}: {status} ({get(r, 'reason')})")
        elif sub.expect == "full" and score != max_score:
            problems.append(f"{sub.student}/{sub.assignment}: correct alternative {sub.case} got "
                            f"{score:g}/{max_score:g}, lost points in {sorted(failed)}")
        elif sub.expect == "lose" and (score >= max_score or set(sub.lose) - failed):
            problems.append(f"{sub.student}/{sub.assignment}: mistake {sub.case} got {score:g}/{max_score:g}; "
                            f"expected to lose points in {sorted(sub.lose)}, lost in {sorted(failed)}")
    return problems
