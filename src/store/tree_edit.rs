//! The batch tree editor: a batch of edits is applied to an in-memory overlay of the
//! collections it touches, and each changed tree is written once, bottom-up, at the end. A
//! coalesced `cp -r` or a save of many files used to rewrite a folder and all its ancestors once
//! per edit.
//!
//! Each edit takes the steps of [`super::edit`] (which stay the reference: same reads, same
//! checks, same errors in the same order), on collections held open: the tree the batch found,
//! the entries changed since (by their names in git), the entry count, and the state of the
//! marker. At the end each open collection is written the way those steps leave it, so the root
//! is the very tree they give edit by edit:
//! - when the number of bucket levels never changed, the batch's changes go into the trees the
//!   batch found, an emptied bucket dropped, as libgit2's tree updates do, and the marker is
//!   written anew if its state changed on the way;
//! - when it changed at some edit, the collection was written anew from its entries then, and
//!   every later update kept that tree canonical: it is written from its final entries.
//!
//! The overlay reads a collection as valfs writes it. A tree valfs would not have written
//! (padded or missing indices, symlinks, names that are not UTF-8) is read by the edit-by-edit
//! steps in ways the overlay does not mirror: an edit that reaches one makes the batch write
//! what it holds and take that edit the edit-by-edit way. Such a tree is found while an edit
//! resolves its paths, before it changes anything, but for a move whose source is reached
//! through what it put (`mv v/1/x v/01`): then the whole batch goes edit by edit.

use super::edit::Edit;
use super::layout::{self, MARKER, Node, parse_index};
use super::{Result, Store, StoreError};
use crate::codec::name;
use crate::value::{CollKind, Path, Value};
use git2::Oid;
use std::collections::BTreeMap;

#[cfg(test)]
mod tests;
mod write;

const MODE_TREE: i32 = 0o040000;
const MODE_BLOB: i32 = 0o100644;

impl Store {
    /// Applies edits in order to a root tree and returns the new root tree: the tree applying
    /// them one by one gives, with each changed tree written once. The root's conflict record
    /// is set aside meanwhile, and edited by the `Resolve` edits only (conflicts.rs:
    /// `Store::edit_root`).
    pub fn apply_to_tree(&self, root: Oid, edits: &[Edit]) -> Result<Oid> {
        self.edit_root(root, edits, |value| self.apply_to_value(value, edits))
    }

    /// [`Store::apply_to_tree`] on a root without its conflict record.
    fn apply_to_value(&self, root: Oid, edits: &[Edit]) -> Result<Oid> {
        let mut batch = Batch::new(self, root);
        for edit in edits {
            match batch.apply(edit) {
                Ok(()) => {}
                Err(Stop::Failed(e)) => return Err(e),
                Err(Stop::Foreign) if !batch.changed => {
                    let root = self.apply_one(batch.finish()?, edit)?;
                    batch = Batch::new(self, root);
                }
                // Found once the edit had changed the overlay (a move whose source is reached
                // through what it put): the whole batch edit by edit.
                Err(Stop::Foreign) => {
                    return edits
                        .iter()
                        .try_fold(root, |root, e| self.apply_one(root, e));
                }
            }
        }
        batch.finish()
    }
}

/// An entry of a collection in the batch: a stored node, or a collection held open.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Entry {
    Node(Node),
    Open(usize),
}

/// A collection the batch touches.
struct Coll {
    /// Its tree when the batch opened it.
    base: Oid,
    kind: CollKind,
    /// Where `base` was an entry (parent, git name) when the batch opened it: held there and
    /// unchanged, the entry needs no update.
    home: Option<(usize, String)>,
    /// The entries changed since `base`, by git name: `None` removed.
    slots: BTreeMap<String, Option<Entry>>,
    /// The number of entries, and that of `base`.
    len: usize,
    base_len: usize,
    /// The marker's state: the entry count of a split collection, the full keys of long names.
    split: Option<usize>,
    long: Vec<(String, String)>,
    /// The marker's state changed (its blob is written anew).
    marker_changed: bool,
    /// The number of bucket levels changed at some edit (the tree is written from its entries).
    rebuilt: bool,
    /// A sequence's elements in `base`, read when first needed.
    base_items: Option<Vec<Node>>,
}

