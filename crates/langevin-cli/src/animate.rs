//! `langevin animate`: particles moving under Langevin dynamics, as a GIF (seed 001's pictures).
//! With `--no-noise` two panels run side by side from the same start: gradient ascent on log p
//! (every particle collapses onto its nearest mode) and Langevin with noise (which samples).

use crate::plot::{self, Heat, Layer, Panel};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use langevin::diffusion::{DiffusionOptions, Method};
use langevin::sampler::{self, AnnealConfig, AnnealOptions, Init, Mala, RunConfig, Scheme, Ula, Underdamped};
use langevin::target::{Target, load_target};
use ndarray::Array3;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnimSampler {
    Ula,
    Mala,
    Annealed,
    Baoab,
    /// Diffusion: the reverse-time SDE (Euler–Maruyama).
    ReverseSde,
    /// Diffusion: predictor–corrector.
    Pc,
    /// Diffusion: the probability-flow ODE (Heun on --steps, default 100).
    Ode,
    /// Diffusion: DDPM.
    Ddpm,
    /// Diffusion: DDIM (η = 0).
    Ddim,
    /// Diffusion: EDM Heun.
    Edm,
    /// Diffusion: DPM-Solver++(2M).
    #[value(name = "dpmpp-2m")]
    DpmPp2m,
}

impl AnimSampler {
    /// The diffusion sampler, for those that are one.
    fn diffusion(self) -> Option<Method> {
        let name = match self {
            AnimSampler::ReverseSde => "reverse-sde",
            AnimSampler::Pc => "pc",
            AnimSampler::Ode => "ode",
            AnimSampler::Ddpm => "ddpm",
            AnimSampler::Ddim => "ddim",
            AnimSampler::Edm => "edm",
            AnimSampler::DpmPp2m => "dpmpp-2m",
            _ => return None,
        };
        Method::from_name(name).ok()
    }
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct AnimateArgs {
    /// A 2-D target: built-in name, name:key=value,..., or a TOML file.
    #[arg(long, value_name = "SPEC")]
    pub target: String,
    #[arg(long, value_enum, default_value_t = AnimSampler::Ula)]
    pub sampler: AnimSampler,
    /// ULA: show gradient ascent without noise beside Langevin with noise, from the same start.
    #[arg(long)]
    pub no_noise: bool,
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub particles: usize,
    /// Steps (ULA, MALA, BAOAB; default 300; diffusion samplers: their default, ode 100).
    /// Annealed runs --levels × --steps-per-level.
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Step size τ (ULA, MALA; default the target's) or time step Δt (BAOAB).
    #[arg(long, value_name = "TAU")]
    pub step_size: Option<f64>,
    /// Initial positions (default: the target's start region; annealed N(mean, σ₁²)).
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,
    /// Annealed: number of noise levels.
    #[arg(long, value_name = "L")]
    pub levels: Option<usize>,
    /// Annealed: steps per level.
    #[arg(long, value_name = "T")]
    pub steps_per_level: Option<usize>,
    /// Frames in the GIF.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub frames: usize,
    /// Frames per second.
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub fps: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output .gif.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, value_name = "PX")]
    pub width: Option<u32>,
    #[arg(long, value_name = "PX")]
    pub height: Option<u32>,
}

