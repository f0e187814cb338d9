//! The metadata of a memory Image, typed: acquisition writes it with
//! [`MemoryImageMeta::properties`] and every reader parses it with [`MemoryImageMeta::parse`],
//! so the property names and value spellings below are the only ones in the tree.

use crate::ranges::Range;
use aff4::rdf::{Graph, Node};
use aff4::vocab::AFF4;

/// Local names (in the AFF4 namespace) of the memory Image properties.
pub mod prop {
    /// Page size of the acquisition.
    pub const PAGE_SIZE: &str = "pageSize";
    /// Bytes of RAM in the ranges.
    pub const INSTALLED: &str = "memoryInstalledSize";
    /// One past the highest RAM address.
    pub const ADDRESSABLE: &str = "memoryAddressableSize";
    /// The RAM ranges, `0xSTART-0xEND,…` (half-open).
    pub const RANGES: &str = "memoryRanges";
    /// How the memory is laid out in the image ([`super::Layout`]).
    pub const FORMAT: &str = "memoryImageFormat";
    /// `NAME (KIND)` of the source read.
    pub const SOURCE: &str = "acquisitionSource";
    /// Pages that could not be read.
    pub const UNREADABLE_PAGES: &str = "unreadablePages";
    /// Where they are.
    pub const UNREADABLE_RANGES: &str = "unreadableRanges";
    /// Reads abandoned after the timeout.
    pub const TIMED_OUT_READS: &str = "timedOutReads";
    /// A note of the source on its view of memory (repeated).
    pub const NOTE: &str = "acquisitionNote";
    /// File offsets of the ELF layout's segments.
    pub const ELF_SEGMENT_OFFSETS: &str = "elfSegmentOffsets";
    /// CPU architecture (`x86_64`, `aarch64`).
    pub const ARCHITECTURE: &str = "architecture";
    /// `uname -r`.
    pub const KERNEL_RELEASE: &str = "kernelRelease";
    /// The kernel banner.
    pub const KERNEL_VERSION: &str = "kernelVersion";
    /// Host name.
    pub const HOSTNAME: &str = "hostname";
    /// Boot id.
    pub const BOOT_ID: &str = "bootId";
    /// KASLR offset (hex).
    pub const KASLR_OFFSET: &str = "kaslrOffset";
    /// phys_base (hex, may be negative).
    pub const PHYS_BASE: &str = "physBase";
    /// The VMCOREINFO logical file (IRI).
    pub const VMCOREINFO: &str = "vmcoreinfo";
    /// The read timeline logical file (IRI).
    pub const READ_TIMELINE: &str = "readTimeline";
    /// The second copies of pages the recheck found changed (IRI of a LiME file).
    pub const RECHECK_SECOND_READ: &str = "recheckSecondRead";
    /// Ranges read a second time.
    pub const RECHECKED_RANGES: &str = "recheckedRanges";
    /// Pages read a second time.
    pub const RECHECKED_PAGES: &str = "recheckedPages";
    /// Of them, pages of the kernel's page tables.
    pub const RECHECKED_TABLE_PAGES: &str = "recheckedPageTablePages";
    /// Pages whose second read differed.
    pub const RECHECK_CHANGED_PAGES: &str = "recheckChangedPages";
    /// Where they are.
    pub const RECHECK_CHANGED_RANGES: &str = "recheckChangedRanges";
    /// Pages unreadable the second time.
    pub const RECHECK_UNREADABLE_PAGES: &str = "recheckUnreadablePages";
    /// Seconds the second reads took.
    pub const RECHECK_SECONDS: &str = "recheckSeconds";
    /// Capture prerequisites that could not be read (`FILE: why; …`).
    pub const EXTRAS_MISSING: &str = "extrasMissing";
    /// Pagefiles that could not be captured (`FILE: why; …`).
    pub const PAGEFILES_MISSING: &str = "pagefilesMissing";
    /// A file mapped by a running process (or under /boot), captured beside the memory.
    pub const MAPPED_FILE: &str = "mappedFile";
    /// Mapped files listed but not captured (`PATH: why; …`).
    pub const MAPPED_FILES_SKIPPED: &str = "mappedFilesSkipped";
    /// On a mapped file: the PIDs that map it (comma-separated).
    pub const MAPPED_BY: &str = "mappedByPids";
    /// On a mapped file: the kernel said it was deleted from the disk.
    pub const DELETED: &str = "deletedFromDisk";
    /// On a mapped file: every path it is known by.
    pub const KNOWN_PATH: &str = "knownPath";
    /// On a mapped file: `MAJOR:MINOR:INODE` as /proc/PID/maps gives them.
    pub const DEVICE_INODE: &str = "deviceInode";
}

