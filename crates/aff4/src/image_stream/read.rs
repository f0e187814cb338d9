//! Reading ImageStreams with random access and a bounded chunk cache.

use super::bevy_urn;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::iobuf::IoBuf;
use crate::segments::Segments;
use crate::stream::Stream;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Which bevy index layout a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFormat {
    /// Standard `<bevy>.index`: (u64 offset, u32 length) per chunk.
    V1,
    /// Pre-standard `<bevy>/index`: u32 per chunk, end offsets (Evimetry) or start offsets (Rekall/pmem), told apart by the first value.
    Legacy,
}

/// Decrypts chunks of an encrypted stream in place (pyaff4 AES-XTS).
pub trait ChunkDecrypt: Send + Sync {
    /// Decrypts chunk number `n`.
    fn decrypt(&self, n: u64, data: &mut [u8]);
}

/// Everything needed to read one ImageStream.
pub struct ImageStreamParams {
    /// Stream URN.
    pub urn: String,
    /// `aff4:size`.
    pub size: u64,
    /// `aff4:chunkSize`.
    pub chunk_size: u32,
    /// `aff4:chunksInSegment`.
    pub chunks_per_bevy: u32,
    /// Compression.
    pub codec: Codec,
    /// Index layout expected from the type (the other one is tried when the segment is missing).
    pub index: IndexFormat,
    /// Decryption for aff4:EncryptedStream.
    pub decrypt: Option<Arc<dyn ChunkDecrypt>>,
}

struct Bevy {
    data: Arc<dyn Stream>,
    index: Vec<(u64, u32)>,
}

/// Decoded chunks by number, with their insertion order for eviction.
type ChunkCache = (HashMap<u64, Arc<Vec<u8>>>, VecDeque<u64>);

const CHUNK_CACHE: usize = 64;

thread_local! {
    /// Each thread's buffer for the payloads it reads.
    static PAYLOAD: std::cell::RefCell<IoBuf> = std::cell::RefCell::new(IoBuf::default());
}
const BEVY_CACHE: usize = 256;
const MAX_INDEX_BYTES: u64 = 256 << 20;

/// Random-access reader of an ImageStream.
pub struct ImageStreamReader {
    p: ImageStreamParams,
    segments: Arc<Segments>,
    bevies: Mutex<HashMap<u64, Arc<Bevy>>>,
    cache: Mutex<ChunkCache>,
}

impl ImageStreamReader {
    /// A reader for `p`, finding bevies through `segments`.
    ///
    /// # Errors
    /// Invalid chunk parameters.
    pub fn new(p: ImageStreamParams, segments: Arc<Segments>) -> Result<Self> {
        if p.chunk_size == 0 || p.chunk_size as u64 > super::MAX_CHUNK_SIZE {
            return Err(Error::corrupt(&p.urn, 0, format!("invalid chunk size {}", p.chunk_size)));
        }
        if p.chunks_per_bevy == 0 {
            return Err(Error::corrupt(&p.urn, 0, "chunksInSegment is 0"));
        }
        Ok(ImageStreamReader { p, segments, bevies: Mutex::new(HashMap::new()), cache: Mutex::new((HashMap::new(), VecDeque::new())) })
    }

    /// Parameters of this stream.
    pub fn params(&self) -> &ImageStreamParams {
        &self.p
    }

    /// Number of chunks (the last may be partial).
    pub fn chunk_count(&self) -> u64 {
        self.p.size.div_ceil(self.p.chunk_size as u64)
    }

    /// Number of bevies.
    pub fn bevy_count(&self) -> u64 {
        self.chunk_count().div_ceil(self.p.chunks_per_bevy as u64)
    }

