//! Helpers for the CLI tests: run the built binary, find the shared tools and Python oracles.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pmem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pmem"))
}

pub fn run(args: &[&str]) -> Output {
    let o = pmem().args(args).output().expect("run pmem");
    o
}

pub fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(o.status.success(), "pmem {args:?} failed: {}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    o
}

pub fn shared() -> PathBuf {
    let p = std::env::var_os("PMEM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        p.join("README.md").is_file(),
        "the shared test material is not at {}: the tests need the directory beside the checkout (../shared: \
         reference images, the VM rig, corpus generators, the pyaff4 installer), or $PMEM_SHARED pointing at it",
        p.display()
    );
    p
}

pub fn refimg(rel: &str) -> PathBuf {
    shared().join("aff4-reference-images").join(rel)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with pyaff4 0.34 (and rdflib, snappy, lz4 for the verifier). In CI it must exist.
pub fn python() -> Option<PathBuf> {
    let cands = [
        std::env::var_os("PMEM_PYAFF4_PYTHON").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pyaff4-venv/bin/python")),
    ];
    for c in cands.into_iter().flatten() {
        if c.exists() {
            return Some(c);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI: the pyaff4 venv is missing (set PMEM_PYAFF4_PYTHON)");
    }
    eprintln!("note: pyaff4 venv not found; interop checks skipped (run ../shared/tools/install-pyaff4.sh)");
    None
}

pub fn sha256(p: &Path) -> String {
    let data = std::fs::read(p).unwrap();
    aff4::hash::hex(&aff4::HashAlgo::Sha256.digest(&data))
}

pub fn sha256_bytes(b: &[u8]) -> String {
    aff4::hash::hex(&aff4::HashAlgo::Sha256.digest(b))
}

/// Deterministic pseudo-random bytes (xorshift), some compressible text, some zeros.
pub fn corpus(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let kind = (x >> 7) % 4;
        let run = 4096.min(len - v.len());
        for i in 0..run {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(match kind {
                0 => 0,
                1 => b"the quick brown fox jumps over the lazy dog "[i % 44],
                _ => x as u8,
            });
        }
    }
    v
}

/// Whether `pmem mount` can work here (root and /dev/fuse); required in CI.
pub fn fuse_available() -> bool {
    let ok = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse").is_ok();
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: /dev/fuse cannot be opened; mount tests need root and /dev/fuse");
    }
    ok
}

/// A running `pmem mount`, unmounted (by SIGINT, as Ctrl-C would) when dropped.
pub struct Mounted {
    pub child: std::process::Child,
    pub dir: PathBuf,
}

impl Mounted {
    /// Mounts `volumes` on `dir` and waits until the tree is visible.
    pub fn new(volumes: &[&Path], dir: &Path) -> Mounted {
        std::fs::create_dir_all(dir).unwrap();
        let child = pmem().arg("mount").args(volumes).arg(dir).spawn().unwrap();
        let mut m = Mounted { child, dir: dir.to_path_buf() };
        for _ in 0..200 {
            if dir.join("information.turtle").exists() {
                return m;
            }
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("pmem mount exited early: {st}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("mount did not appear on {}", dir.display());
    }

    /// Ends the mount with SIGINT and returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        // SAFETY: plain syscall on our own child.
        unsafe { kill(self.child.id() as i32, 2) };
        self.child.wait().unwrap()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// A 16 MiB NTFS volume image (mkntfs) holding `content` as `\pagefile.sys` (ntfscp), or None
/// when ntfs-3g's tools are missing (required in CI; scripts/test.sh installs them).
pub fn ntfs_volume(dir: &Path, content: &[u8]) -> Option<PathBuf> {
    let have = Command::new("sh").arg("-c").arg("command -v mkntfs && command -v ntfscp").output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(std::env::var_os("CI").is_none(), "CI: mkntfs/ntfscp missing (scripts/test.sh installs ntfs-3g)");
        eprintln!("note: ntfs-3g tools missing; pagefile tests skipped");
        return None;
    }
    let img = dir.join("ntfs.img");
    std::fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
    let o = Command::new("mkntfs").args(["-F", "-f", "-q"]).arg(&img).output().unwrap();
    assert!(o.status.success(), "mkntfs: {}", String::from_utf8_lossy(&o.stderr));
    let src = dir.join("pagefile.src");
    std::fs::write(&src, content).unwrap();
    let o = Command::new("ntfscp").arg(&img).arg(&src).arg("pagefile.sys").output().unwrap();
    assert!(o.status.success(), "ntfscp: {}", String::from_utf8_lossy(&o.stderr));
    Some(img)
}

/// A LiME file with one range at `start` holding `data`.
pub fn lime_file(path: &Path, start: u64, data: &[u8]) {
    let mut v = Vec::new();
    for x in [
        0x4C69_4D45u32.to_le_bytes().as_slice(),
        &1u32.to_le_bytes(),
        &start.to_le_bytes(),
        &(start + data.len() as u64 - 1).to_le_bytes(),
        &[0; 8],
    ] {
        v.extend_from_slice(x);
    }
    v.extend_from_slice(data);
    std::fs::write(path, v).unwrap();
}

/// `pmem verify --json` on a volume whose hashes all pass but whose evidence is incomplete
/// (interrupted, unreadable ranges): asserts exit 8 and no failure; returns the JSON.
pub fn verify_incomplete(vol: &Path) -> serde_json::Value {
    let o = run(&["verify", "--json", vol.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(8), "{v}");
    assert_eq!((&v["verdict"], v["failed"].as_u64(), v["errors"].as_u64()), (&serde_json::json!("incomplete"), Some(0), Some(0)), "{v}");
    v
}

/// An RSA-2048 key and a self-signed certificate for it, made by openssl.
pub fn keypair(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let (key, cert) = (dir.join(format!("{name}-key.pem")), dir.join(format!("{name}-cert.pem")));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", &format!("/CN={name}/O=pmem tests")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match o {
        Ok(o) if o.status.success() => Some((key, cert)),
        _ if std::env::var_os("CI").is_some() => panic!("CI: openssl is needed to make test certificates"),
        _ => {
            eprintln!("note: openssl not found; encryption tests skipped");
            None
        }
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where `needle` last occurs in `hay`: in a volume pmem wrote, the closing metadata (journal
/// snapshots with the same text come before it).
pub fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// How many times `needle` occurs in `hay` (overlaps counted).
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}
