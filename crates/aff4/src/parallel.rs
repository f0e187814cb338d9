//! Reading a stream on several threads while a single consumer sees the blocks in order
//! (hashing, `cat`, export): bounded look-ahead keeps memory at `window × block` bytes.

use crate::error::{Error, Result};
use crate::stream::Stream;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

/// Default block size for parallel reads.
pub const BLOCK: usize = 4 << 20;

/// Reads `[start, start+len)` of `stream` in `block`-sized pieces on `threads` threads and
/// calls `f(offset, bytes)` for each piece in order.
///
/// # Errors
/// The first read error or the first error `f` returns.
pub fn for_each_block(
    stream: &dyn Stream,
    start: u64,
    len: u64,
    block: usize,
    threads: usize,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let block = block.max(1) as u64;
    let nblocks = len.div_ceil(block);
    if nblocks == 0 {
        return Ok(());
    }
    let threads = threads.clamp(1, 64);
    if threads == 1 || nblocks == 1 {
        let mut buf = vec![0u8; block.min(len) as usize];
        for k in 0..nblocks {
            let off = start + k * block;
            let n = block.min(len - k * block) as usize;
            stream.read_exact_at(off, &mut buf[..n])?;
            f(off, &buf[..n])?;
        }
        return Ok(());
    }
    let window = (threads as u64) * 2;
    let next = AtomicU64::new(0);
    let consumed = Mutex::new(0u64);
    let cv = Condvar::new();
    let abort = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(u64, Result<Vec<u8>>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, consumed, cv, abort) = (&next, &consumed, &cv, &abort);
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= nblocks {
                    break;
                }
                {
                    let Ok(mut c) = consumed.lock() else { break };
                    while k >= *c + window && !abort.load(Ordering::SeqCst) {
                        c = match cv.wait(c) {
                            Ok(c) => c,
                            Err(_) => return,
                        };
                    }
                }
                if abort.load(Ordering::SeqCst) {
                    break;
                }
                let off = start + k * block;
                let n = block.min(len - k * block) as usize;
                let mut buf = vec![0u8; n];
                let r = stream.read_exact_at(off, &mut buf).map(|_| buf);
                if tx.send((k, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<u64, Result<Vec<u8>>> = BTreeMap::new();
        let mut expect = 0u64;
        let mut result = Ok(());
        while expect < nblocks {
            if let Some(r) = pending.remove(&expect) {
                let r = r.and_then(|b| f(start + expect * block, &b));
                expect += 1;
                if let Ok(mut c) = consumed.lock() {
                    *c = expect;
                }
                cv.notify_all();
                if let Err(e) = r {
                    result = Err(e);
                    break;
                }
                continue;
            }
            match rx.recv() {
                Ok((k, r)) => {
                    pending.insert(k, r);
                }
                Err(_) => {
                    result = Err(Error::Internal("reader threads ended early"));
                    break;
                }
            }
        }
        abort.store(true, Ordering::SeqCst);
        cv.notify_all();
        drop(rx);
        result
    })
}

/// The number of worker threads to use by default (all cores).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}
