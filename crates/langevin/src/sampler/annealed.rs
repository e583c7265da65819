//! Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1), with NCSNv2's rules for
//! choosing the noise ladder and step size (Song & Ermon 2020, "Improved techniques").
//!
//! Plain Langevin cannot move mass between well separated modes: on the NCSN toy
//! 0.8·N((5,5), I) + 0.2·N((−5,−5), I) each particle stays in the basin it starts in, so the
//! sampled weights reflect the initial distribution (≈ 0.5/0.5), not 0.8/0.2. Annealing runs
//! Langevin on the perturbed densities p_σ for σ₁ > … > σ_L: at large σ the modes merge and
//! particles distribute themselves by the right weights; as σ shrinks they settle into the
//! modes. Level i uses the step α_i = ε σ_i²/σ_L² with the seeds' update
//! x ← x + α_i s(x, σ_i) + √(2α_i) z (the convention of the official NCSN code), T steps per
//! level, and optionally a final denoising step x ← x + σ_L² s(x, σ_L) (Tweedie's formula).

use super::{Kernel, StepCtx, StepInfo, ula::UlaState, ula_step};
use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::LaneRng;
use crate::target::Target;
use statrs::distribution::{ContinuousCDF, Normal};
use std::sync::Arc;

/// What the user fixed; the rest is derived from the target.
#[derive(Clone, Debug, Default)]
pub struct AnnealOptions {
    /// σ₁, the largest noise level.
    pub sigma_max: Option<f64>,
    /// σ_L, the smallest noise level.
    pub sigma_min: Option<f64>,
    /// L, the number of levels.
    pub levels: Option<usize>,
    /// T, Langevin steps per level.
    pub steps_per_level: Option<usize>,
    /// ε, the step size at σ_L.
    pub eps: Option<f64>,
    /// Apply the final denoising step.
    pub denoise: bool,
}

/// A resolved annealing schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnealConfig {
    /// Noise levels σ₁ > … > σ_L (geometric).
    pub sigmas: Vec<f64>,
    /// Steps per level T.
    pub steps_per_level: usize,
    /// ε: the step at the smallest level; level i uses α_i = ε σ_i²/σ_L².
    pub eps: f64,
    /// Whether to apply x + σ_L² s(x, σ_L) at the end.
    pub denoise: bool,
}

/// NCSNv2 technique 2: the largest ratio γ = σ_{i−1}/σ_i for which the perturbed densities of
/// consecutive levels still overlap, i.e. Φ(√(2d)(γ−1) + 3γ) − Φ(√(2d)(γ−1) − 3γ) ≈ ½.
/// In low dimension the condition never binds; γ is then capped at [`GAMMA_CAP`].
pub fn ncsnv2_gamma(dim: usize) -> f64 {
    const CAP: f64 = GAMMA_CAP;
    let phi = Normal::new(0.0, 1.0).expect("standard normal");
    let a = (2.0 * dim as f64).sqrt();
    let f = |g: f64| phi.cdf(a * (g - 1.0) + 3.0 * g) - phi.cdf(a * (g - 1.0) - 3.0 * g);
    if f(CAP) > 0.5 {
        return CAP;
    }
    let (mut lo, mut hi) = (1.0, CAP);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.5 { lo = mid } else { hi = mid }
    }
    lo
}

/// Largest ratio between consecutive noise levels used by default. NCSN's toy experiment uses
/// 1.39 and its CIFAR ladder 1.67; on analytic targets, where sampling is cheap and the mode
/// weights freeze in while the modes separate, a finer ladder pays: on `ncsn-toy` (T = 100)
/// γ = 1.25 gives the (5,5) weight 0.793 where γ = 1.5 gives 0.788 (100,000 particles).
pub const GAMMA_CAP: f64 = 1.25;

/// c = ε/σ_L² such that T steps at rate c contract what a level remembers of the previous
/// one to 10⁻⁹: (1 − c)^T = 10⁻⁹, c ≈ 20.7/T (0.187 for T = 100), capped at 0.5.
///
/// Why not NCSNv2's technique 4 ([`ncsnv2_step_ratio`]) on analytic targets: it matches the
/// variance of a point mass, which gives c ≈ 0.03 here. With exact scores the levels below the
/// narrowest mode's width then barely move (their step α = cσ² is tiny against the mode's
/// variance), and the modes end 16% too wide with the (5,5) weight at 0.770 on `ncsn-toy`;
/// the contraction rule gives variances within 1% and weight 0.793 at the same cost.
pub fn contraction_step_ratio(steps: usize) -> f64 {
    (1.0 - 1e-9f64.powf(1.0 / steps.max(1) as f64)).min(0.5)
}

