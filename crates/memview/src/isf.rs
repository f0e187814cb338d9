//! Volatility 3 symbol tables (ISF, "intermediate symbol format" 6.2.0) built only from what an
//! acquisition captured: types from the kernel's BTF, addresses from /proc/kallsyms (made
//! link-time again with the KASLR offset, as Volatility computes the shift itself), and
//! `linux_banner` read from the image, which is how Volatility matches the table.
//!
//! Where kallsyms lists functions only (CONFIG_KALLSYMS_ALL off, as in Debian's arm64 kernels),
//! the data symbols come from the kernel's /boot/System.map, which lists every symbol at its
//! link-time address. It is used only when it is the running build's: its `_stext` and `_etext`
//! must both lie exactly the KASLR offset below kallsyms' (and that difference is the offset).

use crate::btf::{Btf, Kind};
use crate::error::{Error, Result};
use crate::export::MemoryView;
use aff4::stream::Stream;
use aff4::Container;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

/// Where the kernel's text mapping starts on x86-64 (`__START_KERNEL_map`).
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// ELF `e_machine` of arm64 kernels.
const EM_AARCH64: u16 = 183;
/// The dwarf2json release whose table layout this one follows.
const DWARF2JSON_LAYOUT: &str = "0.9.0";
/// Nesting limit for type descriptors (pointers to arrays of pointers ...).
const MAX_DEPTH: u32 = 32;

/// An ISF type descriptor: the type of a field, a symbol or a pointer's target, naming
/// aggregates, enums and base types by their table names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Desc {
    /// A base type (`int`, `char`, `void`...).
    Base {
        /// Its name in `base_types`.
        name: String,
    },
    /// A struct of `user_types`.
    Struct {
        /// Its name in `user_types`.
        name: String,
    },
    /// A union of `user_types`.
    Union {
        /// Its name in `user_types`.
        name: String,
    },
    /// An enumeration of `enums`.
    Enum {
        /// Its name in `enums`.
        name: String,
    },
    /// A pointer.
    Pointer {
        /// What it points to.
        subtype: Box<Desc>,
    },
    /// An array.
    Array {
        /// Elements.
        count: u64,
        /// Element type.
        subtype: Box<Desc>,
    },
    /// Bits of an integer.
    Bitfield {
        /// First bit, in the byte at the field's offset.
        bit_position: u32,
        /// Width in bits.
        bit_length: u32,
        /// The integer type.
        #[serde(rename = "type")]
        ty: Box<Desc>,
    },
    /// A function.
    Function,
}

impl Desc {
    fn void() -> Desc {
        Desc::Base { name: "void".into() }
    }

    fn aggregate(union: bool, name: String) -> Desc {
        if union {
            Desc::Union { name }
        } else {
            Desc::Struct { name }
        }
    }
}

/// A member of a struct or union.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Desc,
    /// Bytes from the start of the aggregate.
    pub offset: u64,
    /// Unnamed in C (its table name is `unnamed_field_N`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

/// A struct or union.
#[derive(Debug, Clone, Serialize)]
pub struct UserType {
    /// "struct" or "union".
    pub kind: &'static str,
    /// Bytes.
    pub size: u64,
    /// Members by name.
    pub fields: BTreeMap<String, Field>,
}

/// A base type.
#[derive(Debug, Clone, Serialize)]
pub struct BaseType {
    /// "int", "char", "bool", "float" or "void".
    pub kind: &'static str,
    /// Bytes.
    pub size: u64,
    /// Signed.
    pub signed: bool,
    /// Always "little" (x86-64).
    pub endian: &'static str,
}

/// An enumeration.
#[derive(Debug, Clone, Serialize)]
pub struct EnumType {
    /// Bytes.
    pub size: u32,
    /// The base type of that size and signedness.
    pub base: &'static str,
    /// Value of each constant.
    pub constants: BTreeMap<String, i64>,
}

/// A symbol.
#[derive(Debug, Clone, Serialize)]
pub struct Symbol {
    /// Link-time virtual address.
    pub address: u64,
    /// Its type, when known.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<Desc>,
    /// Its bytes, base64 (the banner, which is how Volatility matches a table to an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constant_data: Option<String>,
}

/// The ISF document, typed rather than a JSON tree: a kernel's table is some 100,000 small
/// objects, which as `serde_json::Value`s took 440 MB and killed `pmem mount --live` in a
/// 512 MB machine.
#[derive(Debug, Serialize)]
pub struct Table {
    /// Format, producer and the symbol source's hash.
    pub metadata: Value,
    /// Base types by name.
    pub base_types: BTreeMap<String, BaseType>,
    /// Structs and unions by name.
    pub user_types: BTreeMap<String, UserType>,
    /// Enumerations by name.
    pub enums: BTreeMap<String, EnumType>,
    /// Symbols by name.
    pub symbols: BTreeMap<String, Symbol>,
}

/// A symbol table and what it holds.
pub struct Isf {
    /// The ISF document.
    pub table: Table,
    /// Globals typed from the table of declarations ([`crate::globals`]).
    pub typed_globals: usize,
    /// Globals of that table in this kernel whose declaration does not fit it (a type its BTF
    /// lacks, or more bytes than kallsyms leaves the symbol): left untyped.
    pub untyped_globals: Vec<String>,
    /// The kernel banner it matches.
    pub banner: String,
    /// Symbols also came from a System.map (one of the running build's was given or captured).
    pub from_system_map: bool,
}

impl Isf {
    /// Struct and union types.
    pub fn types(&self) -> usize {
        self.table.user_types.len()
    }

    /// Enumerations.
    pub fn enums(&self) -> usize {
        self.table.enums.len()
    }

    /// Symbols with addresses.
    pub fn symbols(&self) -> usize {
        self.table.symbols.len()
    }
}

