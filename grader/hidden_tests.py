"""What a student may see of a graded notebook: results and messages, never hidden-test code.

nbgrader's ``ClearHiddenTests`` empties the hidden blocks of the test cells' *source*, but
their code still reaches feedback through the outputs: a failing test's traceback prints
the lines around the failing one (nbgrader issue #917), and a student's cell can print what
the kernel kept of the tests that ran before it (IPython's input history, an event hook).
Here, as otter-grader and Gradescope do, a test cell shows its name, its points and the
message written for the student, plus the traceback frames of the student's own code.

Three layers, each enough for plain text on its own:

1. ``student_view`` rebuilds every test cell's outputs: frames inside test cells become one
   line naming the test; the student's frames, library frames and the message stay.
2. It then removes, from every output of every cell, each line that contains a line of
   hidden-test code (``secret_lines``), and says where it did so.
3. ``leaked_lines`` reads the finished feedback file; the grader withholds a file in which
   any hidden line is still found.

``leaked_lines`` also undoes the encodings a submission could use to carry the tests past line
matching (reversed, ROT13, base64, hex, compressed first). A cipher with a key of its own
cannot be read back; the tamper review and the runtime watch flag the means to reach the
tests (``In``, ``_ih``, ``get_ipython``, event hooks) for a person to read
(course/grading_security.md).
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

# Shorter stripped lines ("else:", "return out") are too common in any code to be a secret.
MIN_SECRET_CHARS = 12
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
REMOVED = "[a line of hidden-test code was removed here]"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TAGS = re.compile(r"<[^>]*>")
# The header of an IPython traceback frame that lies in a notebook cell.
_CELL_FRAME = re.compile(r"^\s*(?:Cell In\s*\[(\d+)\]|Input In \[(\d+)\])")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    meta = _meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def secret_lines(source_notebook, *public_notebooks) -> set[str]:
    """Stripped lines of the hidden-test blocks of ``source_notebook`` that are secrets.

    A line that also stands in a ``public_notebooks`` code cell (the release, the student's
    own submission) is not a secret, and neither is one shorter than ``MIN_SECRET_CHARS``.
    """
    hidden: set[str] = set()
    for cell in source_notebook.cells:
        if cell.cell_type != "code" or not is_test_cell(cell):
            continue
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped == BEGIN:
                inside = True
            elif stripped == END:
                inside = False
            elif inside and len(stripped) >= MIN_SECRET_CHARS:
                hidden.add(stripped)
    public: set[str] = set()
    for notebook in public_notebooks:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                public |= {line.strip() for line in cell.source.splitlines()}
    return hidden - public


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _has_secret(text: str, secrets: set[str]) -> bool:
    return any(secret in text for secret in secrets)


def redact(text: str, secrets: set[str]) -> tuple[str, int]:
    """``text`` with every line that holds a secret replaced by ``REMOVED``; and how many."""
    if not secrets or not text:
        return text, 0
    kept, removed = [], 0
    for line in text.split("\n"):
        if _has_secret(_plain(line), secrets):
            kept.append(REMOVED)
            removed += 1
        else:
            kept.append(line)
    return "\n".join(kept), removed


def _test_frames(traceback: list[str], test_counts: dict[int, str]) -> list[str]:
    """The traceback with every frame inside a test cell replaced by one line naming it."""
    shown = []
    for frame in traceback:
        match = _CELL_FRAME.match(_plain(frame))
        count = int(match.group(1) or match.group(2)) if match else None
        if count in test_counts:
            line = f"(inside the test {test_counts[count]}: its code is not shown)"
            if not shown or shown[-1] != line:
                shown.append(line)
        else:
            shown.append(frame)
    return shown


def _text_of(output) -> str:
    """Every text an output carries, for the checks (tracebacks and rich data included)."""
    parts = [output.get("text", ""), output.get("ename", ""), output.get("evalue", "")]
    parts += output.get("traceback", [])
    for mime, value in (output.get("data") or {}).items():
        if mime.startswith("text/") or mime in ("application/json", "image/svg+xml"):
            parts.append(value if isinstance(value, str) else str(value))
    return _plain("\n".join(str(p) for p in parts))


def _redact_output(output, secrets: set[str]) -> int:
    """Redact ``output`` in place; the number of lines (or rich entries) removed."""
    removed = 0
    if "text" in output:
        output["text"], n = redact(output["text"], secrets)
        removed += n
    if "evalue" in output:
        output["evalue"], n = redact(output["evalue"], secrets)
        removed += n
    if "traceback" in output:
        frames = []
        for frame in output["traceback"]:
            frame, n = redact(frame, secrets)
            frames.append(frame)
            removed += n
        output["traceback"] = frames
    data = output.get("data") or {}
    for mime in list(data):
        value = data[mime]
        if mime == "text/plain":
            data[mime], n = redact(value if isinstance(value, str) else "".join(value), secrets)
            removed += n
        elif (mime.startswith("text/") or mime in ("application/json", "image/svg+xml")) and \
                _has_secret(html.unescape(_TAGS.sub("\n", str(value))), secrets):
            del data[mime]            # rich text cannot be cut line by line: drop this form of it
            removed += 1
    return removed


def cell_label(cell, index: int) -> str:
    return _meta(cell).get("grade_id") or f"cell {index + 1}"


def student_view(notebook, secrets: set[str]) -> list[str]:
    """Make ``notebook``'s outputs fit for a student, in place; notes on what was removed."""
    test_counts = {cell.get("execution_count"): cell_label(cell, i) for i, cell in enumerate(notebook.cells)
                   if cell.cell_type == "code" and is_test_cell(cell) and cell.get("execution_count")}
    notes = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        removed = 0
        for output in cell.get("outputs", []):
            if "traceback" in output:
                output["traceback"] = _test_frames(output.get("traceback", []), test_counts)
            removed += _redact_output(output, secrets)
        if removed:
            notes.append(f"hidden-test code removed from the output of {cell_label(cell, index)} "
                         f"({removed} line{'s' if removed != 1 else ''})")
    return notes


