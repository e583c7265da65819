//! A training run on disk:
//!
//! ```text
//! runs/moons/
//!   config.json              format version, data, normalization, ladder, network, training
//!   checkpoint.safetensors   weights, EMA weights, Adam moments, Fourier frequencies; step in
//!                            the metadata. One file, written atomically, so a crash or kill
//!                            never leaves a half-written checkpoint.
//!   train.npy, heldout.npy   the split, in the data's own units (heldout.npy is the reference
//!                            for `langevin eval`)
//!   metrics.jsonl            one JSON object per logged step
//! ```

use crate::data::{self, Normalization};
use crate::ladder::{Ladder, LadderOptions};
use crate::net::{NetConfig, ScoreNet};
use crate::train::{Adam, TrainConfig, Trainer};
use candle_core::{Device, Tensor};
use langevin::{Error, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Version of the run format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const CONFIG: &str = "config.json";
const CHECKPOINT: &str = "checkpoint.safetensors";
const LOCK: &str = ".lock";
const TRAIN_LABELS: &str = "train-labels.npy";
const HELDOUT_LABELS: &str = "heldout-labels.npy";
const TRAIN_NOISE: &str = "train-noise.npy";
const HELDOUT_NOISE: &str = "heldout-noise.npy";

/// Where the data came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// A built-in name or a file path.
    pub source: String,
    /// Training rows.
    pub train_rows: usize,
    /// Held-out rows.
    pub heldout_rows: usize,
    /// Rows dropped for NaN or inf.
    pub dropped_rows: usize,
    /// The images' shape, when the rows are images (for grids of samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::images::ImageShape>,
}

/// Everything needed to rebuild a run's model and continue it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Data dimension.
    pub dim: usize,
    /// Data source and split sizes.
    pub data: DataInfo,
    /// Standardization of the data (undone at generation).
    pub normalization: Normalization,
    /// Noise ladder of the training objective.
    pub ladder: Ladder,
    /// Architecture.
    pub net: NetConfig,
    /// Training hyper-parameters.
    pub train: TrainConfig,
    /// The class labels of a class-conditional run (none: unconditional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelInfo>,
}

/// The classes of a class-conditional run (`train-labels.npy` and `heldout-labels.npy` hold
/// each row's class index).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelInfo {
    /// Where the labels came from.
    pub source: String,
    /// Class names (the label values as given), index = class.
    pub classes: Vec<String>,
    /// Training rows per class.
    pub counts: Vec<usize>,
}

impl LabelInfo {
    /// The class index of a class name, or an error listing the known ones.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.classes.iter().position(|c| c == name).ok_or_else(|| {
            Error::invalid(
                "class",
                format!(
                    "class '{name}' was not seen in training; the model knows the classes {}",
                    self.classes.join(", ")
                ),
            )
        })
    }
}

/// A new run from raw data (rows in the data's own units): the seeded split, the
/// standardization fitted on the training rows, the ladder from the standardized data, a freshly
/// initialized network and its trainer, and the config that describes them.
pub struct NewRun {
    /// Ready to train.
    pub trainer: Trainer,
    /// What goes to config.json.
    pub config: RunConfig,
    /// Training rows, data units.
    pub train_raw: ndarray::Array2<f32>,
    /// Held-out rows, data units.
    pub heldout_raw: ndarray::Array2<f32>,
    /// Notes on how the ladder was chosen.
    pub ladder_notes: Vec<String>,
    /// Class indices of the training and held-out rows (class-conditional runs).
    pub labels: Option<(Vec<u32>, Vec<u32>)>,
    /// The rows of the input that went to training and to the held-out set.
    pub split: (Vec<usize>, Vec<usize>),
}

