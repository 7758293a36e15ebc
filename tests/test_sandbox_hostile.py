"""Hostile submissions on the real pipeline, each kernel in the sandbox (tests/fixtures/hostile.py).

One temporary course. A well-behaved student ("bystander") is graded first;
then every hostile submission below is graded, two at a time, through
``grader.dispatch.grade_submissions`` as the main command does. Each attack
sits in the notebook's free code cell, between the two graded parts
(test_square 2 points before it, test_mean 3 points after it), so a blocked
attack still scores 5/5 and a stopped kernel scores 2/5 ("graded on what
ran"). Afterwards: the bystander's grade, files and gradebook rows are
unchanged, the gradebook is intact, and nothing of the sandboxes is left.

Expected outcome per case: ``tests/test_sandbox_hostile.py::EXPECTED``.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from pathlib import Path

import nbformat
import pytest

from tests.pipeline import Course, require_sandbox
import grader
from grader import sandbox

pytestmark = pytest.mark.pipeline

A = "hostile"
SECRET_ENV, SECRET_VALUE = "COURSE_TEST_GRADER_SECRET", "do-not-leak-3141"
OVERRIDES = {
    "Execute.timeout": 5,                # per cell
    "Sandbox.wall_time_s": 14,           # whole notebook: 1-2 s when well behaved
    "Sandbox.memory_limit_mb": 1024,     # an idle kernel: ~740 MiB of address space, ~50 MiB resident
    "Sandbox.max_processes": 64,
    "Sandbox.max_file_size_mb": 32,
    "Sandbox.work_size_mb": 64,
    "Sandbox.tmp_size_mb": 64,
}


# --------------------------------------------------------------------------
# The attacks: source of the free code cell, given the course root and a local TCP port
# --------------------------------------------------------------------------

def reads_secrets(root: Path, port: int) -> str:
    targets = [root / "source" / A / f"{A}.ipynb", root / "gradebook.db", root / "release" / A,
               root / "submitted" / "bystander" / A / f"{A}.ipynb",
               root / "autograded" / "bystander" / A / f"{A}.ipynb", root / "autograded" / "bystander",
               root / "feedback", root, Path.home(), Path.home() / ".ssh", Path("/etc/shadow"),
               grader.REPO_ROOT, grader.REPO_ROOT / "source", grader.REPO_ROOT / "authoring",
               grader.REPO_ROOT / "tests", "../../../source", "../../../gradebook.db", "/proc/1/environ"]
    return f"""
import json, os
seen = {{}}
for path in {[str(t) for t in targets]!r}:
    try:
        if os.path.isdir(path):
            seen[path] = sorted(os.listdir(path))
        else:
            with open(path, "rb") as handle:
                seen[path] = handle.read(100000).decode("utf-8", "replace")
    except OSError:
        pass
print("SEEN", json.dumps(seen))
print("ENV", json.dumps(dict(os.environ)))
print("PROCS", json.dumps(sorted(p for p in os.listdir("/proc") if p.isdigit())))
"""


def writes_gradebook(root: Path, port: int) -> str:
    return f"""
import sqlite3
for path in [{str(root / 'gradebook.db')!r}, "../../../gradebook.db"]:
    try:
        db = sqlite3.connect(path)
        db.execute("update grade set auto_score = 100")
        db.commit()
        print("UPDATED", path)
    except Exception as error:
        print("BLOCKED", path, type(error).__name__)
    try:
        with open(path, "wb") as handle:
            handle.write(b"corrupted")
    except OSError as error:
        print("BLOCKED", path, type(error).__name__)
"""


def writes_other_student(root: Path, port: int) -> str:
    targets = [root / "autograded" / "bystander" / A / f"{A}.ipynb",
               root / "submitted" / "bystander" / A / f"{A}.ipynb",
               root / "autograded" / "bystander" / A / "planted.txt",
               root / "source" / A / f"{A}.ipynb", "../bystander/hostile/hostile.ipynb"]
    return f"""
for path in {[str(t) for t in targets]!r}:
    try:
        with open(path, "w") as handle:
            handle.write('{{"cells": []}}')
    except OSError as error:
        print("BLOCKED", path, type(error).__name__)
