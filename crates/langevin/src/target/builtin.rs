//! Built-in targets, by name: the standard test problems of the sampling literature.
//!
//! Each takes optional parameters, written `name:key=value,key=value`
//! (e.g. `gaussian:dim=100,cond=1000`); `langevin targets` lists them with their defaults.

use super::{Boltzmann, Covariance, GaussianMixture, Marginal, Potential, Scales, Target, eval_pointwise};
use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::LaneRng;
use crate::sampler::Init;
use nalgebra::DMatrix;
use ndarray::Array2;
use std::sync::Arc;

/// A parameter of a built-in target.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Key in `name:key=value`.
    pub name: &'static str,
    /// Default value.
    pub default: f64,
    /// What it means.
    pub help: &'static str,
}

/// Description of a built-in target.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinInfo {
    /// Name used on the command line.
    pub name: &'static str,
    /// One-line description, with the formula.
    pub description: &'static str,
    /// Parameters and defaults.
    pub params: &'static [Param],
}

const P_TEMP_HALF: Param = Param { name: "temperature", default: 0.5, help: "kT; p ∝ exp(-U/kT)" };

/// All built-in targets.
pub const BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "ncsn-toy",
        description: "0.8·N((5,5), I) + 0.2·N((-5,-5), I): the toy of Song & Ermon (2019) where plain Langevin gets the mode weights wrong",
        params: &[],
    },
    BuiltinInfo {
        name: "gmm40",
        description: "the GMM-40 benchmark of the sampling literature (Midgley et al. 2023): 40 equal-weight Gaussians with std softplus(1) = 1.313, means uniform in [-40, 40]² from a fixed seed",
        params: &[],
    },
    BuiltinInfo {
        name: "gaussian",
        description: "N(0, Σ) with variances log-spaced from 1 down to 1/cond (optionally rotated)",
        params: &[
            Param { name: "dim", default: 2.0, help: "dimension" },
            Param { name: "cond", default: 1.0, help: "condition number of Σ (largest/smallest variance)" },
            Param { name: "rotate", default: 0.0, help: "1 = apply a fixed random rotation (full covariance)" },
        ],
    },
    BuiltinInfo {
        name: "double-well",
        description: "1-D Boltzmann target, U(x) = barrier·(x²-1)² + tilt·x",
        params: &[
            Param { name: "barrier", default: 1.0, help: "height of the barrier at x=0" },
            Param { name: "tilt", default: 0.25, help: "linear tilt; > 0 favours the left well" },
            P_TEMP_HALF,
        ],
    },
    BuiltinInfo {
        name: "many-well",
        description: "d/2 independent copies of U(x,y) = x⁴ - 6x² - 0.5x + 0.5y² (2^(d/2) modes)",
        params: &[
            Param { name: "dim", default: 32.0, help: "dimension (even)" },
            Param { name: "temperature", default: 1.0, help: "kT" },
        ],
    },
    BuiltinInfo {
        name: "muller-brown",
        description: "2-D Müller-Brown potential (standard parameters): three minima, two saddles",
        params: &[Param { name: "temperature", default: 10.0, help: "kT (energies range over about 150 units)" }],
    },
    BuiltinInfo {
        name: "lj-cluster",
        description: "Lennard-Jones cluster of N atoms in 3-D, U = Σ 4ε[(σ/r)¹² − (σ/r)⁶] + a harmonic wall so it cannot evaporate",
        params: &[
            Param { name: "atoms", default: 13.0, help: "number of atoms N (d = 3N)" },
            Param { name: "epsilon", default: 1.0, help: "well depth ε" },
            Param { name: "sigma", default: 1.0, help: "length scale σ" },
            Param {
                name: "wall_radius",
                default: 0.0,
                help: "radius of the confining wall around the origin (0: 1 + 1.5·N^(1/3) σ)",
            },
            Param { name: "wall_k", default: 100.0, help: "stiffness of the wall beyond its radius" },
            Param { name: "temperature", default: 0.2, help: "kT in units of ε" },
        ],
    },
    BuiltinInfo {
        name: "banana",
        description: "Rosenbrock density log p = -(b·(y-x²)² + (a-x)²)/scale (Goodman & Weare 2010)",
        params: &[
            Param { name: "a", default: 1.0, help: "x-location" },
            Param { name: "b", default: 100.0, help: "curvature (narrowness of the ridge)" },
            Param { name: "scale", default: 20.0, help: "overall scale" },
        ],
    },
    BuiltinInfo {
        name: "funnel",
        description: "Neal's funnel: v ~ N(0, scale²), x_i | v ~ N(0, e^v), i = 1..d-1",
        params: &[
            Param { name: "dim", default: 10.0, help: "dimension (v plus d-1 coordinates)" },
            Param { name: "scale", default: 3.0, help: "standard deviation of v" },
        ],
    },
    BuiltinInfo {
        name: "ring",
        description: "2-D ring, log p = -(|x| - radius)²/(2·width²)",
        params: &[
            Param { name: "radius", default: 3.0, help: "radius" },
            Param { name: "width", default: 0.25, help: "radial standard deviation" },
        ],
    },
];

