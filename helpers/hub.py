"""Make hub ids fail fast when no network answers.

Without a network, ``from_pretrained("org/name")`` waits for connection
time-outs before failing. With ``HF_HUB_OFFLINE=1`` it fails at once (or loads
from the local cache). ``ensure_fast_offline()`` probes the hub once, for at
most ``timeout_s``, and switches offline mode on when it does not answer; an
explicit ``HF_HUB_OFFLINE`` set by the user is left alone.
"""
from __future__ import annotations

import os
import socket
import sys
import threading

HUB_HOST = "huggingface.co"
_state: dict[str, object] = {}


def hub_reachable(timeout_s: float = 2.0, host: str = HUB_HOST, port: int = 443) -> bool:
    """True if a TCP connection to the hub opens within ``timeout_s`` (DNS included)."""
    result = {"ok": False}

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result["ok"] = True
        except OSError:
            pass

    # getaddrinfo ignores socket time-outs, so the whole probe runs in a thread we can abandon.
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(result["ok"])


def _set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    # huggingface_hub reads the variable when it is imported; update it if already imported.
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def ensure_fast_offline(timeout_s: float = 2.0) -> bool:
    """Switch to offline mode if the hub does not answer. Returns True when offline."""
    if "offline" in _state:
        return bool(_state["offline"])
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        _state["offline"] = True
        return True
    offline = not hub_reachable(timeout_s)
    if offline:
        _set_offline()
    _state["offline"] = offline
    return offline


HUB_LIBRARIES = ("huggingface_hub", "transformers", "optimum")


class _ProbeBeforeHubImport:
    """A ``sys.meta_path`` finder that finds nothing: it runs the probe the first time a hub
    library is about to be imported (it stays in the list, idle, so that the list importlib is
    walking does not change under it)."""

    def find_spec(self, fullname, path=None, target=None):
        if "offline" not in _state and fullname.partition(".")[0] in HUB_LIBRARIES:
            ensure_fast_offline()
        return None


def probe_before_hub_imports() -> None:
    """Have ``ensure_fast_offline()`` run before the first hub library is imported: at once when
    one already is, else just before it is (so that importing helpers alone probes nothing)."""
    if "offline" in _state:
        return
    if any(name in sys.modules for name in HUB_LIBRARIES):
        ensure_fast_offline()
    elif not any(isinstance(finder, _ProbeBeforeHubImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ProbeBeforeHubImport())
