//! Windows physical memory through the published WinPmem driver interface (the user supplies
//! the signed driver): the info IOCTL (memory ranges, CR3, kernel base, NtBuildNumber), the mode
//! IOCTL (PTE remapping, \Device\PhysicalMemory, MmMapIoSpace) and reads at physical offsets.
//! The protocol is here, on every platform, behind [`Device`], so it is tested against recorded
//! driver responses; the Windows device (CreateFile/DeviceIoControl/ReadFile) and the Service
//! Control Manager code that loads the driver are in `windows_device` (Windows only).

use super::PhysicalSource;
use crate::error::{SourceError, SourceErrorKind};
use memformat::Range;
use std::io;

/// `CTL_CODE(0x22, 0x101, METHOD_BUFFERED, FILE_ANY_ACCESS)`: set the acquisition mode (u32).
pub const IOCTL_SET_MODE: u32 = 0x22c404;
/// `CTL_CODE(0x22, 0x103, ...)`: the memory info structure.
pub const IOCTL_INFO: u32 = 0x22c40c;
/// The device path.
pub const DEVICE: &str = r"\\.\pmem";
/// The service name winpmem registers.
pub const SERVICE: &str = "winpmem";

/// How the driver maps physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// MmMapIoSpace.
    IoSpace = 0,
    /// \Device\PhysicalMemory.
    Physical = 1,
    /// PTE remapping (the default of winpmem on 64-bit Windows; works under VSM/HVCI).
    Pte = 2,
}

impl Mode {
    /// The order tried when none is asked for.
    pub const PREFERENCE: [Mode; 3] = [Mode::Pte, Mode::Physical, Mode::IoSpace];

    /// Parses `pte`, `physical`, `iospace`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "pte" | "pte-remapping" => Some(Mode::Pte),
            "physical" | "physicalmemory" => Some(Mode::Physical),
            "iospace" | "mmmapiospace" => Some(Mode::IoSpace),
            _ => None,
        }
    }

    /// A name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::IoSpace => "MmMapIoSpace",
            Mode::Physical => "PhysicalMemory",
            Mode::Pte => "PTE remapping",
        }
    }
}

/// An open WinPmem device: IOCTLs and positional reads.
pub trait Device: Send + Sync {
    /// `DeviceIoControl`: returns the bytes written to `output`.
    ///
    /// # Errors
    /// The driver failed the request.
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> io::Result<usize>;
    /// Reads at physical `offset`; returns bytes read.
    ///
    /// # Errors
    /// The driver failed the read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// What the info IOCTL reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// CR3 of the System process (the kernel's page tables).
    pub cr3: u64,
    /// NtBuildNumber.
    pub nt_build_number: u64,
    /// Kernel image base (virtual).
    pub kernel_base: u64,
    /// Physical memory ranges.
    pub ranges: Vec<Range>,
}

/// Layout of `WINPMEM_MEMORY_INFO`: `#pragma pack(2)` of LARGE_INTEGERs; the KPCR array has
/// 64 entries on x64 since WinPmem 4 (32 before), and the run array follows `NumberOfRuns`.
const RUNS_V4: (usize, usize) = (32 + 64 * 8 + 4 * 8 + 0xfe * 8, 300);
const RUNS_V3: (usize, usize) = (32 + 32 * 8 + 4 * 8 + 0xfe * 8, 100);
/// The buffer size that holds the larger layout.
pub const INFO_SIZE: usize = RUNS_V4.0 + 8 + RUNS_V4.1 * 16;

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
}