/// The inputs, as captured.
pub struct Inputs<'a> {
    /// /sys/kernel/btf/vmlinux.
    pub btf: &'a [u8],
    /// /proc/kallsyms.
    pub kallsyms: &'a str,
    /// /boot/System.map of the same build (link-time addresses): symbols kallsyms lacks.
    pub system_map: Option<&'a str>,
    /// KASLR offset of the kernel's virtual addresses, 0 if none.
    pub kernel_offset: u64,
    /// Where the (relocated) kernel image starts: kallsyms addresses from here on are moved
    /// back by `kernel_offset`; those below (x86-64's per-CPU offsets) are kept.
    pub kernel_start: u64,
    /// `linux_banner` as found in memory, through its NUL.
    pub banner: &'a [u8],
}

struct Namer<'b> {
    btf: &'b Btf,
    /// ISF name of each struct/union/enum id, and of each typedef of a struct or union, which
    /// a DWARF-derived table names by the typedef (`spinlock_t`, `kuid_t`, `Elf64_Ehdr`).
    names: HashMap<u32, String>,
    /// Struct/union ids by name, for forward declarations.
    by_name: HashMap<(bool, String), u32>,
    /// Definitions named like another of the same layout (see [`Namer::define`]).
    aliases: HashSet<u32>,
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

/// Whether `t` is a typedef that names a struct or union directly (and which).
fn typedef_of_struct(btf: &Btf, t: &crate::btf::Type) -> Option<bool> {
    match &t.kind {
        Kind::Typedef(to) if !t.name.is_empty() => match btf.get(*to).map(|t| &t.kind) {
            Some(Kind::Struct { union, .. }) => Some(*union),
            _ => None,
        },
        _ => None,
    }
}

fn aggregate(union: bool) -> &'static str {
    if union {
        "union"
    } else {
        "struct"
    }
}

/// How many functions after a type locate the compilation unit that defined it, where its own
/// functions cannot.
const PLACE_FUNCS: usize = 5;
/// Records of a file's run of functions looked at, at most.
const OWN_RECORDS: usize = 256;

/// The kernel's sections of code whose functions lie in link order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Section {
    /// `_stext` to `_etext`.
    Text = 0,
    /// `_sinittext` to `_einittext`.
    Init = 1,
}