def failure_message(cell) -> str:
    """What a test cell's outputs tell the student about why it lost points ('' if nothing)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            value = str(output.get("evalue", "")).strip()
            name = output.get("ename", "Error")
            return f"{name}: {value}" if value else name
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            first = next((line for line in output.get("text", "").splitlines() if line.strip()), "")
            return f"the cell wrote to stderr, which fails a test: {first}"
    return ""


# Runs of characters that could be base64 (standard or URL-safe) or hex of a hidden line.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){8,}")
# Whitespace inside a base64 block wrapped over lines (base64.encodebytes wraps at 76).
_WRAPPED = re.compile(r"(?<=[A-Za-z0-9+/=_-])[ \t]*\r?\n[ \t]*(?=[A-Za-z0-9+/=_-])")


def _decoded(blob: bytes) -> list[str]:
    """``blob`` as text, and its zlib/gzip inflation where it is one (compressed before encoding)."""
    import zlib

    texts = [blob.decode("utf-8", "ignore")]
    for wbits in (15, 31, -15):
        try:
            texts.append(zlib.decompress(blob, wbits).decode("utf-8", "ignore"))
            break
        except Exception:
            continue
    return texts


def readings(text: str) -> list[str]:
    """``text`` and what it says once undone from the encodings a submission could use to carry
    hidden-test code past line matching: reversed, ROT13, base64 (standard, URL-safe, wrapped
    over lines), hex, each possibly zlib- or gzip-compressed first."""
    import base64
    import binascii
    import codecs

    found = [text, text[::-1], codecs.decode(text, "rot13")]
    for run in set(_BASE64_RUN.findall(text)) | set(_BASE64_RUN.findall(_WRAPPED.sub("", text))):
        padded = run.rstrip("=") + "=" * (-len(run.rstrip("=")) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                found += _decoded(decode(padded))
            except (binascii.Error, ValueError):
                continue
    for run in set(_HEX_RUN.findall(text)):
        found += _decoded(bytes.fromhex(run))
    return found


def leaked_lines(text: str, secrets: set[str]) -> list[str]:
    """The secrets found in ``text`` (a feedback file: HTML tags and entities are undone), plainly
    or under one of the encodings ``readings`` undoes."""
    if not secrets:
        return []
    plain = _plain(html.unescape(_TAGS.sub("\n", text)))
    candidates = readings(plain) + [_plain(text)]
    return sorted(s for s in secrets if any(s in candidate for candidate in candidates))


def notebook_secrets(course_root: Path, assignment: str, notebook_name: str, submitted=None) -> set[str]:
    """``secret_lines`` of one course notebook, its release and (if given) the student's copy."""
    import nbformat

    source = nbformat.read(Path(course_root) / "source" / assignment / f"{notebook_name}.ipynb", as_version=4)
    public = []
    release = Path(course_root) / "release" / assignment / f"{notebook_name}.ipynb"
    if release.is_file():
        public.append(nbformat.read(release, as_version=4))
    if submitted is not None:
        # The student's own test cells are copies of the release's (or tampered): not theirs to
        # reveal, so only their answer and free cells count as public.
        public.append(_without_test_cells(submitted))
    return secret_lines(source, *public)


def _without_test_cells(notebook):
    import nbformat

    copy = nbformat.from_dict(notebook)
    copy.cells = [c for c in copy.cells if not is_test_cell(c)]
    return copy


class HideTestCode(NbGraderPreprocessor):   # nbgrader's base: enabled by default
    """Feedback preprocessor (after ``ClearHiddenTests``): the notebook as ``student_view`` shows it."""

    def preprocess(self, nb, resources):
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        info = resources.get("nbgrader", {})
        root = Path(CourseDirectory(config=self.config).root)
        submitted = root / "submitted" / info.get("student", "") / info.get("assignment", "") / \
            f"{info.get('notebook', '')}.ipynb"
        student_copy = nbformat.read(submitted, as_version=4) if submitted.is_file() else None
        secrets = notebook_secrets(root, info["assignment"], info["notebook"], student_copy)
        student_view(nb, secrets)
        return nb, resources
