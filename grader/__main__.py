"""The course's main job: regenerate releases, autograde every submission, report grades.

    python -m grader                    # everything under source/ and submitted/
    python -m grader --assignment exercise2 --student alice
    python -m grader --workers 1        # one submission at a time
    python -m grader --sandbox off      # trusted code only: no sandbox (default: refuse without one)
    python -m grader --scheduler tls://head:8786 --certs certs/   # on a Dask cluster (grader/cluster.py)
    python -m grader --slurm PARTITION --slurm-jobs 1:8 --certs certs/   # on Slurm jobs (grader/slurm.py)
    python -m grader --db-url postgresql://user@host/course   # the gradebook in PostgreSQL

Steps: (0) each assignment's own solution is graded first, in the same sandbox and
profile; unless it gets full marks the command refuses to grade (exit status 3, nothing
written; ``grader/solution_check.py``, a pass is remembered per environment); (1)
``release/<a>`` regenerated from ``source/<a>`` for every assignment (replaced only when
generation succeeds); (2) every
``submitted/<student>/<assignment>/`` autograded into ``autograded/``, with
feedback in ``feedback/<student>/<a>/`` (HTML without any hidden-test code, and
``results.json`` with the per-test results), after the roster ``students.csv`` (names,
emails, LMS ids; checked before anything is written, exit status 2 if bad) is imported into
the gradebook (``grader/roster.py``); (3) ``grades.csv`` (one
``points:<test>`` column per test) written, with ``grades_canvas.csv`` and ``grades_moodle.csv``
for an LMS import, and a table printed. Submissions are graded in parallel, as many at
once as there are cores (gradebook writes take turns), each kernel inside
the sandbox of ``grader/sandbox.py``, as through every other grading door
(``grader/every_door.py``); where the sandbox cannot start the command refuses
(exit status 5, nothing written) unless ``--sandbox off`` or ``auto`` says otherwise
(see ``course/grading_security.md``). A submission that cannot be graded is reported
with its reason and the others still run; running again gives the same
scores, because nbgrader updates the gradebook rows of a re-graded
submission in place.

With ``--scheduler`` the submissions (and the solution check) are graded by the workers of a
Dask scheduler (``python -m grader.worker ADDRESS`` on each machine), which need no access to
the course folders; this process writes everything they send back. If the scheduler goes away
mid-run the command stops (exit status 4) with every finished result written; running it again
grades every submission again, with the same scores.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from grader import dispatch, pipeline, reports, reviews, roster as roster_module
from grader.gradebook import _backup_gradebook, ensure_gradebook, gradebook_assignments
from grader.progress import ClassProgress

from helpers.paths import REPO_ROOT


def _announce_sandbox(sandbox, reason: str) -> None:
    """Say what protects this run: ``sandbox`` as asked (True, False, "auto"), ``reason`` why it is unavailable."""
    from grader import sandbox as sandbox_module

    if sandbox is False:
        print("[grade] WARNING: --sandbox off: student code runs with your rights "
              "(it can read solutions and hidden tests and rewrite the gradebook)", file=sys.stderr)
        return
    if not reason:
        if sandbox_module.cgroups_available():
            print("[grade] sandbox: bubblewrap, with a cgroup memory and process cap per submission", flush=True)
        elif os.geteuid() == 0:
            print("[grade] WARNING: sandbox without cgroups: memory is capped per process only, and the "
                  "number of processes not at all (RLIMIT_NPROC does not bind root); a fork bomb runs until "
                  "the cell's time limit", file=sys.stderr, flush=True)
        else:
            print("[grade] sandbox: bubblewrap, per-process limits (no cgroups for this user)", flush=True)
    elif sandbox is True:
        print(f"[grade] sandbox required but unavailable: {reason}; nothing will be graded", file=sys.stderr)
    else:
        bar = "!" * 78
        print(f"{bar}\n[grade] WARNING: NO SANDBOX. {reason}.\n"
              "[grade] Student code runs with your rights: it can read solutions and hidden tests, "
              "rewrite the gradebook\n[grade] and other students' work. Grade only trusted "
              f"submissions this way (course/grading_security.md).\n{bar}", file=sys.stderr, flush=True)


def _solutions_pass(root: Path, assignments: list[str], sandbox, workers: int | None, client=None) -> bool:
    """Grade each assignment's own solution first (grader/solution_check.py); False: refuse to grade."""
    from grader import solution_check

    with pipeline.quiet_stdio(keep_stdout=True):
        checks = solution_check.check_solutions(root, assignments, sandbox=sandbox, workers=workers, client=client)
    for check in checks:
        how = "remembered from an earlier check" if check.cached else f"{check.seconds:.1f} s"
        if check.passed:
            print(f"[check] {check.assignment}: the solution gets {check.score:g}/{check.max_score:g} here ({how})",
                  flush=True)
            continue
        print(f"[check] REFUSING TO GRADE: {check.assignment}'s own solution gets {check.score:g}/"
              f"{check.max_score:g} in this environment, so every grade would measure the environment, not "
              "the students. Nothing was graded or written (gradebook, grades.csv, feedback). What failed:",
              file=sys.stderr)
        for problem in check.problems:
            print(f"[check]   - {problem}", file=sys.stderr)
        print("[check] Fix the environment (`make setup`; is this the course's venv, are models/ and "
              "helpers/ in place?) and run again.", file=sys.stderr, flush=True)
    return all(check.passed for check in checks)


