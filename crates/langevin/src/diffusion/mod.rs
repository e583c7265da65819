//! Diffusion in continuous time on any score (seeds 000, 002 and 004): noise schedules, ODE and
//! SDE solvers, and the samplers of score-based generative modeling (the reverse-time SDE,
//! predictor–corrector, the probability-flow ODE, DDPM, DDIM, EDM, DPM-Solver++), plus
//! log-likelihoods through the probability-flow ODE.
//!
//! Everything runs on the [`Score`] seam s(x, σ): a target with exact perturbed scores (Gaussians
//! and mixtures), or a trained network. A schedule only decides which σ is asked at which time
//! ([`schedule`]), so any sampler runs with any schedule on any score.
//!
//! ```
//! use langevin::diffusion::{Method, DiffusionOptions};
//! use langevin::sample::{sample, SampleOptions, Sampler};
//! use langevin::target::builtin;
//! let target = builtin::build("ncsn-toy", &[])?;
//! let out = sample(target.as_ref(), &SampleOptions {
//!     sampler: Sampler::Diffusion { method: Method::from_name("edm")?, options: DiffusionOptions::default() },
//!     particles: Some(4000),
//!     seed: 1,
//!     ..Default::default()
//! })?;
//! let w = out.report.statistics.mode_weights.as_ref().unwrap();
//! assert!((w[0] - 0.8).abs() < 0.03, "{w:?}");
//! assert_eq!(out.report.diffusion.as_ref().unwrap().nfe, 35);   // 18 Heun steps, the last Euler
//! # Ok::<(), langevin::Error>(())
//! ```

pub mod compare;
pub mod likelihood;
pub mod samplers;
pub mod schedule;
pub mod solve;

pub use samplers::{Churn, OdeMethod, PcConfig, ReverseDrift, Step};
pub use schedule::{SCHEDULE_NAMES, Schedule, ScheduleKind};
pub use solve::{SOLVER_NAMES, SdeSolver, SolveStats, Solver, Tolerances};

use crate::block::Block;
use crate::error::Result;
use crate::field::Score;
use crate::invalid_field;
use crate::particles::Particles;
use crate::sampler::blocks::{block_size, map_blocks_in};
use crate::sampler::{Init, RunConfig, RunResult};
use ndarray::{Array2, Array3};
use serde::Serialize;
use std::sync::atomic::Ordering;
use web_time::Instant;

/// A diffusion sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The reverse-time SDE with Euler–Maruyama (or stochastic Heun with `solver` = heun).
    ReverseSde,
    /// The reverse-diffusion predictor alone (Song et al. 2021).
    ReverseDiffusion,
    /// Predictor–corrector: reverse diffusion + Langevin corrector (Song et al. 2021, Alg. 1).
    Pc,
    /// Langevin corrector alone over the schedule (annealed Langevin with the snr rule).
    Corrector,
    /// The probability-flow ODE with an ODE solver (default: adaptive Dormand–Prince).
    Ode,
    /// DDPM's ancestral sampler (Ho et al. 2020): Euler ancestral with η = 1 on the VP grid.
    Ddpm,
    /// DDIM (Song, Meng & Ermon 2021) with η (0: deterministic).
    Ddim,
    /// EDM's Heun sampler (Karras et al. 2022, Alg. 1; Alg. 2 with `s_churn` > 0).
    Edm,
    /// DPM-Solver++(2M) (Lu et al. 2022): the few-step default.
    DpmPp2m,
}

/// Sampler names, as [`Method::from_name`] accepts them.
pub const METHOD_NAMES: &[&str] =
    &["reverse-sde", "reverse-diffusion", "pc", "corrector", "ode", "ddpm", "ddim", "edm", "dpmpp-2m"];

