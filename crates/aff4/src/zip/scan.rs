//! Finding the members of a ZIP file from its local headers alone, for a volume whose writer
//! never wrote the central directory (killed, power lost, cut short). Members written with a
//! data descriptor (sizes unknown in the header, as ours are) end where a descriptor whose
//! sizes match the distance follows; every member's CRC-32 is checked before it is trusted.

use super::*;
use crate::error::{Error, Result};
use crate::stream::ReadAt;

/// A complete member found by [`scan_local_headers`].
#[derive(Debug, Clone)]
pub struct LocalMember {
    /// Member name (lossy UTF-8).
    pub name: String,
    /// Compression method.
    pub method: u16,
    /// Absolute offset of the local header.
    pub header_offset: u64,
    /// Absolute offset of the data.
    pub data_start: u64,
    /// Stored length.
    pub compressed_size: u64,
    /// Length after decompression.
    pub uncompressed_size: u64,
    /// CRC-32 of the uncompressed data (checked for stored members).
    pub crc32: u32,
}

/// What a scan of the local headers found.
#[derive(Debug, Default)]
pub struct LocalScan {
    /// Complete members, in file order.
    pub members: Vec<LocalMember>,
    /// Members whose bytes do not match their CRC-32: (name, header offset).
    pub damaged: Vec<(String, u64)>,
    /// Where the first incomplete member starts (everything from there on is lost), if any.
    pub cut_at: Option<u64>,
    /// That member, when its header is whole: its sizes are the bytes that are there (up to
    /// the end of the file), its CRC-32 unknown (0).
    pub cut: Option<LocalMember>,
    /// Bytes that belonged to no recognisable record (skipped to the next local header).
    pub unrecognised: u64,
    /// Length of the file.
    pub file_len: u64,
}

const WINDOW: usize = 1 << 20;

/// Scans `file` (named `name` in errors) from its first byte for local headers, skipping the
/// directory records of earlier closes (an append that was never closed).
///
/// # Errors
/// The file does not start with a ZIP local header, or a read fails.
pub fn scan_local_headers(file: &dyn ReadAt, name: &str) -> Result<LocalScan> {
    let file_len = file.len().map_err(|e| Error::io(name, e))?;
    let mut out = LocalScan { file_len, ..LocalScan::default() };
    let mut sig = [0u8; 4];
    if file_len < 30 || read(file, 0, &mut sig, name)? < 4 || u32::from_le_bytes(sig) != LOCAL_SIG {
        return Err(Error::corrupt(name, 0, "not an AFF4 volume: it does not start with a ZIP local header"));
    }
    let mut pos = 0u64;
    while pos + 4 <= file_len {
        read_full(file, pos, &mut sig, name)?;
        let next = match u32::from_le_bytes(sig) {
            LOCAL_SIG => match local_member(file, pos, file_len, name)? {
                Member::Complete(m, ok) => {
                    let end = m.data_start + m.compressed_size;
                    if ok {
                        out.members.push(m);
                    } else {
                        out.damaged.push((m.name, pos));
                    }
                    end
                }
                Member::Cut(m) => {
                    out.cut_at = Some(pos);
                    out.cut = m;
                    break;
                }
            },
            CENTRAL_SIG => match fixed(file, pos, 46, file_len, name)? {
                Some(h) => pos + 46 + le16(&h, 28) as u64 + le16(&h, 30) as u64 + le16(&h, 32) as u64,
                None => break,
            },
            EOCD64_SIG => match fixed(file, pos, 12, file_len, name)? {
                Some(h) => pos.saturating_add(12).saturating_add(le64(&h, 4)),
                None => break,
            },
            LOCATOR64_SIG => pos + 20,
            EOCD_SIG => match fixed(file, pos, 22, file_len, name)? {
                Some(h) => pos + 22 + le16(&h, 20) as u64,
                None => break,
            },
            DESCRIPTOR_SIG => pos + 24,
            _ => match find(file, pos + 1, file_len, &LOCAL_SIG.to_le_bytes(), name)? {
                Some(p) => {
                    out.unrecognised += p - pos;
                    p
                }
                None => {
                    out.unrecognised += file_len - pos;
                    break;
                }
            },
        };
        pos = next.max(pos + 1);
    }
    Ok(out)
}

enum Member {
    /// A member whose end was found; true when its CRC-32 matches.
    Complete(LocalMember, bool),
    /// The member runs past the end of the file: what of it is there, if its header is whole.
    Cut(Option<LocalMember>),
}

