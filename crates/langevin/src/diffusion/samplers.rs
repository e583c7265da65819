//! The diffusion samplers as short functions over a score (k-diffusion's style), generic over
//! the particle storage. Two families:
//!
//! - **σ-space samplers** work on x̂ = x_t/s(t) with a decreasing list of noise levels
//!   σ₀ > … > σ_{N−1} > σ_N = 0 (Karras et al. 2022 show every schedule's ODE is the same ODE
//!   in x̂ and σ): [`euler_ancestral`] (DDIM with η; DDPM ancestral is η = 1, the posterior
//!   q(x_{t−1} | x_t, x₀) written in σ), [`edm_heun`] (Karras et al. Algorithms 1 and 2),
//!   [`dpmpp_2m`] (DPM-Solver++(2M), Lu et al. 2022). Their last step lands on the denoiser.
//! - **time-space samplers** work on x_t with the schedule's f(t) and g(t) (score_sde's
//!   style): [`reverse_sde`], [`predictor_corrector`] (reverse-diffusion predictor and
//!   Langevin corrector, Song et al. 2021 Algorithms 2–3), [`probability_flow`] (the ODE
//!   dx/dt = f x − ½ g² ∇log p_t with any solver of [`super::solve`]).
//!
//! All take x̂ in and give x̂ out; every function returns its score evaluations per particle.

use super::schedule::Schedule;
use super::solve::{self, OdeStep, SdeSolver, SolveStats, Solver, Tolerances};
use crate::error::{Error, Param, Result, Suggestion};
use crate::field::{Score, VectorField};
use crate::particles::Particles;

/// One step of a sampler, as its callback sees it.
pub struct Step<'a, X> {
    /// Steps done, from 1.
    pub index: usize,
    /// The noise level σ (data units) reached.
    pub sigma: f64,
    /// The mean scale s(t) of `x`: time-space samplers hold x_t = s(t)·x̂ (1 for VE and EDM and
    /// for the σ-space samplers, which hold x̂).
    pub scale: f64,
    /// The state after the step.
    pub x: &'a X,
}

/// A callback that sees every step; an error from it stops the sampler.
pub type Callback<'c, X> = &'c mut dyn FnMut(Step<'_, X>) -> Result<()>;

fn guard<X: Particles>(finite: bool, x: &X, step: usize, sigma: f64, steps: usize) -> Result<()> {
    if finite {
        return Ok(());
    }
    match x.first_non_finite() {
        Some(p) => Err(Error::NonFinite {
            step,
            particle: p,
            detail: format!(" (noise level σ = {sigma:.4e}, step {step} of {steps})"),
            suggest: Some(Suggestion { param: Param::Steps, value: 2.0 * steps as f64, why: "twice the steps" }),
        }),
        None => Ok(()),
    }
}

/// Euler ancestral in σ (k-diffusion's `sample_euler_ancestral`): from σ to σ' it moves to
/// D + (σ_down/σ)(x − D) and adds σ_up z, with σ_up = min(σ', η σ'√(σ² − σ'²)/σ) and
/// σ_down = √(σ'² − σ_up²). η = 0 is DDIM (deterministic: Euler on the probability-flow ODE in
/// σ); η = 1 is DDPM's ancestral step (the Gaussian posterior q(x_{t−1} | x_t, x₀)).
pub fn euler_ancestral<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    x: &mut X,
    sigmas: &[f64],
    eta: f64,
    rng: &mut X::Noise,
    callback: Callback<'_, X>,
) -> Result<usize> {
    let (mut d, mut z) = (x.zeros_like(), x.zeros_like());
    let n = sigmas.len() - 1;
    for i in 0..n {
        let (s, sn) = (sigmas[i], sigmas[i + 1]);
        score.denoise(x, s, &mut d)?;
        let finite = if sn == 0.0 {
            x.copy_from(&d);
            x.first_non_finite().is_none()
        } else {
            let up = (eta * sn * ((s * s - sn * sn).max(0.0)).sqrt() / s).min(sn);
            let down = (sn * sn - up * up).sqrt();
            let r = down / s;
            x.scale_add(r as f32, (1.0 - r) as f32, &d);
            if up > 0.0 {
                z.fill_normal(rng);
                x.drift_add(up as f32, &z)
            } else {
                x.first_non_finite().is_none()
            }
        };
        guard(finite, x, i + 1, sn, n)?;
        callback(Step { index: i + 1, sigma: sn, scale: 1.0, x })?;
    }
    Ok(n)
}

