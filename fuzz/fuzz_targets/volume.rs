#![no_main]
//! A whole volume from bytes: ZIP, Turtle, bevy indexes, chunk decoding, maps, symbolic
//! streams and verification, with reads bounded so that huge virtual sizes stay cheap.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = aff4::volume::Volume::open_zip(Arc::new(data.to_vec()), "fuzz".into()) else { return };
    let Ok(c) = aff4::Container::from_volumes(vec![v], &aff4::OpenOptions { password: Some("x".into()) }) else { return };
    let _ = c.images();
    for s in c.streams() {
        if let Ok(st) = c.open_stream(&s.urn) {
            let size = st.size();
            let mut buf = vec![0u8; 65536];
            for off in [0, size / 2, size.saturating_sub(100)] {
                let _ = st.read_at(off, &mut buf);
            }
        }
    }
    let _ = c.default_stream();
});
