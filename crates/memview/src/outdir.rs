//! Files created under an export directory that can never land outside it: every component is
//! opened relative to the directory's own descriptor without following a symlink (`openat`
//! with `O_NOFOLLOW`), directories are made 0700 and files 0600, and a replacement is written
//! to a temporary file and renamed over the old one only when complete.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// An export directory, opened once.
pub struct OutDir {
    root: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// A file being written under an [`OutDir`]; [`OutFile::commit`] puts it in place.
pub struct OutFile {
    /// The open file.
    pub file: File,
    /// Where it ends up, for messages.
    pub path: PathBuf,
    pending: Option<Pending>,
}

/// A replacement written under a temporary name, renamed over the final name on commit.
#[cfg(unix)]
struct Pending {
    dir: std::os::fd::OwnedFd,
    tmp: std::ffi::CString,
    name: std::ffi::CString,
    /// Renamed into place: nothing to remove.
    done: bool,
}

/// Elsewhere a replacement is written in place.
#[cfg(not(unix))]
struct Pending;

#[cfg(unix)]
impl Drop for Pending {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if !self.done {
            // SAFETY: a valid directory descriptor and NUL-terminated name.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

impl OutFile {
    /// Puts a replacement in place (renames its temporary file over the final name).
    ///
    /// # Errors
    /// The rename fails.
    pub fn commit(self) -> io::Result<File> {
        let OutFile { file, pending, .. } = self;
        #[cfg(unix)]
        if let Some(mut p) = pending {
            use std::os::fd::AsRawFd;
            let fd = p.dir.as_raw_fd();
            // SAFETY: valid descriptor and names.
            if unsafe { libc::renameat(fd, p.tmp.as_ptr(), fd, p.name.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            p.done = true;
        }
        #[cfg(not(unix))]
        let _ = pending;
        Ok(file)
    }

    /// Splits into the file and the step that puts it in place.
    pub fn into_parts(self) -> (File, Commit) {
        let OutFile { file, path, pending } = self;
        (file, Commit { pending, path })
    }
}

/// What [`OutFile::commit`] does, kept apart from the file while it is written through a wrapper.
pub struct Commit {
    pending: Option<Pending>,
    path: PathBuf,
}

impl Commit {
    /// Renames the temporary file into place (nothing for a new file).
    ///
    /// # Errors
    /// The rename fails.
    pub fn run(self, file: File) -> io::Result<File> {
        OutFile { file, path: self.path, pending: self.pending }.commit()
    }
}

fn no_escape(rel: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a plain relative path", rel.display()))),
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty file name"));
    }
    Ok(out)
}

impl OutDir {
    /// Creates `root` (0700 for each directory made) and opens it.
    ///
    /// # Errors
    /// It cannot be created or opened, or is not a directory.
    pub fn create(root: &Path) -> io::Result<OutDir> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(root)?;
            Ok(OutDir { root: root.to_path_buf(), fd: f.into() })
        }
        #[cfg(not(unix))]
        {
            if !std::fs::metadata(root)?.is_dir() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", root.display())));
            }
            Ok(OutDir { root: root.to_path_buf() })
        }
    }

