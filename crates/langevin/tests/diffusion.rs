//! The claims of the diffusion issue, on scores known exactly (no training): fixed seeds,
//! tolerances from the Monte Carlo error.

use langevin::block::Block;
use langevin::diffusion::likelihood::{Divergence, LikelihoodConfig, Prior, log_likelihood};
use langevin::diffusion::{DiffusionOptions, Method, OdeMethod, ScheduleKind, Solver, Tolerances, samplers};
use langevin::metrics::{mmd, mode_weights};
use langevin::rng::{LaneRng, ParticleRng};
use langevin::sample::{SampleOptions, Sampled, Sampler, sample};
use langevin::target::{Covariance, GaussianMixture, Target, builtin};
use ndarray::{Array2, ArrayView2, s};

fn run(t: &dyn Target, method: &str, options: DiffusionOptions, n: usize, seed: u64) -> Sampled {
    let o = SampleOptions {
        sampler: Sampler::Diffusion { method: Method::from_name(method).unwrap(), options },
        particles: Some(n),
        seed,
        ..Default::default()
    };
    sample(t, &o).unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// MMD between the first 8,000 rows of two sets (median bandwidth).
fn mmd8k(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    mmd(a.slice(s![..8000, ..]), b.slice(s![..8000, ..]), None).0
}

/// PC, the probability-flow ODE (adaptive Dormand–Prince) and EDM Heun on the exact scores of
/// the NCSN toy 0.8·N((5,5), I) + 0.2·N((−5,−5), I): with 100,000 samples the weights are
/// within 0.01 of 0.8/0.2 (Monte Carlo standard error 0.0013), and the MMD to exact draws is
/// within 2× the floor (the MMD between two sets of exact draws of the same size). A sampler
/// that is visibly wrong fails the same bar: EDM with 3 steps.
#[test]
fn pc_ode_and_edm_reproduce_mixture_weights_and_reach_the_mmd_floor() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    let n = 100_000;
    let exact = t.sample_exact(n, &mut LaneRng::new(99, 0)).unwrap();
    let exact2 = t.sample_exact(n, &mut LaneRng::new(98, 0)).unwrap();
    let floor = mmd8k(exact.view(), exact2.view());
    let mix = t.mixture().unwrap();
    for (method, o) in [
        ("pc", DiffusionOptions::default()),
        ("ode", DiffusionOptions::default()),
        ("edm", DiffusionOptions::default()),
    ] {
        let out = run(t.as_ref(), method, o, n, 1);
        let w = mode_weights(out.run.samples.view(), mix);
        let m = mmd8k(out.run.samples.view(), exact.view());
        assert!((w[0] - 0.8).abs() < 0.01, "{method}: weights {w:?}");
        assert!(m < 2.0 * floor, "{method}: MMD {m:.3e}, floor {floor:.3e}");
    }
    let bad = run(t.as_ref(), "edm", DiffusionOptions { steps: Some(3), ..Default::default() }, n, 1);
    let m = mmd8k(bad.run.samples.view(), exact.view());
    assert!(m > 2.0 * floor, "EDM with 3 steps should fail the bar: MMD {m:.3e}, floor {floor:.3e}");
}

/// Every sampler with every schedule lands on the right weights (20,000 samples: within 0.03,
/// over 10 standard errors), and the report counts the score evaluations each one made.
#[test]
fn every_sampler_runs_with_every_schedule_and_counts_its_evaluations() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    let mix = t.mixture().unwrap();
    for m in ["reverse-sde", "reverse-diffusion", "pc", "ode", "ddpm", "ddim", "edm", "dpmpp-2m"] {
        for k in ["ve", "vp", "sub-vp", "cosine", "edm"] {
            let o = DiffusionOptions { schedule: Some(ScheduleKind::from_name(k).unwrap()), ..Default::default() };
            let out = run(t.as_ref(), m, o, 20_000, 3);
            let w = mode_weights(out.run.samples.view(), mix);
            assert!((w[0] - 0.8).abs() < 0.03, "{m} on {k}: weights {w:?}");
            let d = out.report.diffusion.as_ref().unwrap();
            let planned = out.resolved.diffusion.as_ref().unwrap().planned_nfe();
            if let Some(p) = planned {
                assert_eq!(d.nfe, p, "{m} on {k}");
            }
            assert_eq!(d.schedule, k);
        }
    }
    let nfe = |m: &str, steps: usize| {
        run(t.as_ref(), m, DiffusionOptions { steps: Some(steps), ..Default::default() }, 64, 0)
            .report
            .diffusion
            .unwrap()
            .nfe
    };
    // The papers' counts: EDM Heun 2N − 1, PC 2N, DDIM/DPM-Solver++ N.
    assert_eq!((nfe("edm", 18), nfe("pc", 500), nfe("ddim", 50), nfe("dpmpp-2m", 20)), (35, 1000, 50, 20));
}

