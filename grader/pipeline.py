"""The instructor's pipeline on nbgrader: release, autograde, feedback, grades.

Used by ``grader/__main__.py`` (the main command) and by the pipeline tests, so
the tests grade exactly the way the course does. Every step is per
assignment or per submission and reports failures instead of raising, so one
bad submission never stops the others.

Each submission's kernel runs in the sandbox of ``grader/sandbox.py``.
``grader/dispatch.py`` grades several at once in worker processes; every
gradebook session, in any process, holds an exclusive lock on the gradebook
(``grader/gradebook.py``), so concurrent autogrades never interleave their
writes. ``grader/reports.py`` holds the result rows, grades.csv and the table.
"""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import time
from pathlib import Path

from grader import handin
from grader.gradebook import _forget_submission, _venv_bin_on_path, serialised_gradebook, sqlite_url
from grader import reports
from grader.reports import GradeRow
from tools.notebook_builder import source_assignments  # source/ is the builder's; re-exported for callers


def load_config(course_root: Path, overrides: dict | None = None, db_url: str | None = None):
    """The course's nbgrader config with ``root`` pointed at ``course_root``.

    ``overrides`` maps "Section.option" to a value (tests shorten timeouts). The gradebook is
    ``db_url``, or else the sqlite file in ``course_root``: a copy of the course (a scratch
    course, a cluster worker's) never writes to the gradebook its config names.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    course_root = Path(course_root).resolve()
    config_file = course_root / "nbgrader_config.py"
    if not config_file.is_file():
        raise FileNotFoundError(f"no nbgrader_config.py in {course_root}: is this a course folder?")
    config = PyFileConfigLoader(config_file.name, path=str(course_root)).load_config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = db_url or sqlite_url(course_root)
    for key, value in (overrides or {}).items():
        section, _, option = key.partition(".")
        if not option:
            raise ValueError(f"override {key!r} must look like 'Section.option'")
        setattr(config[section], option, value)
    merged = Config()
    merged.merge(config)
    return merged


def sandbox_memory_mb(course_root: Path | None = None, overrides: dict | None = None) -> int:
    """The sandbox's memory limit per submission (MiB): the course config's, else the trait's default."""
    from grader.sandbox import Sandbox

    default = Sandbox.class_traits()["memory_limit_mb"].default()     # stated once, in the trait
    if course_root is None:
        return default
    try:
        value = load_config(course_root, overrides).Sandbox.get("memory_limit_mb")
    except Exception:
        return default
    return int(value) if value else default


def course_db_url(course_root: Path, db_url: str | None = None) -> str:
    """The gradebook the main command grades into: ``db_url`` (``--db-url``), else the one
    ``nbgrader_config.py`` names (``COURSE_DB_URL`` or an edited ``db_url``) when that is not
    sqlite, else ``<course_root>/gradebook.db`` (also when the config names the sqlite file of
    the folder it was copied from)."""
    if db_url:
        return db_url
    from traitlets.config.loader import PyFileConfigLoader

    course_root = Path(course_root).resolve()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    configured = config.CourseDirectory.get("db_url") or ""
    return configured if configured and not configured.startswith("sqlite:") else sqlite_url(course_root)


