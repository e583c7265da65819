//! `langevin bench`: fixed workloads, timed, printed as JSON (see BENCHMARKS.md).

use crate::report;
use anyhow::Result;
use clap::Args;
use langevin::sample::ChainDiagnostics;
use langevin::sampler::{self, Init, Mala, RunConfig, Scheme, Ula, Underdamped};
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
    /// Run only these workloads (comma-separated): ula, mala, baoab, sgld, dsm, objectives,
    /// diffusion, unet. Default: all.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Device of the U-Net workload: cpu, or cuda[:N] in a CUDA build (scripts/cuda-build.sh);
    /// a GPU times `--only unet` alone, at GPU batch sizes, against the GPU's measured f32
    /// matrix-product rate.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub device: String,
}

/// The workloads `--only` can name, in the order they run.
const WORKLOADS: [&str; 8] = ["ula", "mala", "baoab", "sgld", "dsm", "objectives", "diffusion", "unet"];

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

/// The measured f32 FMA throughput of one core, in GFLOP/s: 12 independent chains of vector
/// fused multiply-adds (enough to cover the FMA latency on two pipes), AVX-512 or AVX2. This is
/// the machine's practical arithmetic peak. It replaces a clock probe (a chain of dependent
/// integer additions times an assumed two FMA pipes), which read 19.8 GHz on an Intel Xeon
/// whose integer adds retire several per cycle, and could not know that Zen 4 runs AVX-512 at
/// half width.
#[cfg(target_arch = "x86_64")]
fn fma_gflops_one_core() -> Option<(f64, &'static str)> {
    use std::arch::x86_64::*;
    const ITERS: usize = 2_000_000;
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512() -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for v in acc {
            sum = _mm512_add_ps(sum, v);
        }
        _mm512_reduce_add_ps(sum)
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2() -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..ITERS {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0.0f32; 8];
        let mut sum = _mm256_setzero_ps();
        for v in acc {
            sum = _mm256_add_ps(sum, v);
        }
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        out.iter().sum()
    }
    let (lanes, name): (usize, &'static str) = if std::arch::is_x86_feature_detected!("avx512f") {
        (16, "avx512")
    } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        (8, "avx2")
    } else {
        return None;
    };
    let start = std::time::Instant::now();
    // SAFETY: the features were detected above.
    let r = unsafe { if lanes == 16 { avx512() } else { avx2() } };
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(r);
    Some(((ITERS * 12 * lanes * 2) as f64 / secs / 1e9, name))
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_gflops_one_core() -> Option<(f64, &'static str)> {
    None
}

/// Peak f32 GFLOP/s of the machine: the FMA throughput measured on every worker thread at once
/// (so turbo limits with all cores busy are in it), best of three.
fn peak_gflops(threads: usize) -> Option<(f64, String)> {
    let mut best: Option<(f64, &'static str)> = None;
    for _ in 0..3 {
        let per: Vec<Option<(f64, &'static str)>> = rayon::broadcast(|_| fma_gflops_one_core());
        let total: f64 = per.iter().map(|p| p.map_or(0.0, |v| v.0)).sum();
        let name = per.first().copied().flatten()?.1;
        if best.is_none_or(|b| total > b.0) {
            best = Some((total, name));
        }
    }
    let (g, name) = best?;
    Some((
        g,
        format!(
            "measured: {threads} threads × 12 independent {name} FMA chains ({:.1} GFLOP/s per core)",
            g / threads as f64
        ),
    ))
}

/// f32 matrix-product throughput of a GPU in GFLOP/s (candle's matmul: cuBLAS), the best of
/// five 8192 × 8192 × 8192 products after one warm-up, each waited for: the practical peak that
/// the U-Net's rate on that GPU is a fraction of.
fn gpu_matmul_gflops(dev: &candle_core::Device) -> Result<f64> {
    let n = 8192;
    let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), dev)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), dev)?;
    a.matmul(&b)?;
    dev.synchronize()?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let c = a.matmul(&b)?;
        dev.synchronize()?;
        std::hint::black_box(&c);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// SGEMM throughput of the matrix products the networks use (candle's CPU matmul, gemm crate),
/// in GFLOP/s: the best of five 1024 × 1024 × 1024 products.
fn sgemm_gflops() -> Option<f64> {
    use candle_core::{Device, Tensor};
    let n = 1024;
    let a = Tensor::ones((n, n), candle_core::DType::F32, &Device::Cpu).ok()?;
    let b = Tensor::ones((n, n), candle_core::DType::F32, &Device::Cpu).ok()?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let c = a.matmul(&b).ok()?;
        std::hint::black_box(&c);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Some(2.0 * (n * n * n) as f64 / best / 1e9)
}

