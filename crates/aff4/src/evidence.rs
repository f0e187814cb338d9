//! What a volume set's evidence is, read from its metadata and indexes without hashing: each
//! image's completion state (complete, interrupted at byte N, recovered, ranges never read or
//! unreadable), declared sizes that disagree, and what is missing from the set (parts, bytes
//! after the last directory). [`crate::verify`] adds what the hashes prove.

use crate::container::{Container, StreamKind};
use crate::map::RegionKind;
use crate::rdf::Node;
use crate::symbolic::Symbolic;
use crate::vocab;

/// Why evidence is not complete and intact; each cause has its own exit code in `pmem verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// A hash did not match, data could not be read, or declared sizes disagree: altered.
    Altered,
    /// Evidence is missing: a part of the set, bytes after the last directory, an interrupted,
    /// recovered or partial image, ranges that were never read or could not be read.
    Incomplete,
    /// Bytes of an image are covered by no checked hash, or nothing is verifiable at all.
    Unverified,
}

impl Cause {
    /// A short lower-case name (`altered`, `incomplete`, `unverified`) for text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Altered => "altered",
            Cause::Incomplete => "incomplete",
            Cause::Unverified => "unverified",
        }
    }
}

/// One reason the evidence is not complete and intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind of problem.
    pub cause: Cause,
    /// The image, stream or volume concerned.
    pub subject: String,
    /// The byte range of the image concerned, `[start, end)`, where there is one.
    pub range: Option<(u64, u64)>,
    /// What is wrong, for a person.
    pub message: String,
}

impl Finding {
    /// A finding about `subject`.
    pub fn new(cause: Cause, subject: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding { cause, subject: subject.into(), range: None, message: message.into() }
    }

    /// The same finding about bytes `[start, end)`.
    pub fn at(mut self, start: u64, end: u64) -> Finding {
        self.range = Some((start, end));
        self
    }
}

/// How complete an image's acquisition was, as its metadata and map record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Every byte was read.
    Complete,
    /// Stopped before the end (Ctrl-C, an error, a full disk); `at` is where, when recorded.
    Interrupted {
        /// The first byte not acquired.
        at: Option<u64>,
    },
    /// Rebuilt by `pmem recover` from a volume whose writer never closed it.
    Recovered,
    /// Complete except for ranges that could not be read or were never read.
    Partial,
}

impl State {
    /// For a person: `complete`, `interrupted at byte N`, `recovered`, `partial`.
    pub fn describe(&self) -> String {
        match self {
            State::Complete => "complete".into(),
            State::Interrupted { at: Some(n) } => format!("interrupted at byte {n}"),
            State::Interrupted { at: None } => "interrupted".into(),
            State::Recovered => "recovered (rebuilt from an unclosed volume)".into(),
            State::Partial => "partial (unreadable ranges)".into(),
        }
    }
}

/// What an image is, from its metadata and map.
#[derive(Debug, Clone)]
pub struct ImageState {
    /// The image URN.
    pub urn: String,
    /// The completion state.
    pub state: State,
    /// The bytes a reader gets (`pmem cat`): the data stream's size, if it opens.
    pub size: Option<u64>,
    /// Ranges recorded as never read (`aff4:UnknownData`), `[start, end)`.
    pub unknown: Vec<(u64, u64)>,
    /// Ranges recorded as unreadable (`aff4:UnreadableData`), `[start, end)`.
    pub unreadable: Vec<(u64, u64)>,
    /// Declared sizes that disagree with each other or with what the indexes hold.
    pub inconsistencies: Vec<Finding>,
}

impl ImageState {
    /// Findings that make this image incomplete or inconsistent (no hashing involved).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = self.inconsistencies.clone();
        match &self.state {
            State::Interrupted { at } => {
                let f = Finding::new(Cause::Incomplete, &self.urn, format!("acquisition {}", self.state.describe()));
                out.push(match (at, self.size) {
                    (Some(a), Some(s)) if *a < s => f.at(*a, s),
                    _ => f,
                });
            }
            State::Recovered => out.push(Finding::new(Cause::Incomplete, &self.urn, "recovered from a volume that was never closed")),
            State::Complete | State::Partial => {}
        }
        for (what, list) in [("never read (aff4:UnknownData)", &self.unknown), ("unreadable (aff4:UnreadableData)", &self.unreadable)] {
            if let (Some(first), Some(last)) = (list.first(), list.last()) {
                let bytes: u64 = list.iter().map(|(a, b)| b - a).sum();
                out.push(
                    Finding::new(
                        Cause::Incomplete,
                        &self.urn,
                        format!(
                            "{bytes} bytes in {} range(s) {what}, first {:#x}-{:#x}{}",
                            list.len(),
                            first.0,
                            first.1,
                            if list.len() > 1 { format!(", last {:#x}-{:#x}", last.0, last.1) } else { String::new() }
                        ),
                    )
                    .at(first.0, last.1),
                );
            }
        }
        out
    }
}

/// Pushes `[start, end)` onto a sorted list of ranges, merging with the last when they touch.
pub(crate) fn push_range(list: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if start >= end {
        return;
    }
    match list.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => list.push((start, end)),
    }
}

