//! Argument types shared by several subcommands: the volumes to read, how a capture is
//! stored, sizes and numbers, and the value parsers of every extension point (codecs, hashes,
//! memory layouts, export formats), each built from its library's own list of values.

use crate::{exit, Failure, WithCode};
use aff4::imager::ImagerOptions;
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::{Codec, HashAlgo};
use anyhow::{anyhow, Context};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use std::path::PathBuf;

/// Volumes to read, shared by the reading commands.
#[derive(Args, Debug, Clone)]
pub struct Input {
    /// AFF4 volume files, directory volumes or s3://BUCKET/KEY objects; give all parts of a
    /// striped set together (split sets are found from their first part).
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

impl Input {
    /// The options that open these volumes: the password and the private keys, read and parsed.
    pub fn open_options(&self) -> Result<aff4::OpenOptions, Failure> {
        let keys = self.keys.keys()?;
        Ok(aff4::OpenOptions { password: keys.password, private_keys: keys.private_keys })
    }
}

/// What opens an encrypted volume: its password, or a recipient's private key.
#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    /// Password for encrypted (pyaff4) containers.
    #[arg(long, env = "PMEM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// RSA private key (PEM) for volumes encrypted to its certificate (repeatable).
    #[arg(long, value_name = "KEY.pem")]
    pub key: Vec<PathBuf>,
}

impl KeyArgs {
    /// The password and the private keys, read and parsed.
    pub fn keys(&self) -> Result<aff4::crypto::Keys, Failure> {
        let mut private_keys = Vec::new();
        for k in &self.key {
            let name = k.display().to_string();
            let pem = std::fs::read_to_string(k).map_err(crate::files::cannot("read", vec![name.clone()], "")).code(exit::USAGE)?;
            private_keys.push((name.clone(), aff4::crypto::Keys::private_key(&pem, &name).code(exit::USAGE)?));
        }
        Ok(aff4::crypto::Keys { password: self.password.clone(), private_keys })
    }
}

/// The help heading of [`S3Args`] (per flag: a struct-wide heading would carry over to the flags after it).
#[cfg(feature = "s3")]
const S3_HEADING: &str = "Object storage (s3:// volumes)";

/// Where s3:// volumes live, for the commands that read or write volumes (under their own heading).
#[derive(Args, Debug, Clone, Default)]
pub struct S3Args {
    /// S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS).
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "URL", help_heading = S3_HEADING)]
    pub s3_endpoint: Option<String>,
    /// Region (default: AWS_REGION, else us-east-1).
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "REGION", help_heading = S3_HEADING)]
    pub s3_region: Option<String>,
}

impl S3Args {
    /// Hands the flags to the object-store client, which reads the standard AWS variables;
    /// called before any thread starts.
    pub fn apply(&self) {
        #[cfg(feature = "s3")]
        {
            if let Some(e) = &self.s3_endpoint {
                std::env::set_var("AWS_ENDPOINT_URL", e);
            }
            if let Some(r) = &self.s3_region {
                std::env::set_var("AWS_REGION", r);
            }
        }
    }
}

/// Which image of a volume a command reads (`cat`, `isf`).
#[derive(Args, Debug, Clone)]
pub struct ImageChoice {
    /// The image or stream: its URN, or an image's recorded name as `pmem ls` shows it
    /// (`C:\pagefile.sys`, or just `pagefile.sys`; default: the volume's only image).
    #[arg(long, value_name = "URN|NAME")]
    pub stream: Option<String>,
}

impl ImageChoice {
    /// The chosen stream's URN, else `default()`'s; a volume with several images and no choice
    /// is a usage error (exit 2) that lists them, a choice that names nothing an input error.
    pub fn resolve(&self, c: &aff4::Container, default: impl FnOnce(&aff4::Container) -> aff4::Result<String>) -> Result<String, Failure> {
        match &self.stream {
            Some(s) => c.find_stream(s).code(exit::INPUT),
            None => match default(c) {
                Ok(s) => Ok(s),
                Err(e @ aff4::Error::Unsupported(_)) => Err(e).context("choose the image with --stream URN|NAME").code(exit::USAGE),
                Err(e) => Err(e).context("no image to read").code(exit::INPUT),
            },
        }
    }
}

