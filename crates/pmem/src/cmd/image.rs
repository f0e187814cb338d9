//! `pmem image`: files, block devices and stdin into aff4:Image objects (Map over a compressed
//! ImageStream, zero pages not stored, hashed while written); `-i` adds logical files.

use super::{human, threads};
use crate::{exit, progress, Failure, WithCode};
use aff4::imager::{describe_image, Imager, ImagerOptions};
use aff4::logical::{add_file, FileTimes};
use aff4::rdf::Node;
use aff4::symbolic::Symbolic;
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::{vocab, Codec, HashAlgo};
use anyhow::{anyhow, Context};
use serde_json::json;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The Image types of an imaged file or device.
const DISK_TYPES: [&str; 3] = [vocab::IMAGE, vocab::DISK_IMAGE, vocab::CONTIGUOUS_IMAGE];

/// Options shared by `image` and `acquire` for how data is stored.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Output volume: an .aff4 file (added to if it exists, unless -t), a directory or a path
    /// ending in / for a directory volume, - to stream the volume to stdout, or s3://BUCKET/KEY
    /// to upload it to object storage as it is written.
    #[arg(short = 'o', long = "output", value_name = "VOLUME")]
    pub output: PathBuf,
    /// Replace the output volume instead of adding to it.
    #[arg(short = 't', long = "truncate")]
    pub truncate: bool,
    /// Chunk compression.
    #[arg(short = 'c', long = "compression", value_name = "CODEC", default_value = "snappy", value_parser = ["snappy", "lz4", "zlib", "deflate", "stored"])]
    pub codec: String,
    /// Compression threads (default: all cores).
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
    /// Linear hashes of each image, comma-separated: md5, sha1, sha256, sha512, blake2b.
    #[arg(long = "hash", value_delimiter = ',', default_value = "sha256")]
    pub hashes: Vec<String>,
    /// Also write per-chunk block hashes with these algorithms (and the Block-Map hash).
    #[arg(long = "block-hashes", value_delimiter = ',')]
    pub block_hashes: Vec<String>,
    /// Chunks per bevy.
    #[arg(long, default_value_t = 1024)]
    pub chunks_per_bevy: u32,
    /// Split the volume into parts of at most SIZE (e.g. 650M, 4G): OUT.aff4, OUT.A01, OUT.A02, …,
    /// which open together (give the first; the others are found beside it).
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size)]
    pub split: Option<u64>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary (errors still go to stderr).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress as JSON lines on stderr instead of a bar (about once a second and at each phase:
    /// {"phase", "done", "total", …, "elapsed"}), for scripts and fleet tools.
    #[arg(long)]
    pub progress_json: bool,
}

/// A volume uploaded to object storage as it is written (multipart; completed at the end, aborted on failure).
#[cfg(feature = "s3")]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    let (writer, upload) = remote::create(url).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)?;
    let u = url.to_string();
    let complete: aff4::volume::write::OnClose =
        Box::new(move || upload.complete().map(|_| ()).map_err(|e| aff4::Error::io(u.clone(), std::io::Error::other(e.to_string()))));
    VolumeWriter::streaming(Box::new(writer), url, Some(complete)).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)
}

#[cfg(not(feature = "s3"))]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    Err(anyhow!("{url}: this pmem was built without S3 support (cargo feature s3)")).code(exit::USAGE)
}

/// Parses a size: bytes, or with K, M, G, T (powers of 1024; an optional trailing B or iB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).or_else(|| t.strip_suffix('b')).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s}: not a size (e.g. 650M, 4G)"))?;
    if n.is_nan() || n <= 0.0 || n * mult as f64 > u64::MAX as f64 {
        return Err(format!("{s}: not a usable size"));
    }
    Ok((n * mult as f64) as u64)
}

fn algos(names: &[String]) -> Result<Vec<HashAlgo>, Failure> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| HashAlgo::from_name(n).ok_or_else(|| anyhow!("unknown hash {n:?} (md5, sha1, sha256, sha512, blake2b)")))
        .collect::<Result<_, _>>()
        .code(exit::USAGE)
}

