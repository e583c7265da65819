#!/usr/bin/env bash
# Build the browser playground into web/dist/: the core library compiled to WebAssembly
# (crates/langevin-wasm), wasm-bindgen's JavaScript glue, and the static page.
#   bash web/build.sh            then: python3 -m http.server -d web/dist 8000
# Installs the wasm32-unknown-unknown target (rustup) and wasm-bindgen-cli at exactly the
# version of the wasm-bindgen crate in Cargo.lock when they are missing. Exits 0 with
# "skipped: why" when they cannot be installed here, 1 when the build fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  if ! rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    echo "web skipped: the wasm32-unknown-unknown target could not be installed (rustup target add)"; exit 0
  fi
fi
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  # A debug build of the tool: it compiles in a quarter of the time and writes the same output.
  if ! cargo install -q --debug wasm-bindgen-cli --version "$want" >/tmp/langevin-wasm-bindgen-install.log 2>&1; then
    echo "web skipped: wasm-bindgen-cli $want could not be installed (see /tmp/langevin-wasm-bindgen-install.log)"; exit 0
  fi
fi
# SIMD128 (every current browser has it: Chrome 91, Firefox 89, Safari 16.4) lets LLVM vectorize
# the kernels; its operations round as the scalar ones do, so the particles stay bit-identical.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" cargo build -q --release -p langevin-wasm --target wasm32-unknown-unknown --target-dir target/wasm
rm -rf web/dist
mkdir -p web/dist
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg target/wasm/wasm32-unknown-unknown/release/langevin_wasm.wasm
cp web/index.html web/app.js web/presets.json web/dist/
echo "built web/dist ($(du -sh web/dist | cut -f1)): python3 -m http.server -d web/dist 8000"
