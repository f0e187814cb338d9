//! A volume whose writer was killed (SIGKILL, power loss) is rebuilt by `pmem recover`: every
//! complete bevy comes back with the bytes that were captured, the rest is recorded as unknown,
//! and verify then says the evidence is incomplete (exit 8), never OK and never altered.

#![allow(clippy::unwrap_used)]

#[path = "../../aff4/tests/mutants/mod.rs"]
mod mutants;
mod util;
use mutants::Rng;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use util::*;

fn json_of(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let o = run(args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Recovers `broken` into `fixed` and checks what came back against `original`, the bytes the
/// killed writer was given: every recovered image reads back as `original` up to where its
/// loss starts; verify says incomplete (8). Returns the bytes of data recovered.
fn recover_and_check(broken: &Path, fixed: &Path, original: &[u8], complete_before: usize) -> u64 {
    let (c, r, err) = json_of(&["recover", "--json", broken.to_str().unwrap(), "-o", fixed.to_str().unwrap(), "-t"]);
    assert_eq!(c, Some(0), "recover {}: {err}", broken.display());
    assert_eq!(r["complete_images"].as_u64(), Some(complete_before as u64), "{r}");
    let (vc, v, _) = json_of(&["verify", "--json", fixed.to_str().unwrap()]);
    let images = r["recovered_images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "the image being written is rebuilt: {r}");
    assert_eq!(vc, Some(8), "a recovered image is incomplete: {v}");
    assert_eq!(v["failed"].as_u64(), Some(0), "{v}");
    let mut back = 0;
    for im in images {
        let out = ok(&["cat", "--stream", im["image"].as_str().unwrap(), fixed.to_str().unwrap()]).stdout;
        let size = im["size"].as_u64().unwrap() as usize;
        assert_eq!(out.len(), size, "{im}");
        let good = im["lost_from"].as_u64().map(|l| l as usize).unwrap_or(size);
        assert!(good <= original.len(), "more came back than was written: {im}");
        assert!(out[..good] == original[..good], "recovered bytes differ from those captured: {im}");
        back += im["data_bytes"].as_u64().unwrap();
    }
    // Images complete before the crash still verify on their own.
    let done = v["images"].as_array().unwrap().iter().filter(|i| i["complete"] == true).count();
    assert_eq!(done, complete_before, "{v}");
    back
}

/// kill -9 at random moments of new writes and of appends (through a pipe, so the writer is
/// always mid-stream when killed), then recover and verify.
#[test]
fn killed_writers_are_recovered_with_what_reached_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = d.join("first.bin");
    std::fs::write(&first, corpus(3 << 20, 1)).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut recovered_data = 0;
    for round in 0..9u64 {
        let append = round % 3 == 2;
        let vol = d.join(format!("k{round}.aff4"));
        if append {
            ok(&["image", "-q", "-o", vol.to_str().unwrap(), first.to_str().unwrap()]);
        }
        let data = corpus(96 << 20, 10 + round);
        let mut child = pmem()
            .args(["image", "-q", "--chunks-per-bevy", if round % 2 == 0 { "1024" } else { "96" }, "-o", vol.to_str().unwrap(), "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let feed = rng.below(data.len());
        let mut stdin = child.stdin.take().unwrap();
        for piece in data[..feed].chunks(1 << 20) {
            stdin.write_all(piece).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.below(300) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(stdin);
        // The killed volume says what to do.
        let o = run(&["ls", vol.to_str().unwrap()]);
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(said.contains("pmem recover"), "round {round}: {said}");
        let fixed = d.join(format!("k{round}.fixed.aff4"));
        recovered_data += recover_and_check(&vol, &fixed, &data[..feed], usize::from(append));
    }
    assert!(recovered_data > 64 << 20, "the kills should leave data to recover ({recovered_data} bytes)");
}

/// A memory acquisition cut at any byte (the state a kill or a power loss leaves, as the writer
/// only ever appends) is recovered with the expected size from the journal, the unread rest
/// unknown; cut inside the closing records, everything comes back and verifies.
#[test]
fn a_cut_acquisition_is_recovered_at_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let phys = corpus(40 << 20, 7);
    let lime = d.join("mem.lime");
    lime_file(&lime, 0x100000, &phys[0x100000..]);
    let vol = d.join("mem.aff4");
    ok(&["acquire", "-q", "--chunks-per-bevy", "64", "--source", lime.to_str().unwrap(), "-o", vol.to_str().unwrap()]);
    let whole = std::fs::read(&vol).unwrap();
    let want = ok(&["cat", vol.to_str().unwrap()]).stdout;
    assert_eq!(want.len(), phys.len());
    let mut rng = Rng(7);
    let cut = d.join("cut.aff4");
    let fixed = d.join("fixed.aff4");
    let mut cuts: Vec<usize> = (0..12).map(|_| 1000 + rng.below(whole.len() - 2000)).collect();
    // Inside the last member (information.turtle) and inside the directory.
    // (The name's last occurrence is in the directory; the one before it, the local header.)
    let names: Vec<usize> = whole.windows(18).enumerate().filter(|(_, w)| *w == b"information.turtle").map(|(i, _)| i).collect();
    let turtle_at = names[names.len() - 2];
    cuts.push(turtle_at + 200);
    cuts.push(whole.len() - 30);
    let mut back = 0;
    for at in cuts {
        std::fs::write(&cut, &whole[..at]).unwrap();
        let (c, r, err) = json_of(&["recover", "--json", cut.to_str().unwrap(), "-o", fixed.to_str().unwrap(), "-t"]);
        assert_eq!(c, Some(0), "cut at {at}: {err}");
        let (vc, v, _) = json_of(&["verify", "--json", fixed.to_str().unwrap()]);
        if r["recovered_images"].as_array().unwrap().is_empty() {
            // Everything but the directory had reached the disk: nothing was lost.
            assert_eq!(r["complete_images"].as_u64(), Some(1), "cut at {at}: {r}");
            assert_eq!(vc, Some(0), "cut at {at}: {v}");
            assert!(ok(&["cat", fixed.to_str().unwrap()]).stdout == want, "cut at {at}");
            continue;
        }
        assert_eq!(vc, Some(8), "cut at {at}: {v}");
        let im = &r["recovered_images"][0];
        assert_eq!(im["size"].as_u64(), Some(phys.len() as u64), "the journal knows the size: {im}");
        let out = ok(&["cat", fixed.to_str().unwrap()]).stdout;
        let good = im["lost_from"].as_u64().unwrap_or(phys.len() as u64) as usize;
        assert_eq!(out.len(), want.len(), "cut at {at}: {r}");
        assert!(out[..good] == want[..good], "cut at {at}: {im}");
        back += im["data_bytes"].as_u64().unwrap();
        let types = String::from_utf8(ok(&["ls", fixed.to_str().unwrap()]).stdout).unwrap();
        assert!(types.contains("MemoryImage") && types.contains("recovered"), "{types}");
    }
    assert!(back > 40 << 20, "the cuts should leave data to recover ({back} bytes)");
    // A closed volume needs no recovery, and the output is never written over without -t.
    let (c, _, err) = json_of(&["recover", vol.to_str().unwrap(), "-o", d.join("x.aff4").to_str().unwrap()]);
    assert_eq!(c, Some(3), "{err}");
    assert!(err.contains("nothing to recover"), "{err}");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let (c, _, err) = json_of(&["recover", cut.to_str().unwrap(), "-o", fixed.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
    assert!(err.contains("-t"), "{err}");
}

/// RAW and ELF stored in place, cut at any byte of the member or after it: recovered with the
/// member's bytes up to the cut (the journal knows the size and the member; the unread rest is
/// unknown), the member again page-aligned; an ELF core still reads as one.
#[test]
fn a_cut_in_place_acquisition_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let phys = corpus(24 << 20, 9);
    let lime = d.join("mem.lime");
    lime_file(&lime, 0x100000, &phys[0x100000..]);
    let mut rng = Rng(11);
    for fmt in ["raw", "elf"] {
        let vol = d.join(format!("{fmt}.aff4"));
        ok(&["acquire", "-q", "--no-extras", "--format", fmt, "--source", lime.to_str().unwrap(), "-o", vol.to_str().unwrap()]);
        let whole = std::fs::read(&vol).unwrap();
        let want = ok(&["cat", vol.to_str().unwrap()]).stdout;
        let z = aff4::zip::ZipArchive::open(std::sync::Arc::new(std::fs::File::open(&vol).unwrap()), "v").unwrap();
        let e = z.entries().iter().find(|e| e.name.ends_with(&format!(".{fmt}"))).unwrap();
        let start = z.data_start(e).unwrap() as usize;
        let end = start + e.uncompressed_size as usize;
        let mut cuts: Vec<usize> = (0..6).map(|_| start + 4096 + rng.below(end - start - 8192)).collect();
        cuts.push(end + 10);
        let (cut, fixed) = (d.join("cut.aff4"), d.join("fixed.aff4"));
        for at in cuts {
            std::fs::write(&cut, &whole[..at]).unwrap();
            let (c, r, err) = json_of(&["recover", "--json", cut.to_str().unwrap(), "-o", fixed.to_str().unwrap(), "-t"]);
            assert_eq!(c, Some(0), "{fmt} cut at {at}: {err}");
            let im = &r["recovered_images"][0];
            assert_eq!(im["size"].as_u64(), Some(want.len() as u64), "{fmt} cut at {at}: {r}");
            let good = im["lost_from"].as_u64().unwrap_or(want.len() as u64) as usize;
            assert_eq!(good, (at - start).min(want.len()), "{fmt} cut at {at}: {im}");
            let out = ok(&["cat", fixed.to_str().unwrap()]).stdout;
            assert!(out[..good] == want[..good], "{fmt} cut at {at}: {im}");
            let (vc, v, _) = json_of(&["verify", "--json", fixed.to_str().unwrap()]);
            assert_eq!(vc, Some(8), "{fmt} cut at {at}: {v}");
            let z = aff4::zip::ZipArchive::open(std::sync::Arc::new(std::fs::File::open(&fixed).unwrap()), "f").unwrap();
            let e = z.entries().iter().find(|e| e.name.ends_with(&format!(".{fmt}"))).unwrap();
            assert_eq!(z.data_start(e).unwrap() % 4096, 0, "{fmt}: the rebuilt member is aligned");
            if fmt == "elf" && good == want.len() {
                let ex = d.join("ex");
                let _ = std::fs::remove_dir_all(&ex);
                ok(&["export", "-D", ex.to_str().unwrap(), "--format", "raw", fixed.to_str().unwrap()]);
                let raw =
                    std::fs::read_dir(&ex).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "raw")).unwrap();
                let mut memory = vec![0u8; 0x100000];
                memory.extend_from_slice(&phys[0x100000..]);
                assert!(std::fs::read(raw).unwrap() == memory, "a recovered ELF core reads as memory");
            }
        }
    }
}
