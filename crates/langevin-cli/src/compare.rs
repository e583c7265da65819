//! `langevin compare-samplers`: quality against cost for every sampler at matched NFE.

use crate::plot::{self, Layer, Panel};
use crate::report;
use anyhow::{Result, bail};
use clap::Args;
use langevin::diffusion::compare::{CompareOptions, DEFAULT_SAMPLERS, compare_samplers};
use langevin::target::load_target;
use plotters::style::RGBColor;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A target with perturbed scores and exact draws (Gaussians, mixtures: ncsn-toy, gmm40, …).
    #[arg(long, value_name = "TARGET")]
    pub target: String,
    /// Budgets of score evaluations per sample, comma-separated.
    #[arg(long, value_name = "N,N,...", default_value = "10,20,50,100,200,500", value_delimiter = ',')]
    pub nfe: Vec<usize>,
    /// Samplers, comma-separated (default: all diffusion samplers and annealed Langevin).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub samplers: Option<Vec<String>>,
    /// Samples per run.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub particles: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the table as JSON (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Draw MMD and mode-weight error against NFE (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn run(a: &CompareArgs, quiet: bool) -> Result<()> {
    report::guard(
        &[("target", report::spec_file(Some(&a.target)))],
        &[("report", a.report.as_deref()), ("plot", a.plot.as_deref())],
    )?;
    if let Some(p) = &a.plot {
        plot::check_plot_path(p, false)?;
    }
    if a.nfe.len() > 20 {
        bail!("--nfe: at most 20 budgets (got {})", a.nfe.len());
    }
    if let Some(&b) = a.nfe.iter().find(|&&b| b > 100_000) {
        bail!("--nfe {b}: budgets above 100000 score evaluations per sample are not compared");
    }
    let (t, warnings) = load_target(&a.target)?;
    warnings.iter().for_each(|w| errln!("warning: {w}"));
    let o = CompareOptions {
        samplers: a.samplers.clone().unwrap_or_else(|| DEFAULT_SAMPLERS.iter().map(|s| s.to_string()).collect()),
        nfe: a.nfe.clone(),
        particles: a.particles,
        seed: a.seed,
        ..Default::default()
    };
    let rep = compare_samplers(t.as_ref(), &o)?;
    let Value::Object(mut r) = serde_json::to_value(&rep)? else { unreachable!("a struct") };
    r.insert("command".into(), json!("compare-samplers"));
    r.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    r.insert("target_spec".into(), json!(a.target));
    if let Some(p) = &a.report {
        report::write(p, &Value::Object(r))?;
    }
    if let Some(p) = &a.plot {
        let names: Vec<&String> = o.samplers.iter().collect();
        let lx = |v: usize| (v.max(1) as f64).log10();
        let xs: Vec<f64> = rep.points.iter().map(|p| lx(p.nfe)).collect();
        let xr = plot::range_of(xs.iter().cloned());
        let mut panels = Vec::new();
        type Get = fn(&langevin::diffusion::compare::ComparePoint) -> Option<f64>;
        let metrics: [(&str, Get, Option<f64>); 2] = [
            ("MMD to exact draws", |p| Some(p.mmd), Some(rep.mmd_floor)),
            ("mode-weight error (total variation)", |p| p.mode_weight_error, rep.mode_weight_error_floor),
        ];
        for (title, get, floor) in metrics {
            if rep.points.iter().all(|p| get(p).is_none()) {
                continue;
            }
            let ly = |v: f64| v.max(1e-6).log10();
            let ys = rep.points.iter().filter_map(get).map(ly).chain(floor.map(ly));
            let yr = plot::range_of(ys);
            let mut panel = Panel::new(title, xr, yr);
            panel.x_label = "log10 score evaluations per sample (NFE)".into();
            panel.y_label = format!("log10 {}", title.split(" (").next().unwrap_or(""));
            if let Some(f) = floor {
                panel.layers.push(Layer::Curve {
                    pts: vec![(xr.0, ly(f)), (xr.1, ly(f))],
                    color: RGBColor(0, 0, 0),
                    label: Some("exact draws (floor)".into()),
                });
            }
            for (i, name) in names.iter().enumerate() {
                let pts: Vec<(f64, f64)> = rep
                    .points
                    .iter()
                    .filter(|p| &&p.sampler == name)
                    .filter_map(|p| get(p).map(|v| (lx(p.nfe), ly(v))))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let c = COLORS[i % COLORS.len()];
                panel.layers.push(Layer::Points { pts: pts.clone(), color: c, alpha: 1.0, size: 3, label: None });
                panel.layers.push(Layer::Curve { pts, color: c, label: Some((*name).clone()) });
            }
            panels.push(panel);
        }
        plot::render(
            p,
            &format!("quality against cost on {} ({} samples)", rep.target, rep.particles),
            &panels,
            (1400, 640),
        )?;
    }
    if !quiet {
        let to_stderr = a.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let mut lines = vec![format!(
            "{:<18} {:>6} {:>6} {:>10} {:>10} {:>10} {:>12}",
            "sampler", "budget", "nfe", "mmd", "sliced W", "weights TV", "samples/s"
        )];
        for p in &rep.points {
            lines.push(format!(
                "{:<18} {:>6} {:>6} {:>10.3e} {:>10.3e} {:>10} {:>12.3e}",
                p.sampler,
                p.nfe_budget,
                p.nfe,
                p.mmd,
                p.sliced_wasserstein,
                p.mode_weight_error.map_or("-".into(), |w| format!("{w:.4}")),
                p.samples_per_second
            ));
        }
        lines.push(format!(
            "{:<18} {:>6} {:>6} {:>10.3e} {:>10.3e} {:>10}",
            "exact (floor)",
            "",
            "",
            rep.mmd_floor,
            rep.sliced_wasserstein_floor,
            rep.mode_weight_error_floor.map_or("-".into(), |w| format!("{w:.4}"))
        ));
        for l in lines {
            if to_stderr { errln!("{l}") } else { outln!("{l}")? }
        }
    }
    Ok(())
}
