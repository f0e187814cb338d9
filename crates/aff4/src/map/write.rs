//! Writing maps.
