//! Output files that leave all-zero pages as holes: an exported memory image is mostly zeros
//! (free pages, the gaps between RAM ranges), and writing them would cost as much disk as the
//! machine has RAM. Reading the file back gives the same bytes either way.

use aff4::imager::is_zero;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

/// The granularity of holes: one page.
const PAGE: u64 = 4096;

/// A write-only file that seeks over every page-aligned all-zero page instead of writing it.
/// [`SparseFile::finish`] sets the final length (a trailing hole is not written either).
pub struct SparseFile {
    file: File,
    /// The logical position: bytes accepted so far.
    pos: u64,
    /// Where the file's own offset is (the end of the last bytes written).
    disk: u64,
}

impl SparseFile {
    /// Wraps a newly created (empty) file.
    pub fn new(file: File) -> SparseFile {
        SparseFile { file, pos: 0, disk: 0 }
    }

    /// Bytes accepted so far.
    pub fn len(&self) -> u64 {
        self.pos
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Extends the file over a trailing hole and syncs nothing; returns the file.
    ///
    /// # Errors
    /// The length cannot be set.
    pub fn finish(self) -> std::io::Result<File> {
        if self.disk < self.pos {
            self.file.set_len(self.pos)?;
        }
        Ok(self.file)
    }

    fn write_run(&mut self, at: u64, run: &[u8]) -> std::io::Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        if self.disk != at {
            self.file.seek(SeekFrom::Start(at))?;
        }
        self.file.write_all(run)?;
        self.disk = at + run.len() as u64;
        Ok(())
    }
}

impl SparseFile {
    /// Leaves `n` bytes as a hole (they read as zeros) without writing them.
    pub fn skip(&mut self, n: u64) {
        self.pos += n;
    }
}

/// A writer that can leave a run of zeros as a hole instead of writing it: exports skip the
/// ranges a map declares as zero without reading them, whatever their size.
pub trait HoleWrite: Write {
    /// Advances by `n` bytes that read as zeros.
    ///
    /// # Errors
    /// Flushing what is buffered fails.
    fn skip(&mut self, n: u64) -> std::io::Result<()>;
}

impl HoleWrite for SparseFile {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        SparseFile::skip(self, n);
        Ok(())
    }
}

impl<W: HoleWrite> HoleWrite for std::io::BufWriter<W> {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        self.flush()?;
        self.get_mut().skip(n)
    }
}

impl Write for SparseFile {
    /// Takes all of `buf`: its non-zero runs are written in one call each, its whole zero pages skipped.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let start = self.pos;
        let mut i = 0usize;
        // The start of the pending run of data (not yet written).
        let mut run = 0usize;
        while i < buf.len() {
            let here = start + i as u64;
            let page_end = (here / PAGE + 1) * PAGE;
            let n = usize::try_from(page_end - here).unwrap_or(usize::MAX).min(buf.len() - i);
            // Only a whole page is a hole; partial pages (at the edges of buf) are written.
            if n as u64 == PAGE && is_zero(&buf[i..i + n]) {
                self.write_run(start + run as u64, &buf[run..i])?;
                run = i + n;
            }
            i += n;
        }
        self.write_run(start + run as u64, &buf[run..])?;
        self.pos = start + buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(parts: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut s = SparseFile::new(File::create(&p).unwrap());
        for part in parts {
            s.write_all(part).unwrap();
        }
        assert_eq!(s.len(), parts.iter().map(|p| p.len() as u64).sum::<u64>());
        s.finish().unwrap();
        let mut back = Vec::new();
        File::open(&p).unwrap().read_to_end(&mut back).unwrap();
        (back, allocated(&p))
    }

    #[cfg(unix)]
    fn allocated(p: &std::path::Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().blocks() * 512
    }
    #[cfg(not(unix))]
    fn allocated(_: &std::path::Path) -> u64 {
        0
    }

    #[test]
    fn same_bytes_with_holes_for_zero_pages() {
        // Unaligned writes, data straddling page edges, zero pages inside, a trailing hole.
        let mut all = vec![0u8; 64 << 20];
        all[10] = 1;
        all[4095] = 2;
        all[3 * 4096 + 7] = 3;
        all[(32 << 20) + 1] = 4;
        let parts: Vec<Vec<u8>> = [1usize, 4094, 5000, 100_000, 1 << 20]
            .iter()
            .cycle()
            .scan(0usize, |at, &n| {
                if *at >= all.len() {
                    return None;
                }
                let e = (*at + n).min(all.len());
                let v = all[*at..e].to_vec();
                *at = e;
                Some(v)
            })
            .collect();
        let (back, used) = roundtrip(&parts);
        assert!(back == all, "bytes differ");
        // Four pages of data (plus filesystem overhead), not 64 MiB.
        assert!(used < 1 << 20, "{used} bytes allocated for 16 KiB of data");
    }

    #[test]
    fn data_only_and_empty() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8 + 1).collect();
        assert_eq!(roundtrip(std::slice::from_ref(&data)).0, data);
        assert_eq!(roundtrip(&[]).0, Vec::<u8>::new());
        let zeros = vec![0u8; 3 * 4096 + 5];
        assert_eq!(roundtrip(std::slice::from_ref(&zeros)).0, zeros);
    }
}
