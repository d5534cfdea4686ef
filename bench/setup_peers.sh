#!/usr/bin/env bash
# Create the separate virtualenvs of the benchmark's peer runtimes (idempotent, quiet).
#
#   bench/.venvs/ff    Google's functions-framework (requires cloudevents<2: cannot share our venv)
#   bench/.venvs/func  Knative's func-python (hypercorn, cloudevents>=2)
#
# Also tries `apt-get install -y wrk` when running as root and wrk is missing; bench/runtime.py
# falls back to its own asyncio load client when wrk is not there. Never fails because of wrk.
#
# Environment: PYTHON (interpreter for the venvs, default python3),
#              FF_SPEC / FUNC_SPEC (pip requirement of each peer, defaults below).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VENVS="$HERE/.venvs"
PYTHON="${PYTHON:-python3}"
FF_SPEC="${FF_SPEC:-functions-framework>=3.8,<4}"
FUNC_SPEC="${FUNC_SPEC:-func-python==0.8.1}"

make_venv() {
    local name="$1" spec="$2" probe="$3"
    local venv="$VENVS/$name"
    local stamp="$venv/.installed-$(printf '%s' "$spec" | sha1sum | cut -c1-12)"
    if [[ -f "$stamp" ]] && "$venv/bin/python" -c "$probe" 2>/dev/null; then
        return 0
    fi
    echo "bench: creating $venv ($spec)" >&2
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # this machine's pip config names local find-links folders that may be absent: drop the noise
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec" \
        2> >(grep -v "^WARNING: Location 'file:" >&2)
    "$venv/bin/python" -c "$probe"
    touch "$stamp"
}

install_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    [[ "$(id -u)" == "0" ]] || return 0
    command -v apt-get >/dev/null 2>&1 || return 0
    echo "bench: installing wrk (apt-get); the asyncio client is used if this fails" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || true
    fi
    return 0
}

mkdir -p "$VENVS"
make_venv ff "$FF_SPEC" "import functions_framework, gunicorn"
make_venv func "$FUNC_SPEC" "import func_python.cloudevent, hypercorn"
install_wrk
