"""Start grading workers on this machine for a Dask scheduler (``grader/cluster.py``).

    .venv/bin/python -m grader.worker tls://HEAD:8786 --certs certs/  # as many as cores and memory allow
    .venv/bin/python -m grader.worker tls://HEAD:8786 --certs certs/ --nworkers 2 --kernel-threads 4
    .venv/bin/python -m grader.worker tcp://127.0.0.1:8786            # a scheduler on this machine

``--certs DIR`` holds ca.pem, worker.pem and worker-key.pem (``python -m grader.certificates``):
the worker then talks TLS and accepts only peers with a certificate of the course's CA. A plain
``tcp://`` scheduler beyond loopback is refused unless ``--insecure-tcp`` says so.

First checks that this machine can grade (the sandbox works, the models are in place, nbgrader
imports) and refuses to start, exit status 2, when it cannot. Then runs ``dask worker`` with one
thread per worker process (one submission at a time: nbgrader is not thread-safe), ``--nworkers``
processes (default: the cores, fewer when memory holds fewer sandboxes) each advertising its share
of memory as the resource ``grading_mb``; every submission asks for the sandbox's memory limit,
so a process never runs more submissions than its memory holds. Dask's own memory manager is
off: the sandbox caps each kernel (its cgroup or rlimits), and the worker process stays small.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grader.certificates import CertificateError


def plan(nworkers: int | None, memory_mb: int | None, limit_mb: int) -> tuple[int, int]:
    """``(worker processes, MiB each)`` for this machine: bounded by its cores and by its memory."""
    cores = len(os.sched_getaffinity(0))
    total_mb = memory_mb or (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20)
    fit = max(0, total_mb // max(limit_mb, 1))
    count = nworkers or min(cores, fit)
    if count < 1 or total_mb // count < limit_mb:
        raise SystemExit(f"[worker] this machine has {total_mb} MiB for grading; {nworkers or 'one'} worker "
                         f"process(es) need {limit_mb} MiB each (the sandbox's memory limit, "
                         "c.Sandbox.memory_limit_mb): start fewer workers or give them more memory")
    return count, total_mb // count


def tls_arguments(scheduler: str, certs: Path | None, insecure_tcp: bool) -> list[str]:
    """``dask worker``'s TLS options for ``scheduler``, or ``CertificateError`` saying what is missing."""
    from grader.certificates import address_problem, dask_cli_args

    problem = address_problem(scheduler, certs, insecure_tcp, "worker")
    if problem:
        raise CertificateError(problem)
    return dask_cli_args(certs, "worker") if scheduler.startswith("tls://") else []


def main(argv=None) -> int:
    from grader.cluster import GRADING_RESOURCE, QUIET_DASK_ENV, WORKER_MEMORY_ENV, worker_problem
    from grader.pipeline import sandbox_memory_mb

    parser = argparse.ArgumentParser(prog="python -m grader.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("scheduler", help="the Dask scheduler's address, e.g. tcp://head:8786")
    parser.add_argument("--nworkers", type=int, default=None, help="worker processes (default: as many as "
                        "cores, fewer if memory holds fewer sandboxes)")
    parser.add_argument("--memory-mb", type=int, default=None, help="memory for grading on this machine "
                        "(default: all of it)")
    parser.add_argument("--kernel-threads", type=int, default=None, help="math-library threads of each "
                        "kernel (default: the cores shared among the worker processes)")
    parser.add_argument("--name", default=None, help="worker name (Dask adds -0, -1... per process)")
    parser.add_argument("--no-sandbox", action="store_true", help="for `python -m grader --sandbox off` only")
    parser.add_argument("--certs", type=Path, default=None, help="folder with ca.pem, worker.pem, worker-key.pem "
                        "(python -m grader.certificates): TLS with mutual authentication")
    parser.add_argument("--insecure-tcp", action="store_true", help="allow a plain tcp:// scheduler beyond "
                        "loopback (anyone who reaches it can run code here)")
    # What dask-jobqueue adds to every worker command (grader/slurm.py): taken, and passed on to Dask.
    for option in ("--death-timeout", "--protocol", "--tls-ca-file", "--tls-cert", "--tls-key", "--local-directory",
                   "--host"):
        parser.add_argument(option, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--nthreads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--memory-limit", default=None, help=argparse.SUPPRESS)   # the sandbox caps memory
    args = parser.parse_args(argv)
    if args.nthreads != 1:
        parser.error(f"--nthreads {args.nthreads}: a grading worker runs one submission at a time (nbgrader is "
                     "not thread-safe); use --nworkers for more")
    passed_on = []
    for option in ("death_timeout", "protocol", "local_directory", "tls_ca_file", "tls_cert", "tls_key", "host"):
        if getattr(args, option) is not None:
            passed_on += ["--" + option.replace("_", "-"), getattr(args, option)]
    try:
        tls = [] if args.tls_cert else tls_arguments(args.scheduler, args.certs, args.insecure_tcp)
    except CertificateError as error:
        print(f"[worker] REFUSING TO START: {error}", file=sys.stderr)
        return 2

    problem = worker_problem(None, sandbox=not args.no_sandbox)
    if problem:
        print(f"[worker] REFUSING TO START: this machine cannot grade: {problem}", file=sys.stderr)
        return 2
    limit_mb = sandbox_memory_mb()
    count, each_mb = plan(args.nworkers, args.memory_mb, limit_mb)
    threads = args.kernel_threads or max(1, len(os.sched_getaffinity(0)) // count)
    os.environ["COURSE_KERNEL_THREADS"] = str(threads)     # read by grader.cluster.grade_task
    for name, value in {**QUIET_DASK_ENV, **WORKER_MEMORY_ENV}.items():
        os.environ.setdefault(name, value)
    command = [sys.executable, "-m", "distributed.cli.dask_worker", args.scheduler,
               "--nthreads", "1", "--nworkers", str(count), "--memory-limit", f"{each_mb}MiB",
               "--resources", f"{GRADING_RESOURCE}={each_mb}", "--no-dashboard", *tls, *passed_on]
    if args.name:
        command += ["--name", args.name]
    print(f"[worker] {count} worker process(es), {each_mb} MiB and kernels of {threads} thread(s) each, "
          f"for {args.scheduler}", flush=True)
    os.execv(sys.executable, command)
    return 0     # not reached


if __name__ == "__main__":
    sys.exit(main())
