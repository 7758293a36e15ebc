"""A one-node Slurm cluster on loopback, for the tests and benchmarks of grading on Slurm.

Debian's ``slurmctld``, ``slurmd`` and ``munged`` (``tools/setup.sh`` installs them as root),
each with its files in one private folder: its own munge key and socket, a ``slurm.conf`` with
free loopback ports, one node (this machine, ``NodeAddr=127.0.0.1``) and one partition,
``grading``. Nothing of the machine's own Slurm or munge configuration is read or changed;
commands reach this cluster through ``SLURM_CONF`` (``env``). Needs root (slurmd runs jobs as
their user; here every job is root's).

    with LocalSlurm(folder) as slurm:
        subprocess.run(["sbatch", ...], env=slurm.env)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
PARTITION = "grading"


def missing() -> str:
    """'' when this machine can run the cluster, else what is missing (and how to get it)."""
    absent = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if absent:
        return (f"not installed: {', '.join(absent)} (`apt-get install slurmctld slurmd slurm-client munge`; "
                "tools/setup.sh does it as root)")
    if os.geteuid() != 0:
        return "a local Slurm cluster needs root (slurmd starts jobs as their owner)"
    return ""


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalSlurm:
    def __init__(self, folder: Path, cpus: int | None = None, memory_mb: int | None = None):
        self.folder = Path(folder).resolve()
        self.cpus = cpus or len(os.sched_getaffinity(0))
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
        self.memory_mb = memory_mb or int(total_mb * 0.75)
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        f = self.folder
        for sub in ("state", "spool", "munge", "logs"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        lines = {
            "ClusterName": "course", "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": _free_port(), "SlurmdPort": _free_port(),
            "AuthType": "auth/munge", "CredType": "cred/munge", "AuthInfo": f"socket={f / 'munge/munge.socket'}",
            "SlurmUser": "root", "SlurmdUser": "root",
            "StateSaveLocation": f / "state", "SlurmdSpoolDir": f / "spool",
            "SlurmctldPidFile": f / "slurmctld.pid", "SlurmdPidFile": f / "slurmd.pid",
            "SlurmctldLogFile": f / "logs/slurmctld.log", "SlurmdLogFile": f / "logs/slurmd.log",
            # No cgroups (a container may not have them): processes tracked by parentage, and
            # memory requests checked against the node's RealMemory when a job is placed.
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core_Memory",
            "JobAcctGatherType": "jobacct_gather/none", "AccountingStorageType": "accounting_storage/none",
            "MpiDefault": "none", "ReturnToService": 2, "SchedulerType": "sched/backfill",
            "SlurmctldTimeout": 30, "SlurmdTimeout": 30, "KillWait": 5,
        }
        text = "".join(f"{key}={value}\n" for key, value in lines.items())
        text += (f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
                 "State=UNKNOWN\n")
        text += f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        self.conf.write_text(text)

    def __enter__(self) -> "LocalSlurm":
        reason = missing()
        if reason:
            raise RuntimeError(f"cannot start a local Slurm cluster: {reason}")
        self._write_config()
        m = self.folder / "munge"
        subprocess.run([_tool("mungekey"), "--create", f"--keyfile={m / 'munge.key'}", "--force"], check=True,
                       capture_output=True)
        subprocess.run([_tool("munged"), "--force", f"--socket={m / 'munge.socket'}", f"--key-file={m / 'munge.key'}",
                        f"--log-file={m / 'munged.log'}", f"--pid-file={m / 'munged.pid'}",
                        f"--seed-file={m / 'munged.seed'}"], check=True, capture_output=True)
        try:
            # -i: ignore any state a previous run left; both daemonize and write their pid files.
            subprocess.run([_tool("slurmctld"), "-i", "-f", str(self.conf)], check=True, capture_output=True,
                           env=self.env)
            subprocess.run([_tool("slurmd"), "-f", str(self.conf)], check=True, capture_output=True, env=self.env)
            self.wait_idle()
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_idle(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            done = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, env=self.env)
            state = done.stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the local Slurm node did not come up in {timeout_s:.0f} s (state {state!r}):\n"
                           + self.log_tail())

    def jobs(self) -> list[dict]:
        """This cluster's jobs: id, state, reason."""
        done = subprocess.run(["squeue", "-h", "-o", "%i|%T|%r|%j"], capture_output=True, text=True, env=self.env)
        return [dict(zip(("id", "state", "reason", "name"), line.split("|"))) for line in done.stdout.splitlines()]

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for log in sorted((self.folder / "logs").glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    def __exit__(self, *exc) -> None:
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, env=self.env)
        for name in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            path = self.folder / name
            try:
                pid = int(path.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
