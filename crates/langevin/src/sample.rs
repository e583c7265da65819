//! Sampling as one call: choose a sampler by value or by name, let the library derive what is
//! left open (step size, start, warm-up, the annealing ladder), and get the samples, the
//! resolved settings with notes saying how each was derived, a typed report and warnings.
//!
//! This is the layer the `langevin sample` command, the bench, the Python package and any
//! library user share; the command line only turns flags into [`SampleOptions`] and prints.
//!
//! ```
//! use langevin::sample::{sample, SampleOptions, Sampler};
//! use langevin::target::builtin;
//! let target = builtin::build("ncsn-toy", &[])?;
//! let out = sample(target.as_ref(), &SampleOptions {
//!     sampler: Sampler::from_name("annealed")?,
//!     particles: Some(2000),
//!     seed: 1,
//!     ..Default::default()
//! })?;
//! assert_eq!(out.run.samples.dim(), (2000, 2));
//! let w = out.report.statistics.mode_weights.as_ref().unwrap();
//! assert!((w[0] - 0.8).abs() < 0.05, "{w:?}");          // annealing restores the weights
//! assert!(!out.resolved.notes.is_empty());              // and says how it chose the ladder
//! # Ok::<(), langevin::Error>(())
//! ```

use crate::analysis::{self, Stiffness};
use crate::diagnostics;
use crate::diffusion::{DiffusionConfig, DiffusionOptions, DiffusionReport, DiffusionStats, Method, run_diffusion};
use crate::error::Result;
use crate::invalid_field;
use crate::metrics;
use crate::rng::LaneRng;
use crate::sampler::{
    self, AnnealConfig, AnnealOptions, Init, Mala, RunConfig, RunResult, Scheme, Shard, Ula, Underdamped, run_annealed,
};
use crate::target::Target;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use web_time::Instant;

/// A sampler, as a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    /// Unadjusted Langevin, x ← x + τ s(x) + √(2τ) z; `noise: false` is gradient ascent.
    Ula {
        /// Add the noise term.
        noise: bool,
    },
    /// Metropolis-adjusted Langevin; `adapt`: the acceptance rate the warm-up aims at (None:
    /// keep the step fixed).
    Mala {
        /// Target acceptance of the warm-up's dual averaging.
        adapt: Option<f64>,
    },
    /// Annealed Langevin over a noise ladder (Song & Ermon 2019).
    Annealed {
        /// What is fixed of the schedule; the rest comes from the target.
        options: AnnealOptions,
        /// Add the noise term.
        noise: bool,
    },
    /// Underdamped Langevin in physical units.
    Underdamped {
        /// BAOAB, OBABO or Euler–Maruyama.
        scheme: Scheme,
        /// One mass, or one per coordinate.
        mass: Vec<f64>,
        /// Friction coefficient γ.
        friction: f64,
    },
    /// A diffusion sampler over the target's perturbed scores s(x, σ) ([`crate::diffusion`]).
    Diffusion {
        /// Which one.
        method: Method,
        /// What is fixed; the rest comes from the target.
        options: DiffusionOptions,
    },
    /// Independent exact draws (targets that can be sampled directly).
    Exact,
}

/// The names [`Sampler::from_name`] accepts.
pub const SAMPLER_NAMES: &[&str] = &[
    "ula",
    "mala",
    "annealed",
    "baoab",
    "obabo",
    "underdamped-em",
    "exact",
    "reverse-sde",
    "reverse-diffusion",
    "pc",
    "corrector",
    "ode",
    "ddpm",
    "ddim",
    "edm",
    "dpmpp-2m",
];

/// The samplers that need only the score at σ = 0 (they work on every target).
pub const PLAIN_SAMPLERS: &[&str] = &["ula", "mala", "baoab", "obabo", "underdamped-em"];

impl Sampler {
    /// A sampler by name, with its defaults (MALA adapts towards 0.574; annealed denoises;
    /// underdamped m = 1, γ = 1).
    pub fn from_name(name: &str) -> Result<Sampler> {
        let underdamped = |scheme| Sampler::Underdamped { scheme, mass: vec![1.0], friction: 1.0 };
        Ok(match name {
            "ula" => Sampler::Ula { noise: true },
            "mala" => Sampler::Mala { adapt: Some(0.574) },
            "annealed" => {
                Sampler::Annealed { options: AnnealOptions { denoise: true, ..Default::default() }, noise: true }
            }
            "baoab" => underdamped(Scheme::Baoab),
            "obabo" => underdamped(Scheme::Obabo),
            "underdamped-em" => underdamped(Scheme::EulerMaruyama),
            "exact" => Sampler::Exact,
            _ if crate::diffusion::METHOD_NAMES.contains(&name) => {
                Sampler::Diffusion { method: Method::from_name(name)?, options: DiffusionOptions::default() }
            }
            _ => {
                return Err(invalid_field!(
                    "sampler",
                    "unknown sampler '{name}'; choose one of {}",
                    SAMPLER_NAMES.join(", ")
                ));
            }
        })
    }

    /// The name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Sampler::Ula { .. } => "ula",
            Sampler::Mala { .. } => "mala",
            Sampler::Annealed { .. } => "annealed",
            Sampler::Underdamped { scheme, .. } => scheme.name(),
            Sampler::Exact => "exact",
            Sampler::Diffusion { method, .. } => method.name(),
        }
    }

    /// Whether the sampler needs the perturbed score s(x, σ) at σ > 0.
    pub fn needs_noise_levels(&self) -> bool {
        matches!(self, Sampler::Annealed { .. } | Sampler::Diffusion { .. })
    }

    /// Whether the update adds noise.
    pub fn noise(&self) -> bool {
        match self {
            Sampler::Ula { noise } | Sampler::Annealed { noise, .. } => *noise,
            Sampler::Exact => false,
            Sampler::Diffusion { method, options } => method.stochastic(options),
            _ => true,
        }
    }
}

/// The step of a stationary sampler: τ for ULA/MALA (MALA's starting value when it adapts),
/// Δt for the underdamped samplers.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum StepSize {
    /// From the target's length scales ([`Target::default_step_size`], or for the underdamped
    /// samplers Δt = 0.2 ℓ √(m/kT)).
    #[default]
    Default,
    /// This value.
    Given(f64),
    /// From the stiffness of the target: τ = 1/λ_max, Δt = √(m/(λ_max kT)) (half the
    /// stability limits), with λ_max over 1,000 typical points.
    Auto,
}

