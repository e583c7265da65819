//! Boltzmann targets: p(x) ∝ exp(−U(x)/kT) for a potential energy U at temperature kT.
//!
//! This is the bridge of seed 000: the overdamped Langevin equation dx = −∇U/γ dt + √(2kT/γ) dW
//! has the Boltzmann distribution as its stationary law, and with log p = −U/kT its
//! Euler–Maruyama step is exactly the sampler x ← x + τ∇log p(x) + √(2τ) z with τ = kT·Δt/γ.

use super::{Marginal, Scales, Target, eval_pointwise};
use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::LaneRng;
use crate::sampler::Init;
use ndarray::Array2;
use std::sync::Arc;

/// A potential energy U: ℝᵈ → ℝ with its gradient.
pub trait Potential: Send + Sync {
    /// Dimension d.
    fn dim(&self) -> usize;
    /// A short description for reports.
    fn name(&self) -> String;
    /// U(x); also writes ∇U(x) into `grad`.
    fn energy_grad(&self, x: &[f64], grad: &mut [f64]) -> f64;
    /// Coordinate names (CSV headers).
    fn coordinate_names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("x{i}")).collect()
    }
}

/// p(x) ∝ exp(−U(x)/kT).
pub struct Boltzmann<P: Potential> {
    potential: Arc<P>,
    kt: f64,
    init: Option<Init>,
    scales: Option<Scales>,
    name: Option<String>,
}

impl<P: Potential + 'static> Boltzmann<P> {
    /// The Boltzmann distribution of `potential` at temperature `kt` (> 0, in energy units).
    pub fn new(potential: P, kt: f64) -> Result<Self> {
        if !kt.is_finite() || kt <= 0.0 {
            return Err(invalid!("temperature kT = {kt}; it must be positive and finite"));
        }
        Ok(Boltzmann { potential: Arc::new(potential), kt, init: None, scales: None, name: None })
    }
    /// Set the default initial distribution.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = Some(init);
        self
    }
    /// Set the length scales (used for default step sizes and noise ladders).
    pub fn with_scales(mut self, scales: Scales) -> Self {
        self.scales = Some(scales);
        self
    }
    /// Set the name shown in reports.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The temperature kT.
    pub fn temperature(&self) -> f64 {
        self.kt
    }
    /// The potential U.
    pub fn potential(&self) -> &P {
        &self.potential
    }
    /// U(x) at one point.
    pub fn energy(&self, x: &[f64]) -> f64 {
        let mut g = vec![0.0; x.len()];
        self.potential.energy_grad(x, &mut g)
    }
    fn tabulated(&self) -> Option<Marginal> {
        if self.potential.dim() != 1 {
            return None;
        }
        let (center, scale) = match self.default_init() {
            Init::Uniform { lo, hi } => (0.5 * (lo + hi), ((hi - lo) / 10.0).max(0.1)),
            Init::Gaussian { mean, std } => (mean[0], std.max(0.1)),
            _ => (0.0, 1.0),
        };
        let log_p = |x: f64| {
            let mut g = [0.0];
            -self.potential.energy_grad(&[x], &mut g) / self.kt
        };
        Some(Marginal::tabulate(log_p, center, scale, 40_001))
    }
}

impl<P: Potential + 'static> Target for Boltzmann<P> {
    fn dim(&self) -> usize {
        self.potential.dim()
    }
    fn name(&self) -> String {
        let base = self.name.clone().unwrap_or_else(|| self.potential.name());
        format!("{base} at kT={}", self.kt)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let inv_kt = 1.0 / self.kt;
        eval_pointwise(x, score, log_density, |p, g| {
            let u = self.potential.energy_grad(p, g);
            for v in g.iter_mut() {
                *v *= -inv_kt;
            }
            -u * inv_kt
        });
        Ok(())
    }
    fn score_f64(&self, x: &[f64], score: &mut [f64]) -> bool {
        self.potential.energy_grad(x, score);
        score.iter_mut().for_each(|v| *v /= -self.kt);
        true
    }
    fn marginal(&self, coord: usize) -> Option<Marginal> {
        if coord == 0 { self.tabulated() } else { None }
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let m = self.tabulated()?;
        Some(Array2::from_shape_fn((n, 1), |_| m.sample(rng) as f32))
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let m = self.tabulated()?;
        Some((vec![m.mean()], Array2::from_elem((1, 1), m.variance())))
    }
    fn scales(&self) -> Option<Scales> {
        self.scales
    }
    fn default_init(&self) -> Init {
        self.init.clone().unwrap_or(Init::Gaussian { mean: vec![0.0; self.dim()], std: 1.0 })
    }
    fn coordinate_names(&self) -> Vec<String> {
        self.potential.coordinate_names()
    }
    fn temperature(&self) -> Option<f64> {
        Some(self.kt)
    }
    fn at_temperature(&self, kt: f64) -> Option<Arc<dyn Target>> {
        if !kt.is_finite() || kt <= 0.0 {
            return None;
        }
        // Widths of the wells scale with √kT; distances between wells do not.
        let ratio = (kt / self.kt).sqrt();
        Some(Arc::new(Boltzmann {
            potential: self.potential.clone(),
            kt,
            init: self.init.clone(),
            scales: self.scales.map(|s| Scales { largest: s.largest, smallest: s.smallest * ratio }),
            name: self.name.clone(),
        }))
    }
}
