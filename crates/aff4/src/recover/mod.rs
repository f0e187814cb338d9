//! Rebuilding a volume whose writer never closed it (SIGKILL, power loss, a crash of the host):
//! its members are found from the ZIP local headers ([`crate::zip::scan_local_headers`]), its
//! metadata from the last `information.turtle` and the last snapshot in its recovery journal,
//! and each image that was being written from the journal's map records: every complete bevy
//! comes back, the rest of the image is recorded as aff4:UnknownData, and the image's state is
//! "Recovered", so that verify says exactly what is covered. The broken file is only read.

pub mod encrypted;

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::image_stream::bevy_urn;
use crate::map::{MapEntry, MapReader, ENTRY_SIZE};
use crate::rdf::{Graph, Node};
use crate::stream::ReadAt;
use crate::urn::urn_to_member;
use crate::vocab::{self, RDF_TYPE, XSD};
use crate::volume::write::{create_file, JOURNAL_PREFIX};
use crate::zip::{scan_local_headers, LocalMember, ZipWriter, METHOD_DEFLATE, METHOD_STORED};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A map's progress, as the imager writes it to the recovery journal after each bevy: enough to
/// rebuild the stream's description and the map up to the bevies that reached the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRecord {
    /// The map's URN.
    pub map: String,
    /// The ImageStream it stores data in.
    pub stream: String,
    /// The stream's chunk size.
    pub chunk_size: u32,
    /// The stream's chunks per bevy.
    pub chunks_per_bevy: u32,
    /// The stream's compression IRI.
    pub codec: String,
    /// The image's expected size, when known.
    pub size: Option<u64>,
    /// The Image types the image will have.
    pub types: Vec<String>,
    /// The map's targets (idx lines) so far.
    pub targets: Vec<String>,
    /// Index of the first entry in `entries` among all the map's entries (earlier records
    /// hold those before it; the last one of those may have grown since).
    pub from: u64,
    /// Entries from `from` on.
    pub entries: Vec<MapEntry>,
    /// The image is stored in place as this member (see [`crate::in_place`]): `stream` is its
    /// URN and the map is the identity over what reached the disk; no chunks.
    pub in_place: Option<String>,
}

const RECORD_MAGIC: &str = "pmem-journal-map 1";

