//! Writing volumes: a new ZIP64 file (AFF4.md §16 profile), an append to an existing one, or a
//! directory volume. Appends write after the old end record and only then a new directory, so
//! an interrupted append leaves the previous directory intact (the reader recovers it).

use crate::error::{Error, Result};
use crate::rdf::{Graph, Node};
use crate::urn::{new_urn, urn_to_member};
use crate::vocab::{self, RDF_TYPE, XSD};
use crate::volume::uncached::Uncached;
use crate::zip::{WrittenEntry, ZipArchive, ZipWriter, ZEROS};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where segments go.
trait Sink: Send {
    /// Starts member `name`; `listed` is false for a recovery-journal member that the closed
    /// volume's directory leaves out.
    fn start(&mut self, name: &str, listed: bool) -> Result<()>;
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Starts a listed member whose data begins at a multiple of `align` in the volume.
    fn start_aligned(&mut self, name: &str, _align: u16) -> Result<()> {
        self.start(name, true)
    }
    /// Appends `n` zero bytes to the member, as a hole where the output is a file.
    fn skip(&mut self, n: u64) -> Result<()> {
        in_zeros(n, |z| self.write(z))
    }
    fn finish_member(&mut self) -> Result<()>;
    /// Closes the open member after a failed write with what surely reached it; its length.
    fn cut_member(&mut self) -> Result<u64>;
    fn close(self: Box<Self>, comment: &[u8]) -> Result<()>;
    fn bytes_written(&self) -> u64;
    /// Gives up without closing: an append is cut back to the old end, a replacement's
    /// temporary file is removed.
    fn abandon(self: Box<Self>) {}
    /// How much room to keep for closing (the directory and metadata grow with the volume).
    fn set_room(&mut self, _bytes: u64) {}
    /// The end of the last member known to be on disk.
    fn committed(&self) -> u64 {
        0
    }
    /// Makes a ZIP volume end on a multiple of `align` bytes ([`ZipWriter::end_aligned`]).
    fn align_end(&mut self, _align: u64) {}
    /// Writes a volume file from the writer's own thread, or behind it
    /// ([`Uncached::write_inline`]); streams have no such choice.
    fn write_inline(&mut self, _inline: bool) -> Result<()> {
        Ok(())
    }
    /// Gives up every member from `at` (a [`Sink::committed`] value) on, and the member being
    /// written, so that the volume can be closed with the complete ones.
    fn abandon_since(&mut self, _at: u64) {}
}

/// Hands `put` `n` zero bytes, in pieces.
fn in_zeros<E>(mut n: u64, mut put: impl FnMut(&[u8]) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        put(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// Where a ZIP volume's bytes go: a file (which can be cut back, and room kept in it for
/// closing), or a stream that is only ever written forwards (stdout, an upload). Nothing is
/// buffered above it: a file buffers in its own aligned buffer ([`Uncached`]), a stream in its
/// own way (stdout in a `BufWriter`, an upload in its parts, an encrypted stream in its bevies,
/// encrypting as it copies), so that the bytes are copied once.
enum Target {
    File(Uncached),
    Stream(Box<dyn Write + Send>),
}

impl Target {
    /// A volume file written from `pos` on, around the page cache.
    fn file(f: File, pos: u64, name: &str) -> Result<Target> {
        Ok(Target::File(Uncached::new(f, pos).map_err(|e| Error::io(name, e))?))
    }

    /// Moves on by `n` zero bytes: a hole in a file, zeros in a stream.
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        match self {
            Target::File(f) => f.skip(n),
            Target::Stream(s) => in_zeros(n, |z| s.write_all(z)),
        }
    }
}

impl Write for Target {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Target::File(f) => f.write(b),
            Target::Stream(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Target::File(f) => f.flush(),
            Target::Stream(s) => s.flush(),
        }
    }
}

/// Room kept allocated beyond the last complete member of a volume file, so that the metadata
/// and directory can always be written, even when the disk fills up: the fixed part.
const RESERVE_BASE: u64 = 4 << 20;

struct ZipSink {
    zip: Option<ZipWriter<Target>>,
    start: u64,
    rename: Option<(PathBuf, PathBuf)>,
    /// An append: the file and its old end, to cut it back to if the append is abandoned.
    appended_to: Option<PathBuf>,
    /// End of the last member known to be on disk (written and flushed).
    committed: u64,
    /// A write failed: before closing, everything after `committed` is cut off.
    broken: bool,
    /// Room to keep beyond `committed` (see [`RESERVE_BASE`]); 0 for streams.
    room: u64,
    /// The volume ends on a multiple of this.
    align: u64,
    /// The file is known to have blocks allocated up to here (reserved twice the room ahead, so
    /// most members need no new reservation).
    reserved_to: u64,
}

