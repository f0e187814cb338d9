//! Writing volume files around the page cache, so that our own output does not end up in the
//! memory we are capturing. On Linux the file is written with O_DIRECT from a few reused
//! aligned buffers, each wiped once written: no page of the page cache ever holds a block of
//! the volume, and only those buffers' pages (192 at most) do. Full buffers are written either
//! by a thread behind the writer (two at most: the one being filled goes on meanwhile), or
//! [`Uncached::write_inline`] by the writer itself, from one buffer. Where the file system
//! refuses O_DIRECT (tmpfs, some network file systems), writes go through the page cache and
//! are pushed out and dropped behind the writer (sync_file_range, then POSIX_FADV_DONTNEED), so
//! that only a window of recent blocks is cached at any time. macOS uses F_NOCACHE; elsewhere,
//! plain writes.

use crate::iobuf::{IoBuf, ALIGN};
use std::fs::File;
use std::io::{self, Write};

/// The aligned buffers: bytes are written out in pieces of this size, behind the writer. Small,
/// because their pages are the only ones holding blocks of the volume (64 pages each).
const CAPACITY: usize = 256 << 10;
/// The one buffer written inline: larger, as it is the only one (128 pages), and each write
/// costs a system call and a request to the device.
const INLINE_CAPACITY: usize = 512 << 10;
/// Buffered fallback: how far behind the writer blocks are dropped from the page cache.
#[cfg(target_os = "linux")]
const WINDOW: u64 = 16 << 20;

/// Full blocks written behind the writer by its thread, at most: the pipeline goes on filling
/// the next block while the device takes the last ones.
const BEHIND: usize = 2;

/// The write side of the file, shared with the thread that writes full blocks.
struct Out {
    file: File,
    /// O_DIRECT is in effect.
    direct: bool,
    /// Buffered fallback: blocks before this offset were dropped from the page cache.
    #[cfg(target_os = "linux")]
    dropped_to: u64,
}

