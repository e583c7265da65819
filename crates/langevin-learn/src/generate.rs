//! Generation from a trained model: the ladder of the run → annealed Langevin (or plain
//! Langevin at σ_L) → samples in the data's units, with a typed report.
//!
//! This is what `langevin generate`, `quickstart` and the bench run; a library user gets the
//! same samples for the same options and seed.

use crate::checkpoint::TrainedModel;
use crate::model::{CHUNK, LearnedScore};
use langevin::diffusion::{DiffusionConfig, DiffusionOptions, DiffusionReport, Method, run_diffusion};
use langevin::sampler::{self, AnnealConfig, Init, RunConfig, RunResult, Ula, run_annealed};
use langevin::target::Target;
use langevin::{Error, Result};
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// DPM-Solver++(2M)'s steps on a learned model when none are given.
pub const LEARNED_DPMPP_STEPS: usize = 100;

/// How to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenSampler {
    /// Annealed Langevin over the training ladder σ₁ > … > σ_L, with the final denoising step.
    Annealed,
    /// Plain Langevin with the score at the smallest level σ_L.
    Ula,
    /// A diffusion sampler of the core ([`langevin::diffusion`]) over the model's σ range
    /// [σ_L, σ₁] (the options in [`GenerateOptions::diffusion`]).
    Diffusion(Method),
}

impl GenSampler {
    /// A sampler by name: `annealed`, `ula`, or a diffusion sampler of the core.
    pub fn from_name(name: &str) -> Result<GenSampler> {
        Ok(match name {
            "annealed" => GenSampler::Annealed,
            "ula" => GenSampler::Ula,
            _ => GenSampler::Diffusion(Method::from_name(name)?),
        })
    }

    /// The sampler a run's model is generated with by default: annealed Langevin for NCSN,
    /// DPM-Solver++(2M) for the continuous-time objectives.
    pub fn default_for(config: &crate::checkpoint::RunConfig) -> GenSampler {
        match config.train.objective {
            crate::objective::Objective::Ncsn => GenSampler::Annealed,
            _ => GenSampler::Diffusion(Method::DpmPp2m),
        }
    }

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            GenSampler::Annealed => "annealed",
            GenSampler::Ula => "ula",
            GenSampler::Diffusion(m) => m.name(),
        }
    }
}

/// How ε of annealed Langevin follows from T when it is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpsRule {
    /// (1 − ε/σ_L²)^T = 1e-9: each level forgets the previous one (the default; measured better).
    Contraction,
    /// NCSNv2's technique 4: the variance of a point mass comes out right after T steps.
    Ncsnv2,
}

/// What to generate; `None` fields take the defaults documented on each.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of samples.
    pub n: usize,
    /// The sampler.
    pub sampler: GenSampler,
    /// Annealed: Langevin steps per level T (default 100).
    pub steps_per_level: Option<usize>,
    /// Annealed: ε at σ_L (default from `eps_rule`).
    pub eps: Option<f64>,
    /// Annealed: how ε follows from T.
    pub eps_rule: EpsRule,
    /// Annealed: apply x + σ_L² s(x, σ_L) at the end.
    pub denoise: bool,
    /// Plain Langevin: number of steps (default L × T, the annealed budget).
    pub steps: Option<usize>,
    /// Plain Langevin: step size τ in standardized units (default 1e-3).
    pub step_size: Option<f64>,
    /// Initial positions in the data's units (default: annealed N(0, σ₁²) in standardized
    /// units; plain uniform over ±3 standard deviations).
    pub init: Option<Init>,
    /// Seed of all random streams.
    pub seed: u64,
    /// Record positions every k steps.
    pub record_every: Option<usize>,
    /// Diffusion samplers: what is fixed (σ range default: the training ladder's ends).
    pub diffusion: DiffusionOptions,
    /// Class-conditional models: the class to generate (its name, as the labels gave it);
    /// `None`: the model's unconditional ("no label") score.
    pub class: Option<String>,
    /// Classifier-free guidance weight w ≥ 0 (with `class`): s = (1 + w) s(x, c) − w s(x, ∅).
    pub guidance: f64,
    /// Counter of particle-steps done, for progress display.
    pub progress: Option<Arc<AtomicU64>>,
    /// Set to stop early (the call then returns an error).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            n: 10_000,
            sampler: GenSampler::Annealed,
            steps_per_level: None,
            eps: None,
            eps_rule: EpsRule::Contraction,
            denoise: true,
            steps: None,
            step_size: None,
            init: None,
            seed: 0,
            record_every: None,
            diffusion: DiffusionOptions::default(),
            class: None,
            guidance: 0.0,
            progress: None,
            cancel: None,
        }
    }
}

