#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    if let Ok(z) = aff4::zip::ZipArchive::open(Arc::new(data.to_vec()), "fuzz") {
        for e in z.entries() {
            let _ = z.data_start(e);
        }
    }
});
