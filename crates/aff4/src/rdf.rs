//! The metadata graph: information.turtle parsed with oxttl into an indexed set of triples,
//! and a small deterministic Turtle writer for the volumes we create.

use crate::error::{Error, Result};
use crate::vocab::{AFF4, AFF4_LEGACY, RDF_TYPE, XSD};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// The current time as an `xsd:dateTime` value (RFC 3339, UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The local name of an IRI (after the last `#` or `/`).
pub fn local_name(iri: &str) -> String {
    iri.rsplit(['#', '/']).next().unwrap_or(iri).to_string()
}

/// An RDF object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// An IRI.
    Iri(String),
    /// A blank node label.
    Blank(String),
    /// A literal with its datatype IRI (`xsd:string` when untyped).
    Literal {
        /// Lexical value.
        value: String,
        /// Datatype IRI.
        datatype: String,
    },
}

impl Node {
    /// The IRI, if this is one.
    pub fn as_iri(&self) -> Option<&str> {
        match self {
            Node::Iri(s) => Some(s),
            _ => None,
        }
    }
    /// The lexical value of a literal (or the IRI).
    pub fn value(&self) -> &str {
        match self {
            Node::Iri(s) | Node::Blank(s) => s,
            Node::Literal { value, .. } => value,
        }
    }
    /// The value as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Node::Literal { value, .. } => value.trim().parse().ok(),
            _ => None,
        }
    }
    /// An `xsd:long` literal.
    pub fn long(v: u64) -> Node {
        Node::Literal { value: v.to_string(), datatype: format!("{XSD}long") }
    }
    /// An `xsd:int` literal.
    pub fn int(v: u64) -> Node {
        Node::Literal { value: v.to_string(), datatype: format!("{XSD}int") }
    }
    /// An `xsd:string` literal.
    pub fn string(v: impl Into<String>) -> Node {
        Node::Literal { value: v.into(), datatype: format!("{XSD}string") }
    }
    /// A literal with any datatype.
    pub fn typed(v: impl Into<String>, datatype: impl Into<String>) -> Node {
        Node::Literal { value: v.into(), datatype: datatype.into() }
    }
    /// An IRI node.
    pub fn iri(v: impl Into<String>) -> Node {
        Node::Iri(v.into())
    }
}

