//! Conflicts as data: the record a merge leaves in the commit's root tree.
//!
//! A merge that meets a conflict keeps our side's version in the value and records the
//! conflict under the root's reserved entry `.valfs-conflicts` (docs/FORMAT.md, "Conflicts"):
//! one subtree per conflicted path holding the path, the kind of conflict, and the base, ours
//! and theirs nodes themselves, so that they stay reachable and travel with the branch to every
//! other store. Keys never make names starting with `.valfs` (they are escaped), so no value
//! reader sees these entries; edits set them aside while the value changes
//! (`Store::edit_root`), and merges merge them as sets of paths.

use super::layout::{MARKER, Node, is_reserved, parse_index, tree_bytes};
use super::{Edit, Result, Store};
use crate::codec::name;
use crate::value::Path;
use git2::{ObjectType, Oid};
use std::collections::BTreeMap;

/// The root's entry that holds the open conflicts.
pub const CONFLICTS: &str = ".valfs-conflicts";

/// What the two sides did to a conflicted path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConflictKind {
    /// Two different edits of one scalar (or of one sequence neither side had before).
    BothEdited,
    /// One side edited what the other removed.
    EditRemoved,
    /// One side changed the type (scalar, map, vector, list, set) and the other edited.
    TypeChanged,
    /// Overlapping insertions, removals or replacements in one vector or list.
    Splices,
}

