//! The continuous-time objectives (EDM, flow matching, DSM) train models that every diffusion
//! sampler of the core runs on, through one adapter (fixed seeds).

use candle_core::Device;
use langevin::diffusion::Method;
use langevin::metrics::mmd;
use langevin::rng::LaneRng;
use langevin_learn::checkpoint::{NewRun, TrainedModel, new_run};
use langevin_learn::data;
use langevin_learn::generate::{GenSampler, GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::objective::Objective;
use langevin_learn::train::TrainConfig;
use std::sync::{Arc, Mutex};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static HEAVY: Mutex<()> = Mutex::new(());

/// The trained model, the same weights read as an NCSN network, and the held-out rows.
fn trained(
    objective: Objective,
    steps: usize,
    seed: u64,
) -> (Arc<TrainedModel>, Arc<TrainedModel>, ndarray::Array2<f32>) {
    let x = data::generate("moons", 20_000, &mut LaneRng::new(seed, 0xDA7A)).unwrap();
    let NewRun { mut trainer, config, heldout_raw, .. } = new_run(
        &x,
        "moons",
        0,
        0.1,
        &LadderOptions::default(),
        NetConfig::default(),
        TrainConfig { steps, seed, objective, ..Default::default() },
        &Device::Cpu,
    )
    .unwrap();
    for _ in 0..steps {
        trainer.train_step().unwrap();
    }
    let mut misread = config.clone();
    misread.train.objective = Objective::Ncsn;
    let model = TrainedModel::from_trainer(&trainer, config, std::path::Path::new("in-memory")).unwrap();
    let wrong = TrainedModel::from_trainer(&trainer, misread, std::path::Path::new("misread")).unwrap();
    (Arc::new(model), Arc::new(wrong), heldout_raw)
}

/// An EDM model and a flow-matching model, 4,000 steps each on moons: the probability-flow ODE
/// (DPM-Solver++(2M), 20 evaluations) and a stochastic sampler (DDPM's ancestral steps) both
/// generate 8,000 samples within 2× the MMD that 8,000 fresh data points reach against the same
/// held-out rows. A model whose preconditioning is read wrongly fails: the same flow-matching
/// weights sampled as if they were an NCSN network.
#[test]
fn edm_and_flow_matching_models_generate_within_twice_the_data_floor() {
    let _turn = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let n = 8000;
    let fresh = data::generate("moons", n, &mut LaneRng::new(99, 0)).unwrap();
    for objective in [Objective::from_name("edm", None, None).unwrap(), Objective::FlowMatching] {
        let (model, wrong, heldout) = trained(objective, 4000, 4);
        let (floor, h) = mmd(fresh.view(), heldout.view(), None);
        for sampler in ["dpmpp-2m", "ddpm"] {
            let o = GenerateOptions {
                n,
                seed: 5,
                sampler: GenSampler::Diffusion(Method::from_name(sampler).unwrap()),
                ..Default::default()
            };
            let g = generate(model.clone(), &o).unwrap();
            let ours = mmd(g.samples.view(), heldout.view(), Some(h)).0;
            eprintln!("{objective:?} with {sampler}: MMD {ours:.4} (floor {floor:.4})");
            assert!(ours < 2.0 * floor, "{objective:?} with {sampler}: MMD {ours} vs data floor {floor}");
        }
        if objective == Objective::FlowMatching {
            let o = GenerateOptions {
                n,
                seed: 5,
                sampler: GenSampler::Diffusion(Method::from_name("dpmpp-2m").unwrap()),
                ..Default::default()
            };
            let g = generate(wrong, &o).unwrap();
            let bad = mmd(g.samples.view(), heldout.view(), Some(h)).0;
            eprintln!("flow matching read as NCSN: MMD {bad:.4}");
            assert!(bad > 2.0 * floor, "read as NCSN, the flow-matching net should fail: MMD {bad}, floor {floor}");
        }
    }
}
