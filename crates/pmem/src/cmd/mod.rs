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
        Command::Verify { input, json, threads, quiet } => verify::run(&input, json, threads, quiet),
    }
}

/// Opens the volumes of a reading command.
pub fn open(input: &Input) -> Result<aff4::Container, Failure> {
    let opts = aff4::OpenOptions { password: input.password.clone() };
    aff4::Container::open_with(&input.volumes, &opts)
        .with_context(|| format!("cannot open {}", input.volumes.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")))
        .code(exit::INPUT)
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
