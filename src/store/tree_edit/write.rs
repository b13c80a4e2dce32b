//! Writing the overlay: each changed tree once, children before their parents.

use super::{Batch, Entry, MODE_BLOB, MODE_TREE};
use crate::store::Result;
use crate::store::layout::{self, MARKER, Node, marker_text};
use git2::{ObjectType, Oid};
use std::collections::BTreeMap;

impl Batch<'_> {
    /// Writes the open collection `id` and what it holds open, children first, each changed
    /// tree once; returns its node.
    pub(super) fn write(&self, id: usize) -> Result<Node> {
        // Children after their parents; written in the reverse order.
        let mut order = vec![id];
        let mut seen = vec![false; self.colls.len()];
        seen[id] = true;
        let mut i = 0;
        while let Some(&at) = order.get(i) {
            for slot in self.colls[at].slots.values() {
                if let Some(Entry::Open(child)) = *slot
                    && !std::mem::replace(&mut seen[child], true)
                {
                    order.push(child);
                }
            }
            i += 1;
        }
        // Per collection: `Some(None)` unchanged, `Some(Some(tree))` written.
        let mut done: Vec<Option<Option<Oid>>> = vec![None; self.colls.len()];
        for &at in order.iter().rev() {
            done[at] = Some(self.write_one(at, &done)?);
        }
        let tree = done[id].flatten().unwrap_or(self.colls[id].base);
        Ok(Node::Dir(tree))
    }

    /// Writes one open collection whose open children are `done`; `None` if it is unchanged.
    fn write_one(&self, id: usize, done: &[Option<Option<Oid>>]) -> Result<Option<Oid>> {
        let c = &self.colls[id];
        let mut changes: Vec<(String, Option<Node>)> = Vec::with_capacity(c.slots.len());
        for (git_name, slot) in &c.slots {
            let node = match *slot {
                None => None,
                Some(Entry::Node(n)) => Some(n),
                Some(Entry::Open(child)) => {
                    let written = done[child].flatten();
                    let home = self.colls[child].home.as_ref();
                    if written.is_none() && home.is_some_and(|(p, n)| *p == id && n == git_name) {
                        continue;
                    }
                    Some(Node::Dir(written.unwrap_or(self.colls[child].base)))
                }
            };
            changes.push((git_name.clone(), node));
        }
        if changes.is_empty() && !c.marker_changed && !c.rebuilt {
            return Ok(None);
        }
        let odb = self.store.repo.odb()?;
        if c.rebuilt {
            let mut entries: BTreeMap<String, Node> = (self.store.read_dir(c.base)?.entries)
                .into_iter()
                .map(|child| (child.name, child.node))
                .collect();
            for (git_name, node) in changes {
                match node {
                    Some(n) => entries.insert(git_name, n),
                    None => entries.remove(&git_name),
                };
            }
            let mut sink = |kind, data: &[u8]| Ok(odb.write(kind, data)?);
            let entries = entries.into_iter().collect();
            return Ok(Some(
                layout::write_entries(&mut sink, c.kind, entries, &c.long)?.oid(),
            ));
        }
        let levels = c.levels();
        let mut paths: Vec<(String, Option<Node>)> = (changes.into_iter())
            .map(|(n, node)| (layout::bucket_path(c.kind, &n, levels) + &n, node))
            .collect();
        if c.marker_changed {
            let marker = marker_text(c.kind, &c.long, c.split);
            let marker = odb.write(ObjectType::Blob, marker.as_bytes())?;
            paths.push((MARKER.to_owned(), Some(Node::Leaf(marker))));
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let paths: Vec<(&str, Option<Node>)> =
            paths.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        self.write_level(&odb, Some(c.base), &paths, true)
    }

    /// Writes the tree `base` with `changes` (paths below it, sorted; `None` removes) and
    /// returns it, or `None` for a bucket left empty (libgit2's tree updates drop those too).
    fn write_level(
        &self,
        odb: &git2::Odb<'_>,
        base: Option<Oid>,
        changes: &[(&str, Option<Node>)],
        top: bool,
    ) -> Result<Option<Oid>> {
        let mut entries: BTreeMap<Vec<u8>, (i32, Oid)> = BTreeMap::new();
        if let Some(base) = base {
            for e in self.store.repo.find_tree(base)?.iter() {
                entries.insert(e.name_bytes().to_vec(), (e.filemode(), e.id()));
            }
        }
        let mut rest = changes;
        while let Some(&(path, node)) = rest.first() {
            let Some((dir, _)) = path.split_once('/') else {
                match node {
                    Some(Node::Dir(t)) => entries.insert(path.into(), (MODE_TREE, t)),
                    Some(Node::Leaf(b)) => entries.insert(path.into(), (MODE_BLOB, b)),
                    None => entries.remove(path.as_bytes()),
                };
                rest = &rest[1..];
                continue;
            };
            let len = (rest.iter())
                .take_while(|(p, _)| p.split_once('/').is_some_and(|(d, _)| d == dir))
                .count();
            let below: Vec<(&str, Option<Node>)> = (rest[..len].iter())
                .map(|&(p, n)| (&p[dir.len() + 1..], n))
                .collect();
            let old = (entries.get(dir.as_bytes()))
                .filter(|(mode, _)| *mode == MODE_TREE)
                .map(|&(_, t)| t);
            match self.write_level(odb, old, &below, false)? {
                Some(t) => entries.insert(dir.into(), (MODE_TREE, t)),
                None => entries.remove(dir.as_bytes()),
            };
            rest = &rest[len..];
        }
        if entries.is_empty() && !top {
            return Ok(None);
        }
        Ok(Some(odb.write(ObjectType::Tree, &raw_tree(entries))?))
    }
}

/// The bytes of a git tree holding `entries` (name, mode, id), in git's order.
fn raw_tree(entries: BTreeMap<Vec<u8>, (i32, Oid)>) -> Vec<u8> {
    let mut entries: Vec<(Vec<u8>, (i32, Oid))> = entries.into_iter().collect();
    // Trees sort as if their name ended in '/'.
    entries.sort_by_cached_key(|(name, (mode, _))| {
        let mut key = name.clone();
        if mode & 0o170000 == MODE_TREE {
            key.push(b'/');
        }
        key
    });
    let mut out = Vec::with_capacity(entries.len() * 48);
    for (name, (mode, id)) in entries {
        out.extend_from_slice(format!("{mode:o} ").as_bytes());
        out.extend_from_slice(&name);
        out.push(0);
        out.extend_from_slice(id.as_bytes());
    }
    out
}
