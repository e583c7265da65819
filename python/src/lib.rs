//! `langevin._native`: the library crates through PyO3. The Python-facing API (keyword
//! checking, reports as dicts, docstrings) is the thin package in `pysrc/langevin`; this module
//! converts arrays, runs the library with the GIL released and maps its errors to exceptions.
//!
//! Arrays: float32 and float64 2-D arrays of any memory order are read through views (no copy
//! for float32); results come back as new float32 arrays. Errors: the library's message as a
//! `ValueError`, wrong array types as `TypeError`, a Python score function's own exception as
//! itself, with the call that raised it named in a note.

use langevin::block::Block;
use langevin::sample::{SampleOptions, Sampler, StepSize};
use langevin::sampler::Init;
use langevin::target::{Covariance, GaussianMixture, Target};
use ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyAny;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A 2-D float array as float32 rows: float32 read in place when C-contiguous, float64 (or
/// another order) converted. `what` names the argument in messages.
fn rows_f32(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Array2<f32>> {
    if let Ok(a) = obj.cast::<PyArray2<f32>>() {
        return Ok(a.readonly().as_array().to_owned());
    }
    if let Ok(a) = obj.cast::<PyArray2<f64>>() {
        return Ok(a.readonly().as_array().mapv(|v| v as f32));
    }
    if let Ok(a) = obj.cast::<numpy::PyUntypedArray>() {
        let dtype = a.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into());
        if a.ndim() != 2 {
            return Err(PyValueError::new_err(format!(
                "{what}: expected a 2-D array of shape (n, d), got {} dimensions (shape {:?}); reshape it, e.g. x.reshape(-1, d)",
                a.ndim(),
                a.shape()
            )));
        }
        return Err(PyTypeError::new_err(format!(
            "{what}: expected a float32 or float64 array, got dtype {dtype}; convert it with .astype(np.float32)"
        )));
    }
    Err(PyTypeError::new_err(format!(
        "{what}: expected a NumPy array (float32 or float64, shape (n, d)), got {}",
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
    )))
}

fn check_finite(x: ArrayView2<f32>, what: &str) -> PyResult<()> {
    if let Some((r, c)) = langevin::io::first_non_finite(x) {
        return Err(PyValueError::new_err(format!(
            "{what}: row {r} column {c} is {} (rows and columns counted from 0); remove or replace it",
            x[[r, c]]
        )));
    }
    Ok(())
}

/// A target density: its score (and log-density where known) at any point.
#[pyclass(name = "Target", module = "langevin._native", frozen)]
struct PyTarget {
    inner: Arc<dyn Target>,
    warnings: Vec<String>,
    /// For a Python score function: the exception it raised, to re-raise as itself.
    raised: Option<Arc<Mutex<Option<PyErr>>>>,
}

#[pymethods]
impl PyTarget {
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
    /// The score ∇ log p at the rows of `x` (n, d).
    fn score<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x = rows_f32(x, "x")?;
        self.check_dim(&x)?;
        let t = self.inner.clone();
        let out = py.detach(|| -> langevin::Result<Array2<f32>> {
            let b = Block::from_rows(x.view());
            let mut s = Block::zeros(b.dim(), b.len());
            t.eval(&b, &mut s, None)?;
            let mut out = Array2::zeros(x.dim());
            s.write_rows(out.view_mut());
            Ok(out)
        });
        Ok(self.map(out)?.into_pyarray(py))
    }
    fn __repr__(&self) -> String {
        format!("<langevin.Target {} in {} dimensions>", self.inner.name(), self.inner.dim())
    }
}

impl PyTarget {
    fn new(inner: Arc<dyn Target>, warnings: Vec<String>) -> Self {
        PyTarget { inner, warnings, raised: None }
    }
    fn check_dim(&self, x: &Array2<f32>) -> PyResult<()> {
        if x.ncols() != self.inner.dim() {
            return Err(PyValueError::new_err(format!(
                "x has {} columns but the target is {}-dimensional",
                x.ncols(),
                self.inner.dim()
            )));
        }
        Ok(())
    }
    /// A library error, or the Python exception a score function raised behind it.
    fn map<T>(&self, r: langevin::Result<T>) -> PyResult<T> {
        r.map_err(|e| {
            if let Some(slot) = &self.raised
                && let Some(err) = slot.lock().ok().and_then(|mut s| s.take())
            {
                return err;
            }
            value_err(e)
        })
    }
}

/// A built-in target by spec (`"ncsn-toy"`, `"many-well:dim=32"`) or a TOML file's path.
#[pyfunction]
fn target(spec: &str) -> PyResult<PyTarget> {
    let (t, warnings) = langevin::target::load_target(spec).map_err(value_err)?;
    Ok(PyTarget::new(t, warnings))
}

/// A Gaussian mixture from weights (k,), means (k, d) and covariances: (k,) variances,
/// (k, d) diagonals or (k, d, d) full matrices.
#[pyfunction]
fn gmm(weights: Vec<f64>, means: Vec<Vec<f64>>, covs: &Bound<'_, PyAny>) -> PyResult<PyTarget> {
    let covariances: Vec<Covariance> = if let Ok(v) = covs.extract::<Vec<f64>>() {
        v.into_iter().map(Covariance::Isotropic).collect()
    } else if let Ok(v) = covs.extract::<Vec<Vec<f64>>>() {
        v.into_iter().map(Covariance::Diagonal).collect()
    } else if let Ok(v) = covs.extract::<Vec<Vec<Vec<f64>>>>() {
        let mut out = Vec::with_capacity(v.len());
        for (i, m) in v.into_iter().enumerate() {
            let d = m.len();
            if m.iter().any(|r| r.len() != d) {
                return Err(PyValueError::new_err(format!("covs[{i}] is not a square matrix")));
            }
            out.push(Covariance::Full(Array2::from_shape_fn((d, d), |(a, b)| m[a][b])));
        }
        out
    } else {
        return Err(PyTypeError::new_err(
            "covs: expected k variances, k diagonals (k, d) or k full matrices (k, d, d) of numbers",
        ));
    };
    let m = GaussianMixture::new(weights, means, covariances).map_err(value_err)?;
    Ok(PyTarget::new(Arc::new(m), vec![]))
}