impl Out {
    /// Writes `b` (whole aligned blocks) at `start`.
    fn write_block(&mut self, b: &[u8], start: u64) -> io::Result<()> {
        match write_all_at(&self.file, b, start) {
            // A file system that accepted the flag but not the write: fall back to buffering.
            Err(e) if self.direct && e.raw_os_error() == Some(einval()) => {
                self.set_direct(false);
                write_all_at(&self.file, b, start)?;
            }
            r => r?,
        }
        self.drop_behind(start + b.len() as u64);
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

    /// Turns O_DIRECT (Linux) or F_NOCACHE (macOS) on or off; true when O_DIRECT is on.
    #[cfg(target_os = "linux")]
    fn set_direct(&mut self, on: bool) -> bool {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a valid descriptor.
        self.direct = unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            if fl < 0 {
                false
            } else {
                let want = if on { fl | libc::O_DIRECT } else { fl & !libc::O_DIRECT };
                on && libc::fcntl(fd, libc::F_SETFL, want) == 0
            }
        };
        self.direct
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

/// A full block for the writer thread, and what comes back.
type Job = (IoBuf, usize, u64);
type Done = (IoBuf, io::Result<()>);
/// The writer thread: its job and result channels, and its handle.
type Behind = (std::sync::mpsc::Sender<Job>, std::sync::mpsc::Receiver<Done>, std::thread::JoinHandle<()>);

/// A file written sequentially at a position, with the page cache kept out of it. Full blocks
/// are written by a thread behind the writer; a failed write is reported by a later `write`,
/// and always by `flush` (every ZIP member is flushed before it counts as written).
pub struct Uncached {
    /// For reads and the length (the write side is `out`).
    file: File,
    out: std::sync::Arc<std::sync::Mutex<Out>>,
    /// The block being filled: `cap` aligned bytes in use (O_DIRECT writes from it at
    /// [`ALIGN`]), of [`INLINE_CAPACITY`] allocated.
    block: IoBuf,
    /// The block's size: [`CAPACITY`], or [`INLINE_CAPACITY`] when written inline.
    cap: usize,
    /// Full blocks are written by the writer's own thread (see [`Uncached::write_inline`]).
    inline: bool,
    /// File offset of the block's first byte (a multiple of [`ALIGN`]).
    start: u64,
    /// Bytes in the block.
    len: usize,
    /// The writer thread's channels and the thread itself, once started (joined on drop: it
    /// holds a descriptor of the file, which must be closed when the writer is, as a removed
    /// file's space is freed only then).
    behind: Option<Behind>,
    /// Blocks with the thread.
    in_flight: usize,
    /// Written blocks, zeroed, for reuse.
    spare: Vec<IoBuf>,
    /// A write of the thread that failed, not yet reported.
    failed: Option<io::Error>,
}

impl Uncached {
    /// Takes over `file` for writing at `pos` (its current length, or where an append
    /// continues): the partial block before `pos` is read back so that it can be rewritten.
    ///
    /// # Errors
    /// Reading that block, or sharing the file with the writer thread, fails.
    pub fn new(file: File, pos: u64) -> io::Result<Uncached> {
        let mut out = Out {
            file: file.try_clone()?,
            direct: false,
            #[cfg(target_os = "linux")]
            dropped_to: 0,
        };
        out.set_direct(true);
        let mut u = Uncached {
            file,
            out: std::sync::Arc::new(std::sync::Mutex::new(out)),
            block: IoBuf::zeroed(INLINE_CAPACITY),
            cap: CAPACITY,
            inline: false,
            start: 0,
            len: 0,
            behind: None,
            in_flight: 0,
            spare: Vec::new(),
            failed: None,
        };
        u.reposition(pos)?;
        Ok(u)
    }

    /// The underlying file (for space reservation).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether writes bypass the page cache entirely (O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.out.lock().is_ok_and(|o| o.direct)
    }

    /// Writes full blocks from the writer's own thread, one buffer of [`INLINE_CAPACITY`]
    /// (`true`), or hands them to a thread that writes behind it (`false`, the default).
    ///
    /// Inline suits a writer whose thread has little else to do: an acquisition whose
    /// compression threads read and encode the blocks, and work through their queued reads
    /// while the device writes. There, the thread's hand-offs and three buffers passing
    /// between two cores cost more than the wait: the 2 GiB corpus took 1.73 s behind and
    /// 1.48 s inline. A writer that scans and packs each block itself (`pmem image` of a disk)
    /// is the slow stage, and must not wait on the device: 1.75 s behind, 2.20 s inline
    /// (bench/RESULTS.md, session 22).
    ///
    /// # Errors
    /// Writing out what is buffered fails.
    pub fn write_inline(&mut self, inline: bool) -> io::Result<()> {
        if inline == self.inline {
            return Ok(());
        }
        // What is buffered is written out (padded, and rewritten when its block fills), so that
        // less than an aligned block stays, whichever size the buffer has from now on.
        self.flush()?;
        self.inline = inline;
        self.cap = if inline { INLINE_CAPACITY } else { CAPACITY };
        Ok(())
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
        // The blocks behind are given up with what comes after `at`; their errors with them.
        let _ = self.drain();
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
        self.block.fill(0);
        let end = self.position();
        self.file.set_len(end)
    }

    /// Moves on by `n` zero bytes: whole buffers of them become a hole in the file (never
    /// written, and freed if space was reserved there), the rest are written as zeros.
    ///
    /// # Errors
    /// Writing out a full buffer fails.
    pub fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.len == 0 && n >= self.cap as u64 {
                let whole = n - n % self.cap as u64;
                // (file systems ignore a punch past the end of the file: it is extended first,
                // once the blocks before are written, so that a crash never leaves a stretch
                // that reads as zeros where data was still on its way)
                if self.file.metadata()?.len() < self.start + whole {
                    self.drain()?;
                    self.file.set_len(self.start + whole)?;
                }
                punch_hole(&self.file, self.start, whole);
                self.start += whole;
                n -= whole;
                continue;
            }
            let k = ((self.cap - self.len) as u64).min(n) as usize;
            let len = self.len;
            self.block[len..len + k].fill(0);
            self.len += k;
            n -= k as u64;
            if self.len == self.cap {
                self.write_full()?;
            }
        }
        Ok(())
    }

    /// Waits for every block behind, keeping their buffers; the first failure, if any.
    fn drain(&mut self) -> io::Result<()> {
        while self.in_flight > 0 {
            self.reap(true);
        }
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Takes back one written block (waiting for it when `wait`), noting a failure.
    fn reap(&mut self, wait: bool) -> bool {
        let Some((_, rx, _)) = &self.behind else { return false };
        let got = if wait { rx.recv().ok() } else { rx.try_recv().ok() };
        match got {
            Some((b, r)) => {
                self.in_flight -= 1;
                self.spare.push(b);
                if let Err(e) = r {
                    self.failed.get_or_insert(e);
                }
                true
            }
            None if wait => {
                // The thread is gone (it cannot be, short of a panic): what it held is lost.
                self.in_flight = 0;
                self.failed.get_or_insert_with(|| io::Error::other("the volume's writer thread ended"));
                false
            }
            None => false,
        }
    }

    /// Hands the full block to the writer thread and starts a fresh one; or, inline, writes it
    /// and starts again in the same buffer, wiped.
    fn write_full(&mut self) -> io::Result<()> {
        if self.inline {
            self.write_out(self.cap)?;
            self.block[..self.cap].fill(0);
            self.start += self.cap as u64;
            self.len = 0;
            return Ok(());
        }
        while self.reap(false) {}
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.behind.is_none() {
            let (tx, jobs) = std::sync::mpsc::channel::<Job>();
            let (done, rx) = std::sync::mpsc::channel::<Done>();
            let out = self.out.clone();
            let thread = std::thread::Builder::new().name("volume-writer".into()).spawn(move || {
                while let Ok((mut buf, n, at)) = jobs.recv() {
                    let r = match out.lock() {
                        Ok(mut o) => o.write_block(&buf[..n], at),
                        Err(_) => Err(io::Error::other("the volume's writer was poisoned")),
                    };
                    // Written: its bytes are not kept in our memory either.
                    buf[..n].fill(0);
                    if done.send((buf, r)).is_err() {
                        break;
                    }
                }
            })?;
            self.behind = Some((tx, rx, thread));
        }
        if self.spare.is_empty() && self.in_flight >= BEHIND {
            self.reap(true);
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
        }
        let next = self.spare.pop().unwrap_or_else(|| IoBuf::zeroed(INLINE_CAPACITY));
        let full = std::mem::replace(&mut self.block, next);
        let sent = self.behind.as_ref().map(|(tx, _, _)| tx.send((full, self.cap, self.start)).is_ok()).unwrap_or(false);
        if !sent {
            return Err(io::Error::other("the volume's writer thread ended"));
        }
        self.in_flight += 1;
        self.start += self.cap as u64;
        self.len = 0;
        Ok(())
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
                let n = read_at(&self.file, &mut self.block[got..ALIGN], at)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("reading back the block at {at}")));
                }
                got += n;
            }
        }
        self.len = keep;
        Ok(())
    }

    /// Writes `n` bytes of the buffer (a multiple of [`ALIGN`]) at its start, now.
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        let start = self.start;
        let mut o = self.out.lock().map_err(|_| io::Error::other("the volume's writer was poisoned"))?;
        o.write_block(&self.block[..n], start)
    }
}