impl Coll {
    fn levels(&self) -> usize {
        self.split.map_or(0, |n| layout::levels(self.kind, n))
    }
}

/// Why an edit was not applied to the overlay.
enum Stop {
    Failed(StoreError),
    /// The edit reaches a tree valfs would not have written.
    Foreign,
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<git2::Error> for Stop {
    fn from(e: git2::Error) -> Stop {
        Stop::Failed(e.into())
    }
}

type Step<T> = std::result::Result<T, Stop>;

/// A change to an open collection's entries: git names, `None` removes.
type Changes = Vec<(String, Option<Entry>)>;

/// The overlay: the root, and the collections held open (by index; the root's is reachable
/// from `root`, the others from their parents' slots).
struct Batch<'s> {
    store: &'s Store,
    root: Entry,
    colls: Vec<Coll>,
    /// The edit being applied has changed the overlay.
    changed: bool,
}

impl<'s> Batch<'s> {
    fn new(store: &'s Store, root: Oid) -> Batch<'s> {
        Batch {
            store,
            root: Entry::Node(Node::Dir(root)),
            colls: Vec::new(),
            changed: false,
        }
    }

    /// Writes the changed trees and returns the root.
    fn finish(self) -> Result<Oid> {
        Ok(self.node(self.root)?.oid())
    }

    fn apply(&mut self, edit: &Edit) -> Step<()> {
        self.changed = false;
        match edit {
            Edit::Set(path, value) => {
                let node = self.store.write_set_value(path, value)?;
                self.put(path, Entry::Node(node))
            }
            Edit::Put(path, node) => self.put(path, Entry::Node(*node)),
            Edit::Remove(path) => {
                let (parent, name) = self.parent_of(path)?;
                self.remove_entry(parent, name, path)
            }
            Edit::Move(from, to) => self.move_entry(from, to),
            Edit::Insert(path, value) => self.insert(path, value),
            // The conflict record is edited around the value: Store::edit_root.
            Edit::Resolve(_) => Ok(()),
        }
    }

    // ----- reading through the overlay -----

    /// Opens the collection whose tree is `tree`, found at `home`.
    fn open(&mut self, tree: Oid, home: Option<(usize, String)>) -> Step<usize> {
        let t = self.store.repo.find_tree(tree)?;
        let marker = self.store.marker(&t)?;
        let len = match marker.split {
            Some(n) => n,
            None if as_valfs_writes(&t, marker.kind) => {
                t.len() - usize::from(t.get_name(MARKER).is_some())
            }
            None => return Err(Stop::Foreign),
        };
        self.colls.push(Coll {
            base: tree,
            kind: marker.kind,
            home,
            slots: BTreeMap::new(),
            len,
            base_len: len,
            long: marker.sorted_long_keys(),
            split: marker.split,
            marker_changed: false,
            rebuilt: false,
            base_items: None,
        });
        Ok(self.colls.len() - 1)
    }

    fn open_root(&mut self) -> Step<usize> {
        match self.root {
            Entry::Open(id) => Ok(id),
            Entry::Node(node) => {
                let id = self.open(node.oid(), None)?;
                self.root = Entry::Open(id);
                Ok(id)
            }
        }
    }

    /// The entry of an open collection that a name (as in the mount) stands for, with its
    /// git name.
    fn lookup(&self, id: usize, name: &str) -> Result<Option<(String, Entry)>> {
        let c = &self.colls[id];
        let git_name = self.store.git_name(c.kind, name)?;
        if let Some(slot) = c.slots.get(&git_name) {
            return Ok(slot.map(|e| (git_name, e)));
        }
        Ok(self
            .store
            .lookup(c.base, c.kind, name)?
            .map(|child| (child.name, Entry::Node(child.node))))
    }

    fn exists(&self, id: usize, name: &str) -> Result<bool> {
        Ok(self.lookup(id, name)?.is_some())
    }

    /// Resolves (and opens) the parent collection of `path`.
    fn parent_of<'p>(&mut self, path: &'p Path) -> Step<(usize, &'p str)> {
        let (parent_path, name) = path
            .parent()
            .ok_or_else(|| StoreError::Invalid("the root has no name".into()))?;
        let mut id = self.open_root()?;
        for (i, seg) in parent_path.names().iter().enumerate() {
            let here = || Path(path.names()[..=i].to_vec()).to_string();
            let (git_name, entry) = self
                .lookup(id, seg)?
                .ok_or_else(|| StoreError::NotFound(here()))?;
            id = match entry {
                Entry::Open(child) => child,
                Entry::Node(Node::Leaf(_)) => return Err(StoreError::NotADirectory(here()).into()),
                Entry::Node(Node::Dir(tree)) => {
                    // Found in the tree the batch found, or set by an edit of the batch.
                    let home = (!self.colls[id].slots.contains_key(&git_name))
                        .then(|| (id, git_name.clone()));
                    let child = self.open(tree, home)?;
                    self.colls[id]
                        .slots
                        .insert(git_name, Some(Entry::Open(child)));
                    child
                }
            };
        }
        Ok((id, name))
    }

