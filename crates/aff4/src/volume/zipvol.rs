//! ZIP volumes.

use super::Backend;
use crate::error::{Error, Result};
use crate::stream::{MemStream, ReadAt, Stream};
use crate::zip::{ZipArchive, METHOD_DEFLATE, METHOD_STORED};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

/// Largest deflated member inflated into memory (logical files, turtle).
const INFLATE_LIMIT: u64 = 1 << 30;

/// A ZIP file as segment storage.
pub struct ZipBackend {
    zip: ZipArchive,
    by_name: HashMap<String, usize>,
}

impl ZipBackend {
    /// Reads the central directory of `file`.
    ///
    /// # Errors
    /// Not a ZIP file, or a corrupt directory.
    pub fn open(file: Arc<dyn ReadAt>, name: &str) -> Result<Self> {
        let zip = ZipArchive::open(file, name)?;
        let mut by_name = HashMap::new();
        for (i, e) in zip.entries().iter().enumerate() {
            by_name.insert(e.name.clone(), i);
        }
        Ok(ZipBackend { zip, by_name })
    }

    /// The parsed archive.
    pub fn archive(&self) -> &ZipArchive {
        &self.zip
    }
}

impl Backend for ZipBackend {
    fn name(&self) -> &str {
        self.zip.name()
    }
    fn member_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.zip
            .entries()
            .iter()
            .rev()
            .filter(|e| seen.insert(e.name.clone()))
            .map(|e| e.name.clone())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }
    fn open_member(&self, name: &str) -> Result<Option<Arc<dyn Stream>>> {
        let Some(&i) = self.by_name.get(name) else { return Ok(None) };
        let e = &self.zip.entries()[i];
        let ctx = format!("{}: member {}", self.zip.name(), e.name);
        match e.method {
            METHOD_STORED if e.compressed_size != e.uncompressed_size => Err(Error::corrupt(
                ctx,
                e.header_offset,
                format!(
                    "stored member's sizes disagree: {} bytes stored, {} bytes declared uncompressed",
                    e.compressed_size, e.uncompressed_size
                ),
            )),
            METHOD_STORED => Ok(Some(Arc::new(self.zip.raw_member(e)?))),
            METHOD_DEFLATE => {
                if e.uncompressed_size > INFLATE_LIMIT {
                    return Err(Error::corrupt(
                        ctx,
                        e.header_offset,
                        format!("deflated member of {} bytes is too large to inflate", e.uncompressed_size),
                    ));
                }
                let raw = self.zip.raw_member(e)?.read_all(INFLATE_LIMIT)?;
                let mut out = Vec::with_capacity((e.uncompressed_size as usize).min(1 << 20));
                flate2::read::DeflateDecoder::new(&raw[..])
                    .take(e.uncompressed_size + 1)
                    .read_to_end(&mut out)
                    .map_err(|err| Error::corrupt(&ctx, e.header_offset, format!("inflate: {err}")))?;
                if out.len() as u64 != e.uncompressed_size {
                    return Err(Error::corrupt(
                        ctx,
                        e.header_offset,
                        format!("inflates to {} bytes, the directory says {}", out.len(), e.uncompressed_size),
                    ));
                }
                Ok(Some(Arc::new(MemStream::new(out, ctx))))
            }
            m => Err(Error::corrupt(ctx, e.header_offset, format!("unsupported ZIP compression method {m}"))),
        }
    }
    fn in_place(&self, name: &str) -> Option<(String, u64)> {
        let e = &self.zip.entries()[*self.by_name.get(name)?];
        (e.method == METHOD_STORED).then(|| self.zip.data_start(e).ok()).flatten().map(|at| (self.zip.name().to_string(), at))
    }
    fn trailing_bytes(&self) -> u64 {
        self.zip.trailing_bytes()
    }
    fn comment(&self) -> Option<Vec<u8>> {
        Some(self.zip.comment().to_vec())
    }
}
