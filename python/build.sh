#!/usr/bin/env bash
# Build the Python package (maturin, abi3 wheel for CPython >= 3.9), install it into
# python/.venv and run its tests. Usage: bash python/build.sh [--no-test]
# Exits 0 with "skipped: why" when Python 3, venv or pip (PyPI) is not available; any other
# failure (build, tests) exits non-zero.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
if ! command -v python3 >/dev/null 2>&1; then
  echo "python package skipped: no python3 on this machine"; exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "python package skipped: python3 -m venv is not available"; exit 0
  fi
fi
if ! "$venv/bin/python" -c 'import maturin, numpy, pytest' 2>/dev/null; then
  if ! "$venv/bin/pip" install -q "maturin>=1.5,<2" numpy pytest >/dev/null 2>&1; then
    echo "python package skipped: pip could not install maturin, numpy and pytest (offline?)"; exit 0
  fi
fi
cd "$here"
rm -rf "$here/target/wheels"
# The wheel is built in the repository's target folder: the crates it shares with `cargo test
# --release` (candle, gemm, the library crates) are compiled once, not again in python/target
# (6 minutes of CI). The profile and Cargo.lock here match the workspace's for that; maturin
# strips the module.
CARGO_TARGET_DIR="$here/../target" "$venv/bin/maturin" build --release --strip --quiet --out "$here/target/wheels"
wheel=$(ls "$here"/target/wheels/langevin-*.whl | head -1)
"$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel"
if [ "${1:-}" != "--no-test" ]; then
  "$venv/bin/python" -m pytest -q "$here/tests"
fi
