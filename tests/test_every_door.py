"""Every grading door grades the same way: the Formgrader's autograde button (pressed in a real
browser), plain ``nbgrader autograde`` and ``python -m grader``.

One class (the example students alice and bob, and eve: alice's complete notebook plus a
probe cell, ``tests/door_probe.py``) is graded through each door in turn, into one course and
one gradebook. Each door must give every test of every student the same score, and the probe
must see the same nothing each time: the sandbox's user, no gradebook, no ``source/``, no other
student's submission, no connection to the grader's machine. The first door graded is the
Formgrader's button, so the solution check runs there (grader/every_door.py).

A door refuses where the sandbox cannot start (nothing run, nothing scored), and the one
explicit option, ``Sandbox.unsafe_grade_without_sandbox``, does what its name warns.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.door_probe import EXTRA_FILE, probe_output, probe_source, with_probe
from tests.pipeline import REPO_ROOT, copy_of_repository, require_sandbox
from tests.test_browser_roundtrip import JupyterServer, RUN_TIMEOUT_MS, STEP_TIMEOUT_MS, _close, \
    _formgrader_action, chromium_path

ASSIGNMENT = "exercise2"
STUDENTS = ["alice", "bob", "eve"]
NOBODY = 65534
NBGRADER = str(Path(sys.executable).parent / "nbgrader")
SCREENSHOT_DIR = Path(os.environ.get("COURSE_SCREENSHOT_DIR") or REPO_ROOT / ".test-output") / "every-door"


def _door_env(**extra) -> dict:
    """A grader's shell that never activated the venv: nbgrader found by its path only. A copy of
    the course has no grader/ of its own, so the repository's comes through PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), **extra})
    return env


@contextlib.contextmanager
def _listening_port():
    """A port something listens on, on the grader's machine, for the probe to try to reach."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _make_class(root: Path, port: int, classmates: tuple[str, ...] = ("alice", "bob")) -> None:
    """The course with eve's probe submission and ``classmates``' own (alice's is eve's basis)."""
    copy_of_repository(root, "nbgrader_config.py", f"source/{ASSIGNMENT}")
    for student in classmates:
        shutil.copytree(REPO_ROOT / "submitted" / student / ASSIGNMENT, root / "submitted" / student / ASSIGNMENT)
    alice = nbformat.read(REPO_ROOT / "submitted" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    eve = root / "submitted" / "eve" / ASSIGNMENT
    eve.mkdir(parents=True)
    nbformat.write(with_probe(alice, probe_source(root, ASSIGNMENT, "bob", port)), eve / f"{ASSIGNMENT}.ipynb")
    (eve / EXTRA_FILE).write_text("raise SystemExit('this file should never have been graded')\n")
    released = subprocess.run([NBGRADER, "generate_assignment", ASSIGNMENT], cwd=root, env=_door_env(),
                              capture_output=True, text=True, timeout=300)
    assert released.returncode == 0, released.stdout[-2000:] + released.stderr[-2000:]


def _scores(root: Path) -> dict[str, dict[str, float]]:
    """``{student: {grade cell: score}}`` from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(root / "gradebook.db")) as gradebook:
        return {submission.student_id: {g.name: float(g.score or 0) for nb in submission.notebooks for g in nb.grades}
                for submission in gradebook.assignment_submissions(ASSIGNMENT)}


