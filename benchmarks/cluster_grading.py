"""Grading a larger class on a Dask cluster vs as today, and what a whole course would need.

The class: the example students plus the synthetic ones of ``benchmarks.synthetic_class``
(case-table submissions whose outcome is known). Each run grades a fresh copy of it with a
new gradebook, release included:

* (a) "as today": ``python -m grader --no-feedback --course-root A`` with the default
  number of workers (worker processes on this machine);
* (b) cluster: the same command with ``--scheduler tcp://127.0.0.1:PORT``, against a Dask
  scheduler and two single-process grading workers started on this machine (loopback).

Both arms run as a subprocess of the course's venv: ``.venv/bin/python -c`` calling
``grader.__main__.run`` (what ``python -m grader`` runs) and writing the rows it returns,
sandbox reports included, to a JSON file; the wall time is the subprocess's, from launch to
exit. The scheduler's and workers' start-up (launch until the scheduler sees both workers) is
timed separately and is not in (b)'s wall time. The arms are interleaved, (a)(b) then (b)(a),
so that drift of a noisy machine falls on both; the overhead ratio is (b)/(a) of each pair.

Both runs must give identical scores per submission, and every synthetic submission the
outcome of its case ("full": all points; "lose": fewer, in the cells the case names): the
benchmark raises otherwise, after printing its figures.

Per-submission CPU seconds: ``grader.sandbox.SandboxReport`` records a kernel's wall time and
cgroup memory peak, not its CPU time; so CPU per submission = ``seconds`` in (a)'s grades.csv
x the threads each kernel was given (cores // workers), an upper bound (the kernel does not
keep its threads busy all the time, and ``seconds`` includes nbgrader's own work). As a check,
the whole run's CPU time (the command and all it started, and for (b) the workers and
scheduler, sampled with ``psutil``) divided by the submissions is reported too, and the
(b)/(a) ratio of those CPU seconds, which other work on the machine disturbs less than wall time.

    python -m benchmarks cluster_grading
    python -m benchmarks.cluster_grading --arms a --pairs 1     # only "as today", once
    python -m benchmarks.cluster_grading --keep DIR             # keep copies, logs, results.json
    python -m benchmarks.cluster_grading --report DIR           # report a kept run again
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import row
from benchmarks.synthetic_class import SyntheticSubmission, build_class, check_outcomes
from helpers.paths import REPO_ROOT

BENCH = "cluster grading"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
WORKERS = 2
WAIT_FOR_WORKERS_S = 180
STOP_WAIT_S = 15

# The command, in a subprocess: grader.__main__.run is what `python -m grader` runs; its rows
# (with the sandbox reports, which grades.csv does not carry) go to the JSON file argv[1].
_RUNNER = r"""
import dataclasses, json, sys
from grader.__main__ import run

def report(rep):
    rep = dataclasses.asdict(rep) if dataclasses.is_dataclass(rep) else dict(rep)
    return {k: rep.get(k) for k in ("seconds", "peak_memory_mb", "stopped", "limits_hit")}

status, rows = run(sys.argv[2:])
with open(sys.argv[1], "w") as handle:
    json.dump({"status": status, "rows": [
        {"student": r.student, "assignment": r.assignment, "status": r.status, "score": r.score,
         "max_score": r.max_score, "failed": list(r.failed), "reason": r.reason, "seconds": r.seconds,
         "sandbox": {name: report(rep) for name, rep in (getattr(r, "sandbox_reports", None) or {}).items()}}
        for r in rows]}, handle)
