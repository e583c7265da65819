#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600) on its seed corpus in fuzz/corpus/.
#   bash fuzz/run.sh            # 10 minutes per target
#   bash fuzz/run.sh --smoke 20 # a short smoke run of a quick build (what .ci/run does)
#   bash fuzz/run.sh 600 readers expression   # only these targets
# Installs cargo-fuzz from crates.io when it is missing. cargo-fuzz passes the sanitizer flags
# (-Z...) that only nightly compilers accept; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. Exits 0 when every target ran without a crash, 1 on a crash (the reproducer is in
# fuzz/artifacts/TARGET/; the logs are in a fresh folder that the output names), 2 when the
# fuzzing toolchain cannot be built here (a message says why).
set -uo pipefail
cd "$(dirname "$0")"
# --smoke (what .ci/run uses): build the targets unoptimized, with debug assertions and overflow
# checks, without AddressSanitizer: 3.5 minutes to build on 2 cores instead of 10 for the
# optimized ASan build, at a similar rate of inputs for the loaders (half for the parsers).
build=(-O)
if [ "${1:-}" = "--smoke" ]; then build=(--dev -s none); shift; fi
seconds="${1:-600}"
shift || true
targets="${*:-expression target_toml readers run_loader}"
export RUSTC_BOOTSTRAP=1
# Logs go to a folder of this run's own, so that two runs never mix theirs.
logs="$(mktemp -d)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  if ! cargo install cargo-fuzz --locked >$logs/install.log 2>&1; then
    echo "skipped: cargo-fuzz could not be installed (see $logs/install.log)"
    exit 2
  fi
fi
if ! cargo fuzz build "${build[@]}" >$logs/build.log 2>&1; then
  # A compile error in the targets or the crates is ours to fix; anything else (no sanitizer
  # runtime, no C++ compiler for libFuzzer) is the toolchain's, and the run is skipped.
  if grep -q '^error\[E' "$logs/build.log"; then
    echo "fuzz targets do not compile:"
    grep -A5 '^error\[E' "$logs/build.log" | head -40
    exit 1
  fi
  echo "skipped: the fuzzing toolchain does not build here (see $logs/build.log)"
  exit 2
fi
status=0
for target in $targets; do
  # The corpus grows in a scratch copy; the repository keeps only the hand-made seeds.
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  # -rss_limit_mb: inputs that ask for more memory than the checks allow would be bugs.
  if cargo fuzz run "${build[@]}" "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=4096 \
      -print_final_stats=1 >"$logs/$target.log" 2>&1; then
    runs="$(grep -m1 'stat::number_of_executed_units' "$logs/$target.log" | awk '{print $2}')"
    cov="$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -1)"
    echo "fuzz $target: ${seconds}s, ${runs:-?} inputs, ${cov:-cov: ?}, no crash"
  else
    echo "fuzz $target: CRASH; see $logs/$target.log and fuzz/artifacts/$target/"
    tail -30 "$logs/$target.log"
    status=1
  fi
  rm -rf "$work"
done
exit $status
