//! ODE and SDE solvers over batches of particles, in the spirit of diffrax: the vector field
//! (or the SDE's drift and diffusion), the solver, the step-size controller and what to keep
//! (a callback) are separate things combined by one call.
//!
//! - ODEs: [`solve_grid`] with a fixed grid of times (Euler, Heun, RK4, or Dormand–Prince's
//!   fifth-order solution), [`solve_adaptive`] with Dormand–Prince 5(4), rtol/atol and a PI
//!   step-size controller, under a step budget.
//! - SDEs with additive noise dx = a(t, x) dt + g(t) dW: [`solve_sde`] with Euler–Maruyama or
//!   stochastic Heun.
//!
//! Time may run backwards (a decreasing grid, t₁ < t₀): the reverse processes of diffusion do.
//! Steps are shared by the particles of one batch (as in torchdiffeq and score_sde's RK45 on a
//! flattened batch); the batches themselves depend on N, d and the field only, never on threads.

use crate::error::{Error, Param, Result, Suggestion};
use crate::field::VectorField;
use crate::invalid_field;
use crate::particles::Particles;

/// An ODE solver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Euler, order 1 (1 evaluation per step).
    Euler,
    /// Heun (explicit trapezoid), order 2 (2 per step).
    Heun,
    /// Classical Runge–Kutta, order 4 (4 per step).
    Rk4,
    /// Dormand–Prince 5(4): adaptive with tolerances, or its fifth-order solution on a grid
    /// (6 evaluations per step; the seventh is the next step's first).
    Dopri5,
}

/// Solver names, as [`Solver::from_name`] accepts them.
pub const SOLVER_NAMES: &[&str] = &["euler", "heun", "rk4", "dopri5"];

impl Solver {
    /// By name.
    pub fn from_name(name: &str) -> Result<Solver> {
        Ok(match name {
            "euler" => Solver::Euler,
            "heun" => Solver::Heun,
            "rk4" => Solver::Rk4,
            "dopri5" => Solver::Dopri5,
            _ => {
                return Err(invalid_field!(
                    "solver",
                    "unknown ODE solver '{name}'; choose one of {}",
                    SOLVER_NAMES.join(", ")
                ));
            }
        })
    }
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Solver::Euler => "euler",
            Solver::Heun => "heun",
            Solver::Rk4 => "rk4",
            Solver::Dopri5 => "dopri5",
        }
    }
    /// Order of accuracy.
    pub fn order(self) -> usize {
        match self {
            Solver::Euler => 1,
            Solver::Heun => 2,
            Solver::Rk4 => 4,
            Solver::Dopri5 => 5,
        }
    }
}

/// The adaptive controller: tolerances and a step budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// The most steps (accepted and rejected) before giving up with an error.
    pub max_steps: usize,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { rtol: 1e-5, atol: 1e-5, max_steps: 10_000 }
    }
}

impl Tolerances {
    /// rtol, atol > 0, budget ≥ 1.
    pub fn check(&self) -> Result<()> {
        for (f, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid_field!(f, "`{f}` = {v} must be positive and finite"));
            }
        }
        if self.max_steps == 0 {
            return Err(invalid_field!("max_steps", "`max_steps` must be at least 1"));
        }
        Ok(())
    }
}

/// What a solve did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SolveStats {
    /// Evaluations of the vector field per particle.
    pub nfe: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps (adaptive only).
    pub rejected: usize,
    /// The start time of every accepted step, in order.
    pub step_starts: Vec<f64>,
}

/// One accepted step, as a callback sees it.
pub struct OdeStep<'a, X> {
    /// Accepted steps so far, from 1.
    pub index: usize,
    /// The time reached.
    pub t: f64,
    /// The state at `t`.
    pub x: &'a X,
}