impl Method {
    /// By name.
    pub fn from_name(name: &str) -> Result<Method> {
        Ok(match name {
            "reverse-sde" => Method::ReverseSde,
            "reverse-diffusion" => Method::ReverseDiffusion,
            "pc" => Method::Pc,
            "corrector" => Method::Corrector,
            "ode" | "probability-flow" => Method::Ode,
            "ddpm" => Method::Ddpm,
            "ddim" => Method::Ddim,
            "edm" => Method::Edm,
            "dpmpp-2m" | "dpm-solver++" => Method::DpmPp2m,
            _ => {
                return Err(invalid_field!(
                    "sampler",
                    "unknown diffusion sampler '{name}'; choose one of {}",
                    METHOD_NAMES.join(", ")
                ));
            }
        })
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Method::ReverseSde => "reverse-sde",
            Method::ReverseDiffusion => "reverse-diffusion",
            Method::Pc => "pc",
            Method::Corrector => "corrector",
            Method::Ode => "ode",
            Method::Ddpm => "ddpm",
            Method::Ddim => "ddim",
            Method::Edm => "edm",
            Method::DpmPp2m => "dpmpp-2m",
        }
    }

    /// Whether the sampler draws noise after its start.
    pub fn stochastic(self, o: &DiffusionOptions) -> bool {
        match self {
            Method::Ode | Method::DpmPp2m => false,
            Method::Ddim => o.eta.unwrap_or(0.0) > 0.0,
            Method::Edm => o.s_churn.unwrap_or(0.0) > 0.0,
            _ => true,
        }
    }

    /// Works in σ (on x̂ with a list of noise levels ending at 0) rather than in time.
    pub fn sigma_space(self) -> bool {
        matches!(self, Method::Ddpm | Method::Ddim | Method::Edm | Method::DpmPp2m)
    }

    /// (schedule, steps) by default: the papers' settings.
    fn defaults(self) -> (ScheduleKind, usize) {
        match self {
            Method::ReverseSde | Method::ReverseDiffusion | Method::Corrector => (ScheduleKind::Ve, 1000),
            Method::Pc => (ScheduleKind::Ve, 1000),
            Method::Ode => (ScheduleKind::Ve, 100),
            Method::Ddpm => (ScheduleKind::Vp, 1000),
            Method::Ddim => (ScheduleKind::Vp, 50),
            Method::Edm => (ScheduleKind::Edm, 18),
            Method::DpmPp2m => (ScheduleKind::Edm, 20),
        }
    }
}

/// What the user fixed of a diffusion sampler; `None` is derived (see [`DiffusionConfig::resolve`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiffusionOptions {
    /// The forward process (default per sampler: VE for the score_sde samplers, VP for DDPM
    /// and DDIM, EDM for EDM and DPM-Solver++).
    pub schedule: Option<ScheduleKind>,
    /// The smallest noise level (data units).
    pub sigma_min: Option<f64>,
    /// The largest noise level.
    pub sigma_max: Option<f64>,
    /// EDM's ρ (7).
    pub rho: Option<f64>,
    /// The time cut-off ε of the VE/VP/sub-VP/cosine schedules, in (0, 1).
    pub t_eps: Option<f64>,
    /// Steps N (the sampler's default otherwise).
    pub steps: Option<usize>,
    /// ODE solver (the `ode` sampler: default adaptive Dormand–Prince) or, for `reverse-sde`,
    /// `euler` (Euler–Maruyama, the default) or `heun` (stochastic Heun).
    pub solver: Option<Solver>,
    /// Relative tolerance of the adaptive solver (1e-5).
    pub rtol: Option<f64>,
    /// Absolute tolerance of the adaptive solver (1e-5).
    pub atol: Option<f64>,
    /// Step budget of the adaptive solver (10,000).
    pub max_steps: Option<usize>,
    /// Signal-to-noise ratio of the Langevin corrector (0.16).
    pub snr: Option<f64>,
    /// Corrector steps per level (1).
    pub corrector_steps: Option<usize>,
    /// DDIM's η (0; DDPM is 1).
    pub eta: Option<f64>,
    /// EDM's S_churn (0).
    pub s_churn: Option<f64>,
    /// EDM's S_tmin (0).
    pub s_tmin: Option<f64>,
    /// EDM's S_tmax (∞).
    pub s_tmax: Option<f64>,
    /// EDM's S_noise (1).
    pub s_noise: Option<f64>,
    /// Tweedie's denoising step at the end of the reverse SDE and the ODE (default true; the
    /// σ-space samplers end on the denoiser anyway, PC ends without noise).
    pub denoise: Option<bool>,
}