/// Set up a new run (see [`NewRun`]).
#[allow(clippy::too_many_arguments)]
pub fn new_run(
    x: &ndarray::Array2<f32>,
    source: &str,
    dropped: usize,
    heldout_fraction: f64,
    ladder: &LadderOptions,
    net: NetConfig,
    train: TrainConfig,
    device: &Device,
) -> Result<NewRun> {
    new_labeled_run(x, None, false, source, dropped, heldout_fraction, ladder, net, train, device)
}

/// Set up a new run, class-conditional when `labels` are given (one per row of `x`): the
/// network gets `classes` label inputs and the labels are split with the rows.
/// `keep_constant`: accept columns without spread (the blank border pixels of images; in a
/// table they are usually a mistake and refused).
#[allow(clippy::too_many_arguments)]
pub fn new_labeled_run(
    x: &ndarray::Array2<f32>,
    labels: Option<&data::Labels>,
    keep_constant: bool,
    source: &str,
    dropped: usize,
    heldout_fraction: f64,
    ladder: &LadderOptions,
    mut net: NetConfig,
    mut train: TrainConfig,
    device: &Device,
) -> Result<NewRun> {
    if let Some(l) = labels {
        if l.per_row.len() != x.nrows() {
            return Err(Error::msg(format!(
                "{} labels for {} data rows: give one label per row",
                l.per_row.len(),
                x.nrows()
            )));
        }
        if l.classes.len() < 2 {
            return Err(Error::msg(format!(
                "the labels ({}) hold a single class, '{}': a class-conditional model needs at least two",
                l.source,
                l.classes.first().map_or("", |c| c.as_str())
            )));
        }
        net.classes = l.classes.len();
    } else {
        net.classes = 0;
    }
    if !(heldout_fraction > 0.0 && heldout_fraction < 1.0) {
        return Err(Error::invalid(
            "heldout_fraction",
            format!("`heldout_fraction` {heldout_fraction} must be between 0 and 1"),
        ));
    }
    for (field, v) in [("width", net.width), ("depth", net.depth), ("fourier", net.fourier)] {
        if v == 0 {
            return Err(Error::invalid(field, format!("`{field}` must be at least 1 (the network's size)")));
        }
    }
    if train.steps == 0 {
        return Err(Error::invalid("steps", "`steps` must be at least 1"));
    }
    if train.warmup >= train.steps {
        return Err(Error::invalid(
            "warmup",
            format!(
                "`warmup` = {} learning-rate warm-up steps leaves nothing of the {} `steps` to train at the full rate; \
                 use a shorter `warmup` or more `steps`",
                train.warmup, train.steps
            ),
        ));
    }
    // A column without spread has no score to learn (the density is a wall along it), and if
    // every column is one the noise levels from the data's spread are all zero. Images have
    // blank border pixels: those are kept when asked (the network learns to put them back).
    // A U-Net sees images in [−1, 1] (DDPM's convention) by one affine map for all pixels: a
    // per-pixel standardization would make the same shape look different at different
    // positions, which undoes what convolutions share. Blank pixels are then no problem.
    let unet = net.unet.is_some();
    let constant: Vec<usize> = (0..x.ncols())
        .filter(|&c| {
            let col = x.column(c);
            col.first().is_some_and(|&first| col.iter().all(|&v| v == first))
        })
        .collect();
    if let Some(&c) = constant.first()
        && (!(keep_constant || unet) || constant.len() == x.ncols())
    {
        let first = x[[0, c]];
        return Err(Error::msg(format!(
            "the data have zero variance in column {} (every row is {first}): there is nothing to learn along it; \
             drop that column{}",
            c + 1,
            if constant.len() < x.ncols() {
                " (or, for images with blank pixels, keep such columns: `--keep-constant`, in Python keep_constant=True)"
            } else {
                ""
            }
        )));
    }
    let (tr_rows, ho_rows) =
        data::split_indices(x.nrows(), heldout_fraction, &mut langevin::rng::LaneRng::new(train.seed, 0x5911));
    let (train_raw, heldout_raw) = (data::pick_rows(x, &tr_rows), data::pick_rows(x, &ho_rows));
    let split_labels = labels.map(|l| {
        let pick = |rows: &[usize]| rows.iter().map(|&r| l.per_row[r]).collect::<Vec<u32>>();
        (pick(&tr_rows), pick(&ho_rows))
    });
    let label_info = labels.zip(split_labels.as_ref()).map(|(l, (tr, _))| {
        let mut counts = vec![0usize; l.classes.len()];
        tr.iter().for_each(|&c| counts[c as usize] += 1);
        LabelInfo { source: l.source.clone(), classes: l.classes.clone(), counts }
    });
    if train.batch > train_raw.nrows() {
        return Err(Error::msg(format!(
            "`batch` {} is larger than the {} training rows ({} rows, {:.0}% held out); use a smaller `batch` or more data",
            train.batch,
            train_raw.nrows(),
            x.nrows(),
            100.0 * heldout_fraction
        )));
    }
    let norm = if unet { Normalization::range(&train_raw) } else { Normalization::fit(&train_raw) };
    let (tr, ho) = (norm.apply(&train_raw), norm.apply(&heldout_raw));
    if unet && let crate::objective::Objective::Edm { sigma_data, .. } = &mut train.objective {
        // EDM's σ_data is the data's standard deviation: 1 for standardized tables, measured
        // here for images in [−1, 1] (EDM uses 0.5 for CIFAR-10).
        let n = tr.len() as f64;
        let mean = tr.iter().map(|&v| v as f64).sum::<f64>() / n;
        *sigma_data = (tr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-3);
    }
    let (ladder, ladder_notes) = crate::ladder::from_data(&tr, ladder, train.seed)?;
    let m = |e: candle_core::Error| Error::Model(e.to_string());
    let network = ScoreNet::new(x.ncols(), net.clone(), train.seed, device).map_err(m)?;
    let config = RunConfig {
        format_version: FORMAT_VERSION,
        dim: x.ncols(),
        data: DataInfo {
            source: source.into(),
            train_rows: tr.nrows(),
            heldout_rows: ho.nrows(),
            dropped_rows: dropped,
            image: None,
        },
        normalization: norm,
        ladder: ladder.clone(),
        net,
        train: train.clone(),
        labels: label_info,
    };
    let mut trainer = Trainer::new(network, ladder, train, tr, ho)?;
    if let Some((a, b)) = &split_labels {
        trainer.set_labels(a.clone(), b.clone())?;
    }
    Ok(NewRun {
        trainer,
        config,
        train_raw,
        heldout_raw,
        ladder_notes,
        labels: split_labels,
        split: (tr_rows, ho_rows),
    })
}