    /// The directory as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Bytes free for an unprivileged writer on the directory's file system (None if unknown).
    pub fn free_bytes(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: statvfs fills the struct for a valid descriptor.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstatvfs(self.fd.as_raw_fd(), &mut st) } == 0 {
                return Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64));
            }
        }
        None
    }

    /// Creates `rel` (a relative path of plain components) under the directory: the parent
    /// directories are made 0700 and entered without following symlinks; the file is created
    /// 0600 with `O_NOFOLLOW`, never over an existing file unless `replace`, in which case it is
    /// written under a temporary name and renamed into place by [`OutFile::commit`].
    ///
    /// # Errors
    /// A component is a symlink or not a directory, the file exists (without `replace`), or I/O.
    pub fn create_file(&self, rel: &Path, replace: bool) -> io::Result<OutFile> {
        let comps = no_escape(rel)?;
        let path = self.root.join(rel);
        #[cfg(unix)]
        {
            use std::ffi::CString;
            use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
            use std::os::unix::ffi::OsStrExt;
            let cstr = |s: &std::ffi::OsStr| {
                CString::new(s.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a file name"))
            };
            let mut dir: OwnedFd = self.fd.try_clone()?;
            let (last, parents) = comps.split_last().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty file name"))?;
            for c in parents {
                let n = cstr(c)?;
                // SAFETY: valid descriptor and NUL-terminated name.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), n.as_ptr(), 0o700) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
                // SAFETY: as above; the result is checked before use.
                let fd = unsafe {
                    libc::openat(dir.as_raw_fd(), n.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                };
                if fd < 0 {
                    let e = io::Error::last_os_error();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e} (a symlink or not a directory: refusing to follow it)", self.root.join(c).display()),
                    ));
                }
                // SAFETY: fd was just opened and is owned here.
                dir = unsafe { OwnedFd::from_raw_fd(fd) };
            }
            let name = cstr(last)?;
            let open = |n: &CString| -> io::Result<File> {
                // SAFETY: valid descriptor and name; the result is checked.
                let fd = unsafe {
                    libc::openat(
                        dir.as_raw_fd(),
                        n.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                        0o600 as libc::c_uint,
                    )
                };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: fd was just opened and is owned by the File.
                Ok(unsafe { File::from_raw_fd(fd) })
            };
            match open(&name) {
                Ok(file) => Ok(OutFile { file, path, pending: None }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && replace => {
                    let tmp = cstr(std::ffi::OsStr::new(&format!(".{}.pmem-{}.tmp", last.to_string_lossy(), std::process::id())))?;
                    // SAFETY: as above.
                    unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
                    let file = open(&tmp)?;
                    Ok(OutFile { file, path, pending: Some(Pending { dir, tmp, name, done: false }) })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(io::Error::new(e.kind(), format!("{} exists (use -t to replace it)", path.display())))
                }
                Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = comps;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut o = std::fs::OpenOptions::new();
            o.write(true);
            if replace {
                o.create(true).truncate(true);
            } else {
                o.create_new(true);
            }
            Ok(OutFile { file: o.open(&path)?, path, pending: None })
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn never_escapes_and_replaces_atomically() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = t.path().join("out");
        let d = OutDir::create(&root).unwrap();
        assert_eq!(std::fs::metadata(&root).unwrap().permissions().mode() & 0o777, 0o700);
        std::os::unix::fs::symlink(&outside, root.join("tmp")).unwrap();
        let e = d.create_file(Path::new("tmp/x"), false).err().unwrap();
        assert!(e.to_string().contains("refusing to follow"), "{e}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "nothing may be written through the symlink");
        std::os::unix::fs::symlink(outside.join("target"), root.join("link")).unwrap();
        assert!(d.create_file(Path::new("link"), false).is_err(), "a symlink as the file itself is not written through");
        // With -t the symlink itself is replaced by the new file; nothing lands at its target.
        let mut f = d.create_file(Path::new("link"), true).unwrap();
        f.file.write_all(b"x").unwrap();
        f.commit().unwrap();
        assert!(!outside.join("target").exists());
        assert!(std::fs::symlink_metadata(root.join("link")).unwrap().is_file());
        assert!(d.create_file(Path::new("../x"), false).is_err());
        let mut f = d.create_file(Path::new("a/b/c.raw"), false).unwrap();
        f.file.write_all(b"one").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::metadata(root.join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(root.join("a/b/c.raw")).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(d.create_file(Path::new("a/b/c.raw"), false).is_err(), "no replacement without -t");
        let mut f = d.create_file(Path::new("a/b/c.raw"), true).unwrap();
        f.file.write_all(b"two!").unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.raw")).unwrap(), b"one", "the old file stays until the new one is complete");
        f.commit().unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.raw")).unwrap(), b"two!");
        // An abandoned replacement leaves the old file and no temporary.
        let f = d.create_file(Path::new("a/b/c.raw"), true).unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(root.join("a/b")).unwrap().count(), 1);
    }
}
