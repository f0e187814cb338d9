//! Helpers shared by the integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

/// The shared reference images (../shared/aff4-reference-images, or $AFF4_REFERENCE_IMAGES).
pub fn refimg(rel: &str) -> PathBuf {
    let base = std::env::var_os("AFF4_REFERENCE_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/aff4-reference-images"));
    assert!(
        base.is_dir(),
        "the AFF4 reference images are not at {}: these tests read the official images from the shared \
         directory beside the checkout (../shared/aff4-reference-images, see its MANIFEST.md), or from \
         $AFF4_REFERENCE_IMAGES",
        base.display()
    );
    base.join(rel)
}

/// Lower-case hex digest of a whole stream.
pub fn stream_hash(c: &aff4::Container, urn: &str, algo: aff4::HashAlgo) -> String {
    let d = aff4::verify::hash_stream(c, urn, &[algo], 2, &|_| {}).expect("hash stream");
    aff4::hash::hex(&d[0])
}
