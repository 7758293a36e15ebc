"""Grading on a Dask cluster: the work on the workers, every write on the instructor's machine.

One unit of work, ``grade_task``, grades one submission on a worker and sends back what
grading produced. Nothing is shared between the machines but the Dask scheduler:

* a ``SubmissionTask`` carries what the submission needs (``nbgrader_config.py``, the
  assignment's ``source/`` files, the student's submitted files, the grading settings and a
  digest of the grading code);
* the worker grades it with ``grader.pipeline.autograde_submission`` in a private temporary
  course (its release generated once per worker process and assignment, its gradebook a
  sqlite file of its own), in the sandbox, and returns the result row, the autograded and
  feedback files and the gradebook rows nbgrader wrote (``grader.gradebook.export_submission``);
* the instructor's process (``grade_on_cluster``) writes them: the folders each swapped in
  whole, the gradebook rows in one transaction (``grader.gradebook.record_submission``).

Workers are started with ``python -m grader.worker SCHEDULER`` (``grader/worker.py``): one
submission per worker process at a time, each process advertising the resource
``GRADING_RESOURCE`` (MiB of memory it may use); every task asks for the sandbox's memory
limit, so no worker runs more submissions than its memory holds. A worker whose environment
cannot grade (``worker_problem``: no sandbox, no models, other grading code) is never given a
submission. A worker that dies mid-submission: Dask gives the task to another worker. The
scheduler lost: ``SchedulerLost``, after every finished result has been written.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.reports import GradeRow

GRADING_RESOURCE = "grading_mb"
# What the grading code is: a worker whose files differ would grade differently.
CODE_PARTS = ("grader", "helpers", "tools", "requirements.txt")
# How long the scheduler may stay unreachable before the run stops (Dask reconnects meanwhile).
SCHEDULER_GRACE_S = 20.0
# Dask settings for the scheduler and workers that grading starts (grader.scheduler, grader.worker),
# as environment variables. Every Dask server wakes up every 20 ms to measure its own event loop,
# its workers sample their threads' stacks every 10 ms (the dashboard's profile) and the system
# every 0.5 s: about 1.2-1.5 CPU s a minute per idle process, measured, taken from the kernels
# on the same cores. Grading needs none of it.
QUIET_DASK_ENV = {"DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
                  "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                  "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s"}

# A grading worker states its memory (its share, as --memory-limit) but Dask's memory manager
# stays off: the sandbox caps each kernel, and the worker process holds only small results. With
# no limit stated, adapt (grader/slurm.py) read any held result as memory pressure and asked for
# twice the workers, and never gave an idle one back (measured: 2 jobs kept for 90 s idle).
WORKER_MEMORY_ENV = {"DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "False",
                     "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "False",
                     "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "False",
                     "DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE": "False"}


class ClusterError(RuntimeError):
    """The cluster cannot grade: no scheduler, no usable worker. The message says what to do."""


class SchedulerLost(ClusterError):
    """The scheduler went away mid-run; every result that came back before has been written."""


class WorkerEnvironmentError(RuntimeError):
    """Raised on a worker whose environment cannot grade; the submission goes to another worker."""


@dataclass
class SubmissionTask:
    student: str
    assignment: str
    course_files: dict[str, bytes]          # nbgrader_config.py and source/<assignment>/...
    submission_files: dict[str, bytes]      # relative to submitted/<student>/<assignment>/
    code_digest: str
    sandbox: bool = True
    feedback: bool = True
    overrides: dict | None = None
    kernel_threads: int = 0                 # 0: the worker's own setting (grader.worker)

    @property
    def course_digest(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.course_files):
            digest.update(name.encode() + b"\0" + self.course_files[name] + b"\0")
        digest.update(repr(sorted((self.overrides or {}).items())).encode())
        return digest.hexdigest()[:16]


@dataclass
class TaskResult:
    row: GradeRow
    export: dict | None = None              # gradebook rows (grader.gradebook.export_submission)
    autograded: dict[str, bytes] = field(default_factory=dict)
    feedback: dict[str, bytes] = field(default_factory=dict)
    worker_root: str = ""                   # the worker's private course, to name it in messages
    worker_address: str = ""


# --------------------------------------------------------------------------
# Both sides
# --------------------------------------------------------------------------

def code_digest(root: Path | None = None) -> str:
    """A digest of the grading code and the pinned packages (``CODE_PARTS``)."""
    from helpers.paths import REPO_ROOT

    root = Path(root or REPO_ROOT)
    digest = hashlib.sha256()
    for part in CODE_PARTS:
        path = root / part
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                     if p.is_file() and "__pycache__" not in p.parts)
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _read_tree(folder: Path) -> dict[str, bytes]:
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_tree(files: dict[str, bytes], folder: Path) -> None:
    folder = Path(folder).resolve()
    for name, data in files.items():
        target = (folder / name).resolve()
        if folder not in target.parents:       # a crafted name must not write outside the folder
            raise ValueError(f"file name {name!r} leaves {folder}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# --------------------------------------------------------------------------
# The worker's side
# --------------------------------------------------------------------------

_grading_lock = threading.Lock()     # one submission per process at a time: nbgrader is not thread-safe
_templates: dict[str, Path] = {}
_health: dict[tuple, str] = {}


def worker_problem(expected_digest: str | None = None, sandbox: bool = True) -> str:
    """Why this machine cannot grade ('' if it can): sandbox, models, grading code. Cached per process."""
    key = (expected_digest, sandbox)
    if key not in _health:
        _health[key] = _find_problem(expected_digest, sandbox)
    return _health[key]


def _find_problem(expected_digest: str | None, sandbox: bool) -> str:
    from helpers.models import is_complete_model_dir
    from helpers.profile import EMBEDDED_DIR, TINY_DIR

    if sandbox:
        from grader.sandbox import unavailable_reason

        reason = unavailable_reason()
        if reason:
            return f"no sandbox: {reason}"
    for folder in (EMBEDDED_DIR, TINY_DIR):
        if not is_complete_model_dir(folder):
            return f"model folder {folder} is missing or incomplete (run `make setup`)"
    try:
        import nbgrader.apps  # noqa: F401
    except Exception as error:
        return f"nbgrader does not import: {type(error).__name__}: {error}"
    if expected_digest and code_digest() != expected_digest:
        return (f"its grading code differs from the instructor's (digest {code_digest()} here, "
                f"{expected_digest} there): check out the same commit and run `make setup`")
    return ""


def _own_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        return ""


def _work_dir() -> Path:
    folder = Path(os.environ.get("COURSE_WORKER_DIR") or tempfile.gettempdir()) / f"course-worker-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _course_template(task: SubmissionTask) -> Path:
    """A private course with the task's config and source, its release generated (once per process)."""
    from grader import pipeline

    key = f"{task.assignment}-{task.course_digest}"
    if key in _templates and _templates[key].is_dir():
        return _templates[key]
    template = _work_dir() / f"template-{key}"
    shutil.rmtree(template, ignore_errors=True)
    _write_tree(task.course_files, template)
    with pipeline.quiet_stdio():
        result = pipeline.generate_release(template, task.assignment, task.overrides)
    if not result["success"]:
        shutil.rmtree(template, ignore_errors=True)
        raise WorkerEnvironmentError(f"the release of {task.assignment} could not be generated here: "
                                     f"{result['error'].strip()[-300:]}")
    _templates[key] = template
    return template


