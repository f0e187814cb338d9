//! The command line: subcommands, plus the flags pmem/aff4imager users know (`pmem -o mem.aff4`,
//! `pmem -V vol.aff4`, `-l`, `-e`, `-D`), rewritten to subcommands before parsing.

use crate::cmd;
use clap::{CommandFactory, Parser, Subcommand};

/// pmem: capture physical memory and evidence into AFF4 volumes, and inspect, export and verify them.
#[derive(Parser, Debug)]
#[command(
    name = "pmem",
    version,
    disable_version_flag = true,
    about,
    long_about = "pmem captures a live machine's physical memory (and files or devices) into AFF4 volumes \
that every AFF4 reader opens, and lists, views, exports and verifies AFF4 volumes from any producer \
(Evimetry, c-aff4/WinPmem/LinPmem, pyaff4, pre-standard images, striped sets, AFF4-L).\n\n\
pmem/aff4imager invocations also work: `pmem -o mem.aff4` acquires memory, `pmem -V vol.aff4` views, \
`pmem -l vol.aff4` lists, `pmem -e GLOB -D DIR vol.aff4` exports.",
    after_help = "Examples:\n  pmem acquire -o mem.aff4             acquire this machine's memory\n  pmem image -o disk.aff4 /dev/sdb     image a device\n  pmem ls mem.aff4                     list images and streams\n  pmem verify mem.aff4                 recompute every hash\n  pmem cat disk.aff4 > disk.raw        the image's bytes\n  pmem export -D out/ mem.aff4         every image to files"
)]
pub struct Cli {
    /// Print version.
    #[arg(long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands: each variant's Args and `run` live in `cmd/<name>.rs`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Acquire this machine's physical memory (or convert an ELF core / LiME file) into a volume.
    Acquire(Box<cmd::acquire::Args>),
    /// Image files, block devices or stdin into a volume (appends unless -t).
    Image(cmd::image::Args),
    /// List the images (with their recorded names) and streams of volumes.
    #[command(visible_alias = "list")]
    Ls(cmd::ls::Args),
    /// A one-screen summary: what was acquired, from where, what could not be read, what else was captured.
    Info(cmd::info::Args),
    /// Print the metadata (information.turtle) of volumes.
    View(cmd::view::Args),
    /// Write the bytes of an image or stream to stdout (or -o FILE).
    Cat(cmd::cat::Args),
    /// Export images and streams to files under a directory.
    Export(cmd::export::Args),
    /// Mount volumes read-only (FUSE): memory images as memory.raw, memory.elf and memory.lime,
    /// other images and logical files under their recorded names, metadata as information.turtle;
    /// or with --live this machine's memory, read on demand. Runs until Ctrl-C or `umount MOUNTPOINT`.
    #[cfg(all(feature = "fuse", target_os = "linux"))]
    #[command(override_usage = "pmem mount [OPTIONS] <VOLUME>... <MOUNTPOINT>\n       pmem mount --live [--source SOURCE] <MOUNTPOINT>")]
    Mount(cmd::mount::Args),
    /// Build a Volatility 3 symbol table (ISF, .json.xz) for a Linux memory image (x86-64 or
    /// arm64) from what the acquisition captured: types from BTF, addresses from kallsyms (and
    /// System.map where kallsyms lists no data symbols), the banner from memory.
    Isf(cmd::isf::Args),
    /// Recompute every hash the volumes declare and check that the evidence is complete: exit 0
    /// only when it is complete and intact (1 altered, 8 incomplete, 9 bytes no checked hash covers).
    Verify(cmd::verify::Args),
    /// Rebuild a volume whose writer was killed (SIGKILL, power loss, a crash) from its ZIP
    /// local headers and recovery journal into a new volume: every complete bevy comes back,
    /// the rest of each image is recorded as unknown and marked "recovered"; BROKEN is only read.
    /// An encrypted volume needs --key or --password and is written encrypted again, under the
    /// same key, for the same recipients.
    Recover(cmd::recover::Args),
    /// Load or unload the pmem kernel module (driver/linux) without acquiring; `-L`/`-U` as in winpmem.
    Driver(cmd::driver::Args),
}

impl Command {
    /// The object-storage flags of a command that reads or writes volumes.
    pub fn s3(&self) -> Option<&crate::args::S3Args> {
        Some(match self {
            Command::Ls(a) => &a.input.s3,
            Command::Info(a) => &a.input.s3,
            Command::View(a) => &a.input.s3,
            Command::Cat(a) => &a.input.s3,
            Command::Export(a) => &a.input.s3,
            #[cfg(all(feature = "fuse", target_os = "linux"))]
            Command::Mount(a) => &a.s3,
            Command::Isf(a) => &a.input.s3,
            Command::Verify(a) => &a.input.s3,
            Command::Acquire(a) => &a.store.s3,
            Command::Image(a) => &a.store.s3,
            Command::Driver(_) | Command::Recover(_) => return None,
        })
    }

