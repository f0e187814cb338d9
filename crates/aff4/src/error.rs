//! Errors of the `aff4` crate: each names the file, member or stream and the offset involved.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing an AFF4 volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error, with what was being done.
    #[error("{context}: {error}")]
    Io {
        /// What was being accessed (file, member).
        context: String,
        /// The underlying error (shown in the message, so not chained again).
        error: io::Error,
    },
    /// A structure inside a file is malformed.
    #[error("{context}: at offset {offset}: {what}")]
    Corrupt {
        /// File and member (or stream URN) that is malformed.
        context: String,
        /// Byte offset of the problem inside that file, member or stream.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The metadata (information.turtle) is malformed.
    #[error("{context}: information.turtle: {what}")]
    Turtle {
        /// The volume file.
        context: String,
        /// Parser message, with line and column.
        what: String,
    },
    /// A stream, member or object that the metadata names is not in the opened volumes.
    #[error("not found: {0}")]
    NotFound(String),
    /// A feature this build does not support, or an invalid request.
    #[error("{0}")]
    Unsupported(String),
    /// A state this crate should never reach (a worker thread that ended early): a bug to report.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A password or key is needed, or the one given is wrong.
    #[error("{0}")]
    Key(String),
}

impl Error {
    /// A corruption error for `context` at `offset`.
    pub fn corrupt(context: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { context: context.into(), offset, what: what.into() }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), error: source }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io { error, context } => io::Error::new(error.kind(), format!("{context}: {error}")),
            Error::NotFound(_) => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}
