//! Noise schedules: the forward processes x_t = s(t)·(x₀ + σ(t) z) of score-based diffusion
//! (seed 002's σ_t; Song et al. 2021 for VE, VP and sub-VP; Nichol & Dhariwal 2021 for the
//! cosine schedule; Karras et al. 2022 for EDM's σ(t) = t with ρ-spaced steps; Lipman et al.
//! 2023 and Liu et al. 2022 for the straight path of flow matching and rectified flow).
//!
//! Each schedule gives its mean scale s(t) and its noise level σ(t) **in the data's units**
//! (σ = std/s), which is the σ of the [`crate::field::Score`] seam: the score of p_t at x is
//! s(x/s(t), σ(t))/s(t). So one field serves every schedule, and a model trained for one
//! schedule is sampled with another. The SDE of the forward process is
//! dx = f(t) x dt + g(t) dW with f = d ln s/dt and g² = s² dσ²/dt.

use crate::error::Result;
use crate::invalid_field;
use std::f64::consts::PI;

/// A forward noising process, as a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Variance exploding (NCSN in continuous time): s = 1, σ(t) = σ_min (σ_max/σ_min)^t,
    /// t ∈ [ε, 1].
    Ve {
        /// σ at t = 0.
        sigma_min: f64,
        /// σ at t = 1.
        sigma_max: f64,
    },
    /// Variance preserving (DDPM in continuous time): β(t) = β_min + t (β_max − β_min),
    /// s = exp(−½∫β), std² = 1 − s², t ∈ [ε, 1].
    Vp {
        /// β(0).
        beta_min: f64,
        /// β(1).
        beta_max: f64,
    },
    /// Sub-VP (Song et al. 2021): the VP mean with std = 1 − s², g² = β (1 − s⁴).
    SubVp {
        /// β(0).
        beta_min: f64,
        /// β(1).
        beta_max: f64,
    },
    /// Cosine (Nichol & Dhariwal 2021): ᾱ(t) = cos²(φ(t))/cos²(φ(0)), φ = (t + s₀)/(1 + s₀)·π/2,
    /// s₀ = 0.008, for t ∈ [ε, t_max] (ᾱ(1) = 0 is an infinite σ, so the end is where σ = σ_max).
    Cosine {
        /// The last time, where σ(t) reaches the largest noise level wanted.
        t_max: f64,
    },
    /// Karras et al. (2022): s = 1, σ(t) = t, from σ_max down to σ_min with steps ρ-spaced:
    /// σᵢ = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ.
    Edm {
        /// The smallest σ before the final step to 0.
        sigma_min: f64,
        /// The largest σ.
        sigma_max: f64,
        /// ρ (7 in the paper).
        rho: f64,
    },
    /// The straight path of flow matching and rectified flow: x_t = (1 − t) x₀ + t z, i.e.
    /// s = 1 − t, σ(t) = t/(1 − t), for t ∈ [ε, t_max] (t = 1 is pure noise, an infinite σ, so
    /// the end is where σ = σ_max). A flow-matching model's ODE is straightest in this time.
    Linear {
        /// The last time, where σ(t) reaches the largest noise level wanted.
        t_max: f64,
    },
}

/// Schedule names, as [`ScheduleKind::from_name`] accepts them.
pub const SCHEDULE_NAMES: &[&str] = &["ve", "vp", "sub-vp", "cosine", "edm", "linear"];

/// A schedule by kind, before its parameters are chosen from a noise range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// [`Schedule::Ve`].
    Ve,
    /// [`Schedule::Vp`].
    Vp,
    /// [`Schedule::SubVp`].
    SubVp,
    /// [`Schedule::Cosine`].
    Cosine,
    /// [`Schedule::Edm`].
    Edm,
    /// [`Schedule::Linear`].
    Linear,
}

