//! `pmem driver load|unload` (and winpmem's `-L`/`-U`): the pmem kernel module without an acquisition.

use crate::{exit, Failure, WithCode};
use anyhow::anyhow;
use memacq::source;
use memacq::SourceErrorKind;
use std::path::PathBuf;

/// `pmem driver`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: DriverAction,
}

/// What `pmem driver` does.
#[derive(clap::Subcommand, Debug)]
pub enum DriverAction {
    /// Load the module (it stays loaded; /dev/pmem appears). Same as `pmem -L --driver FILE`.
    Load {
        /// The module built for this kernel (driver/linux/build.sh).
        #[arg(value_name = "FILE")]
        module: PathBuf,
    },
    /// Unload the module. Same as `pmem -U`.
    Unload,
}

/// `pmem driver load|unload` (`-L`/`-U`).
pub fn run(a: &Args) -> Result<u8, Failure> {
    match &a.action {
        DriverAction::Load { module } => match source::load_driver(module) {
            Ok(true) => {
                eprintln!("pmem: driver {} loaded (unload with pmem -U)", module.display());
                Ok(0)
            }
            Ok(false) => {
                eprintln!("pmem: the driver is already loaded");
                Ok(0)
            }
            Err(e) => {
                let code = match e.kind {
                    SourceErrorKind::Lockdown => exit::LOCKDOWN,
                    SourceErrorKind::Permission => exit::PERMISSION,
                    _ => exit::NO_SOURCE,
                };
                Err(anyhow!(e)).code(code)
            }
        },
        DriverAction::Unload => {
            source::unload_driver().map_err(|e| anyhow!("cannot unload the driver: {e}")).code(exit::NO_SOURCE)?;
            eprintln!("pmem: driver unloaded");
            Ok(0)
        }
    }
}