/// Options shared by `image` and `acquire` for how data is stored.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Output volume: an .aff4 file (added to if it exists, unless -t), a directory or a path
    /// ending in / for a directory volume, - to stream the volume to stdout, or s3://BUCKET/KEY
    /// to upload it to object storage as it is written.
    #[arg(short = 'o', long = "output", value_name = "VOLUME")]
    pub output: PathBuf,
    #[command(flatten)]
    pub s3: S3Args,
    /// Replace the output volume instead of adding to it.
    #[arg(short = 't', long = "truncate")]
    pub truncate: bool,
    /// Chunk compression.
    #[arg(short = 'c', long = "compression", value_name = "CODEC", default_value = Codec::WRITABLE[0].name(), value_parser = codec())]
    pub codec: Codec,
    /// Compression threads (default: all cores).
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
    /// Linear hashes of each image, comma-separated, or none. Default: sha256 for `pmem image`
    /// (a disk's hash is compared with the source device's own); none for `pmem acquire`: memory
    /// cannot be read again to compare with, so what its hash must prove is that the image has
    /// not changed since capture, which the block hashes prove on every core (a linear hash
    /// runs on one, and sets the pace of an acquisition where the CPU lacks SHA instructions).
    /// Logical files (-i, the extras) always get sha256 unless this names others.
    #[arg(long = "hash", value_name = "HASH,...", value_delimiter = ',', value_parser = hash())]
    pub hashes: Vec<Option<HashAlgo>>,
    /// Per-chunk block hashes with these algorithms, computed on the compression threads, and
    /// the Block-Map hash over them and the map, recorded as the image's aff4:hash (its linear
    /// hashes then go on its map). Default: sha256 for `pmem acquire`; none for `pmem image`.
    #[arg(long = "block-hashes", value_name = "HASH,...", value_delimiter = ',', value_parser = hash())]
    pub block_hashes: Vec<Option<HashAlgo>>,
    /// Chunks (of 32 KiB) per bevy, the unit written at once; fewer allow smaller --split parts.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub chunks_per_bevy: u32,
    /// Split the volume into parts of at most SIZE (e.g. 650M, 4G): OUT.aff4, OUT.A01, OUT.A02, …,
    /// which open together (give the first; the others are found beside it).
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size)]
    pub split: Option<u64>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary (errors still go to stderr).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Progress as JSON lines on stderr instead of a bar (about once a second and at each phase:
    /// {"phase", "done", "total", …, "elapsed"}), for scripts and fleet tools.
    #[arg(long)]
    pub progress_json: bool,
    #[command(flatten)]
    pub encrypt: EncryptArgs,
}

/// The help heading of the encryption flags.
const ENCRYPT_HEADING: &str = "Encryption (pyaff4's encrypted container: AES-XTS, a random key per volume)";

/// Who can read the volume: with any of these, everything (images, extras, metadata) is
/// encrypted and the volume's outer metadata names only the recipients.
#[derive(Args, Debug, Clone, Default)]
pub struct EncryptArgs {
    /// Encrypt to the holder of this X.509 certificate's RSA private key (PEM; repeatable:
    /// several recipients). Read back with `--key KEY.pem` (pyaff4 0.34 opens by key only a
    /// volume with one certificate recipient; by password, any).
    #[arg(long, value_name = "CERT.pem", help_heading = ENCRYPT_HEADING)]
    pub encrypt_to: Vec<PathBuf>,
    /// Also (or only) encrypt to a password, asked for twice on the terminal (without echo).
    /// Read back with `--password`.
    #[arg(long, help_heading = ENCRYPT_HEADING)]
    pub encrypt_password: bool,
    /// The same, the password read from this file's first line (`-`: stdin), for scripts; or set
    /// PMEM_ENCRYPT_PASSWORD.
    #[arg(long, value_name = "FILE", help_heading = ENCRYPT_HEADING, conflicts_with = "encrypt_password")]
    pub encrypt_password_file: Option<PathBuf>,
}

