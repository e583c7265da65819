//! 2-D convolutions on the CPU as matrix products, forward and backward, as a candle custom op.
//!
//! candle's CPU convolution ran a U-Net step at about 11 GFLOP/s on 2 cores: its input gradient
//! is a transposed convolution computed one dot product of `c_in` values per output pixel and
//! kernel tap. Here each image is unfolded (im2col: rows (channel, tap), columns output pixels)
//! and every pass is a product by the `gemm` crate. Images with few pixels (the low-resolution
//! levels) are taken in groups side by side, so that a product has at least [`COLUMNS`] columns:
//! - forward: y = W · cols (c_out × group pixels, scattered into each image's C × H × W block);
//! - input gradient: cols-gradient = Wᵀ · dy, folded back (col2im) into each image's dx;
//! - weight gradient: dWᵀ = Σ cols · dyᵀ over the groups in order, in tasks by blocks of
//!   [`GRAD_CHANNELS`] input channels (each task unfolds only its channels' rows).
//!
//! Groups (and channel blocks) run in parallel, each product on one thread; their sizes follow
//! from the shapes alone, never from the thread count, so results are the same bit for bit on
//! any number of threads. Other devices use candle's own convolution.

use crate::mlp::{Acc, product, product_strided};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use std::ops::Range;

/// Input channels per task of the weight gradient: 72 rows of a 3 × 3 kernel, more than the
/// gemm kernel's 64.
const GRAD_CHANNELS: usize = 8;

/// Columns wanted in one product. Low-resolution levels have few pixels an image (16 at
/// 4 × 4): products that narrow run the gemm kernels far below their rate and pack the kernel
/// once per image, so the images of a group are unfolded side by side and multiplied at once.
const COLUMNS: usize = 256;

/// Geometry of a k × k convolution with padding k/2 and stride s.
#[derive(Clone, Copy, Debug)]
struct Geom {
    b: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
}