fn file_err(path: &Path, m: impl Into<String>) -> Error {
    Error::file(path, m)
}

/// The lock of a run directory held by this process (see [`RunDir::lock`]); released on drop.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Paths of a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
}

impl RunDir {
    /// A run directory (not checked).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }
    /// Path of a file in the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Make this process the run's only writer until the returned guard is dropped: an
    /// advisory lock on `.lock` in the directory (created if needed), which the system releases
    /// when the process ends however it ends. A second writer (two `train` commands on one
    /// directory, or a resume while the first still runs) is refused, naming the holder.
    pub fn lock(&self) -> Result<RunLock> {
        std::fs::create_dir_all(&self.path)
            .map_err(|e| file_err(&self.path, format!("cannot create the run directory: {e}")))?;
        let p = self.file(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .map_err(|e| file_err(&p, format!("cannot open the run's lock file: {e}")))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message a second writer gets.
                let _ = file.set_len(0);
                let _ = write!(file, "pid {}", std::process::id());
                Ok(RunLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&p).unwrap_or_default();
                let holder = if holder.trim().is_empty() { "another process".to_string() } else { holder };
                Err(file_err(
                    &self.path,
                    format!(
                        "is in use: {} is training it now; wait for it to finish (or stop it), then continue with `resume`",
                        holder.trim()
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(file_err(&p, format!("cannot lock the run directory: {e}"))),
        }
    }

    /// Check, lock and [`RunDir::start`] a new run: the lock is held until the returned guard
    /// is dropped. When creation fails (a full disk), nothing is left where nothing was.
    pub fn begin(&self, new: &NewRun) -> Result<RunLock> {
        let existed = self.path.exists();
        self.check_new()?;
        let lock = self.lock()?;
        if let Err(e) = self.start(new) {
            if !existed {
                drop(lock);
                let _ = std::fs::remove_dir_all(&self.path);
            }
            return Err(e);
        }
        Ok(lock)
    }

    /// Start a new run in this directory: the data split, the first checkpoint (step 0), and
    /// the config last, so that a directory with a config always has a checkpoint to resume
    /// from (a run stopped or killed during creation has no config and is simply started
    /// again). Call with the lock held; refuses a directory that already holds a run.
    pub fn start(&self, new: &NewRun) -> Result<()> {
        self.create()?;
        langevin::io::write_matrix(&self.file("train.npy"), new.train_raw.view(), &[])?;
        langevin::io::write_matrix(&self.file("heldout.npy"), new.heldout_raw.view(), &[])?;
        if let Some((tr, ho)) = &new.trainer.noise {
            langevin::io::write_matrix(&self.file(TRAIN_NOISE), tr.view(), &[])?;
            langevin::io::write_matrix(&self.file(HELDOUT_NOISE), ho.view(), &[])?;
        }
        if let Some((tr, ho)) = &new.labels {
            for (name, l) in [(TRAIN_LABELS, tr), (HELDOUT_LABELS, ho)] {
                let col = ndarray::Array2::from_shape_fn((l.len(), 1), |(i, _)| l[i] as f32);
                langevin::io::write_matrix(&self.file(name), col.view(), &[])?;
            }
        }
        let _ = std::fs::remove_file(self.file("metrics.jsonl"));
        self.save_checkpoint(&new.trainer)?;
        self.save_config(&new.config)
    }

    /// Refuse a directory that already holds a run (checked again, under the lock, by
    /// [`RunDir::create`]).
    pub fn check_new(&self) -> Result<()> {
        if self.file(CONFIG).exists() {
            return Err(file_err(
                &self.path,
                "already holds a training run; continue it with `resume`, or choose another `out`",
            ));
        }
        Ok(())
    }

    /// Create the directory for a new run; refuses to overwrite an existing run.
    pub fn create(&self) -> Result<()> {
        self.check_new()?;
        std::fs::create_dir_all(&self.path)
            .map_err(|e| file_err(&self.path, format!("cannot create the run directory: {e}")))
    }

    /// The trainer of this run, restored from its config, data split and checkpoint, ready to
    /// continue. `steps`: a new total step count (the only setting that may change; the config
    /// is saved with it). Resuming reproduces an uninterrupted run bit for bit: step t draws from
    /// its own stream, and weights, EMA and Adam's moments are in the checkpoint.
    pub fn resume(&self, dev: &candle_core::Device, steps: Option<usize>) -> Result<Trainer> {
        let mut config = self.load_config()?;
        let saved_steps = config.train.steps;
        if let Some(s) = steps {
            config.train.steps = s;
        }
        let rows = |name: &str| -> Result<ndarray::Array2<f32>> {
            let p = self.file(name);
            langevin::io::read_matrix(&p).map_err(|e| file_err(&p, format!("reading the run's data split: {e}")))
        };
        let norm = &config.normalization;
        let train = norm.apply(&rows("train.npy")?);
        let heldout = norm.apply(&rows("heldout.npy")?);
        let net = ScoreNet::new(config.dim, config.net.clone(), config.train.seed, dev)
            .map_err(|e| Error::Model(e.to_string()))?;
        let (step, weights, ema, adam, _) = self.load_checkpoint(&net)?;
        let (n_train, n_heldout) = (train.nrows(), heldout.nrows());
        let mut t = Trainer::new(net, config.ladder.clone(), config.train.clone(), train, heldout)?;
        if let Some(info) = &config.labels {
            let (tr, ho) =
                (self.read_labels(TRAIN_LABELS, info, n_train)?, self.read_labels(HELDOUT_LABELS, info, n_heldout)?);
            t.set_labels(tr, ho)?;
        }
        if config.train.coupling == crate::train::Coupling::Pairs {
            t.set_noise(rows(TRAIN_NOISE)?, rows(HELDOUT_NOISE)?)?;
        }
        t.restore(weights, ema, adam, step)?;
        // A resume with nothing to do changes no byte; one with more steps records them.
        if step < config.train.steps && config.train.steps != saved_steps {
            self.save_config(&config)?;
        }
        if step < config.train.steps {
            crate::fit::MetricsRecord::cut_log(&self.file("metrics.jsonl"), step)?;
        }
        Ok(t)
    }

    /// The class indices of the run's training and held-out rows (None for an unconditional run).
    pub fn split_labels(&self, config: &RunConfig) -> Result<Option<(Vec<u32>, Vec<u32>)>> {
        let Some(info) = &config.labels else { return Ok(None) };
        let (tr, ho) = (config.data.train_rows, config.data.heldout_rows);
        Ok(Some((self.read_labels(TRAIN_LABELS, info, tr)?, self.read_labels(HELDOUT_LABELS, info, ho)?)))
    }

    /// The class indices in the run's labels file `name`, checked against the classes and rows.
    fn read_labels(&self, name: &str, info: &LabelInfo, rows: usize) -> Result<Vec<u32>> {
        let p = self.file(name);
        let m = langevin::io::read_matrix(&p).map_err(|e| file_err(&p, format!("reading the run's labels: {e}")))?;
        if m.dim() != (rows, 1) {
            return Err(file_err(&p, format!("holds {:?} values, expected {rows} labels (one column)", m.dim())));
        }
        m.column(0)
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < info.classes.len() {
                    Ok(v as u32)
                } else {
                    Err(file_err(&p, format!("holds {v}, not a class index 0..{}", info.classes.len())))
                }
            })
            .collect()
    }

    /// The step of the run's checkpoint, read from its header alone (None when there is no
    /// readable checkpoint).
    pub fn checkpoint_step(&self) -> Option<usize> {
        use std::io::Read;
        let mut f = std::fs::File::open(self.file(CHECKPOINT)).ok()?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).ok()?;
        let n = u64::from_le_bytes(len).min(1 << 20) as usize;
        let mut header = vec![0u8; n];
        f.read_exact(&mut header).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
        let info: serde_json::Value = serde_json::from_str(v["__metadata__"]["langevin"].as_str()?).ok()?;
        info["step"].as_u64().map(|s| s as usize)
    }

