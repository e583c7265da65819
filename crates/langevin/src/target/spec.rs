//! Naming a target: a built-in (`ncsn-toy`, `gaussian:dim=100,cond=1e3`) or a TOML file.
//!
//! TOML schema (see `examples/targets/` for complete files):
//!
//! ```toml
//! # A Gaussian mixture
//! kind = "gmm"
//! weights = [0.3, 0.7]                      # normalized with a warning if they do not sum to 1
//! means = [[0.0, 0.0], [4.0, 1.0]]
//! covariances = [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.5]]]
//! # instead of covariances: stds = [1.0, 0.5] (isotropic) or variances = [[1.0, 2.0], [0.5, 0.5]]
//! ```
//! ```toml
//! # One Gaussian
//! kind = "gaussian"
//! mean = [0.0, 0.0]
//! covariance = [[1.0, 0.8], [0.8, 1.0]]     # or std = 1.5, or variances = [1.0, 4.0]
//! ```
//! ```toml
//! # A Boltzmann distribution p ∝ exp(-U/kT)
//! kind = "potential"
//! variables = ["x", "y"]
//! energy = "(x^2 - 1)^2 + 0.5*y^2"
//! temperature = 0.5                         # kT, default 1
//! ```
//! ```toml
//! # A built-in with parameters
//! kind = "builtin"
//! target = "double-well"
//! params = { temperature = 0.3, tilt = 0.5 }
//! ```
//! Every kind accepts `name = "..."` (shown in reports) and `init = "uniform:-3,3"` (the
//! default initial distribution, same syntax as `--init`).

use super::{Boltzmann, Covariance, ExpressionPotential, GaussianMixture, Target, builtin};
use crate::error::{Error, Result};
use crate::invalid;
use crate::sampler::Init;
use ndarray::Array2;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a target was named.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetSpec {
    /// A built-in with parameter overrides.
    Builtin {
        /// Name, e.g. `gaussian`.
        name: String,
        /// `key=value` overrides.
        params: Vec<(String, f64)>,
    },
    /// A TOML file.
    File(PathBuf),
}

impl TargetSpec {
    /// Parse `name`, `name:key=value,...` or a path to a `.toml` file.
    pub fn parse(spec: &str) -> Result<TargetSpec> {
        let spec = spec.trim();
        if spec.to_ascii_lowercase().ends_with(".toml") || spec.contains('/') {
            return Ok(TargetSpec::File(PathBuf::from(spec)));
        }
        let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut params = Vec::new();
        for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                invalid!("target parameter '{item}' is not of the form key=value (e.g. gaussian:dim=10,cond=100)")
            })?;
            let value = match v.trim() {
                "true" => 1.0,
                "false" => 0.0,
                t => t.parse::<f64>().map_err(|_| invalid!("target parameter {}: '{t}' is not a number", k.trim()))?,
            };
            let k = k.trim();
            if params.iter().any(|(p, _)| p == k) {
                return Err(invalid!("target parameter {k} is given twice in '{spec}'; give each parameter once"));
            }
            params.push((k.to_string(), value));
        }
        Ok(TargetSpec::Builtin { name: name.to_string(), params })
    }
}

/// Load a target from a spec string (see [`TargetSpec::parse`]). Returns the target and any
/// warnings (e.g. weights that were normalized).
pub fn load_target(spec: &str) -> Result<(Arc<dyn Target>, Vec<String>)> {
    match TargetSpec::parse(spec)? {
        TargetSpec::Builtin { name, params } => Ok((builtin::build(&name, &params)?, vec![])),
        TargetSpec::File(path) => load_file(&path),
    }
}

