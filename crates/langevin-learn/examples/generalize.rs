//! The generalization study of the training defaults: data sets of our own making whose
//! generator is known (nothing here was tuned on them by the tests), each trained with the
//! defaults (or a variant) and generated with the default sampler, then judged by the component
//! weights and widths the generator fixes and by the MMD against exact draws, relative to the
//! data-vs-data floor, as medians over 8 random splits of 2,000 points.
//!
//! `cargo run --release --example generalize -p langevin-learn -- [objective] [steps] [width]`
//! With no arguments it runs the command line's defaults (`langevin train` and `langevin
//! generate` with no options: EDM, 40,000 steps of 1,024, cosine decay, DPM-Solver++(2M) with 100
//! steps); `ncsn 10000` runs the NCSN recipe of earlier versions with annealed Langevin.
//! Environment knobs for variants: BATCH, LR, EMA, DEPTH, COSINE=1/0, GSTEPS, PMEAN, PSTD, ONLY.

use candle_core::Device;
use langevin::rng::LaneRng;
use langevin_learn::checkpoint::{TrainedModel, new_run};
use langevin_learn::generate::{GenSampler, GenerateOptions, generate};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::objective::Objective;
use langevin_learn::train::TrainConfig;
use ndarray::Array2;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Gaussian mixture with diagonal covariances.
struct Mixture {
    name: &'static str,
    w: Vec<f64>,
    mu: Vec<Vec<f64>>,
    sd: Vec<Vec<f64>>,
}

