//! A container: one or more volumes opened together (striped sets, split parts, appended
//! volumes), their merged metadata, and streams opened by URN across all of them.

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::evidence::{Cause, Finding};
use crate::image_stream::{ImageStreamParams, ImageStreamReader, IndexFormat, DEFAULT_CHUNKS_PER_BEVY, DEFAULT_CHUNK_SIZE};
use crate::map::MapReader;
use crate::rdf::{Graph, Node};
use crate::segments::Segments;
use crate::stream::{RangeStream, Stream, StreamAsReadAt};
use crate::symbolic::Symbolic;
use crate::vocab::{self, legacy, AFF4};
use crate::volume::Volume;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How deep map targets may nest (a map over a map over …).
pub const MAX_STREAM_DEPTH: usize = 16;

/// Options for opening a container.
#[derive(Default, Clone)]
pub struct OpenOptions {
    /// Password for encrypted containers (their password key bags).
    pub password: Option<String>,
    /// RSA private keys for encrypted containers (their certificate key bags), with the names
    /// they came from (see [`crate::crypto::Keys::private_key`]).
    pub private_keys: Vec<(String, Arc<rsa::PrivateKey>)>,
}

/// What kind of stream a URN is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A chunked aff4:ImageStream (or a legacy equivalent).
    ImageStream,
    /// An aff4:Map (or a legacy equivalent).
    Map,
    /// An encrypted stream (pyaff4).
    Encrypted,
    /// A plain segment (logical file, YAML, …).
    Segment,
}

/// A stream described in the metadata.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// URN.
    pub urn: String,
    /// Kind.
    pub kind: StreamKind,
    /// Size in bytes, if known.
    pub size: Option<u64>,
    /// Codec name for ImageStreams.
    pub codec: Option<String>,
    /// Chunk size for ImageStreams.
    pub chunk_size: Option<u64>,
    /// Chunks per bevy for ImageStreams.
    pub chunks_per_bevy: Option<u64>,
    /// Declared hashes (kind, hex).
    pub hashes: Vec<(String, String)>,
}

/// An evidence object (aff4:Image).
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// URN.
    pub urn: String,
    /// rdf:types, as local names.
    pub types: Vec<String>,
    /// Data streams (one per volume for striped images; the image itself for legacy maps).
    pub data_streams: Vec<String>,
    /// `aff4:size`.
    pub size: Option<u64>,
    /// Recorded name (original file name, device name).
    pub name: Option<String>,
    /// True for logical file images (AFF4-L, pmem extras).
    pub logical: bool,
    /// True for memory images.
    pub memory: bool,
}

/// Opened volumes with their merged graph.
pub struct Container {
    volumes: Vec<Volume>,
    graph: Graph,
    segments: Arc<Segments>,
    streams: Mutex<HashMap<String, Arc<dyn Stream>>>,
    /// Parsed maps by URN: read and parsed once, whoever asks (readers, verify, exports).
    maps: Mutex<HashMap<String, Arc<MapReader>>>,
    problems: Vec<Finding>,
}

use crate::rdf::local_name as local;

