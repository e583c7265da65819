//! `langevin targets`: the built-in targets and their parameters.

use anyhow::Result;
use clap::Args;
use langevin::target::builtin::BUILTINS;
use serde_json::json;

#[derive(Args, Debug)]
pub struct TargetsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &TargetsArgs) -> Result<()> {
    if a.json {
        let list: Vec<_> = BUILTINS
            .iter()
            .map(|b| {
                json!({
                    "name": b.name,
                    "description": b.description,
                    "params": b.params.iter().map(|p| json!({"name": p.name, "default": p.default, "help": p.help})).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    outln!("Built-in targets (use as --target NAME or --target NAME:key=value,...):\n")?;
    for b in BUILTINS {
        outln!("  {:<13} {}", b.name, b.description)?;
        for p in b.params {
            outln!("  {:<13}   {}={} — {}", "", p.name, p.default, p.help)?;
        }
    }
    outln!(
        "\nAny other density: a TOML file (--target my_target.toml) of kind \"gmm\", \"gaussian\",\n\
         \"potential\" (energy formula at a temperature) or \"builtin\"; see examples/targets/."
    )?;
    Ok(())
}
