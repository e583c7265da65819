//! Distances between sample sets and tests against exact answers.
//!
//! - [`mmd`]: maximum mean discrepancy with an RBF kernel, bandwidth by the median heuristic;
//! - [`energy_distance`]: 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (Székely & Rizzo);
//! - [`sliced_wasserstein`]: the 2-Wasserstein distance averaged over random 1-D projections;
//! - [`ks_test`]: Kolmogorov–Smirnov statistic and p-value against an exact marginal CDF;
//! - [`frechet_distance`]: the Fréchet distance of Gaussians fitted to two feature sets (FID's
//!   form, here over the features of a classifier the tool trains itself);
//! - [`mode_weights`]: the fraction of samples whose most responsible mixture component is k.
//!
//! The pairwise statistics cost O(n²), so they use at most `max_points` rows of each set,
//! chosen at random with a fixed seed (the report says how many).
//! Both MMD and the energy distance are V-statistics (diagonal terms included), so they are
//! never negative; between two independent samples of size n from the same law they are of
//! order 1/√n and 1/n respectively, which is the floor a "good" sampler can reach.

use crate::rng::LaneRng;
use crate::target::{GaussianMixture, Marginal};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// A random subset of at most `max` rows (all rows, in order, when there are fewer).
pub fn subsample(x: ArrayView2<f32>, max: usize, rng: &mut LaneRng) -> Array2<f32> {
    let n = x.nrows();
    if n <= max {
        return x.to_owned();
    }
    // Partial Fisher–Yates over the row indices.
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..max {
        let j = i + rng.below((n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut keep = idx[..max].to_vec();
    keep.sort_unstable();
    Array2::from_shape_fn((max, x.ncols()), |(i, c)| x[[keep[i], c]])
}

fn sq_dist(a: ndarray::ArrayView1<f32>, b: ndarray::ArrayView1<f32>) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((*x - *y) as f64).powi(2)).sum()
}

/// Mean of f(‖xᵢ − yⱼ‖²) over all pairs (i, j).
fn pair_mean(x: ArrayView2<f32>, y: ArrayView2<f32>, f: impl Fn(f64) -> f64 + Sync) -> f64 {
    let total: f64 = (0..x.nrows())
        .into_par_iter()
        .map(|i| y.outer_iter().map(|b| f(sq_dist(x.row(i), b))).sum::<f64>())
        .collect::<Vec<f64>>()
        .into_iter()
        .sum();
    total / (x.nrows() * y.nrows()) as f64
}

/// Median of the pairwise distances within the pooled sample (the usual RBF bandwidth).
pub fn median_distance(x: ArrayView2<f32>, y: ArrayView2<f32>) -> f64 {
    let pooled: Vec<ndarray::ArrayView1<f32>> = x.outer_iter().chain(y.outer_iter()).collect();
    // At most ~2000 points enter the median (4M pairs); the median is a robust statistic.
    let step = (pooled.len() / 2000).max(1);
    let pts: Vec<_> = pooled.iter().step_by(step).collect();
    let mut d = Vec::with_capacity(pts.len() * pts.len() / 2);
    for i in 0..pts.len() {
        for j in 0..i {
            d.push(sq_dist(*pts[i], *pts[j]).sqrt());
        }
    }
    if d.is_empty() {
        return 1.0;
    }
    let mid = d.len() / 2;
    d.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    d[mid].max(1e-12)
}

/// MMD between the rows of `x` and `y` with k(a, b) = exp(−‖a − b‖²/(2h²)); returns
/// √(MMD²) of the V-statistic. `bandwidth` None uses the median heuristic.
pub fn mmd(x: ArrayView2<f32>, y: ArrayView2<f32>, bandwidth: Option<f64>) -> (f64, f64) {
    let h = bandwidth.unwrap_or_else(|| median_distance(x, y));
    let g = 1.0 / (2.0 * h * h);
    let k = |d2: f64| (-g * d2).exp();
    let m2 = pair_mean(x, x, k) + pair_mean(y, y, k) - 2.0 * pair_mean(x, y, k);
    (m2.max(0.0).sqrt(), h)
}

/// Energy distance 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (V-statistic).
pub fn energy_distance(x: ArrayView2<f32>, y: ArrayView2<f32>) -> f64 {
    let f = |d2: f64| d2.sqrt();
    (2.0 * pair_mean(x, y, f) - pair_mean(x, x, f) - pair_mean(y, y, f)).max(0.0)
}

/// The Fréchet distance between Gaussians fitted to two sets of feature vectors (the
/// 2-Wasserstein distance squared between N(μ₁, Σ₁) and N(μ₂, Σ₂), the form of FID):
/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}, in f64 with symmetric eigen
/// decompositions (negative eigenvalues of rounding are clamped at zero).
pub fn frechet_distance(x: ArrayView2<f32>, y: ArrayView2<f32>) -> f64 {
    use nalgebra::{DMatrix, SymmetricEigen};
    let d = x.ncols();
    assert_eq!(d, y.ncols(), "frechet_distance: both sets need the same features");
    let (mx, cx) = crate::diagnostics::mean_cov(x);
    let (my, cy) = crate::diagnostics::mean_cov(y);
    let mean2: f64 = mx.iter().zip(&my).map(|(a, b)| (a - b) * (a - b)).sum();
    let a = DMatrix::from_fn(d, d, |i, j| cx[[i, j]]);
    let b = DMatrix::from_fn(d, d, |i, j| cy[[i, j]]);
    let e = SymmetricEigen::new(a.clone());
    let root = &e.eigenvectors
        * DMatrix::from_diagonal(&e.eigenvalues.map(|v| v.max(0.0).sqrt()))
        * e.eigenvectors.transpose();
    let m = &root * &b * &root;
    let m = (&m + m.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(m).eigenvalues.iter().map(|v| v.max(0.0).sqrt()).sum();
    (mean2 + a.trace() + b.trace() - 2.0 * cross).max(0.0)
}

/// Sliced 2-Wasserstein distance over `projections` random directions (seeded):
/// √(mean over directions θ of W₂²(θᵀX, θᵀY)), the 1-D distances computed between the two
/// empirical quantile functions.
pub fn sliced_wasserstein(x: ArrayView2<f32>, y: ArrayView2<f32>, projections: usize, seed: u64) -> f64 {
    let d = x.ncols();
    let mut rng = LaneRng::new(seed, 0x5157);
    let dirs: Vec<Vec<f64>> = (0..projections)
        .map(|_| {
            let v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
            v.into_iter().map(|a| a / norm).collect()
        })
        .collect();
    let w2: Vec<f64> = dirs
        .par_iter()
        .map(|dir| {
            let proj = |m: ArrayView2<f32>| {
                let mut p: Vec<f64> =
                    m.outer_iter().map(|r| r.iter().zip(dir).map(|(a, b)| *a as f64 * b).sum()).collect();
                p.sort_by(|a, b| a.total_cmp(b));
                p
            };
            let (px, py) = (proj(x), proj(y));
            let m = px.len().max(py.len());
            (0..m)
                .map(|i| {
                    let q = (i as f64 + 0.5) / m as f64;
                    let a = px[((q * px.len() as f64) as usize).min(px.len() - 1)];
                    let b = py[((q * py.len() as f64) as usize).min(py.len() - 1)];
                    (a - b).powi(2)
                })
                .sum::<f64>()
                / m as f64
        })
        .collect();
    (w2.iter().sum::<f64>() / projections.max(1) as f64).sqrt()
}

/// Result of a one-sample Kolmogorov–Smirnov test.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct KsResult {
    /// sup |F_n − F|.
    pub statistic: f64,
    /// Asymptotic p-value (Kolmogorov distribution, with Stephens' small-sample correction).
    pub p_value: f64,
    /// Number of samples.
    pub n: usize,
}

