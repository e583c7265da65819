//! Helpers shared by the binary's test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the binary in `dir`.
pub fn langevin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_langevin")).current_dir(dir).args(args).output().expect("the binary runs")
}

/// Run, expect success, return the output.
pub fn succeeds(dir: &Path, args: &[&str]) -> Output {
    let out = langevin(dir, args);
    assert!(
        out.status.success(),
        "langevin {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run, expect failure with an error message (never a panic), return stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = langevin(dir, args);
    assert!(!out.status.success(), "langevin {args:?} should fail but succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic instead of an error: {err}");
    assert!(err.starts_with("error"), "{err}");
    err
}
