//! Memory-image formats and vocabulary shared by acquisition and analysis: physical ranges,
//! ELF cores and LiME files (both halves: layouts written, headers parsed with bounds),
//! segment tables, the read timeline, and [`meta::MemoryImageMeta`], the typed metadata of a
//! memory Image that acquisition writes and every reader parses.
#![deny(missing_docs)]

pub mod elf;
pub mod error;
pub mod lime;
pub mod meta;
pub mod ranges;
pub mod segments;
pub mod timeline;

pub use error::{Error, Result};
pub use ranges::Range;
