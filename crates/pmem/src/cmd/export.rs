//! `pmem export`: images (and with --all, every stream) to files under a directory, with names
//! derived from recorded names or URNs that can never leave that directory.

use super::{open, threads};
use crate::cli::{ExportFormat, Input};
use crate::{exit, Failure, WithCode};
use anyhow::{anyhow, Context};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates an output file 0600, never through a symlink, never replacing an existing file unless `truncate`.
pub fn create_output(p: &Path, truncate: bool) -> std::io::Result<File> {
    aff4::volume::write::create_file(p, truncate).map_err(std::io::Error::from)
}

/// An output file for image bytes: buffered, with zero pages left as holes (a memory image is
/// mostly zeros; the bytes read back are the same).
pub type ImageOutput = std::io::BufWriter<memacq::sparse::SparseFile>;

/// Creates an [`ImageOutput`] as [`create_output`] does.
pub fn create_image_output(p: &Path, truncate: bool) -> std::io::Result<ImageOutput> {
    Ok(std::io::BufWriter::with_capacity(1 << 20, memacq::sparse::SparseFile::new(create_output(p, truncate)?)))
}

/// Writes what is buffered and sets the final length (over a trailing hole).
pub fn finish_image_output(out: ImageOutput) -> std::io::Result<()> {
    out.into_inner().map_err(|e| e.into_error())?.finish().map(drop)
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
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    let mut jobs: Vec<(String, String)> = Vec::new();
    // Memory images are exported as their physical view (whatever their layout inside).
    let has_memory = c.images().iter().any(|i| i.memory && (patterns.is_empty() || patterns.iter().any(|p| glob(p, &i.urn))));
    let mut n = 0;
    if has_memory {
        export_memory(&c, dir, patterns, ExportFormat::Raw, truncate, threads(t))?;
        n += 1;
    }
    for i in c.images() {
        if i.data_streams.is_empty() || i.memory {
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
        if !path.starts_with(dir) {
            return Err(anyhow!("refusing to write outside {}: {}", dir.display(), path.display())).code(exit::OUTPUT);
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display())).code(exit::OUTPUT)?;
        }
        let s = c.open_stream(&urn).with_context(|| format!("cannot open {urn}")).code(exit::INPUT)?;
        let mut f = create_image_output(&path, truncate).code(exit::OUTPUT)?;
        aff4::parallel::for_each_block(&*s, 0, s.size(), aff4::parallel::BLOCK, threads(t), |_, b| {
            f.write_all(b).map_err(|e| aff4::Error::io(path.display().to_string(), e))
        })
        .with_context(|| format!("exporting {urn}"))
        .code(exit::INPUT)?;
        finish_image_output(f).with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
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
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    for i in images {
        let view = std::sync::Arc::new(
            memacq::export::MemoryView::open(c, &i.urn).with_context(|| format!("opening {}", i.urn)).code(exit::INPUT)?,
        );
        let (ext, f) = match format {
            ExportFormat::Elf => ("elf", memacq::export::ExportFormat::Elf),
            ExportFormat::Lime => ("lime", memacq::export::ExportFormat::Lime),
            ExportFormat::Raw => ("raw", memacq::export::ExportFormat::Raw),
        };
        let mut name = safe_relative(&i.urn);
        name.set_extension(ext);
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).code(exit::OUTPUT)?;
        }
        let mut out = create_image_output(&path, truncate).code(exit::OUTPUT)?;
        let n = memacq::export::write(view.clone(), f, &mut out, t).with_context(|| format!("exporting {}", i.urn)).code(exit::INPUT)?;
        finish_image_output(out).with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
        eprintln!("{} -> {} ({n} bytes, {} ranges)", i.urn, path.display(), view.ranges.len());
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
