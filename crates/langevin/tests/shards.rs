//! Shards of a run: shard k runs a contiguous range of the run's blocks, so the shards'
//! outputs, concatenated in order, are the whole run's output bit for bit, for every sampler;
//! `merge` rebuilds the whole run's samples and report from them.

use langevin::sample::{SAMPLER_NAMES, SampleOptions, Sampled, Sampler, ShardPart, merge, sample};
use langevin::sampler::Shard;
use langevin::target::{Target, builtin};
use serde_json::Value;

fn opts(name: &str, particles: usize) -> SampleOptions {
    let mut o = SampleOptions {
        sampler: Sampler::from_name(name).unwrap(),
        particles: Some(particles),
        seed: 7,
        ..Default::default()
    };
    match name {
        "ula" | "baoab" | "obabo" | "underdamped-em" => o.steps = Some(60),
        "mala" => {
            o.steps = Some(40);
            o.warmup = Some(50);
        }
        "reverse-sde" | "reverse-diffusion" | "pc" | "corrector" | "ddpm" => o.steps = Some(40),
        _ => {}
    }
    o
}

fn shards(t: &dyn Target, o: &SampleOptions, count: usize) -> Vec<Sampled> {
    (0..count)
        .map(|index| {
            let so = SampleOptions { shard: Some(Shard { index, count }), ..o.clone() };
            sample(t, &so).unwrap_or_else(|e| panic!("{:?} shard {index}/{count}: {e}", o.sampler.name()))
        })
        .collect()
}

/// The report without what differs between runs of the same thing (timing, pool size).
fn comparable(s: &Sampled) -> Value {
    let mut v = serde_json::to_value(&s.report).unwrap();
    let m = v.as_object_mut().unwrap();
    for k in ["seconds", "particle_steps_per_second", "threads", "kinetic_temperature"] {
        m.remove(k);
    }
    v
}

fn parts(sh: &[Sampled]) -> Vec<ShardPart> {
    sh.iter()
        .map(|s| ShardPart {
            samples: s.run.samples.clone(),
            shard: s.report.shard.clone().expect("a shard's report has its record"),
            seconds: s.run.seconds,
        })
        .collect()
}

/// Every sampler, 1,000 particles (not a multiple of the block size) cut into 3 shards:
/// concatenated shard outputs equal the whole run's bytes, and the merged report equals the
/// whole run's (every field but timing; the kinetic temperature to rounding).
#[test]
fn every_sampler_shards_concatenate_to_the_whole_run_and_merge_to_its_report() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    for name in SAMPLER_NAMES {
        let o = opts(name, 1000);
        let whole = sample(t.as_ref(), &o).unwrap();
        let sh = shards(t.as_ref(), &o, 3);
        let mut cat: Vec<f32> = Vec::new();
        for s in &sh {
            assert!(s.run.samples.nrows() > 0 && s.run.samples.nrows() < 1000, "{name}");
            cat.extend(s.run.samples.iter());
        }
        let all: Vec<f32> = whole.run.samples.iter().cloned().collect();
        assert!(
            cat.len() == all.len() && cat.iter().zip(&all).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: shards differ from the whole run"
        );
        // merge in a shuffled order
        let mut p = parts(&sh);
        p.reverse();
        let m = merge(t.as_ref(), &o, &p).unwrap();
        assert_eq!(m.run.samples, whole.run.samples, "{name}");
        assert_eq!(comparable(&m), comparable(&whole), "{name}: merged report");
        match (m.report.kinetic_temperature, whole.report.kinetic_temperature) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12 * b.abs(), "{name}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }
}

