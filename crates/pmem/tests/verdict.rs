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
    let name_at = find_last(&src, b"information.turtle").unwrap();
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
    assert!(err.contains("truncated AFF4 volume (no end record)") && err.contains("pmem recover"), "{err}");
}

/// An interrupted image verifies its hashed part but is incomplete (exit 8), and ls says where
/// it stopped; bytes after the last directory (a cut append) make a volume incomplete too.
#[test]
fn interrupted_images_and_cut_appends_are_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (input, vol) = imaged(d, 3 << 20, 5);
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
    let at = find_last(&bytes, b"\"Completed Normally\"").unwrap();
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

/// `in.bin` (`len` bytes of the corpus) imaged into `v.aff4` under `d`.
fn imaged(d: &Path, len: usize, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    let input = d.join("in.bin");
    std::fs::write(&input, corpus(len, seed)).unwrap();
    let vol = d.join("v.aff4");
    ok(&["image", "-q", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    (input, vol)
}

/// A file system of `mib` MiB (tmpfs), unmounted on drop; None where mounting is not allowed.
struct SmallDisk(std::path::PathBuf);
impl SmallDisk {
    fn new(at: &Path, mib: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mib}M"), "tmpfs"]).arg(at).status().ok()?;
        if !st.success() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: mounting a tmpfs must work");
            eprintln!("note: cannot mount a tmpfs (not root?): full-disk test skipped");
            return None;
        }
        Some(SmallDisk(at.to_path_buf()))
    }
}
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// `len` bytes of xorshift output: a stored volume of them is as large as they are.
fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn state_and_stop(vol: &Path) -> (String, u64) {
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    let images = ls["images"].as_array().unwrap();
    let st = images.last().unwrap_or_else(|| panic!("no image in {}: {ls}", vol.display()))["state"].as_str().unwrap().to_string();
    let at = st.strip_prefix("interrupted at byte ").and_then(|n| n.parse().ok()).unwrap_or(0);
    (st, at)
}

