//! The training loop as a library call (argmin's executor with observers): [`fit`] runs
//! [`Trainer::train_step`] up to a step count and shows every step to a list of
//! [`Observer`]s: [`MetricsLog`] (the `metrics.jsonl` log, typed records shared with its
//! reader), [`CheckpointEvery`] (atomic checkpoints, and one at the end or on a stop),
//! [`StopFlag`] (Ctrl-C or any other flag). Resuming is [`crate::checkpoint::RunDir::resume`].
//!
//! ```no_run
//! use langevin_learn::checkpoint::RunDir;
//! use langevin_learn::fit::{fit, CheckpointEvery, MetricsLog};
//! let run = RunDir::new("runs/moons");
//! let mut trainer = run.resume(&candle_core::Device::Cpu, Some(30_000))?;   // continue to 30,000 steps
//! let mut log = MetricsLog::open(&run, 100, 1000)?;
//! let mut ckpt = CheckpointEvery::new(run.clone(), 5000);
//! let summary = fit(&mut trainer, 30_000, &mut [&mut log, &mut ckpt])?;
//! println!("held-out loss {:?}", summary.heldout_loss);
//! # Ok::<(), langevin::Error>(())
//! ```

use crate::checkpoint::RunDir;
use crate::train::{StepStats, Trainer};
use langevin::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What an observer wants after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop after this step (observers still see [`Observer::finish`]).
    Stop,
}

/// Sees every training step.
pub trait Observer {
    /// Called after each step; `until` is the step count the fit runs to.
    fn observe(&mut self, t: &Trainer, s: &StepStats, until: usize) -> Result<Flow>;
    /// Called once at the end (finished or stopped).
    fn finish(&mut self, _t: &Trainer, _stopped: bool) -> Result<()> {
        Ok(())
    }
    /// The last held-out loss this observer computed, if it computes one.
    fn heldout(&self) -> Option<f64> {
        None
    }
}

/// How a fit ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FitSummary {
    /// The step it started from.
    pub first: usize,
    /// The step it reached.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The last held-out loss a [`MetricsLog`] computed, if any.
    pub heldout_loss: Option<f64>,
    /// Whether an observer stopped it early.
    pub stopped: bool,
}

/// Run `t` to step `until` (nothing to do when it is there already), showing every step to
/// `observers` in order.
pub fn fit(t: &mut Trainer, until: usize, observers: &mut [&mut dyn Observer]) -> Result<FitSummary> {
    let start = Instant::now();
    let first = t.step;
    let mut stopped = false;
    while t.step < until {
        let st = t.train_step()?;
        let mut flow = Flow::Continue;
        for o in observers.iter_mut() {
            if o.observe(t, &st, until)? == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        if flow == Flow::Stop && t.step < until {
            stopped = true;
            break;
        }
    }
    for o in observers.iter_mut() {
        o.finish(t, stopped)?;
    }
    let heldout_loss = observers.iter().find_map(|o| o.heldout());
    Ok(FitSummary { first, steps: t.step, seconds: start.elapsed().as_secs_f64(), heldout_loss, stopped })
}

/// One line of `metrics.jsonl`: a window of training steps, or a held-out evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetricsRecord {
    /// Mean training loss over the steps since the last record.
    Train {
        /// Step at the end of the window.
        step: usize,
        /// Mean loss (σ²-weighted DSM).
        loss: f64,
        /// Mean loss per noise level (None where no example drew the level).
        level_loss: Vec<Option<f64>>,
        /// Learning rate at the last step.
        lr: f64,
        /// Gradient norm at the last step (before clipping).
        grad_norm: f64,
        /// Steps per second over the window.
        steps_per_second: f64,
        /// Seconds since the fit started.
        seconds: f64,
    },
    /// Held-out loss.
    Heldout {
        /// Step.
        step: usize,
        /// Held-out loss (fixed noise, so comparable across steps).
        heldout_loss: f64,
        /// Per level.
        heldout_level_loss: Vec<f64>,
    },
}

impl MetricsRecord {
    /// The step this record is about.
    pub fn step(&self) -> usize {
        match self {
            MetricsRecord::Train { step, .. } | MetricsRecord::Heldout { step, .. } => *step,
        }
    }

    /// Cut the log at `path` back to the records of steps up to `step` (the checkpoint a resumed
    /// run continues from), dropping a broken last line. Lines past the checkpoint would be
    /// written again by the resumed run; a broken line (a full disk, `kill -9`) would make every
    /// later reader fail. Changes nothing when there is nothing to cut.
    pub fn cut_log(path: &std::path::Path, step: usize) -> Result<()> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::file(path, format!("cannot read the training log: {e}"))),
        };
        let mut keep = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break;
            }
            match serde_json::from_str::<MetricsRecord>(line) {
                Ok(r) if r.step() <= step => keep.push_str(line),
                Ok(_) => {}
                Err(_) if line.trim().is_empty() => {}
                // A damaged line in the middle: stop there; what follows is unreliable too.
                Err(_) => break,
            }
        }
        if keep.len() == text.len() {
            return Ok(());
        }
        langevin::io::write_atomic(path, |w| w.write_all(keep.as_bytes()))
    }

    /// Read a `metrics.jsonl` log; a malformed line is an error naming it. A last line without
    /// its newline is one being written right now (training is running) and is left out.
    pub fn read_log(path: &std::path::Path) -> Result<Vec<MetricsRecord>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::file(path, format!("cannot read the training log ({e}); is this a run directory of a training run?"))
        })?;
        let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
        complete
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| Error::file(path, format!("line {} is not a metrics record: {e}", i + 1)))
            })
            .collect()
    }
}

