"""course/*.md and README.md: code snippets run against the current API, outputs match, links resolve.

A ```python block followed directly by a ```text block must print exactly
that text. Every other ```python block must run without error (blocks in
one document share a namespace, in order, as a reader would run them).
A block whose first line is ``# not run`` is skipped (shell-like or
illustrative fragments).
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO_ROOT / "course").glob("*.md")) + [REPO_ROOT / "README.md"]
BLOCK = re.compile(r"```python\n(?P<code>.*?)```(?:\n\n```text\n(?P<out>.*?)```)?", re.S)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _ids(paths):
    return [p.relative_to(REPO_ROOT).as_posix() for p in paths]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_code_blocks_run_and_print_what_the_document_shows(doc, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    namespace: dict = {"__name__": "__doc_snippet__"}
    for number, match in enumerate(BLOCK.finditer(doc.read_text()), start=1):
        code, expected = match["code"], match["out"]
        if code.startswith("# not run"):
            continue
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, f"{doc.name}: block {number}", "exec"), namespace)
        if expected is not None:
            assert buffer.getvalue() == expected, f"{doc.name} block {number} printed something else"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_local_links_resolve(doc):
    missing = []
    for match in LINK.finditer(doc.read_text()):
        target = match["target"].split("#")[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue
        if not (doc.parent / target).exists():
            missing.append(target)
    assert not missing, f"{doc.name} links to missing files: {missing}"
