//! The running machine's physical memory as a [`Stream`] read on demand (for `pmem mount
//! --live`): the address space of a [`PhysicalSource`], RAM read at each request (live memory
//! changes between reads), holes between its ranges as zeros, and pages that cannot be read,
//! or that the source says it cannot map, as the `UNREADABLEDATA` pattern; never an error.

use crate::source::PhysicalSource;
use aff4::stream::Stream;
use aff4::symbolic::Symbolic;
use memformat::Range;
use std::sync::Arc;

/// Pages read one by one after a larger read failed.
const PAGE: u64 = 4096;

/// Physical memory read live.
pub struct LiveMemory {
    src: Arc<dyn PhysicalSource>,
    /// RAM, sorted.
    ram: Vec<Range>,
    /// What can be read, sorted: RAM less what the source cannot map.
    readable: Vec<Range>,
    size: u64,
}

impl LiveMemory {
    /// The address space of `src`, up to the end of its last range.
    pub fn new(src: Arc<dyn PhysicalSource>) -> LiveMemory {
        let ranges = src.ranges();
        let readable = memformat::ranges::subtract(&ranges, &src.unmapped());
        let size = ranges.last().map(|r| r.end).unwrap_or(0);
        LiveMemory { src, ram: ranges, readable, size }
    }

    /// The source read.
    pub fn source(&self) -> &Arc<dyn PhysicalSource> {
        &self.src
    }

    /// Fills `buf` from RAM at `phys` (all of it within one readable range), page by page
    /// where the whole read fails.
    fn read_ram(&self, phys: u64, buf: &mut [u8]) {
        if self.src.read_at(phys, buf).is_ok() {
            return;
        }
        let mut at = 0usize;
        while at < buf.len() {
            let p = phys + at as u64;
            let n = ((PAGE - p % PAGE) as usize).min(buf.len() - at);
            let piece = &mut buf[at..at + n];
            if self.src.read_at(p, piece).is_err() {
                Symbolic::Unreadable.fill(p, piece);
            }
            at += n;
        }
    }
}

impl Stream for LiveMemory {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> aff4::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset) as usize;
        let want = Range { start: offset, end: offset + n as u64 };
        let buf = &mut buf[..n];
        let span = |r: &Range| (r.start - offset) as usize..(r.end - offset) as usize;
        // Holes between the ranges are zeros; RAM is the unreadable pattern until it is read.
        buf.fill(0);
        for r in self.ram.iter().filter_map(|r| r.intersect(&want)) {
            Symbolic::Unreadable.fill(r.start, &mut buf[span(&r)]);
        }
        for r in self.readable.iter().filter_map(|r| r.intersect(&want)) {
            self.read_ram(r.start, &mut buf[span(&r)]);
        }
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("live memory through {}", self.src.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RAM at [0x1000, 0x5000) and [0x8000, 0x9000); page 0x3000 fails to read; 0x8000 is unmapped.
    struct Fake;
    impl PhysicalSource for Fake {
        fn name(&self) -> String {
            "fake".into()
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn ranges(&self) -> Vec<Range> {
            vec![Range { start: 0x1000, end: 0x5000 }, Range { start: 0x8000, end: 0x9000 }]
        }
        fn unmapped(&self) -> Vec<Range> {
            vec![Range { start: 0x8000, end: 0x9000 }]
        }
        fn read_at(&self, phys: u64, buf: &mut [u8]) -> std::io::Result<()> {
            if phys < 0x4000 && phys + buf.len() as u64 > 0x3000 {
                return Err(std::io::Error::other("EIO"));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = ((phys + i as u64) / 4096) as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn reads_ram_holes_and_unreadable_pages_as_they_are() {
        let m = LiveMemory::new(Arc::new(Fake));
        assert_eq!(m.size(), 0x9000);
        let mut buf = vec![0xAAu8; 0x9000];
        assert_eq!(m.read_at(0, &mut buf).unwrap(), 0x9000);
        let mut pattern = vec![0u8; 0x1000];
        assert!(buf[..0x1000].iter().all(|&b| b == 0), "below RAM: zeros");
        assert!(buf[0x1000..0x3000].iter().enumerate().all(|(i, &b)| b == ((0x1000 + i) / 4096) as u8), "RAM read");
        Symbolic::Unreadable.fill(0x3000, &mut pattern);
        assert_eq!(&buf[0x3000..0x4000], &pattern[..], "the page that fails: the pattern");
        assert!(buf[0x4000..0x5000].iter().all(|&b| b == 4), "the page after it is read");
        assert!(buf[0x5000..0x8000].iter().all(|&b| b == 0), "a hole: zeros");
        Symbolic::Unreadable.fill(0x8000, &mut pattern);
        assert_eq!(&buf[0x8000..], &pattern[..], "unmapped RAM: the pattern");
        assert_eq!(m.read_at(0x9000, &mut buf).unwrap(), 0);
        // A read that ends inside a range.
        let mut small = vec![0u8; 10];
        m.read_at(0x1ffb, &mut small).unwrap();
        assert_eq!(small, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    }
}
