//! # langevin
//!
//! Langevin dynamics and score-based sampling in Rust: sample any density known through its
//! score ∇log p with the Langevin family, check the result against exact answers, and measure
//! it.
//!
//! The seed formula of the whole toolkit is the unadjusted Langevin step
//!
//! x ← x + τ ∇ₓ log p(x) + √(2τ) z,  z ~ N(0, I),
//!
//! the Euler–Maruyama discretization of the overdamped Langevin equation, whose stationary law
//! is the Boltzmann distribution p ∝ exp(−U/kT) for U = −kT log p.
//!
//! ```
//! use langevin::sample::{sample, SampleOptions, Sampler};
//! use langevin::sampler::{run, Init, RunConfig, Ula};
//! use langevin::target::{builtin, Target};
//!
//! // 0.8·N((5,5), I) + 0.2·N((−5,−5), I), the toy of Song & Ermon (2019).
//! let target = builtin::build("ncsn-toy", &[]).unwrap();
//! // One call, defaults derived from the target:
//! let out = sample(target.as_ref(), &SampleOptions { particles: Some(1000), seed: 1, ..Default::default() }).unwrap();
//! assert_eq!(out.run.samples.dim(), (1000, 2));
//! // Or a kernel and the runner, every setting explicit:
//! let cfg = RunConfig { particles: 1000, steps: 200, step_size: 0.1, seed: 1, ..Default::default() };
//! let out = run(&Ula::new(target.as_ref(), true), &target.default_init(), &cfg).unwrap();
//! assert_eq!(out.samples.dim(), (1000, 2));
//! ```
//!
//! Modules, named after the ideas of the seed documents:
//! - [`field`]: the two currencies, a score s(x, σ) over noise levels and a vector field v(t, x);
//! - [`target`]: densities and potentials, with exact perturbed scores where they exist;
//! - [`sample`]: sampling as one call (a sampler by value or name, derived defaults with notes,
//!   typed reports);
//! - [`sampler`]: ULA, MALA, underdamped Langevin (stationary kernels), annealed Langevin (a
//!   function over a score and a [`ladder::Ladder`]), and the deterministic block runners;
//! - [`diffusion`]: diffusion in continuous time on any score: schedules (VE, VP, sub-VP,
//!   cosine, EDM), ODE/SDE solvers, the reverse SDE, predictor–corrector, the probability-flow
//!   ODE and its likelihoods, DDPM, DDIM, EDM and DPM-Solver++;
//! - [`posterior`]: Bayesian regression posteriors from data, and SGLD;
//! - [`analysis`]: the score as a flow: stagnation points, divergence, stiffness;
//! - [`diagnostics`]: moments, ESS, R-hat; [`metrics`]: distances between sample sets;
//! - [`rng`], [`vmath`], [`block`], [`particles`]: the vectorized machinery underneath (one
//!   random stream per particle); [`io`]: files.

// Explicit index loops are the clearest form for the lane-parallel kernels (`for j in 0..LANES`)
// and the small matrix code, and they are what the vectorizer sees best.
#![allow(clippy::needless_range_loop)]

pub mod analysis;
pub mod block;
pub mod diagnostics;
pub mod diffusion;
mod error;
pub mod field;
pub mod io;
pub mod ladder;
pub mod mem;
pub mod metrics;
pub mod particles;
pub mod posterior;
pub mod rng;
pub mod sample;
pub mod sampler;
pub mod target;
pub mod vmath;

pub use error::{Error, Param, Result, Suggestion};
