//! Normals per second: one generator per block (LaneRng) against one per particle
//! (ParticleRng), on a block of 256 particles in d = 2 and d = 100 (what ULA on the NCSN toy and
//! MALA on a 100-d Gaussian draw per step). `cargo run --release --example rng_speed -p langevin`
use langevin::rng::{LaneRng, ParticleRng};
use std::time::Instant;
fn main() {
    for (d, stride) in [(2usize, 256usize), (100, 16)] {
        let mut buf = vec![0.0f32; d * stride];
        let reps = 20_000_000 / (d * stride);
        let best = |buf: &mut [f32], f: &mut dyn FnMut(&mut [f32])| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        f(buf);
                    }
                    std::hint::black_box(&buf);
                    (reps * d * stride) as f64 / t.elapsed().as_secs_f64()
                })
                .fold(0.0, f64::max)
        };
        let mut lane = LaneRng::new(1, 0);
        let a = best(&mut buf, &mut |b| lane.fill_normal(b));
        let mut part = ParticleRng::new(1, 0, stride);
        let p = best(&mut buf, &mut |b| part.fill_normal(b));
        println!("d = {d}, stride {stride}: LaneRng {a:.3e}/s, ParticleRng {p:.3e}/s ({:.2}x)", p / a);
    }
}
