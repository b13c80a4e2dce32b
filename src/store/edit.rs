//! Edits: each rewrites only the changed entries and their ancestor trees.

use super::layout::{MARKER, Node, marker_text, parse_index};
use super::{Result, Store, StoreError};
use crate::codec::{CodecError, MAX_DEPTH, name};
use crate::value::{CollKind, Path, Value};
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Tree};

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
}

impl Edit {
    /// A short description for commit messages: `set users/0/name`.
    pub fn describe(&self) -> String {
        match self {
            Edit::Set(p, _) | Edit::Put(p, _) => format!("set {p}"),
            Edit::Remove(p) => format!("rm {p}"),
            Edit::Insert(p, _) => format!("insert {p}"),
            Edit::Move(a, b) => format!("mv {a} -> {b}"),
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
fn depth_below(value: &Value) -> usize {
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
    /// Git path of the parent collection ("" for the root).
    git_path: String,
    tree: Oid,
    kind: CollKind,
}

impl Parent {
    fn child_path(&self, git_name: &str) -> String {
        if self.git_path.is_empty() {
            git_name.to_owned()
        } else {
            format!("{}/{git_name}", self.git_path)
        }
    }
}

impl Store {
    /// Applies edits in order to a root tree and returns the new root tree.
    pub fn apply_to_tree(&self, mut root: Oid, edits: &[Edit]) -> Result<Oid> {
        for edit in edits {
            root = self.apply_one(root, edit)?;
        }
        Ok(root)
    }

    fn apply_one(&self, root: Oid, edit: &Edit) -> Result<Oid> {
        match edit {
            Edit::Set(path, value) => {
                if path.is_root() && !value.is_collection() {
                    return Err(StoreError::Invalid(
                        "the root value must be a collection".into(),
                    ));
                }
                // Reading the whole value refuses nodes deeper than MAX_DEPTH: do not store one.
                if path.names().len() + depth_below(value) > MAX_DEPTH {
                    return Err(StoreError::Codec(CodecError::TooDeep));
                }
                let node = self.write_value(value)?;
                self.put(root, path, node)
            }
            Edit::Put(path, node) => self.put(root, path, *node),
            Edit::Remove(path) => {
                let (parent, name) = self.parent_of(root, path)?;
                let mut b = Updates::default();
                self.remove_entry(&mut b, &parent, name, path)?;
                Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
            }
            Edit::Move(from, to) => self.move_entry(root, from, to),
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
                let mut b = Updates::default();
                for (i, e) in entries.iter().enumerate().skip(idx) {
                    b.upsert(
                        parent.child_path(&(i + 1).to_string()),
                        e.node.oid(),
                        e.node.filemode(),
                    );
                }
                b.upsert(
                    parent.child_path(&idx.to_string()),
                    node.oid(),
                    node.filemode(),
                );
                Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
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
            let child = self
                .lookup(tree, kind, seg)?
                .ok_or_else(|| StoreError::NotFound(here()))?;
            let Node::Dir(t) = child.node else {
                return Err(StoreError::NotADirectory(here()));
            };
            git.push(child.name);
            tree = t;
        }
        let kind = self.dir_kind(tree)?;
        Ok((
            Parent {
                git_path: git.join("/"),
                tree,
                kind,
            },
            name,
        ))
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
        let mut b = Updates::default();
        self.put_entry(&mut b, &parent, name, node, path)?;
        Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
    }

    fn seq_len(&self, tree: Oid) -> Result<usize> {
        Ok(self.read_dir(tree)?.entries.len())
    }

    fn put_entry(
        &self,
        b: &mut Updates,
        parent: &Parent,
        name: &str,
        node: Node,
        path: &Path,
    ) -> Result<()> {
        match parent.kind {
            CollKind::Vector | CollKind::List => {
                let idx = parse_index(name)
                    .ok_or_else(|| StoreError::InvalidName(format!("{path}: not an index")))?;
                if idx > self.seq_len(parent.tree)? {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: index past the end"
                    )));
                }
                b.upsert(
                    parent.child_path(&idx.to_string()),
                    node.oid(),
                    node.filemode(),
                );
            }
            CollKind::Map => {
                let git_name = self.git_name(parent.kind, name)?;
                if name::is_long_name(&git_name)
                    && self.lookup(parent.tree, parent.kind, name)?.is_none()
                {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: a shortened long name cannot be created"
                    )));
                }
                b.upsert(parent.child_path(&git_name), node.oid(), node.filemode());
            }
            CollKind::Set => {
                let member = self.read_value(node)?;
                let member_name = name::key_name(self.format, &member);
                if member_name != name && self.lookup(parent.tree, parent.kind, name)?.is_some() {
                    b.remove(parent.child_path(name));
                }
                b.upsert(parent.child_path(&member_name), node.oid(), node.filemode());
            }
        }
        Ok(())
    }

    fn remove_entry(
        &self,
        b: &mut Updates,
        parent: &Parent,
        name: &str,
        path: &Path,
    ) -> Result<()> {
        let child = self
            .lookup(parent.tree, parent.kind, name)?
            .ok_or_else(|| StoreError::NotFound(path.to_string()))?;
        if parent.kind.is_sequence() {
            let entries = self.read_dir(parent.tree)?.entries;
            let idx = parse_index(&child.name).unwrap_or(0);
            for (i, e) in entries.iter().enumerate().skip(idx + 1) {
                b.upsert(
                    parent.child_path(&(i - 1).to_string()),
                    e.node.oid(),
                    e.node.filemode(),
                );
            }
            b.remove(parent.child_path(&(entries.len() - 1).to_string()));
        } else {
            b.remove(parent.child_path(&child.name));
            if parent.kind == CollKind::Map && name::is_long_name(&child.name) {
                // The marker keeps the full keys of long names: drop this one too, so the map
                // holds no trace of the key and has the tree any other way to its value gives.
                let mut long: Vec<(String, String)> = self
                    .read_dir(parent.tree)?
                    .long_keys
                    .into_iter()
                    .filter(|(short, _)| *short != child.name)
                    .collect();
                long.sort();
                let marker = self.write_blob(marker_text(parent.kind, &long).as_bytes())?;
                b.upsert(parent.child_path(MARKER), marker, FileMode::Blob);
            }
        }
        Ok(())
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
        if fp.kind.is_sequence() {
            let after = self.put(root, to, node)?;
            return self.apply_one(after, &Edit::Remove(from.clone()));
        }
        let mut b = Updates::default();
        self.put_entry(&mut b, &tp, tname, node, to)?;
        self.remove_entry(&mut b, &fp, fname, from)?;
        Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
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
        let mut b = Updates::default();
        for (k, n) in new.iter().enumerate() {
            if old.get(k) != Some(n) {
                b.upsert(parent.child_path(&k.to_string()), n.oid(), n.filemode());
            }
        }
        for k in new.len()..old.len() {
            b.remove(parent.child_path(&k.to_string()));
        }
        Ok(b.create_updated(&self.repo, &self.repo.find_tree(root)?)?)
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
