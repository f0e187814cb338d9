//! The class property behind `pmem verify`: on 2,300 mutants of the reference volumes and of
//! volumes written here, chunked and stored in place (byte flips, truncation, splices, extreme
//! ZIP fields, extreme Turtle numbers, bevy index entries pointing far away), verify never says
//! OK unless every image reads back as exactly the original's bytes, and nothing panics or
//! runs away.

#![allow(clippy::unwrap_used)]

mod common;
mod mutants;
use aff4::imager::{Ending, ImagerOptions};
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::volume::Volume;
use aff4::{vocab, Codec, Container, HashAlgo, OpenOptions};
use common::refimg;
use mutants::{layout, mutate, Rng};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A volume written here: an image with zero runs, text and noise; `linear` and `block` hashes;
/// stored in place (one uncompressed member, see `aff4::in_place`) when `in_place`.
fn written(codec: Codec, linear: bool, block: bool, in_place: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.aff4");
    let mut data = vec![0u8; 700_000];
    let mut x = 7u64 | codec as u64;
    for (i, b) in data.iter_mut().enumerate() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *b = match (i / 40_000) % 3 {
            0 => 0,
            1 => b"memory  "[i % 8],
            _ => (x >> 33) as u8,
        };
    }
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let opts = ImagerOptions {
        chunk_size: 4096,
        chunks_per_bevy: 64,
        codec,
        threads: 1,
        hashes: if linear { vec![HashAlgo::Sha256] } else { vec![] },
        block_hashes: if block { vec![HashAlgo::Sha256] } else { vec![] },
        zero_page: 4096,
        in_place: in_place.then(|| "dev%2Fpmem.raw".to_string()),
    };
    let mut w = vol.image(&opts, &[vocab::IMAGE, vocab::DISK_IMAGE], Some(700_000)).unwrap();
    w.write(0, data).unwrap();
    w.finish(700_000, Ending::Complete, vec![]).unwrap();
    vol.finish().unwrap();
    std::fs::read(&p).unwrap()
}

/// SHA-1 of each image's bytes as a reader gets them, by image URN.
fn image_hashes(c: &Container) -> BTreeMap<String, Option<String>> {
    c.images()
        .into_iter()
        .map(|i| {
            let h = aff4::verify::hash_stream(c, &i.urn, &[HashAlgo::Sha1], 1, &|_| {}).ok().map(|d| aff4::hash::hex(&d[0]));
            (i.urn, h)
        })
        .collect()
}

fn open(bytes: Vec<u8>) -> Option<Container> {
    let v = Volume::open_zip(Arc::new(bytes), "mutant".into()).ok()?;
    Container::from_volumes(vec![v], &OpenOptions::default()).ok()
}

#[test]
fn verify_never_passes_bytes_other_than_the_original() {
    let mut sources: Vec<(String, Vec<u8>, usize)> = vec![
        ("written snappy, linear".into(), written(Codec::Snappy, true, false, false), 350),
        ("written stored, block hashes only".into(), written(Codec::Stored, false, true, false), 350),
        ("written lz4, linear and block".into(), written(Codec::Lz4, true, true, false), 350),
        ("written deflate, block hashes only".into(), written(Codec::Deflate, false, true, false), 350),
        ("written in place, linear".into(), written(Codec::Stored, true, false, true), 300),
    ];
    for (name, n) in [("AFF4Std/Base-Linear.aff4", 300), ("AFF4Std/Base-Linear-ReadError.aff4", 150), ("AFF4-L/dream.aff4", 150)] {
        sources.push((name.into(), std::fs::read(refimg(name)).unwrap(), n));
    }
    let (mut total, mut passed, mut slowest) = (0, 0, Duration::ZERO);
    for (k, (name, src, count)) in sources.iter().enumerate() {
        let original = image_hashes(&open(src.clone()).unwrap());
        let lay = layout(src);
        let mut rng = Rng(0xA076_1D64_78BD_642F ^ ((k as u64 + 1) * 0x9E37_79B9));
        for i in 0..*count {
            let m = mutate(src, &lay, &mut rng);
            let t = Instant::now();
            let r = std::panic::catch_unwind(|| {
                let c = open(m.clone())?;
                let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 1 }, &|_| {});
                if report.verdict().is_some() {
                    return Some(false);
                }
                let got = image_hashes(&c);
                for (urn, h) in &got {
                    // The bytes are what must be the original's. (A mutated Image URN in the Turtle,
                    // which no hash covers, may relabel an image whose bytes are unchanged.)
                    let same =
                        original.get(urn).map_or_else(|| original.values().any(|o| o.is_some() && o == h), |o| o.is_some() && o == h);
                    assert!(same, "verify said OK but image {urn} reads as {h:?}, the original as {:?}: {report:#?}", original.get(urn));
                }
                assert!(!got.is_empty(), "verify said OK about a volume with no image");
                Some(true)
            });
            let el = t.elapsed();
            slowest = slowest.max(el);
            match r {
                Ok(ok) => passed += usize::from(ok == Some(true)),
                Err(_) => {
                    let p = std::env::temp_dir().join(format!("pmem-campaign-{k}-{i}.aff4"));
                    std::fs::write(&p, &m).unwrap();
                    panic!("{name} mutant {i} failed (see above); saved as {}", p.display());
                }
            }
            assert!(el < Duration::from_secs(20), "{name} mutant {i} took {el:?}");
            total += 1;
        }
    }
    eprintln!("{total} mutants, {passed} verified OK (each read back as the original), slowest {slowest:?}");
    assert!(total >= 2300);
    assert!(passed > 0, "some mutants (in bytes no reader uses) must still verify");
}