/// Gaussian data under the exact score: the probability-flow log-likelihood equals the closed
/// form log N(x; μ, Σ + σ_min² I) within 1e-3 relative, with the divergence in closed form,
/// by central differences of the score (a wrapper that hides the closed form), and, on average
/// over 2,000 points, with Hutchinson's estimator.
#[test]
fn probability_flow_likelihood_of_gaussian_data_matches_the_closed_form() {
    let mean = vec![1.0, -2.0, 0.5];
    let cov = Array2::from_shape_vec((3, 3), vec![2.0, 0.6, 0.0, 0.6, 1.0, 0.3, 0.0, 0.3, 0.5]).unwrap();
    let g = GaussianMixture::gaussian(mean.clone(), Covariance::Full(cov.clone())).unwrap();
    let data = g.sample_exact(2000, &mut LaneRng::new(5, 0)).unwrap();
    let sched = ScheduleKind::Ve.build(1e-3, 30.0, 7.0).unwrap();
    let cfg = LikelihoodConfig::new(sched, 1e-5, 3);
    let prior = Prior::of(&g);
    let sigma_eps = sched.sigma(1e-5);
    let closed = g.perturbed(sigma_eps).unwrap();
    let want: Vec<f64> =
        data.outer_iter().map(|r| closed.log_density(&r.iter().map(|&v| v as f64).collect::<Vec<_>>())).collect();
    let want_mean = want.iter().sum::<f64>() / want.len() as f64;
    let check = |ll: &[f64], tol_point: f64, what: &str| {
        let m = ll.iter().sum::<f64>() / ll.len() as f64;
        assert!(((m - want_mean) / want_mean).abs() < 1e-3, "{what}: mean {m} vs {want_mean}");
        let worst = ll.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < tol_point, "{what}: worst point error {worst}");
    };
    let exact = log_likelihood(&g, data.view(), &prior, &cfg).unwrap();
    assert!(exact.closed_form_divergence);
    check(&exact.log_likelihood, 5e-3, "closed-form divergence");
    // Hide the closed form: the divergence comes from differences of the score.
    struct Hidden(GaussianMixture);
    impl Target for Hidden {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn name(&self) -> String {
            "hidden".into()
        }
        fn eval(&self, x: &Block, s: &mut Block, l: Option<&mut [f32]>) -> langevin::Result<()> {
            self.0.eval(x, s, l)
        }
        fn noise_range(&self) -> (f64, f64) {
            self.0.noise_range()
        }
        fn score_at(&self, x: &Block, sigma: f64, out: &mut Block) -> langevin::Result<()> {
            self.0.score_at(x, sigma, out)
        }
    }
    let h = Hidden(g.clone());
    let fd = log_likelihood(&h, data.view(), &prior, &LikelihoodConfig { length_scale: 0.7, ..cfg.clone() }).unwrap();
    assert!(!fd.closed_form_divergence);
    check(&fd.log_likelihood, 5e-3, "differenced divergence");
    // Hutchinson: unbiased, so the mean over 2,000 points is right to its Monte Carlo error
    // (the per-point spread of vᵀ∇s v integrated over the path is O(1); 0.05 is > 5 standard
    // errors), while single points scatter.
    let hut = log_likelihood(
        &h,
        data.view(),
        &prior,
        &LikelihoodConfig { divergence: Divergence::Hutchinson(1), length_scale: 0.7, ..cfg.clone() },
    )
    .unwrap();
    let m = hut.log_likelihood.iter().sum::<f64>() / 2000.0;
    assert!((m - want_mean).abs() < 0.05, "Hutchinson mean {m} vs {want_mean}");
    // Wrong dimension and NaN rows are named.
    let e = log_likelihood(&g, data.slice(s![.., ..2]), &prior, &cfg).unwrap_err();
    assert!(e.to_string().contains("2 columns") && e.to_string().contains("dimension 3"), "{e}");
    let mut bad = data.clone();
    bad[[17, 1]] = f32::NAN;
    let e = log_likelihood(&g, bad.view(), &prior, &cfg).unwrap_err();
    assert!(e.to_string().contains("row 18"), "{e}");
}

