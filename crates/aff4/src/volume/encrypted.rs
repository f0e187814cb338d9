//! Encrypted volumes (pyaff4's container, AFF4.md §13): the volume the imager writes is a ZIP
//! streamed, 512-byte chunk by chunk, through AES-128-XTS into the one `aff4:EncryptedStream`
//! of an outer volume, whose metadata holds only the stream's shape and its key bags. The outer
//! volume is any [`VolumeWriter`] (a file, a directory, a split set, stdout, an upload), so
//! every output can be encrypted.

use crate::crypto::{self, ChunkCipher, Recipient, VolumeKey, CHUNK, CHUNKS_PER_BEVY};
use crate::error::{Error, Result};
use crate::rdf::Node;
use crate::vocab::{self, AFF4, RDF_TYPE};
use crate::volume::write::VolumeWriter;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Plaintext bytes per bevy of the encrypted stream (1 MiB).
const BEVY: usize = CHUNK * CHUNKS_PER_BEVY;

/// The outer volume and the stream's state, owned by the writing thread.
struct Outer {
    vol: VolumeWriter,
    stream: String,
    bevy: u64,
}

impl Outer {
    /// Writes an encrypted bevy (whole chunks) with its index.
    fn write_bevy(&mut self, data: &[u8]) -> Result<()> {
        let mut index = Vec::with_capacity(data.len() / CHUNK * 12);
        for i in 0..data.len() / CHUNK {
            index.extend_from_slice(&((i * CHUNK) as u64).to_le_bytes());
            index.extend_from_slice(&(CHUNK as u32).to_le_bytes());
        }
        let urn = format!("{}/{:08}", self.stream, self.bevy);
        self.vol.add_segment(&format!("{urn}.index"), &index)?;
        self.vol.add_segment(&urn, data)?;
        self.bevy += 1;
        // What a volume closed early (a full disk, an error) can still decrypt.
        let stream = self.stream.clone();
        self.vol.graph_mut().set(&stream, &format!("{AFF4}size"), Node::long(self.bevy * BEVY as u64));
        self.vol.checkpoint()
    }

    /// Describes the stream and its key bags (written by `bags`) from the start, so that an
    /// outer volume closed early (its writer dropped on an error) still says how to decrypt what
    /// it holds.
    fn describe(&mut self, bags: impl FnOnce(&mut crate::rdf::Graph, &str) -> Result<()>) -> Result<()> {
        let stream = self.stream.clone();
        let outer_urn = self.vol.urn().to_string();
        let g = self.vol.graph_mut();
        g.add(&stream, RDF_TYPE, Node::iri(vocab::ENCRYPTED_STREAM));
        g.add(&stream, &format!("{AFF4}size"), Node::long(0));
        g.add(&stream, &format!("{AFF4}chunkSize"), Node::int(CHUNK as u64));
        g.add(&stream, &format!("{AFF4}chunksInSegment"), Node::int(CHUNKS_PER_BEVY as u64));
        g.add(&stream, &format!("{AFF4}stored"), Node::iri(outer_urn));
        bags(g, &stream)?;
        self.vol.register(&stream);
        // On the disk before any bevy: a killed writer leaves the key bags for recovery.
        self.vol.checkpoint()
    }

    /// Records the plaintext's size and closes the outer volume.
    fn close(mut self, size: u64) -> Result<()> {
        let stream = self.stream.clone();
        self.vol.graph_mut().set(&stream, &format!("{AFF4}size"), Node::long(size));
        self.vol.finish()
    }
}

/// A full bevy for the writing thread: the buffer and how much of it is the bevy.
type Bevy = (Vec<u8>, usize);

/// What the inner volume's output and its close share: the bevy being filled (encrypted as it
/// is copied in, on the thread that writes the inner volume), and the thread that writes full
/// bevies into the outer volume (so those writes overlap with the imager's own work).
struct Shared {
    cipher: ChunkCipher,
    /// Always [`BEVY`] long; the whole chunks below `fill` are encrypted, a partial last one is
    /// still plaintext.
    buf: Vec<u8>,
    fill: usize,
    size: u64,
    tx: Option<crossbeam_channel::Sender<Bevy>>,
    /// Buffers the writing thread is done with, used again (a new 1 MiB buffer per bevy costs a
    /// page fault per 4 KiB).
    spare: crossbeam_channel::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<Result<Outer>>>,
}