pub fn run(a: &AnimateArgs, quiet: bool) -> Result<()> {
    crate::report::guard(
        &[("target", crate::report::spec_file(Some(&a.target))), ("init", crate::report::spec_file(a.init.as_deref()))],
        &[("out", Some(&a.out))],
    )?;
    plot::check_plot_path(&a.out, true)?;
    if a.no_noise && a.sampler != AnimSampler::Ula {
        bail!("--no-noise compares gradient ascent with ULA; use it with --sampler ula");
    }
    if !(2..=500).contains(&a.frames) {
        bail!("--frames = {} must be between 2 and 500", a.frames);
    }
    if !(1..=50).contains(&a.fps) {
        bail!("--fps = {} must be between 1 and 50", a.fps);
    }
    if a.particles == 0 || a.particles > 200_000 {
        bail!("--particles = {} must be between 1 and 200000 (every particle is drawn in every frame)", a.particles);
    }
    if a.sampler == AnimSampler::Annealed && a.steps.is_some() {
        bail!("--steps does not apply to --sampler annealed; its length is --levels × --steps-per-level");
    }
    if a.sampler != AnimSampler::Annealed && (a.levels.is_some() || a.steps_per_level.is_some()) {
        bail!("--levels and --steps-per-level apply to --sampler annealed only");
    }
    if let Some(s) = a.step_size
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--step-size = {s} must be positive and finite");
    }
    let (target, warnings) = load_target(&a.target)?;
    warnings.iter().for_each(|w| errln!("warning: {w}"));
    let t: &dyn Target = target.as_ref();
    if t.dim() != 2 {
        bail!("animate draws 2-D targets; '{}' is {}-dimensional", t.name(), t.dim());
    }
    let diffusion = a.sampler.diffusion();
    if diffusion.is_some() && a.step_size.is_some() {
        bail!("--step-size does not apply to the diffusion samplers; their steps follow the schedule (--steps)");
    }
    let default_size = if a.no_noise { (1200, 620) } else { (720, 680) };
    let size = (a.width.unwrap_or(default_size.0), a.height.unwrap_or(default_size.1));
    if !(200..=3000).contains(&size.0) || !(150..=3000).contains(&size.1) {
        bail!("--width/--height must be 200–3000 by 150–3000 pixels for a GIF");
    }

    let anneal = if a.sampler == AnimSampler::Annealed {
        let opts =
            AnnealOptions { levels: a.levels, steps_per_level: a.steps_per_level, denoise: true, ..Default::default() };
        Some(AnnealConfig::resolve(t, &opts)?.0)
    } else {
        None
    };
    let init = match (&a.init, &anneal) {
        (Some(s), _) => Init::parse(s)?,
        (None, Some(c)) => c.default_init(t),
        (None, None) => t.default_init(),
    };
    init.check(2, a.particles)?;
    if let Some(method) = diffusion {
        return diffusion_gif(a, t, method, size, quiet);
    }
    let steps = match &anneal {
        Some(c) => c.total_steps(),
        None => a.steps.unwrap_or(300),
    };
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let every = (steps / (a.frames - 1)).max(1);
    let step_size = match (&anneal, a.sampler) {
        (Some(c), _) => c.eps,
        (None, AnimSampler::Baoab) => a.step_size.unwrap_or_else(|| langevin::sample::default_dt(t, &[1.0])),
        _ => a.step_size.unwrap_or_else(|| t.default_step_size()),
    };
    let cfg = RunConfig {
        particles: a.particles,
        steps,
        record_every: Some(every),
        seed: a.seed,
        step_size,
        adapt: None,
        ..Default::default()
    };
    let run_one = |noise: bool| -> Result<Array3<f32>> {
        let r = match a.sampler {
            AnimSampler::Ula => sampler::run(&Ula::new(t, noise), &init, &cfg)?,
            AnimSampler::Mala => sampler::run(&Mala::new(t), &init, &cfg)?,
            AnimSampler::Baoab => sampler::run(&Underdamped::new(t, Scheme::Baoab, &[1.0], 1.0)?, &init, &cfg)?,
            AnimSampler::Annealed => {
                let c = anneal.as_ref().expect("resolved");
                sampler::run_annealed(t, c, true, &init, &sampler::RunConfig { steps: 1, ..cfg.clone() })?
            }
            _ => unreachable!("diffusion samplers are drawn by diffusion_gif"),
        };
        r.trajectory.context("the driver recorded no trajectory")
    };
    let mut runs: Vec<(String, Array3<f32>)> = Vec::new();
    if a.no_noise {
        runs.push(("no noise: x ← x + τ s(x)".into(), run_one(false)?));
        runs.push(("with noise: x ← x + τ s(x) + √(2τ) z".into(), run_one(true)?));
    } else {
        let name = match a.sampler {
            AnimSampler::Ula => "ULA",
            AnimSampler::Mala => "MALA",
            AnimSampler::Annealed => "annealed Langevin",
            AnimSampler::Baoab => "BAOAB",
            _ => unreachable!("diffusion samplers are drawn by diffusion_gif"),
        };
        runs.push((name.into(), run_one(true)?));
    }

    // One fixed view for all frames: where the particles end up, and the target's own start
    // region (annealing starts far wider; those early frames show the particles flowing in).
    let coord = |c: usize| {
        runs.iter().flat_map(move |(_, tr)| {
            let f = tr.dim().0;
            tr.slice(ndarray::s![f - 1, .., c]).to_vec()
        })
    };
    let (mut xr, mut yr) = (plot::range_of(coord(0).map(|v| v as f64)), plot::range_of(coord(1).map(|v| v as f64)));
    let region = match t.default_init() {
        Init::Box { lo, hi } if lo.len() == 2 => Some((lo, hi)),
        Init::Uniform { lo, hi } => Some((vec![lo; 2], vec![hi; 2])),
        _ => None,
    };
    if let Some((lo, hi)) = region {
        xr = (xr.0.min(lo[0]), xr.1.max(hi[0]));
        yr = (yr.0.min(lo[1]), yr.1.max(hi[1]));
    }
    let g = plot::grid(xr, yr, 100, 100).mapv(|v| v as f32);
    // Background: log p, or for annealed Langevin log p_σ of the current level.
    let heat_of = |t: &dyn Target| -> Result<Vec<f64>> {
        let (_, lp) = langevin::target::eval_rows(t, g.view())?;
        Ok(lp.iter().map(|&v| if v.is_finite() { v as f64 } else { f64::NAN }).collect())
    };
    let base_heat = heat_of(t)?;
    let mut level_heat: Option<(usize, Vec<f64>)> = None;

    let n_frames = runs[0].1.dim().0;
    let delay = image::Delay::from_numer_denom_ms(1000, a.fps);
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut gif, 10);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite).context("encoding the GIF")?;
        for f in 0..n_frames {
            let step = if f + 1 == n_frames { steps } else { (f * every).min(steps) };
            let mut corner = format!("frame {}/{n_frames}, step {step}", f + 1);
            let mut heat_values = &base_heat;
            if let Some(c) = &anneal {
                let level = (step / c.steps_per_level.max(1)).min(c.sigmas().len() - 1);
                corner.push_str(&format!(", σ = {:.3}", c.sigmas()[level]));
                if level_heat.as_ref().is_none_or(|(l, _)| *l != level) {
                    let pt =
                        t.mixture().context("annealing needs the perturbed target")?.perturbed(c.sigmas()[level])?;
                    level_heat = Some((level, heat_of(&pt)?));
                }
                heat_values = &level_heat.as_ref().expect("set above").1;
            }
            let panels: Vec<Panel> = runs
                .iter()
                .map(|(title, tr)| {
                    let mut p = Panel::new(title.clone(), xr, yr);
                    p.heat = Some(Heat {
                        nx: 100,
                        ny: 100,
                        values: heat_values.clone(),
                        bands: 12,
                        clip_low: true,
                        mask: None,
                        label: if anneal.is_some() { "log p_σ".into() } else { "log p".into() },
                    });
                    let pts = (0..tr.dim().1).map(|i| (tr[[f, i, 0]] as f64, tr[[f, i, 1]] as f64)).collect();
                    p.layers.push(Layer::Points { pts, color: plot::BLUE, alpha: 0.55, size: 2, label: None });
                    p.corner = Some(corner.clone());
                    p
                })
                .collect();
            let rgb = plot::render_rgb(&t.name(), &panels, size)?;
            let rgba = image::RgbaImage::from_fn(size.0, size.1, |x, y| {
                let k = ((y * size.0 + x) * 3) as usize;
                image::Rgba([rgb[k], rgb[k + 1], rgb[k + 2], 255])
            });
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay)).context("encoding the GIF")?;
        }
    }
    langevin::io::write_atomic(&a.out, |o| o.write_all(&gif))?;
    if !quiet {
        errln!("wrote {} ({n_frames} frames, {} particles, {steps} steps)", a.out.display(), a.particles);
    }
    Ok(())
}

