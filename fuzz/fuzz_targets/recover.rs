#![no_main]
//! `pmem recover` on any bytes: it never panics, what it writes always opens as a volume, and
//! verify never calls a rebuilt image complete when bytes of it were lost.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = aff4::recover::recover_from(Arc::new(data.to_vec()), "fuzz".into()) else { return };
    let (out, _) = r.write_into(Vec::new(), "fixed").expect("writing into memory cannot fail");
    let v = aff4::volume::Volume::open_zip(Arc::new(out), "fixed".into()).expect("a recovered volume opens");
    let Ok(c) = aff4::Container::from_volumes(vec![v], &aff4::OpenOptions::default()) else { return };
    let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 1 }, &|_| {});
    if !r.report.images.is_empty() {
        assert!(report.verdict().is_some(), "a rebuilt image is never complete and intact");
    }
});