/// KS test of `values` against the exact marginal `m`.
pub fn ks_test(values: &[f64], m: &Marginal) -> KsResult {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len() as f64;
    let mut d = 0.0f64;
    for (i, &x) in v.iter().enumerate() {
        let f = m.cdf(x);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
    }
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    KsResult { statistic: d, p_value: kolmogorov_q(lambda), n: v.len() }
}

/// Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}, the tail of the Kolmogorov distribution.
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Fraction of rows assigned to each component (by largest responsibility), in the order of
/// the mixture's components.
pub fn mode_weights(x: ArrayView2<f32>, mixture: &GaussianMixture) -> Vec<f64> {
    let k = mixture.n_components();
    let counts = (0..x.nrows())
        .into_par_iter()
        .map(|i| {
            let p: Vec<f64> = x.row(i).iter().map(|v| *v as f64).collect();
            mixture.assign(&p)
        })
        .fold(
            || vec![0usize; k],
            |mut acc, j| {
                acc[j] += 1;
                acc
            },
        )
        .reduce(|| vec![0usize; k], |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect());
    counts.iter().map(|&c| c as f64 / x.nrows().max(1) as f64).collect()
}

/// A density-normalized histogram of one coordinate, with the target's exact density over the
/// same range when it is known: what a "histogram against the truth" picture shows, as data.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DensityHistogram {
    /// Bin edges (bins + 1).
    pub edges: Vec<f64>,
    /// Heights (counts / (n · width)), so the bars integrate to 1.
    pub heights: Vec<f64>,
    /// (x, p(x)) on 401 points: the exact marginal (from its CDF), or for 1-D targets
    /// exp(log p) normalized over the range.
    pub exact: Option<Vec<(f64, f64)>>,
}

