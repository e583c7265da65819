//! `langevin sample`: draw samples from a target.

use crate::diffusion_flags::DiffusionArgs;
use crate::progress::Progress;
use crate::report;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use langevin::diffusion::Method;
use langevin::sample::{SampleOptions, Sampler, StepSize, planned_steps, sample};
use langevin::sampler::{AnnealOptions, Init, RunResult, Scheme};
use langevin::target::{Target, load_target};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplerKind {
    /// Unadjusted Langevin: x ← x + τ s(x) + √(2τ) z.
    Ula,
    /// Metropolis-adjusted Langevin (exact stationary law; step size adapted in warm-up).
    Mala,
    /// Annealed Langevin over a ladder of noise levels (Song & Ermon 2019).
    Annealed,
    /// Independent exact draws, for targets that can be sampled directly (a reference to compare with).
    Exact,
    /// Underdamped Langevin, BAOAB splitting (physical units: --mass, --friction, --temperature, --dt).
    Baoab,
    /// Underdamped Langevin, OBABO splitting.
    Obabo,
    /// Underdamped Langevin, plain Euler–Maruyama (the baseline the splittings beat).
    UnderdampedEm,
    /// Diffusion: the reverse-time SDE with Euler–Maruyama (--solver heun: stochastic Heun).
    ReverseSde,
    /// Diffusion: the reverse-diffusion predictor (Song et al. 2021).
    ReverseDiffusion,
    /// Diffusion: predictor–corrector, reverse diffusion + Langevin corrector (--snr).
    Pc,
    /// Diffusion: the Langevin corrector alone over the schedule.
    Corrector,
    /// Diffusion: the probability-flow ODE (--solver; adaptive dopri5 by default, --rtol/--atol).
    Ode,
    /// Diffusion: DDPM's ancestral sampler (VP, 1000 steps).
    Ddpm,
    /// Diffusion: DDIM with --eta (VP, 50 steps).
    Ddim,
    /// Diffusion: EDM's Heun sampler (Karras et al. 2022; 18 steps = 35 evaluations; --s-churn).
    Edm,
    /// Diffusion: DPM-Solver++(2M), the few-step default (20 steps).
    #[value(name = "dpmpp-2m")]
    DpmPp2m,
}