def grade_task(task: SubmissionTask) -> TaskResult:
    """Grade one submission here (on a worker) and return everything grading produced."""
    from grader import pipeline
    from grader.gradebook import export_submission, sqlite_url

    problem = worker_problem(task.code_digest, task.sandbox)
    if problem:
        _withdraw_self()
        raise WorkerEnvironmentError(problem)
    threads = task.kernel_threads or int(os.environ.get("COURSE_KERNEL_THREADS", "0") or 0)
    with _grading_lock:
        template = _course_template(task)
        root = Path(tempfile.mkdtemp(prefix="submission-", dir=_work_dir()))
        try:
            shutil.copytree(template, root, dirs_exist_ok=True)
            _write_tree(task.submission_files, root / "submitted" / task.student / task.assignment)
            with pipeline.quiet_stdio():
                row = pipeline.autograde_submission(root, task.student, task.assignment, task.overrides,
                                                    task.feedback, sandbox=(task.sandbox, ""),
                                                    kernel_threads=threads)
                export = (export_submission(sqlite_url(root), task.assignment, task.student)
                          if row.status == "graded" else None)
            return TaskResult(row=row, export=export, worker_root=str(root), worker_address=_own_address(),
                              autograded=_read_tree(root / "autograded" / task.student / task.assignment),
                              feedback=_read_tree(root / "feedback" / task.student / task.assignment))
        finally:
            shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# The instructor's side
