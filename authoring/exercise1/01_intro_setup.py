# %% [markdown]
# # Exercise 1: generation latency, throughput and INT8 quantization
#
# How fast does a language model write, and what makes it faster without making it worse?
# This notebook answers both questions with measurements you can trust:
#
# **Part A, measuring.** Turn a precision request into a real dtype (with a CPU guard), load a
# model, time `generate` correctly (warm-up, `inference_mode`, synchronisation, only new tokens
# counted), sweep the prompt length and the numeric precision, then split one call into its
# prefill (time to first token) and its decode steps (time per output token).
#
# **Part B, speeding up.** Quantize the model to INT8 with Optimum and ONNX Runtime, ablate
# the KV cache and the padding side, batch requests, check that quality held with perplexity,
# probe awkward prompts, and gather everything in one table with takeaways computed from it.
#
# **Points: 54 in total.** Each graded part names its points. Visible tests help you;
# hidden tests, run when your notebook is graded, do the real checking.
#
# **Profiles.** On your laptop the notebook uses SmolLM2-135M-Instruct (the `full` profile:
# about 5 minutes on a quiet 2-core machine in the course's recorded run, several times that when
# other programs share the cores). When it is graded, or with `COURSE_PROFILE=fast`, it uses a
# tiny random model with the same tokenizer: the text is gibberish and the perplexity huge,
# which is expected. The tests always use the tiny model or stand-ins.

# %% [readonly id=setup]
import atexit
import contextlib
import gc
import math
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import helpers  # import before transformers: switches hub ids to offline mode when there is no network
from helpers import quantization as hq
from helpers.texts import BASE_PROMPT, EDGE_PROMPTS, REFERENCE_PROMPT, eval_texts

import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _physical_cores() -> int:
    """Threads to use: OMP_NUM_THREADS when set (a grader running several notebooks at once
    gives each its share this way), else the physical cores (hyper-threads share one core's
    arithmetic units); at least 1."""
    requested = os.environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    try:
        import psutil
        count = psutil.cpu_count(logical=False)
    except Exception:
        count = None
    return max(1, int(count or os.cpu_count() or 1))


# One thread count for the whole notebook, for PyTorch and ONNX Runtime alike: letting each
# library pick its own, or changing it between arms, makes timings noisy and unfair. (While an
# ONNX Runtime model from `hq.load_ort` generates, torch only does the bookkeeping of each step and
# runs on one thread: two thread pools spinning on the same cores slow each other down.)
NUM_THREADS = _physical_cores()
torch.set_num_threads(NUM_THREADS)
torch.manual_seed(0)
PROFILE = helpers.get_profile()
DEVICE = helpers.pick_device()
CANDIDATES = helpers.model_candidates()
# Repeats for the "try it" cells of Part B: one in a graded run (the tests re-measure), all otherwise.
TRY_REPEATS = 1 if PROFILE.is_fast else PROFILE.repeats
# ONNX exports and quantized models, kept outside the assignment folder (they are hundreds of MB).
# A student's full run keeps them in a cache folder and reuses the export; a graded run starts empty.
WORK_DIR = (Path(tempfile.mkdtemp(prefix="exercise1-")) if PROFILE.is_fast
            else Path.home() / ".cache" / "llm-course" / "exercise1")
if PROFILE.is_fast:
    atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)


@contextlib.contextmanager
def scratch_folder():
    """Run a block in an empty temporary working folder (the tests use it, so that their small
    runs save their plots there and never overwrite the ones in your artifacts/ folder)."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="exercise1-test-") as folder:
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(previous)


print(f"profile={PROFILE.name} | device={helpers.describe_device(DEVICE)} | torch threads={NUM_THREADS} | "
      f"torch {torch.__version__} | transformers {transformers.__version__}")