/// The probability-flow ODE maps data to noise and back to the same points.
#[test]
fn the_probability_flow_round_trip_returns_the_points() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    let x0 = t.sample_exact(1000, &mut LaneRng::new(3, 0)).unwrap();
    let sched = ScheduleKind::Vp.build(0.01, 20.0, 7.0).unwrap();
    let (lo, hi) = sched.time_range(1e-3);
    let tol = OdeMethod::Adaptive(Tolerances { rtol: 1e-6, atol: 1e-6, max_steps: 10_000 });
    let mut x = Block::from_rows(x0.view());
    samplers::probability_flow(t.as_ref(), &sched, &mut x, &[lo, hi], tol, &mut |_| Ok(())).unwrap();
    // At T the points are noise: far from where they started.
    let mut moved = 0.0f64;
    let mut back = Array2::zeros((1000, 2));
    x.write_rows(back.view_mut());
    for (a, b) in back.outer_iter().zip(x0.outer_iter()) {
        moved = moved.max(((a[0] - b[0]) as f64).hypot((a[1] - b[1]) as f64));
    }
    assert!(moved > 10.0, "the forward flow barely moved the points ({moved})");
    samplers::probability_flow(t.as_ref(), &sched, &mut x, &[hi, lo], tol, &mut |_| Ok(())).unwrap();
    x.write_rows(back.view_mut());
    let err = back.iter().zip(x0.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(err < 2e-3, "round-trip error {err}");
}

/// Seed 002's stiffness: in EDM's time t = σ the probability flow dx/dσ = (x − D(x, σ))/σ has a
/// Jacobian that grows like 1/σ as σ → 0, and the adaptive solver shows it: its steps per unit
/// σ in the decade σ ∈ [0.01, 0.1) are more than 50× those in σ ∈ [10, 40], which the report's
/// `steps_by_sigma` lays out.
#[test]
fn adaptive_steps_crowd_near_zero_noise() {
    let g = GaussianMixture::new(
        vec![0.5, 0.5],
        vec![vec![-1.0, 0.0], vec![1.0, 0.0]],
        vec![Covariance::Isotropic(4e-4), Covariance::Isotropic(4e-4)],
    )
    .unwrap();
    let o = DiffusionOptions {
        schedule: Some(ScheduleKind::Edm),
        sigma_min: Some(0.002),
        sigma_max: Some(40.0),
        rtol: Some(1e-7),
        atol: Some(1e-7),
        ..Default::default()
    };
    let out = run(&g, "ode", o, 2000, 1);
    let d = out.report.diffusion.unwrap();
    let band = |lo: f64| {
        d.steps_by_sigma.iter().find(|b| (b.sigma_from / lo - 1.0).abs() < 1e-9).map_or(0, |b| b.steps) as f64
    };
    let (small, large) = (band(0.01) / 0.09, band(10.0) / 30.0);
    assert!(
        small > 50.0 * large,
        "steps per unit σ: {small:.1} in [0.01, 0.1), {large:.2} in [10, 40]; {:?}",
        d.steps_by_sigma
    );
    assert_eq!(d.accepted_steps, Some(d.steps));
    let w = mode_weights(out.run.samples.view(), g.mixture().unwrap());
    assert!((w[0] - 0.5).abs() < 0.05, "{w:?}");
}