/// The layout of a struct, union or enum, as far as a symbol table shows it: two definitions of
/// one name with the same layout are one table type.
#[derive(PartialEq)]
enum Shape<'b> {
    Aggregate { union: bool, size: u32, members: Vec<(&'b str, u32, u32, u64)> },
    Enum { size: u32, values: &'b [(String, i64)] },
}

impl Namer<'_> {
    /// Names every struct, union, enum and typedef of a struct. Where BTF has several types of
    /// one name (the kernel reuses names in different files), the one a DWARF-derived table
    /// would hold takes the plain name, and so do those of the same layout; the others are
    /// `NAME__btf_ID`.
    ///
    /// dwarf2json keeps the last definition in DWARF order, which is link order; BTF does not
    /// record which file a type came from, so where it stands is estimated:
    /// - where BTF lists its functions by name (pahole 1.25 and later, as Debian 13's 6.12), its
    ///   types come in link order: the most used definition wins (a header's type is used in
    ///   the last files too), then the later one;
    /// - otherwise (pahole 1.24, as Debian 12's 6.1, encodes files in parallel, so type order
    ///   is not link order, but each file's functions follow its types) a definition stands
    ///   where its own file's functions lie (`text`, kallsyms' function addresses): the first
    ///   functions of the run of function records after it, compared in the main text where
    ///   every definition's file has some there, else in the init text (a file of `__init`
    ///   functions only), else by the next functions in the main text, whichever file they
    ///   belong to.
    ///
    /// Measured against dwarf2json on the four kernels of tests/rig/MATRIX.md, for the reused
    /// names whose definitions differ: 50 of 51 choices agree (the most-used rule alone: 34).
    /// The other is arm64's `tlb_inv_context`, defined by KVM's hypervisor code and its
    /// non-hypervisor twin, whose functions have the same names (see [`text_addresses`]).
    fn new<'b>(btf: &'b Btf, text: &HashMap<&str, (Section, u64)>) -> Namer<'b> {
        let mut cands: Vec<(u32, bool, &str)> = Vec::new();
        for (id, t) in btf.types.iter().enumerate() {
            match &t.kind {
                Kind::Struct { .. } => cands.push((id as u32, false, &t.name)),
                Kind::Enum { .. } => cands.push((id as u32, true, &t.name)),
                _ if typedef_of_struct(btf, t).is_some() => cands.push((id as u32, false, &t.name)),
                _ => {}
            }
        }
        // How many members and variables use each type, through pointers, arrays, typedefs and
        // qualifiers.
        let mut refs: HashMap<u32, u64> = HashMap::new();
        for t in &btf.types {
            let mut add = |id: u32| *refs.entry(btf.innermost(id)).or_default() += 1;
            match &t.kind {
                Kind::Struct { members, .. } => members.iter().for_each(|m| add(m.ty)),
                Kind::Var(to) => add(*to),
                _ => {}
            }
        }
        let funcs: Vec<(u32, &str)> = btf
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.kind, Kind::Func(_)))
            .map(|(id, t)| (id as u32, t.name.as_str()))
            .collect();
        let by_name = funcs.windows(2).filter(|w| w[0].1 <= w[1].1).count() * 10 >= funcs.len().saturating_sub(1) * 9;
        // A function is placed only where its name is one function in BTF too (a static
        // function of a file included twice, as binfmt_elf.c by compat_binfmt_elf.c, has two
        // records and one symbol where the other copy was inlined).
        let mut records: HashMap<&str, u32> = HashMap::new();
        funcs.iter().for_each(|&(_, n)| *records.entry(n).or_default() += 1);
        let placed: HashMap<u32, (Section, u64)> =
            funcs.iter().filter(|&&(_, n)| records.get(n) == Some(&1)).filter_map(|&(id, n)| Some((id, *text.get(n)?))).collect();
        let in_text: Vec<(u32, u64)> = {
            let mut v: Vec<(u32, u64)> = placed.iter().filter(|(_, p)| p.0 == Section::Text).map(|(&id, p)| (id, p.1)).collect();
            v.sort_unstable();
            v
        };
        let median = |mut v: Vec<u64>| -> Option<u64> {
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        };
        // Where the functions after a type lie in the main text, whichever file they belong to.
        let place = |id: u32| -> u64 {
            let at = in_text.partition_point(|&(f, _)| f < id);
            median(in_text.iter().skip(at).take(PLACE_FUNCS).map(|&(_, a)| a).collect()).unwrap_or(0)
        };
        // The placed functions of a type's own file, by section: the first of the run of
        // function records that follows it (a file's functions follow its types; the run can
        // go on into the next files' functions where those brought no new types).
        let own = |id: u32| -> [Vec<u64>; 2] {
            let mut by_section = [Vec::new(), Vec::new()];
            let start = funcs.partition_point(|&(f, _)| f <= id);
            let Some(&(first, _)) = funcs.get(start) else { return by_section };
            let run = btf.types.iter().skip(first as usize).take(OWN_RECORDS);
            for (f, t) in (first..).zip(run) {
                match t.kind {
                    Kind::Func(_) => {
                        if let Some(&(sec, a)) = placed.get(&f) {
                            if by_section[sec as usize].len() < PLACE_FUNCS {
                                by_section[sec as usize].push(a);
                            }
                        }
                    }
                    Kind::FuncProto | Kind::DeclTag => {}
                    _ => break,
                }
            }
            by_section
        };
        let in_link_order = by_name || placed.is_empty();
        let mut defs: HashMap<(bool, &str), Vec<u32>> = HashMap::new();
        for &(id, e, n) in cands.iter().filter(|c| !c.2.is_empty()) {
            defs.entry((e, n)).or_default().push(id);
        }
        let mut owner: HashMap<(bool, &str), u32> = HashMap::new();
        for (key, ids) in defs {
            let rank: Vec<(u64, u32)> = if in_link_order {
                ids.iter().map(|&id| (refs.get(&id).copied().unwrap_or(0), id)).collect()
            } else if ids.len() == 1 {
                vec![(0, ids[0])]
            } else {
                // Compared where every definition's own file has functions (link order holds
                // in the main text and in the init text alike); else by the functions after.
                let owns: Vec<[Vec<u64>; 2]> = ids.iter().map(|&id| own(id)).collect();
                match [Section::Text, Section::Init].into_iter().find(|&s| owns.iter().all(|o| !o[s as usize].is_empty())) {
                    Some(s) => {
                        ids.iter().zip(owns).map(|(&id, mut o)| (median(std::mem::take(&mut o[s as usize])).unwrap_or(0), id)).collect()
                    }
                    None => ids.iter().map(|&id| (place(id), id)).collect(),
                }
            };
            if let Some(&(_, id)) = rank.iter().max() {
                owner.insert(key, id);
            }
        }
        let mut namer = Namer { btf, names: HashMap::new(), by_name: HashMap::new(), aliases: HashSet::new() };
        for &(id, is_enum, name) in &cands {
            let owner = owner.get(&(is_enum, name)).copied();
            let isf_name = if name.is_empty() {
                format!("unnamed_btf_{id}")
            } else if owner == Some(id) {
                name.to_string()
            } else if owner.is_some_and(|o| namer.shape(id).is_some_and(|s| namer.shape(o) == Some(s))) {
                namer.aliases.insert(id);
                name.to_string()
            } else {
                format!("{name}__btf_{id}")
            };
            if let Some(Kind::Struct { union, .. }) = btf.get(id).map(|t| &t.kind) {
                let key = (*union, name.to_string());
                if isf_name == name || !namer.by_name.contains_key(&key) {
                    namer.by_name.insert(key, id);
                }
            }
            namer.names.insert(id, isf_name);
        }
        namer
    }

    /// The layout of a struct, union, enum or typedef of a struct (members by name, position
    /// and size).
    fn shape(&self, id: u32) -> Option<Shape<'_>> {
        let id = match self.btf.get(id).map(|t| &t.kind) {
            Some(Kind::Typedef(to)) => *to,
            _ => id,
        };
        match self.btf.get(id).map(|t| &t.kind) {
            Some(Kind::Struct { union, size, members }) => Some(Shape::Aggregate {
                union: *union,
                size: *size,
                members: members.iter().map(|m| (m.name.as_str(), m.bit_offset, m.bitfield_size, self.btf.size_of(m.ty))).collect(),
            }),
            Some(Kind::Enum { size, values, .. }) => Some(Shape::Enum { size: *size, values }),
            _ => None,
        }
    }

    /// Enters the table entry of type `id`: a definition that shares its name with another of
    /// the same layout (the chosen one) only where that one has not given it.
    fn define<T>(&self, table: &mut BTreeMap<String, T>, id: u32, name: String, entry: T) {
        if self.aliases.contains(&id) {
            table.entry(name).or_insert(entry);
        } else {
            table.insert(name, entry);
        }
    }

    fn desc(&self, mut id: u32, depth: u32) -> Desc {
        if depth > MAX_DEPTH {
            return Desc::void();
        }
        // Qualifiers are dropped; a typedef of a struct keeps its own name; other typedefs are followed.
        for _ in 0..64 {
            match self.btf.get(id).map(|t| (t, &t.kind)) {
                Some((_, Kind::Alias(next))) => id = *next,
                Some((t, Kind::Typedef(next))) => {
                    if let (Some(union), Some(name)) = (typedef_of_struct(self.btf, t), self.names.get(&id)) {
                        return Desc::aggregate(union, name.clone());
                    }
                    id = *next;
                }
                _ => break,
            }
        }
        let Some(t) = self.btf.get(id) else { return Desc::void() };
        let name = || self.names.get(&id).cloned().unwrap_or_default();
        match &t.kind {
            Kind::Int { .. } | Kind::Float { .. } => Desc::Base { name: t.name.clone() },
            Kind::Ptr(to) => Desc::Pointer { subtype: Box::new(self.desc(*to, depth + 1)) },
            Kind::Array { elem, count } => Desc::Array { count: u64::from(*count), subtype: Box::new(self.desc(*elem, depth + 1)) },
            Kind::Struct { union, .. } => Desc::aggregate(*union, name()),
            Kind::Enum { .. } => Desc::Enum { name: name() },
            Kind::Fwd { union } => {
                let name = match self.by_name.get(&(*union, t.name.clone())) {
                    Some(real) => self.names.get(real).cloned().unwrap_or_default(),
                    None => t.name.clone(),
                };
                Desc::aggregate(*union, name)
            }
            Kind::Func(_) | Kind::FuncProto => Desc::Function,
            _ => Desc::void(),
        }
    }

    /// Members as Volatility's own tables have them: a bitfield at the byte that holds its first
    /// bit, with its position in that byte; anonymous members numbered in order.
    fn fields(&self, members: &[crate::btf::Member]) -> BTreeMap<String, Field> {
        let mut fields = BTreeMap::new();
        let mut anonymous = 0;
        for m in members {
            let mut ty = self.desc(m.ty, 0);
            if m.bitfield_size > 0 {
                ty = Desc::Bitfield { bit_position: m.bit_offset % 8, bit_length: m.bitfield_size, ty: Box::new(ty) };
            }
            let f = Field { ty, offset: u64::from(m.bit_offset / 8), anonymous: m.name.is_empty() };
            let name = if m.name.is_empty() {
                anonymous += 1;
                format!("unnamed_field_{:x}", anonymous - 1)
            } else {
                m.name.clone()
            };
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
    let namer = Namer::new(&btf, &text_addresses(inp));

    let base = |kind, size, signed| BaseType { kind, size, signed, endian: "little" };
    let mut base_types = BTreeMap::new();
    base_types.insert("void".into(), base("void", 0, false));
    base_types.insert("pointer".into(), base("int", 8, false));
    for (size, signed) in [(1, true), (1, false), (2, true), (2, false), (4, true), (4, false), (8, true), (8, false)] {
        base_types.insert(int_name(size, signed).into(), base("int", size, signed));
    }
    let mut user_types = BTreeMap::new();
    let mut enums = BTreeMap::new();
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
                base_types.insert(t.name.clone(), base(kind, u64::from(*size), *signed));
            }
            Kind::Float { size } => {
                base_types.insert(t.name.clone(), base("float", u64::from(*size), true));
            }
            Kind::Struct { union, size, members } => {
                let name = namer.names.get(&id).cloned().unwrap_or_default();
                let layout = UserType { kind: aggregate(*union), size: u64::from(*size), fields: namer.fields(members) };
                namer.define(&mut user_types, id, name, layout);
            }
            Kind::Enum { size, signed, values } => {
                let name = namer.names.get(&id).cloned().unwrap_or_default();
                let constants = values.iter().cloned().collect();
                namer.define(&mut enums, id, name, EnumType { size: *size, base: int_name(u64::from(*size), *signed), constants });
            }
            _ => {}
        }
    }
    // A typedef of a struct is also a type of its own name, with the struct's layout.
    for (id, t) in btf.types.iter().enumerate() {
        if let (Kind::Typedef(to), Some(name)) = (&t.kind, namer.names.get(&(id as u32))) {
            if let Some(layout) = namer.names.get(to).and_then(|n| user_types.get(n)).cloned() {
                namer.define(&mut user_types, id as u32, name.clone(), layout);
            }
        }
    }
    // Forward declarations of types BTF never defines become empty structs, so references resolve.
    for t in &btf.types {
        if let Kind::Fwd { union } = t.kind {
            if !namer.by_name.contains_key(&(union, t.name.clone())) && !user_types.contains_key(&t.name) {
                user_types.insert(t.name.clone(), UserType { kind: aggregate(union), size: 0, fields: BTreeMap::new() });
            }
        }
    }

    // Types of variables: per-CPU ones from BTF's data sections; the others from the table of
    // declarations (crate::globals), applied below once every symbol's address is known.
    let mut var_types: HashMap<String, Desc> = HashMap::new();
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
    // 6.12's timekeeping data (not in the 6.1-derived table) is a struct of its own name.
    if let Some(id) = btf.struct_named("tk_data") {
        var_types.insert("tk_data".into(), namer.desc(id, 0));
    }
    // tk_core is an anonymous `struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }`.
    if let (Some(tk), Some(seq)) = (btf.struct_named("timekeeper"), btf.types.iter().position(|t| t.name == "seqcount_raw_spinlock_t")) {
        let seq_size = btf.size_of(seq as u32);
        let tk_off = seq_size.div_ceil(8) * 8;
        let fields = BTreeMap::from([
            ("seq".to_string(), Field { ty: namer.desc(seq as u32, 0), offset: 0, anonymous: false }),
            ("timekeeper".to_string(), Field { ty: namer.desc(tk, 0), offset: tk_off, anonymous: false }),
        ]);
        user_types.insert("pmem_tk_core".into(), UserType { kind: "struct", size: tk_off + btf.size_of(tk), fields });
        var_types.insert("tk_core".into(), Desc::Struct { name: "pmem_tk_core".into() });
    }

    let mut symbols = BTreeMap::new();
    let mut functions = Vec::new();
    let nonzero = map_entries(inp.kallsyms).any(|(a, _, _)| a != 0);
    // kallsyms' addresses made link-time again, then the symbols only System.map lists (already
    // link-time); the first address of a name wins.
    for (addr, kind, name) in link_time_kallsyms(inp).chain(inp.system_map.into_iter().flat_map(map_entries)) {
        if symbols.contains_key(name) {
            continue;
        }
        let ty = var_types.get(name).cloned();
        if ty.is_none() && matches!(kind, "t" | "T") {
            functions.push(name);
        }
        symbols.insert(name.to_string(), Symbol { address: addr, ty, constant_data: None });
    }
    let types = Types { base: &base_types, user: &user_types, enums: &enums };
    let mut addrs: Vec<u64> = symbols.values().map(|s| s.address).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let (mut typed_globals, mut untyped_globals) = (0, Vec::new());
    for (name, decl) in crate::globals::declared() {
        let Some(sym) = symbols.get_mut(name) else { continue };
        if sym.ty.is_some() {
            continue;
        }
        let addr = sym.address;
        let room = addrs.get(addrs.partition_point(|&a| a <= addr)).map(|next| next - addr);
        match types.fit(&decl, room) {
            Some(t) => {
                sym.ty = Some(t);
                typed_globals += 1;
            }
            None => untyped_globals.push(name.to_string()),
        }
    }
    // Other text symbols are functions, typed `void` as dwarf2json types every function:
    // plugins that scan for pointers to one (sockscan's destructors) get its address through an
    // object, which needs a type.
    for name in functions {
        if let Some(sym) = symbols.get_mut(name).filter(|s| s.ty.is_none()) {
            sym.ty = Some(Desc::void());
        }
    }
    if !nonzero {
        return Err(Error::corrupt("/proc/kallsyms", 0, "no symbol addresses (captured without root, or with kptr_restrict=2)"));
    }
    let Some(banner_sym) = symbols.get_mut("linux_banner") else {
        return Err(Error::corrupt("/proc/kallsyms", 0, "no linux_banner symbol"));
    };
    banner_sym.ty = Some(Desc::Array { count: inp.banner.len() as u64, subtype: Box::new(Desc::Base { name: "char".into() }) });
    banner_sym.constant_data = Some(base64(inp.banner));
    base_types.entry("char".into()).or_insert_with(|| base("char", 1, true));
    let mut sources = vec![json!({"kind": "system-map", "name": "/proc/kallsyms", "hash_type": "sha256",
        "hash_value": aff4::hash::hex(&sha256(inp.kallsyms.as_bytes()))})];
    if let Some(m) = inp.system_map {
        sources.push(json!({"kind": "system-map", "name": "System.map", "hash_type": "sha256",
            "hash_value": aff4::hash::hex(&sha256(m.as_bytes()))}));
    }
    let built_from = if inp.system_map.is_some() {
        "the kernel's BTF, /proc/kallsyms and System.map, not DWARF"
    } else {
        "the kernel's BTF and /proc/kallsyms, not DWARF"
    };
    let metadata = json!({
        "format": "6.2.0",
        // Volatility gates features on the producer: hidden_modules refuses any table but a
        // dwarf2json >= 0.8.0 one. The layout here is dwarf2json 0.9.0's (names from typedefs,
        // byte-based bitfields, numbered anonymous members), so the table says so, and who
        // built it from what in `pmem`.
        "producer": {"name": "dwarf2json", "version": DWARF2JSON_LAYOUT, "datetime": aff4::rdf::now(),
            "pmem": {"version": env!("CARGO_PKG_VERSION"), "built_from": built_from}},
        "linux": {"symbols": sources},
    });
    Ok(Isf {
        table: Table { metadata, base_types, user_types, enums, symbols },
        typed_globals,
        untyped_globals,
        banner: String::from_utf8_lossy(inp.banner).trim_end_matches('\0').to_string(),
        from_system_map: inp.system_map.is_some(),
    })
}

