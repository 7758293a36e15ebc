"""tools.notebook_builder: the authoring format, its errors, and that source/ is up to date."""
from __future__ import annotations

import pytest

from tools import notebook_builder as nb


GOOD = '''# %% [markdown]
# # Title
#
# Some *text*.
# %% [readonly id=setup]
import math
# %% [solution id=f]
def f(x):
    ### BEGIN SOLUTION
    return x
    ### END SOLUTION
# %% [tests id=test_f points=2]
assert f(1) == 1
# %% [code]
print(f(2))
'''


def test_parse_builds_nbgrader_metadata():
    notebook = nb.parse(GOOD)
    kinds = [(c.cell_type, c.metadata.get("nbgrader", {}).get("grade_id")) for c in notebook.cells]
    assert kinds == [("markdown", None), ("code", "setup"), ("code", "f"), ("code", "test_f"), ("code", None)]
    assert notebook.cells[0].source == "# Title\n\nSome *text*."
    setup, solution, tests = (c.metadata["nbgrader"] for c in notebook.cells[1:4])
    assert setup["locked"] and not setup["grade"] and not setup["solution"]
    assert solution["solution"] and not solution["locked"] and not solution["grade"]
    assert tests["grade"] and tests["locked"] and tests["points"] == 2
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_parse_is_deterministic():
    import nbformat

    assert nbformat.writes(nb.parse(GOOD)) == nbformat.writes(nb.parse(GOOD))


@pytest.mark.parametrize("text, message", [
    ("print(1)\n# %% [code]\nx = 1\n", "before the first"),
    ("# %% [widget]\nx = 1\n", "unknown cell kind"),
    ("# %% [solution]\nx = 1\n", "needs id="),
    ("# %% [solution id=a]\nx = 1\n", "BEGIN SOLUTION"),
    ("# %% [tests id=t]\nassert True\n", "points="),
    ("# %% [tests id=t points=0]\nassert True\n", "positive"),
    ("# %% [readonly id=a]\nx=1\n# %% [readonly id=a]\ny=2\n", "duplicate"),
    ("# %% [markdown]\nnot a comment\n", "must start with"),
    ("# %% [code nonsense]\nx=1\n", "key=value"),
])
def test_bad_authoring_is_a_clear_error(text, message):
    with pytest.raises(nb.AuthoringError, match=message):
        nb.parse(text)


def test_source_notebooks_are_built_from_authoring():
    """Check that source/*/*.ipynb match authoring/*/ (run `make notebooks` after editing)."""
    stale = nb.build_all(check=True)
    assert not stale, f"stale source notebooks {stale}: run `make notebooks`"


HIDDEN_ONLY = '''# %% [tests id=test_f_hidden points=1]
"""Check f on edge cases."""
### BEGIN HIDDEN TESTS
assert f(0) == 0
### END HIDDEN TESTS
# %% [tests id=test_f points=1]
"""Check that f returns its argument."""
assert f(2) == 2
'''


def _released(source):
    """What nbgrader's ClearHiddenTests leaves of a test cell."""
    import re

    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", source, flags=re.S).strip()


def test_hidden_only_test_cell_placeholder_prints_nothing():
    import ast

    hidden, visible = (c.source for c in nb.parse(HIDDEN_ONLY).cells)
    assert hidden.startswith("# Check f on edge cases.\n### BEGIN HIDDEN TESTS"), hidden
    assert "assert f(0) == 0" in hidden
    placeholder = _released(hidden)
    assert placeholder == "# Check f on edge cases.", placeholder
    assert ast.parse(placeholder).body == [], "the release's placeholder must be no statement at all"
    assert visible.startswith('"""Check that f returns its argument."""'), "visible cells keep their docstring"


def test_source_hidden_placeholders_print_nothing():
    import ast

    import nbformat

    folders = nb.assignment_folders()
    assert [f.name for f in folders] == ["exercise1", "exercise2"]
    for folder in folders:
        for cell in nbformat.reads(nb.render(folder), as_version=4).cells:
            if cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
                body = ast.parse(_released(cell.source)).body
                assert not (body and isinstance(body[-1], ast.Expr)), \
                    f"{folder.name} {cell.id}: the release would print {ast.unparse(body[-1])[:60]}"


@pytest.mark.parametrize("line", ["from onnx import helper as _oh", "Out = {}", "_ih = []",
                                  "for _oh in range(2): pass"])
def test_a_cell_binding_a_name_the_kernel_keeps_is_an_error(line):
    text = f'# %% [tests id=t points=1]\n"""Check t."""\n### BEGIN HIDDEN TESTS\n{line}\n### END HIDDEN TESTS\n'
    with pytest.raises(nb.AuthoringError, match="IPython kernel keeps"):
        nb.parse(text)


