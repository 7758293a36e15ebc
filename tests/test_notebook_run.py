"""tools.notebook_run.TreeMemory counts what the processes it watches hold, children included."""
from __future__ import annotations

import subprocess
import sys
import time

from tools.notebook_run import TreeMemory

# A child that starts a grandchild; the grandchild holds 300 MB (touched, so resident) for a while.
_GRANDCHILD = "b = bytearray(300 * 10**6); import time; time.sleep(3)"
_CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_GRANDCHILD!r}])"


def test_tree_memory_sees_a_grandchilds_allocation_and_where_the_notebook_was():
    memory = TreeMemory(interval_s=0.05)
    with memory:
        memory.cell_started(None, 7)
        memory.printed({"content": {"text": "step one\nstep two: the big one\n"}})
        child = subprocess.Popen([sys.executable, "-c", _CHILD])
        child.wait(timeout=60)
        time.sleep(0.2)
    assert memory.samples > 10
    # The grandchild's 300 MB are in the sum: one process's own RSS (the child's) would miss them.
    assert memory.peak_bytes > 300 * 10**6, memory.peak_bytes
    assert memory.peak_cell == 7 and memory.by_cell[7] == memory.peak_bytes
    assert memory.peak_after == "step two: the big one"
