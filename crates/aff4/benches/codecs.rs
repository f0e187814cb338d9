//! Single-core cost of each stage of the imaging pipeline on a memory-like corpus, per thread CPU
//! time (so a busy machine distorts it less than wall time), with `memcpy` of the same bytes as
//! the baseline measured in the same run.
//!
//!   cargo bench -p aff4 --bench codecs [-- CORPUS [MiB]]
//!
//! CORPUS defaults to /tmp/pmem-bench/corpus.bin (bench/run.sh makes it); the first 512 MiB are
//! used. Zero 4 KiB pages are dropped first, as the imager does; the rest is cut into 32 KiB
//! chunks and each codec compresses every chunk independently.

use aff4::codec::{ChunkEncoder, Codec};
use std::time::Duration;

/// This thread's CPU time, where the platform reports it (elsewhere, time since the first call).
fn cpu() -> Duration {
    #[cfg(unix)]
    {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: t is a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let path = args.first().cloned().unwrap_or_else(|| "/tmp/pmem-bench/corpus.bin".into());
    let mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(512);
    let mut data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e} (bench/run.sh image makes the corpus)");
            return;
        }
    };
    data.truncate(mib << 20);
    let t = cpu();
    let packed: Vec<u8> = data.chunks(4096).filter(|p| p.iter().any(|&b| b != 0)).flatten().copied().collect();
    let scan = cpu() - t;
    let mb = |n: usize, d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!(
        "input {} MiB, non-zero pages {} MiB; zero scan + pack {:.0} MB/s",
        data.len() >> 20,
        packed.len() >> 20,
        mb(data.len(), scan)
    );

    let mut sink = vec![0u8; 32768];
    let t = cpu();
    for _ in 0..4 {
        for c in packed.chunks(32768) {
            sink[..c.len()].copy_from_slice(c);
            std::hint::black_box(&sink);
        }
    }
    let base = (cpu() - t) / 4;
    println!("{:<22} {:>8.0} MB/s  (baseline)", "memcpy 32 KiB", mb(packed.len(), base));

    let t = cpu();
    let d = aff4::HashAlgo::Sha256.digest(&data);
    let sha = cpu() - t;
    std::hint::black_box(d);
    println!(
        "{:<22} {:>8.0} MB/s  {:>6.1}x memcpy time (of all input, zeros included)",
        "sha256",
        mb(data.len(), sha),
        sha.as_secs_f64() / base.as_secs_f64() * packed.len() as f64 / data.len() as f64
    );

    for codec in [Codec::Snappy, Codec::Lz4] {
        let mut enc = ChunkEncoder::new(codec);
        let mut out = 0usize;
        let t = cpu();
        for c in packed.chunks(32768) {
            out += enc.encode(c).map_or(c.len(), |b| b.len());
        }
        let d = cpu() - t;
        println!(
            "{:<22} {:>8.0} MB/s  {:>6.1}x memcpy time, output {:.4} of the non-zero input",
            codec.name(),
            mb(packed.len(), d),
            d.as_secs_f64() / base.as_secs_f64(),
            out as f64 / packed.len() as f64
        );
    }
}