impl Geom {
    fn ho(&self) -> usize {
        (self.h + 2 * (self.k / 2) - self.k) / self.s + 1
    }
    fn wo(&self) -> usize {
        (self.w + 2 * (self.k / 2) - self.k) / self.s + 1
    }
    fn rows(&self) -> usize {
        self.cin * self.k * self.k
    }
    fn pixels(&self) -> usize {
        self.ho() * self.wo()
    }
    /// A 1 × 1, stride-1 convolution: its unfolded columns are the image itself.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1
    }
    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.cout * self.pixels()
    }

    /// The output columns ox whose input column ox·s + kx − p lies inside the image.
    fn valid(&self, kx: usize, wo: usize) -> (usize, usize) {
        let p = self.k / 2;
        let lo = p.saturating_sub(kx).div_ceil(self.s);
        // ox·s + kx − p ≤ w − 1  ⇔  ox ≤ (w − 1 + p − kx)/s.
        let hi = if self.w + p > kx { ((self.w - 1 + p - kx) / self.s + 1).min(wo) } else { 0 };
        (lo.min(hi), hi)
    }

    /// Images taken together in one product: enough that their pixels make at least
    /// [`COLUMNS`] columns. A function of the geometry only, never of the thread count.
    fn group(&self) -> usize {
        COLUMNS.div_ceil(self.pixels().max(1)).clamp(1, self.b.max(1))
    }

    /// The unfolded columns of one image x (cin × h × w): row r (channel, tap) of its pixels
    /// is cols[r · ld..][..pixels] (ld ≥ pixels: images of a group side by side).
    /// Only the rows of the input channels `chans` are written (row 0 is the first of them).
    fn unfold(&self, x: &[f32], cols: &mut [f32], ld: usize, chans: Range<usize>) {
        if self.s == 1 {
            return self.unfold_shifted(x, cols, ld, chans);
        }
        let (k, p, s, ho, wo) = (self.k, self.k / 2, self.s, self.ho(), self.wo());
        for c in chans.clone() {
            for ky in 0..k {
                for kx in 0..k {
                    let row = &mut cols[(((c - chans.start) * k + ky) * k + kx) * ld..][..ho * wo];
                    let (lo, hi) = self.valid(kx, wo);
                    for oy in 0..ho {
                        let iy = (oy * s + ky) as isize - p as isize;
                        let out = &mut row[oy * wo..(oy + 1) * wo];
                        if iy < 0 || iy >= self.h as isize || lo >= hi {
                            out.fill(0.0);
                            continue;
                        }
                        let line = &x[(c * self.h + iy as usize) * self.w..][..self.w];
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        let first = lo * s + kx - p;
                        for (o, ix) in out[lo..hi].iter_mut().zip((first..).step_by(s)) {
                            *o = line[ix];
                        }
                    }
                }
            }
        }
    }

    /// Stride 1: a tap's row is the whole channel plane shifted by (ky − p)·w + (kx − p), one
    /// copy, with the pixels that fall outside the image (top and bottom lines, the columns
    /// that wrap around a line's end) set to zero afterwards.
    fn unfold_shifted(&self, x: &[f32], cols: &mut [f32], ld: usize, chans: Range<usize>) {
        let (k, plane) = (self.k, self.h * self.w);
        for c in chans.clone() {
            let xc = &x[c * plane..][..plane];
            for ky in 0..k {
                for kx in 0..k {
                    let row = &mut cols[(((c - chans.start) * k + ky) * k + kx) * ld..][..plane];
                    let (lo, hi, shift) = self.shift(ky, kx);
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                    if lo < hi {
                        row[lo..hi].copy_from_slice(&xc[(lo as isize + shift) as usize..][..hi - lo]);
                    }
                    self.clear_outside(row, ky, kx);
                }
            }
        }
    }

    /// For the tap (ky, kx) at stride 1: the range [lo, hi) of output pixels i whose shifted
    /// source i + shift lies in the plane, and the shift.
    fn shift(&self, ky: usize, kx: usize) -> (usize, usize, isize) {
        let (p, plane) = ((self.k / 2) as isize, (self.h * self.w) as isize);
        let shift = (ky as isize - p) * self.w as isize + (kx as isize - p);
        let lo = (-shift).clamp(0, plane);
        let hi = (plane - shift).clamp(lo, plane);
        (lo as usize, hi as usize, shift)
    }

    /// Zero the output pixels of one stride-1 tap row whose source pixel is outside the image:
    /// the lines above or below it and the columns left or right of it.
    fn clear_outside(&self, row: &mut [f32], ky: usize, kx: usize) {
        let (h, w, p) = (self.h, self.w, self.k / 2);
        // Source line oy + ky − p must lie in [0, h); source column ox + kx − p in [0, w).
        let inside = |n: usize, t: usize| {
            let first = p.saturating_sub(t).min(n);
            (first, (n + p).saturating_sub(t).clamp(first, n))
        };
        let ((y0, y1), (x0, x1)) = (inside(h, ky), inside(w, kx));
        row[..y0 * w].fill(0.0);
        row[y1 * w..].fill(0.0);
        // A column or two at most for 3 × 3 kernels: single stores, not a fill per line.
        for col in (0..x0).chain(x1..w).filter(|_| y0 < y1) {
            for v in row[y0 * w + col..y1 * w].iter_mut().step_by(w) {
                *v = 0.0;
            }
        }
    }

    /// dx (cin × h × w) = the sum of the cols gradient (row r at cols[r · ld..]) folded back
    /// onto the pixels it came from. The gradient's entries of pixels outside the image are
    /// set to zero on the way (they are scratch).
    fn fold(&self, cols: &mut [f32], ld: usize, dx: &mut [f32]) {
        let (k, p, s, ho, wo) = (self.k, self.k / 2, self.s, self.ho(), self.wo());
        dx.fill(0.0);
        for c in 0..self.cin {
            for ky in 0..k {
                for kx in 0..k {
                    let row = &mut cols[((c * k + ky) * k + kx) * ld..][..ho * wo];
                    if s == 1 {
                        // Every image pixel gets this tap's term once, in the same order as
                        // below; the zeroed entries add nothing.
                        let plane = self.h * self.w;
                        self.clear_outside(row, ky, kx);
                        let (lo, hi, shift) = self.shift(ky, kx);
                        if lo == hi {
                            continue;
                        }
                        let dxc = &mut dx[c * plane + (lo as isize + shift) as usize..][..hi - lo];
                        dxc.iter_mut().zip(&row[lo..hi]).for_each(|(d, v)| *d += v);
                        continue;
                    }
                    let (lo, hi) = self.valid(kx, wo);
                    if lo >= hi {
                        continue;
                    }
                    let first = lo * s + kx - p;
                    for oy in 0..ho {
                        let iy = (oy * s + ky) as isize - p as isize;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        let line = &mut dx[(c * self.h + iy as usize) * self.w..][..self.w];
                        let g = &row[oy * wo + lo..oy * wo + hi];
                        for (v, ix) in g.iter().zip((first..).step_by(s)) {
                            line[ix] += v;
                        }
                    }
                }
            }
        }
    }
}