/// Seconds until the running estimate of the posterior mean is within `tol` posterior standard
/// deviations of `reference` in every coordinate, and stays there. The estimate at a recorded
/// frame f is the mean over chains and over frames f/2..=f (the first half is burn-in).
fn time_to_tolerance(
    traj: &ndarray::Array3<f32>,
    seconds_per_frame: f64,
    reference: &[f64],
    std: &[f64],
    tol: f64,
) -> Option<f64> {
    let (frames, chains, d) = traj.dim();
    // Prefix sums over frames of the chain-averaged parameters.
    let mut prefix = vec![vec![0.0; d]; frames + 1];
    for f in 0..frames {
        for c in 0..d {
            let m = (0..chains).map(|k| traj[[f, k, c]] as f64).sum::<f64>() / chains as f64;
            prefix[f + 1][c] = prefix[f][c] + m;
        }
    }
    let ok = |f: usize| {
        let lo = f / 2;
        (0..d).all(|c| {
            let est = (prefix[f + 1][c] - prefix[lo][c]) / (f + 1 - lo) as f64;
            (est - reference[c]).abs() < tol * std[c]
        })
    };
    let mut first = None;
    for f in 0..frames {
        match (ok(f), first) {
            (true, None) => first = Some(f),
            (false, Some(_)) => first = None,
            _ => {}
        }
    }
    first.map(|f| f as f64 * seconds_per_frame)
}

/// Over the second half of a trajectory (frames × chains × d): the error of the mean and the
/// ratio of the standard deviations, both in units of the reference standard deviations.
fn second_half_stats(traj: &ndarray::Array3<f32>, reference: &[f64], std: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (frames, chains, d) = traj.dim();
    let half = traj.slice(ndarray::s![frames / 2.., .., ..]);
    let flat = half.to_shape(((frames - frames / 2) * chains, d)).expect("contiguous").to_owned();
    let (mean, cov) = langevin::diagnostics::mean_cov(flat.view());
    let err = (0..d).map(|c| (mean[c] - reference[c]) / std[c]).collect();
    let ratio = (0..d).map(|c| cov[[c, c]].sqrt() / std[c]).collect();
    (err, ratio)
}

/// SGLD (minibatches of 128) and full-batch MALA on an N-row synthetic logistic regression,
/// both from θ = 0, both with 4 chains; wall time until the posterior mean is within 0.25
/// posterior standard deviations of the reference (the MAP, whose distance to the posterior mean
/// is O(1/√N) standard deviations).
fn sgld_vs_mala(quick: bool, seed: u64) -> Result<serde_json::Value> {
    use langevin::posterior::{Dataset, Model, Posterior, Schedule, Sgld};
    let rows = if quick { 100_000 } else { 1_000_000 };
    let coef = [-0.5, 1.0, -2.0, 0.5, 0.25];
    let p = coef.len() - 1;
    let mut rng = langevin::rng::LaneRng::new(seed, 0xDA7A);
    let mut x = Vec::with_capacity(rows * p);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<f64> = (0..p).map(|_| rng.normal()).collect();
        let z = coef[0] + row.iter().zip(&coef[1..]).map(|(a, b)| a * b).sum::<f64>();
        y.push(f64::from(u8::from(rng.uniform_f64() < 1.0 / (1.0 + (-z).exp()))));
        x.extend(row);
    }
    let names = (0..p).map(|i| format!("x{i}")).collect();
    let map_start = std::time::Instant::now();
    let post = Posterior::new(Arc::new(Dataset::new(x, p, y, names, "y".into())?), Model::Logistic, 10.0)?;
    let map_seconds = map_start.elapsed().as_secs_f64();
    let reference = post.map().to_vec();
    let std = post.laplace_std();
    let chains = 4;
    let start = Init::Point(vec![0.0]);
    // The tolerance of the SGLD-against-MALA test (tests/posterior.rs).
    let tol = 0.25;

    // Welling & Teh's decreasing schedule from the discretization limit 0.2 v_min down to the
    // step whose minibatch noise is a tenth of the injected noise (Sgld::default_step), after a
    // burn-in at the large step: it crosses the distance from θ = 0 quickly, the last steps
    // sample accurately.
    // A fifth of the run is burn-in at the large step.
    let sgld_steps = if quick { 50_000 } else { 400_000 };
    let hold = sgld_steps / 5;
    let eps = 0.2 * std.iter().map(|s| s * s).fold(f64::INFINITY, f64::min);
    let sgld = Sgld::new(&post, 128, Schedule::Constant(eps), false)?;
    let safe = sgld.default_step(post.map(), &std, seed);
    let schedule = Schedule::decaying(eps, (eps / safe).max(1.0), hold, sgld_steps - hold, 0.55)?;
    let sgld = sgld.with_schedule(schedule);
    let every = sgld_steps / 2000;
    let out = sampler::run(
        &sgld,
        &start,
        &RunConfig {
            particles: chains,
            steps: sgld_steps,
            record_every: Some(every),
            seed,
            step_size: eps,
            block_size: Some(1),
            ..Default::default()
        },
    )?;
    let traj = out.trajectory.as_ref().expect("recorded");
    let sgld_time = time_to_tolerance(traj, out.seconds / sgld_steps as f64 * every as f64, &reference, &std, tol);
    let (sgld_err, std_ratio) = second_half_stats(traj, &reference, &std);

    // SGLD-CV: control variates at the MAP, constant default step (no burn-in needed beyond
    // the first steps: its step is at the discretization limit).
    // Its set-up counts: the MAP (Newton's method, computed above) and one full-data gradient.
    let cv_start = std::time::Instant::now();
    let cv = Sgld::new(&post, 128, Schedule::Constant(eps), false)?.with_control_variate(post.map().to_vec());
    let cv_eps = cv.default_step(post.map(), &std, seed);
    let cv = cv.with_schedule(Schedule::Constant(cv_eps));
    let cv_setup = map_seconds + cv_start.elapsed().as_secs_f64();
    let cv_steps = if quick { 20_000 } else { 100_000 };
    let cv_every = cv_steps / 2000;
    let out_cv = sampler::run(
        &cv,
        &start,
        &RunConfig {
            particles: chains,
            steps: cv_steps,
            record_every: Some(cv_every),
            seed,
            step_size: cv_eps,
            block_size: Some(1),
            ..Default::default()
        },
    )?;
    let traj_cv = out_cv.trajectory.as_ref().expect("recorded");
    let cv_time = time_to_tolerance(traj_cv, out_cv.seconds / cv_steps as f64 * cv_every as f64, &reference, &std, tol)
        .map(|t| t + cv_setup);
    let (cv_err, cv_std) = second_half_stats(traj_cv, &reference, &std);

    let mala_total = if quick { 300 } else { 600 };
    let mala_warmup = mala_total / 4;
    let out_m = sampler::run(
        &Mala::new(&post),
        &start,
        &RunConfig {
            particles: chains,
            warmup: mala_warmup,
            steps: mala_total - mala_warmup,
            record_every: Some(1),
            adapt: Some(0.574),
            seed,
            step_size: 0.2 * std.iter().map(|s| s * s).fold(f64::INFINITY, f64::min),
            block_size: Some(1),
            ..Default::default()
        },
    )?;
    let traj_m = out_m.trajectory.as_ref().expect("recorded");
    let mala_time = time_to_tolerance(traj_m, out_m.seconds / mala_total as f64, &reference, &std, tol);
    let (mala_err, _) = second_half_stats(traj_m, &reference, &std);
    Ok(json!({
        "name": "sgld-vs-mala-logistic",
        "description": format!(
            "logistic regression, {rows} rows × {p} features, 4 chains from θ = 0: seconds until the running posterior-mean estimate is within {tol} posterior standard deviations of the reference in every coordinate"
        ),
        "rows": rows,
        "sgld_seconds_to_tolerance": sgld_time,
        "sgld_schedule": {"eps_first": schedule.at(0), "eps_last": schedule.at(sgld_steps - 1), "gamma": 0.55, "hold": hold},
        "sgld_std_over_laplace_std_second_half": std_ratio,
        "sgld_final_error_in_std": sgld_err,
        "mala_final_error_in_std": mala_err,
        "sgld_steps_run": sgld_steps,
        "sgld_seconds_run": out.seconds,
        "mala_seconds_to_tolerance": mala_time,
        "mala_steps_run": mala_total,
        "mala_seconds_run": out_m.seconds,
        "mala_seconds_per_step": out_m.seconds / mala_total as f64,
        "sgld_speedup": match (sgld_time, mala_time) { (Some(s), Some(m)) => json!(m / s), _ => json!(null) },
        "sgld_cv_seconds_to_tolerance": cv_time,
        "sgld_cv_setup_seconds": cv_setup,
        "map_seconds": map_seconds,
        "sgld_cv_step": cv_eps,
        "sgld_cv_steps_run": cv_steps,
        "sgld_cv_seconds_run": out_cv.seconds,
        "sgld_cv_final_error_in_std": cv_err,
        "sgld_cv_std_over_laplace_std_second_half": cv_std,
        "sgld_cv_speedup": match (cv_time, mala_time) { (Some(s), Some(m)) => json!(m / s), _ => json!(null) },
    }))
}

