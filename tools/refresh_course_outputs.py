"""Regenerate the numbers and figures that course/ shows, from a real run of the notebooks.

    flock /tmp/heavy.lock .venv/bin/python -m tools.refresh_course_outputs                # every exercise
    flock /tmp/heavy.lock .venv/bin/python -m tools.refresh_course_outputs -e exercise2   # one exercise
    .venv/bin/python -m tools.refresh_course_outputs --docs-only    # re-fill course/*.md and source/*/*.md from the JSON
    flock /tmp/heavy.lock .venv/bin/python -m tools.refresh_course_outputs -e exercise2 --check

For each exercise the script copies ``source/<exercise>/`` (the solutions
filled in) to a temporary folder, executes the notebook top to bottom with
``COURSE_PROFILE=full`` (the embedded model) and then writes:

- ``course/outputs/<exercise>.json``: the machine (CPU, cores, torch threads,
  library versions, date, as seen by the notebook's own kernel), wall time per
  notebook section, every CSV the notebook saved under ``artifacts/`` (as rows),
  the text each code cell printed, a few named key numbers, and the sha256 of
  every figure;
- ``course/outputs/<exercise>.md``: the same, for people;
- ``course/figures/<exercise>/*.png``: the notebook's plots.

Then it re-fills the recorded values inside ``course/*.md`` and the student documents in
``source/<exercise>/``. Documents mark
them in two ways, both invisible once rendered:

- a value: ``<!--v exercise2.key.eval_perplexity .2f-->29.87<!--/v-->``, a dotted
  path into the JSON and an optional Python format spec;
- a printed output: a line ``<!--output exercise2 "evaluation = evaluate" lines=1:3-->``
  right above a ```` ```text ```` block: the block is the stdout of the code cell whose
  source starts with that text (optionally a slice of its lines, 1-based, inclusive).

``tests/test_course_docs.py`` checks every marker against the JSON and every
figure against its recorded hash, so the documents cannot drift from the run.
``--check`` runs the notebooks but writes nothing: it compares the fresh key
numbers with the recorded ones (quality numbers to 0.1%, timings to a factor of
two) and exits 1 when they disagree. Run it under the heavy lock: timings from
a busy machine are meaningless. Exercise 2 takes about a minute, Exercise 1
several.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from helpers.paths import REPO_ROOT
from tools import notebook_run
from tools.notebook_builder import source_assignments

COURSE_DIR = REPO_ROOT / "course"
OUTPUTS_DIR = COURSE_DIR / "outputs"
FIGURES_DIR = COURSE_DIR / "figures"

# --------------------------------------------------------------------------
# Markers in the documents (shared with tests/test_course_docs.py)
# --------------------------------------------------------------------------

VALUE_MARKER = re.compile(
    r"<!--v (?P<path>[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+)(?: (?P<spec>[^>]*?))?-->(?P<text>.*?)<!--/v-->", re.S)
OUTPUT_MARKER = re.compile(
    r"<!--output (?P<exercise>[A-Za-z0-9_]+) \"(?P<cell>[^\"]+)\"(?: lines=(?P<lines>\d*:\d*))?-->\n"
    r"(?P<blank>\n?)```text\n(?P<text>.*?)```", re.S)


class MarkerError(ValueError):
    """A marker in a document that does not match the recorded outputs."""


def load_outputs(exercise: str, outputs_dir: Path = OUTPUTS_DIR) -> dict:
    path = Path(outputs_dir) / f"{exercise}.json"
    if not path.exists():
        raise MarkerError(f"no recorded outputs for {exercise!r} ({path} is missing): "
                          f"run python -m tools.refresh_course_outputs -e {exercise}")
    return json.loads(path.read_text())


def lookup(record: dict, dotted: str):
    """Follow a dotted path (dict keys, list indexes) into a recorded run."""
    node = record
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise MarkerError(f"{dotted!r}: nothing recorded at {part!r}")
    return node


def render_value(value, spec: str | None) -> str:
    if value is None:
        raise MarkerError("the recorded value is empty (None)")
    spec = (spec or "").strip()
    if isinstance(value, (dict, list)):
        raise MarkerError(f"the path leads to a {type(value).__name__}, not to a value")
    return format(value, spec) if spec else str(value)


def cell_stdout(record: dict, prefix: str, lines: str | None = None) -> str:
    """The stdout of the one code cell whose source starts with ``prefix`` (optionally a line slice)."""
    matches = [c for c in record["printed"] if c["source"].startswith(prefix)]
    if len(matches) != 1:
        raise MarkerError(f"{len(matches)} code cells of {record['exercise']} start with {prefix!r}; need exactly one")
    text = matches[0]["stdout"]
    if lines:
        start, _, stop = lines.partition(":")
        all_lines = text.splitlines(keepends=True)
        text = "".join(all_lines[(int(start) - 1 if start else 0):(int(stop) if stop else None)])
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def expected_markers(text: str, records: dict) -> list[tuple[str, str, str]]:
    """(what, shown, expected) for every marker in a document; ``records`` maps exercise -> JSON."""
    found = []
    for m in VALUE_MARKER.finditer(text):
        exercise, _, path = m["path"].partition(".")
        try:
            expected = render_value(lookup(records[exercise], path), m["spec"])
        except (KeyError, MarkerError, ValueError, TypeError) as error:
            expected = f"<error: {error}>"
        found.append((f"value {m['path']}", m["text"], expected))
    for m in OUTPUT_MARKER.finditer(text):
        try:
            expected = cell_stdout(records[m["exercise"]], m["cell"], m["lines"])
        except (KeyError, MarkerError) as error:
            expected = f"<error: {error}>"
        found.append((f"output of {m['exercise']} cell {m['cell']!r}", m["text"], expected))
    return found


def fill_markers(text: str, records: dict, only: set[str] | None = None) -> str:
    """The document with every marker of the given exercises re-filled from ``records``."""

    def value(m):
        exercise, _, path = m["path"].partition(".")
        if only is not None and exercise not in only:
            return m.group(0)
        shown = render_value(lookup(records[exercise], path), m["spec"])
        spec = f" {m['spec']}" if m["spec"] else ""
        return f"<!--v {m['path']}{spec}-->{shown}<!--/v-->"

    def output(m):
        if only is not None and m["exercise"] not in only:
            return m.group(0)
        lines = f" lines={m['lines']}" if m["lines"] else ""
        block = cell_stdout(records[m["exercise"]], m["cell"], m["lines"])
        return f"<!--output {m['exercise']} \"{m['cell']}\"{lines}-->\n{m['blank']}```text\n{block}```"

    return OUTPUT_MARKER.sub(output, VALUE_MARKER.sub(value, text))


# --------------------------------------------------------------------------
# Running a notebook
# --------------------------------------------------------------------------

_PROBE_TAG = "course-refresh-probe"
_PROBE_SOURCE = """\
import json as _json, os as _os, platform as _platform, importlib.metadata as _md
import torch as _torch
def _version(name):
    try:
        return _md.version(name)
    except _md.PackageNotFoundError:
        return None
