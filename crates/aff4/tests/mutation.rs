//! Thousands of damaged copies of every reference image (bytes flipped, truncated, spliced,
//! zeroed — half of them in the directory and metadata at the end of the file) must each open,
//! list, read and verify to a result or an error: no panic, no hang.

#![allow(clippy::unwrap_used)]

mod common;
mod mutants;
use aff4::volume::Volume;
use aff4::{Container, OpenOptions};
use common::refimg;
use mutants::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMAGES: &[&str] = &[
    "AFF4Std/Base-Linear.aff4",
    "AFF4Std/Base-Linear-AllHashes.aff4",
    "AFF4Std/Base-Linear-ReadError.aff4",
    "AFF4Std/Base-Allocated.aff4",
    "AFF4Std/Striped/Base-Linear_1.aff4",
    "AFF4PreStd/Base-Linear.af4",
    "AFF4PreStd/Base-Linear-ReadError.af4",
    "AFF4-L/dream.aff4",
    "extra-aff4-forensic/encrypted-linear-password.aff4",
];

fn mutate(src: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = src.to_vec();
    let tail = v.len().saturating_sub(65536);
    let pos = |rng: &mut Rng, len: usize| if rng.next_u64().is_multiple_of(2) { rng.below(len) } else { tail + rng.below(len - tail) };
    match rng.below(5) {
        0 | 1 => {
            for _ in 0..1 + rng.below(4) {
                let p = pos(rng, v.len());
                v[p] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let p = pos(rng, v.len());
            v.truncate(p);
        }
        3 => {
            let a = pos(rng, v.len());
            let b = pos(rng, v.len());
            let n = rng.below(256).min(v.len() - a.max(b));
            let chunk = v[a..a + n].to_vec();
            v[b..b + n].copy_from_slice(&chunk);
        }
        _ => {
            let a = pos(rng, v.len());
            let n = rng.below(64).min(v.len() - a);
            v[a..a + n].fill(if rng.next_u64().is_multiple_of(2) { 0 } else { 0xff });
        }
    }
    v
}

/// Everything a reader does, with reads bounded (maps may claim exabytes).
fn exercise(bytes: Vec<u8>, full_verify: bool) {
    let Ok(v) = Volume::open_zip(Arc::new(bytes), "mutant".into()) else { return };
    let Ok(c) = Container::from_volumes(vec![v], &OpenOptions { password: Some("password".into()), ..Default::default() }) else { return };
    let _ = c.images();
    let _ = c.default_stream();
    let mut buf = vec![0u8; 65536];
    for s in c.streams() {
        if let Ok(st) = c.open_stream(&s.urn) {
            let size = st.size();
            for off in [0, size / 3, size / 2, size.saturating_sub(1000)] {
                let _ = st.read_at(off, &mut buf);
            }
        }
    }
    if full_verify {
        let _ = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 1 }, &|_| {});
    }
}

#[test]
fn mutants_never_panic_or_hang() {
    let per_image: usize = std::env::var("PMEM_MUTANTS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let mut total = 0;
    let mut slowest = Duration::ZERO;
    for (k, name) in IMAGES.iter().enumerate() {
        let src = std::fs::read(refimg(name)).unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (k as u64 + 1));
        for i in 0..per_image {
            let m = mutate(&src, &mut rng);
            let small = src.len() < 100_000;
            let t = Instant::now();
            let r = std::panic::catch_unwind(|| exercise(m.clone(), small));
            let el = t.elapsed();
            slowest = slowest.max(el);
            if r.is_err() {
                let p = std::env::temp_dir().join(format!("pmem-mutant-{k}-{i}.aff4"));
                std::fs::write(&p, &m).unwrap();
                panic!("{name} mutant {i} panicked; saved as {}", p.display());
            }
            assert!(el < Duration::from_secs(20), "{name} mutant {i} took {el:?}");
            total += 1;
        }
    }
    eprintln!("{total} mutants exercised, slowest {slowest:?}");
}
