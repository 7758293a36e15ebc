"""Build nbgrader source notebooks from plain-text authoring files.

Notebooks are authored in ``authoring/<assignment>/`` (reviewable diffs, no JSON), one file per
part of the notebook, and built into ``source/<assignment>/<assignment>.ipynb``. The authoring
files live outside ``source/`` on purpose: nbgrader copies every extra file of
``source/<assignment>/`` into the student release, solutions included.

Part files: ``authoring/<assignment>/NN_<part>.py``, e.g. ``00_shared.py`` (the define blocks
several parts include), ``01_intro_setup.py``, ``02_a1_resolve_dtype.py``. The builder reads them
in the order of NN (then name) as one text, so a part file is a cut of the notebook's text: each
starts with a cell marker, and a cell never runs on into the next file. A ``.py`` file named
otherwise in the folder is an error, and so is an ``authoring/<name>.py`` file (the old one-file
form, which nothing would build). Errors name the part file and its line.

Cell markers, one per cell, each on its own line::

    # %% [markdown]                      teaching text; lines start with "# "
    # %% [code]                          ordinary editable code
    # %% [readonly id=setup]             locked code a student cannot change
    # %% [solution id=resolve_dtype]     autograded answer (### BEGIN/END SOLUTION inside)
    # %% [tests id=check_x points=2]     graded, locked test cell (may hold HIDDEN TESTS)

A tests cell starts with a one-line docstring ("Check that ..."). In a cell whose code is all
hidden, the built notebook has that line as a comment instead, so that the release's
placeholder prints nothing when it runs.

Shared blocks: code that several cells of one assignment carry word for word (the "trusted
tools" prelude of hidden tests, a test double's method) is written once, in a block, and pulled
into each cell that needs it by an include line::

    # %% [define name=trusted_prelude]   a named block, not a cell; in 00_shared.py, or in the
                                         part file of the one part that uses it
    import torch as _torch
    ...
    # %% [tests id=check_x points=2]
    ### BEGIN HIDDEN TESTS
    # include: trusted_prelude           replaced by the block's lines
    ...

An include line is ``# include: <name>`` alone on its line, in a code cell of any kind (not in
a define block). Indented, it indents every non-blank line of the block as much (a method
inside a class). The built notebook holds a full copy in each including cell: a hidden test
must not lean on an object the student's code could have replaced. Block names belong to the
assignment (all its part files); a name no block defines, a block defined twice, and a block no
cell includes are build errors.

Usage: ``python -m tools.notebook_builder`` (all assignments) or ``--check`` (fail if stale).
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


def _sections(parts: list[tuple[str, str]]) -> list[tuple[str, dict, str, str, int, list[str]]]:
    """The part files, in order, cut at their markers: (kind, attrs, where, file, first body line
    number, body lines). A section never runs on into the next file: each file starts with a marker."""
    sections = []
    for file, text in parts:
        in_file = False
        for number, line in enumerate(text.splitlines(), start=1):
            match = _MARKER.match(line)
            if match:
                where = f"{file}:{number}"
                kind = match["kind"]
                if kind not in _KINDS and kind != _DEFINE:
                    raise AuthoringError(f"{where}: unknown cell kind {kind!r}; accepted: "
                                         f"{', '.join(sorted(_KINDS))} (and {_DEFINE} name=... for a shared block)")
                sections.append((kind, _parse_attrs(match["attrs"], where), where, file, number + 1, []))
                in_file = True
            elif in_file:
                sections[-1][5].append(line)
            elif line.strip():
                raise AuthoringError(f"{file}:{number}: text before the first '# %% [...]' marker of the file")
    return sections


def _trimmed(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _blocks(sections) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The assignment's ``define`` blocks by name (from all its part files), and where each is defined."""
    blocks, defined_at = {}, {}
    for kind, attrs, where, file, first, body in sections:
        if kind != _DEFINE:
            continue
        block = attrs.get("name")
        if set(attrs) != {"name"} or not _NAME.fullmatch(block):
            raise AuthoringError(f"{where}: a define block needs name=<letters, digits, _ or -> and nothing else")
        if block in blocks:
            raise AuthoringError(f"{where}: block {block!r} is defined twice (first at {defined_at[block]})")
        for offset, line in enumerate(body):
            if _INCLUDE.match(line):
                raise AuthoringError(f"{file}:{first + offset}: a define block cannot include another block")
        blocks[block], defined_at[block] = _trimmed(body), where
    return blocks, defined_at


def _expand(body: list[str], first: int, file: str, cell: str, blocks: dict, used: set) -> list[str]:
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
            raise AuthoringError(f"{file}:{first + offset}: {cell} includes unknown block {block!r}; "
                                 f"blocks this assignment defines: {known}")
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
    """Turn one authoring text into a notebook (``name`` is the file errors name)."""
    return parse_parts([(name, text)])


