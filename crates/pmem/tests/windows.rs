//! pmem.exe (x86_64-pc-windows-gnu, scripts/build-windows.sh) under Wine: the reading and
//! imaging commands give the same results and hashes as the Linux build, with Windows paths.
//! Runs when PMEM_WINDOWS_EXE and PMEM_WINE are set (scripts/test.sh sets them; required in CI),
//! on a Unix host (Wine's drive letters are symlinks).

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod util;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use util::*;

fn windows() -> Option<(PathBuf, PathBuf)> {
    let exe = std::env::var_os("PMEM_WINDOWS_EXE").map(PathBuf::from).filter(|p| p.exists());
    let wine = std::env::var_os("PMEM_WINE").map(PathBuf::from).filter(|p| p.exists());
    match (exe, wine) {
        (Some(e), Some(w)) => Some((e, w)),
        _ if std::env::var_os("CI").is_some() => panic!("CI: PMEM_WINDOWS_EXE / PMEM_WINE not set; scripts/test.sh builds pmem.exe"),
        _ => {
            eprintln!("note: PMEM_WINDOWS_EXE/PMEM_WINE not set; Windows tests skipped");
            None
        }
    }
}

/// A host path as Windows sees it under Wine (drive Z: is the host's root).
fn win_path(p: &Path) -> String {
    format!("Z:{}", p.display().to_string().replace('/', "\\"))
}

fn exe(w: &(PathBuf, PathBuf), args: &[&str]) -> Output {
    let prefix = std::env::var_os("WINEPREFIX").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("pmem-wine"));
    Command::new(&w.1).arg(&w.0).args(args).env("WINEPREFIX", prefix).env("WINEDEBUG", "-all").output().unwrap()
}

