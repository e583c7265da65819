//! `langevin plot`: density, field, trajectories, training, images.

use crate::analyze;
use crate::field::{self, FieldArgs};
use crate::plot::{self, Heat, Layer, Panel};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use langevin::analysis::{self, Field, Region};
use langevin::target::{Target, load_target};
use ndarray::ArrayView2;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct PlotArgs {
    #[command(subcommand)]
    pub kind: PlotKind,
}

/// Size and output, common to every plot.
#[derive(Args, Debug)]
pub struct Out {
    /// Output image: .png or .svg.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Width in pixels.
    #[arg(long, value_name = "PX")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[arg(long, value_name = "PX")]
    pub height: Option<u32>,
}

impl Out {
    fn size(&self, default: (u32, u32)) -> Result<(u32, u32)> {
        let (w, h) = (self.width.unwrap_or(default.0), self.height.unwrap_or(default.1));
        if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
            bail!("--width {w} --height {h}: the image must be 200–8000 pixels wide and 150–8000 high");
        }
        Ok((w, h))
    }
}

#[derive(Subcommand, Debug)]
pub enum PlotKind {
    /// Samples against the density: a 1-D histogram over the exact density, or 2-D samples over
    /// bands of log p.
    Density {
        /// Samples (.npy or .csv, one per row).
        #[arg(long, value_name = "FILE")]
        samples: PathBuf,
        /// The target whose density is drawn underneath (optional).
        #[arg(long, value_name = "SPEC")]
        target: Option<String>,
        /// Which coordinates to show: I (a histogram) or I,J (a scatter). Needed above 2-D.
        #[arg(long, value_name = "I[,J]")]
        coords: Option<String>,
        /// Histogram bins (1-D).
        #[arg(long, default_value_t = 60)]
        bins: usize,
        #[command(flatten)]
        out: Out,
    },
    /// The score field as arrows, with its stagnation points marked by type.
    Field {
        #[command(flatten)]
        field: FieldArgs,
        /// Region: LO,HI or LO0,HI0;LO1,HI1 (default: the target's start region).
        #[arg(long, value_name = "BOX", allow_hyphen_values = true)]
        region: Option<String>,
        #[command(flatten)]
        out: Out,
    },
    /// Paths of particles from trajectory files (`sample --trajectory`), one panel per file:
    /// e.g. the probability-flow ODE's paths beside the reverse SDE's from the same start.
    Trajectories {
        /// Trajectories: frames × particles × d (.npy); several files are drawn side by side.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        samples: Vec<PathBuf>,
        /// Target drawn underneath (optional).
        #[arg(long, value_name = "SPEC")]
        target: Option<String>,
        /// How many particles to draw.
        #[arg(long, default_value_t = 12)]
        particles: usize,
        /// Coordinates I,J (needed above 2-D).
        #[arg(long, value_name = "I,J")]
        coords: Option<String>,
        #[command(flatten)]
        out: Out,
    },
    /// Training loss per noise level over time (from a run's metrics.jsonl).
    Training {
        /// Run directory of `langevin train`.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        #[command(flatten)]
        out: Out,
    },
    /// A grid of images from flattened samples (e.g. MNIST rows of 784).
    Images {
        /// Samples (.npy or .csv), one flattened image per row.
        #[arg(long, value_name = "FILE")]
        samples: PathBuf,
        /// Image shape HxW (grey) or HxWx3 (colour, channels last) or 3xHxW (channels first).
        #[arg(long, value_name = "SHAPE")]
        shape: String,
        /// How many images (the first N rows).
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Value range mapped to black..white: LO,HI (default: the samples' min and max).
        #[arg(long, value_name = "LO,HI", allow_hyphen_values = true)]
        range: Option<String>,
        /// Output image (.png).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Parse `I` or `I,J` against dimension `d`.
fn parse_coords(spec: Option<&str>, d: usize, want_two: bool) -> Result<Vec<usize>> {
    let how = "choose them with --coords I,J (e.g. --coords 0,1)";
    let v: Vec<usize> = match spec {
        None => match (d, want_two) {
            (1, false) => vec![0],
            (2, _) => vec![0, 1],
            (1, true) => bail!("trajectories need 2 coordinates but the samples are 1-D"),
            _ => bail!("the samples are {d}-dimensional: a plot shows one or two coordinates; {how}"),
        },
        Some(s) => s
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("--coords '{s}': '{p}' is not a coordinate index; {how}"))
            })
            .collect::<Result<_>>()?,
    };
    if v.is_empty() || v.len() > 2 || (want_two && v.len() != 2) {
        bail!("--coords takes {} coordinate index(es); {how}", if want_two { "two" } else { "one or two" });
    }
    if let Some(&c) = v.iter().find(|&&c| c >= d) {
        bail!("--coords: coordinate {c} does not exist in {d}-dimensional samples (indices start at 0)");
    }
    if v.len() == 2 && v[0] == v[1] {
        bail!("--coords: the two coordinates must differ");
    }
    Ok(v)
}