/// p ∝ exp(−U/kT) for an energy formula in the named variables.
#[pyfunction]
#[pyo3(signature = (energy, variables, temperature=1.0))]
fn potential(energy: &str, variables: Vec<String>, temperature: f64) -> PyResult<PyTarget> {
    let p = langevin::target::ExpressionPotential::parse(energy, &variables).map_err(value_err)?;
    let t = langevin::target::Boltzmann::new(p, temperature).map_err(value_err)?;
    Ok(PyTarget::new(Arc::new(t), vec![]))
}

/// A score written in Python: `f(x) -> score`, batched over rows, and optionally its
/// log-density `g(x) -> (n,)` (up to a constant), which MALA's accept/reject step needs.
struct PyScore {
    f: Py<PyAny>,
    log_density: Option<Py<PyAny>>,
    dim: usize,
    calls: AtomicU64,
    raised: Arc<Mutex<Option<PyErr>>>,
}

impl Target for PyScore {
    fn dim(&self) -> usize {
        self.dim
    }
    fn name(&self) -> String {
        "python-score".into()
    }
    fn has_log_density(&self) -> bool {
        self.log_density.is_some()
    }
    fn eval(&self, x: &Block, score: &mut Block, log_density: Option<&mut [f32]>) -> langevin::Result<()> {
        if log_density.is_some() && self.log_density.is_none() {
            return Err(langevin::Error::msg(
                "a Python score function without log_density= gives no log-density: pass log_density=g (g(x) -> log p(x) per row, up to a constant), or use a sampler that needs only the score (ula, baoab, obabo, underdamped-em)",
            ));
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rows = Array2::<f32>::zeros((x.len(), self.dim));
        x.write_rows(rows.view_mut());
        let want_logp = log_density.is_some();
        let result: PyResult<(Array2<f32>, Option<Vec<f32>>)> = Python::attach(|py| {
            let arr = rows.into_pyarray(py);
            let out = self.f.call1(py, (arr.clone(),))?;
            let out = rows_f32(out.bind(py), "the score function's result")?;
            if out.dim() != (x.len(), self.dim) {
                return Err(PyValueError::new_err(format!(
                    "the score function returned shape {:?} for input of shape ({}, {}); it must return one score row per input row",
                    out.dim(),
                    x.len(),
                    self.dim
                )));
            }
            let logp = match (&self.log_density, want_logp) {
                (Some(g), true) => {
                    let v = g.call1(py, (arr,))?;
                    let v: Vec<f64> = v.bind(py).call_method0("tolist")?.extract().map_err(|_| {
                        PyValueError::new_err("log_density must return a 1-D array of one number per row")
                    })?;
                    if v.len() != x.len() {
                        return Err(PyValueError::new_err(format!(
                            "log_density returned {} values for {} rows; it must return one per row",
                            v.len(),
                            x.len()
                        )));
                    }
                    Some(v.into_iter().map(|l| l as f32).collect())
                }
                _ => None,
            };
            Ok((out, logp))
        });
        match result {
            Ok((s, logp)) => {
                if let Some((r, c)) = langevin::io::first_non_finite(s.view()) {
                    return Err(langevin::Error::msg(format!(
                        "the score function returned {} at row {r} column {c} (call {call}); check it, or lower the step size if the particles diverged",
                        s[[r, c]]
                    )));
                }
                // Into the caller's block, whatever its stride.
                for c in 0..self.dim {
                    for (dst, v) in score.row_mut(c).iter_mut().zip(s.column(c)) {
                        *dst = *v;
                    }
                }
                if let (Some(dst), Some(v)) = (log_density, logp) {
                    dst[..v.len()].copy_from_slice(&v);
                }
                Ok(())
            }
            Err(e) => {
                let msg = format!("the score function raised at its call {call}: {e}");
                Python::attach(|py| {
                    let _ = e
                        .value(py)
                        .call_method1("add_note", (format!("raised in langevin's call {call} of the score function"),));
                });
                if let Ok(mut slot) = self.raised.lock()
                    && slot.is_none()
                {
                    *slot = Some(e);
                }
                Err(langevin::Error::msg(msg))
            }
        }
    }
}

/// A target from a Python score function `f(x: ndarray (n, d)) -> ndarray (n, d)` and,
/// optionally, its log-density `g(x) -> ndarray (n,)`.
#[pyfunction]
#[pyo3(signature = (f, dim, log_density=None))]
fn score_function(f: Py<PyAny>, dim: usize, log_density: Option<Py<PyAny>>) -> PyResult<PyTarget> {
    if dim == 0 {
        return Err(PyValueError::new_err("dim must be at least 1"));
    }
    let raised = Arc::new(Mutex::new(None));
    let s = PyScore { f, log_density, dim, calls: AtomicU64::new(0), raised: raised.clone() };
    Ok(PyTarget { inner: Arc::new(s), warnings: vec![], raised: Some(raised) })
}

fn pool(threads: Option<usize>) -> PyResult<Option<rayon::ThreadPool>> {
    match threads {
        None => Ok(None),
        Some(0) => Err(PyValueError::new_err("threads must be at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n).build().map(Some).map_err(value_err),
    }
}

fn in_pool<T: Send>(p: &Option<rayon::ThreadPool>, f: impl FnOnce() -> T + Send) -> T {
    match p {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// The annealing (`sigma_max`, `sigma_min`, `levels`, `steps_per_level`, `eps`, `denoise`) and
/// diffusion (`schedule`, `sigma_min`, `sigma_max`, `rho`, `t_eps`, `solver`, `rtol`, `atol`,
/// `max_steps`, `snr`, `corrector_steps`, `eta`, `s_churn`, `s_tmin`, `s_tmax`, `s_noise`,
/// `denoise`) options of the command line, by name; `steps` is a diffusion sampler's step count
/// as on the command line.
fn apply_options(
    s: &mut Sampler,
    steps: Option<usize>,
    o: std::collections::HashMap<String, Bound<'_, PyAny>>,
) -> PyResult<()> {
    let f = |k: &str| -> PyResult<Option<f64>> {
        o.get(k).map(|v| v.extract::<f64>().map_err(|_| PyTypeError::new_err(format!("{k}: a number")))).transpose()
    };
    let u = |k: &str| -> PyResult<Option<usize>> {
        o.get(k)
            .map(|v| v.extract::<usize>().map_err(|_| PyTypeError::new_err(format!("{k}: a whole number"))))
            .transpose()
    };
    let b = |k: &str| -> PyResult<Option<bool>> {
        o.get(k)
            .map(|v| v.extract::<bool>().map_err(|_| PyTypeError::new_err(format!("{k}: True or False"))))
            .transpose()
    };
    let name = |k: &str| -> PyResult<Option<String>> {
        o.get(k).map(|v| v.extract::<String>().map_err(|_| PyTypeError::new_err(format!("{k}: a name")))).transpose()
    };
    let allowed: &[&str] = match s {
        Sampler::Annealed { .. } => &["sigma_max", "sigma_min", "levels", "steps_per_level", "eps", "denoise"],
        Sampler::Diffusion { .. } => &[
            "schedule",
            "sigma_min",
            "sigma_max",
            "rho",
            "t_eps",
            "solver",
            "rtol",
            "atol",
            "max_steps",
            "snr",
            "corrector_steps",
            "eta",
            "s_churn",
            "s_tmin",
            "s_tmax",
            "s_noise",
            "denoise",
        ],
        _ => &[],
    };
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(PyTypeError::new_err(format!(
            "options: '{k}' is not an option of the {} sampler; valid ones: {}",
            s.name(),
            if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
        )));
    }
    match s {
        Sampler::Annealed { options, .. } => {
            options.sigma_max = f("sigma_max")?;
            options.sigma_min = f("sigma_min")?;
            options.levels = u("levels")?;
            options.steps_per_level = u("steps_per_level")?;
            options.eps = f("eps")?;
            if let Some(d) = b("denoise")? {
                options.denoise = d;
            }
        }
        Sampler::Diffusion { options, .. } => {
            options.steps = steps;
            options.schedule = name("schedule")?
                .map(|n| langevin::diffusion::ScheduleKind::from_name(&n))
                .transpose()
                .map_err(value_err)?;
            options.solver =
                name("solver")?.map(|n| langevin::diffusion::Solver::from_name(&n)).transpose().map_err(value_err)?;
            options.sigma_min = f("sigma_min")?;
            options.sigma_max = f("sigma_max")?;
            options.rho = f("rho")?;
            options.t_eps = f("t_eps")?;
            options.rtol = f("rtol")?;
            options.atol = f("atol")?;
            options.max_steps = u("max_steps")?;
            options.snr = f("snr")?;
            options.corrector_steps = u("corrector_steps")?;
            options.eta = f("eta")?;
            options.s_churn = f("s_churn")?;
            options.s_tmin = f("s_tmin")?;
            options.s_tmax = f("s_tmax")?;
            options.s_noise = f("s_noise")?;
            options.denoise = b("denoise")?;
        }
        _ => {}
    }
    Ok(())
}

/// Sample a target: (samples float32 (n, d), report as JSON).
#[pyfunction]
#[pyo3(signature = (target, sampler="ula", particles=None, steps=None, warmup=None, step_size=None, init=None, seed=0, thin=None, adapt=None, noise=true, friction=None, mass=None, threads=None, options=None))]
#[allow(clippy::too_many_arguments)]
fn sample<'py>(
    py: Python<'py>,
    target: &PyTarget,
    sampler: &str,
    particles: Option<usize>,
    steps: Option<usize>,
    warmup: Option<usize>,
    step_size: Option<&Bound<'py, PyAny>>,
    init: Option<&Bound<'py, PyAny>>,
    seed: u64,
    thin: Option<usize>,
    adapt: Option<&Bound<'py, PyAny>>,
    noise: bool,
    friction: Option<f64>,
    mass: Option<Vec<f64>>,
    threads: Option<usize>,
    options: Option<std::collections::HashMap<String, Bound<'py, PyAny>>>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, String)> {
    let mut s = Sampler::from_name(sampler).map_err(value_err)?;
    apply_options(&mut s, steps, options.unwrap_or_default())?;
    match &mut s {
        Sampler::Ula { noise: n } | Sampler::Annealed { noise: n, .. } => *n = noise,
        _ if !noise => {
            return Err(PyValueError::new_err(format!("noise=False applies to ula and annealed, not {sampler}")));
        }
        _ => {}
    }
    if let Some(a) = adapt {
        match &mut s {
            Sampler::Mala { adapt: slot } => {
                *slot = if let Ok(b) = a.extract::<bool>() {
                    b.then_some(0.574)
                } else {
                    Some(
                        a.extract::<f64>()
                            .map_err(|_| PyTypeError::new_err("adapt: True, False or a target acceptance in (0, 1)"))?,
                    )
                }
            }
            _ => return Err(PyValueError::new_err(format!("adapt applies to mala, not {sampler}"))),
        }
    }
    if friction.is_some() || mass.is_some() {
        match &mut s {
            Sampler::Underdamped { mass: m, friction: g, .. } => {
                if let Some(v) = friction {
                    *g = v;
                }
                if let Some(v) = mass {
                    *m = v;
                }
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "friction and mass apply to baoab, obabo and underdamped-em, not {sampler}"
                )));
            }
        }
    }
    let step_size = match step_size {
        None => StepSize::Default,
        Some(v) => {
            if let Ok(t) = v.extract::<f64>() {
                StepSize::Given(t)
            } else if v.extract::<String>().is_ok_and(|s| s == "auto") {
                StepSize::Auto
            } else {
                return Err(PyTypeError::new_err("step_size: a number or \"auto\""));
            }
        }
    };
    let init = match init {
        None => None,
        Some(v) => {
            if let Ok(s) = v.extract::<String>() {
                Some(Init::parse(&s).map_err(value_err)?)
            } else {
                let x = rows_f32(v, "init")?;
                check_finite(x.view(), "init")?;
                target.check_dim(&x)?;
                Some(Init::Rows(Arc::new(x)))
            }
        }
    };
    let opts =
        SampleOptions { sampler: s, step_size, init, particles, steps, warmup, thin, seed, ..Default::default() };
    let p = pool(threads)?;
    let t = target.inner.clone();
    let out = py.detach(|| in_pool(&p, || langevin::sample::sample(t.as_ref(), &opts)));
    let out = target.map(out)?;
    let report = serde_json::to_string(&out.report).map_err(value_err)?;
    Ok((out.run.samples.into_pyarray(py), report))
}

