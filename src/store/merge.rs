//! Structural 3-way merge of two values that grew from one base, with conflicts as data.
//!
//! Used when a save is merged onto another writer's commit (the branch moved between reading
//! the head and swapping the ref: [`Store::commit_onto`]) and when another store's branch is
//! merged into this one ([`Store::merge_into_branch`], what sync does). Every subtree either
//! side left alone is shared by id. Rules (docs/FORMAT.md, "Merging"):
//!
//! - an entry changed on one side only takes that side's version (so does one both sides
//!   changed alike);
//! - maps and sets changed on both sides merge key by key, recursively;
//! - vectors and lists merge by splices: each side's changes against the base, found by a
//!   diff of the elements' ids, combine when their ranges do not overlap. Elements both sides
//!   edited in place merge element by element, recursively; insertions at one place (appends
//!   too) keep both sides' elements, those already on the branch first;
//! - anything else is a **conflict** ([`ConflictKind`]): the value keeps our side's version of
//!   that entry, and the merged root records the conflict with its base, ours and theirs
//!   ([`super::conflicts`]), so nothing is dropped without being shown.

mod seq;
#[cfg(test)]
mod tests;

use super::conflicts::{self, Conflict, ConflictKind, Reserved};
use super::layout::{Dir, MARKER, Node, parse_marker, write_entries};
use super::{LOCK_WAIT, Result, Store, StoreError, swapped};
use crate::value::{CollKind, Path};
use git2::{ErrorCode, Oid};
use std::collections::{BTreeMap, BTreeSet};

/// A merged root tree and the conflicts this merge met (all of them are recorded in the tree,
/// with the ones still open from before).
#[derive(Clone, Debug)]
pub struct Merged {
    pub tree: Oid,
    pub conflicts: Vec<Conflict>,
}

/// Which side's elements come first where both inserted at one place: those already on the
/// branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    /// Merging another branch into ours: ours are on the branch.
    OursFirst,
    /// Merging a save onto another writer's commit: theirs are on the branch.
    TheirsFirst,
}

/// What [`Store::merge_into_branch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Their commit was already in the branch's history.
    UpToDate,
    /// The branch had nothing of its own: it moved to their commit.
    FastForward(Oid),
    /// A merge commit, and the paths of the conflicts it met.
    Merged { commit: Oid, conflicts: Vec<Path> },
}

/// Merges root trees `ours` and `theirs`, both grown from `base`: another branch into ours.
pub fn merge_recording(store: &Store, base: Oid, ours: Oid, theirs: Oid) -> Result<Merged> {
    merge_roots(store, Some(base), ours, theirs, Order::OursFirst)
}

/// Merges root trees; with no `base` (histories that share no commit) every entry counts as
/// added on both sides.
pub(super) fn merge_roots(
    store: &Store,
    base: Option<Oid>,
    ours: Oid,
    theirs: Oid,
    order: Order,
) -> Result<Merged> {
    let b = base.map(|b| conflicts::split(store, b)).transpose()?;
    let (o, t) = (
        conflicts::split(store, ours)?,
        conflicts::split(store, theirs)?,
    );
    let mut m = Merger {
        store,
        order,
        conflicts: Vec::new(),
    };
    let value = m.node(
        b.as_ref().map(|b| Node::Dir(b.value)),
        Some(Node::Dir(o.value)),
        Some(Node::Dir(t.value)),
        &Path::root(),
    )?;
    // A conflict at the root keeps ours, a collection.
    let value = match value {
        Some(Node::Dir(v)) => v,
        _ => o.value,
    };
    let none = Reserved::new();
    let base_reserved = b.as_ref().map_or(&none, |b| &b.reserved);
    let reserved =
        conflicts::merge_reserved(store, base_reserved, &o.reserved, &t.reserved, &m.conflicts)?;
    Ok(Merged {
        tree: conflicts::join(store, value, &reserved)?,
        conflicts: m.conflicts,
    })
}

/// A node's type, as conflicts tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Scalar,
    Coll(CollKind),
}

struct Merger<'s> {
    store: &'s Store,
    order: Order,
    conflicts: Vec<Conflict>,
}

