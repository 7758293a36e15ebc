"""The test suite's view of ``grader.throwaway_course``: its ``Course`` builds fixtures from
tests/fixtures/, and ``require_sandbox`` skips or fails a test that needs bubblewrap.
"""
from __future__ import annotations

from pathlib import Path

from helpers.paths import REPO_ROOT
from grader import throwaway_course
from grader.throwaway_course import cell_by_id, read_source, source_notebook_path, with_cell_replaced

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

__all__ = ["FIXTURES_DIR", "REPO_ROOT", "Course", "cell_by_id", "copy_of_repository", "read_source",
           "require_sandbox", "source_notebook_path", "with_cell_replaced"]


class Course(throwaway_course.Course):
    fixtures_dir = FIXTURES_DIR


def copy_of_repository(root: Path, *parts: str) -> Path:
    """``root`` holding copies of the repository's ``parts`` (files or folders, e.g. the example
    class: "nbgrader_config.py", "source", "submitted"), without run outputs or caches."""
    import shutil

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("artifacts", ".ipynb_checkpoints", "__pycache__")
    for part in parts:
        if (REPO_ROOT / part).is_dir():
            shutil.copytree(REPO_ROOT / part, root / part, ignore=skip)
        else:
            shutil.copy(REPO_ROOT / part, root / part)
    return root


def require_sandbox():
    """Skip a sandbox test only where bubblewrap cannot be had; fail where set-up should have installed it.

    tools/setup.sh installs bubblewrap when it runs as root with apt-get (CI does), so there a
    missing bwrap is a broken set-up, not a reason to skip the hostile-submission suite.
    """
    import os
    import shutil

    import pytest

    from grader import sandbox

    reason = sandbox.unavailable_reason()
    if reason.startswith("bwrap not found"):
        can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
        if can_install or os.environ.get("COURSE_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"{reason} (run `make setup`: as root it installs bubblewrap)")
        pytest.skip(reason)
    assert not reason, reason