impl ConflictKind {
    /// The word in the record and in `valfs conflicts`.
    pub fn name(self) -> &'static str {
        match self {
            ConflictKind::BothEdited => "edit/edit",
            ConflictKind::EditRemoved => "edit/remove",
            ConflictKind::TypeChanged => "type/edit",
            ConflictKind::Splices => "splices",
        }
    }

    pub fn from_name(name: &str) -> Option<ConflictKind> {
        Some(match name {
            "edit/edit" => ConflictKind::BothEdited,
            "edit/remove" => ConflictKind::EditRemoved,
            "type/edit" => ConflictKind::TypeChanged,
            "splices" => ConflictKind::Splices,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One conflicted path: the value holds `ours` there until it is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Where, as [`Edit`] paths name it (git names: escaped keys, unpadded indices).
    pub path: Path,
    pub kind: ConflictKind,
    /// `None` where that side has nothing at the path (never had, or removed it).
    pub base: Option<Node>,
    pub ours: Option<Node>,
    pub theirs: Option<Node>,
}

/// The name of a path's record in the conflict set: the path's text, escaped as a key.
fn record_name(path: &Path) -> String {
    name::escape(&path.to_string())
}

/// A root tree's reserved entries (names starting with `.valfs`, the marker aside) by name.
pub(crate) type Reserved = BTreeMap<String, Node>;

/// A root tree taken apart: the value's own tree and the root's reserved entries.
pub(crate) struct Root {
    pub value: Oid,
    pub reserved: Reserved,
}

/// Takes the reserved entries out of a root tree (no object is written when it has none).
pub(crate) fn split(store: &Store, root: Oid) -> Result<Root> {
    let tree = store.repo.find_tree(root)?;
    let mut reserved = Reserved::new();
    for e in tree.iter() {
        let Ok(name) = std::str::from_utf8(e.name_bytes()) else {
            continue;
        };
        if !is_reserved(name) || name == MARKER {
            continue;
        }
        let node = match e.kind() {
            Some(ObjectType::Tree) => Node::Dir(e.id()),
            _ => Node::Leaf(e.id()),
        };
        reserved.insert(name.to_owned(), node);
    }
    if reserved.is_empty() {
        return Ok(Root {
            value: root,
            reserved,
        });
    }
    let mut b = store.repo.treebuilder(Some(&tree))?;
    for name in reserved.keys() {
        b.remove(name)?;
    }
    Ok(Root {
        value: b.write()?,
        reserved,
    })
}

/// Puts reserved entries into a value's root tree (which has none of its own).
pub(crate) fn join(store: &Store, value: Oid, reserved: &Reserved) -> Result<Oid> {
    if reserved.is_empty() {
        return Ok(value);
    }
    let tree = store.repo.find_tree(value)?;
    let mut b = store.repo.treebuilder(Some(&tree))?;
    for (name, node) in reserved {
        b.insert(name, node.oid(), i32::from(node.filemode()))?;
    }
    Ok(b.write()?)
}

/// `tree` with the reserved entries of `from` in place of its own: a value put back whole
/// (a revert) neither brings back the conflicts of its time nor drops the open ones.
pub(crate) fn keep_reserved(store: &Store, tree: Oid, from: Oid) -> Result<Oid> {
    join(
        store,
        split(store, tree)?.value,
        &split(store, from)?.reserved,
    )
}

/// The records of a conflict set by name.
type Records = BTreeMap<String, Oid>;

fn records(store: &Store, set: Option<Node>) -> Result<Records> {
    let Some(Node::Dir(set)) = set else {
        return Ok(Records::new());
    };
    let tree = store.repo.find_tree(set)?;
    Ok(tree
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| Some((std::str::from_utf8(e.name_bytes()).ok()?.to_owned(), e.id())))
        .collect())
}

/// The conflict set's tree, `None` when it is empty.
fn write_records(store: &Store, records: &Records) -> Result<Option<Node>> {
    if records.is_empty() {
        return Ok(None);
    }
    let mut entries: Vec<(String, Node)> = records
        .iter()
        .map(|(n, t)| (n.clone(), Node::Dir(*t)))
        .collect();
    let odb = store.repo.odb()?;
    Ok(Some(Node::Dir(
        odb.write(ObjectType::Tree, &tree_bytes(&mut entries))?,
    )))
}

fn write_record(store: &Store, c: &Conflict) -> Result<Oid> {
    let odb = store.repo.odb()?;
    let blob = |text: String| -> Result<Node> {
        Ok(Node::Leaf(odb.write(ObjectType::Blob, text.as_bytes())?))
    };
    let mut entries = vec![
        ("path".to_owned(), blob(format!("{}\n", c.path))?),
        ("kind".to_owned(), blob(format!("{}\n", c.kind))?),
    ];
    for (name, node) in [("base", c.base), ("ours", c.ours), ("theirs", c.theirs)] {
        if let Some(node) = node {
            entries.push((name.to_owned(), node));
        }
    }
    Ok(odb.write(ObjectType::Tree, &tree_bytes(&mut entries))?)
}

/// Reads a record; `None` (with a warning) for one valfs cannot read.
fn read_record(store: &Store, record: Oid) -> Result<Option<Conflict>> {
    let tree = store.repo.find_tree(record)?;
    let text = |name: &str| -> Result<Option<String>> {
        let Some(e) = tree.get_name(name) else {
            return Ok(None);
        };
        let bytes = store.read_blob(e.id())?;
        Ok(String::from_utf8(bytes)
            .ok()
            .map(|t| t.trim_end_matches('\n').to_owned()))
    };
    let node = |name: &str| {
        tree.get_name(name).map(|e| match e.kind() {
            Some(ObjectType::Tree) => Node::Dir(e.id()),
            _ => Node::Leaf(e.id()),
        })
    };
    let (Some(path), Some(kind)) = (text("path")?, text("kind")?) else {
        log::warn!("conflict record {record}: no path or kind, skipped");
        return Ok(None);
    };
    let Some(kind) = ConflictKind::from_name(&kind) else {
        log::warn!("conflict record {record}: unknown kind {kind:?}, skipped");
        return Ok(None);
    };
    Ok(Some(Conflict {
        path: Path::parse(&path),
        kind,
        base: node("base"),
        ours: node("ours"),
        theirs: node("theirs"),
    }))
}

/// Paths in order: names compared as indices where both are, else as text.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    for (x, y) in a.names().iter().zip(b.names()) {
        let ord = match (parse_index(x), parse_index(y)) {
            (Some(i), Some(j)) => i.cmp(&j).then_with(|| x.cmp(y)),
            _ => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    a.names().len().cmp(&b.names().len())
}

/// Whether a path as typed (indices maybe padded: `v/03`) names a recorded path.
fn same_path(typed: &Path, recorded: &Path) -> bool {
    typed.names().len() == recorded.names().len()
        && typed
            .names()
            .iter()
            .zip(recorded.names())
            .all(|(t, r)| t == r || (parse_index(t).is_some() && parse_index(t) == parse_index(r)))
}

/// Merges the reserved entries of three roots, and records `new` conflicts (each replacing
/// the record of its path). The conflict set merges path by path: a record one side added,
/// replaced or removed (resolved) and the other left alone takes that side's change; when
/// both changed one path's record, a record beats no record and ours beats theirs. Other
/// reserved entries take ours unless only theirs changed.
pub(crate) fn merge_reserved(
    store: &Store,
    base: &Reserved,
    ours: &Reserved,
    theirs: &Reserved,
    new: &[Conflict],
) -> Result<Reserved> {
    let mut out = Reserved::new();
    let names = base.keys().chain(ours.keys()).chain(theirs.keys());
    let names: std::collections::BTreeSet<&String> = names.collect();
    for name in names {
        let (b, o, t) = (base.get(name), ours.get(name), theirs.get(name));
        let merged = if name == CONFLICTS {
            merge_sets(store, b, o, t)?
        } else if t == b {
            o.copied()
        } else if o == b {
            t.copied()
        } else {
            o.copied()
        };
        if let Some(node) = merged {
            out.insert(name.clone(), node);
        }
    }
    if !new.is_empty() {
        let mut set = records(store, out.get(CONFLICTS).copied())?;
        for c in new {
            set.insert(record_name(&c.path), write_record(store, c)?);
        }
        if let Some(node) = write_records(store, &set)? {
            out.insert(CONFLICTS.to_owned(), node);
        }
    }
    Ok(out)
}

fn merge_sets(
    store: &Store,
    base: Option<&Node>,
    ours: Option<&Node>,
    theirs: Option<&Node>,
) -> Result<Option<Node>> {
    if ours == theirs || theirs == base {
        return Ok(ours.copied());
    }
    if ours == base {
        return Ok(theirs.copied());
    }
    let (b, o, t) = (
        records(store, base.copied())?,
        records(store, ours.copied())?,
        records(store, theirs.copied())?,
    );
    let mut out = Records::new();
    let names: std::collections::BTreeSet<&String> =
        b.keys().chain(o.keys()).chain(t.keys()).collect();
    for name in names {
        let (rb, ro, rt) = (b.get(name), o.get(name), t.get(name));
        let kept = if ro == rt || rt == rb {
            ro
        } else if ro == rb {
            rt
        } else {
            ro.or(rt)
        };
        if let Some(r) = kept {
            out.insert(name.clone(), *r);
        }
    }
    write_records(store, &out)
}

impl Store {
    /// The open conflicts of the branch head, in path order.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.conflicts_in(self.commit_root(self.head_commit()?)?)
    }

    /// The open conflicts recorded in a root tree (a commit's, or a session's view), in path
    /// order.
    pub fn conflicts_in(&self, root: Oid) -> Result<Vec<Conflict>> {
        let tree = self.repo.find_tree(root)?;
        let set = tree
            .get_name(CONFLICTS)
            .and_then(|e| (e.kind() == Some(ObjectType::Tree)).then(|| Node::Dir(e.id())));
        let mut out = Vec::new();
        for record in records(self, set)?.into_values() {
            out.extend(read_record(self, record)?);
        }
        out.sort_by(|a, b| path_order(&a.path, &b.path));
        Ok(out)
    }

    /// Resolves conflicts (removes their records) as one commit on the branch; `None` if
    /// none of them was open. A path may be typed as in the mount (`v/03` for `v/3`).
    pub fn resolve_conflicts(&self, paths: &[Path]) -> Result<Option<Oid>> {
        if paths.is_empty() {
            return Ok(None);
        }
        let edits: Vec<Edit> = paths.iter().cloned().map(Edit::Resolve).collect();
        let names: Vec<String> = paths.iter().map(Path::to_string).collect();
        self.apply(&edits, &format!("resolve {}", names.join(" ")))
    }

    /// Applies `edit_value` to the value's own tree under `root`, with the root's reserved
    /// entries set aside (so edits never see them), then puts them back, less the conflict
    /// records that `edits` resolve ([`Edit::Resolve`]). A value put whole at the root brings
    /// no reserved entries of its own. Writes nothing more when `root` has none and nothing
    /// is resolved.
    pub(crate) fn edit_root(
        &self,
        root: Oid,
        edits: &[Edit],
        edit_value: impl FnOnce(Oid) -> Result<Oid>,
    ) -> Result<Oid> {
        let Root {
            value,
            mut reserved,
        } = split(self, root)?;
        let edited = edit_value(value)?;
        let edited = if edited == value {
            edited
        } else {
            split(self, edited)?.value
        };
        let resolved: Vec<&Path> = edits
            .iter()
            .filter_map(|e| match e {
                Edit::Resolve(p) => Some(p),
                _ => None,
            })
            .collect();
        if !resolved.is_empty()
            && let Some(set) = reserved.get(CONFLICTS).copied()
        {
            let mut set = records(self, Some(set))?;
            for path in resolved {
                if set.remove(&record_name(path)).is_some() {
                    continue;
                }
                // Typed otherwise (a padded index): find its record by the path it holds.
                let mut found = None;
                for (name, record) in &set {
                    if read_record(self, *record)?.is_some_and(|c| same_path(path, &c.path)) {
                        found = Some(name.clone());
                        break;
                    }
                }
                if let Some(name) = found {
                    set.remove(&name);
                }
            }
            match write_records(self, &set)? {
                Some(node) => reserved.insert(CONFLICTS.to_owned(), node),
                None => reserved.remove(CONFLICTS),
            };
        }
        join(self, edited, &reserved)
    }
}

#[cfg(test)]
mod tests;