impl Geom {
    /// Copy a product's result (`chans` × n, the images of a group side by side) into the
    /// images' own blocks (`chans` × pixels each).
    fn scatter(&self, wide: &[f32], images: &mut [f32], chans: usize) {
        let (px, n) = (self.pixels(), wide.len() / chans);
        for (i, img) in images.chunks_mut(chans * px).enumerate() {
            for (c, row) in img.chunks_mut(px).enumerate() {
                row.copy_from_slice(&wide[c * n + i * px..][..px]);
            }
        }
    }
}

/// Per-thread buffers for a group of images: their unfolded columns (or a column gradient),
/// a gathered gradient, and a product's result before it is scattered.
struct Scratch {
    cols: Vec<f32>,
    wide: Vec<f32>,
    out: Vec<f32>,
}

impl Scratch {
    /// This thread's buffers, grown to hold a group of the geometry g (never shrunk, and not
    /// cleared: every user writes all it reads).
    fn with<R>(g: &Geom, f: impl FnOnce(&mut Scratch) -> R) -> R {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> =
                const { std::cell::RefCell::new(Scratch { cols: Vec::new(), wide: Vec::new(), out: Vec::new() }) };
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let n = g.group() * g.pixels();
            let grow = |v: &mut Vec<f32>, len: usize| {
                if v.len() < len {
                    v.resize(len, 0.0);
                }
            };
            grow(&mut s.cols, g.rows() * n);
            grow(&mut s.wide, g.cout * n);
            grow(&mut s.out, g.cout * n);
            f(&mut s)
        })
    }
}

impl Geom {
    /// The unfolded columns of the images xs side by side (rows × n), in cols; only the rows
    /// of the input channels `chans`.
    fn unfold_group<'a>(&self, xs: &[f32], cols: &'a mut [f32], n: usize, chans: Range<usize>) -> &'a [f32] {
        let rows = chans.len() * self.k * self.k;
        for (i, xb) in xs.chunks(self.in_len()).enumerate() {
            self.unfold(xb, &mut cols[i * self.pixels()..], n, chans.clone());
        }
        &cols[..rows * n]
    }

    /// The images' blocks (`chans` × pixels each) side by side (`chans` × n), in wide.
    fn gather<'a>(&self, images: &[f32], chans: usize, n: usize, wide: &'a mut [f32]) -> &'a [f32] {
        let px = self.pixels();
        for (i, img) in images.chunks(chans * px).enumerate() {
            for (c, row) in img.chunks(px).enumerate() {
                wide[c * n + i * px..][..px].copy_from_slice(row);
            }
        }
        &wide[..chans * n]
    }
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("image kernel: {what} must be f32") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("image kernel: {what} must be contiguous"),
    }
}

/// y = conv(x, w) + b: x (B, cin, H, W), w (cout, cin, k, k), b (cout); padding k/2.
struct Conv {
    stride: usize,
}

/// dx from (dy, w).
struct ConvGradInput {
    geom: Geom,
}

/// [dw | db] (flat) from (x, dy).
struct ConvGradWeight {
    geom: Geom,
}

