//! What changed while we read: chosen ranges (by default the kernel's own code, rodata, data
//! and bss from /proc/iomem) are digested page by page during the main pass and read again
//! after it; the pages whose second read differs are recorded (count and ranges), and their
//! second copies can be kept in the volume as a LiME file, so an analyst knows which parts of
//! the image are "smeared" and has both versions.

use aff4::HashAlgo;
use memformat::Range;
use std::collections::HashMap;

const PAGE: u64 = crate::acquire::PAGE;

/// The kernel's own ranges in /proc/iomem text (whole pages only).
pub fn kernel_ranges(iomem: &str) -> Vec<Range> {
    let mut v: Vec<Range> =
        ["Kernel code", "Kernel rodata", "Kernel data", "Kernel bss"].iter().flat_map(|n| crate::iomem::named(iomem, n)).collect();
    v.sort_by_key(|r| r.start);
    memformat::ranges::whole_pages(&v, PAGE)
}

/// Most page-table pages [`kernel_page_tables`] collects (a bound on a damaged or hostile table).
const MAX_TABLE_PAGES: usize = 1 << 16;

/// The pages of the x86-64 kernel's own page tables (the upper half of `init_top_pgt`, found
/// through VMCOREINFO: `SYMBOL(init_top_pgt)`, `NUMBER(phys_base)`, `NUMBER(pgtable_l5_enabled)`),
/// walked through `src`: the top table and every lower-level table it reaches (huge pages end
/// a walk). None when VMCOREINFO lacks what is needed or the top table cannot be read.
pub fn kernel_page_tables(src: &dyn crate::source::PhysicalSource, vmcoreinfo: &str) -> Option<Vec<Range>> {
    use crate::acquire::vmcoreinfo_value;
    const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    let hex = |k: &str| vmcoreinfo_value(vmcoreinfo, k).and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
    let top = hex("SYMBOL(init_top_pgt)")?;
    let phys_base: i64 = vmcoreinfo_value(vmcoreinfo, "NUMBER(phys_base)")?.parse().ok()?;
    let levels = if vmcoreinfo_value(vmcoreinfo, "NUMBER(pgtable_l5_enabled)").as_deref() == Some("1") { 5 } else { 4 };
    let root = top.checked_sub(START_KERNEL_MAP)?.checked_add_signed(phys_base)?;
    let mut pages = vec![root];
    // (table, its level: `levels` for the top, 1 for a PTE table), upper half at the top.
    let mut todo = vec![(root, levels, 256usize)];
    let mut seen = std::collections::HashSet::from([root]);
    let mut buf = vec![0u8; PAGE as usize];
    while let Some((table, level, first)) = todo.pop() {
        if src.read_at(table, &mut buf).is_err() {
            if table == root {
                return None;
            }
            continue;
        }
        if level == 1 {
            continue;
        }
        for i in first..512 {
            let e = u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap_or_default());
            // Present, and (below the top) not a huge page.
            if e & 1 == 0 || (level <= 3 && e & 0x80 != 0) {
                continue;
            }
            let next = e & ADDR;
            if pages.len() < MAX_TABLE_PAGES && seen.insert(next) {
                pages.push(next);
                todo.push((next, level - 1, 0));
            }
        }
    }
    pages.sort_unstable();
    let mut out: Vec<Range> = Vec::new();
    for p in pages {
        match out.last_mut() {
            Some(l) if l.end == p => l.end = p + PAGE,
            _ => out.push(Range { start: p, end: p + PAGE }),
        }
    }
    Some(out)
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

    /// Whether the main pass's read of `len` bytes at physical `at` holds pages to remember.
    pub fn wants(&self, at: u64, len: u64) -> bool {
        let read = Range { start: at, end: at.saturating_add(len) };
        self.ranges.iter().any(|r| r.intersect(&read).is_some())
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

/// What the recheck after the main pass found.
pub type RecheckReport = memformat::meta::Recheck;

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
        out.extend_from_slice(&memformat::lime::header(&Range { start: s, end: s + buf.len() as u64 }));
        out.extend_from_slice(&buf);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical memory as a vector.
    struct Mem(Vec<u8>);
    impl crate::source::PhysicalSource for Mem {
        fn name(&self) -> String {
            "mem".into()
        }
        fn kind(&self) -> &'static str {
            "lime"
        }
        fn ranges(&self) -> Vec<Range> {
            vec![Range { start: 0, end: self.0.len() as u64 }]
        }
        fn read_at(&self, phys: u64, buf: &mut [u8]) -> std::io::Result<()> {
            let s = self.0.get(phys as usize..phys as usize + buf.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(s);
            Ok(())
        }
    }

    #[test]
    fn the_kernel_page_tables_are_walked_from_vmcoreinfo() {
        let mut m = vec![0u8; 64 * PAGE as usize];
        let mut set = |table: u64, i: usize, e: u64| m[(table + i as u64 * 8) as usize..][..8].copy_from_slice(&e.to_le_bytes());
        // init_top_pgt at phys 0x3000 (phys_base 0x1000 + 0x2000); a user-half entry is ignored.
        set(0x3000, 10, 0x20000 | 1);
        set(0x3000, 511, 0x5000 | 1);
        set(0x5000, 510, 0x6000 | 1); // PUD -> PMD
        set(0x5000, 3, 0x7000); // not present
        set(0x6000, 0, 0x8000 | 1); // PMD -> PTE table
        set(0x6000, 1, 0x20_0000 | 0x81); // a 2 MiB page: not a table
        set(0x6000, 2, 0x9000 | 1); // another PTE table
        let info = "SYMBOL(init_top_pgt)=ffffffff80002000\nNUMBER(phys_base)=4096\n";
        let r = kernel_page_tables(&Mem(m), info).unwrap_or_default();
        let pages: Vec<u64> = r.iter().flat_map(|r| (r.start..r.end).step_by(PAGE as usize)).collect();
        assert_eq!(pages, vec![0x3000, 0x5000, 0x6000, 0x8000, 0x9000]);
        assert!(kernel_page_tables(&Mem(vec![0; 4096]), info).is_none(), "top table unreadable");
        assert!(kernel_page_tables(&Mem(vec![0; 65536]), "NUMBER(phys_base)=0\n").is_none(), "no symbol");
    }

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