impl SamplerKind {
    fn name(self) -> &'static str {
        match self {
            SamplerKind::Ula => "ula",
            SamplerKind::Mala => "mala",
            SamplerKind::Annealed => "annealed",
            SamplerKind::Exact => "exact",
            SamplerKind::Baoab => "baoab",
            SamplerKind::Obabo => "obabo",
            SamplerKind::UnderdampedEm => "underdamped-em",
            SamplerKind::ReverseSde => "reverse-sde",
            SamplerKind::ReverseDiffusion => "reverse-diffusion",
            SamplerKind::Pc => "pc",
            SamplerKind::Corrector => "corrector",
            SamplerKind::Ode => "ode",
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Edm => "edm",
            SamplerKind::DpmPp2m => "dpmpp-2m",
        }
    }

    fn diffusion(self) -> Option<Method> {
        Method::from_name(self.name()).ok()
    }

    fn scheme(self) -> Option<Scheme> {
        match self {
            SamplerKind::Baoab => Some(Scheme::Baoab),
            SamplerKind::Obabo => Some(Scheme::Obabo),
            SamplerKind::UnderdampedEm => Some(Scheme::EulerMaruyama),
            _ => None,
        }
    }
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct SampleArgs {
    /// Target: a built-in name (see `langevin targets`), `name:key=value,...`, or a .toml file.
    #[arg(long, value_name = "TARGET")]
    pub target: String,
    /// Sampler.
    #[arg(long, value_enum, default_value = "ula")]
    pub sampler: SamplerKind,
    /// Steps after warm-up (ULA, MALA; default 1000), or the diffusion sampler's steps (default
    /// per sampler: 1000 for the SDE samplers, 50 for ddim, 18 for edm, 20 for dpmpp-2m).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Warm-up steps, not kept (default: 0 for ULA, 1000 for MALA, which adapts its step size in them).
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Keep every K-th state after warm-up (default: keep only the final state).
    #[arg(long, value_name = "K")]
    pub thin: Option<usize>,
    /// Step size τ, or `auto`: 1/λ_max, half the stability limit from the largest eigenvalue of
    /// the score's Jacobian over typical samples (default: from the target's length scales).
    /// For MALA it is the starting step of the warm-up adaptation.
    #[arg(long, value_name = "TAU|auto")]
    pub step_size: Option<Step>,
    /// Switch the noise off: pure gradient ascent on log p (ULA, annealed).
    #[arg(long)]
    pub no_noise: bool,
    /// Keep MALA's step size fixed during warm-up.
    #[arg(long)]
    pub no_adapt: bool,
    /// Acceptance rate MALA's warm-up aims at (default 0.574).
    #[arg(long, value_name = "RATE")]
    pub target_accept: Option<f64>,
    /// Number of particles (independent chains). Default 10000, or the rows of an --init file.
    #[arg(long, value_name = "N")]
    pub particles: Option<usize>,
    /// Random seed; the same seed gives the same output, bit for bit, for any --threads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initial positions: uniform:LO,HI | gaussian[:MEAN,STD] | point:X1,...,Xd | FILE.npy | FILE.csv.
    /// Default: a region covering the target (annealed: N(mean, σ₁² I)).
    #[arg(long, value_name = "INIT")]
    pub init: Option<String>,
    /// Temperature kT: re-targets a Boltzmann target p ∝ exp(−U/kT) (any sampler); the thermostat
    /// of the underdamped samplers holds it.
    #[arg(long, value_name = "KT")]
    pub temperature: Option<f64>,
    /// Underdamped: time step Δt, or `auto` (√(m/(λ_max·kT)), half the stability limit).
    /// Default from the target's length scales, or 0.01.
    #[arg(long, value_name = "DT|auto")]
    pub dt: Option<Step>,
    /// Underdamped: mass, one value or one per coordinate (comma-separated). Default 1.
    #[arg(long, value_name = "M")]
    pub mass: Option<String>,
    /// Underdamped: friction coefficient γ in m ẍ = −∇U − γẋ + √(2γkT) η. Default 1.
    #[arg(long, value_name = "GAMMA")]
    pub friction: Option<f64>,
    /// Annealed and diffusion: largest noise level σ₁ (default from the target's spread).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_max: Option<f64>,
    /// Annealed: smallest noise level σ_L (default 1/10 of the narrowest mode's std);
    /// diffusion: the smallest before the last step (default 1/100 of it).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_min: Option<f64>,
    /// Annealed: number of noise levels L (default from NCSNv2's ratio rule).
    #[arg(long, value_name = "L")]
    pub levels: Option<usize>,
    /// Annealed: Langevin steps per level T (default 100).
    #[arg(long, value_name = "T")]
    pub steps_per_level: Option<usize>,
    /// Annealed: step size ε at σ_L; level i uses ε σ_i²/σ_L² (default c·σ_L² with
    /// (1 − c)^T = 1e-9, so each level forgets the previous one).
    #[arg(long, value_name = "EPS")]
    pub eps: Option<f64>,
    /// Annealed, ode, reverse-sde: skip the final denoising step x + σ² s(x, σ).
    #[arg(long)]
    pub no_denoise: bool,
    #[command(flatten)]
    pub diffusion: DiffusionArgs,
    /// Write the samples: .npy (float32, N × d) or .csv.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write a JSON report (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write all positions every --record-every steps as a frames × particles × d .npy file.
    #[arg(long, value_name = "FILE")]
    pub trajectory: Option<PathBuf>,
    /// Recording interval for --trajectory (default: 1/100 of the run).
    #[arg(long, value_name = "K")]
    pub record_every: Option<usize>,
    /// Run shard K of N (from 0): a contiguous range of the run's blocks of particles, so the
    /// N shards' outputs joined by `langevin merge` are the whole run, bit for bit (for job
    /// arrays: one task per shard, the same flags and seed everywhere).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<langevin::sampler::Shard>,
}

/// `--shard K/N`.
fn parse_shard(s: &str) -> std::result::Result<langevin::sampler::Shard, String> {
    let bad = || format!("'{s}' is not K/N (shard K of N, numbered from 0, e.g. 3/64)");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let index: usize = k.trim().parse().map_err(|_| bad())?;
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(format!(
            "shard {index}/{count}: K must be below N (shards are numbered 0 to N-1) and N at least 1"
        ));
    }
    Ok(langevin::sampler::Shard { index, count })
}