/// The stochasticity of EDM's Algorithm 2: at levels σ ∈ [s_tmin, s_tmax], raise σ to
/// σ̂ = σ(1 + γ), γ = min(s_churn/N, √2 − 1), by adding √(σ̂² − σ²)·s_noise·z. s_churn = 0 is the
/// deterministic Algorithm 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// S_churn (0: deterministic).
    pub s_churn: f64,
    /// S_tmin.
    pub s_tmin: f64,
    /// S_tmax.
    pub s_tmax: f64,
    /// S_noise.
    pub s_noise: f64,
}

impl Default for Churn {
    fn default() -> Self {
        Churn { s_churn: 0.0, s_tmin: 0.0, s_tmax: f64::INFINITY, s_noise: 1.0 }
    }
}

/// Karras et al. (2022) Algorithm 2 (Algorithm 1 when `churn.s_churn` = 0): Heun's method on
/// dx/dσ = (x − D(x, σ))/σ, with Euler on the last step to σ = 0 (2N − 1 evaluations).
pub fn edm_heun<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    x: &mut X,
    sigmas: &[f64],
    churn: Churn,
    rng: &mut X::Noise,
    callback: Callback<'_, X>,
) -> Result<usize> {
    let (mut d, mut d2, mut y, mut z) = (x.zeros_like(), x.zeros_like(), x.zeros_like(), x.zeros_like());
    let n = sigmas.len() - 1;
    let mut nfe = 0;
    // d ← (x − D(x, σ))/σ
    let slope = |x: &X, sigma: f64, out: &mut X| -> Result<()> {
        score.denoise(x, sigma, out)?;
        out.scale_add((-1.0 / sigma) as f32, (1.0 / sigma) as f32, x);
        Ok(())
    };
    for i in 0..n {
        let (s, sn) = (sigmas[i], sigmas[i + 1]);
        let gamma = if churn.s_churn > 0.0 && s >= churn.s_tmin && s <= churn.s_tmax {
            (churn.s_churn / n as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        };
        let sh = s * (1.0 + gamma);
        if gamma > 0.0 {
            z.fill_normal(rng);
            x.drift_add(((sh * sh - s * s).sqrt() * churn.s_noise) as f32, &z);
        }
        slope(x, sh, &mut d)?;
        nfe += 1;
        let h = sn - sh;
        let finite = if sn == 0.0 {
            x.drift_add(h as f32, &d)
        } else {
            y.copy_from(x);
            y.drift_add(h as f32, &d);
            slope(&y, sn, &mut d2)?;
            nfe += 1;
            x.drift_add((0.5 * h) as f32, &d) & x.drift_add((0.5 * h) as f32, &d2)
        };
        guard(finite, x, i + 1, sn, n)?;
        callback(Step { index: i + 1, sigma: sn, scale: 1.0, x })?;
    }
    Ok(nfe)
}

/// DPM-Solver++(2M) (Lu et al. 2022; k-diffusion's `sample_dpmpp_2m`): a second-order
/// multistep solver of the probability-flow ODE in λ = −ln σ on the denoiser, one evaluation
/// per step; the first step and the last (to σ = 0) are first order.
pub fn dpmpp_2m<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    x: &mut X,
    sigmas: &[f64],
    callback: Callback<'_, X>,
) -> Result<usize> {
    let (mut d, mut old, mut mix) = (x.zeros_like(), x.zeros_like(), x.zeros_like());
    let n = sigmas.len() - 1;
    let lam = |s: f64| -s.ln();
    for i in 0..n {
        let (s, sn) = (sigmas[i], sigmas[i + 1]);
        score.denoise(x, s, &mut d)?;
        let finite = if sn == 0.0 {
            x.copy_from(&d);
            x.first_non_finite().is_none()
        } else {
            let h = lam(sn) - lam(s);
            let a = sn / s;
            let b = -(-h).exp_m1();
            if i == 0 {
                x.scale_add(a as f32, b as f32, &d);
            } else {
                let r = (lam(s) - lam(sigmas[i - 1])) / h;
                // D' = (1 + 1/(2r)) D − 1/(2r) D_prev
                mix.copy_from(&d);
                mix.scale_add((1.0 + 0.5 / r) as f32, (-0.5 / r) as f32, &old);
                x.scale_add(a as f32, b as f32, &mix);
            }
            x.first_non_finite().is_none()
        };
        std::mem::swap(&mut old, &mut d);
        guard(finite, x, i + 1, sn, n)?;
        callback(Step { index: i + 1, sigma: sn, scale: 1.0, x })?;
    }
    Ok(n)
}

