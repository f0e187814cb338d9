//! A stripped model of the acquisition pipeline, to measure what a design can gain before
//! building it (`bench/run.sh design`). It does the pipeline's work on FILE with the
//! pipeline's own code (the zero-page scan, snappy on 32 KiB chunks, SHA-256 block hashes two
//! at a time, the uncached writer) but none of its bookkeeping: no map, no bevy index, no
//! retries or timeouts, and each block's last chunk is padded with zeros so that blocks can be
//! packed independently. Its times are therefore a bound on what the design could reach.
//!
//! Two designs:
//! - `own`: each compression thread reads its own blocks (the bytes stay in that core's cache
//!   from the read to the compression; no reader thread): pmem's design for a source whose
//!   reads may overlap (a memory device through one open file per thread, since Linux's
//!   /proc/kcore copies through one bounce buffer per open file; bench/RESULTS.md, sessions
//!   20 and 21);
//! - `reader`: one thread reads, a few blocks ahead, and the compression threads take its
//!   blocks: pmem's design for any other source.
//!
//! Usage: pipelinemodel FILE OUT own|reader [BLOCK_KIB] [QUEUE]
//! (OUT `-` discards the output; QUEUE is the blocks of compressed output waiting to be
//! written, 4 by default.)

use aff4::codec::{ChunkEncoder, Codec};
use aff4::iobuf::IoBuf;
use aff4::stream::ReadAt;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const PAGE: usize = 4096;
const CHUNK: usize = 32 << 10;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(out), Some(design)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: pipelinemodel FILE OUT own|reader [BLOCK_KIB] [QUEUE]");
        std::process::exit(2);
    };
    let own = match design.as_str() {
        "own" => true,
        "reader" => false,
        _ => return Err(io::Error::other("the design is `own` or `reader`")),
    };
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse::<usize>().ok()).unwrap_or(d);
    let block = num(4, 256) << 10;
    let queue = num(5, 4);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    let started = Instant::now();
    let src: Arc<dyn ReadAt> = Arc::new(std::fs::File::open(file)?);
    let len = src.len()?;
    let count = len.div_ceil(block as u64);
    let (done_tx, done_rx) = bounded::<(u64, Vec<u8>)>(queue);
    let inputs = if own { None } else { Some(reader(src.clone(), count, block)) };
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..threads {
        let (src, next, inputs, done_tx) = (src.clone(), next.clone(), inputs.clone(), done_tx.clone());
        workers.push(std::thread::spawn(move || -> io::Result<()> {
            let mut buf = IoBuf::zeroed(block);
            let mut work = Work::new();
            loop {
                let (k, n) = match &inputs {
                    Some((rx, back)) => {
                        let Ok((k, b, n)) = rx.recv() else { return Ok(()) };
                        let _ = back.send(std::mem::replace(&mut buf, b));
                        (k, n)
                    }
                    None => {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= count {
                            return Ok(());
                        }
                        (k, src.read_at(k * block as u64, &mut buf)?)
                    }
                };
                if done_tx.send((k, work.encode(&buf[..n]))).is_err() {
                    return Ok(());
                }
            }
        }));
    }
    drop(done_tx);
    let written = write_in_order(done_rx, out)?;
    for w in workers {
        w.join().map_err(|_| io::Error::other("a compression thread panicked"))??;
    }
    println!("{design} {:.3} s {written} bytes", started.elapsed().as_secs_f64());
    Ok(())
}

/// The reader thread of the `reader` design: blocks in order, three ahead, into buffers the
/// compression threads give back.
type Inputs = (Receiver<(u64, IoBuf, usize)>, Sender<IoBuf>);
fn reader(src: Arc<dyn ReadAt>, count: u64, block: usize) -> Inputs {
    let (tx, rx) = bounded::<(u64, IoBuf, usize)>(3);
    let (back_tx, back_rx) = crossbeam_channel::unbounded::<IoBuf>();
    std::thread::spawn(move || {
        for k in 0..count {
            let mut b = back_rx.try_recv().unwrap_or_else(|_| IoBuf::zeroed(block));
            let Ok(n) = src.read_at(k * block as u64, &mut b) else { return };
            if tx.send((k, b, n)).is_err() {
                return;
            }
        }
    });
    (rx, back_tx)
}

/// One compression thread's buffers.
struct Work {
    packed: Vec<u8>,
    enc: ChunkEncoder,
}

impl Work {
    fn new() -> Work {
        Work { packed: Vec::new(), enc: ChunkEncoder::new(Codec::Snappy) }
    }

    /// The block's non-zero pages packed into chunks (the last padded), each stored as its
    /// SHA-256 then its snappy payload.
    fn encode(&mut self, data: &[u8]) -> Vec<u8> {
        self.packed.clear();
        for p in data.chunks(PAGE).filter(|p| !aff4::imager::is_zero(p)) {
            self.packed.extend_from_slice(p);
        }
        self.packed.resize(self.packed.len().div_ceil(CHUNK) * CHUNK, 0);
        let mut out = Vec::with_capacity(data.len() / 2);
        let chunks: Vec<&[u8]> = self.packed.chunks(CHUNK).collect();
        for pair in chunks.chunks(2) {
            for d in aff4::hash::sha256_each(pair) {
                out.extend_from_slice(&d);
            }
            for c in pair {
                out.extend_from_slice(self.enc.encode(c).unwrap_or(c));
            }
        }
        out
    }
}

/// Writes the blocks' output in block order through the uncached writer (or nowhere for `-`);
/// returns the bytes written.
fn write_in_order(rx: Receiver<(u64, Vec<u8>)>, out: &str) -> io::Result<u64> {
    let mut w: Box<dyn Write> = match out {
        "-" => Box::new(io::sink()),
        _ => Box::new(aff4::volume::uncached::Uncached::new(std::fs::File::create(out)?, 0)?),
    };
    let (mut pending, mut next, mut written) = (BTreeMap::new(), 0u64, 0u64);
    for (k, o) in rx {
        pending.insert(k, o);
        while let Some(o) = pending.remove(&next) {
            w.write_all(&o)?;
            written += o.len() as u64;
            next += 1;
        }
    }
    w.flush()?;
    Ok(written)
}
