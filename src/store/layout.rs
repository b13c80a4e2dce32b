//! The value <-> git layout: markers, reading collections lazily, writing values.

use super::{Result, Store, StoreError};
use crate::codec::name::{self, Decoded};
use crate::codec::{self, MAX_DEPTH};
use crate::value::{CollKind, Path, Value};
use git2::{ObjectType, Oid};
use std::collections::HashMap;

/// The name of the entry that records a tree's kind.
pub const MARKER: &str = ".valfs";

/// Whether an entry name is valfs's own, never a key or an element: the marker, and the
/// root's records beside the value (`.valfs-conflicts`). Keys are escaped so that their names
/// never start with `.valfs`.
pub(crate) fn is_reserved(name: &str) -> bool {
    name.starts_with(MARKER)
}

/// Collections with more entries than this are split into buckets (subtrees), so a save
/// rewrites a few small trees instead of one huge one. Smaller collections stay plain trees.
pub const SPLIT_OVER: usize = 1024;
/// Bucket subtrees are named `%%` and two hex digits: never an escaped key or an index.
const BUCKET: &str = "%%";
const MODE_TREE: &str = "40000";
const MODE_BLOB: &str = "100644";

/// A stored value, not yet read: a collection's tree or a scalar's blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Dir(Oid),
    Leaf(Oid),
}

impl Node {
    pub fn oid(self) -> Oid {
        match self {
            Node::Dir(o) | Node::Leaf(o) => o,
        }
    }

    pub fn is_dir(self) -> bool {
        matches!(self, Node::Dir(_))
    }

    pub(crate) fn filemode(self) -> git2::FileMode {
        match self {
            Node::Dir(_) => git2::FileMode::Tree,
            Node::Leaf(_) => git2::FileMode::Blob,
        }
    }
}

/// One entry of a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// The entry's name in git: the escaped key, or the index without padding.
    pub name: String,
    pub node: Node,
}

/// A collection read from its tree: its kind and its entries in order (sequences by index,
/// maps and sets by name).
#[derive(Clone, Debug)]
pub struct Dir {
    pub kind: CollKind,
    pub entries: Vec<Child>,
    /// Full keys of shortened names.
    pub long_keys: HashMap<String, String>,
}

/// What a collection's marker records.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marker {
    pub kind: CollKind,
    /// Full keys of shortened names.
    pub long_keys: HashMap<String, String>,
    /// The number of entries of a split collection; `None` for a plain one.
    pub split: Option<usize>,
}

impl Marker {
    /// How many levels of buckets the collection's tree has.
    pub fn levels(&self) -> usize {
        self.split.map_or(0, |n| levels(self.kind, n))
    }

    pub fn sorted_long_keys(&self) -> Vec<(String, String)> {
        let mut long: Vec<(String, String)> = self
            .long_keys
            .iter()
            .map(|(s, k)| (s.clone(), k.clone()))
            .collect();
        long.sort();
        long
    }
}

/// The levels of buckets a collection of `n` entries is split into: none up to
/// [`SPLIT_OVER`]; then sequences in chunks of 256 consecutive elements under up to 256
/// chunks a level, maps and sets by the first bytes of the SHA-1 of each entry's name, 256
/// buckets a level, as many levels as keep the buckets at about [`SPLIT_OVER`] entries or fewer.
pub(crate) fn levels(kind: CollKind, n: usize) -> usize {
    if n <= SPLIT_OVER {
        return 0;
    }
    let holds = |d: u32| {
        if kind.is_sequence() {
            256usize.saturating_pow(d + 1)
        } else {
            SPLIT_OVER.saturating_mul(256usize.saturating_pow(d))
        }
    };
    let mut d = 1;
    while holds(d) < n {
        d += 1;
    }
    d as usize
}

/// The bucket path (`%%3f/%%a0/`, empty when `levels` is 0) of an entry of a split collection.
pub(crate) fn bucket_path(kind: CollKind, git_name: &str, levels: usize) -> String {
    let mut out = String::with_capacity(levels * 5);
    if levels == 0 {
        return out;
    }
    let digits: Vec<u8> = if kind.is_sequence() {
        let idx = parse_index(git_name).unwrap_or(0);
        (0..levels)
            .map(|l| ((idx >> (8 * (levels - l))) & 0xff) as u8)
            .collect()
    } else {
        sha1_smol::Sha1::from(git_name.as_bytes()).digest().bytes()[..levels].to_vec()
    };
    for d in digits {
        out.push_str(&format!("{BUCKET}{d:02x}/"));
    }
    out
}

