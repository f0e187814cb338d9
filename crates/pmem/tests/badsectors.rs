//! `pmem image` of an input with unreadable sectors: the input here is a file served by a small
//! FUSE filesystem in this test that fails reads touching a chosen range with EIO (device-mapper's
//! `error` target is not available on these machines). The block that fails is retried sector by
//! sector; exactly the failing sectors become aff4:UnreadableData, everything else is intact, and
//! the volume verifies. Needs root and /dev/fuse (required in CI).

#![allow(clippy::unwrap_used)]
#![cfg(all(target_os = "linux", feature = "fuse"))]

mod util;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, ReplyAttr,
    ReplyData, ReplyEntry, ReplyOpen, Request,
};
use std::ffi::OsStr;
use std::time::{Duration, SystemTime};
use util::*;

struct BadDisk {
    data: Vec<u8>,
    bad: std::ops::Range<u64>,
}

impl BadDisk {
    fn attr(&self, ino: u64) -> FileAttr {
        let dir = ino == 1;
        FileAttr {
            ino: INodeNo(ino),
            size: if dir { 0 } else { self.data.len() as u64 },
            blocks: 0,
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind: if dir { FileType::Directory } else { FileType::RegularFile },
            perm: if dir { 0o555 } else { 0o444 },
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }
}

impl Filesystem for BadDisk {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == 1 && name == "disk" {
            reply.entry(&Duration::ZERO, &self.attr(2), Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }
    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        reply.attr(&Duration::ZERO, &self.attr(ino.0));
    }
    fn open(&self, _: &Request, _: INodeNo, _: OpenFlags, reply: ReplyOpen) {
        // Direct I/O: every read reaches us with the reader's offset and size.
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }
    fn read(&self, _: &Request, _: INodeNo, _: FileHandle, off: u64, size: u32, _: OpenFlags, _: Option<LockOwner>, reply: ReplyData) {
        let end = (off + size as u64).min(self.data.len() as u64);
        if off >= end {
            return reply.data(&[]);
        }
        if off < self.bad.end && end > self.bad.start {
            return reply.error(Errno::EIO);
        }
        reply.data(&self.data[off as usize..end as usize]);
    }
}

#[test]
fn unreadable_sectors_become_unreadable_data_and_the_rest_is_intact() {
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let data = corpus(10 << 20, 31);
    // Two sectors in the middle of the third 4 MiB read block.
    let bad = (9 << 20) + 3 * 4096..(9 << 20) + 5 * 4096;
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![MountOption::RO, MountOption::FSName("baddisk".into())];
    let session = fuser::spawn_mount(BadDisk { data: data.clone(), bad: bad.clone() }, &mnt, &cfg).unwrap();
    let out = dir.path().join("d.aff4");
    let o = ok(&["image", "--json", "-o", out.to_str().unwrap(), mnt.join("disk").to_str().unwrap()]);
    drop(session);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let img = &j["images"][0];
    assert_eq!(img["unreadable_bytes"].as_u64(), Some(8192), "{j}");
    verify_incomplete(&out);
    let ttl = String::from_utf8(ok(&["view", out.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains("Completed with read errors") && ttl.contains("aff4:unreadableBytes"), "{ttl}");
    let got = ok(&["cat", out.to_str().unwrap()]).stdout;
    let (s, e) = (bad.start as usize, bad.end as usize);
    assert_eq!(got.len(), data.len());
    assert!(got[..s] == data[..s] && got[e..] == data[e..], "readable bytes differ");
    assert!(got[s..e] != data[s..e], "the unreadable sectors read back as the original bytes");
}
