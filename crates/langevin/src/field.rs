//! The two currencies of the toolkit: a noise-conditioned **score** s(x, σ) and a
//! time-dependent **vector field** v(t, x).
//!
//! - [`Score`]: s(x, σ) ≈ ∇ₓ log p_σ(x) with p_σ = p ∗ N(0, σ²I); σ = 0 is the clean density.
//!   σ is an argument of the evaluation (k-diffusion's `model(x, sigma)`, score_sde's
//!   `score_fn(x, t)`), so a sampler may ask for a new σ at every step at no extra cost. Every
//!   [`Target`] is a `Score` (σ = 0 always; Gaussian mixtures exactly for every σ ≥ 0, because
//!   Σₖ + σ²I stays in the family); a trained network is one too.
//! - [`VectorField`]: dx/dt = v(t, x), what ODE solvers integrate (a flow-matching velocity, or
//!   the probability-flow ODE of a score, [`VeProbabilityFlow`]). It is a different trait on
//!   purpose: a velocity is not a score, and a Langevin sampler must not accept one. This does
//!   not compile:
//!
//! ```compile_fail
//! use langevin::block::Block;
//! use langevin::field::{Score, VectorField, VeProbabilityFlow};
//! use langevin::sampler::annealed_langevin;
//! use langevin::sampler::{AnnealConfig, Ladder};
//! use langevin::rng::ParticleRng;
//! fn run(v: &dyn VectorField<Block>, x: &mut Block, cfg: &AnnealConfig, rng: &mut ParticleRng) {
//!     // a velocity field is not a Score: annealed Langevin refuses it at compile time
//!     annealed_langevin(v, x, cfg, true, rng, &mut |_| Ok(())).unwrap();
//! }
//! ```
//!
//! Both are generic over the particle storage ([`Particles`]): [`Block`] on the CPU today, a
//! device tensor later.

use crate::block::Block;
use crate::error::Result;
use crate::particles::Particles;
use crate::target::Target;

/// A noise-conditioned score field s(x, σ) ≈ ∇ₓ log p_σ(x), p_σ = p ∗ N(0, σ²I).
pub trait Score<X: Particles = Block>: Send + Sync {
    /// Dimension d.
    fn dim(&self) -> usize;
    /// A short description for reports and error messages.
    fn describe(&self) -> String;
    /// The noise levels at which the field is defined, inclusive: `(0, 0)` for a density known
    /// only at σ = 0 (a Boltzmann target), `(0, ∞)` for an exact Gaussian mixture, the levels
    /// a network accepts.
    fn sigma_range(&self) -> (f64, f64);
    /// Write s(x, σ) of every particle of `x` into `out` (same shape).
    fn score(&self, x: &X, sigma: f64, out: &mut X) -> Result<()>;
    /// Tweedie's denoiser D(x, σ) = E[x₀ | x] = x + σ² s(x, σ). Denoiser- or noise-headed
    /// networks may override it (and derive the score) to keep precision at small σ.
    fn denoise(&self, x: &X, sigma: f64, out: &mut X) -> Result<()> {
        self.score(x, sigma, out)?;
        out.scale_add((sigma * sigma) as f32, 1.0, x);
        Ok(())
    }
    /// Particles per evaluation: a cache-sized block for analytic fields, everything at once
    /// for a network (the block runner reads it).
    fn batch_hint(&self) -> usize {
        256
    }
}

/// Every target is a score field at the noise levels it knows (see [`Target::noise_range`]).
impl<T: Target + ?Sized> Score<Block> for T {
    fn dim(&self) -> usize {
        Target::dim(self)
    }
    fn describe(&self) -> String {
        self.name()
    }
    fn sigma_range(&self) -> (f64, f64) {
        self.noise_range()
    }
    fn score(&self, x: &Block, sigma: f64, out: &mut Block) -> Result<()> {
        self.score_at(x, sigma, out)
    }
    fn batch_hint(&self) -> usize {
        self.preferred_block_size()
    }
}

/// Check that `sigma` lies in the field's range; the error names the field and the range.
pub fn check_sigma<X: Particles, S: Score<X> + ?Sized>(s: &S, sigma: f64) -> Result<()> {
    let (lo, hi) = s.sigma_range();
    if sigma.is_finite() && sigma >= lo && sigma <= hi {
        return Ok(());
    }
    Err(sigma_error(&s.describe(), (lo, hi), sigma))
}

/// The error for a noise level outside a field's range.
pub fn sigma_error(name: &str, (lo, hi): (f64, f64), sigma: f64) -> crate::Error {
    crate::Error::invalid(
        "sigma",
        if hi == 0.0 {
            format!(
                "'{name}' knows its score only at σ = 0, not at σ = {sigma}: the perturbed score s(x, σ) is known exactly only \
                 for Gaussians and Gaussian mixtures (and trained score models); use a sampler that needs no noise levels"
            )
        } else {
            format!("σ = {sigma} is outside the range [{lo}, {hi}] where '{name}' is defined")
        },
    )
}

