//! The seeds' claims, checked statistically. Every test has a fixed seed and a tolerance derived
//! from the Monte Carlo standard error (5 SE unless stated), so it neither flakes nor passes
//! vacuously.

use langevin::metrics::mode_weights;
use langevin::sampler::{
    AnnealConfig, AnnealOptions, Init, Mala, RunConfig, RunResult, Scheme, Ula, Underdamped, run, run_annealed,
};
use langevin::target::{Covariance, GaussianMixture, Target, builtin};
use ndarray::{Array2, ArrayView2, array};

fn cfg(particles: usize, steps: usize, step_size: f64, seed: u64) -> RunConfig {
    RunConfig { particles, steps, step_size, seed, ..Default::default() }
}

fn column(x: ArrayView2<f32>, c: usize) -> Vec<f64> {
    x.column(c).iter().map(|&v| v as f64).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / (a.len() - 1) as f64
}

/// MALA leaves the target exactly invariant: on a correlated 2-D Gaussian the sample mean and
/// covariance of 20,000 independent chains agree with the truth within 5 standard errors
/// (for Gaussian data, SE(Σ̂ᵢⱼ) = √((ΣᵢᵢΣⱼⱼ + Σᵢⱼ²)/N)).
#[test]
fn mala_on_a_full_covariance_gaussian_matches_mean_and_covariance() {
    let sigma = array![[2.0, 1.2], [1.2, 1.0]];
    let mu = [1.0, -2.0];
    let t = GaussianMixture::gaussian(mu.to_vec(), Covariance::Full(sigma.clone())).unwrap();
    let n = 20_000;
    let out = run(
        &Mala::new(&t),
        &Init::Gaussian { mean: vec![0.0], std: 3.0 },
        &RunConfig { warmup: 1000, adapt: Some(0.574), ..cfg(n, 1000, 0.1, 11) },
    )
    .unwrap();
    let rate = out.acceptance_rate().unwrap();
    assert!((rate - 0.574).abs() < 0.05, "acceptance {rate} after adaptation");
    let x = [column(out.samples.view(), 0), column(out.samples.view(), 1)];
    for i in 0..2 {
        let se = (sigma[[i, i]] / n as f64).sqrt();
        assert!((mean(&x[i]) - mu[i]).abs() < 5.0 * se, "mean {i}: {} vs {}", mean(&x[i]), mu[i]);
        for j in 0..2 {
            let se = ((sigma[[i, i]] * sigma[[j, j]] + sigma[[i, j]].powi(2)) / n as f64).sqrt();
            let c = cov(&x[i], &x[j]);
            assert!((c - sigma[[i, j]]).abs() < 5.0 * se, "cov {i}{j}: {c} vs {}", sigma[[i, j]]);
        }
    }
}

/// ULA's stationary variance on N(0, 1) is 1/(1 − τ/2): the bias τ/(2 − τ) shrinks in proportion
/// to τ. Measured at three step sizes on 500,000 particles × 2 coordinates each.
#[test]
fn ula_variance_bias_shrinks_in_proportion_to_the_step_size() {
    let t = GaussianMixture::gaussian(vec![0.0, 0.0], Covariance::Isotropic(1.0)).unwrap();
    let n = 500_000;
    let mut biases = Vec::new();
    for (k, tau) in [0.2, 0.1, 0.05].into_iter().enumerate() {
        // 30/τ steps: the variance relaxes as (1 − τ)^{2t}, so the start is forgotten (e^{-60}).
        let steps = (30.0 / tau) as usize;
        let out = run(&Ula::new(&t, true), &Init::Point(vec![0.0]), &cfg(n, steps, tau, 20 + k as u64)).unwrap();
        let v: Vec<f64> = out.samples.iter().map(|&x| x as f64).collect();
        let var = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
        let exact = 1.0 / (1.0 - tau / 2.0);
        let se = exact * (2.0 / v.len() as f64).sqrt();
        assert!((var - exact).abs() < 5.0 * se, "τ = {tau}: variance {var}, theory {exact} ± {se}");
        biases.push((tau, var - 1.0, se));
    }
    // bias/τ is about constant (½ to first order): halving τ halves the bias.
    for w in biases.windows(2) {
        let (ratio, expect) = (w[0].1 / w[1].1, (w[0].0 / (2.0 - w[0].0)) / (w[1].0 / (2.0 - w[1].0)));
        let se = ratio * ((w[0].2 / w[0].1).powi(2) + (w[1].2 / w[1].1).powi(2)).sqrt();
        assert!((ratio - expect).abs() < 5.0 * se, "bias ratio {ratio} vs {expect} ± {se}");
        assert!(ratio > 1.7, "halving τ must roughly halve the bias ({ratio})");
    }
}

