//! Acquisition: reads every range of a source in blocks, retries a failed block page by page,
//! maps pages that stay unreadable to `aff4:UnreadableData` (never aborting), and feeds the
//! AFF4 imaging pipeline. Then it records the memory Image with its metadata, the
//! information.yaml pmem tools write, and the files analysts need (kallsyms, BTF, System.map…).

use crate::error::Result;
use crate::source::PhysicalSource;
use aff4::capture::{Block, Capture, Input, Observer, Plan, Read as CaptureRead, RetryPolicy};
use aff4::imager::{Ending, ImagerOptions, ImagerResult};
use aff4::logical::{add_file, FileTimes};
use aff4::rdf::Node;
use aff4::vocab::{self, AFF4};
use aff4::volume::write::VolumeWriter;
use memformat::elf::{core_layout, Note};
use memformat::meta::{self, prop, MemoryImageMeta};
use memformat::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The Image types of a memory image.
const MEMORY_TYPES: [&str; 3] = [vocab::IMAGE, vocab::MEMORY_IMAGE, vocab::DISCONTIGUOUS_IMAGE];

/// Page size used for retries and unreadable accounting.
pub const PAGE: u64 = 4096;

/// How the memory is laid out in the volume.
pub use memformat::meta::Layout as Format;

/// Acquisition settings.
#[derive(Debug, Clone)]
pub struct AcquireOptions {
    /// Imaging pipeline settings.
    pub imager: ImagerOptions,
    /// Hashes of the logical files captured beside the memory (VMCOREINFO, the extras).
    pub file_hashes: Vec<aff4::HashAlgo>,
    /// Output layout.
    pub format: Format,
    /// Capture the analysis prerequisites (kallsyms, iomem, BTF, …).
    pub extras: bool,
    /// More files (globs expanded by the caller).
    pub extra_files: Vec<String>,
    /// Read block size; None: 512 KiB where the compression threads read (a source whose
    /// reads may overlap: each block stays in its core's cache, and its sixteen chunks are
    /// hashed together, see `aff4::hash::sha256_each`), else 1 MiB (one reader).
    pub block: Option<usize>,
    /// A read that takes longer is abandoned and its pages recorded as unreadable.
    pub read_timeout: Option<std::time::Duration>,
    /// Pagefiles and swap to capture beside the memory (`-p`).
    pub pagefiles: Vec<crate::pagefile::PagefileSpec>,
    /// Ranges to read again after the main pass, to record what changed while we read (see
    /// [`crate::recheck`]); with `recheck_keep`, the second copies of changed pages are kept.
    pub recheck: Vec<Range>,
    /// Keep the second copies of pages the recheck found changed (as a LiME file).
    pub recheck_keep: bool,
    /// Also recheck the pages of the kernel's own page tables (x86-64, found through VMCOREINFO).
    pub recheck_page_tables: bool,
    /// Capture the files mapped by running processes and the whole /boot (live Linux sources
    /// only), within these limits; None: not at all.
    pub mapped_files: Option<crate::mapped::Limits>,
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions {
            // Memory cannot be read again to compare with a linear hash: block hashes (on every
            // core) and the Block-Map hash prove that the image has not changed since capture.
            imager: ImagerOptions { hashes: Vec::new(), block_hashes: vec![aff4::HashAlgo::Sha256], ..ImagerOptions::default() },
            file_hashes: vec![aff4::HashAlgo::Sha256],
            format: Format::Map,
            extras: true,
            extra_files: Vec::new(),
            block: None,
            read_timeout: Some(std::time::Duration::from_secs(30)),
            pagefiles: Vec::new(),
            recheck: Vec::new(),
            recheck_keep: false,
            recheck_page_tables: false,
            mapped_files: Some(crate::mapped::Limits::default()),
        }
    }
}

