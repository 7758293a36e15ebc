"""The machine's memory bandwidth, measured: the ceiling on how fast a decode step can read its weights.

One decode step of a language model reads every weight once (plus the KV cache), and on a CPU
(or a GPU at batch 1) it does little arithmetic per byte, so the step cannot take less than
``bytes read / memory bandwidth``. ``measure_memory_bandwidth`` measures that bandwidth the way
decode uses memory: a read-dominated kernel (``torch.sum`` of a float32 buffer, which reads each
element once and writes one number) over a buffer well past the last-level cache, timed with
``time.perf_counter`` after one untimed warm-up, repeated, median reported.

GB means 10**9 bytes here, as in every figure of the course (not GiB, 2**30).

Why the buffer size is capped: the default buffer is 8 times the last-level cache the CPU
reports, at least 256 MB and at most 512 MB. Virtual machines often report the host's whole L3
(480 MiB on the course's build machine, a 2-core VM), of which one VM's cores get a share. There
(2026-12-02, 2 threads, median of 7, the machine shared with other jobs) a 1024 MB buffer never
measured more than a 256 MB one: 5.7 against 5.9 GB/s in a busy moment, 8.7 against 10.8 GB/s in
a quieter one, and allocating it took 0.5 to 4.5 s. So the larger buffer bought only time. On a
busy machine the figure is low and noisy: measure when it is quiet. A model that fits (partly) in
such a cache can decode faster than this bound (more than 100% of it).
"""
from __future__ import annotations

import glob
import os
import re
import statistics
import subprocess
import time

MIN_BUFFER_MB = 256
MAX_BUFFER_MB = 512
CACHE_MULTIPLE = 8
_MB = 10**6


def _size_to_bytes(text: str) -> int | None:
    """'32768K', '480 MiB', '2 MB', '1048576' -> bytes (binary units, as /sys and lscpu mean them)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?)(?:i?B)?\s*", text.strip(), re.I)
    if not match:
        return None
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match[2].upper()]
    return int(float(match[1]) * scale)


def last_level_cache_bytes() -> int | None:
    """Size of the largest cache of CPU 0, from /sys (Linux) or lscpu; None when neither says."""
    best = None
    for folder in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(folder, "size"), encoding="ascii") as handle:
                size = _size_to_bytes(handle.read())
        except OSError:
            continue
        if size and (best is None or size > best):
            best = size
    if best:
        return best
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if re.fullmatch(r"\s*L[234] cache\s*", key):
            size = _size_to_bytes(re.sub(r"\(.*\)", "", value))
            if size and (best is None or size > best):
                best = size
    return best


def default_buffer_mb(cache_bytes: int | None = None) -> int:
    """8 x the last-level cache in MB (10**6 bytes), clamped to [256, 512]; 256 when the cache is unknown."""
    if cache_bytes is None:
        return MIN_BUFFER_MB
    wanted = -(-CACHE_MULTIPLE * int(cache_bytes) // _MB)
    return max(MIN_BUFFER_MB, min(MAX_BUFFER_MB, wanted))


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or int(value) < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def measure_memory_bandwidth(size_mb=None, repeats: int = 7, threads: int | None = None, *,
                             clock=time.perf_counter) -> dict:
    """Median read bandwidth of main memory in GB/s (10**9 bytes per second).

    Args:
        size_mb: buffer size in MB (10**6 bytes), at least 1; None: 8 x the last-level cache,
            clamped to [256, 512] MB (``default_buffer_mb``).
        repeats: timed runs (at least 1); the median and interquartile range are reported.
        threads: torch threads during the measurement (restored afterwards); None: torch's current
            setting, which is what the model's decode uses.
        clock: the timer (``time.perf_counter``); replaceable for tests.

    Returns a dict: ``gbps`` (median), ``iqr_gbps``, ``runs_gbps`` (every run), ``buffer_mb``,
    ``threads``, ``repeats``, ``method`` (one printable line saying how it was measured).
    """
    import torch

    repeats = _positive_int(repeats, "repeats")
    cache = last_level_cache_bytes()
    if size_mb is None:
        size_mb = default_buffer_mb(cache)
    size_mb = _positive_int(size_mb, "size_mb")
    if threads is not None:
        threads = _positive_int(threads, "threads")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        used_threads = torch.get_num_threads()
        elements = size_mb * _MB // 4
        buffer = torch.ones(elements, dtype=torch.float32)  # written once, so every page is really there
        bytes_read = elements * 4
        runs = []
        with torch.inference_mode():
            torch.sum(buffer)  # warm-up, untimed
            for _ in range(repeats):
                start = clock()
                torch.sum(buffer)
                seconds = clock() - start
                if not seconds > 0:
                    raise RuntimeError(f"the clock measured {seconds!r} s for a {size_mb} MB read")
                runs.append(bytes_read / seconds / 1e9)
        del buffer
    finally:
        torch.set_num_threads(previous)
    ordered = sorted(runs)
    if len(ordered) >= 2:
        quartiles = statistics.quantiles(ordered, n=4, method="inclusive")
        iqr = quartiles[2] - quartiles[0]
    else:
        iqr = 0.0
    cache_text = f"last-level cache {cache / 2**20:.0f} MiB" if cache else "last-level cache unknown"
    method = (f"torch.sum over a {size_mb} MB float32 buffer ({cache_text}), {used_threads} thread(s), "
              f"1 untimed warm-up, median of {repeats} runs timed with time.perf_counter; "
              f"bytes read / seconds, GB = 10**9 bytes")
    return {"gbps": statistics.median(ordered), "iqr_gbps": iqr, "runs_gbps": runs, "buffer_mb": size_mb,
            "threads": used_threads, "repeats": repeats, "method": method}
