//! Gaussians and Gaussian mixtures, with exact scores for every noise level σ.
//!
//! p(x) = Σₖ wₖ N(x; μₖ, Σₖ). The score is the responsibility-weighted sum of the component
//! scores, computed with a log-sum-exp so it stays finite far from every mode:
//!
//! s(x) = Σₖ rₖ(x) · (−Σₖ⁻¹(x − μₖ)),  rₖ = softmaxₖ(log wₖ + log N(x; μₖ, Σₖ)).
//!
//! Convolving with N(0, σ²I) keeps the family: p_σ = Σₖ wₖ N(μₖ, Σₖ + σ²I), so
//! [`Target::score_at`] is exact for every σ ≥ 0. It rebuilds nothing: diagonal precisions are
//! 1/(v + σ²), and full covariances use the eigendecomposition Σ = QΛQᵀ stored once, whitening
//! with (Λ + σ²)^{-1/2} Qᵀ. That makes annealed Langevin (and later the
//! diffusion samplers) testable against exact answers with no training at all.

use super::{Marginal, Scales, Target};
use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::LaneRng;
use crate::sampler::Init;
use crate::vmath::{self, LANES, V};
use multiversion::multiversion;
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::Array2;
use std::f64::consts::PI;

/// Covariance of one Gaussian component.
#[derive(Clone, Debug, PartialEq)]
pub enum Covariance {
    /// σ²I, given by the variance σ².
    Isotropic(f64),
    /// diag(v), given by the variances v.
    Diagonal(Vec<f64>),
    /// A full symmetric positive-definite d × d matrix.
    Full(Array2<f64>),
}

impl Covariance {
    fn plus_identity(&self, s2: f64) -> Covariance {
        match self {
            Covariance::Isotropic(v) => Covariance::Isotropic(v + s2),
            Covariance::Diagonal(v) => Covariance::Diagonal(v.iter().map(|x| x + s2).collect()),
            Covariance::Full(m) => {
                let mut m = m.clone();
                for i in 0..m.nrows() {
                    m[[i, i]] += s2;
                }
                Covariance::Full(m)
            }
        }
    }

    /// The covariance as a dense matrix.
    pub fn to_dense(&self, d: usize) -> Array2<f64> {
        match self {
            Covariance::Isotropic(v) => Array2::from_diag_elem(d, *v),
            Covariance::Diagonal(v) => Array2::from_diag(&ndarray::Array1::from(v.clone())),
            Covariance::Full(m) => m.clone(),
        }
    }
}

/// One component, with what the kernels need precomputed.
#[derive(Clone, Debug)]
struct Component {
    mean: Vec<f64>,
    cov: Covariance,
    /// Lower Cholesky factor L (Σ = L Lᵀ) for full covariances.
    chol: Option<DMatrix<f64>>,
    /// L⁻¹ for full covariances: y = L⁻¹(x − μ) has ‖y‖² = (x − μ)ᵀΣ⁻¹(x − μ).
    whiten: Option<DMatrix<f64>>,
    /// log wₖ − ½ log det Σₖ − (d/2) log 2π.
    log_norm: f64,
    /// Smallest and largest eigenvalue of Σₖ.
    eig_min: f64,
    eig_max: f64,
    /// Eigenvalues λ and eigenvectors Q (columns) of a full Σₖ = QΛQᵀ, for Σₖ + σ²I.
    eig: Option<(Vec<f64>, DMatrix<f64>)>,
}

/// A Gaussian mixture Σₖ wₖ N(μₖ, Σₖ) in d dimensions. A single Gaussian is a mixture with one
/// component ([`GaussianMixture::gaussian`]).
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    dim: usize,
    weights: Vec<f64>,
    components: Vec<Component>,
    name: Option<String>,
    init: Option<Init>,
    kernel: KernelData,
    /// Kernel data of the perturbed mixture at recently used σ (keyed by σ's bits): a sampler
    /// asks for the same σ for many steps of every block, and rebuilding the data per call
    /// (three allocations and K·d logarithms) cost annealed Langevin a fifth of its speed.
    at_sigma: SigmaCache,
}

/// Up to [`SigmaCache::CAP`] kernel data by σ; cleared when full (a continuous-time sampler
/// with a new σ per step then pays what it would without the cache).
#[derive(Debug, Default)]
struct SigmaCache(std::sync::RwLock<Vec<(u64, std::sync::Arc<KernelData>)>>);

impl SigmaCache {
    const CAP: usize = 256;

    fn get_or_build(&self, sigma: f64, build: impl FnOnce() -> KernelData) -> std::sync::Arc<KernelData> {
        let key = sigma.to_bits();
        let hit = self.0.read().ok().and_then(|v| v.iter().find(|(k, _)| *k == key).map(|(_, d)| d.clone()));
        if let Some(d) = hit {
            return d;
        }
        let d = std::sync::Arc::new(build());
        if let Ok(mut v) = self.0.write() {
            if v.len() >= Self::CAP {
                v.clear();
            }
            v.push((key, d.clone()));
        }
        d
    }
}

impl Clone for SigmaCache {
    /// A clone starts with an empty cache.
    fn clone(&self) -> Self {
        SigmaCache::default()
    }
}