/// The reverse-time drift of a schedule over a score, as a vector field in t:
/// v(t, x) = f(t) x − w g(t)² ∇ₓ log p_t(x), with ∇ log p_t(x) = s(x/s(t), σ(t))/s(t).
/// w = 1 is the reverse SDE's drift (Anderson 1982; seed 000), w = ½ the probability-flow ODE.
pub struct ReverseDrift<'a, S: ?Sized> {
    /// The score.
    pub score: &'a S,
    /// The forward process.
    pub schedule: Schedule,
    /// ½ for the probability-flow ODE, 1 for the reverse SDE.
    pub weight: f64,
}

/// ∇ₓ log p_t(x) = s(x/s(t), σ(t))/s(t) into `out`.
pub fn score_t<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    schedule: &Schedule,
    t: f64,
    x: &X,
    out: &mut X,
) -> Result<()> {
    let (s, sigma) = (schedule.scale(t), schedule.sigma(t));
    if s == 1.0 {
        return score.score(x, sigma, out);
    }
    let mut y = x.zeros_like();
    y.scale_add(0.0, (1.0 / s) as f32, x);
    score.score(&y, sigma, out)?;
    out.scale_add((1.0 / s) as f32, 0.0, x);
    Ok(())
}

impl<X: Particles, S: Score<X> + ?Sized> VectorField<X> for ReverseDrift<'_, S> {
    fn dim(&self) -> usize {
        self.score.dim()
    }
    fn velocity(&self, t: f64, x: &X, out: &mut X) -> Result<()> {
        score_t(self.score, &self.schedule, t, x, out)?;
        out.scale_add((-self.weight * self.schedule.g2(t)) as f32, self.schedule.drift(t) as f32, x);
        Ok(())
    }
    fn batch_hint(&self) -> usize {
        self.score.batch_hint()
    }
}

/// x_t ← s(t)·x̂ (or back with the inverse factor).
fn rescale<X: Particles>(x: &mut X, factor: f64) {
    if factor != 1.0 {
        let y = x.zeros_like();
        x.scale_add(factor as f32, 0.0, &y);
    }
}

/// The reverse-time SDE dx = [f x − g² ∇log p_t] dt + g dW̄ (seed 000), from `times[0]` down
/// to the last time, with Euler–Maruyama or stochastic Heun; the last step adds no noise.
pub fn reverse_sde<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    schedule: &Schedule,
    x: &mut X,
    times: &[f64],
    solver: SdeSolver,
    rng: &mut X::Noise,
    callback: Callback<'_, X>,
) -> Result<usize> {
    let drift = ReverseDrift { score, schedule: *schedule, weight: 1.0 };
    let last = *times.last().expect("a grid");
    rescale(x, schedule.scale(times[0]));
    let g = |t: f64| schedule.g2(t).sqrt();
    let terms = solve::SdeTerms { drift: &drift, diffusion: &g };
    let nfe = solve::solve_sde(terms, solver, x, times, false, rng, &mut |st: OdeStep<'_, X>| {
        callback(Step { index: st.index, sigma: schedule.sigma(st.t), scale: schedule.scale(st.t), x: st.x })
    })
    .map_err(|e| with_sigma(e, schedule, times))?;
    rescale(x, 1.0 / schedule.scale(last));
    Ok(nfe)
}

/// A solver's non-finite error, told in noise levels.
fn with_sigma(e: Error, schedule: &Schedule, times: &[f64]) -> Error {
    match e {
        Error::NonFinite { step, particle, suggest, .. } => {
            let t = times.get(step).copied().unwrap_or(f64::NAN);
            Error::NonFinite {
                step,
                particle,
                detail: format!(" (time t = {t:.4e}, noise level σ = {:.4e})", schedule.sigma(t)),
                suggest,
            }
        }
        e => e,
    }
}

/// Settings of [`predictor_corrector`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PcConfig {
    /// Run the reverse-diffusion predictor (false: corrector only).
    pub predictor: bool,
    /// Langevin corrector steps per level (0: predictor only).
    pub corrector_steps: usize,
    /// The corrector's signal-to-noise ratio r.
    pub snr: f64,
}