#[derive(Deserialize)]
struct Kind {
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GmmFile {
    #[allow(dead_code)]
    kind: String,
    name: Option<String>,
    init: Option<String>,
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    covariances: Option<Vec<Vec<Vec<f64>>>>,
    variances: Option<Vec<Vec<f64>>>,
    stds: Option<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GaussianFile {
    #[allow(dead_code)]
    kind: String,
    name: Option<String>,
    init: Option<String>,
    mean: Vec<f64>,
    covariance: Option<Vec<Vec<f64>>>,
    variances: Option<Vec<f64>>,
    std: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PotentialFile {
    #[allow(dead_code)]
    kind: String,
    name: Option<String>,
    init: Option<String>,
    variables: Vec<String>,
    energy: String,
    temperature: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinFile {
    #[allow(dead_code)]
    kind: String,
    target: String,
    params: Option<toml::Table>,
}

fn matrix(k: usize, rows: &[Vec<f64>]) -> Result<Array2<f64>> {
    let d = rows.len();
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return Err(invalid!(
            "covariance {k}: row {i} has {} entries but the matrix has {d} rows; a covariance is square",
            rows[i].len()
        ));
    }
    Ok(Array2::from_shape_fn((d, d), |(i, j)| rows[i][j]))
}

/// Apply the optional `name` and `init` of a target file.
fn label(mut m: GaussianMixture, name: Option<String>, init: Option<Init>) -> GaussianMixture {
    if let Some(n) = name {
        m = m.with_name(n);
    }
    if let Some(i) = init {
        m = m.with_init(i);
    }
    m
}

/// Standard deviations must be positive: `std = -1` would otherwise square to a valid variance.
fn check_stds(path: &Path, stds: &[f64]) -> Result<()> {
    match stds.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
        Some(i) => Err(Error::file(
            path,
            format!("std {} = {} must be positive and finite (a standard deviation, not a variance)", i, stds[i]),
        )),
        None => Ok(()),
    }
}

/// A target from the text of a TOML target file; `origin` names it in messages.
pub fn load_target_toml(text: &str, origin: &Path) -> Result<(Arc<dyn Target>, Vec<String>)> {
    parse_file(origin, text)
}

fn load_file(path: &Path) -> Result<(Arc<dyn Target>, Vec<String>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::file(
            path,
            if e.kind() == std::io::ErrorKind::NotFound {
                "target file not found (a target is a built-in name or a .toml file; see `langevin targets`)".into()
            } else {
                format!("cannot read: {e}")
            },
        )
    })?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<(Arc<dyn Target>, Vec<String>)> {
    let text = text.to_string();
    let toml_err = |e: toml::de::Error| Error::file(path, format!("invalid target file: {e}"));
    let kind: Kind = toml::from_str(&text).map_err(toml_err)?;
    let mut warnings = Vec::new();
    let parse_init = |s: &Option<String>| -> Result<Option<Init>> {
        // The file's own `init` entry is at fault, not a command-line flag: quote it plainly.
        s.as_deref()
            .map(Init::parse)
            .transpose()
            .map_err(|e| Error::file(path, format!("its 'init' entry: {}", e.to_string().replace('`', "'"))))
    };
    let target: Arc<dyn Target> = match kind.kind.as_deref() {
        Some("gmm") | Some("mixture") => {
            let f: GmmFile = toml::from_str(&text).map_err(toml_err)?;
            let k = f.weights.len();
            let covs: Vec<Covariance> = match (&f.covariances, &f.variances, &f.stds) {
                (Some(c), None, None) => {
                    c.iter().enumerate().map(|(i, m)| matrix(i, m).map(Covariance::Full)).collect::<Result<_>>()?
                }
                (None, Some(v), None) => v.iter().map(|x| Covariance::Diagonal(x.clone())).collect(),
                (None, None, Some(s)) => {
                    check_stds(path, s)?;
                    s.iter().map(|x| Covariance::Isotropic(x * x)).collect()
                }
                (None, None, None) => {
                    return Err(Error::file(
                        path,
                        "a gmm needs covariances (full matrices), variances (diagonals) or stds (isotropic)",
                    ));
                }
                _ => return Err(Error::file(path, "give only one of covariances, variances and stds")),
            };
            let sum: f64 = f.weights.iter().sum();
            let mut weights = f.weights.clone();
            if f.weights.iter().all(|w| w.is_finite() && *w >= 0.0) && sum > 0.0 && (sum - 1.0).abs() > 1e-6 {
                weights.iter_mut().for_each(|w| *w /= sum);
                warnings.push(format!(
                    "{}: the {k} weights sum to {sum}, not 1; they were divided by their sum",
                    path.display()
                ));
            }
            let m = GaussianMixture::new(weights, f.means, covs).map_err(|e| Error::file(path, e.to_string()))?;
            Arc::new(label(m, f.name, parse_init(&f.init)?))
        }
        Some("gaussian") => {
            let f: GaussianFile = toml::from_str(&text).map_err(toml_err)?;
            let cov = match (&f.covariance, &f.variances, f.std) {
                (Some(c), None, None) => Covariance::Full(matrix(0, c)?),
                (None, Some(v), None) => Covariance::Diagonal(v.clone()),
                (None, None, Some(s)) => {
                    check_stds(path, &[s])?;
                    Covariance::Isotropic(s * s)
                }
                (None, None, None) => return Err(Error::file(path, "a gaussian needs covariance, variances or std")),
                _ => return Err(Error::file(path, "give only one of covariance, variances and std")),
            };
            let m = GaussianMixture::gaussian(f.mean, cov).map_err(|e| Error::file(path, e.to_string()))?;
            Arc::new(label(m, f.name, parse_init(&f.init)?))
        }
        Some("potential") => {
            let f: PotentialFile = toml::from_str(&text).map_err(toml_err)?;
            let pot =
                ExpressionPotential::parse(&f.energy, &f.variables).map_err(|e| Error::file(path, e.to_string()))?;
            let mut b =
                Boltzmann::new(pot, f.temperature.unwrap_or(1.0)).map_err(|e| Error::file(path, e.to_string()))?;
            if let Some(n) = f.name {
                b = b.with_name(n);
            }
            if let Some(i) = parse_init(&f.init)? {
                b = b.with_init(i);
            }
            Arc::new(b)
        }
        Some("builtin") => {
            let f: BuiltinFile = toml::from_str(&text).map_err(toml_err)?;
            let mut params = Vec::new();
            for (k, v) in f.params.unwrap_or_default() {
                let x = match v {
                    toml::Value::Float(x) => x,
                    toml::Value::Integer(i) => i as f64,
                    toml::Value::Boolean(b) => f64::from(u8::from(b)),
                    other => return Err(Error::file(path, format!("params.{k} = {other} is not a number"))),
                };
                params.push((k, x));
            }
            builtin::build(&f.target, &params).map_err(|e| Error::file(path, e.to_string()))?
        }
        Some(other) => {
            return Err(Error::file(
                path,
                format!("unknown kind = \"{other}\"; use \"gmm\", \"gaussian\", \"potential\" or \"builtin\""),
            ));
        }
        None => {
            return Err(Error::file(path, "missing 'kind' (one of \"gmm\", \"gaussian\", \"potential\", \"builtin\")"));
        }
    };
    Ok((target, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn spec_strings() {
        assert_eq!(
            TargetSpec::parse("gaussian:dim=10, cond=1e3,rotate=true").unwrap(),
            TargetSpec::Builtin {
                name: "gaussian".into(),
                params: vec![("dim".into(), 10.0), ("cond".into(), 1000.0), ("rotate".into(), 1.0)]
            }
        );
        assert!(matches!(TargetSpec::parse("a/b").unwrap(), TargetSpec::File(_)));
        assert!(TargetSpec::parse("gaussian:dim").unwrap_err().to_string().contains("key=value"));
        assert!(TargetSpec::parse("gaussian:dim=ten").unwrap_err().to_string().contains("'ten' is not a number"));
    }

    #[test]
    fn the_issue_examples_load_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let gmm = write(
            &dir,
            "g.toml",
            r#"
kind = "gmm"
weights = [0.3, 0.7]
means = [[0.0, 0.0], [4.0, 1.0]]
covariances = [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.5]]]
"#,
        );
        let (t, w) = load_target(&gmm).unwrap();
        assert_eq!((t.dim(), t.mixture().unwrap().n_components()), (2, 2));
        assert!(w.is_empty());
        let iso = write(
            &dir,
            "i.toml",
            "kind = \"gmm\"\nweights = [0.3, 0.7]\nmeans = [[0.0, 0.0], [4.0, 1.0]]\nstds = [1.0, 0.5]\n",
        );
        assert!(load_target(&iso).is_ok());
        let pot = write(
            &dir,
            "p.toml",
            "kind = \"potential\"\nvariables = [\"x\", \"y\"]\nenergy = \"(x^2 - 1)^2 + 0.5*y^2\"\ntemperature = 0.5\n",
        );
        let (t, _) = load_target(&pot).unwrap();
        assert_eq!(t.dim(), 2);
        assert_eq!(t.coordinate_names(), vec!["x".to_string(), "y".to_string()]);
        let b = write(&dir, "b.toml", "kind = \"builtin\"\ntarget = \"double-well\"\nparams = { temperature = 0.3 }\n");
        assert!(load_target(&b).unwrap().0.name().contains("kT=0.3"));
    }

