//! `langevin generate`: new samples from a trained score model, through the core samplers.

use crate::diffusion_flags::DiffusionArgs;
use crate::progress::Progress;
use crate::report;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use langevin::diffusion::Method;
use langevin::sampler::Init;
use langevin_learn::checkpoint::TrainedModel;
use langevin_learn::generate::{self as lib, GenerateOptions};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenSampler {
    /// Annealed Langevin over the training ladder σ₁ > … > σ_L, with the final denoising step.
    Annealed,
    /// Plain Langevin with the score at the smallest level σ_L.
    Ula,
    /// Diffusion: the reverse-time SDE with Euler–Maruyama (--solver heun: stochastic Heun).
    ReverseSde,
    /// Diffusion: the reverse-diffusion predictor.
    ReverseDiffusion,
    /// Diffusion: predictor–corrector (--snr).
    Pc,
    /// Diffusion: the Langevin corrector alone.
    Corrector,
    /// Diffusion: the probability-flow ODE (adaptive dopri5 by default).
    Ode,
    /// Diffusion: DDPM's ancestral sampler.
    Ddpm,
    /// Diffusion: DDIM with --eta.
    Ddim,
    /// Diffusion: EDM's Heun sampler.
    Edm,
    /// Diffusion: DPM-Solver++(2M).
    #[value(name = "dpmpp-2m")]
    DpmPp2m,
}

impl GenSampler {
    fn name(self) -> &'static str {
        match self {
            GenSampler::Annealed => "annealed",
            GenSampler::Ula => "ula",
            GenSampler::ReverseSde => "reverse-sde",
            GenSampler::ReverseDiffusion => "reverse-diffusion",
            GenSampler::Pc => "pc",
            GenSampler::Corrector => "corrector",
            GenSampler::Ode => "ode",
            GenSampler::Ddpm => "ddpm",
            GenSampler::Ddim => "ddim",
            GenSampler::Edm => "edm",
            GenSampler::DpmPp2m => "dpmpp-2m",
        }
    }
}

/// How ε is chosen for annealed Langevin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EpsRule {
    /// (1 − ε/σ_L²)^T = 1e-9: each level forgets the previous one (the default; measured better).
    Contraction,
    /// NCSNv2's technique 4: the variance of a point mass comes out right after T steps.
    Ncsnv2,
}

impl From<GenSampler> for lib::GenSampler {
    fn from(s: GenSampler) -> Self {
        match s {
            GenSampler::Annealed => lib::GenSampler::Annealed,
            GenSampler::Ula => lib::GenSampler::Ula,
            s => lib::GenSampler::Diffusion(Method::from_name(s.name()).expect("a diffusion sampler")),
        }
    }
}

impl From<EpsRule> for lib::EpsRule {
    fn from(r: EpsRule) -> Self {
        match r {
            EpsRule::Contraction => lib::EpsRule::Contraction,
            EpsRule::Ncsnv2 => lib::EpsRule::Ncsnv2,
        }
    }
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
    /// Sampler (default: annealed for NCSN models, dpmpp-2m for the continuous-time objectives).
    #[arg(long, value_enum)]
    pub sampler: Option<GenSampler>,
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
    /// Plain Langevin: number of steps (default L × T, the annealed budget); diffusion
    /// samplers: their steps (default per sampler, as in `sample`).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Diffusion samplers: the smallest noise level (default: the training ladder's σ_L).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_min: Option<f64>,
    /// Diffusion samplers: the largest noise level (default: the training ladder's σ₁).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_max: Option<f64>,
    #[command(flatten)]
    pub diffusion: DiffusionArgs,
    /// Plain Langevin: step size τ (default 1e-3 in standardized units).
    #[arg(long, value_name = "TAU")]
    pub step_size: Option<f64>,
    /// Initial positions in the data's units (default: annealed N(mean, (σ₁·std)²), plain uniform over ±3 std).
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,
    /// Check that the model is for this dimension.
    #[arg(long, value_name = "D")]
    pub dim: Option<usize>,
    /// Class-conditional models: the class to generate, as the training labels named it
    /// (default: the unconditional model).
    #[arg(long, value_name = "CLASS")]
    pub class: Option<String>,
    /// Classifier-free guidance weight w ≥ 0 with --class: (1 + w)·s(x, σ, c) − w·s(x, σ, ∅)
    /// (default 0: the conditional model alone; each score evaluation then runs the network twice).
    #[arg(long, value_name = "W")]
    pub guidance: Option<f64>,
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
    /// Image models: a PNG grid of the first 64 samples.
    #[arg(long, value_name = "FILE.png")]
    pub grid: Option<PathBuf>,
    /// Image models: an animated GIF of the reverse process, noise to images, for the first 16
    /// samples (about 50 frames, the last held).
    #[arg(long, value_name = "FILE.gif")]
    pub gif: Option<PathBuf>,
    /// Image models: one PNG per sample in this folder (sample-00000.png, ...).
    #[arg(long, value_name = "DIR")]
    pub png_dir: Option<PathBuf>,
}

