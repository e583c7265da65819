//! Denoising score matching over a noise ladder (seed 000, 002):
//!
//! ℓ(θ) = Σᵢ σᵢ² E_{x, x̃ ~ N(x, σᵢ²I)} ‖s_θ(x̃, σᵢ) + (x̃ − x)/σᵢ²‖²,
//!
//! with one level drawn uniformly per example. For x̃ = x + σz and s_θ = f_θ/σ (NCSNv2) the
//! summand is ‖f_θ(x̃, σ) + z‖², which is what the code minimizes (with a factor ½).
//!
//! The optimizer is ours (Adam or AdamW on plain slices, whose moments go into checkpoints so
//! `--resume` continues exactly), with linear learning-rate warm-up, clipping of the global
//! gradient norm, and an exponential moving average of the weights (used for generation).
//! Every step draws its minibatch and noise from its own random stream (seed, step), so a
//! resumed run repeats exactly what an uninterrupted one would have done.

use crate::ladder::Ladder;
use crate::mlp::{Layers, Tape};
use crate::net::ScoreNet;
use crate::objective::Objective;
use candle_core::Tensor;
use langevin::rng::LaneRng;
use langevin::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimization steps.
    pub steps: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps of the learning rate.
    pub warmup: usize,
    /// Decoupled weight decay (AdamW); 0 is Adam.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (0: no clipping).
    pub clip: f64,
    /// Decay of the exponential moving average of the weights.
    pub ema: f64,
    /// Seed of every random draw of the run.
    pub seed: u64,
    /// What the network learns (runs of earlier versions: NCSN).
    #[serde(default)]
    pub objective: Objective,
    /// Class-conditional runs: the probability that an example's label is replaced by "no
    /// label" (classifier-free guidance needs the unconditional model too; Ho & Salimans 2022
    /// use 0.1 to 0.2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cond_drop: f64,
    /// How data and noise are paired (flow matching): independently, by minibatch optimal
    /// transport, or by fixed pairs (reflow).
    #[serde(default, skip_serializing_if = "Coupling::is_independent")]
    pub coupling: Coupling,
    /// How the learning rate falls after the warm-up (runs of earlier versions: constant).
    #[serde(default, skip_serializing_if = "LrDecay::is_constant")]
    pub decay: LrDecay,
    /// Images: mirror each training example left to right with probability ½ (data
    /// augmentation, as DDPM's CIFAR-10 training); needs a U-Net, which knows the images' shape.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip: bool,
}

/// The learning rate after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LrDecay {
    /// The peak rate to the end.
    #[default]
    Constant,
    /// Half a cosine from the peak to zero at the last step (Loshchilov & Hutter 2017).
    Cosine,
}

impl LrDecay {
    fn is_constant(&self) -> bool {
        *self == LrDecay::Constant
    }
    /// By name (`constant`, `cosine`).
    pub fn from_name(name: &str) -> Result<LrDecay> {
        match name {
            "constant" => Ok(LrDecay::Constant),
            "cosine" => Ok(LrDecay::Cosine),
            other => Err(Error::invalid(
                "lr_decay",
                format!("unknown learning-rate decay '{other}'; use constant or cosine"),
            )),
        }
    }
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LrDecay::Constant => "constant",
            LrDecay::Cosine => "cosine",
        }
    }
}

/// How a training example's data point and noise are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Coupling {
    /// Each data point with its own fresh noise (the usual objective).
    #[default]
    Independent,
    /// The batch's noise rows are assigned to its data rows by exact optimal transport for the
    /// squared distance (Tong et al. 2023's OT-CFM; Pooladian et al. 2023): the assignment
    /// problem solved by `lsap`, a translation of SciPy's `linear_sum_assignment`.
    MinibatchOt,
    /// Each data row has its own fixed noise (`train-noise.npy`): the rectified-flow reflow
    /// step (Liu et al. 2022), where the pairs come from a teacher's ODE.
    Pairs,
}

impl Coupling {
    fn is_independent(&self) -> bool {
        *self == Coupling::Independent
    }
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Coupling::Independent => "independent",
            Coupling::MinibatchOt => "minibatch-ot",
            Coupling::Pairs => "reflow pairs",
        }
    }
}

/// Write the given rows of `src` one after another into `z` (row-major): a reflow run's fixed
/// noise in place of fresh draws.
fn copy_rows(src: &Array2<f32>, rows: impl Iterator<Item = usize>, z: &mut [f32]) {
    let d = src.ncols();
    for (k, r) in rows.enumerate() {
        z[k * d..(k + 1) * d].iter_mut().zip(src.row(r)).for_each(|(o, v)| *o = *v);
    }
}

/// Rows per optimal-transport problem: the batch is paired in groups of this many (the
/// assignment costs O(n³): 7 ms for 256 rows, 40 ms for 512 on one core), solved in parallel.
pub const OT_GROUP: usize = 256;

/// Reorder the noise rows `z` (n × d, row-major) so that row i goes with data row `x[rows[i]]`
/// in the optimal transport plan for the squared distance, within consecutive groups of
/// [`OT_GROUP`] rows (each group exact; the groups are independent, so the result does not
/// depend on the thread count).
pub fn ot_pair(x: &Array2<f32>, rows: &[usize], z: &mut [f32]) -> Result<()> {
    use rayon::prelude::*;
    let d = x.ncols();
    rows.par_chunks(OT_GROUP).zip(z.par_chunks_mut(OT_GROUP * d)).try_for_each(|(r, zc)| ot_pair_exact(x, r, zc))
}