impl MapRecord {
    /// The record's bytes: `key value` lines, then the entries in the `map` segment's form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut h = format!(
            "{RECORD_MAGIC}\nmap {}\nstream {}\nchunk_size {}\nchunks_per_bevy {}\ncompression {}\n",
            self.map, self.stream, self.chunk_size, self.chunks_per_bevy, self.codec
        );
        if let Some(s) = self.size {
            h.push_str(&format!("size {s}\n"));
        }
        for t in &self.types {
            h.push_str(&format!("type {t}\n"));
        }
        for t in &self.targets {
            h.push_str(&format!("target {t}\n"));
        }
        if let Some(m) = &self.in_place {
            h.push_str(&format!("in_place {m}\n"));
        }
        h.push_str(&format!("entries {} {}\n", self.from, self.entries.len()));
        let mut out = h.into_bytes();
        for e in &self.entries {
            out.extend_from_slice(&e.to_bytes());
        }
        out
    }

    /// Parses a record; `ctx` names it in errors.
    ///
    /// # Errors
    /// Not a map record, a missing or malformed field, or entries that do not fill the rest.
    pub fn parse(b: &[u8], ctx: &str) -> Result<MapRecord> {
        let bad = |at: usize, what: &str| Error::corrupt(ctx, at as u64, format!("journal map record: {what}"));
        let mut rec = MapRecord {
            map: String::new(),
            stream: String::new(),
            chunk_size: 0,
            chunks_per_bevy: 0,
            codec: String::new(),
            size: None,
            types: Vec::new(),
            targets: Vec::new(),
            from: 0,
            entries: Vec::new(),
            in_place: None,
        };
        let mut pos = 0usize;
        let mut first = true;
        loop {
            let Some(nl) = b[pos..].iter().position(|&c| c == b'\n') else { return Err(bad(pos, "no entries line")) };
            let line = std::str::from_utf8(&b[pos..pos + nl]).map_err(|_| bad(pos, "a line is not UTF-8"))?;
            let at = pos;
            pos += nl + 1;
            if first {
                if line != RECORD_MAGIC {
                    return Err(bad(0, "unknown record kind"));
                }
                first = false;
                continue;
            }
            let (k, v) = line.split_once(' ').ok_or_else(|| bad(at, "a line without a value"))?;
            let num = |v: &str| v.parse::<u64>().map_err(|_| bad(at, &format!("{k} is not a number")));
            match k {
                "map" => rec.map = v.to_string(),
                "stream" => rec.stream = v.to_string(),
                "chunk_size" => rec.chunk_size = u32::try_from(num(v)?).map_err(|_| bad(at, "chunk_size too large"))?,
                "chunks_per_bevy" => rec.chunks_per_bevy = u32::try_from(num(v)?).map_err(|_| bad(at, "chunks_per_bevy too large"))?,
                "compression" => rec.codec = v.to_string(),
                "size" => rec.size = Some(num(v)?),
                "type" => rec.types.push(v.to_string()),
                "target" => rec.targets.push(v.to_string()),
                "in_place" => rec.in_place = Some(v.to_string()),
                "entries" => {
                    let (f, n) = v.split_once(' ').ok_or_else(|| bad(at, "entries needs a start and a count"))?;
                    rec.from = num(f)?;
                    let n = num(n)?;
                    let rest = &b[pos..];
                    if rest.len() as u64 != n.saturating_mul(ENTRY_SIZE as u64) {
                        return Err(bad(pos, &format!("{n} entries declared, {} bytes follow", rest.len())));
                    }
                    rec.entries = MapReader::parse_entries(rest, false, ctx)?;
                    break;
                }
                _ => {}
            }
        }
        if rec.map.is_empty() || rec.stream.is_empty() || (rec.in_place.is_none() && (rec.chunk_size == 0 || rec.chunks_per_bevy == 0)) {
            return Err(bad(0, "map, stream, chunk_size and chunks_per_bevy are required"));
        }
        Ok(rec)
    }
}

/// An image rebuilt from the journal.
#[derive(Debug, Clone)]
pub struct RecoveredImage {
    /// The Image object (the one described before the crash, or a new one).
    pub image: String,
    /// Its map.
    pub map: String,
    /// Its virtual size (the expected size when the journal knew it).
    pub size: u64,
    /// Where the bytes lost start (recorded as aff4:UnknownData from there), if any were.
    pub lost_from: Option<u64>,
    /// Bytes of the image whose data came back.
    pub data_bytes: u64,
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default)]
pub struct RecoverReport {
    /// The volume's URN.
    pub volume: String,
    /// Complete members found (after [`Recovery::write`]: the members copied, the journal
    /// and the rebuilt maps' old segments left out).
    pub members: usize,
    /// Members whose bytes did not match their CRC-32 (dropped): (name, header offset).
    pub damaged: Vec<(String, u64)>,
    /// Where the cut-off member started, and the bytes dropped from there.
    pub cut_at: Option<u64>,
    /// Bytes dropped (the cut-off tail and unrecognised bytes).
    pub dropped_bytes: u64,
    /// Images rebuilt from the journal.
    pub images: Vec<RecoveredImage>,
    /// Images whose description was complete before the crash.
    pub complete_images: usize,
    /// What else is worth knowing.
    pub notes: Vec<String>,
}

struct Progress {
    rec: MapRecord,
    entries: Vec<MapEntry>,
}

