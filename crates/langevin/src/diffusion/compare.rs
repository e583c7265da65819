//! Quality against cost: every sampler at matched numbers of score evaluations (NFE), measured
//! against exact draws (MMD, sliced Wasserstein, mode-weight error), with the floor those
//! measures have between two sets of exact draws of the same size. The question a user asks,
//! which sampler for my budget, answered by a table and a picture.

use super::{DiffusionOptions, Method};
use crate::error::Result;
use crate::invalid_field;
use crate::metrics;
use crate::rng::LaneRng;
use crate::sample::{SampleOptions, Sampler, sample};
use crate::sampler::AnnealOptions;
use crate::target::Target;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

/// The samplers compared by default: every diffusion sampler (the ODE on a Heun grid so its
/// cost can be matched) and annealed Langevin.
pub const DEFAULT_SAMPLERS: &[&str] =
    &["annealed", "reverse-sde", "reverse-diffusion", "pc", "ode", "ddpm", "ddim", "edm", "dpmpp-2m"];

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Sampler names (of [`DEFAULT_SAMPLERS`]).
    pub samplers: Vec<String>,
    /// NFE budgets.
    pub nfe: Vec<usize>,
    /// Samples per run.
    pub particles: usize,
    /// Rows used by MMD (O(n²)).
    pub max_points: usize,
    /// Seed of the runs, the exact draws and the projections.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            samplers: DEFAULT_SAMPLERS.iter().map(|s| s.to_string()).collect(),
            nfe: vec![10, 20, 50, 100, 200, 500],
            particles: 20_000,
            max_points: 4000,
            seed: 0,
        }
    }
}

/// One sampler at one budget.
#[derive(Clone, Debug, Serialize)]
pub struct ComparePoint {
    /// Sampler.
    pub sampler: String,
    /// The budget asked for.
    pub nfe_budget: usize,
    /// Score evaluations the run made (≤ the budget).
    pub nfe: usize,
    /// The sampler's steps.
    pub steps: usize,
    /// MMD to exact draws (median-distance bandwidth of the exact draws).
    pub mmd: f64,
    /// Sliced 2-Wasserstein distance to exact draws.
    pub sliced_wasserstein: f64,
    /// ½ Σ |w − w_exact| over the mixture's components (total variation of the mode weights).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_weight_error: Option<f64>,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Samples per second.
    pub samples_per_second: f64,
}

/// The comparison.
#[derive(Clone, Debug, Serialize)]
pub struct CompareReport {
    /// Target.
    pub target: String,
    /// Samples per run.
    pub particles: usize,
    /// Threads.
    pub threads: usize,
    /// MMD between two exact sets of the same size: what no sampler can beat.
    pub mmd_floor: f64,
    /// Sliced Wasserstein between two exact sets.
    pub sliced_wasserstein_floor: f64,
    /// Mode-weight error of an exact set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_weight_error_floor: Option<f64>,
    /// Every (sampler, budget) that fits (a budget too small for a sampler is left out).
    pub points: Vec<ComparePoint>,
}

/// The sampler's options that spend at most `nfe` score evaluations, or None when it cannot
/// (EDM needs 3 for two steps, …).
fn at_budget(target: &dyn Target, name: &str, nfe: usize) -> Result<Option<Sampler>> {
    if name == "annealed" {
        // L levels × T steps (+ the final denoising step) with the default ladder's L.
        let (c, _) = crate::sampler::AnnealConfig::resolve(target, &AnnealOptions::default())?;
        let levels = c.ladder.levels().min(nfe.saturating_sub(1));
        if levels < 2 {
            return Ok(None);
        }
        let t = (nfe - 1) / levels;
        return Ok(Some(Sampler::Annealed {
            options: AnnealOptions {
                levels: Some(levels),
                steps_per_level: Some(t),
                denoise: true,
                ..Default::default()
            },
            noise: true,
        }));
    }
    let method = Method::from_name(name)?;
    let steps = match method {
        Method::Edm => nfe.div_ceil(2),
        Method::Pc => nfe / 2,
        // Heun on a grid (2 per step) and the final denoising step.
        Method::Ode => nfe.saturating_sub(1) / 2,
        Method::ReverseSde => nfe.saturating_sub(1),
        _ => nfe,
    };
    if steps < 1 {
        return Ok(None);
    }
    let options = DiffusionOptions {
        steps: Some(steps),
        solver: (method == Method::Ode).then_some(super::Solver::Heun),
        ..Default::default()
    };
    Ok(Some(Sampler::Diffusion { method, options }))
}