/// The state of image `urn` in `c`: its recorded completion, its map's symbolic ranges, and
/// whether its declared sizes agree with its data stream and with the bevies held.
pub fn image_state(c: &Container, urn: &str) -> ImageState {
    let g = c.graph();
    let completion = g.aff4(urn, "acquisitionCompletionState").map(|n| n.value().to_string()).unwrap_or_default();
    let lower = completion.to_lowercase();
    let prefix_len = g.values(urn, vocab::PREFIX_HASH_LENGTH).next().and_then(Node::as_u64);
    let full_hash = !c.declared_hashes(urn).iter().all(|(k, _)| k.contains("[.."));
    let stopped_at = lower.split("stopped at byte ").nth(1).and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next()?.parse().ok());
    let mut st = ImageState {
        urn: urn.to_string(),
        state: State::Complete,
        size: None,
        unknown: Vec::new(),
        unreadable: Vec::new(),
        inconsistencies: Vec::new(),
    };
    if lower.starts_with("recovered") {
        st.state = State::Recovered;
    } else if lower.starts_with("interrupted") || lower.starts_with("incomplete") || (prefix_len.is_some() && !full_hash) {
        st.state = State::Interrupted { at: stopped_at.or(prefix_len) };
    }
    let declared = g.aff4(urn, "size").and_then(Node::as_u64);
    match c.open_stream(urn) {
        Ok(s) => {
            st.size = Some(s.size());
            if let Some(d) = declared {
                if d != s.size() {
                    st.inconsistencies.push(Finding::new(
                        Cause::Altered,
                        urn,
                        format!("the image declares aff4:size {d} but its data stream holds {} bytes", s.size()),
                    ));
                }
            }
        }
        Err(e) => st.inconsistencies.push(Finding::new(Cause::Altered, urn, format!("its data cannot be opened: {e}"))),
    }
    let mut data: Vec<String> = g.values(urn, vocab::DATA_STREAM).filter_map(|n| n.as_iri().map(String::from)).collect();
    if data.is_empty() {
        data.push(urn.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    for (i, ds) in data.iter().enumerate() {
        // Each data stream of a striped image is the whole image; the first one is what is read.
        stream_layout(c, ds, &mut st, i == 0, &mut seen);
    }
    if st.state == State::Complete && !(st.unknown.is_empty() && st.unreadable.is_empty()) {
        st.state = State::Partial;
    }
    st
}

/// Checks the declared sizes of stream `s` (a Map, an ImageStream) and of the streams it reads
/// against what they hold, each once (`seen`: maps that read each other cost one visit each),
/// and collects its symbolic unknown/unreadable ranges when `collect` is set.
fn stream_layout(c: &Container, s: &str, st: &mut ImageState, collect: bool, seen: &mut std::collections::HashSet<String>) {
    if !seen.insert(s.to_string()) {
        return;
    }
    match c.kind_of(s) {
        Some(StreamKind::Map) => {
            let m = match c.open_map(s) {
                Ok(m) => m,
                Err(e) => {
                    st.inconsistencies.push(Finding::new(Cause::Altered, s, format!("the map cannot be read: {e}")));
                    return;
                }
            };
            let size = crate::stream::Stream::size(&*m);
            let end = m.entries().last().map(|e| e.mapped + e.length).unwrap_or(0);
            if end > size {
                st.inconsistencies.push(
                    Finding::new(Cause::Altered, s, format!("the map declares aff4:size {size} but its entries reach byte {end}"))
                        .at(size, end),
                );
            }
            if collect {
                for r in m.regions() {
                    let RegionKind::Mapped(id) = r.kind else { continue };
                    match m.target_urns().get(id as usize).and_then(|t| Symbolic::from_iri(t)) {
                        Some(Symbolic::Unknown) => push_range(&mut st.unknown, r.start, r.start + r.length),
                        Some(Symbolic::Unreadable) => push_range(&mut st.unreadable, r.start, r.start + r.length),
                        _ => {}
                    }
                }
            }
            // Each stream target once: its own layout, and its size for the entries below.
            let sizes: Vec<Option<u64>> = m
                .target_urns()
                .iter()
                .map(|t| {
                    if Symbolic::from_iri(t).is_some() {
                        return None;
                    }
                    stream_layout(c, t, st, false, seen);
                    c.open_stream(t).ok().map(|ts| ts.size())
                })
                .collect();
            // Every entry must lie inside its target.
            for e in m.entries() {
                let Some(Some(tsize)) = sizes.get(e.target_id as usize) else { continue };
                let tend = e.target_offset.saturating_add(e.length);
                if tend > *tsize {
                    let t = &m.target_urns()[e.target_id as usize];
                    st.inconsistencies.push(
                        Finding::new(
                            Cause::Altered,
                            s,
                            format!("the entry at {:#x} reads {t} up to byte {tend}, which holds {tsize} bytes", e.mapped),
                        )
                        .at(e.mapped, e.mapped + e.length),
                    );
                    break;
                }
            }
        }
        Some(StreamKind::ImageStream) => match c.image_stream_reader(s) {
            Ok(r) => match r.check_layout() {
                Ok(()) => {}
                Err(e @ crate::Error::NotFound(_)) => st.inconsistencies.push(Finding::new(Cause::Incomplete, s, e.to_string())),
                Err(e) => st.inconsistencies.push(Finding::new(Cause::Altered, s, e.to_string())),
            },
            Err(e) => st.inconsistencies.push(Finding::new(Cause::Altered, s, e.to_string())),
        },
        _ => {}
    }
}
