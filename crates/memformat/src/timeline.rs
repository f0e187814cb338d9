//! When each part of a memory image was read: per window of the physical address space, the
//! first read's start and the last read's end, in nanoseconds of a monotonic clock since the
//! acquisition began (with its wall-clock start), so that an analyst can tell which pages were
//! captured together and which seconds apart ("smear"). Stored in the volume as a JSON file
//! linked from the image (`aff4:readTimeline`), shown by `pmem info`, exported with the image.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Width of a window of the address space.
pub const WINDOW: u64 = 64 << 20;

/// The name of the timeline's file in the volume (and of its export).
pub const NAME: &str = "read-timeline.json";

/// Read times being collected.
pub struct Timeline {
    t0: Instant,
    wall0: String,
    windows: BTreeMap<u64, (u64, u64)>,
}

impl Timeline {
    /// A timeline whose clock starts now (`wall` is the wall-clock time of now).
    pub fn start(wall: String) -> Timeline {
        Timeline { t0: Instant::now(), wall0: wall, windows: BTreeMap::new() }
    }

    /// Physical `[phys, phys+len)` was read between `from` and `to`.
    pub fn record(&mut self, phys: u64, len: u64, from: Instant, to: Instant) {
        let (a, b) = (self.ns(from), self.ns(to));
        let mut w = phys - phys % WINDOW;
        while w < phys.saturating_add(len.max(1)) {
            let e = self.windows.entry(w).or_insert((a, b));
            e.0 = e.0.min(a);
            e.1 = e.1.max(b);
            w = match w.checked_add(WINDOW) {
                Some(n) => n,
                None => break,
            };
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.t0).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The table as JSON: `{"window", "clock", "started", "windows": [[start, first_ns, last_ns]…]}`.
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = self.windows.iter().map(|(w, (a, b))| json!([w, a, b])).collect();
        json!({
            "window": WINDOW,
            "clock": "monotonic nanoseconds since the acquisition started",
            "started": self.wall0,
            "windows": rows,
        })
        .to_string()
    }
}

/// A read timeline as stored, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Window width.
    pub window: u64,
    /// Wall-clock start.
    pub started: String,
    /// Windows read.
    pub windows: usize,
    /// Seconds from the start to the end of the last read.
    pub span_s: f64,
    /// The window whose reads spread over the longest time: (start address, seconds).
    pub longest: Option<(u64, f64)>,
}

/// Parses a stored timeline (`ctx` names it in errors).
///
/// # Errors
/// Not JSON, or not a table of `[start, first_ns, last_ns]` rows.
pub fn summarise(bytes: &[u8], ctx: &str) -> Result<Summary, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("{ctx}: {e}"))?;
    let window = v["window"].as_u64().ok_or_else(|| format!("{ctx}: no window width"))?;
    let rows = v["windows"].as_array().ok_or_else(|| format!("{ctx}: no windows"))?;
    let mut span = 0u64;
    let mut longest: Option<(u64, u64)> = None;
    for r in rows {
        let (Some(w), Some(a), Some(b)) = (r[0].as_u64(), r[1].as_u64(), r[2].as_u64()) else {
            return Err(format!("{ctx}: a row is not [start, first_ns, last_ns]: {r}"));
        };
        span = span.max(b);
        let d = b.saturating_sub(a);
        if longest.is_none_or(|(_, l)| d > l) {
            longest = Some((w, d));
        }
    }
    Ok(Summary {
        window,
        started: v["started"].as_str().unwrap_or_default().to_string(),
        windows: rows.len(),
        span_s: span as f64 / 1e9,
        longest: longest.map(|(w, d)| (w, d as f64 / 1e9)),
    })
}

/// The URN of the read timeline linked from memory image `image` (`aff4:readTimeline`).
pub fn urn_of(c: &aff4::Container, image: &str) -> Option<String> {
    crate::meta::MemoryImageMeta::link(c.graph(), image, crate::meta::prop::READ_TIMELINE).map(String::from)
}

/// The read timeline of memory image `image` in `c`, if the acquisition recorded one.
pub fn of_image(c: &aff4::Container, image: &str) -> Option<Result<Summary, String>> {
    let urn = urn_of(c, image)?;
    Some(c.open_stream(&urn).and_then(|s| s.read_all(64 << 20)).map_err(|e| format!("{urn}: {e}")).and_then(|b| summarise(&b, &urn)))
}

impl Summary {
    /// The summary as JSON (for `--json` outputs).
    pub fn to_json(&self) -> Value {
        json!({
            "window": self.window, "started": self.started, "windows": self.windows, "span_s": self.span_s,
            "longest_window": self.longest.map(|(w, d)| json!({"start": w, "seconds": d})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_keep_the_first_start_and_the_last_end() {
        let mut t = Timeline::start("2026-12-01T00:00:00Z".into());
        let t0 = t.t0;
        t.record(0x1000, 0x1000, t0 + Duration::from_millis(5), t0 + Duration::from_millis(6));
        t.record(0x2000, 0x1000, t0 + Duration::from_millis(1), t0 + Duration::from_millis(9));
        // Spanning two windows.
        t.record(WINDOW - 0x1000, 0x2000, t0 + Duration::from_millis(20), t0 + Duration::from_millis(30));
        let s = summarise(t.to_json().as_bytes(), "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.windows, 2);
        assert!((s.span_s - 0.030).abs() < 1e-9, "{s:?}");
        assert_eq!(s.longest.map(|(w, _)| w), Some(0));
        let v: Value = serde_json::from_str(&t.to_json()).unwrap_or_default();
        assert_eq!(v["windows"][0], json!([0, 1_000_000, 30_000_000]));
        assert_eq!(v["windows"][1], json!([WINDOW, 20_000_000, 30_000_000]));
        assert!(summarise(b"[1]", "bad").is_err());
    }
}
