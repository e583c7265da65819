#!/usr/bin/env bash
# Run the Python peers of `langevin bench` on the same workloads: NumPy and JAX on the ULA
# workload, BlackJAX on the few-chain MALA workload, PyTorch on the DSM, flow-matching, EDM and U-Net workloads. Installs them with pip into bench/peers/.venv on first
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
if ! "$venv/bin/python" -c 'import numpy, jax, blackjax' 2>/dev/null; then
  if ! "$venv/bin/pip" install -q numpy jax blackjax >/dev/null 2>&1; then
    echo "NumPy, JAX and BlackJAX peers skipped: pip could not install numpy, jax and blackjax (offline?)" >&2
  fi
fi
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  # The CPU-only wheel index is the smaller download; fall back to PyPI's default wheel.
  "$venv/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu >/dev/null 2>&1 \
    || "$venv/bin/pip" install -q torch >/dev/null 2>&1 \
    || echo "PyTorch peer skipped: pip could not install torch (offline?)" >&2
fi
if "$venv/bin/python" -c 'import torch' 2>/dev/null && ! "$venv/bin/python" -c 'import torchsde, torchdiffeq, scipy, tqdm; import importlib.util as u; assert u.find_spec("k_diffusion")' 2>/dev/null; then
  # k-diffusion's sampler functions need torchsde, torchdiffeq, scipy and tqdm; its training stack
  # (kornia, clip, wandb, ...) is not needed, so the package is installed without dependencies.
  "$venv/bin/pip" install -q scipy tqdm torchsde torchdiffeq >/dev/null 2>&1 \
    && "$venv/bin/pip" install -q --no-deps k-diffusion >/dev/null 2>&1 \
    || echo "k-diffusion peer skipped: pip could not install k-diffusion and its sampling dependencies" >&2
fi
if "$venv/bin/python" -c 'import numpy, jax' 2>/dev/null; then
  "$venv/bin/python" "$here/ula_numpy.py" "${ula_args[@]}" || echo "numpy peer failed" >&2
  "$venv/bin/python" "$here/ula_jax.py" "${ula_args[@]}" || echo "jax peer failed" >&2
fi
# BlackJAX MALA with 4 chains at the step size langevin's warm-up chose (from bench/results.json).
results="$here/../results.json"
if "$venv/bin/python" -c 'import blackjax' 2>/dev/null && [ -f "$results" ]; then
  step=$("$venv/bin/python" -c "import json,sys; w=[w for w in json.load(open(sys.argv[1]))['workloads'] if w['name']=='mala-gaussian-100-4chains']; print(w[0]['step_size'] if w else '')" "$results")
  if [ -n "$step" ]; then
    if [ "${1:-}" = "--quick" ]; then mala_args=(4 2000 500); else mala_args=(4 10000 2000); fi
    "$venv/bin/python" "$here/mala_blackjax.py" "$step" "${mala_args[@]}" || echo "blackjax peer failed" >&2
  fi
fi
if "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  "$venv/bin/python" "$here/dsm_torch.py" "${dsm_args[@]}" || echo "pytorch peer failed" >&2
  "$venv/bin/python" "$here/objectives_torch.py" "${dsm_args[@]}" || echo "pytorch objectives peer failed" >&2
  (cd "$here" && "$venv/bin/python" unet_torch.py "${dsm_args[@]}") || echo "pytorch U-Net peer failed" >&2
fi
# k-diffusion's samplers on the exact mixture denoisers, on langevin's sigma grids.
if "$venv/bin/python" -c 'import torch, torchsde, torchdiffeq, scipy' 2>/dev/null && [ -f "$results" ]; then
  "$venv/bin/python" "$here/diffusion_kdiffusion.py" "$results" || echo "k-diffusion peer failed" >&2
fi
