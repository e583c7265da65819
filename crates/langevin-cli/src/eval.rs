//! `langevin eval`: compare samples with a target's exact answers or with reference samples.

use crate::report;
use anyhow::{Context, Result, bail};
use clap::Args;
use langevin::metrics::{self, EvalOptions};
use langevin::target::load_target;
use ndarray::Array2;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// Samples to evaluate (.npy or .csv, one sample per row).
    #[arg(long, value_name = "FILE")]
    pub samples: PathBuf,
    /// The target the samples should follow: gives mode weights, KS tests against exact
    /// marginals, exact moments, and exact reference samples when it can be sampled directly.
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// Reference samples to compare with (takes precedence over the target's exact samples).
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Write the metrics as JSON (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Largest number of rows of each set used by the O(n²) statistics (MMD, energy distance).
    #[arg(long, default_value_t = 4000, value_name = "N")]
    pub max_points: usize,
    /// Random projections for the sliced Wasserstein distance.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub projections: usize,
    /// Seed for subsampling, projections and exact reference samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn load_finite(path: &Path, what: &str) -> Result<Array2<f32>> {
    let x = langevin::io::read_matrix(path)?;
    if let Some((i, j)) = langevin::io::first_non_finite(x.view()) {
        bail!(
            "{}: row {} (counting from 1), column {} of the {what} is {}; the {what} must be finite numbers",
            path.display(),
            i + 1,
            j + 1,
            x[[i, j]]
        );
    }
    if x.nrows() < 2 {
        bail!("{}: the {what} have {} row(s); at least 2 are needed", path.display(), x.nrows());
    }
    Ok(x)
}

pub fn run(a: &EvalArgs, quiet: bool) -> Result<()> {
    if a.target.is_none() && a.reference.is_none() {
        bail!("give --target (compare with exact answers) or --reference FILE (compare with other samples), or both");
    }
    if a.max_points < 2 || a.projections == 0 {
        bail!("--max-points must be at least 2 and --projections at least 1");
    }
    report::guard(
        &[
            ("samples", Some(&a.samples)),
            ("reference", a.reference.as_deref()),
            ("target", report::spec_file(a.target.as_deref())),
        ],
        &[("report", a.report.as_deref())],
    )?;
    let x = load_finite(&a.samples, "samples")?;
    let d = x.ncols();
    let target = match &a.target {
        Some(spec) => {
            let (t, warnings) = load_target(spec)?;
            for w in warnings {
                errln!("warning: {w}");
            }
            if t.dim() != d {
                bail!(
                    "{} has {d} columns but target '{}' has dimension {}; the samples do not belong to this target",
                    a.samples.display(),
                    t.name(),
                    t.dim()
                );
            }
            Some(t)
        }
        None => None,
    };
    let reference = match &a.reference {
        Some(p) => Some(load_finite(p, "reference samples")?),
        None => None,
    };
    if let (Some(p), Some(r)) = (&a.reference, &reference)
        && r.ncols() != d
    {
        bail!("{} has {} columns but the samples have {d}", p.display(), r.ncols());
    }
    let opts = EvalOptions { max_points: a.max_points, projections: a.projections, seed: a.seed };
    let report = metrics::evaluate(x.view(), target.as_deref(), reference.as_ref().map(|r| r.view()), &opts)?;
    let Value::Object(mut rep) = serde_json::to_value(&report)? else { unreachable!("a struct") };
    rep.insert("command".into(), json!("eval"));
    rep.insert("samples".into(), report::path(&a.samples));
    if let Some(p) = &a.reference {
        rep.insert("reference".into(), json!(p.display().to_string()));
    }
    let rep = Value::Object(rep);
    if let Some(p) = &a.report {
        report::write(p, &rep).with_context(|| format!("writing {}", p.display()))?;
    }
    if !quiet {
        print_summary(&rep, a.report.as_ref().is_some_and(|p| p.as_os_str() == "-"))?;
    }
    Ok(())
}

fn print_summary(rep: &Value, to_stderr: bool) -> Result<()> {
    let mut lines = vec![format!("samples    {} rows × {}", rep["n_samples"], rep["dim"])];
    lines.push(format!("reference  {}", rep["reference"].as_str().unwrap_or("")));
    for (k, label) in [("mmd", "mmd       "), ("sliced_wasserstein", "sliced W2 "), ("energy_distance", "energy    ")] {
        if let Some(v) = rep.get(k).and_then(|v| v.as_f64()) {
            lines.push(format!("{label} {v:.5}"));
        }
    }
    let list = |k: &str| {
        rep.get(k).and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>())
    };
    if let (Some(w), Some(e)) = (list("mode_weights"), list("mode_weights_expected")) {
        lines.push(format!("modes      weights {} (target {})", report::short(&w), report::short(&e)));
    }
    if let Some(ks) = rep.get("ks").and_then(|v| v.as_array()) {
        for k in ks {
            lines.push(format!(
                "ks         coordinate {}: D = {:.4}, p = {:.3}",
                k["coordinate"],
                k["statistic"].as_f64().unwrap_or(f64::NAN),
                k["p_value"].as_f64().unwrap_or(f64::NAN)
            ));
        }
    }
    for l in lines {
        if to_stderr { errln!("{l}") } else { outln!("{l}")? }
    }
    Ok(())
}
