//! Building and writing JSON reports, and the short summaries printed on the terminal.

use anyhow::Result;
use ndarray::Array2;
use serde_json::{Value, json};
use std::path::Path;

/// A matrix as nested JSON arrays.
pub fn matrix(m: &Array2<f64>) -> Value {
    Value::Array(m.outer_iter().map(|r| json!(r.to_vec())).collect())
}

/// A path as a JSON string (lossy for names that are not UTF-8: `json!(path)` would panic).
pub fn path(p: &Path) -> Value {
    Value::String(p.to_string_lossy().into_owned())
}

/// Write `value` to `path` (atomically), or to stdout when `path` is `-`.
pub fn write(path: &Path, value: &Value) -> Result<()> {
    if path.as_os_str() == "-" {
        outln!("{}", serde_json::to_string_pretty(value)?)?;
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

/// A target or init spec that names an existing file, as a path (for [`guard`]).
pub fn spec_file(spec: Option<&str>) -> Option<&Path> {
    spec.map(Path::new).filter(|p| p.is_file())
}

/// Before any work: no output may be an input or another output (by device and inode), and
/// every output must be writable. `None` entries are flags that were not given.
pub fn guard(inputs: &[(&'static str, Option<&Path>)], outputs: &[(&'static str, Option<&Path>)]) -> Result<()> {
    let ins: Vec<(&str, &Path)> = inputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))).collect();
    let outs: Vec<(&str, &Path)> = outputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))).collect();
    langevin::io::check_distinct(&ins, &outs)?;
    for (_, p) in outs {
        check_output(p)?;
    }
    Ok(())
}

/// Format a vector compactly for the terminal.
pub fn short(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().take(6).map(|x| format!("{x:.4}")).collect();
    let more = if v.len() > 6 { format!(", … ({} values)", v.len()) } else { String::new() };
    format!("[{}{more}]", items.join(", "))
}