/// Everything a sampling run takes; `None` fields are derived (see [`Resolved`]).
#[derive(Clone, Debug, Default)]
pub struct SampleOptions {
    /// The sampler.
    pub sampler: Sampler,
    /// τ or Δt (not for annealed Langevin, whose step is its ε).
    pub step_size: StepSize,
    /// Where particles start (default: the target's region; annealed: N(mean, σ₁² I)).
    pub init: Option<Init>,
    /// Number of particles (default 10,000, or the rows of an `init` file).
    pub particles: Option<usize>,
    /// Steps after warm-up (default 1,000; not for annealed Langevin).
    pub steps: Option<usize>,
    /// Warm-up steps (default 1,000 for MALA, 0 otherwise).
    pub warmup: Option<usize>,
    /// Keep every k-th state after warm-up (default: the final state only).
    pub thin: Option<usize>,
    /// Record all positions every k steps.
    pub record_every: Option<usize>,
    /// Seed of all random streams.
    pub seed: u64,
    /// Particles per block (default from N, d and the target; results do not depend on it).
    pub block_size: Option<usize>,
    /// Counter of particle-steps done, for progress display.
    pub progress: Option<Arc<AtomicU64>>,
    /// Set to stop early (the call then returns an error).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Run one shard of the particles (see [`Shard`]): the output holds its rows, the report
    /// its figures and, under `shard`, what [`merge`] needs to rebuild the whole run.
    pub shard: Option<Shard>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::Ula { noise: true }
    }
}

/// The settings a run used, with one note per derived value.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Particles.
    pub particles: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Steps after warm-up (L·T for annealed Langevin).
    pub steps: usize,
    /// The step τ / Δt the run started with (annealed: ε).
    pub step_size: f64,
    /// The start (none for exact draws).
    pub init: Option<Init>,
    /// The annealing schedule.
    pub anneal: Option<AnnealConfig>,
    /// The diffusion sampler's settings.
    pub diffusion: Option<DiffusionConfig>,
    /// The stiffness measurement behind [`StepSize::Auto`].
    pub stiffness: Option<Stiffness>,
    /// How each derived value was chosen.
    pub notes: Vec<String>,
    /// The notes about the annealing schedule alone (a subset of `notes`).
    pub schedule_notes: Vec<String>,
}

/// Mean, covariance and, where the target knows them, exact values and mode weights.
#[derive(Clone, Debug, Serialize)]
pub struct Statistics {
    /// Sample mean.
    pub mean: Vec<f64>,
    /// Sample covariance (empty above [`Statistics::MAX_COVARIANCE_DIM`] dimensions).
    pub covariance: Vec<Vec<f64>>,
    /// Exact mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_mean: Option<Vec<f64>>,
    /// Exact covariance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_covariance: Option<Vec<Vec<f64>>>,
    /// Fractions of samples nearest (by responsibility) to each mixture component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_weights: Option<Vec<f64>>,
    /// The mixture's weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_weights_expected: Option<Vec<f64>>,
}

impl Statistics {
    /// The largest dimension whose covariance matrices a report carries.
    pub const MAX_COVARIANCE_DIM: usize = 2048;

    /// The statistics of `samples` (one per row) against `target`. Above
    /// [`Statistics::MAX_COVARIANCE_DIM`] dimensions the d × d covariances are left out (empty
    /// and absent: at d = 10⁵ each would take 80 GB); means and mode weights remain.
    pub fn of(samples: ArrayView2<f32>, target: &dyn Target) -> Statistics {
        let mix = target.mixture().filter(|m| m.n_components() > 1);
        if samples.ncols() > Self::MAX_COVARIANCE_DIM {
            return Statistics {
                mean: diagnostics::mean(samples),
                covariance: Vec::new(),
                exact_mean: target.mean_and_variances().map(|(m, _)| m),
                exact_covariance: None,
                mode_weights: mix.map(|m| metrics::mode_weights(samples, m)),
                mode_weights_expected: mix.map(|m| m.weights().to_vec()),
            };
        }
        let rows = |m: &ndarray::Array2<f64>| m.outer_iter().map(|r| r.to_vec()).collect();
        let (mean, cov) = diagnostics::mean_cov(samples);
        let exact = target.moments();
        Statistics {
            mean,
            covariance: rows(&cov),
            exact_mean: exact.as_ref().map(|(m, _)| m.clone()),
            exact_covariance: exact.as_ref().map(|(_, c)| rows(c)),
            mode_weights: mix.map(|m| metrics::mode_weights(samples, m)),
            mode_weights_expected: mix.map(|m| m.weights().to_vec()),
        }
    }
}

/// Bulk ESS and rank-normalized split R-hat per coordinate, over chains.
#[derive(Clone, Debug, Serialize)]
pub struct ChainDiagnostics {
    /// The smallest bulk ESS over coordinates.
    pub ess_bulk_min: f64,
    /// The largest R-hat over coordinates.
    pub rhat_max: f64,
    /// Bulk ESS per coordinate.
    pub ess_bulk: Vec<f64>,
    /// R-hat per coordinate.
    pub rhat: Vec<f64>,
}

impl ChainDiagnostics {
    /// Diagnostics of samples laid out `draws × chains` (row k·chains + i = chain i, draw k).
    pub fn of(samples: ArrayView2<f32>, chains: usize) -> ChainDiagnostics {
        let per: Vec<(f64, f64)> = (0..samples.ncols())
            .into_par_iter()
            .map(|c| diagnostics::ess_bulk_and_rhat(&diagnostics::chains_of(samples, chains, c)))
            .collect();
        let ess: Vec<f64> = per.iter().map(|p| p.0).collect();
        let rhat: Vec<f64> = per.iter().map(|p| p.1).collect();
        ChainDiagnostics {
            ess_bulk_min: ess.iter().cloned().fold(f64::INFINITY, f64::min),
            rhat_max: rhat.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            ess_bulk: ess,
            rhat,
        }
    }
}