impl ScheduleKind {
    /// By name (`ve`, `vp`, `sub-vp`, `cosine`, `edm`, `linear`).
    pub fn from_name(name: &str) -> Result<ScheduleKind> {
        Ok(match name {
            "ve" => ScheduleKind::Ve,
            "vp" => ScheduleKind::Vp,
            "sub-vp" | "subvp" => ScheduleKind::SubVp,
            "cosine" => ScheduleKind::Cosine,
            "edm" => ScheduleKind::Edm,
            "linear" | "rectified-flow" => ScheduleKind::Linear,
            _ => {
                return Err(invalid_field!(
                    "schedule",
                    "unknown schedule '{name}'; choose one of {}",
                    SCHEDULE_NAMES.join(", ")
                ));
            }
        })
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Ve => "ve",
            ScheduleKind::Vp => "vp",
            ScheduleKind::SubVp => "sub-vp",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Edm => "edm",
            ScheduleKind::Linear => "linear",
        }
    }

    /// The schedule of this kind that runs from σ_min to σ_max (in the data's units), with the
    /// papers' constants where they are free: VP and sub-VP keep β_min = 0.1 and take β_max so
    /// that σ(1) = σ_max (VP: β_max = 2 ln(1 + σ_max²) − β_min, 19.9 for σ_max = 150, the
    /// paper's 20); the cosine schedule ends where σ = σ_max; EDM uses ρ = `rho`.
    pub fn build(self, sigma_min: f64, sigma_max: f64, rho: f64) -> Result<Schedule> {
        check_range(sigma_min, sigma_max)?;
        let beta_min = 0.1;
        let beta_max = (2.0 * (sigma_max * sigma_max).ln_1p() - beta_min).max(beta_min);
        Ok(match self {
            ScheduleKind::Ve => Schedule::Ve { sigma_min, sigma_max },
            ScheduleKind::Vp => Schedule::Vp { beta_min, beta_max },
            ScheduleKind::SubVp => {
                // σ(1) = (1 − s²)/s = σ_max  ⇔  s = (√(σ_max² + 4) − σ_max)/2, and ∫₀¹β = −2 ln s.
                let s1 = 0.5 * ((sigma_max * sigma_max + 4.0).sqrt() - sigma_max);
                Schedule::SubVp { beta_min, beta_max: (-4.0 * s1.ln() - beta_min).max(beta_min) }
            }
            ScheduleKind::Cosine => Schedule::Cosine { t_max: cosine_time(sigma_max) },
            ScheduleKind::Linear => Schedule::Linear { t_max: sigma_max / (1.0 + sigma_max) },
            ScheduleKind::Edm => {
                if !(rho.is_finite() && rho > 0.0) {
                    return Err(invalid_field!("rho", "`rho` = {rho} must be positive"));
                }
                Schedule::Edm { sigma_min, sigma_max, rho }
            }
        })
    }
}

/// σ_min < σ_max, both positive and finite.
pub fn check_range(sigma_min: f64, sigma_max: f64) -> Result<()> {
    if !(sigma_min.is_finite() && sigma_min > 0.0) {
        return Err(invalid_field!("sigma_min", "`sigma_min` = {sigma_min} must be positive and finite"));
    }
    if !(sigma_max.is_finite() && sigma_max > sigma_min) {
        return Err(invalid_field!(
            "sigma_max",
            "`sigma_max` = {sigma_max} must be larger than `sigma_min` = {sigma_min} (and finite)"
        ));
    }
    Ok(())
}

const COSINE_S: f64 = 0.008;

fn cosine_phi(t: f64) -> f64 {
    (t + COSINE_S) / (1.0 + COSINE_S) * PI / 2.0
}

/// ᾱ(t) of the cosine schedule.
fn cosine_alpha_bar(t: f64) -> f64 {
    (cosine_phi(t).cos() / cosine_phi(0.0).cos()).powi(2)
}

/// The time at which the cosine schedule's σ = √((1 − ᾱ)/ᾱ) reaches `sigma`.
fn cosine_time(sigma: f64) -> f64 {
    // ᾱ = 1/(1 + σ²)  ⇔  cos φ = cos φ(0)/√(1 + σ²).
    let c = cosine_phi(0.0).cos() / (1.0 + sigma * sigma).sqrt();
    (c.acos() * 2.0 / PI * (1.0 + COSINE_S) - COSINE_S).min(1.0)
}