fn toy() -> std::sync::Arc<dyn Target> {
    builtin::build("ncsn-toy", &[]).unwrap()
}

fn weight_of_first_mode(t: &dyn Target, out: &RunResult) -> f64 {
    mode_weights(out.samples.view(), t.mixture().unwrap())[0]
}

/// Song & Ermon (2019), Fig. 3: plain Langevin from uniform noise cannot move mass between the
/// modes of 0.8·N((5,5), I) + 0.2·N((−5,−5), I), so the (5,5) mode keeps the share of the start
/// box on its side of the basin boundary x + y ≈ −0.14: 0.509, not 0.8.
#[test]
fn plain_langevin_gets_the_ncsn_toy_mode_weights_wrong() {
    let t = toy();
    let n = 10_000;
    let out = run(&Ula::new(t.as_ref(), true), &Init::Uniform { lo: -8.0, hi: 8.0 }, &cfg(n, 1000, 0.1, 3)).unwrap();
    let w = weight_of_first_mode(t.as_ref(), &out);
    let se = (0.25 / n as f64).sqrt();
    assert!((w - 0.509).abs() < 5.0 * se + 0.01, "weight of (5,5): {w}");
    assert!(w < 0.6, "far from 0.8: {w}");
}

/// Annealed Langevin with the paper's settings (σ 20 → 1 geometric, 10 levels, T = 100,
/// ε = 0.1, start U[−8, 8]²) restores the weight: 0.80 ± 0.02.
#[test]
fn annealed_langevin_restores_the_ncsn_toy_mode_weights() {
    let t = toy();
    let opts = AnnealOptions {
        sigma_max: Some(20.0),
        sigma_min: Some(1.0),
        levels: Some(10),
        steps_per_level: Some(100),
        eps: Some(0.1),
        denoise: true,
    };
    let (config, _) = AnnealConfig::resolve(t.as_ref(), &opts).unwrap();
    assert_eq!(config.total_steps(), 1000);
    assert!((config.sigmas()[1] - 20.0 * 20f64.powf(-1.0 / 9.0)).abs() < 1e-12, "geometric ladder");
    assert!((config.alpha(0) - 0.1 * 400.0).abs() < 1e-9, "α₁ = ε σ₁²/σ_L²");
    let out =
        run_annealed(t.as_ref(), &config, true, &Init::Uniform { lo: -8.0, hi: 8.0 }, &cfg(100_000, 1000, 0.1, 4))
            .unwrap();
    let w = weight_of_first_mode(t.as_ref(), &out);
    assert!((w - 0.8).abs() < 0.02, "weight of (5,5): {w}");
}

/// With no settings at all, `--sampler annealed` picks its ladder from the target and gets both
/// the mode weights (0.80 ± 0.01) and the mode shapes (within-mode variance 1 ± 2%) right.
#[test]
fn annealed_defaults_work_without_tuning() {
    let t = toy();
    let (config, notes) =
        AnnealConfig::resolve(t.as_ref(), &AnnealOptions { denoise: true, ..Default::default() }).unwrap();
    assert_eq!(notes.len(), 4, "every derived value is explained: {notes:?}");
    let init = config.default_init(t.as_ref());
    assert_eq!(init, Init::Gaussian { mean: vec![3.0, 3.0], std: config.sigmas()[0] });
    let n = 100_000;
    let out = run_annealed(t.as_ref(), &config, true, &init, &cfg(n, 1, 0.1, 5)).unwrap();
    let w = weight_of_first_mode(t.as_ref(), &out);
    assert!((w - 0.8).abs() < 0.01, "weight of (5,5): {w}");
    let big: Vec<f64> = out.samples.outer_iter().filter(|r| r[0] + r[1] > 0.0).map(|r| r[0] as f64).collect();
    let var = cov(&big, &big);
    assert!((var - 1.0).abs() < 0.02, "within-mode variance {var}");
}

