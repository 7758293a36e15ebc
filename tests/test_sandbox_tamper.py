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


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require_sandbox()
    c = Course(tmp_path_factory.mktemp("tamper-course"), [], fixtures=[A], overrides={"Execute.timeout": 60})
    c.submit("correct", A, c.source_notebook(A))
    for case in [*CASES, HOOK]:
        c.submit(case["name"], A, with_cell_replaced(c.source_notebook(A), case["cell"], case["source"]))
    students = ["correct", *[case["name"] for case in CASES], HOOK["name"]]
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