/// The table's types, to check a declaration against this kernel.
struct Types<'a> {
    base: &'a BTreeMap<String, BaseType>,
    user: &'a BTreeMap<String, UserType>,
    enums: &'a BTreeMap<String, EnumType>,
}

impl Types<'_> {
    /// Whether every type `desc` names is in this table.
    fn known(&self, desc: &Desc, depth: u32) -> bool {
        depth <= MAX_DEPTH
            && match desc {
                Desc::Struct { name } | Desc::Union { name } => self.user.contains_key(name),
                Desc::Enum { name } => self.enums.contains_key(name),
                Desc::Base { name } => self.base.contains_key(name),
                Desc::Pointer { subtype } | Desc::Array { subtype, .. } => self.known(subtype, depth + 1),
                Desc::Function => true,
                Desc::Bitfield { .. } => false,
            }
    }

    /// Bytes of an object of type `desc` (None for functions and unknown types).
    fn size(&self, desc: &Desc, depth: u32) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        match desc {
            Desc::Struct { name } | Desc::Union { name } => Some(self.user.get(name)?.size),
            Desc::Enum { name } => Some(u64::from(self.enums.get(name)?.size)),
            Desc::Base { name } => Some(self.base.get(name)?.size),
            Desc::Pointer { .. } => Some(8),
            Desc::Array { count, subtype } => count.checked_mul(self.size(subtype, depth + 1)?),
            Desc::Bitfield { .. } | Desc::Function => None,
        }
    }

    /// The declaration as it applies to a symbol with `room` bytes before the next symbol:
    /// None if it names a type this kernel lacks or does not fit; an array keeps at most as
    /// many elements as fit (kernels size some by configuration), a flexible one (count 0) none.
    fn fit(&self, decl: &Desc, room: Option<u64>) -> Option<Desc> {
        if !self.known(decl, 0) {
            return None;
        }
        if let Desc::Array { count, subtype } = decl {
            let elem = self.size(subtype, 1)?;
            if let (Some(room), true) = (room, *count > 0 && elem > 0) {
                let n = (*count).min(room / elem);
                if n == 0 {
                    return None;
                }
                return Some(Desc::Array { count: n, subtype: subtype.clone() });
            }
            return Some(decl.clone());
        }
        match (self.size(decl, 0), room) {
            (Some(size), Some(room)) if size > room => None,
            _ => Some(decl.clone()),
        }
    }
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