/// NCSNv2 technique 4: the variance ratio s_T²/σ_i² that T Langevin steps with α_i/σ_i² = c
/// reach at level i, starting from the previous level's variance γ²σ_i² (data = one point):
/// (1 − c)^{2T} (γ² − 1/(1 − c/2)) + 1/(1 − c/2).
pub fn variance_ratio(c: f64, gamma: f64, steps: usize) -> f64 {
    let stat = 1.0 / (1.0 - 0.5 * c);
    (1.0 - c).powf(2.0 * steps as f64) * (gamma * gamma - stat) + stat
}

/// The c = ε/σ_L² that brings [`variance_ratio`] closest to 1.
pub fn ncsnv2_step_ratio(gamma: f64, steps: usize) -> f64 {
    let err = |c: f64| (variance_ratio(c, gamma, steps) - 1.0).abs();
    // Log-spaced scan, then golden-section refinement around the best grid point.
    let grid: Vec<f64> = (0..=4000).map(|i| 10f64.powf(-8.0 + 8.0 * i as f64 / 4000.0) * 0.999).collect();
    let best = (0..grid.len()).min_by(|&a, &b| err(grid[a]).total_cmp(&err(grid[b]))).expect("non-empty grid");
    let (mut lo, mut hi) = (grid[best.saturating_sub(1)], grid[(best + 1).min(grid.len() - 1)]);
    let r = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..100 {
        let (m1, m2) = (hi - r * (hi - lo), lo + r * (hi - lo));
        if err(m1) < err(m2) { hi = m2 } else { lo = m1 }
    }
    0.5 * (lo + hi)
}

impl AnnealConfig {
    /// Fill in what `opts` leaves open from the target's length scales, in the spirit of
    /// NCSNv2: σ₁ = the largest distance that matters (technique 1), σ_L = 1/10 of the narrowest
    /// mode's standard deviation, L from the ratio rule (technique 2) with ratio at most
    /// [`GAMMA_CAP`], T = 100, ε from T by [`contraction_step_ratio`].
    /// Returns the schedule and one note per derived value, for the report.
    pub fn resolve(target: &dyn Target, opts: &AnnealOptions) -> Result<(AnnealConfig, Vec<String>)> {
        let mut notes = Vec::new();
        let scales = target.scales();
        let need = |what: &str| {
            invalid!(
                "target '{}' has no known length scales, so {what} cannot be chosen automatically; give --sigma-max and --sigma-min",
                target.name()
            )
        };
        let sigma_max = match opts.sigma_max {
            Some(s) => s,
            None => {
                let s = scales.ok_or_else(|| need("σ₁"))?.largest;
                notes.push(format!("sigma_max = {s:.4}: the largest distance between modes plus 6 × the widest standard deviation (NCSNv2 technique 1)"));
                s
            }
        };
        let sigma_min = match opts.sigma_min {
            Some(s) => s,
            None => {
                let s = 0.1 * scales.ok_or_else(|| need("σ_L"))?.smallest;
                notes.push(format!("sigma_min = {s:.4e}: 1/10 of the narrowest mode's standard deviation"));
                s
            }
        };
        if !(sigma_min.is_finite() && sigma_min > 0.0) {
            return Err(invalid!("--sigma-min = {sigma_min} must be positive and finite"));
        }
        if !(sigma_max.is_finite() && sigma_max > sigma_min) {
            return Err(invalid!(
                "the noise ladder needs σ₁ > σ_L, but --sigma-max = {sigma_max} and --sigma-min = {sigma_min}"
            ));
        }
        let levels = match opts.levels {
            Some(l) => l,
            None => {
                let gamma = ncsnv2_gamma(target.dim());
                let l = ((sigma_max / sigma_min).ln() / gamma.ln()).ceil() as usize + 1;
                notes.push(format!(
                    "levels = {l}: geometric ratio at most {gamma:.3} between levels (NCSNv2 technique 2 for d = {})",
                    target.dim()
                ));
                l
            }
        };
        if levels < 2 {
            return Err(invalid!(
                "--levels = {levels}: a noise ladder needs at least 2 levels (σ₁ and σ_L); for one noise level use --sampler ula"
            ));
        }
        let steps_per_level = opts.steps_per_level.unwrap_or(100);
        if steps_per_level == 0 {
            return Err(invalid!("--steps-per-level must be at least 1"));
        }
        let gamma = (sigma_max / sigma_min).powf(1.0 / (levels - 1) as f64);
        let eps = match opts.eps {
            Some(e) => e,
            None => {
                let c = contraction_step_ratio(steps_per_level);
                let e = c * sigma_min * sigma_min;
                notes.push(format!(
                    "eps = {e:.4e}: {c:.4} × σ_L², so that T = {steps_per_level} steps contract each level's memory of the previous one to 1e-9"
                ));
                e
            }
        };
        if !(eps.is_finite() && eps > 0.0) {
            return Err(invalid!("--eps = {eps} must be positive and finite"));
        }
        let sigmas = (0..levels).map(|i| sigma_max * gamma.powi(-(i as i32))).collect();
        Ok((AnnealConfig { sigmas, steps_per_level, eps, denoise: opts.denoise }, notes))
    }

