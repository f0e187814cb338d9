//! Writing volume files around the page cache, so that our own output does not end up in the
//! memory we are capturing. On Linux the file is written with O_DIRECT from one reused aligned
//! buffer: no page of the page cache ever holds a block of the volume, and only that buffer's
//! pages (a few MiB) do. Where the file system refuses O_DIRECT (tmpfs, some network file
//! systems), writes go through the page cache and are pushed out and dropped behind the writer
//! (sync_file_range, then POSIX_FADV_DONTNEED), so that only a window of recent blocks is
//! cached at any time. macOS uses F_NOCACHE; elsewhere, plain writes.

use std::fs::File;
use std::io::{self, Write};

/// Alignment of O_DIRECT offsets, lengths and buffers (the largest logical block size in use).
const ALIGN: usize = 4096;
/// The aligned buffer: bytes are written out in pieces of this size. Small, because its pages
/// are the only ones holding blocks of the volume (64 pages of a capture at most).
const CAPACITY: usize = 256 << 10;
/// Buffered fallback: how far behind the writer blocks are dropped from the page cache.
#[cfg(target_os = "linux")]
const WINDOW: u64 = 16 << 20;

/// A file written sequentially at a position, with the page cache kept out of it.
pub struct Uncached {
    file: File,
    /// Backing store; the aligned block buffer is `buf[off..off + CAPACITY]`.
    buf: Vec<u8>,
    off: usize,
    /// File offset of the buffer's first byte (a multiple of [`ALIGN`]).
    start: u64,
    /// Bytes in the buffer.
    len: usize,
    /// O_DIRECT is in effect.
    direct: bool,
    /// Buffered fallback: blocks before this offset were dropped from the page cache.
    #[cfg(target_os = "linux")]
    dropped_to: u64,
}

impl Uncached {
    /// Takes over `file` for writing at `pos` (its current length, or where an append
    /// continues): the partial block before `pos` is read back so that it can be rewritten.
    ///
    /// # Errors
    /// Reading that block fails.
    pub fn new(file: File, pos: u64) -> io::Result<Uncached> {
        let buf = vec![0u8; CAPACITY + ALIGN];
        let off = buf.as_ptr().align_offset(ALIGN);
        let mut u = Uncached {
            file,
            buf,
            off,
            start: 0,
            len: 0,
            direct: false,
            #[cfg(target_os = "linux")]
            dropped_to: 0,
        };
        u.direct = u.set_direct(true);
        u.reposition(pos)?;
        Ok(u)
    }

