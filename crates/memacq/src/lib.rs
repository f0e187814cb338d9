//! Physical memory acquisition for pmem: sources of physical memory behind one trait
//! ([`source::PhysicalSource`]: Linux /proc/kcore, /dev/crash, /dev/mem, and ELF-core or LiME
//! files), the /proc/iomem parser, ELF and LiME layouts, and [`acquire::acquire`], which runs a
//! source through the `aff4` imaging pipeline into a memory Image.
#![deny(missing_docs)]

pub mod acquire;
pub mod btf;
pub mod elf;
pub mod error;
pub mod export;
pub mod iomem;
pub mod isf;
pub mod lime;
pub mod mount;
pub mod outdir;
pub mod pagefile;
pub mod recheck;
pub mod source;
pub mod sparse;
pub mod timeline;

pub use error::{Error, Result, SourceError, SourceErrorKind};
