//! Physical-memory sources behind one trait: the ranges they can read and positional reads
//! that fail per page. Linux: /proc/kcore, /dev/crash, /dev/mem, /dev/pmem (our module);
//! files: ELF cores and LiME.

mod devmem;
#[cfg(target_os = "linux")]
pub mod driver;
mod file;
mod handles;
mod kcore;
pub mod macpmem;
#[cfg(windows)]
pub mod windows_device;
pub mod winpmem;

pub use devmem::DevMemSource;
pub use file::{open_elf, open_lime};
pub use handles::Handles;
pub use kcore::open_kcore;

use crate::error::{Error, SourceError, SourceErrorKind};
use memformat::Range;
use std::fs::File;
use std::io;
use std::path::Path;

/// Something that can read physical memory.
pub trait PhysicalSource: Send + Sync {
    /// A name for reports (`/proc/kcore`, a file path).
    fn name(&self) -> String;
    /// What kind of source (`kcore`, `crash`, `devmem`, `elf`, `lime`).
    fn kind(&self) -> &'static str;
    /// The physical ranges to acquire, sorted and disjoint.
    fn ranges(&self) -> Vec<Range>;
    /// Fills `buf` from physical address `phys`; an error means those bytes could not be read.
    ///
    /// # Errors
    /// The read failed (EIO, EFAULT, …) or `phys` is outside the ranges.
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The kernel's VMCOREINFO text, when the source carries it.
    fn vmcoreinfo(&self) -> Option<String> {
        None
    }
    /// Source-specific metadata for the memory Image, as (aff4 local name, value) pairs
    /// (e.g. a Windows driver's CR3 and kernel base).
    fn metadata(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Files this source wants captured with the image (e.g. the kernel image and the driver).
    fn extra_files(&self) -> Vec<String> {
        Vec::new()
    }
    /// Parts of [`PhysicalSource::ranges`] this source knows it cannot read (RAM that kcore
    /// does not map): recorded as unreadable without being read. Sorted and disjoint.
    fn unmapped(&self) -> Vec<Range> {
        Vec::new()
    }
    /// What an examiner should know about this source's view of memory (e.g. RAM that it
    /// cannot map); recorded with the image and shown by `pmem acquire`.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The memory's CPU architecture (`x86_64`, `aarch64`, …): a live source's is this
    /// machine's; a file says it in its ELF header, or not at all (LiME).
    fn architecture(&self) -> Option<&'static str> {
        Some(std::env::consts::ARCH)
    }
    /// Whether reads from several threads at once each get their own bytes (see [`Handles`]);
    /// the capture engine then reads on its compression threads. False unless a source knows.
    fn concurrent_reads(&self) -> bool {
        false
    }
}

/// A file whose physical memory is found through a [`SegmentTable`]: kcore, ELF cores, LiME.
/// Made by [`open_kcore`], [`open_elf`] and [`open_lime`].
pub struct SegmentedSource {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) files: Handles,
    pub(crate) table: memformat::segments::SegmentTable,
    pub(crate) ranges: Vec<Range>,
    pub(crate) vmcoreinfo: Option<String>,
    pub(crate) arch: Option<&'static str>,
    pub(crate) notes: Vec<String>,
    pub(crate) unmapped: Vec<Range>,
    /// RAM the file does not map but /dev/mem reads (kcore's partial pages below 1 MiB).
    pub(crate) low: Option<(Handles, Vec<Range>)>,
}

impl PhysicalSource for SegmentedSource {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn ranges(&self) -> Vec<Range> {
        self.ranges.clone()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = phys.saturating_add(buf.len() as u64);
        let Some((mem, low)) = self.low.as_ref().filter(|(_, low)| low.iter().any(|r| r.start < end && phys < r.end)) else {
            return self.files.with(|f| self.table.read(f, phys, buf));
        };
        // Piece by piece: what /dev/mem reads from it, the rest from the segments.
        let mut at = phys;
        while at < end {
            let (from, to) = ((at - phys) as usize, |e: u64| (e.min(end) - phys) as usize);
            if let Some(r) = low.iter().find(|r| r.start <= at && at < r.end) {
                mem.with(|f| memformat::segments::pread_exact(f, at, &mut buf[from..to(r.end)]))?;
                at = r.end.min(end);
            } else {
                let next = low.iter().filter(|r| r.start > at).map(|r| r.start).min().unwrap_or(end).min(end);
                self.files.with(|f| self.table.read(f, at, &mut buf[from..to(next)]))?;
                at = next;
            }
        }
        Ok(())
    }
    fn vmcoreinfo(&self) -> Option<String> {
        self.vmcoreinfo.clone()
    }
    fn architecture(&self) -> Option<&'static str> {
        self.arch
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
    fn unmapped(&self) -> Vec<Range> {
        self.unmapped.clone()
    }
    fn concurrent_reads(&self) -> bool {
        self.files.concurrent() && self.low.as_ref().is_none_or(|(mem, _)| mem.concurrent())
    }
}