/// A callback that sees every accepted step; an error from it stops the solve.
pub type OdeCallback<'c, X> = &'c mut dyn FnMut(OdeStep<'_, X>) -> Result<()>;

fn non_finite<X: Particles>(x: &X, step: usize, t: f64, suggest: Option<Suggestion>) -> Result<()> {
    match x.first_non_finite() {
        Some(p) => Err(Error::NonFinite { step, particle: p, detail: format!(" (time t = {t:.4e})"), suggest }),
        None => Ok(()),
    }
}

// Dormand–Prince 5(4) tableau.
const DP_C: [f64; 6] = [0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
const DP_A: [&[f64]; 6] = [
    &[0.2],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
];
/// b − b̂: the fifth- minus the fourth-order weights (stages 1..7).
const DP_E: [f64; 7] =
    [71.0 / 57600.0, 0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0, 22.0 / 525.0, -1.0 / 40.0];

/// Work buffers of a Runge–Kutta step.
struct Stages<X> {
    k: Vec<X>,
    y: X,
}

impl<X: Particles> Stages<X> {
    fn new(x: &X, n: usize) -> Self {
        Stages { k: (0..n).map(|_| x.zeros_like()).collect(), y: x.zeros_like() }
    }

    /// y ← x + h Σ aⱼ kⱼ.
    fn combine(&mut self, x: &X, h: f64, a: &[f64]) {
        self.y.copy_from(x);
        for (j, &aj) in a.iter().enumerate() {
            if aj != 0.0 {
                self.y.drift_add((h * aj) as f32, &self.k[j]);
            }
        }
    }

    /// One Dormand–Prince step from (t, x) with k[0] = v(t, x) known: the fifth-order solution
    /// in `y`, k[6] = v(t + h, y) (the next step's first stage).
    fn dopri<F: VectorField<X> + ?Sized>(&mut self, f: &F, t: f64, x: &X, h: f64) -> Result<()> {
        for s in 0..6 {
            self.combine(x, h, DP_A[s]);
            let (head, tail) = self.k.split_at_mut(s + 1);
            let _ = head;
            f.velocity(t + DP_C[s] * h, &self.y, &mut tail[0])?;
        }
        Ok(())
    }
}

/// Integrate dx/dt = v(t, x) over the times `grid` (increasing or decreasing) with a fixed-step
/// solver; `x` holds the start at `grid[0]` and ends at the last time. The callback sees every
/// step. A non-finite value stops the solve at its step, suggesting twice the steps.
pub fn solve_grid<X: Particles, F: VectorField<X> + ?Sized>(
    f: &F,
    solver: Solver,
    x: &mut X,
    grid: &[f64],
    callback: OdeCallback<'_, X>,
) -> Result<SolveStats> {
    let n_stages = match solver {
        Solver::Euler => 1,
        Solver::Heun => 2,
        Solver::Rk4 => 4,
        Solver::Dopri5 => 7,
    };
    let mut st = Stages::new(x, n_stages);
    let mut stats = SolveStats::default();
    let steps = grid.len().saturating_sub(1);
    let suggest = Suggestion { param: Param::Steps, value: 2.0 * steps as f64, why: "twice the steps" };
    for (i, w) in grid.windows(2).enumerate() {
        let (t, h) = (w[0], w[1] - w[0]);
        // Dormand–Prince's last stage is the next step's first (FSAL).
        if solver != Solver::Dopri5 || i == 0 {
            f.velocity(t, x, &mut st.k[0])?;
        }
        let finite = match solver {
            Solver::Euler => {
                stats.nfe += 1;
                x.drift_add(h as f32, &st.k[0])
            }
            Solver::Heun => {
                st.combine(x, h, &[1.0]);
                f.velocity(t + h, &st.y, &mut st.k[1])?;
                stats.nfe += 2;
                x.drift_add((0.5 * h) as f32, &st.k[0]) & x.drift_add((0.5 * h) as f32, &st.k[1])
            }
            Solver::Rk4 => {
                for (s, (c, a)) in [(0.5, 0.5), (0.5, 0.5), (1.0, 1.0)].into_iter().enumerate() {
                    st.y.copy_from(x);
                    st.y.drift_add((a * h) as f32, &st.k[s]);
                    let (head, tail) = st.k.split_at_mut(s + 1);
                    let _ = head;
                    f.velocity(t + c * h, &st.y, &mut tail[0])?;
                }
                stats.nfe += 4;
                let mut ok = true;
                for (s, b) in [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0].into_iter().enumerate() {
                    ok &= x.drift_add((b * h) as f32, &st.k[s]);
                }
                ok
            }
            Solver::Dopri5 => {
                st.dopri(f, t, x, h)?;
                stats.nfe += 6 + usize::from(i == 0);
                x.copy_from(&st.y);
                st.k.swap(0, 6);
                x.first_non_finite().is_none()
            }
        };
        stats.accepted += 1;
        stats.step_starts.push(t);
        if !finite {
            non_finite(x, i + 1, w[1], Some(suggest))?;
        }
        callback(OdeStep { index: i + 1, t: w[1], x })?;
    }
    Ok(stats)
}

/// Integrate dx/dt = v(t, x) from t0 to t1 (either direction) with Dormand–Prince 5(4) and a
/// PI step-size controller (Hairer, Nørsett & Wanner II, IV.2: factor =
/// 0.9·err^{−0.7/5}·err_prev^{0.4/5}, within [0.2, 10]). The error is the RMS over all particles
/// and coordinates of (error/(atol + rtol·|x|)). The first step follows Hairer's rule
/// (0.01·‖x‖/‖v‖ in the scaled norm). More than `tol.max_steps` steps stop with an error that
/// names the time reached.
pub fn solve_adaptive<X: Particles, F: VectorField<X> + ?Sized>(
    f: &F,
    x: &mut X,
    t0: f64,
    t1: f64,
    tol: &Tolerances,
    callback: OdeCallback<'_, X>,
) -> Result<SolveStats> {
    tol.check()?;
    let mut st = Stages::new(x, 7);
    let mut err_buf = x.zeros_like();
    let span = t1 - t0;
    let dir = span.signum();
    let mut stats = SolveStats::default();
    let mut t = t0;
    f.velocity(t, x, &mut st.k[0])?;
    stats.nfe += 1;
    let d0 = x.error_norm(x, x, tol.atol, tol.rtol);
    let d1 = st.k[0].error_norm(x, x, tol.atol, tol.rtol);
    let mut h = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 * span.abs() } else { 0.01 * d0 / d1 };
    h = h.min(span.abs()) * dir;
    let mut err_prev: f64 = 1e-4;
    let mut rejected_last = false;
    while (t1 - t) * dir > 0.0 {
        if stats.accepted + stats.rejected >= tol.max_steps {
            return Err(invalid_field!(
                "max_steps",
                "the adaptive ODE solver used its budget of {} steps and reached only t = {t:.6e} of [{t0:.6e}, {t1:.6e}] \
                 (step {h:.3e}). Loosen `rtol`/`atol`, raise `max_steps`, or use a fixed-step \
                 solver with `steps`",
                tol.max_steps
            ));
        }
        if (t + h - t1) * dir > 0.0 {
            h = t1 - t;
        }
        st.dopri(f, t, x, h)?;
        stats.nfe += 6;
        // error = h Σ eⱼ kⱼ
        err_buf.copy_from(&st.k[0]);
        err_buf.scale_add((h * DP_E[0]) as f32, 0.0, x);
        for (j, &e) in DP_E.iter().enumerate().skip(1) {
            if e != 0.0 {
                err_buf.drift_add((h * e) as f32, &st.k[j]);
            }
        }
        let err = err_buf.error_norm(x, &st.y, tol.atol, tol.rtol);
        if !err.is_finite() {
            // A NaN from the field: shrink hard, and fail when the step cannot shrink further.
            if h.abs() < 1e-12 * span.abs() {
                non_finite(
                    &st.y,
                    stats.accepted + 1,
                    t + h,
                    Some(Suggestion { param: Param::Rtol, value: tol.rtol / 10.0, why: "a tenth of the current rtol" }),
                )?;
                return Err(Error::msg(format!("the ODE's vector field is not finite near t = {t:.6e}")));
            }
            stats.rejected += 1;
            h *= 0.1;
            rejected_last = true;
            continue;
        }
        if err <= 1.0 {
            t += h;
            x.copy_from(&st.y);
            st.k.swap(0, 6);
            stats.accepted += 1;
            stats.step_starts.push(t - h);
            callback(OdeStep { index: stats.accepted, t, x })?;
            let mut fac = 0.9 * err.max(1e-10).powf(-0.7 / 5.0) * err_prev.powf(0.4 / 5.0);
            fac = fac.clamp(0.2, 10.0);
            if rejected_last {
                fac = fac.min(1.0);
            }
            h *= fac;
            err_prev = err.max(1e-4);
            rejected_last = false;
        } else {
            stats.rejected += 1;
            h *= (0.9 * err.powf(-0.2)).max(0.2);
            rejected_last = true;
        }
    }
    Ok(stats)
}

/// An SDE solver for additive noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdeSolver {
    /// Euler–Maruyama: x + a h + g √|h| z (weak order 1; 1 evaluation per step).
    EulerMaruyama,
    /// Stochastic Heun for additive noise: predictor x̃ = x + a h + g √|h| z, then
    /// x + ½(a(t, x) + a(t + h, x̃)) h + ½(g(t) + g(t + h)) √|h| z (2 evaluations per step).
    Heun,
}