/// A diffusion sampler's reverse process, from noise to data, over log p_σ of the noise level
/// each frame has reached (for mixtures; log p otherwise).
fn diffusion_gif(a: &AnimateArgs, t: &dyn Target, method: Method, size: (u32, u32), quiet: bool) -> Result<()> {
    if a.levels.is_some() || a.steps_per_level.is_some() {
        bail!("--levels and --steps-per-level apply to --sampler annealed only");
    }
    let steps = match (method, a.steps) {
        (_, Some(s)) => Some(s),
        (Method::Ode, None) => Some(100),
        _ => None,
    };
    let options = DiffusionOptions { steps, ..Default::default() };
    let (dc, _) = langevin::sample::diffusion_config(t, method, &options, None)?;
    let total = dc.steps;
    let every = (total / (a.frames - 1)).max(1);
    let opts = langevin::sample::SampleOptions {
        sampler: langevin::sample::Sampler::Diffusion { method, options },
        init: a.init.as_deref().map(Init::parse).transpose()?,
        particles: Some(a.particles),
        record_every: Some(every),
        seed: a.seed,
        ..Default::default()
    };
    let out = langevin::sample::sample(t, &opts)?;
    let traj = out.run.trajectory.context("the sampler recorded no trajectory")?;
    let n_frames = traj.dim().0;
    // A fixed view: the end states and the target's region; early frames (wide noise) leave it.
    let coord = |c: usize| traj.slice(ndarray::s![n_frames - 1, .., c]).iter().map(|&v| v as f64).collect::<Vec<_>>();
    let (mut xr, mut yr) = (plot::range_of(coord(0).into_iter()), plot::range_of(coord(1).into_iter()));
    if let Init::Uniform { lo, hi } = t.default_init() {
        xr = (xr.0.min(lo), xr.1.max(hi));
        yr = (yr.0.min(lo), yr.1.max(hi));
    }
    let g = plot::grid(xr, yr, 100, 100).mapv(|v| v as f32);
    let heat_of = |t: &dyn Target| -> Result<Vec<f64>> {
        let (_, lp) = langevin::target::eval_rows(t, g.view())?;
        Ok(lp.iter().map(|&v| if v.is_finite() { v as f64 } else { f64::NAN }).collect())
    };
    let delay = image::Delay::from_numer_denom_ms(1000, a.fps);
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut gif, 10);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite).context("encoding the GIF")?;
        for f in 0..n_frames {
            let step = if f + 1 == n_frames { total } else { (f * every).min(total) };
            let sigma = if f + 1 == n_frames { 0.0 } else { dc.sigma_after(step) };
            let heat = match t.mixture() {
                Some(m) => heat_of(&m.perturbed(sigma)?)?,
                None => heat_of(t)?,
            };
            let mut p = Panel::new(format!("{} ({} schedule)", method.name(), dc.schedule.kind().name()), xr, yr);
            p.heat = Some(Heat {
                nx: 100,
                ny: 100,
                values: heat,
                bands: 12,
                clip_low: true,
                mask: None,
                label: "log p_σ".into(),
            });
            let pts = (0..traj.dim().1).map(|i| (traj[[f, i, 0]] as f64, traj[[f, i, 1]] as f64)).collect();
            p.layers.push(Layer::Points { pts, color: plot::BLUE, alpha: 0.55, size: 2, label: None });
            p.corner = Some(format!("frame {}/{n_frames}, step {step}/{total}, σ = {sigma:.3}", f + 1));
            let rgb = plot::render_rgb(&t.name(), &[p], size)?;
            let rgba = image::RgbaImage::from_fn(size.0, size.1, |x, y| {
                let k = ((y * size.0 + x) * 3) as usize;
                image::Rgba([rgb[k], rgb[k + 1], rgb[k + 2], 255])
            });
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay)).context("encoding the GIF")?;
        }
    }
    langevin::io::write_atomic(&a.out, |o| o.write_all(&gif))?;
    if !quiet {
        errln!(
            "wrote {} ({n_frames} frames, {} particles, {total} steps of {})",
            a.out.display(),
            a.particles,
            method.name()
        );
    }
    Ok(())
}
