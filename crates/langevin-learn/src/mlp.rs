//! The score network's MLP on the CPU, forward and backward written out by hand.
//!
//! The network of [`crate::net`] is a plain MLP (SiLU hidden layers, linear output) on
//! [x, sin 2πωu, cos 2πωu, one-hot label]. Through candle a training step built a graph, ran
//! its generic backward and copied every gradient out: its matrix products ran at about a third
//! of the machine's SGEMM throughput. Here one step is the ten matrix products it needs, made by
//! the same `gemm` crate candle calls (transposes are strides, never copies), the fused
//! bias + SiLU kernels of [`crate::ops`], and nothing else: activations live in a [`Tape`]
//! reused from step to step, gradients are written straight into the optimizer's buffers.
//!
//! Determinism: `gemm` splits a product over blocks of the output and reduces each element in
//! one fixed order, and the bias gradients add fixed chunks of rows in a fixed order, so
//! results do not depend on the number of threads (tested in `tests/`).
//!
//! candle's graph stays for other devices (CUDA) and is the reference this module is tested
//! against (`matches_candle_forward_and_gradients`).

use crate::ops;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// A view of the network's parameters: `params[2i]` is layer i's weight, (`sizes[i]` ×
/// `sizes[i+1]`) row-major, and `params[2i+1]` its bias; `freqs` are the Fourier frequencies.
#[derive(Clone, Copy)]
pub struct Layers<'a> {
    /// Data dimension.
    pub dim: usize,
    /// Classes of a conditional network (0: unconditional).
    pub classes: usize,
    /// Layer widths, input first.
    pub sizes: &'a [usize],
    /// Weights and biases in checkpoint order.
    pub params: &'a [Vec<f32>],
    /// Fourier frequencies of the noise input.
    pub freqs: &'a [f32],
}

/// Rows per chunk: a batch is cut into chunks of this many rows, and each chunk runs the whole
/// network forward and backward on its own thread, so a step synchronizes the threads once, not
/// at every layer (at every layer the threads' handovers took a fifth of a step on 2 cores).
/// The weight gradients are the chunks' partial gradients added in chunk order. With more
/// threads than chunks, each chunk's matrix products split over the spare threads by blocks of
/// the output (`gemm` never splits a dot product), so results do not depend on the thread count.
pub const CHUNK_ROWS: usize = 512;

