//! Pagefiles and swap (`-p`), captured beside the memory as images of category
//! `memory:pagefile`, numbered as winpmem numbers them.
//!
//! Windows keeps `pagefile.sys` open for itself, so it is read out of its NTFS volume opened raw
//! (`\\.\C:`) with the `ntfs` crate, as winpmem did with TSK's fcat. The same path works on any
//! OS for a volume device or disk image (`-p '\pagefile.sys@/dev/sdb2'`); swap files and
//! partitions are read directly. Clusters that cannot be read become `aff4:UnreadableData`.

use crate::error::{Error, Result};
use aff4::capture::{Capture, Input, OnProgress, Plan, RetryPolicy};
use aff4::imager::{Completion, FinishedImage, ImagerOptions, ImagerResult};
use aff4::rdf::Node;
use aff4::vocab::{self, AFF4, XSD};
use aff4::volume::write::VolumeWriter;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::{Ntfs, NtfsReadSeek};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::AtomicBool;

/// `memory:pagefile`, the category winpmem gives pagefile streams.
pub const MEMORY_PAGEFILE: &str = "http://aff4.org/Schema#memory/pagefile";
/// `memory:pagefile_number`, the pagefile's index.
pub const PAGEFILE_NUMBER: &str = "http://aff4.org/Schema#memory/pagefile_number";

/// Read size when all goes well.
const BLOCK: u64 = 1 << 20;

/// Where a pagefile is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagefileSpec {
    /// A file or device read directly (a Linux swap file or partition, an unlocked copy).
    Direct(String),
    /// A file inside the NTFS filesystem on `volume` (a raw volume or a disk image).
    Ntfs {
        /// The volume (`\\.\C:`, `/dev/sdb2`, `disk.img`).
        volume: String,
        /// The path inside it (`\pagefile.sys`).
        path: String,
    },
}

impl PagefileSpec {
    /// Parses `-p`'s argument: `FILE@VOLUME` reads FILE out of the NTFS filesystem on VOLUME;
    /// a drive-letter path (`C:\pagefile.sys`) means its raw volume (`\\.\C:`) on Windows;
    /// anything else is read directly.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if let Some((path, volume)) = s.rsplit_once('@') {
            if path.is_empty() || volume.is_empty() {
                return Err(format!("{s}: expected FILE@VOLUME, e.g. '\\pagefile.sys@/dev/sdb2'"));
            }
            return Ok(PagefileSpec::Ntfs { volume: volume.to_string(), path: path.to_string() });
        }
        let b = s.as_bytes();
        if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/') {
            if cfg!(windows) {
                return Ok(PagefileSpec::Ntfs {
                    volume: format!(r"\\.\{}:", (b[0] as char).to_ascii_uppercase()),
                    path: s[2..].to_string(),
                });
            }
            return Err(format!(
                "{s}: a drive-letter path needs Windows; name the NTFS volume that holds it instead, e.g. -p '\\pagefile.sys@/dev/sdb2'"
            ));
        }
        if s.is_empty() {
            return Err("empty pagefile path".into());
        }
        Ok(PagefileSpec::Direct(s.to_string()))
    }

    /// The name recorded for the image: `C:\pagefile.sys` for a Windows drive, else the path
    /// (with its volume for NTFS volumes that are not drive letters).
    pub fn name(&self) -> String {
        match self {
            PagefileSpec::Direct(p) => p.clone(),
            PagefileSpec::Ntfs { volume, path } => match drive_letter(volume) {
                Some(d) => format!("{d}:{path}"),
                None => format!("{path}@{volume}"),
            },
        }
    }
}

