//! Log-likelihoods through the probability-flow ODE (Song et al. 2021, Appendix D; FFJORD's
//! instantaneous change of variables): carry each point x₀ from t = ε to T along
//! dx/dt = v(t, x) = f x − ½ g² ∇log p_t(x), integrating its divergence on the way, and
//!
//! log p_ε(x_ε) = log p_T(x_T) + ∫_ε^T ∇·v(x_t, t) dt.
//!
//! ∇·v = f d − ½ g²/s² · tr ∇s(x/s, σ): the trace is exact for targets that know it
//! ([`crate::target::Target::score_divergence_at`]: Gaussians and mixtures), by central
//! differences of the score along each axis otherwise (2d evaluations; the default up to
//! d = 16), or Hutchinson's estimator E[vᵀ∇s v] with Rademacher probes v, one fixed set per
//! point for the whole path (2 evaluations per probe).
//!
//! The prior p_T is the Gaussian with the data's moments widened by the noise,
//! N(mean, Σ + σ_T² I) in x̂ (exact for Gaussian data; score_sde's N(0, σ_T²) as σ_T → ∞).

use super::samplers::score_t;
use super::schedule::Schedule;
use super::solve::{self, SolveStats, Solver};
use super::{OdeMethod, Tolerances};
use crate::block::Block;
use crate::error::Result;
use crate::field::VectorField;
use crate::invalid_field;
use crate::particles::Particles;
use crate::rng::ParticleRng;
use crate::sampler::blocks::block_size;
use crate::target::Target;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// How the divergence of the score is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// In closed form where the target knows it, else central differences along every axis.
    Exact,
    /// Hutchinson's estimator with this many Rademacher probes per point.
    Hutchinson(usize),
}

/// The largest dimension for which [`Divergence::Exact`] is the default.
pub const EXACT_DIVERGENCE_MAX_DIM: usize = 16;

/// The Gaussian prior at T, in x̂ (before the noise is added): mean and covariance of the data.
#[derive(Clone, Debug)]
pub struct Prior {
    /// Mean.
    pub mean: Vec<f64>,
    /// Covariance (d × d).
    pub cov: Array2<f64>,
}

impl Prior {
    /// The prior a target implies: its moments, or its mean and variances, or N(0, I).
    pub fn of(target: &dyn Target) -> Prior {
        let d = target.dim();
        if d <= 512
            && let Some((m, c)) = target.moments()
        {
            return Prior { mean: m, cov: c };
        }
        match target.mean_and_variances() {
            Some((m, v)) => Prior { mean: m, cov: Array2::from_diag(&ndarray::Array1::from(v)) },
            None => Prior { mean: vec![0.0; d], cov: Array2::eye(d) },
        }
    }

    /// log N(y; mean, cov + σ² I) for every row of `y` (d × n coordinate rows of a block).
    fn log_density(&self, x: &Block, sigma: f64, scale: f64) -> Result<Vec<f64>> {
        let d = self.mean.len();
        let mut c = nalgebra::DMatrix::from_fn(d, d, |i, j| self.cov[[i, j]]);
        for i in 0..d {
            c[(i, i)] += sigma * sigma;
        }
        let chol = nalgebra::Cholesky::new(c)
            .ok_or_else(|| invalid_field!("sigma_max", "the prior's covariance is not positive definite"))?;
        let l = chol.l();
        let log_det: f64 = 2.0 * (0..d).map(|i| l[(i, i)].ln()).sum::<f64>();
        let norm = -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det);
        Ok((0..x.len())
            .map(|i| {
                let r = nalgebra::DVector::from_fn(d, |c, _| x.row(c)[i] as f64 / scale - self.mean[c]);
                let w = l.solve_lower_triangular(&r).unwrap_or(r);
                norm - 0.5 * w.norm_squared() - d as f64 * scale.ln()
            })
            .collect())
    }
}