impl Shared {
    /// Takes `data` into the stream: whole chunks are encrypted straight from `data` into the
    /// bevy, a partial one is kept until it fills.
    fn put(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let tail = self.fill % CHUNK;
            let take = if tail == 0 && data.len() >= CHUNK {
                let take = data.len().min(BEVY - self.fill) / CHUNK * CHUNK;
                let first = self.size / CHUNK as u64;
                self.cipher.encrypt_into(first, &data[..take], &mut self.buf[self.fill..self.fill + take])?;
                take
            } else {
                let take = data.len().min(CHUNK - tail);
                self.buf[self.fill..self.fill + take].copy_from_slice(&data[..take]);
                if tail + take == CHUNK {
                    let at = self.fill + take - CHUNK;
                    self.cipher.encrypt(self.size / CHUNK as u64, &mut self.buf[at..at + CHUNK])?;
                }
                take
            };
            self.fill += take;
            self.size += take as u64;
            data = &data[take..];
            if self.fill == BEVY {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> Result<()> {
        let next = self.spare.try_recv().unwrap_or_else(|_| vec![0; BEVY]);
        let full = (std::mem::replace(&mut self.buf, next), std::mem::take(&mut self.fill));
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if sent {
            return Ok(());
        }
        // The thread stopped: its error says why.
        self.join().and(Err(Error::Internal("encrypted volume: the writing thread stopped")))
    }

    fn join(&mut self) -> Result<Outer> {
        self.tx = None;
        let w = self.worker.take().ok_or(Error::Internal("encrypted volume closed twice"))?;
        w.join().map_err(|_| Error::Internal("encrypted volume: the writing thread panicked"))?
    }

    /// Writes the last bevy (its last chunk padded with zeros), then closes the outer volume.
    fn close(&mut self) -> Result<()> {
        let tail = self.fill % CHUNK;
        if tail != 0 {
            let at = self.fill - tail;
            self.buf[self.fill..at + CHUNK].fill(0);
            self.cipher.encrypt(self.size / CHUNK as u64, &mut self.buf[at..at + CHUNK])?;
            self.fill = at + CHUNK;
        }
        if self.fill > 0 {
            self.send()?;
        }
        let outer = self.join()?;
        outer.close(self.size)
    }
}

impl Drop for Shared {
    /// A volume abandoned on an error: the writing thread writes what it was given and its
    /// outer volume closes with the complete bevies (see [`VolumeWriter`]'s drop) before we go on.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

/// The plaintext side of an encrypted stream: what is written is encrypted, in bevies, into
/// the stream of an outer volume; [`EncryptedWriter::finish`] records its size and closes the
/// outer volume (dropped unfinished, the outer volume closes with the complete bevies).
pub struct EncryptedWriter(Arc<Mutex<Shared>>);

impl EncryptedWriter {
    /// A new stream in `outer` under a new random key, with a key bag per recipient.
    ///
    /// # Errors
    /// No recipient, the random source, or writing the outer volume's first members fails.
    pub fn new(outer: VolumeWriter, recipients: &[Recipient]) -> Result<EncryptedWriter> {
        if recipients.is_empty() {
            return Err(Error::Key("an encrypted volume needs at least one recipient (a certificate or a password)".into()));
        }
        let key = VolumeKey::random()?;
        let bags = |g: &mut crate::rdf::Graph, s: &str| crypto::write_key_bags(g, s, &key, recipients);
        EncryptedWriter::with_key(outer, &key, bags)
    }

    /// A new stream in `outer` under `key`, its key bags written by `bags` (the graph, the
    /// stream's URN): e.g. the bags of the volume a recovery rebuilds, copied as they are.
    ///
    /// # Errors
    /// Writing the outer volume's first members fails.
    pub fn with_key(
        outer: VolumeWriter,
        key: &VolumeKey,
        bags: impl FnOnce(&mut crate::rdf::Graph, &str) -> Result<()>,
    ) -> Result<EncryptedWriter> {
        let mut state = Outer { vol: outer, stream: crate::urn::new_urn(), bevy: 0 };
        state.describe(bags)?;
        let (tx, rx) = crossbeam_channel::bounded::<Bevy>(2);
        let (back, spare) = crossbeam_channel::bounded::<Vec<u8>>(4);
        let worker = std::thread::Builder::new()
            .name("volume-encrypt".into())
            .spawn(move || {
                for (buf, fill) in rx {
                    state.write_bevy(&buf[..fill])?;
                    let _ = back.try_send(buf);
                }
                Ok(state)
            })
            .map_err(|e| Error::io("encrypted volume's writing thread", e))?;
        let shared = Shared { cipher: key.chunk_cipher(), buf: vec![0; BEVY], fill: 0, size: 0, tx: Some(tx), spare, worker: Some(worker) };
        Ok(EncryptedWriter(Arc::new(Mutex::new(shared))))
    }

    /// Writes the last bevy, records the plaintext's size and closes the outer volume.
    ///
    /// # Errors
    /// Writing the outer volume fails.
    pub fn finish(self) -> Result<()> {
        self.0.lock().map_err(|_| Error::Internal("encrypted volume: a writer panicked"))?.close()
    }
}

impl Write for EncryptedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut o = self.0.lock().map_err(|_| std::io::Error::other("encrypted volume: a writer panicked"))?;
        o.put(data).map_err(std::io::Error::other)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl VolumeWriter {
    /// A volume whose every byte (its images, their metadata, its turtle) is encrypted with a
    /// new random key into `outer`, which records only the encrypted stream and one key bag per
    /// recipient. Finishing the returned writer finishes `outer`.
    ///
    /// # Errors
    /// No recipient, the random source, or writing the first members fails.
    pub fn encrypted(outer: VolumeWriter, recipients: Vec<Recipient>) -> Result<VolumeWriter> {
        let name = outer.path().display().to_string();
        let w = EncryptedWriter::new(outer, &recipients)?;
        let closing = w.0.clone();
        let close = Box::new(move || closing.lock().map_err(|_| Error::Internal("encrypted volume: a writer panicked"))?.close());
        let mut inner = VolumeWriter::streaming(Box::new(w), &name, Some(close))?;
        inner.align_end(CHUNK as u64);
        Ok(inner)
    }
}