/// Names of all built-in targets.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

/// Look up a built-in's parameters, with `given` overriding the defaults.
fn resolve(info: &BuiltinInfo, given: &[(String, f64)]) -> Result<Vec<f64>> {
    for (k, _) in given {
        if !info.params.iter().any(|p| p.name == k) {
            let valid: Vec<&str> = info.params.iter().map(|p| p.name).collect();
            return Err(invalid!(
                "target '{}' has no parameter '{k}'; {}",
                info.name,
                if valid.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("its parameters are: {}", valid.join(", "))
                }
            ));
        }
    }
    Ok(info
        .params
        .iter()
        .map(|p| given.iter().rev().find(|(k, _)| k == p.name).map_or(p.default, |(_, v)| *v))
        .collect())
}

fn positive(target: &str, name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(invalid!("target '{target}': parameter {name} = {v} must be positive and finite"))
    }
}

fn count(target: &str, name: &str, v: f64) -> Result<usize> {
    if v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v <= 1e7 {
        Ok(v as usize)
    } else {
        Err(invalid!("target '{target}': parameter {name} = {v} must be a positive whole number"))
    }
}

/// Build the built-in target `name` with parameters `params` (unlisted ones take defaults).
pub fn build(name: &str, params: &[(String, f64)]) -> Result<Arc<dyn Target>> {
    let Some(info) = BUILTINS.iter().find(|b| b.name == name) else {
        return Err(invalid!(
            "unknown target '{name}'; built-in targets: {} (or give a .toml file)",
            names().join(", ")
        ));
    };
    let p = resolve(info, params)?;
    Ok(match name {
        "ncsn-toy" => Arc::new(
            GaussianMixture::new(
                vec![0.8, 0.2],
                vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
                vec![Covariance::Isotropic(1.0), Covariance::Isotropic(1.0)],
            )?
            .with_name("ncsn-toy")
            .with_init(Init::Uniform { lo: -8.0, hi: 8.0 }),
        ),
        "gmm40" => {
            // Means uniform in [−40, 40]² from our own generator with a fixed seed (FAB draws
            // them with torch's seed 0, which we cannot reproduce); std softplus(1) per axis.
            let mut rng = LaneRng::new(40, 0);
            let means: Vec<Vec<f64>> =
                (0..40).map(|_| (0..2).map(|_| 80.0 * rng.uniform_f64() - 40.0).collect()).collect();
            let std = 1.0f64.exp().ln_1p();
            Arc::new(
                GaussianMixture::new(vec![1.0 / 40.0; 40], means, vec![Covariance::Isotropic(std * std); 40])?
                    .with_name("gmm40")
                    .with_init(Init::Uniform { lo: -45.0, hi: 45.0 }),
            )
        }
        "gaussian" => {
            let dim = count(name, "dim", p[0])?;
            let cond = positive(name, "cond", p[1])?;
            if cond < 1.0 {
                return Err(invalid!("target 'gaussian': cond = {cond} must be at least 1"));
            }
            if p[2] == 1.0 {
                // The rotation is a dense d × d matrix, factorized (about four copies).
                crate::mem::check(
                    crate::mem::product(&[dim, dim, 8, 4]),
                    format!("target 'gaussian' with dim = {dim} and rotate = 1 (dense d × d matrices)"),
                    "dim",
                )?;
            }
            let var: Vec<f64> =
                (0..dim).map(|i| if dim == 1 { 1.0 } else { cond.powf(-(i as f64) / (dim - 1) as f64) }).collect();
            let cov = match p[2] {
                0.0 => Covariance::Diagonal(var),
                1.0 => Covariance::Full(rotated(&var)),
                r => return Err(invalid!("target 'gaussian': rotate = {r} must be 0 or 1")),
            };
            let label = format!("gaussian(dim={dim}, cond={cond}{})", if p[2] == 1.0 { ", rotated" } else { "" });
            Arc::new(GaussianMixture::gaussian(vec![0.0; dim], cov)?.with_name(label))
        }
        "double-well" => {
            let barrier = positive(name, "barrier", p[0])?;
            let tilt = p[1];
            if !tilt.is_finite() {
                return Err(invalid!("target 'double-well': tilt must be finite"));
            }
            let kt = positive(name, "temperature", p[2])?;
            let w = (kt / (8.0 * barrier)).sqrt();
            Arc::new(
                Boltzmann::new(DoubleWell { barrier, tilt }, kt)?
                    .with_name("double-well")
                    .with_init(Init::Uniform { lo: -2.0, hi: 2.0 })
                    .with_scales(Scales { largest: 2.0 + 6.0 * w, smallest: w }),
            )
        }
        "many-well" => {
            let dim = count(name, "dim", p[0])?;
            if dim % 2 != 0 {
                return Err(invalid!("target 'many-well': dim = {dim} must be even (it pairs coordinates)"));
            }
            let kt = positive(name, "temperature", p[1])?;
            Arc::new(ManyWell::new(dim, kt))
        }
        "muller-brown" => {
            let kt = positive(name, "temperature", p[0])?;
            // The narrowest well: curvature at the global minimum (≈ (−0.558, 1.442)).
            let lam = MullerBrown.max_curvature(&[-0.558, 1.442]);
            let w = (kt / lam).sqrt();
            Arc::new(
                Boltzmann::new(MullerBrown, kt)?
                    .with_name("muller-brown")
                    .with_init(Init::Box { lo: vec![-1.5, -0.5], hi: vec![1.2, 2.0] })
                    .with_scales(Scales { largest: 2.5, smallest: w }),
            )
        }
        "lj-cluster" => {
            let atoms = count(name, "atoms", p[0])?;
            if atoms < 2 {
                return Err(invalid!("target 'lj-cluster': atoms = {atoms} must be at least 2"));
            }
            let (eps, sigma) = (positive(name, "epsilon", p[1])?, positive(name, "sigma", p[2])?);
            let wall_radius = if p[3] == 0.0 {
                sigma * (1.0 + 1.5 * (atoms as f64).cbrt())
            } else {
                positive(name, "wall_radius", p[3])?
            };
            let wall_k = positive(name, "wall_k", p[4])?;
            let kt = positive(name, "temperature", p[5])?;
            let lj = LjCluster { atoms, eps, sigma, wall_radius, wall_k };
            // Curvature of the pair potential at its minimum r = 2^(1/6) σ: 57.15 ε/σ².
            let w = (kt / (57.15 * eps)).sqrt() * sigma;
            let start = lj.lattice();
            Arc::new(
                Boltzmann::new(lj, kt)?
                    .with_name(format!("lj-cluster({atoms} atoms)"))
                    .with_init(Init::Point(start))
                    .with_scales(Scales { largest: 2.0 * wall_radius, smallest: w }),
            )
        }
        "banana" => {
            let (a, b, s) = (p[0], positive(name, "b", p[1])?, positive(name, "scale", p[2])?);
            if !a.is_finite() {
                return Err(invalid!("target 'banana': a must be finite"));
            }
            Arc::new(Banana { a, b, s })
        }
        "funnel" => {
            let dim = count(name, "dim", p[0])?;
            if dim < 2 {
                return Err(invalid!("target 'funnel': dim = {dim} must be at least 2"));
            }
            Arc::new(Funnel { dim, scale: positive(name, "scale", p[1])? })
        }
        "ring" => Arc::new(Ring { radius: positive(name, "radius", p[0])?, width: positive(name, "width", p[1])? }),
        _ => unreachable!("every name in BUILTINS is built above"),
    })
}