from helpers.cpu import cpuinfo as _cpuinfo
_info = _cpuinfo()
_cpu = _info.get("model name", _platform.processor() or _platform.machine())
_all = set(_info.get("flags", "").split())
_flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in _all]
print(_json.dumps({
    "cpu": _cpu, "cpu_flags": _flags, "cores": _os.cpu_count(), "torch_threads": _torch.get_num_threads(),
    "gpu": _torch.cuda.get_device_name(0) if _torch.cuda.is_available() else None,
    "python": _platform.python_version(), "os": _platform.platform(),
    "versions": {n: _version(n) for n in ("torch", "transformers", "optimum", "optimum-onnx",
                                           "onnxruntime", "nbgrader", "numpy", "pandas")},
    "profile": _os.environ.get("COURSE_PROFILE"),
}))
"""

# The notebook's results as the kernel holds them: every global DataFrame (as rows) and every
# global dict or list that JSON can hold (small ones only). Printed after the machine line.
_STATE_SOURCE = """\
import json as _json
def _plain(value):
    if hasattr(value, "to_json") and hasattr(value, "columns"):
        return _json.loads(value.to_json(orient="records"))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(type(value).__name__)
_state = {}
for _name, _value in list(globals().items()):
    if _name.startswith("_") or _name in ("In", "Out") or callable(_value):
        continue
    try:
        _text = _json.dumps(_plain(_value))
    except (TypeError, ValueError):
        continue
    if len(_text) < 100_000 and _text not in ("{}", "[]"):
        _state[_name] = _json.loads(_text)