def _import_roster(root: Path, roster, pairs, db_url: str) -> None:
    """Names, emails and LMS ids into the gradebook (the Formgrader shows them); say once who is not listed."""
    students = sorted({student for student, _ in pairs})
    if roster is None:
        print(f"[roster] no {roster_module.ROSTER_FILE}: students are known by their ids only", flush=True)
        return
    ensure_gradebook(root, db_url)
    count = roster_module.import_roster(roster, db_url)
    print(f"[roster] {count} student(s) from {roster.path.name} in the gradebook", flush=True)
    unknown = roster.unknown(students)
    if unknown:
        print(f"[roster] not in {roster.path.name}, graded by id only: {', '.join(unknown)}", flush=True)


def _write_lms_exports(root: Path, db_url: str, rows: list[reports.GradeRow]) -> None:
    held = [(row.student, row.assignment) for row in rows if row.held_for_review]
    paths, left_out = roster_module.write_lms_exports(db_url, root, held)
    print(f"LMS imports: {paths['canvas'].name} (Canvas), {paths['moodle'].name} (Moodle)")
    if held:
        print(f"[review] held for review, left empty in the LMS imports until a person has read them: "
              f"{', '.join(f'{s}/{a}' for s, a in held)} (the reasons are in grades.csv)", file=sys.stderr)
    if left_out:
        print(f"[roster] left out of {paths['moodle'].name} (Moodle needs an identifier on every row): "
              f"{', '.join(left_out)}", file=sys.stderr)