/// The kernel lockdown state from securityfs (`none`, `integrity`, `confidentiality`).
pub fn lockdown_state() -> Option<String> {
    let t = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let start = t.find('[')?;
    let end = t[start..].find(']')?;
    Some(t[start + 1..start + end].to_string())
}

/// Classifies an open error of a memory device.
pub fn open_error(path: &str, e: &io::Error) -> SourceError {
    let lock = lockdown_state();
    match e.kind() {
        io::ErrorKind::NotFound => {
            SourceError::new(path, SourceErrorKind::Missing, "does not exist (not built into this kernel, or not loaded)")
        }
        io::ErrorKind::PermissionDenied => {
            if !is_root() {
                SourceError::new(path, SourceErrorKind::Permission, "permission denied: run as root (CAP_SYS_RAWIO)")
            } else if lock.as_deref().is_some_and(|l| l != "none") {
                SourceError::new(
                    path,
                    SourceErrorKind::Lockdown,
                    format!("refused by kernel lockdown ({}): the kernel forbids reading memory this way", lock.unwrap_or_default()),
                )
            } else {
                SourceError::new(
                    path,
                    SourceErrorKind::Permission,
                    format!("permission denied even as root ({e}); an LSM (SELinux/AppArmor) or lockdown may forbid it"),
                )
            }
        }
        _ => SourceError::new(path, SourceErrorKind::Invalid, e.to_string()),
    }
}

/// True when running as uid 0.
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Which source to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChoice {
    /// kcore, then crash, then mem.
    Auto,
    /// /proc/kcore.
    Kcore,
    /// /dev/crash.
    Crash,
    /// /dev/mem.
    DevMem,
    /// /dev/pmem from the pmem kernel module (loaded from `LivePaths::driver` if given).
    Driver,
    /// An ELF core or LiME file made by another tool.
    File(std::path::PathBuf),
}

