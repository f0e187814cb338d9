//! pyaff4 encrypted containers (AFF4.md §13), both halves: a random 32-byte volume key
//! encrypts the inner volume's 512-byte chunks with AES-128-XTS (tweak: the chunk number), and
//! key bags hold it wrapped for each recipient: a password (PBKDF2-HMAC-SHA256, then AES key
//! wrap) or an X.509 certificate's RSA key (RSA-OAEP with SHA-256, MGF1 with SHA-1).

use crate::error::{Error, Result};
use crate::hash::{hex, unhex};
use crate::image_stream::ChunkDecrypt;
use crate::rdf::{Graph, Node};
use crate::vocab::{self, AFF4, RDF_TYPE, XSD};
use aes::cipher::KeyInit;
use std::sync::Arc;
use x509_cert::der::{Decode, DecodePem, Encode};
use zeroize::Zeroizing;

/// Chunk size of an encrypted stream (pyaff4's, and what every reader of these containers expects).
pub const CHUNK: usize = 512;
/// Chunks per bevy of an encrypted stream.
pub const CHUNKS_PER_BEVY: usize = 2048;
/// PBKDF2 iterations of a password key bag (pyaff4's count).
const ITERATIONS: u32 = 147_256;
/// Iterations accepted when reading: enough for any real bag, bounded so a hostile one cannot stall us.
const MAX_ITERATIONS: u64 = 10_000_000;

fn p(local: &str) -> String {
    format!("{AFF4}{local}")
}

/// AES-128-XTS (IEEE 1619) over whole 16-byte blocks, the tweak being the chunk number
/// (little-endian).
struct Xts {
    data: aes::Aes128,
    tweak: aes::Aes128,
}

/// Blocks per 512-byte chunk.
const BLOCKS: usize = CHUNK / 16;
/// Chunks that go through AES in one call (4 KiB): with one call per chunk, entering the
/// cipher costs about as much as the cipher (AES-NI and VAES pipeline many blocks at once).
const GROUP: usize = 8;

impl Xts {
    fn new(key: &[u8; 32]) -> Xts {
        let half = |at: usize| -> [u8; 16] { std::array::from_fn(|i| key[at + i]) };
        Xts { data: aes::Aes128::new(&half(0).into()), tweak: aes::Aes128::new(&half(16).into()) }
    }

    /// XTS over `data` in place, or from `src` (as long) into `data`: consecutive chunks
    /// numbered from `n`, [`CHUNK`] bytes each but the last; whole blocks only (a tail of
    /// less than a block is left as it is).
    fn run(&self, n: u64, src: Option<&[u8]>, data: &mut [u8], encrypt: bool) {
        let (blocks, _) = aes::Block::slice_as_chunks_mut(data);
        let from = src.map(|s| aes::Block::slice_as_chunks(s).0);
        for (g, out) in blocks.chunks_mut(GROUP * BLOCKS).enumerate() {
            let at = g * GROUP * BLOCKS;
            let from = from.map(|f| f.get(at..).unwrap_or_default());
            self.group(n.wrapping_add((g * GROUP) as u64), from, out, encrypt);
        }
    }

