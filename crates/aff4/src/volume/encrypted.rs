//! Encrypted volumes (pyaff4's container, AFF4.md §13): the volume the imager writes is a ZIP
//! streamed, 512-byte chunk by chunk, through AES-128-XTS into the one `aff4:EncryptedStream`
//! of an outer volume, whose metadata holds only the stream's shape and its key bags. The outer
//! volume is any [`VolumeWriter`] (a file, a directory, a split set, stdout, an upload), so
//! every output can be encrypted.

use crate::crypto::{self, Recipient, VolumeKey, CHUNK, CHUNKS_PER_BEVY};
use crate::error::{Error, Result};
use crate::rdf::Node;
use crate::vocab::{self, AFF4, RDF_TYPE};
use crate::volume::write::VolumeWriter;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Plaintext bytes per bevy of the encrypted stream (1 MiB).
const BEVY: usize = CHUNK * CHUNKS_PER_BEVY;

/// The outer volume and the stream's state, owned by the encrypting thread.
struct Outer {
    vol: VolumeWriter,
    stream: String,
    key: VolumeKey,
    bevy: u64,
}

impl Outer {
    /// Encrypts a bevy in place (padded to whole chunks) and writes it with its index.
    fn write_bevy(&mut self, mut data: Vec<u8>) -> Result<()> {
        let len = data.len().div_ceil(CHUNK) * CHUNK;
        data.resize(len, 0);
        self.key.encrypt_chunks(self.bevy * CHUNKS_PER_BEVY as u64, &mut data)?;
        let mut index = Vec::with_capacity(len / CHUNK * 12);
        for i in 0..len / CHUNK {
            index.extend_from_slice(&((i * CHUNK) as u64).to_le_bytes());
            index.extend_from_slice(&(CHUNK as u32).to_le_bytes());
        }
        let urn = format!("{}/{:08}", self.stream, self.bevy);
        self.vol.add_segment(&format!("{urn}.index"), &index)?;
        self.vol.add_segment(&urn, &data)?;
        self.bevy += 1;
        // What a volume closed early (a full disk, an error) can still decrypt.
        let stream = self.stream.clone();
        self.vol.graph_mut().set(&stream, &format!("{AFF4}size"), Node::long(self.bevy * BEVY as u64));
        Ok(())
    }

    /// Describes the stream and its key bags from the start, so that an outer volume closed
    /// early (its writer dropped on an error) still says how to decrypt what it holds.
    fn describe(&mut self, recipients: &[Recipient]) -> Result<()> {
        let stream = self.stream.clone();
        let outer_urn = self.vol.urn().to_string();
        let g = self.vol.graph_mut();
        g.add(&stream, RDF_TYPE, Node::iri(vocab::ENCRYPTED_STREAM));
        g.add(&stream, &format!("{AFF4}size"), Node::long(0));
        g.add(&stream, &format!("{AFF4}chunkSize"), Node::int(CHUNK as u64));
        g.add(&stream, &format!("{AFF4}chunksInSegment"), Node::int(CHUNKS_PER_BEVY as u64));
        g.add(&stream, &format!("{AFF4}stored"), Node::iri(outer_urn));
        crypto::write_key_bags(g, &stream, &self.key, recipients)?;
        self.vol.register(&stream);
        Ok(())
    }

    /// Records the plaintext's size and closes the outer volume.
    fn close(mut self, size: u64) -> Result<()> {
        let stream = self.stream.clone();
        self.vol.graph_mut().set(&stream, &format!("{AFF4}size"), Node::long(size));
        self.vol.finish()
    }
}

/// What the inner volume's output and its close share: the bevy being filled, and the
/// encrypting thread that takes full bevies (so encryption and the outer volume's writes
/// overlap with the imager's own work).
struct Shared {
    buf: Vec<u8>,
    size: u64,
    tx: Option<crossbeam_channel::Sender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<Result<Outer>>>,
}

impl Shared {
    fn send(&mut self) -> Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BEVY));
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if sent {
            return Ok(());
        }
        // The thread stopped: its error says why.
        self.join().and(Err(Error::Internal("encrypted volume: the encrypting thread stopped")))
    }

    fn join(&mut self) -> Result<Outer> {
        self.tx = None;
        let w = self.worker.take().ok_or(Error::Internal("encrypted volume closed twice"))?;
        w.join().map_err(|_| Error::Internal("encrypted volume: the encrypting thread panicked"))?
    }

    /// Writes the last bevy, then describes the stream and closes the outer volume.
    fn close(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        let outer = self.join()?;
        outer.close(self.size)
    }
}

impl Drop for Shared {
    /// A volume abandoned on an error: the encrypting thread writes what it was given and its
    /// outer volume closes with the complete bevies (see [`VolumeWriter`]'s drop) before we go on.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

/// The inner volume's output: plaintext in, encrypted bevies out.
struct Encrypting(Arc<Mutex<Shared>>);

impl Write for Encrypting {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut o = self.0.lock().map_err(|_| std::io::Error::other("encrypted volume: a writer panicked"))?;
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(BEVY - o.buf.len());
            o.buf.extend_from_slice(&rest[..take]);
            o.size += take as u64;
            rest = &rest[take..];
            if o.buf.len() == BEVY {
                o.send().map_err(std::io::Error::other)?;
            }
        }
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
        if recipients.is_empty() {
            return Err(Error::Key("an encrypted volume needs at least one recipient (a certificate or a password)".into()));
        }
        let name = outer.path().display().to_string();
        let mut state = Outer { vol: outer, stream: crate::urn::new_urn(), key: VolumeKey::random()?, bevy: 0 };
        state.describe(&recipients)?;
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(2);
        let worker = std::thread::Builder::new()
            .name("volume-encrypt".into())
            .spawn(move || {
                for bevy in rx {
                    state.write_bevy(bevy)?;
                }
                Ok(state)
            })
            .map_err(|e| Error::io("encrypting thread", e))?;
        let shared = Arc::new(Mutex::new(Shared { buf: Vec::with_capacity(BEVY), size: 0, tx: Some(tx), worker: Some(worker) }));
        let closing = shared.clone();
        let close = Box::new(move || closing.lock().map_err(|_| Error::Internal("encrypted volume: a writer panicked"))?.close());
        VolumeWriter::streaming(Box::new(Encrypting(shared)), &name, Some(close))
    }
}