impl SourceChoice {
    /// The names `--source` accepts (with aliases), and what each opens.
    pub const NAMES: [(&'static str, SourceChoice); 8] = [
        ("auto", SourceChoice::Auto),
        ("kcore", SourceChoice::Kcore),
        ("crash", SourceChoice::Crash),
        ("mem", SourceChoice::DevMem),
        ("devmem", SourceChoice::DevMem),
        ("pmem-driver", SourceChoice::Driver),
        ("driver", SourceChoice::Driver),
        ("pmem", SourceChoice::Driver),
    ];

    /// The source named `s`; any other name is an ELF core or LiME file to convert.
    pub fn parse(s: &str) -> SourceChoice {
        SourceChoice::NAMES.iter().find(|(n, _)| *n == s).map(|(_, c)| c.clone()).unwrap_or_else(|| SourceChoice::File(s.into()))
    }
}

/// Where the live sources look for their files (tests point these at fakes).
#[derive(Debug, Clone)]
pub struct LivePaths {
    /// /proc/kcore.
    pub kcore: String,
    /// /dev/crash.
    pub crash: String,
    /// /dev/mem.
    pub mem: String,
    /// /proc/iomem.
    pub iomem: String,
    /// /dev/pmem.
    pub pmem: String,
    /// The pmem kernel module to load when /dev/pmem is needed and missing.
    pub driver: Option<std::path::PathBuf>,
}

impl Default for LivePaths {
    fn default() -> Self {
        LivePaths {
            kcore: "/proc/kcore".into(),
            crash: "/dev/crash".into(),
            mem: "/dev/mem".into(),
            iomem: "/proc/iomem".into(),
            pmem: "/dev/pmem".into(),
            driver: None,
        }
    }
}

/// Opens the chosen source; `Auto` reports why each candidate failed.
///
/// # Errors
/// [`Error::NoSource`] listing every failure.
pub fn open(choice: &SourceChoice, paths: &LivePaths) -> Result<Box<dyn PhysicalSource>, Error> {
    if let SourceChoice::File(p) = choice {
        return open_file(p);
    }
    let iomem = || -> Result<String, SourceError> {
        std::fs::read_to_string(&paths.iomem)
            .map_err(|e| SourceError::new(&paths.iomem, SourceErrorKind::Invalid, format!("cannot read: {e}")))
    };
    let try_one = |c: &SourceChoice| -> Result<Box<dyn PhysicalSource>, SourceError> {
        let io = iomem()?;
        Ok(match c {
            // /dev/mem reads what the live kcore leaves out below 1 MiB; a kcore file does not
            // belong to this machine's /dev/mem.
            SourceChoice::Kcore => Box::new(open_kcore(&paths.kcore, &io, (paths.kcore == "/proc/kcore").then_some(paths.mem.as_str()))?),
            SourceChoice::Crash => Box::new(DevMemSource::open(&paths.crash, "crash", &io)?),
            #[cfg(target_os = "linux")]
            SourceChoice::Driver => Box::new(driver::DriverSource::open(&paths.pmem, paths.driver.as_deref(), &io)?),
            #[cfg(windows)]
            SourceChoice::Driver => Box::new(windows_device::open(paths.driver.as_deref(), &winpmem::Mode::PREFERENCE)?),
            #[cfg(target_os = "macos")]
            SourceChoice::Driver => Box::new(macpmem::MacPmemSource::open()?),
            #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
            SourceChoice::Driver => {
                return Err(SourceError::new(&paths.pmem, SourceErrorKind::Missing, "the pmem Linux module exists only on Linux"))
            }
            _ => Box::new(DevMemSource::open(&paths.mem, "devmem", &io)?),
        })
    };
    let order = match choice {
        SourceChoice::Auto if cfg!(target_os = "linux") => {
            vec![SourceChoice::Kcore, SourceChoice::Crash, SourceChoice::DevMem, SourceChoice::Driver]
        }
        SourceChoice::Auto => vec![SourceChoice::Driver],
        c => vec![c.clone()],
    };
    let mut errors = Vec::new();
    for c in &order {
        match try_one(c) {
            Ok(s) => return Ok(s),
            Err(e) => errors.push(e),
        }
    }
    Err(Error::NoSource(errors))
}

/// Loads this platform's memory driver (Linux: pmem.ko; Windows: the WinPmem driver as a
/// service); false if it was already loaded.
///
/// # Errors
/// The OS refused, with the reason explained.
pub fn load_driver(path: &Path) -> Result<bool, SourceError> {
    #[cfg(target_os = "linux")]
    return driver::load(path);
    #[cfg(windows)]
    return windows_device::load(path);
    #[cfg(not(any(target_os = "linux", windows)))]
    return Err(SourceError::new(
        path.display().to_string(),
        SourceErrorKind::Missing,
        "load MacPmem with `sudo kextload MacPmem.kext`; pmem then reads /dev/pmem",
    ));
}

/// Unloads this platform's memory driver.
///
/// # Errors
/// Not loaded, in use, or not permitted.
pub fn unload_driver() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return driver::unload();
    #[cfg(windows)]
    return windows_device::unload();
    #[cfg(not(any(target_os = "linux", windows)))]
    return Err(io::Error::other("unload MacPmem with `sudo kextunload MacPmem.kext`"));
}

/// Opens an ELF core or LiME file by its magic.
///
/// # Errors
/// Unreadable or unrecognised files.
pub fn open_file(p: &Path) -> Result<Box<dyn PhysicalSource>, Error> {
    let name = p.display().to_string();
    let f = File::open(p).map_err(|e| Error::io(&name, e))?;
    let mut magic = [0u8; 4];
    memformat::segments::pread_exact(&f, 0, &mut magic).map_err(|e| Error::io(&name, e))?;
    if &magic == b"\x7fELF" {
        Ok(Box::new(open_elf(Handles::new(p, f), &name)?))
    } else if u32::from_le_bytes(magic) == memformat::lime::MAGIC {
        Ok(Box::new(open_lime(Handles::new(p, f), &name)?))
    } else {
        Err(Error::corrupt(name, 0, "neither an ELF core nor a LiME file"))
    }
}