    /// Whether resuming with `steps` (or the saved count) would have nothing to do.
    pub fn is_complete(&self, steps: Option<usize>) -> bool {
        match (self.load_config(), self.checkpoint_step()) {
            (Ok(c), Some(step)) => step >= steps.unwrap_or(c.train.steps),
            _ => false,
        }
    }

    /// Write the config (atomically).
    pub fn save_config(&self, config: &RunConfig) -> Result<()> {
        let v = serde_json::to_value(config).map_err(|e| Error::msg(e.to_string()))?;
        langevin::io::write_json(&self.file(CONFIG), &v)
    }

    /// Read and check the config.
    pub fn load_config(&self) -> Result<RunConfig> {
        if !self.path.is_dir() {
            return Err(file_err(
                &self.path,
                "no such run directory; train one first (the `langevin train` command, or `checkpoint::new_run`)",
            ));
        }
        let p = self.file(CONFIG);
        let text = std::fs::read_to_string(&p)
            .map_err(|_| file_err(&p, "missing: this directory is not a training run (or training never started)"))?;
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<u32>,
        }
        let version: Version = serde_json::from_str(&text).map_err(|e| file_err(&p, format!("damaged ({e})")))?;
        match version.format_version {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(file_err(
                    &p,
                    format!(
                        "written in run format version {v}, but this build reads version {FORMAT_VERSION}; retrain with this build"
                    ),
                ));
            }
            None => return Err(file_err(&p, "has no format_version: not a langevin training run")),
        }
        let c: RunConfig = serde_json::from_str(&text).map_err(|e| file_err(&p, format!("damaged ({e})")))?;
        let classes = c.labels.as_ref().map_or(0, |l| l.classes.len());
        if c.net.classes != classes {
            return Err(file_err(
                &p,
                format!(
                    "is inconsistent: its network has {} classes but its `labels` name {classes}; was it edited? \
                     Restore the file",
                    c.net.classes
                ),
            ));
        }
        Ok(c)
    }

    /// Write the trainer's weights, EMA, optimizer state and step (atomically).
    pub fn save_checkpoint(&self, t: &Trainer) -> Result<()> {
        let names: Vec<String> = t.net.params().iter().map(|(n, _)| n.clone()).collect();
        let freqs: Vec<f32> =
            t.net.freqs().flatten_all().and_then(|x| x.to_vec1()).map_err(|e| Error::Model(e.to_string()))?;
        let mut owned: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (prefix, parts) in [("weights", &t.weights), ("ema", &t.ema), ("adam_m", &t.adam.m), ("adam_v", &t.adam.v)]
        {
            for (name, p) in names.iter().zip(parts.iter()) {
                owned.push((format!("{prefix}/{name}"), bytes(p), vec![p.len()]));
            }
        }
        owned.push(("fourier/freqs".into(), bytes(&freqs), vec![freqs.len()]));
        let views: Vec<(String, TensorView)> = owned
            .iter()
            .map(|(n, b, s)| {
                Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::Model(e.to_string()))?))
            })
            .collect::<Result<_>>()?;
        // One metadata entry holding a JSON object with a fixed key order: safetensors writes its
        // metadata map in hash order, which would make the file's bytes differ from run to run.
        let info = format!(
            r#"{{"format":"langevin-ncsn","format_version":{FORMAT_VERSION},"step":{},"adam_t":{}}}"#,
            t.step, t.adam.t
        );
        let meta = HashMap::from([("langevin".to_string(), info)]);
        let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Model(e.to_string()))?;
        langevin::io::write_atomic(&self.file(CHECKPOINT), |w| w.write_all(&data))
    }

    /// Read the checkpoint: (step, weights, EMA, Adam state, Fourier frequencies), checked
    /// against the network's parameter names and sizes.
    #[allow(clippy::type_complexity)]
    pub fn load_checkpoint(&self, net: &ScoreNet) -> Result<(usize, Vec<Vec<f32>>, Vec<Vec<f32>>, Adam, Vec<f32>)> {
        let p = self.file(CHECKPOINT);
        let buf = std::fs::read(&p).map_err(|_| {
            file_err(
                &p,
                "missing: the run has no checkpoint yet (it was deleted, or the run was created by a version that \
                 wrote the config first); remove the run directory and train it again",
            )
        })?;
        let damaged = |e: String| file_err(&p, format!("truncated or damaged ({e}); retrain, or restore a copy"));
        let st = SafeTensors::deserialize(&buf).map_err(|e| damaged(e.to_string()))?;
        let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| damaged(e.to_string()))?;
        let info: serde_json::Value = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("langevin"))
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| file_err(&p, "not a langevin checkpoint"))?;
        if info["format"] != "langevin-ncsn" {
            return Err(file_err(&p, "not a langevin checkpoint"));
        }
        if info["format_version"].as_u64() != Some(FORMAT_VERSION as u64) {
            return Err(file_err(
                &p,
                format!(
                    "checkpoint format version {}, but this build reads version {FORMAT_VERSION}",
                    info["format_version"]
                ),
            ));
        }
        let parse = |k: &str| info[k].as_u64().ok_or_else(|| damaged(format!("no '{k}'")));
        let step = parse("step")? as usize;
        let adam_t = parse("adam_t")?;
        let read = |name: &str, len: usize| -> Result<Vec<f32>> {
            let v = st.tensor(name).map_err(|_| damaged(format!("no tensor '{name}'")))?;
            if v.dtype() == Dtype::F32 && v.data().len() % 4 == 0 && v.data().len() != 4 * len {
                // A well-formed tensor of another size: the config, not the checkpoint, changed.
                let c = net.config();
                return Err(file_err(
                    &self.file(CONFIG),
                    format!(
                        "does not match the checkpoint: its network (width {}, depth {}, fourier {}) has {len} values \
                         in tensor '{name}', the checkpoint {}; was config.json edited? Restore its `net` section",
                        c.width,
                        c.depth,
                        c.fourier,
                        v.data().len() / 4
                    ),
                ));
            }
            if v.dtype() != Dtype::F32 || v.data().len() != 4 * len {
                return Err(damaged(format!("'{name}' has {} bytes, expected {}", v.data().len(), 4 * len)));
            }
            Ok(v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        let params: Vec<(String, usize)> =
            net.params().iter().map(|(n, v)| (n.clone(), v.as_tensor().elem_count())).collect();
        let group = |prefix: &str| {
            params.iter().map(|(n, len)| read(&format!("{prefix}/{n}"), *len)).collect::<Result<Vec<_>>>()
        };
        let weights = group("weights")?;
        let ema = group("ema")?;
        let adam = Adam { m: group("adam_m")?, v: group("adam_v")?, t: adam_t };
        let freqs = read("fourier/freqs", net.config().fourier)?;
        Ok((step, weights, ema, adam, freqs))
    }
}