fn load_target_checked(spec: &str, d: usize, what: &str) -> Result<std::sync::Arc<dyn Target>> {
    let (t, _) = load_target(spec)?;
    if t.dim() != d {
        bail!(
            "the {what} are {d}-dimensional but target '{}' is {}-dimensional; give samples of that target",
            t.name(),
            t.dim()
        );
    }
    Ok(t)
}

/// log p on a 2-D grid (NaN where it is not finite), for targets of dimension 2.
fn log_density_heat(t: &dyn Target, xr: (f64, f64), yr: (f64, f64), n: usize) -> Result<Heat> {
    let g = plot::grid(xr, yr, n, n).mapv(|v| v as f32);
    let (_, lp) = langevin::target::eval_rows(t, g.view())?;
    Ok(Heat {
        nx: n,
        ny: n,
        values: lp.iter().map(|&v| if v.is_finite() { v as f64 } else { f64::NAN }).collect(),
        bands: 12,
        clip_low: true,
        mask: None,
        label: "log p".into(),
    })
}

pub fn run(a: &PlotArgs, _quiet: bool) -> Result<()> {
    use crate::report::spec_file;
    let (inputs, out): (Vec<(&'static str, Option<&Path>)>, &Path) = match &a.kind {
        PlotKind::Density { samples, target, out, .. } => {
            (vec![("samples", Some(samples)), ("target", spec_file(target.as_deref()))], &out.out)
        }
        PlotKind::Trajectories { samples, target, out, .. } => {
            let mut v: Vec<(&'static str, Option<&Path>)> =
                samples.iter().map(|p| ("samples", Some(p.as_path()))).collect();
            v.push(("target", spec_file(target.as_deref())));
            (v, &out.out)
        }
        PlotKind::Field { field, out, .. } => {
            (vec![("target", spec_file(field.target.as_deref())), ("model", field.model.as_deref())], &out.out)
        }
        PlotKind::Training { run, out } => (vec![("run", Some(run))], &out.out),
        PlotKind::Images { samples, out, .. } => (vec![("samples", Some(samples))], out),
    };
    crate::report::guard(&inputs, &[("out", Some(out))])?;
    match &a.kind {
        PlotKind::Density { samples, target, coords, bins, out } => {
            if !(1..=10_000).contains(bins) {
                bail!("--bins {bins}: a histogram needs between 1 and 10000 bins");
            }
            plot::check_plot_path(&out.out, false)?;
            let size = out.size((900, 700))?;
            let x = langevin::io::read_matrix(samples)?;
            let d = x.ncols();
            let t = match target {
                Some(s) => Some(load_target_checked(s, d, "samples")?),
                None => None,
            };
            let c = parse_coords(coords.as_deref(), d, false)?;
            let panel = if c.len() == 1 {
                histogram(x.view(), c[0], *bins, t.as_deref())?
            } else {
                scatter(x.view(), &c, t.as_deref())?
            };
            let title = match &t {
                Some(t) => format!("{} samples of {}", x.nrows(), t.name()),
                None => format!("{} samples", x.nrows()),
            };
            plot::render(&out.out, &title, &[panel], size)
        }
        PlotKind::Field { field: fa, region, out } => {
            plot::check_plot_path(&out.out, false)?;
            let size = out.size((1300, 620))?;
            let src = field::load(fa)?;
            let t = src.target.as_ref();
            if t.dim() != 2 {
                bail!(
                    "plot field draws 2-D fields; this one is {}-dimensional (use `langevin analyze` for any dimension)",
                    t.dim()
                );
            }
            let f = Field::new(t);
            let region = match region {
                Some(r) => Region::parse(r, 2)?,
                None => {
                    let s = analyze::samples_for(&src, None, 1000, 0)?;
                    analyze::default_region(t, &s)
                }
            };
            let points = analysis::stagnation_points(&f, &region, 400, 0, None)?;
            let panels = analyze::field_panels(&f, &region, &points, None)?;
            let sigma =
                if src.sigma > 0.0 && src.model.is_none() { format!(" at σ = {}", src.sigma) } else { String::new() };
            plot::render(&out.out, &format!("{}{sigma}", t.name()), &panels, size)
        }
        PlotKind::Trajectories { samples, target, particles, coords, out } => {
            plot::check_plot_path(&out.out, false)?;
            if samples.len() > 6 {
                bail!("--samples: at most 6 trajectory files side by side (got {})", samples.len());
            }
            let size = out.size((900 * samples.len().min(3) as u32 - 140 * (samples.len().min(3) as u32 - 1), 760))?;
            if *particles == 0 {
                bail!("--particles must be at least 1");
            }
            let trajs = samples
                .iter()
                .map(|p| {
                    let t = langevin::io::read_trajectory(p)?;
                    let (frames, n, _) = t.dim();
                    if frames == 0 || n == 0 {
                        bail!("{}: the trajectory is empty", p.display());
                    }
                    Ok(t)
                })
                .collect::<Result<Vec<_>>>()?;
            let d = trajs[0].dim().2;
            if let Some((p, t)) = samples.iter().zip(&trajs).find(|(_, t)| t.dim().2 != d) {
                bail!("{}: {}-dimensional, but {} is {d}-dimensional", p.display(), t.dim().2, samples[0].display());
            }
            let c = parse_coords(coords.as_deref(), d, true)?;
            let t = match target {
                Some(s) => Some(load_target_checked(s, d, "trajectories")?),
                None => None,
            };
            // One view for all panels.
            let picks: Vec<Vec<usize>> = trajs
                .iter()
                .map(|tr| {
                    let n = tr.dim().1;
                    let k = (*particles).min(n);
                    (0..k).map(|i| i * n / k).collect()
                })
                .collect();
            let span = |c: usize| {
                plot::range_of(trajs.iter().zip(&picks).flat_map(|(tr, pick)| {
                    let frames = tr.dim().0;
                    pick.iter().flat_map(move |&p| (0..frames).map(move |f| tr[[f, p, c]] as f64))
                }))
            };
            let (xr, yr) = (span(c[0]), span(c[1]));
            let heat = match &t {
                Some(t) if d == 2 => Some(log_density_heat(t.as_ref(), xr, yr, 120)?),
                _ => None,
            };
            let mut panels = Vec::new();
            for ((path, traj), pick) in samples.iter().zip(&trajs).zip(&picks) {
                let (frames, n, _) = traj.dim();
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let title = if samples.len() > 1 {
                    format!("{name}: {} of {n} particles, {frames} frames", pick.len())
                } else {
                    format!("{} of {n} particles, {frames} frames", pick.len())
                };
                let mut panel = Panel::new(title, xr, yr);
                panel.x_label = format!("x{}", c[0]);
                panel.y_label = format!("x{}", c[1]);
                panel.heat = heat.clone();
                let lines: Vec<Vec<(f64, f64)>> = pick
                    .iter()
                    .map(|&p| (0..frames).map(|f| (traj[[f, p, c[0]]] as f64, traj[[f, p, c[1]]] as f64)).collect())
                    .collect();
                let starts = lines.iter().map(|l| l[0]).collect();
                let ends = lines.iter().map(|l| l[l.len() - 1]).collect();
                panel.layers.push(Layer::Lines { lines, color: plot::BLUE, alpha: 0.6, label: Some("path".into()) });
                panel.layers.push(Layer::Points {
                    pts: starts,
                    color: plot::GRAY,
                    alpha: 0.9,
                    size: 3,
                    label: Some("start".into()),
                });
                panel.layers.push(Layer::Points {
                    pts: ends,
                    color: plot::RED,
                    alpha: 0.9,
                    size: 3,
                    label: Some("end".into()),
                });
                panels.push(panel);
            }
            let title = t.map_or_else(|| "trajectories".to_string(), |t| format!("trajectories on {}", t.name()));
            plot::render(&out.out, &title, &panels, size)
        }
        PlotKind::Training { run, out } => {
            plot::check_plot_path(&out.out, false)?;
            let size = out.size((1200, 560))?;
            training(run, &out.out, size)
        }
        PlotKind::Images { samples, shape, n, range, out } => images(samples, shape, *n, range.as_deref(), out),
    }
}

fn histogram(x: ArrayView2<f32>, c: usize, bins: usize, t: Option<&dyn Target>) -> Result<Panel> {
    let (lo, hi) = plot::range_of(x.column(c).iter().map(|&v| v as f64).filter(|v| v.is_finite()));
    let h = langevin::metrics::DensityHistogram::of(x, c, bins, (lo, hi), t)?;
    let top = h
        .heights
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .max(h.exact.as_ref().map_or(0.0, |c| c.iter().map(|p| p.1).fold(0.0, f64::max)));
    let mut panel = Panel::new(format!("histogram of x{c}"), (lo, hi), (0.0, 1.1 * top.max(1e-12)));
    panel.x_label = format!("x{c}");
    panel.y_label = "density".into();
    panel.layers.push(Layer::Bars {
        edges: h.edges,
        heights: h.heights,
        color: plot::BLUE,
        label: Some("samples".into()),
    });
    if let Some(pts) = h.exact {
        panel.layers.push(Layer::Curve { pts, color: plot::RED, label: Some("exact density".into()) });
    }
    Ok(panel)
}

fn scatter(x: ArrayView2<f32>, c: &[usize], t: Option<&dyn Target>) -> Result<Panel> {
    let xr = plot::range_of(x.column(c[0]).iter().map(|&v| v as f64));
    let yr = plot::range_of(x.column(c[1]).iter().map(|&v| v as f64));
    let mut panel =
        Panel::new(if t.is_some() && x.ncols() == 2 { "samples over bands of log p" } else { "samples" }, xr, yr);
    panel.x_label = format!("x{}", c[0]);
    panel.y_label = format!("x{}", c[1]);
    if let Some(t) = t
        && x.ncols() == 2
    {
        panel.heat = Some(log_density_heat(t, xr, yr, 150)?);
    }
    let n = x.nrows();
    let alpha = (2000.0 / n as f64).clamp(0.08, 0.8);
    let stride = n.div_ceil(50_000).max(1);
    let pts = (0..n).step_by(stride).map(|i| (x[[i, c[0]]] as f64, x[[i, c[1]]] as f64)).collect();
    panel.layers.push(Layer::Points { pts, color: plot::BLUE, alpha, size: 2, label: None });
    Ok(panel)
}

fn training(run: &Path, out: &Path, size: (u32, u32)) -> Result<()> {
    use langevin_learn::fit::MetricsRecord;
    let p = run.join("metrics.jsonl");
    let records = MetricsRecord::read_log(&p)
        .with_context(|| format!("is {} a run directory of `langevin train`?", run.display()))?;
    let mut steps = Vec::new();
    let mut loss = Vec::new();
    let mut levels: Vec<Vec<f64>> = Vec::new();
    let mut heldout = Vec::new();
    for r in records {
        match r {
            MetricsRecord::Heldout { step, heldout_loss, .. } => heldout.push((step as f64, heldout_loss)),
            MetricsRecord::Train { step, loss: l, level_loss, .. } => {
                steps.push(step as f64);
                loss.push(l);
                levels.push(level_loss.iter().map(|x| x.unwrap_or(f64::NAN)).collect());
            }
        }
    }
    if steps.is_empty() {
        bail!("{}: no training records (lines with \"step\", \"loss\", \"level_loss\")", p.display());
    }
    let cfg = langevin_learn::checkpoint::RunDir::new(run).load_config().ok();
    let l = levels[0].len();
    let xr = (steps[0].min(0.0), steps[steps.len() - 1] * 1.02);
    let log = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
    let all = loss.iter().chain(levels.iter().flatten()).chain(heldout.iter().map(|h| &h.1)).map(|&v| log(v));
    let yr = plot::range_of(all);
    let mut left = Panel::new("loss (σ²-weighted DSM)", xr, yr);
    left.x_label = "step".into();
    left.y_label = "log₁₀ loss".into();
    left.layers.push(Layer::Curve {
        pts: steps.iter().zip(&loss).map(|(&s, &v)| (s, log(v))).collect(),
        color: plot::BLUE,
        label: Some("training".into()),
    });
    if !heldout.is_empty() {
        left.layers.push(Layer::Curve {
            pts: heldout.iter().map(|&(s, v)| (s, log(v))).collect(),
            color: plot::RED,
            label: Some("held-out".into()),
        });
    }
    let mut right = Panel::new("loss per noise level", xr, yr);
    right.x_label = "step".into();
    right.y_label = "log₁₀ loss".into();
    let shown: Vec<usize> = if l <= 6 { (0..l).collect() } else { (0..6).map(|i| i * (l - 1) / 5).collect() };
    for (k, &lev) in shown.iter().enumerate() {
        let sigma = cfg.as_ref().and_then(|c| c.ladder.sigmas.get(lev).cloned());
        right.layers.push(Layer::Curve {
            pts: steps
                .iter()
                .zip(&levels)
                .map(|(&s, v)| (s, log(v.get(lev).cloned().unwrap_or(f64::NAN))))
                .filter(|p| p.1.is_finite())
                .collect(),
            color: plot::PALETTE[k % plot::PALETTE.len()],
            label: Some(match sigma {
                Some(s) => format!("level {} (σ = {s:.3})", lev + 1),
                None => format!("level {}", lev + 1),
            }),
        });
    }
    plot::render(out, &format!("training of {}", run.display()), &[left, right], size)
}

fn images(samples: &Path, shape: &str, n: usize, range: Option<&str>, out: &Path) -> Result<()> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext != "png" {
        bail!("{}: image grids are written as .png", out.display());
    }
    crate::report::check_output(out)?;
    let dims: Vec<usize> =
        shape.split('x').map(|p| p.trim().parse::<usize>().ok().filter(|&v| v > 0)).collect::<Option<_>>().ok_or_else(
            || anyhow::anyhow!("--shape '{shape}': write HxW, HxWx3 or 3xHxW with positive integers (e.g. 28x28)"),
        )?;
    let (h, w, ch, first) = match dims.as_slice() {
        [h, w] => (*h, *w, 1, false),
        [h, w, 3] => (*h, *w, 3, false),
        [3, h, w] => (*h, *w, 3, true),
        _ => bail!("--shape '{shape}': write HxW (grey), HxWx3 or 3xHxW (colour)"),
    };
    let x = langevin::io::read_matrix(samples)?;
    if x.ncols() != h * w * ch {
        bail!("--shape {shape} has {} values per image but the samples have {} columns", h * w * ch, x.ncols());
    }
    image_grid(&x, (h, w, ch, first), n, range, out)
}

/// A PNG grid of the first `n` rows of `x` as images of (height, width, channels,
/// channels-first), values from `range` (LO,HI; default the rows' own range) to 0..255.
pub fn image_grid(
    x: &ndarray::Array2<f32>,
    layout: (usize, usize, usize, bool),
    n: usize,
    range: Option<&str>,
    out: &Path,
) -> Result<()> {
    let img = grid_picture(x, layout, n, range)?;
    let mut buf = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png).context("encoding PNG")?;
    langevin::io::write_atomic(out, |o| o.write_all(&buf))?;
    Ok(())
}

