"""One grading path behind every door: the course's rules inside nbgrader's own Autograde.

The Formgrader's autograde button, ``nbgrader autograde`` on the command line and
``python -m grader`` all build nbgrader's ``Autograde`` converter from ``nbgrader_config.py``.
That file makes its autograde preprocessors

    GradingGate -> SandboxedExecute -> RefuseEnvironmentFault -> nbgrader's own (scores, ...)

so whichever door a grader uses, a submission is graded the same way:

- ``GradingGate`` removes from the graded copy every file the assignment does not accept
  (``grader/handin.py``: a ``.py`` beside the notebook would run unread); it refuses to grade
  (nothing executed, nothing scored) where the sandbox cannot
  start, with the reason and the fix; and before the first submission of an assignment in an
  environment it grades the assignment's own solution (``grader/solution_check.py``, a pass is
  remembered) and refuses unless that gets full marks.
- ``grader.sandbox.SandboxedExecute`` runs the kernel in the sandbox, as the sandbox's user.
- ``RefuseEnvironmentFault`` stops a run whose course cells failed before any student code ran
  (a missing model, a broken install) before nbgrader saves a score, and removes the
  submission's gradebook rows: an environment fault is never a student's score.

Feedback, whichever door makes it, goes through ``withhold_leaking_feedback`` (GenerateFeedback's
post-convert hook): a page in which a line of hidden-test code is still found is deleted.

``python -m grader`` checks every solution once per run before grading, and reads environment
faults and leaking pages itself (to report them in its table), so ``grader.pipeline.make_api``
turns those steps off for the submissions it grades; the sandbox and the scores are the same.

Grading without the sandbox takes one explicit, loudly named option,
``c.Sandbox.unsafe_grade_without_sandbox = True`` (``python -m grader --sandbox off`` sets it):
student code then runs with the grader's own rights.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Dict, List, Unicode

from nbgrader.preprocessors import NbGraderPreprocessor


class GradingRefused(RuntimeError):
    """The course's rules forbid grading here and now; the message says why and what to do."""


def course_root_of(config) -> Path:
    """The course folder the config grades (nbgrader_config.py sets it; else the working folder)."""
    return Path(config.CourseDirectory.get("root") or os.getcwd()).resolve()


def unsandboxed(config) -> bool:
    """Whether the instructor explicitly allowed student code to run with the grader's rights."""
    return bool(config.Sandbox.get("unsafe_grade_without_sandbox", False))


