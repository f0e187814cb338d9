//! Volumes: where segments are stored. A [`Backend`] is a ZIP file or a directory; a
//! [`Volume`] adds the URN, version and metadata every AFF4 volume carries.

mod dir;
pub mod encrypted;
pub mod uncached;
pub mod write;
mod zipvol;

pub use dir::DirBackend;
pub use zipvol::ZipBackend;

use crate::error::{Error, Result};
use crate::stream::{ReadAt, Stream};
use std::path::Path;
use std::sync::Arc;

/// Storage of named segments (ZIP members or files under a directory).
pub trait Backend: Send + Sync {
    /// The file or directory, for messages.
    fn name(&self) -> &str;
    /// Every segment name, as stored.
    fn member_names(&self) -> Vec<String>;
    /// Opens a segment by its stored name.
    ///
    /// # Errors
    /// Corrupt storage or I/O failure; `Ok(None)` when there is no such segment.
    fn open_member(&self, name: &str) -> Result<Option<Arc<dyn Stream>>>;
    /// Where a stored member's bytes lie, as they are, in a plain file: the file and the
    /// offset of the first byte (`None` for compressed members, or none of that name).
    fn in_place(&self, _name: &str) -> Option<(String, u64)> {
        None
    }
    /// Bytes after the last complete ZIP directory (left by an interrupted append).
    fn trailing_bytes(&self) -> u64 {
        0
    }
    /// The ZIP comment, where AFF4 writers also put the volume URN.
    fn comment(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Which AFF4 dialect a volume is written in (AFF4.md §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// AFF4 Standard v1.0 physical (version.txt minor 0).
    Standard,
    /// AFF4-L logical (minor 1).
    Logical,
    /// pyaff4 encrypted container (minor 2).
    Encrypted,
    /// Evimetry pre-standard (`http://afflib.org/2009/aff4#` vocabulary, no version.txt).
    PreStandardEvimetry,
    /// Rekall/pmem 2.x pre-standard, or a c-aff4 directory volume (no version.txt).
    PreStandardRekall,
}

impl Dialect {
    /// Human-readable name.
    pub fn describe(self) -> &'static str {
        match self {
            Dialect::Standard => "AFF4 Standard 1.0",
            Dialect::Logical => "AFF4-L 1.1 (logical)",
            Dialect::Encrypted => "AFF4 1.2 (encrypted)",
            Dialect::PreStandardEvimetry => "pre-standard (Evimetry 2.x)",
            Dialect::PreStandardRekall => "pre-standard (Rekall/pmem 2.x)",
        }
    }
}

/// One opened volume.
pub struct Volume {
    /// Path given by the user (or a synthetic name for decrypted volumes).
    pub path: String,
    /// The volume URN.
    pub urn: String,
    /// version.txt as key/value pairs, if present.
    pub version: Option<Vec<(String, String)>>,
    /// The raw information.turtle bytes.
    pub turtle: Vec<u8>,
    /// The dialect, from version.txt and the vocabulary.
    pub dialect: Dialect,
    /// Segment storage.
    pub backend: Arc<dyn Backend>,
}

/// Limit for metadata segments read whole (turtle, version, description).
pub const METADATA_LIMIT: u64 = 256 << 20;

impl Volume {
    /// Opens a ZIP file or a directory volume.
    ///
    /// # Errors
    /// Unreadable path, not a volume, or no volume URN.
    pub fn open(path: &Path) -> Result<Volume> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(&name, e))?;
        let backend: Arc<dyn Backend> = if meta.is_dir() {
            Arc::new(DirBackend::open(path)?)
        } else {
            let f = std::fs::File::open(path).map_err(|e| Error::io(&name, e))?;
            Arc::new(ZipBackend::open(Arc::new(f), &name)?)
        };
        Volume::from_backend(backend, name)
    }

    /// Opens a ZIP volume held by any [`ReadAt`] (e.g. a decrypted stream).
    ///
    /// # Errors
    /// As [`Volume::open`].
    pub fn open_zip(data: Arc<dyn ReadAt>, name: String) -> Result<Volume> {
        let backend = Arc::new(ZipBackend::open(data, &name)?);
        Volume::from_backend(backend, name)
    }

    fn from_backend(backend: Arc<dyn Backend>, path: String) -> Result<Volume> {
        let read = |n: &str| -> Result<Option<Vec<u8>>> {
            match backend.open_member(n)? {
                Some(s) => Ok(Some(s.read_all(METADATA_LIMIT)?)),
                None => Ok(None),
            }
        };
        let description = read("container.description")?;
        let mut urn = description.as_deref().map(trim_urn).unwrap_or_default();
        if urn.is_empty() {
            if let Some(z) = backend.comment() {
                urn = trim_urn(&z);
            }
        }
        let turtle =
            read("information.turtle")?.ok_or_else(|| Error::corrupt(&path, 0, "not an AFF4 volume: it has no information.turtle"))?;
        if urn.is_empty() {
            return Err(Error::corrupt(&path, 0, "not an AFF4 volume: no volume URN (container.description or ZIP comment)"));
        }
        let version = read("version.txt")?.map(|v| parse_version(&v));
        let minor = version.as_ref().and_then(|v| v.iter().find(|(k, _)| k == "minor").map(|(_, v)| v.clone()));
        let dialect = match (&version, minor.as_deref()) {
            (Some(_), Some("1")) => Dialect::Logical,
            (Some(_), Some("2")) => Dialect::Encrypted,
            (Some(_), _) => Dialect::Standard,
            (None, _) => {
                if memfind(&turtle, crate::vocab::AFF4_LEGACY.as_bytes()) {
                    Dialect::PreStandardEvimetry
                } else {
                    Dialect::PreStandardRekall
                }
            }
        };
        Ok(Volume { path, urn, version, turtle, dialect, backend })
    }

    /// The `tool=` line of version.txt.
    pub fn tool(&self) -> Option<&str> {
        self.version.as_ref()?.iter().find(|(k, _)| k == "tool").map(|(_, v)| v.as_str())
    }
}

fn trim_urn(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches(['\0', '\r', '\n', ' ']).trim_start().to_string()
}

fn parse_version(b: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(b)
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
