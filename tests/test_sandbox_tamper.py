"""Submissions that patch what the hidden tests rely on (tests/fixtures/tamper.py).

Each part of the fixture has a naive hidden test (``*_naive``: math.isclose,
torch.allclose, numpy.testing, the test's own time.perf_counter) and a
hardened one written by the rules of course/grading_security.md. Every case
below is a WRONG implementation plus a patch meant to make the tests pass.
The naive test is fooled (the attack is real); the hardened one is not (the
rules work). One case goes further than any in-kernel test can resist: it
hooks IPython itself; the grader's tamper review must flag it.

A new case is one entry in ``CASES``.
"""
from __future__ import annotations

import pytest

from tests.pipeline import Course, require_sandbox, with_cell_replaced
import grader
from grader import tamper_review

pytestmark = pytest.mark.pipeline

A = "tamper"
FULL = 9
NAIVE = {"test_scale_naive", "test_mean_of_naive", "test_elapsed_naive"}

CASES = [
    {"name": "scale_wrong_patches_allclose", "cell": "scale",
     "source": "import numpy, torch\n"
               "torch.allclose = lambda *args, **kwargs: True\n"
               "numpy.testing.assert_allclose = lambda *args, **kwargs: None\n"
               "def scale(values, factor):\n"
               "    return values.to(torch.float32) * factor + 1     # wrong\n",
     "fooled": ["test_scale_naive"], "holds": ["test_scale"]},
    {"name": "scale_wrong_fakes_tensor_methods", "cell": "scale",
     "source": "import torch\n"
               "class Agreeable(torch.Tensor):\n"
               "    def tolist(self):\n"
               "        return [3.0, 7.5, -12.0]\n"
               "    def __eq__(self, other):\n"
               "        return True\n"
               "torch.Tensor.tolist = lambda self: [3.0, 7.5, -12.0]\n"
               "torch.allclose = lambda *args, **kwargs: True\n"
               "def scale(values, factor):\n"
               "    return (values.to(torch.float32) * 0).as_subclass(Agreeable)   # wrong\n",
     "fooled": [], "holds": ["test_scale"]},
    {"name": "mean_wrong_patches_isclose", "cell": "mean_of",
     "source": "import math\n"
               "math.isclose = lambda *args, **kwargs: True\n"
               "def mean_of(values):\n"
               "    return sum(values) / (len(values) + 1)     # wrong\n",
     "fooled": ["test_mean_of_naive"], "holds": ["test_mean_of"]},
    {"name": "mean_returns_rigged_object", "cell": "mean_of",
     "source": "import builtins, math\n"
               "class Anything(float):\n"
               "    def __eq__(self, other): return True\n"
               "    def __le__(self, other): return True\n"
               "    def __ge__(self, other): return True\n"
               "    def __lt__(self, other): return False\n"
               "    def __gt__(self, other): return False\n"
               "    def __sub__(self, other): return 0.0\n"
               "    def __rsub__(self, other): return 0.0\n"
               "math.isclose = lambda *args, **kwargs: True\n"
               "builtins.abs = lambda x: 0.0\n"
               "builtins.round = lambda x, *digits: 3.0\n"
               "def mean_of(values):\n"
               "    return Anything(42.0)     # wrong, but agrees with everything\n",
     "fooled": ["test_mean_of_naive"], "holds": ["test_mean_of"]},
    {"name": "elapsed_made_up_and_clock_patched", "cell": "elapsed",
     "source": "import itertools, time\n"
               "_ticks = itertools.count()\n"
               "time.perf_counter = lambda: float(next(_ticks))     # every reading one second later\n"
               "time.sleep = lambda seconds: None\n"
               "def elapsed(fn):\n"
               "    return 0.25     # wrong: never times the call\n",
     "fooled": ["test_elapsed_naive"], "holds": ["test_elapsed"]},
]

# Beyond what any in-kernel test resists: rewrite every later cell to `pass`.
HOOK = {"name": "hooks_ipython", "cell": "scale",
        "source": "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
                  "def scale(values, factor):\n"
                  "    return values     # wrong\n"}

# The same hook with every name built at run time: the text review reads nothing suspect in it,
# the runtime watch sees the transformer appear after the cell.
HOOK_HIDDEN = {"name": "hooks_ipython_names_hidden", "cell": "scale",
               "source": "import IPython\n"
                         "_shell = getattr(IPython, 'get_' + 'ipython')()\n"
                         "getattr(_shell, 'input_transformers_' + 'cleanup').append(lambda lines: ['pass\\n'])\n"
                         "def scale(values, factor):\n"
                         "    return values     # wrong\n"}

# The same hook from a module handed in beside the notebook, its names built at run time so that
# no cell shows them: the file is refused (never copied into the graded folder), so the import fails.
EXTRA_FILE = {"name": "hook_in_extra_file", "cell": "scale", "file": "_speedups.py",
              "file_source": "import sys\n"
                             "_shell = getattr(sys.modules['IP' + 'ython'], 'get_' + 'ipython')()\n"
                             "getattr(_shell, 'input_transformers_' + 'cleanup').append(lambda lines: ['pass\\n'])\n",
              "source": "import _speedups\n"
                        "def scale(values, factor):\n"
                        "    return values     # wrong\n"}

