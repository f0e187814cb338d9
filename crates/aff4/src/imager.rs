//! The imaging pipeline shared by `pmem image` and memory acquisition: data arrives in
//! ascending virtual order; zero pages become `aff4:Zero` map entries (no storage); the other
//! pages are packed into chunks that are compressed on all cores, while a separate thread hashes
//! the virtual image and the caller's thread writes bevies in order. Data comes either as bytes
//! ([`ImageWriter::write`]: packed on the caller's thread) or as blocks the compression threads
//! read themselves ([`ImageWriter::read_ahead`]: packed and encoded there, each block's last
//! chunk padded with zeros, which the map never points at). Memory stays bounded by the chunks
//! and blocks in flight.

use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::hash::{HashAlgo, Hasher};
use crate::image_stream::write::{encode_chunks, encode_slices, BevyWriter, EncodedChunk};
use crate::iobuf::IoBuf;
use crate::map::write::MapBuilder;
use crate::rdf::Node;
use crate::stream::ReadAt;
use crate::symbolic::Symbolic;
use crate::urn::new_urn;
use crate::vocab::{self, RDF_TYPE};
use crate::volume::write::VolumeWriter;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct ImagerOptions {
    /// Chunk size (32 KiB by default).
    pub chunk_size: u32,
    /// Chunks per bevy (1024 by default).
    pub chunks_per_bevy: u32,
    /// Compression.
    pub codec: Codec,
    /// Compression threads.
    pub threads: usize,
    /// Linear hashes of the virtual image.
    pub hashes: Vec<HashAlgo>,
    /// Per-chunk block hashes (and with them BlockHashes objects and the Block-Map hash).
    pub block_hashes: Vec<HashAlgo>,
    /// Granularity of zero detection (0 = off).
    pub zero_page: usize,
    /// Store the image in place, as this member of the volume (a flat, escaped name, e.g.
    /// `proc%2Fkcore.raw`: a plain file of that name in a directory volume), uncompressed, instead of as an ImageStream (see
    /// [`crate::in_place`]); block hashes do not apply.
    pub in_place: Option<String>,
}

impl Default for ImagerOptions {
    fn default() -> Self {
        ImagerOptions {
            chunk_size: crate::image_stream::DEFAULT_CHUNK_SIZE,
            chunks_per_bevy: crate::image_stream::DEFAULT_CHUNKS_PER_BEVY,
            codec: Codec::Snappy,
            threads: crate::parallel::default_threads(),
            hashes: vec![HashAlgo::Sha256],
            block_hashes: Vec::new(),
            zero_page: 4096,
            in_place: None,
        }
    }
}

/// Byte counts of an imaging run.
#[derive(Debug, Clone, Default)]
pub struct ImagerStats {
    /// Bytes stored in the ImageStream (before compression).
    pub data_bytes: u64,
    /// Bytes found to be zero pages or holes (not stored).
    pub zero_bytes: u64,
    /// Bytes mapped to UnreadableData.
    pub unreadable_bytes: u64,
    /// Bytes mapped to other symbolic streams.
    pub other_symbolic_bytes: u64,
    /// Compressed payload bytes written.
    pub stored_bytes: u64,
}

/// What an imaging run produced.
#[derive(Debug, Clone)]
pub struct ImagerResult {
    /// The ImageStream holding the data.
    pub stream_urn: String,
    /// The Map over it (the image's data stream).
    pub map_urn: String,
    /// Virtual size.
    pub size: u64,
    /// Linear hashes of the virtual image (of its first `hashed` bytes).
    pub hashes: Vec<(HashAlgo, Vec<u8>)>,
    /// How many bytes the linear hashes cover: `size`, unless [`Imager::stop_hashing`] was called.
    pub hashed: u64,
    /// Block-Map hash (when block hashes were written).
    pub block_map_hash: Option<Vec<u8>>,
    /// Counts.
    pub stats: ImagerStats,
    /// Map entries written.
    pub map_entries: usize,
    /// After [`Imager::abandon`]: the first virtual byte whose data was lost (recorded as
    /// aff4:UnknownData from there on, wherever it was not already symbolic).
    pub lost_from: Option<u64>,
}

pub(crate) enum HashMsg {
    Data(Arc<Pooled>),
    Fill(Symbolic, u64, u64),
}

/// The linear hashes of an image, computed on a thread of their own from the bytes in order.
pub(crate) struct LinearHashes {
    tx: Option<Sender<HashMsg>>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
    /// Set by [`LinearHashes::stop_at`]: the hashes end here.
    end: Option<u64>,
}

impl LinearHashes {
    /// Starts the thread for `algos` (none without an algorithm: nothing is sent then).
    pub(crate) fn start(algos: &[HashAlgo]) -> LinearHashes {
        if algos.is_empty() {
            return LinearHashes { tx: None, thread: None, end: None };
        }
        let (tx, rx) = bounded::<HashMsg>(8);
        let algos = algos.to_vec();
        let thread = std::thread::spawn(move || {
            let mut hs: Vec<Hasher> = algos.iter().map(|a| a.hasher()).collect();
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(m) = rx.recv() {
                match m {
                    HashMsg::Data(d) => hs.iter_mut().for_each(|h| h.update(&d.buf)),
                    HashMsg::Fill(sym, off, len) => {
                        let mut done = 0u64;
                        while done < len {
                            let n = ((len - done) as usize).min(buf.len());
                            sym.fill(off + done, &mut buf[..n]);
                            hs.iter_mut().for_each(|h| h.update(&buf[..n]));
                            done += n as u64;
                        }
                    }
                }
            }
            hs.into_iter().map(|h| h.finish()).collect()
        });
        LinearHashes { tx: Some(tx), thread: Some(thread), end: None }
    }

    /// Hashes the next bytes (nothing once stopped, or without an algorithm).
    pub(crate) fn send(&self, m: HashMsg) -> Result<()> {
        if self.end.is_some() || self.thread.is_none() {
            return Ok(());
        }
        self.tx.as_ref().and_then(|t| t.send(m).ok()).ok_or(Error::Internal("hasher thread ended"))
    }

    /// Ends the hashes at `at`: later bytes are not hashed.
    pub(crate) fn stop_at(&mut self, at: u64) {
        self.end.get_or_insert(at);
    }

    /// Where the hashes end, if stopped early.
    pub(crate) fn end(&self) -> Option<u64> {
        self.end
    }

    /// The digests, with their algorithms.
    pub(crate) fn finish(&mut self, algos: &[HashAlgo]) -> Vec<(HashAlgo, Vec<u8>)> {
        self.tx = None;
        let digests = self.thread.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        algos.iter().copied().zip(digests).collect()
    }

    /// Gives the hashes up (they would cover bytes that were lost).
    pub(crate) fn abandon(&mut self) {
        self.tx = None;
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
        self.end = Some(0);
    }
}

/// Input blocks that came back, for reuse.
pub(crate) type Pool = Arc<std::sync::Mutex<Vec<IoBuf>>>;
const POOL_MAX: usize = 16;

