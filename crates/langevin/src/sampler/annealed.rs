//! Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), with NCSNv2's rules for
//! choosing the noise ladder and step size (Song & Ermon 2020, "Improved techniques").
//!
//! Plain Langevin cannot move mass between well separated modes: on the NCSN toy
//! 0.8·N((5,5), I) + 0.2·N((−5,−5), I) each particle stays in the basin it starts in, so the
//! sampled weights reflect the initial distribution (≈ 0.5/0.5), not 0.8/0.2. Annealing runs
//! Langevin on the perturbed densities p_σ for σ₁ > … > σ_L: at large σ the modes merge and
//! particles distribute themselves by the right weights; as σ shrinks they settle into the
//! modes. Level i uses the step α_i = ε σ_i²/σ_L² with the seeds' update
//! x ← x + α_i s(x, σ_i) + √(2α_i) z (the convention of the official NCSN code), T steps per
//! level, and optionally a final denoising step x ← x + σ_L² s(x, σ_L) (Tweedie's formula).

use super::blocks::{block_size, map_blocks_in};
use super::{Init, RunConfig, RunResult};
use crate::block::Block;
use crate::error::{Error, Param, Result, Suggestion};
use crate::field::{Score, check_sigma};
use crate::invalid_field;
use crate::ladder::{Ladder, contraction_step_ratio, ncsnv2_gamma};
use crate::particles::Particles;
use crate::target::Target;
use ndarray::{Array2, Array3};
use std::sync::atomic::Ordering;
use web_time::Instant;

/// What the user fixed; the rest is derived from the target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnealOptions {
    /// σ₁, the largest noise level.
    pub sigma_max: Option<f64>,
    /// σ_L, the smallest noise level.
    pub sigma_min: Option<f64>,
    /// L, the number of levels.
    pub levels: Option<usize>,
    /// T, Langevin steps per level.
    pub steps_per_level: Option<usize>,
    /// ε, the step size at σ_L.
    pub eps: Option<f64>,
    /// Apply the final denoising step.
    pub denoise: bool,
}

/// A resolved annealing schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnealConfig {
    /// Noise levels σ₁ > … > σ_L (geometric).
    pub ladder: Ladder,
    /// Steps per level T.
    pub steps_per_level: usize,
    /// ε: the step at the smallest level; level i uses α_i = ε σ_i²/σ_L².
    pub eps: f64,
    /// Whether to apply x + σ_L² s(x, σ_L) at the end.
    pub denoise: bool,
}

impl AnnealConfig {
    /// Fill in what `opts` leaves open from the target's length scales, in the spirit of
    /// NCSNv2: σ₁ = the largest distance that matters (technique 1), σ_L = 1/10 of the narrowest
    /// mode's standard deviation, L from the ratio rule (technique 2) with ratio at most
    /// [`GAMMA_CAP`], T = 100, ε from T by [`contraction_step_ratio`].
    /// Returns the schedule and one note per derived value, for the report.
    pub fn resolve(target: &dyn Target, opts: &AnnealOptions) -> Result<(AnnealConfig, Vec<String>)> {
        let mut notes = Vec::new();
        let scales = target.scales();
        let need = |what: &str| {
            invalid_field!(
                "sigma_max",
                "target '{}' has no known length scales, so {what} cannot be chosen automatically; give `sigma_max` and `sigma_min`",
                target.name()
            )
        };
        let sigma_max = match opts.sigma_max {
            Some(s) => s,
            None => {
                let s = scales.ok_or_else(|| need("σ₁"))?.largest;
                notes.push(format!("sigma_max = {s:.4}: the largest distance between modes plus 6 × the widest standard deviation (NCSNv2 technique 1)"));
                s
            }
        };
        let sigma_min = match opts.sigma_min {
            Some(s) => s,
            None => {
                let s = 0.1 * scales.ok_or_else(|| need("σ_L"))?.smallest;
                notes.push(format!("sigma_min = {s:.4e}: 1/10 of the narrowest mode's standard deviation"));
                s
            }
        };
        // Ladder::geometric below checks σ_L, then σ₁ > σ_L, then L ≥ 2.
        let levels = match opts.levels {
            Some(l) => l,
            None => {
                let gamma = ncsnv2_gamma(target.dim());
                let l = Ladder::ncsnv2_levels(sigma_max, sigma_min, target.dim());
                notes.push(format!(
                    "levels = {l}: geometric ratio at most {gamma:.3} between levels (NCSNv2 technique 2 for d = {})",
                    target.dim()
                ));
                l
            }
        };
        let ladder = Ladder::geometric(sigma_max, sigma_min, levels)?;
        let steps_per_level = opts.steps_per_level.unwrap_or(100);
        if steps_per_level == 0 {
            return Err(invalid_field!("steps_per_level", "`steps_per_level` must be at least 1"));
        }
        let eps = match opts.eps {
            Some(e) => e,
            None => {
                let c = contraction_step_ratio(steps_per_level);
                let e = c * sigma_min * sigma_min;
                notes.push(format!(
                    "eps = {e:.4e}: {c:.4} × σ_L², so that T = {steps_per_level} steps contract each level's memory of the previous one to 1e-9"
                ));
                e
            }
        };
        let cfg = AnnealConfig { ladder, steps_per_level, eps, denoise: opts.denoise };
        cfg.check()?;
        Ok((cfg, notes))
    }