/// A resolved diffusion sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffusionConfig {
    /// The sampler.
    pub method: Method,
    /// The forward process.
    pub schedule: Schedule,
    /// The time cut-off (VE/VP/sub-VP/cosine; σ_min for EDM).
    pub t_eps: f64,
    /// Steps N.
    pub steps: usize,
    /// Times of the grid, decreasing (time-space samplers and the ODE).
    pub times: Vec<f64>,
    /// Noise levels σ₀ > … > σ_N = 0 (σ-space samplers).
    pub sigmas: Vec<f64>,
    /// ODE integration.
    pub ode: Option<OdeMethod>,
    /// SDE solver of `reverse-sde`.
    pub sde: SdeSolver,
    /// Predictor–corrector settings.
    pub pc: PcConfig,
    /// DDIM's η.
    pub eta: f64,
    /// EDM's churn.
    pub churn: Churn,
    /// Final Tweedie step (reverse SDE, ODE).
    pub denoise: bool,
}

impl DiffusionConfig {
    /// Fill in what `o` leaves open. `range` is the default σ_min and σ_max from the score
    /// (a target's length scales, a model's training ladder), each with where it came from.
    /// Returns the configuration and one note per derived value.
    pub fn resolve(method: Method, o: &DiffusionOptions, range: [(f64, &str); 2]) -> Result<(Self, Vec<String>)> {
        let mut notes = Vec::new();
        let (kind, default_steps) = method.defaults();
        let kind = match o.schedule {
            Some(k) => {
                if method == Method::Ddpm && k != ScheduleKind::Vp && k != ScheduleKind::Cosine {
                    notes.push(format!("DDPM on the {} schedule: ancestral steps in σ", k.name()));
                }
                k
            }
            None => {
                notes.push(format!("schedule = {}: the {} sampler's usual one", kind.name(), method.name()));
                kind
            }
        };
        let sigma_min = o.sigma_min.unwrap_or_else(|| {
            notes.push(format!("sigma_min = {:.4e}: {}", range[0].0, range[0].1));
            range[0].0
        });
        let sigma_max = o.sigma_max.unwrap_or_else(|| {
            notes.push(format!("sigma_max = {:.4}: {}", range[1].0, range[1].1));
            range[1].0
        });
        schedule::check_range(sigma_min, sigma_max)?;
        let rho = o.rho.unwrap_or(7.0);
        let schedule = kind.build(sigma_min, sigma_max, rho)?;
        if o.rho.is_some() && kind != ScheduleKind::Edm {
            return Err(invalid_field!(
                "rho",
                "`rho` applies to the edm schedule only (this run uses {})",
                kind.name()
            ));
        }
        let (t_eps, note) = resolve_t_eps(&schedule, o.t_eps, sigma_min)?;
        notes.extend(note);
        let steps = o.steps.unwrap_or(default_steps);
        if steps == 0 {
            return Err(invalid_field!("steps", "`steps` must be at least 1"));
        }
        let times = schedule.time_grid(steps, t_eps);
        let sigmas = if method.sigma_space() {
            let mut s: Vec<f64> = if steps == 1 {
                vec![sigma_max]
            } else {
                schedule.time_grid(steps - 1, t_eps).iter().map(|&t| schedule.sigma(t)).collect()
            };
            s.push(0.0);
            s
        } else {
            Vec::new()
        };
        let positive = |f: &'static str, v: Option<f64>, default: f64| -> Result<f64> {
            let v = v.unwrap_or(default);
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid_field!(f, "`{f}` = {v} must be non-negative and finite"));
            }
            Ok(v)
        };
        let only = |f: &'static str, set: bool, which: &[Method], what: &str| -> Result<()> {
            if set && !which.contains(&method) {
                return Err(invalid_field!(f, "`{f}` applies to {what} only, not to the {} sampler", method.name()));
            }
            Ok(())
        };
        only("snr", o.snr.is_some(), &[Method::Pc, Method::Corrector], "the pc and corrector samplers")?;
        only(
            "corrector_steps",
            o.corrector_steps.is_some(),
            &[Method::Pc, Method::Corrector],
            "the pc and corrector samplers",
        )?;
        only("eta", o.eta.is_some(), &[Method::Ddim], "the ddim sampler")?;
        for (f, v) in [("s_churn", o.s_churn), ("s_tmin", o.s_tmin), ("s_tmax", o.s_tmax), ("s_noise", o.s_noise)] {
            only(f, v.is_some(), &[Method::Edm], "the edm sampler")?;
        }
        for (f, v) in [("rtol", o.rtol.is_some()), ("atol", o.atol.is_some()), ("max_steps", o.max_steps.is_some())] {
            only(f, v, &[Method::Ode], "the ode sampler with the dopri5 solver")?;
        }
        only("solver", o.solver.is_some(), &[Method::Ode, Method::ReverseSde], "the ode and reverse-sde samplers")?;
        if o.denoise == Some(false) && !matches!(method, Method::Ode | Method::ReverseSde) {
            return Err(invalid_field!(
                "denoise",
                "`denoise` = false applies to the ode and reverse-sde samplers only; the {} sampler ends on the denoiser, \
                 or without noise, by design",
                method.name()
            ));
        }
        let snr = positive("snr", o.snr, 0.16)?;
        let eta = positive("eta", o.eta, if method == Method::Ddpm { 1.0 } else { 0.0 })?;
        let churn = Churn {
            s_churn: positive("s_churn", o.s_churn, 0.0)?,
            s_tmin: positive("s_tmin", o.s_tmin, 0.0)?,
            s_tmax: o.s_tmax.unwrap_or(f64::INFINITY),
            s_noise: positive("s_noise", o.s_noise, 1.0)?,
        };
        if churn.s_tmax.is_nan() || churn.s_tmax < churn.s_tmin {
            return Err(invalid_field!(
                "s_tmax",
                "`s_tmax` = {} must be at least `s_tmin` = {}",
                churn.s_tmax,
                churn.s_tmin
            ));
        }
        let tol = Tolerances {
            rtol: o.rtol.unwrap_or(1e-5),
            atol: o.atol.unwrap_or(1e-5),
            max_steps: o.max_steps.unwrap_or(10_000),
        };
        tol.check()?;
        let ode = (method == Method::Ode).then(|| match o.solver {
            None | Some(Solver::Dopri5) if o.steps.is_none() => OdeMethod::Adaptive(tol),
            Some(s) => OdeMethod::Grid(s),
            None => OdeMethod::Grid(Solver::Heun),
        });
        if let Some(OdeMethod::Grid(_)) = ode
            && (o.rtol.is_some() || o.atol.is_some() || o.max_steps.is_some())
        {
            return Err(invalid_field!(
                "rtol",
                "`rtol`, `atol` and `max_steps` apply to the adaptive dopri5 solver, which runs when `steps` is not given"
            ));
        }
        let sde = match (method, o.solver) {
            (Method::ReverseSde, Some(Solver::Heun)) => SdeSolver::Heun,
            (Method::ReverseSde, Some(Solver::Euler) | None) => SdeSolver::EulerMaruyama,
            (Method::ReverseSde, Some(s)) => {
                return Err(invalid_field!(
                    "solver",
                    "the reverse SDE takes the euler (Euler–Maruyama) or heun (stochastic Heun) solver, not {}",
                    s.name()
                ));
            }
            _ => SdeSolver::EulerMaruyama,
        };
        let pc = PcConfig {
            predictor: method != Method::Corrector,
            corrector_steps: match method {
                Method::Pc | Method::Corrector => o.corrector_steps.unwrap_or(1),
                _ => 0,
            },
            snr,
        };
        if method == Method::Corrector && pc.corrector_steps == 0 {
            return Err(invalid_field!("corrector_steps", "the corrector sampler needs `corrector_steps` ≥ 1"));
        }
        let cfg = DiffusionConfig {
            method,
            schedule,
            t_eps,
            steps,
            times,
            sigmas,
            ode,
            sde,
            pc,
            eta,
            churn,
            denoise: o.denoise.unwrap_or(true),
        };
        Ok((cfg, notes))
    }

    /// The largest σ the sampler starts from (x̂ ~ N(mean, σ_max² I)).
    pub fn sigma_start(&self) -> f64 {
        if self.method.sigma_space() { self.sigmas[0] } else { self.schedule.sigma(self.times[0]) }
    }

    /// Score evaluations per particle, when known before the run (not for adaptive solves).
    pub fn planned_nfe(&self) -> Option<usize> {
        let n = self.steps;
        Some(
            match self.method {
                Method::ReverseSde => n * if self.sde == SdeSolver::Heun { 2 } else { 1 },
                Method::ReverseDiffusion => n,
                Method::Pc | Method::Corrector => n * (usize::from(self.pc.predictor) + self.pc.corrector_steps),
                Method::Ode => match self.ode? {
                    OdeMethod::Grid(Solver::Dopri5) => 6 * n + 1,
                    OdeMethod::Grid(s) => {
                        n * [1, 2, 4][[Solver::Euler, Solver::Heun, Solver::Rk4].iter().position(|x| *x == s)?]
                    }
                    OdeMethod::Adaptive(_) => return None,
                },
                Method::Ddpm | Method::Ddim | Method::DpmPp2m => n,
                Method::Edm => 2 * n - 1,
            } + usize::from(self.denoise && matches!(self.method, Method::Ode | Method::ReverseSde)),
        )
    }

    /// Steps the callback sees (for progress).
    pub fn planned_steps(&self) -> usize {
        self.steps
    }

    /// The noise level after `k` steps of a fixed grid (k = 0: the start).
    pub fn sigma_after(&self, k: usize) -> f64 {
        if self.method.sigma_space() {
            self.sigmas[k.min(self.sigmas.len() - 1)]
        } else {
            self.schedule.sigma(self.times[k.min(self.times.len() - 1)])
        }
    }
}

