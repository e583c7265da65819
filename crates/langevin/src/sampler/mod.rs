//! Samplers of the Langevin family, and the driver that runs them on many particles.
//!
//! A sampler is a [`Kernel`] in the style of BlackJAX: a small state per block of particles, an
//! `init` that builds it from positions, and a `step` that advances it and returns an info
//! record. [`run`] owns everything else (blocks, threads, random streams, warm-up and
//! step-size adaptation, thinning, trajectories, the NaN guard, progress).
//!
//! - [`Ula`]: the seeds' update x ← x + τ s(x) + √(2τ) z (seed 001, eq. 1), optionally without
//!   noise (pure gradient ascent, which collapses onto the nearest mode).
//! - [`Mala`]: ULA as a proposal, corrected by a Metropolis–Hastings test, so the stationary law
//!   is exact; step size adapted towards acceptance 0.574 during warm-up.
//! - [`Annealed`]: annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) over a ladder of noise
//!   levels σ₁ > … > σ_L.

mod annealed;
mod driver;
mod init;
mod mala;
mod ula;
mod underdamped;

pub use annealed::{
    AnnealConfig, AnnealOptions, Annealed, GAMMA_CAP, contraction_step_ratio, ncsnv2_gamma, ncsnv2_step_ratio,
    variance_ratio,
};
pub use driver::{RunConfig, RunResult, auto_block_size, run};
pub use init::Init;
pub use mala::{DualAveraging, Mala};
pub use ula::Ula;
pub use underdamped::{Scheme, Underdamped};

use crate::block::Block;
use crate::error::Result;
use crate::rng::LaneRng;
use crate::vmath::{LANES, V};

/// What a kernel's `step` needs to know beyond its state.
#[derive(Clone, Copy, Debug)]
pub struct StepCtx {
    /// Global step index, from 0 (warm-up included).
    pub index: usize,
    /// Current step size τ (kernels with their own schedule ignore it).
    pub step_size: f64,
}

/// What a step reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepInfo {
    /// Number of real particles whose proposal was accepted (Metropolized kernels).
    pub accepted: usize,
    /// Sum over real particles of the acceptance probability min(1, α).
    pub accept_prob: f64,
    /// Set when every position (padding included) is known to be finite after the step, so the
    /// driver can skip its own scan. Left false, the driver checks.
    pub finite: bool,
}

/// One sampler: per-block state plus `init` and `step`.
pub trait Kernel: Sync {
    /// State of one block of particles.
    type State: Send;
    /// Name used in reports (`ula`, `mala`, `annealed`).
    fn name(&self) -> &'static str;
    /// Dimension of the particles.
    fn dim(&self) -> usize;
    /// Build the state from initial positions (`rng` is the block's stream, e.g. for initial
    /// velocities).
    fn init(&self, x: Block, rng: &mut LaneRng) -> Result<Self::State>;
    /// Advance every particle of the block by one step.
    fn step(&self, state: &mut Self::State, ctx: &StepCtx, rng: &mut LaneRng) -> Result<StepInfo>;
    /// Current positions.
    fn position<'a>(&self, state: &'a Self::State) -> &'a Block;
    /// The number of steps the kernel is defined for, if it has a fixed schedule (annealed
    /// Langevin: L × T). The driver refuses any other number of steps.
    fn schedule_len(&self) -> Option<usize> {
        None
    }
    /// Whether the kernel accepts or rejects proposals (then acceptance is reported).
    fn metropolized(&self) -> bool {
        false
    }
    /// A last transformation after the final step (the denoising step of annealed Langevin).
    /// Returns whether positions changed.
    fn finish(&self, _state: &mut Self::State) -> Result<bool> {
        Ok(false)
    }
    /// Σ m v² over the real particles and coordinates of the block, for kernels with velocities
    /// (the kinetic temperature is Σ m v² / (N d)).
    fn kinetic_sum(&self, _state: &Self::State) -> Option<f64> {
        None
    }
    /// Context for error messages about step `index` (e.g. the noise level).
    fn describe_step(&self, _index: usize) -> String {
        String::new()
    }
    /// A step size to suggest when step `index` produced NaN.
    fn suggest_smaller(&self, _index: usize, step_size: f64) -> String {
        format!("--step-size {:.3e}", step_size / 10.0)
    }
}

/// x ← x + a·s + b·z over whole coordinate rows (the Langevin update, vectorized). Returns
/// whether every new value is finite (`v · 0` is 0 for finite `v`, NaN otherwise; summed per
/// lane, so the check costs no extra pass over memory).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn langevin_update(x: &mut [f32], s: &[f32], z: &[f32], a: f32, b: f32) -> bool {
    let mut check = V::splat(0.0);
    for j0 in (0..x.len()).step_by(LANES) {
        let new = V::splat(b).mul_add(V::load(z, j0), V::splat(a).mul_add(V::load(s, j0), V::load(x, j0)));
        new.store(x, j0);
        check = new.mul_add(V::splat(0.0), check);
    }
    check.0.iter().all(|c| *c == 0.0)
}

/// x ← x + a·s (the noise-free update); returns whether every new value is finite.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn drift_update(x: &mut [f32], s: &[f32], a: f32) -> bool {
    let mut check = V::splat(0.0);
    for j0 in (0..x.len()).step_by(LANES) {
        let new = V::splat(a).mul_add(V::load(s, j0), V::load(x, j0));
        new.store(x, j0);
        check = new.mul_add(V::splat(0.0), check);
    }
    check.0.iter().all(|c| *c == 0.0)
}

/// One ULA step of a block under `target` with step τ: x ← x + τ s(x) + √(2τ) z.
/// Shared by [`Ula`] and [`Annealed`]. Returns whether all positions are finite.
pub(crate) fn ula_step(
    target: &dyn crate::target::Target,
    x: &mut Block,
    score: &mut Block,
    z: &mut Block,
    tau: f64,
    noise: bool,
    rng: &mut LaneRng,
) -> Result<bool> {
    target.eval(x, score, None)?;
    Ok(if noise {
        rng.fill_normal(z.data_mut());
        langevin_update(x.data_mut(), score.data(), z.data(), tau as f32, (2.0 * tau).sqrt() as f32)
    } else {
        drift_update(x.data_mut(), score.data(), tau as f32)
    })
}