def make_api(course_root: Path, overrides: dict | None = None, sandbox: bool = False, sandbox_reports=None,
             kernel_threads: int = 0, db_url: str | None = None, **coursedir_settings):
    """nbgrader's API on ``course_root``; with ``sandbox`` every autograded kernel runs in grader.sandbox.

    ``sandbox_reports`` (a ``grader.sandbox.SandboxReports``) receives each notebook's report;
    ``kernel_threads`` (>0) sets each kernel's math-library threads unless the config already does.
    ``db_url``: the gradebook (default: the course's sqlite file).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    _venv_bin_on_path()
    config = load_config(course_root, overrides, db_url)
    for name, value in coursedir_settings.items():
        setattr(config.CourseDirectory, name, value)
    from grader import every_door

    # The same preprocessors as every other door (grader/every_door.py), whatever the course copy's
    # config says; this command checks solutions once per run and reports environment faults itself.
    config.Autograde.autograde_preprocessors = list(every_door.AUTOGRADE_PREPROCESSORS)
    config.GradingGate.solution_check = False
    config.RefuseEnvironmentFault.enabled = False
    config.GenerateFeedback.post_convert_hook = None       # _feedback checks the pages and says so
    config.Sandbox.unsafe_grade_without_sandbox = not sandbox
    if sandbox:
        if sandbox_reports is not None:
            config.SandboxedExecute.reports = sandbox_reports
        if kernel_threads and "kernel_threads" not in config.Sandbox:
            config.Sandbox.kernel_threads = kernel_threads
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


# --------------------------------------------------------------------------
# Release
# --------------------------------------------------------------------------

def generate_release(course_root: Path, assignment: str, overrides: dict | None = None,
                     db_url: str | None = None) -> dict:
    """Regenerate ``release/<assignment>`` from ``source/``, replacing it only on success.

    nbgrader writes into a staging folder first; the old release is swapped
    out only once the new one is complete, so a failure leaves it intact.
    """
    course_root = Path(course_root).resolve()
    staging_name = ".release-staging"
    staging = course_root / staging_name / assignment
    if staging.exists():
        shutil.rmtree(staging)
    api = make_api(course_root, overrides, db_url=db_url, release_directory=staging_name)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result.get("success"):
        shutil.rmtree(staging, ignore_errors=True)
        error = result.get("error") or result.get("log", "")
        if "Cannot add or remove cells" in (result.get("log") or "") + error:
            error = (f"the gradebook already holds submissions of {assignment}, and nbgrader refuses to add or "
                     f"remove cells of an assignment once it has submissions: source/{assignment} now has "
                     "different cells from the release those submissions were graded against. Either restore "
                     "the cells, or (this deletes those grades) copy gradebook.db aside and run "
                     f"`.venv/bin/nbgrader db assignment remove {assignment} --force`, then grade again.\n"
                     + error)
        return {"assignment": assignment, "success": False, "error": error}
    final = course_root / "release" / assignment
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{assignment}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(course_root / staging_name, ignore_errors=True)
    return {"assignment": assignment, "success": True, "error": ""}



# --------------------------------------------------------------------------
# Autograde
# --------------------------------------------------------------------------

def discover_submissions(course_root: Path) -> list[tuple[str, str]]:
    """``(student, assignment)`` pairs found under ``submitted/``, sorted."""
    submitted = Path(course_root) / "submitted"
    if not submitted.is_dir():
        return []
    pairs = []
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            pairs.append((student_dir.name, assignment_dir.name))
    return pairs


def _check_submission(course_root: Path, student: str, assignment: str) -> str:
    """A reason the submission cannot be graded, or '' if it looks gradable."""
    import nbformat

    source_dir = course_root / "source" / assignment
    if not source_dir.is_dir():
        known = ", ".join(source_assignments(course_root)) or "none"
        return f"no assignment named {assignment!r} in source/ (known: {known})"
    sub_dir = course_root / "submitted" / student / assignment
    expected = sorted(p.name for p in source_dir.glob("*.ipynb"))
    for path in sorted(sub_dir.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            # nbgrader copies submissions by content: a link would bring its target
            # (a solution, the gradebook) into the autograded folder.
            return f"submitted/{student}/{assignment}/{path.relative_to(sub_dir)} is a link or special file: not graded"
    present = [name for name in expected if (sub_dir / name).is_file() and not (sub_dir / name).is_symlink()]
    if not present:
        return f"none of the expected notebooks ({', '.join(expected)}) is in submitted/{student}/{assignment}/"
    for name in present:
        try:
            nbformat.read(sub_dir / name, as_version=4)
        except Exception as error:  # invalid JSON, wrong schema...
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return f"{name} is not a readable notebook ({type(error).__name__}: {first_line})"
    return ""


def gradebook_scores(db_url: str, assignment: str, student: str) -> tuple[float, float, dict, bool]:
    """Total, maximum, ``{notebook: {grade_id: (score, max)}}`` and whether a person must grade."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        cells = {notebook.name: {grade.name: (float(grade.score or 0), float(grade.max_score or 0))
                                 for grade in notebook.grades}
                 for notebook in submission.notebooks}
        return (float(submission.score), float(submission.max_score), cells,
                bool(submission.needs_manual_grade))