/// The full IRI of a property of [`prop`].
pub fn iri(local: &str) -> String {
    format!("{AFF4}{local}")
}

/// How the memory is laid out in the image's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A Map over physical addresses (holes and zero pages cost nothing).
    #[default]
    Map,
    /// An ELF core (PT_LOAD per range with p_paddr, VMCOREINFO note).
    Elf,
    /// The padded physical address space stored in full.
    Raw,
}

impl Layout {
    /// Every layout, in the order shown to users.
    pub const ALL: [Layout; 3] = [Layout::Map, Layout::Elf, Layout::Raw];

    /// The name recorded and accepted (`map`, `elf`, `raw`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Map => "map",
            Layout::Elf => "elf",
            Layout::Raw => "raw",
        }
    }

    /// The layout named `s`.
    pub fn from_name(s: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// What a recheck after the main pass found (see `memacq::recheck`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recheck {
    /// The ranges rechecked (besides the page tables).
    pub ranges: Vec<Range>,
    /// Pages of the kernel's page tables rechecked too, when they were looked for and found.
    pub table_pages: Option<u64>,
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

/// A memory Image's own metadata (besides the provenance every image has).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryImageMeta {
    /// Page size.
    pub page_size: Option<u64>,
    /// Bytes of RAM.
    pub installed: Option<u64>,
    /// One past the highest RAM address.
    pub addressable: Option<u64>,
    /// The RAM ranges.
    pub ranges: Option<Vec<Range>>,
    /// The layout.
    pub layout: Option<Layout>,
    /// `NAME (KIND)` of the source.
    pub source: Option<String>,
    /// Pages that could not be read.
    pub unreadable_pages: Option<u64>,
    /// Where they are.
    pub unreadable_ranges: Vec<Range>,
    /// Reads abandoned after the timeout.
    pub timed_out_reads: Option<u64>,
    /// The source's notes on its view of memory.
    pub notes: Vec<String>,
    /// File offsets of the ELF layout's segments.
    pub elf_segment_offsets: Vec<u64>,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// `uname -r`.
    pub kernel_release: Option<String>,
    /// The kernel banner.
    pub kernel_version: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// Boot id.
    pub boot_id: Option<String>,
    /// KASLR offset (`0x…`).
    pub kaslr_offset: Option<String>,
    /// phys_base (`0x…` or `-0x…`).
    pub phys_base: Option<String>,
    /// The recheck's findings.
    pub recheck: Option<Recheck>,
}

/// `0xSTART-0xEND,…`.
pub fn format_ranges(v: &[Range]) -> String {
    v.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(",")
}

/// Parses [`format_ranges`]' text; `None` for anything malformed (an end before its start too).
pub fn parse_ranges(s: &str) -> Option<Vec<Range>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (a, b) = p.trim().split_once('-')?;
            let h = |x: &str| u64::from_str_radix(x.trim().trim_start_matches("0x"), 16).ok();
            let r = Range { start: h(a)?, end: h(b)? };
            (r.start <= r.end).then_some(r)
        })
        .collect()
}