/// MALA adapts one step size from the pilot (the blocks of the first 4,096 particles): with
/// 6,000 particles in 4 shards the later shards run the pilot beside their own blocks during
/// warm-up, and every shard ends at the whole run's step size; thinned draws (draw-major rows)
/// merge back in the whole run's order, with ESS and R-hat over all chains.
#[test]
fn mala_shards_share_the_pilots_step_size_and_thinned_draws_merge_in_order() {
    let t = builtin::build("gmm40", &[]).unwrap();
    let mut o = opts("mala", 6000);
    o.thin = Some(10);
    let whole = sample(t.as_ref(), &o).unwrap();
    let sh = shards(t.as_ref(), &o, 4);
    for s in &sh {
        assert_eq!(s.run.step_size.to_bits(), whole.run.step_size.to_bits());
    }
    let m = merge(t.as_ref(), &o, &parts(&sh)).unwrap();
    assert_eq!(m.run.samples, whole.run.samples);
    assert_eq!(comparable(&m), comparable(&whole));
    assert!(m.report.chains.is_some());
    // A shard's own figures are over its own chains.
    assert_eq!(
        sh[1].report.particles,
        sh[1].report.shard.as_ref().unwrap().end - sh[1].report.shard.as_ref().unwrap().first
    );
}

#[test]
fn bad_shards_and_bad_merges_are_refused_by_name() {
    let t = builtin::build("ncsn-toy", &[]).unwrap();
    let o = opts("ula", 1000);
    let e = |so: SampleOptions| sample(t.as_ref(), &so).err().expect("refused").to_string();
    assert!(e(SampleOptions { shard: Some(Shard { index: 3, count: 3 }), ..o.clone() }).contains("below the count"));
    assert!(e(SampleOptions { shard: Some(Shard { index: 0, count: 0 }), ..o.clone() }).contains("below the count"));
    assert!(e(SampleOptions { shard: Some(Shard { index: 0, count: 500 }), ..o.clone() }).contains("at most"));
    assert!(
        e(SampleOptions { shard: Some(Shard { index: 0, count: 2 }), record_every: Some(5), ..o.clone() })
            .contains("trajectories")
    );
    let sh = shards(t.as_ref(), &o, 3);
    let p = parts(&sh);
    let m = |p: Vec<ShardPart>, o: &SampleOptions| merge(t.as_ref(), o, &p).err().expect("refused").to_string();
    let mut missing = parts(&sh);
    missing.remove(1);
    assert!(m(missing, &o).contains("shard 1 of 3 missing"));
    let mut twice = parts(&sh);
    twice[2] = parts(&sh).remove(0);
    assert!(m(twice, &o).contains("given twice"));
    let mut truncated = parts(&sh);
    truncated[1].samples = truncated[1].samples.slice(ndarray::s![..10, ..]).to_owned();
    assert!(m(truncated, &o).contains("truncated"));
    // shards of a 1,000-particle run merged as a 1,200-particle run
    assert!(m(parts(&sh), &SampleOptions { particles: Some(1200), ..o.clone() }).contains("1200"));
    // a shard of another cut
    let other = shards(t.as_ref(), &o, 2);
    let mut mixed = parts(&sh);
    mixed[0] = parts(&other).remove(0);
    assert!(m(mixed, &o).contains("cut differently"));
    assert_eq!(p.len(), 3);
}

/// Exact draws come from one stream, so a shard draws up to its end and keeps its rows: that
/// is the whole run's rows only if every exact sampler's first m draws are the same for any n.
#[test]
fn exact_draws_are_a_prefix_of_a_larger_draw_for_every_target() {
    use langevin::rng::LaneRng;
    let mut checked = Vec::new();
    for spec in [
        "ncsn-toy",
        "gmm40",
        "gaussian:dim=5,cond=10,rotate=1",
        "double-well",
        "banana",
        "ring",
        "funnel:dim=4",
        "many-well:dim=4",
        "muller-brown",
    ] {
        let (t, _) = langevin::target::load_target(spec).unwrap();
        let Some(big) = t.sample_exact(1000, &mut LaneRng::new(3, 0)) else { continue };
        let small = t.sample_exact(337, &mut LaneRng::new(3, 0)).unwrap();
        assert_eq!(small, big.slice(ndarray::s![..337, ..]), "{spec}");
        checked.push(spec);
    }
    assert!(checked.len() >= 6, "exact samplers checked: {checked:?}");
}