    /// The underlying file (for space reservation).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether writes bypass the page cache entirely (O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The logical position of the next byte.
    pub fn position(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Cuts the file at `at` and continues writing there (after a failed write, or to give up
    /// what an abandoned append wrote).
    ///
    /// # Errors
    /// The file cannot be cut or its last block read back.
    pub fn cut_to(&mut self, at: u64) -> io::Result<()> {
        self.file.set_len(at)?;
        self.reposition(at)
    }

    /// Writes everything out and gives the file its logical length (the last block was
    /// written padded to the alignment).
    ///
    /// # Errors
    /// A write fails.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        self.block().fill(0);
        let end = self.position();
        self.file.set_len(end)
    }

    fn block(&mut self) -> &mut [u8] {
        &mut self.buf[self.off..self.off + CAPACITY]
    }

    /// Starts the buffer at the block holding `pos`, with the bytes of that block before it.
    fn reposition(&mut self, pos: u64) -> io::Result<()> {
        let start = pos - pos % ALIGN as u64;
        let keep = (pos - start) as usize;
        self.start = start;
        self.len = 0;
        if keep > 0 {
            let mut got = 0;
            while got < keep {
                let at = self.start + got as u64;
                // Whole aligned blocks, as O_DIRECT requires; only `keep` bytes are used.
                let n = read_at(&self.file, &mut self.buf[self.off + got..self.off + ALIGN], at)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("reading back the block at {at}")));
                }
                got += n;
            }
        }
        self.len = keep;
        Ok(())
    }

    /// Writes `n` bytes of the buffer (a multiple of [`ALIGN`]) at its start.
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        let (off, start) = (self.off, self.start);
        match write_all_at(&self.file, &self.buf[off..off + n], start) {
            // A file system that accepted the flag but not the write: fall back to buffering.
            Err(e) if self.direct && e.raw_os_error() == Some(einval()) => {
                self.direct = false;
                self.set_direct(false);
                write_all_at(&self.file, &self.buf[off..off + n], start)?;
            }
            r => r?,
        }
        self.drop_behind(start + n as u64);
        Ok(())
    }

    /// Buffered fallback: starts writeback of what was just written and drops blocks more than
    /// a window behind from the page cache.
    #[cfg(target_os = "linux")]
    fn drop_behind(&mut self, end: u64) {
        use std::os::fd::AsRawFd;
        if self.direct {
            return;
        }
        let fd = self.file.as_raw_fd();
        let upto = end.saturating_sub(WINDOW) & !(ALIGN as u64 - 1);
        // SAFETY: plain system calls on a valid descriptor; failures only leave pages cached.
        unsafe {
            libc::sync_file_range(fd, self.dropped_to as i64, (end - self.dropped_to) as i64, libc::SYNC_FILE_RANGE_WRITE);
            if upto > self.dropped_to {
                let len = (upto - self.dropped_to) as i64;
                libc::sync_file_range(
                    fd,
                    self.dropped_to as i64,
                    len,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
                libc::posix_fadvise(fd, self.dropped_to as i64, len, libc::POSIX_FADV_DONTNEED);
                self.dropped_to = upto;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn drop_behind(&mut self, _end: u64) {}

    /// Turns O_DIRECT (Linux) or F_NOCACHE (macOS) on or off; true when it is on.
    #[cfg(target_os = "linux")]
    fn set_direct(&mut self, on: bool) -> bool {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a valid descriptor.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0 {
                return false;
            }
            let want = if on { fl | libc::O_DIRECT } else { fl & !libc::O_DIRECT };
            on && libc::fcntl(fd, libc::F_SETFL, want) == 0
        }
    }

    #[cfg(target_os = "macos")]
    fn set_direct(&mut self, on: bool) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a valid descriptor.
        unsafe {
            libc::fcntl(self.file.as_raw_fd(), libc::F_NOCACHE, i32::from(on));
        }
        false
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    fn set_direct(&mut self, _on: bool) -> bool {
        false
    }
}

impl Write for Uncached {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = (CAPACITY - self.len).min(b.len());
        let len = self.len;
        self.block()[len..len + n].copy_from_slice(&b[..n]);
        self.len += n;
        if self.len == CAPACITY {
            self.write_out(CAPACITY)?;
            // Written: its bytes are not kept in our memory either.
            self.block().fill(0);
            self.start += CAPACITY as u64;
            self.len = 0;
        }
        Ok(n)
    }

    /// Writes what is buffered, the last partial block padded with zeros (rewritten when it
    /// fills), so that everything written so far is in the file.
    fn flush(&mut self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let len = self.len;
        let full = len - len % ALIGN;
        let padded = len.div_ceil(ALIGN) * ALIGN;
        self.block()[len..padded].fill(0);
        self.write_out(padded)?;
        if full > 0 {
            // The partial block moves to the front; the written blocks behind it are cleared.
            let tail = len - full;
            self.block().copy_within(full..len, 0);
            self.block()[tail..padded].fill(0);
            self.start += full as u64;
            self.len = tail;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn einval() -> i32 {
    libc::EINVAL
}

#[cfg(not(target_os = "linux"))]
fn einval() -> i32 {
    22
}

#[cfg(unix)]
fn write_all_at(f: &File, b: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, b, at)
}

#[cfg(unix)]
fn read_at(f: &File, b: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, b, at)
}

#[cfg(windows)]
fn write_all_at(f: &File, mut b: &[u8], mut at: u64) -> io::Result<()> {
    while !b.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(f, b, at)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        b = &b[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(f: &File, b: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, b, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes of every size, flushes at odd places, a cut and an append give the same bytes as
    /// a plain file, whichever path (direct or buffered) the file system allows.
    #[test]
    fn same_bytes_as_plain_writes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("f");
        let mut want = Vec::new();
        let f = File::options().read(true).write(true).create_new(true).open(&p).unwrap_or_else(|e| panic!("{e}"));
        let mut u = Uncached::new(f, 0).unwrap_or_else(|e| panic!("{e}"));
        let mut x = 1u32;
        for i in 0..400usize {
            let n = (i * 7919) % 70_000 + i % 3;
            let piece: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            u.write_all(&piece).unwrap_or_else(|e| panic!("{e}"));
            want.extend_from_slice(&piece);
            if i % 5 == 0 {
                u.flush().unwrap_or_else(|e| panic!("{e}"));
            }
            if i == 200 {
                let at = want.len() as u64 - 12345;
                u.cut_to(at).unwrap_or_else(|e| panic!("{e}"));
                want.truncate(at as usize);
            }
        }
        u.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&p).unwrap_or_default(), want);
        // Continued from the end, as an append does.
        let f = File::options().read(true).write(true).open(&p).unwrap_or_else(|e| panic!("{e}"));
        let mut u = Uncached::new(f, want.len() as u64).unwrap_or_else(|e| panic!("{e}"));
        u.write_all(b"appended").unwrap_or_else(|e| panic!("{e}"));
        u.finish().unwrap_or_else(|e| panic!("{e}"));
        want.extend_from_slice(b"appended");
        assert_eq!(std::fs::read(&p).unwrap_or_default(), want);
    }
}
