//! A progress bar on stderr for runs longer than a second, and only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running progress display; dropped or [`Progress::finish`]ed when the work ends.
pub struct Progress {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Counter the work increments (particle-steps, training steps, ...).
    pub counter: Arc<AtomicU64>,
}

impl Progress {
    /// Watch `counter` go towards `total`. Nothing is drawn when `quiet`, when stderr is not a
    /// terminal, or before a second has passed.
    pub fn start(total: u64, unit: &'static str, quiet: bool) -> Progress {
        let counter = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let handle = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let (counter, done) = (counter.clone(), done.clone());
            std::thread::spawn(move || {
                // The bar exists from the start, hidden, so its rate and ETA see the whole run;
                // it is drawn only once a second has passed. `wide_bar` fits the terminal width.
                let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{percent:>3}}% {{wide_bar}} {{human_pos}}/{{human_len}} {unit}, {{eta}} left"
                    ))
                    .expect("valid template"),
                );
                let start = Instant::now();
                let mut shown = false;
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(counter.load(Ordering::Relaxed).min(total));
                    if !shown && start.elapsed() >= Duration::from_secs(1) {
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                        shown = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                bar.finish_and_clear();
            })
        });
        Progress { done, handle, counter }
    }

    /// Stop and clear the display.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
