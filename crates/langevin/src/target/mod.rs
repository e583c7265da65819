//! Targets: densities known up to a constant, through their log-density and their score
//! s(x) = ∇ₓ log p(x).
//!
//! One currency runs through the whole toolkit: the (noise-conditioned) score. A [`Target`]
//! gives s(x) = s(x, 0); targets that know the density convolved with N(0, σ²I) exactly
//! (Gaussians and Gaussian mixtures: add σ² to every covariance) also give s(x, σ) through
//! [`Target::score_at`] (every target is a [`crate::field::Score`]), which is what annealed
//! Langevin and the diffusion samplers need. Samplers never ask where a score comes from.
//!
//! - [`GaussianMixture`]: Gaussians and mixtures with isotropic, diagonal or full covariances.
//! - [`Boltzmann`]: p ∝ exp(−U(x)/kT) for a [`Potential`] U, e.g. an [`ExpressionPotential`]
//!   typed by the user.
//! - [`builtin`]: the named benchmark targets (`ncsn-toy`, `double-well`, `muller-brown`, ...).
//! - [`spec`]: targets from a name, `name:key=value,...` or a TOML file.

pub mod boltzmann;
pub mod builtin;
pub mod expression;
pub mod mixture;
pub mod quadrature;
pub mod spec;

pub use boltzmann::{Boltzmann, Potential};
pub use expression::ExpressionPotential;
pub use mixture::{Covariance, GaussianMixture};
pub use quadrature::Marginal;
pub use spec::{TargetSpec, load_target, load_target_toml};

use crate::block::Block;
use crate::error::Result;
use crate::rng::LaneRng;
use crate::sampler::Init;
use ndarray::Array2;
use std::sync::Arc;

/// Length scales of a target, used to pick default step sizes and noise ladders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scales {
    /// The largest distance that matters for mixing: between the two farthest modes plus the
    /// spread of the widest one (NCSNv2 sets σ₁ to the largest distance between data points).
    pub largest: f64,
    /// The smallest length scale of the density: the narrowest standard deviation of a mode.
    pub smallest: f64,
}

/// A probability density on ℝᵈ known through its score and (unnormalized) log-density.
///
/// Implementations evaluate a whole [`Block`] of particles per call (coordinate-major), so
/// analytic targets can vectorize over particles and learned targets can batch.
pub trait Target: Send + Sync {
    /// Dimension d.
    fn dim(&self) -> usize;

    /// A short description for reports, e.g. `ncsn-toy` or `gmm(2 components, d=2)`.
    fn name(&self) -> String;

    /// Write the score s(x) = ∇ log p(x) of every particle of `x` into `score` (same shape).
    /// When `log_density` is given (length `x.stride()`), also write log p(x) up to a constant
    /// that does not depend on x.
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()>;

    /// Whether [`Target::eval`] can write log p: `false` for targets known only through their
    /// score (a learned score, a user's score function), which then refuse a `log_density`
    /// request with a message naming the samplers that need only the score.
    fn has_log_density(&self) -> bool {
        true
    }

    /// The score at one point in double precision, when the target can compute it that way;
    /// returns `false` otherwise. Analysis (Newton iteration on the score, Jacobians by
    /// differences) needs more than the samplers' `f32`.
    fn score_f64(&self, _x: &[f64], _score: &mut [f64]) -> bool {
        false
    }

    /// The Jacobian of the score ∇s(x) (the Hessian of log p), row-major d × d with
    /// `jac[i*d + j]` = ∂s_i/∂x_j, when known in closed form; returns `false` otherwise (analysis
    /// then differentiates the score numerically).
    fn score_jacobian(&self, _x: &[f64], _jac: &mut [f64]) -> bool {
        false
    }

    /// The noise levels σ at which [`Target::score_at`] knows the score of the perturbed density
    /// p_σ = p ∗ N(0, σ²I), inclusive: `(0, 0)` (the default) when only σ = 0 is known,
    /// `(0, ∞)` for Gaussians and mixtures (Σₖ + σ²I, exactly).
    fn noise_range(&self) -> (f64, f64) {
        (0.0, 0.0)
    }

    /// The score of the perturbed density s(x, σ) = ∇ log p_σ(x) for σ in
    /// [`Target::noise_range`]; σ = 0 is [`Target::eval`]'s score. This is how the
    /// [`crate::field::Score`] seam sees a target: σ is an argument, not a rebuilt target.
    fn score_at(&self, x: &Block, sigma: f64, out: &mut Block) -> Result<()> {
        if sigma == 0.0 {
            return self.eval(x, out, None);
        }
        Err(crate::field::sigma_error(&self.name(), self.noise_range(), sigma))
    }

    /// tr ∇ₓs(x, σ) (the Laplacian of log p_σ) of every particle of `x` into `out` (length
    /// `x.len()`), when known in closed form; returns `Ok(false)` otherwise (the likelihood
    /// then differentiates the score numerically).
    fn score_divergence_at(&self, _x: &Block, _sigma: f64, _out: &mut [f64]) -> Result<bool> {
        Ok(false)
    }

