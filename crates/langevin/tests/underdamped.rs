//! Underdamped Langevin (seed 000's full equation) checked against exact results.

use langevin::sampler::{Init, RunConfig, Scheme, Ula, Underdamped, run};
use langevin::target::{Covariance, GaussianMixture, builtin};
use nalgebra::{Matrix2, Matrix4, Vector4};

fn cfg(particles: usize, steps: usize, dt: f64, seed: u64) -> RunConfig {
    RunConfig { particles, steps, step_size: dt, seed, ..Default::default() }
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (m, v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0))
}

/// Harmonic oscillator U = x²/2 (ω = 1, m = 1, kT = 1). BAOAB's stability limit is Δt < 2/ω;
/// at Δt = 1.6 (80% of it) its position variance is still exactly kT/k = 1 (Leimkuhler &
/// Matthews 2013), while explicit Euler–Maruyama, stable there only for 1.6 < γ < 2.05, lands on
/// its own, biased, stationary variance, which we compute exactly from the discrete Lyapunov
/// equation Σ = M Σ Mᵀ + Q of its linear recursion.
#[test]
fn baoab_is_exact_on_the_harmonic_oscillator_where_euler_maruyama_is_biased() {
    let t = GaussianMixture::gaussian(vec![0.0], Covariance::Isotropic(1.0)).unwrap();
    let (h, gamma) = (1.6, 1.8);
    let n = 100_000;
    let se = (2.0 / n as f64).sqrt();
    let baoab = Underdamped::new(&t, Scheme::Baoab, &[1.0], gamma).unwrap();
    let out = run(&baoab, &Init::Point(vec![0.0]), &cfg(n, 400, h, 1)).unwrap();
    let (_, var) = moments(out.samples.as_slice().unwrap());
    assert!((var - 1.0).abs() < 5.0 * se, "BAOAB variance {var}");

    // Euler–Maruyama: (x, v) ← M (x, v) + (0, √(2γkT h)) ξ with M = [[1, h], [−h, 1 − γh]].
    let m = Matrix2::new(1.0, h, -h, 1.0 - gamma * h);
    let q = 2.0 * gamma * h;
    let lhs = Matrix4::identity() - m.kronecker(&m);
    let sigma = lhs.lu().solve(&Vector4::new(0.0, 0.0, 0.0, q)).unwrap();
    let em_var = sigma[0];
    assert!((em_var - 1.0).abs() > 0.5, "the baseline's theory is clearly biased: {em_var}");
    let em = Underdamped::new(&t, Scheme::EulerMaruyama, &[1.0], gamma).unwrap();
    let out = run(&em, &Init::Point(vec![0.0]), &cfg(n, 400, h, 2)).unwrap();
    let (_, var) = moments(out.samples.as_slice().unwrap());
    assert!((var - em_var).abs() < 5.0 * se * em_var, "EM variance {var} vs its theory {em_var}");
    assert!((var - 1.0).abs() > 50.0 * se, "EM at this Δt is far from the truth: {var}");
    // OBABO is the mirror image: exact in the velocities, with an O(h²) bias in the positions
    // (variance kT/(k(1 − h²ω²/4)) = 2.78 here).
    let obabo = Underdamped::new(&t, Scheme::Obabo, &[1.0], gamma).unwrap();
    let out = run(&obabo, &Init::Point(vec![0.0]), &cfg(n, 400, h, 3)).unwrap();
    let (_, var) = moments(out.samples.as_slice().unwrap());
    let obabo_var = 1.0 / (1.0 - h * h / 4.0);
    assert!((var - obabo_var).abs() < 5.0 * se * obabo_var, "OBABO variance {var} vs {obabo_var}");
}

/// The kinetic temperature ⟨m v²⟩ per degree of freedom equals kT, on a 13-atom Lennard-Jones
/// cluster (39 degrees of freedom per chain) with BAOAB at Δt = 0.005 (the velocity bias of
/// BAOAB is O((hω)²) ≈ 4e-4 here, far below the Monte Carlo error).
#[test]
fn kinetic_temperature_equals_kt() {
    let t = builtin::build("lj-cluster", &[]).unwrap();
    let kt = t.temperature().unwrap();
    let k = Underdamped::new(t.as_ref(), Scheme::Baoab, &[1.0], 10.0).unwrap();
    let chains = 400;
    let out = run(&k, &t.default_init(), &RunConfig { warmup: 2000, thin: Some(200), ..cfg(chains, 4000, 0.005, 4) })
        .unwrap();
    let temp = out.kinetic_temperature.unwrap();
    // In the canonical ensemble all 39 velocity components of a chain are independent, each with
    // Var(m v²) = 2 kT². Kept draws are 200 steps = 1 time unit = 10 velocity relaxation times
    // (m/γ = 0.1) apart, so they are independent too.
    let dof = (chains * 39 * out.draws) as f64;
    let se = kt * (2.0 / dof).sqrt();
    assert!((temp - kt).abs() < 5.0 * se, "kinetic temperature {temp} vs kT = {kt} (± {se})");
    // The cluster held together: every atom within the wall.
    assert!(out.samples.iter().all(|v| v.abs() < 4.0));
}