# --------------------------------------------------------------------------

def make_task(course_root: Path, student: str, assignment: str, digest: str, *, sandbox: bool, feedback: bool,
              overrides: dict | None, kernel_threads: int = 0) -> SubmissionTask:
    course_files = {"nbgrader_config.py": (course_root / "nbgrader_config.py").read_bytes()}
    for name, data in _read_tree(course_root / "source" / assignment).items():
        if not any(part in ("artifacts", ".ipynb_checkpoints") for part in Path(name).parts):
            course_files[f"source/{assignment}/{name}"] = data
    # Only regular files travel: grade_on_cluster has refused a submission with links or special
    # files here already (pipeline._check_submission), as the local path does.
    files = _read_tree(course_root / "submitted" / student / assignment)
    return SubmissionTask(student, assignment, course_files, files, digest, sandbox=sandbox, feedback=feedback,
                          overrides=overrides, kernel_threads=kernel_threads)


def _swap_in(files: dict[str, bytes], folder: Path) -> None:
    """Replace ``folder`` by ``files`` whole: written beside it first, then renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.incoming")
    old = folder.with_name(f".{folder.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    _write_tree(files, staging)
    staging.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def write_result(course_root: Path, result: TaskResult, db_url: str) -> GradeRow:
    """Write one worker's result into the course (folders, gradebook) and return its final row."""
    from grader import pipeline, reports
    from grader.gradebook import _forget_submission, record_submission

    row = result.row
    if result.worker_root:
        row.reason = row.reason.replace(result.worker_root, str(course_root))
    student, assignment = row.student, row.assignment
    if result.autograded:
        _swap_in(result.autograded, course_root / "autograded" / student / assignment)
    if row.forgotten:
        _forget_submission(course_root, assignment, student, db_url)
    if result.export is not None:
        record_submission(db_url, result.export)
        # The gradebook may hold a grader's manual scores: the totals are the gradebook's.
        row.score, row.max_score, _, _ = pipeline.gradebook_scores(db_url, assignment, student)
    if result.feedback:
        feedback = dict(result.feedback)
        if reports.RESULTS_FILE in feedback:
            feedback[reports.RESULTS_FILE] = reports.results_json(row.results()).encode()
        _swap_in(feedback, course_root / "feedback" / student / assignment)
    return row


def connect(scheduler: str, timeout_s: float = 15.0, certs: Path | None = None, insecure_tcp: bool = False):
    """A Dask client of the scheduler at ``scheduler``, or ``ClusterError`` saying what to do.

    ``certs``: the folder of ``python -m grader.certificates`` (a ``tls://`` scheduler needs it; the
    grader's certificate is checked first, so an expired one or one of another CA is named before
    anything is sent). A plain ``tcp://`` scheduler beyond loopback needs ``insecure_tcp``.
    """
    from distributed import Client

    from grader import certificates

    problem = certificates.address_problem(scheduler, certs, insecure_tcp, "grader")
    if problem:
        raise ClusterError(problem)
    security = None
    if scheduler.startswith("tls://"):
        try:
            security = certificates.client_security(certs)
        except certificates.CertificateError as error:
            raise ClusterError(str(error)) from None
    try:
        return Client(scheduler, timeout=f"{timeout_s}s", set_as_default=False, security=security)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}: {error}). "
                           "Start one with `.venv/bin/python -m grader.scheduler` and workers with "
                           "`.venv/bin/python -m grader.worker ADDRESS`, or grade on this machine without "
                           "--scheduler") from None


