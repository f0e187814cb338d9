//! LiME images: a 32-byte header per range (magic `EMiL`, version 1, inclusive end) then the bytes.

use crate::error::{Error, Result};
use crate::ranges::Range;
use aff4::stream::ReadAt;

/// `0x4C694D45`, "EMiL" on disk.
pub const MAGIC: u32 = 0x4C69_4D45;
/// Header size.
pub const HEADER: u64 = 32;
const MAX_RANGES: usize = 1 << 20;

/// The header for one range.
pub fn header(r: &Range) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..16].copy_from_slice(&r.start.to_le_bytes());
    h[16..24].copy_from_slice(&(r.end - 1).to_le_bytes());
    h
}

/// (range, file offset of its data) for every range in a LiME file.
///
/// # Errors
/// Bad magic, unsupported version (AVML's compressed LiME), or ranges past the end of the file.
pub fn parse(f: &dyn ReadAt, ctx: &str) -> Result<Vec<(Range, u64)>> {
    let len = f.len().map_err(|e| Error::io(ctx, e))?;
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < len {
        let mut h = [0u8; 32];
        let mut got = 0;
        while got < 32 {
            let n = f.read_at(off + got as u64, &mut h[got..]).map_err(|e| Error::io(ctx, e))?;
            if n == 0 {
                return Err(Error::corrupt(ctx, off, "file ends inside a LiME header"));
            }
            got += n;
        }
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let version = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if magic != MAGIC {
            return Err(Error::corrupt(ctx, off, "not a LiME header (bad magic)"));
        }
        if version != 1 {
            return Err(Error::corrupt(
                ctx,
                off,
                format!("LiME version {version} (AVML's compressed format?) is not supported; convert it with `avml-convert` first"),
            ));
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&h[8..16]);
        let start = u64::from_le_bytes(a);
        a.copy_from_slice(&h[16..24]);
        let last = u64::from_le_bytes(a);
        if last < start || last == u64::MAX {
            return Err(Error::corrupt(ctx, off, format!("range {start:#x}-{last:#x} is invalid")));
        }
        let r = Range { start, end: last + 1 };
        let data = off + HEADER;
        if data.checked_add(r.len()).is_none_or(|e| e > len) {
            return Err(Error::corrupt(ctx, off, format!("range {start:#x}-{last:#x} runs past the end of the file")));
        }
        out.push((r, data));
        if out.len() > MAX_RANGES {
            return Err(Error::corrupt(ctx, off, "too many ranges"));
        }
        off = data + r.len();
    }
    Ok(out)
}