fn drive_letter(volume: &str) -> Option<char> {
    let rest = volume.strip_prefix(r"\\.\").or_else(|| volume.strip_prefix("//./"))?;
    let b = rest.as_bytes();
    (b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':').then(|| (b[0] as char).to_ascii_uppercase())
}

/// Sector-aligned reads with a small cache: raw volumes on Windows accept only reads of whole
/// sectors at sector offsets, and NTFS metadata is read a few bytes at a time.
pub struct Aligned<R> {
    inner: R,
    pos: u64,
    sector: u64,
    cache: Vec<u8>,
    cache_at: u64,
    cache_len: usize,
}

const CACHE: usize = 64 << 10;

impl<R: Read + Seek> Aligned<R> {
    /// Wraps `inner`, whose reads must be multiples of `sector` (a power of two, at most 64 KiB).
    pub fn new(inner: R, sector: u64) -> Self {
        let sector = if sector.is_power_of_two() && sector <= CACHE as u64 { sector } else { 512 };
        Aligned { inner, pos: 0, sector, cache: Vec::new(), cache_at: 0, cache_len: 0 }
    }

    /// Reads whole sectors covering [at, at + buf.len()) into `buf` (aligned), to EOF.
    fn read_aligned(&mut self, at: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.seek(SeekFrom::Start(at))?;
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    if !(k as u64).is_multiple_of(self.sector) {
                        // The end of a file that is not a whole number of sectors.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

impl<R: Read + Seek> Read for Aligned<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let in_cache = self.pos >= self.cache_at && self.pos < self.cache_at.saturating_add(self.cache_len as u64);
        if !in_cache {
            let start = self.pos / self.sector * self.sector;
            let lead = (self.pos - start) as usize;
            if buf.len() + lead <= CACHE {
                self.cache.resize(CACHE, 0);
                let mut cache = std::mem::take(&mut self.cache);
                let got = self.read_aligned(start, &mut cache);
                self.cache = cache;
                self.cache_at = start;
                self.cache_len = got.as_ref().map_or(0, |n| *n);
            }
            if self.cache_len == 0 || self.cache_at != start {
                // Large reads, and reads near a bad sector (so that only the sectors that fail
                // are lost), go around the cache in one aligned read.
                let len = (lead + buf.len()).div_ceil(self.sector as usize) * self.sector as usize;
                let mut tmp = vec![0u8; len];
                let got = self.read_aligned(start, &mut tmp)?;
                let n = got.saturating_sub(lead).min(buf.len());
                buf[..n].copy_from_slice(&tmp[lead..lead + n]);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos >= start.saturating_add(self.cache_len as u64) {
                return Ok(0);
            }
        }
        let off = (self.pos - self.cache_at) as usize;
        let n = buf.len().min(self.cache_len - off);
        buf[..n].copy_from_slice(&self.cache[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Aligned<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            // Raw volumes cannot tell their end this way on Windows; NTFS never needs it.
            SeekFrom::End(_) => return Err(io::Error::new(io::ErrorKind::Unsupported, "seek from the end of a raw volume")),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// Positional reads of a file's data: fills what it can of the buffer, 0 at the end.
pub type DataReader<'a> = dyn FnMut(u64, &mut [u8]) -> io::Result<usize> + 'a;

/// Receives a file found in a filesystem (its size and times) with the reader of its data.
pub type Copy<'a> = dyn FnMut(&NtfsFileInfo, &mut DataReader<'_>) -> Result<()> + 'a;

/// Times and size of a file found in NTFS.
#[derive(Debug, Clone, Default)]
pub struct NtfsFileInfo {
    /// Data size in bytes.
    pub size: u64,
    /// $STANDARD_INFORMATION times as xsd:dateTime (created, modified, MFT record changed, accessed).
    pub times: Vec<(&'static str, String)>,
}

fn nt_time(t: ntfs::NtfsTime) -> Option<String> {
    // 100 ns intervals since 1601-01-01.
    let unix = (t.nt_timestamp() / 10_000_000).checked_sub(11_644_473_600)?;
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).ok()?).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

/// Reads `path` out of the NTFS filesystem on `fs` in order, handing each block to `sink` as
/// `Ok(bytes)` or, for a 4 KiB piece that cannot be read, `Err(length)`. `info` is filled in
/// before the first block. `name` names the volume in errors.
///
/// The `ntfs` crate panics on some malformed metadata (binrw errors it does not expect, e.g. a
/// truncated volume); those panics are contained here and become errors.
///
/// # Errors
/// The filesystem or the path cannot be parsed or read, or `sink` fails.
pub fn read_ntfs_file<R: Read + Seek>(fs: &mut R, name: &str, path: &str, info: &mut NtfsFileInfo, copy: &mut Copy<'_>) -> Result<()> {
    let run = std::panic::AssertUnwindSafe(|| read_ntfs_inner(fs, name, path, info, copy));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(Error::io(format!("{name}: {path}"), io::Error::other("malformed NTFS metadata (the NTFS parser gave up)")))
    })
}

fn read_ntfs_inner<R: Read + Seek>(fs: &mut R, name: &str, path: &str, info: &mut NtfsFileInfo, copy: &mut Copy<'_>) -> Result<()> {
    let bad = |what: String| Error::io(format!("{name}: {path}"), io::Error::other(what));
    let mut ntfs = Ntfs::new(fs).map_err(|e| bad(format!("not an NTFS volume: {e}")))?;
    ntfs.read_upcase_table(fs).map_err(|e| bad(format!("$UpCase: {e}")))?;
    let mut file = ntfs.root_directory(fs).map_err(|e| bad(format!("root directory: {e}")))?;
    for part in path.split(['\\', '/']).filter(|p| !p.is_empty()) {
        let index = file.directory_index(fs).map_err(|e| bad(format!("{part}: parent is not a directory: {e}")))?;
        let mut finder = index.finder();
        let entry = NtfsFileNameIndex::find(&mut finder, &ntfs, fs, part)
            .ok_or_else(|| bad(format!("{part}: no such file")))?
            .map_err(|e| bad(format!("{part}: {e}")))?;
        file = entry.to_file(&ntfs, fs).map_err(|e| bad(format!("{part}: {e}")))?;
    }
    if file.is_directory() {
        return Err(bad("is a directory".into()));
    }
    if let Ok(si) = file.info() {
        for (k, t) in [
            ("birthTime", si.creation_time()),
            ("lastWritten", si.modification_time()),
            ("recordChanged", si.mft_record_modification_time()),
            ("lastAccessed", si.access_time()),
        ] {
            if let Some(v) = nt_time(t) {
                info.times.push((k, v));
            }
        }
    }
    let item = file.data(fs, "").ok_or_else(|| bad("no data stream".into()))?.map_err(|e| bad(format!("$DATA: {e}")))?;
    let attr = item.to_attribute().map_err(|e| bad(format!("$DATA: {e}")))?;
    let mut value = attr.value(fs).map_err(|e| bad(format!("$DATA: {e}")))?;
    info.size = value.len();
    if info.size > ntfs.size() {
        return Err(bad(format!("$DATA claims {} bytes, more than the whole {}-byte volume", info.size, ntfs.size())));
    }
    // Where the value's reader stands, so that sequential reads do not seek through the runs.
    let mut at: Option<u64> = None;
    let mut read = |off: u64, buf: &mut [u8]| -> io::Result<usize> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> io::Result<usize> {
            if at != Some(off) {
                value.seek(fs, SeekFrom::Start(off)).map_err(io::Error::other)?;
            }
            let mut n = 0;
            while n < buf.len() {
                match value.read(fs, &mut buf[n..]).map_err(io::Error::other)? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        }));
        match r {
            Ok(Ok(n)) => {
                at = Some(off + n as u64);
                Ok(n)
            }
            Ok(Err(e)) => {
                at = None;
                Err(e)
            }
            Err(_) => {
                at = None;
                Err(io::Error::other("malformed data runs"))
            }
        }
    };
    copy(info, &mut read)
}

/// What capturing one pagefile did.
#[derive(Debug, Clone)]
pub struct PagefileReport {
    /// Recorded name (`C:\pagefile.sys`).
    pub name: String,
    /// The Image URN.
    pub image: String,
    /// Bytes.
    pub size: u64,
    /// Bytes recorded as unreadable.
    pub unreadable_bytes: u64,
    /// How it was read (`ntfs` or `direct`).
    pub method: &'static str,
    /// Why reading stopped before the end (the rest is recorded as unreadable, or as unknown
    /// when it was interrupted).
    pub incomplete: Option<String>,
    /// `stop` ended the copy.
    pub interrupted: bool,
    /// The imaging result (hashes, stored bytes).
    pub result: ImagerResult,
}

fn open_volume(path: &str) -> io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_READ, FILE_SHARE_WRITE};
        // The system has the volume open for writing; a raw read must share with it.
        o.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE);
    }
    o.open(path)
}