fn local_member(file: &dyn ReadAt, pos: u64, file_len: u64, name: &str) -> Result<Member> {
    let Some(h) = fixed(file, pos, 30, file_len, name)? else { return Ok(Member::Cut(None)) };
    let flags = le16(&h, 6);
    let method = le16(&h, 8);
    let mut crc = le32(&h, 14);
    let mut csize = le32(&h, 18) as u64;
    let mut usize = le32(&h, 22) as u64;
    let (nlen, xlen) = (le16(&h, 26) as u64, le16(&h, 28) as u64);
    let Some(var) = fixed(file, pos + 30, (nlen + xlen) as usize, file_len, name)? else { return Ok(Member::Cut(None)) };
    let member = String::from_utf8_lossy(&var[..nlen as usize]).into_owned();
    let data_start = pos + 30 + nlen + xlen;
    let there = file_len.saturating_sub(data_start);
    let cut = || {
        let m = LocalMember {
            name: member.clone(),
            method,
            header_offset: pos,
            data_start,
            compressed_size: there,
            uncompressed_size: there,
            crc32: 0,
        };
        Ok(Member::Cut(Some(m)))
    };
    if flags & 0x0008 != 0 {
        // Sizes follow the data: the member ends where a descriptor whose sizes match does.
        let Some((c, cs, us)) = descriptor(file, data_start, file_len, method, name)? else { return cut() };
        (crc, csize, usize) = (c, cs, us);
    } else if csize == 0xFFFF_FFFF || usize == 0xFFFF_FFFF {
        let extra = &var[nlen as usize..];
        let mut i = 0;
        while i + 4 <= extra.len() {
            let (id, len) = (le16(extra, i), le16(extra, i + 2) as usize);
            let body = &extra[(i + 4).min(extra.len())..(i + 4 + len).min(extra.len())];
            if id == 1 {
                let mut vals = body.chunks_exact(8).map(|c| le64(c, 0));
                if usize == 0xFFFF_FFFF {
                    usize = vals.next().unwrap_or(usize);
                }
                if csize == 0xFFFF_FFFF {
                    csize = vals.next().unwrap_or(csize);
                }
            }
            i += 4 + len;
        }
    }
    if data_start.saturating_add(csize) > file_len {
        return cut();
    }
    let ok = method != METHOD_STORED || (csize == usize && crc_of(file, data_start, csize, name)? == crc);
    let m =
        LocalMember { name: member, method, header_offset: pos, data_start, compressed_size: csize, uncompressed_size: usize, crc32: crc };
    Ok(Member::Complete(m, ok))
}

/// The (crc, compressed, uncompressed) of the first data descriptor after `data_start` whose
/// compressed size is its distance from `data_start` (ZIP64 or 32-bit form).
fn descriptor(file: &dyn ReadAt, data_start: u64, file_len: u64, method: u16, name: &str) -> Result<Option<(u32, u64, u64)>> {
    let sig = DESCRIPTOR_SIG.to_le_bytes();
    let mut from = data_start;
    while let Some(p) = find(file, from, file_len, &sig, name)? {
        let dist = p - data_start;
        if let Some(d) = fixed(file, p, 24, file_len, name)? {
            let (c, cs, us) = (le32(&d, 4), le64(&d, 8), le64(&d, 16));
            if cs == dist && (method != METHOD_STORED || us == cs) {
                return Ok(Some((c, cs, us)));
            }
        }
        if let Some(d) = fixed(file, p, 16, file_len, name)? {
            let (c, cs, us) = (le32(&d, 4), le32(&d, 8) as u64, le32(&d, 12) as u64);
            if cs == dist && (method != METHOD_STORED || us == cs) {
                return Ok(Some((c, cs, us)));
            }
        }
        from = p + 1;
    }
    Ok(None)
}

/// The first offset at or after `from` where `needle` (4 bytes) occurs.
fn find(file: &dyn ReadAt, mut from: u64, file_len: u64, needle: &[u8; 4], name: &str) -> Result<Option<u64>> {
    let mut buf = vec![0u8; WINDOW];
    let finder = memchr::memmem::Finder::new(needle);
    while from + 4 <= file_len {
        let n = ((file_len - from) as usize).min(WINDOW);
        read_full(file, from, &mut buf[..n], name)?;
        if let Some(i) = finder.find(&buf[..n]) {
            return Ok(Some(from + i as u64));
        }
        // The needle may straddle windows.
        from += (n as u64).saturating_sub(3).max(1);
    }
    Ok(None)
}

fn crc_of(file: &dyn ReadAt, mut at: u64, len: u64, name: &str) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; WINDOW.min(len as usize)];
    let end = at + len;
    while at < end {
        let n = ((end - at) as usize).min(buf.len());
        read_full(file, at, &mut buf[..n], name)?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize())
}

/// `len` bytes at `pos`, or None when the file ends first.
fn fixed(file: &dyn ReadAt, pos: u64, len: usize, file_len: u64, name: &str) -> Result<Option<Vec<u8>>> {
    if pos.saturating_add(len as u64) > file_len {
        return Ok(None);
    }
    let mut b = vec![0u8; len];
    read_full(file, pos, &mut b, name)?;
    Ok(Some(b))
}

fn read(file: &dyn ReadAt, off: u64, buf: &mut [u8], name: &str) -> Result<usize> {
    file.read_at(off, buf).map_err(|e| Error::io(format!("{name} at offset {off}"), e))
}

fn read_full(file: &dyn ReadAt, off: u64, buf: &mut [u8], name: &str) -> Result<()> {
    crate::stream::read_exact_at(file, off, buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(name, off, "file is truncated"),
        _ => Error::io(format!("{name} at offset {off}"), e),
    })
}
