//! Verification of every hash a volume declares (AFF4.md §8): linear stream and image hashes,
//! per-chunk block hashes, BlockHashes objects, map segment hashes, Block-Map hashes (single
//! and striped), the pre-standard equivalents, and the Evimetry index hash. Constructions no
//! public code reproduces are reported as not checked, never as passed.

use crate::container::{Container, StreamKind};
use crate::error::{Error, Result};
use crate::evidence::{Cause, Finding, ImageState};
use crate::hash::{hex, unhex, HashAlgo};
use crate::map::RegionKind;
use crate::parallel::for_each_block;
use crate::rdf::Node;
use crate::vocab::{self, legacy, AFF4_LEGACY};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Recomputed value equals the declared one.
    Pass,
    /// Recomputed value differs.
    Fail {
        /// Declared value.
        expected: String,
        /// Recomputed value.
        actual: String,
    },
    /// Not verifiable (unknown construction); says why.
    NotChecked(String),
    /// The data needed could not be read.
    Error(String),
}

/// One verification result.
#[derive(Debug, Clone)]
pub struct Check {
    /// The object whose hash this is.
    pub subject: String,
    /// What was checked, e.g. `aff4:hash SHA1 (linear)`.
    pub what: String,
    /// Result.
    pub status: Status,
    /// What a pass proves about the subject's bytes.
    pub scope: Scope,
}

/// What a passing check proves about the bytes of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing by itself (an auxiliary hash: BlockHashes objects, index hashes).
    Nothing,
    /// Every byte of the subject as a reader gets it (a linear hash).
    Whole,
    /// The first N bytes (`aff4:prefixHash`).
    Prefix(u64),
    /// A map's entries and targets (mapHash, blockMapHash, or point and idx hashes together).
    Layout,
    /// A map's entries only (mapPointHash).
    MapPoints,
    /// A map's target list only (mapIdxHash).
    MapTargets,
    /// N chunks of an ImageStream, each by its block hash.
    Chunks(u64),
}

impl Check {
    fn proves(mut self, scope: Scope) -> Check {
        self.scope = scope;
        self
    }
}

/// Options for [`verify`].
#[derive(Clone)]
pub struct VerifyOptions {
    /// Threads for reading streams.
    pub threads: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { threads: crate::parallel::default_threads() }
    }
}

fn cmp(subject: &str, what: String, expected: &str, actual: &[u8]) -> Check {
    let a = hex(actual);
    let status = if expected.trim().eq_ignore_ascii_case(&a) {
        Status::Pass
    } else {
        Status::Fail { expected: expected.trim().to_lowercase(), actual: a }
    };
    Check { subject: subject.to_string(), what, status, scope: Scope::Nothing }
}

fn not_checked(subject: &str, what: impl Into<String>, why: impl Into<String>) -> Check {
    Check { subject: subject.to_string(), what: what.into(), status: Status::NotChecked(why.into()), scope: Scope::Nothing }
}

fn err(subject: &str, what: String, e: impl std::fmt::Display) -> Check {
    Check { subject: subject.to_string(), what, status: Status::Error(e.to_string()), scope: Scope::Nothing }
}

/// The most bytes a linear hash is computed over: a declared size beyond it (256 TiB, more than
/// x86-64 or arm64 address) is refused rather than read for days.
pub const MAX_HASHED: u64 = 1 << 48;

/// Hashes `[0, size)` of a stream with several algorithms in one parallel pass.
///
/// # Errors
/// Read errors.
pub fn hash_stream(c: &Container, urn: &str, algos: &[HashAlgo], threads: usize, progress: &dyn Fn(u64)) -> Result<Vec<Vec<u8>>> {
    hash_prefix(c, urn, u64::MAX, algos, threads, progress)
}

