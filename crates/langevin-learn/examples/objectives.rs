//! Every objective on every built-in 2-D set and on `digits`: a quality figure against held-out
//! data (the table in docs/GENERALIZATION.md).
//!
//! `cargo run --release --example objectives -p langevin-learn -- [steps] [digits-steps]`
//! (defaults 4,000 and 6,000). Each 2-D run trains the 3×256 MLP (batch 1,024, lr 2e-3, constant
//! after warm-up) on 18,000 rows, generates 8,000 points with the objective's default sampler
//! (annealed Langevin for `ncsn`, DPM-Solver++(2M) with 100 steps for the others) and reports
//! MMD and sliced Wasserstein against 2,000 held-out rows as medians over 8 random splits of
//! 2,000 generated points, beside the floor: the same statistics for 2,000 fresh data points.
//! `digits` (10% held out) is trained class-conditionally (label dropout 0.1) and judged by a
//! classifier trained on the real training digits: the mean per-class accuracy on 200 samples
//! per class, with guidance w = 0 and w = 2, and the unconditional samples' MMD against the
//! held-out digits. `ONLY=name` restricts to one data set; `OBJ=name` to one objective.

use candle_core::Device;
use langevin::diffusion::Method;
use langevin::rng::LaneRng;
use langevin_learn::checkpoint::{NewRun, TrainedModel, new_labeled_run, new_run};
use langevin_learn::classify::{Classifier, ClassifierConfig};
use langevin_learn::data::{self, Labels};
use langevin_learn::generate::{GenSampler, GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::objective::Objective;
use langevin_learn::train::TrainConfig;
use ndarray::Array2;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBJECTIVES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("ncsn", "ncsn", None, None),
    ("dsm ve", "dsm", Some("ve"), None),
    ("dsm vp", "dsm", Some("vp"), None),
    ("dsm vp lik-is", "dsm", Some("vp"), Some("likelihood-is")),
    ("dsm sub-vp", "dsm", Some("sub-vp"), None),
    ("edm", "edm", None, None),
    ("flow-matching", "flow-matching", None, None),
];

fn sampler(o: &Objective) -> GenSampler {
    match o {
        Objective::Ncsn => GenSampler::Annealed,
        _ => GenSampler::Diffusion(Method::DpmPp2m),
    }
}

/// Medians over 8 random splits of (MMD, sliced W) of `gen` and of `fresh` against `reference`.
fn judge(gen_: &Array2<f32>, fresh: &Array2<f32>, reference: &Array2<f32>) -> [f64; 4] {
    let (mut m, mut w, mut fm, mut fw) = (vec![], vec![], vec![], vec![]);
    let pick = |src: &Array2<f32>, r: &mut LaneRng| {
        let rows: Vec<usize> = (0..2000).map(|_| r.below(src.nrows() as u64) as usize).collect();
        data::pick_rows(src, &rows)
    };
    let refr = reference.slice(ndarray::s![..reference.nrows().min(2000), ..]).to_owned();
    for s in 0..8u64 {
        let mut r = LaneRng::new(7, s);
        let (a, b) = (pick(gen_, &mut r), pick(fresh, &mut r));
        let (f, h) = langevin::metrics::mmd(b.view(), refr.view(), None);
        m.push(langevin::metrics::mmd(a.view(), refr.view(), Some(h)).0);
        fm.push(f);
        w.push(langevin::metrics::sliced_wasserstein(a.view(), refr.view(), 64, s));
        fw.push(langevin::metrics::sliced_wasserstein(b.view(), refr.view(), 64, s));
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        0.5 * (v[3] + v[4])
    };
    [med(m), med(fm), med(w), med(fw)]
}

