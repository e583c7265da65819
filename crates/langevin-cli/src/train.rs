//! `langevin train`: learn a noise-conditional score from data by denoising score matching.

use crate::progress::Progress;
use anyhow::{Result, anyhow, bail};
use candle_core::Device;
use clap::Args;
use langevin_learn::checkpoint::{RunConfig, RunDir, RunLock, new_labeled_run};
use langevin_learn::data;
use langevin_learn::fit::{CheckpointEvery, Flow, MetricsLog, Observer, StopFlag, fit};
use langevin_learn::ladder::LadderOptions;
use langevin_learn::net::NetConfig;
use langevin_learn::objective::Objective;
use langevin_learn::train::{Coupling, LrDecay, Recipe, StepStats, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Returned (as an error) when Ctrl-C stopped training after writing a checkpoint; the binary
/// exits with status 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

#[derive(Args, Debug, Clone, Default)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Training data: a built-in 2-D data set (moons, swiss-roll, circles, 8-gaussians,
    /// checkerboard, pinwheel, spirals, ncsn-toy), the real `digits` (8 × 8 images as 64 values)
    /// or a .csv / .npy file (one sample per row).
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Run directory for the config, checkpoints, metrics and the data split.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint (exactly where it stopped).
    #[arg(long)]
    pub resume: bool,
    /// Optimization steps (in total; with --resume, a new total; default 40000, ncsn 10000).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Minibatch size (default 1024, at most the training rows; ncsn 512).
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Peak learning rate (default 2e-3).
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Learning-rate warm-up steps (default 200, or a tenth of --steps when that is less).
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Learning rate after the warm-up: cosine (falls to 0 at the last step; the default) or constant (the ncsn default).
    #[arg(long, value_name = "D", value_parser = ["constant", "cosine"])]
    pub lr_decay: Option<String>,
    /// Decoupled weight decay (AdamW; default 0 = Adam).
    #[arg(long, value_name = "W")]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm (default 1; 0 = off).
    #[arg(long, value_name = "C")]
    pub clip: Option<f64>,
    /// Decay of the weights' exponential moving average (default 0.999).
    #[arg(long, value_name = "D")]
    pub ema: Option<f64>,
    /// The network: mlp (the default; for tables and 2-D data) or unet (for images: shapes,
    /// digits, mnist:FILE, cifar10:PATH or a folder of images; batches of 64 at lr 1e-3 by default).
    #[arg(long, value_name = "NET", value_parser = ["mlp", "unet"])]
    pub model: Option<String>,
    /// The U-Net's size: tiny (32 channels, 3 levels, for CPU demos; the default), small (64
    /// channels, 4 levels) or cifar (DDPM's CIFAR-10 network, 35.7 M parameters).
    #[arg(long, value_name = "NAME", value_parser = ["tiny", "small", "cifar"])]
    pub preset: Option<String>,
    /// A folder of images: leave out the files that cannot be read (their count is reported)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// With --model unet: mirror each training image left to right with probability ½ (for
    /// data whose mirror image is as likely, like photographs; not for digits or text).
    #[arg(long)]
    pub flip: bool,
    /// Hidden width of the MLP (default 128; 256 for data of more than 16 dimensions, except ncsn).
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    /// Hidden layers of the MLP (default 3).
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Fourier frequencies of the log σ embedding (default 16).
    #[arg(long, value_name = "N")]
    pub fourier: Option<usize>,
    /// σ₁ (default: the largest distance between training points, in standardized units).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_max: Option<f64>,
    /// σ_L (default 0.01, in standardized units).
    #[arg(long, value_name = "SIGMA")]
    pub sigma_min: Option<f64>,
    /// Number of noise levels L (default: NCSNv2's ratio rule).
    #[arg(long, value_name = "L")]
    pub levels: Option<usize>,
    /// Rows drawn from a built-in data set (default 20000).
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,
    /// Image data: the side of `shapes` (16 or 32, default 16), or the side a folder's images
    /// are resized and center-cropped to (default: the first image's smaller side).
    #[arg(long, value_name = "PIXELS")]
    pub image_size: Option<usize>,
    /// Fraction of rows held out (default 0.1).
    #[arg(long, value_name = "F")]
    pub heldout_fraction: Option<f64>,
    /// Class-conditional training: the data file's column of integer class labels (a header
    /// name or a 1-based column number); it is taken out of the data.
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// Class-conditional training: a file of integer labels (.npy or .csv, one per data row).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Class-conditional training on a built-in data set, with its component labels (digits:
    /// the digit; 8-gaussians, moons, pinwheel, checkerboard, circles, spirals, ncsn-toy: the
    /// component each point came from).
    #[arg(long)]
    pub conditional: bool,
    /// Class-conditional training: the probability of dropping an example's label, which
    /// trains the unconditional score that classifier-free guidance needs (default 0.1).
    #[arg(long, value_name = "P")]
    pub cond_drop: Option<f64>,
    /// Keep data columns without spread (the blank border pixels of images) instead of refusing
    /// them (the built-in digits keep theirs).
    #[arg(long)]
    pub keep_constant: bool,
    /// Skip rows with NaN or inf instead of stopping.
    #[arg(long)]
    pub drop_nonfinite: bool,
    /// Seed of the data draw, split, initialization and every training step.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What the network learns: edm (Karras et al. 2022, the default), ncsn (the noise ladder of
    /// earlier versions), dsm (continuous time, with --sde and --weighting) or flow-matching
    /// (straight paths). Without other flags, edm, dsm and flow-matching train 40,000 steps of
    /// 1,024 examples with a cosine learning-rate decay; ncsn 10,000 steps of 512, constant.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(langevin_learn::objective::OBJECTIVE_NAMES))]
    pub objective: Option<String>,
    /// dsm: the forward process (ve, vp, sub-vp; default ve).
    #[arg(long, value_name = "SDE", value_parser = ["ve", "vp", "sub-vp"])]
    pub sde: Option<String>,
    /// dsm: the loss weighting (sigma2, default; likelihood: λ = g², Song et al. 2021b; likelihood-is: the same with t importance-sampled, a lower-variance estimate of the same loss).
    #[arg(long, value_name = "W", value_parser = ["sigma2", "likelihood", "likelihood-is"])]
    pub weighting: Option<String>,
    /// dsm with --sde vp: what the network predicts (eps, default; v: v = s·ε − std·x₀).
    #[arg(long, value_name = "P", value_parser = ["eps", "v"])]
    pub prediction: Option<String>,
    /// flow-matching: the probability path (ot: the straight line x_t = (1−t)x₀ + t z, the only
    /// one; the Gaussian VP paths are --objective dsm).
    #[arg(long, value_name = "PATH", value_parser = ["ot"])]
    pub path: Option<String>,
    /// flow-matching: pair each batch's noise with its data by exact optimal transport
    /// (OT-CFM; the assignment solved by the lsap crate, SciPy's algorithm).
    #[arg(long)]
    pub minibatch_ot: bool,
    /// Rectified-flow reflow: train a flow-matching student on pairs (noise, sample) of this
    /// trained model's probability-flow ODE (--rows pairs, default 20000); no --data.
    #[arg(long, value_name = "RUN")]
    pub reflow: Option<PathBuf>,
    /// With --reflow: DPM-Solver++(2M) steps of the teacher's ODE per pair (default 50).
    #[arg(long, value_name = "N")]
    pub reflow_steps: Option<usize>,
    /// Device: cpu (cuda[:N] needs a build with CUDA support).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Steps between metrics lines.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub log_every: usize,
    /// Steps between held-out evaluations.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub heldout_every: usize,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub checkpoint_every: usize,
}

