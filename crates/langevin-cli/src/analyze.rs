//! `langevin analyze`: the score as a flow (seed 002). Stagnation points and their types,
//! divergence, stiffness and the step sizes that follow from it, where noise outweighs drift,
//! how far a learned field is from a gradient field, and (for models trained on a built-in
//! mixture) how much the learned modes are smeared against the exact ones.

use crate::field::{self, FieldArgs};
use crate::plot::{self, Heat, Layer, Marker, Panel};
use crate::report;
use anyhow::{Context, Result, bail};
use clap::Args;
use langevin::analysis::{self, Field, PointKind, Region, StagnationPoint};
use langevin::target::Target;
use ndarray::Array2;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub field: FieldArgs,
    /// Box to search for stagnation points: LO,HI (every coordinate) or LO0,HI0;LO1,HI1;...
    /// Default: the target's start region, or the range of the samples.
    #[arg(long, value_name = "BOX")]
    pub region: Option<String>,
    /// Newton starts (a grid in 1-D and 2-D, seeded uniform draws above).
    #[arg(long, default_value_t = 400, value_name = "N")]
    pub starts: usize,
    /// Typical samples (.npy or .csv) for stiffness, divergence and the noise map. Default: exact
    /// draws, a short MALA run, or a model's held-out data.
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Step size τ for the noise-versus-drift map (default: the recommended step).
    #[arg(long, value_name = "TAU")]
    pub step_size: Option<f64>,
    /// Random seed (Newton starts above 2-D, pilot samples).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the JSON report (`-` for stdout; default stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write a picture of the field (2-D only): .png or .svg.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// Typical samples of a field source, in f64: a file, a model's held-out data, or
/// [`analysis::typical_samples`].
pub fn samples_for(src: &field::FieldSource, file: Option<&Path>, n: usize, seed: u64) -> Result<Array2<f64>> {
    let d = src.target.dim();
    let x = match (file, &src.model) {
        (Some(p), _) => langevin::io::read_matrix(p)?,
        (None, Some(m)) => {
            let p = m.dir.join("heldout.npy");
            langevin::io::read_matrix(&p)
                .with_context(|| format!("reading the model's held-out data {}", p.display()))?
        }
        (None, None) => return Ok(analysis::typical_samples(src.target.as_ref(), n, seed)?),
    };
    if x.ncols() != d {
        bail!(
            "{}: the samples have {} columns but the field is {d}-dimensional",
            file.map_or_else(|| "held-out data".into(), |p| p.display().to_string()),
            x.ncols()
        );
    }
    if let Some((r, c)) = langevin::io::first_non_finite(x.view()) {
        bail!("samples: row {} column {} is not finite; remove it", r + 1, c + 1);
    }
    // Evenly spaced rows, at most n of them.
    let step = x.nrows().div_ceil(n).max(1);
    let rows: Vec<usize> = (0..x.nrows()).step_by(step).collect();
    Ok(Array2::from_shape_fn((rows.len(), d), |(i, c)| x[[rows[i], c]] as f64))
}

/// The region an analysis looks at by default (the library's [`Region::default_for`]).
pub fn default_region(t: &dyn Target, samples: &Array2<f64>) -> Region {
    Region::default_for(t, samples)
}

pub fn run(a: &AnalyzeArgs, _quiet: bool) -> Result<()> {
    if a.starts == 0 {
        bail!("--starts must be at least 1");
    }
    if let Some(t) = a.step_size
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--step-size = {t} must be positive and finite");
    }
    report::guard(
        &[
            ("samples", a.samples.as_deref()),
            ("target", report::spec_file(a.field.target.as_deref())),
            ("model", a.field.model.as_deref()),
        ],
        &[("report", a.report.as_deref()), ("plot", a.plot.as_deref())],
    )?;
    if let Some(p) = &a.plot {
        plot::check_plot_path(p, false)?;
    }
    let src = field::load(&a.field)?;
    // --quiet hides progress, never warnings.
    src.warnings.iter().for_each(|w| errln!("warning: {w}"));
    let t = src.target.as_ref();
    let d = t.dim();
    if a.plot.is_some() && d != 2 {
        bail!("--plot draws 2-D fields; this one is {d}-dimensional (the JSON report covers any dimension)");
    }
    let f = Field::new(t);
    let samples = samples_for(&src, a.samples.as_deref(), 2000, a.seed)?;
    let region = match &a.region {
        Some(r) => Region::parse(r, d)?,
        None => default_region(t, &samples),
    };
    let opts =
        analysis::AnalyzeOptions { region: region.clone(), starts: a.starts, seed: a.seed, step_size: a.step_size };
    let report = analysis::analyze(&f, &samples, &opts)?;
    let tau = report.noise_vs_drift.step_size;
    let points: Vec<StagnationPoint> = report.stagnation_points.iter().map(|p| p.point.clone()).collect();
    let Value::Object(mut rep) = serde_json::to_value(&report)? else { unreachable!("a struct") };
    rep.insert("command".into(), json!("analyze"));
    rep.insert("sigma".into(), json!(src.sigma));
    rep.insert(
        "units".into(),
        json!(if src.model.is_some() { "data (σ in the model's standardized units)" } else { "target" }),
    );
    if let Some(m) = &src.model
        && let Some(s) = smearing(m, src.sigma, &points, &region, a)?
    {
        rep.insert("mode_smearing".into(), s);
    }
    let value = serde_json::Value::Object(rep);
    match &a.report {
        Some(p) if p.as_os_str() != "-" => report::write(p, &value)?,
        _ => outln!("{}", serde_json::to_string_pretty(&value)?)?,
    }
    if let Some(p) = &a.plot {
        let panels = field_panels(&f, &region, &points, Some(tau))?;
        plot::render(p, &format!("{} — score field", t.name()), &panels, (1200, 600))?;
    }
    Ok(())
}

