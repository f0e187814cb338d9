//! Sequential read-ahead over a [`Stream`] for callers that read in small pieces one at a
//! time (a FUSE mount gets 128 KiB requests): when reads move forward, the next blocks are
//! decoded on other threads while the caller consumes the current one. Memory is bounded by
//! `(depth * 2 + 2)` blocks.

use crate::error::{Error, Result};
use crate::stream::Stream;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

enum Slot {
    Pending,
    Ready(Arc<Vec<u8>>),
}

#[derive(Default)]
struct State {
    blocks: HashMap<u64, Slot>,
    /// Ready blocks, oldest first, for eviction.
    order: VecDeque<u64>,
    /// The block the last read ended in.
    last: Option<u64>,
    inflight: usize,
}

struct Shared {
    inner: Arc<dyn Stream>,
    block: u64,
    state: Mutex<State>,
    cv: Condvar,
}

/// A [`Stream`] that reads ahead of sequential readers on background threads.
pub struct ReadAhead {
    shared: Arc<Shared>,
    depth: u64,
    threads: usize,
}

impl ReadAhead {
    /// Wraps `inner`; blocks of `block` bytes, up to `depth` of them ahead, decoded by at most `threads` threads.
    pub fn new(inner: Arc<dyn Stream>, block: usize, depth: usize, threads: usize) -> ReadAhead {
        let shared = Shared { inner, block: block.max(4096) as u64, state: Mutex::new(State::default()), cv: Condvar::new() };
        ReadAhead { shared: Arc::new(shared), depth: depth.max(1) as u64, threads: threads.max(1) }
    }

    fn capacity(&self) -> usize {
        self.depth as usize * 2 + 2
    }
}

impl Shared {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::corrupt(self.inner.describe(), 0, "read-ahead state poisoned"))
    }

    fn load(&self, b: u64) -> Result<Vec<u8>> {
        let start = b * self.block;
        let n = self.block.min(self.inner.size().saturating_sub(start)) as usize;
        let mut buf = vec![0u8; n];
        self.inner.read_exact_at(start, &mut buf)?;
        Ok(buf)
    }

    fn store(&self, st: &mut State, b: u64, data: Option<Arc<Vec<u8>>>, cap: usize) {
        match data {
            Some(d) => {
                st.blocks.insert(b, Slot::Ready(d));
                st.order.push_back(b);
                while st.order.len() > cap {
                    if let Some(old) = st.order.pop_front() {
                        st.blocks.remove(&old);
                    }
                }
            }
            None => {
                st.blocks.remove(&b);
            }
        }
        self.cv.notify_all();
    }

    /// Block `b`: from the cache, by waiting for a read-ahead in flight, or read here.
    fn get(&self, b: u64, cap: usize) -> Result<Arc<Vec<u8>>> {
        let mut st = self.lock()?;
        loop {
            match st.blocks.get(&b) {
                Some(Slot::Ready(d)) => return Ok(d.clone()),
                Some(Slot::Pending) => {
                    st = self.cv.wait(st).map_err(|_| Error::corrupt(self.inner.describe(), 0, "read-ahead state poisoned"))?;
                }
                None => break,
            }
        }
        st.blocks.insert(b, Slot::Pending);
        drop(st);
        let r = self.load(b).map(Arc::new);
        let mut st = self.lock()?;
        self.store(&mut st, b, r.as_ref().ok().cloned(), cap);
        r
    }
}

impl ReadAhead {
    /// Calls `f` with `[offset, offset+len)` (clipped to the end) straight from the cached block
    /// when the range lies within one block, else with a copy: no copy for aligned readers.
    ///
    /// # Errors
    /// Read errors of the inner stream.
    pub fn with_range<T>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let size = self.size();
        let len = (len as u64).min(size.saturating_sub(offset)) as usize;
        let bs = self.shared.block;
        if len > 0 && offset / bs == (offset + len as u64 - 1) / bs {
            let b = offset / bs;
            let data = self.shared.get(b, self.capacity())?;
            let within = (offset - b * bs) as usize;
            if within + len <= data.len() {
                self.note_read(offset, len as u64)?;
                return Ok(f(&data[within..within + len]));
            }
        }
        let mut buf = vec![0u8; len];
        let n = self.read_at(offset, &mut buf)?;
        Ok(f(&buf[..n]))
    }
}

impl ReadAhead {
    /// Records a read of `[offset, offset+n)`; when reads move forward, starts reading the next blocks.
    fn note_read(&self, offset: u64, n: u64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let size = self.size();
        let bs = self.shared.block;
        let cap = self.capacity();
        let last_block = (offset + n - 1) / bs;
        let first_block = offset / bs;
        let mut st = self.shared.lock()?;
        let sequential = st.last.is_some_and(|l| first_block == l || first_block == l + 1);
        st.last = Some(last_block);
        if sequential {
            let nblocks = size.div_ceil(bs);
            for next in last_block + 1..(last_block + 1 + self.depth).min(nblocks) {
                if st.inflight >= self.threads {
                    break;
                }
                if st.blocks.contains_key(&next) {
                    continue;
                }
                st.blocks.insert(next, Slot::Pending);
                st.inflight += 1;
                let shared = self.shared.clone();
                std::thread::spawn(move || {
                    let r = shared.load(next).ok().map(Arc::new);
                    if let Ok(mut st) = shared.lock() {
                        st.inflight -= 1;
                        shared.store(&mut st, next, r, cap);
                    }
                });
            }
        }
        Ok(())
    }
}

impl Stream for ReadAhead {
    fn size(&self) -> u64 {
        self.shared.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let size = self.size();
        if offset >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - offset) as usize;
        let bs = self.shared.block;
        let cap = self.capacity();
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let b = pos / bs;
            let data = self.shared.get(b, cap)?;
            let within = (pos - b * bs) as usize;
            let k = data.len().saturating_sub(within).min(n - done);
            if k == 0 {
                return Err(Error::corrupt(self.describe(), pos, "stream shorter than its size"));
            }
            buf[done..done + k].copy_from_slice(&data[within..within + k]);
            done += k;
        }
        self.note_read(offset, n as u64)?;
        Ok(n)
    }

    fn describe(&self) -> String {
        self.shared.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::MemStream;

    #[test]
    fn same_bytes_in_any_order() {
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 4096) as u8).collect();
        let ra = ReadAhead::new(Arc::new(MemStream::new(data.clone(), "t")), 65536, 4, 2);
        let mut out = vec![0u8; data.len()];
        for (i, c) in out.chunks_mut(131072).enumerate() {
            assert_eq!(ra.read_at((i * 131072) as u64, c).unwrap(), c.len());
        }
        assert_eq!(out, data);
        for &(off, len) in &[(999_990u64, 100usize), (5, 70000), (65535, 2), (0, 0)] {
            let mut b = vec![0u8; len];
            let got = ra.read_at(off, &mut b).unwrap();
            assert_eq!(&b[..got], &data[off as usize..off as usize + got]);
        }
        assert!(ra.shared.state.lock().unwrap().order.len() <= ra.capacity());
    }
}