sys.exit(status)
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class CpuSampler:
    """CPU seconds used by some processes and all their descendants, sampled every ``interval`` s.

    Each process's own user + system time is read while it lives (psutil); the sum of the last
    readings is a lower bound: a process that lives less than ``interval`` s, and a process's
    time after the last sample, are missed. (``getrusage(RUSAGE_CHILDREN)`` would miss most of
    the work: the grader's worker server is not reaped by it.)"""

    def __init__(self, interval: float = 0.5):
        import threading

        self.interval = interval
        self.pids: list[int] = []
        self.seen: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def watch(self, pid: int) -> None:
        self.pids.append(pid)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        import psutil

        for pid in list(self.pids):
            try:
                root = psutil.Process(pid)
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for member in family:
                try:
                    with member.oneshot():
                        key = (member.pid, member.create_time())
                        times = member.cpu_times()
                    self.seen[key] = max(self.seen.get(key, 0.0), times.user + times.system)
                except psutil.Error:
                    pass

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @property
    def total(self) -> float:
        return sum(self.seen.values())


def grade(root: Path, *args: str, log_name: str, sampler: CpuSampler | None = None) -> dict:
    """One run of the command on ``root`` in a subprocess: wall seconds, CPU seconds (sampled: the
    command and its descendants, and whatever ``sampler`` already watches), rows, grades.csv."""
    out = root.parent / f"{log_name}.json"
    log = root.parent / f"{log_name}.log"
    argv = [str(VENV_PYTHON), "-c", _RUNNER, str(out), "--course-root", str(root), "--no-feedback", *args]
    sampler = sampler or CpuSampler()
    before = sampler.total
    load_before = os.getloadavg()[0]
    with open(log, "w") as handle, sampler:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=_env(), stdout=handle, stderr=subprocess.STDOUT)
        sampler.watch(proc.pid)
        status = proc.wait()
        wall = time.perf_counter() - start
    if status != 0 or not out.exists():
        raise RuntimeError(f"python -m grader {' '.join(args)} on {root.name} exited {status}:\n{_tail(log)}")
    data = json.loads(out.read_text())
    with open(root / "grades.csv", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    text = log.read_text(errors="replace")
    workers = 0
    for line in text.splitlines():
        if line.startswith("[grade]") and " at a time" in line:
            workers = int(line.rsplit(",", 1)[1].split()[0])
    return {"wall": wall, "cpu": sampler.total - before, "rows": data["rows"], "csv": csv_rows,
            "workers": workers, "log": str(log), "load": (load_before, os.getloadavg()[0])}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(procs) -> None:
    """Terminate what was started (each process and its descendants, by pid), then kill what is left."""
    import psutil

    family = []
    for proc in procs:
        try:
            parent = psutil.Process(proc.pid)
            family += parent.children(recursive=True) + [parent]
        except psutil.NoSuchProcess:
            pass
    for member in family:
        try:
            member.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=STOP_WAIT_S)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_WAIT_S)
    for proc in procs:
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass


