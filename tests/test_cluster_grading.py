"""Grading on a Dask cluster, with real processes on loopback, and the gradebook in PostgreSQL.

A scheduler (`python -m grader.scheduler`) and two workers (`python -m grader.worker`, each one process) are started
from the project's venv; nothing is shared with them but the scheduler's address (each
submission travels with its files, grader/cluster.py).

* The example class graded through the cluster into a PostgreSQL gradebook (a real server,
  tests/postgres_server.py) gives the same scores, grades.csv, feedback and autograded notebooks
  as the local path grading the same class into the same database first; the second grading
  leaves one submission per student and assignment (idempotent).
* A worker killed (SIGKILL, by its PID) in the middle of a submission: the submission is graded
  again elsewhere, with the scores of a run without the fault, one gradebook row each, no
  half-copied autograded folder.
* The scheduler killed mid-run: the command stops with exit status 4 and a message, every
  finished result written and nothing half-written; a second run (new scheduler) grades every
  submission again, with the same scores.
* A worker without the models: `python -m grader.worker` refuses to start; a plain `dask worker`
  with the same fault is left out by the grader (withdrawn) and grades nothing.
"""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.pipeline import copy_of_repository
from tests.postgres_server import postgres_db_url, postgres_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.pipeline

VENV_BIN = Path(sys.executable).parent
PARTS = ("nbgrader_config.py", "students.csv", "source", "submitted")
EXPECTED = {("alice", "exercise1"): 54, ("alice", "exercise2"): 25, ("bob", "exercise1"): 45, ("bob", "exercise2"): 19}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A scheduler and workers as real processes on loopback, each in its own process group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.processes: list[subprocess.Popen] = []
        self.scheduler = self._start("scheduler", [sys.executable, "-m", "grader.scheduler", "--host", "127.0.0.1",
                                                   "--port", self.address.rsplit(":", 1)[1], "--no-dashboard"])

    def _start(self, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        self.processes.append(process)
        return process

    def add_worker(self, name: str, *extra: str, env: dict | None = None, plain: bool = False) -> subprocess.Popen:
        if plain:     # dask's own command, without grader.worker's environment check
            command = [str(VENV_BIN / "dask"), "worker", self.address, "--nthreads", "1", "--name", name,
                       "--resources", "grading_mb=8000", "--no-dashboard"]
        else:
            command = [sys.executable, "-m", "grader.worker", self.address, "--nworkers", "1",
                       "--kernel-threads", "1", "--name", name, *extra]
        return self._start(name, command, env)

    def client(self, workers: int):
        from distributed import Client

        client = Client(self.address, timeout="30s", set_as_default=False)
        client.wait_for_workers(workers, timeout=120)
        return client

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=15)

    def close(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    running = Cluster(folder)
    try:
        running.add_worker("w1")
        running.add_worker("w2")
        client = running.client(2)
        client.close()
        yield running
    finally:
        running.close()


def test_the_scheduler_and_workers_run_with_dasks_bookkeeping_slowed(cluster):
    """grader.scheduler and grader.worker start Dask with QUIET_DASK_ENV (a launcher that forgot it,
    or a worker whose nanny dropped the environment, fails here)."""
    import dask

    from grader.cluster import QUIET_DASK_ENV

    def settings():
        return {"tick": str(dask.config.get("distributed.admin.tick.interval")),
                "profile": bool(dask.config.get("distributed.worker.profile.enabled"))}

    assert QUIET_DASK_ENV["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == "1s"
    client = cluster.client(2)
    try:
        assert client.run_on_scheduler(settings)["tick"] == "1s"
        on_workers = client.run(settings)
        assert len(on_workers) == 2
        assert all(s == {"tick": "1s", "profile": False} for s in on_workers.values()), on_workers
    finally:
        client.close()


def _grade(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "--course-root", str(root), *args],
                          capture_output=True, text=True, timeout=1800)


def _grades(root: Path) -> dict:
    with open(root / "grades.csv", newline="") as handle:
        return {(r["student"], r["assignment"]): {k: v for k, v in r.items() if k != "seconds"}
                for r in csv.DictReader(handle)}


def _cells(path: Path) -> list:
    """What grading decides in a notebook: each cell's source and nbgrader metadata, and the kinds
    of its outputs (their text holds timings and widget ids that differ from run to run, and how
    a cell's printing is split into stream outputs depends on timing: consecutive ones are one)."""
    import nbformat

    def kinds(outputs):
        seen = []
        for output in outputs:
            kind = (output.output_type, output.get("ename"), output.get("name"))
            if not (kind[0] == "stream" and seen and seen[-1] == kind):
                seen.append(kind)
        return seen

    return [(c.cell_type, c.source, c.metadata.get("nbgrader"), kinds(c.get("outputs", [])))
            for c in nbformat.read(path, as_version=4).cells]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _results(root: Path, student: str, assignment: str) -> dict:
    data = json.loads((root / "feedback" / student / assignment / "results.json").read_text())
    return {k: v for k, v in data.items() if k != "seconds"}


def _submission_counts(db_url: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        return {(s.student.id, s.assignment.name): len(s.notebooks) for a in gradebook.assignments
                for s in a.submissions}


def test_cluster_into_postgres_matches_local_and_grading_twice_changes_nothing(cluster, tmp_path, postgres_db_url):
    local = copy_of_repository(tmp_path / "local", *PARTS)
    first = _grade(local, "--db-url", postgres_db_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert {key: float(row["score"]) for key, row in _grades(local).items()} == EXPECTED
    assert _submission_counts(postgres_db_url) == {key: 1 for key in EXPECTED}
    assert not (local / "gradebook.db").exists(), "the PostgreSQL gradebook was asked for, not a sqlite file"

    remote = copy_of_repository(tmp_path / "remote", *PARTS)
    second = _grade(remote, "--scheduler", cluster.address, "--db-url", postgres_db_url)
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"on tcp://127\.0\.0\.1:\d+\)", second.stdout), "rows should name the worker that graded them"
    assert _grades(remote) == _grades(local)
    assert _submission_counts(postgres_db_url) == {key: 1 for key in EXPECTED}, "grading twice must not add rows"
    for student, assignment in EXPECTED:
        assert _results(remote, student, assignment) == _results(local, student, assignment)
        for folder in ("autograded", "feedback"):
            here, there = (r / folder / student / assignment for r in (local, remote))
            assert _files(there) == _files(here), f"{folder}/{student}/{assignment}: other files"
        notebook = Path("autograded", student, assignment, f"{assignment}.ipynb")
        assert _cells(remote / notebook) == _cells(local / notebook), f"{notebook} differs"
    leftovers = [p for p in remote.rglob(".*.incoming")] + [p for p in remote.rglob(".*.old")]
    assert not leftovers


def _prepared_course(folder: Path, pairs) -> Path:
    """A course copy whose gradebook knows the assignments (released), ready for grade_submissions."""
    from grader import pipeline

    root = copy_of_repository(folder, *PARTS)
    for assignment in sorted({a for _, a in pairs}):
        assert pipeline.generate_release(root, assignment)["success"]
    return root


def _kill_when_running(client, delay_s: float, killed: list) -> None:
    """Wait until a submission runs on some worker, let its kernel start, then SIGKILL that worker."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            time.sleep(delay_s)
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(busy[0])
            return
        time.sleep(0.2)


def test_a_worker_killed_mid_submission_is_graded_again_elsewhere(cluster, tmp_path):
    from grader import dispatch
    from grader.gradebook import sqlite_url

    pairs = [("alice", "exercise2"), ("bob", "exercise2")]
    root = _prepared_course(tmp_path / "course", pairs)
    client = cluster.client(2)
    try:
        killed: list[str] = []
        killer = threading.Thread(target=_kill_when_running, args=(client, 8.0, killed))
        killer.start()
        rows = dispatch.grade_submissions(root, pairs, client=client, sandbox=True, feedback=True)
        killer.join()
    finally:
        client.close()
    assert killed, "no worker was killed: the fault was not injected"
    assert [(r.student, r.assignment, r.status, r.score) for r in rows] == \
        [(s, a, "graded", EXPECTED[s, a]) for s, a in pairs]
    assert all(r.worker != killed[0] for r in rows), "a killed worker cannot have sent a result"
    assert _submission_counts(sqlite_url(root)) == {pair: 1 for pair in pairs}
    from grader import handin

    for student, assignment in pairs:    # the notebook and the course's own files (nbgrader copies them), nothing half-sent
        assert sorted(p.name for p in (root / "autograded" / student / assignment).iterdir()) == \
            sorted(handin.course_files(root, assignment))
    cluster.client(2).close()      # the nanny has restarted the killed worker: two again for the next tests


def test_the_scheduler_gone_stops_the_run_and_a_second_run_grades_everything_again(tmp_path):
    root = copy_of_repository(tmp_path / "course", *PARTS)
    first_cluster = Cluster(tmp_path)
    try:
        first_cluster.add_worker("a", "--nworkers", "2")      # the later flag wins: two processes
        first_cluster.client(2).close()
        run = subprocess.Popen([sys.executable, "-m", "grader", "--course-root", str(root), "--assignment",
                                "exercise2", "--scheduler", first_cluster.address],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        graded_lines = []
        for line in run.stdout:
            if line.startswith("[grade] ") and ": graded" in line:
                graded_lines.append(line)
                Cluster.stop(first_cluster.scheduler)       # mid-run: the other submission is still running
                break
        stdout, stderr = run.communicate(timeout=300)
    finally:
        first_cluster.close()
    assert graded_lines, "no submission finished before the scheduler was stopped"
    assert run.returncode == 4, stdout + stderr
    assert "STOPPED: the scheduler went away" in stderr and "Run the command again" in stderr
    done = re.match(r"\[grade\] (\w+)/exercise2", graded_lines[0]).group(1)
    from grader.gradebook import sqlite_url

    assert _submission_counts(sqlite_url(root)) == {(done, "exercise2"): 1}, "only the finished submission is written"
    assert sorted(p.name for p in (root / "autograded").iterdir()) == [done]
    assert not list(root.rglob(".*.incoming"))

    second_cluster = Cluster(tmp_path)
    try:
        second_cluster.add_worker("b", "--nworkers", "2")
        second_cluster.client(2).close()
        again = _grade(root, "--assignment", "exercise2", "--scheduler", second_cluster.address)
    finally:
        second_cluster.close()
    assert again.returncode == 0, again.stdout + again.stderr
    assert {key: float(r["score"]) for key, r in _grades(root).items()} == \
        {key: score for key, score in EXPECTED.items() if key[1] == "exercise2"}
    assert _submission_counts(sqlite_url(root)) == {("alice", "exercise2"): 1, ("bob", "exercise2"): 1}


def test_a_worker_without_models_is_refused_and_left_out(cluster, tmp_path):
    from grader import cluster as cluster_module
    from grader.gradebook import sqlite_url

    broken_env = {"COURSE_MODELS_DIR": str(tmp_path / "no-models")}
    refused = subprocess.run([sys.executable, "-m", "grader.worker", cluster.address], capture_output=True,
                             text=True, env={**os.environ, **broken_env}, timeout=120)
    assert refused.returncode == 2 and "REFUSING TO START" in refused.stderr and "no-models" in refused.stderr

    broken = cluster.add_worker("broken", env=broken_env, plain=True)
    pairs = [("alice", "exercise2")]
    root = _prepared_course(tmp_path / "course", pairs)
    client = cluster.client(3)
    said: list[str] = []
    try:
        broken_address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                              if w.get("name") == "broken")
        rows = cluster_module.grade_on_cluster(root, pairs, client, db_url=sqlite_url(root), feedback=False,
                                               say=said.append)
        resources = client.scheduler_info(n_workers=-1)["workers"][broken_address]["resources"]
    finally:
        client.close()
        Cluster.stop(broken)
    assert [(r.status, r.score) for r in rows] == [("graded", 25.0)]
    assert rows[0].worker and rows[0].worker != broken_address
    assert [line for line in said if broken_address in line and "no-models" in line], said
    assert resources.get("grading_mb", 0) == 0, "the broken worker still advertises room for submissions"