/// How long the pipeline waits for the compression threads before it considers that all of
/// them may be stuck in reads (see [`Imager::rescue`]).
const RESCUE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads queued per compression thread (see [`ImageWriter::reads_ahead`]). A queued read is
/// only its offset and length; the bytes are read when a thread takes it. Blocks are written in
/// order, so while the pipeline's thread waits for one (or is off its core: with its writer it
/// shares the cores with the compression threads), the others go on only as far as this queue
/// reaches: 32 (eight MiB of 256 KiB blocks per thread, 16 MiB of today's 512 KiB) took
/// `bench/run.sh acquire` from 1.73 to 1.58 s against 3 (bench/RESULTS.md, session 21); what
/// the threads encode ahead of their turn is what the queue costs in memory (peak RSS 14 MiB
/// then 20).
const READS_PER_THREAD: usize = 32;

/// Chunks a compression thread takes at a time: their block hashes are computed together
/// (see [`crate::hash::sha256_each`]).
const BATCH: usize = 2;
/// Work for the compression threads.
enum Job {
    /// Chunks the pipeline's thread packed: the sequence number of the first, the chunks.
    Chunks(u64, Vec<Vec<u8>>),
    /// A block to read and encode whole (see [`Imager::read_ahead`]): its ticket, the source,
    /// the offset and length to read there, and whether its bytes must come back.
    Read(u64, Arc<dyn ReadAt>, (u64, usize, bool)),
}

/// What the compression threads give back.
enum Done {
    /// An encoded chunk, by sequence number.
    Chunk(u64, EncodedChunk),
    /// A block read and encoded, by ticket.
    Block(u64, ReadBlock),
}

/// A block a compression thread read itself (see [`Imager::read_ahead`]): the bytes, and when
/// they all came, the block packed and encoded as its own run of chunks.
pub struct ReadBlock {
    /// How many bytes came (fewer than asked: the source ends there), or why none did.
    pub(crate) read: std::io::Result<usize>,
    /// The bytes read, when asked for or when they did not all come.
    pub(crate) data: Option<Arc<Pooled>>,
    /// The block as runs of `(length, where its bytes start among the block's packed bytes)`,
    /// `None` for zero pages; empty unless the whole block came.
    runs: Vec<(u64, Option<u64>)>,
    /// The packed bytes in chunks (the last padded with zeros), encoded.
    chunks: Vec<EncodedChunk>,
}

impl ReadBlock {
    /// The bytes read, if they were asked for (see [`Imager::read_ahead`]).
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_ref().map(|d| &d.buf[..])
    }

    /// Gives back the buffer (for a block that did not come whole) and the read's result.
    pub(crate) fn into_read(self) -> (IoBuf, std::io::Result<usize>) {
        let buf = match self.data.map(Arc::try_unwrap) {
            Some(Ok(mut p)) => std::mem::take(&mut p.buf),
            Some(Err(shared)) => IoBuf::from(shared.buf.to_vec()),
            None => IoBuf::default(),
        };
        (buf, self.read)
    }
}