fn main() -> langevin::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(4000);
    let digit_steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(6000);
    let only = std::env::var("ONLY").ok();
    let only_obj = std::env::var("OBJ").ok();
    let objectives: Vec<_> = OBJECTIVES.iter().filter(|o| only_obj.as_deref().is_none_or(|n| n == o.0)).collect();
    println!("| data | objective | MMD | MMD floor | MMD / floor | sliced W | SW floor | train s |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (set, _) in data::BUILTIN {
        if only.as_deref().is_some_and(|o| o != *set) || *set == "digits" {
            continue;
        }
        let x = data::generate(set, 20_000, &mut LaneRng::new(1, 0))?;
        let fresh = data::generate(set, 8000, &mut LaneRng::new(2, 0))?;
        for (label, name, sde, weighting) in &objectives {
            let objective = Objective::from_name(name, *sde, *weighting)?;
            let net = NetConfig { width: 256, ..Default::default() };
            let train = TrainConfig { batch: 1024, steps, seed: 1, objective, ..Default::default() };
            let mut run = new_run(&x, set, 0, 0.1, &LadderOptions::default(), net, train, &Device::Cpu)?;
            let t = std::time::Instant::now();
            for _ in 0..steps {
                run.trainer.train_step()?;
            }
            let secs = t.elapsed().as_secs_f64();
            let heldout = run.heldout_raw.clone();
            let model =
                Arc::new(TrainedModel::from_trainer(&run.trainer, run.config.clone(), std::path::Path::new("mem"))?);
            let g = generate(
                model,
                &GenerateOptions { n: 8000, seed: 3, sampler: sampler(&objective), ..Default::default() },
            )?;
            let [m, fm, w, fw] = judge(&g.samples, &fresh, &heldout);
            println!("| {set} | {label} | {m:.4} | {fm:.4} | {:.2} | {w:.4} | {fw:.4} | {secs:.0} |", m / fm);
        }
    }
    if only.as_deref().is_some_and(|o| o != "digits") {
        return Ok(());
    }
    println!("\n| digits | objective | accuracy w = 0 | accuracy w = 2 | MMD | MMD floor | train s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let (x, y) = data::digits()?;
    let labels = Labels::components(y, 10, "digits");
    for (label, name, sde, weighting) in &objectives {
        let objective = Objective::from_name(name, *sde, *weighting)?;
        let net = NetConfig { width: 256, ..Default::default() };
        let train = TrainConfig { steps: digit_steps, seed: 3, objective, cond_drop: 0.1, ..Default::default() };
        let NewRun { mut trainer, config, train_raw, heldout_raw, labels: split, .. } = new_labeled_run(
            &x,
            Some(&labels),
            true,
            "digits",
            0,
            0.1,
            &LadderOptions::default(),
            net,
            train,
            &Device::Cpu,
        )?;
        let t = std::time::Instant::now();
        for _ in 0..digit_steps {
            trainer.train_step()?;
        }
        let secs = t.elapsed().as_secs_f64();
        let model = Arc::new(TrainedModel::from_trainer(&trainer, config, std::path::Path::new("mem"))?);
        let (train_labels, _) = split.expect("labels");
        let judge_net = Classifier::train(&train_raw, &train_labels, 10, &ClassifierConfig::default())?;
        let mut acc = [0.0; 2];
        for (i, w) in [0.0, 2.0].into_iter().enumerate() {
            for c in 0..10 {
                let o = GenerateOptions {
                    n: 200,
                    seed: 7,
                    sampler: sampler(&objective),
                    class: Some(c.to_string()),
                    guidance: w,
                    ..Default::default()
                };
                acc[i] += judge_net.fractions(&generate(model.clone(), &o)?.samples)?[c] / 10.0;
            }
        }
        let g =
            generate(model, &GenerateOptions { n: 2000, seed: 9, sampler: sampler(&objective), ..Default::default() })?;
        let half = train_raw.nrows().min(heldout_raw.nrows());
        let floor_set = train_raw.slice(ndarray::s![..half, ..]).to_owned();
        let (fm, h) = langevin::metrics::mmd(floor_set.view(), heldout_raw.view(), None);
        let m = langevin::metrics::mmd(g.samples.view(), heldout_raw.view(), Some(h)).0;
        println!("| digits | {label} | {:.3} | {:.3} | {m:.4} | {fm:.4} | {secs:.0} |", acc[0], acc[1]);
    }
    Ok(())
}
