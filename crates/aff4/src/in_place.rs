//! Images stored in place: the image byte for byte in one uncompressed member (a plain file in
//! a directory volume), so that other tools read it without knowing AFF4, under a Map that
//! says, as for a chunked image, which parts are data, zeros or unreadable. Zero runs are
//! holes where the volume is a file; the member's data starts at [`ALIGN`] in a ZIP volume; an
//! interrupted image's member ends where its reading stopped.

use crate::error::{Error, Result};
use crate::imager::{is_zero, HashMsg, ImagerOptions, ImagerResult, ImagerStats, LinearHashes, Pool, Pooled};
use crate::iobuf::IoBuf;
use crate::map::write::{clip_to_stored, MapBuilder};
use crate::rdf::Node;
use crate::symbolic::Symbolic;
use crate::urn::new_urn;
use crate::vocab::{self, RDF_TYPE};
use crate::volume::write::VolumeWriter;
use std::sync::Arc;

/// Where the member's first data byte lies in a ZIP volume: a multiple of this (a page, so
/// that the image can also be mapped from the volume file).
pub const ALIGN: u16 = 4096;
/// Zero runs shorter than this are written as zeros; longer ones become holes.
const HOLE_MIN: u64 = 64 << 10;

/// A running in-place image (driven through [`crate::imager::ImageWriter`]).
pub(crate) struct InPlace {
    member: String,
    member_urn: String,
    map_urn: String,
    map: MapBuilder,
    member_id: u32,
    /// The virtual offset reached (the member's length, holes included).
    pos: u64,
    /// The member's length so far: behind `pos` by the zeros it is owed, written (or skipped
    /// as a hole) only when bytes follow them or the image ends complete.
    member_len: u64,
    started: bool,
    /// Parts never read were left as holes: the member's bytes are not all the image's.
    unknown: bool,
    hashes: LinearHashes,
    algos: Vec<crate::hash::HashAlgo>,
    stats: ImagerStats,
    pool: Pool,
    /// The expected size and the Image types, for the recovery journal.
    announced: (Option<u64>, Vec<String>),
}