/// The flags of this `sample` command that decide its samples (everything but the output
/// files, --shard, --quiet and --threads), as given: a shard's report keeps them, so `merge`
/// can check that the shards agree and redo the whole run's report.
pub fn settings_argv() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let start = args.iter().position(|a| a == "sample").map_or(args.len(), |i| i + 1);
    let with_value = ["--out", "--report", "--trajectory", "--record-every", "--shard", "--threads"];
    let mut kept = Vec::new();
    let mut i = start;
    while i < args.len() {
        let t = &args[i];
        if with_value.contains(&t.as_str()) {
            i += 2;
            continue;
        }
        if t == "-q" || t == "--quiet" || with_value.iter().any(|f| t.starts_with(&format!("{f}="))) {
            i += 1;
            continue;
        }
        kept.push(t.clone());
        i += 1;
    }
    kept
}

fn check_flags(a: &SampleArgs) -> Result<()> {
    let annealing_flags = [
        ("--sigma-max", a.sigma_max.is_some()),
        ("--sigma-min", a.sigma_min.is_some()),
        ("--levels", a.levels.is_some()),
        ("--steps-per-level", a.steps_per_level.is_some()),
        ("--eps", a.eps.is_some()),
        ("--no-denoise", a.no_denoise),
    ];
    if a.sampler.diffusion().is_some() {
        for (flag, set) in [
            ("--levels", a.levels.is_some()),
            ("--steps-per-level", a.steps_per_level.is_some()),
            ("--eps", a.eps.is_some()),
            ("--no-noise", a.no_noise),
        ] {
            if set {
                bail!("{flag} does not apply to --sampler {}; its length is --steps", a.sampler.name());
            }
        }
    } else {
        a.diffusion.refuse(a.sampler.name())?;
    }
    if a.sampler == SamplerKind::Exact {
        let used = [
            ("--steps", a.steps.is_some()),
            ("--warmup", a.warmup.is_some()),
            ("--thin", a.thin.is_some()),
            ("--step-size", a.step_size.is_some()),
            ("--init", a.init.is_some()),
            ("--no-noise", a.no_noise),
            ("--trajectory", a.trajectory.is_some()),
        ];
        if let Some((flag, _)) = used.iter().chain(annealing_flags.iter()).find(|(_, set)| *set) {
            bail!("{flag} does not apply to --sampler exact (independent draws from the target itself)");
        }
    }
    match a.sampler {
        SamplerKind::Annealed => {
            for (flag, set) in
                [("--steps", a.steps.is_some()), ("--warmup", a.warmup.is_some()), ("--thin", a.thin.is_some())]
            {
                if set {
                    bail!("{flag} does not apply to --sampler annealed; its length is --levels × --steps-per-level");
                }
            }
            if a.step_size.is_some() {
                bail!(
                    "--step-size does not apply to --sampler annealed; set the step at the smallest noise level with --eps"
                );
            }
        }
        s if s.diffusion().is_some() => {}
        _ => {
            if let Some((flag, _)) = annealing_flags.iter().find(|(_, set)| *set) {
                bail!("{flag} applies to --sampler annealed and the diffusion samplers only");
            }
        }
    }
    let underdamped = a.sampler.scheme().is_some();
    if !underdamped {
        for (flag, set) in
            [("--dt", a.dt.is_some()), ("--mass", a.mass.is_some()), ("--friction", a.friction.is_some())]
        {
            if set {
                bail!("{flag} applies to the underdamped samplers (baoab, obabo, underdamped-em) only");
            }
        }
    } else {
        if matches!(a.step_size, Some(Step::Value(_))) {
            bail!(
                "the underdamped samplers take a time step --dt, not --step-size (--step-size auto sets --dt from the stiffness)"
            );
        }
        if a.step_size.is_some() && a.dt.is_some() {
            bail!("give --dt or --step-size auto, not both");
        }
        if a.no_noise {
            bail!("--no-noise is not available for the underdamped samplers");
        }
        if let Some(Step::Value(dt)) = a.dt
            && !(dt.is_finite() && dt > 0.0)
        {
            bail!("--dt = {dt} must be positive and finite");
        }
    }
    if let Some(t) = a.temperature
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--temperature = {t} must be positive and finite");
    }
    if a.sampler != SamplerKind::Mala && (a.no_adapt || a.target_accept.is_some()) {
        bail!("--no-adapt and --target-accept apply to --sampler mala only");
    }
    if a.sampler == SamplerKind::Mala && a.no_noise {
        bail!(
            "--no-noise is not available for MALA (its proposal is a noisy Langevin step); use --sampler ula --no-noise"
        );
    }
    if let Some(r) = a.target_accept
        && !(r > 0.0 && r < 1.0)
    {
        bail!("--target-accept = {r} must be between 0 and 1");
    }
    if a.record_every.is_some() && a.trajectory.is_none() {
        bail!("--record-every needs --trajectory FILE.npy");
    }
    if let Some(Step::Value(s)) = a.step_size
        && !(s.is_finite() && s > 0.0)
    {
        bail!("--step-size = {s} must be positive and finite");
    }
    Ok(())
}

