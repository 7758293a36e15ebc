"""Grading on Slurm jobs (grader/slurm.py), on a real one-node Slurm cluster on loopback.

``tools.local_slurm`` starts Debian's munged, slurmctld and slurmd as root, with their own files
and ports (set-up installs the packages). Then ``python -m grader --slurm grading`` grades
Exercise 2 of the example class through ``dask_jobqueue.SLURMCluster`` jobs:

* over TLS with the course's certificates, the scores equal local grading's
  (tests/test_cluster_grading.py's EXPECTED), and every job is gone when the command ends;
* a job cancelled with ``scancel`` in the middle of a submission loses nothing: the submission
  is graded again by the job adapt starts next, with the same scores and one gradebook row each;
* a job that cannot start (a partition that does not exist, more memory than the node has) is
  refused at once with Slurm's reason, nothing queued or written, rather than waited for.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline import copy_of_repository
from tests.test_cluster_grading import EXPECTED, PARTS, _grades, _submission_counts
from tools import local_slurm

pytestmark = pytest.mark.pipeline
SLURM = ["--slurm", local_slurm.PARTITION, "--slurm-host", "127.0.0.1", "--assignment", "exercise2", "--no-feedback"]
EXERCISE2 = {key: value for key, value in EXPECTED.items() if key[1] == "exercise2"}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = local_slurm.missing()
    if reason:
        if os.environ.get("CI") or (os.geteuid() == 0 and any(Path(d, "apt-get").exists() for d in ("/usr/bin",))):
            pytest.fail(f"{reason}; run `make setup`")
        pytest.skip(reason)
    with local_slurm.LocalSlurm(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def _command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "--course-root", str(root), *SLURM, *extra]


def _wait_until_gone(slurm, timeout_s: float = 60) -> list:
    deadline = time.monotonic() + timeout_s
    while slurm.jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    return slurm.jobs()


def test_the_class_graded_on_slurm_jobs_over_tls_scores_as_local(slurm, tmp_path):
    from grader.certificates import make_certificates

    root = copy_of_repository(tmp_path / "course", *PARTS)
    certs = tmp_path / "certs"
    make_certificates(certs)
    done = subprocess.run(_command(root, "--slurm-jobs", "1:2", "--certs", str(certs)), env=slurm.env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + slurm.log_tail()
    assert "[slurm] first grading job up after" in done.stdout and "scheduler tls://127.0.0.1:" in done.stdout
    assert re.search(r"graded, \d+/25 \([\d.]+ s on tls://127\.0\.0\.1:\d+\)", done.stdout), done.stdout
    assert {key: float(row["score"]) for key, row in _grades(root).items()} == EXERCISE2
    assert _wait_until_gone(slurm) == [], "the command left jobs in the queue"


def test_a_job_cancelled_mid_submission_loses_nothing(slurm, tmp_path):
    root = copy_of_repository(tmp_path / "course", *PARTS)
    log = open(tmp_path / "grader.log", "w+")
    grading = subprocess.Popen(_command(root, "--slurm-jobs", "1:1"), env=slurm.env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # Wait until the class's submissions are being graded (after the solution check), then let
        # the kernel get into the notebook before the job is cancelled under it.
        deadline = time.monotonic() + 600
        while "submission(s)" not in Path(log.name).read_text() and time.monotonic() < deadline:
            assert grading.poll() is None, Path(log.name).read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(6)
        running = [job for job in slurm.jobs() if job["state"] == "RUNNING"]
        assert running, f"no running job to cancel: {slurm.jobs()}"
        subprocess.run(["scancel", *(job["id"] for job in running)], env=slurm.env, check=True)
        status = grading.wait(timeout=1200)
    finally:
        if grading.poll() is None:
            grading.kill()
        log.close()
    output = Path(log.name).read_text()
    assert status == 0, output[-3000:] + slurm.log_tail()
    assert {key: float(row["score"]) for key, row in _grades(root).items()} == EXERCISE2
    assert _submission_counts("sqlite:///" + str(root / "gradebook.db")) == {key: 1 for key in EXERCISE2}
    allocated = [int(line.split("JobId=")[1].split()[0]) for line in
                 (slurm.folder / "logs" / "slurmctld.log").read_text().splitlines() if "sched: Allocate JobId=" in line]
    assert max(allocated) > max(int(job["id"]) for job in running), "no job was started after the cancelled one"


@pytest.mark.parametrize("extra, words", [
    (["--slurm", "no-such-partition"], "invalid partition"),
    (["--slurm-memory-mb", "99999999"], "Requested node configuration is not available"),
])
def test_a_job_that_cannot_start_is_refused_at_once(slurm, tmp_path, extra, words):
    root = copy_of_repository(tmp_path / "course", *PARTS)
    started = time.monotonic()
    done = subprocess.run(_command(root, *extra), env=slurm.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert words in done.stderr and "nothing was queued" in done.stderr, done.stderr
    assert time.monotonic() - started < 120
    assert slurm.jobs() == [] and not (root / "gradebook.db").exists()