/// Data laid out for the vectorized kernels (all `f32`).
#[derive(Clone, Debug)]
enum KernelData {
    /// Diagonal covariances: precision diagonals, K × d.
    Diagonal { means: Vec<f32>, precision: Vec<f32>, log_norm: Vec<f32> },
    /// Full covariances: a whitening W (‖W(x − μ)‖² = Mahalanobis²) row-major, K × d × d;
    /// lower triangular (L⁻¹) at σ = 0, full ((Λ + σ²)^{-1/2} Qᵀ) for σ > 0.
    Full { means: Vec<f32>, whiten: Vec<f32>, log_norm: Vec<f32>, triangular: bool },
}

impl GaussianMixture {
    /// A mixture from weights (must be non-negative and sum to 1 within 1e-6), means and
    /// covariances. Every covariance is checked to be symmetric positive-definite.
    pub fn new(weights: Vec<f64>, means: Vec<Vec<f64>>, covariances: Vec<Covariance>) -> Result<Self> {
        if weights.is_empty() {
            return Err(invalid!("a Gaussian mixture needs at least one component (weights is empty)"));
        }
        if means.len() != weights.len() || covariances.len() != weights.len() {
            return Err(invalid!(
                "a Gaussian mixture needs one weight, one mean and one covariance per component; got {} weights, {} means and {} covariances",
                weights.len(),
                means.len(),
                covariances.len()
            ));
        }
        for (k, w) in weights.iter().enumerate() {
            if !w.is_finite() || *w < 0.0 {
                return Err(invalid!("weight {k} is {w}; mixture weights must be finite and non-negative"));
            }
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-6 {
            return Err(invalid!(
                "mixture weights sum to {total}, not 1; divide them by their sum (TOML files do this for you, with a warning)"
            ));
        }
        let dim = means[0].len();
        if dim == 0 {
            return Err(invalid!("mean 0 is empty; a mean needs one value per dimension"));
        }
        let mut components = Vec::with_capacity(weights.len());
        for (k, (mean, cov)) in means.into_iter().zip(covariances).enumerate() {
            if mean.len() != dim {
                return Err(invalid!(
                    "mean {k} has {} values but mean 0 has {dim}; all means need the same dimension",
                    mean.len()
                ));
            }
            if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
                return Err(invalid!("mean {k}, entry {i} is {}; means must be finite", mean[i]));
            }
            components.push(Component::new(k, weights[k], mean, cov, dim)?);
        }
        let kernel = KernelData::build(dim, &components);
        Ok(GaussianMixture {
            dim,
            weights,
            components,
            name: None,
            init: None,
            kernel,
            at_sigma: SigmaCache::default(),
        })
    }

    /// A single Gaussian N(mean, cov).
    pub fn gaussian(mean: Vec<f64>, cov: Covariance) -> Result<Self> {
        GaussianMixture::new(vec![1.0], vec![mean], vec![cov])
    }

    /// Set the name shown in reports.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Set the default initial distribution of particles.
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = Some(init);
        self
    }

    /// Mixture weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.components.len()
    }
    /// Mean of component `k`.
    pub fn mean(&self, k: usize) -> &[f64] {
        &self.components[k].mean
    }
    /// Covariance of component `k`.
    pub fn covariance(&self, k: usize) -> &Covariance {
        &self.components[k].cov
    }

    /// log wₖ + log N(x; μₖ, Σₖ) for every component, in `f64` (exact arithmetic path used by
    /// metrics; the samplers use the vectorized `f32` kernels).
    pub fn component_log_densities(&self, x: &[f64]) -> Vec<f64> {
        self.components.iter().map(|c| c.log_norm - 0.5 * c.mahalanobis2(x)).collect()
    }

    /// The component with the largest responsibility for `x`.
    pub fn assign(&self, x: &[f64]) -> usize {
        let l = self.component_log_densities(x);
        let mut best = 0;
        for k in 1..l.len() {
            if l[k] > l[best] {
                best = k;
            }
        }
        best
    }

    /// Normalized log-density log p(x), in `f64`.
    pub fn log_density(&self, x: &[f64]) -> f64 {
        let l = self.component_log_densities(x);
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    }

    /// Score ∇ log p(x), in `f64`.
    pub fn score(&self, x: &[f64]) -> Vec<f64> {
        let l = self.component_log_densities(x);
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let mut s = vec![0.0; self.dim];
        for (c, ek) in self.components.iter().zip(&e) {
            let g = c.score(x);
            for i in 0..self.dim {
                s[i] += ek / z * g[i];
            }
        }
        s
    }
}

