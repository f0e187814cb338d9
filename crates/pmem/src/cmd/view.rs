//! `pmem view` (`pmem -V`): each volume's metadata as stored.

use super::open;
use crate::args::Input;
use crate::Failure;
use std::io::Write;

/// `pmem view`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let input = &a.input;
    let c = open(input)?;
    let mut out = std::io::stdout().lock();
    let many = c.volumes().len() > 1;
    for v in c.volumes() {
        if many {
            writeln!(out, "# volume {} ({})", v.path, v.urn)?;
        }
        out.write_all(&v.turtle)?;
        if !v.turtle.ends_with(b"\n") {
            writeln!(out)?;
        }
    }
    Ok(0)
}
