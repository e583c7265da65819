//! The MCMC runner: runs a [`MarkovKernel`] on N particles, block by block, in parallel.
//!
//! Schedule (DESIGN.md, "block-major"): particles are cut into blocks (see
//! [`super::block_size`]); a thread takes a block and advances it through many steps while its
//! data stays in cache. Every particle draws from its own random stream (seed, particle index)
//! and every block writes only its own rows of the output, so the result is bit-for-bit the same
//! for any number of threads and any block size. A field that wants large batches (a network)
//! gets one large block per step (step-major) through its batch hint.
//!
//! Warm-up with step-size adaptation runs in short windows: all blocks advance a few steps, the
//! mean acceptance probability over the pilot (the blocks holding the first [`PILOT`]
//! particles, summed in block order, so deterministic) updates the step size by dual
//! averaging, and so on. A [`Shard`] runs a contiguous range of the blocks, and the pilot
//! beside them during warm-up when it is not among them, so its step sizes are the whole run's.

use super::blocks::{Shard, block_size, start_block};
use super::{DualAveraging, Init, MarkovKernel, StepInfo};
use crate::error::{Error, Result};
use crate::invalid_field;
use crate::rng::ParticleRng;
use ndarray::{Array2, Array3};
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use web_time::Instant;

/// How to run a sampler.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Number of particles (independent chains) N.
    pub particles: usize,
    /// Warm-up steps, not kept (the step size adapts during them when `adapt` is set).
    pub warmup: usize,
    /// Steps after warm-up.
    pub steps: usize,
    /// Keep every `thin`-th state after warm-up; `None` keeps only the final state.
    pub thin: Option<usize>,
    /// Record all positions every `k` steps (warm-up included) into a trajectory.
    pub record_every: Option<usize>,
    /// Seed of all random streams.
    pub seed: u64,
    /// Particles per block; `None` chooses from N, d and the kernel's batch hint
    /// ([`super::block_size`]). Results do not depend on it.
    pub block_size: Option<usize>,
    /// Initial step size τ.
    pub step_size: f64,
    /// Adapt the step size during warm-up towards this acceptance rate (Metropolized kernels
    /// only; an error for others). The acceptance is pooled over the pilot's chains (the
    /// blocks holding the first [`PILOT`] particles) to set one step size, so with adaptation
    /// a run's chains are not independent of how many there are.
    pub adapt: Option<f64>,
    /// Run only this shard's blocks of the `particles` (the output holds its rows alone).
    pub shard: Option<Shard>,
    /// Counter of particle-steps done, for progress display.
    pub progress: Option<Arc<AtomicU64>>,
    /// Set to stop the run early (it then returns an error).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Refuse runs whose kept samples and trajectory would exceed this many bytes.
    pub max_output_bytes: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            particles: 10_000,
            warmup: 0,
            steps: 1000,
            thin: None,
            record_every: None,
            seed: 0,
            block_size: None,
            step_size: 0.01,
            adapt: None,
            shard: None,
            progress: None,
            cancel: None,
            max_output_bytes: 8 << 30,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Kept states, `draws × particles` rows of d values; row `k·N + i` is particle i at its
    /// k-th kept draw.
    pub samples: Array2<f32>,
    /// Kept draws per particle.
    pub draws: usize,
    /// Recorded frames × particles × d, when recording was asked for: the initial state, every
    /// `record_every`-th step, and the final state.
    pub trajectory: Option<Array3<f32>>,
    /// Accepted proposals after warm-up (Metropolized kernels).
    pub accepted: u64,
    /// Proposals after warm-up.
    pub proposed: u64,
    /// Mean acceptance probability during the last warm-up window, if adapted.
    pub warmup_acceptance: Option<f64>,
    /// Step size used after warm-up.
    pub step_size: f64,
    /// Wall-clock seconds of the run (initialization included).
    pub seconds: f64,
    /// Particle-steps done (= score evaluations per particle, summed).
    pub particle_steps: u64,
    /// Particles per block.
    pub block_size: usize,
    /// ⟨m v²⟩ per degree of freedom over the kept draws, for kernels with velocities; equals kT
    /// when the thermostat works.
    pub kinetic_temperature: Option<f64>,
}

impl RunResult {
    /// Fraction of accepted proposals after warm-up, for Metropolized kernels.
    pub fn acceptance_rate(&self) -> Option<f64> {
        (self.proposed > 0).then(|| self.accepted as f64 / self.proposed as f64)
    }
}

