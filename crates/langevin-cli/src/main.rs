//! `langevin`: sample densities with Langevin dynamics, evaluate samples, benchmark.

mod bench;
mod eval;
mod posterior;
mod progress;
mod report;
mod sample;
mod targets;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "langevin",
    version,
    about = "Langevin dynamics and score-based sampling: sample any density with x ← x + τ∇log p(x) + √(2τ)z and its relatives",
    after_help = "Examples:\n  \
      langevin targets\n  \
      langevin sample --target ncsn-toy --sampler annealed --particles 100000 --seed 1 --out s.npy --report r.json\n  \
      langevin sample --target my_potential.toml --sampler mala --steps 5000 --out s.csv\n  \
      langevin eval --samples s.npy --target ncsn-toy --report metrics.json\n  \
      langevin eval --samples a.npy --reference b.npy\n  \
      langevin sample --target muller-brown --sampler baoab --friction 1 --temperature 10 --dt 0.001 --steps 200000\n  \
      langevin posterior --data loans.csv --label default --model logistic --sampler sgld --batch 128 --steps 50000"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bar and no summary on the terminal (errors and the files asked for still appear).
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Draw samples from a target with ULA, MALA or annealed Langevin dynamics.
    Sample(Box<sample::SampleArgs>),
    /// Sample a Bayesian regression posterior from a CSV file (SGLD, pSGLD, MALA, ULA).
    Posterior(Box<posterior::PosteriorArgs>),
    /// Compare samples with a target (exact answers) or with reference samples.
    Eval(eval::EvalArgs),
    /// List the built-in targets and their parameters.
    Targets(targets::TargetsArgs),
    /// Measure sampler speed on fixed workloads and print JSON.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if n == 0 {
            eprintln!("error: --threads must be at least 1");
            return ExitCode::from(2);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            eprintln!("error: cannot start {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Sample(a) => sample::run(&a, cli.quiet),
        Command::Eval(a) => eval::run(&a, cli.quiet),
        Command::Posterior(a) => posterior::run(&a, cli.quiet),
        Command::Targets(a) => targets::run(&a),
        Command::Bench(a) => bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
