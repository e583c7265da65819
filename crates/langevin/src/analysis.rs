//! The score as a flow (seed 002): where it stops, how it contracts, how stiff it is, where
//! noise outweighs drift, and how far it is from a gradient field.
//!
//! - [`stagnation_points`]: zeros of s(x) by damped multi-start Newton iteration on the score
//!   with its Jacobian, de-duplicated and classified by the Jacobian's eigenvalues (all real
//!   parts negative: a sink, the mode of a density; mixed: a saddle; all positive: a source);
//! - [`divergence`]: ∇·s = tr ∇s (a Gaussian's is −tr Σ⁻¹ everywhere);
//! - [`stiffness`]: the largest |eigenvalue| λ_max of ∇s over typical samples; ULA is stable for
//!   τ < 2/λ_max (on a Gaussian, x ← x − τλx + noise contracts iff |1 − τλ| < 1);
//! - [`noise_dominated`]: ‖s‖² < 2d/τ, where one step's noise √(2τd) outweighs its drift τ‖s‖;
//! - [`asymmetry`]: ‖(J − Jᵀ)/2‖_F / ‖J‖_F, zero exactly when the field is locally a gradient.
//!
//! A [`Field`] wraps any [`Target`]. It evaluates in `f64` where the target can
//! ([`Target::score_f64`]), uses the analytic Jacobian where the target has one
//! ([`Target::score_jacobian`]: Gaussians and mixtures), and central differences of the score
//! otherwise, all points of a Newton iteration in one batch (learned scores are evaluated in
//! large batches).

use crate::error::{Error, Result};
use crate::rng::LaneRng;
use crate::target::Target;
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::Array2;

/// The score of a target as a vector field for analysis.
pub struct Field<'a> {
    target: &'a dyn Target,
    exact_f64: bool,
    /// Central-difference step for the Jacobian when no analytic one exists.
    h: f64,
}

/// Kind of a stagnation point, from the real parts of the Jacobian's eigenvalues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PointKind {
    /// All negative: particles flow in (a mode of the density).
    Sink,
    /// Mixed signs.
    Saddle,
    /// All positive: particles flow out (a minimum of the density).
    Source,
}

/// A zero of the score.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StagnationPoint {
    pub x: Vec<f64>,
    #[serde(rename = "type")]
    pub kind: PointKind,
    /// Real parts of the eigenvalues of ∇s at x, ascending.
    pub eigenvalues: Vec<f64>,
    /// Imaginary parts, in the same order (all zero for a gradient field).
    pub eigenvalues_imag: Vec<f64>,
    /// Eigenvalues treated as zero (|λ| below 1e-6 of the largest, 1e-3 for single-precision
    /// fields): directions along which the point is not isolated, such as the rotations of a
    /// cluster. The type is decided by the others.
    pub zero_modes: usize,
    /// ‖s(x)‖ at the converged point.
    pub score_norm: f64,
    /// How many Newton starts ended here.
    pub starts: usize,
}

/// A mode of an exact density against the nearest mode of a learned field (seed 002: a learned
/// score smears its modes, i.e. the learned density is flatter there).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModeSmearing {
    /// The exact mode.
    pub exact_x: Vec<f64>,
    /// The nearest learned sink, if the learned field has one.
    pub learned_x: Option<Vec<f64>>,
    /// Their distance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// Eigenvalues of the exact ∇s at the mode (ascending).
    pub exact_eigenvalues: Vec<f64>,
    /// Eigenvalues of the learned ∇s at the learned mode (ascending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned_eigenvalues: Option<Vec<f64>>,
    /// learned/exact eigenvalue, sorted pairs: below 1 the learned mode is flatter (smeared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curvature_ratio: Option<Vec<f64>>,
}

/// A 2-D field sampled on a grid of cell centres: what a picture of the score as a flow shows
/// (seed 002), as plain data. Row-major: point k is cell (k mod nx, k div nx).
#[derive(Clone, Debug, serde::Serialize)]
pub struct FieldGrid {
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// The cell centres, nx·ny × 2.
    #[serde(skip)]
    pub points: Array2<f64>,
    /// s at the centres, nx·ny × 2.
    #[serde(skip)]
    pub scores: Array2<f64>,
    /// log₁₀‖s‖.
    pub log_norm: Vec<f64>,
    /// ∇·s (when asked for).
    pub divergence: Option<Vec<f64>>,
    /// Where noise outweighs drift at the given step (‖s‖² < 2d/τ), when a step is given.
    pub noise_dominated: Option<Vec<bool>>,
}