/// The objective of `train` without `--objective`: EDM, which with its recipe (40,000 steps of
/// 1,024 examples, cosine learning-rate decay) and `generate`'s default DPM-Solver++(2M) with
/// 100 steps matched exact samplers on the generalization study's data sets (weights within
/// 0.025, widths within 5%), where NCSN with annealed Langevin left components 10-25% too wide.
pub use langevin_learn::train::DEFAULT_OBJECTIVE;

/// The device named by `--device`.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => cuda(n),
        other => bail!("unknown --device '{other}'; use cpu or cuda[:N]"),
    }
}

/// The GPU of `--device cuda[:N]` in a build with CUDA support.
#[cfg(feature = "cuda")]
fn cuda(n: &str) -> Result<Device> {
    let ordinal = match n.strip_prefix("cuda:") {
        None => 0,
        Some(i) => i.parse::<usize>().map_err(|_| anyhow!("--device {n}: the GPU's number must be a whole number"))?,
    };
    Device::new_cuda(ordinal).map_err(|e| {
        // candle's error carries a backtrace after its first line.
        let e = e.to_string();
        anyhow!(
            "--device {n}: no usable NVIDIA GPU {ordinal} ({}); check `nvidia-smi` on this machine, or use --device cpu",
            e.lines().next().unwrap_or("").trim()
        )
    })
}