/// Annealed Langevin needs s(x, σ): asking for it on a Boltzmann target is a clear error.
#[test]
fn annealed_langevin_refuses_targets_without_perturbed_scores() {
    let t = builtin::build("muller-brown", &[]).unwrap();
    let opts = AnnealOptions { sigma_max: Some(1.0), sigma_min: Some(0.01), ..Default::default() };
    let (config, _) = AnnealConfig::resolve(t.as_ref(), &opts).unwrap();
    let err = run_annealed(t.as_ref(), &config, true, &t.default_init(), &cfg(10, 1, 0.1, 0)).err().unwrap();
    assert_eq!(err.field(), Some("sigma"));
    assert!(err.to_string().contains("perturbed score") && err.to_string().contains("only at σ = 0"), "{err}");
    // And MCMC-only settings are refused, not ignored: the schedule fixes length and steps.
    let toy = toy();
    let (c, _) = AnnealConfig::resolve(toy.as_ref(), &AnnealOptions::default()).unwrap();
    for (bad, field) in [
        (RunConfig { warmup: 5, ..cfg(10, 1, 0.1, 0) }, "warmup"),
        (RunConfig { thin: Some(2), ..cfg(10, 1, 0.1, 0) }, "thin"),
        (RunConfig { block_size: Some(0), ..cfg(10, 1, 0.1, 0) }, "block_size"),
    ] {
        let err = run_annealed(toy.as_ref(), &c, true, &toy.default_init(), &bad).err().unwrap();
        assert_eq!(err.field(), Some(field), "{err}");
    }
}

/// Boltzmann statistics: at temperature kT the double-well occupancy of the left well equals
/// ∫_{x<0} e^{−U/kT} / Z, computed by quadrature. Checked with MALA (exact) and with ULA at a
/// small step (bias O(τ), well under the tolerance).
#[test]
fn double_well_occupancy_matches_the_boltzmann_integral() {
    let t = builtin::build("double-well", &[]).unwrap();
    let exact = t.marginal(0).unwrap().cdf(0.0);
    assert!(exact > 0.6 && exact < 0.95, "the tilt favours the left well: {exact}");
    let n = 20_000;
    let se = (exact * (1.0 - exact) / n as f64).sqrt();
    let left = |out: &RunResult| out.samples.iter().filter(|&&x| x < 0.0).count() as f64 / out.samples.len() as f64;
    let mala = run(
        &Mala::new(t.as_ref()),
        &Init::Uniform { lo: -2.0, hi: 2.0 },
        &RunConfig { warmup: 1000, adapt: Some(0.574), ..cfg(n, 3000, 0.01, 6) },
    )
    .unwrap();
    assert!((left(&mala) - exact).abs() < 5.0 * se, "MALA {} vs quadrature {exact}", left(&mala));
    let ula =
        run(&Ula::new(t.as_ref(), true), &Init::Uniform { lo: -2.0, hi: 2.0 }, &cfg(n, 20_000, 0.002, 7)).unwrap();
    assert!((left(&ula) - exact).abs() < 5.0 * se, "ULA {} vs quadrature {exact}", left(&ula));
}