impl StoreArgs {
    /// Pipeline options from the flags.
    pub fn imager_options(&self) -> Result<ImagerOptions, Failure> {
        Ok(ImagerOptions {
            codec: Codec::from_name(&self.codec).ok_or_else(|| anyhow!("unknown codec {}", self.codec)).code(exit::USAGE)?,
            threads: threads(self.threads),
            hashes: algos(&self.hashes)?,
            block_hashes: algos(&self.block_hashes)?,
            chunks_per_bevy: self.chunks_per_bevy,
            ..ImagerOptions::default()
        })
    }
    /// Opens the output volume.
    pub fn open_volume(&self) -> Result<VolumeWriter, Failure> {
        if self.output.as_os_str() == "-" && self.json {
            return Err(anyhow!("--json and -o - both want stdout; drop one")).code(exit::USAGE);
        }
        let name = self.output.display().to_string();
        if name.starts_with("s3://") {
            if self.split.is_some() {
                return Err(anyhow!("--split writes files; it cannot be combined with -o {name}")).code(exit::USAGE);
            }
            return open_remote(&name);
        }
        let mode = if self.truncate { Mode::Truncate } else { Mode::Append };
        let mut vol = VolumeWriter::create(&self.output, mode)
            .with_context(|| format!("cannot write {}", self.output.display()))
            .code(exit::OUTPUT)?;
        if let Some(limit) = self.split {
            // Room for one full bevy stored uncompressed, its index, and the part's turtle and directory.
            let chunk = ImagerOptions::default().chunk_size as u64;
            let margin = chunk * u64::from(self.chunks_per_bevy) * 17 / 16 + (4 << 20);
            vol.set_split(limit, margin, self.truncate).context("--split").code(exit::USAGE)?;
        }
        Ok(vol)
    }
    /// Hash algorithms for logical files.
    pub fn file_hashes(&self) -> Result<Vec<HashAlgo>, Failure> {
        algos(&self.hashes)
    }
}

/// Times of a file as RFC 3339.
pub fn file_times(meta: &std::fs::Metadata) -> FileTimes {
    let f = |t: std::io::Result<std::time::SystemTime>| {
        t.ok().map(|t| time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
    };
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        time::OffsetDateTime::from_unix_timestamp(meta.ctime())
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
    };
    #[cfg(not(unix))]
    let changed = None;
    FileTimes { modified: f(meta.modified()), accessed: f(meta.accessed()), changed, born: f(meta.created()) }
}

/// Adds logical files (globs allowed) to `vol`; returns (name, urn, size).
pub fn add_logical(vol: &mut VolumeWriter, patterns: &[String], hashes: &[HashAlgo]) -> Result<Vec<(String, String, u64)>, Failure> {
    let mut out = Vec::new();
    for pat in patterns {
        let paths = expand(pat);
        if paths.is_empty() {
            return Err(anyhow!("{pat}: no such file")).code(exit::INPUT);
        }
        for p in paths {
            let name = std::path::absolute(&p).unwrap_or(p.clone()).display().to_string();
            let mut f = File::open(&p).with_context(|| format!("cannot read {}", p.display())).code(exit::INPUT)?;
            let meta = f.metadata().code(exit::INPUT)?;
            if meta.is_dir() {
                continue;
            }
            let (urn, size) =
                add_file(vol, &name, &mut f, &file_times(&meta), hashes).with_context(|| format!("adding {name}")).code(exit::OUTPUT)?;
            out.push((name, urn, size));
        }
    }
    Ok(out)
}