/// Q diag(var) Qᵀ with a fixed random rotation Q (QR of a Gaussian matrix, seed 0).
fn rotated(var: &[f64]) -> Array2<f64> {
    let d = var.len();
    let mut rng = LaneRng::new(0, 0x0707);
    let g = DMatrix::from_fn(d, d, |_, _| rng.normal());
    let q = g.qr().q();
    let m = &q * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(var)) * q.transpose();
    Array2::from_shape_fn((d, d), |(i, j)| 0.5 * (m[(i, j)] + m[(j, i)]))
}

/// U(x) = barrier·(x² − 1)² + tilt·x.
struct DoubleWell {
    barrier: f64,
    tilt: f64,
}

impl Potential for DoubleWell {
    fn dim(&self) -> usize {
        1
    }
    fn name(&self) -> String {
        format!("double-well(barrier={}, tilt={})", self.barrier, self.tilt)
    }
    fn energy_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let u = x[0] * x[0] - 1.0;
        grad[0] = 4.0 * self.barrier * u * x[0] + self.tilt;
        self.barrier * u * u + self.tilt * x[0]
    }
}

/// The Müller-Brown potential with its standard parameters (Müller & Brown 1979).
struct MullerBrown;

const MB_A: [f64; 4] = [-200.0, -100.0, -170.0, 15.0];
const MB_LA: [f64; 4] = [-1.0, -1.0, -6.5, 0.7];
const MB_LB: [f64; 4] = [0.0, 0.0, 11.0, 0.6];
const MB_LC: [f64; 4] = [-10.0, -10.0, -6.5, 0.7];
const MB_X0: [f64; 4] = [1.0, 0.0, -0.5, -1.0];
const MB_Y0: [f64; 4] = [0.0, 0.5, 1.5, 1.0];

