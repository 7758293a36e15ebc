"""A real, throw-away PostgreSQL server for the gradebook tests (no mocks).

``PostgresServer`` runs Debian's ``initdb``/``pg_ctl`` in a fresh temporary folder and starts
a server on 127.0.0.1 only, on a free port, with its unix socket inside that folder. As root
(CI, containers) the server runs as the unprivileged ``postgres`` user (``nobody`` where that
is missing), since PostgreSQL refuses to run as root. Leaving the ``with`` block stops the
server and deletes the folder, whether the test passed or not.

Test modules import the fixtures by name::

    from tests.postgres_server import postgres_server, postgres_db_url  # noqa: F401

``postgres_server`` is module-scoped (one server per test module); ``postgres_db_url`` gives
each test the URL of a database of its own on it.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SUPERUSER = "course"                  # initdb -U: the role in every URL, trusted, no password
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, the driver requirements.txt pins: the
# tests hand nbgrader the plain URL an instructor would type.
DRIVER = None
INSTALL_HINT = "apt-get install postgresql (tools/setup.sh does it when run as root)"
_names = itertools.count(1)


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: the newest /usr/lib/postgresql/*/bin, then PATH."""
    def version(folder: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([\d.]+)/bin$", folder)
        return tuple(int(p) for p in found.group(1).split(".") if p) if found else ()

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.access(os.path.join(folder, "initdb"), os.X_OK) and os.access(os.path.join(folder, "pg_ctl"), os.X_OK):
            return Path(folder)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # /usr/local/bin/initdb may be a link into /usr/lib/postgresql/N/bin: keep the pair together.
        folder = Path(initdb).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
        return Path(initdb).parent
    return None


def unique_db_name(hint: str = "test") -> str:
    """A database name no other call in this process returns: lower-case, at most 63 bytes."""
    slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_") or "test"
    return f"t{os.getpid()}_{next(_names)}_{slug}"[:63]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """A PostgreSQL server in a temporary folder, alive inside ``with PostgresServer() as pg:``.

    ``pg.url(dbname)`` is ``postgresql://course@127.0.0.1:PORT/DBNAME`` (``pg.url(dbname, DRIVER)``
    the same for SQLAlchemy, naming the driver); ``pg.create_database()`` makes a fresh, empty
    database and returns its name.
    """

    host = "127.0.0.1"

    def __init__(self, bin_dir: Path | None = None, *, start_timeout: int = 60):
        self.bin_dir = Path(bin_dir) if bin_dir else find_postgres_bin()
        if self.bin_dir is None:
            raise FileNotFoundError(f"no PostgreSQL binaries (initdb, pg_ctl): {INSTALL_HINT}")
        self.start_timeout = start_timeout
        self.user = _server_user()
        self.folder: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None            # the postmaster's
        self.timings: dict[str, float] = {}   # seconds: "initdb", "start"

    # -- paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    # -- the public API --------------------------------------------------------------------
    def url(self, dbname: str = "postgres", driver: str | None = None) -> str:
        """``postgresql://course@127.0.0.1:PORT/DBNAME``; ``postgresql+DRIVER://...`` with a driver."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):
        """A psycopg (3) connection (autocommit) to ``dbname``."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, dbname=dbname,
                               connect_timeout=10, autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (``unique_db_name()`` unless named) and return its name."""
        name = name or unique_db_name()
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute('CREATE DATABASE "{}"'.format(name.replace('"', '""')))
        finally:
            conn.close()
        return name

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- start and stop --------------------------------------------------------------------
    def __enter__(self) -> "PostgresServer":
        self.folder = Path(tempfile.mkdtemp(prefix="course-pg-"))
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _run(self, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run a PostgreSQL binary as the server's user, in the temporary folder."""
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.user.pw_name, "--", *cmd]
            else:
                cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
                       "--init-groups", "--", *cmd]
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        proc = subprocess.run(cmd, cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                               f"\n--- last lines of {self.log_file} ---\n{self.log_tail()}")
        return proc

    def _start(self) -> None:
        self.socket_dir.mkdir()
        if self.user is not None:
            for path in (self.folder, self.socket_dir):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        started = time.monotonic()
        self._run("initdb", "-D", str(self.data_dir), "--auth=trust", "-U", SUPERUSER,
                  "--encoding=UTF8", "--locale=C", "--no-instructions", timeout=120)
        self.timings["initdb"] = time.monotonic() - started

        for attempt in range(3):           # another process may take the free port first
            self.port = _free_port()
            options = (f"-h {self.host} -p {self.port} -k {self.socket_dir}"
                       " -c fsync=off -c full_page_writes=off")
            started = time.monotonic()
            proc = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                             "-t", str(self.start_timeout), "-o", options, "start",
                             check=False, timeout=self.start_timeout + 30)
            if proc.returncode == 0:
                self.timings["start"] = time.monotonic() - started
                self.pid = self._postmaster_pid()
                return
            if "could not bind" not in self.log_tail() or attempt == 2:
                raise RuntimeError(
                    f"PostgreSQL did not start (pg_ctl exited with {proc.returncode}):\n"
                    f"{proc.stdout}{proc.stderr}\n--- last lines of {self.log_file} ---\n{self.log_tail()}")

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(self.data_dir).encode() in cmdline

    @staticmethod
    def process_alive(pid: int) -> bool:
        """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not count)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")

    def _wait_until_gone(self, pid: int, timeout: float = 10) -> None:
        # pg_ctl -w returns once postmaster.pid is gone; the process itself exits a moment later.
        # It is PID 1's child (pg_ctl daemonises it), so it may linger as a zombie until reaped.
        deadline = time.monotonic() + timeout
        while self.process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _stop(self) -> None:
        if self.folder is None:
            return
        try:
            if self._postmaster_pid() is not None:
                try:
                    self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop",
                              check=False, timeout=60)
                except subprocess.TimeoutExpired:
                    pass
                pid = self._postmaster_pid()         # still there: pg_ctl could not stop it
                if pid is not None and self._is_our_postmaster(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if self.pid is not None:
                self._wait_until_gone(self.pid)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


@pytest.fixture(scope="module")
def postgres_server():
    """A running ``PostgresServer`` shared by the tests of one module; skipped without PostgreSQL."""
    if find_postgres_bin() is None:
        reason = f"no PostgreSQL server binaries (initdb, pg_ctl): {INSTALL_HINT}"
        if os.geteuid() == 0 and shutil.which("apt-get") or os.environ.get("CI"):
            pytest.fail(f"{reason}; run `make setup`")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_db_url(postgres_server, request) -> str:
    """The URL (``postgresql://...``) of a fresh, empty database on the
    module's server, named after the test."""
    name = postgres_server.create_database(unique_db_name(request.node.name))
    return postgres_server.url(name, driver=DRIVER)