/// What a likelihood computation does.
#[derive(Clone, Debug)]
pub struct LikelihoodConfig {
    /// The forward process (its σ range sets ε and T).
    pub schedule: Schedule,
    /// The time cut-off ε.
    pub t_eps: f64,
    /// The solver (adaptive Dormand–Prince by default).
    pub ode: OdeMethod,
    /// The divergence.
    pub divergence: Divergence,
    /// Seed of the Hutchinson probes.
    pub seed: u64,
    /// The length scale of the data (finite-difference steps are 1% of √(σ² + ℓ²)).
    pub length_scale: f64,
}

impl LikelihoodConfig {
    /// Exact divergence up to d = 16, Hutchinson with one probe above; adaptive solve with
    /// rtol = atol = 1e-5.
    pub fn new(schedule: Schedule, t_eps: f64, dim: usize) -> Self {
        LikelihoodConfig {
            schedule,
            t_eps,
            ode: OdeMethod::Adaptive(Tolerances::default()),
            divergence: if dim <= EXACT_DIVERGENCE_MAX_DIM { Divergence::Exact } else { Divergence::Hutchinson(1) },
            seed: 0,
            length_scale: 1.0,
        }
    }
}

/// Per-point log-likelihoods and what they cost.
#[derive(Clone, Debug)]
pub struct Likelihood {
    /// log p_ε(x) per row, in x̂ units (the density of the data perturbed by σ(ε)).
    pub log_likelihood: Vec<f64>,
    /// Score evaluations per point (the block that needed most).
    pub nfe: usize,
    /// Accepted and rejected steps (adaptive), of that block.
    pub stats: SolveStats,
    /// Whether the divergence was in closed form.
    pub closed_form_divergence: bool,
}

/// The augmented probability flow on d + 1 rows: the last row integrates ∇·v.
struct Augmented<'a> {
    target: &'a dyn Target,
    schedule: Schedule,
    divergence: Divergence,
    probes: Vec<Block>,
    length_scale: f64,
    closed: bool,
}

impl Augmented<'_> {
    fn split(x: &Block) -> Block {
        let d = x.dim() - 1;
        let mut y = Block::zeros(d, x.len());
        let n = y.data().len();
        y.data_mut().copy_from_slice(&x.data()[..n]);
        y
    }

    /// tr ∇s(y, σ) per particle.
    fn trace(&self, y: &Block, sigma: f64) -> Result<Vec<f64>> {
        let n = y.len();
        let mut tr = vec![0.0f64; n];
        if self.closed && self.target.score_divergence_at(y, sigma, &mut tr)? {
            return Ok(tr);
        }
        let h = 0.01 * (sigma * sigma + self.length_scale * self.length_scale).sqrt();
        let (mut yp, mut sp, mut sm) = (y.clone(), y.zeros_like(), y.zeros_like());
        let mut dir = |v: &dyn Fn(usize, usize) -> f32, tr: &mut [f64]| -> Result<()> {
            for sign in [1.0f32, -1.0] {
                for c in 0..y.dim() {
                    for i in 0..n {
                        yp.row_mut(c)[i] = y.row(c)[i] + sign * h as f32 * v(c, i);
                    }
                }
                self.target.score_at(&yp, sigma, if sign > 0.0 { &mut sp } else { &mut sm })?;
            }
            for c in 0..y.dim() {
                for i in 0..n {
                    let vc = v(c, i) as f64;
                    if vc != 0.0 {
                        tr[i] += vc * (sp.row(c)[i] as f64 - sm.row(c)[i] as f64) / (2.0 * h);
                    }
                }
            }
            Ok(())
        };
        match self.divergence {
            Divergence::Exact => {
                for axis in 0..y.dim() {
                    dir(&|c, _| if c == axis { 1.0 } else { 0.0 }, &mut tr)?;
                }
            }
            Divergence::Hutchinson(p) => {
                for probe in &self.probes {
                    dir(&|c, i| probe.row(c)[i], &mut tr)?;
                }
                tr.iter_mut().for_each(|t| *t /= p as f64);
            }
        }
        Ok(tr)
    }
}

