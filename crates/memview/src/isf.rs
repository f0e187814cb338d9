//! Volatility 3 symbol tables (ISF, "intermediate symbol format" 6.2.0) built only from what an
//! acquisition captured: types from the kernel's BTF, addresses from /proc/kallsyms (made
//! link-time again with VMCOREINFO's KERNELOFFSET, as Volatility computes the KASLR shift
//! itself), and `linux_banner` read from the image, which is how Volatility matches the table.

use crate::btf::{Btf, Kind};
use crate::error::{Error, Result};
use crate::export::MemoryView;
use aff4::stream::Stream;
use aff4::Container;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Write;

/// Where the kernel's text mapping starts (`__START_KERNEL_map`).
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Nesting limit for type descriptors (pointers to arrays of pointers ...).
const MAX_DEPTH: u32 = 32;

/// A symbol table and what it holds.
pub struct Isf {
    /// The ISF document.
    pub json: Value,
    /// Struct and union types.
    pub types: usize,
    /// Enumerations.
    pub enums: usize,
    /// Symbols with addresses.
    pub symbols: usize,
    /// The kernel banner it matches.
    pub banner: String,
}

/// The inputs, as captured.
pub struct Inputs<'a> {
    /// /sys/kernel/btf/vmlinux.
    pub btf: &'a [u8],
    /// /proc/kallsyms.
    pub kallsyms: &'a str,
    /// KASLR offset of the kernel's virtual addresses (VMCOREINFO KERNELOFFSET), 0 if none.
    pub kernel_offset: u64,
    /// `linux_banner` as found in memory, through its NUL.
    pub banner: &'a [u8],
}

struct Namer<'b> {
    btf: &'b Btf,
    /// ISF name of each struct/union/enum id.
    names: HashMap<u32, String>,
    /// Struct/union ids by name, for forward declarations.
    by_name: HashMap<(bool, String), u32>,
}

fn int_name(size: u64, signed: bool) -> &'static str {
    match (size, signed) {
        (1, true) => "signed char",
        (1, false) => "unsigned char",
        (2, true) => "short int",
        (2, false) => "short unsigned int",
        (8, true) => "long int",
        (8, false) => "long unsigned int",
        (_, true) => "int",
        (_, false) => "unsigned int",
    }
}

impl Namer<'_> {
    fn desc(&self, id: u32, depth: u32) -> Value {
        let void = json!({"kind": "base", "name": "void"});
        if depth > MAX_DEPTH {
            return void;
        }
        let id = self.btf.resolve(id);
        let Some(t) = self.btf.get(id) else { return void };
        match &t.kind {
            Kind::Int { .. } | Kind::Float { .. } => json!({"kind": "base", "name": t.name}),
            Kind::Ptr(to) => json!({"kind": "pointer", "subtype": self.desc(*to, depth + 1)}),
            Kind::Array { elem, count } => json!({"kind": "array", "count": count, "subtype": self.desc(*elem, depth + 1)}),
            Kind::Struct { union, .. } => {
                json!({"kind": if *union { "union" } else { "struct" }, "name": self.names.get(&id).cloned().unwrap_or_default()})
            }
            Kind::Enum { .. } => json!({"kind": "enum", "name": self.names.get(&id).cloned().unwrap_or_default()}),
            Kind::Fwd { union } => {
                let name = match self.by_name.get(&(*union, t.name.clone())) {
                    Some(real) => self.names.get(real).cloned().unwrap_or_default(),
                    None => t.name.clone(),
                };
                json!({"kind": if *union { "union" } else { "struct" }, "name": name})
            }
            Kind::Func(_) | Kind::FuncProto => json!({"kind": "function"}),
            _ => void,
        }
    }

    fn fields(&self, members: &[crate::btf::Member]) -> Map<String, Value> {
        let mut fields = Map::new();
        for m in members {
            let resolved = self.btf.resolve(m.ty);
            let mut ty = self.desc(m.ty, 0);
            let mut offset = u64::from(m.bit_offset / 8);
            if m.bitfield_size > 0 {
                let unit = self.btf.size_of(resolved).clamp(1, 8);
                let bits = u64::from(m.bit_offset);
                let mut start = bits / (unit * 8) * unit;
                if bits - start * 8 + u64::from(m.bitfield_size) > unit * 8 {
                    start = bits / 8;
                }
                offset = start;
                ty = json!({"kind": "bitfield", "bit_position": bits - start * 8, "bit_length": m.bitfield_size, "type": ty});
            }
            let anonymous = m.name.is_empty();
            let name = if anonymous { format!("unnamed_field_{:x}", m.bit_offset / 8) } else { m.name.clone() };
            let mut f = json!({"type": ty, "offset": offset});
            if anonymous && matches!(self.btf.get(resolved).map(|t| &t.kind), Some(Kind::Struct { .. })) {
                f["anonymous"] = json!(true);
            }
            fields.entry(name).or_insert(f);
        }
        fields
    }
}