impl MemoryImageMeta {
    /// The string-valued facts, each with its property and its `information.yaml` key.
    pub fn facts(&self) -> [(&'static str, &'static str, Option<&str>); 7] {
        [
            (prop::ARCHITECTURE, "Architecture", self.architecture.as_deref()),
            (prop::KERNEL_RELEASE, "KernelRelease", self.kernel_release.as_deref()),
            (prop::KERNEL_VERSION, "KernelVersion", self.kernel_version.as_deref()),
            (prop::HOSTNAME, "Hostname", self.hostname.as_deref()),
            (prop::BOOT_ID, "BootId", self.boot_id.as_deref()),
            (prop::KASLR_OFFSET, "KASLROffset", self.kaslr_offset.as_deref()),
            (prop::PHYS_BASE, "PhysBase", self.phys_base.as_deref()),
        ]
    }

    /// The properties to record on the Image.
    pub fn properties(&self) -> Vec<(String, Node)> {
        let mut v = Vec::new();
        let mut long = |p: &str, n: Option<u64>| {
            if let Some(n) = n {
                v.push((iri(p), Node::long(n)));
            }
        };
        long(prop::PAGE_SIZE, self.page_size);
        long(prop::INSTALLED, self.installed);
        long(prop::ADDRESSABLE, self.addressable);
        if let Some(r) = &self.ranges {
            v.push((iri(prop::RANGES), Node::string(format_ranges(r))));
        }
        if let Some(l) = self.layout {
            v.push((iri(prop::FORMAT), Node::string(l.name())));
        }
        if let Some(s) = &self.source {
            v.push((iri(prop::SOURCE), Node::string(s.clone())));
        }
        let mut long = |p: &str, n: Option<u64>| {
            if let Some(n) = n {
                v.push((iri(p), Node::long(n)));
            }
        };
        long(prop::UNREADABLE_PAGES, self.unreadable_pages);
        long(prop::TIMED_OUT_READS, self.timed_out_reads);
        if !self.unreadable_ranges.is_empty() {
            v.push((iri(prop::UNREADABLE_RANGES), Node::string(format_ranges(&self.unreadable_ranges))));
        }
        for (p, _, val) in self.facts() {
            if let Some(val) = val {
                v.push((iri(p), Node::string(val)));
            }
        }
        for n in &self.notes {
            v.push((iri(prop::NOTE), Node::string(n.clone())));
        }
        if let Some(r) = &self.recheck {
            v.push((iri(prop::RECHECKED_RANGES), Node::string(format_ranges(&r.ranges))));
            v.push((iri(prop::RECHECKED_PAGES), Node::long(r.pages)));
            if let Some(n) = r.table_pages {
                v.push((iri(prop::RECHECKED_TABLE_PAGES), Node::long(n)));
            }
            v.push((iri(prop::RECHECK_CHANGED_PAGES), Node::long(r.changed_pages)));
            v.push((iri(prop::RECHECK_CHANGED_RANGES), Node::string(format_ranges(&r.changed))));
            v.push((iri(prop::RECHECK_UNREADABLE_PAGES), Node::long(r.unreadable_pages)));
            v.push((iri(prop::RECHECK_SECONDS), Node::string(format!("{:.3}", r.seconds))));
        }
        if !self.elf_segment_offsets.is_empty() {
            let o = self.elf_segment_offsets.iter().map(|o| format!("{o:#x}")).collect::<Vec<_>>().join(",");
            v.push((iri(prop::ELF_SEGMENT_OFFSETS), Node::string(o)));
        }
        v
    }