fn exe_ok(w: &(PathBuf, PathBuf), args: &[&str]) -> Output {
    let o = exe(w, args);
    assert!(o.status.success(), "pmem.exe {args:?}: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    o
}

fn sha1(b: &[u8]) -> String {
    aff4::hash::hex(&aff4::HashAlgo::Sha1.digest(b))
}

#[test]
fn windows_build_reads_images_and_verifies_like_linux() {
    let Some(w) = windows() else { return };
    // The manifest's whole-image hashes, read through Windows paths.
    for (img, want) in [
        ("AFF4Std/Base-Allocated.aff4", "e8650e89b262cf0b4b73c025312488d5a6317a26"),
        ("AFF4Std/Base-Linear.aff4", "7d3d27f667f95f7ec5b9d32121622c0f4b60b48d"),
    ] {
        let p = win_path(&refimg(img));
        assert_eq!(sha1(&exe_ok(&w, &["cat", &p]).stdout), want, "{img}");
    }
    // verify and ls agree with the Linux build on every kind of volume.
    for set in [
        vec!["AFF4Std/Base-Linear-AllHashes.aff4"],
        vec!["AFF4Std/Base-Linear-ReadError.aff4"],
        vec!["AFF4Std/Striped/Base-Linear_1.aff4", "AFF4Std/Striped/Base-Linear_2.aff4"],
        vec!["AFF4PreStd/Base-Linear.af4"],
        vec!["AFF4-L/dream.aff4"],
    ] {
        let lin: Vec<String> = set.iter().map(|p| refimg(p).display().to_string()).collect();
        let win: Vec<String> = set.iter().map(|p| win_path(&refimg(p))).collect();
        let args =
            |cmd: &[&str], paths: &[String]| -> Vec<String> { cmd.iter().map(|s| s.to_string()).chain(paths.iter().cloned()).collect() };
        let a = args(&["verify", "--json"], &lin);
        let b = args(&["verify", "--json"], &win);
        // The same verdict and exit code (ReadError is incomplete, 8, on both).
        let (ol, ow) = (run(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>()), exe(&w, &b.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
        assert_eq!(ol.status.code(), ow.status.code(), "verify exit codes differ for {set:?}");
        let expected = if set[0].contains("ReadError") { 8 } else { 0 };
        assert_eq!(ol.status.code(), Some(expected), "{set:?}: {}", String::from_utf8_lossy(&ol.stdout));
        let vl: serde_json::Value = serde_json::from_slice(&ol.stdout).unwrap();
        let vw: serde_json::Value = serde_json::from_slice(&ow.stdout).unwrap();
        for k in ["ok", "verdict", "passed", "failed", "findings"] {
            assert_eq!(vl[k], vw[k], "verify {k} differs for {set:?}");
        }
        let ll: serde_json::Value =
            serde_json::from_slice(&ok(&args(&["ls", "--json"], &lin).iter().map(|s| s.as_str()).collect::<Vec<_>>()).stdout).unwrap();
        let lw: serde_json::Value =
            serde_json::from_slice(&exe_ok(&w, &args(&["ls", "--json"], &win).iter().map(|s| s.as_str()).collect::<Vec<_>>()).stdout)
                .unwrap();
        assert_eq!(ll["images"], lw["images"], "ls images differ for {set:?}");
        assert_eq!(ll["streams"], lw["streams"], "ls streams differ for {set:?}");
        let view_l = ok(&args(&["view"], &lin).iter().map(|s| s.as_str()).collect::<Vec<_>>()).stdout;
        let view_w = exe_ok(&w, &args(&["view"], &win).iter().map(|s| s.as_str()).collect::<Vec<_>>()).stdout;
        // The same metadata; only the "# volume PATH" headers name the paths differently.
        let strip = |b: &[u8]| -> String {
            String::from_utf8_lossy(b).lines().filter(|l| !l.starts_with("# volume ")).collect::<Vec<_>>().join("\n")
        };
        assert_eq!(strip(&view_l), strip(&view_w), "view differs for {set:?}");
    }
}

#[test]
fn windows_build_images_and_exports_like_linux() {
    let Some(w) = windows() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    let mut data = corpus(3 << 20, 9);
    data.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&input, &data).unwrap();
    // Windows writes, Linux reads and verifies; pyaff4-style consumers see the same stream.
    let vw = dir.path().join("w.aff4");
    exe_ok(&w, &["image", "-q", "-o", &win_path(&vw), "--hash", "sha256,md5", &win_path(&input)]);
    let v: serde_json::Value = serde_json::from_slice(&ok(&["verify", "--json", vw.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(ok(&["cat", vw.to_str().unwrap()]).stdout == data, "Linux reads the Windows-written volume back");
    // Linux writes, Windows reads and verifies.
    let vl = dir.path().join("l.aff4");
    ok(&["image", "-q", "-o", vl.to_str().unwrap(), input.to_str().unwrap()]);
    assert!(exe_ok(&w, &["cat", &win_path(&vl)]).stdout == data, "Windows reads the Linux-written volume back");
    let j: serde_json::Value = serde_json::from_slice(&exe_ok(&w, &["verify", "--json", &win_path(&vl)]).stdout).unwrap();
    assert_eq!(j["ok"], true, "{j}");
    // Appending from Windows keeps the first stream; export writes the same files as Linux.
    exe_ok(&w, &["image", "-q", "-o", &win_path(&vl), &win_path(&refimg("AFF4-L/dream.txt"))]);
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vl.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(ls["images"].as_array().unwrap().len(), 2, "{ls}");
    let (dl, dw) = (dir.path().join("exl"), dir.path().join("exw"));
    ok(&["export", "-D", dl.to_str().unwrap(), vl.to_str().unwrap()]);
    exe_ok(&w, &["export", "-D", &win_path(&dw), &win_path(&vl)]);
    let files = |d: &Path| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            walk(d).into_iter().map(|p| (p.strip_prefix(d).unwrap().display().to_string(), sha256(&p))).collect();
        v.sort();
        v
    };
    assert_eq!(files(&dl), files(&dw), "export differs between Linux and Windows");
}

fn walk(d: &Path) -> Vec<PathBuf> {
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

#[test]
fn windows_acquire_without_a_driver_names_what_is_missing() {
    let Some(w) = windows() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = exe(&w, &["acquire", "-o", &win_path(&dir.path().join("m.aff4"))]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains(r"\\.\pmem") && err.contains("--driver"), "{err}");
    assert!(!dir.path().join("m.aff4").exists());
}

/// `-p P:\pagefile.sys` under Wine: the Windows build opens the raw volume `\\.\P:` (Wine's
/// `p::` device link, here an NTFS image; `P:` itself is an empty directory, so the file cannot
/// be opened the ordinary way, as on a live Windows where pagefile.sys is locked), finds the file
/// in the MFT and reads it with sector-aligned reads. The Linux build reads it back identical.
#[test]
fn windows_acquire_reads_the_pagefile_from_the_raw_ntfs_volume() {
    let Some(w) = windows() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let page = corpus(3 << 20, 21);
    let Some(img) = ntfs_volume(d, &page) else { return };
    let mem = corpus(1 << 20, 22);
    lime_file(&d.join("mem.lime"), 0x100000, &mem);
    exe_ok(&w, &["--version"]); // creates the prefix's dosdevices
    let prefix = std::env::var_os("WINEPREFIX").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("pmem-wine"));
    let dev = prefix.join("dosdevices");
    let empty = d.join("p-drive");
    std::fs::create_dir_all(&empty).unwrap();
    let _ = std::fs::remove_file(dev.join("p::"));
    let _ = std::fs::remove_file(dev.join("p:"));
    std::os::unix::fs::symlink(&img, dev.join("p::")).unwrap();
    std::os::unix::fs::symlink(&empty, dev.join("p:")).unwrap();
    let out = d.join("w.aff4");
    let o = exe(&w, &["acquire", "--source", &win_path(&d.join("mem.lime")), "-p", r"P:\pagefile.sys", "-o", &win_path(&out), "--json"]);
    let _ = std::fs::remove_file(dev.join("p::"));
    let _ = std::fs::remove_file(dev.join("p:"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &j["pagefiles"][0];
    assert_eq!((p["name"].as_str(), p["method"].as_str()), (Some(r"P:\pagefile.sys"), Some("ntfs")), "{j}");
    // A pagefile is memory: block hashes and the Block-Map hash, no linear hash by default.
    assert!(p["acquisition_hash"]["value"].as_str().is_some_and(|h| h.len() == 128), "{j}");
    let got = ok(&["cat", "--stream", p["image"].as_str().unwrap(), out.to_str().unwrap()]).stdout;
    assert!(got == page, "the pagefile differs");
    let by_name = ok(&["cat", "--stream", "pagefile.sys", out.to_str().unwrap()]).stdout;
    assert!(by_name == page, "`cat --stream pagefile.sys` differs");
    ok(&["verify", out.to_str().unwrap()]);
}
