#![no_main]
use aff4::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for c in Codec::ALL {
        for cs in [512usize, 32768] {
            if let Ok(out) = c.decode(data, cs, cs) {
                assert!(out.len() <= cs, "{c:?} decoded beyond the chunk size");
            }
        }
    }
});