"""


def opens_sockets(root: Path, port: int) -> str:
    return f"""
import socket
for host, port in [("1.1.1.1", 80), ("127.0.0.1", {port}), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host, port)
    except OSError as error:
        print("BLOCKED", host, port, type(error).__name__)
"""


def fork_bomb(root: Path, port: int) -> str:
    # The bomb runs in a child; the kernel itself waits, so the cell's interrupt lands in a
    # sleep and the outcome does not depend on when the interrupt arrives.
    return """
import os, time
if os.fork() == 0:
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(3600)     # at the cap: hold the slot
time.sleep(10 ** 9)
"""


def fork_bomb_spinning(root: Path, port: int) -> str:
    # Every process forks and spins for ever. The cap holds and the machine is fine, but the
    # kernel shares its CPU with 60-odd spinners, so whether it answers the interrupt in time
    # (score 5) or is stopped (score 2) depends on the scheduler.
    return """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def slow_everywhere(root: Path, port: int) -> list[str]:
    # Every cell stays under the per-cell limit; together they pass the notebook's wall time.
    return ["import time\ntime.sleep(4)\n"] * 4


def allocates_too_much(root: Path, port: int) -> str:
    return """
hog = bytearray(64 << 30)   # 64 GiB in one go
"""


def many_processes_allocate(root: Path, port: int) -> str:
    # Each child stays under the per-process limit; together they pass the sandbox's total.
    return """
import os, time
children = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (250 << 20)      # written, so really resident
        time.sleep(2)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def fills_disk(root: Path, port: int) -> str:
    # One big file, then every folder the kernel might write: its two in-memory folders, the
    # in-memory /dev/shm, bwrap's own root and /dev, and the IPC folder bound from the grader.
    return """
import json, os, sys
chunk = b"x" * (1 << 20)
try:
    with open("big.bin", "wb") as handle:       # one file of 100 MiB
        for _ in range(100):
            handle.write(chunk)
except OSError as error:
    print("STOPPED big.bin", error.strerror)
os.remove("big.bin")
runtime = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
filled = {}
for label, folder, most in [("tmp", "/tmp", 1000), ("shm", "/dev/shm", 1000), ("root", "/", 1000),
                            ("dev", "/dev", 1000), ("runtime", runtime, 8), ("work", ".", 1000)]:
    written, error, names = 0, "", []
    for n in range(most):                       # file after file of 16 MiB
        name = os.path.join(folder, f"fill-{n}.bin")
        try:
            with open(name, "wb") as handle:
                names.append(name)
                for _ in range(16):
                    handle.write(chunk)
                    written += 1
        except OSError as exc:
            error, last = exc.strerror, exc
            break
    for name in names:                          # freed again: the next folder starts afresh
        os.remove(name)
    filled[label] = [written, error]
print("FILLED", json.dumps(filled))
raise last                                      # the working folder's "disk full", left uncaught
"""


def sleeps_forever(root: Path, port: int) -> str:
    return "import time\ntime.sleep(10 ** 9)\n"


def ignores_interrupts(root: Path, port: int) -> str:
    return """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    time.sleep(0.1)
"""


def kills_everything(root: Path, port: int) -> str:
    # kill(-1) reaches every process the caller may signal: inside, only its own sandbox.
    return """
import os, signal
try:
    os.kill(-1, signal.SIGKILL)     # finds no other process to signal
except OSError as error:
    print("kill(-1):", error.strerror)
