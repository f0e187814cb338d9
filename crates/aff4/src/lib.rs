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

pub mod codec;
pub mod container;
mod crypto;
pub mod error;
pub mod evidence;
pub mod hash;
pub mod image_stream;
pub mod imager;
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

/// Name and version written into `version.txt` and metadata.
pub const TOOL: &str = concat!("pmem ", env!("CARGO_PKG_VERSION"));
