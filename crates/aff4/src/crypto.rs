//! pyaff4 encrypted containers (AFF4.md §13): the password unwraps the volume key, and chunks
//! are AES-128-XTS with the global chunk number as tweak.

use crate::error::{Error, Result};
use crate::hash::unhex;
use crate::image_stream::ChunkDecrypt;
use crate::rdf::{Graph, Node};
use crate::vocab;
use aes::cipher::KeyInit;
use std::sync::Arc;
use xts_mode::{get_tweak_default, Xts128};

struct XtsKey(Xts128<aes::Aes128>);

impl ChunkDecrypt for XtsKey {
    fn decrypt(&self, n: u64, data: &mut [u8]) {
        self.0.decrypt_sector(data, get_tweak_default(n as u128));
    }
}

/// Derives the volume key of encrypted stream `s` from `password` through its password key bag.
///
/// # Errors
/// No password key bag, malformed key bag, or a wrong password.
pub fn unlock(g: &Graph, s: &str, password: &str) -> Result<Arc<dyn ChunkDecrypt>> {
    let bags: Vec<String> = g.values(s, &format!("{}keyBag", vocab::AFF4)).filter_map(|n| n.as_iri().map(String::from)).collect();
    for bag in bags {
        if !g.has_type(&bag, vocab::PASSWORD_KEY_BAG) {
            continue;
        }
        let field = |name: &str| g.aff4(&bag, name).map(|n| n.value().to_string());
        let bad = |what: &str| Error::corrupt(&bag, 0, format!("password key bag: {what}"));
        let salt = field("salt").and_then(|h| unhex(&h)).ok_or_else(|| bad("no salt"))?;
        let wrapped = field("wrappedKey").and_then(|h| unhex(&h)).ok_or_else(|| bad("no wrappedKey"))?;
        let iterations = g.aff4(&bag, "iterations").and_then(Node::as_u64).ok_or_else(|| bad("no iterations"))?;
        if iterations == 0 || iterations > 100_000_000 {
            return Err(bad("implausible iteration count"));
        }
        let mut kek = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2_10::Sha256>(password.as_bytes(), &salt, iterations as u32, &mut kek);
        let kw = aes_kw::KekAes256::new(&kek.into());
        let vek = kw.unwrap_vec(&wrapped).map_err(|_| Error::Key(format!("{s}: wrong password (the key bag's integrity check failed)")))?;
        if vek.len() != 32 {
            return Err(bad("volume key is not 32 bytes"));
        }
        let c1 = aes::Aes128::new_from_slice(&vek[..16]).map_err(|_| bad("key"))?;
        let c2 = aes::Aes128::new_from_slice(&vek[16..]).map_err(|_| bad("key"))?;
        return Ok(Arc::new(XtsKey(Xts128::new(c1, c2))));
    }
    Err(Error::Key(format!("{s}: no password key bag (only certificate key bags, which this build cannot open)")))
}