impl FieldGrid {
    /// Sample the 2-D field `f` on an `nx × ny` grid over the region's first two coordinates.
    pub fn compute(
        f: &Field,
        region: &Region,
        nx: usize,
        ny: usize,
        divergence: bool,
        tau: Option<f64>,
    ) -> Result<FieldGrid> {
        if f.dim() != 2 || region.lo.len() != 2 {
            return Err(Error::invalid(
                "dim",
                format!("a field grid needs a 2-D field, this one is {}-dimensional", f.dim()),
            ));
        }
        if nx == 0 || ny == 0 {
            return Err(Error::invalid("grid", "a field grid needs at least one cell along each axis"));
        }
        let (x, y) = ((region.lo[0], region.hi[0]), (region.lo[1], region.hi[1]));
        let points = Array2::from_shape_fn((nx * ny, 2), |(k, c)| {
            let (ix, iy) = (k % nx, k / nx);
            if c == 0 {
                x.0 + (ix as f64 + 0.5) * (x.1 - x.0) / nx as f64
            } else {
                y.0 + (iy as f64 + 0.5) * (y.1 - y.0) / ny as f64
            }
        });
        let scores = f.scores(&points)?;
        let log_norm = scores.outer_iter().map(|r| (r[0] * r[0] + r[1] * r[1]).sqrt().max(1e-300).log10()).collect();
        let divergence = if divergence { Some(self::divergence(f, &points)?) } else { None };
        let noise_dominated = tau.map(|t| noise_dominated(&scores, t));
        Ok(FieldGrid { nx, ny, points, scores, log_norm, divergence, noise_dominated })
    }
}

/// What [`analyze`] looks at.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// Where to search for stagnation points.
    pub region: Region,
    /// Newton starts in the region (typical samples are added as further starts).
    pub starts: usize,
    /// Seed of the starts.
    pub seed: u64,
    /// The Langevin step for the noise-versus-drift balance (default: the recommended step).
    pub step_size: Option<f64>,
}

/// Mean, median and range of a measure over the samples.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Summary {
    /// Of the finite values of `v`.
    pub fn of(v: &[f64]) -> Summary {
        let mut s: Vec<f64> = v.iter().cloned().filter(|x| x.is_finite()).collect();
        s.sort_by(|a, b| a.total_cmp(b));
        let mean = s.iter().sum::<f64>() / s.len().max(1) as f64;
        Summary { mean, median: s.get(s.len() / 2).copied(), min: s.first().copied(), max: s.last().copied() }
    }
}

/// A stagnation point in a report: the point, its divergence (the trace of ∇s).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PointReport {
    /// The point, its type and eigenvalues.
    #[serde(flatten)]
    pub point: StagnationPoint,
    /// ∇·s at the point (the sum of the eigenvalues).
    pub divergence: f64,
}

/// How many points of each type.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Counts {
    /// Sinks (modes).
    pub sink: usize,
    /// Saddles.
    pub saddle: usize,
    /// Sources.
    pub source: usize,
}

/// Where noise outweighs drift at step τ: ‖s‖² < 2d/τ.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NoiseVsDrift {
    /// τ.
    pub step_size: f64,
    /// 2d/τ.
    pub threshold_score_norm_squared: f64,
    /// Fraction of the samples where noise dominates.
    pub fraction_of_samples_noise_dominated: f64,
    /// The rule.
    pub rule: &'static str,
}

/// The score as a flow (seed 002): what `langevin analyze` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AnalysisReport {
    /// Field description.
    pub field: String,
    /// Dimension.
    pub dim: usize,
    /// `f64`, or `f32 (Jacobians by central differences)`.
    pub precision: &'static str,
    /// The search region.
    pub region: Region,
    /// Newton starts in the region.
    pub starts: usize,
    /// Stagnation points found.
    pub stagnation_points: Vec<PointReport>,
    /// Points of each type.
    pub counts: Counts,
    /// Remarks (e.g. continua of zeros).
    pub notes: Vec<String>,
    /// Samples the field measures used.
    pub samples: usize,
    /// λ_max of ∇s over the samples.
    pub lambda_max: f64,
    /// Where.
    pub lambda_max_at: Vec<f64>,
    /// Median over the samples of the largest |eigenvalue|.
    pub lambda_median: f64,
    /// λ_max / λ_median.
    pub stiffness_ratio: f64,
    /// 2/λ_max.
    pub max_stable_step: f64,
    /// 1/λ_max.
    pub recommended_step: f64,
    /// ∇·s over the samples.
    pub divergence_at_samples: Summary,
    /// The noise-versus-drift balance.
    pub noise_vs_drift: NoiseVsDrift,
    /// ‖(J − Jᵀ)/2‖/‖J‖ over the samples (0 for a gradient field).
    pub asymmetry_at_samples: Summary,
}

