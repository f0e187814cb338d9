//! The Windows side of [`super::winpmem`]: the device (`\\.\pmem` through CreateFile,
//! DeviceIoControl and positional ReadFile) and loading/unloading the user-supplied signed
//! driver as a kernel service through the Service Control Manager (winpmem's `-L`/`-U`).
//! Not exercised here: nothing on our machines can load a Windows kernel driver.

use super::winpmem::{self, Device, Mode, WinPmemSource};
use crate::error::{SourceError, SourceErrorKind};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use windows_sys::Win32::Foundation::{ERROR_SERVICE_ALREADY_RUNNING, ERROR_SERVICE_EXISTS};
use windows_sys::Win32::Storage::FileSystem::{FILE_SHARE_READ, FILE_SHARE_WRITE};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ControlService, CreateServiceW, DeleteService, OpenSCManagerW, OpenServiceW, StartServiceW, SC_HANDLE,
    SC_MANAGER_ALL_ACCESS, SERVICE_ALL_ACCESS, SERVICE_CONTROL_STOP, SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, SERVICE_KERNEL_DRIVER,
    SERVICE_STATUS,
};
use windows_sys::Win32::System::IO::DeviceIoControl;

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// `\\.\pmem`, opened read/write as the driver requires for IOCTLs (it never writes memory).
pub struct WindowsDevice(File);

impl WindowsDevice {
    /// Opens the device.
    ///
    /// # Errors
    /// The driver is not loaded, or access is denied.
    pub fn open() -> io::Result<WindowsDevice> {
        let f = std::fs::OpenOptions::new().read(true).write(true).share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE).open(winpmem::DEVICE)?;
        Ok(WindowsDevice(f))
    }
}

impl Device for WindowsDevice {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> io::Result<usize> {
        let mut returned = 0u32;
        // SAFETY: the buffers are valid for the lengths passed; the call is synchronous.
        let ok = unsafe {
            DeviceIoControl(
                self.0.as_raw_handle(),
                code,
                input.as_ptr().cast(),
                input.len() as u32,
                output.as_mut_ptr().cast(),
                output.len() as u32,
                &mut returned,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(returned as usize)
        }
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.seek_read(buf, offset)
    }
}

struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: a handle this module opened.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn scm() -> io::Result<Sc> {
    // SAFETY: null machine and database mean the local SCM.
    let h = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_ALL_ACCESS) };
    if h.is_null() {
        Err(io::Error::last_os_error())
    } else {
        Ok(Sc(h))
    }
}

fn load_error(path: &Path, what: &str, e: io::Error) -> SourceError {
    let kind = if e.raw_os_error() == Some(5) { SourceErrorKind::Permission } else { SourceErrorKind::Invalid };
    let hint = match e.raw_os_error() {
        Some(5) => " (run as Administrator)",
        Some(577) => " (the driver is not signed with a certificate Windows accepts)",
        Some(1275) => " (blocked from loading: Driver Signature Enforcement, HVCI or the vulnerable-driver blocklist)",
        _ => "",
    };
    SourceError::new(path.display().to_string(), kind, format!("{what}: {e}{hint}"))
}

