//! One module per subcommand, each with `run`.

pub mod acquire;
mod cat;
pub mod export;
pub mod image;
mod info;
mod isf;
mod ls;
#[cfg(all(feature = "fuse", target_os = "linux"))]
mod mount;
mod recover;
mod verify;
mod view;

use crate::cli::{Cli, Command, Input};
use crate::{exit, Failure, WithCode};
use anyhow::Context;

/// Dispatches a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Ls { input, json } => ls::run(&input, json),
        Command::View { input } => view::run(&input),
        Command::Info { input, verify } => info::run(&input, verify),
        Command::Cat { input, stream, output, offset, length, threads } => {
            cat::run(&input, stream.as_deref(), output.as_deref(), offset, length, threads)
        }
        Command::Export { input, dir, patterns, all, format, truncate, threads } => {
            export::run(&input, &dir, &patterns, all, format, truncate, threads)
        }
        #[cfg(all(feature = "fuse", target_os = "linux"))]
        Command::Mount { mut paths, password, threads } => {
            let mountpoint = paths.pop().unwrap_or_default();
            mount::run(&Input { volumes: paths, password }, &mountpoint, threads)
        }
        Command::Isf { input, output, truncate } => isf::run(&input, &output, truncate),
        Command::Driver { action } => acquire::driver(&action),
        Command::Acquire(a) => acquire::run(&a),
        Command::Image(a) => image::run(&a.store, &a.inputs, &a.logical),
        Command::Recover { broken, output, truncate, json } => recover::run(&broken, &output, truncate, json),
        Command::Verify { input, json, threads, quiet } => verify::run(&input, json, threads, quiet),
    }
}

/// Opens the volumes of a reading command (files, directories, or s3:// objects).
pub fn open(input: &Input) -> Result<aff4::Container, Failure> {
    let opts = aff4::OpenOptions { password: input.password.clone() };
    if input.volumes.iter().any(|p| p.to_string_lossy().starts_with("s3://")) {
        return open_with_remote(input, &opts);
    }
    aff4::Container::open_with(&input.volumes, &opts)
        .with_context(|| format!("cannot open {}", input.volumes.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")))
        .code(exit::INPUT)
}

/// Says on stderr what is missing from the volume set (a part, bytes after the last
/// directory), for the commands that do not list it themselves.
pub fn warn_problems(c: &aff4::Container) {
    for f in c.problems() {
        eprintln!("pmem: warning: {}", f.message);
    }
}

/// Thread count from a flag or the machine.
pub fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(aff4::parallel::default_threads).max(1)
}

/// Human-readable byte count.
pub fn human(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

#[cfg(feature = "s3")]
fn open_with_remote(input: &Input, opts: &aff4::OpenOptions) -> Result<aff4::Container, Failure> {
    let mut vols = Vec::new();
    for p in &input.volumes {
        let name = p.to_string_lossy();
        let v = if name.starts_with("s3://") {
            remote::open_volume(&name).map_err(|e| anyhow::anyhow!("cannot open {name}: {e}")).code(exit::INPUT)?
        } else {
            aff4::volume::Volume::open(p).with_context(|| format!("cannot open {}", p.display())).code(exit::INPUT)?
        };
        vols.push(v);
    }
    let c = aff4::Container::from_volumes(vols, opts).context("reading the volumes").code(exit::INPUT)?;
    if std::env::var_os("PMEM_S3_STATS").is_some() {
        REPORT_FETCHES.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(c)
}

#[cfg(not(feature = "s3"))]
fn open_with_remote(_: &Input, _: &aff4::OpenOptions) -> Result<aff4::Container, Failure> {
    Err(anyhow::anyhow!("this pmem was built without S3 support (cargo feature s3)")).code(exit::USAGE)
}

/// Set when PMEM_S3_STATS asks for the bytes fetched from object storage to be reported at exit.
#[cfg(feature = "s3")]
pub static REPORT_FETCHES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The bytes and range requests fetched from object storage, for PMEM_S3_STATS.
pub fn fetch_report() -> Option<String> {
    #[cfg(feature = "s3")]
    if REPORT_FETCHES.load(std::sync::atomic::Ordering::SeqCst) {
        let b = remote::FETCHED_BYTES.load(std::sync::atomic::Ordering::Relaxed);
        let r = remote::REQUESTS.load(std::sync::atomic::Ordering::Relaxed);
        return Some(format!("pmem: fetched {b} bytes from object storage in {r} range requests"));
    }
    None
}