/// Learned against exact curvature at the modes, for models trained on a built-in mixture.
fn smearing(
    m: &langevin_learn::checkpoint::TrainedModel,
    sigma: f64,
    points: &[StagnationPoint],
    region: &Region,
    a: &AnalyzeArgs,
) -> Result<Option<serde_json::Value>> {
    let Some(exact) =
        langevin_learn::data::exact_perturbed_mixture(&m.config.data.source, sigma, &m.config.normalization.std)
    else {
        return Ok(None);
    };
    let ef = Field::new(&exact);
    let exact_points = analysis::stagnation_points(&ef, region, a.starts, a.seed, None)?;
    let modes = analysis::mode_smearing(&exact_points, points);
    Ok(Some(json!({
        "data": m.config.data.source,
        "note": "curvature_ratio = learned/exact eigenvalue of ∇s at each mode (sorted); below 1 the learned mode is smeared (flatter) than the exact one",
        "modes": modes,
    })))
}

/// Two panels of a 2-D field: arrows over log₁₀‖s‖ (noise-dominated cells shaded when a step is
/// given) and the divergence, both with the stagnation points marked.
pub fn field_panels(f: &Field, region: &Region, points: &[StagnationPoint], tau: Option<f64>) -> Result<Vec<Panel>> {
    let xr = (region.lo[0], region.hi[0]);
    let yr = (region.lo[1], region.hi[1]);
    let n = 80;
    let grid = analysis::FieldGrid::compute(f, region, n, n, true, tau)?;
    let mut left = Panel::new(
        match tau {
            Some(t) => format!("score s(x): arrows, log₁₀‖s‖ bands; grey: noise wins at τ = {t:.3e}"),
            None => "score s(x): arrows over log₁₀‖s‖".into(),
        },
        xr,
        yr,
    );
    left.heat = Some(Heat {
        nx: n,
        ny: n,
        values: grid.log_norm.clone(),
        bands: 10,
        clip_low: false,
        mask: grid.noise_dominated.clone().map(|m| (m, plotters::style::RGBColor(225, 225, 225))),
        label: "log₁₀‖s‖".into(),
    });
    // Arrows on a coarser grid, all of one length (direction only; the bands give magnitude).
    let m = 22;
    let coarse = analysis::FieldGrid::compute(f, region, m, m, false, None)?;
    let (ga, sa) = (&coarse.points, &coarse.scores);
    let len = 0.4 * ((xr.1 - xr.0) / m as f64).min((yr.1 - yr.0) / m as f64);
    let arrows = ga
        .outer_iter()
        .zip(sa.outer_iter())
        .filter_map(|(p, v)| {
            let nv = (v[0] * v[0] + v[1] * v[1]).sqrt();
            (nv > 0.0 && nv.is_finite()).then(|| {
                let (ux, uy) = (v[0] / nv * len, v[1] / nv * len);
                ((p[0] - ux, p[1] - uy), (p[0] + ux, p[1] + uy))
            })
        })
        .collect();
    left.layers.push(Layer::Arrows { arrows, color: plot::GRAY });
    let mut right = Panel::new("divergence ∇·s (bands) and stagnation points", xr, yr);
    let div = grid.divergence.expect("asked for");
    right.heat =
        Some(Heat { nx: n, ny: n, values: div, bands: 12, clip_low: true, mask: None, label: "∇·s".into() });
    for p in [&mut left, &mut right] {
        for (kind, marker, label) in [
            (PointKind::Sink, Marker::Sink, "sink (mode)"),
            (PointKind::Saddle, Marker::Saddle, "saddle"),
            (PointKind::Source, Marker::Source, "source"),
        ] {
            let pts: Vec<(f64, f64)> = points.iter().filter(|q| q.kind == kind).map(|q| (q.x[0], q.x[1])).collect();
            if !pts.is_empty() {
                p.layers.push(Layer::Markers { pts, marker, label: Some(label.into()) });
            }
        }
    }
    Ok(vec![left, right])
}
