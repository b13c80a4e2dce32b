//! Structural 3-way merge of two values that grew from one base.
//!
//! Used when the branch moved between reading the head and swapping the ref: our change is
//! merged onto the other writer's head, entry by entry, sharing every subtree either side
//! left alone. Rules:
//!
//! - an entry changed on one side only takes that side's version;
//! - maps and sets changed on both sides merge key by key (recursively);
//! - vectors and lists changed on both sides merge element by element when all three have the
//!   same length, and concatenate both sides' appended elements when both only appended;
//! - anything else changed on both sides is a **true conflict: our side wins** for that entry.
//!   Their version is not lost: it is the parent of the merged commit, so `.history` and
//!   `git log` keep it. The conflict is logged as a warning.

use super::layout::{Dir, Node, write_entries};
use super::{Result, Store};
use crate::value::CollKind;
use git2::Oid;
use std::collections::{BTreeMap, BTreeSet};

/// Merges root trees: `ours` and `theirs` both derived from `base`.
pub fn merge_trees(store: &Store, base: Oid, ours: Oid, theirs: Oid) -> Result<Oid> {
    let merged = merge_node(
        store,
        Some(Node::Dir(base)),
        Some(Node::Dir(ours)),
        Some(Node::Dir(theirs)),
        "",
    )?;
    Ok(merged.map_or(ours, Node::oid))
}

fn merge_node(
    store: &Store,
    base: Option<Node>,
    ours: Option<Node>,
    theirs: Option<Node>,
    path: &str,
) -> Result<Option<Node>> {
    if ours == theirs || theirs == base {
        return Ok(ours);
    }
    if ours == base {
        return Ok(theirs);
    }
    if let (Some(Node::Dir(o)), Some(Node::Dir(t))) = (ours, theirs) {
        let (od, td) = (store.read_dir(o)?, store.read_dir(t)?);
        if od.kind == td.kind {
            let bd = match base {
                Some(Node::Dir(b)) => Some(store.read_dir(b)?).filter(|d| d.kind == od.kind),
                _ => None,
            };
            if let Some(node) = merge_dirs(store, bd.as_ref(), &od, &td, path)? {
                return Ok(Some(node));
            }
        }
    }
    log::warn!("merge conflict at /{path}: keeping this save's version over the other writer's");
    Ok(ours)
}

fn by_name(d: Option<&Dir>) -> BTreeMap<&str, Node> {
    d.map(|d| {
        d.entries
            .iter()
            .map(|c| (c.name.as_str(), c.node))
            .collect()
    })
    .unwrap_or_default()
}

/// Merges two collections of the same kind; `None` when they cannot be merged.
fn merge_dirs(
    store: &Store,
    base: Option<&Dir>,
    ours: &Dir,
    theirs: &Dir,
    path: &str,
) -> Result<Option<Node>> {
    let kind = ours.kind;
    let mut entries: Vec<(String, Node)> = Vec::new();
    let sub = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}/{name}")
        }
    };
    if kind.is_sequence() {
        let b: Vec<Node> = base
            .map(|d| d.entries.iter().map(|c| c.node).collect())
            .unwrap_or_default();
        let o: Vec<Node> = ours.entries.iter().map(|c| c.node).collect();
        let t: Vec<Node> = theirs.entries.iter().map(|c| c.node).collect();
        let merged: Vec<Node> = if base.is_some() && b.len() == o.len() && b.len() == t.len() {
            let mut out = Vec::new();
            for i in 0..b.len() {
                let name = i.to_string();
                if let Some(n) = merge_node(store, Some(b[i]), Some(o[i]), Some(t[i]), &sub(&name))?
                {
                    out.push(n);
                }
            }
            out
        } else if base.is_some() && o.starts_with(&b) && t.starts_with(&b) {
            t.iter().chain(&o[b.len()..]).copied().collect()
        } else {
            return Ok(None);
        };
        entries.extend(
            merged
                .into_iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), n)),
        );
        return write_dir(store, kind, entries, &[]).map(Some);
    }
    let (b, o, t) = (by_name(base), by_name(Some(ours)), by_name(Some(theirs)));
    let names: BTreeSet<&str> = o.keys().chain(t.keys()).chain(b.keys()).copied().collect();
    let mut long_keys = Vec::new();
    for name in names {
        let merged = merge_node(
            store,
            b.get(name).copied(),
            o.get(name).copied(),
            t.get(name).copied(),
            &sub(name),
        )?;
        if let Some(node) = merged {
            if let Some(key) = ours
                .long_keys
                .get(name)
                .or_else(|| theirs.long_keys.get(name))
            {
                long_keys.push((name.to_owned(), key.clone()));
            }
            entries.push((name.to_owned(), node));
        }
    }
    write_dir(store, kind, entries, &long_keys).map(Some)
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
