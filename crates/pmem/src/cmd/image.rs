//! `pmem image`: files, block devices and stdin into aff4:Image objects (Map over a compressed
//! ImageStream, zero pages not stored, hashed while written); `-i` adds logical files.

use super::{human, threads};
use crate::{exit, progress, Failure, WithCode};
use aff4::capture::{blocks, Capture, Input, OnProgress, Plan, RetryPolicy, Sequential};
use aff4::imager::{Ending, ImagerOptions};
use aff4::logical::{add_file, FileTimes};
use aff4::rdf::Node;
use aff4::stream::ReadAt;
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::{vocab, Codec, HashAlgo};
use anyhow::{anyhow, Context};
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The Image types of an imaged file or device.
const DISK_TYPES: [&str; 3] = [vocab::IMAGE, vocab::DISK_IMAGE, vocab::CONTIGUOUS_IMAGE];

/// Options shared by `image` and `acquire` for how data is stored.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Output volume: an .aff4 file (added to if it exists, unless -t), a directory or a path
    /// ending in / for a directory volume, - to stream the volume to stdout, or s3://BUCKET/KEY
    /// to upload it to object storage as it is written.
    #[arg(short = 'o', long = "output", value_name = "VOLUME")]
    pub output: PathBuf,
    /// Replace the output volume instead of adding to it.
    #[arg(short = 't', long = "truncate")]
    pub truncate: bool,
    /// Chunk compression.
    #[arg(short = 'c', long = "compression", value_name = "CODEC", default_value = "snappy", value_parser = ["snappy", "lz4", "zlib", "deflate", "stored"])]
    pub codec: String,
    /// Compression threads (default: all cores).
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
    /// Linear hashes of each image, comma-separated: md5, sha1, sha256, sha512, blake2b.
    #[arg(long = "hash", value_delimiter = ',', default_value = "sha256")]
    pub hashes: Vec<String>,
    /// Also write per-chunk block hashes with these algorithms (and the Block-Map hash).
    #[arg(long = "block-hashes", value_delimiter = ',')]
    pub block_hashes: Vec<String>,
    /// Chunks per bevy.
    #[arg(long, default_value_t = 1024)]
    pub chunks_per_bevy: u32,
    /// Split the volume into parts of at most SIZE (e.g. 650M, 4G): OUT.aff4, OUT.A01, OUT.A02, …,
    /// which open together (give the first; the others are found beside it).
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size)]
    pub split: Option<u64>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary (errors still go to stderr).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress as JSON lines on stderr instead of a bar (about once a second and at each phase:
    /// {"phase", "done", "total", …, "elapsed"}), for scripts and fleet tools.
    #[arg(long)]
    pub progress_json: bool,
}

/// A volume uploaded to object storage as it is written (multipart; completed at the end, aborted on failure).
#[cfg(feature = "s3")]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    let (writer, upload) = remote::create(url).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)?;
    let u = url.to_string();
    let complete: aff4::volume::write::OnClose =
        Box::new(move || upload.complete().map(|_| ()).map_err(|e| aff4::Error::io(u.clone(), std::io::Error::other(e.to_string()))));
    VolumeWriter::streaming(Box::new(writer), url, Some(complete)).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)
}

#[cfg(not(feature = "s3"))]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    Err(anyhow!("{url}: this pmem was built without S3 support (cargo feature s3)")).code(exit::USAGE)
}

/// Parses a size: bytes, or with K, M, G, T (powers of 1024; an optional trailing B or iB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).or_else(|| t.strip_suffix('b')).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s}: not a size (e.g. 650M, 4G)"))?;
    if n.is_nan() || n <= 0.0 || n * mult as f64 > u64::MAX as f64 {
        return Err(format!("{s}: not a usable size"));
    }
    Ok((n * mult as f64) as u64)
}

fn algos(names: &[String]) -> Result<Vec<HashAlgo>, Failure> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| HashAlgo::from_name(n).ok_or_else(|| anyhow!("unknown hash {n:?} (md5, sha1, sha256, sha512, blake2b)")))
        .collect::<Result<_, _>>()
        .code(exit::USAGE)
}

