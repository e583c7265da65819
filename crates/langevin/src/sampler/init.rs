//! Initial positions of the particles.

use crate::block::Block;
use crate::error::Result;
use crate::invalid;
use crate::rng::ParticleRng;
use ndarray::Array2;
use std::sync::Arc;

/// Where particles start.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Every coordinate uniform on [lo, hi].
    Uniform {
        /// Lower end.
        lo: f64,
        /// Upper end.
        hi: f64,
    },
    /// Coordinate c uniform on [lo[c], hi[c]].
    Box {
        /// Lower corner.
        lo: Vec<f64>,
        /// Upper corner.
        hi: Vec<f64>,
    },
    /// N(mean, std² I); a mean of length 1 is used for every coordinate.
    Gaussian {
        /// Mean (length d, or 1 to broadcast).
        mean: Vec<f64>,
        /// Standard deviation of every coordinate.
        std: f64,
    },
    /// Every particle at the same point (length d, or 1 to broadcast).
    Point(Vec<f64>),
    /// Explicit positions, one particle per row (e.g. read from a file).
    Rows(Arc<Array2<f32>>),
}

fn numbers(what: &str, s: &str) -> Result<Vec<f64>> {
    s.split(',')
        .map(|t| {
            // Particles are float32: a value beyond its range would start at ±inf.
            t.trim().parse::<f64>().ok().filter(|v| v.is_finite() && v.abs() <= f32::MAX as f64).ok_or_else(|| {
                invalid!(
                    "`init` {what}: '{}' is not a finite number in float32's range ±3.4e38 (expected comma-separated numbers)",
                    t.trim()
                )
            })
        })
        .collect()
}

impl Init {
    /// Parse `uniform:LO,HI`, `gaussian` / `gaussian:STD` / `gaussian:MEAN,STD`,
    /// `point:X1,...,Xd` (or one value for all), or `file:PATH` / a path ending in `.npy` or
    /// `.csv` (one particle per row).
    pub fn parse(spec: &str) -> Result<Init> {
        let spec = spec.trim();
        let lower = spec.to_ascii_lowercase();
        if lower.ends_with(".npy") || lower.ends_with(".csv") || lower.starts_with("file:") {
            let path = spec.strip_prefix("file:").unwrap_or(spec);
            let rows = crate::io::read_matrix(std::path::Path::new(path))?;
            return Ok(Init::Rows(Arc::new(rows)));
        }
        let (kind, args) = spec.split_once(':').unwrap_or((spec, ""));
        let init = match kind {
            "uniform" => {
                let v = numbers("uniform", args)?;
                if v.len() != 2 || v[0] >= v[1] {
                    return Err(invalid!("`init` uniform:LO,HI needs two numbers with LO < HI (got '{args}')"));
                }
                Init::Uniform { lo: v[0], hi: v[1] }
            }
            "gaussian" | "normal" => {
                let v = if args.is_empty() { vec![] } else { numbers("gaussian", args)? };
                let (mean, std) = match v.as_slice() {
                    [] => (0.0, 1.0),
                    [s] => (0.0, *s),
                    [m, s] => (*m, *s),
                    _ => return Err(invalid!("`init` gaussian takes STD or MEAN,STD (got '{args}')")),
                };
                if std <= 0.0 {
                    return Err(invalid!("`init` gaussian: the standard deviation {std} must be positive"));
                }
                Init::Gaussian { mean: vec![mean], std }
            }
            "point" => Init::Point(numbers("point", args)?),
            _ => {
                return Err(invalid!(
                    "unknown `init` '{spec}'; use uniform:LO,HI, gaussian[:MEAN,STD], point:X1,...,Xd, or a .npy/.csv file"
                ));
            }
        };
        Ok(init)
    }

    /// Check that this initialization fits `dim` coordinates and `particles` particles.
    pub fn check(&self, dim: usize, particles: usize) -> Result<()> {
        let fits = |n: usize| n == dim || n == 1;
        match self {
            Init::Box { lo, hi } if lo.len() != dim || hi.len() != dim => {
                Err(invalid!("the initial box has {} coordinates but the target has dimension {dim}", lo.len()))
            }
            Init::Gaussian { mean, .. } if !fits(mean.len()) => {
                Err(invalid!("the initial mean has {} coordinates but the target has dimension {dim}", mean.len()))
            }
            Init::Point(p) if !fits(p.len()) => {
                Err(invalid!("`init` point has {} coordinates but the target has dimension {dim}", p.len()))
            }
            Init::Rows(r) if r.ncols() != dim => {
                Err(invalid!("the initial positions have {} columns but the target has dimension {dim}", r.ncols()))
            }
            Init::Rows(r) if r.nrows() != particles => Err(invalid!(
                "the initial positions file has {} rows but {particles} particles were asked for; \
                 pass `particles` {} or a file with {particles} rows",
                r.nrows(),
                r.nrows()
            )),
            Init::Rows(r) if r.iter().any(|v| !v.is_finite()) => {
                let i = r.outer_iter().position(|row| row.iter().any(|v| !v.is_finite())).unwrap_or(0);
                Err(invalid!("the initial positions contain NaN or inf (row {i})"))
            }
            _ => Ok(()),
        }
    }

