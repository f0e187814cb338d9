//! /proc/kcore: an ELF core of the kernel's address space. Its PT_LOAD segments carry the
//! physical address in p_paddr for the direct map (and kernel text); they are intersected with
//! the System RAM ranges of /proc/iomem. Headers are read with pread; the file is never mapped.

use super::{open_error, SegmentedSource};
use crate::error::{SourceError, SourceErrorKind};
use crate::iomem;
use memformat::elf;
use memformat::segments::{Segment, SegmentTable};
use std::fs::File;

/// Opens kcore at `path` with the iomem text `iomem`.
///
/// # Errors
/// Missing, not permitted (with lockdown detected), or no RAM segment.
pub fn open_kcore(path: &str, iomem: &str) -> Result<SegmentedSource, SourceError> {
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
    // kcore maps whole page frames of System RAM.
    let ram =
        memformat::ranges::merge(memformat::ranges::whole_pages(&iomem::system_ram(iomem).map_err(|e| invalid(e.to_string()))?, 4096));
    let cover = table.coverage();
    if !ram.iter().any(|r| cover.iter().any(|c| r.intersect(c).is_some())) {
        return Err(invalid("no kcore segment covers System RAM (is kcore restricted, or iomem unreadable?)".into()));
    }
    // RAM that kcore does not map is still acquired: its reads fail and it is recorded as
    // unreadable, never left out as if it were not there.
    let missing = memformat::ranges::subtract(&ram, &cover);
    let mut notes = Vec::new();
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
        file,
        table,
        ranges,
        vmcoreinfo: elf::vmcoreinfo(&elf_notes),
        arch,
        notes,
        unmapped: missing,
    })
}