impl Schedule {
    /// The kind.
    pub fn kind(&self) -> ScheduleKind {
        match self {
            Schedule::Ve { .. } => ScheduleKind::Ve,
            Schedule::Vp { .. } => ScheduleKind::Vp,
            Schedule::SubVp { .. } => ScheduleKind::SubVp,
            Schedule::Cosine { .. } => ScheduleKind::Cosine,
            Schedule::Edm { .. } => ScheduleKind::Edm,
            Schedule::Linear { .. } => ScheduleKind::Linear,
        }
    }

    /// ln s(t) of the VP family: −¼ t² (β_max − β_min) − ½ t β_min.
    fn log_mean(b0: f64, b1: f64, t: f64) -> f64 {
        -0.25 * t * t * (b1 - b0) - 0.5 * t * b0
    }

    /// The mean scale s(t).
    pub fn scale(&self, t: f64) -> f64 {
        match *self {
            Schedule::Ve { .. } | Schedule::Edm { .. } => 1.0,
            Schedule::Vp { beta_min, beta_max } | Schedule::SubVp { beta_min, beta_max } => {
                Self::log_mean(beta_min, beta_max, t).exp()
            }
            Schedule::Cosine { .. } => cosine_alpha_bar(t).sqrt(),
            Schedule::Linear { .. } => 1.0 - t,
        }
    }

    /// The noise level σ(t) = std(t)/s(t), in the data's units: the σ a score is asked at.
    pub fn sigma(&self, t: f64) -> f64 {
        match *self {
            Schedule::Ve { sigma_min, sigma_max } => sigma_min * (sigma_max / sigma_min).powf(t),
            Schedule::Edm { .. } => t,
            Schedule::Vp { beta_min, beta_max } => {
                // σ² = (1 − s²)/s² = e^{−2 ln s} − 1.
                (-2.0 * Self::log_mean(beta_min, beta_max, t)).exp_m1().sqrt()
            }
            Schedule::SubVp { beta_min, beta_max } => {
                let lm = Self::log_mean(beta_min, beta_max, t);
                // std = 1 − s², σ = std/s.
                -(2.0 * lm).exp_m1() / lm.exp()
            }
            Schedule::Cosine { .. } => {
                let a = cosine_alpha_bar(t);
                ((1.0 - a) / a).sqrt()
            }
            Schedule::Linear { .. } => t / (1.0 - t),
        }
    }

    /// The standard deviation of the noise in x_t: s(t)·σ(t).
    pub fn std(&self, t: f64) -> f64 {
        self.scale(t) * self.sigma(t)
    }

    /// β(t) of the VP family (for the cosine schedule −d ln ᾱ/dt).
    fn beta(&self, t: f64) -> f64 {
        match *self {
            Schedule::Vp { beta_min, beta_max } | Schedule::SubVp { beta_min, beta_max } => {
                beta_min + t * (beta_max - beta_min)
            }
            Schedule::Cosine { .. } => PI * cosine_phi(t).tan() / (1.0 + COSINE_S),
            // f = d ln(1 − t)/dt = −1/(1 − t) = −½β.
            Schedule::Linear { .. } => 2.0 / (1.0 - t),
            _ => 0.0,
        }
    }

    /// The drift coefficient f(t) of dx = f(t) x dt + g(t) dW (f = d ln s/dt).
    pub fn drift(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }

    /// g(t)² of the forward SDE (g² = s² dσ²/dt).
    pub fn g2(&self, t: f64) -> f64 {
        match *self {
            Schedule::Ve { sigma_min, sigma_max } => {
                let s = self.sigma(t);
                2.0 * s * s * (sigma_max / sigma_min).ln()
            }
            Schedule::Edm { .. } => 2.0 * t,
            Schedule::Vp { .. } | Schedule::Cosine { .. } => self.beta(t),
            Schedule::SubVp { beta_min, beta_max } => {
                self.beta(t) * (-(4.0 * Self::log_mean(beta_min, beta_max, t)).exp()).ln_1p().exp()
            }
            // s² dσ²/dt = (1 − t)² · 2σ/(1 − t)² = 2σ.
            Schedule::Linear { .. } => 2.0 * t / (1.0 - t),
        }
    }

