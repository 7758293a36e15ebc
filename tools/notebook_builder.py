"""Build nbgrader source notebooks from plain-text authoring files.

Notebooks are authored in ``authoring/<assignment>.py`` (reviewable diffs, no
JSON) and built into ``source/<assignment>/<assignment>.ipynb``. The authoring
files live outside ``source/`` on purpose: nbgrader copies every extra file of
``source/<assignment>/`` into the student release, solutions included.

Cell markers, one per cell, each on its own line::

    # %% [markdown]                      teaching text; lines start with "# "
    # %% [code]                          ordinary editable code
    # %% [readonly id=setup]             locked code a student cannot change
    # %% [solution id=resolve_dtype]     autograded answer (### BEGIN/END SOLUTION inside)
    # %% [tests id=check_x points=2]     graded, locked test cell (may hold HIDDEN TESTS)

A tests cell starts with a one-line docstring ("Check that ..."). In a cell whose code is all
hidden, the built notebook has that line as a comment instead, so that the release's
placeholder prints nothing when it runs.

Shared blocks: code that several cells of one file carry word for word (the "trusted tools"
prelude of hidden tests, a test double's method) is written once, in a block, and pulled into
each cell that needs it by an include line::

    # %% [define name=trusted_prelude]   a named block, not a cell; by convention at the top
    import torch as _torch
    ...
    # %% [tests id=check_x points=2]
    ### BEGIN HIDDEN TESTS
    # include: trusted_prelude           replaced by the block's lines
    ...

An include line is ``# include: <name>`` alone on its line, in a code cell of any kind (not in
a define block). Indented, it indents every non-blank line of the block as much (a method
inside a class). The built notebook holds a full copy in each including cell: a hidden test
must not lean on an object the student's code could have replaced. A name no block of the file
defines, a block defined twice, and a block no cell includes are build errors.

Usage: ``python -m tools.notebook_builder`` (all) or ``--check`` (fail if stale).
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

from helpers.paths import REPO_ROOT
AUTHORING_DIR = REPO_ROOT / "authoring"
SOURCE_DIR = REPO_ROOT / "source"

_MARKER = re.compile(r"^# %% \[(?P<kind>\w+)(?P<attrs>[^\]]*)\]\s*$")
_KINDS = {"markdown", "code", "readonly", "solution", "tests"}
_DEFINE = "define"
_INCLUDE = re.compile(r"^(?P<indent>[ \t]*)# include: (?P<name>\S+)[ \t]*$")
_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


class AuthoringError(ValueError):
    """An authoring file that cannot become a valid nbgrader notebook."""


def _parse_attrs(text: str, where: str) -> dict:
    attrs = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep:
            raise AuthoringError(f"{where}: attribute {token!r} must look like key=value")
        attrs[key] = value
    return attrs


def _nbgrader_meta(kind: str, attrs: dict, where: str) -> dict | None:
    if kind in ("markdown", "code"):
        return None
    grade_id = attrs.get("id")
    if not grade_id or not re.fullmatch(r"[A-Za-z0-9_\-]+", grade_id):
        raise AuthoringError(f"{where}: a {kind} cell needs id=<letters, digits, _ or ->")
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
            "solution": False, "task": False}
    if kind == "readonly":
        meta["locked"] = True
    elif kind == "solution":
        meta["solution"] = True
    elif kind == "tests":
        try:
            points = float(attrs["points"])
        except (KeyError, ValueError):
            raise AuthoringError(f"{where}: a tests cell needs points=<number>") from None
        if points <= 0:
            raise AuthoringError(f"{where}: points must be positive, got {points}")
        meta.update(grade=True, locked=True, points=int(points) if points.is_integer() else points)
    return meta


_HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*$", re.S | re.M)


def _quiet_hidden_placeholder(source: str, where: str) -> str:
    """A tests cell whose only visible line is its docstring gets that line as a comment.

    The release keeps only what lies outside ``### BEGIN/END HIDDEN TESTS``; a bare docstring
    left alone there is an expression, so running the cell shows the string, and
    ``nbgrader validate`` warns that the output "cannot be converted to a float". A comment
    tells the student the same thing and outputs nothing.
    """
    if not _HIDDEN_BLOCK.search(source):
        return source
    try:
        visible = ast.parse(_HIDDEN_BLOCK.sub("", source))
    except SyntaxError as error:
        raise AuthoringError(f"{where}: the visible part of a tests cell is not valid Python: {error}") from None
    last = visible.body[-1] if visible.body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Constant)
            and isinstance(last.value.value, str)):
        return source
    if len(visible.body) > 1 or last.lineno != 1:
        raise AuthoringError(f"{where}: the visible part of a tests cell ends with a bare string, which the "
                             "release would print; put it first, as the cell's docstring, or make it a comment")
    lines = source.split("\n")
    doc_lines = last.value.value.strip().splitlines()
    comment = [f"# {line.strip()}".rstrip() for line in doc_lines]
    return "\n".join(comment + lines[last.end_lineno:])


def _sections(text: str, name: str) -> list[tuple[str, dict, str, int, list[str]]]:
    """The file cut at its markers: (kind, attrs, where, first body line number, body lines)."""
    sections, head = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _MARKER.match(line)
        if match:
            where = f"{name}:{number}"
            kind = match["kind"]
            if kind not in _KINDS and kind != _DEFINE:
                raise AuthoringError(f"{where}: unknown cell kind {kind!r}; accepted: "
                                     f"{', '.join(sorted(_KINDS))} (and {_DEFINE} name=... for a shared block)")
            sections.append((kind, _parse_attrs(match["attrs"], where), where, number + 1, []))
        elif sections:
            sections[-1][4].append(line)
        else:
            head.append(line)
    if any(line.strip() for line in head):
        raise AuthoringError(f"{name}: text before the first '# %% [...]' marker")
    return sections


def _trimmed(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _blocks(sections, name: str) -> dict[str, list[str]]:
    """The file's ``define`` blocks by name."""
    blocks = {}
    for kind, attrs, where, first, body in sections:
        if kind != _DEFINE:
            continue
        block = attrs.get("name")
        if set(attrs) != {"name"} or not _NAME.fullmatch(block):
            raise AuthoringError(f"{where}: a define block needs name=<letters, digits, _ or -> and nothing else")
        if block in blocks:
            raise AuthoringError(f"{where}: block {block!r} is defined twice in {name}")
        for offset, line in enumerate(body):
            if _INCLUDE.match(line):
                raise AuthoringError(f"{name}:{first + offset}: a define block cannot include another block")
        blocks[block] = _trimmed(body)
    return blocks