# The attack table: what a dishonest student could write, with no function implemented (the
# starter scores 0). "held": the grade is held for review with a finding that names what it did
# (whatever it scored); "open": it beats the grader today, unflagged (the hidden tests still run
# in the student's kernel; issue 24): kept as a strict expected failure, so that closing the hole
# shows up here.
NOT_DONE = "def scale(values, factor):\n    raise NotImplementedError\n"
ATTACKS = [
    {"name": "attack_ast_transformer", "expect": "held", "finding": "after scale: added AST transformers",
     "source": "import ast, IPython\n"
               "class _Pass(ast.NodeTransformer):\n"
               "    def visit_Assert(self, node):\n"
               "        return ast.Pass()\n"
               "getattr(getattr(IPython, 'get_' + 'ipython')(), 'ast_' + 'transformers').append(_Pass())\n" + NOT_DONE},
    {"name": "attack_trace_function", "expect": "held", "finding": "after scale: installed a trace function",
     "source": "import sys\n"
               "def _tracer(frame, event, arg):\n"
               "    return _tracer\n"
               "getattr(sys, 'set' + 'trace')(_tracer)\n" + NOT_DONE},
    {"name": "attack_pre_execute_repatches", "expect": "held", "finding": "after scale: added pre_execute callbacks",
     "source": "import math, IPython\n"
               "def _again():\n"
               "    math.isclose = lambda *a, **k: True\n"
               "getattr(getattr(IPython, 'get_' + 'ipython')(), 'events').register('pre_' + 'execute', _again)\n"
               + NOT_DONE},
    {"name": "attack_torch_function_mode", "expect": "held", "finding": "after scale: added torch function modes",
     "source": "import torch\n"
               "from torch.overrides import TorchFunctionMode as _Mode\n"
               "class _Agree(_Mode):\n"
               "    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
               "        return func(*args, **(kwargs or {}))\n"
               "_Agree().__enter__()\n" + NOT_DONE},
    # The hardened test binds its trusted tools as globals of the notebook, then calls the student's
    # function: the function rebinds them through its caller's frame.
    {"name": "attack_frame_globals", "expect": "open", "cell": "mean_of",
     "source": "import sys\n"
               "_caller = getattr(sys, '_get' + 'frame')\n"
               "class _Zero(float):\n"
               "    def __sub__(self, other):\n"
               "        return 0.0\n"
               "def mean_of(values):\n"
               "    scope = getattr(_caller(1), 'f_' + 'globals')\n"
               "    scope['_type'], scope['_float'] = (lambda value: 'same'), 'same'\n"
               "    return _Zero(0.0)\n"},
]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require_sandbox()
    c = Course(tmp_path_factory.mktemp("tamper-course"), [], fixtures=[A], overrides={"Execute.timeout": 60})
    c.submit("correct", A, c.source_notebook(A))
    for case in [*CASES, HOOK, HOOK_HIDDEN, EXTRA_FILE]:
        c.submit(case["name"], A, with_cell_replaced(c.source_notebook(A), case["cell"], case["source"]))
    (c.root / "submitted" / EXTRA_FILE["name"] / A / EXTRA_FILE["file"]).write_text(EXTRA_FILE["file_source"])
    starter = c.release_notebook(A)
    c.submit("starter", A, starter)
    for attack in ATTACKS:
        c.submit(attack["name"], A, with_cell_replaced(starter, attack.get("cell", "scale"), attack["source"]))
    students = ["correct", "starter", *[case["name"] for case in CASES], HOOK["name"], HOOK_HIDDEN["name"],
                EXTRA_FILE["name"], *[attack["name"] for attack in ATTACKS]]
    rows = grader.grade_submissions(c.root, [(s, A) for s in students], workers=2,
                                     overrides=c.overrides, feedback=False, sandbox=True)
    c.rows = {row.student: row for row in rows}
    return c


def test_correct_submission_gets_full_marks(course):
    row = course.rows["correct"]
    assert (row.status, row.score, row.max_score) == ("graded", FULL, FULL), row
    assert "review" not in row.reason


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_patching_does_not_rescue_a_wrong_answer(course, case):
    row = course.rows[case["name"]]
    assert row.status == "graded", row
    scores = course.cell_scores(case["name"], A)
    for cell in case["holds"]:
        assert scores[cell][0] == 0, f"{case['name']}: the hardened {cell} was fooled ({scores[cell]})"
    for cell in case["fooled"]:
        # The attack works on the naive version: the hardening is what stops it.
        assert scores[cell][0] == scores[cell][1], f"{case['name']}: expected the naive {cell} to be fooled"
    assert "review for tampering" in row.reason, row.reason


def test_interpreter_hooks_are_flagged_for_review(course):
    row = course.rows[HOOK["name"]]
    assert row.status == "graded"
    assert "review for tampering" in row.reason and "IPython" in row.reason, row.reason


