//! A schedule-driven sampler is a short function over a score and a schedule (k-diffusion's
//! style): here annealed Langevin on one batch of particles, with a callback that watches σ,
//! then the same function on many blocks in parallel with `map_blocks`.
//!
//! `cargo run --release --example annealed_function -p langevin`
use langevin::block::Block;
use langevin::rng::ParticleRng;
use langevin::sampler::{AnnealConfig, Init, Ladder, annealed_langevin, map_blocks};
use langevin::target::builtin;

fn main() -> langevin::Result<()> {
    let toy = builtin::build("ncsn-toy", &[])?;
    // Song & Ermon's toy settings: σ 20 → 1 in 10 levels, T = 100, ε = 0.1, denoised.
    let cfg = AnnealConfig::new(Ladder::geometric(20.0, 1.0, 10)?, 100, 0.1, true)?;

    // One batch: 1,024 particles from U[−8, 8]², particle i drawing from stream (seed 7, i).
    let mut x = Block::zeros(2, 1024);
    let mut rng = ParticleRng::new(7, 0, x.stride());
    Init::Uniform { lo: -8.0, hi: 8.0 }.fill(&mut x, 0, &mut rng);
    annealed_langevin(toy.as_ref(), &mut x, &cfg, true, &mut rng, &mut |step| {
        if step.index % 100 == 99 {
            let right = (0..step.x.len()).filter(|&i| step.x.row(0)[i] + step.x.row(1)[i] > 0.0).count();
            println!(
                "level {:2} σ = {:7.3}: {:.3} of the particles on the (5,5) side",
                step.level + 1,
                step.sigma,
                right as f64 / 1024.0
            );
        }
        Ok(())
    })?;

    // Many batches in parallel: the same particles, whatever the block size.
    let blocks = map_blocks(100_000, 2, 256, 7, &Init::Uniform { lo: -8.0, hi: 8.0 }, |_first, mut x, rng| {
        annealed_langevin(toy.as_ref(), &mut x, &cfg, true, rng, &mut |_| Ok(()))?;
        Ok((0..x.len()).filter(|&i| x.row(0)[i] + x.row(1)[i] > 0.0).count())
    })?;
    let right: usize = blocks.iter().sum();
    println!("100,000 particles: weight of (5,5) = {:.4} (exact 0.8)", right as f64 / 100_000.0);
    Ok(())
}
