//! Convergence and efficiency diagnostics: moments, effective sample size and R-hat.
//!
//! ESS and R-hat follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
//! folding, and localization: an improved R-hat", as implemented in Stan and ArviZ:
//! split every chain in half, replace draws by normal scores of their pooled ranks, then
//! - bulk ESS = M·n / τ̂, with τ̂ from the chains' autocorrelations truncated by Geyer's
//!   initial monotone sequence;
//! - R-hat = max(R̂ of the rank-normalized draws, R̂ of the rank-normalized folded draws
//!   |θ − median|), where R̂ = √(var⁺/W).

use ndarray::{Array2, ArrayView2};
use rustfft::{FftPlanner, num_complex::Complex};

/// Sample mean and covariance (divisor n − 1) of the rows of `x`, accumulated in `f64`.
/// The column means of `x` (one sample per row), in f64.
pub fn mean(x: ArrayView2<f32>) -> Vec<f64> {
    let mut mean = vec![0.0f64; x.ncols()];
    for row in x.outer_iter() {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= x.nrows().max(1) as f64);
    mean
}

/// Mean and covariance of `x`.
pub fn mean_cov(x: ArrayView2<f32>) -> (Vec<f64>, Array2<f64>) {
    let (n, d) = x.dim();
    let mean = mean(x);
    // Σ (x − μ)(x − μ)ᵀ as a matrix product over chunks of centred rows (a blocked f64 GEMM,
    // the same order of operations on every run, so the result does not depend on threads).
    let mut cov = Array2::zeros((d, d));
    let chunk = 2048;
    let mut centered = Array2::<f64>::zeros((chunk.min(n.max(1)), d));
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let rows = end - start;
        for (k, row) in x.slice(ndarray::s![start..end, ..]).outer_iter().enumerate() {
            for c in 0..d {
                centered[[k, c]] = row[c] as f64 - mean[c];
            }
        }
        let block = centered.slice(ndarray::s![..rows, ..]);
        ndarray::linalg::general_mat_mul(1.0, &block.t(), &block, 1.0, &mut cov);
        start = end;
    }
    let denom = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in 0..=i {
            // Symmetric by construction up to rounding; make it exactly so.
            let v = 0.5 * (cov[[i, j]] + cov[[j, i]]) / denom;
            cov[[i, j]] = v;
            cov[[j, i]] = v;
        }
    }
    (mean, cov)
}

thread_local! {
    static PLANNER: std::cell::RefCell<FftPlanner<f64>> = std::cell::RefCell::new(FftPlanner::new());
}

/// Autocovariances of `x` at lags 0..n (divisor n), via FFT in O(n log n).
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return vec![];
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let size = (2 * n).next_power_of_two();
    let mut buf: Vec<Complex<f64>> = x.iter().map(|v| Complex::new(v - mean, 0.0)).collect();
    buf.resize(size, Complex::new(0.0, 0.0));
    // Plans (and their twiddle factors) are cached per thread: planning anew for every chain
    // and coordinate spent more time in sincos than the transforms themselves.
    let (fwd, inv) = PLANNER.with(|p| {
        let mut p = p.borrow_mut();
        (p.plan_fft_forward(size), p.plan_fft_inverse(size))
    });
    fwd.process(&mut buf);
    for v in buf.iter_mut() {
        *v = Complex::new(v.norm_sqr(), 0.0);
    }
    inv.process(&mut buf);
    buf[..n].iter().map(|v| v.re / (size as f64 * n as f64)).collect()
}

/// Split each chain in two halves (the middle draw is dropped when n is odd).
fn split(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * chains.len());
    for c in chains {
        let half = c.len() / 2;
        out.push(c[..half].to_vec());
        out.push(c[c.len() - half..].to_vec());
    }
    out
}