    fn bevy(&self, n: u64) -> Result<Arc<Bevy>> {
        if let Some(b) = self.bevies.lock().map_err(poison)?.get(&n) {
            return Ok(b.clone());
        }
        let base = bevy_urn(&self.p.urn, n);
        let data = self
            .segments
            .open(&base)?
            .ok_or_else(|| Error::NotFound(format!("{}: bevy {n} (segment {base}) is not in the opened volumes", self.p.urn)))?;
        let v1 = format!("{base}.index");
        let legacy = format!("{base}/index");
        let (fmt, seg) = match self.p.index {
            IndexFormat::V1 => match self.segments.open(&v1)? {
                Some(s) => (IndexFormat::V1, Some(s)),
                None => (IndexFormat::Legacy, self.segments.open(&legacy)?),
            },
            IndexFormat::Legacy => match self.segments.open(&legacy)? {
                Some(s) => (IndexFormat::Legacy, Some(s)),
                None => (IndexFormat::V1, self.segments.open(&v1)?),
            },
        };
        let seg = seg.ok_or_else(|| Error::NotFound(format!("{}: index of bevy {n} ({v1}) is not in the opened volumes", self.p.urn)))?;
        let raw = seg.read_all(MAX_INDEX_BYTES)?;
        let ctx = seg.describe();
        let data_len = data.size();
        let index = match fmt {
            IndexFormat::V1 => raw
                .chunks_exact(12)
                .map(|c| {
                    let mut o = [0u8; 8];
                    o.copy_from_slice(&c[..8]);
                    (u64::from_le_bytes(o), u32::from_le_bytes([c[8], c[9], c[10], c[11]]))
                })
                .collect(),
            IndexFormat::Legacy => {
                let vals: Vec<u64> = raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
                let mut out = Vec::with_capacity(vals.len());
                if vals.first() == Some(&0) {
                    // Start offsets (Rekall/pmem): the last chunk runs to the end of the bevy.
                    for (i, &s) in vals.iter().enumerate() {
                        let e = vals.get(i + 1).copied().unwrap_or(data_len);
                        let len = e.checked_sub(s).ok_or_else(|| Error::corrupt(&ctx, i as u64 * 4, "index offsets go backwards"))?;
                        out.push((s, u32::try_from(len).unwrap_or(u32::MAX)));
                    }
                } else {
                    // End offsets (Evimetry pre-standard).
                    let mut prev = 0u64;
                    for (i, &e) in vals.iter().enumerate() {
                        let len = e.checked_sub(prev).ok_or_else(|| Error::corrupt(&ctx, i as u64 * 4, "index offsets go backwards"))?;
                        out.push((prev, len as u32));
                        prev = e;
                    }
                }
                out
            }
        };
        let bevy = Arc::new(Bevy { data, index });
        let mut map = self.bevies.lock().map_err(poison)?;
        if map.len() >= BEVY_CACHE {
            map.clear();
        }
        map.insert(n, bevy.clone());
        Ok(bevy)
    }

    /// The decoded chunk `i` (full chunk size, or shorter only for an unpadded final chunk).
    ///
    /// # Errors
    /// Missing segments, a bad index entry or an undecodable payload; the message names the
    /// stream, bevy, chunk and offset.
    pub fn chunk(&self, i: u64) -> Result<Arc<Vec<u8>>> {
        if let Some(c) = self.cache.lock().map_err(poison)?.0.get(&i) {
            return Ok(c.clone());
        }
        let cs = self.p.chunk_size as u64;
        let cpb = self.p.chunks_per_bevy as u64;
        let start = i * cs;
        if start >= self.p.size {
            return Err(Error::corrupt(&self.p.urn, start, "chunk beyond the end of the stream"));
        }
        let expected = (self.p.size - start).min(cs) as usize;
        let bevy = self.bevy(i / cpb)?;
        let pos = (i % cpb) as usize;
        let ctx = || format!("{}: bevy {} chunk {}", self.p.urn, i / cpb, i);
        let &(off, len) = bevy.index.get(pos).ok_or_else(|| {
            Error::corrupt(ctx(), start, format!("the bevy index has {} entries, chunk {pos} is missing", bevy.index.len()))
        })?;
        if len == 0 || len as u64 > cs + cs / 8 + 1024 {
            return Err(Error::corrupt(ctx(), start, format!("index entry gives an invalid payload length {len}")));
        }
        if off.checked_add(len as u64).is_none_or(|e| e > bevy.data.size()) {
            return Err(Error::corrupt(
                ctx(),
                start,
                format!("payload at bevy offset {off}+{len} lies outside the bevy segment ({} bytes)", bevy.data.size()),
            ));
        }
        let chunk = if let Some(d) = &self.p.decrypt {
            let mut payload = vec![0u8; len as usize];
            bevy.data.read_exact_at(off, &mut payload)?;
            d.decrypt(i, &mut payload);
            payload
        } else {
            // The payload is read into this thread's aligned scratch buffer (see crate::iobuf),
            // or a new one while that is in use (a stream read through a stream).
            PAYLOAD.with(|p| {
                let mut own = None;
                let mut busy = p.try_borrow_mut();
                let payload = match busy.as_deref_mut() {
                    Ok(b) => b,
                    Err(_) => own.insert(IoBuf::default()),
                };
                payload.set_len(len as usize);
                bevy.data.read_exact_at(off, payload)?;
                self.p.codec.decode(payload, cs as usize, expected).map_err(|e| match e {
                    Error::Corrupt { what, .. } => {
                        Error::corrupt(ctx(), start, format!("{what} (payload at bevy offset {off}, {len} bytes)"))
                    }
                    other => other,
                })
            })?
        };
        if chunk.len() < expected {
            return Err(Error::corrupt(ctx(), start, format!("chunk decodes to {} bytes, {expected} expected", chunk.len())));
        }
        let chunk = Arc::new(chunk);
        let mut c = self.cache.lock().map_err(poison)?;
        if c.1.len() >= CHUNK_CACHE {
            if let Some(old) = c.1.pop_front() {
                c.0.remove(&old);
            }
        }
        c.0.insert(i, chunk.clone());
        c.1.push_back(i);
        Ok(chunk)
    }