def resolve_sandbox(sandbox, reason: str | None = None) -> tuple[bool, str]:
    """``(use it, why not)`` for ``sandbox`` = True (required), False (off) or "auto" (when available).

    Decided once per grading run and passed down: a ``(use it, why not)`` pair comes back as it is.
    ``reason``: why the sandbox is unavailable, if the caller already asked (default: ask now).
    """
    if isinstance(sandbox, tuple):
        return sandbox
    if sandbox is False:
        return False, ""
    if reason is None:
        from grader import sandbox as sandbox_module

        reason = sandbox_module.unavailable_reason()
    if reason and sandbox == "auto":
        return False, ""
    return (not reason), reason


# nbgrader's words that say nothing about the cause; the grader looks for the cause instead.
_GENERIC_ERRORS = ("Please see the the above traceback", "There was an error processing assignment",
                   "Please see the error log")


def autograde_failure_reason(result: dict, student: str, assignment: str) -> str:
    """Why nbgrader could not grade a submission, named, with what to do (never its generic text)."""
    log = "\n".join(str(result.get(key) or "") for key in ("log", "error"))
    causes = []
    for line in log.splitlines():
        text = line.strip()
        match = re.match(r"\[\w+App \| ERROR\]\s*(.*)", text) or \
            re.match(r"^((?:[\w.]+\.)?\w*(?:Error|Exception)\b.*)$", text)
        if match and match.group(1) and not any(g in match.group(1) for g in _GENERIC_ERRORS):
            causes.append(match.group(1))
    cause = causes[-1] if causes else "no cause given in nbgrader's log"
    return (f"nbgrader could not grade submitted/{student}/{assignment}/: {cause}. Compare the notebook's "
            f"cells with release/{assignment}/ (a graded cell whose type or metadata was changed, a cell "
            "from another notebook) and grade again; the log of `python -m grader --workers 1 "
            f"--student {student} --assignment {assignment}` has the details")


def autograde_submission(course_root: Path, student: str, assignment: str,
                         overrides: dict | None = None, feedback: bool = True,
                         sandbox: bool | str | tuple = "auto", kernel_threads: int = 0,
                         db_url: str | None = None) -> GradeRow:
    """Autograde one submission and read its scores back; never raises for a bad submission.

    ``sandbox``: True runs the kernel in grader.sandbox and refuses to grade without it;
    "auto" uses it where bubblewrap works; False runs student code with the grader's rights; a
    ``(use it, why not)`` pair from ``resolve_sandbox`` is a decision already taken.
    ``kernel_threads``: the kernel's math-library threads (0: all the cores this process may use).
    The sandbox's reports come back in ``row.sandbox_reports``.
    A submission whose run failed for the environment's sake (``environment_fault``) is
    "not graded", with no score left in the gradebook (``row.forgotten``).
    ``db_url``: the gradebook (default: the course's sqlite file).
    """
    from grader.duplicate_cells import duplicate_notes
    from grader.sandbox import SandboxReports

    course_root = Path(course_root).resolve()
    start = time.perf_counter()
    row = GradeRow(student=student, assignment=assignment, status="not graded")
    serialised_gradebook()
    use_sandbox, why_not = resolve_sandbox(sandbox)
    reason = _check_submission(course_root, student, assignment)
    if not reason and why_not:
        reason = f"sandbox unavailable: {why_not}"
    if reason:
        row.reason = reason
        row.seconds = time.perf_counter() - start
        return row
    notes = duplicate_notes(course_root, student, assignment)
    sandbox_reports = SandboxReports() if use_sandbox else None
    db_url = db_url or sqlite_url(course_root)
    api = make_api(course_root, overrides, sandbox=use_sandbox, sandbox_reports=sandbox_reports,
                   kernel_threads=kernel_threads, db_url=db_url)
    result = api.autograde(assignment, student, force=True, create=True)
    row.sandbox_reports = dict(sandbox_reports or {})
    notes += _sandbox_notes(course_root, assignment, row.sandbox_reports) if use_sandbox else []
    if not result.get("success"):
        row.reason = "; ".join([autograde_failure_reason(result, student, assignment), *notes])
        row.seconds = time.perf_counter() - start
        return row
    notebooks = _autograded_notebooks(course_root, student, assignment)
    fault = environment_fault(notebooks)
    if fault:
        _forget_submission(course_root, assignment, student, db_url)
        row.forgotten = True
        row.reason = (f"environment fault, not the submission's: {fault}. Fix the grading environment "
                      "(`make setup`) and grade again")
        row.seconds = time.perf_counter() - start
        return row
    row.score, row.max_score, cells, needs_manual = gradebook_scores(db_url, assignment, student)
    # The hidden lines this student may not see, per notebook: read once, used for the
    # per-test messages and for the final check of the feedback pages.
    secrets = {name: _secrets(course_root, student, assignment, name) for name in notebooks}
    row.tests, hidden_notes = _test_results(notebooks, cells, secrets)
    row.failed = sorted(t["test"] for t in row.tests if not t["passed"])
    row.status = "graded"
    if needs_manual:
        notes.insert(0, "needs manual grading")
    notes += hidden_notes
    review, refused = _review_notes(course_root, student, assignment), _refused(api, course_root, student, assignment)
    review += _runtime_notes(row.sandbox_reports)
    refusal = [handin.refusal_note(refused, assignment)] if refused else []
    notes += review + refusal
    # Code handed in beside the notebook was meant to run: a person reads it before the grade goes out.
    row.held_for_review = review + (refusal if any(map(handin.is_code, refused)) else [])
    if feedback:
        notes += _feedback(api, course_root, row, secrets, notes)
    row.reason = "; ".join(notes)
    row.seconds = time.perf_counter() - start
    return row