/// Denoising score matching with the default network shape of the peers' tutorials, wider:
/// 3 hidden layers of 256 SiLU units on [x, 16 Fourier features of log σ], 2-D moons data,
/// batch 1024, Adam + clipping + EMA; then annealed Langevin generation of 100,000 points
/// (10,000 quick) with T = 2 steps per level over the 29-level ladder 4.3 → 0.01. The same work
/// as bench/peers/dsm_torch.py.
fn dsm(quick: bool, seed: u64, repeats: usize) -> Result<serde_json::Value> {
    use langevin_learn::checkpoint::{TrainedModel, new_run};
    use langevin_learn::ladder::LadderOptions;
    use langevin_learn::net::NetConfig;
    use langevin_learn::train::TrainConfig;
    let x = langevin_learn::data::generate("moons", 20_000, &mut langevin::rng::LaneRng::new(seed, 0xD5))?;
    let ladder = LadderOptions { sigma_max: Some(4.3), sigma_min: Some(0.01), levels: Some(29) };
    let net = NetConfig { width: 256, depth: 3, fourier: 16, ..Default::default() };
    let train = TrainConfig { batch: 1024, seed, ..Default::default() };
    let device = candle_core::Device::Cpu;
    let mut run = new_run(&x, "moons", 0, 0.1, &ladder, net, train, &device)?;
    for _ in 0..20 {
        run.trainer.train_step()?;
    }
    let n = if quick { 50 } else { 300 };
    let step_times = seconds_per_call(repeats.min(3), n, || {
        run.trainer.train_step()?;
        Ok(())
    })?;
    let best_step = step_times.iter().cloned().fold(f64::INFINITY, f64::min);
    let params: usize = run.trainer.net.params().iter().map(|(_, v)| v.as_tensor().elem_count()).sum();
    // Matrix-multiply flops of one step: forward 2·B·(weights), backward twice that (input
    // gradient and weight gradient), the first layer's input gradient excepted.
    let widths = [2 + 32, 256, 256, 256, 2];
    let weights: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    let gemm_flops = 2.0 * 1024.0 * (3 * weights - widths[0] * widths[1]) as f64;

    let model = Arc::new(TrainedModel::from_trainer(&run.trainer, run.config.clone(), std::path::Path::new("bench"))?);
    let points = if quick { 10_000 } else { 100_000 };
    let opts = langevin_learn::generate::GenerateOptions {
        n: points,
        steps_per_level: Some(2),
        denoise: false,
        seed,
        ..Default::default()
    };
    let mut gens = Vec::new();
    for _ in 0..repeats.min(2) {
        let g = langevin_learn::generate::generate(model.clone(), &opts)?;
        gens.push((g.report.score_evaluations_per_second, g.report.forward_passes_per_second, g.result.seconds));
    }
    let best_gen = gens.iter().cloned().fold(gens[0], |b, r| if r.0 > b.0 { r } else { b });
    // Forward flops per point: 2·(weights).
    let gen_gflops = best_gen.0 * 2.0 * weights as f64 / 1e9;
    Ok(json!({
        "name": "dsm-moons-mlp256",
        "description": format!("DSM on 2-D moons, MLP 3×256 SiLU ({params} parameters), batch 1024, Adam + clip + EMA; annealed generation of {points} points, T = 2 × 29 levels"),
        "train_step_seconds": best_step,
        "train_step_seconds_runs": step_times,
        "train_gemm_gflops": gemm_flops / best_step / 1e9,
        "generation_points": points,
        "generation_seconds": best_gen.2,
        "score_evaluations_per_second": best_gen.0,
        "forward_passes_per_second": best_gen.1,
        "generation_gemm_gflops": gen_gflops,
    }))
}