/// A rebuilt volume, ready to be written ([`Recovery::write`]).
pub struct Recovery {
    name: String,
    /// A volume that was inside an encrypted one: written encrypted again.
    reencrypt: Option<encrypted::Reencrypt>,
    file: Arc<dyn ReadAt>,
    members: Vec<LocalMember>,
    /// Members written with their data page-aligned (images stored in place).
    aligned: HashSet<String>,
    skip: HashSet<String>,
    new_members: Vec<(String, Vec<u8>)>,
    graph: Graph,
    /// What was found and rebuilt.
    pub report: RecoverReport,
}

/// Reads the unclosed volume `src` and rebuilds its metadata and maps (nothing is written).
///
/// # Errors
/// `src` is not a ZIP volume, is closed and complete (nothing to recover), holds no volume
/// URN, or is encrypted (see [`recover_with`]).
pub fn recover(src: &Path) -> Result<Recovery> {
    recover_with(src, &Keys::default())
}

/// [`recover`], for an encrypted volume too: its volume inside is decrypted with whichever of
/// `keys` opens it, rebuilt, and written encrypted again under the same key to the same
/// recipients ([`encrypted`]).
///
/// # Errors
/// As [`recover`]; an encrypted volume that none of `keys` opens.
pub fn recover_with(src: &Path, keys: &Keys) -> Result<Recovery> {
    let name = src.display().to_string();
    let file: Arc<dyn ReadAt> = Arc::new(File::open(src).map_err(|e| Error::io(&name, e))?);
    recover_from_with(file, name, keys)
}

/// [`recover`] on any bytes (`name` in errors).
///
/// # Errors
/// See [`recover`].
pub fn recover_from(file: Arc<dyn ReadAt>, name: String) -> Result<Recovery> {
    recover_from_with(file, name, &Keys::default())
}

/// [`recover_with`] on any bytes (`name` in errors).
///
/// # Errors
/// See [`recover_with`].
pub fn recover_from_with(file: Arc<dyn ReadAt>, name: String, keys: &Keys) -> Result<Recovery> {
    let closed = is_closed(&file, &name);
    // A closed volume has nothing to rebuild, unless the volume inside it is encrypted (and
    // may not have been closed).
    let encrypted = |v: crate::volume::Volume| v.turtle.windows(b"EncryptedStream".len()).any(|w| w == b"EncryptedStream");
    if closed && !crate::volume::Volume::open_zip(file.clone(), name.clone()).is_ok_and(encrypted) {
        return Err(nothing_to_recover(&name));
    }
    let outer = rebuild(file, name.clone())?;
    if let Some(stream) = outer.graph.subjects_of_type(vocab::ENCRYPTED_STREAM).into_iter().next() {
        return encrypted::recover(outer, &stream, keys, closed);
    }
    if closed {
        return Err(nothing_to_recover(&name));
    }
    Ok(outer)
}

/// A ZIP volume that was closed: its directory is there and ends the file.
fn is_closed(file: &Arc<dyn ReadAt>, name: &str) -> bool {
    crate::zip::ZipArchive::open(file.clone(), name).is_ok_and(|z| z.trailing_bytes() == 0 && z.global_offset() == 0)
}

fn nothing_to_recover(name: &str) -> Error {
    Error::Unsupported(format!("{name} is a closed volume: nothing to recover (verifying it says what it holds)"))
}

