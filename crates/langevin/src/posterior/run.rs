//! Sampling a posterior as one call: the sampler by value, defaults derived from the Laplace
//! approximation, a typed report. What `langevin posterior` runs.

use super::{Posterior, Schedule, Sgld};
use crate::error::Result;
use crate::invalid_field;
use crate::sample::ChainDiagnostics;
use crate::sampler::{self, Init, Mala, RunConfig, RunResult, Ula};
use crate::target::Target;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// How to sample a posterior.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PosteriorSampler {
    /// Stochastic-gradient Langevin dynamics on minibatches (Welling & Teh 2011).
    Sgld,
    /// SGLD with the RMSProp preconditioner (Li et al. 2016).
    Psgld,
    /// SGLD with control variates at the MAP (Baker et al. 2019).
    SgldCv,
    /// Full-batch MALA (exact; the reference), step adapted during warm-up.
    Mala,
    /// Full-batch ULA.
    Ula,
}

impl PosteriorSampler {
    /// SGLD and its variants.
    pub fn stochastic(self) -> bool {
        matches!(self, PosteriorSampler::Sgld | PosteriorSampler::Psgld | PosteriorSampler::SgldCv)
    }
}

/// Everything a posterior run takes; `None` fields are derived.
#[derive(Clone, Debug)]
pub struct PosteriorOptions {
    /// The sampler.
    pub sampler: PosteriorSampler,
    /// Independent chains.
    pub chains: usize,
    /// Steps after warm-up.
    pub steps: usize,
    /// Warm-up steps (default 1,000 for MALA, 0 otherwise; SGLD holds ε₀ during them).
    pub warmup: Option<usize>,
    /// Keep every k-th draw (default: steps/1,000).
    pub thin: Option<usize>,
    /// τ (MALA's start, ULA) or ε₀ (SGLD) (default: 0.2 × the smallest Laplace variance for
    /// MALA/ULA; for SGLD the rule of [`Sgld::default_step`]).
    pub step_size: Option<f64>,
    /// SGLD minibatch rows.
    pub batch: usize,
    /// SGLD: ε falls by this factor over the kept steps (1 = constant).
    pub decay: Option<f64>,
    /// SGLD: the schedule's exponent γ (default 0.55).
    pub schedule_gamma: Option<f64>,
    /// Where chains start (default: around the MAP).
    pub init: Option<Init>,
    /// Seed.
    pub seed: u64,
    /// Counter of chain-steps done, for progress display.
    pub progress: Option<Arc<AtomicU64>>,
}

/// SGLD's step-size schedule in a report.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleReport {
    /// ε_t = ε.
    Constant {
        /// ε.
        eps: f64,
    },
    /// ε_t = a (b + t − hold)^(−γ).
    Decreasing {
        /// a.
        a: f64,
        /// b.
        b: f64,
        /// γ.
        gamma: f64,
        /// Steps held at ε₀.
        hold: usize,
        /// ε at the first step.
        eps_first: f64,
        /// ε at the last step.
        eps_last: f64,
    },
}

/// What a posterior run did and found: the `posterior` command's report.
#[derive(Clone, Debug, Serialize)]
pub struct PosteriorReport {
    /// Data rows used.
    pub rows: usize,
    /// Rows dropped for non-finite values.
    pub rows_dropped: usize,
    /// The model.
    pub model: String,
    /// Parameter names.
    pub parameters: Vec<String>,
    /// The sampler.
    pub sampler: PosteriorSampler,
    /// Chains.
    pub chains: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Kept steps.
    pub steps: usize,
    /// Thinning.
    pub thin: usize,
    /// Draws per chain.
    pub draws_per_chain: usize,
    /// Seed.
    pub seed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// SGLD minibatch rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// SGLD's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleReport>,
    /// τ after warm-up (MALA, ULA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<f64>,
    /// MALA's acceptance rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance_rate: Option<f64>,
    /// Posterior mean over all draws.
    pub posterior_mean: Vec<f64>,
    /// Posterior standard deviations.
    pub posterior_std: Vec<f64>,
    /// Posterior covariance.
    pub covariance: Vec<Vec<f64>>,
    /// The MAP.
    pub map: Vec<f64>,
    /// Laplace standard deviations at the MAP.
    pub laplace_std: Vec<f64>,
    /// ESS and R-hat (with at least 4 draws per chain).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<ChainDiagnostics>,
}