/// A set of triples indexed by subject, keeping insertion order.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    subjects: Vec<String>,
    props: HashMap<String, Vec<(String, Node)>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses Turtle, resolving relative IRIs against `base` (the volume URN).
    ///
    /// # Errors
    /// A syntax error, with line and column.
    pub fn parse_turtle(&mut self, data: &[u8], base: &str, context: &str) -> Result<()> {
        check_nesting(data).map_err(|what| Error::Turtle { context: context.to_string(), what })?;
        let mut parser = oxttl::TurtleParser::new();
        if let Ok(p) = oxttl::TurtleParser::new().with_base_iri(base) {
            parser = p;
        }
        for t in parser.lenient().for_slice(data) {
            let t = t.map_err(|e| Error::Turtle { context: context.to_string(), what: e.to_string() })?;
            let s = match t.subject {
                oxrdf::NamedOrBlankNode::NamedNode(n) => n.into_string(),
                oxrdf::NamedOrBlankNode::BlankNode(b) => format!("_:{}", b.as_str()),
            };
            let o = match t.object {
                oxrdf::Term::NamedNode(n) => Node::Iri(n.into_string()),
                oxrdf::Term::BlankNode(b) => Node::Blank(format!("_:{}", b.as_str())),
                oxrdf::Term::Literal(l) => {
                    let (value, datatype, _lang) = l.destruct();
                    Node::Literal { value, datatype: datatype.map(|d| d.into_string()).unwrap_or_else(|| format!("{XSD}string")) }
                }
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            self.add(&s, t.predicate.as_str(), o);
        }
        Ok(())
    }

    /// Adds a triple (duplicates are ignored).
    pub fn add(&mut self, s: &str, p: &str, o: Node) {
        let v = self.props.entry(s.to_string()).or_insert_with(|| {
            self.subjects.push(s.to_string());
            Vec::new()
        });
        if !v.iter().any(|(pp, oo)| pp == p && *oo == o) {
            v.push((p.to_string(), o));
        }
    }

    /// Replaces all values of `p` on `s` with `o`.
    pub fn set(&mut self, s: &str, p: &str, o: Node) {
        if let Some(v) = self.props.get_mut(s) {
            v.retain(|(pp, _)| pp != p);
        }
        self.add(s, p, o);
    }

    /// Removes all values of `p` on `s`.
    pub fn remove(&mut self, s: &str, p: &str) {
        if let Some(v) = self.props.get_mut(s) {
            v.retain(|(pp, _)| pp != p);
        }
    }

    /// Merges another graph into this one.
    pub fn merge(&mut self, other: &Graph) {
        for s in &other.subjects {
            for (p, o) in &other.props[s] {
                self.add(s, p, o.clone());
            }
        }
    }

    /// Merges the metadata of another volume of the same set. Statements are united, except
    /// that volumes which disagree about `aff4:size` (a value that only grows while a stream is
    /// written) keep the largest: c-aff4 writes each part's turtle as a snapshot of its whole
    /// graph, so a part closed while a stream was still being written says `aff4:size 0` and the
    /// last part the final size. The result does not depend on the order the parts are opened in;
    /// conflicting digests are united and left for [`Graph::conflicting_digests`] to report.
    pub fn merge_volume(&mut self, other: &Graph) {
        let grows = [format!("{AFF4}size"), format!("{AFF4_LEGACY}size")];
        for s in &other.subjects {
            for (p, o) in &other.props[s] {
                if grows.contains(p) {
                    if let Some(have) = self.values(s, p).filter_map(Node::as_u64).max() {
                        if o.as_u64().is_some_and(|new| new > have) {
                            self.set(s, p, o.clone());
                        }
                        continue;
                    }
                }
                self.add(s, p, o.clone());
            }
        }
    }

    /// Subjects given two different digests of one kind (same predicate and datatype) by the
    /// volumes opened: (subject, predicate, datatype, the digests). Such a set cannot be trusted
    /// whichever digest is checked.
    pub fn conflicting_digests(&self) -> Vec<(String, String, String, Vec<String>)> {
        let digest_preds: Vec<String> = ["hash", "blockMapHash", "mapPointHash", "mapIdxHash", "mapPathHash", "mapHash", "imageStreamHash"]
            .iter()
            .flat_map(|l| [format!("{AFF4}{l}"), format!("{AFF4_LEGACY}{l}")])
            .collect();
        let mut out = Vec::new();
        for s in &self.subjects {
            let mut by_kind: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
            for (p, o) in &self.props[s] {
                if let (true, Node::Literal { value, datatype }) = (digest_preds.contains(p), o) {
                    let v = by_kind.entry((p.as_str(), datatype.as_str())).or_default();
                    let value = value.trim().to_ascii_lowercase();
                    if !v.contains(&value) {
                        v.push(value);
                    }
                }
            }
            for ((p, d), values) in by_kind {
                if values.len() > 1 {
                    out.push((s.clone(), p.to_string(), d.to_string(), values));
                }
            }
        }
        out
    }

    /// Subjects in first-seen order.
    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }

    /// All (predicate, object) pairs of `s`.
    pub fn properties(&self, s: &str) -> &[(String, Node)] {
        self.props.get(s).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Values of predicate `p` on subject `s`.
    pub fn values<'a>(&'a self, s: &str, p: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.properties(s).iter().filter(move |(pp, _)| pp == p).map(|(_, o)| o)
    }

    /// The first value of any of the predicates `ps` (full IRIs) on `s`.
    pub fn first_of<'a>(&'a self, s: &str, ps: &[&str]) -> Option<&'a Node> {
        let props = self.properties(s);
        ps.iter().find_map(|p| props.iter().find(|(pp, _)| pp == p).map(|(_, o)| o))
    }

    /// The first value of an `aff4:` local name, trying the standard then the legacy namespace.
    pub fn aff4(&self, s: &str, local: &str) -> Option<&Node> {
        self.first_of(s, &[&format!("{AFF4}{local}"), &format!("{AFF4_LEGACY}{local}")])
    }

    /// All rdf:type IRIs of `s`.
    pub fn types<'a>(&'a self, s: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.values(s, RDF_TYPE).filter_map(|n| n.as_iri())
    }

    /// True when `s` has rdf:type `t` (full IRI).
    pub fn has_type(&self, s: &str, t: &str) -> bool {
        self.types(s).any(|x| x == t)
    }

    /// Subjects having rdf:type `t`.
    pub fn subjects_of_type(&self, t: &str) -> Vec<String> {
        self.subjects.iter().filter(|s| self.has_type(s, t)).cloned().collect()
    }

    /// Number of triples.
    pub fn len(&self) -> usize {
        self.props.values().map(|v| v.len()).sum()
    }

    /// True when there are no triples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Serialises as Turtle with the usual AFF4 prefixes; subjects and values sorted for stable output.
    pub fn to_turtle(&self) -> String {
        let prefixes: [(&str, &str); 5] = [
            ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
            ("xsd", XSD),
            ("memory", "http://aff4.org/Schema#memory/"),
            ("aff4", AFF4),
            ("aff4L", AFF4_LEGACY),
        ];
        let mut out = String::new();
        for (p, iri) in &prefixes {
            let _ = writeln!(out, "@prefix {p}: <{iri}> .");
        }
        out.push('\n');
        let short = |iri: &str| -> String {
            // Longest matching namespace wins (memory: before aff4:).
            let mut best: Option<(&str, &str)> = None;
            for (p, ns) in &prefixes {
                if let Some(local) = iri.strip_prefix(ns) {
                    // A Turtle local name may not start with '-' (PN_LOCAL).
                    if local.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                        && local.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                        && best.is_none_or(|(_, bns)| ns.len() > bns.len())
                    {
                        best = Some((p, ns));
                    }
                }
            }
            match best {
                Some((p, ns)) => format!("{p}:{}", &iri[ns.len()..]),
                None => format!("<{}>", escape_iri(iri)),
            }
        };
        let mut subjects: Vec<&String> = self.subjects.iter().collect();
        subjects.sort();
        for s in subjects {
            let mut by_pred: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
            for (p, o) in &self.props[s] {
                by_pred.entry(p.as_str()).or_default().push(o);
            }
            if by_pred.is_empty() {
                continue;
            }
            let subj = if s.starts_with("_:") { s.clone() } else { format!("<{}>", escape_iri(s)) };
            let _ = write!(out, "{subj}");
            let mut first = true;
            // rdf:type first, as "a".
            let mut preds: Vec<(&str, Vec<&Node>)> = by_pred.into_iter().collect();
            preds.sort_by_key(|(p, _)| (*p != RDF_TYPE, p.to_string()));
            for (p, mut objs) in preds {
                objs.sort();
                let ptxt = if p == RDF_TYPE { "a".to_string() } else { short(p) };
                let otxt: Vec<String> = objs
                    .iter()
                    .map(|o| match o {
                        Node::Iri(i) => short(i),
                        Node::Blank(b) => b.clone(),
                        Node::Literal { value, datatype } => {
                            format!("\"{}\"^^{}", escape_literal(value), short(datatype))
                        }
                    })
                    .collect();
                let _ = write!(out, "{}\n    {ptxt} {}", if first { "" } else { " ;" }, otxt.join(" , "));
                first = false;
            }
            out.push_str(" .\n\n");
        }
        out
    }
}

