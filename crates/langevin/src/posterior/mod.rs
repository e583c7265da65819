//! Bayesian posteriors from data, and stochastic-gradient Langevin dynamics (seed 000 lists SGLD
//! for Bayesian inference among Langevin's applications).
//!
//! A [`Posterior`] is p(θ | data) ∝ N(θ; 0, s² I) Πᵢ p(yᵢ | xᵢ, θ) for
//! - logistic regression: p(y = 1 | x, θ) = σ(θ₀ + θᵀx);
//! - linear regression: y ~ N(θ₀ + θᵀx, σ_noise²), whose posterior is exactly Gaussian.
//!
//! It is an ordinary [`Target`] (full-batch score, so MALA and ULA sample it unchanged); [`Sgld`]
//! instead estimates the likelihood gradient from a random minibatch of n rows:
//!
//! θ ← θ + (ε_t/2) (∇log p(θ) + (N/n) Σ_{i ∈ batch} ∇log p(yᵢ | xᵢ, θ)) + N(0, ε_t I)
//!
//! with ε_t = a (b + t)^(−γ) (Welling & Teh 2011), or a constant ε, and optionally the RMSProp
//! preconditioner of pSGLD (Li, Chen, Carlson & Carin 2016).

mod data;
mod run;
mod sgld;

pub use data::Dataset;
pub use run::{PosteriorOptions, PosteriorReport, PosteriorSampler, ScheduleReport, sample_posterior};
pub use sgld::{MinibatchScore, Schedule, Sgld, SgldInfo};

use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::LaneRng;
use crate::sampler::Init;
use crate::target::{Scales, Target};
use nalgebra::{DMatrix, DVector};
use ndarray::Array2;
use rayon::prelude::*;
use std::sync::Arc;

/// The likelihood.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Model {
    /// y ∈ {0, 1}, p(y = 1) = σ(θ₀ + θᵀx).
    Logistic,
    /// y = θ₀ + θᵀx + N(0, noise_std²).
    Linear {
        /// Known noise standard deviation σ_noise.
        noise_std: f64,
    },
}

/// Rows per chunk of the full-batch sums: the chunks are summed in order, so results do not
/// depend on the number of threads.
const CHUNK: usize = 4096;

/// p(θ | data) for a [`Model`] with prior N(0, prior_std² I) on all coefficients (intercept
/// included). θ = (θ₀, θ₁, …, θ_p).
pub struct Posterior {
    data: Arc<Dataset>,
    model: Model,
    prior_std: f64,
    /// MAP estimate and Laplace covariance (exact posterior covariance for the linear model).
    map: Vec<f64>,
    laplace: DMatrix<f64>,
}

/// σ(z) alone.
#[inline]
fn sigmoid_only(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) }
}

impl Posterior {
    /// The posterior of `model` on `data` with prior standard deviation `prior_std`. Computes the
    /// MAP by Newton's method (used for default starts and step sizes, and as the exact answer
    /// for the linear model).
    pub fn new(data: Arc<Dataset>, model: Model, prior_std: f64) -> Result<Self> {
        if !prior_std.is_finite() || prior_std <= 0.0 {
            return Err(invalid!("`prior_std` {prior_std} must be positive and finite"));
        }
        match model {
            Model::Logistic => {
                if let Some(i) = data.y.iter().position(|&y| y != 0.0 && y != 1.0) {
                    return Err(invalid!(
                        "logistic regression needs labels 0 or 1, but column '{}' is {} in data row {} (line {}); \
                         recode the labels or use `model` linear",
                        data.label,
                        data.y[i],
                        i + 1,
                        i + 2
                    ));
                }
            }
            Model::Linear { noise_std } => {
                if !noise_std.is_finite() || noise_std <= 0.0 {
                    return Err(invalid!("`noise_std` {noise_std} must be positive and finite"));
                }
            }
        }
        let mut p = Posterior { data, model, prior_std, map: vec![], laplace: DMatrix::zeros(0, 0) };
        let (map, cov) = p.newton()?;
        p.map = map;
        p.laplace = cov;
        Ok(p)
    }

    /// Number of parameters (intercept + features).
    pub fn dim(&self) -> usize {
        self.data.features() + 1
    }

    /// Names of the parameters: `intercept` and the feature columns.
    pub fn parameter_names(&self) -> Vec<String> {
        std::iter::once("intercept".to_string()).chain(self.data.feature_names.iter().cloned()).collect()
    }

    /// The data set.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The model.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The MAP estimate.
    pub fn map(&self) -> &[f64] {
        &self.map
    }

    /// Standard deviations of the Laplace approximation at the MAP (exact for the linear model).
    pub fn laplace_std(&self) -> Vec<f64> {
        (0..self.dim()).map(|i| self.laplace[(i, i)].sqrt()).collect()
    }

