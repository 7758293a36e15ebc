# %% [markdown]
# ---
# ## Part B5: one results table (2 points)
#
# Results scattered over cells are hard to compare. Write `build_results_table(rows)`: `rows` is a
# list of dicts, one per variant, the first one the baseline, each with `variant`, `model_id`,
# `device`, `dtype_or_backend`, `tokens_per_sec`, `total_latency_s`, `avg_latency_per_token_ms`
# and optionally `ppx` and `size_mb`. Return one DataFrame with exactly these columns, in this
# order: `variant`, `model_id`, `device`, `dtype_or_backend`, `tokens_per_sec`,
# `speedup_vs_baseline_x` (tokens/s over the baseline's), `total_latency_s`,
# `avg_latency_per_token_ms`, `perplexity`, `perplexity_change_pct` (100 x (ppx / baseline ppx - 1)),
# `size_mb`. Missing values stay empty (NaN). Units live in the names.

# %% [solution id=build_results_table]
RESULT_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
                  "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]


def build_results_table(rows):
    """One DataFrame of every variant (first row = baseline), units in the column names."""
    ### BEGIN SOLUTION
    rows = [dict(row) for row in rows]
    if not rows:
        raise ValueError("build_results_table needs at least one row (the baseline)")
    base_rate, base_ppx = rows[0]["tokens_per_sec"], rows[0].get("ppx")
    table = []
    for row in rows:
        ppx = row.get("ppx", float("nan"))
        table.append({
            "variant": row["variant"], "model_id": row["model_id"], "device": row["device"],
            "dtype_or_backend": row["dtype_or_backend"], "tokens_per_sec": row["tokens_per_sec"],
            "speedup_vs_baseline_x": row["tokens_per_sec"] / base_rate,
            "total_latency_s": row["total_latency_s"], "avg_latency_per_token_ms": row["avg_latency_per_token_ms"],
            "perplexity": ppx,
            "perplexity_change_pct": 100.0 * (ppx / base_ppx - 1.0) if base_ppx else float("nan"),
            "size_mb": row.get("size_mb", float("nan")),
        })
    return pd.DataFrame(table, columns=RESULT_COLUMNS)
    ### END SOLUTION

# %% [tests id=test_results_table points=1]
"""Check the columns, the carried values and the derived columns of build_results_table."""
_rows = [dict(variant="base", model_id="m", device="cpu", dtype_or_backend="float32", tokens_per_sec=20.0,
              total_latency_s=1.6, avg_latency_per_token_ms=50.0, ppx=25.0, size_mb=540.0),
         dict(variant="int8", model_id="m", device="cpu", dtype_or_backend="onnxruntime int8", tokens_per_sec=40.0,
              total_latency_s=0.8, avg_latency_per_token_ms=25.0, ppx=26.0)]
_t = build_results_table(_rows)
assert list(_t.columns) == RESULT_COLUMNS, f"columns must be {RESULT_COLUMNS}, got {list(_t.columns)}"
assert list(_t["variant"]) == ["base", "int8"] and list(_t["tokens_per_sec"]) == [20.0, 40.0], "keep rows in order"
assert list(_t["speedup_vs_baseline_x"]) == [1.0, 2.0], "speedup = tokens_per_sec / baseline tokens_per_sec"
assert abs(_t["perplexity_change_pct"][1] - 4.0) < 1e-9 and _t["perplexity_change_pct"][0] == 0.0, \
    "perplexity_change_pct = 100 * (ppx / baseline ppx - 1)"
assert math.isnan(_t["size_mb"][1]), "a missing size stays NaN"

# %% [tests id=test_results_table_hidden points=1]
"""Check the results table on other rows: the first row as baseline, every value carried, empty cells, extra keys."""
### BEGIN HIDDEN TESTS
# Trusted tools (course/grading_security.md): types from literals, the columns written out here (not read
# from RESULT_COLUMNS), the frame's columns read as lists and each value as a real number or str.
_type = (0).__class__.__class__
_float, _int, _str, _list = (0.0).__class__, (0).__class__, "".__class__, [].__class__
_mro, _flags, _name = (_type.__dict__[_k].__get__ for _k in ("__mro__", "__flags__", "__name__"))


# include: true_number


# include: true_text


def _cell(value, what):
    """A number, or None for an empty cell (NaN, None or pandas' NA)."""
    if value is None or _name(_type(value)) == "NAType":
        return None
    _v = _num(value, what)
    return None if _v != _v else _v


_COLUMNS = ["variant", "model_id", "device", "dtype_or_backend", "tokens_per_sec", "speedup_vs_baseline_x",
            "total_latency_s", "avg_latency_per_token_ms", "perplexity", "perplexity_change_pct", "size_mb"]
_TEXTS = ("variant", "model_id", "device", "dtype_or_backend")
_WHAT = {"variant": "keep the rows in the order given (the first one is the baseline)",
         "speedup_vs_baseline_x": "speedup_vs_baseline_x = tokens_per_sec / the first row's (the baseline's) "
                                  "tokens_per_sec",
         "perplexity": "perplexity is the row's ppx, empty (NaN) where the row has none",
         "perplexity_change_pct": "perplexity_change_pct = 100 x (ppx / the first row's ppx - 1), empty (NaN) where "
                                  "either ppx is missing",
         "size_mb": "size_mb is the row's size_mb, empty (NaN) where the row has none"}