/// Analyse the field `f` of `target`: stagnation points in the region (Newton from the
/// region's starts and from `samples`), stiffness, divergence, noise against drift and asymmetry
/// at the samples. No stagnation point in the region is an error that says so.
pub fn analyze(f: &Field, samples: &Array2<f64>, o: &AnalyzeOptions) -> Result<AnalysisReport> {
    let d = f.dim();
    if o.starts == 0 {
        return Err(Error::invalid("starts", "`starts` must be at least 1"));
    }
    // Each start holds a point, its score and a d × d Jacobian while Newton runs.
    crate::mem::check(crate::mem::product(&[o.starts, d, d + 4, 8]), format!("{} Newton starts", o.starts), "starts")?;
    if let Some(t) = o.step_size
        && !(t.is_finite() && t > 0.0)
    {
        return Err(Error::invalid("step_size", format!("`step_size` = {t} must be positive and finite")));
    }
    // Newton also starts from typical samples (evenly spaced rows, at most `starts` of them).
    let every = samples.nrows().div_ceil(o.starts).max(1);
    let rows: Vec<usize> = (0..samples.nrows()).step_by(every).collect();
    let extra = samples.select(ndarray::Axis(0), &rows);
    let points = stagnation_points(f, &o.region, o.starts, o.seed, Some(&extra))?;
    if points.is_empty() {
        let shown = if d <= 4 {
            format!("lo = {:?}, hi = {:?}", o.region.lo, o.region.hi)
        } else {
            format!("(a {d}-dimensional box)")
        };
        return Err(Error::invalid(
            "region",
            format!(
                "no stagnation point (s(x) = 0) found in the region {shown} from {} starts: the score does not vanish there; widen `region` or add `starts`",
                o.starts + rows.len()
            ),
        ));
    }
    let jac = f.jacobians(samples)?;
    let stiff = stiffness(samples, &jac)?;
    let tau = o.step_size.unwrap_or(stiff.recommended_step);
    let div: Vec<f64> = jac.iter().map(|j| j.trace()).collect();
    let noisy = noise_dominated(&f.scores(samples)?, tau);
    let count = |k: PointKind| points.iter().filter(|p| p.kind == k).count();
    let counts =
        Counts { sink: count(PointKind::Sink), saddle: count(PointKind::Saddle), source: count(PointKind::Source) };
    let degenerate = points.iter().filter(|p| p.zero_modes > 0).count();
    let mut notes = Vec::new();
    if degenerate > 0 {
        notes.push(format!(
            "{degenerate} stagnation points have zero modes (eigenvalues ≈ 0): they lie on a continuum of zeros (a ring of modes, or a symmetry such as the rotations of a cluster), and the list samples that continuum rather than counting distinct modes"
        ));
    }
    Ok(AnalysisReport {
        field: f.target().name(),
        dim: d,
        precision: if f.is_f64() { "f64" } else { "f32 (Jacobians by central differences)" },
        region: o.region.clone(),
        starts: o.starts,
        stagnation_points: points
            .into_iter()
            .map(|p| PointReport { divergence: p.eigenvalues.iter().sum(), point: p })
            .collect(),
        counts,
        notes,
        samples: samples.nrows(),
        lambda_max: stiff.lambda_max,
        lambda_max_at: stiff.lambda_max_at.clone(),
        lambda_median: stiff.lambda_median,
        stiffness_ratio: stiff.lambda_max / stiff.lambda_median.max(f64::MIN_POSITIVE),
        max_stable_step: stiff.max_stable_step,
        recommended_step: stiff.recommended_step,
        divergence_at_samples: Summary::of(&div),
        noise_vs_drift: NoiseVsDrift {
            step_size: tau,
            threshold_score_norm_squared: 2.0 * d as f64 / tau,
            fraction_of_samples_noise_dominated: noisy.iter().filter(|&&b| b).count() as f64
                / noisy.len().max(1) as f64,
            rule: "noise dominates where ‖s‖² < 2d/τ",
        },
        asymmetry_at_samples: Summary::of(&asymmetry(&jac)),
    })
}

/// Pair every sink of `exact` with the nearest sink of `learned` and compare their curvatures.
pub fn mode_smearing(exact: &[StagnationPoint], learned: &[StagnationPoint]) -> Vec<ModeSmearing> {
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    exact
        .iter()
        .filter(|p| p.kind == PointKind::Sink)
        .map(|e| {
            let l = learned
                .iter()
                .filter(|p| p.kind == PointKind::Sink)
                .min_by(|p, q| dist(&p.x, &e.x).total_cmp(&dist(&q.x, &e.x)));
            ModeSmearing {
                exact_x: e.x.clone(),
                learned_x: l.map(|l| l.x.clone()),
                offset: l.map(|l| dist(&l.x, &e.x)),
                exact_eigenvalues: e.eigenvalues.clone(),
                learned_eigenvalues: l.map(|l| l.eigenvalues.clone()),
                curvature_ratio: l.map(|l| l.eigenvalues.iter().zip(&e.eigenvalues).map(|(a, b)| a / b).collect()),
            }
        })
        .collect()
}

/// Stiffness of the field over a set of points.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stiffness {
    /// The largest |eigenvalue| of ∇s over the points.
    pub lambda_max: f64,
    /// Where it is reached.
    pub lambda_max_at: Vec<f64>,
    /// Median over the points of the largest |eigenvalue| (how stiff a typical place is).
    pub lambda_median: f64,
    /// 2/λ_max: the largest ULA step that is stable everywhere on the points.
    pub max_stable_step: f64,
    /// 1/λ_max: half the stability limit; ULA's variance in the stiffest direction is then
    /// inflated by 1/(1 − τλ/2) = 2 (MALA removes that bias, BAOAB has none on Gaussians).
    pub recommended_step: f64,
    /// Points used.
    pub points: usize,
}

impl<'a> Field<'a> {
    /// The score field of `target`.
    pub fn new(target: &'a dyn Target) -> Self {
        let d = target.dim();
        let mut s = vec![0.0; d];
        let exact_f64 = target.score_f64(&vec![0.0; d], &mut s);
        let scale = target.scales().map_or(1.0, |s| s.smallest).clamp(1e-12, 1e12);
        // f64 scores: truncation (h/ℓ)² and rounding 1e-16 ℓ/h balance near 1e-5 ℓ; f32 scores
        // (learned networks) round at 1e-7, so the step must be larger.
        let h = if exact_f64 { 1e-5 * scale } else { 3e-3 * scale };
        Field { target, exact_f64, h }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.target.dim()
    }

    /// The target behind the field.
    pub fn target(&self) -> &dyn Target {
        self.target
    }