/// An input block that returns to the pool when its last user (page scan or hasher) drops it.
pub(crate) struct Pooled {
    pub(crate) buf: IoBuf,
    pub(crate) pool: Pool,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL_MAX {
                p.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

/// Chunk-sized buffers shared by the pipeline's thread and the compression threads: a chunk
/// being filled, compressed payloads, chunks written; bounded, so that the pages holding image
/// data in our own memory are few and always the same.
#[derive(Clone)]
struct ChunkPool {
    free: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    size: usize,
    max: usize,
}

impl ChunkPool {
    fn new(size: usize, max: usize) -> ChunkPool {
        ChunkPool { free: Arc::new(std::sync::Mutex::new(Vec::new())), size, max }
    }

    /// An empty buffer with room for a chunk.
    fn take(&self) -> Vec<u8> {
        let mut b = self.free.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(|| Vec::with_capacity(self.size));
        b.clear();
        b
    }

    /// Gives a buffer back (dropped when the pool is full or it is too small to reuse).
    fn put(&self, b: Vec<u8>) {
        if b.capacity() < self.size {
            return;
        }
        if let Ok(mut p) = self.free.lock() {
            if p.len() < self.max {
                p.push(b);
            }
        }
    }
}

/// Input buffers that come back after the pipeline is done with them (see [`Imager::buffers`]).
#[derive(Clone)]
pub struct Buffers(Pool);

impl Buffers {
    /// An aligned buffer of `len` bytes (its content is whatever was there: fill it completely).
    pub fn get(&self, len: usize) -> IoBuf {
        let mut b = self.0.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(|| IoBuf::zeroed(len));
        b.set_len(len);
        b
    }
}

/// A running imaging pipeline for one image (driven through [`ImageWriter`]).
pub(crate) struct Imager {
    opts: ImagerOptions,
    stream_urn: String,
    map_urn: String,
    map: MapBuilder,
    stream_id: u32,
    pos: u64,
    chunk: Vec<u8>,
    stream_len: u64,
    next_seq: u64,
    next_write: u64,
    /// Full chunks not yet sent: they go to the compression threads [`BATCH`] at a time.
    batch: Vec<Vec<u8>>,
    /// Chunks for the compression threads, and reads (two channels: a chunk never waits
    /// behind a read that hangs, while a thread is free).
    job_tx: Option<(Sender<Job>, Sender<Job>)>,
    res_rx: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// What a new compression thread needs (one replaces a thread stuck in a read).
    worker_kit: WorkerKit,
    /// Reads handed to the compression threads and not yet taken back: ticket, result once in.
    reads: BTreeMap<u64, Option<ReadBlock>>,
    next_ticket: u64,
    /// Reads sent whose result has not come (abandoned ones included): threads that may be
    /// inside a read.
    unanswered: usize,
    /// Threads started because every thread might be stuck in a read (see [`Imager::receive`]).
    rescues: usize,
    hashes: LinearHashes,
    pending: BTreeMap<u64, EncodedChunk>,
    bevy: BevyWriter,
    stats: ImagerStats,
    max_in_flight: u64,
    pool: Pool,
    /// What the image will be, for the recovery journal (see [`Imager::announce`]).
    announced: (Option<u64>, Vec<String>),
    /// Map entries sent to the recovery journal, and bevies it has seen completed.
    journaled_entries: usize,
    journaled_bevies: u64,
    journal_started: bool,
    /// Chunk and payload buffers, reused (see [`ChunkPool`]).
    chunk_pool: ChunkPool,
}

/// Whether `b` is all zero bytes (the pipeline's zero-page test, also used by writers that
/// leave zero pages as holes). 256 bytes at a time, stopping at the first that is not zero: a
/// page of memory that is not zero almost always shows it early, so only zero pages are read
/// whole.
pub fn is_zero(b: &[u8]) -> bool {
    let mut it = b.chunks_exact(256);
    for block in &mut it {
        let mut acc = 0u128;
        for c in block.chunks_exact(16) {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            acc |= u128::from_ne_bytes(a);
        }
        if acc != 0 {
            return false;
        }
    }
    it.remainder().iter().all(|&x| x == 0)
}

/// What a compression thread needs: its channels, the buffer pools and the settings.
#[derive(Clone)]
struct WorkerKit {
    chunk_jobs: Receiver<Job>,
    read_jobs: Receiver<Job>,
    /// Set when the image ends: reads still queued are not done.
    closing: Arc<std::sync::atomic::AtomicBool>,
    done: Sender<Done>,
    chunks: ChunkPool,
    inputs: Pool,
    codec: Codec,
    block_hashes: Vec<HashAlgo>,
    zero_page: usize,
}

impl WorkerKit {
    /// Starts a compression thread.
    fn spawn(&self) -> JoinHandle<()> {
        let kit = self.clone();
        std::thread::spawn(move || {
            let mut own =
                WorkerBuffers { encoder: crate::codec::ChunkEncoder::new(kit.codec), input: IoBuf::default(), packed: Vec::new() };
            loop {
                // Chunks first; the channels close together, when the image ends.
                let job = crossbeam_channel::select_biased! {
                    recv(kit.chunk_jobs) -> j => j,
                    recv(kit.read_jobs) -> j => j,
                };
                let Ok(job) = job else { break };
                let sent = match job {
                    Job::Chunks(first, batch) => (first..)
                        .zip(encode_chunks(&mut own.encoder, batch, || kit.chunks.take(), &kit.block_hashes))
                        .map(|(seq, (e, back))| {
                            kit.chunks.put(back);
                            kit.done.send(Done::Chunk(seq, e))
                        })
                        .all(|r| r.is_ok()),
                    Job::Read(..) if kit.closing.load(std::sync::atomic::Ordering::Relaxed) => true,
                    Job::Read(ticket, src, at) => kit.done.send(Done::Block(ticket, kit.read_block(&mut own, &*src, at))).is_ok(),
                };
                if !sent {
                    break;
                }
            }
        })
    }

    /// Reads a block and, when it all came, packs its non-zero pages into chunks (the last
    /// padded with zeros) and encodes them, while the bytes are still in this core's cache.
    /// The thread's own buffers take the bytes; they go to the pipeline's thread only when it
    /// asked for them (`keep`) or the block did not come whole.
    fn read_block(&self, own: &mut WorkerBuffers, src: &dyn ReadAt, (off, len, keep): (u64, usize, bool)) -> ReadBlock {
        own.input.set_len(len);
        let read = crate::capture::fill(&mut |o, b| src.read_at(o, b), off, &mut own.input);
        let whole = matches!(read, Ok(n) if n == len);
        let (mut runs, mut chunks) = (Vec::new(), Vec::new());
        if whole {
            let page = if self.zero_page == 0 { len.max(1) } else { self.zero_page };
            let cs = self.chunks.size;
            own.packed.clear();
            for p in own.input.chunks(page) {
                let at = own.packed.len() as u64;
                let zero = is_zero(p);
                match runs.last_mut() {
                    Some((n, Some(s))) if !zero && *s + *n == at => *n += p.len() as u64,
                    Some((n, None)) if zero => *n += p.len() as u64,
                    _ => runs.push((p.len() as u64, (!zero).then_some(at))),
                }
                if !zero {
                    own.packed.extend_from_slice(p);
                }
            }
            own.packed.resize(own.packed.len().div_ceil(cs) * cs, 0);
            let slices: Vec<&[u8]> = own.packed.chunks(cs).collect();
            chunks = encode_slices(&mut own.encoder, &slices, || self.chunks.take(), &self.block_hashes);
        }
        let data = (keep || !whole).then(|| {
            let fresh = Buffers(self.inputs.clone()).get(len);
            Arc::new(Pooled { buf: std::mem::replace(&mut own.input, fresh), pool: self.inputs.clone() })
        });
        ReadBlock { read, data, runs, chunks }
    }
}

/// A compression thread's own buffers for the blocks it reads (reused, so they stay in its
/// core's cache).
struct WorkerBuffers {
    encoder: crate::codec::ChunkEncoder,
    input: IoBuf,
    packed: Vec<u8>,
}

impl Imager {
    /// Starts a pipeline for a new ImageStream and Map (written by [`Imager::write`] and [`Imager::finish`]).
    ///
    /// # Errors
    /// Invalid options.
    pub fn new(opts: ImagerOptions) -> Result<Imager> {
        if opts.chunk_size == 0 || opts.chunks_per_bevy == 0 {
            return Err(Error::Unsupported("chunk size and chunks per bevy must be positive".into()));
        }
        let stream_urn = new_urn();
        let map_urn = new_urn();
        let mut map = MapBuilder::new();
        let stream_id = map.target(&stream_urn);
        let threads = opts.threads.max(1);
        let (job_tx, job_rx) = bounded::<Job>(threads * 4 / BATCH);
        let (read_tx, read_rx) = crossbeam_channel::unbounded::<Job>();
        let (res_tx, res_rx) = crossbeam_channel::unbounded::<Done>();
        let pool: Pool = Arc::new(std::sync::Mutex::new(Vec::new()));
        let worker_kit = WorkerKit {
            chunk_jobs: job_rx,
            read_jobs: read_rx,
            closing: Default::default(),
            done: res_tx,
            chunks: ChunkPool::new(opts.chunk_size as usize, threads * 12 + 8),
            inputs: pool.clone(),
            codec: opts.codec,
            block_hashes: opts.block_hashes.clone(),
            zero_page: opts.zero_page,
        };
        let chunk_pool = worker_kit.chunks.clone();
        let workers = (0..threads).map(|_| worker_kit.spawn()).collect();
        let bevy = BevyWriter::new(&stream_urn, opts.chunks_per_bevy, &opts.block_hashes);
        let hashes = LinearHashes::start(&opts.hashes);
        Ok(Imager {
            chunk: Vec::with_capacity(opts.chunk_size as usize),
            max_in_flight: (threads * 8) as u64,
            opts,
            stream_urn,
            map_urn,
            map,
            stream_id,
            pos: 0,
            stream_len: 0,
            next_seq: 0,
            next_write: 0,
            batch: Vec::with_capacity(BATCH),
            job_tx: Some((job_tx, read_tx)),
            res_rx,
            workers,
            worker_kit,
            reads: BTreeMap::new(),
            next_ticket: 0,
            unanswered: 0,
            rescues: 0,
            hashes,
            pending: BTreeMap::new(),
            bevy,
            stats: ImagerStats::default(),
            pool,
            announced: (None, Vec::new()),
            journaled_entries: 0,
            journaled_bevies: 0,
            journal_started: false,
            chunk_pool,
        })
    }

    /// Says what the image will be (its expected size and Image types), so that a volume
    /// whose writer is killed can be rebuilt with the rest of the image recorded as unknown.
    pub fn announce(&mut self, size: Option<u64>, types: &[&str]) {
        self.announced = (size, types.iter().map(|t| t.to_string()).collect());
    }

    /// Writes the map's progress to the volume's recovery journal: the stream's parameters and
    /// the map entries since the last record (the last one sent again, as it may have grown).
    fn journal(&mut self, vol: &mut VolumeWriter) -> Result<()> {
        if !vol.journaled() {
            return Ok(());
        }
        let from = self.journaled_entries.saturating_sub(1);
        let entries = &self.map.entries()[from.min(self.map.entries().len())..];
        let rec = crate::recover::MapRecord {
            map: self.map_urn.clone(),
            stream: self.stream_urn.clone(),
            chunk_size: self.opts.chunk_size,
            chunks_per_bevy: self.opts.chunks_per_bevy,
            codec: self.opts.codec.iri().to_string(),
            size: self.announced.0,
            types: self.announced.1.clone(),
            targets: self.map.targets().to_vec(),
            from: from as u64,
            entries: entries.to_vec(),
            in_place: None,
        };
        vol.add_journal("map", &rec.to_bytes())?;
        self.journaled_entries = self.map.entries().len();
        self.journaled_bevies = self.bevy.bevies();
        Ok(())
    }

    /// The virtual offset reached so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Statistics so far.
    pub fn stats(&self) -> &ImagerStats {
        &self.stats
    }

    /// Ends the linear hashes at the current position: what is written or filled later is not
    /// hashed. For an interrupted acquisition, whose unread rest (often most of the address
    /// space) would otherwise be hashed as aff4:UnknownData before the volume could close.
    pub fn stop_hashing(&mut self) {
        self.hashes.stop_at(self.pos);
    }

    fn hash(&self, m: HashMsg) -> Result<()> {
        self.hashes.send(m)
    }

    /// The pool of input buffers (reused from earlier writes), for a reader on another thread.
    pub fn buffers(&self) -> Buffers {
        Buffers(self.pool.clone())
    }

    /// Adds the bytes at virtual `offset` (at or after everything written so far; a gap
    /// before it is recorded as zeros).
    ///
    /// # Errors
    /// Offsets going backwards, or I/O writing the volume.
    pub fn write(&mut self, vol: &mut VolumeWriter, offset: u64, data: IoBuf) -> Result<()> {
        self.move_to(vol, offset)?;
        let data = Arc::new(Pooled { buf: data, pool: self.pool.clone() });
        self.hash(HashMsg::Data(data.clone()))?;
        let data = &data.buf;
        let page = if self.opts.zero_page == 0 { data.len().max(1) } else { self.opts.zero_page };
        let zero_id = self.map.target(vocab::ZERO);
        let mut v = offset;
        for p in data.chunks(page) {
            let len = p.len() as u64;
            if is_zero(p) {
                self.map.push(v, len, zero_id, v);
                self.stats.zero_bytes += len;
            } else {
                self.map.push(v, len, self.stream_id, self.stream_len);
                self.stats.data_bytes += len;
                self.append_stream(vol, p)?;
            }
            v += len;
        }
        self.pos = v;
        Ok(())
    }

    /// Moves on to virtual `offset` for data (at or after everything written so far; a gap
    /// before it is recorded as zeros).
    fn move_to(&mut self, vol: &mut VolumeWriter, offset: u64) -> Result<()> {
        if offset < self.pos {
            return Err(Error::Unsupported(format!("imager: write at {offset:#x} before the current position {:#x}", self.pos)));
        }
        if offset > self.pos {
            self.fill(self.pos, offset - self.pos, Symbolic::Constant(0))?;
        }
        if !self.journal_started {
            // The image exists from its first byte on: a crash before its first bevy still
            // leaves a record of it (all unknown), not nothing.
            self.journal_started = true;
            self.journal(vol)?;
        }
        Ok(())
    }

    /// Records virtual `[offset, offset+len)` as a symbolic stream (zeros, unreadable data).
    ///
    /// # Errors
    /// Offsets going backwards.
    pub fn fill(&mut self, offset: u64, len: u64, sym: Symbolic) -> Result<()> {
        if offset < self.pos {
            return Err(Error::Unsupported(format!("imager: fill at {offset:#x} before the current position {:#x}", self.pos)));
        }
        if offset > self.pos {
            self.fill(self.pos, offset - self.pos, Symbolic::Constant(0))?;
        }
        if len == 0 {
            return Ok(());
        }
        map_symbolic(&mut self.map, &mut self.stats, offset, len, sym);
        self.hash(HashMsg::Fill(sym, offset, len))?;
        self.pos = offset + len;
        Ok(())
    }

    fn append_stream(&mut self, vol: &mut VolumeWriter, mut p: &[u8]) -> Result<()> {
        let cs = self.opts.chunk_size as usize;
        while !p.is_empty() {
            let take = (cs - self.chunk.len()).min(p.len());
            self.chunk.extend_from_slice(&p[..take]);
            self.stream_len += take as u64;
            p = &p[take..];
            if self.chunk.len() == cs {
                let full = std::mem::replace(&mut self.chunk, self.chunk_pool.take());
                self.submit(vol, full)?;
            }
        }
        Ok(())
    }

    /// Queues a full chunk; a whole batch goes to the compression threads.
    fn submit(&mut self, vol: &mut VolumeWriter, chunk: Vec<u8>) -> Result<()> {
        self.batch.push(chunk);
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.send_batch(vol)
    }

    /// Sends the queued chunks (however many) and writes what has come back.
    fn send_batch(&mut self, vol: &mut VolumeWriter) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let n = batch.len() as u64;
        self.send_job(Job::Chunks(self.next_seq, batch))?;
        self.next_seq += n;
        while let Ok(d) = self.res_rx.try_recv() {
            self.take(d);
        }
        self.drain(vol)?;
        while self.next_seq - self.next_write > self.max_in_flight {
            self.receive(vol, None)?;
        }
        Ok(())
    }

    /// Waits for the compression threads to end (the job channel closed); one stuck in an
    /// abandoned read is left to end on its own.
    fn join_workers(&mut self) {
        self.close();
        let stuck = self.workers.len().saturating_sub(self.opts.threads.max(1));
        for w in self.workers.drain(..) {
            if stuck == 0 {
                let _ = w.join();
            }
        }
    }

    /// Closes the job channels; reads still queued are skipped.
    fn close(&mut self) {
        self.worker_kit.closing.store(true, std::sync::atomic::Ordering::Relaxed);
        self.job_tx = None;
    }

    fn send_job(&self, job: Job) -> Result<()> {
        let (chunks, reads) = self.job_tx.as_ref().ok_or(Error::Internal("pipeline closed"))?;
        let tx = if matches!(job, Job::Read(..)) { reads } else { chunks };
        tx.send(job).map_err(|_| Error::Internal("compression threads ended"))
    }

    /// Files a result of the compression threads (a block no longer wanted is dropped).
    fn take(&mut self, d: Done) {
        match d {
            Done::Chunk(s, e) => {
                self.pending.insert(s, e);
            }
            Done::Block(t, b) => {
                self.unanswered = self.unanswered.saturating_sub(1);
                if let Some(slot) = self.reads.get_mut(&t) {
                    *slot = Some(b);
                }
            }
        }
    }

    /// Waits for the next result (at most `wait`: false when none came) and writes the chunks
    /// now in order.
    fn receive(&mut self, vol: &mut VolumeWriter, wait: Option<std::time::Duration>) -> Result<bool> {
        let d = match wait {
            None => loop {
                match self.res_rx.recv_timeout(RESCUE_AFTER) {
                    Ok(d) => break d,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) if self.workers.iter().all(|w| w.is_finished()) => {
                        return Err(Error::Internal("compression threads ended"))
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => self.rescue(),
                    Err(_) => return Err(Error::Internal("compression threads ended")),
                }
            },
            Some(w) => match self.res_rx.recv_timeout(w) {
                Ok(d) => d,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(false),
                Err(_) => return Err(Error::Internal("compression threads ended")),
            },
        };
        self.take(d);
        self.drain(vol)?;
        Ok(true)
    }

    /// Nothing came for a while: if every thread may be inside a read that hangs, one more
    /// takes the chunks waiting (at most as many more as there are threads).
    fn rescue(&mut self) {
        let threads = self.opts.threads.max(1);
        if self.unanswered >= threads && self.rescues < threads {
            self.rescues += 1;
            self.workers.push(self.worker_kit.spawn());
        }
    }

    /// Hands the read of `len` bytes at `off` of `src` to a compression thread, which packs
    /// and encodes the block where it read it (in that core's cache, with no reader thread in
    /// between); returns its ticket for [`Imager::read_result`]. The bytes come back with the
    /// block when `keep` asks for them or the linear hashes need them. Blocks so read start a
    /// chunk of their own: the chunk before them is padded with zeros.
    pub fn read_ahead(&mut self, src: Arc<dyn ReadAt>, off: u64, len: usize, keep: bool) -> Result<u64> {
        let t = self.next_ticket;
        self.next_ticket += 1;
        self.reads.insert(t, None);
        let keep = keep || !self.opts.hashes.is_empty();
        self.send_job(Job::Read(t, src, (off, len, keep)))?;
        self.unanswered += 1;
        Ok(t)
    }

    /// The block of `ticket` once read, waiting up to `wait` for it (None: not yet).
    pub fn read_result(&mut self, vol: &mut VolumeWriter, ticket: u64, wait: std::time::Duration) -> Result<Option<ReadBlock>> {
        let until = std::time::Instant::now() + wait;
        loop {
            if let Some(Some(_)) = self.reads.get(&ticket) {
                return Ok(self.reads.remove(&ticket).flatten());
            }
            if !self.reads.contains_key(&ticket) {
                return Err(Error::Internal("no such read"));
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || !self.receive(vol, Some(left))? {
                return Ok(None);
            }
        }
    }

    /// Gives up on the read of `ticket` (it hangs): its result is dropped if it ever comes,
    /// and a new compression thread takes the place of the one waiting on it.
    pub fn abandon_read(&mut self, ticket: u64) {
        if self.reads.remove(&ticket).is_some() {
            self.workers.push(self.worker_kit.spawn());
        }
    }

    /// Adds a block read whole by a compression thread at virtual `offset` (at or after
    /// everything written so far).
    ///
    /// # Errors
    /// Offsets going backwards, a block that did not come whole, or I/O writing the volume.
    pub fn commit(&mut self, vol: &mut VolumeWriter, offset: u64, block: ReadBlock) -> Result<()> {
        let len = block.runs.iter().map(|r| r.0).sum::<u64>();
        if !matches!(block.read, Ok(n) if n as u64 == len) {
            return Err(Error::Internal("commit of a block that was not read whole"));
        }
        self.move_to(vol, offset)?;
        if self.hashes.end().is_none() && !self.opts.hashes.is_empty() {
            self.hash(HashMsg::Data(block.data.clone().ok_or(Error::Internal("a block for the linear hashes came without its bytes"))?))?;
        }
        // The block's chunks follow every chunk before them (the last one padded), in order.
        if !self.chunk.is_empty() {
            let mut last = std::mem::replace(&mut self.chunk, self.chunk_pool.take());
            self.stream_len += (self.opts.chunk_size as usize - last.len()) as u64;
            last.resize(self.opts.chunk_size as usize, 0);
            self.submit(vol, last)?;
        }
        self.send_batch(vol)?;
        let zero_id = self.map.target(vocab::ZERO);
        let base = self.stream_len;
        let mut v = offset;
        for (n, packed) in block.runs {
            match packed {
                Some(p) => {
                    self.map.push(v, n, self.stream_id, base + p);
                    self.stats.data_bytes += n;
                }
                None => {
                    self.map.push(v, n, zero_id, v);
                    self.stats.zero_bytes += n;
                }
            }
            v += n;
        }
        for e in block.chunks {
            self.pending.insert(self.next_seq, e);
            self.next_seq += 1;
            self.stream_len += self.opts.chunk_size as u64;
        }
        self.pos = offset + len;
        self.drain(vol)
    }

    fn drain(&mut self, vol: &mut VolumeWriter) -> Result<()> {
        while let Some(e) = self.pending.remove(&self.next_write) {
            self.stats.stored_bytes += e.payload.len() as u64;
            self.bevy.push(vol, &e)?;
            self.chunk_pool.put(e.payload);
            self.next_write += 1;
            if self.bevy.bevies() > self.journaled_bevies {
                self.journal(vol)?;
            }
        }
        Ok(())
    }

    /// Ends the image at virtual `size` (the rest is zeros), writes the map, and describes the
    /// stream and map in the volume's metadata.
    ///
    /// # Errors
    /// `size` before the current position, or I/O.
    pub fn finish(mut self, vol: &mut VolumeWriter, size: u64) -> Result<ImagerResult> {
        if size < self.pos {
            return Err(Error::Unsupported(format!("imager: size {size} is less than the data written ({})", self.pos)));
        }
        if size > self.pos {
            self.fill(self.pos, size - self.pos, Symbolic::Constant(0))?;
        }
        if !self.chunk.is_empty() {
            let mut last = std::mem::take(&mut self.chunk);
            let pad = self.opts.chunk_size as usize - last.len();
            self.stream_len += pad as u64;
            last.resize(self.opts.chunk_size as usize, 0);
            self.submit(vol, last)?;
        }
        self.send_batch(vol)?;
        self.close();
        while self.next_write < self.next_seq {
            self.receive(vol, None)?;
        }
        self.join_workers();
        let bevy = std::mem::replace(&mut self.bevy, BevyWriter::new("", 1, &[]));
        let (chunks, block_digests) = bevy.finish(vol)?;
        self.journal(vol)?;
        let hashes = self.hashes.finish(&self.opts.hashes);
        self.describe(vol, size, chunks, block_digests, hashes, None)
    }

    /// Ends the image after a failed write to the volume (a full disk, an I/O error): the
    /// bevies completed so far are kept, the bevy being written is dropped from the volume, and
    /// what the map pointed at in it, and everything from the current position up to `size`,
    /// is recorded as aff4:UnknownData. Linear hashes are not recorded (they covered bytes that
    /// were lost); block hashes of the kept bevies are.
    ///
    /// # Errors
    /// Writing the map or metadata fails too.
    pub fn abandon(mut self, vol: &mut VolumeWriter, size: u64) -> Result<ImagerResult> {
        self.join_workers();
        self.pending.clear();
        self.hashes.abandon();
        let bevy = std::mem::replace(&mut self.bevy, BevyWriter::new("", 1, &[]));
        let (chunks, block_digests, rewind_to) = bevy.abandon();
        if let Some(at) = rewind_to {
            vol.abandon_since(at);
        }
        let kept = chunks * self.opts.chunk_size as u64;
        let unknown = vocab::UNKNOWN_DATA;
        let (mut map, lost_from) = crate::map::write::clip_to_stored(self.map.entries(), self.map.targets(), &self.stream_urn, kept);
        let end = self.pos.max(map.end());
        if size > end {
            let id = map.target(unknown);
            map.push(end, size - end, id, end);
        }
        // Entries come in address order: the first lost one is where the loss starts, else the
        // current position (everything after it was never stored).
        let lost_from = lost_from.unwrap_or(end);
        // The map still names its stream (dependentStream), even when nothing of it was kept.
        map.target(&self.stream_urn);
        self.map = map;
        self.describe(vol, size.max(end), chunks, block_digests, Vec::new(), Some(lost_from))
    }

    /// Writes the map and describes the stream and map; the common end of finish and abandon.
    fn describe(
        &mut self,
        vol: &mut VolumeWriter,
        size: u64,
        chunks: u64,
        block_digests: crate::image_stream::write::BlockHashDigests,
        hashes: Vec<(HashAlgo, Vec<u8>)>,
        lost_from: Option<u64>,
    ) -> Result<ImagerResult> {
        let (s, m) = (self.stream_urn.clone(), self.map_urn.clone());
        let (point, idxh) = write_map(vol, &m, &self.map)?;

        let cs = self.opts.chunk_size as u64;
        let g = vol.graph_mut();
        let sha512 = HashAlgo::Sha512.datatype();
        g.add(&s, RDF_TYPE, Node::iri(vocab::IMAGE_STREAM));
        g.add(&s, vocab::SIZE, Node::long(chunks * cs));
        g.add(&s, vocab::CHUNK_SIZE, Node::int(cs));
        g.add(&s, vocab::CHUNKS_IN_SEGMENT, Node::int(self.opts.chunks_per_bevy as u64));
        g.add(&s, vocab::COMPRESSION_METHOD, Node::iri(self.opts.codec.iri()));
        g.add(&s, vocab::VERSION, Node::int(1));
        g.add(&s, vocab::TARGET, Node::iri(&m));
        let mut block_map = if block_digests.is_empty() { None } else { Some(HashAlgo::Sha512.hasher()) };
        for a in HashAlgo::ALL {
            if let Some((_, d)) = block_digests.iter().find(|(x, _)| *x == a) {
                let bh = format!("{s}/blockhash.{}", a.name());
                g.add(&bh, RDF_TYPE, Node::iri(vocab::BLOCK_HASHES));
                g.add(&bh, vocab::HASH, Node::typed(crate::hash::hex(d), &sha512));
                if let Some(h) = block_map.as_mut() {
                    h.update(d);
                }
            }
        }
        g.add(&m, vocab::SIZE, Node::long(size));
        g.add(&m, vocab::DEPENDENT_STREAM, Node::iri(&s));
        let block_map_hash = block_map.map(|mut h| {
            h.update(&point);
            h.update(&idxh);
            h.finish()
        });
        if let Some(b) = &block_map_hash {
            g.add(&m, vocab::BLOCK_MAP_HASH, Node::typed(crate::hash::hex(b), &sha512));
        }
        vol.register(&s);
        vol.register(&m);
        Ok(ImagerResult {
            stream_urn: s,
            map_urn: m,
            size,
            hashes,
            hashed: self.hashes.end().unwrap_or(size),
            block_map_hash,
            stats: self.stats.clone(),
            map_entries: self.map.entries().len(),
            lost_from,
        })
    }
}

/// Maps virtual `[offset, offset+len)` to `sym` and counts it.
pub(crate) fn map_symbolic(map: &mut MapBuilder, stats: &mut ImagerStats, offset: u64, len: u64, sym: Symbolic) {
    let id = map.target(&sym.iri());
    map.push(offset, len, id, offset);
    match sym {
        Symbolic::Constant(0) => stats.zero_bytes += len,
        Symbolic::Unreadable => stats.unreadable_bytes += len,
        _ => stats.other_symbolic_bytes += len,
    }
}

/// Writes `map`'s entries and targets as the segments of Map `m` and describes it (type, gap
/// stream, map hashes); returns the SHA-512 of the entries and of the targets.
pub(crate) fn write_map(vol: &mut VolumeWriter, m: &str, map: &MapBuilder) -> Result<(Vec<u8>, Vec<u8>)> {
    let map_bytes = map.map_bytes();
    let idx_bytes = map.idx_bytes();
    vol.add_segment(&format!("{m}/map"), &map_bytes)?;
    vol.add_segment(&format!("{m}/idx"), &idx_bytes)?;
    let point = HashAlgo::Sha512.digest(&map_bytes);
    let idxh = HashAlgo::Sha512.digest(&idx_bytes);
    let mut both = HashAlgo::Sha512.hasher();
    both.update(&map_bytes);
    both.update(&idx_bytes);
    let maph = both.finish();
    let sha512 = HashAlgo::Sha512.datatype();
    let g = vol.graph_mut();
    g.add(m, RDF_TYPE, Node::iri(vocab::MAP));
    g.add(m, vocab::MAP_GAP_DEFAULT_STREAM, Node::iri(vocab::ZERO));
    g.add(m, vocab::MAP_POINT_HASH, Node::typed(crate::hash::hex(&point), &sha512));
    g.add(m, vocab::MAP_IDX_HASH, Node::typed(crate::hash::hex(&idxh), &sha512));
    g.add(m, vocab::MAP_HASH, Node::typed(crate::hash::hex(&maph), &sha512));
    Ok((point, idxh))
}

/// How the reading of an image ended, as the caller saw it (see [`ImageWriter::finish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every byte of the source was read or recorded as unreadable.
    Complete,
    /// Stopped on request (a signal) before the end.
    Interrupted,
    /// The source stopped giving data (it ended early, or a stream failed): why.
    ReadStopped(String),
    /// Writing the volume failed (a full disk): the error.
    WriteFailed(String),
}

/// An image's completion state, written once as `aff4:acquisitionCompletionState` (its text
/// is what [`crate::evidence::image_state`] reads back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Every byte was read.
    Complete,
    /// Every byte was tried; some could not be read (aff4:UnreadableData).
    ReadErrors,
    /// Stopped on request at byte `at`; the rest is aff4:UnknownData.
    Interrupted {
        /// The first byte not acquired.
        at: u64,
    },
    /// The source stopped at byte `at`; the rest is aff4:UnreadableData.
    Stopped {
        /// The first byte not acquired.
        at: u64,
        /// Why.
        reason: String,
    },
    /// Writing the volume failed; what was stored before byte `at` is kept.
    WriteFailed {
        /// The first byte whose data was lost.
        at: u64,
        /// The write error.
        error: String,
    },
}

