//! `pmem view` (`pmem -V`): each volume's metadata as stored.

use super::open;
use crate::cli::Input;
use crate::Failure;
use std::io::Write;

pub fn run(input: &Input) -> Result<u8, Failure> {
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
