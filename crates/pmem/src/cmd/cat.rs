//! `pmem cat`: the linear bytes of an image or stream, decoded on all cores.

use super::open;
use crate::args::threads;
use crate::args::{ImageChoice, Input};
use crate::files::ImageOutput;
use crate::{exit, Failure, WithCode};
use anyhow::Context;
use std::io::Write;

/// `pmem cat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    #[command(flatten)]
    pub choice: ImageChoice,
    /// Write here instead of stdout (zero pages become holes; never replaces a file).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Start at this byte offset (decimal or 0x hex).
    #[arg(long, value_parser = crate::args::parse_u64, default_value = "0")]
    pub offset: u64,
    /// At most this many bytes (decimal or 0x hex).
    #[arg(long, value_parser = crate::args::parse_u64)]
    pub length: Option<u64>,
    /// Reader threads.
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, output, offset, length, t) = (&a.input, a.output.as_deref(), a.offset, a.length, a.threads);
    let c = open(input)?;
    super::warn_problems(&c);
    let urn = a.choice.resolve(&c, aff4::Container::default_stream)?;
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
            let mut f = ImageOutput::at(p, false)
                .map_err(crate::files::cannot(
                    "write",
                    vec![p.display().to_string()],
                    " (cat never replaces a file: remove it or choose another)",
                ))
                .code(exit::OUTPUT)?;
            copy(&mut f)?;
            f.finish().map(drop).with_context(|| format!("writing {}", p.display())).code(exit::OUTPUT)?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            copy(&mut out)?;
            out.flush().code(exit::OUTPUT)?;
        }
    }
    Ok(0)
}
