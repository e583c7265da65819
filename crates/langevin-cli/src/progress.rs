//! A progress bar on stderr for runs longer than a second, and only on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running progress display; dropped or [`Progress::finish`]ed when the work ends.
pub struct Progress {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Counter the work increments (particle-steps, training steps, ...).
    pub counter: Arc<AtomicU64>,
    message: Arc<Mutex<String>>,
}

impl Progress {
    /// Watch `counter` go towards `total`. Nothing is drawn when `quiet`, when stderr is not a
    /// terminal, or before a second has passed.
    pub fn start(total: u64, unit: &'static str, quiet: bool) -> Progress {
        let counter = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let message = Arc::new(Mutex::new(String::new()));
        let handle = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let (counter, done, message) = (counter.clone(), done.clone(), message.clone());
            std::thread::spawn(move || {
                // The bar exists from the start, hidden, so its rate and ETA see the whole run;
                // it is drawn only once a second has passed. `wide_bar` fits the terminal width.
                let bar = ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{percent:>3}}% {{wide_bar}} {{human_pos}}/{{human_len}} {unit}, {{eta}} left {{msg}}"
                    ))
                    .expect("valid template"),
                );
                let start = Instant::now();
                let mut shown = false;
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(counter.load(Ordering::Relaxed).min(total));
                    if let Ok(m) = message.lock() {
                        bar.set_message(m.clone());
                    }
                    if !shown && start.elapsed() >= Duration::from_secs(1) {
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                        shown = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                bar.finish_and_clear();
            })
        });
        Progress { done, handle, counter, message }
    }

    /// Text shown after the bar (e.g. the current loss).
    pub fn set_message(&self, m: String) {
        if let Ok(mut g) = self.message.lock() {
            *g = m;
        }
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
