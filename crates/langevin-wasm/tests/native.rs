//! The playground's entry points, natively: the same particles as the library's `sample` (what
//! the command line runs) for the same seed, and the page's bad inputs refused with a message.

use langevin::sample::{SampleOptions, Sampler, StepSize, sample};
use langevin::target::load_target;
use langevin_wasm::{Config, Playground};

fn config(json: &str) -> Config {
    serde_json::from_str(json).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// k steps of the playground = `langevin sample --steps k` (positions interleaved x, y).
fn same_as_sample(cfg: &str, sampler: Sampler, step_size: StepSize, steps: usize) {
    let c = config(cfg);
    let mut p = Playground::new(c.clone()).unwrap();
    p.advance(steps);
    let (t, _) = load_target(c.target.as_deref().unwrap()).unwrap();
    let t = match c.temperature {
        Some(kt) => t.at_temperature(kt).unwrap(),
        None => t,
    };
    let o = SampleOptions {
        sampler,
        particles: Some(c.particles),
        steps: Some(steps),
        warmup: Some(0),
        step_size,
        seed: c.seed,
        ..Default::default()
    };
    let want: Vec<f32> = sample(t.as_ref(), &o).unwrap().run.samples.iter().cloned().collect();
    assert_eq!(bits(&p.positions()), bits(&want), "{cfg}");
}

#[test]
fn stepped_kernels_equal_the_library_run_bit_for_bit() {
    same_as_sample(
        r#"{"target": "ncsn-toy", "sampler": "ula", "particles": 1000, "seed": 3}"#,
        Sampler::Ula { noise: true },
        StepSize::Default,
        150,
    );
    same_as_sample(
        r#"{"target": "ncsn-toy", "sampler": "ula-nonoise", "particles": 500, "seed": 3}"#,
        Sampler::Ula { noise: false },
        StepSize::Default,
        100,
    );
    same_as_sample(
        r#"{"target": "gmm40", "sampler": "mala", "particles": 777, "seed": 5, "step_size": 0.5}"#,
        Sampler::Mala { adapt: None },
        StepSize::Given(0.5),
        120,
    );
    same_as_sample(
        r#"{"target": "muller-brown", "sampler": "baoab", "particles": 600, "seed": 9, "temperature": 20}"#,
        Sampler::from_name("baoab").unwrap(),
        StepSize::Default,
        200,
    );
}

#[test]
fn schedules_play_back_to_the_library_result() {
    for (name, steps) in [("annealed", 20), ("ddim", 30), ("pc", 40)] {
        let cfg =
            format!(r#"{{"target": "ncsn-toy", "sampler": "{name}", "particles": 800, "seed": 2, "steps": {steps}}}"#);
        let mut p = Playground::new(config(&cfg)).unwrap();
        let s0 = p.stats();
        p.advance(1_000_000);
        let st = p.stats();
        assert_eq!(st["finished"], true, "{name}");
        assert!(s0["sigma"].as_f64().unwrap() > st["sigma"].as_f64().unwrap(), "{name}: σ falls: {s0} {st}");
        let (t, _) = load_target("ncsn-toy").unwrap();
        let mut sampler = Sampler::from_name(name).unwrap();
        let mut o = SampleOptions { particles: Some(800), seed: 2, ..Default::default() };
        match &mut sampler {
            Sampler::Annealed { options, .. } => options.steps_per_level = Some(steps),
            _ => o.steps = Some(steps),
        }
        o.sampler = sampler;
        let want: Vec<f32> = sample(t.as_ref(), &o).unwrap().run.samples.iter().cloned().collect();
        assert_eq!(bits(&p.positions()), bits(&want), "{name}");
        // annealing restores the 0.8 / 0.2 weights (800 particles: standard error 0.014)
        let w = st["mode_weights"].as_array().unwrap();
        assert!((w[0].as_f64().unwrap() - 0.8).abs() < 0.06, "{name}: {w:?}");
    }
}

#[test]
fn the_seeds_pictures_come_out_of_the_stats() {
    // Noise off: gradient ascent collapses every particle onto a mode (no spread left), and
    // plain ULA with noise keeps them spread; acceptance is reported for MALA.
    let mut off =
        Playground::new(config(r#"{"target": "ncsn-toy", "sampler": "ula-nonoise", "particles": 400, "seed": 1}"#))
            .unwrap();
    off.advance(2000);
    let p = off.positions();
    let spread = |p: &[f32]| {
        let (mut best, mut n) = (0f32, 0);
        for c in p.chunks(2) {
            let d = ((c[0] - 5.0).powi(2) + (c[1] - 5.0).powi(2)).min((c[0] + 5.0).powi(2) + (c[1] + 5.0).powi(2));
            best = best.max(d.sqrt());
            n += 1;
        }
        (best, n)
    };
    assert!(spread(&p).0 < 1e-2, "noise off ends on the modes: {}", spread(&p).0);
    let mut on =
        Playground::new(config(r#"{"target": "ncsn-toy", "sampler": "ula", "particles": 400, "seed": 1}"#)).unwrap();
    on.advance(2000);
    assert!(spread(&on.positions()).0 > 1.0);
    let mut m = Playground::new(config(
        r#"{"target": "gmm40", "sampler": "mala", "particles": 300, "seed": 1, "step_size": 1.0}"#,
    ))
    .unwrap();
    m.advance(50);
    let a = m.stats()["acceptance"].as_f64().unwrap();
    assert!(a > 0.0 && a < 1.0, "{a}");
    // the score field and its stagnation points: the double well has two sinks and a saddle
    let dw = Playground::new(config(r#"{"energy": "(x^2-1)^2 + y^2", "sampler": "ula", "particles": 10, "seed": 0}"#))
        .unwrap();
    let pts = dw.stagnation_points();
    let kinds: Vec<&str> = pts.as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "sink").count(), 2, "{pts}");
    assert_eq!(kinds.iter().filter(|k| **k == "saddle").count(), 1, "{pts}");
    let b = dw.bounds();
    assert!(b[0] < -1.0 && b[1] > 1.0, "{b:?}");
    let g = dw.log_density_grid(b, 8, 6);
    assert_eq!(g.len(), 48);
    assert!(g.iter().all(|v| v.is_finite()));
    assert_eq!(dw.score_grid(b, 8, 6).len(), 96);
}

#[test]
fn bad_input_gets_a_message() {
    let err = |j: &str| Playground::new(config(j)).err().expect("refused");
    let e = err(r#"{"energy": "(x^2-1)^2 + * y", "sampler": "ula", "particles": 10, "seed": 0}"#);
    assert!(e.contains("position") || e.contains("column") || e.contains("at "), "{e}");
    let e = err(
        r#"{"mixture": {"weights": [0.5, 0.5], "means": [[0,0],[3,3]], "covs": [1.0, [[1, 2], [2, 1]]]}, "sampler": "ula", "particles": 10, "seed": 0}"#,
    );
    assert!(e.contains("positive"), "{e}");
    let e = err(r#"{"target": "ncsn-toy", "sampler": "ula", "particles": 10, "seed": 0, "temperature": 2}"#);
    assert!(e.contains("no temperature"), "{e}");
    let e = err(r#"{"target": "gaussian:dim=3", "sampler": "ula", "particles": 10, "seed": 0}"#);
    assert!(e.contains("2-D"), "{e}");
    let e = err(r#"{"target": "ncsn-toy", "sampler": "hmc", "particles": 10, "seed": 0}"#);
    assert!(e.contains("unknown sampler"), "{e}");
    assert!(
        serde_json::from_str::<Config>(r#"{"target": "x", "sampler": "ula", "particles": 1, "seed": 0, "bogus": 1}"#)
            .is_err()
    );
    // A step far above the stability limit diverges: the run stops, naming the step and a step size.
    let mut p = Playground::new(config(
        r#"{"target": "ncsn-toy", "sampler": "ula", "particles": 100, "seed": 0, "step_size": 50}"#,
    ))
    .unwrap();
    p.advance(100);
    let st = p.stats();
    let msg = st["stopped"].as_str().expect("stopped");
    assert!(msg.contains("diverged at step") && msg.contains("try"), "{msg}");
    let at = st["step"].as_u64().unwrap();
    p.advance(10);
    assert_eq!(p.stats()["step"].as_u64().unwrap(), at, "a stopped run stays stopped");
}