/// The threads each of `chunks` parallel chunks may give its matrix products.
fn inner(chunks: usize) -> Parallelism {
    match rayon::current_num_threads() / chunks.max(1) {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// Activations of one forward pass, kept for the backward pass (reused across steps).
#[derive(Default)]
pub struct Tape {
    input: Vec<f32>,
    chunks: Vec<ChunkTape>,
    /// The output (rows × dim).
    pub out: Vec<f32>,
}

/// One chunk's activations and partial gradients.
#[derive(Default)]
struct ChunkTape {
    rows: usize,
    /// Pre-activations, one per layer (with bias for hidden layers; the last is the output
    /// without bias).
    pre: Vec<Vec<f32>>,
    /// SiLU activations of the hidden layers.
    act: Vec<Vec<f32>>,
    /// σ of the hidden pre-activations (for SiLU's derivative).
    sig: Vec<Vec<f32>>,
    out: Vec<f32>,
    grad_a: Vec<f32>,
    grad_pre: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

/// Whether [`product`] overwrites or adds to its destination.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acc {
    Set,
    Add,
}

/// A strided matrix operand: (values, row stride, column stride); element [i, l] is
/// values[i · row stride + l · column stride].
pub(crate) type Strided<'a> = (&'a [f32], usize, usize);

/// dst (m × n, row-major) = A B (`Acc::Set`) or dst += A B (`Acc::Add`) for A (m × k) and
/// B (k × n), on `par` threads.
pub(crate) fn product(par: Parallelism, acc: Acc, mnk: [usize; 3], dst: &mut [f32], a: Strided, b: Strided) {
    product_strided(par, acc, mnk, (dst, mnk[1], 1), a, b)
}

/// [`product`] into a strided destination: element [i, j] of the m × n result is
/// dst[i · row stride + j · column stride].
pub(crate) fn product_strided(
    par: Parallelism,
    acc: Acc,
    [m, n, k]: [usize; 3],
    (dst, d_rs, d_cs): (&mut [f32], usize, usize),
    a: Strided,
    b: Strided,
) {
    let ((a, a_rs, a_cs), (b, b_rs, b_cs)) = (a, b);
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() > (m - 1) * d_rs + (n - 1) * d_cs, "matmul: destination too small");
    if k == 0 {
        if acc == Acc::Set {
            (0..m).for_each(|i| (0..n).for_each(|j| dst[i * d_rs + j * d_cs] = 0.0));
        }
        return;
    }
    assert!(a.len() > (m - 1) * a_rs + (k - 1) * a_cs, "matmul: left operand too small");
    assert!(b.len() > (k - 1) * b_rs + (n - 1) * b_cs, "matmul: right operand too small");
    // SAFETY: the asserts above keep every index of the three operands in bounds, and dst
    // does not alias a or b (distinct borrows).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            d_cs as isize,
            d_rs as isize,
            acc == Acc::Add,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            if acc == Acc::Add { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

impl Layers<'_> {
    fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// The network's input rows [x, sin 2πωu, cos 2πωu, one-hot] for data rows `x`, noise
    /// inputs `noise` (one per row) and labels (`None`: the "no label" class; ignored by an
    /// unconditional network).
    pub fn input(&self, x: &[f32], noise: &[f32], labels: Option<&[Option<usize>]>, out: &mut Vec<f32>) {
        let (d, f) = (self.dim, self.freqs.len());
        let k = if self.classes == 0 { 0 } else { self.classes + 1 };
        let width = d + 2 * f + k;
        out.clear();
        out.resize(noise.len() * width, 0.0);
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        // Rows in parallel: each row is a pure function of its own inputs.
        out.par_chunks_mut(width * 64).enumerate().for_each(|(b, block)| {
            for (i, row) in block.chunks_exact_mut(width).enumerate() {
                let r = b * 64 + i;
                row[..d].copy_from_slice(&x[r * d..(r + 1) * d]);
                for (j, w) in self.freqs.iter().enumerate() {
                    let p = noise[r] * w * two_pi;
                    row[d + j] = p.sin();
                    row[d + f + j] = p.cos();
                }
                if k > 0 {
                    let c = labels.and_then(|l| l[r]).unwrap_or(self.classes);
                    row[d + 2 * f + c] = 1.0;
                }
            }
        });
    }

    /// One chunk's forward pass from its input rows `input`; keeps the activations.
    fn forward_chunk(&self, par: Parallelism, input: &[f32], c: &mut ChunkTape) {
        let depth = self.depth();
        let rows = input.len() / self.sizes[0];
        c.rows = rows;
        c.pre.resize_with(depth, Vec::new);
        c.act.resize_with(depth - 1, Vec::new);
        c.sig.resize_with(depth - 1, Vec::new);
        for i in 0..depth {
            let (fan_in, fan_out) = (self.sizes[i], self.sizes[i + 1]);
            let (w, b) = (&self.params[2 * i], &self.params[2 * i + 1]);
            let mut pre = std::mem::take(&mut c.pre[i]);
            resize(&mut pre, rows * fan_out);
            let a: &[f32] = if i == 0 { input } else { &c.act[i - 1] };
            product(par, Acc::Set, [rows, fan_out, fan_in], &mut pre, (a, fan_in, 1), (w, fan_out, 1));
            if i + 1 < depth {
                resize(&mut c.act[i], rows * fan_out);
                resize(&mut c.sig[i], rows * fan_out);
                ops::bias_silu_save_into(&mut pre, b, &mut c.act[i], &mut c.sig[i]);
            } else {
                resize(&mut c.out, rows * fan_out);
                ops::bias_add_rows_into(&pre, b, &mut c.out);
            }
            c.pre[i] = pre;
        }
    }

    /// One chunk's backward pass: its partial parameter gradients from the gradient `grad_out`
    /// of the loss with respect to its output rows.
    fn backward_chunk(&self, par: Parallelism, input: &[f32], grad_out: &[f32], c: &mut ChunkTape) {
        let depth = self.depth();
        let rows = c.rows;
        c.grads.resize_with(self.params.len(), Vec::new);
        let mut g_pre = std::mem::take(&mut c.grad_pre);
        let mut g_a = std::mem::take(&mut c.grad_a);
        g_pre.clear();
        g_pre.extend_from_slice(grad_out);
        for i in (0..depth).rev() {
            let (fan_in, fan_out) = (self.sizes[i], self.sizes[i + 1]);
            let a: &[f32] = if i == 0 { input } else { &c.act[i - 1] };
            // dW = Aᵀ G (A: rows × fan_in, G: rows × fan_out); db = column sums of G.
            resize(&mut c.grads[2 * i], fan_in * fan_out);
            product(par, Acc::Set, [fan_in, fan_out, rows], &mut c.grads[2 * i], (a, 1, fan_in), (&g_pre, fan_out, 1));
            c.grads[2 * i + 1].clear();
            c.grads[2 * i + 1].resize(fan_out, 0.0);
            ops::column_sums_into(&g_pre, &mut c.grads[2 * i + 1]);
            if i > 0 {
                // dA = G Wᵀ, then through the previous layer's bias + SiLU.
                resize(&mut g_a, rows * fan_in);
                product(
                    par,
                    Acc::Set,
                    [rows, fan_in, fan_out],
                    &mut g_a,
                    (&g_pre, fan_out, 1),
                    (&self.params[2 * i], 1, fan_out),
                );
                resize(&mut g_pre, rows * fan_in);
                ops::silu_grad_saved_into(&c.pre[i - 1], &c.sig[i - 1], &g_a, &mut g_pre);
            }
        }
        c.grad_pre = g_pre;
        c.grad_a = g_a;
    }

    /// Forward pass over the rows in `tape`'s input buffer (filled by [`Layers::input`] through
    /// [`Tape::input_mut`]), keeping the activations for [`Layers::backward`]; the output is
    /// `tape.out`.
    pub fn forward(&self, tape: &mut Tape) {
        let width = self.sizes[0];
        let rows = tape.input.len() / width;
        let n_chunks = rows.div_ceil(CHUNK_ROWS);
        tape.chunks.resize_with(n_chunks, ChunkTape::default);
        let par = inner(n_chunks);
        tape.chunks
            .par_iter_mut()
            .zip(tape.input.par_chunks(CHUNK_ROWS * width))
            .for_each(|(c, input)| self.forward_chunk(par, input, c));
        tape.out.clear();
        for c in &tape.chunks {
            tape.out.extend_from_slice(&c.out);
        }
    }

    /// Gradients of a loss with respect to every parameter, given its gradient `grad_out` with
    /// respect to the output of the last [`Layers::forward`] on `tape`; written into `grads`
    /// (same layout as the parameters).
    pub fn backward(&self, tape: &mut Tape, grad_out: &[f32], grads: &mut Vec<Vec<f32>>) {
        let (width, d) = (self.sizes[0], self.dim);
        assert_eq!(grad_out.len(), tape.out.len(), "backward: gradient of the wrong size");
        let par = inner(tape.chunks.len());
        tape.chunks
            .par_iter_mut()
            .zip(tape.input.par_chunks(CHUNK_ROWS * width).zip(grad_out.par_chunks(CHUNK_ROWS * d)))
            .for_each(|(c, (input, g))| self.backward_chunk(par, input, g, c));
        grads.resize_with(self.params.len(), Vec::new);
        for (j, g) in grads.iter_mut().enumerate() {
            g.clear();
            g.extend_from_slice(&tape.chunks[0].grads[j]);
        }
        // Partial gradients in chunk order, each parameter tensor in parallel.
        grads.par_iter_mut().enumerate().for_each(|(j, g)| {
            for c in &tape.chunks[1..] {
                ops::add_into(g, &c.grads[j]);
            }
        });
    }

    /// Output rows of the network (no activations kept), for inference: chunks of rows in
    /// parallel, each with buffers of its own (nothing is held across the nested parallel
    /// calls, where a thread may pick up another chunk while it waits).
    pub fn infer(&self, x: &[f32], noise: &[f32], labels: Option<&[Option<usize>]>, out: &mut Vec<f32>) {
        let (d, depth, width) = (self.dim, self.depth(), self.sizes[0]);
        let mut all_input = Vec::new();
        self.input(x, noise, labels, &mut all_input);
        out.clear();
        out.resize(noise.len() * d, 0.0);
        let par = inner(noise.len().div_ceil(CHUNK_ROWS));
        out.par_chunks_mut(CHUNK_ROWS * d).zip(all_input.par_chunks(CHUNK_ROWS * width)).for_each(|(o, first)| {
            let rows = o.len() / d;
            let (mut input, mut pre, mut act) = (first.to_vec(), Vec::new(), Vec::new());
            for i in 0..depth {
                let (fan_in, fan_out) = (self.sizes[i], self.sizes[i + 1]);
                let (w, b) = (&self.params[2 * i], &self.params[2 * i + 1]);
                resize(&mut pre, rows * fan_out);
                product(par, Acc::Set, [rows, fan_out, fan_in], &mut pre, (&input, fan_in, 1), (w, fan_out, 1));
                if i + 1 < depth {
                    resize(&mut act, rows * fan_out);
                    ops::bias_silu_rows_into(&pre, b, &mut act);
                    std::mem::swap(&mut input, &mut act);
                } else {
                    ops::bias_add_rows_into(&pre, b, o);
                }
            }
        });
    }
}

impl Tape {
    /// The input buffer, to fill with [`Layers::input`].
    pub fn input_mut(&mut self) -> &mut Vec<f32> {
        &mut self.input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetConfig, ScoreNet};
    use candle_core::{Device, Tensor};
    use langevin::rng::LaneRng;

    /// A conditional network with random weights, and a batch of 700 rows (one full chunk and
    /// a partial one) with labels, some of them "no label".
    type Setup = (ScoreNet, Vec<f32>, Vec<f32>, Vec<Option<usize>>, Vec<f32>);

    fn setup() -> Setup {
        let config = NetConfig { width: 48, depth: 3, fourier: 4, fourier_scale: 1.0, classes: 3, unet: None };
        let net = ScoreNet::new(3, config, 7, &Device::Cpu).unwrap();
        let n = 700;
        let mut rng = LaneRng::new(1, 2);
        let mut x = vec![0.0f32; n * 3];
        rng.fill_normal(&mut x);
        let noise: Vec<f32> = (0..n).map(|i| -2.0 + 4.0 * i as f32 / n as f32).collect();
        let labels: Vec<Option<usize>> = (0..n).map(|i| (i % 4 != 0).then_some(i % 3)).collect();
        let mut target = vec![0.0f32; n * 3];
        rng.fill_normal(&mut target);
        (net, x, noise, labels, target)
    }

    /// Forward, and the gradient of Σ ½‖F − T‖² / n, by this module.
    fn ours(
        net: &ScoreNet,
        x: &[f32],
        noise: &[f32],
        labels: &[Option<usize>],
        target: &[f32],
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let (sizes, params, freqs) = (net.sizes(), net.param_values().unwrap(), net.freqs_vec().unwrap());
        let layers = Layers { dim: 3, classes: 3, sizes: &sizes, params: &params, freqs: &freqs };
        let mut tape = Tape::default();
        layers.input(x, noise, Some(labels), tape.input_mut());
        layers.forward(&mut tape);
        let n = noise.len() as f32;
        let g: Vec<f32> = tape.out.iter().zip(target).map(|(o, t)| (o - t) / n).collect();
        let mut grads = Vec::new();
        layers.backward(&mut tape, &g, &mut grads);
        let mut inferred = Vec::new();
        layers.infer(x, noise, Some(labels), &mut inferred);
        assert!(inferred == tape.out, "inference and the training forward pass differ");
        (tape.out.clone(), grads)
    }

    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// The hand-written passes agree with candle's graph (forward and every parameter's
    /// gradient), for a conditional network on a batch that is not a whole number of chunks.
    #[test]
    fn matches_candle_forward_and_gradients() {
        let (net, x, noise, labels, target) = setup();
        let (out, grads) = ours(&net, &x, &noise, &labels, &target);
        let n = noise.len();
        let dev = Device::Cpu;
        let xt = Tensor::from_slice(&x, (n, 3), &dev).unwrap();
        let st = Tensor::from_slice(&noise, (n, 1), &dev).unwrap();
        let ct = net.one_hot(&labels).unwrap();
        let f = net.forward_cond(&xt, &st, Some(&ct)).unwrap();
        let reference: Vec<f32> = f.flatten_all().unwrap().to_vec1().unwrap();
        assert!(max_rel(&out, &reference) < 1e-5, "forward differs: {}", max_rel(&out, &reference));
        let tt = Tensor::from_slice(&target, (n, 3), &dev).unwrap();
        let loss = ((f - tt).unwrap().sqr().unwrap().sum_all().unwrap() * (0.5 / n as f64)).unwrap();
        let g = loss.backward().unwrap();
        for (k, (name, var)) in net.params().iter().enumerate() {
            let r: Vec<f32> = g.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert!(max_rel(&grads[k], &r) < 1e-4, "{name}: gradient differs by {}", max_rel(&grads[k], &r));
        }
        // The check can fail: a gradient of another loss (here twice the loss) does not match.
        let doubled: Vec<f32> = grads[0].iter().map(|v| 2.0 * v).collect();
        let r: Vec<f32> = g.get(net.params()[0].1.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(max_rel(&doubled, &r) > 0.5);
    }

    /// Outputs and gradients are the same bits with 1, 2, 3 and 5 threads (5: each of the two
    /// chunks splits its matrix products over two threads).
    #[test]
    fn same_bits_whatever_the_thread_count() {
        let (net, x, noise, labels, target) = setup();
        let run = |t: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| ours(&net, &x, &noise, &labels, &target))
        };
        let one = run(1);
        for t in [2, 3, 5] {
            let other = run(t);
            assert!(one.0 == other.0 && one.1 == other.1, "{t} threads differ from one");
        }
    }
}