    /// XTS over at most [`GROUP`] chunks' blocks, the first being chunk `n`: the tweaks are
    /// applied on the way in and out, AES runs once over all of them.
    fn group(&self, n: u64, src: Option<&[aes::Block]>, blocks: &mut [aes::Block], encrypt: bool) {
        use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt};
        let count = blocks.len().min(GROUP * BLOCKS).min(src.map_or(usize::MAX, <[aes::Block]>::len));
        let blocks = &mut blocks[..count];
        let chunks = count.div_ceil(BLOCKS);
        let mut starts = [aes::Block::default(); GROUP];
        for (i, t) in starts.iter_mut().enumerate().take(chunks) {
            *t = aes::Block::from(u128::from(n.wrapping_add(i as u64)).to_le_bytes());
        }
        self.tweak.encrypt_blocks(&mut starts[..chunks]);
        let mut tweaks = [0u128; GROUP * BLOCKS];
        let chunked = blocks.chunks_mut(BLOCKS).zip(tweaks.chunks_mut(BLOCKS)).zip(starts);
        for (c, ((bs, ts), start)) in chunked.enumerate() {
            let mut t = u128::from_le_bytes(start.0);
            for (i, (b, tw)) in bs.iter_mut().zip(ts.iter_mut()).enumerate() {
                *tw = t;
                let plain = src.and_then(|s| s.get(c * BLOCKS + i)).map_or(b.0, |s| s.0);
                *b = aes::Block::from((u128::from_le_bytes(plain) ^ t).to_le_bytes());
                // Multiply the tweak by x in GF(2^128) (the polynomial x^128 + x^7 + x^2 + x + 1).
                t = (t << 1) ^ ((t >> 127) * 0x87);
            }
        }
        if encrypt {
            self.data.encrypt_blocks(blocks);
        } else {
            self.data.decrypt_blocks(blocks);
        }
        for (b, tw) in blocks.iter_mut().zip(tweaks) {
            *b = aes::Block::from((u128::from_le_bytes(b.0) ^ tw).to_le_bytes());
        }
    }
}

impl ChunkDecrypt for Xts {
    fn decrypt(&self, n: u64, data: &mut [u8]) {
        // Chunks are 512 bytes (a longer buffer is decrypted chunk by chunk, numbered on).
        self.run(n, None, data, false);
    }
}

/// A volume encryption key: random per volume, never written in the clear, wiped when dropped.
pub struct VolumeKey(Zeroizing<[u8; 32]>);

impl VolumeKey {
    /// A new random key from the operating system.
    ///
    /// # Errors
    /// The system's random source fails.
    pub fn random() -> Result<VolumeKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut k[..]).map_err(|e| Error::Key(format!("no random volume key: {e}")))?;
        Ok(VolumeKey(k))
    }

    fn xts(&self) -> Xts {
        Xts::new(&self.0)
    }

    /// The decryptor of this volume's chunks.
    pub(crate) fn decryptor(&self) -> Arc<dyn ChunkDecrypt> {
        Arc::new(self.xts())
    }

    /// The cipher that encrypts this volume's chunks (its key schedule wiped when dropped).
    pub fn chunk_cipher(&self) -> ChunkCipher {
        ChunkCipher(self.xts())
    }
}

/// Encrypts a volume's 512-byte chunks, each under its chunk number (the XTS tweak).
pub struct ChunkCipher(Xts);

impl ChunkCipher {
    /// Encrypts whole chunk `n` in place.
    ///
    /// # Errors
    /// `chunk` is not [`CHUNK`] bytes.
    pub fn encrypt(&self, n: u64, chunk: &mut [u8]) -> Result<()> {
        if chunk.len() != CHUNK {
            return Err(Error::Internal("ChunkCipher::encrypt: not one chunk"));
        }
        self.0.run(n, None, chunk, true);
        Ok(())
    }

    /// Encrypts the whole chunks of `src` into `dst` (the same length), the first being chunk
    /// number `first`: one pass over the data instead of a copy and then the cipher.
    ///
    /// # Errors
    /// The lengths differ or are not a whole number of chunks.
    pub fn encrypt_into(&self, first: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        if src.len() != dst.len() || !src.len().is_multiple_of(CHUNK) {
            return Err(Error::Internal("ChunkCipher::encrypt_into: not whole chunks of one length"));
        }
        self.0.run(first, Some(src), dst, true);
        Ok(())
    }
}

/// Who can open an encrypted volume.
pub enum Recipient {
    /// Whoever knows this password.
    Password(Zeroizing<String>),
    /// The holder of this certificate's private key.
    Certificate(Certificate),
}

