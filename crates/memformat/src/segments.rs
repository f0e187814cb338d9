//! Where physical memory lies in a file (kcore, an ELF core, LiME): segments and the table
//! that maps a physical address to a file offset.

use crate::ranges::Range;
use std::fs::File;
use std::io;

/// A piece of a file holding physical `[phys, phys+len)` at `file_off`.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Physical start.
    pub phys: u64,
    /// Length.
    pub len: u64,
    /// File offset.
    pub file_off: u64,
}

/// Physical address -> file offset through segments (larger segments preferred).
#[derive(Debug, Clone, Default)]
pub struct SegmentTable {
    segs: Vec<Segment>,
}

impl SegmentTable {
    /// A table from segments (overlaps allowed: the largest covering one is used).
    pub fn new(mut segs: Vec<Segment>) -> Self {
        segs.retain(|s| s.len > 0 && s.phys.checked_add(s.len).is_some() && s.file_off.checked_add(s.len).is_some());
        segs.sort_by_key(|s| std::cmp::Reverse(s.len));
        SegmentTable { segs }
    }
    /// The merged physical coverage.
    pub fn coverage(&self) -> Vec<Range> {
        crate::ranges::merge(self.segs.iter().map(|s| Range { start: s.phys, end: s.phys + s.len }).collect())
    }
    /// (file offset, bytes available contiguously) for `phys`.
    pub fn lookup(&self, phys: u64) -> Option<(u64, u64)> {
        self.segs.iter().find(|s| phys >= s.phys && phys < s.phys + s.len).map(|s| (s.file_off + (phys - s.phys), s.phys + s.len - phys))
    }
    /// Reads `buf` at `phys` from `f`, crossing segments as needed.
    ///
    /// # Errors
    /// Uncovered addresses or read errors.
    pub fn read(&self, f: &File, mut phys: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let (off, avail) = self
                .lookup(phys)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("physical address {phys:#x} is not in the source")))?;
            let n = (buf.len() as u64).min(avail) as usize;
            pread_exact(f, off, &mut buf[..n])?;
            phys += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `off`.
///
/// # Errors
/// Errors from the OS, or EOF (as UnexpectedEof).
pub fn pread_exact(f: &File, off: u64, buf: &mut [u8]) -> io::Result<()> {
    aff4::stream::read_exact_at(f, off, buf)
}