impl EncryptArgs {
    /// Whether encryption is asked for (without reading a certificate or a password yet).
    pub fn requested(&self) -> bool {
        !self.encrypt_to.is_empty()
            || self.encrypt_password
            || self.encrypt_password_file.is_some()
            || std::env::var_os("PMEM_ENCRYPT_PASSWORD").is_some_and(|p| !p.is_empty())
    }

    /// The recipients asked for (none: not encrypted).
    pub fn recipients(&self) -> Result<Vec<aff4::crypto::Recipient>, Failure> {
        let mut out = Vec::new();
        for c in &self.encrypt_to {
            let data = std::fs::read(c).map_err(crate::files::cannot("read", vec![c.display().to_string()], "")).code(exit::USAGE)?;
            let cert = aff4::crypto::Certificate::parse(&data, &c.display().to_string()).code(exit::USAGE)?;
            out.push(aff4::crypto::Recipient::Certificate(cert));
        }
        let env = std::env::var("PMEM_ENCRYPT_PASSWORD").ok().filter(|p| !p.is_empty());
        let password = match (&self.encrypt_password_file, env) {
            (Some(f), _) => Some(read_password(f)?),
            (None, Some(p)) => Some(p),
            (None, None) if self.encrypt_password => Some(prompt_password()?),
            (None, None) => None,
        };
        if let Some(p) = password {
            out.push(aff4::crypto::Recipient::Password(zeroize::Zeroizing::new(p)));
        }
        Ok(out)
    }
}

/// A new password from the terminal, typed twice (never echoed).
fn prompt_password() -> Result<String, Failure> {
    let ask = |what: &str| {
        rpassword::prompt_password(what)
            .context("--encrypt-password asks on the terminal; without one, use --encrypt-password-file or PMEM_ENCRYPT_PASSWORD")
            .code(exit::USAGE)
    };
    let first = zeroize::Zeroizing::new(ask("pmem: password for the encrypted volume: ")?);
    let again = zeroize::Zeroizing::new(ask("pmem: the same password again: ")?);
    if first.is_empty() || *first != *again {
        return Err(anyhow!("the two passwords differ (or are empty); nothing was written")).code(exit::USAGE);
    }
    Ok(first.to_string())
}

/// The first line of a password file (`-`: stdin), without its line ending; never empty.
fn read_password(f: &std::path::Path) -> Result<String, Failure> {
    let mut text = zeroize::Zeroizing::new(String::new());
    if f.as_os_str() == "-" {
        std::io::stdin().read_line(&mut text).context("reading the password from stdin").code(exit::USAGE)?;
    } else {
        *text = std::fs::read_to_string(f).map_err(crate::files::cannot("read", vec![f.display().to_string()], "")).code(exit::USAGE)?;
    }
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(anyhow!("{}: the password is empty", f.display())).code(exit::USAGE);
    }
    Ok(line)
}

/// A volume uploaded to object storage as it is written (multipart; completed at the end, aborted on failure).
#[cfg(feature = "s3")]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    let (writer, upload) = remote::create(url).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)?;
    let u = url.to_string();
    let complete: aff4::volume::write::OnClose =
        Box::new(move || upload.complete().map(|_| ()).map_err(|e| aff4::Error::io(u.clone(), std::io::Error::other(e.to_string()))));
    VolumeWriter::streaming(Box::new(writer), url, Some(complete)).with_context(|| format!("cannot write {url}")).code(exit::OUTPUT)
}

#[cfg(not(feature = "s3"))]
fn open_remote(url: &str) -> Result<VolumeWriter, Failure> {
    Err(anyhow!("{url}: this pmem was built without S3 support (cargo feature s3)")).code(exit::USAGE)
}

