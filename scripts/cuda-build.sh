#!/usr/bin/env bash
# Build the CUDA binary of langevin (`--features cuda`) on a machine without a system CUDA
# toolkit, from NVIDIA's CUDA 13.0 wheels on PyPI. The default build never needs any of this.
#
#   bash scripts/cuda-build.sh            # toolkit in target/cuda-toolkit, binary in target/cuda/release/langevin
#   eval "$(bash scripts/cuda-build.sh --env)"   # the library path the binary needs at run time
#
# Why each step (docs/IMAGES.md has the longer story):
# - CUDA 13.0 and not newer: driver 580 runs PTX up to CUDA 13.0.
# - The wheels put one toolkit under site-packages/nvidia/cu13 (bin/nvcc, nvvm/, include/, lib/)
#   with versioned libraries only (libcublas.so.13); the linker wants libcublas.so, so a
#   CUDA_HOME is assembled from links.
# - candle links the driver library (cudarc's dynamic-linking) and no wheel ships libcuda.so:
#   a stub with every driver entry point of the wheels' cuda.h is made for the link only (its
#   soname is libcuda.so.1, so at run time the machine's real driver is the one loaded).
# - CUDARC_CUDA_VERSION tells cudarc which API to bind; CUDA_COMPUTE_CAP which GPU to compile
#   candle's kernels for (90: H100/H200; override for another GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
TK=${LANGEVIN_CUDA_TOOLKIT:-$PWD/target/cuda-toolkit}
HOME_DIR="$TK/home"

if [ "${1:-}" = "--env" ]; then
  echo "export LD_LIBRARY_PATH=\"$HOME_DIR/lib64\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  exit 0
fi

WHEELS=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
)

if [ ! -x "$HOME_DIR/bin/nvcc" ] || [ ! -e "$TK/stubs/libcuda.so" ]; then
  echo "cuda-build: installing the CUDA 13.0 wheels into $TK/venv"
  python3 -m venv "$TK/venv"
  "$TK/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${WHEELS[@]}"
  SP=$("$TK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  CU="$SP/nvidia/cu13"
  [ -x "$CU/bin/nvcc" ] || { echo "cuda-build: no nvcc in $CU: the wheels' layout changed" >&2; exit 1; }
  rm -rf "$HOME_DIR" && mkdir -p "$HOME_DIR/lib64" "$TK/stubs"
  for d in bin include nvvm; do ln -sfn "$CU/$d" "$HOME_DIR/$d"; done
  for f in "$CU"/lib/*.so.* "$CU"/lib/*.a; do
    base=${f##*/}
    ln -sf "$f" "$HOME_DIR/lib64/$base"
    case "$base" in *.so.*) ln -sf "$f" "$HOME_DIR/lib64/${base%%.so.*}.so" ;; esac
  done
  ln -sfn "$HOME_DIR/lib64" "$HOME_DIR/lib"
  # The driver stub: every cu* function cuda.h declares, under its plain and versioned names.
  {
    gcc -E -P -x c "$CU/include/cuda.h" -I"$CU/include"
    gcc -E -P -x c -D__CUDA_API_VERSION_INTERNAL "$CU/include/cuda.h" -I"$CU/include"
  } | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u \
    | awk '{ print "int " $1 "(void) { return 999; }" }' > "$TK/stubs/libcuda-stub.c"
  gcc -shared -fPIC -o "$TK/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$TK/stubs/libcuda-stub.c"
  echo "cuda-build: driver stub with $(grep -c . "$TK/stubs/libcuda-stub.c") entry points"
fi

export CUDA_HOME="$HOME_DIR" CUDA_PATH="$HOME_DIR" CUDA_ROOT="$HOME_DIR"
export PATH="$HOME_DIR/bin:$PATH"
export LIBRARY_PATH="$HOME_DIR/lib64:$TK/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$HOME_DIR/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CUDARC_CUDA_VERSION=13000
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
nvcc --version | tail -2
echo "cuda-build: cargo build --release -p langevin-cli --features cuda (compute capability $CUDA_COMPUTE_CAP)"
cargo build --release -p langevin-cli --features cuda --target-dir target/cuda
BIN=target/cuda/release/langevin
# Proof of the build: the binary links the CUDA libraries and starts. Without an NVIDIA driver
# (no libcuda.so.1 here) it cannot start at all, so the probe runs it against the link stub,
# whose every call fails: --device cuda must then be refused with the driver's error.
ldd "$BIN" | grep -E 'libcuda|libcublas|libcurand|libnvrtc|libcudart' || true
PROBE_ENV=()
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
  echo "cuda-build: no NVIDIA driver on this machine; probing the binary with the link stub"
  PROBE_ENV=(env "LD_LIBRARY_PATH=$TK/stubs:$LD_LIBRARY_PATH")
  ln -sf libcuda.so "$TK/stubs/libcuda.so.1"
fi
"${PROBE_ENV[@]}" "$BIN" --version
probe_dir=$(mktemp -d)
if "${PROBE_ENV[@]}" "$BIN" train --data moons --steps 1 --device cuda --out "$probe_dir/probe" -q 2>"$probe_dir/err"; then
  echo "cuda-build: built, and a training step ran on the GPU"
else
  echo "cuda-build: built; here --device cuda answers: $(head -c 400 "$probe_dir/err")"
fi
rm -rf "$probe_dir"
echo "cuda-build: $BIN (on a GPU machine: eval \"\$(bash scripts/cuda-build.sh --env)\" first)"