fn is_bucket(name: &str) -> bool {
    name.starts_with(BUCKET)
}

pub(crate) fn marker_text(
    kind: CollKind,
    long_keys: &[(String, String)],
    split: Option<usize>,
) -> String {
    let mut text = format!("{}\n", kind.name());
    if let Some(n) = split {
        text.push_str(&format!("split {n}\n"));
    }
    for (short, key) in long_keys {
        text.push_str(short);
        text.push('\t');
        codec::json::write_string(&mut text, key);
        text.push('\n');
    }
    text
}

pub(super) fn parse_marker(bytes: &[u8]) -> Result<Marker> {
    let bad = || StoreError::Corrupt("unreadable .valfs marker".into());
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let mut lines = text.lines();
    let kind = lines.next().and_then(CollKind::from_name).ok_or_else(bad)?;
    let mut marker = Marker {
        kind,
        ..Marker::default()
    };
    for line in lines {
        if let Some(n) = line.strip_prefix("split ") {
            marker.split = Some(n.parse().map_err(|_| bad())?);
            continue;
        }
        let (short, key) = line.split_once('\t').ok_or_else(bad)?;
        let Ok(Value::String(key)) = codec::json::parse(key) else {
            return Err(bad());
        };
        marker.long_keys.insert(short.to_owned(), key);
    }
    Ok(marker)
}

/// Parses a sequence entry name: decimal digits, any padding.
pub fn parse_index(name: &str) -> Option<usize> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

impl Store {
    /// Writes a blob.
    pub(crate) fn write_blob(&self, data: &[u8]) -> Result<Oid> {
        Ok(self.repo.odb()?.write(ObjectType::Blob, data)?)
    }

    /// A blob's size, without reading it.
    pub fn blob_size(&self, oid: Oid) -> Result<u64> {
        Ok(self.repo.odb()?.read_header(oid)?.0 as u64)
    }

    /// Writes bytes as a blob that is no part of a value (a text the mount shows, such as
    /// `.sync/status`).
    pub fn write_text(&self, bytes: &[u8]) -> Result<Oid> {
        Ok(self.repo.blob(bytes)?)
    }

    /// Reads a blob's bytes.
    pub fn read_blob(&self, oid: Oid) -> Result<Vec<u8>> {
        Ok(self.repo.find_blob(oid)?.content().to_vec())
    }

    /// Reads a collection's marker (a map's, when it has none).
    pub(crate) fn marker(&self, tree: &git2::Tree<'_>) -> Result<Marker> {
        let Some(e) = tree.get_name(MARKER) else {
            return Ok(Marker::default());
        };
        if let Some(m) = self.markers.borrow().get(&e.id()) {
            return Ok(m.clone());
        }
        let m = parse_marker(&self.read_blob(e.id())?)?;
        // Markers with long keys are one collection's each: not worth keeping.
        if m.long_keys.is_empty() {
            let mut markers = self.markers.borrow_mut();
            if markers.len() >= 1024 {
                markers.clear();
            }
            markers.insert(e.id(), m.clone());
        }
        Ok(m)
    }