    /// Number of particles this initialization prescribes, if it does (a file of positions).
    pub fn particles(&self) -> Option<usize> {
        match self {
            Init::Rows(r) => Some(r.nrows()),
            _ => None,
        }
    }

    /// Fill the real particles of `block`, whose first particle has global index `first`;
    /// `rng` holds the block's per-particle generators, so a particle's start depends on the
    /// seed and its index only.
    pub fn fill(&self, block: &mut Block, first: usize, rng: &mut ParticleRng) {
        let (d, n) = (block.dim(), block.len());
        let at = |v: &[f64], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        match self {
            Init::Uniform { lo, hi } => {
                for c in 0..d {
                    let row = block.row_mut(c);
                    rng.fill_uniform(row);
                    for v in &mut row[..n] {
                        *v = (*lo + (*hi - *lo) * *v as f64) as f32;
                    }
                }
            }
            Init::Box { lo, hi } => {
                for c in 0..d {
                    let row = block.row_mut(c);
                    rng.fill_uniform(row);
                    for v in &mut row[..n] {
                        *v = (lo[c] + (hi[c] - lo[c]) * *v as f64) as f32;
                    }
                }
            }
            Init::Gaussian { mean, std } => {
                rng.fill_normal(block.data_mut());
                for c in 0..d {
                    let m = at(mean, c);
                    let row = block.row_mut(c);
                    for v in &mut row[..n] {
                        *v = (m + std * *v as f64) as f32;
                    }
                }
            }
            Init::Point(p) => {
                for c in 0..d {
                    let x = at(p, c) as f32;
                    block.row_mut(c)[..n].fill(x);
                }
            }
            Init::Rows(r) => {
                for i in 0..n {
                    for c in 0..d {
                        block.row_mut(c)[i] = r[[first + i, c]];
                    }
                }
            }
        }
        block.fill_padding();
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        let list = |v: &[f64]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(",");
        match self {
            Init::Uniform { lo, hi } => format!("uniform:{lo},{hi}"),
            Init::Box { lo, hi } => format!("box:[{}]..[{}]", list(lo), list(hi)),
            Init::Gaussian { mean, std } => format!("gaussian:{},{std}", list(mean)),
            Init::Point(p) => format!("point:{}", list(p)),
            Init::Rows(r) => format!("file ({} rows)", r.nrows()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms_and_errors() {
        assert_eq!(Init::parse("uniform:-8,8").unwrap(), Init::Uniform { lo: -8.0, hi: 8.0 });
        assert_eq!(Init::parse("gaussian").unwrap(), Init::Gaussian { mean: vec![0.0], std: 1.0 });
        assert_eq!(Init::parse("gaussian:2,0.5").unwrap(), Init::Gaussian { mean: vec![2.0], std: 0.5 });
        assert_eq!(Init::parse("point:1,2").unwrap(), Init::Point(vec![1.0, 2.0]));
        assert!(Init::parse("uniform:8,-8").unwrap_err().to_string().contains("LO < HI"));
        assert!(Init::parse("uniform:a,1").unwrap_err().to_string().contains("'a' is not a finite number"));
        assert!(Init::parse("sphere").unwrap_err().to_string().contains("unknown `init`"));
        assert!(Init::parse("gaussian:0,-1").unwrap_err().to_string().contains("must be positive"));
        assert!(Init::parse("missing.npy").unwrap_err().to_string().contains("missing.npy"));
        assert!(Init::Point(vec![1.0, 2.0, 3.0]).check(2, 10).unwrap_err().to_string().contains("dimension 2"));
    }

    #[test]
    fn fill_respects_bounds() {
        let mut b = Block::zeros(2, 40);
        let stride = b.stride();
        Init::Box { lo: vec![0.0, 10.0], hi: vec![1.0, 11.0] }.fill(&mut b, 0, &mut ParticleRng::new(0, 0, stride));
        assert!(b.row(0)[..40].iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(b.row(1)[..40].iter().all(|&v| (10.0..=11.0).contains(&v)));
        let rows = Arc::new(Array2::from_shape_fn((50, 2), |(i, c)| (i * 2 + c) as f32));
        let mut b = Block::zeros(2, 10);
        Init::Rows(rows).fill(&mut b, 20, &mut ParticleRng::new(0, 20, 16));
        assert_eq!(b.particle(0), vec![40.0, 41.0]);
    }
}