fn geom(x: &Layout, w: &Layout, stride: usize) -> Result<Geom> {
    let (b, cin, h, wd) = x.shape().dims4()?;
    let (cout, cin_w, k, k2) = w.shape().dims4()?;
    if cin != cin_w || k != k2 || k.is_multiple_of(2) {
        candle_core::bail!("conv: input {:?} and kernel {:?} do not match", x.shape(), w.shape());
    }
    Ok(Geom { b, cin, cout, h, w: wd, k, s: stride })
}

impl CustomOp3 for Conv {
    fn name(&self) -> &'static str {
        "langevin-conv2d"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = geom(xl, wl, self.stride)?;
        let (x, w, bias) = (contiguous(xs, xl, "input")?, contiguous(ws, wl, "kernel")?, contiguous(bs, bl, "bias")?);
        if bias.len() != g.cout {
            candle_core::bail!("conv: {} biases for {} channels", bias.len(), g.cout);
        }
        let (group, px) = (g.group(), g.pixels());
        let mut y = vec![0.0f32; g.b * g.out_len()];
        y.par_chunks_mut(group * g.out_len()).zip(x.par_chunks(group * g.in_len())).for_each(|(yc, xc)| {
            Scratch::with(&g, |sc| {
                let n = xc.len() / g.in_len() * px;
                // One image of a pointwise convolution: the product with the image itself, into y.
                let alone = n == px && g.pointwise();
                let dst: &mut [f32] = if n == px { &mut *yc } else { &mut sc.out[..g.cout * n] };
                for (c, row) in dst.chunks_mut(n).enumerate() {
                    row.fill(bias[c]);
                }
                let src: &[f32] = if alone { xc } else { g.unfold_group(xc, &mut sc.cols, n, 0..g.cin) };
                product(Parallelism::None, Acc::Add, [g.cout, n, g.rows()], dst, (w, g.rows(), 1), (src, n, 1));
                if n > px {
                    g.scatter(&sc.out[..g.cout * n], yc, g.cout);
                }
            })
        });
        Ok((CpuStorage::F32(y), Shape::from((g.b, g.cout, g.ho(), g.wo()))))
    }
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = geom(x.layout(), w.layout(), self.stride)?;
        let dy = dy.contiguous()?;
        let dx = dy.apply_op2_no_bwd(w, &ConvGradInput { geom: g })?;
        let dwb = x.apply_op2_no_bwd(&dy, &ConvGradWeight { geom: g })?;
        let n = g.cout * g.rows();
        let dw = dwb.narrow(0, 0, n)?.reshape(w.shape())?;
        let db = dwb.narrow(0, n, g.cout)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp2 for ConvGradInput {
    fn name(&self) -> &'static str {
        "langevin-conv2d-grad-input"
    }
    fn cpu_fwd(&self, ds: &CpuStorage, dl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let (dy, w) = (contiguous(ds, dl, "gradient")?, contiguous(ws, wl, "kernel")?);
        let (group, px) = (g.group(), g.pixels());
        let mut dx = vec![0.0f32; g.b * g.in_len()];
        dx.par_chunks_mut(group * g.in_len()).zip(dy.par_chunks(group * g.out_len())).for_each(|(dxc, dyc)| {
            Scratch::with(&g, |sc| {
                let n = dyc.len() / g.out_len() * px;
                let src: &[f32] = if n == px { dyc } else { g.gather(dyc, g.cout, n, &mut sc.wide) };
                // cols-gradient (rows × n) = Wᵀ (rows × cout) · dy (cout × n). A pointwise
                // convolution's cols are the image: for one image, the product is its gradient.
                let alone = n == px && g.pointwise();
                let dst: &mut [f32] = if alone { &mut *dxc } else { &mut sc.cols[..g.rows() * n] };
                product(Parallelism::None, Acc::Set, [g.rows(), n, g.cout], dst, (w, 1, g.rows()), (src, n, 1));
                if g.pointwise() && !alone {
                    g.scatter(&sc.cols[..g.rows() * n], dxc, g.cin);
                } else if !g.pointwise() {
                    for (i, dxb) in dxc.chunks_mut(g.in_len()).enumerate() {
                        g.fold(&mut sc.cols[i * px..], n, dxb);
                    }
                }
            })
        });
        Ok((CpuStorage::F32(dx), Shape::from((g.b, g.cin, g.h, g.w))))
    }
}

