//! The rectified-flow reflow step (Liu, Gong & Liu 2022): a trained model's probability-flow
//! ODE pairs each noise draw with the sample it ends at, and a new flow-matching model is trained
//! on those fixed pairs. Its paths cross less, so it is straighter: few-step (even one-step)
//! Euler generation gets better at the same cost.
//!
//! In σ-space a pair is (x̂, x₀) with x̂ ~ N(0, (σ_max² + 1) I) the start of the teacher's ODE at
//! σ_max and x₀ where it ends; the student's straight path x̂_σ = x₀ + σ z with
//! z = (x̂ − x₀)/σ_max passes through x̂ at σ_max, so a student that learns the pairing maps x̂ to
//! x₀ along a straight line. Student and teacher share the standardization.

use crate::checkpoint::{NewRun, TrainedModel, new_labeled_run};
use crate::data;
use crate::generate::{GenSampler, GenerateOptions, generate, resolve_diffusion};
use crate::ladder::LadderOptions;
use crate::net::NetConfig;
use crate::objective::Objective;
use crate::train::{Coupling, TrainConfig};
use candle_core::Device;
use langevin::diffusion::{DiffusionOptions, Method};
use langevin::rng::LaneRng;
use langevin::sampler::Init;
use langevin::{Error, Result};
use ndarray::Array2;
use std::sync::Arc;

/// `n` pairs from the teacher's probability-flow ODE (DPM-Solver++(2M) with `steps` steps):
/// the samples x₀ and their noise z = (x̂ − x₀)/σ_max, both in the teacher's standardized units.
pub fn teacher_pairs(
    teacher: &Arc<TrainedModel>,
    n: usize,
    steps: usize,
    seed: u64,
) -> Result<(Array2<f32>, Array2<f32>)> {
    if n < 10 || steps == 0 {
        return Err(Error::invalid("rows", "reflow needs at least 10 pairs and 1 ODE step"));
    }
    let d = teacher.config.dim;
    let method = Method::from_name("dpmpp-2m")?;
    let options = DiffusionOptions { steps: Some(steps), ..Default::default() };
    let (dc, _) = resolve_diffusion(&teacher.config, method, &options)?;
    let s = dc.sigma_start();
    let mut start = vec![0.0f32; n * d];
    LaneRng::new(seed, 0x5EF1_0000).fill_normal(&mut start);
    let scale = (s * s + 1.0).sqrt() as f32;
    start.iter_mut().for_each(|v| *v *= scale);
    let start = Array2::from_shape_vec((n, d), start).expect("n × d");
    let norm = &teacher.config.normalization;
    let o = GenerateOptions {
        n,
        seed,
        sampler: GenSampler::Diffusion(method),
        diffusion: options,
        init: Some(Init::Rows(Arc::new(norm.undo(&start)))),
        ..Default::default()
    };
    let g = generate(teacher.clone(), &o)?;
    let x0 = norm.apply(&g.samples);
    let z = Array2::from_shape_fn((n, d), |(i, c)| ((start[[i, c]] as f64 - x0[[i, c]] as f64) / s) as f32);
    Ok((x0, z))
}

/// A new flow-matching run on `n` pairs of the teacher's ODE (see the module docs): the
/// student's data are the teacher's samples, standardized as the teacher's, each with its noise.
#[allow(clippy::too_many_arguments)]
pub fn new_reflow_run(
    teacher: &Arc<TrainedModel>,
    n: usize,
    ode_steps: usize,
    heldout_fraction: f64,
    ladder: &LadderOptions,
    net: NetConfig,
    mut train: TrainConfig,
    device: &Device,
) -> Result<NewRun> {
    if teacher.config.labels.is_some() {
        return Err(Error::invalid(
            "reflow",
            "the teacher is class-conditional; reflow of conditional models is not supported: use an unconditional teacher",
        ));
    }
    if train.objective != Objective::FlowMatching {
        return Err(Error::invalid(
            "objective",
            "reflow trains a flow-matching student: use the flow-matching objective",
        ));
    }
    train.coupling = Coupling::Pairs;
    let (x0, z) = teacher_pairs(teacher, n, ode_steps, train.seed)?;
    let norm = teacher.config.normalization.clone();
    let source = format!("reflow of {}", teacher.dir.display());
    let mut new =
        new_labeled_run(&norm.undo(&x0), None, false, &source, 0, heldout_fraction, ladder, net, train, device)?;
    // The teacher's standardization, applied to the saved rows as a resume will apply it.
    new.config.normalization = norm.clone();
    new.trainer.data = norm.apply(&new.train_raw);
    new.trainer.heldout = norm.apply(&new.heldout_raw);
    let (tr, ho) = (data::pick_rows(&z, &new.split.0), data::pick_rows(&z, &new.split.1));
    new.trainer.set_noise(tr, ho)?;
    Ok(new)
}
