//! AFF4 volumes in S3-compatible object storage (AWS S3, MinIO, Ceph, SeaweedFS) through the
//! `object_store` crate: a streaming multipart upload behind a plain `Write` (bounded memory,
//! parts retried, no local copy), and random access by HTTP range requests behind
//! [`aff4::stream::ReadAt`] so that readers fetch only the members and chunks they need.
//!
//! Endpoint, region and credentials come from the usual AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`); an `http://` endpoint is allowed.
//! `PMEM_S3_RETRY_SECS` bounds how long a failing request is retried (default 60).

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload, RetryConfig};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Errors, with the object they concern.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not an `s3://BUCKET/KEY` address.
    #[error("{0}: not an s3://BUCKET/KEY address")]
    Url(String),
    /// The store refused or could not be reached.
    #[error("{url}: {message}")]
    Store {
        /// The object.
        url: String,
        /// What went wrong, in words.
        message: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `s` names an object (`s3://…`).
pub fn is_remote(s: &str) -> bool {
    s.starts_with("s3://")
}

/// A bucket and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

/// Parses `s3://BUCKET/KEY`.
///
/// # Errors
/// Anything else.
pub fn parse_url(s: &str) -> Result<Location> {
    let rest = s.strip_prefix("s3://").ok_or_else(|| Error::Url(s.into()))?;
    let (bucket, key) = rest.split_once('/').ok_or_else(|| Error::Url(s.into()))?;
    if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
        return Err(Error::Url(s.into()));
    }
    Ok(Location { bucket: bucket.into(), key: key.into() })
}

/// Says what an object_store error means for a person (refused credentials, unreachable endpoint).
fn explain(url: &str, e: &object_store::Error) -> Error {
    let text = e.to_string();
    // Unreachable first: a message's URL may hold any digits (an upload id with "403" in it).
    let hint = if text.contains("onnect") || text.contains("error sending request") || text.contains("timed out") {
        " (the store cannot be reached: check AWS_ENDPOINT_URL and that it is up)"
    } else if text.contains("InvalidAccessKeyId") || text.contains("SignatureDoesNotMatch") || text.contains("403") {
        " (the store refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    } else if text.contains("NoSuchBucket") {
        " (no such bucket)"
    } else {
        ""
    };
    Error::Store { url: url.into(), message: format!("{text}{hint}") }
}

struct Client {
    store: Arc<AmazonS3>,
    path: ObjPath,
    url: String,
    rt: Arc<tokio::runtime::Runtime>,
}

