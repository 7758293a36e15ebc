"""Part B8's takeaways tell a measured difference from noise (runs_differ, in the notebook's
read-only cell): one run per setting, overlapping spreads or no recorded spread say nothing."""
from __future__ import annotations

import nbformat
import pandas as pd
import pytest

from helpers.paths import REPO_ROOT


@pytest.fixture(scope="module")
def runs_differ():
    notebook = nbformat.read(REPO_ROOT / "source" / "exercise1" / "exercise1.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "perplexity_tolerance")
    namespace = {"TRY_REPEATS": 1}    # the fast profile's Try-it cells time each setting once
    exec(compile(cell.source, "perplexity_tolerance", "exec"), namespace)
    return namespace["runs_differ"]


def _row(rate, iqr=None, repeats=None):
    row = {"tokens_per_sec": rate}
    if iqr is not None:
        row["tokens_per_sec_iqr"] = iqr
    if repeats is not None:
        row["repeats"] = repeats
    return pd.Series(row)


def test_separated_spreads_are_a_difference(runs_differ):
    assert runs_differ(_row(60.0, 1.0, 3), _row(20.0, 1.0, 3))
    assert runs_differ(_row(20.0, 1.0, 3), _row(60.0, 1.0, 3)), "either direction"


def test_overlapping_spreads_are_no_difference(runs_differ):
    assert not runs_differ(_row(30.0, 4.0, 3), _row(27.0, 4.0, 3))    # 28..32 and 25..29 overlap


def test_one_run_or_no_recorded_spread_is_no_difference(runs_differ):
    assert not runs_differ(_row(60.0, 0.0, 1), _row(20.0, 0.0, 1)), "one run each: an IQR of 0 is not a spread"
    assert not runs_differ(_row(60.0, 0.0), _row(20.0, 0.0)), "no repeats column: the Try-it cells' TRY_REPEATS (1)"
    assert not runs_differ(_row(60.0, repeats=3), _row(20.0, repeats=3)), "no _iqr column: the spread is unknown"
    assert not runs_differ(_row(60.0, float("nan"), 3), _row(20.0, 1.0, 3))
    assert runs_differ(_row(60.0, 0.0), _row(20.0, 0.0), default_repeats=3)
