//! `pmem ls`: images with their recorded names, and streams with type, size, codec, chunking and hashes.

use super::{human, open};
use crate::args::Input;
use crate::Failure;
use serde_json::json;

/// `pmem ls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// Machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, as_json) = (&a.input, a.json);
    let c = open(input)?;
    let images = c.images();
    let streams = c.streams();
    let states: Vec<aff4::evidence::ImageState> = images.iter().map(|i| aff4::evidence::image_state(&c, &i.urn)).collect();
    if as_json {
        let v = json!({
            "volumes": c.volumes().iter().map(|v| json!({"path": v.path, "urn": v.urn, "dialect": v.dialect.describe(), "tool": v.tool()})).collect::<Vec<_>>(),
            "images": images.iter().zip(&states).map(|(i, st)| json!({"urn": i.urn, "name": i.name, "types": i.types, "size": i.size, "data_streams": i.data_streams, "logical": i.logical, "memory": i.memory,
                "state": st.state.describe(), "complete": st.state == aff4::evidence::State::Complete,
                "problems": st.findings().iter().map(|f| json!({"cause": f.cause.name(), "message": f.message})).collect::<Vec<_>>(),
                "hashes": c.image_hashes(&i.urn).iter().map(|(k, v)| json!({"kind": k, "value": v})).collect::<Vec<_>>(),
                "read_timeline": memformat::timeline::of_image(&c, &i.urn).map(|t| t.map(|s| s.to_json()).unwrap_or_else(|e| json!({"error": e})))})).collect::<Vec<_>>(),
            "problems": c.problems().iter().map(|f| json!({"cause": f.cause.name(), "subject": f.subject, "message": f.message})).collect::<Vec<_>>(),
            "streams": streams.iter().map(|s| json!({"urn": s.urn, "kind": format!("{:?}", s.kind), "size": s.size, "codec": s.codec, "chunk_size": s.chunk_size, "chunks_per_bevy": s.chunks_per_bevy, "hashes": s.hashes.iter().map(|(k, v)| json!({"kind": k, "value": v})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "notes": c.notes(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for v in c.volumes() {
        println!("volume {}  {}  [{}{}]", v.path, v.urn, v.dialect.describe(), v.tool().map(|t| format!(", {t}")).unwrap_or_default());
    }
    println!("\nimages:");
    if images.is_empty() {
        println!("  (none)");
    }
    for (i, st) in images.iter().zip(&states) {
        let hashes = c.image_hashes(&i.urn);
        println!(
            "  {}  {}  {}{}  [{}]",
            i.urn,
            i.types.join(","),
            i.size.map(|s| format!("{s} bytes ({})", human(s))).unwrap_or_else(|| "size ?".into()),
            i.name.as_ref().map(|n| format!("  name={n}")).unwrap_or_default(),
            st.state.describe(),
        );
        // The recorded hashes in full: what an analyst copies into a report or compares.
        for (kind, value) in &hashes {
            println!("      hash {kind} {value}");
        }
        for f in st.findings() {
            println!("      {}: {}", f.cause.name(), f.message);
        }
        for d in &i.data_streams {
            if d != &i.urn {
                println!("      data {d}");
            }
        }
    }
    println!("\nstreams:");
    for s in &streams {
        let mut line = format!("  {}  {:?}  {}", s.urn, s.kind, s.size.map(|s| format!("{s} bytes")).unwrap_or_else(|| "size ?".into()));
        if let Some(codec) = &s.codec {
            line.push_str(&format!("  codec={codec} chunk={} per-bevy={}", s.chunk_size.unwrap_or(0), s.chunks_per_bevy.unwrap_or(0)));
        }
        if !s.hashes.is_empty() {
            line.push_str(&format!("  hashes={}", s.hashes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(",")));
        }
        println!("{line}");
    }
    for n in c.notes() {
        println!("\nnote: {n}");
    }
    Ok(0)
}
