//! Reading the central directory of a (possibly ZIP64, possibly prefixed) ZIP file.

use super::*;
use crate::error::{Error, Result};
use crate::stream::{ReadAt, SliceStream};
use std::sync::{Arc, OnceLock};

/// One member as the central directory describes it.
#[derive(Debug)]
pub struct ZipEntry {
    /// Member name, decoded as UTF-8 (lossy) whatever the EFS flag says.
    pub name: String,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Bytes stored in the file.
    pub compressed_size: u64,
    /// Bytes after decompression.
    pub uncompressed_size: u64,
    /// Absolute file offset of the local header (global offset applied).
    pub header_offset: u64,
    /// DOS (time, date) of the member.
    pub dos_time: (u16, u16),
    data_start: OnceLock<u64>,
}

/// An opened ZIP file: its members, comment and the offset at which the archive starts.
pub struct ZipArchive {
    file: Arc<dyn ReadAt>,
    name: String,
    entries: Vec<ZipEntry>,
    comment: Vec<u8>,
    global_offset: u64,
    file_len: u64,
    cd_end: u64,
    trailing: u64,
}

const MAX_COMMENT: u64 = 65535;

impl ZipArchive {
    /// Parses the central directory of `file` (named `name` in errors).
    ///
    /// # Errors
    /// Not a ZIP, truncated, or inconsistent directory records.
    pub fn open(file: Arc<dyn ReadAt>, name: &str) -> Result<Self> {
        let file_len = file.len().map_err(|e| Error::io(name, e))?;
        if file_len < 22 {
            return Err(Error::corrupt(name, 0, format!("not an AFF4 volume: {file_len} bytes is too short for a ZIP file")));
        }
        let tail_len = file_len.min(22 + MAX_COMMENT + 76);
        let tail_start = file_len - tail_len;
        let mut tail = vec![0u8; tail_len as usize];
        read_exact(&*file, tail_start, &mut tail, name)?;

        // Scan backwards for the EOCD; prefer one whose comment runs exactly to the end.
        let mut eocd_rel = None;
        let mut i = tail.len().saturating_sub(22) as isize;
        while i >= 0 {
            let p = i as usize;
            if le32(&tail, p) == EOCD_SIG {
                let clen = le16(&tail, p + 20) as usize;
                if p + 22 + clen == tail.len() {
                    eocd_rel = Some(p);
                    break;
                }
                if eocd_rel.is_none() && p + 22 + clen <= tail.len() {
                    eocd_rel = Some(p);
                }
            }
            i -= 1;
        }
        let (tail, tail_start, p) = match eocd_rel {
            Some(p) => (tail, tail_start, p),
            None => recover_tail(&*file, file_len, name)?,
        };
        let eocd_pos = tail_start + p as u64;
        let trailing = file_len - (eocd_pos + 22 + le16(&tail, p + 20) as u64).min(file_len);
        let clen = le16(&tail, p + 20) as usize;
        let comment = tail[p + 22..(p + 22 + clen).min(tail.len())].to_vec();
        let mut entries_total = le16(&tail, p + 10) as u64;
        let mut cd_size = le32(&tail, p + 12) as u64;
        let mut cd_offset = le32(&tail, p + 16) as u64;
        let mut cd_actual_end = eocd_pos;

        // ZIP64: the locator sits 20 bytes before the EOCD.
        if p >= 20 && le32(&tail, p - 20) == LOCATOR64_SIG {
            let loc = p - 20;
            let recorded = le64(&tail, loc + 8);
            let loc_pos = tail_start + loc as u64;
            // The ZIP64 EOCD normally ends right at the locator; find it there or at its recorded offset.
            let mut rec = None;
            for cand in [loc_pos.checked_sub(56), Some(recorded)].into_iter().flatten() {
                if cand + 56 > file_len {
                    continue;
                }
                let mut b = [0u8; 56];
                read_exact(&*file, cand, &mut b, name)?;
                if le32(&b, 0) == EOCD64_SIG {
                    rec = Some((cand, b));
                    break;
                }
            }
            if rec.is_none() {
                // Longer records (extensible data): search back from the locator.
                let lo = loc_pos.saturating_sub(4096);
                let mut buf = vec![0u8; (loc_pos - lo) as usize];
                read_exact(&*file, lo, &mut buf, name)?;
                let mut j = buf.len().saturating_sub(56) as isize;
                while j >= 0 {
                    let q = j as usize;
                    if le32(&buf, q) == EOCD64_SIG {
                        let mut b = [0u8; 56];
                        b.copy_from_slice(&buf[q..q + 56]);
                        rec = Some((lo + q as u64, b));
                        break;
                    }
                    j -= 1;
                }
            }
            let (pos, b) =
                rec.ok_or_else(|| Error::corrupt(name, loc_pos, "ZIP64 locator without a ZIP64 end-of-central-directory record"))?;
            entries_total = le64(&b, 32);
            cd_size = le64(&b, 40);
            cd_offset = le64(&b, 48);
            cd_actual_end = pos;
        }

        let cd_start = cd_actual_end
            .checked_sub(cd_size)
            .ok_or_else(|| Error::corrupt(name, eocd_pos, format!("central directory size {cd_size} runs before the start of the file")))?;
        let global_offset = cd_start.checked_sub(cd_offset).ok_or_else(|| {
            Error::corrupt(name, eocd_pos, format!("central directory offset {cd_offset} lies beyond its actual position {cd_start}"))
        })?;
        if cd_size > 1 << 32 {
            return Err(Error::corrupt(name, cd_start, format!("central directory of {cd_size} bytes is implausibly large")));
        }
        if entries_total > cd_size / 46 + 1 {
            return Err(Error::corrupt(
                name,
                eocd_pos,
                format!("{entries_total} entries cannot fit in a {cd_size}-byte central directory"),
            ));
        }
        let mut cd = vec![0u8; cd_size as usize];
        read_exact(&*file, cd_start, &mut cd, name)?;

        let mut entries: Vec<ZipEntry> = Vec::with_capacity(entries_total as usize);
        let mut at = 0usize;
        while at + 46 <= cd.len() {
            if le32(&cd, at) != CENTRAL_SIG {
                if entries.len() as u64 >= entries_total {
                    break;
                }
                return Err(Error::corrupt(name, cd_start + at as u64, "bad central directory entry signature"));
            }
            let method = le16(&cd, at + 10);
            let crc32 = le32(&cd, at + 16);
            let mut csize = le32(&cd, at + 20) as u64;
            let mut usize_ = le32(&cd, at + 24) as u64;
            let nlen = le16(&cd, at + 28) as usize;
            let xlen = le16(&cd, at + 30) as usize;
            let klen = le16(&cd, at + 32) as usize;
            let mut lho = le32(&cd, at + 42) as u64;
            let end = at + 46 + nlen + xlen + klen;
            if end > cd.len() {
                return Err(Error::corrupt(name, cd_start + at as u64, "central directory entry runs past the directory"));
            }
            let raw_name = &cd[at + 46..at + 46 + nlen];
            let entry_name = String::from_utf8_lossy(raw_name).into_owned();
            // ZIP64 extra: only the fields whose 32-bit value is 0xFFFFFFFF, in fixed order.
            let mut x = at + 46 + nlen;
            let xend = x + xlen;
            while x + 4 <= xend {
                let id = le16(&cd, x);
                let sz = le16(&cd, x + 2) as usize;
                let body = x + 4;
                if body + sz > xend {
                    break;
                }
                if id == 1 {
                    let mut q = body;
                    let mut take = |cond: bool, v: &mut u64| {
                        if cond && q + 8 <= body + sz {
                            *v = le64(&cd, q);
                            q += 8;
                        }
                    };
                    let (u_ff, c_ff, o_ff) = (usize_ == 0xFFFF_FFFF, csize == 0xFFFF_FFFF, lho == 0xFFFF_FFFF);
                    take(u_ff, &mut usize_);
                    take(c_ff, &mut csize);
                    take(o_ff, &mut lho);
                }
                x = body + sz;
            }
            let header_offset = lho.checked_add(global_offset).filter(|&o| o < file_len).ok_or_else(|| {
                Error::corrupt(
                    format!("{name}: member {entry_name}"),
                    cd_start + at as u64,
                    format!("local header offset {lho} lies outside the file"),
                )
            })?;
            if csize.checked_add(30).and_then(|n| header_offset.checked_add(n)).is_none_or(|e| e > file_len) {
                return Err(Error::corrupt(
                    format!("{name}: member {entry_name}"),
                    header_offset,
                    format!("member of {csize} bytes runs past the end of the file ({file_len} bytes)"),
                ));
            }
            entries.push(ZipEntry {
                name: entry_name,
                method,
                crc32,
                compressed_size: csize,
                uncompressed_size: usize_,
                header_offset,
                dos_time: (le16(&cd, at + 12), le16(&cd, at + 14)),
                data_start: OnceLock::new(),
            });
            at = end;
        }
        Ok(ZipArchive { file, name: name.to_string(), entries, comment, global_offset, file_len, cd_end: cd_actual_end, trailing })
    }

