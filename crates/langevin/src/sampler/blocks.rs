//! The deterministic block runner under every sampler.
//!
//! Particles are cut into blocks of a size that depends on N, d and the field's batch hint only
//! (never on the thread count). Each block gets its particles' own random streams
//! ([`ParticleRng`]: one generator per particle, seeded from (seed, particle index)), so a
//! particle's path does not depend on the block it lands in either. Blocks run in parallel with
//! rayon, each writing only its own rows; failures are reported at the earliest
//! (step, particle), the same for any thread count.

use super::Init;
use crate::block::Block;
use crate::error::{Error, Result};
use crate::invalid_field;
use crate::rng::ParticleRng;
use crate::vmath::LANES;
use rayon::prelude::*;

/// Block size from N and d alone: at most 256 particles, at most ~16k values per coordinate
/// array (so a block's arrays stay in L2), and at least 16 blocks when N allows it, so two or
/// more threads have work even for a few chains. Always a multiple of [`LANES`].
pub fn auto_block_size(particles: usize, dim: usize) -> usize {
    let by_cache = (16_384 / dim.max(1)) / LANES * LANES;
    let by_count = particles.div_ceil(16).div_ceil(LANES) * LANES;
    256.min(by_cache.max(LANES)).min(by_count.max(LANES))
}

/// The block size a run uses: `requested` if given (at least 1), otherwise from the field's
/// batch hint. Cheap analytic fields (hint ≤ 256) get [`auto_block_size`] (block-major: a block
/// stays in cache through many steps); batch-hungry fields such as networks (hint > 256) get
/// blocks of up to `hint` particles, so each evaluation is one large batch (step-major).
pub fn block_size(particles: usize, dim: usize, hint: usize, requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => Err(invalid_field!("block_size", "`block_size` must be at least 1")),
        Some(b) => Ok(b),
        None if hint > 256 => Ok(hint.min(particles).max(1)),
        None => Ok(auto_block_size(particles, dim).min(hint.max(LANES))),
    }
}

/// One of `count` parts of a run (a job-array task, an MPI rank): shard `index` runs a
/// contiguous range of the run's blocks, so the shards' outputs, concatenated in order, are the
/// run's output bit for bit (every per-block computation, adaptive solvers included, sees the
/// same particles as in the whole run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards the run is cut into.
    pub count: usize,
}

impl Shard {
    /// The blocks (of `n_blocks`) this shard runs: `[n_blocks·k/N, n_blocks·(k+1)/N)`, so the
    /// shards differ by at most one block. Errors name a shard that is out of range or a run
    /// with fewer blocks than shards.
    pub fn blocks(&self, n_blocks: usize, block: usize) -> Result<std::ops::Range<usize>> {
        let Shard { index: k, count: n } = *self;
        if n == 0 || k >= n {
            return Err(invalid_field!(
                "shard",
                "shard {k}/{n}: the index must be below the count (shards are numbered 0 to {})",
                n.saturating_sub(1)
            ));
        }
        if n > n_blocks {
            return Err(invalid_field!(
                "shard",
                "a run of {n_blocks} blocks of {block} particles cannot be cut into {n} shards; \
                 use at most {n_blocks} shards, or more particles"
            ));
        }
        Ok(n_blocks * k / n..n_blocks * (k + 1) / n)
    }
}

/// Positions of particles `first .. first + len` from `init`, with their random streams (what
/// every runner starts a block from; a caller stepping a kernel itself starts here too).
pub fn start_block(d: usize, first: usize, len: usize, seed: u64, init: &Init) -> (Block, ParticleRng) {
    let mut x = Block::zeros(d, len);
    let mut rng = ParticleRng::new(seed, first, x.stride());
    init.fill(&mut x, first, &mut rng);
    (x, rng)
}

