#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = data.to_vec();
    if let Ok(ph) = memacq::elf::program_headers(&f, "fuzz") {
        if let Ok(n) = memacq::elf::notes(&f, &ph, "fuzz") {
            let _ = memacq::elf::vmcoreinfo(&n);
        }
    }
});
