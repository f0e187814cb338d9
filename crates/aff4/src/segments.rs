//! The URN -> (volume, member) table of a set of volumes, with the lookup variants of AFF4.md §3.8.

use crate::error::Result;
use crate::stream::Stream;
use crate::urn::{member_to_urn, percent_decode, urn_to_member};
use crate::volume::Volume;
use std::collections::HashMap;
use std::sync::Arc;

/// Finds segments by URN across all opened volumes.
#[derive(Default)]
pub struct Segments {
    volumes: Vec<(String, Arc<dyn crate::volume::Backend>)>,
    index: HashMap<String, (usize, String)>,
}

impl Segments {
    /// Adds every member of `v` (later volumes win for duplicate URNs).
    pub fn add_volume(&mut self, v: &Volume) {
        let i = self.volumes.len();
        self.volumes.push((v.urn.clone(), v.backend.clone()));
        for name in v.backend.member_names() {
            self.index.insert(member_to_urn(&v.urn, &name), (i, name));
        }
    }

    /// Where `urn` is stored, if anywhere.
    pub fn locate(&self, urn: &str) -> Option<(usize, &str)> {
        if let Some((i, n)) = self.index.get(urn) {
            return Some((*i, n));
        }
        // Variants: escaped forms, relative names with or without leading slashes.
        let decoded = percent_decode(urn);
        if let Some((i, n)) = self.index.get(&decoded) {
            return Some((*i, n));
        }
        for (i, (vurn, backend)) in self.volumes.iter().enumerate() {
            let _ = backend;
            if let Some(rest) = urn.strip_prefix(vurn.as_str()).and_then(|r| r.strip_prefix('/')) {
                for cand in [rest.trim_start_matches('/').to_string(), urn_to_member(vurn, urn)] {
                    if let Some((j, n)) = self.index.get(&member_to_urn(vurn, &cand)) {
                        if *j == i {
                            return Some((*j, n));
                        }
                    }
                }
            }
        }
        None
    }

    /// Opens the segment for `urn`.
    ///
    /// # Errors
    /// Corrupt storage; `Ok(None)` if no volume holds it.
    pub fn open(&self, urn: &str) -> Result<Option<Arc<dyn Stream>>> {
        match self.locate(urn) {
            Some((i, name)) => self.volumes[i].1.open_member(name),
            None => Ok(None),
        }
    }

    /// Where the segment for `urn` lies, as it is, in a plain file (see
    /// [`crate::volume::Backend::in_place`]).
    pub fn in_place(&self, urn: &str) -> Option<(String, u64)> {
        let (i, name) = self.locate(urn)?;
        self.volumes[i].1.in_place(name)
    }

    /// All URNs that have a segment.
    pub fn urns(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }
}