/// Builds the symbol table.
///
/// # Errors
/// The BTF does not parse, kallsyms has no usable addresses, or the banner is not a Linux banner.
pub fn build(inp: &Inputs) -> Result<Isf> {
    let btf = Btf::parse(inp.btf, "/sys/kernel/btf/vmlinux")?;
    if !inp.banner.starts_with(b"Linux version ") {
        return Err(Error::corrupt("linux_banner", 0, "the bytes at linux_banner are not a Linux banner"));
    }
    let mut namer = Namer { btf: &btf, names: HashMap::new(), by_name: HashMap::new() };
    let mut taken: HashMap<String, u32> = HashMap::new();
    for (id, t) in btf.types.iter().enumerate() {
        let id = id as u32;
        let union = match &t.kind {
            Kind::Struct { union, .. } => Some(*union),
            Kind::Enum { .. } => None,
            _ => continue,
        };
        let name = if t.name.is_empty() {
            format!("unnamed_btf_{id}")
        } else if taken.contains_key(&t.name) {
            format!("{}__btf_{id}", t.name)
        } else {
            t.name.clone()
        };
        taken.insert(name.clone(), id);
        if let Some(u) = union {
            namer.by_name.entry((u, t.name.clone())).or_insert(id);
        }
        namer.names.insert(id, name);
    }

    let mut base_types = Map::new();
    base_types.insert("void".into(), json!({"kind": "void", "size": 0, "signed": false, "endian": "little"}));
    base_types.insert("pointer".into(), json!({"kind": "int", "size": 8, "signed": false, "endian": "little"}));
    for (size, signed) in [(1, true), (1, false), (2, true), (2, false), (4, true), (4, false), (8, true), (8, false)] {
        base_types.insert(int_name(size, signed).into(), json!({"kind": "int", "size": size, "signed": signed, "endian": "little"}));
    }
    let mut user_types = Map::new();
    let mut enums = Map::new();
    for (id, t) in btf.types.iter().enumerate() {
        let id = id as u32;
        match &t.kind {
            Kind::Int { size, signed, char, bool } => {
                let kind = if *bool {
                    "bool"
                } else if *char || (*size == 1 && t.name.contains("char")) {
                    "char"
                } else {
                    "int"
                };
                base_types.insert(t.name.clone(), json!({"kind": kind, "size": size, "signed": signed, "endian": "little"}));
            }
            Kind::Float { size } => {
                base_types.insert(t.name.clone(), json!({"kind": "float", "size": size, "signed": true, "endian": "little"}));
            }
            Kind::Struct { union, size, members } => {
                let name = namer.names.get(&id).cloned().unwrap_or_default();
                let fields = namer.fields(members);
                user_types.insert(name, json!({"kind": if *union { "union" } else { "struct" }, "size": size, "fields": fields}));
            }
            Kind::Enum { size, signed, values } => {
                let name = namer.names.get(&id).cloned().unwrap_or_default();
                let constants: Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                enums.insert(name, json!({"size": size, "base": int_name(u64::from(*size), *signed), "constants": constants}));
            }
            _ => {}
        }
    }
    // Forward declarations of types BTF never defines become empty structs, so references resolve.
    for t in &btf.types {
        if let Kind::Fwd { union } = t.kind {
            if !namer.by_name.contains_key(&(union, t.name.clone())) && !user_types.contains_key(&t.name) {
                user_types.insert(t.name.clone(), json!({"kind": if union { "union" } else { "struct" }, "size": 0, "fields": {}}));
            }
        }
    }

    // Types of variables: per-CPU ones from BTF's data sections, well-known globals by their C type.
    let mut var_types: HashMap<String, Value> = HashMap::new();
    for t in &btf.types {
        if let Kind::Datasec(vars) = &t.kind {
            for (vid, _, _) in vars {
                if let Some(v) = btf.get(*vid) {
                    if let Kind::Var(ty) = v.kind {
                        var_types.insert(v.name.clone(), namer.desc(ty, 0));
                    }
                }
            }
        }
    }
    for (sym, ty) in [
        ("init_task", "task_struct"),
        ("init_mm", "mm_struct"),
        ("init_files", "files_struct"),
        ("init_nsproxy", "nsproxy"),
        ("init_pid_ns", "pid_namespace"),
        ("init_user_ns", "user_namespace"),
        ("init_net", "net"),
        ("init_uts_ns", "uts_namespace"),
        ("init_cred", "cred"),
        ("init_fs", "fs_struct"),
        ("modules", "list_head"),
        ("tk_data", "tk_data"),
    ] {
        if let Some(id) = btf.struct_named(ty) {
            var_types.insert(sym.into(), namer.desc(id, 0));
        }
    }
    for (sym, ty) in [("page_offset_base", "long unsigned int"), ("vmemmap_base", "long unsigned int"), ("jiffies", "long unsigned int")] {
        var_types.insert(sym.into(), json!({"kind": "base", "name": ty}));
    }
    // tk_core is an anonymous `struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }`.
    if let (Some(tk), Some(seq)) = (btf.struct_named("timekeeper"), btf.types.iter().position(|t| t.name == "seqcount_raw_spinlock_t")) {
        let seq_size = btf.size_of(seq as u32);
        let tk_off = seq_size.div_ceil(8) * 8;
        user_types.insert(
            "pmem_tk_core".into(),
            json!({"kind": "struct", "size": tk_off + btf.size_of(tk), "fields": {
                "seq": {"type": namer.desc(seq as u32, 0), "offset": 0},
                "timekeeper": {"type": namer.desc(tk, 0), "offset": tk_off}}}),
        );
        var_types.insert("tk_core".into(), json!({"kind": "struct", "name": "pmem_tk_core"}));
    }

    let mut symbols = Map::new();
    let mut nonzero = false;
    for line in inp.kallsyms.lines() {
        let mut it = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (it.next(), it.next(), it.next()) else { continue };
        if it.next().is_some() {
            continue; // "[module]": module symbols belong to other tables
        }
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        nonzero |= addr != 0;
        if symbols.contains_key(name) {
            continue;
        }
        let addr = if addr >= START_KERNEL_MAP + inp.kernel_offset { addr - inp.kernel_offset } else { addr };
        let mut s = json!({"address": addr});
        if let Some(t) = var_types.get(name) {
            s["type"] = t.clone();
        }
        symbols.insert(name.to_string(), s);
    }
    if !nonzero {
        return Err(Error::corrupt("/proc/kallsyms", 0, "no symbol addresses (captured without root, or with kptr_restrict=2)"));
    }
    let Some(banner_sym) = symbols.get_mut("linux_banner") else {
        return Err(Error::corrupt("/proc/kallsyms", 0, "no linux_banner symbol"));
    };
    banner_sym["type"] = json!({"kind": "array", "count": inp.banner.len(), "subtype": {"kind": "base", "name": "char"}});
    banner_sym["constant_data"] = json!(base64(inp.banner));
    if !base_types.contains_key("char") {
        base_types.insert("char".into(), json!({"kind": "char", "size": 1, "signed": true, "endian": "little"}));
    }
    let (ntypes, nenums, nsyms) = (user_types.len(), enums.len(), symbols.len());
    let doc = json!({
        "metadata": {
            "format": "6.2.0",
            "producer": {"name": "pmem", "version": env!("CARGO_PKG_VERSION"), "datetime": aff4::rdf::now()},
            "linux": {"symbols": [{"kind": "system-map", "name": "/proc/kallsyms", "hash_type": "sha256",
                "hash_value": aff4::hash::hex(&sha256(inp.kallsyms.as_bytes()))}]},
        },
        "base_types": base_types,
        "user_types": user_types,
        "enums": enums,
        "symbols": symbols,
    });
    Ok(Isf {
        json: doc,
        types: ntypes,
        enums: nenums,
        symbols: nsyms,
        banner: String::from_utf8_lossy(inp.banner).trim_end_matches('\0').to_string(),
    })
}