    /// Commands that only print what volumes hold: a reader that stops early loses nothing.
    pub fn only_shows(&self) -> bool {
        matches!(self, Command::Ls(_) | Command::View(_) | Command::Cat(_)) || matches!(self, Command::Info(a) if !a.verify)
    }

    /// Commands that end quietly on SIGPIPE, as Unix tools do: those above and the checks
    /// (killed by the signal, they never report a verification as passed).
    #[cfg(unix)]
    pub fn ends_on_sigpipe(&self) -> bool {
        self.only_shows() || matches!(self, Command::Info(_) | Command::Verify(_))
    }
}

/// Rewrites pmem/aff4imager-style invocations into subcommands.
pub fn rewrite(mut args: Vec<String>) -> Vec<String> {
    let Some(first) = args.get(1).cloned() else { return args };
    // The subcommands and their aliases, as clap knows them (a new one is never mistaken for an input).
    let cmd = Cli::command();
    let is_sub = |a: &str| a == "help" || cmd.get_subcommands().any(|c| c.get_name() == a || c.get_all_aliases().any(|x| x == a));
    // winpmem/osxpmem -L (load the driver only) and -U (unload only), alone or with acquire.
    if first == "acquire" || !is_sub(&first) {
        let flag = |f: &[&str]| args.iter().any(|a| f.contains(&a.as_str()));
        let driver = args.iter().position(|a| a == "--driver").and_then(|j| args.get(j + 1)).cloned();
        if flag(&["-L", "--load-driver"]) {
            return [args[0].clone(), "driver".into(), "load".into()].into_iter().chain(driver).collect();
        }
        if flag(&["-U", "--unload-driver"]) {
            return vec![args[0].clone(), "driver".into(), "unload".into()];
        }
    }
    if is_sub(&first) || first == "--help" || first == "-h" || first == "--version" {
        return args;
    }
    // A word that is neither a subcommand nor something to image (`pmem verfy a.aff4`) is a
    // misspelt subcommand: clap says so and suggests the nearest, instead of a legacy form.
    if !first.starts_with('-') && !first.contains(['/', '.', '\\']) && !std::path::Path::new(&first).exists() {
        return args;
    }
    let rest: Vec<String> = args.split_off(1);
    let has = |f: &[&str]| rest.iter().any(|a| f.contains(&a.as_str()));
    let strip = |f: &[&str]| -> Vec<String> { rest.iter().filter(|a| !f.contains(&a.as_str())).cloned().collect() };
    let (sub, rest) = if has(&["-V", "--view"]) {
        ("view", strip(&["-V", "--view"]))
    } else if has(&["-l", "--list"]) {
        ("ls", strip(&["-l", "--list"]))
    } else if has(&["-D", "--destination"]) {
        ("export", rest.clone())
    } else if has(&["-i", "--input"]) || rest.iter().any(|a| !a.starts_with('-')) && !has(&["-o", "--output"]) {
        ("image", rest.clone())
    } else {
        ("acquire", rest.clone())
    };
    args.push(sub.to_string());
    args.extend(rest);
    args
}

/// Parses the process arguments (exits with clap's message and code 2 on a usage error).
pub fn parse() -> Cli {
    try_parse(std::env::args().collect()).unwrap_or_else(|e| e.exit())
}

