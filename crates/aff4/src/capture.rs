//! The capture engine every acquisition runs through (memory, disks and files, stdin,
//! pagefiles): a [`Plan`] of blocks is read a few blocks ahead of the imaging pipeline, by its
//! compression threads where the image is an ImageStream and the source gives reads at once
//! their own bytes ([`ReadAt::concurrent_reads`]; each block is then packed and encoded by the
//! thread that read it, while its bytes are in that core's cache), else on a helper thread;
//! the blocks go into the image in order. A block that fails is retried unit by unit as the
//! [`RetryPolicy`] says, and what stays unreadable is recorded as `aff4:UnreadableData`
//! (acquisition never aborts on a bad page or sector); a read that hangs is abandoned after the
//! policy's timeout; a stop request ends the run with what was read. The result is an
//! [`Ending`] for [`ImageWriter::finish`], which records the completion state.

use crate::error::Result;
use crate::imager::{Ending, ImageWriter, ReadBlock};
use crate::iobuf::IoBuf;
use crate::stream::ReadAt;
use crate::symbolic::Symbolic;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How failed reads are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// After a block fails, it is read again in pieces of this size, aligned to it (a page, a
    /// sector); what still fails is recorded as unreadable in these units.
    pub unit: u64,
    /// Tries per unit.
    pub attempts: u32,
    /// A read that takes longer is abandoned (its helper thread left behind) and counts as
    /// failed; after a timeout a unit is not tried again, and two in a row give up the block.
    pub timeout: Option<Duration>,
    /// Blocks read ahead of the pipeline.
    pub read_ahead: usize,
}

impl RetryPolicy {
    /// Physical memory: 4 KiB pages, each tried twice; reads that hang are abandoned.
    pub fn pages(timeout: Option<Duration>) -> RetryPolicy {
        RetryPolicy { unit: 4096, attempts: 2, timeout, read_ahead: 3 }
    }

    /// Disks, files and pagefiles: 4 KiB (a multiple of 512-byte and 4Kn sectors, and a
    /// typical NTFS cluster), each tried once.
    pub fn sectors() -> RetryPolicy {
        RetryPolicy { unit: 4096, attempts: 1, timeout: None, read_ahead: 4 }
    }
}

/// One read of the plan: `len` bytes at source offset `src`, placed at image offset `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Source offset (a physical address, a byte of a file).
    pub src: u64,
    /// Length.
    pub len: u64,
    /// Where it goes in the image.
    pub at: u64,
    /// False for ranges the source cannot read at all (recorded as unreadable without trying).
    pub readable: bool,
}

/// Splits source `[start, end)` into readable blocks of at most `block` bytes that end on
/// `unit` boundaries (so that retries stay aligned), placed from image offset `at`.
pub fn blocks(start: u64, end: u64, at: u64, block: u64, unit: u64) -> Vec<Block> {
    let unit = unit.max(1);
    let block = (block.max(unit) / unit) * unit;
    let mut v = Vec::new();
    let mut off = start;
    while off < end {
        let n = (block - (off % unit)).min(end - off);
        v.push(Block { src: off, len: n, at: at + (off - start), readable: true });
        off += n;
    }
    v
}

/// What to read.
#[derive(Debug, Clone)]
pub enum Plan {
    /// These blocks, in ascending image order.
    Blocks(Vec<Block>),
    /// A stream of unknown length (stdin, a pipe): reads of up to `block` bytes until one
    /// returns nothing; no retries (what a stream gave once is gone).
    Stream {
        /// Read size.
        block: usize,
    },
}

/// Hooks into a run, for what a front end records beside the image.
pub trait Observer {
    /// Whether [`Observer::data`] needs the block of `len` bytes at `src` (by default, every
    /// block); a block whose bytes no one needs is packed and encoded by the compression
    /// thread that read it, and its bytes never leave that thread.
    fn wants_data(&self, _src: u64, _len: u64) -> bool {
        true
    }
    /// Bytes read at source offset `src` (before they go into the image).
    fn data(&mut self, _src: u64, _data: &[u8]) {}
    /// A readable block is done: submitted at `submitted`, finished (retries included) at `done`.
    fn block(&mut self, _src: u64, _len: u64, _submitted: Instant, _done: Instant) {}
    /// Progress: bytes of the plan done, units found unreadable.
    fn progress(&mut self, _done: u64, _unreadable_units: u64) {}
}

/// No hooks.
impl Observer for () {
    fn wants_data(&self, _src: u64, _len: u64) -> bool {
        false
    }
}

