//! Files made by other tools: ELF cores (QEMU dump-guest-memory, kcore copies, our own
//! exports) and LiME images, converted through the same pipeline as live memory.

use super::{PhysicalSource, Segment, SegmentTable};
use crate::error::{Error, Result};
use crate::iomem::Range;
use crate::{elf, lime};
use std::fs::File;

/// An ELF core file: physical ranges from PT_LOAD p_paddr.
pub struct ElfFileSource {
    name: String,
    file: File,
    table: SegmentTable,
    vmcoreinfo: Option<String>,
}

impl ElfFileSource {
    /// Parses the core's program headers.
    ///
    /// # Errors
    /// Malformed ELF, segments outside the file, or no physical segment.
    pub fn open(file: File, name: &str) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io(name, e))?.len();
        let phdrs = elf::program_headers(&file, name)?;
        let notes = elf::notes(&file, &phdrs, name)?;
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
        Ok(ElfFileSource { name: name.to_string(), file, table: SegmentTable::new(segs), vmcoreinfo: elf::vmcoreinfo(&notes) })
    }
}

impl PhysicalSource for ElfFileSource {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn kind(&self) -> &'static str {
        "elf"
    }
    fn ranges(&self) -> Vec<Range> {
        self.table.coverage()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.table.read(&self.file, phys, buf)
    }
    fn vmcoreinfo(&self) -> Option<String> {
        self.vmcoreinfo.clone()
    }
}

/// A LiME file.
pub struct LimeFileSource {
    name: String,
    file: File,
    table: SegmentTable,
}

impl LimeFileSource {
    /// Parses the LiME headers.
    ///
    /// # Errors
    /// Malformed or unsupported LiME.
    pub fn open(file: File, name: &str) -> Result<Self> {
        let parts = lime::parse(&file, name)?;
        let segs = parts.into_iter().map(|(r, off)| Segment { phys: r.start, len: r.len(), file_off: off }).collect();
        Ok(LimeFileSource { name: name.to_string(), file, table: SegmentTable::new(segs) })
    }
}

impl PhysicalSource for LimeFileSource {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn kind(&self) -> &'static str {
        "lime"
    }
    fn ranges(&self) -> Vec<Range> {
        self.table.coverage()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.table.read(&self.file, phys, buf)
    }
}
