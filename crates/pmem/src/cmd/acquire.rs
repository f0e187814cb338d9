//! `pmem acquire` (and `pmem -o mem.aff4`): physical memory into an AFF4 memory image.

use super::human;
use crate::args::StoreArgs;
use crate::files::expand;
use crate::{exit, Failure, WithCode};
use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memacq::acquire::{acquire, AcquireOptions, Format, Progress, SystemInfo};
use memacq::pagefile::PagefileSpec;
use memacq::source::{self, LivePaths, SourceChoice};
use memacq::SourceErrorKind;
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Acquire physical memory.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where to read memory: auto (kcore, then crash, then mem, then the pmem driver), kcore, crash, mem,
    /// pmem-driver, or an ELF core / LiME file to convert.
    #[arg(long, default_value = "auto", value_name = "SOURCE", value_parser = |s: &str| Ok::<_, String>(SourceChoice::parse(s)))]
    pub source: SourceChoice,
    /// Layout of the memory in the volume.
    #[arg(long, value_parser = crate::args::layout(), default_value = Format::default().name())]
    pub format: Format,
    /// The pmem kernel module (driver/linux/build.sh) to load when /dev/pmem is needed; it is
    /// unloaded after the acquisition. `-L`/`-U` load or unload it without acquiring.
    #[arg(long, value_name = "FILE")]
    pub driver: Option<PathBuf>,
    /// Alternative /dev/pmem.
    #[arg(long, hide = true, default_value = "/dev/pmem")]
    pub pmem_path: String,
    /// Do not capture kallsyms, iomem, modules, cmdline, System.map, config, kernel image and BTF
    /// (nor mapped files and /boot).
    #[arg(long)]
    pub no_extras: bool,
    /// Do not capture the files mapped by running processes and /boot. By default (Linux, live
    /// sources) every regular file a process maps (executables, libraries, mmap'd data, also
    /// those already deleted from the disk, read through /proc/PID/map_files) and every file
    /// under /boot is captured after the memory, once per device and inode, with the PIDs
    /// mapping it; files over the limits are listed, not captured.
    #[arg(long)]
    pub no_mapped_files: bool,
    /// Largest mapped (or /boot) file captured.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = crate::args::parse_size)]
    pub mapped_files_max: u64,
    /// Most captured of mapped and /boot files in all.
    #[arg(long, value_name = "SIZE", default_value = "2G", value_parser = crate::args::parse_size)]
    pub mapped_files_total: u64,
    /// More files to capture (globs allowed; repeatable).
    #[arg(short = 'i', long = "input", value_name = "FILE|GLOB")]
    pub extra: Vec<String>,
    /// Also capture a pagefile or swap (repeatable), numbered in order: `C:\pagefile.sys` on
    /// Windows is read out of its raw NTFS volume (it is locked while Windows runs);
    /// `FILE@VOLUME` reads FILE from the NTFS volume or disk image VOLUME on any OS
    /// (`'\pagefile.sys@/dev/sdb2'`); other paths (`/swapfile`, `/dev/sda3`) are read directly.
    #[arg(short = 'p', long = "pagefile", value_name = "PATH", value_parser = parse_pagefile)]
    pub pagefiles: Vec<PagefileSpec>,
    /// After the main pass, read the kernel's own pages (code, rodata, data and bss in
    /// /proc/iomem, and on x86-64 the pages of its page tables) a second time and record which
    /// changed while we read ("smear"): count and ranges in the image's metadata, shown by
    /// `pmem info`.
    #[arg(long)]
    pub recheck: bool,
    /// Read this physical range a second time after the main pass (START-END, hex; repeatable;
    /// alone or with --recheck).
    #[arg(long = "recheck-range", value_name = "START-END", value_parser = parse_range)]
    pub recheck_ranges: Vec<memformat::Range>,
    /// Keep the second copies of pages that changed, as recheck-second-read.lime in the volume.
    #[arg(long)]
    pub recheck_keep: bool,
    /// Abandon a read that takes longer than this many seconds (its pages are recorded as unreadable; 0 = wait forever).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub read_timeout: u64,
    /// Read block size in KiB (by default 512 where the compression threads read, else 1024).
    #[arg(long, hide = true)]
    pub block_kib: Option<usize>,
    /// Alternative /proc/kcore (tests with a fake /proc).
    #[arg(long, hide = true, default_value = "/proc/kcore", overrides_with = "kcore_path")]
    pub kcore_path: String,
    /// Alternative /proc/iomem.
    #[arg(long, hide = true, default_value = "/proc/iomem", overrides_with = "iomem_path")]
    pub iomem_path: String,
    /// Alternative /dev/mem.
    #[arg(long, hide = true, default_value = "/dev/mem")]
    pub mem_path: String,
    /// Alternative /dev/crash.
    #[arg(long, hide = true, default_value = "/dev/crash")]
    pub crash_path: String,
}

