//! Building maps: coalescing entries in address order and serialising `map` and `idx`.

use super::MapEntry;

/// Accumulates map entries in ascending virtual order, merging contiguous runs.
#[derive(Default)]
pub struct MapBuilder {
    entries: Vec<MapEntry>,
    targets: Vec<String>,
}

impl MapBuilder {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The idx line number of `target`, adding it if new.
    pub fn target(&mut self, target: &str) -> u32 {
        match self.targets.iter().position(|t| t == target) {
            Some(i) => i as u32,
            None => {
                self.targets.push(target.to_string());
                (self.targets.len() - 1) as u32
            }
        }
    }

    /// Maps virtual `[mapped, mapped+length)` to `target_id` at `target_offset`; entries must
    /// come in ascending, non-overlapping order.
    pub fn push(&mut self, mapped: u64, length: u64, target_id: u32, target_offset: u64) {
        if length == 0 {
            return;
        }
        if let Some(last) = self.entries.last_mut() {
            if last.mapped + last.length == mapped && last.target_id == target_id && last.target_offset + last.length == target_offset {
                last.length += length;
                return;
            }
        }
        self.entries.push(MapEntry { mapped, length, target_offset, target_id });
    }

    /// The target IRIs in idx order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    /// End of the last entry.
    pub fn end(&self) -> u64 {
        self.entries.last().map(|e| e.mapped + e.length).unwrap_or(0)
    }

    /// The entries.
    pub fn entries(&self) -> &[MapEntry] {
        &self.entries
    }

    /// The `map` segment bytes.
    pub fn map_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * super::ENTRY_SIZE);
        for e in &self.entries {
            out.extend_from_slice(&e.to_bytes());
        }
        out
    }

    /// The `idx` segment bytes (LF after every line).
    pub fn idx_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        for t in &self.targets {
            out.push_str(t);
            out.push('\n');
        }
        out.into_bytes()
    }
}

/// A copy of the map made of `entries` over `targets` in which the bytes of target `stream`
/// from `kept` on (data that never reached the disk) are aff4:UnknownData; also where the
/// first such byte is. Other targets' entries are kept as they are.
pub fn clip_to_stored(entries: &[MapEntry], targets: &[String], stream: &str, kept: u64) -> (MapBuilder, Option<u64>) {
    let mut b = MapBuilder::new();
    let mut lost_from = None;
    for e in entries {
        let Some(t) = targets.get(e.target_id as usize) else { continue };
        if t != stream || e.target_offset.saturating_add(e.length) <= kept {
            let id = b.target(t);
            b.push(e.mapped, e.length, id, e.target_offset);
            continue;
        }
        let keep = kept.saturating_sub(e.target_offset).min(e.length);
        if keep > 0 {
            let id = b.target(t);
            b.push(e.mapped, keep, id, e.target_offset);
        }
        let id = b.target(crate::vocab::UNKNOWN_DATA);
        b.push(e.mapped + keep, e.length - keep, id, e.mapped + keep);
        lost_from.get_or_insert(e.mapped + keep);
    }
    (b, lost_from)
}
