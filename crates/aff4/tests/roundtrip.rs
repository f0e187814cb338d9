//! Property tests: whatever is written through the imaging pipeline reads back identically,
//! for random sizes, codecs, chunk sizes, zero runs, write splits and appends.

#![allow(clippy::unwrap_used)]

use aff4::imager::{Ending, ImagerOptions};
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::{vocab, Codec, Container, HashAlgo};
use proptest::prelude::*;

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Runs of zeros, text and noise.
    prop::collection::vec((0u8..3, 1usize..20_000, any::<u8>()), 0..12).prop_map(|runs| {
        let mut v = Vec::new();
        for (kind, len, seed) in runs {
            let mut x = seed as u64 | 1;
            for i in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.push(match kind {
                    0 => 0,
                    1 => b"abcdefgh"[i % 8],
                    _ => (x >> 33) as u8,
                });
            }
        }
        v
    })
}

fn codec_strategy() -> impl Strategy<Value = Codec> {
    proptest::sample::select(Codec::WRITABLE.to_vec())
}

fn write_image(vol: &mut VolumeWriter, data: &[u8], codec: Codec, chunk: u32, cpb: u32, split: usize, page: usize) -> String {
    let opts = ImagerOptions {
        chunk_size: chunk,
        chunks_per_bevy: cpb,
        codec,
        threads: 2,
        hashes: vec![HashAlgo::Sha1],
        block_hashes: vec![HashAlgo::Md5],
        zero_page: page,
        in_place: None,
    };
    let mut w = vol.image(&opts, &[vocab::IMAGE, vocab::DISK_IMAGE], Some(data.len() as u64)).unwrap();
    let mut off = 0;
    for piece in data.chunks(split.max(1)) {
        w.write(off as u64, piece.to_vec()).unwrap();
        off += piece.len();
    }
    w.finish(data.len() as u64, Ending::Complete, vec![]).unwrap().urn
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn write_then_read(data in data_strategy(), codec in codec_strategy(), chunk in prop_oneof![Just(512u32), Just(4096u32), Just(32768u32)],
                       cpb in 1u32..6, split in 1usize..70_000, page in prop_oneof![Just(0usize), Just(512usize), Just(4096usize)],
                       extra in data_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.aff4");
        let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
        let a = write_image(&mut vol, &data, codec, chunk, cpb, split, page);
        vol.finish().unwrap();
        // Append a second image.
        let mut vol = VolumeWriter::create(&p, Mode::Append).unwrap();
        let b = write_image(&mut vol, &extra, codec, chunk, cpb, split, page);
        vol.finish().unwrap();

        let c = Container::open(&[&p]).unwrap();
        for (img, want) in [(&a, &data), (&b, &extra)] {
            let s = c.open_stream(img).unwrap();
            prop_assert_eq!(s.size(), want.len() as u64);
            let got = s.read_all(1 << 30).unwrap();
            prop_assert!(&got == want);
        }
        let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 2 }, &|_| {});
        prop_assert!(report.verdict().is_none(), "{:?}", report);
    }
}

/// An image whose hashing stopped part-way (an interrupted acquisition): the digest covers the
/// first bytes only, is recorded as aff4:prefixHash with its length (never as aff4:hash),
/// verifies, and a changed byte inside that part fails verification.
#[test]
fn a_hash_stopped_part_way_is_a_verifiable_prefix_hash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v");
    std::fs::create_dir(&p).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let opts =
        ImagerOptions { codec: Codec::Stored, threads: 2, hashes: vec![HashAlgo::Sha256, HashAlgo::Md5], ..ImagerOptions::default() };
    let mut w = vol.image(&opts, &[vocab::IMAGE], None).unwrap();
    w.write(0, data[..100_000].to_vec()).unwrap();
    // Interrupted: the rest (a gigabyte) is recorded as unknown and not hashed.
    let f = w.finish(100_000 + (1 << 30), Ending::Interrupted, vec![]).unwrap();
    let (img, r) = (f.urn, f.result);
    assert_eq!(f.completion.to_string(), "Interrupted: incomplete: stopped at byte 100000");
    assert_eq!(r.hashed, 100_000);
    assert_eq!(r.hashes[0].1, HashAlgo::Sha256.digest(&data[..100_000]));
    vol.finish().unwrap();

    let c = Container::open(&[&p]).unwrap();
    assert!(c.graph().values(&img, vocab::HASH).next().is_none(), "a partial hash must not be recorded as aff4:hash");
    let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 2 }, &|_| {});
    let checks = &report.checks;
    let prefix: Vec<_> = checks.iter().filter(|k| k.what.starts_with("aff4:prefixHash")).collect();
    assert_eq!(prefix.len(), 2, "{checks:?}");
    assert!(aff4::verify::all_ok(checks), "{checks:?}");
    // The hashes pass, but the image is not all there: the verdict says so, from the first unread byte.
    assert_eq!(report.verdict(), Some(aff4::evidence::Cause::Incomplete), "{report:#?}");
    assert!(report.findings.iter().any(|f| f.subject == img && f.range.is_some_and(|(a, _)| a == 100_000)), "{:#?}", report.findings);
    assert!(c.declared_hashes(&img).iter().any(|(k, _)| k == "SHA256[..100000]"), "{:?}", c.declared_hashes(&img));

    // Change one stored byte inside the hashed part (stored codec: the data is in the bevy as is).
    let bevy = walk(&p).into_iter().find(|f| f.file_name().is_some_and(|n| n == "00000000")).unwrap();
    let mut b = std::fs::read(&bevy).unwrap();
    b[5000] ^= 1;
    std::fs::write(&bevy, b).unwrap();
    let c = Container::open(&[&p]).unwrap();
    let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 2 }, &|_| {});
    assert_eq!(report.verdict(), Some(aff4::evidence::Cause::Altered));
    let checks = report.checks;
    assert!(
        checks.iter().any(|k| k.what.starts_with("aff4:prefixHash SHA256") && matches!(k.status, aff4::verify::Status::Fail { .. })),
        "{checks:?}"
    );
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
