//! Maps (AFF4.md §6): a sparse virtual address space assembled from ranges of other streams.

mod read;
pub mod write;

pub use read::{MapEntry, MapReader, Region, RegionKind};

/// Size of one packed map entry.
pub const ENTRY_SIZE: usize = 28;
