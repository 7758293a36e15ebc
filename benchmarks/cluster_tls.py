"""What TLS costs cluster grading: the example class over plain TCP and over TLS with mutual authentication.

Each run grades a fresh copy of the example class (``nbgrader_config.py``, ``source/``,
``submitted/``: alice and bob, both exercises, release and solution checks included,
``--no-feedback``) with ``python -m grader --scheduler`` against a Dask scheduler and two
single-process grading workers on loopback (``benchmarks.cluster_grading.grade_on_cluster``):
once with ``tcp://``, once with ``tls://`` and the course's certificates
(``python -m grader.certificates``). The arms take turns, tcp tls, then tls tcp, so that drift
of a busy machine falls on both; the ratio is TLS / TCP wall time of each pair. The cluster's
start-up (launch until both workers are seen) is timed apart. Both arms must give the same scores.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.cluster_grading import _scores, grade_on_cluster
from benchmarks.common import course_copy, row

BENCH = "cluster tls"
PARTS = ("nbgrader_config.py", "source", "submitted")


def main(pairs: int = 2) -> list[dict]:
    from grader.certificates import make_certificates

    rows, runs = [], {"tcp": [], "tls": []}
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp) / "certs"
        make_certificates(certs)
        for pair in range(1, pairs + 1):
            for arm in (("tcp", "tls") if pair % 2 else ("tls", "tcp")):
                root = course_copy(Path(tmp) / f"{arm}{pair}" / "course", PARTS)
                result = grade_on_cluster(root, log_name="grader", certs=certs if arm == "tls" else None)
                runs[arm].append(result)
                print(f"[{BENCH}] pair {pair}, {arm}: {result['wall']:.1f} s", flush=True)
    reference = _scores(runs["tcp"][0])
    if any(_scores(r) != reference for arm in runs for r in runs[arm]):
        raise RuntimeError("TLS and TCP graded the example class differently")
    what = f"example class ({len(reference)} submissions), fresh copy, release and solution checks included"
    for arm in ("tcp", "tls"):
        for index, result in enumerate(runs[arm], 1):
            rows.append(row(BENCH, f"{arm}, pair {index}", result["wall"], "s",
                            f"python -m grader --scheduler {arm}://, 2 workers on loopback; {what}"))
            rows.append(row(BENCH, f"{arm} start-up, pair {index}", result["startup"], "s",
                            "scheduler and 2 workers launched until the client sees both"))
    ratios = [b["wall"] / a["wall"] for a, b in zip(runs["tcp"], runs["tls"])]
    rows.append(row(BENCH, "TLS / TCP wall time (median of pairs)", statistics.median(ratios), "x",
                    f"pairs taken in turns (tcp tls, tls tcp); each pair's ratio: {', '.join(f'{r:.3f}' for r in ratios)}"))
    return rows


if __name__ == "__main__":
    for figure in main():
        print(figure)