    /// Reads a collection's kind and entries (gathered from its buckets when it is split).
    pub fn read_dir(&self, tree: Oid) -> Result<Dir> {
        let top = self.repo.find_tree(tree)?;
        let marker = self.marker(&top)?;
        let mut entries = Vec::with_capacity(marker.split.unwrap_or(top.len()));
        let mut pending = vec![top];
        while let Some(tree) = pending.pop() {
            for e in tree.iter() {
                let Ok(name) = std::str::from_utf8(e.name_bytes()) else {
                    log::warn!(
                        "tree {}: skipping entry with a name that is not UTF-8",
                        tree.id()
                    );
                    continue;
                };
                if is_reserved(name) {
                    continue;
                }
                let node = match e.kind() {
                    Some(ObjectType::Tree) if is_bucket(name) => {
                        pending.push(self.repo.find_tree(e.id())?);
                        continue;
                    }
                    Some(ObjectType::Tree) => Node::Dir(e.id()),
                    Some(ObjectType::Blob) if e.filemode() & 0o170000 == 0o100000 => {
                        Node::Leaf(e.id())
                    }
                    _ => {
                        log::warn!(
                            "tree {}: skipping {name:?}, neither a file nor a tree",
                            tree.id()
                        );
                        continue;
                    }
                };
                entries.push(Child {
                    name: name.to_owned(),
                    node,
                });
            }
        }
        let kind = marker.kind;
        if kind.is_sequence() {
            entries.retain(|c| parse_index(&c.name).is_some());
            entries.sort_by_key(|c| parse_index(&c.name));
            for (i, c) in entries.iter_mut().enumerate() {
                c.name = i.to_string();
            }
        } else if marker.split.is_some() {
            entries.sort_by_cached_key(|c| git_order(&c.name, c.node));
        }
        Ok(Dir {
            kind,
            entries,
            long_keys: marker.long_keys,
        })
    }

    /// The number of entries of a collection.
    pub fn entry_count(&self, tree: Oid) -> Result<usize> {
        let t = self.repo.find_tree(tree)?;
        match self.marker(&t)?.split {
            Some(n) => Ok(n),
            None => Ok(self.read_dir(tree)?.entries.len()),
        }
    }

    /// How many of a collection's entries are collections (a folder's `nlink` is 2 more), or
    /// `None` for a split collection, whose buckets would all have to be read.
    pub fn subdir_count(&self, tree: Oid) -> Result<Option<usize>> {
        let t = self.repo.find_tree(tree)?;
        if self.marker(&t)?.split.is_some() {
            return Ok(None);
        }
        Ok(Some(
            t.iter()
                .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                // Reserved entries (`is_reserved`) are no collections of the value.
                .filter(|e| !e.name_bytes().starts_with(MARKER.as_bytes()))
                .count(),
        ))
    }

    /// The kind of a collection.
    pub fn dir_kind(&self, tree: Oid) -> Result<CollKind> {
        Ok(self.marker(&self.repo.find_tree(tree)?)?.kind)
    }

    /// The entry of a collection that a name (as in the mount) stands for.
    pub fn lookup(&self, tree: Oid, kind: CollKind, name: &str) -> Result<Option<Child>> {
        Ok(self.locate(tree, kind, name)?.map(|(c, _)| c))
    }

    /// Like [`Store::lookup`], with the entry's path inside the collection's tree (its bucket
    /// path and name).
    pub(crate) fn locate(
        &self,
        tree: Oid,
        kind: CollKind,
        name: &str,
    ) -> Result<Option<(Child, String)>> {
        let git_name = self.git_name(kind, name)?;
        let t = self.repo.find_tree(tree)?;
        let found = match t.get_name(&git_name) {
            Some(e) => Some((e.kind(), e.id(), e.filemode(), git_name.clone())),
            None => {
                let levels = self.marker(&t)?.levels();
                if levels > 0 {
                    let path = bucket_path(kind, &git_name, levels) + &git_name;
                    t.get_path(std::path::Path::new(&path))
                        .ok()
                        .map(|e| (e.kind(), e.id(), e.filemode(), path))
                } else if kind.is_sequence() {
                    // Sequences written by other tools may pad their indices.
                    return Ok(self
                        .read_dir(tree)?
                        .entries
                        .into_iter()
                        .find(|c| c.name == git_name)
                        .map(|c| {
                            let path = c.name.clone();
                            (c, path)
                        }));
                } else {
                    None
                }
            }
        };
        let Some((kind, id, mode, path)) = found else {
            return Ok(None);
        };
        let node = match kind {
            Some(ObjectType::Tree) => Node::Dir(id),
            // As in read_dir: a symlink's blob is never a scalar (nor ever followed).
            Some(ObjectType::Blob) if mode & 0o170000 == 0o100000 => Node::Leaf(id),
            _ => return Ok(None),
        };
        Ok(Some((
            Child {
                name: git_name,
                node,
            },
            path,
        )))
    }

