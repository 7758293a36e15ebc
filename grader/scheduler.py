"""Start the Dask scheduler that grading workers join (``grader/cluster.py``).

    .venv/bin/python -m grader.scheduler                        # tcp://0.0.0.0:8786
    .venv/bin/python -m grader.scheduler --host 127.0.0.1 --port 8786 --no-dashboard

``dask scheduler`` with the arguments given, run from the course's virtual environment (the
scheduler unpickles each task, so it must import the course's ``grader`` and ``tools``) and with
Dask's periodic bookkeeping slowed down (``grader.cluster.QUIET_DASK_ENV``): on a machine that
also grades, it would take CPU from the kernels. Any ``dask scheduler`` of the same Dask version
works; this one is the one to start on a machine that also runs workers.
"""
from __future__ import annotations

import os
import sys


def main(argv=None) -> int:
    from grader.cluster import QUIET_DASK_ENV

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip(), "\n\nIts options are `dask scheduler`'s:", flush=True)
    for name, value in QUIET_DASK_ENV.items():
        os.environ.setdefault(name, value)
    os.execv(sys.executable, [sys.executable, "-m", "distributed.cli.dask_scheduler", *argv])
    return 0     # not reached


if __name__ == "__main__":
    sys.exit(main())