def run(argv=None) -> tuple[int, list[reports.GradeRow]]:
    """The command: its exit status and the rows it graded (benchmarks read their sandbox reports)."""
    parser = argparse.ArgumentParser(prog="python -m grader", description="Release, autograde and report grades.")
    parser.add_argument("--course-root", type=Path, default=REPO_ROOT, help="course folder (default: this repository)")
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument("--student", action="append", help="only this student (repeatable)")
    parser.add_argument("--no-release", action="store_true", help="skip regenerating release/")
    parser.add_argument("--no-feedback", action="store_true", help="skip feedback (the HTML pages and results.json)")
    parser.add_argument("--csv", type=Path, default=None, help="where to write grades (default: <course>/grades.csv)")
    parser.add_argument("--roster", type=Path, default=None,
                        help=f"the students' names, emails and LMS ids, imported into the gradebook before "
                             f"grading (default: <course>/{roster_module.ROSTER_FILE}, skipped if absent)")
    parser.add_argument("--workers", type=int, default=None,
                        help="submissions graded at once (default: the cores this process may use, "
                             "fewer if memory is short)")
    parser.add_argument("--sandbox", choices=["on", "auto", "off"], default="on",
                        help="on (default, as every other grading door): sandbox every kernel, refuse to "
                             "grade (exit status 5) where the sandbox cannot start; auto: sandbox where "
                             "bubblewrap works, else grade unsandboxed with a loud warning; off: no sandbox "
                             "(student code runs with your rights). On a cluster (--scheduler) auto means on")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="grade on the workers of this Dask scheduler (e.g. tcp://head:8786) instead of "
                             "this machine; start workers with `python -m grader.worker ADDRESS`")
    slurm = parser.add_argument_group("grading on Slurm jobs (grader/slurm.py)")
    slurm.add_argument("--slurm", default=None, metavar="PARTITION",
                       help="grade on grading workers started as Slurm jobs in this partition (from a login node; "
                            "this checkout and its venv must be at the same path on the nodes)")
    slurm.add_argument("--slurm-jobs", default="1:4", metavar="MIN:MAX",
                       help="jobs kept between MIN and MAX, following the submissions waiting (default 1:4)")
    slurm.add_argument("--slurm-memory-mb", type=int, default=None,
                       help="memory per job (default: the sandbox's limit + 1024)")
    slurm.add_argument("--slurm-cores", type=int, default=1, help="cores per job (default 1)")
    slurm.add_argument("--slurm-walltime", default="02:00:00", help="time limit per job (default 02:00:00)")
    slurm.add_argument("--slurm-account", default=None, help="the Slurm account to charge")
    slurm.add_argument("--slurm-host", default=None,
                       help="where the jobs reach this machine (default: its host name; needs --certs, or "
                            "--insecure-tcp, unless it is 127.0.0.1 on a one-machine cluster)")
    slurm.add_argument("--slurm-idle-s", type=float, default=60.0,
                       help="a job idle this long is given back (default 60)")
    slurm.add_argument("--slurm-start-timeout-s", type=float, default=600.0,
                       help="stop when no grading job has started within this time (default 600)")
    parser.add_argument("--certs", type=Path, default=None, metavar="DIR",
                        help="with a tls:// --scheduler: the folder with ca.pem, grader.pem and grader-key.pem "
                             "(python -m grader.certificates DIR makes them)")
    parser.add_argument("--insecure-tcp", action="store_true",
                        help="allow a plain tcp:// --scheduler that is not on this machine (anyone who reaches "
                             "it can run code on the workers)")
    parser.add_argument("--db-url", default=None, metavar="URL",
                        help="the gradebook's database, e.g. postgresql://user@host:5432/course (default: "
                             "what nbgrader_config.py names; COURSE_DB_URL sets it there; else gradebook.db)")
    args = parser.parse_args(argv)
    if args.db_url and not args.db_url.startswith(("sqlite:", "postgresql:", "postgresql+")):
        parser.error(f"--db-url {args.db_url!r}: accepted are postgresql://USER@HOST:PORT/DATABASE and "
                     "sqlite:///PATH")

    root = args.course_root.resolve()
    if (root / "authoring").is_dir():    # grading must see what authoring/ says, not an older build
        from tools.notebook_builder import stale_notebooks

        stale = stale_notebooks(root)
        if stale:
            print(f"[grade] REFUSING TO GRADE: source/ is older than authoring/: {'; '.join(stale)}. "
                  "Run `make notebooks` first. Nothing was graded or written.", file=sys.stderr)
            return 2, []
    assignments = pipeline.source_assignments(root)
    if args.assignment:
        unknown = sorted(set(args.assignment) - set(assignments))
        if unknown:
            parser.error(f"unknown assignment(s) {unknown}; source/ holds: {', '.join(assignments) or 'none'}")
        assignments = [a for a in assignments if a in args.assignment]
    roster_path = args.roster or root / roster_module.ROSTER_FILE
    roster = None
    if args.roster or roster_path.exists():
        try:    # checked whole before anything is written
            roster = roster_module.load_roster(roster_path)
        except roster_module.RosterError as error:
            print(f"[roster] REFUSING TO GRADE: {error}. Nothing was graded or written.", file=sys.stderr)
            return 2, []

    started = time.perf_counter()
    db_url = pipeline.course_db_url(root, args.db_url)
    client = slurm_cluster = None
    if args.scheduler and args.slurm:
        parser.error("--scheduler and --slurm: give one (--slurm starts its own scheduler)")
    if args.slurm:
        from grader import cluster, slurm as slurm_module

        try:
            low, _, high = args.slurm_jobs.partition(":")
            jobs = (int(low), int(high or low))
        except ValueError:
            parser.error(f"--slurm-jobs {args.slurm_jobs!r}: give MIN:MAX, e.g. 1:8")
        settings = slurm_module.SlurmSettings(
            partition=args.slurm, min_jobs=jobs[0], max_jobs=jobs[1], memory_mb=args.slurm_memory_mb,
            cores=args.slurm_cores, walltime=args.slurm_walltime, account=args.slurm_account,
            host=args.slurm_host or socket.gethostname(), certs=args.certs, insecure_tcp=args.insecure_tcp,
            idle_s=args.slurm_idle_s, start_timeout_s=args.slurm_start_timeout_s)
        if args.sandbox == "off":
            _announce_sandbox(False, "")
        try:
            slurm_cluster, client = slurm_module.start(settings, pipeline.sandbox_memory_mb(root))
        except cluster.ClusterError as error:
            print(f"[slurm] {error}. Nothing was graded or written.", file=sys.stderr)
            return 4, []
        sandbox = (args.sandbox != "off", "")
    elif args.scheduler:
        from grader import cluster

        try:
            client = cluster.connect(args.scheduler, certs=args.certs, insecure_tcp=args.insecure_tcp)
        except cluster.ClusterError as error:
            print(f"[cluster] {error}. Nothing was graded or written.", file=sys.stderr)
            return 4, []
        dashboard = cluster.dashboard_address(client)
        print(f"[cluster] grading on {args.scheduler}"
              + (f"; dashboard: {dashboard}" if dashboard else " (no dashboard: install bokeh on the "
                 "scheduler's machine for one)"), flush=True)
        # The workers sandbox every kernel (grader.worker refuses to start without one) unless off.
        sandbox = (args.sandbox != "off", "")
        if args.sandbox == "off":
            _announce_sandbox(False, "")
    else:
        dispatch.start_worker_server()    # its imports overlap with the releases below
        mode = {"auto": "auto", "on": True, "off": False}[args.sandbox]
        from grader import sandbox as sandbox_module

        reason = "" if mode is False else sandbox_module.unavailable_reason()
        _announce_sandbox(mode, reason)
        if mode is True and reason:
            print("[grade] REFUSING TO GRADE: nothing was graded or written. Install bubblewrap (`make setup` "
                  "as root does), or grade trusted submissions only with --sandbox off", file=sys.stderr)
            return 5, []
        sandbox = pipeline.resolve_sandbox(mode, reason)    # decided once, passed down to every grading step
    try:
        return _grade(args, root, assignments, roster, sandbox, db_url, client, started)
    finally:
        if client is not None:
            client.close()
        if slurm_cluster is not None:
            slurm_cluster.close()         # every job cancelled


