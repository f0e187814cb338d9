//! Writing ZIP64 volumes in the form every AFF4 reader accepts (AFF4.md §16): Evimetry-style
//! local headers with placeholder sizes and a ZIP64 data descriptor, so no seek is ever needed,
//! and a central directory whose 64-bit fields are all set whenever one of them must be.

use super::*;
use crate::error::{Error, Result};
use std::io::Write;

/// Zero bytes for zero runs (CRCs of holes, zeros written where no hole can be made).
pub(crate) static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

/// Header ID of the extra field that pads a local header to an alignment (Android zipalign).
const ALIGNMENT_EXTRA: u16 = 0xD935;

/// A member already in the archive, as the central directory will list it.
#[derive(Debug, Clone)]
pub struct WrittenEntry {
    /// Member name.
    pub name: String,
    /// Compression method.
    pub method: u16,
    /// CRC-32 of the uncompressed bytes.
    pub crc32: u32,
    /// Stored length.
    pub compressed_size: u64,
    /// Uncompressed length.
    pub uncompressed_size: u64,
    /// Local-header offset relative to the archive start.
    pub header_offset: u64,
    /// DOS time and date.
    pub dos_time: (u16, u16),
}

struct Open {
    name: String,
    header_offset: u64,
    crc: crc32fast::Hasher,
    size: u64,
    /// Listed in the central directory (false for a transient member, see
    /// [`ZipWriter::start_transient_member`]).
    listed: bool,
}

/// Streams members into a ZIP64 archive; [`ZipWriter::finish`] writes the central directory.
pub struct ZipWriter<W: Write> {
    out: W,
    pos: u64,
    base: u64,
    entries: Vec<WrittenEntry>,
    open: Option<Open>,
    dos_time: (u16, u16),
    context: String,
    /// The archive ends on a multiple of this (see [`ZipWriter::end_aligned`]).
    align: u64,
}

impl<W: Write> ZipWriter<W> {
    /// A new archive written to `out`, whose first byte lands at absolute file offset `pos`;
    /// `base` is where the archive starts (0 unless glued after other data).
    pub fn new(out: W, pos: u64, base: u64, context: impl Into<String>) -> Self {
        ZipWriter { out, pos, base, entries: Vec::new(), open: None, dos_time: dos_now(), context: context.into(), align: 1 }
    }

    /// Makes the archive end on a multiple of `align` bytes (zeros before the central
    /// directory, which readers find from the end record): the volume inside an encrypted
    /// stream then fills whole chunks, since pyaff4 0.34 mis-caches a partial last chunk (it
    /// stores the trimmed chunk under its index in the bevy, which is another chunk's number).
    pub fn end_aligned(mut self, align: u64) -> Self {
        self.align = align.max(1);
        self
    }

    /// Continues an existing archive: `entries` are kept in the new central directory.
    pub fn with_entries(mut self, entries: Vec<WrittenEntry>) -> Self {
        self.entries = entries;
        self
    }

    /// Absolute position of the next byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The name used in errors.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Forgets everything from absolute position `pos` on (an unfinished member, members
    /// after it): the next member starts there. The caller cuts the file to match.
    pub fn rewind_to(&mut self, pos: u64) {
        self.open = None;
        self.pos = pos;
        let base = self.base;
        self.entries.retain(|e| e.header_offset + base < pos);
    }