impl Completion {
    /// Whether every byte was acquired (possibly with unreadable ranges).
    pub fn is_complete(&self) -> bool {
        matches!(self, Completion::Complete | Completion::ReadErrors)
    }
}

impl std::fmt::Display for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Completion::Complete => f.write_str("Completed Normally"),
            Completion::ReadErrors => f.write_str("Completed with read errors"),
            Completion::Interrupted { at } => write!(f, "Interrupted: incomplete: stopped at byte {at}"),
            Completion::Stopped { at, reason } => write!(f, "Incomplete: stopped at byte {at}: {reason}"),
            Completion::WriteFailed { at, error } => write!(f, "Incomplete: stopped at byte {at}: writing the volume failed: {error}"),
        }
    }
}

/// An image being written into a volume: the [`Imager`] pipeline, the volume it writes to, and
/// what the Image will be; [`ImageWriter::finish`] ends the data and describes the Image with
/// its provenance (times, completion state, tool) in one place for every kind of capture.
pub struct ImageWriter<'v> {
    vol: &'v mut VolumeWriter,
    im: Pipeline,
    zero_page: usize,
    urn: String,
    types: Vec<String>,
    started: String,
}

/// How the image's bytes are stored.
enum Pipeline {
    /// Chunks of an ImageStream, compressed on all cores.
    Chunked(Box<Imager>),
    /// One uncompressed member, byte for byte the image.
    InPlace(Box<crate::in_place::InPlace>),
}

