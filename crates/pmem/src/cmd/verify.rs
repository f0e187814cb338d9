//! `pmem verify`: one line per hash (PASS / FAIL / not checked / ERROR) and a summary.

use super::{open, threads};
use crate::cli::Input;
use crate::{exit, progress, Failure};
use aff4::verify::{all_ok, verify, Status, VerifyOptions};
use serde_json::json;

pub fn run(input: &Input, as_json: bool, t: Option<usize>, quiet: bool) -> Result<u8, Failure> {
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
    let checks = verify(&c, &VerifyOptions { threads: threads(t) }, &|n| pb.inc(n));
    pb.finish_and_clear();
    let ok = all_ok(&checks);
    let count = |f: fn(&Status) -> bool| checks.iter().filter(|c| f(&c.status)).count();
    let (pass, fail, nc, errs) = (
        count(|s| matches!(s, Status::Pass)),
        count(|s| matches!(s, Status::Fail { .. })),
        count(|s| matches!(s, Status::NotChecked(_))),
        count(|s| matches!(s, Status::Error(_))),
    );
    if as_json {
        let v = json!({
            "ok": ok,
            "passed": pass, "failed": fail, "not_checked": nc, "errors": errs,
            "checks": checks.iter().map(|c| {
                let (status, detail) = match &c.status {
                    Status::Pass => ("pass", json!(null)),
                    Status::Fail { expected, actual } => ("fail", json!({"expected": expected, "actual": actual})),
                    Status::NotChecked(why) => ("not_checked", json!(why)),
                    Status::Error(e) => ("error", json!(e)),
                };
                json!({"subject": c.subject, "what": c.what, "status": status, "detail": detail})
            }).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for ch in &checks {
            match &ch.status {
                Status::Pass => println!("PASS  {}  {}", ch.subject, ch.what),
                Status::Fail { expected, actual } => println!("FAIL  {}  {}: expected {expected}, got {actual}", ch.subject, ch.what),
                Status::NotChecked(why) => println!("not checked  {}  {}: {why}", ch.subject, ch.what),
                Status::Error(e) => println!("ERROR {}  {}: {e}", ch.subject, ch.what),
            }
        }
        if checks.is_empty() {
            println!("no hashes declared: nothing to verify");
        }
        println!(
            "{pass} passed, {fail} failed, {errs} unreadable, {nc} not checked: {}",
            if ok && !checks.is_empty() {
                "OK"
            } else if ok {
                "NOTHING VERIFIED"
            } else {
                "VERIFICATION FAILED"
            }
        );
    }
    Ok(if ok { exit::OK } else { exit::VERIFY_FAILED })
}