/// The time cut-off ε of `schedule`: the given one, checked to lie in (0, 1); by default 1e-5
/// for VE (score_sde's), σ_min for EDM (whose time is σ; a given ε is an error there), and
/// otherwise where σ(ε) = σ_min (with a note saying so).
pub(crate) fn resolve_t_eps(schedule: &Schedule, given: Option<f64>, sigma_min: f64) -> Result<(f64, Option<String>)> {
    let kind = schedule.kind();
    Ok(match (kind, given) {
        (ScheduleKind::Edm, Some(_)) => {
            return Err(invalid_field!(
                "t_eps",
                "`t_eps` does not apply to the edm schedule (its time is σ): set `sigma_min` instead"
            ));
        }
        (ScheduleKind::Edm, None) => (sigma_min, None),
        (_, Some(e)) if !(e > 0.0 && e < 1.0) => {
            return Err(invalid_field!("t_eps", "the time cut-off `t_eps` = {e} must lie in (0, 1)"));
        }
        (_, Some(e)) => (e, None),
        (ScheduleKind::Ve, None) => (1e-5, None),
        (_, None) => {
            let e = time_of_sigma(schedule, sigma_min);
            (e, Some(format!("t_eps = {e:.3e}: where the {} schedule's σ(t) = sigma_min", kind.name())))
        }
    })
}