impl VectorField<Block> for Augmented<'_> {
    fn dim(&self) -> usize {
        self.target.dim() + 1
    }
    fn velocity(&self, t: f64, x: &Block, out: &mut Block) -> Result<()> {
        let d = x.dim() - 1;
        let xs = Self::split(x);
        let mut v = xs.zeros_like();
        let sch = &self.schedule;
        score_t(self.target, sch, t, &xs, &mut v)?;
        let (s, sigma, f, g2) = (sch.scale(t), sch.sigma(t), sch.drift(t), sch.g2(t));
        let mut y = xs.clone();
        y.scale_add((1.0 / s) as f32, 0.0, &xs);
        let tr = self.trace(&y, sigma)?;
        v.scale_add((-0.5 * g2) as f32, f as f32, &xs);
        let n = v.data().len();
        out.data_mut()[..n].copy_from_slice(v.data());
        let last = out.row_mut(d);
        for (i, tr) in tr.iter().enumerate() {
            last[i] = (f * d as f64 - 0.5 * g2 / (s * s) * tr) as f32;
        }
        last[tr.len()..].fill(0.0);
        Ok(())
    }
}

/// log p(x) of every row of `data` under the probability flow of `target`'s score (x̂ units).
pub fn log_likelihood(
    target: &dyn Target,
    data: ArrayView2<f32>,
    prior: &Prior,
    cfg: &LikelihoodConfig,
) -> Result<Likelihood> {
    let (n, d) = data.dim();
    if d != target.dim() {
        return Err(invalid_field!(
            "data",
            "the data have {d} columns but the model/target has dimension {}",
            target.dim()
        ));
    }
    if n == 0 {
        return Err(invalid_field!("data", "the data have no rows"));
    }
    if let Some((row, _)) = data.outer_iter().enumerate().find(|(_, r)| r.iter().any(|v| !v.is_finite())) {
        return Err(invalid_field!("data", "row {} of the data holds NaN or an infinite value; remove it", row + 1));
    }
    if let Divergence::Hutchinson(0) = cfg.divergence {
        return Err(invalid_field!("probes", "`probes` must be at least 1"));
    }
    let sch = cfg.schedule;
    let (t0, t1) = sch.time_range(cfg.t_eps);
    for t in [t0, t1] {
        crate::field::check_sigma(target, sch.sigma(t))?;
    }
    let block = block_size(n, d + 1, crate::field::Score::batch_hint(target), None)?;
    let closed = cfg.divergence == Divergence::Exact && {
        let probe = Block::zeros(d, 1);
        let mut tr = [0.0f64];
        target.score_divergence_at(&probe, sch.sigma(t0), &mut tr)?
    };
    let results: Vec<Result<(Vec<f64>, SolveStats)>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let first = b * block;
            let len = block.min(n - first);
            let rows = data.slice(ndarray::s![first..first + len, ..]);
            let mut x = Block::zeros(d + 1, len);
            let s0 = sch.scale(t0);
            for (i, r) in rows.outer_iter().enumerate() {
                for c in 0..d {
                    x.row_mut(c)[i] = (r[c] as f64 * s0) as f32;
                }
            }
            let probes = match cfg.divergence {
                Divergence::Hutchinson(p) => {
                    let mut rng = ParticleRng::new(cfg.seed, first, x.stride());
                    (0..p)
                        .map(|_| {
                            let mut v = Block::zeros(d, len);
                            let mut u = vec![0.0f32; v.stride()];
                            for c in 0..d {
                                rng.fill_uniform(&mut u);
                                for (o, u) in v.row_mut(c).iter_mut().zip(&u) {
                                    *o = if *u < 0.5 { -1.0 } else { 1.0 };
                                }
                            }
                            v
                        })
                        .collect()
                }
                Divergence::Exact => Vec::new(),
            };
            let field = Augmented {
                target,
                schedule: sch,
                divergence: cfg.divergence,
                probes,
                length_scale: cfg.length_scale,
                closed,
            };
            let stats = match cfg.ode {
                OdeMethod::Adaptive(tol) => solve::solve_adaptive(&field, &mut x, t0, t1, &tol, &mut |_| Ok(()))?,
                OdeMethod::Grid(s) => {
                    let mut grid = sch.time_grid(fixed_steps(s), cfg.t_eps);
                    grid.reverse();
                    solve::solve_grid(&field, s, &mut x, &grid, &mut |_| Ok(()))?
                }
            };
            let xt = Augmented::split(&x);
            let lp = prior.log_density(&xt, sch.sigma(t1), sch.scale(t1))?;
            let ll = (0..len).map(|i| lp[i] + x.row(d)[i] as f64 + d as f64 * s0.ln()).collect();
            Ok((ll, stats))
        })
        .collect();
    let mut ll = Vec::with_capacity(n);
    let mut worst = SolveStats::default();
    for r in results {
        let (l, s) = r?;
        ll.extend(l);
        if s.nfe > worst.nfe {
            worst = s;
        }
    }
    let per_eval = match (closed, cfg.divergence) {
        (true, _) => 1,
        (false, Divergence::Exact) => 1 + 2 * d,
        (false, Divergence::Hutchinson(p)) => 1 + 2 * p,
    };
    Ok(Likelihood { log_likelihood: ll, nfe: worst.nfe * per_eval, stats: worst, closed_form_divergence: closed })
}

