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
    // An arm64 kernel image is read at its virtual address less kimage_voffset, which a
    // running kernel's VMCOREINFO gives; for the file it is its first PT_LOAD's vaddr - paddr.
    let mut vmcoreinfo = src.vmcoreinfo();
    if memformat::elf::arch_name(machine) == Some("aarch64") {
        let f = std::fs::File::open(vmlinux)?;
        let phdrs = memformat::elf::program_headers(&f, vmlinux)?;
        let load = phdrs.iter().find(|p| p.p_type == memformat::elf::PT_LOAD).ok_or("no PT_LOAD")?;
        vmcoreinfo = Some(format!("NUMBER(kimage_voffset)={:#x}\n", load.vaddr.wrapping_sub(load.paddr)));
    }
    let view = memview::export::MemoryView::of_physical(stream, src.ranges(), vmcoreinfo, machine);
    let isf = memview::isf::from_view(&view, &std::fs::read(btf)?, &std::fs::read_to_string(map)?, None)?;
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