/// Distances between samples and a target's exact draws or a reference set, as JSON.
#[pyfunction]
#[pyo3(signature = (x, target=None, reference=None, max_points=2000, projections=128, seed=0))]
fn evaluate(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    target: Option<&PyTarget>,
    reference: Option<&Bound<'_, PyAny>>,
    max_points: usize,
    projections: usize,
    seed: u64,
) -> PyResult<String> {
    let x = rows_f32(x, "x")?;
    check_finite(x.view(), "x")?;
    let r = reference.map(|r| rows_f32(r, "reference")).transpose()?;
    if let Some(r) = &r {
        check_finite(r.view(), "reference")?;
        if r.ncols() != x.ncols() {
            return Err(PyValueError::new_err(format!("x has {} columns, reference {}", x.ncols(), r.ncols())));
        }
    }
    if let Some(t) = target {
        t.check_dim(&x)?;
    }
    let o = langevin::metrics::EvalOptions { max_points, projections, seed };
    let t = target.map(|t| t.inner.clone());
    let rep = py.detach(|| langevin::metrics::evaluate(x.view(), t.as_deref(), r.as_ref().map(|r| r.view()), &o));
    serde_json::to_string(&rep.map_err(value_err)?).map_err(value_err)
}

/// Stagnation points, stiffness and the recommended step of a target's score field, as JSON.
#[pyfunction]
#[pyo3(signature = (target, starts=64, seed=0, samples=None))]
fn analyze(
    py: Python<'_>,
    target: &PyTarget,
    starts: usize,
    seed: u64,
    samples: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    if starts == 0 {
        return Err(PyValueError::new_err("starts must be at least 1"));
    }
    let t = target.inner.clone();
    let given = samples.map(|s| rows_f32(s, "samples")).transpose()?;
    if let Some(s) = &given {
        check_finite(s.view(), "samples")?;
        target.check_dim(s)?;
    }
    let rep = py.detach(|| -> langevin::Result<String> {
        let samples = match given {
            Some(s) => s.mapv(|v| v as f64),
            None => langevin::analysis::typical_samples(t.as_ref(), 2000, seed)?,
        };
        let f = langevin::analysis::Field::new(t.as_ref());
        let region = langevin::analysis::Region::default_for(t.as_ref(), &samples);
        let o = langevin::analysis::AnalyzeOptions { region, starts, seed, step_size: None };
        let r = langevin::analysis::analyze(&f, &samples, &o)?;
        serde_json::to_string(&r).map_err(|e| langevin::Error::msg(e.to_string()))
    });
    target.map(rep)
}

