//! The browser playground (web/): the core library stepped in memory, on one thread, a few
//! steps per animation frame. Everything here is plain Rust ([`Playground`]), tested natively
//! against the command line's samples; the `#[wasm_bindgen]` wrapper ([`Sim`]) only moves
//! strings and arrays across the JavaScript boundary.
//!
//! Stationary samplers (ULA with or without noise, MALA at a fixed step, BAOAB) are stepped by
//! their kernels on one block of all particles: each particle has its own random stream, so the
//! positions after k steps are those of `langevin sample --steps k` with the same seed, bit for
//! bit. Annealed Langevin and the diffusion samplers follow a schedule; they are run once by
//! `langevin::sample::sample` with every step recorded, and played back frame by frame.

use langevin::analysis::{self, AnalyzeOptions, Field, Region};
use langevin::block::Block;
use langevin::rng::{LaneRng, ParticleRng};
use langevin::sample::{SampleOptions, Sampler, StepSize, default_dt, sample};
use langevin::sampler::{
    Mala, MalaState, MarkovKernel, Scheme, StepInfo, Ula, UlaState, Underdamped, UnderdampedState, start_block,
};
use langevin::target::{Boltzmann, Covariance, ExpressionPotential, GaussianMixture, Target, load_target};
use ndarray::Array2;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// What the page asks for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A built-in target spec (`ncsn-toy`, `gmm40`, `double-well`, ...), or absent with
    /// `energy` or `mixture`.
    #[serde(default)]
    pub target: Option<String>,
    /// A potential U(x, y) as a formula (p ∝ exp(−U/kT)).
    #[serde(default)]
    pub energy: Option<String>,
    /// A Gaussian mixture in 2-D: weights, means, and one variance (σ²I) or 2 × 2 covariance each.
    #[serde(default)]
    pub mixture: Option<MixtureSpec>,
    /// `ula`, `ula-nonoise`, `mala`, `baoab`, `annealed`, or a diffusion sampler (`pc`, `ode`,
    /// `ddim`, `edm`, `dpmpp-2m`, ...).
    pub sampler: String,
    pub particles: usize,
    pub seed: u64,
    /// τ (ULA, MALA) or Δt (BAOAB); absent: the library's default.
    #[serde(default)]
    pub step_size: Option<f64>,
    /// BAOAB's friction γ (default 1).
    #[serde(default)]
    pub friction: Option<f64>,
    /// kT of a Boltzmann target (default: the target's own).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Annealed: steps per level (default 100); diffusion samplers: steps.
    #[serde(default)]
    pub steps: Option<usize>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSpec {
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    /// One entry per component: a variance, or a 2 × 2 covariance matrix.
    pub covs: Vec<Value>,
}

enum Chain {
    Ula(UlaState, bool),
    Mala(MalaState),
    Baoab(UnderdampedState),
    /// A recorded schedule: frames × particles × 2 positions, and σ at every frame.
    Frames {
        frames: Array2<f32>,
        n_frames: usize,
        sigmas: Vec<f64>,
    },
}

/// A running playground: a target, a sampler and its particles.
pub struct Playground {
    target: Arc<dyn Target>,
    chain: Chain,
    rng: ParticleRng,
    config: Config,
    step_size: f64,
    friction: f64,
    step: usize,
    accepted: u64,
    proposed: u64,
    stopped: Option<String>,
    exact: Option<Array2<f32>>,
    stiffness: Option<analysis::Stiffness>,
}