impl Container {
    /// Opens the volume files (or directory volumes) at `paths` as one container.
    ///
    /// # Errors
    /// Any path that is not a readable AFF4 volume.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Container> {
        Container::open_with(paths, &OpenOptions::default())
    }

    /// As [`Container::open`], with options (a password for encrypted containers).
    ///
    /// # Errors
    /// As [`Container::open`]; a wrong password.
    pub fn open_with<P: AsRef<Path>>(paths: &[P], opts: &OpenOptions) -> Result<Container> {
        let mut volumes: Vec<Volume> = Vec::new();
        let given: Vec<&Path> = paths.iter().map(|p| p.as_ref()).collect();
        for p in &given {
            let first = Volume::open(p)?;
            let urn = first.urn.clone();
            volumes.push(first);
            // The other parts of a split set beside it, when not given explicitly: pmem's
            // `OUT.A01`, … or c-aff4's `OUT.aff4.A01`, … A part belongs to the set only if its
            // metadata names this first volume, so parts left over from an older set are never
            // mixed in.
            if p.is_file() {
                // The naming is the one whose first part is there (looked up once).
                let pmem_naming = crate::volume::write::split_part_path(p, 1).is_file();
                let part_path = |n: u32| {
                    if pmem_naming {
                        return crate::volume::write::split_part_path(p, n);
                    }
                    let mut s = p.as_os_str().to_owned();
                    s.push(format!(".A{n:02}"));
                    std::path::PathBuf::from(s)
                };
                for n in 1.. {
                    let part = part_path(n);
                    if given.contains(&part.as_path()) || !part.is_file() {
                        break;
                    }
                    let v = Volume::open(&part)?;
                    if !v.turtle.windows(urn.len()).any(|w| w == urn.as_bytes()) {
                        break;
                    }
                    volumes.push(v);
                }
            }
        }
        Container::from_volumes(volumes, opts)
    }

    /// Builds a container from already opened volumes.
    ///
    /// # Errors
    /// Malformed metadata.
    pub fn from_volumes(volumes: Vec<Volume>, opts: &OpenOptions) -> Result<Container> {
        let mut c = Container {
            volumes: Vec::new(),
            graph: Graph::new(),
            segments: Arc::new(Segments::default()),
            streams: Mutex::new(HashMap::new()),
            maps: Mutex::new(HashMap::new()),
            problems: Vec::new(),
        };
        for v in volumes {
            c.add_volume(v)?;
        }
        c.rebuild_segments();
        // Encrypted containers: the plaintext is itself a volume.
        let keys = crate::crypto::Keys { password: opts.password.clone(), private_keys: opts.private_keys.clone() };
        for s in c.graph.subjects_of_type(vocab::ENCRYPTED_STREAM) {
            if keys.is_empty() {
                let to = crate::crypto::recipients(&c.graph, &s).join(", ");
                c.problems.push(Finding::new(
                    Cause::Unverified,
                    &s,
                    format!("{s} is an encrypted stream (to {to}): what it holds opens with its password or a recipient's private key"),
                ));
                continue;
            }
            let key = crate::crypto::unlock(&c.graph, &s, &keys)?;
            let stream = c.image_stream(&s, Some(key))?;
            let inner = Volume::open_zip(Arc::new(StreamAsReadAt(stream)), format!("{s} (decrypted)"))?;
            c.add_volume(inner)?;
            c.rebuild_segments();
        }
        c.check_parts();
        c.check_snapshots();
        Ok(c)
    }

    /// What the volumes' metadata cannot settle: two different digests of one kind for the same
    /// object (altered: no digest can be trusted), and a stream whose only description is a
    /// snapshot taken before it was finished (c-aff4 split sets: `aff4:size 0` while bevies
    /// exist, the final facts being in a later part that was not found).
    fn check_snapshots(&mut self) {
        let mut found = Vec::new();
        for (s, p, datatype, values) in self.graph.conflicting_digests() {
            found.push(Finding::new(
                Cause::Altered,
                &s,
                format!(
                    "the volumes record {} different {} {} digests for {s}: {}",
                    values.len(),
                    local(&p),
                    local(&datatype),
                    values.join(", ")
                ),
            ));
        }
        for s in self.graph.subjects_of_type(vocab::IMAGE_STREAM) {
            let size = self.graph.aff4(&s, "size").and_then(Node::as_u64);
            if size == Some(0) && self.segments.locate(&format!("{s}/00000000.index")).is_some() {
                let last = self.volumes.last().map(|v| v.path.clone()).unwrap_or_default();
                found.push(Finding::new(
                    Cause::Incomplete,
                    &s,
                    format!(
                        "{s} is described only as it was before it was written (aff4:size 0, yet it holds data): the part of the \
                         split set written last, which holds its final size and hashes, is missing (the part after {last}?)"
                    ),
                ));
            }
        }
        self.problems.extend(found);
    }

    /// Split sets record each part's number and name, and the last part the count: a part
    /// that is named but not open, or a set whose last part is not there, is a finding.
    fn check_parts(&mut self) {
        let g = &self.graph;
        let opened: std::collections::HashSet<&str> = self.volumes.iter().map(|v| v.urn.as_str()).collect();
        let mut parts: Vec<(u64, String, String)> = g
            .subjects()
            .iter()
            .filter_map(|s| {
                let n = g.values(s, vocab::VOLUME_SET_PART).next().and_then(Node::as_u64)?;
                let name = g.values(s, vocab::VOLUME_SET_PART_NAME).next().map(|n| n.value().to_string()).unwrap_or_default();
                Some((n, s.clone(), name))
            })
            .collect();
        if parts.is_empty() {
            return;
        }
        parts.sort();
        let total = g.subjects().iter().filter_map(|s| g.values(s, vocab::VOLUME_SET_PARTS).next().and_then(Node::as_u64)).max();
        let mut found = Vec::new();
        for (n, urn, name) in &parts {
            if !opened.contains(urn.as_str()) {
                found.push(Finding::new(
                    Cause::Incomplete,
                    urn,
                    format!("part {n} of the split set ({name}) is missing: put every part in one directory and open the first"),
                ));
            }
        }
        let last = parts.last().map(|p| p.0).unwrap_or(0);
        let first_name = parts.iter().find(|p| p.0 == 1).map(|p| p.2.clone()).unwrap_or_default();
        let next_name = |n: u64| Path::new(&first_name).with_extension(format!("A{:02}", n.saturating_sub(1))).display().to_string();
        match total {
            Some(k) if k > last => found.push(Finding::new(
                Cause::Incomplete,
                &first_name,
                format!(
                    "the split set has {k} parts but only {last} are described: part {} ({}) is missing",
                    last.saturating_add(1),
                    next_name(last.saturating_add(1))
                ),
            )),
            Some(_) => {}
            None => found.push(Finding::new(
                Cause::Incomplete,
                &first_name,
                format!(
                    "the split set's last part is missing: part {} ({}) or a later one, which holds the final metadata, was not found",
                    last.saturating_add(1),
                    next_name(last.saturating_add(1))
                ),
            )),
        }
        self.problems.extend(found);
    }

    /// What is missing from the volume set as opened (parts, bytes after the last directory,
    /// encrypted content without a key): evidence that is not all there.
    pub fn problems(&self) -> &[Finding] {
        &self.problems
    }

    fn add_volume(&mut self, v: Volume) -> Result<()> {
        let t = v.backend.trailing_bytes();
        if t > 0 {
            let msg = format!(
                "{}: {t} bytes after the last complete ZIP directory (an interrupted write?); they were ignored (`pmem recover` rebuilds them)",
                v.path
            );
            self.problems.push(Finding::new(Cause::Incomplete, &v.path, msg));
        }
        let mut g = Graph::new();
        g.parse_turtle(&v.turtle, &v.urn, &v.path)?;
        self.graph.merge_volume(&g);
        self.volumes.push(v);
        Ok(())
    }

    fn rebuild_segments(&mut self) {
        let mut s = Segments::default();
        for v in &self.volumes {
            s.add_volume(v);
        }
        self.segments = Arc::new(s);
        if let Ok(mut m) = self.streams.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.maps.lock() {
            m.clear();
        }
    }

    /// The opened volumes.
    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    /// The merged metadata graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What opening found missing, as sentences (the messages of [`Container::problems`]).
    pub fn notes(&self) -> Vec<String> {
        self.problems.iter().map(|f| f.message.clone()).collect()
    }

    /// The segment table.
    pub fn segments(&self) -> &Arc<Segments> {
        &self.segments
    }

    /// The kind of stream a URN is, from its types (or a segment of that name).
    pub fn kind_of(&self, urn: &str) -> Option<StreamKind> {
        let g = &self.graph;
        if g.has_type(urn, vocab::ENCRYPTED_STREAM) {
            Some(StreamKind::Encrypted)
        } else if g.has_type(urn, vocab::IMAGE_STREAM) || g.has_type(urn, legacy::STREAM) || g.has_type(urn, vocab::LEGACY_IMAGE_STREAM) {
            Some(StreamKind::ImageStream)
        } else if g.has_type(urn, vocab::MAP) || g.has_type(urn, legacy::MAP) || g.has_type(urn, vocab::LEGACY_MAP) {
            Some(StreamKind::Map)
        } else if self.segments.locate(urn).is_some() {
            Some(StreamKind::Segment)
        } else {
            None
        }
    }

    /// The evidence objects.
    pub fn images(&self) -> Vec<ImageInfo> {
        let g = &self.graph;
        let mut out = Vec::new();
        for s in g.subjects() {
            if !(g.has_type(s, vocab::IMAGE) || g.has_type(s, legacy::IMAGE) || g.has_type(s, vocab::FILE_IMAGE)) {
                continue;
            }
            let mut data: Vec<String> = g
                .values(s, vocab::DATA_STREAM)
                .chain(g.values(s, &format!("{}dataStream", vocab::AFF4_LEGACY)))
                .filter_map(|n| n.as_iri().map(String::from))
                .collect();
            data.sort();
            if data.is_empty() && self.kind_of(s).is_some() {
                data.push(s.clone());
            }
            let name = g
                .first_of(
                    s,
                    &[
                        vocab::ORIGINAL_FILE_NAME,
                        &format!("{AFF4}original_filename"),
                        &format!("{AFF4}diskDeviceName"),
                        &format!("{}deviceName", vocab::AFF4_LEGACY),
                    ],
                )
                .map(|n| n.value().to_string());
            let logical = g.has_type(s, vocab::FILE_IMAGE)
                || g.first_of(s, &[vocab::ORIGINAL_FILE_NAME, &format!("{AFF4}original_filename")]).is_some();
            let memory = g.has_type(s, vocab::MEMORY_IMAGE) || g.values(s, vocab::CATEGORY).any(|n| n.value() == vocab::MEMORY_PHYSICAL);
            out.push(ImageInfo {
                urn: s.clone(),
                types: g.types(s).map(local).collect(),
                data_streams: data,
                size: g.aff4(s, "size").and_then(Node::as_u64),
                name,
                logical,
                memory,
            });
        }
        out
    }

    /// Every stream the metadata describes (ImageStreams, Maps, encrypted streams).
    pub fn streams(&self) -> Vec<StreamInfo> {
        let g = &self.graph;
        let mut out = Vec::new();
        for s in g.subjects() {
            let Some(kind) = self.kind_of(s) else { continue };
            if kind == StreamKind::Segment && !g.properties(s).iter().any(|(p, _)| p.ends_with("#hash")) {
                continue;
            }
            // Stub declarations of streams held by volumes that are not open are skipped.
            if kind == StreamKind::ImageStream
                && self.segments.locate(&crate::image_stream::bevy_urn(s, 0)).is_none()
                && g.aff4(s, "size").is_none()
            {
                continue;
            }
            let hashes = self.declared_hashes(s);
            let (codec, cs, cpb) = if matches!(kind, StreamKind::ImageStream | StreamKind::Encrypted) {
                let codec = self.codec_of(s).map(|c| c.name().to_string()).unwrap_or_else(|e| e.to_string());
                (Some(codec), Some(self.chunk_size_of(s)), Some(self.chunks_per_bevy_of(s)))
            } else {
                (None, None, None)
            };
            let size = g.aff4(s, "size").and_then(Node::as_u64).or_else(|| {
                if matches!(kind, StreamKind::Segment | StreamKind::Map) {
                    self.segments.open(s).ok().flatten().map(|x| x.size())
                } else {
                    None
                }
            });
            out.push(StreamInfo { urn: s.clone(), kind, size, codec, chunk_size: cs, chunks_per_bevy: cpb, hashes });
        }
        out
    }

    /// The hashes recorded for image `urn`: its own (the Block-Map hash when it has block
    /// hashes, else its linear hashes) and those of the Maps that hold its bytes (linear
    /// hashes recorded beside a Block-Map hash), as [`Container::declared_hashes`] gives them.
    pub fn image_hashes(&self, urn: &str) -> Vec<(String, String)> {
        let mut v = self.declared_hashes(urn);
        for m in self.graph.values(urn, vocab::DATA_STREAM).filter_map(Node::as_iri) {
            if self.kind_of(m) == Some(StreamKind::Map) {
                v.extend(self.declared_hashes(m));
            }
        }
        v
    }

    /// Declared `aff4:hash` values of a subject as (algorithm or kind, hex); a hash of only the
    /// first bytes (`aff4:prefixHash`, interrupted acquisitions) as (`SHA256[..N]`, hex).
    pub fn declared_hashes(&self, s: &str) -> Vec<(String, String)> {
        let g = &self.graph;
        let prefix_len = g.values(s, vocab::PREFIX_HASH_LENGTH).next().map(|n| n.value().trim().to_string()).unwrap_or_default();
        g.properties(s)
            .iter()
            .filter_map(|(p, o)| {
                let Node::Literal { value, datatype } = o else { return None };
                if p == vocab::HASH || p == &format!("{}hash", vocab::AFF4_LEGACY) {
                    Some((local(datatype), value.to_lowercase()))
                } else if p == vocab::PREFIX_HASH {
                    Some((format!("{}[..{prefix_len}]", local(datatype)), value.to_lowercase()))
                } else {
                    None
                }
            })
            .collect()
    }

    fn chunk_size_of(&self, s: &str) -> u64 {
        self.graph
            .first_of(
                s,
                &[vocab::CHUNK_SIZE, legacy::CHUNK_SIZE, &format!("{AFF4}chunk_size"), &format!("{}chunkSize", vocab::AFF4_LEGACY)],
            )
            .and_then(Node::as_u64)
            .unwrap_or(DEFAULT_CHUNK_SIZE as u64)
    }

    fn chunks_per_bevy_of(&self, s: &str) -> u64 {
        self.graph
            .first_of(
                s,
                &[
                    vocab::CHUNKS_IN_SEGMENT,
                    legacy::CHUNKS_IN_SEGMENT,
                    &format!("{AFF4}chunks_per_segment"),
                    &format!("{}chunksInSegment", vocab::AFF4_LEGACY),
                ],
            )
            .and_then(Node::as_u64)
            .unwrap_or(DEFAULT_CHUNKS_PER_BEVY as u64)
    }

    fn codec_of(&self, s: &str) -> Result<Codec> {
        match self.graph.first_of(s, &[vocab::COMPRESSION_METHOD, legacy::COMPRESSION_METHOD, &format!("{AFF4}compression")]) {
            None => Ok(if self.graph.has_type(s, vocab::ENCRYPTED_STREAM) { Codec::Stored } else { Codec::Unspecified }),
            Some(n) => {
                Codec::from_iri(n.value()).ok_or_else(|| Error::Unsupported(format!("{s}: unknown compression method {}", n.value())))
            }
        }
    }

    /// Reading parameters of the ImageStream (or encrypted stream) `s`.
    fn stream_params(&self, s: &str, decrypt: Option<Arc<dyn crate::image_stream::ChunkDecrypt>>) -> Result<ImageStreamParams> {
        let g = &self.graph;
        let size = g.aff4(s, "size").and_then(Node::as_u64).ok_or_else(|| Error::corrupt(s, 0, "ImageStream without aff4:size"))?;
        let chunk_size = u32::try_from(self.chunk_size_of(s)).map_err(|_| Error::corrupt(s, 0, "chunk size does not fit 32 bits"))?;
        let cpb = u32::try_from(self.chunks_per_bevy_of(s)).map_err(|_| Error::corrupt(s, 0, "chunksInSegment does not fit 32 bits"))?;
        let index = if g.has_type(s, vocab::IMAGE_STREAM) || g.has_type(s, vocab::ENCRYPTED_STREAM) {
            IndexFormat::V1
        } else {
            IndexFormat::Legacy
        };
        Ok(ImageStreamParams { urn: s.to_string(), size, chunk_size, chunks_per_bevy: cpb, codec: self.codec_of(s)?, index, decrypt })
    }

    fn image_stream(&self, s: &str, decrypt: Option<Arc<dyn crate::image_stream::ChunkDecrypt>>) -> Result<Arc<dyn Stream>> {
        Ok(Arc::new(ImageStreamReader::new(self.stream_params(s, decrypt)?, self.segments.clone())?))
    }

    /// The ImageStream reader of `urn` (for block-hash verification).
    ///
    /// # Errors
    /// Not an ImageStream, or bad parameters.
    pub fn image_stream_reader(&self, urn: &str) -> Result<ImageStreamReader> {
        ImageStreamReader::new(self.stream_params(urn, None)?, self.segments.clone())
    }

    /// Opens any stream by URN: symbolic IRIs, ImageStreams, Maps (targets resolved across
    /// volumes, nesting bounded and cycles refused), byte ranges `urn[0xOFF:0xLEN]`, plain
    /// segments, and Images (through their data stream).
    ///
    /// # Errors
    /// Not found, corrupt, or a map cycle.
    pub fn open_stream(&self, urn: &str) -> Result<Arc<dyn Stream>> {
        self.open_inner(urn, &mut Vec::new())
    }

    /// The parsed map of `urn` (for exports that need its regions).
    ///
    /// # Errors
    /// Not a map, or corrupt.
    pub fn open_map(&self, urn: &str) -> Result<Arc<MapReader>> {
        self.map_inner(urn, &mut Vec::new())
    }

    fn map_inner(&self, urn: &str, stack: &mut Vec<String>) -> Result<Arc<MapReader>> {
        if let Some(m) = self.maps.lock().ok().and_then(|m| m.get(urn).cloned()) {
            return Ok(m);
        }
        let m = Arc::new(self.load_map(urn, stack)?);
        if let Ok(mut cache) = self.maps.lock() {
            cache.insert(urn.to_string(), m.clone());
        }
        Ok(m)
    }

    fn open_inner(&self, urn: &str, stack: &mut Vec<String>) -> Result<Arc<dyn Stream>> {
        if let Some(s) = Symbolic::from_iri(urn) {
            return Ok(Arc::new(s));
        }
        if let Some(s) = self.streams.lock().ok().and_then(|m| m.get(urn).cloned()) {
            return Ok(s);
        }
        if stack.iter().any(|u| u == urn) {
            return Err(Error::corrupt(urn, 0, format!("stream references itself through {}", stack.join(" -> "))));
        }
        if stack.len() >= MAX_STREAM_DEPTH {
            return Err(Error::corrupt(urn, 0, format!("streams nest deeper than {MAX_STREAM_DEPTH} levels")));
        }
        stack.push(urn.to_string());
        let r = self.open_uncached(urn, stack);
        stack.pop();
        let s = r?;
        if let Ok(mut m) = self.streams.lock() {
            m.insert(urn.to_string(), s.clone());
        }
        Ok(s)
    }

    fn open_uncached(&self, urn: &str, stack: &mut Vec<String>) -> Result<Arc<dyn Stream>> {
        match self.kind_of(urn) {
            Some(StreamKind::ImageStream) => return self.image_stream(urn, None),
            Some(StreamKind::Encrypted) => return Err(Error::Key(format!("{urn} is encrypted: a password is needed"))),
            Some(StreamKind::Map) => return Ok(self.map_inner(urn, stack)?),
            Some(StreamKind::Segment) => {
                let seg = self.segments.open(urn)?.ok_or_else(|| Error::NotFound(urn.to_string()))?;
                // A logical file may declare a size shorter than its member.
                if let Some(sz) = self.graph.aff4(urn, "size").and_then(Node::as_u64) {
                    if sz < seg.size() {
                        return Ok(Arc::new(RangeStream::new(seg, 0, sz)));
                    }
                }
                return Ok(seg);
            }
            None => {}
        }
        if let Some((base, off, len)) = parse_range(urn) {
            let inner = self.open_inner(base, stack)?;
            return Ok(Arc::new(RangeStream::new(inner, off, len)));
        }
        if let Some(ds) = self.graph.aff4(urn, "dataStream").and_then(|n| n.as_iri()) {
            let ds = ds.to_string();
            return self.open_inner(&ds, stack);
        }
        Err(Error::NotFound(format!("{urn}: no such stream in the opened volumes")))
    }

    fn load_map(&self, urn: &str, stack: &mut Vec<String>) -> Result<MapReader> {
        let g = &self.graph;
        let seg = |name: &str| -> Result<Option<Vec<u8>>> {
            match self.segments.open(&format!("{urn}/{name}"))? {
                Some(s) => Ok(Some(s.read_all(4 << 30)?)),
                None => Ok(None),
            }
        };
        let map = seg("map")?.ok_or_else(|| Error::NotFound(format!("{urn}/map: the map's entries are not in the opened volumes")))?;
        let idx = seg("idx")?.ok_or_else(|| Error::NotFound(format!("{urn}/idx: the map's target list is not in the opened volumes")))?;
        let swapped = g.has_type(urn, vocab::LEGACY_MAP) && !g.has_type(urn, vocab::MAP);
        let entries = MapReader::parse_entries(&map, swapped, &format!("{urn}/map"))?;
        let target_urns = MapReader::parse_idx(&idx);
        let mut targets = Vec::with_capacity(target_urns.len());
        for t in &target_urns {
            targets.push(self.open_inner(t, stack).map_err(|e| e.to_string()));
        }
        let gap: Arc<dyn Stream> = match g.aff4(urn, "mapGapDefaultStream").and_then(|n| n.as_iri()) {
            Some(iri) => self.open_inner(iri, stack)?,
            None => Arc::new(Symbolic::Constant(0)),
        };
        let size = g.aff4(urn, "size").and_then(Node::as_u64);
        MapReader::new(urn.to_string(), size, entries, target_urns, targets, gap)
    }

    /// The data stream `pmem cat` shows by default: the only Image's (first) data stream.
    ///
    /// # Errors
    /// No image, or several (the message lists them).
    pub fn default_stream(&self) -> Result<String> {
        let images: Vec<ImageInfo> = self.images().into_iter().filter(|i| !i.data_streams.is_empty()).collect();
        let physical: Vec<&ImageInfo> = images.iter().filter(|i| !i.logical).collect();
        let pick = if physical.len() == 1 {
            Some(physical[0])
        } else if images.len() == 1 {
            Some(&images[0])
        } else {
            None
        };
        match pick {
            Some(i) => Ok(i.data_streams[0].clone()),
            None if images.is_empty() => {
                let streams: Vec<String> = self.streams().into_iter().filter(|s| s.kind != StreamKind::Segment).map(|s| s.urn).collect();
                let maps: Vec<&String> = streams.iter().filter(|s| self.kind_of(s) == Some(StreamKind::Map)).collect();
                if maps.len() == 1 {
                    Ok(maps[0].clone())
                } else if streams.len() == 1 {
                    Ok(streams[0].clone())
                } else {
                    Err(Error::NotFound(format!("no aff4:Image in the volume; streams: {}", streams.join(", "))))
                }
            }
            None => Err(Error::Unsupported(format!(
                "{} images in the volume; choose one (by URN or recorded name): {}",
                images.len(),
                images.iter().map(|i| format!("{} ({})", i.urn, i.name.as_deref().unwrap_or("-"))).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

impl Container {
    /// The stream a user means by `spec`: a stream or image URN as it is, else the image whose
    /// recorded name (`aff4:originalFileName`, device name) is `spec`, compared exactly, then
    /// ignoring case, then by its last path component (so `pagefile.sys` finds `C:\pagefile.sys`).
    ///
    /// # Errors
    /// Nothing matches (the message lists the names there are), or several images match.
    pub fn find_stream(&self, spec: &str) -> Result<String> {
        if self.kind_of(spec).is_some() || Symbolic::from_iri(spec).is_some() || parse_range(spec).is_some() {
            return Ok(spec.to_string());
        }
        let images: Vec<ImageInfo> = self.images().into_iter().filter(|i| !i.data_streams.is_empty()).collect();
        if images.iter().any(|i| i.urn == spec) {
            return Ok(spec.to_string());
        }
        let base = |n: &str| n.rsplit(['/', '\\']).next().unwrap_or(n).to_lowercase();
        let tests: [&dyn Fn(&str) -> bool; 3] = [&|n| n == spec, &|n| n.to_lowercase() == spec.to_lowercase(), &|n| base(n) == base(spec)];
        for test in tests {
            let hits: Vec<&ImageInfo> = images.iter().filter(|i| i.name.as_deref().is_some_and(test)).collect();
            match hits.len() {
                0 => continue,
                1 => return Ok(hits[0].urn.clone()),
                _ => {
                    return Err(Error::Unsupported(format!(
                        "{spec:?} names {} images; give one's URN: {}",
                        hits.len(),
                        hits.iter().map(|i| format!("{} ({})", i.urn, i.name.as_deref().unwrap_or("-"))).collect::<Vec<_>>().join(", ")
                    )))
                }
            }
        }
        // A logical volume may hold thousands of files: name a few, `pmem ls` lists them all.
        let names: Vec<&str> = images.iter().filter_map(|i| i.name.as_deref()).collect();
        let more = if names.len() > 8 { format!(" and {} more", names.len() - 8) } else { String::new() };
        Err(Error::NotFound(format!(
            "{spec}: no stream or image of that URN or name in the opened volumes{}",
            if names.is_empty() { String::new() } else { format!(" (named images: {}{more})", names[..names.len().min(8)].join(", ")) }
        )))
    }
}

/// Splits `base[0xOFF:0xLEN]`.
fn parse_range(urn: &str) -> Option<(&str, u64, u64)> {
    let body = urn.strip_suffix(']')?;
    let open = body.rfind('[')?;
    let (off, len) = body[open + 1..].split_once(':')?;
    let p = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    Some((&body[..open], p(off)?, p(len)?))
}