    /// Whether the field is evaluated in double precision.
    pub fn is_f64(&self) -> bool {
        self.exact_f64
    }

    /// Scores of the rows of `pts` (n × d).
    pub fn scores(&self, pts: &Array2<f64>) -> Result<Array2<f64>> {
        let (n, d) = pts.dim();
        if self.exact_f64 {
            let mut out = Array2::zeros((n, d));
            let mut s = vec![0.0; d];
            for i in 0..n {
                let x: Vec<f64> = pts.row(i).to_vec();
                self.target.score_f64(&x, &mut s);
                out.row_mut(i).iter_mut().zip(&s).for_each(|(o, v)| *o = *v);
            }
            Ok(out)
        } else {
            let p32 = pts.mapv(|v| v as f32);
            Ok(eval_rows_score_only(self.target, &p32)?.mapv(|v| v as f64))
        }
    }

    /// Jacobians ∇s (J[i][j] = ∂s_i/∂x_j) at the rows of `pts`.
    pub fn jacobians(&self, pts: &Array2<f64>) -> Result<Vec<DMatrix<f64>>> {
        let (n, d) = pts.dim();
        let mut jac = vec![0.0; d * d];
        if n > 0 && self.target.score_jacobian(&pts.row(0).to_vec(), &mut jac) {
            return Ok((0..n)
                .map(|i| {
                    self.target.score_jacobian(&pts.row(i).to_vec(), &mut jac);
                    DMatrix::from_row_slice(d, d, &jac)
                })
                .collect());
        }
        // Central differences, all 2·d·n shifted points in one batch.
        let mut shifted = Array2::zeros((2 * d * n, d));
        for i in 0..n {
            for j in 0..d {
                for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
                    let r = (i * d + j) * 2 + k;
                    shifted.row_mut(r).assign(&pts.row(i));
                    shifted[[r, j]] += sign * self.h;
                }
            }
        }
        let s = self.scores(&shifted)?;
        Ok((0..n)
            .map(|i| {
                DMatrix::from_fn(d, d, |a, j| {
                    let r = (i * d + j) * 2;
                    (s[[r, a]] - s[[r + 1, a]]) / (2.0 * self.h)
                })
            })
            .collect())
    }
}

/// Scores of f32 rows without asking for log-densities (learned scores have none).
fn eval_rows_score_only(target: &dyn Target, pts: &Array2<f32>) -> Result<Array2<f32>> {
    let (n, d) = pts.dim();
    let mut out = Array2::zeros((n, d));
    let chunk = target.preferred_block_size().clamp(256, 1 << 16);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let block = crate::block::Block::from_rows(pts.slice(ndarray::s![start..end, ..]));
        let mut s = crate::block::Block::zeros(d, end - start);
        target.eval(&block, &mut s, None)?;
        s.write_rows(out.slice_mut(ndarray::s![start..end, ..]));
        start = end;
    }
    Ok(out)
}

/// Eigenvalues of a Jacobian as (real, imaginary) pairs sorted by real part. Symmetric matrices
/// (gradient fields) go through the symmetric solver, others through the Schur form.
pub fn eigenvalues(j: &DMatrix<f64>) -> Vec<(f64, f64)> {
    if !j.iter().all(|v| v.is_finite()) {
        // A non-finite Jacobian (e.g. at a singularity of a potential) has no spectrum; the
        // iterative solvers would not terminate on it.
        return vec![(f64::NAN, f64::NAN); j.nrows()];
    }
    let norm = j.norm().max(f64::MIN_POSITIVE);
    let asym = (j - j.transpose()).norm() / norm;
    let mut ev: Vec<(f64, f64)> = if asym < 1e-6 {
        let sym = (j + j.transpose()) * 0.5;
        SymmetricEigen::new(sym).eigenvalues.iter().map(|&v| (v, 0.0)).collect()
    } else {
        j.clone().complex_eigenvalues().iter().map(|c| (c.re, c.im)).collect()
    };
    ev.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    ev
}

