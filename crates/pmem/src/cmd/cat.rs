//! `pmem cat`: the linear bytes of an image or stream, decoded on all cores.

use super::{open, threads};
use crate::cli::Input;
use crate::{exit, Failure, WithCode};
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    input: &Input,
    stream: Option<&str>,
    output: Option<&Path>,
    offset: u64,
    length: Option<u64>,
    t: Option<usize>,
) -> Result<u8, Failure> {
    let c = open(input)?;
    let urn = match stream {
        Some(s) => c.find_stream(s).code(exit::INPUT)?,
        None => c.default_stream().code(exit::INPUT)?,
    };
    let s = c.open_stream(&urn).with_context(|| format!("cannot open {urn}")).code(exit::INPUT)?;
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(1 << 20, crate::cmd::export::create_output(p, false).code(exit::OUTPUT)?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let start = offset.min(s.size());
    let len = length.unwrap_or(u64::MAX).min(s.size() - start);
    aff4::parallel::for_each_block(&*s, start, len, aff4::parallel::BLOCK, threads(t), |_, b| {
        out.write_all(b).map_err(|e| aff4::Error::io("output", e))
    })
    .with_context(|| format!("reading {urn}"))
    .code(exit::INPUT)?;
    out.flush().code(exit::OUTPUT)?;
    Ok(0)
}
