//! One module per subcommand, each with its `Args` (the clap definition) and `run`.

pub mod acquire;
pub mod cat;
pub mod driver;
pub mod export;
pub mod image;
pub mod info;
pub mod isf;
pub mod ls;
#[cfg(all(feature = "fuse", target_os = "linux"))]
pub mod mount;
pub mod recover;
pub mod verify;
pub mod view;

use crate::args::Input;
use crate::cli::{Cli, Command};
use crate::{exit, Failure, WithCode};

/// Dispatches a parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Ls(a) => ls::run(a),
        Command::View(a) => view::run(a),
        Command::Info(a) => info::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Export(a) => export::run(a),
        #[cfg(all(feature = "fuse", target_os = "linux"))]
        Command::Mount(a) => mount::run(a),
        Command::Isf(a) => isf::run(a),
        Command::Driver(a) => driver::run(a),
        Command::Acquire(a) => acquire::run(a),
        Command::Image(a) => image::run(a),
        Command::Recover(a) => recover::run(a),
        Command::Verify(a) => verify::run(a),
    }
}

/// Opens the volumes of a reading command (files, directories, or s3:// objects).
pub fn open(input: &Input) -> Result<aff4::Container, Failure> {
    let opts = input.open_options()?;
    if input.volumes.iter().any(|p| p.to_string_lossy().starts_with("s3://")) {
        return open_with_remote(input, &opts);
    }
    aff4::Container::open_with(&input.volumes, &opts)
        .map_err(crate::files::cannot("open", input.volumes.iter().map(|p| p.display().to_string()).collect(), ""))
        .code(exit::INPUT)
}

/// Says on stderr what is missing from the volume set (a part, bytes after the last
/// directory), for the commands that do not list it themselves.
pub fn warn_problems(c: &aff4::Container) {
    for f in c.problems() {
        eprintln!("pmem: warning: {}", f.message);
    }
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
    use anyhow::Context;
    let mut vols = Vec::new();
    for p in &input.volumes {
        let name = p.to_string_lossy();
        let v = if name.starts_with("s3://") {
            remote::open_volume(&name).map_err(|e| anyhow::anyhow!("cannot open {name}: {e}")).code(exit::INPUT)?
        } else {
            aff4::volume::Volume::open(p).map_err(crate::files::cannot("open", vec![p.display().to_string()], "")).code(exit::INPUT)?
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
