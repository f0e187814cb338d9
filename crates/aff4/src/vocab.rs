//! IRIs of the AFF4 vocabularies (standard, Evimetry pre-standard, Rekall/pmem pre-standard).

/// The AFF4 Standard namespace (also the Rekall/pmem pre-standard one).
pub const AFF4: &str = "http://aff4.org/Schema#";
/// The Evimetry pre-standard namespace (`.af4` images).
pub const AFF4_LEGACY: &str = "http://afflib.org/2009/aff4#";
/// Pre-standard symbolic streams `…#XX`.
pub const LEGACY_SYMBOLIC: &str = "http://afflib.org/2012/SymbolicStream#";
/// XML Schema datatypes.
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
/// rdf:type.
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

macro_rules! iris {
    ($($name:ident = $local:literal;)*) => {
        $(#[doc = concat!("`aff4:", $local, "`")] pub const $name: &str = concat!("http://aff4.org/Schema#", $local);)*
    };
}

iris! {
    IMAGE = "Image";
    IMAGE_STREAM = "ImageStream";
    MAP = "Map";
    ZIP_VOLUME = "ZipVolume";
    DISK_IMAGE = "DiskImage";
    CONTIGUOUS_IMAGE = "ContiguousImage";
    DISCONTIGUOUS_IMAGE = "DiscontiguousImage";
    MEMORY_IMAGE = "MemoryImage";
    FILE_IMAGE = "FileImage";
    BLOCK_HASHES = "BlockHashes";
    ENCRYPTED_STREAM = "EncryptedStream";
    PASSWORD_KEY_BAG = "PasswordWrappedKeyBag";
    ZIP_SEGMENT = "zip_segment";
    ZIP_SEGMENT2 = "ZipSegment";
    LEGACY_IMAGE_STREAM = "image";
    LEGACY_MAP = "map";
    ZERO = "Zero";
    UNKNOWN_DATA = "UnknownData";
    UNREADABLE_DATA = "UnreadableData";
    SIZE = "size";
    CHUNK_SIZE = "chunkSize";
    CHUNKS_IN_SEGMENT = "chunksInSegment";
    COMPRESSION_METHOD = "compressionMethod";
    DATA_STREAM = "dataStream";
    DEPENDENT_STREAM = "dependentStream";
    MAP_GAP_DEFAULT_STREAM = "mapGapDefaultStream";
    TARGET = "target";
    STORED = "stored";
    CONTAINS = "contains";
    HASH = "hash";
    BLOCK_MAP_HASH = "blockMapHash";
    MAP_POINT_HASH = "mapPointHash";
    MAP_IDX_HASH = "mapIdxHash";
    MAP_PATH_HASH = "mapPathHash";
    MAP_HASH = "mapHash";
    IMAGE_STREAM_HASH = "imageStreamHash";
    IMAGE_STREAM_INDEX_HASH = "imageStreamIndexHash";
    // pmem: the linear hash of only the first `prefixHashLength` bytes, recorded instead of
    // `aff4:hash` on an image whose acquisition was interrupted (the rest is aff4:UnknownData,
    // covered by the Map's own hashes).
    PREFIX_HASH = "prefixHash";
    PREFIX_HASH_LENGTH = "prefixHashLength";
    // pmem: split sets. Each part's volume records its number (from 1) and file name; the
    // last part also records how many parts the set has.
    VOLUME_SET_PART = "volumeSetPart";
    VOLUME_SET_PART_NAME = "volumeSetPartName";
    VOLUME_SET_PARTS = "volumeSetParts";
    ORIGINAL_FILE_NAME = "originalFileName";
    CATEGORY = "category";
    VERSION = "version";
    CREATION_TIME = "creationTime";
    NULL_COMPRESSOR = "NullCompressor";
    BLOCK_MAP_HASH_SHA512 = "blockMapHashSHA512";
}

/// `aff4L:` (Evimetry pre-standard) names.
pub mod legacy {
    macro_rules! iris {
        ($($name:ident = $local:literal;)*) => {
            $(#[doc = concat!("`aff4L:", $local, "`")] pub const $name: &str = concat!("http://afflib.org/2009/aff4#", $local);)*
        };
    }
    iris! {
        STREAM = "stream";
        MAP = "map";
        IMAGE = "Image";
        CHUNK_SIZE = "chunk_size";
        CHUNKS_IN_SEGMENT = "chunks_in_segment";
        COMPRESSION_METHOD = "CompressionMethod";
        BLOCK_HASHES_HASH = "blockHashesHash";
        LINEAR_BLOCK_HASH = "linearBlockHash";
        CONTAINS = "contains";
    }
}

/// Memory category `memory:physical`.
pub const MEMORY_PHYSICAL: &str = "http://aff4.org/Schema#memory/physical";

/// Compression IRIs.
pub mod compression {
    /// Snappy raw block (standard spelling).
    pub const SNAPPY: &str = "http://code.google.com/p/snappy/";
    /// Snappy as old pmem spelled it (every chunk compressed).
    pub const SNAPPY_GOOGLE: &str = "https://github.com/google/snappy";
    /// zlib (RFC 1950).
    pub const ZLIB: &str = "https://www.ietf.org/rfc/rfc1950.txt";
    /// deflate (RFC 1951; raw or zlib-wrapped in practice).
    pub const DEFLATE: &str = "https://tools.ietf.org/html/rfc1951";
    /// deflate, the Standard example's spelling.
    pub const DEFLATE_HTTP: &str = "http://tools.ietf.org/html/rfc1951";
    /// LZ4 block.
    pub const LZ4: &str = "https://code.google.com/p/lz4/";
    /// Stored, the standard spelling.
    pub const NULL: &str = "http://aff4.org/Schema#NullCompressor";
    /// Stored, pyaff4's spelling.
    pub const STORED: &str = "http://aff4.org/Schema#compression/stored";
    /// Stored, pre-standard Evimetry.
    pub const LEGACY_NULL: &str = "http://afflib.org/2009/aff4#nullCompressor";
}