/// An axis-aligned box.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Region {
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Region {
    /// The region an analysis looks at by default: the box the target's initial distribution
    /// covers, or the box around `samples` ([`Region::around`]).
    pub fn default_for(t: &dyn Target, samples: &Array2<f64>) -> Region {
        let d = t.dim();
        match t.default_init() {
            crate::sampler::Init::Box { lo, hi } if lo.len() == d => Region { lo, hi },
            crate::sampler::Init::Uniform { lo, hi } => Region { lo: vec![lo; d], hi: vec![hi; d] },
            _ => Region::around(samples),
        }
    }

    /// Parse `LO,HI` (the same interval for every coordinate) or `LO0,HI0;LO1,HI1;...`.
    pub fn parse(spec: &str, dim: usize) -> Result<Region> {
        let bad = |why: String| {
            Error::msg(format!(
                "`region` '{spec}': {why}; write LO,HI for every coordinate or LO0,HI0;LO1,HI1;... (one pair per coordinate)"
            ))
        };
        let pairs: Vec<&str> = spec.split(';').map(str::trim).collect();
        if pairs.len() != 1 && pairs.len() != dim {
            return Err(bad(format!("{} intervals for {dim} coordinates", pairs.len())));
        }
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for p in &pairs {
            let v: Vec<&str> = p.split(',').map(str::trim).collect();
            if v.len() != 2 {
                return Err(bad(format!("'{p}' is not an interval LO,HI")));
            }
            let a: f64 = v[0].parse().map_err(|_| bad(format!("'{}' is not a number", v[0])))?;
            let b: f64 = v[1].parse().map_err(|_| bad(format!("'{}' is not a number", v[1])))?;
            if !(a.is_finite() && b.is_finite() && a < b) {
                return Err(bad(format!("interval {a},{b} must be finite with LO < HI")));
            }
            lo.push(a);
            hi.push(b);
        }
        if pairs.len() == 1 {
            lo = vec![lo[0]; dim];
            hi = vec![hi[0]; dim];
        }
        Ok(Region { lo, hi })
    }

    /// A box around the points' 0.5–99.5% range in every coordinate, widened by 10%.
    pub fn around(points: &Array2<f64>) -> Region {
        let d = points.ncols();
        let mut lo = Vec::with_capacity(d);
        let mut hi = Vec::with_capacity(d);
        for c in 0..d {
            let mut v: Vec<f64> = points.column(c).iter().cloned().filter(|x| x.is_finite()).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let (a, b) = if v.is_empty() { (-1.0, 1.0) } else { (v[v.len() / 200], v[v.len() - 1 - v.len() / 200]) };
            let m = 0.1 * (b - a).max(1e-6);
            lo.push(a - m);
            hi.push(b + m);
        }
        Region { lo, hi }
    }

    fn contains(&self, x: &[f64], slack: f64) -> bool {
        x.iter().zip(self.lo.iter().zip(&self.hi)).all(|(v, (a, b))| {
            let m = slack * (b - a);
            *v >= a - m && *v <= b + m
        })
    }

    fn diagonal(&self) -> f64 {
        self.lo.iter().zip(&self.hi).map(|(a, b)| (b - a).powi(2)).sum::<f64>().sqrt()
    }

    /// Start points: a regular grid in 1-D and 2-D, seeded uniform draws above.
    pub fn starts(&self, n: usize, seed: u64) -> Array2<f64> {
        let d = self.lo.len();
        let per = if d <= 2 { ((n as f64).powf(1.0 / d as f64).ceil() as usize).max(2) } else { 0 };
        let total = if d <= 2 { per.pow(d as u32) } else { n };
        let mut rng = LaneRng::new(seed, 0xA7A1);
        Array2::from_shape_fn((total, d), |(i, c)| {
            let u = if d <= 2 {
                let k = if c == 0 { i % per } else { i / per };
                (k as f64 + 0.5) / per as f64
            } else {
                rng.uniform_f64()
            };
            self.lo[c] + u * (self.hi[c] - self.lo[c])
        })
    }
}

fn solve(j: &DMatrix<f64>, s: &[f64]) -> Option<Vec<f64>> {
    let d = s.len();
    let rhs = nalgebra::DVector::from_column_slice(s);
    if let Some(x) = j.clone().lu().solve(&rhs)
        && x.iter().all(|v| v.is_finite())
    {
        return Some(x.iter().map(|v| -v).collect());
    }
    // Singular Jacobian: a Levenberg step.
    let mu = 1e-8 * j.norm().max(1e-300);
    let jt = j.transpose();
    let a = &jt * j + DMatrix::identity(d, d) * mu;
    let x = a.cholesky()?.solve(&(jt * rhs));
    x.iter().all(|v| v.is_finite()).then(|| x.iter().map(|v| -v).collect())
}

