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
    /// Judge class-conditional samples with a small classifier trained (in seconds, seeded) on
    /// the real training rows and labels of this run directory; its held-out accuracy is
    /// reported beside the fractions it assigns.
    #[arg(long, value_name = "RUN")]
    pub classifier: Option<PathBuf>,
    /// With --classifier: the class the samples were generated for; reports the fraction
    /// classified as it (the accuracy).
    #[arg(long, value_name = "CLASS")]
    pub class: Option<String>,
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
    if a.target.is_none() && a.reference.is_none() && a.classifier.is_none() {
        bail!(
            "give --target (compare with exact answers) or --reference FILE (compare with other samples), or both \
             (or --classifier RUN to judge class-conditional samples)"
        );
    }
    if a.class.is_some() && a.classifier.is_none() {
        bail!("--class needs --classifier RUN (the labeled run whose classifier judges the samples)");
    }
    if a.max_points < 2 || a.projections == 0 {
        bail!("--max-points must be at least 2 and --projections at least 1");
    }
    report::guard(
        &[
            ("samples", Some(&a.samples)),
            ("reference", a.reference.as_deref()),
            ("target", report::spec_file(a.target.as_deref())),
            ("classifier", a.classifier.as_deref()),
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
    let judge = match &a.classifier {
        Some(run) => Some(classify(run, a.class.as_deref(), &x, a.seed)?),
        None => None,
    };
    let mut rep = if a.target.is_some() || a.reference.is_some() {
        let opts = EvalOptions { max_points: a.max_points, projections: a.projections, seed: a.seed };
        let report = metrics::evaluate(x.view(), target.as_deref(), reference.as_ref().map(|r| r.view()), &opts)?;
        let Value::Object(rep) = serde_json::to_value(&report)? else { unreachable!("a struct") };
        rep
    } else {
        let mut rep = serde_json::Map::new();
        rep.insert("n_samples".into(), json!(x.nrows()));
        rep.insert("dim".into(), json!(d));
        rep
    };
    if let Some(j) = judge {
        rep.insert("classifier".into(), j);
    }
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

/// Train the run's classifier and judge the samples with it.
fn classify(run: &Path, class: Option<&str>, x: &Array2<f32>, seed: u64) -> Result<Value> {
    use langevin_learn::checkpoint::RunDir;
    use langevin_learn::classify::{Classifier, ClassifierConfig};
    let dir = RunDir::new(run);
    let config = dir.load_config()?;
    let Some(info) = &config.labels else {
        bail!(
            "--classifier {}: that run has no labels (it was trained unconditionally); give a run trained with \
             --label, --labels or --conditional",
            run.display()
        );
    };
    if x.ncols() != config.dim {
        bail!("the samples have {} columns but the run's data have {}", x.ncols(), config.dim);
    }
    let want = class.map(|c| info.index(c)).transpose()?;
    let (tr, ho) = dir.split_labels(&config)?.expect("a labeled run");
    let read = |name: &str| -> Result<Array2<f32>> { Ok(langevin::io::read_matrix(&dir.file(name))?) };
    let (xt, xh) = (read("train.npy")?, read("heldout.npy")?);
    let k = info.classes.len();
    let c = Classifier::train(&xt, &tr, k, &ClassifierConfig { seed, ..Default::default() })?;
    let heldout_accuracy = c.accuracy(&xh, &ho)?;
    let fractions = c.fractions(x)?;
    // The Fréchet distance between Gaussians fitted to the classifier's features (its last
    // hidden layer) of the samples and of the run's held-out rows: FID's form in the feature
    // space of this small classifier, not Inception's (so not comparable with published FIDs).
    // Beside it, the same distance from as many training rows as samples to the held-out rows:
    // what real data score.
    let (fs, fh) = (c.features(x)?, c.features(&xh)?);
    let frechet = metrics::frechet_distance(fs.view(), fh.view());
    let m = x.nrows().min(xt.nrows());
    let real_rows = xt.slice(ndarray::s![..m, ..]).to_owned();
    let frechet_real = metrics::frechet_distance(c.features(&real_rows)?.view(), fh.view());
    let mut out = json!({
        "run": run.display().to_string(),
        "classes": info.classes,
        "heldout_accuracy": heldout_accuracy,
        "fractions": fractions,
        "frechet_distance": frechet,
        "frechet_distance_real": frechet_real,
        "frechet_features": format!("the last hidden layer ({} features) of the classifier", fs.ncols()),
    });
    if let Some(w) = want {
        out["class"] = json!(info.classes[w]);
        out["accuracy"] = json!(fractions[w]);
    }
    Ok(out)
}

fn print_summary(rep: &Value, to_stderr: bool) -> Result<()> {
    let mut lines = vec![format!("samples    {} rows × {}", rep["n_samples"], rep["dim"])];
    if let Some(r) = rep["reference"].as_str() {
        lines.push(format!("reference  {r}"));
    }
    if let Some(c) = rep.get("classifier") {
        let f: Vec<f64> =
            c["fractions"].as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default();
        lines.push(format!(
            "classifier held-out accuracy {:.3}; fractions per class {}",
            c["heldout_accuracy"].as_f64().unwrap_or(f64::NAN),
            report::short(&f)
        ));
        lines.push(format!(
            "fréchet    {:.4} in the classifier's features (training rows: {:.4}; not FID)",
            c["frechet_distance"].as_f64().unwrap_or(f64::NAN),
            c["frechet_distance_real"].as_f64().unwrap_or(f64::NAN)
        ));
        if let Some(acc) = c.get("accuracy").and_then(|v| v.as_f64()) {
            lines.push(format!(
                "accuracy   {acc:.3} of the samples classified as {}",
                c["class"].as_str().unwrap_or("")
            ));
        }
    }
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
