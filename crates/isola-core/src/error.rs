//! Typed errors for everything the core can report.
//!
//! A tenant's bad code, a tenant breaking a limit and a broken store are all
//! ordinary outcomes here, never panics. JavaScript exceptions come back as
//! data ([`JsError`]) so callers can map them (the HTTP layer turns them into a
//! 500 with a request id, the CLI prints the stack).

use std::fmt;
use std::path::PathBuf;

use crate::limits::LimitKind;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A JavaScript exception, as structured data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JsError {
    /// `error.name` for `Error` objects (`TypeError`, ...), `Uncaught` for thrown non-errors.
    pub name: String,
    /// `error.message`, or a rendering of the thrown value.
    pub message: String,
    /// The JS stack (`error.stack`), with tenant file names; empty for non-errors.
    pub stack: String,
    /// Where it was thrown: tenant file name, 1-based line and column.
    pub location: Option<Location>,
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.stack.is_empty() {
            write!(f, "{}", self.stack)?;
        } else {
            write!(f, "{}: {}", self.name, self.message)?;
        }
        if let Some(loc) = &self.location {
            if !self.stack.contains(&loc.file) {
                write!(f, "\n    at {loc}")?;
            }
        }
        Ok(())
    }
}

/// A position in tenant source: file name, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The file name inside the tenant's bundle.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A limit a tenant broke, with what was measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LimitError {
    /// The tenant's name.
    pub tenant: String,
    /// Which limit.
    pub kind: LimitKind,
    /// The configured value, in the limit's unit (ms or bytes or count).
    pub limit: u64,
    /// What was measured when it was stopped (same unit), when known.
    pub used: Option<u64>,
    /// The kill report: where the code was and the heap at that moment.
    pub report: Option<Box<crate::accounting::KillReport>>,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant \"{}\" exceeded its {} limit of {}",
            self.tenant,
            self.kind.describe(),
            self.kind.format_value(self.limit)
        )?;
        if let Some(used) = self.used {
            write!(f, " (used {})", self.kind.format_value(used))?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tenant source does not parse. Displays as `file:line:col: message`.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// V8's message, e.g. `SyntaxError: Unexpected token '}'`.
        message: String,
    },
    /// Tenant code threw and nothing caught it.
    #[error("uncaught exception: {0}")]
    Js(JsError),
    /// A tenant broke one of its limits; the invocation was stopped.
    #[error("{0}")]
    Limit(LimitError),
    /// An `import` names a module that is not in the tenant's bundle.
    #[error("{referrer}: cannot resolve import \"{specifier}\": {reason}")]
    Resolve {
        /// The importing file.
        referrer: String,
        /// What it imported.
        specifier: String,
        /// Why it failed.
        reason: String,
    },
    /// The tenant used a feature isola refuses at run time (for example a
    /// resizable `ArrayBuffer` created around the bootstrap's guard); the
    /// invocation was stopped and its isolate is discarded.
    #[error("tenant \"{tenant}\" used {feature}, which isola does not allow; the invocation was stopped")]
    Forbidden {
        /// Tenant name.
        tenant: String,
        /// What it used.
        feature: String,
    },
    /// The tenant's code bundle is malformed (bad entry, empty, bad file name).
    #[error("invalid tenant code: {0}")]
    InvalidCode(String),
    /// The handler returned a promise that nothing can settle any more (no timers, no I/O).
    #[error("the handler's promise never settled: nothing (no timer, no pending work) is left that could settle it")]
    NeverSettled,
    /// The code cache / tenant store failed.
    #[error("store {path}: {message}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What failed and how to fix it.
        message: String,
    },
    /// Building or loading the base snapshot failed.
    #[error("base snapshot: {0}")]
    Snapshot(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bug in isola, reported instead of panicking.
    #[error("internal error (a bug in isola, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// A short machine-readable name for the kind of error (used in metrics and HTTP bodies).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "syntax",
            Error::Js(_) => "exception",
            Error::Forbidden { .. } => "forbidden",
            Error::Limit(l) => l.kind.name(),
            Error::Resolve { .. } => "resolve",
            Error::InvalidCode(_) => "invalid_code",
            Error::NeverSettled => "never_settled",
            Error::Store { .. } => "store",
            Error::Snapshot(_) => "snapshot",
            Error::Io { .. } => "io",
            Error::Internal(_) => "internal",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