/// Progress only, from a closure `(done, unreadable_units)`.
pub struct OnProgress<F: FnMut(u64, u64)>(pub F);

impl<F: FnMut(u64, u64)> Observer for OnProgress<F> {
    fn wants_data(&self, _src: u64, _len: u64) -> bool {
        false
    }
    fn progress(&mut self, done: u64, unreadable_units: u64) {
        (self.0)(done, unreadable_units)
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended (give it to [`ImageWriter::finish`]).
    pub ending: Ending,
    /// Bytes of the plan done (read, or recorded as unreadable).
    pub done: u64,
    /// Source ranges recorded as unreadable, `[start, end)`, merged where they touch.
    pub unreadable: Vec<(u64, u64)>,
    /// Units recorded as unreadable.
    pub unreadable_units: u64,
    /// Reads abandoned after the timeout.
    pub timed_out_reads: u64,
}

/// The result of one read.
#[derive(Debug)]
pub enum Read {
    /// `n` bytes arrived at the start of the buffer (fewer than asked: the source ends there).
    Got(IoBuf, usize),
    /// The read failed.
    Failed(io::Error),
    /// The read took longer than the policy's timeout.
    TimedOut,
    /// The stop flag was set while waiting.
    Stopped,
}

type Reply = (IoBuf, io::Result<usize>);
/// A read for the helper: offset, buffer, whether to fill it whole (blocks) or take one read (streams), reply.
type Job = (u64, IoBuf, bool, mpsc::Sender<Reply>);

/// A read submitted, not yet waited for.
enum Pending {
    Threaded(mpsc::Receiver<Reply>),
    Deferred(u64, IoBuf),
    /// Handed to the image's compression threads (see [`ImageWriter::read_ahead`]): its ticket.
    Encoding(u64),
}

/// A block's read, waited for.
enum Arrived {
    /// All of it came, already packed and encoded by a compression thread.
    Encoded(ReadBlock),
    /// Anything else, or a read by the helper thread.
    Read(Read),
}

/// Where the bytes come from.
pub enum Input<'a> {
    /// A source shared with helper threads: reads overlap the pipeline and can time out.
    Shared(Arc<dyn ReadAt>),
    /// A source only this thread can use (e.g. a file inside a filesystem being parsed):
    /// read in turn, without timeouts.
    Local(&'a mut dyn FnMut(u64, &mut [u8]) -> io::Result<usize>),
}

/// Reads `buf` at `off` through `read` until it is full or the source ends; returns the bytes read.
pub(crate) fn fill(read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<usize>, off: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match read(off + n as u64, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The engine: a source, its retry policy and the stop flag (see the module documentation).
pub struct Capture<'a, 'i> {
    input: Input<'i>,
    policy: RetryPolicy,
    stop: &'a AtomicBool,
    tx: Option<mpsc::Sender<Job>>,
}

/// How often a wait looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);

impl<'a, 'i> Capture<'a, 'i> {
    /// An engine reading `input` as `policy` says; setting `stop` ends a run early.
    pub fn new(input: Input<'i>, policy: RetryPolicy, stop: &'a AtomicBool) -> Capture<'a, 'i> {
        Capture { input, policy, stop, tx: None }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn submit(&mut self, off: u64, buf: IoBuf) -> Pending {
        self.submit_as(off, buf, true)
    }

    fn submit_as(&mut self, off: u64, buf: IoBuf, whole: bool) -> Pending {
        let src = match &self.input {
            Input::Shared(s) => s.clone(),
            Input::Local(_) => return Pending::Deferred(off, buf),
        };
        let tx = self.tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::spawn(move || {
                while let Ok((off, mut buf, whole, reply)) = rx.recv() {
                    let r = if whole { fill(&mut |o, b| src.read_at(o, b), off, &mut buf) } else { src.read_at(off, &mut buf) };
                    if reply.send((buf, r)).is_err() {
                        break;
                    }
                }
            });
            tx
        });
        let (rtx, rrx) = mpsc::channel();
        if tx.send((off, buf, whole, rtx)).is_err() {
            self.tx = None;
        }
        Pending::Threaded(rrx)
    }

    fn wait(&mut self, p: Pending) -> Read {
        let rx = match p {
            Pending::Deferred(off, mut buf) => {
                let Input::Local(f) = &mut self.input else { return Read::Failed(io::Error::other("internal: deferred read")) };
                return match fill(*f, off, &mut buf) {
                    Ok(n) => Read::Got(buf, n),
                    Err(e) => Read::Failed(e),
                };
            }
            Pending::Threaded(rx) => rx,
            Pending::Encoding(_) => return Read::Failed(io::Error::other("internal: an encoded read waited for as a plain one")),
        };
        let started = Instant::now();
        loop {
            let Some(slice) = self.slice(started) else {
                // The helper is left behind with its read; later reads start a new one.
                self.tx = None;
                return Read::TimedOut;
            };
            match rx.recv_timeout(slice) {
                Ok((buf, Ok(n))) => return Read::Got(buf, n),
                Ok((_, Err(e))) => return Read::Failed(e),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.tx = None;
                    return Read::Failed(io::Error::other("the reading thread ended"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) if self.stopped() => {
                    self.tx = None;
                    return Read::Stopped;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// How long to wait next for a read started at `started`: until the policy's timeout, in
    /// slices that look at the stop flag; None once the timeout has passed.
    fn slice(&self, started: Instant) -> Option<Duration> {
        match self.policy.timeout {
            Some(t) => t.checked_sub(started.elapsed()).map(|left| left.min(POLL)),
            None => Some(POLL),
        }
    }

    /// Whether blocks are read on the image's compression threads: the image is an
    /// ImageStream and the source gives each of several reads at once its own bytes.
    fn reads_encoded(&self, w: &ImageWriter<'_>) -> bool {
        matches!(&self.input, Input::Shared(src) if src.concurrent_reads()) && w.reads_ahead() > 0
    }

    /// Starts the read of block `b`: on the image's compression threads where it can (the
    /// bytes are then packed and encoded in the cache of the core that read them), else on
    /// the helper thread.
    fn submit_block(&mut self, w: &mut ImageWriter<'_>, b: &Block, keep: bool) -> Pending {
        if let Input::Shared(src) = &self.input {
            if self.reads_encoded(w) {
                if let Ok(t) = w.read_ahead(src.clone(), b.src, b.len as usize, keep) {
                    return Pending::Encoding(t);
                }
            }
        }
        self.submit(b.src, w.buffer(b.len as usize))
    }

    /// Waits for block `b`'s read as the policy says (see [`Capture::wait`]).
    ///
    /// # Errors
    /// Writing the chunks that came back meanwhile failed.
    fn wait_block(&mut self, w: &mut ImageWriter<'_>, b: &Block, p: Pending) -> Result<Arrived> {
        let Pending::Encoding(ticket) = p else { return Ok(Arrived::Read(self.wait(p))) };
        let started = Instant::now();
        loop {
            let Some(slice) = self.slice(started) else {
                w.abandon_read(ticket);
                return Ok(Arrived::Read(Read::TimedOut));
            };
            if let Some(rb) = w.read_result(ticket, slice)? {
                if matches!(rb.read, Ok(n) if n as u64 == b.len) {
                    return Ok(Arrived::Encoded(rb));
                }
                let (buf, r) = rb.into_read();
                return Ok(Arrived::Read(match r {
                    Ok(n) => Read::Got(buf, n),
                    Err(e) => Read::Failed(e),
                }));
            }
            if self.stopped() {
                return Ok(Arrived::Read(Read::Stopped));
            }
        }
    }

    /// Reads `len` bytes at `off` now (e.g. a page read a second time after the run).
    pub fn read(&mut self, off: u64, len: usize) -> Read {
        let p = self.submit(off, IoBuf::zeroed(len));
        self.wait(p)
    }

    /// Reads `plan` into `w`; returns how it ended, for [`ImageWriter::finish`].
    ///
    /// # Errors
    /// Only a failed write to a streamed volume (stdout, an upload), which cannot be cut back;
    /// any other failed write ends the run with [`Ending::WriteFailed`], and read failures
    /// become unreadable ranges.
    pub fn run(&mut self, w: &mut ImageWriter<'_>, plan: &Plan, obs: &mut dyn Observer) -> Result<Outcome> {
        let mut st = Run { done: 0, unreadable: Vec::new(), units: 0, timed_out: 0, ending: None };
        // Where the compression threads read, pack and encode the blocks, this thread only
        // writes them out, so it writes the volume itself rather than hand it to a thread.
        let inline = self.reads_encoded(w);
        let r = w.write_inline(inline).and_then(|()| match plan {
            Plan::Blocks(b) => self.run_blocks(w, b, obs, &mut st),
            Plan::Stream { block } => self.run_stream(w, *block, obs, &mut st),
        });
        let r = r.and_then(|()| if inline { w.write_inline(false) } else { Ok(()) });
        if let Err(e) = r {
            if w.is_streamed() {
                return Err(e);
            }
            st.ending = Some(Ending::WriteFailed(e.to_string()));
        }
        Ok(Outcome {
            ending: st.ending.unwrap_or(Ending::Complete),
            done: st.done,
            unreadable: st.unreadable,
            unreadable_units: st.units,
            timed_out_reads: st.timed_out,
        })
    }

    fn run_blocks(&mut self, w: &mut ImageWriter<'_>, blocks: &[Block], obs: &mut dyn Observer, st: &mut Run) -> Result<()> {
        let end = blocks.last().map(|b| b.src + b.len).unwrap_or(0);
        let mut queue: VecDeque<(Block, Option<Pending>, Instant)> = VecDeque::new();
        let mut next = 0usize;
        // Reads on the compression threads keep each of them busy with a block or two.
        let depth = if self.reads_encoded(w) { self.policy.read_ahead.max(w.reads_ahead()) } else { self.policy.read_ahead }.max(1);
        loop {
            while queue.len() < depth && next < blocks.len() && !self.stopped() {
                let b = blocks[next];
                let pend = b.readable.then(|| self.submit_block(w, &b, obs.wants_data(b.src, b.len)));
                queue.push_back((b, pend, Instant::now()));
                next += 1;
            }
            let Some((b, pend, submitted)) = queue.pop_front() else { break };
            if self.stopped() {
                st.ending = Some(Ending::Interrupted);
                return Ok(());
            }
            let Some(pend) = pend else {
                w.fill(b.at, b.len, Symbolic::Unreadable)?;
                st.bad(b.src, b.len, b.len.div_ceil(self.policy.unit));
                st.done += b.len;
                obs.progress(st.done, st.units);
                continue;
            };
            let first = match self.wait_block(w, &b, pend)? {
                Arrived::Encoded(rb) => {
                    if let Some(d) = rb.data() {
                        obs.data(b.src, d);
                    }
                    w.commit(b.at, rb)?;
                    obs.block(b.src, b.len, submitted, Instant::now());
                    st.done += b.len;
                    obs.progress(st.done, st.units);
                    continue;
                }
                Arrived::Read(r) => r,
            };
            if matches!(first, Read::TimedOut) {
                // The helper was abandoned with the reads queued on it: queue them again (reads
                // on the compression threads go on there).
                for q in queue.iter_mut() {
                    if matches!(q.1, Some(Pending::Threaded(_))) {
                        q.1 = Some(self.submit(q.0.src, w.buffer(q.0.len as usize)));
                    }
                }
            }
            match first {
                Read::Got(buf, n) if n as u64 == b.len => {
                    obs.data(b.src, &buf);
                    w.write(b.at, buf)?;
                }
                Read::Got(buf, n) => return ended_early(w, obs, st, (b.src, b.at), buf, n, end),
                Read::Stopped => {
                    st.ending = Some(Ending::Interrupted);
                    return Ok(());
                }
                first => {
                    if !self.retry(w, b, first, obs, st, end)? {
                        return Ok(());
                    }
                }
            }
            obs.block(b.src, b.len, submitted, Instant::now());
            st.done += b.len;
            obs.progress(st.done, st.units);
        }
        if next < blocks.len() {
            st.ending = Some(Ending::Interrupted);
        }
        Ok(())
    }

    /// Reads failed block `b` again unit by unit; false when the run must end (its ending set).
    fn retry(&mut self, w: &mut ImageWriter<'_>, b: Block, first: Read, obs: &mut dyn Observer, st: &mut Run, end: u64) -> Result<bool> {
        let unit = self.policy.unit.max(1);
        let mut consecutive_timeouts = u32::from(matches!(first, Read::TimedOut));
        st.timed_out += u64::from(matches!(first, Read::TimedOut));
        let mut q = b.src;
        while q < b.src + b.len {
            let m = (unit - q % unit).min(b.src + b.len - q);
            let at = b.at + (q - b.src);
            let mut got = None;
            if consecutive_timeouts < 2 {
                for _ in 0..self.policy.attempts.max(1) {
                    match self.read(q, m as usize) {
                        Read::Got(buf, n) if n as u64 == m => {
                            got = Some(buf);
                            consecutive_timeouts = 0;
                            break;
                        }
                        Read::Got(buf, n) => return ended_early(w, obs, st, (q, at), buf, n, end).map(|()| false),
                        Read::Failed(_) => {}
                        Read::TimedOut => {
                            st.timed_out += 1;
                            consecutive_timeouts += 1;
                            break;
                        }
                        Read::Stopped => {
                            st.ending = Some(Ending::Interrupted);
                            return Ok(false);
                        }
                    }
                }
            }
            match got {
                Some(pg) => {
                    obs.data(q, &pg);
                    w.write(at, pg)?;
                }
                None => {
                    w.fill(at, m, Symbolic::Unreadable)?;
                    st.bad(q, m, 1);
                }
            }
            q += m;
        }
        Ok(true)
    }

    fn run_stream(&mut self, w: &mut ImageWriter<'_>, block: usize, obs: &mut dyn Observer, st: &mut Run) -> Result<()> {
        let block = block.max(1);
        let mut queue: VecDeque<Pending> = VecDeque::new();
        let mut pos = w.position();
        // A stream's reads are sequential: the offsets given to the source only count blocks.
        let mut asked = pos;
        loop {
            while queue.len() < self.policy.read_ahead.max(1) && !self.stopped() {
                queue.push_back(self.submit_as(asked, w.buffer(block), false));
                asked += block as u64;
            }
            let Some(p) = queue.pop_front() else {
                st.ending = Some(Ending::Interrupted);
                return Ok(());
            };
            match self.wait(p) {
                Read::Got(_, 0) => return Ok(()),
                Read::Got(mut buf, n) => {
                    buf.truncate(n);
                    obs.data(pos, &buf);
                    w.write(pos, buf)?;
                    pos += n as u64;
                    st.done = pos;
                    obs.progress(st.done, st.units);
                }
                Read::Failed(e) => {
                    st.ending = Some(Ending::ReadStopped(format!("reading failed: {e}")));
                    return Ok(());
                }
                Read::TimedOut => {
                    st.ending = Some(Ending::ReadStopped("a read took longer than the timeout".into()));
                    return Ok(());
                }
                Read::Stopped => {
                    st.ending = Some(Ending::Interrupted);
                    return Ok(());
                }
            }
            if self.stopped() {
                st.ending = Some(Ending::Interrupted);
                return Ok(());
            }
        }
    }
}

/// The source ended inside a read at `(src, at)`: keeps the `n` bytes that came and ends the
/// run with where the data stopped, out of the plan's `end`.
fn ended_early(
    w: &mut ImageWriter<'_>,
    obs: &mut dyn Observer,
    st: &mut Run,
    (src, at): (u64, u64),
    mut buf: IoBuf,
    n: usize,
    end: u64,
) -> Result<()> {
    buf.truncate(n);
    obs.data(src, &buf);
    w.write(at, buf)?;
    st.ending = Some(Ending::ReadStopped(format!("the data ends at byte {} of {end}", src + n as u64)));
    Ok(())
}

/// The counts of a run in progress.
struct Run {
    done: u64,
    unreadable: Vec<(u64, u64)>,
    units: u64,
    timed_out: u64,
    ending: Option<Ending>,
}

impl Run {
    /// Records source `[start, start+len)` as unreadable (`units` of the policy).
    fn bad(&mut self, start: u64, len: u64, units: u64) {
        self.units += units;
        match self.unreadable.last_mut() {
            Some(l) if l.1 == start => l.1 = start + len,
            _ => self.unreadable.push((start, start + len)),
        }
    }
}

/// A sequential reader (a pipe, a character device) as a source for [`Plan::Stream`]: each
/// read fills the buffer until it is full or the reader ends; offsets are ignored.
pub struct Sequential<R: io::Read + Send>(pub std::sync::Mutex<R>);

impl<R: io::Read + Send> ReadAt for Sequential<R> {
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.0.lock().map_err(|_| io::Error::other("reader poisoned"))?;
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // What came before the error is passed on; the next read reports it.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imager::ImagerOptions;
    use crate::volume::write::{Mode, VolumeWriter};

    /// A source of `len` bytes whose pages in `bad` fail, whose pages in `hang` never return,
    /// and whose pages for which `zero` holds are zero; it says whether reads may overlap
    /// (`concurrent`) and records whether they did.
    struct Flaky {
        len: u64,
        bad: std::ops::Range<u64>,
        hang: std::ops::Range<u64>,
        zero: fn(u64) -> bool,
        concurrent: bool,
        /// Each read sleeps this long (so that reads that may overlap do).
        slow: Duration,
        active: std::sync::atomic::AtomicU64,
        overlapped: AtomicBool,
    }

    impl Flaky {
        fn new(len: u64, bad: std::ops::Range<u64>, hang: std::ops::Range<u64>) -> Flaky {
            Flaky {
                len,
                bad,
                hang,
                zero: |_| false,
                concurrent: false,
                slow: Duration::ZERO,
                active: Default::default(),
                overlapped: AtomicBool::new(false),
            }
        }

        fn byte(&self, i: u64) -> u8 {
            if (self.zero)(i / 4096) {
                0
            } else {
                byte(i)
            }
        }

        fn read_now(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
            let end = (off + buf.len() as u64).min(self.len);
            if (off / 4096..end.div_ceil(4096)).any(|p| self.hang.contains(&p)) {
                std::thread::sleep(Duration::from_secs(3600));
            }
            std::thread::sleep(self.slow);
            if (off / 4096..end.div_ceil(4096)).any(|p| self.bad.contains(&p)) {
                return Err(io::Error::other("bad page"));
            }
            let n = end.saturating_sub(off) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = self.byte(off + i as u64);
            }
            Ok(n)
        }
    }

    impl ReadAt for Flaky {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
            if self.active.fetch_add(1, Ordering::SeqCst) > 0 {
                self.overlapped.store(true, Ordering::SeqCst);
            }
            let r = self.read_now(off, buf);
            self.active.fetch_sub(1, Ordering::SeqCst);
            r
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.len)
        }
        fn concurrent_reads(&self) -> bool {
            self.concurrent
        }
    }

    /// Runs `src` through the engine into an image, once with each way of reading (on one
    /// helper thread, and on the compression threads for a source whose reads may overlap);
    /// checks that reads of a source that does not allow it never overlapped (Linux's
    /// /proc/kcore copies through one bounce buffer per open file: overlapping reads return each
    /// other's bytes), unless one was abandoned after a timeout. Each case gives its outcome,
    /// image and bytes to `check`.
    fn run(
        src: impl Fn() -> Flaky,
        plan_len: u64,
        policy: RetryPolicy,
        stop: &AtomicBool,
        check: impl Fn(Outcome, crate::imager::FinishedImage, Vec<u8>),
    ) {
        for concurrent in [false, true] {
            let src = Arc::new(Flaky { concurrent, ..src() });
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let p = dir.path().join("t.aff4");
            let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap_or_else(|e| panic!("{e}"));
            let opts = ImagerOptions { threads: 2, ..ImagerOptions::default() };
            let mut w = vol.image(&opts, &[crate::vocab::IMAGE], Some(plan_len)).unwrap_or_else(|e| panic!("{e}"));
            let plan = Plan::Blocks(blocks(0, plan_len, 0, 64 << 10, 4096));
            let mut cap = Capture::new(Input::Shared(src.clone()), policy, stop);
            let out = cap.run(&mut w, &plan, &mut ()).unwrap_or_else(|e| panic!("{e}"));
            assert!(concurrent || out.timed_out_reads > 0 || !src.overlapped.load(Ordering::SeqCst), "reads of the source overlapped");
            let f = w.finish(plan_len, out.ending.clone(), vec![]).unwrap_or_else(|e| panic!("{e}"));
            vol.finish().unwrap_or_else(|e| panic!("{e}"));
            let c = crate::Container::open(&[&p]).unwrap_or_else(|e| panic!("{e}"));
            let s = c.open_stream(&f.urn).unwrap_or_else(|e| panic!("{e}"));
            let mut got = vec![0u8; s.size() as usize];
            s.read_exact_at(0, &mut got).unwrap_or_else(|e| panic!("{e}"));
            check(out, f, got);
        }
    }

    fn byte(i: u64) -> u8 {
        (i % 251) as u8 + 1
    }

    #[test]
    fn bad_pages_are_retried_alone_and_recorded() {
        let stop = AtomicBool::new(false);
        run(
            || Flaky::new(1 << 20, 40..42, 0..0),
            1 << 20,
            RetryPolicy::pages(None),
            &stop,
            |out, f, got| {
                assert_eq!(out.ending, Ending::Complete);
                assert_eq!(out.unreadable, vec![(40 * 4096, 42 * 4096)]);
                assert_eq!(out.unreadable_units, 2);
                assert_eq!(f.completion, crate::imager::Completion::ReadErrors);
                for (i, b) in got.iter().enumerate() {
                    let i = i as u64;
                    if !(40 * 4096..42 * 4096).contains(&i) {
                        assert_eq!(*b, byte(i), "byte {i}");
                    }
                }
            },
        );
    }

    #[test]
    fn data_that_ends_early_stops_the_run() {
        let stop = AtomicBool::new(false);
        run(
            || Flaky::new(5000, 0..0, 0..0),
            1 << 20,
            RetryPolicy::sectors(),
            &stop,
            |out, f, got| {
                assert_eq!(out.ending, Ending::ReadStopped(format!("the data ends at byte 5000 of {}", 1 << 20)));
                assert!(f.completion.to_string().starts_with("Incomplete: stopped at byte 5000: the data ends"), "{}", f.completion);
                assert!(got[..5000].iter().enumerate().all(|(i, b)| *b == byte(i as u64)));
                assert_eq!(f.result.stats.unreadable_bytes, (1 << 20) - 5000, "the rest is unreadable");
            },
        );
    }

    #[test]
    fn a_read_that_hangs_is_abandoned() {
        let stop = AtomicBool::new(false);
        let policy = RetryPolicy { timeout: Some(Duration::from_millis(200)), ..RetryPolicy::pages(None) };
        run(
            || Flaky::new(256 << 10, 0..0, 20..21),
            256 << 10,
            policy,
            &stop,
            |out, _, got| {
                assert_eq!(out.ending, Ending::Complete);
                assert!(out.timed_out_reads >= 2 && out.unreadable.iter().any(|r| r.0 <= 20 * 4096 && r.1 > 20 * 4096), "{out:?}");
                assert!(got[..16 * 4096].iter().enumerate().all(|(i, b)| *b == byte(i as u64)), "what came before is kept");
                let tail = 128 << 10;
                assert!(got[tail..].iter().enumerate().all(|(i, b)| *b == byte((tail + i) as u64)), "later blocks are read again");
            },
        );
    }

    /// Reads that hang over several blocks in a row, so that every compression thread is
    /// stuck in one at once: the run still ends, with the rest of the image intact.
    #[test]
    fn reads_that_hang_on_every_thread_are_left_behind() {
        let stop = AtomicBool::new(false);
        let policy = RetryPolicy { timeout: Some(Duration::from_millis(100)), ..RetryPolicy::pages(None) };
        let t = Instant::now();
        run(
            || Flaky::new(1 << 20, 0..0, 32..112),
            1 << 20,
            policy,
            &stop,
            |out, _, got| {
                assert_eq!(out.ending, Ending::Complete);
                assert!(out.unreadable.iter().all(|r| r.0 >= 32 * 4096 && r.1 <= 112 * 4096), "{out:?}");
                assert!(out.unreadable.iter().map(|r| r.1 - r.0).sum::<u64>() >= 80 * 4096, "{out:?}");
                assert!(got[..32 * 4096].iter().enumerate().all(|(i, b)| *b == byte(i as u64)));
                let tail = 112 * 4096;
                assert!(got[tail..].iter().enumerate().all(|(i, b)| *b == byte((tail + i) as u64)), "the blocks after are read");
            },
        );
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    }

    #[test]
    fn stop_ends_the_run_with_what_was_read() {
        let stop = AtomicBool::new(true);
        run(
            || Flaky::new(1 << 20, 0..0, 0..0),
            1 << 20,
            RetryPolicy::sectors(),
            &stop,
            |out, f, _| {
                assert_eq!(out.ending, Ending::Interrupted);
                assert_eq!(f.completion, crate::imager::Completion::Interrupted { at: 0 });
                assert_eq!(f.result.hashed, 0);
            },
        );
    }

    /// A source whose reads may overlap is read on the compression threads, several blocks at
    /// once; one that does not allow it is read one block at a time.
    #[test]
    fn only_sources_that_allow_it_are_read_at_once() {
        let stop = AtomicBool::new(false);
        let mut seen = Vec::new();
        for concurrent in [false, true] {
            let src = Arc::new(Flaky { concurrent, slow: Duration::from_millis(5), ..Flaky::new(1 << 20, 0..0, 0..0) });
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let mut vol = VolumeWriter::create(&dir.path().join("t.aff4"), Mode::CreateNew).unwrap_or_else(|e| panic!("{e}"));
            let opts = ImagerOptions { threads: 2, hashes: vec![], ..ImagerOptions::default() };
            let mut w = vol.image(&opts, &[crate::vocab::IMAGE], Some(1 << 20)).unwrap_or_else(|e| panic!("{e}"));
            let plan = Plan::Blocks(blocks(0, 1 << 20, 0, 64 << 10, 4096));
            let out = Capture::new(Input::Shared(src.clone()), RetryPolicy::pages(None), &stop).run(&mut w, &plan, &mut ());
            assert_eq!(out.unwrap_or_else(|e| panic!("{e}")).ending, Ending::Complete);
            seen.push(src.overlapped.load(Ordering::SeqCst));
        }
        assert_eq!(seen, vec![false, true]);
    }

    /// Blocks the compression threads read and pack themselves (no linear hash asks for their
    /// bytes) meet pages retried one by one on the pipeline's thread, zero pages and a short
    /// last block: the image reads back as the source, and verify finds every block hash and
    /// the Block-Map hash intact.
    #[test]
    fn blocks_encoded_where_they_are_read_make_the_same_image() {
        let zeros: [fn(u64) -> bool; 3] = [|_| false, |p| p % 3 == 0 || p % 7 == 1, |p| (p / 5) % 2 == 0];
        for (k, zero) in zeros.into_iter().enumerate() {
            let src = Arc::new(Flaky { zero, concurrent: true, ..Flaky::new((1 << 20) + 5 * 4096 + 100, 40..42, 0..0) });
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let p = dir.path().join("t.aff4");
            let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap_or_else(|e| panic!("{e}"));
            let opts = ImagerOptions {
                threads: 2,
                chunk_size: 16 << 10,
                chunks_per_bevy: 5,
                hashes: vec![],
                block_hashes: vec![crate::HashAlgo::Sha256],
                ..ImagerOptions::default()
            };
            let mut w = vol.image(&opts, &[crate::vocab::IMAGE], Some(src.len)).unwrap_or_else(|e| panic!("{e}"));
            assert!(w.reads_ahead() > 0);
            let plan = Plan::Blocks(blocks(0, src.len, 0, 64 << 10, 4096));
            let stop = AtomicBool::new(false);
            let mut cap = Capture::new(Input::Shared(src.clone()), RetryPolicy::pages(None), &stop);
            let out = cap.run(&mut w, &plan, &mut ()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((out.ending.clone(), out.unreadable.clone()), (Ending::Complete, vec![(40 * 4096, 42 * 4096)]), "case {k}");
            let f = w.finish(src.len, out.ending, vec![]).unwrap_or_else(|e| panic!("{e}"));
            vol.finish().unwrap_or_else(|e| panic!("{e}"));
            let zero_bytes: u64 =
                (0..src.len.div_ceil(4096)).filter(|&p| zero(p) && !(40..42).contains(&p)).map(|p| (src.len - p * 4096).min(4096)).sum();
            assert_eq!(f.result.stats.zero_bytes, zero_bytes, "case {k}: zero pages are not stored");
            let c = crate::Container::open(&[&p]).unwrap_or_else(|e| panic!("{e}"));
            let s = c.open_stream(&f.urn).unwrap_or_else(|e| panic!("{e}"));
            let mut got = vec![0u8; s.size() as usize];
            s.read_exact_at(0, &mut got).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.len() as u64, src.len);
            for (i, b) in got.iter().enumerate().filter(|(i, _)| !(40..42).contains(&(*i as u64 / 4096))) {
                assert_eq!(*b, src.byte(i as u64), "case {k}, byte {i}");
            }
            let report = crate::verify::verify(&c, &crate::verify::VerifyOptions { threads: 1 }, &|_| {});
            assert!(report.checks.iter().any(|c| c.what.contains("Block-Map")), "case {k}: {:?}", report.checks);
            assert!(crate::verify::all_ok(&report.checks), "case {k}: {:?}", report.checks);
            assert!(f.result.block_map_hash.is_some());
        }
    }

    #[test]
    fn a_stream_is_read_to_its_end() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
        let src = Sequential(std::sync::Mutex::new(std::io::Cursor::new(data.clone())));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("s.aff4");
        let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap_or_else(|e| panic!("{e}"));
        let mut w = vol.image(&ImagerOptions::default(), &[crate::vocab::IMAGE], None).unwrap_or_else(|e| panic!("{e}"));
        let stop = AtomicBool::new(false);
        let mut cap = Capture::new(Input::Shared(Arc::new(src)), RetryPolicy::sectors(), &stop);
        let out = cap.run(&mut w, &Plan::Stream { block: 65536 }, &mut ()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((out.ending.clone(), out.done), (Ending::Complete, data.len() as u64));
        let f = w.finish(out.done, out.ending, vec![]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.result.hashes[0].1, crate::HashAlgo::Sha256.digest(&data));
    }
}
