"""Grades an instructor can defend, on the real pipeline (issue 12).

- Hidden tests stay hidden: no file the sandboxed kernel can read holds them, and neither a
  failing hidden test's traceback nor a submission that dumps what the kernel kept of the
  tests (IPython's history, an event hook printing every later cell) puts a line of them
  into feedback or results.json (tests/fixtures/hostile.py).
- A copied test cell is graded, with a note naming it.
- The environment, not the student: grading a copy of the course from its own folder finds
  the helpers the kernel imports; a broken environment makes the main command refuse and
  write nothing; a read-only set-up cell failing leaves the submission "not graded", with no
  score in the gradebook (tests/fixtures/setup_check.py).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from tests.pipeline import Course, copy_of_repository, require_sandbox
import grader
from grader import hidden_tests, solution_check

pytestmark = pytest.mark.pipeline

H = "hostile"
OVERRIDES = {"Execute.timeout": 20, "Sandbox.wall_time_s": 120}

# Each runs in the free cell between test_square (already run, hidden block included) and
# test_mean (not yet run). The secrets are built at run time so that the cell's own text
# matches nothing.
SEARCH_FILES = r'''
import os, sys
secrets = ["mean([" + "5]) == 5", "square(" + "-4) == 16"]
skip = ("/proc", "/sys", "/dev", "/usr", sys.base_prefix, sys.prefix)
found, searched = [], 0
candidates = ["/proc/self/cmdline", "/proc/self/environ"]
for top, folders, files in os.walk("/"):
    if top.startswith(skip):
        folders[:] = []
        # The system and the Python installation are the machine's: only notebooks and JSON there.
        candidates += [os.path.join(top, f) for f in files if f.endswith((".ipynb", ".json"))]
        continue
    candidates += [os.path.join(top, f) for f in files]
for root in (sys.prefix, sys.base_prefix):
    for top, folders, files in os.walk(root):
        candidates += [os.path.join(top, f) for f in files if f.endswith((".ipynb", ".json"))]
for path in candidates:
    try:
        with open(path, "rb") as handle:
            text = handle.read(50_000_000).decode("utf-8", "replace")
    except OSError:
        continue
    searched += 1
    found += [path for s in secrets if s in text]
print("SEARCHED", searched, "FOUND", sorted(set(found)))
'''

DUMP_WHAT_THE_KERNEL_KEPT = r'''
ip = get_ipython()
for number, code in enumerate(ip.user_ns["_ih"]):
    print(f"history {number}:\n{code}")
def show_every_later_cell(info):
    print("NEXT CELL:\n" + info.raw_cell)
ip.events.register("pre_run_cell", show_every_later_cell)
'''

# The same, encoded (base64 wrapped over lines, zlib-compressed first) and with every name built at
# run time, so that neither line matching nor the text review could see it.
DUMP_ENCODED = r'''
import base64, sys, zlib
ip = getattr(sys.modules["IP" + "ython"], "get_" + "ipython")()
def _out(text):
    print(base64.encodebytes(zlib.compress(text.encode())).decode())
_out("\n".join(ip.user_ns["_" + "ih"]))
getattr(ip, "ev" + "ents").register("pre_" + "run_cell", lambda info: _out(info.raw_cell))
'''

WRONG_MEAN = '''def mean(values):
    """Return the arithmetic mean of a non-empty list."""
    return sum(values) / 4
'''


def _with_free_cell(course, source):
    notebook = course.source_notebook(H)
    free = next(c for c in notebook.cells if c.cell_type == "code" and "nbgrader" not in c.metadata)
    free.source = source
    return notebook


def _with_cell(notebook, grade_id, source):
    notebook = copy.deepcopy(notebook)
    next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id).source = source
    return notebook


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    require_sandbox()
    c = Course(tmp_path_factory.mktemp("integrity"), [], fixtures=[H], overrides=OVERRIDES)
    release = c.release_notebook(H)
    c.submit("searches_files", H, _with_free_cell(c, SEARCH_FILES))
    c.submit("dumps_tests", H, _with_free_cell(c, DUMP_WHAT_THE_KERNEL_KEPT))
    c.submit("dumps_tests_encoded", H, _with_free_cell(c, DUMP_ENCODED))
    c.submit("wrong_mean", H, _with_cell(c.source_notebook(H), "mean", WRONG_MEAN))
    duplicated = c.source_notebook(H)
    index = next(i for i, cell in enumerate(duplicated.cells)
                 if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_square")
    duplicated.cells[index].source = next(
        cell.source for cell in release.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_square")
    duplicated.cells.insert(index + 1, copy.deepcopy(duplicated.cells[index]))
    c.submit("copied_test_cell", H, duplicated)
    students = ["searches_files", "dumps_tests", "dumps_tests_encoded", "wrong_mean", "copied_test_cell"]
    rows = grader.grade_submissions(c.root, [(s, H) for s in students], overrides=OVERRIDES,
                                     feedback=True, sandbox=True)
    c.rows = {row.student: row for row in rows}
    c.secrets = hidden_tests.secret_lines(c.source_notebook(H), release)
    return c


def _student_files(course, student):
    """Everything the student receives: the feedback folder's files."""
    folder = course.root / "feedback" / student / H
    return {p.name: p.read_text(encoding="utf-8", errors="replace") for p in folder.iterdir() if p.is_file()}