pub fn run(a: &GenerateArgs, quiet: bool) -> Result<()> {
    // The default sampler follows the model's objective (the run's config is small to read).
    let sampler = match a.sampler {
        Some(s) => s,
        None => match langevin_learn::checkpoint::RunDir::new(&a.model).load_config() {
            Ok(c) => match lib::GenSampler::default_for(&c) {
                lib::GenSampler::Annealed => GenSampler::Annealed,
                _ => GenSampler::DpmPp2m,
            },
            _ => GenSampler::Annealed,
        },
    };
    report::guard(
        &[("model", Some(&a.model)), ("init", report::spec_file(a.init.as_deref()))],
        &[
            ("out", a.out.as_deref()),
            ("report", a.report.as_deref()),
            ("trajectory", a.trajectory.as_deref()),
            ("grid", a.grid.as_deref()),
            ("gif", a.gif.as_deref()),
        ],
    )?;
    let ext = |p: &std::path::Path| p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    let picture_flag = [("--grid", &a.grid), ("--gif", &a.gif), ("--png-dir", &a.png_dir)]
        .into_iter()
        .find_map(|(f, p)| p.as_ref().map(|_| f));
    let image = match picture_flag {
        Some(flag) => {
            if let Some(g) = &a.grid
                && ext(g).as_deref() != Some("png")
            {
                bail!("--grid {}: image grids are written as .png", g.display());
            }
            if let Some(g) = &a.gif
                && ext(g).as_deref() != Some("gif")
            {
                bail!("--gif {}: the reverse process is written as a .gif", g.display());
            }
            let c = langevin_learn::checkpoint::RunDir::new(&a.model).load_config()?;
            let shape = c.data.image.ok_or_else(|| {
                anyhow::anyhow!(
                    "{flag} draws image models; {} was trained on {}, which are not images (use `plot images --shape` for rows you know to be images)",
                    a.model.display(),
                    c.data.source
                )
            })?;
            let (lo, hi) = langevin_learn::images::pixel_range(&c.data.source);
            Some((shape, format!("{lo},{hi}")))
        }
        None => None,
    };
    if a.gif.is_some() && a.trajectory.is_some() {
        bail!("--gif records the reverse process itself; give --gif or --trajectory, not both");
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
    let diffusion = !matches!(sampler, GenSampler::Annealed | GenSampler::Ula);
    if !diffusion {
        a.diffusion.refuse(sampler.name())?;
        for (f, set) in [("--sigma-min", a.sigma_min.is_some()), ("--sigma-max", a.sigma_max.is_some())] {
            if set {
                bail!("{f} applies to the diffusion samplers only; annealed and ula use the training ladder");
            }
        }
    }
    match sampler {
        _ if diffusion => {
            for (f, set) in [
                ("--steps-per-level", a.steps_per_level.is_some()),
                ("--eps", a.eps.is_some()),
                ("--eps-rule", a.eps_rule != EpsRule::Contraction),
                ("--step-size", a.step_size.is_some()),
            ] {
                if set {
                    bail!("{f} does not apply to --sampler {}; its length is --steps", sampler.name());
                }
            }
        }
        GenSampler::Annealed => {
            if let Some((f, _)) = ula_only.iter().find(|(_, s)| *s) {
                bail!("{f} applies to --sampler ula; annealed runs --levels × --steps-per-level steps");
            }
        }
        _ => {
            if let Some((f, _)) = annealed_only.iter().find(|(_, s)| *s) {
                bail!("{f} applies to --sampler annealed only");
            }
        }
    }
    let device = crate::train::device(&a.device)?;
    let model = Arc::new(TrainedModel::load(&a.model, &device)?);
    if let Some(d) = a.dim
        && d != model.config.dim
    {
        bail!(
            "--dim {d}, but the model in {} was trained on {}-dimensional data; it generates only that dimension",
            a.model.display(),
            model.config.dim
        );
    }
    if a.guidance.is_some() && a.class.is_none() {
        bail!("--guidance needs --class: guidance steers generation towards a class");
    }
    let guidance = a.guidance.unwrap_or(0.0);
    // The class and guidance are checked before anything runs.
    lib::conditioned(&model, &GenerateOptions { class: a.class.clone(), guidance, ..Default::default() })?;
    let init = a.init.as_deref().map(Init::parse).transpose()?;
    let mut record_every = a.trajectory.as_ref().map(|_| a.record_every.unwrap_or(1.max(model.config.ladder.levels())));
    let dopts = a.diffusion.options(a.sigma_min, a.sigma_max, a.steps, a.no_denoise)?;
    let steps = match sampler {
        GenSampler::Annealed => model.config.ladder.levels() * a.steps_per_level.unwrap_or(100),
        GenSampler::Ula => a.steps.unwrap_or(model.config.ladder.levels() * a.steps_per_level.unwrap_or(100)),
        s => lib::resolve_diffusion(&model.config, Method::from_name(s.name())?, &dopts)?.0.planned_steps(),
    };
    if a.gif.is_some() {
        record_every = Some((steps / 50).max(1));
    }
    let progress = Progress::start((steps * a.n) as u64, "particle-steps", quiet);
    let opts = GenerateOptions {
        n: a.n,
        sampler: sampler.into(),
        steps_per_level: a.steps_per_level,
        eps: a.eps,
        eps_rule: a.eps_rule.into(),
        denoise: !a.no_denoise,
        steps: if diffusion { None } else { a.steps },
        step_size: a.step_size,
        init,
        seed: a.seed,
        record_every,
        diffusion: if diffusion { dopts } else { Default::default() },
        class: a.class.clone(),
        guidance,
        progress: Some(progress.counter.clone()),
        cancel: None,
    };
    let g = lib::generate(model.clone(), &opts)?;
    progress.finish();
    let names: Vec<String> = (0..model.config.dim).map(|i| format!("x{i}")).collect();
    if let Some(p) = &a.out {
        langevin::io::write_matrix(p, g.samples.view(), &names)?;
    }
    if let (Some(p), Some(tr)) = (&a.trajectory, &g.trajectory) {
        langevin::io::write_trajectory(p, tr.view())?;
    }
    if let Some((s, range)) = &image {
        let layout = (s.height, s.width, s.channels, true);
        if let Some(p) = &a.grid {
            crate::plot_cmd::image_grid(&g.samples, layout, 64, Some(range), p)?;
        }
        if let (Some(p), Some(tr)) = (&a.gif, &g.trajectory) {
            reverse_gif(tr, &g.samples, layout, range, p)?;
        }
        if let Some(dir) = &a.png_dir {
            one_png_per_sample(&g.samples, layout, range, dir)?;
        }
    }
    let Value::Object(mut rep) = serde_json::to_value(&g.report)? else { unreachable!("a struct") };
    rep.insert("command".into(), json!("generate"));
    if model.config.data.source == "shapes"
        && let Some(s) = model.config.data.image
    {
        // One clean shape of one colour per image (langevin_learn::images::shapes_validity):
        // 0.9975-1 for the training images, 0.075 for blends of two.
        rep.insert("shapes_validity".into(), json!(langevin_learn::images::shapes_validity(&g.samples, s.width)));
    }
    let (mean, cov) = langevin::diagnostics::mean_cov(g.samples.view());
    rep.insert("mean".into(), json!(mean));
    // An image's covariance has (pixels × channels)² entries: left out above 64 dimensions.
    if model.config.dim <= 64 {
        rep.insert("covariance".into(), report::matrix(&cov));
    }
    if let Some(p) = &a.out {
        rep.insert("out".into(), report::path(p));
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
        if a.report.as_ref().is_some_and(|p| p.as_os_str() == "-") { errln!("{line}") } else { outln!("{line}")? }
    }
    Ok(())
}

/// The reverse process as a GIF: each recorded frame of the first 16 samples as a grid, the
/// final samples held for a second.
fn reverse_gif(
    trajectory: &ndarray::Array3<f32>,
    samples: &ndarray::Array2<f32>,
    layout: (usize, usize, usize, bool),
    range: &str,
    out: &std::path::Path,
) -> Result<()> {
    use anyhow::Context;
    let n = samples.nrows().min(16);
    let mut frames: Vec<image::RgbImage> = Vec::new();
    for f in 0..trajectory.dim().0 {
        let x = trajectory.slice(ndarray::s![f, ..n, ..]).to_owned();
        frames.push(crate::plot_cmd::grid_picture(&x, layout, n, Some(range))?);
    }
    frames.push(crate::plot_cmd::grid_picture(
        &samples.slice(ndarray::s![..n, ..]).to_owned(),
        layout,
        n,
        Some(range),
    )?);
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut gif, 10);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite).context("encoding the GIF")?;
        let last = frames.len() - 1;
        for (i, f) in frames.into_iter().enumerate() {
            let ms = if i == last { 1500 } else { 80 };
            let rgba = image::DynamicImage::ImageRgb8(f).to_rgba8();
            let frame = image::Frame::from_parts(rgba, 0, 0, image::Delay::from_numer_denom_ms(ms, 1));
            enc.encode_frame(frame).context("encoding the GIF")?;
        }
    }
    langevin::io::write_atomic(out, |o| std::io::Write::write_all(o, &gif))?;
    Ok(())
}

/// One PNG per sample (at the image's own size) in `dir`, created if needed.
fn one_png_per_sample(
    samples: &ndarray::Array2<f32>,
    (h, w, ch, _): (usize, usize, usize, bool),
    range: &str,
    dir: &std::path::Path,
) -> Result<()> {
    use anyhow::Context;
    let (lo, hi) = range
        .split_once(',')
        .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
        .context("pixel range")?;
    std::fs::create_dir_all(dir).with_context(|| format!("--png-dir {}: cannot create the folder", dir.display()))?;
    for (i, row) in samples.rows().into_iter().enumerate() {
        let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let px = |c: usize| {
                let c = if ch == 1 { 0 } else { c };
                let v = row[c * h * w + y as usize * w + x as usize] as f64;
                (255.0 * ((v - lo) / (hi - lo)).clamp(0.0, 1.0)).round() as u8
            };
            image::Rgb([px(0), px(1), px(2)])
        });
        let mut buf = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png).context("encoding PNG")?;
        langevin::io::write_atomic(&dir.join(format!("sample-{i:05}.png")), |o| std::io::Write::write_all(o, &buf))?;
    }
    Ok(())
}
