#!/usr/bin/env bash
# Build the playground and test it in a real browser: bash web/test.sh
# web/build.sh, the native library's answers for the presets, then web/test.mjs in Debian's
# chromium (installed with apt-get when missing and possible) through playwright-core (npm).
# Screenshots go to target/web-screenshots/. Exits 0 with "skipped: why" when the toolchain
# (wasm target, wasm-bindgen-cli, node/npm, chromium) cannot be had here; 1 when a check fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(bash web/build.sh) || { echo "$out"; echo "web: the build failed"; exit 1; }
echo "$out"
case "$out" in *skipped*) exit 0 ;; esac
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium >/tmp/langevin-chromium-apt.log 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/tmp/langevin-chromium-apt.log 2>&1; }
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "web tests skipped: Debian's chromium is not installed and could not be (see /tmp/langevin-chromium-apt.log)"; exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "web tests skipped: node and npm are not installed"; exit 0
fi
if [ ! -d web/node_modules/playwright-core ]; then
  if ! (cd web && npm ci --no-audit --no-fund >/tmp/langevin-npm.log 2>&1); then
    echo "web tests skipped: npm could not install playwright-core (see /tmp/langevin-npm.log)"; exit 0
  fi
fi
answers=$(mktemp)
trap 'rm -f "$answers"' EXIT
cargo run -q --release -p langevin-wasm --example answers -- web/presets.json >"$answers" || { echo "web: the native answers failed"; exit 1; }
node web/test.mjs web/dist "$answers" target/web-screenshots
