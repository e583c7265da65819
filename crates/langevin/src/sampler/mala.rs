//! The Metropolis-adjusted Langevin algorithm, with step-size adaptation by dual averaging.

use super::{MarkovKernel, StepInfo};
use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::particles::langevin_into;
use crate::rng::ParticleRng;
use crate::target::Target;
use crate::vmath::{LANES, V};

/// MALA: propose y = x + τ s(x) + √(2τ) z (a ULA step), accept with probability
/// min(1, α), α = p(y) q(x | y) / (p(x) q(y | x)), q(b | a) = N(b; a + τ s(a), 2τ I).
///
/// The Metropolis–Hastings test removes ULA's O(τ) bias: the chain leaves p exactly invariant
/// for any τ. For high-dimensional targets the optimal acceptance rate is about 0.574
/// (Roberts & Rosenthal 1998), which the driver's warm-up adaptation aims at.
pub struct Mala<'a> {
    target: &'a dyn Target,
}

impl<'a> Mala<'a> {
    /// MALA on `target`.
    pub fn new(target: &'a dyn Target) -> Self {
        Mala { target }
    }
}

/// State of one block under [`Mala`]: positions with their score and log-density, and scratch
/// for the proposal.
pub struct MalaState {
    x: Block,
    sx: Block,
    lx: Vec<f32>,
    y: Block,
    sy: Block,
    ly: Vec<f32>,
    z: Block,
    dist2: Vec<f32>,
    znorm2: Vec<f32>,
    u: Vec<f32>,
    /// All ones where the proposal was accepted.
    accept: Vec<u32>,
}

/// What a MALA step reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct MalaInfo {
    /// Real particles whose proposal was accepted.
    pub accepted: usize,
    /// Σ over real particles of min(1, α).
    pub accept_prob: f64,
    /// Every proposal (padding included) was finite, so the positions are.
    pub finite: bool,
}

impl StepInfo for MalaInfo {
    const METROPOLIZED: bool = true;
    fn accepted(&self) -> usize {
        self.accepted
    }
    fn accept_prob(&self) -> f64 {
        self.accept_prob
    }
    fn known_finite(&self) -> bool {
        self.finite
    }
}

impl MarkovKernel for Mala<'_> {
    type State = MalaState;
    type Info = MalaInfo;

    fn name(&self) -> &'static str {
        "mala"
    }
    fn dim(&self) -> usize {
        self.target.dim()
    }
    fn batch_hint(&self) -> usize {
        self.target.preferred_block_size()
    }

    fn init(&self, x: Block, _rng: &mut ParticleRng) -> Result<MalaState> {
        let (d, n, stride) = (x.dim(), x.len(), x.stride());
        let mut sx = Block::zeros(d, n);
        let mut lx = vec![0.0f32; stride];
        self.target.eval(&x, &mut sx, Some(&mut lx))?;
        if let Some(i) = (0..n).find(|&i| !lx[i].is_finite()) {
            return Err(invalid!(
                "the log-density at the initial position of a particle ({:?}) is {}; MALA needs a start where p > 0: choose another `init`",
                x.particle(i),
                lx[i]
            ));
        }
        Ok(MalaState {
            y: x.clone(),
            sy: sx.clone(),
            ly: lx.clone(),
            z: Block::zeros(d, n),
            x,
            sx,
            lx,
            dist2: vec![0.0; stride],
            znorm2: vec![0.0; stride],
            u: vec![0.0; stride],
            accept: vec![0; stride],
        })
    }

    fn step(&self, st: &mut MalaState, tau: f64, rng: &mut ParticleRng) -> Result<MalaInfo> {
        let (a, b) = (tau as f32, (2.0 * tau).sqrt() as f32);
        let (n, stride) = (st.x.len(), st.x.stride());
        rng.fill_normal(st.z.data_mut());
        let finite = langevin_into(st.y.data_mut(), st.x.data(), st.sx.data(), st.z.data(), a, b);
        self.target.eval(&st.y, &mut st.sy, Some(&mut st.ly))?;
        // ‖x − y − τ s(y)‖² (reverse move) and ‖z‖² (forward move: y − x − τ s(x) = √(2τ) z),
        // one pass over all coordinates.
        mala_norms(&mut st.dist2, &mut st.znorm2, st.x.data(), st.y.data(), st.sy.data(), st.z.data(), a);
        rng.fill_uniform(&mut st.u);
        // Positions stay finite when they were and every proposal is: the runner's scan is
        // needed only when some proposal was not.
        let mut info = MalaInfo { finite, ..Default::default() };
        for i in 0..stride {
            st.accept[i] = 0;
            if i >= n {
                continue;
            }
            let log_alpha =
                (st.ly[i] as f64 - st.lx[i] as f64) - st.dist2[i] as f64 / (4.0 * tau) + 0.5 * st.znorm2[i] as f64;
            if st.ly[i].is_finite() && log_alpha.is_finite() {
                info.accept_prob += log_alpha.min(0.0).exp();
                if (st.u[i] as f64).ln() < log_alpha {
                    st.accept[i] = u32::MAX;
                    info.accepted += 1;
                }
            }
        }
        select(st.x.data_mut(), st.y.data(), &st.accept);
        select(st.sx.data_mut(), st.sy.data(), &st.accept);
        select(&mut st.lx, &st.ly, &st.accept);
        Ok(info)
    }

    fn position<'s>(&self, st: &'s MalaState) -> &'s Block {
        &st.x
    }
}

