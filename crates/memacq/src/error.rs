//! Errors of memory sources and acquisition.

/// Why a source cannot be used; each kind has its own exit code in `pmem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// The device or file does not exist (e.g. kcore disabled in the kernel config).
    Missing,
    /// Not root / lacking CAP_SYS_RAWIO.
    Permission,
    /// Kernel lockdown forbids it.
    Lockdown,
    /// /dev/mem restricted by STRICT_DEVMEM (only the first MiB readable).
    StrictDevmem,
    /// The source exists but its content is not usable.
    Invalid,
}

/// A source that could not be opened, and why.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SourceError {
    /// Which source (path).
    pub source_name: String,
    /// Kind, for exit codes.
    pub kind: SourceErrorKind,
    /// Explanation for a person.
    pub message: String,
}

impl SourceError {
    /// A new error.
    pub fn new(source_name: impl Into<String>, kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError { source_name: source_name.into(), kind, message: message.into() }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No source could be opened; each attempt's reason.
    #[error("no usable physical memory source:\n  {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    NoSource(Vec<SourceError>),
    /// One source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing the volume failed.
    #[error(transparent)]
    Aff4(#[from] aff4::Error),
    /// Malformed or unreadable input (an ELF core, a LiME file, /proc/iomem, a pagefile's
    /// volume), naming the file and the offset.
    #[error(transparent)]
    Format(#[from] memformat::Error),
    /// Acquisition was interrupted by a signal; the volume was closed with what was read.
    #[error("interrupted")]
    Interrupted,
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