/// The annealing schedule in a report.
#[derive(Clone, Debug, Serialize)]
pub struct AnnealingReport {
    /// σ₁.
    pub sigma_max: f64,
    /// σ_L.
    pub sigma_min: f64,
    /// L.
    pub levels: usize,
    /// T.
    pub steps_per_level: usize,
    /// ε.
    pub eps: f64,
    /// Final denoising step.
    pub denoise: bool,
    /// σ₁ > … > σ_L.
    pub sigmas: Vec<f64>,
    /// α_i = ε σ_i²/σ_L².
    pub step_sizes: Vec<f64>,
    /// How each value was chosen.
    pub notes: Vec<String>,
}

/// How `StepSize::Auto` chose the step.
#[derive(Clone, Debug, Serialize)]
pub struct AutoStepReport {
    /// λ_max of the score's Jacobian.
    pub lambda_max: f64,
    /// Where.
    pub lambda_max_at: Vec<f64>,
    /// 2/λ_max.
    pub max_stable_ula_step: f64,
    /// The step chosen.
    pub chosen: f64,
    /// Points measured.
    pub samples: usize,
    /// The rule.
    pub rule: &'static str,
}

/// What a sampling run did and what came out: the `sample` command's report.
#[derive(Clone, Debug, Serialize)]
pub struct SampleReport {
    /// Sampler name.
    pub sampler: &'static str,
    /// Target description.
    pub target: String,
    /// Dimension.
    pub dim: usize,
    /// Particles.
    pub particles: usize,
    /// Steps, warm-up included.
    pub steps: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Thinning.
    pub thin: Option<usize>,
    /// Kept draws per particle.
    pub draws_per_particle: usize,
    /// Seed.
    pub seed: u64,
    /// Threads of the pool that ran it.
    pub threads: usize,
    /// Particles per block.
    pub block_size: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Particle-steps per second.
    pub particle_steps_per_second: f64,
    /// Whether the noise term was on.
    pub noise: bool,
    /// The start.
    pub init: String,
    /// The annealing schedule (annealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annealing: Option<AnnealingReport>,
    /// The diffusion sampler: schedule, steps, score evaluations (NFE), solver statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffusion: Option<DiffusionReport>,
    /// Δt (underdamped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dt: Option<f64>,
    /// Masses (underdamped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mass: Option<Vec<f64>>,
    /// Friction (underdamped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friction: Option<f64>,
    /// τ after warm-up (ULA, MALA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<f64>,
    /// τ at the start (ULA, MALA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size_initial: Option<f64>,
    /// How an automatic step was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size_auto: Option<AutoStepReport>,
    /// kT of a Boltzmann target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Mean potential energy U = −kT log p over the samples (Boltzmann targets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub potential_energy_mean: Option<f64>,
    /// ⟨m v²⟩ per degree of freedom (underdamped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinetic_temperature: Option<f64>,
    /// Accepted fraction after warm-up (MALA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance_rate: Option<f64>,
    /// Mean acceptance probability of the last warm-up window (MALA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_acceptance: Option<Option<f64>>,
    /// Moments and mode weights.
    #[serde(flatten)]
    pub statistics: Statistics,
    /// ESS and R-hat (with at least 4 kept draws per chain).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub chains: Option<ChainDiagnostics>,
    /// What a shard ran (a shard's report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardReport>,
    /// Problems worth a look.
    pub warnings: Vec<String>,
}

/// A shard's part of a run: where its rows go and the run's counters over them, enough for
/// [`merge`] to rebuild the whole run's result and report.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ShardReport {
    /// This shard (from 0).
    pub index: usize,
    /// Shards in the run.
    pub count: usize,
    /// Particles of the whole run.
    pub particles_total: usize,
    /// The shard's particles: `first .. end` of the whole run's.
    pub first: usize,
    /// One past the shard's last particle.
    pub end: usize,
    /// Kept draws per particle.
    pub draws: usize,
    /// Accepted proposals after warm-up (MALA).
    pub accepted: u64,
    /// Proposals after warm-up (MALA).
    pub proposed: u64,
    /// Particle-steps done.
    pub particle_steps: u64,
    /// Particles per block (the whole run's blocks).
    pub block_size: usize,
    /// τ after warm-up (the pilot's adaptation: the same in every shard).
    pub step_size: f64,
    /// The pilot's mean acceptance in the last warm-up window.
    pub warmup_acceptance: Option<f64>,
    /// ⟨m v²⟩ per degree of freedom over this shard's draws.
    pub kinetic_temperature: Option<f64>,
    /// Diffusion samplers: the statistics of the shard's block with the most score evaluations
    /// (NFE, accepted and rejected steps, the σ at every step).
    pub diffusion: Option<(usize, usize, usize, Vec<f64>)>,
}

/// One shard's output for [`merge`]: its samples (draw-major, as [`RunResult::samples`]) and
/// report.
pub struct ShardPart {
    /// The shard's samples.
    pub samples: ndarray::Array2<f32>,
    /// Its report's `shard` record.
    pub shard: ShardReport,
    /// Its wall-clock seconds.
    pub seconds: f64,
}

/// Samples, settings, report.
pub struct Sampled {
    /// The run (samples, trajectory, acceptance, timing).
    pub run: RunResult,
    /// The settings used, with notes.
    pub resolved: Resolved,
    /// The typed report.
    pub report: SampleReport,
}

/// Default time step of the underdamped samplers: a fifth of the period scale 1/ω_max of the
/// stiffest mode, with ω_max ≈ √(kT/m)/ℓ for the narrowest length scale ℓ of the target.
pub fn default_dt(t: &dyn Target, mass: &[f64]) -> f64 {
    let kt = t.temperature().unwrap_or(1.0);
    let m = mass.iter().cloned().fold(f64::INFINITY, f64::min);
    match t.scales() {
        Some(s) if m.is_finite() && m > 0.0 => 0.2 * s.smallest * (m / kt).sqrt(),
        _ => 0.01,
    }
}