/// The time at which σ(t) = `sigma` (bisection on (0, t_max]).
pub(crate) fn time_of_sigma(s: &Schedule, sigma: f64) -> f64 {
    let (_, hi) = s.time_range(0.0);
    let (mut a, mut b) = (0.0f64, hi);
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if s.sigma(m) < sigma { a = m } else { b = m }
    }
    b.clamp(1e-6, 0.5 * hi)
}

/// What one batch's sampling did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiffusionStats {
    /// Score evaluations per particle.
    pub nfe: usize,
    /// Accepted steps (adaptive ODE) or steps.
    pub accepted: usize,
    /// Rejected steps (adaptive ODE).
    pub rejected: usize,
    /// The σ at the start of every step.
    pub step_sigmas: Vec<f64>,
}

/// Sample one batch: `x` holds x̂ at σ_max (e.g. N(mean, σ_max² I)) and ends as samples.
pub fn diffuse<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    x: &mut X,
    cfg: &DiffusionConfig,
    rng: &mut X::Noise,
    callback: samplers::Callback<'_, X>,
) -> Result<DiffusionStats> {
    let levels: Vec<f64> = if cfg.method.sigma_space() {
        cfg.sigmas.iter().cloned().filter(|s| *s > 0.0).collect()
    } else {
        cfg.times.iter().map(|&t| cfg.schedule.sigma(t)).collect()
    };
    for sigma in levels {
        crate::field::check_sigma(score, sigma)?;
    }
    let sched = &cfg.schedule;
    let fixed =
        |nfe: usize, sig: &[f64]| DiffusionStats { nfe, accepted: sig.len(), rejected: 0, step_sigmas: sig.to_vec() };
    let time_sigmas: Vec<f64> = cfg.times[..cfg.times.len() - 1].iter().map(|&t| sched.sigma(t)).collect();
    let mut stats = match cfg.method {
        Method::Ddpm | Method::Ddim => {
            fixed(samplers::euler_ancestral(score, x, &cfg.sigmas, cfg.eta, rng, callback)?, &cfg.sigmas[..cfg.steps])
        }
        Method::Edm => {
            fixed(samplers::edm_heun(score, x, &cfg.sigmas, cfg.churn, rng, callback)?, &cfg.sigmas[..cfg.steps])
        }
        Method::DpmPp2m => fixed(samplers::dpmpp_2m(score, x, &cfg.sigmas, callback)?, &cfg.sigmas[..cfg.steps]),
        Method::ReverseSde => {
            fixed(samplers::reverse_sde(score, sched, x, &cfg.times, cfg.sde, rng, callback)?, &time_sigmas)
        }
        Method::ReverseDiffusion | Method::Pc | Method::Corrector => {
            fixed(samplers::predictor_corrector(score, sched, x, &cfg.times, cfg.pc, rng, callback)?, &time_sigmas)
        }
        Method::Ode => {
            let s = samplers::probability_flow(score, sched, x, &cfg.times, cfg.ode.expect("resolved"), callback)?;
            DiffusionStats {
                nfe: s.nfe,
                accepted: s.accepted,
                rejected: s.rejected,
                step_sigmas: s.step_starts.iter().map(|&t| sched.sigma(t)).collect(),
            }
        }
    };
    if cfg.denoise && matches!(cfg.method, Method::Ode | Method::ReverseSde) {
        let sigma = sched.sigma(*cfg.times.last().expect("grid"));
        let mut d = x.zeros_like();
        score.denoise(x, sigma, &mut d)?;
        x.copy_from(&d);
        stats.nfe += 1;
        if x.first_non_finite().is_some() {
            return Err(invalid_field!(
                "denoise",
                "the final denoising step at σ = {sigma:.3e} produced non-finite values; try `denoise` = false or a larger `sigma_min`"
            ));
        }
    }
    Ok(stats)
}