def _autograded_notebooks(course_root: Path, student: str, assignment: str) -> dict:
    """``{notebook name: autograded notebook}`` for the course notebooks of the assignment."""
    import nbformat

    folder = course_root / "autograded" / student / assignment
    notebooks = {}
    for source in sorted((course_root / "source" / assignment).glob("*.ipynb")):
        path = folder / source.name
        if path.is_file():
            notebooks[source.stem] = nbformat.read(path, as_version=4)
    return notebooks


def _is_student_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("solution") or not (meta.get("locked") or meta.get("grade")))


def environment_fault(notebooks: dict) -> str:
    """Why a run failed before any of the student's code ran, or '' if it did not.

    Everything up to the first cell a student may edit is the course's: a read-only cell
    failing there, or a kernel that stopped there, is the grading environment's fault (a
    missing model, a broken installation), never a score.
    """
    for name, notebook in notebooks.items():
        for index, cell in enumerate(notebook.cells):
            if _is_student_cell(cell):
                stopped = [o for o in cell.get("outputs", []) if o.get("ename") == "SandboxStopped"]
                if stopped and str(stopped[0].get("evalue", "")).startswith("not run"):
                    return f"{name}: the kernel stopped before any student code ran ({stopped[0]['evalue']})"
                break
            if cell.cell_type != "code":
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
                    first = (str(output.get("evalue", "")).strip().splitlines() or [""])[0][:300]
                    return (f"{name}: the read-only cell {label} failed before any student code ran "
                            f"({output.get('ename')}: {first})")
    return ""


def _secrets(course_root: Path, student: str, assignment: str, notebook_name: str) -> set[str]:
    """Lines of hidden-test code of one notebook that this student may not see."""
    import nbformat

    from grader import hidden_tests

    submitted = course_root / "submitted" / student / assignment / f"{notebook_name}.ipynb"
    try:
        own = nbformat.read(submitted, as_version=4)
    except Exception:
        own = None
    return hidden_tests.notebook_secrets(course_root, assignment, notebook_name, own)


def _test_results(notebooks: dict, cells: dict, secrets: dict) -> tuple[list[dict], list[str]]:
    """Per-test records in notebook order, their messages as the student may see them."""
    import nbformat

    from grader import hidden_tests

    tests, notes = [], []
    for name, notebook in notebooks.items():
        view = nbformat.from_dict(notebook)
        notes += hidden_tests.student_view(view, secrets[name])
        scores = cells.get(name, {})
        for cell in view.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id not in scores or not hidden_tests.is_test_cell(cell):
                continue
            points, max_points = scores[grade_id]
            passed = points >= max_points
            tests.append({"test": grade_id, "notebook": name, "points": points, "max_points": max_points,
                          "passed": passed, "message": "" if passed else hidden_tests.failure_message(cell)})
    return tests, notes


