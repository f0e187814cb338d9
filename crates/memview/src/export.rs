//! Memory images out of AFF4: the physical view of a memory Image (whatever its layout) and
//! writers for raw (padded), ELF core and LiME files, read on all cores.

use crate::error::Result;
use aff4::map::RegionKind;
use aff4::stream::{Stream, StreamAsReadAt};
use aff4::symbolic::Symbolic;
use memformat::elf::{self, core_layout, Note};
use memformat::meta::{prop, Layout, MemoryImageMeta};
use memformat::ranges::{self, Range};
use memformat::segments::{Segment, SegmentTable};

use crate::sparse::HoleWrite;
use aff4::Container;
use std::sync::Arc;

/// Output formats of a memory image (files written by `pmem export`, served by `pmem mount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The physical address space, holes as zeros.
    Raw,
    /// ELF core, PT_LOAD per range, VMCOREINFO note.
    Elf,
    /// LiME.
    Lime,
}

impl ExportFormat {
    /// Every format, in the order offered to users (the first is the default).
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Raw, ExportFormat::Elf, ExportFormat::Lime];

    /// The name users give and the file extension written (`raw`, `elf`, `lime`).
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Raw => "raw",
            ExportFormat::Elf => "elf",
            ExportFormat::Lime => "lime",
        }
    }

    /// For `--help`: what a file in this format is.
    pub fn describe(self) -> &'static str {
        match self {
            ExportFormat::Raw => "the linear bytes (memory: the physical address space, holes as zeros)",
            ExportFormat::Elf => "memory images only: an ELF core with a PT_LOAD per RAM range and the VMCOREINFO note",
            ExportFormat::Lime => "memory images only: LiME",
        }
    }
}

/// The physical view of a memory image: reads by physical address.
pub struct MemoryView {
    stream: Arc<dyn Stream>,
    segs: Option<SegmentTable>,
    /// RAM ranges.
    pub ranges: Vec<Range>,
    /// VMCOREINFO, if captured.
    pub vmcoreinfo: Option<String>,
    /// The ELF `e_machine` of the memory's architecture (x86-64 when the volume does not say).
    pub machine: u16,
    size: u64,
    /// Physical ranges the map declares as zeros (gaps, aff4:Zero): written as holes, never read.
    zero: Vec<Range>,
}

impl MemoryView {
    /// Opens the physical view of `image` (a memory Image URN, or a map/stream URN).
    ///
    /// # Errors
    /// The image or its data cannot be opened.
    pub fn open(c: &Container, image: &str) -> Result<MemoryView> {
        let g = c.graph();
        let data_urn = g.aff4(image, "dataStream").and_then(|n| n.as_iri()).map(String::from).unwrap_or_else(|| image.to_string());
        let stream = c.open_stream(image)?;
        let meta = MemoryImageMeta::parse(g, image);
        let vmcoreinfo = match MemoryImageMeta::link(g, image, prop::VMCOREINFO) {
            Some(u) => c.open_stream(u).ok().and_then(|s| s.read_all(16 << 20).ok()).map(|b| String::from_utf8_lossy(&b).into_owned()),
            None => None,
        };
        let machine = meta.architecture.as_deref().and_then(elf::machine_of).unwrap_or(elf::EM_X86_64);
        // An ELF core also when the metadata that says so was lost (a recovered in-place image).
        let mut magic = [0u8; 4];
        let elf_magic = meta.layout.is_none() && stream.read_at(0, &mut magic).is_ok_and(|n| n == 4) && &magic == b"\x7fELF";
        if meta.layout == Some(Layout::Elf) || elf_magic {
            let ra = StreamAsReadAt(stream.clone());
            let ph = elf::program_headers(&ra, image)?;
            let notes = elf::notes(&ra, &ph, image).unwrap_or_default();
            let segs: Vec<Segment> = ph
                .iter()
                .filter(|p| p.p_type == elf::PT_LOAD && p.paddr != u64::MAX)
                .map(|p| Segment { phys: p.paddr, len: p.filesz, file_off: p.offset })
                .collect();
            let table = SegmentTable::new(segs);
            let ranges = table.coverage();
            let size = ranges.last().map(|r| r.end).unwrap_or(0);
            let machine = elf::architecture(&ra, image).ok().flatten().and_then(elf::machine_of).unwrap_or(machine);
            return Ok(MemoryView {
                stream,
                segs: Some(table),
                ranges,
                vmcoreinfo: vmcoreinfo.or_else(|| elf::vmcoreinfo(&notes)),
                machine,
                size,
                zero: Vec::new(),
            });
        }
        let ranges = match meta.ranges {
            Some(r) => r,
            None => match c.open_map(&data_urn) {
                // Foreign images: the regions mapped to real data.
                Ok(m) => {
                    let targets = m.target_urns().to_vec();
                    ranges::merge(
                        m.regions()
                            .into_iter()
                            .filter(|r| matches!(&r.kind, RegionKind::Mapped(t) if Symbolic::from_iri(&targets[*t as usize]) != Some(Symbolic::Constant(0))))
                            .map(|r| Range { start: r.start, end: r.start + r.length })
                            .collect(),
                    )
                }
                Err(_) => vec![Range { start: 0, end: stream.size() }],
            },
        };
        let size = stream.size();
        let zero = zero_ranges(c, &data_urn);
        Ok(MemoryView { stream, segs: None, ranges, vmcoreinfo, machine, size, zero })
    }

