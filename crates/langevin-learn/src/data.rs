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

/// Built-in data sets of real data, read from copies shipped inside the binary.
pub const REAL: &[(&str, &str)] = &[(
    "digits",
    "1,797 handwritten digits, 8 × 8 pixels in 0..16, labels 0-9 (UCI optical digits test set, CC BY 4.0)",
)];

/// The `digits` data set (a copy of `../shared/data/digits`, CC BY 4.0: the test set of the UCI
/// "Optical Recognition of Handwritten Digits" data set, E. Alpaydin and C. Kaynak, 1998, as
/// distributed in scikit-learn; see `crates/langevin-learn/data/README.md`).
const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// The 1,797 digits: 64 pixel values in 0..16 per row (row-major 8 × 8) and their labels 0..9.
pub fn digits() -> Result<(Array2<f32>, Vec<u32>)> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::msg(format!("the built-in digits data are damaged ({e}); rebuild the binary")))?;
    let (mut x, mut labels) = (Vec::with_capacity(1797 * 64), Vec::with_capacity(1797));
    for (i, line) in text.lines().enumerate() {
        let v: Vec<u32> = line
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::msg(format!("the built-in digits data are damaged (line {})", i + 1)))?;
        if v.len() != 65 || v[64] > 9 {
            return Err(Error::msg(format!("the built-in digits data are damaged (line {})", i + 1)));
        }
        x.extend(v[..64].iter().map(|&p| p as f32));
        labels.push(v[64]);
    }
    let n = labels.len();
    Ok((Array2::from_shape_vec((n, 64), x).expect("64 values per row"), labels))
}

/// `n` points of the built-in data set `name`, drawn with `(seed, stream)`.
pub fn generate(name: &str, n: usize, rng: &mut LaneRng) -> Result<Array2<f32>> {
    generate_labeled(name, n, rng).map(|(x, _)| x)
}

/// The number of classes of a built-in 2-D data set's component labels (see
/// [`generate_labeled`]); `None` for a set without components.
pub fn builtin_classes(name: &str) -> Option<usize> {
    match name {
        "moons" | "circles" | "spirals" | "ncsn-toy" => Some(2),
        "8-gaussians" | "checkerboard" => Some(8),
        "pinwheel" => Some(5),
        _ => None,
    }
}

/// A built-in data set as `train` draws it: the real sets whole (`digits`), the generated ones
/// with `rows` points from the seed's data stream; with `conditional`, the set's own labels
/// (digits, components). Returns the rows, the labels and whether the set is real data. The
/// command line and the Python package both load built-in sets through it, so the same request
/// gives the same points.
pub fn builtin(source: &str, rows: usize, seed: u64, conditional: bool) -> Result<(Array2<f32>, Option<Labels>, bool)> {
    if source == "digits" {
        let (x, l) = digits()?;
        return Ok((x, conditional.then(|| Labels::components(l, 10, "the digit of each image")), true));
    }
    let (x, l) = generate_labeled(source, rows, &mut LaneRng::new(seed, 0xDA7A))?;
    let labels = if conditional {
        let k = builtin_classes(source).ok_or_else(|| {
            Error::msg(format!("the data set {source} has no component labels; train it without labels"))
        })?;
        Some(Labels::components(l, k, format!("the components of {source}")))
    } else {
        None
    };
    Ok((x, labels, false))
}

