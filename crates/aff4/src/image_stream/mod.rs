//! ImageStreams (AFF4.md §5): a linear stream cut into chunks, stored compressed in bevies
//! with an index per bevy. [`ImageStreamReader`] reads every index variant; the writer half
//! produces the standard 12-byte index.

mod read;
pub mod write;

pub use read::{ChunkDecrypt, ImageStreamParams, ImageStreamReader, IndexFormat};

/// Default chunk size (32 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 32768;
/// Default chunks per bevy.
pub const DEFAULT_CHUNKS_PER_BEVY: u32 = 1024;
/// Largest chunk size accepted from metadata (64 MiB).
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;

/// Bevy segment name for bevy `n` of stream `urn`.
pub fn bevy_urn(urn: &str, n: u64) -> String {
    format!("{urn}/{n:08}")
}
