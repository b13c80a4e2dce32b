//! Edits, and how one edit changes a root tree: it rewrites only the changed entries and their
//! ancestor trees. A batch goes through the batch editor ([`super::tree_edit`]), which mirrors
//! these steps in memory and writes each changed tree once; it falls back to them edit by edit
//! for trees valfs did not write.

use super::layout::{self, MARKER, Marker, Node, marker_text, parse_index};
use super::{Result, Store, StoreError};
use crate::codec::{CodecError, MAX_DEPTH, name};
use crate::value::{CollKind, Path, Value};
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Tree};
use std::collections::BTreeMap;

/// A change to the value, addressed by names as they appear in the mount.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Sets a key or element (creating it; in a sequence, the index one past the end
    /// appends), or replaces the whole value at the root.
    Set(Path, Value),
    /// Sets a key to an already stored node.
    Put(Path, Node),
    /// Removes a key or element; a sequence closes the gap.
    Remove(Path),
    /// Inserts an element into a vector or list before the given index (the later elements
    /// move up by one); the index one past the end appends.
    Insert(Path, Value),
    /// Moves a key or subtree, replacing what is at the target.
    Move(Path, Path),
    /// Resolves the open conflict recorded at a path (removes its record; the value is what
    /// the other edits make it): a save of a conflicted path carries one, so that setting the
    /// path and resolving its conflict are one commit. Nothing when no conflict is open there.
    Resolve(Path),
}

impl Edit {
    /// A short description for commit messages: `set users/0/name`.
    pub fn describe(&self) -> String {
        match self {
            Edit::Set(p, _) | Edit::Put(p, _) => format!("set {p}"),
            Edit::Remove(p) => format!("rm {p}"),
            Edit::Insert(p, _) => format!("insert {p}"),
            Edit::Move(a, b) => format!("mv {a} -> {b}"),
            Edit::Resolve(p) => format!("resolve {p}"),
        }
    }
}

/// Tree updates for libgit2's `TreeUpdateBuilder`, which refuses to replace a blob by a tree or
/// a tree by a blob ("cannot replace 'blob' with 'tree'") and takes one update per path: entries
/// whose kind changes (a scalar set to a collection, elements of a mixed vector shifting down)
/// are removed by a first pass.
#[derive(Default)]
struct Updates {
    upserts: Vec<(String, Oid, FileMode)>,
    removes: Vec<String>,
}

impl Updates {
    fn upsert(&mut self, path: String, id: Oid, mode: FileMode) {
        self.upserts.push((path, id, mode));
    }

    fn remove(&mut self, path: String) {
        self.removes.push(path);
    }

    fn create_updated(&self, repo: &Repository, base: &Tree<'_>) -> Result<Oid, git2::Error> {
        let mut clear = TreeUpdateBuilder::new();
        let mut retyped = false;
        for (path, _, mode) in &self.upserts {
            if let Ok(old) = base.get_path(std::path::Path::new(path))
                && (old.kind() == Some(ObjectType::Tree)) != (*mode == FileMode::Tree)
            {
                clear.remove(path.as_str());
                retyped = true;
            }
        }
        let cleared;
        let base = if retyped {
            cleared = repo.find_tree(clear.create_updated(repo, base)?)?;
            &cleared
        } else {
            base
        };
        let mut b = TreeUpdateBuilder::new();
        for (path, id, mode) in &self.upserts {
            b.upsert(path.as_str(), *id, *mode);
        }
        for path in &self.removes {
            b.remove(path.as_str());
        }
        b.create_updated(repo, base)
    }
}

