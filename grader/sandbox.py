"""A bubblewrap sandbox and resource limits around every autograded kernel.

nbgrader runs a student's notebook in a Jupyter kernel with the grader's
rights. Here the kernel command line is wrapped, so each submission's kernel
starts as::

    sh -c 'join cgroups'  prlimit <limits>  bwrap <namespaces + mounts>  python -m ipykernel_launcher -f <conn>

- **bubblewrap** (``bwrap``, Debian package ``bubblewrap``) gives the kernel
  new user, network, PID, IPC and UTS namespaces and a root made of read-only
  binds: ``/usr``, a few files of ``/etc``, the Python installation, the
  virtual environment, ``helpers/`` and ``models/``. Nothing else of the
  machine exists inside: not the course folder (``source/``,
  ``gradebook.db``, ``submitted/``, ``release/``, other students'
  ``autograded/``), not the grader's home. The working folder is a
  size-limited in-memory folder holding read-only views of the files nbgrader
  put there; ``/tmp`` is another one. It runs as ``nobody`` with no
  capabilities, cannot create user namespaces, and dies with the grader.
- The kernel talks to the grader over ZeroMQ **IPC sockets** in a private
  folder bound into the sandbox (TCP on localhost is unreachable from a new
  network namespace). Interrupts travel as messages, because a signal to the
  process group would kill bwrap itself.
- **prlimit** (util-linux) sets per-process limits: address space, processes,
  file size, open files, CPU seconds, no core dumps.
- Where the grader may create **cgroups** (root on cgroup v1 or v2), the whole
  sandbox also gets a memory and a process cap, so a fork bomb or many
  medium-sized processes cannot add up past the limit. As root without
  cgroups, where RLIMIT_NPROC does not apply, a watchdog thread counts the
  sandbox's processes instead and stops it past the limit.
- ``SandboxedExecute`` replaces nbgrader's ``Execute`` preprocessor: it stops
  the kernel when the submission's wall-time budget is spent, and when the
  kernel dies (killed, out of memory, crashed) it marks the cells that could
  not run instead of failing the whole autograde, so the submission is graded
  on what ran. What happened goes into the ``SandboxReports`` of the call (``SandboxedExecute.reports``,
  set in the config by ``grader.pipeline.make_api``).
  (The static tamper review of the student's cells, which never runs in the
  sandbox, is ``grader/tamper_review.py``.)

Limits are nbgrader config options of the ``Sandbox`` section
(``nbgrader_config.py``). ``course/grading_security.md`` gives the threat
model: what this stops and what it cannot.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Instance, Integer, List, Unicode
from traitlets.config import Configurable

from nbgrader.preprocessors import Execute

# Files of /etc that Python and its libraries read; the rest of /etc stays out.
ETC_FILES = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "passwd",
             "group", "hosts", "mime.types", "fonts", "ssl/certs", "ca-certificates", "os-release",
             "alternatives"]
NOBODY = 65534
SHM_SIZE_MB = 64          # /dev/shm inside (shared memory of multiprocessing, DataLoader workers)


class Sandbox(Configurable):
    """Limits and mounts for every autograded kernel (``c.Sandbox.*`` in nbgrader_config.py)."""

    memory_limit_mb = Integer(6144, help=(
        "Memory per submission, MiB: the address-space limit of each process, and the total of the "
        "sandbox's processes where a cgroup can be made.")).tag(config=True)
    max_processes = Integer(128, help=(
        "Processes and threads per submission (cgroup pids.max; RLIMIT_NPROC when the grader is not root).")
    ).tag(config=True)
    max_file_size_mb = Integer(256, help="Largest file a submission may write, MiB (RLIMIT_FSIZE).").tag(config=True)
    work_size_mb = Integer(512, help="Size of the in-memory working folder, MiB.").tag(config=True)
    tmp_size_mb = Integer(512, help="Size of the private /tmp, MiB.").tag(config=True)
    max_open_files = Integer(1024, help="Open files per process (RLIMIT_NOFILE).").tag(config=True)
    wall_time_s = Integer(1800, help=(
        "Wall time for the whole notebook, kernel start included. Past it the kernel is killed, the "
        "remaining cells are marked as not run, and the submission is graded on what ran.")).tag(config=True)
    extra_ro_paths = List(Unicode(), help="More host paths the kernel may read (bound read-only).").tag(config=True)
    pass_env = List(Unicode(), ["COURSE_PROFILE", "COURSE_MODELS_DIR", "NBGRADER_EXECUTION"], help=(
        "Environment variables passed from the grader to the kernel; everything else is cleared.")
    ).tag(config=True)
    use_cgroups = Bool(True, help="Add a cgroup memory/process cap when the grader may create cgroups.").tag(config=True)
    unsafe_grade_without_sandbox = Bool(False, help=(
        "UNSAFE: run every submission's kernel with the grader's own rights, outside the sandbox, where "
        "it can read solutions, hidden tests and the gradebook. For trusted code only (python -m grader "
        "--sandbox off sets it). Every grading door refuses to grade where the sandbox cannot start "
        "unless this is set.")).tag(config=True)
    kernel_threads = Integer(0, help=(
        "Math-library threads of each kernel (OMP_NUM_THREADS, MKL_NUM_THREADS); 0: the cores the grader "
        "may use. Parallel grading gives each kernel its share of the cores.")).tag(config=True)


# --------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------

INSTALL_HINT = ("install bubblewrap (`apt-get install bubblewrap`; tools/setup.sh does it when run as root), "
                "or grade without a sandbox with --no-sandbox (unsafe with untrusted submissions)")


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str:
    """'' when a sandboxed Python starts on this machine, otherwise why not (with the fix)."""
    if shutil.which("bwrap") is None:
        return "bwrap not found: " + INSTALL_HINT
    if shutil.which("prlimit") is None:
        return "prlimit not found: install util-linux"
    workdir = Path(tempfile.mkdtemp(prefix="course-sandbox-probe-"))
    try:
        python_only = [Path(sys.base_prefix), Path(sys.prefix)]
        cmd = build_command([sys.executable, "-c", "print('ok')"], {}, workdir, workdir, Sandbox(), cgroup=None,
                            readonly=python_only)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap failed to start: {error}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot start a sandbox here ({detail}); check that user namespaces are allowed"
    return ""


def is_available() -> bool:
    return unavailable_reason() == ""


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------

# Asked of the kernel's own interpreter, from a neutral folder with the kernel's environment:
# where its ``helpers`` package is and which models folder that package uses. The grader's
# answer may differ (its working folder, --course-root, a second checkout sharing the venv),
# and binding the grader's copy left the kernel without the helpers it imports (issue 12).
_KERNEL_IMPORTS_PROBE = r"""
import importlib.util, json, os, runpy, sys
spec = importlib.util.find_spec("helpers")
found = {"helpers": None, "models": None}
if spec is not None and spec.submodule_search_locations:
    package = os.path.realpath(list(spec.submodule_search_locations)[0])
    paths = runpy.run_path(os.path.join(package, "paths.py"))   # no torch, no package import
    found = {"helpers": package, "models": os.path.realpath(str(paths["MODELS_DIR"]))}
