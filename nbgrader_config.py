"""nbgrader configuration for the course (nbgrader 0.9.6).

Every setting here was chosen for a reason recorded beside it; see
course/instructor_guide.md for how they play out when grading.
"""
import os
import re
import sys

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))
# The course's own preprocessors below live in grader/: importable from the nbgrader
# command line and the formgrader too, not only from `python -m grader`.
if COURSE_ROOT not in sys.path:
    sys.path.append(COURSE_ROOT)

# `.venv/bin/nbgrader ...` works without an activated venv: nbgrader starts the venv's `alembic`
# to create a gradebook, so its bin/ goes on PATH.
from grader.gradebook import _venv_bin_on_path  # noqa: E402

_venv_bin_on_path()

c.CourseDirectory.course_id = "llm-generation-perf"
c.CourseDirectory.root = COURSE_ROOT
# One sqlite gradebook at the course root by default. sqlite is not safe for several graders
# writing at once (grader/gradebook.py serialises this machine's writes); for a large class and
# several graders in the Formgrader, COURSE_DB_URL=postgresql://USER@HOST:PORT/DB names a
# PostgreSQL database instead, for `python -m grader` and every nbgrader command alike.
c.CourseDirectory.db_url = (os.environ.get("COURSE_DB_URL")
                            or "sqlite:///" + os.path.join(COURSE_ROOT, "gradebook.db"))

# nbgrader's exchange (release -> fetch -> submit -> collect -> feedback, from JupyterLab's
# Assignment List and the Formgrader): a folder inside the course, git-ignored, so the round
# trip works on one machine without root. On JupyterHub point every user at one shared folder
# with COURSE_EXCHANGE_DIR (course/instructor_guide.md, "Running a class through the exchange").
SHARED_EXCHANGE_DIR = os.environ.get("COURSE_EXCHANGE_DIR")
EXCHANGE_DIR = SHARED_EXCHANGE_DIR or os.path.join(COURSE_ROOT, "exchange")
c.Exchange.root = EXCHANGE_DIR
if not SHARED_EXCHANGE_DIR:
    # nbgrader only creates it on the first release; until then every Assignment List and
    # Formgrader page fails with "Unwritable directory". A shared one is the admin's to make.
    try:
        os.makedirs(EXCHANGE_DIR, exist_ok=True)
    except OSError:
        pass    # a read-only course copy: nbgrader's own message names the folder if it is used

# Notebook runs write artifacts/ next to the notebook: never ship or collect them.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "artifacts"]

# Students see a clear message, not a bare NotImplementedError.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError(\"replace this line with your implementation\")"
}

# Per-cell limit. Autograding runs the fast profile (tiny model: loading and
# INT8 export take seconds), but a student's full run on the embedded model
# needs about a minute for ONNX export + quantization on 2 cores. A cell that
# runs past the limit is interrupted and the next cells still run.
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT_S", "300"))
c.Execute.interrupt_on_timeout = True

# A test cell scores 0 if it writes anything to stderr. Known library noise
# (Python warnings, transformers' generation notices, progress bars) must not
# zero it. Only stderr *streams* are matched: exceptions are "error" outputs,
# which this preprocessor never touches, so no real failure can be hidden.
IGNORED_STDERR = [
    r"\w*Warning: ",                                   # warnings.warn(...) lines
    r"Setting `pad_token_id` to `eos_token_id`",       # transformers generate
    r"The attention mask (?:and the pad token id|is not set)",
    r"generation flags are not valid",
    r"`generation_config` default values have been modified",
    r"it/s\]|s/it\]",                                  # tqdm progress bars
    r"legacy behaviou?r of the <class",                # tokenizer notice
]
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = "|".join(f"(?:{p})" for p in IGNORED_STDERR)
re.compile(c.IgnorePattern.pattern)  # fail at load time, not mid-grading

# A submission that prints megabytes must not bloat the gradebook or feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Grade cells a student deleted are put back from the gradebook and run.
c.OverwriteCells.add_missing_cells = True

# A copied test cell (nbgrader #1083) is graded, not refused: nbgrader's DeduplicateIds is
# replaced by one that keeps the copy matching the release (grader/duplicate_cells.py).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "grader.duplicate_cells.DeduplicateGradeCells",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback must not reveal hidden tests or mark schemes: ClearHiddenTests empties their
# source, HideTestCode their traces in outputs (tracebacks, printed code; grader/hidden_tests.py).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "grader.hidden_tests.HideTestCode",
    "grader.feedback_math.MathToMathML",      # formulas drawn offline, no MathJax from a CDN
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# ...and a page in which a hidden-test line is still found is deleted before anyone can release it.
c.GenerateFeedback.post_convert_hook = "grader.every_door.withhold_leaking_feedback"

# Pages the Formgrader and feedback render take MathJax from the Jupyter server when offline
# (tools/templates/classic/mathjax.html.j2, served by jupyter-server-mathjax). Template folders
# are searched in this order, so nbgrader's own (its "formgrade" and "feedback") come second.
import nbgrader  # noqa: E402
import tools  # noqa: E402  (the course's package: from COURSE_ROOT above, or PYTHONPATH for a course copy)

c.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(tools.__file__), "templates"),
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]
# The Formgrader's "current configuration" panel cannot show jupyter-server's own extension list
# (a lazy value) and logs "Formgrader config is not serializable" on every page: turn the panel off.
c.FormgradeExtension.debug = False

# Every door grades the same way (grader/every_door.py): the Formgrader's autograde button,
# `nbgrader autograde` and `python -m grader` run each submission's kernel in the sandbox, after
# the assignment's own solution has passed the solution check, and score no environment fault.
from grader.every_door import AUTOGRADE_PREPROCESSORS  # noqa: E402

c.Autograde.autograde_preprocessors = AUTOGRADE_PREPROCESSORS

# The sandbox around every autograded kernel (grader/sandbox.py; what it stops and what it
# cannot: course/grading_security.md). These are its defaults, written out to be easy to
# find and change. A submission that reaches a limit is stopped and graded on what ran.
# Where the sandbox cannot start, every door refuses to grade. The one way around it, for
# trusted code only, runs student code with YOUR rights (solutions, hidden tests, gradebook):
# c.Sandbox.unsafe_grade_without_sandbox = True
c.Sandbox.memory_limit_mb = 6144     # per process (address space) and, with cgroups, in total
c.Sandbox.max_processes = 128        # processes and threads together (cgroup; RLIMIT_NPROC for non-root)
c.Sandbox.max_file_size_mb = 256     # largest file a submission may write
c.Sandbox.work_size_mb = 512         # its working folder (in memory, discarded afterwards)
c.Sandbox.tmp_size_mb = 512          # its private /tmp
c.Sandbox.wall_time_s = 1800         # the whole notebook; c.Execute.timeout above is per cell