fn client(url: &str) -> Result<Client> {
    let loc = parse_url(url)?;
    let mut b = AmazonS3Builder::from_env().with_bucket_name(&loc.bucket);
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).or_else(|_| std::env::var("AWS_ENDPOINT")).ok();
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep).with_allow_http(ep.starts_with("http://")).with_virtual_hosted_style_request(false);
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        b = b.with_region("us-east-1");
    }
    let secs = std::env::var("PMEM_S3_RETRY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let retry = RetryConfig { max_retries: 10, retry_timeout: Duration::from_secs(secs), ..RetryConfig::default() };
    let store = b.with_retry(retry).build().map_err(|e| explain(url, &e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Store { url: url.into(), message: format!("cannot start the I/O runtime: {e}") })?;
    Ok(Client { store: Arc::new(store), path: ObjPath::from(loc.key.as_str()), url: url.into(), rt: Arc::new(rt) })
}

/// Part size of the multipart upload (S3: at least 5 MiB, at most 10,000 parts; the part size
/// doubles every 1,000 parts, so 8 MiB parts reach terabytes).
const PART: usize = 8 << 20;
/// Parts uploading at once; with the one being filled, memory stays under `(IN_FLIGHT + 2) × PART`.
const IN_FLIGHT: usize = 2;

enum Msg {
    Part(Vec<u8>),
    Eof,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadStats {
    /// Bytes uploaded.
    pub bytes: u64,
    /// Parts.
    pub parts: u64,
}

/// The writing end of an upload: everything written goes to the object in parts.
pub struct UploadWriter {
    buf: Vec<u8>,
    part: usize,
    tx: SyncSender<Msg>,
    failed: Arc<Mutex<Option<String>>>,
    url: String,
    sent: u64,
}

impl UploadWriter {
    fn check(&self) -> io::Result<()> {
        match self.failed.lock().ok().and_then(|f| f.clone()) {
            Some(m) => Err(io::Error::other(format!("{}: {m}", self.url))),
            None => Ok(()),
        }
    }
    fn send(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
        self.sent += 1;
        // Keep under S3's 10,000-part limit for very large volumes.
        if self.sent.is_multiple_of(1000) {
            self.part = (self.part * 2).min(1 << 30);
        }
        self.tx.send(Msg::Part(data)).map_err(|_| io::Error::other(format!("{}: the upload stopped", self.url)))?;
        self.check()
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        let n = data.len().min(self.part - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.part {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.check()
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.send();
        }
        let _ = self.tx.send(Msg::Eof);
    }
}

/// The controlling end of an upload: [`Upload::complete`] makes the object appear; dropping it
/// without completing aborts the upload (nothing partial is left under the key).
pub struct Upload {
    done: Receiver<std::result::Result<UploadStats, String>>,
    commit: Option<SyncSender<bool>>,
    url: String,
}

impl Upload {
    /// Waits for every part and completes the upload.
    ///
    /// # Errors
    /// A part failed after its retries, or the completion was refused.
    pub fn complete(mut self) -> Result<UploadStats> {
        if let Some(c) = self.commit.take() {
            let _ = c.send(true);
        }
        match self.done.recv() {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(m)) => Err(Error::Store { url: self.url.clone(), message: m }),
            Err(_) => Err(Error::Store { url: self.url.clone(), message: "the upload thread ended unexpectedly".into() }),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(c) = self.commit.take() {
            let _ = c.send(false);
            let _ = self.done.recv();
        }
    }
}

/// Starts a multipart upload to `url`.
///
/// # Errors
/// A bad address, or the store refuses to start the upload (credentials, bucket, endpoint).
pub fn create(url: &str) -> Result<(UploadWriter, Upload)> {
    let c = client(url)?;
    let mut up = c.rt.block_on(c.store.put_multipart(&c.path)).map_err(|e| explain(url, &e))?;
    let (tx, rx) = sync_channel::<Msg>(IN_FLIGHT);
    let (commit_tx, commit_rx) = sync_channel::<bool>(1);
    let (done_tx, done_rx) = sync_channel(1);
    let failed = Arc::new(Mutex::new(None));
    let f2 = failed.clone();
    let url2 = url.to_string();
    std::thread::spawn(move || {
        let rt = c.rt.clone();
        let result: std::result::Result<UploadStats, String> = rt.block_on(async move {
            let mut pending = FuturesUnordered::new();
            let mut stats = UploadStats::default();
            let mut error: Option<String> = None;
            let fail = |m: String, error: &mut Option<String>| {
                if error.is_none() {
                    if let Ok(mut f) = f2.lock() {
                        *f = Some(m.clone());
                    }
                    *error = Some(m);
                }
            };
            loop {
                let msg = tokio::task::block_in_place(|| rx.recv());
                match msg {
                    Ok(Msg::Part(data)) => {
                        if error.is_some() {
                            continue; // drain so that the writer never blocks
                        }
                        stats.bytes += data.len() as u64;
                        stats.parts += 1;
                        pending.push(up.put_part(PutPayload::from(Bytes::from(data))));
                        while pending.len() >= IN_FLIGHT {
                            if let Some(Err(e)) = pending.next().await {
                                fail(explain(&url2, &e).to_string(), &mut error);
                            }
                        }
                    }
                    Ok(Msg::Eof) | Err(_) => break,
                }
            }
            while let Some(r) = pending.next().await {
                if let Err(e) = r {
                    fail(explain(&url2, &e).to_string(), &mut error);
                }
            }
            let go = tokio::task::block_in_place(|| commit_rx.recv()).unwrap_or(false);
            if go && error.is_none() {
                match up.complete().await {
                    Ok(_) => return Ok(stats),
                    Err(e) => error = Some(explain(&url2, &e).to_string()),
                }
            }
            let _ = up.abort().await;
            Err(error.unwrap_or_else(|| "aborted: the volume was not completed".into()))
        });
        let _ = done_tx.send(result);
    });
    let writer = UploadWriter { buf: Vec::with_capacity(PART), part: PART, tx, failed, url: url.into(), sent: 0 };
    Ok((writer, Upload { done: done_rx, commit: Some(commit_tx), url: url.into() }))
}

/// Read block size: ranges are fetched in these units and cached.
const BLOCK: u64 = 256 << 10;
/// Cached blocks (8 MiB).
const CACHE: usize = 32;

/// Bytes and requests fetched by every [`RemoteFile`] of this process (for reports and benchmarks).
pub static FETCHED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Range requests made.
pub static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// An object read by HTTP range requests, with a small block cache.
pub struct RemoteFile {
    c: Client,
    size: u64,
    cache: Mutex<(HashMap<u64, Bytes>, VecDeque<u64>)>,
}

impl RemoteFile {
    /// Opens `url` (one HEAD request for its size).
    ///
    /// # Errors
    /// Missing object, refused credentials, unreachable store.
    pub fn open(url: &str) -> Result<RemoteFile> {
        let c = client(url)?;
        let meta = c.rt.block_on(c.store.head(&c.path)).map_err(|e| explain(url, &e))?;
        Ok(RemoteFile { c, size: meta.size, cache: Mutex::new((HashMap::new(), VecDeque::new())) })
    }

    fn block(&self, b: u64) -> io::Result<Bytes> {
        if let Some(d) = self.cache.lock().ok().and_then(|c| c.0.get(&b).cloned()) {
            return Ok(d);
        }
        let start = b * BLOCK;
        let end = (start + BLOCK).min(self.size);
        let d = self
            .c
            .rt
            .block_on(self.c.store.get_range(&self.c.path, start..end))
            .map_err(|e| io::Error::other(explain(&self.c.url, &e).to_string()))?;
        FETCHED_BYTES.fetch_add(d.len() as u64, Ordering::Relaxed);
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.cache.lock() {
            if c.1.len() >= CACHE {
                if let Some(old) = c.1.pop_front() {
                    c.0.remove(&old);
                }
            }
            c.0.insert(b, d.clone());
            c.1.push_back(b);
        }
        Ok(d)
    }
}

impl aff4::stream::ReadAt for RemoteFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.size - offset) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let d = self.block(pos / BLOCK)?;
            let within = (pos % BLOCK) as usize;
            let k = (d.len().saturating_sub(within)).min(n - done);
            if k == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{}: object shorter than its size", self.c.url)));
            }
            buf[done..done + k].copy_from_slice(&d[within..within + k]);
            done += k;
        }
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

/// Opens the AFF4 volume stored at `url`.
///
/// # Errors
/// The object cannot be fetched, or is not an AFF4 volume.
pub fn open_volume(url: &str) -> std::result::Result<aff4::volume::Volume, Box<dyn std::error::Error + Send + Sync>> {
    let f = RemoteFile::open(url)?;
    Ok(aff4::volume::Volume::open_zip(Arc::new(f), url.to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn urls() {
        assert_eq!(parse_url("s3://b/k/x.aff4").unwrap(), Location { bucket: "b".into(), key: "k/x.aff4".into() });
        for bad in ["s3://", "s3://b", "s3://b/", "s3:///k", "http://b/k", "s3://b/dir/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