/// How many levels hang below a value: 0 for a scalar or an empty collection.
pub fn depth_below(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Vector(items) | Value::List(items) => {
                stack.extend(items.iter().map(|i| (i, d + 1)))
            }
            Value::Set(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Map(m) => stack.extend(m.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// The parent of an edited entry, resolved.
struct Parent {
    /// Git path of the parent collection's tree ("" for the root), bucket paths included.
    git_path: String,
    tree: Oid,
    kind: CollKind,
    marker: Marker,
}

/// A change to one collection's entries: names as in git, `None` removes.
type Changes = Vec<(String, Option<Node>)>;

impl Store {
    /// Writes the value of an [`Edit::Set`] at `path`, once it is known to be one the value
    /// may hold there.
    pub(super) fn write_set_value(&self, path: &Path, value: &Value) -> Result<Node> {
        if path.is_root() && !value.is_collection() {
            return Err(StoreError::Invalid(
                "the root value must be a collection".into(),
            ));
        }
        // Reading the whole value refuses nodes deeper than MAX_DEPTH: do not store one.
        if path.names().len() + depth_below(value) > MAX_DEPTH {
            return Err(StoreError::Codec(CodecError::TooDeep));
        }
        self.write_value(value)
    }

    /// Applies one edit to a root tree and returns the new root tree.
    pub(super) fn apply_one(&self, root: Oid, edit: &Edit) -> Result<Oid> {
        match edit {
            Edit::Set(path, value) => {
                let node = self.write_set_value(path, value)?;
                self.put(root, path, node)
            }
            Edit::Put(path, node) => self.put(root, path, *node),
            Edit::Remove(path) => {
                let (parent, name) = self.parent_of(root, path)?;
                self.remove_entry(root, &parent, name, path)
            }
            Edit::Move(from, to) => self.move_entry(root, from, to),
            // The conflict record is edited around the value: Store::edit_root.
            Edit::Resolve(_) => Ok(root),
            Edit::Insert(path, value) => {
                let (parent, name) = self.parent_of(root, path)?;
                if !parent.kind.is_sequence() {
                    return Err(StoreError::Invalid(format!(
                        "{path}: insert needs a vector or list"
                    )));
                }
                let idx = parse_index(name)
                    .ok_or_else(|| StoreError::InvalidName(format!("{path}: not an index")))?;
                let entries = self.read_dir(parent.tree)?.entries;
                if idx > entries.len() {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: index past the end"
                    )));
                }
                let node = self.write_value(value)?;
                let mut changes: Changes = entries
                    .iter()
                    .enumerate()
                    .skip(idx)
                    .map(|(i, e)| ((i + 1).to_string(), Some(e.node)))
                    .collect();
                changes.push((idx.to_string(), Some(node)));
                self.change(root, &parent, changes, entries.len() + 1, None)
            }
        }
    }

    /// Resolves the parent collection of `path` under `root`.
    fn parent_of<'p>(&self, root: Oid, path: &'p Path) -> Result<(Parent, &'p str)> {
        let (parent_path, name) = path
            .parent()
            .ok_or_else(|| StoreError::Invalid("the root has no name".into()))?;
        let mut tree = root;
        let mut git = Vec::new();
        for (i, seg) in parent_path.names().iter().enumerate() {
            let here = || Path(path.names()[..=i].to_vec()).to_string();
            let kind = self.dir_kind(tree)?;
            let (child, inner) = self
                .locate(tree, kind, seg)?
                .ok_or_else(|| StoreError::NotFound(here()))?;
            let Node::Dir(t) = child.node else {
                return Err(StoreError::NotADirectory(here()));
            };
            git.push(inner);
            tree = t;
        }
        let marker = self.marker(&self.repo.find_tree(tree)?)?;
        Ok((
            Parent {
                git_path: git.join("/"),
                tree,
                kind: marker.kind,
                marker,
            },
            name,
        ))
    }

    /// Applies `changes` to the parent collection, which then holds `count` entries, and
    /// returns the new root. Entries go to their buckets; when the count calls for another
    /// number of bucket levels the collection is written anew. `long_keys` replaces the
    /// marker's full keys of long names.
    fn change(
        &self,
        root: Oid,
        parent: &Parent,
        changes: Changes,
        count: usize,
        long_keys: Option<Vec<(String, String)>>,
    ) -> Result<Oid> {
        let kind = parent.kind;
        let levels = layout::levels(kind, count);
        let long = long_keys.unwrap_or_else(|| parent.marker.sorted_long_keys());
        let tree = if levels == parent.marker.levels() {
            let mut b = Updates::default();
            for (name, node) in changes {
                let path = layout::bucket_path(kind, &name, levels) + &name;
                match node {
                    Some(n) => b.upsert(path, n.oid(), n.filemode()),
                    None => b.remove(path),
                }
            }
            let split = (levels > 0).then_some(count);
            if split != parent.marker.split || long != parent.marker.sorted_long_keys() {
                let marker = self.write_blob(marker_text(kind, &long, split).as_bytes())?;
                b.upsert(MARKER.to_owned(), marker, FileMode::Blob);
            }
            b.create_updated(&self.repo, &self.repo.find_tree(parent.tree)?)?
        } else {
            let mut entries: BTreeMap<String, Node> = self
                .read_dir(parent.tree)?
                .entries
                .into_iter()
                .map(|c| (c.name, c.node))
                .collect();
            for (name, node) in changes {
                match node {
                    Some(n) => entries.insert(name, n),
                    None => entries.remove(&name),
                };
            }
            let odb = self.repo.odb()?;
            let mut sink = |kind, data: &[u8]| Ok(odb.write(kind, data)?);
            layout::write_entries(&mut sink, kind, entries.into_iter().collect(), &long)?.oid()
        };
        if parent.git_path.is_empty() {
            return Ok(tree);
        }
        let mut b = Updates::default();
        b.upsert(parent.git_path.clone(), tree, FileMode::Tree);
        Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
    }

    fn put(&self, root: Oid, path: &Path, node: Node) -> Result<Oid> {
        if path.is_root() {
            return match node {
                Node::Dir(t) => Ok(t),
                Node::Leaf(_) => Err(StoreError::Invalid(
                    "the root value must be a collection".into(),
                )),
            };
        }
        let (parent, name) = self.parent_of(root, path)?;
        self.put_entry(root, &parent, name, node, path)
    }

    /// The parent's number of entries: from the marker of a split collection; for a plain map
    /// or set, its tree's entries but the marker (no listing on every save; entries valfs
    /// would skip only make a rewrite come one entry early); a plain sequence is listed, since
    /// its indices must be exact.
    fn count(&self, parent: &Parent) -> Result<usize> {
        match parent.marker.split {
            Some(n) => Ok(n),
            None if parent.kind.is_sequence() => self.entry_count(parent.tree),
            None => {
                let tree = self.repo.find_tree(parent.tree)?;
                Ok(tree.len() - usize::from(tree.get_name(MARKER).is_some()))
            }
        }
    }

    fn put_entry(
        &self,
        root: Oid,
        parent: &Parent,
        name: &str,
        node: Node,
        path: &Path,
    ) -> Result<Oid> {
        let count = self.count(parent)?;
        let exists = |name: &str| -> Result<bool> {
            Ok(self.lookup(parent.tree, parent.kind, name)?.is_some())
        };
        match parent.kind {
            CollKind::Vector | CollKind::List => {
                let idx = parse_index(name)
                    .ok_or_else(|| StoreError::InvalidName(format!("{path}: not an index")))?;
                if idx > count {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: index past the end"
                    )));
                }
                let count = count.max(idx + 1);
                self.change(
                    root,
                    parent,
                    vec![(idx.to_string(), Some(node))],
                    count,
                    None,
                )
            }
            CollKind::Map => {
                let git_name = self.git_name(parent.kind, name)?;
                let new = !exists(name)?;
                if name::is_long_name(&git_name) && new {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: a shortened long name cannot be created"
                    )));
                }
                let count = count + usize::from(new);
                self.change(root, parent, vec![(git_name, Some(node))], count, None)
            }
            CollKind::Set => {
                let member = self.read_value(node)?;
                let member_name = name::key_name(self.format, &member);
                let mut changes = Changes::new();
                let mut count = count;
                if member_name != name && exists(name)? {
                    changes.push((self.git_name(parent.kind, name)?, None));
                    count -= 1;
                }
                if !exists(&member_name)? {
                    count += 1;
                }
                changes.push((member_name, Some(node)));
                self.change(root, parent, changes, count, None)
            }
        }
    }

    fn remove_entry(&self, root: Oid, parent: &Parent, name: &str, path: &Path) -> Result<Oid> {
        let child = self
            .lookup(parent.tree, parent.kind, name)?
            .ok_or_else(|| StoreError::NotFound(path.to_string()))?;
        let count = self.count(parent)?;
        if parent.kind.is_sequence() {
            let entries = self.read_dir(parent.tree)?.entries;
            let idx = parse_index(&child.name).unwrap_or(0);
            let mut changes: Changes = entries
                .iter()
                .enumerate()
                .skip(idx + 1)
                .map(|(i, e)| ((i - 1).to_string(), Some(e.node)))
                .collect();
            changes.push(((entries.len() - 1).to_string(), None));
            return self.change(root, parent, changes, entries.len() - 1, None);
        }
        // The marker keeps the full keys of long names: drop this one too, so the map holds
        // no trace of the key and has the tree any other way to its value gives.
        let long = (parent.kind == CollKind::Map && name::is_long_name(&child.name)).then(|| {
            let mut long = parent.marker.sorted_long_keys();
            long.retain(|(short, _)| *short != child.name);
            long
        });
        self.change(root, parent, vec![(child.name, None)], count - 1, long)
    }

    fn move_entry(&self, root: Oid, from: &Path, to: &Path) -> Result<Oid> {
        let node = self.node_at(root, from)?;
        if from.is_root() || to.is_root() {
            return Err(StoreError::Invalid("cannot move the root".into()));
        }
        let (fp, fname) = self.parent_of(root, from)?;
        let (tp, tname) = self.parent_of(root, to)?;
        if fp.git_path == tp.git_path
            && self.git_name(fp.kind, fname)? == self.git_name(tp.kind, tname)?
        {
            return Ok(root);
        }
        if to.names().starts_with(from.names()) {
            return Err(StoreError::Invalid(format!(
                "cannot move {from} into itself"
            )));
        }
        if from.names().starts_with(to.names()) {
            // The target is an ancestor of the source: replacing it drops the source too.
            return self.put(root, to, node);
        }
        if fp.git_path == tp.git_path && fp.kind.is_sequence() {
            return self.move_in_sequence(root, &fp, fname, tname, to);
        }
        // Put, then remove from the tree the put gave (the source's collection is resolved
        // again: the put may have rewritten it or one of its ancestors).
        let after = self.put_entry(root, &tp, tname, node, to)?;
        self.apply_one(after, &Edit::Remove(from.clone()))
    }

    /// `mv v/i v/j` within one sequence: element i replaces element j, then the gap at i closes.
    fn move_in_sequence(
        &self,
        root: Oid,
        parent: &Parent,
        from: &str,
        to: &str,
        to_path: &Path,
    ) -> Result<Oid> {
        let old: Vec<Node> = self
            .read_dir(parent.tree)?
            .entries
            .into_iter()
            .map(|c| c.node)
            .collect();
        let (Some(i), Some(j)) = (parse_index(from), parse_index(to)) else {
            return Err(StoreError::InvalidName(format!("{to_path}: not an index")));
        };
        let mut new = old.clone();
        match j.cmp(&new.len()) {
            std::cmp::Ordering::Less => new[j] = old[i],
            std::cmp::Ordering::Equal => new.push(old[i]),
            std::cmp::Ordering::Greater => {
                return Err(StoreError::InvalidName(format!(
                    "{to_path}: index past the end"
                )));
            }
        }
        new.remove(i);
        let mut changes = Changes::new();
        for (k, n) in new.iter().enumerate() {
            if old.get(k) != Some(n) {
                changes.push((k.to_string(), Some(*n)));
            }
        }
        for k in new.len()..old.len() {
            changes.push((k.to_string(), None));
        }
        self.change(root, parent, changes, new.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Format, json};

    /// libgit2 refused every edit that put a tree where a blob was or a blob where a tree was:
    /// `valfs set x '[]'` over a scalar, and removing or moving elements of a vector that
    /// holds both scalars and collections.
    #[test]
    fn edits_that_change_an_entry_between_scalar_and_collection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        let v = |t: &str| json::parse(t).expect("test JSON");
        let p = |t: &str| Path::parse(t);
        let start = v(r#"{"s":1,"m":{"a":1},"v":[1,{"b":2},3,[4]]}"#);
        let steps = [
            (
                Edit::Set(p("s"), v("[]")),
                r#"{"s":[],"m":{"a":1},"v":[1,{"b":2},3,[4]]}"#,
            ),
            (
                Edit::Set(p("s"), v("2")),
                r#"{"s":2,"m":{"a":1},"v":[1,{"b":2},3,[4]]}"#,
            ),
            (
                Edit::Set(p("m"), v("null")),
                r#"{"s":2,"m":null,"v":[1,{"b":2},3,[4]]}"#,
            ),
            (
                Edit::Set(p("v/1"), v("5")),
                r#"{"s":2,"m":null,"v":[1,5,3,[4]]}"#,
            ),
            (Edit::Remove(p("v/0")), r#"{"s":2,"m":null,"v":[5,3,[4]]}"#),
            (Edit::Remove(p("v/1")), r#"{"s":2,"m":null,"v":[5,[4]]}"#),
            (
                Edit::Move(p("v/1"), p("v/0")),
                r#"{"s":2,"m":null,"v":[[4]]}"#,
            ),
            (Edit::Move(p("v"), p("s")), r#"{"s":[[4]],"m":null}"#),
            (Edit::Move(p("m"), p("s/0")), r#"{"s":[null]}"#),
        ];
        let mut root = store.write_value(&start).expect("write").oid();
        for (edit, after) in steps {
            root = store
                .apply_to_tree(root, std::slice::from_ref(&edit))
                .unwrap_or_else(|e| panic!("{edit:?}: {e}"));
            let value = store.read_value(Node::Dir(root)).expect("read");
            assert_eq!(value, v(after), "{edit:?}");
            assert_eq!(Node::Dir(root), store.write_value(&value).expect("write"));
        }
    }

    /// A value set below the root could nest deeper than MAX_DEPTH in all: it was committed, and
    /// then reading the whole value (`valfs export`) failed.
    #[test]
    fn setting_a_value_that_nests_too_deep_is_refused() {
        // Writing nests one call per level: more than a test thread's stack in a debug build.
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(too_deep)
            .expect("thread")
            .join()
            .expect("no panic");
    }

    fn too_deep() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        let nested = |levels: usize| {
            let mut v = Value::int(1);
            for _ in 0..levels {
                v = Value::Vector(vec![v]);
            }
            v
        };
        let head = store.head_commit().expect("head");
        let a = Edit::Set(Path::parse("a"), Value::Map(Default::default()));
        let root = store
            .apply_to_tree(store.commit_root(head).expect("root"), &[a])
            .expect("set a");
        // a/b is at depth 2; its deepest leaf at 2 + levels.
        let too_deep = Edit::Set(Path::parse("a/b"), nested(MAX_DEPTH - 1));
        assert!(matches!(
            store.apply_to_tree(root, &[too_deep]),
            Err(StoreError::Codec(CodecError::TooDeep))
        ));
        let deepest = Edit::Set(Path::parse("a/b"), nested(MAX_DEPTH - 2));
        let root = store.apply_to_tree(root, &[deepest]).expect("at the limit");
        store.read_value(Node::Dir(root)).expect("readable");
    }

    /// Removing (or renaming away) a key longer than 255 bytes left its full text in the map's
    /// marker: the key lingered in every later version, and the map's tree differed from the
    /// one any other way to the same value gives.
    #[test]
    fn removing_a_long_key_drops_it_from_the_marker() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        let (long, other) = ("k".repeat(300), "o".repeat(300));
        let value = |keys: &[&str]| {
            Value::Map(
                keys.iter()
                    .map(|k| (Value::string(*k), Value::int(1)))
                    .collect(),
            )
        };
        let start = store
            .write_value(&value(&[&long, &other, "a"]))
            .expect("write");
        let long_path = Path(vec![name::escape(&long)]);
        for (edit, keys) in [
            (Edit::Remove(long_path.clone()), vec![other.as_str(), "a"]),
            (
                Edit::Move(long_path, Path::parse("b")),
                vec![&other, "a", "b"],
            ),
        ] {
            let root = store.apply_to_tree(start.oid(), &[edit]).expect("edit");
            let fresh = store.write_value(&value(&keys)).expect("write");
            assert_eq!(Node::Dir(root), fresh);
            let marker = store.repo().find_tree(root).expect("tree");
            let marker = marker.get_name(MARKER).expect("marker").id();
            let text = String::from_utf8(store.read_blob(marker).expect("blob")).expect("utf8");
            assert!(!text.contains(&long) && text.contains(&other), "{text}");
        }
    }
}