fn sha256(b: &[u8]) -> Vec<u8> {
    let mut h = aff4::hash::HashAlgo::Sha256.hasher();
    h.update(b);
    h.finish()
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            s.push(if i <= c.len() { A[(n >> shift) as usize & 63] as char } else { '=' });
        }
    }
    s
}

/// Finds a logical file captured under `name` (e.g. "/proc/kallsyms") and reads it (at most `max` bytes).
fn captured(c: &Container, name: &str, max: u64) -> Result<Vec<u8>> {
    let i = c
        .images()
        .into_iter()
        .find(|i| i.name.as_deref() == Some(name))
        .ok_or_else(|| Error::corrupt(name, 0, "not captured in this volume (acquire without --no-extras, as root)"))?;
    Ok(c.open_stream(&i.urn)?.read_all(max)?)
}

fn vmcoreinfo_value(v: &str, key: &str) -> Option<u64> {
    let val = v.lines().find_map(|l| l.strip_prefix(key))?.trim();
    if key.starts_with("NUMBER(") {
        val.parse::<i64>().ok().map(|x| x as u64)
    } else {
        u64::from_str_radix(val, 16).ok()
    }
}

/// Builds the symbol table of the memory image in `c` from its captured BTF and kallsyms.
///
/// # Errors
/// Something needed was not captured, or does not parse.
pub fn from_container(c: &Container, image: &str) -> Result<Isf> {
    let view = MemoryView::open(c, image)?;
    arch_supported(&view)?;
    let btf = captured(c, "/sys/kernel/btf/vmlinux", 256 << 20)?;
    let kallsyms = captured(c, "/proc/kallsyms", 256 << 20)?;
    from_view(&view, &btf, &String::from_utf8_lossy(&kallsyms))
}