    #[test]
    fn bad_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| load_target(&write(&dir, "t.toml", text)).err().unwrap().to_string();
        let e = err("kind = \"gmm\"\nweights = [0.3, \"a\"]\n");
        assert!(e.contains("line 2"), "{e}");
        let e = err("kind = \"gmm\"\nweights = [1.0]\nmeans = [[0.0]]\nstds = [1.0]\ncolour = 3\n");
        assert!(e.contains("unknown field") && e.contains("colour"), "{e}");
        let e = err("kind = \"gmm\"\nweights = [1.0]\nmeans = [[0.0]]\n");
        assert!(e.contains("needs covariances"), "{e}");
        let e = err("kind = \"blob\"\n");
        assert!(e.contains("unknown kind"), "{e}");
        let e = err("weights = [1.0]\n");
        assert!(e.contains("missing 'kind'"), "{e}");
        let e = err("kind = \"gmm\"\nweights = [-0.5, 1.5]\nmeans = [[0.0], [1.0]]\nstds = [1.0, 1.0]\n");
        assert!(e.contains("non-negative"), "{e}");
        let e = err("kind = \"gaussian\"\nmean = [0.0, 0.0]\ncovariance = [[1.0, 2.0], [2.0, 1.0]]\n");
        assert!(e.contains("not positive-definite"), "{e}");
        let e = err("kind = \"potential\"\nvariables = [\"x\"]\nenergy = \"x^2 +\"\n");
        assert!(e.contains("position"), "{e}");
        let e = err("kind = \"gmm\n");
        assert!(e.contains("line 1"), "{e}");
        let (_, w) = load_target(&write(
            &dir,
            "w.toml",
            "kind = \"gmm\"\nweights = [3.0, 1.0]\nmeans = [[0.0], [1.0]]\nstds = [1.0, 1.0]\n",
        ))
        .unwrap();
        assert!(w[0].contains("sum to 4") && w[0].contains("divided"), "{w:?}");
        let e = load_target("missing.toml").err().unwrap().to_string();
        assert!(e.contains("not found"), "{e}");
    }
}