/// Appends [`MetricsRecord`]s to the run's `metrics.jsonl`: the mean training loss every
/// `log_every` steps, the held-out loss every `heldout_every` steps, and both at the last step.
pub struct MetricsLog {
    file: std::fs::File,
    log_every: usize,
    heldout_every: usize,
    window: (f64, usize),
    levels: Vec<(f64, usize)>,
    window_start: Instant,
    start: Instant,
    /// The last held-out loss.
    pub heldout: Option<f64>,
    /// The last training record written.
    pub last: Option<MetricsRecord>,
}

impl MetricsLog {
    /// Append to `run`'s `metrics.jsonl`.
    pub fn open(run: &RunDir, log_every: usize, heldout_every: usize) -> Result<Self> {
        for (f, v) in [("log_every", log_every), ("heldout_every", heldout_every)] {
            if v == 0 {
                return Err(Error::invalid(f, format!("`{f}` must be at least 1")));
            }
        }
        let p = run.file("metrics.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| Error::file(&p, format!("cannot open the training log: {e}")))?;
        Ok(MetricsLog {
            file,
            log_every,
            heldout_every,
            window: (0.0, 0),
            levels: Vec::new(),
            window_start: Instant::now(),
            start: Instant::now(),
            heldout: None,
            last: None,
        })
    }

    fn write(&mut self, r: &MetricsRecord) -> Result<()> {
        let line = serde_json::to_string(r).map_err(|e| Error::msg(e.to_string()))?;
        // One write per line: a reader never sees half a line from a buffer flushed in pieces.
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes).map_err(|e| Error::msg(format!("writing metrics.jsonl: {e}")))
    }
}

impl Observer for MetricsLog {
    fn observe(&mut self, t: &Trainer, st: &StepStats, until: usize) -> Result<Flow> {
        self.window.0 += st.loss;
        self.window.1 += 1;
        self.levels.resize(st.level_loss.len(), (0.0, 0));
        for (w, l) in self.levels.iter_mut().zip(&st.level_loss) {
            w.0 += l.0;
            w.1 += l.1;
        }
        let last = st.step == until;
        if st.step.is_multiple_of(self.log_every) || last {
            let r = MetricsRecord::Train {
                step: st.step,
                loss: self.window.0 / self.window.1 as f64,
                level_loss: self.levels.iter().map(|&(s, c)| (c > 0).then(|| s / c as f64)).collect(),
                lr: st.lr,
                grad_norm: st.grad_norm,
                steps_per_second: self.window.1 as f64 / self.window_start.elapsed().as_secs_f64(),
                seconds: self.start.elapsed().as_secs_f64(),
            };
            self.write(&r)?;
            self.last = Some(r);
            self.window = (0.0, 0);
            self.levels.iter_mut().for_each(|w| *w = (0.0, 0));
            self.window_start = Instant::now();
        }
        if st.step.is_multiple_of(self.heldout_every) || last {
            let (h, per_level) = t.heldout_loss()?;
            self.heldout = Some(h);
            self.write(&MetricsRecord::Heldout { step: st.step, heldout_loss: h, heldout_level_loss: per_level })?;
        }
        Ok(Flow::Continue)
    }
    fn heldout(&self) -> Option<f64> {
        self.heldout
    }
}

/// Writes a checkpoint every `every` steps, at the last step, and when the fit is stopped.
pub struct CheckpointEvery {
    run: RunDir,
    every: usize,
}

impl CheckpointEvery {
    /// Checkpoints into `run` every `every` steps (at least 1).
    pub fn new(run: RunDir, every: usize) -> Self {
        CheckpointEvery { run, every: every.max(1) }
    }
}

impl Observer for CheckpointEvery {
    fn observe(&mut self, t: &Trainer, st: &StepStats, until: usize) -> Result<Flow> {
        if st.step.is_multiple_of(self.every) || st.step == until {
            self.run.save_checkpoint(t)?;
        }
        Ok(Flow::Continue)
    }
    fn finish(&mut self, t: &Trainer, stopped: bool) -> Result<()> {
        if stopped { self.run.save_checkpoint(t) } else { Ok(()) }
    }
}

/// Stops the fit when the flag is set (the binary sets it on Ctrl-C).
pub struct StopFlag(pub Arc<AtomicBool>);

impl Observer for StopFlag {
    fn observe(&mut self, _t: &Trainer, _st: &StepStats, _until: usize) -> Result<Flow> {
        Ok(if self.0.load(Ordering::SeqCst) { Flow::Stop } else { Flow::Continue })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_lines_are_named() {
        let recs = vec![
            MetricsRecord::Train {
                step: 100,
                loss: 0.5,
                level_loss: vec![Some(0.4), None],
                lr: 1e-3,
                grad_norm: 2.0,
                steps_per_second: 700.0,
                seconds: 0.2,
            },
            MetricsRecord::Heldout { step: 100, heldout_loss: 0.6, heldout_level_loss: vec![0.5, 0.7] },
        ];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        let text: Vec<String> = recs.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        std::fs::write(&p, text.join("\n") + "\n").unwrap();
        assert_eq!(MetricsRecord::read_log(&p).unwrap(), recs);
        std::fs::write(&p, format!("{}\n{{\"step\": 3}}\n", text[0])).unwrap();
        let e = MetricsRecord::read_log(&p).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