/// `--device cuda` in a build without CUDA support.
#[cfg(not(feature = "cuda"))]
fn cuda(n: &str) -> Result<Device> {
    bail!(
        "--device {n}: this build has no CUDA support; build the CUDA binary with scripts/cuda-build.sh \
         (docs/IMAGES.md), or use --device cpu"
    )
}

/// What a finished (or already complete) training run reports.
pub struct TrainSummary {
    /// Steps done.
    pub steps: usize,
    /// Seconds spent training in this invocation.
    pub seconds: f64,
    /// Last held-out loss (EMA weights).
    pub heldout_loss: f64,
}

/// A new run, or the run in `a.out` resumed, with the run's lock (see `RunDir::lock`) unless
/// nothing will be written: a resume with nothing to do reads only and changes no byte, not
/// even the lock's. A new run takes the lock only after everything is validated, so a refused
/// command leaves nothing behind.
fn prepare(a: &TrainArgs, dev: &Device) -> Result<(Trainer, Option<RunLock>)> {
    let run = RunDir::new(&a.out);
    if a.resume {
        let read_only = !a.out.is_dir() || run.is_complete(a.steps);
        let lock = if read_only { None } else { Some(run.lock()?) };
        return Ok((run.resume(dev, a.steps)?, lock));
    }
    if a.reflow.is_some() {
        return prepare_reflow(a, dev, &run);
    }
    if a.reflow_steps.is_some() {
        bail!("--reflow-steps applies with --reflow RUN");
    }
    let source =
        a.data.clone().ok_or_else(|| anyhow!("--data is required (a built-in data set or a .csv/.npy file)"))?;
    let seed = a.seed.unwrap_or(0);
    let lower = source.to_ascii_lowercase();
    let file = lower.ends_with(".csv") || lower.ends_with(".npy");
    if file && a.conditional {
        bail!("--conditional uses a built-in data set's labels; for a file give --label COLUMN or --labels FILE");
    }
    if !file && (a.label.is_some() || a.labels.is_some()) {
        bail!("--label and --labels read labels for a data file; a built-in data set has its own: use --conditional");
    }
    if a.label.is_some() && a.labels.is_some() {
        bail!("give the labels once: --label COLUMN (a column of the data file) or --labels FILE, not both");
    }
    let conditional = a.conditional || a.label.is_some() || a.labels.is_some();
    let real = !file && data::REAL.iter().any(|(n, _)| *n == source);
    if a.cond_drop.is_some() && !conditional {
        bail!("--cond-drop applies to class-conditional training (--label, --labels or --conditional)");
    }
    let images = langevin_learn::images::is_image_source(&source);
    if a.skip_bad_images && !images {
        bail!("--skip-bad-images applies to a folder of images");
    }
    if a.image_size.is_some() && !images {
        bail!("--image-size applies to image data (shapes, mnist:FILE, cifar10:PATH or a folder of images)");
    }
    let mut shape = None;
    let (x, labels, dropped) = if images {
        if a.label.is_some() || a.labels.is_some() {
            bail!("--label and --labels read labels for a table; image data bring their own: use --conditional");
        }
        if a.rows.is_some() && source != "shapes" {
            bail!("--rows applies to the generated data sets; {source} is used whole");
        }
        let set =
            langevin_learn::images::load(&source, a.image_size, a.rows.unwrap_or(20_000), seed, a.skip_bad_images)?;
        if let Some(first) = set.skipped.first() {
            errln!(
                "warning: skipped {} image file(s) that could not be read (the first: {})",
                set.skipped.len(),
                first.display()
            );
        }
        if conditional && set.labels.is_none() {
            bail!(
                "--conditional: {source} has no labels (a folder has them when its images are in one subfolder per class)"
            );
        }
        shape = Some(set.shape);
        (set.x, if conditional { set.labels } else { None }, 0)
    } else if file {
        if a.rows.is_some() {
            bail!("--rows applies to built-in data sets; a file is used whole");
        }
        let (x, values, dropped) = data::read_labeled(Path::new(&source), a.label.as_deref(), a.drop_nonfinite)?;
        let labels = match (values, &a.labels) {
            (Some(v), _) => Some(data::Labels::from_values(
                &v,
                format!("column '{}' of {source}", a.label.as_deref().unwrap_or("")),
            )?),
            (None, Some(p)) => {
                if dropped > 0 {
                    bail!(
                        "{dropped} data rows were dropped for NaN or inf, so the rows of --labels {} no longer line up; \
                         clean the data, or put the labels in a column of the data file and use --label",
                        p.display()
                    );
                }
                let v = data::read_labels(p)?;
                if v.len() != x.nrows() {
                    bail!(
                        "--labels {} holds {} labels for {} data rows: give one label per row",
                        p.display(),
                        v.len(),
                        x.nrows()
                    );
                }
                Some(data::Labels::from_values(&v, p.display().to_string())?)
            }
            (None, None) => None,
        };
        (x, labels, dropped)
    } else {
        if real && a.rows.is_some() {
            bail!("--rows applies to the generated data sets; {source} is real data, used whole");
        }
        let rows = a.rows.unwrap_or(20_000);
        if rows < 10 {
            bail!("--rows {rows}: at least 10 rows are needed");
        }
        if conditional && !real && data::builtin_classes(&source).is_none() {
            bail!("--conditional: the data set {source} has no component labels; train it without --conditional");
        }
        let (x, labels, _) = data::builtin(&source, rows, seed, conditional)?;
        (x, labels, 0)
    };
    let held = data::heldout_count(x.nrows(), a.heldout_fraction.unwrap_or(0.1));
    if source == "digits" {
        // The built-in digits are 8 × 8 grey images (values 0..16).
        shape = Some(langevin_learn::images::ImageShape { channels: 1, height: 8, width: 8 });
    }
    let unet = langevin_learn::unet::requested(a.model.as_deref(), a.preset.as_deref(), shape)?;
    let (net, train) = configs(a, conditional, x.nrows() - held, x.ncols(), unet)?;
    let ladder = LadderOptions { sigma_max: a.sigma_max, sigma_min: a.sigma_min, levels: a.levels };
    let mut new = new_labeled_run(
        &x,
        labels.as_ref(),
        // Images keep their blank pixels (MNIST's border).
        a.keep_constant || real || images,
        &source,
        dropped,
        a.heldout_fraction.unwrap_or(0.1),
        &ladder,
        net,
        train,
        dev,
    )?;
    new.config.data.image = shape;
    start(&run, new)
}