    /// A schedule from a given ladder (e.g. a trained model's), checked.
    pub fn new(ladder: Ladder, steps_per_level: usize, eps: f64, denoise: bool) -> Result<Self> {
        let cfg = AnnealConfig { ladder, steps_per_level, eps, denoise };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        Ladder::new(self.ladder.sigmas.clone())?;
        if self.steps_per_level == 0 {
            return Err(invalid_field!("steps_per_level", "`steps_per_level` must be at least 1"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(invalid_field!("eps", "`eps` = {} must be positive and finite", self.eps));
        }
        Ok(())
    }

    /// The noise levels σ₁ > … > σ_L.
    pub fn sigmas(&self) -> &[f64] {
        &self.ladder.sigmas
    }

    /// Step size α_i = ε σ_i²/σ_L² of level `i`.
    pub fn alpha(&self, i: usize) -> f64 {
        self.eps * (self.ladder.sigmas[i] / self.ladder.sigma_min()).powi(2)
    }

    /// Where annealed Langevin starts by default: N(mean, σ₁² I), the perturbed density at σ₁
    /// seen from far away (mean 0 when the target's mean is unknown).
    pub fn default_init(&self, target: &dyn Target) -> Init {
        Init::Gaussian { mean: target.mean_and_variances().map_or(vec![0.0], |(m, _)| m), std: self.ladder.sigma_max() }
    }

    /// Total number of Langevin steps, L·T.
    pub fn total_steps(&self) -> usize {
        self.ladder.levels() * self.steps_per_level
    }
}

/// One step of [`annealed_langevin`], as its callback sees it.
pub struct AnnealStep<'a, X> {
    /// Global step index, from 0 (level i, step t is i·T + t).
    pub index: usize,
    /// Noise level index i (from 0).
    pub level: usize,
    /// σ_i.
    pub sigma: f64,
    /// The positions after the step.
    pub x: &'a X,
}

/// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) on one batch of particles:
/// for each level i, T steps of x ← x + α_i s(x, σ_i) + √(2α_i) z with α_i = ε σ_i²/σ_L², then
/// optionally Tweedie's denoising step x ← x + σ_L² s(x, σ_L). `noise = false` drops z
/// (gradient ascent through the ladder). `callback` sees every step; an error from it stops
/// the run. A non-finite position stops it with [`Error::NonFinite`] (step, block-local
/// particle, level, and a smaller ε).
pub fn annealed_langevin<X: Particles, S: Score<X> + ?Sized>(
    score: &S,
    x: &mut X,
    cfg: &AnnealConfig,
    noise: bool,
    rng: &mut X::Noise,
    callback: &mut dyn FnMut(AnnealStep<'_, X>) -> Result<()>,
) -> Result<()> {
    for &sigma in cfg.sigmas() {
        check_sigma(score, sigma)?;
    }
    let (mut s, mut z) = (x.zeros_like(), x.zeros_like());
    let t_per = cfg.steps_per_level;
    for (i, &sigma) in cfg.sigmas().iter().enumerate() {
        let alpha = cfg.alpha(i);
        for t in 0..t_per {
            score.score(x, sigma, &mut s)?;
            let finite = if noise {
                z.fill_normal(rng);
                x.langevin_add(alpha as f32, &s, (2.0 * alpha).sqrt() as f32, &z)
            } else {
                x.drift_add(alpha as f32, &s)
            };
            let index = i * t_per + t;
            if !finite && let Some(p) = x.first_non_finite() {
                return Err(Error::NonFinite {
                    step: index + 1,
                    particle: p,
                    detail: format!(
                        " (noise level {} of {}: σ = {sigma:.4}, step α = {alpha:.3e})",
                        i + 1,
                        cfg.sigmas().len()
                    ),
                    suggest: Some(Suggestion {
                        param: Param::Eps,
                        value: cfg.eps / 10.0,
                        why: "a tenth of the current ε",
                    }),
                });
            }
            callback(AnnealStep { index, level: i, sigma, x })?;
        }
    }
    if cfg.denoise {
        let sigma = cfg.ladder.sigma_min();
        score.score(x, sigma, &mut s)?;
        if !x.drift_add((sigma * sigma) as f32, &s) && x.first_non_finite().is_some() {
            return Err(invalid_field!(
                "eps",
                "the final denoising step x + σ_L² s(x, σ_L) produced non-finite values; try a smaller `eps` or `denoise` = false"
            ));
        }
    }
    Ok(())
}

/// Annealed Langevin on `n = cfg.particles` particles from `init`: [`annealed_langevin`] on
/// every block ([`map_blocks`]), with trajectories, progress and cancellation from `cfg`.
/// `cfg.steps`, `warmup`, `thin`, `step_size` and `adapt` do not apply (the schedule fixes the
/// length and the steps); `warmup`, `thin` and `adapt` must be left unset.
pub fn run_annealed<S: Score<Block> + ?Sized>(
    score: &S,
    anneal: &AnnealConfig,
    noise: bool,
    init: &Init,
    cfg: &RunConfig,
) -> Result<RunResult> {
    let start = Instant::now();
    let (n, d) = (cfg.particles, score.dim());
    for (field, set) in [("warmup", cfg.warmup > 0), ("thin", cfg.thin.is_some()), ("adapt", cfg.adapt.is_some())] {
        if set {
            return Err(invalid_field!(
                field,
                "`{field}` does not apply to annealed Langevin: its length is `levels` × `steps_per_level` and its steps follow ε"
            ));
        }
    }
    if cfg.record_every == Some(0) {
        return Err(invalid_field!("record_every", "`record_every` must be at least 1"));
    }
    anneal.check()?;
    let total = anneal.total_steps();
    let block = block_size(n, d, score.batch_hint(), cfg.block_size)?;
    let every = cfg.record_every;
    let blocks = map_blocks_in(n, d, block, cfg.shard, cfg.seed, init, |_first, mut x, rng| {
        let mut frames = Vec::new();
        if every.is_some() {
            x.append_rows(&mut frames);
        }
        let len = x.len() as u64;
        annealed_langevin(score, &mut x, anneal, noise, rng, &mut |st| {
            if let Some(k) = every
                && (st.index + 1) % k == 0
            {
                st.x.append_rows(&mut frames);
            }
            if let Some(p) = &cfg.progress {
                p.fetch_add(len, Ordering::Relaxed);
            }
            match &cfg.cancel {
                Some(c) if c.load(Ordering::Relaxed) => Err(crate::Error::msg("interrupted")),
                _ => Ok(()),
            }
        })?;
        // The last frame is the final state (denoised, or the last step when it was not recorded).
        if every.is_some() && (anneal.denoise || !total.is_multiple_of(every.unwrap_or(1))) {
            x.append_rows(&mut frames);
        }
        Ok((x, frames))
    })?;
    let n_here: usize = blocks.iter().map(|b| b.0.len()).sum();
    let mut samples = Array2::zeros((n_here, d));
    let mut first = 0;
    for (x, _) in &blocks {
        x.write_rows(samples.slice_mut(ndarray::s![first..first + x.len(), ..]));
        first += x.len();
    }
    let trajectory = every.map(|k| {
        let n_frames = total / k + 1 + usize::from(anneal.denoise || !total.is_multiple_of(k));
        let mut traj = Array3::zeros((n_frames, n_here, d));
        let mut first = 0;
        for (x, frames) in &blocks {
            let len = x.len();
            for f in 0..n_frames {
                let src = &frames[f * len * d..(f + 1) * len * d];
                traj.slice_mut(ndarray::s![f, first..first + len, ..])
                    .as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(src);
            }
            first += len;
        }
        traj
    });
    Ok(RunResult {
        samples,
        draws: 1,
        trajectory,
        accepted: 0,
        proposed: 0,
        warmup_acceptance: None,
        step_size: anneal.eps,
        seconds: start.elapsed().as_secs_f64(),
        particle_steps: (n_here * total) as u64,
        block_size: block,
        kinetic_temperature: None,
    })
}
