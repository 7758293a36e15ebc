"""A hostile probe for the grading doors: one extra cell in an otherwise complete submission.

It prints one line, ``PROBE {json}``: the user it runs as, and what came of reading the
gradebook, ``source/`` (solutions and hidden tests), another student's submission, of
opening a connection to the grader's machine, and whether a file the student handed in beside
the notebook (``EXTRA_FILE``) reached the graded folder. Every door must show the same line: the
sandbox's user, and nothing read.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

MARKER = "PROBE "
# A file handed in beside the notebook: every door must leave it out of the graded folder.
EXTRA_FILE = "probe_extra.py"


def probe_source(course_root: Path, assignment: str, other_student: str, port: int) -> str:
    targets = {
        "gradebook": str(course_root / "gradebook.db"),
        "source": str(course_root / "source" / assignment / f"{assignment}.ipynb"),
        "other_submission": str(course_root / "submitted" / other_student / assignment / f"{assignment}.ipynb"),
        "relative_gradebook": "../../../gradebook.db",
    }
    return f'''# A student's extra cell: what can I reach from here?
import json as _json, os as _os, socket as _socket
_seen = {{"uid": _os.getuid(), "gid": _os.getgid()}}
for _name, _path in {targets!r}.items():
    try:
        with open(_path, "rb") as _f:
            _seen[_name] = "read %d bytes" % len(_f.read(64))
    except Exception as _error:
        _seen[_name] = type(_error).__name__
_seen["extra_file"] = "present" if _os.path.exists({EXTRA_FILE!r}) else "absent"
try:
    _socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    _seen["network"] = "connected"
except Exception as _error:
    _seen["network"] = type(_error).__name__
print({MARKER!r} + _json.dumps(_seen, sort_keys=True))
'''


def with_probe(notebook, source: str):
    """A copy of ``notebook`` with the probe as a new, ungraded code cell at the end."""
    copy = nbformat.reads(nbformat.writes(notebook), as_version=4)
    copy.cells.append(nbformat.v4.new_code_cell(source))
    return copy


def probe_output(notebook) -> dict | None:
    """What the probe printed in a graded notebook (None if it did not run)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            for line in text.splitlines():
                if line.startswith(MARKER):
                    return json.loads(line[len(MARKER):])
    return None
