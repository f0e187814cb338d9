//! The reading commands on the reference images and on broken files.

#![allow(clippy::unwrap_used)]

mod util;
use util::*;

#[test]
fn verify_passes_on_every_reference_image() {
    for set in [
        vec!["AFF4Std/Base-Linear.aff4"],
        vec!["AFF4Std/Base-Linear-AllHashes.aff4"],
        vec!["AFF4Std/Base-Linear-ReadError.aff4"],
        vec!["AFF4Std/Base-Allocated.aff4"],
        vec!["AFF4Std/Striped/Base-Linear_1.aff4", "AFF4Std/Striped/Base-Linear_2.aff4"],
        vec!["AFF4PreStd/Base-Linear.af4"],
        vec!["AFF4PreStd/Base-Linear-ReadError.af4"],
        vec!["AFF4-L/dream.aff4"],
    ] {
        let paths: Vec<String> = set.iter().map(|p| refimg(p).display().to_string()).collect();
        let mut args = vec!["verify", "--json"];
        args.extend(paths.iter().map(|s| s.as_str()));
        let o = run(&args);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // Every hash passes; images with unreadable or never-read ranges are incomplete (8).
        let partial = set.iter().any(|s| s.contains("ReadError") || s.contains("Allocated"));
        assert_eq!(o.status.code(), Some(if partial { 8 } else { 0 }), "{set:?}: {j}");
        assert_eq!(j["ok"], !partial, "{set:?}");
        assert_eq!(j["failed"], 0);
        assert_eq!(j["errors"], 0);
        assert!(j["passed"].as_u64().unwrap() >= 2);
    }
}

#[test]
fn cat_gives_the_manifest_hash() {
    let o = ok(&["cat", refimg("AFF4Std/Base-Allocated.aff4").to_str().unwrap()]);
    assert_eq!(aff4::hash::hex(&aff4::HashAlgo::Sha1.digest(&o.stdout)), "e8650e89b262cf0b4b73c025312488d5a6317a26");
}