/// Parses a size: bytes, or with K, M, G, T (powers of 1024; an optional trailing B or iB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).or_else(|| t.strip_suffix('b')).unwrap_or(t);
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("{s}: not a size (e.g. 650M, 4G)"))?;
    if n.is_nan() || n <= 0.0 || n * mult as f64 > u64::MAX as f64 {
        return Err(format!("{s}: not a usable size"));
    }
    Ok((n * mult as f64) as u64)
}

/// Parses decimal or 0x-prefixed hex.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

/// The hashes an image gets when the flags name none (see `--hash`, `--block-hashes`).
#[derive(Debug, Clone, Copy)]
pub struct HashDefaults {
    /// Linear hashes.
    pub linear: &'static [HashAlgo],
    /// Block hashes.
    pub block: &'static [HashAlgo],
}

impl HashDefaults {
    /// Disks and files: a linear SHA-256, compared with the source's own.
    pub const DISK: HashDefaults = HashDefaults { linear: &[HashAlgo::Sha256], block: &[] };
    /// Memory: SHA-256 block hashes and the Block-Map hash, on every core.
    pub const MEMORY: HashDefaults = HashDefaults { linear: &[], block: &[HashAlgo::Sha256] };
}

/// The algorithms named (`none` names none), or the default when the flag was not given.
fn chosen(given: &[Option<HashAlgo>], default: &[HashAlgo]) -> Vec<HashAlgo> {
    if given.is_empty() {
        default.to_vec()
    } else {
        given.iter().flatten().copied().collect()
    }
}

impl StoreArgs {
    /// Pipeline options from the flags, with `defaults` for the hashes they do not name.
    pub fn imager_options(&self, defaults: HashDefaults) -> Result<ImagerOptions, Failure> {
        Ok(ImagerOptions {
            codec: self.codec,
            threads: threads(self.threads),
            hashes: chosen(&self.hashes, defaults.linear),
            block_hashes: chosen(&self.block_hashes, defaults.block),
            chunks_per_bevy: self.chunks_per_bevy,
            ..ImagerOptions::default()
        })
    }
    /// Opens the output volume (encrypted when recipients are given).
    pub fn open_volume(&self) -> Result<VolumeWriter, Failure> {
        let recipients = self.encrypt.recipients()?;
        if recipients.is_empty() {
            return self.open_plain();
        }
        if !self.truncate && self.output.exists() && self.output.as_os_str() != "-" {
            return Err(anyhow!(
                "{}: an encrypted volume is always a new one: add -t to replace it, or choose a new name",
                self.output.display()
            ))
            .code(exit::USAGE);
        }
        let outer = self.open_plain()?;
        VolumeWriter::encrypted(outer, recipients).context("starting the encrypted volume").code(exit::OUTPUT)
    }