pub fn run(a: &SampleArgs, quiet: bool) -> Result<()> {
    let c = compute(a, a.shard, quiet)?;
    let extra = match a.shard {
        Some(_) => {
            vec![
                ("settings", json!(settings_argv())),
                ("samples_checksum", json!(langevin::io::checksum(c.out.run.samples.view()))),
            ]
        }
        None => vec![],
    };
    write_outputs(a, c.target.as_ref(), &c.opts, &c.out, &c.warnings, &extra, quiet)
}

/// A finished run with what it ran on.
pub struct Computed {
    pub target: Arc<dyn Target>,
    pub warnings: Vec<String>,
    pub opts: SampleOptions,
    pub out: langevin::sample::Sampled,
}

/// Check the flags and outputs, load the target and run the sampler (`shard` of the run, or
/// all of it); warnings are printed as they come.
pub fn compute(a: &SampleArgs, shard: Option<langevin::sampler::Shard>, quiet: bool) -> Result<Computed> {
    check_flags(a)?;
    let (target, warnings) = load_target(&a.target)?;
    for w in &warnings {
        errln!("warning: {w}");
    }
    report::guard(
        &[("target", report::spec_file(Some(&a.target))), ("init", report::spec_file(a.init.as_deref()))],
        &[("out", a.out.as_deref()), ("report", a.report.as_deref()), ("trajectory", a.trajectory.as_deref())],
    )?;
    let target = at_temperature(a, target)?;
    let t: &dyn Target = target.as_ref();
    let mut opts = options(a)?;
    opts.shard = shard;
    // The run's length (the library's defaults) sizes the progress bar and the default
    // recording interval, 1/100 of the run.
    let steps = planned_steps(t, &opts)?;
    if a.trajectory.is_some() && opts.record_every.is_none() {
        opts.record_every = Some((steps / 100).max(1));
    }
    let particles_hint = opts.particles.or(opts.init.as_ref().and_then(|i| i.particles())).unwrap_or(10_000);
    let progress = Progress::start((steps * particles_hint) as u64, "particle-steps", quiet || steps == 0);
    let opts = SampleOptions { progress: Some(progress.counter.clone()), ..opts };
    let out = sample(t, &opts)?;
    progress.finish();
    Ok(Computed { target, warnings, opts: SampleOptions { progress: None, ..opts }, out })
}

/// Write what `a` asks for of a finished (or merged) run: samples, trajectory, the report
/// (with `extra` keys), the summary and late warnings.
pub fn write_outputs(
    a: &SampleArgs,
    t: &dyn Target,
    opts: &SampleOptions,
    out: &langevin::sample::Sampled,
    warnings: &[String],
    extra: &[(&str, Value)],
    quiet: bool,
) -> Result<()> {
    let result = &out.run;

    if let Some(p) = &a.out {
        langevin::io::write_matrix(p, result.samples.view(), &t.coordinate_names())?;
    }
    if let (Some(p), Some(traj)) = (&a.trajectory, &result.trajectory) {
        langevin::io::write_trajectory(p, traj.view())?;
    }
    let late: Vec<String> = out.report.warnings.iter().map(|w| crate::flags::translate(w)).collect();
    let Value::Object(mut rep) = serde_json::to_value(&out.report)? else { unreachable!("a struct") };
    rep.insert("command".into(), json!("sample"));
    rep.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    rep.insert("target_spec".into(), json!(a.target));
    for (k, v) in extra {
        rep.insert((*k).into(), v.clone());
    }
    let mut all_warnings = warnings.to_vec();
    all_warnings.extend(late.iter().cloned());
    rep.insert("warnings".into(), json!(all_warnings));
    if let Some(p) = &a.out {
        rep.insert("out".into(), report::path(p));
    }
    let rep = Value::Object(rep);
    if let Some(p) = &a.report {
        report::write(p, &rep)?;
    }
    if !quiet {
        if opts.sampler == Sampler::Exact {
            let wrote = a.out.as_ref().map(|p| format!(", wrote {}", p.display())).unwrap_or_default();
            errln!("{} exact samples of {} in {:.3} s{wrote}", result.samples.nrows(), t.name(), result.seconds);
        } else {
            print_summary(a, t, result, &rep, (out.resolved.warmup, out.resolved.steps))?;
        }
    }
    // --quiet hides the summary and progress, never warnings.
    for w in &late {
        errln!("warning: {w}");
    }
    Ok(())
}