impl CustomOp2 for ConvGradWeight {
    fn name(&self) -> &'static str {
        "langevin-conv2d-grad-weight"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geom;
        let (x, dy) = (contiguous(xs, xl, "input")?, contiguous(ds, dl, "gradient")?);
        let (n, kk, px, group) = (g.cout * g.rows(), g.k * g.k, g.pixels(), g.group());
        // Tasks by blocks of input channels, each over every image in order: the weight
        // gradient runs in parallel even for a batch of one group, and each entry's sum keeps
        // one order whatever the thread count.
        let blocks: Vec<Range<usize>> =
            (0..g.cin).step_by(GRAD_CHANNELS).map(|c| c..(c + GRAD_CHANNELS).min(g.cin)).collect();
        let parts: Vec<Vec<f32>> = blocks
            .par_iter()
            .map(|chans| {
                let rb = chans.len() * kk;
                // dW for these channels' rows, cout × rb.
                let mut part = vec![0.0f32; g.cout * rb];
                Scratch::with(&g, |sc| {
                    for (xc, dyc) in x.chunks(group * g.in_len()).zip(dy.chunks(group * g.out_len())) {
                        let cols = xc.len() / g.in_len() * px;
                        let d: &[f32] = if cols == px { dyc } else { g.gather(dyc, g.cout, cols, &mut sc.wide) };
                        let src: &[f32] = if cols == px && g.pointwise() {
                            &xc[chans.start * px..chans.end * px]
                        } else {
                            g.unfold_group(xc, &mut sc.cols, cols, chans.clone())
                        };
                        // dWᵀ (rb × cout) += cols (rb × cols) · dyᵀ (cols × cout), written into
                        // dW (cout × rb): both operands are read along their rows.
                        product_strided(
                            Parallelism::None,
                            Acc::Add,
                            [rb, g.cout, cols],
                            (&mut part, 1, rb),
                            (src, cols, 1),
                            (d, 1, cols),
                        );
                    }
                });
                part
            })
            .collect();
        let mut out = vec![0.0f32; n + g.cout];
        for (chans, part) in blocks.iter().zip(&parts) {
            let rb = chans.len() * kk;
            for (c, row) in part.chunks(rb).enumerate() {
                out[c * g.rows() + chans.start * kk..][..rb].copy_from_slice(row);
            }
        }
        for dyb in dy.chunks(g.out_len()) {
            for (d, row) in out[n..].iter_mut().zip(dyb.chunks(px)) {
                *d += row.iter().sum::<f32>();
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(n + g.cout)))
    }
}

/// conv(x, w) + b with padding k/2 and the given stride: by im2col and `gemm` on the CPU (this
/// module), by candle's convolution on other devices.
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, stride: usize) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv { stride })
    } else {
        let (k, c) = (w.dim(2)?, w.dim(0)?);
        x.conv2d(w, k / 2, stride, 1, 1)?.broadcast_add(&b.reshape((1, c, 1, 1))?)
    }
}

/// GroupNorm of x (B, C, H, W) with scale γ and shift β per channel, followed by SiLU when
/// `silu` (as every normalization of the U-Net but attention's is).
struct GroupNorm {
    groups: usize,
    eps: f64,
    silu: bool,
}

