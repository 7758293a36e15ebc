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


# What a student's own full run left in artifacts/ (names the notebooks write), and one file of
# their own: a validation must leave every byte of them, and add nothing.
_STUDENT_FILES = {
    "artifacts/exercise2_quality.csv": b"model_id,dtype,measure,n_tokens,avg_loss,perplexity\n"
                                       b"SmolLM2-135M-Instruct,float32,\"eval texts, token-weighted\",3392,3.3818,29.42\n",
    "artifacts/exercise2_speed.csv": b"model_id,tokens_per_sec\nSmolLM2-135M-Instruct,18.3\n",
    "artifacts/exercise2_sliding_window.png": b"\x89PNG\r\n\x1a\n the student's plot",
    "artifacts/results.csv": b"variant,model_id,tokens_per_sec\npytorch float32,SmolLM2-135M-Instruct,20.1\n",
    "artifacts/batching.png": b"\x89PNG\r\n\x1a\n the student's batching plot",
    "artifacts/precision_sweep.png": b"\x89PNG\r\n\x1a\n the student's precision plot",
    "notes.txt": b"my notes\n",
}


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.pipeline
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_complete_attempt_passes_quietly_and_changes_no_file(assignment, tmp_path):
    """`nbgrader validate` (also what JupyterLab's Validate button runs) on a complete attempt:
    "Success!" in a few lines, no placeholder output warnings, and the student's folder (notebook,
    artifacts/ of their own run, other files) byte for byte as it was, nothing added."""
    alice = REPO_ROOT / "submitted" / "alice" / assignment / f"{assignment}.ipynb"
    if not alice.exists():
        pytest.fail(f"{alice} missing: run `python -m tools.make_example_submissions`")
    student = tmp_path / "student" / assignment
    student.mkdir(parents=True)
    shutil.copy(alice, student / alice.name)
    for name, data in _STUDENT_FILES.items():
        (student / name).parent.mkdir(exist_ok=True)
        (student / name).write_bytes(data)
    before = _snapshot(student)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PROFILE", "NBGRADER_EXECUTION",
                                                                "COURSE_ARTIFACTS_DIR")}
    env["TMPDIR"] = str(private_tmp)
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", alice.name], cwd=student,
                          capture_output=True, text=True, timeout=900, env=env)
    out = done.stdout + done.stderr
    assert "Success! Your notebook passes all the tests." in out, out[-3000:]
    after = _snapshot(student)
    assert sorted(set(after) - set(before)) == [], "validation added files to the student's folder"
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert changed == [], f"validation changed the student's files: {changed}"
    assert "cannot be converted to" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) <= 8, f"{len(lines)} lines of validation output, expected the verdict and little else:\n{out}"
    leftovers = sorted(p.name for p in private_tmp.glob("course-artifacts-*"))
    assert leftovers == [], f"the validation run's private artifacts folder was not removed: {leftovers}"


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