    /// Checks that the bevies held agree with the declared size: every bevy before the last has
    /// a full index, together they index exactly the declared chunks, and no bevy lies beyond.
    /// Reads only the indexes of the bevies that exist (never loops over a declared size).
    ///
    /// # Errors
    /// The disagreement, naming the declared and the held counts.
    pub fn check_layout(&self) -> Result<()> {
        let total = self.chunk_count();
        let cpb = self.p.chunks_per_bevy as u64;
        let mut held = 0u64;
        let mut b = 0u64;
        while self.segments.locate(&bevy_urn(&self.p.urn, b)).is_some() {
            let n = self.bevy(b)?.index.len() as u64;
            if n < cpb && self.segments.locate(&bevy_urn(&self.p.urn, b + 1)).is_some() {
                return Err(Error::corrupt(
                    &self.p.urn,
                    b.saturating_mul(cpb).saturating_mul(self.p.chunk_size as u64),
                    format!("bevy {b} indexes {n} chunks, {cpb} expected before the last bevy"),
                ));
            }
            held += n;
            b += 1;
        }
        if held < total {
            return Err(Error::NotFound(format!(
                "{}: declares aff4:size {} ({total} chunks) but the opened volumes hold {held} chunks in {b} bevies: bevy {b} is missing",
                self.p.urn, self.p.size
            )));
        }
        if held > total {
            return Err(Error::corrupt(
                &self.p.urn,
                0,
                format!(
                    "declares aff4:size {} ({total} chunks of {}) but its bevies index {held} chunks ({} bytes)",
                    self.p.size,
                    self.p.chunk_size,
                    held.saturating_mul(self.p.chunk_size as u64)
                ),
            ));
        }
        Ok(())
    }

    /// Raw bytes of a segment of this stream (`<bevy>.blockHash.md5`, …), any naming variant.
    ///
    /// # Errors
    /// Corrupt storage.
    pub fn block_hash_segment(&self, bevy: u64, algo: &str) -> Result<Option<Vec<u8>>> {
        let base = bevy_urn(&self.p.urn, bevy);
        for name in [format!("{base}.blockHash.{algo}"), format!("{base}/blockHash.{algo}"), format!("{base}.{algo}")] {
            if let Some(s) = self.segments.open(&name)? {
                return Ok(Some(s.read_all(MAX_INDEX_BYTES)?));
            }
        }
        Ok(None)
    }

    /// Raw bytes of every bevy index, concatenated (for `aff4:imageStreamIndexHash`).
    ///
    /// # Errors
    /// Missing index segments.
    pub fn index_segments(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for n in 0..self.bevy_count() {
            let base = bevy_urn(&self.p.urn, n);
            let s = self
                .segments
                .open(&format!("{base}.index"))?
                .or(self.segments.open(&format!("{base}/index"))?)
                .ok_or_else(|| Error::NotFound(format!("{base}.index")))?;
            out.extend(s.read_all(MAX_INDEX_BYTES)?);
        }
        Ok(out)
    }
}

fn poison<T>(_: T) -> Error {
    Error::Unsupported("internal lock poisoned".into())
}

impl Stream for ImageStreamReader {
    fn size(&self) -> u64 {
        self.p.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.p.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.p.size - offset) as usize;
        let cs = self.p.chunk_size as u64;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let chunk = self.chunk(pos / cs)?;
            let within = (pos % cs) as usize;
            let take = (chunk.len() - within.min(chunk.len())).min(n - done);
            if take == 0 {
                return Err(Error::corrupt(&self.p.urn, pos, "chunk shorter than expected"));
            }
            buf[done..done + take].copy_from_slice(&chunk[within..within + take]);
            done += take;
        }
        Ok(n)
    }
    fn describe(&self) -> String {
        self.p.urn.clone()
    }
}
