#!/usr/bin/env bash
# The GPU measurements of docs/IMAGES.md in one prepared run: langevin's U-Net training and
# sampling steps on the GPU (`bench --only unet --device cuda`, which also measures the GPU's
# f32 matrix-product rate) beside the same network in PyTorch (bench/peers/unet_torch.py).
#
#   here, on the CPU machine:   bash scripts/cuda-build.sh && bash scripts/gpu-bench.sh --pack
#   there, on the GPU machine:  bash scripts/gpu-bench.sh        (the folder .gpu travels along)
#
# --pack strips the CUDA binary and compresses it into .gpu/langevin.gz (about 20 MB instead of
# 160), small enough to travel with the source. On the GPU machine the binary needs the CUDA 13
# libraries it was linked with (runtime, cuBLAS, cuRAND, NVRTC): they are looked for in that
# machine's Python packages (PyTorch's CUDA 13 wheels ship them), else in the toolkit
# cuda-build.sh assembled. Results go to $OUT (or target/gpu-bench): nvidia-smi.txt, log.txt,
# unet-langevin.json, unet-torch.jsonl. GPU_BENCH_QUICK=1 runs the small workloads (a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu
if [ "${1:-}" = "--pack" ]; then
  bin=target/cuda/release/langevin
  [ -x "$bin" ] || { echo "gpu-bench: no $bin; build it first: bash scripts/cuda-build.sh" >&2; exit 1; }
  mkdir -p "$PACK"
  strip -o "$PACK/langevin" "$bin"
  gzip -f -1 "$PACK/langevin"
  echo "gpu-bench: $(du -h "$PACK/langevin.gz" | cut -f1) in $PACK/langevin.gz; carry $PACK to the GPU machine"
  exit 0
fi
out=${OUT:-target/gpu-bench}
mkdir -p "$out"
if ! nvidia-smi > "$out/nvidia-smi.txt" 2>&1; then
  echo "gpu-bench: nvidia-smi does not answer: this machine has no usable NVIDIA GPU; run this script on the GPU machine" >&2
  exit 1
fi
if [ ! -f "$PACK/langevin.gz" ]; then
  echo "gpu-bench: no $PACK/langevin.gz; on the build machine run bash scripts/cuda-build.sh && bash scripts/gpu-bench.sh --pack, and bring $PACK along" >&2
  exit 1
fi
bin=$(mktemp -d)/langevin
gunzip -c "$PACK/langevin.gz" > "$bin"
chmod +x "$bin"
py=${PYTHON:-python3}
libs=$("$py" - <<'PY' || true
import os, site
want = {"libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13", "libcurand.so.10", "libnvrtc.so.13"}
dirs = []
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for d, _, files in os.walk(os.path.join(root, "nvidia")):
        if want & set(files) and d not in dirs:
            dirs.append(d)
print(":".join(dirs))
PY
)
[ -d target/cuda-toolkit/home/lib64 ] && libs="${libs:+$libs:}$PWD/target/cuda-toolkit/home/lib64"
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$bin" | grep -q "not found"; then
  echo "gpu-bench: the CUDA binary's libraries are missing here (LD_LIBRARY_PATH=$LD_LIBRARY_PATH):" >&2
  ldd "$bin" | grep "not found" >&2
  exit 1
fi
quick=()
[ "${GPU_BENCH_QUICK:-0}" = 1 ] && quick=(--quick)
"$bin" --version | tee "$out/log.txt"
"$bin" bench --only unet --device cuda --repeats 3 -q "${quick[@]}" --out "$out/unet-langevin.json" 2>&1 | tee -a "$out/log.txt"
PYTHONUNBUFFERED=1 "$py" bench/peers/unet_torch.py --device cuda "${quick[@]}" 2>&1 | tee "$out/unet-torch.jsonl"
echo "gpu-bench: results in $out"
