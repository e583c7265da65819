//! The noise-conditional score network s_θ(x, σ).
//!
//! An MLP on [x, φ(log σ)] where φ are Gaussian Fourier features
//! φ(u) = (sin 2πωᵢu, cos 2πωᵢu), ωᵢ ~ N(0, scale²) fixed at initialization (Tancik et al. 2020;
//! the σ embedding of Song et al.'s score SDE models). Hidden layers use SiLU. Following NCSNv2
//! the network's output is divided by σ: s_θ(x, σ) = f_θ(x, σ)/σ, which matches the observed
//! ‖s‖ ∝ 1/σ and makes the denoising score matching loss σ²‖s + z/σ‖² = ‖f + z‖² for
//! x̃ = x + σz.
//!
//! Weights are initialized from the project's seeded generator (candle's CPU generator cannot be
//! seeded) with PyTorch's default: U(−1/√fan_in, 1/√fan_in) for weights and biases. Bias and
//! activation run as fused kernels ([`crate::ops`]): candle's broadcast add, its strided
//! reduction for the bias gradient and its SiLU took more than a third of a training step.

use crate::ops;
use candle_core::{Device, Result, Tensor, Var};
use langevin::rng::LaneRng;
use serde::{Deserialize, Serialize};

/// Architecture of the score network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// Number of Fourier frequencies of log σ (the embedding has twice as many features).
    pub fourier: usize,
    /// Standard deviation of the Fourier frequencies.
    pub fourier_scale: f64,
    /// Classes of a class-conditional network (0: unconditional). The label enters as a one-hot
    /// vector of `classes + 1` entries beside x and the noise features (the last entry is the
    /// "no label" class of classifier-free guidance), so the first layer's weights on it are a
    /// learned label embedding added to the first hidden pre-activation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub classes: usize,
    /// A U-Net for images instead of the MLP ([`crate::unet`]; `width` and `depth` are then
    /// unused). Absent in the configs of MLP runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet: Option<crate::unet::UnetConfig>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { width: 128, depth: 3, fourier: 16, fourier_scale: 1.0, classes: 0, unet: None }
    }
}

impl NetConfig {
    /// Width of the label input (0 for an unconditional network).
    pub fn cond_width(&self) -> usize {
        if self.classes == 0 { 0 } else { self.classes + 1 }
    }
}

/// f_θ(x, σ) (= σ s_θ(x, σ)).
pub struct ScoreNet {
    dim: usize,
    config: NetConfig,
    freqs: Tensor,
    layers: Vec<(Var, Var)>,
    unet: Option<crate::unet::Unet>,
    device: Device,
}

