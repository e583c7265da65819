//! Class-conditional training on the real digits, judged by a classifier trained on real digits
//! (fixed seeds).

use candle_core::Device;
use langevin::diffusion::Method;
use langevin_learn::checkpoint::{NewRun, TrainedModel, new_labeled_run};
use langevin_learn::classify::{Classifier, ClassifierConfig};
use langevin_learn::data::{self, Labels};
use langevin_learn::generate::{GenSampler, GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::objective::Objective;
use langevin_learn::train::TrainConfig;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An EDM model of the digits with labels (6,000 steps, width 256): for every digit, the samples
/// generated for it are mostly classified as it by a classifier that never saw a generated
/// digit, and guidance (w = 2) raises that accuracy. A model that ignored its label would score
/// about 0.1; one that flipped the guidance sign would score lower with guidance.
#[test]
fn guidance_raises_the_digit_classifiers_accuracy() {
    let (x, y) = data::digits().unwrap();
    assert_eq!((x.nrows(), x.ncols(), y.len()), (1797, 64, 1797));
    let labels = Labels::components(y, 10, "digits");
    let steps = 6000;
    let net = NetConfig { width: 256, ..Default::default() };
    let train = TrainConfig {
        steps,
        seed: 3,
        objective: Objective::from_name("edm", None, None).unwrap(),
        cond_drop: 0.1,
        ..Default::default()
    };
    let NewRun { mut trainer, config, train_raw, labels: split, .. } =
        new_labeled_run(&x, Some(&labels), true, "digits", 0, 0.1, &LadderOptions::default(), net, train, &Device::Cpu)
            .unwrap();
    for _ in 0..steps {
        trainer.train_step().unwrap();
    }
    let model = Arc::new(TrainedModel::from_trainer(&trainer, config, std::path::Path::new("in-memory")).unwrap());
    let (train_labels, _) = split.unwrap();
    let judge = Classifier::train(&train_raw, &train_labels, 10, &ClassifierConfig::default()).unwrap();
    let mut acc = [[0.0; 10]; 2];
    for (i, w) in [0.0, 2.0].into_iter().enumerate() {
        for (c, a) in acc[i].iter_mut().enumerate() {
            let o = GenerateOptions {
                n: 200,
                seed: 7,
                sampler: GenSampler::Diffusion(Method::from_name("dpmpp-2m").unwrap()),
                class: Some(c.to_string()),
                guidance: w,
                ..Default::default()
            };
            let g = generate(model.clone(), &o).unwrap();
            *a = judge.fractions(&g.samples).unwrap()[c];
        }
    }
    let mean = |a: &[f64; 10]| a.iter().sum::<f64>() / 10.0;
    eprintln!("per-class accuracy without guidance {:?}\nwith w = 2 {:?}", acc[0], acc[1]);
    eprintln!("mean {:.3} → {:.3}", mean(&acc[0]), mean(&acc[1]));
    assert!(mean(&acc[0]) > 0.8, "conditional digits classified right: {:.3}", mean(&acc[0]));
    assert!(mean(&acc[1]) > mean(&acc[0]) && mean(&acc[1]) > 0.95, "guided: {:.3}", mean(&acc[1]));
}