    /// Reads what `g` records of `image` (values that do not parse are left out).
    pub fn parse(g: &Graph, image: &str) -> MemoryImageMeta {
        let s = |p: &str| g.aff4(image, p).map(|n| n.value().to_string());
        let n = |p: &str| g.aff4(image, p).and_then(Node::as_u64);
        let list = |p: &str| s(p).and_then(|t| parse_ranges(&t));
        let recheck = n(prop::RECHECKED_PAGES).map(|pages| Recheck {
            ranges: list(prop::RECHECKED_RANGES).unwrap_or_default(),
            table_pages: n(prop::RECHECKED_TABLE_PAGES),
            pages,
            changed_pages: n(prop::RECHECK_CHANGED_PAGES).unwrap_or(0),
            changed: list(prop::RECHECK_CHANGED_RANGES).unwrap_or_default(),
            unreadable_pages: n(prop::RECHECK_UNREADABLE_PAGES).unwrap_or(0),
            seconds: s(prop::RECHECK_SECONDS).and_then(|t| t.parse().ok()).unwrap_or(0.0),
        });
        MemoryImageMeta {
            page_size: n(prop::PAGE_SIZE),
            installed: n(prop::INSTALLED),
            addressable: n(prop::ADDRESSABLE),
            ranges: list(prop::RANGES),
            layout: s(prop::FORMAT).and_then(|t| Layout::from_name(&t)),
            source: s(prop::SOURCE),
            unreadable_pages: n(prop::UNREADABLE_PAGES),
            unreadable_ranges: list(prop::UNREADABLE_RANGES).unwrap_or_default(),
            timed_out_reads: n(prop::TIMED_OUT_READS),
            notes: g.values(image, &iri(prop::NOTE)).map(|n| n.value().to_string()).collect(),
            elf_segment_offsets: s(prop::ELF_SEGMENT_OFFSETS)
                .map(|t| t.split(',').filter_map(|o| u64::from_str_radix(o.trim().trim_start_matches("0x"), 16).ok()).collect())
                .unwrap_or_default(),
            architecture: s(prop::ARCHITECTURE),
            kernel_release: s(prop::KERNEL_RELEASE),
            kernel_version: s(prop::KERNEL_VERSION),
            hostname: s(prop::HOSTNAME),
            boot_id: s(prop::BOOT_ID),
            kaslr_offset: s(prop::KASLR_OFFSET),
            phys_base: s(prop::PHYS_BASE),
            recheck,
        }
    }

    /// The IRI of a logical file the Image links to (`prop::VMCOREINFO`, `prop::READ_TIMELINE`, …).
    pub fn link<'g>(g: &'g Graph, image: &str, local: &str) -> Option<&'g str> {
        g.aff4(image, local).and_then(Node::as_iri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_parses_back() {
        let m = MemoryImageMeta {
            page_size: Some(4096),
            installed: Some(1 << 30),
            addressable: Some(0x1_4000_0000),
            ranges: Some(vec![Range { start: 0x1000, end: 0x9f000 }, Range { start: 0x100000, end: 0x1_4000_0000 }]),
            layout: Some(Layout::Elf),
            source: Some("/proc/kcore (kcore)".into()),
            unreadable_pages: Some(2),
            unreadable_ranges: vec![Range { start: 0x5000, end: 0x7000 }],
            timed_out_reads: Some(0),
            notes: vec!["a".into(), "b".into()],
            elf_segment_offsets: vec![0x1000, 0x9f000],
            architecture: Some("x86_64".into()),
            kernel_release: Some("6.1.0-28-amd64".into()),
            kernel_version: None,
            hostname: Some("guest".into()),
            boot_id: None,
            kaslr_offset: Some("0x1c000000".into()),
            phys_base: Some("-0x1000".into()),
            recheck: Some(Recheck {
                ranges: vec![Range { start: 0x1000000, end: 0x2000000 }],
                table_pages: Some(101),
                pages: 4096,
                changed_pages: 3,
                changed: vec![Range { start: 0x1001000, end: 0x1004000 }],
                unreadable_pages: 0,
                seconds: 0.25,
            }),
        };
        let mut g = Graph::new();
        for (p, o) in m.properties() {
            g.add("aff4://img", &p, o);
        }
        assert_eq!(MemoryImageMeta::parse(&g, "aff4://img"), m);
        assert_eq!(MemoryImageMeta::parse(&g, "aff4://other"), MemoryImageMeta::default());
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in ["0x10", "0x10-", "zz-0x10", "0x20-0x10", "0x1-0x2,,x"] {
            assert_eq!(parse_ranges(bad), None, "{bad}");
        }
        assert_eq!(parse_ranges(""), Some(vec![]));
    }
}
