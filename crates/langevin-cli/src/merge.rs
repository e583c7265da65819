//! `langevin merge`: join the shards of a `sample --shard K/N` run into the whole run's samples
//! and report, checking that they are every shard of one run.

use crate::sample::{SampleArgs, at_temperature, options, write_outputs};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser};
use langevin::sample::{ShardPart, ShardReport, merge};
use langevin::target::load_target;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' sample files (.npy or .csv, as `sample --shard` wrote them), in any order.
    #[arg(value_name = "SHARD", required = true)]
    pub shards: Vec<PathBuf>,
    /// The shards' JSON reports (each names its sample file and its place in the run).
    #[arg(long, value_name = "REPORT", num_args = 1.., required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the whole run's samples (.npy or .csv).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the whole run's report (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The flags of a shard's `sample` command, parsed again.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct Settings {
    #[command(flatten)]
    a: SampleArgs,
}

pub fn run(m: &MergeArgs, quiet: bool) -> Result<()> {
    if m.shards.len() != m.reports.len() {
        bail!(
            "{} sample files but {} reports: give each shard's samples and its report (--reports)",
            m.shards.len(),
            m.reports.len()
        );
    }
    let outs: Vec<(&str, Option<&Path>)> = vec![("out", m.out.as_deref()), ("report", m.report.as_deref())];
    let ins: Vec<(&'static str, Option<&Path>)> =
        m.shards.iter().chain(&m.reports).map(|p| ("a shard's file", Some(p.as_path()))).collect();
    crate::report::guard(&ins, &outs)?;
    // Each report, the shard record and settings in it, and the sample file it names.
    let mut reports = Vec::new();
    for p in &m.reports {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read the report {}", p.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!("{}: not a JSON report ({e}); give the reports that `sample --shard` wrote", p.display())
        })?;
        let shard: ShardReport = serde_json::from_value(v.get("shard").cloned().unwrap_or(Value::Null)).map_err(|_| {
            anyhow!("{}: not the report of a shard (no `shard` record); make shards with `sample --shard K/N --report FILE`", p.display())
        })?;
        let settings: Vec<String> = serde_json::from_value(v.get("settings").cloned().unwrap_or(Value::Null))
            .map_err(|_| anyhow!("{}: the shard's report has no `settings`", p.display()))?;
        let named = v.get("out").and_then(|o| o.as_str()).map(PathBuf::from).ok_or_else(|| {
            anyhow!("{}: the shard's report names no sample file (it was run without --out)", p.display())
        })?;
        reports.push((p, v, shard, settings, named));
    }
    // Pair reports and files by the path each report names (or by file name when the shards
    // were moved), never by position.
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let files: Vec<PathBuf> = m.shards.iter().map(|p| canon(p)).collect();
    let mut used = vec![false; files.len()];
    let mut parts = Vec::new();
    for (p, v, shard, _, named) in &reports {
        let full = canon(named);
        let i = files.iter().position(|f| *f == full).or_else(|| {
            let hits: Vec<usize> =
                (0..files.len()).filter(|&i| files[i].file_name() == named.file_name() && !used[i]).collect();
            (hits.len() == 1).then(|| hits[0])
        });
        let Some(i) = i else {
            bail!(
                "{} names its samples {}, which is not among the files given; give each shard's file with its report",
                p.display(),
                named.display()
            );
        };
        if used[i] {
            bail!("{} is named by two reports; each shard has its own file", m.shards[i].display());
        }
        used[i] = true;
        let samples = langevin::io::read_matrix(&m.shards[i])?;
        if v.get("samples_checksum").and_then(|c| c.as_str()) != Some(langevin::io::checksum(samples.view()).as_str()) {
            bail!(
                "{} does not hold the samples its report {} describes (checksum differs): it was overwritten or truncated; run shard {}/{} again",
                m.shards[i].display(),
                p.display(),
                shard.index,
                shard.count
            );
        }
        let seconds = v.get("seconds").and_then(|s| s.as_f64()).unwrap_or(0.0);
        parts.push(ShardPart { samples, shard: shard.clone(), seconds });
    }
    // One run: the same flags everywhere.
    let first = &reports[0];
    for r in &reports[1..] {
        if r.3 != first.3 {
            bail!(
                "{} and {} come from different runs: `sample {}` vs `sample {}`; merge the shards of one run",
                first.0.display(),
                r.0.display(),
                first.3.join(" "),
                r.3.join(" ")
            );
        }
    }
    let a = Settings::try_parse_from(&first.3)
        .map_err(|e| anyhow!("the shards' settings do not parse as `sample` flags: {e}"))?
        .a;
    let (target, warnings) = load_target(&a.target)?;
    let target = at_temperature(&a, target)?;
    let opts = options(&a)?;
    let merged = merge(target.as_ref(), &opts, &parts)?;
    let out_args = SampleArgs { out: m.out.clone(), report: m.report.clone(), ..a };
    write_outputs(
        &out_args,
        target.as_ref(),
        &opts,
        &merged,
        &warnings,
        &[("merged_shards", json!(parts.len()))],
        quiet,
    )
}