fn ot_pair_exact(x: &Array2<f32>, rows: &[usize], z: &mut [f32]) -> Result<()> {
    let (n, d) = (rows.len(), x.ncols());
    if n < 2 {
        return Ok(());
    }
    let mut cost = vec![0.0f64; n * n];
    for (i, &r) in rows.iter().enumerate() {
        let xi = x.row(r);
        for j in 0..n {
            let zj = &z[j * d..(j + 1) * d];
            cost[i * n + j] = xi.iter().zip(zj).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        }
    }
    let (_, cols) = lsap::solve(n, n, &cost, false)
        .map_err(|e| Error::msg(format!("minibatch optimal transport failed ({e:?}); the batch has NaN or inf")))?;
    let old = z.to_vec();
    for (i, &j) in cols.iter().enumerate() {
        z[i * d..(i + 1) * d].copy_from_slice(&old[j * d..(j + 1) * d]);
    }
    Ok(())
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 10_000,
            batch: 512,
            lr: 2e-3,
            warmup: 200,
            weight_decay: 0.0,
            clip: 1.0,
            ema: 0.999,
            seed: 0,
            objective: Objective::Ncsn,
            cond_drop: 0.0,
            coupling: Coupling::Independent,
            decay: LrDecay::Constant,
            flip: false,
        }
    }
}

