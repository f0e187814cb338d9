#![no_main]
use libfuzzer_sys::fuzz_target;

// BTF from a volume is untrusted: parsing and turning it into a symbol table must not panic or hang.
fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = memview::btf::Btf::parse(data, "fuzz") {
        for id in 0..btf.types.len().min(4096) as u32 {
            let _ = btf.size_of(id);
        }
        let _ = memview::isf::build(&memview::isf::Inputs {
            btf: data,
            kallsyms: "ffffffff81000000 T _text\nffffffff82000000 D linux_banner\nffffffff82200000 D init_task\n",
            kernel_offset: 0,
            banner: b"Linux version 6.1.0 (fuzz)\n\0",
        });
    }
});