def test_the_fixture_has_secrets_to_protect(hostile):
    assert {"assert square(-4) == 16", "assert mean([5]) == 5"} <= hostile.secrets


def test_no_readable_file_holds_hidden_tests(hostile):
    row = hostile.rows["searches_files"]
    assert (row.status, row.score) == ("graded", 5), row
    nb = hostile.autograded_notebook("searches_files", H)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    line = next(line for line in text.splitlines() if line.startswith("SEARCHED"))
    searched = int(line.split()[1])
    assert searched > 100, f"the search read only {searched} files: it did not look"
    assert line.endswith("FOUND []"), f"hidden tests readable inside the sandbox: {line}"


def test_dumped_tests_never_reach_what_the_student_receives(hostile):
    row = hostile.rows["dumps_tests"]
    assert (row.status, row.score) == ("graded", 5), row
    # The dump happened (the autograded notebook, which only the grader reads, holds it)...
    graded = json.dumps(hostile.autograded_notebook("dumps_tests", H))
    assert "assert square(-4) == 16" in graded and "assert mean([5]) == 5" in graded
    # ...and none of it reached the feedback or the results, with a note saying so.
    files = _student_files(hostile, "dumps_tests")
    assert {"hostile.html", "results.json"} <= set(files), files.keys()
    for name, text in files.items():
        assert hidden_tests.leaked_lines(text, hostile.secrets) == [], f"hidden test code in {name}"
    assert "hidden-test code removed from the output of" in row.reason, row.reason
    assert "review for tampering" in row.reason, row.reason


def test_encoded_dumps_are_read_back_and_withheld(hostile):
    """Base64 of zlib of the tests, wrapped over lines, names built at run time: the page that
    carries it is withheld (hidden_tests.readings undoes the encoding), and the runtime watch
    holds the grade for review."""
    row = hostile.rows["dumps_tests_encoded"]
    assert (row.status, row.score) == ("graded", 5), row
    outputs = "\n".join(o.get("text", "") for c in hostile.autograded_notebook("dumps_tests_encoded", H).cells
                        for o in c.get("outputs", []))
    assert "assert square(-4) == 16" not in outputs, "the dump was not encoded: this case tests nothing"
    assert hidden_tests.leaked_lines(outputs, hostile.secrets), "the encoded dump did not happen"
    assert "feedback hostile.html withheld" in row.reason, row.reason
    assert "seen in the kernel: hostile: after cell" in row.reason and "added pre_run_cell callbacks" in row.reason
    assert row.shown_status() == "graded, held for review", row
    for name, text in _student_files(hostile, "dumps_tests_encoded").items():
        assert hidden_tests.leaked_lines(text, hostile.secrets) == [], f"hidden test code in {name}"