print(json.dumps(found))
"""


class KernelEnvironmentError(RuntimeError):
    """The kernel's interpreter cannot import what every course notebook needs."""


@functools.lru_cache(maxsize=None)
def kernel_imports(python: str, models_env: str | None) -> tuple[Path, Path]:
    """``(helpers package, models folder)`` as the kernel running ``python`` will import them.

    ``models_env``: the ``COURSE_MODELS_DIR`` the kernel will see (part of the cache key).
    Raises ``KernelEnvironmentError`` with the fix when the kernel could not import helpers.
    """
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    if models_env is not None:
        env["COURSE_MODELS_DIR"] = models_env
    with tempfile.TemporaryDirectory(prefix="course-kernel-probe-") as neutral:
        proc = subprocess.run([python, "-c", _KERNEL_IMPORTS_PROBE], cwd=neutral, env=env,
                              capture_output=True, text=True, timeout=120)
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise KernelEnvironmentError(f"the kernel interpreter {python} failed to start ({detail})") from None
    if not found["helpers"]:
        raise KernelEnvironmentError(
            f"the kernel interpreter {python} cannot import the course's helpers package: "
            "run `make setup` (it installs helpers/ into the virtual environment) and grade again")
    return Path(found["helpers"]), Path(found["models"])


def readonly_paths(settings: Sandbox, python: str | None = None) -> list[Path]:
    """Host paths bound read-only: what a course notebook needs to run, nothing more.

    ``python``: the kernel's interpreter (default: the grader's); the helpers package and
    models folder bound are the ones it imports, wherever the grader runs from.
    """
    python = python or sys.executable
    helpers_dir, models_dir = kernel_imports(python, os.environ.get("COURSE_MODELS_DIR"))
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(python).resolve().parent,
             Path(python).parent.parent, helpers_dir, models_dir]
    paths += [Path(p) for p in settings.extra_ro_paths]
    unique: list[Path] = []
    for path in sorted({Path(os.path.abspath(p)) for p in paths if Path(p).exists()}):
        if not any(path.is_relative_to(kept) for kept in unique):   # a folder inside one already bound
            unique.append(path)
    return unique