impl Component {
    fn new(k: usize, weight: f64, mean: Vec<f64>, cov: Covariance, dim: usize) -> Result<Self> {
        let mut full_eig = None;
        let (log_det, chol, whiten, eig_min, eig_max) = match &cov {
            Covariance::Isotropic(v) => {
                if !v.is_finite() || *v <= 0.0 {
                    return Err(invalid!("component {k}: variance {v} must be positive and finite"));
                }
                (dim as f64 * v.ln(), None, None, *v, *v)
            }
            Covariance::Diagonal(v) => {
                if v.len() != dim {
                    return Err(invalid!("component {k}: {} variances for a {dim}-dimensional mean", v.len()));
                }
                if let Some(i) = v.iter().position(|x| !x.is_finite() || *x <= 0.0) {
                    return Err(invalid!(
                        "component {k}: variance {i} is {}; variances must be positive and finite",
                        v[i]
                    ));
                }
                let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = v.iter().cloned().fold(0.0, f64::max);
                (v.iter().map(|x| x.ln()).sum(), None, None, lo, hi)
            }
            Covariance::Full(m) => {
                if m.dim() != (dim, dim) {
                    return Err(invalid!(
                        "component {k}: covariance is {}×{} but the mean has {dim} entries; it must be {dim}×{dim}",
                        m.nrows(),
                        m.ncols()
                    ));
                }
                let scale = m.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(f64::MIN_POSITIVE);
                for i in 0..dim {
                    for j in 0..dim {
                        let (a, b) = (m[[i, j]], m[[j, i]]);
                        if !a.is_finite() {
                            return Err(invalid!(
                                "component {k}: covariance entry [{i}][{j}] is {a}; entries must be finite"
                            ));
                        }
                        if (a - b).abs() > 1e-9 * scale {
                            return Err(invalid!(
                                "component {k}: covariance is not symmetric: entry [{i}][{j}] = {a} but [{j}][{i}] = {b}"
                            ));
                        }
                    }
                }
                let mat = DMatrix::from_fn(dim, dim, |i, j| 0.5 * (m[[i, j]] + m[[j, i]]));
                let se = SymmetricEigen::new(mat.clone());
                let eig = se.eigenvalues.clone();
                let lo = eig.iter().cloned().fold(f64::INFINITY, f64::min);
                let hi = eig.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                full_eig = Some((eig.iter().cloned().collect::<Vec<f64>>(), se.eigenvectors));
                if lo <= 1e-12 * hi.abs().max(f64::MIN_POSITIVE) {
                    return Err(invalid!(
                        "component {k}: covariance is not positive-definite (smallest eigenvalue {lo:.3e}); \
                         a covariance needs all eigenvalues positive"
                    ));
                }
                let chol = mat
                    .clone()
                    .cholesky()
                    .ok_or_else(|| invalid!("component {k}: covariance is not positive-definite (Cholesky failed)"))?;
                let l = chol.l();
                let log_det = 2.0 * l.diagonal().iter().map(|v| v.ln()).sum::<f64>();
                let linv = l
                    .clone()
                    .try_inverse()
                    .ok_or_else(|| invalid!("component {k}: covariance is numerically singular"))?;
                (log_det, Some(l), Some(linv), lo, hi)
            }
        };
        let log_norm = weight.ln() - 0.5 * log_det - 0.5 * dim as f64 * (2.0 * PI).ln();
        Ok(Component { mean, cov, chol, whiten, log_norm, eig_min, eig_max, eig: full_eig })
    }

    /// (x − μ)ᵀ Σ⁻¹ (x − μ) in f64.
    fn mahalanobis2(&self, x: &[f64]) -> f64 {
        let d = self.mean.len();
        match &self.cov {
            Covariance::Isotropic(v) => (0..d).map(|i| (x[i] - self.mean[i]).powi(2)).sum::<f64>() / v,
            Covariance::Diagonal(v) => (0..d).map(|i| (x[i] - self.mean[i]).powi(2) / v[i]).sum(),
            Covariance::Full(_) => {
                let w = self.whiten.as_ref().expect("full covariance has L⁻¹");
                (0..d).map(|i| (0..=i).map(|j| w[(i, j)] * (x[j] - self.mean[j])).sum::<f64>().powi(2)).sum()
            }
        }
    }

    /// Σ⁻¹ (for a full covariance, L⁻ᵀL⁻¹ from the Cholesky factor).
    fn precision(&self) -> DMatrix<f64> {
        let d = self.mean.len();
        match &self.cov {
            Covariance::Isotropic(v) => DMatrix::from_diagonal_element(d, d, 1.0 / v),
            Covariance::Diagonal(v) => DMatrix::from_fn(d, d, |i, j| if i == j { 1.0 / v[i] } else { 0.0 }),
            Covariance::Full(_) => {
                let w = self.whiten.as_ref().expect("full covariance has L⁻¹");
                w.transpose() * w
            }
        }
    }

    /// −Σ⁻¹(x − μ) in f64.
    fn score(&self, x: &[f64]) -> Vec<f64> {
        let d = self.mean.len();
        match &self.cov {
            Covariance::Isotropic(v) => (0..d).map(|i| -(x[i] - self.mean[i]) / v).collect(),
            Covariance::Diagonal(v) => (0..d).map(|i| -(x[i] - self.mean[i]) / v[i]).collect(),
            Covariance::Full(_) => {
                let w = self.whiten.as_ref().expect("full covariance has L⁻¹");
                let y: Vec<f64> = (0..d).map(|i| (0..=i).map(|j| w[(i, j)] * (x[j] - self.mean[j])).sum()).collect();
                (0..d).map(|j| -(j..d).map(|i| w[(i, j)] * y[i]).sum::<f64>()).collect()
            }
        }
    }
}