/// Rows per forward pass of a U-Net at generation.
pub const UNET_ROWS: usize = 256;

/// A trained model ready for generation: the network with its EMA weights, and the run config.
pub struct TrainedModel {
    /// The run's config.
    pub config: RunConfig,
    /// The network, holding the EMA weights (on the CPU, generation runs on the copy of them
    /// taken by [`TrainedModel::new`]: build a new model to change the weights).
    pub net: ScoreNet,
    /// Training steps behind these weights.
    pub step: usize,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// The EMA weights as numbers, for the hand-written CPU network (`None` on other devices).
    cpu: Option<CpuWeights>,
}

/// A CPU model's layer widths, parameters and Fourier frequencies ([`crate::mlp::Layers`]).
struct CpuWeights {
    sizes: Vec<usize>,
    params: Vec<Vec<f32>>,
    freqs: Vec<f32>,
}

impl TrainedModel {
    /// The model of a trainer in memory: a second network holding its EMA weights.
    pub fn from_trainer(t: &Trainer, config: RunConfig, dir: &Path) -> Result<TrainedModel> {
        let m = |e: candle_core::Error| Error::Model(e.to_string());
        let dev = t.net.device();
        let mut net = ScoreNet::new(config.dim, config.net.clone(), config.train.seed, dev).map_err(m)?;
        net.set_freqs(t.net.freqs().clone()).map_err(m)?;
        for ((_, var), w) in net.params().iter().zip(&t.ema) {
            let shape = var.as_tensor().shape().clone();
            var.set(&Tensor::from_slice(w, shape, dev).map_err(m)?).map_err(m)?;
        }
        TrainedModel::new(config, net, t.step, dir)
    }

