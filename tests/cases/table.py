"""How a case table is written: ``Table(assignment)`` gives the edits of that assignment's
solution cells.

A case replaces one solution cell of ``source/<assignment>/<assignment>.ipynb`` and says what
autograding must do: ``"full"`` (all points) or ``"lose"`` (each listed test cell loses points).
"""
from __future__ import annotations

from grader.throwaway_course import cell_by_id, read_source


class Table:
    def __init__(self, assignment: str):
        self.assignment = assignment
        self.source = read_source(assignment)

    def solution(self, grade_id: str) -> str:
        return cell_by_id(self.source, grade_id).source

    def mistake(self, name: str, grade_id: str, edits: list[tuple[str, str]], lose: list[str]) -> dict:
        """The solution cell with each ``old`` replaced by ``new``; each ``old`` must occur exactly once."""
        source = self.solution(grade_id)
        for old, new in edits:
            count = source.count(old)
            if count != 1:
                raise ValueError(f"case {name}: expected exactly one {old!r} in cell {grade_id}, found {count}")
            source = source.replace(old, new)
        return {"name": name, "cell": grade_id, "source": source, "expect": "lose", "lose": lose}

    def wrong(self, name: str, grade_id: str, definition: str, lose: list[str]) -> dict:
        """A wrong answer written out whole (as a blind attempt wrote it): the solution cell with
        ``definition`` after it, so that the graded function is the wrong one while the cell's
        other names stay defined for the cells that follow."""
        source = self.solution(grade_id).rstrip() + "\n\n\n" + definition.strip() + "\n"
        return {"name": name, "cell": grade_id, "source": source, "expect": "lose", "lose": lose}

    @staticmethod
    def correct(name: str, grade_id: str, source: str) -> dict:
        return {"name": name, "cell": grade_id, "source": source, "expect": "full"}

    @staticmethod
    def tampered(cases: list[dict], name: str, mistake: str, patch: str, lose: list[str]) -> dict:
        """The planted mistake ``mistake`` (from ``cases``) with ``patch`` in front: library
        functions replaced so that naive tests would pass it. The hardened hidden tests
        (course/grading_security.md) must not."""
        case = next(c for c in cases if c["name"] == mistake)
        return {**case, "name": name, "source": patch + case["source"], "lose": lose}
