"""Course helpers: devices, models, timing tools, texts, plots and artifacts.

Import it before transformers: when the hub does not answer, helpers switches on offline mode
so hub ids fail at once instead of waiting for network time-outs (see ``helpers.hub``). The hub
is probed once, just before the first import of a hub library (``transformers``,
``huggingface_hub``, ``optimum``), or at once when one is already imported.

The names below are loaded on first use, so ``import helpers.paths`` (the tools, tests and
benchmarks) stays light: no torch, no network.

The graded functions (``_resolve_dtype``, ``time_generate``,
``evaluate_perplexity``...) are not here: students write them.
"""
from __future__ import annotations

import importlib

from . import hub as _hub

_hub.probe_before_hub_imports()

_SOURCES = {
    "bandwidth": ("measure_memory_bandwidth",),
    "device": ("describe_device", "device_type", "pick_device", "synchronize"),
    "models": ("ModelLoadError", "first_loadable", "load_causal_lm", "local_model_dir", "model_candidates",
               "model_label"),
    "texts": ("BASE_PROMPT", "EDGE_PROMPTS", "EVAL_TEXTS", "REFERENCE_PROMPT", "eval_texts", "long_text"),
    "profile": ("EMBEDDED_DIR", "HUB_MODEL_ID", "Profile", "TINY_DIR", "get_profile", "profile_name"),
    "reporting": ("axis_label", "artifacts_dir", "plot_bars", "plot_columns", "plot_metric", "results_frame",
                  "save_figure", "save_table"),
    "timing": ("TIMED_KEYS", "Timer", "medians_with_iqr", "repeat", "summarize"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}
_SUBMODULES = {"bandwidth", "cpu", "device", "hub", "models", "paths", "profile", "quantization", "reporting", "texts",
               "timing"}

__all__ = [
    "BASE_PROMPT", "EDGE_PROMPTS", "EVAL_TEXTS", "REFERENCE_PROMPT", "eval_texts", "long_text",
    "ModelLoadError", "first_loadable", "load_causal_lm",
    "EMBEDDED_DIR", "HUB_MODEL_ID", "Profile", "TINY_DIR", "Timer", "artifacts_dir", "axis_label",
    "describe_device", "device_type", "get_profile", "local_model_dir", "measure_memory_bandwidth", "model_candidates",
    "model_label", "pick_device",
    "plot_bars", "plot_columns", "plot_metric", "profile_name", "repeat", "results_frame", "save_figure",
    "save_table", "summarize", "synchronize", "TIMED_KEYS", "medians_with_iqr",
]


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
