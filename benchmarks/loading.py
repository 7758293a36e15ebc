"""Set-up and model loading: what a student waits for before any measurement."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from benchmarks.common import median_time, pin_threads, row

from helpers.paths import REPO_ROOT


def main() -> list[dict]:
    import helpers
    from helpers import models

    pin_threads()
    rows = []
    start = time.perf_counter()
    subprocess.run(["bash", str(REPO_ROOT / "tools" / "setup.sh")], check=True, capture_output=True)
    rows.append(row("setup", "set-up re-run (everything present)", time.perf_counter() - start, "s",
                    "one run of tools/setup.sh in a subprocess"))
    for name, folder in (("tiny", models.TINY_DIR), ("embedded", models.EMBEDDED_DIR)):
        if not models.is_complete_model_dir(folder):
            continue
        med, _ = median_time(lambda: helpers.load_causal_lm([str(folder)]), repeats=5, warmup=1)
        rows.append(row("loading", f"load {name} model (tokenizer + weights)", med, "s",
                        "median of 5 in-process loads after 1 warm-up (disk cache warm)"))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(100))
        med, _ = median_time(lambda: models.build_tiny_model(Path(tmp) / f"t{next(counter)}"), repeats=3)
        rows.append(row("loading", "build tiny model from seed", med, "s", "median of 3 builds after 1 warm-up"))
    size = sum(p.stat().st_size for p in models.MODELS_DIR.rglob("*") if p.is_file()) / 1e6
    rows.append(row("setup", "disk used by models/", size, "MB", "sum of file sizes"))
    return rows
