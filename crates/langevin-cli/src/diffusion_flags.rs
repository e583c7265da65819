//! The flags of the diffusion samplers, shared by `sample`, `generate` and `likelihood`.

use anyhow::{Result, bail};
use clap::Args;
use langevin::diffusion::{DiffusionOptions, SCHEDULE_NAMES, SOLVER_NAMES, ScheduleKind, Solver};

#[derive(Args, Debug, Clone, Default)]
pub struct DiffusionArgs {
    /// Diffusion samplers: the forward process (default: ve for reverse-sde, reverse-diffusion,
    /// pc, corrector and ode, linear for those on a flow-matching model; vp for ddpm and ddim;
    /// edm for edm and dpmpp-2m).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(SCHEDULE_NAMES))]
    pub schedule: Option<String>,
    /// Diffusion samplers, edm schedule: ρ of the σ spacing (default 7).
    #[arg(long, value_name = "RHO")]
    pub rho: Option<f64>,
    /// Diffusion samplers: the time cut-off ε in (0, 1) of the ve/vp/sub-vp/cosine/linear schedules
    /// (default: 1e-5 for ve, where σ(ε) = --sigma-min otherwise).
    #[arg(long, value_name = "EPS")]
    pub t_eps: Option<f64>,
    /// ode: the ODE solver (default: adaptive dopri5, or heun with --steps); reverse-sde:
    /// euler (Euler–Maruyama, default) or heun (stochastic Heun).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(SOLVER_NAMES))]
    pub solver: Option<String>,
    /// ode with dopri5: relative tolerance (default 1e-5).
    #[arg(long, value_name = "RTOL")]
    pub rtol: Option<f64>,
    /// ode with dopri5: absolute tolerance (default 1e-5).
    #[arg(long, value_name = "ATOL")]
    pub atol: Option<f64>,
    /// ode with dopri5: the most steps before giving up (default 10000).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// pc, corrector: signal-to-noise ratio of the Langevin corrector (default 0.16).
    #[arg(long, value_name = "R")]
    pub snr: Option<f64>,
    /// pc, corrector: corrector steps per noise level (default 1).
    #[arg(long, value_name = "M")]
    pub corrector_steps: Option<usize>,
    /// ddim: η (0 deterministic, the default; 1 is DDPM's ancestral noise).
    #[arg(long, value_name = "ETA")]
    pub eta: Option<f64>,
    /// edm: S_churn of Karras et al.'s stochastic sampler (default 0: deterministic).
    #[arg(long, value_name = "S")]
    pub s_churn: Option<f64>,
    /// edm: S_tmin (default 0).
    #[arg(long, value_name = "S")]
    pub s_tmin: Option<f64>,
    /// edm: S_tmax (default ∞).
    #[arg(long, value_name = "S")]
    pub s_tmax: Option<f64>,
    /// edm: S_noise (default 1).
    #[arg(long, value_name = "S")]
    pub s_noise: Option<f64>,
}

impl DiffusionArgs {
    /// The flags that are set, by name.
    pub fn set_flags(&self) -> Vec<&'static str> {
        [
            ("--schedule", self.schedule.is_some()),
            ("--rho", self.rho.is_some()),
            ("--t-eps", self.t_eps.is_some()),
            ("--solver", self.solver.is_some()),
            ("--rtol", self.rtol.is_some()),
            ("--atol", self.atol.is_some()),
            ("--max-steps", self.max_steps.is_some()),
            ("--snr", self.snr.is_some()),
            ("--corrector-steps", self.corrector_steps.is_some()),
            ("--eta", self.eta.is_some()),
            ("--s-churn", self.s_churn.is_some()),
            ("--s-tmin", self.s_tmin.is_some()),
            ("--s-tmax", self.s_tmax.is_some()),
            ("--s-noise", self.s_noise.is_some()),
        ]
        .into_iter()
        .filter(|(_, s)| *s)
        .map(|(f, _)| f)
        .collect()
    }

    /// Refuse the diffusion flags for a sampler that is not a diffusion sampler.
    pub fn refuse(&self, sampler: &str) -> Result<()> {
        if let Some(f) = self.set_flags().first() {
            bail!(
                "{f} applies to the diffusion samplers ({}) only, not to --sampler {sampler}",
                langevin::diffusion::METHOD_NAMES.join(", ")
            );
        }
        Ok(())
    }

    /// The library's options, with the flags the commands share.
    pub fn options(
        &self,
        sigma_min: Option<f64>,
        sigma_max: Option<f64>,
        steps: Option<usize>,
        no_denoise: bool,
    ) -> Result<DiffusionOptions> {
        Ok(DiffusionOptions {
            schedule: self.schedule.as_deref().map(ScheduleKind::from_name).transpose()?,
            sigma_min,
            sigma_max,
            rho: self.rho,
            t_eps: self.t_eps,
            steps,
            solver: self.solver.as_deref().map(Solver::from_name).transpose()?,
            rtol: self.rtol,
            atol: self.atol,
            max_steps: self.max_steps,
            snr: self.snr,
            corrector_steps: self.corrector_steps,
            eta: self.eta,
            s_churn: self.s_churn,
            s_tmin: self.s_tmin,
            s_tmax: self.s_tmax,
            s_noise: self.s_noise,
            denoise: no_denoise.then_some(false),
        })
    }
}
