use langevin::sampler::{RunConfig, Ula, run};
use langevin::target::builtin;
fn main() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    for block in [256, 512, 1024, 2048] {
        let cfg = RunConfig {
            particles: 100_000,
            steps: 1000,
            step_size: 0.1,
            seed: 1,
            block_size: Some(block),
            ..Default::default()
        };
        let best = (0..5)
            .map(|_| {
                let out = run(&Ula::new(t.as_ref(), true), &t.default_init(), &cfg).unwrap();
                out.particle_steps as f64 / out.seconds
            })
            .fold(0.0, f64::max);
        println!("block {block}: {best:.3e} particle-steps/s");
    }
}