impl KernelData {
    /// Kernel data of the perturbed mixture Σₖ wₖ N(μₖ, Σₖ + σ²I), from what each component
    /// stored at construction (no factorization is recomputed).
    fn at_sigma(dim: usize, weights: &[f64], comps: &[Component], sigma: f64) -> KernelData {
        let s2 = sigma * sigma;
        let means: Vec<f32> = comps.iter().flat_map(|c| c.mean.iter().map(|&v| v as f32)).collect();
        let half_log_2pi = 0.5 * dim as f64 * (2.0 * PI).ln();
        // Variances along the whitening axes of each component: diagonal entries, or eigenvalues.
        let vars = |c: &Component| -> Vec<f64> {
            match (&c.cov, &c.eig) {
                (Covariance::Isotropic(v), _) => vec![v + s2; dim],
                (Covariance::Diagonal(v), _) => v.iter().map(|x| x + s2).collect(),
                (Covariance::Full(_), Some((lam, _))) => lam.iter().map(|x| x + s2).collect(),
                (Covariance::Full(_), None) => unreachable!("full covariances store their eigendecomposition"),
            }
        };
        let log_norm: Vec<f32> = comps
            .iter()
            .zip(weights)
            .map(|(c, w)| (w.ln() - 0.5 * vars(c).iter().map(|v| v.ln()).sum::<f64>() - half_log_2pi) as f32)
            .collect();
        if comps.iter().all(|c| !matches!(c.cov, Covariance::Full(_))) {
            let precision = comps.iter().flat_map(|c| vars(c).into_iter().map(|v| (1.0 / v) as f32)).collect();
            return KernelData::Diagonal { means, precision, log_norm };
        }
        let mut whiten = Vec::with_capacity(comps.len() * dim * dim);
        for c in comps {
            let v = vars(c);
            for i in 0..dim {
                for j in 0..dim {
                    let w = match &c.eig {
                        // Row i of (Λ + σ²)^{-1/2} Qᵀ: column i of Q, scaled.
                        Some((_, q)) => q[(j, i)] / v[i].sqrt(),
                        None if i == j => 1.0 / v[i].sqrt(),
                        None => 0.0,
                    };
                    whiten.push(w as f32);
                }
            }
        }
        KernelData::Full { means, whiten, log_norm, triangular: false }
    }

    fn build(dim: usize, comps: &[Component]) -> KernelData {
        let means: Vec<f32> = comps.iter().flat_map(|c| c.mean.iter().map(|&v| v as f32)).collect();
        let log_norm: Vec<f32> = comps.iter().map(|c| c.log_norm as f32).collect();
        if comps.iter().all(|c| !matches!(c.cov, Covariance::Full(_))) {
            let precision = comps
                .iter()
                .flat_map(|c| match &c.cov {
                    Covariance::Isotropic(v) => vec![(1.0 / v) as f32; dim],
                    Covariance::Diagonal(v) => v.iter().map(|x| (1.0 / x) as f32).collect(),
                    Covariance::Full(_) => unreachable!(),
                })
                .collect();
            KernelData::Diagonal { means, precision, log_norm }
        } else {
            let mut whiten = Vec::with_capacity(comps.len() * dim * dim);
            for c in comps {
                let w: DMatrix<f64> = match &c.cov {
                    Covariance::Isotropic(v) => DMatrix::from_diagonal_element(dim, dim, 1.0 / v.sqrt()),
                    Covariance::Diagonal(v) => {
                        DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(dim, v.iter().map(|x| 1.0 / x.sqrt())))
                    }
                    Covariance::Full(_) => c.whiten.clone().expect("full covariance has L⁻¹"),
                };
                for i in 0..dim {
                    for j in 0..dim {
                        whiten.push(w[(i, j)] as f32);
                    }
                }
            }
            KernelData::Full { means, whiten, log_norm, triangular: true }
        }
    }
}

impl GaussianMixture {
    /// The perturbed mixture Σₖ wₖ N(μₖ, Σₖ + σ²I) as a target of its own (for analysis and
    /// exact references at σ; samplers use [`Target::score_at`], which rebuilds nothing).
    pub fn perturbed(&self, sigma: f64) -> Result<GaussianMixture> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(crate::field::sigma_error(&self.name(), (0.0, f64::INFINITY), sigma));
        }
        let s2 = sigma * sigma;
        let covs = self.components.iter().map(|c| c.cov.plus_identity(s2)).collect();
        let means = self.components.iter().map(|c| c.mean.clone()).collect();
        let mut p = GaussianMixture::new(self.weights.clone(), means, covs)?;
        p.name = Some(format!("{} * N(0, {sigma:.4}²)", self.name()));
        Ok(p)
    }

    fn run_kernel(&self, kd: &KernelData, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) {
        debug_assert_eq!(x.dim(), self.dim);
        let (d, k, stride) = (self.dim, self.components.len(), x.stride());
        match kd {
            KernelData::Diagonal { means, precision, log_norm } => {
                diagonal_kernel(d, k, stride, means, precision, log_norm, x.data(), score.data_mut(), log_density)
            }
            KernelData::Full { means, whiten, log_norm, triangular } => full_kernel(
                d,
                k,
                stride,
                FullData { means, whiten, log_norm, triangular: *triangular },
                x.data(),
                score.data_mut(),
                log_density,
            ),
        }
    }
}

/// What [`full_kernel`] needs of a mixture with full covariances.
#[derive(Clone, Copy)]
struct FullData<'a> {
    means: &'a [f32],
    whiten: &'a [f32],
    log_norm: &'a [f32],
    /// W is lower triangular (skip its upper half).
    triangular: bool,
}