print(_json.dumps(_state))
"""


def execute(exercise: str, work_root: Path, profile: str = "full", timeout_s: int = notebook_run.CELL_TIMEOUT_S):
    """Run a copy of source/<exercise> under ``work_root``.

    Returns (executed notebook, machine description, results state, total seconds, folder).
    """
    import nbformat

    probes = [nbformat.v4.new_code_cell(source, metadata={"tags": [_PROBE_TAG]})
              for source in (_PROBE_SOURCE, _STATE_SOURCE)]
    notebook, total, work = notebook_run.run_copy(exercise, work_root, profile, timeout_s,
                                                  extra_cells=probes, unset_env=("NBGRADER_EXECUTION",))
    state = json.loads(_stdout(notebook.cells.pop()).strip().splitlines()[-1])
    machine = json.loads(_stdout(notebook.cells.pop()).strip().splitlines()[-1])
    nbformat.write(notebook, work / f"{exercise}.ipynb")
    return notebook, machine, state, total, work


def _stdout(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "execute_result":
            parts.append(output.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


def section_seconds(notebook) -> list[dict]:
    """Wall time per level-1/2 markdown section, summed from nbclient's per-cell timings."""
    sections = [{"section": name, "seconds": round(seconds, 2)}
                for name, seconds in notebook_run.section_seconds(notebook, first="set-up")]
    return [s for s in sections if s["seconds"] > 0 or s["section"] != "set-up"]


def section_slug(heading: str) -> str:
    """A short stable name for a section: ``part_4`` for "Part 4: ...", else its first three words."""
    m = re.match(r"part (\d+)", heading.strip().lower())
    if m:
        return f"part_{m[1]}"
    words = re.findall(r"[a-z0-9]+", heading.lower())
    return "_".join(words[:3]) or "untitled"


# --------------------------------------------------------------------------
# Key numbers per exercise (named so the documents read well)
# --------------------------------------------------------------------------

def _rows(tables: dict, name: str) -> list[dict]:
    return tables.get(name, [])


def _find(rows: list[dict], column: str, predicate) -> dict:
    return next((r for r in rows if predicate(str(r.get(column, "")))), {})


def key_exercise2(tables: dict, state: dict) -> dict:
    quality = _rows(tables, "exercise2_quality")
    speed = (_rows(tables, "exercise2_speed") or [{}])[0]
    ev = _find(quality, "measure", lambda m: m.startswith("eval texts"))
    mom = _find(quality, "measure", lambda m: "mean of batch means" in m)
    tw = _find(quality, "measure", lambda m: m.startswith("mixed lengths, token-weighted"))
    whole = _find(quality, "measure", lambda m: m.startswith("long text, whole"))
    key = {
        "model_id": ev.get("model_id"), "dtype": ev.get("dtype"),
        "eval_n_tokens": ev.get("n_tokens"), "eval_loss": ev.get("avg_loss"), "eval_perplexity": ev.get("perplexity"),
        "mixed_n_tokens": tw.get("n_tokens"),
        "mixed_token_weighted_perplexity": tw.get("perplexity"),
        "mixed_mean_of_means_perplexity": mom.get("perplexity"),
        "mean_of_means_error_pct": (100 * (mom["perplexity"] / tw["perplexity"] - 1)
                                    if mom.get("perplexity") and tw.get("perplexity") else None),
        "long_text_n_tokens": whole.get("n_tokens"), "long_text_whole_perplexity": whole.get("perplexity"),
        "decode_new_tokens": speed.get("new_tokens"), "decode_repeats": speed.get("repeats"),
        "decode_latency_s": speed.get("total_latency_s"), "decode_tokens_per_sec": speed.get("tokens_per_sec"),
    }
    for row in quality:
        m = re.match(r"long text, window (\d+), stride (\d+)", str(row.get("measure", "")))
        if m:
            key[f"stride_{m[2]}_perplexity"] = row.get("perplexity")
            key["sliding_max_length"] = int(m[1])
    return key


