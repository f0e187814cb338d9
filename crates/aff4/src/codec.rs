//! Chunk codecs: every compression met in AFF4 images, decoded with output bounded by the chunk size.

use crate::error::{Error, Result};
use crate::vocab::compression as iri;
use std::io::Read;

/// A chunk compression method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Raw Snappy blocks.
    Snappy,
    /// Raw Snappy as old pmem wrote it: every chunk compressed, even full-length ones.
    SnappyAlways,
    /// LZ4 block (also frames and pyaff4's size-prefixed blocks when reading).
    Lz4,
    /// zlib (RFC 1950).
    Zlib,
    /// The RFC 1951 IRI: raw deflate when writing; raw or zlib-wrapped when reading (sniffed).
    Deflate,
    /// No compression.
    Stored,
    /// No compressionMethod recorded: stored unless the payload is shorter, then sniffed as zlib/deflate.
    Unspecified,
}

impl Codec {
    /// The codecs volumes are written with, in the order offered to users (the first is the
    /// default); the other variants exist only for reading what older tools wrote.
    pub const WRITABLE: [Codec; 5] = [Codec::Snappy, Codec::Lz4, Codec::Zlib, Codec::Deflate, Codec::Stored];

    /// Every codec this crate reads.
    pub const ALL: [Codec; 7] =
        [Codec::Snappy, Codec::SnappyAlways, Codec::Lz4, Codec::Zlib, Codec::Deflate, Codec::Stored, Codec::Unspecified];

    /// The codec an IRI names; `None` for an unknown IRI.
    pub fn from_iri(s: &str) -> Option<Codec> {
        Some(match s.trim() {
            iri::SNAPPY => Codec::Snappy,
            iri::SNAPPY_GOOGLE => Codec::SnappyAlways,
            iri::ZLIB => Codec::Zlib,
            iri::DEFLATE | iri::DEFLATE_HTTP => Codec::Deflate,
            iri::LZ4 => Codec::Lz4,
            iri::NULL | iri::STORED | iri::LEGACY_NULL => Codec::Stored,
            _ => return None,
        })
    }

    /// The IRI written for this codec.
    pub fn iri(self) -> &'static str {
        match self {
            Codec::Snappy | Codec::SnappyAlways => iri::SNAPPY,
            Codec::Lz4 => iri::LZ4,
            Codec::Zlib => iri::ZLIB,
            Codec::Deflate => iri::DEFLATE,
            Codec::Stored | Codec::Unspecified => iri::NULL,
        }
    }

    /// Short name (`snappy`, `lz4`, `zlib`, `deflate`, `stored`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Snappy | Codec::SnappyAlways => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zlib => "zlib",
            Codec::Deflate => "deflate",
            Codec::Stored => "stored",
            Codec::Unspecified => "unspecified",
        }
    }

    /// For a person choosing one: what it costs and what reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Codec::Snappy | Codec::SnappyAlways => "fast; read by every AFF4 tool",
            Codec::Lz4 => "fast; read by AFF4 Standard tools",
            Codec::Zlib => "smaller output, slower",
            Codec::Deflate => "zlib's compression without its header",
            Codec::Stored => "no compression (zero pages are still not stored)",
            Codec::Unspecified => "not recorded",
        }
    }

    /// Parses a user-facing name (a [`Codec::WRITABLE`] codec's [`Codec::name`], or `none`).
    pub fn from_name(s: &str) -> Option<Codec> {
        let s = s.to_ascii_lowercase();
        if s == "none" || s == "null" {
            return Some(Codec::Stored);
        }
        Codec::WRITABLE.into_iter().find(|c| c.name() == s)
    }

    /// Decodes one stored chunk payload into at most `chunk_size` bytes.
    ///
    /// `expected` is how many bytes the chunk should give (chunk_size, or less for a short
    /// final chunk). A payload of exactly `chunk_size` bytes is stored data (AFF4.md §5.3).
    ///
    /// # Errors
    /// Corrupt payload, or one that would decode to more than `chunk_size` bytes.
    pub fn decode(self, payload: &[u8], chunk_size: usize, expected: usize) -> Result<Vec<u8>> {
        if self == Codec::SnappyAlways {
            if let Ok(v) = snappy(payload, chunk_size) {
                return Ok(v);
            }
            if payload.len() == chunk_size {
                return Ok(payload.to_vec());
            }
        }
        if payload.len() == chunk_size || self == Codec::Stored {
            if payload.len() > chunk_size {
                return Err(bad(format!("stored chunk of {} bytes exceeds the chunk size {chunk_size}", payload.len())));
            }
            return Ok(payload.to_vec());
        }
        let res = match self {
            Codec::Snappy | Codec::SnappyAlways => snappy(payload, chunk_size),
            Codec::Lz4 => lz4(payload, chunk_size, expected),
            Codec::Zlib | Codec::Deflate | Codec::Unspecified => inflate(payload, chunk_size),
            Codec::Stored => unreachable_stored(),
        };
        match res {
            Ok(v) => Ok(v),
            // c-aff4 stores an incompressible short final chunk raw (AFF4.md P12).
            Err(_) if payload.len() == expected && expected < chunk_size => Ok(payload.to_vec()),
            Err(e) => Err(e),
        }
    }

    /// Compresses a chunk; `None` when the result would not be smaller than `limit` bytes.
    pub fn encode(self, chunk: &[u8], limit: usize) -> Option<Vec<u8>> {
        let out = match self {
            Codec::Snappy | Codec::SnappyAlways => snap::raw::Encoder::new().compress_vec(chunk).ok()?,
            Codec::Lz4 => lz4_flex::block::compress(chunk),
            Codec::Zlib => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, chunk).ok()?;
                e.finish().ok()?
            }
            Codec::Deflate => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, chunk).ok()?;
                e.finish().ok()?
            }
            Codec::Stored | Codec::Unspecified => return None,
        };
        (out.len() < limit).then_some(out)
    }
}