/// Train a model into the run directory `out`, as `langevin train` does; returns a JSON
/// summary. `data`: a float array (rows), a built-in data set's name or a .csv/.npy file's
/// path; `options`: the command line's training flags by name (checked by the Python layer);
/// `labels`: integers, one per row, or a label file's path; `progress(step, total, loss)` is
/// called from the calling thread about ten times a second. Ctrl-C (or a KeyboardInterrupt
/// raised by `progress`) stops after the current step, saves a checkpoint and returns with
/// `"interrupted": true`.
#[pyfunction]
#[pyo3(signature = (data, out, options, labels=None, progress=None, threads=None))]
fn train(
    py: Python<'_>,
    data: Option<&Bound<'_, PyAny>>,
    out: PathBuf,
    options: std::collections::HashMap<String, Bound<'_, PyAny>>,
    labels: Option<&Bound<'_, PyAny>>,
    progress: Option<Py<PyAny>>,
    threads: Option<usize>,
) -> PyResult<String> {
    use langevin_learn::checkpoint::RunDir;
    use langevin_learn::data::{self, Labels};
    use langevin_learn::ladder::LadderOptions;
    use langevin_learn::objective::Objective;
    let o = Opts(&options);
    let dev = candle_core::Device::Cpu;
    let run = RunDir::new(&out);
    let p = pool(threads)?;
    let every = o.u("checkpoint_every")?.unwrap_or(1000);
    if every == 0 {
        return Err(PyValueError::new_err("checkpoint_every must be at least 1"));
    }
    let steps = o.u("steps")?;
    if o.b("resume")? {
        let given: Vec<&str> = options
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !["resume", "steps", "checkpoint_every"].contains(k))
            .collect();
        if !given.is_empty() || data.is_some() || labels.is_some() {
            return Err(PyValueError::new_err(format!(
                "resume=True continues a run with its saved settings; give only steps (to train longer), not {}",
                if given.is_empty() { "data or labels".to_string() } else { given.join(", ") }
            )));
        }
        if !out.is_dir() {
            return Err(PyValueError::new_err(format!(
                "{}: no such run directory to resume; train a new run there without resume=True",
                out.display()
            )));
        }
        return watched(py, &p, progress, move |w| {
            let lock = run.lock()?;
            let t = run.resume(&dev, steps)?;
            finish(&run, t, lock, every, w)
        });
    }
    // What the data are: an array, a file, a built-in set, or a teacher's pairs (reflow).
    enum Source {
        Array(Array2<f32>),
        File(PathBuf),
        Builtin(String),
        Reflow(PathBuf),
    }
    let reflow: Option<PathBuf> = o.get("reflow").map(|v| v.extract()).transpose().map_err(|_| {
        PyTypeError::new_err("reflow: the path of a trained flow-matching or diffusion run (the teacher)")
    })?;
    let source = match (data, reflow) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "reflow= trains on the teacher's ODE pairs: give data=None (the student has no data of its own)",
            ));
        }
        (None, Some(r)) => Source::Reflow(r),
        (None, None) => {
            return Err(PyValueError::new_err("data: an array of rows, a built-in data set's name or a .csv/.npy file"));
        }
        (Some(d), None) => {
            if let Ok(s) = d.extract::<String>() {
                let lower = s.to_ascii_lowercase();
                if lower.ends_with(".csv") || lower.ends_with(".npy") {
                    Source::File(PathBuf::from(s))
                } else if std::path::Path::new(&s).is_file() {
                    return Err(PyValueError::new_err(format!(
                        "data {s:?}: a file, but only .csv and .npy files are read (or pass a NumPy array)"
                    )));
                } else {
                    Source::Builtin(s)
                }
            } else {
                let x = rows_f32(d, "data")?;
                check_finite(x.view(), "data")?;
                Source::Array(x)
            }
        }
    };
    if o.get("reflow_steps").is_some() && !matches!(source, Source::Reflow(_)) {
        return Err(PyValueError::new_err("reflow_steps applies with reflow=RUN"));
    }
    let conditional = o.b("conditional")?;
    let label_col = o.s("label")?;
    // Labels given as integers (one per row) or as a file.
    let label_values: Option<(Vec<i64>, String)> = match labels {
        None => None,
        Some(l) => {
            if let Ok(p) = l.extract::<PathBuf>() {
                let v = data::read_labels(&p).map_err(value_err)?;
                Some((v, p.display().to_string()))
            } else {
                let v: Vec<i64> = l.extract().map_err(|_| {
                    PyTypeError::new_err("labels: a 1-D array of integers (one per row) or a label file's path")
                })?;
                Some((v, "labels".to_string()))
            }
        }
    };
    match &source {
        Source::Array(_) => {
            if conditional {
                return Err(PyValueError::new_err(
                    "conditional=True uses a built-in data set's labels; for an array give labels=",
                ));
            }
            if label_col.is_some() {
                return Err(PyValueError::new_err("label= names a column of a data file; for an array give labels="));
            }
        }
        Source::File(_) => {
            if conditional {
                return Err(PyValueError::new_err(
                    "conditional=True uses a built-in data set's labels; for a file give label=COLUMN or labels=",
                ));
            }
            if label_col.is_some() && label_values.is_some() {
                return Err(PyValueError::new_err(
                    "give the labels once: label=COLUMN (a column of the data file) or labels=, not both",
                ));
            }
        }
        Source::Builtin(_) => {
            if label_col.is_some() || label_values.is_some() {
                return Err(PyValueError::new_err(
                    "label= and labels= are for arrays and data files; a built-in data set has its own: use conditional=True",
                ));
            }
        }
        Source::Reflow(_) => {
            for k in ["label", "conditional", "cond_drop", "minibatch_ot", "drop_nonfinite", "keep_constant", "model", "preset"] {
                if options.contains_key(k) {
                    return Err(PyValueError::new_err(format!(
                        "{k} does not apply with reflow: the student's data are the teacher's ODE pairs"
                    )));
                }
            }
            if labels.is_some() {
                return Err(PyValueError::new_err(
                    "labels does not apply with reflow: the student's data are the teacher's ODE pairs",
                ));
            }
        }
    }
    let labeled = conditional || label_col.is_some() || label_values.is_some();
    if o.get("cond_drop").is_some() && !labeled {
        return Err(PyValueError::new_err(
            "cond_drop applies to class-conditional training (labels=, label= or conditional=True)",
        ));
    }
    let mut objective = o.s("objective")?;
    if matches!(source, Source::Reflow(_)) {
        match objective.as_deref() {
            None | Some("flow-matching") => objective = Some("flow-matching".into()),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "reflow trains a flow-matching student; drop objective={other:?} (or give \"flow-matching\")"
                )));
            }
        }
    }
    let objective = Objective::with_prediction(
        objective.as_deref().unwrap_or(langevin_learn::train::DEFAULT_OBJECTIVE),
        o.s("sde")?.as_deref(),
        o.s("weighting")?.as_deref(),
        o.s("prediction")?.as_deref(),
    )
    .map_err(value_err)?;
    let minibatch_ot = o.b("minibatch_ot")?;
    if let Some(path) = o.s("path")?
        && path != "ot"
    {
        return Err(PyValueError::new_err(format!(
            "path={path:?}: the only flow-matching path is \"ot\" (the Gaussian VP paths are objective=\"dsm\")"
        )));
    }
    if (minibatch_ot || o.get("path").is_some()) && objective != Objective::FlowMatching {
        return Err(PyValueError::new_err("minibatch_ot and path apply to objective=\"flow-matching\""));
    }
    let mut recipe = langevin_learn::train::Recipe {
        objective: Some(objective),
        steps,
        batch: o.u("batch")?,
        lr: o.f("lr")?,
        warmup: o.u("warmup")?,
        weight_decay: o.f("weight_decay")?,
        clip: o.f("clip")?,
        ema: o.f("ema")?,
        seed: o.u64("seed")?,
        decay: o
            .s("lr_decay")?
            .as_deref()
            .map(langevin_learn::train::LrDecay::from_name)
            .transpose()
            .map_err(value_err)?,
        cond_drop: o.f("cond_drop")?,
        minibatch_ot,
        width: o.u("width")?,
        depth: o.u("depth")?,
        fourier: o.u("fourier")?,
        unet: None,
        flip: o.b("flip")?,
    };
    let (model, preset) = (o.s("model")?, o.s("preset")?);
    let ladder = LadderOptions { sigma_max: o.f("sigma_max")?, sigma_min: o.f("sigma_min")?, levels: o.u("levels")? };
    let heldout_fraction = o.f("heldout_fraction")?.unwrap_or(0.1);
    let rows = o.u("rows")?;
    if rows.is_some() && matches!(source, Source::Array(_) | Source::File(_)) {
        return Err(PyValueError::new_err(
            "rows applies to built-in data sets and reflow; arrays and files are used whole",
        ));
    }
    if let Some(r) = rows
        && r < 10
    {
        return Err(PyValueError::new_err(format!("rows={r}: at least 10 rows are needed")));
    }
    let keep_constant = o.b("keep_constant")?;
    let drop_nonfinite = o.b("drop_nonfinite")?;
    let seed = recipe.seed.unwrap_or(0);
    let reflow_steps = o.u("reflow_steps")?.unwrap_or(50);
    let image_size = o.u("image_size")?;
    let skip_bad = o.b("skip_bad_images")?;
    if skip_bad && !matches!(&source, Source::Builtin(n) if langevin_learn::images::is_image_source(n)) {
        return Err(PyValueError::new_err("skip_bad_images applies to a folder of images"));
    }
    watched(py, &p, progress, move |w| {
        let mut shape = None;
        let (x, labels, real, name, dropped) = match source {
            Source::Reflow(teacher) => {
                let teacher = Arc::new(langevin_learn::checkpoint::TrainedModel::load(&teacher, &dev)?);
                let n = rows.unwrap_or(20_000);
                let (net, tc) =
                    recipe.configs(false, n - data::heldout_count(n, heldout_fraction), teacher.config.dim)?;
                let new = langevin_learn::reflow::new_reflow_run(
                    &teacher,
                    n,
                    reflow_steps,
                    heldout_fraction,
                    &ladder,
                    net,
                    tc,
                    &dev,
                )?;
                let lock = run.begin(&new)?;
                return finish(&run, new.trainer, lock, every, w);
            }
            Source::Array(x) => {
                let l = label_values.map(|(v, what)| Labels::from_values(&v, what)).transpose()?;
                (x, l, false, "array".to_string(), 0)
            }
            Source::File(path) => {
                let (x, values, dropped) = data::read_labeled(&path, label_col.as_deref(), drop_nonfinite)?;
                let l = match (values, label_values) {
                    (Some(v), _) => Some(Labels::from_values(
                        &v,
                        format!("column '{}' of {}", label_col.as_deref().unwrap_or(""), path.display()),
                    )?),
                    (None, Some((v, what))) => {
                        if dropped > 0 {
                            return Err(langevin::Error::msg(format!(
                                "{dropped} data rows were dropped for NaN or inf, so the rows of the labels no longer \
                                 line up; clean the data, or put the labels in a column of the data file and use label="
                            )));
                        }
                        Some(Labels::from_values(&v, what)?)
                    }
                    (None, None) => None,
                };
                (x, l, false, path.display().to_string(), dropped)
            }
            Source::Builtin(name) if langevin_learn::images::is_image_source(&name) => {
                let set = langevin_learn::images::load(&name, image_size, rows.unwrap_or(20_000), seed, skip_bad)?;
                if let Some(first) = set.skipped.first() {
                    eprintln!(
                        "warning: skipped {} image file(s) that could not be read (the first: {})",
                        set.skipped.len(),
                        first.display()
                    );
                }
                if conditional && set.labels.is_none() {
                    return Err(langevin::Error::msg(format!(
                        "conditional=True: {name} has no labels (a folder has them with one subfolder per class)"
                    )));
                }
                shape = Some(set.shape);
                (set.x, if conditional { set.labels } else { None }, true, name, 0)
            }
            Source::Builtin(name) => {
                if image_size.is_some() {
                    return Err(langevin::Error::msg(
                        "image_size applies to image data (shapes, mnist:FILE, cifar10:PATH or a folder of images)",
                    ));
                }
                let real = data::REAL.iter().any(|(n, _)| *n == name);
                if real && rows.is_some() {
                    return Err(langevin::Error::msg(format!(
                        "rows applies to the generated data sets; {name} is real data, used whole"
                    )));
                }
                if conditional && !real && data::builtin_classes(&name).is_none() {
                    return Err(langevin::Error::msg(format!(
                        "conditional=True: the data set {name} has no component labels; train it without conditional"
                    )));
                }
                let (x, l, real) = data::builtin(&name, rows.unwrap_or(20_000), seed, conditional)?;
                (x, l, real, name, 0)
            }
        };
        if let Some(l) = &labels
            && l.per_row.len() != x.nrows()
        {
            return Err(langevin::Error::msg(format!(
                "labels has {} entries for {} data rows: give one label per row",
                l.per_row.len(),
                x.nrows()
            )));
        }
        if name == "digits" {
            shape = Some(langevin_learn::images::ImageShape { channels: 1, height: 8, width: 8 });
        }
        recipe.unet = langevin_learn::unet::requested(model.as_deref(), preset.as_deref(), shape)?;
        let n = x.nrows() - data::heldout_count(x.nrows(), heldout_fraction);
        let (net, tc) = recipe.configs(labels.is_some(), n, x.ncols())?;
        let mut new = langevin_learn::checkpoint::new_labeled_run(
            &x,
            labels.as_ref(),
            keep_constant || real,
            &name,
            dropped,
            heldout_fraction,
            &ladder,
            net,
            tc,
            &dev,
        )?;
        new.config.data.image = shape;
        let lock = run.begin(&new)?;
        finish(&run, new.trainer, lock, every, w)
    })
}