/// The annealing schedule a generation used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnnealingReport {
    /// σ₁ > … > σ_L (the training ladder).
    pub sigmas: Vec<f64>,
    /// L.
    pub levels: usize,
    /// T.
    pub steps_per_level: usize,
    /// ε.
    pub eps: f64,
    /// `given`, `contraction` or `NCSNv2 technique 4`.
    pub eps_rule: String,
    /// Whether the denoising step was applied.
    pub denoise: bool,
}

/// What a generation did (the `generate` report's fields).
#[derive(Clone, Debug, Serialize)]
pub struct GenerateReport {
    /// The run directory of the model.
    pub model: String,
    /// Training steps of the model.
    pub model_steps: usize,
    /// Dimension.
    pub dim: usize,
    /// Samples.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// `annealed`, `ula`, or a diffusion sampler's name.
    pub sampler: &'static str,
    /// The class generated (class-conditional models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The guidance weight (class-conditional models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f64>,
    /// The schedule (annealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annealing: Option<AnnealingReport>,
    /// The diffusion sampler: schedule, steps, score evaluations (NFE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffusion: Option<DiffusionReport>,
    /// σ_L (plain Langevin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// τ (plain Langevin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size: Option<f64>,
    /// Steps (Langevin steps, or a diffusion sampler's steps).
    pub steps: usize,
    /// Score evaluations per sample.
    pub nfe: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Score evaluations (particle-steps) per second.
    pub score_evaluations_per_second: f64,
    /// Forward passes of the network (chunks of [`CHUNK`] rows).
    pub forward_passes: usize,
    /// Forward passes per second.
    pub forward_passes_per_second: f64,
}

/// Samples in the data's units, the trajectory if recorded, the raw run and the report.
pub struct Generated {
    /// n × d samples, in the data's units.
    pub samples: Array2<f32>,
    /// frames × n × d, in the data's units.
    pub trajectory: Option<Array3<f32>>,
    /// The run (in standardized units).
    pub result: RunResult,
    /// What was done.
    pub report: GenerateReport,
}

/// Map initial positions given in data units into the model's standardized units.
fn standardize_init(init: Init, model: &TrainedModel) -> Result<Init> {
    let norm = &model.config.normalization;
    let d = model.config.dim;
    let std_of = |c: usize| norm.std[c];
    Ok(match init {
        Init::Rows(r) => Init::Rows(Arc::new(norm.apply(&r))),
        Init::Point(p) => {
            Init::Point((0..d).map(|c| (p[if p.len() == 1 { 0 } else { c }] - norm.mean[c]) / std_of(c)).collect())
        }
        Init::Uniform { lo, hi } => Init::Box {
            lo: (0..d).map(|c| (lo - norm.mean[c]) / std_of(c)).collect(),
            hi: (0..d).map(|c| (hi - norm.mean[c]) / std_of(c)).collect(),
        },
        Init::Box { lo, hi } => Init::Box {
            lo: (0..d).map(|c| (lo[c] - norm.mean[c]) / std_of(c)).collect(),
            hi: (0..d).map(|c| (hi[c] - norm.mean[c]) / std_of(c)).collect(),
        },
        Init::Gaussian { .. } => {
            return Err(Error::invalid(
                "init",
                "a Gaussian `init` is not available for generation; use uniform:LO,HI, point:... or a file",
            ));
        }
    })
}