    /// Step size α_i = ε σ_i²/σ_L² of level `i`.
    pub fn alpha(&self, i: usize) -> f64 {
        let last = self.sigmas[self.sigmas.len() - 1];
        self.eps * (self.sigmas[i] / last).powi(2)
    }

    /// Total number of Langevin steps, L·T.
    pub fn total_steps(&self) -> usize {
        self.sigmas.len() * self.steps_per_level
    }
}

/// The annealed Langevin kernel: ULA on s(x, σ_i) with step α_i for T steps per level.
pub struct Annealed {
    levels: Vec<Arc<dyn Target>>,
    config: AnnealConfig,
    noise: bool,
}

impl Annealed {
    /// Annealed Langevin on `target`, which must know its perturbed scores s(x, σ).
    pub fn new(target: &dyn Target, config: AnnealConfig, noise: bool) -> Result<Self> {
        let levels = config
            .sigmas
            .iter()
            .map(|&s| {
                target.perturbed(s).ok_or_else(|| {
                    invalid!(
                        "annealed Langevin needs the perturbed score s(x, σ) at every noise level, and target '{}' does not provide it \
                         (Gaussians and Gaussian mixtures do, and so do trained score models); use --sampler ula or mala for this target",
                        target.name()
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Annealed { levels, config, noise })
    }

    /// The schedule.
    pub fn config(&self) -> &AnnealConfig {
        &self.config
    }

    fn level(&self, index: usize) -> usize {
        (index / self.config.steps_per_level).min(self.levels.len() - 1)
    }
}

impl Kernel for Annealed {
    type State = UlaState;

    fn name(&self) -> &'static str {
        "annealed"
    }
    fn dim(&self) -> usize {
        self.levels[0].dim()
    }
    fn init(&self, x: Block, _rng: &mut LaneRng) -> Result<UlaState> {
        Ok(UlaState::new(x))
    }
    fn schedule_len(&self) -> Option<usize> {
        Some(self.config.total_steps())
    }
    fn step(&self, st: &mut UlaState, ctx: &StepCtx, rng: &mut LaneRng) -> Result<StepInfo> {
        let i = self.level(ctx.index);
        let finite = ula_step(
            self.levels[i].as_ref(),
            &mut st.x,
            &mut st.score,
            &mut st.z,
            self.config.alpha(i),
            self.noise,
            rng,
        )?;
        Ok(StepInfo { finite, ..Default::default() })
    }
    fn position<'s>(&self, st: &'s UlaState) -> &'s Block {
        &st.x
    }
    fn finish(&self, st: &mut UlaState) -> Result<bool> {
        if !self.config.denoise {
            return Ok(false);
        }
        let last = self.levels.len() - 1;
        let s2 = self.config.sigmas[last].powi(2);
        self.levels[last].eval(&st.x, &mut st.score, None)?;
        if !super::drift_update(st.x.data_mut(), st.score.data(), s2 as f32) && st.x.first_non_finite().is_some() {
            return Err(invalid!(
                "the final denoising step x + σ_L² s(x, σ_L) produced non-finite values; try a smaller --eps or --no-denoise"
            ));
        }
        Ok(true)
    }
    fn describe_step(&self, index: usize) -> String {
        let i = self.level(index);
        format!(
            " (noise level {} of {}: σ = {:.4}, step α = {:.3e})",
            i + 1,
            self.levels.len(),
            self.config.sigmas[i],
            self.config.alpha(i)
        )
    }
    fn suggest_smaller(&self, _index: usize, _step_size: f64) -> String {
        format!("--eps {:.3e} (a tenth of the current ε)", self.config.eps / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_rule_binds_in_high_dimension_only() {
        assert_eq!(ncsnv2_gamma(2), GAMMA_CAP);
        let g = ncsnv2_gamma(100);
        assert!(g > 1.2 && g <= GAMMA_CAP, "{g}");
        // CIFAR-10 (d = 3072): NCSNv2 uses 232 levels from 50 to 0.01, γ ≈ 1.0375.
        let g = ncsnv2_gamma(3072);
        assert!((g - 1.0375).abs() < 0.01, "{g}");
    }

    #[test]
    fn step_ratio_makes_variance_ratio_close_to_one() {
        let c = ncsnv2_step_ratio(1.4, 100);
        let r = variance_ratio(c, 1.4, 100);
        assert!((r - 1.0).abs() < 0.03, "{c} {r}");
        assert!((contraction_step_ratio(100) - 0.1871).abs() < 1e-3);
        assert_eq!(contraction_step_ratio(10), 0.5);
        // The Song & Ermon toy settings: ε = 0.1 at σ_L = 1 gives c = 0.1 and ratio ≈ 1.053.
        assert!((variance_ratio(0.1, 20f64.powf(1.0 / 9.0), 100) - 1.0 / 0.95).abs() < 1e-6);
    }
}
