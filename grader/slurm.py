"""Grading on a Slurm cluster: grading workers as Slurm jobs that come and go with the queue.

    .venv/bin/python -m grader --slurm PARTITION [--slurm-jobs 1:8] [--slurm-memory-mb 7168]
                               [--slurm-host login1 --certs certs/]

``python -m grader --slurm`` starts a Dask scheduler in its own process (the machine you grade
from: a login node) and a ``dask_jobqueue.SLURMCluster`` whose jobs each run one grading worker
(``python -m grader.worker``: the environment check, one submission at a time, the sandbox's
memory as its ``grading_mb``) from this checkout and its venv, which every node must see at the
same path (a shared filesystem). Then everything goes as with ``--scheduler`` (grader/cluster.py):
the solution check and the submissions are graded on the workers, and only this process writes.

- **Before any job is queued**, the job script is checked with ``sbatch --test-only``: a
  partition that does not exist, or more memory or cores than a node has, is refused at once
  with Slurm's own words, rather than waiting for a job that can never start.
- **Scaling** (``adapt``): at least MIN jobs and at most MAX, following the submissions
  waiting; a job idle for ``--slurm-idle-s`` is given back. At the end every job is cancelled.
- **A job that ends** mid-submission (``scancel``, preemption, its time limit): its submission
  goes back to the queue and is graded by another job (Dask reschedules it; adapt starts a new
  job if needed); nothing is written for the lost attempt.
- **A job that does not start** within ``--slurm-start-timeout-s``: the command stops (exit
  status 4) and names each job's state and Slurm's reason for it.
- **TLS**: beyond this machine, the workers reach the scheduler over the network, so
  ``--slurm-host`` other than loopback needs ``--certs`` (``python -m grader.certificates``), or
  ``--insecure-tcp``, as ``--scheduler`` does.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grader.cluster import ClusterError

CODE_ROOT = Path(__file__).resolve().parent.parent     # the checkout whose grader/ the jobs run
HEADROOM_MB = 1024          # a job's memory beyond the sandbox's limit: the worker process itself


@dataclass
class SlurmSettings:
    partition: str
    min_jobs: int = 1
    max_jobs: int = 4
    memory_mb: int | None = None          # per job (default: the sandbox's limit + HEADROOM_MB)
    cores: int = 1                        # per job: one submission's kernel threads
    walltime: str = "02:00:00"
    account: str | None = None
    host: str = "127.0.0.1"               # where the jobs reach this machine's scheduler
    certs: Path | None = None
    insecure_tcp: bool = False
    idle_s: float = 60.0
    start_timeout_s: float = 600.0
    log_directory: Path | None = None

    def check(self) -> None:
        """Refuse settings that cannot work, before anything is started."""
        from grader.certificates import is_loopback_address

        if not 1 <= self.min_jobs <= self.max_jobs:
            raise ClusterError(f"--slurm-jobs {self.min_jobs}:{self.max_jobs}: give MIN:MAX with 1 <= MIN <= MAX "
                               "(at least one job waits for the submissions, so the grader never waits for a "
                               "worker that no queued work would start)")
        if self.cores < 1:
            raise ClusterError(f"--slurm-cores {self.cores}: at least 1")
        if self.certs is None and not self.insecure_tcp and not is_loopback_address(f"tcp://{self.host}:0"):
            raise ClusterError(f"--slurm-host {self.host}: the jobs would reach the scheduler over plain TCP, and so "
                               "could anyone else on that network. Give --certs DIR (python -m "
                               "grader.certificates DIR; the nodes need the folder too), or --insecure-tcp")


def _security(certs: Path):
    from distributed.security import Security

    from grader import certificates

    ca, grader_cert, grader_key = certificates.check(certs, "grader")
    _, scheduler_cert, scheduler_key = certificates.check(certs, "scheduler")
    _, worker_cert, worker_key = certificates.check(certs, "worker")
    return Security(tls_ca_file=str(ca), tls_client_cert=str(grader_cert), tls_client_key=str(grader_key),
                    tls_scheduler_cert=str(scheduler_cert), tls_scheduler_key=str(scheduler_key),
                    tls_worker_cert=str(worker_cert), tls_worker_key=str(worker_key), require_encryption=True)


def make_cluster(settings: SlurmSettings, sandbox_memory_mb: int):
    """The ``SLURMCluster`` (no job queued yet), its job script checked by ``sbatch --test-only``."""
    from dask_jobqueue import SLURMCluster

    from grader.certificates import is_loopback_address

    settings.check()
    memory_mb = settings.memory_mb or sandbox_memory_mb + HEADROOM_MB
    if memory_mb - HEADROOM_MB < sandbox_memory_mb:
        raise ClusterError(f"--slurm-memory-mb {memory_mb}: a job needs the sandbox's limit ({sandbox_memory_mb} MiB, "
                           f"c.Sandbox.memory_limit_mb) + {HEADROOM_MB} MiB for its worker process")
    security = _security(settings.certs) if settings.certs else None
    log_directory = settings.log_directory or Path(tempfile.mkdtemp(prefix="course-slurm-logs-"))
    cluster = SLURMCluster(
        queue=settings.partition, account=settings.account, cores=settings.cores, processes=1,
        memory=f"{memory_mb}MiB", walltime=settings.walltime, python=sys.executable,
        worker_command="grader.worker",
        # One grading process per job; its memory for grading is the sandbox's limit.
        worker_extra_args=["--nworkers", "1", "--memory-mb", str(memory_mb - HEADROOM_MB),
                           "--kernel-threads", str(settings.cores),
                           # A one-machine cluster on loopback: the workers listen there too.
                           *(["--host", "127.0.0.1"] if is_loopback_address(f"tcp://{settings.host}:0") else [])],
        job_script_prologue=[f"cd {shlex.quote(str(CODE_ROOT))}"],
        # No dashboard; the scheduler's small HTTP server (health, metrics) stays on loopback.
        scheduler_options={"host": settings.host, "dashboard": False, "dashboard_address": "127.0.0.1:0"},
        protocol="tls://" if security else "tcp://", security=security,
        log_directory=str(log_directory), death_timeout=60, job_name="course-grading")
    cluster.course_log_directory = log_directory
    try:
        check_job_script(cluster.job_script())
    except ClusterError:
        cluster.close()
        raise
    return cluster


def check_job_script(script: str) -> None:
    """``sbatch --test-only`` on the job script: Slurm's refusal, if any, as a ``ClusterError``."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="course-grading-") as handle:
        handle.write(script)
        handle.flush()
        try:
            done = subprocess.run(["sbatch", "--test-only", handle.name], capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise ClusterError("sbatch not found: run the grader on a machine of the Slurm cluster "
                               "(a login node)") from None
    if done.returncode != 0:
        said = " ".join(line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip())
        raise ClusterError(f"Slurm refuses the grading job ({said}); nothing was queued. Check --slurm "
                           "(the partition), --slurm-memory-mb and --slurm-cores against `sinfo -o '%P %c %m'`")


def job_states(cluster) -> str:
    """Each of the cluster's jobs with its state and Slurm's reason, for an error message."""
    ids = [job.job_id for job in list(cluster.workers.values()) if getattr(job, "job_id", None)]
    if not ids:
        return "no job in the queue"
    done = subprocess.run(["squeue", "-h", "-o", "%i %T %r", "-j", ",".join(ids)], capture_output=True, text=True)
    return "; ".join(done.stdout.strip().splitlines()) or f"jobs {', '.join(ids)} are no longer in the queue"


def start(settings: SlurmSettings, sandbox_memory_mb: int, say=print):
    """The cluster and a client of it, once a first job's worker is up (the cold start is said)."""
    from distributed import Client

    cluster = make_cluster(settings, sandbox_memory_mb)
    try:
        started = time.perf_counter()
        cluster.scale(jobs=settings.min_jobs)
        client = Client(cluster, set_as_default=False, security=cluster.security)
        deadline = time.monotonic() + settings.start_timeout_s
        while not client.scheduler_info(n_workers=-1)["workers"]:
            if time.monotonic() > deadline:
                client.close()
                raise ClusterError(f"no grading job started within {settings.start_timeout_s:.0f} s "
                                   f"({job_states(cluster)}); job logs in {cluster.course_log_directory}")
            time.sleep(0.5)
        cold = time.perf_counter() - started
        # A job idle for idle_s is given back (adapt checks every second; it acts after wait_count checks).
        cluster.adapt(minimum_jobs=settings.min_jobs, maximum_jobs=settings.max_jobs, interval="1s",
                      wait_count=max(1, int(settings.idle_s)))
        say(f"[slurm] first grading job up after {cold:.1f} s; jobs {settings.min_jobs} to {settings.max_jobs} "
            f"in partition {settings.partition}, scheduler {cluster.scheduler_address}", flush=True)
        client.course_cold_start_s = cold
        client.course_worker_wait_s = settings.start_timeout_s      # a job ended: its successor may queue
        return cluster, client
    except BaseException:
        cluster.close()
        raise
