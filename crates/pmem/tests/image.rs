//! `pmem image` then `pmem cat`/`verify`: every codec and awkward size round-trips byte for
//! byte; the volumes pass `unzip -t`, the independent verifier and pyaff4; appends keep old
//! streams verifiable even when the writer is killed.

#![allow(clippy::unwrap_used)]

mod util;
use std::process::Command;
use util::*;

fn roundtrip(dir: &std::path::Path, data: &[u8], codec: &str, extra: &[&str]) -> std::path::PathBuf {
    let input = dir.join(format!("in-{codec}-{}.bin", data.len()));
    std::fs::write(&input, data).unwrap();
    let vol = dir.join(format!("v-{codec}-{}.aff4", data.len()));
    let mut args = vec!["image", "-q", "-o", vol.to_str().unwrap(), "-c", codec, input.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&args);
    let out = ok(&["cat", vol.to_str().unwrap()]).stdout;
    assert_eq!(out.len(), data.len(), "{codec} size {}", data.len());
    assert!(out == data, "{codec}: content differs for size {}", data.len());
    // Complete and intact: exit 0, and -q prints nothing.
    let v = ok(&["verify", "-q", vol.to_str().unwrap()]);
    assert!(v.stdout.is_empty(), "{}", String::from_utf8_lossy(&v.stdout));
    let v: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(v["verdict"], "ok", "{v}");
    vol
}

#[test]
fn every_codec_and_size_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for codec in aff4::Codec::WRITABLE.map(aff4::Codec::name) {
        for size in [0usize, 1, 32767, 32768, 32769] {
            roundtrip(dir.path(), &corpus(size, size as u64 + 7), codec, &[]);
        }
        // Several bevies (4 chunks per bevy), with block hashes.
        roundtrip(
            dir.path(),
            &corpus(1_000_003, 99),
            codec,
            &["--chunks-per-bevy", "4", "--block-hashes", "md5,sha1", "--hash", "sha1,md5,sha256,sha512,blake2b"],
        );
    }
}

#[test]
fn sparse_input_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 64 << 20];
    data[12345] = 1;
    data[(40 << 20) + 7] = 0xAA;
    let vol = roundtrip(dir.path(), &data, "snappy", &[]);
    let len = std::fs::metadata(&vol).unwrap().len();
    assert!(len < 200_000, "64 MiB of mostly zeros took {len} bytes");
}