#[test]
fn view_prints_turtle_and_ls_lists() {
    let p = refimg("AFF4Std/Base-Linear.aff4");
    let v = ok(&["view", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("aff4:ImageStream"));
    // pmem-style -V
    let v2 = ok(&["-V", p.to_str().unwrap()]);
    assert_eq!(v.stdout, v2.stdout);
    let l = String::from_utf8_lossy(&ok(&["ls", p.to_str().unwrap()]).stdout).to_string();
    assert!(l.contains("name=/dev/sdz") && l.contains("codec=snappy chunk=32768"), "{l}");
}

#[test]
fn export_writes_files_inside_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    ok(&["export", "-D", d.to_str().unwrap(), refimg("AFF4-L/dream.aff4").to_str().unwrap()]);
    let f = d.join("test_images/AFF4-L/dream.txt");
    assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(refimg("AFF4-L/dream.txt")).unwrap());
    // A glob that matches nothing fails clearly.
    let o = run(&["export", "-D", d.to_str().unwrap(), "-e", "*nothing*", refimg("AFF4-L/dream.aff4").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn broken_files_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(refimg("AFF4Std/Base-Linear.aff4")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.aff4", vec![]),
        ("text.aff4", b"this is not a zip file at all\n".to_vec()),
        ("truncated-half.aff4", src[..src.len() / 2].to_vec()),
        ("truncated-tail.aff4", src[..src.len() - 30].to_vec()),
        ("no-head.aff4", src[1000..].to_vec()),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        for cmd in ["ls", "cat", "verify"] {
            let o = run(&[cmd, p.to_str().unwrap()]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{cmd} {name} should fail");
            assert!(o.status.code().is_some(), "{cmd} {name}: killed by a signal");
            assert!(!err.contains("panicked"), "{cmd} {name}: {err}");
            assert!(err.starts_with("pmem: error:") && err.trim_end().lines().count() == 1, "{cmd} {name}: {err}");
        }
    }
}

#[test]
fn flipped_byte_fails_verify_naming_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = std::fs::read(refimg("AFF4Std/Base-Linear.aff4")).unwrap();
    // Inside the bevy data (stored chunk 3 at bevy offset 0xe801; the bevy starts near offset 0xAE).
    src[0x10000] ^= 0x40;
    let p = dir.path().join("flip.aff4");
    std::fs::write(&p, &src).unwrap();
    let o = run(&["verify", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| (l.starts_with("FAIL") || l.starts_with("ERROR")) && l.contains("aff4://c215ba20-5648-4209-a793-1f918c723610")),
        "{out}"
    );
}

#[test]
fn damaged_volumes_end_in_a_result_or_one_line_error() {
    // A process-level sample of the library-level mutation test (crates/aff4/tests/mutation.rs).
    let dir = tempfile::tempdir().unwrap();
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for name in ["AFF4Std/Base-Linear.aff4", "AFF4PreStd/Base-Linear-ReadError.af4", "AFF4-L/dream.aff4"] {
        let src = std::fs::read(refimg(name)).unwrap();
        for i in 0..8 {
            let mut m = src.clone();
            let tail = m.len().saturating_sub(20_000);
            for _ in 0..3 {
                let p = tail + (next() as usize) % (m.len() - tail);
                m[p] ^= 1 << (next() % 8);
            }
            if i % 4 == 3 {
                let cut = (next() as usize) % m.len();
                m.truncate(cut);
            }
            let p = dir.path().join(format!("m{i}.aff4"));
            std::fs::write(&p, &m).unwrap();
            for cmd in ["ls", "cat", "verify"] {
                let t = std::time::Instant::now();
                let mut child = pmem()
                    .args([cmd, p.to_str().unwrap()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                let st = child.wait().unwrap();
                assert!(st.code().is_some(), "{name} #{i} {cmd}: killed by a signal");
                assert!(!err.contains("panicked"), "{name} #{i} {cmd}: {err}");
                // verify reports mismatches on stdout with exit code 1; anything else is one error line.
                let verify_mismatch = cmd == "verify" && st.code() == Some(1) && err.is_empty();
                if !st.success() && !verify_mismatch {
                    assert!(err.starts_with("pmem: error:") && err.trim_end().lines().count() == 1, "{name} #{i} {cmd}: {err}");
                }
                assert!(t.elapsed() < std::time::Duration::from_secs(60), "{name} #{i} {cmd} too slow");
            }
        }
    }
}

/// A reader that goes away: the showing commands end quietly (no panic, no error), while an
/// acquisition streamed to stdout fails with the output exit code instead of claiming success.
#[test]
fn a_closed_stdout_ends_listings_quietly_and_fails_acquisitions() {
    let closed = || {
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        w
    };
    let vol = refimg("AFF4Std/Base-Linear.aff4");
    for args in [&["ls"][..], &["view"], &["info"], &["cat"], &["verify"]] {
        let o = pmem().args(args).arg(&vol).stdout(closed()).stderr(std::process::Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked") && !err.contains("error"), "pmem {args:?} into a closed pipe: {err}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert!(o.status.success() || o.status.signal() == Some(13), "pmem {args:?}: {:?}", o.status);
        }
    }
    // Acquisition (of an ELF core file) streamed to stdout with nobody reading.
    let dir = tempfile::tempdir().unwrap();
    let lime = dir.path().join("m.lime");
    lime_file(&lime, 0x100000, &corpus(1 << 20, 3));
    let o = pmem()
        .args(["acquire", "-q", "-o", "-", "--source"])
        .arg(&lime)
        .stdout(closed())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "an acquisition nobody receives must fail: {err}");
    assert!(err.contains("Broken pipe") || err.contains("broken pipe"), "{err}");
}

/// c-aff4 `aff4imager --split` sets, in c-aff4's exact layout (tests/interop/caff4_split.py):
/// parts with their own URNs, bevies spread over them, the first parts' metadata a snapshot
/// with `aff4:size 0`, the final size and hash only in the last part. Opened from the first
/// part (either naming) or with every part given in any order, the stream reads whole and
/// verifies; without its last part, or with a part that records another digest, it never does.
#[test]
fn caff4_split_sets_read_whole_with_the_final_facts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("disk.bin");
    let data = corpus(5 << 20, 41);
    std::fs::write(&input, &data).unwrap();
    let split = |name: &str, extra: &[&str]| -> Vec<String> {
        let o = std::process::Command::new("python3")
            .arg(repo().join("tests/interop/caff4_split.py"))
            .args([input.to_str().unwrap(), dir.path().join(name).to_str().unwrap(), "--bevies-per-part", "2", "--chunks-per-bevy", "16"])
            .args(extra)
            .output()
            .expect("python3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().lines().map(String::from).collect()
    };
    let verify = |paths: &[String]| {
        let args: Vec<&str> = ["verify", "--json"].into_iter().chain(paths.iter().map(String::as_str)).collect();
        let o = run(&args);
        (o.status.code(), serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_default())
    };
    for (name, naming) in [("c.aff4", "caff4"), ("s.aff4", "short")] {
        let parts = split(name, &["--naming", naming, "--sha1"]);
        assert_eq!(parts.len(), 5, "{parts:?}");
        let want = if naming == "caff4" { format!("{name}.A01") } else { name.replace(".aff4", ".A01") };
        assert!(parts[1].ends_with(&want), "{parts:?}");
        let first = &parts[..1];
        let mut reversed = parts.clone();
        reversed.reverse();
        for given in [first, &reversed[..]] {
            let args: Vec<&str> = ["cat"].into_iter().chain(given.iter().map(String::as_str)).collect();
            assert!(ok(&args).stdout == data, "{naming}: {given:?}");
            let (code, v) = verify(given);
            assert_eq!(code, Some(0), "{naming}: {v}");
            assert!(v["checks"].as_array().unwrap().iter().any(|c| c["what"].as_str().unwrap().starts_with("aff4:hash SHA1")), "{v}");
        }
        let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", &parts[0]]).stdout).unwrap();
        assert_eq!(ls["images"][0]["size"].as_u64(), Some(data.len() as u64), "{ls}");
        // Without the last part: the snapshot is all there is, and it is never taken as the evidence.
        let last = parts.last().unwrap();
        std::fs::rename(last, format!("{last}.away")).unwrap();
        let (code, v) = verify(first);
        assert!(matches!(code, Some(1 | 8)), "{v}");
        let text = String::from_utf8_lossy(&run(&["ls", &parts[0]]).stdout).into_owned();
        assert!(text.contains("holds its final size and hashes, is missing"), "{text}");
        std::fs::rename(format!("{last}.away"), last).unwrap();
    }
    // A part that records another SHA-1 of the same stream: a genuine conflict, refused.
    let parts = split("x.aff4", &["--sha1", "--conflicting-sha1"]);
    let (code, v) = verify(&parts[..1]);
    assert_eq!(code, Some(1), "{v}");
    assert!(v.to_string().contains("different hash SHA1 digests"), "{v}");
}
