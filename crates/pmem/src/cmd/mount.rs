//! `pmem mount`: serves [`memview::mount::Tree`] read-only through FUSE (the `fuser` crate's
//! pure-Rust mount: no libfuse, `mount(2)` directly as root) until Ctrl-C, SIGTERM or `umount`:
//! the images of volumes, or with `--live` this machine's physical memory read on demand.

use crate::args::{Input, KeyArgs, S3Args};
use crate::{exit, Failure, WithCode};
use aff4::readahead::ReadAhead;
use aff4::stream::MemStream;
use aff4::Stream;
use anyhow::{anyhow, Context};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner, MountOption, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use memacq::source::SourceChoice;
use memview::mount::{NodeKind, Tree};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The tree never changes while mounted, so the kernel may cache everything.
const TTL: Duration = Duration::from_secs(3600);
/// The largest read the kernel is asked to send at once.
const MAX_READ: u32 = 1 << 20;
/// Read-ahead unit: sequential readers get the next 8 of these decoded in the background.
const READ_AHEAD_BLOCK: usize = 1 << 20;

/// How a file's bytes are read.
enum Reader {
    /// Decoded ahead in the background (images do not change).
    Ahead(ReadAhead),
    /// Read at each request, nothing kept (live memory changes between reads).
    Direct(Arc<dyn Stream>),
}

impl Reader {
    fn with_range<T>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> T) -> aff4::Result<T> {
        match self {
            Reader::Ahead(r) => r.with_range(offset, len, f),
            Reader::Direct(s) => {
                let n = (len as u64).min(s.size().saturating_sub(offset)) as usize;
                let mut buf = vec![0u8; n];
                s.read_exact_at(offset, &mut buf)?;
                Ok(f(&buf))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Reader::Ahead(r) => r.describe(),
            Reader::Direct(s) => s.describe(),
        }
    }
}

struct Fs {
    tree: Tree,
    /// Each file's reader, by inode.
    files: HashMap<u64, Reader>,
    time: SystemTime,
    uid: u32,
    gid: u32,
}