impl StoreArgs {
    /// Pipeline options from the flags.
    pub fn imager_options(&self) -> Result<ImagerOptions, Failure> {
        Ok(ImagerOptions {
            codec: Codec::from_name(&self.codec).ok_or_else(|| anyhow!("unknown codec {}", self.codec)).code(exit::USAGE)?,
            threads: threads(self.threads),
            hashes: algos(&self.hashes)?,
            block_hashes: algos(&self.block_hashes)?,
            chunks_per_bevy: self.chunks_per_bevy,
            ..ImagerOptions::default()
        })
    }
    /// Opens the output volume.
    pub fn open_volume(&self) -> Result<VolumeWriter, Failure> {
        if self.output.as_os_str() == "-" && self.json {
            return Err(anyhow!("--json and -o - both want stdout; drop one")).code(exit::USAGE);
        }
        let name = self.output.display().to_string();
        if name.starts_with("s3://") {
            if self.split.is_some() {
                return Err(anyhow!("--split writes files; it cannot be combined with -o {name}")).code(exit::USAGE);
            }
            return open_remote(&name);
        }
        let mode = if self.truncate { Mode::Truncate } else { Mode::Append };
        let mut vol = VolumeWriter::create(&self.output, mode)
            .with_context(|| format!("cannot write {}", self.output.display()))
            .code(exit::OUTPUT)?;
        if let Some(limit) = self.split {
            // Room for one full bevy stored uncompressed, its index, and the part's turtle and directory.
            let chunk = ImagerOptions::default().chunk_size as u64;
            let margin = chunk * u64::from(self.chunks_per_bevy) * 17 / 16 + (4 << 20);
            vol.set_split(limit, margin, self.truncate).context("--split").code(exit::USAGE)?;
        }
        Ok(vol)
    }
    /// Hash algorithms for logical files.
    pub fn file_hashes(&self) -> Result<Vec<HashAlgo>, Failure> {
        algos(&self.hashes)
    }
}

/// Times of a file as RFC 3339.
pub fn file_times(meta: &std::fs::Metadata) -> FileTimes {
    let f = |t: std::io::Result<std::time::SystemTime>| {
        t.ok().map(|t| time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
    };
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        time::OffsetDateTime::from_unix_timestamp(meta.ctime())
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
    };
    #[cfg(not(unix))]
    let changed = None;
    FileTimes { modified: f(meta.modified()), accessed: f(meta.accessed()), changed, born: f(meta.created()) }
}