def key_exercise1(tables: dict, state: dict) -> dict:
    """Named numbers of Exercise 1, read from the results it saved and the variables it left."""
    results = _rows(tables, "results")
    study = state.get("study") or {}
    key: dict = {f"{name}_rows": len(rows) for name, rows in tables.items()}
    baseline = state.get("baseline") or {}
    key.update({"model_id": state.get("MODEL_ID"), "dtype": state.get("DTYPE_LABEL"),
                "threads": state.get("NUM_THREADS"),
                "baseline_tokens_per_sec": baseline.get("tokens_per_sec"),
                "baseline_latency_s": baseline.get("total_latency_s"),
                "baseline_ms_per_token": baseline.get("avg_latency_per_token_ms"),
                "recommended": study.get("recommended")})
    slug = lambda variant: re.sub(r"[^a-z0-9]+", "_", str(variant).lower()).strip("_")
    for r in results:
        # "int8 static, projections except down_proj": the excluded types depend on the run, the key does not
        variant, _, kept = str(r.get("variant")).partition(" except ")
        name = slug(variant)
        if kept:
            key[f"{name}_kept_float32"] = kept
        for column in ("tokens_per_sec", "speedup_vs_baseline_x", "perplexity", "perplexity_change_pct", "size_mb",
                       "bound_ms_per_token", "pct_of_bound"):
            key[f"{name}_{column}"] = r.get(column)
    bandwidth = study.get("bandwidth") or {}
    key["memory_bandwidth_gbps"] = bandwidth.get("gbps")
    for r in _rows(tables, "memory_bound_batching"):
        key[f"batch_{r['batch_size']}_pct_of_bound"] = r.get("pct_of_bound")
    best = _find(results, "variant", lambda v: v == study.get("recommended"))
    key["recommended_speedup_x"] = best.get("speedup_vs_baseline_x")
    key["recommended_perplexity_change_pct"] = best.get("perplexity_change_pct")
    for r in _rows(tables, "quantization_sensitivity"):
        key[f"sensitivity_{r['quantized_group']}_pct"] = r.get("perplexity_change_pct")
    arms = {(a.get("use_cache"), a.get("padding_side")): a for a in state.get("ablation") or []}
    if (True, "left") in arms and (False, "left") in arms:
        on, off = arms[True, "left"]["tokens_per_sec"], arms[False, "left"]["tokens_per_sec"]
        key.update({"cache_on_tokens_per_sec": on, "cache_off_tokens_per_sec": off, "cache_speedup_x": on / off})
    batching = state.get("batching") or []
    if len(batching) > 1:
        first, last = batching[0], batching[-1]
        key.update({"batch_max": last["batch_size"],
                    "batch_max_throughput_x": last["tokens_per_sec"] / first["tokens_per_sec"],
                    "batch_1_latency_s": first["per_sample_latency_s"],
                    "batch_max_latency_s": last["per_sample_latency_s"]})
    for section, seconds in (study.get("timings_s") or {}).items():
        key[f"study_{slug(section)}_s"] = seconds
    return key


KEY_NUMBERS = {"exercise1": key_exercise1, "exercise2": key_exercise2}

# Keys whose values are timings, or follow from a measured speed (the memory bandwidth, the bound it
# gives, the share of it): compared loosely by --check (a factor of two).
_TIMING = re.compile(r"(_s|_ms|_sec|per_sec|speedup|_x|_gbps|_per_token|pct_of_bound)$")