def _check_table(rows, want):
    _table = build_results_table(rows)
    _names = [_text(_c, "a column name") for _c in _table.columns]
    assert _names == _COLUMNS, \
        f"the columns must be exactly {_COLUMNS}, in this order (extra keys of the rows left out), got {_names}"
    _checked = 0
    for _key in _COLUMNS:
        _values = _table[_key].tolist()
        assert _type(_values) is _list and _list.__len__(_values) == _list.__len__(want[_key]), \
            f"one row per variant, {_list.__len__(want[_key])} here"
        _hint = _WHAT.get(_key, f"carry each row's {_key} unchanged")
        _i = 0
        while _i < _list.__len__(_values):
            _e = want[_key][_i]
            if _key in _TEXTS:
                _g = _text(_values[_i], _key)
                assert _g == _e, f"{_hint}: row {_i} should hold {_e!r} in {_key}, got {_g!r}"
            elif _e is None:
                _g = _cell(_values[_i], _key)
                assert _g is None, f"{_hint}: row {_i} should leave {_key} empty (NaN), got {_g}"
            else:
                _g = _cell(_values[_i], _key)
                _tol = 1e-9 * (_e if _e > 0 else -_e) + 1e-12
                assert _g is not None and -_tol <= _g - _e <= _tol, \
                    f"{_hint}: row {_i} should hold {_e} in {_key}, got {_g}"
            _i += 1
        _checked += 1
    assert _checked == 11


# The baseline is neither the slowest nor the fastest row; the rows are in no sorted order; a variant
# without ppx or size; extra keys that are not columns of the table.
_check_table(
    [{"variant": "pytorch float32", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "float32",
      "tokens_per_sec": 50.0, "total_latency_s": 0.64, "avg_latency_per_token_ms": 20.0, "ppx": 40.0,
      "size_mb": 512.0, "repeats": 5, "notes": "baseline"},
     {"variant": "onnxruntime float32", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "onnxruntime float32",
      "tokens_per_sec": 40.0, "total_latency_s": 0.8, "avg_latency_per_token_ms": 25.0, "ppx": 40.4,
      "size_mb": 520.0, "repeats": 5, "notes": "export"},
     {"variant": "int8 dynamic", "model_id": "tiny", "device": "cpu", "dtype_or_backend": "onnxruntime int8 dynamic",
      "tokens_per_sec": 125.0, "total_latency_s": 0.256, "avg_latency_per_token_ms": 8.0, "ppx": 42.0,
      "size_mb": 140.0, "repeats": 5, "notes": "quantized"},
     {"variant": "bfloat16 on gpu", "model_id": "tiny-bf16", "device": "cuda:0", "dtype_or_backend": "bfloat16",
      "tokens_per_sec": 100.0, "total_latency_s": 0.32, "avg_latency_per_token_ms": 10.0, "repeats": 5,
      "notes": "no ppx"}],
    {"variant": ["pytorch float32", "onnxruntime float32", "int8 dynamic", "bfloat16 on gpu"],
     "model_id": ["tiny", "tiny", "tiny", "tiny-bf16"], "device": ["cpu", "cpu", "cpu", "cuda:0"],
     "dtype_or_backend": ["float32", "onnxruntime float32", "onnxruntime int8 dynamic", "bfloat16"],
     "tokens_per_sec": [50.0, 40.0, 125.0, 100.0], "speedup_vs_baseline_x": [1.0, 0.8, 2.5, 2.0],
     "total_latency_s": [0.64, 0.8, 0.256, 0.32], "avg_latency_per_token_ms": [20.0, 25.0, 8.0, 10.0],
     "perplexity": [40.0, 40.4, 42.0, None], "perplexity_change_pct": [0.0, 1.0, 5.0, None],
     "size_mb": [512.0, 520.0, 140.0, None]})
# A baseline without ppx: no row has a perplexity change.
_check_table(
    [{"variant": "base", "model_id": "m", "device": "cpu", "dtype_or_backend": "float32", "tokens_per_sec": 10.0,
      "total_latency_s": 2.0, "avg_latency_per_token_ms": 100.0, "size_mb": _float("nan")},
     {"variant": "int8", "model_id": "m", "device": "cpu", "dtype_or_backend": "onnxruntime int8",
      "tokens_per_sec": 30.0, "total_latency_s": 0.5, "avg_latency_per_token_ms": 25.0, "ppx": 12.5, "size_mb": 64.0}],
    {"variant": ["base", "int8"], "model_id": ["m", "m"], "device": ["cpu", "cpu"],
     "dtype_or_backend": ["float32", "onnxruntime int8"], "tokens_per_sec": [10.0, 30.0],
     "speedup_vs_baseline_x": [1.0, 3.0], "total_latency_s": [2.0, 0.5], "avg_latency_per_token_ms": [100.0, 25.0],
     "perplexity": [None, 12.5], "perplexity_change_pct": [None, None], "size_mb": [None, 64.0]})
### END HIDDEN TESTS

