//! ELF64 cores: reading program headers and notes with explicit bounds (kcore, QEMU dumps,
//! kcore copies), and laying out a new core with one PT_LOAD per physical range plus notes.

use crate::error::{Error, Result};
use crate::ranges::Range;
use aff4::stream::ReadAt;

/// PT_LOAD.
pub const PT_LOAD: u32 = 1;
/// PT_NOTE.
pub const PT_NOTE: u32 = 4;
const EHDR: usize = 64;
const PHDR: usize = 56;
const MAX_PHNUM: usize = 65535;
const MAX_NOTES: u64 = 16 << 20;

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phdr {
    /// Segment type.
    pub p_type: u32,
    /// File offset.
    pub offset: u64,
    /// Virtual address.
    pub vaddr: u64,
    /// Physical address (`u64::MAX` when the kernel does not know one).
    pub paddr: u64,
    /// Bytes in the file.
    pub filesz: u64,
}

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Owner name without the NUL.
    pub name: String,
    /// Note type.
    pub n_type: u32,
    /// Descriptor bytes.
    pub desc: Vec<u8>,
}

/// EM_X86_64, what a core without a recorded architecture is taken to be.
pub const EM_X86_64: u16 = 62;

/// ELF `e_machine` values of the little-endian 64-bit architectures Linux runs on, with the
/// names Rust gives them (`std::env::consts::ARCH`), which pmem records in its volumes.
const MACHINES: [(u16, &str); 5] = [(EM_X86_64, "x86_64"), (183, "aarch64"), (243, "riscv64"), (21, "powerpc64"), (258, "loongarch64")];

/// The architecture name of an ELF `e_machine`, if pmem knows it (the little-endian 64-bit ones).
pub fn arch_name(machine: u16) -> Option<&'static str> {
    MACHINES.iter().find(|(m, _)| *m == machine).map(|(_, n)| *n)
}

/// The ELF `e_machine` for an architecture name (as [`arch_name`] gives), if known.
pub fn machine_of(arch: &str) -> Option<u16> {
    MACHINES.iter().find(|(_, n)| *n == arch).map(|(m, _)| *m)
}

/// The architecture an ELF file declares in `e_machine` (`None` for one pmem does not know).
///
/// # Errors
/// Not an ELF file or too short.
pub fn architecture(f: &dyn ReadAt, ctx: &str) -> Result<Option<&'static str>> {
    let mut h = [0u8; 20];
    pread(f, 0, &mut h, ctx)?;
    if &h[..4] != b"\x7fELF" {
        return Err(Error::corrupt(ctx, 0, "not an ELF file"));
    }
    Ok(arch_name(u16le(&h, 0x12)))
}

fn u16le(b: &[u8], a: usize) -> u16 {
    u16::from_le_bytes([b[a], b[a + 1]])
}
fn u32le(b: &[u8], a: usize) -> u32 {
    u32::from_le_bytes([b[a], b[a + 1], b[a + 2], b[a + 3]])
}
fn u64le(b: &[u8], a: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[a..a + 8]);
    u64::from_le_bytes(x)
}

fn pread(f: &dyn ReadAt, off: u64, buf: &mut [u8], ctx: &str) -> Result<()> {
    aff4::stream::read_exact_at(f, off, buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(ctx, off, "file ends inside an ELF structure"),
        _ => Error::io(format!("{ctx} at offset {off}"), e),
    })
}

/// Reads the program headers of a little-endian ELF64 file with positional reads.
///
/// # Errors
/// Not ELF64 little-endian, or headers outside the file.
pub fn program_headers(f: &dyn ReadAt, ctx: &str) -> Result<Vec<Phdr>> {
    let mut h = [0u8; EHDR];
    pread(f, 0, &mut h, ctx)?;
    if &h[..4] != b"\x7fELF" {
        return Err(Error::corrupt(ctx, 0, "not an ELF file"));
    }
    if h[4] != 2 || h[5] != 1 {
        return Err(Error::corrupt(ctx, 4, "only little-endian ELF64 cores are supported"));
    }
    let phoff = u64le(&h, 0x20);
    let phentsize = u16le(&h, 0x36) as usize;
    let phnum = u16le(&h, 0x38) as usize;
    if phentsize != PHDR {
        return Err(Error::corrupt(ctx, 0x36, format!("program header size {phentsize}, expected {PHDR}")));
    }
    if phnum == 0 || phnum > MAX_PHNUM {
        return Err(Error::corrupt(ctx, 0x38, format!("{phnum} program headers")));
    }
    let mut t = vec![0u8; phnum * PHDR];
    pread(f, phoff, &mut t, ctx)?;
    Ok(t.chunks_exact(PHDR)
        .map(|p| Phdr { p_type: u32le(p, 0), offset: u64le(p, 8), vaddr: u64le(p, 16), paddr: u64le(p, 24), filesz: u64le(p, 32) })
        .collect())
}