def dashboard_address(client) -> str:
    """The scheduler's dashboard address when it answers ('' when there is none: it needs bokeh)."""
    import urllib.request

    if "dashboard" not in client.scheduler_info().get("services", {}):
        return ""
    link = client.dashboard_link
    try:
        with urllib.request.urlopen(link, timeout=2):
            return link
    except Exception:
        return ""


def _grading_workers(client, need_mb: int, wait_s: float) -> list[str]:
    """Addresses of the workers that advertise room for one submission (waits up to ``wait_s``)."""
    deadline = time.monotonic() + wait_s
    while True:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        able = sorted(address for address, info in workers.items()
                      if info.get("resources", {}).get(GRADING_RESOURCE, 0) >= need_mb)
        if able or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not able:
        seen = ", ".join(f"{a} ({w.get('resources', {}).get(GRADING_RESOURCE, 'no')} {GRADING_RESOURCE})"
                         for a, w in workers.items()) or "none"
        raise ClusterError(f"no worker of the scheduler can take a submission: each needs the resource "
                           f"{GRADING_RESOURCE}={need_mb} (the sandbox's memory limit). Workers seen: {seen}. "
                           "Start workers with `.venv/bin/python -m grader.worker ADDRESS`")
    return able


async def _withdraw(dask_worker) -> None:
    """Run on a worker: advertise no room for submissions, so the scheduler sends it none."""
    await dask_worker.set_resources(**{GRADING_RESOURCE: 0})


def _withdraw_self() -> None:
    """Called on a worker, inside a task, when its environment turns out broken."""
    try:
        from distributed import get_worker

        worker = get_worker()
        worker.loop.add_callback(_withdraw, worker)
    except Exception:       # not on a Dask worker (a test calling grade_task directly)
        pass


def healthy_workers(client, workers: list[str], digest: str, sandbox: bool, say=print) -> list[str]:
    """The workers whose environment can grade. The others are named with their reason and
    withdrawn (they advertise no room, so they are given no submission)."""
    problems = client.run(worker_problem, digest, sandbox, workers=workers, on_error="return")
    healthy, broken = [], []
    for address in workers:
        problem = problems.get(address, "did not answer")
        if isinstance(problem, BaseException):
            problem = f"the check failed: {type(problem).__name__}: {problem}"
        if problem:
            say(f"[cluster] worker {address} left out, it cannot grade: {problem}")
            broken.append(address)
        else:
            healthy.append(address)
    if broken:
        client.run(_withdraw, workers=broken, on_error="return")
    if not healthy:
        raise ClusterError("no worker of the scheduler can grade (reasons above); nothing was graded")
    return healthy