    /// The physical view of memory read through `stream` by physical address (live memory):
    /// its RAM `ranges`, VMCOREINFO and ELF `machine`.
    pub fn of_physical(stream: Arc<dyn Stream>, ranges: Vec<Range>, vmcoreinfo: Option<String>, machine: u16) -> MemoryView {
        let size = stream.size();
        MemoryView { stream, segs: None, ranges, vmcoreinfo, machine, size, zero: Vec::new() }
    }

    /// The memory image in `c`: the one typed aff4:MemoryImage (or with category memory:physical).
    ///
    /// # Errors
    /// None or several memory images (several: `aff4::Error::Unsupported`, the caller's choice).
    pub fn find(c: &Container) -> aff4::Result<String> {
        let mem: Vec<String> = c.images().into_iter().filter(|i| i.memory).map(|i| i.urn).collect();
        match mem.len() {
            1 => Ok(mem[0].clone()),
            0 => c.default_stream(),
            _ => Err(aff4::Error::Unsupported(format!("{} memory images in the volume; choose one: {}", mem.len(), mem.join(", ")))),
        }
    }
}

impl Stream for MemoryView {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> aff4::Result<usize> {
        match &self.segs {
            None => self.stream.read_at(offset, buf),
            Some(t) => {
                if offset >= self.size {
                    return Ok(0);
                }
                let n = (buf.len() as u64).min(self.size - offset) as usize;
                let mut done = 0;
                while done < n {
                    let phys = offset + done as u64;
                    match t.lookup(phys) {
                        Some((off, avail)) => {
                            let k = (avail as usize).min(n - done);
                            self.stream.read_exact_at(off, &mut buf[done..done + k])?;
                            done += k;
                        }
                        None => {
                            // A hole between segments reads as zeros.
                            let next = self.ranges.iter().map(|r| r.start).filter(|&s| s > phys).min().unwrap_or(self.size);
                            let k = ((next - phys) as usize).min(n - done);
                            buf[done..done + k].fill(0);
                            done += k;
                        }
                    }
                }
                Ok(n)
            }
        }
    }
    fn describe(&self) -> String {
        self.stream.describe()
    }
}

/// One piece of a formatted memory file: literal bytes (headers) or a run of physical memory.
enum Part {
    Bytes(Vec<u8>),
    Memory { phys: u64, len: u64 },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::Memory { len, .. } => *len,
        }
    }
}

