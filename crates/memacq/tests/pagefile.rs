//! `-p` pagefiles read out of NTFS with the raw reader: a fragmented pagefile written by
//! ntfs-3g comes back byte-identical, also through reads of whole sectors only; clusters that
//! fail to read are reported as unreadable 4 KiB pieces and everything else is intact.
//! Needs ntfs-3g's tools (mkntfs, ntfs-3g) and root for the mount that fragments the file;
//! scripts/test.sh installs them (required in CI).

#![allow(clippy::unwrap_used)]

use memacq::pagefile::{read_ntfs_file, Aligned, NtfsFileInfo};
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tools() -> bool {
    let have = |c: &str| Command::new("sh").arg("-c").arg(format!("command -v {c}")).output().is_ok_and(|o| o.status.success());
    let ok = have("mkntfs") && have("ntfs-3g") && std::path::Path::new("/dev/fuse").exists();
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: mkntfs/ntfs-3g or /dev/fuse missing (scripts/test.sh installs ntfs-3g)");
    }
    if !ok {
        eprintln!("note: ntfs-3g tools missing; NTFS pagefile tests skipped");
    }
    ok
}

/// Deterministic incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A 64 MiB NTFS volume (4 KiB clusters) nearly full of 1 MiB files, every other one deleted,
/// then `\pagefile.sys` (20 MiB) written into the holes: a file in many fragments.
pub fn fragmented_volume(dir: &Path) -> (PathBuf, Vec<u8>) {
    let img = dir.join("ntfs.img");
    std::fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    let o = Command::new("mkntfs").args(["-F", "-f", "-q", "-c", "4096"]).arg(&img).output().unwrap();
    assert!(o.status.success(), "mkntfs: {}", String::from_utf8_lossy(&o.stderr));
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let o = Command::new("ntfs-3g").arg(&img).arg(&mnt).output().unwrap();
    assert!(o.status.success(), "ntfs-3g: {}", String::from_utf8_lossy(&o.stderr));
    let filler = vec![b'x'; 1 << 20];
    let mut n = 0;
    while std::fs::write(mnt.join(format!("f{n}")), &filler).is_ok() && n < 60 {
        n += 1;
    }
    for i in (0..n).step_by(2) {
        std::fs::remove_file(mnt.join(format!("f{i}"))).unwrap();
    }
    let content = noise(20 << 20, 7);
    let w = std::fs::write(mnt.join("pagefile.sys"), &content);
    let u = Command::new("umount").arg(&mnt).status().unwrap();
    w.unwrap();
    assert!(u.success());
    (img, content)
}

/// A reader that accepts only whole-sector reads at sector offsets (as Windows raw volumes do)
/// and fails every read that touches `bad`.
struct Disk {
    inner: Cursor<Vec<u8>>,
    bad: std::ops::Range<u64>,
}

impl Read for Disk {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let p = self.inner.position();
        assert!(p.is_multiple_of(512) && b.len().is_multiple_of(512), "a read of {} bytes at {p} is not whole sectors", b.len());
        if p < self.bad.end && p + b.len() as u64 > self.bad.start {
            return Err(io::Error::other("injected media error"));
        }
        self.inner.read(b)
    }
}

impl Seek for Disk {
    fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
        self.inner.seek(p)
    }
}

#[test]
fn fragmented_pagefile_reads_back_identically_and_bad_clusters_are_isolated() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (img, content) = fragmented_volume(dir.path());
    let disk = std::fs::read(&img).unwrap();

    // The file really is in pieces: consecutive 4 KiB blocks that are not adjacent on disk.
    let clusters: std::collections::HashMap<&[u8], usize> =
        (0..disk.len() / 4096).map(|c| (&disk[c * 4096..c * 4096 + 64], c * 4096)).collect();
    let locate = |k: usize| clusters[&content[k * 4096..k * 4096 + 64]];
    let breaks = (1..content.len() / 4096).filter(|&k| locate(k) != locate(k - 1) + 4096).count();
    assert!(breaks >= 5, "only {breaks} fragment boundaries; the test volume is not fragmented");

    // A clean read, through sector-aligned reads only.
    let mut fs = Aligned::new(Disk { inner: Cursor::new(disk.clone()), bad: 0..0 }, 512);
    let mut got = Vec::new();
    let mut info = NtfsFileInfo::default();
    read_ntfs_file(&mut fs, "ntfs.img", r"\PAGEFILE.SYS", &mut info, &mut |info, read| {
        got = vec![0u8; info.size as usize];
        for (i, b) in got.chunks_mut(1 << 20).enumerate() {
            assert_eq!(read((i as u64) << 20, b).unwrap(), b.len());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(info.size, content.len() as u64);
    assert!(got == content, "pagefile differs");
    assert!(info.times.iter().any(|(k, _)| *k == "lastWritten"));

    // Two bad 4 KiB clusters in the middle of a fragment.
    let k = (2560..content.len() / 4096 - 2).find(|&k| locate(k) + 4096 == locate(k + 1)).unwrap();
    let at = locate(k) as u64;
    let mut fs = Aligned::new(Disk { inner: Cursor::new(disk), bad: at..at + 8192 }, 512);
    let mut got = vec![0xAAu8; content.len()];
    let mut bad = Vec::new();
    // Read cluster by cluster out of order (the capture engine's retries after a failed
    // block): each read seeks through the data runs on its own.
    read_ntfs_file(&mut fs, "ntfs.img", r"\pagefile.sys", &mut NtfsFileInfo::default(), &mut |_, read| {
        for (i, b) in got.chunks_mut(4096).enumerate().rev() {
            let off = i as u64 * 4096;
            if read(off, b).is_err() {
                bad.push((off, b.len()));
            }
        }
        bad.reverse();
        Ok(())
    })
    .unwrap();
    assert_eq!(bad, vec![(k as u64 * 4096, 4096), (k as u64 * 4096 + 4096, 4096)]);
    let r = k * 4096..k * 4096 + 8192;
    assert!(got[..r.start] == content[..r.start] && got[r.end..] == content[r.end..]);

    // Missing paths and non-files are errors that name the volume and the path.
    let mut fs = Aligned::new(std::fs::File::open(&img).unwrap(), 512);
    for (path, what) in [(r"\nope\pagefile.sys", "nope: no such file"), (r"\pagefile.sys\x", "not a directory"), ("/", "is a directory")] {
        let e = read_ntfs_file(&mut fs, "ntfs.img", path, &mut NtfsFileInfo::default(), &mut |_, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("ntfs.img") && e.contains(what), "{path}: {e}");
    }
    // A truncated copy of the volume is an error, not a panic.
    let mut fs = Aligned::new(Cursor::new(std::fs::read(&img).unwrap()[..3 << 20].to_vec()), 512);
    assert!(read_ntfs_file(&mut fs, "cut.img", r"\pagefile.sys", &mut NtfsFileInfo::default(), &mut |_, _| Ok(())).is_err());
}