    /// The gradient of log p(yᵢ | xᵢ, θ) added to `grad` times `scale`, for row `i`. Returns the
    /// log-likelihood as (a, f) with log p(yᵢ | xᵢ, θ) = a − ln f: for the logistic model
    /// a = yz − max(z, 0) and f = 1 + e^{−|z|} ∈ (1, 2], so callers can multiply many f and take
    /// one logarithm (glibc's log was half the run time when taken per row).
    #[inline]
    fn row_term(&self, theta: &[f64], i: usize, scale: f64, grad: &mut [f64]) -> (f64, f64) {
        let x = self.data.row(i);
        let z = theta[0] + x.iter().zip(&theta[1..]).map(|(a, b)| a * b).sum::<f64>();
        let y = self.data.y[i];
        let (ll, r) = match self.model {
            Model::Logistic => {
                let e = (-z.abs()).exp();
                let s = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                ((y * z - z.max(0.0), 1.0 + e), y - s)
            }
            Model::Linear { noise_std } => {
                let e = y - z;
                ((-0.5 * (e / noise_std).powi(2), 1.0), e / (noise_std * noise_std))
            }
        };
        grad[0] += scale * r;
        for (g, xv) in grad[1..].iter_mut().zip(x) {
            *g += scale * r * xv;
        }
        ll
    }

    /// log prior, with its gradient written into `grad`.
    fn prior_term(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let s2 = self.prior_std * self.prior_std;
        let mut lp = 0.0;
        for (g, t) in grad.iter_mut().zip(theta) {
            *g = -t / s2;
            lp -= 0.5 * t * t / s2;
        }
        lp
    }

    /// Full-batch log posterior (up to a constant) and its gradient, in f64. The sum over rows
    /// runs in fixed chunks in parallel and is added up in chunk order.
    pub fn log_density_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.full_batch(theta, grad, true)
    }

    fn full_batch(&self, theta: &[f64], grad: &mut [f64], with_ll: bool) -> f64 {
        let d = self.dim();
        let n = self.data.rows();
        let parts: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut g = vec![0.0; d];
                let (mut ll, mut prod) = (0.0, 1.0);
                for (k, i) in (c * CHUNK..((c + 1) * CHUNK).min(n)).enumerate() {
                    let (a, f) = self.row_term(theta, i, 1.0, &mut g);
                    ll += a;
                    prod *= f;
                    // 256 factors of at most 2 stay far below f64's range (2^1024).
                    if k % 256 == 255 {
                        ll -= prod.ln();
                        prod = 1.0;
                    }
                }
                (if with_ll { ll - prod.ln() } else { 0.0 }, g)
            })
            .collect();
        let mut lp = self.prior_term(theta, grad);
        for (ll, g) in parts {
            lp += ll;
            for (a, b) in grad.iter_mut().zip(&g) {
                *a += b;
            }
        }
        lp
    }

    /// Minibatch estimate: ∇log p(θ) + (N/n) Σ_{i ∈ batch} ∇log p(yᵢ | xᵢ, θ), into `grad`.
    pub fn minibatch_grad(&self, theta: &[f64], batch: &[u64], grad: &mut [f64]) {
        self.prior_term(theta, grad);
        let scale = self.data.rows() as f64 / batch.len() as f64;
        for &i in batch {
            self.row_term(theta, i as usize, scale, grad);
        }
    }

    /// Control-variate estimate around an anchor θ̂ (SGLD-CV, Baker, Fearnhead, Fox & Nemeth 2019):
    /// ∇log p(θ) + ∇log L(θ̂) + (N/n) Σ_{i ∈ batch} (∇ℓᵢ(θ) − ∇ℓᵢ(θ̂)), where `anchor_grad` is the
    /// full-batch likelihood gradient ∇log L(θ̂). Unbiased, with a variance that shrinks with
    /// |θ − θ̂|², so near the posterior it is far smaller than the plain minibatch estimate's.
    pub fn minibatch_grad_cv(
        &self,
        theta: &[f64],
        batch: &[u64],
        anchor: &[f64],
        anchor_grad: &[f64],
        grad: &mut [f64],
    ) {
        self.prior_term(theta, grad);
        for (g, a) in grad.iter_mut().zip(anchor_grad) {
            *g += a;
        }
        let scale = self.data.rows() as f64 / batch.len() as f64;
        for &i in batch {
            self.row_term(theta, i as usize, scale, grad);
            self.row_term(anchor, i as usize, -scale, grad);
        }
    }

    /// Full-batch gradient of the log-likelihood alone (no prior) at θ.
    pub fn likelihood_grad(&self, theta: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.dim()];
        self.full_batch(theta, &mut g, false);
        let s2 = self.prior_std * self.prior_std;
        for (gv, t) in g.iter_mut().zip(theta) {
            *gv += t / s2; // remove the prior's −θ/s²
        }
        g
    }

    /// Newton's method for the MAP; returns it with the inverse negative Hessian there.
    fn newton(&self) -> Result<(Vec<f64>, DMatrix<f64>)> {
        let d = self.dim();
        let mut theta = vec![0.0; d];
        let mut grad = vec![0.0; d];
        for _ in 0..100 {
            self.log_density_grad(&theta, &mut grad);
            let h = self.neg_hessian(&theta);
            let chol =
                h.clone().cholesky().ok_or_else(|| invalid!("the posterior's Hessian is not positive-definite"))?;
            let step = chol.solve(&DVector::from_column_slice(&grad));
            // Damped Newton: halve the step until the log posterior does not decrease.
            let mut lp0 = vec![0.0; d];
            let base = self.log_density_grad(&theta, &mut lp0);
            let mut t = 1.0;
            loop {
                let cand: Vec<f64> = theta.iter().zip(step.iter()).map(|(a, b)| a + t * b).collect();
                let mut g2 = vec![0.0; d];
                if self.log_density_grad(&cand, &mut g2) >= base - 1e-12 || t < 1e-6 {
                    theta = cand;
                    break;
                }
                t *= 0.5;
            }
            if step.norm() * t < 1e-10 * (1.0 + theta.iter().map(|v| v * v).sum::<f64>().sqrt()) {
                break;
            }
        }
        let h = self.neg_hessian(&theta);
        let cov = h.try_inverse().ok_or_else(|| invalid!("the posterior's Hessian is singular"))?;
        if theta.iter().any(|v| !v.is_finite()) {
            return Err(invalid!("the MAP estimate did not converge (non-finite); check the data for extreme values"));
        }
        Ok((theta, cov))
    }

    /// −∇² log p(θ | data).
    fn neg_hessian(&self, theta: &[f64]) -> DMatrix<f64> {
        let d = self.dim();
        let n = self.data.rows();
        let parts: Vec<DMatrix<f64>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut h = DMatrix::zeros(d, d);
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let x = self.data.row(i);
                    let w = match self.model {
                        Model::Logistic => {
                            let z = theta[0] + x.iter().zip(&theta[1..]).map(|(a, b)| a * b).sum::<f64>();
                            let p = sigmoid_only(z);
                            p * (1.0 - p)
                        }
                        Model::Linear { noise_std } => 1.0 / (noise_std * noise_std),
                    };
                    let xt: Vec<f64> = std::iter::once(1.0).chain(x.iter().copied()).collect();
                    for a in 0..d {
                        for b in 0..=a {
                            h[(a, b)] += w * xt[a] * xt[b];
                        }
                    }
                }
                h
            })
            .collect();
        let mut h = DMatrix::from_diagonal_element(d, d, 1.0 / (self.prior_std * self.prior_std));
        for p in parts {
            h += p;
        }
        for a in 0..d {
            for b in 0..a {
                h[(b, a)] = h[(a, b)];
            }
        }
        h
    }
}

