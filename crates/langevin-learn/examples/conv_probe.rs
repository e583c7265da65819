use candle_core::{D, Device, Tensor, Var};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn im2col_conv(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let cout = w.dim(0)?;
    let xp = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let mut cols = Vec::new();
    for dy in 0..3 {
        for dx in 0..3 {
            cols.push(xp.narrow(2, dy, h)?.narrow(3, dx, wd)?);
        }
    }
    let cols = Tensor::stack(&cols, 4)?; // (B,C,H,W,9)
    let cols = cols.permute((0, 2, 3, 1, 4))?.reshape((b * h * wd, c * 9))?;
    let wm = w.reshape((cout, c * 9))?.t()?;
    let y = cols.matmul(&wm)?; // (BHW, cout)
    y.reshape((b, h, wd, cout))?.permute((0, 3, 1, 2))?.contiguous()
}
fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    for (b, c, s) in [(64usize, 32usize, 16usize), (64, 64, 8)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, s, s), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (c, c, 3, 3), &dev)?)?;
        let y1 = x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?;
        let y2 = im2col_conv(x.as_tensor(), w.as_tensor())?;
        println!("max diff {}", (y1 - y2)?.abs()?.flatten_all()?.max(D::Minus1)?);
        for (name, f) in [("candle", 0), ("im2col", 1)] {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                let y = if f == 0 {
                    x.as_tensor().conv2d(w.as_tensor(), 1, 1, 1, 1)?
                } else {
                    langevin_learn::conv::conv2d(
                        x.as_tensor(),
                        w.as_tensor(),
                        &Tensor::zeros(c, candle_core::DType::F32, &dev)?,
                        1,
                    )?
                };
                let _ = y.sqr()?.sum_all()?.backward()?;
            }
            let ms = t.elapsed().as_secs_f64() * 100.0;
            let gf = 3.0 * 2.0 * (b * s * s * c * c * 9) as f64 / (ms * 1e-3) / 1e9;
            println!("{name} b{b} c{c} {s}px fwd+bwd {ms:.1} ms ({gf:.1} GFLOP/s)");
        }
    }
    Ok(())
}
