"""Many submissions at once: on this machine, or on a Dask cluster.

``grade_submissions`` grades several submissions in parallel. On this machine
(``default_workers``: bounded by the cores and by memory) each runs in its own process forked
from a server that imported nbgrader once, writing the course folders itself; gradebook writes
take turns (``grader.gradebook.serialised_gradebook``). Given a Dask ``client`` it sends them to
the cluster's workers instead (``grader/cluster.py``) and writes what comes back.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from grader.gradebook import ensure_gradebook, serialised_gradebook
from grader.pipeline import autograde_submission, quiet_stdio, resolve_sandbox, sandbox_memory_mb
from grader.reports import GradeRow


def default_workers(n_submissions: int, course_root: Path | None = None, overrides: dict | None = None) -> int:
    """Workers bounded by the cores this process may use and by memory (one sandbox limit each)."""
    cores = len(os.sched_getaffinity(0))
    memory_mb = sandbox_memory_mb(course_root, overrides)
    try:
        available_mb = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
        by_memory = max(1, available_mb // max(memory_mb, 1))
    except (ValueError, OSError):
        by_memory = cores
    return max(1, min(cores, by_memory, n_submissions))


WORKER_PRELOAD = ["grader.pipeline", "grader.dispatch", "grader.sandbox", "nbgrader.apps", "nbgrader.preprocessors"]


def worker_context():
    """Workers fork from a clean server process that imported nbgrader once (seconds saved per worker).

    ``forkserver`` rather than ``fork``: the grader may hold threads, event loops and sockets
    that a forked child must not share. Call early (``start_worker_server``) to overlap the
    server's imports with other work.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


def start_worker_server() -> None:
    """Start the worker server now, in the background, so parallel grading starts faster."""
    from multiprocessing import forkserver

    worker_context()
    forkserver.ensure_running()


def _worker_init() -> None:
    serialised_gradebook()


def _grade_in_worker(course_root, student, assignment, overrides, feedback, sandbox, kernel_threads=0,
                     db_url=None) -> GradeRow:
    try:
        with quiet_stdio():
            return autograde_submission(course_root, student, assignment, overrides, feedback, sandbox,
                                        kernel_threads=kernel_threads, db_url=db_url)
    except Exception as error:   # a grader bug must not lose the other submissions
        return GradeRow(student=student, assignment=assignment, status="not graded",
                        reason=f"grader error: {type(error).__name__}: {error}")


def grade_submissions(course_root: Path, pairs: list[tuple[str, str]], workers: int | None = None,
                      overrides: dict | None = None, feedback: bool = True, sandbox: bool | str = "auto",
                      on_row=None, on_start=None, db_url: str | None = None, client=None) -> list[GradeRow]:
    """Autograde every ``(student, assignment)``; rows come back in the order of ``pairs``.

    ``workers`` > 1 grades that many submissions at once, each in its own process (default:
    ``default_workers``), each kernel told to use its share of the cores for math libraries.
    ``on_start(index)`` is called as each one is sent, ``on_row(row)`` as each one finishes.
    ``sandbox`` (see ``autograde_submission``) is decided here once, not again in each worker.
    ``db_url``: the gradebook (default: the course's sqlite file). ``client``: a Dask client;
    the cluster's workers grade (``grader.cluster.grade_on_cluster``; a sandbox there is
    required unless ``sandbox`` is False) and ``workers`` is ignored.

    From a script of your own with ``workers`` > 1, call it under ``if __name__ == "__main__":``:
    the worker processes import that script again, and an unguarded call there breaks the pool
    (``BrokenProcessPool`` for every submission).
    """
    course_root = Path(course_root).resolve()
    pairs = list(pairs)
    if not pairs:
        return []
    ensure_gradebook(course_root, db_url)
    if client is not None:
        from grader.cluster import grade_on_cluster
        from grader.gradebook import sqlite_url

        use_sandbox = sandbox[0] or bool(sandbox[1]) if isinstance(sandbox, tuple) else sandbox is not False
        return grade_on_cluster(course_root, pairs, client, db_url=db_url or sqlite_url(course_root),
                                overrides=overrides, feedback=feedback, sandbox=use_sandbox, on_row=on_row,
                                on_start=on_start)
    workers = workers or default_workers(len(pairs), course_root, overrides)
    sandbox = resolve_sandbox(sandbox)
    rows: dict[int, GradeRow] = {}
    if workers <= 1:
        for index, (student, assignment) in enumerate(pairs):
            if on_start:
                on_start(index)
            rows[index] = _grade_in_worker(course_root, student, assignment, overrides, feedback, sandbox,
                                           db_url=db_url)
            if on_row:
                on_row(rows[index])
        return [rows[i] for i in range(len(pairs))]
    context = worker_context()
    # Each kernel gets its share of the cores for its math libraries (OMP_NUM_THREADS...),
    # so that parallel kernels do not oversubscribe the machine.
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init) as pool:
        futures = {pool.submit(_grade_in_worker, course_root, student, assignment, overrides, feedback, sandbox,
                               threads, db_url): i
                   for i, (student, assignment) in enumerate(pairs)}
        if on_start:
            for index in range(min(workers, len(pairs))):
                on_start(index)
        for future in as_completed(futures):
            index = futures[future]
            try:
                rows[index] = future.result()
            except Exception as error:   # the worker process itself died
                student, assignment = pairs[index]
                rows[index] = GradeRow(student=student, assignment=assignment, status="not graded",
                                       reason=f"grading worker failed: {type(error).__name__}: {error}")
            if on_row:
                on_row(rows[index])
            if on_start and len(rows) + workers <= len(pairs):
                on_start(len(rows) + workers - 1)     # the pool takes the next one
    return [rows[i] for i in range(len(pairs))]