/// [dx | dγ | dβ] (flat) from (x, [γ | β], dy).
struct GroupNormGrad {
    norm: GroupNorm,
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

impl GroupNorm {
    /// Mean and 1/σ of each group of one image (C·H·W values; sums in f64).
    fn stats(&self, xb: &[f32]) -> Vec<(f32, f32)> {
        let per = xb.len() / self.groups;
        xb.chunks(per)
            .map(|g| {
                let mean = g.iter().map(|&v| v as f64).sum::<f64>() / per as f64;
                let var = g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / per as f64;
                (mean as f32, (1.0 / (var + self.eps).sqrt()) as f32)
            })
            .collect()
    }
}

impl CustomOp3 for GroupNorm {
    fn name(&self) -> &'static str {
        "langevin-group-norm"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = xl.shape().dims4()?;
        let (x, gamma, beta) =
            (contiguous(xs, xl, "input")?, contiguous(gs, gl, "scale")?, contiguous(bs, bl, "shift")?);
        if !c.is_multiple_of(self.groups) || gamma.len() != c || beta.len() != c {
            candle_core::bail!("group norm: {c} channels, {} groups, {} scales", self.groups, gamma.len());
        }
        let hw = h * w;
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(c * hw).zip(x.par_chunks(c * hw)).for_each(|(yb, xb)| {
            let stats = self.stats(xb);
            let cg = c / self.groups;
            for ch in 0..c {
                let (mean, inv) = stats[ch / cg];
                let (a, s) = (gamma[ch] * inv, beta[ch] - gamma[ch] * inv * mean);
                for (o, &v) in yb[ch * hw..(ch + 1) * hw].iter_mut().zip(&xb[ch * hw..(ch + 1) * hw]) {
                    let t = a * v + s;
                    *o = if self.silu { t * sigmoid(t) } else { t };
                }
            }
        });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = gamma.dim(0)?;
        let gb = Tensor::cat(&[gamma, beta], 0)?;
        let norm = GroupNorm { groups: self.groups, eps: self.eps, silu: self.silu };
        let all = x.apply_op3_no_bwd(&gb, &dy.contiguous()?, &GroupNormGrad { norm })?;
        let n = x.elem_count();
        Ok((Some(all.narrow(0, 0, n)?.reshape(x.shape())?), Some(all.narrow(0, n, c)?), Some(all.narrow(0, n + c, c)?)))
    }
}

impl CustomOp3 for GroupNormGrad {
    fn name(&self) -> &'static str {
        "langevin-group-norm-grad"
    }
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = xl.shape().dims4()?;
        let (x, gb, dy) = (contiguous(xs, xl, "input")?, contiguous(gs, gl, "scale")?, contiguous(ds, dl, "gradient")?);
        let (gamma, beta) = gb.split_at(c);
        let (hw, cg, norm) = (h * w, c / self.norm.groups, &self.norm);
        let per = cg * hw;
        let mut dx = vec![0.0f32; x.len()];
        // Per image: dx, and the image's contributions to dγ and dβ (added in image order).
        let parts: Vec<Vec<f32>> = dx
            .par_chunks_mut(c * hw)
            .zip(x.par_chunks(c * hw).zip(dy.par_chunks(c * hw)))
            .map(|(dxb, (xb, dyb))| {
                let stats = norm.stats(xb);
                let mut part = vec![0.0f32; 2 * c];
                let mut g = vec![0.0f32; per];
                for (grp, &(mean, inv)) in stats.iter().enumerate() {
                    // g = ∂L/∂x̂ over the group; sums of g and g·x̂.
                    let (mut sg, mut sgx) = (0.0f64, 0.0f64);
                    for j in 0..cg {
                        let ch = grp * cg + j;
                        for i in 0..hw {
                            let at = ch * hw + i;
                            let xh = (xb[at] - mean) * inv;
                            let mut d = dyb[at];
                            if norm.silu {
                                let t = gamma[ch] * xh + beta[ch];
                                let s = sigmoid(t);
                                d *= s * (1.0 + t * (1.0 - s));
                            }
                            part[ch] += d * xh;
                            part[c + ch] += d;
                            let gv = d * gamma[ch];
                            g[j * hw + i] = gv;
                            sg += gv as f64;
                            sgx += (gv * xh) as f64;
                        }
                    }
                    let (mg, mgx) = ((sg / per as f64) as f32, (sgx / per as f64) as f32);
                    for j in 0..cg {
                        let ch = grp * cg + j;
                        for i in 0..hw {
                            let at = ch * hw + i;
                            let xh = (xb[at] - mean) * inv;
                            dxb[at] = inv * (g[j * hw + i] - mg - xh * mgx);
                        }
                    }
                }
                part
            })
            .collect();
        let mut out = dx;
        let mut sums = vec![0.0f32; 2 * c];
        for p in &parts {
            sums.iter_mut().zip(p).for_each(|(a, v)| *a += v);
        }
        out.extend_from_slice(&sums);
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * c)))
    }
}