impl DensityHistogram {
    /// Of coordinate `c` of `x` in `bins` bins over [lo, hi].
    pub fn of(
        x: ArrayView2<f32>,
        c: usize,
        bins: usize,
        (lo, hi): (f64, f64),
        target: Option<&dyn crate::target::Target>,
    ) -> crate::Result<DensityHistogram> {
        if !(2..=2000).contains(&bins) {
            return Err(crate::invalid_field!("bins", "`bins` = {bins} must be between 2 and 2000"));
        }
        let v: Vec<f64> = x.column(c).iter().map(|&v| v as f64).filter(|v| v.is_finite()).collect();
        if v.is_empty() {
            return Err(crate::invalid_field!("samples", "no finite samples to plot"));
        }
        let w = (hi - lo) / bins as f64;
        let mut counts = vec![0.0; bins];
        for &s in &v {
            if s >= lo && s < hi {
                counts[(((s - lo) / w) as usize).min(bins - 1)] += 1.0;
            }
        }
        let heights = counts.iter().map(|k| k / (v.len() as f64 * w)).collect();
        let edges = (0..=bins).map(|i| lo + i as f64 * w).collect();
        let xs: Vec<f64> = (0..=400).map(|i| lo + (hi - lo) * i as f64 / 400.0).collect();
        let exact = match target {
            Some(t) => match t.marginal(c) {
                Some(m) => {
                    let h = (hi - lo) / 4000.0;
                    Some(xs.iter().map(|&x| (x, (m.cdf(x + h) - m.cdf(x - h)) / (2.0 * h))).collect())
                }
                None if t.dim() == 1 => {
                    let g = Array2::from_shape_fn((xs.len(), 1), |(i, _)| xs[i] as f32);
                    let (_, lp) = crate::target::eval_rows(t, g.view())?;
                    let m = lp.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
                    let p: Vec<f64> = lp.iter().map(|&l| (l as f64 - m).exp()).collect();
                    let z: f64 = p.iter().sum::<f64>() * (hi - lo) / 400.0;
                    Some(xs.iter().zip(&p).map(|(&x, &q)| (x, q / z)).collect())
                }
                None => None,
            },
            None => None,
        };
        Ok(DensityHistogram { edges, heights, exact })
    }
}

/// What [`evaluate`] compares against, and how hard.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Most points per side for MMD and energy distance (O(n²) each; subsampled by the seed).
    pub max_points: usize,
    /// Random projections for the sliced Wasserstein distance.
    pub projections: usize,
    /// Seed of the subsampling, the projections and exact reference draws.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { max_points: 2000, projections: 128, seed: 0 }
    }
}

/// A Kolmogorov–Smirnov test of one coordinate against the target's exact marginal.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct KsOfCoordinate {
    /// The coordinate.
    pub coordinate: usize,
    /// The test.
    #[serde(flatten)]
    pub test: KsResult,
}