/// Hashes the first `len` bytes of a stream (all of it if shorter).
///
/// # Errors
/// Read errors.
pub fn hash_prefix(c: &Container, urn: &str, len: u64, algos: &[HashAlgo], threads: usize, progress: &dyn Fn(u64)) -> Result<Vec<Vec<u8>>> {
    let s = c.open_stream(urn)?;
    let n = s.size().min(len);
    if n > MAX_HASHED {
        return Err(Error::corrupt(urn, 0, format!("declares {n} bytes, more than any physical address space (2^48): not hashed")));
    }
    let mut hs: Vec<_> = algos.iter().map(|a| a.hasher()).collect();
    for_each_block(&*s, 0, n, crate::parallel::BLOCK, threads, |_, b| {
        if hs.len() > 1 && b.len() >= 1 << 20 {
            std::thread::scope(|sc| {
                for h in hs.iter_mut() {
                    sc.spawn(move || h.update(b));
                }
            });
        } else {
            for h in hs.iter_mut() {
                h.update(b);
            }
        }
        progress(b.len() as u64);
        Ok(())
    })?;
    Ok(hs.into_iter().map(|h| h.finish()).collect())
}

/// What [`verify`] found: every check, and every reason the evidence is not complete and
/// intact (the verdict is the gravest of them).
#[derive(Debug, Clone)]
pub struct Report {
    /// Each hash recomputed.
    pub checks: Vec<Check>,
    /// Why the evidence is not complete and intact: failed checks are not repeated here.
    pub findings: Vec<Finding>,
    /// Each image (or top-level stream of a volume without images) with its state and the bytes
    /// its checked hashes cover.
    pub images: Vec<ImageReport>,
}

/// One image as verify sees it.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// State from the metadata and map.
    pub state: ImageState,
    /// Bytes of the image covered by at least one passing hash.
    pub covered: u64,
}

impl Report {
    /// `None` when every image is complete, every byte of each is covered by a passing hash,
    /// every declared size agrees and every check passed; else the gravest cause.
    pub fn verdict(&self) -> Option<Cause> {
        // Data that is not in the opened volumes (a missing part) is missing, not altered.
        let missing = |c: &Check| matches!(&c.status, Status::Error(e) if e.starts_with("not found: "));
        let failed = self.checks.iter().any(|c| matches!(c.status, Status::Fail { .. } | Status::Error(_)) && !missing(c));
        let worst = self.findings.iter().map(|f| f.cause).chain(self.checks.iter().filter(|c| missing(c)).map(|_| Cause::Incomplete)).min();
        if failed {
            Some(Cause::Altered)
        } else {
            worst
        }
    }
}

/// Verifies everything `c` declares and judges whether the evidence is complete and intact.
/// `progress` receives byte counts as streams are read.
pub fn verify(c: &Container, opts: &VerifyOptions, progress: &dyn Fn(u64)) -> Report {
    let checks = checks(c, opts, progress);
    let mut findings: Vec<Finding> = c.problems().to_vec();
    let mut images = Vec::new();
    for urn in evidence_roots(c) {
        let state = crate::evidence::image_state(c, &urn);
        findings.extend(state.findings());
        let size = state.size.unwrap_or(0);
        let uncovered = uncovered(c, &checks, &urn, size);
        if let (Some(first), Some(last)) = (uncovered.first(), uncovered.last()) {
            let bytes: u64 = uncovered.iter().map(|(a, b)| b - a).sum();
            let what = if bytes == size {
                "no checked hash covers any of its bytes".to_string()
            } else {
                format!("{bytes} of its {size} bytes, first {:#x}-{:#x}, are covered by no checked hash", first.0, first.1)
            };
            findings.push(Finding::new(Cause::Unverified, &urn, what).at(first.0, last.1));
        }
        let covered = size - uncovered.iter().map(|(a, b)| b - a).sum::<u64>();
        images.push(ImageReport { state, covered });
    }
    if images.is_empty() && checks.is_empty() {
        findings.push(Finding::new(
            Cause::Unverified,
            c.volumes().first().map(|v| v.path.clone()).unwrap_or_default(),
            "nothing verifiable: no image and no hash",
        ));
    }
    Report { checks, findings, images }
}

/// The images of `c`; for a volume without images, its Maps and ImageStreams that no map reads.
fn evidence_roots(c: &Container) -> Vec<String> {
    let images: Vec<String> = c.images().into_iter().map(|i| i.urn).collect();
    if !images.is_empty() {
        return images;
    }
    let streams: Vec<String> =
        c.streams().into_iter().filter(|s| matches!(s.kind, StreamKind::Map | StreamKind::ImageStream)).map(|s| s.urn).collect();
    let mut targets = std::collections::BTreeSet::new();
    for s in &streams {
        if let Ok(m) = c.open_map(s) {
            targets.extend(m.target_urns().iter().cloned());
        }
    }
    streams.into_iter().filter(|s| !targets.contains(s)).collect()
}