/// What an acquisition did.
#[derive(Debug, Clone)]
pub struct AcquireReport {
    /// Source name.
    pub source: String,
    /// Source kind.
    pub source_kind: String,
    /// The memory Image URN.
    pub image: String,
    /// Ranges acquired.
    pub ranges: Vec<Range>,
    /// Bytes of RAM read (or attempted).
    pub ram_bytes: u64,
    /// Pages that could not be read.
    pub unreadable_pages: u64,
    /// The source's notes on its view of memory ([`PhysicalSource::notes`]), recorded as aff4:acquisitionNote.
    pub notes: Vec<String>,
    /// Unreadable runs (start, length).
    pub unreadable: Vec<Range>,
    /// Imaging result.
    pub result: ImagerResult,
    /// Extra files captured (name, size).
    pub extras: Vec<(String, u64)>,
    /// Extra files that were not there (name, why).
    pub missing: Vec<(String, String)>,
    /// Mapped files and /boot files captured (name, size, deleted).
    pub mapped: Vec<(String, u64, bool)>,
    /// Mapped files listed but not captured (path, why).
    pub mapped_skipped: Vec<(String, String)>,
    /// Kernel release.
    pub kernel_release: Option<String>,
    /// Stopped early by a signal.
    pub interrupted: bool,
    /// Reads abandoned after the timeout.
    pub timed_out_reads: u64,
    /// Writing the volume failed (a full disk): the memory image was closed with what had been
    /// stored, the rest recorded as aff4:UnknownData.
    pub write_error: Option<String>,
    /// Pagefiles captured.
    pub pagefiles: Vec<crate::pagefile::PagefileReport>,
    /// Pagefiles that could not be captured (name, why).
    pub pagefile_errors: Vec<(String, String)>,
    /// What the recheck after the main pass found (when ranges were given).
    pub recheck: Option<crate::recheck::RecheckReport>,
}

/// Facts about the running system (live sources only).
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    /// uname -r.
    pub release: Option<String>,
    /// /proc/version (the kernel banner).
    pub banner: Option<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// Boot id.
    pub boot_id: Option<String>,
}

impl SystemInfo {
    /// Reads them from /proc.
    pub fn live() -> Self {
        let r = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        SystemInfo {
            release: r("/proc/sys/kernel/osrelease"),
            banner: r("/proc/version"),
            hostname: r("/proc/sys/kernel/hostname"),
            boot_id: r("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// A `KEY=value` of VMCOREINFO text.
pub fn vmcoreinfo_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(|s| s.trim().to_string())
}

/// The files captured by default for a kernel `release`.
pub fn default_extras(release: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = ["/proc/kallsyms", "/proc/iomem", "/proc/modules", "/proc/cmdline", "/sys/kernel/btf/vmlinux"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(r) = release {
        v.push(format!("/boot/System.map-{r}"));
        v.push(format!("/boot/config-{r}"));
        v.push(format!("/boot/vmlinuz-{r}"));
    }
    v
}

/// What [`acquire`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Bytes of RAM read so far, and pages found unreadable.
    Memory {
        /// Bytes read.
        done: u64,
        /// Unreadable pages so far.
        unreadable_pages: u64,
    },
    /// Bytes of a pagefile read so far.
    Pagefile {
        /// Its name as given.
        name: &'a str,
        /// Its number (the order given).
        number: u64,
        /// Bytes read.
        done: u64,
    },
}

/// Appends `[start, start+len)` to sorted `ranges`, joining it to the last one when they touch.
fn add_range(ranges: &mut Vec<Range>, start: u64, len: u64) {
    match ranges.last_mut() {
        Some(l) if l.end == start => l.end = start + len,
        _ => ranges.push(Range { start, end: start + len }),
    }
}

/// The member an in-place image of source `name` is stored as: the source's path escaped into
/// one name with the layout as extension (`proc%2Fkcore.raw`), numbered when the volume
/// already has one (an append).
fn in_place_name(vol: &VolumeWriter, name: &str, ext: &str) -> String {
    let base = aff4::urn::escape_name(name.trim_start_matches(['/', '\\']));
    let taken = |n: &str| !vol.graph().properties(&aff4::urn::member_to_urn(vol.urn(), n)).is_empty();
    let mut candidate = format!("{base}.{ext}");
    let mut k = 2;
    while taken(&candidate) {
        candidate = format!("{base}-{k}.{ext}");
        k += 1;
    }
    candidate
}

/// A physical-memory source as the capture engine's input.
struct Physical(Arc<dyn PhysicalSource>);

impl aff4::stream::ReadAt for Physical {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(offset, buf).map(|()| buf.len())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.0.ranges().last().map(|r| r.end).unwrap_or(0))
    }
    fn concurrent_reads(&self) -> bool {
        self.0.concurrent_reads()
    }
}

/// The blocks of a memory acquisition: each range in blocks (see [`AcquireOptions::block`])
/// ending on page boundaries, placed at its physical address (or its ELF segment's offset). RAM
/// the source says it cannot map is one block that is not read: however large, it costs nothing.
fn memory_plan(src: &dyn PhysicalSource, ranges: &[Range], opts: &AcquireOptions, elf_offsets: &[u64]) -> Vec<Block> {
    let unmapped = src.unmapped();
    let in_place = matches!(opts.format, Format::Raw | Format::Elf);
    let block = opts.block.unwrap_or(if src.concurrent_reads() && !in_place { 512 << 10 } else { 1 << 20 });
    let mut plan = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let at = |phys: u64| match opts.format {
            Format::Elf => elf_offsets[i] + (phys - r.start),
            _ => phys,
        };
        let mut pieces: Vec<(Range, bool)> =
            memformat::ranges::subtract(std::slice::from_ref(r), &unmapped).into_iter().map(|m| (m, true)).collect();
        pieces.extend(unmapped.iter().filter_map(|u| r.intersect(u)).map(|u| (u, false)));
        pieces.sort_by_key(|(x, _)| x.start);
        for (piece, mapped) in pieces {
            if mapped {
                plan.extend(aff4::capture::blocks(piece.start, piece.end, at(piece.start), block as u64, PAGE));
            } else {
                plan.push(Block { src: piece.start, len: piece.len(), at: at(piece.start), readable: false });
            }
        }
    }
    plan
}

