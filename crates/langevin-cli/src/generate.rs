//! `langevin generate`: new samples from a trained score model, through the core samplers.

use crate::progress::Progress;
use crate::report;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use langevin::sampler::{self, AnnealConfig, Annealed, Init, RunConfig, RunResult, Ula};
use langevin::target::Target;
use langevin_learn::checkpoint::TrainedModel;
use langevin_learn::model::{CHUNK, LearnedScore};
use ndarray::{Array2, Array3};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenSampler {
    /// Annealed Langevin over the training ladder σ₁ > … > σ_L, with the final denoising step.
    Annealed,
    /// Plain Langevin with the score at the smallest level σ_L.
    Ula,
}

/// How ε is chosen for annealed Langevin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EpsRule {
    /// (1 − ε/σ_L²)^T = 1e-9: each level forgets the previous one (the default; measured better).
    Contraction,
    /// NCSNv2's technique 4: the variance of a point mass comes out right after T steps.
    Ncsnv2,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    /// Run directory of a trained model (from `langevin train`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub n: usize,
    /// Sampler.
    #[arg(long, value_enum, default_value = "annealed")]
    pub sampler: GenSampler,
    /// Annealed: Langevin steps per noise level T (default 100).
    #[arg(long, value_name = "T")]
    pub steps_per_level: Option<usize>,
    /// Annealed: step ε at σ_L, level i using ε σᵢ²/σ_L² (default: from --eps-rule).
    #[arg(long, value_name = "EPS")]
    pub eps: Option<f64>,
    /// Annealed: how ε follows from T when --eps is not given.
    #[arg(long, value_enum, default_value = "contraction")]
    pub eps_rule: EpsRule,
    /// Annealed: skip the final denoising step x + σ_L² s(x, σ_L).
    #[arg(long)]
    pub no_denoise: bool,
    /// Plain Langevin: number of steps (default L × T, the annealed budget).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Plain Langevin: step size τ (default 1e-3 in standardized units).
    #[arg(long, value_name = "TAU")]
    pub step_size: Option<f64>,
    /// Initial positions in the data's units (default: annealed N(mean, (σ₁·std)²), plain uniform over ±3 std).
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,
    /// Check that the model is for this dimension.
    #[arg(long, value_name = "D")]
    pub dim: Option<usize>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: cpu (cuda[:N] needs a build with CUDA support).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write the samples (.npy or .csv), in the data's units.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write a JSON report (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write positions every --record-every steps as frames × n × d (.npy).
    #[arg(long, value_name = "FILE")]
    pub trajectory: Option<PathBuf>,
    /// Recording interval for --trajectory (default: 1/100 of the run).
    #[arg(long, value_name = "K")]
    pub record_every: Option<usize>,
}

/// How to generate.
pub struct GenOptions {
    pub n: usize,
    pub sampler: GenSampler,
    pub steps_per_level: Option<usize>,
    pub eps: Option<f64>,
    pub eps_rule: EpsRule,
    pub denoise: bool,
    pub steps: Option<usize>,
    pub step_size: Option<f64>,
    /// Initial positions in the data's units.
    pub init: Option<Init>,
    pub seed: u64,
    pub record_every: Option<usize>,
}

/// Samples (in the data's units), the run record, and a JSON description.
pub struct Generated {
    pub samples: Array2<f32>,
    pub trajectory: Option<Array3<f32>>,
    pub result: RunResult,
    pub info: serde_json::Map<String, Value>,
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
            bail!("--init gaussian is not available for generation; use uniform:LO,HI, point:... or a file")
        }
    })
}

/// Generate with a trained model.
pub fn generate(model: Arc<TrainedModel>, o: &GenOptions, quiet: bool) -> Result<Generated> {
    if o.n == 0 {
        bail!("--n must be at least 1");
    }
    let cfg = &model.config;
    let ladder = &cfg.ladder;
    let t_per = o.steps_per_level.unwrap_or(100);
    if t_per == 0 {
        bail!("--steps-per-level must be at least 1");
    }
    let eps = o.eps.unwrap_or_else(|| match o.eps_rule {
        EpsRule::Contraction => ladder.contraction_eps(t_per),
        EpsRule::Ncsnv2 => ladder.ncsnv2_eps(t_per),
    });
    if !(eps.is_finite() && eps > 0.0) {
        bail!("--eps = {eps} must be positive and finite");
    }
    let base = LearnedScore::at_smallest(model.clone());
    let init = match &o.init {
        Some(i) => {
            i.check(cfg.dim, o.n)?;
            standardize_init(i.clone(), &model)?
        }
        None => match o.sampler {
            GenSampler::Annealed => Init::Gaussian { mean: vec![0.0], std: ladder.sigma_max() },
            GenSampler::Ula => base.default_init(),
        },
    };
    let mut info = serde_json::Map::new();
    info.insert("model".into(), json!(model.dir));
    info.insert("model_steps".into(), json!(model.step));
    info.insert("dim".into(), json!(cfg.dim));
    info.insert("n".into(), json!(o.n));
    info.insert("seed".into(), json!(o.seed));
    let (steps, step_size) = match o.sampler {
        GenSampler::Annealed => {
            info.insert("sampler".into(), json!("annealed"));
            info.insert(
                "annealing".into(),
                json!({"sigmas": ladder.sigmas, "levels": ladder.levels(), "steps_per_level": t_per, "eps": eps,
                       "eps_rule": if o.eps.is_some() { "given" } else { match o.eps_rule { EpsRule::Contraction => "contraction", EpsRule::Ncsnv2 => "NCSNv2 technique 4" } },
                       "denoise": o.denoise}),
            );
            (ladder.levels() * t_per, eps)
        }
        GenSampler::Ula => {
            let s = o.steps.unwrap_or(ladder.levels() * t_per);
            let tau = o.step_size.unwrap_or(1e-3);
            if s == 0 || !(tau.is_finite() && tau > 0.0) {
                bail!("--steps must be at least 1 and --step-size positive");
            }
            info.insert("sampler".into(), json!("ula"));
            info.insert("sigma".into(), json!(ladder.sigma_min()));
            info.insert("step_size".into(), json!(tau));
            (s, tau)
        }
    };
    let progress = Progress::start((steps * o.n) as u64, "particle-steps", quiet);
    let run_cfg = RunConfig {
        particles: o.n,
        steps,
        step_size,
        seed: o.seed,
        block_size: Some(o.n.min(base.preferred_block_size())),
        record_every: o.record_every,
        progress: Some(progress.counter.clone()),
        ..Default::default()
    };
    let result = match o.sampler {
        GenSampler::Annealed => {
            let ac = AnnealConfig { sigmas: ladder.sigmas.clone(), steps_per_level: t_per, eps, denoise: o.denoise };
            sampler::run(&Annealed::new(&base, ac, true)?, &init, &run_cfg)?
        }
        GenSampler::Ula => sampler::run(&Ula::new(&base, true), &init, &run_cfg)?,
    };
    progress.finish();
    let samples = cfg.normalization.undo(&result.samples);
    let trajectory = result.trajectory.as_ref().map(|tr| {
        let (f, n, d) = tr.dim();
        let flat = tr.to_shape((f * n, d)).expect("contiguous").to_owned();
        cfg.normalization.undo(&flat).into_shape_with_order((f, n, d)).expect("same size")
    });
    let passes = steps * o.n.div_ceil(CHUNK);
    info.insert("steps".into(), json!(steps));
    info.insert("seconds".into(), json!(result.seconds));
    info.insert("score_evaluations_per_second".into(), json!((steps * o.n) as f64 / result.seconds));
    info.insert("forward_passes".into(), json!(passes));
    info.insert("forward_passes_per_second".into(), json!(passes as f64 / result.seconds));
    Ok(Generated { samples, trajectory, result, info })
}

