//! Stochastic-gradient Langevin dynamics (Welling & Teh 2011) and its RMSProp-preconditioned
//! variant pSGLD (Li et al. 2016).

use super::Posterior;
use crate::block::Block;
use crate::error::{Param, Result, Suggestion};
use crate::rng::{LaneRng, ParticleRng};
use crate::sampler::{MarkovKernel, StepInfo};
use crate::{invalid, invalid_field};

/// A log-density known through minibatch estimates of its score (BlackJAX's
/// `grad_estimator`): SGLD runs on any implementation, not only the built-in regressions.
pub trait MinibatchScore: Sync {
    /// Dimension of θ.
    fn dim(&self) -> usize;
    /// Number of data rows N.
    fn rows(&self) -> usize;
    /// An unbiased estimate of ∇log p(θ | data) from the rows `batch` (indices in 0..N, drawn
    /// uniformly with replacement), e.g. ∇log p(θ) + (N/n) Σ_{i ∈ batch} ∇log p(yᵢ | θ).
    fn minibatch_score(&self, theta: &[f64], batch: &[u64], out: &mut [f64]);
    /// The full-batch score ∇log p(θ | data) (used once, at the control variate's anchor).
    fn full_score(&self, theta: &[f64], out: &mut [f64]);
}

impl MinibatchScore for Posterior {
    fn dim(&self) -> usize {
        Posterior::dim(self)
    }
    fn rows(&self) -> usize {
        self.data().rows()
    }
    fn minibatch_score(&self, theta: &[f64], batch: &[u64], out: &mut [f64]) {
        self.minibatch_grad(theta, batch, out);
    }
    fn full_score(&self, theta: &[f64], out: &mut [f64]) {
        self.log_density_grad(theta, out);
    }
}

/// Step-size schedule ε_t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// ε_t = ε.
    Constant(f64),
    /// ε_t = a (b + t − hold)^(−γ) after `hold` steps at ε = a b^(−γ); Welling & Teh need
    /// γ ∈ (0.5, 1] for convergence. The hold is a burn-in at the largest step: with the decrease
    /// starting at once, a start far from the posterior is never reached.
    Decreasing {
        /// Scale a.
        a: f64,
        /// Offset b.
        b: f64,
        /// Decay exponent γ.
        gamma: f64,
        /// Steps at the initial step size before the decrease starts.
        hold: usize,
    },
}

impl Schedule {
    /// ε at step t (0-based).
    pub fn at(&self, t: usize) -> f64 {
        match *self {
            Schedule::Constant(e) => e,
            Schedule::Decreasing { a, b, gamma, hold } => a * (b + t.saturating_sub(hold) as f64).powf(-gamma),
        }
    }

    /// A schedule holding ε₀ for `hold` steps, then falling by `decay` over the next `steps`
    /// steps with exponent γ: b = steps/(decay^{1/γ} − 1), a = ε₀ b^γ.
    pub fn decaying(eps0: f64, decay: f64, hold: usize, steps: usize, gamma: f64) -> Result<Schedule> {
        if !(eps0.is_finite() && eps0 > 0.0) {
            return Err(invalid!("the SGLD step size {eps0} must be positive and finite"));
        }
        if !(gamma > 0.5 && gamma <= 1.0) {
            return Err(invalid_field!(
                "schedule_gamma",
                "`schedule_gamma` {gamma} must be in (0.5, 1] (Welling & Teh's condition)"
            ));
        }
        if !(decay.is_finite() && decay >= 1.0) {
            return Err(invalid_field!("decay", "`decay` {decay} must be at least 1"));
        }
        if decay == 1.0 {
            return Ok(Schedule::Constant(eps0));
        }
        let b = steps.max(1) as f64 / (decay.powf(1.0 / gamma) - 1.0);
        Ok(Schedule::Decreasing { a: eps0 * b.powf(gamma), b, gamma, hold })
    }
}

