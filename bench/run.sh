#!/usr/bin/env bash
# One benchmark run: `langevin bench` and its Python peers (NumPy, JAX, PyTorch) on the same machine,
# then a table with the ratios. Usage: bash bench/run.sh [--quick]
# Writes bench/results.json (ours) and bench/peers.jsonl (peers) as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q
./target/release/langevin bench "$@" --out bench/results.json > /dev/null
bash bench/peers/run.sh "$@" > bench/peers.jsonl
python3 - <<'PY'
import json
ours = json.load(open("bench/results.json"))
allpeers = [json.loads(l) for l in open("bench/peers.jsonl") if l.strip()]
peers = [p for p in allpeers if p["workload"] == "ula-ncsn-toy"]
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
few = next(w for w in ours["workloads"] if w["name"] == "mala-gaussian-100-4chains")
print(f"\n{few['description']}")
print(f"langevin: min bulk ESS {few['min_ess_bulk']:.0f} in {few['seconds']:.4f} s ({few['microseconds_per_step']:.2f} µs/step for all chains) -> {few['min_ess_per_second']:.0f} ESS/s")
for p in [p for p in allpeers if p["workload"] == "mala-gaussian-100-4chains"]:
    print(f"{p['peer']} {p['version']}: min ESS {p['min_ess']:.0f} in {p['seconds']:.4f} s -> {p['min_ess_per_second']:.0f} ESS/s; "
          f"langevin is {few['min_ess_per_second'] / p['min_ess_per_second']:.1f}x")
baoab = next(w for w in ours["workloads"] if w["name"] == "baoab-gaussian-100")
print(f"\n{baoab['description']}")
print(f"min bulk ESS {baoab['min_ess_bulk']:.0f} in {baoab['seconds']:.2f} s -> {baoab['min_ess_per_second']:.0f} ESS/s "
      f"({baoab['ratio_to_mala_ess_per_second']:.1f}x MALA), {baoab['min_ess_per_gradient_evaluation']:.2e} ESS per gradient evaluation, "
      f"kinetic temperature {baoab['kinetic_temperature']:.3f} (kT = 1)")
sg = next(w for w in ours["workloads"] if w["name"] == "sgld-vs-mala-logistic")
print(f"\n{sg['description']}")
fmt = lambda v: "not reached" if v is None else f"{v:.2f} s"
print(f"SGLD (batch 128): {fmt(sg['sgld_seconds_to_tolerance'])} of a {sg['sgld_seconds_run']:.2f} s run; "
      f"full-batch MALA: {fmt(sg['mala_seconds_to_tolerance'])} of a {sg['mala_seconds_run']:.2f} s run "
      f"({sg['mala_seconds_per_step'] * 1000:.1f} ms per step for 4 chains)")
print(f"SGLD-CV (batch 128, control variates at the MAP): {fmt(sg['sgld_cv_seconds_to_tolerance'])} "
      f"(including {sg['sgld_cv_setup_seconds']:.2f} s for the MAP and one full gradient)")
for name in ["sgld", "sgld_cv"]:
    if sg[f"{name}_speedup"] is not None:
        print(f"{name.replace('_', '-').upper()} is {sg[f'{name}_speedup']:.1f}x faster than full-batch MALA to the posterior mean")
    errs = sg[f"{name}_final_error_in_std"]
    ratio = sg[f"{name}_std_over_laplace_std_second_half"]
    print(f"{name.replace('_', '-').upper()} at the end: mean error up to {max(abs(e) for e in errs):.2f} posterior std, "
          f"standard deviations {min(ratio):.2f}-{max(ratio):.2f}x Laplace's")
print(f"MALA at the end: mean error up to {max(abs(e) for e in sg['mala_final_error_in_std']):.2f} posterior std")
dsm = next(w for w in ours["workloads"] if w["name"] == "dsm-moons-mlp256")
torch = next((p for p in allpeers if p["workload"] == "dsm"), None)
print(f"\n{dsm['description']}")
print(f"{'implementation':<24}{'train step':>12}{'score evals/s':>16}{'forward passes/s':>18}")
print(f"{'langevin':<24}{dsm['train_step_seconds'] * 1000:>10.2f}ms{dsm['score_evaluations_per_second']:>16.3e}{dsm['forward_passes_per_second']:>18.1f}")
if torch:
    print(f"{'pytorch ' + torch['version']:<24}{torch['train_step_seconds'] * 1000:>10.2f}ms{torch['score_evaluations_per_second']:>16.3e}{torch['forward_passes_per_second']:>18.1f}")
    print(f"langevin is {torch['train_step_seconds'] / dsm['train_step_seconds']:.2f}x PyTorch's training speed and "
          f"{dsm['score_evaluations_per_second'] / torch['score_evaluations_per_second']:.2f}x its generation speed "
          f"(PyTorch on {torch['threads']} threads)")
