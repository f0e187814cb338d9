//! Images stored in place (`ImagerOptions::in_place`): one uncompressed member that is the
//! image byte for byte, at a page-aligned offset of a ZIP volume or as a plain, sparse file of
//! a directory volume, under a Map that says what is data, zeros and unreadable; verified by
//! its linear hash like any image, and cut back to what reached the disk when a write fails.

#![allow(clippy::unwrap_used)]

use aff4::evidence::Cause;
use aff4::hash::HashAlgo;
use aff4::imager::{Ending, ImagerOptions};
use aff4::map::RegionKind;
use aff4::symbolic::Symbolic;
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::zip::{ZipArchive, METHOD_STORED};
use aff4::{vocab, Container};
use std::sync::Arc;

const NAME: &str = "proc%2Fkcore.raw";

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8 ^ seed).collect()
}

/// Writes: 1 MiB data, a 2 MiB hole (gap), 256 KiB unreadable, 1 MiB with every other page
/// zero, 8 MiB zeros, 64 KiB data; total 12.3 MiB. Returns the volume's image bytes as
/// `pmem cat` would give them.
fn write(path: &std::path::Path) -> (Vec<u8>, String, String) {
    let mut vol = VolumeWriter::create(path, Mode::CreateNew).unwrap();
    let opts = ImagerOptions { in_place: Some(NAME.into()), hashes: vec![HashAlgo::Sha256], ..ImagerOptions::default() };
    let mut w = vol.image(&opts, &[vocab::IMAGE, vocab::MEMORY_IMAGE], Some(0)).unwrap();
    let mut want = Vec::new();
    let a = data(1 << 20, 1);
    w.write(0, a.clone()).unwrap();
    want.extend_from_slice(&a);
    want.resize(3 << 20, 0);
    let mut unread = vec![0u8; 256 << 10];
    Symbolic::Unreadable.fill(3 << 20, &mut unread);
    w.fill(3 << 20, 256 << 10, Symbolic::Unreadable).unwrap();
    want.extend_from_slice(&unread);
    let mut b = data(1 << 20, 2);
    for (i, p) in b.chunks_mut(4096).enumerate() {
        if i % 2 == 1 {
            p.fill(0);
        }
    }
    let at = want.len() as u64;
    w.write(at, b.clone()).unwrap();
    want.extend_from_slice(&b);
    let at = want.len() as u64;
    w.write(at, vec![0u8; 8 << 20]).unwrap();
    want.resize(want.len() + (8 << 20), 0);
    let c = data(64 << 10, 3);
    let at = want.len() as u64;
    w.write(at, c.clone()).unwrap();
    want.extend_from_slice(&c);
    let f = w.finish(want.len() as u64, Ending::Complete, vec![]).unwrap();
    let image = f.urn.clone();
    let member = f.result.stream_urn.clone();
    assert_eq!(f.result.hashes[0].1, HashAlgo::Sha256.digest(&want));
    vol.finish().unwrap();
    (want, image, member)
}

/// Every check passes and covers the whole image (the unreadable range makes it incomplete).
fn intact(c: &Container, size: u64) {
    let report = aff4::verify::verify(c, &aff4::verify::VerifyOptions::default(), &|_| {});
    assert_eq!(report.verdict(), Some(Cause::Incomplete), "{:?} {:?}", report.checks, report.findings);
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].covered, size);
}

fn read_all(c: &Container, urn: &str) -> Vec<u8> {
    c.open_stream(urn).unwrap().read_all(1 << 30).unwrap()
}

#[test]
fn a_zip_volume_holds_the_image_as_one_aligned_stored_member() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.aff4");
    let (want, image, member) = write(&p);

    let file = std::fs::File::open(&p).unwrap();
    let z = ZipArchive::open(Arc::new(file), "m.aff4").unwrap();
    let e = z.entries().iter().find(|e| e.name == NAME).unwrap();
    assert_eq!(e.method, METHOD_STORED);
    assert_eq!(e.uncompressed_size, want.len() as u64);
    let start = z.data_start(e).unwrap();
    assert_eq!(start % u64::from(aff4::in_place::ALIGN), 0, "data at {start}");
    let raw = std::fs::read(&p).unwrap();
    assert!(raw[start as usize..start as usize + want.len()] == want[..], "the member's bytes are the image's");

    let c = Container::open(&[&p]).unwrap();
    assert!(read_all(&c, &image) == want, "the Image reads as written");
    assert!(read_all(&c, &member) == want);
    let map = c.open_map(c.graph().aff4(&image, "dataStream").and_then(|n| n.as_iri()).unwrap()).unwrap();
    let targets = map.target_urns().to_vec();
    let kind = |at: u64| {
        let r = map.regions().into_iter().find(|r| r.start <= at && at < r.start + r.length).unwrap();
        match r.kind {
            RegionKind::Mapped(t) => targets[t as usize].clone(),
            _ => String::new(),
        }
    };
    assert_eq!(kind(0), member);
    assert_eq!(kind(2 << 20), vocab::ZERO);
    assert_eq!(kind(3 << 20), vocab::UNREADABLE_DATA);
    assert_eq!(kind((3 << 20) + (256 << 10) + 4096), vocab::ZERO);
    intact(&c, want.len() as u64);
    // The zero runs are holes in the volume file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let used = std::fs::metadata(&p).unwrap().blocks() * 512;
        assert!(used < 6 << 20, "{used} bytes allocated for a {} byte volume", raw.len());
    }
}

#[test]
fn a_directory_volume_holds_the_image_as_a_plain_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vol/");
    let (want, image, _) = write(&p);
    let plain = p.join(NAME);
    assert!(std::fs::read(&plain).unwrap() == want, "{} is the image", plain.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let used = std::fs::metadata(&plain).unwrap().blocks() * 512;
        assert!(used < 6 << 20, "{used} bytes allocated for {} bytes", want.len());
    }
    let c = Container::open(&[&p]).unwrap();
    assert!(read_all(&c, &image) == want);
    intact(&c, want.len() as u64);
    // A changed byte in the plain file is found, also where the map says zeros or unreadable
    // (what other tools read there is covered by the member's own hash).
    for at in [100, 2 << 20, (3 << 20) + 5] {
        let mut bytes = std::fs::read(&plain).unwrap();
        bytes[at] ^= 1;
        std::fs::write(&plain, &bytes).unwrap();
        let c = Container::open(&[&p]).unwrap();
        let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions::default(), &|_| {});
        assert_eq!(report.verdict(), Some(Cause::Altered), "a byte changed at {at} passed verification");
        bytes[at] ^= 1;
        std::fs::write(&plain, &bytes).unwrap();
    }
}
