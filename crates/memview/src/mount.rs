//! The read-only file tree that `pmem mount` serves: one directory per memory image with
//! `memory.raw`, `memory.elf` and `memory.lime` generated on the fly, other images and logical
//! files under their recorded names, and the volume's metadata as `information.turtle`.
//! Kept apart from FUSE so that it can be tested (and served by other front ends) without a mount.

use crate::export::{ExportFormat, FormattedMemory, MemoryView};
use aff4::stream::{MemStream, Stream};
use aff4::Container;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Inode number of the root directory.
pub const ROOT: u64 = 1;

/// What a node is.
pub enum NodeKind {
    /// A directory: children by name.
    Dir(BTreeMap<String, u64>),
    /// A file and its bytes.
    File(Arc<dyn Stream>),
}

/// One file or directory.
pub struct Node {
    /// Inode number (index + 1).
    pub ino: u64,
    /// Parent inode (the root is its own parent).
    pub parent: u64,
    /// Name within the parent.
    pub name: String,
    /// Directory or file.
    pub kind: NodeKind,
}

/// The whole tree, built once at mount time; inode `n` is `nodes[n - 1]`.
pub struct Tree {
    nodes: Vec<Node>,
    /// Problems met while building (an image that could not be opened), for the user.
    pub warnings: Vec<String>,
}

/// One path component from a recorded name or URN: no separators, no control characters,
/// never `.` or `..`, at most 200 bytes.
pub fn safe_component(s: &str) -> String {
    let mut c: String = s.chars().map(|ch| if ch.is_control() || ch == '/' || ch == '\\' || ch == ':' { '_' } else { ch }).collect();
    if c.is_empty() || c == "." || c == ".." {
        c = format!("_{c}");
    }
    while c.len() > 200 {
        c.pop();
    }
    c
}

fn path_components(name: &str) -> Vec<String> {
    let trimmed = name.strip_prefix("aff4://").unwrap_or(name);
    let parts: Vec<String> = trimmed.split(['/', '\\']).filter(|p| !p.is_empty() && *p != ".").map(safe_component).collect();
    if parts.is_empty() {
        vec!["unnamed".into()]
    } else {
        parts
    }
}

impl Tree {
    /// Builds the tree of `c`.
    pub fn build(c: &Container) -> Tree {
        let mut t = Tree::empty();
        let turtle = c.graph().to_turtle().into_bytes();
        t.add_file(ROOT, "information.turtle", Arc::new(MemStream::new(turtle, "information.turtle")));
        let images = c.images();
        for i in images.iter().filter(|i| i.memory) {
            let view = match MemoryView::open(c, &i.urn) {
                Ok(v) => Arc::new(v),
                Err(e) => {
                    t.warnings.push(format!("{}: {e}", i.urn));
                    continue;
                }
            };
            let label = i.name.as_deref().map(|n| path_components(n).join("_")).unwrap_or_else(|| path_components(&i.urn).join("_"));
            let dir = t.add_dir(ROOT, &label);
            for fmt in ExportFormat::ALL {
                let file = format!("memory.{}", fmt.name());
                t.add_file(dir, &file, Arc::new(FormattedMemory::new(view.clone(), fmt)));
            }
        }
        for i in images.iter().filter(|i| !i.memory) {
            let stream = match c.open_stream(&i.urn) {
                Ok(s) => s,
                Err(e) => {
                    t.warnings.push(format!("{}: {e}", i.urn));
                    continue;
                }
            };
            let parts = path_components(i.name.as_deref().unwrap_or(&i.urn));
            let mut dir = ROOT;
            for p in &parts[..parts.len() - 1] {
                dir = t.add_dir(dir, p);
            }
            t.add_file(dir, &parts[parts.len() - 1], stream);
        }
        t
    }

    /// The tree of live memory: `memory.raw` and `memory.elf` of `view` at the root (read on
    /// demand: each read reads the machine again), with `files` beside them (the symbol table,
    /// a note).
    pub fn live(view: Arc<MemoryView>, files: Vec<(String, Arc<dyn Stream>)>) -> Tree {
        let mut t = Tree::empty();
        for fmt in [ExportFormat::Raw, ExportFormat::Elf] {
            t.add_file(ROOT, &format!("memory.{}", fmt.name()), Arc::new(FormattedMemory::new(view.clone(), fmt)));
        }
        for (name, s) in files {
            t.add_file(ROOT, &safe_component(&name), s);
        }
        t
    }

    fn empty() -> Tree {
        Tree {
            nodes: vec![Node { ino: ROOT, parent: ROOT, name: String::new(), kind: NodeKind::Dir(BTreeMap::new()) }],
            warnings: Vec::new(),
        }
    }

    /// The node with inode `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        usize::try_from(ino).ok().and_then(|i| i.checked_sub(1)).and_then(|i| self.nodes.get(i))
    }

    /// The child `name` of directory `parent`.
    pub fn lookup(&self, parent: u64, name: &str) -> Option<&Node> {
        match &self.get(parent)?.kind {
            NodeKind::Dir(children) => children.get(name).and_then(|&i| self.get(i)),
            NodeKind::File(_) => None,
        }
    }

    /// Finds a node by a `/`-separated path from the root.
    pub fn find(&self, path: &str) -> Option<&Node> {
        let mut n = self.get(ROOT)?;
        for p in path.split('/').filter(|p| !p.is_empty()) {
            n = self.lookup(n.ino, p)?;
        }
        Some(n)
    }

    /// Every node.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A free name in `parent`: `name`, else `name~2`, `name~3`, ...
    fn free_name(&self, parent: u64, name: &str) -> String {
        let mut candidate = name.to_string();
        let mut k = 2;
        while self.lookup(parent, &candidate).is_some() {
            candidate = format!("{name}~{k}");
            k += 1;
        }
        candidate
    }

    fn insert(&mut self, parent: u64, name: String, kind: NodeKind) -> u64 {
        let ino = self.nodes.len() as u64 + 1;
        if let Some(NodeKind::Dir(children)) = self.nodes.get_mut(parent as usize - 1).map(|n| &mut n.kind) {
            children.insert(name.clone(), ino);
        }
        self.nodes.push(Node { ino, parent, name, kind });
        ino
    }

    fn add_dir(&mut self, parent: u64, name: &str) -> u64 {
        if let Some(n) = self.lookup(parent, name) {
            if matches!(n.kind, NodeKind::Dir(_)) {
                return n.ino;
            }
        }
        let name = self.free_name(parent, name);
        self.insert(parent, name, NodeKind::Dir(BTreeMap::new()))
    }

    fn add_file(&mut self, parent: u64, name: &str, stream: Arc<dyn Stream>) -> u64 {
        let name = self.free_name(parent, name);
        self.insert(parent, name, NodeKind::File(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn components_stay_inside() {
        for bad in ["../../etc/passwd", "/etc/passwd", "aff4://x/../../y", "..", "c:\\..\\x", "\0a", ""] {
            for c in path_components(bad) {
                assert!(!c.is_empty() && c != ".." && c != "." && !c.contains('/'), "{bad} -> {c:?}");
            }
        }
        assert_eq!(path_components("/proc/kallsyms"), ["proc", "kallsyms"]);
    }
}