/// Parses a command line, legacy forms included. An option that is unknown in a legacy form
/// (`pmem --bogus`) is reported against pmem itself, not the subcommand it was read as.
pub fn try_parse(raw: Vec<String>) -> Result<Cli, clap::Error> {
    let args = rewrite(raw.clone());
    Cli::try_parse_from(&args).map_err(|e| {
        let sub = args.get(1).filter(|_| args.get(1) != raw.get(1));
        match (sub, e.kind(), e.get(clap::error::ContextKind::InvalidArg)) {
            (Some(sub), clap::error::ErrorKind::UnknownArgument, Some(arg)) => Cli::command().error(
                clap::error::ErrorKind::UnknownArgument,
                format!("unknown option '{arg}' (this command line reads as the pmem/aff4imager form of `pmem {sub}`; `pmem --help` lists the subcommands, `pmem {sub} --help` its options)"),
            ),
            _ => e,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        rewrite(std::iter::once("pmem").chain(args.iter().copied()).map(String::from).collect())[1..].to_vec()
    }

    #[test]
    fn every_subcommand_is_left_alone() {
        // A subcommand (or alias) clap knows is never rewritten into `pmem image NAME`.
        let cmd = Cli::command();
        let names: Vec<String> = cmd
            .get_subcommands()
            .flat_map(|c| std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from)))
            .collect();
        assert!(names.len() >= 12, "{names:?}");
        for n in names {
            assert_eq!(rw(&[&n, "x"]), [n.as_str(), "x"], "{n}");
        }
    }

    #[test]
    fn every_listed_value_parses() {
        let parse = |args: &[&str]| {
            let full: Vec<&str> = ["pmem"].iter().chain(args).copied().collect();
            Cli::try_parse_from(&full).map_err(|e| e.to_string())
        };
        for c in aff4::Codec::WRITABLE {
            match parse(&["image", "-o", "v.aff4", "-c", c.name(), "in"]).map(|c| c.command) {
                Ok(Command::Image(a)) => assert_eq!(a.store.codec, c),
                other => panic!("{c:?}: {other:?}"),
            }
        }
        let all: Vec<&str> = aff4::HashAlgo::ALL.iter().map(|h| h.name()).collect();
        match parse(&["image", "-o", "v.aff4", "--hash", &all.join(","), "--block-hashes", "none", "in"]).map(|c| c.command) {
            Ok(Command::Image(a)) => {
                assert_eq!(a.store.file_hashes(), aff4::HashAlgo::ALL.to_vec());
                assert!(a.store.block_hashes.iter().all(Option::is_none));
            }
            other => panic!("{other:?}"),
        }
        for l in memformat::meta::Layout::ALL {
            match parse(&["acquire", "-o", "v.aff4", "--format", l.name()]).map(|c| c.command) {
                Ok(Command::Acquire(a)) => assert_eq!(a.format, l),
                other => panic!("{l:?}: {other:?}"),
            }
        }
        for f in memview::export::ExportFormat::ALL {
            match parse(&["export", "-D", "out", "--format", f.name(), "v.aff4"]).map(|c| c.command) {
                Ok(Command::Export(a)) => assert_eq!(a.format, f),
                other => panic!("{f:?}: {other:?}"),
            }
        }
        for (n, s) in memacq::source::SourceChoice::NAMES {
            match parse(&["acquire", "-o", "v.aff4", "--source", n]).map(|c| c.command) {
                Ok(Command::Acquire(a)) => assert_eq!(a.source, s),
                other => panic!("{n}: {other:?}"),
            }
        }
        assert!(
            parse(&["image", "-o", "v.aff4", "-c", "brotli", "in"]).is_err_and(|e| e.contains("snappy")),
            "unknown codecs are refused, naming the known ones"
        );
        match parse(&["image", "-o", "v.aff4", "-c", "none", "in"]).map(|c| c.command) {
            Ok(Command::Image(a)) => assert_eq!(a.store.codec, aff4::Codec::Stored, "aff4imager's -c none"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_misspelt_subcommand_is_named_with_a_suggestion() {
        for (typo, want) in [("verfy", "verify"), ("exprot", "export"), ("aquire", "acquire")] {
            let args = rw(&[typo, "-D", "out", "a.aff4"]);
            assert_eq!(args[0], typo, "not rewritten into a legacy form");
            let full: Vec<String> = std::iter::once("pmem".to_string()).chain(args).collect();
            let e = Cli::try_parse_from(&full).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::InvalidSubcommand, "{e}");
            assert!(e.to_string().contains(want), "{e}");
            assert_eq!(e.exit_code(), 2);
        }
        // The legacy forms keep working: inputs to image, and flags.
        assert_eq!(rw(&["disk.raw", "-i", "notes.txt"])[0], "image");
        assert_eq!(rw(&["-D", "out", "a.aff4"])[0], "export");
    }

    #[test]
    fn an_unknown_option_in_a_legacy_form_is_reported_against_pmem() {
        let parse = |a: &[&str]| try_parse(std::iter::once("pmem").chain(a.iter().copied()).map(String::from).collect());
        for args in [&["--bogus"][..], &["-o", "m.aff4", "--bogus"]] {
            let e = parse(args).unwrap_err();
            assert_eq!((e.kind(), e.exit_code()), (clap::error::ErrorKind::UnknownArgument, 2), "{e}");
            let text = e.to_string();
            assert!(text.contains("unknown option '--bogus'") && text.contains("pmem acquire --help"), "{text}");
            assert!(text.contains("Usage: pmem <COMMAND>"), "pmem's own usage, not acquire's: {text}");
        }
        // A subcommand's own unknown option keeps clap's message for that subcommand.
        let e = parse(&["verify", "--bogus", "a.aff4"]).unwrap_err();
        assert!(e.to_string().contains("Usage: pmem verify"), "{e}");
    }

    #[test]
    fn pmem_style_invocations() {
        assert_eq!(rw(&["-L", "--driver", "pmem.ko"]), ["driver", "load", "pmem.ko"]);
        assert_eq!(rw(&["acquire", "--driver", "pmem.ko", "-L"]), ["driver", "load", "pmem.ko"]);
        assert_eq!(rw(&["-U"]), ["driver", "unload"]);
        assert_eq!(rw(&["-o", "m.aff4", "-t"]), ["acquire", "-o", "m.aff4", "-t"]);
        assert_eq!(rw(&["-V", "m.aff4"]), ["view", "m.aff4"]);
        assert_eq!(rw(&["ls", "-L"]), ["ls", "-L"]);
        for args in
            [rw(&["-L", "--driver", "x.ko"]), rw(&["-U"]), rw(&["mount", "a.aff4", "/mnt"]), rw(&["isf", "a.aff4", "-o", "x.json.xz"])]
        {
            let full: Vec<String> = std::iter::once("pmem".to_string()).chain(args).collect();
            assert!(Cli::try_parse_from(&full).is_ok(), "{full:?}");
        }
    }
}
