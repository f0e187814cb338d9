//! Directory volumes (AFF4.md §4): segments are files below a directory.

use super::Backend;
use crate::error::{Error, Result};
use crate::stream::{SliceStream, Stream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAX_FILES: usize = 1_000_000;
const MAX_DEPTH: usize = 64;

/// A directory as segment storage.
pub struct DirBackend {
    root: PathBuf,
    name: String,
    names: Vec<String>,
}

impl DirBackend {
    /// Lists the files below `root`.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn open(root: &Path) -> Result<Self> {
        let name = root.display().to_string();
        let mut names = Vec::new();
        walk(root, root, 0, &mut names).map_err(|e| Error::io(&name, e))?;
        names.sort();
        Ok(DirBackend { root: root.to_path_buf(), name, names })
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let ft = ent.file_type()?;
        let p = ent.path();
        if ft.is_dir() {
            walk(root, &p, depth + 1, out)?;
        } else if ft.is_file() && out.len() < MAX_FILES {
            if let Ok(rel) = p.strip_prefix(root) {
                let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    Ok(())
}

impl Backend for DirBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn member_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn open_member(&self, name: &str) -> Result<Option<Arc<dyn Stream>>> {
        if self.names.binary_search_by(|n| n.as_str().cmp(name)).is_err() {
            return Ok(None);
        }
        let path = self.root.join(name);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let len = f.metadata().map_err(|e| Error::io(path.display().to_string(), e))?.len();
        Ok(Some(Arc::new(SliceStream::new(Arc::new(f), 0, len, format!("{}: {}", self.name, name)))))
    }
    fn in_place(&self, name: &str) -> Option<(String, u64)> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok().map(|_| (self.root.join(name).display().to_string(), 0))
    }
}