fn tv(a: &[f64], b: &[f64]) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

/// Run every sampler at every budget on `target` (which must have perturbed scores and exact
/// draws) and measure the results.
pub fn compare_samplers(target: &dyn Target, o: &CompareOptions) -> Result<CompareReport> {
    if o.nfe.is_empty() || o.nfe.contains(&0) {
        return Err(invalid_field!("nfe", "`nfe` must list budgets of at least 1 score evaluation"));
    }
    if o.particles < 2 {
        return Err(invalid_field!("particles", "`particles` must be at least 2"));
    }
    for s in &o.samplers {
        if !DEFAULT_SAMPLERS.contains(&s.as_str()) && s != "corrector" {
            return Err(invalid_field!(
                "samplers",
                "unknown sampler '{s}' to compare; choose among {}",
                DEFAULT_SAMPLERS.join(", ")
            ));
        }
    }
    let draw = |seed: u64| {
        target.sample_exact(o.particles, &mut LaneRng::new(seed, 0)).ok_or_else(|| {
            invalid_field!(
                "target",
                "comparing samplers needs exact draws of the target ('{}' has none): Gaussians and mixtures",
                target.name()
            )
        })
    };
    let exact = draw(o.seed ^ 0x5eed)?;
    let exact2 = draw(o.seed ^ 0xf100)?;
    let mut sub_rng = LaneRng::new(o.seed, 7);
    let exact_sub = metrics::subsample(exact.view(), o.max_points, &mut sub_rng);
    let bandwidth = metrics::median_distance(exact_sub.view(), exact_sub.view());
    let measure = |x: ArrayView2<f32>| -> (f64, f64, Option<f64>) {
        let mut r = LaneRng::new(o.seed, 8);
        let xs = metrics::subsample(x, o.max_points, &mut r);
        let m = metrics::mmd(xs.view(), exact_sub.view(), Some(bandwidth)).0;
        let sw = metrics::sliced_wasserstein(x, exact.view(), 64, o.seed);
        let w = target
            .mixture()
            .filter(|m| m.n_components() > 1)
            .map(|mix| tv(&metrics::mode_weights(x, mix), mix.weights()));
        (m, sw, w)
    };
    let floor = measure(exact2.view());
    let mut points = Vec::new();
    for name in &o.samplers {
        for &budget in &o.nfe {
            let Some(sampler) = at_budget(target, name, budget)? else { continue };
            let out = sample(
                target,
                &SampleOptions { sampler, particles: Some(o.particles), seed: o.seed, ..Default::default() },
            )?;
            let nfe = match &out.report.diffusion {
                Some(d) => d.nfe,
                None => out.resolved.steps + usize::from(out.resolved.anneal.as_ref().is_some_and(|a| a.denoise)),
            };
            let steps = out.report.diffusion.as_ref().map_or(out.resolved.steps, |d| d.steps);
            let x: &Array2<f32> = &out.run.samples;
            let (mmd, sw, w) = measure(x.view());
            points.push(ComparePoint {
                sampler: name.clone(),
                nfe_budget: budget,
                nfe,
                steps,
                mmd,
                sliced_wasserstein: sw,
                mode_weight_error: w,
                seconds: out.run.seconds,
                samples_per_second: o.particles as f64 / out.run.seconds,
            });
        }
    }
    Ok(CompareReport {
        target: target.name(),
        particles: o.particles,
        threads: rayon::current_num_threads(),
        mmd_floor: floor.0,
        sliced_wasserstein_floor: floor.1,
        mode_weight_error_floor: floor.2,
        points,
    })
}