/// Options passed by name, read with their types (a wrong type names the option).
struct Opts<'a, 'py>(&'a std::collections::HashMap<String, Bound<'py, PyAny>>);

impl<'py> Opts<'_, 'py> {
    fn get(&self, k: &str) -> Option<&Bound<'py, PyAny>> {
        self.0.get(k).filter(|v| !v.is_none())
    }
    fn f(&self, k: &str) -> PyResult<Option<f64>> {
        self.get(k).map(|v| v.extract::<f64>().map_err(|_| PyTypeError::new_err(format!("{k}: a number")))).transpose()
    }
    fn u(&self, k: &str) -> PyResult<Option<usize>> {
        self.get(k)
            .map(|v| v.extract::<usize>().map_err(|_| PyTypeError::new_err(format!("{k}: a whole number"))))
            .transpose()
    }
    fn u64(&self, k: &str) -> PyResult<Option<u64>> {
        self.get(k)
            .map(|v| v.extract::<u64>().map_err(|_| PyTypeError::new_err(format!("{k}: a whole number"))))
            .transpose()
    }
    fn b(&self, k: &str) -> PyResult<bool> {
        Ok(self
            .get(k)
            .map(|v| v.extract::<bool>().map_err(|_| PyTypeError::new_err(format!("{k}: True or False"))))
            .transpose()?
            .unwrap_or(false))
    }
    fn s(&self, k: &str) -> PyResult<Option<String>> {
        self.get(k)
            .map(|v| {
                if let Ok(i) = v.extract::<i64>() {
                    return Ok(i.to_string()); // a column number
                }
                v.extract::<String>().map_err(|_| PyTypeError::new_err(format!("{k}: a name")))
            })
            .transpose()
    }
}