/// Replace every draw by the normal score of its pooled rank, Φ⁻¹((r − 3/8)/(S + 1/4)),
/// with average ranks for ties.
fn rank_normalize(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut all: Vec<(f64, u32, u32)> = Vec::with_capacity(chains.iter().map(Vec::len).sum());
    for (c, chain) in chains.iter().enumerate() {
        for (i, &v) in chain.iter().enumerate() {
            all.push((v, c as u32, i as u32));
        }
    }
    // Ties get the same (average) rank below, so an unstable sort gives the same result.
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let s = all.len() as f64;
    let mut out: Vec<Vec<f64>> = chains.iter().map(|c| vec![0.0; c.len()]).collect();
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = 0.5 * ((i + 1) + (j + 1)) as f64;
        let z = normal_quantile((rank - 0.375) / (s + 0.25));
        for item in &all[i..=j] {
            out[item.1 as usize][item.2 as usize] = z;
        }
        i = j + 1;
    }
    out
}

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1, by Acklam's rational approximation
/// (relative error below 1.2e-9, far below what rank normalization needs) — 20× cheaper than an
/// inverse error function, and rank normalization calls it once per draw.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Classic R̂ = √(var⁺/W) of equal-length chains.
fn rhat_basic(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len() as f64;
    let n = chains[0].len() as f64;
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let grand = means.iter().sum::<f64>() / m;
    let b = n / (m - 1.0) * means.iter().map(|x| (x - grand).powi(2)).sum::<f64>();
    let w = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / (n - 1.0))
        .sum::<f64>()
        / m;
    let var_plus = (n - 1.0) / n * w + b / n;
    (var_plus / w).sqrt()
}

/// ESS of equal-length chains (Geyer's initial monotone sequence on the combined
/// autocorrelation estimate, as in Stan).
fn ess_basic(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    let acov: Vec<Vec<f64>> = chains.iter().map(|c| autocovariance(c)).collect();
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / n as f64).collect();
    let mean_var = acov.iter().map(|a| a[0]).sum::<f64>() / m as f64 * n as f64 / (n as f64 - 1.0);
    let mut var_plus = mean_var * (n as f64 - 1.0) / n as f64;
    if m > 1 {
        let g = means.iter().sum::<f64>() / m as f64;
        var_plus += means.iter().map(|x| (x - g).powi(2)).sum::<f64>() / (m as f64 - 1.0);
    }
    if var_plus.is_nan() || var_plus <= 0.0 {
        return f64::NAN; // constant chains
    }
    let rho = |t: usize| 1.0 - (mean_var - acov.iter().map(|a| a[t]).sum::<f64>() / m as f64) / var_plus;
    let mut rho_hat = vec![0.0; n];
    rho_hat[0] = 1.0;
    let mut even = 1.0;
    let mut odd = rho(1);
    rho_hat[1] = odd;
    let mut t = 1;
    while t + 3 < n && even + odd > 0.0 {
        even = rho(t + 1);
        odd = rho(t + 2);
        if even + odd >= 0.0 {
            rho_hat[t + 1] = even;
            rho_hat[t + 2] = odd;
        }
        t += 2;
    }
    let max_t = t.saturating_sub(2).max(1);
    if even > 0.0 && max_t + 1 < n {
        rho_hat[max_t + 1] = even;
    }
    // Initial monotone sequence: pairs of autocorrelations must not increase.
    let mut t = 1;
    while t + 2 <= max_t {
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t] {
            rho_hat[t + 1] = 0.5 * (rho_hat[t - 1] + rho_hat[t]);
            rho_hat[t + 2] = rho_hat[t + 1];
        }
        t += 2;
    }
    let total = (m * n) as f64;
    let tail = if max_t + 1 < n { rho_hat[max_t + 1] } else { 0.0 };
    let tau = (-1.0 + 2.0 * rho_hat[..=max_t].iter().sum::<f64>() + tail).max(1.0 / total.log10());
    total / tau
}

/// Bulk effective sample size of one quantity over several chains (each chain a vector of its
/// draws in order). Needs at least 4 draws per chain; returns NaN for constant draws.
pub fn ess_bulk(chains: &[Vec<f64>]) -> f64 {
    if chains.is_empty() || chains[0].len() < 4 {
        return f64::NAN;
    }
    ess_basic(&rank_normalize(&split(chains)))
}

/// Rank-normalized split R-hat (the maximum of the bulk and the folded-tail versions).
/// Values above 1.01 signal chains that have not mixed.
pub fn rhat(chains: &[Vec<f64>]) -> f64 {
    ess_bulk_and_rhat(chains).1
}

