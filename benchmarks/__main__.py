"""Run the course benchmarks and print one table of figures with their method.

    python -m benchmarks                 # quick set (a few minutes)
    python -m benchmarks --all           # + embedded-model studies and full notebook runs (long)
    python -m benchmarks loading autograde
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import traceback
from pathlib import Path

from benchmarks.common import machine

QUICK = ["loading", "autograde"]
LONG = ["class_grading", "grading_doors", "cluster_grading", "cluster_tls", "slurm_scaling", "exercise2_reference", "quantization_study", "notebooks"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the course benchmarks.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (quick: {QUICK}; long: {LONG})")
    parser.add_argument("--all", action="store_true", help="run the long ones too")
    parser.add_argument("--csv", type=Path, default=Path("artifacts") / "benchmarks.csv")
    args = parser.parse_args(argv)
    names = args.names or (QUICK + LONG if args.all else QUICK)
    unknown = [n for n in names if n not in QUICK + LONG]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; accepted: {', '.join(QUICK + LONG)}")

    rows, failed = [], []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows.extend(module.main())
        except Exception:
            failed.append(name)
            traceback.print_exc()

    import pandas as pd

    frame = pd.DataFrame(rows, columns=["benchmark", "figure", "value", "unit", "method"])
    print(f"\nMachine: {machine()}  |  {datetime.datetime.now():%Y-%m-%d %H:%M}")
    with pd.option_context("display.max_colwidth", 90, "display.width", 220, "display.float_format", "{:.4g}".format):
        print(frame.to_string(index=False))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.csv, index=False)
    print(f"\nwritten to {args.csv}")
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