def test_a_hook_whose_names_are_built_at_run_time_is_seen_in_the_kernel(course):
    """The text review finds nothing to flag; the executor's own request after the cell sees the
    input transformer that the cell added, and the grade is held for review. (The hook still
    rewrites the later test cells: detection, not defence; course/grading_security.md.)"""
    import nbformat

    row = course.rows[HOOK_HIDDEN["name"]]
    notebook = nbformat.from_dict(course.autograded_notebook(HOOK_HIDDEN["name"], A))
    assert tamper_review.tamper_review(with_cell_replaced(course.source_notebook(A), "scale",
                                                         HOOK_HIDDEN["source"])) == [], "the text review flags it"
    assert "seen in the kernel: tamper: after scale: added input transformers" in row.reason, row.reason
    assert row.shown_status() == "graded, held for review", row
    assert notebook.cells, "no autograded notebook"
    for case in CASES:      # each patch of a watched function is seen where it happened
        assert "seen in the kernel" in course.rows[case["name"]].reason, (case["name"], course.rows[case["name"]].reason)


@pytest.mark.parametrize("attack", [pytest.param(a, marks=pytest.mark.xfail(
    strict=True, reason="open: the hidden tests run in the student's kernel (issue 24)")) if a["expect"] == "open" else a
    for a in ATTACKS], ids=[a["name"] for a in ATTACKS])
def test_attack_scores_no_more_than_the_starter_or_is_held_with_its_reason(course, attack):
    row, starter = course.rows[attack["name"]], course.rows["starter"]
    assert row.status == "graded" and starter.status == "graded", (row, starter)
    if attack["expect"] == "held":       # whatever it scored, a person reads it before it counts
        assert row.shown_status() == "graded, held for review" and attack["finding"] in row.reason, row.reason
    else:
        assert row.score <= starter.score or row.held_for_review, \
            f"scored {row.score} (the starter {starter.score}), unflagged: {row.reason}"


def test_code_handed_in_beside_the_notebook_is_refused_and_held_for_review(course):
    name, handed_in = EXTRA_FILE["name"], EXTRA_FILE["file"]
    row = course.rows[name]
    scores = course.cell_scores(name, A)
    assert row.status == "graded" and scores["test_scale"][0] == 0, (row, scores)
    assert row.score <= course.rows["correct"].score - scores["test_scale"][1], row
    assert not (course.root / "autograded" / name / A / handed_in).exists(), "the refused file was graded"
    assert (course.root / "submitted" / name / A / handed_in).is_file(), "the submission lost a file"
    assert f"refused (not graded, not run): {handed_in}" in row.reason, row.reason
    assert row.shown_status() == "graded, held for review" and row.held_for_review, row
    executed = course.autograded_notebook(name, A)
    errors = [o.get("ename") for cell in executed.cells if cell.get("metadata", {}).get("nbgrader", {})
              .get("grade_id") == "scale" for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == ["ModuleNotFoundError"], errors
    import csv
    from grader.reports import write_grades_csv

    with open(write_grades_csv(list(course.rows.values()), course.root / "grades.csv"), newline="") as handle:
        status = {r["student"]: r["status"] for r in csv.DictReader(handle)}
    assert status[name] == "graded, held for review" and status["correct"] == "graded", status


def test_tamper_review_leaves_honest_code_alone():
    import nbformat

    from tests.pipeline import FIXTURES_DIR, REPO_ROOT
    from tools.notebook_builder import render

    for assignment in ("tamper", "hostile", "robust"):
        notebook = nbformat.reads(render(FIXTURES_DIR / f"{assignment}.py"), as_version=4)
        assert tamper_review.tamper_review(notebook) == [], assignment
    # The course's own solutions, read as if a student had written them (only what the
    # release provides counts as the course's code): nothing to flag.
    for source in sorted((REPO_ROOT / "source").glob("*/*.ipynb")):
        release = REPO_ROOT / "release" / source.parent.name / source.name
        if not release.exists():     # not generated yet; the grader always has it
            continue
        known = tamper_review.reference_lines(nbformat.read(release, as_version=4))
        assert tamper_review.tamper_review(nbformat.read(source, as_version=4), known) == [], source.name


def test_tamper_review_flags_what_it_should_and_skips_course_code():
    import nbformat

    student = nbformat.v4.new_notebook()
    student.cells = [nbformat.v4.new_code_cell(
        "import os, sys\n"
        "model.eval()\n"                                   # a method named eval: not the builtin
        "if os.environ.get('NBGRADER_EXECUTION'):\n"
        "    pass\n"
        "class Rigged:\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return 0\n"
        "sys._getframe(1)\n"
        "print(In[-2])\n"                                  # the code of the test cell just run
        "provided = globals()\n")]
    findings = tamper_review.tamper_review(student)
    assert [f.split(": ", 1)[1] for f in findings] == [
        "checks whether it is being graded", "overrides torch functions for its objects",
        "inspects the caller's frames", "reads IPython's input history (the code of earlier cells, tests included)",
        "reaches module globals"], findings
    # The same line in the course's own notebook is not the student's.
    assert tamper_review.tamper_review(student, {"provided = globals()"}) == findings[:-1]
