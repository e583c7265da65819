#!/usr/bin/env bash
# Run the Python peers of `langevin bench` (NumPy, JAX) on the same ULA workload.
# Installs them with pip into bench/peers/.venv on first use; skips with a message when that is
# not possible (no network, no venv module). Prints one JSON line per peer.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy, jax' 2>/dev/null; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "peers skipped: python3 -m venv is not available" >&2; exit 0
  fi
  if ! "$venv/bin/pip" install -q numpy jax >/dev/null 2>&1; then
    echo "peers skipped: pip could not install numpy and jax (offline?)" >&2; exit 0
  fi
fi
"$venv/bin/python" "$here/ula_numpy.py" "$@" || echo "numpy peer failed" >&2
"$venv/bin/python" "$here/ula_jax.py" "$@" || echo "jax peer failed" >&2