impl InPlace {
    /// An image that will be member `name` (escaped, flat) of the volume whose URN is `volume`.
    pub(crate) fn new(opts: &ImagerOptions, volume: &str, name: &str, expected: Option<u64>, types: &[&str]) -> InPlace {
        let member_urn = crate::urn::member_to_urn(volume, name);
        let mut map = MapBuilder::new();
        let member_id = map.target(&member_urn);
        InPlace {
            member: name.to_string(),
            member_urn,
            map_urn: new_urn(),
            map,
            member_id,
            pos: 0,
            member_len: 0,
            started: false,
            unknown: false,
            hashes: LinearHashes::start(&opts.hashes),
            algos: opts.hashes.clone(),
            stats: ImagerStats::default(),
            pool: Arc::new(std::sync::Mutex::new(Vec::new())),
            announced: (expected, types.iter().map(|t| t.to_string()).collect()),
        }
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    pub(crate) fn stats(&self) -> &ImagerStats {
        &self.stats
    }

    pub(crate) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    pub(crate) fn stop_hashing(&mut self) {
        self.hashes.stop_at(self.pos);
    }

    /// Starts the member, after a journal record that lets [`crate::recover`] rebuild the image
    /// from what reached it if the writer never finishes (nothing else is written meanwhile).
    fn start(&mut self, vol: &mut VolumeWriter) -> Result<()> {
        if !self.started {
            self.started = true;
            if vol.journaled() {
                let rec = crate::recover::MapRecord {
                    map: self.map_urn.clone(),
                    stream: self.member_urn.clone(),
                    chunk_size: 0,
                    chunks_per_bevy: 0,
                    codec: String::new(),
                    size: self.announced.0,
                    types: self.announced.1.clone(),
                    targets: Vec::new(),
                    from: 0,
                    entries: Vec::new(),
                    in_place: Some(self.member.clone()),
                };
                vol.add_journal("map", &rec.to_bytes())?;
                vol.checkpoint()?;
            }
            vol.start_aligned_member(&self.member, ALIGN)?;
        }
        Ok(())
    }

    /// Brings the member to virtual offset `to` with zeros: a hole when there are enough.
    fn zeros_to(&mut self, vol: &mut VolumeWriter, to: u64) -> Result<()> {
        let n = to.saturating_sub(self.member_len);
        self.member_len = self.member_len.max(to);
        if n >= HOLE_MIN {
            vol.skip_segment(n)
        } else if n > 0 {
            vol.write_segment(&vec![0u8; n as usize])
        } else {
            Ok(())
        }
    }

    /// Adds the bytes at virtual `offset` (at or after the current position; a gap is zeros).
    pub(crate) fn write(&mut self, vol: &mut VolumeWriter, offset: u64, data: IoBuf, zero_page: usize) -> Result<()> {
        if offset < self.pos {
            return Err(Error::Unsupported(format!("imager: write at {offset:#x} before the current position {:#x}", self.pos)));
        }
        self.start(vol)?;
        if offset > self.pos {
            self.fill(vol, self.pos, offset - self.pos, Symbolic::Constant(0))?;
        }
        let data = Arc::new(Pooled { buf: data, pool: self.pool.clone() });
        self.hashes.send(HashMsg::Data(data.clone()))?;
        let page = if zero_page == 0 { data.buf.len().max(1) } else { zero_page };
        let zero_id = self.map.target(vocab::ZERO);
        let mut v = offset;
        let mut run_start = 0usize;
        for (i, p) in data.buf.chunks(page).enumerate() {
            let len = p.len() as u64;
            if is_zero(p) {
                if i * page > run_start {
                    self.put(vol, offset + run_start as u64, &data.buf[run_start..i * page])?;
                }
                run_start = i * page + p.len();
                self.map.push(v, len, zero_id, v);
                self.stats.zero_bytes += len;
            } else {
                self.map.push(v, len, self.member_id, v);
                self.stats.data_bytes += len;
            }
            v += len;
        }
        if data.buf.len() > run_start {
            self.put(vol, offset + run_start as u64, &data.buf[run_start..])?;
        }
        self.pos = v;
        Ok(())
    }

    /// Writes `b` into the member at virtual offset `at` (after the zeros owed before it).
    fn put(&mut self, vol: &mut VolumeWriter, at: u64, b: &[u8]) -> Result<()> {
        self.zeros_to(vol, at)?;
        vol.write_segment(b)?;
        self.member_len = at + b.len() as u64;
        Ok(())
    }

    /// Records `[offset, offset+len)` as `sym`; the member holds its bytes (zeros as a hole;
    /// nothing for what was never read, which only ever ends an image).
    pub(crate) fn fill(&mut self, vol: &mut VolumeWriter, offset: u64, len: u64, sym: Symbolic) -> Result<()> {
        if offset < self.pos {
            return Err(Error::Unsupported(format!("imager: fill at {offset:#x} before the current position {:#x}", self.pos)));
        }
        self.start(vol)?;
        if offset > self.pos {
            self.fill(vol, self.pos, offset - self.pos, Symbolic::Constant(0))?;
        }
        if len == 0 {
            return Ok(());
        }
        crate::imager::map_symbolic(&mut self.map, &mut self.stats, offset, len, sym);
        self.hashes.send(HashMsg::Fill(sym, offset, len))?;
        if sym == Symbolic::Unknown {
            // (the member ends before what was never read: no pattern a tool could take for data)
            self.unknown = true;
        } else if sym != Symbolic::Constant(0) {
            let mut buf = vec![0u8; len.min(1 << 20) as usize];
            let mut done = 0u64;
            while done < len {
                let n = ((len - done) as usize).min(buf.len());
                sym.fill(offset + done, &mut buf[..n]);
                self.put(vol, offset + done, &buf[..n])?;
                done += n as u64;
            }
        }
        self.pos = offset + len;
        Ok(())
    }

    /// Ends the image at `size` (the rest zeros): closes the member, writes the map.
    pub(crate) fn finish(mut self, vol: &mut VolumeWriter, size: u64) -> Result<ImagerResult> {
        if size < self.pos {
            return Err(Error::Unsupported(format!("imager: size {size} is less than the data written ({})", self.pos)));
        }
        self.start(vol)?;
        if size > self.pos {
            self.fill(vol, self.pos, size - self.pos, Symbolic::Constant(0))?;
        }
        if !self.unknown {
            self.zeros_to(vol, size)?;
        }
        vol.finish_segment()?;
        let hashes = self.hashes.finish(&self.algos);
        self.describe(vol, size, self.member_len, hashes, None)
    }

    /// Ends the image after a failed write: the member keeps what reached it, the map records
    /// the rest (up to `size`) as aff4:UnknownData; no linear hashes.
    pub(crate) fn abandon(mut self, vol: &mut VolumeWriter, size: u64) -> Result<ImagerResult> {
        self.hashes.abandon();
        let kept = if self.started { vol.cut_segment()? } else { 0 };
        let (mut map, lost_from) = clip_to_stored(self.map.entries(), self.map.targets(), &self.member_urn, kept);
        let end = self.pos.max(map.end());
        if size > end {
            let id = map.target(vocab::UNKNOWN_DATA);
            map.push(end, size - end, id, end);
        }
        map.target(&self.member_urn);
        self.map = map;
        let lost_from = lost_from.unwrap_or(end);
        self.describe(vol, size.max(end), kept, Vec::new(), Some(lost_from))
    }

    fn describe(
        &mut self,
        vol: &mut VolumeWriter,
        size: u64,
        member_len: u64,
        hashes: Vec<(crate::hash::HashAlgo, Vec<u8>)>,
        lost_from: Option<u64>,
    ) -> Result<ImagerResult> {
        let (s, m) = (self.member_urn.clone(), self.map_urn.clone());
        crate::imager::write_map(vol, &m, &self.map)?;
        let g = vol.graph_mut();
        g.add(&s, RDF_TYPE, Node::iri(vocab::ZIP_SEGMENT));
        g.add(&s, vocab::SIZE, Node::long(member_len));
        g.add(&s, vocab::TARGET, Node::iri(&m));
        // The member is the image byte for byte: the same hashes cover all of it, so that what
        // other tools read there (also where the map says zeros or unreadable) is verified.
        if member_len == size && !self.unknown && lost_from.is_none() && self.hashes.end().is_none() {
            for (a, d) in &hashes {
                g.add(&s, vocab::HASH, Node::typed(crate::hash::hex(d), a.datatype()));
            }
        }
        g.add(&m, vocab::SIZE, Node::long(size));
        g.add(&m, vocab::DEPENDENT_STREAM, Node::iri(&s));
        vol.register(&s);
        vol.register(&m);
        Ok(ImagerResult {
            stream_urn: s,
            map_urn: m,
            size,
            hashes,
            hashed: self.hashes.end().unwrap_or(size),
            block_map_hash: None,
            stats: self.stats.clone(),
            map_entries: self.map.entries().len(),
            lost_from,
        })
    }
}