impl Target for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None if self.components.len() == 1 => format!("gaussian(d={})", self.dim),
            None => format!("gmm({} components, d={})", self.components.len(), self.dim),
        }
    }

    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        self.run_kernel(&self.kernel, x, score, log_density);
        Ok(())
    }

    fn noise_range(&self) -> (f64, f64) {
        (0.0, f64::INFINITY)
    }

    fn score_at(&self, x: &Block, sigma: f64, out: &mut Block) -> Result<()> {
        if sigma == 0.0 {
            return self.eval(x, out, None);
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(crate::field::sigma_error(&self.name(), self.noise_range(), sigma));
        }
        let kd = self
            .at_sigma
            .get_or_build(sigma, || KernelData::at_sigma(self.dim, &self.weights, &self.components, sigma));
        self.run_kernel(&kd, x, out, None);
        Ok(())
    }

    fn score_f64(&self, x: &[f64], score: &mut [f64]) -> bool {
        score.copy_from_slice(&self.score(x));
        true
    }
    /// tr ∇s = Σ r_k (‖g_k‖² − tr P_k) − ‖s‖² of the mixture perturbed by σ, in `f64`.
    fn score_divergence_at(&self, x: &Block, sigma: f64, out: &mut [f64]) -> Result<bool> {
        let p = if sigma == 0.0 { self.clone() } else { self.perturbed(sigma)? };
        let d = self.dim;
        let mut jac = vec![0.0; d * d];
        for (i, o) in out.iter_mut().enumerate().take(x.len()) {
            p.score_jacobian(&x.particle(i), &mut jac);
            *o = (0..d).map(|c| jac[c * d + c]).sum();
        }
        Ok(true)
    }
    /// ∇s = Σ r_k (−P_k + g_k g_kᵀ) − s sᵀ with responsibilities r_k, component scores g_k and
    /// precisions P_k.
    fn score_jacobian(&self, x: &[f64], jac: &mut [f64]) -> bool {
        let d = self.dim;
        let l = self.component_log_densities(x);
        let m = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
        let z: f64 = e.iter().sum();
        jac.fill(0.0);
        let mut s = vec![0.0; d];
        for (c, ek) in self.components.iter().zip(&e) {
            let r = ek / z;
            if r == 0.0 {
                continue;
            }
            let g = c.score(x);
            let p = c.precision();
            for i in 0..d {
                s[i] += r * g[i];
                for j in 0..d {
                    jac[i * d + j] += r * (g[i] * g[j] - p[(i, j)]);
                }
            }
        }
        for i in 0..d {
            for j in 0..d {
                jac[i * d + j] -= s[i] * s[j];
            }
        }
        true
    }

    fn mixture(&self) -> Option<&GaussianMixture> {
        Some(self)
    }

    fn marginal(&self, coord: usize) -> Option<Marginal> {
        if coord >= self.dim {
            return None;
        }
        let stds = self
            .components
            .iter()
            .map(|c| match &c.cov {
                Covariance::Isotropic(v) => v.sqrt(),
                Covariance::Diagonal(v) => v[coord].sqrt(),
                Covariance::Full(m) => m[[coord, coord]].sqrt(),
            })
            .collect();
        Some(Marginal::NormalMixture {
            weights: self.weights.clone(),
            means: self.components.iter().map(|c| c.mean[coord]).collect(),
            stds,
        })
    }

    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let d = self.dim;
        let mut out = Array2::zeros((n, d));
        let mut z = vec![0.0f64; d];
        for mut row in out.outer_iter_mut() {
            // Component by inverse CDF of the weights.
            let u = rng.uniform_f64();
            let mut k = 0;
            let mut acc = self.weights[0];
            while u > acc && k + 1 < self.weights.len() {
                k += 1;
                acc += self.weights[k];
            }
            let c = &self.components[k];
            for v in z.iter_mut() {
                *v = rng.normal();
            }
            for i in 0..d {
                let noise = match &c.cov {
                    Covariance::Isotropic(v) => v.sqrt() * z[i],
                    Covariance::Diagonal(v) => v[i].sqrt() * z[i],
                    Covariance::Full(_) => {
                        let l = c.chol.as_ref().expect("full covariance has L");
                        (0..=i).map(|j| l[(i, j)] * z[j]).sum()
                    }
                };
                row[i] = (c.mean[i] + noise) as f32;
            }
        }
        Some(out)
    }

    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let d = self.dim;
        let mut mean = vec![0.0; d];
        for (w, c) in self.weights.iter().zip(&self.components) {
            for i in 0..d {
                mean[i] += w * c.mean[i];
            }
        }
        let mut cov = Array2::zeros((d, d));
        for (w, c) in self.weights.iter().zip(&self.components) {
            let s = c.cov.to_dense(d);
            for i in 0..d {
                for j in 0..d {
                    cov[[i, j]] += w * (s[[i, j]] + (c.mean[i] - mean[i]) * (c.mean[j] - mean[j]));
                }
            }
        }
        Some((mean, cov))
    }

    fn mean_and_variances(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let d = self.dim;
        let mut mean = vec![0.0; d];
        for (w, c) in self.weights.iter().zip(&self.components) {
            mean.iter_mut().zip(&c.mean).for_each(|(m, x)| *m += w * x);
        }
        let mut var = vec![0.0; d];
        for (w, c) in self.weights.iter().zip(&self.components) {
            for i in 0..d {
                let s = match &c.cov {
                    Covariance::Isotropic(v) => *v,
                    Covariance::Diagonal(v) => v[i],
                    Covariance::Full(m) => m[[i, i]],
                };
                var[i] += w * (s + (c.mean[i] - mean[i]).powi(2));
            }
        }
        Some((mean, var))
    }

    fn scales(&self) -> Option<Scales> {
        let mut far = 0.0f64;
        for a in &self.components {
            for b in &self.components {
                let dist = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
                far = far.max(dist);
            }
        }
        let widest = self.components.iter().map(|c| c.eig_max.sqrt()).fold(0.0, f64::max);
        let narrowest = self.components.iter().map(|c| c.eig_min.sqrt()).fold(f64::INFINITY, f64::min);
        Some(Scales { largest: far + 6.0 * widest, smallest: narrowest })
    }

    fn default_init(&self) -> Init {
        if let Some(init) = &self.init {
            return init.clone();
        }
        let (mean, var) = self.mean_and_variances().expect("mixtures know their moments");
        super::covering_region(&mean, &var)
    }
}

