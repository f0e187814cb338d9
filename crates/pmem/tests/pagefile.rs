//! `pmem acquire -p`: pagefiles read out of an NTFS volume image and swap files read directly
//! land beside the memory as images of category memory:pagefile, numbered in order, with the
//! bytes and hashes of the originals; the volume verifies (pmem and the independent verifier);
//! a pagefile that cannot be read is named, costs the memory nothing, and sets the exit code.

#![allow(clippy::unwrap_used)]

mod util;
use std::process::Command;
use util::*;

#[test]
fn acquire_captures_pagefiles_from_ntfs_and_swap_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let page = corpus(3 << 20, 11);
    let Some(img) = ntfs_volume(d, &page) else { return };
    let swap = corpus(1 << 20, 12);
    std::fs::write(d.join("swapfile"), &swap).unwrap();
    let mem = corpus(2 << 20, 13);
    lime_file(&d.join("mem.lime"), 0x100000, &mem);
    let out = d.join("m.aff4");
    let ntfs_spec = format!(r"\pagefile.sys@{}", img.display());
    let o = ok(&[
        "acquire",
        "--hash",
        "sha256",
        "--source",
        d.join("mem.lime").to_str().unwrap(),
        "-p",
        &ntfs_spec,
        "--pagefile",
        d.join("swapfile").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pf = j["pagefiles"].as_array().unwrap();
    assert_eq!(pf.len(), 2, "{j}");
    assert_eq!((pf[0]["method"].as_str(), pf[0]["size"].as_u64()), (Some("ntfs"), Some(page.len() as u64)));
    assert_eq!(pf[0]["hashes"]["sha256"].as_str(), Some(sha256_bytes(&page).as_str()));
    assert!(pf.iter().all(|p| p["acquisition_hash"]["value"].as_str().is_some_and(|h| h.len() == 128)), "{j}");
    assert_eq!((pf[1]["method"].as_str(), pf[1]["name"].as_str()), (Some("direct"), d.join("swapfile").to_str()));
    assert_eq!(pf[1]["hashes"]["sha256"].as_str(), Some(sha256_bytes(&swap).as_str()));

    // The bytes come back, and the metadata says what they are.
    for (p, want) in pf.iter().zip([&page, &swap]) {
        let got = ok(&["cat", "--stream", p["image"].as_str().unwrap(), out.to_str().unwrap()]).stdout;
        assert!(&got == want, "{} differs", p["name"]);
    }
    // `cat --stream` also takes the recorded name, its case or its last component.
    assert!(ok(&["cat", "--stream", d.join("swapfile").to_str().unwrap(), out.to_str().unwrap()]).stdout == swap);
    assert!(ok(&["cat", "--stream", "SwapFile", out.to_str().unwrap()]).stdout == swap);
    assert!(ok(&["cat", "--stream", &ntfs_spec.to_uppercase(), out.to_str().unwrap()]).stdout == page);
    let o = run(&["cat", "--stream", "hiberfil.sys", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("hiberfil.sys: no stream or image") && err.contains("swapfile"), "{err}");
    let ttl = String::from_utf8(ok(&["view", out.to_str().unwrap()]).stdout).unwrap();
    for want in ["memory:pagefile", "memory:pagefile_number \"0\"", "memory:pagefile_number \"1\"", r#"aff4:pagefileReadMethod "ntfs""#] {
        assert!(ttl.contains(want), "{want} missing:\n{ttl}");
    }
    assert!(ttl.contains(&format!(r#"aff4:originalFileName "\\pagefile.sys@{}""#, img.display())), "{ttl}");
    ok(&["verify", out.to_str().unwrap()]);
    if let Some(py) = python() {
        let o = Command::new(&py).arg(shared().join("tools/aff4verify.py")).arg(&out).output().unwrap();
        assert!(o.status.success(), "aff4verify: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }

    // A pagefile that is not there: the memory is still acquired and verifies; exit code 3.
    let out2 = d.join("m2.aff4");
    let o = run(&[
        "acquire",
        "--source",
        d.join("mem.lime").to_str().unwrap(),
        "-p",
        &format!(r"\nope.sys@{}", img.display()),
        "-o",
        out2.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(r"pagefile \nope.sys@") && err.contains("NOT captured") && err.contains("no such file"), "{err}");
    ok(&["verify", out2.to_str().unwrap()]);
    let ttl = String::from_utf8(ok(&["view", out2.to_str().unwrap()]).stdout).unwrap();
    assert!(ttl.contains("aff4:pagefilesMissing"), "{ttl}");
    let raw = ok(&["cat", out2.to_str().unwrap()]).stdout;
    assert!(raw.len() == 0x100000 + mem.len() && raw[0x100000..] == mem[..], "the memory image differs");
}