impl TrainConfig {
    /// The learning rate of step `t` (0-based): a linear warm-up to `lr`, then `decay`.
    pub fn lr_at(&self, t: usize) -> f64 {
        let warm = self.lr * ((t + 1) as f64 / self.warmup.max(1) as f64).min(1.0);
        match self.decay {
            LrDecay::Constant => warm,
            LrDecay::Cosine => {
                let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
                let p = (t.saturating_sub(self.warmup) as f64 / span).min(1.0);
                warm * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }

    /// Check the values, with messages that name the flag.
    pub fn validate(&self, rows: usize) -> Result<()> {
        let bad = |m: String| Err(Error::msg(m));
        if self.steps == 0 {
            return bad("`steps` must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("`batch` must be at least 1".into());
        }
        if self.batch > rows {
            return bad(format!(
                "`batch` {} is larger than the {rows} training rows; use a smaller batch or more data",
                self.batch
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("`lr` {} must be positive and finite", self.lr));
        }
        if !(0.0..1.0).contains(&self.ema) {
            return bad(format!("`ema` {} must be in [0, 1)", self.ema));
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return bad(format!("`clip` {} must be finite and non-negative (0 turns clipping off)", self.clip));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("`weight_decay` {} must be finite and non-negative", self.weight_decay));
        }
        if self.coupling != Coupling::Independent && self.objective != Objective::FlowMatching {
            return bad(format!(
                "the {} coupling pairs data and noise along flow matching's straight paths; use the flow-matching objective",
                self.coupling.name()
            ));
        }
        if !(0.0..1.0).contains(&self.cond_drop) {
            return bad(format!(
                "`cond_drop` {} must be in [0, 1): the probability of training an example without its label",
                self.cond_drop
            ));
        }
        self.objective.validate()
    }
}

/// The objective of a run when none is asked for (docs/GENERALIZATION.md).
pub const DEFAULT_OBJECTIVE: &str = "edm";

/// What a user asked of a new run; `None` takes the recipe's default for the objective. The
/// command line and the Python package both build their runs through it, so that the same
/// request gives the same run.
#[derive(Clone, Debug, Default)]
pub struct Recipe {
    /// The objective (default [`DEFAULT_OBJECTIVE`]).
    pub objective: Option<Objective>,
    /// Training steps (10,000 for NCSN, 40,000 for the continuous objectives).
    pub steps: Option<usize>,
    /// Batch (512 for NCSN, else 1,024 or the training rows if fewer).
    pub batch: Option<usize>,
    /// Learning rate (2e-3).
    pub lr: Option<f64>,
    /// Warm-up steps (200, or a tenth of the steps if fewer).
    pub warmup: Option<usize>,
    /// AdamW's decoupled weight decay (0).
    pub weight_decay: Option<f64>,
    /// Gradient-norm clipping (1).
    pub clip: Option<f64>,
    /// EMA decay (0.999).
    pub ema: Option<f64>,
    /// Seed (0).
    pub seed: Option<u64>,
    /// Learning-rate decay (constant for NCSN, cosine otherwise).
    pub decay: Option<LrDecay>,
    /// Label dropout of a conditional run (0.1).
    pub cond_drop: Option<f64>,
    /// Minibatch optimal-transport pairing (flow matching only).
    pub minibatch_ot: bool,
    /// Hidden width (128; 256 above 16 dimensions except for NCSN).
    pub width: Option<usize>,
    /// Hidden layers (3).
    pub depth: Option<usize>,
    /// Fourier frequencies (16).
    pub fourier: Option<usize>,
    /// A U-Net for images instead of the MLP; its runs default to batches of 64 at a learning
    /// rate of 1e-3 (the MLP's defaults are for tables).
    pub unet: Option<crate::unet::UnetConfig>,
    /// Mirror training images left to right at random (U-Net runs).
    pub flip: bool,
}

impl Recipe {
    /// The network and training configs of the request, with the defaults of the objective's
    /// recipe; `rows`: the training rows (a default batch is no larger), `dim`: the data's.
    pub fn configs(&self, conditional: bool, rows: usize, dim: usize) -> Result<(crate::net::NetConfig, TrainConfig)> {
        let d = crate::net::NetConfig::default();
        let objective = match self.objective {
            Some(o) => o,
            None => Objective::from_name(DEFAULT_OBJECTIVE, None, None)?,
        };
        // Above 16 dimensions the continuous objectives default to width 256: at 128 a 32-d
        // mixture's smallest component came out 6% too wide, at 256 within 5%
        // (docs/GENERALIZATION.md).
        let wide = objective != Objective::Ncsn && dim > 16;
        let net = crate::net::NetConfig {
            width: self.width.unwrap_or(if wide { 256 } else { d.width }),
            depth: self.depth.unwrap_or(d.depth),
            fourier: self.fourier.unwrap_or(d.fourier),
            unet: self.unet.clone(),
            ..d
        };
        let unet = self.unet.is_some();
        if unet && (self.width.is_some() || self.depth.is_some()) {
            return Err(Error::invalid(
                "width",
                "`width` and `depth` shape the MLP; a U-Net's size comes from its preset",
            ));
        }
        if self.minibatch_ot && objective != Objective::FlowMatching {
            return Err(Error::invalid(
                "minibatch_ot",
                "minibatch optimal transport applies to the flow-matching objective",
            ));
        }
        // NCSN keeps the recipe of earlier versions; the continuous-time objectives default to
        // the one the generalization study chose: more and larger steps with the learning rate
        // decayed to zero, which brings component widths within 5%.
        let ncsn = objective == Objective::Ncsn;
        let steps = self.steps.unwrap_or(if ncsn { 10_000 } else { 40_000 });
        let decay = self.decay.unwrap_or(if ncsn { LrDecay::Constant } else { LrDecay::Cosine });
        let train = TrainConfig {
            steps,
            batch: self.batch.unwrap_or(if unet {
                64.min(rows.max(1))
            } else if ncsn {
                512
            } else {
                1024.min(rows.max(1))
            }),
            lr: self.lr.unwrap_or(if unet { 1e-3 } else { 2e-3 }),
            warmup: self.warmup.unwrap_or(200.min(steps / 10)),
            weight_decay: self.weight_decay.unwrap_or(0.0),
            clip: self.clip.unwrap_or(1.0),
            ema: self.ema.unwrap_or(0.999),
            seed: self.seed.unwrap_or(0),
            objective,
            cond_drop: if conditional { self.cond_drop.unwrap_or(0.1) } else { 0.0 },
            coupling: if self.minibatch_ot { Coupling::MinibatchOt } else { Coupling::Independent },
            decay,
            flip: self.flip,
        };
        if self.flip && !unet {
            return Err(Error::invalid(
                "flip",
                "`flip` mirrors images, which only the U-Net sees as images; add `model` unet",
            ));
        }
        Ok((net, train))
    }
}

/// Adam / AdamW moments (β₁ = 0.9, β₂ = 0.999, ε = 1e-8).
#[derive(Clone, Debug)]
pub struct Adam {
    /// First moments, one vector per parameter.
    pub m: Vec<Vec<f32>>,
    /// Second moments.
    pub v: Vec<Vec<f32>>,
    /// Updates done.
    pub t: u64,
}

impl Adam {
    fn new(sizes: &[usize]) -> Self {
        Adam {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            t: 0,
        }
    }

    /// w ← w − lr (m̂/(√v̂ + ε) + wd w), then ema ← decay·ema + (1 − decay)·w, in f32 (as
    /// PyTorch's Adam), one vectorized pass per parameter.
    fn update(&mut self, w: &mut [Vec<f32>], g: &[Vec<f32>], ema: &mut [Vec<f32>], lr: f64, wd: f64, decay: f64) {
        self.t += 1;
        let c1 = (1.0 / (1.0 - 0.9f64.powi(self.t as i32))) as f32;
        let c2 = (1.0 / (1.0 - 0.999f64.powi(self.t as i32))) as f32;
        for (((wp, gp), (mp, vp)), ep) in
            w.iter_mut().zip(g).zip(self.m.iter_mut().zip(self.v.iter_mut())).zip(ema.iter_mut())
        {
            adam_kernel(wp, gp, mp, vp, ep, [lr as f32, wd as f32, c1, c2, decay as f32]);
        }
    }
}

/// The fused Adam + EMA update of one parameter; `k` = [lr, weight decay, 1/(1−β₁ᵗ), 1/(1−β₂ᵗ), EMA decay].
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn adam_kernel(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], ema: &mut [f32], k: [f32; 5]) {
    let [lr, wd, c1, c2, decay] = k;
    for i in 0..w.len() {
        let gi = g[i];
        let mi = 0.9 * m[i] + 0.1 * gi;
        let vi = 0.999 * v[i] + 0.001 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let wi = w[i] - lr * ((mi * c1) / ((vi * c2).sqrt() + 1e-8) + wd * w[i]);
        w[i] = wi;
        ema[i] = decay * ema[i] + (1.0 - decay) * wi;
    }
}

/// What one step reports.
#[derive(Clone, Debug)]
pub struct StepStats {
    /// Step number (1-based, after the step).
    pub step: usize,
    /// Mean loss ½ w ‖F − F*‖² over the batch (NCSN: ½‖f + z‖²).
    pub loss: f64,
    /// Per-level sums and counts of the per-example losses in this batch.
    pub level_loss: Vec<(f64, usize)>,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// A batch's network inputs, noise inputs, targets and loss weights (row-major).
struct Batch {
    input: Vec<f32>,
    noise: Vec<f32>,
    target: Vec<f32>,
    weight: Vec<f32>,
}

/// Which parameters a loss is evaluated at.
#[derive(Clone, Copy)]
enum Params {
    Weights,
    Ema,
}

/// A training run in memory: network, optimizer, EMA, data.
pub struct Trainer {
    /// The network: its shape and Fourier frequencies; on devices other than the CPU its
    /// variables also hold the current weights (the CPU step reads `weights` directly).
    pub net: ScoreNet,
    /// The noise ladder.
    pub ladder: Ladder,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Standardized training rows.
    pub data: Array2<f32>,
    /// Standardized held-out rows.
    pub heldout: Array2<f32>,
    /// Current weights (copied into the network's variables after each step on other devices).
    pub weights: Vec<Vec<f32>>,
    /// Exponential moving average of the weights.
    pub ema: Vec<Vec<f32>>,
    /// Optimizer state.
    pub adam: Adam,
    /// Steps done.
    pub step: usize,
    /// Class indices of the training and held-out rows (class-conditional networks).
    pub labels: Option<(Vec<u32>, Vec<u32>)>,
    /// The fixed noise of each training and held-out row (standardized units; reflow).
    pub noise: Option<(Array2<f32>, Array2<f32>)>,
    /// Activations of the CPU step's forward pass, reused from step to step.
    tape: Tape,
    /// The objective's draws of σ (its tables built at the first step).
    sigmas: Option<crate::objective::SigmaSampler>,
}

fn model_err(e: candle_core::Error) -> Error {
    Error::Model(e.to_string())
}

/// Stream offset of the per-step random streams (held-out noise uses its own).
const STEP_STREAM: u64 = 1 << 32;
const HELDOUT_STREAM: u64 = 0x4845_4C44;

impl Trainer {
    /// A fresh run.
    pub fn new(
        net: ScoreNet,
        ladder: Ladder,
        config: TrainConfig,
        data: Array2<f32>,
        heldout: Array2<f32>,
    ) -> Result<Self> {
        config.validate(data.nrows())?;
        if data.ncols() != net.dim() || heldout.ncols() != net.dim() {
            return Err(Error::msg(format!(
                "data have {} columns but the network expects {}",
                data.ncols(),
                net.dim()
            )));
        }
        let weights: Vec<Vec<f32>> = net
            .params()
            .iter()
            .map(|(_, v)| v.as_tensor().flatten_all().and_then(|t| t.to_vec1()).map_err(model_err))
            .collect::<Result<_>>()?;
        let sizes: Vec<usize> = weights.iter().map(|w| w.len()).collect();
        Ok(Trainer {
            ema: weights.clone(),
            adam: Adam::new(&sizes),
            weights,
            net,
            ladder,
            config,
            data,
            heldout,
            step: 0,
            labels: None,
            noise: None,
            tape: Tape::default(),
            sigmas: None,
        })
    }

    /// Give a reflow run its rows' fixed noise (training, held-out; standardized units).
    pub fn set_noise(&mut self, train: Array2<f32>, heldout: Array2<f32>) -> Result<()> {
        if train.dim() != self.data.dim() || heldout.dim() != self.heldout.dim() {
            return Err(Error::msg(format!(
                "noise of shapes {:?} and {:?} for data of shapes {:?} and {:?}",
                train.dim(),
                heldout.dim(),
                self.data.dim(),
                self.heldout.dim()
            )));
        }
        self.noise = Some((train, heldout));
        Ok(())
    }

    /// Give a class-conditional network its rows' class indices (training, held-out).
    pub fn set_labels(&mut self, train: Vec<u32>, heldout: Vec<u32>) -> Result<()> {
        let k = self.net.config().classes;
        if k == 0 {
            return Err(Error::msg("labels given to an unconditional network (its `classes` is 0)"));
        }
        if train.len() != self.data.nrows() || heldout.len() != self.heldout.nrows() {
            return Err(Error::msg(format!(
                "{} + {} labels for {} + {} rows",
                train.len(),
                heldout.len(),
                self.data.nrows(),
                self.heldout.nrows()
            )));
        }
        if let Some(c) = train.iter().chain(&heldout).find(|&&c| c as usize >= k) {
            return Err(Error::msg(format!("label {c} of a network with {k} classes")));
        }
        self.labels = Some((train, heldout));
        Ok(())
    }

    fn set_vars(&self, values: &[Vec<f32>]) -> Result<()> {
        for ((_, var), w) in self.net.params().iter().zip(values) {
            let shape = var.as_tensor().shape().clone();
            var.set(&Tensor::from_slice(w, shape, self.net.device()).map_err(model_err)?).map_err(model_err)?;
        }
        Ok(())
    }

    /// Put saved weights, EMA and optimizer state in place (resume).
    pub fn restore(&mut self, weights: Vec<Vec<f32>>, ema: Vec<Vec<f32>>, adam: Adam, step: usize) -> Result<()> {
        let sizes: Vec<usize> = self.weights.iter().map(|w| w.len()).collect();
        for (name, parts) in [("weights", &weights), ("ema", &ema), ("adam.m", &adam.m), ("adam.v", &adam.v)] {
            if parts.len() != sizes.len() || parts.iter().zip(&sizes).any(|(p, &n)| p.len() != n) {
                return Err(Error::msg(format!("checkpoint '{name}' does not match the network's shapes")));
            }
        }
        self.set_vars(&weights)?;
        self.weights = weights;
        self.ema = ema;
        self.adam = adam;
        self.step = step;
        Ok(())
    }

    /// A batch of `src` rows at noise levels `sigmas`: the network's inputs c_in x̂ (n × d), its
    /// noise inputs c_noise, the targets F* and the weights (see [`crate::objective`]).
    fn batch(&self, src: &Array2<f32>, rows: &[usize], sigmas: &[(f64, f64)], z: &[f32]) -> Batch {
        self.batch_flipped(src, rows, sigmas, z, &[])
    }

    /// [`Trainer::batch`] with the examples whose `flips` entry is true mirrored left to right
    /// (images of the U-Net's width; an empty `flips` mirrors none).
    fn batch_flipped(
        &self,
        src: &Array2<f32>,
        rows: &[usize],
        sigmas: &[(f64, f64)],
        z: &[f32],
        flips: &[bool],
    ) -> Batch {
        use rayon::prelude::*;
        let d = src.ncols();
        let o = &self.config.objective;
        let n = rows.len();
        let w = self.net.config().unet.as_ref().map_or(1, |u| u.width);
        let (mut input, mut target) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
        // Rows in parallel (a pure function of each row: the same values on any thread count).
        input.par_chunks_mut(d).zip(target.par_chunks_mut(d)).enumerate().for_each(|(k, (i, t))| {
            let flip = flips.get(k).copied().unwrap_or(false);
            for c in 0..d {
                // Column x of a row of pixels reads column w − 1 − x of the image when mirrored.
                let from = if flip { c - c % w + (w - 1 - c % w) } else { c };
                (i[c], t[c]) = o.example(src[[rows[k], from]], z[k * d + c], sigmas[k].0);
            }
        });
        let noise = sigmas.iter().map(|&(sigma, _)| o.c_noise(sigma) as f32).collect();
        let weight = sigmas.iter().map(|&(_, w)| w as f32).collect();
        Batch { input, noise, target, weight }
    }

    /// The parameters `params` (weights or EMA) as the CPU network's layers.
    fn layers<'a>(&self, sizes: &'a [usize], params: &'a [Vec<f32>], freqs: &'a [f32]) -> Layers<'a> {
        Layers { dim: self.net.dim(), classes: self.net.config().classes, sizes, params, freqs }
    }

    /// Per-example losses ½ w ‖F − F*‖² of a batch under the parameters `params`, by the
    /// hand-written CPU network; with `grads`, also the gradient of their mean.
    #[allow(clippy::too_many_arguments)]
    fn cpu_losses(
        &self,
        tape: &mut Tape,
        params: Params,
        src: &Array2<f32>,
        rows: &[usize],
        sigmas: &[(f64, f64)],
        z: &[f32],
        cond: Option<&[Option<usize>]>,
        grads: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Vec<f32>> {
        let b = self.batch(src, rows, sigmas, z);
        let sizes = self.net.sizes();
        let freqs = self.net.freqs_vec().map_err(model_err)?;
        let values = match params {
            Params::Weights => &self.weights,
            Params::Ema => &self.ema,
        };
        let layers = self.layers(&sizes, values, &freqs);
        layers.input(&b.input, &b.noise, cond, tape.input_mut());
        layers.forward(tape);
        let d = self.net.dim();
        let n = rows.len();
        let mut losses = Vec::with_capacity(n);
        let mut grad_out = vec![0.0f32; if grads.is_some() { n * d } else { 0 }];
        for k in 0..n {
            let (out, target) = (&tape.out[k * d..(k + 1) * d], &b.target[k * d..(k + 1) * d]);
            let sq: f32 = out.iter().zip(target).map(|(o, t)| (o - t) * (o - t)).sum();
            losses.push(0.5 * b.weight[k] * sq);
            if grads.is_some() {
                // d(mean of ½ w ‖F − F*‖²)/dF = w (F − F*)/n.
                let f = b.weight[k] / n as f32;
                for c in 0..d {
                    grad_out[k * d + c] = f * (out[c] - target[c]);
                }
            }
        }
        if let Some(g) = grads {
            g.resize_with(values.len(), Vec::new);
            layers.backward(tape, &grad_out, g);
        }
        Ok(losses)
    }

    /// Per-example losses ½ w ‖F − F*‖² (a graph for backprop) for the given rows of `src`,
    /// with their labels `cond` (conditional networks; `None` in an entry: "no label").
    fn losses(
        &self,
        src: &Array2<f32>,
        rows: &[usize],
        sigmas: &[(f64, f64)],
        z: &[f32],
        cond: Option<&[Option<usize>]>,
        flips: &[bool],
    ) -> Result<Tensor> {
        let b = self.batch_flipped(src, rows, sigmas, z, flips);
        let (n, d, dev, m) = (rows.len(), src.ncols(), self.net.device(), model_err);
        let input = Tensor::from_vec(b.input, (n, d), dev).map_err(m)?;
        let noise = Tensor::from_vec(b.noise, (n, 1), dev).map_err(m)?;
        let target = Tensor::from_vec(b.target, (n, d), dev).map_err(m)?;
        let weight = Tensor::from_vec(b.weight, n, dev).map_err(m)?;
        let onehot = match cond {
            Some(c) if self.net.config().classes > 0 => Some(self.net.one_hot(c).map_err(model_err)?),
            _ => None,
        };
        let out = self.net.forward_cond(&input, &noise, onehot.as_ref()).map_err(model_err)?;
        let sq = (out - target).map_err(model_err)?.sqr().map_err(model_err)?.sum(1).map_err(model_err)?;
        ((sq * weight).map_err(model_err)? * 0.5).map_err(model_err)
    }

    /// The ladder level nearest to σ in log σ (for the per-level losses of continuous objectives).
    fn level_of(&self, sigma: f64) -> usize {
        let s = &self.ladder.sigmas;
        if !sigma.is_finite() {
            return 0;
        }
        (0..s.len())
            .min_by(|&a, &b| (s[a].ln() - sigma.ln()).abs().total_cmp(&(s[b].ln() - sigma.ln()).abs()))
            .unwrap_or(0)
    }

    /// Whether the step runs on the hand-written CPU network ([`crate::mlp`]) rather than
    /// candle's graph (other devices).
    fn cpu(&self) -> bool {
        self.net.device().is_cpu() && self.net.is_mlp()
    }

    /// Per-example losses of a training batch and the gradient of their mean (in parameter
    /// order) at the current weights.
    fn losses_and_grads(
        &mut self,
        src: &Array2<f32>,
        rows: &[usize],
        sigmas: &[(f64, f64)],
        z: &[f32],
        cond: Option<&[Option<usize>]>,
        flips: &[bool],
    ) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        if self.cpu() {
            let (mut g, mut tape) = (Vec::new(), std::mem::take(&mut self.tape));
            let losses = self.cpu_losses(&mut tape, Params::Weights, src, rows, sigmas, z, cond, Some(&mut g));
            self.tape = tape;
            return Ok((losses?, g));
        }
        let per_example = self.losses(src, rows, sigmas, z, cond, flips)?;
        let loss = per_example.mean_all().map_err(model_err)?;
        let grads = loss.backward().map_err(model_err)?;
        let mut g: Vec<Vec<f32>> = Vec::with_capacity(self.weights.len());
        for (_, var) in self.net.params() {
            let gt =
                grads.get(var.as_tensor()).ok_or_else(|| Error::Model("a parameter received no gradient".into()))?;
            g.push(gt.flatten_all().and_then(|t| t.to_vec1()).map_err(model_err)?);
        }
        Ok((per_example.to_vec1().map_err(model_err)?, g))
    }

    /// One optimization step.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let t = self.step;
        let (b, d, l) = (self.config.batch, self.data.ncols(), self.ladder.levels());
        let mut rng = LaneRng::new(self.config.seed, STEP_STREAM + t as u64);
        let mut idx = vec![0u64; b];
        rng.fill_below(self.data.nrows() as u64, &mut idx);
        let mut lv = vec![0u64; b];
        rng.fill_below(l as u64, &mut lv);
        let mut z = vec![0.0f32; b * d];
        rng.fill_normal(&mut z);
        let rows: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        match (self.config.coupling, &self.noise) {
            (Coupling::MinibatchOt, _) => ot_pair(&self.data, &rows, &mut z)?,
            (Coupling::Pairs, Some((tr, _))) => copy_rows(tr, rows.iter().copied(), &mut z),
            (Coupling::Pairs, None) => return Err(Error::msg("a reflow run without its noise pairs")),
            (Coupling::Independent, _) => {}
        }
        // NCSN draws a ladder level per example (as in earlier versions, so their runs resume
        // exactly); the continuous objectives draw σ from their own distributions.
        let (levels, sigmas): (Vec<usize>, Vec<(f64, f64)>) = match self.config.objective {
            Objective::Ncsn => {
                let lv: Vec<usize> = lv.iter().map(|&i| i as usize).collect();
                let sg = lv.iter().map(|&i| (self.ladder.sigmas[i], 1.0)).collect();
                (lv, sg)
            }
            o => {
                if self.sigmas.is_none() {
                    self.sigmas = Some(o.sampler(&self.ladder.sigmas));
                }
                let sampler = self.sigmas.as_ref().expect("built above");
                let sg: Vec<(f64, f64)> = (0..b).map(|_| sampler.draw(&mut rng)).collect();
                (sg.iter().map(|&(s, _)| self.level_of(s)).collect(), sg)
            }
        };

        // Conditional networks: each example's label, replaced by "no label" with probability
        // `cond_drop` (drawn after everything else, so unconditional runs draw as before).
        let cond: Option<Vec<Option<usize>>> = self.labels.as_ref().map(|(tr, _)| {
            rows.iter().map(|&r| (rng.uniform_f64() >= self.config.cond_drop).then_some(tr[r] as usize)).collect()
        });
        // Mirrored images (drawn last, so runs without flips draw as before).
        let flips: Vec<bool> =
            if self.config.flip { (0..b).map(|_| rng.uniform_f64() < 0.5).collect() } else { Vec::new() };
        let data = std::mem::take(&mut self.data);
        let result = self.losses_and_grads(&data, &rows, &sigmas, &z, cond.as_deref(), &flips);
        self.data = data;
        let (losses, mut g) = result?;
        let grad_norm = {
            use rayon::prelude::*;
            let parts: Vec<f64> = g.par_iter().map(|v| crate::ops::sum_squares(v)).collect();
            parts.iter().sum::<f64>().sqrt()
        };
        if !grad_norm.is_finite() {
            return Err(Error::Model(format!(
                "the gradient became non-finite at step {}; lower `lr` (now {})",
                t + 1,
                self.config.lr
            )));
        }
        if self.config.clip > 0.0 && grad_norm > self.config.clip {
            let f = (self.config.clip / grad_norm) as f32;
            g.iter_mut().flatten().for_each(|v| *v *= f);
        }
        let lr = self.config.lr_at(t);
        self.adam.update(&mut self.weights, &g, &mut self.ema, lr, self.config.weight_decay, self.config.ema);
        if !self.cpu() {
            self.set_vars(&self.weights)?;
        }
        self.step += 1;

        let mut level_loss = vec![(0.0, 0usize); l];
        for (&lo, &lvl) in losses.iter().zip(&levels) {
            level_loss[lvl].0 += lo as f64;
            level_loss[lvl].1 += 1;
        }
        let loss = losses.iter().map(|&v| v as f64).sum::<f64>() / losses.len() as f64;
        Ok(StepStats { step: self.step, loss, level_loss, grad_norm, lr })
    }