/// Sample `post` as `o` says; returns the run (draws × chains rows) and the report.
pub fn sample_posterior(post: &Posterior, o: &PosteriorOptions) -> Result<(RunResult, PosteriorReport)> {
    if o.chains == 0 {
        return Err(invalid_field!("chains", "`chains` must be at least 1"));
    }
    if o.steps == 0 {
        return Err(invalid_field!("steps", "`steps` must be at least 1"));
    }
    if !o.sampler.stochastic() && (o.decay.is_some() || o.schedule_gamma.is_some()) {
        return Err(invalid_field!("decay", "`decay` and `schedule_gamma` apply to SGLD and pSGLD only"));
    }
    if let Some(s) = o.step_size
        && !(s.is_finite() && s > 0.0)
    {
        return Err(invalid_field!("step_size", "`step_size` = {s} must be positive and finite"));
    }
    let init = o.init.clone().unwrap_or_else(|| post.default_init());
    let warmup = o.warmup.unwrap_or(if o.sampler == PosteriorSampler::Mala { 1000 } else { 0 });
    let thin = o.thin.unwrap_or((o.steps / 1000).max(1));
    let laplace_var_min = post.laplace_std().iter().map(|s| s * s).fold(f64::INFINITY, f64::min);
    let mut cfg = RunConfig {
        particles: o.chains,
        warmup,
        steps: o.steps,
        thin: Some(thin),
        seed: o.seed,
        block_size: Some(1),
        step_size: o.step_size.unwrap_or(0.2 * laplace_var_min),
        progress: o.progress.clone(),
        ..Default::default()
    };
    let mut schedule_report = None;
    let result = match o.sampler {
        PosteriorSampler::Sgld | PosteriorSampler::Psgld | PosteriorSampler::SgldCv => {
            let precondition = o.sampler == PosteriorSampler::Psgld;
            let mut k = Sgld::new(post, o.batch, Schedule::Constant(1.0), precondition)?;
            if o.sampler == PosteriorSampler::SgldCv {
                k = k.with_control_variate(post.map().to_vec());
            }
            let eps0 = o.step_size.unwrap_or_else(|| k.default_step(post.map(), &post.laplace_std(), o.seed));
            // Warm-up runs at ε₀ (a burn-in); the decrease, if any, spans the kept steps.
            let schedule =
                Schedule::decaying(eps0, o.decay.unwrap_or(1.0), warmup, o.steps, o.schedule_gamma.unwrap_or(0.55))?;
            schedule_report = Some(match schedule {
                Schedule::Constant(eps) => ScheduleReport::Constant { eps },
                Schedule::Decreasing { a, b, gamma, hold } => ScheduleReport::Decreasing {
                    a,
                    b,
                    gamma,
                    hold,
                    eps_first: schedule.at(0),
                    eps_last: schedule.at(warmup + o.steps - 1),
                },
            });
            sampler::run(&k.with_schedule(schedule), &init, &cfg)?
        }
        PosteriorSampler::Mala => {
            cfg.adapt = Some(0.574);
            sampler::run(&Mala::new(post), &init, &cfg)?
        }
        PosteriorSampler::Ula => sampler::run(&Ula::new(post, true), &init, &cfg)?,
    };
    let (mean, cov) = crate::diagnostics::mean_cov(result.samples.view());
    let d = post.dim();
    let report = PosteriorReport {
        rows: post.data().rows(),
        rows_dropped: post.data().dropped,
        model: post.name(),
        parameters: post.parameter_names(),
        sampler: o.sampler,
        chains: o.chains,
        warmup,
        steps: o.steps,
        thin,
        draws_per_chain: result.draws,
        seed: o.seed,
        seconds: result.seconds,
        batch: o.sampler.stochastic().then_some(o.batch),
        schedule: schedule_report,
        step_size: (!o.sampler.stochastic()).then_some(result.step_size),
        acceptance_rate: result.acceptance_rate(),
        posterior_std: (0..d).map(|i| cov[[i, i]].sqrt()).collect(),
        posterior_mean: mean,
        covariance: cov.outer_iter().map(|r| r.to_vec()).collect(),
        map: post.map().to_vec(),
        laplace_std: post.laplace_std(),
        diagnostics: (result.draws >= 4).then(|| ChainDiagnostics::of(result.samples.view(), o.chains)),
    };
    Ok((result, report))
}
