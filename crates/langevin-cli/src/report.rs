//! Building and writing JSON reports, and the short summaries printed on the terminal.

use anyhow::Result;
use ndarray::Array2;
use serde_json::{Value, json};
use std::path::Path;

/// A matrix as nested JSON arrays.
pub fn matrix(m: &Array2<f64>) -> Value {
    Value::Array(m.outer_iter().map(|r| json!(r.to_vec())).collect())
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
