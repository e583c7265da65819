//! Quality bars of learned scores (fixed seeds): short training runs, then generation through
//! the core samplers, checked against the truth.

use candle_core::Device;
use langevin::analysis::{self, Field, Region};
use langevin::metrics::{mmd, mode_weights};
use langevin::rng::LaneRng;
use langevin::sampler::{Init, RunConfig, Ula, run};
use langevin::target::builtin;
use langevin_learn::checkpoint::{NewRun, TrainedModel, new_run};
use langevin_learn::data;
use langevin_learn::generate::{GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::model::DataUnitsScore;
use langevin_learn::model::LearnedScore;
use langevin_learn::net::NetConfig;
use langevin_learn::train::TrainConfig;
use ndarray::Array2;
use std::sync::{Arc, Mutex};

// candle on glibc malloc is several times slower (DESIGN.md); the binary uses mimalloc, so do the tests.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The two training tests each use both cores; run side by side they thrash, so they take turns.
static HEAVY: Mutex<()> = Mutex::new(());

fn trained(name: &str, steps: usize, seed: u64) -> (Arc<TrainedModel>, Array2<f32>) {
    let x = data::generate(name, 20_000, &mut LaneRng::new(seed, 0xDA7A)).unwrap();
    let NewRun { mut trainer, config, heldout_raw, .. } = new_run(
        &x,
        name,
        0,
        0.1,
        &LadderOptions::default(),
        NetConfig::default(),
        TrainConfig { steps, seed, ..Default::default() },
        &Device::Cpu,
    )
    .unwrap();
    for _ in 0..steps {
        trainer.train_step().unwrap();
    }
    let model = TrainedModel::from_trainer(&trainer, config, std::path::Path::new("in-memory")).unwrap();
    (Arc::new(model), heldout_raw)
}

/// Annealed Langevin through the training ladder (T = 100, contraction ε, denoised), from
/// N(0, σ₁²) in standardized units; returns samples in data units.
fn annealed(model: &Arc<TrainedModel>, n: usize, seed: u64) -> Array2<f32> {
    generate(model.clone(), &GenerateOptions { n, seed, ..Default::default() }).unwrap().samples
}

/// Song & Ermon's toy, learned from 18,000 samples in 30,000 steps (about 40 s in release on
/// 2 cores): annealed Langevin puts 0.80 ± 0.03 of the mass on the (5,5) mode (10,000 samples,
/// SE 0.004), while plain Langevin with the score at σ_L from uniform noise on [−8, 8]² does not
/// (it measures about 0.6).
#[test]
fn learned_ncsn_toy_annealed_recovers_mode_weights_and_plain_does_not() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let (model, _) = trained("ncsn-toy", 30_000, 1);
    let toy = builtin::build("ncsn-toy", &[]).unwrap();
    let mix = toy.mixture().unwrap();
    let n = 10_000;
    let a = annealed(&model, n, 2);
    let w = mode_weights(a.view(), mix)[0];
    assert!((w - 0.8).abs() < 0.03, "annealed: weight of (5,5) = {w}");

    let base = LearnedScore::at_smallest(model.clone());
    let norm = &model.config.normalization;
    let init = Init::Box {
        lo: (0..2).map(|c| (-8.0 - norm.mean[c]) / norm.std[c]).collect(),
        hi: (0..2).map(|c| (8.0 - norm.mean[c]) / norm.std[c]).collect(),
    };
    let steps = model.config.ladder.levels() * 100;
    let out = run(
        &Ula::new(&base, true),
        &init,
        &RunConfig { particles: n, steps, step_size: 1e-3, seed: 3, ..Default::default() },
    )
    .unwrap();
    let plain = norm.undo(&out.samples);
    let wp = mode_weights(plain.view(), mix)[0];
    assert!((wp - 0.8).abs() > 0.1, "plain Langevin should miss the weights: {wp}");

    // Seed 002: a learned score smears its modes (the learned density is flatter there). At
    // σ = 0.02 (standardized units) the learned Jacobian's eigenvalues at each mode of the toy,
    // against the exact ones, measured [0.82, 0.77] and [1.06, 0.80] for this run (0.80, 0.78,
    // 0.67, 0.67 for `langevin train --data ncsn-toy`'s default run): single directions scatter
    // around 1, but each mode's volume (the product of the ratios: 0.62 and 0.84) and the
    // geometric mean over all directions (0.85) are clearly below 1, which the exact field
    // (1 exactly) and a sharpened one (above 1) fail.
    let sigma = 0.02;
    let learned = DataUnitsScore::new(model.clone(), sigma);
    let exact = data::exact_perturbed_mixture("ncsn-toy", sigma, &norm.std).unwrap();
    let region = Region { lo: vec![-10.0; 2], hi: vec![10.0; 2] };
    let lp = analysis::stagnation_points(&Field::new(&learned), &region, 200, 4, None).unwrap();
    let ep = analysis::stagnation_points(&Field::new(&exact), &region, 200, 4, None).unwrap();
    let modes = analysis::mode_smearing(&ep, &lp);
    assert_eq!(modes.len(), 2, "the toy has two modes: {modes:?}");
    let mut log_sum = 0.0;
    for m in &modes {
        assert!(m.offset.unwrap() < 0.5, "learned mode far from the exact one: {m:?}");
        let r = m.curvature_ratio.as_ref().unwrap();
        let volume: f64 = r.iter().product();
        assert!(volume < 0.95, "mode {:?}: curvature ratios {r:?}, product {volume}: not smeared", m.exact_x);
        log_sum += r.iter().map(|v| v.ln()).sum::<f64>();
    }
    let geo = (log_sum / 4.0).exp();
    assert!(geo < 0.9, "geometric mean curvature ratio {geo}: the learned modes are not flatter");
}

/// Moons: after 20,000 steps the MMD between 8,000 generated samples and the 2,000 held-out rows
/// is within twice the MMD between 8,000 fresh data samples and the same held-out rows (the floor
/// that sampling noise alone reaches; with 2,000 generated samples the MMD estimate itself varied
/// by a factor of three between generation seeds, so the larger set).
#[test]
fn learned_moons_are_as_close_to_heldout_data_as_data_itself() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let (model, heldout) = trained("moons", 20_000, 4);
    let n = 8000;
    let g = annealed(&model, n, 5);
    let fresh = data::generate("moons", n, &mut LaneRng::new(99, 0)).unwrap();
    let (floor, h) = mmd(fresh.view(), heldout.view(), None);
    let (ours, _) = mmd(g.view(), heldout.view(), Some(h));
    assert!(ours < 2.0 * floor, "MMD generated {ours} vs data floor {floor}");
}

/// Same seed, same weights, bit for bit, with 1 or 2 threads.
#[test]
fn training_does_not_depend_on_the_thread_count() {
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let x = data::generate("moons", 2000, &mut LaneRng::new(7, 0)).unwrap();
            let NewRun { mut trainer, .. } = new_run(
                &x,
                "moons",
                0,
                0.1,
                &LadderOptions::default(),
                NetConfig { width: 64, depth: 2, ..Default::default() },
                TrainConfig { steps: 30, batch: 256, warmup: 5, seed: 7, ..Default::default() },
                &Device::Cpu,
            )
            .unwrap();
            for _ in 0..30 {
                trainer.train_step().unwrap();
            }
            trainer.weights.clone()
        })
    };
    let (a, b) = (go(1), go(2));
    for (p, q) in a.iter().zip(&b) {
        assert!(p.iter().zip(q).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
