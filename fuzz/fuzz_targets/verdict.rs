#![no_main]
//! verify's verdict on any bytes: it never panics, and when it says complete and intact
//! (exit 0), every image reads back whole without an error (bounded to small images).
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = aff4::volume::Volume::open_zip(Arc::new(data.to_vec()), "fuzz".into()) else { return };
    let Ok(c) = aff4::Container::from_volumes(vec![v], &aff4::OpenOptions::default()) else { return };
    for i in c.images() {
        let _ = aff4::evidence::image_state(&c, &i.urn).findings();
    }
    let report = aff4::verify::verify(&c, &aff4::verify::VerifyOptions { threads: 1 }, &|_| {});
    if report.verdict().is_none() {
        for i in c.images() {
            let s = c.open_stream(&i.urn).expect("verify OK: the image opens");
            if s.size() <= 64 << 20 {
                s.read_all(64 << 20).expect("verify OK: the image reads whole");
            }
        }
    }
});
