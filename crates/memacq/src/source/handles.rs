//! One open file per reading thread. A memory device may copy through one buffer per open
//! file (Linux 6.1's /proc/kcore does: `file->private_data`), so two reads at once through the
//! same file return each other's bytes. A read here takes a file that no other read is using,
//! opening the path again when every file is busy; where the path cannot be opened again, or
//! now names another file, it waits for one to come free. Reads never share a file.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

/// At most this many files of one path are opened: more reads at once wait for one.
const MAX_OPEN: usize = 64;

/// The open files of one path (see the module documentation).
pub struct Handles {
    path: PathBuf,
    /// The first file's identity (device, inode): a file opened later must be the same one.
    id: Option<(u64, u64)>,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<File>,
    opened: usize,
    /// Opening the path again failed once: reads now wait for a file.
    no_reopen: bool,
}

impl Handles {
    /// The files of `path`, starting with `first` (already opened from it).
    pub fn new(path: impl Into<PathBuf>, first: File) -> Handles {
        let id = identity(&first);
        Handles {
            path: path.into(),
            id,
            state: Mutex::new(State { idle: vec![first], opened: 1, no_reopen: id.is_none() }),
            freed: Condvar::new(),
        }
    }

    /// Whether reads can run at once, each on its own file (false where a file's identity
    /// cannot be checked: they then take turns on one).
    pub fn concurrent(&self) -> bool {
        self.id.is_some()
    }

    /// Runs `f` on a file that no other read is using.
    pub fn with<R>(&self, f: impl FnOnce(&File) -> R) -> R {
        let file = self.take();
        let r = f(&file);
        self.lock().idle.push(file);
        self.freed.notify_one();
        r
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self) -> File {
        let mut st = self.lock();
        loop {
            if let Some(f) = st.idle.pop() {
                return f;
            }
            if !st.no_reopen && st.opened < MAX_OPEN {
                st.opened += 1;
                drop(st);
                match self.reopen() {
                    Some(f) => return f,
                    None => {
                        st = self.lock();
                        st.opened -= 1;
                        st.no_reopen = true;
                        continue;
                    }
                }
            }
            st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The path opened again, if it is still the first file.
    fn reopen(&self) -> Option<File> {
        let f = File::open(&self.path).ok()?;
        (identity(&f) == self.id).then_some(f)
    }
}

#[cfg(unix)]
fn identity(f: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &File) -> Option<(u64, u64)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::os::unix::io::AsRawFd;
    use std::sync::Arc;

    /// Reads from many threads at once never share a file, and each file is the path's.
    #[test]
    fn reads_at_once_each_get_their_own_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("mem");
        std::fs::write(&p, b"abcdefgh").unwrap_or_else(|e| panic!("{e}"));
        let h = Arc::new(Handles::new(&p, File::open(&p).unwrap_or_else(|e| panic!("{e}"))));
        assert!(h.concurrent());
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let all = Arc::new(Mutex::new(HashSet::new()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (h, busy, all) = (h.clone(), busy.clone(), all.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        h.with(|f| -> std::io::Result<()> {
                            let fd = f.as_raw_fd();
                            assert!(busy.lock().unwrap_or_else(|p| p.into_inner()).insert(fd), "file {fd} read by two threads at once");
                            all.lock().unwrap_or_else(|p| p.into_inner()).insert(fd);
                            let mut b = [0u8; 4];
                            memformat::segments::pread_exact(f, 2, &mut b)?;
                            assert_eq!(&b, b"cdef");
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&fd);
                            Ok(())
                        })
                        .unwrap_or_else(|e| panic!("{e}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap_or_else(|_| panic!("a reading thread panicked"));
        }
        let n = all.lock().unwrap_or_else(|p| p.into_inner()).len();
        assert!(n > 1 && n <= 8, "{n} files opened for 8 threads");
    }

    /// A path that now names another file is not opened again: reads take turns on the first.
    #[test]
    fn a_replaced_path_is_not_reopened() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("mem");
        std::fs::write(&p, b"first").unwrap_or_else(|e| panic!("{e}"));
        let h = Arc::new(Handles::new(&p, File::open(&p).unwrap_or_else(|e| panic!("{e}"))));
        std::fs::remove_file(&p).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&p, b"other").unwrap_or_else(|e| panic!("{e}"));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let mut b = [0u8; 5];
                        h.with(|f| memformat::segments::pread_exact(f, 0, &mut b)).unwrap_or_else(|e| panic!("{e}"));
                        assert_eq!(&b, b"first");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap_or_else(|_| panic!("a reading thread panicked"));
        }
        assert_eq!(h.lock().opened, 1);
    }
}
