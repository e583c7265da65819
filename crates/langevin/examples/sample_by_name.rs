//! Choose a target and a sampler by name, let the library derive the rest, and read the notes
//! and the typed report: what `langevin sample` does, in a few lines.
//!
//! `cargo run --release --example sample_by_name -p langevin -- ncsn-toy annealed`
use langevin::sample::{SampleOptions, Sampler, sample};
use langevin::target::load_target;

fn main() -> langevin::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map_or("ncsn-toy", |s| s.as_str());
    let sampler = args.get(2).map_or("annealed", |s| s.as_str());
    let (t, _warnings) = load_target(target)?;
    let out = sample(
        t.as_ref(),
        &SampleOptions {
            sampler: Sampler::from_name(sampler)?,
            particles: Some(20_000),
            seed: 1,
            ..Default::default()
        },
    )?;
    for note in &out.resolved.notes {
        println!("note: {note}");
    }
    let r = &out.report;
    println!("{} on {}: {} particles, {:.3} s", r.sampler, r.target, r.particles, r.seconds);
    println!("mean {:?} (exact {:?})", r.statistics.mean, r.statistics.exact_mean);
    if let Some(w) = &r.statistics.mode_weights {
        println!("mode weights {w:?} (target {:?})", r.statistics.mode_weights_expected.as_deref().unwrap_or(&[]));
    }
    println!("{}", serde_json::to_string(&r.annealing).expect("serializable"));
    Ok(())
}
