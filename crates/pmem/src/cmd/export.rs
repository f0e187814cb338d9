//! `pmem export`: images (and with --all, every stream) to files under a directory, with names
//! derived from recorded names or URNs that can never leave that directory.

use super::{open, threads};
use crate::cli::{ExportFormat, Input};
use crate::{exit, Failure, WithCode};
use anyhow::{anyhow, Context};
use memview::outdir::OutDir;
use memview::sparse::{HoleWrite, SparseFile};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates an output file 0600, never through a symlink, never replacing an existing file unless `truncate`.
pub fn create_output(p: &Path, truncate: bool) -> std::io::Result<File> {
    aff4::volume::write::create_file(p, truncate).map_err(std::io::Error::from)
}

/// An output file for image bytes: buffered, with zero pages left as holes (a memory image is
/// mostly zeros; the bytes read back are the same), put in place by [`ImageOutput::finish`].
pub struct ImageOutput {
    w: std::io::BufWriter<SparseFile>,
    commit: Option<memview::outdir::Commit>,
}

impl ImageOutput {
    fn new(file: File, commit: Option<memview::outdir::Commit>) -> ImageOutput {
        ImageOutput { w: std::io::BufWriter::with_capacity(1 << 20, SparseFile::new(file)), commit }
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
    /// in place.
    ///
    /// # Errors
    /// Writing, setting the length or the rename fails.
    pub fn finish(self) -> std::io::Result<()> {
        let file = self.w.into_inner().map_err(|e| e.into_error())?.finish()?;
        if let Some(c) = self.commit {
            c.run(file)?;
        }
        Ok(())
    }
}

impl Write for ImageOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl HoleWrite for ImageOutput {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        self.w.skip(n)
    }
}

/// Refuses an export that would not fit: `need` bytes of data (holes not counted).
fn check_space(dir: &OutDir, need: u64, what: &str) -> Result<(), Failure> {
    if let Some(free) = dir.free_bytes() {
        if need > free {
            return Err(anyhow!(
                "{what} needs {need} bytes ({}) of data, but only {free} bytes ({}) are free under {}: export to a larger disk, or fewer images with -e",
                super::human(need),
                super::human(free),
                dir.root().display()
            ))
            .code(exit::OUTPUT);
        }
    }
    Ok(())
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

/// A relative path under the export directory for an object, from its recorded name or URN.
pub fn safe_relative(name: &str) -> PathBuf {
    let trimmed = name.strip_prefix("aff4://").unwrap_or(name);
    let mut out = PathBuf::new();
    for comp in trimmed.split(['/', '\\']) {
        let mut c: String = comp.chars().map(|ch| if ch.is_control() || ch == ':' { '_' } else { ch }).collect();
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            c = "__".into();
        }
        while c.len() > 200 {
            c.pop();
        }
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push("unnamed");
    }
    out
}

