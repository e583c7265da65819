//! Noise ladders σ₁ > … > σ_L from data. The ladder type is the core's
//! ([`langevin::ladder::Ladder`], shared by training and sampling); this module adds the rules
//! that read the data.
//!
//! Geometric ladders, with NCSNv2's rules (Song & Ermon 2020) to choose them from the data:
//! technique 1, σ₁ as large as the largest distance between training points; technique 2, a
//! ratio between levels that keeps consecutive perturbed distributions overlapping (capped in low
//! dimension, see `langevin::sampler::ncsnv2_gamma`); technique 4, the step ε for T Langevin steps
//! per level (`langevin::sampler::ncsnv2_step_ratio`).

use langevin::Result;
use langevin::rng::LaneRng;
use ndarray::Array2;

pub use langevin::ladder::Ladder;

/// A ladder for the rows of `x` (standardized data): NCSNv2's techniques 1 and 2 for what
/// `opts` leaves open. Returns the ladder and one note per derived value.
pub fn from_data(x: &Array2<f32>, opts: &LadderOptions, seed: u64) -> Result<(Ladder, Vec<String>)> {
    let mut notes = Vec::new();
    let sigma_max = match opts.sigma_max {
        Some(s) => s,
        None => {
            let s = max_pairwise_distance(x, seed);
            notes
                .push(format!("sigma_max = {s:.4}: the largest distance between training points (NCSNv2 technique 1)"));
            s
        }
    };
    let sigma_min = opts.sigma_min.unwrap_or(0.01);
    if opts.sigma_min.is_none() {
        notes.push("sigma_min = 0.01 (in standardized units, 1% of each coordinate's standard deviation)".into());
    }
    let levels = match opts.levels {
        Some(l) => l,
        None => {
            let g = langevin::ladder::ncsnv2_gamma(x.ncols());
            let l = Ladder::ncsnv2_levels(sigma_max, sigma_min, x.ncols());
            notes.push(format!(
                "levels = {l}: ratio at most {g:.3} between levels (NCSNv2 technique 2, d = {})",
                x.ncols()
            ));
            l
        }
    };
    Ok((Ladder::geometric(sigma_max, sigma_min, levels)?, notes))
}

/// What the user fixed of the ladder; the rest comes from the data.
#[derive(Clone, Debug, Default)]
pub struct LadderOptions {
    /// σ₁ (default: the largest distance between training points).
    pub sigma_max: Option<f64>,
    /// σ_L (default 0.01, in standardized units).
    pub sigma_min: Option<f64>,
    /// L (default: NCSNv2's ratio rule).
    pub levels: Option<usize>,
}

/// The largest distance between rows of `x`, exact for up to 2,000 rows and otherwise over a
/// seeded subsample of 2,000 (an O(n²) scan).
pub fn max_pairwise_distance(x: &Array2<f32>, seed: u64) -> f64 {
    let sub = langevin::metrics::subsample(x.view(), 2000, &mut LaneRng::new(seed, 0x51A));
    let mut best = 0.0f64;
    for i in 0..sub.nrows() {
        for j in 0..i {
            let d: f64 = sub.row(i).iter().zip(sub.row(j)).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            best = best.max(d);
        }
    }
    best.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_from_flags_and_from_data() {
        let l = Ladder::geometric(20.0, 1.0, 10).unwrap();
        assert_eq!(l.levels(), 10);
        assert!((l.sigmas[9] - 1.0).abs() < 1e-12 && (l.ratio() - 20f64.powf(1.0 / 9.0)).abs() < 1e-12);
        assert!(Ladder::geometric(1.0, 2.0, 10).unwrap_err().to_string().contains("σ₁ > σ_L"));
        assert!(Ladder::geometric(2.0, 1.0, 1).unwrap_err().to_string().contains("at least 2"));
        assert!(Ladder::geometric(2.0, 0.0, 5).unwrap_err().to_string().contains("positive"));
        let x = ndarray::array![[0.0f32, 0.0], [3.0, 4.0], [1.0, 1.0]];
        let (l, notes) = from_data(&x, &LadderOptions::default(), 0).unwrap();
        assert!((l.sigma_max() - 5.0).abs() < 1e-6 && (l.sigma_min() - 0.01).abs() < 1e-12);
        assert_eq!(notes.len(), 3);
        assert!(l.ncsnv2_eps(100) > 0.0);
    }
}
