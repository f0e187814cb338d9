//! The machine's floor for imaging FILE: the single-core cost of each stage of the imaging
//! pipeline over FILE's bytes, measured here with the pipeline's own code (read in 4 MiB
//! blocks, the zero-page scan, compression of the non-zero 32 KiB chunks, the hash, and writing
//! the compressed bytes through the uncached writer to DIR), and the floor = max(sum / cores,
//! the largest serial stage). Two floors: `pmem image`'s (a linear SHA-256 of every byte, one
//! serial stage) and `pmem acquire`'s (SHA-256 block hashes of the non-zero chunks, those of
//! a read block at a time, on the compression threads). `bench/run.sh image` and `acquire`
//! divide wall times by them.
//!
//! Usage: stagecost FILE DIR [CODEC]

use aff4::codec::{ChunkEncoder, Codec};
use aff4::hash::HashAlgo;
use std::io::{Read, Write};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stagecost FILE DIR [CODEC]");
        std::process::exit(2);
    };
    let codec = args.get(3).and_then(|c| Codec::from_name(c)).unwrap_or(Codec::Snappy);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    const BLOCK: usize = 4 << 20;
    const PAGE: usize = 4096;
    const CHUNK: usize = 32 << 10;
    // The block an acquisition's compression threads read (memacq's default for kcore).
    const READ_BLOCK: usize = 512 << 10;

    // The bytes, for the other stages (not timed; this also warms the page cache).
    let data = std::fs::read(file)?;
    // read: the file in blocks into a reused aligned buffer, as the capture engine's reader does.
    let t = Instant::now();
    let mut f = std::fs::File::open(file)?;
    let mut buf = aff4::iobuf::IoBuf::zeroed(BLOCK);
    while f.read(&mut buf)? > 0 {}
    let read = t.elapsed().as_secs_f64();

    // zero scan: which 4 KiB pages are zero (the pipeline thread).
    let t = Instant::now();
    let nonzero: Vec<&[u8]> = data.chunks(PAGE).filter(|p| !aff4::imager::is_zero(p)).collect();
    let scan = t.elapsed().as_secs_f64();

    // compression of the non-zero pages packed into chunks (the workers, here on one core).
    let packed: Vec<u8> = nonzero.concat();
    let t = Instant::now();
    let mut enc = ChunkEncoder::new(codec);
    let mut stored = 0usize;
    for c in packed.chunks(CHUNK) {
        stored += enc.encode(c).map(|e| e.len()).unwrap_or(c.len());
    }
    let compress = t.elapsed().as_secs_f64();

    // SHA-256 of the whole image (the hasher thread).
    let t = Instant::now();
    let mut h = HashAlgo::Sha256.hasher();
    for b in data.chunks(BLOCK) {
        h.update(b);
    }
    let _ = h.finish();
    let sha = t.elapsed().as_secs_f64();

    // SHA-256 block hashes of the stored chunks, as the compression threads take them: each
    // read block's non-zero pages packed into chunks (the last padded), hashed together.
    let per_block: Vec<Vec<u8>> = data
        .chunks(READ_BLOCK)
        .map(|b| {
            let mut p: Vec<u8> = b.chunks(PAGE).filter(|p| !aff4::imager::is_zero(p)).flatten().copied().collect();
            p.resize(p.len().div_ceil(CHUNK) * CHUNK, 0);
            p
        })
        .collect();
    let t = Instant::now();
    for p in &per_block {
        let _ = aff4::hash::sha256_each(&p.chunks(CHUNK).collect::<Vec<_>>());
    }
    let blocks = t.elapsed().as_secs_f64();
    drop(per_block);

    // write: the stored bytes through the uncached writer the volume uses. Its wall time waits
    // on the device; only its CPU time competes for the cores.
    let out = std::path::Path::new(dir).join("stagecost.out");
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    {
        let mut w = aff4::volume::uncached::Uncached::new(std::fs::File::create(&out)?, 0)?;
        let mut left = stored;
        while left > 0 {
            let n = left.min(packed.len()).min(BLOCK);
            w.write_all(&packed[..n])?;
            left -= n;
        }
        w.finish()?;
    }
    let write = t.elapsed().as_secs_f64();
    let write_cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => write,
    };
    std::fs::remove_file(&out)?;

    let sum = read + scan + compress + sha + write;
    let serial = [read, scan, sha, write].into_iter().fold(0.0, f64::max);
    let floor = (sum / cores as f64).max(serial);
    println!(
        "stages (s, one core): read {read:.2}  zero-scan {scan:.2}  compress({}) {compress:.2}  sha256 {sha:.2}  block-sha256 {blocks:.2}  write {write:.2} (CPU {write_cpu:.2})",
        codec.name()
    );
    println!("floor {floor:.2} s  (sum {sum:.2} / {cores} cores = {:.2}; largest serial stage {serial:.2})", sum / cores as f64);
    // Acquisition: the block hashes run beside compression, so only the reader, the scan and
    // the writer are serial stages.
    let sum = read + scan + compress + blocks + write_cpu;
    let serial = [read, scan, write].into_iter().fold(0.0, f64::max);
    let floor = (sum / cores as f64).max(serial);
    println!("acquire-floor {floor:.2} s  (sum {sum:.2} / {cores} cores = {:.2}; largest serial stage {serial:.2})", sum / cores as f64);
    Ok(())
}

/// CPU time of this process so far (all threads), where the platform reports it.
fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given.
        let u = unsafe {
            if libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) != 0 {
                return None;
            }
            u.assume_init()
        };
        let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(s(u.ru_utime) + s(u.ru_stime))
    }
    #[cfg(not(unix))]
    None
}