/// The parts of an X.509 certificate a key bag needs: the RSA public key and, to name the
/// recipient, the subject (RFC 4514) and serial number (decimal, as pyaff4 records them).
pub struct Certificate {
    /// The subject, e.g. `CN=analyst,O=Lab`.
    pub subject: String,
    /// The serial number in decimal.
    pub serial: String,
    key: rsa::PublicKey,
}

impl Certificate {
    /// Parses a PEM (or DER) certificate holding an RSA key; `name` is for errors.
    ///
    /// # Errors
    /// Not a certificate, or not an RSA key.
    pub fn parse(data: &[u8], name: &str) -> Result<Certificate> {
        let bad = |what: String| Error::Key(format!("{name}: {what}"));
        let cert = if data.starts_with(b"-----") {
            x509_cert::Certificate::from_pem(data).map_err(|e| bad(format!("not a PEM X.509 certificate: {e}")))?
        } else {
            x509_cert::Certificate::from_der(data).map_err(|e| bad(format!("not an X.509 certificate: {e}")))?
        };
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info().to_der().map_err(|e| bad(format!("public key: {e}")))?;
        let spki = rsa::pkcs8::SubjectPublicKeyInfoRef::from_der(&spki).map_err(|e| bad(format!("public key: {e}")))?;
        let key = rsa::PublicKey::try_from(spki).map_err(|e| bad(format!("not an RSA public key: {e}")))?;
        Ok(Certificate { subject: tbs.subject().to_string(), serial: decimal(tbs.serial_number().as_bytes()), key })
    }
}

/// A big-endian unsigned integer in decimal.
fn decimal(be: &[u8]) -> String {
    let mut n: Vec<u8> = be.iter().copied().skip_while(|&b| b == 0).collect();
    let mut digits = Vec::new();
    while !n.is_empty() {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
        n = n.into_iter().skip_while(|&b| b == 0).collect();
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Writes one key bag per recipient for the stream `stream` (typed, linked with `aff4:keyBag`).
///
/// # Errors
/// No recipient, the random source, or RSA encryption fails.
pub fn write_key_bags(g: &mut Graph, stream: &str, key: &VolumeKey, recipients: &[Recipient]) -> Result<()> {
    if recipients.is_empty() {
        return Err(Error::Key("an encrypted volume needs at least one recipient (a certificate or a password)".into()));
    }
    let hexbin = |b: &[u8]| Node::typed(hex(b), format!("{XSD}hexBinary"));
    for r in recipients {
        let bag = crate::urn::new_urn();
        g.add(stream, &p("keyBag"), Node::iri(&bag));
        g.add(&bag, &p("keySizeInBytes"), Node::int(32));
        match r {
            Recipient::Password(pw) => {
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt).map_err(|e| Error::Key(format!("no random salt: {e}")))?;
                let mut kek = Zeroizing::new([0u8; 32]);
                pbkdf2::pbkdf2_hmac::<sha2_10::Sha256>(pw.as_bytes(), &salt, ITERATIONS, &mut kek[..]);
                let mut buf = [0u8; 40];
                let wrapped = aes_kw::KwAes256::new(&(*kek).into())
                    .wrap_key(&key.0[..], &mut buf)
                    .map_err(|e| Error::Key(format!("wrapping the volume key: {e}")))?;
                g.add(&bag, RDF_TYPE, Node::iri(vocab::PASSWORD_KEY_BAG));
                g.add(&bag, &p("iterations"), Node::int(u64::from(ITERATIONS)));
                g.add(&bag, &p("salt"), hexbin(&salt));
                g.add(&bag, &p("wrappedKey"), hexbin(wrapped));
            }
            Recipient::Certificate(c) => {
                let padding = rsa::Oaep::<sha2::Sha256, sha1::Sha1>::new_with_mgf_hash();
                let wrapped = c
                    .key
                    .encrypt(&mut getrandom::SysRng, padding, &key.0[..])
                    .map_err(|e| Error::Key(format!("encrypting the volume key to {}: {e}", c.subject)))?;
                g.add(&bag, RDF_TYPE, Node::iri(p("PublicKeyEncryptedKeyBag")));
                g.add(&bag, &p("x509SubjectName"), Node::string(&c.subject));
                g.add(&bag, &p("serialNumber"), Node::typed(&c.serial, format!("{XSD}integer")));
                g.add(&bag, &p("wrappedKey"), hexbin(&wrapped));
            }
        }
    }
    Ok(())
}

/// What may open an encrypted stream: a password and RSA private keys (PEM, PKCS#8 or PKCS#1).
#[derive(Default, Clone)]
pub struct Keys {
    /// The password for password key bags.
    pub password: Option<String>,
    /// Private keys for certificate key bags, with the names they came from.
    pub private_keys: Vec<(String, Arc<rsa::PrivateKey>)>,
}

impl Keys {
    /// Parses an RSA private key (PEM: `BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`); `name` is for errors.
    ///
    /// # Errors
    /// Not an RSA private key.
    pub fn private_key(pem: &str, name: &str) -> Result<Arc<rsa::PrivateKey>> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        rsa::PrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(pem))
            .map(Arc::new)
            .map_err(|e| Error::Key(format!("{name}: not an RSA private key in PEM (PKCS#8 or PKCS#1): {e}")))
    }

    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        self.password.is_none() && self.private_keys.is_empty()
    }
}