/// What a memory acquisition records as it reads: when (the read timeline), what the recheck
/// compares against, and progress.
struct MemoryObserver<'p> {
    timeline: memformat::timeline::Timeline,
    first_pass: crate::recheck::FirstPass,
    progress: &'p mut dyn for<'x> FnMut(Progress<'x>),
}

impl Observer for MemoryObserver<'_> {
    fn wants_data(&self, src: u64, len: u64) -> bool {
        self.first_pass.wants(src, len)
    }
    fn data(&mut self, src: u64, data: &[u8]) {
        self.first_pass.note(src, data);
    }
    fn block(&mut self, src: u64, len: u64, submitted: Instant, done: Instant) {
        self.timeline.record(src, len, submitted, done);
    }
    fn progress(&mut self, done: u64, unreadable_pages: u64) {
        (self.progress)(Progress::Memory { done, unreadable_pages });
    }
}

/// Acquires `src` into `vol`. `progress` is called as blocks of memory, then of each
/// pagefile, complete; setting `stop` ends the acquisition early with what was read (the rest
/// recorded as `aff4:UnknownData`).
///
/// # Errors
/// Only failures to write the volume; read failures become UnreadableData.
pub fn acquire(
    src: Arc<dyn PhysicalSource>,
    vol: &mut VolumeWriter,
    opts: &AcquireOptions,
    sys: &SystemInfo,
    progress: &mut dyn FnMut(Progress),
    stop: &AtomicBool,
) -> Result<AcquireReport> {
    let started = aff4::rdf::now();
    let ranges = src.ranges();
    let ram_bytes: u64 = ranges.iter().map(|r| r.len()).sum();
    let vmcoreinfo = src.vmcoreinfo();
    let mut iopts = opts.imager.clone();
    let in_place = matches!(opts.format, Format::Raw | Format::Elf);
    if in_place {
        // RAW and ELF are stored in place (one uncompressed member, a plain file in a directory
        // volume): no chunks for block hashes, so a linear SHA-256 protects them.
        iopts.in_place = Some(in_place_name(vol, &src.name(), opts.format.name()));
        iopts.block_hashes.clear();
        if iopts.hashes.is_empty() {
            iopts.hashes.push(aff4::hash::HashAlgo::Sha256);
        }
    }
    let notes: Vec<Note> = vmcoreinfo.iter().map(|t| Note { name: "VMCOREINFO".into(), n_type: 0, desc: t.as_bytes().to_vec() }).collect();
    let arch = src.architecture();
    let layout = core_layout(&ranges, &notes, arch.and_then(memformat::elf::machine_of).unwrap_or(memformat::elf::EM_X86_64));
    let planned = match opts.format {
        Format::Elf => layout.size,
        _ => ranges.last().map(|r| r.end).unwrap_or(0),
    };
    let plan = Plan::Blocks(memory_plan(&*src, &ranges, opts, &layout.offsets));
    let mut w = vol.image(&iopts, &MEMORY_TYPES, Some(planned))?;
    if opts.format == Format::Elf {
        let h = layout.header.clone();
        w.write(0, h)?;
    }
    let mut recheck_ranges = opts.recheck.clone();
    let mut table_pages = None;
    if opts.recheck_page_tables {
        table_pages = vmcoreinfo.as_deref().and_then(|v| crate::recheck::kernel_page_tables(&*src, v));
        recheck_ranges.extend(table_pages.iter().flatten().copied());
    }
    let mut obs = MemoryObserver {
        timeline: memformat::timeline::Timeline::start(started.clone()),
        first_pass: crate::recheck::FirstPass::new(recheck_ranges.clone()),
        progress,
    };
    let input = Input::Shared(Arc::new(Physical(src.clone())));
    let mut cap = Capture::new(input, RetryPolicy::pages(opts.read_timeout), stop);
    let outcome = cap.run(&mut w, &plan, &mut obs)?;
    let MemoryObserver { timeline, first_pass, progress } = obs;
    let unreadable: Vec<Range> = outcome.unreadable.iter().map(|&(start, end)| Range { start, end }).collect();
    let unreadable_pages = outcome.unreadable_units;
    let mut interrupted = outcome.ending == Ending::Interrupted;
    let write_error = match &outcome.ending {
        Ending::WriteFailed(e) => Some(e.clone()),
        _ => None,
    };
    // What changed while we read: the chosen pages read a second time (see crate::recheck).
    let mut recheck = None;
    let mut second_copies: Vec<(u64, Vec<u8>)> = Vec::new();
    if !recheck_ranges.is_empty() && outcome.ending == Ending::Complete {
        let t = Instant::now();
        let mut rep = crate::recheck::RecheckReport {
            ranges: opts.recheck.clone(),
            table_pages: table_pages.as_ref().map(|v| v.iter().map(|r| r.len() / PAGE).sum()),
            ..Default::default()
        };
        for pg in first_pass.pages() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            rep.pages += 1;
            match cap.read(pg, PAGE as usize) {
                CaptureRead::Got(b, n) if n as u64 == PAGE => {
                    if first_pass.changed(pg, &b) {
                        rep.changed_pages += 1;
                        add_range(&mut rep.changed, pg, PAGE);
                        if opts.recheck_keep {
                            second_copies.push((pg, b.to_vec()));
                        }
                    }
                }
                _ => rep.unreadable_pages += 1,
            }
        }
        rep.seconds = t.elapsed().as_secs_f64();
        recheck = Some(rep);
    }
    let ended = aff4::rdf::now();

    // The memory Image and its metadata.
    let release = sys.release.clone().or_else(|| vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "OSRELEASE")));
    let a = |l: &str| format!("{AFF4}{l}");
    let kaslr = vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "KERNELOFFSET"));
    // VMCOREINFO gives phys_base in decimal.
    let phys_base = vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "NUMBER(phys_base)")).map(|d| match d.parse::<i64>() {
        Ok(n) if n < 0 => format!("-{:#x}", n.unsigned_abs()),
        Ok(n) => format!("{n:#x}"),
        Err(_) => d,
    });
    let notes = src.notes();
    let meta = MemoryImageMeta {
        page_size: Some(PAGE),
        installed: Some(ram_bytes),
        addressable: Some(ranges.last().map(|r| r.end).unwrap_or(0)),
        ranges: Some(ranges.clone()),
        layout: Some(opts.format),
        source: Some(format!("{} ({})", src.name(), src.kind())),
        unreadable_pages: Some(unreadable_pages),
        unreadable_ranges: unreadable.clone(),
        timed_out_reads: Some(outcome.timed_out_reads),
        notes: notes.clone(),
        elf_segment_offsets: if opts.format == Format::Elf { layout.offsets.clone() } else { Vec::new() },
        architecture: arch.map(String::from),
        kernel_release: release.clone(),
        kernel_version: sys.banner.clone(),
        hostname: sys.hostname.clone(),
        boot_id: sys.boot_id.clone(),
        kaslr_offset: kaslr.map(|k| format!("0x{}", k.trim_start_matches("0x"))),
        phys_base,
        recheck: recheck.clone(),
    };
    let mut extra = vec![(a("category"), Node::iri(vocab::MEMORY_PHYSICAL))];
    extra.extend(meta.properties());
    for (k, v) in src.metadata() {
        extra.push((a(&k), Node::string(v)));
    }
    let finished = w.finish(planned, outcome.ending.clone(), extra)?;
    let (image, result) = (finished.urn, finished.result);
    vol.graph_mut().add(&result.map_urn, &a("category"), Node::iri(vocab::MEMORY_PHYSICAL));

    // information.yaml, as the pmem tools write it beside the memory stream.
    let mut y = format!("Imager: \"{}\"\nSource: \"{}\"\nFormat: {:?}\n", vol.tool(), src.name(), opts.format);
    for (_, k, v) in meta.facts() {
        if let Some(v) = v {
            y.push_str(&format!("{k}: \"{}\"\n", v.replace('\\', "\\\\").replace('"', "\\\"")));
        }
    }
    if let Some(h) = &result.block_map_hash {
        y.push_str(&format!("AcquisitionHash: \"blockMapHashSHA512:{}\"\n", aff4::hash::hex(h)));
    }
    for (a, d) in &result.hashes {
        y.push_str(&format!("{}: \"{}\"\n", a.name().to_uppercase(), aff4::hash::hex(d)));
    }
    y.push_str(&format!("PageSize: {PAGE}\nAcquisitionStart: \"{started}\"\nAcquisitionEnd: \"{ended}\"\nUnreadablePages: {unreadable_pages}\nInterrupted: {interrupted}\nRuns:\n"));
    for r in &ranges {
        y.push_str(&format!("  - start: {:#x}\n    length: {:#x}\n", r.start, r.len()));
    }
    vol.add_segment(&format!("{}/information.yaml", result.map_urn), y.as_bytes())?;

    // Analysis prerequisites.
    let mut extras = Vec::new();
    let mut missing = Vec::new();
    let hashes = opts.file_hashes.clone();
    if let Some(v) = &vmcoreinfo {
        let (urn, n) = add_file(vol, "VMCOREINFO", &mut v.as_bytes(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &meta::iri(prop::VMCOREINFO), Node::iri(urn));
        extras.push(("VMCOREINFO".to_string(), n));
    }
    if !second_copies.is_empty() {
        let lime = crate::recheck::lime_of(&second_copies);
        let (urn, _) = add_file(vol, "recheck-second-read.lime", &mut lime.as_slice(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &meta::iri(prop::RECHECK_SECOND_READ), Node::iri(urn));
    }
    // When each part was read (see crate::timeline); after a failed write there is no room.
    if write_error.is_none() {
        let (urn, _) = add_file(vol, memformat::timeline::NAME, &mut timeline.to_json().as_bytes(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &meta::iri(prop::READ_TIMELINE), Node::iri(urn));
    }
    let mut files =
        if opts.extras && matches!(src.kind(), "kcore" | "crash" | "devmem") { default_extras(release.as_deref()) } else { Vec::new() };
    if opts.extras {
        files.extend(src.extra_files());
    }
    files.extend(opts.extra_files.iter().cloned());
    // After a failed write the volume has no room for more: it is closed with the memory.
    if write_error.is_some() {
        files.clear();
    }
    for f in files {
        match std::fs::File::open(&f) {
            Ok(mut fh) => {
                if fh.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                    continue;
                }
                match add_file(vol, &f, &mut fh, &FileTimes::default(), &hashes) {
                    Ok((_, n)) => extras.push((f, n)),
                    Err(aff4::Error::Io { error, .. }) => missing.push((f, error.to_string())),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => missing.push((f, e.to_string())),
        }
    }
    // Files only the live system can give: those mapped by processes, and /boot.
    let live = matches!(src.kind(), "kcore" | "crash" | "devmem" | "pmem-driver");
    let (mapped, mapped_skipped) = match (opts.mapped_files, live, &write_error) {
        (Some(limits), true, None) => capture_mapped(vol, &image, &extras, limits, &hashes, stop)?,
        _ => (Vec::new(), Vec::new()),
    };
    // Pagefiles, numbered in the order given as winpmem numbers them.
    let mut pagefiles = Vec::new();
    let mut pagefile_errors = Vec::new();
    for (i, spec) in opts.pagefiles.iter().enumerate() {
        if interrupted || stop.load(Ordering::SeqCst) || write_error.is_some() {
            pagefile_errors
                .push((spec.name(), if write_error.is_some() { "writing the volume failed" } else { "interrupted" }.to_string()));
            continue;
        }
        let name = spec.name();
        let mut report = |done| progress(Progress::Pagefile { name: &name, number: i as u64, done });
        match crate::pagefile::capture(vol, spec, i as u64, &opts.imager, &mut report, stop) {
            Ok(r) => {
                interrupted |= r.interrupted;
                pagefiles.push(r);
            }
            Err(crate::Error::Aff4(e)) => return Err(e.into()),
            Err(e) => pagefile_errors.push((spec.name(), e.to_string())),
        }
    }
    if !pagefile_errors.is_empty() {
        vol.graph_mut().add(
            &image,
            &meta::iri(prop::PAGEFILES_MISSING),
            Node::string(pagefile_errors.iter().map(|(f, e)| format!("{f}: {e}")).collect::<Vec<_>>().join("; ")),
        );
    }
    if !missing.is_empty() {
        vol.graph_mut().add(
            &image,
            &meta::iri(prop::EXTRAS_MISSING),
            Node::string(missing.iter().map(|(f, e)| format!("{f}: {e}")).collect::<Vec<_>>().join("; ")),
        );
    }
    Ok(AcquireReport {
        source: src.name(),
        source_kind: src.kind().to_string(),
        image,
        ranges,
        ram_bytes,
        unreadable_pages,
        notes,
        unreadable,
        result,
        extras,
        missing,
        mapped,
        mapped_skipped,
        kernel_release: release,
        interrupted,
        timed_out_reads: outcome.timed_out_reads,
        pagefiles,
        pagefile_errors,
        write_error,
        recheck,
    })
}

/// What [`capture_mapped`] took (name, size, deleted) and listed without taking (path, why).
type MappedOutcome = (Vec<(String, u64, bool)>, Vec<(String, String)>);

/// Captures the files processes map and those under /boot (see [`crate::mapped`]) as logical
/// files linked from the memory image, each with who maps it, whether it was deleted and its
/// device and inode; what is too large, over the total, gone or unreadable is listed with the
/// reason, never an error.
#[cfg(target_os = "linux")]
fn capture_mapped(
    vol: &mut VolumeWriter,
    image: &str,
    extras: &[(String, u64)],
    limits: crate::mapped::Limits,
    hashes: &[aff4::HashAlgo],
    stop: &AtomicBool,
) -> Result<MappedOutcome> {
    // /boot files the extras already took are not taken again.
    let taken: std::collections::BTreeSet<&str> = extras.iter().map(|(f, _)| f.as_str()).collect();
    let mut wanted = crate::mapped::scan(std::path::Path::new("/proc"));
    let boot = crate::mapped::files_under(std::path::Path::new("/boot"));
    wanted.extend(boot.into_iter().filter(|f| !f.paths.iter().any(|p| taken.contains(p.as_str()))));
    use std::os::unix::fs::MetadataExt;
    let (mut mapped, mut skipped) = (Vec::new(), Vec::new());
    let mut total = 0u64;
    let mut names = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in wanted {
        let path = f.paths.iter().next().cloned().unwrap_or_else(|| f.open.display().to_string());
        if stop.load(Ordering::SeqCst) {
            skipped.push((path, "interrupted".into()));
            continue;
        }
        let fh = match std::fs::File::open(&f.open) {
            Ok(fh) => fh,
            Err(e) => {
                skipped.push((path, e.to_string()));
                continue;
            }
        };
        let meta = match fh.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) => {
                skipped.push((path, e.to_string()));
                continue;
            }
        };
        let (major, minor) = crate::mapped::dev_parts(meta.dev());
        if f.id.is_some_and(|id| id != (major, minor, meta.ino())) {
            skipped.push((path, "replaced by another file while the processes were scanned".into()));
            continue;
        }
        // A /boot file a process also maps is captured once.
        if !seen.insert((major, minor, meta.ino())) {
            continue;
        }
        if meta.len() > limits.per_file {
            skipped.push((path, format!("{} bytes, over the {}-byte limit for one file", meta.len(), limits.per_file)));
            continue;
        }
        if total + meta.len() > limits.total {
            skipped.push((path, format!("over the {}-byte total for mapped files", limits.total)));
            continue;
        }
        // Two files once known by one path (an old, deleted version and its replacement) keep both.
        let name = if names.contains(&path) { format!("{path} (inode {})", meta.ino()) } else { path.clone() };
        names.insert(name.clone());
        let mut reader = fh;
        match add_file(vol, &name, &mut reader, &FileTimes::of(&meta), hashes) {
            Ok((urn, n)) => {
                total += n;
                let g = vol.graph_mut();
                g.add(image, &meta::iri(prop::MAPPED_FILE), Node::iri(&urn));
                if !f.pids.is_empty() {
                    let pids: Vec<String> = f.pids.iter().map(u32::to_string).collect();
                    g.add(&urn, &meta::iri(prop::MAPPED_BY), Node::string(pids.join(",")));
                }
                if f.deleted {
                    g.add(&urn, &meta::iri(prop::DELETED), Node::typed("true", format!("{}boolean", aff4::vocab::XSD)));
                }
                for p in &f.paths {
                    g.add(&urn, &meta::iri(prop::KNOWN_PATH), Node::string(p));
                }
                g.add(&urn, &meta::iri(prop::DEVICE_INODE), Node::string(format!("{major}:{minor}:{}", meta.ino())));
                mapped.push((name, n, f.deleted));
            }
            Err(aff4::Error::Io { error, .. }) if error.kind() != std::io::ErrorKind::StorageFull => {
                skipped.push((path, error.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(f, e)| format!("{f}: {e}")).collect();
        vol.graph_mut().add(image, &meta::iri(prop::MAPPED_FILES_SKIPPED), Node::string(list.join("; ")));
    }
    Ok((mapped, skipped))
}

/// Mapped files are read through Linux's /proc; elsewhere there are none to take.
#[cfg(not(target_os = "linux"))]
fn capture_mapped(
    _: &mut VolumeWriter,
    _: &str,
    _: &[(String, u64)],
    _: crate::mapped::Limits,
    _: &[aff4::HashAlgo],
    _: &AtomicBool,
) -> Result<MappedOutcome> {
    Ok((Vec::new(), Vec::new()))
}