/// What the training thread shows the calling thread: the step, the last loss, and the flag
/// that stops it.
#[derive(Default)]
struct Watch {
    stop: std::sync::atomic::AtomicBool,
    step: std::sync::atomic::AtomicUsize,
    total: std::sync::atomic::AtomicUsize,
    loss: AtomicU64,
}

impl langevin_learn::fit::Observer for &Watch {
    fn observe(
        &mut self,
        _t: &langevin_learn::train::Trainer,
        st: &langevin_learn::train::StepStats,
        until: usize,
    ) -> langevin::Result<langevin_learn::fit::Flow> {
        self.step.store(st.step, Ordering::Relaxed);
        self.total.store(until, Ordering::Relaxed);
        self.loss.store(st.loss.to_bits(), Ordering::Relaxed);
        Ok(if self.stop.load(Ordering::SeqCst) {
            langevin_learn::fit::Flow::Stop
        } else {
            langevin_learn::fit::Flow::Continue
        })
    }
}

/// Run `work` on a thread of its own (in the pool) while this thread, the one Python calls
/// from, watches it: it releases the GIL between looks, calls `progress(step, total, loss)` when
/// the step moved and checks for Ctrl-C (Python runs signal handlers on the main thread
/// only). Ctrl-C or a KeyboardInterrupt from `progress` sets the stop flag: the work ends after
/// its current step and reports `"interrupted": true`. Another exception from `progress` stops
/// it the same way and is raised once the work has ended (and checkpointed).
fn watched(
    py: Python<'_>,
    p: &Option<rayon::ThreadPool>,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(&Watch) -> langevin::Result<serde_json::Value> + Send,
) -> PyResult<String> {
    let watch = Watch::default();
    let main = std::thread::current();
    let mut interrupted = false;
    let mut raised: Option<PyErr> = None;
    let mut shown = usize::MAX;
    let result = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = in_pool(p, || work(&watch));
            main.unpark();
            r
        });
        loop {
            let done = h.is_finished();
            let step = watch.step.load(Ordering::Relaxed);
            if let Some(cb) = &progress
                && step != shown
                && step > 0
                && raised.is_none()
            {
                shown = step;
                let loss = f64::from_bits(watch.loss.load(Ordering::Relaxed));
                if let Err(e) = cb.call1(py, (step, watch.total.load(Ordering::Relaxed), loss)) {
                    watch.stop.store(true, Ordering::SeqCst);
                    if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                        interrupted = true;
                    } else {
                        raised = Some(e);
                    }
                }
            }
            if done {
                break h.join();
            }
            if let Err(e) = py.check_signals() {
                watch.stop.store(true, Ordering::SeqCst);
                if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                    interrupted = true;
                } else if raised.is_none() {
                    raised = Some(e);
                }
            }
            py.detach(|| std::thread::park_timeout(std::time::Duration::from_millis(100)));
        }
    });
    let result = result.map_err(|_| PyValueError::new_err("internal error: the training thread panicked"))?;
    if let Some(e) = raised {
        return Err(e);
    }
    let mut v = result.map_err(value_err)?;
    v["interrupted"] = serde_json::json!(interrupted && v["stopped"].as_bool().unwrap_or(false));
    if let Some(m) = v.as_object_mut() {
        m.remove("stopped");
    }
    Ok(v.to_string())
}

