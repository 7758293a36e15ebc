"""Several cases of a case table graded as one submission, where that cannot change a verdict.

Grading a case means running the whole notebook through nbgrader, about 20 CPU seconds for
Exercise 1, and the tables hold a hundred or more cases each. Most cases replace one cell and
expect one or two test cells to fail, far from the cells the other cases replace. So cases are
packed into one notebook when no case's expected failures can be reached from another case's
cell, and the packed result is trusted only when it looks as the members predict; otherwise
every member is graded alone (``trusted``), so a failing case is always reported on its own.

Reach. A test cell can only be changed by a cell that runs before it and whose names it uses,
directly or through the cells that define what it uses: the names a cell binds at top level,
the names it reads anywhere (a function body reads its globals when it runs). This is computed
on the packed notebook itself, so a case that (re)defines a helper name counts.

What reach cannot see is a side effect on a shared object (a tokenizer left padding on the
right, a library function replaced). Tampering cases replace library functions on purpose and
are always graded alone (``alone``); a case table marks others with ``"alone": True``. The
check in ``trusted`` (no test failed that no member can reach) catches the rest: such a side
effect breaks tests that no member's cell reaches, and the members are then graded alone.
"""
from __future__ import annotations

import functools

from grader.throwaway_course import with_cell_replaced
from tools.notebook_builder import cell_symbols


@functools.lru_cache(maxsize=None)
def _names(source: str) -> tuple[frozenset, frozenset]:
    """``(bound, read)``: the global names a cell binds (at top level, or declared global in a
    function) and the global names it reads without binding them itself (a hidden test's own
    helpers and stand-ins are not read from earlier cells). Parameters and locals of functions,
    lambdas and comprehensions are neither: Python's own symbol tables say which is which."""
    top = cell_symbols(source)
    if top is None:
        return frozenset(), frozenset()
    bound, read = set(), set()
    for symbol in top.get_symbols():
        if symbol.is_assigned() or symbol.is_imported():
            bound.add(symbol.get_name())
        if symbol.is_referenced():
            read.add(symbol.get_name())
    todo = list(top.get_children())
    while todo:
        table = todo.pop()
        todo.extend(table.get_children())
        for symbol in table.get_symbols():
            if not symbol.is_global():
                continue
            if symbol.is_declared_global() and symbol.is_assigned():
                bound.add(symbol.get_name())
            if symbol.is_referenced():
                read.add(symbol.get_name())
    return frozenset(bound), frozenset(read - bound)


def reach(notebook, replaced: dict[str, str] | None = None) -> dict[str, set[str]]:
    """``{test grade_id: grade_ids of the solution cells that can change its outcome}``, in
    ``notebook`` with the cells named in ``replaced`` holding its sources as well as their own."""
    replaced = replaced or {}
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    meta = [c.get("metadata", {}).get("nbgrader", {}) for c in cells]
    binds, reads = [], []
    for cell, cell_meta in zip(cells, meta):
        bound, read = _names(cell.source)
        if cell_meta.get("grade_id") in replaced:  # both versions: a mistake may drop a name the tests read
            new_bound, new_read = _names(replaced[cell_meta["grade_id"]])
            bound, read = bound | new_bound, read | new_read
        binds.append(bound)
        reads.append(read)
    binders: dict[str, list[int]] = {}
    for index, names in enumerate(binds):
        if meta[index].get("grade") and not meta[index].get("solution"):
            continue      # a test cell's names are its own (a swapped student function is put back)
        for name in names:
            binders.setdefault(name, []).append(index)
    result = {}
    for test, test_meta in enumerate(meta):
        if not test_meta.get("grade"):
            continue
        seen, todo = {test}, [test]
        while todo:  # the earlier cells binding a name that a reached cell reads
            for name in reads[todo.pop()]:
                for earlier in binders.get(name, ()):
                    if earlier < test and earlier not in seen:
                        seen.add(earlier)
                        todo.append(earlier)
        result[test_meta.get("grade_id")] = {meta[i]["grade_id"] for i in seen if meta[i].get("solution")}
    return result


def alone(case: dict) -> bool:
    return bool(case.get("alone")) or case["name"].startswith("tamper")


def packed_notebook(solution, group: list[dict]):
    notebook = solution
    for case in group:
        notebook = with_cell_replaced(notebook, case["cell"], case["source"])
    return notebook


def pack(solution, cases: list[dict]) -> list[list[dict]]:
    """Cases in groups, each graded as one submission; a group of one is a case graded alone.

    Mistakes pack with mistakes and correct alternatives with alternatives, each group replacing
    a cell at most once; a mistake joins a group only if, in the packed notebook, none of its
    expected failures is reached by another member's cell and it reaches none of theirs.
    """
    groups: list[list[dict]] = []
    for case in cases:
        if alone(case):
            groups.append([case])
            continue
        for group in groups:
            if alone(group[0]) or group[0]["expect"] != case["expect"] or \
                    any(member["cell"] == case["cell"] for member in group):
                continue
            candidate = group + [case]
            if case["expect"] == "full" or _independent(solution, candidate):
                group.append(case)
                break
        else:
            groups.append([case])
    return groups


def _independent(solution, group: list[dict]) -> bool:
    reached = reach(solution, {case["cell"]: case["source"] for case in group})
    for case in group:
        others = {member["cell"] for member in group if member is not case}
        if any(reached.get(test, set()) & others for test in case["lose"]):
            return False
    return True


def trusted(solution, group: list[dict], row) -> bool:
    """Whether a packed group's grade decides each member's verdict.

    Alternatives: only full marks (a packed loss says nothing about which member lost). Mistakes:
    every member's expected failures failed, and every failed test is reachable from some member's
    cell (a failure nobody can reach means a side effect, or a broken run).
    """
    if len(group) == 1:
        return True
    if row.status != "graded":
        return False
    if group[0]["expect"] == "full":
        return row.score == row.max_score
    failed = set(row.failed)
    if any(not set(case["lose"]) <= failed for case in group):
        return False
    reached = reach(solution, {case["cell"]: case["source"] for case in group})
    cells = {case["cell"] for case in group}
    return all(reached.get(test, set()) & cells for test in failed)


__all__ = ["alone", "pack", "packed_notebook", "reach", "trusted"]
