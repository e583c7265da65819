//! A U-Net noise-conditional network for images, in the style of DDPM (Ho et al. 2020) and
//! NCSN++ (Song et al. 2021): residual blocks of GroupNorm, SiLU and 3 × 3 convolutions with the
//! noise-level embedding added in each block, self-attention at chosen resolutions, strided
//! convolutions down and nearest-neighbour up-sampling with skip connections between the two
//! paths.
//!
//! It computes the same F(c_in x, c_noise, label) as the MLP ([`crate::net`]), on rows of C × H × W
//! values, so every objective, sampler and command works with it unchanged. The noise input
//! enters through the network's Gaussian Fourier features (as NCSN++'s), then a two-layer MLP
//! makes the block embedding; a class label adds a learned embedding to it. Weights start from
//! the project's seeded generator with PyTorch's default bounds, except the last convolution of
//! each residual branch, of each attention block and of the output, which start at zero (DDPM's
//! choice: every block begins as the identity, the network's output at zero).

use candle_core::{D, Device, Result, Tensor, Var};
use langevin::rng::LaneRng;
use serde::{Deserialize, Serialize};

/// The U-Net's architecture and the images it sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnetConfig {
    /// The preset it came from (`custom` when edited).
    pub preset: String,
    /// Image channels (3 for colour, 1 for grey).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Feature channels at full resolution.
    pub base: usize,
    /// Channel multiplier per resolution level (the first at full resolution; each further level
    /// halves the resolution).
    pub mults: Vec<usize>,
    /// Residual blocks per level on the way down (one more on the way up, as in DDPM).
    pub blocks: usize,
    /// Levels (indices into `mults`) with self-attention after each residual block.
    pub attention: Vec<usize>,
    /// Groups of GroupNorm.
    pub groups: usize,
}

/// The presets' names, for messages.
pub const PRESETS: &str = "tiny, small, cifar";

impl UnetConfig {
    /// A named preset for images of shape (channels, height, width):
    /// - `tiny`: 32 channels, multipliers 1, 2, 2, one block per level, attention at the
    ///   lowest resolution (1.1 M parameters for 3 channels: CPU demos on 8–32 pixel images);
    /// - `small`: 64 channels, multipliers 1, 2, 2, 2, two blocks, attention at level 1 (8.9 M);
    /// - `cifar`: DDPM's CIFAR-10 network, 128 channels, multipliers 1, 2, 2, 2, two blocks,
    ///   attention at 16 × 16 (level 1), 32 groups (35.7 M parameters).
    pub fn preset(name: &str, channels: usize, height: usize, width: usize) -> std::result::Result<Self, String> {
        let (base, mults, blocks, attention, groups): (usize, Vec<usize>, usize, Vec<usize>, usize) = match name {
            "tiny" => (32, vec![1, 2, 2], 1, vec![2], 8),
            "small" => (64, vec![1, 2, 2, 2], 2, vec![1], 16),
            "cifar" => (128, vec![1, 2, 2, 2], 2, vec![1], 32),
            other => return Err(format!("unknown U-Net preset '{other}'; the presets are {PRESETS}")),
        };
        let c = UnetConfig { preset: name.into(), channels, height, width, base, mults, blocks, attention, groups };
        c.check()?;
        Ok(c)
    }

