//! Underdamped (kinetic) Langevin dynamics in physical units: BAOAB, OBABO and the plain
//! Euler–Maruyama discretization they improve on.
//!
//! The equation of seed 000, per coordinate with mass m, friction coefficient γ and
//! temperature kT:
//!
//! m ẍ = −∇U(x) − γ ẋ + √(2γkT) η(t),
//!
//! i.e. dx = v dt, dv = (F/m − (γ/m) v) dt + (√(2γkT)/m) dW with force F = −∇U. Its stationary
//! law is exp(−U/kT − Σ m v²/2kT): positions follow the Boltzmann distribution and every
//! velocity component has variance kT/m. γ/m is the collision rate; for m = 1 it is the
//! "friction" of OpenMM's and Leimkuhler–Matthews' convention. As m/γ → 0 the dynamics becomes
//! overdamped Langevin, dx = −∇U/γ dt + √(2kT/γ) dW, whose Euler–Maruyama step is ULA with
//! τ = kT Δt/γ (seed 000).
//!
//! Splitting (Leimkuhler & Matthews 2013): B = v += (h/m)F (kick), A = x += h v (drift),
//! O = v ← e^{−γh/m} v + √((1 − e^{−2γh/m}) kT/m) ξ (exact Ornstein–Uhlenbeck step).
//! BAOAB = B(h/2) A(h/2) O(h) A(h/2) B(h/2) samples positions of a harmonic potential exactly for
//! every stable h and has O(h²) configurational error in general; OBABO = O(h/2) B(h/2) A(h)
//! B(h/2) O(h/2). Both cost one force evaluation per step (the force at the end of a step is the
//! one at the start of the next).
//!
//! The score gives the force: a Boltzmann target at temperature kT has s = −∇U/kT, so F = kT s.
//! Other densities are U = −log p at kT = 1.

use super::{MarkovKernel, StepInfo};
use crate::block::Block;
use crate::error::Result;
use crate::error::{Param, Suggestion};
use crate::invalid;
use crate::rng::ParticleRng;
use crate::target::Target;
use crate::vmath::{LANES, V};

/// The splitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// B A O A B (Leimkuhler & Matthews).
    Baoab,
    /// O B A B O (Bussi & Parrinello).
    Obabo,
    /// Explicit Euler–Maruyama on (x, v): the baseline the splittings beat.
    EulerMaruyama,
}

impl Scheme {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Baoab => "baoab",
            Scheme::Obabo => "obabo",
            Scheme::EulerMaruyama => "underdamped-em",
        }
    }
}

/// Underdamped Langevin on a target: scheme, masses, friction. The step size of the driver is
/// the time step Δt; the temperature is the target's.
pub struct Underdamped<'a> {
    target: &'a dyn Target,
    scheme: Scheme,
    /// Mass of each coordinate.
    mass: Vec<f64>,
    friction: f64,
    kt: f64,
}

/// Positions, velocities and the force at the positions, for one block.
pub struct UnderdampedState {
    x: Block,
    v: Block,
    force: Block,
    z: Block,
}

impl<'a> Underdamped<'a> {
    /// `mass`: one value for every coordinate, or one per coordinate; `friction` γ > 0.
    pub fn new(target: &'a dyn Target, scheme: Scheme, mass: &[f64], friction: f64) -> Result<Self> {
        let d = target.dim();
        if mass.len() != 1 && mass.len() != d {
            return Err(invalid!(
                "`mass` has {} values; give one for all coordinates or one per coordinate ({d})",
                mass.len()
            ));
        }
        if let Some(m) = mass.iter().find(|m| !m.is_finite() || **m <= 0.0) {
            return Err(invalid!("`mass` {m} must be positive and finite"));
        }
        if !friction.is_finite() || friction <= 0.0 {
            return Err(invalid!(
                "`friction` {friction} must be positive and finite (γ in m ẍ = −∇U − γẋ + √(2γkT) η)"
            ));
        }
        let mass = if mass.len() == 1 { vec![mass[0]; d] } else { mass.to_vec() };
        Ok(Underdamped { target, scheme, mass, friction, kt: target.temperature().unwrap_or(1.0) })
    }

    /// The temperature kT the thermostat holds (the target's).
    pub fn temperature(&self) -> f64 {
        self.kt
    }

    /// F = kT s(x), into `force`.
    fn force(&self, x: &Block, force: &mut Block) -> Result<()> {
        self.target.eval(x, force, None)?;
        let kt = self.kt as f32;
        for v in force.data_mut() {
            *v *= kt;
        }
        Ok(())
    }
}

/// v += a f.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn kick(v: &mut [f32], f: &[f32], a: f32) {
    for j0 in (0..v.len()).step_by(LANES) {
        V::splat(a).mul_add(V::load(f, j0), V::load(v, j0)).store(v, j0);
    }
}

/// x += h v.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn drift(x: &mut [f32], v: &[f32], h: f32) {
    for j0 in (0..x.len()).step_by(LANES) {
        V::splat(h).mul_add(V::load(v, j0), V::load(x, j0)).store(x, j0);
    }
}