/// A full disk: a new volume is closed with every complete bevy (the rest recorded as unknown,
/// exit 4, verify 8), an append keeps the old image intact, room is left on the disk, and no
/// temporary file stays behind.
#[test]
fn a_full_disk_closes_the_volume_with_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    // Incompressible, so the stored volume is as large as the input.
    let data = incompressible(200 << 20, 0x2545_F491_4F6C_DD1D);
    std::fs::write(&input, &data).unwrap();
    let Some(disk) = SmallDisk::new(&dir.path().join("disk"), 100) else { return };
    let vol = disk.0.join("new.aff4");
    let (c, _, err) = code(&["image", "-q", "-c", "stored", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    assert!(err.contains("closed with what had been stored"), "{err}");
    let (st, at) = state_and_stop(&vol);
    assert!(at >= 32 << 20 && at % (32 << 20) == 0, "at least one whole bevy kept: {st}");
    let got = ok(&["cat", "--length", &at.to_string(), vol.to_str().unwrap()]).stdout;
    assert!(got == data[..at as usize], "the kept bytes are the input's");
    assert_eq!(code(&["verify", "-q", vol.to_str().unwrap()]).0, Some(8));
    let free = memview::outdir::OutDir::create(&disk.0).unwrap().free_bytes().unwrap();
    assert!(free >= 1 << 20, "room was kept for closing: {free} bytes free");

    // An append on the full disk: the old image stays as it was, the new one is closed as above.
    std::fs::remove_file(&vol).unwrap();
    let small = dir.path().join("small.bin");
    std::fs::write(&small, &data[..5 << 20]).unwrap();
    ok(&["image", "-q", "-c", "stored", "-o", vol.to_str().unwrap(), small.to_str().unwrap()]);
    let first = ok(&["cat", vol.to_str().unwrap()]).stdout;
    let (c, _, err) = code(&["image", "-q", "-c", "stored", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    let images = ls["images"].as_array().unwrap();
    let old = images.iter().find(|i| i["state"] == "complete").unwrap_or_else(|| panic!("{ls}"));
    assert!(ok(&["cat", "--stream", old["urn"].as_str().unwrap(), vol.to_str().unwrap()]).stdout == first, "the old image is intact");
    assert_eq!(code(&["verify", "-q", vol.to_str().unwrap()]).0, Some(8));

    // -t on the full disk: no temporary file is left, and what is there opens.
    let _ = code(&["image", "-q", "-t", "-c", "stored", "-o", vol.to_str().unwrap(), input.to_str().unwrap()]);
    let names: Vec<String> = std::fs::read_dir(&disk.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["new.aff4".to_string()], "{names:?}");
    assert_ne!(code(&["verify", "-q", vol.to_str().unwrap()]).0, Some(3), "the volume must open");

    // A memory acquisition on the full disk: the memory stored so far is kept, the rest unknown.
    std::fs::remove_file(&vol).unwrap();
    let lime = dir.path().join("mem.lime");
    lime_file(&lime, 0x100000, &data);
    let (c, _, err) =
        code(&["acquire", "-q", "--no-extras", "-c", "stored", "--source", lime.to_str().unwrap(), "-o", vol.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    assert!(err.contains("closed with the memory stored so far"), "{err}");
    let (st, at) = state_and_stop(&vol);
    assert!(at > 0x100000, "{st}");
    let kept = (at - 0x100000) as usize;
    let got = ok(&["cat", "--offset", "1048576", "--length", &kept.to_string(), vol.to_str().unwrap()]).stdout;
    assert!(got == data[..kept], "the kept memory is the source's");
    assert_eq!(code(&["verify", "-q", vol.to_str().unwrap()]).0, Some(8));

    // A directory volume on the full disk: closed with its complete bevies; the bevy being
    // written is removed, not left as a partial file.
    std::fs::remove_file(&vol).unwrap();
    let dv = format!("{}/", disk.0.join("dirvol").display());
    let (c, _, err) = code(&["image", "-q", "-c", "stored", "-o", &dv, input.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    let (st, at) = state_and_stop(Path::new(&dv));
    assert!(at >= 32 << 20, "{st}");
    let got = ok(&["cat", "--length", &at.to_string(), &dv]).stdout;
    assert!(got == data[..at as usize], "the kept bytes are the input's");
    assert_eq!(code(&["verify", "-q", &dv]).0, Some(8));
    let mut stack = vec![std::path::PathBuf::from(&dv)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
                assert!(p.with_extension("index").exists(), "a bevy without its index was left: {}", p.display());
            }
        }
    }
}

/// A directory volume holding one Image over a Map with one entry of `len` bytes to `target`.
#[cfg(unix)]
fn symbolic_volume(dir: &Path, len: u64, target: &str) -> std::path::PathBuf {
    let v = dir.join(format!("sym-{len}"));
    let m = v.join("aff4%3A%2F%2Fmap");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(v.join("container.description"), "aff4://vol").unwrap();
    std::fs::write(v.join("version.txt"), "major=1\nminor=0\ntool=test\n").unwrap();
    let mut entry = Vec::new();
    for x in [0u64, len, 0] {
        entry.extend_from_slice(&x.to_le_bytes());
    }
    entry.extend_from_slice(&0u32.to_le_bytes());
    std::fs::write(m.join("map"), entry).unwrap();
    std::fs::write(m.join("idx"), format!("{target}\n")).unwrap();
    std::fs::write(
        v.join("information.turtle"),
        format!(
            "@prefix aff4: <http://aff4.org/Schema#> .\n<aff4://img> a aff4:Image ; aff4:size {len} ; aff4:dataStream <aff4://map> ; aff4:originalFileName \"big.raw\" .\n<aff4://map> a aff4:Map ; aff4:size {len} .\n"
        ),
    )
    .unwrap();
    v
}

/// Export never escapes its directory (a planted symlink is not followed), makes 0700
/// directories, replaces with -t through a temporary file, writes declared zeros as holes
/// without reading them, and refuses an export that cannot fit before writing anything.
#[test]
#[cfg(unix)]
fn export_stays_inside_and_never_fills_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (input, vol) = imaged(d, 1 << 20, 2);
    let out = d.join("out");
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    // The image's recorded name is the absolute input path: its first component under out/.
    let first = input.components().nth(1).unwrap().as_os_str().to_owned();
    std::os::unix::fs::symlink(&elsewhere, out.join(&first)).unwrap();
    let (c, _, err) = code(&["export", "-D", out.to_str().unwrap(), vol.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    assert!(err.contains("refusing to follow"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing may be written through the symlink");
    std::fs::remove_file(out.join(&first)).unwrap();
    // SAFETY: umask only changes this test process's file creation mask (pmem inherits it).
    let old = unsafe { libc::umask(0) };
    let o = run(&["export", "-D", out.to_str().unwrap(), vol.to_str().unwrap()]);
    unsafe { libc::umask(old) };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    let exported = out.join(input.strip_prefix("/").unwrap());
    assert_eq!(std::fs::metadata(out.join(&first)).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(&exported).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read(&exported).unwrap() == std::fs::read(&input).unwrap());
    // -t replaces through a temporary file: a hard link to the old file keeps the old bytes.
    std::fs::hard_link(&exported, d.join("old-link")).unwrap();
    std::fs::write(d.join("old-link"), b"old").unwrap();
    ok(&["export", "-t", "-D", out.to_str().unwrap(), vol.to_str().unwrap()]);
    assert_eq!(std::fs::read(d.join("old-link")).unwrap(), b"old", "-t must not truncate in place");
    assert!(std::fs::read(&exported).unwrap() == std::fs::read(&input).unwrap());

    // 2^62 bytes of 0xFF cannot fit: refused at once, nothing written.
    let ff = symbolic_volume(d, 1 << 62, "http://aff4.org/Schema#FFDevice");
    let out2 = d.join("out2");
    let t = std::time::Instant::now();
    let (c, _, err) = code(&["export", "-D", out2.to_str().unwrap(), ff.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    assert!(err.contains("are free under"), "{err}");
    assert!(!out2.join("big.raw").exists());
    // 64 GiB of declared zeros: a sparse file of that length, written in moments.
    let zero = symbolic_volume(d, 64 << 30, "http://aff4.org/Schema#Zero");
    ok(&["export", "-D", out2.to_str().unwrap(), zero.to_str().unwrap()]);
    let m = std::fs::metadata(out2.join("big.raw")).unwrap();
    assert_eq!(m.len(), 64 << 30);
    use std::os::unix::fs::MetadataExt;
    assert!(m.blocks() * 512 < 1 << 20, "declared zeros must be holes");
    assert!(t.elapsed() < std::time::Duration::from_secs(20), "{:?}", t.elapsed());
    // verify refuses to hash an implausible 2^62 bytes instead of running for days.
    let t = std::time::Instant::now();
    let _ = code(&["verify", ff.to_str().unwrap()]);
    let _ = code(&["info", ff.to_str().unwrap()]);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

/// A disk too small even for the room a volume keeps for closing: the command fails (exit 4,
/// "the disk is full") and leaves no file behind, plain or encrypted.
#[test]
fn a_disk_with_no_room_to_close_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, corpus(8 << 20, 12)).unwrap();
    let mnt = dir.path().join("tiny");
    let Some(_disk) = SmallDisk::new(&mnt, 3) else { return };
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    for extra in [&[][..], &["--encrypt-password-file", pw.to_str().unwrap()][..]] {
        let vol = mnt.join("v.aff4");
        let args: Vec<&str> = ["image", "-q", "-o", vol.to_str().unwrap()]
            .into_iter()
            .chain(extra.iter().copied())
            .chain([input.to_str().unwrap()])
            .collect();
        let o = run(&args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{e}");
        assert!(e.contains("the disk is full"), "{e}");
        let left: Vec<_> = std::fs::read_dir(&mnt).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{extra:?}: left behind {left:?}");
    }
}

/// A full disk under an encrypted volume: the outer volume is closed with its complete bevies,
/// the volume inside them cannot be (its end never reached the disk), and `recover` with the
/// key rebuilds it: the bytes that came back are the input's, and verify says incomplete.
#[test]
fn an_encrypted_volume_on_a_full_disk_is_recovered_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, cert)) = keypair(dir.path(), "analyst") else { return };
    let input = dir.path().join("in.bin");
    let data = incompressible(48 << 20, 0x9E37_79B9_7F4A_7C15);
    std::fs::write(&input, &data).unwrap();
    let Some(disk) = SmallDisk::new(&dir.path().join("disk"), 24) else { return };
    let (vol, fixed) = (disk.0.join("enc.aff4"), dir.path().join("fixed.aff4"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (c, _, err) =
        code(&["image", "-q", "-c", "stored", "--chunks-per-bevy", "64", "--encrypt-to", &s(&cert), "-o", &s(&vol), &s(&input)]);
    assert_eq!(c, Some(4), "{err}");
    assert!(vol.exists(), "the outer volume stays: {err}");
    assert_ne!(code(&["verify", "-q", "--key", &s(&key), &s(&vol)]).0, Some(0), "an unclosed inner volume is never OK");
    let o = ok(&["recover", "--json", "--key", &s(&key), &s(&vol), "-o", &s(&fixed)]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let im = &r["recovered_images"][0];
    let good = im["lost_from"].as_u64().or(im["size"].as_u64()).unwrap() as usize;
    assert!(good >= 2 << 20, "whole bevies came back: {r}");
    let back = ok(&["cat", "--key", &s(&key), "--stream", im["image"].as_str().unwrap(), &s(&fixed)]).stdout;
    assert!(back[..good] == data[..good], "the recovered bytes are the input's");
    assert_eq!(code(&["verify", "-q", "--key", &s(&key), &s(&fixed)]).0, Some(8));
}

/// RAW stored in place on a full disk: the member is closed where the room to close the volume
/// began, with the memory that reached it (exit 4, verify 8, `cat` gives the source's bytes up
/// to there); in a directory volume the plain file keeps what the file system took.
#[test]
fn an_in_place_image_on_a_full_disk_keeps_what_reached_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = incompressible(80 << 20, 0x9E37_79B9_7F4A_7C15);
    let lime = dir.path().join("mem.lime");
    lime_file(&lime, 0x100000, &data);
    let Some(disk) = SmallDisk::new(&dir.path().join("disk"), 40) else { return };
    for out in [disk.0.join("raw.aff4").display().to_string(), format!("{}/", disk.0.join("rawdir").display())] {
        let (c, _, err) = code(&["acquire", "-q", "--no-extras", "--format", "raw", "--source", lime.to_str().unwrap(), "-o", &out]);
        assert_eq!(c, Some(4), "{out}: {err}");
        assert!(err.contains("closed with the memory stored so far"), "{err}");
        let (st, at) = state_and_stop(Path::new(&out));
        assert!(at > 16 << 20, "{out}: most of the disk's room held memory: {st}");
        let kept = (at - 0x100000) as usize;
        let got = ok(&["cat", "--offset", "1048576", "--length", &kept.to_string(), &out]).stdout;
        assert!(got == data[..kept], "{out}: the kept memory is the source's");
        assert_eq!(code(&["verify", "-q", &out]).0, Some(8), "{out}");
        if out.ends_with(".aff4") {
            std::fs::remove_file(&out).unwrap();
        } else {
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}
