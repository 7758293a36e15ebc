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
    """Check that source/*/*.ipynb match authoring/*.py (run `make notebooks` after editing)."""
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

    for authoring_file in sorted(nb.AUTHORING_DIR.glob("*.py")):
        for cell in nb.parse(authoring_file.read_text(encoding="utf-8")).cells:
            if cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
                body = ast.parse(_released(cell.source)).body
                assert not (body and isinstance(body[-1], ast.Expr)), \
                    f"{authoring_file.name} {cell.id}: the release would print {ast.unparse(body[-1])[:60]}"


def test_bare_string_after_visible_code_is_an_error():
    text = '# %% [tests id=t points=1]\nassert True\n"""note"""\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS\n'
    with pytest.raises(nb.AuthoringError, match="bare string"):
        nb.parse(text)
