"""ONNX Runtime GenAI: the course's 8-bit scheme in a fused graph with a C++ decode loop.

The course's recommended variant (weight-only 8-bit ``MatMulNBits``, block 32, asymmetric,
``accuracy_level=4``, output layer included) runs in ONNX Runtime on the graph Optimum exports,
driven by transformers' ``generate``. ONNX Runtime GenAI's model builder writes the same
quantization (the same ``MatMulNBits`` kernels) into a graph built for decoding: fused
q/k/v projections, ``GroupQueryAttention`` with a preallocated KV cache, fused normalizations
and rotary embeddings; and its generator runs the decode loop in C++. The row shows how much of
the distance to llama.cpp is the graph and the loop rather than the weights' format.

Like llama.cpp it lives in its own environment, ``benchmarks/.ort-genai-venv/``, built once by
``bash benchmarks/build_ort_genai.sh`` (its builder needs a newer onnxruntime and transformers
than the course pins); the study skips the row with a message when it is not built.

Build (``build_model``, run by the study, cached under ``artifacts/quantization_study/ort_genai_int8``):
``python -m onnxruntime_genai.models.builder -i <embedded model> -p int8 -e cpu --extra_options
block_size=32 accuracy_level=4 is_symmetric=false``, then ``genai_config.json`` gets the study's
thread count and ``config.json`` is copied beside the model (for the bytes-per-step count).

Method (the child, on the protocol of ``engine_child``, like llama.cpp's): the prompt's token ids
from the course's tokenizer; greedy search, ``min_length = max_length`` = prompt + N, so exactly
N new tokens; one round = an N-token generation (TTFT and total) and a 1-token one; decode
tok/s = (N-1) / (median t_N - median t_1). Perplexity: each text's ids appended in one step, the
logits of every position read back, log-softmax in float64, token-weighted over all texts.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import engine_child  # noqa: E402
from benchmarks.engine_child import CHILD_LOOP, CHILD_PRELUDE, EngineChild  # noqa: E402
from helpers.paths import REPO_ROOT  # noqa: E402

VENV = REPO_ROOT / "benchmarks" / ".ort-genai-venv"
BUILD_COMMAND = "bash benchmarks/build_ort_genai.sh"
LABEL = "ONNX Runtime GenAI, weight-only 8-bit (same scheme), fused graph, C++ loop"
MODEL_FOLDER = "ort_genai_int8"
BUILDER_OPTIONS = ["-p", "int8", "-e", "cpu", "--extra_options", "block_size=32", "accuracy_level=4",
                   "is_symmetric=false"]


def venv_dir() -> Path:
    """The venv: ``$ORT_GENAI_VENV`` or ``benchmarks/.ort-genai-venv``."""
    return Path(os.environ.get("ORT_GENAI_VENV") or VENV)


def venv_python(venv: Path | None = None) -> Path | None:
    """The venv's interpreter, or None when ONNX Runtime GenAI is not installed there."""
    return engine_child.venv_python(venv or venv_dir(), "lib/python*/site-packages/onnxruntime_genai/__init__.py")


def skip_message(venv: Path | None = None) -> str:
    return (f"{LABEL}: skipped, ONNX Runtime GenAI is not installed in {Path(venv or venv_dir())}; "
            f"install it once with `{BUILD_COMMAND}` (a minute or two)")


def build_model(source_dir: Path, target: Path, threads: int, python: Path | None = None) -> Path:
    """Run the GenAI model builder on the local model folder into ``target``; return ``target``.

    Written into a temporary sibling and renamed at the end, so an interrupted build leaves nothing
    that a later run would take for a finished model."""
    python = python or venv_python()
    if python is None:
        raise FileNotFoundError(skip_message())
    source_dir, target = Path(source_dir), Path(target)
    staged = target.with_name(target.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    command = [str(python), "-m", "onnxruntime_genai.models.builder", "-i", str(source_dir), "-o", str(staged),
               "-c", str(staged / "cache"), *BUILDER_OPTIONS]
    done = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO_ROOT))
    if done.returncode != 0 or not (staged / "model.onnx").is_file():
        raise RuntimeError(f"the ONNX Runtime GenAI builder failed (exit {done.returncode}):\n"
                           f"{(done.stderr or done.stdout)[-2000:]}")
    shutil.rmtree(staged / "cache", ignore_errors=True)
    config_path = staged / "genai_config.json"
    config = json.loads(config_path.read_text())
    config["model"]["decoder"]["session_options"].update(intra_op_num_threads=int(threads), inter_op_num_threads=1)
    config_path.write_text(json.dumps(config, indent=1))
    shutil.copy2(source_dir / "config.json", staged / "config.json")  # for the study's bytes per step
    shutil.rmtree(target, ignore_errors=True)
    staged.rename(target)
    return target


CHILD = CHILD_PRELUDE + r'''
import onnxruntime_genai as og

model = og.Model(args["model_dir"])
prompt = [int(t) for t in args["prompt_ids"]]

def generate(n):
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(prompt) + n, min_length=len(prompt) + n)
    generator = og.Generator(model, params)
    out, first = [], None
    start = time.perf_counter()
    generator.append_tokens(prompt)
    while len(out) < n:
        generator.generate_next_token()
        out.append(int(generator.get_next_tokens()[0]))
        if first is None:
            first = time.perf_counter() - start
    return first, time.perf_counter() - start, out

def warmup_info(tokens):
    return {}

def logits_of(ids, longest):
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(ids) + 1)
    generator = og.Generator(model, params)
    generator.append_tokens(ids)   # one forward pass over the text; the logits of every position
    return np.asarray(generator.get_output("logits"), dtype=np.float64)[0][:-1]

say({"ready": True, "onnxruntime_genai_version": og.__version__, "threads": int(args["threads"]),
     "prompt_tokens": len(prompt)})
''' + CHILD_LOOP


class OrtGenaiRunner(EngineChild):
    """The GenAI child, on the protocol of ``engine_child``: warmup, round, perplexity, summary."""

    label = LABEL

    def __init__(self, model_dir, prompt_ids, new_tokens: int, threads: int, python: Path | None = None):
        python = python or venv_python()
        if python is None:
            raise FileNotFoundError(skip_message())
        super().__init__(python, {"model_dir": str(model_dir), "prompt_ids": [int(t) for t in prompt_ids],
                                  "new_tokens": int(new_tokens), "threads": int(threads)})

    def child_code(self) -> str:
        return CHILD   # read at start, so that tests can put a stand-in child in its place