def _expand(body: list[str], first: int, name: str, cell: str, blocks: dict, used: set) -> list[str]:
    """A cell's lines with each ``# include: <name>`` line replaced by that block, indented alike."""
    lines = []
    for offset, line in enumerate(body):
        match = _INCLUDE.match(line)
        if not match:
            lines.append(line)
            continue
        block = match["name"]
        if block not in blocks:
            known = ", ".join(sorted(blocks)) or "none (add a '# %% [define name=...]' block)"
            raise AuthoringError(f"{name}:{first + offset}: {cell} includes unknown block {block!r}; "
                                 f"blocks defined in this file: {known}")
        used.add(block)
        indent = match["indent"]
        lines.extend(indent + text if text.strip() else text for text in blocks[block])
    return lines


# Names the IPython kernel keeps in the notebook's namespace and reads back: a cell that binds one
# breaks the kernel's own bookkeeping (binding `_oh`, the output history, makes every later
# displayed value fail with "object of type 'module' has no len()"). The ones it rewrites on every
# run (`_`, `_i`, `_3`, ...) do no harm.
_IPYTHON_NAMES = re.compile(r"^(_oh|_ih|_dh|In|Out|get_ipython)$")


def cell_symbols(source: str, where: str = "<cell>"):
    """Python's symbol table of a code cell (IPython magics and shell escapes blanked out, they are
    not Python), or None when the cell is not valid Python."""
    import symtable

    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return symtable.symtable("\n".join(lines), where, "exec")
    except SyntaxError:
        return None