def _grade(args, root: Path, assignments: list[str], roster, sandbox, db_url: str, client,
           started: float) -> tuple[int, list[reports.GradeRow]]:
    from grader import cluster

    pairs = [(s, a) for s, a in pipeline.discover_submissions(root)
             if (not args.assignment or a in args.assignment) and (not args.student or s in args.student)]
    graded_assignments = sorted({a for _, a in pairs} & set(assignments))
    if args.no_release:
        # Autograde reads each assignment's grade cells from the gradebook, which only a release
        # writes there: without one, every submission would fail with nbgrader's generic error.
        unknown = sorted(set(graded_assignments) - gradebook_assignments(root, db_url))
        if unknown:
            print(f"[grade] --no-release: the gradebook does not know {', '.join(unknown)} yet; "
                  "run once without --no-release to register it", file=sys.stderr)
            return 2, []
    try:
        if graded_assignments and not _solutions_pass(root, graded_assignments, sandbox, args.workers, client):
            return 3, []
    except cluster.ClusterError as error:
        print(f"[cluster] {error}. Nothing was graded or written.", file=sys.stderr)
        return 4, []
    release_failed = []
    if not args.no_release:
        for assignment in assignments:
            t0 = time.perf_counter()
            with pipeline.quiet_stdio():
                result = pipeline.generate_release(root, assignment, db_url=db_url)
            if result["success"]:
                print(f"[release] release/{assignment}/ regenerated ({time.perf_counter() - t0:.1f} s)")
            else:
                release_failed.append(assignment)
                print(f"[release] FAILED for {assignment}; the previous release was kept:\n{result['error']}",
                      file=sys.stderr)

    _backup_gradebook(root, db_url)
    _import_roster(root, roster, pairs, db_url)
    workers = None    # on a cluster the workers decide
    if client is None:
        workers = args.workers or dispatch.default_workers(len(pairs), root)
    if pairs:
        print(f"[grade] {len(pairs)} submission(s), "
              + (f"{workers} at a time" if workers else "on the cluster"), flush=True)

    progress = ClassProgress(len(pairs))
    try:
        with pipeline.quiet_stdio(keep_stdout=True):
            rows = dispatch.grade_submissions(root, pairs, workers=workers, feedback=not args.no_feedback,
                                             sandbox=sandbox, on_row=progress.finish, on_start=progress.start,
                                             db_url=db_url, client=client)
    except cluster.ClusterError as error:
        progress.close()
        lost = isinstance(error, cluster.SchedulerLost)
        print(f"[cluster] STOPPED: {'the scheduler went away' if lost else 'the cluster cannot grade'} "
              f"({error}). {progress.done} of {len(pairs)} submission(s) finished and are written (gradebook, "
              "autograded/, feedback/); grades.csv was not rewritten. Run the command again: it grades "
              "every submission again, with the same scores.", file=sys.stderr)
        return 4, []
    progress.close()
    try:    # a person's reading of a held grade (python -m grader.reviews) publishes it
        for row in reviews.apply(root, rows):
            print(f"[review] {row.student}/{row.assignment}: released after review", flush=True)
    except reviews.ReviewError as error:
        print(f"[review] {error}; every held grade stays held", file=sys.stderr)

    print()
    print(reports.format_table(rows))
    if rows:
        csv_path = reports.write_grades_csv(rows, args.csv or root / "grades.csv")
        print(f"\ngrades written to {csv_path}; feedback in {root / 'feedback'}/")
        _write_lms_exports(root, db_url, rows)
    print(f"total: {len(rows)} submission(s) in {time.perf_counter() - started:.1f} s")
    return (1 if release_failed else 0), rows



def main(argv=None) -> int:
    return run(argv)[0]

if __name__ == "__main__":
    sys.exit(main())
