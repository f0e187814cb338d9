//! The hostile-input campaign through the command line: mutants of the reference volumes and of
//! a volume pmem writes go through `ls`, `info`, `verify`, `cat`, `export` and `recover`.
//! Nothing may panic, die of a signal or hang, and whenever `verify` exits 0 every image must
//! `cat` to exactly the original's bytes. CI runs 150 mutants; the full campaign is
//! `PMEM_CAMPAIGN_MUTANTS=2000 cargo test --release -p pmem --test campaign -- --nocapture`.

#![allow(clippy::unwrap_used)]

#[path = "../../aff4/tests/mutants/mod.rs"]
mod mutants;
mod util;
use mutants::{layout, mutate, Rng};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::*;

/// Runs pmem with stdout into `out`; the exit code, or a failure for a panic, a signal or a hang.
fn run_bounded(args: &[&str], out: &Path) -> Result<i32, String> {
    let mut child =
        pmem().args(args).stdin(Stdio::null()).stdout(std::fs::File::create(out).unwrap()).stderr(Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return match st.code() {
                Some(101) => Err(format!("pmem {args:?} panicked: {err}")),
                Some(c) => Ok(c),
                None => Err(format!("pmem {args:?} died of a signal ({st:?}): {err}")),
            };
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pmem {args:?} ran for over 30 s"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The images of a volume and the SHA-256 of the bytes `cat` gives for each.
fn images(vol: &Path, out: &Path) -> Vec<(String, String)> {
    let ls: serde_json::Value = serde_json::from_slice(&ok(&["ls", "--json", vol.to_str().unwrap()]).stdout).unwrap();
    ls["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let urn = i["urn"].as_str().unwrap().to_string();
            let _ = std::fs::remove_file(out);
            assert_eq!(
                run_bounded(&["cat", "--stream", &urn, "-o", out.to_str().unwrap(), vol.to_str().unwrap()], &out.with_extension("so")),
                Ok(0)
            );
            (urn, sha256(out))
        })
        .collect()
}

#[test]
fn no_mutant_crashes_hangs_or_verifies_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.bin");
    std::fs::write(&input, corpus(3 << 20, 4)).unwrap();
    let own = d.join("own.aff4");
    ok(&["image", "-q", "--chunks-per-bevy", "16", "--block-hashes", "sha256", "-o", own.to_str().unwrap(), input.to_str().unwrap()]);
    let total: usize = std::env::var("PMEM_CAMPAIGN_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let sources = [
        (own.clone(), total * 4 / 10),
        (refimg("AFF4Std/Base-Linear.aff4"), total * 3 / 10),
        (refimg("AFF4Std/Base-Linear-ReadError.aff4"), total * 15 / 100),
        (refimg("AFF4-L/dream.aff4"), total - total * 4 / 10 - total * 3 / 10 - total * 15 / 100),
    ];
    let (m, out, fixed, exp) = (d.join("m.aff4"), d.join("out.bin"), d.join("fixed.aff4"), d.join("exp"));
    let (mut n, mut verified, mut recovered) = (0, 0, 0);
    for (k, (src, count)) in sources.iter().enumerate() {
        let bytes = std::fs::read(src).unwrap();
        let original = images(src, &out);
        let lay = layout(&bytes);
        let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ ((k as u64 + 1) << 17));
        for i in 0..*count {
            std::fs::write(&m, mutate(&bytes, &lay, &mut rng)).unwrap();
            let ms = m.to_str().unwrap();
            let keep = || {
                let p = std::env::temp_dir().join(format!("pmem-cli-campaign-{k}-{i}.aff4"));
                std::fs::copy(&m, &p).unwrap();
                p.display().to_string()
            };
            let check = |args: &[&str]| run_bounded(args, &out.with_extension("so")).unwrap_or_else(|e| panic!("{e} (mutant {})", keep()));
            check(&["ls", ms]);
            check(&["ls", "--json", ms]);
            check(&["info", ms]);
            let _ = std::fs::remove_dir_all(&exp);
            check(&["export", "-D", exp.to_str().unwrap(), ms]);
            if check(&["recover", ms, "-o", fixed.to_str().unwrap(), "-t"]) == 0 {
                recovered += 1;
                assert_eq!(check(&["ls", fixed.to_str().unwrap()]), 0, "a recovered volume opens (mutant {})", keep());
            }
            if check(&["verify", "-q", ms]) == 0 {
                verified += 1;
                for (urn, sha) in &original {
                    let _ = std::fs::remove_file(&out);
                    let c = check(&["cat", "--stream", urn, "-o", out.to_str().unwrap(), ms]);
                    assert!(
                        c == 0 && sha256(&out) == *sha,
                        "verify said OK but {urn} does not read back as the original (mutant {})",
                        keep()
                    );
                }
            }
            n += 1;
        }
    }
    eprintln!("{n} mutants through ls, info, export, recover, verify and cat: 0 failures; {verified} verified OK, {recovered} recovered");
    assert!(n >= total);
    assert!(verified > 0, "some mutants (in bytes no reader uses) must still verify");
}