    /// The git entry name for a name as typed in the mount: indices lose their padding;
    /// other names must be canonical escaped keys.
    pub fn git_name(&self, kind: CollKind, name: &str) -> Result<String> {
        if kind.is_sequence() {
            return parse_index(name)
                .map(|i| i.to_string())
                .ok_or_else(|| StoreError::InvalidName(format!("{name:?} is not an index")));
        }
        if name == MARKER {
            return Err(StoreError::InvalidName(name.into()));
        }
        name::unescape(name).map_err(|e| StoreError::InvalidName(e.to_string()))?;
        Ok(name.to_owned())
    }

    /// The node at a path under a root tree.
    pub fn node_at(&self, root: Oid, path: &Path) -> Result<Node> {
        let mut node = Node::Dir(root);
        for (i, seg) in path.names().iter().enumerate() {
            let here = || Path(path.names()[..=i].to_vec()).to_string();
            let Node::Dir(tree) = node else {
                return Err(StoreError::NotADirectory(
                    Path(path.names()[..i].to_vec()).to_string(),
                ));
            };
            let kind = self.dir_kind(tree)?;
            node = self
                .lookup(tree, kind, seg)
                .map_err(|_| StoreError::NotFound(here()))?
                .ok_or_else(|| StoreError::NotFound(here()))?
                .node;
        }
        Ok(node)
    }

    /// Reads a whole value.
    pub fn read_value(&self, node: Node) -> Result<Value> {
        self.read_value_at(node, 0)
    }

    fn read_value_at(&self, node: Node, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(StoreError::Codec(codec::CodecError::TooDeep));
        }
        let tree = match node {
            Node::Leaf(blob) => return self.read_scalar(blob),
            Node::Dir(tree) => tree,
        };
        let dir = self.read_dir(tree)?;
        let mut items = Vec::with_capacity(dir.entries.len());
        for c in &dir.entries {
            items.push(self.read_value_at(c.node, depth + 1)?);
        }
        Ok(match dir.kind {
            CollKind::Vector => Value::Vector(items),
            CollKind::List => Value::List(items),
            CollKind::Set => Value::Set(items.into_iter().collect()),
            CollKind::Map => {
                let mut map = std::collections::BTreeMap::new();
                for (c, v) in dir.entries.iter().zip(items) {
                    map.insert(self.entry_key(&dir, &c.name)?, v);
                }
                Value::Map(map)
            }
        })
    }

    /// The key of a map entry.
    pub fn entry_key(&self, dir: &Dir, git_name: &str) -> Result<Value> {
        let text = match name::unescape(git_name) {
            Ok(Decoded::Text(t)) => t,
            Ok(Decoded::Long) => dir.long_keys.get(git_name).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("no full key for long name {git_name:?}"))
            })?,
            Err(_) => {
                return Err(StoreError::Corrupt(format!(
                    "entry name {git_name:?} is not an escaped key"
                )));
            }
        };
        Ok(name::text_key(self.format, &text))
    }

    /// Reads a scalar blob.
    pub fn read_scalar(&self, blob: Oid) -> Result<Value> {
        let bytes = self.read_blob(blob)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StoreError::Corrupt(format!("blob {blob} is not UTF-8")))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        self.format
            .parse(text)
            .map_err(|e| StoreError::Corrupt(format!("blob {blob}: {e}")))
    }

    /// Writes a value's objects (all of them, or those not yet stored) and returns its node.
    pub fn write_value(&self, value: &Value) -> Result<Node> {
        let odb = self.repo.odb()?;
        write_with(
            &mut |kind, data| Ok(odb.write(kind, data)?),
            self.format,
            value,
            0,
        )
    }
}

/// Where objects go: the object database, or a pack being built.
pub(crate) type Sink<'a> = dyn FnMut(ObjectType, &[u8]) -> Result<Oid> + 'a;