/// Rebuilds a volume from its local headers and journal, closed or not.
fn rebuild(file: Arc<dyn ReadAt>, name: String) -> Result<Recovery> {
    let scan = scan_local_headers(&*file, &name)?;
    let mut report = RecoverReport { damaged: scan.damaged.clone(), cut_at: scan.cut_at, ..RecoverReport::default() };
    report.dropped_bytes = scan.cut_at.map(|c| scan.file_len - c).unwrap_or(0) + scan.unrecognised;
    let read_member = |m: &LocalMember| -> Result<Vec<u8>> { member_bytes(&*file, m, &name) };

    let mut by_name: HashMap<&str, &LocalMember> = HashMap::new();
    for m in &scan.members {
        by_name.insert(&m.name, m);
    }
    let desc = by_name.get("container.description").ok_or_else(|| {
        Error::corrupt(&name, 0, "no complete container.description member: the volume's URN is unknown, nothing can be rebuilt")
    })?;
    let vol_urn = String::from_utf8_lossy(&read_member(desc)?).trim().to_string();
    report.volume = vol_urn.clone();

    // Metadata: the last complete information.turtle, then the last journal snapshot.
    let mut graph = Graph::new();
    let last_of = |pred: &dyn Fn(&str) -> bool| scan.members.iter().filter(|m| pred(&m.name)).collect::<Vec<_>>();
    for (what, list) in [
        ("information.turtle", last_of(&|n| n == "information.turtle")),
        ("journal snapshot", last_of(&|n| n.starts_with(JOURNAL_PREFIX) && n.ends_with(".turtle"))),
    ] {
        // The newest one that parses.
        for m in list.iter().rev() {
            let mut g = Graph::new();
            match read_member(m).and_then(|b| g.parse_turtle(&b, &vol_urn, &format!("{name}: {}", m.name))) {
                Ok(()) => {
                    graph.merge(&g);
                    break;
                }
                Err(e) => report.notes.push(format!("{what} {} at offset {} skipped: {e}", m.name, m.header_offset)),
            }
        }
    }

    // The journal's map records, in the order written.
    let mut maps: Vec<Progress> = Vec::new();
    for m in scan.members.iter().filter(|m| m.name.starts_with(JOURNAL_PREFIX) && m.name.ends_with(".map")) {
        let rec = match read_member(m).and_then(|b| MapRecord::parse(&b, &format!("{name}: {}", m.name))) {
            Ok(r) => r,
            Err(e) => {
                report.notes.push(format!("journal record {} at offset {} skipped: {e}", m.name, m.header_offset));
                continue;
            }
        };
        let p = match maps.iter_mut().position(|p| p.rec.map == rec.map) {
            Some(i) => &mut maps[i],
            None => {
                maps.push(Progress { rec: rec.clone(), entries: Vec::new() });
                maps.last_mut().ok_or(Error::Internal("journal"))?
            }
        };
        let from = usize::try_from(rec.from).unwrap_or(usize::MAX);
        if from > p.entries.len() {
            report.notes.push(format!("journal record {} skips entries of {}; later records ignored", m.name, rec.map));
            continue;
        }
        p.entries.truncate(from);
        p.entries.extend_from_slice(&rec.entries);
        p.rec = MapRecord { entries: Vec::new(), ..rec };
    }

    let member_of = |urn: &str| urn_to_member(&vol_urn, urn);
    let mut skip: HashSet<String> = HashSet::new();
    let mut new_members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut members = scan.members.clone();
    let mut aligned = HashSet::new();
    for p in &maps {
        let (map, stream) = (&p.rec.map, &p.rec.stream);
        let (map_m, idx_m) = (member_of(&format!("{map}/map")), member_of(&format!("{map}/idx")));
        let stored = by_name.get(map_m.as_str()).zip(by_name.get(idx_m.as_str()));
        if graph.has_type(map, vocab::MAP) && stored.is_some() {
            report.complete_images += 1;
            continue;
        }
        if let Some(member) = &p.rec.in_place {
            // What reached the member: all of it if it was closed, else up to the end of the file.
            let kept = match by_name.get(member.as_str()) {
                Some(m) => Some(m.compressed_size),
                None => scan.cut.clone().filter(|m| m.name == *member && m.method == METHOD_STORED).map(|mut m| {
                    // (past the image's size: the start of the data descriptor, not data)
                    let n = m.compressed_size.min(p.rec.size.unwrap_or(u64::MAX));
                    (m.compressed_size, m.uncompressed_size) = (n, n);
                    members.push(m);
                    report.cut_at = None;
                    report.dropped_bytes = scan.unrecognised;
                    n
                }),
            };
            let Some(kept) = kept else {
                report.notes.push(format!("{member}: the image stored in place was not found; nothing of it came back"));
                continue;
            };
            aligned.insert(member.clone());
            let mut b = crate::map::write::MapBuilder::new();
            let id = b.target(stream);
            let size = p.rec.size.unwrap_or(kept).max(kept);
            b.push(0, kept, id, 0);
            let lost_from = (size > kept).then_some(kept);
            if size > kept {
                let id = b.target(vocab::UNKNOWN_DATA);
                b.push(kept, size - kept, id, kept);
            }
            new_members.push((map_m, b.map_bytes()));
            new_members.push((idx_m, b.idx_bytes()));
            graph.add(stream, RDF_TYPE, Node::iri(vocab::ZIP_SEGMENT));
            graph.set(stream, vocab::SIZE, Node::long(kept));
            graph.add(stream, vocab::TARGET, Node::iri(map));
            let image = describe_recovered(&mut graph, &vol_urn, &p.rec, size, lost_from);
            report.images.push(RecoveredImage { image, map: map.clone(), size, lost_from, data_bytes: kept });
            continue;
        }
        // The map: as stored when its segments were complete, else as the journal has it.
        let (targets, entries) = match stored {
            Some((mm, im)) => {
                let ctx = format!("{name}: {}", mm.name);
                match read_member(mm).and_then(|b| MapReader::parse_entries(&b, false, &ctx)).and_then(|e| Ok((read_member(im)?, e))) {
                    Ok((idx, e)) => (MapReader::parse_idx(&idx), e),
                    Err(e) => {
                        report.notes.push(format!("{}: {e}; the journal's entries are used", mm.name));
                        (p.rec.targets.clone(), p.entries.clone())
                    }
                }
            }
            None => (p.rec.targets.clone(), p.entries.clone()),
        };
        // The bevies that reached the disk whole, in order.
        let cpb = p.rec.chunks_per_bevy as u64;
        let mut chunks = 0u64;
        let mut bevy = 0u64;
        loop {
            let base = bevy_urn(stream, bevy);
            let (d, i) = (by_name.get(member_of(&base).as_str()), by_name.get(member_of(&format!("{base}.index")).as_str()));
            let Some((_, idx)) = d.zip(i) else { break };
            let n = idx.uncompressed_size / 12;
            chunks += n;
            bevy += 1;
            if n < cpb {
                break;
            }
        }
        // Members of the bevies after the last whole one are left out.
        let mut extra = bevy;
        loop {
            let base = bevy_urn(stream, extra);
            let names: Vec<String> = std::iter::once(member_of(&base))
                .chain(std::iter::once(member_of(&format!("{base}.index"))))
                .chain(crate::hash::HashAlgo::ALL.iter().map(|a| member_of(&format!("{base}.blockHash.{}", a.name()))))
                .filter(|n| by_name.contains_key(n.as_str()))
                .collect();
            if names.is_empty() {
                break;
            }
            skip.extend(names);
            extra += 1;
        }
        skip.insert(map_m.clone());
        skip.insert(idx_m.clone());
        let kept = chunks.saturating_mul(p.rec.chunk_size as u64);
        let (mut b, mut lost_from) = crate::map::write::clip_to_stored(&entries, &targets, stream, kept);
        let data_bytes: u64 =
            b.entries().iter().filter(|e| b.targets().get(e.target_id as usize).is_some_and(|t| t == stream)).map(|e| e.length).sum();
        let end = b.end();
        let size = p.rec.size.unwrap_or(end).max(end);
        if size > end {
            let id = b.target(vocab::UNKNOWN_DATA);
            b.push(end, size - end, id, end);
            lost_from.get_or_insert(end);
        }
        b.target(stream);
        new_members.push((map_m, b.map_bytes()));
        new_members.push((idx_m, b.idx_bytes()));

        // Descriptions: the stream and the map as the journal knew them, and the image.
        let g = &mut graph;
        if !g.has_type(stream, vocab::IMAGE_STREAM) {
            g.add(stream, RDF_TYPE, Node::iri(vocab::IMAGE_STREAM));
            g.add(stream, vocab::CHUNK_SIZE, Node::int(p.rec.chunk_size as u64));
            g.add(stream, vocab::CHUNKS_IN_SEGMENT, Node::int(cpb));
            g.add(stream, vocab::COMPRESSION_METHOD, Node::iri(&p.rec.codec));
            g.add(stream, vocab::VERSION, Node::int(1));
            g.add(stream, vocab::TARGET, Node::iri(map));
        }
        g.set(stream, vocab::SIZE, Node::long(kept));
        let image = describe_recovered(g, &vol_urn, &p.rec, size, lost_from);
        report.images.push(RecoveredImage { image, map: map.clone(), size, lost_from, data_bytes });
    }
    if !graph.has_type(&vol_urn, vocab::ZIP_VOLUME) {
        graph.add(&vol_urn, RDF_TYPE, Node::iri(vocab::ZIP_VOLUME));
    }
    graph.add(&vol_urn, &format!("{}tool", vocab::AFF4), Node::string(crate::tool()));
    graph.set(&vol_urn, &format!("{}recoveredAt", vocab::AFF4), Node::typed(crate::rdf::now(), format!("{XSD}dateTime")));

    // A member that cannot be copied whole (a compression method no AFF4 writer uses, deflate
    // data that does not inflate to its size and CRC) is left out with a note, so the rebuilt
    // volume can always be written. Only the last copy of each name is ever copied.
    let mut last: HashMap<&str, &LocalMember> = HashMap::new();
    for m in &scan.members {
        last.insert(&m.name, m);
    }
    let mut undecodable = Vec::new();
    for m in last.values() {
        if skip.contains(&m.name) || m.name.starts_with(JOURNAL_PREFIX) {
            continue;
        }
        let why = match m.method {
            METHOD_STORED => None,
            METHOD_DEFLATE => inflates_whole(&*file, m).err(),
            other => Some(format!("compression method {other}")),
        };
        if let Some(why) = why {
            undecodable.push((m.header_offset, m.name.clone(), why));
        }
    }
    undecodable.sort();
    for (at, n, why) in undecodable {
        report.notes.push(format!("member {n} at offset {at} left out: {why}"));
        skip.insert(n);
    }
    report.members = members.len();
    Ok(Recovery { name, reencrypt: None, file, members, aligned, skip, new_members, graph, report })
}

