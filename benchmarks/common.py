"""Shared pieces of the benchmarks: thread pinning, machine description, rows."""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from helpers.cpu import cpuinfo
from helpers.paths import REPO_ROOT


def pin_threads(n: int | None = None) -> int:
    """Pin torch's intra-op threads (default: all cores) so runs are comparable."""
    import torch

    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def machine() -> str:
    import torch

    cpu = cpuinfo().get("model name", platform.processor() or platform.machine())
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu}, {os.cpu_count()} cores{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def row(benchmark: str, figure: str, value: float, unit: str, method: str) -> dict:
    return {"benchmark": benchmark, "figure": figure, "value": value, "unit": unit, "method": method}


def median_time(fn, repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        values.append(time.perf_counter() - start)
    return statistics.median(values), values


def course_copy(target: Path, parts=("nbgrader_config.py", "source", "submitted")) -> Path:
    """A copy of the course's ``parts`` in ``target`` (created), without notebook artifacts."""
    target = Path(target)
    target.mkdir(parents=True)
    for name in parts:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("artifacts"))
        elif src.exists():
            shutil.copy2(src, target / name)
    return target