impl MullerBrown {
    /// Largest eigenvalue of the Hessian of U at `x` (central differences of the gradient).
    fn max_curvature(&self, x: &[f64]) -> f64 {
        let h = 1e-5;
        let mut hess = [[0.0; 2]; 2];
        for j in 0..2 {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[j] += h;
            b[j] -= h;
            let (mut ga, mut gb) = ([0.0; 2], [0.0; 2]);
            self.energy_grad(&a, &mut ga);
            self.energy_grad(&b, &mut gb);
            for i in 0..2 {
                hess[i][j] = (ga[i] - gb[i]) / (2.0 * h);
            }
        }
        let (p, q, r) = (hess[0][0], 0.5 * (hess[0][1] + hess[1][0]), hess[1][1]);
        0.5 * (p + r) + (0.25 * (p - r).powi(2) + q * q).sqrt()
    }
}

impl Potential for MullerBrown {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> String {
        "muller-brown".into()
    }
    fn energy_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let (mut u, mut gx, mut gy) = (0.0, 0.0, 0.0);
        for k in 0..4 {
            let (dx, dy) = (x[0] - MB_X0[k], x[1] - MB_Y0[k]);
            let e = MB_A[k] * (MB_LA[k] * dx * dx + MB_LB[k] * dx * dy + MB_LC[k] * dy * dy).exp();
            u += e;
            gx += e * (2.0 * MB_LA[k] * dx + MB_LB[k] * dy);
            gy += e * (MB_LB[k] * dx + 2.0 * MB_LC[k] * dy);
        }
        grad[0] = gx;
        grad[1] = gy;
        u
    }
    fn coordinate_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
}

/// A Lennard-Jones cluster: atoms at positions rᵢ ∈ ℝ³ (coordinates x₀ y₀ z₀ x₁ ...),
/// U = Σ_{i<j} 4ε[(σ/rᵢⱼ)¹² − (σ/rᵢⱼ)⁶] + Σᵢ ½ k (|rᵢ| − R)² for |rᵢ| > R.
struct LjCluster {
    atoms: usize,
    eps: f64,
    sigma: f64,
    wall_radius: f64,
    wall_k: f64,
}