    /// Refuse shapes the network cannot take, naming the fix.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err("the U-Net needs images with at least one channel and pixel".into());
        }
        if self.base == 0 || self.mults.is_empty() || self.mults.contains(&0) || self.blocks == 0 || self.groups == 0 {
            return Err("the U-Net needs base channels, multipliers and blocks all at least 1".into());
        }
        let f = 1usize << (self.mults.len() - 1);
        if !self.height.is_multiple_of(f) || !self.width.is_multiple_of(f) {
            return Err(format!(
                "the U-Net preset '{}' halves the resolution {} times, so the image sides must be multiples of {f}, \
                 but the images are {} × {}; choose an `image_size` that is a multiple of {f}, or a preset with fewer levels",
                self.preset,
                self.mults.len() - 1,
                self.height,
                self.width
            ));
        }
        for m in &self.mults {
            if !(self.base * m).is_multiple_of(self.groups) {
                return Err(format!(
                    "GroupNorm's {} groups do not divide {} channels; use a number of groups that divides every level's channels",
                    self.groups,
                    self.base * m
                ));
            }
        }
        if let Some(a) = self.attention.iter().find(|&&a| a >= self.mults.len()) {
            return Err(format!("attention at level {a}, but the U-Net has {} levels", self.mults.len()));
        }
        Ok(())
    }

    /// Values per image.
    pub fn dim(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Trainable values of the network for `noise_features` noise inputs and a `cond`-wide label
    /// input, counted without building it (for the memory check before allocation).
    pub fn param_count(&self, noise_features: usize, cond: usize) -> u128 {
        let t = self.temb() as u128;
        let res = |cin: u128, cout: u128| {
            2 * cin
                + 9 * cin * cout
                + cout
                + t * cout
                + cout
                + 2 * cout
                + 9 * cout * cout
                + cout
                + if cin != cout { cin * cout + cout } else { 0 }
        };
        let attn = |ch: u128| 2 * ch + 4 * ch * ch + 4 * ch;
        let (base, img) = (self.base as u128, self.channels as u128);
        let mut n = noise_features as u128 * t + t + t * t + t + cond as u128 * t + 9 * img * base + base;
        let mut skips = vec![base];
        let mut ch = base;
        for (level, &m) in self.mults.iter().enumerate() {
            for _ in 0..self.blocks {
                n += res(ch, base * m as u128);
                ch = base * m as u128;
                if self.attention.contains(&level) {
                    n += attn(ch);
                }
                skips.push(ch);
            }
            if level + 1 < self.mults.len() {
                n += 9 * ch * ch + ch;
                skips.push(ch);
            }
        }
        n += 2 * res(ch, ch) + attn(ch);
        for (level, &m) in self.mults.iter().enumerate().rev() {
            for _ in 0..=self.blocks {
                let skip = skips.pop().unwrap_or(0);
                n += res(ch + skip, base * m as u128);
                ch = base * m as u128;
                if self.attention.contains(&level) {
                    n += attn(ch);
                }
            }
            if level > 0 {
                n += 9 * ch * ch + ch;
            }
        }
        n + 2 * ch + 9 * ch * img + img
    }

    /// Floating-point operations of one forward pass per image in the convolutions, attention
    /// products and linear layers (a multiply-add counts 2; normalizations, activations and
    /// additions are left out), for `noise_features` noise inputs. A training step costs about
    /// three times this per image (forward, input gradient, weight gradient).
    pub fn forward_flops(&self, noise_features: usize) -> f64 {
        let t = self.temb() as f64;
        let conv = |cin: f64, cout: f64, k: f64, pixels: f64| 2.0 * cin * cout * k * k * pixels;
        // A residual block at `p` pixels: two 3 × 3 convolutions, the embedding's projection,
        // and a 1 × 1 skip when the channels change.
        let res = |cin: f64, cout: f64, p: f64| {
            conv(cin, cout, 3.0, p)
                + conv(cout, cout, 3.0, p)
                + 2.0 * t * cout
                + if cin != cout { conv(cin, cout, 1.0, p) } else { 0.0 }
        };
        // Attention: qkv and output 1 × 1 convolutions, then qᵀk and the weighted sum of v.
        let attn = |ch: f64, p: f64| conv(ch, 3.0 * ch, 1.0, p) + conv(ch, ch, 1.0, p) + 4.0 * p * p * ch;
        let (base, img) = (self.base as f64, self.channels as f64);
        let mut p = (self.height * self.width) as f64;
        let mut n = 2.0 * (noise_features as f64 * t + t * t) + conv(img, base, 3.0, p);
        let mut skips = vec![base];
        let mut ch = base;
        for (level, &m) in self.mults.iter().enumerate() {
            for _ in 0..self.blocks {
                n += res(ch, base * m as f64, p);
                ch = base * m as f64;
                if self.attention.contains(&level) {
                    n += attn(ch, p);
                }
                skips.push(ch);
            }
            if level + 1 < self.mults.len() {
                p /= 4.0;
                n += conv(ch, ch, 3.0, p);
                skips.push(ch);
            }
        }
        n += 2.0 * res(ch, ch, p) + attn(ch, p);
        for (level, &m) in self.mults.iter().enumerate().rev() {
            for _ in 0..=self.blocks {
                let skip = skips.pop().unwrap_or(0.0);
                n += res(ch + skip, base * m as f64, p);
                ch = base * m as f64;
                if self.attention.contains(&level) {
                    n += attn(ch, p);
                }
            }
            if level > 0 {
                p *= 4.0;
                n += conv(ch, ch, 3.0, p);
            }
        }
        n + conv(ch, img, 3.0, p)
    }

    /// Channels of the noise embedding (4 × base, as in DDPM).
    fn temb(&self) -> usize {
        4 * self.base
    }
}