/// Describes the rebuilt map of `rec` (virtual `size`, lost from `lost_from`) and its Image
/// (the one described before the crash, or a new one) as recovered; returns the Image URN.
fn describe_recovered(g: &mut Graph, vol_urn: &str, rec: &MapRecord, size: u64, lost_from: Option<u64>) -> String {
    let (map, stream) = (&rec.map, &rec.stream);
    g.add(map, RDF_TYPE, Node::iri(vocab::MAP));
    g.set(map, vocab::SIZE, Node::long(size));
    g.add(map, vocab::DEPENDENT_STREAM, Node::iri(stream));
    g.add(map, vocab::MAP_GAP_DEFAULT_STREAM, Node::iri(vocab::ZERO));
    // Hashes recorded for a stored map no longer describe the rebuilt one.
    for h in [vocab::MAP_POINT_HASH, vocab::MAP_IDX_HASH, vocab::MAP_HASH, vocab::BLOCK_MAP_HASH] {
        g.remove(map, h);
    }
    let image = g
        .subjects()
        .iter()
        .find(|s| g.values(s, vocab::DATA_STREAM).any(|n| n.as_iri() == Some(map.as_str())))
        .cloned()
        .unwrap_or_else(crate::urn::new_urn);
    if rec.types.is_empty() {
        g.add(&image, RDF_TYPE, Node::iri(vocab::IMAGE));
    }
    for t in &rec.types {
        g.add(&image, RDF_TYPE, Node::iri(t));
    }
    g.add(&image, vocab::DATA_STREAM, Node::iri(map));
    g.set(&image, vocab::SIZE, Node::long(size));
    g.add(map, vocab::TARGET, Node::iri(&image));
    let state = match lost_from {
        Some(at) => format!(
            "Recovered: rebuilt by pmem recover from a volume that was never closed; stopped at byte {at}: the rest is aff4:UnknownData"
        ),
        None => "Recovered: rebuilt by pmem recover from a volume that was never closed; every byte of its map came back".to_string(),
    };
    g.set(&image, &format!("{}acquisitionCompletionState", vocab::AFF4), Node::string(state));
    for o in [stream.as_str(), map.as_str(), image.as_str()] {
        g.add(vol_urn, vocab::CONTAINS, Node::iri(o));
        g.add(o, vocab::STORED, Node::iri(vol_urn));
    }
    image
}

