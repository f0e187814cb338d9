//! Logical files (AFF4-L style) stored as plain segments beside physical images: the bytes, the
//! original name, size, times and hashes, readable by pyaff4 and by `pmem ls/cat/export`.

use crate::error::{Error, Result};
use crate::hash::HashAlgo;
use crate::rdf::Node;
use crate::vocab::{self, RDF_TYPE, XSD};
use crate::volume::write::VolumeWriter;
use std::io::Read;

/// File times recorded with a logical file (RFC 3339 strings).
#[derive(Debug, Clone, Default)]
pub struct FileTimes {
    /// Last modification.
    pub modified: Option<String>,
    /// Last access.
    pub accessed: Option<String>,
    /// Inode change.
    pub changed: Option<String>,
    /// Creation.
    pub born: Option<String>,
}

impl FileTimes {
    /// The times of a file from its metadata (those the platform records).
    pub fn of(meta: &std::fs::Metadata) -> FileTimes {
        let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        let f = |t: std::io::Result<std::time::SystemTime>| t.ok().and_then(|t| rfc3339(time::OffsetDateTime::from(t)));
        #[cfg(unix)]
        let changed = {
            use std::os::unix::fs::MetadataExt;
            time::OffsetDateTime::from_unix_timestamp(meta.ctime()).ok().and_then(rfc3339)
        };
        #[cfg(not(unix))]
        let changed = None;
        FileTimes { modified: f(meta.modified()), accessed: f(meta.accessed()), changed, born: f(meta.created()) }
    }
}

/// The URN a logical file with path `name` gets in volume `vol`.
pub fn file_urn(vol: &str, name: &str) -> String {
    let n = name.replace('\\', "/");
    if n.starts_with('/') {
        format!("{vol}{n}")
    } else {
        format!("{vol}/{n}")
    }
}

/// Stores everything `reader` yields as the logical file `name`; returns (urn, size).
///
/// # Errors
/// Read or write failures.
pub fn add_file(
    vol: &mut VolumeWriter,
    name: &str,
    reader: &mut dyn Read,
    times: &FileTimes,
    hashes: &[HashAlgo],
) -> Result<(String, u64)> {
    // A name already in the volume (an earlier acquisition's /proc/kallsyms, in an append) gets
    // a URN of its own: one URN with two contents would read as altered, and lose the first.
    let base = file_urn(vol.urn(), name);
    let mut urn = base.clone();
    let mut k = 2;
    while !vol.graph().properties(&urn).is_empty() {
        urn = format!("{base}~{k}");
        k += 1;
    }
    let mut hs: Vec<_> = hashes.iter().map(|a| a.hasher()).collect();
    vol.start_segment(&urn)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                vol.finish_segment()?;
                return Err(Error::io(format!("reading {name} at offset {size}"), e));
            }
        };
        hs.iter_mut().for_each(|h| h.update(&buf[..n]));
        vol.write_segment(&buf[..n])?;
        size += n as u64;
    }
    vol.finish_segment()?;
    let g = vol.graph_mut();
    // aff4:FileImage (the AFF4-L class), not also aff4:Image: pyaff4's block-hash validator
    // takes every aff4:Image for a block-hashed one (and fails on a file's linear hash), and
    // pyaff4 opens a volume as its first aff4:Image, which must be the memory or disk image.
    for t in [vocab::FILE_IMAGE, vocab::ZIP_SEGMENT] {
        g.add(&urn, RDF_TYPE, Node::iri(t));
    }
    g.add(&urn, vocab::ORIGINAL_FILE_NAME, Node::string(name));
    g.add(&urn, vocab::SIZE, Node::long(size));
    for (a, h) in hashes.iter().zip(hs) {
        g.add(&urn, vocab::HASH, Node::typed(crate::hash::hex(&h.finish()), a.datatype()));
    }
    let dt = format!("{XSD}dateTime");
    for (p, v) in
        [("lastWritten", &times.modified), ("lastAccessed", &times.accessed), ("recordChanged", &times.changed), ("birthTime", &times.born)]
    {
        if let Some(v) = v {
            g.add(&urn, &format!("{}{p}", vocab::AFF4), Node::typed(v.clone(), &dt));
        }
    }
    vol.register(&urn);
    Ok((urn, size))
}