os.kill(os.getpid(), signal.SIGKILL)
"""


ATTACKS = {f.__name__: f for f in [
    reads_secrets, writes_gradebook, writes_other_student, opens_sockets, fork_bomb,
    fork_bomb_spinning, allocates_too_much, many_processes_allocate, fills_disk, sleeps_forever,
    ignores_interrupts, slow_everywhere, kills_everything,
]}

# case -> (expected score(s) out of 5, words the grade's reason must contain)
EXPECTED = {
    "reads_secrets": (5, []),
    "writes_gradebook": (5, []),
    "writes_other_student": (5, []),
    "opens_sockets": (5, []),
    "fork_bomb": (5, ["per-cell time limit", "process limit"]),
    "fork_bomb_spinning": ((2, 5), ["process limit", "cell 4"]),
    "allocates_too_much": (5, ["memory limit (MemoryError)"]),
    "many_processes_allocate": (5, ["memory limit"]),
    "fills_disk": (5, ["disk space limit"]),
    "sleeps_forever": (5, ["per-cell time limit"]),
    "ignores_interrupts": (2, ["did not stop when interrupted", "not run: mean, test_mean"]),
    "slow_everywhere": (2, ["stopped: wall time limit", "test_mean)"]),
    "kills_everything": (2, ["stopped: the kernel died", "not run: mean, test_mean"]),
    "links_to_the_solution": (None, ["is a link"]),
}


# Without cgroups, a grader that is not root caps processes with RLIMIT_NPROC, whose refusals
# it cannot count, and memory one process at a time, not in total.
NEEDS_CGROUPS = {"fork_bomb": "process limit", "fork_bomb_spinning": "process limit",
                 "many_processes_allocate": "memory limit"}
# Without cgroups as root (RLIMIT_NPROC does not bind root), the process watchdog stops the
# whole sandbox instead of refusing forks: graded on what ran.
ROOT_WITHOUT_CGROUPS = {"fork_bomb": (2, ["stopped: process limit"]),
                        "fork_bomb_spinning": (2, ["stopped: process limit"]),
                        "many_processes_allocate": (5, [])}


def _free_cell(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code" and "nbgrader" not in cell.metadata:
            return cell
    raise KeyError("the fixture has no free code cell")


def _with_attack(course, source):
    """The solution with the attack in its free cell (a list of sources: in added cells too)."""
    notebook = course.source_notebook(A)
    sources = [source] if isinstance(source, str) else source
    free = _free_cell(notebook)
    free.source = sources[0]
    at = notebook.cells.index(free)
    for offset, extra in enumerate(sources[1:], start=1):
        notebook.cells.insert(at + offset, nbformat.v4.new_code_cell(extra))
    return notebook


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gradebook_rows(root: Path) -> dict:
    with sqlite3.connect(root / "gradebook.db") as db:
        return {
            "integrity": db.execute("pragma integrity_check").fetchone()[0],
            "students": sorted(r[0] for r in db.execute("select id from student")),
            "submissions": sorted(db.execute(
                "select student.id, assignment.name from submitted_assignment "
                "join student on student.id = submitted_assignment.student_id "
                "join assignment on assignment.id = submitted_assignment.assignment_id")),
            "bystander_grades": sorted(db.execute(
                "select base_cell.name, grade.auto_score from grade "
                "join base_cell on grade.cell_id = base_cell.id "
                "join submitted_notebook on grade.notebook_id = submitted_notebook.id "
                "join submitted_assignment on submitted_notebook.assignment_id = submitted_assignment.id "
                "where submitted_assignment.student_id = 'bystander'")),
        }


class _Listener:
    """A TCP server on the grader's loopback, to see whether a sandboxed kernel can reach it."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.5)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
                self.accepted += 1
                connection.close()
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require_sandbox()
    c = Course(tmp_path_factory.mktemp("hostile-course"), [], fixtures=[A], overrides=OVERRIDES)
    c.submit("bystander", A, c.source_notebook(A))
    c.bystander_row = c.grade("bystander", A)
    bystander_files = {p: _digest(p) for p in (c.root / "autograded" / "bystander").rglob("*") if p.is_file()}
    bystander_files[c.root / "submitted" / "bystander" / A / f"{A}.ipynb"] = \
        _digest(c.root / "submitted" / "bystander" / A / f"{A}.ipynb")
    c.before = {"files": bystander_files, "gradebook": _gradebook_rows(c.root)}

    listener = _Listener()
    for name, attack in ATTACKS.items():
        c.submit(name, A, _with_attack(c, attack(c.root, listener.port)))
    folder = c.root / "submitted" / "links_to_the_solution" / A
    c.submit("links_to_the_solution", A, c.source_notebook(A))
    (folder / "notes.txt").symlink_to(c.root / "source" / A / f"{A}.ipynb")

    os.environ[SECRET_ENV] = SECRET_VALUE
    try:
        students = [*ATTACKS, "links_to_the_solution"]
        rows = grader.grade_submissions(c.root, [(s, A) for s in students], workers=2,
                                         overrides=OVERRIDES, feedback=False, sandbox=True)
    finally:
        os.environ.pop(SECRET_ENV, None)
        listener.close()
    c.rows = {row.student: row for row in rows}
    c.cgroups = sandbox.cgroups_available()
    c.listener_accepted = listener.accepted
    return c


