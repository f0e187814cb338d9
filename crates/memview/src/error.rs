//! Errors of memory analysis: reading the volume, the formats, or the output.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the volume failed.
    #[error(transparent)]
    Aff4(#[from] aff4::Error),
    /// Malformed or unreadable data (a memory format, BTF, an output file), naming the file
    /// and the offset.
    #[error(transparent)]
    Format(#[from] memformat::Error),
    /// Something this build does not do (e.g. symbol tables for a non-x86-64 kernel).
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A corruption error (see [`memformat::Error::corrupt`]).
    pub fn corrupt(context: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        Error::Format(memformat::Error::corrupt(context, offset, what))
    }
    /// An I/O error (see [`memformat::Error::io`]).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Format(memformat::Error::io(context, source))
    }
}
