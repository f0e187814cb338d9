//! Read and write AFF4 (Advanced Forensic Format 4) volumes.
//!
//! The main types:
//! - [`Container`]: one or more volumes opened together, with their merged metadata
//!   ([`rdf::Graph`]); [`Container::open_stream`] gives any stream by URN as a [`Stream`].
//! - [`Stream`]: random access (`read_at`) shared between threads; [`StreamReader`] adds
//!   `Read + Seek`.
//! - [`verify::verify`]: recomputes every hash a volume declares.
//!
//! ```no_run
//! let c = aff4::Container::open(&["image.aff4"])?;
//! let urn = c.default_stream()?;
//! let s = c.open_stream(&urn)?;
//! let mut first = vec![0u8; 512];
//! s.read_exact_at(0, &mut first)?;
//! # Ok::<(), aff4::Error>(())
//! ```
#![deny(missing_docs)]

pub mod capture;
pub mod codec;
pub mod container;
pub mod crypto;
pub mod error;
pub mod evidence;
pub mod hash;
pub mod image_stream;
pub mod imager;
pub mod in_place;
pub mod iobuf;
pub mod logical;
pub mod map;
pub mod parallel;
pub mod rdf;
pub mod readahead;
pub mod recover;
pub mod segments;
pub mod stream;
pub mod symbolic;
pub mod urn;
pub mod verify;
pub mod vocab;
pub mod volume;
pub mod zip;

pub use codec::Codec;
pub use container::{Container, ImageInfo, OpenOptions, StreamInfo, StreamKind};
pub use error::{Error, Result};
pub use hash::HashAlgo;
pub use stream::{Stream, StreamReader};

static TOOL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the program writing volumes (`version.txt`, `aff4:tool`), once, before the first
/// volume is written; without it volumes name this library.
pub fn set_tool(name: impl Into<String>) {
    let _ = TOOL.set(name.into());
}

/// The name written into `version.txt` and metadata (see [`set_tool`]).
pub fn tool() -> &'static str {
    TOOL.get().map(String::as_str).unwrap_or(concat!("aff4-rs ", env!("CARGO_PKG_VERSION")))
}
