#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600) on its seed corpus in fuzz/corpus/.
#   bash fuzz/run.sh            # 10 minutes per target
#   bash fuzz/run.sh 30         # a short smoke run (what .ci/run does)
# Installs cargo-fuzz from crates.io when it is missing. cargo-fuzz passes the sanitizer flags
# (-Z...) that only nightly compilers accept; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. Exits 0 when every target ran without a crash, 1 on a crash (the reproducer is in
# fuzz/artifacts/TARGET/), 2 when the fuzzing toolchain cannot be built here (a message says why).
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  if ! cargo install cargo-fuzz --locked >/tmp/langevin-cargo-fuzz-install.log 2>&1; then
    echo "skipped: cargo-fuzz could not be installed (see /tmp/langevin-cargo-fuzz-install.log)"
    exit 2
  fi
fi
if ! cargo fuzz build -O >/tmp/langevin-fuzz-build.log 2>&1; then
  echo "skipped: the fuzz targets did not build with this toolchain (see /tmp/langevin-fuzz-build.log)"
  exit 2
fi
status=0
for target in expression target_toml readers run_loader; do
  # The corpus grows in a scratch copy; the repository keeps only the hand-made seeds.
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  # -rss_limit_mb: inputs that ask for more memory than the checks allow would be bugs.
  if cargo fuzz run -O "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=4096 \
      -print_final_stats=1 >"/tmp/langevin-fuzz-$target.log" 2>&1; then
    runs="$(grep -m1 'stat::number_of_executed_units' "/tmp/langevin-fuzz-$target.log" | awk '{print $2}')"
    cov="$(grep -o 'cov: [0-9]*' "/tmp/langevin-fuzz-$target.log" | tail -1)"
    echo "fuzz $target: ${seconds}s, ${runs:-?} inputs, ${cov:-cov: ?}, no crash"
  else
    echo "fuzz $target: CRASH; see /tmp/langevin-fuzz-$target.log and fuzz/artifacts/$target/"
    tail -30 "/tmp/langevin-fuzz-$target.log"
    status=1
  fi
  rm -rf "$work"
done
exit $status
