//! Every reference image: stream and whole-image hashes equal MANIFEST.md, and every declared
//! hash verifies.

#![allow(clippy::unwrap_used)]

mod common;
use aff4::evidence::Cause;
use aff4::verify::{verify, Status, VerifyOptions};
use aff4::{Container, HashAlgo, OpenOptions};
use common::{refimg, stream_hash};

struct Case {
    files: &'static [&'static str],
    image_sha1: &'static str,
    passes: usize,
    /// The verdict: None (complete and intact), or why not.
    verdict: Option<Cause>,
    streams: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        files: &["AFF4Std/Base-Linear.aff4"],
        image_sha1: "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d",
        verdict: None,
        passes: 13,
        streams: &[("aff4://c215ba20-5648-4209-a793-1f918c723610", "fbac22cca549310bc5df03b7560afcf490995fbb")],
    },
    Case {
        files: &["AFF4Std/Base-Linear-AllHashes.aff4"],
        image_sha1: "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d",
        verdict: None,
        passes: 22,
        streams: &[],
    },
    Case {
        files: &["AFF4Std/Base-Linear-ReadError.aff4"],
        image_sha1: "67e245a640e2784ead30c1ff1a3f8d237b58310f",
        verdict: Some(Cause::Incomplete),
        passes: 13,
        streams: &[],
    },
    Case {
        files: &["AFF4Std/Base-Allocated.aff4"],
        image_sha1: "e8650e89b262cf0b4b73c025312488d5a6317a26",
        verdict: Some(Cause::Incomplete),
        passes: 13,
        streams: &[],
    },
    Case {
        files: &["AFF4Std/Striped/Base-Linear_1.aff4", "AFF4Std/Striped/Base-Linear_2.aff4"],
        image_sha1: "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d",
        verdict: None,
        passes: 25,
        streams: &[
            ("aff4://3bf0bd14-1ef9-4185-8b0a-2c7d511b4d30", "5d14518149402e3935930b389564c9dc8c674fd1"),
            ("aff4://a04a9189-5e92-4024-a577-37d6cfa72594", "00412c53666cd74c81d5703c77d865145dde1082"),
        ],
    },
    Case {
        files: &["AFF4PreStd/Base-Linear.af4"],
        image_sha1: "5d5f183ae7355b8dc8938b67aab77c0215c29ab4",
        verdict: None,
        passes: 11,
        streams: &[("aff4://c9f68c3a-0843-4a92-bbd8-2596a75b09be", "49b0b180b2822944d4df42a99deb65a943673a21")],
    },
    Case {
        files: &["AFF4PreStd/Base-Linear-ReadError.af4"],
        image_sha1: "5fc17ee079cbe55c5b6dc150250eebc478ca7191",
        verdict: Some(Cause::Incomplete),
        passes: 11,
        streams: &[("aff4://dac3f96d-8f2c-4116-adc3-e870fd009242", "8b4bf8863f816d9c0d5c3c643b45f2e7b3f05ef0")],
    },
];

#[test]
fn reference_images_read_and_verify() {
    for case in CASES {
        let paths: Vec<_> = case.files.iter().map(|f| refimg(f)).collect();
        let c = Container::open(&paths).unwrap_or_else(|e| panic!("{:?}: {e}", case.files));
        let urn = c.default_stream().expect("default stream");
        assert_eq!(stream_hash(&c, &urn, HashAlgo::Sha1), case.image_sha1, "{:?}", case.files);
        for (s, sha1) in case.streams {
            assert_eq!(&stream_hash(&c, s, HashAlgo::Sha1), sha1, "{s}");
        }
        let report = verify(&c, &VerifyOptions::default(), &|_| {});
        assert_eq!(report.verdict(), case.verdict, "{:?}: {:#?}", case.files, report.findings);
        let checks = report.checks;
        let pass = checks.iter().filter(|c| c.status == Status::Pass).count();
        let bad: Vec<_> = checks.iter().filter(|c| matches!(c.status, Status::Fail { .. } | Status::Error(_))).collect();
        assert!(bad.is_empty(), "{:?}: {bad:?}", case.files);
        assert_eq!(pass, case.passes, "{:?}: {checks:#?}", case.files);
    }
}

