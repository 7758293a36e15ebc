"""What a grading run reports: one ``GradeRow`` per submission, ``grades.csv`` and the table.

``GradeRow`` is what ``grader.pipeline.autograde_submission`` returns; ``write_grades_csv``
writes the rows with one ``points:<test>`` column per test, ``format_table`` prints them.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class GradeRow:
    student: str
    assignment: str
    status: str                 # "graded" or "not graded"
    score: float = 0.0
    max_score: float = 0.0
    failed: list[str] = field(default_factory=list)   # grade cells that lost points
    reason: str = ""            # why it was not graded, or notes
    seconds: float = 0.0
    # One record per graded cell, in notebook order: test, points, max_points, passed, message
    # (the message as the student sees it: no hidden-test code).
    tests: list[dict] = field(default_factory=list)
    # What the sandbox reported per notebook ({notebook name: grader.sandbox.SandboxReport}: run
    # time, peak memory, stops, limits reached); empty when the kernel ran unsandboxed.
    sandbox_reports: dict = field(default_factory=dict, compare=False, repr=False)
    # Its gradebook rows were removed (an environment fault: no score may stay behind).
    forgotten: bool = field(default=False, compare=False, repr=False)
    # Where it was graded: "" on this machine, else the cluster worker's address.
    worker: str = field(default="", compare=False, repr=False)
    # Why a person must read it before its grade is published (the tamper review's findings, code
    # handed in beside the notebook): grades.csv and the table then say "held for review".
    held_for_review: list[str] = field(default_factory=list)

    HELD = "held for review"

    def shown_status(self) -> str:
        return f"{self.status}, {self.HELD}" if self.status == "graded" and self.held_for_review else self.status

    CSV_COLUMNS = ("student", "assignment", "status", "score", "max_score", "failed", "reason", "seconds")

    def as_csv_row(self) -> dict:
        row = {name: getattr(self, name) for name in self.CSV_COLUMNS}
        row["status"] = self.shown_status()
        row["failed"] = " ".join(self.failed)
        row["seconds"] = round(self.seconds, 1)
        for test in self.tests:
            row[test_column(test["test"])] = test["points"]
        return row

    def results(self) -> dict:
        """The submission's results as written to ``feedback/<student>/<assignment>/results.json``."""
        return {"student": self.student, "assignment": self.assignment, "status": self.shown_status(),
                "score": self.score, "max_score": self.max_score, "reason": self.reason, "tests": self.tests}


RESULTS_FILE = "results.json"


def results_json(results: dict) -> str:
    """The text of a results.json (``GradeRow.results()``), the same wherever it is written."""
    return json.dumps(results, indent=1) + "\n"


def write_results(folder: Path, results: dict) -> Path:
    """Write ``folder/results.json`` whole or not at all (a temporary file, then a rename)."""
    path = Path(folder) / RESULTS_FILE
    tmp = path.with_name(RESULTS_FILE + ".tmp")
    tmp.write_text(results_json(results), encoding="utf-8")
    tmp.replace(path)
    return path


def test_column(grade_id: str) -> str:
    """The grades.csv column of one test's points (an LMS import maps it to a grade item)."""
    return f"points:{grade_id}"


def write_grades_csv(rows: list[GradeRow], path: Path) -> Path:
    """One row per submission: the totals, then one ``points:<test>`` column per graded cell
    (in notebook order, assignment after assignment; empty where it is not that assignment's)."""
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    test_columns: list[str] = []
    for row in rows:
        for test in row.tests:
            if test_column(test["test"]) not in test_columns:
                test_columns.append(test_column(test["test"]))
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*GradeRow.CSV_COLUMNS, *test_columns])
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv_row())
    tmp.replace(path)
    return path


def format_table(rows: list[GradeRow]) -> str:
    if not rows:
        return "nothing to grade: submitted/ holds no <student>/<assignment>/ folders"
    header = ("student", "assignment", "score", "max", "status", "lost points in / reason")
    lines = []
    for r in rows:
        detail = ", ".join(r.failed) if r.failed else ""
        if r.reason:
            detail = (detail + " | " if detail else "") + r.reason
        lines.append((r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}", r.shown_status(), detail or "-"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    widths[-1] = min(widths[-1], 90)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line[:-1], line[-1][:300]) for line in lines]
    return "\n".join(out)
