//! /proc/iomem: the physical address map. Lines are `start-end : name` with an **inclusive**
//! end, nested by two spaces per level; this module converts to half-open ranges.

use crate::error::{Error, Result};
use memformat::Range;

/// One line of /proc/iomem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Nesting depth (0 = top level).
    pub depth: usize,
    /// Half-open range.
    pub range: Range,
    /// The name after ` : `.
    pub name: String,
}

/// Parses /proc/iomem text.
///
/// # Errors
/// A line that is not `start-end : name`, or an end before its start.
pub fn parse(text: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let depth = (line.len() - line.trim_start().len()) / 2;
        let bad = |what: &str| Error::corrupt("/proc/iomem", i as u64 + 1, format!("line {}: {what}: {line:?}", i + 1));
        let (span, name) = line.trim().split_once(" : ").ok_or_else(|| bad("no ' : '"))?;
        let (a, b) = span.split_once('-').ok_or_else(|| bad("no range"))?;
        let start = u64::from_str_radix(a.trim(), 16).map_err(|_| bad("bad start"))?;
        let last = u64::from_str_radix(b.trim(), 16).map_err(|_| bad("bad end"))?;
        if last < start {
            return Err(bad("end before start"));
        }
        // Unprivileged readers see zeros everywhere.
        out.push(Entry { depth, range: Range { start, end: last.saturating_add(1) }, name: name.trim().to_string() });
    }
    Ok(out)
}

/// True for names that denote RAM: `System RAM`, `System RAM (virtio_mem)`, `System RAM (kmem)`.
pub fn is_ram(name: &str) -> bool {
    name == "System RAM" || name.starts_with("System RAM (")
}

/// The RAM ranges at every nesting level, merged and sorted.
///
/// # Errors
/// As [`parse`]; also when the text shows only zero addresses (not read as root).
pub fn system_ram(text: &str) -> Result<Vec<Range>> {
    let entries = parse(text)?;
    if !entries.is_empty() && entries.iter().all(|e| e.range.start == 0 && e.range.end == 1) {
        return Err(Error::corrupt("/proc/iomem", 0, "all addresses are zero: /proc/iomem must be read as root"));
    }
    let rams: Vec<Range> = entries.iter().filter(|e| is_ram(&e.name)).map(|e| e.range).collect();
    Ok(memformat::ranges::merge(rams))
}

/// The ranges of entries named exactly `name` (e.g. `Kernel code`).
pub fn named(text: &str, name: &str) -> Vec<Range> {
    parse(text).map(|v| v.into_iter().filter(|e| e.name == name).map(|e| e.range).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use memformat::ranges::{merge, subtract, whole_pages};
    const RIG: &str = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n0009fc00-0009ffff : Reserved\n00100000-3ffd6fff : System RAM\n  32400000-33201ef1 : Kernel code\n  33400000-33c26fff : Kernel rodata\n3ffd7000-3fffffff : Reserved\n100000000-13fffffff : System RAM\n  120000000-12fffffff : System RAM (virtio_mem)\n140000000-14fffffff : dax0.0\n  140000000-14fffffff : System RAM (kmem)\n";
    #[test]
    fn whole_pages_and_subtraction() {
        let r = |start, end| Range { start, end };
        let ram = merge(whole_pages(&system_ram(RIG).unwrap(), 4096));
        assert_eq!(ram, vec![r(0x1000, 0x9f000), r(0x100000, 0x3ffd7000), r(0x100000000, 0x150000000)]);
        assert_eq!(whole_pages(&[r(0x1001, 0x1fff), r(u64::MAX - 10, u64::MAX)], 4096), vec![]);
        // kcore-like coverage with a hole and a missing range.
        let cover = [r(0x1000, 0x9f000), r(0x100000, 0x2000_0000), r(0x2100_0000, 0x3ffd7000)];
        assert_eq!(subtract(&ram, &cover), vec![r(0x2000_0000, 0x2100_0000), r(0x100000000, 0x150000000)]);
        assert_eq!(subtract(&ram, &ram), vec![]);
        assert_eq!(subtract(&ram, &[]), ram);
        assert_eq!(subtract(&[r(0, 100)], &[r(10, 20), r(15, 30), r(90, 200)]), vec![r(0, 10), r(30, 90)]);
    }

    #[test]
    fn ram_at_every_level() {
        let r = system_ram(RIG).unwrap();
        assert_eq!(
            r,
            vec![
                Range { start: 0x1000, end: 0x9fc00 },
                Range { start: 0x100000, end: 0x3ffd7000 },
                Range { start: 0x100000000, end: 0x150000000 },
            ]
        );
        assert_eq!(named(RIG, "Kernel code"), vec![Range { start: 0x32400000, end: 0x33201ef2 }]);
    }
    #[test]
    fn unprivileged_and_garbage() {
        assert!(system_ram("00000000-00000000 : System RAM\n00000000-00000000 : Reserved\n").is_err());
        assert!(parse("zzz\n").is_err());
        assert!(parse("10-5 : x\n").is_err());
        assert!(parse("ffffffffffffffff-ffffffffffffffff : System RAM\n").is_ok());
    }
}
