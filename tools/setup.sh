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

# Debian packages the course needs beyond pip, installed as root with apt-get (CI, a fresh
# container); anyone else is told what is missing and what it costs.
can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; then
        # A fresh image may have no package lists yet.
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 || true
    fi
}

# The grading sandbox (grader/sandbox.py) needs bubblewrap.
if command -v bwrap >/dev/null 2>&1; then
    echo "[setup] sandbox: $(bwrap --version)"
elif can_apt; then
    echo "[setup] sandbox: installing bubblewrap with apt-get"
    apt_install bubblewrap
    if command -v bwrap >/dev/null 2>&1; then
        echo "[setup] sandbox: $(bwrap --version) installed"
    else
        echo "[setup] WARNING: sandbox unavailable: 'apt-get install bubblewrap' failed;" \
             "grading will run student code unsandboxed (see course/grading_security.md)" >&2
    fi
else
    echo "[setup] WARNING: sandbox unavailable: bwrap is not installed and this is not root with apt-get;" \
         "ask an administrator for 'apt-get install bubblewrap' (or your distribution's bubblewrap package)." \
         "Until then grading runs student code unsandboxed (see course/grading_security.md)" >&2
fi

# The browser test (tests/test_browser_roundtrip.py) drives Debian's Chromium with Playwright;
# Playwright's own browser download is not reachable here.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "[setup] browser: chromium found"
elif can_apt; then
    echo "[setup] browser: installing chromium with apt-get (the browser test needs it)"
    apt_install chromium
    if command -v chromium >/dev/null 2>&1; then
        echo "[setup] browser: chromium installed"
    else
        echo "[setup] WARNING: 'apt-get install chromium' failed; the browser test will fail" >&2
    fi
else
    echo "[setup] note: no chromium; the browser round-trip test is skipped (apt-get install chromium to run it)"
fi

# The PostgreSQL gradebook tests (tests/test_postgres_gradebook.py) start a real server with
# Debian's initdb/pg_ctl (under /usr/lib/postgresql/*/bin, not on PATH).
has_initdb() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1; }
if has_initdb; then
    echo "[setup] postgresql: initdb found"
elif can_apt; then
    echo "[setup] postgresql: installing postgresql with apt-get (the PostgreSQL gradebook tests need it)"
    apt_install postgresql
    if has_initdb; then
        echo "[setup] postgresql: installed"
    else
        echo "[setup] WARNING: 'apt-get install postgresql' failed; the PostgreSQL gradebook tests will fail" >&2
    fi
else
    echo "[setup] note: no PostgreSQL server; the PostgreSQL gradebook tests are skipped (apt-get install postgresql to run them)"
fi
# The Slurm grading tests (tests/test_slurm_grading.py) start a one-node Slurm cluster on loopback
# (tools/local_slurm.py) with Debian's slurmctld, slurmd and munge.
has_slurm() {    # the daemons live in /usr/sbin, which a non-login PATH may lack
    for tool in slurmctld slurmd munged sbatch; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || return 1
    done
}
if has_slurm; then
    echo "[setup] slurm: found"
elif can_apt; then
    echo "[setup] slurm: installing slurmctld, slurmd, slurm-client and munge with apt-get (the Slurm grading tests need them)"
    for package in munge slurm-client slurmd slurmctld; do apt_install "$package"; done
    if has_slurm; then
        echo "[setup] slurm: installed"
    else
        echo "[setup] WARNING: 'apt-get install slurmctld slurmd slurm-client munge' failed; the Slurm grading tests will fail" >&2
    fi
else
    echo "[setup] note: no Slurm; the Slurm grading tests are skipped (apt-get install slurmctld slurmd slurm-client munge to run them)"
fi
echo "[setup] done in $(( $(date +%s) - start )) s"