/// A memory image as a raw, ELF-core or LiME file, generated by random access from the
/// physical view (never copied): what `pmem export` writes and `pmem mount` serves.
pub struct FormattedMemory {
    view: Arc<MemoryView>,
    /// Each part with its offset in the file, ascending.
    parts: Vec<(u64, Part)>,
    size: u64,
    name: String,
}

impl FormattedMemory {
    /// Lays out `view` as a file in `format`.
    pub fn new(view: Arc<MemoryView>, format: ExportFormat) -> FormattedMemory {
        let mut parts: Vec<Part> = Vec::new();
        match format {
            ExportFormat::Raw => {
                let end = view.ranges.last().map(|r| r.end).unwrap_or(0);
                parts.push(Part::Memory { phys: 0, len: end });
            }
            ExportFormat::Elf => {
                let notes: Vec<Note> =
                    view.vmcoreinfo.iter().map(|t| Note { name: "VMCOREINFO".into(), n_type: 0, desc: t.as_bytes().to_vec() }).collect();
                parts.push(Part::Bytes(core_layout(&view.ranges, &notes, view.machine).header));
                parts.extend(view.ranges.iter().map(|r| Part::Memory { phys: r.start, len: r.len() }));
            }
            ExportFormat::Lime => {
                for r in &view.ranges {
                    parts.push(Part::Bytes(memformat::lime::header(r).to_vec()));
                    parts.push(Part::Memory { phys: r.start, len: r.len() });
                }
            }
        }
        let mut pos = 0u64;
        let parts: Vec<(u64, Part)> = parts
            .into_iter()
            .filter(|p| p.len() > 0)
            .map(|p| {
                let at = pos;
                pos += p.len();
                (at, p)
            })
            .collect();
        let name = format!("{} as {format:?}", view.describe());
        FormattedMemory { view, parts, size: pos, name }
    }

    /// The file as runs `(offset, length, zero)`: `zero` runs are ranges the map declares as
    /// zeros, which an export leaves as holes without reading them.
    pub fn runs(&self) -> Vec<(u64, u64, bool)> {
        let mut out: Vec<(u64, u64, bool)> = Vec::new();
        let mut push = |at: u64, len: u64, zero: bool| {
            if len == 0 {
                return;
            }
            match out.last_mut() {
                Some(l) if l.2 == zero && l.0 + l.1 == at => l.1 += len,
                _ => out.push((at, len, zero)),
            }
        };
        for (at, part) in &self.parts {
            match part {
                Part::Bytes(b) => push(*at, b.len() as u64, false),
                Part::Memory { phys, len } => split_runs(&self.view.zero, *phys, *len, &mut |off, n, z| push(at + (off - phys), n, z)),
            }
        }
        out
    }

    /// Bytes an export must really write (the rest are holes).
    pub fn data_bytes(&self) -> u64 {
        self.runs().iter().filter(|r| !r.2).map(|r| r.1).sum()
    }
}

impl Stream for FormattedMemory {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> aff4::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset) as usize;
        let mut i = self.parts.partition_point(|(at, _)| *at <= offset).saturating_sub(1);
        let mut done = 0;
        while done < n {
            let Some((at, part)) = self.parts.get(i) else { break };
            let within = offset + done as u64 - at;
            let k = ((part.len() - within) as usize).min(n - done);
            match part {
                Part::Bytes(b) => buf[done..done + k].copy_from_slice(&b[within as usize..within as usize + k]),
                Part::Memory { phys, .. } => self.view.read_exact_at(phys + within, &mut buf[done..done + k])?,
            }
            done += k;
            i += 1;
        }
        Ok(done)
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Writes the view in `format` to `out`, leaving the ranges the map declares as zeros as
/// holes without reading them; returns the file's length.
///
/// # Errors
/// Read errors in the image or write errors.
pub fn write(view: Arc<MemoryView>, format: ExportFormat, out: &mut dyn HoleWrite, threads: usize) -> Result<u64> {
    write_formatted(&FormattedMemory::new(view, format), out, threads)
}