/// The network a request asks for: `model` mlp (or none) or unet, `preset` (default tiny) for
/// images of `shape` (None: the data are not images). The command line and the Python package
/// both choose through it.
pub fn requested(
    model: Option<&str>,
    preset: Option<&str>,
    shape: Option<crate::images::ImageShape>,
) -> langevin::Result<Option<UnetConfig>> {
    use langevin::Error;
    match model {
        None | Some("mlp") => {
            if let Some(p) = preset {
                return Err(Error::invalid("preset", format!("`preset` {p} sizes a U-Net; add `model` unet")));
            }
            Ok(None)
        }
        Some("unet") => {
            let Some(s) = shape else {
                return Err(Error::invalid(
                    "model",
                    "`model` unet needs images (shapes, digits, mnist:FILE, cifar10:PATH or a folder of images); \
                     tables and 2-D data train with the MLP (leave out `model`)",
                ));
            };
            let c = UnetConfig::preset(preset.unwrap_or("tiny"), s.channels, s.height, s.width)
                .map_err(|e| Error::invalid("preset", e))?;
            Ok(Some(c))
        }
        Some(other) => {
            Err(Error::invalid("model", format!("unknown `model` '{other}'; the networks are mlp and unet")))
        }
    }
}

/// A weight and bias of a convolution or linear layer.
struct Layer {
    w: Var,
    b: Var,
}

/// Draws the initial weights in a fixed order from one seeded stream.
struct Init<'a> {
    rng: LaneRng,
    device: &'a Device,
    params: Vec<(String, Var)>,
}

impl Init<'_> {
    fn uniform(&mut self, n: usize, bound: f64) -> Vec<f32> {
        (0..n).map(|_| ((2.0 * self.rng.uniform_f64() - 1.0) * bound) as f32).collect()
    }
    fn var(&mut self, name: String, v: Vec<f32>, shape: &[usize]) -> Result<Var> {
        let var = Var::from_vec(v, shape, self.device)?;
        self.params.push((name, var.clone()));
        Ok(var)
    }
    /// A k × k convolution (weight (out, in, k, k)); `zero`: weights start at zero.
    fn conv(&mut self, name: &str, cin: usize, cout: usize, k: usize, zero: bool) -> Result<Layer> {
        let fan_in = cin * k * k;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let w = if zero { vec![0.0; cout * fan_in] } else { self.uniform(cout * fan_in, bound) };
        let b = if zero { vec![0.0; cout] } else { self.uniform(cout, bound) };
        Ok(Layer {
            w: self.var(format!("{name}.weight"), w, &[cout, cin, k, k])?,
            b: self.var(format!("{name}.bias"), b, &[cout])?,
        })
    }
    /// A linear layer (weight (in, out): x·W + b).
    fn linear(&mut self, name: &str, cin: usize, cout: usize) -> Result<Layer> {
        let bound = 1.0 / (cin as f64).sqrt();
        let (w, b) = (self.uniform(cin * cout, bound), self.uniform(cout, bound));
        Ok(Layer {
            w: self.var(format!("{name}.weight"), w, &[cin, cout])?,
            b: self.var(format!("{name}.bias"), b, &[cout])?,
        })
    }
    fn norm(&mut self, name: &str, ch: usize, groups: usize) -> Result<Norm> {
        let w = self.var(format!("{name}.weight"), vec![1.0; ch], &[ch])?;
        let b = self.var(format!("{name}.bias"), vec![0.0; ch], &[ch])?;
        Ok(Norm { w, b, ch, groups })
    }
}

