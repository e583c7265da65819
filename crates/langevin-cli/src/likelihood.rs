//! `langevin likelihood`: log p(x) of data through the probability-flow ODE, for a target with
//! perturbed scores or a trained model.

use crate::report;
use anyhow::{Result, bail};
use clap::Args;
use langevin::diffusion::likelihood::{self as lib, LikelihoodOptions};
use langevin::diffusion::{SCHEDULE_NAMES, SOLVER_NAMES, ScheduleKind, Solver};
use langevin::target::load_target;
use langevin_learn::checkpoint::TrainedModel;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct LikelihoodArgs {
    /// A target with perturbed scores (Gaussians, mixtures): the closed form is printed beside.
    #[arg(long, value_name = "TARGET", conflicts_with = "model")]
    pub target: Option<String>,
    /// A trained model's run directory.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The points (.npy or .csv, one per row), in the data's units.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The forward process whose probability flow is integrated (default ve).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(SCHEDULE_NAMES))]
    pub schedule: Option<String>,
    /// Smallest noise level (the result is log p of the data perturbed by it); default from
    /// the target's length scales or the model's ladder.
    #[arg(long, value_name = "SIGMA")]
    pub sigma_min: Option<f64>,
    /// Largest noise level, where the Gaussian prior is evaluated.
    #[arg(long, value_name = "SIGMA")]
    pub sigma_max: Option<f64>,
    /// The time cut-off ε in (0, 1) (ve/vp/sub-vp/cosine/linear).
    #[arg(long, value_name = "EPS")]
    pub t_eps: Option<f64>,
    /// A fixed-step solver instead of the adaptive dopri5.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(SOLVER_NAMES))]
    pub solver: Option<String>,
    /// dopri5: relative tolerance (default 1e-5).
    #[arg(long, value_name = "RTOL")]
    pub rtol: Option<f64>,
    /// dopri5: absolute tolerance (default 1e-5).
    #[arg(long, value_name = "ATOL")]
    pub atol: Option<f64>,
    /// dopri5: step budget (default 10000).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// Hutchinson's trace estimator with this many Rademacher probes (default: the exact
    /// divergence up to d = 16, one probe above).
    #[arg(long, value_name = "P")]
    pub probes: Option<usize>,
    /// The data are 8-bit values: dequantize with uniform noise of one level and report bits per
    /// dimension of the levels. Integers 0..=255 (or the digits' 0..16), or, for a model trained
    /// on 8-bit images (PNG, MNIST, CIFAR-10), its pixel values k/127.5 − 1.
    #[arg(long)]
    pub dequantize: bool,
    /// Seed of the probes and the dequantization noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device for a model: cpu (cuda[:N] needs a build with CUDA support).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write the JSON report (`-` for stdout): mean_log_likelihood, log_likelihood per point,
    /// nfe, solver, closed_form for targets that have one.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(a: &LikelihoodArgs, quiet: bool) -> Result<()> {
    if a.target.is_none() == a.model.is_none() {
        bail!("give --target (a density with perturbed scores) or --model DIR (a trained model)");
    }
    report::guard(
        &[
            ("target", report::spec_file(a.target.as_deref())),
            ("model", a.model.as_deref()),
            ("data", Some(a.data.as_path())),
        ],
        &[("report", a.report.as_deref())],
    )?;
    let data = langevin::io::read_matrix(&a.data)?;
    let o = LikelihoodOptions {
        schedule: a.schedule.as_deref().map(ScheduleKind::from_name).transpose()?,
        sigma_min: a.sigma_min,
        sigma_max: a.sigma_max,
        t_eps: a.t_eps,
        solver: a.solver.as_deref().map(Solver::from_name).transpose()?,
        rtol: a.rtol,
        atol: a.atol,
        max_steps: a.max_steps,
        probes: a.probes,
        seed: a.seed,
        dequantize: a.dequantize,
    };
    let (rep, what) = if let Some(spec) = &a.target {
        let (t, warnings) = load_target(spec)?;
        for w in &warnings {
            errln!("warning: {w}");
        }
        (lib::likelihood_of_target(t.as_ref(), data.view(), &o)?, t.name())
    } else {
        let dir = a.model.as_ref().expect("checked");
        let device = crate::train::device(&a.device)?;
        let model = Arc::new(TrainedModel::load(dir, &device)?);
        (langevin_learn::likelihood::likelihood(model, data.view(), &o)?, dir.display().to_string())
    };
    let Value::Object(mut r) = serde_json::to_value(&rep)? else { unreachable!("a struct") };
    r.insert("command".into(), json!("likelihood"));
    r.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    r.insert("of".into(), json!(what));
    r.insert("data".into(), report::path(&a.data));
    let r = Value::Object(r);
    if let Some(p) = &a.report {
        report::write(p, &r)?;
    }
    if !quiet {
        let mut lines = vec![
            format!("likelihood of {} points ({}-D) under {what}", rep.n, rep.dim),
            format!(
                "mean log p  {:.6}{}",
                rep.mean_log_likelihood,
                rep.bits_per_dim.map(|b| format!("   ({b:.4} bits/dim)")).unwrap_or_default()
            ),
        ];
        if let Some(c) = &rep.closed_form {
            lines.push(format!(
                "closed form {:.6} (log p at σ_min = {:.2e}; relative error {:.2e}, largest point error {:.2e}; clean density {:.6})",
                c.mean_log_likelihood, rep.sigma_min, c.relative_error, c.max_abs_error, c.mean_log_likelihood_clean
            ));
        }
        lines.push(format!(
            "ode         {} on the {} schedule, σ {:.3e} → {:.4}, {} steps ({} rejected), {} score evaluations per point, divergence: {}",
            rep.solver,
            rep.schedule,
            rep.sigma_min,
            rep.sigma_max,
            rep.accepted_steps,
            rep.rejected_steps,
            rep.nfe,
            rep.divergence
        ));
        lines.push(format!("time        {:.3} s", rep.seconds));
        let to_stderr = a.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
        for l in lines {
            if to_stderr { errln!("{l}") } else { outln!("{l}")? }
        }
    }
    Ok(())
}
