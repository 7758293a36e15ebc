#!/usr/bin/env bash
# Build llama.cpp (through llama-cpp-python) into the benchmarks' own environment.
#
#   bash benchmarks/build_llama_cpp.sh
#
# It is the reference row of benchmarks/quantization_study.py: the best CPU engine on the
# same GGUF weights the course's embedded model was converted from. It lives in its own
# virtual environment, benchmarks/.llama-cpp-venv/ (ignored by git), so the course's set-up
# (.venv/, requirements.txt) is untouched; nothing of the course needs it, and the study
# skips the row with a message naming this script when it is not built.
#
# The build is from source (--no-binary), for this CPU (-DGGML_NATIVE=ON: AVX2/AVX-512/...
# whatever the compiler finds here), without BLAS (batch-1 decoding does not use it) and
# without the multimodal library (LLAVA_BUILD=OFF; not needed for text generation), and
# without Intel AMX (-mno-amx-*): on the course's build machine (a VM whose CPU reports
# amx_tile/amx_int8) the AMX matmul crashed the first decode (SIGSEGV in ldtilecfg), and the
# reference AMD machine has no AMX. AVX-512/VNNI stay on where the CPU has them.
# Running it again rebuilds llama-cpp-python (--force-reinstall) in the same venv.
#
# Environment:
#   LLAMA_CPP_PYTHON        interpreter for the venv (default: the course's .venv/bin/python,
#                           else python3.11) -- the same Python as the course
#   LLAMA_CPP_VERSION       default 0.3.36
#   LLAMA_CPP_SDIST         a local llama_cpp_python-<version>.tar.gz to build from instead of PyPI
#   LLAMA_CPP_BUILD_JOBS    parallel compile jobs (default 1: a small machine stays usable)
#   LLAMA_CPP_CMAKE_ARGS    extra CMake arguments appended to the defaults
#   LLAMA_CPP_VENV          target venv (default benchmarks/.llama-cpp-venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LLAMA_CPP_VENV:-$ROOT/benchmarks/.llama-cpp-venv}"
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
JOBS="${LLAMA_CPP_BUILD_JOBS:-1}"
if [[ -n "${LLAMA_CPP_PYTHON:-}" ]]; then
    PY="$LLAMA_CPP_PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    # the interpreter the course venv was made from (not the venv itself: no course packages)
    PY="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
else
    PY="python3.11"
fi
CMAKE_ARGS_DEFAULT="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF"
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"   # explicit -mno-* win over -march=native in GCC
export CMAKE_ARGS="$CMAKE_ARGS_DEFAULT -DCMAKE_C_FLAGS='$NO_AMX' -DCMAKE_CXX_FLAGS='$NO_AMX' ${LLAMA_CPP_CMAKE_ARGS:-}"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
export MAKEFLAGS="-j$JOBS"
SOURCE="llama-cpp-python==$VERSION"
if [[ -n "${LLAMA_CPP_SDIST:-}" ]]; then
    SOURCE="$LLAMA_CPP_SDIST"
fi

echo "[build_llama_cpp] python:  $PY ($("$PY" --version 2>&1))"
echo "[build_llama_cpp] venv:    $VENV"
echo "[build_llama_cpp] package: $SOURCE (from source, --no-binary llama-cpp-python)"
echo "[build_llama_cpp] CMAKE_ARGS=$CMAKE_ARGS"
echo "[build_llama_cpp] compile jobs: $JOBS (LLAMA_CPP_BUILD_JOBS)"
start=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[build_llama_cpp] creating $VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# llama-cpp-python's own dependencies (its pyproject.toml), then the package itself, always rebuilt
"$VENV/bin/python" -m pip install --quiet "typing-extensions>=4.5.0" "numpy>=1.20.0" "diskcache>=5.6.1" \
    "jinja2>=2.11.3"
echo "[build_llama_cpp] compiling llama.cpp ($JOBS job(s): about 7 minutes on 2 cores with 1 job) ..."
"$VENV/bin/python" -m pip install --verbose --no-cache-dir --force-reinstall --no-deps \
    --no-binary llama-cpp-python "$SOURCE"

"$VENV/bin/python" - <<'EOF'
import llama_cpp
print(f"[build_llama_cpp] llama_cpp {llama_cpp.__version__}:",
      llama_cpp.llama_print_system_info().decode().strip())
EOF
echo "[build_llama_cpp] done in $(( $(date +%s) - start )) s"
