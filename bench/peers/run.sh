#!/usr/bin/env bash
# Run the Python peers of `langevin bench` on the same workloads: NumPy and JAX on the ULA
# workload, PyTorch on the DSM workload. Installs them with pip into bench/peers/.venv on first
# use; skips with a message when that is not possible (no network, no venv module). Prints one
# JSON line per peer. Usage: run.sh [--quick]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if [ "${1:-}" = "--quick" ]; then ula_args=(10000 200); dsm_args=(--quick); else ula_args=(); dsm_args=(); fi
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "peers skipped: python3 -m venv is not available" >&2; exit 0
  fi
fi
if ! "$venv/bin/python" -c 'import numpy, jax' 2>/dev/null; then
  if ! "$venv/bin/pip" install -q numpy jax >/dev/null 2>&1; then
    echo "NumPy and JAX peers skipped: pip could not install numpy and jax (offline?)" >&2
  fi
fi
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  # The CPU-only wheel index is the smaller download; fall back to PyPI's default wheel.
  "$venv/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu >/dev/null 2>&1 \
    || "$venv/bin/pip" install -q torch >/dev/null 2>&1 \
    || echo "PyTorch peer skipped: pip could not install torch (offline?)" >&2
fi
if "$venv/bin/python" -c 'import numpy, jax' 2>/dev/null; then
  "$venv/bin/python" "$here/ula_numpy.py" "${ula_args[@]}" || echo "numpy peer failed" >&2
  "$venv/bin/python" "$here/ula_jax.py" "${ula_args[@]}" || echo "jax peer failed" >&2
fi
if "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  "$venv/bin/python" "$here/dsm_torch.py" "${dsm_args[@]}" || echo "pytorch peer failed" >&2
fi