/// Without noise the update is gradient ascent: every particle climbs to the mode of the basin
/// it starts in and stays there (seed 001, first figure).
#[test]
fn without_noise_particles_collapse_onto_the_nearest_mode() {
    let t = toy();
    let n = 4096;
    let init = Init::Uniform { lo: -8.0, hi: 8.0 };
    let out = run(&Ula::new(t.as_ref(), false), &init, &cfg(n, 500, 0.1, 8)).unwrap();
    // The same start, drawn again from the same streams.
    let start = run(&Ula::new(t.as_ref(), false), &init, &cfg(n, 1, 1e-30, 8)).unwrap();
    for (end, begin) in out.samples.outer_iter().zip(start.samples.outer_iter()) {
        let side = if (begin[0] + begin[1]) as f64 > -0.139 { 5.0 } else { -5.0 };
        assert!((end[0] - side).abs() < 1e-3 && (end[1] - side).abs() < 1e-3, "{begin:?} ended at {end:?}");
    }
    // With noise the same particles keep the spread of the modes.
    let noisy = run(&Ula::new(t.as_ref(), true), &init, &cfg(n, 500, 0.1, 8)).unwrap();
    let spread = noisy.samples.outer_iter().filter(|r| r[0] > 0.0).map(|r| (r[0] as f64 - 5.0).powi(2)).sum::<f64>();
    assert!(spread > 100.0, "noise keeps particles spread: {spread}");
}

/// Same seed, same output, bit for bit, with 1 or 2 threads, for every sampler (MALA with
/// adaptation included) and for trajectories.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let t = toy();
    let gauss = builtin::build("gaussian", &[("dim".into(), 5.0), ("cond".into(), 10.0)]).unwrap();
    let in_pool = |threads: usize, f: &(dyn Fn() -> (Array2<f32>, Option<ndarray::Array3<f32>>) + Sync)| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    };
    let ula = || {
        let out = run(
            &Ula::new(t.as_ref(), true),
            &Init::Uniform { lo: -8.0, hi: 8.0 },
            &RunConfig { record_every: Some(50), ..cfg(5000, 300, 0.1, 9) },
        )
        .unwrap();
        (out.samples, out.trajectory)
    };
    let mala = || {
        let out = run(
            &Mala::new(gauss.as_ref()),
            &gauss.default_init(),
            &RunConfig { warmup: 200, adapt: Some(0.574), thin: Some(10), ..cfg(300, 300, 0.05, 10) },
        )
        .unwrap();
        (out.samples, None)
    };
    let annealed = || {
        let (c, _) = AnnealConfig::resolve(t.as_ref(), &AnnealOptions { denoise: true, ..Default::default() }).unwrap();
        let out = run_annealed(
            t.as_ref(),
            &c,
            true,
            &t.default_init(),
            &RunConfig { record_every: Some(100), ..cfg(3000, 1, 0.1, 11) },
        )
        .unwrap();
        (out.samples, out.trajectory)
    };
    for f in [&ula as &(dyn Fn() -> _ + Sync), &mala, &annealed] {
        let (a, b) = (in_pool(1, f), in_pool(2, f));
        assert!(a.0.iter().zip(b.0.iter()).all(|(x, y)| x.to_bits() == y.to_bits()), "samples differ");
        assert_eq!(a.1, b.1, "trajectories differ");
    }
}

/// A step size far beyond stability makes ULA diverge: the run stops with the step and the
/// particle where the first non-finite value appeared (the same for any thread count) and a
/// suggestion.
#[test]
fn divergence_is_reported_with_step_and_particle() {
    let t = builtin::build("gaussian", &[("dim".into(), 2.0), ("cond".into(), 100.0)]).unwrap();
    let go =
        |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                run(&Ula::new(t.as_ref(), true), &t.default_init(), &cfg(2000, 1000, 1.0, 12)).err().unwrap()
            })
        };
    let (e1, e2) = (go(1), go(2));
    assert_eq!(e1.to_string(), e2.to_string());
    let s = e1.suggestion().expect("a typed suggestion");
    assert_eq!((s.param, s.value), (langevin::Param::StepSize, 0.1), "a tenth of τ = 1");
    let e1 = e1.to_string();
    assert!(
        e1.contains("non-finite") && e1.contains("step") && e1.contains("particle") && e1.contains("`step_size`"),
        "{e1}"
    );
}