impl Merger<'_> {
    fn shape(&self, node: Node) -> Result<Shape> {
        Ok(match node {
            Node::Leaf(_) => Shape::Scalar,
            Node::Dir(t) => Shape::Coll(self.store.dir_kind(t)?),
        })
    }

    /// Records a conflict and returns what the value keeps meanwhile: ours.
    fn conflict(
        &mut self,
        kind: ConflictKind,
        path: &Path,
        base: Option<Node>,
        ours: Option<Node>,
        theirs: Option<Node>,
    ) -> Option<Node> {
        log::info!("merge conflict ({kind}) at {path}: keeping ours, theirs recorded");
        self.conflicts.push(Conflict {
            path: path.clone(),
            kind,
            base,
            ours,
            theirs,
        });
        ours
    }

    fn node(
        &mut self,
        base: Option<Node>,
        ours: Option<Node>,
        theirs: Option<Node>,
        path: &Path,
    ) -> Result<Option<Node>> {
        if ours == theirs || theirs == base {
            return Ok(ours);
        }
        if ours == base {
            return Ok(theirs);
        }
        let (Some(o), Some(t)) = (ours, theirs) else {
            return Ok(self.conflict(ConflictKind::EditRemoved, path, base, ours, theirs));
        };
        let shape = self.shape(o)?;
        if shape != self.shape(t)? {
            return Ok(self.conflict(ConflictKind::TypeChanged, path, base, ours, theirs));
        }
        let Shape::Coll(kind) = shape else {
            return Ok(self.conflict(ConflictKind::BothEdited, path, base, ours, theirs));
        };
        let same_kind_base = match base {
            Some(b @ Node::Dir(_)) if self.shape(b)? == shape => Some(b),
            _ => None,
        };
        let store = self.store;
        let read = |n: Node| store.read_dir(n.oid());
        let (od, td) = (read(o)?, read(t)?);
        let bd = same_kind_base.map(read).transpose()?;
        if !kind.is_sequence() {
            return self.keyed(bd.as_ref(), &od, &td, path).map(Some);
        }
        let Some(bd) = bd else {
            // Both made a new sequence here: nothing to tell their elements' changes by.
            return Ok(self.conflict(ConflictKind::BothEdited, path, base, ours, theirs));
        };
        self.sequences(&bd, &od, &td, path, (base, o, t)).map(Some)
    }

    /// Merges two maps or two sets key by key.
    fn keyed(&mut self, base: Option<&Dir>, ours: &Dir, theirs: &Dir, path: &Path) -> Result<Node> {
        let by_name = |d: Option<&Dir>| -> BTreeMap<String, Node> {
            d.map(|d| d.entries.iter().map(|c| (c.name.clone(), c.node)).collect())
                .unwrap_or_default()
        };
        let (b, o, t) = (by_name(base), by_name(Some(ours)), by_name(Some(theirs)));
        let names: BTreeSet<&String> = o.keys().chain(t.keys()).chain(b.keys()).collect();
        let mut entries = Vec::new();
        let mut long_keys = Vec::new();
        for name in names {
            let merged = self.node(
                b.get(name).copied(),
                o.get(name).copied(),
                t.get(name).copied(),
                &path.child(name),
            )?;
            if let Some(node) = merged {
                if let Some(key) = ours
                    .long_keys
                    .get(name)
                    .or_else(|| theirs.long_keys.get(name))
                {
                    long_keys.push((name.clone(), key.clone()));
                }
                entries.push((name.clone(), node));
            }
        }
        write_dir(self.store, ours.kind, entries, &long_keys)
    }

    /// Merges two vectors or lists by their splices against the base.
    fn sequences(
        &mut self,
        base: &Dir,
        ours: &Dir,
        theirs: &Dir,
        path: &Path,
        nodes: (Option<Node>, Node, Node),
    ) -> Result<Node> {
        let ids = |d: &Dir| -> Vec<Node> { d.entries.iter().map(|c| c.node).collect() };
        let (b, o, t) = (ids(base), ids(ours), ids(theirs));
        let plan = seq::plan(
            &b,
            seq::splices(&b, &o),
            seq::splices(&b, &t),
            self.order == Order::OursFirst,
        );
        let Some(pieces) = plan else {
            let (base, o, t) = nodes;
            self.conflict(ConflictKind::Splices, path, base, Some(o), Some(t));
            return Ok(o);
        };
        let mut out: Vec<Node> = Vec::with_capacity(o.len().max(t.len()));
        for piece in pieces {
            match piece {
                seq::Piece::Base(range) => out.extend_from_slice(&b[range]),
                seq::Piece::Nodes(nodes) => out.extend(nodes),
                seq::Piece::Each(triples) => {
                    for (eb, eo, et) in triples {
                        let at = path.child(&out.len().to_string());
                        out.extend(self.node(Some(eb), Some(eo), Some(et), &at)?);
                    }
                }
            }
        }
        let entries = out
            .into_iter()
            .enumerate()
            .map(|(i, n)| (i.to_string(), n))
            .collect();
        write_dir(self.store, ours.kind, entries, &[])
    }
}

