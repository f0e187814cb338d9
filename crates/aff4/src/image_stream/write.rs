//! Writing ImageStreams (see the write half of the crate).