impl LjCluster {
    /// The `atoms` sites of a simple cubic lattice with the pair-minimum spacing 2^(1/6) σ
    /// nearest to the origin: a compact, strain-free start.
    fn lattice(&self) -> Vec<f64> {
        let a = 2f64.powf(1.0 / 6.0) * self.sigma;
        let k = (self.atoms as f64).cbrt().ceil() as i64 + 1;
        let mut sites: Vec<[f64; 3]> = Vec::new();
        for i in -k..=k {
            for j in -k..=k {
                for l in -k..=k {
                    sites.push([i as f64 * a, j as f64 * a, l as f64 * a]);
                }
            }
        }
        let norm = |s: &[f64; 3]| s.iter().map(|v| v * v).sum::<f64>();
        sites.sort_by(|p, q| norm(p).total_cmp(&norm(q)).then(p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal)));
        sites.iter().take(self.atoms).flat_map(|s| s.iter().copied()).collect()
    }
}

impl Potential for LjCluster {
    fn dim(&self) -> usize {
        3 * self.atoms
    }
    fn name(&self) -> String {
        format!("lj-cluster({} atoms, ε={}, σ={})", self.atoms, self.eps, self.sigma)
    }
    fn energy_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        let s2 = self.sigma * self.sigma;
        let mut u = 0.0;
        for i in 0..self.atoms {
            for j in i + 1..self.atoms {
                let d = [x[3 * i] - x[3 * j], x[3 * i + 1] - x[3 * j + 1], x[3 * i + 2] - x[3 * j + 2]];
                let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let sr6 = (s2 / r2).powi(3);
                u += 4.0 * self.eps * (sr6 * sr6 - sr6);
                // dU/dr · 1/r = −24ε (2 (σ/r)¹² − (σ/r)⁶) / r²
                let f = -24.0 * self.eps * (2.0 * sr6 * sr6 - sr6) / r2;
                for c in 0..3 {
                    grad[3 * i + c] += f * d[c];
                    grad[3 * j + c] -= f * d[c];
                }
            }
            let r = (x[3 * i] * x[3 * i] + x[3 * i + 1] * x[3 * i + 1] + x[3 * i + 2] * x[3 * i + 2]).sqrt();
            if r > self.wall_radius {
                let over = r - self.wall_radius;
                u += 0.5 * self.wall_k * over * over;
                for c in 0..3 {
                    grad[3 * i + c] += self.wall_k * over * x[3 * i + c] / r;
                }
            }
        }
        u
    }
    fn coordinate_names(&self) -> Vec<String> {
        (0..self.atoms).flat_map(|i| ["x", "y", "z"].map(|c| format!("{c}{i}"))).collect()
    }
}

/// d/2 copies of U(x, y) = x⁴ − 6x² − 0.5x + 0.5y² at temperature kT.
struct ManyWell {
    dim: usize,
    kt: f64,
}

impl ManyWell {
    fn new(dim: usize, kt: f64) -> Self {
        ManyWell { dim, kt }
    }
    fn x_marginal(&self) -> Marginal {
        let kt = self.kt;
        Marginal::tabulate(|x| -(x.powi(4) - 6.0 * x * x - 0.5 * x) / kt, 0.0, 1.0, 40_001)
    }
}

impl Target for ManyWell {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> String {
        format!("many-well(dim={}) at kT={}", self.dim, self.kt)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let inv = 1.0 / self.kt;
        eval_pointwise(x, score, log_density, |p, g| {
            let mut u = 0.0;
            for i in (0..p.len()).step_by(2) {
                let (a, b) = (p[i], p[i + 1]);
                u += a.powi(4) - 6.0 * a * a - 0.5 * a + 0.5 * b * b;
                g[i] = -(4.0 * a.powi(3) - 12.0 * a - 0.5) * inv;
                g[i + 1] = -b * inv;
            }
            -u * inv
        });
        Ok(())
    }
    fn marginal(&self, coord: usize) -> Option<Marginal> {
        if coord >= self.dim {
            return None;
        }
        Some(if coord.is_multiple_of(2) {
            self.x_marginal()
        } else {
            Marginal::NormalMixture { weights: vec![1.0], means: vec![0.0], stds: vec![self.kt.sqrt()] }
        })
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let mx = self.x_marginal();
        let sy = self.kt.sqrt();
        Some(Array2::from_shape_fn((n, self.dim), |(_, c)| {
            if c % 2 == 0 { mx.sample(rng) as f32 } else { (sy * rng.normal()) as f32 }
        }))
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let (mean, var) = self.mean_and_variances()?;
        Some((mean, Array2::from_diag(&ndarray::Array1::from(var))))
    }
    fn mean_and_variances(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let mx = self.x_marginal();
        let mean = (0..self.dim).map(|c| if c % 2 == 0 { mx.mean() } else { 0.0 }).collect();
        let var = (0..self.dim).map(|c| if c % 2 == 0 { mx.variance() } else { self.kt }).collect();
        Some((mean, var))
    }
    fn scales(&self) -> Option<Scales> {
        // Wells at x ≈ ±1.73 with curvature ≈ 24: width √(kT/24).
        let w = (self.kt / 24.0).sqrt();
        Some(Scales { largest: 3.47 * ((self.dim / 2) as f64).sqrt() + 6.0 * self.kt.sqrt(), smallest: w })
    }
    fn default_init(&self) -> Init {
        Init::Uniform { lo: -3.0, hi: 3.0 }
    }
    fn temperature(&self) -> Option<f64> {
        Some(self.kt)
    }
    fn at_temperature(&self, kt: f64) -> Option<Arc<dyn Target>> {
        (kt.is_finite() && kt > 0.0).then(|| Arc::new(ManyWell::new(self.dim, kt)) as Arc<dyn Target>)
    }
}

