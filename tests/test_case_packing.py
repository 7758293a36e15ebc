"""Packing of case-table cases into shared submissions (tests/cases/packing.py): which cells a test
can reach, which cases may share a notebook, and when a packed grade is trusted.

Pure functions on small notebooks; the real nbgrader runs are in test_exercises_pipeline.py.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import nbformat
import pytest

from grader.throwaway_course import read_source
from tests.cases import packing


def _cell(source, grade_id=None, solution=False, grade=False):
    cell = nbformat.v4.new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": solution, "grade": grade,
                                     "locked": not solution, "schema_version": 3}
    return cell


def _notebook():
    """Two chains, f <- g <- test_g and h <- test_h, plus a loader whose product the tests read."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        _cell("import math\nLIMIT = 3"),
        _cell("def f(x):\n    return x + 1", "f", solution=True),
        _cell("def load(model):\n    return model", "load", solution=True),
        _cell("model = load('tiny')"),
        _cell("def g(model):\n    return f(model)", "g", solution=True),
        _cell("assert g(1) == 2", "test_g", grade=True),
        _cell("def h(x, limit=LIMIT):\n    return [math.floor(v) for v in range(x)]", "h", solution=True),
        _cell("def g(x):\n    return 'stand-in'\nassert h(2) == [0, 1] and g(0)", "test_h", grade=True),
        _cell("assert model == 'tiny'", "test_model", grade=True),
        _cell("def f(x):\n    return 0", "late", solution=True),
    ]
    return notebook


def _mistake(name, cell, lose, source="pass"):
    return {"name": name, "cell": cell, "source": source, "expect": "lose", "lose": lose}


def _correct(name, cell, source="pass"):
    return {"name": name, "cell": cell, "source": source, "expect": "full"}


def test_a_test_reaches_the_earlier_solution_cells_whose_names_it_uses_through_others():
    reached = packing.reach(_notebook())
    assert reached["test_g"] == {"g", "f"}          # g reads f; a parameter named model is not the global
    assert reached["test_h"] == {"h"}               # its own stand-in g does not link to the solution's g
    assert reached["test_model"] == {"load"}        # through the plain cell that calls the loader
    assert "late" not in set().union(*reached.values())  # a cell that runs after a test cannot change it


def test_reach_is_computed_on_the_replaced_sources():
    reached = packing.reach(_notebook(), {"h": "def h(x):\n    return g(x)"})
    assert reached["test_h"] == {"h", "g", "f"}


def test_independent_mistakes_share_a_submission_and_dependent_ones_do_not():
    cases = [_mistake("in_f", "f", ["test_g"]), _mistake("in_h", "h", ["test_h"]),
             _mistake("in_g", "g", ["test_g"]), _mistake("in_f_again", "f", ["test_g"])]
    groups = [[case["name"] for case in group] for group in packing.pack(_notebook(), cases)]
    # in_g's expected failure test_g reaches f, so it never joins in_f; one cell once per group.
    assert groups == [["in_f", "in_h"], ["in_g"], ["in_f_again"]]


def test_a_replacement_that_makes_a_test_reach_another_member_keeps_them_apart():
    cases = [_mistake("in_f", "f", ["test_g"]),
             _mistake("h_calls_g", "h", ["test_h"], source="def h(x):\n    return g(x)")]
    assert [len(group) for group in packing.pack(_notebook(), cases)] == [1, 1]


def test_tampering_and_marked_cases_are_graded_alone_and_alternatives_only_with_alternatives():
    cases = [_mistake("in_f", "f", ["test_g"]), {**_mistake("tamper_h", "h", ["test_h"])},
             {**_mistake("marked", "h", ["test_h"]), "alone": True}, _correct("alt_h", "h"),
             _correct("alt_load", "load"), _mistake("in_load", "load", ["test_model"])]
    groups = [[case["name"] for case in group] for group in packing.pack(_notebook(), cases)]
    assert groups == [["in_f", "in_load"], ["tamper_h"], ["marked"], ["alt_h", "alt_load"]]


def _row(failed, score=1, max_score=10, status="graded"):
    return SimpleNamespace(status=status, failed=list(failed), score=score, max_score=max_score)


@pytest.mark.parametrize("failed, status, want", [
    (["test_g", "test_h"], "graded", True),
    (["test_g"], "graded", False),                          # in_h's expected failure did not happen
    (["test_g", "test_h", "test_model"], "graded", False),  # a failure neither member reaches
    (["test_g", "test_h"], "not graded", False),
])
def test_a_packed_grade_of_mistakes_is_trusted_only_when_it_looks_as_the_members_predict(failed, status, want):
    group = [_mistake("in_f", "f", ["test_g"]), _mistake("in_h", "h", ["test_h"])]
    assert packing.trusted(_notebook(), group, _row(failed, status=status)) is want


def test_a_packed_grade_of_alternatives_is_trusted_only_at_full_marks():
    group = [_correct("alt_h", "h"), _correct("alt_load", "load")]
    assert packing.trusted(_notebook(), group, _row([], score=10)) is True
    assert packing.trusted(_notebook(), group, _row(["test_model"], score=9)) is False


@pytest.mark.parametrize("assignment", ["exercise1", "exercise2"])
def test_the_case_tables_pack_into_groups_that_cannot_change_each_others_verdicts(assignment):
    solution = read_source(assignment)
    cases = importlib.import_module(f"tests.cases.{assignment}").CASES
    groups = packing.pack(solution, cases)
    assert sorted(case["name"] for group in groups for case in group) == sorted(case["name"] for case in cases)
    for group in groups:
        assert len({case["cell"] for case in group}) == len(group)
        assert len({case["expect"] for case in group}) == 1
        assert len(group) == 1 or not any(packing.alone(case) for case in group)
        reached = packing.reach(solution, {case["cell"]: case["source"] for case in group})
        for case in group:
            if case["expect"] == "lose":
                others = {member["cell"] for member in group if member is not case}
                assert not any(reached[test] & others for test in case["lose"]), (case["name"], group)
    assert len(groups) < len(cases)  # packing must pay for itself