/// A VMCOREINFO value: `0x` hexadecimal (arm64's NUMBER()s), decimal (other NUMBER()s), else
/// plain hexadecimal (KERNELOFFSET).
fn vmcoreinfo_value(v: &str, key: &str) -> Option<u64> {
    let val = v.lines().find_map(|l| l.strip_prefix(key))?.trim();
    if let Some(hex) = val.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if key.starts_with("NUMBER(") {
        val.parse::<i64>().ok().map(|x| x as u64)
    } else {
        u64::from_str_radix(val, 16).ok()
    }
}

/// Builds the symbol table of the memory image in `c` from its captured BTF and kallsyms, and
/// `system_map` (the analyst's copy of the kernel's System.map), else the one captured with
/// it (`/boot/System.map-RELEASE`; Debian's is a stub, the real one is in its -dbg package).
///
/// # Errors
/// Something needed was not captured, or does not parse.
pub fn from_container(c: &Container, image: &str, system_map: Option<&str>) -> Result<Isf> {
    let view = MemoryView::open(c, image)?;
    arch_supported(&view)?;
    let btf = captured(c, "/sys/kernel/btf/vmlinux", 256 << 20)?;
    let kallsyms = captured(c, "/proc/kallsyms", 256 << 20)?;
    let release = view.vmcoreinfo.as_deref().and_then(|v| v.lines().find_map(|l| l.strip_prefix("OSRELEASE="))).map(str::trim);
    let captured_map = match (system_map, release) {
        (None, Some(r)) => captured(c, &format!("/boot/System.map-{r}"), 256 << 20).ok(),
        _ => None,
    };
    let captured_map = captured_map.as_deref().map(String::from_utf8_lossy);
    from_view(&view, &btf, &String::from_utf8_lossy(&kallsyms), system_map.or(captured_map.as_deref()))
}