/// Rosenbrock density log p = −(b(y − x²)² + (a − x)²)/s.
struct Banana {
    a: f64,
    b: f64,
    s: f64,
}

impl Target for Banana {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> String {
        format!("banana(a={}, b={}, scale={})", self.a, self.b, self.s)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        eval_pointwise(x, score, log_density, |p, g| {
            let (x, y) = (p[0], p[1]);
            let r = y - x * x;
            g[0] = (4.0 * self.b * r * x + 2.0 * (self.a - x)) / self.s;
            g[1] = -2.0 * self.b * r / self.s;
            -(self.b * r * r + (self.a - x).powi(2)) / self.s
        });
        Ok(())
    }
    fn marginal(&self, coord: usize) -> Option<Marginal> {
        // x ~ N(a, s/2) exactly; y has no closed-form CDF.
        (coord == 0).then(|| Marginal::NormalMixture {
            weights: vec![1.0],
            means: vec![self.a],
            stds: vec![(self.s / 2.0).sqrt()],
        })
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let (sx, sy) = ((self.s / 2.0).sqrt(), (self.s / (2.0 * self.b)).sqrt());
        let mut out = Array2::zeros((n, 2));
        for mut row in out.outer_iter_mut() {
            let x = self.a + sx * rng.normal();
            row[0] = x as f32;
            row[1] = (x * x + sy * rng.normal()) as f32;
        }
        Some(out)
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let (a, v) = (self.a, self.s / 2.0);
        let vy = 4.0 * a * a * v + 2.0 * v * v + self.s / (2.0 * self.b);
        let cxy = 2.0 * a * v;
        Some((vec![a, a * a + v], ndarray::array![[v, cxy], [cxy, vy]]))
    }
    fn scales(&self) -> Option<Scales> {
        let (_, cov) = self.moments()?;
        Some(Scales { largest: 6.0 * cov[[1, 1]].sqrt(), smallest: (self.s / (2.0 * self.b)).sqrt() })
    }
    fn default_init(&self) -> Init {
        // Near the ridge y = x² around its mode: a start far out on the ridge, where it curves
        // sharply, would force tiny steps on every chain.
        Init::Box { lo: vec![self.a - 1.0, self.a * self.a - 1.0], hi: vec![self.a + 1.0, self.a * self.a + 1.0] }
    }
}

/// Neal's funnel: v ~ N(0, scale²), xᵢ | v ~ N(0, eᵛ).
struct Funnel {
    dim: usize,
    scale: f64,
}

