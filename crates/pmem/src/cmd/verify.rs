//! `pmem verify`: one line per hash (PASS / FAIL / not checked / ERROR), one per finding
//! (altered, incomplete, unverified), each image's state and coverage, and a verdict whose exit
//! code alone says whether the evidence is complete and intact.

use super::open;
use crate::args::threads;
use crate::args::Input;
use crate::exit::{code, verdict_text};
use crate::{progress, Failure};
use aff4::evidence::Cause;
use aff4::verify::{verify, Report, Status, VerifyOptions};
use serde_json::json;

/// `pmem verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: Input,
    /// Machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Reader threads.
    #[arg(long, short = 'T')]
    pub threads: Option<usize>,
    /// No progress bar, and print only what is not OK (failed checks and findings).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(a: &Args) -> Result<u8, Failure> {
    let (input, as_json, t, quiet) = (&a.input, a.json, a.threads, a.quiet);
    let c = open(input)?;
    let total: u64 = c.streams().iter().filter(|s| !s.hashes.is_empty()).filter_map(|s| s.size).sum::<u64>()
        + c.images()
            .iter()
            // Read whole for a linear hash (a Block-Map hash or a partial hash does not read it all).
            .filter(|i| c.declared_hashes(&i.urn).iter().any(|(k, _)| !k.starts_with("blockMapHash") && !k.contains("[..")))
            .filter_map(|i| i.size)
            .sum::<u64>()
        // Images with only a partial hash (interrupted acquisitions) are read up to its length.
        + c.images()
            .iter()
            .filter_map(|i| c.graph().values(&i.urn, aff4::vocab::PREFIX_HASH_LENGTH).next().and_then(aff4::rdf::Node::as_u64))
            .sum::<u64>();
    let pb = progress::bytes(total, "verifying", quiet || as_json);
    let report = verify(&c, &VerifyOptions { threads: threads(t) }, &|n| pb.inc(n));
    pb.finish_and_clear();
    let verdict = report.verdict();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&to_json(&report))?);
    } else {
        print_text(&report, quiet);
    }
    Ok(code(verdict))
}

fn to_json(report: &Report) -> serde_json::Value {
    let checks = &report.checks;
    let count = |f: fn(&Status) -> bool| checks.iter().filter(|c| f(&c.status)).count();
    let verdict = report.verdict();
    json!({
        "ok": verdict.is_none(),
        "verdict": verdict.map_or("ok", Cause::name),
        "exit_code": code(verdict),
        "passed": count(|s| matches!(s, Status::Pass)),
        "failed": count(|s| matches!(s, Status::Fail { .. })),
        "not_checked": count(|s| matches!(s, Status::NotChecked(_))),
        "errors": count(|s| matches!(s, Status::Error(_))),
        "findings": report.findings.iter().map(|f| json!({
            "cause": f.cause.name(), "subject": f.subject, "message": f.message,
            "range": f.range.map(|(a, b)| json!({"start": a, "end": b})),
        })).collect::<Vec<_>>(),
        "images": report.images.iter().map(|i| json!({
            "urn": i.state.urn, "state": i.state.state.describe(), "complete": i.state.state == aff4::evidence::State::Complete,
            "size": i.state.size, "covered": i.covered,
        })).collect::<Vec<_>>(),
        "checks": checks.iter().map(|c| {
            let (status, detail) = match &c.status {
                Status::Pass => ("pass", json!(null)),
                Status::Fail { expected, actual } => ("fail", json!({"expected": expected, "actual": actual})),
                Status::NotChecked(why) => ("not_checked", json!(why)),
                Status::Error(e) => ("error", json!(e)),
            };
            json!({"subject": c.subject, "what": c.what, "status": status, "detail": detail})
        }).collect::<Vec<_>>(),
    })
}

fn print_text(report: &Report, quiet: bool) {
    let checks = &report.checks;
    for ch in checks {
        match &ch.status {
            Status::Pass if !quiet => println!("PASS  {}  {}", ch.subject, ch.what),
            Status::NotChecked(why) if !quiet => println!("not checked  {}  {}: {why}", ch.subject, ch.what),
            Status::Fail { expected, actual } => println!("FAIL  {}  {}: expected {expected}, got {actual}", ch.subject, ch.what),
            Status::Error(e) => println!("ERROR {}  {}: {e}", ch.subject, ch.what),
            _ => {}
        }
    }
    for f in &report.findings {
        let range = f.range.map(|(a, b)| format!(" [bytes {a:#x}-{b:#x}]")).unwrap_or_default();
        println!("{}  {}  {}{range}", f.cause.name().to_uppercase(), f.subject, f.message);
    }
    let verdict = report.verdict();
    if quiet && verdict.is_none() {
        return;
    }
    for i in &report.images {
        let size = i.state.size.unwrap_or(0);
        println!("image {}  {}, {} of {size} bytes covered by checked hashes", i.state.urn, i.state.state.describe(), i.covered);
    }
    let count = |f: fn(&Status) -> bool| checks.iter().filter(|c| f(&c.status)).count();
    println!(
        "{} passed, {} failed, {} unreadable, {} not checked, {} finding(s): {}",
        count(|s| matches!(s, Status::Pass)),
        count(|s| matches!(s, Status::Fail { .. })),
        count(|s| matches!(s, Status::Error(_))),
        count(|s| matches!(s, Status::NotChecked(_))),
        report.findings.len(),
        verdict_text(verdict)
    );
}