    /// All members in central-directory order (a name may repeat; the last one counts).
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// The archive comment (AFF4 keeps the volume URN there).
    pub fn comment(&self) -> &[u8] {
        &self.comment
    }

    /// Where the archive starts inside the file (non-zero when glued after other data).
    pub fn global_offset(&self) -> u64 {
        self.global_offset
    }

    /// The file name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Total file length.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Offset just past the central directory records (where an appended volume may begin writing).
    pub fn central_directory_end(&self) -> u64 {
        self.cd_end
    }

    /// Bytes after the end record that belong to no complete archive (an interrupted append).
    pub fn trailing_bytes(&self) -> u64 {
        self.trailing
    }

    /// The underlying file.
    pub fn file(&self) -> Arc<dyn ReadAt> {
        self.file.clone()
    }

    /// Absolute offset of a member's first data byte, read from its local header.
    ///
    /// # Errors
    /// A local header that is missing or points outside the file.
    pub fn data_start(&self, e: &ZipEntry) -> Result<u64> {
        if let Some(&s) = e.data_start.get() {
            return Ok(s);
        }
        let ctx = || format!("{}: member {}", self.name, e.name);
        let mut h = [0u8; 30];
        read_exact(&*self.file, e.header_offset, &mut h, &self.name)?;
        if le32(&h, 0) != LOCAL_SIG {
            return Err(Error::corrupt(ctx(), e.header_offset, "bad local header signature"));
        }
        let start = e.header_offset + 30 + le16(&h, 26) as u64 + le16(&h, 28) as u64;
        if start.checked_add(e.compressed_size).is_none_or(|end| end > self.file_len) {
            return Err(Error::corrupt(ctx(), start, "member data runs past the end of the file"));
        }
        let _ = e.data_start.set(start);
        Ok(start)
    }