def _root_entries() -> list[str]:
    """bwrap arguments for /usr and the top-level links into it (merged /usr), or the folders themselves."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _workdir_entries(workdir: Path, settings: Sandbox) -> list[str]:
    """The working folder: a size-limited tmpfs with read-only views of what nbgrader put there.

    Whatever the notebook writes (artifacts/, scratch files) lands in memory, is capped in
    size, and vanishes with the sandbox; the grader's disk is never written by student code.
    """
    args = ["--size", str(settings.work_size_mb << 20), "--tmpfs", str(workdir)]
    for entry in sorted(workdir.iterdir()) if workdir.is_dir() else []:
        if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
            continue
        if entry.suffix == ".ipynb":
            # nbgrader's copy of the notebook being graded already holds the restored hidden
            # tests; the kernel never needs it (cells reach it as messages), so it stays out.
            continue
        args += ["--ro-bind", str(entry), str(entry)]
    return args


def kernel_environment(env: dict, settings: Sandbox) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's leaks in but ``pass_env``."""
    threads = str(settings.kernel_threads or len(os.sched_getaffinity(0)))
    clean = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",            # same hash order every run: grading is deterministic
        "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": "/tmp/hf",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
    }
    for name in settings.pass_env:
        value = env.get(name, os.environ.get(name))
        if value is not None:
            clean[name] = value
    return clean


def build_command(kernel_cmd: list[str], env: dict, workdir: Path, runtime_dir: Path,
                  settings: Sandbox, cgroup: "Cgroup | None", readonly: list[Path] | None = None) -> list[str]:
    """The full command line that starts ``kernel_cmd`` inside the sandbox.

    ``readonly``: host paths to bind read-only (default: ``readonly_paths`` for the kernel's
    interpreter, which raises ``KernelEnvironmentError`` when it cannot import helpers).
    """
    workdir, runtime_dir = Path(workdir), Path(runtime_dir)
    if readonly is None:
        readonly = readonly_paths(settings, shutil.which(kernel_cmd[0]) or kernel_cmd[0])
    mib = 1 << 20
    limits = ["prlimit",
              f"--as={settings.memory_limit_mb * mib}",
              f"--fsize={settings.max_file_size_mb * mib}",
              f"--nofile={settings.max_open_files}",
              f"--cpu={settings.wall_time_s}",
              "--core=0"]
    if os.geteuid() != 0:
        # For root RLIMIT_NPROC is never enforced (the cgroup caps processes instead).
        limits.append(f"--nproc={settings.max_processes}")
    bwrap = ["bwrap",
             "--unshare-all", "--unshare-user", "--disable-userns",
             "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL",
             "--die-with-parent", "--hostname", "sandbox",
             *_root_entries(),
             "--proc", "/proc", "--dev", "/dev",
             "--size", str(SHM_SIZE_MB * mib), "--tmpfs", "/dev/shm",
             "--size", str(settings.tmp_size_mb * mib), "--tmpfs", "/tmp"]
    for path in readonly:
        bwrap += ["--ro-bind", str(path), str(path)]
    bwrap += _workdir_entries(workdir, settings)
    if runtime_dir != workdir:
        bwrap += ["--bind", str(runtime_dir), str(runtime_dir)]
    # bwrap's own root and /dev are in-memory folders without a size: with every mount point
    # made, they become read-only (their sized sub-mounts above stay writable).
    bwrap += ["--remount-ro", "/dev", "--remount-ro", "/"]
    bwrap += ["--chdir", str(workdir), "--clearenv"]
    for name, value in sorted(kernel_environment(env, settings).items()):
        bwrap += ["--setenv", name, value]
    command = [*limits, "--", *bwrap, "--", *kernel_cmd]
    if cgroup is not None:
        command = cgroup.wrap(command)
    return command


