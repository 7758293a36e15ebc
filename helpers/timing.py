"""Timing building blocks: a synchronising timer and repeat statistics.

These are the tools; the graded ``time_generate`` is written by students.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable

from .device import synchronize


class Timer:
    """Wall-clock timer for a block, with CUDA synchronisation when the device is CUDA.

    >>> with Timer("cpu") as t:
    ...     work()
    >>> t.elapsed_s

    ``time.perf_counter`` is monotonic and has the finest resolution Python
    offers; ``time.time`` can jump when the system clock is adjusted.
    """

    def __init__(self, device="cpu"):
        self.device = device
        self.elapsed_s: float | None = None
        self._start: float | None = None

    def __enter__(self) -> "Timer":
        synchronize(self.device)  # earlier queued work must not leak into our interval
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)  # our own queued work must finish inside the interval
        self.elapsed_s = time.perf_counter() - self._start


def summarize(values, unit: str = "") -> dict:
    """Median and spread of repeated measurements.

    Returns ``n``, ``median``, ``mean``, ``stdev`` (0 for one value), ``min``,
    ``max``, ``iqr`` (interquartile range) and ``unit``. Medians are reported
    because one slow run (another process, a page fault) skews a mean.
    """
    data = [float(v) for v in values]
    if not data:
        raise ValueError("summarize() needs at least one measurement, got none")
    if any(math.isnan(v) for v in data):
        raise ValueError(f"summarize() got NaN among {data}: a measurement failed")
    if len(data) >= 2:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    else:
        q1 = q3 = data[0]
    return {
        "n": len(data),
        "median": statistics.median(data),
        "mean": statistics.fmean(data),
        "stdev": statistics.stdev(data) if len(data) > 1 else 0.0,
        "min": min(data),
        "max": max(data),
        "iqr": q3 - q1,
        "unit": unit,
    }


TIMED_KEYS = ("total_latency_s", "tokens_per_sec", "avg_latency_per_token_ms")


def medians_with_iqr(runs, keys=TIMED_KEYS) -> dict:
    """One table row's numbers from repeated timings: for each key, the median over ``runs``
    (dicts that hold the key, such as time_generate's) as ``key`` and its interquartile range as
    ``key_iqr``. Example: ``row.update(medians_with_iqr(runs))``.
    """
    runs = list(runs)
    row = {}
    for key in keys:
        missing = [i for i, run in enumerate(runs) if key not in run]
        if missing:
            raise KeyError(f"medians_with_iqr: run(s) {missing} have no {key!r}; they hold {sorted(runs[missing[0]])}")
        stats = summarize([run[key] for run in runs])
        row[key], row[f"{key}_iqr"] = stats["median"], stats["iqr"]
    return row


def repeat(fn: Callable[[], object], repeats: int, warmup: int = 1, device="cpu") -> dict:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns ``summarize`` of the timed durations in seconds, plus the raw
    values under ``values_s``.
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if int(warmup) < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    for _ in range(int(warmup)):
        fn()
    values = []
    for _ in range(int(repeats)):
        with Timer(device) as timer:
            fn()
        values.append(timer.elapsed_s)
    stats = summarize(values, unit="s")
    stats["values_s"] = values
    return stats
