//! What changed while we read: chosen ranges (by default the kernel's own code, rodata, data
//! and bss from /proc/iomem) are digested page by page during the main pass and read again
//! after it; the pages whose second read differs are recorded (count and ranges), and their
//! second copies can be kept in the volume as a LiME file, so an analyst knows which parts of
//! the image are "smeared" and has both versions.

use crate::iomem::Range;
use aff4::HashAlgo;
use std::collections::HashMap;

const PAGE: u64 = crate::acquire::PAGE;

/// The kernel's own ranges in /proc/iomem text (whole pages only).
pub fn kernel_ranges(iomem: &str) -> Vec<Range> {
    let mut v: Vec<Range> =
        ["Kernel code", "Kernel rodata", "Kernel data", "Kernel bss"].iter().flat_map(|n| crate::iomem::named(iomem, n)).collect();
    v.sort_by_key(|r| r.start);
    crate::iomem::whole_pages(&v, PAGE)
}

/// Digests of the first read of every page in the ranges to recheck.
pub struct FirstPass {
    ranges: Vec<Range>,
    digests: HashMap<u64, Vec<u8>>,
}

impl FirstPass {
    /// Pages of `ranges` will be remembered as the main pass reads them.
    pub fn new(ranges: Vec<Range>) -> FirstPass {
        FirstPass { ranges, digests: HashMap::new() }
    }

    /// The main pass read `data` at physical `at`.
    pub fn note(&mut self, at: u64, data: &[u8]) {
        let read = Range { start: at, end: at + data.len() as u64 };
        for r in &self.ranges {
            let Some(x) = r.intersect(&read) else { continue };
            let mut p = x.start - x.start % PAGE;
            while p < x.end {
                let (a, b) = (p.max(at), (p + PAGE).min(read.end));
                if a == p && b == p + PAGE {
                    self.digests.insert(p, HashAlgo::Sha1.digest(&data[(a - at) as usize..(b - at) as usize]));
                }
                p += PAGE;
            }
        }
    }

    /// The pages to read again (those the main pass read whole), in address order.
    pub fn pages(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.digests.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Whether the second read `data` of page `p` differs from the first.
    pub fn changed(&self, p: u64, data: &[u8]) -> bool {
        self.digests.get(&p).is_some_and(|d| *d != HashAlgo::Sha1.digest(data))
    }
}

/// What the recheck found.
#[derive(Debug, Clone, Default)]
pub struct RecheckReport {
    /// The ranges rechecked.
    pub ranges: Vec<Range>,
    /// Pages read a second time.
    pub pages: u64,
    /// Pages whose second read differed.
    pub changed_pages: u64,
    /// Where they are.
    pub changed: Vec<Range>,
    /// Pages that could not be read the second time.
    pub unreadable_pages: u64,
    /// How long the second reads took.
    pub seconds: f64,
}

/// The second copies of changed pages as a LiME file (one range per run of changed pages).
pub fn lime_of(pages: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    for (p, d) in pages {
        match runs.last_mut() {
            Some((s, buf)) if *s + buf.len() as u64 == *p => buf.extend_from_slice(d),
            _ => runs.push((*p, d.clone())),
        }
    }
    let mut out = Vec::new();
    for (s, buf) in runs {
        out.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(s + buf.len() as u64 - 1).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&buf);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_pages_in_the_ranges_are_remembered_and_compared() {
        let mut f = FirstPass::new(vec![Range { start: 0x2000, end: 0x5000 }]);
        let data: Vec<u8> = (0..0x8000u32).map(|i| (i * 7) as u8).collect();
        // A read from 0x1800: page 0x1000 is partial and outside; 0x2000..0x5000 are inside.
        f.note(0x1800, &data[..0x5000]);
        assert_eq!(f.pages(), vec![0x2000, 0x3000, 0x4000]);
        let page = |p: u64| &data[(p - 0x1800) as usize..(p - 0x1800 + PAGE) as usize];
        assert!(!f.changed(0x3000, page(0x3000)));
        let mut other = page(0x3000).to_vec();
        other[9] ^= 1;
        assert!(f.changed(0x3000, &other));
        let l = lime_of(&[(0x3000, other.clone()), (0x4000, other.clone()), (0x9000, other)]);
        assert_eq!(l.len(), 2 * 32 + 3 * PAGE as usize, "two runs");
        let iomem = "00100000-3ffd6fff : System RAM\n  01000000-01e00fff : Kernel code\n  02000000-0245afff : Kernel rodata\n";
        assert_eq!(kernel_ranges(iomem).len(), 2);
    }
}
