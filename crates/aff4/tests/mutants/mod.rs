//! Mutations of AFF4 volumes for the hostile-input campaigns (the library's, in
//! crates/aff4/tests/campaign.rs, and the CLI's, in crates/pmem/tests/campaign.rs): byte flips,
//! truncation, splices, extreme Turtle numbers, bevy index entries far away, extreme ZIP fields.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use aff4::zip::ZipArchive;
use std::sync::Arc;

/// A small deterministic generator (xorshift) for mutation campaigns.
pub struct Rng(pub u64);
impl Rng {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A value in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Where the interesting structures of a ZIP volume are: member data ranges by name, and the
/// central-directory records.
pub struct Layout {
    members: Vec<(String, usize, usize)>,
    cd_records: Vec<usize>,
}

pub fn layout(src: &[u8]) -> Layout {
    let z = ZipArchive::open(Arc::new(src.to_vec()), "src").unwrap();
    let members = z.entries().iter().map(|e| (e.name.clone(), z.data_start(e).unwrap() as usize, e.compressed_size as usize)).collect();
    let cd_records = (0..src.len().saturating_sub(4)).filter(|&i| src[i..i + 4] == *b"PK\x01\x02").collect();
    Layout { members, cd_records }
}

pub fn mutate(src: &[u8], lay: &Layout, rng: &mut Rng) -> Vec<u8> {
    let mut v = src.to_vec();
    let n = v.len();
    let member = |name: &str| lay.members.iter().filter(|m| m.0.ends_with(name)).cloned().collect::<Vec<_>>();
    match rng.below(10) {
        // Byte flips anywhere, or in the last 64 KiB (directory and metadata).
        0..=2 => {
            let tail = n.saturating_sub(65536);
            for _ in 0..1 + rng.below(4) {
                let p = if rng.next_u64().is_multiple_of(2) { rng.below(n) } else { tail + rng.below(n - tail) };
                v[p] ^= 1 << rng.below(8);
            }
        }
        3 => v.truncate(rng.below(n)),
        4 => {
            let (a, b) = (rng.below(n), rng.below(n));
            let k = rng.below(4096).min(n - a.max(b));
            let chunk = v[a..a + k].to_vec();
            v[b..b + k].copy_from_slice(&chunk);
        }
        // An extreme Turtle number of the same length (sizes, chunk sizes, lengths).
        5 | 6 => {
            let ttl = member("information.turtle");
            if let Some((_, s, len)) = ttl.last() {
                let text = &src[*s..s + len];
                let quoted: Vec<(usize, usize)> = (0..text.len())
                    .filter(|&i| text[i] == b'"' && text.get(i + 1).is_some_and(u8::is_ascii_digit))
                    .map(|i| (i + 1, text[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count()))
                    .collect();
                if !quoted.is_empty() {
                    let (at, k) = quoted[rng.below(quoted.len())];
                    let new: Vec<u8> = match rng.below(4) {
                        0 => vec![b'0'; k],
                        1 => [vec![b'0'; k - 1], vec![b'1']].concat(),
                        2 => vec![b'9'; k],
                        _ => (0..k).map(|_| b'0' + rng.below(10) as u8).collect(),
                    };
                    v[s + at..s + at + k].copy_from_slice(&new);
                }
            }
        }
        // A bevy index entry far away or of an extreme length.
        7 => {
            let idx = member(".index");
            if !idx.is_empty() {
                let (_, s, len) = idx[rng.below(idx.len())].clone();
                if len >= 12 {
                    let e = s + 12 * rng.below(len / 12);
                    match rng.below(3) {
                        0 => v[e..e + 8].copy_from_slice(&(rng.next_u64() | (1 << 40)).to_le_bytes()),
                        1 => v[e + 8..e + 12].copy_from_slice(&u32::MAX.to_le_bytes()),
                        _ => v[e + 8..e + 12].copy_from_slice(&(rng.below(1 << 20) as u32).to_le_bytes()),
                    }
                }
            }
        }
        // Extreme central-directory fields: sizes, offsets, name lengths.
        _ => {
            if !lay.cd_records.is_empty() {
                let r = lay.cd_records[rng.below(lay.cd_records.len())];
                let field = [20usize, 24, 42, 28][rng.below(4)];
                let w = if field == 28 { 2 } else { 4 };
                let val: u32 = [0, 1, u32::MAX, rng.next_u64() as u32][rng.below(4)];
                if r + field + w <= n {
                    v[r + field..r + field + w].copy_from_slice(&val.to_le_bytes()[..w]);
                }
            }
        }
    }
    v
}
