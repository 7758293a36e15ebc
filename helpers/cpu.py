"""What /proc/cpuinfo says about this machine's CPU (Linux); nothing elsewhere.

No torch here: the tools, benchmarks and notebooks all read the CPU through this one function.
"""
from __future__ import annotations


def cpuinfo() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo (``"model name"``, ``"flags"``...), i.e. the
    first CPU's; an empty dict where the file cannot be read."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, colon, value = line.partition(":")
                if colon:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags() -> set[str]:
    """CPU feature flags (``avx2``, ``avx512_vnni``...); an empty set when unknown."""
    return set(cpuinfo().get("flags", "").split())