/// Zeros of the score in `region`, by damped Newton iteration from `starts` points spread over
/// the region plus the rows of `extra` (typical samples: in many dimensions random points of a
/// box rarely lead Newton anywhere, points near the modes do).
///
/// Every start runs up to 100 Newton steps x ← x − α J⁻¹ s (α halved until ‖s‖ decreases,
/// steps capped at a quarter of the region's diagonal); a start counts when ‖s‖ has dropped
/// below `1e-8` of the typical ‖s‖ in the region (`1e-3` for single-precision fields) and the
/// point lies in the region. Points closer than 1e-3 of the diagonal are merged. An empty
/// result is returned as is: the caller says that the region has no stagnation point.
pub fn stagnation_points(
    field: &Field,
    region: &Region,
    starts: usize,
    seed: u64,
    extra: Option<&Array2<f64>>,
) -> Result<Vec<StagnationPoint>> {
    let d = field.dim();
    if region.lo.len() != d {
        return Err(Error::msg(format!("the region has {} coordinates but the field has {d}", region.lo.len())));
    }
    let mut x0 = region.starts(starts, seed);
    if let Some(e) = extra {
        if e.ncols() != d {
            return Err(Error::msg(format!("extra starts have {} columns but the field has {d}", e.ncols())));
        }
        x0.append(ndarray::Axis(0), e.view()).expect("same number of columns");
    }
    let s0 = field.scores(&x0)?;
    let mut norms: Vec<f64> =
        s0.outer_iter().map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt()).filter(|v| v.is_finite()).collect();
    norms.sort_by(|a, b| a.total_cmp(b));
    let typical = norms.get(norms.len() / 2).cloned().unwrap_or(1.0).max(1e-300);
    let tol = typical * if field.is_f64() { 1e-8 } else { 1e-3 };
    let cap = 0.25 * region.diagonal();

    let n = x0.nrows();
    let mut x = x0;
    let mut s = s0;
    let mut active: Vec<bool> = vec![true; n];
    let mut done: Vec<bool> = vec![false; n];
    let norm = |r: ndarray::ArrayView1<f64>| r.iter().map(|v| v * v).sum::<f64>().sqrt();
    for _ in 0..100 {
        let idx: Vec<usize> = (0..n).filter(|&i| active[i]).collect();
        if idx.is_empty() {
            break;
        }
        let pts = Array2::from_shape_fn((idx.len(), d), |(k, c)| x[[idx[k], c]]);
        let jac = field.jacobians(&pts)?;
        let mut step: Vec<Option<Vec<f64>>> = Vec::with_capacity(idx.len());
        for (k, &i) in idx.iter().enumerate() {
            let si: Vec<f64> = s.row(i).to_vec();
            let mut dx = solve(&jac[k], &si);
            if let Some(v) = dx.as_mut() {
                let len = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                if len > cap {
                    v.iter_mut().for_each(|a| *a *= cap / len);
                }
            }
            step.push(dx);
        }
        // Line search on ‖s‖, all trial points of a round in one batch.
        let mut alpha = vec![1.0f64; idx.len()];
        let mut pending: Vec<usize> = (0..idx.len()).filter(|&k| step[k].is_some()).collect();
        for k in 0..idx.len() {
            if step[k].is_none() {
                active[idx[k]] = false;
            }
        }
        for _ in 0..12 {
            if pending.is_empty() {
                break;
            }
            let trial = Array2::from_shape_fn((pending.len(), d), |(p, c)| {
                let k = pending[p];
                x[[idx[k], c]] + alpha[k] * step[k].as_ref().expect("pending has a step")[c]
            });
            let st = field.scores(&trial)?;
            let mut still = Vec::new();
            for (p, &k) in pending.iter().enumerate() {
                let i = idx[k];
                let new_norm = norm(st.row(p));
                let dx_len = alpha[k] * step[k].as_ref().expect("pending").iter().map(|a| a * a).sum::<f64>().sqrt();
                if new_norm.is_finite() && new_norm < norm(s.row(i)) {
                    x.row_mut(i).assign(&trial.row(p));
                    s.row_mut(i).assign(&st.row(p));
                    if new_norm <= tol || dx_len <= 1e-13 * region.diagonal() {
                        active[i] = false;
                        done[i] = new_norm <= tol;
                    }
                } else if alpha[k] < 1e-3 {
                    // No descent: converged as far as the precision allows, or stuck.
                    active[i] = false;
                    done[i] = norm(s.row(i)) <= tol;
                } else {
                    alpha[k] *= 0.5;
                    still.push(k);
                }
            }
            pending = still;
        }
        for k in pending {
            active[idx[k]] = false;
            done[idx[k]] = norm(s.row(idx[k])) <= tol;
        }
    }
    for i in 0..n {
        if active[i] {
            done[i] = norm(s.row(i)) <= tol;
        }
    }

    // De-duplicate and classify.
    let merge = 1e-3 * region.diagonal();
    let mut found: Vec<(Vec<f64>, usize, f64)> = Vec::new();
    for i in (0..n).filter(|&i| done[i]) {
        let xi: Vec<f64> = x.row(i).to_vec();
        if !region.contains(&xi, 0.0) {
            continue;
        }
        let ni = norm(s.row(i));
        match found
            .iter_mut()
            .find(|(p, _, _)| p.iter().zip(&xi).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() < merge)
        {
            Some(f) => {
                f.1 += 1;
                if ni < f.2 {
                    f.0 = xi;
                    f.2 = ni;
                }
            }
            None => found.push((xi, 1, ni)),
        }
    }
    let pts = Array2::from_shape_fn((found.len(), d), |(k, c)| found[k].0[c]);
    let jac = field.jacobians(&pts)?;
    // A zero whose Jacobian is not finite cannot be classified; it is left out rather than
    // given a type it may not have.
    let mut out: Vec<StagnationPoint> = found
        .into_iter()
        .zip(jac)
        .filter(|(_, j)| j.iter().all(|v| v.is_finite()))
        .map(|((x, starts, sn), j)| {
            let ev = eigenvalues(&j);
            let top = ev.iter().map(|e| e.0.abs()).fold(0.0, f64::max);
            let zero = top * if field.is_f64() { 1e-6 } else { 1e-3 };
            let signed: Vec<f64> = ev.iter().map(|e| e.0).filter(|v| v.abs() > zero).collect();
            let kind = if signed.iter().all(|&v| v < 0.0) {
                PointKind::Sink
            } else if signed.iter().all(|&v| v > 0.0) {
                PointKind::Source
            } else {
                PointKind::Saddle
            };
            let zero_modes = ev.len() - signed.len();
            StagnationPoint {
                x,
                kind,
                eigenvalues: ev.iter().map(|e| e.0).collect(),
                eigenvalues_imag: ev.iter().map(|e| e.1).collect(),
                zero_modes,
                score_norm: sn,
                starts,
            }
        })
        .collect();
    // Sinks first, then saddles, then sources; within a kind by the first coordinate.
    let rank = |k: PointKind| match k {
        PointKind::Sink => 0,
        PointKind::Saddle => 1,
        PointKind::Source => 2,
    };
    out.sort_by(|a, b| rank(a.kind).cmp(&rank(b.kind)).then(a.x[0].total_cmp(&b.x[0])));
    Ok(out)
}

