//! `pmem info`: a one-screen summary for a person: what was acquired, from where, how much,
//! what could not be read, what else was captured, and which hashes the volume carries.

use super::{human, open};
use crate::args::Input;
use crate::Failure;
use memformat::meta::{format_ranges, MemoryImageMeta};

/// `pmem info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// Also verify every hash.
    #[arg(long)]
    pub verify: bool,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, check) = (&a.input, a.verify);
    let c = open(input)?;
    let g = c.graph();
    let a = |s: &str, k: &str| g.aff4(s, k).map(|n| n.value().to_string());
    for v in c.volumes() {
        println!("volume    {}  ({}, {})", v.path, v.dialect.describe(), v.tool().unwrap_or("tool unknown"));
    }
    let images = c.images();
    let streams = c.streams();
    for i in images.iter().filter(|i| !i.logical) {
        println!();
        println!("{} image {}", if i.memory { "memory" } else { "disk/file" }, i.urn);
        let m = MemoryImageMeta::parse(g, &i.urn);
        if let Some(n) = &i.name {
            println!("  source        {n}");
        }
        if let Some(s) = &m.source {
            println!("  source        {s}");
        }
        if let Some(r) = &m.kernel_release {
            println!("  kernel        {r}");
        }
        if let Some(r) = &m.architecture {
            println!("  architecture  {r}");
        }
        if let Some(h) = &m.hostname {
            println!("  hostname      {h}   boot id {}", m.boot_id.as_deref().unwrap_or_default());
        }
        if let (Some(s), Some(e)) = (a(&i.urn, "acquisitionStartTime"), a(&i.urn, "acquisitionEndTime")) {
            println!("  acquired      {s} .. {e}");
        }
        if let Some(st) = a(&i.urn, "acquisitionCompletionState") {
            println!("  recorded      {st}");
        }
        let state = aff4::evidence::image_state(&c, &i.urn);
        println!("  state         {}", state.state.describe());
        for f in state.findings() {
            println!("  {:<13} {}", f.cause.name(), f.message);
        }
        if let Some(r) = &m.ranges {
            let list = r.iter().map(|r| format!("{:#x}-{:#x}", r.start, r.end)).collect::<Vec<_>>().join(" ");
            println!("  RAM           {} in {} ranges: {list}", human(m.installed.unwrap_or(0)), r.len());
        }
        if let Some(sz) = i.size {
            println!("  size          {} ({sz} bytes)", human(sz));
        }
        let stored: u64 = i
            .data_streams
            .iter()
            .filter_map(|m| g.aff4(m, "dependentStream").and_then(|n| n.as_iri()))
            .filter_map(|s| c.segments().locate(&format!("{s}/00000000")).map(|_| s))
            .map(|s| {
                // The bevies that are there (never a loop over the declared size).
                (0..).map_while(|b| c.segments().open(&aff4::image_stream::bevy_urn(s, b)).ok().flatten()).map(|x| x.size()).sum::<u64>()
            })
            .sum();
        if stored > 0 {
            println!("  stored        {} compressed", human(stored));
        }
        // RAW and ELF stored in place: where other tools read them.
        for s in i.data_streams.iter().filter_map(|m| g.aff4(m, "dependentStream").and_then(|n| n.as_iri())) {
            if let Some((file, at)) = c.segments().in_place(s) {
                println!("  in place      {file} from byte {at} (uncompressed: other tools read it there)");
            }
        }
        if let Some(u) = m.unreadable_pages {
            let list = if m.unreadable_ranges.is_empty() { String::new() } else { format!(": {}", format_ranges(&m.unreadable_ranges)) };
            println!("  unreadable    {u} pages{list}");
        }
        for n in &m.notes {
            println!("  note          {n}");
        }
        match memformat::timeline::of_image(&c, &i.urn) {
            Some(Ok(t)) => {
                println!(
                    "  read times    {} window(s) of {} read over {:.2} s from {}{} (pmem export writes it beside the image as NAME.{})",
                    t.windows,
                    human(t.window),
                    t.span_s,
                    t.started,
                    t.longest.map(|(w, d)| format!("; the longest, at {w:#x}, over {d:.2} s")).unwrap_or_default(),
                    memformat::timeline::NAME
                );
            }
            Some(Err(e)) => println!("  read times    unreadable: {e}"),
            None => {}
        }
        if let Some(r) = &m.recheck {
            println!(
                "  recheck       {} pages read again after the pass{} ({:.3} s): {} changed while we read{}",
                r.pages,
                r.table_pages.map(|t| format!(", {t} of them page tables")).unwrap_or_default(),
                r.seconds,
                r.changed_pages,
                if r.changed.is_empty() { String::new() } else { format!(": {}", format_ranges(&r.changed)) }
            );
        }
        if let Some(k) = &m.kaslr_offset {
            println!("  KASLR offset  {k}   phys_base {}", m.phys_base.as_deref().unwrap_or_default());
        }
        for (k, v) in c.image_hashes(&i.urn) {
            let k = match k.strip_prefix("blockMapHash") {
                Some(a) => format!("{a} Block-Map hash (the acquisition hash: over the block hashes and the map)"),
                None => k,
            };
            println!("  hash          {k} {v}");
        }
    }
    // Files mapped by processes (and /boot) apart from the other captured files.
    let mapped_iri = memformat::meta::iri(memformat::meta::prop::MAPPED_FILE);
    let mapped: std::collections::BTreeSet<String> =
        images.iter().flat_map(|i| g.values(&i.urn, &mapped_iri).filter_map(|n| n.as_iri().map(String::from))).collect();
    let files: Vec<_> = images.iter().filter(|i| i.logical && !mapped.contains(&i.urn)).collect();
    let maps: Vec<_> = images.iter().filter(|i| i.logical && mapped.contains(&i.urn)).collect();
    let skipped: Vec<String> = images
        .iter()
        .filter_map(|i| a(&i.urn, memformat::meta::prop::MAPPED_FILES_SKIPPED))
        .flat_map(|s| s.split("; ").map(String::from).collect::<Vec<_>>())
        .collect();
    if !maps.is_empty() || !skipped.is_empty() {
        let bytes: u64 = maps.iter().map(|f| f.size.unwrap_or(0)).sum();
        println!();
        println!("mapped by running processes, and /boot ({} files, {}):", maps.len(), human(bytes));
        for f in &maps {
            let pids = a(&f.urn, memformat::meta::prop::MAPPED_BY).map(|p| format!("   pids {p}")).unwrap_or_default();
            let deleted = if a(&f.urn, memformat::meta::prop::DELETED).is_some() { "   DELETED from the disk" } else { "" };
            println!("  {:<40} {}{pids}{deleted}", f.name.as_deref().unwrap_or(&f.urn), human(f.size.unwrap_or(0)));
        }
        for s in &skipped {
            println!("  not captured: {s}");
        }
    }
    if !files.is_empty() {
        println!();
        println!("files captured ({}):", files.len());
        for f in files {
            let mut what = String::new();
            if g.values(&f.urn, aff4::vocab::CATEGORY).any(|n| n.value() == memacq::pagefile::MEMORY_PAGEFILE) {
                let n = g.first_of(&f.urn, &[memacq::pagefile::PAGEFILE_NUMBER]).map(|n| n.value().to_string()).unwrap_or_default();
                let state = a(&f.urn, "acquisitionCompletionState").unwrap_or_default();
                what = format!("   pagefile {n}, {state}");
            }
            println!("  {:<40} {}{what}", f.name.as_deref().unwrap_or(&f.urn), human(f.size.unwrap_or(0)));
        }
    }
    let hashed =
        streams.iter().filter(|s| !s.hashes.is_empty()).count() + images.iter().filter(|i| !c.image_hashes(&i.urn).is_empty()).count();
    println!();
    for n in c.notes() {
        println!("note: {n}");
    }
    if check {
        let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions::default(), &|_| {});
        let pass = report.checks.iter().filter(|x| x.status == aff4::verify::Status::Pass).count();
        let verdict = report.verdict();
        println!(
            "hashes: {pass} of {} checked hashes pass; {} finding(s): {}{}",
            report.checks.len(),
            report.findings.len(),
            crate::exit::verdict_text(verdict),
            if verdict.is_some() { " (see pmem verify)" } else { "" }
        );
        return Ok(crate::exit::code(verdict));
    }
    println!("hashes: {hashed} streams and images carry hashes; `pmem verify` (or `pmem info --verify`) checks them");
    Ok(0)
}
