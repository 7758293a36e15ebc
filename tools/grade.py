"""The course's main job: regenerate releases, autograde every submission, report grades.

    python -m tools.grade                    # everything under source/ and submitted/
    python -m tools.grade --assignment exercise2 --student alice

Steps: (1) ``release/<a>`` regenerated from ``source/<a>`` for every
assignment (replaced only when generation succeeds); (2) every
``submitted/<student>/<assignment>/`` autograded into ``autograded/``, with
feedback HTML in ``feedback/`` (hidden tests removed); (3) ``grades.csv``
written and a table printed. A submission that cannot be graded is reported
with its reason and the others still run; running again gives the same
scores, because nbgrader updates the gradebook rows of a re-graded
submission in place.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tools import grading

REPO_ROOT = Path(__file__).resolve().parent.parent


def _backup_gradebook(course_root: Path) -> None:
    # A copy taken before grading, so a crash mid-run can never cost the old grades.
    db = course_root / "gradebook.db"
    if db.exists():
        tmp = course_root / "gradebook.db.bak.tmp"
        shutil.copy2(db, tmp)
        tmp.replace(course_root / "gradebook.db.bak")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Release, autograde and report grades.")
    parser.add_argument("--course-root", type=Path, default=REPO_ROOT, help="course folder (default: this repository)")
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument("--student", action="append", help="only this student (repeatable)")
    parser.add_argument("--no-release", action="store_true", help="skip regenerating release/")
    parser.add_argument("--no-feedback", action="store_true", help="skip feedback HTML")
    parser.add_argument("--csv", type=Path, default=None, help="where to write grades (default: <course>/grades.csv)")
    args = parser.parse_args(argv)

    root = args.course_root.resolve()
    assignments = grading.source_assignments(root)
    if args.assignment:
        unknown = sorted(set(args.assignment) - set(assignments))
        if unknown:
            parser.error(f"unknown assignment(s) {unknown}; source/ holds: {', '.join(assignments) or 'none'}")
        assignments = [a for a in assignments if a in args.assignment]

    started = time.perf_counter()
    release_failed = []
    if not args.no_release:
        for assignment in assignments:
            t0 = time.perf_counter()
            with grading.quiet_stdio():
                result = grading.generate_release(root, assignment)
            if result["success"]:
                print(f"[release] release/{assignment}/ regenerated ({time.perf_counter() - t0:.1f} s)")
            else:
                release_failed.append(assignment)
                print(f"[release] FAILED for {assignment}; the previous release was kept:\n{result['error']}",
                      file=sys.stderr)

    pairs = [(s, a) for s, a in grading.discover_submissions(root)
             if (not args.assignment or a in args.assignment) and (not args.student or s in args.student)]
    _backup_gradebook(root)
    rows = []
    for student, assignment in pairs:
        print(f"[grade] {student}/{assignment} ...", flush=True)
        with grading.quiet_stdio():
            row = grading.autograde_submission(root, student, assignment, feedback=not args.no_feedback)
        rows.append(row)
        print(f"[grade] {student}/{assignment}: {row.status}, {row.score:g}/{row.max_score:g} "
              f"({row.seconds:.1f} s){' - ' + row.reason if row.reason else ''}", flush=True)

    print()
    print(grading.format_table(rows))
    if rows:
        csv_path = grading.write_grades_csv(rows, args.csv or root / "grades.csv")
        print(f"\ngrades written to {csv_path}; feedback in {root / 'feedback'}/")
    print(f"total: {len(rows)} submission(s) in {time.perf_counter() - started:.1f} s")
    return 1 if release_failed else 0


if __name__ == "__main__":
    sys.exit(main())