fn escape_iri(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => o.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) <= 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

fn escape_literal(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let mut g = Graph::new();
        g.add("aff4://a", RDF_TYPE, Node::iri(format!("{AFF4}ImageStream")));
        g.add("aff4://a", &format!("{AFF4}size"), Node::long(5));
        g.add("aff4://a", &format!("{AFF4}category"), Node::iri(format!("{AFF4}memory/physical")));
        g.add("aff4://a", &format!("{AFF4}note"), Node::string("a \"q\"\nline\\"));
        g.add("aff4://a/C:/x y", &format!("{AFF4}hash"), Node::typed("00ff", format!("{AFF4}SHA1")));
        let t = g.to_turtle();
        assert!(t.contains("memory:physical"), "{t}");
        let mut h = Graph::new();
        h.parse_turtle(t.as_bytes(), "aff4://v", "test").unwrap();
        assert_eq!(h.len(), g.len());
        assert_eq!(h.aff4("aff4://a", "note").unwrap().value(), "a \"q\"\nline\\");
        assert_eq!(h.aff4("aff4://a/C:/x y", "hash").unwrap().value(), "00ff");
    }

    /// Found by the turtle fuzz target: a local name starting with '-' was written as a
    /// prefixed name, which Turtle forbids; control characters in IRIs must round-trip too.
    #[test]
    fn awkward_iris_round_trip() {
        let mut g = Graph::new();
        g.add("aff4://x", "http://aff2.org/Sc\u{1a}hema#keyBag", Node::iri("http://afflib.org/2009/aff4#-a9fa-2c01"));
        g.add("aff4://x", &format!("{AFF4}p"), Node::iri(format!("{AFF4}_ok-1")));
        g.add("aff4://x", &format!("{AFF4}q"), Node::iri(format!("{AFF4}9lives")));
        g.add("aff4://x", &format!("{AFF4}r"), Node::iri("http://e.org/a\u{1a}b"));
        let t = g.to_turtle();
        let mut h = Graph::new();
        h.parse_turtle(t.as_bytes(), "aff4://v", "test").unwrap_or_else(|e| panic!("{e}\n{t}"));
        assert_eq!(h.len(), g.len());
        assert!(h.first_of("aff4://x", &["http://aff2.org/Sc\u{1a}hema#keyBag"]).is_some());
    }
}

