//! The pmem kernel module (driver/linux/pmem.c) for kernels without a usable /proc/kcore:
//! loading and unloading it, and reading /dev/pmem, whose file offset is the physical address
//! (System RAM only; other pages fail with EIO and become aff4:UnreadableData).

use super::{lockdown_state, DevMemSource, PhysicalSource};
use crate::error::{SourceError, SourceErrorKind};
use memformat::Range;
use std::ffi::CString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// The module's name as the kernel knows it.
pub const MODULE: &str = "pmem";
/// The device the module creates.
pub const DEVICE: &str = "/dev/pmem";

/// Whether the module is loaded.
pub fn is_loaded() -> bool {
    Path::new("/sys/module").join(MODULE).exists()
}

/// Loads the module from `path` (`finit_module`). Already loaded is not an error (returns false).
///
/// # Errors
/// The kernel's refusal, explained: lockdown or signature enforcement, missing privileges, a
/// module built for another kernel.
pub fn load(path: &Path) -> Result<bool, SourceError> {
    let name = path.display().to_string();
    if is_loaded() {
        return Ok(false);
    }
    let f =
        std::fs::File::open(path).map_err(|e| SourceError::new(&name, SourceErrorKind::Missing, format!("cannot open the module: {e}")))?;
    let params = CString::default();
    // SAFETY: finit_module takes a valid fd, a NUL-terminated parameter string and flags.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, std::os::fd::AsRawFd::as_raw_fd(&f), params.as_ptr(), 0) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    Err(load_error(&name, &e))
}

fn load_error(name: &str, e: &io::Error) -> SourceError {
    let lock = lockdown_state();
    match e.raw_os_error() {
        Some(libc::EEXIST) => SourceError::new(name, SourceErrorKind::Invalid, "a module named pmem is already loaded"),
        Some(libc::EPERM | libc::EACCES) if !super::is_root() => {
            SourceError::new(name, SourceErrorKind::Permission, "loading a kernel module needs root (CAP_SYS_MODULE)")
        }
        Some(libc::EPERM | libc::EACCES | libc::EKEYREJECTED) if lock.as_deref().is_some_and(|l| l != "none") => SourceError::new(
            name,
            SourceErrorKind::Lockdown,
            format!(
                "the kernel refused the module: lockdown ({}) allows only modules signed with a key the kernel trusts, and this one is unsigned",
                lock.unwrap_or_default()
            ),
        ),
        Some(libc::EPERM | libc::EACCES | libc::EKEYREJECTED | libc::ENOKEY) => SourceError::new(
            name,
            SourceErrorKind::Lockdown,
            format!("the kernel refused the module ({e}): module signatures are enforced (module.sig_enforce or Secure Boot); sign it with a trusted key"),
        ),
        Some(libc::ENOEXEC | libc::EINVAL) => SourceError::new(
            name,
            SourceErrorKind::Invalid,
            format!("not a module for this kernel ({e}): build it against this kernel's headers (driver/linux/build.sh)"),
        ),
        Some(libc::ENOSYS) => SourceError::new(name, SourceErrorKind::Missing, "this kernel cannot load modules"),
        _ => SourceError::new(name, SourceErrorKind::Invalid, format!("cannot load: {e}")),
    }
}

/// Unloads the module (`delete_module`, non-blocking).
///
/// # Errors
/// Not loaded, in use, or not permitted.
pub fn unload() -> io::Result<()> {
    let name = CString::new(MODULE).map_err(io::Error::other)?;
    // SAFETY: delete_module takes a NUL-terminated name and flags.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// /dev/pmem, and the module if this process loaded it (unloaded again when the source is dropped).
pub struct DriverSource {
    /// Always `Some` until dropped (taken first so the device is closed before unloading).
    inner: Option<DevMemSource>,
    loaded_here: bool,
}

impl DriverSource {
    /// Opens /dev/pmem, first loading the module from `module` when it is given and not loaded.
    ///
    /// # Errors
    /// The module cannot be loaded, or the device cannot be opened.
    pub fn open(device: &str, module: Option<&Path>, iomem: &str) -> Result<DriverSource, SourceError> {
        let loaded_here = match module {
            Some(m) => load(m)?,
            None => false,
        };
        // devtmpfs creates the node as the module registers; give it a moment.
        let t = Instant::now();
        while !Path::new(device).exists() && loaded_here && t.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let inner = match DevMemSource::open(device, "pmem-driver", iomem) {
            Ok(s) => s,
            Err(mut e) => {
                if loaded_here {
                    let _ = unload();
                }
                if e.kind == SourceErrorKind::Missing && module.is_none() {
                    e.message = "does not exist (the pmem module is not loaded; give it with --driver FILE)".into();
                }
                return Err(e);
            }
        };
        Ok(DriverSource { inner: Some(inner), loaded_here })
    }

    /// Whether this source loaded the module (and will unload it).
    pub fn loaded_here(&self) -> bool {
        self.loaded_here
    }
}

impl Drop for DriverSource {
    fn drop(&mut self) {
        if self.loaded_here {
            drop(self.inner.take());
            if let Err(e) = unload() {
                eprintln!("pmem: could not unload the pmem module: {e}");
            }
        }
    }
}

impl PhysicalSource for DriverSource {
    fn name(&self) -> String {
        DEVICE.into()
    }
    fn kind(&self) -> &'static str {
        "pmem-driver"
    }
    fn ranges(&self) -> Vec<Range> {
        self.inner.as_ref().map(|s| s.ranges()).unwrap_or_default()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        match &self.inner {
            Some(s) => s.read_at(phys, buf),
            None => Err(io::Error::other("device closed")),
        }
    }
    fn concurrent_reads(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.concurrent_reads())
    }
}