/// `n` points of the built-in data set `name` with the component each was drawn from: the moon,
/// circle or spiral arm (0, 1), the Gaussian of `8-gaussians` (0..7, counter-clockwise from
/// angle 0), the black square of `checkerboard` (0..7, column-major from the left), the arm of
/// `pinwheel` (0..4), the component of `ncsn-toy` (0: the weight-0.8 one at (5, 5)). The
/// points are the same as [`generate`]'s for the same stream; `swiss-roll` has no components
/// (its labels are all 0).
pub fn generate_labeled(name: &str, n: usize, rng: &mut LaneRng) -> Result<(Array2<f32>, Vec<u32>)> {
    let mut out = Array2::zeros((n, 2));
    let mut labels = vec![0u32; n];
    let mut put = |i: usize, x: f64, y: f64, label: u32| {
        out[[i, 0]] = x as f32;
        out[[i, 1]] = y as f32;
        labels[i] = label;
    };
    match name {
        "moons" => {
            for i in 0..n {
                let t = PI * rng.uniform_f64();
                let (x, y) = if i % 2 == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
                put(i, x + 0.1 * rng.normal(), y + 0.1 * rng.normal(), (i % 2) as u32);
            }
        }
        "swiss-roll" => {
            for i in 0..n {
                let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform_f64());
                put(i, (t * t.cos() + 0.5 * rng.normal()) / 5.0, (t * t.sin() + 0.5 * rng.normal()) / 5.0, 0);
            }
        }
        "circles" => {
            for i in 0..n {
                let t = 2.0 * PI * rng.uniform_f64();
                let r = if i % 2 == 0 { 1.0 } else { 0.5 };
                put(i, r * t.cos() + 0.05 * rng.normal(), r * t.sin() + 0.05 * rng.normal(), (i % 2) as u32);
            }
        }
        "8-gaussians" => {
            for i in 0..n {
                let k = rng.below(8);
                let (c, s) = ((k as f64 * PI / 4.0).cos(), (k as f64 * PI / 4.0).sin());
                let r = 4.0 / 2f64.sqrt();
                put(i, r * c + 0.35 * rng.normal(), r * s + 0.35 * rng.normal(), k as u32);
            }
        }
        "checkerboard" => {
            for i in 0..n {
                let x1 = 4.0 * rng.uniform_f64() - 2.0;
                // Drawn in the order of earlier versions (the same points for the same seed).
                let u = rng.uniform_f64();
                let row = rng.below(2);
                let x2 = u - 2.0 * row as f64 + (x1.floor().rem_euclid(2.0));
                let label = 2 * (x1.floor() + 2.0).clamp(0.0, 3.0) as u32 + row as u32;
                put(i, 2.0 * x1, 2.0 * x2, label);
            }
        }
        "pinwheel" => {
            let (arms, radial, tangential, rate) = (5.0, 0.3, 0.1, 0.25);
            for i in 0..n {
                let k = rng.below(5);
                let (a, b) = (radial * rng.normal() + 1.0, tangential * rng.normal());
                let angle = k as f64 * 2.0 * PI / arms + rate * a.exp();
                let (c, s) = (angle.cos(), angle.sin());
                put(i, 2.0 * (c * a - s * b), 2.0 * (s * a + c * b), k as u32);
            }
        }
        "spirals" => {
            for i in 0..n {
                let t = rng.uniform_f64().sqrt() * 540.0 * 2.0 * PI / 360.0;
                let (x, y) = (-t.cos() * t + 0.5 * rng.uniform_f64(), t.sin() * t + 0.5 * rng.uniform_f64());
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                put(i, sign * x / 3.0, sign * y / 3.0, (i % 2) as u32);
            }
        }
        "ncsn-toy" => {
            let t = langevin::target::builtin::build("ncsn-toy", &[])?;
            let x = t.sample_exact(n, rng).expect("a mixture samples exactly");
            // The components are 14 standard deviations apart: the side of x + y = 0 is the
            // component (a point on the wrong side has probability below 1e-40).
            let labels = x.outer_iter().map(|r| u32::from(r[0] + r[1] < 0.0)).collect();
            return Ok((x, labels));
        }
        other => {
            let mut names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            names.extend(REAL.iter().map(|(n, _)| *n));
            return Err(Error::msg(format!(
                "unknown data set '{other}'; built-in data sets: {} (or give a .csv or .npy file)",
                names.join(", ")
            )));
        }
    }
    Ok((out, labels))
}

/// Read a table of training data (every column is a coordinate). Non-finite cells are an error
/// naming the row and column, or, with `drop_nonfinite`, their rows are dropped (the count is
/// returned).
pub fn read(path: &Path, drop_nonfinite: bool) -> Result<(Array2<f32>, usize)> {
    read_labeled(path, None, drop_nonfinite).map(|(x, _, dropped)| (x, dropped))
}

