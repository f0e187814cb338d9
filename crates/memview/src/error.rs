//! Errors of memory analysis: reading the volume, the formats, or the output.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the volume failed.
    #[error(transparent)]
    Aff4(#[from] aff4::Error),
    /// A memory format is malformed.
    #[error(transparent)]
    Format(#[from] memformat::Error),
    /// Malformed data (BTF, a memory image's metadata).
    #[error("{context}: at offset {offset}: {what}")]
    Corrupt {
        /// What.
        context: String,
        /// Offset.
        offset: u64,
        /// Problem.
        what: String,
    },
    /// I/O with context.
    #[error("{context}: {error}")]
    Io {
        /// What.
        context: String,
        /// The OS error (shown in the message).
        #[source]
        error: std::io::Error,
    },
    /// Something this build does not do (e.g. symbol tables for a non-x86-64 kernel).
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corruption error.
    pub fn corrupt(context: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { context: context.into(), offset, what: what.into() }
    }
    /// An I/O error.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), error: source }
    }
}