/// Per particle, Σ_c (x − y − a·s_y)² and Σ_c z², over all coordinate rows (coordinates added
/// in order, so the sums do not depend on how the work is laid out).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn mala_norms(dist2: &mut [f32], znorm2: &mut [f32], x: &[f32], y: &[f32], sy: &[f32], z: &[f32], a: f32) {
    let stride = dist2.len();
    let rows = x.len() / stride;
    for j0 in (0..stride).step_by(LANES) {
        let (mut dd, mut zz) = (V::splat(0.0), V::splat(0.0));
        for c in 0..rows {
            let at = c * stride + j0;
            let r = V::splat(-a).mul_add(V::load(sy, at), V::load(x, at) - V::load(y, at));
            dd = r.mul_add(r, dd);
            let zc = V::load(z, at);
            zz = zc.mul_add(zc, zz);
        }
        dd.store(dist2, j0);
        zz.store(znorm2, j0);
    }
}

/// dst ← src in the columns whose mask is all ones (bit select, so values are copied exactly);
/// `dst` and `src` hold whole rows of `mask.len()` values.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn select(dst: &mut [f32], src: &[f32], mask: &[u32]) {
    let stride = mask.len();
    for (dr, sr) in dst.chunks_exact_mut(stride).zip(src.chunks_exact(stride)) {
        for j in 0..stride {
            dr[j] = f32::from_bits((sr[j].to_bits() & mask[j]) | (dr[j].to_bits() & !mask[j]));
        }
    }
}

/// Step-size adaptation by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, Alg. 5).
///
/// Each update takes the mean acceptance probability of one adaptation window (all particles,
/// a few steps) and moves log τ so the acceptance approaches the target. The averaged iterate
/// is used after warm-up. Parameters are Stan's: γ = 0.05, t₀ = 10, κ = 0.75, μ = log(10 τ₀).
#[derive(Clone, Debug)]
pub struct DualAveraging {
    target: f64,
    mu: f64,
    h_bar: f64,
    log_step: f64,
    log_step_bar: f64,
    m: usize,
}

impl DualAveraging {
    /// Start from step size `initial`, aiming at acceptance `target`.
    pub fn new(initial: f64, target: f64) -> Self {
        DualAveraging {
            target,
            mu: (10.0 * initial).ln(),
            h_bar: 0.0,
            log_step: initial.ln(),
            log_step_bar: initial.ln(),
            m: 0,
        }
    }

    /// Feed the mean acceptance probability of the last window; returns the next step size.
    pub fn update(&mut self, accept_prob: f64) -> f64 {
        const GAMMA: f64 = 0.05;
        const T0: f64 = 10.0;
        const KAPPA: f64 = 0.75;
        self.m += 1;
        let m = self.m as f64;
        let w = 1.0 / (m + T0);
        self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - accept_prob);
        self.log_step = self.mu - m.sqrt() / GAMMA * self.h_bar;
        let eta = m.powf(-KAPPA);
        self.log_step_bar = eta * self.log_step + (1.0 - eta) * self.log_step_bar;
        self.log_step.exp()
    }

    /// The step size to use after warm-up.
    pub fn final_step(&self) -> f64 {
        self.log_step_bar.exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_averaging_finds_the_target_acceptance_of_a_known_curve() {
        // A made-up monotone acceptance curve: acc(τ) = exp(-τ); target 0.574 → τ* = 0.555.
        let mut da = DualAveraging::new(0.01, 0.574);
        let mut tau: f64 = 0.01;
        for _ in 0..200 {
            tau = da.update((-tau).exp());
        }
        let t = da.final_step();
        assert!((t - 0.574f64.ln().abs()).abs() < 0.02, "{t} ({tau})");
    }
}