/// ∇·s at the rows of `pts`.
pub fn divergence(field: &Field, pts: &Array2<f64>) -> Result<Vec<f64>> {
    Ok(field.jacobians(pts)?.iter().map(|j| j.trace()).collect())
}

/// Stiffness over the rows of `pts` (typical samples of the density), from the score's
/// Jacobians there (`Field::jacobians(pts)`; callers usually need them for more than this).
pub fn stiffness(pts: &Array2<f64>, jac: &[DMatrix<f64>]) -> Result<Stiffness> {
    if pts.nrows() == 0 || jac.len() != pts.nrows() {
        return Err(Error::msg("stiffness needs at least one point and one Jacobian per point"));
    }
    let mut radii: Vec<(f64, usize)> = jac
        .iter()
        .enumerate()
        .map(|(i, j)| (eigenvalues(j).iter().map(|e| e.0.hypot(e.1)).fold(0.0, f64::max), i))
        .filter(|(r, _)| r.is_finite())
        .collect();
    if radii.is_empty() {
        return Err(Error::msg("the score's Jacobian is not finite at any of the points"));
    }
    radii.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lambda_max, at) = radii[radii.len() - 1];
    if lambda_max <= 0.0 {
        return Err(Error::msg(
            "the score's Jacobian is zero at every point (a flat density): no step size follows from it",
        ));
    }
    Ok(Stiffness {
        lambda_max,
        lambda_max_at: pts.row(at).to_vec(),
        lambda_median: radii[radii.len() / 2].0,
        max_stable_step: 2.0 / lambda_max,
        recommended_step: 1.0 / lambda_max,
        points: pts.nrows(),
    })
}

/// For each row of `scores`: whether ‖s‖² < 2d/τ (one step's noise outweighs its drift).
pub fn noise_dominated(scores: &Array2<f64>, step: f64) -> Vec<bool> {
    let d = scores.ncols() as f64;
    scores.outer_iter().map(|r| r.iter().map(|v| v * v).sum::<f64>() < 2.0 * d / step).collect()
}

/// ‖(J − Jᵀ)/2‖_F / ‖J‖_F for each Jacobian: 0 for a gradient field, 1 for a pure rotation.
pub fn asymmetry(jacobians: &[DMatrix<f64>]) -> Vec<f64> {
    jacobians
        .iter()
        .map(|j| {
            let n = j.norm();
            if n > 0.0 { ((j - j.transpose()) * 0.5).norm() / n } else { 0.0 }
        })
        .collect()
}