/// v ← c₁ v + c₂ z.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
fn thermostat(v: &mut [f32], z: &[f32], c1: f32, c2: f32) {
    for j0 in (0..v.len()).step_by(LANES) {
        V::splat(c1).mul_add(V::load(v, j0), V::splat(c2) * V::load(z, j0)).store(v, j0);
    }
}

/// What an underdamped step reports: nothing beyond the positions (the runner scans them for
/// non-finite values; the kinetic temperature is read from the state at kept draws).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnderdampedInfo;

impl StepInfo for UnderdampedInfo {}

impl MarkovKernel for Underdamped<'_> {
    type State = UnderdampedState;
    type Info = UnderdampedInfo;

    fn name(&self) -> &'static str {
        self.scheme.name()
    }
    fn dim(&self) -> usize {
        self.target.dim()
    }

    /// Velocities start from the Maxwell distribution N(0, kT/m).
    fn init(&self, x: Block, rng: &mut ParticleRng) -> Result<UnderdampedState> {
        let (d, n) = (x.dim(), x.len());
        let mut v = Block::zeros(d, n);
        rng.fill_normal(v.data_mut());
        for c in 0..d {
            let s = (self.kt / self.mass[c]).sqrt() as f32;
            v.row_mut(c).iter_mut().for_each(|u| *u *= s);
        }
        let mut force = Block::zeros(d, n);
        self.force(&x, &mut force)?;
        Ok(UnderdampedState { x, v, force, z: Block::zeros(d, n) })
    }

    fn step(&self, st: &mut UnderdampedState, h: f64, rng: &mut ParticleRng) -> Result<UnderdampedInfo> {
        let d = st.x.dim();
        match self.scheme {
            Scheme::Baoab => {
                rng.fill_normal(st.z.data_mut());
                for c in 0..d {
                    let m = self.mass[c];
                    let c1 = (-self.friction / m * h).exp();
                    let c2 = ((1.0 - c1 * c1) * self.kt / m).sqrt();
                    kick(st.v.row_mut(c), st.force.row(c), (0.5 * h / m) as f32);
                    drift(st.x.row_mut(c), st.v.row(c), (0.5 * h) as f32);
                    thermostat(st.v.row_mut(c), st.z.row(c), c1 as f32, c2 as f32);
                    drift(st.x.row_mut(c), st.v.row(c), (0.5 * h) as f32);
                }
                self.force(&st.x, &mut st.force)?;
                for c in 0..d {
                    kick(st.v.row_mut(c), st.force.row(c), (0.5 * h / self.mass[c]) as f32);
                }
            }
            Scheme::Obabo => {
                let half: Vec<(f32, f32)> = self
                    .mass
                    .iter()
                    .map(|&m| {
                        let c1 = (-self.friction / m * 0.5 * h).exp();
                        (c1 as f32, ((1.0 - c1 * c1) * self.kt / m).sqrt() as f32)
                    })
                    .collect();
                rng.fill_normal(st.z.data_mut());
                for c in 0..d {
                    thermostat(st.v.row_mut(c), st.z.row(c), half[c].0, half[c].1);
                    kick(st.v.row_mut(c), st.force.row(c), (0.5 * h / self.mass[c]) as f32);
                    drift(st.x.row_mut(c), st.v.row(c), h as f32);
                }
                self.force(&st.x, &mut st.force)?;
                rng.fill_normal(st.z.data_mut());
                for c in 0..d {
                    kick(st.v.row_mut(c), st.force.row(c), (0.5 * h / self.mass[c]) as f32);
                    thermostat(st.v.row_mut(c), st.z.row(c), half[c].0, half[c].1);
                }
            }
            Scheme::EulerMaruyama => {
                // x' = x + h v;  v' = v + h (F(x)/m − (γ/m) v) + (√(2γkT h)/m) ξ, all at the old state.
                rng.fill_normal(st.z.data_mut());
                for c in 0..d {
                    let m = self.mass[c];
                    drift(st.x.row_mut(c), st.v.row(c), h as f32);
                    let damp = (1.0 - h * self.friction / m) as f32;
                    let noise = ((2.0 * self.friction * self.kt * h).sqrt() / m) as f32;
                    thermostat(st.v.row_mut(c), st.z.row(c), damp, noise);
                    kick(st.v.row_mut(c), st.force.row(c), (h / m) as f32);
                }
                self.force(&st.x, &mut st.force)?;
            }
        }
        Ok(UnderdampedInfo)
    }

    fn position<'s>(&self, st: &'s UnderdampedState) -> &'s Block {
        &st.x
    }

    fn kinetic_sum(&self, st: &UnderdampedState) -> Option<f64> {
        let n = st.v.len();
        Some(
            (0..st.v.dim())
                .map(|c| self.mass[c] * st.v.row(c)[..n].iter().map(|u| (*u as f64).powi(2)).sum::<f64>())
                .sum(),
        )
    }

    fn batch_hint(&self) -> usize {
        self.target.preferred_block_size()
    }

    fn suggest(&self, _st: &UnderdampedState, dt: f64) -> Suggestion {
        Suggestion {
            param: Param::Dt,
            value: dt / 4.0,
            why: "a quarter of the current Δt; stiff potentials need Δt well below 2/ω_max",
        }
    }
}