/// The terms of an SDE with additive noise dx = a(t, x) dt + g(t) dW (diffrax's terms).
pub struct SdeTerms<'a, F: ?Sized> {
    /// The drift a(t, x).
    pub drift: &'a F,
    /// The noise scale g(t).
    pub diffusion: &'a dyn Fn(f64) -> f64,
}

/// Integrate dx = a(t, x) dt + g(t) dW over `grid` (either direction; backwards in time the
/// noise scale is still g √|h|). When `last_noise` is false the final step adds no noise (the
/// "noise removal" of score_sde). The callback sees every step. Returns the evaluations of `a`
/// per particle.
pub fn solve_sde<X: Particles, F: VectorField<X> + ?Sized>(
    terms: SdeTerms<'_, F>,
    solver: SdeSolver,
    x: &mut X,
    grid: &[f64],
    last_noise: bool,
    rng: &mut X::Noise,
    callback: OdeCallback<'_, X>,
) -> Result<usize> {
    let (drift, g) = (terms.drift, terms.diffusion);
    let (mut a, mut a2, mut z, mut y) = (x.zeros_like(), x.zeros_like(), x.zeros_like(), x.zeros_like());
    let mut nfe = 0;
    let n = grid.len().saturating_sub(1);
    let suggest = Suggestion { param: Param::Steps, value: 2.0 * n as f64, why: "twice the steps" };
    for (i, w) in grid.windows(2).enumerate() {
        let (t, h) = (w[0], w[1] - w[0]);
        let noise = last_noise || i + 1 < n;
        drift.velocity(t, x, &mut a)?;
        nfe += 1;
        let sq = h.abs().sqrt();
        if noise {
            z.fill_normal(rng);
        }
        let finite = match solver {
            SdeSolver::EulerMaruyama => {
                if noise {
                    x.langevin_add(h as f32, &a, (g(t) * sq) as f32, &z)
                } else {
                    x.drift_add(h as f32, &a)
                }
            }
            SdeSolver::Heun => {
                y.copy_from(x);
                if noise {
                    y.langevin_add(h as f32, &a, (g(t) * sq) as f32, &z);
                } else {
                    y.drift_add(h as f32, &a);
                }
                drift.velocity(w[1], &y, &mut a2)?;
                nfe += 1;
                let mut ok = x.drift_add((0.5 * h) as f32, &a) & x.drift_add((0.5 * h) as f32, &a2);
                if noise {
                    ok &= x.drift_add((0.5 * (g(t) + g(w[1])) * sq) as f32, &z);
                }
                ok
            }
        };
        if !finite {
            non_finite(x, i + 1, w[1], Some(suggest))?;
        }
        callback(OdeStep { index: i + 1, t: w[1], x })?;
    }
    Ok(nfe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::rng::ParticleRng;

    /// dx/dt = −θ x.
    struct Decay(f64);
    impl VectorField<Block> for Decay {
        fn dim(&self) -> usize {
            1
        }
        fn velocity(&self, _t: f64, x: &Block, out: &mut Block) -> Result<()> {
            out.copy_from(x);
            out.scale_add(-self.0 as f32, 0.0, x);
            Ok(())
        }
    }

    fn error(solver: Solver, steps: usize) -> f64 {
        let theta = 3.0;
        let mut x = Block::zeros(1, 1);
        x.row_mut(0)[0] = 1.0;
        let grid: Vec<f64> = (0..=steps).map(|i| i as f64 / steps as f64).collect();
        solve_grid(&Decay(theta), solver, &mut x, &grid, &mut |_| Ok(())).unwrap();
        (x.row(0)[0] as f64 - (-theta).exp()).abs()
    }

    /// The convergence orders of the fixed-step solvers, from the slope of the global error on
    /// dx/dt = −3x over [0, 1] when the steps double (coarse grids keep the error far above f32
    /// rounding). An order-p solver must show a slope above p − 0.35; the slope may exceed p
    /// before the asymptotic regime (Dormand–Prince's small error constant), but by less than 1,
    /// so a solver of the next lower order fails.
    #[test]
    fn fixed_step_solvers_converge_at_their_orders() {
        for (solver, n) in [(Solver::Euler, 64), (Solver::Heun, 32), (Solver::Rk4, 8), (Solver::Dopri5, 4)] {
            let (e1, e2) = (error(solver, n), error(solver, 2 * n));
            let slope = (e1 / e2).log2();
            let p = solver.order() as f64;
            assert!(
                slope > p - 0.35 && slope < p + 1.0,
                "{solver:?}: slope {slope:.3} (errors {e1:.3e}, {e2:.3e}), order {p}"
            );
        }
    }

    #[test]
    fn the_adaptive_solver_meets_its_tolerance_in_either_direction_and_stops_at_its_budget() {
        let mut x = Block::zeros(1, 16);
        x.row_mut(0).fill(1.0);
        let tol = Tolerances { rtol: 1e-6, atol: 1e-8, max_steps: 1000 };
        let stats = solve_adaptive(&Decay(3.0), &mut x, 0.0, 2.0, &tol, &mut |_| Ok(())).unwrap();
        let want = (-6.0f64).exp();
        assert!((x.row(0)[0] as f64 - want).abs() < 1e-6, "{} vs {want}", x.row(0)[0]);
        assert!(stats.accepted > 5 && stats.nfe == 1 + 6 * (stats.accepted + stats.rejected), "{stats:?}");
        // Backwards: from e^{−6} at t = 2 to 1 at t = 0.
        let stats = solve_adaptive(&Decay(3.0), &mut x, 2.0, 0.0, &tol, &mut |_| Ok(())).unwrap();
        assert!((x.row(0)[0] - 1.0).abs() < 2e-5, "{}", x.row(0)[0]);
        assert!(stats.step_starts.windows(2).all(|w| w[1] < w[0]));
        // Tighter tolerances take more steps.
        let mut y = Block::zeros(1, 16);
        y.row_mut(0).fill(1.0);
        let tight = solve_adaptive(
            &Decay(3.0),
            &mut y,
            0.0,
            2.0,
            &Tolerances { rtol: 1e-9, atol: 1e-9, max_steps: 1000 },
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(tight.accepted > stats.accepted, "{} vs {}", tight.accepted, stats.accepted);
        let e = solve_adaptive(
            &Decay(3.0),
            &mut y,
            0.0,
            2.0,
            &Tolerances { rtol: 1e-9, atol: 1e-9, max_steps: 3 },
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("max_steps"));
        assert!(e.to_string().contains("reached only t ="), "{e}");
        assert_eq!(Tolerances { rtol: 0.0, ..Default::default() }.check().unwrap_err().field(), Some("rtol"));
        assert_eq!(Solver::from_name("rk45").unwrap_err().field(), Some("solver"));
    }

    /// The Ornstein–Uhlenbeck process dX = −θX dt + σ dW (seed 004) from X₀ = 2: exact mean
    /// 2e^{−θt} and variance σ²(1 − e^{−2θt})/(2θ) at t = 2. Euler–Maruyama's variance is off by
    /// O(h): its error halves when h halves (weak order 1); stochastic Heun's is far smaller.
    #[test]
    fn ornstein_uhlenbeck_moments_and_the_weak_order_of_euler_maruyama() {
        let (theta, sigma, t_end, n) = (1.0, 1.0, 2.0, 1usize << 19);
        let moments = |solver: SdeSolver, steps: usize| {
            let mut x = Block::zeros(1, n);
            x.row_mut(0)[..n].fill(2.0);
            let mut rng = ParticleRng::new(7, 0, x.stride());
            let grid: Vec<f64> = (0..=steps).map(|i| t_end * i as f64 / steps as f64).collect();
            let terms = SdeTerms { drift: &Decay(theta), diffusion: &|_| sigma };
            solve_sde(terms, solver, &mut x, &grid, true, &mut rng, &mut |_| Ok(())).unwrap();
            let v = &x.row(0)[..n];
            let m = v.iter().map(|&a| a as f64).sum::<f64>() / n as f64;
            (m, v.iter().map(|&a| (a as f64 - m).powi(2)).sum::<f64>() / n as f64)
        };
        let var = sigma * sigma * (1.0 - (-2.0 * theta * t_end).exp()) / (2.0 * theta);
        let mean = 2.0 * (-theta * t_end).exp();
        // Monte Carlo standard errors with n = 2¹⁹ draws: mean √(var/n) ≈ 9.6e-4, variance
        // var·√(2/n) ≈ 9.3e-4.
        let se_v = var * (2.0 / n as f64).sqrt();
        let (m_h, v_h) = moments(SdeSolver::EulerMaruyama, 20);
        let (_, v_h2) = moments(SdeSolver::EulerMaruyama, 40);
        // EM's exact discrete variance error at h = 0.1 is about −5% (θh/(2 − θh) of the
        // stationary variance): far outside the Monte Carlo error, and it halves with h.
        let (e1, e2) = (v_h - var, v_h2 - var);
        assert!(e1.abs() > 20.0 * se_v, "EM variance error {e1:.3e} should be visible");
        let ratio = e1 / e2;
        assert!(
            (ratio - 2.0).abs() < 0.4,
            "EM variance errors {e1:.3e}, {e2:.3e}: ratio {ratio:.3} (weak order 1 gives 2)"
        );
        assert!(
            (m_h - mean * (1.0f64 - 0.1).powi(20) / (-2.0f64).exp()).abs() < 5.0 * (var / n as f64).sqrt(),
            "EM mean {m_h}"
        );
        let (m_heun, v_heun) = moments(SdeSolver::Heun, 20);
        assert!((m_heun - mean).abs() < 0.01 * mean, "Heun mean {m_heun} vs {mean}");
        assert!((v_heun - var).abs() < e1.abs() / 5.0, "Heun variance {v_heun} vs {var} (EM off by {e1:.3e})");
    }
}
