//! [`Particles`]: what every sampler and solver updates in place, and its CPU implementation
//! on [`Block`].
//!
//! Schedule-driven samplers (annealed Langevin today; reverse SDEs, ODE solvers, DDIM and EDM
//! next) are written once over this trait, so the same function runs on a host [`Block`] and,
//! later, on a device tensor (the images issue implements `Particles` for a candle tensor).
//! The operations are the fused, vectorized kernels the MCMC samplers already use: each is one
//! pass over memory, and the update kernels report whether every new value is finite, so the
//! NaN guard costs no extra pass.

use crate::block::Block;
use crate::rng::ParticleRng;
use crate::vmath::{LANES, V};

/// A batch of particles in ℝᵈ that samplers update in place.
pub trait Particles: Send + Sized {
    /// The per-particle random streams that go with the batch (for [`Block`]: one generator per
    /// particle, [`ParticleRng`]).
    type Noise: Send;
    /// Number of real particles.
    fn len(&self) -> usize;
    /// True when there is no particle.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Coordinates per particle.
    fn dim(&self) -> usize;
    /// A batch of the same shape, all zeros.
    fn zeros_like(&self) -> Self;
    /// self ← x.
    fn copy_from(&mut self, x: &Self);
    /// self ← a·self + b·x.
    fn scale_add(&mut self, a: f32, b: f32, x: &Self);
    /// self ← self + a·s + b·z; false when some new value is not finite.
    fn langevin_add(&mut self, a: f32, s: &Self, b: f32, z: &Self) -> bool;
    /// self ← self + a·s; false when some new value is not finite.
    fn drift_add(&mut self, a: f32, s: &Self) -> bool;
    /// Fill with independent standard normals, each particle from its own stream.
    fn fill_normal(&mut self, rng: &mut Self::Noise);
    /// Index of the first real particle with a non-finite coordinate.
    fn first_non_finite(&self) -> Option<usize>;
    /// The scaled RMS norm of adaptive ODE solvers (Hairer's): √(mean over real entries of
    /// (eᵢ/(atol + rtol·max(|aᵢ|, |bᵢ|)))²), with `e` = self.
    fn error_norm(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64;
}

impl Particles for Block {
    type Noise = ParticleRng;
    fn len(&self) -> usize {
        Block::len(self)
    }
    fn dim(&self) -> usize {
        Block::dim(self)
    }
    fn zeros_like(&self) -> Self {
        Block::zeros(Block::dim(self), Block::len(self))
    }
    fn copy_from(&mut self, x: &Self) {
        self.data_mut().copy_from_slice(x.data());
    }
    fn scale_add(&mut self, a: f32, b: f32, x: &Self) {
        scale_add(self.data_mut(), a, b, x.data());
    }
    fn langevin_add(&mut self, a: f32, s: &Self, b: f32, z: &Self) -> bool {
        langevin_update(self.data_mut(), s.data(), z.data(), a, b)
    }
    fn drift_add(&mut self, a: f32, s: &Self) -> bool {
        drift_update(self.data_mut(), s.data(), a)
    }
    fn fill_normal(&mut self, rng: &mut ParticleRng) {
        rng.fill_normal(self.data_mut());
    }
    fn first_non_finite(&self) -> Option<usize> {
        Block::first_non_finite(self)
    }
    fn error_norm(&self, a: &Self, b: &Self, atol: f64, rtol: f64) -> f64 {
        let n = Block::len(self);
        let mut sum = 0.0f64;
        for c in 0..Block::dim(self) {
            for ((e, x), y) in self.row(c)[..n].iter().zip(&a.row(c)[..n]).zip(&b.row(c)[..n]) {
                let sc = atol + rtol * (*x as f64).abs().max((*y as f64).abs());
                sum += (*e as f64 / sc).powi(2);
            }
        }
        (sum / (n * Block::dim(self)).max(1) as f64).sqrt()
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

/// y ← x + a·s + b·z: [`langevin_update`] into another buffer (MALA's proposal, without a copy;
/// same rounding). Returns whether every proposed value is finite.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn langevin_into(y: &mut [f32], x: &[f32], s: &[f32], z: &[f32], a: f32, b: f32) -> bool {
    let mut check = V::splat(0.0);
    for j0 in (0..y.len()).step_by(LANES) {
        let new = V::splat(b).mul_add(V::load(z, j0), V::splat(a).mul_add(V::load(s, j0), V::load(x, j0)));
        new.store(y, j0);
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

/// x ← a·x + b·y.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub(crate) fn scale_add(x: &mut [f32], a: f32, b: f32, y: &[f32]) {
    for j0 in (0..x.len()).step_by(LANES) {
        V::splat(b).mul_add(V::load(y, j0), V::splat(a) * V::load(x, j0)).store(x, j0);
    }
}