/// Accepted steps per band of σ (decades), for reports: where an adaptive solver spent its steps.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SigmaBand {
    /// The band's lower σ.
    pub sigma_from: f64,
    /// The band's upper σ.
    pub sigma_to: f64,
    /// Steps that started in it.
    pub steps: usize,
}

/// Steps per decade of σ.
pub fn steps_by_decade(step_sigmas: &[f64]) -> Vec<SigmaBand> {
    let pos: Vec<f64> = step_sigmas.iter().cloned().filter(|s| *s > 0.0).collect();
    if pos.is_empty() {
        return Vec::new();
    }
    let lo = pos.iter().cloned().fold(f64::INFINITY, f64::min).log10().floor() as i32;
    let hi = pos.iter().cloned().fold(0.0, f64::max).log10().floor() as i32;
    (lo..=hi)
        .map(|k| {
            let (a, b) = (10f64.powi(k), 10f64.powi(k + 1));
            SigmaBand { sigma_from: a, sigma_to: b, steps: pos.iter().filter(|s| **s >= a && **s < b).count() }
        })
        .collect()
}

/// A diffusion sampler on `cfg.particles` particles from `init` (x̂ at σ_max): [`diffuse`] on
/// every block, with trajectories, progress and cancellation from `cfg`. Returns the run and
/// the statistics of the block with the most score evaluations (fixed-step samplers: every
/// block's).
pub fn run_diffusion<S: Score<Block> + ?Sized>(
    score: &S,
    dc: &DiffusionConfig,
    init: &Init,
    cfg: &RunConfig,
) -> Result<(RunResult, DiffusionStats)> {
    let start = Instant::now();
    let (n, d) = (cfg.particles, score.dim());
    if cfg.record_every == Some(0) {
        return Err(invalid_field!("record_every", "`record_every` must be at least 1"));
    }
    let block = block_size(n, d, score.batch_hint(), cfg.block_size)?;
    let every = cfg.record_every;
    let blocks = map_blocks_in(n, d, block, cfg.shard, cfg.seed, init, |_first, mut x, rng| {
        let mut frames = Vec::new();
        if every.is_some() {
            x.append_rows(&mut frames);
        }
        let mut recorded = 1usize;
        let len = x.len() as u64;
        let mut last_index = 0;
        let stats = diffuse(score, &mut x, dc, rng, &mut |st| {
            last_index = st.index;
            if let Some(k) = every
                && st.index % k == 0
            {
                // Frames are in the data's units (x̂), whatever the sampler holds.
                if st.scale == 1.0 {
                    st.x.append_rows(&mut frames);
                } else {
                    let mut y = st.x.clone();
                    y.scale_add((1.0 / st.scale) as f32, 0.0, st.x);
                    y.append_rows(&mut frames);
                }
                recorded += 1;
            }
            if let Some(p) = &cfg.progress {
                p.fetch_add(len, Ordering::Relaxed);
            }
            match &cfg.cancel {
                Some(c) if c.load(Ordering::Relaxed) => Err(crate::Error::msg("interrupted")),
                _ => Ok(()),
            }
        })?;
        // The last frame is always the final state.
        if every.is_some() {
            x.append_rows(&mut frames);
            recorded += 1;
        }
        Ok((x, frames, stats, recorded))
    })?;
    let n_here: usize = blocks.iter().map(|b| b.0.len()).sum();
    let mut samples = Array2::zeros((n_here, d));
    let mut first = 0;
    for (x, ..) in &blocks {
        x.write_rows(samples.slice_mut(ndarray::s![first..first + x.len(), ..]));
        first += x.len();
    }
    // Adaptive solves may take different numbers of steps per block: frames are kept up to the
    // fewest, plus the final state.
    let trajectory = every.map(|_| {
        let n_frames = blocks.iter().map(|b| b.3).min().unwrap_or(1);
        let mut traj = Array3::zeros((n_frames, n_here, d));
        let mut first = 0;
        for (x, frames, _, rec) in &blocks {
            let len = x.len();
            for f in 0..n_frames {
                let src_f = if f + 1 == n_frames { rec - 1 } else { f };
                let src = &frames[src_f * len * d..(src_f + 1) * len * d];
                traj.slice_mut(ndarray::s![f, first..first + len, ..])
                    .as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(src);
            }
            first += len;
        }
        traj
    });
    let stats = blocks.iter().map(|b| &b.2).max_by_key(|s| s.nfe).cloned().unwrap_or_default();
    let steps = stats.accepted;
    Ok((
        RunResult {
            samples,
            draws: 1,
            trajectory,
            accepted: 0,
            proposed: 0,
            warmup_acceptance: None,
            step_size: 0.0,
            seconds: start.elapsed().as_secs_f64(),
            particle_steps: (n_here * steps) as u64,
            block_size: block,
            kinetic_temperature: None,
        },
        stats,
    ))
}