/// Read a table whose column `label` (a header name, or a 1-based column number) holds integer
/// class labels: the other columns are the data. Returns the data, the labels (when asked for)
/// and the count of rows dropped for non-finite values (`drop_nonfinite`; a label cell counts).
pub fn read_labeled(
    path: &Path,
    label: Option<&str>,
    drop_nonfinite: bool,
) -> Result<(Array2<f32>, Option<Vec<i64>>, usize)> {
    let table = langevin::io::read_table(path)?;
    let (n, d) = table.data.dim();
    let label_col = match label {
        None => None,
        Some(name) => Some(label_column(name, table.header.as_deref(), d).map_err(|m| Error::file(path, m))?),
    };
    if label_col.is_some() && d < 2 {
        return Err(Error::file(path, "has one column: with a label column taken out no data are left"));
    }
    let col_name = |c: usize| match &table.header {
        Some(h) => format!("column {} ('{}')", c + 1, h[c]),
        None => format!("column {}", c + 1),
    };
    let mut keep = Vec::with_capacity(n);
    for (i, row) in table.data.outer_iter().enumerate() {
        match row.iter().position(|v| !v.is_finite()) {
            None => keep.push(i),
            Some(_) if drop_nonfinite => {}
            Some(c) => {
                return Err(Error::file(
                    path,
                    format!(
                        "data row {}, {} is {}; clean the data or pass `drop_nonfinite` to skip such rows",
                        i + 1,
                        col_name(c),
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
    let cols: Vec<usize> = (0..d).filter(|&c| Some(c) != label_col).collect();
    let x = Array2::from_shape_fn((keep.len(), cols.len()), |(i, c)| table.data[[keep[i], cols[c]]] as f32);
    let labels = match label_col {
        None => None,
        Some(lc) => {
            let mut out = Vec::with_capacity(keep.len());
            for &i in &keep {
                let v = table.data[[i, lc]];
                if v.fract() != 0.0 || v.abs() > 1e15 {
                    return Err(Error::file(
                        path,
                        format!(
                            "the label {} holds {v} in data row {}: labels must be integers (class numbers)",
                            col_name(lc),
                            i + 1
                        ),
                    ));
                }
                out.push(v as i64);
            }
            Some(out)
        }
    };
    Ok((x, labels, dropped))
}

/// The index of the label column `name` (a header name, or a 1-based number).
fn label_column(name: &str, header: Option<&[String]>, d: usize) -> std::result::Result<usize, String> {
    if let Some(h) = header
        && let Some(c) = h.iter().position(|c| c == name)
    {
        return Ok(c);
    }
    match name.parse::<usize>() {
        Ok(c) if (1..=d).contains(&c) => Ok(c - 1),
        _ => Err(match header {
            Some(h) => format!(
                "has no label column '{name}'; its columns are {} (or give a column number 1..{d})",
                h.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")
            ),
            None => format!("has no header, so the label column is a number 1..{d}, not '{name}'"),
        }),
    }
}

/// Read a file of labels (.npy or .csv, one column, integers), one per data row.
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let t = langevin::io::read_table(path)?;
    if t.data.ncols() != 1 {
        return Err(Error::file(
            path,
            format!("has {} columns: a labels file has one column of integer class labels", t.data.ncols()),
        ));
    }
    t.data
        .column(0)
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() <= 1e15 {
                Ok(v as i64)
            } else {
                Err(Error::file(path, format!("row {} holds {v}: labels must be integers (class numbers)", i + 1)))
            }
        })
        .collect()
}

/// Class labels of training data: each row's class index and the classes' names.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    /// Class index (into `classes`) of each row.
    pub per_row: Vec<u32>,
    /// Class names (the label values as given), index = class.
    pub classes: Vec<String>,
    /// Where they came from (a column, a file, the components of a built-in set).
    pub source: String,
}

impl Labels {
    /// Classes from integer label values: the distinct values in increasing order.
    pub fn from_values(values: &[i64], source: impl Into<String>) -> Result<Self> {
        let mut distinct: Vec<i64> = values.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > 10_000 {
            return Err(Error::msg(format!(
                "the labels take {} distinct values: class labels name a few classes (at most 10,000); \
                 is the label column a coordinate?",
                distinct.len()
            )));
        }
        let per_row = values.iter().map(|v| distinct.binary_search(v).expect("present") as u32).collect();
        Ok(Labels { per_row, classes: distinct.iter().map(|v| v.to_string()).collect(), source: source.into() })
    }
    /// Classes 0..k of a built-in set's component labels.
    pub fn components(per_row: Vec<u32>, k: usize, source: impl Into<String>) -> Self {
        Labels { per_row, classes: (0..k).map(|c| c.to_string()).collect(), source: source.into() }
    }
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
    /// One affine map for every column that takes the values' range onto [−1, 1] (images: the
    /// same map for every pixel, so a shape looks the same wherever it is).
    pub fn range(x: &Array2<f32>) -> Self {
        let (lo, hi) =
            x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v as f64), h.max(v as f64)));
        let (mid, half) = if lo < hi { ((lo + hi) / 2.0, (hi - lo) / 2.0) } else { (0.0, 1.0) };
        Normalization { mean: vec![mid; x.ncols()], std: vec![half; x.ncols()] }
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
    let (tr, ho) = split_indices(x.nrows(), fraction, rng);
    (pick_rows(x, &tr), pick_rows(x, &ho))
}

/// The row indices of [`split`]: (training rows, held-out rows).
pub fn split_indices(n: usize, fraction: f64, rng: &mut LaneRng) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
    let ho = idx.split_off(n - heldout_count(n, fraction));
    (idx, ho)
}

/// How many of `n` rows [`split`] holds out for `fraction`: the rounded share, at least one row
/// and leaving at least one.
pub fn heldout_count(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1))
}

/// The given rows of `x`, in that order.
pub fn pick_rows(x: &Array2<f32>, rows: &[usize]) -> Array2<f32> {
    Array2::from_shape_fn((rows.len(), x.ncols()), |(i, c)| x[[rows[i], c]])
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
