//! /dev/mem and /dev/crash: the file offset is the physical address. STRICT_DEVMEM kernels
//! refuse RAM above the first MiB; that is detected and reported.

use super::{open_error, Handles, PhysicalSource};
use crate::error::{SourceError, SourceErrorKind};
use crate::iomem;
use memformat::segments::pread_exact;
use memformat::Range;
use std::fs::File;

/// /dev/mem or /dev/crash (its open files: see [`Handles`]).
pub struct DevMemSource {
    path: String,
    kind: &'static str,
    files: Handles,
    ranges: Vec<Range>,
}

impl DevMemSource {
    /// Opens the device at `path` (`kind` is `devmem` or `crash`).
    ///
    /// # Errors
    /// Missing, not permitted, lockdown, or STRICT_DEVMEM.
    pub fn open(path: &str, kind: &'static str, iomem: &str) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|e| open_error(path, &e))?;
        let ranges = iomem::system_ram(iomem).map_err(|e| SourceError::new(path, SourceErrorKind::Invalid, e.to_string()))?;
        // Probe RAM above 1 MiB: STRICT_DEVMEM forbids it.
        if let Some(r) = ranges.iter().find(|r| r.end > 0x100000) {
            let at = r.start.max(0x100000);
            let mut b = [0u8; 16];
            if let Err(e) = pread_exact(&file, at, &mut b) {
                if kind == "devmem" && e.kind() == std::io::ErrorKind::PermissionDenied {
                    return Err(SourceError::new(
                        path,
                        SourceErrorKind::StrictDevmem,
                        format!("reading RAM at {at:#x} is refused: the kernel has STRICT_DEVMEM (only the first MiB is readable)"),
                    ));
                }
                return Err(open_error(path, &e));
            }
        }
        Ok(DevMemSource { path: path.to_string(), kind, files: Handles::new(path, file), ranges })
    }
}

impl PhysicalSource for DevMemSource {
    fn name(&self) -> String {
        self.path.clone()
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn ranges(&self) -> Vec<Range> {
        self.ranges.clone()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.files.with(|f| pread_exact(f, phys, buf))
    }
    fn concurrent_reads(&self) -> bool {
        self.files.concurrent()
    }
}