def _outputs(course, student) -> str:
    cell = _free_cell(course.autograded_notebook(student, A))
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_attack_ends_graded_or_rejected_with_its_reason(course, case):
    row = course.rows[case]
    score, words = EXPECTED[case]
    if not course.cgroups and os.geteuid() == 0:
        score, words = ROOT_WITHOUT_CGROUPS.get(case, (score, words))
    elif not course.cgroups:
        words = [w for w in words if w != NEEDS_CGROUPS.get(case)]
    if score is None:
        assert row.status == "not graded", row
    else:
        assert row.status == "graded", row
        assert row.max_score == 5 and row.score in (score if isinstance(score, tuple) else (score,)), row
    for word in words:
        assert word in row.reason, f"{case}: {word!r} not in reason {row.reason!r}"


def test_bystander_grade_files_and_gradebook_rows_are_unchanged(course):
    assert (course.bystander_row.score, course.bystander_row.max_score) == (5, 5)
    for path, digest in course.before["files"].items():
        assert path.exists() and _digest(path) == digest, f"{path} was changed"
    planted = course.root / "autograded" / "bystander" / A / "planted.txt"
    assert not planted.exists()
    after = _gradebook_rows(course.root)
    assert after["integrity"] == "ok"
    assert after["bystander_grades"] == course.before["gradebook"]["bystander_grades"]
    assert after["bystander_grades"] == [("test_mean", 3.0), ("test_square", 2.0)]


def test_gradebook_holds_one_submission_per_graded_student(course):
    after = _gradebook_rows(course.root)
    graded = sorted(s for s, r in course.rows.items() if r.status == "graded")
    assert after["submissions"] == sorted([("bystander", A)] + [(s, A) for s in graded])


def test_secrets_are_not_visible_inside(course):
    text = _outputs(course, "reads_secrets")
    found = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in text.splitlines()
             if line.split(" ", 1)[0] in ("SEEN", "ENV", "PROCS")}
    bound = [*sandbox.readonly_paths(sandbox.Sandbox()),
             course.root / "autograded" / "reads_secrets" / A]
    for path, content in found["SEEN"].items():
        if isinstance(content, list):
            # Folders on the way to a read-only bind exist, holding only that way on.
            for entry in content:
                child = Path(path, entry).resolve() if not path.startswith("..") else None
                assert child is not None and any(b == child or child in b.parents for b in bound), \
                    f"{path} shows {entry!r} inside the sandbox"
        else:
            assert path == "/proc/1/environ", f"the sandbox could read {path}"
            assert SECRET_VALUE not in content
    assert SECRET_VALUE not in text, "the grader's environment leaked into the kernel"
    assert not any(SECRET_ENV in key for key in found["ENV"])
    assert len(found["PROCS"]) <= 4, f"the kernel sees other processes: {found['PROCS']}"
    assert "HIDDEN TESTS" not in text and "square(-4)" not in text


def test_no_connection_leaves_the_sandbox(course):
    text = _outputs(course, "opens_sockets")
    assert "CONNECTED" not in text and text.count("BLOCKED") == 3, text
    assert course.listener_accepted == 0


