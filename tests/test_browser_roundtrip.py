"""The nbgrader round trip in a real browser: Formgrader for the instructor, Assignment List for
the student, the course's own grader in between.

Two Jupyter servers run on loopback (an instructor's in a throw-away course, a student's in a
folder set up by ``tools.student_config``), each with its own home, and Playwright drives
Debian's Chromium through: release -> fetch -> validate -> submit -> collect -> grade with
``python -m grader`` -> release feedback -> fetch feedback. The submission is complete but
calls torch's cross-entropy where the exercise asks for it by hand, which only a hidden test
catches: validation passes, the grade loses that test's points, and the feedback
the student fetches says why without one line of hidden-test code.

Screenshots of every step and each step's time go to the folder printed at the end
(``.test-output/browser-roundtrip/`` unless ``COURSE_SCREENSHOT_DIR`` names another).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.pipeline import REPO_ROOT, Course, with_cell_replaced

ASSIGNMENT = "exercise2"
MISTAKE = "ce_calls_torch_cross_entropy"  # tests/cases/exercise2.py: the visible tests pass, a hidden one fails
SCREENSHOT_DIR = Path(os.environ.get("COURSE_SCREENSHOT_DIR") or REPO_ROOT / ".test-output" / "browser-roundtrip")
STEP_TIMEOUT_MS = 60_000                 # a click and the page's answer
RUN_TIMEOUT_MS = 300_000                 # validate runs the whole notebook on 2 cores


def chromium_path() -> str:
    """Debian's Chromium (set-up installs it as root); skip only where it cannot be had."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium: `apt-get install chromium` (tools/setup.sh does it when run as root)"
    if os.geteuid() == 0 and shutil.which("apt-get") or os.environ.get("CI"):
        pytest.fail(f"{reason}; run `make setup`")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """``jupyter lab`` from the project's venv, on loopback, in ``root`` with its own home."""

    def __init__(self, root: Path, home: Path, log: Path, extra_env: dict | None = None):
        self.root, self.home, self.log = Path(root), Path(home), Path(log)
        self.port, self.token = _free_port(), hashlib.sha256(os.urandom(16)).hexdigest()[:32]
        self.env = {**os.environ, "HOME": str(self.home), "JUPYTER_CONFIG_DIR": str(self.home / ".jupyter"),
                    "JUPYTER_DATA_DIR": str(self.home / ".local/share/jupyter"), **(extra_env or {})}
        self.process = None

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def __enter__(self):
        # No "official Jupyter news?" prompt over the screenshots.
        settings = self.home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                   "--ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.root_dir={self.root}",
                   f"--IdentityProvider.token={self.token}", "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self._log = open(self.log, "w")
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"jupyter lab did not answer on port {self.port} in 90 s:\n{self.log_tail()}")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Steps:
    """Each step's wall time and a screenshot after it."""

    def __init__(self, folder: Path):
        self.folder, self.times, self.started = folder, {}, None

    def start(self, name: str):
        self.name, self.started = name, time.perf_counter()

    def done(self, page=None, full_page: bool = True):
        seconds = time.perf_counter() - self.started
        index = len(self.times) + 1
        self.times[f"{index:02d} {self.name}"] = round(seconds, 1)
        if page is not None:
            page.screenshot(path=str(self.folder / f"{index:02d}-{self.name}.png"), full_page=full_page)


def _formgrader_action(page, row, link_class: str):
    """Click the Formgrader's link in the assignment's row; its answer is a success or error modal."""
    row.locator(f".{link_class} a").click()
    modal = page.locator("#success-modal, #error-modal")
    modal.wait_for(timeout=RUN_TIMEOUT_MS)
    assert page.locator("#success-modal").count() == 1, modal.inner_text()
    return modal


def _close(modal):
    modal.locator(".modal-footer button").first.click()
    modal.wait_for(state="hidden")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# A student's own note with a formula: the feedback page must draw it with no network.
STUDENT_NOTE = "My reading: perplexity is $\\mathrm{PPL} = e^{L}$, where $$L = -\\frac{1}{N}\\sum_{t=1}^{N} \\log p_t$$"


