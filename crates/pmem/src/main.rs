//! `pmem`: acquire physical memory and image evidence into AFF4 volumes; list, view, export
//! and verify AFF4 volumes. A thin shell over the `aff4` and `memacq` crates.

mod args;
mod cli;
mod cmd;
mod files;
mod platform;
mod progress;
mod signals;

use std::process::ExitCode;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A hash did not match, data could not be read during verification, or declared sizes
    /// disagree: the evidence was altered or damaged.
    pub const VERIFY_FAILED: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// Input could not be opened or is corrupt.
    pub const INPUT: u8 = 3;
    /// Output could not be written (permissions, disk full, exists).
    pub const OUTPUT: u8 = 4;
    /// No memory source is usable (no privileges, kernel lockdown, no source).
    pub const NO_SOURCE: u8 = 5;
    /// Kernel lockdown prevents reading memory.
    pub const LOCKDOWN: u8 = 6;
    /// Not privileged enough to read memory (not root / no CAP_SYS_RAWIO).
    pub const PERMISSION: u8 = 7;
    /// `verify`: the evidence is incomplete (a missing part, bytes after the last directory, an
    /// interrupted, recovered or partial image, ranges never read or unreadable); what there is
    /// passed its checks.
    pub const INCOMPLETE: u8 = 8;
    /// `verify`: bytes of an image are covered by no checked hash, or nothing is verifiable.
    pub const UNVERIFIED: u8 = 9;
    /// Interrupted by a signal; what was acquired so far was saved.
    pub const INTERRUPTED: u8 = 130;

    use aff4::evidence::Cause;

    /// The exit code of a verdict.
    pub fn code(verdict: Option<Cause>) -> u8 {
        match verdict {
            None => OK,
            Some(Cause::Altered) => VERIFY_FAILED,
            Some(Cause::Incomplete) => INCOMPLETE,
            Some(Cause::Unverified) => UNVERIFIED,
        }
    }

    /// The verdict in words.
    pub fn verdict_text(verdict: Option<Cause>) -> &'static str {
        match verdict {
            None => "OK: complete and intact",
            Some(Cause::Altered) => "VERIFICATION FAILED: altered or damaged",
            Some(Cause::Incomplete) => "INCOMPLETE: what is there passed its checks, but evidence is missing",
            Some(Cause::Unverified) => "NOT VERIFIED: bytes are covered by no checked hash",
        }
    }
}

/// An error carrying its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// Error chain.
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure { code: exit::INPUT, error: e.into() }
    }
}

/// Attaches an exit code to an error.
pub trait WithCode<T> {
    /// Sets the exit code of an error.
    fn code(self, code: u8) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> WithCode<T> for Result<T, E> {
    fn code(self, code: u8) -> Result<T, Failure> {
        self.map_err(|e| Failure { code, error: e.into() })
    }
}

fn main() -> ExitCode {
    let cli = cli::parse();
    aff4::set_tool(concat!("pmem ", env!("CARGO_PKG_VERSION")));
    // Before any thread starts.
    if let Some(s3) = cli.command.s3() {
        s3.apply();
    }
    // Commands that only show what a volume holds end quietly when their reader goes away
    // (`pmem ls | head`), as Unix tools do. Commands that write evidence keep SIGPIPE ignored:
    // a reader that goes away mid-acquisition is an output error, reported with its exit code.
    let show_only = cli.command.only_shows();
    #[cfg(unix)]
    if cli.command.ends_on_sigpipe() {
        // SAFETY: restoring the default disposition of a signal, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let r = cmd::run(cli);
    if let Some(report) = cmd::fetch_report() {
        eprintln!("{report}");
    }
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let broken_pipe = f.error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || matches!(e.downcast_ref::<aff4::Error>(), Some(aff4::Error::Io { error, .. }) if error.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe && show_only {
                return ExitCode::from(exit::OK);
            }
            eprintln!("pmem: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