struct Norm {
    w: Var,
    b: Var,
    ch: usize,
    groups: usize,
}

impl Norm {
    /// GroupNorm, then SiLU when `silu` (one fused kernel on the CPU).
    fn forward(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        debug_assert_eq!(x.dim(1).ok(), Some(self.ch));
        crate::conv::group_norm(x, self.w.as_tensor(), self.b.as_tensor(), self.groups, silu)
    }
}

impl Layer {
    fn conv(&self, x: &Tensor, stride: usize) -> Result<Tensor> {
        crate::conv::conv2d(x, self.w.as_tensor(), self.b.as_tensor(), stride)
    }
    fn linear(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(self.w.as_tensor())?.broadcast_add(self.b.as_tensor())
    }
}

struct ResBlock {
    norm1: Norm,
    conv1: Layer,
    temb: Layer,
    norm2: Norm,
    conv2: Layer,
    skip: Option<Layer>,
}

impl ResBlock {
    fn new(init: &mut Init, name: &str, cin: usize, cout: usize, c: &UnetConfig) -> Result<Self> {
        Ok(ResBlock {
            norm1: init.norm(&format!("{name}.norm1"), cin, c.groups)?,
            conv1: init.conv(&format!("{name}.conv1"), cin, cout, 3, false)?,
            temb: init.linear(&format!("{name}.temb"), c.temb(), cout)?,
            norm2: init.norm(&format!("{name}.norm2"), cout, c.groups)?,
            conv2: init.conv(&format!("{name}.conv2"), cout, cout, 3, true)?,
            skip: if cin != cout { Some(init.conv(&format!("{name}.skip"), cin, cout, 1, false)?) } else { None },
        })
    }
    /// x (B, cin, H, W), emb = SiLU(embedding) (B, temb).
    fn forward(&self, x: &Tensor, emb: &Tensor) -> Result<Tensor> {
        let h = self.conv1.conv(&self.norm1.forward(x, true)?, 1)?;
        let t = self.temb.linear(emb)?;
        let (b, c) = t.dims2()?;
        let h = h.broadcast_add(&t.reshape((b, c, 1, 1))?)?;
        let h = self.conv2.conv(&self.norm2.forward(&h, true)?, 1)?;
        match &self.skip {
            Some(s) => s.conv(x, 1)? + h,
            None => x + h,
        }
    }
}

struct Attention {
    norm: Norm,
    qkv: Layer,
    proj: Layer,
}

impl Attention {
    fn new(init: &mut Init, name: &str, ch: usize, c: &UnetConfig) -> Result<Self> {
        Ok(Attention {
            norm: init.norm(&format!("{name}.norm"), ch, c.groups)?,
            qkv: init.conv(&format!("{name}.qkv"), ch, 3 * ch, 1, false)?,
            proj: init.conv(&format!("{name}.proj"), ch, ch, 1, true)?,
        })
    }
    /// One head over the H·W positions: x + proj(softmax(qᵀk/√C) v).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let qkv = self.qkv.conv(&self.norm.forward(x, false)?, 1)?.reshape((b, 3 * c, h * w))?;
        let q = qkv.narrow(1, 0, c)?.transpose(1, 2)?.contiguous()?; // (B, HW, C)
        let k = qkv.narrow(1, c, c)?.contiguous()?; // (B, C, HW)
        let v = qkv.narrow(1, 2 * c, c)?.transpose(1, 2)?.contiguous()?; // (B, HW, C)
        let a = (q.matmul(&k)? * (1.0 / (c as f64).sqrt()))?;
        let a = candle_nn::ops::softmax(&a, D::Minus1)?;
        let o = a.matmul(&v)?.transpose(1, 2)?.reshape((b, c, h, w))?;
        x + self.proj.conv(&o, 1)?
    }
}

enum Block {
    Res(ResBlock),
    Attn(Attention),
    Down(Layer),
    Up(Layer),
}