    /// A model from its config and a network holding the weights to use (EMA).
    pub fn new(config: RunConfig, net: ScoreNet, step: usize, dir: &Path) -> Result<TrainedModel> {
        let m = |e: candle_core::Error| Error::Model(e.to_string());
        let cpu = if net.device().is_cpu() && net.is_mlp() {
            Some(CpuWeights {
                sizes: net.sizes(),
                params: net.param_values().map_err(m)?,
                freqs: net.freqs_vec().map_err(m)?,
            })
        } else {
            None
        };
        Ok(TrainedModel { config, net, step, dir: dir.to_path_buf(), cpu })
    }

    /// The network's outputs F(x, c_noise, label) for the rows of `x` (n × d, row-major), one
    /// noise input per row: by the hand-written network on the CPU, by candle elsewhere.
    pub fn forward_rows(&self, x: &[f32], noise: &[f32], labels: Option<&[Option<usize>]>) -> Result<Vec<f32>> {
        let d = self.config.dim;
        if x.len() != noise.len() * d {
            return Err(Error::msg(format!("{} values for {} rows of {d}", x.len(), noise.len())));
        }
        if let Some(w) = &self.cpu {
            let layers = crate::mlp::Layers {
                dim: d,
                classes: self.net.config().classes,
                sizes: &w.sizes,
                params: &w.params,
                freqs: &w.freqs,
            };
            let mut out = Vec::new();
            layers.infer(x, noise, labels, &mut out);
            return Ok(out);
        }
        if !self.net.is_mlp() && noise.len() > UNET_ROWS {
            // A U-Net's activations are hundreds of values per pixel: batches of UNET_ROWS.
            let mut out = Vec::with_capacity(x.len());
            for start in (0..noise.len()).step_by(UNET_ROWS) {
                let end = (start + UNET_ROWS).min(noise.len());
                let l = labels.map(|l| &l[start..end]);
                out.extend(self.forward_rows(&x[start * d..end * d], &noise[start..end], l)?);
            }
            return Ok(out);
        }
        let m = |e: candle_core::Error| Error::Model(e.to_string());
        let dev = self.net.device();
        let n = noise.len();
        let xt = Tensor::from_slice(x, (n, d), dev).map_err(m)?;
        let s = Tensor::from_slice(noise, (n, 1), dev).map_err(m)?;
        let c = if self.net.config().classes > 0 {
            let all: Vec<Option<usize>> = labels.map(|l| l.to_vec()).unwrap_or_else(|| vec![None; n]);
            Some(self.net.one_hot(&all).map_err(m)?)
        } else {
            None
        };
        self.net.forward_cond(&xt, &s, c.as_ref()).map_err(m)?.flatten_all().and_then(|t| t.to_vec1()).map_err(m)
    }

