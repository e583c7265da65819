//! `langevin bench`: fixed workloads, timed, printed as JSON (see BENCHMARKS.md).

use crate::report;
use anyhow::Result;
use clap::Args;
use langevin::sampler::{self, Init, Mala, RunConfig, Ula};
use langevin::target::builtin;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Small workloads (seconds instead of a minute), to check that everything runs.
    #[arg(long)]
    pub quick: bool,
    /// Timed repetitions of each workload; the best is reported with the median.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub repeats: usize,
    /// Also write the JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seed of the runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Floating-point operations per ULA particle-step on `ncsn-toy` (d = 2, K = 2), counted from
/// the code (an FMA counts 2, a division or square root 1, compares and bit operations 0):
/// score kernel 85 (distances 16, logits 4, two exps with their shift and sum 48, weighted
/// component scores 14, normalization 3), Box–Muller for 2 normals 57, update 8,
/// finiteness check 4.
pub const ULA_NCSN_FLOPS_PER_PARTICLE_STEP: f64 = 154.0;

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The clock the cores really run at while all of them are busy, in GHz: every worker thread
/// times a chain of dependent integer additions (one cycle each on x86-64). /proc/cpuinfo only
/// gives the nominal clock, which boost makes far from the truth (2.6 GHz nominal, 4.0 GHz
/// measured on the development machine).
#[cfg(target_arch = "x86_64")]
fn measure_clock_ghz() -> Option<f64> {
    fn one() -> f64 {
        const ITERS: u64 = 4_000_000;
        let start = std::time::Instant::now();
        let mut x: u64 = 0;
        for _ in 0..ITERS {
            // SAFETY: register-only additions; no memory is touched.
            unsafe {
                std::arch::asm!(
                    "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1",
                    "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1",
                    "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1",
                    "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1", "add {0}, 1",
                    inout(reg) x,
                );
            }
        }
        assert_eq!(x, ITERS * 20);
        (ITERS * 20) as f64 / start.elapsed().as_secs_f64() / 1e9
    }
    let per_thread = rayon::broadcast(|_| one());
    Some(per_thread.iter().sum::<f64>() / per_thread.len() as f64)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure_clock_ghz() -> Option<f64> {
    None
}

/// f32 lanes of one FMA instruction: 16 with AVX-512, 8 with AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
fn fma_lanes() -> Option<f64> {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Some(16.0)
    } else if std::arch::is_x86_feature_detected!("fma") {
        Some(8.0)
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_lanes() -> Option<f64> {
    None
}

/// Peak f32 GFLOP/s of the FMA units: two FMA pipes per core at the measured clock, 16 lanes
/// with AVX-512, 8 with AVX2 (an FMA = 2 flops). Zen 5 also has two FP-add pipes, which this
/// peak leaves out, so it is a conservative denominator for code that mixes adds and FMAs.
fn peak_gflops(threads: usize) -> Option<(f64, String)> {
    let ghz = measure_clock_ghz()?;
    let lanes = fma_lanes()?;
    let g = threads as f64 * 2.0 * lanes * 2.0 * ghz;
    Some((g, format!("{threads} cores × 2 FMA pipes × {lanes} f32 lanes × 2 flops × {ghz:.2} GHz (measured)")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Run the workloads and print the JSON (the output is the point, so `--quiet` changes nothing).
pub fn run(a: &BenchArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    let repeats = a.repeats.max(1);
    let mut workloads = Vec::new();

    // 1. ULA on the NCSN toy.
    let toy = builtin::build("ncsn-toy", &[])?;
    let (n, steps) = if a.quick { (10_000, 200) } else { (100_000, 1000) };
    let cfg = RunConfig { particles: n, steps, step_size: 0.1, seed: a.seed, ..Default::default() };
    let kernel = Ula::new(toy.as_ref(), true);
    let mut rates = Vec::new();
    let mut mode_weight = 0.0;
    for _ in 0..repeats {
        let out = sampler::run(&kernel, &toy.default_init(), &cfg)?;
        rates.push(out.particle_steps as f64 / out.seconds);
        mode_weight = langevin::metrics::mode_weights(out.samples.view(), toy.mixture().expect("mixture"))[0];
    }
    let best = rates.iter().cloned().fold(0.0, f64::max);
    let gflops = best * ULA_NCSN_FLOPS_PER_PARTICLE_STEP / 1e9;
    let mut ula = json!({
        "name": "ula-ncsn-toy",
        "description": format!("ULA on ncsn-toy, {n} particles × {steps} steps, τ = 0.1, f32"),
        "particle_steps_per_second": best,
        "particle_steps_per_second_median": median(rates.clone()),
        "runs": rates,
        "flops_per_particle_step": ULA_NCSN_FLOPS_PER_PARTICLE_STEP,
        "gflops": gflops,
        "mode_weight_of_(5,5)": mode_weight,
    });
    if let Some((peak, how)) = peak_gflops(threads) {
        ula["peak_gflops_estimate"] = json!(peak);
        ula["peak_assumption"] = json!(how);
        ula["fraction_of_peak"] = json!(gflops / peak);
    }
    workloads.push(ula);

    // 2. MALA on a 100-d Gaussian: minimum bulk ESS per second of sampling.
    let spec = "gaussian:dim=100,cond=10";
    let gauss = builtin::build("gaussian", &[("dim".into(), 100.0), ("cond".into(), 10.0)])?;
    let (chains, steps, warmup) = if a.quick { (64, 1000, 300) } else { (64, 10_000, 1000) };
    let mala = Mala::new(gauss.as_ref());
    // Warm-up once (adapting the step size), then time the sampling from the warmed-up state.
    let warm = sampler::run(
        &mala,
        &gauss.default_init(),
        &RunConfig {
            particles: chains,
            warmup,
            steps: 1,
            seed: a.seed,
            step_size: 0.01,
            adapt: Some(0.574),
            ..Default::default()
        },
    )?;
    let start = Init::Rows(Arc::new(warm.samples.clone()));
    let mut results = Vec::new();
    for r in 0..repeats.min(3) {
        let out = sampler::run(
            &mala,
            &start,
            &RunConfig {
                particles: chains,
                steps,
                thin: Some(1),
                seed: a.seed + 1 + r as u64,
                step_size: warm.step_size,
                ..Default::default()
            },
        )?;
        let diag = report::chain_diagnostics(out.samples.view(), chains);
        let ess = diag["ess_bulk_min"].as_f64().unwrap_or(f64::NAN);
        results.push((
            ess / out.seconds,
            ess,
            out.seconds,
            out.acceptance_rate().unwrap_or(f64::NAN),
            diag["rhat_max"].clone(),
        ));
    }
    let best = results.iter().cloned().fold(results[0].clone(), |b, r| if r.0 > b.0 { r } else { b });
    workloads.push(json!({
        "name": "mala-gaussian-100",
        "description": format!("MALA on {spec}, {chains} chains × {steps} steps after {warmup} warm-up steps (step size adapted to acceptance 0.574)"),
        "min_ess_per_second": best.0,
        "min_ess_per_second_runs": results.iter().map(|r| r.0).collect::<Vec<_>>(),
        "min_ess_bulk": best.1,
        "seconds": best.2,
        "min_ess_per_gradient_evaluation": best.1 / (chains * steps) as f64,
        "acceptance_rate": best.3,
        "step_size": warm.step_size,
        "rhat_max": best.4,
    }));

    let result = json!({
        "langevin_version": env!("CARGO_PKG_VERSION"),
        "threads": threads,
        "cpu": cpu_model(),
        "quick": a.quick,
        "workloads": workloads,
    });
    if let Some(p) = &a.out {
        report::write(p, &result)?;
    }
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