    /// Entries written so far (including carried-over ones).
    pub fn entries(&self) -> &[WrittenEntry] {
        &self.entries
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(|e| Error::io(format!("{}: writing at offset {}", self.context, self.pos), e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Starts a stored member; its bytes follow through [`ZipWriter::write_data`].
    ///
    /// # Errors
    /// A member is already open, or the write fails.
    pub fn start_member(&mut self, name: &str) -> Result<()> {
        self.begin(name, true, 1)
    }

    /// Starts a stored member whose data begins at an absolute file offset that is a multiple
    /// of `align` (at most 32 KiB), padded by an extra field (zipalign's 0xD935): a raw image
    /// in the member can then be read, or mapped, in place.
    ///
    /// # Errors
    /// See [`ZipWriter::start_member`].
    pub fn start_aligned_member(&mut self, name: &str, align: u16) -> Result<()> {
        self.begin(name, true, align.clamp(1, 1 << 15))
    }

    /// Starts a member that the central directory will not list: its local header and data
    /// descriptor make it findable by a scan of the local headers (a recovery journal), while
    /// readers of the closed archive never see it.
    ///
    /// # Errors
    /// See [`ZipWriter::start_member`].
    pub fn start_transient_member(&mut self, name: &str) -> Result<()> {
        self.begin(name, false, 1)
    }

    fn begin(&mut self, name: &str, listed: bool, align: u16) -> Result<()> {
        if self.open.is_some() {
            return Err(Error::Unsupported("ZIP writer: a member is already open".into()));
        }
        let header_offset = self.pos - self.base;
        let flags: u16 = if name.is_ascii() { 0x0008 } else { 0x0808 };
        // Padding to the alignment: an extra field of at least its 6-byte header.
        let unpadded = self.pos + 30 + name.len() as u64 + 20;
        let mut pad = ((u64::from(align) - unpadded % u64::from(align)) % u64::from(align)) as usize;
        if pad > 0 && pad < 6 {
            pad += usize::from(align);
        }
        let mut h = Vec::with_capacity(30 + name.len() + 20 + pad);
        h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        h.extend_from_slice(&45u16.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&METHOD_STORED.to_le_bytes());
        h.extend_from_slice(&self.dos_time.0.to_le_bytes());
        h.extend_from_slice(&self.dos_time.1.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        h.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&((20 + pad) as u16).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&u64::MAX.to_le_bytes());
        h.extend_from_slice(&u64::MAX.to_le_bytes());
        if pad > 0 {
            h.extend_from_slice(&ALIGNMENT_EXTRA.to_le_bytes());
            h.extend_from_slice(&((pad - 4) as u16).to_le_bytes());
            h.extend_from_slice(&align.to_le_bytes());
            h.resize(h.len() + pad - 6, 0);
        }
        self.put(&h)?;
        self.open = Some(Open { name: name.to_string(), header_offset, crc: crc32fast::Hasher::new(), size: 0, listed });
        Ok(())
    }

    /// Appends bytes to the open member.
    ///
    /// # Errors
    /// No member is open, or the write fails.
    pub fn write_data(&mut self, data: &[u8]) -> Result<()> {
        let open = self.open.as_mut().ok_or_else(|| Error::Unsupported("ZIP writer: no member is open".into()))?;
        open.crc.update(data);
        open.size += data.len() as u64;
        self.put(data)
    }

    /// Appends `n` zero bytes to the open member without handing them to the writer: `skip`
    /// moves the writer on by `n` (e.g. leaving a hole in a file).
    ///
    /// # Errors
    /// No member is open, or `skip` fails.
    pub fn skip_data(&mut self, n: u64, skip: impl FnOnce(&mut W, u64) -> std::io::Result<()>) -> Result<()> {
        let open = self.open.as_mut().ok_or_else(|| Error::Unsupported("ZIP writer: no member is open".into()))?;
        let mut left = n;
        while left > 0 {
            let k = left.min(ZEROS.len() as u64) as usize;
            open.crc.update(&ZEROS[..k]);
            left -= k as u64;
        }
        open.size += n;
        let at = self.pos;
        skip(&mut self.out, n).map_err(|e| Error::io(format!("{}: writing at offset {at}", self.context), e))?;
        self.pos += n;
        Ok(())
    }

    /// Bytes in the open member so far (0 if none is open).
    pub fn open_size(&self) -> u64 {
        self.open.as_ref().map(|o| o.size).unwrap_or(0)
    }

    /// Closes the open member with its ZIP64 data descriptor.
    ///
    /// # Errors
    /// No member is open, or the write fails.
    pub fn finish_member(&mut self) -> Result<()> {
        let open = self.open.take().ok_or_else(|| Error::Unsupported("ZIP writer: no member is open".into()))?;
        let crc = open.crc.finalize();
        let mut d = Vec::with_capacity(24);
        d.extend_from_slice(&DESCRIPTOR_SIG.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&open.size.to_le_bytes());
        d.extend_from_slice(&open.size.to_le_bytes());
        self.put(&d)?;
        if !open.listed {
            return Ok(());
        }
        let entry = WrittenEntry {
            name: open.name,
            method: METHOD_STORED,
            crc32: crc,
            compressed_size: open.size,
            uncompressed_size: open.size,
            header_offset: open.header_offset,
            dos_time: self.dos_time,
        };
        // A re-written member replaces the earlier one in the directory.
        self.entries.retain(|e| e.name != entry.name);
        self.entries.push(entry);
        Ok(())
    }

    /// Writes a whole stored member.
    ///
    /// # Errors
    /// See [`ZipWriter::start_member`].
    pub fn add_member(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.start_member(name)?;
        self.write_data(data)?;
        self.finish_member()
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    /// The flush fails.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(self.context.clone(), e))
    }

    /// Writes the central directory, ZIP64 end records and the end record with `comment`, and
    /// returns the writer.
    ///
    /// # Errors
    /// A member is still open, or a write fails.
    pub fn finish(mut self, comment: &[u8]) -> Result<W> {
        if self.open.is_some() {
            return Err(Error::Unsupported("ZIP writer: finish with a member still open".into()));
        }
        let mut cd = Vec::new();
        for e in &self.entries {
            let big = e.compressed_size >= 0xFFFF_FFFF || e.uncompressed_size >= 0xFFFF_FFFF || e.header_offset >= 0xFFFF_FFFF;
            let flags: u16 = if e.name.is_ascii() { 0x0008 } else { 0x0808 };
            cd.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            cd.extend_from_slice(&(45u16 | (3 << 8)).to_le_bytes());
            cd.extend_from_slice(&45u16.to_le_bytes());
            cd.extend_from_slice(&flags.to_le_bytes());
            cd.extend_from_slice(&e.method.to_le_bytes());
            cd.extend_from_slice(&e.dos_time.0.to_le_bytes());
            cd.extend_from_slice(&e.dos_time.1.to_le_bytes());
            cd.extend_from_slice(&e.crc32.to_le_bytes());
            let f32 = |v: u64| if big { 0xFFFF_FFFFu32 } else { v as u32 };
            cd.extend_from_slice(&f32(e.compressed_size).to_le_bytes());
            cd.extend_from_slice(&f32(e.uncompressed_size).to_le_bytes());
            cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&(if big { 28u16 } else { 0 }).to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&(0o100600u32 << 16).to_le_bytes());
            cd.extend_from_slice(&f32(e.header_offset).to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
            if big {
                cd.extend_from_slice(&1u16.to_le_bytes());
                cd.extend_from_slice(&24u16.to_le_bytes());
                cd.extend_from_slice(&e.uncompressed_size.to_le_bytes());
                cd.extend_from_slice(&e.compressed_size.to_le_bytes());
                cd.extend_from_slice(&e.header_offset.to_le_bytes());
            }
        }
        let comment = &comment[..comment.len().min(0xFFFF)];
        let end = self.pos + cd.len() as u64 + 56 + 20 + 22 + comment.len() as u64;
        let pad = (self.align - end % self.align) % self.align;
        self.put(&vec![0; pad as usize])?;
        let cd_start = self.pos - self.base;
        self.put(&cd)?;
        let n = self.entries.len() as u64;
        let eocd64_at = self.pos - self.base;
        let mut t = Vec::with_capacity(56 + 20 + 22 + comment.len());
        t.extend_from_slice(&EOCD64_SIG.to_le_bytes());
        t.extend_from_slice(&44u64.to_le_bytes());
        t.extend_from_slice(&45u16.to_le_bytes());
        t.extend_from_slice(&45u16.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&n.to_le_bytes());
        t.extend_from_slice(&(cd.len() as u64).to_le_bytes());
        t.extend_from_slice(&cd_start.to_le_bytes());
        t.extend_from_slice(&LOCATOR64_SIG.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(&eocd64_at.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&EOCD_SIG.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        t.extend_from_slice(&0xFFFFu16.to_le_bytes());
        t.extend_from_slice(&0xFFFFu16.to_le_bytes());
        t.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        t.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        t.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        t.extend_from_slice(comment);
        self.put(&t)?;
        self.flush()?;
        Ok(self.out)
    }
}

fn dos_now() -> (u16, u16) {
    let now = time::OffsetDateTime::now_utc();
    let t = ((now.hour() as u16) << 11) | ((now.minute() as u16) << 5) | (now.second() as u16 / 2);
    let year = (now.year() - 1980).clamp(0, 127) as u16;
    let d = (year << 9) | ((now.month() as u16) << 5) | now.day() as u16;
    (t, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aligned_archive_ends_on_the_alignment_and_opens() {
        for (members, align) in [(0usize, 512u64), (3, 512), (7, 4096), (2, 1)] {
            let mut z = ZipWriter::new(Vec::new(), 0, 0, "test").end_aligned(align);
            for i in 0..members {
                z.add_member(&format!("m{i}"), &vec![i as u8; 1000 + i * 77]).unwrap();
            }
            let out = z.finish(b"aff4://comment\0").unwrap();
            assert_eq!(out.len() as u64 % align, 0, "{members} members, aligned to {align}");
            let len = out.len();
            let zip = crate::zip::ZipArchive::open(std::sync::Arc::new(out), "test").unwrap();
            assert_eq!(zip.trailing_bytes(), 0, "{len}");
            assert_eq!(zip.entries().len(), members);
        }
    }
}
