//! A DSM training step of a 3×256 MLP at batch 1024 on 2-D data, for BENCHMARKS.md: the full
//! CPU step (the hand-written passes of `mlp.rs`, with the batch draw, clipping, Adam and EMA)
//! beside candle's graph on the same network (forward + loss, then + backward), which was the
//! CPU path before `mlp.rs` and remains the path of other devices.
//! Run: CANDLE_NUM_THREADS=1 cargo run --release -p langevin-learn --example step
use candle_core::{Device, Tensor};
use langevin::rng::LaneRng;
use langevin_learn::data;
use langevin_learn::ladder::Ladder;
use langevin_learn::net::{NetConfig, ScoreNet};
use langevin_learn::train::{TrainConfig, Trainer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn time_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(start.elapsed().as_secs_f64() * 1000.0 / n as f64);
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x = data::generate("moons", 20_000, &mut LaneRng::new(0, 0))?;
    let (tr, ho) = data::split(&x, 0.1, &mut LaneRng::new(0, 1));
    let net = ScoreNet::new(2, NetConfig { width: 256, depth: 3, ..Default::default() }, 0, &Device::Cpu)?;
    let ladder = Ladder::geometric(4.0, 0.01, 28)?;
    let mut t = Trainer::new(net, ladder, TrainConfig { batch: 1024, ..Default::default() }, tr, ho)?;
    for _ in 0..20 {
        t.train_step()?;
    }
    let b = 1024;
    let mut rng = LaneRng::new(1, 2);
    let mut xs = vec![0.0f32; b * 2];
    rng.fill_normal(&mut xs);
    let xt = Tensor::from_vec(xs, (b, 2), &Device::Cpu)?;
    let ls = Tensor::from_vec(vec![-1.0f32; b], (b, 1), &Device::Cpu)?;
    let z = xt.affine(0.5, 0.1)?;
    let loss = |net: &ScoreNet| -> candle_core::Result<Tensor> {
        ((net.forward(&xt, &ls)? + &z)?.sqr()?.sum(1)? * 0.5)?.mean_all()
    };
    let n = 300;
    let fwd = time_ms(n, || {
        loss(&t.net).unwrap();
    });
    let fwd_bwd = time_ms(n, || {
        loss(&t.net).unwrap().backward().unwrap();
    });
    let full = time_ms(n, || {
        t.train_step().unwrap();
    });
    println!("candle graph: forward + loss             {fwd:.3} ms");
    println!("candle graph: forward + loss + backward  {fwd_bwd:.3} ms");
    println!("full CPU training step (mlp.rs)          {full:.3} ms");
    Ok(())
}
