//! A 3 × 3 convolution's forward pass and both gradients at the U-Net presets' shapes, through
//! the kernels of `conv.rs` and (with `candle`) through candle's own CPU convolution, for
//! BENCHMARKS.md: the best of 8 runs of each.
//! Run: cargo run --release -p langevin-learn --example conv_probe -- [tiny|cifar] [candle]
use candle_core::{DType, Device, Tensor, Var};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let candle = args.iter().any(|a| a == "candle");
    // (images, channels, side): the levels of each preset at its benchmark's training batch.
    let shapes: &[(usize, usize, usize)] = if args.iter().any(|a| a == "cifar") {
        &[(8, 128, 32), (8, 256, 16), (8, 256, 8), (8, 256, 4)]
    } else {
        &[(64, 32, 16), (64, 64, 8), (64, 64, 4)]
    };
    let dev = Device::Cpu;
    let mut total = [0.0f64; 2];
    for &(b, c, s) in shapes {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, s, s), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c, c, 3, 3), &dev)?)?;
        let bias = Var::from_tensor(&Tensor::zeros(c, DType::F32, &dev)?)?;
        let probe = Tensor::randn(0f32, 1., (b, c, s, s), &dev)?;
        let ours = langevin_learn::conv::conv2d(x.as_tensor(), w.as_tensor(), bias.as_tensor(), 1)?;
        let theirs = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?;
        let diff = (ours - theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-3, "the two convolutions differ by {diff}");
        for (i, name) in ["conv.rs", "candle"].into_iter().enumerate().take(if candle { 2 } else { 1 }) {
            let mut best = f64::INFINITY;
            for _ in 0..8 {
                let t = std::time::Instant::now();
                let y = if i == 1 {
                    x.as_tensor()
                        .conv2d(w.as_tensor(), 1, 1, 1, 1)?
                        .broadcast_add(&bias.as_tensor().reshape((1, c, 1, 1))?)?
                } else {
                    langevin_learn::conv::conv2d(x.as_tensor(), w.as_tensor(), bias.as_tensor(), 1)?
                };
                let _ = (y * &probe)?.sum_all()?.backward()?;
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            total[i] += best;
            let gflops = 3.0 * 2.0 * (b * s * s * c * c * 9) as f64 / (best * 1e-3) / 1e9;
            println!(
                "{name:8} {b} images, {c} channels, {s}×{s}: forward + backward {best:.1} ms ({gflops:.1} GFLOP/s)"
            );
        }
    }
    println!(
        "total: conv.rs {:.1} ms{}",
        total[0],
        if candle { format!(", candle {:.1} ms", total[1]) } else { String::new() }
    );
    Ok(())
}
