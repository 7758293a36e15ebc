"""The course's grader: release, autograde in a sandbox, feedback, grades.

``python -m grader`` is the command (``grader/__main__.py``). One module per concern:

- ``pipeline``: nbgrader's API on a course, release, one submission's autograde and feedback
- ``every_door``: the autograde steps every door runs (``nbgrader_config.py`` names them): refuse
  without a sandbox, the solution check first, no score for an environment fault
- ``dispatch``: many submissions at once, in worker processes here or on a Dask cluster
- ``cluster``: one submission graded on a cluster worker and written back here;
  ``worker``: ``python -m grader.worker SCHEDULER`` starts a machine's grading workers
  and ``scheduler``: ``python -m grader.scheduler`` the scheduler they join;
  ``certificates``: the course's CA and TLS certificates for them; ``slurm``: workers as Slurm jobs
- ``gradebook``: where it is (sqlite or PostgreSQL), one writer at a time, the backup before
  grading, forgetting a submission, moving one submission's results between gradebooks
- ``progress``: done, running, not graded and time left over a class
- ``reports``: the result rows (``GradeRow``), ``grades.csv``, the printed table
- ``sandbox``: the bubblewrap sandbox and limits around every autograded kernel
- ``tamper_review``: the grader-side static review of the student's own cells
- ``hidden_tests``, ``duplicate_cells``, ``feedback_math``: nbgrader preprocessors (named in
  nbgrader_config.py; the last writes feedback formulas as MathML)
- ``solution_check``: each assignment's own solution graded first
- ``roster``: students.csv into the gradebook, the LMS exports

The names below are the grading API that tests and benchmarks call.
"""
from grader.dispatch import default_workers, grade_submissions, start_worker_server
from grader.gradebook import ensure_gradebook, gradebook_assignments, serialised_gradebook
from grader.pipeline import (autograde_submission, discover_submissions, generate_release, load_config, make_api,
                             quiet_stdio, resolve_sandbox, source_assignments)
from grader.reports import GradeRow, format_table, write_grades_csv

from helpers.paths import REPO_ROOT    # the course graded by default

__all__ = ["GradeRow", "REPO_ROOT", "autograde_submission", "default_workers", "discover_submissions",
           "ensure_gradebook", "format_table", "generate_release", "grade_submissions", "gradebook_assignments",
           "load_config", "make_api", "quiet_stdio", "resolve_sandbox", "serialised_gradebook",
           "source_assignments", "start_worker_server", "write_grades_csv"]
