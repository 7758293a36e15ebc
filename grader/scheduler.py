"""Start the Dask scheduler that grading workers join (``grader/cluster.py``).

    .venv/bin/python -m grader.scheduler --certs certs/          # tls://0.0.0.0:8786, mutual TLS
    .venv/bin/python -m grader.scheduler --host 127.0.0.1 --port 8786 --no-dashboard    # this machine only

``--certs DIR`` (from ``python -m grader.certificates DIR``) makes it listen on TLS and accept
only peers with a certificate of the course's CA. Without it, it listens on plain TCP, which
whoever reaches the port can use to run code on the workers: allowed on loopback, and elsewhere
only with ``--insecure-tcp``.

``dask scheduler`` with the arguments given, run from the course's virtual environment (the
scheduler unpickles each task, so it must import the course's ``grader`` and ``tools``) and with
Dask's periodic bookkeeping slowed down (``grader.cluster.QUIET_DASK_ENV``): on a machine that
also grades, it would take CPU from the kernels. Any ``dask scheduler`` of the same Dask version
works; this one is the one to start on a machine that also runs workers.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from grader.certificates import CertificateError, dask_cli_args, is_loopback_address


def secure_arguments(argv: list[str]) -> list[str]:
    """``dask scheduler``'s arguments with ``--certs DIR`` turned into its TLS options, or a refusal
    (``SystemExit`` with the reason) for plain TCP beyond loopback without ``--insecure-tcp``."""
    argv = list(argv)
    certs, insecure = None, "--insecure-tcp" in argv
    argv = [a for a in argv if a != "--insecure-tcp"]
    for index, arg in enumerate(argv):
        if arg == "--certs" or arg.startswith("--certs="):
            certs = arg.split("=", 1)[1] if "=" in arg else (argv[index + 1] if index + 1 < len(argv) else "")
            del argv[index:index + (1 if "=" in arg else 2)]
            break
    if certs:
        return [*argv, "--protocol", "tls", *dask_cli_args(Path(certs), "scheduler")]
    host = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--host"), None) or \
        next((a.split("=", 1)[1] for a in argv if a.startswith("--host=")), "0.0.0.0")
    if not insecure and not is_loopback_address(f"tcp://{host}:0"):
        raise SystemExit(f"plain TCP on {host}: whoever reaches the port could run code on the workers. Give "
                         "--certs DIR (`python -m grader.certificates DIR` makes them), --host 127.0.0.1 for "
                         "this machine only, or --insecure-tcp on a network you trust")
    return argv


def main(argv=None) -> int:
    from grader.cluster import QUIET_DASK_ENV

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip(), "\n\nIts options are `dask scheduler`'s:", flush=True)
    try:
        argv = secure_arguments(argv)
    except (CertificateError, SystemExit) as error:
        print(f"[scheduler] REFUSING TO START: {error}", file=sys.stderr)
        return 2
    for name, value in QUIET_DASK_ENV.items():
        os.environ.setdefault(name, value)
    os.execv(sys.executable, [sys.executable, "-m", "distributed.cli.dask_scheduler", *argv])
    return 0     # not reached


if __name__ == "__main__":
    sys.exit(main())