impl Sink for ZipSink {
    fn start(&mut self, name: &str, listed: bool) -> Result<()> {
        self.open_member(|zip| if listed { zip.start_member(name) } else { zip.start_transient_member(name) })
    }
    fn write(&mut self, data: &[u8]) -> Result<()> {
        // The room to close the volume stays ahead of a long member too: a refusal here writes
        // nothing, so the member can still be closed where it stands (see `cut_member`).
        let end = self.zip()?.position() + data.len() as u64;
        self.keep_room(end)?;
        let r = self.zip()?.write_data(data);
        self.note(r)
    }
    fn start_aligned(&mut self, name: &str, align: u16) -> Result<()> {
        self.open_member(|zip| zip.start_aligned_member(name, align))
    }
    fn skip(&mut self, n: u64) -> Result<()> {
        let end = self.zip()?.position() + n;
        self.keep_room(end)?;
        // Nothing is buffered above the target (see `Target`): its hole goes straight in.
        let r = self.zip()?.skip_data(n, |out, n| out.skip(n));
        self.note(r)
    }
    fn finish_member(&mut self) -> Result<()> {
        let zip = self.zip()?;
        let r = zip.finish_member().and_then(|_| zip.flush());
        self.note(r)?;
        let end = self.zip()?.position();
        if let Err(e) = self.keep_room(end) {
            // No room left beyond this member: drop it (its blocks hold the earlier reserve),
            // so that closing is still possible.
            self.broken = true;
            return Err(e);
        }
        self.committed = end;
        Ok(())
    }
    fn cut_member(&mut self) -> Result<u64> {
        // Nothing was written past a refused reservation (see `write`): the member is whole up
        // to where it stands. After any other failure it is given up.
        if self.broken {
            return Ok(0);
        }
        let zip = self.zip()?;
        let kept = zip.open_size();
        // (no new reservation: closing uses the room kept so far)
        let r = zip.finish_member().and_then(|_| zip.flush());
        self.note(r)?;
        self.committed = self.zip()?.position();
        Ok(kept)
    }
    fn close(mut self: Box<Self>, comment: &[u8]) -> Result<()> {
        if self.broken {
            self.rewind()?;
        }
        let zip = self.zip.take().ok_or_else(closed)?;
        let out = zip.end_aligned(self.align).finish(comment)?;
        let rename = self.rename.take();
        match out {
            Target::File(mut u) => u.finish(),
            Target::Stream(mut s) => s.flush(),
        }
        .map_err(|e| Error::io("flushing volume", e))?;
        if let Some((tmp, dest)) = rename {
            std::fs::rename(&tmp, &dest).map_err(|e| Error::io(format!("renaming {} to {}", tmp.display(), dest.display()), e))?;
        }
        Ok(())
    }
    fn bytes_written(&self) -> u64 {
        self.zip.as_ref().map(|z| z.position() - self.start).unwrap_or(0)
    }
    fn committed(&self) -> u64 {
        self.committed
    }
    fn abandon_since(&mut self, at: u64) {
        self.committed = self.committed.min(at);
        self.broken = true;
    }
    fn align_end(&mut self, align: u64) {
        self.align = align;
    }
    fn write_inline(&mut self, inline: bool) -> Result<()> {
        let zip = self.zip()?;
        let name = zip.context().to_string();
        let r = match zip.get_mut() {
            Target::File(f) => f.write_inline(inline).map_err(|e| Error::io(&name, e)),
            Target::Stream(_) => Ok(()),
        };
        self.note(r)
    }
    fn set_room(&mut self, bytes: u64) {
        if self.room > 0 {
            self.room = bytes.max(RESERVE_BASE);
        }
    }
    fn abandon(mut self: Box<Self>) {
        // Flushed (or failed) before the cut, so nothing lands after it.
        drop(self.zip.take());
        if let Some(p) = self.appended_to.take() {
            if let Ok(f) = OpenOptions::new().write(true).open(&p) {
                let _ = f.set_len(self.start);
            }
        }
    }
}

