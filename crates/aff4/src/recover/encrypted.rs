//! Recovering an encrypted volume (AFF4.md §13) whose writer never closed it: the outer volume's
//! complete bevies are decrypted with a key that opens one of its key bags, the volume inside is
//! rebuilt from that plaintext as any unclosed volume is, and the rebuilt volume is encrypted
//! again under the same key, with the same key bags, so that it opens for the same recipients
//! and nothing of it is ever written in the clear.

use super::{nothing_to_recover, rebuild, Recovery};
use crate::crypto::{self, Keys, VolumeKey, CHUNK, CHUNKS_PER_BEVY};
use crate::error::{Error, Result};
use crate::image_stream::{bevy_urn, ChunkDecrypt};
use crate::rdf::Graph;
use crate::stream::{read_exact_at, ReadAt};
use crate::urn::urn_to_member;
use crate::volume::encrypted::EncryptedWriter;
use crate::volume::write::{Mode, VolumeWriter};
use crate::zip::METHOD_STORED;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

/// Plaintext bytes per bevy of an encrypted stream.
const BEVY: u64 = (CHUNK * CHUNKS_PER_BEVY) as u64;

/// How a rebuilt volume is encrypted again: the key it was under and its key bags.
pub(super) struct Reencrypt {
    key: VolumeKey,
    outer: Graph,
    stream: String,
}

impl Reencrypt {
    /// Writes `rec` encrypted into a new volume at `tmp`; returns the members copied.
    pub(super) fn write(&self, rec: &Recovery, tmp: &Path) -> Result<usize> {
        let outer = VolumeWriter::create(tmp, Mode::CreateNew)?;
        let bags = |g: &mut Graph, s: &str| {
            crypto::copy_key_bags(&self.outer, &self.stream, g, s);
            Ok(())
        };
        let w = EncryptedWriter::with_key(outer, &self.key, bags)?;
        let (w, copied) = rec.write_into(BufWriter::with_capacity(4 << 20, w), &tmp.display().to_string())?;
        let w = w.into_inner().map_err(|e| Error::io(tmp.display().to_string(), e.into_error()))?;
        w.finish()?;
        let f = std::fs::File::open(tmp).map_err(|e| Error::io(tmp.display().to_string(), e))?;
        f.sync_all().map_err(|e| Error::io(tmp.display().to_string(), e))?;
        Ok(copied)
    }
}

/// The decrypted bytes of the complete bevies of an encrypted stream, read in place.
struct Decrypted {
    file: Arc<dyn ReadAt>,
    /// Where each bevy's bytes start in the file, and their length (whole chunks).
    bevies: Vec<(u64, u64)>,
    len: u64,
    decrypt: Arc<dyn ChunkDecrypt>,
}

impl ReadAt for Decrypted {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let b = (offset / BEVY) as usize;
        let Some(&(start, blen)) = self.bevies.get(b) else { return Ok(0) };
        let within = offset % BEVY;
        let end = (within + buf.len() as u64).min(blen).min(self.len - b as u64 * BEVY);
        if end <= within {
            return Ok(0);
        }
        // Whole chunks around the range (at most a bevy), decrypted under their numbers.
        let first = within / CHUNK as u64;
        let last = end.div_ceil(CHUNK as u64);
        let mut chunks = vec![0u8; ((last - first) * CHUNK as u64) as usize];
        read_exact_at(&*self.file, start + first * CHUNK as u64, &mut chunks)?;
        self.decrypt.decrypt(b as u64 * CHUNKS_PER_BEVY as u64 + first, &mut chunks);
        let skip = (within - first * CHUNK as u64) as usize;
        let n = (end - within) as usize;
        buf[..n].copy_from_slice(&chunks[skip..skip + n]);
        Ok(n)
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.len)
    }
}

/// Rebuilds the volume inside encrypted stream `stream` of the rebuilt outer volume `outer`
/// (`closed`: the outer volume itself was closed).
pub(super) fn recover(outer: Recovery, stream: &str, keys: &Keys, closed: bool) -> Result<Recovery> {
    let name = outer.name.clone();
    if keys.is_empty() {
        let to = crypto::recipients(&outer.graph, stream).join(", ");
        return Err(Error::Key(format!(
            "{name} is an encrypted volume (to {to}): recovering it decrypts it, so it needs its password or a recipient's private key"
        )));
    }
    let key = crypto::unlock_key(&outer.graph, stream, keys)?;

    // The complete bevies, in order, up to the first one missing or short.
    let mut last: std::collections::HashMap<&str, &crate::zip::LocalMember> = std::collections::HashMap::new();
    for m in outer.members.iter().filter(|m| !outer.skip.contains(&m.name)) {
        last.insert(&m.name, m);
    }
    let mut bevies = Vec::new();
    let mut notes = Vec::new();
    loop {
        let member = urn_to_member(&outer.report.volume, &bevy_urn(stream, bevies.len() as u64));
        let Some(m) = last.get(member.as_str()) else { break };
        if m.method != METHOD_STORED || m.compressed_size == 0 || m.compressed_size > BEVY || m.compressed_size % CHUNK as u64 != 0 {
            notes.push(format!(
                "encrypted bevy {member} at offset {} is not whole chunks of a stored member: it and what follows are left out",
                m.header_offset
            ));
            break;
        }
        bevies.push((m.data_start, m.compressed_size));
        if m.compressed_size < BEVY {
            break;
        }
    }
    let mut len: u64 = bevies.iter().map(|(_, l)| l).sum();
    // A closed outer volume records the stream's size (its last chunk is padded); an unclosed
    // one only sizes that its snapshots took earlier.
    if let Some(size) = outer.graph.aff4(stream, "size").and_then(|n| n.as_u64()).filter(|_| closed) {
        len = len.min(size);
    }
    let inner_name = format!("{name}: the volume encrypted in {stream}");
    let plain: Arc<dyn ReadAt> = Arc::new(Decrypted { file: outer.file.clone(), bevies, len, decrypt: key.decryptor() });
    if closed && super::is_closed(&plain, &inner_name) {
        return Err(nothing_to_recover(&name));
    }
    let mut inner = rebuild(plain, inner_name)?;
    let r = &mut inner.report;
    r.notes.insert(
        0,
        format!(
            "{name} is encrypted (to {}): {len} bytes of its encrypted stream decrypted; the rebuilt volume is encrypted again under the same key, for the same recipients",
            crypto::recipients(&outer.graph, stream).join(", ")
        ),
    );
    r.notes.splice(1..1, notes);
    for (n, at) in &outer.report.damaged {
        r.notes.push(format!("outer volume: member {n} at offset {at} dropped (its bytes do not match its CRC-32)"));
    }
    if let Some(at) = outer.report.cut_at {
        r.notes.push(format!("outer volume: cut off at byte {at}"));
    }
    inner.reencrypt = Some(Reencrypt { key, outer: outer.graph, stream: stream.to_string() });
    Ok(inner)
}
