//! Single-core speed of each linear hash over 128 MiB of non-trivial bytes, through the same
//! hashers the imager uses. `bench/run.sh vm` runs it inside the QEMU guest, whose TCG CPU has
//! no SHA-NI, to show what bounds an acquisition there.

use aff4::hash::HashAlgo;
use std::time::Instant;

fn main() {
    let len = 128usize << 20;
    let data: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for algo in [HashAlgo::Sha256, HashAlgo::Md5, HashAlgo::Sha1, HashAlgo::Sha512, HashAlgo::Blake2b] {
        let t = Instant::now();
        let mut h = algo.hasher();
        for block in data.chunks(1 << 20) {
            h.update(block);
        }
        let digest = h.finish();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{:8} {:7.1} MB/s  ({} of 128 MiB: {})",
            algo.name(),
            len as f64 / secs / 1e6,
            algo.name(),
            &aff4::hash::hex(&digest)[..16]
        );
    }
}