/// SGLD on any [`MinibatchScore`] (a [`Posterior`], or the user's own model):
/// θ ← θ + (ε_t/2) ĝ + N(0, ε_t), ĝ a minibatch estimate of the score. Each chain (particle) draws its
/// minibatches and noise from its own stream; the step counter lives in the state.
/// With `precondition`, pSGLD: V ← αV + (1−α) ĝ², G = 1/(λ + √V),
/// θ ← θ + (ε_t/2) G ĝ + N(0, ε_t G) (α = 0.99, λ = 1e-5; the small Γ correction term is
/// dropped, as in the paper's experiments).
pub struct Sgld<'a> {
    posterior: &'a dyn MinibatchScore,
    batch: usize,
    schedule: Schedule,
    precondition: bool,
    /// Anchor θ̂ and the full-batch score there, for SGLD-CV.
    control: Option<(Vec<f64>, Vec<f64>)>,
}

/// Per block: parameters of each chain, the RMSProp average, scratch.
pub struct SgldState {
    theta: Block,
    v: Block,
    idx: Vec<u64>,
    /// Steps taken (the schedule's t).
    t: usize,
}

/// What an SGLD step reports.
#[derive(Clone, Copy, Debug)]
pub struct SgldInfo {
    /// The step ε_t used.
    pub step_size: f64,
}

impl StepInfo for SgldInfo {}

const ALPHA: f64 = 0.99;
const LAMBDA: f64 = 1e-5;

impl<'a> Sgld<'a> {
    /// SGLD with minibatches of `batch` rows.
    pub fn new(
        posterior: &'a dyn MinibatchScore,
        batch: usize,
        schedule: Schedule,
        precondition: bool,
    ) -> Result<Self> {
        let n = posterior.rows();
        if batch == 0 || batch > n {
            return Err(invalid_field!("batch", "`batch` {batch} must be between 1 and the number of data rows ({n})"));
        }
        Ok(Sgld { posterior, batch, schedule, precondition, control: None })
    }

    /// Use control variates anchored at θ̂ (SGLD-CV, Baker et al. 2019; θ̂ = the MAP for a
    /// [`Posterior`]): one full pass over the data up front, then the estimate
    /// ∇log p(θ̂) + ĝ(θ) − ĝ(θ̂) on the same minibatch, unbiased, with a variance that shrinks
    /// with |θ − θ̂|², so near the posterior it is far smaller than the plain estimate's.
    pub fn with_control_variate(mut self, anchor: Vec<f64>) -> Self {
        let mut g = vec![0.0; anchor.len()];
        self.posterior.full_score(&anchor, &mut g);
        self.control = Some((anchor, g));
        self
    }