/// Fixed-step likelihood solves use this many steps (the grid is the schedule's).
fn fixed_steps(s: Solver) -> usize {
    match s {
        Solver::Euler => 1000,
        Solver::Heun => 200,
        Solver::Rk4 | Solver::Dopri5 => 50,
    }
}

/// What a likelihood request fixes; `None` is derived.
#[derive(Clone, Debug, Default)]
pub struct LikelihoodOptions {
    /// The forward process (default VE).
    pub schedule: Option<super::ScheduleKind>,
    /// Smallest noise level (default from the target or the model).
    pub sigma_min: Option<f64>,
    /// Largest noise level.
    pub sigma_max: Option<f64>,
    /// Time cut-off ε.
    pub t_eps: Option<f64>,
    /// A fixed-step solver instead of adaptive Dormand–Prince.
    pub solver: Option<Solver>,
    /// rtol (1e-5).
    pub rtol: Option<f64>,
    /// atol (1e-5).
    pub atol: Option<f64>,
    /// Step budget (10,000).
    pub max_steps: Option<usize>,
    /// Hutchinson probes (default: exact divergence up to d = 16, one probe above).
    pub probes: Option<usize>,
    /// Seed of the probes and of the dequantization noise.
    pub seed: u64,
    /// The data are 8-bit values (integers 0..=255): add uniform noise in [0, 1) to each
    /// (dequantization) and report bits per dimension.
    pub dequantize: bool,
}

/// The `likelihood` report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LikelihoodReport {
    /// Mean of `log_likelihood`.
    pub mean_log_likelihood: f64,
    /// log p(x) per row (natural log, the data's units).
    pub log_likelihood: Vec<f64>,
    /// Score evaluations per point.
    pub nfe: usize,
    /// The ODE solver.
    pub solver: &'static str,
    /// rtol (adaptive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// atol (adaptive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// Accepted steps (of the batch that needed most).
    pub accepted_steps: usize,
    /// Rejected steps.
    pub rejected_steps: usize,
    /// The schedule.
    pub schedule: &'static str,
    /// σ at ε: the likelihood is that of the data perturbed by it.
    pub sigma_min: f64,
    /// σ at T.
    pub sigma_max: f64,
    /// ε.
    pub t_eps: f64,
    /// `closed form`, `central differences` or `hutchinson`.
    pub divergence: &'static str,
    /// Hutchinson probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<usize>,
    /// Rows.
    pub n: usize,
    /// Dimension.
    pub dim: usize,
    /// −mean log p/(d ln 2): bits per dimension (for dequantized 8-bit data the usual figure; for
    /// continuous data the same quantity of the density, which may be negative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_dim: Option<f64>,
    /// For targets with a closed-form density: the exact log p_σmin and log p at the points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_form: Option<ClosedForm>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// How each value was chosen.
    pub notes: Vec<String>,
}

