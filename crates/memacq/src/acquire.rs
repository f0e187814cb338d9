//! Acquisition: reads every range of a source in blocks, retries a failed block page by page,
//! maps pages that stay unreadable to `aff4:UnreadableData` (never aborting), and feeds the
//! AFF4 imaging pipeline. Then it records the memory Image with its metadata, the
//! information.yaml pmem tools write, and the files analysts need (kallsyms, BTF, System.map…).

use crate::elf::{core_layout, Note};
use crate::error::Result;
use crate::iomem::Range;
use crate::source::PhysicalSource;
use aff4::imager::{describe_image, Imager, ImagerOptions, ImagerResult};
use aff4::logical::{add_file, FileTimes};
use aff4::rdf::Node;
use aff4::symbolic::Symbolic;
use aff4::vocab::{self, AFF4, XSD};
use aff4::volume::write::VolumeWriter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The Image types of a memory image.
const MEMORY_TYPES: [&str; 3] = [vocab::IMAGE, vocab::MEMORY_IMAGE, vocab::DISCONTIGUOUS_IMAGE];

/// Page size used for retries and unreadable accounting.
pub const PAGE: u64 = 4096;

/// How the memory is laid out in the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Map over physical addresses (holes and zero pages cost nothing).
    Map,
    /// An ELF core (PT_LOAD per range with p_paddr, VMCOREINFO note) as the image's bytes.
    Elf,
    /// The padded physical address space stored in full.
    Raw,
}

/// Acquisition settings.
#[derive(Debug, Clone)]
pub struct AcquireOptions {
    /// Imaging pipeline settings.
    pub imager: ImagerOptions,
    /// Output layout.
    pub format: Format,
    /// Capture the analysis prerequisites (kallsyms, iomem, BTF, …).
    pub extras: bool,
    /// More files (globs expanded by the caller).
    pub extra_files: Vec<String>,
    /// Read block size.
    pub block: usize,
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
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions {
            imager: ImagerOptions::default(),
            format: Format::Map,
            extras: true,
            extra_files: Vec::new(),
            block: 1 << 20,
            read_timeout: Some(std::time::Duration::from_secs(30)),
            pagefiles: Vec::new(),
            recheck: Vec::new(),
            recheck_keep: false,
            recheck_page_tables: false,
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

/// Outcome of one read.
enum Read {
    Ok(Vec<u8>),
    Failed,
    TimedOut,
}

type Job = (u64, Vec<u8>, std::sync::mpsc::Sender<(Vec<u8>, std::io::Result<()>)>);

/// Runs reads on a helper thread so that one that hangs (a stuck device, a page that never
/// returns) can be abandoned: the helper is left behind and a new one takes over.
struct TimedReader {
    src: Arc<dyn PhysicalSource>,
    timeout: Option<std::time::Duration>,
    tx: Option<std::sync::mpsc::Sender<Job>>,
}

impl TimedReader {
    fn new(src: Arc<dyn PhysicalSource>, timeout: Option<std::time::Duration>) -> Self {
        TimedReader { src, timeout, tx: None }
    }
    fn worker(&mut self) -> &std::sync::mpsc::Sender<Job> {
        let src = self.src.clone();
        self.tx.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::spawn(move || {
                while let Ok((phys, mut buf, reply)) = rx.recv() {
                    let r = src.read_at(phys, &mut buf);
                    if reply.send((buf, r)).is_err() {
                        break;
                    }
                }
            });
            tx
        })
    }
    /// Queues a read of `buf.len()` bytes at `phys` (from the imager's pool) on the helper.
    fn submit(&mut self, phys: u64, buf: Vec<u8>) -> Pending {
        let (rtx, rrx) = std::sync::mpsc::channel();
        if self.timeout.is_none() {
            // No helper: read now.
            let mut buf = buf;
            let r = self.src.read_at(phys, &mut buf);
            let _ = rtx.send((buf, r));
        } else if self.worker().send((phys, buf, rtx)).is_err() {
            self.tx = None;
        }
        Pending { phys, rx: rrx }
    }