/// Copies the key bags of encrypted stream `from_stream` in `from` to `to_stream` in `to`, as
/// they are: a volume rebuilt under the same key opens for the same recipients.
pub fn copy_key_bags(from: &Graph, from_stream: &str, to: &mut Graph, to_stream: &str) {
    for bag in from.values(from_stream, &p("keyBag")).filter_map(|n| n.as_iri()) {
        to.add(to_stream, &p("keyBag"), Node::iri(bag));
        for (pred, o) in from.properties(bag) {
            to.add(bag, pred, o.clone());
        }
    }
}

/// The recipients of encrypted stream `s`, for messages: "password" or "SUBJECT (serial N)".
pub fn recipients(g: &Graph, s: &str) -> Vec<String> {
    g.values(s, &p("keyBag"))
        .filter_map(Node::as_iri)
        .map(|bag| {
            if g.has_type(bag, vocab::PASSWORD_KEY_BAG) {
                "a password".to_string()
            } else {
                let f = |n: &str| g.aff4(bag, n).map(|v| v.value().to_string()).unwrap_or_else(|| "?".into());
                format!("certificate {} (serial {})", f("x509SubjectName"), f("serialNumber"))
            }
        })
        .collect()
}

/// Opens the volume key of encrypted stream `s` with whichever of `keys` fits one of its key bags.
///
/// # Errors
/// A malformed key bag, or no key fits (the message names the recipients).
pub fn unlock(g: &Graph, s: &str, keys: &Keys) -> Result<Arc<dyn ChunkDecrypt>> {
    Ok(Arc::new(unlock_key(g, s, keys)?.xts()))
}

