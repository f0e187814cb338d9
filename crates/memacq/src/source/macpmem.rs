//! macOS physical memory through MacPmem (osxpmem's kext): `/dev/pmem` read at physical offsets,
//! and the `kern.pmem_info` sysctl (`pmem_meta_t`: CR3, DTB, KASLR slide, kernel version and
//! the EFI memory map as records). The parser is here on every platform and tested; the
//! sysctl call is macOS only, and type-checked (not run) for x86_64-apple-darwin.

use super::PhysicalSource;
use crate::error::{SourceError, SourceErrorKind};
use memformat::Range;
use std::fs::File;
use std::io;

/// The sysctl MacPmem publishes its metadata under.
pub const SYSCTL: &str = "kern.pmem_info";
/// The device.
pub const DEVICE: &str = "/dev/pmem";

/// What MacPmem reports (the RAM ranges from its EFI map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// CR3 when the metadata was taken.
    pub cr3: u64,
    /// Physical address of a DTB.
    pub dtb: u64,
    /// KASLR slide.
    pub kaslr_slide: u32,
    /// The kernel version banner.
    pub kernel_version: String,
    /// RAM ranges (EFI conventional, loader, boot-services and runtime memory).
    pub ranges: Vec<Range>,
}

// Offsets in the packed `pmem_meta_t` (pmem_common.h, API version 2 and 3).
const RECORDS_OFFSET: usize = 8;
const KASLR_SLIDE: usize = 20;
const CR3: usize = 56;
const DTB: usize = 64;
const VERSION: usize = 72;
const VERSION_LEN: usize = 256;
const RECORD_COUNT: usize = VERSION + VERSION_LEN + 8;
/// Record header: type (u32), size (u32), purpose[40]; then the range: subtype (u32), start, length, flags.
const RECORD_RANGE: usize = 48;
/// EFI memory types backed by RAM: loader, boot and runtime services, conventional, ACPI tables and NVS.
const EFI_RAM: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 9, 10];

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

/// Parses `pmem_meta_t` as the sysctl returns it.
///
/// # Errors
/// Truncated structures, records that point outside it, or no RAM range.
pub fn parse_meta(b: &[u8]) -> Result<Meta, SourceError> {
    let bad = |what: String| SourceError::new(SYSCTL, SourceErrorKind::Invalid, what);
    let size = u32_at(b, 0).ok_or_else(|| bad("empty".into()))? as usize;
    let b = b.get(..size).ok_or_else(|| bad(format!("declares {size} bytes, {} returned", b.len())))?;
    let records_at = u64_at(b, RECORDS_OFFSET).ok_or_else(|| bad("truncated header".into()))?;
    // Bounded by the structure's size, so offsets computed from it below cannot overflow.
    let records_at = usize::try_from(records_at)
        .ok()
        .filter(|&r| r <= size)
        .ok_or_else(|| bad(format!("records at {records_at} lie outside the {size} bytes")))?;
    let count = u32_at(b, RECORD_COUNT).ok_or_else(|| bad("truncated header".into()))?;
    let version = b.get(VERSION..VERSION + VERSION_LEN).ok_or_else(|| bad("truncated header".into()))?;
    let kernel_version = String::from_utf8_lossy(&version[..version.iter().position(|&c| c == 0).unwrap_or(version.len())]).into_owned();
    let mut ranges = Vec::new();
    let mut at = records_at;
    for i in 0..count {
        let (Some(kind), Some(len)) = (u32_at(b, at), u32_at(b, at + 4)) else {
            return Err(bad(format!("record {i} at {at} lies outside the {size} bytes")));
        };
        if (len as usize) < RECORD_RANGE + 24 {
            return Err(bad(format!("record {i} at {at} has an impossible size {len}")));
        }
        // Type 0: an EFI range; its subtype is the EFI memory type.
        if kind == 0 {
            let (Some(sub), Some(start), Some(length)) =
                (u32_at(b, at + RECORD_RANGE), u64_at(b, at + RECORD_RANGE + 4), u64_at(b, at + RECORD_RANGE + 12))
            else {
                return Err(bad(format!("record {i} at {at} is truncated")));
            };
            if EFI_RAM.contains(&sub) && length > 0 {
                let end = start.checked_add(length).ok_or_else(|| bad(format!("record {i} overflows")))?;
                ranges.push(Range { start, end });
            }
        }
        at = at.checked_add(len as usize).ok_or_else(|| bad("record offsets overflow".into()))?;
    }
    ranges.sort_by_key(|r| r.start);
    let ranges = memformat::ranges::merge(ranges);
    if ranges.is_empty() {
        return Err(bad("no RAM in the EFI memory map".into()));
    }
    Ok(Meta {
        cr3: u64_at(b, CR3).unwrap_or(0),
        dtb: u64_at(b, DTB).unwrap_or(0),
        kaslr_slide: u32_at(b, KASLR_SLIDE).unwrap_or(0),
        kernel_version,
        ranges,
    })
}