impl Target for Funnel {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> String {
        format!("funnel(dim={}, scale={})", self.dim, self.scale)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let s2 = self.scale * self.scale;
        eval_pointwise(x, score, log_density, |p, g| {
            let v = p[0];
            let ev = (-v).exp();
            let mut ss = 0.0;
            for i in 1..p.len() {
                ss += p[i] * p[i];
                g[i] = -p[i] * ev;
            }
            let n = (p.len() - 1) as f64;
            g[0] = -v / s2 + 0.5 * ss * ev - 0.5 * n;
            -0.5 * v * v / s2 - 0.5 * ss * ev - 0.5 * n * v
        });
        Ok(())
    }
    fn marginal(&self, coord: usize) -> Option<Marginal> {
        (coord == 0).then(|| Marginal::NormalMixture { weights: vec![1.0], means: vec![0.0], stds: vec![self.scale] })
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let mut out = Array2::zeros((n, self.dim));
        for mut row in out.outer_iter_mut() {
            let v = self.scale * rng.normal();
            row[0] = v as f32;
            let sd = (0.5 * v).exp();
            for i in 1..self.dim {
                row[i] = (sd * rng.normal()) as f32;
            }
        }
        Some(out)
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let (mean, var) = self.mean_and_variances()?;
        Some((mean, Array2::from_diag(&ndarray::Array1::from(var))))
    }
    fn mean_and_variances(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let s2 = self.scale * self.scale;
        let mut var = vec![(0.5 * s2).exp(); self.dim];
        var[0] = s2;
        Some((vec![0.0; self.dim], var))
    }
    fn scales(&self) -> Option<Scales> {
        // The neck at v = −2·scale is as narrow as e^(−scale); the mouth as wide as e^(scale).
        Some(Scales { largest: 6.0 * self.scale.exp(), smallest: (-self.scale).exp() })
    }
    fn default_init(&self) -> Init {
        Init::Gaussian { mean: vec![0.0; self.dim], std: 1.0 }
    }
}

/// Ring: log p = −(‖x‖ − R)²/(2w²) in 2-D.
struct Ring {
    radius: f64,
    width: f64,
}

impl Ring {
    fn radial(&self) -> Marginal {
        let (r0, w) = (self.radius, self.width);
        // Density of the radius: ∝ ρ exp(−(ρ − R)²/2w²) on ρ > 0.
        Marginal::tabulate(
            |rho| if rho <= 0.0 { f64::NEG_INFINITY } else { rho.ln() - 0.5 * ((rho - r0) / w).powi(2) },
            r0,
            w.max(0.01),
            40_001,
        )
    }
}

