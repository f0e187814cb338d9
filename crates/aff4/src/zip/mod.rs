//! The ZIP64 layer of AFF4 volumes, hand-written because AFF4 needs control that ZIP crates do
//! not give: Evimetry-style local headers with placeholder sizes, the URN in the comment,
//! duplicate member names on re-flush, a global offset for volumes glued to other files, and
//! positional reads of members from many threads.

mod read;
mod scan;
mod write;

pub use read::{ZipArchive, ZipEntry};
pub use scan::{scan_local_headers, LocalMember, LocalScan};
pub(crate) use write::ZEROS;
pub use write::{WrittenEntry, ZipWriter};

pub(crate) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(crate) const CENTRAL_SIG: u32 = 0x0201_4b50;
pub(crate) const EOCD_SIG: u32 = 0x0605_4b50;
pub(crate) const EOCD64_SIG: u32 = 0x0606_4b50;
pub(crate) const LOCATOR64_SIG: u32 = 0x0706_4b50;
pub(crate) const DESCRIPTOR_SIG: u32 = 0x0807_4b50;

/// Method 0: stored.
pub const METHOD_STORED: u16 = 0;
/// Method 8: raw deflate.
pub const METHOD_DEFLATE: u16 = 8;

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
