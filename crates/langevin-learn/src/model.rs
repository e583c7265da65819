//! A trained network as a target of the core samplers: s(x, σ) = f_θ(x, σ)/σ.
//!
//! [`LearnedScore`] implements [`langevin::target::Target`] at one noise level, and its
//! `score_at(x, σ)` (hence [`langevin::field::Score`]) evaluates the same network at any σ > 0,
//! so annealed Langevin, plain Langevin at σ_L and every later sampler run on it unchanged. Samples live in standardized coordinates (the
//! network's); callers undo the standardization at the end.
//!
//! The network is evaluated in chunks of [`CHUNK`] rows (large intermediate tensors were slower:
//! fresh memory pages cost more than the arithmetic), and the target asks the driver for one
//! large block per step (step-major), so each step is a few large batched forward passes.

use crate::checkpoint::TrainedModel;
use langevin::block::Block;
use langevin::sampler::Init;
use langevin::target::{Scales, Target};
use langevin::{Error, Result};
use std::sync::Arc;

/// Rows per forward pass.
pub const CHUNK: usize = 8192;

/// The learned score at a fixed noise level σ.
#[derive(Clone)]
pub struct LearnedScore {
    model: Arc<TrainedModel>,
    sigma: f64,
    class: Option<usize>,
    guidance: f64,
}

impl LearnedScore {
    /// The model's score at σ.
    pub fn new(model: Arc<TrainedModel>, sigma: f64) -> Self {
        LearnedScore { model, sigma, class: None, guidance: 0.0 }
    }

    /// The model's score at its smallest trained level σ_L.
    pub fn at_smallest(model: Arc<TrainedModel>) -> Self {
        let s = model.config.ladder.sigma_min();
        LearnedScore::new(model, s)
    }

    /// The score of a class-conditional model for class index `class`, with classifier-free
    /// guidance of weight `w` (Ho & Salimans 2022): s = (1 + w)·s(x, σ, c) − w·s(x, σ, ∅), so
    /// w = 0 is the conditional model alone and each evaluation with w > 0 runs the network
    /// twice. `class` None: the model's "no label" score (w must then be 0).
    pub fn with_class(mut self, class: Option<usize>, w: f64) -> Result<Self> {
        let k = self.model.config.net.classes;
        if class.is_some() && k == 0 {
            return Err(Error::invalid(
                "class",
                "this model is unconditional (trained without labels): drop the class, or train with labels",
            ));
        }
        if let Some(c) = class
            && c >= k
        {
            return Err(Error::invalid("class", format!("class index {c} of a model with {k} classes")));
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::invalid(
                "guidance",
                format!("guidance weight {w} must be finite and ≥ 0 (0: the conditional model alone)"),
            ));
        }
        if w > 0.0 && class.is_none() {
            return Err(Error::invalid("guidance", "guidance needs a class to guide towards"));
        }
        self.class = class;
        self.guidance = w;
        Ok(self)
    }

    /// Network evaluations per score evaluation (2 with guidance).
    pub fn passes_per_eval(&self) -> usize {
        if self.guidance > 0.0 { 2 } else { 1 }
    }

    /// The noise level.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Scores at this model's σ of the rows of an (n × d) row-major buffer, into `out`.
    pub fn score_rows(&self, rows: &[f32], out: &mut [f32]) -> Result<()> {
        self.score_rows_at(rows, self.sigma, out)
    }

    /// Scores at noise level `sigma` of the rows of an (n × d) row-major buffer, into `out`.
    pub fn score_rows_at(&self, rows: &[f32], sigma: f64, out: &mut [f32]) -> Result<()> {
        let d = self.model.config.dim;
        let n = rows.len() / d;
        let objective = self.model.config.train.objective;
        let p = objective.precond(sigma);
        // s = (D − x)/σ² with D = c_skip x + c_out F(c_in x, c_noise); for NCSN and VE
        // (c_skip = c_in = 1, c_out = σ) that is F/σ, computed as such.
        let plain = p.c_skip == 1.0 && p.c_in == 1.0 && p.c_out == sigma;
        let inv = (1.0 / sigma) as f32;
        let (a, b) = (((p.c_skip - 1.0) / (sigma * sigma)) as f32, (p.c_out / (sigma * sigma)) as f32);
        let conditional = self.model.net.config().classes > 0;
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            let chunk = &rows[start * d..end * d];
            let scaled: Vec<f32>;
            let x = if p.c_in == 1.0 {
                chunk
            } else {
                scaled = chunk.iter().map(|v| (*v as f64 * p.c_in) as f32).collect();
                &scaled
            };
            let noise = vec![p.c_noise as f32; end - start];
            let run = |class: Option<usize>| -> Result<Vec<f32>> {
                let labels = conditional.then(|| vec![class; end - start]);
                self.model.forward_rows(x, &noise, labels.as_deref())
            };
            let mut f = run(self.class)?;
            if self.guidance > 0.0 {
                // F = (1 + w) F(x, c) − w F(x, ∅): the score is affine in F, so this is the
                // guided score.
                let w = self.guidance as f32;
                for (fc, fu) in f.iter_mut().zip(run(None)?) {
                    *fc = (1.0 + w) * *fc - w * fu;
                }
            }
            if plain {
                for (o, v) in out[start * d..end * d].iter_mut().zip(&f) {
                    *o = v * inv;
                }
            } else {
                for ((o, v), xv) in out[start * d..end * d].iter_mut().zip(&f).zip(chunk) {
                    *o = a * xv + b * v;
                }
            }
        }
        Ok(())
    }
}

