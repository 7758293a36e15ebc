"""What a student sees: `nbgrader validate` on a release, and the words of visible tests.

- Validating the unchanged starter names the cells still to do and says why
  (NotImplementedError), not a wall of internals; validating a complete
  attempt (the example student alice) reports success.
- Every ``assert`` in a visible test cell carries a message, so a failure
  says what is wrong instead of a bare ``AssertionError``.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from tests.pipeline import REPO_ROOT

ASSIGNMENTS = sorted(p.name for p in (REPO_ROOT / "release").iterdir() if p.is_dir())
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)


def _validate(notebook_path, tmp_path):
    work = tmp_path / notebook_path.name
    shutil.copy(notebook_path, work)
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PROFILE", "NBGRADER_EXECUTION")}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", work.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, env=env)
    return done.stdout + done.stderr


@pytest.mark.pipeline
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_starter_names_what_is_left(assignment, tmp_path):
    out = _validate(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb", tmp_path)
    assert "VALIDATION FAILED" in out, out[-2000:]
    assert "NotImplementedError" in out and "replace this line with your implementation" in out, out[-2000:]


@pytest.mark.pipeline
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_complete_attempt_succeeds(assignment, tmp_path):
    alice = REPO_ROOT / "submitted" / "alice" / assignment / f"{assignment}.ipynb"
    if not alice.exists():
        pytest.fail(f"{alice} missing: run `python -m tools.make_example_submissions`")
    out = _validate(alice, tmp_path)
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]


def _visible_test_cells(assignment):
    notebook = nbformat.read(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            code = _HIDDEN.sub("", cell.source)
            code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
            yield meta["grade_id"], code


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_visible_assert_explains_itself(assignment):
    bare = []
    for grade_id, code in _visible_test_cells(assignment):
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Assert) and node.msg is None:
                bare.append(f"{grade_id} line {node.lineno}: assert {ast.unparse(node.test)[:80]}")
    assert not bare, "visible asserts without a message for the student:\n" + "\n".join(bare)
