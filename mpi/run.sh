#!/usr/bin/env bash
# The MPI build and its tests: bash mpi/run.sh
# Installs Debian's Open MPI (libopenmpi-dev, openmpi-bin) and libclang (for the mpi crate's
# bindgen) when they are missing and apt-get can run, builds `langevin` with --features mpi into
# target/mpi/langevin (the plain target/release/langevin stays the default build), then checks under
# `mpirun --oversubscribe -n 1, 2, 3` that the ranks' run equals the single-process run byte for
# byte, for MALA (the pilot's adapted step), annealed Langevin, BAOAB and the adaptive ODE, and
# that failures stop every rank with the right message.
# Exits 0 when every check passed, 1 when one failed, 0 with "skipped: why" when MPI cannot be
# installed here.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
need() { command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; }
if ! need; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q libopenmpi-dev openmpi-bin libclang-dev >/tmp/langevin-mpi-apt.log 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libopenmpi-dev openmpi-bin libclang-dev >/tmp/langevin-mpi-apt.log 2>&1; }
  fi
fi
if ! need; then
  echo "mpi skipped: Open MPI (mpicc, mpirun) and libclang are not installed and apt-get could not install them (see /tmp/langevin-mpi-apt.log)"
  exit 0
fi
# The MPI binary is built in the main target folder, where only the crates whose features change
# are compiled again (a separate folder rebuilt every dependency: 5 minutes of CI), and copied to
# target/mpi/langevin; the plain binary is copied back over it (building it again would compile
# again every crate that the MPI build's bindgen changed: minutes of CI for the same bytes).
cargo build --release -q -p langevin-cli || { echo "mpi: the plain build failed"; exit 1; }
mkdir -p target/mpi
cp target/release/langevin target/mpi/langevin-single
if ! cargo build --release -q -p langevin-cli --features mpi; then
  echo "mpi: the build with --features mpi failed"
  cp target/mpi/langevin-single target/release/langevin
  exit 1
fi
cp target/release/langevin target/mpi/langevin
cp target/mpi/langevin-single target/release/langevin
if ! cargo clippy -q -p langevin-cli --features mpi --target-dir target/clippy -- -D warnings; then
  echo "mpi: clippy found problems in the MPI code"
  exit 1
fi
single="$root/target/mpi/langevin-single"
bin="$root/target/mpi/langevin"
mpirun_=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpirun_+=(--allow-run-as-root)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail=0
check() { # name, flags...
  local name=$1; shift
  "$single" sample "$@" --out "$name-single.npy" -q 2>"$name-single.log" || { echo "mpi: $name: the single run failed"; fail=1; return; }
  # without mpirun the MPI build is one rank
  "$bin" sample "$@" --out "$name-solo.npy" -q && cmp -s "$name-single.npy" "$name-solo.npy" \
    || { echo "mpi: $name: the MPI build without mpirun differs from the single run"; fail=1; }
  for n in 1 2 3; do
    if "${mpirun_[@]}" -n $n "$bin" --threads 1 sample "$@" --out "$name-$n.npy" --report "$name-$n.json" -q >"$name-$n.log" 2>&1 \
      && cmp -s "$name-single.npy" "$name-$n.npy"; then
      echo "mpi: $name on $n rank(s): the same bytes as one process"
    else
      echo "mpi: $name on $n rank(s) differs from one process (or failed):"; tail -5 "$name-$n.log"; fail=1
    fi
  done
}
check mala --target many-well:dim=8 --sampler mala --particles 10007 --warmup 200 --steps 100 --thin 10 --seed 7
check annealed --target ncsn-toy --sampler annealed --particles 5001 --steps-per-level 20 --seed 3
check baoab --target muller-brown --sampler baoab --temperature 20 --particles 3001 --steps 300 --seed 4
check ode --target ncsn-toy --sampler ode --particles 4001 --seed 5
# Failures: a diverging step stops every rank with the first failing particle's message (the
# single run's), a rank with other flags and --shard under mpirun are refused, nothing is written.
expect_fail() { # name, message, command...
  local name=$1 msg=$2; shift 2
  if "$@" >"$name.log" 2>&1; then echo "mpi: $name should have failed"; fail=1;
  elif ! grep -q -- "$msg" "$name.log"; then echo "mpi: $name failed without '$msg':"; tail -5 "$name.log"; fail=1;
  else echo "mpi: $name refused: $msg"; fi
}
nan_msg=$("$single" sample --target gmm40 --step-size 30 --particles 3000 --steps 50 -q 2>&1 | head -1)
expect_fail diverging "${nan_msg#error: }" "${mpirun_[@]}" -n 3 "$bin" --threads 1 sample --target gmm40 --step-size 30 --particles 3000 --steps 50 -q --out nan.npy
expect_fail other-flags "runs other flags than rank 0" "${mpirun_[@]}" -n 1 "$bin" sample --target gmm40 --particles 3000 --steps 5 --seed 1 -q --out o.npy : -n 1 "$bin" sample --target gmm40 --particles 3000 --steps 5 --seed 2 -q --out o.npy
expect_fail shard "does not apply under mpirun" "${mpirun_[@]}" -n 2 "$bin" sample --target gmm40 --particles 3000 --steps 5 --shard 0/2 -q --out s.npy
for f in nan.npy o.npy s.npy; do
  [ -e "$f" ] && { echo "mpi: a failed run wrote $f"; fail=1; }
done
exit $fail