def test_names_that_only_look_like_the_kernels_are_allowed():
    text = '# %% [code]\n_ohm = 1\n_ids = [1]\n_ = 0\n_i = 2\nprint(_ohm, _ids, _, _i)\n'
    assert "_ohm = 1" in nb.parse(text).cells[0].source


def test_bare_string_after_visible_code_is_an_error():
    text = '# %% [tests id=t points=1]\nassert True\n"""note"""\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS\n'
    with pytest.raises(nb.AuthoringError, match="bare string"):
        nb.parse(text)


# --------------------------------------------------------------------------
# Shared blocks: "# %% [define name=...]" written once, "# include: <name>" in each cell
# --------------------------------------------------------------------------

WITH_BLOCKS = '''# %% [define name=prelude]
_type = (0).__class__.__class__
_str = "".__class__

# %% [define name=delegate]
def __getattr__(self, name):
    return getattr(self.inner, name)
# %% [tests id=test_a_hidden points=1]
"""Check a."""
### BEGIN HIDDEN TESTS
# include: prelude
assert _type(a) is _str
### END HIDDEN TESTS
# %% [tests id=test_b_hidden points=1]
"""Check b."""
### BEGIN HIDDEN TESTS
# include: prelude

class _Wrapper:
    # include: delegate
assert _type(b) is _str
### END HIDDEN TESTS
# %% [code]
print("no include here")
'''


def _cells(text):
    return {c.get("id"): c.source for c in nb.parse(text).cells}


def test_include_puts_the_block_in_each_asking_cell():
    cells = _cells(WITH_BLOCKS)
    assert list(cells) == ["test_a_hidden", "test_b_hidden", "cell-002"], "a define block is not a cell"
    prelude = '_type = (0).__class__.__class__\n_str = "".__class__'
    assert cells["test_a_hidden"] == ("# Check a.\n### BEGIN HIDDEN TESTS\n" + prelude
                                      + "\nassert _type(a) is _str\n### END HIDDEN TESTS")
    assert cells["test_b_hidden"] == ("# Check b.\n### BEGIN HIDDEN TESTS\n" + prelude + "\n\nclass _Wrapper:\n"
                                      "    def __getattr__(self, name):\n        return getattr(self.inner, name)\n"
                                      "assert _type(b) is _str\n### END HIDDEN TESTS")
    assert "# include:" not in "".join(cells.values())
    assert cells["cell-002"] == 'print("no include here")'


def test_a_block_edited_once_changes_every_including_cell():
    edited = WITH_BLOCKS.replace('_str = "".__class__', '_str, _int = "".__class__, (0).__class__')
    before, after = _cells(WITH_BLOCKS), _cells(edited)
    for grade_id in ("test_a_hidden", "test_b_hidden"):
        assert '_str, _int = "".__class__, (0).__class__' in after[grade_id]
        assert after[grade_id] == before[grade_id].replace('_str = "".__class__',
                                                            '_str, _int = "".__class__, (0).__class__')
    assert after["cell-002"] == before["cell-002"]


def test_unknown_include_names_the_cell_and_the_known_blocks():
    text = WITH_BLOCKS.replace("# include: prelude\nassert _type(a)", "# include: prelud\nassert _type(a)")
    with pytest.raises(nb.AuthoringError) as caught:
        nb.parse(text, name="ex.py")
    message = str(caught.value)
    assert "ex.py:11:" in message and "test_a_hidden" in message and "'prelud'" in message, message
    assert "delegate, prelude" in message, message


@pytest.mark.parametrize("text, message", [
    ("# %% [define name=a]\nx = 1\n# %% [define name=a]\ny = 2\n# %% [code]\n# include: a\n", "defined twice"),
    ("# %% [define name=a]\nx = 1\n# %% [code]\ny = 2\n", "included by no cell"),
    ("# %% [define name=a]\n# include: b\n# %% [define name=b]\nx = 1\n# %% [code]\n# include: a\n",
     "cannot include another block"),
    ("# %% [define]\nx = 1\n", "needs name="),
    ("# %% [code]\n# include: a\n", "blocks this assignment defines: none"),
])
def test_bad_blocks_are_clear_errors(text, message):
    with pytest.raises(nb.AuthoringError, match=message):
        nb.parse(text)


def _course_copy(tmp_path):
    from tests.pipeline import copy_of_repository

    return copy_of_repository(tmp_path, "authoring", "source")