/// The U-Net F(x, c_noise, label) on rows of C × H × W values.
pub struct Unet {
    config: UnetConfig,
    temb1: Layer,
    temb2: Layer,
    label: Option<Var>,
    conv_in: Layer,
    down: Vec<Block>,
    mid: Vec<Block>,
    /// Blocks of the way up; a residual block here takes a skip connection.
    up: Vec<Block>,
    norm_out: Norm,
    conv_out: Layer,
    params: Vec<(String, Var)>,
}

impl Unet {
    /// A freshly initialized U-Net; `noise_features` is the width of the noise features it is
    /// given, `cond` the width of the one-hot label input (0: unconditional).
    pub fn new(config: UnetConfig, noise_features: usize, cond: usize, rng: LaneRng, device: &Device) -> Result<Self> {
        if let Err(e) = config.check() {
            candle_core::bail!("{e}");
        }
        let c = &config;
        let mut init = Init { rng, device, params: Vec::new() };
        let temb1 = init.linear("temb.0", noise_features, c.temb())?;
        let temb2 = init.linear("temb.1", c.temb(), c.temb())?;
        let label = if cond > 0 {
            // An embedding per class (and "no label"), N(0, 1) as torch.nn.Embedding.
            let mut v = vec![0.0f32; cond * c.temb()];
            init.rng.fill_normal(&mut v);
            Some(init.var("label.weight".into(), v, &[cond, c.temb()])?)
        } else {
            None
        };
        let conv_in = init.conv("conv_in", c.channels, c.base, 3, false)?;
        let mut down = Vec::new();
        let mut skips = vec![c.base];
        let mut ch = c.base;
        for (level, &m) in c.mults.iter().enumerate() {
            for i in 0..c.blocks {
                down.push(Block::Res(ResBlock::new(&mut init, &format!("down.{level}.res.{i}"), ch, c.base * m, c)?));
                ch = c.base * m;
                if c.attention.contains(&level) {
                    down.push(Block::Attn(Attention::new(&mut init, &format!("down.{level}.attn.{i}"), ch, c)?));
                }
                skips.push(ch);
            }
            if level + 1 < c.mults.len() {
                down.push(Block::Down(init.conv(&format!("down.{level}.downsample"), ch, ch, 3, false)?));
                skips.push(ch);
            }
        }
        let mid = vec![
            Block::Res(ResBlock::new(&mut init, "mid.res.0", ch, ch, c)?),
            Block::Attn(Attention::new(&mut init, "mid.attn", ch, c)?),
            Block::Res(ResBlock::new(&mut init, "mid.res.1", ch, ch, c)?),
        ];
        let mut up = Vec::new();
        for (level, &m) in c.mults.iter().enumerate().rev() {
            for i in 0..=c.blocks {
                let skip = skips.pop().expect("one skip per block");
                up.push(Block::Res(ResBlock::new(
                    &mut init,
                    &format!("up.{level}.res.{i}"),
                    ch + skip,
                    c.base * m,
                    c,
                )?));
                ch = c.base * m;
                if c.attention.contains(&level) {
                    up.push(Block::Attn(Attention::new(&mut init, &format!("up.{level}.attn.{i}"), ch, c)?));
                }
            }
            if level > 0 {
                up.push(Block::Up(init.conv(&format!("up.{level}.upsample"), ch, ch, 3, false)?));
            }
        }
        let norm_out = init.norm("norm_out", ch, c.groups)?;
        let conv_out = init.conv("conv_out", ch, c.channels, 3, true)?;
        let params = init.params;
        Ok(Unet { config, temb1, temb2, label, conv_in, down, mid, up, norm_out, conv_out, params })
    }