def _refuse_ipython_names(source: str, where: str) -> None:
    table = cell_symbols(source, where)
    if table is None:
        return  # reported where the cell is run; not this check's business
    bound = sorted(s.get_name() for s in table.get_symbols()
                   if (s.is_assigned() or s.is_imported()) and _IPYTHON_NAMES.match(s.get_name()))
    if bound:
        raise AuthoringError(f"{where}: the cell binds {bound}, which the IPython kernel keeps for itself "
                             "(output and input history); use another name")


def parse(text: str, name: str = "<authoring>") -> nbformat.NotebookNode:
    """Turn an authoring file's text into a notebook."""
    sections = _sections(text, name)
    blocks, used, cells = _blocks(sections, name), set(), []
    for kind, attrs, where, first, body in sections:
        if kind == _DEFINE:
            continue
        meta = _nbgrader_meta(kind, attrs, where)
        if kind != "markdown":
            cell_name = f"{kind} cell {attrs['id']!r}" if "id" in attrs else f"the {kind} cell at {where}"
            body = _expand(body, first, name, cell_name, blocks, used)
        lines = _trimmed(body)
        if kind == "markdown":
            bad = [l for l in lines if l and not (l == "#" or l.startswith("# "))]
            if bad:
                raise AuthoringError(f"{where}: markdown lines must start with '# ', got {bad[0]!r}")
            cell = nbformat.v4.new_markdown_cell("\n".join(l[2:] for l in lines))
        else:
            source = "\n".join(lines)
            if kind == "solution" and "### BEGIN SOLUTION" not in source:
                raise AuthoringError(f"{where}: a solution cell needs a ### BEGIN SOLUTION region")
            if kind == "tests":
                source = _quiet_hidden_placeholder(source, where)
            _refuse_ipython_names(source, where)
            cell = nbformat.v4.new_code_cell(source)
        if meta is not None:
            cell.metadata["nbgrader"] = meta
            cell.id = meta["grade_id"]
        cells.append(cell)
    unused = sorted(set(blocks) - used)
    if unused:
        raise AuthoringError(f"{name}: block(s) {unused} defined but included by no cell")

    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise AuthoringError(f"{name}: duplicate cell ids {duplicates}")
    # Ordinary cells get stable ids too, so rebuilding gives byte-identical files.
    for index, cell in enumerate(cells):
        if "nbgrader" not in cell.metadata:
            cell.id = f"cell-{index:03d}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = dict(_KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    return notebook


def target_for(authoring_file: Path, source_dir: Path = SOURCE_DIR) -> Path:
    assignment = authoring_file.stem
    return source_dir / assignment / f"{assignment}.ipynb"


def render(authoring_file: Path) -> str:
    notebook = parse(authoring_file.read_text(encoding="utf-8"), name=str(authoring_file))
    return nbformat.writes(notebook) + "\n"


def build_all(check: bool = False) -> list[Path]:
    """Build every authoring file; with ``check``, return the stale targets instead."""
    stale = []
    for authoring_file in sorted(AUTHORING_DIR.glob("*.py")):
        target = target_for(authoring_file)
        text = render(authoring_file)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            stale.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    return stale


def source_assignments(course_root: Path) -> list[str]:
    """The assignments of ``course_root/source/``: each folder that holds a notebook."""
    source = Path(course_root) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def stale_notebooks(root: Path) -> list[str]:
    """The notebooks of ``root/source/`` that ``root/authoring/`` would build differently.

    Paths relative to ``root`` (``source/<a>/<a>.ipynb``), with the reason where the authoring
    file does not build at all; empty when source/ is up to date or there is no authoring/.
    """
    root = Path(root)
    stale = []
    for authoring_file in sorted((root / "authoring").glob("*.py")):
        target = target_for(authoring_file, root / "source")
        shown = target.relative_to(root).as_posix()
        try:
            text = render(authoring_file)
        except AuthoringError as error:
            stale.append(f"{shown} (authoring/{authoring_file.name} does not build: {error})")
            continue
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(shown)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a source notebook is out of date")
    args = parser.parse_args(argv)
    stale = build_all(check=args.check)
    for path in stale:
        print(("stale: " if args.check else "built: ") + str(path.relative_to(REPO_ROOT)))
    if args.check and stale:
        print("run: python -m tools.notebook_builder", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
