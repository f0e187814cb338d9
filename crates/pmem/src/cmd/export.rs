//! `pmem export`: images (and with --all, every stream) to files under a directory, with names
//! derived from recorded names or URNs that can never leave that directory.

use super::open;
use crate::args::threads;
use crate::args::Input;
use crate::files::{glob, ImageOutput};
use crate::{exit, Failure, WithCode};
use anyhow::{anyhow, Context};
use memview::export::ExportFormat;
use memview::outdir::OutDir;
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// `pmem export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// Destination directory (created if missing).
    #[arg(long = "destination", short = 'D', value_name = "DIR")]
    pub dir: PathBuf,
    /// Only objects whose URN or recorded name matches this glob (repeatable).
    #[arg(long = "export", short = 'e', value_name = "GLOB")]
    pub patterns: Vec<String>,
    /// Export every stream too, not just images.
    #[arg(long)]
    pub all: bool,
    /// Output format for memory images.
    #[arg(long, value_parser = crate::args::export_format(), default_value = ExportFormat::ALL[0].name())]
    pub format: ExportFormat,
    /// Overwrite existing files.
    #[arg(short = 't', long)]
    pub truncate: bool,
    /// Reader threads.
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
    /// Machine-readable JSON on stdout: every file written, its size and SHA-256.
    #[arg(long)]
    pub json: bool,
    /// Hash every file written, however large its holes (by default a file with more than
    /// 4 GiB of holes is not hashed: its zeros would take minutes to hash, and cost nothing to write).
    #[arg(long)]
    pub sha256_always: bool,
}

/// Holes (zeros never written) up to which a file is hashed by default.
const HASHED_HOLES: u64 = 4 << 30;

/// A file written, with the SHA-256 of its bytes computed while writing it.
struct Written {
    urn: String,
    path: PathBuf,
    bytes: u64,
    sha256: Option<String>,
}

impl Written {
    fn new(urn: &str, path: PathBuf, bytes: u64, sha256: Option<Vec<u8>>) -> Written {
        let w = Written { urn: urn.to_string(), path, bytes, sha256: sha256.as_deref().map(aff4::hash::hex) };
        let hash = match &w.sha256 {
            Some(h) => format!("sha256 {h}"),
            None => "not hashed: more than 4 GiB of it are holes; --sha256-always hashes it".to_string(),
        };
        eprintln!("{} -> {} ({} bytes, {hash})", w.urn, w.path.display(), w.bytes);
        w
    }
}

/// An output for a file of `size` bytes of which `data` are written (the rest holes).
fn output(dir: &OutDir, rel: &Path, truncate: bool, size: u64, data: u64, always: bool) -> Result<ImageOutput, Failure> {
    let out = ImageOutput::under(dir, rel, truncate).code(exit::OUTPUT)?;
    Ok(if always || size.saturating_sub(data) <= HASHED_HOLES { out } else { out.without_hash() })
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, dir, patterns, format, truncate, t) = (&a.input, a.dir.as_path(), &a.patterns[..], a.format, a.truncate, a.threads);
    let c = open(input)?;
    super::warn_problems(&c);
    let mut written = Vec::new();
    if format != ExportFormat::Raw {
        written = export_memory(&c, dir, patterns, format, truncate, threads(t), a.sha256_always)?;
    } else {
        export_all(&c, a, &mut written)?;
    }
    if a.json {
        let files: Vec<_> = written.iter().map(|w| json!({"urn": w.urn, "path": w.path, "bytes": w.bytes, "sha256": w.sha256})).collect();
        println!("{}", serde_json::to_string_pretty(&json!({"files": files}))?);
    }
    Ok(0)
}