/// The grid of [`image_grid`] as a picture (scaled up to about 512 pixels).
pub fn grid_picture(
    x: &ndarray::Array2<f32>,
    (h, w, ch, first): (usize, usize, usize, bool),
    n: usize,
    range: Option<&str>,
) -> Result<image::RgbImage> {
    if n == 0 || x.nrows() == 0 {
        bail!("no images to draw (--n {n}, {} rows)", x.nrows());
    }
    let k = n.min(x.nrows());
    let (lo, hi) = match range {
        Some(r) => {
            let v: Vec<f64> = r
                .split(',')
                .map(|p| p.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("--range '{r}': write LO,HI"))?;
            if v.len() != 2 || v[0].partial_cmp(&v[1]) != Some(std::cmp::Ordering::Less) {
                bail!("--range '{r}': write LO,HI with LO < HI");
            }
            (v[0], v[1])
        }
        None => {
            let sl = x.slice(ndarray::s![..k, ..]);
            let lo = sl.iter().cloned().filter(|v| v.is_finite()).fold(f32::INFINITY, f32::min) as f64;
            let hi = sl.iter().cloned().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max) as f64;
            if !(lo.is_finite() && hi.is_finite()) {
                (0.0, 1.0)
            } else if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5, lo + 0.5)
            }
        }
    };
    let cols = (k as f64).sqrt().ceil() as usize;
    let rows = k.div_ceil(cols);
    let pad = 2;
    let (gw, gh) = (cols * (w + pad) + pad, rows * (h + pad) + pad);
    let scale = (512 / gw.max(gh)).clamp(1, 8) as u32;
    let mut img = image::RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([255, 255, 255]));
    for i in 0..k {
        let (r0, c0) = (pad + (i / cols) * (h + pad), pad + (i % cols) * (w + pad));
        for y in 0..h {
            for xx in 0..w {
                let mut px = [0u8; 3];
                for (c, out) in px.iter_mut().enumerate() {
                    let cc = if ch == 1 { 0 } else { c };
                    let idx = if first { cc * h * w + y * w + xx } else { (y * w + xx) * ch + cc };
                    let v = x[[i, idx]] as f64;
                    *out = if v.is_finite() {
                        (255.0 * ((v - lo) / (hi - lo)).clamp(0.0, 1.0)).round() as u8
                    } else {
                        255
                    };
                }
                img.put_pixel((c0 + xx) as u32, (r0 + y) as u32, image::Rgb(px));
            }
        }
    }
    Ok(image::imageops::resize(&img, gw as u32 * scale, gh as u32 * scale, image::imageops::FilterType::Nearest))
}
