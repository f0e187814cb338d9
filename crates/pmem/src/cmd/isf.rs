//! `pmem isf`: a Volatility 3 symbol table from the volume itself.

use crate::args::{ImageChoice, Input};
use crate::{exit, Failure, WithCode};
use anyhow::Context;

/// `pmem isf`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    #[command(flatten)]
    pub choice: ImageChoice,
    /// Output file (.json.xz is compressed, .json is not).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: std::path::PathBuf,
    /// Overwrite an existing output file.
    #[arg(short = 't', long)]
    pub truncate: bool,
    /// The kernel's System.map, for data symbols that kallsyms does not list (kernels without
    /// CONFIG_KALLSYMS_ALL, such as Debian's arm64 ones: their real map is in the
    /// linux-image-…-dbg package). Default: the one captured from /boot, if it is real. Used
    /// only if it is the captured kernel's build.
    #[arg(long, value_name = "FILE")]
    pub system_map: Option<std::path::PathBuf>,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, output, truncate) = (&a.input, a.output.as_path(), a.truncate);
    let c = super::open(input)?;
    super::warn_problems(&c);
    let image = a.choice.resolve(&c, memview::export::MemoryView::find)?;
    let map = match &a.system_map {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())).code(exit::INPUT)?),
        None => None,
    };
    let isf = memview::isf::from_container(&c, &image, map.as_deref()).context("building the symbol table").code(exit::INPUT)?;
    if a.system_map.is_some() && !isf.from_system_map {
        eprintln!("pmem isf: warning: --system-map is not this kernel's build (its _stext and _etext do not match kallsyms'); not used");
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display())).code(exit::OUTPUT)?;
    }
    let f =
        crate::files::create_output(output, truncate).with_context(|| format!("cannot create {}", output.display())).code(exit::OUTPUT)?;
    let xz = output.extension().is_some_and(|e| e == "xz");
    memview::isf::write(&isf, f, xz).with_context(|| format!("writing {}", output.display())).code(exit::OUTPUT)?;
    eprintln!(
        "{}: {} types, {} enums, {} symbols (kallsyms{}); banner {}",
        output.display(),
        isf.types(),
        isf.enums(),
        isf.symbols(),
        if isf.from_system_map { " and System.map" } else { "" },
        isf.banner.trim_end()
    );
    Ok(0)
}