fn io_err(context: String, error: io::Error) -> Error {
    let hint = match error.kind() {
        io::ErrorKind::PermissionDenied if cfg!(windows) => " (reading a raw volume needs an elevated prompt)",
        io::ErrorKind::PermissionDenied => " (run as root)",
        _ => "",
    };
    Error::io(format!("{context}{hint}"), error)
}

/// Captures the pagefile `spec` into `vol` as pagefile number `number`. `progress(done)` is
/// called as blocks are read; setting `stop` ends the copy (what was read is kept, the rest
/// recorded as `aff4:UnknownData`).
///
/// # Errors
/// The pagefile cannot be found or opened (nothing is written then), or the volume fails.
pub fn capture(
    vol: &mut VolumeWriter,
    spec: &PagefileSpec,
    number: u64,
    opts: &ImagerOptions,
    progress: &mut dyn FnMut(u64),
    stop: &AtomicBool,
) -> Result<PagefileReport> {
    let name = spec.name();
    let method = match spec {
        PagefileSpec::Ntfs { .. } => "ntfs",
        PagefileSpec::Direct(_) => "direct",
    };
    let volume = match spec {
        PagefileSpec::Ntfs { volume, .. } => Some(volume.clone()),
        PagefileSpec::Direct(_) => None,
    };
    let mut done: Option<(FinishedImage, u64)> = None;
    // The image is started only once the file is found and its size known: a pagefile that
    // cannot be opened leaves nothing in the volume.
    let mut copy = |info: &NtfsFileInfo, input: Input<'_>| -> Result<()> {
        let mut w = vol.image(opts, &[vocab::IMAGE, vocab::CONTIGUOUS_IMAGE], Some(info.size))?;
        let plan = Plan::Blocks(aff4::capture::blocks(0, info.size, 0, BLOCK, RetryPolicy::sectors().unit));
        let outcome = Capture::new(input, RetryPolicy::sectors(), stop).run(&mut w, &plan, &mut OnProgress(|d, _| progress(d)))?;
        let a = |l: &str| format!("{AFF4}{l}");
        let dt = format!("{XSD}dateTime");
        let mut extra = vec![
            (a("category"), Node::iri(MEMORY_PAGEFILE)),
            (PAGEFILE_NUMBER.to_string(), Node::long(number)),
            (a("originalFileName"), Node::string(name.clone())),
            (a("pagefileReadMethod"), Node::string(method)),
        ];
        if let Some(v) = &volume {
            extra.push((a("pagefileVolume"), Node::string(v.clone())));
        }
        for (k, v) in &info.times {
            extra.push((a(k), Node::typed(v.clone(), &dt)));
        }
        let f = w.finish(info.size, outcome.ending, extra)?;
        vol.graph_mut().add(&f.result.map_urn, &a("category"), Node::iri(MEMORY_PAGEFILE));
        done = Some((f, info.size));
        Ok(())
    };
    match spec {
        PagefileSpec::Ntfs { volume, path } => {
            let f = open_volume(volume).map_err(|e| io_err(format!("{volume}: cannot open the volume to read {path}"), e))?;
            // 4 KiB: a multiple of both 512-byte and 4Kn sectors.
            let mut fs = Aligned::new(f, 4096);
            read_ntfs_file(&mut fs, volume, path, &mut NtfsFileInfo::default(), &mut |info, read| copy(info, Input::Local(read)))?;
        }
        PagefileSpec::Direct(path) => {
            let mut f = open_volume(path).map_err(|e| io_err(format!("{path}: cannot open"), e))?;
            let mut info =
                NtfsFileInfo { size: f.seek(SeekFrom::End(0)).map_err(|e| io_err(format!("{path}: size"), e))?, times: Vec::new() };
            if let Ok(t) = f.metadata().and_then(|m| m.modified()) {
                if let Ok(s) = time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339) {
                    info.times.push(("lastWritten", s));
                }
            }
            copy(&info, Input::Shared(std::sync::Arc::new(f)))?;
        }
    }
    let (f, size) = done.ok_or_else(|| Error::io(name.clone(), io::Error::other("no data was read")))?;
    let FinishedImage { urn, completion, result } = f;
    Ok(PagefileReport {
        name,
        image: urn,
        size,
        unreadable_bytes: result.stats.unreadable_bytes,
        method,
        incomplete: (!completion.is_complete()).then(|| completion.to_string()),
        interrupted: matches!(completion, Completion::Interrupted { .. }),
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            PagefileSpec::parse(r"\pagefile.sys@/dev/sdb2"),
            Ok(PagefileSpec::Ntfs { volume: "/dev/sdb2".into(), path: r"\pagefile.sys".into() })
        );
        assert_eq!(PagefileSpec::parse("/swapfile"), Ok(PagefileSpec::Direct("/swapfile".into())));
        assert!(PagefileSpec::parse("@x").is_err() && PagefileSpec::parse("x@").is_err() && PagefileSpec::parse("").is_err());
        let c = PagefileSpec::parse(r"c:\pagefile.sys");
        if cfg!(windows) {
            let c = c.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c, PagefileSpec::Ntfs { volume: r"\\.\C:".into(), path: r"\pagefile.sys".into() });
            assert_eq!(c.name(), r"C:\pagefile.sys");
        } else {
            assert!(c.unwrap_err().contains("needs Windows"));
        }
        let n = PagefileSpec::Ntfs { volume: r"\\.\D:".into(), path: r"\swapfile.sys".into() };
        assert_eq!(n.name(), r"D:\swapfile.sys");
    }

    #[test]
    fn aligned_reads_only_whole_sectors() {
        struct Strict(std::io::Cursor<Vec<u8>>);
        impl Read for Strict {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                assert!(self.0.position().is_multiple_of(512) && b.len().is_multiple_of(512), "unaligned read");
                self.0.read(b)
            }
        }
        impl Seek for Strict {
            fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
                self.0.seek(p)
            }
        }
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut a = Aligned::new(Strict(std::io::Cursor::new(data.clone())), 512);
        for (off, len) in [(0u64, 1usize), (511, 2), (1000, 70_000), (65_530, 20), (299_990, 100), (123_457, 131_072)] {
            let mut b = vec![0u8; len];
            a.seek(SeekFrom::Start(off)).unwrap_or_default();
            let mut got = 0;
            while got < len {
                match a.read(&mut b[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got += k,
                }
            }
            let end = (off as usize + len).min(data.len());
            assert_eq!(&b[..got], &data[off as usize..end], "at {off}+{len}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut copy = |_: &NtfsFileInfo, _: &mut DataReader<'_>| Ok(());
        for data in
            [vec![0u8; 4096], vec![0xffu8; 1 << 16], b"\xebR\x90NTFS    ".iter().copied().chain(std::iter::repeat_n(0, 8192)).collect()]
        {
            for len in [data.len(), 0, 512, 700] {
                let mut c = Aligned::new(std::io::Cursor::new(&data[..len]), 512);
                assert!(read_ntfs_file(&mut c, "mem", r"\pagefile.sys", &mut NtfsFileInfo::default(), &mut copy).is_err());
            }
        }
    }
}