/// Reads the sysctl (macOS).
///
/// # Errors
/// MacPmem is not loaded.
#[cfg(target_os = "macos")]
pub fn read_sysctl() -> Result<Vec<u8>, SourceError> {
    let name = std::ffi::CString::new(SYSCTL).map_err(|e| SourceError::new(SYSCTL, SourceErrorKind::Invalid, e.to_string()))?;
    let err = |e: io::Error| {
        SourceError::new(SYSCTL, SourceErrorKind::Missing, format!("MacPmem is not loaded (sudo kextload MacPmem.kext): {e}"))
    };
    let mut len: libc::size_t = 0;
    // SAFETY: a NUL-terminated name; a null buffer asks for the size.
    if unsafe { libc::sysctlbyname(name.as_ptr(), std::ptr::null_mut(), &mut len, std::ptr::null_mut(), 0) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    let mut buf = vec![0u8; len.min(16 << 20)];
    let mut got = buf.len();
    // SAFETY: the buffer holds `got` bytes.
    if unsafe { libc::sysctlbyname(name.as_ptr(), buf.as_mut_ptr().cast(), &mut got, std::ptr::null_mut(), 0) } != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    buf.truncate(got);
    Ok(buf)
}

/// /dev/pmem with MacPmem's metadata.
pub struct MacPmemSource {
    file: File,
    meta: Meta,
}

impl MacPmemSource {
    /// Opens `device` with metadata already read.
    ///
    /// # Errors
    /// The device cannot be opened.
    pub fn with_meta(device: &str, meta: Meta) -> Result<MacPmemSource, SourceError> {
        let file = File::open(device).map_err(|e| super::open_error(device, &e))?;
        Ok(MacPmemSource { file, meta })
    }

    /// Opens /dev/pmem and reads `kern.pmem_info` (macOS).
    ///
    /// # Errors
    /// MacPmem is not loaded, or its metadata does not parse.
    #[cfg(target_os = "macos")]
    pub fn open() -> Result<MacPmemSource, SourceError> {
        let meta = parse_meta(&read_sysctl()?)?;
        MacPmemSource::with_meta(DEVICE, meta)
    }
}

impl PhysicalSource for MacPmemSource {
    fn name(&self) -> String {
        DEVICE.into()
    }
    fn kind(&self) -> &'static str {
        "macpmem"
    }
    fn ranges(&self) -> Vec<Range> {
        self.meta.ranges.clone()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        memformat::segments::pread_exact(&self.file, phys, buf)
    }
    fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("memoryPageTableEntryOffset".into(), format!("{:#x}", self.meta.dtb)),
            ("cr3".into(), format!("{:#x}", self.meta.cr3)),
            ("kaslrOffset".into(), format!("{:#x}", self.meta.kaslr_slide)),
            ("kernelVersion".into(), self.meta.kernel_version.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(records: &[(u32, u32, u64, u64)]) -> Vec<u8> {
        let rec_at = RECORD_COUNT + 8 + 8 + 8 + 48 + 12;
        let mut b = vec![0u8; rec_at];
        b[RECORDS_OFFSET..RECORDS_OFFSET + 8].copy_from_slice(&(rec_at as u64).to_le_bytes());
        b[KASLR_SLIDE..KASLR_SLIDE + 4].copy_from_slice(&0x1200000u32.to_le_bytes());
        b[CR3..CR3 + 8].copy_from_slice(&0x5773611222u64.to_le_bytes());
        b[DTB..DTB + 8].copy_from_slice(&0x5773611000u64.to_le_bytes());
        b[VERSION..VERSION + 22].copy_from_slice(b"Darwin Kernel Version ");
        b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&(records.len() as u32).to_le_bytes());
        for &(kind, sub, start, len) in records {
            let mut r = vec![0u8; RECORD_RANGE + 24];
            r[0..4].copy_from_slice(&kind.to_le_bytes());
            r[4..8].copy_from_slice(&((RECORD_RANGE + 24) as u32).to_le_bytes());
            r[RECORD_RANGE..RECORD_RANGE + 4].copy_from_slice(&sub.to_le_bytes());
            r[RECORD_RANGE + 4..RECORD_RANGE + 12].copy_from_slice(&start.to_le_bytes());
            r[RECORD_RANGE + 12..RECORD_RANGE + 20].copy_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&r);
        }
        let n = b.len() as u32;
        b[0..4].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn efi_map_becomes_ram_ranges() {
        // Conventional + boot services (adjacent, merged), MMIO (skipped), a PCI record (skipped).
        let b = meta(&[(0, 7, 0x1000, 0x8f000), (0, 3, 0x90000, 0x10000), (0, 11, 0xe0000000, 0x1000000), (1, 0, 0xf0000000, 0x1000)]);
        let m = parse_meta(&b).unwrap();
        assert_eq!(m.ranges, vec![Range { start: 0x1000, end: 0xa0000 }]);
        assert_eq!((m.cr3, m.dtb, m.kaslr_slide), (0x5773611222, 0x5773611000, 0x1200000));
        assert!(m.kernel_version.starts_with("Darwin Kernel Version"));
        for cut in 0..b.len() {
            let _ = parse_meta(&b[..cut]);
        }
        let mut far = b.clone();
        far[RECORDS_OFFSET..RECORDS_OFFSET + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert!(parse_meta(&far).is_err(), "a records offset near usize::MAX is an error, not an overflow");
        let mut lying = b.clone();
        lying[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_meta(&lying).is_err());
        assert!(parse_meta(&meta(&[(0, 11, 0, 4096)])).is_err(), "no RAM");
    }
}