#[test]
fn striped_either_map_gives_the_image() {
    let c = Container::open(&[refimg("AFF4Std/Striped/Base-Linear_1.aff4"), refimg("AFF4Std/Striped/Base-Linear_2.aff4")]).unwrap();
    for m in ["aff4://2dd04819-73c8-40e3-a32b-fdddb0317eac", "aff4://363ac10c-8d8d-4905-ac25-a14aaddd8a41"] {
        assert_eq!(stream_hash(&c, m, HashAlgo::Sha1), "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d");
    }
    // One half alone: the foreign stream is missing, and reading says so instead of inventing bytes.
    let half = Container::open(&[refimg("AFF4Std/Striped/Base-Linear_1.aff4")]).unwrap();
    let s = half.open_stream(&half.default_stream().unwrap()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut failed = false;
    for off in (0..s.size()).step_by(1 << 20) {
        if s.read_exact_at(off, &mut buf).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "reading a striped image with a missing volume must fail");
}

#[test]
fn byte_level_vectors() {
    let c = Container::open(&[refimg("AFF4Std/Base-Linear.aff4")]).unwrap();
    let s = c.open_stream(&c.default_stream().unwrap()).unwrap();
    let mut b = vec![0u8; 17];
    s.read_exact_at(0x163, &mut b).unwrap();
    assert_eq!(&b, b"Invalid partition");
    let mut b = [0u8; 2];
    s.read_exact_at(0x1fe, &mut b).unwrap();
    assert_eq!(b, [0x55, 0xaa]);
    let mut b = [0u8; 4];
    s.read_exact_at(0x4f80000, &mut b).unwrap();
    assert_eq!(b, [0xff; 4]);
    s.read_exact_at(0xfd10000, &mut b).unwrap();
    assert_eq!(&b, b"aaaa");
    // The PDF inside, as pyaff4's reference test checks it.
    let mut pdf = vec![0u8; 629087];
    s.read_exact_at(0x10000 + 0xfc3000, &mut pdf).unwrap();
    assert_eq!(aff4::hash::hex(&HashAlgo::Sha1.digest(&pdf)), "5a2fee16139c7b017b7f1961d842d355a860c7ac");
    // Read + Seek view agrees.
    use std::io::{Read, Seek, SeekFrom};
    let mut r = aff4::StreamReader::new(s.clone());
    r.seek(SeekFrom::Start(0x163)).unwrap();
    let mut t = [0u8; 7];
    r.read_exact(&mut t).unwrap();
    assert_eq!(&t, b"Invalid");
}

#[test]
fn logical_image() {
    let c = Container::open(&[refimg("AFF4-L/dream.aff4")]).unwrap();
    let imgs = c.images();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].name.as_deref(), Some("./test_images/AFF4-L/dream.txt"));
    let s = c.open_stream(&imgs[0].urn).unwrap();
    let data = s.read_all(1 << 20).unwrap();
    assert_eq!(data, std::fs::read(refimg("AFF4-L/dream.txt")).unwrap());
    let report = verify(&c, &VerifyOptions::default(), &|_| {});
    assert_eq!(report.verdict(), None, "{:#?}", report.findings);
    assert_eq!(report.checks.iter().filter(|c| c.status == Status::Pass).count(), 2);
}

#[test]
fn utf8_member_names_without_efs_flag() {
    // Plain ZIPs (not AFF4) with a UTF-8 name and no EFS flag, stored and deflated.
    for f in ["AFF4-L/unicode.zip", "AFF4-L/utf8segment-macos.zip"] {
        let file = std::fs::File::open(refimg(f)).unwrap();
        let b = aff4::volume::ZipBackend::open(std::sync::Arc::new(file), f).unwrap();
        use aff4::volume::Backend;
        let names = b.member_names();
        assert!(names.iter().any(|n| n.ends_with("ネコ.txt")), "{f}: {names:?}");
        let n = names.iter().find(|n| n.ends_with("ネコ.txt")).unwrap();
        let data = b.open_member(n).unwrap().unwrap().read_all(1024).unwrap();
        assert_eq!(data, b"foo\n");
    }
}

#[test]
fn encrypted_container_with_password() {
    let f = refimg("extra-aff4-forensic/encrypted-linear-password.aff4");
    let locked = Container::open(&[&f]).unwrap();
    assert!(locked.notes().iter().any(|n| n.contains("password")));
    assert!(Container::open_with(&[&f], &OpenOptions { password: Some("nope".into()), ..Default::default() }).is_err());
    let c = Container::open_with(&[&f], &OpenOptions { password: Some("password".into()), ..Default::default() }).unwrap();
    let urn = c.default_stream().unwrap();
    let data = c.open_stream(&urn).unwrap().read_all(1 << 20).unwrap();
    assert_eq!(data.len(), 8192);
    assert_eq!(aff4::hash::hex(&HashAlgo::Md5.digest(&data)), "fedd7baa1fdf87bb8c12b18ad59ba738");
}

#[test]
fn flipped_byte_fails_naming_the_stream() {
    let src = std::fs::read(refimg("AFF4Std/Base-Linear.aff4")).unwrap();
    // Chunk 3 of the stream is stored raw at bevy offset 0xe801; the bevy data starts after its local header.
    let zip = aff4::zip::ZipArchive::open(std::sync::Arc::new(src.clone()), "x").unwrap();
    let e = zip.entries().iter().find(|e| e.name.ends_with("/00000000")).unwrap();
    let at = zip.data_start(e).unwrap() as usize + 0xe801 + 100;
    let mut bad = src;
    bad[at] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("flipped.aff4");
    std::fs::write(&p, &bad).unwrap();
    let c = Container::open(&[&p]).unwrap();
    let report = verify(&c, &VerifyOptions::default(), &|_| {});
    assert_eq!(report.verdict(), Some(Cause::Altered));
    let checks = report.checks;
    let fails: Vec<_> = checks.iter().filter(|c| matches!(c.status, Status::Fail { .. })).collect();
    assert!(fails.iter().any(|c| c.subject == "aff4://c215ba20-5648-4209-a793-1f918c723610"), "{checks:#?}");
    assert!(!aff4::verify::all_ok(&checks));
}