/// GroupNorm over `groups` groups (ε = 1e-6) with per-channel γ, β, then SiLU when `silu`:
/// one fused kernel and its hand-written gradient on the CPU, candle's composition elsewhere.
pub fn group_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, groups: usize, silu: bool) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        return x.contiguous()?.apply_op3(gamma, beta, GroupNorm { groups, eps: 1e-6, silu });
    }
    use candle_core::Module;
    let c = gamma.dim(0)?;
    let y = candle_nn::GroupNorm::new(gamma.clone(), beta.clone(), c, groups, 1e-6)?.forward(x)?;
    if silu { y.silu() } else { Ok(y) }
}

/// Nearest-neighbour up-sampling by 2 of (B, C, H, W).
struct Upsample;

/// The sum of each 2 × 2 block (the up-sampling's gradient).
struct Downsum;

impl CustomOp1 for Upsample {
    fn name(&self) -> &'static str {
        "langevin-upsample2"
    }
    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = xl.shape().dims4()?;
        let x = contiguous(xs, xl, "input")?;
        let mut y = vec![0.0f32; 4 * x.len()];
        y.par_chunks_mut(4 * w).zip(x.par_chunks(w)).for_each(|(out, line)| {
            for (i, &v) in line.iter().enumerate() {
                out[2 * i] = v;
                out[2 * i + 1] = v;
                out[2 * w + 2 * i] = v;
                out[2 * w + 2 * i + 1] = v;
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((b, c, 2 * h, 2 * w))))
    }
    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&Downsum)?))
    }
}

impl CustomOp1 for Downsum {
    fn name(&self) -> &'static str {
        "langevin-downsum2"
    }
    fn cpu_fwd(&self, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h2, w2) = dl.shape().dims4()?;
        let dy = contiguous(ds, dl, "gradient")?;
        let (h, w) = (h2 / 2, w2 / 2);
        let mut dx = vec![0.0f32; b * c * h * w];
        dx.par_chunks_mut(w).zip(dy.par_chunks(4 * w)).for_each(|(line, d)| {
            for (i, o) in line.iter_mut().enumerate() {
                *o = d[2 * i] + d[2 * i + 1] + d[2 * w + 2 * i] + d[2 * w + 2 * i + 1];
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from((b, c, h, w))))
    }
}