def _mistaken_submission():
    """alice's complete Exercise 2 with one planted mistake that the visible tests let through,
    and a markdown note of the student's own with maths in it."""
    from tests.cases.exercise2 import CASES

    case = next(c for c in CASES if c["name"] == MISTAKE)
    alice = nbformat.read(REPO_ROOT / "submitted" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    submission = with_cell_replaced(alice, case["cell"], case["source"])
    submission.cells.append(nbformat.v4.new_markdown_cell(STUDENT_NOTE))
    return submission, case


def _block_outside_requests(context) -> list[str]:
    """Every request that would leave this machine is refused and recorded (loopback and files pass)."""
    outside: list[str] = []

    def route(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "http://127.0.0.1", "ws://127.0.0.1", "http://localhost")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", route)
    return outside


def test_round_trip_through_formgrader_and_assignment_list(tmp_path, request):
    executable = chromium_path()
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

    shutil.rmtree(SCREENSHOT_DIR, ignore_errors=True)
    SCREENSHOT_DIR.mkdir(parents=True)
    request.node.user_properties.append(("look at", f"screenshots and steps.json in {SCREENSHOT_DIR}"))
    steps = Steps(SCREENSHOT_DIR)
    course = Course(tmp_path / "course", [ASSIGNMENT])
    student_dir = tmp_path / "student"
    subprocess.run([sys.executable, "-m", "tools.student_config", str(student_dir),
                    "--course-root", str(course.root)], cwd=REPO_ROOT, check=True, capture_output=True)
    exchange = course.root / "exchange"
    # The instructor's server imports the course's tools/ (nbgrader_config.py's preprocessors).
    instructor_env = {"PYTHONPATH": str(REPO_ROOT)}
    submission, case = _mistaken_submission()

    with JupyterServer(course.root, tmp_path / "instructor-home", tmp_path / "instructor.log", instructor_env) as instructor, \
            JupyterServer(student_dir, tmp_path / "student-home", tmp_path / "student.log") as student, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        outside = _block_outside_requests(context)
        errors = []
        teacher, learner = context.new_page(), context.new_page()
        for page in (teacher, learner):
            page.on("pageerror", lambda error: errors.append(str(error)))

        try:
            # 1. The instructor releases exercise2 from the Formgrader.
            steps.start("formgrader-before-release")
            teacher.goto(instructor.url("formgrader/manage_assignments"))
            row = teacher.locator("table tbody tr", has_text=ASSIGNMENT)
            row.locator(".status").wait_for()
            assert row.locator(".status").inner_text().strip() == "draft"
            steps.done(teacher)
            steps.start("formgrader-released")
            modal = _formgrader_action(teacher, row, "release")
            steps.done(teacher)
            _close(modal)
            assert row.locator(".status").inner_text().strip() == "released"
            assert (exchange / "llm-generation-perf" / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

            # 2. The student fetches it in the Assignment List.
            steps.start("assignment-list-released")
            learner.goto(student.url("lab"))
            # The menu bar appears once JupyterLab has loaded its extensions; then Nbgrader > Assignment List.
            learner.locator('#jp-menu-panel div.lm-MenuBar-itemLabel:text("Nbgrader")').click()
            learner.locator('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]').click()
            released = learner.locator("#released_assignments_list > .list_item")
            released.filter(has_text=ASSIGNMENT).wait_for()
            steps.done(learner)
            steps.start("assignment-list-fetched")
            released.filter(has_text=ASSIGNMENT).locator(".item_status button").click()
            fetched = learner.locator("#fetched_assignments_list > .list_item", has_text=ASSIGNMENT)
            fetched.wait_for()
            steps.done(learner)
            fetched_notebook = student_dir / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            assert fetched_notebook.is_file()

            # 3. The student's work: the notebook, and the figures their own full run wrote.
            nbformat.write(submission, fetched_notebook)
            artifacts = student_dir / ASSIGNMENT / "artifacts"
            artifacts.mkdir()
            (artifacts / "exercise2_quality.csv").write_text("model,perplexity\nSmolLM2-135M-Instruct,29.42\n")
            (artifacts / "exercise2_speed.csv").write_text("model,tokens_per_sec\nSmolLM2-135M-Instruct,31.5\n")
            before = _digest(student_dir / ASSIGNMENT)

            # 4. Validate passes (only a hidden test catches this mistake) and changes no file of theirs.
            steps.start("validate")
            learner.locator("#fetched_assignments_list a.assignment-notebooks-link", has_text=ASSIGNMENT).click()
            learner.locator('#fetched_assignments_list button:text("Validate")').first.click()
            verdict = learner.locator(".validation-success, .validation-failed, .validation-error").first
            verdict.wait_for(timeout=RUN_TIMEOUT_MS)
            steps.done(learner)
            assert learner.locator(".validation-success").count() == 1, learner.locator(".jp-Dialog").inner_text()
            learner.locator(".jp-Dialog-footer button").last.click()
            assert _digest(student_dir / ASSIGNMENT) == before, "validation changed the student's files"

            # 5. Submit.
            steps.start("submitted")
            fetched.locator('.item_status button:text("Submit")').click()
            learner.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT).wait_for()
            steps.done(learner)

            # 6. The instructor collects in the Formgrader...
            steps.start("formgrader-collected")
            teacher.reload()
            modal = _formgrader_action(teacher, row, "collect")
            steps.done(teacher)
            _close(modal)
            student_id = next((course.root / "submitted").iterdir()).name
            assert (course.root / "submitted" / student_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

            # 7. ...grades with the course's grader (sandbox, solution check, hidden-test-free feedback)...
            steps.start("course-grader")
            graded = subprocess.run([sys.executable, "-m", "grader", "--course-root", str(course.root)],
                                    cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
            steps.done()
            assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
            results = json.loads((course.root / "feedback" / student_id / ASSIGNMENT / "results.json").read_text())
            lost = sorted(t["test"] for t in results["tests"] if not t["passed"])
            assert lost == case["lose"], results
            assert 0 < results["score"] < results["max_score"]

            # 8. The grading view of the submission works offline (MathJax from the Jupyter server).
            steps.start("formgrader-grading-view")
            teacher.goto(instructor.url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
            teacher.locator("a[href*='/formgrader/submissions/']").first.click()
            teacher.locator("#notebook-container, .container").first.wait_for()
            teacher.wait_for_function("() => window.MathJax && MathJax.loaded === true")
            steps.done(teacher, full_page=False)

            # 9. ...and releases the feedback.
            teacher.goto(instructor.url("formgrader/manage_assignments"))
            steps.start("formgrader-feedback-released")
            modal = _formgrader_action(teacher, row, "release-feedback")
            steps.done(teacher)
            _close(modal)

            # 10. The student fetches it and reads their score and the failed test's message.
            steps.start("assignment-list-feedback")
            learner.locator("#refresh_assignments_list").click()
            submitted = learner.locator("#submitted_assignments_list > .list_item", has_text=ASSIGNMENT)
            submitted.locator('button:text("Fetch Feedback")').click()
            submitted.get_by_text("(view feedback)").wait_for()
            steps.done(learner)
            pages = list((student_dir / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
            assert len(pages) == 1, pages
            # The course's pages ran without a script error (the feedback file is nbconvert's static
            # page: offline, its CDN scripts, MathJax and jQuery for widget outputs, cannot load).
            assert errors == [], errors
            steps.start("feedback-page")
            relative = pages[0].relative_to(student_dir).as_posix()
            reader = context.new_page()
            reader.goto(student.url("files/" + urllib.request.quote(relative)))
            text = reader.locator("body").inner_text()
            steps.done(reader, full_page=False)
            assert f"Score: {results['score']:.1f} / {results['max_score']:.1f}" in text, text[:500]
            failed = next(t for t in results["tests"] if not t["passed"])
            assert failed["message"] and failed["message"].splitlines()[0] in text
            from grader import hidden_tests

            secrets = hidden_tests.notebook_secrets(course.root, ASSIGNMENT, ASSIGNMENT)
            assert hidden_tests.leaked_lines(pages[0].read_text(), secrets) == []

            # 11. The page opened from its file, offline: the student's formulas are drawn (MathML),
            # no TeX is left, and no page of the trip asked for anything beyond this machine.
            steps.start("feedback-page-from-file")
            reader.goto(pages[0].resolve().as_uri())
            formulas = reader.locator("math")
            assert formulas.count() == 2, reader.content()[:2000]
            for index in range(2):
                box = formulas.nth(index).bounding_box()
                assert box and box["width"] > 10 and box["height"] > 5, box
            assert "\\frac" not in reader.locator("body").inner_text()
            steps.done(reader, full_page=False)
            assert outside == [], outside
        except BaseException:
            for name, page in (("instructor", teacher), ("student", learner)):
                page.screenshot(path=str(SCREENSHOT_DIR / f"failure-{name}.png"), full_page=True)
            raise
        finally:
            browser.close()

    (SCREENSHOT_DIR / "steps.json").write_text(json.dumps(steps.times, indent=1) + "\n")
    request.node.user_properties.append(
        ("look at", "step times: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.times.items())))
