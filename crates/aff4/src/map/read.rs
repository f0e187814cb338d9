//! Reading maps: entries, idx targets and gaps, with reads that never allocate by virtual size.

use super::ENTRY_SIZE;
use crate::error::{Error, Result};
use crate::stream::Stream;
use std::sync::Arc;

/// One range of a map: virtual `[mapped, mapped+length)` comes from target `target_id` at `target_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapEntry {
    /// Start in the virtual address space.
    pub mapped: u64,
    /// Length in bytes (> 0).
    pub length: u64,
    /// Start inside the target stream.
    pub target_offset: u64,
    /// Line number in `idx`.
    pub target_id: u32,
}

impl MapEntry {
    /// Packs the entry in the standard order.
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        b[0..8].copy_from_slice(&self.mapped.to_le_bytes());
        b[8..16].copy_from_slice(&self.length.to_le_bytes());
        b[16..24].copy_from_slice(&self.target_offset.to_le_bytes());
        b[24..28].copy_from_slice(&self.target_id.to_le_bytes());
        b
    }
}

/// What a region of the virtual address space is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionKind {
    /// Mapped to target `idx[n]`.
    Mapped(u32),
    /// Not covered by any entry (filled by the gap stream).
    Gap,
}

/// A maximal run of the address space with one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Start.
    pub start: u64,
    /// Length.
    pub length: u64,
    /// Kind.
    pub kind: RegionKind,
}

/// A target: opened, or the reason it could not be.
pub type Target = std::result::Result<Arc<dyn Stream>, String>;

/// Random-access reader of a map.
pub struct MapReader {
    urn: String,
    size: u64,
    entries: Vec<MapEntry>,
    target_urns: Vec<String>,
    targets: Vec<Target>,
    gap: Arc<dyn Stream>,
}

impl MapReader {
    /// Parses the `map` segment (legacy Rekall order when `swapped`) and the `idx` lines.
    ///
    /// # Errors
    /// Overlapping entries, overflowing ranges, or target ids beyond `idx`.
    pub fn parse_entries(map: &[u8], swapped: bool, ctx: &str) -> Result<Vec<MapEntry>> {
        let mut entries = Vec::with_capacity(map.len() / ENTRY_SIZE);
        for (i, c) in map.chunks_exact(ENTRY_SIZE).enumerate() {
            let u = |a: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&c[a..a + 8]);
                u64::from_le_bytes(b)
            };
            let (mapped, x, y) = (u(0), u(8), u(16));
            let (length, target_offset) = if swapped { (y, x) } else { (x, y) };
            let target_id = u32::from_le_bytes([c[24], c[25], c[26], c[27]]);
            if length == 0 {
                continue;
            }
            if mapped.checked_add(length).is_none() || target_offset.checked_add(length).is_none() {
                return Err(Error::corrupt(ctx, (i * ENTRY_SIZE) as u64, format!("map entry {i} overflows 64 bits")));
            }
            entries.push(MapEntry { mapped, length, target_offset, target_id });
        }
        entries.sort_by_key(|e| e.mapped);
        // Merge contiguous runs; reject overlaps.
        let mut out: Vec<MapEntry> = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(last) = out.last_mut() {
                let end = last.mapped + last.length;
                if e.mapped < end {
                    return Err(Error::corrupt(ctx, 0, format!("map entries overlap at virtual offset {:#x}", e.mapped)));
                }
                if e.mapped == end && e.target_id == last.target_id && e.target_offset == last.target_offset + last.length {
                    last.length += e.length;
                    continue;
                }
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Parses `idx`: one IRI per line, CR stripped, empty lines dropped only at the end.
    pub fn parse_idx(idx: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(idx);
        let mut lines: Vec<String> = text.split('\n').map(|l| l.trim_end_matches('\r').trim().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Builds a reader from parsed parts; `size` is `aff4:size` (or `None` to use the last entry's end).
    ///
    /// # Errors
    /// A target id beyond the idx list.
    pub fn new(
        urn: String,
        size: Option<u64>,
        entries: Vec<MapEntry>,
        target_urns: Vec<String>,
        targets: Vec<Target>,
        gap: Arc<dyn Stream>,
    ) -> Result<Self> {
        let end = entries.last().map(|e| e.mapped + e.length).unwrap_or(0);
        let size = size.unwrap_or(end);
        for e in &entries {
            if e.target_id as usize >= targets.len() {
                return Err(Error::corrupt(
                    format!("{urn}/map"),
                    0,
                    format!("entry at {:#x} names target {} but idx has {} lines", e.mapped, e.target_id, targets.len()),
                ));
            }
        }
        Ok(MapReader { urn, size, entries, target_urns, targets, gap })
    }

    /// Entries, sorted and non-overlapping.
    pub fn entries(&self) -> &[MapEntry] {
        &self.entries
    }

    /// Target IRIs in idx order.
    pub fn target_urns(&self) -> &[String] {
        &self.target_urns
    }

    /// Regions covering `[0, size)`: mapped runs and gaps, in order.
    pub fn regions(&self) -> Vec<Region> {
        let mut out = Vec::new();
        let mut pos = 0u64;
        for e in &self.entries {
            if e.mapped >= self.size {
                break;
            }
            if e.mapped > pos {
                out.push(Region { start: pos, length: e.mapped - pos, kind: RegionKind::Gap });
            }
            let len = e.length.min(self.size - e.mapped);
            out.push(Region { start: e.mapped, length: len, kind: RegionKind::Mapped(e.target_id) });
            pos = e.mapped + len;
        }
        if pos < self.size {
            out.push(Region { start: pos, length: self.size - pos, kind: RegionKind::Gap });
        }
        out
    }
}

impl Stream for MapReader {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset) as usize;
        let mut done = 0usize;
        let mut i = self.entries.partition_point(|e| e.mapped + e.length <= offset);
        while done < n {
            let pos = offset + done as u64;
            let want = n - done;
            match self.entries.get(i) {
                Some(e) if e.mapped <= pos => {
                    let within = pos - e.mapped;
                    let take = ((e.length - within) as usize).min(want);
                    let t = match &self.targets[e.target_id as usize] {
                        Ok(t) => t,
                        Err(why) => {
                            return Err(Error::corrupt(
                                &self.urn,
                                pos,
                                format!("target {} cannot be read: {why}", self.target_urns[e.target_id as usize]),
                            ))
                        }
                    };
                    let toff = e.target_offset + within;
                    let got = t.read_at(toff, &mut buf[done..done + take])?;
                    if got < take {
                        // The target ended early; read the remainder exactly or fail.
                        t.read_exact_at(toff + got as u64, &mut buf[done + got..done + take]).map_err(|_| {
                            Error::corrupt(
                                &self.urn,
                                pos,
                                format!("target {} ends before offset {}", self.target_urns[e.target_id as usize], toff + take as u64),
                            )
                        })?;
                    }
                    done += take;
                    i += 1;
                }
                next => {
                    let gap_end = next.map(|e| e.mapped).unwrap_or(self.size);
                    let take = ((gap_end - pos) as usize).min(want);
                    self.gap.read_exact_at(pos, &mut buf[done..done + take])?;
                    done += take;
                }
            }
        }
        Ok(n)
    }
    fn describe(&self) -> String {
        self.urn.clone()
    }
}
