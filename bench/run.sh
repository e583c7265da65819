#!/usr/bin/env bash
# One benchmark run: `langevin bench` and its Python peers (NumPy, JAX) on the same machine,
# then a table with the ratios. Usage: bash bench/run.sh [--quick]
# Writes bench/results.json (ours) and bench/peers.jsonl (peers) as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q
./target/release/langevin bench "$@" --out bench/results.json > /dev/null
if [ "${1:-}" = "--quick" ]; then peer_args=(10000 200); else peer_args=(); fi
bash bench/peers/run.sh "${peer_args[@]}" > bench/peers.jsonl
python3 - <<'PY'
import json
ours = json.load(open("bench/results.json"))
peers = [json.loads(l) for l in open("bench/peers.jsonl") if l.strip()]
ula = next(w for w in ours["workloads"] if w["name"] == "ula-ncsn-toy")
mala = next(w for w in ours["workloads"] if w["name"] == "mala-gaussian-100")
print(f"machine: {ours['cpu']}, {ours['threads']} threads")
print(f"\n{ula['description']}")
print(f"{'implementation':<16}{'particle-steps/s':>18}{'langevin is':>14}")
rate = ula["particle_steps_per_second"]
print(f"{'langevin':<16}{rate:>18.3e}{'':>14}")
for p in peers:
    print(f"{p['peer'] + ' ' + p['version']:<16}{p['particle_steps_per_second']:>18.3e}{rate / p['particle_steps_per_second']:>13.1f}x")
if not peers:
    print("(peers skipped: see the message above)")
if "fraction_of_peak" in ula:
    print(f"flops: {ula['flops_per_particle_step']:.0f}/particle-step -> {ula['gflops']:.1f} GFLOP/s = "
          f"{100 * ula['fraction_of_peak']:.1f}% of the {ula['peak_gflops_estimate']:.0f} GFLOP/s peak ({ula['peak_assumption']})")
print(f"\n{mala['description']}")
print(f"min bulk ESS {mala['min_ess_bulk']:.0f} in {mala['seconds']:.2f} s -> {mala['min_ess_per_second']:.0f} ESS/s, "
      f"{mala['min_ess_per_gradient_evaluation']:.2e} ESS per gradient evaluation, acceptance {mala['acceptance_rate']:.3f}")
PY