    /// Held-out loss with the EMA weights, per level and overall, on at most 2,000 held-out
    /// rows with fixed noise (so values are comparable across steps and runs).
    pub fn heldout_loss(&self) -> Result<(f64, Vec<f64>)> {
        let n = self.heldout.nrows().min(2000);
        let d = self.heldout.ncols();
        let mut z = vec![0.0f32; n * d];
        LaneRng::new(self.config.seed, HELDOUT_STREAM).fill_normal(&mut z);
        match (self.config.coupling, &self.noise) {
            // The training objective's pairing, batch by batch.
            (Coupling::MinibatchOt, _) => {
                let rows: Vec<usize> = (0..n).collect();
                ot_pair(&self.heldout, &rows, &mut z)?;
            }
            (Coupling::Pairs, Some((_, ho))) => copy_rows(ho, 0..n, &mut z),
            _ => {}
        }
        let rows: Vec<usize> = (0..n).collect();
        let cond: Option<Vec<Option<usize>>> =
            self.labels.as_ref().map(|(_, ho)| ho[..n].iter().map(|&c| Some(c as usize)).collect());
        let mut per_level = Vec::with_capacity(self.ladder.levels());
        if !self.net.is_mlp() {
            // A U-Net costs a thousand times the MLP per row: each of at most 512 held-out rows
            // (or one per level, for ladders longer than that) is evaluated at one level (row i
            // at level i mod L), in batches, so an evaluation costs 512 forward passes instead
            // of 2,000 per level. Per-level values are then means over the rows at that level
            // (NaN only where the held-out rows are fewer than the levels).
            let l = self.ladder.levels();
            let n = n.min(512.max(l));
            let at: Vec<(f64, f64)> = (0..n).map(|i| (self.ladder.sigmas[i % l], 1.0)).collect();
            let (mut sums, mut counts) = (vec![0.0f64; l], vec![0usize; l]);
            self.set_vars(&self.ema)?;
            let result = (|| {
                for start in (0..n).step_by(64) {
                    let end = (start + 64).min(n);
                    let rows: Vec<usize> = (start..end).collect();
                    let c = cond.as_ref().map(|c| c[start..end].to_vec());
                    let zc = &z[start * d..end * d];
                    let l_rows = self.losses(&self.heldout, &rows, &at[start..end], zc, c.as_deref(), &[])?;
                    for (i, v) in l_rows.to_vec1::<f32>().map_err(model_err)?.into_iter().enumerate() {
                        sums[(start + i) % l] += v as f64;
                        counts[(start + i) % l] += 1;
                    }
                }
                Ok::<(), Error>(())
            })();
            self.set_vars(&self.weights)?;
            result?;
            let mean = sums.iter().sum::<f64>() / n as f64;
            let per_level =
                sums.iter().zip(&counts).map(|(s, &c)| if c > 0 { s / c as f64 } else { f64::NAN }).collect();
            return Ok((mean, per_level));
        }
        if self.cpu() {
            let mut tape = Tape::default();
            for lvl in 0..self.ladder.levels() {
                let at = vec![(self.ladder.sigmas[lvl], 1.0); n];
                let l =
                    self.cpu_losses(&mut tape, Params::Ema, &self.heldout, &rows, &at, &z, cond.as_deref(), None)?;
                per_level.push(l.iter().map(|&v| v as f64).sum::<f64>() / n as f64);
            }
        } else {
            self.set_vars(&self.ema)?;
            let result = (|| {
                for lvl in 0..self.ladder.levels() {
                    let at = vec![(self.ladder.sigmas[lvl], 1.0); n];
                    let l = self
                        .losses(&self.heldout, &rows, &at, &z, cond.as_deref(), &[])?
                        .mean_all()
                        .map_err(model_err)?;
                    per_level.push(l.to_scalar::<f32>().map_err(model_err)? as f64);
                }
                Ok::<(), Error>(())
            })();
            self.set_vars(&self.weights)?;
            result?;
        }
        let mean = per_level.iter().sum::<f64>() / per_level.len() as f64;
        Ok((mean, per_level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `tiny` U-Net on 4 × 4 images of `channels` channels, on the CPU.
    fn tiny_unet(channels: usize) -> ScoreNet {
        let unet = crate::unet::UnetConfig::preset("tiny", channels, 4, 4).unwrap();
        let net = crate::net::NetConfig { unet: Some(unet), ..Default::default() };
        ScoreNet::new(16 * channels, net, 0, &candle_core::Device::Cpu).unwrap()
    }

    /// A flipped example is its image mirrored left to right, channel by channel and row by
    /// row; an unflipped one is unchanged.
    #[test]
    fn flips_mirror_each_image_row() {
        let net = tiny_unet(2);
        let x = Array2::from_shape_fn((3, 32), |(i, c)| (100 * i + c) as f32);
        let ladder = Ladder::geometric(1.0, 0.1, 3).unwrap();
        let config = TrainConfig { batch: 2, flip: true, objective: Objective::Ncsn, ..Default::default() };
        let t = Trainer::new(net, ladder, config, x.clone(), x.clone()).unwrap();
        let z = vec![0.0f32; 2 * 32];
        let b = t.batch_flipped(&x, &[1, 2], &[(0.5, 1.0), (0.5, 1.0)], &z, &[true, false]);
        // NCSN: the input is x + σz = x here.
        for c in 0..32 {
            let (ch, y, col) = (c / 16, (c % 16) / 4, c % 4);
            assert_eq!(b.input[c], x[[1, ch * 16 + y * 4 + (3 - col)]]);
            assert_eq!(b.input[32 + c], x[[2, c]]);
        }
    }

    /// A U-Net's held-out loss covers every level of a ladder longer than 512 levels when
    /// there are enough held-out rows (each row is evaluated at one level; with at most 512
    /// rows, levels 512 and up had none and came back NaN).
    #[test]
    fn heldout_loss_covers_every_level_of_a_long_ladder() {
        let net = tiny_unet(1);
        let mut r = LaneRng::new(3, 0);
        let mut v = vec![0.0f32; 700 * 16];
        r.fill_normal(&mut v);
        let x = Array2::from_shape_vec((700, 16), v).unwrap();
        let ladder = Ladder::geometric(1.0, 0.01, 600).unwrap();
        let config = TrainConfig { batch: 8, objective: Objective::Ncsn, ..Default::default() };
        let t = Trainer::new(net, ladder, config, x.clone(), x).unwrap();
        let (mean, per_level) = t.heldout_loss().unwrap();
        assert_eq!(per_level.len(), 600);
        assert!(mean.is_finite());
        assert!(per_level.iter().all(|v| v.is_finite() && *v > 0.0), "a level without a value");
    }

    /// The pairing is an optimal assignment: on small batches its cost equals the minimum over
    /// all permutations (brute force), and it is never worse than the identity pairing.
    #[test]
    fn ot_pairing_is_the_optimal_assignment() {
        let mut r = LaneRng::new(1, 0);
        for trial in 0..20 {
            let (n, d) = (6, 2);
            let mut xs = vec![0.0f32; n * d];
            r.fill_normal(&mut xs);
            let x = Array2::from_shape_vec((n, d), xs).unwrap();
            let mut z = vec![0.0f32; n * d];
            r.fill_normal(&mut z);
            let rows: Vec<usize> = (0..n).collect();
            let cost = |z: &[f32], perm: &[usize]| -> f64 {
                (0..n).map(|i| (0..d).map(|c| ((x[[i, c]] - z[perm[i] * d + c]) as f64).powi(2)).sum::<f64>()).sum()
            };
            let ident: Vec<usize> = (0..n).collect();
            let before = cost(&z, &ident);
            let mut best = f64::INFINITY;
            let mut p = ident.clone();
            // Heap's algorithm over all 720 permutations.
            fn heap(k: usize, p: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
                if k == 1 {
                    f(p);
                    return;
                }
                for i in 0..k {
                    heap(k - 1, p, f);
                    if k.is_multiple_of(2) { p.swap(i, k - 1) } else { p.swap(0, k - 1) }
                }
            }
            heap(n, &mut p, &mut |q| best = best.min(cost(&z, q)));
            let mut paired = z.clone();
            ot_pair(&x, &rows, &mut paired).unwrap();
            let after = cost(&paired, &ident);
            assert!((after - best).abs() < 1e-4 * best.max(1.0), "trial {trial}: {after} vs optimum {best}");
            assert!(after <= before + 1e-9);
            // The noise rows are a permutation of the original ones.
            let mut a: Vec<u32> = z.iter().map(|v| v.to_bits()).collect();
            let mut b: Vec<u32> = paired.iter().map(|v| v.to_bits()).collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
        }
    }
}
