//! Symbolic streams (AFF4.md §7): infinite virtual streams of a constant byte or a repeated
//! string tiled in 1 MiB blocks, used by maps for holes and unreadable regions.

use crate::error::Result;
use crate::stream::Stream;
use crate::vocab::{AFF4, AFF4_LEGACY, LEGACY_SYMBOLIC};

/// What a symbolic stream yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbolic {
    /// The same byte forever.
    Constant(u8),
    /// `UNKNOWN` tiled per MiB.
    Unknown,
    /// `UNREADABLEDATA` tiled per MiB.
    Unreadable,
}

const TILE: u64 = 1 << 20;

impl Symbolic {
    /// Recognises a symbolic IRI of any vocabulary.
    pub fn from_iri(iri: &str) -> Option<Symbolic> {
        if let Some(l) = iri.strip_prefix(AFF4) {
            return match l {
                "Zero" | "NoData" => Some(Symbolic::Constant(0)),
                "FFDevice" => Some(Symbolic::Constant(0xFF)),
                "UnknownData" => Some(Symbolic::Unknown),
                "UnreadableData" => Some(Symbolic::Unreadable),
                _ => l.strip_prefix("SymbolicStream").and_then(hex_byte).map(Symbolic::Constant),
            };
        }
        if let Some(l) = iri.strip_prefix(AFF4_LEGACY) {
            return match l {
                "Zero" => Some(Symbolic::Constant(0)),
                "FF" => Some(Symbolic::Constant(0xFF)),
                "UnknownData" => Some(Symbolic::Unknown),
                "UnreadableData" => Some(Symbolic::Unreadable),
                _ => None,
            };
        }
        iri.strip_prefix(LEGACY_SYMBOLIC).and_then(hex_byte).map(Symbolic::Constant)
    }

    /// The standard IRI for this stream.
    pub fn iri(self) -> String {
        match self {
            Symbolic::Constant(0) => format!("{AFF4}Zero"),
            Symbolic::Constant(b) => format!("{AFF4}SymbolicStream{b:02X}"),
            Symbolic::Unknown => format!("{AFF4}UnknownData"),
            Symbolic::Unreadable => format!("{AFF4}UnreadableData"),
        }
    }

    /// Fills `buf` with the bytes at stream offset `offset`.
    pub fn fill(self, offset: u64, buf: &mut [u8]) {
        let pat: &[u8] = match self {
            Symbolic::Constant(b) => {
                buf.fill(b);
                return;
            }
            Symbolic::Unknown => b"UNKNOWN",
            Symbolic::Unreadable => b"UNREADABLEDATA",
        };
        let n = pat.len() as u64;
        let mut pos = offset;
        let mut i = 0;
        while i < buf.len() {
            let in_tile = pos % TILE;
            let run = ((TILE - in_tile) as usize).min(buf.len() - i);
            let mut k = (in_tile % n) as usize;
            for b in &mut buf[i..i + run] {
                *b = pat[k];
                k += 1;
                if k == pat.len() {
                    k = 0;
                }
            }
            i += run;
            pos += run as u64;
        }
    }
}

fn hex_byte(s: &str) -> Option<u8> {
    if s.len() == 2 {
        u8::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

impl Stream for Symbolic {
    fn size(&self) -> u64 {
        u64::MAX
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = (buf.len() as u64).min(u64::MAX - offset) as usize;
        self.fill(offset, &mut buf[..n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        self.iri()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn tiling() {
        let s = Symbolic::from_iri("http://aff4.org/Schema#UnreadableData").unwrap();
        let mut b = [0u8; 20];
        s.fill(0, &mut b);
        assert_eq!(&b, b"UNREADABLEDATAUNREAD");
        let mut c = [0u8; 8];
        s.fill(TILE - 4, &mut c);
        // 1 MiB mod 14 = 4: the tile ends with "DATA"? position (TILE-4)%14 = 0 -> "UNRE", then restart.
        assert_eq!(&c, b"UNREUNRE");
        assert_eq!(Symbolic::from_iri("http://aff4.org/Schema#SymbolicStream61"), Some(Symbolic::Constant(0x61)));
        assert_eq!(Symbolic::from_iri("http://afflib.org/2012/SymbolicStream#ff"), Some(Symbolic::Constant(0xff)));
        assert_eq!(Symbolic::Constant(0xAB).iri(), "http://aff4.org/Schema#SymbolicStreamAB");
    }
}
