//! Pagefiles and swap (`-p`), captured beside the memory as images of category
//! `memory:pagefile`, numbered as winpmem numbers them.
//!
//! Windows keeps `pagefile.sys` open for itself, so it is read out of its NTFS volume opened raw
//! (`\\.\C:`) with the `ntfs` crate, as winpmem did with TSK's fcat. The same path works on any
//! OS for a volume device or disk image (`-p '\pagefile.sys@/dev/sdb2'`); swap files and
//! partitions are read directly. Clusters that cannot be read become `aff4:UnreadableData`.

use crate::error::{Error, Result};
use aff4::imager::{describe_image, Imager, ImagerOptions, ImagerResult};
use aff4::rdf::Node;
use aff4::symbolic::Symbolic;
use aff4::vocab::{self, AFF4, XSD};
use aff4::volume::write::VolumeWriter;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::{Ntfs, NtfsReadSeek};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};

/// `memory:pagefile`, the category winpmem gives pagefile streams.
pub const MEMORY_PAGEFILE: &str = "http://aff4.org/Schema#memory/pagefile";
/// `memory:pagefile_number`, the pagefile's index.
pub const PAGEFILE_NUMBER: &str = "http://aff4.org/Schema#memory/pagefile_number";

/// Unit of retries and of unreadable accounting (a typical NTFS cluster).
const RETRY: usize = 4096;
/// Read size when all goes well.
const BLOCK: usize = 1 << 20;

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

/// Receives a file's data in order: `Ok(bytes)`, or `Err(length)` for a piece that could not
/// be read.
pub type Sink<'a> = dyn FnMut(u64, std::result::Result<&[u8], u64>) -> Result<()> + 'a;

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
pub fn read_ntfs_file<R: Read + Seek>(fs: &mut R, name: &str, path: &str, info: &mut NtfsFileInfo, sink: &mut Sink<'_>) -> Result<()> {
    let run = std::panic::AssertUnwindSafe(|| read_ntfs_inner(fs, name, path, info, sink));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(Error::Io { context: format!("{name}: {path}"), error: io::Error::other("malformed NTFS metadata (the NTFS parser gave up)") })
    })
}