else:
    print("(PyTorch peer skipped: see the message above)")
if "train_fraction_of_peak" in dsm:
    print(f"matrix products: training {dsm['train_gemm_gflops']:.0f} GFLOP/s = {100 * dsm['train_fraction_of_peak']:.0f}% of peak, "
          f"generation {dsm['generation_gemm_gflops']:.0f} GFLOP/s = {100 * dsm['generation_fraction_of_peak']:.0f}% of peak")
if "train_fraction_of_sgemm" in dsm:
    print(f"as fractions of the SGEMM throughput measured in this run ({dsm['sgemm_gflops_1024']:.0f} GFLOP/s): "
          f"training {100 * dsm['train_fraction_of_sgemm']:.0f}%, generation {100 * dsm['generation_fraction_of_sgemm']:.0f}%")
obj = next(w for w in ours["workloads"] if w["name"] == "objectives-moons-mlp256")
pt = {p["objective"]: p for p in allpeers if p["workload"] == "objectives"}
print(f"\n{obj['description']}")
print(f"{'objective':<15}{'who':<10}{'train step':>12}{'samples/s':>12}{'nfe':>5}{'MMD':>9}{'floor':>9}{'MMD/floor':>11}")
for o in obj["objectives"]:
    rows = [("langevin", o)] + ([("pytorch", pt[o["objective"]])] if o["objective"] in pt else [])
    for who, r in rows:
        print(f"{o['objective']:<15}{who:<10}{r['train_step_seconds'] * 1000:>10.2f}ms{r['samples_per_second']:>12.0f}{r['generation_nfe']:>5.0f}"
              f"{r['mmd']:>9.4f}{r['mmd_floor']:>9.4f}{r['mmd'] / r['mmd_floor']:>11.2f}")
    if o["objective"] in pt:
        p = pt[o["objective"]]
        print(f"{'':<15}langevin is {p['train_step_seconds'] / o['train_step_seconds']:.2f}x PyTorch per training step and "
              f"{o['samples_per_second'] / p['samples_per_second']:.2f}x per generated sample")
if not pt:
    print("(PyTorch objectives peer skipped: see the message above)")
dif = next(w for w in ours["workloads"] if w["name"] == "diffusion-exact-scores")
kd = [p for p in allpeers if p["workload"] == "diffusion-exact-scores"]
print(f"\n{dif['description']}")
if kd:
    print(f"peer: k-diffusion {kd[0]['version']}")
print(f"{'target':<10}{'sampler':<17}{'nfe':>5}{'langevin samples/s':>20}{'k-diffusion':>13}{'ratio':>8}"
      f"{'MMD ours / theirs':>22}{'weights TV ours / theirs':>26}")
for t in dif["targets"]:
    for r in t["runs"]:
        p = next((p for p in kd if p["target"] == t["target"] and p["sampler"] == r["sampler"]), None)
        theirs = f"{p['samples_per_second']:>13.3e}{r['samples_per_second'] / p['samples_per_second']:>7.1f}x" if p else f"{'-':>13}{'':>8}"
        mm = f"{r['mmd']:.4f} / {p['mmd']:.4f}" if p else f"{r['mmd']:.4f}"
        tv = f"{r['mode_weight_tv']:.4f} / {p['mode_weight_tv']:.4f}" if p else f"{r['mode_weight_tv']:.4f}"
        print(f"{t['target']:<10}{r['sampler']:<17}{r['nfe']:>5}{r['samples_per_second']:>20.3e}{theirs}{mm:>22}{tv:>26}")
    print(f"{t['target']:<10}{'exact (floor)':<17}{'':>5}{'':>20}{'':>13}{'':>8}{t['mmd_floor']:>22.4f}{t['mode_weight_tv_floor']:>26.4f}")
if not kd:
    print("(k-diffusion peer skipped: see the message above)")
PY
