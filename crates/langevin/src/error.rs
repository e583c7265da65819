//! Errors of the core library. Every message names the problem and, where there is one, the fix.

use std::path::PathBuf;

/// The error type of the `langevin` library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter, configuration value or data set is invalid. The message says which and how
    /// to fix it.
    #[error("{0}")]
    Invalid(String),

    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong, and the fix where one is known.
        message: String,
    },

    /// A sampler produced NaN or ±∞.
    #[error(
        "the sampler produced a non-finite value (NaN or ±inf) at step {step}, particle {particle}{detail}; \
         the step size is probably too large for this target: try {suggestion}"
    )]
    NonFinite {
        /// The step (counted from 1, warm-up included) at which the value appeared.
        step: usize,
        /// The index of the first particle (row) affected.
        particle: usize,
        /// Extra context, e.g. the noise level of annealed Langevin.
        detail: String,
        /// A concrete suggestion, e.g. `--step-size 0.001`.
        suggestion: String,
    },

    /// A score model (for example a trained network) failed to evaluate.
    #[error("score evaluation failed: {0}")]
    Model(String),
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Invalid`] with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::Error::Invalid(format!($($arg)*)) };
}

impl Error {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }
}
