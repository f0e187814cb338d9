#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = memacq::iomem::system_ram(s) {
            for w in r.windows(2) {
                assert!(w[0].end < w[1].start, "ranges must be sorted and disjoint");
            }
        }
    }
});