    /// Opens the output volume as given (file, directory, split set, stdout or upload).
    fn open_plain(&self) -> Result<VolumeWriter, Failure> {
        if self.output.as_os_str() == "-" && self.json {
            return Err(anyhow!("--json and -o - both want stdout; drop one")).code(exit::USAGE);
        }
        let name = self.output.display().to_string();
        if name.starts_with("s3://") {
            if self.split.is_some() {
                return Err(anyhow!("--split writes files; it cannot be combined with -o {name}")).code(exit::USAGE);
            }
            return open_remote(&name);
        }
        let mode = if self.truncate { Mode::Truncate } else { Mode::Append };
        let opened = if self.output.as_os_str() == "-" { VolumeWriter::to_stdout() } else { VolumeWriter::create(&self.output, mode) };
        // An existing file that cannot be added to: say what -t would do.
        let exists = !self.truncate && self.output.is_file();
        let mut vol = match opened {
            Err(e @ aff4::Error::Corrupt { .. }) if exists => {
                Err(anyhow::Error::new(e).context("cannot add to an existing file that is not a volume (-t replaces it)"))
            }
            other => other.map_err(crate::files::cannot("write", vec![self.output.display().to_string()], " (-t replaces it)")),
        }
        .code(exit::OUTPUT)?;
        if let Some(limit) = self.split {
            // Room for one full bevy stored uncompressed, its index, and the part's turtle and directory.
            let chunk = ImagerOptions::default().chunk_size as u64;
            let margin = chunk * u64::from(self.chunks_per_bevy) * 17 / 16 + (4 << 20);
            if limit < margin * 2 {
                // Parts must hold two bevies; smaller bevies make smaller parts possible.
                let fits = (limit / 2).saturating_sub(4 << 20) * 16 / 17 / chunk;
                let hint = if fits >= 1 {
                    format!("; add --chunks-per-bevy {} (or fewer) for parts that small", fits.min(u64::from(u32::MAX)))
                } else {
                    format!("; parts must be at least {} MiB", (2 * ((chunk * 17 / 16) + (4 << 20))).div_ceil(1 << 20))
                };
                return Err(anyhow!(
                    "--split: parts of {limit} bytes cannot hold two bevies of {} chunks ({} bytes needed){hint}",
                    self.chunks_per_bevy,
                    margin * 2
                ))
                .code(exit::USAGE);
            }
            vol.set_split(limit, margin, self.truncate).context("--split").code(exit::USAGE)?;
        }
        Ok(vol)
    }
    /// Hash algorithms for logical files: those `--hash` names, else SHA-256.
    pub fn file_hashes(&self) -> Vec<HashAlgo> {
        chosen(&self.hashes, &[HashAlgo::Sha256])
    }
}
/// Thread count from a flag or the machine.
pub fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(aff4::parallel::default_threads).max(1)
}

/// A value parser accepting the names of `all` (shown by `--help`, completed by shells) and
/// giving the value named.
fn one_of<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
    help: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(move |t| PossibleValue::new(name(*t)).help(help(*t))))
        .map(move |s| all.iter().copied().find(|t| name(*t) == s).unwrap_or(all[0]))
}

/// `-c`: [`Codec::WRITABLE`], and `none` for `stored` (aff4imager's name for it).
pub fn codec() -> impl TypedValueParser<Value = Codec> {
    let values = Codec::WRITABLE.map(|c| {
        let v = PossibleValue::new(c.name()).help(c.describe());
        if c == Codec::Stored {
            v.alias("none")
        } else {
            v
        }
    });
    PossibleValuesParser::new(values).map(|s| Codec::from_name(&s).unwrap_or(Codec::Stored))
}

/// `--hash`, `--block-hashes`: [`HashAlgo::ALL`], or `none`.
pub fn hash() -> impl TypedValueParser<Value = Option<HashAlgo>> {
    let names = HashAlgo::ALL.map(HashAlgo::name).into_iter().chain(["none"]);
    PossibleValuesParser::new(names).map(|s| HashAlgo::from_name(&s))
}

/// `acquire --format`: [`memformat::meta::Layout::ALL`].
pub fn layout() -> impl TypedValueParser<Value = memformat::meta::Layout> {
    use memformat::meta::Layout;
    one_of(&Layout::ALL, Layout::name, |l| match l {
        Layout::Map => "a Map over physical addresses, compressed (zero pages and holes cost nothing)",
        Layout::Elf => "an ELF core (PT_LOAD per range with p_paddr, VMCOREINFO note), stored in place like raw",
        Layout::Raw => {
            "the physical address space stored in place: uncompressed, one ZIP member from a page-aligned offset \
             (`pmem info` shows it), or a plain sparse file in a directory volume, that other tools read as it is"
        }
    })
}

/// `export --format`: [`memview::export::ExportFormat::ALL`].
pub fn export_format() -> impl TypedValueParser<Value = memview::export::ExportFormat> {
    use memview::export::ExportFormat;
    one_of(&ExportFormat::ALL, ExportFormat::name, ExportFormat::describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("650M"), Ok(650 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "-1G", "0", "NaN", "1e400T", "12Q"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