/// Whether a deflate member inflates to exactly its recorded size and CRC.
fn inflates_whole(file: &dyn ReadAt, m: &LocalMember) -> std::result::Result<(), String> {
    let raw = Span { file, pos: m.data_start, end: m.data_start + m.compressed_size };
    let mut r = flate2::read::DeflateDecoder::new(raw);
    let (mut crc, mut n, mut buf) = (crc32fast::Hasher::new(), 0u64, vec![0u8; 1 << 16]);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                crc.update(&buf[..k]);
                n += k as u64;
                if n > m.uncompressed_size {
                    return Err(format!("inflates past its recorded {} bytes", m.uncompressed_size));
                }
            }
            Err(e) => return Err(format!("its deflate data does not inflate: {e}")),
        }
    }
    if n != m.uncompressed_size || crc.finalize() != m.crc32 {
        return Err(format!("inflates to {n} bytes that do not match its recorded size and CRC"));
    }
    Ok(())
}

impl Recovery {
    /// The rebuilt metadata.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Writes the rebuilt volume to `dst` (replacing an existing one only when `replace`),
    /// through a temporary file renamed over `dst` once complete and synced.
    ///
    /// # Errors
    /// `dst` exists (without `replace`) or writing fails (no partial `dst` is left).
    pub fn write(&mut self, dst: &Path, replace: bool) -> Result<()> {
        let dir = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !replace && std::fs::symlink_metadata(dst).is_ok() {
            return Err(Error::io(
                dst.display().to_string(),
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "output exists (replace it, or choose another name)"),
            ));
        }
        let tmp: PathBuf = dir.join(format!(
            ".{}.pmem-{}.tmp",
            dst.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        let written = match &self.reencrypt {
            Some(r) => r.write(self, &tmp),
            None => create_file(&tmp, false).and_then(|out| {
                let (f, copied) = self.write_into(BufWriter::with_capacity(4 << 20, out), &tmp.display().to_string())?;
                let f = f.into_inner().map_err(|e| Error::io(tmp.display().to_string(), e.into_error()))?;
                f.sync_all().map_err(|e| Error::io(tmp.display().to_string(), e))?;
                Ok(copied)
            }),
        };
        match written.and_then(|copied| {
            std::fs::rename(&tmp, dst).map_err(|e| Error::io(format!("renaming {} to {}", tmp.display(), dst.display()), e))?;
            Ok(copied)
        }) {
            Ok(copied) => {
                self.report.members = copied;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Writes the rebuilt volume into `out` (named `context` in errors); returns the writer
    /// and the number of members copied.
    ///
    /// # Errors
    /// A read of the broken volume or a write fails.
    pub fn write_into<W: Write>(&self, out: W, context: &str) -> Result<(W, usize)> {
        // The volume inside an encrypted one fills whole chunks (see ZipWriter::end_aligned).
        let align = if self.reencrypt.is_some() { crate::crypto::CHUNK as u64 } else { 1 };
        let zip = ZipWriter::new(out, 0, 0, context.to_string()).end_aligned(align);
        let sel = Selection { members: &self.members, aligned: &self.aligned, skip: &self.skip, new_members: &self.new_members };
        write_volume(zip, &self.report.volume, &sel, &self.graph, &*self.file, &self.name)
    }
}

/// What goes into the rebuilt volume.
struct Selection<'a> {
    members: &'a [LocalMember],
    aligned: &'a HashSet<String>,
    skip: &'a HashSet<String>,
    new_members: &'a [(String, Vec<u8>)],
}

fn write_volume<W: Write>(
    mut zip: ZipWriter<W>,
    vol_urn: &str,
    sel: &Selection,
    graph: &Graph,
    file: &dyn ReadAt,
    name: &str,
) -> Result<(W, usize)> {
    let Selection { members, aligned, skip, new_members } = *sel;
    let mut copied = 0;
    zip.add_member("container.description", vol_urn.as_bytes())?;
    let mut seen: HashSet<&str> = HashSet::new();
    // The last complete copy of each member (a re-written member replaces the earlier one).
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        last.insert(&m.name, i);
    }
    for (i, m) in members.iter().enumerate() {
        let n = m.name.as_str();
        if last.get(n) != Some(&i)
            || matches!(n, "container.description" | "information.turtle")
            || n.starts_with(JOURNAL_PREFIX)
            || skip.contains(n)
            || !seen.insert(n)
        {
            continue;
        }
        if aligned.contains(n) {
            zip.start_aligned_member(n, crate::in_place::ALIGN)?;
        } else {
            zip.start_member(n)?;
        }
        copy_member(file, m, name, &mut zip)?;
        zip.finish_member()?;
        copied += 1;
    }
    for (n, b) in new_members {
        zip.add_member(n, b)?;
    }
    zip.add_member("information.turtle", graph.to_turtle().as_bytes())?;
    let mut comment = vol_urn.as_bytes().to_vec();
    comment.push(0);
    Ok((zip.finish(&comment)?, copied))
}

/// Streams member `m`'s uncompressed bytes into the open member of `zip`.
fn copy_member<W: Write>(file: &dyn ReadAt, m: &LocalMember, name: &str, zip: &mut ZipWriter<W>) -> Result<()> {
    let raw = Span { file, pos: m.data_start, end: m.data_start + m.compressed_size };
    let mut r: Box<dyn Read + '_> = match m.method {
        METHOD_STORED => Box::new(raw),
        METHOD_DEFLATE => Box::new(flate2::read::DeflateDecoder::new(raw)),
        other => return Err(Error::Unsupported(format!("{name}: member {} uses compression method {other}", m.name))),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(|e| Error::io(format!("{name}: member {}", m.name), e))?;
        if n == 0 {
            return Ok(());
        }
        zip.write_data(&buf[..n])?;
    }
}

/// A member's uncompressed bytes (metadata members: small).
fn member_bytes(file: &dyn ReadAt, m: &LocalMember, name: &str) -> Result<Vec<u8>> {
    // Bounded by the member's real bytes (deflate expands at most about 1032 times).
    let max: u64 = (1u64 << 30).min(m.compressed_size.saturating_mul(1100).max(1 << 20));
    if m.uncompressed_size > max {
        return Err(Error::corrupt(name, m.header_offset, format!("member {} is too large for metadata", m.name)));
    }
    let mut w = Vec::new();
    let raw = Span { file, pos: m.data_start, end: m.data_start + m.compressed_size };
    let mut r: Box<dyn Read + '_> = match m.method {
        METHOD_STORED => Box::new(raw),
        METHOD_DEFLATE => Box::new(flate2::read::DeflateDecoder::new(raw).take(max)),
        other => return Err(Error::Unsupported(format!("{name}: member {} uses compression method {other}", m.name))),
    };
    r.read_to_end(&mut w).map_err(|e| Error::io(format!("{name}: member {}", m.name), e))?;
    Ok(w)
}

/// A member's stored bytes as a reader.
struct Span<'a> {
    file: &'a dyn ReadAt,
    pos: u64,
    end: u64,
}

impl Read for Span<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = ((self.end - self.pos) as usize).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(self.pos, &mut buf[..n])?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += got as u64;
        Ok(got)
    }
}