    /// The entry at `path` (as [`Store::node_at`] finds it), without opening anything.
    fn entry_at(&self, path: &Path) -> Result<Entry> {
        let mut entry = self.root;
        for (i, seg) in path.names().iter().enumerate() {
            let here = || StoreError::NotFound(Path(path.names()[..=i].to_vec()).to_string());
            let found = match entry {
                Entry::Node(Node::Leaf(_)) => {
                    return Err(StoreError::NotADirectory(
                        Path(path.names()[..i].to_vec()).to_string(),
                    ));
                }
                Entry::Node(Node::Dir(tree)) => {
                    let kind = self.store.dir_kind(tree)?;
                    let child = self.store.lookup(tree, kind, seg).map_err(|_| here())?;
                    child.map(|c| Entry::Node(c.node))
                }
                Entry::Open(id) => self.lookup(id, seg).map_err(|_| here())?.map(|(_, e)| e),
            };
            entry = found.ok_or_else(here)?;
        }
        Ok(entry)
    }

    /// A sequence's elements, in order.
    fn items(&mut self, id: usize) -> Step<Vec<Entry>> {
        let c = &self.colls[id];
        if c.base_items.is_none() {
            let base: Vec<Node> = (self.store.read_dir(c.base)?.entries.into_iter())
                .map(|child| child.node)
                .collect();
            // A split sequence whose buckets do not hold the count its marker gives.
            if base.len() != c.base_len {
                return Err(Stop::Foreign);
            }
            self.colls[id].base_items = Some(base);
        }
        let c = &self.colls[id];
        let base = c.base_items.as_deref().unwrap_or_default();
        let mut items = Vec::with_capacity(c.len);
        for i in 0..c.len {
            let entry = match c.slots.get(&i.to_string()) {
                Some(slot) => *slot,
                None => base.get(i).copied().map(Entry::Node),
            };
            items.push(entry.ok_or_else(|| {
                StoreError::Corrupt(format!("tree {}: element {i} is missing", c.base))
            })?);
        }
        Ok(items)
    }

    /// A stored node for an entry: an open collection is written.
    fn node(&self, entry: Entry) -> Result<Node> {
        match entry {
            Entry::Node(n) => Ok(n),
            Entry::Open(id) => self.write(id),
        }
    }

    // ----- the edits, as in `edit` -----

    fn put(&mut self, path: &Path, entry: Entry) -> Step<()> {
        if path.is_root() {
            if let Entry::Node(Node::Leaf(_)) = entry {
                let e = StoreError::Invalid("the root value must be a collection".into());
                return Err(e.into());
            }
            self.root = entry;
            self.changed = true;
            return Ok(());
        }
        let (parent, name) = self.parent_of(path)?;
        self.put_entry(parent, name, entry, path)
    }