/// Writes a value's objects into `sink`, children first, and returns its node.
pub(crate) fn write_with(
    sink: &mut Sink<'_>,
    format: codec::Format,
    value: &Value,
    depth: usize,
) -> Result<Node> {
    if depth > MAX_DEPTH {
        return Err(StoreError::Codec(codec::CodecError::TooDeep));
    }
    let mut entries: Vec<(String, Node)> = Vec::new();
    let mut long_keys = Vec::new();
    let kind = match value {
        Value::Vector(items) | Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                entries.push((i.to_string(), write_with(sink, format, item, depth + 1)?));
            }
            if matches!(value, Value::List(_)) {
                CollKind::List
            } else {
                CollKind::Vector
            }
        }
        Value::Set(items) => {
            for item in items {
                entries.push((
                    name::key_name(format, item),
                    write_with(sink, format, item, depth + 1)?,
                ));
            }
            CollKind::Set
        }
        Value::Map(map) => {
            for (k, v) in map {
                let text = name::key_text(format, k);
                let n = name::escape(&text);
                if name::is_long_name(&n) {
                    long_keys.push((n.clone(), text));
                }
                entries.push((n, write_with(sink, format, v, depth + 1)?));
            }
            CollKind::Map
        }
        scalar => {
            let text = codec::scalar_file_text(format, scalar)?;
            return Ok(Node::Leaf(sink(ObjectType::Blob, &text)?));
        }
    };
    long_keys.sort();
    write_entries(sink, kind, entries, &long_keys)
}

/// Writes a collection's tree from its entries (names as in git, unique), split into buckets
/// when it is large, and returns its node.
pub(crate) fn write_entries(
    sink: &mut Sink<'_>,
    kind: CollKind,
    mut entries: Vec<(String, Node)>,
    long_keys: &[(String, String)],
) -> Result<Node> {
    check_unique(&mut entries)?;
    let n = entries.len();
    let levels = levels(kind, n);
    let split = (levels > 0).then_some(n);
    let marker = sink(
        ObjectType::Blob,
        marker_text(kind, long_keys, split).as_bytes(),
    )?;
    let mut top = if levels == 0 {
        entries
    } else {
        let mut placed: Vec<(String, (String, Node))> = entries
            .into_iter()
            .map(|(name, node)| (bucket_path(kind, &name, levels), (name, node)))
            .collect();
        placed.sort_by(|a, b| a.0.cmp(&b.0));
        write_buckets(sink, &placed, 0)?
    };
    top.push((MARKER.to_owned(), Node::Leaf(marker)));
    Ok(Node::Dir(sink(ObjectType::Tree, &tree_bytes(&mut top))?))
}

/// The entries of the tree at bucket level `level` holding `placed` (sorted by bucket path,
/// each path `%%xx/` per level): sub-buckets written, or the entries themselves at the bottom.
fn write_buckets(
    sink: &mut Sink<'_>,
    placed: &[(String, (String, Node))],
    level: usize,
) -> Result<Vec<(String, Node)>> {
    let width = BUCKET.len() + 3;
    let at = level * width;
    if placed.first().is_none_or(|(path, _)| path.len() <= at) {
        return Ok(placed.iter().map(|(_, e)| e.clone()).collect());
    }
    let mut out = Vec::new();
    let mut rest = placed;
    while let Some((path, _)) = rest.first() {
        let bucket = &path[at..at + width];
        let len = rest
            .iter()
            .take_while(|(p, _)| &p[at..at + width] == bucket)
            .count();
        let mut entries = write_buckets(sink, &rest[..len], level + 1)?;
        let tree = sink(ObjectType::Tree, &tree_bytes(&mut entries))?;
        out.push((bucket[..width - 1].to_owned(), Node::Dir(tree)));
        rest = &rest[len..];
    }
    Ok(out)
}

fn check_unique(entries: &mut [(String, Node)]) -> Result<()> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(StoreError::Invalid(format!(
            "two keys share the name {:?}",
            w[0].0
        )));
    }
    Ok(())
}

/// The raw bytes of a git tree, entries in git's order (trees sort as if their name ended in `/`).
pub(crate) fn tree_bytes(entries: &mut [(String, Node)]) -> Vec<u8> {
    entries.sort_by_cached_key(|(name, node)| git_order(name, *node));
    let mut out = Vec::with_capacity(entries.len() * 40);
    for (name, node) in entries.iter() {
        out.extend_from_slice(if node.is_dir() { MODE_TREE } else { MODE_BLOB }.as_bytes());
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(node.oid().as_bytes());
    }
    out
}

fn git_order(name: &str, node: Node) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    if node.is_dir() {
        key.push(b'/');
    }
    key
}