/// A time-dependent vector field dx/dt = v(t, x), what ODE solvers integrate.
pub trait VectorField<X: Particles = Block>: Send + Sync {
    /// Dimension d.
    fn dim(&self) -> usize;
    /// Write v(t, x) of every particle of `x` into `out`.
    fn velocity(&self, t: f64, x: &X, out: &mut X) -> Result<()>;
    /// Particles per evaluation (see [`Score::batch_hint`]).
    fn batch_hint(&self) -> usize {
        256
    }
}

/// The probability-flow ODE of the variance-exploding process x_σ = x₀ + σ z, with time t = σ
/// (Song et al. 2021, eq. 13; Karras et al. 2022, eq. 4 with s(t) = 1, σ(t) = t):
/// dx/dσ = −σ s(x, σ). Integrated from σ_max down to 0 it carries N(x₀-law ∗ N(0, σ_max²))
/// onto the data law deterministically.
pub struct VeProbabilityFlow<'a, S: ?Sized> {
    /// The score the flow follows.
    pub score: &'a S,
}

impl<X: Particles, S: Score<X> + ?Sized> VectorField<X> for VeProbabilityFlow<'_, S> {
    fn dim(&self) -> usize {
        self.score.dim()
    }
    fn velocity(&self, t: f64, x: &X, out: &mut X) -> Result<()> {
        self.score.score(x, t, out)?;
        out.scale_add(-t as f32, 0.0, x);
        Ok(())
    }
    fn batch_hint(&self) -> usize {
        self.score.batch_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::ParticleRng;
    use crate::target::{Covariance, GaussianMixture};

    #[test]
    fn denoiser_is_tweedie_and_the_flow_carries_noise_to_the_data() {
        // p = N(2, 0.25): p_σ = N(2, 0.25 + σ²), D(x, σ) = 2 + 0.25 (x − 2)/(0.25 + σ²).
        let g = GaussianMixture::gaussian(vec![2.0], Covariance::Isotropic(0.25)).unwrap();
        let n = 4096;
        let mut x = Block::zeros(1, n);
        ParticleRng::new(1, 0, x.stride()).fill_normal(x.data_mut());
        let sigma_max = 20.0f64;
        let scale = (0.25 + sigma_max * sigma_max).sqrt() as f32;
        x.data_mut().iter_mut().for_each(|v| *v = 2.0 + scale * *v);
        let mut d = x.zeros_like();
        Score::denoise(&g, &x, 3.0, &mut d).unwrap();
        for i in 0..8 {
            let want = 2.0 + 0.25 * (x.row(0)[i] as f64 - 2.0) / 9.25;
            assert!((d.row(0)[i] as f64 - want).abs() < 1e-4 * want.abs().max(1.0), "{i}");
        }
        // Heun on dx/dσ = −σ s(x, σ) from σ_max to 0: for a Gaussian the flow is linear, so the
        // end variance is 0.25 to the integrator's accuracy (Euler with 400 geometric steps
        // leaves about 1%), and the mean stays 2.
        let flow = VeProbabilityFlow { score: &g };
        let sig: Vec<f64> = (0..=400)
            .map(|i| if i == 400 { 0.0 } else { sigma_max * (0.01f64 / sigma_max).powf(i as f64 / 399.0) })
            .collect();
        let (mut v0, mut v1, mut y) = (x.zeros_like(), x.zeros_like(), x.zeros_like());
        for w in sig.windows(2) {
            let h = (w[1] - w[0]) as f32;
            flow.velocity(w[0], &x, &mut v0).unwrap();
            if w[1] == 0.0 {
                x.drift_add(h, &v0);
                continue;
            }
            y.copy_from(&x);
            y.drift_add(h, &v0);
            flow.velocity(w[1], &y, &mut v1).unwrap();
            x.drift_add(0.5 * h, &v0);
            x.drift_add(0.5 * h, &v1);
        }
        let xs = &x.row(0)[..n];
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        // 5 standard errors of the sample mean and variance of N(2, 0.25) with n draws.
        assert!((mean - 2.0).abs() < 5.0 * (0.25 / n as f64).sqrt(), "mean {mean}");
        assert!((var - 0.25).abs() < 5.0 * 0.25 * (2.0 / n as f64).sqrt(), "variance {var}");
    }

    #[test]
    fn a_density_known_only_at_zero_noise_refuses_other_levels() {
        let t = crate::target::builtin::build("double-well", &[]).unwrap();
        assert_eq!(Score::sigma_range(t.as_ref()), (0.0, 0.0));
        let e = check_sigma(t.as_ref(), 0.5).unwrap_err();
        assert_eq!(e.field(), Some("sigma"));
        assert!(e.to_string().contains("only at σ = 0"), "{e}");
    }
}
