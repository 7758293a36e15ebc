"""benchmarks/engine_child.py: the shared child loop and runner, with a stand-in engine in this interpreter."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from benchmarks import engine_child

VOCAB = 10

STAND_IN = engine_child.CHILD_PRELUDE + r'''
import math

def generate(n):
    time.sleep(0.001 * n)
    return 0.001, 0.001 * n + 0.001, list(range(n))

def warmup_info(tokens):
    return {"continuation": "x" * len(tokens)}

def logits_of(ids, longest):
    if ids[0] == 99:   # a text the stand-in cannot score: the wrong number of rows
        return np.zeros((1, 10))
    logits = np.zeros((len(ids) - 1, 10))
    logits[np.arange(len(ids) - 1), ids[1:]] = math.log(9.0)   # each next token 9x the others: p = 1/2
    return logits

say({"ready": True, "threads": args["threads"]})
''' + engine_child.CHILD_LOOP


class StandIn(engine_child.EngineChild):
    label = "stand-in engine"

    def child_code(self):
        return STAND_IN


def test_the_shared_loop_times_scores_and_reports_errors():
    with StandIn(Path(sys.executable), {"new_tokens": 4, "threads": 2}) as child:
        assert child.info == {"ready": True, "threads": 2}
        assert child.warmup()["continuation"] == "xxxx" and child.info["continuation"] == "xxxx"
        answer = child.round()
        assert set(answer) == {"ttft_s", "full_s", "prefill_s"} and answer["full_s"] > answer["prefill_s"]
        ppl, tokens = child.perplexity([[1, 2, 3], [4, 5], [6]])
        assert tokens == 3 and ppl == pytest.approx(2.0)   # token-weighted: every target at p = 1/2
        with pytest.raises(RuntimeError, match="stand-in engine child: perplexity: ValueError: logits for 1"):
            child.perplexity([[99, 1, 2]])
        with pytest.raises(RuntimeError, match="unknown command 'bogus'"):
            child._ask("bogus")
        child.round()   # the child is still alive after the errors
        summary = child.summary()
    assert summary["label"] == "stand-in engine" and summary["rounds"] == 2
    assert not math.isnan(summary["decode_tok_s"])


def test_venv_python_needs_the_interpreter_and_the_package(tmp_path):
    assert engine_child.venv_python(tmp_path, "lib/*/pkg") is None
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    assert engine_child.venv_python(tmp_path, "lib/*/pkg") is None
    (tmp_path / "lib" / "python3.11" / "pkg").mkdir(parents=True)
    assert engine_child.venv_python(tmp_path, "lib/*/pkg") == tmp_path / "bin" / "python"
