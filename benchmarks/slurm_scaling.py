"""Grading workers as Slurm jobs: the cold start, scaling up with the queue, and giving idle jobs back.

On a one-node Slurm cluster started on loopback (``tools.local_slurm``, needs root and Debian's
slurm and munge packages), ``grader.slurm.start`` as ``python -m grader --slurm`` calls it,
with ``--slurm-jobs 1:2`` and a short idle time:

* cold start: from asking for the first job until its grading worker has joined the scheduler
  (sbatch, Slurm placing the job, the worker's start and environment check);
* scaling up: 4 tasks of 20 s each, each asking for a grading slot (``grading_mb`` = the
  sandbox's limit, as a submission does), sent to the cluster: the most jobs seen at once, and
  when the second job's worker joined;
* giving back: from the moment a worker has no task left while 2 jobs run until the cluster is
  back to its minimum of 1 job (``--slurm-idle-s`` 5 here; 60 by default);
* closing: from ``cluster.close()`` until Slurm's queue is empty.

Then ``python -m grader --slurm`` grades the example class's Exercise 2 (2 submissions, the
solution check included) for its wall time. One run: on a busy machine, re-run and compare.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import course_copy, row

from helpers.paths import REPO_ROOT

BENCH = "slurm scaling"
IDLE_S = 5.0
TASK_S = 20.0


def _occupy(seconds: float) -> float:
    import time as clock

    clock.sleep(seconds)
    return seconds


def _wait(predicate, timeout_s: float) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"not reached in {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.perf_counter() - start


def main() -> list[dict]:
    from grader import slurm
    from grader.cluster import GRADING_RESOURCE
    from grader.pipeline import sandbox_memory_mb
    from tools.local_slurm import LocalSlurm, PARTITION, missing

    if missing():
        raise RuntimeError(f"no local Slurm cluster: {missing()}")
    rows = []
    limit = sandbox_memory_mb()
    with tempfile.TemporaryDirectory() as tmp, LocalSlurm(Path(tmp) / "slurm") as local:
        import os

        os.environ["SLURM_CONF"] = local.env["SLURM_CONF"]      # sbatch and squeue of this process
        settings = slurm.SlurmSettings(partition=PARTITION, min_jobs=1, max_jobs=2, idle_s=IDLE_S,
                                       host="127.0.0.1", log_directory=Path(tmp) / "logs")
        cluster, client = slurm.start(settings, limit, say=lambda *a, **k: None)
        try:
            rows.append(row(BENCH, "cold start: first grading worker up", client.course_cold_start_s, "s",
                            "cluster.scale(1) until the scheduler lists the job's worker; one-node Slurm on loopback"))
            sent = time.perf_counter()
            futures = [client.submit(_occupy, TASK_S, pure=False, resources={GRADING_RESOURCE: limit})
                       for _ in range(4)]
            most, second_joined, finished = 1, None, None
            idle_since, back = None, None          # a worker with nothing to do while above the minimum
            deadline = time.perf_counter() + 600
            while (back is None or finished is None) and time.perf_counter() < deadline:
                now = time.perf_counter()
                workers = client.processing()
                jobs = len(local.jobs())
                if len(workers) > most:
                    most, second_joined = len(workers), now - sent
                if finished is None and all(f.done() for f in futures):
                    finished = now
                left = sum(not f.done() for f in futures)
                if idle_since is None and jobs > 1 and left < len(workers) and any(not k for k in workers.values()):
                    idle_since = now        # fewer tasks left than workers: one has nothing more to do
                elif idle_since is not None and jobs <= 1:
                    back = now - idle_since
                time.sleep(0.2)
            if finished is None or back is None:
                raise RuntimeError(f"the cluster did not scale back to 1 job in 600 s: {local.jobs()}")
            rows.append(row(BENCH, "most jobs at once, 4 queued tasks of 20 s", most, "jobs",
                            f"adapt(minimum_jobs=1, maximum_jobs=2); 4 x {TASK_S:.0f} s tasks took "
                            f"{finished - sent:.1f} s in all"))
            if second_joined is not None:
                rows.append(row(BENCH, "scale-up: second worker joined after", second_joined, "s",
                                "from sending the 4 tasks"))
            rows.append(row(BENCH, "idle job given back (down to the minimum, 1)", back, "s",
                            "from the first poll (every 0.2 s) at which a worker had no task and none was left "
                            "for it while 2 jobs ran, "
                            f"until squeue listed 1 job; --slurm-idle-s {IDLE_S:g}"))
        finally:
            client.close()
            closing = time.perf_counter()
            cluster.close()
        gone = _wait(lambda: not local.jobs(), 120) + (time.perf_counter() - closing)
        rows.append(row(BENCH, "close: queue empty after", gone, "s", "cluster.close() until squeue lists no job"))

        root = course_copy(Path(tmp) / "course", ("nbgrader_config.py", "source", "submitted"))
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "grader", "--course-root", str(root), "--slurm", PARTITION,
                               "--slurm-host", "127.0.0.1", "--assignment", "exercise2", "--no-feedback"],
                              cwd=REPO_ROOT, env=local.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"python -m grader --slurm exited {done.returncode}:\n{done.stderr[-2000:]}")
        rows.append(row(BENCH, "python -m grader --slurm, exercise2 of the example class", time.perf_counter() - start,
                        "s", "2 submissions, --slurm-jobs 1:4, cold start, solution check and release included"))
    return rows


if __name__ == "__main__":
    for figure in main():
        print(figure)