/// The banner check walks x86-64's kernel mapping (__START_KERNEL_map, phys_base).
fn arch_supported(view: &MemoryView) -> Result<()> {
    if view.machine != memformat::elf::EM_X86_64 {
        let arch = memformat::elf::arch_name(view.machine).unwrap_or("unknown");
        return Err(Error::Unsupported(format!("symbol tables are built for x86-64 kernels only; this memory image is {arch}")));
    }
    Ok(())
}

/// Builds the symbol table of the memory in `view` from its kernel's BTF and kallsyms (as
/// captured, or read live from /sys/kernel/btf/vmlinux and /proc/kallsyms).
///
/// # Errors
/// Not x86-64, or the inputs do not parse, or the banner is not where kallsyms says.
pub fn from_view(view: &MemoryView, btf: &[u8], kallsyms: &str) -> Result<Isf> {
    arch_supported(view)?;
    let vmci = view.vmcoreinfo.clone().unwrap_or_default();
    let kernel_offset = vmcoreinfo_value(&vmci, "KERNELOFFSET=").unwrap_or(0);
    let phys_base = vmcoreinfo_value(&vmci, "NUMBER(phys_base)=").unwrap_or(0);
    let banner_va = kallsyms
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let (a, _, n) = (it.next()?, it.next()?, it.next()?);
            (n == "linux_banner" && it.next().is_none()).then(|| u64::from_str_radix(a, 16).ok()).flatten()
        })
        .ok_or_else(|| Error::corrupt("/proc/kallsyms", 0, "no linux_banner symbol"))?;
    let phys =
        banner_va.checked_sub(START_KERNEL_MAP).map(|p| p.wrapping_add(phys_base)).filter(|&p| p < view.size()).ok_or_else(|| {
            Error::corrupt(
                "/proc/kallsyms",
                0,
                format!("linux_banner at {banner_va:#x} is not in the kernel mapping or outside memory (phys_base {phys_base:#x})"),
            )
        })?;
    let mut buf = vec![0u8; 1024];
    let n = view.read_at(phys, &mut buf)?;
    buf.truncate(n);
    let end = buf.iter().position(|&b| b == 0).map(|p| p + 1).unwrap_or(buf.len());
    buf.truncate(end);
    build(&Inputs { btf, kallsyms, kernel_offset, banner: &buf })
}