/// The ranges of `[0, size)` of image (or stream) `urn` that no passing check covers.
fn uncovered(c: &Container, checks: &[Check], urn: &str, size: u64) -> Vec<(u64, u64)> {
    let passed = |s: &str, f: &dyn Fn(Scope) -> bool| checks.iter().any(|k| k.subject == s && k.status == Status::Pass && f(k.scope));
    let failed = |s: &str| checks.iter().any(|k| k.subject == s && matches!(k.status, Status::Fail { .. } | Status::Error(_)));
    let whole = |s: &str| passed(s, &|x| x == Scope::Whole);
    // An ImageStream is authenticated by a linear hash, or by a block hash of every chunk.
    let stream_ok = |s: &str| {
        whole(s)
            || (!failed(s)
                && c.image_stream_reader(s).is_ok_and(|r| {
                    let n = r.chunk_count();
                    passed(s, &|x| x == Scope::Chunks(n))
                }))
    };
    let all = vec![(0, size)];
    if size == 0 || whole(urn) {
        return Vec::new();
    }
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for k in checks.iter().filter(|k| k.subject == urn && k.status == Status::Pass) {
        if let Scope::Prefix(n) = k.scope {
            covered.push((0, n.min(size)));
        }
    }
    let mut data: Vec<String> = c.graph().values(urn, vocab::DATA_STREAM).filter_map(|n| n.as_iri().map(String::from)).collect();
    if data.is_empty() {
        data.push(urn.to_string());
    }
    for ds in &data {
        match c.kind_of(ds) {
            _ if whole(ds) && ds != urn => return Vec::new(),
            Some(StreamKind::ImageStream) if stream_ok(ds) => return Vec::new(),
            Some(StreamKind::Map) => {
                let layout = passed(ds, &|x| x == Scope::Layout)
                    || (passed(ds, &|x| x == Scope::MapPoints) && passed(ds, &|x| x == Scope::MapTargets));
                let Ok(m) = c.open_map(ds) else { continue };
                if !layout || failed(ds) {
                    continue;
                }
                let gap_known = c
                    .graph()
                    .aff4(ds, "mapGapDefaultStream")
                    .and_then(|n| n.as_iri())
                    .is_none_or(|g| crate::symbolic::Symbolic::from_iri(g).is_some());
                // Each target once (a memory map has many regions over few targets).
                let target_ok: Vec<bool> = m
                    .target_urns()
                    .iter()
                    .map(|t| {
                        crate::symbolic::Symbolic::from_iri(t).is_some()
                            || whole(t)
                            || (c.kind_of(t) == Some(StreamKind::ImageStream) && stream_ok(t))
                    })
                    .collect();
                let mut ok: Vec<(u64, u64)> = Vec::new();
                for r in m.regions() {
                    let good = match r.kind {
                        RegionKind::Gap => gap_known,
                        RegionKind::Mapped(id) => target_ok.get(id as usize).copied().unwrap_or(false),
                    };
                    if good {
                        crate::evidence::push_range(&mut ok, r.start, r.start + r.length);
                    }
                }
                covered.extend(ok);
            }
            _ => {}
        }
    }
    if covered.is_empty() {
        return all;
    }
    covered.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in covered {
        crate::evidence::push_range(&mut merged, a, b);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    for (a, b) in merged {
        if a > pos {
            out.push((pos, a.min(size)));
        }
        pos = pos.max(b);
    }
    if pos < size {
        out.push((pos, size));
    }
    out.retain(|(a, b)| a < b);
    out
}

/// Recomputes every hash `c` declares. `progress` receives byte counts as streams are read.
pub fn checks(c: &Container, opts: &VerifyOptions, progress: &dyn Fn(u64)) -> Vec<Check> {
    let g = c.graph();
    let mut checks = Vec::new();
    // blockhash digests recomputed per (stream, algo) for the Block-Map hashes.
    let mut blockhash_digest: BTreeMap<(String, HashAlgo), Vec<u8>> = BTreeMap::new();

    for s in g.subjects() {
        let hashes: Vec<(String, String)> = g
            .properties(s)
            .iter()
            .filter(|(p, _)| p == vocab::HASH || *p == format!("{AFF4_LEGACY}hash"))
            .filter_map(|(_, o)| match o {
                Node::Literal { value, datatype } => Some((datatype.clone(), value.clone())),
                _ => None,
            })
            .collect();
        if hashes.is_empty() {
            continue;
        }
        // BlockHashes objects: <S>/blockhash.<a>
        if g.has_type(s, vocab::BLOCK_HASHES) {
            let Some((stream, algo)) = s.rsplit_once("/blockhash.").and_then(|(st, a)| Some((st.to_string(), HashAlgo::from_name(a)?)))
            else {
                checks.push(not_checked(s, "BlockHashes", "unrecognised subject name"));
                continue;
            };
            for (dt, val) in &hashes {
                let what = format!("BlockHashes {} of the {} block hashes", crate::rdf::local_name(dt), algo.name());
                let Some(h) = HashAlgo::from_datatype(dt) else {
                    checks.push(not_checked(s, what, "unknown datatype"));
                    continue;
                };
                match all_block_hashes(c, &stream, algo) {
                    Ok(Some(raw)) => {
                        let d = h.digest(&raw);
                        if h == HashAlgo::Sha512 {
                            blockhash_digest.insert((stream.clone(), algo), d.clone());
                        }
                        checks.push(cmp(s, what, val, &d));
                    }
                    Ok(None) => checks.push(err(s, what, "block-hash segments are missing")),
                    Err(e) => checks.push(err(s, what, e)),
                }
            }
            continue;
        }
        let mut linear: Vec<(HashAlgo, String)> = Vec::new();
        for (dt, val) in &hashes {
            let l = crate::rdf::local_name(dt);
            if l.starts_with("blockMapHash") {
                checks.push(image_block_map_hash(c, s, &l, val));
            } else if let Some(a) = HashAlgo::from_datatype(dt) {
                linear.push((a, val.clone()));
            } else {
                checks.push(not_checked(s, format!("aff4:hash {l}"), format!("unknown hash datatype {dt}")));
            }
        }
        if !linear.is_empty() {
            let algos: Vec<HashAlgo> = linear.iter().map(|(a, _)| *a).collect();
            let kind = if c.kind_of(s) == Some(StreamKind::ImageStream) { "linear, stream" } else { "linear, virtual image" };
            match hash_stream(c, s, &algos, opts.threads, progress) {
                Ok(ds) => {
                    for ((a, val), d) in linear.iter().zip(ds) {
                        checks.push(cmp(s, format!("aff4:hash {} ({kind})", a.name().to_uppercase()), val, &d).proves(Scope::Whole));
                    }
                }
                Err(e) => {
                    for (a, _) in &linear {
                        checks.push(err(s, format!("aff4:hash {} ({kind})", a.name().to_uppercase()), &e));
                    }
                }
            }
        }
    }

    // pmem's hashes of an interrupted image's first bytes.
    for s in g.subjects() {
        let prefix: Vec<(String, String)> = g
            .values(s, vocab::PREFIX_HASH)
            .filter_map(|o| match o {
                Node::Literal { value, datatype } => Some((datatype.clone(), value.clone())),
                _ => None,
            })
            .collect();
        if prefix.is_empty() {
            continue;
        }
        let len = g.values(s, vocab::PREFIX_HASH_LENGTH).next().and_then(|n| n.value().trim().parse::<u64>().ok());
        let size = c.open_stream(s).map(|st| st.size());
        let mut algos = Vec::new();
        for (dt, val) in &prefix {
            let what =
                format!("aff4:prefixHash {} (first {} bytes)", crate::rdf::local_name(dt), len.map_or("?".into(), |n| n.to_string()));
            match (HashAlgo::from_datatype(dt), len, &size) {
                (None, _, _) => checks.push(not_checked(s, what, format!("unknown hash datatype {dt}"))),
                (_, None, _) => checks.push(err(s, what, "aff4:prefixHashLength is missing or not a number")),
                (_, _, Err(e)) => checks.push(err(s, what, e)),
                (_, Some(n), Ok(sz)) if n > *sz => checks.push(err(s, what, format!("longer than the image ({sz} bytes)"))),
                (Some(a), Some(_), Ok(_)) => algos.push((a, val.clone(), what)),
            }
        }
        if let (Some(n), false) = (len, algos.is_empty()) {
            let list: Vec<HashAlgo> = algos.iter().map(|(a, _, _)| *a).collect();
            match hash_prefix(c, s, n, &list, opts.threads, progress) {
                Ok(ds) => {
                    checks.extend(algos.iter().zip(ds).map(|((_, val, what), d)| cmp(s, what.clone(), val, &d).proves(Scope::Prefix(n))))
                }
                Err(e) => checks.extend(algos.iter().map(|(_, _, what)| err(s, what.clone(), &e))),
            }
        }
    }

    // Per-chunk block hashes, legacy stream blockHashesHash, index hashes.
    for s in g.subjects() {
        if c.kind_of(s) != Some(StreamKind::ImageStream) {
            continue;
        }
        let Ok(reader) = c.image_stream_reader(s) else { continue };
        if reader.bevy_count() == 0 || c.segments().locate(&crate::image_stream::bevy_urn(s, 0)).is_none() {
            continue;
        }
        for (algo, tally) in chunk_block_hashes(&reader) {
            match tally {
                Ok((n, bad)) => checks.push(Check {
                    scope: Scope::Chunks(n),
                    subject: s.clone(),
                    what: format!("per-chunk {} block hashes ({n} chunks)", algo.name()),
                    status: if bad.is_empty() {
                        Status::Pass
                    } else {
                        Status::Fail {
                            expected: "declared block digests".into(),
                            actual: format!(
                                "{} chunk(s) differ: {}{}",
                                bad.len(),
                                bad.iter()
                                    .take(4)
                                    .map(|&k| locate_chunk(c, s, k, reader.params().chunk_size as u64))
                                    .collect::<Vec<_>>()
                                    .join("; "),
                                if bad.len() > 4 { "; …" } else { "" }
                            ),
                        }
                    },
                }),
                Err(e) => checks.push(err(s, format!("per-chunk {} block hashes", algo.name()), e)),
            }
        }
        for n in g.values(s, legacy::BLOCK_HASHES_HASH) {
            if let Node::Literal { value, datatype } = n {
                let what = format!("legacy blockHashesHash {}", crate::rdf::local_name(datatype));
                match HashAlgo::from_datatype(datatype) {
                    Some(a) => match all_block_hashes(c, s, a) {
                        Ok(Some(raw)) => checks.push(cmp(s, what, value, &a.digest(&raw))),
                        Ok(None) => checks.push(err(s, what, "block-hash segments are missing")),
                        Err(e) => checks.push(err(s, what, e)),
                    },
                    None => checks.push(not_checked(s, what, "unknown datatype")),
                }
            }
        }
        if let Some(v) = g.values(s, vocab::IMAGE_STREAM_INDEX_HASH).next() {
            let what = "Evimetry imageStreamIndexHash (SHA512 of the bevy indexes)".to_string();
            match reader.index_segments() {
                Ok(raw) => checks.push(cmp(s, what, v.value(), &HashAlgo::Sha512.digest(&raw))),
                Err(e) => checks.push(err(s, what, e)),
            }
        }
        if g.values(s, vocab::IMAGE_STREAM_HASH).next().is_some() {
            checks.push(not_checked(s, "Evimetry imageStreamHash", "construction not published; no public code reproduces it"));
        }
    }

    // Maps.
    for s in g.subjects() {
        if c.kind_of(s) != Some(StreamKind::Map) {
            continue;
        }
        checks.extend(map_checks(c, s, &blockhash_digest));
        if g.values(s, legacy::LINEAR_BLOCK_HASH).next().is_some() {
            checks.push(not_checked(s, "pre-standard linearBlockHash", "construction not reproducible from public code"));
        }
    }
    checks
}

fn all_block_hashes(c: &Container, stream: &str, algo: HashAlgo) -> Result<Option<Vec<u8>>> {
    let r = c.image_stream_reader(stream)?;
    let mut out = Vec::new();
    for b in 0..r.bevy_count() {
        match r.block_hash_segment(b, algo.name())? {
            Some(seg) => out.extend(seg),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Where chunk `k` of ImageStream `s` is: its bytes in the stream, and the image bytes each
/// Map over the stream reads from it (what an examiner needs to know of a corrupted chunk).
fn locate_chunk(c: &Container, s: &str, k: u64, cs: u64) -> String {
    let (a, b) = (k * cs, (k + 1) * cs);
    let mut out = format!("chunk {k} (stream bytes {a:#x}-{b:#x}");
    for m in c.streams().iter().filter(|x| x.kind == StreamKind::Map) {
        let Ok(map) = c.open_map(&m.urn) else { continue };
        let Some(id) = map.target_urns().iter().position(|t| t == s) else { continue };
        let places: Vec<String> = map
            .entries()
            .iter()
            .filter(|e| e.target_id as usize == id && e.target_offset < b && e.target_offset + e.length > a)
            .take(4)
            .map(|e| {
                let from = e.mapped + a.saturating_sub(e.target_offset);
                let to = e.mapped + (b.min(e.target_offset + e.length) - e.target_offset);
                format!("{from:#x}-{to:#x}")
            })
            .collect();
        if !places.is_empty() {
            out.push_str(&format!("; bytes {} of {}", places.join(", "), m.urn));
        }
    }
    out.push(')');
    out
}

/// Per-chunk block-hash results of one algorithm: chunks checked and the ones that differ,
/// or why the check could not run.
type ChunkTally = (HashAlgo, std::result::Result<(u64, Vec<u64>), String>);

/// Checks the per-chunk digests of every algorithm that has block-hash segments, decoding each
/// chunk once for all of them.
fn chunk_block_hashes(r: &crate::image_stream::ImageStreamReader) -> Vec<ChunkTally> {
    struct Tally {
        algo: HashAlgo,
        n: u64,
        bad: Vec<u64>,
        end: Option<std::result::Result<(), String>>,
    }
    let cpb = r.params().chunks_per_bevy as u64;
    let cs = r.params().chunk_size as usize;
    let total = r.chunk_count();
    let mut tallies: Vec<Tally> = Vec::new();
    for algo in HashAlgo::ALL {
        match r.block_hash_segment(0, algo.name()) {
            Ok(None) => {}
            Ok(Some(_)) => tallies.push(Tally { algo, n: 0, bad: Vec::new(), end: None }),
            Err(e) => tallies.push(Tally { algo, n: 0, bad: Vec::new(), end: Some(Err(e.to_string())) }),
        }
    }
    'bevies: for b in 0..r.bevy_count() {
        let first = b * cpb;
        let count = cpb.min(total - first);
        let mut segs: Vec<Option<Vec<u8>>> = Vec::with_capacity(tallies.len());
        for t in tallies.iter_mut() {
            let mut seg = None;
            if t.end.is_none() {
                match r.block_hash_segment(b, t.algo.name()) {
                    Ok(Some(x)) if (x.len() as u64) >= count * t.algo.digest_len() as u64 => seg = Some(x),
                    Ok(Some(x)) => {
                        let what = format!("{} block-hash segment holds {} bytes, {count} digests expected", t.algo.name(), x.len());
                        t.end = Some(Err(Error::corrupt(format!("{} bevy {b}", r.params().urn), 0, what).to_string()));
                    }
                    // A bevy without its segment counts as a mismatch at its first chunk.
                    Ok(None) => {
                        t.bad.push(first);
                        t.end = Some(Ok(()));
                    }
                    Err(e) => t.end = Some(Err(e.to_string())),
                }
            }
            segs.push(seg);
        }
        if segs.iter().all(Option::is_none) {
            break;
        }
        // Chunks are taken two at a time, whose SHA-256 digests are computed together.
        let mut k = 0;
        while k < count {
            let mut chunks: Vec<Arc<Vec<u8>>> = Vec::with_capacity(2);
            let mut failed = None;
            for j in k..count.min(k + 2) {
                match r.chunk(first + j) {
                    // The padded final chunk is hashed whole.
                    Ok(c) if c.len() < cs => {
                        let mut p = c.to_vec();
                        p.resize(cs, 0);
                        chunks.push(Arc::new(p));
                    }
                    Ok(c) => chunks.push(c),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let bytes: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            for (t, seg) in tallies.iter_mut().zip(&segs) {
                if let Some(seg) = seg {
                    let len = t.algo.digest_len();
                    for (j, d) in (k..).zip(t.algo.digest_each(&bytes)) {
                        let at = j as usize * len;
                        if seg[at..at + len] != d[..] {
                            t.bad.push(first + j);
                        }
                        t.n += 1;
                    }
                }
            }
            if let Some(e) = failed {
                for (t, seg) in tallies.iter_mut().zip(&segs) {
                    if seg.is_some() {
                        t.end = Some(Err(e.to_string()));
                    }
                }
                break 'bevies;
            }
            k += chunks.len() as u64;
        }
    }
    tallies.into_iter().map(|t| (t.algo, t.end.unwrap_or(Ok(())).map(|_| (t.n, t.bad)))).collect()
}

fn map_checks(c: &Container, m: &str, bh: &BTreeMap<(String, HashAlgo), Vec<u8>>) -> Vec<Check> {
    let g = c.graph();
    let mut out = Vec::new();
    let seg = |name: &str| -> Result<Option<Vec<u8>>> {
        match c.segments().open(&format!("{m}/{name}"))? {
            Some(s) => Ok(Some(s.read_all(4 << 30)?)),
            None => Ok(None),
        }
    };
    let (map, idx, path) = match (seg("map"), seg("idx"), seg("mapPath")) {
        (Ok(a), Ok(b), Ok(p)) => (a.unwrap_or_default(), b.unwrap_or_default(), p),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            out.push(err(m, "map segments".into(), e));
            return out;
        }
    };
    let mut point_d = None;
    let mut idx_d = None;
    let mut path_d = None;
    for (local, data) in [("mapPointHash", Some(&map)), ("mapIdxHash", Some(&idx)), ("mapPathHash", path.as_ref())] {
        if let Some(Node::Literal { value, datatype }) = g.aff4(m, local) {
            let what = format!("{local} {}", crate::rdf::local_name(datatype));
            match (HashAlgo::from_datatype(datatype), data) {
                (Some(a), Some(d)) => {
                    let dg = a.digest(d);
                    let scope = match local {
                        "mapPointHash" => {
                            point_d = Some(dg.clone());
                            Scope::MapPoints
                        }
                        "mapIdxHash" => {
                            idx_d = Some(dg.clone());
                            Scope::MapTargets
                        }
                        _ => {
                            path_d = Some(dg.clone());
                            Scope::Nothing
                        }
                    };
                    out.push(cmp(m, what, value, &dg).proves(scope));
                }
                (None, _) => out.push(not_checked(m, what, "unknown datatype")),
                (_, None) => out.push(err(m, what, "mapPath segment is missing")),
            }
        }
    }
    if let Some(Node::Literal { value, datatype }) = g.aff4(m, "mapHash") {
        let what = format!("mapHash {} (of map||idx||mapPath)", crate::rdf::local_name(datatype));
        if let Some(a) = HashAlgo::from_datatype(datatype) {
            let mut h = a.hasher();
            h.update(&map);
            h.update(&idx);
            if let Some(p) = &path {
                h.update(p);
            }
            out.push(cmp(m, what, value, &h.finish()).proves(Scope::Layout));
        }
    }
    // Block-Map hash: standard aff4:blockMapHash, or pre-standard aff4L:blockHashesHash on the map.
    let std_bmh = g.values(m, vocab::BLOCK_MAP_HASH).next().cloned();
    let legacy_bmh = g.values(m, legacy::BLOCK_HASHES_HASH).next().cloned();
    if let Some(Node::Literal { value, datatype }) = std_bmh.or(legacy_bmh.clone()) {
        let what = format!(
            "{} {}",
            if legacy_bmh.is_some() { "legacy map blockHashesHash" } else { "blockMapHash" },
            crate::rdf::local_name(&datatype)
        );
        match block_map_hash(c, m, &datatype, legacy_bmh.is_some(), bh, point_d.as_deref(), idx_d.as_deref(), path_d.as_deref()) {
            Ok(d) => out.push(cmp(m, what, &value, &d).proves(Scope::Layout)),
            Err(e) => out.push(err(m, what, e)),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn block_map_hash(
    c: &Container,
    m: &str,
    datatype: &str,
    legacy_form: bool,
    bh: &BTreeMap<(String, HashAlgo), Vec<u8>>,
    point: Option<&[u8]>,
    idx: Option<&[u8]>,
    path: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let g = c.graph();
    let h = HashAlgo::from_datatype(datatype).ok_or_else(|| Error::Unsupported(format!("unknown datatype {datatype}")))?;
    // The stream of this map stored in the same volume as the map: by aff4:stored, else (for
    // volumes that do not say) where its first bevy is.
    let map_vol = c.segments().locate(&format!("{m}/map")).map(|(i, _)| i);
    let vol_urn = map_vol.and_then(|i| c.volumes().get(i)).map(|v| v.urn.clone());
    let mut candidates: Vec<String> =
        g.values(m, vocab::DEPENDENT_STREAM).chain(g.values(m, legacy::CONTAINS)).filter_map(|n| n.as_iri().map(String::from)).collect();
    candidates.sort();
    let stored_here = |s: &String| {
        vol_urn
            .as_deref()
            .is_some_and(|v| g.values(s, vocab::STORED).chain(g.values(s, &format!("{AFF4_LEGACY}stored"))).any(|n| n.value() == v))
    };
    let bevy_here = |s: &String| c.segments().locate(&crate::image_stream::bevy_urn(s, 0)).map(|(i, _)| i) == map_vol;
    let stream = candidates
        .iter()
        .find(|s| stored_here(s))
        .or_else(|| candidates.iter().find(|s| bevy_here(s)))
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("{m}: no dependent stream stored beside the map")))?;
    let mut hasher = h.hasher();
    for a in HashAlgo::ALL {
        if legacy_form {
            let v = g.values(&stream, legacy::BLOCK_HASHES_HASH).find_map(|n| match n {
                Node::Literal { value, datatype } if HashAlgo::from_datatype(datatype) == Some(a) => Some(value.clone()),
                _ => None,
            });
            if let Some(v) = v {
                let raw =
                    all_block_hashes(c, &stream, a)?.ok_or_else(|| Error::NotFound(format!("{stream}: {} block hashes", a.name())))?;
                let d = a.digest(&raw);
                if unhex(&v).as_deref() != Some(&d[..]) {
                    return Err(Error::corrupt(&stream, 0, format!("{} blockHashesHash does not match its segments", a.name())));
                }
                hasher.update(&d);
            }
        } else {
            let subject = format!("{stream}/blockhash.{}", a.name());
            if !g.has_type(&subject, vocab::BLOCK_HASHES) {
                continue;
            }
            let d = match bh.get(&(stream.clone(), a)) {
                Some(d) => d.clone(),
                None => {
                    let raw =
                        all_block_hashes(c, &stream, a)?.ok_or_else(|| Error::NotFound(format!("{stream}: {} block hashes", a.name())))?;
                    HashAlgo::Sha512.digest(&raw)
                }
            };
            hasher.update(&d);
        }
    }
    for part in [point, idx, path].into_iter().flatten() {
        hasher.update(part);
    }
    Ok(hasher.finish())
}

fn image_block_map_hash(c: &Container, img: &str, local: &str, expected: &str) -> Check {
    let g = c.graph();
    let what = format!("aff4:hash {local} (Block-Map)");
    let mut maps: Vec<String> = g.values(img, vocab::DATA_STREAM).filter_map(|n| n.as_iri().map(String::from)).collect();
    maps.sort();
    let values: Vec<Option<String>> =
        maps.iter().map(|m| g.values(m, vocab::BLOCK_MAP_HASH).next().map(|n| n.value().to_string())).collect();
    if maps.is_empty() || values.iter().any(|v| v.is_none()) {
        return not_checked(img, what, "a data stream has no blockMapHash");
    }
    // The maps' own values are checked separately; here they are combined.
    if maps.len() == 1 {
        let v = values[0].clone().unwrap_or_default();
        return cmp(img, format!("{what}, equal to the map's blockMapHash"), expected, &unhex(&v).unwrap_or_default());
    }
    let h = if local.ends_with("SHA256") { HashAlgo::Sha256 } else { HashAlgo::Sha512 };
    let mut hasher = h.hasher();
    for v in values.iter().flatten() {
        hasher.update(&unhex(v).unwrap_or_default());
    }
    cmp(img, format!("{what}, striped: H(blockMapHash of each map, by URN)"), expected, &hasher.finish())
}

/// True when every check passed or was informational; false on any failure or read error.
pub fn all_ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| matches!(c.status, Status::Pass | Status::NotChecked(_)))
}
