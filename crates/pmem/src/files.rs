//! Files the binary reads and writes itself: outputs created 0600 that never follow a
//! symlink, image bytes with holes, globs, and file times as AFF4 records them.

use memview::outdir::OutDir;
use memview::sparse::{HoleWrite, SparseFile};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Wraps an error as "cannot VERB PATHS: ERROR", leaving the paths out when the error already
/// names one of them (errors of the libraries name their file): a path is said once. An
/// output that exists gets `exists_hint` (what the command offers: `-t`, or nothing).
pub fn cannot<E: std::error::Error + Send + Sync + 'static>(
    verb: &'static str,
    paths: Vec<String>,
    exists_hint: &'static str,
) -> impl FnOnce(E) -> anyhow::Error {
    move |e| {
        let msg = e.to_string();
        let hint = if msg.contains("File exists") || msg.contains("output exists") { exists_hint } else { "" };
        let ctx = if paths.iter().any(|p| msg.contains(p.as_str())) {
            format!("cannot {verb}{hint}")
        } else {
            format!("cannot {verb} {}{hint}", paths.join(" "))
        };
        anyhow::Error::new(e).context(ctx)
    }
}

/// Creates an output file 0600, never through a symlink, never replacing an existing file unless `truncate`.
pub fn create_output(p: &Path, truncate: bool) -> std::io::Result<File> {
    aff4::volume::write::create_file(p, truncate).map_err(std::io::Error::from)
}

/// An output file for image bytes: buffered, with zero pages left as holes (a memory image is
/// mostly zeros; the bytes read back are the same), hashed (SHA-256) as it is written, and put
/// in place by [`ImageOutput::finish`].
pub struct ImageOutput {
    w: std::io::BufWriter<SparseFile>,
    commit: Option<memview::outdir::Commit>,
    sha256: Option<aff4::hash::Hasher>,
}

/// Zeros fed to the hash for a hole.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

impl ImageOutput {
    fn new(file: File, commit: Option<memview::outdir::Commit>) -> ImageOutput {
        let w = std::io::BufWriter::with_capacity(1 << 20, SparseFile::new(file));
        ImageOutput { w, commit, sha256: Some(aff4::HashAlgo::Sha256.hasher()) }
    }

    /// Leaves the file unhashed (its holes would take too long to hash as zeros).
    pub fn without_hash(mut self) -> ImageOutput {
        self.sha256 = None;
        self
    }

    /// A new file at `p` (as [`create_output`]).
    ///
    /// # Errors
    /// It exists (without `truncate`), is a symlink, or cannot be created.
    pub fn at(p: &Path, truncate: bool) -> std::io::Result<ImageOutput> {
        Ok(ImageOutput::new(create_output(p, truncate)?, None))
    }

    /// A new file `rel` under `dir`, never outside it; a replacement (`truncate`) is written
    /// under a temporary name and renamed into place by [`ImageOutput::finish`].
    ///
    /// # Errors
    /// As [`memview::outdir::OutDir::create_file`].
    pub fn under(dir: &OutDir, rel: &Path, truncate: bool) -> std::io::Result<ImageOutput> {
        let (file, commit) = dir.create_file(rel, truncate)?.into_parts();
        Ok(ImageOutput::new(file, Some(commit)))
    }

    /// Writes what is buffered, sets the final length (over a trailing hole) and puts the file
    /// in place; returns the SHA-256 of the file's bytes (holes read as zeros), unless
    /// [`ImageOutput::without_hash`].
    ///
    /// # Errors
    /// Writing, setting the length or the rename fails.
    pub fn finish(self) -> std::io::Result<Option<Vec<u8>>> {
        let file = self.w.into_inner().map_err(|e| e.into_error())?.finish()?;
        if let Some(c) = self.commit {
            c.run(file)?;
        }
        Ok(self.sha256.map(aff4::hash::Hasher::finish))
    }
}

impl Write for ImageOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        if let Some(h) = self.sha256.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl HoleWrite for ImageOutput {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        self.w.skip(n)?;
        if let Some(h) = self.sha256.as_mut() {
            let mut left = n;
            while left > 0 {
                let k = left.min(ZEROS.len() as u64) as usize;
                h.update(&ZEROS[..k]);
                left -= k as u64;
            }
        }
        Ok(())
    }
}

/// A glob match with `*` and `?`.
pub fn glob(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Expands `*`/`?` in the last path component.
pub fn expand(pat: &str) -> Vec<PathBuf> {
    let p = Path::new(pat);
    let Some(fname) = p.file_name().map(|f| f.to_string_lossy().into_owned()) else { return vec![p.to_path_buf()] };
    if !fname.contains(['*', '?']) {
        return if p.exists() { vec![p.to_path_buf()] } else { vec![] };
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| glob(&fname, &e.file_name().to_string_lossy())).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