/// Deepest nesting of blank-node property lists and collections accepted in Turtle; AFF4
/// metadata nests one or two levels, and the parser's memory grows with the depth.
pub const MAX_TURTLE_NESTING: usize = 64;

/// Refuses Turtle whose `[` / `(` nesting is deeper than [`MAX_TURTLE_NESTING`] (outside
/// strings, IRIs and comments), in one pass with no allocation.
fn check_nesting(data: &[u8]) -> std::result::Result<(), String> {
    let mut depth = 0usize;
    let mut i = 0;
    let mut line = 1usize;
    while i < data.len() {
        match data[i] {
            b'\n' => line += 1,
            b'#' => {
                while i < data.len() && data[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'<' => {
                // An IRI ends at '>' and holds no white space.
                while i < data.len() && data[i] != b'>' && !data[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let long = data.get(i + 1) == Some(&q) && data.get(i + 2) == Some(&q);
                i += if long { 3 } else { 1 };
                while i < data.len() {
                    match data[i] {
                        b'\\' => i += 1,
                        b'\n' => line += 1,
                        c if c == q && (!long || (data.get(i + 1) == Some(&q) && data.get(i + 2) == Some(&q))) => {
                            i += if long { 2 } else { 0 };
                            break;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b'(' => {
                depth += 1;
                if depth > MAX_TURTLE_NESTING {
                    return Err(format!("line {line}: nested deeper than {MAX_TURTLE_NESTING} levels of [ ] or ( )"));
                }
            }
            b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod nesting_tests {
    use super::*;
    #[test]
    fn deep_nesting_is_refused_quickly() {
        let deep = format!("<a:b> <a:c> {}1{} .", "[ <a:d> ".repeat(4_000_000), " ]".repeat(4_000_000));
        let mut g = Graph::new();
        let e = g.parse_turtle(deep.as_bytes(), "aff4://x", "v").unwrap_err().to_string();
        assert!(e.contains("nested deeper than 64"), "{e}");
        let ok = "<a:b> <a:c> [ <a:d> \"[[[[(((\" ; <a:e> ( 1 2 ) ] . # [[[[\n<a:f> <a:g> '''x\"[''' .";
        let mut g = Graph::new();
        g.parse_turtle(ok.as_bytes(), "aff4://x", "v").unwrap();
        assert!(g.subjects().iter().any(|s| s == "a:f"), "{g:?}");
    }
}