/// The exact answer beside the ODE's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClosedForm {
    /// Mean exact log p_σmin(x) (the density the ODE computes).
    pub mean_log_likelihood: f64,
    /// Mean exact log p(x) of the clean density.
    pub mean_log_likelihood_clean: f64,
    /// Largest |ODE − exact| over the points.
    pub max_abs_error: f64,
    /// |mean ODE − mean exact| / |mean exact|.
    pub relative_error: f64,
}

/// Dequantize 8-bit data: every value must be an integer in 0..=255; adds U[0, 1) noise from
/// the seed.
pub fn dequantize(data: ArrayView2<f32>, seed: u64) -> Result<Array2<f32>> {
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !(v.fract() == 0.0 && **v >= 0.0 && **v <= 255.0)) {
        return Err(invalid_field!(
            "dequantize",
            "`dequantize` needs 8-bit data (integers 0..=255), but row {} holds {v}",
            i / data.ncols().max(1) + 1
        ));
    }
    let mut rng = crate::rng::LaneRng::new(seed, 3);
    let mut u = vec![0.0f32; data.len()];
    rng.fill_uniform(&mut u);
    let mut out = data.to_owned();
    out.iter_mut().zip(&u).for_each(|(o, u)| *o += u);
    Ok(out)
}

/// The probability-flow likelihood of `data` under a target that knows its perturbed scores
/// s(x, σ) at every σ (Gaussians and mixtures): its own σ range (or 1e-3 … 50) and prior, no
/// offset. What `langevin likelihood --target` and the Python package call.
pub fn likelihood_of_target(
    target: &dyn Target,
    data: ArrayView2<f32>,
    o: &LikelihoodOptions,
) -> Result<LikelihoodReport> {
    if target.noise_range().1 == 0.0 {
        return Err(crate::Error::msg(format!(
            "'{}' knows its score only at σ = 0; the probability-flow likelihood needs s(x, σ) at every noise level \
             (Gaussians and mixtures, or a trained model)",
            target.name()
        )));
    }
    let range = crate::sample::target_sigma_range(target).unwrap_or([(1e-3, "default"), (50.0, "default")]);
    likelihood(target, data, &Prior::of(target), range, o, 0.0)
}