/// Typical samples of a target for stiffness estimates: exact draws where the target has them,
/// otherwise the end states of a short MALA run (256 chains, 600 steps, step adapted to
/// acceptance 0.574) from the target's default start.
pub fn typical_samples(target: &dyn Target, n: usize, seed: u64) -> Result<Array2<f64>> {
    if let Some(s) = target.sample_exact(n, &mut LaneRng::new(seed, 0x5A)) {
        return Ok(s.mapv(|v| v as f64));
    }
    let cfg = crate::sampler::RunConfig {
        particles: n.max(1),
        warmup: 400,
        steps: 200,
        step_size: target.default_step_size(),
        adapt: Some(0.574),
        seed,
        ..Default::default()
    };
    let out = crate::sampler::run(&crate::sampler::Mala::new(target), &target.default_init(), &cfg)?;
    Ok(out.samples.mapv(|v| v as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_grid_of_a_standard_gaussian_is_its_known_field() {
        // s(x) = −x: ‖s‖ = ‖x‖, ∇·s = −2 everywhere; noise wins where ‖x‖² < 2d/τ = 4 at τ = 1.
        let g = crate::target::GaussianMixture::gaussian(vec![0.0, 0.0], crate::target::Covariance::Isotropic(1.0))
            .unwrap();
        let f = Field::new(&g);
        let region = Region { lo: vec![-4.0, -4.0], hi: vec![4.0, 4.0] };
        let grid = FieldGrid::compute(&f, &region, 8, 8, true, Some(1.0)).unwrap();
        assert_eq!(grid.points.nrows(), 64);
        for k in 0..64 {
            let (x, y) = (grid.points[[k, 0]], grid.points[[k, 1]]);
            assert!((grid.log_norm[k] - (x * x + y * y).sqrt().log10()).abs() < 1e-9);
            assert!((grid.divergence.as_ref().unwrap()[k] + 2.0).abs() < 1e-6);
            assert_eq!(grid.noise_dominated.as_ref().unwrap()[k], x * x + y * y < 4.0);
        }
        let t = crate::target::builtin::build("gaussian", &[("dim".into(), 3.0)]).unwrap();
        assert_eq!(
            FieldGrid::compute(&Field::new(t.as_ref()), &region, 4, 4, false, None).unwrap_err().field(),
            Some("dim")
        );
    }
    use crate::target::builtin;
    use crate::target::{Covariance, GaussianMixture};

    /// Müller & Brown's three minima and two saddles (literature values to 6 digits).
    #[test]
    fn muller_brown_has_three_minima_and_two_saddles() {
        let t = builtin::build("muller-brown", &[]).unwrap();
        let f = Field::new(t.as_ref());
        let region = Region { lo: vec![-1.5, -0.5], hi: vec![1.2, 2.0] };
        let pts = stagnation_points(&f, &region, 400, 0, None).unwrap();
        let known = [
            (PointKind::Sink, [-0.558224, 1.441726]),
            (PointKind::Sink, [-0.050011, 0.466694]),
            (PointKind::Sink, [0.623499, 0.028038]),
            (PointKind::Saddle, [-0.822002, 0.624313]),
            (PointKind::Saddle, [0.212487, 0.292988]),
        ];
        for (kind, x) in known {
            let hit = pts.iter().find(|p| (p.x[0] - x[0]).abs() < 1e-3 && (p.x[1] - x[1]).abs() < 1e-3);
            let p = hit.unwrap_or_else(|| panic!("no stagnation point near {x:?}: {pts:?}"));
            assert_eq!(p.kind, kind, "{p:?}");
        }
        assert_eq!(pts.iter().filter(|p| p.kind == PointKind::Sink).count(), 3, "{pts:?}");
        assert_eq!(pts.iter().filter(|p| p.kind == PointKind::Saddle).count(), 2, "{pts:?}");
    }

    #[test]
    fn gaussian_divergence_is_minus_the_trace_of_the_precision() {
        let cov = ndarray::array![[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]];
        let g = GaussianMixture::gaussian(vec![1.0, -2.0, 0.5], Covariance::Full(cov.clone())).unwrap();
        let p = DMatrix::from_fn(3, 3, |i, j| cov[[i, j]]).try_inverse().unwrap();
        let f = Field::new(&g);
        let pts = Array2::from_shape_fn((5, 3), |(i, c)| (i as f64 - 2.0) * (c as f64 + 0.5));
        for dv in divergence(&f, &pts).unwrap() {
            assert!((dv + p.trace()).abs() < 1e-12 * p.trace(), "{dv} vs {}", -p.trace());
        }
        // The numerical Jacobian agrees with the closed form (checks both).
        let t = builtin::build("muller-brown", &[]).unwrap();
        let fm = Field::new(t.as_ref());
        let x = ndarray::array![[-0.3, 0.7]];
        let j = &fm.jacobians(&x).unwrap()[0];
        assert!((j - j.transpose()).norm() < 1e-6 * j.norm(), "a gradient field's Jacobian is symmetric: {j}");
        assert!(asymmetry(std::slice::from_ref(j))[0] < 1e-6);
    }

    #[test]
    fn stiffness_of_a_gaussian_is_its_largest_precision() {
        let g = GaussianMixture::gaussian(vec![0.0, 0.0], Covariance::Diagonal(vec![1.0, 1e-4])).unwrap();
        let f = Field::new(&g);
        let pts = typical_samples(&g, 100, 0).unwrap();
        let s = stiffness(&pts, &f.jacobians(&pts).unwrap()).unwrap();
        assert!((s.lambda_max - 1e4).abs() < 1e-6 * 1e4, "{s:?}");
        assert!((s.max_stable_step - 2e-4).abs() < 1e-12);
        assert!((s.recommended_step - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn a_region_without_zeros_gives_none() {
        let t = builtin::build("ncsn-toy", &[]).unwrap();
        let f = Field::new(t.as_ref());
        let region = Region { lo: vec![1.0, 1.0], hi: vec![2.0, 2.0] };
        assert!(stagnation_points(&f, &region, 100, 0, None).unwrap().is_empty());
        let all = stagnation_points(&f, &Region { lo: vec![-8.0, -8.0], hi: vec![8.0, 8.0] }, 400, 0, None).unwrap();
        let kinds: Vec<PointKind> = all.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![PointKind::Sink, PointKind::Sink, PointKind::Saddle], "{all:?}");
    }

    /// A ring of modes: every zero found is a sink with one zero mode (along the ring).
    #[test]
    fn a_continuum_of_zeros_has_zero_modes() {
        let t = builtin::build("ring", &[]).unwrap();
        let f = Field::new(t.as_ref());
        let pts = stagnation_points(&f, &Region { lo: vec![-4.0, -4.0], hi: vec![4.0, 4.0] }, 100, 0, None).unwrap();
        assert!(pts.len() > 4);
        for p in &pts {
            assert_eq!((p.kind, p.zero_modes), (PointKind::Sink, 1), "{p:?}");
            assert!(((p.x[0].powi(2) + p.x[1].powi(2)).sqrt() - 3.0).abs() < 1e-3, "{p:?}");
        }
    }

    #[test]
    fn noise_dominates_where_the_score_is_small() {
        let s = ndarray::array![[0.1, 0.0], [100.0, 0.0]];
        // 2d/τ = 40 at τ = 0.1.
        assert_eq!(noise_dominated(&s, 0.1), vec![true, false]);
    }

    #[test]
    fn region_parsing() {
        assert_eq!(Region::parse("-1,2", 2).unwrap(), Region { lo: vec![-1.0, -1.0], hi: vec![2.0, 2.0] });
        assert_eq!(Region::parse("0,1;2,3", 2).unwrap(), Region { lo: vec![0.0, 2.0], hi: vec![1.0, 3.0] });
        for bad in ["1,0", "a,1", "0,1;0,1;0,1", "0"] {
            let e = Region::parse(bad, 2).unwrap_err().to_string();
            assert!(e.contains("`region`"), "{e}");
        }
    }
}
