//! `pmem verify`'s exit code alone says whether the evidence is complete and intact: each way
//! evidence can be missing or altered gets its own non-zero code, and faults leave no garbage.

#![allow(clippy::unwrap_used)]

mod util;
use std::path::Path;
use util::*;

fn code(args: &[&str]) -> (Option<i32>, String, String) {
    let o = run(args);
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn verify_json(p: &Path) -> (Option<i32>, serde_json::Value) {
    let o = run(&["verify", "--json", p.to_str().unwrap()]);
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout))))
}

/// A split set names a missing part, in verify (exit 8, incomplete), ls and cat alike; with
/// every part there it verifies (exit 0).
#[test]
fn a_missing_split_part_is_named_and_makes_the_set_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.bin");
    std::fs::write(&input, corpus(200 << 20, 3)).unwrap();
    let vol = d.join("s.aff4");
    ok(&["image", "-q", "--split", "80M", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    assert!(d.join("s.A02").exists(), "three parts expected");
    let (c, v) = verify_json(&vol);
    assert_eq!(c, Some(0), "{v}");
    assert_eq!(v["verdict"], "ok");
    for (gone, named) in [("s.A01", "part 2 (s.A01)"), ("s.A02", "part 3 (s.A02)")] {
        std::fs::rename(d.join(gone), d.join("away")).unwrap();
        let (c, v) = verify_json(&vol);
        assert_eq!(c, Some(8), "{v}");
        assert_eq!(v["ok"], false);
        let f = v["findings"].as_array().unwrap();
        assert!(f.iter().any(|f| f["cause"] == "incomplete" && f["message"].as_str().unwrap().contains(named)), "{v}");
        let (c, out, _) = code(&["ls", vol.to_str().unwrap()]);
        assert_eq!(c, Some(0));
        assert!(out.contains(named), "{out}");
        let (c, _, err) = code(&["cat", vol.to_str().unwrap()]);
        assert_ne!(c, Some(0));
        assert!(err.contains(named), "cat must name the missing part: {err}");
        std::fs::rename(d.join("away"), d.join(gone)).unwrap();
    }
    // The first part missing: a later part says so.
    std::fs::rename(&vol, d.join("away")).unwrap();
    let (c, v) = verify_json(&d.join("s.A02"));
    assert_eq!(c, Some(8), "{v}");
    assert!(
        v["findings"].as_array().unwrap().iter().any(|f| f["message"].as_str().unwrap().contains("part 1 of the split set (s.aff4)")),
        "{v}"
    );
}

/// Sizes are evidence: a Map's aff4:size changed (same length, in place) fails verify with
/// both numbers named, although every hash still passes.
#[test]
fn a_changed_declared_size_fails_verify_naming_both_numbers() {
    let src = std::fs::read(refimg("AFF4Std/Base-Linear-ReadError.aff4")).unwrap();
    let map_at = find(&src, b"a                         aff4:Map").unwrap();
    let size_at = map_at + find(&src[map_at..], b"\"268435456\"").unwrap() + 1;
    let dir = tempfile::tempdir().unwrap();
    for new in ["000000000", "000000001"] {
        let mut m = src.clone();
        m[size_at..size_at + 9].copy_from_slice(new.as_bytes());
        let p = dir.path().join(format!("{new}.aff4"));
        std::fs::write(&p, &m).unwrap();
        let (c, v) = verify_json(&p);
        assert_eq!(c, Some(1), "{v}");
        assert_eq!(v["verdict"], "altered");
        let n: u64 = new.parse().unwrap();
        assert!(
            v["findings"].as_array().unwrap().iter().any(|f| {
                let t = f["message"].as_str().unwrap();
                f["cause"] == "altered" && t.contains(&format!("aff4:size {n}")) && t.contains("268435456")
            }),
            "{v}"
        );
    }
    // The unaltered image: hashes pass, but its unreadable ranges make it incomplete (exit 8).
    let (c, v) = verify_json(&refimg("AFF4Std/Base-Linear-ReadError.aff4"));
    assert_eq!(c, Some(8), "{v}");
    assert!(v["findings"].as_array().unwrap().iter().any(|f| f["message"].as_str().unwrap().contains("unreadable")), "{v}");
    let (c, v) = verify_json(&refimg("AFF4Std/Base-Linear.aff4"));
    assert_eq!((c, v["images"][0]["covered"].as_u64()), (Some(0), Some(268435456)), "{v}");
}

/// A ZIP member whose sizes disagree is an error naming it; a volume cut short says it is
/// truncated, not "not an AFF4 volume".
#[test]
fn zip_size_disagreements_and_cut_volumes_are_named() {
    let src = std::fs::read(refimg("AFF4Std/Base-Linear-ReadError.aff4")).unwrap();
    // The central directory's entry for information.turtle: the last place its name occurs.
    let name_at = src.windows(18).rposition(|w| w == b"information.turtle").unwrap();
    let cd = name_at - 46;
    assert_eq!(&src[cd..cd + 4], b"PK\x01\x02");
    let mut m = src.clone();
    m[cd + 20..cd + 24].copy_from_slice(&0u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sizes.aff4");
    std::fs::write(&p, &m).unwrap();
    for cmd in ["verify", "ls", "cat"] {
        let (c, _, err) = code(&[cmd, p.to_str().unwrap()]);
        assert_eq!(c, Some(3), "{cmd}: {err}");
        assert!(err.contains("information.turtle") && err.contains("sizes disagree"), "{cmd}: {err}");
    }
    let cut = dir.path().join("cut.aff4");
    std::fs::write(&cut, &src[..src.len() / 2]).unwrap();
    let (c, _, err) = code(&["verify", cut.to_str().unwrap()]);
    assert_eq!(c, Some(3));
    assert!(err.contains("truncated or unclosed AFF4 volume"), "{err}");
}

/// An interrupted image verifies its hashed part but is incomplete (exit 8), and ls says where
/// it stopped; bytes after the last directory (a cut append) make a volume incomplete too.
#[test]
fn interrupted_images_and_cut_appends_are_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.bin");
    std::fs::write(&input, corpus(3 << 20, 5)).unwrap();
    let vol = d.join("v.aff4");
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    let good = std::fs::read(&vol).unwrap();
    // A second image appended, then cut after part of its data: the old directory still opens.
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    let both = std::fs::read(&vol).unwrap();
    let cut = d.join("cut.aff4");
    std::fs::write(&cut, &both[..good.len() + (both.len() - good.len()) / 2]).unwrap();
    let (c, v) = verify_json(&cut);
    assert_eq!(c, Some(8), "{v}");
    assert!(
        v["findings"].as_array().unwrap().iter().any(|f| f["message"].as_str().unwrap().contains("after the last complete ZIP directory")),
        "{v}"
    );

    // Interrupted (the state an interrupted `pmem image` records, and a prefix hash).
    let p = d.join("i.aff4");
    std::fs::write(&p, &good).unwrap();
    let t = String::from_utf8(ok(&["view", p.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("Completed Normally"), "{t}");
    let bytes = std::fs::read(&p).unwrap();
    let at = find(&bytes, b"\"Completed Normally\"").unwrap();
    let mut m = bytes.clone();
    m[at + 1..at + 19].copy_from_slice(b"Interrupted: 12345");
    std::fs::write(&p, &m).unwrap();
    let (c, v) = verify_json(&p);
    assert_eq!(c, Some(8), "{v}");
    assert_eq!(v["images"][0]["complete"], false, "{v}");
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", p.to_str().unwrap()]).stdout).unwrap();
    assert!(ls["images"][0]["state"].as_str().unwrap().starts_with("interrupted"), "{ls}");
    assert!(!ls["images"][0]["hashes"].as_array().unwrap().is_empty(), "{ls}");
}

/// Faults leave nothing behind: a missing input or a bad option does not leave a volume file, a
/// failing append leaves the old volume byte for byte, a directory as input is refused at once.
#[test]
fn failed_writes_leave_no_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let new = d.join("new.aff4");
    let (c, _, err) = code(&["image", "-o", new.to_str().unwrap(), "/nonexistent/input"]);
    assert_eq!(c, Some(3), "{err}");
    assert!(!new.exists(), "a failed image must not leave a volume file");
    let input = d.join("in.bin");
    std::fs::write(&input, corpus(1 << 20, 1)).unwrap();
    let (c, _, _) = code(&["image", "--split", "8M", "-o", new.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(c, Some(2));
    assert!(!new.exists(), "a refused --split must not leave a volume file");
    let (c, _, err) = code(&["image", "-o", new.to_str().unwrap(), d.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("is a directory"), "{err}");
    assert!(!new.exists());
    // An append that fails leaves the old volume exactly as it was.
    ok(&["image", "-q", "-o", new.to_str().unwrap(), input.to_str().unwrap()]);
    let before = std::fs::read(&new).unwrap();
    let (c, _, _) = code(&["image", "-o", new.to_str().unwrap(), input.to_str().unwrap(), "-i", "/nonexistent/file"]);
    assert_ne!(c, Some(0));
    assert!(std::fs::read(&new).unwrap() == before, "a failed append must cut the volume back to its old end");
    // A temporary file of a killed `-t` (its process gone) is removed by the next -t.
    let stale = d.join(".new.aff4.pmem-999999999.tmp");
    std::fs::write(&stale, b"left by a killed run").unwrap();
    ok(&["image", "-q", "-t", "-o", new.to_str().unwrap(), input.to_str().unwrap()]);
    assert!(!stale.exists(), "the stale temporary file must be cleaned up");
    assert_eq!(code(&["verify", "-q", new.to_str().unwrap()]).0, Some(0));
}

/// Turtle nested millions deep is refused with a clear error (no abort, no runaway memory).
#[test]
fn deeply_nested_turtle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("deep");
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("container.description"), "aff4://deep").unwrap();
    std::fs::write(v.join("version.txt"), "major=1\nminor=0\ntool=test\n").unwrap();
    let n = 6_000_000;
    std::fs::write(v.join("information.turtle"), format!("<aff4://a> <aff4://b> {}1{} .", "[ <aff4://c> ".repeat(n), " ]".repeat(n)))
        .unwrap();
    let t = std::time::Instant::now();
    let (c, _, err) = code(&["ls", v.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{err}");
    assert!(err.contains("nested deeper than"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
