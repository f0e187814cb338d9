//! Physical memory acquisition for pmem: sources of physical memory behind one trait
//! ([`source::PhysicalSource`]: Linux /proc/kcore, /dev/crash, /dev/mem, our driver,
//! WinPmem, MacPmem, and ELF-core or LiME files), the /proc/iomem parser, and
//! [`acquire::acquire`], which runs a source through the capture engine (`aff4::capture`)
//! into a memory Image with its metadata ([`memformat::meta`]), the analysis prerequisites,
//! pagefiles ([`pagefile`]) and a recheck of what changed while it read ([`recheck`]); and
//! [`live::LiveMemory`], a source read on demand (`pmem mount --live`).
#![deny(missing_docs)]

pub mod acquire;
pub mod error;
pub mod iomem;
pub mod live;
pub mod mapped;
pub mod pagefile;
pub mod recheck;
pub mod source;

pub use error::{Error, Result, SourceError, SourceErrorKind};