impl Drop for Uncached {
    /// Waits for the blocks behind, so that nothing is written after the writer is gone, and
    /// for the thread, so that no descriptor of the file outlives the writer.
    fn drop(&mut self) {
        let _ = self.drain();
        if let Some((tx, rx, thread)) = self.behind.take() {
            drop((tx, rx));
            let _ = thread.join();
        }
    }
}

impl Write for Uncached {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = (self.cap - self.len).min(b.len());
        let len = self.len;
        self.block[len..len + n].copy_from_slice(&b[..n]);
        self.len += n;
        if self.len == self.cap {
            self.write_full()?;
        }
        Ok(n)
    }

    /// Writes what is buffered, the last partial block padded with zeros (rewritten when it
    /// fills), so that everything written so far is in the file.
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        if self.len == 0 {
            return Ok(());
        }
        let len = self.len;
        let full = len - len % ALIGN;
        let padded = len.div_ceil(ALIGN) * ALIGN;
        self.block[len..padded].fill(0);
        self.write_out(padded)?;
        if full > 0 {
            // The partial block moves to the front; the written blocks behind it are cleared.
            let tail = len - full;
            self.block.copy_within(full..len, 0);
            self.block[tail..padded].fill(0);
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

/// Frees `[at, at+len)` of `f` (blocks reserved ahead for closing the volume, before a hole
/// skipped them), keeping its length; where that is not supported, the blocks stay allocated.
#[cfg(target_os = "linux")]
fn punch_hole(f: &File, at: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if let (Ok(off), Ok(len)) = (i64::try_from(at), i64::try_from(len)) {
        // SAFETY: fallocate on a valid descriptor; the range is one we never write.
        unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off, len) };
    }
}

#[cfg(not(target_os = "linux"))]
fn punch_hole(_f: &File, _at: u64, _len: u64) {}

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
    /// a plain file, whichever path (direct or buffered) the file system allows, written
    /// behind or inline, and switched between the two mid-block.
    #[test]
    fn same_bytes_as_plain_writes() {
        for start_inline in [false, true] {
            same_bytes_starting(start_inline);
        }
    }

    fn same_bytes_starting(start_inline: bool) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("f");
        let mut want = Vec::new();
        let f = File::options().read(true).write(true).create_new(true).open(&p).unwrap_or_else(|e| panic!("{e}"));
        let mut u = Uncached::new(f, 0).unwrap_or_else(|e| panic!("{e}"));
        u.write_inline(start_inline).unwrap_or_else(|e| panic!("{e}"));
        let mut x = 1u32;
        for i in 0..400usize {
            if i == 150 || i == 320 {
                let now = u.inline;
                u.write_inline(!now).unwrap_or_else(|e| panic!("{e}"));
                assert!(u.len < ALIGN, "less than an aligned block stays buffered");
            }
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
