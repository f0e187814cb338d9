//! Half-open physical address ranges and the set operations every memory layout needs.

/// A half-open physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// The overlap of two ranges, if any.
    pub fn intersect(&self, o: &Range) -> Option<Range> {
        let r = Range { start: self.start.max(o.start), end: self.end.min(o.end) };
        (!r.is_empty()).then_some(r)
    }
}

/// The whole pages of each range (a partial page at either end is dropped): what page-frame
/// based sources such as /proc/kcore can map.
pub fn whole_pages(v: &[Range], page: u64) -> Vec<Range> {
    v.iter()
        .filter_map(|r| {
            let start = r.start.checked_add(page - 1)? / page * page;
            let end = r.end / page * page;
            (start < end).then_some(Range { start, end })
        })
        .collect()
}

/// The parts of `a` that no range of `b` covers (both sorted and disjoint, as [`merge`] gives).
pub fn subtract(a: &[Range], b: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    for r in a {
        let mut at = r.start;
        for c in b.iter().filter(|c| c.end > r.start && c.start < r.end) {
            if c.start > at {
                out.push(Range { start: at, end: c.start });
            }
            at = at.max(c.end);
        }
        if at < r.end {
            out.push(Range { start: at, end: r.end });
        }
    }
    out
}

/// Sorts and merges overlapping or touching ranges.
pub fn merge(mut v: Vec<Range>) -> Vec<Range> {
    v.sort();
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        if r.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(l) if r.start <= l.end => l.end = l.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}