/// Nearest-neighbour up-sampling by 2 of (B, C, H, W).
pub fn upsample2(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        return x.contiguous()?.apply_op1(Upsample);
    }
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?.broadcast_as((b, c, h, 2, w, 2))?.contiguous()?.reshape((b, c, 2 * h, 2 * w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut r = langevin::rng::LaneRng::new(seed, 0);
        let mut v = vec![0.0f32; n];
        r.fill_normal(&mut v);
        v
    }

    /// Forward, input gradient and weight gradient equal candle's convolution (to float
    /// rounding) for 1 × 1, 3 × 3 and 5 × 5 kernels, strides 1 and 2, odd and even sizes,
    /// one image a product and groups of images; a wrong padding, a transposed kernel, a
    /// missing image in the weight gradient or a misplaced image of a group fails.
    #[test]
    fn matches_candle_forward_and_gradients() -> Result<()> {
        let dev = Device::Cpu;
        // Shapes that make groups of several images (a partial last one: 12 × 12 makes groups
        // of 4), pointwise and strided groups, a kernel wider than the image, and more input
        // channels than one task of the weight gradient takes (pointwise ones among them).
        for (b, cin, cout, h, w, k, s) in [
            (3, 4, 5, 6, 6, 3, 1),
            (10, 3, 2, 5, 7, 3, 2),
            (2, 6, 4, 4, 4, 1, 1),
            (9, 2, 3, 8, 8, 3, 2),
            (10, 3, 4, 12, 12, 3, 1),
            (11, 5, 6, 4, 4, 1, 1),
            (7, 2, 3, 6, 6, 3, 2),
            (3, 2, 2, 2, 3, 5, 1),
            (1, 3, 2, 24, 24, 3, 1),
            (5, 19, 4, 6, 6, 3, 1),
            (2, 10, 3, 24, 24, 1, 1),
        ] {
            let x = Var::from_vec(values(b * cin * h * w, 1), (b, cin, h, w), &dev)?;
            let wt = Var::from_vec(values(cout * cin * k * k, 2), (cout, cin, k, k), &dev)?;
            let probe = Tensor::from_vec(
                values(b * cout * h.div_ceil(s) * w.div_ceil(s), 3),
                (b, cout, h.div_ceil(s), w.div_ceil(s)),
                &dev,
            )?;
            let bias = Var::from_vec(values(cout, 4), cout, &dev)?;
            let ours = conv2d(x.as_tensor(), wt.as_tensor(), bias.as_tensor(), s)?;
            let theirs = x
                .as_tensor()
                .conv2d(wt.as_tensor(), k / 2, s, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, cout, 1, 1))?)?;
            assert_eq!(ours.dims(), theirs.dims());
            let diff =
                |a: &Tensor, b: &Tensor| -> Result<f32> { (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>() };
            assert!(diff(&ours, &theirs)? < 1e-4, "forward {:?}", (b, cin, cout, h, w, k, s));
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&x, &wt, &bias] {
                let (a, c) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
                assert!(diff(a, c)? < 1e-3, "gradient {:?}", (b, cin, cout, h, w, k, s));
            }
        }
        Ok(())
    }

    /// The fused GroupNorm (+ SiLU) and its gradient equal candle's composition; the
    /// up-sampling and its gradient equal the broadcast version.
    #[test]
    fn group_norm_and_upsample_match_candle() -> Result<()> {
        let dev = Device::Cpu;
        let (b, c, h, w) = (3, 8, 4, 5);
        let x = Var::from_vec(values(b * c * h * w, 5).iter().map(|v| 2.0 * v + 0.5).collect(), (b, c, h, w), &dev)?;
        let gamma = Var::from_vec(values(c, 6), c, &dev)?;
        let beta = Var::from_vec(values(c, 7), c, &dev)?;
        let probe = Tensor::from_vec(values(b * c * h * w, 8), (b, c, h, w), &dev)?;
        let diff =
            |a: &Tensor, b: &Tensor| -> Result<f32> { (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>() };
        for (groups, silu) in [(2, true), (4, false), (8, true)] {
            use candle_core::Module;
            let ours = group_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), groups, silu)?;
            let gn = candle_nn::GroupNorm::new(gamma.as_tensor().clone(), beta.as_tensor().clone(), c, groups, 1e-6)?;
            let theirs = gn.forward(x.as_tensor())?;
            let theirs = if silu { theirs.silu()? } else { theirs };
            assert!(diff(&ours, &theirs)? < 1e-5, "forward, {groups} groups");
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&x, &gamma, &beta] {
                let (a, e) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
                assert!(diff(a, e)? < 1e-4, "gradient, {groups} groups, silu {silu}");
            }
        }
        let up = upsample2(x.as_tensor())?;
        let reference = x
            .as_tensor()
            .reshape((b, c, h, 1, w, 1))?
            .broadcast_as((b, c, h, 2, w, 2))?
            .contiguous()?
            .reshape((b, c, 2 * h, 2 * w))?;
        assert_eq!(diff(&up, &reference)?, 0.0);
        let probe2 = Tensor::from_vec(values(4 * b * c * h * w, 9), (b, c, 2 * h, 2 * w), &dev)?;
        let g1 = (up * &probe2)?.sum_all()?.backward()?;
        let g2 = (reference * &probe2)?.sum_all()?.backward()?;
        assert!(diff(g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap())? < 1e-5);
        Ok(())
    }
}