#[test]
fn oracles_accept_our_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(3 << 20, 5);
    let mut vols = Vec::new();
    for codec in ["snappy", "zlib", "stored"] {
        vols.push((codec, roundtrip(dir.path(), &data, codec, &["--block-hashes", "md5,sha1", "--hash", "md5,sha1,sha256"])));
    }
    if Command::new("unzip").arg("-v").output().is_ok() {
        for (_, v) in &vols {
            let o = Command::new("unzip").arg("-t").arg(v).output().unwrap();
            assert!(o.status.success(), "unzip -t {v:?}: {}", String::from_utf8_lossy(&o.stdout));
        }
    } else if std::env::var_os("CI").is_some() {
        panic!("CI: unzip is missing");
    }
    let Some(py) = python() else { return };
    let want = sha256_bytes(&data);
    for (codec, v) in &vols {
        let o = Command::new(&py).arg(shared().join("tools/aff4verify.py")).arg(v).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("PASS") && !text.contains("FAIL"),
            "aff4verify {codec}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new(&py).arg(repo().join("tests/interop/pyaff4_read.py")).arg(v).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(&format!(" {} {want}", data.len())), "pyaff4 {codec}: {text}{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn we_read_pyaff4_volumes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(2_500_000, 11);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let tool = shared().join("tools/pyaff4_tool.py");
    for codec in ["snappy", "zlib", "stored"] {
        let vol = dir.path().join(format!("py-{codec}.aff4"));
        let o = Command::new(&py).arg(&tool).args(["image", "--compression", codec]).arg(&input).arg(&vol).output().unwrap();
        assert!(o.status.success(), "pyaff4 image: {}", String::from_utf8_lossy(&o.stderr));
        let out = ok(&["cat", vol.to_str().unwrap()]).stdout;
        assert!(out == data, "pyaff4 {codec} volume read back differently");
    }
    // A map: two ranges of the file at physical addresses with a hole between.
    let ranges = dir.path().join("r.json");
    std::fs::write(
        &ranges,
        r#"[{"phys_start": 4096, "length": 1000000, "file_offset": 0}, {"phys_start": 2000000, "length": 500000, "file_offset": 1500000}]"#,
    )
    .unwrap();
    let vol = dir.path().join("py-map.aff4");
    let o = Command::new(&py).arg(&tool).arg("map").arg(&input).arg(&ranges).arg(&vol).output().unwrap();
    assert!(o.status.success(), "pyaff4 map: {}", String::from_utf8_lossy(&o.stderr));
    let out = ok(&["cat", vol.to_str().unwrap()]).stdout;
    let mut want = vec![0u8; 2_500_000];
    want[4096..4096 + 1_000_000].copy_from_slice(&data[..1_000_000]);
    want[2_000_000..2_500_000].copy_from_slice(&data[1_500_000..2_000_000]);
    assert_eq!(out.len(), want.len());
    assert!(out == want, "pyaff4 map read back differently");
}

#[test]
fn append_keeps_earlier_streams() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let b = dir.path().join("b.bin");
    std::fs::write(&a, corpus(500_000, 1)).unwrap();
    std::fs::write(&b, corpus(700_000, 2)).unwrap();
    let vol = dir.path().join("v.aff4");
    let v = vol.to_str().unwrap();
    ok(&["image", "-q", "-o", v, a.to_str().unwrap()]);
    ok(&["image", "-q", "-o", v, b.to_str().unwrap(), "-i", a.to_str().unwrap()]);
    let ls = String::from_utf8_lossy(&ok(&["ls", "--json", v]).stdout).to_string();
    let j: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(j["images"].as_array().unwrap().len(), 3, "{ls}");
    let out = String::from_utf8_lossy(&ok(&["verify", v]).stdout).to_string();
    // Two images and a logical file: three linear hashes plus the maps' segment hashes.
    assert!(out.contains("9 passed, 0 failed"), "{out}");
    // -t replaces.
    ok(&["image", "-q", "-t", "-o", v, a.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", v]).stdout).unwrap();
    assert_eq!(j["images"].as_array().unwrap().len(), 1);
}

#[test]
fn killed_append_leaves_old_streams_readable() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.bin");
    let data = corpus(1 << 20, 3);
    std::fs::write(&a, &data).unwrap();
    let vol = dir.path().join("v.aff4");
    let v = vol.to_str().unwrap().to_string();
    ok(&["image", "-q", "-o", &v, a.to_str().unwrap()]);
    let before = ok(&["cat", &v]).stdout;
    assert!(before == data);
    // A large incompressible input through a pipe, killed at several points.
    let original = std::fs::metadata(&vol).unwrap().len();
    for delay_ms in [300u64, 900, 2000] {
        let mut child = pmem()
            .args(["image", "-q", "-c", "stored", "-o", &v, "/dev/urandom"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let grown = std::fs::metadata(&vol).unwrap().len();
        assert!(grown > original + (1 << 20), "the killed writer should have appended data ({grown} bytes)");
        let after = ok(&["cat", &v]).stdout;
        assert!(after == data, "old stream changed after a killed append ({delay_ms} ms)");
        // The old image passes its checks, but the killed append's bytes make the volume
        // incomplete: exit 8, naming the ignored bytes.
        let o = run(&["verify", &v]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(o.status.code(), Some(8), "{out}");
        assert!(out.contains("4 passed, 0 failed") && out.contains("after the last complete ZIP directory"), "{out}");
        // Appending again after the interruption works and drops the debris.
        ok(&["image", "-q", "-o", &v, a.to_str().unwrap()]);
        let j: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", &v]).stdout).unwrap();
        assert!(j["notes"].as_array().unwrap().is_empty(), "{j}");
        // Back to one image for the next round.
        ok(&["image", "-q", "-t", "-o", &v, a.to_str().unwrap()]);
    }
}

#[test]
fn directory_volume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(300_000, 8);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let vol = format!("{}/dirvol/", dir.path().display());
    ok(&["image", "-q", "-o", &vol, input.to_str().unwrap()]);
    assert!(std::path::Path::new(&vol).join("information.turtle").exists());
    assert!(ok(&["cat", &vol]).stdout == data);
    let out = String::from_utf8_lossy(&ok(&["verify", &vol]).stdout).to_string();
    assert!(out.contains("4 passed, 0 failed"), "{out}");
}

#[test]
fn stdin_is_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(100_000, 4);
    let vol = dir.path().join("s.aff4");
    let mut child = pmem().args(["image", "-q", "-o", vol.to_str().unwrap(), "-"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(ok(&["cat", vol.to_str().unwrap()]).stdout == data);
}

#[test]
#[cfg(unix)]
fn output_is_private_and_never_follows_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, corpus(10_000, 1)).unwrap();
    let vol = dir.path().join("p.aff4");
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&vol).unwrap().permissions().mode() & 0o777, 0o600);
    let target = dir.path().join("victim");
    std::fs::write(&target, b"keep").unwrap();
    let link = dir.path().join("link.aff4");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = run(&["image", "-q", "-o", link.to_str().unwrap(), input.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

#[test]
fn disk_full_is_reported_and_the_volume_survives() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("note: not root; the ENOSPC test needs a tmpfs mount");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(st.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.clone());
    let a = dir.path().join("a.bin");
    let data = corpus(1 << 20, 9);
    std::fs::write(&a, &data).unwrap();
    let vol = mnt.join("v.aff4");
    let v = vol.to_str().unwrap();
    ok(&["image", "-q", "-o", v, a.to_str().unwrap()]);
    // 16 MiB of noise cannot fit in what is left.
    let big = dir.path().join("big.bin");
    let noise: Vec<u8> = (0..16u64 << 20).map(|i| (i.wrapping_mul(0x9E3779B97F4A7C15) >> 56) as u8).collect();
    std::fs::write(&big, &noise).unwrap();
    let o = run(&["image", "-q", "-c", "stored", "-o", v, big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left") && err.contains("is as it was before"), "{err}");
    // The earlier image is intact and verifies.
    assert!(ok(&["cat", v]).stdout == data);
    let out = String::from_utf8_lossy(&ok(&["verify", v]).stdout).to_string();
    assert!(out.contains("4 passed, 0 failed"), "{out}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn volume_streamed_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(700_000, 12);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let o = ok(&["image", "-q", "-o", "-", input.to_str().unwrap()]);
    let vol = dir.path().join("piped.aff4");
    std::fs::write(&vol, &o.stdout).unwrap();
    assert!(ok(&["cat", vol.to_str().unwrap()]).stdout == data);
    let v = String::from_utf8_lossy(&ok(&["verify", vol.to_str().unwrap()]).stdout).to_string();
    assert!(v.contains(" 0 failed") && v.contains("OK"), "{v}");
    if let Some(py) = python() {
        let o = Command::new(&py).arg(repo().join("tests/interop/pyaff4_read.py")).arg(&vol).output().unwrap();
        assert!(String::from_utf8_lossy(&o.stdout).contains(&sha256_bytes(&data)), "pyaff4 cannot read the piped volume");
    }
}

#[test]
fn split_volumes_stay_under_the_size_and_open_together() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let mut data = corpus(20 << 20, 31);
    data.extend(std::iter::repeat_n(7u8, 3 << 20));
    std::fs::write(&input, &data).unwrap();
    let out = dir.path().join("set.aff4");
    let limit: u64 = 12 << 20;
    let args = [
        "image",
        "-q",
        "-o",
        out.to_str().unwrap(),
        "-c",
        "stored",
        "--chunks-per-bevy",
        "32",
        "--split",
        "12M",
        "--block-hashes",
        "sha1",
        input.to_str().unwrap(),
    ];
    ok(&args);
    let parts: Vec<std::path::PathBuf> =
        std::iter::once(out.clone()).chain((1..).map(|n| dir.path().join(format!("set.A{n:02}"))).take_while(|p| p.exists())).collect();
    assert!(parts.len() >= 2, "expected several parts: {parts:?}");
    for p in &parts {
        let n = std::fs::metadata(p).unwrap().len();
        assert!(n <= limit, "{} is {n} bytes, over the 12 MiB limit", p.display());
        // Each part is a complete ZIP volume of its own.
        if Command::new("unzip").arg("-v").output().is_ok() {
            assert!(Command::new("unzip").arg("-tq").arg(p).output().unwrap().status.success(), "unzip -t {}", p.display());
        }
    }
    // Given the first part, the others are found beside it; given all, the same.
    assert!(ok(&["cat", out.to_str().unwrap()]).stdout == data);
    let v: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", out.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let mut all = vec!["cat"];
    all.extend(parts.iter().map(|p| p.to_str().unwrap()));
    assert!(ok(&all).stdout == data);
    // The independent verifier opens the parts together as one set.
    if let Some(py) = python() {
        let o = Command::new(&py).arg(shared().join("tools/aff4verify.py")).args(&parts).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("PASS") && !text.contains("FAIL"),
            "aff4verify: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Replacing the set with a smaller one leaves no stale parts behind.
    ok(&[
        "image",
        "-q",
        "-t",
        "-o",
        out.to_str().unwrap(),
        "--split",
        "12M",
        "--chunks-per-bevy",
        "32",
        refimg("AFF4-L/dream.txt").to_str().unwrap(),
    ]);
    assert!(!dir.path().join("set.A01").exists(), "stale part left behind");
    // Refused where a split cannot work.
    let o = run(&["image", "-q", "-o", "-", "--split", "12M", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["image", "-q", "-o", dir.path().join("tiny.aff4").to_str().unwrap(), "--split", "1M", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("parts must be at least 9 MiB"), "{}", String::from_utf8_lossy(&o.stderr));
    // Parts below the default bevy's size are never silently enlarged: the message says how to get them.
    let small = dir.path().join("small.aff4");
    let o = run(&["image", "-q", "-o", small.to_str().unwrap(), "--split", "10M", input.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    let hint = e.split("--chunks-per-bevy ").nth(1).and_then(|t| t.split(' ').next()).expect("names a bevy size");
    ok(&["image", "-q", "-o", small.to_str().unwrap(), "--split", "10M", "--chunks-per-bevy", hint, input.to_str().unwrap()]);
    for part in [small.clone(), dir.path().join("small.A01")] {
        let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0 && len <= 10 << 20, "{}: {len} bytes", part.display());
    }
    assert!(ok(&["cat", small.to_str().unwrap()]).stdout == std::fs::read(&input).unwrap());
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Waits until `pid` holds `path` open (so it is reading it), or panics.
fn wait_until_open(child: &mut std::process::Child, path: &std::path::Path) {
    let fds = std::path::PathBuf::from(format!("/proc/{}/fd", child.id()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_dir(&fds).into_iter().flatten().flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path)) {
        assert!(child.try_wait().unwrap().is_none(), "pmem ended before opening {path:?}");
        assert!(std::time::Instant::now() < deadline, "pmem never opened {path:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Ctrl-C while imaging: the volume is closed at once with what was read (the rest of a known
/// size is aff4:UnknownData, not hashed), it verifies, the state says so, and the exit code
/// is 130; later inputs are not imaged. A silent stdin does not keep Ctrl-C from working.
#[test]
fn ctrl_c_closes_the_volume_with_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse 64 GiB input: minutes of work, so the signal lands mid-way.
    let big = dir.path().join("disk.img");
    std::fs::File::create(&big).unwrap().set_len(64 << 30).unwrap();
    let later = dir.path().join("later.bin");
    std::fs::write(&later, b"never reached").unwrap();
    let vol = dir.path().join("v.aff4");
    let mut child =
        pmem().args(["image", "-o", vol.to_str().unwrap()]).arg(&big).arg(&later).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_until_open(&mut child, &big);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // SAFETY: kill with a valid pid and signal.
    unsafe { kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    // The summary says how far it got, not the input's size as if it were imaged, and what was left out.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INTERRUPTED after ") && err.contains(" of 68719476736 bytes"), "{err}");
    assert!(err.contains("interrupted: 1 more input(s) and -i file(s) were not imaged"), "{err}");
    // What was read verifies, but the image is incomplete: exit 8, and ls says where it stopped.
    let o = run(&["verify", "--json", vol.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((o.status.code(), &v["verdict"]), (Some(8), &serde_json::json!("incomplete")), "{v}");
    assert_eq!((v["failed"].as_u64(), v["errors"].as_u64()), (Some(0), Some(0)), "{v}");
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(ls["images"][0]["state"].as_str().unwrap().starts_with("interrupted at byte"), "{ls}");
    assert!(v["checks"].as_array().unwrap().iter().any(|c| c["what"].as_str().unwrap().starts_with("aff4:prefixHash SHA256")), "{v}");
    let t = String::from_utf8(ok(&["view", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("Interrupted: incomplete: stopped at byte"), "{t}");
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    let images = ls["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "the input after the interrupted one must not be imaged: {ls}");
    assert_eq!(images[0]["size"], 64u64 << 30);
    // The unread end reads as aff4:UnknownData's pattern, not zeros.
    let tail = ok(&["cat", "--offset", &((64u64 << 30) - 16).to_string(), vol.to_str().unwrap()]).stdout;
    assert_eq!(tail.len(), 16);
    assert!(tail.iter().any(|&b| b != 0), "{tail:?}");

    // stdin that sends a little and then stays silent (its writer still open).
    let vol = dir.path().join("s.aff4");
    let mut child = pmem().args(["image", "-q", "-o", vol.to_str().unwrap(), "-"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = corpus(100_000, 9);
    std::io::Write::write_all(&mut stdin, &data).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { kill(child.id() as i32, 2) };
    assert_eq!(child.wait().unwrap().code(), Some(130), "Ctrl-C must end an image of a silent stdin");
    drop(stdin);
    assert!(ok(&["cat", vol.to_str().unwrap()]).stdout == data, "what arrived before Ctrl-C is kept");
    let o = run(&["verify", "--json", vol.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.code() == Some(8) && v["failed"] == 0 && v["passed"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
fn cat_of_several_images_asks_which_with_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    std::fs::write(&a, corpus(100_000, 1)).unwrap();
    std::fs::write(&b, corpus(100_000, 2)).unwrap();
    let vol = dir.path().join("v.aff4");
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), a.to_str().unwrap(), b.to_str().unwrap()]);
    let o = run(&["cat", vol.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a choice to make is a usage error");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--stream") && e.contains("2 images"), "{e}");
    assert!(ok(&["cat", "--stream", "b.bin", vol.to_str().unwrap()]).stdout == corpus(100_000, 2));
    // isf offers the same choice, with the same code; `-s` is --split only, never --stream.
    let o = run(&["isf", "-o", dir.path().join("s.json").to_str().unwrap(), vol.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("choose the image with --stream"), "{e}");
    assert_eq!(run(&["cat", "-s", "b.bin", vol.to_str().unwrap()]).status.code(), Some(2));
    // ls shows each image's recorded hash in full.
    let ls = String::from_utf8_lossy(&ok(&["ls", vol.to_str().unwrap()]).stdout).into_owned();
    for f in [&a, &b] {
        assert!(ls.contains(&format!("hash SHA256 {}", sha256(f))), "{ls}");
    }
}

#[test]
fn help_texts_put_object_storage_flags_only_where_they_apply() {
    let help = |sub: &str| String::from_utf8_lossy(&ok(&[sub, "--help"]).stdout).into_owned();
    for sub in ["ls", "info", "view", "cat", "export", "isf", "verify", "acquire", "image"] {
        let h = help(sub);
        let heading = h.find("Object storage (s3:// volumes):");
        let flag = h.find("--s3-endpoint");
        if cfg!(feature = "s3") {
            assert!(heading.is_some_and(|at| flag > Some(at)), "{sub}: the S3 flags under their own heading: {h}");
        } else {
            assert!(flag.is_none(), "{sub}: {h}");
        }
    }
    for sub in ["driver", "recover"] {
        assert!(!help(sub).contains("--s3-"), "{sub} never reads an s3:// volume");
    }
    let top = String::from_utf8_lossy(&ok(&["--help"]).stdout).into_owned();
    assert!(top.contains("Usage: pmem <COMMAND>") && !top.contains("--s3-"), "{top}");
    if cfg!(all(feature = "fuse", target_os = "linux")) {
        assert!(help("mount").contains("Usage: pmem mount [OPTIONS] <VOLUME>... <MOUNTPOINT>"), "{}", help("mount"));
    }
}

#[test]
fn errors_say_the_path_once_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("x.aff4");
    let o = run(&["ls", missing.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert_eq!(e.matches(missing.to_str().unwrap()).count(), 1, "the path once: {e}");
    // An output that exists: what the command offers.
    let input = dir.path().join("in.bin");
    std::fs::write(&input, corpus(50_000, 3)).unwrap();
    let vol = dir.path().join("v.aff4");
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    let o = run(&["cat", "-o", input.to_str().unwrap(), vol.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cat never replaces a file"), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    ok(&["export", "-D", out.to_str().unwrap(), vol.to_str().unwrap()]);
    let o = run(&["export", "-D", out.to_str().unwrap(), vol.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("(use -t to replace it)"), "{}", String::from_utf8_lossy(&o.stderr));
    // Imaging onto a file that is not a volume: exit 4, and what -t would do.
    let o = run(&["image", "-q", "-o", input.to_str().unwrap(), vol.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("cannot add to an existing file that is not a volume (-t replaces it)") && e.contains("not an AFF4 volume"), "{e}");
    assert_eq!(e.matches(input.to_str().unwrap()).count(), 1, "{e}");
    // A mount point that is not there is said to be missing (before FUSE is involved).
    if cfg!(target_os = "linux") {
        let o = run(&["mount", vol.to_str().unwrap(), dir.path().join("mnt").to_str().unwrap()]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{e}");
        assert!(e.contains("does not exist"), "{e}");
    }
}

#[test]
fn a_directory_of_other_files_never_becomes_a_volume() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, corpus(70_000, 5)).unwrap();
    let i = input.to_str().unwrap();
    // The case directory itself (it holds in.bin): refused, nothing written into it.
    let o = run(&["image", "-q", "-o", dir.path().to_str().unwrap(), i]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("not a directory volume") && e.contains("NAME.aff4"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing added beside in.bin");
    // An empty directory, a new path ending in /, and an existing directory volume (appended to) all work.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let fresh = format!("{}/", dir.path().join("fresh").display());
    for out in [empty.to_str().unwrap(), fresh.as_str(), fresh.as_str()] {
        ok(&["image", "-q", "-o", out, i]);
    }
    let listed = String::from_utf8_lossy(&ok(&["ls", "--json", &fresh]).stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v["images"].as_array().map(Vec::len), Some(2), "the second run appended: {listed}");
    assert!(ok(&["cat", empty.to_str().unwrap()]).stdout == corpus(70_000, 5));
}