impl ScoreNet {
    /// A freshly initialized network for `dim`-dimensional data.
    pub fn new(dim: usize, config: NetConfig, seed: u64, device: &Device) -> Result<Self> {
        if dim == 0 || config.width == 0 || config.depth == 0 || config.fourier == 0 {
            candle_core::bail!("the network needs dim, width, depth and fourier all at least 1");
        }
        // Weights, EMA, Adam's two moments and the gradients: about six copies of the
        // parameters (a hand-edited config may ask for any size).
        use langevin::mem::product;
        let (w, f) = (config.width, config.fourier);
        let cond = config.cond_width();
        let params = product(&[dim + 2 * f + cond + dim + 2, w]) + product(&[w, w, config.depth.saturating_sub(1)]);
        if let Err(e) = langevin::mem::check(
            params.saturating_mul(24),
            format!("a network of width {w} and depth {}", config.depth),
            "width",
        ) {
            candle_core::bail!("{e}");
        }
        let mut rng = LaneRng::new(seed, 0x4E45);
        let freqs: Vec<f32> = (0..config.fourier).map(|_| (rng.normal() * config.fourier_scale) as f32).collect();
        let freqs = Tensor::from_vec(freqs, (1, config.fourier), device)?;
        if let Some(u) = &config.unet {
            if u.dim() != dim {
                candle_core::bail!(
                    "the U-Net sees images of {} values ({} × {} × {}), but the data have {dim} columns",
                    u.dim(),
                    u.channels,
                    u.height,
                    u.width
                );
            }
            // Weights, EMA, Adam's moments, gradients: about six copies of the parameters.
            let values = u.param_count(2 * config.fourier, config.cond_width());
            if let Err(e) = langevin::mem::check(
                values.saturating_mul(24),
                format!("a U-Net of {values} parameters (preset '{}')", u.preset),
                "preset",
            ) {
                candle_core::bail!("{e}");
            }
            let unet = crate::unet::Unet::new(u.clone(), 2 * config.fourier, config.cond_width(), rng, device)?;
            return Ok(ScoreNet { dim, config, freqs, layers: Vec::new(), unet: Some(unet), device: device.clone() });
        }
        let mut sizes = vec![dim + 2 * config.fourier + config.cond_width()];
        sizes.extend(std::iter::repeat_n(config.width, config.depth));
        sizes.push(dim);
        let mut layers = Vec::with_capacity(sizes.len() - 1);
        for w in sizes.windows(2) {
            let (fan_in, fan_out) = (w[0], w[1]);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let mut uniform =
                |n: usize| -> Vec<f32> { (0..n).map(|_| ((2.0 * rng.uniform_f64() - 1.0) * bound) as f32).collect() };
            let weight = Var::from_vec(uniform(fan_in * fan_out), (fan_in, fan_out), device)?;
            let bias = Var::from_vec(uniform(fan_out), (1, fan_out), device)?;
            layers.push((weight, bias));
        }
        Ok(ScoreNet { dim, config, freqs, layers, unet: None, device: device.clone() })
    }

    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Architecture.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }
    /// Device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether this is the MLP (whose CPU passes are written out in [`crate::mlp`]), not the
    /// U-Net.
    pub fn is_mlp(&self) -> bool {
        self.unet.is_none()
    }

    /// Number of trainable values.
    pub fn param_count(&self) -> usize {
        self.params().iter().map(|(_, v)| v.as_tensor().elem_count()).sum()
    }

    /// Layer widths (of the MLP), input first: [d + 2·fourier + label width, width × depth, d].
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.dim + 2 * self.config.fourier + self.config.cond_width()];
        sizes.extend(std::iter::repeat_n(self.config.width, self.config.depth));
        sizes.push(self.dim);
        sizes
    }

    /// The fixed Fourier frequencies as numbers.
    pub fn freqs_vec(&self) -> Result<Vec<f32>> {
        self.freqs.flatten_all()?.to_vec1()
    }

    /// The current values of the parameters, in [`ScoreNet::params`] order.
    pub fn param_values(&self) -> Result<Vec<Vec<f32>>> {
        self.params().iter().map(|(_, v)| v.as_tensor().flatten_all().and_then(|t| t.to_vec1())).collect()
    }

    /// Trainable parameters in a fixed order, with their checkpoint names.
    pub fn params(&self) -> Vec<(String, &Var)> {
        if let Some(u) = &self.unet {
            return u.params().iter().map(|(n, v)| (format!("unet.{n}"), v)).collect();
        }
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for (i, (w, b)) in self.layers.iter().enumerate() {
            out.push((format!("layer{i}.weight"), w));
            out.push((format!("layer{i}.bias"), b));
        }
        out
    }

    /// The fixed Fourier frequencies (saved with the weights).
    pub fn freqs(&self) -> &Tensor {
        &self.freqs
    }

    /// Replace the Fourier frequencies (when loading a checkpoint).
    pub fn set_freqs(&mut self, freqs: Tensor) -> Result<()> {
        if freqs.dims() != self.freqs.dims() {
            candle_core::bail!("Fourier frequencies of shape {:?}, expected {:?}", freqs.dims(), self.freqs.dims());
        }
        self.freqs = freqs;
        Ok(())
    }

    /// f_θ(x, σ) for x of shape (B, d) and log σ of shape (B, 1); returns (B, d). A
    /// class-conditional network sees the "no label" class.
    pub fn forward(&self, x: &Tensor, log_sigma: &Tensor) -> Result<Tensor> {
        self.forward_cond(x, log_sigma, None)
    }

    /// The one-hot rows (B, classes + 1) of `labels` (`None`: the "no label" class).
    pub fn one_hot(&self, labels: &[Option<usize>]) -> Result<Tensor> {
        let k = self.config.cond_width();
        let mut v = vec![0.0f32; labels.len() * k];
        for (i, l) in labels.iter().enumerate() {
            let c = l.unwrap_or(self.config.classes);
            if c >= self.config.classes && l.is_some() {
                candle_core::bail!("class {c} of a network with {} classes", self.config.classes);
            }
            v[i * k + c] = 1.0;
        }
        Tensor::from_vec(v, (labels.len(), k), &self.device)
    }

    /// f_θ(x, σ, c): `cond` the one-hot labels from [`ScoreNet::one_hot`] (`None`: "no label";
    /// ignored by an unconditional network).
    pub fn forward_cond(&self, x: &Tensor, log_sigma: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        let proj = (log_sigma.matmul(&self.freqs)? * (2.0 * std::f64::consts::PI))?;
        if let Some(u) = &self.unet {
            let features = Tensor::cat(&[&proj.sin()?, &proj.cos()?], 1)?;
            let null;
            let c = match (self.config.classes, cond) {
                (0, _) => None,
                (_, Some(c)) => Some(c),
                (_, None) => {
                    null = self.one_hot(&vec![None; x.dim(0)?])?;
                    Some(&null)
                }
            };
            return u.forward(x, &features, c);
        }
        let mut h = if self.config.classes == 0 {
            Tensor::cat(&[x, &proj.sin()?, &proj.cos()?], 1)?
        } else {
            let null;
            let c = match cond {
                Some(c) => c,
                None => {
                    null = self.one_hot(&vec![None; x.dim(0)?])?;
                    &null
                }
            };
            Tensor::cat(&[x, &proj.sin()?, &proj.cos()?, c], 1)?
        };
        let last = self.layers.len() - 1;
        for (i, (w, bias)) in self.layers.iter().enumerate() {
            let pre = h.matmul(w.as_tensor())?;
            h = if i < last { ops::bias_silu(&pre, bias.as_tensor())? } else { ops::bias_add(&pre, bias.as_tensor())? };
        }
        Ok(h)
    }

    /// The score s_θ(x, σ) = f_θ(x, σ)/σ for x (B, d) and σ (B, 1).
    pub fn score(&self, x: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        self.forward(x, &sigma.log()?)?.broadcast_div(sigma)
    }
}
