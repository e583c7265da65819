//! `sample` under `mpirun` (the `mpi` feature): the ranks split the particles as shards
//! (rank r runs shard r of size), rank 0 gathers the shards and writes the whole run's samples
//! and report, as `merge` would (bit for bit the single-process run). Without `mpirun`, or with
//! one rank, it is the plain command.
//!
//! Communication per run: one all-gather of 24 bytes per rank (settings hash, then status),
//! and one gather to rank 0 of every rank's samples (4·N·d·draws bytes in all) and its shard
//! record (a few hundred bytes of JSON). Sampling itself exchanges nothing: MALA's step size
//! comes from the pilot blocks, which every rank runs.

use crate::sample::{self, SampleArgs, settings_argv};
use anyhow::{Result, anyhow, bail};
use langevin::sample::{ShardPart, ShardReport, merge};
use langevin::sampler::Shard;
use mpi::traits::*;
use serde_json::json;

/// An error already reported by the rank that owns it: the others exit non-zero quietly.
#[derive(Debug)]
pub struct ReportedElsewhere;

impl std::fmt::Display for ReportedElsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("another rank reported the error")
    }
}

impl std::error::Error for ReportedElsewhere {}

/// Values of at most this many elements go in one message (MPI counts are 32-bit).
const CHUNK: usize = 1 << 26;

pub fn run(a: &SampleArgs, quiet: bool) -> Result<()> {
    let Some(universe) = mpi::initialize() else {
        bail!("MPI could not be initialized (was it initialized twice?)");
    };
    let world = universe.world();
    if world.size() == 1 {
        return sample::run(a, quiet);
    }
    let result = run_ranks(&world, a, quiet);
    // The rank that owns an error prints it before any rank exits: mpirun stops the whole job
    // when the first process exits non-zero, and a quiet rank exiting first could cut the
    // message off (seen on CI: the job ended with only mpirun's notice).
    let failed = match &result {
        Err(e) if e.downcast_ref::<ReportedElsewhere>().is_none() => {
            crate::report_error(e);
            true
        }
        Err(_) => true,
        Ok(()) => false,
    };
    world.barrier();
    if failed { Err(ReportedElsewhere.into()) } else { Ok(()) }
}

fn run_ranks(world: &mpi::topology::SimpleCommunicator, a: &SampleArgs, quiet: bool) -> Result<()> {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let started = std::time::Instant::now();
    // Every rank must run the same flags: compare a hash of each rank's.
    let mine = langevin::io::fnv1a(settings_argv().join("\u{1f}").bytes());
    let mut hashes = vec![0u64; size];
    world.all_gather_into(&mine, &mut hashes[..]);
    if let Some(r) = hashes.iter().position(|h| *h != hashes[0]) {
        if rank == 0 {
            bail!(
                "rank {r} runs other flags than rank 0 (`sample {}` here): under mpirun every rank runs the same command",
                settings_argv().join(" ")
            );
        }
        return Err(ReportedElsewhere.into());
    }
    if a.shard.is_some() {
        if rank == 0 {
            bail!("--shard does not apply under mpirun: the {size} ranks split the particles themselves; drop --shard");
        }
        return Err(ReportedElsewhere.into());
    }
    // Run this rank's shard; only rank 0 writes (and shows progress).
    let local = SampleArgs { out: None, report: None, trajectory: None, ..a.clone() };
    let shard = Shard { index: rank, count: size };
    let result = if rank == 0 {
        // Rank 0 checks the outputs before the run (the others have none).
        crate::report::guard(&[], &[("out", a.out.as_deref()), ("report", a.report.as_deref())])
            .and_then(|_| sample::compute(&local, Some(shard), quiet))
    } else {
        sample::compute(&local, Some(shard), true)
    };
    // Status: [failed, step, particle] from every rank; the earliest failing particle's rank
    // reports (a bad input fails every rank alike: rank 0 reports).
    let key = match &result {
        Ok(_) => [0u64, 0, 0],
        Err(e) => match e.downcast_ref::<langevin::Error>() {
            Some(langevin::Error::NonFinite { step, particle, .. }) => [1, *step as u64, *particle as u64],
            _ => [1, u64::MAX, u64::MAX],
        },
    };
    let mut flat_keys = vec![0u64; 3 * size];
    world.all_gather_into(&key[..], &mut flat_keys[..]);
    let keys: Vec<[u64; 3]> = flat_keys.chunks(3).map(|k| [k[0], k[1], k[2]]).collect();
    let failed: Vec<usize> = (0..size).filter(|r| keys[*r][0] == 1).collect();
    if let Some(first) = failed.iter().min_by_key(|r| (keys[**r][1], keys[**r][2], **r)) {
        return match result {
            Err(e) if rank == *first => Err(e),
            _ => Err(ReportedElsewhere.into()),
        };
    }
    let c = result.expect("checked");
    let samples = &c.out.run.samples;
    let record = serde_json::to_string(&c.out.report.shard)?;
    let root = world.process_at_rank(0);
    if rank != 0 {
        root.send(record.as_bytes());
        let flat = samples.as_slice().ok_or_else(|| anyhow!("samples not contiguous"))?;
        for chunk in flat.chunks(CHUNK) {
            root.send(chunk);
        }
        // Wait for rank 0 to write, so that every rank exits with its status.
        let mut ok = 0u8;
        root.broadcast_into(&mut ok);
        return if ok == 1 { Ok(()) } else { Err(ReportedElsewhere.into()) };
    }
    let d = samples.ncols();
    let mut parts = vec![ShardPart {
        samples: samples.clone(),
        shard: c.out.report.shard.clone().ok_or_else(|| anyhow!("no shard record"))?,
        seconds: c.out.run.seconds,
    }];
    for r in 1..size {
        let from = world.process_at_rank(r as i32);
        let (bytes, _) = from.receive_vec::<u8>();
        let shard: Option<ShardReport> = serde_json::from_slice(&bytes)?;
        let shard = shard.ok_or_else(|| anyhow!("rank {r} sent no shard record"))?;
        let rows = (shard.end - shard.first) * shard.draws;
        let mut flat = vec![0f32; rows * d];
        for chunk in flat.chunks_mut(CHUNK) {
            from.receive_into(chunk);
        }
        let samples = ndarray::Array2::from_shape_vec((rows, d), flat)?;
        parts.push(ShardPart { samples, shard, seconds: 0.0 });
    }
    let opts = langevin::sample::SampleOptions { shard: None, ..c.opts.clone() };
    let written = merge(c.target.as_ref(), &opts, &parts).map(|mut merged| {
        // The run's wall-clock time on rank 0 (the shards ran side by side).
        let seconds = started.elapsed().as_secs_f64();
        merged.run.seconds = seconds;
        merged.report.seconds = seconds;
        merged.report.particle_steps_per_second = merged.run.particle_steps as f64 / seconds;
        merged.report.threads = rayon::current_num_threads() * size;
        merged
    });
    let result = written.map_err(anyhow::Error::from).and_then(|merged| {
        let extra = [
            ("mpi_ranks", json!(size)),
            ("samples_checksum", json!(langevin::io::checksum(merged.run.samples.view()))),
        ];
        sample::write_outputs(a, c.target.as_ref(), &opts, &merged, &[], &extra, quiet)
    });
    let mut ok = u8::from(result.is_ok());
    root.broadcast_into(&mut ok);
    result
}
