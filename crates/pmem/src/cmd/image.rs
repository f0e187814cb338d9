//! `pmem image`: files, block devices and stdin into aff4:Image objects (Map over a compressed
//! ImageStream, zero pages not stored, hashed while written); `-i` adds logical files.

use super::human;
use crate::args::StoreArgs;
use crate::files::expand;
use crate::{exit, progress, Failure, WithCode};
use aff4::capture::{blocks, Capture, Input, OnProgress, Plan, RetryPolicy, Sequential};
use aff4::imager::{Ending, ImagerOptions};
use aff4::logical::{add_file, FileTimes};
use aff4::rdf::Node;
use aff4::stream::ReadAt;
use aff4::volume::write::VolumeWriter;
use aff4::{vocab, HashAlgo};
use anyhow::{anyhow, Context};
use serde_json::json;
use std::fs::File;
use std::sync::Arc;

/// The Image types of an imaged file or device.
const DISK_TYPES: [&str; 3] = [vocab::IMAGE, vocab::DISK_IMAGE, vocab::CONTIGUOUS_IMAGE];

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
                add_file(vol, &name, &mut f, &FileTimes::of(&meta), hashes).with_context(|| format!("adding {name}")).code(exit::OUTPUT)?;
            out.push((name, urn, size));
        }
    }
    Ok(out)
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
        let t = FileTimes::of(m);
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
        "interrupted": interrupted, "hashed_bytes": r.hashed, "read_bytes": off, "write_error": write_error, "read_error": read_error,
        "completion": f.completion.to_string(),
        "kept_bytes": if write_error.is_some() { r.lost_from.unwrap_or(0) } else { r.size },
        "hashes": r.hashes.iter().map(|(a, d)| (a.name().to_string(), aff4::hash::hex(d))).collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

/// `pmem image`: files, block devices or stdin (`-`) into an AFF4 volume.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Files or devices to image (`-` reads stdin).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Logical files to add with their original names (globs allowed; repeatable).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub logical: Vec<String>,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (store, inputs, logical) = (&a.store, &a.inputs[..], &a.logical[..]);
    if inputs.is_empty() && logical.is_empty() {
        return Err(anyhow!("nothing to image: give INPUT files/devices or -i FILE")).code(exit::USAGE);
    }
    let opts = store.imager_options(crate::args::HashDefaults::DISK)?;
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
    // What an interruption leaves out: the inputs after it, and the -i files.
    let mut left_out = logical.len();
    let mut jl = progress::JsonLines::new(store.progress_json);
    for input in inputs {
        let s = image_one(&mut vol, input, &opts, store.quiet || store.json || store.progress_json, &mut jl)?;
        interrupted = s["interrupted"] == true;
        if !store.json && !store.quiet {
            let hashed = s["hashed_bytes"].as_u64().unwrap_or(0);
            let (read, size) = (s["read_bytes"].as_u64().unwrap_or(0), s["size"].as_u64().unwrap_or(0));
            let what = if interrupted {
                format!("INTERRUPTED after {read} of {size} bytes ({} of {})", human(read), human(size))
            } else {
                format!("{size} bytes ({})", human(size))
            };
            eprintln!(
                "{input}: {what} -> {} stored; {}{}",
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
            left_out += inputs.len() - summary.len();
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
    let files = if interrupted || write_error.is_some() { Vec::new() } else { add_logical(&mut vol, logical, &store.file_hashes())? };
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
            if interrupted && left_out > 0 {
                format!("; interrupted: {left_out} more input(s) and -i file(s) were not imaged")
            } else {
                String::new()
            }
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
