//! Errors of the core library. Every message names the problem and, where there is one, the fix,
//! in the library's own terms: API fields are written in backticks (`step_size`), and
//! suggestions are typed values ([`Suggestion`]), never command-line flags. The `langevin`
//! binary translates both into its flags in one place.

use std::path::PathBuf;

/// The error type of the `langevin` library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter, configuration value or data set is invalid. The message says which and how
    /// to fix it.
    #[error("{message}")]
    Invalid {
        /// The API field at fault, when there is one (e.g. `"step_size"`, `"levels"`).
        field: Option<&'static str>,
        /// What is wrong and how to fix it; API fields appear in backticks.
        message: String,
    },

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
         the step size is probably too large for this target{}",
        suggest.map(|s| format!(": try {s}")).unwrap_or_default()
    )]
    NonFinite {
        /// The step (counted from 1, warm-up included) at which the value appeared.
        step: usize,
        /// The index of the first particle (row) affected.
        particle: usize,
        /// Extra context, e.g. the noise level of annealed Langevin.
        detail: String,
        /// A smaller value of the parameter that controls the step.
        suggest: Option<Suggestion>,
    },

    /// A score model (for example a trained network) failed to evaluate.
    #[error("score evaluation failed: {0}")]
    Model(String),
}

/// The parameter that sets a sampler's step, for typed suggestions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// τ of ULA/MALA (and SGLD's ε₀).
    StepSize,
    /// Δt of the underdamped integrators.
    Dt,
    /// ε of annealed Langevin (the step at the smallest noise level).
    Eps,
    /// The number of steps of a diffusion sampler or ODE solver.
    Steps,
    /// The relative tolerance of an adaptive ODE solver.
    Rtol,
}

impl Param {
    /// The API field name.
    pub fn field(self) -> &'static str {
        match self {
            Param::StepSize => "step_size",
            Param::Dt => "dt",
            Param::Eps => "eps",
            Param::Steps => "steps",
            Param::Rtol => "rtol",
        }
    }
}

/// "Try `param` = `value`", with a reason.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    /// Which parameter.
    pub param: Param,
    /// The suggested value.
    pub value: f64,
    /// Why this value (shown after it).
    pub why: &'static str,
}

impl std::fmt::Display for Suggestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.param {
            Param::Steps => write!(f, "`{}` = {}", self.param.field(), self.value.round())?,
            _ => write!(f, "`{}` = {:.3e}", self.param.field(), self.value)?,
        }
        if !self.why.is_empty() {
            write!(f, " ({})", self.why)?;
        }
        Ok(())
    }
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for [`Error::Invalid`] with a formatted message and no single field.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::Error::Invalid { field: None, message: format!($($arg)*) } };
}

/// Shorthand for [`Error::Invalid`] about one API field: `invalid_field!("levels", "...")`.
#[macro_export]
macro_rules! invalid_field {
    ($field:expr, $($arg:tt)*) => { $crate::Error::Invalid { field: Some($field), message: format!($($arg)*) } };
}

impl Error {
    /// A file error for `path`.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File { path: path.into(), message: message.into() }
    }
    /// An invalid value of the API field `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { field: Some(field), message: message.into() }
    }
    /// An invalid input that is not about one field.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Invalid { field: None, message: message.into() }
    }
    /// The API field an [`Error::Invalid`] is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { field, .. } => *field,
            _ => None,
        }
    }
    /// The typed suggestion of an [`Error::NonFinite`], if any.
    pub fn suggestion(&self) -> Option<Suggestion> {
        match self {
            Error::NonFinite { suggest, .. } => *suggest,
            _ => None,
        }
    }
}
