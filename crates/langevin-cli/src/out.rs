//! Printing that never panics. `println!` panics when standard output fails (a closed pipe:
//! `langevin targets | head -0`; a full disk: `> /dev/full`); here a failure becomes an error
//! that ends the program cleanly: quietly with status 141 for a closed pipe, as Unix tools do
//! (128 + SIGPIPE), with a message and status 1 otherwise. Messages on standard error are best
//! effort: if standard error itself is gone there is nobody to tell.

use std::fmt;
use std::io::Write;

/// Standard output could not be written.
#[derive(Debug)]
pub struct StdoutFailed(pub std::io::Error);

impl fmt::Display for StdoutFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutFailed {}

impl StdoutFailed {
    /// A closed pipe, which ends the program quietly.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Write to standard output and flush.
pub fn stdout(args: fmt::Arguments) -> Result<(), StdoutFailed> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args).and_then(|()| o.flush()).map_err(StdoutFailed)
}

/// Write to standard error, ignoring failure.
pub fn stderr(args: fmt::Arguments) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args);
}

/// `println!` that returns `Result<(), StdoutFailed>` instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::out::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::out::stderr(format_args!("{}\n", format_args!($($t)*))) };
}