/// Particles whose acceptance sets the adapted step size (the blocks that hold them).
pub const PILOT: usize = 4096;

struct Worker<S> {
    state: S,
    rng: ParticleRng,
    first: usize,
    kept: Vec<f32>,
    frames: Vec<f32>,
    accepted: u64,
    accept_prob: f64,
    /// Σ m v² over kept draws (kernels with velocities).
    kinetic: f64,
}

/// A stretch of steps run by every block: global step indices `from..to`, at one step size,
/// either warm-up or sampling (only sampling steps are kept for thinning).
#[derive(Clone, Copy)]
struct Span {
    from: usize,
    to: usize,
    step_size: f64,
    sampling: bool,
}

/// A failure inside one block: the step (1-based) and particle, for deterministic reporting.
struct BlockFailure {
    step: usize,
    particle: usize,
    error: Error,
}

/// Run `kernel` from `init` as configured. See the module documentation for the schedule.
pub fn run<K: MarkovKernel>(kernel: &K, init: &Init, cfg: &RunConfig) -> Result<RunResult> {
    let start = Instant::now();
    let d = kernel.dim();
    let n = cfg.particles;
    if n == 0 {
        return Err(invalid_field!("particles", "`particles` must be at least 1"));
    }
    if cfg.steps == 0 {
        return Err(invalid_field!("steps", "`steps` must be at least 1"));
    }
    if !(cfg.step_size.is_finite() && cfg.step_size > 0.0) {
        return Err(invalid_field!("step_size", "`step_size` = {} must be positive and finite", cfg.step_size));
    }
    if let Some(t) = cfg.thin
        && (t == 0 || t > cfg.steps)
    {
        return Err(invalid_field!("thin", "`thin` = {t} must be between 1 and the number of steps ({})", cfg.steps));
    }
    if cfg.record_every == Some(0) {
        return Err(invalid_field!("record_every", "`record_every` must be at least 1"));
    }
    if cfg.adapt.is_some() && !K::Info::METROPOLIZED {
        return Err(invalid_field!(
            "adapt",
            "step-size adaptation (`adapt`) needs an accept/reject step, which {} does not have; use MALA or a fixed `step_size`",
            kernel.name()
        ));
    }
    init.check(d, n)?;
    let total = cfg.warmup + cfg.steps;
    let block = block_size(n, d, kernel.batch_hint(), cfg.block_size)?;
    let n_blocks = n.div_ceil(block);
    let own = match cfg.shard {
        Some(s) => s.blocks(n_blocks, block)?,
        None => 0..n_blocks,
    };
    let lo = own.start * block;
    let n_here = (own.end * block).min(n) - lo;
    let draws = cfg.thin.map_or(1, |t| cfg.steps / t);
    let frames = cfg.record_every.map_or(0, |k| total / k + 2);
    let bytes = (draws as u64 + frames as u64).saturating_mul(n_here as u64).saturating_mul(d as u64).saturating_mul(4);
    // Everything the run holds: the particles' state (positions, scores, proposals and noise;
    // at most six arrays of N × d), the kept draws twice (while they are gathered into one
    // array), the trajectory frames, and a few scalars per particle.
    let state = crate::mem::product(&[n_here, d, 4, 6]) + crate::mem::product(&[n_here, 64]);
    let kept = crate::mem::product(&[draws, n_here, d, 4, 2]) + crate::mem::product(&[frames, n_here, d, 4]);
    crate::mem::check(state + kept, format!("a run of {n_here} particles in {d} dimensions"), "particles")?;
    if bytes > cfg.max_output_bytes {
        return Err(invalid_field!(
            "thin",
            "keeping {draws} draws and {frames} trajectory frames of {n_here} particles in {d} dimensions needs {:.1} GiB; \
             raise `thin` or `record_every`, or use fewer particles",
            bytes as f64 / (1u64 << 30) as f64
        ));
    }

    // Initialize every block; each particle from its own stream.
    let make = |b: usize, keep: bool| -> Result<Worker<K::State>> {
        let first = b * block;
        let len = block.min(n - first);
        let (x, mut rng) = start_block(d, first, len, cfg.seed, init);
        // Kept draws and frames are reserved in full up front: growing them by doubling
        // copied hundreds of megabytes per run (mimalloc's realloc copies where glibc's
        // remaps), which halved MALA's speed with --thin 1.
        let mut frames = Vec::with_capacity(if keep { frames * len * d } else { 0 });
        if keep && cfg.record_every.is_some() {
            x.append_rows(&mut frames);
        }
        let state = kernel.init(x, &mut rng)?;
        let kept = Vec::with_capacity(if keep { draws * len * d } else { 0 });
        Ok(Worker { state, rng, first, kept, frames, accepted: 0, accept_prob: 0.0, kinetic: 0.0 })
    };
    let mut workers: Vec<Worker<K::State>> =
        own.clone().into_par_iter().map(|b| make(b, true)).collect::<Result<_>>()?;

    let first_bad = AtomicUsize::new(usize::MAX);
    let mut step_size = cfg.step_size;
    let mut warmup_acceptance = None;

    // Warm-up: in adaptation windows, or in one go.
    if cfg.warmup > 0 {
        match cfg.adapt {
            Some(target) => {
                let pilot = 0..n_blocks.min(PILOT.min(n).div_ceil(block));
                let pilot_particles = (pilot.end * block).min(n);
                // The pilot's blocks that this shard does not run: run beside it, not kept.
                let mut extra: Vec<Worker<K::State>> = pilot
                    .clone()
                    .filter(|b| !own.contains(b))
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|b| make(b, false))
                    .collect::<Result<_>>()?;
                // The pilot's extra blocks record nothing and count no progress.
                let quiet = RunConfig { record_every: None, progress: None, ..cfg.clone() };
                let window = (cfg.warmup / 100).clamp(1, 10);
                let mut da = DualAveraging::new(step_size, target);
                let mut t = 0;
                while t < cfg.warmup {
                    let end = (t + window).min(cfg.warmup);
                    let span = Span { from: t, to: end, step_size, sampling: false };
                    segment(kernel, &mut workers, span, cfg, &first_bad)?;
                    if !extra.is_empty() {
                        segment(kernel, &mut extra, span, &quiet, &first_bad)?;
                    }
                    // Summed in block order over the pilot, wherever its blocks ran.
                    let mut prob = 0.0;
                    let mut j = 0;
                    for b in pilot.clone() {
                        if own.contains(&b) {
                            prob += workers[b - own.start].accept_prob;
                        } else {
                            prob += extra[j].accept_prob;
                            j += 1;
                        }
                    }
                    workers.iter_mut().chain(extra.iter_mut()).for_each(|w| {
                        w.accept_prob = 0.0;
                        w.accepted = 0;
                    });
                    let mean = prob / (pilot_particles * (end - t)) as f64;
                    warmup_acceptance = Some(mean);
                    step_size = da.update(mean);
                    t = end;
                }
                step_size = da.final_step();
            }
            None => {
                segment(
                    kernel,
                    &mut workers,
                    Span { from: 0, to: cfg.warmup, step_size, sampling: false },
                    cfg,
                    &first_bad,
                )?;
                workers.iter_mut().for_each(|w| {
                    w.accept_prob = 0.0;
                    w.accepted = 0;
                });
            }
        }
    }
    let span = Span { from: cfg.warmup, to: total, step_size, sampling: true };
    segment(kernel, &mut workers, span, cfg, &first_bad)?;

    if cfg.thin.is_none() {
        for w in workers.iter_mut() {
            kernel.position(&w.state).append_rows(&mut w.kept);
            w.kinetic += kernel.kinetic_sum(&w.state).unwrap_or(0.0);
        }
    }
    let kinetic_temperature = kernel
        .kinetic_sum(&workers[0].state)
        .map(|_| workers.iter().map(|w| w.kinetic).sum::<f64>() / (draws * n_here * d) as f64);
    let mut samples = Array2::zeros((draws * n_here, d));
    for w in &workers {
        let len = kernel.position(&w.state).len();
        for k in 0..draws {
            let src = &w.kept[k * len * d..(k + 1) * len * d];
            let rows = k * n_here + w.first - lo..k * n_here + w.first - lo + len;
            samples.slice_mut(ndarray::s![rows, ..]).as_slice_mut().expect("standard layout").copy_from_slice(src);
        }
    }
    let trajectory = cfg.record_every.map(|every| {
        let recorded = total / every + 1;
        let last_recorded = total.is_multiple_of(every);
        let n_frames = recorded + usize::from(!last_recorded);
        let mut traj = Array3::zeros((n_frames, n_here, d));
        for w in workers.iter_mut() {
            let pos = kernel.position(&w.state);
            let len = pos.len();
            if !last_recorded {
                pos.append_rows(&mut w.frames);
            }
            for f in 0..n_frames {
                let src = &w.frames[f * len * d..(f + 1) * len * d];
                traj.slice_mut(ndarray::s![f, w.first - lo..w.first - lo + len, ..])
                    .as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(src);
            }
        }
        traj
    });
    let accepted: u64 = workers.iter().map(|w| w.accepted).sum();
    let proposed = if K::Info::METROPOLIZED { (n_here * cfg.steps) as u64 } else { 0 };
    Ok(RunResult {
        samples,
        draws,
        trajectory,
        accepted,
        proposed,
        warmup_acceptance,
        step_size,
        seconds: start.elapsed().as_secs_f64(),
        particle_steps: (n_here * total) as u64,
        block_size: block,
        kinetic_temperature,
    })
}