/// Flow matching and EDM on the DSM workload's network and data (moons, 3×256 SiLU, batch 1024,
/// Adam lr 2e-3 with 200 warm-up steps, clipping, EMA), the same work as
/// bench/peers/objectives_torch.py: the training step's time, then 300 (quick) or 3,000 steps of
/// training, 10,000 samples (flow matching: Heun ODE, 20 steps; EDM: its Heun sampler, 18 steps
/// from σ = 80 to 0.002) and their MMD against fresh data points beside the floor of other fresh
/// points (medians over 8 draws of 2,000 each).
fn objectives(quick: bool, seed: u64) -> Result<serde_json::Value> {
    use langevin::diffusion::{DiffusionOptions, Method, Solver};
    use langevin_learn::checkpoint::{TrainedModel, new_run};
    use langevin_learn::generate::{GenSampler, GenerateOptions};
    use langevin_learn::ladder::LadderOptions;
    use langevin_learn::net::NetConfig;
    use langevin_learn::objective::Objective;
    use langevin_learn::train::TrainConfig;
    let gen_data = |n: usize, stream: u64| {
        langevin_learn::data::generate("moons", n, &mut langevin::rng::LaneRng::new(seed, stream))
    };
    let x = gen_data(20_000, 0xD5)?;
    let (reference, floor_set) = (gen_data(10_000, 0xD6)?, gen_data(10_000, 0xD7)?);
    // MMD of 2,000 random rows of the samples against 2,000 of the reference, beside the floor
    // of 2,000 fresh points (the bandwidth of that pair for both), medians over 8 draws: one
    // draw's floor varies by a factor of 2 from seed to seed.
    let judge = |samples: &ndarray::Array2<f32>| {
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for s in 0..8u64 {
            let mut r = langevin::rng::LaneRng::new(seed ^ 0x3D, s);
            let mut pick = |src: &ndarray::Array2<f32>| {
                let rows: Vec<usize> = (0..2000).map(|_| r.below(src.nrows() as u64) as usize).collect();
                langevin_learn::data::pick_rows(src, &rows)
            };
            let (a, b, c) = (pick(samples), pick(&reference), pick(&floor_set));
            let (f, h) = langevin::metrics::mmd(c.view(), b.view(), None);
            ours.push(langevin::metrics::mmd(a.view(), b.view(), Some(h)).0);
            floor.push(f);
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            0.5 * (v[3] + v[4])
        };
        (med(ours), med(floor))
    };
    let steps = if quick { 300 } else { 3000 };
    let mut out = Vec::new();
    for name in ["flow-matching", "edm"] {
        let objective = Objective::from_name(name, None, None)?;
        let net = NetConfig { width: 256, depth: 3, fourier: 16, ..Default::default() };
        let train = TrainConfig { batch: 1024, seed, steps, objective, ..Default::default() };
        // 18,000 rows train (the 10% held out are not used), as in the peer.
        let mut run = new_run(&x, "moons", 0, 0.1, &LadderOptions::default(), net, train, &candle_core::Device::Cpu)?;
        let mut times = Vec::with_capacity(steps);
        let start = std::time::Instant::now();
        for _ in 0..steps {
            let t = std::time::Instant::now();
            run.trainer.train_step()?;
            times.push(t.elapsed().as_secs_f64());
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let blocks: Vec<f64> = (0..3)
            .filter(|k| 70 + 50 * k <= times.len())
            .map(|k| times[20 + 50 * k..70 + 50 * k].iter().sum::<f64>() / 50.0)
            .collect();
        let model =
            Arc::new(TrainedModel::from_trainer(&run.trainer, run.config.clone(), std::path::Path::new("bench"))?);
        let diffusion = if name == "edm" {
            DiffusionOptions { steps: Some(18), sigma_min: Some(0.002), sigma_max: Some(80.0), ..Default::default() }
        } else {
            DiffusionOptions { steps: Some(20), solver: Some(Solver::Heun), ..Default::default() }
        };
        let method = if name == "edm" { Method::Edm } else { Method::Ode };
        let opts = GenerateOptions {
            n: 10_000,
            sampler: GenSampler::Diffusion(method),
            diffusion,
            seed,
            ..Default::default()
        };
        let g = langevin_learn::generate::generate(model, &opts)?;
        let (mmd, floor) = judge(&g.samples);
        out.push(json!({
            "objective": name,
            "train_steps": steps,
            "train_step_seconds": blocks.iter().cloned().fold(f64::INFINITY, f64::min),
            "train_seconds": train_seconds,
            "generation_points": 10_000,
            "generation_nfe": g.report.score_evaluations_per_second * g.result.seconds / 10_000.0,
            "samples_per_second": 10_000.0 / g.result.seconds,
            "mmd": mmd,
            "mmd_floor": floor,
        }));
    }
    Ok(json!({
        "name": "objectives-moons-mlp256",
        "description": format!("flow matching (Heun ODE, 20 steps) and EDM (Heun, 18 steps) on 2-D moons, MLP 3×256 SiLU, batch 1024, {steps} training steps; MMD of the samples against fresh points beside the floor, medians over 8 draws of 2,000"),
        "objectives": out,
    }))
}

/// Diffusion samplers on exact mixture scores (block-major), at the NFE of the papers' settings:
/// samples per second and quality against exact draws. The PyTorch + k-diffusion peer
/// (bench/peers/diffusion_kdiffusion.py) runs the same samplers on the same σ grids (read from
/// this workload's entry) and the same mixtures (their means, weights and variances are written
/// here).
fn diffusion(quick: bool, seed: u64, repeats: usize) -> Result<serde_json::Value> {
    use langevin::diffusion::{DiffusionOptions, Method, ScheduleKind};
    use langevin::sample::{SampleOptions, Sampler, sample};
    let n = if quick { 20_000 } else { 100_000 };
    let mut targets = Vec::new();
    for name in ["ncsn-toy", "gmm40"] {
        let t = builtin::build(name, &[])?;
        let mix = t.mixture().expect("a mixture");
        let exact = t.sample_exact(n, &mut langevin::rng::LaneRng::new(seed ^ 77, 0)).expect("exact draws");
        let exact2 = t.sample_exact(n, &mut langevin::rng::LaneRng::new(seed ^ 78, 0)).expect("exact draws");
        let sub = |x: &ndarray::Array2<f32>| x.slice(ndarray::s![..4000, ..]).to_owned();
        let (e1, e2) = (sub(&exact), sub(&exact2));
        let bw = langevin::metrics::median_distance(e1.view(), e1.view());
        let tv = |x: &ndarray::Array2<f32>| {
            0.5 * langevin::metrics::mode_weights(x.view(), mix)
                .iter()
                .zip(mix.weights())
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
        };
        let mut runs = Vec::new();
        for (label, method, steps, eta) in [
            ("edm", "edm", 18, None),
            ("dpmpp-2m", "dpmpp-2m", 20, None),
            ("euler", "ddim", 50, None),
            ("euler-ancestral", "ddim", 50, Some(1.0)),
        ] {
            let options =
                DiffusionOptions { schedule: Some(ScheduleKind::Edm), steps: Some(steps), eta, ..Default::default() };
            let o = SampleOptions {
                sampler: Sampler::Diffusion { method: Method::from_name(method)?, options },
                particles: Some(n),
                seed,
                ..Default::default()
            };
            let mut rates = Vec::new();
            let mut last = None;
            for _ in 0..repeats {
                let out = sample(t.as_ref(), &o)?;
                rates.push(n as f64 / out.run.seconds);
                last = Some(out);
            }
            let out = last.expect("at least one repeat");
            let d = out.report.diffusion.as_ref().expect("a diffusion report");
            runs.push(json!({
                "sampler": label,
                "steps": steps,
                "nfe": d.nfe,
                "samples_per_second": rates.iter().cloned().fold(0.0, f64::max),
                "samples_per_second_runs": rates,
                "mmd": langevin::metrics::mmd(sub(&out.run.samples).view(), e1.view(), Some(bw)).0,
                "mode_weight_tv": tv(&out.run.samples),
                "sigma_min": d.sigma_min,
                "sigma_max": d.sigma_max,
            }));
        }
        targets.push(json!({
            "target": name,
            "weights": mix.weights(),
            "means": (0..mix.n_components()).map(|k| mix.mean(k).to_vec()).collect::<Vec<_>>(),
            "variance": t.scales().map(|s| s.smallest * s.smallest),
            "mmd_floor": langevin::metrics::mmd(e2.view(), e1.view(), Some(bw)).0,
            "mode_weight_tv_floor": tv(&exact2),
            "runs": runs,
        }));
    }
    Ok(json!({
        "name": "diffusion-exact-scores",
        "description": format!("diffusion samplers on exact mixture scores (EDM σ grid, ρ = 7), {n} samples; MMD on 4000 of them against exact draws"),
        "samples": n,
        "targets": targets,
    }))
}

/// A training step and a forward pass (one sampling step: one denoiser evaluation per image) of
/// the U-Net presets on `shapes` images, the same work as bench/peers/unet_torch.py: `tiny` on
/// 16 × 16 images (training batch 64, forward batch 256), `cifar` (DDPM's CIFAR-10 network) on
/// 32 × 32 (training batch 8, forward batch 16: a CPU cannot do much more per minute); on a GPU
/// `tiny` trains on 256 and runs forward passes of 1,024, `cifar` 128 (DDPM's batch) and 512.
/// EDM objective, Adam, gradient clipping, EMA. Flops from [`UnetConfig::forward_flops`], a
/// training step counted as three forward passes. Every timed call ends with its results on
/// the host (the step's losses, the forward pass's values), so GPU work is waited for.
fn unet(quick: bool, seed: u64, repeats: usize, device: &candle_core::Device) -> Result<serde_json::Value> {
    use langevin_learn::checkpoint::{TrainedModel, new_run};
    use langevin_learn::ladder::LadderOptions;
    use langevin_learn::net::NetConfig;
    use langevin_learn::train::TrainConfig;
    use langevin_learn::unet::UnetConfig;
    let mut out = Vec::new();
    let cases: [(&str, usize, usize, usize); 2] = match (quick, device.is_cpu()) {
        (true, true) => [("tiny", 16, 16, 32), ("cifar", 32, 2, 2)],
        (false, true) => [("tiny", 16, 64, 256), ("cifar", 32, 8, 16)],
        (true, false) => [("tiny", 16, 32, 64), ("cifar", 32, 8, 16)],
        (false, false) => [("tiny", 16, 256, 1024), ("cifar", 32, 128, 512)],
    };
    for (preset, size, batch, forward_batch) in cases {
        let set = langevin_learn::images::shapes(512, size, seed);
        let config = UnetConfig::preset(preset, 3, size, size).map_err(anyhow::Error::msg)?;
        let net = NetConfig { unet: Some(config.clone()), ..Default::default() };
        let flops = config.forward_flops(2 * net.fourier);
        let train = TrainConfig { batch, seed, ..Default::default() };
        let mut run = new_run(&set.x, "shapes", 0, 0.1, &LadderOptions::default(), net, train, device)?;
        run.trainer.train_step()?;
        let steps = match (quick, preset) {
            (true, _) => 1,
            (false, "tiny") => 10,
            (false, _) => 3,
        };
        let step_times = seconds_per_call(repeats.min(3), steps, || {
            run.trainer.train_step()?;
            Ok(())
        })?;
        let step = step_times.iter().cloned().fold(f64::INFINITY, f64::min);
        let params = run.trainer.net.param_count();
        let model = TrainedModel::from_trainer(&run.trainer, run.config.clone(), std::path::Path::new("bench"))?;
        let dim = config.dim();
        let mut x = vec![0f32; forward_batch * dim];
        langevin::rng::LaneRng::new(seed, 0x0E7).fill_normal(&mut x);
        let noise = vec![0.25f32; forward_batch];
        model.forward_rows(&x, &noise, None)?;
        let forward_times = seconds_per_call(repeats.min(3), 1, || {
            std::hint::black_box(model.forward_rows(&x, &noise, None)?);
            Ok(())
        })?;
        let forward = forward_times.iter().cloned().fold(f64::INFINITY, f64::min);
        out.push(json!({
            "preset": preset,
            "image_size": size,
            "parameters": params,
            "forward_gflop_per_image": flops / 1e9,
            "train_batch": batch,
            "train_step_seconds": step,
            "train_step_seconds_runs": step_times,
            "train_images_per_second": batch as f64 / step,
            "train_gflops": 3.0 * flops * batch as f64 / step / 1e9,
            "forward_batch": forward_batch,
            "forward_seconds": forward,
            "sampling_images_per_second": forward_batch as f64 / forward,
            "forward_gflops": flops * forward_batch as f64 / forward / 1e9,
        }));
    }
    Ok(json!({
        "name": "unet-shapes",
        "device": if device.is_cpu() { "cpu".to_string() } else { format!("{:?}", device.location()) },
        "description": "U-Net presets on shapes images, EDM: a training step (Adam, clipping, EMA) and a forward pass (one sampling step) per preset",
        "presets": out,
    }))
}

/// Seconds per call of `f`, from `runs` timed runs of `calls` calls each.
fn seconds_per_call(runs: usize, calls: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        for _ in 0..calls {
            f()?;
        }
        out.push(start.elapsed().as_secs_f64() / calls as f64);
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// MALA timed from a warmed-up state: the best run's (ESS/s, min ESS, seconds, acceptance,
/// max R-hat), every run's ESS/s, and the adapted step size.
struct MalaEss {
    best: (f64, f64, f64, f64, f64),
    runs: Vec<f64>,
    step_size: f64,
}

/// Warm up once (adapting the step size towards 0.574), then time `repeats` sampling runs of
/// `steps` steps from the warmed-up state (seeds `seed + offset + r`); ESS from every kept draw.
fn mala_ess(
    t: &dyn langevin::target::Target,
    chains: usize,
    steps: usize,
    warmup: usize,
    seed: u64,
    offset: u64,
    repeats: usize,
) -> Result<MalaEss> {
    let mala = Mala::new(t);
    let warm = sampler::run(
        &mala,
        &t.default_init(),
        &RunConfig {
            particles: chains,
            warmup,
            steps: 1,
            seed,
            step_size: 0.01,
            adapt: Some(0.574),
            ..Default::default()
        },
    )?;
    let start = Init::Rows(Arc::new(warm.samples.clone()));
    let mut results = Vec::new();
    for r in 0..repeats.max(1) {
        let cfg = RunConfig {
            particles: chains,
            steps,
            thin: Some(1),
            seed: seed + offset + r as u64,
            step_size: warm.step_size,
            ..Default::default()
        };
        let out = sampler::run(&mala, &start, &cfg)?;
        let diag = ChainDiagnostics::of(out.samples.view(), chains);
        let ess = diag.ess_bulk_min;
        results.push((ess / out.seconds, ess, out.seconds, out.acceptance_rate().unwrap_or(f64::NAN), diag.rhat_max));
    }
    let best = results.iter().cloned().fold(results[0], |b, r| if r.0 > b.0 { r } else { b });
    Ok(MalaEss { best, runs: results.iter().map(|r| r.0).collect(), step_size: warm.step_size })
}

/// Run the workloads and print the JSON (the output is the point, so `--quiet` changes nothing).
pub fn run(a: &BenchArgs) -> Result<()> {
    let threads = rayon::current_num_threads();
    if a.repeats == 0 {
        anyhow::bail!("--repeats must be at least 1 (the number of timed runs of each workload)");
    }
    if let Some(bad) = a.only.iter().find(|n| !WORKLOADS.contains(&n.as_str())) {
        anyhow::bail!("--only {bad}: no such workload; the workloads are {}", WORKLOADS.join(", "));
    }
    if a.device != "cpu" && a.only != ["unet"] {
        anyhow::bail!(
            "--device {}: only the U-Net workload runs on a GPU (the samplers' workloads are CPU code); add --only unet",
            a.device
        );
    }
    let device = crate::train::device(&a.device)?;
    let want = |name: &str| a.only.is_empty() || a.only.iter().any(|n| n == name);
    let repeats = a.repeats;
    // On a GPU the reference is its measured matrix-product rate, not the CPU's FMA rate.
    let peak = if device.is_cpu() {
        peak_gflops(threads)
    } else {
        let g = gpu_matmul_gflops(&device)?;
        let tf32 = candle_core::cuda::gemm_reduced_precision_f32();
        Some((
            g,
            format!(
                "measured: best of five 8192³ f32 matrix products on the GPU (cuBLAS, TF32 {})",
                if tf32 { "on" } else { "off" }
            ),
        ))
    };
    let mut workloads = Vec::new();

    // 1. ULA on the NCSN toy.
    if want("ula") {
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
        if let Some((peak, how)) = &peak {
            ula["peak_gflops_estimate"] = json!(peak);
            ula["peak_assumption"] = json!(how);
            ula["fraction_of_peak"] = json!(gflops / peak);
        }
        workloads.push(ula);
    }

    // 2. MALA on a 100-d Gaussian: minimum bulk ESS per second of sampling.
    let gauss = builtin::build("gaussian", &[("dim".into(), 100.0), ("cond".into(), 10.0)])?;
    let spec = "gaussian:dim=100,cond=10";
    let mut mala_ess_per_s = None;
    if want("mala") {
        let (chains, steps, warmup) = if a.quick { (64, 1000, 300) } else { (64, 10_000, 1000) };
        let m = mala_ess(gauss.as_ref(), chains, steps, warmup, a.seed, 1, repeats.min(3))?;
        let best = (m.best.0, m.best.1, m.best.2, m.best.3);
        workloads.push(json!({
        "name": "mala-gaussian-100",
        "description": format!("MALA on {spec}, {chains} chains × {steps} steps after {warmup} warm-up steps (step size adapted to acceptance 0.574)"),
        "min_ess_per_second": best.0,
        "min_ess_per_second_runs": m.runs,
        "min_ess_bulk": best.1,
        "seconds": best.2,
        "min_ess_per_gradient_evaluation": best.1 / (chains * steps) as f64,
        "acceptance_rate": best.3,
        "step_size": m.step_size,
        "rhat_max": m.best.4,
    }));
        mala_ess_per_s = Some(best.0);

        // 2b. Few chains: MALA on N(0, I₁₀₀) with 4 chains, the common case of a posterior run. The
        // BlackJAX peer (bench/peers/mala_blackjax.py) runs the same chains at the same step size.
        let few = builtin::build("gaussian", &[("dim".into(), 100.0)])?;
        let (chains, steps, warmup) = if a.quick { (4, 2000, 500) } else { (4, 10_000, 2000) };
        let m4 = mala_ess(few.as_ref(), chains, steps, warmup, a.seed, 21, repeats)?;
        workloads.push(json!({
        "name": "mala-gaussian-100-4chains",
        "description": format!("MALA on gaussian:dim=100 (N(0, I)), {chains} chains × {steps} steps after {warmup} warm-up steps (step size adapted to acceptance 0.574); sampling timed"),
        "min_ess_per_second": m4.best.0,
        "min_ess_per_second_runs": m4.runs,
        "min_ess_bulk": m4.best.1,
        "seconds": m4.best.2,
        "microseconds_per_step": m4.best.2 / steps as f64 * 1e6,
        "acceptance_rate": m4.best.3,
        "step_size": m4.step_size,
    }));
    }

    // 3. BAOAB on the same Gaussian, compared with the MALA figures above.
    if want("baoab") {
        let (chains, steps, warmup) = if a.quick { (64, 1000, 300) } else { (64, 10_000, 1000) };
        let (dt, friction) = (0.5, 1.0);
        let baoab = Underdamped::new(gauss.as_ref(), Scheme::Baoab, &[1.0], friction)?;
        let warm = sampler::run(
            &baoab,
            &gauss.default_init(),
            &RunConfig { particles: chains, warmup, steps: 1, seed: a.seed, step_size: dt, ..Default::default() },
        )?;
        let start = Init::Rows(Arc::new(warm.samples.clone()));
        let mut results = Vec::new();
        for r in 0..repeats.min(3) {
            let out = sampler::run(
                &baoab,
                &start,
                &RunConfig {
                    particles: chains,
                    steps,
                    thin: Some(1),
                    seed: a.seed + 11 + r as u64,
                    step_size: dt,
                    ..Default::default()
                },
            )?;
            let ess = ChainDiagnostics::of(out.samples.view(), chains).ess_bulk_min;
            results.push((ess / out.seconds, ess, out.seconds, out.kinetic_temperature.unwrap_or(f64::NAN)));
        }
        let best_baoab = results.iter().cloned().fold(results[0], |b, r| if r.0 > b.0 { r } else { b });
        let mut b = json!({
            "name": "baoab-gaussian-100",
            "description": format!("BAOAB on {spec}, {chains} chains × {steps} steps after {warmup} warm-up steps, Δt = {dt}, γ = {friction}, m = 1"),
            "min_ess_per_second": best_baoab.0,
            "min_ess_per_second_runs": results.iter().map(|r| r.0).collect::<Vec<_>>(),
            "min_ess_bulk": best_baoab.1,
            "seconds": best_baoab.2,
            "min_ess_per_gradient_evaluation": best_baoab.1 / (chains * steps) as f64,
            "kinetic_temperature": best_baoab.3,
        });
        if let Some(m) = mala_ess_per_s {
            b["ratio_to_mala_ess_per_second"] = json!(best_baoab.0 / m);
        }
        workloads.push(b);
    }

    // 4. SGLD against full-batch MALA on a large logistic regression: time to the posterior mean.
    if want("sgld") {
        workloads.push(sgld_vs_mala(a.quick, a.seed)?);
    }

    // 5. Learning a score and generating with it.
    if want("dsm") {
        let mut d = dsm(a.quick, a.seed, repeats)?;
        if let (Some((peak, _)), Some(g)) = (&peak, d["train_gemm_gflops"].as_f64()) {
            d["train_fraction_of_peak"] = json!(g / peak);
            d["generation_fraction_of_peak"] = json!(d["generation_gemm_gflops"].as_f64().unwrap_or(0.0) / peak);
        }
        if let (Some(sg), Some(g)) = (sgemm_gflops(), d["train_gemm_gflops"].as_f64()) {
            d["sgemm_gflops_1024"] = json!(sg);
            d["train_fraction_of_sgemm"] = json!(g / sg);
            d["generation_fraction_of_sgemm"] = json!(d["generation_gemm_gflops"].as_f64().unwrap_or(0.0) / sg);
        }
        workloads.push(d);
    }

    // 6. Flow matching and EDM: training, generation, quality.
    if want("objectives") {
        workloads.push(objectives(a.quick, a.seed)?);
    }

    // 7. Diffusion samplers on exact scores.
    if want("diffusion") {
        workloads.push(diffusion(a.quick, a.seed, repeats.min(3))?);
    }

    // 8. U-Net presets on images: a training step and a sampling step.
    if want("unet") {
        let mut u = unet(a.quick, a.seed, repeats, &device)?;
        if let (Some((peak, _)), Some(presets)) = (&peak, u["presets"].as_array_mut()) {
            for p in presets {
                p["train_fraction_of_peak"] = json!(p["train_gflops"].as_f64().unwrap_or(0.0) / peak);
                p["forward_fraction_of_peak"] = json!(p["forward_gflops"].as_f64().unwrap_or(0.0) / peak);
            }
        }
        workloads.push(u);
    }

    let result = json!({
        "langevin_version": env!("CARGO_PKG_VERSION"),
        "threads": threads,
        "peak_gflops": peak.as_ref().map(|p| p.0),
        "peak_how": peak.as_ref().map(|p| p.1.clone()),
        "cpu": cpu_model(),
        "quick": a.quick,
        "workloads": workloads,
    });
    if let Some(p) = &a.out {
        report::write(p, &result)?;
    }
    outln!("{}", serde_json::to_string_pretty(&result)?)?;
    Ok(())
}
