//! `pmem recover`: a volume whose writer was killed, rebuilt into a new one that opens.

use crate::{exit, Failure, WithCode};
use anyhow::Context;
use serde_json::json;

/// `pmem recover`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The unclosed volume.
    #[arg(value_name = "BROKEN")]
    pub broken: std::path::PathBuf,
    /// The rebuilt volume to write.
    #[arg(long, short = 'o', value_name = "FIXED")]
    pub output: std::path::PathBuf,
    /// Replace an existing output.
    #[arg(short = 't', long)]
    pub truncate: bool,
    /// Machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// An encrypted volume is decrypted to be rebuilt (and written encrypted again, under the
    /// same key, for the same recipients): its password or a recipient's private key.
    #[command(flatten)]
    pub keys: crate::args::KeyArgs,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (broken, output, truncate, as_json) = (a.broken.as_path(), a.output.as_path(), a.truncate, a.json);
    let keys = a.keys.keys()?;
    let hint = if keys.is_empty() { " (give --key KEY.pem or --password)" } else { "" };
    let mut r = aff4::recover::recover_with(broken, &keys)
        .map_err(|e| match e {
            aff4::Error::Key(m) => anyhow::anyhow!("{m}{hint}"),
            e => e.into(),
        })
        .with_context(|| format!("cannot recover {}", broken.display()))
        .code(exit::INPUT)?;
    let hint = if !truncate && output.exists() { " (-t replaces it)" } else { "" };
    r.write(output, truncate).with_context(|| format!("cannot write {}{hint}", output.display())).code(exit::OUTPUT)?;
    let rep = &r.report;
    if as_json {
        let v = json!({
            "volume": rep.volume,
            "output": output.display().to_string(),
            "members": rep.members,
            "damaged": rep.damaged.iter().map(|(n, at)| json!({"member": n, "offset": at})).collect::<Vec<_>>(),
            "cut_at": rep.cut_at,
            "dropped_bytes": rep.dropped_bytes,
            "complete_images": rep.complete_images,
            "recovered_images": rep.images.iter().map(|i| json!({
                "image": i.image, "map": i.map, "size": i.size, "data_bytes": i.data_bytes, "lost_from": i.lost_from,
            })).collect::<Vec<_>>(),
            "notes": rep.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{} -> {}: volume {}", broken.display(), output.display(), rep.volume);
        println!("  {} members kept; {} images were complete before the crash", rep.members, rep.complete_images);
        if let Some(at) = rep.cut_at {
            println!("  cut off at byte {at}: {} bytes of an unfinished member dropped", rep.dropped_bytes);
        }
        for (n, at) in &rep.damaged {
            println!("  dropped {n} (at byte {at}): its bytes do not match its CRC-32");
        }
        for i in &rep.images {
            let lost = match i.lost_from {
                Some(at) => format!("from byte {at} on unknown"),
                None => "nothing lost".to_string(),
            };
            println!("  recovered {} ({} bytes, {} of data back, {lost})", i.image, i.size, super::human(i.data_bytes));
        }
        for n in &rep.notes {
            println!("  note: {n}");
        }
        println!("next: pmem verify {} (a recovered image verifies as INCOMPLETE, exit 8)", output.display());
    }
    Ok(exit::OK)
}