/// The banner is read through the kernel image's mapping, which is per architecture.
fn arch_supported(view: &MemoryView) -> Result<()> {
    if view.machine != memformat::elf::EM_X86_64 && view.machine != EM_AARCH64 {
        let arch = memformat::elf::arch_name(view.machine).unwrap_or("unknown");
        return Err(Error::Unsupported(format!("symbol tables are built for x86-64 and arm64 kernels; this memory image is {arch}")));
    }
    Ok(())
}

/// Where each function of the kernel's main text (`_stext` to `_etext`) and init text
/// (`_sinittext` to `_einittext`) lies, at its link-time address, for the names kallsyms lists
/// once. Left out too: names kallsyms also lists as `__kvm_nvhe_NAME` (arm64 KVM's hypervisor
/// code, built from files of its own with the same function names), which BTF's one record
/// cannot tell apart.
fn text_addresses<'a>(inp: &Inputs<'a>) -> HashMap<&'a str, (Section, u64)> {
    let mut marks: HashMap<&str, u64> = HashMap::new();
    let mut once: HashMap<&str, Option<u64>> = HashMap::new();
    let mut twinned: HashSet<&str> = HashSet::new();
    for (a, kind, name) in link_time_kallsyms(inp) {
        if matches!(name, "_stext" | "_etext" | "_sinittext" | "_einittext") {
            marks.insert(name, a);
        }
        if matches!(kind, "t" | "T") {
            once.entry(name).and_modify(|v| *v = None).or_insert(Some(a));
            if let Some(n) = name.strip_prefix("__kvm_nvhe_") {
                twinned.insert(n);
            }
        }
    }
    let range = |from: &str, to: &str| Some(*marks.get(from)?..*marks.get(to)?);
    let sections: Vec<(Section, std::ops::Range<u64>)> =
        [(Section::Text, range("_stext", "_etext")), (Section::Init, range("_sinittext", "_einittext"))]
            .into_iter()
            .filter_map(|(s, r)| Some((s, r?)))
            .collect();
    once.into_iter()
        .filter(|(n, _)| !twinned.contains(n))
        .filter_map(|(n, a)| {
            let a = a?;
            let s = sections.iter().find(|(_, r)| r.contains(&a))?.0;
            Some((n, (s, a)))
        })
        .collect()
}

/// kallsyms' entries at their link-time addresses: those of the relocated kernel image moved
/// back by the KASLR offset, the others (x86-64's per-CPU offsets) as they are.
fn link_time_kallsyms<'a>(inp: &Inputs<'a>) -> impl Iterator<Item = (u64, &'a str, &'a str)> {
    let (start, offset) = (inp.kernel_start, inp.kernel_offset);
    map_entries(inp.kallsyms).map(move |(a, kind, name)| (if a >= start { a.wrapping_sub(offset) } else { a }, kind, name))
}

/// The kernel's own symbols of a kallsyms or System.map text: (address, type, name), without
/// modules' (`[module]`) and unparsable lines.
fn map_entries(text: &str) -> impl Iterator<Item = (u64, &str, &str)> {
    text.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let (a, kind, name) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        Some((u64::from_str_radix(a, 16).ok()?, kind, name))
    })
}

fn address_of(text: &str, name: &str) -> Option<u64> {
    map_entries(text).find_map(|(a, _, n)| (n == name).then_some(a))
}

/// The KASLR offset if `map` is the running build's System.map: its `_stext` and `_etext` lie
/// the same distance below kallsyms' (a map of another build of the same release does not).
fn system_map_offset(kallsyms: &str, map: &str) -> Option<u64> {
    let off = |name| Some(address_of(kallsyms, name)?.wrapping_sub(address_of(map, name)?));
    let o = off("_stext")?;
    (off("_etext")? == o).then_some(o)
}