impl Drop for ZipSink {
    fn drop(&mut self) {
        // A replacement that was never completed must not be left behind.
        if let Some((tmp, _)) = self.rename.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl ZipSink {
    fn new(
        zip: ZipWriter<Target>,
        start: u64,
        rename: Option<(PathBuf, PathBuf)>,
        appended_to: Option<PathBuf>,
        file: bool,
    ) -> Result<ZipSink> {
        let mut s = ZipSink {
            committed: zip.position(),
            zip: Some(zip),
            start,
            rename,
            appended_to,
            broken: false,
            room: 0,
            align: 1,
            reserved_to: 0,
        };
        if file {
            s.room = RESERVE_BASE;
            s.zip()?.flush()?;
            s.keep_room(s.committed)?;
        }
        Ok(s)
    }

    fn zip(&mut self) -> Result<&mut ZipWriter<Target>> {
        self.zip.as_mut().ok_or_else(closed)
    }

    /// Starts a member with `start` (after cutting back a failed write), noting a failure.
    fn open_member(&mut self, start: impl FnOnce(&mut ZipWriter<Target>) -> Result<()>) -> Result<()> {
        if self.broken {
            self.rewind()?;
        }
        let r = start(self.zip()?);
        self.note(r)
    }

    /// Remembers a failed write: the volume will be cut back to its last complete member.
    fn note(&mut self, r: Result<()>) -> Result<()> {
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Keeps `room` bytes allocated past `at` (Linux: fallocate without changing the size),
    /// so closing never needs space the disk may no longer have.
    fn keep_room(&mut self, at: u64) -> Result<()> {
        if self.room == 0 || at + self.room <= self.reserved_to {
            return Ok(());
        }
        // Twice the room ahead, so that most members need no new reservation; on a nearly full
        // disk, the room itself.
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut got = self.room * 2;
        #[cfg(target_os = "linux")]
        if let Some(Target::File(u)) = self.zip.as_mut().map(|z| z.get_mut()) {
            use std::os::fd::AsRawFd;
            let f = u.file();
            let reserve = |len: u64| -> std::io::Result<()> {
                let (Ok(off), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else { return Ok(()) };
                // SAFETY: fallocate on a valid descriptor; KEEP_SIZE leaves the file's length alone.
                if unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, len) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            let full = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOSPC);
            match reserve(got) {
                Err(e) if full(&e) => {
                    got = self.room;
                    if let Err(e) = reserve(got) {
                        // File systems without fallocate get no reserve; a full disk is an error.
                        if full(&e) {
                            let name = self.zip.as_ref().map(|z| z.context().to_string()).unwrap_or_default();
                            return Err(Error::io(
                                format!("{name}: the disk is full: no room left beyond byte {at} to close the volume safely"),
                                e,
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        self.reserved_to = at + got;
        Ok(())
    }

    /// Cuts the file back to the last complete member (freeing the room kept for closing) and
    /// positions the writer there, after a failed write.
    fn rewind(&mut self) -> Result<()> {
        let at = self.committed;
        let zip = self.zip()?;
        let name = zip.context().to_string();
        zip.rewind_to(at);
        let old = std::mem::replace(zip.get_mut(), Target::Stream(Box::new(std::io::sink())));
        let Target::File(mut f) = old else {
            return Err(Error::Unsupported(format!("{name}: a write failed and a stream cannot be cut back")));
        };
        f.cut_to(at).map_err(|e| Error::io(&name, e))?;
        *zip.get_mut() = Target::File(f);
        self.reserved_to = at;
        self.broken = false;
        Ok(())
    }
}

fn closed() -> Error {
    Error::Unsupported("volume already closed".into())
}

struct DirSink {
    root: PathBuf,
    /// The member being written, around the page cache as a volume file is (a raw image in
    /// place would otherwise leave a copy of the memory it holds in the memory captured next).
    current: Option<(PathBuf, Uncached)>,
    written: u64,
    /// The latest members completed, with where the volume stood when each was started (so
    /// that [`Sink::abandon_since`] can remove the files of an abandoned bevy).
    recent: std::collections::VecDeque<(u64, PathBuf)>,
    started_at: u64,
}

/// How many completed members a directory volume remembers for [`Sink::abandon_since`]: more
/// than a bevy writes (its data, index and a block-hash segment per algorithm).
const DIR_RECENT: usize = 16;

impl Sink for DirSink {
    fn start(&mut self, name: &str, _listed: bool) -> Result<()> {
        let mut p = self.root.clone();
        for c in name.split('/') {
            if !crate::urn::safe_component(c) {
                return Err(Error::Unsupported(format!("segment name {name:?} cannot be a path in a directory volume")));
            }
            p.push(c);
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display().to_string(), e))?;
        }
        let f = create_file(&p, true)?;
        let f = Uncached::new(f, 0).map_err(|e| Error::io(p.display().to_string(), e))?;
        self.current = Some((p, f));
        self.started_at = self.written;
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let (p, f) = self.current.as_mut().ok_or_else(|| Error::Unsupported("no segment open".into()))?;
        f.write_all(data).map_err(|e| Error::io(p.display().to_string(), e))?;
        self.written += data.len() as u64;
        Ok(())
    }
    fn skip(&mut self, n: u64) -> Result<()> {
        let (p, f) = self.current.as_mut().ok_or_else(|| Error::Unsupported("no segment open".into()))?;
        f.skip(n).map_err(|e| Error::io(p.display().to_string(), e))?;
        self.written += n;
        Ok(())
    }
    fn committed(&self) -> u64 {
        self.written
    }
    fn abandon_since(&mut self, at: u64) {
        // The member in progress and those started from `at` on are removed: a partial bevy
        // must not be left where a reader would take it for data.
        if let Some((p, f)) = self.current.take() {
            drop(f);
            let _ = std::fs::remove_file(p);
        }
        while self.recent.back().is_some_and(|(s, _)| *s >= at) {
            if let Some((_, p)) = self.recent.pop_back() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    fn finish_member(&mut self) -> Result<()> {
        if let Some((p, mut f)) = self.current.take() {
            // Written out, at its logical length (a hole at the end counts in it).
            f.finish().map_err(|e| Error::io(p.display().to_string(), e))?;
            if self.recent.len() == DIR_RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((self.started_at, p));
        }
        Ok(())
    }
    fn cut_member(&mut self) -> Result<u64> {
        let Some((p, f)) = self.current.take() else { return Ok(0) };
        // What the file system took, the unwritten rest of the buffer dropped; less the room
        // the metadata needs to be written, as a directory volume keeps none in reserve.
        let io = |e| Error::io(p.display().to_string(), e);
        // (the blocks still on their way are written, or fail, before the length is taken)
        let file = f.file().try_clone().map_err(io)?;
        drop(f);
        let f = file;
        let took = f.metadata().map_err(io)?.len();
        let kept = took.saturating_sub(RESERVE_BASE) & !4095;
        f.set_len(kept).map_err(io)?;
        Ok(kept)
    }
    fn close(self: Box<Self>, _comment: &[u8]) -> Result<()> {
        Ok(())
    }
    fn bytes_written(&self) -> u64 {
        self.written
    }
}

/// Creates a file 0600 without following a symlink at `p`; `replace` allows an existing file.
///
/// # Errors
/// The file exists (without `replace`), is a symlink, or cannot be created.
pub fn create_file(p: &Path, replace: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if replace {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc_nofollow());
    }
    o.open(p).map_err(|e| Error::io(p.display().to_string(), e))
}

#[cfg(unix)]
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW
}

/// How [`VolumeWriter::create`] treats an existing output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Add to an existing volume, create it if missing.
    Append,
    /// Replace an existing volume (a new file is renamed over it at the end).
    Truncate,
    /// Fail if the output exists.
    CreateNew,
}

/// An open volume being written.
pub struct VolumeWriter {
    sink: Option<Box<dyn Sink>>,
    urn: String,
    graph: Graph,
    path: PathBuf,
    appended: bool,
    split: Option<Split>,
    /// Written to a stream (stdout, an upload), not a file of ours.
    streamed: bool,
    /// Called once the volume is completely written (e.g. to complete an upload).
    on_close: Option<OnClose>,
    /// A data segment has been started (the volume holds evidence, not only its header).
    holds_data: bool,
    /// `path` was created by this writer (not a replacement through a temporary file).
    created: bool,
    /// Members written by this writer.
    members: u64,
    /// Recovery journal (ZIP volumes only, see [`VolumeWriter::add_journal`]).
    journal: Option<Journal>,
}

/// Where the recovery journal of a ZIP volume stands.
#[derive(Default)]
struct Journal {
    /// Records written.
    seq: u64,
    /// Triples in the last metadata snapshot, and its length and position.
    snapshot_triples: usize,
    snapshot_len: u64,
    snapshot_at: u64,
}

/// The member-name prefix of recovery-journal records (left out of a closed volume's directory).
pub const JOURNAL_PREFIX: &str = "pmem-journal/";

/// A completion step run after the last byte of a volume is written.
pub type OnClose = Box<dyn FnOnce() -> Result<()> + Send>;

/// Rolling over to `<stem>.A01`, `.A02`, … (c-aff4's `--split`): each part is a complete ZIP
/// volume with its own URN whose turtle is the whole graph so far; streams simply continue
/// their bevies in the next part.
struct Split {
    /// Largest part size.
    limit: u64,
    /// Room kept for the largest member plus the part's turtle and directory.
    margin: u64,
    /// Parts written so far (the first is `path`).
    parts: Vec<PathBuf>,
    /// Replace existing parts.
    replace: bool,
}

/// Starts a ZIP volume in `out` with a new URN: container.description and version.txt first.
fn start_zip(target: Target, rename: Option<(PathBuf, PathBuf)>, name: String) -> Result<(String, Box<dyn Sink>)> {
    let urn = new_urn();
    let file = matches!(target, Target::File(_));
    let mut zip = ZipWriter::new(target, 0, 0, name);
    zip.add_member("container.description", urn.as_bytes())?;
    zip.add_member("version.txt", version_txt().as_bytes())?;
    Ok((urn, Box::new(ZipSink::new(zip, 0, rename, None, file)?)))
}

/// The path of part `n` (1-based after the first) of a split set whose first part is `base`.
pub fn split_part_path(base: &Path, n: u32) -> PathBuf {
    base.with_extension(format!("A{n:02}"))
}

/// `version.txt`: the AFF4 Standard's version and the writing tool.
fn version_txt() -> String {
    format!("major=1\nminor=0\ntool={}\n", crate::tool())
}

impl VolumeWriter {
    /// Opens `path` for writing: a directory (or a path ending with `/`) makes a directory
    /// volume; anything else a ZIP64 file (see [`VolumeWriter::to_stdout`] for a stream).
    ///
    /// # Errors
    /// Existing output in `CreateNew` mode, an existing file that is not an AFF4 volume, or I/O.
    pub fn create(path: &Path, mode: Mode) -> Result<VolumeWriter> {
        let name = path.display().to_string();
        let is_dir = path.is_dir() || name.ends_with('/');
        if is_dir {
            return Self::create_dir(path, mode);
        }
        let exists = std::fs::symlink_metadata(path).is_ok();
        if exists && mode == Mode::Append {
            return Self::append_zip(path);
        }
        if exists && mode == Mode::CreateNew {
            return Err(Error::io(
                &name,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "output exists (replace it, or choose another name)"),
            ));
        }
        let (file, rename) = if exists {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            remove_stale_temporaries(dir, path);
            let tmp = dir.join(format!(
                ".{}.pmem-{}.tmp",
                path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                std::process::id()
            ));
            (create_file(&tmp, false)?, Some((tmp, path.to_path_buf())))
        } else {
            (create_file(path, false)?, None)
        };
        // The file we just made goes again if the volume cannot even start (no room to close it).
        let made = rename.as_ref().map(|(tmp, _)| tmp.clone()).unwrap_or_else(|| path.to_path_buf());
        let started = Target::file(file, 0, &name).and_then(|target| Self::new_zip(target, rename, path, name));
        if started.is_err() {
            let _ = std::fs::remove_file(&made);
        }
        started
    }

    /// A ZIP64 volume streamed to standard output (never seeked; its path shows as `-`).
    ///
    /// # Errors
    /// Writing the first members fails.
    pub fn to_stdout() -> Result<VolumeWriter> {
        let out = BufWriter::with_capacity(256 << 10, std::io::stdout());
        Self::new_zip(Target::Stream(Box::new(out)), None, Path::new("-"), "stdout".into())
    }

    /// A new ZIP volume written to `out` (a file, or stdout for `-o -`: no seek is ever needed).
    fn new_zip(out: Target, rename: Option<(PathBuf, PathBuf)>, path: &Path, name: String) -> Result<VolumeWriter> {
        let streamed = matches!(out, Target::Stream(_));
        let created = !streamed && rename.is_none();
        let (urn, sink) = start_zip(out, rename, name)?;
        let mut w = VolumeWriter::with(sink, urn, Graph::new(), path, false);
        w.streamed = streamed;
        w.created = created;
        w.journal = Some(Journal::default());
        w.describe_volume(vocab::ZIP_VOLUME);
        Ok(w)
    }

    /// A writer over `sink` with no split, no completion step, not streamed.
    fn with(sink: Box<dyn Sink>, urn: String, graph: Graph, path: &Path, appended: bool) -> VolumeWriter {
        VolumeWriter {
            sink: Some(sink),
            urn,
            graph,
            path: path.to_path_buf(),
            appended,
            split: None,
            streamed: false,
            on_close: None,
            holds_data: false,
            created: false,
            members: 0,
            journal: None,
        }
    }

    /// A new ZIP volume streamed into `out` (never seeked), named `name` (e.g. an object URL);
    /// `on_close` runs after its last byte, e.g. to complete an upload. `out` is written
    /// unbuffered, a member's header in several small writes: it buffers as suits it.
    ///
    /// # Errors
    /// Writing the first members fails.
    pub fn streaming(out: Box<dyn Write + Send>, name: &str, on_close: Option<OnClose>) -> Result<VolumeWriter> {
        let mut w = Self::new_zip(Target::Stream(out), None, Path::new(name), name.to_string())?;
        w.on_close = on_close;
        Ok(w)
    }

    fn describe_volume(&mut self, ty: &str) {
        let now = crate::rdf::now();
        let u = self.urn.clone();
        self.graph.add(&u, RDF_TYPE, Node::iri(ty));
        self.graph.add(&u, vocab::CREATION_TIME, Node::typed(now, format!("{XSD}dateTime")));
        self.graph.add(&u, &format!("{}tool", vocab::AFF4), Node::string(crate::tool()));
    }

    fn append_zip(path: &Path) -> Result<VolumeWriter> {
        let name = path.display().to_string();
        let vol = crate::volume::Volume::open(path)?;
        let mut graph = Graph::new();
        graph.parse_turtle(&vol.turtle, &vol.urn, &name)?;
        let ro = File::open(path).map_err(|e| Error::io(&name, e))?;
        let zip = ZipArchive::open(Arc::new(ro), &name)?;
        let base = zip.global_offset();
        let entries: Vec<WrittenEntry> = zip
            .entries()
            .iter()
            .map(|e| WrittenEntry {
                name: e.name.clone(),
                method: e.method,
                crc32: e.crc32,
                compressed_size: e.compressed_size,
                uncompressed_size: e.uncompressed_size,
                header_offset: e.header_offset - base,
                dos_time: e.dos_time,
            })
            .collect();
        let end = zip.file_len() - zip.trailing_bytes();
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(libc_nofollow());
        }
        let f = o.open(path).map_err(|e| Error::io(&name, e))?;
        // Drop what an interrupted append left behind, keep everything else.
        f.set_len(end).map_err(|e| Error::io(&name, e))?;
        let target = Target::file(f, end, &name)?;
        let zw = ZipWriter::new(target, end, base, name).with_entries(entries);
        let sink = ZipSink::new(zw, end, None, Some(path.to_path_buf()), true)?;
        let mut w = VolumeWriter::with(Box::new(sink), vol.urn, graph, path, true);
        w.journal = Some(Journal::default());
        Ok(w)
    }

    fn create_dir(path: &Path, mode: Mode) -> Result<VolumeWriter> {
        let name = path.display().to_string();
        let desc = path.join("container.description");
        let existing = desc.exists();
        if existing && mode == Mode::Truncate {
            return Err(Error::Unsupported(format!("{name}: replacing a directory volume would delete a directory; remove it first")));
        }
        if existing && mode == Mode::CreateNew {
            return Err(Error::io(&name, std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a volume exists there")));
        }
        // A directory of other files never silently becomes a volume among them.
        if !existing && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
            return Err(Error::Unsupported(format!(
                "{name} is a directory of other files, not a directory volume: give a new or empty directory, \
                 or a file name (NAME.aff4) for a ZIP volume"
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(&name, e))?;
        let sink = Box::new(DirSink {
            root: path.to_path_buf(),
            current: None,
            written: 0,
            recent: std::collections::VecDeque::new(),
            started_at: 0,
        });
        if existing {
            let vol = crate::volume::Volume::open(path)?;
            let mut graph = Graph::new();
            graph.parse_turtle(&vol.turtle, &vol.urn, &name)?;
            return Ok(VolumeWriter::with(sink, vol.urn, graph, path, true));
        }
        let urn = new_urn();
        let mut w = VolumeWriter::with(sink, urn.clone(), Graph::new(), path, false);
        w.created = true;
        w.add_member_raw("container.description", urn.as_bytes())?;
        w.add_member_raw("version.txt", version_txt().as_bytes())?;
        w.describe_volume(&format!("{}DirectoryVolume", vocab::AFF4));
        Ok(w)
    }

    /// The volume URN.
    pub fn urn(&self) -> &str {
        &self.urn
    }

    /// The output path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tool name it records (see [`crate::set_tool`]).
    pub fn tool(&self) -> &'static str {
        crate::tool()
    }

    /// True when written to a stream (stdout, an upload) that can never be cut back or reread.
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }

    /// True when adding to an existing volume.
    pub fn is_append(&self) -> bool {
        self.appended
    }

    /// The metadata graph (existing triples when appending, plus new ones).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// The metadata graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Records that the volume holds `object` (`aff4:contains`, `aff4:stored`).
    pub fn register(&mut self, object: &str) {
        let v = self.urn.clone();
        self.graph.add(&v, vocab::CONTAINS, Node::iri(object));
        self.graph.add(object, vocab::STORED, Node::iri(&v));
    }

    fn sink(&mut self) -> Result<&mut Box<dyn Sink>> {
        self.sink.as_mut().ok_or_else(|| Error::Unsupported("volume already closed".into()))
    }

    fn add_member_raw(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let s = self.sink()?;
        s.start(name, true)?;
        s.write(data)?;
        s.finish_member()
    }

    /// Splits the output into parts of at most `limit` bytes; `margin` must cover the largest
    /// segment that will be written (a full bevy) plus the turtle and ZIP directory. Only for a
    /// new ZIP file (not stdout, a directory volume, or an append).
    ///
    /// # Errors
    /// The volume cannot be split, or `limit` is too small for `margin`.
    pub fn set_split(&mut self, limit: u64, margin: u64, replace: bool) -> Result<()> {
        let name = self.path.display().to_string();
        if self.appended || self.streamed || self.path.is_dir() {
            return Err(Error::Unsupported(format!("{name}: a split volume must be a new file (not a stream, a directory or an append)")));
        }
        if limit < margin.saturating_mul(2) {
            return Err(Error::Unsupported(format!("parts of {limit} bytes are too small: they must hold at least {} bytes", margin * 2)));
        }
        self.split = Some(Split { limit, margin, parts: vec![self.path.clone()], replace });
        Ok(())
    }

    /// The files written so far (more than one when split).
    pub fn parts(&self) -> Vec<PathBuf> {
        self.split.as_ref().map(|s| s.parts.clone()).unwrap_or_else(|| vec![self.path.clone()])
    }

    /// Closes the current part and opens the next when the next segment might not fit.
    fn maybe_roll(&mut self) -> Result<()> {
        let Some(sp) = &self.split else { return Ok(()) };
        if self.bytes_written() + sp.margin <= sp.limit {
            return Ok(());
        }
        let next = split_part_path(&self.path, sp.parts.len() as u32);
        let replace = sp.replace;
        self.close_part(false)?;
        let file = create_file(&next, replace)?;
        let name = next.display().to_string();
        let (urn, sink) = start_zip(Target::file(file, 0, &name)?, None, name)?;
        self.sink = Some(sink);
        self.journal = Some(Journal::default());
        self.urn = urn;
        self.describe_volume(vocab::ZIP_VOLUME);
        if let Some(sp) = &mut self.split {
            sp.parts.push(next);
        }
        Ok(())
    }

    /// Writes the graph so far and the directory of the current part, and closes it; `last`
    /// when no part follows (a split set's last part records the count).
    fn close_part(&mut self, last: bool) -> Result<()> {
        if let Some(sp) = &self.split {
            let n = sp.parts.len() as u64;
            let name = sp.parts.last().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let u = self.urn.clone();
            self.graph.set(&u, vocab::VOLUME_SET_PART, Node::long(n));
            self.graph.set(&u, vocab::VOLUME_SET_PART_NAME, Node::string(name));
            if last {
                self.graph.set(&u, vocab::VOLUME_SET_PARTS, Node::long(n));
            }
        }
        let turtle = self.graph.to_turtle();
        let mut sink = self.sink.take().ok_or_else(|| Error::Unsupported("volume already closed".into()))?;
        sink.start("information.turtle", true)?;
        sink.write(turtle.as_bytes())?;
        sink.finish_member()?;
        let mut comment = self.urn.clone().into_bytes();
        comment.push(0);
        sink.close(&comment)
    }

    /// Starts the segment for `urn`; bytes follow with [`VolumeWriter::write_segment`].
    ///
    /// # Errors
    /// Another segment is open, or I/O.
    pub fn start_segment(&mut self, urn: &str) -> Result<()> {
        self.holds_data = true;
        self.maybe_roll()?;
        let name = urn_to_member(&self.urn, urn);
        self.sink()?.start(&name, true)
    }

    /// Starts member `name` (already escaped: one flat name, a plain file in a directory
    /// volume) with its data at a multiple of `align` bytes into the volume file (a ZIP volume;
    /// a directory volume's file starts at 0 anyway); its URN is [`crate::urn::member_to_urn`]'s.
    ///
    /// # Errors
    /// Another segment is open, or I/O.
    pub fn start_aligned_member(&mut self, name: &str, align: u16) -> Result<()> {
        self.holds_data = true;
        self.maybe_roll()?;
        self.sink()?.start_aligned(name, align)
    }

    /// Appends `n` zero bytes to the open segment: a hole where the volume is a file.
    ///
    /// # Errors
    /// I/O.
    pub fn skip_segment(&mut self, n: u64) -> Result<()> {
        self.sink()?.skip(n)
    }

    /// Closes the open segment after a failed write with what surely reached it, and returns
    /// its length (0 when it had to be given up).
    ///
    /// # Errors
    /// I/O closing it.
    pub fn cut_segment(&mut self) -> Result<u64> {
        self.members += 1;
        self.sink()?.cut_member()
    }

    /// True when the volume keeps a recovery journal (a ZIP volume: a file or a stream).
    pub fn journaled(&self) -> bool {
        self.journal.is_some()
    }

    /// Writes a recovery-journal record `kind` (e.g. a map's progress): a member that a scan of
    /// the local headers finds after a crash ([`crate::recover`]) and that the closed volume's
    /// directory leaves out. Nothing is written for a directory volume.
    ///
    /// # Errors
    /// I/O.
    pub fn add_journal(&mut self, kind: &str, data: &[u8]) -> Result<()> {
        let Some(j) = self.journal.as_mut() else { return Ok(()) };
        j.seq += 1;
        let name = format!("{JOURNAL_PREFIX}{:08}.{kind}", j.seq);
        let s = self.sink()?;
        s.start(&name, false)?;
        s.write(data)?;
        s.finish_member()
    }

    /// Writes a snapshot of the metadata to the recovery journal when it changed since the
    /// last one, at most as often as keeps the snapshots under 1/64 of the bytes written (so
    /// many small images cost linear, not quadratic, space).
    ///
    /// # Errors
    /// I/O.
    pub fn checkpoint(&mut self) -> Result<()> {
        let written = self.bytes_written();
        let triples = self.graph.len();
        let Some(j) = self.journal.as_ref() else { return Ok(()) };
        if triples == j.snapshot_triples || (j.snapshot_len > 0 && written - j.snapshot_at < j.snapshot_len * 64) {
            return Ok(());
        }
        let turtle = self.graph.to_turtle();
        self.add_journal("turtle", turtle.as_bytes())?;
        let at = self.bytes_written();
        if let Some(j) = self.journal.as_mut() {
            j.snapshot_triples = triples;
            j.snapshot_len = turtle.len() as u64;
            j.snapshot_at = at;
        }
        Ok(())
    }

    /// Appends bytes to the open segment.
    ///
    /// # Errors
    /// I/O (disk full is reported with the path).
    pub fn write_segment(&mut self, data: &[u8]) -> Result<()> {
        self.sink()?.write(data)
    }

    /// Closes the open segment.
    ///
    /// # Errors
    /// I/O.
    pub fn finish_segment(&mut self) -> Result<()> {
        // Room for the directory (about 100 bytes a member) and the metadata (a few KiB a subject).
        let room = RESERVE_BASE + 256 * self.members + 2048 * self.graph.subjects().len() as u64;
        self.members += 1;
        let s = self.sink()?;
        s.set_room(room);
        s.finish_member()
    }

    /// Writes a whole segment for `urn`.
    ///
    /// # Errors
    /// I/O.
    pub fn add_segment(&mut self, urn: &str, data: &[u8]) -> Result<()> {
        self.start_segment(urn)?;
        self.write_segment(data)?;
        self.finish_segment()
    }

    /// Where the volume stands: the end of the last member known to be on disk (for
    /// [`VolumeWriter::abandon_since`]).
    pub fn committed(&self) -> u64 {
        self.sink.as_ref().map(|s| s.committed()).unwrap_or(0)
    }

    /// Writes the volume file from this thread as blocks fill, or from a thread behind it
    /// (the default): see [`Uncached::write_inline`] for which suits whom.
    ///
    /// # Errors
    /// Writing out what is buffered fails.
    pub fn write_inline(&mut self, inline: bool) -> Result<()> {
        self.sink()?.write_inline(inline)
    }

    /// Makes this ZIP volume end on a multiple of `align` bytes when it is closed.
    pub(crate) fn align_end(&mut self, align: u64) {
        if let Some(s) = self.sink.as_mut() {
            s.align_end(align);
        }
    }

    /// After a failed write: drops every member written from `at` (a [`VolumeWriter::committed`]
    /// value) on, and any member in progress; the next member starts there.
    pub fn abandon_since(&mut self, at: u64) {
        if let Some(s) = self.sink.as_mut() {
            s.abandon_since(at);
        }
    }

    /// Gives up this session's writing as if it never happened: a new volume is removed, an
    /// append is cut back to the volume's old end, a replacement leaves the old volume.
    pub fn discard(mut self) {
        self.holds_data = false;
    }

    /// Bytes written so far in this session.
    pub fn bytes_written(&self) -> u64 {
        self.sink.as_ref().map(|s| s.bytes_written()).unwrap_or(0)
    }

    /// Writes information.turtle and the directory, and closes the volume.
    ///
    /// # Errors
    /// I/O.
    pub fn finish(mut self) -> Result<()> {
        self.close_part(true)?;
        if let Some(f) = self.on_close.take() {
            f()?;
        }
        // A replaced split set must not keep parts of an older, longer set.
        if let Some(sp) = &self.split {
            if sp.replace {
                let mut n = sp.parts.len() as u32;
                while let Ok(m) = std::fs::symlink_metadata(split_part_path(&self.path, n)) {
                    if !m.is_file() {
                        break;
                    }
                    let _ = std::fs::remove_file(split_part_path(&self.path, n));
                    n += 1;
                }
            }
        }
        Ok(())
    }
}

/// Removes `.NAME.pmem-PID.tmp` files beside `path` that a killed `-t` left behind (their
/// process no longer runs).
fn remove_stale_temporaries(dir: &Path, path: &Path) {
    let Some(name) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else { return };
    let prefix = format!(".{name}.pmem-");
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = f.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

impl Drop for VolumeWriter {
    /// A writer dropped without [`VolumeWriter::finish`] (an error on the way) never leaves
    /// garbage: an append is cut back to the volume's old end, a replacement leaves the old
    /// volume as it was, a new volume that holds no evidence is removed, and one that does is
    /// closed with its complete members, so it opens.
    fn drop(&mut self) {
        let Some(sink) = self.sink.take() else { return };
        if self.streamed {
            return;
        }
        if self.appended {
            sink.abandon();
            return;
        }
        // A replacement (-t) that failed leaves the old volume in place (its temporary file is
        // removed); a new volume that holds evidence is closed with the complete members.
        if self.holds_data && self.created {
            let mut sink = sink;
            let at = sink.committed();
            sink.abandon_since(at);
            self.sink = Some(sink);
            // Closed, or at least one segment complete for `recover` to rebuild: kept.
            if self.close_part(true).is_ok() || self.members > 0 {
                return;
            }
            // Nothing complete and no room even to close: garbage, removed below.
            if let Some(s) = self.sink.take() {
                s.abandon();
            }
        } else {
            sink.abandon();
        }
        if !self.created {
            return;
        }
        let parts = self.parts();
        if self.path.is_dir() {
            for m in ["container.description", "version.txt"] {
                let _ = std::fs::remove_file(self.path.join(m));
            }
            let _ = std::fs::remove_dir(&self.path);
        } else {
            for p in parts {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}
