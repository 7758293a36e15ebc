"""Course helpers: devices, models, timing tools, texts, plots and artifacts.

Import it before transformers: when the hub does not answer, importing
helpers switches on offline mode so hub ids fail at once instead of waiting
for network time-outs (see ``helpers.hub``).

The graded functions (``_resolve_dtype``, ``time_generate``,
``evaluate_perplexity``...) are not here: students write them.
"""
from __future__ import annotations

from . import hub as _hub

_hub.ensure_fast_offline()

from .device import describe_device, device_type, pick_device, synchronize  # noqa: E402
from .models import (  # noqa: E402
    EMBEDDED_DIR, HUB_MODEL_ID, TINY_DIR, ModelLoadError, first_loadable, load_causal_lm,
    model_candidates, model_label,
)
from .texts import BASE_PROMPT, EDGE_PROMPTS, EVAL_TEXTS, REFERENCE_PROMPT, eval_texts, long_text  # noqa: E402
from .profile import Profile, get_profile, profile_name  # noqa: E402
from .reporting import (  # noqa: E402
    axis_label, artifacts_dir, plot_bars, plot_metric, results_frame, save_figure, save_table,
)
from .timing import Timer, repeat, summarize  # noqa: E402

__all__ = [
    "BASE_PROMPT", "EDGE_PROMPTS", "EVAL_TEXTS", "REFERENCE_PROMPT", "eval_texts", "long_text",
    "ModelLoadError", "first_loadable", "load_causal_lm",
    "EMBEDDED_DIR", "HUB_MODEL_ID", "Profile", "TINY_DIR", "Timer", "artifacts_dir", "axis_label",
    "describe_device", "device_type", "get_profile", "model_candidates", "model_label", "pick_device",
    "plot_bars", "plot_metric", "profile_name", "repeat", "results_frame", "save_figure",
    "save_table", "summarize", "synchronize",
]
