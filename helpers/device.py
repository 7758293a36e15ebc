"""Which device to run on, and what it can do."""
from __future__ import annotations

import torch


def pick_device(prefer: str | None = None) -> str:
    """Return ``"cuda"`` when a GPU is usable, else ``"cpu"``.

    ``prefer`` forces a choice ("cpu" or "cuda"); asking for CUDA where there
    is none raises instead of silently measuring the CPU.
    """
    if prefer is not None:
        choice = str(prefer).strip().lower()
        if choice not in ("cpu", "cuda"):
            raise ValueError(f"device {prefer!r} is not supported; accepted values: 'cpu', 'cuda' (or None to choose)")
        if choice == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False; use 'cpu'")
        return choice
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_type(device) -> str:
    """``"cuda"`` for ``"cuda"``, ``"cuda:1"`` or ``torch.device("cuda", 1)``; likewise for other kinds."""
    return torch.device(device).type


def synchronize(device) -> None:
    """Wait for queued GPU work on ``device``; a no-op elsewhere.

    GPU kernels run asynchronously, so a timer read without this measures only
    how long it took to *queue* the work.
    """
    if device_type(device) == "cuda":
        torch.cuda.synchronize(device)


def describe_device(device) -> str:
    """A short human description, e.g. ``cpu (2 threads)`` or the GPU name."""
    if device_type(device) == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