def _probe_saw(root: Path) -> dict:
    notebook = nbformat.read(root / "autograded" / "eve" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    seen = probe_output(notebook)
    assert seen is not None, "the probe cell did not run"
    return seen


def _wipe_grades(root: Path) -> None:
    """Each door starts from no autograded notebooks (the gradebook rows are updated in place)."""
    shutil.rmtree(root / "autograded", ignore_errors=True)


def _grade_with_formgrader(root: Path, tmp_path: Path) -> None:
    executable = chromium_path()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with JupyterServer(root, tmp_path / "instructor-home", tmp_path / "instructor.log",
                       {"PYTHONPATH": str(REPO_ROOT)}) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            # The token logs the browser in on the first page; the submissions page's own API calls
            # then carry the login cookie.
            page.goto(server.url("formgrader/manage_assignments"))
            page.locator("table tbody tr", has_text=ASSIGNMENT).locator(".status").wait_for()
            page.goto(server.url(f"formgrader/manage_submissions/{ASSIGNMENT}"))
            for student in STUDENTS:
                row = page.locator("table tbody tr", has_text=student)
                row.locator(".autograde a").wait_for()
                modal = _formgrader_action(page, row, "autograde")     # asserts the success modal
                page.screenshot(path=str(SCREENSHOT_DIR / f"formgrader-autograded-{student}.png"))
                _close(modal)
        except BaseException:
            page.screenshot(path=str(SCREENSHOT_DIR / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _grade_with_nbgrader(root: Path) -> None:
    done = subprocess.run([NBGRADER, "autograde", ASSIGNMENT, "--force"], cwd=root, env=_door_env(),
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _grade_with_course_grader(root: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "grader", "--course-root", str(root), "--no-feedback"],
                          cwd=REPO_ROOT, env=_door_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_every_door_gives_the_same_scores_and_the_probe_sees_nothing(tmp_path, request):
    require_sandbox()
    chromium_path()
    root = tmp_path / "course"
    with _listening_port() as port:
        _make_class(root, port)
        doors = {"Formgrader button": lambda: _grade_with_formgrader(root, tmp_path),
                 "nbgrader autograde": lambda: _grade_with_nbgrader(root),
                 "python -m grader": lambda: _grade_with_course_grader(root)}
        scores, seen, seconds = {}, {}, {}
        for door, grade in doors.items():
            _wipe_grades(root)
            started = time.perf_counter()
            grade()
            seconds[door] = round(time.perf_counter() - started, 1)
            scores[door], seen[door] = _scores(root), _probe_saw(root)
    request.node.user_properties.append(("look at", f"door times (s): {json.dumps(seconds)}; probe: {seen}"))

    first = scores["Formgrader button"]
    assert sorted(first) == STUDENTS
    assert sum(first["alice"].values()) > 0 and first["eve"] == first["alice"]     # the probe costs nothing
    assert first["bob"] != first["alice"]                  # bob's mistakes lose points: scores are real
    for door, door_scores in scores.items():
        assert door_scores == first, f"{door} graded differently from the Formgrader's button"
    expected = {"uid": NOBODY, "gid": NOBODY, "gradebook": "FileNotFoundError", "source": "FileNotFoundError",
                "other_submission": "FileNotFoundError", "relative_gradebook": "FileNotFoundError",
                "network": "ConnectionRefusedError", "extra_file": "absent"}
    for door, probe in seen.items():
        assert probe == expected, f"through {door} the probe saw {probe}"


def test_a_door_without_a_sandbox_refuses_unless_told_loudly(tmp_path):
    """`nbgrader autograde` where bubblewrap cannot be found: refused, nothing run or scored; with
    the explicit option the probe runs with the grader's rights (what the option's name says)."""
    require_sandbox()
    root = tmp_path / "course"
    with _listening_port() as port:
        _make_class(root, port, classmates=())
        no_bwrap = tmp_path / "bin"             # python and the tools the venv needs, but no bwrap
        no_bwrap.mkdir()
        env = _door_env(PATH=str(no_bwrap))

        refused = subprocess.run([NBGRADER, "autograde", ASSIGNMENT], cwd=root, env=env,
                                 capture_output=True, text=True, timeout=600)
        log = refused.stdout + refused.stderr
        assert refused.returncode != 0, log[-2000:]
        assert "the grading sandbox cannot start here (bwrap not found" in log, log[-3000:]
        assert "unsafe_grade_without_sandbox" in log
        assert not (root / "autograded" / "eve" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()
        assert not any((_scores(root).get("eve") or {}).values())

        unsafe = subprocess.run([NBGRADER, "autograde", ASSIGNMENT, "--Sandbox.unsafe_grade_without_sandbox=True"],
                                cwd=root, env=env, capture_output=True, text=True, timeout=600)
        log = unsafe.stdout + unsafe.stderr
        assert unsafe.returncode == 0, log[-3000:]
        assert "NO SANDBOX" in log
    seen = _probe_saw(root)
    assert seen["uid"] == os.getuid() and seen["gradebook"].startswith("read ") and seen["network"] == "connected"


def test_feedback_with_a_hidden_line_is_withheld_whichever_door_made_it(tmp_path):
    """GenerateFeedback's hook (the Formgrader's button, `nbgrader generate_feedback`) deletes a page
    in which a line of hidden-test code is found, and leaves a clean page alone."""
    from grader import hidden_tests
    from grader.every_door import withhold_leaking_feedback

    root = copy_of_repository(tmp_path / "course", "nbgrader_config.py", f"source/{ASSIGNMENT}", f"release/{ASSIGNMENT}")
    secret = sorted(hidden_tests.notebook_secrets(root, ASSIGNMENT, ASSIGNMENT), key=len)[-1]
    pages = {}
    for student, body in (("leaky", f"<pre><span>{secret}</span></pre>"), ("clean", "<p>Score: 25 / 25</p>")):
        pages[student] = root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        pages[student].parent.mkdir(parents=True)
        pages[student].write_text(f"<html><body>{body}</body></html>")
        autograded = root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        withhold_leaking_feedback(assignment=ASSIGNMENT, student=student, notebooks=[str(autograded)])
    assert not pages["leaky"].exists()
    assert pages["clean"].is_file()


def test_a_door_in_a_broken_environment_scores_nobody(tmp_path):
    """`nbgrader autograde` where the models are missing: the gate's solution check refuses before any
    submission runs; with that check turned off, RefuseEnvironmentFault still keeps the fault out of
    the gradebook (the course's setup cell failed before any student code ran)."""
    require_sandbox()
    root = tmp_path / "course"
    with _listening_port() as port:
        _make_class(root, port, classmates=())
    env = _door_env(COURSE_MODELS_DIR=str(tmp_path / "no-models-here"))
    graded = root / "autograded" / "eve" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

    refused = subprocess.run([NBGRADER, "autograde", ASSIGNMENT], cwd=root, env=env, capture_output=True,
                             text=True, timeout=600)
    log = refused.stdout + refused.stderr
    assert refused.returncode != 0, log[-2000:]
    assert "refusing to grade eve's exercise2: the assignment's own solution gets" in log, log[-3000:]
    assert "read-only cell" in log and not graded.exists()
    assert not any((_scores(root).get("eve") or {}).values())

    unchecked = subprocess.run([NBGRADER, "autograde", ASSIGNMENT, "--GradingGate.solution_check=False"], cwd=root,
                               env=env, capture_output=True, text=True, timeout=600)
    log = unchecked.stdout + unchecked.stderr
    assert unchecked.returncode != 0, log[-2000:]
    assert "environment fault, not the submission's" in log and "the read-only cell" in log, log[-3000:]
    assert "eve" not in _scores(root) and not graded.exists()