/// Randomness is per particle: the first 1,000 particles of a 100,000-particle run are the
/// 1,000-particle run, bit for bit, whatever the block size, for every sampler (MALA with a
/// fixed step: adaptation pools acceptance over all chains, documented in `sampler`).
#[test]
fn any_prefix_of_a_run_is_the_smaller_run() {
    let t = toy();
    let gauss = builtin::build("gaussian", &[("dim".into(), 3.0), ("cond".into(), 10.0)]).unwrap();
    let (anneal, _) = AnnealConfig::resolve(
        t.as_ref(),
        &AnnealOptions { levels: Some(4), steps_per_level: Some(10), denoise: true, ..Default::default() },
    )
    .unwrap();
    type Runner<'a> = Box<dyn Fn(usize, Option<usize>) -> Array2<f32> + 'a>;
    let c = |n: usize, block: Option<usize>, seed| RunConfig { block_size: block, ..cfg(n, 40, 0.05, seed) };
    let runners: Vec<(&str, Runner)> = vec![
        (
            "ula",
            Box::new(|n, b| {
                run(&Ula::new(t.as_ref(), true), &Init::Uniform { lo: -8.0, hi: 8.0 }, &c(n, b, 21)).unwrap().samples
            }),
        ),
        (
            "mala",
            Box::new(|n, b| run(&Mala::new(gauss.as_ref()), &gauss.default_init(), &c(n, b, 22)).unwrap().samples),
        ),
        (
            "baoab",
            Box::new(|n, b| {
                let k = Underdamped::new(gauss.as_ref(), Scheme::Baoab, &[1.0], 1.0).unwrap();
                run(&k, &gauss.default_init(), &c(n, b, 23)).unwrap().samples
            }),
        ),
        (
            "annealed",
            Box::new(|n, b| {
                run_annealed(t.as_ref(), &anneal, true, &anneal.default_init(t.as_ref()), &c(n, b, 24)).unwrap().samples
            }),
        ),
    ];
    for (name, f) in &runners {
        let small = f(1000, None);
        for (n, block) in [(100_000, None), (100_000, Some(48)), (1000, Some(1000)), (5000, Some(7))] {
            let big = f(n, block);
            let prefix = big.slice(ndarray::s![..1000, ..]);
            assert!(
                small.iter().zip(prefix.iter()).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}: the first 1,000 of {n} particles (block {block:?}) differ from the 1,000-particle run"
            );
        }
        // And the particles are not all the same path: different seeds differ.
        assert!(small.row(0) != small.row(1), "{name}: particles 0 and 1 coincide");
    }
}

/// MALA leaves a curved, non-Gaussian target exactly invariant: started from exact draws of a
/// banana whose x-marginal is exactly N(1, 10), it still matches after 3,000 steps (KS on x;
/// mean of y = E[x²] = 11 within 5 SE).
#[test]
fn mala_keeps_the_banana_exactly_invariant() {
    let t = builtin::build("banana", &[("b".into(), 5.0)]).unwrap();
    let n = 20_000;
    let start = Init::Rows(std::sync::Arc::new(t.sample_exact(n, &mut langevin::rng::LaneRng::new(14, 0)).unwrap()));
    let out = run(&Mala::new(t.as_ref()), &start, &cfg(n, 3000, 0.05, 13)).unwrap();
    // A MALA that rejected everything would keep the exact draws and pass the checks below:
    // the chains must really move (acceptance in a working range, every chain displaced).
    let rate = out.acceptance_rate().unwrap();
    assert!(rate > 0.3 && rate < 0.95, "acceptance {rate}");
    let Init::Rows(x0) = &start else { unreachable!() };
    let moved = x0.outer_iter().zip(out.samples.outer_iter()).filter(|(a, b)| a != b).count();
    assert!(moved as f64 > 0.99 * n as f64, "only {moved} of {n} chains moved");
    let x = column(out.samples.view(), 0);
    let ks = langevin::metrics::ks_test(&x, &t.marginal(0).unwrap());
    assert!(ks.p_value > 1e-3, "{ks:?}");
    let (m, c) = t.moments().unwrap();
    let y = column(out.samples.view(), 1);
    assert!((mean(&y) - m[1]).abs() < 5.0 * (c[[1, 1]] / n as f64).sqrt(), "E[y] = {} vs {}", mean(&y), m[1]);
}