    /// Architecture.
    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    /// Trainable parameters in a fixed order, with their checkpoint names.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Number of trainable values.
    pub fn count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.as_tensor().elem_count()).sum()
    }

    /// F for rows x (B, C·H·W), noise features (B, noise_features) and one-hot labels (B, cond).
    pub fn forward(&self, x: &Tensor, features: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        let c = &self.config;
        let b = x.dim(0)?;
        let mut emb = self.temb2.linear(&self.temb1.linear(features)?.silu()?)?;
        if let (Some(l), Some(onehot)) = (&self.label, cond) {
            emb = (emb + onehot.matmul(l.as_tensor())?)?;
        }
        let emb = emb.silu()?;
        let mut h = self.conv_in.conv(&x.reshape((b, c.channels, c.height, c.width))?, 1)?;
        let mut skips = vec![h.clone()];
        for block in &self.down {
            h = match block {
                Block::Res(r) => r.forward(&h, &emb)?,
                Block::Attn(a) => {
                    skips.pop();
                    a.forward(&h)?
                }
                Block::Down(d) => d.conv(&h, 2)?,
                Block::Up(_) => unreachable!("no up-sampling on the way down"),
            };
            skips.push(h.clone());
        }
        for block in &self.mid {
            h = match block {
                Block::Res(r) => r.forward(&h, &emb)?,
                Block::Attn(a) => a.forward(&h)?,
                _ => unreachable!("the middle has residual and attention blocks"),
            };
        }
        for block in &self.up {
            h = match block {
                Block::Res(r) => {
                    let s = skips.pop().expect("one skip per block");
                    r.forward(&Tensor::cat(&[&h, &s], 1)?, &emb)?
                }
                Block::Attn(a) => a.forward(&h)?,
                Block::Up(u) => u.conv(&crate::conv::upsample2(&h)?, 1)?,
                Block::Down(_) => unreachable!("no down-sampling on the way up"),
            };
        }
        let out = self.conv_out.conv(&self.norm_out.forward(&h, true)?, 1)?;
        out.reshape((b, c.dim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(preset: &str, c: usize, side: usize, cond: usize) -> Unet {
        let cfg = UnetConfig::preset(preset, c, side, side).unwrap();
        Unet::new(cfg, 32, cond, LaneRng::new(3, 0), &Device::Cpu).unwrap()
    }

    /// The parameter count computed without building the network (the memory check) is the
    /// built network's, for every preset, with and without labels; DDPM's CIFAR-10 network has
    /// 35.7 M parameters (35.75 M in Ho et al.'s code, whose time embedding is sinusoidal rather
    /// than Fourier features of width 32).
    #[test]
    fn forward_flops_equal_pytorchs_count_of_the_same_network() {
        // torch.utils.flop_counter.FlopCounterMode on one image through bench/peers/unet_torch.py's
        // copy of this network (2026-12-03). PyTorch also counts the Fourier projection of the
        // noise input (1 × 1 by 1 × 16: 32 flops), which forward_flops leaves out.
        for (preset, side, torch) in [("tiny", 16, 124_289_056.0), ("cifar", 32, 12_443_615_264.0)] {
            let c = UnetConfig::preset(preset, 3, side, side).unwrap();
            assert_eq!(c.forward_flops(32) + 32.0, torch, "{preset}");
        }
    }

    #[test]
    fn parameter_count_matches_the_network() {
        for (preset, c, side, cond) in
            [("tiny", 3, 16, 0), ("tiny", 1, 8, 11), ("small", 3, 16, 0), ("cifar", 3, 32, 0)]
        {
            let n = net(preset, c, side, cond);
            assert_eq!(n.config().param_count(32, cond), n.count() as u128, "{preset}");
        }
        let cifar = net("cifar", 3, 32, 0).count();
        assert!((35_600_000..35_800_000).contains(&cifar), "{cifar}");
    }

    /// Sizes that the levels cannot halve, unknown presets and groups that do not divide the
    /// channels are refused with the fix.
    #[test]
    fn refuses_shapes_it_cannot_take() {
        let e = UnetConfig::preset("cifar", 3, 28, 28).unwrap_err();
        assert!(e.contains("multiples of 8") && e.contains("28 × 28") && e.contains("`image_size`"), "{e}");
        assert!(UnetConfig::preset("huge", 3, 32, 32).unwrap_err().contains("tiny, small, cifar"));
        let mut c = UnetConfig::preset("tiny", 3, 16, 16).unwrap();
        c.groups = 7;
        assert!(c.check().unwrap_err().contains("groups"));
        c.groups = 8;
        c.attention = vec![5];
        assert!(c.check().unwrap_err().contains("attention at level 5"));
    }

    /// The output starts at zero (zero-initialized last convolution) and has the input's shape;
    /// once the zero-initialized convolutions get weights, the output depends on the input, the noise level
    /// and the label, and image b of a batch does not depend on image b' (no mixing across
    /// the batch, as batch statistics would cause).
    #[test]
    fn forward_shapes_and_dependencies() -> Result<()> {
        let dev = Device::Cpu;
        let n = net("tiny", 3, 8, 4);
        let mut r = LaneRng::new(9, 1);
        let mut v = vec![0.0f32; 4 * 192];
        r.fill_normal(&mut v);
        let x = Tensor::from_vec(v.clone(), (4, 192), &dev)?;
        let mut f = vec![0.0f32; 4 * 32];
        r.fill_normal(&mut f);
        let feats = Tensor::from_vec(f, (4, 32), &dev)?;
        let onehot = Tensor::from_vec((0..16).map(|i| if i % 5 == 0 { 1.0f32 } else { 0.0 }).collect(), (4, 4), &dev)?;
        let y0 = n.forward(&x, &feats, Some(&onehot))?;
        assert_eq!(y0.dims(), &[4, 192]);
        assert_eq!(y0.abs()?.sum_all()?.to_scalar::<f32>()?, 0.0);
        // Give the zero-initialized convolutions (each block's last one and the output's) weights.
        for (name, var) in n.params() {
            if name.contains("conv2") || name.contains("proj") || name.contains("conv_out") {
                let mut w = vec![0.0f32; var.as_tensor().elem_count()];
                r.fill_normal(&mut w);
                w.iter_mut().for_each(|v| *v *= 0.1);
                var.set(&Tensor::from_vec(w, var.as_tensor().shape(), &dev)?)?;
            }
        }
        let y = n.forward(&x, &feats, Some(&onehot))?.to_vec2::<f32>()?;
        assert!(y[0].iter().any(|v| v.abs() > 1e-3));
        // Changing image 0 changes only row 0.
        let mut v2 = v.clone();
        v2[5] += 1.0;
        let y2 = n.forward(&Tensor::from_vec(v2, (4, 192), &dev)?, &feats, Some(&onehot))?.to_vec2::<f32>()?;
        assert!(y2[0] != y[0]);
        assert_eq!(&y2[1..], &y[1..]);
        // The noise features and the label reach the output.
        let y3 = n.forward(&x, &(&feats * 2.0)?, Some(&onehot))?.to_vec2::<f32>()?;
        assert!(y3[1] != y[1]);
        let other = Tensor::from_vec((0..16).map(|i| if i % 4 == 3 { 1.0f32 } else { 0.0 }).collect(), (4, 4), &dev)?;
        let y4 = n.forward(&x, &feats, Some(&other))?.to_vec2::<f32>()?;
        assert!(y4[1] != y[1]);
        Ok(())
    }

    /// Two training steps give the same weights bit for bit on 1, 2 and 3 threads (the
    /// kernels split work by groups of images and blocks of channels sized by the shapes —
    /// at this batch of 6: six single images at 16 × 16, groups of 4 and 2 at 8 × 8, one group
    /// at 4 × 4, and 4 or 8 channel blocks — and gemm never splits a dot product).
    #[test]
    fn training_is_the_same_on_any_number_of_threads() {
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let set = crate::images::shapes(40, 16, 2);
                let unet = UnetConfig::preset("tiny", 3, 16, 16).unwrap();
                let net = crate::net::NetConfig { unet: Some(unet), ..Default::default() };
                let train =
                    crate::train::TrainConfig { batch: 6, steps: 10, warmup: 1, flip: true, ..Default::default() };
                let mut new = crate::checkpoint::new_run(
                    &set.x,
                    "shapes",
                    0,
                    0.2,
                    &crate::ladder::LadderOptions::default(),
                    net,
                    train,
                    &Device::Cpu,
                )
                .unwrap();
                for _ in 0..2 {
                    new.trainer.train_step().unwrap();
                }
                new.trainer.weights.clone()
            })
        };
        let one = run(1);
        assert!(one.iter().flatten().any(|v| *v != 0.0));
        for t in [2, 3] {
            assert!(run(t) == one, "{t} threads");
        }
    }
}