fn build_target(c: &Config) -> Result<Arc<dyn Target>, String> {
    let given = [c.target.is_some(), c.energy.is_some(), c.mixture.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        return Err("give exactly one of target, energy and mixture".into());
    }
    let t: Arc<dyn Target> = if let Some(spec) = &c.target {
        load_target(spec).map_err(|e| e.to_string())?.0
    } else if let Some(e) = &c.energy {
        let p = ExpressionPotential::parse(e, &["x".to_string(), "y".to_string()]).map_err(|e| e.to_string())?;
        Arc::new(Boltzmann::new(p, 1.0).map_err(|e| e.to_string())?)
    } else {
        let m = c.mixture.as_ref().expect("counted");
        let covs = m
            .covs
            .iter()
            .map(|v| match v {
                Value::Number(n) => Ok(Covariance::Isotropic(n.as_f64().unwrap_or(f64::NAN))),
                Value::Array(rows) => {
                    let r: Vec<Vec<f64>> = serde_json::from_value(Value::Array(rows.clone()))
                        .map_err(|_| "a covariance is a number or a 2 × 2 matrix".to_string())?;
                    if r.len() != 2 || r.iter().any(|row| row.len() != 2) {
                        return Err("a covariance matrix must be 2 × 2".to_string());
                    }
                    Ok(Covariance::Full(Array2::from_shape_fn((2, 2), |(i, j)| r[i][j])))
                }
                _ => Err("a covariance is a number or a 2 × 2 matrix".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Arc::new(GaussianMixture::new(m.weights.clone(), m.means.clone(), covs).map_err(|e| e.to_string())?)
    };
    if t.dim() != 2 {
        return Err(format!("the playground draws 2-D targets; '{}' has {} dimensions", t.name(), t.dim()));
    }
    match c.temperature {
        Some(kt) => t
            .at_temperature(kt)
            .ok_or_else(|| format!("'{}' has no temperature (only Boltzmann targets p ∝ exp(−U/kT) do)", t.name())),
        None => Ok(t),
    }
}

impl Playground {
    /// A new run. Errors are messages for the page (a formula's parse error names its position).
    pub fn new(config: Config) -> Result<Playground, String> {
        let target = build_target(&config)?;
        let n = config.particles;
        if !(1..=200_000).contains(&n) {
            return Err(format!("particles = {n}: use 1 to 200,000"));
        }
        let t = target.as_ref();
        let init = t.default_init();
        let (x, mut rng) = start_block(2, 0, n, config.seed, &init);
        let friction = config.friction.unwrap_or(1.0);
        let stiffness = analysis::typical_samples(t, 1000, config.seed)
            .and_then(|pts| Field::new(t).jacobians(&pts).and_then(|j| analysis::stiffness(&pts, &j)))
            .ok();
        let step_size = match config.sampler.as_str() {
            "baoab" => config.step_size.unwrap_or_else(|| default_dt(t, &[1.0])),
            _ => config.step_size.unwrap_or_else(|| t.default_step_size()),
        };
        if !(step_size.is_finite() && step_size > 0.0) {
            return Err(format!("step size {step_size}: must be positive"));
        }
        let chain = match config.sampler.as_str() {
            "ula" | "ula-nonoise" => {
                let noise = config.sampler == "ula";
                Chain::Ula(Ula::new(t, noise).init(x, &mut rng).map_err(|e| e.to_string())?, noise)
            }
            "mala" => Chain::Mala(Mala::new(t).init(x, &mut rng).map_err(|e| e.to_string())?),
            "baoab" => {
                let k = Underdamped::new(t, Scheme::Baoab, &[1.0], friction).map_err(|e| e.to_string())?;
                Chain::Baoab(k.init(x, &mut rng).map_err(|e| e.to_string())?)
            }
            name => Self::recorded(t, name, &config)?,
        };
        let exact = t.sample_exact(n.min(2000), &mut LaneRng::new(config.seed ^ 0x5eed, 0));
        Ok(Playground {
            target,
            chain,
            rng,
            config,
            step_size,
            friction,
            step: 0,
            accepted: 0,
            proposed: 0,
            stopped: None,
            exact,
            stiffness,
        })
    }

    /// Annealed Langevin or a diffusion sampler, run by the library with every step recorded.
    fn recorded(t: &dyn Target, name: &str, c: &Config) -> Result<Chain, String> {
        let mut sampler = Sampler::from_name(name).map_err(|e| e.to_string())?;
        let mut steps = None;
        match &mut sampler {
            Sampler::Annealed { options, .. } => options.steps_per_level = c.steps,
            Sampler::Diffusion { .. } => steps = c.steps,
            _ => return Err(format!("sampler '{name}' is not offered here")),
        }
        let o = SampleOptions {
            sampler,
            particles: Some(c.particles),
            steps,
            seed: c.seed,
            record_every: Some(1),
            step_size: StepSize::Default,
            ..Default::default()
        };
        let out = sample(t, &o).map_err(|e| e.to_string())?;
        let traj = out.run.trajectory.ok_or("no trajectory recorded")?;
        let (f, n, d) = traj.dim();
        let frames = traj.into_shape_with_order((f, n * d)).map_err(|e| e.to_string())?;
        let sigmas: Vec<f64> = match (&out.resolved.anneal, &out.resolved.diffusion) {
            (Some(a), _) => {
                let per = a.steps_per_level;
                (0..f).map(|i| a.sigmas()[(i.saturating_sub(1) / per).min(a.sigmas().len() - 1)]).collect()
            }
            (None, Some(dc)) => {
                // σ-space samplers keep their levels; time-space ones their times.
                let s: Vec<f64> = if dc.sigmas.is_empty() {
                    dc.times.iter().map(|t| dc.schedule.sigma(*t)).collect()
                } else {
                    dc.sigmas.clone()
                };
                (0..f).map(|i| if i + 1 == f { 0.0 } else { s.get(i).cloned().unwrap_or(0.0) }).collect()
            }
            _ => vec![0.0; f],
        };
        Ok(Chain::Frames { frames, n_frames: f, sigmas })
    }

    /// Advance `k` steps (a recorded schedule: `k` frames, stopping at its end). A step that
    /// produces NaN or inf stops the run with a message naming the step and a step size.
    pub fn advance(&mut self, mut k: usize) {
        if self.stopped.is_some() {
            return;
        }
        let t = self.target.as_ref();
        let tau = self.step_size;
        // One kernel per call (not per step); each returns the first problem of a step, if any.
        let nonfinite = |b: &Block| b.first_non_finite().map(|i| format!("particle {i}"));
        let mut bad = None;
        match &mut self.chain {
            Chain::Ula(s, noise) => {
                let kern = Ula::new(t, *noise);
                while bad.is_none() && k > 0 {
                    bad = match kern.step(s, tau, &mut self.rng) {
                        Ok(_) => nonfinite(kern.position(s)),
                        Err(e) => Some(e.to_string()),
                    };
                    self.step += 1;
                    k -= 1;
                }
            }
            Chain::Mala(s) => {
                let kern = Mala::new(t);
                while bad.is_none() && k > 0 {
                    bad = match kern.step(s, tau, &mut self.rng) {
                        Ok(info) => {
                            self.accepted += info.accepted() as u64;
                            self.proposed += kern.position(s).len() as u64;
                            nonfinite(kern.position(s))
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    self.step += 1;
                    k -= 1;
                }
            }
            Chain::Baoab(s) => match Underdamped::new(t, Scheme::Baoab, &[1.0], self.friction) {
                Ok(kern) => {
                    while bad.is_none() && k > 0 {
                        bad = match kern.step(s, tau, &mut self.rng) {
                            Ok(_) => nonfinite(kern.position(s)),
                            Err(e) => Some(e.to_string()),
                        };
                        self.step += 1;
                        k -= 1;
                    }
                }
                Err(e) => bad = Some(e.to_string()),
            },
            // A recorded schedule: k frames on, stopping at its last.
            Chain::Frames { n_frames, .. } => self.step = (self.step + k).min(*n_frames - 1),
        }
        if let Some(what) = bad {
            let hint = match &self.stiffness {
                Some(s) => format!(
                    "; the stability limit is about 2/λ_max = {:.3e}: try {:.3e}",
                    s.max_stable_step, s.recommended_step
                ),
                None => format!("; try {:.3e}", tau / 10.0),
            };
            self.stopped = Some(format!(
                "diverged at step {} ({what} left the finite numbers): step size {tau:.3e} is too large{hint}",
                self.step
            ));
        }
    }

    /// Positions as x₀, y₀, x₁, y₁, … (float32).
    pub fn positions(&self) -> Vec<f32> {
        let t = self.target.as_ref();
        let block = |b: &Block| {
            let n = b.len();
            let (x, y) = (&b.row(0)[..n], &b.row(1)[..n]);
            x.iter().zip(y).flat_map(|(a, b)| [*a, *b]).collect()
        };
        match &self.chain {
            Chain::Ula(s, n) => block(Ula::new(t, *n).position(s)),
            Chain::Mala(s) => block(Mala::new(t).position(s)),
            Chain::Baoab(s) => match Underdamped::new(t, Scheme::Baoab, &[1.0], self.friction) {
                Ok(k) => block(k.position(s)),
                Err(_) => vec![],
            },
            Chain::Frames { frames, .. } => frames.row(self.step).to_vec(),
        }
    }

    /// The step count, σ (schedules), acceptance (MALA), mode weights (mixtures), the distance
    /// to exact draws (sliced Wasserstein, when the target has them), and why it stopped.
    pub fn stats(&self) -> Value {
        let p = self.positions();
        let n = p.len() / 2;
        let x = Array2::from_shape_vec((n, 2), p).expect("pairs");
        let finite = x.iter().all(|v| v.is_finite());
        let mode_weights = match (self.target.mixture(), finite) {
            (Some(m), true) => Some(langevin::metrics::mode_weights(x.view(), m)),
            _ => None,
        };
        let expected = self.target.mixture().map(|m| m.weights().to_vec());
        let distance = match (&self.exact, finite) {
            (Some(e), true) => {
                let k = n.min(e.nrows());
                Some(langevin::metrics::sliced_wasserstein(x.slice(ndarray::s![..k, ..]), e.view(), 32, 1))
            }
            _ => None,
        };
        let (sigma, done) = match &self.chain {
            Chain::Frames { sigmas, n_frames, .. } => (Some(sigmas[self.step]), self.step + 1 >= *n_frames),
            _ => (None, false),
        };
        json!({
            "step": self.step,
            "positions_fnv": langevin::io::checksum(x.view()),
            "sigma": sigma,
            "finished": done,
            "acceptance": (self.proposed > 0).then(|| self.accepted as f64 / self.proposed as f64),
            "mode_weights": mode_weights,
            "mode_weights_expected": expected,
            "sliced_wasserstein": distance,
            "step_size": self.step_size,
            "max_stable_step": self.stiffness.as_ref().map(|s| s.max_stable_step),
            "recommended_step": self.stiffness.as_ref().map(|s| s.recommended_step),
            "stopped": self.stopped,
            "target": self.target.name(),
            "sampler": self.config.sampler,
        })
    }

    /// The view: the target's default region (a box around its mass).
    pub fn bounds(&self) -> [f64; 4] {
        let pts = analysis::typical_samples(self.target.as_ref(), 500, 0).unwrap_or_else(|_| Array2::zeros((1, 2)));
        let r = Region::default_for(self.target.as_ref(), &pts);
        [r.lo[0], r.hi[0], r.lo[1], r.hi[1]]
    }

    /// log p on an nx × ny grid over `b` (row-major from the bottom-left), NaN where the
    /// target has no log-density.
    pub fn log_density_grid(&self, b: [f64; 4], nx: usize, ny: usize) -> Vec<f32> {
        let pts = grid(b, nx, ny);
        match langevin::target::eval_rows(self.target.as_ref(), pts.view()) {
            Ok((_, logp)) if self.target.has_log_density() => logp,
            _ => vec![f32::NAN; nx * ny],
        }
    }

    /// The score at an nx × ny grid over `b`: sx₀, sy₀, sx₁, … .
    pub fn score_grid(&self, b: [f64; 4], nx: usize, ny: usize) -> Vec<f32> {
        let pts = grid(b, nx, ny);
        match langevin::target::eval_rows(self.target.as_ref(), pts.view()) {
            Ok((s, _)) => s.iter().cloned().collect(),
            Err(_) => vec![f32::NAN; 2 * nx * ny],
        }
    }

    /// The score's stagnation points (seed 002): [{type: sink|saddle|source, x: [x, y]}].
    pub fn stagnation_points(&self) -> Value {
        let t = self.target.as_ref();
        let r = analysis::typical_samples(t, 1000, 0).and_then(|samples| {
            let f = Field::new(t);
            let o = AnalyzeOptions { region: Region::default_for(t, &samples), starts: 64, seed: 0, step_size: None };
            analysis::analyze(&f, &samples, &o)
        });
        match r
            .and_then(|r| serde_json::to_value(&r.stagnation_points).map_err(|e| langevin::Error::msg(e.to_string())))
        {
            Ok(v) => v,
            Err(_) => json!([]),
        }
    }
}

fn grid(b: [f64; 4], nx: usize, ny: usize) -> Array2<f32> {
    Array2::from_shape_fn((nx * ny, 2), |(k, c)| {
        let (i, j) = (k % nx, k / nx);
        if c == 0 {
            (b[0] + (b[1] - b[0]) * (i as f64 + 0.5) / nx as f64) as f32
        } else {
            (b[2] + (b[3] - b[2]) * (j as f64 + 0.5) / ny as f64) as f32
        }
    })
}

/// The page's handle on a [`Playground`].
#[wasm_bindgen]
pub struct Sim(Playground);

#[wasm_bindgen]
impl Sim {
    /// A new run from the page's JSON configuration; a bad one throws its message.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str) -> Result<Sim, JsError> {
        let c: Config = serde_json::from_str(config).map_err(|e| JsError::new(&format!("bad configuration: {e}")))?;
        Playground::new(c).map(Sim).map_err(|e| JsError::new(&e))
    }
    pub fn advance(&mut self, k: usize) {
        self.0.advance(k)
    }
    pub fn positions(&self) -> Vec<f32> {
        self.0.positions()
    }
    pub fn stats(&self) -> String {
        self.0.stats().to_string()
    }
    pub fn bounds(&self) -> Vec<f64> {
        self.0.bounds().to_vec()
    }
    pub fn log_density_grid(&self, b: &[f64], nx: usize, ny: usize) -> Vec<f32> {
        self.0.log_density_grid([b[0], b[1], b[2], b[3]], nx, ny)
    }
    pub fn score_grid(&self, b: &[f64], nx: usize, ny: usize) -> Vec<f32> {
        self.0.score_grid([b[0], b[1], b[2], b[3]], nx, ny)
    }
    pub fn stagnation_points(&self) -> String {
        self.0.stagnation_points().to_string()
    }
}