/// The network and training configs the flags ask for, with the defaults of the objective's
/// recipe (see [`DEFAULT_OBJECTIVE`]); `rows`: the training rows (a default batch is no
/// larger).
fn configs(
    a: &TrainArgs,
    conditional: bool,
    rows: usize,
    dim: usize,
    unet: Option<langevin_learn::unet::UnetConfig>,
) -> Result<(NetConfig, TrainConfig)> {
    if (a.minibatch_ot || a.path.is_some()) && objective(a)? != Objective::FlowMatching {
        bail!("--minibatch-ot and --path apply to --objective flow-matching");
    }
    let recipe = Recipe {
        objective: Some(objective(a)?),
        steps: a.steps,
        batch: a.batch,
        lr: a.lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        clip: a.clip,
        ema: a.ema,
        seed: a.seed,
        decay: a.lr_decay.as_deref().map(LrDecay::from_name).transpose()?,
        cond_drop: a.cond_drop,
        minibatch_ot: a.minibatch_ot,
        width: a.width,
        depth: a.depth,
        fourier: a.fourier,
        unet,
        flip: a.flip,
    };
    Ok(recipe.configs(conditional, rows, dim)?)
}

/// A reflow run: the pairs of the teacher in --reflow, a flow-matching student.
fn prepare_reflow(a: &TrainArgs, dev: &Device, run: &RunDir) -> Result<(Trainer, Option<RunLock>)> {
    let teacher_dir = a.reflow.as_ref().expect("--reflow");
    for (flag, set) in [
        ("--data", a.data.is_some()),
        ("--label", a.label.is_some()),
        ("--labels", a.labels.is_some()),
        ("--conditional", a.conditional),
        ("--cond-drop", a.cond_drop.is_some()),
        ("--minibatch-ot", a.minibatch_ot),
        ("--drop-nonfinite", a.drop_nonfinite),
        ("--keep-constant", a.keep_constant),
        ("--model", a.model.is_some()),
        ("--flip", a.flip),
        ("--preset", a.preset.is_some()),
    ] {
        if set {
            bail!("{flag} does not apply with --reflow: the student's data are the teacher's ODE pairs");
        }
    }
    if let Some(o) = a.objective.as_deref()
        && o != "flow-matching"
    {
        bail!("--reflow trains a flow-matching student; drop --objective {o} (or give flow-matching)");
    }
    let teacher = Arc::new(langevin_learn::checkpoint::TrainedModel::load(teacher_dir, dev)?);
    let mut b = a.clone();
    b.objective = Some("flow-matching".into());
    let rows = a.rows.unwrap_or(20_000);
    let (net, train) = configs(
        &b,
        false,
        rows - data::heldout_count(rows, a.heldout_fraction.unwrap_or(0.1)),
        teacher.config.dim,
        None,
    )?;
    let ladder = LadderOptions { sigma_max: a.sigma_max, sigma_min: a.sigma_min, levels: a.levels };
    let new = langevin_learn::reflow::new_reflow_run(
        &teacher,
        rows,
        a.reflow_steps.unwrap_or(50),
        a.heldout_fraction.unwrap_or(0.1),
        &ladder,
        net,
        train,
        dev,
    )?;
    start(run, new)
}