/// Expands `*`/`?` in the last path component.
pub fn expand(pat: &str) -> Vec<PathBuf> {
    let p = Path::new(pat);
    let Some(fname) = p.file_name().map(|f| f.to_string_lossy().into_owned()) else { return vec![p.to_path_buf()] };
    if !fname.contains(['*', '?']) {
        return if p.exists() { vec![p.to_path_buf()] } else { vec![] };
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| crate::cmd::export::glob(&fname, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The size of a Windows disk or volume (`\\.\PhysicalDrive0`, `\\.\C:`), which seeking cannot tell.
#[cfg(windows)]
fn device_size(f: &File) -> Option<u64> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Ioctl::{GET_LENGTH_INFORMATION, IOCTL_DISK_GET_LENGTH_INFO};
    let mut info = GET_LENGTH_INFORMATION { Length: 0 };
    let mut returned = 0u32;
    // SAFETY: the output buffer is a GET_LENGTH_INFORMATION; the call is synchronous.
    let ok = unsafe {
        windows_sys::Win32::System::IO::DeviceIoControl(
            f.as_raw_handle(),
            IOCTL_DISK_GET_LENGTH_INFO,
            std::ptr::null(),
            0,
            (&mut info as *mut GET_LENGTH_INFORMATION).cast(),
            std::mem::size_of::<GET_LENGTH_INFORMATION>() as u32,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    (ok != 0 && info.Length > 0).then_some(info.Length as u64)
}

#[cfg(not(windows))]
fn device_size(_: &File) -> Option<u64> {
    None
}

fn input_size(f: &File) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = f.metadata().ok()?;
    if meta.is_file() {
        return Some(meta.len());
    }
    if let Some(n) = device_size(f) {
        return Some(n);
    }
    let mut g = f.try_clone().ok()?;
    let end = g.seek(SeekFrom::End(0)).ok()?;
    g.seek(SeekFrom::Start(0)).ok()?;
    (end > 0).then_some(end)
}

const BLOCK: usize = 4 << 20;
const SECTOR: usize = 4096;

/// What the reader thread hands to the pipeline, in order.
enum Piece {
    /// Bytes at an offset.
    Data(u64, Vec<u8>),
    /// A range that stayed unreadable after sector-by-sector retries.
    Unreadable(u64, u64),
    /// Reading cannot go on.
    Failed(u64, std::io::Error),
}

/// Reads `input` in blocks on its own thread (so that the kernel's copy overlaps hashing and
/// compression); a bad region of a device is retried sector by sector and what stays
/// unreadable is reported as such.
fn reader(input: String, r: Box<dyn Read + Send>, size: Option<u64>, bufs: aff4::imager::Buffers, tx: std::sync::mpsc::SyncSender<Piece>) {
    let mut off = 0u64;
    if let Err(e) = read_pieces(&input, r, size, &bufs, &tx, &mut off) {
        let _ = tx.send(Piece::Failed(off, e));
    }
}

/// Sends `input`'s pieces in order until its end (or until nobody listens); an error is a
/// failure at `*off` that sector retries could not get past.
fn read_pieces(
    input: &str,
    mut r: Box<dyn Read + Send>,
    size: Option<u64>,
    bufs: &aff4::imager::Buffers,
    tx: &std::sync::mpsc::SyncSender<Piece>,
    off: &mut u64,
) -> std::io::Result<()> {
    // stdin: a block is passed on early when the pipe goes quiet, so that what came before a
    // Ctrl-C is kept even if the pipe then stays silent (a block would wait to be full).
    let whole = input != "-";
    loop {
        let mut buf = bufs.get(BLOCK);
        let n = match (read_full(&mut r, &mut buf, whole), size) {
            (Ok(n), _) => n,
            (Err(_), Some(size)) => {
                let end = size.min(*off + BLOCK as u64);
                if end <= *off {
                    return Ok(());
                }
                salvage(input, *off, end, tx)?;
                *off = end;
                r = reopen_at(input, *off)?;
                continue;
            }
            (Err(e), None) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        if tx.send(Piece::Data(*off, buf)).is_err() {
            return Ok(());
        }
        *off += n as u64;
    }
}

/// Images one input (path or `-`) into `vol`; returns a JSON summary.
fn image_one(
    vol: &mut VolumeWriter,
    input: &str,
    opts: &ImagerOptions,
    quiet: bool,
    jl: &mut Option<progress::JsonLines>,
) -> Result<serde_json::Value, Failure> {
    let started = aff4::rdf::now();
    let (reader_input, size, meta): (Box<dyn Read + Send>, Option<u64>, Option<std::fs::Metadata>) = if input == "-" {
        (Box::new(std::io::stdin()), None, None)
    } else {
        let f = File::open(input).with_context(|| format!("cannot read {input}")).code(exit::INPUT)?;
        let size = input_size(&f);
        let meta = f.metadata().ok();
        (Box::new(f), size, meta)
    };
    let mut im = Imager::new(opts.clone()).code(exit::USAGE)?;
    im.announce(size, &DISK_TYPES);
    let pb = progress::bytes(size.unwrap_or(0), input, quiet);
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let (name, bufs) = (input.to_string(), im.buffers());
    let thread = std::thread::spawn(move || reader(name, reader_input, size, bufs, tx));
    let mut off = 0u64;
    let mut unreadable = 0u64;
    let mut interrupted = false;
    // A write to the volume failed (a full disk): the image is closed with what was stored.
    let mut write_error: Option<String> = None;
    loop {
        let piece = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(p) => Some(p),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Ctrl-C is noticed after each piece, and every 200 ms while the input is silent.
        if let Some(piece) = piece {
            let stored = match piece {
                Piece::Data(at, buf) => {
                    off = at + buf.len() as u64;
                    im.write(vol, at, buf)
                }
                Piece::Unreadable(at, len) => {
                    off = at + len;
                    unreadable += len;
                    im.fill(at, len, Symbolic::Unreadable)
                }
                Piece::Failed(at, e) => return Err(anyhow!("reading {input} at offset {at}: {e}")).code(exit::INPUT),
            };
            if let Err(e) = stored {
                // A stream (stdout, an upload) cannot be cut back: the error is final.
                if vol.is_streamed() {
                    return Err(e).with_context(|| format!("writing {}", vol.path().display())).code(exit::OUTPUT);
                }
                write_error = Some(e.to_string());
                break;
            }
            pb.set_position(off);
            if let Some(j) = jl.as_mut() {
                j.tick(json!({"phase": "image", "input": input, "done": off, "total": size}), false);
            }
        }
        if crate::signals::stopped() {
            interrupted = true;
            break;
        }
    }
    let mut end = off;
    if write_error.is_some() {
        drop(rx);
        end = size.unwrap_or(off).max(off);
    } else if interrupted {
        // The reader may be blocked in a read: it is left behind (it ends when its next send fails).
        drop(rx);
        // A known size: the rest is unknown, not zeros, and is not hashed (aff4:prefixHash).
        if let Some(size) = size.filter(|s| *s > off) {
            im.stop_hashing();
            im.fill(off, size - off, Symbolic::Unknown).with_context(|| format!("writing {}", vol.path().display())).code(exit::OUTPUT)?;
            end = size;
        }
    } else {
        let _ = thread.join();
    }
    pb.finish_and_clear();
    if let Some(j) = jl.as_mut() {
        j.tick(json!({"phase": "image", "input": input, "done": off, "total": size, "interrupted": interrupted}), true);
    }
    let r = match &write_error {
        None => im.finish(vol, end),
        Some(_) => im.abandon(vol, end),
    }
    .with_context(|| format!("writing {}", vol.path().display()))
    .code(exit::OUTPUT)?;
    let image = aff4::urn::new_urn();
    let mut extra = vec![
        (
            format!("{}diskDeviceName", vocab::AFF4),
            Node::string(if input == "-" {
                "(stdin)".to_string()
            } else {
                std::path::absolute(input).map(|p| p.display().to_string()).unwrap_or(input.to_string())
            }),
        ),
        (format!("{}acquisitionStartTime", vocab::AFF4), Node::typed(started, format!("{}dateTime", vocab::XSD))),
        (format!("{}acquisitionEndTime", vocab::AFF4), Node::typed(aff4::rdf::now(), format!("{}dateTime", vocab::XSD))),
        (
            format!("{}acquisitionCompletionState", vocab::AFF4),
            Node::string(if let Some(e) = &write_error {
                format!("Incomplete: stopped at byte {}: writing the volume failed: {e}", r.lost_from.unwrap_or(off))
            } else if interrupted {
                format!("Interrupted: incomplete: stopped at byte {off}")
            } else if unreadable > 0 {
                "Completed with read errors".to_string()
            } else {
                "Completed Normally".to_string()
            }),
        ),
    ];
    if let Some(m) = &meta {
        let t = file_times(m);
        for (p, v) in [("lastWritten", t.modified), ("lastAccessed", t.accessed), ("recordChanged", t.changed)] {
            if let Some(v) = v {
                extra.push((format!("{}{p}", vocab::AFF4), Node::typed(v, format!("{}dateTime", vocab::XSD))));
            }
        }
    }
    if unreadable > 0 {
        extra.push((format!("{}unreadableBytes", vocab::AFF4), Node::long(unreadable)));
    }
    describe_image(vol, &image, &r, &DISK_TYPES, extra);
    Ok(json!({
        "input": input, "image": image, "map": r.map_urn, "stream": r.stream_urn, "size": r.size,
        "stored_bytes": r.stats.stored_bytes, "zero_bytes": r.stats.zero_bytes, "unreadable_bytes": r.stats.unreadable_bytes,
        "interrupted": interrupted, "hashed_bytes": r.hashed, "write_error": write_error,
        "kept_bytes": if write_error.is_some() { r.lost_from.unwrap_or(0) } else { r.size },
        "hashes": r.hashes.iter().map(|(a, d)| (a.name().to_string(), aff4::hash::hex(d))).collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

/// Reads until `buf` is full or the input ends; with `whole` false (stdin), also returns what
/// it has once stdin has had nothing more for a moment.
fn read_full(r: &mut dyn Read, buf: &mut [u8], whole: bool) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        if !whole && n > 0 && !stdin_ready() {
            break;
        }
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether stdin has bytes (or its end) to read within 100 ms.
#[cfg(unix)]
fn stdin_ready() -> bool {
    let mut p = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut p, 1, 100) != 0 }
}

/// Whether stdin has bytes to read (not known here: wait for a full block).
#[cfg(not(unix))]
fn stdin_ready() -> bool {
    true
}

fn reopen_at(input: &str, off: u64) -> std::io::Result<Box<dyn Read + Send>> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(input)?;
    f.seek(SeekFrom::Start(off))?;
    Ok(Box::new(f))
}

fn salvage(input: &str, start: u64, end: u64, tx: &std::sync::mpsc::SyncSender<Piece>) -> std::io::Result<()> {
    let f = File::open(input)?;
    let mut off = start;
    while off < end {
        let n = ((end - off) as usize).min(SECTOR);
        let mut b = vec![0u8; n];
        let piece = match aff4::stream::read_exact_at(&f, off, &mut b) {
            Ok(()) => Piece::Data(off, b),
            Err(_) => Piece::Unreadable(off, n as u64),
        };
        if tx.send(piece).is_err() {
            break;
        }
        off += n as u64;
    }
    Ok(())
}

pub fn run(store: &StoreArgs, inputs: &[String], logical: &[String]) -> Result<u8, Failure> {
    if inputs.is_empty() && logical.is_empty() {
        return Err(anyhow!("nothing to image: give INPUT files/devices or -i FILE")).code(exit::USAGE);
    }
    let opts = store.imager_options()?;
    // Every input is checked before the volume is created, so a typo leaves nothing behind.
    for input in inputs.iter().filter(|i| *i != "-") {
        let meta = std::fs::metadata(input).with_context(|| format!("cannot read {input}")).code(exit::INPUT)?;
        if meta.is_dir() {
            return Err(anyhow!("{input} is a directory: image a file or device, or add its files with -i '{input}/*'")).code(exit::USAGE);
        }
    }
    let mut vol = store.open_volume()?;
    crate::signals::install();
    let mut summary = Vec::new();
    let mut interrupted = false;
    let mut jl = progress::JsonLines::new(store.progress_json);
    for input in inputs {
        let s = image_one(&mut vol, input, &opts, store.quiet || store.json || store.progress_json, &mut jl)?;
        interrupted = s["interrupted"] == true;
        if !store.json && !store.quiet {
            let hashed = s["hashed_bytes"].as_u64().unwrap_or(0);
            eprintln!(
                "{input}: {}{} bytes ({}) -> {} stored; {}{}",
                if interrupted { "INTERRUPTED, " } else { "" },
                s["size"],
                human(s["size"].as_u64().unwrap_or(0)),
                human(s["stored_bytes"].as_u64().unwrap_or(0)),
                if s["hashed_bytes"] == s["size"] { String::new() } else { format!("hashes of the first {hashed} bytes: ") },
                s["hashes"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
        }
        let failed = !s["write_error"].is_null();
        summary.push(s);
        if interrupted || failed {
            break;
        }
    }
    let write_error = summary.iter().find_map(|s| s["write_error"].as_str().map(String::from));
    // Interrupted: the volume is closed with what it has; inputs and files not reached are left out.
    if write_error.is_some() && summary.iter().all(|s| s["kept_bytes"] == 0) {
        // Nothing of the input was stored: the volume is left as it was (a new one removed).
        let path = vol.path().display().to_string();
        vol.discard();
        return Err(anyhow!("{}\nnothing of the input could be stored; {path} is as it was before", write_error.unwrap_or_default()))
            .code(exit::OUTPUT);
    }
    let files = if interrupted || write_error.is_some() { Vec::new() } else { add_logical(&mut vol, logical, &store.file_hashes()?)? };
    let path = vol.path().display().to_string();
    let urn = vol.urn().to_string();
    vol.finish().with_context(|| format!("closing {path}")).code(exit::OUTPUT)?;
    if store.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"volume": path, "urn": urn, "images": summary, "files": files.iter().map(|(n, u, s)| json!({"name": n, "urn": u, "size": s})).collect::<Vec<_>>()})
            )?
        );
    } else if !store.quiet {
        eprintln!(
            "wrote {path} ({urn}){}",
            if interrupted { "; interrupted: the inputs after it and -i files were not imaged" } else { "" }
        );
    }
    if let Some(e) = write_error {
        return Err(anyhow!(
            "{e}\n{path} was closed with what had been stored; the rest is recorded as unknown (`pmem verify {path}` says what it holds)"
        ))
        .code(exit::OUTPUT);
    }
    Ok(if interrupted { exit::INTERRUPTED } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("650M"), Ok(650 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "-1G", "0", "NaN", "1e400T", "12Q"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