impl Fs {
    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let n = self.tree.get(ino)?;
        let (kind, size, perm, nlink) = match &n.kind {
            NodeKind::Dir(children) => (FileType::Directory, 0, 0o555, 2 + children.len() as u32),
            NodeKind::File(s) => (FileType::RegularFile, s.size(), 0o444, 1),
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
            crtime: self.time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            flags: 0,
            blksize: 1 << 16,
        })
    }
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_readahead(MAX_READ).or_else(|max| config.set_max_readahead(max));
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match name.to_str().and_then(|n| self.tree.lookup(parent.0, n)).and_then(|n| self.attr(n.ino)) {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.tree.get(ino.0).map(|n| &n.kind) {
            // Direct I/O: replies go straight into the reader's buffer (one copy, not two) and
            // requests are as large as the reader's; ReadAhead does the reading ahead.
            Some(NodeKind::File(_)) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Some(NodeKind::Dir(_)) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(s) = self.files.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let mut reply = Some(reply);
        if let Err(e) = s.with_range(offset, size.min(MAX_READ) as usize, |b| reply.take().map(|r| r.data(b))) {
            eprintln!("pmem mount: read of {} at {offset}: {e}", s.describe());
            if let Some(r) = reply.take() {
                r.error(Errno::EIO);
            }
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(node) = self.tree.get(ino.0) else { return reply.error(Errno::ENOENT) };
        let NodeKind::Dir(children) = &node.kind else { return reply.error(Errno::ENOTDIR) };
        let mut entries: Vec<(u64, FileType, &str)> = vec![(node.ino, FileType::Directory, "."), (node.parent, FileType::Directory, "..")];
        for (name, &child) in children {
            let kind = match self.tree.get(child).map(|n| &n.kind) {
                Some(NodeKind::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            entries.push((child, kind, name));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let bytes: u64 = self.tree.nodes().iter().map(|n| if let NodeKind::File(s) = &n.kind { s.size() } else { 0 }).sum();
        reply.statfs(bytes.div_ceil(4096), 0, 0, self.tree.nodes().len() as u64, 0, 4096, 255, 4096);
    }
}

/// `pmem mount`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// AFF4 volume files, directory volumes or s3://BUCKET/KEY objects, then the mount point
    /// (an existing directory); with --live, the mount point alone.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub s3: S3Args,
    /// Serve this machine's physical memory instead (root): memory.raw and memory.elf read on
    /// demand through the same sources as `acquire`, and linux.json.xz, a Volatility 3 symbol
    /// table from the running kernel's BTF and kallsyms, so that `vol -s MOUNTPOINT -f
    /// MOUNTPOINT/memory.elf` analyses the live machine without writing an image. Live memory
    /// changes while it is read: for evidence, acquire it.
    #[arg(long)]
    pub live: bool,
    /// With --live: where to read memory (as `acquire --source`: auto, kcore, crash, mem, pmem-driver).
    #[arg(long, requires = "live", default_value = "auto", value_name = "SOURCE", value_parser = |s: &str| Ok::<_, String>(SourceChoice::parse(s)))]
    pub source: SourceChoice,
    /// With --live: the pmem kernel module to load when /dev/pmem is needed.
    #[arg(long, requires = "live", value_name = "FILE")]
    pub driver: Option<std::path::PathBuf>,
    /// Threads serving requests.
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
}

/// The note served beside live memory.
const LIVE_NOTE: &str = "This is the running machine's physical memory, read on demand through pmem: every read reads \
it again, so it changes while it is read, and two reads of the same page may differ. Unreadable pages read as the \
UNREADABLEDATA pattern, holes between RAM ranges as zeros. For evidence, acquire it (pmem acquire).\n";

impl Args {
    /// The volumes to serve (checked against --live) and the mount point.
    fn split(&self) -> Result<(Input, &std::path::Path), Failure> {
        let (mountpoint, volumes) = self.paths.split_last().ok_or_else(|| anyhow!("give the mount point")).code(exit::USAGE)?;
        if self.live != volumes.is_empty() {
            let msg = if self.live {
                "--live serves this machine's memory: give only the mount point"
            } else {
                "give the volumes, then the mount point"
            };
            return Err(anyhow!(msg)).code(exit::USAGE);
        }
        Ok((Input { volumes: volumes.to_vec(), keys: self.keys.clone(), s3: self.s3.clone() }, mountpoint))
    }
}

/// The tree of this machine's memory: the source opened as `acquire` would, its symbol table
/// built from the live kernel (a warning, not a failure, when that cannot be done).
fn live_tree(a: &Args) -> Result<Tree, Failure> {
    let paths = memacq::source::LivePaths { driver: a.driver.clone(), ..Default::default() };
    let src = memacq::source::open(&a.source, &paths).map_err(|e| anyhow!("{e}")).code(exit::NO_SOURCE)?;
    let src: Arc<dyn memacq::source::PhysicalSource> = Arc::from(src);
    let machine = src.architecture().and_then(memformat::elf::machine_of).unwrap_or(memformat::elf::EM_X86_64);
    let live: Arc<dyn Stream> = Arc::new(memacq::live::LiveMemory::new(src.clone()));
    let view = Arc::new(memview::export::MemoryView::of_physical(live, src.ranges(), src.vmcoreinfo(), machine));
    eprintln!(
        "pmem mount: live memory through {} ({}), {} of RAM",
        src.name(),
        src.kind(),
        super::human(src.ranges().iter().map(|r| r.len()).sum())
    );
    let mut files: Vec<(String, Arc<dyn Stream>)> =
        vec![("NOTE.txt".into(), Arc::new(MemStream::new(LIVE_NOTE.as_bytes().to_vec(), "NOTE.txt")))];
    let isf = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("/sys/kernel/btf/vmlinux: {e}"))
        .and_then(|btf| Ok((btf, std::fs::read_to_string("/proc/kallsyms").map_err(|e| format!("/proc/kallsyms: {e}"))?)))
        .and_then(|(btf, ks)| {
            // System.map of the running release, for kernels whose kallsyms lists no data symbols.
            let map = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|r| std::fs::read_to_string(format!("/boot/System.map-{}", r.trim())).ok());
            memview::isf::from_view(&view, &btf, &ks, map.as_deref()).map_err(|e| e.to_string())
        })
        .and_then(|isf| {
            let mut out = Vec::new();
            memview::isf::write(&isf, &mut out, true).map_err(|e| e.to_string())?;
            Ok((isf, out))
        });
    match isf {
        Ok((isf, xz)) => {
            eprintln!("pmem mount: linux.json.xz: {} types, {} symbols; banner {}", isf.types(), isf.symbols(), isf.banner.trim_end());
            files.push(("linux.json.xz".into(), Arc::new(MemStream::new(xz, "linux.json.xz"))));
        }
        Err(e) => eprintln!("pmem mount: warning: no symbol table (linux.json.xz): {e}"),
    }
    Ok(Tree::live(view, files))
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, mountpoint) = a.split()?;
    let threads = a.threads;
    let tree = if a.live {
        live_tree(a)?
    } else {
        let c = super::open(&input)?;
        super::warn_problems(&c);
        Tree::build(&c)
    };
    let workers = crate::args::threads(threads);
    let files = tree
        .nodes()
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::File(s) if a.live => Some((n.ino, Reader::Direct(s.clone()))),
            NodeKind::File(s) => Some((n.ino, Reader::Ahead(ReadAhead::new(s.clone(), READ_AHEAD_BLOCK, 8, workers)))),
            NodeKind::Dir(_) => None,
        })
        .collect();
    for w in &tree.warnings {
        eprintln!("pmem mount: skipped {w}");
    }
    if !mountpoint.exists() {
        return Err(anyhow!("mount point {} does not exist: create the directory first", mountpoint.display())).code(exit::OUTPUT);
    }
    if !mountpoint.is_dir() {
        return Err(anyhow!("mount point {} is not a directory", mountpoint.display())).code(exit::OUTPUT);
    }
    let time = if a.live {
        SystemTime::now()
    } else {
        input.volumes.first().and_then(|p| std::fs::metadata(p).ok()).and_then(|m| m.modified().ok()).unwrap_or(SystemTime::UNIX_EPOCH)
    };
    let (uid, gid) = crate::platform::ids();
    let fs = Fs { tree, files, time, uid, gid };
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        MountOption::RO,
        MountOption::FSName(input.volumes.first().map(|p| p.display().to_string()).unwrap_or_else(|| "live-memory".into())),
        MountOption::Subtype("pmem".into()),
        MountOption::DefaultPermissions,
        MountOption::CUSTOM(format!("max_read={MAX_READ}")),
    ];
    cfg.n_threads = Some(workers.max(2));
    crate::signals::install();
    let session = fuser::spawn_mount(fs, mountpoint, &cfg)
        .with_context(|| format!("cannot mount on {} (FUSE needs /dev/fuse and root, or fusermount3)", mountpoint.display()))
        .code(exit::OUTPUT)?;
    let what = input.volumes.first().map(|p| p.display().to_string()).unwrap_or_else(|| "live memory (it changes while it is read)".into());
    eprintln!("pmem mount: {what} mounted read-only on {}; Ctrl-C or `umount {}` ends it", mountpoint.display(), mountpoint.display());
    while !crate::signals::STOP.load(std::sync::atomic::Ordering::SeqCst) && !session.guard.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if session.guard.is_finished() {
        // Unmounted from outside (`umount`).
        session.join().context("FUSE session").code(exit::OUTPUT)?;
    } else {
        match crate::platform::unmount(mountpoint, false) {
            Ok(()) => session.join().context("FUSE session").code(exit::OUTPUT)?,
            Err(e) if e.raw_os_error() != Some(libc::EBUSY) => {
                return Err(anyhow!("cannot unmount {}: {e}", mountpoint.display())).code(exit::OUTPUT);
            }
            Err(_) => {
                // Files are still open: detach now (they will get errors) rather than leave a dead mount.
                crate::platform::unmount(mountpoint, true)
                    .map_err(|e| anyhow!("cannot unmount {}: {e}", mountpoint.display()))
                    .code(exit::OUTPUT)?;
                eprintln!("pmem mount: {} was busy; detached it (files still open there now fail)", mountpoint.display());
                drop(session);
            }
        }
    }
    eprintln!("pmem mount: {} unmounted", mountpoint.display());
    Ok(0)
}