/// [`ess_bulk`] and [`rhat`] together, sharing the split and the bulk rank normalization (the
/// expensive part: a sort and a normal quantile per draw).
pub fn ess_bulk_and_rhat(chains: &[Vec<f64>]) -> (f64, f64) {
    if chains.is_empty() || chains[0].len() < 4 {
        return (f64::NAN, f64::NAN);
    }
    let s = split(chains);
    let bulk_z = rank_normalize(&s);
    let ess = ess_basic(&bulk_z);
    let bulk = rhat_basic(&bulk_z);
    let mut all: Vec<f64> = s.iter().flatten().copied().collect();
    let n = all.len();
    let hi = *all.select_nth_unstable_by(n / 2, f64::total_cmp).1;
    let med = if n % 2 == 1 {
        hi
    } else {
        // The largest of the lower half.
        all[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max) * 0.5 + hi * 0.5
    };
    let folded: Vec<Vec<f64>> = s.iter().map(|c| c.iter().map(|v| (v - med).abs()).collect()).collect();
    let tail = rhat_basic(&rank_normalize(&folded));
    (ess, bulk.max(tail))
}

/// Per-coordinate chains from kept samples laid out as `draws × chains` rows
/// (the layout of [`crate::sampler::RunResult::samples`]).
pub fn chains_of(samples: ArrayView2<f32>, chains: usize, coord: usize) -> Vec<Vec<f64>> {
    let draws = samples.nrows() / chains;
    (0..chains).map(|c| (0..draws).map(|k| samples[[k * chains + c, coord]] as f64).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_matches_statrs() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let n = Normal::new(0.0, 1.0).unwrap();
        for k in 1..20_000 {
            let p = k as f64 / 20_000.0;
            let (a, b) = (normal_quantile(p), n.inverse_cdf(p));
            assert!((a - b).abs() < 2e-9 * b.abs().max(1.0), "p = {p}: {a} vs {b}");
        }
        for p in [1e-12, 1e-6, 1e-3, 1.0 - 1e-6] {
            let (a, b) = (normal_quantile(p), n.inverse_cdf(p));
            assert!((a - b).abs() < 2e-9 * b.abs(), "p = {p}: {a} vs {b}");
        }
    }
    use crate::rng::LaneRng;

    fn ar1(phi: f64, n: usize, chains: usize, seed: u64) -> Vec<Vec<f64>> {
        (0..chains)
            .map(|c| {
                let mut rng = LaneRng::new(seed, c as u64);
                let mut x = rng.normal() / (1.0 - phi * phi).sqrt();
                (0..n)
                    .map(|_| {
                        x = phi * x + rng.normal();
                        x
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ess_of_independent_draws_is_about_their_number() {
        let ch = ar1(0.0, 2000, 4, 1);
        let ess = ess_bulk(&ch);
        assert!((ess / 8000.0 - 1.0).abs() < 0.1, "{ess}");
        let r = rhat(&ch);
        assert!(r < 1.01, "{r}");
    }

    #[test]
    fn ess_of_ar1_matches_theory() {
        // ESS/N = (1 − φ)/(1 + φ) for an AR(1) chain.
        let phi = 0.9;
        let ch = ar1(phi, 20_000, 4, 2);
        let ess = ess_bulk(&ch);
        let expect = 80_000.0 * (1.0 - phi) / (1.0 + phi);
        assert!((ess / expect - 1.0).abs() < 0.15, "{ess} vs {expect}");
    }

    #[test]
    fn rhat_flags_chains_stuck_in_different_places() {
        let mut ch = ar1(0.5, 1000, 4, 3);
        for v in ch[0].iter_mut() {
            *v += 3.0;
        }
        assert!(rhat(&ch) > 1.1);
    }

    #[test]
    fn autocovariance_matches_direct_sum() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 37 % 11) as f64).sin()).collect();
        let a = autocovariance(&x);
        let m = x.iter().sum::<f64>() / 50.0;
        for lag in [0, 1, 5, 49] {
            let direct = (0..50 - lag).map(|i| (x[i] - m) * (x[i + lag] - m)).sum::<f64>() / 50.0;
            assert!((a[lag] - direct).abs() < 1e-12);
        }
    }

    #[test]
    fn mean_cov_is_exact_on_a_small_example() {
        let x = ndarray::array![[1.0f32, 2.0], [3.0, 6.0], [5.0, 7.0]];
        let (m, c) = mean_cov(x.view());
        assert_eq!(m, vec![3.0, 5.0]);
        assert_eq!(c[[0, 0]], 4.0);
        assert_eq!(c[[0, 1]], 5.0);
        assert_eq!(c[[1, 1]], 7.0);
    }
}
