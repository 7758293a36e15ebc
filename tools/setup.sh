#!/usr/bin/env bash
# Set up the course on a fresh machine; a second run finds everything in place.
#   .venv/          virtual environment with the pinned requirements + helpers (editable)
#   models/         the embedded SmolLM2-135M-Instruct and the tiny test model
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
start=$(date +%s)

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi

# Reinstall only when the pins change: the stamp holds a hash of what was installed.
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
have="$(cat .venv/.setup-stamp 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    echo "[setup] installing requirements.txt (first run: a few minutes)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    .venv/bin/python -m pip check
    echo "$want" > .venv/.setup-stamp
else
    echo "[setup] requirements already installed"
fi

.venv/bin/python -m tools.prepare_models
echo "[setup] done in $(( $(date +%s) - start )) s"