/// Compresses chunks with per-thread state reused between chunks (no allocation or zeroing of
/// a fresh output buffer per chunk).
pub struct ChunkEncoder {
    codec: Codec,
    snap: snap::raw::Encoder,
    out: Vec<u8>,
}

impl ChunkEncoder {
    /// An encoder for `codec`.
    pub fn new(codec: Codec) -> Self {
        ChunkEncoder { codec, snap: snap::raw::Encoder::new(), out: Vec::new() }
    }

    /// The compressed chunk, or `None` when it would not be smaller than `limit` bytes.
    pub fn encode(&mut self, chunk: &[u8]) -> Option<&[u8]> {
        self.encode_limit(chunk, chunk.len().saturating_sub(16))
    }

    /// As [`ChunkEncoder::encode`] with an explicit limit.
    pub fn encode_limit(&mut self, chunk: &[u8], limit: usize) -> Option<&[u8]> {
        let n = match self.codec {
            Codec::Snappy | Codec::SnappyAlways => {
                let need = snap::raw::max_compress_len(chunk.len());
                if self.out.len() < need {
                    self.out.resize(need, 0);
                }
                self.snap.compress(chunk, &mut self.out).ok()?
            }
            Codec::Lz4 => {
                let need = lz4_flex::block::get_maximum_output_size(chunk.len());
                if self.out.len() < need {
                    self.out.resize(need, 0);
                }
                lz4_flex::block::compress_into(chunk, &mut self.out).ok()?
            }
            Codec::Zlib | Codec::Deflate => {
                let v = self.codec.encode(chunk, limit)?;
                self.out.clear();
                self.out.extend_from_slice(&v);
                v.len()
            }
            Codec::Stored | Codec::Unspecified => return None,
        };
        (n < limit).then(|| &self.out[..n])
    }
}

fn unreachable_stored() -> Result<Vec<u8>> {
    Err(bad("internal: stored chunk reached a decoder".into()))
}

fn bad(what: String) -> Error {
    Error::corrupt("chunk", 0, what)
}

fn snappy(payload: &[u8], chunk_size: usize) -> Result<Vec<u8>> {
    let n = snap::raw::decompress_len(payload).map_err(|e| bad(format!("snappy: {e}")))?;
    if n > chunk_size {
        return Err(bad(format!("snappy chunk claims {n} bytes, more than the chunk size {chunk_size}")));
    }
    let mut out = vec![0u8; n];
    snap::raw::Decoder::new().decompress(payload, &mut out).map_err(|e| bad(format!("snappy: {e}")))?;
    Ok(out)
}

fn lz4(payload: &[u8], chunk_size: usize, expected: usize) -> Result<Vec<u8>> {
    if payload.starts_with(&[0x04, 0x22, 0x4D, 0x18]) {
        let mut out = Vec::with_capacity(chunk_size);
        lz4_flex::frame::FrameDecoder::new(payload)
            .take(chunk_size as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("lz4 frame: {e}")))?;
        if out.len() > chunk_size {
            return Err(bad("lz4 frame decodes to more than the chunk size".into()));
        }
        return Ok(out);
    }
    let mut out = vec![0u8; chunk_size];
    match lz4_flex::block::decompress_into(payload, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(e) => {
            // pyaff4 writes a 4-byte little-endian length before the block.
            if payload.len() > 4 {
                let pre = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
                if pre <= chunk_size && (pre == expected || pre == chunk_size) {
                    if let Ok(n) = lz4_flex::block::decompress_into(&payload[4..], &mut out) {
                        out.truncate(n);
                        return Ok(out);
                    }
                }
            }
            Err(bad(format!("lz4: {e}")))
        }
    }
}

fn inflate(payload: &[u8], chunk_size: usize) -> Result<Vec<u8>> {
    let zlib = payload.len() >= 2 && (payload[0] & 0x0F) == 8 && ((payload[0] as u16) << 8 | payload[1] as u16).is_multiple_of(31);
    let mut out = Vec::with_capacity(chunk_size);
    let limit = chunk_size as u64 + 1;
    let r = if zlib {
        flate2::read::ZlibDecoder::new(payload).take(limit).read_to_end(&mut out)
    } else {
        flate2::read::DeflateDecoder::new(payload).take(limit).read_to_end(&mut out)
    };
    r.map_err(|e| bad(format!("{}: {e}", if zlib { "zlib" } else { "deflate" })))?;
    if out.len() > chunk_size {
        return Err(bad(format!("chunk inflates to more than the chunk size {chunk_size}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip_all() {
        let mut chunk = vec![0u8; 32768];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (i / 100) as u8;
        }
        for c in Codec::WRITABLE.into_iter().filter(|c| *c != Codec::Stored) {
            let enc = c.encode(&chunk, 32768 - 16).unwrap();
            assert_eq!(c.decode(&enc, 32768, 32768).unwrap(), chunk, "{c:?}");
        }
        // pyaff4's prefixed lz4
        let mut pre = (32768u32).to_le_bytes().to_vec();
        pre.extend(lz4_flex::block::compress(&chunk));
        assert_eq!(Codec::Lz4.decode(&pre, 32768, 32768).unwrap(), chunk);
        // a bomb is refused
        let big = snap::raw::Encoder::new().compress_vec(&vec![0u8; 65536]).unwrap();
        assert!(Codec::Snappy.decode(&big, 32768, 32768).is_err());
        let z = Codec::Zlib.encode(&vec![0u8; 65536], 65536).unwrap();
        assert!(Codec::Zlib.decode(&z, 32768, 32768).is_err());
    }
}
