#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = memformat::lime::parse(&data.to_vec(), "fuzz");
});
