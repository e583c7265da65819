//! The unadjusted Langevin algorithm, exactly as the seeds write it.

use super::{MarkovKernel, StepInfo, ula_step};
use crate::block::Block;
use crate::error::Result;
use crate::rng::ParticleRng;
use crate::target::Target;

/// ULA: x ← x + τ ∇log p(x) + √(2τ) z, z ~ N(0, I).
///
/// This is the Euler–Maruyama discretization of the overdamped Langevin equation
/// dx = ∇log p(x) dt + √2 dW (seed 000). Its stationary law differs from p by O(τ) (for a
/// Gaussian of variance v it is N(·, v/(1 − τ/2v))); [`super::Mala`] removes that bias.
///
/// With `noise = false` the update is gradient ascent on log p, and every particle climbs to the
/// mode of its basin and stays there (seed 001's first figure): that is optimization, not
/// sampling.
pub struct Ula<'a> {
    target: &'a dyn Target,
    noise: bool,
}

/// State of one block under [`Ula`].
pub struct UlaState {
    x: Block,
    score: Block,
    z: Block,
}

/// What a ULA step reports.
#[derive(Clone, Copy, Debug)]
pub struct UlaInfo {
    /// Every new position is finite.
    pub finite: bool,
}

impl StepInfo for UlaInfo {
    fn known_finite(&self) -> bool {
        self.finite
    }
}

impl<'a> Ula<'a> {
    /// ULA on `target`; `noise = false` gives noise-free gradient ascent.
    pub fn new(target: &'a dyn Target, noise: bool) -> Self {
        Ula { target, noise }
    }
}

impl MarkovKernel for Ula<'_> {
    type State = UlaState;
    type Info = UlaInfo;

    fn name(&self) -> &'static str {
        "ula"
    }
    fn dim(&self) -> usize {
        self.target.dim()
    }
    fn init(&self, x: Block, _rng: &mut ParticleRng) -> Result<UlaState> {
        let (d, n) = (x.dim(), x.len());
        Ok(UlaState { x, score: Block::zeros(d, n), z: Block::zeros(d, n) })
    }
    fn step(&self, st: &mut UlaState, step_size: f64, rng: &mut ParticleRng) -> Result<UlaInfo> {
        let finite = ula_step(self.target, &mut st.x, &mut st.score, &mut st.z, step_size, self.noise, rng)?;
        Ok(UlaInfo { finite })
    }
    fn position<'s>(&self, st: &'s UlaState) -> &'s Block {
        &st.x
    }
    fn batch_hint(&self) -> usize {
        self.target.preferred_block_size()
    }
}