def _feedback(api, course_root: Path, row: GradeRow, secrets: dict, notes: list[str]) -> list[str]:
    """Feedback HTML and results.json beside it; an HTML page in which a hidden-test line is
    still found is withheld (deleted), and the note says so."""
    from grader import hidden_tests

    folder = course_root / "feedback" / row.student / row.assignment
    result = api.generate_feedback(row.assignment, row.student, force=True)
    added = [] if result.get("success") else ["feedback not generated"]
    for name, hidden in secrets.items():
        page = folder / f"{name}.html"
        if not page.is_file():
            continue
        leaked = hidden_tests.leaked_lines(page.read_text(encoding="utf-8", errors="replace"), hidden)
        if leaked:
            page.unlink()
            added.append(f"feedback {name}.html withheld: {len(leaked)} hidden-test line(s) were still in it")
    folder.mkdir(parents=True, exist_ok=True)
    results = row.results()
    results["reason"] = "; ".join([*notes, *added])
    reports.write_results(folder, results)
    return added


def _sandbox_notes(course_root: Path, assignment: str, reports: dict) -> list[str]:
    """What the sandbox reported for each notebook of the submission: stops and limits reached."""
    notes = []
    for notebook in sorted((course_root / "source" / assignment).glob("*.ipynb")):
        report = reports.get(notebook.stem)
        if report is None:
            continue
        if report.stopped:
            not_run = f" (not run: {', '.join(report.not_run)})" if report.not_run else ""
            notes.append(f"stopped: {report.stopped}; graded on the cells that ran{not_run}")
        for hit in report.limits_hit:
            notes.append(f"limit: {hit}")
    return notes


def _refused(api, course_root: Path, student: str, assignment: str) -> list[str]:
    """The files of the submission that its graded copy did not get (``grader/handin.py``),
    recomputed from the submission as handed in (the autograde step removed them)."""
    declared = api.config.GradingGate.get("handed_in_files", {}).get(assignment, [])
    return handin.refused_files(course_root / "submitted" / student / assignment, course_root, assignment,
                                declared, api.coursedir.ignore)


def _runtime_notes(reports: dict) -> list[str]:
    """What the runtime watch saw appear in the kernel (grader/runtime_watch.py), per notebook."""
    seen = [f"{name}: {finding}" for name, report in sorted(reports.items()) for finding in report.tampering]
    if not seen:
        return []
    shown = seen[:4] + ([f"{len(seen) - 4} more"] if len(seen) > 4 else [])
    return ["review for tampering, seen in the kernel: " + "; ".join(shown)]


def _review_notes(course_root: Path, student: str, assignment: str) -> list[str]:
    """Grader-side tamper review of the student's own cells (never changes the score)."""
    import nbformat

    from grader.tamper_review import reference_lines, tamper_review

    findings = []
    for path in sorted((course_root / "submitted" / student / assignment).glob("*.ipynb")):
        # Lines the course itself wrote (solution and starter) are not the student's.
        references = []
        for folder in ("source", "release"):
            try:
                references.append(nbformat.read(course_root / folder / assignment / path.name, as_version=4))
            except Exception:
                pass
        try:
            findings += tamper_review(nbformat.read(path, as_version=4), reference_lines(*references))
        except Exception:
            continue
    if not findings:
        return []
    shown = findings[:4] + ([f"{len(findings) - 4} more"] if len(findings) > 4 else [])
    return ["review for tampering: " + ", ".join(shown)]


@contextlib.contextmanager
def quiet_stdio(keep_stdout: bool = False):
    """Silence nbgrader's own chatter (it also reaches us through the result logs).

    ``keep_stdout``: silence stderr only (a caller printing progress inside).
    """
    with contextlib.ExitStack() as stack:
        if not keep_stdout:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        yield