def test_stale_notebooks_names_the_notebook_of_an_edited_authoring_file(tmp_path):
    root = _course_copy(tmp_path)
    assert nb.stale_notebooks(root) == []
    edited = root / "authoring" / "exercise2" / "00_shared.py"
    edited.write_text(edited.read_text(encoding="utf-8").replace("rebinds (builtins", "rebinds (built-ins", 1),
                      encoding="utf-8")
    assert nb.stale_notebooks(root) == ["source/exercise2/exercise2.ipynb"]
    (root / "source" / "exercise1" / "exercise1.ipynb").unlink()
    assert nb.stale_notebooks(root) == ["source/exercise1/exercise1.ipynb", "source/exercise2/exercise2.ipynb"]


def test_grade_refuses_a_stale_source_and_writes_nothing(tmp_path, capsys):
    from grader import __main__ as grade

    root = _course_copy(tmp_path)
    edited = root / "authoring" / "exercise1" / "15_b8_study.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# %% [code]\nprint('new cell')\n", encoding="utf-8")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert grade.main(["--course-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "source/exercise1/exercise1.ipynb" in err and "make notebooks" in err, err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, "nothing may be written"


# --------------------------------------------------------------------------
# An assignment is a folder of part files, authoring/<assignment>/NN_<part>.py, read in order
# --------------------------------------------------------------------------

def _assignment(tmp_path, files: dict):
    folder = tmp_path / "authoring" / "ex"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


PARTS = {
    "00_shared.py": "# %% [define name=prelude]\n_type = (0).__class__.__class__\n\n",
    "01_intro.py": "# %% [markdown]\n# # Title\n\n# %% [code]\nx = 1\n\n",
    "02_a.py": '# %% [tests id=test_a_hidden points=1]\n"""Check a."""\n### BEGIN HIDDEN TESTS\n'
               "# include: prelude\nassert x == 1\n### END HIDDEN TESTS\n\n",
    "10_b.py": "# %% [code]\nprint('last')\n",
}


def test_part_files_are_read_in_the_order_of_their_number_as_one_text(tmp_path):
    import nbformat

    folder = _assignment(tmp_path, {**PARTS, "9_b.py": "# %% [code]\nprint('ninth')\n"})
    cells = nbformat.reads(nb.render(folder), as_version=4).cells
    assert [c.source for c in cells] == ["# Title", "x = 1", "# Check a.\n### BEGIN HIDDEN TESTS\n"
                                         "_type = (0).__class__.__class__\nassert x == 1\n### END HIDDEN TESTS",
                                         "print('ninth')", "print('last')"], "9_b.py comes before 10_b.py"
    one_text = "".join(PARTS[name] for name in sorted(PARTS))
    assert nb.render(_assignment(tmp_path / "copy", PARTS)) == nbformat.writes(nb.parse(one_text)) + "\n"


@pytest.mark.parametrize("name, text, where, message", [
    ("02_a.py", PARTS["02_a.py"].replace("# include: prelude", "# include: prelud"), "02_a.py:4:", "unknown block"),
    ("10_b.py", "# %% [define name=prelude]\ny = 2\n", "10_b.py:1:", "first at authoring/ex/00_shared.py:1"),
    ("10_b.py", "print('would join the cell before')\n# %% [code]\nx = 2\n", "10_b.py:1:", "before the first"),
    ("01_intro.py", PARTS["01_intro.py"] + "# %% [readonly id=test_a_hidden]\ny = 2\n", "02_a.py:1:",
     "duplicate cell id 'test_a_hidden' (first at authoring/ex/01_intro.py:7)"),
    ("10_b.py", "# %% [define name=unused]\ny = 2\n# %% [code]\nz = 3\n", "10_b.py:1:", "included by no cell"),
])
def test_an_error_names_the_part_file_and_line(tmp_path, monkeypatch, name, text, where, message):
    monkeypatch.setattr(nb, "REPO_ROOT", tmp_path)
    folder = _assignment(tmp_path, {**PARTS, name: text})
    with pytest.raises(nb.AuthoringError) as caught:
        nb.render(folder)
    assert f"authoring/ex/{where}" in str(caught.value) and message in str(caught.value), str(caught.value)


def test_a_file_whose_name_gives_no_place_is_an_error(tmp_path):
    folder = _assignment(tmp_path, {**PARTS, "b8_study.py": "# %% [code]\nprint('where?')\n"})
    with pytest.raises(nb.AuthoringError, match="b8_study.py: a part file is named <place>_<part>.py"):
        nb.render(folder)


def test_a_leftover_one_file_authoring_is_named_not_ignored(tmp_path):
    root = _course_copy(tmp_path)
    (root / "authoring" / "exercise1.py").write_text("# %% [code]\nprint('an edit to the old file')\n")
    stale = nb.stale_notebooks(root)
    assert len(stale) == 1 and "exercise1.py: an assignment is a folder of part files" in stale[0], stale
