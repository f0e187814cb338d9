//! The random-access seam: every byte source (file, ZIP member, ImageStream, Map, symbolic
//! stream) is a [`Stream`], read by offset from any thread; [`StreamReader`] adds `Read + Seek`.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// A random-access byte source of known size, shareable between threads.
pub trait Stream: Send + Sync {
    /// Length in bytes (`u64::MAX` for infinite symbolic streams).
    fn size(&self) -> u64;

    /// Reads up to `buf.len()` bytes at `offset`; returns 0 only at or past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// Fills `buf` from `offset`, failing if the stream ends first.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(offset, buf)?;
            if n == 0 {
                return Err(Error::corrupt(self.describe(), offset, "unexpected end of stream"));
            }
            offset += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// A short name for error messages.
    fn describe(&self) -> String {
        "stream".to_string()
    }

    /// Reads the whole stream into memory, refusing streams larger than `limit` bytes.
    fn read_all(&self, limit: u64) -> Result<Vec<u8>> {
        let size = self.size();
        if size > limit {
            return Err(Error::corrupt(
                self.describe(),
                0,
                format!("size {size} exceeds the limit of {limit} bytes for this kind of data"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.read_exact_at(0, &mut buf)?;
        Ok(buf)
    }
}

/// Positional reads from an OS file (or anything like it).
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Current length.
    fn len(&self) -> io::Result<u64>;
    /// True if empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Whether reads from several threads at once each get their own bytes. False unless the
    /// source knows: a device may copy through one buffer per open file (Linux's /proc/kcore
    /// does), so the capture engine then reads on one thread at a time.
    fn concurrent_reads(&self) -> bool {
        false
    }
}

impl ReadAt for File {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(self, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(self, buf, offset)
        }
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(Vec::len(self) as u64)
    }
}

/// Fills `buf` from `offset` of `r`, retrying short reads; EOF is `UnexpectedEof`.
///
/// # Errors
/// The OS error, or `UnexpectedEof` when the source ends first.
pub fn read_exact_at(r: &dyn ReadAt, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match r.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("ends at offset {}", offset + done as u64))),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A window `[start, start+len)` of a [`ReadAt`], as a [`Stream`] (a stored ZIP member, a file).
pub struct SliceStream {
    inner: Arc<dyn ReadAt>,
    start: u64,
    len: u64,
    name: String,
}

impl SliceStream {
    /// A stream over `len` bytes of `inner` from `start`, named `name` in errors.
    pub fn new(inner: Arc<dyn ReadAt>, start: u64, len: u64, name: impl Into<String>) -> Self {
        SliceStream { inner, start, len, name: name.into() }
    }
}

impl Stream for SliceStream {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let mut done = 0;
        while done < n {
            let pos = self.start + offset + done as u64;
            let got = self.inner.read_at(pos, &mut buf[done..n]).map_err(|e| Error::io(format!("{} at offset {pos}", self.name), e))?;
            if got == 0 {
                return Err(Error::corrupt(&self.name, offset + done as u64, "file is truncated"));
            }
            done += got;
        }
        Ok(n)
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// An in-memory stream (inflated ZIP members, decrypted volumes).
pub struct MemStream {
    data: Arc<Vec<u8>>,
    name: String,
}

impl MemStream {
    /// Wraps `data`, named `name` in errors.
    pub fn new(data: Vec<u8>, name: impl Into<String>) -> Self {
        MemStream { data: Arc::new(data), name: name.into() }
    }
}

impl Stream for MemStream {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        Ok(ReadAt::read_at(&*self.data, offset, buf).unwrap_or(0))
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Lets a [`Stream`] serve as the backing store of a ZIP volume (encrypted containers).
pub struct StreamAsReadAt(pub Arc<dyn Stream>);

impl ReadAt for StreamAsReadAt {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.0.read_at(offset, buf)?)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.size())
    }
}

/// A sub-range of another stream (`urn[0xOFF:0xLEN]` references, logical files).
pub struct RangeStream {
    inner: Arc<dyn Stream>,
    start: u64,
    len: u64,
}

impl RangeStream {
    /// `len` bytes of `inner` from `start`.
    pub fn new(inner: Arc<dyn Stream>, start: u64, len: u64) -> Self {
        RangeStream { inner, start, len }
    }
}

impl Stream for RangeStream {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - offset) as usize;
        let pos = self.start.checked_add(offset).ok_or_else(|| Error::corrupt(self.describe(), offset, "offset overflow"))?;
        self.inner.read_at(pos, &mut buf[..n])
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// `Read + Seek` over a shared [`Stream`].
pub struct StreamReader {
    stream: Arc<dyn Stream>,
    pos: u64,
}

impl StreamReader {
    /// Starts reading `stream` at offset 0.
    pub fn new(stream: Arc<dyn Stream>) -> Self {
        StreamReader { stream, pos: 0 }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StreamReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.stream.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before start")),
        }
    }
}