def _worker_command(address: str, number: int, certs: Path | None = None) -> list[str]:
    # Two workers share this machine: each gets half the cores for its kernels and half the
    # memory, as (a)'s two worker processes do (grader.dispatch), so the arms differ only in
    # how submissions reach the kernels.
    cores = len(os.sched_getaffinity(0))
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    return [str(VENV_PYTHON), "-m", "grader.worker", address, "--nworkers", "1",
            "--kernel-threads", str(max(1, cores // WORKERS)), "--memory-mb", str(memory_mb // WORKERS),
            "--name", f"w{number}", *(["--certs", str(certs)] if certs else [])]


def grade_on_cluster(root: Path, log_name: str, certs: Path | None = None) -> dict:
    """Scheduler + two workers on loopback, then the command with ``--scheduler``; stopped in a finally.

    ``certs``: a ``python -m grader.certificates`` folder: every connection is then TLS with
    mutual authentication (``tls://``), as on a real cluster."""
    from distributed import Client

    from grader.certificates import client_security

    port = _free_port()
    address = f"{'tls' if certs else 'tcp'}://127.0.0.1:{port}"
    tls = ["--certs", str(certs)] if certs else []
    logs = root.parent
    procs, handles = [], []
    try:
        launched = time.perf_counter()
        handle = open(logs / f"{log_name}-scheduler.log", "w")
        handles.append(handle)
        procs.append(subprocess.Popen([str(VENV_PYTHON), "-m", "grader.scheduler", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-dashboard", *tls], cwd=REPO_ROOT, env=_env(),
                                      stdout=handle, stderr=subprocess.STDOUT))
        for number in range(1, WORKERS + 1):
            handle = open(logs / f"{log_name}-worker{number}.log", "w")
            handles.append(handle)
            procs.append(subprocess.Popen(_worker_command(address, number, certs), cwd=REPO_ROOT, env=_env(),
                                          stdout=handle, stderr=subprocess.STDOUT))
        try:
            with Client(address, timeout=WAIT_FOR_WORKERS_S,
                        security=client_security(certs) if certs else None) as client:
                client.wait_for_workers(WORKERS, timeout=WAIT_FOR_WORKERS_S)
        except Exception as error:
            tails = "\n".join(f"--- {p.name}\n{_tail(p, 15)}" for p in sorted(logs.glob(f"{log_name}-*.log")))
            raise RuntimeError(f"the cluster did not come up ({type(error).__name__}: {error}):\n{tails}") from error
        startup = time.perf_counter() - launched
        sampler = CpuSampler()
        for proc in procs:
            sampler.watch(proc.pid)
        sampler.sample()          # the cluster's own start-up is not counted in the run's CPU
        result = grade(root, "--scheduler", address, *tls, log_name=log_name, sampler=sampler)
        result["startup"] = startup
        result["worker_command"] = " ".join(Path(a).name if i == 0 else a
                                            for i, a in enumerate(_worker_command("ADDRESS", 1)))
        return result
    finally:
        _stop(procs)
        for handle in handles:
            handle.close()


def _scores(result: dict) -> dict:
    return {(r["student"], r["assignment"]): (r["status"], float(r["score"]), float(r["max_score"]),
                                              " ".join(sorted(r["failed"].split())))
            for r in result["csv"]}


def _peaks(result: dict) -> dict:
    peaks = {}
    for r in result["rows"]:
        for rep in r["sandbox"].values():
            peaks[r["assignment"]] = max(peaks.get(r["assignment"], 0.0), float(rep.get("peak_memory_mb") or 0.0))
    return peaks


def _kernel_threads(workers: int) -> int:
    """The threads each kernel gets in grader.dispatch.grade_submissions with ``workers`` at once."""
    cores = len(os.sched_getaffinity(0))
    return max(1, cores // workers) if workers > 1 else cores


def _load(result: dict) -> str:
    return "1-min load average {:.1f} before, {:.1f} after".format(*result["load"])


def sandbox_memory_limit_mb() -> int:
    from grader.pipeline import sandbox_memory_mb

    return sandbox_memory_mb()


def capacity_table(cpu_s_per_submission: dict, peak_mb: dict, cores_per_machine=32, mem_gb_per_machine=128,
                   hours=1.0, students=(1000, 10000), overhead_ratio: float = 1.0) -> tuple[list[dict], str]:
    """Machines and cores needed to grade ``students`` x every exercise within ``hours``.

    Returns the rows (one per class size) and the same as a printable table.

    Assumptions:

    * One grading slot = one submission at a time, its kernel on one core (kernel_threads =
      cores // slots = 1 on the default machine). Slots per machine = min(cores, memory /
      the sandbox memory limit), the limit read from ``grader.sandbox.Sandbox.memory_limit_mb``'s
      default (6144 MiB): every slot reserves the whole limit, whatever the measured peak (the
      measured peak, ``peak_mb``, is only checked against the limit and shown).
    * A submission occupies its slot for ``cpu_s_per_submission[exercise]`` seconds (CPU seconds
      measured here, so the machine's cores are taken as fast as this one's, and the work as not
      speeding up with more threads) x ``overhead_ratio`` (cluster / as-today wall time, measured
      on one small run, applied per submission: scheduling, transfers, the client; the benchmark
      passes the mean of its pairs' ratios, at least 1, since a ratio below 1 is this machine's noise).
    * Slots are kept busy all the hour (no stragglers, the last submissions' tail ignored);
      releases and the solution check (one-off per run) are not counted; gradebook writes,
      the scheduler and the file store are taken not to be the bottleneck.
    """
    limit_mb = sandbox_memory_limit_mb()
    slots_by_memory = int(mem_gb_per_machine * 1024 // limit_mb)
    slots = max(1, min(cores_per_machine, slots_by_memory))
    peak = max(peak_mb.values(), default=0.0)
    if peak > limit_mb:
        raise ValueError(f"a measured peak ({peak:.0f} MiB) exceeds the sandbox limit ({limit_mb} MiB)")
    per_student_s = sum(cpu_s_per_submission.values()) * overhead_ratio
    rows = []
    for n in students:
        slot_seconds = n * per_student_s
        slots_needed = math.ceil(slot_seconds / (hours * 3600))
        machines = math.ceil(slots_needed / slots)
        rows.append({"students": n, "submissions": n * len(cpu_s_per_submission),
                     "slot_hours": slot_seconds / 3600, "slots_needed": slots_needed,
                     "slots_per_machine": slots, "machines": machines,
                     "cores_provisioned": machines * cores_per_machine, "cores_busy": slots_needed,
                     "memory_gb_reserved": slots_needed * limit_mb / 1024})
    header = (f"Capacity to grade within {hours:g} h: {', '.join(f'{a} {s:.1f} CPU s' for a, s in sorted(cpu_s_per_submission.items()))}"
              f" per submission x overhead {overhead_ratio:.2f}; machines of {cores_per_machine} cores, "
              f"{mem_gb_per_machine} GB: {slots} slots each (min(cores, {mem_gb_per_machine * 1024} MiB / "
              f"{limit_mb} MiB limit = {slots_by_memory})); measured peak {peak:.0f} MiB")
    columns = ["students", "submissions", "slot_hours", "slots_needed", "machines", "cores_provisioned",
               "cores_busy", "memory_gb_reserved"]
    lines = [header, "  ".join(columns)]
    for r in rows:
        lines.append("  ".join(f"{r[c]:>{len(c)}.1f}" if isinstance(r[c], float) else f"{r[c]:>{len(c)}}"
                               for c in columns))
    return rows, "\n".join(lines)


def run_arms(pairs: int, arms: str, per_assignment: int, work_dir: Path) -> dict:
    """Grade fresh copies in ``work_dir``: pair 1 (a)(b), pair 2 (b)(a)...; each run's results are
    kept in ``work_dir/<arm><pair>/results.json``. Returns ``{"a": [results...], "b": [...]}``."""
    results = {"a": [], "b": []}
    for pair in range(1, pairs + 1):
        order = "".join(arm for arm in ("ab" if pair % 2 else "ba") if arm in arms)
        for arm in order:
            root = Path(work_dir) / f"{arm}{pair}" / "course"
            made = build_class(root, per_assignment)
            print(f"[{BENCH}] pair {pair}, arm ({arm}): {len(made)} synthetic submissions in {root}", flush=True)
            result = grade(root, log_name="grader") if arm == "a" else grade_on_cluster(root, log_name="grader")
            result.update(made=made, pair=pair)
            results[arm].append(result)
            print(f"[{BENCH}] pair {pair}, arm ({arm}): {result['wall']:.1f} s wall", flush=True)
            saved = {k: [m._asdict() for m in v] if k == "made" else v for k, v in result.items()}
            (root.parent / "results.json").write_text(json.dumps(saved, indent=1))
    return results


def load_results(work_dir: Path) -> dict:
    """What ``run_arms`` kept in ``work_dir``, to report again without grading."""
    results = {"a": [], "b": []}
    for path in sorted(Path(work_dir).glob("[ab]*/results.json"), key=lambda p: (p.parent.name[0], int(p.parent.name[1:]))):
        result = json.loads(path.read_text())
        result["made"] = [SyntheticSubmission(**{**m, "lose": tuple(m["lose"])}) for m in result["made"]]
        results[path.parent.name[0]].append(result)
    if not results["a"] and not results["b"]:
        raise FileNotFoundError(f"no <arm><pair>/results.json under {work_dir}")
    return results


def report(results: dict) -> tuple[list[dict], str, list[str]]:
    """The figures of ``run_arms``'s results: rows, the capacity table, and what was graded wrong."""
    rows, problems = [], []
    basis = results["a"] or results["b"]
    for arm in "ab":
        for result in results[arm]:
            problems += [f"({arm}) pair {result['pair']}: {p}" for p in check_outcomes(result["made"], result["csv"])]
    n, n_syn = len(basis[0]["csv"]), len(basis[0]["made"])
    reference = _scores(basis[0])
    for arm in "ab":
        for result in results[arm]:
            scores = _scores(result)
            if scores != reference:
                diff = sorted(k for k in set(scores) | set(reference) if scores.get(k) != reference.get(k))
                problems.append(f"({arm}) pair {result['pair']}: scores differ from the first run for "
                                f"{', '.join(f'{s}/{a}' for s, a in diff)}")

    what = (f"fresh copy of the class ({n} submissions: example students + {n_syn} synthetic), "
            "release included, --no-feedback; subprocess wall time")
    for result in results["a"]:
        rows.append(row(BENCH, f"(a) as today, pair {result['pair']}", result["wall"], "s",
                        f"python -m grader, default workers ({result['workers']}); {what}; {_load(result)}"))
    for result in results["b"]:
        rows.append(row(BENCH, f"(b) cluster, pair {result['pair']}", result["wall"], "s",
                        f"python -m grader --scheduler, Dask scheduler + {WORKERS} workers on loopback "
                        f"({result['worker_command']}); {what}; start-up not included; {_load(result)}"))
        rows.append(row(BENCH, f"(b) scheduler + {WORKERS} workers start-up, pair {result['pair']}",
                        result["startup"], "s",
                        "from launching the scheduler and worker processes until "
                        f"Client.wait_for_workers({WORKERS}) returns"))
    ratios = []
    for a, b in zip(results["a"], results["b"]):
        order = "(a)(b)" if a["pair"] % 2 else "(b)(a)"
        ratios.append(b["wall"] / a["wall"])
        rows.append(row(BENCH, f"cluster overhead ratio, pair {a['pair']} {order}", ratios[-1], "x",
                        "(b) / (a) wall time of the same pair, arms run back to back"))
        rows.append(row(BENCH, f"cluster CPU ratio, pair {a['pair']} {order}", b["cpu"] / a["cpu"], "x",
                        "(b) / (a) whole-run CPU seconds of the same pair (sampled, below): less sensitive "
                        "than wall time to other work on the machine"))
    if len(ratios) > 1:
        rows.append(row(BENCH, "cluster overhead ratio, mean", statistics.mean(ratios), "x",
                        f"mean of the {len(ratios)} pairs' wall-time ratios, one in each order"))

    # Per-submission CPU and peak memory, per exercise, from the as-today runs (the cluster's if none).
    cpu_s, peaks = {}, {}
    for arm in "ab":
        for result in results[arm]:
            for assignment, peak in _peaks(result).items():
                peaks[assignment] = max(peaks.get(assignment, 0.0), peak)
    workers = basis[0]["workers"] or WORKERS
    threads = _kernel_threads(workers) if results["a"] else max(1, len(os.sched_getaffinity(0)) // WORKERS)
    for assignment in sorted({r["assignment"] for r in basis[0]["csv"]}):
        times = [float(r["seconds"]) for result in basis for r in result["csv"]
                 if r["assignment"] == assignment and r["status"] == "graded"]
        cpu_s[assignment] = statistics.median(times) * threads
        rows.append(row(BENCH, f"{assignment}: CPU per submission (upper bound)", cpu_s[assignment], "CPU s",
                        f"median over {len(times)} graded submissions in {len(basis)} run(s) of "
                        f"{'(a)' if results['a'] else '(b)'} of grades.csv seconds x {threads} kernel thread(s) "
                        f"(cores // {workers} workers); the sandbox reports carry no CPU time"))
    for assignment, peak in sorted(peaks.items()):
        rows.append(row(BENCH, f"{assignment}: peak memory of one sandboxed submission", peak, "MiB",
                        "largest cgroup memory peak in the sandbox reports over every run, both arms "
                        "(0: no cgroups here, or the rows came back without reports)"))
    for arm in "ab":
        for result in results[arm]:
            rows.append(row(BENCH, f"({arm}) whole-run CPU per submission, pair {result['pair']}",
                            result["cpu"] / n, "CPU s",
                            "CPU time of the command and all its descendants"
                            + (" + the scheduler's and workers' process trees" if arm == "b" else "")
                            + f", sampled every 0.5 s with psutil (a lower bound) / {n} submissions; "
                            "includes release, solution check, gradebook"))

    # A cluster cannot grade a submission faster than one machine: a ratio below 1 is the noise
    # of this machine, so the capacity is sized with at least 1.
    measured = statistics.mean(ratios) if ratios else None
    overhead = max(1.0, measured or 1.0)
    capacity, table = capacity_table(cpu_s, peaks, overhead_ratio=overhead)
    how = (f"measured mean {measured:.2f}x, used {overhead:.2f}x (at least 1)" if measured is not None
           else "not measured, taken as 1")
    for c in capacity:
        rows.append(row(BENCH, f"capacity: machines for {c['students']} students x {len(cpu_s)} exercises in 1 h",
                        c["machines"], "machines",
                        f"32 cores / 128 GB each, {c['slots_per_machine']} slots each, {c['slots_needed']} slots "
                        f"busy; CPU per submission above; cluster overhead {how}; capacity_table's assumptions"))
    return rows, table, problems


def main(pairs: int = 2, arms: str = "ab", per_assignment: int = 12, work_dir: Path | None = None,
         report_only: bool = False) -> list[dict]:
    """``pairs`` pairs of runs, (a)(b) then (b)(a)...; ``arms`` "a" or "b" runs one arm only.
    ``work_dir``: keep the course copies, logs and each run's results there; with ``report_only``,
    report what an earlier run kept there instead of grading. Raises if grading was not right."""
    if report_only:
        results = load_results(work_dir)
    else:
        from grader import sandbox

        if sandbox.unavailable_reason():
            raise RuntimeError(f"sandbox unavailable ({sandbox.unavailable_reason()}): run `make setup`")
        if work_dir is not None:
            Path(work_dir).mkdir(parents=True, exist_ok=True)
            results = run_arms(pairs, arms, per_assignment, work_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="cluster-grading-") as tmp:
                results = run_arms(pairs, arms, per_assignment, Path(tmp))
    rows, table, problems = report(results)
    for r in rows:
        print(f"[{BENCH}] {r['figure']}: {r['value']:.4g} {r['unit']}  -- {r['method']}")
    print(table, flush=True)
    if problems:
        raise RuntimeError("grading was not right:\n" + "\n".join(problems))
    return rows


def _cli(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", choices=["a", "b", "ab"], default="ab", help="a: as today; b: cluster")
    parser.add_argument("--pairs", type=int, default=2, help="pairs of runs, alternating the order (default 2)")
    parser.add_argument("--per-assignment", type=int, default=12)
    parser.add_argument("--keep", type=Path, default=None, help="keep copies, logs and results in this folder")
    parser.add_argument("--report", type=Path, default=None,
                        help="report again what an earlier --keep run kept in this folder, without grading")
    args = parser.parse_args(argv)
    main(pairs=args.pairs, arms=args.arms, per_assignment=args.per_assignment,
         work_dir=args.report or args.keep, report_only=args.report is not None)
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
