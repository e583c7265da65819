//! `langevin`: sample densities with Langevin dynamics, evaluate samples, benchmark.

#[macro_use]
mod out;
mod analyze;
mod animate;
mod bench;
mod compare;
mod diffusion_flags;
#[cfg(feature = "mpi")]
mod distributed;
mod eval;
mod field;
mod flags;
mod generate;
mod likelihood;
mod merge;
mod plot;
mod plot_cmd;
mod posterior;
mod progress;
mod quickstart;
mod report;
mod sample;
mod targets;
mod train;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
      langevin posterior --data loans.csv --label default --model logistic --sampler sgld --batch 128 --steps 50000\n  \
      langevin analyze --target muller-brown --report a.json --plot a.png\n  \
      langevin plot field --target muller-brown --out field.png\n  \
      langevin animate --target ncsn-toy --sampler annealed --particles 2000 --out anneal.gif"
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
    /// Draw samples from a target: the Langevin family (ULA, MALA, annealed, BAOAB) or a diffusion sampler (pc, ode, ddim, edm, dpmpp-2m, ...).
    Sample(Box<sample::SampleArgs>),
    /// Join the shards of a `sample --shard K/N` run into the whole run's samples and report.
    Merge(merge::MergeArgs),
    /// Train on a built-in 2-D data set, generate with plain and annealed Langevin, compare, plot.
    Quickstart(quickstart::QuickstartArgs),
    /// Learn a score model from data: NCSN over a noise ladder, continuous-time DSM, EDM or flow matching.
    Train(Box<train::TrainArgs>),
    /// Generate samples with a trained model (annealed or plain Langevin, or any diffusion sampler).
    Generate(Box<generate::GenerateArgs>),
    /// Sample a Bayesian regression posterior from a CSV file (SGLD, pSGLD, MALA, ULA).
    Posterior(Box<posterior::PosteriorArgs>),
    /// Compare samples with a target (exact answers) or with reference samples.
    Eval(eval::EvalArgs),
    /// Quality against cost: every sampler at matched numbers of score evaluations.
    CompareSamplers(Box<compare::CompareArgs>),
    /// Log-likelihood of data through the probability-flow ODE (a target or a trained model).
    Likelihood(Box<likelihood::LikelihoodArgs>),
    /// List the built-in targets and their parameters.
    Targets(targets::TargetsArgs),
    /// The score as a flow: stagnation points, divergence, stiffness, noise against drift.
    Analyze(Box<analyze::AnalyzeArgs>),
    /// Pictures: densities, score fields, trajectories, training curves, image grids.
    Plot(Box<plot_cmd::PlotArgs>),
    /// A GIF of particles moving under Langevin dynamics or a diffusion sampler's reverse process.
    Animate(Box<animate::AnimateArgs>),
    /// Measure sampler speed on fixed workloads and print JSON.
    Bench(bench::BenchArgs),
}

/// Thread settings for candle, fixed before any thread exists: candle's matrix products use
/// `RAYON_NUM_THREADS` (and without it read /proc/cpuinfo on every call); its element-wise pool
/// is switched off (`CANDLE_NUM_THREADS=1`) because the network's element-wise work runs in our
/// own fused kernels on rayon, and a second pool spinning beside gemm's slowed training by 15%.
fn configure_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: called first thing in main, before this process has started any other thread.
    unsafe {
        if threads.is_some() || std::env::var_os("RAYON_NUM_THREADS").is_none() {
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads.filter(|n| !(1..=1024).contains(n)) {
        errln!("error: --threads {n}: use between 1 and 1024 threads (this machine has {})", num_cpus());
        return ExitCode::from(2);
    }
    configure_threads(cli.threads);
    if let Some(n) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global()
    {
        errln!("error: cannot start {n} threads: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        #[cfg(feature = "mpi")]
        Command::Sample(a) => distributed::run(&a, cli.quiet),
        #[cfg(not(feature = "mpi"))]
        Command::Sample(a) => sample::run(&a, cli.quiet),
        Command::Merge(a) => merge::run(&a, cli.quiet),
        Command::Eval(a) => eval::run(&a, cli.quiet),
        Command::Likelihood(a) => likelihood::run(&a, cli.quiet),
        Command::CompareSamplers(a) => compare::run(&a, cli.quiet),
        Command::Quickstart(a) => quickstart::run(&a, cli.quiet),
        Command::Train(a) => train::run(&a, cli.quiet),
        Command::Generate(a) => generate::run(&a, cli.quiet),
        Command::Posterior(a) => posterior::run(&a, cli.quiet),
        Command::Targets(a) => targets::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Analyze(a) => analyze::run(&a, cli.quiet),
        Command::Plot(a) => plot_cmd::run(&a, cli.quiet),
        Command::Animate(a) => animate::run(&a, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report_error(&e),
    }
}

/// Print a command's error as the user sees it and return the exit status for it.
fn report_error(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<out::StdoutFailed>().is_some_and(|f| f.is_broken_pipe()) {
        return ExitCode::from(141);
    }
    #[cfg(feature = "mpi")]
    if e.downcast_ref::<distributed::ReportedElsewhere>().is_some() {
        return ExitCode::FAILURE;
    }
    if e.downcast_ref::<train::Interrupted>().is_some() {
        errln!("{e}");
        return ExitCode::from(130);
    }
    errln!("error: {}", flags::translate(&format!("{e:#}")));
    ExitCode::FAILURE
}