# --------------------------------------------------------------------------
# cgroups: a memory and process cap over the whole sandbox, where allowed
# --------------------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "course-grading"


def workdir_tag(workdir: Path) -> str:
    """A short tag of a working folder, part of its sandbox's cgroup name."""
    import hashlib

    return hashlib.sha1(str(Path(workdir).resolve()).encode()).hexdigest()[:12]


def cgroups_available(settings: Sandbox | None = None) -> bool:
    """Whether this grader can give each sandbox a cgroup (memory + process caps over the whole)."""
    cgroup = Cgroup.create(settings or Sandbox(), Path(tempfile.gettempdir()))
    if cgroup is None:
        return False
    cgroup.remove()
    return True


def _own_v1_group(controller: str) -> str:
    """This process's group in a cgroup v1 hierarchy, relative to its root ('' at the root)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path.strip("/")
    return ""


class Cgroup:
    """One sandbox's cgroup(s): v2 (one folder) or v1 (memory and pids hierarchies)."""

    def __init__(self, name: str, memory_bytes: int, max_pids: int):
        self.folders: list[Path] = []
        self.v2 = (CGROUP_ROOT / "cgroup.controllers").is_file()
        try:
            self._make(name, memory_bytes, max_pids)
        except OSError:
            self.remove()
            raise

    def _make(self, name: str, memory_bytes: int, max_pids: int) -> None:
        if self.v2:
            parent = CGROUP_ROOT / CGROUP_PARENT
            parent.mkdir(exist_ok=True)
            # The root cgroup may hold processes and still delegate controllers.
            (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +pids")
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
            folder = parent / name
            folder.mkdir()
            self.folders.append(folder)
            (folder / "memory.max").write_text(str(memory_bytes))
            swap = folder / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
            (folder / "pids.max").write_text(str(max_pids))
        else:
            # No cpu group: measured here, a CPU-weighted group slowed ordinary kernels on a
            # busy machine. CPU is bounded by the worker's core pinning and the time limits.
            for controller, limits in (("memory", {"memory.limit_in_bytes": memory_bytes}),
                                       ("pids", {"pids.max": max_pids})):
                # Nested under the grader's own group, so that limits on the grader (a
                # container, a systemd slice) still hold over its sandboxes.
                folder = CGROUP_ROOT / controller / _own_v1_group(controller) / CGROUP_PARENT / name
                for attempt in range(3):
                    try:
                        folder.mkdir(parents=True)
                        break
                    except FileNotFoundError:   # the parent was just removed by another worker
                        if attempt == 2:
                            raise
                self.folders.append(folder)
                for key, value in limits.items():
                    (folder / key).write_text(str(value))

    @classmethod
    def create(cls, settings: Sandbox, workdir: Path) -> "Cgroup | None":
        """A cgroup for one sandbox, or None where this grader may not make one."""
        if not settings.use_cgroups or os.geteuid() != 0:
            return None
        name = f"sandbox-{workdir_tag(workdir)}-{uuid.uuid4().hex[:8]}"
        try:
            return cls(name, settings.memory_limit_mb << 20, settings.max_processes)
        except OSError:
            return None

    def wrap(self, command: list[str]) -> list[str]:
        # The shell moves itself into the cgroup, then execs the rest: every process of the
        # sandbox starts inside it.
        joins = " && ".join(f"echo $$ > {folder / 'cgroup.procs'}" for folder in self.folders)
        return ["sh", "-c", f'{joins} && exec "$@"', "sandbox-join", *command]

    def oom_kills(self) -> int:
        for folder in self.folders:
            for name in ("memory.events", "memory.oom_control"):
                path = folder / name
                if path.is_file():
                    for line in path.read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def peak_memory(self) -> int:
        """Bytes: the most memory the sandbox's processes held together (0 if unknown)."""
        for folder in self.folders:
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                path = folder / name
                if path.is_file():
                    try:
                        return int(path.read_text().split()[0])
                    except (OSError, ValueError, IndexError):
                        return 0
        return 0

    def pids_denied(self) -> bool:
        for folder in self.folders:
            events = folder / "pids.events"
            if events.is_file():
                for line in events.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "max" and int(value) > 0:
                        return True
        return False

    def kill_all(self) -> None:
        for folder in self.folders:
            kill = folder / "cgroup.kill"
            if kill.exists():
                try:
                    kill.write_text("1")
                    continue
                except OSError:
                    pass
            try:
                pids = (folder / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass

    def remove(self) -> None:
        self.kill_all()
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
            if not self.v2:
                # The shared parent goes too once empty (it fails while another sandbox uses
                # it), so that no group is left inside the grader's own.
                try:
                    folder.parent.rmdir()
                except OSError:
                    pass


# --------------------------------------------------------------------------
# Without cgroups, as root: a process watchdog
# --------------------------------------------------------------------------

def _tasks_under(root_pid: int) -> int:
    """Threads of ``root_pid`` and of all its descendants (0 once it is gone)."""
    total, stack, seen = 0, [root_pid], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        total += len(tids)
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    stack += [int(child) for child in handle.read().split()]
            except (OSError, ValueError):
                continue
    return total


class ProcessWatchdog(threading.Thread):
    """Stops a sandbox whose processes and threads pass ``limit``.

    The process cap where there is no cgroup and the grader is root: Linux does not apply
    RLIMIT_NPROC to root, so nothing else would stop a fork bomb before its cell's time
    limit. It polls the process tree (``/proc/<pid>/task/<tid>/children``), so a fast bomb
    can overshoot the limit by what it forks in one interval before the whole sandbox is
    killed.
    """

    def __init__(self, root_pid: int, limit: int, kill, interval: float = 0.02):
        super().__init__(daemon=True, name=f"sandbox-watchdog-{root_pid}")
        self.root_pid, self.limit, self.kill, self.interval = root_pid, limit, kill, interval
        self.fired = 0                  # tasks counted when it fired; 0 if it never did
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            count = _tasks_under(self.root_pid)
            if count == 0:
                return
            if count > self.limit:
                self.fired = count
                self.kill()
                return

    def stop(self) -> None:
        self._stop_event.set()


def process_watchdog_needed(cgroup: "Cgroup | None") -> bool:
    return cgroup is None and os.geteuid() == 0 and Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


# --------------------------------------------------------------------------
# The kernel manager and the Execute preprocessor nbgrader uses
# --------------------------------------------------------------------------

@dataclass
class SandboxReport:
    """What happened to one notebook's kernel, read by grader.pipeline after autograde."""
    stopped: str = ""                                  # why the kernel stopped early, '' if it did not
    not_run: list[str] = field(default_factory=list)   # cells that could not run after that
    limits_hit: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0                        # from the cgroup; 0 where there is none
    # Hooks and patches that appeared in the kernel after a student's cell or during a test
    # (grader/runtime_watch.py): "after <cell>: <what>".
    tampering: list[str] = field(default_factory=list)


class SandboxReports(dict):
    """One grading call's sandbox reports, ``{notebook name: SandboxReport}``, filled in by
    ``SandboxedExecute``. It travels in the traitlets config (``SandboxedExecute.reports``), and
    traitlets deep-copies config values: a copy of it is itself, so the caller reads what the
    preprocessor wrote."""

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


RUNTIME_TMPFS = "size=1m,nr_inodes=64,mode=0700"


def _mount_small_tmpfs(folder: Path) -> bool:
    """Mount a 1 MiB in-memory filesystem on ``folder`` (root only); False where that is not possible."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", RUNTIME_TMPFS, "course-kernel", str(folder)],
                            capture_output=True)
    return result.returncode == 0


class IPCKernelManager(AsyncKernelManager):
    """A kernel that talks to the grader over IPC sockets in a private folder, not over TCP.

    Used for unsandboxed grading too: no local TCP port is opened (any local user could
    reach one), and the kernel has no reason to print its "running over TCP without
    encryption" warning into the grader's output.
    """

    def __init__(self, **kwargs):
        self._runtime_dir = Path(tempfile.mkdtemp(prefix="course-kernel-"))
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", str(self._runtime_dir / "kernel.json"))
        super().__init__(**kwargs)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    # AsyncKernelManager binds cleanup_resources to the base function itself, not by name.
    cleanup_resources = _async_cleanup_resources


class SandboxedKernelManager(IPCKernelManager):
    """Starts the kernel inside the sandbox, talking over IPC sockets in a private folder."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.settings = Sandbox(config=self.config)
        self.cgroup: Cgroup | None = None
        self.oom_kills, self.pids_denied = 0, False      # read from the cgroup before it goes
        self.peak_memory = 0
        self.watchdog: ProcessWatchdog | None = None
        # The runtime folder is the one host folder the sandbox may write (its IPC sockets live
        # there). Where the grader may mount, it is a tiny in-memory folder, so a submission
        # cannot write files through it onto the grader's disk.
        self._runtime_mounted = _mount_small_tmpfs(self._runtime_dir)
        # The kernel's own stdout/stderr go to a log outside it (the kernel writes it through an
        # inherited descriptor; RLIMIT_FSIZE caps its size).
        self._log_dir = Path(tempfile.mkdtemp(prefix="course-kernel-log-"))
        self.log_path = self._log_dir / "kernel-stderr.log"
        self._log_handle = None

    async def _async_pre_start_kernel(self, **kw):
        # A signal to the process group would reach bwrap, which dies of SIGINT: interrupt by message.
        self.kernel_spec.interrupt_mode = "message"
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
        if self.cgroup is None:
            self.cgroup = Cgroup.create(self.settings, workdir)
        command = build_command(kernel_cmd, kw.get("env") or {}, workdir, self._runtime_dir,
                                self.settings, self.cgroup)
        # The kernel's own stdout/stderr: a small log in the private folder (capped by RLIMIT_FSIZE).
        self._log_handle = open(self.log_path, "ab")
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = self._log_handle
        kw["stdin"] = subprocess.DEVNULL
        kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        kw["cwd"] = str(self._runtime_dir)
        return command, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None and process_watchdog_needed(self.cgroup):
            self.watchdog = ProcessWatchdog(process.pid, self.settings.max_processes, self.kill_sandbox)
            self.watchdog.start()

    def kill_sandbox(self) -> None:
        """Kill every process of the sandbox now (safe from any thread)."""
        provisioner = self.provisioner
        pgid = getattr(provisioner, "pgid", None)
        process = getattr(provisioner, "process", None)
        try:
            if pgid:
                os.killpg(pgid, signal.SIGKILL)
            elif process is not None:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 4000))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        keep = [line for line in text.splitlines() if line.strip() and "NOTE:" not in line][-lines:]
        return " | ".join(keep)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if not restart:
            if self.watchdog is not None:
                self.watchdog.stop()
                self.pids_denied = self.pids_denied or bool(self.watchdog.fired)
            if self.cgroup is not None:
                self.oom_kills = self.cgroup.oom_kills()
                self.pids_denied = self.cgroup.pids_denied()
                self.peak_memory = self.cgroup.peak_memory()
                self.cgroup.remove()
                self.cgroup = None
            if self._log_handle is not None:
                self._log_handle.close()
                self._log_handle = None
            shutil.rmtree(self._log_dir, ignore_errors=True)
        await super()._async_cleanup_resources(restart=restart)   # removes the runtime folder's files
        if not restart and self._runtime_mounted:
            subprocess.run(["umount", "--lazy", str(self._runtime_dir)], capture_output=True)
            self._runtime_mounted = False
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    cleanup_resources = _async_cleanup_resources

    def process_alive(self) -> bool:
        process = getattr(self.provisioner, "process", None)
        return process is not None and process.poll() is None