impl Mixture {
    fn sample(&self, n: usize, rng: &mut LaneRng) -> Array2<f32> {
        let d = self.mu[0].len();
        let mut x = Array2::zeros((n, d));
        for i in 0..n {
            let u = rng.uniform_f64();
            let mut k = 0;
            let mut c = self.w[0];
            while u > c && k + 1 < self.w.len() {
                k += 1;
                c += self.w[k];
            }
            for j in 0..d {
                x[[i, j]] = (self.mu[k][j] + self.sd[k][j] * rng.normal()) as f32;
            }
        }
        x
    }
    /// The most probable component of each row.
    fn assign(&self, x: &Array2<f32>) -> Vec<usize> {
        x.outer_iter()
            .map(|r| {
                (0..self.w.len())
                    .map(|k| {
                        let mut l = self.w[k].ln();
                        for j in 0..r.len() {
                            let z = (r[j] as f64 - self.mu[k][j]) / self.sd[k][j];
                            l -= 0.5 * z * z + self.sd[k][j].ln();
                        }
                        (k, l)
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(k, _)| k)
                    .unwrap_or(0)
            })
            .collect()
    }
    /// (largest |weight − w|, per-component width ratios: the mean over coordinates of the
    /// assigned points' std over the generator's).
    fn judge(&self, x: &Array2<f32>) -> (f64, Vec<f64>) {
        let a = self.assign(x);
        let k = self.w.len();
        let d = x.ncols();
        let mut count = vec![0usize; k];
        let mut s1 = vec![vec![0.0f64; d]; k];
        let mut s2 = vec![vec![0.0f64; d]; k];
        for (r, &c) in x.outer_iter().zip(&a) {
            count[c] += 1;
            for j in 0..d {
                s1[c][j] += r[j] as f64;
                s2[c][j] += (r[j] as f64).powi(2);
            }
        }
        let n = x.nrows() as f64;
        let wdev = (0..k).map(|c| (count[c] as f64 / n - self.w[c]).abs()).fold(0.0, f64::max);
        let widths = (0..k)
            .map(|c| {
                let m = count[c].max(1) as f64;
                (0..d).map(|j| ((s2[c][j] / m - (s1[c][j] / m).powi(2)).max(0.0).sqrt()) / self.sd[c][j]).sum::<f64>()
                    / d as f64
            })
            .collect();
        (wdev, widths)
    }
}

fn data_sets() -> Vec<Mixture> {
    let mut r = LaneRng::new(2026, 12);
    let mut v = vec![
        Mixture {
            name: "blobs-2d (5 narrow, unequal)",
            w: vec![0.4, 0.25, 0.15, 0.12, 0.08],
            mu: vec![vec![-3.0, -2.0], vec![0.0, 3.0], vec![3.0, -1.0], vec![-1.0, 0.5], vec![2.5, 2.5]],
            sd: vec![vec![0.15; 2], vec![0.3; 2], vec![0.1; 2], vec![0.25; 2], vec![0.12; 2]],
        },
        Mixture {
            name: "elongated-2d (3, anisotropic)",
            w: vec![0.6, 0.3, 0.1],
            mu: vec![vec![0.0, 0.0], vec![4.0, 1.0], vec![-3.0, 3.0]],
            sd: vec![vec![1.5, 0.1], vec![0.1, 1.0], vec![0.3, 0.3]],
        },
    ];
    for d in [8usize, 32] {
        let k = 4;
        let w = vec![0.4, 0.3, 0.2, 0.1];
        let mu = (0..k).map(|_| (0..d).map(|_| 3.0 * r.normal()).collect()).collect();
        let sd = (0..k).map(|_| (0..d).map(|_| 0.2 + 0.8 * r.uniform_f64()).collect()).collect();
        v.push(Mixture {
            name: if d == 8 { "mixture-8d (4, unequal)" } else { "mixture-32d (4, unequal)" },
            w,
            mu,
            sd,
        });
    }
    v
}

fn main() -> langevin::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let objective = Objective::from_name(args.get(1).map_or("edm", |s| s.as_str()), None, None)?;
    let ncsn = objective == Objective::Ncsn;
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(if ncsn { 10_000 } else { 40_000 });
    let width: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(NetConfig::default().width);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let objective = match (objective, env("PMEAN"), env("PSTD")) {
        (Objective::Edm { p_mean, p_std, sigma_data }, a, b) => {
            Objective::Edm { p_mean: a.unwrap_or(p_mean), p_std: b.unwrap_or(p_std), sigma_data }
        }
        (o, _, _) => o,
    };
    println!("objective {objective:?}, {steps} steps, width {width}");
    let only = std::env::var("ONLY").ok();
    for m in data_sets().into_iter().filter(|m| only.as_deref().is_none_or(|o| m.name.starts_with(o))) {
        let mut rng = LaneRng::new(1, 0);
        let x = m.sample(20_000, &mut rng);
        let d = TrainConfig::default();
        let train = TrainConfig {
            steps,
            objective,
            batch: env("BATCH").map_or(if ncsn { 512 } else { 1024 }, |v| v as usize),
            ema: env("EMA").unwrap_or(d.ema),
            lr: env("LR").unwrap_or(d.lr),
            decay: match env("COSINE") {
                Some(0.0) => langevin_learn::train::LrDecay::Constant,
                Some(_) => langevin_learn::train::LrDecay::Cosine,
                None if ncsn => langevin_learn::train::LrDecay::Constant,
                None => langevin_learn::train::LrDecay::Cosine,
            },
            ..d
        };
        let net = NetConfig { width, depth: env("DEPTH").map_or(3, |v| v as usize), ..Default::default() };
        let mut new = new_run(&x, m.name, 0, 0.1, &LadderOptions::default(), net, train, &Device::Cpu)?;
        let start = std::time::Instant::now();
        for _ in 0..steps {
            new.trainer.train_step()?;
        }
        let secs = start.elapsed().as_secs_f64();
        let model = Arc::new(TrainedModel::from_trainer(&new.trainer, new.config, std::path::Path::new(m.name))?);
        let sampler = if ncsn {
            GenSampler::Annealed
        } else {
            GenSampler::Diffusion(langevin::diffusion::Method::from_name("dpmpp-2m")?)
        };
        let diffusion =
            langevin::diffusion::DiffusionOptions { steps: env("GSTEPS").map(|v| v as usize), ..Default::default() };
        let g = generate(model, &GenerateOptions { n: 20_000, seed: 3, sampler, diffusion, ..Default::default() })?;
        let exact = m.sample(40_000, &mut LaneRng::new(5, 0));
        let (wdev, widths) = m.judge(&g.samples);
        let (ewdev, ewidths) = m.judge(&exact.slice(ndarray::s![..20_000, ..]).to_owned());
        // MMD medians over 8 splits: generated vs exact, exact vs exact (the floor).
        let mut ratio = Vec::new();
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for s in 0..8u64 {
            let mut r = LaneRng::new(7, s);
            let pick = |src: &Array2<f32>, lo: usize, hi: usize, r: &mut LaneRng| {
                let rows: Vec<usize> = (0..2000).map(|_| lo + r.below((hi - lo) as u64) as usize).collect();
                langevin_learn::data::pick_rows(src, &rows)
            };
            let (a, b, c) = (
                pick(&g.samples, 0, 20_000, &mut r),
                pick(&exact, 0, 20_000, &mut r),
                pick(&exact, 20_000, 40_000, &mut r),
            );
            let (f, h) = langevin::metrics::mmd(c.view(), b.view(), None);
            let o = langevin::metrics::mmd(a.view(), b.view(), Some(h)).0;
            ours.push(o);
            floor.push(f);
            ratio.push(o / f);
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            0.5 * (v[3] + v[4])
        };
        let wr = |v: &[f64]| {
            format!(
                "{:.3}..{:.3}",
                v.iter().cloned().fold(f64::INFINITY, f64::min),
                v.iter().cloned().fold(0.0, f64::max)
            )
        };
        println!(
            "{:30} train {secs:5.1} s | weights ±{wdev:.3} (exact ±{ewdev:.3}) | widths {} (exact {}) | MMD {:.2}× floor",
            m.name,
            widths.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(" "),
            wr(&ewidths),
            med(ours) / med(floor)
        );
    }
    Ok(())
}
