//! Training data: built-in 2-D generators, or tables from CSV / NPY files.
//!
//! Data are standardized per column with the training rows' mean and standard deviation (stored
//! in the run's config and undone at generation), and a held-out split is kept aside.

use langevin::rng::LaneRng;
use langevin::{Error, Result};
use ndarray::Array2;
use std::f64::consts::PI;
use std::path::Path;

/// Names of the built-in 2-D data sets.
pub const BUILTIN: &[(&str, &str)] = &[
    ("moons", "two interleaving half circles (noise 0.1)"),
    ("swiss-roll", "a 2-D spiral, the x-z section of the swiss roll (noise 0.5 before scaling by 1/5)"),
    ("circles", "two concentric circles, radii 1 and 0.5 (noise 0.05)"),
    ("8-gaussians", "eight Gaussians (std 0.35) on a circle of radius 2.83"),
    ("checkerboard", "uniform on the black squares of a 4×4 checkerboard of side 8"),
    ("pinwheel", "five curved arms (radial std 0.3, tangential std 0.1)"),
    ("spirals", "two interleaved spirals"),
    ("ncsn-toy", "0.8·N((5,5), I) + 0.2·N((−5,−5), I), the toy of Song & Ermon (2019)"),
];

/// `n` points of the built-in data set `name`, drawn with `(seed, stream)`.
pub fn generate(name: &str, n: usize, rng: &mut LaneRng) -> Result<Array2<f32>> {
    let mut out = Array2::zeros((n, 2));
    let mut put = |i: usize, x: f64, y: f64| {
        out[[i, 0]] = x as f32;
        out[[i, 1]] = y as f32;
    };
    match name {
        "moons" => {
            for i in 0..n {
                let t = PI * rng.uniform_f64();
                let (x, y) = if i % 2 == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
                put(i, x + 0.1 * rng.normal(), y + 0.1 * rng.normal());
            }
        }
        "swiss-roll" => {
            for i in 0..n {
                let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform_f64());
                put(i, (t * t.cos() + 0.5 * rng.normal()) / 5.0, (t * t.sin() + 0.5 * rng.normal()) / 5.0);
            }
        }
        "circles" => {
            for i in 0..n {
                let t = 2.0 * PI * rng.uniform_f64();
                let r = if i % 2 == 0 { 1.0 } else { 0.5 };
                put(i, r * t.cos() + 0.05 * rng.normal(), r * t.sin() + 0.05 * rng.normal());
            }
        }
        "8-gaussians" => {
            for i in 0..n {
                let k = rng.below(8) as f64;
                let (c, s) = ((k * PI / 4.0).cos(), (k * PI / 4.0).sin());
                let r = 4.0 / 2f64.sqrt();
                put(i, r * c + 0.35 * rng.normal(), r * s + 0.35 * rng.normal());
            }
        }
        "checkerboard" => {
            for i in 0..n {
                let x1 = 4.0 * rng.uniform_f64() - 2.0;
                let x2 = rng.uniform_f64() - 2.0 * rng.below(2) as f64 + (x1.floor().rem_euclid(2.0));
                put(i, 2.0 * x1, 2.0 * x2);
            }
        }
        "pinwheel" => {
            let (arms, radial, tangential, rate) = (5.0, 0.3, 0.1, 0.25);
            for i in 0..n {
                let k = rng.below(5) as f64;
                let (a, b) = (radial * rng.normal() + 1.0, tangential * rng.normal());
                let angle = k * 2.0 * PI / arms + rate * a.exp();
                let (c, s) = (angle.cos(), angle.sin());
                put(i, 2.0 * (c * a - s * b), 2.0 * (s * a + c * b));
            }
        }
        "spirals" => {
            for i in 0..n {
                let t = rng.uniform_f64().sqrt() * 540.0 * 2.0 * PI / 360.0;
                let (x, y) = (-t.cos() * t + 0.5 * rng.uniform_f64(), t.sin() * t + 0.5 * rng.uniform_f64());
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                put(i, sign * x / 3.0, sign * y / 3.0);
            }
        }
        "ncsn-toy" => {
            let t = langevin::target::builtin::build("ncsn-toy", &[])?;
            return Ok(t.sample_exact(n, rng).expect("a mixture samples exactly"));
        }
        other => {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(Error::msg(format!(
                "unknown data set '{other}'; built-in data sets: {} (or give a .csv or .npy file)",
                names.join(", ")
            )));
        }
    }
    Ok(out)
}

