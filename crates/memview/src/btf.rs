//! BPF Type Format (BTF), as the kernel exports it in /sys/kernel/btf/vmlinux: the type
//! information `pmem isf` turns into a Volatility symbol table. Read-only and bounds-checked
//! (the file comes from the volume, so it is untrusted); see the kernel's
//! Documentation/bpf/btf.rst for the layout.

use crate::error::{Error, Result};

/// A member of a struct or union.
#[derive(Debug, Clone)]
pub struct Member {
    /// Name (empty for anonymous members).
    pub name: String,
    /// Type id.
    pub ty: u32,
    /// Offset from the start of the aggregate, in bits.
    pub bit_offset: u32,
    /// Width in bits when a bitfield, else 0.
    pub bitfield_size: u32,
}

/// A BTF type.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Type id 0.
    Void,
    /// An integer (also char and _Bool).
    Int {
        /// Bytes.
        size: u32,
        /// Signed.
        signed: bool,
        /// A char type.
        char: bool,
        /// _Bool.
        bool: bool,
    },
    /// A pointer to a type.
    Ptr(u32),
    /// An array.
    Array {
        /// Element type.
        elem: u32,
        /// Element count.
        count: u32,
    },
    /// A struct (`union` false) or union.
    Struct {
        /// Union rather than struct.
        union: bool,
        /// Bytes.
        size: u32,
        /// Members in order.
        members: Vec<Member>,
    },
    /// An enumeration.
    Enum {
        /// Bytes.
        size: u32,
        /// Signed values.
        signed: bool,
        /// Name and value of each constant.
        values: Vec<(String, i64)>,
    },
    /// A forward declaration.
    Fwd {
        /// Of a union rather than a struct.
        union: bool,
    },
    /// A typedef of a type (its name is the typedef's).
    Typedef(u32),
    /// volatile, const, restrict or a type tag: the type they qualify.
    Alias(u32),
    /// A function (its prototype's id).
    Func(u32),
    /// A function prototype.
    FuncProto,
    /// A variable of a type.
    Var(u32),
    /// A data section: (variable type id, offset, size) of its variables.
    Datasec(Vec<(u32, u32, u32)>),
    /// A floating-point type.
    Float {
        /// Bytes.
        size: u32,
    },
    /// A declaration tag (ignored).
    DeclTag,
}