/// Parses the notes of every PT_NOTE segment.
///
/// # Errors
/// Notes outside the file or malformed.
pub fn notes(f: &dyn ReadAt, phdrs: &[Phdr], ctx: &str) -> Result<Vec<Note>> {
    let mut out = Vec::new();
    for p in phdrs.iter().filter(|p| p.p_type == PT_NOTE) {
        if p.filesz > MAX_NOTES {
            return Err(Error::corrupt(ctx, p.offset, format!("note segment of {} bytes", p.filesz)));
        }
        let mut b = vec![0u8; p.filesz as usize];
        pread(f, p.offset, &mut b, ctx)?;
        let mut at = 0usize;
        while at + 12 <= b.len() {
            let namesz = u32le(&b, at) as usize;
            let descsz = u32le(&b, at + 4) as usize;
            let n_type = u32le(&b, at + 8);
            let name_at = at + 12;
            let desc_at = name_at.checked_add(namesz.div_ceil(4) * 4).filter(|&x| x <= b.len());
            let Some(desc_at) = desc_at else { break };
            let Some(end) = desc_at.checked_add(descsz).filter(|&x| x <= b.len()) else { break };
            let name = String::from_utf8_lossy(&b[name_at..name_at + namesz]).trim_end_matches('\0').to_string();
            out.push(Note { name, n_type, desc: b[desc_at..end].to_vec() });
            at = desc_at + descsz.div_ceil(4) * 4;
            if namesz == 0 && descsz == 0 {
                break;
            }
        }
    }
    Ok(out)
}

/// The VMCOREINFO text among `notes`.
pub fn vmcoreinfo(notes: &[Note]) -> Option<String> {
    notes.iter().find(|n| n.name == "VMCOREINFO").map(|n| String::from_utf8_lossy(&n.desc).trim_end_matches('\0').to_string())
}

/// The layout of a new core: header bytes (ELF header, program headers, notes) and where
/// each range's bytes go.
pub struct CoreLayout {
    /// Bytes from offset 0.
    pub header: Vec<u8>,
    /// File offset of each range's data, in the order given.
    pub offsets: Vec<u64>,
    /// Total file size.
    pub size: u64,
}

/// Lays out an ELF core for `machine` (`e_machine`, e.g. [`EM_X86_64`]) with a PT_NOTE (if
/// `notes`) and one PT_LOAD per range (`p_paddr` = physical address, `p_vaddr` 0 as QEMU
/// writes), data page-aligned.
pub fn core_layout(ranges: &[Range], notes: &[Note], machine: u16) -> CoreLayout {
    let mut note_bytes = Vec::new();
    for n in notes {
        let name = format!("{}\0", n.name);
        note_bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
        note_bytes.extend_from_slice(&(n.desc.len() as u32).to_le_bytes());
        note_bytes.extend_from_slice(&n.n_type.to_le_bytes());
        note_bytes.extend_from_slice(name.as_bytes());
        note_bytes.resize(note_bytes.len().div_ceil(4) * 4, 0);
        note_bytes.extend_from_slice(&n.desc);
        note_bytes.resize(note_bytes.len().div_ceil(4) * 4, 0);
    }
    let phnum = ranges.len() + usize::from(!note_bytes.is_empty());
    let notes_off = (EHDR + phnum * PHDR) as u64;
    let mut pos = (notes_off + note_bytes.len() as u64).div_ceil(4096) * 4096;
    let mut offsets = Vec::with_capacity(ranges.len());
    for r in ranges {
        offsets.push(pos);
        pos += r.len();
    }
    let mut h = Vec::with_capacity(pos.min(1 << 20) as usize);
    h.extend_from_slice(b"\x7fELF\x02\x01\x01");
    h.resize(16, 0);
    h.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    h.extend_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // entry
    h.extend_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&(EHDR as u16).to_le_bytes());
    h.extend_from_slice(&(PHDR as u16).to_le_bytes());
    h.extend_from_slice(&(phnum.min(0xFFFF) as u16).to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    let mut ph = |t: u32, flags: u32, off: u64, vaddr: u64, paddr: u64, sz: u64, align: u64| {
        h.extend_from_slice(&t.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        for v in [off, vaddr, paddr, sz, sz, align] {
            h.extend_from_slice(&v.to_le_bytes());
        }
    };
    if !note_bytes.is_empty() {
        ph(PT_NOTE, 0, notes_off, 0, 0, note_bytes.len() as u64, 0);
    }
    for (r, off) in ranges.iter().zip(&offsets) {
        ph(PT_LOAD, 7, *off, 0, r.start, r.len(), 0);
    }
    h.extend_from_slice(&note_bytes);
    let hdr_end = offsets.first().copied().unwrap_or(pos);
    h.resize(hdr_end as usize, 0);
    CoreLayout { header: h, offsets, size: pos }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn layout_parses_back() {
        let ranges = [Range { start: 0x1000, end: 0x9f000 }, Range { start: 0x100000, end: 0x200000 }];
        let notes = [Note { name: "VMCOREINFO".into(), n_type: 0, desc: b"OSRELEASE=6.1\nPAGESIZE=4096\n".to_vec() }];
        let l = core_layout(&ranges, &notes, EM_X86_64);
        let mut file = l.header.clone();
        file.resize(l.size as usize, 0);
        let ph = program_headers(&file, "t").unwrap();
        assert_eq!(ph.len(), 3);
        assert_eq!(ph[1].paddr, 0x1000);
        assert_eq!(ph[2].offset, l.offsets[1]);
        assert_eq!(l.offsets[0] % 4096, 0);
        let n = super::notes(&file, &ph, "t").unwrap();
        assert_eq!(vmcoreinfo(&n).unwrap(), "OSRELEASE=6.1\nPAGESIZE=4096\n");
    }
    #[test]
    fn hostile_headers() {
        assert!(program_headers(&b"\x7fELF".to_vec(), "t").is_err());
        let mut f = core_layout(&[Range { start: 0, end: 4096 }], &[], EM_X86_64).header;
        f[0x38] = 0xff;
        f[0x39] = 0xff;
        assert!(program_headers(&f, "t").is_err());
    }
}
