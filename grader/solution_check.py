"""Before grading a class: the assignment's own solution must get full marks, here and now.

otter-grader runs the tests against the solution when it writes the student version; the
course does it again at grade time, because that is when an environment breaks (a models
folder gone, helpers that the kernel cannot import, a library upgraded under the venv).
The solution from ``source/`` is graded exactly as a submission is (same sandbox, profile,
limits and overrides) in a throw-away copy of the course, so the real gradebook is never
touched. Anything short of full marks means the grades would measure the environment, not
the students: the main command then refuses to grade.

A pass is remembered in ``<course>/.grader-cache/solution-checks.json`` under a key made of
everything that could change the outcome (the assignment's files, the config, the kernel's
helpers and models, the installed packages, the sandbox mode, the environment variables the
kernel sees), so it costs one submission's time per assignment and environment.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import dispatch, pipeline, reports

CACHE_FILE = Path(".grader-cache") / "solution-checks.json"
STUDENT = "solution-check"
# Variables the kernel sees that change what a notebook does (grader.sandbox.Sandbox.pass_env).
KEY_ENVIRONMENT = ("COURSE_PROFILE", "COURSE_MODELS_DIR", "COURSE_CELL_TIMEOUT_S")


@dataclass
class SolutionCheck:
    assignment: str
    passed: bool
    score: float = 0.0
    max_score: float = 0.0
    problems: list[str] = field(default_factory=list)   # one per failing cell, or why it was not graded
    seconds: float = 0.0
    cached: bool = False


def _digest_tree(digest, folder: Path, contents: bool = True) -> None:
    skipped = {"__pycache__", "artifacts", ".ipynb_checkpoints"}     # outputs of runs, not inputs
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not skipped & set(p.parts)):
        digest.update(str(path.relative_to(folder)).encode())
        if contents:
            digest.update(path.read_bytes())
        else:
            stat = path.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())


def environment_key(course_root: Path, assignment: str, overrides: dict | None, sandbox) -> str:
    """A digest of everything that can change how the solution grades."""
    from grader import sandbox as sandbox_module

    digest = hashlib.sha256()
    _digest_tree(digest, course_root / "source" / assignment)
    digest.update((course_root / "nbgrader_config.py").read_bytes())
    digest.update(repr(sorted((overrides or {}).items())).encode())
    digest.update(repr(pipeline.resolve_sandbox(sandbox)).encode())
    digest.update(sys.executable.encode())
    for name in KEY_ENVIRONMENT:
        digest.update(f"{name}={os.environ.get(name)}".encode())
    try:
        helpers_dir, models_dir = sandbox_module.kernel_imports(sys.executable, os.environ.get("COURSE_MODELS_DIR"))
    except sandbox_module.KernelEnvironmentError as error:
        digest.update(str(error).encode())
    else:
        _digest_tree(digest, helpers_dir)
        if models_dir.is_dir():
            _digest_tree(digest, models_dir, contents=False)    # sizes and times: models are large
    site = Path(sys.prefix) / "lib"
    digest.update(repr(sorted(p.name for p in site.glob("python*/site-packages/*.dist-info"))).encode())
    return digest.hexdigest()


def _load_cache(course_root: Path) -> dict:
    try:
        return json.loads((course_root / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(course_root: Path, cache: dict) -> None:
    path = course_root / CACHE_FILE
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(path)


def _problems(row: reports.GradeRow) -> list[str]:
    if row.status != "graded":
        return [row.reason]
    problems = [f"{t['test']} ({t['points']:g}/{t['max_points']:g}): {t['message'] or 'lost points'}"
                for t in row.tests if not t["passed"]]
    if row.reason:
        problems.append(row.reason)
    return problems or [f"{row.score:g}/{row.max_score:g} without a failing test cell"]


def check_solutions(course_root: Path, assignments: list[str], overrides: dict | None = None,
                    sandbox="auto", workers: int | None = None, client=None) -> list[SolutionCheck]:
    """Grade each assignment's solution as a submission (cached passes are not graded again).

    ``client``: a Dask client; the solutions are graded on the cluster's workers (whose grading
    code must equal this machine's: ``grader.cluster.worker_problem``).
    """
    course_root = Path(course_root).resolve()
    sandbox = pipeline.resolve_sandbox(sandbox)     # decided once, for the key and the grading
    cache = _load_cache(course_root)
    where = "" if client is None else "cluster"
    keys = {a: environment_key(course_root, a, overrides, sandbox) + where for a in assignments}
    checks = {a: SolutionCheck(a, True, *cache[keys[a]], cached=True)
              for a in assignments if keys[a] in cache}
    todo = [a for a in assignments if a not in checks]
    if todo:
        scratch = Path(tempfile.mkdtemp(prefix="course-solution-check-"))
        try:
            shutil.copy2(course_root / "nbgrader_config.py", scratch / "nbgrader_config.py")
            ready = []
            for assignment in todo:
                shutil.copytree(course_root / "source" / assignment, scratch / "source" / assignment,
                                ignore=shutil.ignore_patterns("artifacts", ".ipynb_checkpoints"))
                released = pipeline.generate_release(scratch, assignment, overrides)
                if not released["success"]:
                    checks[assignment] = SolutionCheck(assignment, False, problems=[
                        f"the release could not be generated: {released['error'].strip()[-500:]}"])
                    continue
                for notebook in (scratch / "source" / assignment).glob("*.ipynb"):
                    target = scratch / "submitted" / STUDENT / assignment / notebook.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(notebook, target)
                ready.append(assignment)
            rows = dispatch.grade_submissions(scratch, [(STUDENT, a) for a in ready], workers=workers,
                                             overrides=overrides, feedback=False, sandbox=sandbox, client=client)
            for row in rows:
                passed = row.status == "graded" and row.max_score > 0 and row.score >= row.max_score
                checks[row.assignment] = SolutionCheck(row.assignment, passed, row.score, row.max_score,
                                                       [] if passed else _problems(row), row.seconds)
                if passed:
                    cache[keys[row.assignment]] = [row.score, row.max_score]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _save_cache(course_root, cache)
    return [checks[a] for a in assignments]