/// The target at --temperature, when given.
pub fn at_temperature(a: &SampleArgs, target: Arc<dyn Target>) -> Result<Arc<dyn Target>> {
    Ok(match a.temperature {
        Some(kt) => target.at_temperature(kt).ok_or_else(|| {
            anyhow::anyhow!(
                "--temperature applies to Boltzmann targets p ∝ exp(−U/kT); '{}' has no temperature (it is sampled as U = −log p at kT = 1)",
                target.name()
            )
        })?,
        None => target,
    })
}

/// Flags → the library's options.
pub fn options(a: &SampleArgs) -> Result<SampleOptions> {
    let mass = match &a.mass {
        Some(m) => m
            .split(',')
            .map(|v| v.trim().parse::<f64>().map_err(|_| anyhow::anyhow!("--mass: '{}' is not a number", v.trim())))
            .collect::<Result<Vec<f64>>>()?,
        None => vec![1.0],
    };
    let sampler = match a.sampler {
        SamplerKind::Ula => Sampler::Ula { noise: !a.no_noise },
        SamplerKind::Mala => Sampler::Mala { adapt: (!a.no_adapt).then_some(a.target_accept.unwrap_or(0.574)) },
        SamplerKind::Exact => Sampler::Exact,
        SamplerKind::Annealed => Sampler::Annealed {
            options: AnnealOptions {
                sigma_max: a.sigma_max,
                sigma_min: a.sigma_min,
                levels: a.levels,
                steps_per_level: a.steps_per_level,
                eps: a.eps,
                denoise: !a.no_denoise,
            },
            noise: !a.no_noise,
        },
        SamplerKind::Baoab | SamplerKind::Obabo | SamplerKind::UnderdampedEm => Sampler::Underdamped {
            scheme: a.sampler.scheme().expect("underdamped"),
            mass,
            friction: a.friction.unwrap_or(1.0),
        },
        s => Sampler::Diffusion {
            method: s.diffusion().expect("a diffusion sampler"),
            options: a.diffusion.options(a.sigma_min, a.sigma_max, a.steps, a.no_denoise)?,
        },
    };
    let step = if a.sampler.scheme().is_some() { a.dt.or(a.step_size) } else { a.step_size };
    let step_size = match step {
        None => StepSize::Default,
        Some(Step::Auto) => StepSize::Auto,
        Some(Step::Value(v)) => StepSize::Given(v),
    };
    let record_every = a.trajectory.as_ref().and(a.record_every);
    if a.shard.is_some() && a.trajectory.is_some() {
        anyhow::bail!(
            "--trajectory is not recorded in shards (merge joins samples and reports); record on one machine"
        );
    }
    let init = a.init.as_deref().map(Init::parse).transpose()?;
    let opts = SampleOptions {
        sampler,
        step_size,
        init,
        particles: a.particles,
        steps: a.steps,
        warmup: a.warmup,
        thin: a.thin,
        record_every,
        seed: a.seed,
        shard: a.shard,
        ..Default::default()
    };
    Ok(opts)
}

