//! What the operating system must be asked in its own way: the size of a disk, free space,
//! whether stdin has data, unmounting. Every `unsafe` call of the binary outside signal handling is here.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The size of a Windows disk or volume (`\\.\PhysicalDrive0`, `\\.\C:`), which seeking cannot tell.
#[cfg(windows)]
fn device_size(f: &File) -> Option<u64> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Ioctl::{GET_LENGTH_INFORMATION, IOCTL_DISK_GET_LENGTH_INFO};
    let mut info = GET_LENGTH_INFORMATION { Length: 0 };
    let mut returned = 0u32;
    // SAFETY: the output buffer is a GET_LENGTH_INFORMATION; the call is synchronous.
    let ok = unsafe {
        windows_sys::Win32::System::IO::DeviceIoControl(
            f.as_raw_handle(),
            IOCTL_DISK_GET_LENGTH_INFO,
            std::ptr::null(),
            0,
            (&mut info as *mut GET_LENGTH_INFORMATION).cast(),
            std::mem::size_of::<GET_LENGTH_INFORMATION>() as u32,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    (ok != 0 && info.Length > 0).then_some(info.Length as u64)
}

#[cfg(not(windows))]
fn device_size(_: &File) -> Option<u64> {
    None
}

/// The size of a file or device to image, when it is known and can be trusted: a regular file
/// that says 0 bytes (procfs, sysfs) is read as a stream instead, like a pipe.
pub fn input_size(f: &File) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let meta = f.metadata().ok()?;
    if meta.is_file() {
        return (meta.len() > 0).then_some(meta.len());
    }
    if let Some(n) = device_size(f) {
        return Some(n);
    }
    let mut g = f.try_clone().ok()?;
    let end = g.seek(SeekFrom::End(0)).ok()?;
    g.seek(SeekFrom::Start(0)).ok()?;
    (end > 0).then_some(end)
}

/// Free bytes on the filesystem that would hold `p`.
#[cfg(unix)]
pub fn free_space(p: &Path) -> Option<u64> {
    let dir = if p.is_dir() {
        p.to_path_buf()
    } else {
        p.parent().filter(|d| !d.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| ".".into())
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value for it.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and s a valid out-pointer.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// Free bytes (not known here).
#[cfg(not(unix))]
pub fn free_space(_: &Path) -> Option<u64> {
    None
}

/// Whether stdin has bytes (or its end) to read within 100 ms.
#[cfg(unix)]
fn stdin_ready() -> bool {
    let mut p = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut p, 1, 100) != 0 }
}

/// Whether stdin has bytes to read (not known here: wait for a full block).
#[cfg(not(unix))]
fn stdin_ready() -> bool {
    true
}

/// Standard input as a capture source ([`aff4::capture::Plan::Stream`]): a read returns what
/// it has once stdin has been quiet for a moment, so that what came before a Ctrl-C is kept
/// even if the pipe then stays silent.
pub struct Stdin;

impl aff4::stream::ReadAt for Stdin {
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut r = std::io::stdin().lock();
        let mut n = 0;
        while n < buf.len() {
            if n > 0 && !stdin_ready() {
                break;
            }
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(0)
    }
}

/// This process's user and group ids (the owner shown for mounted files).
#[cfg(all(feature = "fuse", target_os = "linux"))]
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Unmounts `path`; with `detach`, lazily (MNT_DETACH: open files then fail).
#[cfg(all(feature = "fuse", target_os = "linux"))]
pub fn unmount(path: &Path, detach: bool) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), if detach { libc::MNT_DETACH } else { 0 }) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