/// Writes a laid-out file (see [`write`]).
///
/// # Errors
/// Read errors in the image or write errors.
pub fn write_formatted(file: &FormattedMemory, out: &mut dyn HoleWrite, threads: usize) -> Result<u64> {
    write_runs(file, &file.runs(), out, threads)
}

/// Writes `runs` `(offset, length, zero)` of `stream`: zero runs as holes, the rest read on
/// `threads` threads; returns the stream's size.
fn write_runs(stream: &dyn Stream, runs: &[(u64, u64, bool)], out: &mut dyn HoleWrite, threads: usize) -> Result<u64> {
    for &(at, len, zero) in runs {
        if zero {
            out.skip(len).map_err(|e| aff4::Error::io("output", e))?;
        } else {
            aff4::parallel::for_each_block(stream, at, len, aff4::parallel::BLOCK, threads, |_, b| {
                out.write_all(b).map_err(|e| aff4::Error::io("output", e))
            })?;
        }
    }
    Ok(stream.size())
}

/// The ranges of stream `urn` (a Map, or an Image whose data stream is one) that its map
/// declares as zeros: gaps (with a zero gap stream) and entries to aff4:Zero, in order.
pub fn zero_ranges(c: &Container, urn: &str) -> Vec<Range> {
    let g = c.graph();
    let data = g.aff4(urn, "dataStream").and_then(|n| n.as_iri()).unwrap_or(urn).to_string();
    let Ok(m) = c.open_map(&data) else { return Vec::new() };
    let targets = m.target_urns().to_vec();
    let gap_zero =
        g.aff4(&data, "mapGapDefaultStream").and_then(|n| n.as_iri()).is_none_or(|i| Symbolic::from_iri(i) == Some(Symbolic::Constant(0)));
    m.regions()
        .into_iter()
        .filter(|r| match &r.kind {
            RegionKind::Gap => gap_zero,
            RegionKind::Mapped(t) => targets.get(*t as usize).and_then(|t| Symbolic::from_iri(t)) == Some(Symbolic::Constant(0)),
        })
        .map(|r| Range { start: r.start, end: r.start + r.length })
        .collect()
}

/// Splits `[start, start+len)` by the sorted `zero` ranges, calling `f(offset, length, zero)`.
fn split_runs(zero: &[Range], start: u64, len: u64, f: &mut dyn FnMut(u64, u64, bool)) {
    let end = start + len;
    let mut pos = start;
    let first = zero.partition_point(|z| z.end <= pos);
    for z in &zero[first..] {
        if z.start >= end {
            break;
        }
        let (zs, ze) = (z.start.max(pos), z.end.min(end));
        if zs > pos {
            f(pos, zs - pos, false);
        }
        if ze > zs {
            f(zs, ze - zs, true);
        }
        pos = ze;
    }
    if end > pos {
        f(pos, end - pos, false);
    }
}

/// Bytes of `[0, size)` outside the `zero` ranges: what writing the stream really costs.
pub fn data_bytes(zero: &[Range], size: u64) -> u64 {
    let mut n = 0;
    split_runs(zero, 0, size, &mut |_, len, z| {
        if !z {
            n += len;
        }
    });
    n
}

/// Writes all of `stream` to `out`, its `zero` ranges as holes (never read); returns its size.
///
/// # Errors
/// Read errors in the image or write errors.
pub fn write_stream(stream: &dyn Stream, zero: &[Range], out: &mut dyn HoleWrite, threads: usize) -> Result<u64> {
    let mut runs = Vec::new();
    split_runs(zero, 0, stream.size(), &mut |a, n, z| runs.push((a, n, z)));
    write_runs(stream, &runs, out, threads)
}