/// Seed 000's overdamped limit: for m/γ → 0 the positions of m ẍ = −∇U − γẋ + √(2γkT) η follow
/// dx = −∇U/γ dt + √(2kT/γ) dW, whose Euler–Maruyama step is ULA with τ = kT Δt/γ. Starting
/// 10,000 particles at x = 3 in U = x²/2 (kT = 1), after overdamped time s = 0.5 (physical time
/// γ s) BAOAB at γ = 50 has the mean and variance of ULA (τ = 0.005, 100 steps); at γ = 5 inertia
/// still shows (the slow mode decays at (γ − √(γ² − 4))/2 = 0.209 instead of 1/γ = 0.2).
#[test]
fn high_friction_positions_follow_the_overdamped_dynamics() {
    let t = GaussianMixture::gaussian(vec![0.0], Covariance::Isotropic(1.0)).unwrap();
    let n = 40_000;
    let start = Init::Point(vec![3.0]);
    let ula = run(&Ula::new(&t, true), &start, &cfg(n, 100, 0.005, 5)).unwrap();
    let (mu_u, var_u) = moments(ula.samples.as_slice().unwrap());
    // Overdamped exact: mean 3e^{-s}, variance 1 − e^{-2s}; ULA's O(τ) error is far smaller than
    // the Monte Carlo error here.
    assert!((mu_u - 3.0 * (-0.5f64).exp()).abs() < 5.0 * (var_u / n as f64).sqrt());
    let at = |gamma: f64, seed: u64| {
        // Δt resolves the velocity relaxation time m/γ: 10 steps per m/γ.
        let dt = 0.1 / gamma;
        let steps = (0.5 * gamma / dt).round() as usize;
        let k = Underdamped::new(&t, Scheme::Baoab, &[1.0], gamma).unwrap();
        let out = run(&k, &start, &cfg(n, steps, dt, seed)).unwrap();
        moments(out.samples.as_slice().unwrap())
    };
    let se_mean = |v: f64| (v / n as f64).sqrt();
    let se_var = |v: f64| v * (2.0 / n as f64).sqrt();
    let (mu, var) = at(50.0, 6);
    let tol_mu = 5.0 * (se_mean(var).powi(2) + se_mean(var_u).powi(2)).sqrt();
    assert!((mu - mu_u).abs() < tol_mu, "γ = 50: mean {mu} vs ULA {mu_u} (± {tol_mu})");
    let tol_var = 5.0 * (se_var(var).powi(2) + se_var(var_u).powi(2)).sqrt();
    assert!((var - var_u).abs() < tol_var, "γ = 50: variance {var} vs ULA {var_u} (± {tol_var})");
    // At γ = 5 the mean follows x'' + 5x' + x = 0 from rest: x(t) = A e^{λ₁t} + B e^{λ₂t} with
    // λ₁,₂ = (−5 ± √21)/2, A = 3/(1 − λ₁/λ₂); at t = 2.5 the fast mode has died out.
    let (mu5, var5) = at(5.0, 7);
    let (l1, l2) = ((-5.0 + 21f64.sqrt()) / 2.0, (-5.0 - 21f64.sqrt()) / 2.0);
    let expect5 = 3.0 / (1.0 - l1 / l2) * (l1 * 2.5).exp();
    assert!((mu5 - expect5).abs() < 5.0 * se_mean(var5), "γ = 5 follows its underdamped slow mode: {mu5} vs {expect5}");
    assert!(mu5 - mu_u > 0.02, "γ = 5 is not yet overdamped (inertia slows the decay): {mu5} vs {mu_u}");
}

/// Boltzmann statistics with BAOAB: double-well occupancy at kT matches the quadrature.
#[test]
fn baoab_double_well_occupancy_matches_the_boltzmann_integral() {
    let t = builtin::build("double-well", &[]).unwrap();
    let exact = t.marginal(0).unwrap().cdf(0.0);
    let n = 20_000;
    let k = Underdamped::new(t.as_ref(), Scheme::Baoab, &[1.0], 1.0).unwrap();
    let out = run(&k, &Init::Uniform { lo: -2.0, hi: 2.0 }, &cfg(n, 20_000, 0.05, 8)).unwrap();
    let left = out.samples.iter().filter(|&&x| x < 0.0).count() as f64 / n as f64;
    let se = (exact * (1.0 - exact) / n as f64).sqrt();
    assert!((left - exact).abs() < 5.0 * se, "BAOAB {left} vs quadrature {exact}");
}

/// Physical parameters are validated, and a Δt beyond stability stops with the step and advice.
#[test]
fn bad_physical_parameters_and_unstable_steps() {
    let t = builtin::build("double-well", &[]).unwrap();
    let e = |m: &[f64], g: f64| Underdamped::new(t.as_ref(), Scheme::Baoab, m, g).err().unwrap().to_string();
    assert!(e(&[0.0], 1.0).contains("`mass` 0 must be positive"));
    assert!(e(&[-1.0], 1.0).contains("positive"));
    assert!(e(&[1.0, 2.0], 1.0).contains("one per coordinate (1)"));
    assert!(e(&[1.0], 0.0).contains("`friction` 0 must be positive"));
    let k = Underdamped::new(t.as_ref(), Scheme::Baoab, &[1.0], 1.0).unwrap();
    let err = run(&k, &t.default_init(), &cfg(100, 1000, 5.0, 9)).err().unwrap();
    let s = err.suggestion().expect("typed suggestion");
    assert_eq!((s.param, s.value), (langevin::Param::Dt, 1.25), "a quarter of Δt = 5");
    let err = err.to_string();
    assert!(err.contains("non-finite") && err.contains("`dt` = 1.250e0"), "{err}");
}
