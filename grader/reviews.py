"""A person's reading of a submission whose grade was held for review, recorded so that grading
publishes it.

A grade is held (``GradeRow.held_for_review``) when the tamper review or the kernel's runtime
watch saw something, or when code was handed in beside the notebook: the score is computed, but
grades.csv, the table and results.json say "held for review" and the LMS imports leave it empty.
Once a person has read the submission, they record what they decided::

    python -m grader.reviews release alice exercise1 --by "J. Doe" --note "settrace was a profiler"
    python -m grader.reviews hold alice exercise1 --by "J. Doe" --note "rewrites the test's globals"
    python -m grader.reviews list

The next grading run (``make grade``, ``python -m grader``) publishes a released grade: the status
says "graded", the score reaches the LMS imports, and the reason keeps the findings and adds who
released it. A record names the submission by a fingerprint of its files in ``submitted/``, so a
new submission is held again until someone reads it too. Records are appended to
``<course>/reviews.csv`` (never rewritten; the newest record of a submission wins), so the file
is also the log of who decided what.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from grader import reports

REVIEWS_FILE = "reviews.csv"
FIELDS = ("student", "assignment", "fingerprint", "decision", "by", "at", "note")
DECISIONS = ("release", "hold")


class ReviewError(ValueError):
    """A review that cannot be recorded: the message says what was wrong and what is accepted."""


@dataclass(frozen=True)
class Review:
    student: str
    assignment: str
    fingerprint: str
    decision: str
    by: str
    at: str
    note: str


def submission_folder(course_root: Path, student: str, assignment: str) -> Path:
    return Path(course_root) / "submitted" / student / assignment


def fingerprint(folder: Path) -> str:
    """SHA-256 over every file of a submission folder (relative path and bytes), in path order."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_reviews(course_root: Path) -> list[Review]:
    path = Path(course_root) / REVIEWS_FILE
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise ReviewError(f"{path}: columns {sorted(missing)} are missing; the file needs {', '.join(FIELDS)}")
        return [Review(**{name: row[name] for name in FIELDS}) for row in reader]


def record(course_root: Path, student: str, assignment: str, decision: str, by: str, note: str) -> Review:
    """Append one decision about the submission as it is now in ``submitted/``."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is not accepted; accepted: {', '.join(DECISIONS)}")
    if not by.strip() or not note.strip():
        raise ReviewError("say who read it (--by) and what they found (--note): both go into the grade's reason")
    folder = submission_folder(course_root, student, assignment)
    if not folder.is_dir() or not any(p.is_file() for p in folder.rglob("*")):
        raise ReviewError(f"no submission at {folder}: give a student and an assignment that submitted/ holds")
    review = Review(student, assignment, fingerprint(folder), decision, by.strip(),
                    datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), note.strip())
    path = Path(course_root) / REVIEWS_FILE
    new = not path.is_file()
    # Appended with one write and flushed to disk: an interrupted command leaves the earlier records whole.
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(review.__dict__)
        handle.flush()
        os.fsync(handle.fileno())
    return review


def latest(reviews: list[Review], student: str, assignment: str, submission: str) -> Review | None:
    """The newest record of this student's assignment whose fingerprint is ``submission``'s."""
    matching = [r for r in reviews if (r.student, r.assignment, r.fingerprint) == (student, assignment, submission)]
    return matching[-1] if matching else None


def apply(course_root: Path, rows) -> list:
    """Publish the held rows that a person released: clear ``held_for_review`` and say who released
    it in the reason (the findings stay). Returns the rows released."""
    reviews = read_reviews(course_root)
    released = []
    if not reviews:
        return released
    for row in rows:
        if not row.held_for_review:
            continue
        folder = submission_folder(course_root, row.student, row.assignment)
        if not folder.is_dir():
            continue
        review = latest(reviews, row.student, row.assignment, fingerprint(folder))
        if review is None:
            continue
        if review.decision == "release":
            row.held_for_review = []
            row.reason = "; ".join(filter(None, [row.reason, f"read and released by {review.by} on {review.at}: "
                                                             f"{review.note}"]))
            _rewrite_results(course_root, row)
            released.append(row)
        else:
            row.reason = "; ".join(filter(None, [row.reason, f"read by {review.by} on {review.at}, kept held: "
                                                             f"{review.note}"]))
    return released


def _rewrite_results(course_root: Path, row) -> None:
    """The student's results.json, written while the grade was held, now says what was decided."""
    path = Path(course_root) / "feedback" / row.student / row.assignment / reports.RESULTS_FILE
    if not path.is_file():
        return
    results = json.loads(path.read_text(encoding="utf-8"))
    results.update(status=row.shown_status(), reason=row.reason)
    reports.write_results(path.parent, results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.reviews", description=__doc__.split("\n\n")[0])
    parser.add_argument("--course-root", type=Path, default=None, help="course folder (default: this repository)")
    commands = parser.add_subparsers(dest="command", required=True)
    for decision in DECISIONS:
        command = commands.add_parser(decision, help=f"record that a person read the submission: {decision} its grade")
        command.add_argument("student")
        command.add_argument("assignment")
        command.add_argument("--by", required=True, help="who read it")
        command.add_argument("--note", required=True, help="what they found")
    commands.add_parser("list", help="every record, oldest first")
    args = parser.parse_args(argv)
    if args.course_root is None:
        from helpers.paths import REPO_ROOT

        args.course_root = REPO_ROOT
    try:
        if args.command == "list":
            for review in read_reviews(args.course_root):
                print(f"{review.at}  {review.student}/{review.assignment}  {review.decision:7s}  by {review.by}: "
                      f"{review.note}  [{review.fingerprint[:12]}]")
            return 0
        review = record(args.course_root, args.student, args.assignment, args.command, args.by, args.note)
    except ReviewError as error:
        print(f"[review] {error}", file=sys.stderr)
        return 2
    print(f"[review] {review.student}/{review.assignment} ({review.fingerprint[:12]}): {review.decision} by "
          f"{review.by}, recorded in {REVIEWS_FILE}. The next grading run publishes it "
          f"(python -m grader --student {review.student} --assignment {review.assignment}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