    /// The time interval [t_min, t_max] the reverse process runs over: [ε, 1] (the cosine
    /// schedule ends at its `t_max`), [σ_min, σ_max] for EDM (t = σ; ε does not apply).
    pub fn time_range(&self, eps: f64) -> (f64, f64) {
        match *self {
            Schedule::Edm { sigma_min, sigma_max, .. } => (sigma_min, sigma_max),
            Schedule::Cosine { t_max } | Schedule::Linear { t_max } => (eps.min(0.5 * t_max), t_max),
            _ => (eps, 1.0),
        }
    }

    /// N + 1 decreasing times t₀ = t_max > … > t_N = t_min for N steps: uniform in t (as in
    /// score_sde and DDPM), ρ-spaced in σ for EDM.
    pub fn time_grid(&self, steps: usize, eps: f64) -> Vec<f64> {
        let (lo, hi) = self.time_range(eps);
        let n = steps.max(1);
        match *self {
            Schedule::Edm { rho, .. } => {
                let (a, b) = (hi.powf(1.0 / rho), lo.powf(1.0 / rho));
                (0..=n).map(|i| if i == n { lo } else { (a + i as f64 / n as f64 * (b - a)).powf(rho) }).collect()
            }
            _ => (0..=n).map(|i| if i == n { lo } else { hi + i as f64 / n as f64 * (lo - hi) }).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f = d ln s/dt and g² = s² dσ²/dt, checked by central differences for every schedule, and
    /// the schedules built from a range reach it.
    #[test]
    fn drift_and_diffusion_agree_with_the_marginals() {
        for kind in [
            ScheduleKind::Ve,
            ScheduleKind::Vp,
            ScheduleKind::SubVp,
            ScheduleKind::Cosine,
            ScheduleKind::Edm,
            ScheduleKind::Linear,
        ] {
            let s = kind.build(0.01, 50.0, 7.0).unwrap();
            let (lo, hi) = s.time_range(1e-3);
            for i in 1..10 {
                let t = lo + (hi - lo) * i as f64 / 10.0;
                let h = 1e-6 * (hi - lo);
                let dlns = (s.scale(t + h).ln() - s.scale(t - h).ln()) / (2.0 * h);
                let ds2 = (s.sigma(t + h).powi(2) - s.sigma(t - h).powi(2)) / (2.0 * h);
                assert!(
                    (s.drift(t) - dlns).abs() < 1e-5 * (1.0 + dlns.abs()),
                    "{kind:?} f({t}) {} vs {dlns}",
                    s.drift(t)
                );
                let g2 = s.scale(t).powi(2) * ds2;
                assert!((s.g2(t) - g2).abs() < 1e-5 * g2.abs().max(1e-3), "{kind:?} g²({t}) {} vs {g2}", s.g2(t));
            }
            let top = s.sigma(hi);
            assert!((top / 50.0 - 1.0).abs() < 1e-6, "{kind:?}: σ(t_max) = {top}");
            let grid = s.time_grid(10, 1e-3);
            assert_eq!(grid.len(), 11);
            assert!(grid.windows(2).all(|w| w[1] < w[0]), "{kind:?} {grid:?}");
            assert_eq!((grid[0], grid[10]), (hi, lo));
        }
        // EDM's grid is the paper's: σ₀ = 80, σ₁₇ = 0.002 for N = 18 points.
        let e = Schedule::Edm { sigma_min: 0.002, sigma_max: 80.0, rho: 7.0 };
        let g = e.time_grid(17, 0.0);
        assert!((g[0] - 80.0).abs() < 1e-12 && (g[17] - 0.002).abs() < 1e-15);
        assert!((g[1] - 57.5859).abs() < 1e-3, "{}", g[1]);
        assert_eq!(ScheduleKind::from_name("vq").unwrap_err().field(), Some("schedule"));
        assert_eq!(check_range(1.0, 1.0).unwrap_err().field(), Some("sigma_max"));
        assert_eq!(check_range(0.0, 1.0).unwrap_err().field(), Some("sigma_min"));
    }
}