/// Euler–Maruyama on the reverse VP SDE converges at weak order 1: on a 1-D Gaussian N(0, 4)
/// the bias of the sample variance behaves as c/N. With one seed the runs share their starting
/// draws, so the Monte Carlo error (standard error 0.3% of the variance with 200,000 samples) is
/// mostly common to them; the differences e(N) − e(2N) cancel it and must halve when N doubles.
#[test]
fn euler_maruyama_on_the_reverse_sde_converges_at_order_one() {
    let g = GaussianMixture::gaussian(vec![0.0], Covariance::Isotropic(4.0)).unwrap();
    let n = 200_000;
    let var_err = |steps: usize| {
        let o = DiffusionOptions {
            schedule: Some(ScheduleKind::Vp),
            steps: Some(steps),
            denoise: Some(false),
            ..Default::default()
        };
        let out = run(&g, "reverse-sde", o, n, 11);
        let v = out.run.samples.column(0).iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n as f64;
        v - 4.0
    };
    let (e1, e2, e3) = (var_err(10), var_err(20), var_err(40));
    let se = 4.0 * (2.0 / n as f64).sqrt();
    assert!(e1.abs() > 5.0 * se, "EM error at 10 steps {e1:.4} should be visible (se {se:.4})");
    let r = (e1 - e2) / (e2 - e3);
    assert!((1.5..2.7).contains(&r), "errors {e1:.4}, {e2:.4}, {e3:.4}: ratio of differences {r:.3} (order 1 gives 2)");
    // Stochastic Heun with the same 40 steps (twice the evaluations) is several times closer
    // (measured: 0.005 against EM's 0.043).
    let o = DiffusionOptions {
        schedule: Some(ScheduleKind::Vp),
        steps: Some(40),
        denoise: Some(false),
        solver: Some(Solver::Heun),
        ..Default::default()
    };
    let out = run(&g, "reverse-sde", o, n, 11);
    let v = out.run.samples.column(0).iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n as f64;
    assert!((v - 4.0).abs() < e3.abs() / 3.0, "Heun's error {:.4} vs EM's {e3:.4} with 40 steps", v - 4.0);
}

/// Same seed, same samples: for any block size (each particle owns its random stream) and any
/// thread count.
#[test]
fn diffusion_samplers_are_deterministic_for_any_block_size_and_thread_count() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    for m in ["pc", "ddpm", "edm", "reverse-sde"] {
        let go = |block: Option<usize>, threads: usize| {
            let o = SampleOptions {
                sampler: Sampler::Diffusion {
                    method: Method::from_name(m).unwrap(),
                    options: DiffusionOptions { steps: Some(30), ..Default::default() },
                },
                particles: Some(1000),
                seed: 4,
                block_size: block,
                ..Default::default()
            };
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| sample(t.as_ref(), &o).unwrap().run.samples)
        };
        let a = go(None, 2);
        assert_eq!(a, go(Some(7), 1), "{m}");
        assert_eq!(a, go(Some(48), 2), "{m}");
        // A prefix of the particles is the smaller run.
        let small = SampleOptions {
            sampler: Sampler::Diffusion {
                method: Method::from_name(m).unwrap(),
                options: DiffusionOptions { steps: Some(30), ..Default::default() },
            },
            particles: Some(100),
            seed: 4,
            ..Default::default()
        };
        assert_eq!(sample(t.as_ref(), &small).unwrap().run.samples, a.slice(s![..100, ..]), "{m}");
    }
}

