"""Where the course keeps things on disk.

helpers is installed editable, so ``REPO_ROOT`` is the checkout that holds it,
whatever folder a notebook runs from (source/, release/, autograded/...).
``COURSE_MODELS_DIR`` moves the model folder elsewhere (e.g. a shared disk).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("COURSE_MODELS_DIR", REPO_ROOT / "models"))