/// Parses the info structure the driver returned (`returned` bytes of `buf`).
///
/// # Errors
/// Too short, or a run count/ranges that do not fit or are not sorted and disjoint.
pub fn parse_info(buf: &[u8], returned: usize) -> Result<Info, SourceError> {
    let bad = |what: String| SourceError::new(DEVICE, SourceErrorKind::Invalid, format!("driver info: {what}"));
    let b = buf.get(..returned).ok_or_else(|| bad(format!("returned {returned} bytes into a {}-byte buffer", buf.len())))?;
    // WinPmem 4 returns the whole (larger) structure; older drivers the smaller one.
    let (runs_at, max) = if returned >= INFO_SIZE { RUNS_V4 } else { RUNS_V3 };
    let n = u64_at(b, runs_at).ok_or_else(|| bad(format!("only {returned} bytes, too short for the run count")))?;
    if n == 0 || n > max as u64 {
        return Err(bad(format!("{n} memory runs (1..={max} expected)")));
    }
    let mut ranges = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let at = runs_at + 8 + i * 16;
        let (Some(start), Some(len)) = (u64_at(b, at), u64_at(b, at + 8)) else {
            return Err(bad(format!("run {i} lies beyond the {returned} bytes returned")));
        };
        let end = start.checked_add(len).ok_or_else(|| bad(format!("run {i} overflows: {start:#x}+{len:#x}")))?;
        if len == 0 {
            continue;
        }
        if ranges.last().is_some_and(|r: &Range| r.end > start) {
            return Err(bad(format!("run {i} at {start:#x} overlaps or is out of order")));
        }
        ranges.push(Range { start, end });
    }
    let field = |at: usize| u64_at(b, at).unwrap_or(0);
    Ok(Info { cr3: field(0), nt_build_number: field(8), kernel_base: field(16), ranges })
}

/// Asks the driver for its info.
///
/// # Errors
/// The IOCTL fails or returns garbage.
pub fn query_info(dev: &dyn Device) -> Result<Info, SourceError> {
    let mut buf = vec![0u8; INFO_SIZE];
    let n = dev
        .ioctl(IOCTL_INFO, &[], &mut buf)
        .map_err(|e| SourceError::new(DEVICE, SourceErrorKind::Invalid, format!("the info IOCTL failed: {e}")))?;
    parse_info(&buf, n)
}

/// Sets the first mode of `modes` that the driver accepts and that reads the first page of
/// RAM; returns it.
///
/// # Errors
/// No mode works; each one's failure is named.
pub fn select_mode(dev: &dyn Device, info: &Info, modes: &[Mode]) -> Result<Mode, SourceError> {
    let mut why = Vec::new();
    let probe = info.ranges.first().map(|r| r.start).unwrap_or(0);
    for &m in modes {
        if let Err(e) = dev.ioctl(IOCTL_SET_MODE, &(m as u32).to_le_bytes(), &mut []) {
            why.push(format!("{}: refused ({e})", m.name()));
            continue;
        }
        let mut page = [0u8; 4096];
        match dev.read_at(probe, &mut page) {
            Ok(4096) => return Ok(m),
            Ok(n) => why.push(format!("{}: short read at {probe:#x} ({n} bytes)", m.name())),
            Err(e) => why.push(format!("{}: read at {probe:#x} failed ({e})", m.name())),
        }
    }
    Err(SourceError::new(DEVICE, SourceErrorKind::Invalid, format!("no acquisition mode works: {}", why.join("; "))))
}

/// Physical memory through an open WinPmem device.
pub struct WinPmemSource {
    dev: Box<dyn Device>,
    info: Info,
    mode: Mode,
    extras: Vec<String>,
}

impl WinPmemSource {
    /// Queries the device and selects a mode (`modes` in order of preference).
    ///
    /// # Errors
    /// The info IOCTL fails, or no mode works.
    pub fn new(dev: Box<dyn Device>, modes: &[Mode], extras: Vec<String>) -> Result<WinPmemSource, SourceError> {
        let info = query_info(dev.as_ref())?;
        let mode = select_mode(dev.as_ref(), &info, modes)?;
        Ok(WinPmemSource { dev, info, mode, extras })
    }