/// Builds the symbol table of the memory in `view` from its kernel's BTF and kallsyms (as
/// captured, or read live from /sys/kernel/btf/vmlinux and /proc/kallsyms), with the data
/// symbols of `system_map` where kallsyms lacks them (a map of another build is not used).
///
/// # Errors
/// Not x86-64 or arm64, or the inputs do not parse, or the banner is not where they say.
pub fn from_view(view: &MemoryView, btf: &[u8], kallsyms: &str, system_map: Option<&str>) -> Result<Isf> {
    arch_supported(view)?;
    let vmci = view.vmcoreinfo.clone().unwrap_or_default();
    let map_offset = system_map.and_then(|m| system_map_offset(kallsyms, m));
    let system_map = system_map.filter(|_| map_offset.is_some());
    let kernel_offset = map_offset.or_else(|| vmcoreinfo_value(&vmci, "KERNELOFFSET=")).unwrap_or(0);
    let banner_va = address_of(kallsyms, "linux_banner")
        .or_else(|| Some(address_of(system_map?, "linux_banner")?.wrapping_add(kernel_offset)))
        .ok_or_else(|| {
            let why = if system_map.is_some() {
                "no linux_banner symbol in kallsyms or System.map"
            } else {
                "no linux_banner symbol (kallsyms lists no data symbols without CONFIG_KALLSYMS_ALL): give the kernel's System.map of the same build (`pmem isf --system-map FILE`; Debian ships it in linux-image-...-dbg)"
            };
            Error::corrupt("/proc/kallsyms", 0, why)
        })?;
    // The kernel image's virtual-to-physical offset, and where its kallsyms addresses start.
    let (phys, kernel_start) = if view.machine == EM_AARCH64 {
        let voff = vmcoreinfo_value(&vmci, "NUMBER(kimage_voffset)=")
            .ok_or_else(|| Error::corrupt("VMCOREINFO", 0, "no NUMBER(kimage_voffset) (needed to read an arm64 kernel's image)"))?;
        // (kallsyms has no `_text` here; the image starts at the 2 MiB boundary below `_stext`)
        let stext = address_of(kallsyms, "_stext").unwrap_or(banner_va);
        (banner_va.checked_sub(voff), stext & !((2 << 20) - 1))
    } else {
        let phys_base = vmcoreinfo_value(&vmci, "NUMBER(phys_base)=").unwrap_or(0);
        (banner_va.checked_sub(START_KERNEL_MAP).map(|p| p.wrapping_add(phys_base)), START_KERNEL_MAP + kernel_offset)
    };
    let phys = phys.filter(|&p| p < view.size()).ok_or_else(|| {
        Error::corrupt(
            "/proc/kallsyms",
            0,
            format!("linux_banner at {banner_va:#x} is not in the kernel image's mapping or outside memory"),
        )
    })?;
    let mut buf = vec![0u8; 1024];
    let n = view.read_at(phys, &mut buf)?;
    buf.truncate(n);
    let end = buf.iter().position(|&b| b == 0).map(|p| p + 1).unwrap_or(buf.len());
    buf.truncate(end);
    build(&Inputs { btf, kallsyms, system_map, kernel_offset, kernel_start, banner: &buf })
}