/// Most components kept on the stack in the kernels; larger mixtures use the heap.
const STACK_COMPONENTS: usize = 8;

/// Score and log-density of a diagonal-covariance mixture over a coordinate-major block.
/// `x`, `score`: d rows of `stride` values. Two passes per chunk of [`LANES`] particles:
/// component log-densities and their maximum, then the soft-max weighted component scores.
///
/// Small (d, K) get their own compiled copy with constant loop bounds (fully unrolled,
/// everything in registers); the rest use the general loops.
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn diagonal_kernel(
    d: usize,
    k: usize,
    stride: usize,
    means: &[f32],
    precision: &[f32],
    log_norm: &[f32],
    x: &[f32],
    score: &mut [f32],
    log_density: Option<&mut [f32]>,
) {
    macro_rules! fixed {
        ($($d:literal, $k:literal);*) => {
            match (d, k) {
                $(($d, $k) => diagonal_body::<$d, $k>(d, k, stride, means, precision, log_norm, x, score, log_density),)*
                _ => diagonal_body::<0, 0>(d, k, stride, means, precision, log_norm, x, score, log_density),
            }
        };
    }
    fixed!(1, 1; 1, 2; 1, 3; 2, 1; 2, 2; 2, 3; 2, 4; 2, 8; 3, 1; 3, 2)
}

/// Body of [`diagonal_kernel`]; `D`, `K` > 0 fix d and k at compile time, 0 means "use the
/// run-time value".
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn diagonal_body<const D: usize, const K: usize>(
    d: usize,
    k: usize,
    stride: usize,
    means: &[f32],
    precision: &[f32],
    log_norm: &[f32],
    x: &[f32],
    score: &mut [f32],
    mut log_density: Option<&mut [f32]>,
) {
    let d = if D > 0 { D } else { d };
    let k = if K > 0 { K } else { k };
    let mut stack = [V::splat(0.0); STACK_COMPONENTS];
    let mut heap = Vec::new();
    let logits: &mut [V] = if k <= STACK_COMPONENTS {
        &mut stack[..k]
    } else {
        heap.resize(k, V::splat(0.0));
        &mut heap[..]
    };
    for j0 in (0..stride).step_by(LANES) {
        // Pass 1: log wₖ + log N(x; μₖ, Σₖ) and the largest of them.
        let mut max = V::splat(f32::NEG_INFINITY);
        for kk in 0..k {
            let mut q = V::splat(0.0);
            for c in 0..d {
                let t = V::load(x, c * stride + j0) - V::splat(means[kk * d + c]);
                q = (t * t).mul_add(V::splat(precision[kk * d + c]), q);
            }
            let l = q.mul_add(V::splat(-0.5), V::splat(log_norm[kk]));
            logits[kk] = l;
            max = max.max(l);
        }
        if k == 1 {
            // A single Gaussian: no soft-max needed.
            for c in 0..d {
                let s = (V::splat(means[c]) - V::load(x, c * stride + j0)) * V::splat(precision[c]);
                s.store(score, c * stride + j0);
            }
            if let Some(ld) = log_density.as_deref_mut() {
                logits[0].store(ld, j0);
            }
            continue;
        }
        // Pass 2: soft-max weights eₖ = exp(lₖ − max) and Σₖ eₖ · Pₖ(μₖ − x), one coordinate at
        // a time so the accumulator stays in a register.
        let mut sum = V::splat(0.0);
        for kk in 0..k {
            let e = (logits[kk] - max).exp();
            logits[kk] = e;
            sum = sum + e;
        }
        let inv = V::splat(1.0) / sum;
        for c in 0..d {
            let xc = V::load(x, c * stride + j0);
            let mut acc = V::splat(0.0);
            for kk in 0..k {
                let w = logits[kk] * V::splat(precision[kk * d + c]);
                acc = w.mul_add(V::splat(means[kk * d + c]) - xc, acc);
            }
            (acc * inv).store(score, c * stride + j0);
        }
        if let Some(ld) = log_density.as_deref_mut() {
            (max + sum.ln()).store(ld, j0);
        }
    }
}