    fn put_entry(&mut self, id: usize, name: &str, entry: Entry, path: &Path) -> Step<()> {
        let (kind, count) = (self.colls[id].kind, self.colls[id].len);
        match kind {
            CollKind::Vector | CollKind::List => {
                let idx = parse_index(name)
                    .ok_or_else(|| StoreError::InvalidName(format!("{path}: not an index")))?;
                if idx > count {
                    return Err(
                        StoreError::InvalidName(format!("{path}: index past the end")).into(),
                    );
                }
                let count = count.max(idx + 1);
                self.change(id, vec![(idx.to_string(), Some(entry))], count, None);
            }
            CollKind::Map => {
                let git_name = self.store.git_name(kind, name)?;
                let new = !self.exists(id, name)?;
                if name::is_long_name(&git_name) && new {
                    return Err(StoreError::InvalidName(format!(
                        "{path}: a shortened long name cannot be created"
                    ))
                    .into());
                }
                let count = count + usize::from(new);
                self.change(id, vec![(git_name, Some(entry))], count, None);
            }
            CollKind::Set => {
                let node = self.node(entry)?;
                let member = self.store.read_value(node)?;
                let member_name = name::key_name(self.store.format, &member);
                let mut changes = Changes::new();
                let mut count = count;
                if member_name != name && self.exists(id, name)? {
                    changes.push((self.store.git_name(kind, name)?, None));
                    count -= 1;
                }
                if !self.exists(id, &member_name)? {
                    count += 1;
                }
                changes.push((member_name, Some(Entry::Node(node))));
                self.change(id, changes, count, None);
            }
        }
        Ok(())
    }

    fn remove_entry(&mut self, id: usize, name: &str, path: &Path) -> Step<()> {
        let (git_name, _) = self
            .lookup(id, name)?
            .ok_or_else(|| StoreError::NotFound(path.to_string()))?;
        let c = &self.colls[id];
        let (kind, count) = (c.kind, c.len);
        if kind.is_sequence() {
            let items = self.items(id)?;
            let idx = parse_index(&git_name).unwrap_or(0);
            let mut changes: Changes = (items.iter().enumerate().skip(idx + 1))
                .map(|(i, e)| ((i - 1).to_string(), Some(*e)))
                .collect();
            changes.push(((items.len() - 1).to_string(), None));
            self.change(id, changes, items.len() - 1, None);
            return Ok(());
        }
        // As in `edit`: the marker forgets the full key of a long name removed.
        let long = (kind == CollKind::Map && name::is_long_name(&git_name)).then(|| {
            let mut long = c.long.clone();
            long.retain(|(short, _)| *short != git_name);
            long
        });
        self.change(id, vec![(git_name, None)], count - 1, long);
        Ok(())
    }

    fn insert(&mut self, path: &Path, value: &Value) -> Step<()> {
        let (id, name) = self.parent_of(path)?;
        if !self.colls[id].kind.is_sequence() {
            return Err(
                StoreError::Invalid(format!("{path}: insert needs a vector or list")).into(),
            );
        }
        let idx = parse_index(name)
            .ok_or_else(|| StoreError::InvalidName(format!("{path}: not an index")))?;
        let items = self.items(id)?;
        if idx > items.len() {
            return Err(StoreError::InvalidName(format!("{path}: index past the end")).into());
        }
        let node = self.store.write_value(value)?;
        let mut changes: Changes = (items.iter().enumerate().skip(idx))
            .map(|(i, e)| ((i + 1).to_string(), Some(*e)))
            .collect();
        changes.push((idx.to_string(), Some(Entry::Node(node))));
        self.change(id, changes, items.len() + 1, None);
        Ok(())
    }