fn read_ntfs_inner<R: Read + Seek>(fs: &mut R, name: &str, path: &str, info: &mut NtfsFileInfo, sink: &mut Sink<'_>) -> Result<()> {
    let bad = |what: String| Error::Io { context: format!("{name}: {path}"), error: io::Error::other(what) };
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
    let mut read = |off: u64, buf: &mut [u8]| -> io::Result<()> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> io::Result<()> {
            if at != Some(off) {
                value.seek(fs, SeekFrom::Start(off)).map_err(io::Error::other)?;
            }
            let mut n = 0;
            while n < buf.len() {
                match value.read(fs, &mut buf[n..]).map_err(io::Error::other)? {
                    0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "data ends early")),
                    k => n += k,
                }
            }
            Ok(())
        }));
        match r {
            Ok(Ok(())) => {
                at = Some(off + buf.len() as u64);
                Ok(())
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
    copy_blocks(&format!("{name}: {path}"), info.size, &mut read, sink)
}

/// Hands `size` bytes read by `read` to `sink` block by block; a block that fails is retried
/// 4 KiB at a time and what still fails is reported as `Err(length)`. Data that ends before
/// `size` (a lying size, a file that shrank) stops the copy with an error naming `name`.
fn copy_blocks(name: &str, size: u64, read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>, sink: &mut Sink<'_>) -> Result<()> {
    let mut buf = vec![0u8; BLOCK];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(BLOCK as u64) as usize;
        if read(off, &mut buf[..n]).is_ok() {
            sink(off, Ok(&buf[..n]))?;
        } else {
            let mut sub = 0;
            while sub < n {
                let k = (n - sub).min(RETRY);
                let at = off + sub as u64;
                match read(at, &mut buf[..k]) {
                    Ok(()) => sink(at, Ok(&buf[..k]))?,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        let error = io::Error::new(e.kind(), format!("the data ends at byte {at} of {size}"));
                        return Err(Error::Io { context: name.to_string(), error });
                    }
                    Err(_) => sink(at, Err(k as u64))?,
                }
                sub += k;
            }
        }
        off += n as u64;
    }
    Ok(())
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
    Error::Io { context: format!("{context}{hint}"), error }
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
    let started = aff4::rdf::now();
    let mut im = Imager::new(opts.clone())?;
    let mut unreadable = 0u64;
    let mut sink = |off: u64, data: std::result::Result<&[u8], u64>| -> Result<()> {
        match data {
            Ok(b) => {
                let mut v = im.buffer(b.len());
                v.copy_from_slice(b);
                im.write(vol, off, v)?;
            }
            Err(len) => {
                unreadable += len;
                im.fill(off, len, Symbolic::Unreadable)?;
            }
        }
        Ok(())
    };
    let mut done = 0u64;
    let mut info = NtfsFileInfo::default();
    let mut counted = |off: u64, d: std::result::Result<&[u8], u64>| {
        if stop.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        let end = off + d.map_or_else(|n| n, |b| b.len() as u64);
        sink(off, d)?;
        done = end;
        progress(done);
        Ok(())
    };
    let (read, method, volume) = match spec {
        PagefileSpec::Ntfs { volume, path } => {
            let f = open_volume(volume).map_err(|e| io_err(format!("{volume}: cannot open the volume to read {path}"), e))?;
            // 4 KiB: a multiple of both 512-byte and 4Kn sectors.
            let mut fs = Aligned::new(f, 4096);
            (read_ntfs_file(&mut fs, volume, path, &mut info, &mut counted), "ntfs", Some(volume.clone()))
        }
        PagefileSpec::Direct(path) => {
            let mut f = open_volume(path).map_err(|e| io_err(format!("{path}: cannot open"), e))?;
            info.size = f.seek(SeekFrom::End(0)).map_err(|e| io_err(format!("{path}: size"), e))?;
            if let Ok(t) = f.metadata().and_then(|m| m.modified()) {
                if let Ok(s) = time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339) {
                    info.times.push(("lastWritten", s));
                }
            }
            let mut read = |off: u64, buf: &mut [u8]| aff4::stream::read_exact_at(&f, off, buf);
            (copy_blocks(path, info.size, &mut read, &mut counted), "direct", None)
        }
    };
    let interrupted = matches!(read, Err(Error::Interrupted));
    let failure = match read {
        Ok(()) => None,
        // Nothing is in the volume yet, or the volume itself failed: the caller reports it.
        Err(e) if done == 0 || matches!(e, Error::Aff4(_)) => return Err(e),
        // Part of the data is in the volume: keep it, and say where and why it stopped.
        Err(e) => Some(e.to_string()),
    };
    if done < info.size && interrupted {
        // Stop promptly: the linear hashes cover what was read (aff4:prefixHash), not the rest.
        im.stop_hashing();
        im.fill(done, info.size - done, Symbolic::Unknown)?;
    } else if done < info.size {
        unreadable += info.size - done;
        im.fill(done, info.size - done, Symbolic::Unreadable)?;
    }
    let result = im.finish(vol, info.size)?;
    let image = aff4::urn::new_urn();
    let a = |l: &str| format!("{AFF4}{l}");
    let dt = format!("{XSD}dateTime");
    let name = spec.name();
    let mut extra = vec![
        (a("category"), Node::iri(MEMORY_PAGEFILE)),
        (PAGEFILE_NUMBER.to_string(), Node::long(number)),
        (a("originalFileName"), Node::string(name.clone())),
        (a("pagefileReadMethod"), Node::string(method)),
        (a("acquisitionStartTime"), Node::typed(started, &dt)),
        (a("acquisitionEndTime"), Node::typed(aff4::rdf::now(), &dt)),
        (
            a("acquisitionCompletionState"),
            Node::string(match &failure {
                Some(e) => format!("Incomplete: stopped at byte {done}: {e}"),
                None if unreadable > 0 => "Completed with read errors".to_string(),
                None => "Completed Normally".to_string(),
            }),
        ),
    ];
    if let Some(v) = volume {
        extra.push((a("pagefileVolume"), Node::string(v)));
    }
    if unreadable > 0 {
        extra.push((a("unreadableBytes"), Node::long(unreadable)));
    }
    for (k, v) in &info.times {
        extra.push((a(k), Node::typed(v.clone(), &dt)));
    }
    describe_image(vol, &image, &result, &[vocab::IMAGE, vocab::CONTIGUOUS_IMAGE], extra);
    vol.graph_mut().add(&result.map_urn, &a("category"), Node::iri(MEMORY_PAGEFILE));
    Ok(PagefileReport { name, image, size: info.size, unreadable_bytes: unreadable, method, incomplete: failure, interrupted, result })
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
    fn data_that_ends_before_its_size_stops_the_copy() {
        let data = vec![7u8; 5000];
        let mut read = |off: u64, buf: &mut [u8]| aff4::stream::read_exact_at(&data, off, buf);
        let mut got = Vec::new();
        let mut sink = |off: u64, d: std::result::Result<&[u8], u64>| {
            got.push((off, d.map(<[u8]>::len).map_err(|n| n as usize)));
            Ok(())
        };
        let e = copy_blocks("lying", u64::MAX, &mut read, &mut sink).unwrap_err().to_string();
        assert!(e.contains("lying") && e.contains("ends at byte 4096"), "{e}");
        assert_eq!(got, vec![(0, Ok(4096))]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut sink = |_: u64, _: std::result::Result<&[u8], u64>| Ok(());
        for data in
            [vec![0u8; 4096], vec![0xffu8; 1 << 16], b"\xebR\x90NTFS    ".iter().copied().chain(std::iter::repeat_n(0, 8192)).collect()]
        {
            for len in [data.len(), 0, 512, 700] {
                let mut c = Aligned::new(std::io::Cursor::new(&data[..len]), 512);
                assert!(read_ntfs_file(&mut c, "mem", r"\pagefile.sys", &mut NtfsFileInfo::default(), &mut sink).is_err());
            }
        }
    }
}