/// What [`ImageWriter::finish`] recorded.
#[derive(Debug, Clone)]
pub struct FinishedImage {
    /// The Image URN.
    pub urn: String,
    /// Its completion state.
    pub completion: Completion,
    /// The pipeline's result (map, hashes, counts).
    pub result: ImagerResult,
}

impl VolumeWriter {
    /// Starts an image of these `types` in this volume; `expected` is its size when known
    /// (recorded in the recovery journal, so that a crash leaves the rest marked unknown).
    ///
    /// # Errors
    /// Invalid options.
    pub fn image(&mut self, opts: &ImagerOptions, types: &[&str], expected: Option<u64>) -> Result<ImageWriter<'_>> {
        let im = match &opts.in_place {
            Some(name) => Pipeline::InPlace(Box::new(crate::in_place::InPlace::new(opts, self.urn(), name, expected, types))),
            None => {
                let mut im = Imager::new(opts.clone())?;
                im.announce(expected, types);
                Pipeline::Chunked(Box::new(im))
            }
        };
        Ok(ImageWriter {
            vol: self,
            im,
            zero_page: opts.zero_page,
            urn: new_urn(),
            types: types.iter().map(|t| t.to_string()).collect(),
            started: crate::rdf::now(),
        })
    }
}

impl ImageWriter<'_> {
    /// The Image URN it will describe.
    pub fn urn(&self) -> &str {
        &self.urn
    }

    /// The virtual offset reached so far.
    pub fn position(&self) -> u64 {
        match &self.im {
            Pipeline::Chunked(im) => im.position(),
            Pipeline::InPlace(p) => p.position(),
        }
    }

    /// Statistics so far.
    pub fn stats(&self) -> &ImagerStats {
        match &self.im {
            Pipeline::Chunked(im) => im.stats(),
            Pipeline::InPlace(p) => p.stats(),
        }
    }

    /// Whether the volume is a stream (stdout, an upload), which cannot be cut back after a
    /// failed write.
    pub fn is_streamed(&self) -> bool {
        self.vol.is_streamed()
    }

    /// A buffer of `len` bytes for the next write (reused from earlier writes when possible: its content is whatever was there, fill it completely).
    pub fn buffer(&self, len: usize) -> IoBuf {
        self.buffers().get(len)
    }

    /// The pool [`ImageWriter::buffer`] draws from, for a reader on another thread.
    pub fn buffers(&self) -> Buffers {
        match &self.im {
            Pipeline::Chunked(im) => im.buffers(),
            Pipeline::InPlace(p) => Buffers(p.pool()),
        }
    }

    /// Adds the bytes at virtual `offset` (at or after everything written so far; a gap before it is recorded as zeros).
    ///
    /// # Errors
    /// Offsets going backwards, or I/O writing the volume.
    pub fn write(&mut self, offset: u64, data: impl Into<IoBuf>) -> Result<()> {
        let data = data.into();
        match &mut self.im {
            Pipeline::Chunked(im) => im.write(self.vol, offset, data),
            Pipeline::InPlace(p) => p.write(self.vol, offset, data, self.zero_page),
        }
    }

    /// How many reads to keep with the compression threads ([`ImageWriter::read_ahead`]): for
    /// an ImageStream, [`READS_PER_THREAD`] per thread; 0 for an image stored in place, whose
    /// reads cannot go there.
    pub fn reads_ahead(&self) -> usize {
        match &self.im {
            Pipeline::Chunked(im) => im.opts.threads.max(1) * READS_PER_THREAD,
            Pipeline::InPlace(_) => 0,
        }
    }

    /// Writes the volume from this thread as its blocks fill, or from a thread behind it: see
    /// [`crate::volume::uncached::Uncached::write_inline`].
    ///
    /// # Errors
    /// Writing out what is buffered fails.
    pub fn write_inline(&mut self, inline: bool) -> Result<()> {
        self.vol.write_inline(inline)
    }

    /// Hands the read of `len` bytes at `off` of `src` to a compression thread; its ticket
    /// for [`ImageWriter::read_result`] (see [`Imager::read_ahead`]); `keep` asks for the
    /// bytes with the block. The threads read at once, so `src` must allow it
    /// ([`ReadAt::concurrent_reads`]).
    ///
    /// # Errors
    /// An image stored in place, a source whose reads may not overlap, or the compression
    /// threads ended.
    pub fn read_ahead(&mut self, src: Arc<dyn ReadAt>, off: u64, len: usize, keep: bool) -> Result<u64> {
        if !src.concurrent_reads() {
            return Err(Error::Internal("reads ahead need a source whose reads may overlap"));
        }
        match &mut self.im {
            Pipeline::Chunked(im) => im.read_ahead(src, off, len, keep),
            Pipeline::InPlace(_) => Err(Error::Internal("reads ahead need an ImageStream")),
        }
    }

    /// The block of `ticket` once read, waiting up to `wait` for it (None: not yet); chunks
    /// that come back meanwhile are written.
    ///
    /// # Errors
    /// An unknown ticket, or I/O writing the volume.
    pub fn read_result(&mut self, ticket: u64, wait: std::time::Duration) -> Result<Option<ReadBlock>> {
        match &mut self.im {
            Pipeline::Chunked(im) => im.read_result(self.vol, ticket, wait),
            Pipeline::InPlace(_) => Err(Error::Internal("reads ahead need an ImageStream")),
        }
    }

    /// Gives up on a read that hangs (a new compression thread takes its thread's place).
    pub fn abandon_read(&mut self, ticket: u64) {
        if let Pipeline::Chunked(im) = &mut self.im {
            im.abandon_read(ticket);
        }
    }

    /// Adds a block read whole by a compression thread at virtual `offset`.
    ///
    /// # Errors
    /// Offsets going backwards, a block not read whole, or I/O writing the volume.
    pub fn commit(&mut self, offset: u64, block: ReadBlock) -> Result<()> {
        match &mut self.im {
            Pipeline::Chunked(im) => im.commit(self.vol, offset, block),
            Pipeline::InPlace(_) => Err(Error::Internal("reads ahead need an ImageStream")),
        }
    }

    /// Records `[offset, offset+len)` as a symbolic stream (zeros, unreadable data).
    ///
    /// # Errors
    /// Offsets going backwards.
    pub fn fill(&mut self, offset: u64, len: u64, sym: Symbolic) -> Result<()> {
        match &mut self.im {
            Pipeline::Chunked(im) => im.fill(offset, len, sym),
            Pipeline::InPlace(p) => p.fill(self.vol, offset, len, sym),
        }
    }

    /// Ends the image at `size` as `ending` says (the unread rest aff4:UnknownData after an
    /// interruption, aff4:UnreadableData after the source stopped, kept bevies only after a
    /// failed write), then describes the Image: its types, data, hashes, `properties`, and the
    /// provenance every capture records (start and end times, completion state, unreadable
    /// bytes, the tool).
    ///
    /// # Errors
    /// Writing the volume fails (after a failed write: writing the map or metadata fails too).
    pub fn finish(mut self, size: u64, ending: Ending, properties: Vec<(String, Node)>) -> Result<FinishedImage> {
        let at = self.position();
        let size = size.max(at);
        match &ending {
            Ending::Interrupted if size > at => {
                // Hashing the unread rest (often most of an address space) would delay the
                // exit by minutes: the linear hashes cover what was read (aff4:prefixHash).
                match &mut self.im {
                    Pipeline::Chunked(im) => im.stop_hashing(),
                    Pipeline::InPlace(p) => p.stop_hashing(),
                }
                self.fill(at, size - at, Symbolic::Unknown)?;
            }
            Ending::ReadStopped(_) => self.fill(at, size - at, Symbolic::Unreadable)?,
            _ => {}
        }
        let failed = matches!(ending, Ending::WriteFailed(_));
        let result = match (self.im, failed) {
            (Pipeline::Chunked(im), true) => (*im).abandon(self.vol, size)?,
            (Pipeline::Chunked(im), false) => (*im).finish(self.vol, size)?,
            (Pipeline::InPlace(p), true) => (*p).abandon(self.vol, size)?,
            (Pipeline::InPlace(p), false) => (*p).finish(self.vol, size)?,
        };
        let completion = match ending {
            Ending::Complete if result.stats.unreadable_bytes > 0 => Completion::ReadErrors,
            Ending::Complete => Completion::Complete,
            Ending::Interrupted => Completion::Interrupted { at },
            Ending::ReadStopped(reason) => Completion::Stopped { at, reason },
            Ending::WriteFailed(error) => Completion::WriteFailed { at: result.lost_from.unwrap_or(at), error },
        };
        let dt = format!("{}dateTime", vocab::XSD);
        let a = |l: &str| format!("{}{l}", vocab::AFF4);
        let mut props = vec![
            (a("acquisitionStartTime"), Node::typed(&self.started, &dt)),
            (a("acquisitionEndTime"), Node::typed(crate::rdf::now(), &dt)),
            (a("acquisitionCompletionState"), Node::string(completion.to_string())),
            (a("tool"), Node::string(self.vol.tool().to_string())),
        ];
        if result.stats.unreadable_bytes > 0 {
            props.push((a("unreadableBytes"), Node::long(result.stats.unreadable_bytes)));
        }
        props.extend(properties);
        let types: Vec<&str> = self.types.iter().map(String::as_str).collect();
        describe_image(self.vol, &self.urn, &result, &types, props);
        Ok(FinishedImage { urn: self.urn, completion, result })
    }
}