pub fn run(a: &GenerateArgs, quiet: bool) -> Result<()> {
    for p in [&a.out, &a.report, &a.trajectory].into_iter().flatten() {
        report::check_output(p)?;
    }
    if a.record_every.is_some() && a.trajectory.is_none() {
        bail!("--record-every needs --trajectory FILE.npy");
    }
    let annealed_only = [
        ("--steps-per-level", a.steps_per_level.is_some()),
        ("--eps", a.eps.is_some()),
        ("--no-denoise", a.no_denoise),
        ("--eps-rule", a.eps_rule != EpsRule::Contraction),
    ];
    let ula_only = [("--steps", a.steps.is_some()), ("--step-size", a.step_size.is_some())];
    match a.sampler {
        GenSampler::Annealed => {
            if let Some((f, _)) = ula_only.iter().find(|(_, s)| *s) {
                bail!("{f} applies to --sampler ula; annealed runs --levels × --steps-per-level steps");
            }
        }
        GenSampler::Ula => {
            if let Some((f, _)) = annealed_only.iter().find(|(_, s)| *s) {
                bail!("{f} applies to --sampler annealed only");
            }
        }
    }
    let device = crate::train::device(&a.device)?;
    let model = Arc::new(TrainedModel::load(&a.model, &device)?);
    if let Some(d) = a.dim {
        if d != model.config.dim {
            bail!(
                "--dim {d}, but the model in {} was trained on {}-dimensional data; it generates only that dimension",
                a.model.display(),
                model.config.dim
            );
        }
    }
    let init = a.init.as_deref().map(Init::parse).transpose()?;
    let record_every = a.trajectory.as_ref().map(|_| a.record_every.unwrap_or(1.max(model.config.ladder.levels())));
    let opts = GenOptions {
        n: a.n,
        sampler: a.sampler,
        steps_per_level: a.steps_per_level,
        eps: a.eps,
        eps_rule: a.eps_rule,
        denoise: !a.no_denoise,
        steps: a.steps,
        step_size: a.step_size,
        init,
        seed: a.seed,
        record_every,
    };
    let g = generate(model.clone(), &opts, quiet)?;
    let names: Vec<String> = (0..model.config.dim).map(|i| format!("x{i}")).collect();
    if let Some(p) = &a.out {
        langevin::io::write_matrix(p, g.samples.view(), &names)?;
    }
    if let (Some(p), Some(tr)) = (&a.trajectory, &g.trajectory) {
        langevin::io::write_trajectory(p, tr.view())?;
    }
    let mut rep = g.info.clone();
    rep.insert("command".into(), json!("generate"));
    let (mean, cov) = langevin::diagnostics::mean_cov(g.samples.view());
    rep.insert("mean".into(), json!(mean));
    rep.insert("covariance".into(), report::matrix(&cov));
    if let Some(p) = &a.out {
        rep.insert("out".into(), json!(p));
    }
    let rep = Value::Object(rep);
    if let Some(p) = &a.report {
        report::write(p, &rep)?;
    }
    if !quiet {
        let line = format!(
            "generated {} samples with {} in {:.2} s ({:.3e} score evaluations/s){}",
            a.n,
            rep["sampler"].as_str().unwrap_or(""),
            g.result.seconds,
            rep["score_evaluations_per_second"].as_f64().unwrap_or(0.0),
            a.out.as_ref().map(|p| format!("; wrote {}", p.display())).unwrap_or_default()
        );
        if a.report.as_ref().is_some_and(|p| p.as_os_str() == "-") { eprintln!("{line}") } else { println!("{line}") }
    }
    Ok(())
}