/// Check `opts` against the sampler: settings that do not apply are errors naming the field.
fn check(opts: &SampleOptions) -> Result<()> {
    let s = &opts.sampler;
    let mcmc_only = [("steps", opts.steps.is_some()), ("warmup", opts.warmup.is_some()), ("thin", opts.thin.is_some())];
    match s {
        Sampler::Exact => {
            for (f, set) in mcmc_only.into_iter().chain([
                ("step_size", opts.step_size != StepSize::Default),
                ("init", opts.init.is_some()),
                ("record_every", opts.record_every.is_some()),
            ]) {
                if set {
                    return Err(invalid_field!(
                        f,
                        "`{f}` does not apply to exact sampling (independent draws from the target itself)"
                    ));
                }
            }
        }
        Sampler::Annealed { .. } => {
            for (f, set) in mcmc_only {
                if set {
                    return Err(invalid_field!(
                        f,
                        "`{f}` does not apply to annealed Langevin; its length is `levels` × `steps_per_level`"
                    ));
                }
            }
            if opts.step_size != StepSize::Default {
                return Err(invalid_field!(
                    "step_size",
                    "`step_size` does not apply to annealed Langevin; set the step at the smallest noise level with `eps`"
                ));
            }
        }
        Sampler::Diffusion { method, .. } => {
            for (f, set) in [("warmup", opts.warmup.is_some()), ("thin", opts.thin.is_some())] {
                if set {
                    return Err(invalid_field!(
                        f,
                        "`{f}` does not apply to the {} sampler; its length is `steps`",
                        method.name()
                    ));
                }
            }
            if opts.step_size != StepSize::Default {
                return Err(invalid_field!(
                    "step_size",
                    "`step_size` does not apply to the {} sampler; its steps follow the schedule: set `steps`",
                    method.name()
                ));
            }
        }
        Sampler::Mala { adapt: Some(r) } if !(*r > 0.0 && *r < 1.0) => {
            return Err(invalid_field!("adapt", "the target acceptance `adapt` = {r} must be between 0 and 1"));
        }
        _ => {}
    }
    if opts.shard.is_some() && opts.record_every.is_some() {
        return Err(invalid_field!(
            "record_every",
            "trajectories are not recorded in shards (merge joins samples and reports); record on one machine"
        ));
    }
    if let StepSize::Given(v) = opts.step_size
        && !(v.is_finite() && v > 0.0)
    {
        return Err(invalid_field!("step_size", "`step_size` = {v} must be positive and finite"));
    }
    Ok(())
}

/// (warm-up, steps) of a stationary sampler: 1,000 warm-up steps for MALA (it adapts its step
/// in them), none otherwise; 1,000 steps.
fn mcmc_length(opts: &SampleOptions) -> (usize, usize) {
    let is_mala = matches!(opts.sampler, Sampler::Mala { .. });
    (opts.warmup.unwrap_or(if is_mala { 1000 } else { 0 }), opts.steps.unwrap_or(1000))
}

/// The number of steps (warm-up included) [`sample`] will run for these options: 0 for exact
/// draws, L·T of the resolved ladder for annealed Langevin. For progress bars and recording
/// intervals, before the run.
pub fn planned_steps(target: &dyn Target, opts: &SampleOptions) -> Result<usize> {
    Ok(match &opts.sampler {
        Sampler::Exact => 0,
        Sampler::Annealed { options, .. } => AnnealConfig::resolve(target, options)?.0.total_steps(),
        Sampler::Diffusion { method, options } => diffusion_config(target, *method, options, opts.steps)?.0.steps,
        _ => {
            let (w, s) = mcmc_length(opts);
            w + s
        }
    })
}