# Error names in cell outputs that say a limit was reached.
LIMIT_SIGNS = [
    ("MemoryError", "", "memory limit (MemoryError)"),
    ("ImportError", "failed to map segment", "memory limit (a library could not be loaded)"),
    ("OSError", "Cannot allocate memory", "memory limit (allocation refused)"),
    ("RuntimeError", "can't allocate memory", "memory limit (allocation refused)"),
    ("BlockingIOError", "Resource temporarily unavailable", "process limit (fork refused)"),
    ("OSError", "File too large", "file size limit"),
    ("OSError", "No space left on device", "disk space limit (in-memory working folder or /tmp full)"),
    ("CellTimeoutError", "", "per-cell time limit"),
]


class SandboxedExecute(Execute):
    """nbgrader's Execute with the kernel in the sandbox, a wall-time budget, and death handling."""

    reports = Instance(SandboxReports, allow_none=True, help=(
        "Where each notebook's SandboxReport goes, by notebook name (set per grading call).")).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        configured = any("kernel_manager_class" in self.config.get(klass.__name__, {}) for klass in type(self).mro())
        if "kernel_manager_class" not in kwargs and not configured:
            # The one way out of the sandbox is the loudly named option (grader/every_door.py).
            unsafe = Sandbox(config=self.config).unsafe_grade_without_sandbox
            self.kernel_manager_class = IPCKernelManager if unsafe else SandboxedKernelManager

    def create_kernel_manager(self):
        # nbclient forgets its kernel manager at clean-up; the report still needs it.
        self._sandbox_km = super().create_kernel_manager()
        return self._sandbox_km

    def preprocess(self, nb, resources=None, km=None):
        self.settings = Sandbox(config=self.config)
        metadata = (resources or {}).get("metadata", {})
        self._report = SandboxReport()
        if self.reports is not None:
            self.reports[metadata.get("name", "")] = self._report
        self._killed_for = ""
        self._sandbox_km = None
        self._done: set[int] = set()
        self._fingerprint = None
        self._started = time.monotonic()
        self._watchdog = threading.Timer(self.settings.wall_time_s, self._out_of_time)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            try:
                nb, resources = super().preprocess(nb, resources, km=km)
            except Exception as error:
                # The kernel never came up, or was lost between cells: the cells not yet run say why.
                self._stop(self._death_reason(error))
                for index, cell in enumerate(nb.cells):
                    if index not in self._done:
                        self._mark_not_run(cell)
        finally:
            self._watchdog.cancel()
            self._report.seconds = time.monotonic() - self._started
        self._report.limits_hit = self._limits_hit(nb)
        for finding in self._report.tampering:      # every door's log; python -m grader also holds the grade
            self.log.warning("review for tampering, seen in the kernel: %s", finding)
        km = self._sandbox_km
        if isinstance(km, SandboxedKernelManager):
            self._report.peak_memory_mb = km.peak_memory / (1 << 20)
            if km.pids_denied:
                self._report.limits_hit.append(f"process limit ({self.settings.max_processes}) reached")
            if km.oom_kills and "memory limit" not in self._report.stopped:
                self._report.limits_hit.append(
                    f"memory limit ({self.settings.memory_limit_mb} MiB): {km.oom_kills} process(es) killed")
        return nb, resources

    def _out_of_time(self) -> None:
        self._killed_for = f"wall time limit of {self.settings.wall_time_s} s for the notebook reached"
        km = getattr(self, "km", None) or self._sandbox_km
        if isinstance(km, SandboxedKernelManager):
            km.kill_sandbox()

    def _death_reason(self, error: BaseException | None = None) -> str:
        if self._killed_for:
            return self._killed_for
        km = getattr(self, "km", None) or self._sandbox_km
        details = []
        if isinstance(km, SandboxedKernelManager):
            if km.cgroup is not None and km.cgroup.oom_kills():
                return "memory limit: the kernel was killed for using more than " \
                       f"{self.settings.memory_limit_mb} MiB"
            if km.watchdog is not None and km.watchdog.fired:
                return (f"process limit: {km.watchdog.fired} processes and threads, more than "
                        f"{self.settings.max_processes}, so the sandbox was stopped")
            tail = km.stderr_tail()
            if tail:
                details.append(tail)
        if error is not None:
            details.insert(0, f"{type(error).__name__}: {str(error).strip()[:200]}")
        return "the kernel died" + (" (" + "; ".join(details) + ")" if details else "")

    def _stop(self, reason: str) -> None:
        if not self._report.stopped:
            self._report.stopped = reason

    def _mark_not_run(self, cell, ran: bool = False) -> None:
        """Give ``cell`` an error saying why it did not run (or, if ``ran``, did not finish)."""
        if cell.cell_type != "code":
            return
        what = "did not finish" if ran else "did not run"
        error = NotebookNode(
            output_type="error", ename="SandboxStopped",
            evalue=f"{'stopped' if ran else 'not run'}: {self._report.stopped}",
            traceback=[f"SandboxStopped: this cell {what}: {self._report.stopped}"])
        cell.outputs = [*cell.get("outputs", []), error] if ran else [error]
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id and not ran:
            self._report.not_run.append(grade_id)

    def preprocess_cell(self, cell, resources, index):
        self._done.add(index)
        if self._report.stopped:
            self._mark_not_run(cell)
            return cell, self.resources
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        try:
            result = super().preprocess_cell(cell, resources, index)
            self._watch(cell, index)
            return result
        except CellTimeoutError:
            # Still busy after the per-cell limit and the interrupt (signals ignored, stuck
            # in C code): nothing after it could run, so stop the kernel now.
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
            self._stop(f"{name} ran past the per-cell time limit ({self.timeout} s) and did not stop "
                       "when interrupted, so the kernel was stopped")
        except Exception as error:   # DeadKernelError, or the client losing a killed kernel
            km = getattr(self, "km", None)
            if not isinstance(error, DeadKernelError) and not self._killed_for and \
                    isinstance(km, SandboxedKernelManager) and km.process_alive():
                raise
            self._stop(self._death_reason(None))
        km = getattr(self, "km", None) or self._sandbox_km
        if isinstance(km, SandboxedKernelManager):
            km.kill_sandbox()
        self._mark_not_run(cell, ran=True)
        return cell, self.resources

    def _watch(self, cell, index: int) -> None:
        """Ask the kernel, in a request of the executor's own, what hooks and patches it holds now
        (grader/runtime_watch.py); a change after a cell the student's code ran in is a finding."""
        if cell.cell_type != "code" or self.kc is None:
            return
        from grader import runtime_watch

        try:
            msg_id = self.kc.execute("", silent=True, store_history=False,
                                     user_expressions={"fingerprint": runtime_watch.EXPRESSION})
            reply = self.wait_for_reply(msg_id)
        except Exception:     # a kernel that cannot answer: its cells' own outputs tell the rest
            return
        now = runtime_watch.parse((reply or {}).get("content"))
        if now is None:
            return
        meta = cell.metadata.get("nbgrader", {})
        student_ran = bool(meta.get("solution") or meta.get("grade") or not meta.get("locked"))
        if self._fingerprint is not None and student_ran:
            label = meta.get("grade_id") or f"cell {index + 1}"
            where = f"during the test {label}" if meta.get("grade") and not meta.get("solution") else f"after {label}"
            self._report.tampering += [f"{where}: {change}" for change in
                                       runtime_watch.changes(self._fingerprint, now)]
        self._fingerprint = now

    def _limits_hit(self, nb) -> list[str]:
        hits = []
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") != "error":
                    continue
                text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
                for ename, fragment, label in LIMIT_SIGNS:
                    if output.get("ename") == ename and fragment in text:
                        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {nb.cells.index(cell)}"
                        hits.append(f"{label} in {where}")
        return hits