/// The noise range a diffusion sampler runs over on this model by default, with where each end
/// comes from: the training ladder's [σ_L, σ₁]; for flow-matching models σ_max = 999 (t = 0.999
/// on the straight path): they are trained on every t ∈ (0, 1), and under a coupling other than
/// independent noise (minibatch OT, reflow) the marginal is the Gaussian N(0, (σ² + 1) I) the
/// samplers start from only near t = 1.
pub fn sigma_range(cfg: &crate::checkpoint::RunConfig) -> [(f64, &'static str); 2] {
    let l = &cfg.ladder;
    let lo = (l.sigma_min(), "the training ladder's σ_L");
    if cfg.train.objective == crate::objective::Objective::FlowMatching {
        [lo, (999.0, "t = 0.999 on the flow-matching path")]
    } else {
        [lo, (l.sigma_max(), "the training ladder's σ₁")]
    }
}

/// A diffusion sampler's configuration on a model: `opts` with the model's defaults filled in
/// (its σ range, [`sigma_range`]; the `linear` schedule for flow-matching models, in whose time
/// their ODE is straightest; [`LEARNED_DPMPP_STEPS`] for DPM-Solver++(2M)), then the core's
/// own defaults, with a note per derived value.
pub fn resolve_diffusion(
    cfg: &crate::checkpoint::RunConfig,
    method: Method,
    opts: &DiffusionOptions,
) -> Result<(DiffusionConfig, Vec<String>)> {
    let mut opts = opts.clone();
    // 20 steps of DPM-Solver++(2M), its default on analytic targets, left the narrowest
    // component of a mixture 5% too wide even with the exact score, and 50 left one of a learned
    // model's 4% too wide where 100 give 2% (docs/GENERALIZATION.md).
    let more = method == Method::DpmPp2m && opts.steps.is_none();
    if more {
        opts.steps = Some(LEARNED_DPMPP_STEPS);
    }
    let own = cfg.train.objective == crate::objective::Objective::FlowMatching && opts.schedule.is_none();
    if own {
        opts.schedule = Some(langevin::diffusion::ScheduleKind::Linear);
    }
    let (dc, mut notes) = DiffusionConfig::resolve(method, &opts, sigma_range(cfg))?;
    if own {
        notes.insert(0, "schedule = linear: the flow-matching model's own straight path".into());
    }
    if more {
        notes.push(format!("steps = {LEARNED_DPMPP_STEPS}: dpmpp-2m's default on learned models"));
    }
    Ok((dc, notes))
}

/// A model trained with a coupling other than independent noise (minibatch OT, reflow pairs)
/// learns a velocity whose intermediate marginals are not the data convolved with Gaussian
/// noise: the score read from it through the Gaussian identity is not the score of its
/// marginals, so only its ODE samples correctly (measured on moons: DDPM's ancestral steps on a
/// minibatch-OT model give an MMD 11× the data floor, its ODE 1.0×).
fn check_coupling(cfg: &crate::checkpoint::RunConfig, o: &GenerateOptions) -> Result<()> {
    use crate::train::Coupling;
    let coupling = cfg.train.coupling;
    if coupling == Coupling::Independent {
        return Ok(());
    }
    let d = &o.diffusion;
    let stochastic = match o.sampler {
        GenSampler::Annealed | GenSampler::Ula => true,
        GenSampler::Diffusion(m) => match m {
            Method::Ode | Method::DpmPp2m => false,
            Method::Ddim => d.eta.unwrap_or(0.0) != 0.0,
            Method::Edm => d.s_churn.unwrap_or(0.0) != 0.0,
            _ => true,
        },
    };
    if stochastic {
        return Err(Error::invalid(
            "sampler",
            format!(
                "this model was trained with {} coupling, so only its ODE is a sampler of it (its marginals are not \
                 Gaussian perturbations of the data, and stochastic or Langevin steps need their score): use ode, \
                 dpmpp-2m, ddim with eta 0 or edm without churn",
                coupling.name()
            ),
        ));
    }
    Ok(())
}

/// The model's score at σ_L for the class and guidance of `o`, checked: a class on an
/// unconditional model, a class not seen in training, a negative guidance weight, or the
/// unconditional score of a model never trained without labels are errors naming the fix.
pub fn conditioned(model: &Arc<TrainedModel>, o: &GenerateOptions) -> Result<LearnedScore> {
    let cfg = &model.config;
    let class = match (&o.class, &cfg.labels) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Error::invalid(
                "class",
                "this model is unconditional (trained without labels); drop `class`, or train with labels \
                 (`--label COLUMN`, `--labels FILE` or `--conditional`)",
            ));
        }
        (Some(name), Some(info)) => Some(info.index(name)?),
    };
    if !(o.guidance.is_finite() && o.guidance >= 0.0) {
        return Err(Error::invalid(
            "guidance",
            format!("`guidance` {} must be ≥ 0 (0: the conditional model alone; 1–4 are usual)", o.guidance),
        ));
    }
    if o.guidance > 0.0 && class.is_none() {
        return Err(Error::invalid("guidance", "`guidance` needs a `class` to guide towards"));
    }
    if let Some(info) = &cfg.labels {
        let unconditional_needed = class.is_none() || o.guidance > 0.0;
        if unconditional_needed && cfg.train.cond_drop == 0.0 {
            return Err(Error::invalid(
                if class.is_none() { "class" } else { "guidance" },
                format!(
                    "this model was trained with every label (cond_drop 0), so it has no unconditional score for {}; \
                     give a `class` ({}) without guidance, or retrain with a label dropout (`--cond-drop 0.1`)",
                    if class.is_none() { "generation without a class" } else { "guidance" },
                    info.classes.join(", ")
                ),
            ));
        }
    }
    LearnedScore::at_smallest(model.clone()).with_class(class, o.guidance)
}

