//! A training step and a forward pass of the U-Net presets on the CPU, for BENCHMARKS.md.
//! Run: cargo run --release -p langevin-learn --example unet_step -- [preset] [size] [batch] [steps]
use candle_core::Device;
use langevin_learn::checkpoint::new_run;
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::train::TrainConfig;
use langevin_learn::unet::UnetConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).map_or("tiny", |s| s.as_str());
    let size: usize = args.get(2).map_or(Ok(16), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let steps: usize = args.get(4).map_or(Ok(7), |s| s.parse())?;
    let set = langevin_learn::images::shapes(512, if size == 32 { 32 } else { 16 }, 0);
    let unet = UnetConfig::preset(preset, 3, set.shape.height, set.shape.width)?;
    let net = NetConfig { unet: Some(unet), ..Default::default() };
    let train = TrainConfig { batch, steps: 1000, warmup: 10, ..Default::default() };
    let mut new = new_run(&set.x, "shapes", 0, 0.1, &LadderOptions::default(), net, train, &Device::Cpu)?;
    println!("{} parameters", new.trainer.net.param_count());
    new.trainer.train_step()?;
    // The best and the median of n steps: the best is the least disturbed by other work on
    // the machine.
    let n = steps.max(1);
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = std::time::Instant::now();
            new.trainer.train_step().map(|_| start.elapsed().as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    let (best, median) = (times[0], times[n / 2]);
    println!(
        "{preset} {size}px batch {batch}: best {:.1} ms/step ({:.1} images/s), median {:.1} ms",
        1e3 * best,
        batch as f64 / best,
        1e3 * median
    );
    Ok(())
}