/// Song et al. (2021) Algorithms 2–3: at each time, `corrector_steps` Langevin steps
/// x ← x + ε ∇log p_t + √(2ε) z, then one reverse-diffusion predictor step to the next time
/// (VE and EDM: x + (σ_i² − σ_{i+1}²) ∇log p_t + √(σ_i² − σ_{i+1}²) z; VP and cosine:
/// (2 − √α) x + β ∇log p_t + √β z with α = 1 − β = s_i²/s_{i+1}²; sub-VP: Euler–Maruyama).
/// The last predictor step adds no noise (score_sde's noise removal).
///
/// The corrector's step is ε = 2α (r·std(t))², the rule of score_sde (ε = 2α (r‖z‖/‖∇log p‖)²)
/// with the norms replaced by their expectations (E‖∇log p_t‖² ≈ d/std(t)², E‖z‖² = d):
/// score_sde averages the norms over the batch, which would make a particle's path depend on
/// the others in its batch.
pub fn predictor_corrector<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    schedule: &Schedule,
    x: &mut X,
    times: &[f64],
    cfg: PcConfig,
    rng: &mut X::Noise,
    callback: Callback<'_, X>,
) -> Result<usize> {
    let (mut g, mut z) = (x.zeros_like(), x.zeros_like());
    let n = times.len() - 1;
    let mut nfe = 0;
    rescale(x, schedule.scale(times[0]));
    let vp_like = !matches!(schedule, Schedule::Ve { .. } | Schedule::Edm { .. });
    for i in 0..n {
        let (t, tn) = (times[i], times[i + 1]);
        let alpha = if vp_like { (schedule.scale(t) / schedule.scale(tn)).powi(2) } else { 1.0 };
        for _ in 0..cfg.corrector_steps {
            score_t(score, schedule, t, x, &mut g)?;
            nfe += 1;
            let eps = 2.0 * alpha * (cfg.snr * schedule.std(t)).powi(2);
            z.fill_normal(rng);
            let ok = x.langevin_add(eps as f32, &g, (2.0 * eps).sqrt() as f32, &z);
            guard(ok, x, i + 1, schedule.sigma(t), n)?;
        }
        let noise = i + 1 < n;
        if cfg.predictor {
            score_t(score, schedule, t, x, &mut g)?;
            nfe += 1;
            let (a, b, c) = match schedule {
                Schedule::Ve { .. } | Schedule::Edm { .. } => {
                    let (s, sn) = (schedule.sigma(t), schedule.sigma(tn));
                    let g2 = s * s - sn * sn;
                    (1.0, g2, g2.sqrt())
                }
                Schedule::Vp { .. } | Schedule::Cosine { .. } => {
                    let beta = 1.0 - alpha;
                    (2.0 - alpha.sqrt(), beta, beta.sqrt())
                }
                Schedule::SubVp { .. } | Schedule::Linear { .. } => {
                    let dt = t - tn;
                    (1.0 - schedule.drift(t) * dt, schedule.g2(t) * dt, (schedule.g2(t) * dt).sqrt())
                }
            };
            if a != 1.0 {
                // x ← a·x (the 0·g term adds nothing; a non-finite g is caught below).
                x.scale_add(a as f32, 0.0, &g);
            }
            let ok = if noise {
                z.fill_normal(rng);
                x.langevin_add(b as f32, &g, c as f32, &z)
            } else {
                x.drift_add(b as f32, &g)
            };
            guard(ok, x, i + 1, schedule.sigma(tn), n)?;
        }
        callback(Step { index: i + 1, sigma: schedule.sigma(tn), scale: schedule.scale(tn), x })?;
    }
    rescale(x, 1.0 / schedule.scale(times[n]));
    Ok(nfe)
}

/// How [`probability_flow`] integrates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OdeMethod {
    /// A fixed-step solver on the time grid.
    Grid(Solver),
    /// Dormand–Prince 5(4) with these tolerances from the first to the last time.
    Adaptive(Tolerances),
}

/// The probability-flow ODE dx/dt = f x − ½ g² ∇log p_t(x) (Song et al. 2021, eq. 13) from
/// `times[0]` to the last time: deterministic, the same marginals as the reverse SDE.
pub fn probability_flow<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    schedule: &Schedule,
    x: &mut X,
    times: &[f64],
    method: OdeMethod,
    callback: Callback<'_, X>,
) -> Result<SolveStats> {
    let v = ReverseDrift { score, schedule: *schedule, weight: 0.5 };
    let last = *times.last().expect("a grid");
    rescale(x, schedule.scale(times[0]));
    let mut cb = |st: OdeStep<'_, X>| {
        callback(Step { index: st.index, sigma: schedule.sigma(st.t), scale: schedule.scale(st.t), x: st.x })
    };
    let stats = match method {
        OdeMethod::Grid(solver) => {
            solve::solve_grid(&v, solver, x, times, &mut cb).map_err(|e| with_sigma(e, schedule, times))?
        }
        OdeMethod::Adaptive(tol) => solve::solve_adaptive(&v, x, times[0], last, &tol, &mut cb)?,
    };
    rescale(x, 1.0 / schedule.scale(last));
    Ok(stats)
}
