//! Learn a score from data and generate, without the command line: a new run on the moons
//! data, `fit` with observers (metrics log, checkpoints), then annealed generation.
//!
//! `cargo run --release --example train_and_generate -p langevin-learn -- /tmp/moons-run 2000`
use candle_core::Device;
use langevin::rng::LaneRng;
use langevin_learn::checkpoint::{RunDir, TrainedModel, new_run};
use langevin_learn::data;
use langevin_learn::fit::{CheckpointEvery, MetricsLog, fit};
use langevin_learn::generate::{GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::train::TrainConfig;
use std::sync::Arc;

fn main() -> langevin::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("runs/example-moons", |s| s.as_str());
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let run = RunDir::new(dir);
    let dev = Device::Cpu;
    let mut trainer = if run.file("config.json").exists() {
        run.resume(&dev, Some(steps))?
    } else {
        let x = data::generate("moons", 10_000, &mut LaneRng::new(0, 0xDA7A))?;
        let train = TrainConfig { steps, warmup: 200.min(steps / 10), ..Default::default() };
        let new = new_run(&x, "moons", 0, 0.1, &LadderOptions::default(), NetConfig::default(), train, &dev)?;
        run.create()?;
        langevin::io::write_matrix(&run.file("train.npy"), new.train_raw.view(), &[])?;
        langevin::io::write_matrix(&run.file("heldout.npy"), new.heldout_raw.view(), &[])?;
        run.save_config(&new.config)?;
        new.trainer
    };
    let mut log = MetricsLog::open(&run, 100, 500)?;
    let mut ckpt = CheckpointEvery::new(run.clone(), 1000);
    let s = fit(&mut trainer, steps, &mut [&mut log, &mut ckpt])?;
    println!("trained {} → {} steps in {:.1} s, held-out loss {:?}", s.first, s.steps, s.seconds, s.heldout_loss);
    let model = Arc::new(TrainedModel::load(&run.path, &dev)?);
    let g = generate(model, &GenerateOptions { n: 2000, seed: 1, ..Default::default() })?;
    println!("generated {} samples; report: {}", g.samples.nrows(), serde_json::to_string(&g.report).expect("json"));
    Ok(())
}
