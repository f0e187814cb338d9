//! `pmem acquire` on a fake /proc (../shared/bench/make_kcore.py): every format and source
//! gives the same physical view, and the pmem-style invocation works.

#![allow(clippy::unwrap_used)]

mod util;
use std::path::Path;
use std::process::Command;
use util::*;

struct Fake {
    _dir: tempfile::TempDir,
    kcore: String,
    iomem: String,
    devmem: String,
    physical: Vec<u8>,
    root: std::path::PathBuf,
}

/// Runs ../shared/bench/make_kcore.py in `d` on its corpus.bin and ranges.json.
fn make_kcore(d: &Path) {
    let o = Command::new("python3")
        .arg(shared().join("bench/make_kcore.py"))
        .args(["corpus.bin", "ranges.json", "kcore", "iomem"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A fake kcore + iomem for three RAM ranges with a hole, and a /dev/mem-like flat file.
fn fake() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = corpus(6 << 20, 77);
    std::fs::write(d.join("corpus.bin"), &data).unwrap();
    let ranges = [(0x1000u64, 0x9e000u64, 0u64), (0x100000, 0x400000, 0x9e000), (0x800000, (6 << 20) - 0x49e000, 0x49e000)];
    let json = format!(
        "[{}]",
        ranges
            .iter()
            .map(|(p, l, f)| format!("{{\"phys_start\": {p}, \"length\": {l}, \"file_offset\": {f}}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    std::fs::write(d.join("ranges.json"), json).unwrap();
    make_kcore(d);
    let end = ranges.iter().map(|(p, l, _)| p + l).max().unwrap();
    let mut physical = vec![0u8; end as usize];
    for (p, l, f) in ranges {
        physical[p as usize..(p + l) as usize].copy_from_slice(&data[f as usize..(f + l) as usize]);
    }
    std::fs::write(d.join("mem"), &physical).unwrap();
    let s = |n: &str| d.join(n).display().to_string();
    Fake { kcore: s("kcore"), iomem: s("iomem"), devmem: s("mem"), physical, root: d.to_path_buf(), _dir: dir }
}

fn acquire(f: &Fake, out: &Path, extra: &[&str]) {
    let mut args = vec!["acquire", "-q", "--no-extras", "-o", out.to_str().unwrap(), "--kcore-path", &f.kcore, "--iomem-path", &f.iomem];
    args.extend_from_slice(extra);
    ok(&args);
    let v: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", out.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

fn raw_export(vol: &Path, dir: &Path) -> Vec<u8> {
    let d = dir.join(format!("raw-{}", vol.file_name().unwrap().to_string_lossy()));
    ok(&["export", "-D", d.to_str().unwrap(), "--format", "raw", vol.to_str().unwrap()]);
    std::fs::read(exported(&d, "raw")).unwrap()
}

/// The file of format `ext` in export directory `d` (the read timeline is beside it).
fn exported(d: &Path, ext: &str) -> std::path::PathBuf {
    std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == ext)).unwrap()
}

#[test]
fn every_format_and_source_gives_the_physical_view() {
    let f = fake();
    let want = &f.physical;
    // map (default), via kcore.
    let map = f.root.join("map.aff4");
    acquire(&f, &map, &["--source", "kcore"]);
    assert!(&ok(&["cat", map.to_str().unwrap()]).stdout == want);
    // raw: the same view, stored in full.
    let raw = f.root.join("raw.aff4");
    acquire(&f, &raw, &["--source", "kcore", "--format", "raw"]);
    assert!(&ok(&["cat", raw.to_str().unwrap()]).stdout == want);
    // elf: the image's bytes are an ELF core; exporting raw gives the physical view back.
    let elf = f.root.join("elf.aff4");
    acquire(&f, &elf, &["--source", "kcore", "--format", "elf"]);
    let core = ok(&["cat", elf.to_str().unwrap()]).stdout;
    assert_eq!(&core[..4], b"\x7fELF");
    assert!(&raw_export(&elf, &f.root) == want);
    // /dev/mem and /dev/crash read by physical offset.
    for (src, flag) in [("mem", "--mem-path"), ("crash", "--crash-path")] {
        let v = f.root.join(format!("{src}.aff4"));
        acquire(&f, &v, &["--source", src, flag, &f.devmem]);
        assert!(&ok(&["cat", v.to_str().unwrap()]).stdout == want, "{src}");
    }
    // auto falls back from a missing kcore and says so nowhere fatal.
    let auto = f.root.join("auto.aff4");
    acquire(&f, &auto, &["--kcore-path", "/nonexistent/kcore", "--crash-path", "/nonexistent/crash", "--mem-path", &f.devmem]);
    assert!(&ok(&["cat", auto.to_str().unwrap()]).stdout == want);
    let t = String::from_utf8(ok(&["view", auto.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("(devmem)"), "{t}");
    // pmem/linpmem style: `pmem -o mem.aff4 -c snappy -t`.
    let compat = f.root.join("compat.aff4");
    ok(&["-o", compat.to_str().unwrap(), "-c", "snappy", "-t", "-q", "--no-extras", "--kcore-path", &f.kcore, "--iomem-path", &f.iomem]);
    assert!(&ok(&["cat", compat.to_str().unwrap()]).stdout == want);
}

#[test]
fn no_source_is_explained_with_its_exit_code() {
    let f = fake();
    let o = run(&[
        "acquire",
        "-o",
        f.root.join("x.aff4").to_str().unwrap(),
        "--kcore-path",
        "/nonexistent/kcore",
        "--crash-path",
        "/nonexistent/crash",
        "--mem-path",
        "/nonexistent/mem",
        "--iomem-path",
        &f.iomem,
    ]);
    assert_eq!(o.status.code(), Some(5));
    let e = String::from_utf8_lossy(&o.stderr);
    for p in ["/nonexistent/kcore", "/nonexistent/crash", "/nonexistent/mem", "does not exist"] {
        assert!(e.contains(p), "{e}");
    }
}

/// System RAM that /proc/iomem lists but kcore does not map is acquired as unreadable, with a
/// note saying why, instead of being left out as if it were not there.
#[test]
fn ram_that_kcore_does_not_map_is_recorded_as_unreadable() {
    let f = fake();
    let iomem = f.root.join("iomem-more");
    let mut text = std::fs::read_to_string(&f.iomem).unwrap();
    text.push_str("10000000-1000ffff : System RAM\n");
    // RAM that ends inside a page, as 0x1000-0x9fbff does on a PC: kcore maps no part of it.
    text.push_str("10020000-10020bff : System RAM\n");
    std::fs::write(&iomem, text).unwrap();
    let v = f.root.join("m.aff4");
    let o = ok(&[
        "acquire",
        "--json",
        "--no-extras",
        "-o",
        v.to_str().unwrap(),
        "--kcore-path",
        &f.kcore,
        "--iomem-path",
        iomem.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["unreadable_pages"], 17, "{r}");
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes.len() == 1
            && notes[0].as_str().unwrap().contains("68608 bytes of System RAM")
            && notes[0].as_str().unwrap().contains("0x10000000-0x10010000,0x10020000-0x10020c00"),
        "{r}"
    );
    let t = String::from_utf8(ok(&["view", v.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("aff4:acquisitionNote") && t.contains("Completed with read errors"), "{t}");
    let info = String::from_utf8(ok(&["info", v.to_str().unwrap()]).stdout).unwrap();
    assert!(info.contains("note          68608 bytes of System RAM"), "{info}");
    let verify = verify_incomplete(&v);
    assert!(verify["findings"].as_array().unwrap().iter().any(|f| f["message"].as_str().unwrap().contains("unreadable")), "{verify}");
    // The mapped RAM reads back as before; the unmapped range is unreadable, not zeros.
    let got = ok(&["cat", v.to_str().unwrap()]).stdout;
    assert!(got[..f.physical.len()] == f.physical[..], "the mapped RAM differs");
    let tail = &got[0x10000000..0x10000010];
    assert!(tail.iter().any(|&b| b != 0), "the unmapped RAM must read as aff4:UnreadableData, not zeros: {tail:?}");
    // The partial page is in the image, unreadable, up to where the RAM ends.
    assert_eq!(got.len(), 0x10020c00, "the image ends where the last RAM ends");
    assert!(find(&got[0x10020000..0x10020040], b"UNREADABLEDATA").is_some(), "the partial page reads as the unreadable pattern");
}

/// `--progress-json`: every stderr line is a JSON object; the memory phase ends with all of it
/// done, then the pagefile, then "finished"; `pmem image` reports its input the same way.
#[test]
fn progress_as_json_lines() {
    let f = fake();
    let swap = f.root.join("swap");
    std::fs::write(&swap, corpus(3 << 20, 5)).unwrap();
    let v = f.root.join("m.aff4");
    let o = ok(&[
        "acquire",
        "--progress-json",
        "--no-extras",
        "-o",
        v.to_str().unwrap(),
        "--kcore-path",
        &f.kcore,
        "--iomem-path",
        &f.iomem,
        "-p",
        swap.to_str().unwrap(),
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let phases: Vec<&str> = lines.iter().map(|l| l["phase"].as_str().unwrap()).collect();
    let last_memory = lines.iter().rfind(|l| l["phase"] == "memory").unwrap();
    assert_eq!(last_memory["done"], last_memory["total"], "{lines:?}");
    assert!(phases.contains(&"pagefile") && phases.last() == Some(&"finished"), "{phases:?}");
    assert!(lines.iter().all(|l| l["elapsed"].is_number()));

    let img = f.root.join("i.aff4");
    let o = ok(&["image", "--progress-json", "-o", img.to_str().unwrap(), swap.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(o.stderr).unwrap().lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = lines.last().unwrap();
    assert!(last["phase"] == "image" && last["done"] == 3 << 20 && last["total"] == 3 << 20, "{lines:?}");
}

#[test]
fn extras_are_captured_with_the_image() {
    let f = fake();
    let v = f.root.join("x.aff4");
    let hosts = f.root.join("note.txt");
    std::fs::write(&hosts, b"analyst note\n").unwrap();
    ok(&["acquire", "-q", "-o", v.to_str().unwrap(), "--kcore-path", &f.kcore, "--iomem-path", &f.iomem, "-i", hosts.to_str().unwrap()]);
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", v.to_str().unwrap()]).stdout).unwrap();
    let names: Vec<&str> = ls["images"].as_array().unwrap().iter().filter_map(|i| i["name"].as_str()).collect();
    assert!(names.contains(&"/proc/cmdline") && names.iter().any(|n| n.ends_with("note.txt")), "{names:?}");
    // information.yaml beside the memory map.
    let t = String::from_utf8(ok(&["view", v.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("aff4:memoryRanges") && t.contains("memory:physical"));
    let c = aff4::Container::open(&[&v]).unwrap();
    let mem = c.images().into_iter().find(|i| i.memory).unwrap();
    let yaml = c.open_stream(&format!("{}/information.yaml", mem.data_streams[0])).unwrap().read_all(1 << 20).unwrap();
    let y = String::from_utf8(yaml).unwrap();
    assert!(y.contains("Runs:") && y.contains("start: 0x100000"), "{y}");
}

/// A fake kcore (as make_kcore.py lays it out) and iomem for one RAM range of zeros at 4 KiB,
/// `len` bytes, as a sparse file: no disk used whatever its size.
fn sparse_kcore(d: &Path, len: u64) {
    let (phys, hdr) = (4096u64, 0x2000u64);
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    for v in [4u16, 62] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&1u32.to_le_bytes());
    for v in [0u64, 64, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&7u32.to_le_bytes());
    for v in [phys + hdr, 0xffff_8880_0000_0000 + phys, phys, len, len, 0x1000] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    let f = std::fs::File::create(d.join("kcore")).unwrap();
    std::io::Write::write_all(&mut &f, &h).unwrap();
    f.set_len(phys + hdr + len).unwrap();
    std::fs::write(d.join("iomem"), format!("00000000-00000fff : Reserved\n{phys:08x}-{:08x} : System RAM\n", phys + len - 1)).unwrap();
}

#[test]
fn sigint_closes_an_incomplete_volume_that_verifies() {
    // A large sparse fake kcore (32 GiB of zeros) so that the signal arrives mid-way; the exit
    // is prompt because the unread rest is not hashed.
    // Also stored in place (--format raw): the member ends where the reading stopped.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sparse_kcore(d, 32 << 30);
    for format in ["map", "raw"] {
        let vol = d.join(format!("{format}.aff4"));
        let mut child = pmem()
            // A linear hash (not the default for memory): the prefix hash of an interrupted run.
            .args([
                "acquire",
                "-q",
                "--no-extras",
                "--hash",
                "sha256",
                "--format",
                format,
                "-o",
                vol.to_str().unwrap(),
                "--source",
                "kcore",
            ])
            .arg("--kcore-path")
            .arg(d.join("kcore"))
            .arg("--iomem-path")
            .arg(d.join("iomem"))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        // SAFETY: kill with a valid pid and signal.
        unsafe { kill(child.id() as i32, 2) };
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(130), "exit code after SIGINT");
        let v = verify_incomplete(&vol);
        let t = String::from_utf8(ok(&["view", vol.to_str().unwrap()]).stdout).unwrap();
        assert!(t.contains("Interrupted: incomplete"), "metadata must say the image is incomplete");
        // The hash covers what was read (the unread rest is not hashed, so the exit is prompt).
        let prefix: Vec<&serde_json::Value> =
            v["checks"].as_array().unwrap().iter().filter(|c| c["what"].as_str().unwrap().starts_with("aff4:prefixHash SHA256")).collect();
        assert!(prefix.len() == 1 && prefix[0]["status"] == "pass", "{v}");
        assert!(t.contains("aff4:prefixHashLength"), "{t}");
        let info = String::from_utf8(ok(&["info", vol.to_str().unwrap()]).stdout).unwrap();
        assert!(info.contains("hash          SHA256[.."), "pmem info shows the partial hash as such:\n{info}");
        if format == "raw" {
            let len = std::fs::metadata(&vol).unwrap().len();
            assert!(len < 1 << 30, "{format}: the member stops where the reading did ({len} bytes)");
        }
    }
}

/// Ctrl-C while a pagefile is being read: the memory image stays complete, the pagefile is kept
/// up to where it stopped, the volume verifies and the exit code is 130.
#[test]
fn sigint_during_a_pagefile_keeps_the_memory_and_exits_130() {
    let f = fake();
    // A sparse 64 GiB swap file (zeros: no disk): far too long to finish before the signal, and
    // the exit is prompt because the unread rest is not hashed.
    let swap = f.root.join("swapfile");
    std::fs::File::create(&swap).unwrap().set_len(64 << 30).unwrap();
    let vol = f.root.join("m.aff4");
    let mut child = pmem()
        .args([
            "acquire",
            "-q",
            "--no-extras",
            "--hash",
            "sha256",
            "-o",
            vol.to_str().unwrap(),
            "--kcore-path",
            &f.kcore,
            "--iomem-path",
            &f.iomem,
        ])
        .arg("-p")
        .arg(&swap)
        .spawn()
        .unwrap();
    // The pagefile is opened once the memory is done: wait for pmem to hold it open.
    let fds = std::path::PathBuf::from(format!("/proc/{}/fd", child.id()));
    let holds_swap =
        || std::fs::read_dir(&fds).into_iter().flatten().flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == swap));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !holds_swap() {
        assert!(child.try_wait().unwrap().is_none(), "pmem ended before reading the pagefile");
        assert!(std::time::Instant::now() < deadline, "pmem never opened the pagefile");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    // SAFETY: kill with a valid pid and signal.
    unsafe { kill(child.id() as i32, 2) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130), "exit code after SIGINT during the pagefile");
    let v = verify_incomplete(&vol);
    let t = String::from_utf8(ok(&["view", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains("Completed Normally"), "the memory was complete before the signal:\n{t}");
    assert!(t.contains("Interrupted: incomplete: stopped at byte"), "the pagefile's state:\n{t}");
    // The memory image has its full hash, the pagefile a hash of what was read.
    let what: Vec<&str> = v["checks"].as_array().unwrap().iter().filter_map(|c| c["what"].as_str()).collect();
    assert!(what.iter().any(|w| w.starts_with("aff4:hash SHA256 (linear, virtual image)")), "{what:?}");
    assert!(what.iter().any(|w| w.starts_with("aff4:prefixHash SHA256 (first ")), "{what:?}");
    // The memory reads back whole.
    assert!(ok(&["cat", vol.to_str().unwrap()]).stdout == f.physical, "the memory image differs from the fake RAM");
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// `pmem mount`: the memory image as raw, ELF and LiME files with the bytes `pmem export` writes,
/// other captured files under their names, the metadata, read-only, ended by Ctrl-C.
#[test]
fn mount_serves_the_export_formats_read_only() {
    if !fuse_available() {
        eprintln!("note: /dev/fuse unavailable; mount test skipped");
        return;
    }
    let f = fake();
    let vol = f.root.join("m.aff4");
    let note = f.root.join("note.txt");
    std::fs::write(&note, b"captured alongside\n").unwrap();
    acquire(&f, &vol, &["--source", "kcore", "-i", note.to_str().unwrap()]);
    let ex = f.root.join("ex");
    for fmt in ["raw", "elf", "lime"] {
        ok(&["export", "-D", ex.to_str().unwrap(), "--format", fmt, vol.to_str().unwrap()]);
    }
    let mnt = f.root.join("mnt");
    let mut m = Mounted::new(&[&vol], &mnt);
    let dirs: Vec<_> = std::fs::read_dir(&mnt).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("memory.raw").exists()).collect();
    assert_eq!(dirs.len(), 1, "one memory image directory");
    for fmt in ["raw", "elf", "lime"] {
        let exported = exported(&ex, fmt);
        assert_eq!(sha256(&dirs[0].join(format!("memory.{fmt}"))), sha256(&exported), "memory.{fmt} differs from pmem export");
    }
    // Random access inside the raw view.
    use std::io::{Read, Seek, SeekFrom};
    let mut raw = std::fs::File::open(dirs[0].join("memory.raw")).unwrap();
    raw.seek(SeekFrom::Start(0x12345)).unwrap();
    let mut b = vec![0u8; 70000];
    raw.read_exact(&mut b).unwrap();
    assert!(b == f.physical[0x12345..0x12345 + 70000]);
    // The extra file under its recorded path, and the metadata.
    let rel = note.to_str().unwrap().trim_start_matches('/');
    assert_eq!(std::fs::read(mnt.join(rel)).unwrap(), b"captured alongside\n");
    let turtle = std::fs::read_to_string(mnt.join("information.turtle")).unwrap();
    assert!(turtle.contains("MemoryImage"), "{turtle}");
    // Read-only.
    let e = std::fs::OpenOptions::new().write(true).open(dirs[0].join("memory.raw")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(30), "EROFS expected: {e}");
    assert!(std::fs::write(mnt.join("new"), b"x").is_err());
    // Ctrl-C unmounts cleanly.
    assert!(m.stop().success());
    assert!(!mnt.join("information.turtle").exists(), "still mounted after SIGINT");
}

/// `e_machine` of an ELF file's header.
fn e_machine(elf: &[u8]) -> u16 {
    assert_eq!(&elf[..4], b"\x7fELF");
    u16::from_le_bytes([elf[0x12], elf[0x13]])
}

/// The fake kcore declared as an arm64 kernel's (e_machine 183, EM_AARCH64).
fn as_arm64(f: &Fake) {
    let mut k = std::fs::read(&f.kcore).unwrap();
    assert_eq!(e_machine(&k), 62);
    k[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&f.kcore, k).unwrap();
}

/// ELF cores carry the memory's architecture: taken from kcore (or an imported core), recorded
/// in the volume, used by `export --format elf` and `acquire --format elf`; a LiME import,
/// which cannot say, records none and exports as x86-64 as before.
#[test]
fn the_architecture_is_recorded_and_exported() {
    let f = fake();
    let mem_elf = |vol: &Path, name: &str| {
        let d = f.root.join(format!("elf-{name}"));
        ok(&["export", "-D", d.to_str().unwrap(), "--format", "elf", vol.to_str().unwrap()]);
        std::fs::read(exported(&d, "elf")).unwrap()
    };
    let x86 = f.root.join("x86.aff4");
    acquire(&f, &x86, &["--source", "kcore"]);
    let ttl = String::from_utf8(ok(&["view", x86.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains(r#"aff4:architecture "x86_64""#), "{ttl}");
    let x86_elf = mem_elf(&x86, "x86");
    assert_eq!(e_machine(&x86_elf), 62);

    as_arm64(&f);
    let arm = f.root.join("arm.aff4");
    acquire(&f, &arm, &["--source", "kcore"]);
    let ttl = String::from_utf8(ok(&["view", arm.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains(r#"aff4:architecture "aarch64""#), "{ttl}");
    let arm_elf = mem_elf(&arm, "arm");
    assert_eq!(e_machine(&arm_elf), 183);
    assert!(arm_elf[0x14..] == x86_elf[0x14..], "only e_machine differs");
    let arm_core = f.root.join("arm-core.aff4");
    acquire(&f, &arm_core, &["--source", "kcore", "--format", "elf"]);
    assert_eq!(e_machine(&ok(&["cat", arm_core.to_str().unwrap()]).stdout), 183);
    let info = String::from_utf8(ok(&["info", arm.to_str().unwrap()]).stdout).unwrap();
    assert!(info.contains("aarch64"), "{info}");
    // arm64 symbol tables are built (tests/vm.rs), but this fake kernel's memory is x86-64's:
    // the error says what is missing instead of refusing the architecture.
    let o = run(&["isf", arm.to_str().unwrap(), "-o", f.root.join("isf.json").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("x86-64") && err.contains("not captured in this volume"), "{err}");

    // Converting the arm64 core keeps its architecture; a LiME file has none to keep.
    let core_file = f.root.join("arm.elf");
    std::fs::write(&core_file, &arm_elf).unwrap();
    let conv = f.root.join("conv.aff4");
    ok(&["acquire", "-q", "--source", core_file.to_str().unwrap(), "-o", conv.to_str().unwrap()]);
    assert_eq!(e_machine(&mem_elf(&conv, "conv")), 183);
    let lime = f.root.join("m.lime");
    lime_file(&lime, 0x100000, &f.physical[0x100000..0x500000]);
    let from_lime = f.root.join("lime.aff4");
    ok(&["acquire", "-q", "--source", lime.to_str().unwrap(), "-o", from_lime.to_str().unwrap()]);
    let ttl = String::from_utf8(ok(&["view", from_lime.to_str().unwrap()]).stdout).unwrap();
    assert!(!ttl.contains("aff4:architecture"), "{ttl}");
    assert_eq!(e_machine(&mem_elf(&from_lime, "lime")), 62);
}

/// The aarch64 build and qemu-user to run it (scripts/test.sh builds it; required in CI).
fn aarch64() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let bin = std::env::var_os("PMEM_AARCH64_BIN").map(std::path::PathBuf::from).filter(|p| p.exists());
    let qemu = std::env::var_os("PMEM_QEMU_AARCH64").map(std::path::PathBuf::from).filter(|p| p.exists());
    match (qemu, bin) {
        (Some(q), Some(b)) => Some((q, b)),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI: PMEM_AARCH64_BIN and PMEM_QEMU_AARCH64 are not set; scripts/test.sh sets them")
        }
        _ => {
            eprintln!("note: PMEM_AARCH64_BIN/PMEM_QEMU_AARCH64 not set; aarch64 test skipped (scripts/test.sh sets them)");
            None
        }
    }
}

/// The aarch64 build (static, run by qemu-user) acquires an arm64 kernel's kcore; the x86-64
/// build verifies it and reads the same bytes, and the aarch64 build verifies and reads what
/// the x86-64 build wrote.
#[test]
fn the_aarch64_build_acquires_and_both_builds_read_each_other() {
    let Some((qemu, bin)) = aarch64() else { return };
    let f = fake();
    as_arm64(&f);
    let a64 = |args: &[&str]| {
        let o = Command::new(&qemu).arg(&bin).args(args).output().unwrap();
        assert!(o.status.success(), "aarch64 pmem {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let version = String::from_utf8(a64(&["--version"])).unwrap();
    assert!(version.starts_with("pmem "), "{version}");

    let by_arm = f.root.join("by-arm.aff4");
    let j: serde_json::Value = serde_json::from_slice(&a64(&[
        "acquire",
        "--json",
        "--no-extras",
        "-o",
        by_arm.to_str().unwrap(),
        "--kcore-path",
        &f.kcore,
        "--iomem-path",
        &f.iomem,
    ]))
    .unwrap();
    assert_eq!(j["source_kind"], "kcore", "{j}");
    let v: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", by_arm.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(ok(&["cat", by_arm.to_str().unwrap()]).stdout == f.physical, "the aarch64 acquisition differs");
    let ttl = String::from_utf8(ok(&["view", by_arm.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains(r#"aff4:architecture "aarch64""#), "{ttl}");

    let by_x86 = f.root.join("by-x86.aff4");
    acquire(&f, &by_x86, &["--source", "kcore"]);
    let v: serde_json::Value = serde_json::from_slice(&a64(&["verify", "--json", by_x86.to_str().unwrap()])).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(a64(&["cat", by_x86.to_str().unwrap()]) == f.physical, "the aarch64 build reads different bytes");
}

/// When each part was read: one row per 64 MiB window of the address space that was read, in
/// the order read, each from its first read's start to its last read's end; `info` and
/// `ls --json` show it, and the export writes it beside the image.
#[test]
fn the_read_timeline_says_when_each_window_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two ranges, in windows 0 and 2 (0x8000000 is 128 MiB).
    let mut lime = Vec::new();
    for (start, len) in [(0x100000u64, 3usize << 20), (0x800_0000, 2 << 20)] {
        for x in [
            0x4C69_4D45u32.to_le_bytes().as_slice(),
            &1u32.to_le_bytes(),
            &start.to_le_bytes(),
            &(start + len as u64 - 1).to_le_bytes(),
            &[0; 8],
        ] {
            lime.extend_from_slice(x);
        }
        lime.extend_from_slice(&corpus(len, start));
    }
    let src = d.join("two.lime");
    std::fs::write(&src, &lime).unwrap();
    let vol = d.join("t.aff4");
    ok(&["acquire", "-q", "--source", src.to_str().unwrap(), "-o", vol.to_str().unwrap()]);
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    let mem = ls["images"].as_array().unwrap().iter().find(|i| i["memory"] == true).unwrap();
    let t = &mem["read_timeline"];
    assert_eq!((t["windows"].as_u64(), t["window"].as_u64()), (Some(2), Some(64 << 20)), "{t}");
    let info = String::from_utf8(ok(&["info", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(info.contains("read times    2 window(s) of 64.0 MiB"), "{info}");
    let ex = d.join("ex");
    ok(&["export", "-D", ex.to_str().unwrap(), "--format", "lime", vol.to_str().unwrap()]);
    let urn = mem["urn"].as_str().unwrap().trim_start_matches("aff4://");
    let table: serde_json::Value = serde_json::from_slice(&std::fs::read(ex.join(format!("{urn}.read-timeline.json"))).unwrap()).unwrap();
    let rows: Vec<(u64, u64, u64)> = table["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap(), r[2].as_u64().unwrap()))
        .collect();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 0x800_0000], "{table}");
    assert!(rows.iter().all(|r| r.1 <= r.2), "each window starts before it ends: {table}");
    assert!(rows[0].1 <= rows[1].1 && rows[0].2 <= rows[1].2, "read in address order: {table}");
    assert!(table["started"].as_str().unwrap().starts_with("20"), "{table}");
}

/// The recheck reads chosen pages a second time after the main pass: a file does not change, so
/// every page is read again and none differs; the counts are in the metadata and `info`; a
/// file source refuses `--recheck` (no live kernel), and a bad range is a usage error.
#[test]
fn the_recheck_reads_pages_again_and_counts_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = corpus(4 << 20, 21);
    let lime = d.join("m.lime");
    lime_file(&lime, 0x100000, &data);
    let vol = d.join("r.aff4");
    let o = ok(&[
        "acquire",
        "--json",
        "--recheck-range",
        "0x100000-0x180000",
        "--recheck-range",
        "0x200000-0x201000",
        "--recheck-keep",
        "--source",
        lime.to_str().unwrap(),
        "-o",
        vol.to_str().unwrap(),
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &j["recheck"];
    // Zero pages are still read (and compared), all of them whole pages of the ranges.
    assert_eq!((r["pages"].as_u64(), r["changed_pages"].as_u64()), (Some(128 + 1), Some(0)), "{j}");
    let ttl = String::from_utf8(ok(&["view", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains("aff4:recheckedPages") && ttl.contains("aff4:recheckChangedPages"), "{ttl}");
    assert!(!ttl.contains("recheckSecondRead"), "nothing changed, so no second copies: {ttl}");
    let info = String::from_utf8(ok(&["info", vol.to_str().unwrap()]).stdout).unwrap();
    assert!(info.contains("recheck       129 pages read again after the pass"), "{info}");
    let (c, err) = {
        let o = run(&["acquire", "-q", "--recheck", "--source", lime.to_str().unwrap(), "-o", d.join("x.aff4").to_str().unwrap()]);
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("--recheck-range"), "{err}");
    let o = run(&[
        "acquire",
        "-q",
        "--recheck-range",
        "0x2000-0x1000",
        "--source",
        lime.to_str().unwrap(),
        "-o",
        d.join("y.aff4").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.join("x.aff4").exists() && !d.join("y.aff4").exists(), "refused before writing");
}

/// pyaff4's block-hash validator accepts what pmem writes with block hashes: acquisitions with
/// their defaults (SHA-256 block hashes, the Block-Map hash as the image's aff4:hash, extras
/// as logical files), with a linear hash added too (it then goes on the map), and disk images
/// asked for block hashes; and a corrupted chunk is found by both pyaff4 and pmem, to the chunk.
#[test]
fn block_hashes_by_default_and_pyaff4_validates_them() {
    let f = fake();
    let mem = f.root.join("mem.aff4");
    let args = ["acquire", "-q", "-o", mem.to_str().unwrap(), "--kcore-path", &f.kcore, "--iomem-path", &f.iomem];
    ok(&args);
    let both = f.root.join("both.aff4");
    ok(&["acquire", "-q", "-o", both.to_str().unwrap(), "--kcore-path", &f.kcore, "--iomem-path", &f.iomem, "--hash", "sha256,md5"]);
    let disk = f.root.join("disk.aff4");
    ok(&["image", "-q", "-o", disk.to_str().unwrap(), "--block-hashes", "sha256,sha1", &f.devmem]);
    for v in [&mem, &both, &disk] {
        let j: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", v.to_str().unwrap()]).stdout).unwrap();
        let img = j["images"].as_array().unwrap().iter().find(|i| i["logical"] == false).unwrap().clone();
        let kinds: Vec<&str> = img["hashes"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"blockMapHashSHA512"), "{v:?}: {kinds:?}");
        let t = String::from_utf8(ok(&["view", v.to_str().unwrap()]).stdout).unwrap();
        // The memory image's only aff4:hash is the Block-Map hash; linear ones are on its map.
        let linear_on_image = img["urn"]
            .as_str()
            .map(|u| t.split(&format!("<{u}>")).nth(1).unwrap_or("").split(" .\n").next().unwrap_or("").contains("^^aff4:SHA256"));
        assert_eq!(linear_on_image, Some(false), "{v:?}");
        let vj: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", v.to_str().unwrap()]).stdout).unwrap();
        assert_eq!(vj["ok"], true, "{vj}");
    }
    // The memory defaults: no linear hash, and the acquisition hash in --json and information.yaml.
    let jm: serde_json::Value = serde_json::from_slice(
        &ok(&["acquire", "--json", "-t", "-o", mem.to_str().unwrap(), "--kcore-path", &f.kcore, "--iomem-path", &f.iomem]).stdout,
    )
    .unwrap();
    assert_eq!(jm["hashes"], serde_json::json!({}), "{jm}");
    let ah = jm["acquisition_hash"]["value"].as_str().unwrap().to_string();
    assert_eq!(ah.len(), 128);
    let t = String::from_utf8(ok(&["info", mem.to_str().unwrap()]).stdout).unwrap();
    assert!(t.contains(&ah) && t.contains("Block-Map hash (the acquisition hash"), "{t}");
    // Every exported file comes with the SHA-256 of its bytes, computed while writing it.
    for fmt in ["raw", "elf", "lime"] {
        let d = f.root.join(format!("ex-{fmt}"));
        let j: serde_json::Value =
            serde_json::from_slice(&ok(&["export", "-D", d.to_str().unwrap(), "--format", fmt, "--json", mem.to_str().unwrap()]).stdout)
                .unwrap_or_else(|e| panic!("{e}"));
        let files = j["files"].as_array().unwrap();
        assert!(files.len() >= 2, "the image and its read timeline: {j}");
        for x in files {
            let bytes = std::fs::read(x["path"].as_str().unwrap()).unwrap();
            assert_eq!(x["sha256"].as_str(), Some(sha256_bytes(&bytes).as_str()), "{fmt}: {x}");
            assert_eq!(x["bytes"].as_u64(), Some(bytes.len() as u64));
        }
    }
    let Some(py) = python() else { return };
    let validate = |v: &Path| Command::new(&py).arg(repo().join("tests/interop/pyaff4_validate.py")).arg(v).output().unwrap();
    for v in [&mem, &both, &disk] {
        let o = validate(v);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "pyaff4 validator on {v:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
        let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(j["valid"].as_u64().unwrap() > 10, "{j}");
    }
    // One flipped byte inside the first bevy's payload: pmem names the chunk and its bytes.
    let mut bytes = std::fs::read(&mem).unwrap();
    let at = bytes.windows(9).position(|w| w == b"/00000000").unwrap();
    let data = at + 9 + 20_000;
    bytes[data] ^= 0xff;
    let bad = f.root.join("bad.aff4");
    std::fs::write(&bad, &bytes).unwrap();
    let o = run(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("chunk(s) differ: chunk ") && text.contains("stream bytes 0x"), "{text}");
    assert!(!validate(&bad).status.success(), "pyaff4 must reject the corrupted volume too");
}

/// `--format raw` and `--format elf` store the memory in place: one uncompressed member whose
/// data starts on a page of the ZIP volume file, or a plain file of a directory volume, that
/// other tools read as it is (the raw one is the physical address space, the ELF one a core
/// whose PT_LOADs give it back), with the bytes `pmem cat` gives, a linear SHA-256 that
/// `verify` checks, pyaff4 reading the same image; split and encrypted volumes are refused.
#[test]
fn raw_and_elf_are_stored_in_place_for_other_tools() {
    let f = fake();
    for fmt in ["raw", "elf"] {
        for dir_volume in [false, true] {
            let out = if dir_volume { f.root.join(format!("{fmt}-dir/")) } else { f.root.join(format!("{fmt}.aff4")) };
            let o = out.to_str().unwrap();
            acquire(&f, &out, &["--source", "kcore", "--format", fmt]);
            let cat = ok(&["cat", o]).stdout;
            let (file, at) = if dir_volume {
                let p = std::fs::read_dir(&out)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.extension().is_some_and(|e| e == fmt))
                    .unwrap_or_else(|| panic!("no plain .{fmt} file in {o}"));
                assert!(p.file_name().unwrap().to_string_lossy().ends_with(&format!("%2Fkcore.{fmt}")), "{p:?}");
                (p, 0)
            } else {
                let z = aff4::zip::ZipArchive::open(std::sync::Arc::new(std::fs::File::open(&out).unwrap()), o).unwrap();
                let e = z.entries().iter().find(|e| e.name.ends_with(&format!("kcore.{fmt}"))).unwrap();
                assert_eq!(e.method, aff4::zip::METHOD_STORED, "{fmt}");
                let at = z.data_start(e).unwrap();
                assert_eq!(at % 4096, 0, "{fmt}: data at {at}");
                (out.clone(), at as usize)
            };
            let bytes = std::fs::read(&file).unwrap();
            assert!(bytes[at..at + cat.len()] == cat[..], "{fmt} {o}: the stored bytes are the image's");
            let info = String::from_utf8(ok(&["info", o]).stdout).unwrap();
            assert!(info.contains(&format!("in place      {} from byte {at}", file.display())), "{info}");
            if fmt == "raw" {
                assert!(cat == f.physical, "raw: the physical address space");
            } else {
                assert_eq!(&cat[..4], b"\x7fELF");
                let core = f.root.join(format!("{fmt}-{dir_volume}.core"));
                std::fs::write(&core, &cat).unwrap();
                let src = memacq::source::open_file(&core).unwrap();
                for r in src.ranges() {
                    let mut b = vec![0u8; r.len() as usize];
                    src.read_at(r.start, &mut b).unwrap();
                    assert!(b[..] == f.physical[r.start as usize..r.end as usize], "elf: PT_LOAD {r:?}");
                }
                assert!(raw_export(&out, &f.root) == f.physical);
            }
            let j: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", o]).stdout).unwrap();
            let img = j["images"].as_array().unwrap().iter().find(|i| i["logical"] == false).unwrap().clone();
            let kinds: Vec<&str> = img["hashes"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
            assert!(kinds.contains(&"SHA256"), "{fmt}: a linear SHA-256 protects it: {kinds:?}");
            // (pyaff4 0.34 opens no directory volume at all: a TypeError in its GenericFileHandler)
            if let Some(py) = python().filter(|_| !dir_volume) {
                let p = Command::new(&py).arg(repo().join("tests/interop/pyaff4_read.py")).arg(&out).output().unwrap();
                let text = String::from_utf8_lossy(&p.stdout);
                assert!(
                    text.contains(&format!(" {} {}", cat.len(), sha256_bytes(&cat))),
                    "pyaff4 {fmt} {o}: {text}{}",
                    String::from_utf8_lossy(&p.stderr)
                );
            }
        }
    }
    // An append: a second member of its own name, both images read back, verify OK.
    let raw = f.root.join("raw.aff4");
    let r = raw.to_str().unwrap();
    ok(&["acquire", "-q", "--no-extras", "-o", r, "--kcore-path", &f.kcore, "--iomem-path", &f.iomem, "--format", "raw"]);
    let z = aff4::zip::ZipArchive::open(std::sync::Arc::new(std::fs::File::open(&raw).unwrap()), r).unwrap();
    let names: Vec<&str> = z.entries().iter().map(|e| e.name.as_str()).filter(|n| n.ends_with(".raw")).collect();
    assert!(names.len() == 2 && names.iter().any(|n| n.ends_with("kcore-2.raw")), "{names:?}");
    let j: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", r]).stdout).unwrap();
    let mem: Vec<&str> =
        j["images"].as_array().unwrap().iter().filter(|i| i["memory"] == true).map(|i| i["urn"].as_str().unwrap()).collect();
    assert_eq!(mem.len(), 2, "{j}");
    for urn in mem {
        assert!(ok(&["cat", "--stream", urn, r]).stdout == f.physical, "{urn}");
    }
    assert_eq!(run(&["verify", "-q", r]).status.code(), Some(0));
    // Two acquisitions appended to one volume, each with its files of the same names (here the
    // read timeline and a changed -i file): each keeps its own, and verify says OK.
    let twice = f.root.join("twice.aff4");
    let note = f.root.join("note.txt");
    for round in 0..2 {
        std::fs::write(&note, format!("round {round}\n")).unwrap();
        let t = twice.to_str().unwrap();
        ok(&["acquire", "-q", "--no-extras", "-i", note.to_str().unwrap(), "-o", t, "--kcore-path", &f.kcore, "--iomem-path", &f.iomem]);
    }
    let o = run(&["verify", twice.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    // Mounted: memory.raw of an in-place image is the physical address space.
    if fuse_available() {
        let mnt = f.root.join("mnt-raw");
        let mut m = Mounted::new(&[&f.root.join("elf-dir/")], &mnt);
        let d = std::fs::read_dir(&mnt).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("memory.raw").exists()).unwrap();
        assert!(std::fs::read(d.join("memory.raw")).unwrap() == f.physical, "mounted memory.raw of the ELF stored in place");
        assert!(m.stop().success());
    }
    // One flipped byte in the raw member: verify says altered.
    let mut bytes = std::fs::read(&raw).unwrap();
    let z = aff4::zip::ZipArchive::open(std::sync::Arc::new(std::fs::File::open(&raw).unwrap()), "raw").unwrap();
    let e = z.entries().iter().find(|e| e.name.ends_with("kcore.raw")).unwrap();
    let at = z.data_start(e).unwrap() as usize + 0x2000;
    bytes[at] ^= 1;
    let bad = f.root.join("bad-raw.aff4");
    std::fs::write(&bad, &bytes).unwrap();
    assert_eq!(run(&["verify", "-q", bad.to_str().unwrap()]).status.code(), Some(1));
    // Where in place cannot hold: refused with the reason, before anything is written.
    let split = f.root.join("split.aff4");
    let args = ["acquire", "-q", "--no-extras", "--kcore-path", &f.kcore, "--iomem-path", &f.iomem, "--format", "raw"];
    let o = run(&[&args[..], &["--split", "2M", "-o", split.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in place"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!split.exists());
}

/// `pmem mount --live MOUNTPOINT` takes the mount point alone; without --live, volumes come
/// first; --source belongs to --live.
#[test]
fn mount_live_takes_the_mount_point_alone() {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().to_str().unwrap();
    for (args, says) in [
        (vec!["mount", "--live", "v.aff4", m], "only the mount point"),
        (vec!["mount", m], "give the volumes, then the mount point"),
        (vec!["mount", "--source", "kcore", "v.aff4", m], "--live"),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