/// The diffusion sampler in a report.
#[derive(Clone, Debug, Serialize)]
pub struct DiffusionReport {
    /// Sampler.
    pub method: &'static str,
    /// Schedule.
    pub schedule: &'static str,
    /// σ_min.
    pub sigma_min: f64,
    /// σ_max (where sampling starts).
    pub sigma_max: f64,
    /// The time cut-off (σ_min for EDM).
    pub t_eps: f64,
    /// Steps N (grid), or accepted steps (adaptive).
    pub steps: usize,
    /// Score evaluations per particle (of the block that needed most).
    pub nfe: usize,
    /// The ODE or SDE solver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver: Option<&'static str>,
    /// Adaptive: rtol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// Adaptive: atol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// Adaptive: accepted steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_steps: Option<usize>,
    /// Adaptive: rejected steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_steps: Option<usize>,
    /// Steps per decade of σ (where the effort went).
    pub steps_by_sigma: Vec<SigmaBand>,
    /// Corrector's snr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr: Option<f64>,
    /// Corrector steps per level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrector_steps: Option<usize>,
    /// DDIM/DDPM η.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// EDM S_churn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_churn: Option<f64>,
    /// Final Tweedie step (reverse SDE, ODE).
    pub denoise: bool,
    /// How each value was chosen.
    pub notes: Vec<String>,
}