/// Read a table of training data (every column is a coordinate). Non-finite cells are an error
/// naming the row and column, or, with `drop_nonfinite`, their rows are dropped (the count is
/// returned).
pub fn read(path: &Path, drop_nonfinite: bool) -> Result<(Array2<f32>, usize)> {
    let table = langevin::io::read_table(path)?;
    let (n, d) = table.data.dim();
    let mut keep = Vec::with_capacity(n);
    for (i, row) in table.data.outer_iter().enumerate() {
        match row.iter().position(|v| !v.is_finite()) {
            None => keep.push(i),
            Some(_) if drop_nonfinite => {}
            Some(c) => {
                let col = match &table.header {
                    Some(h) => format!("column {} ('{}')", c + 1, h[c]),
                    None => format!("column {}", c + 1),
                };
                return Err(Error::file(
                    path,
                    format!(
                        "data row {}, {col} is {}; clean the data or pass `drop_nonfinite` to skip such rows",
                        i + 1,
                        row[c]
                    ),
                ));
            }
        }
    }
    if keep.is_empty() {
        return Err(Error::file(path, "no rows left after dropping the ones with NaN or inf"));
    }
    let dropped = n - keep.len();
    Ok((Array2::from_shape_fn((keep.len(), d), |(i, c)| table.data[[keep[i], c]] as f32), dropped))
}

/// Per-column affine map to mean 0, standard deviation 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 for constant columns).
    pub std: Vec<f64>,
}

impl Normalization {
    /// The normalization of the rows of `x`.
    pub fn fit(x: &Array2<f32>) -> Self {
        let (mean, cov) = langevin::diagnostics::mean_cov(x.view());
        let std = (0..mean.len()).map(|c| cov[[c, c]].sqrt()).map(|s| if s > 0.0 { s } else { 1.0 }).collect();
        Normalization { mean, std }
    }
    /// (x − mean)/std, row by row.
    pub fn apply(&self, x: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn(x.dim(), |(i, c)| ((x[[i, c]] as f64 - self.mean[c]) / self.std[c]) as f32)
    }
    /// The inverse map.
    pub fn undo(&self, x: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn(x.dim(), |(i, c)| (x[[i, c]] as f64 * self.std[c] + self.mean[c]) as f32)
    }
}

/// Split rows into training and held-out sets: a seeded shuffle, then the last `fraction` (at
/// least one row) is held out.
pub fn split(x: &Array2<f32>, fraction: f64, rng: &mut LaneRng) -> (Array2<f32>, Array2<f32>) {
    let n = x.nrows();
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
    let held = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let pick = |rows: &[usize]| Array2::from_shape_fn((rows.len(), x.ncols()), |(i, c)| x[[rows[i], c]]);
    (pick(&idx[..n - held]), pick(&idx[n - held..]))
}

/// The exact density of a built-in data set that is a Gaussian mixture (`ncsn-toy`,
/// `8-gaussians`), in the data's units, with its components' variances widened by
/// `sigma² · std_c²` per coordinate: the data perturbed by the noise σ of a model trained on
/// data standardized by `std`. Other data sets have no closed form: `None`.
pub fn exact_perturbed_mixture(name: &str, sigma: f64, std: &[f64]) -> Option<langevin::target::GaussianMixture> {
    use langevin::target::{Covariance, GaussianMixture};
    let (weights, means, var): (Vec<f64>, Vec<Vec<f64>>, f64) = match name {
        "ncsn-toy" => (vec![0.8, 0.2], vec![vec![5.0, 5.0], vec![-5.0, -5.0]], 1.0),
        "8-gaussians" => {
            let r = 4.0 / 2f64.sqrt();
            let means =
                (0..8).map(|k| vec![r * (k as f64 * PI / 4.0).cos(), r * (k as f64 * PI / 4.0).sin()]).collect();
            (vec![1.0 / 8.0; 8], means, 0.35 * 0.35)
        }
        _ => return None,
    };
    let cov: Vec<Covariance> = (0..weights.len())
        .map(|_| Covariance::Diagonal(std.iter().map(|s| var + sigma * sigma * s * s).collect()))
        .collect();
    GaussianMixture::new(weights, means, cov).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_data_set_is_finite_2d() {
        for (name, _) in BUILTIN {
            let x = generate(name, 1000, &mut LaneRng::new(1, 0)).unwrap();
            assert_eq!(x.dim(), (1000, 2));
            assert!(x.iter().all(|v| v.is_finite()), "{name}");
        }
        assert!(generate("dunes", 10, &mut LaneRng::new(1, 0)).unwrap_err().to_string().contains("moons"));
    }

    #[test]
    fn normalization_round_trips_and_split_keeps_rows() {
        let x = generate("moons", 500, &mut LaneRng::new(2, 0)).unwrap();
        let n = Normalization::fit(&x);
        let z = n.apply(&x);
        let (m, c) = langevin::diagnostics::mean_cov(z.view());
        assert!(m.iter().all(|v| v.abs() < 1e-5) && (c[[0, 0]] - 1.0).abs() < 1e-4);
        let back = n.undo(&z);
        assert!(back.iter().zip(x.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
        let (tr, ho) = split(&x, 0.1, &mut LaneRng::new(3, 0));
        assert_eq!((tr.nrows(), ho.nrows()), (450, 50));
    }

    #[test]
    fn files_with_nan_name_the_row_or_drop_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,b\n1,2\n3,nan\n5,6\n").unwrap();
        let e = read(&p, false).unwrap_err().to_string();
        assert!(e.contains("data row 2") && e.contains("column 2 ('b')") && e.contains("`drop_nonfinite`"), "{e}");
        let (x, dropped) = read(&p, true).unwrap();
        assert_eq!((x.nrows(), dropped), (2, 1));
    }
}