/// Describes an Image object whose data is `r`'s map: types, size, linear hashes and the
/// Block-Map hash; `extra` adds further properties.
fn describe_image(vol: &mut VolumeWriter, image: &str, r: &ImagerResult, types: &[&str], extra: Vec<(String, Node)>) {
    let g = vol.graph_mut();
    for t in types {
        g.add(image, RDF_TYPE, Node::iri(*t));
    }
    g.add(image, vocab::DATA_STREAM, Node::iri(&r.map_urn));
    g.add(image, vocab::SIZE, Node::long(r.size));
    // Hashes of part of the image are recorded as such, never as aff4:hash. With block hashes,
    // the Image's aff4:hash is the Block-Map hash alone (as Evimetry writes it, and as pyaff4's
    // validator requires), and linear hashes of the whole image go on its Map: the same bytes.
    let (subject, prop) = match (r.hashed < r.size, r.block_map_hash.is_some()) {
        (true, _) => (image, vocab::PREFIX_HASH),
        (false, true) => (r.map_urn.as_str(), vocab::HASH),
        (false, false) => (image, vocab::HASH),
    };
    for (a, d) in &r.hashes {
        g.add(subject, prop, Node::typed(crate::hash::hex(d), a.datatype()));
    }
    if r.hashed < r.size && !r.hashes.is_empty() {
        g.add(image, vocab::PREFIX_HASH_LENGTH, Node::long(r.hashed));
    }
    if let Some(b) = &r.block_map_hash {
        g.add(image, vocab::HASH, Node::typed(crate::hash::hex(b), vocab::BLOCK_MAP_HASH_SHA512));
    }
    g.add(&r.map_urn, vocab::TARGET, Node::iri(image));
    for (p, o) in extra {
        g.add(image, &p, o);
    }
    vol.register(image);
    // A snapshot for recovery after a crash; one that cannot be written only narrows what
    // recovery rebuilds (the volume's close reports the disk error itself).
    let _ = vol.checkpoint();
}

#[cfg(test)]
mod tests {
    use super::is_zero;

    #[test]
    fn a_single_nonzero_byte_anywhere_makes_a_buffer_nonzero() {
        for len in [0usize, 1, 15, 255, 256, 4096, 4100] {
            let mut b = vec![0u8; len];
            assert!(is_zero(&b), "{len} zero bytes");
            for at in [0, 1, 15, 16, 255, 256, 1000, 4095, 4096, 4099] {
                if at < len {
                    b[at] = 0x80;
                    assert!(!is_zero(&b), "{len} bytes, byte {at} set");
                    b[at] = 0;
                }
            }
        }
    }
}