def test_disk_writes_stay_inside_the_sandbox(course):
    text = _outputs(course, "fills_disk")
    assert "STOPPED big.bin File too large" in text, text           # RLIMIT_FSIZE: 32 MiB here
    filled = json.loads(text.split("FILLED ", 1)[1].splitlines()[0])
    for label in ("tmp", "work"):                                  # sized in-memory folders: 64 MiB here
        written, error = filled[label]
        assert error == "No space left on device" and 32 <= written <= 64, (label, filled)
    assert filled["shm"][1] == "No space left on device" and filled["shm"][0] <= sandbox.SHM_SIZE_MB, filled
    for label in ("root", "dev"):                                  # bwrap's own folders: read-only
        assert filled[label] == [0, "Read-only file system"], (label, filled)
    if os.geteuid() == 0:                                          # the IPC folder: a 1 MiB tmpfs
        assert filled["runtime"][0] <= 1 and filled["runtime"][1] == "No space left on device", filled
    on_disk = sum(p.stat().st_size for p in (course.root / "autograded" / "fills_disk").rglob("*") if p.is_file())
    assert on_disk < 1 << 20, f"{on_disk} bytes of the submission reached the grader's disk"
    assert not list((course.root / "autograded" / "fills_disk").rglob("fill-*"))


def test_kernel_death_marks_the_cells_that_did_not_run(course):
    nb = course.autograded_notebook("kills_everything", A)
    test_mean = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_mean")
    assert test_mean.outputs[0]["ename"] == "SandboxStopped"


def test_nothing_of_the_sandboxes_is_left(course):
    # Each sandbox's cgroup is named after its working folder; all of them are gone, with
    # every process that was in them (the fork bomb's children included).
    tags = {sandbox.workdir_tag(course.root / "autograded" / s / A) for s in course.rows}
    leftovers = [p for p in sandbox.CGROUP_ROOT.glob(f"**/{sandbox.CGROUP_PARENT}/sandbox-*")
                 if p.name.split("-")[1] in tags]
    assert leftovers == []


def test_cgroups_are_used_wherever_the_grader_may_create_them(course):
    # The cgroup-dependent outcomes above are only required when cgroups are in use: make sure
    # they are not silently skipped on a machine that has them (root, a writable hierarchy).
    v2 = (sandbox.CGROUP_ROOT / "cgroup.controllers").is_file()
    folders = [sandbox.CGROUP_ROOT] if v2 else [sandbox.CGROUP_ROOT / "memory", sandbox.CGROUP_ROOT / "pids"]
    if os.geteuid() == 0 and all(f.is_dir() and os.access(f, os.W_OK) for f in folders):
        assert course.cgroups, "root with a writable cgroup hierarchy, yet no cgroup could be made"
    else:
        pytest.skip("this grader may not create cgroups: per-process limits only")


def test_a_correct_submission_gets_full_marks_again_after_all_that(course):
    row = course.grade("bystander", A)
    assert (row.status, row.score, row.max_score) == ("graded", 5, 5)


SLOW_BOMB = """
import os, time
for _ in range(300):          # at most 300 processes, even if nothing stopped it
    if os.fork() == 0:
        time.sleep(30)
        os._exit(0)
    time.sleep(0.005)
"""


def test_without_cgroups_the_process_cap_still_holds(tmp_path):
    """The fallback where no cgroup can be made: per-process RLIMIT_NPROC for a grader that is
    not root, the process watchdog for root. Forced here with use_cgroups=False, on a bomb that
    stops by itself at 300 processes, so a broken cap cannot hurt the machine."""
    require_sandbox()
    overrides = {**OVERRIDES, "Execute.timeout": 20, "Sandbox.use_cgroups": False}
    c = Course(tmp_path, [], fixtures=[A], overrides=overrides)
    c.submit("slow_bomb", A, _with_attack(c, SLOW_BOMB))
    row = grader.autograde_submission(c.root, "slow_bomb", A, overrides, feedback=False, sandbox=True)
    assert row.status == "graded", row
    if os.geteuid() == 0:
        assert row.score == 2 and "stopped: process limit" in row.reason, row
    else:
        assert row.score == 5, row       # forks refused by RLIMIT_NPROC, the cell carries on
        assert "BlockingIOError" in _outputs(c, "slow_bomb") or "Resource temporarily" in _outputs(c, "slow_bomb")