def _read_tables(artifacts: Path) -> dict:
    import pandas as pd

    tables = {}
    for csv in sorted(artifacts.glob("*.csv")):
        frame = pd.read_csv(csv)
        tables[csv.stem] = json.loads(frame.to_json(orient="records"))
    return tables


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def record_run(exercise: str, work_root: Path, profile: str = "full") -> tuple[dict, Path]:
    """Execute one exercise and return (record, folder holding its artifacts)."""
    notebook, machine, state, total, folder = execute(exercise, work_root, profile)
    artifacts = folder / "artifacts"
    tables = _read_tables(artifacts) if artifacts.exists() else {}
    printed = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        out = _stdout(cell)
        if out:
            printed.append({"cell": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id"),
                            "source": cell.source.split("\n", 1)[0], "stdout": out})
    figures = {png.name: _sha256(png) for png in sorted(artifacts.glob("*.png"))} if artifacts.exists() else {}
    record = {
        "exercise": exercise,
        "profile": profile,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "total_seconds": round(total, 1),
        "sections": (sections := section_seconds(notebook)),
        "section_seconds": {section_slug(x["section"]): x["seconds"] for x in sections},
        "key": KEY_NUMBERS.get(exercise, lambda t, s: {})(tables, state),
        "tables": tables,
        "figures": figures,
        "printed": printed,
        "state": state,
    }
    # Paths of this machine and of the temporary copy mean nothing to a reader: make them relative.
    text = json.dumps(record).replace(str(folder), "<notebook folder>").replace(str(REPO_ROOT) + "/", "")
    return json.loads(text), artifacts


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def summary_markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"# Recorded run: {record['exercise']}",
        "",
        "Written by `tools/refresh_course_outputs.py`; do not edit by hand. The JSON beside this file",
        "holds the same numbers (and every line the notebook printed); the walkthroughs quote them.",
        "",
        f"- date: {record['date']}; profile `{record['profile']}`",
        f"- machine: {m['cpu']} ({', '.join(m.get('cpu_flags') or []) or 'no AVX flags read'}), {m['cores']} cores, torch {m['torch_threads']} threads, "
        f"{'GPU ' + m['gpu'] if m.get('gpu') else 'no GPU'}; Python {m['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"- whole notebook: {record['total_seconds']:.1f} s (one run, cell times from nbclient)",
        "",
        "## Time per section",
        "",
        "| section | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {s['section']} | {s['seconds']:.1f} |" for s in record["sections"]]
    lines += ["", "## Key numbers", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in record["key"].items()]
    for name, rows in record["tables"].items():
        if not rows:
            continue
        columns = list(rows[0])
        lines += ["", f"## Table `{name}.csv`", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    if record["figures"]:
        lines += ["", "## Figures", ""]
        lines += [f"- [`{name}`](../figures/{record['exercise']}/{name})" for name in record["figures"]]
    return "\n".join(lines) + "\n"


def write_record(record: dict, artifacts: Path) -> None:
    exercise = record["exercise"]
    OUTPUTS_DIR.mkdir(parents=True, exist_ok=True)
    figures = FIGURES_DIR / exercise
    if figures.exists():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    for name in record["figures"]:
        shutil.copy2(artifacts / name, figures / name)
    for suffix, text in ((".json", json.dumps(record, indent=1, ensure_ascii=False) + "\n"),
                         (".md", summary_markdown(record))):
        path = OUTPUTS_DIR / f"{exercise}{suffix}"
        tmp = path.with_suffix(suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def compare(old: dict | None, new: dict) -> list[str]:
    """Lines describing how the fresh key numbers differ from the recorded ones; problems start with '!'."""
    if old is None:
        return ["(no earlier record to compare with)"]
    lines = []
    for key, value in new["key"].items():
        before = old.get("key", {}).get(key)
        if not isinstance(value, (int, float)) or not isinstance(before, (int, float)) or isinstance(value, bool):
            if value != before:
                lines.append(f"  {key}: {before!r} -> {value!r}")
            continue
        if _TIMING.search(key):
            ok = before == value or (before > 0 and value > 0 and 0.5 <= value / before <= 2.0)
            tolerance = "timing, within 2x"
        else:
            ok = abs(value - before) <= 1e-3 * max(abs(before), 1e-12)
            tolerance = "quality, within 0.1%"
        change = f"{100 * (value / before - 1):+.1f}%" if before else "n/a"
        lines.append(f"{' ' if ok else '!'} {key}: {_fmt(before)} -> {_fmt(value)} ({change}; {tolerance})")
    return lines


def course_documents() -> list[Path]:
    """The documents that may quote the recorded runs: course/*.md, and the student documents
    each assignment ships in source/<exercise>/ (a symlink shares one file between two
    assignments and is listed once, as the file it points to)."""
    shipped = [doc for doc in (REPO_ROOT / "source").glob("*/*.md") if not doc.is_symlink()]
    return sorted(COURSE_DIR.glob("*.md")) + sorted(shipped)


def refresh_docs(records: dict, only: set[str] | None = None) -> list[str]:
    changed = []
    for doc in course_documents():
        text = doc.read_text()
        new = fill_markers(text, records, only)
        if new != text:
            doc.write_text(new)
            changed.append(doc.relative_to(REPO_ROOT).as_posix())
    return changed


def main(argv=None) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    available = source_assignments(REPO_ROOT)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--exercise", action="append", choices=available,
                        help="only this exercise (repeatable; default: every exercise in source/)")
    parser.add_argument("--profile", default="full", choices=("full", "fast"),
                        help="run profile (the documents show the full one; fast is for trying the script)")
    parser.add_argument("--check", action="store_true",
                        help="run, compare with the recorded numbers, write nothing; exit 1 on a disagreement")
    parser.add_argument("--docs-only", action="store_true",
                        help="run nothing: re-fill the markers in course/*.md and source/*/*.md from the recorded JSON")
    parser.add_argument("--keep", type=Path, help="also keep the executed notebooks and artifacts in this folder")
    args = parser.parse_args(argv)
    exercises = args.exercise or available

    if args.docs_only:
        records = {e: load_outputs(e) for e in source_assignments(REPO_ROOT)
                   if (OUTPUTS_DIR / f"{e}.json").exists()}
        print("documents updated:", ", ".join(refresh_docs(records)) or "none")
        return 0

    problems = 0
    records = {}
    with tempfile.TemporaryDirectory(prefix="course-refresh-") as tmp:
        for exercise in exercises:
            print(f"running {exercise} ({args.profile} profile)...", flush=True)
            record, artifacts = record_run(exercise, Path(tmp), args.profile)
            old = json.loads((OUTPUTS_DIR / f"{exercise}.json").read_text()) \
                if (OUTPUTS_DIR / f"{exercise}.json").exists() else None
            print(f"{exercise}: {record['total_seconds']:.1f} s in all; machine: {record['machine']['cpu']}, "
                  f"{record['machine']['cores']} cores, torch {record['machine']['torch_threads']} threads")
            for s in record["sections"]:
                print(f"  {s['seconds']:7.1f} s  {s['section']}")
            report = compare(old, record)
            problems += sum(line.startswith("!") for line in report)
            print("compared with the recorded run:\n" + "\n".join(report))
            if args.keep:
                shutil.copytree(artifacts.parent, args.keep / exercise, dirs_exist_ok=True)
            if not args.check:
                if args.profile != "full":
                    print("(not written: only a full-profile run is recorded)")
                    continue
                write_record(record, artifacts)
                records[exercise] = record
                print(f"wrote course/outputs/{exercise}.json, .md and {len(record['figures'])} figure(s)")
    if records:
        all_records = {e: load_outputs(e) for e in source_assignments(REPO_ROOT)
                       if (OUTPUTS_DIR / f"{e}.json").exists()}
        print("documents updated:", ", ".join(refresh_docs(all_records, set(records))) or "none")
    if args.check and problems:
        print(f"{problems} number(s) differ from the recorded run beyond the tolerance")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
