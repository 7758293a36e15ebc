"""Every nbgrader command the README and the instructor guides name runs, exactly as written there,
from a course folder, in a shell that never activated the venv.

The commands are read from the documents themselves (a code span or line that starts with
``.venv/bin/nbgrader``), placeholders filled with the example class (``<exercise>`` is
exercise2, ``<id>``/``<student>`` alice), and run in a copy of the course laid out as the
repository is (``.venv`` linked to this one), in the order a term needs them (imports before
grading, removal last). A command whose verb the order does not know fails the test: add it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.pipeline import REPO_ROOT, require_sandbox

DOCUMENTS = ["README.md", "course/instructor_guide.md", "course/grading_security.md"]
PLACEHOLDERS = {"<exercise>": "exercise2", "<id>": "alice", "<student>": "alice"}
# A term's order: who the students are, a student's check, grading, feedback, export, clean-up.
ORDER = ["db student import", "validate", "autograde", "generate_feedback", "export", "db assignment remove"]


def documented_commands() -> list[str]:
    found = []
    for name in DOCUMENTS:
        text = (REPO_ROOT / name).read_text()
        spans = re.findall(r"`(\.venv/bin/nbgrader [^`]+)`", text)
        spans += re.findall(r"^\s*(\.venv/bin/nbgrader .+)$", text, flags=re.M)
        for span in spans:
            command = " ".join(span.split())
            for placeholder, value in PLACEHOLDERS.items():
                command = command.replace(placeholder, value)
            if command not in found:
                found.append(command)
    return found


def _rank(command: str) -> int:
    verb = command.removeprefix(".venv/bin/nbgrader ")
    for index, known in enumerate(ORDER):
        if verb.startswith(known):
            return index
    raise AssertionError(f"{command!r}: add its verb to ORDER in {__file__}")


def test_the_documents_name_the_grading_commands():
    commands = documented_commands()
    assert any(c.startswith(".venv/bin/nbgrader autograde ") for c in commands), commands
    assert any(c.startswith(".venv/bin/nbgrader validate ") for c in commands), commands


def test_every_documented_nbgrader_command_runs_as_written(tmp_path):
    require_sandbox()
    commands = sorted(documented_commands(), key=_rank)
    root = tmp_path / "course"
    skip = shutil.ignore_patterns("artifacts", ".ipynb_checkpoints", "__pycache__")
    for part in ["grader", "tools", "source/exercise2", "release/exercise1"]:
        shutil.copytree(REPO_ROOT / part, root / part, ignore=skip)
    for student in ("alice", "bob"):
        shutil.copytree(REPO_ROOT / "submitted" / student / "exercise2", root / "submitted" / student / "exercise2")
    for name in ("nbgrader_config.py", "students.csv"):
        shutil.copy(REPO_ROOT / name, root / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"          # no venv on PATH: `alembic` must still be found

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=900)

    released = run(".venv/bin/nbgrader generate_assignment exercise2")     # the term's release
    assert released.returncode == 0, released.stdout[-2000:] + released.stderr[-2000:]
    for command in commands:
        done = run(command)
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"{command}\n{log[-3000:]}"
        assert "| ERROR]" not in log and "CRITICAL" not in log, f"{command}\n{log[-3000:]}"
        if " validate " in command:
            assert "VALIDATION FAILED" in log or "Success!" in log, f"{command}\n{log[-3000:]}"
        if " autograde " in command:
            assert (root / "autograded" / "alice" / "exercise2" / "exercise2.ipynb").is_file()
        if " generate_feedback " in command:
            assert (root / "feedback" / "alice" / "exercise2" / "exercise2.html").is_file()
    assert not (root / "grades.csv").exists(), "a documented export overwrote the course's grades.csv"