/// Score and log-density of a mixture with full covariances: y = L⁻¹(x − μ) per component,
/// log-density −½‖y‖², component score −L⁻ᵀ y.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn full_kernel(
    d: usize,
    k: usize,
    stride: usize,
    data: FullData<'_>,
    x: &[f32],
    score: &mut [f32],
    mut log_density: Option<&mut [f32]>,
) {
    let FullData { means, whiten, log_norm, triangular } = data;
    let mut logits = vec![[0.0f32; LANES]; k];
    // Whitened coordinates of every component for the current chunk: K × d lane arrays.
    let mut y = vec![[0.0f32; LANES]; k * d];
    let mut diff = vec![[0.0f32; LANES]; d];
    for j0 in (0..stride).step_by(LANES) {
        let mut max = [f32::NEG_INFINITY; LANES];
        for kk in 0..k {
            for c in 0..d {
                let mu = means[kk * d + c];
                let xr = &x[c * stride + j0..c * stride + j0 + LANES];
                for j in 0..LANES {
                    diff[c][j] = xr[j] - mu;
                }
            }
            let w = &whiten[kk * d * d..(kk + 1) * d * d];
            let mut q = [0.0f32; LANES];
            for i in 0..d {
                let mut acc = [0.0f32; LANES];
                for c in 0..if triangular { i + 1 } else { d } {
                    let wic = w[i * d + c];
                    for j in 0..LANES {
                        acc[j] = wic.mul_add(diff[c][j], acc[j]);
                    }
                }
                for j in 0..LANES {
                    q[j] = acc[j].mul_add(acc[j], q[j]);
                }
                y[kk * d + i] = acc;
            }
            for j in 0..LANES {
                logits[kk][j] = q[j].mul_add(-0.5, log_norm[kk]);
                max[j] = max[j].max(logits[kk][j]);
            }
        }
        for c in 0..d {
            score[c * stride + j0..c * stride + j0 + LANES].fill(0.0);
        }
        let mut sum = [0.0f32; LANES];
        for kk in 0..k {
            let mut e = [0.0f32; LANES];
            for j in 0..LANES {
                e[j] = if k == 1 { 1.0 } else { vmath::exp(logits[kk][j] - max[j]) };
                sum[j] += e[j];
            }
            let w = &whiten[kk * d * d..(kk + 1) * d * d];
            // score_c −= e · Σ_{i ≥ c} W[i][c] y_i
            for c in 0..d {
                let mut acc = [0.0f32; LANES];
                for i in if triangular { c } else { 0 }..d {
                    let wic = w[i * d + c];
                    let yi = &y[kk * d + i];
                    for j in 0..LANES {
                        acc[j] = wic.mul_add(yi[j], acc[j]);
                    }
                }
                let sr = &mut score[c * stride + j0..c * stride + j0 + LANES];
                for j in 0..LANES {
                    sr[j] = (-e[j]).mul_add(acc[j], sr[j]);
                }
            }
        }
        if k > 1 {
            for c in 0..d {
                let sr = &mut score[c * stride + j0..c * stride + j0 + LANES];
                for j in 0..LANES {
                    sr[j] /= sum[j];
                }
            }
        }
        if let Some(ld) = log_density.as_deref_mut() {
            for j in 0..LANES {
                ld[j0 + j] = max[j] + vmath::ln(sum[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::eval_rows;
    use ndarray::array;

    fn toy() -> GaussianMixture {
        GaussianMixture::new(
            vec![0.8, 0.2],
            vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
            vec![Covariance::Isotropic(1.0), Covariance::Isotropic(1.0)],
        )
        .unwrap()
    }

    fn full2() -> GaussianMixture {
        GaussianMixture::new(
            vec![0.3, 0.7],
            vec![vec![0.0, 0.0], vec![4.0, 1.0]],
            vec![Covariance::Full(array![[1.0, 0.5], [0.5, 2.0]]), Covariance::Full(array![[0.5, 0.0], [0.0, 0.5]])],
        )
        .unwrap()
    }

    /// Central finite differences of the f64 log-density.
    fn fd_score(m: &GaussianMixture, x: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let h = 1e-5;
                let mut a = x.to_vec();
                let mut b = x.to_vec();
                a[i] += h;
                b[i] -= h;
                (m.log_density(&a) - m.log_density(&b)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn kernels_match_f64_reference_and_finite_differences() {
        for m in [toy(), full2()] {
            let pts = Array2::from_shape_fn((40, 2), |(i, c)| ((i * 7 + c * 3) % 13) as f32 - 6.0);
            let (s, l) = eval_rows(&m, pts.view()).unwrap();
            for i in 0..40 {
                let x: Vec<f64> = pts.row(i).iter().map(|&v| v as f64).collect();
                let exact = m.score(&x);
                let fd = fd_score(&m, &x);
                for c in 0..2 {
                    let tol = 1e-4 * (1.0 + exact[c].abs());
                    assert!((s[[i, c]] as f64 - exact[c]).abs() < tol, "{} vs {}", s[[i, c]], exact[c]);
                    assert!((fd[c] - exact[c]).abs() < 1e-4 * (1.0 + exact[c].abs()));
                }
                let lp = m.log_density(&x);
                assert!((l[i] as f64 - lp).abs() < 1e-5 * (1.0 + lp.abs()), "{} vs {lp}", l[i]);
            }
        }
    }

    #[test]
    fn score_is_stable_far_from_every_mode() {
        let m = toy();
        let pts = array![[1e4f32, -3e4], [-2e4, 2e4], [0.0, 0.0], [3e4, 3e4]];
        let (s, l) = eval_rows(&m, pts.view()).unwrap();
        assert!(s.iter().all(|v| v.is_finite()) && l.iter().all(|v| v.is_finite()));
        // Far out on the (5,5) side the score is the pull of that component alone.
        assert!((s[[3, 0]] - (5.0 - 3e4)).abs() < 1.0);
        // A point between modes is pulled by both, weighted by responsibility.
        assert!(s[[2, 0]].is_finite());
    }

    #[test]
    fn perturbed_adds_sigma_squared_to_covariances() {
        let m = full2();
        let p = m.perturbed(2.0).unwrap();
        let (_, cov) = p.moments().unwrap();
        let (_, cov0) = m.moments().unwrap();
        assert!((cov[[0, 0]] - cov0[[0, 0]] - 4.0).abs() < 1e-12);
        assert!((cov[[0, 1]] - cov0[[0, 1]]).abs() < 1e-12);
        let p0 = m.perturbed(0.0).unwrap();
        let pts = array![[0.3f32, -0.7], [2.0, 1.0]];
        assert_eq!(eval_rows(&m, pts.view()).unwrap().0, eval_rows(&p0, pts.view()).unwrap().0);
    }

    #[test]
    fn score_at_sigma_matches_the_rebuilt_perturbed_mixture() {
        // Full, diagonal and mixed (full + isotropic) mixtures; σ from tiny to large. The
        // eigen-based whitening must give the Cholesky-based mixture's score to f32 accuracy.
        let mixed = GaussianMixture::new(
            vec![0.3, 0.7],
            vec![vec![1.0, -1.0], vec![-2.0, 0.5]],
            vec![Covariance::Full(array![[2.0, 0.6], [0.6, 0.5]]), Covariance::Isotropic(0.3)],
        )
        .unwrap();
        let pts = Array2::from_shape_fn((37, 2), |(i, c)| ((i * 7 + c * 3) % 11) as f32 - 5.0);
        let block = Block::from_rows(pts.view());
        for m in [toy(), full2(), mixed] {
            for sigma in [1e-3, 0.3, 1.0, 4.0] {
                let want = eval_rows(&m.perturbed(sigma).unwrap(), pts.view()).unwrap().0;
                let mut out = Block::zeros(2, 37);
                m.score_at(&block, sigma, &mut out).unwrap();
                let mut got = Array2::zeros((37, 2));
                out.write_rows(got.view_mut());
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!((g - w).abs() <= 2e-5 * w.abs().max(1.0), "σ = {sigma}: {g} vs {w}");
                }
            }
        }
        assert!(toy().score_at(&block, -1.0, &mut Block::zeros(2, 37)).is_err());
    }

    #[test]
    fn exact_samples_have_the_mixture_moments() {
        let m = full2();
        let n = 200_000;
        let s = m.sample_exact(n, &mut LaneRng::new(1, 0)).unwrap();
        let (mean, cov) = m.moments().unwrap();
        for c in 0..2 {
            let col = s.column(c);
            let mu = col.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            assert!((mu - mean[c]).abs() < 5.0 * (cov[[c, c]] / n as f64).sqrt());
        }
        let w0 = s.outer_iter().filter(|r| m.assign(&[r[0] as f64, r[1] as f64]) == 0).count() as f64 / n as f64;
        // Assignment by responsibility misplaces a little overlap mass; the modes are 4σ apart.
        assert!((w0 - 0.3).abs() < 0.01, "{w0}");
    }

    #[test]
    fn invalid_mixtures_are_rejected_with_reasons() {
        let e = GaussianMixture::new(vec![0.5, 0.6], vec![vec![0.0], vec![1.0]], vec![Covariance::Isotropic(1.0); 2]);
        assert!(e.unwrap_err().to_string().contains("sum to 1.1"));
        let e = GaussianMixture::new(vec![-0.5, 1.5], vec![vec![0.0], vec![1.0]], vec![Covariance::Isotropic(1.0); 2]);
        assert!(e.unwrap_err().to_string().contains("non-negative"));
        let e = GaussianMixture::gaussian(vec![0.0, 0.0], Covariance::Full(array![[1.0, 0.5], [0.4, 1.0]]));
        assert!(e.unwrap_err().to_string().contains("not symmetric"));
        let e = GaussianMixture::gaussian(vec![0.0, 0.0], Covariance::Full(array![[1.0, 2.0], [2.0, 1.0]]));
        assert!(e.unwrap_err().to_string().contains("not positive-definite"));
        let e = GaussianMixture::gaussian(vec![0.0, 0.0], Covariance::Full(array![[1.0]]));
        assert!(e.unwrap_err().to_string().contains("must be 2×2"));
        let e =
            GaussianMixture::new(vec![0.5, 0.5], vec![vec![0.0], vec![1.0, 2.0]], vec![Covariance::Isotropic(1.0); 2]);
        assert!(e.unwrap_err().to_string().contains("same dimension"));
    }
}