fn print_summary(
    a: &SampleArgs,
    t: &dyn Target,
    r: &RunResult,
    rep: &Value,
    (warmup, steps): (usize, usize),
) -> Result<()> {
    let f = |k: &str| {
        rep.get(k).and_then(|v| v.as_array()).map(|v| v.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>())
    };
    let mut lines = vec![format!("target     {} (d = {})", t.name(), t.dim())];
    let detail = match rep.get("annealing") {
        None if rep.get("diffusion").is_some() => {
            let d = &rep["diffusion"];
            let solver = d["solver"].as_str().map(|s| format!(", {s}")).unwrap_or_default();
            let adaptive = match (d["accepted_steps"].as_u64(), d["rejected_steps"].as_u64()) {
                (Some(acc), Some(rej)) => format!(" ({acc} accepted, {rej} rejected)"),
                _ => String::new(),
            };
            format!(
                "{} schedule{solver}, {} steps{adaptive}, {} score evaluations, σ {:.4} → {:.4e}",
                d["schedule"].as_str().unwrap_or(""),
                d["steps"],
                d["nfe"],
                d["sigma_max"].as_f64().unwrap_or(0.0),
                d["sigma_min"].as_f64().unwrap_or(0.0),
            )
        }
        Some(an) => format!(
            "{} levels × {} steps, σ {:.4} → {:.4}, ε {:.3e}{}",
            an["levels"],
            an["steps_per_level"],
            an["sigma_max"].as_f64().unwrap_or(0.0),
            an["sigma_min"].as_f64().unwrap_or(0.0),
            an["eps"].as_f64().unwrap_or(0.0),
            if an["denoise"].as_bool() == Some(true) { ", denoised" } else { "" }
        ),
        None if a.sampler.scheme().is_some() => format!(
            "{warmup} warm-up + {steps} steps, Δt {:.4e}, γ {}, m {}",
            r.step_size, rep["friction"], rep["mass"]
        ),
        None => format!(
            "{warmup} warm-up + {steps} steps, step size {:.4e}{}",
            r.step_size,
            if a.no_noise { ", noise off" } else { "" }
        ),
    };
    lines.push(format!("sampler    {} ({detail})", a.sampler.name()));
    lines.push(format!("particles  {}   seed {}   threads {}", rep["particles"], a.seed, rayon::current_num_threads()));
    lines.push(format!("time       {:.3} s ({:.3e} particle-steps/s)", r.seconds, r.particle_steps as f64 / r.seconds));
    if let Some(rate) = r.acceptance_rate() {
        lines.push(format!("acceptance {rate:.3}"));
    }
    if let Some(kt) = rep.get("temperature").and_then(|v| v.as_f64()) {
        let kin = r.kinetic_temperature.map(|k| format!(", kinetic temperature {k:.4}")).unwrap_or_default();
        lines.push(format!(
            "energy     kT {kt}{kin}, mean potential energy {:.4}",
            rep["potential_energy_mean"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    if let (Some(w), Some(e)) = (f("mode_weights"), f("mode_weights_expected")) {
        lines.push(format!("modes      weights {} (target {})", report::short(&w), report::short(&e)));
    }
    if let Some(m) = f("mean") {
        let exact = f("exact_mean").map(|e| format!(" (exact {})", report::short(&e))).unwrap_or_default();
        lines.push(format!("mean       {}{exact}", report::short(&m)));
    }
    if let Some(e) = rep.get("ess_bulk_min").and_then(|v| v.as_f64()) {
        lines.push(format!(
            "ess        min bulk ESS {e:.0}, max R-hat {:.4}",
            rep["rhat_max"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    let mut wrote: Vec<String> = Vec::new();
    if let Some(p) = &a.out {
        wrote.push(format!("{} ({} × {})", p.display(), r.samples.nrows(), r.samples.ncols()));
    }
    if let Some(p) = &a.trajectory {
        wrote.push(p.display().to_string());
    }
    if let Some(p) = &a.report
        && p.as_os_str() != "-"
    {
        wrote.push(p.display().to_string());
    }
    if !wrote.is_empty() {
        lines.push(format!("wrote      {}", wrote.join(", ")));
    }
    // The summary goes to stderr when the JSON report is on stdout.
    let to_stderr = a.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
    for l in lines {
        if to_stderr { errln!("{l}") } else { outln!("{l}")? }
    }
    Ok(())
}

/// `--step-size` / `--dt`: a number, or `auto` (from the stiffness of the target).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    Value(f64),
    Auto,
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Step, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Step::Auto);
        }
        s.parse::<f64>().map(Step::Value).map_err(|_| format!("'{s}' is not a number or 'auto'"))
    }
}
