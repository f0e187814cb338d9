//! Writing ImageStreams: chunk encoding (compressed unless that does not save 16 bytes, as
//! AFF4.md §5.6 recommends) and bevy assembly with the 12-byte index and block hashes.

use super::bevy_urn;
use crate::codec::ChunkEncoder;
use crate::error::Result;
use crate::hash::{HashAlgo, Hasher};
use crate::volume::write::VolumeWriter;

/// An encoded chunk ready to be stored.
pub struct EncodedChunk {
    /// Payload (compressed, or the raw chunk when exactly `chunk_size` long).
    pub payload: Vec<u8>,
    /// Block digests of the raw chunk, one per requested algorithm.
    pub digests: Vec<Vec<u8>>,
}

/// Encodes full (padded) chunks with a thread's encoder: their block hashes (SHA-256 of several
/// chunks at once, see [`crate::hash::sha256_each`]), then each compressed into a buffer from
/// `spare` (reused, so that no chunk costs an allocation), the chunk coming back for reuse; a
/// chunk that does not compress is its own payload, and the spare buffer comes back instead.
pub fn encode_chunks(
    enc: &mut ChunkEncoder,
    chunks: Vec<Vec<u8>>,
    mut spare: impl FnMut() -> Vec<u8>,
    block_algos: &[HashAlgo],
) -> Vec<(EncodedChunk, Vec<u8>)> {
    let refs: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
    let mut by_algo: Vec<std::vec::IntoIter<Vec<u8>>> = block_algos.iter().map(|a| a.digest_each(&refs).into_iter()).collect();
    chunks
        .into_iter()
        .map(|chunk| {
            let digests = by_algo.iter_mut().filter_map(|d| d.next()).collect();
            match enc.encode(&chunk) {
                Some(c) => {
                    let mut payload = spare();
                    payload.clear();
                    payload.extend_from_slice(c);
                    (EncodedChunk { payload, digests }, chunk)
                }
                None => (EncodedChunk { payload: chunk, digests }, spare()),
            }
        })
        .collect()
}

/// Encodes full (padded) chunks that stay where they are (a thread's own buffer): as
/// [`encode_chunks`], each payload in a buffer from `spare`, raw where it does not compress.
pub fn encode_slices(
    enc: &mut ChunkEncoder,
    chunks: &[&[u8]],
    mut spare: impl FnMut() -> Vec<u8>,
    block_algos: &[HashAlgo],
) -> Vec<EncodedChunk> {
    let mut by_algo: Vec<std::vec::IntoIter<Vec<u8>>> = block_algos.iter().map(|a| a.digest_each(chunks).into_iter()).collect();
    chunks
        .iter()
        .map(|chunk| {
            let digests = by_algo.iter_mut().filter_map(|d| d.next()).collect();
            let mut payload = spare();
            payload.clear();
            payload.extend_from_slice(enc.encode(chunk).unwrap_or(chunk));
            EncodedChunk { payload, digests }
        })
        .collect()
}

/// Per block-hash algorithm, the SHA-512 of all its block-hash segments.
pub type BlockHashDigests = Vec<(HashAlgo, Vec<u8>)>;

/// Writes encoded chunks, in order, as bevies of a stream.
pub struct BevyWriter {
    urn: String,
    chunks_per_bevy: u32,
    block_algos: Vec<HashAlgo>,
    bevy: u64,
    in_bevy: u32,
    offset: u64,
    index: Vec<u8>,
    digests: Vec<Vec<u8>>,
    all_digests: Vec<Hasher>,
    chunks: u64,
    /// Where the volume stood when the bevy in progress was started.
    bevy_start: Option<u64>,
}

impl BevyWriter {
    /// A writer for stream `urn`.
    pub fn new(urn: &str, chunks_per_bevy: u32, block_algos: &[HashAlgo]) -> Self {
        BevyWriter {
            urn: urn.to_string(),
            chunks_per_bevy: chunks_per_bevy.max(1),
            block_algos: block_algos.to_vec(),
            bevy: 0,
            in_bevy: 0,
            offset: 0,
            index: Vec::new(),
            digests: vec![Vec::new(); block_algos.len()],
            all_digests: block_algos.iter().map(|_| HashAlgo::Sha512.hasher()).collect(),
            chunks: 0,
            bevy_start: None,
        }
    }

    /// Stores the next chunk.
    ///
    /// # Errors
    /// I/O.
    pub fn push(&mut self, vol: &mut VolumeWriter, c: &EncodedChunk) -> Result<()> {
        if self.in_bevy == 0 {
            vol.start_segment(&bevy_urn(&self.urn, self.bevy))?;
            self.bevy_start = Some(vol.committed());
        }
        vol.write_segment(&c.payload)?;
        self.index.extend_from_slice(&self.offset.to_le_bytes());
        self.index.extend_from_slice(&(c.payload.len() as u32).to_le_bytes());
        self.offset += c.payload.len() as u64;
        for (acc, d) in self.digests.iter_mut().zip(&c.digests) {
            acc.extend_from_slice(d);
        }
        self.in_bevy += 1;
        self.chunks += 1;
        if self.in_bevy == self.chunks_per_bevy {
            self.close_bevy(vol)?;
        }
        Ok(())
    }

    fn close_bevy(&mut self, vol: &mut VolumeWriter) -> Result<()> {
        if self.in_bevy == 0 {
            return Ok(());
        }
        vol.finish_segment()?;
        let base = bevy_urn(&self.urn, self.bevy);
        for (i, a) in self.block_algos.clone().iter().enumerate() {
            let d = std::mem::take(&mut self.digests[i]);
            self.all_digests[i].update(&d);
            vol.add_segment(&format!("{base}.blockHash.{}", a.name()), &d)?;
        }
        let idx = std::mem::take(&mut self.index);
        vol.add_segment(&format!("{base}.index"), &idx)?;
        self.bevy += 1;
        self.in_bevy = 0;
        self.offset = 0;
        self.bevy_start = None;
        Ok(())
    }

    /// Bevies completed so far.
    pub fn bevies(&self) -> u64 {
        self.bevy
    }

    /// Gives up after a failed write: the chunk count and block-hash digests of the bevies
    /// completed, and where the volume must be cut back to drop the bevy in progress.
    pub fn abandon(self) -> (u64, BlockHashDigests, Option<u64>) {
        let algos = self.block_algos.clone();
        let chunks = self.bevy * self.chunks_per_bevy as u64;
        (chunks, algos.into_iter().zip(self.all_digests.into_iter().map(|h| h.finish())).collect(), self.bevy_start)
    }

    /// Closes the last bevy; returns the chunk count and, per block-hash algorithm, the
    /// SHA-512 of all its block-hash segments (the BlockHashes object's hash).
    ///
    /// # Errors
    /// I/O.
    pub fn finish(mut self, vol: &mut VolumeWriter) -> Result<(u64, BlockHashDigests)> {
        self.close_bevy(vol)?;
        let algos = self.block_algos.clone();
        Ok((self.chunks, algos.into_iter().zip(self.all_digests.into_iter().map(|h| h.finish())).collect()))
    }
}
