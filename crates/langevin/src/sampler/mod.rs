//! Samplers of the Langevin family, and the runners that put them on many particles.
//!
//! Two shapes, as in the Python libraries the project learns from:
//!
//! - **Stationary Markov kernels** ([`MarkovKernel`], BlackJAX style): a small state per block
//!   of particles, `init`, and `step(state, step_size, rng) -> Info` with a typed info record
//!   per kernel. [`run`] owns the rest (blocks, threads, per-particle random streams, warm-up
//!   and step-size adaptation, thinning, trajectories, the NaN guard, progress).
//!   - [`Ula`]: the seeds' update x ← x + τ s(x) + √(2τ) z (seed 001, eq. 1), optionally
//!     without noise (gradient ascent, which collapses onto the nearest mode).
//!   - [`Mala`]: ULA as a proposal, corrected by a Metropolis–Hastings test, so the stationary
//!     law is exact; step size adapted towards acceptance 0.574 during warm-up.
//!   - [`Underdamped`]: m ẍ = −∇U − γẋ + √(2γkT) η by BAOAB, OBABO or Euler–Maruyama.
//!   - SGLD (`crate::posterior::Sgld`): Langevin on minibatch gradients.
//! - **Schedule-driven samplers** (k-diffusion style): one short function over a score field
//!   and a noise schedule, e.g. [`annealed_langevin`] (Song & Ermon 2019, Alg. 1), run on
//!   every block by [`map_blocks`] ([`run_annealed`] does both).
//!
//! Randomness is per particle ([`crate::rng::ParticleRng`]): particle i's start and noise are a
//! function of (seed, i, step) only, so the first 1,000 particles of a 100,000-particle run are
//! the 1,000-particle run, bit for bit, for any block size and thread count. The one place
//! where particles interact is MALA's warm-up adaptation, which pools the acceptance of the
//! chains in the blocks holding the first 4,096 particles (the pilot) to set one step size (as
//! Stan and BlackJAX's window adaptation do for one chain); with adaptation on, a prefix of a
//! run is the smaller run only if the step size is fixed. A [`Shard`] of a run (a contiguous
//! range of its blocks, the pilot run beside it during warm-up) is that part of the run, bit
//! for bit, for every sampler.

mod annealed;
pub(crate) mod blocks;
mod driver;
mod init;
mod mala;
mod ula;
mod underdamped;

pub use crate::ladder::{GAMMA_CAP, Ladder, contraction_step_ratio, ncsnv2_gamma, ncsnv2_step_ratio, variance_ratio};
pub use annealed::{AnnealConfig, AnnealOptions, AnnealStep, annealed_langevin, run_annealed};
pub use blocks::{Shard, auto_block_size, block_size, map_blocks, map_blocks_in, start_block};
pub use driver::{RunConfig, RunResult, run};
pub use init::Init;
pub use mala::{DualAveraging, Mala, MalaInfo, MalaState};
pub use ula::{Ula, UlaInfo, UlaState};
pub use underdamped::{Scheme, Underdamped, UnderdampedInfo, UnderdampedState};

use crate::block::Block;
use crate::error::{Param, Result, Suggestion};
use crate::rng::ParticleRng;

/// What one step of a kernel reports (each kernel has its own record).
pub trait StepInfo: Copy + Send {
    /// Whether the kernel accepts or rejects proposals (then acceptance is reported and the
    /// step size can be adapted).
    const METROPOLIZED: bool = false;
    /// Real particles whose proposal was accepted.
    fn accepted(&self) -> usize {
        0
    }
    /// Sum over real particles of the acceptance probability min(1, α).
    fn accept_prob(&self) -> f64 {
        0.0
    }
    /// True when every position (padding included) is known to be finite after the step, so
    /// the runner can skip its own scan.
    fn known_finite(&self) -> bool {
        false
    }
}

/// A stationary sampler: per-block state plus `init` and `step`.
pub trait MarkovKernel: Sync {
    /// State of one block of particles.
    type State: Send;
    /// What a step reports.
    type Info: StepInfo;
    /// Name used in reports (`ula`, `mala`, `baoab`, ...).
    fn name(&self) -> &'static str;
    /// Dimension of the particles.
    fn dim(&self) -> usize;
    /// Build the state from initial positions (`rng`: the block's per-particle streams, e.g.
    /// for initial velocities).
    fn init(&self, x: Block, rng: &mut ParticleRng) -> Result<Self::State>;
    /// Advance every particle of the block by one step of size `step_size` (τ, or Δt).
    fn step(&self, state: &mut Self::State, step_size: f64, rng: &mut ParticleRng) -> Result<Self::Info>;
    /// Current positions.
    fn position<'a>(&self, state: &'a Self::State) -> &'a Block;
    /// Σ m v² over the real particles and coordinates of the block, for kernels with velocities
    /// (the kinetic temperature is Σ m v² / (N d)).
    fn kinetic_sum(&self, _state: &Self::State) -> Option<f64> {
        None
    }
    /// Particles per score evaluation the kernel's field prefers (see
    /// [`crate::field::Score::batch_hint`]).
    fn batch_hint(&self) -> usize {
        256
    }
    /// What to suggest when a step at `step_size` produced NaN.
    fn suggest(&self, _state: &Self::State, step_size: f64) -> Suggestion {
        Suggestion { param: Param::StepSize, value: step_size / 10.0, why: "a tenth of the current one" }
    }
}

/// One ULA step of a block at noise level σ: x ← x + τ s(x, σ) + √(2τ) z. Returns whether all
/// positions are finite.
pub(crate) fn ula_step(
    target: &dyn crate::target::Target,
    x: &mut Block,
    score: &mut Block,
    z: &mut Block,
    tau: f64,
    noise: bool,
    rng: &mut ParticleRng,
) -> Result<bool> {
    target.eval(x, score, None)?;
    Ok(if noise {
        rng.fill_normal(z.data_mut());
        crate::particles::langevin_update(x.data_mut(), score.data(), z.data(), tau as f32, (2.0 * tau).sqrt() as f32)
    } else {
        crate::particles::drift_update(x.data_mut(), score.data(), tau as f32)
    })
}
