#!/usr/bin/env bash
# Install ONNX Runtime GenAI into the benchmarks' own environment.
#
#   bash benchmarks/build_ort_genai.sh
#
# It is a row of benchmarks/quantization_study.py (see benchmarks/ort_genai_reference.py): the
# course's 8-bit weight-only scheme in a graph built for decoding, with a C++ decode loop. It
# lives in benchmarks/.ort-genai-venv/ (ignored by git) because its model builder needs newer
# onnxruntime and transformers than the course pins; the course's .venv/ is untouched, and the
# study skips the row with a message naming this script when it is not installed.
#
# torch is not installed here: the builder reads the weights with the course's torch (pinned
# 2.13.0+cpu; a plain `pip install torch` would pull a multi-GB CUDA build), reached through a
# .pth file that puts the course venv's packages *after* this venv's own, so this venv's
# onnxruntime and transformers win.
#
# Environment:
#   ORT_GENAI_PYTHON   interpreter for the venv (default: the one the course's .venv was made from)
#   ORT_GENAI_VENV     target venv (default benchmarks/.ort-genai-venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ORT_GENAI_VENV:-$ROOT/benchmarks/.ort-genai-venv}"
COURSE_VENV="$ROOT/.venv"
if [[ ! -x "$COURSE_VENV/bin/python" ]]; then
    echo "[build_ort_genai] the course's .venv is missing: run \`make setup\` first" >&2
    exit 1
fi
PY="${ORT_GENAI_PYTHON:-$("$COURSE_VENV/bin/python" -c 'import sys; print(sys._base_executable)')}"
PACKAGES=(onnxruntime-genai==0.18.0 onnxruntime==1.32.0 transformers==5.24.0 onnx==1.23.2 onnx-ir==1.1.0)

echo "[build_ort_genai] python: $PY ($("$PY" --version 2>&1)); venv: $VENV"
start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
fi
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -f "$SITE/zz_course_venv.pth"   # install against this venv alone, then add the course's packages
"$VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}"
"$COURSE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$SITE/zz_course_venv.pth"
"$VENV/bin/python" - <<'PY'
import onnxruntime, onnxruntime_genai, torch, transformers
print(f"[build_ort_genai] onnxruntime-genai {onnxruntime_genai.__version__}, onnxruntime {onnxruntime.__version__}, "
      f"transformers {transformers.__version__}, torch {torch.__version__} (the course's)")
PY
echo "[build_ort_genai] done in $(( $(date +%s) - start )) s"