    fn move_entry(&mut self, from: &Path, to: &Path) -> Step<()> {
        let entry = self.entry_at(from)?;
        if from.is_root() || to.is_root() {
            return Err(StoreError::Invalid("cannot move the root".into()).into());
        }
        let (fp, fname) = self.parent_of(from)?;
        let (tp, tname) = self.parent_of(to)?;
        let (fkind, tkind) = (self.colls[fp].kind, self.colls[tp].kind);
        if fp == tp && self.store.git_name(fkind, fname)? == self.store.git_name(tkind, tname)? {
            return Ok(());
        }
        if to.names().starts_with(from.names()) {
            return Err(StoreError::Invalid(format!("cannot move {from} into itself")).into());
        }
        if from.names().starts_with(to.names()) {
            // The target is an ancestor of the source: replacing it drops the source too.
            return self.put(to, entry);
        }
        if fp == tp && fkind.is_sequence() {
            return self.move_in_sequence(fp, fname, tname, to);
        }
        // Put, then remove the source, resolved again (the put may have replaced one of its
        // ancestors: `mv v/1/x v/01`).
        self.put_entry(tp, tname, entry, to)?;
        let (fp, fname) = self.parent_of(from)?;
        self.remove_entry(fp, fname, from)
    }

    /// `mv v/i v/j` within one sequence: element i replaces element j, then the gap at i closes.
    fn move_in_sequence(&mut self, id: usize, from: &str, to: &str, to_path: &Path) -> Step<()> {
        let old = self.items(id)?;
        let (Some(i), Some(j)) = (parse_index(from), parse_index(to)) else {
            return Err(StoreError::InvalidName(format!("{to_path}: not an index")).into());
        };
        let mut new = old.clone();
        match j.cmp(&new.len()) {
            std::cmp::Ordering::Less => new[j] = old[i],
            std::cmp::Ordering::Equal => new.push(old[i]),
            std::cmp::Ordering::Greater => {
                return Err(
                    StoreError::InvalidName(format!("{to_path}: index past the end")).into(),
                );
            }
        }
        new.remove(i);
        let mut changes = Changes::new();
        for (k, e) in new.iter().enumerate() {
            if old.get(k) != Some(e) {
                changes.push((k.to_string(), Some(*e)));
            }
        }
        for k in new.len()..old.len() {
            changes.push((k.to_string(), None));
        }
        self.change(id, changes, new.len(), None);
        Ok(())
    }

    /// Records `changes` to an open collection, which then holds `count` entries; `long_keys`
    /// replaces the marker's full keys of long names. The marker's state and the layout follow
    /// as `Store::change` leaves them.
    fn change(
        &mut self,
        id: usize,
        changes: Changes,
        count: usize,
        long_keys: Option<Vec<(String, String)>>,
    ) {
        self.changed = true;
        let c = &mut self.colls[id];
        let levels = layout::levels(c.kind, count);
        let split = (levels > 0).then_some(count);
        if levels != c.levels() {
            c.rebuilt = true;
        } else if split != c.split || long_keys.as_ref().is_some_and(|l| *l != c.long) {
            c.marker_changed = true;
        }
        c.split = split;
        if let Some(long) = long_keys {
            c.long = long;
        }
        c.len = count;
        c.slots.extend(changes);
    }
}

/// Whether a collection's tree (one not split into buckets) is one valfs writes, read by the
/// overlay exactly as the edit-by-edit steps read it: names in UTF-8, no bucket names, only
/// scalar files and collection trees, and a sequence's indices unpadded and without gaps.
fn as_valfs_writes(tree: &git2::Tree<'_>, kind: CollKind) -> bool {
    let count = tree.len() - usize::from(tree.get_name(MARKER).is_some());
    let mut seen = vec![false; if kind.is_sequence() { count } else { 0 }];
    for e in tree.iter() {
        let Ok(name) = std::str::from_utf8(e.name_bytes()) else {
            return false;
        };
        if name == MARKER {
            continue;
        }
        // Bucket names ("%%" and two hex digits) are never keys: escaping writes '%' as %25.
        if name.starts_with("%%") || !matches!(e.filemode(), MODE_TREE | MODE_BLOB) {
            return false;
        }
        if kind.is_sequence() {
            match parse_index(name) {
                Some(i) if i < count && !seen[i] && i.to_string() == name => seen[i] = true,
                _ => return false,
            }
        }
    }
    true
}
