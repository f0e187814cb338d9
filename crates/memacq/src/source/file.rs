//! Files made by other tools: ELF cores (QEMU dump-guest-memory, kcore copies, our own
//! exports) and LiME images, converted through the same pipeline as live memory.

use super::{Handles, SegmentedSource};
use crate::error::{Error, Result};
use memformat::segments::{Segment, SegmentTable};
use memformat::{elf, lime};

/// An ELF core file (its open files: see [`Handles`]): physical ranges from PT_LOAD p_paddr.
///
/// # Errors
/// Malformed ELF, segments outside the file, or no physical segment.
pub fn open_elf(handles: Handles, name: &str) -> Result<SegmentedSource> {
    let (len, phdrs, notes, arch) = handles.with(|file| -> Result<_> {
        let len = file.metadata().map_err(|e| Error::io(name, e))?.len();
        let phdrs = elf::program_headers(file, name)?;
        let notes = elf::notes(file, &phdrs, name)?;
        Ok((len, phdrs, notes, elf::architecture(file, name)?))
    })?;
    let mut segs = Vec::new();
    for p in phdrs.iter().filter(|p| p.p_type == elf::PT_LOAD && p.filesz > 0 && p.paddr != u64::MAX) {
        if p.offset.checked_add(p.filesz).is_none_or(|e| e > len) {
            return Err(Error::corrupt(name, p.offset, format!("segment at physical {:#x} runs past the end of the file", p.paddr)));
        }
        segs.push(Segment { phys: p.paddr, len: p.filesz, file_off: p.offset });
    }
    if segs.is_empty() {
        return Err(Error::corrupt(name, 0, "no PT_LOAD segment with a physical address"));
    }
    let table = SegmentTable::new(segs);
    let ranges = table.coverage();
    Ok(SegmentedSource {
        name: name.to_string(),
        kind: "elf",
        files: handles,
        table,
        ranges,
        vmcoreinfo: elf::vmcoreinfo(&notes),
        arch,
        notes: Vec::new(),
        unmapped: Vec::new(),
        low: None,
    })
}

/// A LiME file (its open files: see [`Handles`]).
///
/// # Errors
/// Malformed or unsupported LiME.
pub fn open_lime(handles: Handles, name: &str) -> Result<SegmentedSource> {
    let parts = handles.with(|file| lime::parse(file, name))?;
    let segs = parts.into_iter().map(|(r, off)| Segment { phys: r.start, len: r.len(), file_off: off }).collect();
    let table = SegmentTable::new(segs);
    let ranges = table.coverage();
    // LiME headers do not say which architecture the memory is from.
    Ok(SegmentedSource {
        name: name.to_string(),
        kind: "lime",
        files: handles,
        table,
        ranges,
        vmcoreinfo: None,
        arch: None,
        notes: Vec::new(),
        unmapped: Vec::new(),
        low: None,
    })
}