impl DiffusionReport {
    /// The report of a run with `cfg` that produced `stats`.
    pub fn new(cfg: &DiffusionConfig, stats: &DiffusionStats, notes: Vec<String>) -> Self {
        let m = cfg.method;
        let adaptive = matches!(cfg.ode, Some(OdeMethod::Adaptive(_)));
        let tol = match cfg.ode {
            Some(OdeMethod::Adaptive(t)) => Some(t),
            _ => None,
        };
        let (lo, _) = cfg.schedule.time_range(cfg.t_eps);
        DiffusionReport {
            method: m.name(),
            schedule: cfg.schedule.kind().name(),
            sigma_min: cfg.schedule.sigma(lo),
            sigma_max: cfg.sigma_start(),
            t_eps: cfg.t_eps,
            steps: if adaptive { stats.accepted } else { cfg.steps },
            nfe: stats.nfe,
            solver: match (m, cfg.ode) {
                (Method::Ode, Some(OdeMethod::Adaptive(_))) => Some("dopri5"),
                (Method::Ode, Some(OdeMethod::Grid(s))) => Some(s.name()),
                (Method::ReverseSde, _) => Some(match cfg.sde {
                    SdeSolver::EulerMaruyama => "euler-maruyama",
                    SdeSolver::Heun => "stochastic-heun",
                }),
                _ => None,
            },
            rtol: tol.map(|t| t.rtol),
            atol: tol.map(|t| t.atol),
            accepted_steps: adaptive.then_some(stats.accepted),
            rejected_steps: adaptive.then_some(stats.rejected),
            steps_by_sigma: steps_by_decade(&stats.step_sigmas),
            snr: (cfg.pc.corrector_steps > 0).then_some(cfg.pc.snr),
            corrector_steps: (cfg.pc.corrector_steps > 0).then_some(cfg.pc.corrector_steps),
            eta: matches!(m, Method::Ddim | Method::Ddpm).then_some(cfg.eta),
            s_churn: (m == Method::Edm).then_some(cfg.churn.s_churn),
            denoise: cfg.denoise && matches!(m, Method::Ode | Method::ReverseSde),
            notes,
        }
    }
}
