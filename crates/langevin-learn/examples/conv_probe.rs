//! A 3 × 3 convolution of 64 images, forward and both gradients, through candle's own CPU
//! convolution and through the kernels of `conv.rs`, for BENCHMARKS.md (best of 3 runs of 10).
//! Run: cargo run --release -p langevin-learn --example conv_probe
use candle_core::{DType, Device, Tensor, Var};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    for (b, c, s) in [(64usize, 32usize, 16usize), (64, 64, 8)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, s, s), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c, c, 3, 3), &dev)?)?;
        let bias = Tensor::zeros(c, DType::F32, &dev)?;
        let ours = langevin_learn::conv::conv2d(x.as_tensor(), w.as_tensor(), &bias, 1)?;
        let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?;
        let diff = (ours - theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "the two convolutions differ by {diff}");
        for name in ["candle", "conv.rs"] {
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = std::time::Instant::now();
                for _ in 0..10 {
                    let y = if name == "candle" {
                        x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?
                    } else {
                        langevin_learn::conv::conv2d(x.as_tensor(), w.as_tensor(), &bias, 1)?
                    };
                    let _ = y.sqr()?.sum_all()?.backward()?;
                }
                best = best.min(t.elapsed().as_secs_f64() * 100.0);
            }
            let gflops = 3.0 * 2.0 * (b * s * s * c * c * 9) as f64 / (best * 1e-3) / 1e9;
            println!(
                "{name:8} {b} images, {c} channels, {s}×{s}: forward + backward {best:.1} ms ({gflops:.1} GFLOP/s)"
            );
        }
    }
    Ok(())
}