/// Advance every block through `span`.
fn segment<K: MarkovKernel>(
    kernel: &K,
    workers: &mut [Worker<K::State>],
    span: Span,
    cfg: &RunConfig,
    first_bad: &AtomicUsize,
) -> Result<()> {
    // One block (a few chains) runs on this thread: waking the pool for every adaptation window
    // cost more than the window's steps.
    let failures: Vec<Option<BlockFailure>> = if workers.len() == 1 {
        vec![advance(kernel, &mut workers[0], span, cfg, first_bad).err()]
    } else {
        workers.par_iter_mut().map(|w| advance(kernel, w, span, cfg, first_bad).err()).collect()
    };
    // Report the earliest failure (lowest step, then lowest particle): the same whatever the
    // thread count, because no block stops before reaching the earliest failing step.
    match failures.into_iter().flatten().min_by_key(|f| (f.step, f.particle)) {
        Some(f) => Err(f.error),
        None => Ok(()),
    }
}

fn advance<K: MarkovKernel>(
    kernel: &K,
    w: &mut Worker<K::State>,
    span: Span,
    cfg: &RunConfig,
    first_bad: &AtomicUsize,
) -> std::result::Result<(), BlockFailure> {
    let (step_size, sampling) = (span.step_size, span.sampling);
    let len = kernel.position(&w.state).len();
    let mut pending = 0u64;
    for t in span.from..span.to {
        // Stop only after the earliest failing step: a block failing at that same step with a
        // lower particle index must still get to report it (it wins the tie), or the report
        // would depend on which block got there first (seen as a flaky test with 2 threads).
        if t > first_bad.load(Ordering::Relaxed) {
            return Ok(()); // an earlier step already failed elsewhere; this block cannot beat it
        }
        if let Some(c) = &cfg.cancel
            && c.load(Ordering::Relaxed)
        {
            return Err(BlockFailure { step: t + 1, particle: w.first, error: crate::Error::msg("interrupted") });
        }
        let info = kernel.step(&mut w.state, step_size, &mut w.rng).map_err(|error| {
            first_bad.fetch_min(t, Ordering::Relaxed);
            BlockFailure { step: t + 1, particle: w.first, error }
        })?;
        w.accepted += info.accepted() as u64;
        w.accept_prob += info.accept_prob();
        let pos = kernel.position(&w.state);
        if let Some(i) = if info.known_finite() { None } else { pos.first_non_finite() } {
            first_bad.fetch_min(t, Ordering::Relaxed);
            let error = Error::NonFinite {
                step: t + 1,
                particle: w.first + i,
                detail: String::new(),
                suggest: Some(kernel.suggest(&w.state, step_size)),
            };
            return Err(BlockFailure { step: t + 1, particle: w.first + i, error });
        }
        if let Some(k) = cfg.record_every
            && (t + 1) % k == 0
        {
            pos.append_rows(&mut w.frames);
        }
        if sampling
            && let Some(thin) = cfg.thin
            && (t + 1 - cfg.warmup).is_multiple_of(thin)
        {
            pos.append_rows(&mut w.kept);
            w.kinetic += kernel.kinetic_sum(&w.state).unwrap_or(0.0);
        }
        pending += len as u64;
        if pending >= 4096 {
            if let Some(p) = &cfg.progress {
                p.fetch_add(pending, Ordering::Relaxed);
            }
            pending = 0;
        }
    }
    if let Some(p) = &cfg.progress {
        p.fetch_add(pending, Ordering::Relaxed);
    }
    Ok(())
}