class GradingGate(NbGraderPreprocessor):
    """First autograde step: the sandbox must work, and the assignment's solution must pass."""

    solution_check = Bool(True, help=(
        "Before grading a submission, grade the assignment's own solution (once per environment, "
        "remembered in .grader-cache/) and refuse unless it gets full marks. python -m grader "
        "checks every assignment once per run itself and turns this off for its submissions.")
    ).tag(config=True)

    handed_in_files = Dict(value_trait=List(Unicode()), default_value={}, help=(
        "Files an assignment asks students to hand in besides its notebooks: {assignment: [glob, ...]}, "
        "relative to the submission folder. Anything else a submission holds is removed from the graded "
        "copy before any kernel starts (grader/handin.py); the submission itself is kept as handed in.")
    ).tag(config=True)

    def preprocess(self, nb, resources):
        meta = resources.get("nbgrader", {})
        assignment, student = meta.get("assignment"), meta.get("student")
        if assignment and student:
            self._refuse_undeclared_files(assignment, student)
        if unsandboxed(self.config):
            self.log.warning("NO SANDBOX (c.Sandbox.unsafe_grade_without_sandbox): %s's code runs with your "
                             "rights and can read solutions, hidden tests and the gradebook", student)
        else:
            from grader import sandbox

            reason = sandbox.unavailable_reason()
            if reason:
                raise GradingRefused(
                    f"refusing to grade {student}'s {assignment}: the grading sandbox cannot start here "
                    f"({reason}). Nothing was run or scored. Install bubblewrap (`make setup` as root does), "
                    "or, for trusted submissions only, set c.Sandbox.unsafe_grade_without_sandbox = True")
        if self.solution_check and assignment:
            self._check_solution(assignment, student)
        return nb, resources

    def _refuse_undeclared_files(self, assignment: str, student: str) -> None:
        from nbgrader.coursedir import CourseDirectory

        from grader import handin

        coursedir = CourseDirectory(config=self.config)
        graded = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
        refused = handin.remove_refused(graded, course_root_of(self.config), assignment,
                                        self.handed_in_files.get(assignment, []), coursedir.ignore)
        if refused:
            self.log.warning("%s's %s: %s", student, assignment, handin.refusal_note(refused, assignment))

    def _check_solution(self, assignment: str, student: str) -> None:
        from grader import solution_check

        if student == solution_check.STUDENT:     # this is the check itself, in its scratch course
            return
        root = course_root_of(self.config)
        if not (root / "source" / assignment).is_dir():
            raise GradingRefused(f"refusing to grade {student}'s {assignment}: no source/{assignment} in {root} "
                                 "to check the solution against")
        mode = (False, "") if unsandboxed(self.config) else (True, "")
        # nbgrader's utils.setenv deletes NBGRADER_EXECUTION when it leaves, also when it was set
        # before (it looks up the value, not the name): the check's own autograde would take it
        # from this one's kernel, and this one's exit would fail on the missing name.
        execution = os.environ.get("NBGRADER_EXECUTION")
        try:
            check, = solution_check.check_solutions(root, [assignment], sandbox=mode, workers=1)
        finally:
            if execution is not None:
                os.environ["NBGRADER_EXECUTION"] = execution
        if not check.passed:
            problems = "; ".join(check.problems) or "no failing test named"
            raise GradingRefused(
                f"refusing to grade {student}'s {assignment}: the assignment's own solution gets "
                f"{check.score:g}/{check.max_score:g} in this environment, so every grade would measure the "
                f"environment, not the students ({problems}). Fix the environment (`make setup`) and grade again")
        self.log.info("solution check: %s's solution gets %g/%g here%s", assignment, check.score,
                      check.max_score, " (remembered)" if check.cached else "")


class RefuseEnvironmentFault(NbGraderPreprocessor):
    """After execution, before scores are saved: a course cell that failed is not the student's score."""

    def preprocess(self, nb, resources):
        from grader import pipeline
        from grader.gradebook import _forget_submission

        meta = resources.get("nbgrader", {})
        name = resources.get("unique_key") or meta.get("notebook") or "notebook"
        fault = pipeline.environment_fault({name: nb})
        if fault:
            _forget_submission(course_root_of(self.config), meta["assignment"], meta["student"], meta.get("db_url"))
            raise GradingRefused(
                f"environment fault, not the submission's: {fault}. {meta.get('student')}'s submission was not "
                "scored; fix the grading environment (`make setup`) and grade again")
        return nb, resources


def withhold_leaking_feedback(assignment=None, student=None, notebooks=(), **_) -> None:
    """GenerateFeedback's post-convert hook, for every door (the Formgrader's *Generate Feedback*,
    ``nbgrader generate_feedback``): a page of this submission in which a line of hidden-test code
    is still found is deleted, so *Release Feedback* cannot send it. nbgrader calls it with the
    autograded notebooks' paths (``<course>/autograded/<student>/<assignment>/<name>.ipynb``) and
    swallows what it raises: any failure to check deletes the page instead (fail closed)."""
    import logging

    from grader import hidden_tests, pipeline

    log = logging.getLogger("grader.every_door")
    for notebook in map(Path, notebooks):
        root, student_id, assignment_id = notebook.parents[3], notebook.parents[1].name, notebook.parent.name
        page = root / "feedback" / student_id / assignment_id / f"{notebook.stem}.html"
        if not page.is_file():
            continue
        try:
            secrets = pipeline._secrets(root, student_id, assignment_id, notebook.stem)
            leaked = hidden_tests.leaked_lines(page.read_text(encoding="utf-8", errors="replace"), secrets)
        except Exception as error:
            leaked = [f"the check failed ({type(error).__name__}: {error})"]
        if leaked:
            page.unlink()
            log.error("feedback %s withheld (deleted): %d hidden-test line(s) were still in it", page, len(leaked))


# nbgrader 0.9.6's Autograde.autograde_preprocessors, with the course's steps around its Execute.
AUTOGRADE_PREPROCESSORS = [
    "grader.every_door.GradingGate",
    "grader.sandbox.SandboxedExecute",
    "grader.every_door.RefuseEnvironmentFault",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