impl Target for LearnedScore {
    fn dim(&self) -> usize {
        self.model.config.dim
    }
    fn name(&self) -> String {
        format!("learned score ({}, step {}) at σ = {:.4}", self.model.dir.display(), self.model.step, self.sigma)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        if log_density.is_some() {
            return Err(Error::invalid(
                "sampler",
                "a learned score has no log-density, which MALA's accept/reject step needs; use annealed Langevin or ULA",
            ));
        }
        self.score_at(x, self.sigma, score)
    }
    fn has_log_density(&self) -> bool {
        false
    }
    /// Any σ > 0: the network is conditioned on log σ (it was trained on the ladder's range,
    /// see `scales`).
    fn noise_range(&self) -> (f64, f64) {
        (f64::MIN_POSITIVE, f64::INFINITY)
    }
    fn score_at(&self, x: &Block, sigma: f64, score: &mut Block) -> Result<()> {
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(langevin::field::sigma_error(&self.name(), self.noise_range(), sigma));
        }
        let (d, n) = (x.dim(), x.len());
        let mut rows = Vec::with_capacity(n * d);
        x.append_rows(&mut rows);
        let mut out = vec![0.0f32; n * d];
        self.score_rows_at(&rows, sigma, &mut out)?;
        for c in 0..d {
            let r = score.row_mut(c);
            for i in 0..n {
                r[i] = out[i * d + c];
            }
            r[n..].fill(0.0);
        }
        Ok(())
    }
    /// The training ladder's ends, as the annealing defaults would derive them from a target
    /// (σ₁ = largest, σ_L = smallest/10).
    fn scales(&self) -> Option<Scales> {
        let l = &self.model.config.ladder;
        Some(Scales { largest: l.sigma_max(), smallest: 10.0 * l.sigma_min() })
    }
    /// Standardized data live in a few standard deviations around 0.
    fn default_init(&self) -> Init {
        Init::Uniform { lo: -3.0, hi: 3.0 }
    }
    /// One large block per step: the network sees big batches.
    fn preferred_block_size(&self) -> usize {
        1 << 20
    }
}

/// A learned score seen in the data's own units: x ↦ z = (x − mean)/std, s_x(x) = s_z(z)/std.
/// Analysis and plots work in data units through it, so their positions, Jacobians and step
/// sizes are the user's.
pub struct DataUnitsScore {
    inner: LearnedScore,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl DataUnitsScore {
    /// The model's score at σ (in the model's standardized units), in data units.
    pub fn new(model: Arc<TrainedModel>, sigma: f64) -> Self {
        let n = &model.config.normalization;
        let (mean, std) = (n.mean.clone(), n.std.clone());
        DataUnitsScore { inner: LearnedScore::new(model, sigma), mean, std }
    }
    /// The noise level (standardized units).
    pub fn sigma(&self) -> f64 {
        self.inner.sigma
    }
}

impl Target for DataUnitsScore {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let mut z = x.clone();
        for c in 0..x.dim() {
            let (m, s) = (self.mean[c] as f32, self.std[c] as f32);
            z.row_mut(c).iter_mut().for_each(|v| *v = (*v - m) / s);
        }
        self.inner.eval(&z, score, log_density)?;
        for c in 0..x.dim() {
            let s = self.std[c] as f32;
            score.row_mut(c).iter_mut().for_each(|v| *v /= s);
        }
        Ok(())
    }
    fn has_log_density(&self) -> bool {
        self.inner.has_log_density()
    }
    fn scales(&self) -> Option<Scales> {
        let lo = self.std.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = self.std.iter().cloned().fold(0.0, f64::max);
        self.inner.scales().map(|s| Scales { largest: s.largest * hi, smallest: s.smallest * lo })
    }
    fn default_init(&self) -> Init {
        let lo: Vec<f64> = self.mean.iter().zip(&self.std).map(|(m, s)| m - 3.0 * s).collect();
        let hi: Vec<f64> = self.mean.iter().zip(&self.std).map(|(m, s)| m + 3.0 * s).collect();
        Init::Box { lo, hi }
    }
    fn preferred_block_size(&self) -> usize {
        self.inner.preferred_block_size()
    }
}
