//! Files only a live system can give: every regular file mapped by a running process (its
//! executable, libraries and mmap'd data), read through `/proc/PID/map_files/` and
//! `/proc/PID/exe` so that files already deleted from the disk come too, deduplicated by device
//! and inode; and the whole `/boot`. Dumping them from memory later is unreliable (pages are
//! missing), so an acquisition takes them while it can.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How much to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are listed, not captured.
    pub per_file: u64,
    /// Capture stops (the rest listed) once this much has been taken.
    pub total: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_file: 256 << 20, total: 2 << 30 }
    }
}

/// One file to capture, with what is known about who maps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFile {
    /// Where to open it: a `/proc/PID/map_files/…` link, `/proc/PID/exe`, or a path under /boot.
    pub open: PathBuf,
    /// The paths it is known by (without the kernel's " (deleted)").
    pub paths: BTreeSet<String>,
    /// The processes that map it.
    pub pids: BTreeSet<u32>,
    /// The kernel says it was deleted from the disk.
    pub deleted: bool,
    /// (major, minor, inode) as /proc/PID/maps gives them; None for /boot files.
    pub id: Option<(u32, u32, u64)>,
}

/// One line of /proc/PID/maps that maps a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    /// `START-END` as written (the name of its /proc/PID/map_files link).
    pub range: String,
    /// Device major and minor.
    pub dev: (u32, u32),
    /// Inode.
    pub inode: u64,
    /// The path, without " (deleted)".
    pub path: String,
    /// The kernel marked the path deleted.
    pub deleted: bool,
}

/// The file mappings of one /proc/PID/maps text (anonymous mappings and pseudo-files skipped).
pub fn parse_maps(text: &str) -> Vec<MapsEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode pathname (the path may hold spaces)
        let mut rest = line;
        let mut field = || {
            let t = rest.trim_start();
            let end = t.find(' ').unwrap_or(t.len());
            let (f, r) = t.split_at(end);
            rest = r;
            f
        };
        let (range, _perms, _offset, dev, inode) = (field(), field(), field(), field(), field());
        let path = rest.trim_start();
        let Some((maj, min)) = dev.split_once(':') else { continue };
        let (Ok(maj), Ok(min), Ok(inode)) = (u32::from_str_radix(maj, 16), u32::from_str_radix(min, 16), inode.parse::<u64>()) else {
            continue;
        };
        if inode == 0 || !path.starts_with('/') {
            continue;
        }
        // maps pads addresses to 8 digits, map_files names them without padding.
        let Some((Ok(start), Ok(end))) = range.split_once('-').map(|(a, b)| (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)))
        else {
            continue;
        };
        let (path, deleted) = match path.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (path, false),
        };
        out.push(MapsEntry { range: format!("{start:x}-{end:x}"), dev: (maj, min), inode, path: path.to_string(), deleted });
    }
    out
}

/// Every regular file mapped by a process under `proc_root` (normally `/proc`), one entry per
/// (device, inode), with the first way found to open it. Processes that go away, or whose maps
/// cannot be read, are skipped.
pub fn scan(proc_root: &Path) -> Vec<MappedFile> {
    let mut by_id: BTreeMap<(u32, u32, u64), MappedFile> = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(proc_root) else { return Vec::new() };
    let mut pids: Vec<u32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    let me = std::process::id();
    for pid in pids {
        if pid == me {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        let Ok(maps) = std::fs::read_to_string(dir.join("maps")) else { continue };
        for e in parse_maps(&maps) {
            let id = (e.dev.0, e.dev.1, e.inode);
            let f = by_id.entry(id).or_insert_with(|| MappedFile {
                open: dir.join("map_files").join(&e.range),
                paths: BTreeSet::new(),
                pids: BTreeSet::new(),
                deleted: false,
                id: Some(id),
            });
            f.paths.insert(e.path.clone());
            f.pids.insert(pid);
            f.deleted |= e.deleted;
        }
    }
    by_id.into_values().collect()
}

/// The regular files under `dir` (recursively, symlinks not followed), sorted.
pub fn files_under(dir: &Path) -> Vec<MappedFile> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                todo.push(p);
            } else if t.is_file() {
                let path = p.display().to_string();
                out.push(MappedFile { open: p, paths: BTreeSet::from([path]), pids: BTreeSet::new(), deleted: false, id: None });
            }
        }
    }
    out.sort_by(|a, b| a.paths.cmp(&b.paths));
    out
}

/// Device major and minor of a Linux `st_dev`.
pub fn dev_parts(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_give_files_with_their_ids() {
        let text = "\
55d0c5a00000-55d0c5a02000 r--p 00000000 fe:01 1234                       /usr/bin/cat
55d0c5a02000-55d0c5a06000 r-xp 00002000 fe:01 1234                       /usr/bin/cat
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f1000000000-7f1000001000 r--s 00000000 00:1a 99                         /tmp/my data.bin (deleted)
00400000-00401000 r-xp 00000000 00:01 7                                  /tmp/victim (deleted)
7ffd0000-7ffd1000 r-xp 00000000 00:00 0                                  [vdso]
garbage line
";
        let e = parse_maps(text);
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!((e[3].range.as_str(), e[3].deleted), ("400000-401000", true), "named as map_files names it");
        assert_eq!((e[0].dev, e[0].inode, e[0].path.as_str(), e[0].deleted), ((0xfe, 1), 1234, "/usr/bin/cat", false));
        assert_eq!((e[2].range.as_str(), e[2].path.as_str(), e[2].deleted), ("7f1000000000-7f1000001000", "/tmp/my data.bin", true));
    }

    #[test]
    fn device_numbers_split_as_the_kernel_packs_them() {
        assert_eq!(dev_parts(0xfe01), (0xfe, 1));
        assert_eq!(dev_parts((259 << 8) | 3), (259, 3));
        assert_eq!(dev_parts(0x1a), (0, 0x1a));
    }
}