/// Write a new run into --out under its lock (nothing left behind when that fails).
fn start(run: &RunDir, new: langevin_learn::checkpoint::NewRun) -> Result<(Trainer, Option<RunLock>)> {
    let lock = run.begin(&new)?;
    Ok((new.trainer, Some(lock)))
}

/// The objective the flags ask for (NCSN when none).
fn objective(a: &TrainArgs) -> Result<Objective> {
    Ok(Objective::with_prediction(
        a.objective.as_deref().unwrap_or(DEFAULT_OBJECTIVE),
        a.sde.as_deref(),
        a.weighting.as_deref(),
        a.prediction.as_deref(),
    )?)
}

/// On `--resume`, settings restated with their saved values are accepted; a changed one is
/// refused, naming the saved value (a resumed run continues with its settings; only --steps
/// may grow).
fn check_restated(a: &TrainArgs, c: &RunConfig) -> Result<()> {
    let same = |given: f64, saved: f64| (given - saved).abs() <= 1e-9 * saved.abs().max(1e-300);
    let sig = &c.ladder.sigmas;
    let total_rows = c.data.train_rows + c.data.heldout_rows + c.data.dropped_rows;
    if a.reflow.is_some() || a.reflow_steps.is_some() {
        bail!("--reflow sets up a new run; a resumed run keeps its teacher's pairs: drop --reflow");
    }
    if let Some(d) = a.lr_decay.as_deref()
        && d != c.train.decay.name()
    {
        bail!(
            "--lr-decay {d} differs from the run's saved {}: a resumed run continues with its saved settings; drop --lr-decay",
            c.train.decay.name()
        );
    }
    if a.minibatch_ot && c.train.coupling != Coupling::MinibatchOt {
        bail!(
            "--minibatch-ot differs from the run's saved coupling, {}: a resumed run keeps its coupling; drop --minibatch-ot",
            c.train.coupling.name()
        );
    }
    if a.label.is_some() || a.labels.is_some() || a.conditional {
        bail!("--label, --labels and --conditional set up a new run; a resumed run keeps its labels: drop them");
    }
    if let Some(p) = a.cond_drop
        && (p - c.train.cond_drop).abs() > 1e-12
    {
        bail!(
            "--cond-drop {p} differs from the run's saved {}: a resumed run continues with its saved settings; drop --cond-drop",
            c.train.cond_drop
        );
    }
    if a.flip && !c.train.flip {
        bail!("--flip: the run was trained without flips, and a resumed run keeps its settings; drop --flip");
    }
    let saved_model = if c.net.unet.is_some() { "unet" } else { "mlp" };
    if let Some(m) = a.model.as_deref()
        && m != saved_model
    {
        bail!("--model {m} differs from the run's saved {saved_model}: a resumed run keeps its network; drop --model");
    }
    if let Some(p) = a.preset.as_deref()
        && c.net.unet.as_ref().map(|u| u.preset.as_str()) != Some(p)
    {
        bail!(
            "--preset {p} differs from the run's network ({}): a resumed run keeps its network; drop --preset",
            c.net.unet.as_ref().map_or("an MLP".to_string(), |u| format!("U-Net preset {}", u.preset))
        );
    }
    let checks: [(&str, Option<String>, String, bool); 16] = [
        ("--data", a.data.clone(), c.data.source.clone(), a.data.as_deref().is_none_or(|d| d == c.data.source)),
        ("--width", a.width.map(|v| v.to_string()), c.net.width.to_string(), a.width.is_none_or(|v| v == c.net.width)),
        ("--depth", a.depth.map(|v| v.to_string()), c.net.depth.to_string(), a.depth.is_none_or(|v| v == c.net.depth)),
        (
            "--fourier",
            a.fourier.map(|v| v.to_string()),
            c.net.fourier.to_string(),
            a.fourier.is_none_or(|v| v == c.net.fourier),
        ),
        (
            "--sigma-max",
            a.sigma_max.map(|v| v.to_string()),
            sig[0].to_string(),
            a.sigma_max.is_none_or(|v| same(v, sig[0])),
        ),
        (
            "--sigma-min",
            a.sigma_min.map(|v| v.to_string()),
            sig[sig.len() - 1].to_string(),
            a.sigma_min.is_none_or(|v| same(v, sig[sig.len() - 1])),
        ),
        ("--levels", a.levels.map(|v| v.to_string()), sig.len().to_string(), a.levels.is_none_or(|v| v == sig.len())),
        ("--rows", a.rows.map(|v| v.to_string()), total_rows.to_string(), a.rows.is_none_or(|v| v == total_rows)),
        (
            "--heldout-fraction",
            a.heldout_fraction.map(|v| v.to_string()),
            format!("{} of {} rows", c.data.heldout_rows, c.data.train_rows + c.data.heldout_rows),
            a.heldout_fraction.is_none_or(|f| {
                let n = (c.data.train_rows + c.data.heldout_rows) as f64;
                (f * n - c.data.heldout_rows as f64).abs() < 1.0
            }),
        ),
        ("--seed", a.seed.map(|v| v.to_string()), c.train.seed.to_string(), a.seed.is_none_or(|v| v == c.train.seed)),
        (
            "--batch",
            a.batch.map(|v| v.to_string()),
            c.train.batch.to_string(),
            a.batch.is_none_or(|v| v == c.train.batch),
        ),
        ("--lr", a.lr.map(|v| v.to_string()), c.train.lr.to_string(), a.lr.is_none_or(|v| same(v, c.train.lr))),
        (
            "--warmup",
            a.warmup.map(|v| v.to_string()),
            c.train.warmup.to_string(),
            a.warmup.is_none_or(|v| v == c.train.warmup),
        ),
        (
            "--weight-decay",
            a.weight_decay.map(|v| v.to_string()),
            c.train.weight_decay.to_string(),
            a.weight_decay.is_none_or(|v| same(v, c.train.weight_decay)),
        ),
        (
            "--clip",
            a.clip.map(|v| v.to_string()),
            c.train.clip.to_string(),
            a.clip.is_none_or(|v| same(v, c.train.clip)),
        ),
        ("--ema", a.ema.map(|v| v.to_string()), c.train.ema.to_string(), a.ema.is_none_or(|v| same(v, c.train.ema))),
    ];
    if a.objective.is_some() || a.sde.is_some() || a.weighting.is_some() || a.prediction.is_some() {
        let asked = objective(a)?;
        if asked != c.train.objective {
            bail!(
                "--objective {} differs from the run's saved objective, {}: a run keeps the objective it was trained with; \
                 drop --objective/--sde/--weighting/--prediction, or train a new run with another --out",
                asked.name(),
                c.train.objective.name()
            );
        }
    }
    if let Some((flag, given, saved, _)) = checks.iter().find(|(_, _, _, ok)| !ok) {
        bail!(
            "{flag} {} differs from the run's saved {saved}: a resumed run continues with its saved settings \
             (only --steps may grow); drop {flag}, or train a new run with another --out",
            given.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// Train (or resume) as asked; prints progress unless `quiet`.
pub fn train(a: &TrainArgs, quiet: bool) -> Result<TrainSummary> {
    for (name, v) in
        [("--log-every", a.log_every), ("--heldout-every", a.heldout_every), ("--checkpoint-every", a.checkpoint_every)]
    {
        if v == 0 {
            bail!("{name} must be at least 1");
        }
    }
    let dev = device(&a.device)?;
    let run = RunDir::new(&a.out);
    // One writer per run directory, held until training ends (a resume of a directory that
    // does not exist fails in `prepare` with its own message, without creating it).
    // Restated settings are checked before anything is touched.
    if a.resume && a.out.is_dir() {
        check_restated(a, &run.load_config()?)?;
    }
    let (mut t, _lock) = prepare(a, &dev)?;
    let total = t.config.steps;
    if t.step >= total {
        let (h, _) = t.heldout_loss()?;
        if !quiet {
            errln!(
                "{} is already trained for {} steps; nothing to do (raise --steps to continue)",
                a.out.display(),
                t.step
            );
        }
        return Ok(TrainSummary { steps: t.step, seconds: 0.0, heldout_loss: h });
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let s = stop.clone();
        // Ctrl-C, SIGTERM (a batch scheduler's stop) and SIGHUP (a closed terminal) all save a
        // checkpoint and end cleanly. Only one handler per process; a second `train` in the
        // same process keeps the first.
        let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
    }
    let progress = Progress::start((total - t.step) as u64, "steps", quiet);
    let mut log = MetricsLog::open(&run, a.log_every, a.heldout_every)?;
    let mut ckpt = CheckpointEvery::new(run.clone(), a.checkpoint_every);
    let mut bar = ProgressObserver(&progress);
    let mut stopper = StopFlag(stop);
    let s = fit(&mut t, total, &mut [&mut log, &mut ckpt, &mut bar, &mut stopper])?;
    progress.finish();
    if s.stopped {
        return Err(Interrupted(format!(
            "interrupted at step {}: checkpoint written to {}; continue with `langevin train --out {} --resume`",
            t.step,
            run.file("checkpoint.safetensors").display(),
            a.out.display()
        ))
        .into());
    }
    let heldout = s.heldout_loss.unwrap_or(f64::NAN);
    if !quiet {
        errln!(
            "trained {} → {} steps in {:.1} s ({:.0} steps/s); held-out loss {heldout:.4}; run in {}",
            s.first,
            s.steps,
            s.seconds,
            (s.steps - s.first) as f64 / s.seconds,
            a.out.display()
        );
    }
    Ok(TrainSummary { steps: t.step, seconds: s.seconds, heldout_loss: heldout })
}

/// Shows the steps on the progress bar, with the last logged loss.
struct ProgressObserver<'a>(&'a Progress);

impl Observer for ProgressObserver<'_> {
    fn observe(&mut self, _t: &Trainer, st: &StepStats, _until: usize) -> langevin::Result<Flow> {
        self.0.counter.fetch_add(1, Ordering::Relaxed);
        if st.step.is_multiple_of(100) {
            self.0.set_message(format!("loss {:.4}", st.loss));
        }
        Ok(Flow::Continue)
    }
}

pub fn run(a: &TrainArgs, quiet: bool) -> Result<()> {
    train(a, quiet).map(|_| ())
}
