//! A progress bar on stderr for runs longer than a second, and only on a terminal.

use indicatif::{ProgressBar, ProgressStyle};
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
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(1) {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let bar = ProgressBar::new(total.max(1));
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{{bar:40}} {{percent:>3}}% {{human_pos}}/{{human_len}} {unit} [{{elapsed_precise}} < {{eta_precise}}, {{per_sec}}]"
                    ))
                    .expect("valid template"),
                );
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(counter.load(Ordering::Relaxed).min(total));
                    std::thread::sleep(Duration::from_millis(100));
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