/// Run `f(first, positions, streams)` on every block of `n` particles in `d` dimensions, in
/// parallel, and return the blocks' results in particle order.
///
/// `f` receives the block's initial positions (from `init`) and the block's per-particle
/// streams. A [`Error::NonFinite`] error carries the block-local particle index; the runner
/// turns it into the global one and, of several failing blocks, reports the one with the
/// earliest (step, particle).
pub fn map_blocks<T, F>(n: usize, d: usize, block: usize, seed: u64, init: &Init, f: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize, Block, &mut ParticleRng) -> Result<T> + Sync,
{
    map_blocks_in(n, d, block, None, seed, init, f)
}

/// [`map_blocks`] on the blocks of one shard of the run (all blocks when `shard` is None).
pub fn map_blocks_in<T, F>(
    n: usize,
    d: usize,
    block: usize,
    shard: Option<Shard>,
    seed: u64,
    init: &Init,
    f: F,
) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize, Block, &mut ParticleRng) -> Result<T> + Sync,
{
    if n == 0 {
        return Err(invalid_field!("particles", "`particles` must be at least 1"));
    }
    if block == 0 {
        return Err(invalid_field!("block_size", "`block_size` must be at least 1"));
    }
    init.check(d, n)?;
    let blocks = match shard {
        Some(s) => s.blocks(n.div_ceil(block), block)?,
        None => 0..n.div_ceil(block),
    };
    let results: Vec<Result<T>> = blocks
        .into_par_iter()
        .map(|b| {
            let first = b * block;
            let (x, mut rng) = start_block(d, first, block.min(n - first), seed, init);
            f(first, x, &mut rng).map_err(|e| match e {
                Error::NonFinite { step, particle, detail, suggest } => {
                    Error::NonFinite { step, particle: first + particle, detail, suggest }
                }
                e => e,
            })
        })
        .collect();
    let mut out = Vec::with_capacity(results.len());
    let mut first_error: Option<Error> = None;
    for r in results {
        match r {
            Ok(t) => out.push(t),
            Err(e) => {
                let earlier = match (&first_error, &e) {
                    (None, _) => true,
                    (
                        Some(Error::NonFinite { step: s0, particle: p0, .. }),
                        Error::NonFinite { step: s1, particle: p1, .. },
                    ) => (s1, p1) < (s0, p0),
                    _ => false,
                };
                if earlier {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_depend_on_n_d_and_the_hint_only() {
        assert_eq!(auto_block_size(100_000, 2), 256);
        assert_eq!(auto_block_size(64, 100), 16);
        assert_eq!(auto_block_size(1000, 2), 64);
        assert_eq!(auto_block_size(10_000, 1000), 16);
        assert_eq!(auto_block_size(1, 1), 16);
        for n in [1, 17, 1000, 123_457] {
            for d in [1, 2, 10, 100, 5000] {
                assert_eq!(auto_block_size(n, d) % LANES, 0);
            }
        }
        // A network's hint gives one large block (step-major); an analytic one the cache rule.
        assert_eq!(block_size(5000, 2, 1 << 20, None).unwrap(), 5000);
        assert_eq!(block_size(100_000, 2, 256, None).unwrap(), 256);
        assert_eq!(block_size(100_000, 2, 64, None).unwrap(), 64);
        assert_eq!(block_size(10, 2, 256, Some(3)).unwrap(), 3);
        assert_eq!(block_size(10, 2, 256, Some(0)).unwrap_err().field(), Some("block_size"));
    }

    #[test]
    fn the_earliest_failure_is_reported_with_its_global_particle() {
        let init = Init::Point(vec![0.0]);
        let r: Result<Vec<()>> = map_blocks(100, 1, 16, 0, &init, |first, _, _| {
            // Blocks from particle 32 on fail at step 5 (particle 3 of the block), block 16 at
            // step 7: the report is step 5, particle 35.
            let step = if first >= 32 {
                5
            } else if first == 16 {
                7
            } else {
                return Ok(());
            };
            Err(Error::NonFinite { step, particle: 3, detail: String::new(), suggest: None })
        });
        match r.unwrap_err() {
            Error::NonFinite { step, particle, .. } => assert_eq!((step, particle), (5, 35)),
            e => panic!("{e}"),
        }
    }
}