/// Bad settings are errors naming the field.
#[test]
fn bad_settings_name_the_field() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    let try_ = |m: &str, o: DiffusionOptions| {
        sample(
            t.as_ref(),
            &SampleOptions {
                sampler: Sampler::Diffusion { method: Method::from_name(m).unwrap(), options: o },
                particles: Some(32),
                ..Default::default()
            },
        )
        .err()
        .map(|e| (e.field(), e.to_string()))
    };
    let d = DiffusionOptions::default;
    for (m, o, field) in [
        ("ode", DiffusionOptions { rtol: Some(0.0), ..d() }, "rtol"),
        ("ode", DiffusionOptions { atol: Some(-1.0), ..d() }, "atol"),
        ("pc", DiffusionOptions { t_eps: Some(1.5), ..d() }, "t_eps"),
        ("pc", DiffusionOptions { t_eps: Some(0.0), ..d() }, "t_eps"),
        ("edm", DiffusionOptions { t_eps: Some(0.1), ..d() }, "t_eps"),
        ("pc", DiffusionOptions { steps: Some(0), ..d() }, "steps"),
        ("pc", DiffusionOptions { sigma_min: Some(5.0), sigma_max: Some(1.0), ..d() }, "sigma_max"),
        ("ddim", DiffusionOptions { snr: Some(0.1), ..d() }, "snr"),
        ("pc", DiffusionOptions { eta: Some(0.5), ..d() }, "eta"),
        ("reverse-sde", DiffusionOptions { solver: Some(Solver::Rk4), ..d() }, "solver"),
        ("ode", DiffusionOptions { rtol: Some(1e-3), steps: Some(10), ..d() }, "rtol"),
    ] {
        let got = try_(m, o.clone());
        assert_eq!(got.as_ref().map(|g| g.0), Some(Some(field)), "{m} {o:?}: {got:?}");
    }
    let e = Method::from_name("ddim2").unwrap_err().to_string();
    assert!(e.contains("dpmpp-2m") && e.contains("pc"), "{e}");
    // A density known only at σ = 0 says which samplers work there.
    let dw = builtin::build("double-well", &[]).unwrap();
    let e = sample(
        dw.as_ref(),
        &SampleOptions { sampler: Sampler::from_name("pc").unwrap(), particles: Some(10), ..Default::default() },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("only at σ = 0") && e.contains("mala"), "{e}");
    // A step budget too small for the adaptive solver stops with the time reached.
    let e = try_("ode", DiffusionOptions { max_steps: Some(5), ..d() }).unwrap();
    assert_eq!(e.0, Some("max_steps"));
    assert!(e.1.contains("reached only t ="), "{}", e.1);
}

/// A NaN near σ → 0 is caught at its step, with the noise level and a suggestion.
#[test]
fn non_finite_values_are_reported_with_their_step_and_noise_level() {
    /// A score that is NaN below σ = 0.05.
    struct Broken(GaussianMixture);
    impl Target for Broken {
        fn dim(&self) -> usize {
            1
        }
        fn name(&self) -> String {
            "broken".into()
        }
        fn eval(&self, x: &Block, s: &mut Block, l: Option<&mut [f32]>) -> langevin::Result<()> {
            self.0.eval(x, s, l)
        }
        fn noise_range(&self) -> (f64, f64) {
            (0.0, f64::INFINITY)
        }
        fn score_at(&self, x: &Block, sigma: f64, out: &mut Block) -> langevin::Result<()> {
            self.0.score_at(x, sigma, out)?;
            if sigma < 0.05 {
                out.row_mut(0)[3] = f32::NAN;
            }
            Ok(())
        }
        fn mean_and_variances(&self) -> Option<(Vec<f64>, Vec<f64>)> {
            Some((vec![0.0], vec![1.0]))
        }
    }
    let b = Broken(GaussianMixture::gaussian(vec![0.0], Covariance::Isotropic(1.0)).unwrap());
    for m in ["edm", "pc", "reverse-sde", "dpmpp-2m"] {
        let o = SampleOptions {
            sampler: Sampler::Diffusion {
                method: Method::from_name(m).unwrap(),
                options: DiffusionOptions {
                    sigma_min: Some(0.01),
                    sigma_max: Some(10.0),
                    steps: Some(40),
                    ..Default::default()
                },
            },
            particles: Some(100),
            ..Default::default()
        };
        match sample(&b, &o).err() {
            Some(langevin::Error::NonFinite { particle, detail, suggest, .. }) => {
                assert_eq!(particle % 16, 3, "{m}");
                assert!(detail.contains("σ ="), "{m}: {detail}");
                assert_eq!(suggest.map(|s| s.param), Some(langevin::Param::Steps), "{m}");
            }
            other => panic!("{m}: {:?}", other.map(|e| e.to_string())),
        }
    }
    let _ = ParticleRng::new(0, 0, 16);
}