/// Installs and starts the driver at `path` as the `winpmem` kernel service. Returns false if it was already running.
///
/// # Errors
/// The SCM refuses (privileges, signature enforcement).
pub fn load(path: &Path) -> Result<bool, SourceError> {
    let full = std::fs::canonicalize(path).map_err(|e| load_error(path, "cannot find the driver", e))?;
    let m = scm().map_err(|e| load_error(path, "cannot open the Service Control Manager", e))?;
    let name = wide(OsStr::new(winpmem::SERVICE));
    let bin = wide(full.as_os_str());
    // SAFETY: valid handles and NUL-terminated wide strings.
    let mut svc = unsafe {
        CreateServiceW(
            m.0,
            name.as_ptr(),
            name.as_ptr(),
            SERVICE_ALL_ACCESS,
            SERVICE_KERNEL_DRIVER,
            SERVICE_DEMAND_START,
            SERVICE_ERROR_NORMAL,
            bin.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if svc.is_null() {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(ERROR_SERVICE_EXISTS as i32) {
            return Err(load_error(path, "cannot create the driver service", e));
        }
        // SAFETY: as above.
        svc = unsafe { OpenServiceW(m.0, name.as_ptr(), SERVICE_ALL_ACCESS) };
        if svc.is_null() {
            return Err(load_error(path, "cannot open the driver service", io::Error::last_os_error()));
        }
    }
    let svc = Sc(svc);
    // SAFETY: a valid service handle, no arguments.
    if unsafe { StartServiceW(svc.0, 0, std::ptr::null()) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_SERVICE_ALREADY_RUNNING as i32) {
            return Ok(false);
        }
        // SAFETY: as above.
        unsafe { DeleteService(svc.0) };
        return Err(load_error(path, "the driver did not start", e));
    }
    Ok(true)
}

/// Stops and deletes the `winpmem` service.
///
/// # Errors
/// The service does not exist or cannot be stopped.
pub fn unload() -> io::Result<()> {
    let m = scm()?;
    let name = wide(OsStr::new(winpmem::SERVICE));
    // SAFETY: valid handle and string.
    let svc = unsafe { OpenServiceW(m.0, name.as_ptr(), SERVICE_ALL_ACCESS) };
    if svc.is_null() {
        return Err(io::Error::last_os_error());
    }
    let svc = Sc(svc);
    // SAFETY: SERVICE_STATUS is plain data; valid handle.
    let mut status: SERVICE_STATUS = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { ControlService(svc.0, SERVICE_CONTROL_STOP, &mut status) };
    // SAFETY: as above.
    if unsafe { DeleteService(svc.0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The WinPmem source: opens `\\.\pmem`, first loading `driver` when given (and unloading it
/// again when dropped), with `modes` in order of preference.
pub struct LoadedWinPmem {
    source: Option<WinPmemSource>,
    loaded_here: bool,
}

/// Opens the WinPmem source.
///
/// # Errors
/// No driver given and none loaded, loading failed, or the device does not answer.
pub fn open(driver: Option<&Path>, modes: &[Mode]) -> Result<LoadedWinPmem, SourceError> {
    let loaded_here = match driver {
        Some(d) => load(d)?,
        None => false,
    };
    let dev = WindowsDevice::open().map_err(|e| {
        if loaded_here {
            let _ = unload();
        }
        match (e.kind(), driver) {
            (io::ErrorKind::NotFound, None) => SourceError::new(
                winpmem::DEVICE,
                SourceErrorKind::Missing,
                "the WinPmem driver is not loaded: give the signed driver with --driver FILE (e.g. winpmem_x64.sys)",
            ),
            _ => SourceError::new(winpmem::DEVICE, SourceErrorKind::Invalid, format!("cannot open the device: {e}")),
        }
    })?;
    let mut extras = vec![r"C:\Windows\System32\ntoskrnl.exe".to_string()];
    if let Some(d) = driver {
        extras.push(d.display().to_string());
    }
    match WinPmemSource::new(Box::new(dev), modes, extras) {
        Ok(s) => Ok(LoadedWinPmem { source: Some(s), loaded_here }),
        Err(e) => {
            if loaded_here {
                let _ = unload();
            }
            Err(e)
        }
    }
}

impl Drop for LoadedWinPmem {
    fn drop(&mut self) {
        drop(self.source.take());
        if self.loaded_here {
            if let Err(e) = unload() {
                eprintln!("pmem: could not unload the WinPmem driver: {e}");
            }
        }
    }
}

impl super::PhysicalSource for LoadedWinPmem {
    fn name(&self) -> String {
        winpmem::DEVICE.into()
    }
    fn kind(&self) -> &'static str {
        "winpmem"
    }
    fn ranges(&self) -> Vec<memformat::Range> {
        self.source.as_ref().map(|s| s.ranges()).unwrap_or_default()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        match &self.source {
            Some(s) => s.read_at(phys, buf),
            None => Err(io::Error::other("device closed")),
        }
    }
    fn metadata(&self) -> Vec<(String, String)> {
        self.source.as_ref().map(|s| s.metadata()).unwrap_or_default()
    }
    fn extra_files(&self) -> Vec<String> {
        self.source.as_ref().map(|s| s.extra_files()).unwrap_or_default()
    }
}