def test_failing_hidden_test_shows_name_points_and_message_not_code(hostile):
    row = hostile.rows["wrong_mean"]
    assert (row.status, row.score, row.max_score) == ("graded", 2, 5), row
    files = _student_files(hostile, "wrong_mean")
    for name, text in files.items():
        assert hidden_tests.leaked_lines(text, hostile.secrets) == [], f"hidden test code in {name}"
    assert "inside the test test_mean: its code is not shown" in files["hostile.html"]
    results = json.loads(files["results.json"])
    by_test = {t["test"]: t for t in results["tests"]}
    assert [t["test"] for t in results["tests"]] == ["test_square", "test_mean"]
    assert by_test["test_square"] == {"test": "test_square", "notebook": H, "points": 2.0, "max_points": 2.0,
                                      "passed": True, "message": ""}
    assert by_test["test_mean"]["passed"] is False and by_test["test_mean"]["points"] == 0
    assert by_test["test_mean"]["message"].startswith("AssertionError"), by_test["test_mean"]


def test_grades_csv_has_one_points_column_per_test(hostile, tmp_path):
    path = grader.write_grades_csv(list(hostile.rows.values()), tmp_path / "grades.csv")
    with open(path, newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert float(rows["wrong_mean"]["points:test_square"]) == 2
    assert float(rows["wrong_mean"]["points:test_mean"]) == 0
    assert float(rows["copied_test_cell"]["points:test_mean"]) == 3


def test_copied_test_cell_is_graded_with_a_note(hostile):
    row = hostile.rows["copied_test_cell"]
    assert (row.status, row.score, row.max_score) == ("graded", 5, 5), row
    assert "cell test_square appears 2 times: kept the one that matches the release" in row.reason, row.reason


# --------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------

E = "setup_check"


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory):
    """A copy of the course's code with one small assignment and one complete submission, graded
    from the copy's own folder, where ``helpers`` (for the grader) is the copy's."""
    require_sandbox()
    root = copy_of_repository(tmp_path_factory.mktemp("course-copy"), "grader", "tools", "helpers")
    c = Course(root, [], fixtures=[E])
    shutil.rmtree(root / "release")         # the command makes it
    os.remove(root / "gradebook.db")
    c.submit("complete", E, c.source_notebook(E))
    return c


def _grade_copy(root, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "grader", "--course-root", str(root)], cwd=root,
                          env=environment, capture_output=True, text=True, timeout=600)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_copy_graded_from_its_own_folder_gets_the_same_scores(course_copy):
    run = _grade_copy(course_copy.root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[check] setup_check: the solution gets 2/2 here" in run.stdout, run.stdout
    with open(course_copy.root / "grades.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["status"], float(row["score"]), float(row["max_score"])) == ("graded", 2, 2), row
    again = _grade_copy(course_copy.root)
    assert again.returncode == 0 and "remembered from an earlier check" in again.stdout, again.stdout


def test_a_broken_environment_refuses_to_grade_and_writes_nothing(course_copy, tmp_path):
    before = {name: _digest(course_copy.root / name) for name in ("gradebook.db", "grades.csv")}
    run = _grade_copy(course_copy.root, COURSE_MODELS_DIR=str(tmp_path / "no-models-here"))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "REFUSING TO GRADE" in run.stderr and "setup" in run.stderr, run.stderr
    assert "models folder" in run.stderr and "is missing" in run.stderr, run.stderr
    after = {name: _digest(course_copy.root / name) for name in ("gradebook.db", "grades.csv")}
    assert after == before, "a refused run changed the gradebook or grades.csv"


def test_a_setup_cell_failing_is_not_graded_and_leaves_no_score(course_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "no-models-here"))
    course_copy.submit("unlucky", E, course_copy.source_notebook(E))
    grader.ensure_gradebook(course_copy.root)
    row = grader.autograde_submission(course_copy.root, "unlucky", E, feedback=True)
    assert row.status == "not graded" and row.score == 0, row
    assert "environment fault" in row.reason and "read-only cell setup" in row.reason, row.reason
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook("sqlite:///" + str(course_copy.root / "gradebook.db")) as gradebook:
        with pytest.raises(MissingEntry):
            gradebook.find_submission(E, "unlucky")


def test_solution_check_names_the_failing_cell(course_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODELS_DIR", str(tmp_path / "no-models-here"))
    (check,) = solution_check.check_solutions(course_copy.root, [E])
    assert not check.passed and not check.cached
    assert any("read-only cell setup" in p and "is missing" in p for p in check.problems), check.problems
