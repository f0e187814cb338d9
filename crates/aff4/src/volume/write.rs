//! Writing volumes.
