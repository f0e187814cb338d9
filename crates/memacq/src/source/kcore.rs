//! /proc/kcore: an ELF core of the kernel's address space. Its PT_LOAD segments carry the
//! physical address in p_paddr for the direct map (and kernel text); they are intersected with
//! the System RAM ranges of /proc/iomem. Headers are read with pread; the file is never mapped.

use super::{open_error, Handles, SegmentedSource};
use crate::error::{SourceError, SourceErrorKind};
use crate::iomem;
use memformat::elf;
use memformat::segments::{Segment, SegmentTable};
use std::fs::File;

/// RAM below this is read through /dev/mem where kcore does not map it: x86's STRICT_DEVMEM
/// allows /dev/mem there, and PC firmware ends the first RAM range inside a page (0x9fbff).
const LOW_MEM: u64 = 1 << 20;

/// Opens kcore at `path` with the iomem text `iomem`; `mem` (/dev/mem of the same machine)
/// reads the RAM below 1 MiB that kcore does not map.
///
/// # Errors
/// Missing, not permitted (with lockdown detected), or no RAM segment.
pub fn open_kcore(path: &str, iomem: &str, mem: Option<&str>) -> Result<SegmentedSource, SourceError> {
    let file = File::open(path).map_err(|e| open_error(path, &e))?;
    let invalid = |m: String| SourceError::new(path, SourceErrorKind::Invalid, m);
    let phdrs = elf::program_headers(&file, path).map_err(|e| invalid(e.to_string()))?;
    let elf_notes = elf::notes(&file, &phdrs, path).unwrap_or_default();
    let segs: Vec<Segment> = phdrs
        .iter()
        .filter(|p| p.p_type == elf::PT_LOAD && p.paddr != u64::MAX && p.filesz > 0 && p.vaddr != 0)
        .map(|p| Segment { phys: p.paddr, len: p.filesz, file_off: p.offset })
        .collect();
    let table = SegmentTable::new(segs);
    // kcore maps whole page frames of System RAM; RAM that ends inside a page (0x9f000-0x9fbff
    // below the EBDA) is still RAM: it is acquired as iomem gives it and, with no kcore segment,
    // recorded as unreadable below.
    let ram = iomem::system_ram(iomem).map_err(|e| invalid(e.to_string()))?;
    let cover = table.coverage();
    if !ram.iter().any(|r| cover.iter().any(|c| r.intersect(c).is_some())) {
        return Err(invalid("no kcore segment covers System RAM (is kcore restricted, or iomem unreadable?)".into()));
    }
    // RAM that kcore does not map is still acquired: its reads fail and it is recorded as
    // unreadable, never left out as if it were not there.
    let missing = memformat::ranges::subtract(&ram, &cover);
    let mut notes = Vec::new();
    let low = mem.and_then(|mem| low_ram(mem, &missing));
    if let Some((_, low)) = &low {
        let bytes: u64 = low.iter().map(|r| r.len()).sum();
        notes.push(format!(
            "{bytes} bytes of System RAM below 1 MiB that {path} does not map were read through {}: {}",
            mem.unwrap_or_default(),
            low.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(",")
        ));
    }
    let missing = memformat::ranges::subtract(&missing, low.as_ref().map_or(&[][..], |(_, l)| l));
    if !missing.is_empty() {
        let bytes: u64 = missing.iter().map(|r| r.len()).sum();
        notes.push(format!(
            "{bytes} bytes of System RAM in /proc/iomem have no {path} segment and are recorded as unreadable: {}",
            missing.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(",")
        ));
    }
    let ranges = ram;
    // A first read proves access (lockdown may allow open but not read).
    let mut probe = [0u8; 16];
    let first = ranges.iter().find_map(|r| cover.iter().find_map(|c| r.intersect(c))).map_or(0, |r| r.start);
    table.read(&file, first, &mut probe).map_err(|e| open_error(path, &e))?;
    // kcore is the running kernel's: its e_machine, else this binary's own architecture.
    let arch = elf::architecture(&file, path).ok().flatten().or(Some(std::env::consts::ARCH));
    Ok(SegmentedSource {
        name: path.to_string(),
        kind: "kcore",
        files: Handles::new(path, file),
        table,
        ranges,
        vmcoreinfo: elf::vmcoreinfo(&elf_notes),
        arch,
        notes,
        unmapped: missing,
        low: low.map(|(f, r)| (Handles::new(mem.unwrap_or_default(), f), r)),
    })
}

/// The parts of `missing` below 1 MiB that `mem` reads, with the file open for them.
fn low_ram(mem: &str, missing: &[memformat::ranges::Range]) -> Option<(File, Vec<memformat::ranges::Range>)> {
    let below = memformat::ranges::Range { start: 0, end: LOW_MEM };
    let wanted: Vec<_> = missing.iter().filter_map(|r| r.intersect(&below)).collect();
    if wanted.is_empty() {
        return None;
    }
    let f = File::open(mem).ok()?;
    let readable: Vec<_> = wanted
        .into_iter()
        .filter(|r| {
            let mut b = vec![0u8; r.len() as usize];
            memformat::segments::pread_exact(&f, r.start, &mut b).is_ok()
        })
        .collect();
    (!readable.is_empty()).then_some((f, readable))
}
