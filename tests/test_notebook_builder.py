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
