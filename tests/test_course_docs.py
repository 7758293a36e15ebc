"""course/*.md, the student documents in source/<exercise>/ and README.md: code snippets run
against the current API, outputs match, links resolve (a student document's links from the
folder a student fetches).

A ```python block followed directly by a ```text block must print exactly
that text. Every other ```python block must run without error (blocks in
one document share a namespace, in order, as a reader would run them).
A block whose first line is ``# not run`` is skipped (shell-like or
illustrative fragments). A block whose first line is
``# excerpt: <exercise> <cell id>`` quotes a source notebook cell: it is not
run, but each of its lines must still be a line of that cell.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from helpers.paths import REPO_ROOT
from tools.refresh_course_outputs import course_documents

DOCS = course_documents() + [REPO_ROOT / "README.md"]
SHIPPED = sorted((REPO_ROOT / "release").glob("*/*.md"))
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
        if code.lstrip().startswith(("# not run", "# excerpt:")):
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


@pytest.mark.parametrize("doc", SHIPPED, ids=_ids(SHIPPED))
def test_student_documents_link_only_within_what_a_student_fetches(doc):
    """A release folder is what a student fetches: a local link must land inside it."""
    folder = doc.parent.resolve()
    outside = []
    for match in LINK.finditer(doc.read_text()):
        target = match["target"].split("#")[0]
        if not target or re.match(r"^[a-z]+:", target):
            continue
        path = (doc.parent / target).resolve()
        if not path.exists() or folder not in (path, *path.parents):
            outside.append(target)
    assert not outside, f"{doc.relative_to(REPO_ROOT)} links outside its assignment folder: {outside}"


def test_every_release_ships_its_walkthrough_and_the_primer():
    for folder in sorted(p for p in (REPO_ROOT / "release").iterdir() if p.is_dir()):
        assert {"walkthrough.md", "primer.md"} <= {p.name for p in folder.glob("*.md")}, folder.name


# --------------------------------------------------------------------------
# Numbers and figures from the recorded run (tools/refresh_course_outputs.py)
# --------------------------------------------------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402

from tools import refresh_course_outputs as refresh  # noqa: E402

OUTPUTS = REPO_ROOT / "course" / "outputs"
FIGURES = REPO_ROOT / "course" / "figures"
RECORDS = {path.stem: json.loads(path.read_text()) for path in sorted(OUTPUTS.glob("*.json"))}
WALKTHROUGHS = sorted((REPO_ROOT / "course").glob("*_walkthrough.md"))
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<target>[^)\s]+)\)")
SECTION = re.compile(r"^(#{2,4}) (.*)$", re.M)


def _mismatches(text: str) -> list[str]:
    return [f"{what}: the document shows {shown!r}, the recorded run gives {expected!r}"
            for what, shown, expected in refresh.expected_markers(text, RECORDS) if shown != expected]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_numbers_shown_are_those_of_the_recorded_run(doc):
    """Every marked value and printed output equals course/outputs/<exercise>.json."""
    text = doc.read_text()
    opened = text.count("<!--v ") + text.count("<!--output ")
    parsed = len(refresh.VALUE_MARKER.findall(text)) + len(refresh.OUTPUT_MARKER.findall(text))
    assert opened == parsed, (f"{doc.name}: {opened - parsed} marker(s) are malformed (a value needs "
                              "<!--v path spec-->text<!--/v-->, an output marker a ```text block right below)")
    problems = _mismatches(text)
    assert not problems, (f"{doc.name} disagrees with the recorded run; re-fill it with "
                          "`python -m tools.refresh_course_outputs --docs-only`:\n" + "\n".join(problems))


def test_the_number_check_can_fail():
    """A value or an output block edited by hand is reported, and fill_markers repairs it."""
    record = {"exercise": "demo", "key": {"ppx": 29.4231, "n": 3392},
              "printed": [{"cell": "c1", "source": "evaluation = run()", "stdout": "a\nb 1.25\nc\n"}]}
    records = {"demo": record}
    good = ('ppx <!--v demo.key.ppx .2f-->29.42<!--/v--> over <!--v demo.key.n ,d-->3,392<!--/v-->\n\n'
            '<!--output demo "evaluation =" lines=2:2-->\n```text\nb 1.25\n```\n')
    assert _mismatches_in(good, records) == []
    bad = good.replace("29.42", "29.40").replace("b 1.25", "b 1.30")
    assert len(_mismatches_in(bad, records)) == 2
    assert refresh.fill_markers(bad, records) == good
    with pytest.raises(refresh.MarkerError):
        refresh.lookup(record, "key.missing")


def _mismatches_in(text, records):
    return [m for m in refresh.expected_markers(text, records) if m[1] != m[2]]


@pytest.mark.parametrize("exercise", sorted(RECORDS))
def test_recorded_run_states_machine_profile_and_time(exercise):
    """Each record says where and how it was measured: the documents quote these."""
    record = RECORDS[exercise]
    assert record["profile"] == "full", "course/ shows the full profile (the embedded model)"
    machine = record["machine"]
    for field in ("cpu", "cores", "torch_threads", "python"):
        assert machine.get(field), f"{exercise}: machine.{field} is not recorded"
    assert machine["versions"].get("torch") and machine["versions"].get("transformers")
    assert record["date"] and record["total_seconds"] > 0 and record["sections"]
    assert record["printed"], f"{exercise}: no printed output was recorded"


@pytest.mark.parametrize("exercise", sorted(RECORDS))
def test_figures_are_the_recorded_runs(exercise):
    """course/figures/<exercise>/ holds exactly the PNGs of the recorded run, byte for byte."""
    folder = FIGURES / exercise
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}
    assert on_disk == RECORDS[exercise]["figures"], (
        f"course/figures/{exercise}/ differs from course/outputs/{exercise}.json: "
        f"run python -m tools.refresh_course_outputs -e {exercise}")


@pytest.mark.parametrize("doc", WALKTHROUGHS, ids=_ids(WALKTHROUGHS))
def test_walkthrough_figures_come_from_a_recorded_run(doc):
    for match in IMAGE.finditer(doc.read_text()):
        parts = Path(match["target"]).parts
        assert len(parts) == 3 and parts[0] == "figures", f"{doc.name}: figure {match['target']} is not under figures/"
        assert parts[2] in RECORDS.get(parts[1], {}).get("figures", {}), (
            f"{doc.name}: {match['target']} is not a figure of the recorded {parts[1]} run")


@pytest.mark.parametrize("doc", WALKTHROUGHS, ids=_ids(WALKTHROUGHS))
def test_expected_output_sections_hold_no_unchecked_numbers(doc):
    """In a section titled 'Expected output...', every decimal number comes from a marker or a checked block."""
    text = refresh.OUTPUT_MARKER.sub("", refresh.VALUE_MARKER.sub("", doc.read_text()))
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    headings = list(SECTION.finditer(text))
    loose = []
    for i, heading in enumerate(headings):
        if "expected output" not in heading[2].lower():
            continue
        level = len(heading[1])
        end = next((h.start() for h in headings[i + 1:] if len(h[1]) <= level), len(text))
        loose += re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text[heading.end():end])
    assert not loose, (f"{doc.name}: numbers {loose} in an expected-output section are not read from "
                       "course/outputs (wrap them in <!--v ...--> markers)")


EXCERPT = re.compile(r"```python\n# excerpt: (?P<exercise>\w+) (?P<cell>[\w-]+)\n(?P<code>.*?)```", re.S)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_excerpts_are_still_in_the_source_notebooks(doc):
    """Code quoted from a solution cell must match the notebook line for line (indentation included)."""
    import nbformat

    stale = []
    for match in EXCERPT.finditer(doc.read_text()):
        path = REPO_ROOT / "source" / match["exercise"] / f"{match['exercise']}.ipynb"
        cells = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c.source
                 for c in nbformat.read(path, as_version=4).cells}
        assert match["cell"] in cells, f"{doc.name}: no cell {match['cell']!r} in {path.name}"
        lines = set(cells[match["cell"]].splitlines())
        stale += [f"{match['cell']}: {line.strip()}" for line in match["code"].splitlines()
                  if line.strip() and line not in lines]
    assert not stale, f"{doc.name}: excerpt lines no longer in the notebook:\n" + "\n".join(stale)