/// Adds logical files (globs allowed) to `vol`; returns (name, urn, size).
pub fn add_logical(vol: &mut VolumeWriter, patterns: &[String], hashes: &[HashAlgo]) -> Result<Vec<(String, String, u64)>, Failure> {
    let mut out = Vec::new();
    for pat in patterns {
        let paths = expand(pat);
        if paths.is_empty() {
            return Err(anyhow!("{pat}: no such file")).code(exit::INPUT);
        }
        for p in paths {
            let name = std::path::absolute(&p).unwrap_or(p.clone()).display().to_string();
            let mut f = File::open(&p).with_context(|| format!("cannot read {}", p.display())).code(exit::INPUT)?;
            let meta = f.metadata().code(exit::INPUT)?;
            if meta.is_dir() {
                continue;
            }
            let (urn, size) =
                add_file(vol, &name, &mut f, &file_times(&meta), hashes).with_context(|| format!("adding {name}")).code(exit::OUTPUT)?;
            out.push((name, urn, size));
        }
    }
    Ok(out)
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
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| crate::cmd::export::glob(&fname, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where an input's bytes come from and how they are read: a file or device of known size is
/// read by offset (a bad sector retried alone); stdin, pipes and files that do not know their
/// size (procfs) as a stream.
fn open_input(input: &str) -> Result<Opened, Failure> {
    if input == "-" {
        return Ok(Opened { src: Arc::new(crate::platform::Stdin), plan: Plan::Stream { block: BLOCK as usize }, size: None, meta: None });
    }
    let f = File::open(input).with_context(|| format!("cannot read {input}")).code(exit::INPUT)?;
    let meta = f.metadata().ok();
    Ok(match crate::platform::input_size(&f) {
        Some(size) => {
            Opened { src: Arc::new(f), plan: Plan::Blocks(blocks(0, size, 0, BLOCK, RetryPolicy::sectors().unit)), size: Some(size), meta }
        }
        None => {
            Opened { src: Arc::new(Sequential(std::sync::Mutex::new(f))), plan: Plan::Stream { block: BLOCK as usize }, size: None, meta }
        }
    })
}

/// An input ready to be read.
struct Opened {
    src: Arc<dyn ReadAt>,
    plan: Plan,
    /// Its size, when known.
    size: Option<u64>,
    /// Its file metadata (times), when it is a file.
    meta: Option<std::fs::Metadata>,
}

const BLOCK: u64 = 4 << 20;

/// Images one input (path or `-`) into `vol`; returns a JSON summary.
fn image_one(
    vol: &mut VolumeWriter,
    input: &str,
    opts: &ImagerOptions,
    quiet: bool,
    jl: &mut Option<progress::JsonLines>,
) -> Result<serde_json::Value, Failure> {
    let Opened { src, plan, size, meta } = open_input(input)?;
    let path = vol.path().display().to_string();
    let mut w = vol.image(opts, &DISK_TYPES, size).code(exit::USAGE)?;
    let pb = progress::bytes(size.unwrap_or(0), input, quiet);
    let mut on_progress = OnProgress(|done, _| {
        pb.set_position(done);
        if let Some(j) = jl.as_mut() {
            j.tick(json!({"phase": "image", "input": input, "done": done, "total": size}), false);
        }
    });
    let outcome = Capture::new(Input::Shared(src), RetryPolicy::sectors(), &crate::signals::STOP)
        .run(&mut w, &plan, &mut on_progress)
        .with_context(|| format!("writing {path}"))
        .code(exit::OUTPUT)?;
    let off = w.position();
    pb.finish_and_clear();
    let interrupted = outcome.ending == Ending::Interrupted;
    if let Some(j) = jl.as_mut() {
        j.tick(json!({"phase": "image", "input": input, "done": off, "total": size, "interrupted": interrupted}), true);
    }
    let name = if input == "-" {
        "(stdin)".to_string()
    } else {
        std::path::absolute(input).map(|p| p.display().to_string()).unwrap_or(input.to_string())
    };
    let mut extra = vec![(format!("{}diskDeviceName", vocab::AFF4), Node::string(name))];
    if let Some(m) = &meta {
        let t = file_times(m);
        for (p, v) in [("lastWritten", t.modified), ("lastAccessed", t.accessed), ("recordChanged", t.changed)] {
            if let Some(v) = v {
                extra.push((format!("{}{p}", vocab::AFF4), Node::typed(v, format!("{}dateTime", vocab::XSD))));
            }
        }
    }
    let f = w.finish(size.unwrap_or(off), outcome.ending.clone(), extra).with_context(|| format!("writing {path}")).code(exit::OUTPUT)?;
    let r = &f.result;
    let (write_error, read_error) = match &outcome.ending {
        Ending::WriteFailed(e) => (Some(e.clone()), None),
        Ending::ReadStopped(e) => (None, Some(format!("reading {input} stopped at byte {off}: {e}"))),
        _ => (None, None),
    };
    Ok(json!({
        "input": input, "image": f.urn, "map": r.map_urn, "stream": r.stream_urn, "size": r.size,
        "stored_bytes": r.stats.stored_bytes, "zero_bytes": r.stats.zero_bytes, "unreadable_bytes": r.stats.unreadable_bytes,
        "interrupted": interrupted, "hashed_bytes": r.hashed, "write_error": write_error, "read_error": read_error,
        "completion": f.completion.to_string(),
        "kept_bytes": if write_error.is_some() { r.lost_from.unwrap_or(0) } else { r.size },
        "hashes": r.hashes.iter().map(|(a, d)| (a.name().to_string(), aff4::hash::hex(d))).collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

pub fn run(store: &StoreArgs, inputs: &[String], logical: &[String]) -> Result<u8, Failure> {
    if inputs.is_empty() && logical.is_empty() {
        return Err(anyhow!("nothing to image: give INPUT files/devices or -i FILE")).code(exit::USAGE);
    }
    let opts = store.imager_options()?;
    // Every input is checked before the volume is created, so a typo leaves nothing behind.
    for input in inputs.iter().filter(|i| *i != "-") {
        let meta = std::fs::metadata(input).with_context(|| format!("cannot read {input}")).code(exit::INPUT)?;
        if meta.is_dir() {
            return Err(anyhow!("{input} is a directory: image a file or device, or add its files with -i '{input}/*'")).code(exit::USAGE);
        }
    }
    let mut vol = store.open_volume()?;
    crate::signals::install();
    let mut summary = Vec::new();
    let mut interrupted = false;
    let mut jl = progress::JsonLines::new(store.progress_json);
    for input in inputs {
        let s = image_one(&mut vol, input, &opts, store.quiet || store.json || store.progress_json, &mut jl)?;
        interrupted = s["interrupted"] == true;
        if !store.json && !store.quiet {
            let hashed = s["hashed_bytes"].as_u64().unwrap_or(0);
            eprintln!(
                "{input}: {}{} bytes ({}) -> {} stored; {}{}",
                if interrupted { "INTERRUPTED, " } else { "" },
                s["size"],
                human(s["size"].as_u64().unwrap_or(0)),
                human(s["stored_bytes"].as_u64().unwrap_or(0)),
                if s["hashed_bytes"] == s["size"] { String::new() } else { format!("hashes of the first {hashed} bytes: ") },
                s["hashes"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
        }
        let failed = !s["write_error"].is_null();
        summary.push(s);
        if interrupted || failed {
            break;
        }
    }
    let write_error = summary.iter().find_map(|s| s["write_error"].as_str().map(String::from));
    // Interrupted: the volume is closed with what it has; inputs and files not reached are left out.
    if write_error.is_some() && summary.iter().all(|s| s["kept_bytes"] == 0) {
        // Nothing of the input was stored: the volume is left as it was (a new one removed).
        let path = vol.path().display().to_string();
        vol.discard();
        return Err(anyhow!("{}\nnothing of the input could be stored; {path} is as it was before", write_error.unwrap_or_default()))
            .code(exit::OUTPUT);
    }
    let files = if interrupted || write_error.is_some() { Vec::new() } else { add_logical(&mut vol, logical, &store.file_hashes()?)? };
    let path = vol.path().display().to_string();
    let urn = vol.urn().to_string();
    vol.finish().with_context(|| format!("closing {path}")).code(exit::OUTPUT)?;
    if store.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"volume": path, "urn": urn, "images": summary, "files": files.iter().map(|(n, u, s)| json!({"name": n, "urn": u, "size": s})).collect::<Vec<_>>()})
            )?
        );
    } else if !store.quiet {
        eprintln!(
            "wrote {path} ({urn}){}",
            if interrupted { "; interrupted: the inputs after it and -i files were not imaged" } else { "" }
        );
    }
    if let Some(e) = write_error {
        return Err(anyhow!(
            "{e}\n{path} was closed with what had been stored; the rest is recorded as unknown (`pmem verify {path}` says what it holds)"
        ))
        .code(exit::OUTPUT);
    }
    if let Some(e) = summary.iter().find_map(|s| s["read_error"].as_str()) {
        return Err(anyhow!("{e}\n{path} was closed with what was read; the rest of that image is recorded as unreadable"))
            .code(exit::INPUT);
    }
    Ok(if interrupted { exit::INTERRUPTED } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("650M"), Ok(650 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "-1G", "0", "NaN", "1e400T", "12Q"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
