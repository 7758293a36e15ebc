# %% [markdown]
# # Exercise 2: loss and perplexity, measured correctly
#
# A language model gives every possible next token a probability. How good the
# model is at a text comes down to one question: how much probability did it put
# on the token that actually came next, position after position? This notebook
# builds that measurement from the ground up and then uses it on a real model:
#
# 1. token ids into (input, target) pairs, shifted by one position;
# 2. a forward pass to **logits**, and softmax to **probabilities**;
# 3. **cross-entropy** written by hand, checked against PyTorch and against the model's own loss;
# 4. one **training step** (backward, optimizer step, clear the gradients);
# 5. **evaluation**: batched, without gradients, padding excluded, one token-weighted loss over the
#    whole set, and **perplexity** = exp(loss); why a mean of per-batch means drifts away from it;
# 6. texts longer than the model's context: **sliding-window** evaluation with a stride;
# 7. timing a reference `generate`, kept apart from the quality numbers.
#
# **Points: 25 in total.** Each graded part names its points. Visible tests help you;
# hidden tests, run when your notebook is graded, do the real checking.
#
# **Profiles.** On your laptop the notebook uses SmolLM2-135M-Instruct (the `full` profile).
# When it is graded, or with `COURSE_PROFILE=fast`, it uses a tiny random model with the
# same tokenizer so that a run takes seconds; its text is gibberish and its perplexity huge,
# which is expected. The tests always use the tiny model.

# %% [readonly id=setup]
import itertools
import math
import warnings

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

import helpers  # import before transformers: switches hub ids to offline mode when there is no network
from helpers.texts import REFERENCE_PROMPT, eval_texts, long_text

import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="transformers")

torch.manual_seed(0)
PROFILE = helpers.get_profile()
DEVICE = helpers.pick_device()
# Sliding-window settings: a small pretend context, so the effect of the stride shows in seconds.
SLIDING = (dict(min_words=300, max_length=64, strides=(64, 32, 16)) if PROFILE.is_fast
           else dict(min_words=1500, max_length=256, strides=(256, 128, 64)))
RESULTS = {}  # filled as you go; the summary at the end reads it
print(f"profile={PROFILE.name} | device={helpers.describe_device(DEVICE)} | "
      f"torch {torch.__version__} | transformers {transformers.__version__}")

