#!/usr/bin/env bash
# Create the separate virtualenvs of bench/csv_ingest.py's pandas targets (idempotent, quiet).
#
#   bench/.venvs/pandas    the current pandas (3.x: pyarrow-backed strings by default)
#   bench/.venvs/pandas2   pandas 2.x (NumPy object strings: the era of the article's approach)
#
# Both get the same pyarrow version as .venv. pandas is not a dependency of eventfn: it only
# serves as the benchmark's baseline, so it never enters .venv.
#
# Environment: PYTHON (interpreter for the venvs, default python3),
#              PANDAS_SPEC / PANDAS2_SPEC (pip requirements, defaults below),
#              PYARROW_SPEC (default: pyarrow==<the version in .venv>, else pyarrow).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
VENVS="$HERE/.venvs"
PYTHON="${PYTHON:-python3}"
PANDAS_SPEC="${PANDAS_SPEC:-pandas>=3}"
PANDAS2_SPEC="${PANDAS2_SPEC:-pandas>=2.2,<3}"
if [[ -z "${PYARROW_SPEC:-}" ]]; then
    if version="$("$ROOT/.venv/bin/python" -c 'import pyarrow; print(pyarrow.__version__)' 2>/dev/null)"; then
        PYARROW_SPEC="pyarrow==$version"
    else
        PYARROW_SPEC="pyarrow"
    fi
fi
PROBE="import pandas, pyarrow, pyarrow.parquet"

make_venv() {
    local name="$1" spec="$2"
    local venv="$VENVS/$name"
    local stamp="$venv/.installed-$(printf '%s %s' "$spec" "$PYARROW_SPEC" | sha1sum | cut -c1-12)"
    if [[ -f "$stamp" ]] && "$venv/bin/python" -c "$PROBE" 2>/dev/null; then
        return 0
    fi
    echo "bench: creating $venv ($spec, $PYARROW_SPEC)" >&2
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # this machine's pip config names local find-links folders that may be absent: drop the noise
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$spec" "$PYARROW_SPEC" \
        2> >(grep -v "^WARNING: Location 'file:" >&2)
    "$venv/bin/python" -c "$PROBE"
    touch "$stamp"
}

mkdir -p "$VENVS"
make_venv pandas "$PANDAS_SPEC"
make_venv pandas2 "$PANDAS2_SPEC"
