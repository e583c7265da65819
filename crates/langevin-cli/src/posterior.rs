//! `langevin posterior`: Bayesian logistic or linear regression from a CSV file, sampled with
//! SGLD / pSGLD on minibatches or with full-batch MALA / ULA.

use crate::progress::Progress;
use crate::report;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use langevin::posterior::{
    Dataset, Model, Posterior, PosteriorOptions, PosteriorSampler as LibSampler, sample_posterior,
};
use langevin::sampler::Init;
use langevin::target::Target;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// p(y = 1 | x) = σ(θ₀ + θᵀx); labels must be 0 or 1.
    Logistic,
    /// y = θ₀ + θᵀx + N(0, noise_std²); the posterior is exactly Gaussian.
    Linear,
}

impl From<PosteriorSampler> for LibSampler {
    fn from(s: PosteriorSampler) -> Self {
        match s {
            PosteriorSampler::Sgld => LibSampler::Sgld,
            PosteriorSampler::Psgld => LibSampler::Psgld,
            PosteriorSampler::SgldCv => LibSampler::SgldCv,
            PosteriorSampler::Mala => LibSampler::Mala,
            PosteriorSampler::Ula => LibSampler::Ula,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PosteriorSampler {
    /// Stochastic-gradient Langevin dynamics on minibatches (Welling & Teh 2011).
    Sgld,
    /// SGLD with the RMSProp preconditioner (Li et al. 2016).
    Psgld,
    /// SGLD with control variates at the MAP (Baker et al. 2019): far less minibatch noise, so
    /// far larger steps; one full pass over the data up front.
    SgldCv,
    /// Full-batch MALA (exact; the reference).
    Mala,
    /// Full-batch ULA.
    Ula,
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct PosteriorArgs {
    /// Data: a CSV file with a header row naming the columns.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Name of the label column.
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Feature columns, comma-separated (default: every other column).
    #[arg(long, value_name = "A,B,...")]
    pub features: Option<String>,
    /// Likelihood.
    #[arg(long, value_enum, default_value = "logistic")]
    pub model: ModelKind,
    /// Linear model: the noise standard deviation.
    #[arg(long, value_name = "SIGMA")]
    pub noise_std: Option<f64>,
    /// Standard deviation of the Gaussian prior on every coefficient.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub prior_std: f64,
    /// Standardize the features to mean 0, standard deviation 1.
    #[arg(long)]
    pub standardize: bool,
    /// Skip rows with NaN or inf instead of stopping.
    #[arg(long)]
    pub drop_nonfinite: bool,
    /// Sampler.
    #[arg(long, value_enum, default_value = "sgld")]
    pub sampler: PosteriorSampler,
    /// SGLD minibatch size.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub batch: usize,
    /// Steps after warm-up.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub steps: usize,
    /// Warm-up steps, not kept (default: 1000 for MALA, which adapts its step size in them; 0
    /// otherwise). For SGLD they run at the first step size, before any decrease.
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Keep every K-th state (default: steps/1000).
    #[arg(long, value_name = "K")]
    pub thin: Option<usize>,
    /// Step size: SGLD's ε at the first step (default from the Laplace approximation), or the
    /// initial τ of MALA / ULA.
    #[arg(long, value_name = "EPS")]
    pub step_size: Option<f64>,
    /// SGLD: factor by which ε_t = a(b + t)^(−γ) falls over the run (Welling & Teh's decreasing
    /// schedule). Default 1: a constant step, since the default ε₀ is already small enough for the
    /// minibatch noise, and decreasing it further only slows mixing.
    #[arg(long, value_name = "F")]
    pub decay: Option<f64>,
    /// SGLD: exponent γ of the decreasing schedule, in (0.5, 1] (default 0.55).
    #[arg(long, value_name = "GAMMA")]
    pub schedule_gamma: Option<f64>,
    /// Number of independent chains.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub chains: usize,
    /// Initial positions (default: around the MAP, overdispersed); same syntax as `sample --init`.
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the kept draws (draws × chains rows, one column per parameter): .npy or .csv.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write a JSON report (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(a: &PosteriorArgs, quiet: bool) -> Result<()> {
    if a.model == ModelKind::Logistic && a.noise_std.is_some() {
        bail!("--noise-std applies to --model linear only");
    }
    let stochastic = matches!(a.sampler, PosteriorSampler::Sgld | PosteriorSampler::Psgld | PosteriorSampler::SgldCv);
    if !stochastic && (a.decay.is_some() || a.schedule_gamma.is_some()) {
        bail!("--decay and --schedule-gamma apply to --sampler sgld and psgld only");
    }
    if a.chains == 0 {
        bail!("--chains must be at least 1");
    }
    if a.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if let Some(s) = a.step_size
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--step-size = {s} must be positive and finite");
    }
    report::guard(
        &[("data", Some(&a.data)), ("init", report::spec_file(a.init.as_deref()))],
        &[("out", a.out.as_deref()), ("report", a.report.as_deref())],
    )?;
    if !a.data.to_string_lossy().to_ascii_lowercase().ends_with(".csv") {
        bail!("{}: --data must be a CSV file with a header row naming the columns", a.data.display());
    }
    let table = langevin::io::read_table(&a.data)?;
    let features: Option<Vec<String>> =
        a.features.as_ref().map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
    let mut data = Dataset::from_table(&table, &a.data, &a.label, features.as_deref(), a.drop_nonfinite)?;
    if a.standardize {
        data.standardize()?;
    }
    let model = match a.model {
        ModelKind::Logistic => Model::Logistic,
        ModelKind::Linear => Model::Linear { noise_std: a.noise_std.unwrap_or(1.0) },
    };
    let post = Posterior::new(Arc::new(data), model, a.prior_std)?;
    let d = post.dim();
    let init = a.init.as_deref().map(Init::parse).transpose()?;
    let warmup = a.warmup.unwrap_or(if a.sampler == PosteriorSampler::Mala { 1000 } else { 0 });
    let progress = Progress::start(((warmup + a.steps) * a.chains) as u64, "chain-steps", quiet);
    let opts = PosteriorOptions {
        sampler: a.sampler.into(),
        chains: a.chains,
        steps: a.steps,
        warmup: a.warmup,
        thin: a.thin,
        step_size: a.step_size,
        batch: a.batch,
        decay: a.decay,
        schedule_gamma: a.schedule_gamma,
        init,
        seed: a.seed,
        progress: Some(progress.counter.clone()),
    };
    let (result, report) = sample_posterior(&post, &opts)?;
    progress.finish();
    let names = post.parameter_names();
    if let Some(p) = &a.out {
        langevin::io::write_matrix(p, result.samples.view(), &names)?;
    }
    let (mean, std) = (report.posterior_mean.clone(), report.posterior_std.clone());
    let Value::Object(mut rep) = serde_json::to_value(&report)? else { unreachable!("a struct") };
    rep.insert("command".into(), json!("posterior"));
    rep.insert("data".into(), report::path(&a.data));
    rep.insert("prior_std".into(), json!(a.prior_std));
    if let Some((m, s)) = &post.data().standardization {
        rep.insert("standardization".into(), json!({"mean": m, "std": s}));
    }
    let rep = Value::Object(rep);
    if let Some(p) = &a.report {
        report::write(p, &rep)?;
    }
    if !quiet {
        let to_stderr = a.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let mut lines = vec![
            format!("model      {}", post.name()),
            format!(
                "sampler    {} ({} chains, {} warm-up + {} steps, {:.2} s)",
                rep["sampler"].as_str().unwrap_or(""),
                a.chains,
                report.warmup,
                a.steps,
                result.seconds
            ),
            format!("{:<16} {:>12} {:>12} {:>12} {:>12}", "parameter", "mean", "std", "MAP", "Laplace std"),
        ];
        let ls = post.laplace_std();
        for i in 0..d {
            lines.push(format!(
                "{:<16} {:>12.5} {:>12.5} {:>12.5} {:>12.5}",
                names[i],
                mean[i],
                std[i],
                post.map()[i],
                ls[i]
            ));
        }
        if let Some(r) = result.acceptance_rate() {
            lines.push(format!("acceptance {r:.3}"));
        }
        if let Some(e) = rep.get("ess_bulk_min").and_then(|v| v.as_f64()) {
            lines.push(format!(
                "ess        min bulk ESS {e:.0}, max R-hat {:.4}",
                rep["rhat_max"].as_f64().unwrap_or(f64::NAN)
            ));
        }
        for l in lines {
            if to_stderr { errln!("{l}") } else { outln!("{l}")? }
        }
    }
    Ok(())
}