    /// Waits for a queued read; a timeout abandons the helper (later reads start a new one).
    fn wait(&mut self, p: Pending) -> Read {
        let r = match self.timeout {
            Some(t) => p.rx.recv_timeout(t).map_err(|e| matches!(e, std::sync::mpsc::RecvTimeoutError::Timeout)),
            None => p.rx.recv().map_err(|_| false),
        };
        match r {
            Ok((b, Ok(()))) => Read::Ok(b),
            Ok((_, Err(_))) | Err(false) => Read::Failed,
            Err(true) => {
                self.tx = None;
                Read::TimedOut
            }
        }
    }

    /// Reads synchronously.
    fn read(&mut self, phys: u64, buf: Vec<u8>) -> Read {
        let p = self.submit(phys, buf);
        self.wait(p)
    }
}

/// A read queued on the helper thread.
struct Pending {
    phys: u64,
    rx: std::sync::mpsc::Receiver<(Vec<u8>, std::io::Result<()>)>,
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

struct Placer<'a> {
    im: Imager,
    vol: &'a mut VolumeWriter,
    format: Format,
    offsets: Vec<u64>,
    ranges: Vec<Range>,
}

impl Placer<'_> {
    /// Where physical `phys` of range `i` lands in the image.
    fn at(&self, i: usize, phys: u64) -> u64 {
        match self.format {
            Format::Elf => self.offsets[i] + (phys - self.ranges[i].start),
            _ => phys,
        }
    }
    fn data(&mut self, i: usize, phys: u64, buf: Vec<u8>) -> Result<()> {
        let at = self.at(i, phys);
        Ok(self.im.write(self.vol, at, buf)?)
    }
    fn fill(&mut self, i: usize, phys: u64, len: u64, s: Symbolic) -> Result<()> {
        let at = self.at(i, phys);
        Ok(self.im.fill(at, len, s)?)
    }
    /// Raw format stores holes as real zeros.
    fn pad_to(&mut self, target: u64) -> Result<()> {
        while self.im.position() < target {
            let n = (target - self.im.position()).min(4 << 20);
            let at = self.im.position();
            self.im.write(self.vol, at, vec![0u8; n as usize])?;
        }
        Ok(())
    }
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
    if opts.format == Format::Raw {
        iopts.zero_page = 0;
    }
    let im = Imager::new(iopts)?;
    let notes: Vec<Note> = vmcoreinfo.iter().map(|t| Note { name: "VMCOREINFO".into(), n_type: 0, desc: t.as_bytes().to_vec() }).collect();
    let arch = src.architecture();
    let layout = core_layout(&ranges, &notes, arch.and_then(crate::elf::machine_of).unwrap_or(crate::elf::EM_X86_64));
    let mut p = Placer { im, vol, format: opts.format, offsets: layout.offsets.clone(), ranges: ranges.clone() };
    let planned = match opts.format {
        Format::Elf => layout.size,
        _ => ranges.last().map(|r| r.end).unwrap_or(0),
    };
    p.im.announce(Some(planned), &MEMORY_TYPES);
    if opts.format == Format::Elf {
        let h = layout.header.clone();
        p.im.write(p.vol, 0, h)?;
    }
    let mut done = 0u64;
    let mut unreadable: Vec<Range> = Vec::new();
    let mut unreadable_pages = 0u64;
    let mut interrupted = false;
    let mut timed_out_reads = 0u64;
    let mut reader = TimedReader::new(src.clone(), opts.read_timeout);
    let block = (opts.block as u64).max(PAGE) / PAGE * PAGE;
    // Blocks end on page boundaries so that retries are page-aligned. RAM the source says it
    // cannot map is one block that is not read (`false`): however large, it costs nothing.
    let unmapped = src.unmapped();
    let mut blocks: Vec<(usize, u64, u64, bool)> = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        let mut pieces: Vec<(Range, bool)> =
            crate::iomem::subtract(std::slice::from_ref(r), &unmapped).into_iter().map(|m| (m, true)).collect();
        pieces.extend(unmapped.iter().filter_map(|u| r.intersect(u)).map(|u| (u, false)));
        pieces.sort_by_key(|(x, _)| x.start);
        for (piece, mapped) in pieces {
            if !mapped {
                blocks.push((i, piece.start, piece.len(), false));
                continue;
            }
            let mut off = piece.start;
            while off < piece.end {
                let n = (block - (off % PAGE)).min(piece.end - off);
                blocks.push((i, off, n, true));
                off += n;
            }
        }
    }
    // Reads run ahead of the pipeline by READ_AHEAD blocks.
    const READ_AHEAD: usize = 3;
    let mut queue: std::collections::VecDeque<(usize, u64, u64, Option<Pending>, Instant)> = std::collections::VecDeque::new();
    let mut timeline = crate::timeline::Timeline::start(started.clone());
    let mut recheck_ranges = opts.recheck.clone();
    let mut table_pages = None;
    if opts.recheck_page_tables {
        table_pages = vmcoreinfo.as_deref().and_then(|v| crate::recheck::kernel_page_tables(&*src, v));
        recheck_ranges.extend(table_pages.iter().flatten().copied());
    }
    let mut first_pass = crate::recheck::FirstPass::new(recheck_ranges.clone());
    let mut next = 0usize;
    let mut current_range = usize::MAX;
    // The reading loop; its only errors are writes to the volume (a full disk), after which
    // the image is closed with what was stored.
    let mut read_all = || -> Result<()> {
        loop {
            while queue.len() < READ_AHEAD && next < blocks.len() && !stop.load(Ordering::Relaxed) {
                let (i, off, n, mapped) = blocks[next];
                let pend = mapped.then(|| reader.submit(off, p.im.buffer(n as usize)));
                queue.push_back((i, off, n, pend, Instant::now()));
                next += 1;
            }
            let Some((i, off, n, pend, submitted)) = queue.pop_front() else { break };
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            if i != current_range {
                if opts.format == Format::Raw {
                    p.pad_to(ranges[i].start)?;
                }
                current_range = i;
            }
            let Some(pend) = pend else {
                // Not mapped by the source: unreadable, without trying.
                p.fill(i, off, n, Symbolic::Unreadable)?;
                unreadable_pages += n.div_ceil(PAGE);
                add_range(&mut unreadable, off, n);
                done += n;
                progress(Progress::Memory { done, unreadable_pages });
                continue;
            };
            debug_assert_eq!(pend.phys, off);
            let first = reader.wait(pend);
            if matches!(first, Read::TimedOut) {
                // The helper was abandoned with the queued reads: queue them again on a new one.
                let rest: Vec<_> = queue.drain(..).collect();
                for (ri, roff, rn, was, _) in rest {
                    let pend = was.map(|_| reader.submit(roff, p.im.buffer(rn as usize)));
                    queue.push_back((ri, roff, rn, pend, Instant::now()));
                }
            }
            {
                if let Read::Ok(buf) = first {
                    first_pass.note(off, &buf);
                    p.data(i, off, buf)?;
                } else {
                    // Retry page by page (each page twice); after a timeout, pages that time out
                    // again are not retried, and two timeouts in a row give up on the block.
                    let mut consecutive_timeouts = u32::from(matches!(first, Read::TimedOut));
                    timed_out_reads += u64::from(matches!(first, Read::TimedOut));
                    let mut q = off;
                    while q < off + n {
                        let m = (PAGE - q % PAGE).min(off + n - q);
                        let mut got = None;
                        if consecutive_timeouts < 2 {
                            for _ in 0..2 {
                                match reader.read(q, vec![0u8; m as usize]) {
                                    Read::Ok(b) => {
                                        got = Some(b);
                                        consecutive_timeouts = 0;
                                        break;
                                    }
                                    Read::Failed => {}
                                    Read::TimedOut => {
                                        timed_out_reads += 1;
                                        consecutive_timeouts += 1;
                                        break;
                                    }
                                }
                            }
                        }
                        if let Some(pg) = got {
                            first_pass.note(q, &pg);
                            p.data(i, q, pg)?;
                        } else {
                            p.fill(i, q, m, Symbolic::Unreadable)?;
                            unreadable_pages += 1;
                            add_range(&mut unreadable, q, m);
                        }
                        q += m;
                    }
                }
                timeline.record(off, n, submitted, Instant::now());
                done += n;
                progress(Progress::Memory { done, unreadable_pages });
            }
        }
        Ok(())
    };
    let write_error = match read_all() {
        Ok(()) => None,
        // A stream (stdout, an upload) cannot be cut back: the error is final.
        Err(e) if p.vol.is_streamed() => return Err(e),
        Err(e) => Some(e.to_string()),
    };
    if write_error.is_none() && (next < blocks.len() || !queue.is_empty()) {
        interrupted = true;
    }
    // What changed while we read: the chosen pages read a second time (see crate::recheck).
    let mut recheck = None;
    let mut second_copies: Vec<(u64, Vec<u8>)> = Vec::new();
    if !recheck_ranges.is_empty() && !interrupted && write_error.is_none() {
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
            match reader.read(pg, vec![0u8; PAGE as usize]) {
                Read::Ok(b) => {
                    if first_pass.changed(pg, &b) {
                        rep.changed_pages += 1;
                        add_range(&mut rep.changed, pg, PAGE);
                        if opts.recheck_keep {
                            second_copies.push((pg, b));
                        }
                    }
                }
                Read::Failed | Read::TimedOut => rep.unreadable_pages += 1,
            }
        }
        rep.seconds = t.elapsed().as_secs_f64();
        recheck = Some(rep);
    }
    let size = planned;
    if write_error.is_some() {
        // Closed by Imager::abandon below.
    } else if interrupted {
        // What was not read is recorded as unknown, not as zeros. It is not hashed (hashing
        // the unread rest of a large machine would delay the exit by minutes): the linear
        // hashes cover what was read and are recorded as aff4:prefixHash.
        let pos = p.im.position();
        if pos < size {
            p.im.stop_hashing();
            p.im.fill(pos, size - pos, Symbolic::Unknown)?;
        }
    } else if opts.format == Format::Raw {
        p.pad_to(size)?;
    }
    let Placer { im, vol, .. } = p;
    let result = match &write_error {
        None => im.finish(vol, size)?,
        Some(_) => im.abandon(vol, size)?,
    };
    let ended = aff4::rdf::now();

    // The memory Image and its metadata.
    let image = aff4::urn::new_urn();
    let release = sys.release.clone().or_else(|| vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "OSRELEASE")));
    let a = |l: &str| format!("{AFF4}{l}");
    let dt = format!("{XSD}dateTime");
    let mut extra = vec![
        (a("category"), Node::iri(vocab::MEMORY_PHYSICAL)),
        (a("pageSize"), Node::long(PAGE)),
        (a("memoryInstalledSize"), Node::long(ram_bytes)),
        (a("memoryAddressableSize"), Node::long(ranges.last().map(|r| r.end).unwrap_or(0))),
        (a("memoryRanges"), Node::string(ranges.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(","))),
        (a("memoryImageFormat"), Node::string(format!("{:?}", opts.format).to_lowercase())),
        (a("acquisitionSource"), Node::string(format!("{} ({})", src.name(), src.kind()))),
        (a("acquisitionStartTime"), Node::typed(&started, &dt)),
        (a("acquisitionEndTime"), Node::typed(&ended, &dt)),
        (
            a("acquisitionCompletionState"),
            Node::string(if let Some(e) = &write_error {
                format!("Incomplete: stopped at byte {}: writing the volume failed: {e}", result.lost_from.unwrap_or(0))
            } else if interrupted {
                "Interrupted: incomplete".to_string()
            } else if unreadable_pages > 0 {
                "Completed with unreadable pages".to_string()
            } else {
                "Completed Normally".to_string()
            }),
        ),
        (a("unreadablePages"), Node::long(unreadable_pages)),
        (a("timedOutReads"), Node::long(timed_out_reads)),
        (a("tool"), Node::string(aff4::TOOL)),
    ];
    if !unreadable.is_empty() {
        extra.push((
            a("unreadableRanges"),
            Node::string(unreadable.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(",")),
        ));
    }
    let kaslr = vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "KERNELOFFSET"));
    // VMCOREINFO gives phys_base in decimal.
    let phys_base = vmcoreinfo.as_deref().and_then(|v| vmcoreinfo_value(v, "NUMBER(phys_base)")).map(|d| match d.parse::<i64>() {
        Ok(n) if n < 0 => format!("-{:#x}", n.unsigned_abs()),
        Ok(n) => format!("{n:#x}"),
        Err(_) => d,
    });
    // The optional facts, each under its Turtle and its information.yaml name.
    let facts: [(&str, &str, Option<String>); 7] = [
        ("architecture", "Architecture", arch.map(String::from)),
        ("kernelRelease", "KernelRelease", release.clone()),
        ("kernelVersion", "KernelVersion", sys.banner.clone()),
        ("hostname", "Hostname", sys.hostname.clone()),
        ("bootId", "BootId", sys.boot_id.clone()),
        ("kaslrOffset", "KASLROffset", kaslr.map(|k| format!("0x{}", k.trim_start_matches("0x")))),
        ("physBase", "PhysBase", phys_base),
    ];
    for (k, _, v) in &facts {
        if let Some(v) = v {
            extra.push((a(k), Node::string(v.clone())));
        }
    }
    for (k, v) in src.metadata() {
        extra.push((a(&k), Node::string(v)));
    }
    let notes = src.notes();
    for n in &notes {
        extra.push((a("acquisitionNote"), Node::string(n.clone())));
    }
    if let Some(r) = &recheck {
        let list = |v: &[Range]| Node::string(v.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(","));
        extra.push((a("recheckedRanges"), list(&r.ranges)));
        extra.push((a("recheckedPages"), Node::long(r.pages)));
        if let Some(n) = r.table_pages {
            extra.push((a("recheckedPageTablePages"), Node::long(n)));
        }
        extra.push((a("recheckChangedPages"), Node::long(r.changed_pages)));
        extra.push((a("recheckChangedRanges"), list(&r.changed)));
        extra.push((a("recheckUnreadablePages"), Node::long(r.unreadable_pages)));
        extra.push((a("recheckSeconds"), Node::string(format!("{:.3}", r.seconds))));
    }
    if opts.format == Format::Elf {
        extra.push((a("elfSegmentOffsets"), Node::string(layout.offsets.iter().map(|o| format!("{o:#x}")).collect::<Vec<_>>().join(","))));
    }
    describe_image(vol, &image, &result, &MEMORY_TYPES, extra);
    vol.graph_mut().add(&result.map_urn, &a("category"), Node::iri(vocab::MEMORY_PHYSICAL));

    // information.yaml, as the pmem tools write it beside the memory stream.
    let mut y = format!("Imager: \"{}\"\nSource: \"{}\"\nFormat: {:?}\n", aff4::TOOL, src.name(), opts.format);
    for (_, k, v) in &facts {
        if let Some(v) = v {
            y.push_str(&format!("{k}: \"{}\"\n", v.replace('\\', "\\\\").replace('"', "\\\"")));
        }
    }
    y.push_str(&format!("PageSize: {PAGE}\nAcquisitionStart: \"{started}\"\nAcquisitionEnd: \"{ended}\"\nUnreadablePages: {unreadable_pages}\nInterrupted: {interrupted}\nRuns:\n"));
    for r in &ranges {
        y.push_str(&format!("  - start: {:#x}\n    length: {:#x}\n", r.start, r.len()));
    }
    vol.add_segment(&format!("{}/information.yaml", result.map_urn), y.as_bytes())?;

    // Analysis prerequisites.
    let mut extras = Vec::new();
    let mut missing = Vec::new();
    let hashes = opts.imager.hashes.clone();
    if let Some(v) = &vmcoreinfo {
        let (urn, n) = add_file(vol, "VMCOREINFO", &mut v.as_bytes(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &a("vmcoreinfo"), Node::iri(urn));
        extras.push(("VMCOREINFO".to_string(), n));
    }
    if !second_copies.is_empty() {
        let lime = crate::recheck::lime_of(&second_copies);
        let (urn, _) = add_file(vol, "recheck-second-read.lime", &mut lime.as_slice(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &a("recheckSecondRead"), Node::iri(urn));
    }
    // When each part was read (see crate::timeline); after a failed write there is no room.
    if write_error.is_none() {
        let (urn, _) = add_file(vol, crate::timeline::NAME, &mut timeline.to_json().as_bytes(), &FileTimes::default(), &hashes)?;
        vol.graph_mut().add(&image, &a("readTimeline"), Node::iri(urn));
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
            &a("pagefilesMissing"),
            Node::string(pagefile_errors.iter().map(|(f, e)| format!("{f}: {e}")).collect::<Vec<_>>().join("; ")),
        );
    }
    if !missing.is_empty() {
        vol.graph_mut().add(
            &image,
            &a("extrasMissing"),
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
        kernel_release: release,
        interrupted,
        timed_out_reads,
        pagefiles,
        pagefile_errors,
        write_error,
        recheck,
    })
}
