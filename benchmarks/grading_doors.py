"""The example class graded through each door: the same scores, and what each door costs.

Each door grades every submission of ``submitted/`` (alice and bob, both exercises) on its own
fresh copy of the course (own gradebook, own remembered solution checks, so each pays the
solution check once per exercise), one submission at a time unless said otherwise:

* ``python -m grader --no-feedback --workers 1`` and with its default workers (release included);
* ``.venv/bin/nbgrader autograde <exercise>`` for each exercise, after ``nbgrader
  generate_assignment`` (timed apart);
* the Formgrader's autograde button: the HTTP request its button sends
  (``POST /formgrader/api/submission/<exercise>/<student>/autograde``) to a Jupyter server running
  in the course folder, one submission after another (the server's start is timed apart).

Every door runs grader/every_door.py's path (sandbox, solution check); the benchmark fails if
two doors give any test of any submission a different score. One run each: on a busy machine,
re-run and compare.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import course_copy, row

from helpers.paths import REPO_ROOT

PARTS = ("nbgrader_config.py", "source", "submitted")
NBGRADER = str(Path(sys.executable).parent / "nbgrader")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PYTHONPATH"] = str(REPO_ROOT)       # a course copy has no grader/ of its own
    return env


def _scores(root: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(root / "gradebook.db")) as gradebook:
        return {(a.name, s.student_id): {g.name: float(g.score or 0) for nb in s.notebooks for g in nb.grades}
                for a in gradebook.assignments for s in gradebook.assignment_submissions(a.name)}


def _pairs(root: Path) -> list[tuple[str, str]]:
    from grader.pipeline import discover_submissions

    return discover_submissions(root)


def _run(command: list[str], root: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")
    return time.perf_counter() - start


def _course_grader(root: Path, *args: str) -> float:
    return _run([sys.executable, "-m", "grader", "--course-root", str(root), "--no-feedback", *args], REPO_ROOT)


def _nbgrader(root: Path) -> tuple[float, float]:
    exercises = sorted({a for _, a in _pairs(root)})
    release = sum(_run([NBGRADER, "generate_assignment", a], root) for a in exercises)
    grading = sum(_run([NBGRADER, "autograde", a], root) for a in exercises)
    return release, grading


def _formgrader(root: Path) -> tuple[float, float]:
    """The button's request for each submission, to a Jupyter server in the course folder."""
    for exercise in sorted({a for _, a in _pairs(root)}):
        _run([NBGRADER, "generate_assignment", exercise], root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = hashlib.sha256(os.urandom(16)).hexdigest()[:32]
    home = root.parent / "jupyter-home"
    env = {**_env(), "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter")}
    command = [str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    start = time.perf_counter()
    with open(root.parent / "jupyter.log", "w") as log:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        headers = {"Authorization": f"token {token}"}
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers=headers),
                                       timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((root.parent / "jupyter.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        started = time.perf_counter() - start
        start = time.perf_counter()
        for student, exercise in _pairs(root):
            url = f"http://127.0.0.1:{port}/formgrader/api/submission/{exercise}/{student}/autograde"
            request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=1800) as response:
                answer = json.loads(response.read())
            if not answer.get("success"):
                raise RuntimeError(f"the Formgrader could not grade {student}/{exercise}: {answer.get('error')}")
        return started, time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> list[dict]:
    from grader import sandbox

    if sandbox.unavailable_reason():
        raise RuntimeError(f"sandbox unavailable ({sandbox.unavailable_reason()}): run `make setup`")
    rows, scores = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {door: course_copy(Path(tmp) / door / "course", PARTS)
                 for door in ("grader_sequential", "grader_parallel", "nbgrader", "formgrader")}
        count = len(_pairs(roots["nbgrader"]))
        method = f"{count} submissions of the example class, fresh course copy, solution checks included"
        seconds = _course_grader(roots["grader_sequential"], "--workers", "1")
        rows.append(row("grading_doors", "python -m grader --workers 1", seconds, "s", method + ", release included"))
        seconds = _course_grader(roots["grader_parallel"])
        rows.append(row("grading_doors", "python -m grader (default workers)", seconds, "s",
                        method + ", release included"))
        release, seconds = _nbgrader(roots["nbgrader"])
        rows.append(row("grading_doors", "nbgrader autograde <exercise>, each exercise", seconds, "s",
                        method + f"; nbgrader generate_assignment before it took {release:.1f} s"))
        started, seconds = _formgrader(roots["formgrader"])
        rows.append(row("grading_doors", "Formgrader autograde button, each submission", seconds, "s",
                        method + f"; the button's POST request in turn; the Jupyter server started in {started:.1f} s"))
        for door, root in roots.items():
            scores[door] = _scores(root)
    first = scores["grader_sequential"]
    differ = [door for door, found in scores.items() if found != first]
    if differ or not first:
        raise RuntimeError(f"doors {differ} graded differently from python -m grader: {scores}")
    total = sum(sum(cells.values()) for cells in first.values())
    rows.append(row("grading_doors", "points over the class, every door", total, "points",
                    "the same score for every test of every submission through the four doors (checked)"))
    return rows


if __name__ == "__main__":
    for figure in main():
        print(figure)