    /// Refuse to use a class-conditional model's unconditional score (for `what`) when it was
    /// never trained: a model trained with every label (`cond_drop` 0) has only an untrained
    /// "no label" input.
    pub fn check_unconditional(&self, what: &str) -> Result<()> {
        if self.config.labels.is_some() && self.config.train.cond_drop == 0.0 {
            return Err(Error::msg(format!(
                "{} was trained with every label (cond_drop 0), so it has no unconditional score for {what}; \
                 retrain with a label dropout (`--cond-drop 0.1`)",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Load the run in `dir` on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<TrainedModel> {
        let run = RunDir::new(dir);
        let config = run.load_config()?;
        let mut net = ScoreNet::new(config.dim, config.net.clone(), config.train.seed, device)
            .map_err(|e| Error::Model(e.to_string()))?;
        let (step, _, ema, _, freqs) = run.load_checkpoint(&net)?;
        let m = |e: candle_core::Error| Error::Model(e.to_string());
        net.set_freqs(Tensor::from_vec(freqs, (1, config.net.fourier), device).map_err(m)?).map_err(m)?;
        for ((_, var), w) in net.params().iter().zip(&ema) {
            let shape = var.as_tensor().shape().clone();
            var.set(&Tensor::from_slice(w, shape, device).map_err(m)?).map_err(m)?;
        }
        TrainedModel::new(config, net, step, dir)
    }
}