/// The volume key of encrypted stream `s`, opened with whichever of `keys` fits one of its key
/// bags (to decrypt it, or to encrypt a rebuilt volume again under the same key).
///
/// # Errors
/// As [`unlock`].
pub fn unlock_key(g: &Graph, s: &str, keys: &Keys) -> Result<VolumeKey> {
    let bags: Vec<String> = g.values(s, &p("keyBag")).filter_map(|n| n.as_iri().map(String::from)).collect();
    let mut tried = Vec::new();
    for bag in &bags {
        let field = |name: &str| g.aff4(bag, name).map(|n| n.value().to_string());
        let bad = |what: &str| Error::corrupt(bag, 0, format!("key bag: {what}"));
        let wrapped = field("wrappedKey").and_then(|h| unhex(&h)).ok_or_else(|| bad("no wrappedKey"))?;
        let vek: Option<Zeroizing<Vec<u8>>> = if g.has_type(bag, vocab::PASSWORD_KEY_BAG) {
            let Some(pw) = &keys.password else { continue };
            let salt = field("salt").and_then(|h| unhex(&h)).ok_or_else(|| bad("no salt"))?;
            let iterations = g.aff4(bag, "iterations").and_then(Node::as_u64).ok_or_else(|| bad("no iterations"))?;
            if iterations == 0 || iterations > MAX_ITERATIONS {
                return Err(bad("implausible iteration count"));
            }
            let mut kek = Zeroizing::new([0u8; 32]);
            pbkdf2::pbkdf2_hmac::<sha2_10::Sha256>(pw.as_bytes(), &salt, iterations as u32, &mut kek[..]);
            let kw = aes_kw::KwAes256::new(&(*kek).into());
            tried.push("the password".to_string());
            let mut buf = Zeroizing::new(vec![0u8; wrapped.len().saturating_sub(8)]);
            kw.unwrap_key(&wrapped, &mut buf).ok().map(|k| Zeroizing::new(k.to_vec()))
        } else if g.has_type(bag, &p("PublicKeyEncryptedKeyBag")) || g.has_type(bag, &p("CertEncryptedKeyBag")) {
            let mut found = None;
            for (name, k) in &keys.private_keys {
                tried.push(name.clone());
                let padding = rsa::Oaep::<sha2::Sha256, sha1::Sha1>::new_with_mgf_hash();
                if let Ok(v) = k.decrypt(padding, &wrapped) {
                    found = Some(Zeroizing::new(v));
                    break;
                }
            }
            found
        } else {
            continue;
        };
        if let Some(vek) = vek {
            let vek: [u8; 32] = vek.as_slice().try_into().map_err(|_| bad("volume key is not 32 bytes"))?;
            return Ok(VolumeKey(Zeroizing::new(vek)));
        }
    }
    let to = recipients(g, s);
    let to = if to.is_empty() { "no recipient at all (no key bag)".to_string() } else { to.join(", ") };
    let what = if keys.is_empty() {
        "it opens with its password or the private key of a recipient's certificate".to_string()
    } else {
        format!("no key given fits (tried {})", tried.join(", "))
    };
    Err(Error::Key(format!("{s} is encrypted to {to}: {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xts_mode::{get_tweak_default, Xts128};

    #[test]
    fn xts_matches_the_reference_implementation_both_ways() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let half = |at: usize| -> [u8; 16] { std::array::from_fn(|i| key[at + i]) };
        let reference = Xts128::new(aes::Aes128::new(&half(0).into()), aes::Aes128::new(&half(16).into()));
        let ours = Xts::new(&key);
        let cipher = ChunkCipher(Xts::new(&key));
        // Buffers of one chunk up to several groups of them, and a last chunk shorter than the
        // others (a stream's end, on reading).
        for n in [0u64, 1, 2047, 2048, 1 << 40] {
            for len in [CHUNK, 7 * CHUNK, 8 * CHUNK, 9 * CHUNK, 17 * CHUNK + 48] {
                let plain: Vec<u8> = (0..len).map(|i| (i as u64 * 31 + n) as u8).collect();
                let mut want = plain.clone();
                for (i, c) in want.chunks_mut(CHUNK).enumerate() {
                    reference.encrypt_sector(c, get_tweak_default(u128::from(n) + i as u128));
                }
                let mut b = plain.clone();
                ours.run(n, None, &mut b, true);
                assert_eq!(want, b, "chunk {n}, {len} bytes");
                if len.is_multiple_of(CHUNK) {
                    let mut c = vec![0u8; len];
                    cipher.encrypt_into(n, &plain, &mut c).expect("whole chunks");
                    assert_eq!(want, c, "chunk {n}, {len} bytes, encrypted on the copy");
                }
                ours.decrypt(n, &mut b);
                assert_eq!(b, plain, "chunk {n}, {len} bytes");
            }
        }
    }

    #[test]
    fn serial_numbers_print_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0xff]), "255");
        assert_eq!(decimal(&[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]), "18446744073709551616");
    }
}