    /// The stored bytes of a member as a stream (compressed members must be inflated by the caller).
    ///
    /// # Errors
    /// See [`ZipArchive::data_start`].
    pub fn raw_member(&self, e: &ZipEntry) -> Result<SliceStream> {
        let start = self.data_start(e)?;
        Ok(SliceStream::new(self.file.clone(), start, e.compressed_size, format!("{}: member {}", self.name, e.name)))
    }
}

/// No end record near the end of the file: an append may have been interrupted. Scan back
/// through the whole file for the last end record whose central directory is where it says,
/// and return a window holding it (as the tail scan would have).
fn recover_tail(file: &dyn ReadAt, file_len: u64, name: &str) -> Result<(Vec<u8>, u64, usize)> {
    const WIN: u64 = 1 << 20;
    // Only files that start like a ZIP are worth a full scan.
    let mut magic = [0u8; 4];
    read_exact(file, 0, &mut magic, name)?;
    if u32::from_le_bytes(magic) != LOCAL_SIG {
        return Err(Error::corrupt(name, file_len, "not an AFF4 volume: no ZIP end-of-central-directory record"));
    }
    let mut end = file_len;
    while end > 0 {
        let start = end.saturating_sub(WIN);
        let hi = (end + 22 + MAX_COMMENT + 76).min(file_len);
        let mut buf = vec![0u8; (hi - start) as usize];
        read_exact(file, start, &mut buf, name)?;
        let lim = ((end - start) as usize).min(buf.len().saturating_sub(22));
        let mut i = lim as isize;
        while i >= 0 {
            let p = i as usize;
            if p + 22 <= buf.len() && le32(&buf, p) == EOCD_SIG {
                let clen = le16(&buf, p + 20) as usize;
                let disk_ok = le16(&buf, p + 4) == 0 && le16(&buf, p + 6) == 0;
                if disk_ok && p + 22 + clen <= buf.len() {
                    // Plausible: the central directory or the ZIP64 locator must precede it.
                    let abs = start + p as u64;
                    let cd_size = le32(&buf, p + 12) as u64;
                    let zip64 = p >= 20 && le32(&buf, p - 20) == LOCATOR64_SIG;
                    let mut sig = [0u8; 4];
                    let cd_ok =
                        abs >= cd_size && read_exact(file, abs - cd_size, &mut sig, name).is_ok() && u32::from_le_bytes(sig) == CENTRAL_SIG;
                    if zip64 || cd_ok {
                        let keep_from = p.saturating_sub(20 + 56 + 4096);
                        let keep_to = p + 22 + clen;
                        return Ok((buf[keep_from..keep_to].to_vec(), start + keep_from as u64, p - keep_from));
                    }
                }
            }
            i -= 1;
        }
        end = start;
    }
    Err(Error::corrupt(
        name,
        file_len,
        "truncated AFF4 volume (no end record): its writer was stopped before closing it, or the copy is cut short; try `pmem recover FILE -o FIXED.aff4`",
    ))
}

fn read_exact(file: &dyn ReadAt, off: u64, buf: &mut [u8], name: &str) -> Result<()> {
    crate::stream::read_exact_at(file, off, buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(name, off, "file is truncated"),
        _ => Error::io(format!("{name} at offset {off}"), e),
    })
}