    /// The estimate at θ from the rows `idx` (with the control variate when set).
    fn estimate(&self, theta: &[f64], idx: &[u64], grad: &mut [f64], scratch: &mut [f64]) {
        self.posterior.minibatch_score(theta, idx, grad);
        if let Some((anchor, ag)) = &self.control {
            self.posterior.minibatch_score(anchor, idx, scratch);
            for ((g, a), s) in grad.iter_mut().zip(ag).zip(scratch.iter()) {
                *g += a - s;
            }
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Replace the schedule (e.g. once [`Sgld::default_step`] has chosen the first step).
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Default first step ε₀ for this sampler's estimator. Two conditions per coordinate c, with
    /// preconditioner G_c (1 for SGLD; 1/(λ + √E[ĝ_c²]) for pSGLD) and minibatch gradient
    /// variance Var(ĝ_c), both estimated on 50 minibatches at points drawn from the Laplace
    /// approximation (where the chains will be; at the MAP itself a control variate has no noise):
    /// - discretization: ε G_c ≤ 0.2 × the Laplace variance v_c (a ULA-type bias of a few percent);
    /// - gradient noise: the minibatch noise (ε/2)² G_c² Var(ĝ_c) is at most a tenth of the injected
    ///   noise ε G_c, i.e. ε ≤ 0.4/(G_c Var(ĝ_c)). Without it SGLD's posterior came out 30% too
    ///   wide on a 10,000-row logistic regression with batches of 128.
    ///
    /// `center` and `std`: where the chains will be and how far they spread (for a
    /// [`Posterior`], its MAP and Laplace standard deviations).
    pub fn default_step(&self, center: &[f64], std: &[f64], seed: u64) -> f64 {
        let (posterior, batch, precondition) = (self.posterior, self.batch, self.precondition);
        let n = posterior.rows();
        let d = posterior.dim();
        let ls = std;
        let mut rng = LaneRng::new(seed, 0x5C1D);
        let (mut m1, mut m2) = (vec![0.0; d], vec![0.0; d]);
        let mut idx = vec![0u64; batch];
        let mut g = vec![0.0; d];
        let mut scratch = vec![0.0; d];
        const K: usize = 50;
        for _ in 0..K {
            // Variance of the estimator at one point: same θ, independent minibatches.
            let theta: Vec<f64> = center.iter().zip(ls).map(|(m, s)| m + s * rng.normal()).collect();
            let mut draws = [vec![0.0; d], vec![0.0; d]];
            for draw in draws.iter_mut() {
                rng.fill_below(n as u64, &mut idx);
                self.estimate(&theta, &idx, &mut g, &mut scratch);
                draw.copy_from_slice(&g);
            }
            for c in 0..d {
                // Half the squared difference of two independent estimates is unbiased for the variance.
                m1[c] += 0.5 * (draws[0][c] - draws[1][c]).powi(2) / K as f64;
                m2[c] += 0.5 * (draws[0][c] * draws[0][c] + draws[1][c] * draws[1][c]) / K as f64;
            }
        }
        (0..d)
            .map(|c| {
                let var = m1[c];
                let gc = if precondition { 1.0 / (LAMBDA + m2[c].sqrt()) } else { 1.0 };
                let discretization = 0.2 * ls[c] * ls[c] / gc;
                let noise = if var > 0.0 { 0.4 / (gc * var) } else { f64::INFINITY };
                discretization.min(noise)
            })
            .fold(f64::INFINITY, f64::min)
    }
}

impl MarkovKernel for Sgld<'_> {
    type State = SgldState;
    type Info = SgldInfo;

    fn name(&self) -> &'static str {
        match (self.precondition, self.control.is_some()) {
            (true, true) => "psgld-cv",
            (true, false) => "psgld",
            (false, true) => "sgld-cv",
            (false, false) => "sgld",
        }
    }
    fn dim(&self) -> usize {
        self.posterior.dim()
    }
    fn init(&self, x: Block, _rng: &mut ParticleRng) -> Result<SgldState> {
        let (d, n) = (x.dim(), x.len());
        Ok(SgldState { theta: x, v: Block::zeros(d, n), idx: vec![0; self.batch], t: 0 })
    }
    /// `_step_size` is not used: ε_t comes from the schedule.
    fn step(&self, st: &mut SgldState, _step_size: f64, rng: &mut ParticleRng) -> Result<SgldInfo> {
        let eps = self.schedule.at(st.t);
        st.t += 1;
        let d = st.theta.dim();
        let rows = self.posterior.rows() as u64;
        let mut theta = vec![0.0; d];
        let mut grad = vec![0.0; d];
        let mut scratch = vec![0.0; d];
        for i in 0..st.theta.len() {
            rng.fill_below(i, rows, &mut st.idx);
            for (c, t) in theta.iter_mut().enumerate() {
                *t = st.theta.row(c)[i] as f64;
            }
            self.estimate(&theta, &st.idx, &mut grad, &mut scratch);
            for c in 0..d {
                let g = if self.precondition {
                    let v = ALPHA * st.v.row(c)[i] as f64 + (1.0 - ALPHA) * grad[c] * grad[c];
                    st.v.row_mut(c)[i] = v as f32;
                    1.0 / (LAMBDA + v.sqrt())
                } else {
                    1.0
                };
                let new = theta[c] + 0.5 * eps * g * grad[c] + (eps * g).sqrt() * rng.normal(i);
                st.theta.row_mut(c)[i] = new as f32;
            }
        }
        st.theta.fill_padding();
        Ok(SgldInfo { step_size: eps })
    }
    fn position<'s>(&self, st: &'s SgldState) -> &'s Block {
        &st.theta
    }
    fn suggest(&self, st: &SgldState, _step_size: f64) -> Suggestion {
        Suggestion {
            param: Param::StepSize,
            value: self.schedule.at(st.t.saturating_sub(1)) / 10.0,
            why: "a tenth of the current ε_t",
        }
    }
}