impl Target for Ring {
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> String {
        format!("ring(radius={}, width={})", self.radius, self.width)
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> Result<()> {
        let w2 = self.width * self.width;
        eval_pointwise(x, score, log_density, |p, g| {
            let r = (p[0] * p[0] + p[1] * p[1]).sqrt().max(1e-12);
            let f = -(r - self.radius) / (w2 * r);
            g[0] = f * p[0];
            g[1] = f * p[1];
            -0.5 * (r - self.radius).powi(2) / w2
        });
        Ok(())
    }
    fn sample_exact(&self, n: usize, rng: &mut LaneRng) -> Option<Array2<f32>> {
        let radial = self.radial();
        let mut out = Array2::zeros((n, 2));
        for mut row in out.outer_iter_mut() {
            let rho = radial.sample(rng);
            let theta = 2.0 * std::f64::consts::PI * rng.uniform_f64();
            row[0] = (rho * theta.cos()) as f32;
            row[1] = (rho * theta.sin()) as f32;
        }
        Some(out)
    }
    fn moments(&self) -> Option<(Vec<f64>, Array2<f64>)> {
        let m = self.radial();
        let e_r2 = m.variance() + m.mean().powi(2);
        Some((vec![0.0, 0.0], Array2::from_diag_elem(2, 0.5 * e_r2)))
    }
    fn scales(&self) -> Option<Scales> {
        Some(Scales { largest: 2.0 * self.radius + 6.0 * self.width, smallest: self.width })
    }
    fn default_init(&self) -> Init {
        Init::Uniform { lo: -self.radius - 1.0, hi: self.radius + 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::eval_rows;
    use ndarray::array;

    /// Compare a target's score with central differences of its log-density.
    fn check_gradient(t: &dyn Target, pts: &Array2<f32>) {
        let (s, _) = eval_rows(t, pts.view()).unwrap();
        for i in 0..pts.nrows() {
            for c in 0..t.dim() {
                let h = 1e-3f32;
                let mut a = pts.row(i).to_owned().insert_axis(ndarray::Axis(0));
                let mut b = a.clone();
                a[[0, c]] += h;
                b[[0, c]] -= h;
                let (_, la) = eval_rows(t, a.view()).unwrap();
                let (_, lb) = eval_rows(t, b.view()).unwrap();
                let fd = (la[0] as f64 - lb[0] as f64) / (2.0 * h as f64);
                let an = s[[i, c]] as f64;
                assert!(
                    (fd - an).abs() < 2e-2 * (1.0 + an.abs()),
                    "{}: coord {c} at {:?}: fd {fd} vs {an}",
                    t.name(),
                    pts.row(i)
                );
            }
        }
    }

    #[test]
    fn every_builtin_builds_with_defaults_and_has_consistent_gradients() {
        for info in BUILTINS {
            let t = build(info.name, &[]).unwrap();
            let d = t.dim();
            let pts = match t.default_init() {
                // Atoms must not overlap: perturb the lattice start a little.
                Init::Point(p) if info.name == "lj-cluster" => {
                    Array2::from_shape_fn((6, d), |(i, c)| p[c] as f32 + 0.02 * ((i * 7 + c * 3) % 5) as f32 - 0.04)
                }
                _ => Array2::from_shape_fn((6, d), |(i, c)| 0.3 + 0.17 * i as f32 - 0.11 * c as f32),
            };
            check_gradient(t.as_ref(), &pts);
        }
    }

    #[test]
    fn muller_brown_has_its_known_minimum() {
        let t = build("muller-brown", &[]).unwrap();
        let (s, l) = eval_rows(t.as_ref(), array![[-0.558224f32, 1.441726]].view()).unwrap();
        assert!(s.iter().all(|v| v.abs() < 0.05), "score at the minimum: {s:?}");
        // U = −146.70 at kT = 10 → log p = 14.670.
        assert!((l[0] - 14.670).abs() < 1e-2, "{}", l[0]);
    }

    #[test]
    fn lj_dimer_has_its_minimum_at_two_to_the_sixth() {
        let t = build("lj-cluster", &[("atoms".into(), 2.0)]).unwrap();
        let r = 2f64.powf(1.0 / 6.0) as f32;
        let (s, l) = eval_rows(t.as_ref(), array![[0.0f32, 0.0, 0.0, r, 0.0, 0.0]].view()).unwrap();
        assert!(s.iter().all(|v| v.abs() < 1e-3), "force at the minimum: {s:?}");
        // U = −ε at the minimum → log p = ε/kT = 5 at kT = 0.2.
        assert!((l[0] - 5.0).abs() < 1e-4, "{}", l[0]);
        // The default start is a compact lattice inside the wall.
        if let Init::Point(p) = t.default_init() {
            assert_eq!(p.len(), 6);
        } else {
            panic!("lattice start expected");
        }
        let cold = t.at_temperature(0.1).unwrap();
        assert_eq!(cold.temperature(), Some(0.1));
    }

    #[test]
    fn parameters_are_validated() {
        let e = |n: &str, p: &[(&str, f64)]| {
            let p: Vec<(String, f64)> = p.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            build(n, &p).err().unwrap().to_string()
        };
        assert!(e("nope", &[]).contains("unknown target 'nope'"));
        assert!(e("nope", &[]).contains("ncsn-toy"));
        assert!(e("gaussian", &[("size", 3.0)]).contains("parameters are: dim, cond, rotate"));
        assert!(e("gaussian", &[("dim", 2.5)]).contains("whole number"));
        assert!(e("many-well", &[("dim", 3.0)]).contains("even"));
        assert!(e("double-well", &[("temperature", -1.0)]).contains("positive"));
        assert!(e("ncsn-toy", &[("x", 1.0)]).contains("takes none"));
        assert!(e("lj-cluster", &[("atoms", 1.0)]).contains("at least 2"));
    }

    #[test]
    fn exact_moments_of_banana_and_funnel_match_exact_samples() {
        for (name, tol_sd) in [("banana", 5.0), ("funnel", 5.0), ("ring", 5.0), ("many-well", 5.0)] {
            let t = build(name, &[]).unwrap();
            let n = 200_000;
            let s = t.sample_exact(n, &mut LaneRng::new(4, 4)).unwrap();
            let (mean, cov) = t.moments().unwrap();
            for c in 0..t.dim().min(4) {
                let m = s.column(c).iter().map(|&v| v as f64).sum::<f64>() / n as f64;
                let se = (cov[[c, c]] / n as f64).sqrt();
                assert!((m - mean[c]).abs() < tol_sd * se, "{name} coord {c}: {m} vs {}", mean[c]);
            }
        }
    }
}