/// Train `t` to its configured steps with the CLI's observers (metrics log, checkpoints) and
/// the watcher's; the lock is held until the end.
fn finish(
    run: &langevin_learn::checkpoint::RunDir,
    mut t: langevin_learn::train::Trainer,
    _lock: langevin_learn::checkpoint::RunLock,
    every: usize,
    w: &Watch,
) -> langevin::Result<serde_json::Value> {
    use langevin_learn::fit::{CheckpointEvery, MetricsLog, fit};
    let total = t.config.steps;
    let mut log = MetricsLog::open(run, 100, 1000)?;
    let mut ckpt = CheckpointEvery::new(run.clone(), every);
    let mut watch = w;
    let s = fit(&mut t, total, &mut [&mut log, &mut ckpt, &mut watch])?;
    let heldout = match s.heldout_loss {
        Some(h) => h,
        None => t.heldout_loss()?.0,
    };
    Ok(serde_json::json!({
        "steps": t.step,
        "seconds": s.seconds,
        "heldout_loss": heldout,
        "out": run.file("").display().to_string(),
        "stopped": s.stopped,
    }))
}

/// Samples from a trained run: (float32 (n, d) in the data's units, report as JSON).
#[pyfunction]
#[pyo3(signature = (run, n=10000, sampler=None, steps=None, seed=0, class_=None, guidance=0.0, threads=None))]
#[allow(clippy::too_many_arguments)]
fn generate<'py>(
    py: Python<'py>,
    run: PathBuf,
    n: usize,
    sampler: Option<&str>,
    steps: Option<usize>,
    seed: u64,
    class_: Option<String>,
    guidance: f64,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, String)> {
    use langevin_learn::generate::{GenSampler, GenerateOptions};
    let p = pool(threads)?;
    let sampler = sampler.map(|s| s.to_string());
    let res = py.detach(|| {
        in_pool(&p, || -> langevin::Result<(Array2<f32>, String)> {
            let model = Arc::new(langevin_learn::checkpoint::TrainedModel::load(&run, &candle_core::Device::Cpu)?);
            let gs = match sampler.as_deref() {
                Some(name) => GenSampler::from_name(name)?,
                None => GenSampler::default_for(&model.config),
            };
            let mut o = GenerateOptions { n, sampler: gs, seed, class: class_, guidance, ..Default::default() };
            if let Some(k) = steps {
                o.diffusion.steps = Some(k);
            }
            let g = langevin_learn::generate::generate(model, &o)?;
            let report = serde_json::to_string(&g.report).map_err(|e| langevin::Error::msg(e.to_string()))?;
            Ok((g.samples, report))
        })
    });
    let (x, report) = res.map_err(value_err)?;
    Ok((x.into_pyarray(py), report))
}