pub fn run(
    input: &Input,
    dir: &Path,
    patterns: &[String],
    all: bool,
    format: ExportFormat,
    truncate: bool,
    t: Option<usize>,
) -> Result<u8, Failure> {
    let c = open(input)?;
    super::warn_problems(&c);
    if format != ExportFormat::Raw {
        return export_memory(&c, dir, patterns, format, truncate, threads(t));
    }
    let out_dir = OutDir::create(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    let mut jobs: Vec<(String, String)> = Vec::new();
    // Memory images are exported as their physical view (whatever their layout inside).
    let has_memory = c.images().iter().any(|i| i.memory && (patterns.is_empty() || patterns.iter().any(|p| glob(p, &i.urn))));
    let mut n = 0;
    if has_memory {
        export_memory(&c, dir, patterns, ExportFormat::Raw, truncate, threads(t))?;
        n += 1;
    }
    // Read timelines go beside their memory image (see export_memory).
    let timelines: HashSet<String> =
        c.images().iter().filter(|i| i.memory).filter_map(|i| memformat::timeline::urn_of(&c, &i.urn)).collect();
    for i in c.images() {
        if i.data_streams.is_empty() || i.memory || timelines.contains(&i.urn) {
            continue;
        }
        let name = i.name.clone().unwrap_or_else(|| i.urn.clone());
        jobs.push((i.urn.clone(), name));
    }
    if all {
        for s in c.streams() {
            jobs.push((s.urn.clone(), s.urn.clone()));
        }
    }
    let matches = |urn: &str, name: &str| patterns.is_empty() || patterns.iter().any(|p| glob(p, urn) || glob(p, name));
    let mut used = HashSet::new();
    for (urn, name) in jobs {
        if !matches(&urn, &name) {
            continue;
        }
        let mut rel = safe_relative(&name);
        while !used.insert(rel.clone()) {
            rel.set_file_name(format!("{}_", rel.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()));
        }
        let path = dir.join(&rel);
        let s = c.open_stream(&urn).with_context(|| format!("cannot open {urn}")).code(exit::INPUT)?;
        let zero = memview::export::zero_ranges(&c, &urn);
        check_space(&out_dir, memview::export::data_bytes(&zero, s.size()), &urn)?;
        let mut f = ImageOutput::under(&out_dir, &rel, truncate).code(exit::OUTPUT)?;
        memview::export::write_stream(&*s, &zero, &mut f, threads(t)).with_context(|| format!("exporting {urn}")).code(exit::INPUT)?;
        f.finish().with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
        eprintln!("{urn} -> {} ({} bytes)", path.display(), s.size());
        n += 1;
    }
    if n == 0 {
        return Err(anyhow!("nothing matched; `pmem ls` shows what the volumes hold")).code(exit::INPUT);
    }
    Ok(0)
}

/// Memory images as ELF cores or LiME files.
fn export_memory(
    c: &aff4::Container,
    dir: &Path,
    patterns: &[String],
    format: ExportFormat,
    truncate: bool,
    t: usize,
) -> Result<u8, Failure> {
    let images: Vec<aff4::ImageInfo> =
        c.images().into_iter().filter(|i| i.memory && (patterns.is_empty() || patterns.iter().any(|p| glob(p, &i.urn)))).collect();
    if images.is_empty() {
        return Err(anyhow!("no memory image to export as {format:?}; `--format raw` exports any image")).code(exit::INPUT);
    }
    let out_dir = OutDir::create(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    for i in images {
        let view = std::sync::Arc::new(
            memview::export::MemoryView::open(c, &i.urn).with_context(|| format!("opening {}", i.urn)).code(exit::INPUT)?,
        );
        let (ext, f) = match format {
            ExportFormat::Elf => ("elf", memview::export::ExportFormat::Elf),
            ExportFormat::Lime => ("lime", memview::export::ExportFormat::Lime),
            ExportFormat::Raw => ("raw", memview::export::ExportFormat::Raw),
        };
        let mut name = safe_relative(&i.urn);
        name.set_extension(ext);
        let path = dir.join(&name);
        let file = memview::export::FormattedMemory::new(view.clone(), f);
        check_space(&out_dir, file.data_bytes(), &i.urn)?;
        let mut out = ImageOutput::under(&out_dir, &name, truncate).code(exit::OUTPUT)?;
        let n = memview::export::write_formatted(&file, &mut out, t).with_context(|| format!("exporting {}", i.urn)).code(exit::INPUT)?;
        out.finish().with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
        eprintln!("{} -> {} ({n} bytes, {} ranges)", i.urn, path.display(), view.ranges.len());
        // When each part was read, beside the image as `NAME.read-timeline.json`.
        if let Some(t) = memformat::timeline::urn_of(c, &i.urn) {
            let bytes = c.open_stream(&t).and_then(|s| s.read_all(64 << 20)).with_context(|| format!("reading {t}")).code(exit::INPUT)?;
            name.set_extension(memformat::timeline::NAME);
            // Exports of the same image in several formats share it.
            if std::fs::read(dir.join(&name)).is_ok_and(|old| old == bytes) {
                continue;
            }
            let mut out = ImageOutput::under(&out_dir, &name, truncate).code(exit::OUTPUT)?;
            out.write_all(&bytes)
                .and_then(|_| out.finish())
                .with_context(|| format!("writing {}", dir.join(&name).display()))
                .code(exit::OUTPUT)?;
            eprintln!("{t} -> {}", dir.join(&name).display());
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_stay_inside() {
        for bad in ["../../etc/passwd", "/etc/passwd", "aff4://x/../../y", "a/./../b", "..", "c:\\..\\x", "\0a"] {
            let r = safe_relative(bad);
            assert!(r.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{bad} -> {r:?}");
        }
        assert!(glob("*dream*", "aff4://x//test/dream.txt"));
        assert!(!glob("*.raw", "x.aff4"));
    }
}