fn write_dir(
    store: &Store,
    kind: CollKind,
    entries: Vec<(String, Node)>,
    long_keys: &[(String, String)],
) -> Result<Node> {
    let odb = store.repo().odb()?;
    let mut sink = |kind, data: &[u8]| Ok(odb.write(kind, data)?);
    write_entries(&mut sink, kind, entries, long_keys)
}

impl Store {
    /// Merges commit `theirs` (e.g. a fetched remote head) into this store's branch:
    /// `UpToDate` when theirs is already in the branch's history; a fast-forward when the head
    /// is an ancestor of theirs (or the branch has no commits yet); else one two-parent merge
    /// commit (parents: the head, theirs; message `merge <short> from <label>`) of the
    /// structural 3-way merge from their merge base, every conflict recorded in it. The branch
    /// moves by compare-and-swap as [`Store::commit_onto`] moves it: a local commit made
    /// meanwhile is merged in too and the swap retried. A commit whose root is not a valfs
    /// value is refused ([`StoreError::NotValfsBranch`]).
    pub fn merge_into_branch(&self, theirs: Oid, label: &str) -> Result<MergeOutcome> {
        const ATTEMPTS: usize = 100;
        self.check_value_commit(theirs, label)?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let short = &theirs.to_string()[..7];
        let message = format!("merge {short} from {label}");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_micros(
                    200 * (attempt as u64 % 10 + 1),
                ));
            }
            self.wait_unlocked(deadline)?;
            let Some(head) = self.head()? else {
                let made = self.repo.reference(
                    &self.refname(),
                    theirs,
                    false,
                    &format!("valfs: {message} (fast-forward)"),
                );
                if swapped(made)? {
                    log::info!("fast-forward to {short} from {label}");
                    return Ok(MergeOutcome::FastForward(theirs));
                }
                continue;
            };
            if head == theirs || self.repo.graph_descendant_of(head, theirs)? {
                return Ok(MergeOutcome::UpToDate);
            }
            if self.repo.graph_descendant_of(theirs, head)? {
                let log = format!("valfs: {message} (fast-forward)");
                let moved = self
                    .repo
                    .reference_matching(&self.refname(), theirs, true, head, &log);
                if swapped(moved)? {
                    log::info!("fast-forward to {short} from {label}");
                    return Ok(MergeOutcome::FastForward(theirs));
                }
                continue;
            }
            let base = match self.repo.merge_base(head, theirs) {
                Ok(b) => Some(self.commit_root(b)?),
                Err(e) if e.code() == ErrorCode::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            let merged = merge_roots(
                self,
                base,
                self.commit_root(head)?,
                self.commit_root(theirs)?,
                Order::OursFirst,
            )?;
            if let Some(commit) = self.commit_merge(merged.tree, head, theirs, &message)? {
                log::info!(
                    "commit {} {message} ({} conflicts)",
                    &commit.to_string()[..7],
                    merged.conflicts.len()
                );
                return Ok(MergeOutcome::Merged {
                    commit,
                    conflicts: merged.conflicts.into_iter().map(|c| c.path).collect(),
                });
            }
        }
        if self.ref_lock().exists() {
            return Err(StoreError::Locked(self.ref_lock().display().to_string()));
        }
        Err(StoreError::Contended(ATTEMPTS))
    }

    /// Commits `tree` with parents `head` and `theirs` and moves the branch from `head` to it.
    /// `None` when the branch was no longer at `head`.
    fn commit_merge(
        &self,
        tree: Oid,
        head: Oid,
        theirs: Oid,
        message: &str,
    ) -> Result<Option<Oid>> {
        let sig = self.signature()?;
        let tree_obj = self.repo.find_tree(tree)?;
        let (h, t) = (self.repo.find_commit(head)?, self.repo.find_commit(theirs)?);
        let commit = self
            .repo
            .commit(None, &sig, &sig, message, &tree_obj, &[&h, &t])?;
        let log = format!("valfs: {message}");
        let moved = self
            .repo
            .reference_matching(&self.refname(), commit, true, head, &log);
        Ok(swapped(moved)?.then_some(commit))
    }

    /// Refuses a commit whose root tree is not a valfs value (no readable `.valfs` marker).
    fn check_value_commit(&self, commit: Oid, label: &str) -> Result<()> {
        let root = self.repo.find_commit(commit)?.tree()?;
        let readable = root
            .get_name(MARKER)
            .and_then(|e| self.read_blob(e.id()).ok())
            .is_some_and(|bytes| parse_marker(&bytes).is_ok());
        if readable {
            return Ok(());
        }
        Err(StoreError::NotValfsBranch {
            branch: label.to_owned(),
            path: self.path.display().to_string(),
            why: format!(
                "its commit {} has no {MARKER} marker valfs reads",
                &commit.to_string()[..7]
            ),
        })
    }
}