/// The log-likelihood of `data` under `target`'s probability flow, with its report: the prior
/// from the target's moments (or `prior`), σ range from `range` unless given, the closed form
/// beside it for Gaussian mixtures. `offset` is added to every value (e.g. −Σ ln std of a
/// standardization), `data` must already be in the target's units.
pub fn likelihood(
    target: &dyn Target,
    data: ArrayView2<f32>,
    prior: &Prior,
    range: [(f64, &str); 2],
    o: &LikelihoodOptions,
    offset: f64,
) -> Result<LikelihoodReport> {
    let start = web_time::Instant::now();
    let d = target.dim();
    let mut notes = Vec::new();
    let kind = o.schedule.unwrap_or(super::ScheduleKind::Ve);
    let sigma_min = o.sigma_min.unwrap_or_else(|| {
        notes.push(format!("sigma_min = {:.4e}: {}", range[0].0, range[0].1));
        range[0].0
    });
    let sigma_max = o.sigma_max.unwrap_or_else(|| {
        notes.push(format!("sigma_max = {:.4}: {}", range[1].0, range[1].1));
        range[1].0
    });
    let schedule = kind.build(sigma_min, sigma_max, 7.0)?;
    let (t_eps, note) = super::resolve_t_eps(&schedule, o.t_eps, sigma_min)?;
    notes.extend(note);
    let tol = Tolerances {
        rtol: o.rtol.unwrap_or(1e-5),
        atol: o.atol.unwrap_or(1e-5),
        max_steps: o.max_steps.unwrap_or(10_000),
    };
    tol.check()?;
    let ode = match o.solver {
        None | Some(Solver::Dopri5) => OdeMethod::Adaptive(tol),
        Some(s) => {
            if o.rtol.is_some() || o.atol.is_some() || o.max_steps.is_some() {
                return Err(invalid_field!(
                    "rtol",
                    "`rtol`, `atol` and `max_steps` apply to the adaptive dopri5 solver, not to {}",
                    s.name()
                ));
            }
            OdeMethod::Grid(s)
        }
    };
    let divergence = match o.probes {
        Some(0) => return Err(invalid_field!("probes", "`probes` must be at least 1")),
        Some(p) => Divergence::Hutchinson(p),
        None if d <= EXACT_DIVERGENCE_MAX_DIM => Divergence::Exact,
        None => {
            notes.push(format!("divergence: Hutchinson with 1 probe (d = {d} > {EXACT_DIVERGENCE_MAX_DIM})"));
            Divergence::Hutchinson(1)
        }
    };
    let deq;
    let data = if o.dequantize {
        deq = dequantize(data, o.seed)?;
        deq.view()
    } else {
        data
    };
    let cfg = LikelihoodConfig {
        schedule,
        t_eps,
        ode,
        divergence,
        seed: o.seed,
        length_scale: target.scales().map_or(1.0, |s| s.smallest),
    };
    let l = log_likelihood(target, data, prior, &cfg)?;
    let ll: Vec<f64> = l.log_likelihood.iter().map(|v| v + offset).collect();
    let mean = ll.iter().sum::<f64>() / ll.len() as f64;
    let (t0, t1) = schedule.time_range(t_eps);
    let closed_form = target.mixture().and_then(|m| {
        let p = m.perturbed(schedule.sigma(t0)).ok()?;
        let pts: Vec<Vec<f64>> = data.outer_iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect();
        let exact: Vec<f64> = pts.iter().map(|x| p.log_density(x)).collect();
        let clean = pts.iter().map(|x| m.log_density(x)).sum::<f64>() / pts.len() as f64;
        let em = exact.iter().sum::<f64>() / exact.len() as f64;
        Some(ClosedForm {
            mean_log_likelihood: em,
            mean_log_likelihood_clean: clean,
            max_abs_error: ll.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max),
            relative_error: ((mean - em) / em).abs(),
        })
    });
    Ok(LikelihoodReport {
        mean_log_likelihood: mean,
        nfe: l.nfe,
        solver: match ode {
            OdeMethod::Adaptive(_) => "dopri5",
            OdeMethod::Grid(s) => s.name(),
        },
        rtol: matches!(ode, OdeMethod::Adaptive(_)).then_some(tol.rtol),
        atol: matches!(ode, OdeMethod::Adaptive(_)).then_some(tol.atol),
        accepted_steps: l.stats.accepted,
        rejected_steps: l.stats.rejected,
        schedule: kind.name(),
        sigma_min: schedule.sigma(t0),
        sigma_max: schedule.sigma(t1),
        t_eps,
        divergence: match (l.closed_form_divergence, divergence) {
            (true, _) => "closed form",
            (false, Divergence::Exact) => "central differences",
            (false, Divergence::Hutchinson(_)) => "hutchinson",
        },
        probes: match (l.closed_form_divergence, divergence) {
            (false, Divergence::Hutchinson(p)) => Some(p),
            _ => None,
        },
        n: ll.len(),
        dim: d,
        bits_per_dim: Some(-mean / (d as f64 * std::f64::consts::LN_2)),
        closed_form,
        log_likelihood: ll,
        seconds: start.elapsed().as_secs_f64(),
        notes,
    })
}
