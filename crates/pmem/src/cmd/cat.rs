//! `pmem cat`: the linear bytes of an image or stream, decoded on all cores.

use super::{export, open, threads};
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
    super::warn_problems(&c);
    let urn = match stream {
        Some(s) => c.find_stream(s).code(exit::INPUT)?,
        None => c.default_stream().code(exit::INPUT)?,
    };
    let s = c.open_stream(&urn).with_context(|| format!("cannot open {urn}")).code(exit::INPUT)?;
    let start = offset.min(s.size());
    let len = length.unwrap_or(u64::MAX).min(s.size() - start);
    let copy = |out: &mut dyn Write| {
        aff4::parallel::for_each_block(&*s, start, len, aff4::parallel::BLOCK, threads(t), |_, b| {
            out.write_all(b).map_err(|e| aff4::Error::io("output", e))
        })
        .with_context(|| format!("reading {urn}"))
        .code(exit::INPUT)
    };
    match output {
        // A file: zero pages become holes.
        Some(p) => {
            let mut f = export::ImageOutput::at(p, false).code(exit::OUTPUT)?;
            copy(&mut f)?;
            f.finish().with_context(|| format!("writing {}", p.display())).code(exit::OUTPUT)?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            copy(&mut out)?;
            out.flush().code(exit::OUTPUT)?;
        }
    }
    Ok(0)
}
