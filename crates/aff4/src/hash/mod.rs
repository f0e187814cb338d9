//! Hash algorithms named by AFF4 hash datatypes, behind one incremental interface.

use digest::Digest;

mod lanes;

pub use lanes::sha256_each;

/// A hash algorithm AFF4 records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgo {
    /// MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// BLAKE2b-512.
    Blake2b,
}

impl HashAlgo {
    /// All algorithms, in the Block-Map hash order.
    pub const ALL: [HashAlgo; 5] = [HashAlgo::Md5, HashAlgo::Sha1, HashAlgo::Sha256, HashAlgo::Sha512, HashAlgo::Blake2b];

    /// From a name (`md5`, `sha1`, … case-insensitive), as in datatypes and segment suffixes.
    pub fn from_name(s: &str) -> Option<HashAlgo> {
        Some(match s.to_ascii_lowercase().as_str() {
            "md5" => HashAlgo::Md5,
            "sha1" | "sha-1" => HashAlgo::Sha1,
            "sha256" | "sha-256" => HashAlgo::Sha256,
            "sha512" | "sha-512" => HashAlgo::Sha512,
            "blake2b" | "blake2b512" => HashAlgo::Blake2b,
            _ => return None,
        })
    }

    /// From a datatype IRI such as `http://aff4.org/Schema#SHA1` (either AFF4 namespace).
    pub fn from_datatype(iri: &str) -> Option<HashAlgo> {
        let local = iri.rsplit('#').next()?;
        HashAlgo::from_name(local)
    }

    /// Lower-case name, as used in segment names (`md5`, `blake2b`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Blake2b => "blake2b",
        }
    }

    /// The datatype IRI written for this algorithm.
    pub fn datatype(self) -> String {
        let local = match self {
            HashAlgo::Md5 => "MD5",
            HashAlgo::Sha1 => "SHA1",
            HashAlgo::Sha256 => "SHA256",
            HashAlgo::Sha512 => "SHA512",
            HashAlgo::Blake2b => "Blake2b",
        };
        format!("{}{local}", crate::vocab::AFF4)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 | HashAlgo::Blake2b => 64,
        }
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgo::Blake2b => Hasher::Blake2b(blake2::Blake2b512::new()),
        }
    }

    /// One-shot digest.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }

    /// One-shot digests of several messages, in order: SHA-256 hashes them together where the
    /// CPU allows (see [`sha256_each`]), the others one by one.
    pub fn digest_each(self, msgs: &[&[u8]]) -> Vec<Vec<u8>> {
        match self {
            HashAlgo::Sha256 => sha256_each(msgs).iter().map(|d| d.to_vec()).collect(),
            _ => msgs.iter().map(|m| self.digest(m)).collect(),
        }
    }
}

/// An incremental hasher of any [`HashAlgo`].
#[derive(Clone)]
pub enum Hasher {
    /// MD5.
    Md5(md5::Md5),
    /// SHA-1.
    Sha1(sha1::Sha1),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
    /// BLAKE2b-512.
    Blake2b(blake2::Blake2b512),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Blake2b(h) => h.update(data),
        }
    }
    /// The raw digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Blake2b(h) => h.finalize().to_vec(),
        }
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Parses hex (either case); `None` if malformed.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_vectors() {
        assert_eq!(hex(&HashAlgo::Md5.digest(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(&HashAlgo::Sha1.digest(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(HashAlgo::from_datatype("http://aff4.org/Schema#Blake2b"), Some(HashAlgo::Blake2b));
        assert_eq!(unhex("00FFab"), Some(vec![0, 255, 171]));
    }
}