    /// What the driver reported.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl PhysicalSource for WinPmemSource {
    fn name(&self) -> String {
        DEVICE.into()
    }
    fn kind(&self) -> &'static str {
        "winpmem"
    }
    fn ranges(&self) -> Vec<Range> {
        self.info.ranges.clone()
    }
    /// Reads inside the driver's ranges; bytes between ranges are not memory and read as zeros.
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = phys + done as u64;
            match self.info.ranges.iter().find(|r| r.start <= at && at < r.end) {
                Some(r) => {
                    let k = ((r.end - at) as usize).min(buf.len() - done);
                    let mut got = 0;
                    while got < k {
                        match self.dev.read_at(at + got as u64, &mut buf[done + got..done + k])? {
                            0 => {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    format!("driver returned nothing at {:#x}", at + got as u64),
                                ))
                            }
                            n => got += n,
                        }
                    }
                    done += k;
                }
                None => {
                    let next = self.info.ranges.iter().map(|r| r.start).filter(|&s| s > at).min().unwrap_or(u64::MAX);
                    let k = (next.saturating_sub(at)).min((buf.len() - done) as u64) as usize;
                    buf[done..done + k].fill(0);
                    done += k;
                }
            }
        }
        Ok(())
    }
    fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("memoryPageTableEntryOffset".into(), format!("{:#x}", self.info.cr3)),
            ("NtBuildNumber".into(), format!("{}", self.info.nt_build_number & 0xffff)),
            ("NtBuildNumberRaw".into(), format!("{:#x}", self.info.nt_build_number)),
            ("kernelBase".into(), format!("{:#x}", self.info.kernel_base)),
            ("acquisitionMode".into(), self.mode.name().into()),
        ]
    }
    fn extra_files(&self) -> Vec<String> {
        self.extras.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A device replaying recorded driver behaviour: an info blob, modes it accepts, memory.
    struct Recorded {
        info: Vec<u8>,
        accepts: Vec<u32>,
        mode: Mutex<Option<u32>>,
        memory: Vec<u8>,
        bad_page: Option<u64>,
    }

    impl Device for Recorded {
        fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> io::Result<usize> {
            match code {
                IOCTL_INFO => {
                    let n = self.info.len().min(output.len());
                    output[..n].copy_from_slice(&self.info[..n]);
                    Ok(n)
                }
                IOCTL_SET_MODE => {
                    let m = u32::from_le_bytes(input.try_into().map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?);
                    if self.accepts.contains(&m) {
                        *self.mode.lock().unwrap() = Some(m);
                        Ok(0)
                    } else {
                        Err(io::Error::from_raw_os_error(87))
                    }
                }
                _ => Err(io::Error::from_raw_os_error(1)),
            }
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            if self.mode.lock().unwrap().is_none() {
                return Err(io::Error::from_raw_os_error(21));
            }
            if self.bad_page.is_some_and(|p| offset / 4096 <= p && p <= (offset + buf.len() as u64 - 1) / 4096) {
                return Err(io::Error::from_raw_os_error(23));
            }
            let n = buf.len().min(self.memory.len().saturating_sub(offset as usize));
            buf[..n].copy_from_slice(&self.memory[offset as usize..offset as usize + n]);
            Ok(n)
        }
    }

    /// A WinPmem 4.x info structure as the driver returns it.
    fn info_v4(runs: &[(u64, u64)]) -> Vec<u8> {
        let mut b = vec![0u8; INFO_SIZE];
        b[0..8].copy_from_slice(&0x1aa000u64.to_le_bytes());
        b[8..16].copy_from_slice(&0xf000_0000_0000_4a64u64.to_le_bytes());
        b[16..24].copy_from_slice(&0xfffff802_1a200000u64.to_le_bytes());
        b[RUNS_V4.0..RUNS_V4.0 + 8].copy_from_slice(&(runs.len() as u64).to_le_bytes());
        for (i, (s, l)) in runs.iter().enumerate() {
            let at = RUNS_V4.0 + 8 + i * 16;
            b[at..at + 8].copy_from_slice(&s.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&l.to_le_bytes());
        }
        b
    }

    fn memory() -> Vec<u8> {
        (0..0x40000u32).map(|i| (i / 4096) as u8 ^ (i as u8)).collect()
    }

    #[test]
    fn info_structures_of_both_driver_generations() {
        let v4 = info_v4(&[(0x1000, 0x9e000), (0x100000, 0x3ff00000)]);
        let i = parse_info(&v4, v4.len()).unwrap();
        assert_eq!(i.cr3, 0x1aa000);
        assert_eq!(i.kernel_base, 0xfffff802_1a200000);
        assert_eq!(i.ranges, vec![Range { start: 0x1000, end: 0x9f000 }, Range { start: 0x100000, end: 0x40000000 }]);
        // WinPmem 2.x/3.x: KPCR[32], 100 runs; the driver returns the smaller structure.
        let mut v3 = vec![0u8; RUNS_V3.0 + 8 + 100 * 16];
        v3[RUNS_V3.0..RUNS_V3.0 + 8].copy_from_slice(&1u64.to_le_bytes());
        v3[RUNS_V3.0 + 8..RUNS_V3.0 + 16].copy_from_slice(&0x2000u64.to_le_bytes());
        v3[RUNS_V3.0 + 16..RUNS_V3.0 + 24].copy_from_slice(&0x5000u64.to_le_bytes());
        assert_eq!(parse_info(&v3, v3.len()).unwrap().ranges, vec![Range { start: 0x2000, end: 0x7000 }]);
        // Hostile: too short, absurd counts, overlapping or overflowing runs.
        assert!(parse_info(&v4, 100).is_err());
        let mut many = info_v4(&[(0, 4096)]);
        many[RUNS_V4.0..RUNS_V4.0 + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_info(&many, many.len()).is_err());
        let overlap = info_v4(&[(0x1000, 0x3000), (0x2000, 0x1000)]);
        assert!(parse_info(&overlap, overlap.len()).is_err());
        let wrap = info_v4(&[(u64::MAX - 10, 100)]);
        assert!(parse_info(&wrap, wrap.len()).is_err());
        for cut in (0..v4.len()).step_by(97) {
            let _ = parse_info(&v4, cut);
        }
    }

    #[test]
    fn mode_selection_falls_back_and_explains() {
        let dev =
            Recorded { info: info_v4(&[(0x1000, 0x3f000)]), accepts: vec![1], mode: Mutex::new(None), memory: memory(), bad_page: None };
        let s = WinPmemSource::new(Box::new(dev), &Mode::PREFERENCE, vec![]).unwrap();
        assert_eq!(s.mode(), Mode::Physical, "PTE refused, PhysicalMemory next");
        let md = s.metadata();
        assert!(md.contains(&("memoryPageTableEntryOffset".into(), "0x1aa000".into())), "{md:?}");
        assert!(md.contains(&("NtBuildNumber".into(), "19044".into())), "{md:?}");
        let none =
            Recorded { info: info_v4(&[(0x1000, 0x3f000)]), accepts: vec![], mode: Mutex::new(None), memory: memory(), bad_page: None };
        let e = WinPmemSource::new(Box::new(none), &Mode::PREFERENCE, vec![]).err().unwrap();
        assert!(e.message.contains("PTE remapping: refused") && e.message.contains("MmMapIoSpace: refused"), "{e}");
    }

    #[test]
    fn reads_across_range_boundaries_and_a_failing_page() {
        let mem = memory();
        let dev = Recorded {
            info: info_v4(&[(0x1000, 0x2000), (0x5000, 0x3000)]),
            accepts: vec![2],
            mode: Mutex::new(None),
            memory: mem.clone(),
            bad_page: Some(6),
        };
        let s = WinPmemSource::new(Box::new(dev), &Mode::PREFERENCE, vec![]).unwrap();
        // From inside the first range, across the hole (zeros), into the second.
        let mut b = vec![0xaau8; 0x3000];
        s.read_at(0x2800, &mut b).unwrap();
        assert_eq!(&b[..0x800], &mem[0x2800..0x3000]);
        assert!(b[0x800..0x2800].iter().all(|&x| x == 0));
        assert_eq!(&b[0x2800..], &mem[0x5000..0x5800]);
        // A page the driver cannot read is an error for that read...
        assert!(s.read_at(0x6000, &mut [0u8; 4096]).is_err());
        // ...and acquisition maps it to aff4:UnreadableData and keeps everything else.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.aff4");
        let mut vol = aff4::volume::write::VolumeWriter::create(&p, aff4::volume::write::Mode::CreateNew).unwrap();
        let opts = crate::acquire::AcquireOptions { extras: false, ..Default::default() };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let rep = crate::acquire::acquire(std::sync::Arc::new(s), &mut vol, &opts, &Default::default(), &mut |_| {}, &stop).unwrap();
        vol.finish().unwrap();
        assert_eq!(rep.unreadable_pages, 1);
        let c = aff4::Container::open(&[&p]).unwrap();
        let got = c.open_stream(&rep.image).unwrap().read_all(1 << 20).unwrap();
        assert_eq!(&got[0x1000..0x3000], &mem[0x1000..0x3000]);
        assert_eq!(&got[0x5000..0x6000], &mem[0x5000..0x6000]);
        assert_eq!(&got[0x7000..0x8000], &mem[0x7000..0x8000]);
        let pattern: Vec<u8> = (0x6000..0x7000u64).map(|p| b"UNREADABLEDATA"[((p % (1 << 20)) % 14) as usize]).collect();
        assert_eq!(&got[0x6000..0x7000], &pattern[..]);
        let t = c.graph().to_turtle();
        assert!(t.contains("memoryPageTableEntryOffset") && t.contains("PTE remapping"), "{t}");
    }
}
