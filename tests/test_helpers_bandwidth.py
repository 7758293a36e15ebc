"""helpers.bandwidth: the measured memory bandwidth that bounds a decode step."""
from __future__ import annotations

import pytest
import torch

import helpers
from helpers import bandwidth


class _Clock:
    """A fake perf_counter: each timed run lasts ``seconds`` (two calls per run: start, end)."""

    def __init__(self, seconds):
        self.seconds, self.now, self.calls = list(seconds), 100.0, 0

    def __call__(self):
        self.calls += 1
        if self.calls % 2 == 0:
            self.now += self.seconds[(self.calls // 2 - 1) % len(self.seconds)]
        return self.now


def test_real_measurement_is_sane_and_restores_threads():
    before = torch.get_num_threads()
    result = helpers.measure_memory_bandwidth(size_mb=64, repeats=3, threads=1)
    assert torch.get_num_threads() == before, "the torch thread count must be restored"
    assert {"gbps", "iqr_gbps", "runs_gbps", "buffer_mb", "threads", "repeats", "method"} <= set(result)
    assert 0.5 <= result["gbps"] <= 2000, f"{result['gbps']} GB/s is not a memory bandwidth"
    assert len(result["runs_gbps"]) == 3 and result["buffer_mb"] == 64 and result["threads"] == 1
    assert result["iqr_gbps"] >= 0
    assert "torch.sum" in result["method"] and "64 MB" in result["method"] and "median of 3" in result["method"]


def test_fake_clock_gives_the_exact_bandwidth():
    # 10 MB = 10**7 bytes read in 2 ms -> 5 GB/s; runs of 1, 2 and 4 ms -> 10, 5, 2.5 GB/s.
    clock = _Clock([0.002, 0.001, 0.004])
    result = bandwidth.measure_memory_bandwidth(size_mb=10, repeats=3, clock=clock)
    assert clock.calls == 6, "one start and one end reading per timed run; the warm-up is not timed"
    assert result["runs_gbps"] == pytest.approx([5.0, 10.0, 2.5])
    assert result["gbps"] == pytest.approx(5.0), "the median run, in GB/s of 10**9 bytes"
    assert result["iqr_gbps"] == pytest.approx(7.5 - 3.75)


@pytest.mark.parametrize("kwargs, message", [
    (dict(size_mb=0), "size_mb must be a whole number >= 1"),
    (dict(size_mb=-5), "size_mb must be a whole number >= 1"),
    (dict(size_mb=2.5), "size_mb must be a whole number >= 1"),
    (dict(size_mb="64"), "size_mb must be a whole number >= 1"),
    (dict(size_mb=16, repeats=0), "repeats must be a whole number >= 1"),
    (dict(size_mb=16, repeats=True), "repeats must be a whole number >= 1"),
    (dict(size_mb=16, threads=0), "threads must be a whole number >= 1"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bandwidth.measure_memory_bandwidth(**kwargs)


def test_a_clock_that_does_not_advance_is_refused():
    with pytest.raises(RuntimeError, match="measured 0.0 s"):
        bandwidth.measure_memory_bandwidth(size_mb=1, repeats=1, clock=lambda: 1.0)


@pytest.mark.parametrize("cache_bytes, expected_mb", [
    (None, 256),                 # unknown: the floor
    (2 * 2**20, 256),            # 8 x 2 MiB = 17 MB: the floor
    (40 * 2**20, 336),           # 8 x 40 MiB = 335.5 MB, rounded up
    (480 * 2**20, 512),          # a VM reporting the host's L3: capped
])
def test_default_buffer_size(cache_bytes, expected_mb):
    assert bandwidth.default_buffer_mb(cache_bytes) == expected_mb


@pytest.mark.parametrize("text, expected", [("32768K", 32 * 2**20), ("480 MiB", 480 * 2**20), ("2 MB", 2 * 2**20),
                                            ("1048576", 2**20), ("nonsense", None)])
def test_cache_size_parsing(text, expected):
    assert bandwidth._size_to_bytes(text) == expected


def test_last_level_cache_is_positive_or_unknown():
    size = bandwidth.last_level_cache_bytes()
    assert size is None or size > 0