/// Writes the table as JSON, xz-compressed if `xz`.
///
/// # Errors
/// Write errors.
pub fn write(isf: &Isf, out: impl Write, xz: bool) -> Result<()> {
    let io = |e: std::io::Error| Error::io("symbol table", e);
    if xz {
        let mut enc = lzma_rust2::XzWriter::new(std::io::BufWriter::new(out), lzma_rust2::XzOptions::with_preset(6)).map_err(io)?;
        let mut buffered = std::io::BufWriter::new(&mut enc);
        serde_json::to_writer(&mut buffered, &isf.json).map_err(|e| io(e.into()))?;
        buffered.flush().map_err(io)?;
        drop(buffered);
        enc.finish().map_err(io)?.flush().map_err(io)?;
    } else {
        let mut w = std::io::BufWriter::new(out);
        serde_json::to_writer(&mut w, &isf.json).map_err(|e| io(e.into()))?;
        w.flush().map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::tests::blob;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn table_from_btf_and_kallsyms() {
        // [1] int, [2] struct task_struct { int pid; int flags:3 (bit 35); }, [3] char
        let strings = b"\0int\0task_struct\0pid\0flags\0char\0";
        let types = [
            1,
            1 << 24,
            4,
            (1 << 24) | 32, //
            5,
            (4 << 24) | (1 << 31) | 2,
            8,
            17,
            1,
            0,
            21,
            1,
            (3 << 24) | 35, //
            27,
            1 << 24,
            1,
            (2 << 24) | 8,
        ];
        let b = blob(&types, strings);
        let kallsyms = "ffffffff9a000000 T _text\nffffffff9b200000 D init_task\nffffffff9b000000 D linux_banner\n0000000000012000 A fixed\nffffffffc0000000 t x [mod]\n";
        let isf = build(&Inputs { btf: &b, kallsyms, kernel_offset: 0x1a00_0000, banner: b"Linux version 6.1.0 (x)\n\0" }).unwrap();
        let j = &isf.json;
        assert_eq!(j["symbols"]["_text"]["address"], json!(0xffff_ffff_8000_0000u64));
        assert_eq!(j["symbols"]["fixed"]["address"], json!(0x12000));
        assert!(j["symbols"].get("x").is_none());
        assert_eq!(j["symbols"]["init_task"]["type"], json!({"kind": "struct", "name": "task_struct"}));
        let f = &j["user_types"]["task_struct"]["fields"]["flags"];
        assert_eq!(f["offset"], json!(4));
        assert_eq!(f["type"]["bit_position"], json!(3));
        assert_eq!(j["base_types"]["char"]["kind"], json!("char"));
        assert_eq!(j["symbols"]["linux_banner"]["constant_data"], json!(base64(b"Linux version 6.1.0 (x)\n\0")));
        let mut out = Vec::new();
        write(&isf, &mut out, true).unwrap();
        assert_eq!(&out[..6], b"\xfd7zXZ\0");
        assert!(build(&Inputs { btf: &b, kallsyms: "0000000000000000 T _text\n", kernel_offset: 0, banner: b"Linux version 6.1.0\n\0" })
            .is_err());
        assert!(build(&Inputs { btf: &b, kallsyms, kernel_offset: 0, banner: b"garbage" }).is_err());
    }
}