/// Every image (memory images as their physical view), and with --all every stream.
fn export_all(c: &aff4::Container, a: &Args, written: &mut Vec<Written>) -> Result<(), Failure> {
    let (dir, patterns, all, truncate, t) = (a.dir.as_path(), &a.patterns[..], a.all, a.truncate, a.threads);
    let out_dir = OutDir::create(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    let mut jobs: Vec<(String, String)> = Vec::new();
    // Memory images are exported as their physical view (whatever their layout inside).
    let has_memory = c.images().iter().any(|i| i.memory && (patterns.is_empty() || patterns.iter().any(|p| glob(p, &i.urn))));
    let mut n = 0;
    if has_memory {
        written.extend(export_memory(c, dir, patterns, ExportFormat::Raw, truncate, threads(t), a.sha256_always)?);
        n += 1;
    }
    // Read timelines go beside their memory image (see export_memory).
    let timelines: HashSet<String> =
        c.images().iter().filter(|i| i.memory).filter_map(|i| memformat::timeline::urn_of(c, &i.urn)).collect();
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
        let zero = memview::export::zero_ranges(c, &urn);
        let data = memview::export::data_bytes(&zero, s.size());
        check_space(&out_dir, data, &urn)?;
        let mut f = output(&out_dir, &rel, truncate, s.size(), data, a.sha256_always)?;
        memview::export::write_stream(&*s, &zero, &mut f, threads(t)).with_context(|| format!("exporting {urn}")).code(exit::INPUT)?;
        let sha = f.finish().with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
        written.push(Written::new(&urn, path, s.size(), sha));
        n += 1;
    }
    if n == 0 {
        return Err(anyhow!("nothing matched; `pmem ls` shows what the volumes hold")).code(exit::INPUT);
    }
    Ok(())
}

/// Memory images as ELF cores or LiME files.
fn export_memory(
    c: &aff4::Container,
    dir: &Path,
    patterns: &[String],
    format: ExportFormat,
    truncate: bool,
    t: usize,
    sha256_always: bool,
) -> Result<Vec<Written>, Failure> {
    let mut written = Vec::new();
    let images: Vec<aff4::ImageInfo> =
        c.images().into_iter().filter(|i| i.memory && (patterns.is_empty() || patterns.iter().any(|p| glob(p, &i.urn)))).collect();
    if images.is_empty() {
        return Err(anyhow!("no memory image to export as {}; `--format raw` exports any image", format.name())).code(exit::INPUT);
    }
    let out_dir = OutDir::create(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    for i in images {
        let view = std::sync::Arc::new(
            memview::export::MemoryView::open(c, &i.urn).with_context(|| format!("opening {}", i.urn)).code(exit::INPUT)?,
        );
        let mut name = safe_relative(&i.urn);
        name.set_extension(format.name());
        let path = dir.join(&name);
        let file = memview::export::FormattedMemory::new(view.clone(), format);
        check_space(&out_dir, file.data_bytes(), &i.urn)?;
        let size = file.runs().iter().map(|r| r.1).sum();
        let mut out = output(&out_dir, &name, truncate, size, file.data_bytes(), sha256_always)?;
        let n = memview::export::write_formatted(&file, &mut out, t).with_context(|| format!("exporting {}", i.urn)).code(exit::INPUT)?;
        let sha = out.finish().with_context(|| format!("writing {}", path.display())).code(exit::OUTPUT)?;
        written.push(Written::new(&i.urn, path, n, sha));
        // When each part was read, beside the image as `NAME.read-timeline.json`.
        if let Some(t) = memformat::timeline::urn_of(c, &i.urn) {
            let bytes = c.open_stream(&t).and_then(|s| s.read_all(64 << 20)).with_context(|| format!("reading {t}")).code(exit::INPUT)?;
            name.set_extension(memformat::timeline::NAME);
            // Exports of the same image in several formats share it.
            if std::fs::read(dir.join(&name)).is_ok_and(|old| old == bytes) {
                continue;
            }
            let mut out = ImageOutput::under(&out_dir, &name, truncate).code(exit::OUTPUT)?;
            let sha = out
                .write_all(&bytes)
                .and_then(|_| out.finish())
                .with_context(|| format!("writing {}", dir.join(&name).display()))
                .code(exit::OUTPUT)?;
            written.push(Written::new(&t, dir.join(&name), bytes.len() as u64, sha));
        }
    }
    Ok(written)
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
