//! Errors of the memory-image formats: each names the file and the offset involved.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed structure (ELF header, LiME header, segment table, metadata value).
    #[error("{context}: at offset {offset}: {what}")]
    Corrupt {
        /// File or object.
        context: String,
        /// Offset of the problem.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Reading the file failed.
    #[error("{context}: {error}")]
    Io {
        /// What was being read.
        context: String,
        /// The OS error (shown in the message).
        #[source]
        error: std::io::Error,
    },
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