/// Bayesian logistic or linear regression on arrays: posterior draws of θ = (θ₀, θ₁, …, θ_p)
/// (draws × chains rows) and the report as JSON.
#[pyfunction]
#[pyo3(signature = (x, y, model="logistic", sampler="sgld", chains=4, steps=10000, warmup=None, thin=None, step_size=None, batch=128, decay=None, prior_std=10.0, noise_std=1.0, standardize=false, seed=0, threads=None))]
#[allow(clippy::too_many_arguments)]
fn posterior<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: Vec<f64>,
    model: &str,
    sampler: &str,
    chains: usize,
    steps: usize,
    warmup: Option<usize>,
    thin: Option<usize>,
    step_size: Option<f64>,
    batch: usize,
    decay: Option<f64>,
    prior_std: f64,
    noise_std: f64,
    standardize: bool,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<f32>>, String)> {
    use langevin::posterior::{Dataset, Model, Posterior, PosteriorOptions, PosteriorSampler, sample_posterior};
    let x = if let Ok(a) = x.cast::<PyArray2<f64>>() {
        a.readonly().as_array().to_owned()
    } else {
        rows_f32(x, "x")?.mapv(|v| v as f64)
    };
    let (n, p) = x.dim();
    if y.len() != n {
        return Err(PyValueError::new_err(format!(
            "x has {n} rows but y has {} values: give one label per row",
            y.len()
        )));
    }
    let model = match model {
        "logistic" => Model::Logistic,
        "linear" => Model::Linear { noise_std },
        m => return Err(PyValueError::new_err(format!("unknown model '{m}'; choose logistic or linear"))),
    };
    let sampler = match sampler {
        "sgld" => PosteriorSampler::Sgld,
        "psgld" => PosteriorSampler::Psgld,
        "sgld-cv" => PosteriorSampler::SgldCv,
        "mala" => PosteriorSampler::Mala,
        "ula" => PosteriorSampler::Ula,
        s => {
            return Err(PyValueError::new_err(format!(
                "unknown posterior sampler '{s}'; choose sgld, psgld, sgld-cv, mala or ula"
            )));
        }
    };
    let names: Vec<String> = (0..p).map(|j| format!("x{j}")).collect();
    let flat: Vec<f64> = x.iter().cloned().collect();
    let pool = pool(threads)?;
    let res = py.detach(|| {
        in_pool(&pool, || -> langevin::Result<(Array2<f32>, String)> {
            let mut data = Dataset::new(flat, p, y, names, "y".into())?;
            if standardize {
                data.standardize()?;
            }
            let post = Posterior::new(Arc::new(data), model, prior_std)?;
            let opts = PosteriorOptions {
                sampler,
                chains,
                steps,
                warmup,
                thin,
                step_size,
                batch,
                decay,
                schedule_gamma: None,
                init: None,
                seed,
                progress: None,
            };
            let (run, report) = sample_posterior(&post, &opts)?;
            let mut rep = serde_json::to_value(&report).map_err(|e| langevin::Error::msg(e.to_string()))?;
            rep["parameters"] = serde_json::json!(post.parameter_names());
            Ok((run.samples, rep.to_string()))
        })
    });
    let (s, r) = res.map_err(value_err)?;
    Ok((s.into_pyarray(py), r))
}

/// The probability-flow ODE's exact log-likelihood of the rows of `data` (nats and bits per
/// dimension) under a target that knows its perturbed scores, or under a trained run (a path).
#[pyfunction]
#[pyo3(signature = (of, data, schedule=None, sigma_min=None, sigma_max=None, t_eps=None, solver=None, rtol=None, atol=None, max_steps=None, probes=None, seed=0, dequantize=false, threads=None))]
#[allow(clippy::too_many_arguments)]
fn likelihood(
    py: Python<'_>,
    of: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    schedule: Option<String>,
    sigma_min: Option<f64>,
    sigma_max: Option<f64>,
    t_eps: Option<f64>,
    solver: Option<String>,
    rtol: Option<f64>,
    atol: Option<f64>,
    max_steps: Option<usize>,
    probes: Option<usize>,
    seed: u64,
    dequantize: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    use langevin::diffusion::likelihood::LikelihoodOptions;
    let x = rows_f32(data, "data")?;
    check_finite(x.view(), "data")?;
    let o = LikelihoodOptions {
        schedule: schedule
            .as_deref()
            .map(langevin::diffusion::ScheduleKind::from_name)
            .transpose()
            .map_err(value_err)?,
        sigma_min,
        sigma_max,
        t_eps,
        solver: solver.as_deref().map(langevin::diffusion::Solver::from_name).transpose().map_err(value_err)?,
        rtol,
        atol,
        max_steps,
        probes,
        seed,
        dequantize,
    };
    let p = pool(threads)?;
    if let Ok(t) = of.cast::<PyTarget>() {
        let t = t.get();
        t.check_dim(&x)?;
        let inner = t.inner.clone();
        let r = py.detach(|| {
            in_pool(&p, || langevin::diffusion::likelihood::likelihood_of_target(inner.as_ref(), x.view(), &o))
        });
        return serde_json::to_string(&t.map(r)?).map_err(value_err);
    }
    let dir: PathBuf =
        of.extract().map_err(|_| PyTypeError::new_err("of: a langevin.Target or a run directory's path"))?;
    let r = py.detach(|| {
        in_pool(&p, || -> langevin::Result<String> {
            let model = Arc::new(langevin_learn::checkpoint::TrainedModel::load(&dir, &candle_core::Device::Cpu)?);
            let rep = langevin_learn::likelihood::likelihood(model, x.view(), &o)?;
            serde_json::to_string(&rep).map_err(|e| langevin::Error::msg(e.to_string()))
        })
    });
    r.map_err(value_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTarget>()?;
    m.add_function(wrap_pyfunction!(target, m)?)?;
    m.add_function(wrap_pyfunction!(gmm, m)?)?;
    m.add_function(wrap_pyfunction!(potential, m)?)?;
    m.add_function(wrap_pyfunction!(score_function, m)?)?;
    m.add_function(wrap_pyfunction!(sample, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(posterior, m)?)?;
    m.add_function(wrap_pyfunction!(likelihood, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