/// A named type.
#[derive(Debug, Clone)]
pub struct Type {
    /// Name, empty if anonymous.
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

/// A parsed BTF blob; `types[0]` is void.
#[derive(Debug)]
pub struct Btf {
    /// Types by id.
    pub types: Vec<Type>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    ctx: &'a str,
    base: usize,
}

impl Cursor<'_> {
    fn u32(&mut self) -> Result<u32> {
        let b = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| Error::corrupt(self.ctx, (self.base + self.pos) as u64, "type section ends inside a type"))?;
        self.pos += 4;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn rd32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// Parses a BTF blob; `ctx` names it in errors.
    ///
    /// # Errors
    /// A bad magic, sections outside the blob, or a type that does not fit.
    pub fn parse(data: &[u8], ctx: &str) -> Result<Btf> {
        let bad = |off: usize, what: &str| Error::corrupt(ctx, off as u64, what.to_string());
        if data.len() < 24 || data[0..2] != [0x9f, 0xeb] {
            return Err(bad(0, "not little-endian BTF (magic 0xeb9f)"));
        }
        let hdr_len = rd32(data, 4).unwrap_or(0) as usize;
        let field = |i: usize| rd32(data, 8 + 4 * i).unwrap_or(0) as usize;
        let (type_off, type_len, str_off, str_len) = (field(0), field(1), field(2), field(3));
        let section = |off: usize, len: usize, what: &str| -> Result<&[u8]> {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some((s, s.checked_add(len)?)))
                .and_then(|(s, e)| data.get(s..e))
                .ok_or_else(|| bad(8, what))
        };
        let types = section(type_off, type_len, "type section outside the file")?;
        let strings = section(str_off, str_len, "string section outside the file")?;
        let name = |off: u32| -> Result<String> {
            let s = strings.get(off as usize..).ok_or_else(|| bad(hdr_len + str_off, "name offset outside the string section"))?;
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            Ok(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        let mut out = vec![Type { name: String::new(), kind: Kind::Void }];
        let mut c = Cursor { data: types, pos: 0, ctx, base: hdr_len + type_off };
        while c.pos < types.len() {
            let at = c.base + c.pos;
            let name_off = c.u32()?;
            let info = c.u32()?;
            let size_or_type = c.u32()?;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 != 0;
            let kind = match (info >> 24) & 0x1f {
                1 => {
                    let enc = c.u32()?;
                    let e = (enc >> 24) & 0xf;
                    Kind::Int { size: size_or_type, signed: e & 1 != 0, char: e & 2 != 0, bool: e & 4 != 0 }
                }
                2 => Kind::Ptr(size_or_type),
                3 => {
                    let elem = c.u32()?;
                    let _index = c.u32()?;
                    Kind::Array { elem, count: c.u32()? }
                }
                k @ (4 | 5) => {
                    let mut members = Vec::with_capacity(vlen.min(types.len() / 12));
                    for _ in 0..vlen {
                        let n = c.u32()?;
                        let ty = c.u32()?;
                        let off = c.u32()?;
                        let (bit_offset, bitfield_size) = if kind_flag { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
                        members.push(Member { name: name(n)?, ty, bit_offset, bitfield_size });
                    }
                    Kind::Struct { union: k == 5, size: size_or_type, members }
                }
                6 => {
                    let mut values = Vec::with_capacity(vlen.min(types.len() / 8));
                    for _ in 0..vlen {
                        let n = c.u32()?;
                        let v = c.u32()?;
                        values.push((name(n)?, if kind_flag { i64::from(v as i32) } else { i64::from(v) }));
                    }
                    Kind::Enum { size: size_or_type, signed: kind_flag, values }
                }
                19 => {
                    let mut values = Vec::with_capacity(vlen.min(types.len() / 12));
                    for _ in 0..vlen {
                        let n = c.u32()?;
                        let lo = c.u32()?;
                        let hi = c.u32()?;
                        values.push((name(n)?, ((u64::from(hi) << 32) | u64::from(lo)) as i64));
                    }
                    Kind::Enum { size: size_or_type, signed: kind_flag, values }
                }
                7 => Kind::Fwd { union: kind_flag },
                8 => Kind::Typedef(size_or_type),
                9..=11 | 18 => Kind::Alias(size_or_type),
                12 => Kind::Func(size_or_type),
                13 => {
                    for _ in 0..vlen {
                        c.u32()?;
                        c.u32()?;
                    }
                    Kind::FuncProto
                }
                14 => {
                    c.u32()?;
                    Kind::Var(size_or_type)
                }
                15 => {
                    let mut vars = Vec::with_capacity(vlen.min(types.len() / 12));
                    for _ in 0..vlen {
                        vars.push((c.u32()?, c.u32()?, c.u32()?));
                    }
                    Kind::Datasec(vars)
                }
                16 => Kind::Float { size: size_or_type },
                17 => {
                    c.u32()?;
                    Kind::DeclTag
                }
                k => return Err(bad(at, &format!("unknown BTF kind {k}"))),
            };
            out.push(Type { name: name(name_off)?, kind });
        }
        Ok(Btf { types: out })
    }

    /// The type with id `id`.
    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Follows typedefs and qualifiers (at most 64 steps: BTF from a volume may loop).
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..64 {
            match self.get(id).map(|t| &t.kind) {
                Some(Kind::Alias(next) | Kind::Typedef(next)) => id = *next,
                _ => return id,
            }
        }
        0
    }

    /// The type that pointers, arrays, typedefs and qualifiers are built on (at most 64 steps).
    pub fn innermost(&self, mut id: u32) -> u32 {
        for _ in 0..64 {
            match self.get(id).map(|t| &t.kind) {
                Some(Kind::Ptr(to) | Kind::Typedef(to) | Kind::Alias(to) | Kind::Array { elem: to, .. }) => id = *to,
                _ => break,
            }
        }
        id
    }

    /// Size in bytes of a type (0 if unknown), through aliases and arrays (bounded depth).
    pub fn size_of(&self, id: u32) -> u64 {
        self.size_depth(id, 0)
    }

    fn size_depth(&self, id: u32, depth: u32) -> u64 {
        if depth > 64 {
            return 0;
        }
        match self.get(self.resolve(id)).map(|t| &t.kind) {
            Some(Kind::Int { size, .. } | Kind::Struct { size, .. } | Kind::Enum { size, .. } | Kind::Float { size }) => u64::from(*size),
            Some(Kind::Ptr(_)) => 8,
            Some(Kind::Array { elem, count }) => self.size_depth(*elem, depth + 1).saturating_mul(u64::from(*count)),
            _ => 0,
        }
    }

    /// The id of the struct named `name`, if there is one.
    pub fn struct_named(&self, name: &str) -> Option<u32> {
        self.types.iter().position(|t| t.name == name && matches!(t.kind, Kind::Struct { union: false, .. })).map(|i| i as u32)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a BTF blob from raw type words and a string table (for tests here and in `isf`).
    pub fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&((types.len() * 4) as u32).to_le_bytes());
        b.extend_from_slice(&((types.len() * 4) as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        for t in types {
            b.extend_from_slice(&t.to_le_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn parses_struct_with_bitfield() {
        // strings: 0 "", 1 "int", 5 "s", 7 "a", 9 "b"
        let strings = b"\0int\0s\0a\0b\0";
        let types = [
            1,
            1 << 24,
            4,
            (1 << 24) | 32, // [1] int, signed 32 bits
            5,
            (4 << 24) | (1 << 31) | 2,
            8, // [2] struct s (kind_flag), 2 members
            7,
            1,
            0, // a: int at bit 0
            9,
            1,
            (3 << 24) | 35, // b: int:3 at bit 35
            0,
            2 << 24,
            2, // [3] pointer to s
        ];
        let b = Btf::parse(&blob(&types, strings), "t").unwrap();
        assert_eq!(b.types.len(), 4);
        let Kind::Struct { members, size, .. } = &b.types[2].kind else { panic!() };
        assert_eq!((*size, members[1].bit_offset, members[1].bitfield_size), (8, 35, 3));
        assert_eq!(b.struct_named("s"), Some(2));
        assert_eq!(b.size_of(3), 8);
    }

    #[test]
    fn hostile_blobs_are_errors() {
        let strings = b"\0int\0";
        let good = blob(&[1, 1 << 24, 4, (1 << 24) | 32], strings);
        for cut in 0..good.len() {
            let _ = Btf::parse(&good[..cut], "t");
        }
        let mut huge_vlen = blob(&[1, (4 << 24) | 0xffff, 4], strings);
        assert!(Btf::parse(&huge_vlen, "t").is_err());
        huge_vlen[12] = 0xff;
        assert!(Btf::parse(&huge_vlen, "t").is_err());
        // A typedef loop resolves to void instead of hanging.
        let looped = Btf::parse(&blob(&[0, 8 << 24, 2, 0, 8 << 24, 1], b"\0"), "t").unwrap();
        assert_eq!(looped.resolve(1), 0);
        assert_eq!(looped.size_of(1), 0);
    }
}