fn parse_range(s: &str) -> Result<memformat::Range, String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s}: a range is START-END"))?;
    let hex = |x: &str| u64::from_str_radix(x.trim_start_matches("0x"), 16).map_err(|e| format!("{x}: {e}"));
    let r = memformat::Range { start: hex(a)?, end: hex(b)? };
    if r.end <= r.start {
        return Err(format!("{s}: the end must be after the start"));
    }
    Ok(r)
}

fn parse_pagefile(s: &str) -> Result<PagefileSpec, String> {
    PagefileSpec::parse(s)
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let choice = a.source.clone();
    let paths = LivePaths {
        kcore: a.kcore_path.clone(),
        crash: a.crash_path.clone(),
        mem: a.mem_path.clone(),
        iomem: a.iomem_path.clone(),
        pmem: a.pmem_path.clone(),
        driver: a.driver.clone(),
    };
    if matches!(a.format, Format::Raw | Format::Elf) {
        let why = if a.store.split.is_some() {
            Some(("--split", "a split volume cannot hold one member across its parts"))
        } else if a.store.encrypt.requested() {
            Some(("the encryption", "an encrypted volume can be read only through pmem or pyaff4"))
        } else {
            None
        };
        if let Some((flag, why)) = why {
            return Err(anyhow!(
                "--format {}: the memory is stored in place (one uncompressed member that other tools read as it is), \
                 and {why}: use --format map (the default), or leave out {flag}",
                a.format.name()
            ))
            .code(exit::USAGE);
        }
    }
    let src = match source::open(&choice, &paths) {
        Ok(s) => s,
        Err(memacq::Error::NoSource(errs)) => {
            let code = if errs.iter().any(|e| e.kind == SourceErrorKind::Lockdown) { exit::LOCKDOWN } else { exit::NO_SOURCE };
            let mut msg = String::from("no usable physical memory source:");
            for e in &errs {
                msg.push_str(&format!("\n  {e}"));
            }
            if code == exit::LOCKDOWN {
                msg.push_str("\n  (kernel lockdown is active: boot without lockdown, or acquire from outside, e.g. the hypervisor)");
            }
            return Err(anyhow!(msg)).code(code);
        }
        Err(e) => return Err(anyhow!(e)).code(exit::INPUT),
    };
    let ranges = src.ranges();
    let ram: u64 = ranges.iter().map(|r| r.len()).sum();
    let mut extra_files = Vec::new();
    for pat in &a.extra {
        let v = expand(pat);
        if v.is_empty() {
            return Err(anyhow!("{pat}: no such file")).code(exit::INPUT);
        }
        extra_files.extend(v.into_iter().map(|p| p.display().to_string()));
    }
    let mut recheck = a.recheck_ranges.clone();
    if a.recheck {
        if matches!(src.kind(), "lime" | "elf") {
            return Err(anyhow!(
                "--recheck reads a live machine's kernel again; {} is a file (give ranges with --recheck-range)",
                src.name()
            ))
            .code(exit::USAGE);
        }
        let iomem = std::fs::read_to_string(&a.iomem_path).unwrap_or_default();
        let kernel = memacq::recheck::kernel_ranges(&iomem);
        if kernel.is_empty() {
            return Err(anyhow!(
                "--recheck: {} names no kernel ranges (a file source has none); give them with --recheck-range START-END",
                a.iomem_path
            ))
            .code(exit::USAGE);
        }
        recheck.extend(kernel);
    }
    let opts = AcquireOptions {
        imager: a.store.imager_options(crate::args::HashDefaults::MEMORY)?,
        file_hashes: a.store.file_hashes(),
        format: a.format,
        extras: !a.no_extras,
        extra_files,
        block: a.block_kib.map(|k| k.max(4) * 1024),
        read_timeout: (a.read_timeout > 0).then(|| std::time::Duration::from_secs(a.read_timeout)),
        pagefiles: a.pagefiles.clone(),
        recheck,
        recheck_keep: a.recheck_keep,
        recheck_page_tables: a.recheck,
        mapped_files: (!a.no_extras && !a.no_mapped_files)
            .then_some(memacq::mapped::Limits { per_file: a.mapped_files_max, total: a.mapped_files_total }),
    };
    let quiet = a.store.quiet || a.store.json;
    if !quiet {
        eprintln!(
            "pmem: source {} ({}), {} of RAM in {} ranges -> {} (free {}, expect up to {})",
            src.name(),
            src.kind(),
            human(ram),
            ranges.len(),
            a.store.output.display(),
            crate::platform::free_space(&a.store.output).map(human).unwrap_or_else(|| "?".into()),
            human(ram / 2 + (1 << 20))
        );
        for n in src.notes() {
            eprintln!("pmem: note: {n}");
        }
    }
    if opts.imager.block_hashes.is_empty() && opts.imager.hashes.is_empty() && !matches!(a.format, Format::Raw | Format::Elf) {
        eprintln!("pmem: warning: no block hashes and no linear hash: nothing in the volume will show whether the memory image changes after capture");
    }
    let mut vol = a.store.open_volume()?;
    crate::signals::install();
    let sys = if matches!(choice, SourceChoice::File(_)) { SystemInfo::default() } else { SystemInfo::live() };
    let pb = if !quiet && !a.store.progress_json && std::io::stderr().is_terminal() {
        ProgressBar::new(ram)
    } else {
        ProgressBar::with_draw_target(Some(ram), ProgressDrawTarget::hidden())
    };
    pb.set_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} [{bar:25}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut last_bad = 0;
    let mut pagefile = None;
    let mut jl = crate::progress::JsonLines::new(a.store.progress_json);
    let src: std::sync::Arc<dyn memacq::source::PhysicalSource> = std::sync::Arc::from(src);
    let report = acquire(
        src.clone(),
        &mut vol,
        &opts,
        &sys,
        &mut |p| match p {
            Progress::Memory { done, unreadable_pages: bad } => {
                if let Some(j) = jl.as_mut() {
                    j.tick(json!({"phase": "memory", "done": done, "total": ram, "unreadable_pages": bad}), done == ram);
                }
                pb.set_position(done);
                if bad != last_bad {
                    pb.set_message(format!("{bad} unreadable pages"));
                    last_bad = bad;
                }
            }
            Progress::Pagefile { name, number, done } => {
                if let Some(j) = jl.as_mut() {
                    j.tick(json!({"phase": "pagefile", "number": number, "name": name, "done": done}), false);
                }
                if pagefile != Some(number) {
                    // The pagefile's size is known only once its volume is parsed: no total.
                    pagefile = Some(number);
                    pb.reset();
                    pb.set_length(u64::MAX);
                    pb.set_style(
                        ProgressStyle::with_template("{bytes} {binary_bytes_per_sec} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    pb.set_message(format!("pagefile {number}: {name}"));
                }
                pb.set_position(done);
            }
        },
        &crate::signals::STOP,
    )
    .with_context(|| format!("writing {}", a.store.output.display()))
    .code(exit::OUTPUT)?;
    pb.finish_and_clear();
    let path = vol.path().display().to_string();
    vol.finish().with_context(|| format!("closing {path}")).code(exit::OUTPUT)?;
    if let Some(j) = jl.as_mut() {
        j.tick(
            json!({"phase": "finished", "volume": path, "interrupted": report.interrupted, "unreadable_pages": report.unreadable_pages}),
            true,
        );
    }
    let hashes: serde_json::Map<String, serde_json::Value> =
        report.result.hashes.iter().map(|(k, d)| (k.name().to_string(), json!(aff4::hash::hex(d)))).collect();
    // The acquisition hash: the Block-Map hash (SHA-512 over the block hashes and the map), or
    // for an image stored in place (no chunks, so no block hashes) its linear SHA-256.
    let sha256 = report.result.hashes.iter().find(|(k, _)| *k == aff4::hash::HashAlgo::Sha256).map(|(_, d)| aff4::hash::hex(d));
    let acquisition_hash = match (&report.result.block_map_hash, &sha256) {
        (Some(b), _) => Some(("blockMapHashSHA512", aff4::hash::hex(b))),
        (None, Some(h)) if matches!(a.format, Format::Raw | Format::Elf) => Some(("SHA256", h.clone())),
        _ => None,
    };
    if a.store.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "volume": path, "image": report.image, "source": report.source, "source_kind": report.source_kind,
                "ranges": report.ranges.iter().map(|r| json!({"start": r.start, "end": r.end})).collect::<Vec<_>>(),
                "ram_bytes": report.ram_bytes, "stored_bytes": report.result.stats.stored_bytes,
                "unreadable_pages": report.unreadable_pages, "interrupted": report.interrupted, "notes": report.notes,
                "kernel_release": report.kernel_release, "hashes": hashes,
                "acquisition_hash": acquisition_hash.as_ref().map(|(kind, h)| json!({"kind": kind, "value": h})),
                // Bytes the hashes cover: the image size, or where an interruption stopped it.
                "hashed_bytes": report.result.hashed,
                "extras": report.extras.iter().map(|(f, n)| json!({"file": f, "size": n})).collect::<Vec<_>>(),
                "missing": report.missing.iter().map(|(f, e)| json!({"file": f, "error": e})).collect::<Vec<_>>(),
                "mapped_files": report.mapped.iter().map(|(f, n, d)| json!({"file": f, "size": n, "deleted": d})).collect::<Vec<_>>(),
                "mapped_files_skipped": report.mapped_skipped.iter().map(|(f, e)| json!({"file": f, "reason": e})).collect::<Vec<_>>(),
                "pagefiles": report.pagefiles.iter().map(|p| json!({
                    "name": p.name, "image": p.image, "size": p.size, "method": p.method,
                    "unreadable_bytes": p.unreadable_bytes, "stored_bytes": p.result.stats.stored_bytes,
                    "hashed_bytes": p.result.hashed,
                    "hashes": p.result.hashes.iter().map(|(k, d)| (k.name().to_string(), json!(aff4::hash::hex(d)))).collect::<serde_json::Map<_, _>>(),
                    "acquisition_hash": p.result.block_map_hash.as_deref().map(|h| json!({"kind": "blockMapHashSHA512", "value": aff4::hash::hex(h)})),
                })).collect::<Vec<_>>(),
                "pagefile_errors": report.pagefile_errors.iter().map(|(f, e)| json!({"pagefile": f, "error": e})).collect::<Vec<_>>(),
                "recheck": report.recheck.as_ref().map(|r| json!({
                    "pages": r.pages, "page_table_pages": r.table_pages, "changed_pages": r.changed_pages, "unreadable_pages": r.unreadable_pages, "seconds": r.seconds,
                    "changed": r.changed.iter().map(|x| json!({"start": x.start, "end": x.end})).collect::<Vec<_>>(),
                })),
            }))?
        );
    } else if !a.store.quiet {
        eprintln!(
            "pmem: {} {} of RAM from {} -> {} stored in {path}; {} unreadable pages; image {}",
            if report.interrupted { "INTERRUPTED after" } else { "acquired" },
            human(report.ram_bytes),
            report.source,
            human(report.result.stats.stored_bytes),
            report.unreadable_pages,
            report.image
        );
        let part = if report.result.hashed < report.result.size {
            format!(" of the first {} bytes (the rest was not read)", report.result.hashed)
        } else {
            String::new()
        };
        match &acquisition_hash {
            Some(("SHA256", h)) => eprintln!("pmem: acquisition hash (linear SHA-256 of the image stored in place) {h}"),
            Some((_, h)) => {
                let algos: Vec<&str> = opts.imager.block_hashes.iter().map(|a| a.name()).collect();
                eprintln!("pmem: acquisition hash (SHA-512 Block-Map hash over the {} block hashes and the map) {h}", algos.join("+"));
            }
            None => {}
        }
        for (k, v) in &hashes {
            eprintln!("pmem: linear {k}{part} {}", v.as_str().unwrap_or(""));
        }
        eprintln!("pmem: extras: {}", report.extras.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", "));
        if !report.missing.is_empty() {
            eprintln!("pmem: not captured: {}", report.missing.iter().map(|(f, e)| format!("{f} ({e})")).collect::<Vec<_>>().join(", "));
        }
        if !report.mapped.is_empty() || !report.mapped_skipped.is_empty() {
            let bytes: u64 = report.mapped.iter().map(|(_, n, _)| n).sum();
            let deleted: Vec<&str> = report.mapped.iter().filter(|(_, _, d)| *d).map(|(f, _, _)| f.as_str()).collect();
            eprintln!(
                "pmem: mapped files and /boot: {} captured ({}){}{}",
                report.mapped.len(),
                human(bytes),
                if deleted.is_empty() { String::new() } else { format!("; deleted from the disk: {}", deleted.join(", ")) },
                if report.mapped_skipped.is_empty() {
                    String::new()
                } else {
                    format!("; {} listed, not captured (see pmem info)", report.mapped_skipped.len())
                }
            );
        }
        if let Some(r) = &report.recheck {
            eprintln!(
                "pmem: recheck: {} pages{} read again in {:.2} s after the main pass: {} changed while we read{}",
                r.pages,
                r.table_pages.map(|n| format!(" (of them {n} of the kernel's page tables)")).unwrap_or_default(),
                r.seconds,
                r.changed_pages,
                if r.unreadable_pages > 0 { format!(", {} unreadable the second time", r.unreadable_pages) } else { String::new() }
            );
        }
        for p in &report.pagefiles {
            eprintln!(
                "pmem: pagefile {} ({}, read via {}): {} unreadable bytes; image {}",
                p.name,
                human(p.size),
                p.method,
                p.unreadable_bytes,
                p.image
            );
        }
    }
    for (f, e) in &report.pagefile_errors {
        eprintln!("pmem: pagefile {f} NOT captured: {e}");
    }
    if let Some(e) = &report.write_error {
        return Err(anyhow::anyhow!(
            "{e}\n{path} was closed with the memory stored so far; the rest is recorded as unknown (`pmem verify {path}` says what it holds)"
        ))
        .code(exit::OUTPUT);
    }
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if !report.pagefile_errors.is_empty() {
        // The memory is in the volume, but not everything that was asked for.
        exit::INPUT
    } else {
        exit::OK
    })
}