    /// The target as a Gaussian mixture, when it is one (mode weights, responsibilities).
    fn mixture(&self) -> Option<&GaussianMixture> {
        None
    }

    /// The exact marginal distribution of coordinate `coord`, when known.
    fn marginal(&self, _coord: usize) -> Option<Marginal> {
        None
    }

    /// `n` exact, independent samples, when the target can be sampled directly (used as the
    /// reference for distances between sample sets).
    fn sample_exact(&self, _n: usize, _rng: &mut LaneRng) -> Option<Array2<f32>> {
        None
    }

    /// Exact mean and covariance, when known.
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        None
    }

    /// Exact mean and per-coordinate variances, when known: what [`Target::moments`] gives
    /// without its d × d matrix (override it where d can be large).
    fn mean_and_variances(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.moments().map(|(m, c)| (m, c.diag().to_vec()))
    }

    /// Length scales, when known (default step sizes and annealing ladders come from them).
    fn scales(&self) -> Option<Scales> {
        None
    }

    /// A step size for ULA and MALA that works for this target (overdamped units: the τ of
    /// x ← x + τ s(x) + √(2τ) z).
    fn default_step_size(&self) -> f64 {
        self.scales().map_or(0.01, |s| 0.05 * s.smallest * s.smallest)
    }

    /// Where particles start by default: a region that covers the target's mass.
    fn default_init(&self) -> Init {
        match self.mean_and_variances() {
            Some((mean, var)) => covering_region(&mean, &var),
            None => Init::Gaussian { mean: vec![0.0; self.dim()], std: 1.0 },
        }
    }

    /// The temperature kT of a Boltzmann target p ∝ exp(−U/kT). Other densities return `None`
    /// and are treated as U = −log p at kT = 1 (so the force −∇U is the score).
    fn temperature(&self) -> Option<f64> {
        None
    }

    /// The same potential at temperature `kt`, for Boltzmann targets.
    fn at_temperature(&self, _kt: f64) -> Option<Arc<dyn Target>> {
        None
    }

    /// Names of the coordinates (CSV headers): `x0, x1, ...` unless the target names them.
    fn coordinate_names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("x{i}")).collect()
    }

    /// Preferred number of particles per block: analytic targets want a few hundred (the block
    /// stays in cache across steps); expensive batched models want one large block per step.
    fn preferred_block_size(&self) -> usize {
        256
    }
}

/// Evaluate a target given point by point: `f(x, grad)` returns log p(x) and writes ∇ log p(x).
/// Padding columns get a zero score.
pub(crate) fn eval_pointwise(
    x: &Block,
    score: &mut Block,
    mut log_density: Option<&mut [f32]>,
    f: impl Fn(&[f64], &mut [f64]) -> f64,
) {
    let d = x.dim();
    let mut point = vec![0.0f64; d];
    let mut grad = vec![0.0f64; d];
    for i in 0..x.len() {
        for (c, p) in point.iter_mut().enumerate() {
            *p = x.row(c)[i] as f64;
        }
        let lp = f(&point, &mut grad);
        for (c, g) in grad.iter().enumerate() {
            score.row_mut(c)[i] = *g as f32;
        }
        if let Some(l) = log_density.as_deref_mut() {
            l[i] = lp as f32;
        }
    }
    for c in 0..d {
        score.row_mut(c)[x.len()..].fill(0.0);
    }
    if let Some(l) = log_density {
        l[x.len()..].fill(0.0);
    }
}

/// A uniform box covering the mass of a density with these means and variances: every mean
/// ± 3 of the largest standard deviation (the default start of targets with known moments).
pub fn covering_region(mean: &[f64], var: &[f64]) -> Init {
    let spread = var.iter().cloned().fold(0.0, f64::max).sqrt();
    let lo = mean.iter().map(|m| m - 3.0 * spread).fold(f64::INFINITY, f64::min);
    let hi = mean.iter().map(|m| m + 3.0 * spread).fold(f64::NEG_INFINITY, f64::max);
    Init::Uniform { lo, hi }
}

/// Score and log-density of a set of points given as an N × d array (convenience for
/// analysis and tests; samplers work on blocks).
pub fn eval_rows(target: &dyn Target, points: ndarray::ArrayView2<f32>) -> Result<(Array2<f32>, Vec<f32>)> {
    let (n, d) = points.dim();
    let mut scores = Array2::zeros((n, d));
    let mut logp = Vec::with_capacity(n);
    let chunk = 256;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let block = Block::from_rows(points.slice(ndarray::s![start..end, ..]));
        let mut s = Block::zeros(d, end - start);
        let mut l = vec![0.0f32; block.stride()];
        target.eval(&block, &mut s, Some(&mut l))?;
        s.write_rows(scores.slice_mut(ndarray::s![start..end, ..]));
        logp.extend_from_slice(&l[..end - start]);
        start = end;
    }
    Ok((scores, logp))
}