def parse_parts(parts: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """Turn an assignment's part files, ``(name, text)`` in notebook order, into one notebook."""
    sections = _sections(parts)
    (blocks, defined_at), used, cells, cell_at = _blocks(sections), set(), [], []
    for kind, attrs, where, file, first, body in sections:
        if kind == _DEFINE:
            continue
        meta = _nbgrader_meta(kind, attrs, where)
        if kind != "markdown":
            cell_name = f"{kind} cell {attrs['id']!r}" if "id" in attrs else f"the {kind} cell at {where}"
            body = _expand(body, first, file, cell_name, blocks, used)
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
        cell_at.append(where)
    unused = [block for block in blocks if block not in used]
    if unused:
        raise AuthoringError("; ".join(f"{defined_at[block]}: block {block!r} is defined but included by no cell"
                                       for block in unused))

    first_at = {}
    for cell, where in zip(cells, cell_at):
        if "nbgrader" in cell.metadata:
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            if grade_id in first_at:
                raise AuthoringError(f"{where}: duplicate cell id {grade_id!r} (first at {first_at[grade_id]})")
            first_at[grade_id] = where
    # Ordinary cells get stable ids too, so rebuilding gives byte-identical files.
    for index, cell in enumerate(cells):
        if "nbgrader" not in cell.metadata:
            cell.id = f"cell-{index:03d}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = dict(_KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    return notebook


_PART_FILE = re.compile(r"(?P<place>\d+)_[A-Za-z0-9_\-]+\.py")


def _shown(path: Path) -> str:
    """A path as errors name it: relative to the repository where it lies inside it."""
    path = Path(path)
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def part_files(folder: Path) -> list[Path]:
    """An assignment's part files, ``<folder>/NN_<part>.py``, in notebook order (by NN, then name)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.py"))
    for path in files:
        if not _PART_FILE.fullmatch(path.name):
            raise AuthoringError(f"{_shown(path)}: a part file is named <place>_<part>.py, its place in the "
                                 "notebook first (digits, e.g. 07_a6_prefill_decode.py), so that the order "
                                 "the builder reads the files in is the notebook's")
    if not files:
        raise AuthoringError(f"{_shown(folder)}: an assignment folder with no part files (NN_<part>.py)")
    return sorted(files, key=lambda path: (int(_PART_FILE.fullmatch(path.name)["place"]), path.name))


def assignment_folders(authoring_dir: Path = AUTHORING_DIR) -> list[Path]:
    """The assignments of ``authoring_dir``: one folder each, ``authoring/<assignment>/``."""
    return sorted(p for p in Path(authoring_dir).iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _loose_files(authoring_dir: Path) -> list[str]:
    """Errors for ``authoring/<name>.py`` files, the old one-file form, which nothing would build."""
    return [f"{_shown(path)}: an assignment is a folder of part files, authoring/<assignment>/NN_<part>.py; "
            f"move this file's cells into {_shown(path.with_suffix(''))}/" for path in sorted(Path(authoring_dir).glob("*.py"))]


def target_for(authoring: Path, source_dir: Path = SOURCE_DIR) -> Path:
    """``source/<assignment>/<assignment>.ipynb`` for an assignment folder (or a one-file fixture)."""
    assignment = Path(authoring).stem
    return source_dir / assignment / f"{assignment}.ipynb"


def render(authoring: Path) -> str:
    """The notebook file's text built from an assignment folder, its part files read in order as one
    text; or from one file (the test fixtures are single files)."""
    authoring = Path(authoring)
    paths = part_files(authoring) if authoring.is_dir() else [authoring]
    notebook = parse_parts([(_shown(path), path.read_text(encoding="utf-8")) for path in paths])
    return nbformat.writes(notebook) + "\n"


def build_all(check: bool = False) -> list[Path]:
    """Build every assignment folder of authoring/; with ``check``, return the stale targets instead."""
    loose = _loose_files(AUTHORING_DIR)
    if loose:
        raise AuthoringError("; ".join(loose))
    stale = []
    for folder in assignment_folders():
        target = target_for(folder)
        text = render(folder)
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

    Paths relative to ``root`` (``source/<a>/<a>.ipynb``), with the reason where an assignment's
    part files do not build at all (and an entry for each ``authoring/<name>.py`` file, which
    nothing builds); empty when source/ is up to date or there is no authoring/.
    """
    root = Path(root)
    if not (root / "authoring").is_dir():
        return []
    stale = _loose_files(root / "authoring")
    for folder in assignment_folders(root / "authoring"):
        target = target_for(folder, root / "source")
        shown = target.relative_to(root).as_posix()
        try:
            text = render(folder)
        except AuthoringError as error:
            stale.append(f"{shown} (authoring/{folder.name}/ does not build: {error})")
            continue
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(shown)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a source notebook is out of date")
    args = parser.parse_args(argv)
    try:
        stale = build_all(check=args.check)
    except AuthoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in stale:
        print(("stale: " if args.check else "built: ") + str(path.relative_to(REPO_ROOT)))
    if args.check and stale:
        print("run: python -m tools.notebook_builder", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