impl Target for Posterior {
    fn dim(&self) -> usize {
        Posterior::dim(self)
    }
    fn name(&self) -> String {
        let m = match self.model {
            Model::Logistic => "logistic".to_string(),
            Model::Linear { noise_std } => format!("linear(noise σ = {noise_std})"),
        };
        format!("{m} regression posterior ({} rows, {} features)", self.data.rows(), self.data.features())
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let with_ll = log_density.is_some();
        crate::target::eval_pointwise(x, score, log_density, |t, g| self.full_batch(t, g, with_ll));
        Ok(())
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        // Exact for the linear model (a Gaussian posterior); the logistic posterior has none.
        matches!(self.model, Model::Linear { .. }).then(|| {
            let d = self.dim();
            (self.map.clone(), Array2::from_shape_fn((d, d), |(i, j)| self.laplace[(i, j)]))
        })
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let (mean, cov) = self.moments()?;
        let d = mean.len();
        let l = DMatrix::from_fn(d, d, |i, j| cov[[i, j]]).cholesky()?.l();
        let mut out = Array2::zeros((n, d));
        for mut row in out.outer_iter_mut() {
            let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            for i in 0..d {
                row[i] = (mean[i] + (0..=i).map(|j| l[(i, j)] * z[j]).sum::<f64>()) as f32;
            }
        }
        Some(out)
    }
    fn scales(&self) -> Option<Scales> {
        let std = self.laplace_std();
        let lo = std.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = std.iter().cloned().fold(0.0, f64::max);
        Some(Scales { largest: 6.0 * hi, smallest: lo })
    }
    /// Around the MAP, overdispersed: N(MAP, (2 × largest Laplace std)² I).
    fn default_init(&self) -> Init {
        let hi = self.laplace_std().into_iter().fold(0.0, f64::max);
        Init::Gaussian { mean: self.map.clone(), std: 2.0 * hi }
    }
    fn coordinate_names(&self) -> Vec<String> {
        self.parameter_names()
    }
}
