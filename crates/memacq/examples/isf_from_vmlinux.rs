//! Builds pmem's symbol table for a kernel from its files instead of a capture, so that it can be
//! compared with a DWARF-derived one (tests/rig/matrix.sh): the memory is the vmlinux ELF itself
//! (its PT_LOADs at their link-time physical addresses), the BTF its `.BTF` section (extracted
//! with objcopy) and the symbols its System.map, all at link-time addresses (no KASLR).
//!
//! cargo run --release -p memacq --example isf_from_vmlinux -- VMLINUX BTF SYSTEM_MAP OUT.json

use std::path::Path;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vmlinux, btf, map, out] = args.as_slice() else {
        return Err("usage: isf_from_vmlinux VMLINUX BTF SYSTEM_MAP OUT.json".into());
    };
    let src: Arc<dyn memacq::source::PhysicalSource> = Arc::from(memacq::source::open_file(Path::new(vmlinux))?);
    let machine = src.architecture().and_then(memformat::elf::machine_of).unwrap_or(memformat::elf::EM_X86_64);
    let stream: Arc<dyn aff4::Stream> = Arc::new(memacq::live::LiveMemory::new(src.clone()));
    let view = memview::export::MemoryView::of_physical(stream, src.ranges(), src.vmcoreinfo(), machine);
    let isf = memview::isf::from_view(&view, &std::fs::read(btf)?, &std::fs::read_to_string(map)?)?;
    memview::isf::write(&isf, std::fs::File::create(out)?, false)?;
    eprintln!(
        "{out}: {} types, {} enums, {} symbols ({} globals typed by declaration, untyped: {:?}); {}",
        isf.types(),
        isf.enums(),
        isf.symbols(),
        isf.typed_globals,
        isf.untyped_globals,
        isf.banner.trim_end()
    );
    Ok(())
}