/// Distances between a sample set and a reference, and checks against a target's exact
/// answers: the `eval` command's report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvalReport {
    /// Rows of the samples.
    pub n_samples: usize,
    /// Dimension.
    pub dim: usize,
    /// What the distances compare with.
    pub reference: String,
    /// Rows of the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_reference: Option<usize>,
    /// Points of each side the O(n²) distances used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_used: Option<[usize; 2]>,
    /// Maximum mean discrepancy (Gaussian kernel, median-distance bandwidth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmd: Option<f64>,
    /// Its bandwidth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mmd_bandwidth: Option<f64>,
    /// Energy distance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_distance: Option<f64>,
    /// Sliced 2-Wasserstein distance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliced_wasserstein: Option<f64>,
    /// The target's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Moments and mode weights against the target.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<crate::sample::Statistics>,
    /// KS tests of the coordinates with known marginals.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ks: Vec<KsOfCoordinate>,
}

/// Compare `samples` with `reference` (or, without one, with exact draws of `target` when it
/// can be sampled), and with `target`'s exact moments, mode weights and marginals.
pub fn evaluate(
    samples: ArrayView2<f32>,
    target: Option<&dyn crate::target::Target>,
    reference: Option<ArrayView2<f32>>,
    o: &EvalOptions,
) -> crate::Result<EvalReport> {
    let d = samples.ncols();
    if target.is_none() && reference.is_none() {
        return Err(crate::invalid_field!("reference", "give a `reference` sample set or a `target` to compare with"));
    }
    if o.max_points < 2 || o.projections == 0 {
        return Err(crate::invalid_field!(
            "max_points",
            "`max_points` must be at least 2 and `projections` at least 1"
        ));
    }
    // The directions (projections × d) and one sorted projection of both sets per direction.
    crate::mem::check(
        crate::mem::product(&[o.projections, d.max(1) + 4 * o.max_points, 8]),
        format!("{} random projections", o.projections),
        "projections",
    )?;
    if let Some(t) = target
        && t.dim() != d
    {
        return Err(crate::invalid_field!(
            "target",
            "the samples have {d} columns but target '{}' has dimension {}; the samples do not belong to this target",
            t.name(),
            t.dim()
        ));
    }
    if let Some(r) = &reference
        && r.ncols() != d
    {
        return Err(crate::invalid_field!(
            "reference",
            "the reference has {} columns but the samples have {d}",
            r.ncols()
        ));
    }
    let mut rng = LaneRng::new(o.seed, 0xE7A1);
    let drawn;
    let (reference, source) = match (reference, target) {
        (Some(r), _) => (Some(r), "the reference samples".to_string()),
        (None, Some(t)) => {
            let n = samples.nrows().min(o.max_points.max(2000));
            match t.sample_exact(n, &mut rng) {
                Some(r) => {
                    drawn = r;
                    (Some(drawn.view()), format!("{n} exact samples from the target"))
                }
                None => (None, "none: the target cannot be sampled exactly; pass a reference".into()),
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    let mut rep = EvalReport {
        n_samples: samples.nrows(),
        dim: d,
        reference: source,
        n_reference: None,
        points_used: None,
        mmd: None,
        mmd_bandwidth: None,
        energy_distance: None,
        sliced_wasserstein: None,
        target: target.map(|t| t.name()),
        statistics: target.map(|t| crate::sample::Statistics::of(samples, t)),
        ks: Vec::new(),
    };
    if let Some(r) = reference {
        let xs = subsample(samples, o.max_points, &mut rng);
        let rs = subsample(r, o.max_points, &mut rng);
        let (m, h) = mmd(xs.view(), rs.view(), None);
        rep.n_reference = Some(r.nrows());
        rep.points_used = Some([xs.nrows(), rs.nrows()]);
        rep.mmd = Some(m);
        rep.mmd_bandwidth = Some(h);
        rep.energy_distance = Some(energy_distance(xs.view(), rs.view()));
        rep.sliced_wasserstein = Some(sliced_wasserstein(samples, r, o.projections, o.seed));
    }
    if let Some(t) = target {
        rep.ks = (0..d)
            .filter_map(|c| {
                t.marginal(c).map(|m| {
                    let v: Vec<f64> = samples.column(c).iter().map(|&v| v as f64).collect();
                    KsOfCoordinate { coordinate: c, test: ks_test(&v, &m) }
                })
            })
            .collect();
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_histograms_integrate_to_one_and_carry_the_exact_density() {
        let t = crate::target::builtin::build("gaussian", &[("dim".into(), 1.0)]).unwrap();
        let x = t.sample_exact(20_000, &mut LaneRng::new(8, 8)).unwrap();
        let h = DensityHistogram::of(x.view(), 0, 40, (-4.0, 4.0), Some(t.as_ref())).unwrap();
        let area: f64 = h.heights.iter().map(|v| v * 0.2).sum();
        assert!((area - 1.0).abs() < 1e-3, "{area}"); // mass beyond ±4: 6e-5
        let exact = h.exact.unwrap();
        let mid = exact[200];
        assert!(mid.0.abs() < 1e-12 && (mid.1 - 1.0 / (2.0 * std::f64::consts::PI).sqrt()).abs() < 1e-4, "{mid:?}");
        // The bar at the centre agrees with the density within 5 standard errors of a bin count.
        let (p, n, w) = (0.0797f64, 20_000.0, 0.2);
        let se = (p * (1.0 - p) / n).sqrt() / w;
        assert!((h.heights[20] - 0.3970).abs() < 5.0 * se + 0.01, "{}", h.heights[20]);
        assert_eq!(DensityHistogram::of(x.view(), 0, 1, (-4.0, 4.0), None).unwrap_err().field(), Some("bins"));
    }

    #[test]
    fn evaluate_tells_right_from_wrong_samples_and_names_bad_inputs() {
        let t = crate::target::builtin::build("ncsn-toy", &[]).unwrap();
        let good = t.sample_exact(4000, &mut LaneRng::new(3, 3)).unwrap();
        // Wrong: every sample on the (5,5) mode (the weights 1/0 instead of 0.8/0.2).
        let bad = good.mapv(|v| v.abs());
        let o = EvalOptions::default();
        let g = evaluate(good.view(), Some(t.as_ref()), None, &o).unwrap();
        let b = evaluate(bad.view(), Some(t.as_ref()), None, &o).unwrap();
        assert!(b.mmd.unwrap() > 5.0 * g.mmd.unwrap(), "{:?} vs {:?}", g.mmd, b.mmd);
        assert_eq!(g.ks.len(), 2);
        assert!(g.ks.iter().all(|k| k.test.p_value > 1e-3) && b.ks.iter().all(|k| k.test.p_value < 1e-6));
        let w = g.statistics.as_ref().unwrap().mode_weights.as_ref().unwrap();
        assert!((w[0] - 0.8).abs() < 5.0 * (0.16f64 / 4000.0).sqrt(), "{w:?}");
        let v = serde_json::to_value(&g).unwrap();
        assert!(v.get("mmd").is_some() && v.get("mean").is_some() && v.get("ks").is_some());
        let e = evaluate(good.view(), None, None, &o).unwrap_err();
        assert_eq!(e.field(), Some("reference"));
        let three = crate::target::builtin::build("gaussian", &[("dim".into(), 3.0)]).unwrap();
        assert_eq!(evaluate(good.view(), Some(three.as_ref()), None, &o).unwrap_err().field(), Some("target"));
    }
    use crate::target::{Covariance, Target};

    fn gauss(n: usize, shift: f32, seed: u64) -> Array2<f32> {
        let mut rng = LaneRng::new(seed, 0);
        Array2::from_shape_fn((n, 2), |(_, c)| rng.normal() as f32 + if c == 0 { shift } else { 0.0 })
    }

    #[test]
    fn distances_separate_equal_from_shifted_samples() {
        let (a, b, c) = (gauss(1000, 0.0, 1), gauss(1000, 0.0, 2), gauss(1000, 1.0, 3));
        let (same, _) = mmd(a.view(), b.view(), None);
        let (diff, _) = mmd(a.view(), c.view(), None);
        assert!(diff > 3.0 * same, "{same} {diff}");
        let (e_same, e_diff) = (energy_distance(a.view(), b.view()), energy_distance(a.view(), c.view()));
        assert!(e_diff > 5.0 * e_same, "{e_same} {e_diff}");
        let (s_same, s_diff) =
            (sliced_wasserstein(a.view(), b.view(), 64, 0), sliced_wasserstein(a.view(), c.view(), 64, 0));
        assert!(s_diff > 3.0 * s_same, "{s_same} {s_diff}");
        // For a pure shift by δ along one axis, SW₂² = δ² E[θ₁²] = δ²/d: here SW₂ ≈ 1/√2.
        assert!((s_diff - 0.5f64.sqrt()).abs() < 0.1, "{s_diff}");
        // Energy distance of two unit Gaussians shifted by 1 (1-D projection check is enough
        // for the order of magnitude): positive and finite.
        assert!(e_diff.is_finite());
    }

    #[test]
    fn ks_accepts_the_truth_and_rejects_a_shift() {
        let m = Marginal::NormalMixture { weights: vec![1.0], means: vec![0.0], stds: vec![1.0] };
        let mut rng = LaneRng::new(9, 9);
        let v: Vec<f64> = (0..5000).map(|_| rng.normal()).collect();
        let r = ks_test(&v, &m);
        assert!(r.p_value > 0.01, "{r:?}");
        let shifted: Vec<f64> = v.iter().map(|x| x + 0.2).collect();
        assert!(ks_test(&shifted, &m).p_value < 1e-6);
        // Known values of the Kolmogorov tail.
        assert!((kolmogorov_q(1.36) - 0.0494).abs() < 1e-3);
        assert!((kolmogorov_q(1.63) - 0.0098).abs() < 1e-3);
    }

    #[test]
    fn mode_weights_and_subsampling() {
        let m = GaussianMixture::new(
            vec![0.8, 0.2],
            vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
            vec![Covariance::Isotropic(1.0); 2],
        )
        .unwrap();
        let x = m.sample_exact(50_000, &mut LaneRng::new(0, 1)).unwrap();
        let w = mode_weights(x.view(), &m);
        assert!((w[0] - 0.8).abs() < 5.0 * (0.16f64 / 50_000.0).sqrt(), "{w:?}");
        let s = subsample(x.view(), 100, &mut LaneRng::new(0, 2));
        assert_eq!(s.dim(), (100, 2));
        assert_eq!(subsample(x.view(), 100, &mut LaneRng::new(0, 2)), s, "deterministic");
    }
}

#[cfg(test)]
mod frechet_tests {
    use super::frechet_distance;
    use ndarray::Array2;

    /// For 2 × 2 covariances tr (A^{1/2} B A^{1/2})^{1/2} = √(tr AB + 2√(det A det B)), so the
    /// distance has a closed form even when A and B do not commute (where the tempting
    /// tr(A^{1/2} B^{1/2}) is wrong); equal sets are at distance 0.
    #[test]
    fn matches_the_closed_form_in_two_dimensions() {
        let mut r = crate::rng::LaneRng::new(4, 0);
        let mut v = vec![0.0f32; 2 * 500];
        r.fill_normal(&mut v);
        let x = Array2::from_shape_fn((500, 2), |(i, j)| v[2 * i + j] * if j == 0 { 3.0 } else { 0.5 });
        let mut w = vec![0.0f32; 2 * 400];
        r.fill_normal(&mut w);
        // A rotated, shifted and stretched cloud: its covariance does not commute with x's.
        let y = Array2::from_shape_fn((400, 2), |(i, j)| {
            let (a, b) = (2.0 * w[2 * i], 0.7 * w[2 * i + 1]);
            if j == 0 { 0.6 * a - 0.8 * b + 1.0 } else { 0.8 * a + 0.6 * b - 2.0 }
        });
        let moments = |m: &Array2<f32>| crate::diagnostics::mean_cov(m.view());
        let ((mx, a), (my, b)) = (moments(&x), moments(&y));
        let ab = a.dot(&b);
        let det = |m: &ndarray::Array2<f64>| m[[0, 0]] * m[[1, 1]] - m[[0, 1]] * m[[1, 0]];
        let cross = ((ab[[0, 0]] + ab[[1, 1]]) + 2.0 * (det(&a) * det(&b)).sqrt()).sqrt();
        let mean2 = (mx[0] - my[0]).powi(2) + (mx[1] - my[1]).powi(2);
        let exact = mean2 + a[[0, 0]] + a[[1, 1]] + b[[0, 0]] + b[[1, 1]] - 2.0 * cross;
        let got = frechet_distance(x.view(), y.view());
        assert!((got - exact).abs() < 1e-9 * exact, "{got} vs {exact}");
        assert!(frechet_distance(x.view(), x.view()) < 1e-9);
    }
}
