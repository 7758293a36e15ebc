"""Shared fixtures. Tests import the repository's own packages (helpers, tools)."""
from __future__ import annotations

import sys

import pytest

from helpers.paths import REPO_ROOT
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def tiny_dir():
    from helpers.models import TINY_DIR, build_tiny_model, is_complete_model_dir

    if not is_complete_model_dir(TINY_DIR):
        pytest.skip("tiny model missing: run `make setup` first")
    return build_tiny_model()


@pytest.fixture
def clean_profile_env(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return monkeypatch


def pytest_terminal_summary(terminalreporter):
    """Tests that leave something to look at (the browser test's screenshots) say where, pass or fail."""
    for status in ("passed", "failed"):
        for report in terminalreporter.getreports(status):
            for name, value in report.user_properties:
                if name == "look at":
                    terminalreporter.write_line(f"{report.nodeid} ({status}): {value}")
