#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = data.to_vec();
    if let Ok(ph) = memformat::elf::program_headers(&f, "fuzz") {
        if let Ok(n) = memformat::elf::notes(&f, &ph, "fuzz") {
            let _ = memformat::elf::vmcoreinfo(&n);
        }
    }
});
