//! Building and writing JSON reports, and the short summaries printed on the terminal.

use anyhow::Result;
use langevin::diagnostics;
use langevin::metrics;
use langevin::target::Target;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde_json::{Map, Value, json};
use std::path::Path;

/// A matrix as nested JSON arrays.
pub fn matrix(m: &Array2<f64>) -> Value {
    Value::Array(m.outer_iter().map(|r| json!(r.to_vec())).collect())
}

/// Mean, covariance and (for mixtures) mode weights of `samples`, plus the exact values when
/// the target knows them.
pub fn sample_statistics(samples: ArrayView2<f32>, target: &dyn Target) -> Map<String, Value> {
    let mut m = Map::new();
    let (mean, cov) = diagnostics::mean_cov(samples);
    m.insert("mean".into(), json!(mean));
    m.insert("covariance".into(), matrix(&cov));
    if let Some((em, ec)) = target.moments() {
        m.insert("exact_mean".into(), json!(em));
        m.insert("exact_covariance".into(), matrix(&ec));
    }
    if let Some(mix) = target.mixture() {
        if mix.n_components() > 1 {
            m.insert("mode_weights".into(), json!(metrics::mode_weights(samples, mix)));
            m.insert("mode_weights_expected".into(), json!(mix.weights()));
        }
    }
    m
}

/// Bulk ESS and R-hat per coordinate for samples laid out `draws × chains`.
pub fn chain_diagnostics(samples: ArrayView2<f32>, chains: usize) -> Map<String, Value> {
    let d = samples.ncols();
    let per: Vec<(f64, f64)> = (0..d)
        .into_par_iter()
        .map(|c| {
            let ch = diagnostics::chains_of(samples, chains, c);
            diagnostics::ess_bulk_and_rhat(&ch)
        })
        .collect();
    let ess: Vec<f64> = per.iter().map(|p| p.0).collect();
    let rhat: Vec<f64> = per.iter().map(|p| p.1).collect();
    let mut m = Map::new();
    m.insert("ess_bulk_min".into(), json!(ess.iter().cloned().fold(f64::INFINITY, f64::min)));
    m.insert("rhat_max".into(), json!(rhat.iter().cloned().fold(f64::NEG_INFINITY, f64::max)));
    m.insert("ess_bulk".into(), json!(ess));
    m.insert("rhat".into(), json!(rhat));
    m
}

/// Write `value` to `path` (atomically), or to stdout when `path` is `-`.
pub fn write(path: &Path, value: &Value) -> Result<()> {
    if path.as_os_str() == "-" {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    } else {
        Ok(langevin::io::write_json(path, value)?)
    }
}

/// Check before a long run that an output path can be written (`-` is stdout).
pub fn check_output(path: &Path) -> Result<()> {
    if path.as_os_str() != "-" {
        langevin::io::check_writable(path)?;
    }
    Ok(())
}

/// Format a vector compactly for the terminal.
pub fn short(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
    let more = if v.len() > 6 { format!(", … ({} values)", v.len()) } else { String::new() };
    format!("[{}{more}]", items.join(", "))
}