/// The default noise range of diffusion samplers and likelihoods on a target, each end with
/// where it came from: σ_min = 1/100 of the narrowest std, σ_max = annealed Langevin's σ₁ (the
/// largest distance between modes + 6 × the widest std). None without length scales.
pub fn target_sigma_range(target: &dyn Target) -> Option<[(f64, &'static str); 2]> {
    target.scales().map(|sc| {
        [
            (0.01 * sc.smallest, "1/100 of the target's narrowest standard deviation"),
            (sc.largest, "the largest distance between the target's modes + 6 × its widest standard deviation"),
        ]
    })
}

/// The diffusion sampler's settings for a target: σ_max as annealed Langevin's σ₁ (the
/// largest distance between modes plus 6 × the widest std), σ_min = 1/100 of the narrowest
/// std; `steps` (the run's) overrides the options' steps when they leave it open.
pub fn diffusion_config(
    target: &dyn Target,
    method: Method,
    options: &DiffusionOptions,
    steps: Option<usize>,
) -> Result<(DiffusionConfig, Vec<String>)> {
    if target.noise_range().1 == 0.0 {
        return Err(invalid_field!(
            "sampler",
            "the {} sampler needs the perturbed score s(x, σ) at every noise level, and '{}' knows its score only at σ = 0 (perturbed scores are known exactly for Gaussians and mixtures, and for trained models); samplers that work on it: {}",
            method.name(),
            target.name(),
            PLAIN_SAMPLERS.join(", ")
        ));
    }
    let o = DiffusionOptions { steps: options.steps.or(steps), ..options.clone() };
    let range = match target_sigma_range(target) {
        Some(r) => r,
        None if o.sigma_min.is_some() && o.sigma_max.is_some() => [(0.0, ""), (0.0, "")],
        None => {
            return Err(invalid_field!(
                "sigma_max",
                "target '{}' has no known length scales; give `sigma_min` and `sigma_max`",
                target.name()
            ));
        }
    };
    DiffusionConfig::resolve(method, &o, range)
}

/// Sample `target` as `opts` says. See the module documentation.
pub fn sample(target: &dyn Target, opts: &SampleOptions) -> Result<Sampled> {
    sample_or_merge(target, opts, None)
}

/// The whole run that the shards `parts` of `sample(target, opts)` make, as if it had run in
/// one piece: the samples bit for bit (rows in particle order, draw by draw) and the report
/// recomputed over all of them (moments, mode weights, ESS and R-hat over all chains,
/// acceptance from the summed counts; seconds summed over the shards). The parts must be every
/// shard of one run, once each, in any order; `opts` are the run's options without `shard`.
pub fn merge(target: &dyn Target, opts: &SampleOptions, parts: &[ShardPart]) -> Result<Sampled> {
    if opts.shard.is_some() {
        return Err(invalid_field!("shard", "merge takes the options of the whole run, without `shard`"));
    }
    if parts.is_empty() {
        return Err(invalid_field!("shard", "no shards to merge"));
    }
    let count = parts[0].shard.count;
    let mut order: Vec<Option<usize>> = vec![None; count];
    for (i, p) in parts.iter().enumerate() {
        let s = &p.shard;
        if s.count != count {
            return Err(invalid_field!(
                "shard",
                "the shards come from runs cut differently: shard {}/{} beside shard {}/{count}",
                s.index,
                s.count,
                parts[0].shard.index
            ));
        }
        if s.index >= count {
            return Err(invalid_field!("shard", "shard {}/{count} is out of range", s.index));
        }
        if let Some(j) = order[s.index] {
            return Err(invalid_field!(
                "shard",
                "shard {}/{count} is given twice (inputs {} and {})",
                s.index,
                j + 1,
                i + 1
            ));
        }
        order[s.index] = Some(i);
    }
    let missing: Vec<String> = (0..count).filter(|k| order[*k].is_none()).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(invalid_field!(
            "shard",
            "shard{} {} of {count} missing: merge needs every shard of the run",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    let sorted: Vec<&ShardPart> = order.iter().map(|i| &parts[i.expect("checked")]).collect();
    sample_or_merge(target, opts, Some(&sorted))
}

/// The run of the shards `parts` (sorted by index): checked against each other and the
/// resolved settings, rows in particle order draw by draw.
fn merged_run(parts: &[&ShardPart], particles: usize, dim: usize) -> Result<(RunResult, Option<DiffusionStats>)> {
    let s0 = &parts[0].shard;
    let mut end = 0;
    for p in parts {
        let s = &p.shard;
        let same = s.particles_total == s0.particles_total
            && s.draws == s0.draws
            && s.block_size == s0.block_size
            && s.step_size.to_bits() == s0.step_size.to_bits()
            && s.warmup_acceptance.map(f64::to_bits) == s0.warmup_acceptance.map(f64::to_bits);
        if !same {
            return Err(invalid_field!(
                "shard",
                "shard {} disagrees with shard 0 on the run's particles, draws, blocks or adapted step size: the shards come from different runs",
                s.index
            ));
        }
        if s.first != end || s.end <= s.first {
            return Err(invalid_field!(
                "shard",
                "shard {} holds particles {}..{} but the shards before it end at {end}: the shards come from different runs",
                s.index,
                s.first,
                s.end
            ));
        }
        if p.samples.dim() != ((s.end - s.first) * s.draws, dim) {
            return Err(invalid_field!(
                "shard",
                "shard {} has {} × {} samples but its report says {} particles × {} draws in {dim} dimensions: a truncated or foreign file",
                s.index,
                p.samples.nrows(),
                p.samples.ncols(),
                s.end - s.first,
                s.draws
            ));
        }
        end = s.end;
    }
    if end != particles || s0.particles_total != particles {
        return Err(invalid_field!(
            "shard",
            "the shards hold {end} particles but the run has {particles}: the shards come from another run (or the options differ)"
        ));
    }
    let draws = s0.draws;
    let mut samples = ndarray::Array2::zeros((draws * particles, dim));
    for k in 0..draws {
        for p in parts {
            let len = p.shard.end - p.shard.first;
            samples
                .slice_mut(ndarray::s![k * particles + p.shard.first..k * particles + p.shard.end, ..])
                .assign(&p.samples.slice(ndarray::s![k * len..(k + 1) * len, ..]));
        }
    }
    // The block with the most evaluations, the last of equals (as the whole run picks it).
    let stats = parts
        .iter()
        .filter_map(|p| p.shard.diffusion.as_ref())
        .map(|(nfe, accepted, rejected, sig)| DiffusionStats {
            nfe: *nfe,
            accepted: *accepted,
            rejected: *rejected,
            step_sigmas: sig.clone(),
        })
        .max_by_key(|s| s.nfe);
    let kinetic = s0.kinetic_temperature.map(|_| {
        parts
            .iter()
            .map(|p| p.shard.kinetic_temperature.unwrap_or(0.0) * (p.shard.end - p.shard.first) as f64)
            .sum::<f64>()
            / particles as f64
    });
    let run = RunResult {
        samples,
        draws,
        trajectory: None,
        accepted: parts.iter().map(|p| p.shard.accepted).sum(),
        proposed: parts.iter().map(|p| p.shard.proposed).sum(),
        warmup_acceptance: s0.warmup_acceptance,
        step_size: s0.step_size,
        seconds: parts.iter().map(|p| p.seconds).sum(),
        particle_steps: match &stats {
            Some(st) => (particles * st.accepted) as u64,
            None => parts.iter().map(|p| p.shard.particle_steps).sum(),
        },
        block_size: s0.block_size,
        kinetic_temperature: kinetic,
    };
    Ok((run, stats))
}

/// A shard's record for its report: where its rows go in the whole run.
fn shard_report(
    shard: Shard,
    particles: usize,
    run: &RunResult,
    block: usize,
    stats: Option<&DiffusionStats>,
) -> Result<ShardReport> {
    let blocks = shard.blocks(particles.div_ceil(block), block)?;
    let first = blocks.start * block;
    Ok(ShardReport {
        index: shard.index,
        count: shard.count,
        particles_total: particles,
        first,
        end: (blocks.end * block).min(particles),
        draws: run.draws,
        accepted: run.accepted,
        proposed: run.proposed,
        particle_steps: run.particle_steps,
        block_size: block,
        step_size: run.step_size,
        warmup_acceptance: run.warmup_acceptance,
        kinetic_temperature: run.kinetic_temperature,
        diffusion: stats.map(|s| (s.nfe, s.accepted, s.rejected, s.step_sigmas.clone())),
    })
}

fn sample_or_merge(target: &dyn Target, opts: &SampleOptions, parts: Option<&[&ShardPart]>) -> Result<Sampled> {
    check(opts)?;
    let mut notes = Vec::new();
    let mut schedule_notes = Vec::new();
    if opts.sampler == Sampler::Exact {
        return exact(target, opts, parts);
    }
    if let Sampler::Diffusion { method, options } = &opts.sampler {
        return diffusion(target, opts, *method, options, parts);
    }
    // Annealing schedule first: its σ₁ sets the default start.
    let anneal = match &opts.sampler {
        Sampler::Annealed { options, .. } => {
            let (c, n) = AnnealConfig::resolve(target, options)?;
            notes.extend(n.iter().cloned());
            schedule_notes = n;
            Some(c)
        }
        _ => None,
    };
    let init = match (&opts.init, &anneal) {
        (Some(i), _) => i.clone(),
        (None, Some(c)) => {
            notes.push(format!(
                "init = N(mean, σ₁² I) with σ₁ = {:.4}: the perturbed density at the top of the ladder",
                c.sigmas()[0]
            ));
            c.default_init(target)
        }
        (None, None) => target.default_init(),
    };
    let particles = opts.particles.or(init.particles()).unwrap_or(10_000);
    let (warmup, steps) = match &anneal {
        Some(c) => (0, c.total_steps()),
        None => mcmc_length(opts),
    };
    let stiffness = if opts.step_size == StepSize::Auto {
        let f = analysis::Field::new(target);
        let pts = analysis::typical_samples(target, 1000, opts.seed)?;
        Some(analysis::stiffness(&pts, &f.jacobians(&pts)?)?)
    } else {
        None
    };
    let kt = target.temperature().unwrap_or(1.0);
    let (step_size, rule) = match (&opts.sampler, &anneal, opts.step_size, &stiffness) {
        (_, Some(c), _, _) => (c.eps, None),
        (Sampler::Underdamped { mass, .. }, _, StepSize::Auto, Some(s)) => {
            let m = mass.iter().cloned().fold(f64::INFINITY, f64::min);
            // Δt = 1/ω_max with ω² = λ·kT/m: half the Verlet stability limit ωΔt < 2.
            let dt = (m / (s.lambda_max * kt)).sqrt();
            notes.push(format!(
                "dt = {dt:.4e}: √(m/(λ_max·kT)), half the stability limit (λ_max = {:.4e})",
                s.lambda_max
            ));
            (dt, Some("Δt = √(m/(λ_max·kT)), half the stability limit"))
        }
        (Sampler::Underdamped { .. }, _, StepSize::Given(v), _) => (v, None),
        (Sampler::Underdamped { mass, .. }, _, _, _) => {
            let dt = default_dt(target, mass);
            notes.push(format!("dt = {dt:.4e}: a fifth of the narrowest length scale over √(kT/m)"));
            (dt, None)
        }
        (_, _, StepSize::Auto, Some(s)) => {
            notes.push(format!(
                "step_size = {:.4e}: 1/λ_max, half the stability limit 2/λ_max (λ_max = {:.4e})",
                s.recommended_step, s.lambda_max
            ));
            (s.recommended_step, Some("τ = 1/λ_max, half the stability limit 2/λ_max"))
        }
        (_, _, StepSize::Given(v), _) => (v, None),
        _ => {
            let tau = target.default_step_size();
            notes.push(format!("step_size = {tau:.4e}: from the target's length scales"));
            (tau, None)
        }
    };
    let cfg = RunConfig {
        particles,
        warmup,
        steps,
        thin: opts.thin,
        record_every: opts.record_every,
        seed: opts.seed,
        block_size: opts.block_size,
        step_size,
        adapt: match opts.sampler {
            Sampler::Mala { adapt } => adapt,
            _ => None,
        },
        progress: opts.progress.clone(),
        cancel: opts.cancel.clone(),
        shard: opts.shard,
        ..Default::default()
    };
    if anneal.is_none() && parts.is_none() {
        check_start(target, &init, particles, opts.seed)?;
    }
    let run = match &opts.sampler {
        _ if parts.is_some() => merged_run(parts.expect("merging"), particles, target.dim())?.0,
        Sampler::Ula { noise } => sampler::run(&Ula::new(target, *noise), &init, &cfg)?,
        Sampler::Mala { .. } => sampler::run(&Mala::new(target), &init, &cfg)?,
        Sampler::Underdamped { scheme, mass, friction } => {
            sampler::run(&Underdamped::new(target, *scheme, mass, *friction)?, &init, &cfg)?
        }
        Sampler::Annealed { noise, .. } => run_annealed(
            target,
            anneal.as_ref().expect("resolved"),
            *noise,
            &init,
            &RunConfig { steps: 1, ..cfg.clone() },
        )?,
        Sampler::Exact | Sampler::Diffusion { .. } => unreachable!("handled above"),
    };
    let resolved = Resolved {
        particles,
        warmup,
        steps,
        step_size,
        init: Some(init),
        anneal,
        diffusion: None,
        stiffness,
        notes,
        schedule_notes,
    };
    let mut report = report(target, opts, &run, &resolved, rule)?;
    if let Some(s) = opts.shard {
        report.shard = Some(shard_report(s, particles, &run, run.block_size, None)?);
    }
    Ok(Sampled { run, resolved, report })
}

/// The target must be finite where the particles start: a log-density or score that is NaN or
/// infinite there (an energy outside its domain, like ln(x) at x < 0, or one that overflows,
/// like exp(1000)·x²) is the target's fault, not the step size's, and would otherwise run to a
/// NaN report or be blamed on the step. Checks the first 1024 particles' starts.
fn check_start(target: &dyn Target, init: &Init, particles: usize, seed: u64) -> Result<()> {
    let d = target.dim();
    init.check(d, particles)?;
    let m = particles.min(1024);
    let (x, _) = crate::sampler::blocks::start_block(d, 0, m, seed, init);
    let mut s = crate::block::Block::zeros(d, m);
    let mut logp = vec![0.0f32; x.stride()];
    // A score-only target is checked on its score (log p stays 0, finite).
    target.eval(&x, &mut s, target.has_log_density().then_some(&mut logp[..]))?;
    for i in 0..m {
        let score: Vec<f32> = (0..d).map(|c| s.row(c)[i]).collect();
        if logp[i].is_finite() && score.iter().all(|v| v.is_finite()) {
            continue;
        }
        let at: Vec<String> = (0..d.min(6)).map(|c| format!("{:.4}", x.row(c)[i])).collect();
        let what = if logp[i].is_finite() { "the score" } else { "the log-density" };
        return Err(crate::Error::Invalid {
            field: Some("init"),
            message: format!(
                "the target is not finite where particle {i} starts: {what} is {} at x = [{}{}]; \
                 the start lies outside the target's domain, or its energy overflows there. \
                 Choose `init` inside the domain, or fix the energy",
                if logp[i].is_finite() { format!("{score:?}") } else { format!("{}", logp[i]) },
                at.join(", "),
                if d > 6 { ", …" } else { "" }
            ),
        });
    }
    Ok(())
}

fn report(
    t: &dyn Target,
    o: &SampleOptions,
    run: &RunResult,
    r: &Resolved,
    rule: Option<&'static str>,
) -> Result<SampleReport> {
    let underdamped = match &o.sampler {
        Sampler::Underdamped { mass, friction, .. } => Some((mass.clone(), *friction)),
        _ => None,
    };
    let plain = matches!(o.sampler, Sampler::Ula { .. } | Sampler::Mala { .. });
    let potential_energy_mean = match t.temperature() {
        // log p = −U/kT exactly for Boltzmann targets.
        Some(kt) => {
            let (_, logp) = crate::target::eval_rows(t, run.samples.view())?;
            Some(-kt * logp.iter().map(|&l| l as f64).sum::<f64>() / logp.len() as f64)
        }
        None => None,
    };
    let here = run.samples.nrows() / run.draws.max(1);
    let chains = (run.draws >= 4).then(|| ChainDiagnostics::of(run.samples.view(), here));
    let mut warnings = Vec::new();
    if let Some(rate) = run.acceptance_rate()
        && rate < 0.05
    {
        warnings.push(format!(
                "MALA accepted only {:.1}% of proposals: the chains barely moved; use a smaller `step_size` or keep the warm-up adaptation on",
                100.0 * rate
            ));
    }
    if let Some(c) = &chains
        && c.rhat_max > 1.01
    {
        warnings.push(format!(
                "max R-hat is {:.3} (above 1.01): the chains have not mixed; run more `steps` or `warmup` before trusting these samples",
                c.rhat_max
            ));
    }
    Ok(SampleReport {
        sampler: o.sampler.name(),
        target: t.name(),
        dim: t.dim(),
        particles: here,
        steps: r.warmup + r.steps,
        warmup: r.warmup,
        thin: o.thin,
        draws_per_particle: run.draws,
        seed: o.seed,
        threads: rayon::current_num_threads(),
        block_size: run.block_size,
        seconds: run.seconds,
        particle_steps_per_second: if run.particle_steps == 0 { 0.0 } else { run.particle_steps as f64 / run.seconds },
        noise: o.sampler.noise(),
        init: r.init.as_ref().map_or_else(|| "exact".into(), |i| i.describe()),
        annealing: r.anneal.as_ref().map(|c| AnnealingReport {
            sigma_max: c.sigmas()[0],
            sigma_min: c.ladder.sigma_min(),
            levels: c.sigmas().len(),
            steps_per_level: c.steps_per_level,
            eps: c.eps,
            denoise: c.denoise,
            sigmas: c.sigmas().to_vec(),
            step_sizes: (0..c.sigmas().len()).map(|i| c.alpha(i)).collect(),
            notes: r.schedule_notes.clone(),
        }),
        diffusion: None,
        dt: underdamped.as_ref().map(|_| r.step_size),
        mass: underdamped.as_ref().map(|u| u.0.clone()),
        friction: underdamped.as_ref().map(|u| u.1),
        step_size: plain.then_some(run.step_size),
        step_size_initial: plain.then_some(r.step_size),
        step_size_auto: r.stiffness.as_ref().map(|s| AutoStepReport {
            lambda_max: s.lambda_max,
            lambda_max_at: s.lambda_max_at.clone(),
            max_stable_ula_step: s.max_stable_step,
            chosen: r.step_size,
            samples: s.points,
            rule: rule.unwrap_or(""),
        }),
        temperature: t.temperature(),
        potential_energy_mean,
        kinetic_temperature: run.kinetic_temperature,
        acceptance_rate: run.acceptance_rate(),
        warmup_acceptance: run.acceptance_rate().map(|_| run.warmup_acceptance),
        statistics: Statistics::of(run.samples.view(), t),
        chains,
        shard: None,
        warnings,
    })
}

/// A diffusion sampler: start from N(mean, (σ_max² + var) I), run, report.
fn diffusion(
    target: &dyn Target,
    opts: &SampleOptions,
    method: Method,
    options: &DiffusionOptions,
    parts: Option<&[&ShardPart]>,
) -> Result<Sampled> {
    let (dc, mut notes) = diffusion_config(target, method, options, opts.steps)?;
    let schedule_notes = notes.clone();
    let init = match &opts.init {
        Some(i) => i.clone(),
        None => {
            // The Gaussian with the first two moments of p_σmax = p ∗ N(0, σ_max² I): for a VP
            // schedule on standardized data this is its prior N(0, I) in x_T.
            let sigma = dc.sigma_start();
            let (mean, var) = target
                .mean_and_variances()
                .map_or((vec![0.0], 0.0), |(m, v)| (m, v.iter().cloned().fold(0.0, f64::max)));
            let std = (sigma * sigma + var).sqrt();
            notes.push(format!(
                "init = N(mean, (σ_max² + var) I) = N(mean, {std:.4}² I): the moments of the perturbed density at σ_max = {sigma:.4}"
            ));
            Init::Gaussian { mean, std }
        }
    };
    let particles = opts.particles.or(init.particles()).unwrap_or(10_000);
    crate::mem::check(
        crate::mem::product(&[particles, target.dim(), 4, 10]),
        format!("sampling {particles} particles in {} dimensions", target.dim()),
        "particles",
    )?;
    let cfg = RunConfig {
        particles,
        steps: 1,
        record_every: opts.record_every,
        seed: opts.seed,
        block_size: opts.block_size,
        progress: opts.progress.clone(),
        cancel: opts.cancel.clone(),
        shard: opts.shard,
        ..Default::default()
    };
    let (run, stats) = match parts {
        Some(p) => {
            let (run, stats) = merged_run(p, particles, target.dim())?;
            let stats =
                stats.ok_or_else(|| invalid_field!("shard", "the shards were not run by a diffusion sampler"))?;
            (run, stats)
        }
        None => run_diffusion(target, &dc, &init, &cfg)?,
    };
    let report_d = DiffusionReport::new(&dc, &stats, schedule_notes.clone());
    let resolved = Resolved {
        particles,
        warmup: 0,
        steps: report_d.steps,
        step_size: 0.0,
        init: Some(init),
        anneal: None,
        diffusion: Some(dc),
        stiffness: None,
        notes,
        schedule_notes,
    };
    let mut report = report(target, opts, &run, &resolved, None)?;
    report.diffusion = Some(report_d);
    if let Some(s) = opts.shard {
        report.shard = Some(shard_report(s, particles, &run, run.block_size, Some(&stats))?);
    }
    Ok(Sampled { run, resolved, report })
}

/// Exact i.i.d. draws. Particle i is not independent of N here: exact samplers draw from one
/// stream (they need no steps, so a larger run is cheap to take a prefix of).
fn exact(t: &dyn Target, o: &SampleOptions, parts: Option<&[&ShardPart]>) -> Result<Sampled> {
    let n = o.particles.unwrap_or(10_000);
    if n == 0 {
        return Err(invalid_field!("particles", "`particles` must be at least 1"));
    }
    // Shards of exact draws: blocks as a stationary sampler's would be; one stream, so shard k
    // draws the particles up to its end and keeps its own.
    let block = crate::sampler::auto_block_size(n, t.dim());
    let range = match o.shard {
        Some(s) => {
            let b = s.blocks(n.div_ceil(block), block)?;
            b.start * block..(b.end * block).min(n)
        }
        None => 0..n,
    };
    let start = Instant::now();
    let Some(samples) = t.sample_exact(range.end, &mut LaneRng::new(o.seed, 0)) else {
        return Err(invalid_field!(
            "sampler",
            "target '{}' cannot be sampled exactly (only Gaussians, mixtures, 1-D targets and some built-ins can); use ULA, MALA or annealed Langevin",
            t.name()
        ));
    };
    let samples = if range.start > 0 { samples.slice(ndarray::s![range.start.., ..]).to_owned() } else { samples };
    let seconds = start.elapsed().as_secs_f64();
    let run = RunResult {
        samples,
        draws: 1,
        trajectory: None,
        accepted: 0,
        proposed: 0,
        warmup_acceptance: None,
        step_size: 0.0,
        seconds,
        particle_steps: 0,
        block_size: if o.shard.is_some() { block } else { n },
        kinetic_temperature: None,
    };
    let run = match parts {
        Some(p) => RunResult { block_size: n, ..merged_run(p, n, t.dim())?.0 },
        None => run,
    };
    let resolved = Resolved {
        particles: n,
        warmup: 0,
        steps: 0,
        step_size: 0.0,
        init: None,
        anneal: None,
        diffusion: None,
        stiffness: None,
        notes: vec![],
        schedule_notes: vec![],
    };
    let mut report = report(t, o, &run, &resolved, None)?;
    if let Some(s) = o.shard {
        report.shard = Some(shard_report(s, n, &run, block, None)?);
    }
    Ok(Sampled { run, resolved, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::builtin;

    #[test]
    fn inconsistent_options_are_errors_naming_the_field() {
        let t = builtin::build("ncsn-toy", &[]).unwrap();
        let annealed = Sampler::from_name("annealed").unwrap();
        for (opts, field) in [
            (SampleOptions { sampler: annealed.clone(), steps: Some(5), ..Default::default() }, "steps"),
            (
                SampleOptions { sampler: annealed.clone(), step_size: StepSize::Given(0.1), ..Default::default() },
                "step_size",
            ),
            (SampleOptions { sampler: Sampler::Exact, thin: Some(2), ..Default::default() }, "thin"),
            (SampleOptions { step_size: StepSize::Given(-1.0), ..Default::default() }, "step_size"),
            (SampleOptions { sampler: Sampler::Mala { adapt: Some(1.5) }, ..Default::default() }, "adapt"),
            (SampleOptions { particles: Some(10), block_size: Some(0), ..Default::default() }, "block_size"),
            (SampleOptions { particles: Some(0), ..Default::default() }, "particles"),
        ] {
            let e = sample(t.as_ref(), &opts).err().unwrap();
            assert_eq!(e.field(), Some(field), "{e}");
        }
        assert_eq!(Sampler::from_name("hmc").unwrap_err().field(), Some("sampler"));
        for name in SAMPLER_NAMES {
            assert_eq!(Sampler::from_name(name).unwrap().name(), *name);
        }
        // A ladder with one level is refused with the field named.
        let one = Sampler::Annealed { options: AnnealOptions { levels: Some(1), ..Default::default() }, noise: true };
        assert_eq!(
            sample(t.as_ref(), &SampleOptions { sampler: one, ..Default::default() }).err().unwrap().field(),
            Some("levels")
        );
    }

    #[test]
    fn derived_settings_come_with_notes_and_auto_steps_follow_the_stiffness() {
        // gaussian:dim=2,cond=100 has λ_max = 100 (variances 1 and 0.01): τ_auto = 1/λ_max.
        let t = builtin::build("gaussian", &[("dim".into(), 2.0), ("cond".into(), 100.0)]).unwrap();
        let out = sample(
            t.as_ref(),
            &SampleOptions { step_size: StepSize::Auto, particles: Some(500), steps: Some(10), ..Default::default() },
        )
        .unwrap();
        let lam = out.resolved.stiffness.as_ref().unwrap().lambda_max;
        assert!((lam - 100.0).abs() < 1e-6 * 100.0, "λ_max {lam}");
        assert!((out.resolved.step_size - 0.01).abs() < 1e-8);
        assert!(out.resolved.notes.iter().any(|n| n.starts_with("step_size")), "{:?}", out.resolved.notes);
        let rep = serde_json::to_value(&out.report).unwrap();
        assert_eq!(rep["step_size_auto"]["chosen"], serde_json::json!(out.resolved.step_size));
        assert!(rep.get("annealing").is_none() && rep.get("mean").is_some());
    }
}