/// Generate `o.n` samples from a trained model.
///
/// ```no_run
/// use langevin_learn::checkpoint::TrainedModel;
/// use langevin_learn::generate::{generate, GenerateOptions};
/// let model = std::sync::Arc::new(TrainedModel::load("runs/moons".as_ref(), &candle_core::Device::Cpu)?);
/// let g = generate(model, &GenerateOptions { n: 1000, seed: 2, ..Default::default() })?;
/// assert_eq!(g.samples.nrows(), 1000);
/// # Ok::<(), langevin::Error>(())
/// ```
pub fn generate(model: Arc<TrainedModel>, o: &GenerateOptions) -> Result<Generated> {
    if o.n == 0 {
        return Err(Error::invalid("n", "`n` must be at least 1"));
    }
    let cfg = &model.config;
    let ladder = &cfg.ladder;
    let t_per = o.steps_per_level.unwrap_or(100);
    if t_per == 0 {
        return Err(Error::invalid("steps_per_level", "`steps_per_level` must be at least 1"));
    }
    let eps = o.eps.unwrap_or_else(|| match o.eps_rule {
        EpsRule::Contraction => ladder.contraction_eps(t_per),
        EpsRule::Ncsnv2 => ladder.ncsnv2_eps(t_per),
    });
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::invalid("eps", format!("`eps` = {eps} must be positive and finite")));
    }
    // The particles' state while sampling (about six N × d arrays), the output and its copy in
    // the data's units.
    langevin::mem::check(
        langevin::mem::product(&[o.n, cfg.dim, 4, 8]),
        format!("generating {} samples in {} dimensions", o.n, cfg.dim),
        "n",
    )?;
    let base = conditioned(&model, o)?;
    check_coupling(cfg, o)?;
    let dc = match o.sampler {
        GenSampler::Diffusion(method) => Some(resolve_diffusion(cfg, method, &o.diffusion)?),
        _ => None,
    };
    let init = match &o.init {
        Some(i) => {
            i.check(cfg.dim, o.n)?;
            standardize_init(i.clone(), &model)?
        }
        None => match o.sampler {
            GenSampler::Annealed => Init::Gaussian { mean: vec![0.0], std: ladder.sigma_max() },
            GenSampler::Ula => base.default_init(),
            // The moments of p_σmax for standardized data: N(0, (σ_max² + 1) I), in a VP
            // schedule its prior N(0, I) in x_T.
            GenSampler::Diffusion(_) => {
                let s = dc.as_ref().expect("resolved").0.sigma_start();
                Init::Gaussian { mean: vec![0.0], std: (s * s + 1.0).sqrt() }
            }
        },
    };
    let run_cfg = |steps: usize, step_size: f64| RunConfig {
        particles: o.n,
        steps,
        step_size,
        seed: o.seed,
        record_every: o.record_every,
        progress: o.progress.clone(),
        cancel: o.cancel.clone(),
        ..Default::default()
    };
    let mut diffusion = None;
    let mut nfe = None;
    let (result, steps, annealing, sigma, step_size) = match o.sampler {
        GenSampler::Diffusion(_) => {
            let (dc, notes) = dc.expect("resolved");
            let (result, stats) = run_diffusion(&base, &dc, &init, &run_cfg(1, 0.0))?;
            let rep = DiffusionReport::new(&dc, &stats, notes);
            nfe = Some(stats.nfe);
            let steps = rep.steps;
            diffusion = Some(rep);
            (result, steps, None, None, None)
        }
        GenSampler::Annealed => {
            let ac = AnnealConfig::new(ladder.clone(), t_per, eps, o.denoise)?;
            let result = run_annealed(&base, &ac, true, &init, &run_cfg(1, eps))?;
            let rule = if o.eps.is_some() {
                "given"
            } else {
                match o.eps_rule {
                    EpsRule::Contraction => "contraction",
                    EpsRule::Ncsnv2 => "NCSNv2 technique 4",
                }
            };
            let report = AnnealingReport {
                sigmas: ladder.sigmas.clone(),
                levels: ladder.levels(),
                steps_per_level: t_per,
                eps,
                eps_rule: rule.into(),
                denoise: o.denoise,
            };
            (result, ac.total_steps(), Some(report), None, None)
        }
        GenSampler::Ula => {
            let s = o.steps.unwrap_or(ladder.levels() * t_per);
            let tau = o.step_size.unwrap_or(1e-3);
            if s == 0 {
                return Err(Error::invalid("steps", "`steps` must be at least 1"));
            }
            if !(tau.is_finite() && tau > 0.0) {
                return Err(Error::invalid("step_size", format!("`step_size` = {tau} must be positive and finite")));
            }
            let result = sampler::run(&Ula::new(&base, true), &init, &run_cfg(s, tau))?;
            (result, s, None, Some(ladder.sigma_min()), Some(tau))
        }
    };
    let samples = cfg.normalization.undo(&result.samples);
    let trajectory = result.trajectory.as_ref().map(|tr| {
        let (f, n, d) = tr.dim();
        let flat = tr.to_shape((f * n, d)).expect("contiguous").to_owned();
        cfg.normalization.undo(&flat).into_shape_with_order((f, n, d)).expect("same size")
    });
    let nfe = nfe.unwrap_or(steps + usize::from(matches!(o.sampler, GenSampler::Annealed) && o.denoise));
    let passes = nfe * o.n.div_ceil(CHUNK) * base.passes_per_eval();
    let report = GenerateReport {
        model: model.dir.to_string_lossy().into_owned(),
        model_steps: model.step,
        dim: cfg.dim,
        n: o.n,
        seed: o.seed,
        sampler: o.sampler.name(),
        class: o.class.clone(),
        guidance: (cfg.net.classes > 0).then_some(o.guidance),
        annealing,
        diffusion,
        sigma,
        step_size,
        steps,
        nfe,
        seconds: result.seconds,
        score_evaluations_per_second: (nfe * o.n) as f64 / result.seconds,
        forward_passes: passes,
        forward_passes_per_second: passes as f64 / result.seconds,
    };
    Ok(Generated { samples, trajectory, result, report })
}