def grade_on_cluster(course_root: Path, pairs: list[tuple[str, str]], client, *, db_url: str,
                     overrides: dict | None = None, feedback: bool = True, sandbox: bool = True,
                     on_row=None, on_start=None, say=print, wait_for_workers_s: float = 30.0,
                     kernel_threads: int = 0) -> list[GradeRow]:
    """Grade ``pairs`` through the Dask ``client``; rows in the order of ``pairs``.

    Each result is written (``write_result``) as it comes back, so a run that stops early keeps
    every finished one. ``on_start(index)`` follows each submission sent, ``on_row(row)`` each
    result written. Raises ``ClusterError`` when no worker can grade, ``SchedulerLost`` when the
    scheduler stays unreachable for ``SCHEDULER_GRACE_S``. A client whose workers are batch jobs
    (grader/slurm.py) says how long a new one may take to start (``course_worker_wait_s``).
    """
    from grader import pipeline

    wait_for_workers_s = max(wait_for_workers_s, getattr(client, "course_worker_wait_s", 0.0))

    course_root = Path(course_root).resolve()
    pairs = list(pairs)
    if not pairs:
        return []
    need_mb = pipeline.sandbox_memory_mb(course_root, overrides) if sandbox else 1
    digest = code_digest()
    workers = healthy_workers(client, _grading_workers(client, need_mb, wait_for_workers_s), digest, sandbox, say)
    window = max(4, 2 * len(workers))        # submissions in flight: enough to keep every worker busy
    rows: dict[int, GradeRow] = {}
    waiting = list(range(len(pairs)))
    pending: dict = {}                       # future -> index into pairs
    sent = 0

    def submit(index: int) -> None:
        nonlocal sent
        student, assignment = pairs[index]
        # What cannot be graded anywhere (a link in the submission, an unreadable notebook) is
        # reported from here, as the local path does, and never sent.
        reason = pipeline._check_submission(course_root, student, assignment)
        if reason:
            finish(index, GradeRow(student=student, assignment=assignment, status="not graded", reason=reason))
            return
        task = make_task(course_root, student, assignment, digest, sandbox=sandbox, feedback=feedback,
                         overrides=overrides, kernel_threads=kernel_threads)
        sent += 1
        future = client.submit(grade_task, task, key=f"grade-{student}-{assignment}-{digest}-{sent}",
                               resources={GRADING_RESOURCE: need_mb}, pure=False, retries=0)
        pending[future] = index

    shown_running = 0      # what on_start has announced: at most one per worker, like the local pool

    def finish(index: int, row: GradeRow) -> None:
        nonlocal shown_running
        rows[index] = row
        shown_running = max(0, shown_running - 1)
        if on_row:
            on_row(row)

    idle_since = time.monotonic()
    while waiting or pending:
        while waiting and len(pending) < window:
            submit(waiting.pop(0))
        while on_start and shown_running < min(len(pending), len(workers)):
            shown_running += 1
            on_start(None)
        done = [future for future in pending if future.done()]
        if not done:
            time.sleep(0.2)
            if client.status != "running" and not _scheduler_alive(client):
                raise SchedulerLost(f"the connection to the scheduler is {client.status}")
            if time.monotonic() - idle_since > wait_for_workers_s and not _any_grading_worker(client, need_mb):
                raise ClusterError("no worker of the scheduler can grade any more (every one was left out "
                                   "or has gone); the submissions graded so far are written")
            continue
        idle_since = time.monotonic()
        for future in done:
            index = pending.pop(future)
            student, assignment = pairs[index]
            if future.status == "cancelled":
                if not _scheduler_alive(client):
                    raise SchedulerLost("the scheduler cancelled the work it held")
                waiting.insert(0, index)
                continue
            try:
                result = future.result()
            except WorkerEnvironmentError as error:
                say(f"[cluster] a worker left itself out, it cannot grade: {error}; "
                    f"{student}/{assignment} goes to another")
                waiting.insert(0, index)
            except Exception as error:     # KilledWorker: the submission took down every worker it met
                if not _scheduler_alive(client):  # or the result was lost with the scheduler: not the student's
                    raise SchedulerLost(f"the scheduler went away while {student}/{assignment} came back "
                                        f"({type(error).__name__}: {error})") from None
                finish(index, GradeRow(student=student, assignment=assignment, status="not graded",
                                       reason=f"not graded on the cluster: {type(error).__name__}: {error}"))
            else:
                result.row.worker = result.worker_address
                finish(index, write_result(course_root, result, db_url))
            future.release()
    return [rows[i] for i in range(len(pairs))]


def _any_grading_worker(client, need_mb: int) -> bool:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
    except Exception:
        return True     # the scheduler check above decides about a lost scheduler
    return any(w.get("resources", {}).get(GRADING_RESOURCE, 0) >= need_mb for w in workers)


def _scheduler_alive(client) -> bool:
    deadline = time.monotonic() + SCHEDULER_GRACE_S
    while time.monotonic() < deadline:
        if client.status == "running":
            try:
                client.scheduler_info()
                return True
            except Exception:
                pass
        elif client.status in ("closed", "closing"):
            return False
        time.sleep(1.0)
    return False