/// Writes the table as JSON, xz-compressed if `xz`. Preset 1: on a 6.1 kernel's 11.9 MB table
/// it takes 0.45 s and 23 MB where preset 6 takes 6.4 s and 109 MB for 20% less output, and
/// `pmem mount --live` does this on the machine whose memory it serves.
///
/// # Errors
/// Write errors.
pub fn write(isf: &Isf, out: impl Write, xz: bool) -> Result<()> {
    let io = |e: std::io::Error| Error::io("symbol table", e);
    if xz {
        let mut enc = lzma_rust2::XzWriter::new(std::io::BufWriter::new(out), lzma_rust2::XzOptions::with_preset(1)).map_err(io)?;
        let mut buffered = std::io::BufWriter::new(&mut enc);
        serde_json::to_writer(&mut buffered, &isf.table).map_err(|e| io(e.into()))?;
        buffered.flush().map_err(io)?;
        drop(buffered);
        enc.finish().map_err(io)?.flush().map_err(io)?;
    } else {
        let mut w = std::io::BufWriter::new(out);
        serde_json::to_writer(&mut w, &isf.table).map_err(|e| io(e.into()))?;
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
        let kallsyms = "ffffffff9a000000 T _text\nffffffff9a100000 t do_exit\nffffffff9b200000 D init_task\nffffffff9b000000 D linux_banner\n0000000000012000 A fixed\nffffffffc0000000 t x [mod]\n";
        let isf = build(&Inputs {
            btf: &b,
            kallsyms,
            system_map: None,
            kernel_offset: 0x1a00_0000,
            kernel_start: START_KERNEL_MAP + 0x1a00_0000,
            banner: b"Linux version 6.1.0 (x)\n\0",
        })
        .unwrap();
        let j = &serde_json::to_value(&isf.table).unwrap();
        assert_eq!(j["symbols"]["_text"]["address"], json!(0xffff_ffff_8000_0000u64));
        assert_eq!(j["symbols"]["fixed"]["address"], json!(0x12000));
        assert!(j["symbols"].get("x").is_none());
        // A function is typed void, as dwarf2json types functions; _text keeps its declaration.
        assert_eq!(j["symbols"]["do_exit"]["type"], json!({"kind": "base", "name": "void"}));
        assert_eq!(j["symbols"]["_text"]["type"]["kind"], json!("array"));
        assert!(j["symbols"]["fixed"].get("type").is_none());
        assert_eq!(j["symbols"]["init_task"]["type"], json!({"kind": "struct", "name": "task_struct"}));
        let f = &j["user_types"]["task_struct"]["fields"]["flags"];
        assert_eq!(f["offset"], json!(4));
        assert_eq!(f["type"]["bit_position"], json!(3));
        assert_eq!(j["base_types"]["char"]["kind"], json!("char"));
        assert_eq!(j["symbols"]["linux_banner"]["constant_data"], json!(base64(b"Linux version 6.1.0 (x)\n\0")));
        let mut out = Vec::new();
        write(&isf, &mut out, true).unwrap();
        assert_eq!(&out[..6], b"\xfd7zXZ\0");
        assert!(build(&Inputs {
            btf: &b,
            kallsyms: "0000000000000000 T _text\n",
            system_map: None,
            kernel_offset: 0,
            kernel_start: 0,
            banner: b"Linux version 6.1.0\n\0"
        })
        .is_err());
        assert!(build(&Inputs { btf: &b, kallsyms, system_map: None, kernel_offset: 0, kernel_start: 0, banner: b"garbage" }).is_err());

        // arm64 without CONFIG_KALLSYMS_ALL: functions only in kallsyms (relocated), the data
        // symbols from System.map (link-time); kallsyms' own addresses win.
        let kallsyms = "ffff80000a010000 T _stext\nffff80000a020000 t do_exit\nffff80000a910000 T _etext\nffff7fffc0000000 t m [mod]\n";
        let map = "ffff800008000000 T _text\nffff800008010000 T _stext\nffff800008020000 t do_exit\nffff800008910000 T _etext\nffff800009000000 D linux_banner\nffff800009200000 D init_task\n";
        assert_eq!(system_map_offset(kallsyms, map), Some(0x200_0000));
        assert_eq!(system_map_offset(kallsyms, &map.replace("ffff800008910000 T _etext", "ffff800008910100 T _etext")), None);
        let inp = Inputs {
            btf: &b,
            kallsyms,
            system_map: Some(map),
            kernel_offset: 0x200_0000,
            kernel_start: 0xffff_8000_0a00_0000,
            banner: b"Linux version 6.1.0 (arm64)\n\0",
        };
        let j = serde_json::to_value(build(&inp).unwrap().table).unwrap();
        assert_eq!(j["symbols"]["_text"]["address"], json!(0xffff_8000_0800_0000u64));
        assert_eq!(j["symbols"]["do_exit"]["address"], json!(0xffff_8000_0802_0000u64));
        assert_eq!(j["symbols"]["_stext"]["address"], json!(0xffff_8000_0801_0000u64));
        assert_eq!(j["symbols"]["init_task"]["address"], json!(0xffff_8000_0920_0000u64));
        assert_eq!(j["symbols"]["init_task"]["type"], json!({"kind": "struct", "name": "task_struct"}));
        assert!(j["symbols"].get("m").is_none());
        assert_eq!(j["metadata"]["linux"]["symbols"].as_array().map(Vec::len), Some(2));
        // Without the map there is no banner to match.
        assert!(build(&Inputs { system_map: None, ..inp }).is_err());
    }

    #[test]
    fn reused_names_take_the_definition_latest_in_link_order() {
        // [1] int; [2] struct dup { int a; } then FUNC [4]; [5] struct dup { int a; int b; }
        // then FUNC [6]; [7] and [8] struct same { int a; } (one layout, defined twice).
        let strings = b"\0int\0dup\0a\0b\0late_fn\0early_fn\0same\0";
        let (late, early) = (13, 21);
        let types = |after_first: u32, after_second: u32| {
            vec![
                1,
                1 << 24,
                4,
                (1 << 24) | 32, // [1] int
                5,
                (4 << 24) | 1,
                4,
                9,
                1,
                0, // [2] struct dup, 4 bytes
                0,
                13 << 24,
                0, // [3] void (void)
                after_first,
                12 << 24,
                3, // [4] a function
                5,
                (4 << 24) | 2,
                8,
                9,
                1,
                0,
                11,
                1,
                32, // [5] struct dup, 8 bytes
                after_second,
                12 << 24,
                3, // [6] a function
                30,
                (4 << 24) | 1,
                4,
                9,
                1,
                0, // [7] struct same
                30,
                (4 << 24) | 1,
                4,
                9,
                1,
                0, // [8] struct same
            ]
        };
        let table = |types: &[u32], kallsyms: &str| {
            let b = blob(types, strings);
            let inp = Inputs {
                btf: &b,
                kallsyms,
                system_map: None,
                kernel_offset: 0,
                kernel_start: START_KERNEL_MAP,
                banner: b"Linux version 6.1.0 (x)\n\0",
            };
            serde_json::to_value(build(&inp).unwrap().table).unwrap()
        };
        let text = |late_at: u32, early_at: u32| {
            format!("ffffffff81000000 T _stext\nffffffff8{late_at:07x} t late_fn\nffffffff8{early_at:07x} t early_fn\nffffffff82000000 T _etext\nffffffff82100000 D linux_banner\n")
        };
        let size = |j: &Value, n: &str| j["user_types"][n]["size"].as_u64();
        // Functions not in name order (files encoded in parallel): the definition whose
        // functions lie later in the text wins, wherever it stands in BTF.
        let j = table(&types(late, early), &text(0x100_2000, 0x100_1000));
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_5")), (Some(4), Some(8)));
        let j = table(&types(late, early), &text(0x100_1000, 0x100_2000));
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_2")), (Some(8), Some(4)));
        // Functions in name order (types in link order): the later definition, whatever the
        // addresses say.
        let j = table(&types(early, late), &text(0x100_1000, 0x100_2000));
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_2")), (Some(8), Some(4)));
        // Link order holds in the init text too: functions there decide alike.
        let init = |late_at: u32, early_at: u32| {
            format!("ffffffff81000000 T _stext\nffffffff82000000 T _etext\nffffffff83000000 T _sinittext\nffffffff8{late_at:07x} t late_fn\nffffffff8{early_at:07x} t early_fn\nffffffff83100000 T _einittext\nffffffff82100000 D linux_banner\n")
        };
        let j = table(&types(late, early), &init(0x300_2000, 0x300_1000));
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_5")), (Some(4), Some(8)));
        let j = table(&types(late, early), &init(0x300_1000, 0x300_2000));
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_2")), (Some(8), Some(4)));
        // A name kallsyms also lists for arm64 KVM's hypervisor code may be either copy: it
        // places nothing, and here the later id wins for want of evidence.
        let twin = text(0x100_2000, 0x100_1000) + "ffffffff81003000 t __kvm_nvhe_late_fn\n";
        let j = table(&types(late, early), &twin);
        assert_eq!((size(&j, "dup"), size(&j, "dup__btf_2")), (Some(8), Some(4)));
        // Two definitions of one layout are one type, under its own name.
        let j = table(&types(early, late), &text(0x100_1000, 0x100_2000));
        assert_eq!(size(&j, "same"), Some(4));
        assert!(j["user_types"].as_object().unwrap().keys().all(|k| !k.starts_with("same__")), "{}", j["user_types"]);
    }

    #[test]
    fn vmcoreinfo_numbers_in_either_base() {
        let v = "OSRELEASE=6.1.0\nNUMBER(phys_base)=-2113929216\nNUMBER(kimage_voffset)=0xffff7fff87e00000\nKERNELOFFSET=1a000000\n";
        assert_eq!(vmcoreinfo_value(v, "NUMBER(phys_base)="), Some((-2_113_929_216i64) as u64));
        assert_eq!(vmcoreinfo_value(v, "NUMBER(kimage_voffset)="), Some(0xffff_7fff_87e0_0000));
        assert_eq!(vmcoreinfo_value(v, "KERNELOFFSET="), Some(0x1a00_0000));
        assert_eq!(vmcoreinfo_value(v, "NUMBER(VA_BITS)="), None);
    }
}
