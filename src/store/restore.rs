//! Restoring a subtree from an earlier version, and retyping a collection in place. Both reuse
//! the stored trees and blobs by id: only the ancestors of what changes are written.

use super::layout::{self, Node};
use super::{Edit, Result, Store, StoreError};
use crate::codec::{CodecError, Format, MAX_DEPTH};
use crate::value::{CollKind, Path};
use git2::Oid;

impl Store {
    /// Puts the subtree found at `from` in revision `rev` at `to` on the branch, as one commit
    /// (`None` when `to` already holds it). The subtree's objects are shared, not rewritten, so
    /// a restore of any size writes only the trees above `to` and the commit. A `from` that did
    /// not exist at `rev` is [`StoreError::NotFound`] and leaves the branch alone.
    pub fn restore(&self, rev: &str, from: &Path, to: &Path) -> Result<Option<Oid>> {
        let commit = self.resolve(rev)?;
        let node = self
            .node_at(self.commit_root(commit)?, from)
            .map_err(|e| match e {
                StoreError::NotFound(p) => StoreError::NotFound(format!("{rev}:{p}")),
                StoreError::NotADirectory(_) => StoreError::NotFound(format!("{rev}:{from}")),
                e => e,
            })?;
        // The subtree fitted under MAX_DEPTH where it was; deeper down it might not.
        if to.names().len() > from.names().len()
            && self.nests_deeper_than(node, MAX_DEPTH - to.names().len().min(MAX_DEPTH))?
        {
            return Err(StoreError::Codec(CodecError::TooDeep));
        }
        let short = &commit.to_string()[..7];
        let message = if from == to {
            format!("restore {to} from {short}")
        } else {
            format!("restore {from} from {short} to {to}")
        };
        self.apply(&[Edit::Put(to.clone(), node)], &message)
    }

    /// Whether any node lies more than `limit` levels below `node`. Reads trees only.
    fn nests_deeper_than(&self, node: Node, limit: usize) -> Result<bool> {
        let mut stack = vec![(node, 0)];
        while let Some((node, depth)) = stack.pop() {
            let Node::Dir(tree) = node else { continue };
            let children = self.read_dir(tree)?.entries;
            if !children.is_empty() && depth + 1 > limit {
                return Ok(true);
            }
            stack.extend(children.into_iter().map(|c| (c.node, depth + 1)));
        }
        Ok(false)
    }

    /// The collection `tree` retyped as a `to` sequence (a vector or, in an EDN store, a list),
    /// sharing its elements: a map whose entry names are the indices `0..n-1` (any padding:
    /// `00`, `01`, … as `cp` copies a vector's listing, each index once) becomes the sequence
    /// of its values in index order; a vector or list becomes the other. `None` when the
    /// collection cannot be that sequence.
    pub fn as_sequence(&self, tree: Oid, to: CollKind) -> Result<Option<Node>> {
        if !to.is_sequence() || (to == CollKind::List && self.format == Format::Json) {
            return Ok(None);
        }
        let dir = self.read_dir(tree)?;
        let n = dir.entries.len();
        let mut slots: Vec<Option<Node>> = vec![None; n];
        match dir.kind {
            CollKind::Set => return Ok(None),
            // read_dir names a sequence's elements 0..n-1 in order.
            CollKind::Vector | CollKind::List => {
                for (slot, c) in slots.iter_mut().zip(dir.entries) {
                    *slot = Some(c.node);
                }
            }
            CollKind::Map => {
                for c in dir.entries {
                    let Some(slot) = layout::parse_index(&c.name).and_then(|i| slots.get_mut(i))
                    else {
                        return Ok(None);
                    };
                    if slot.replace(c.node).is_some() {
                        return Ok(None);
                    }
                }
            }
        }
        let mut entries = Vec::with_capacity(n);
        for (i, slot) in slots.into_iter().enumerate() {
            // n names, each a distinct index below n: every slot is filled.
            let Some(node) = slot else { return Ok(None) };
            entries.push((i.to_string(), node));
        }
        let odb = self.repo.odb()?;
        let mut sink = |kind, data: &[u8]| Ok(odb.write(kind, data)?);
        Ok(Some(layout::write_entries(&mut sink, to, entries, &[])?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json;
    use crate::value::Value;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        (dir, store)
    }

    fn tree(store: &Store, text: &str) -> Oid {
        let v = json::parse(text).expect("test JSON");
        store.write_value(&v).expect("write").oid()
    }

    fn retyped(store: &Store, text: &str, to: CollKind) -> Option<Value> {
        store
            .as_sequence(tree(store, text), to)
            .expect("as_sequence")
            .map(|n| store.read_value(n).expect("read"))
    }

    #[test]
    fn a_map_of_indices_becomes_that_vector() {
        let (_d, s) = store();
        let v = |t: &str| json::parse(t).expect("test JSON");
        let to = CollKind::Vector;
        assert_eq!(retyped(&s, "{}", to), Some(v("[]")));
        assert_eq!(
            retyped(&s, r#"{"1":{"b":[2]},"0":"a"}"#, to),
            Some(v(r#"["a",{"b":[2]}]"#))
        );
        let padded: String = (0..12)
            .map(|i| format!("\"{i:02}\":{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let want = format!(
            "[{}]",
            (0..12).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        );
        assert_eq!(retyped(&s, &format!("{{{padded}}}"), to), Some(v(&want)));
        // The tree is the one the vector has however it was written.
        let node = s
            .as_sequence(tree(&s, &format!("{{{padded}}}")), to)
            .expect("as_sequence");
        assert_eq!(node, Some(s.write_value(&v(&want)).expect("write")));
    }

    #[test]
    fn other_maps_are_not_sequences() {
        let (_d, s) = store();
        for map in [
            r#"{"1":1}"#,
            r#"{"0":1,"2":2}"#,
            r#"{"0":1,"00":2}"#,
            r#"{"0":1,"a":2}"#,
            r#"{"-0":1}"#,
            r#"{" 0":1}"#,
        ] {
            assert_eq!(retyped(&s, map, CollKind::Vector), None, "{map}");
        }
        // A JSON store has no lists; maps are never a sequence's target.
        assert_eq!(retyped(&s, r#"{"0":1}"#, CollKind::List), None);
        assert_eq!(retyped(&s, "[1]", CollKind::Map), None);
    }

    /// A subtree restored deeper down than it was must still fit under MAX_DEPTH.
    #[test]
    fn a_restore_that_would_nest_too_deep_is_refused() {
        // Writing nests one call per level: more than a test thread's stack in a debug build.
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(too_deep)
            .expect("thread")
            .join()
            .expect("no panic");
    }

    fn too_deep() {
        let (_d, s) = store();
        let mut nested = Value::int(1);
        for _ in 0..MAX_DEPTH - 1 {
            nested = Value::Vector(vec![nested]);
        }
        let p = Path::parse;
        let edits = [
            Edit::Set(p("a"), nested),
            Edit::Set(p("b"), Value::Map(Default::default())),
        ];
        s.apply(&edits, "deep").expect("at the limit");
        let head = s.head_commit().expect("head");
        assert!(matches!(
            s.restore("HEAD", &p("a"), &p("b/a")),
            Err(StoreError::Codec(CodecError::TooDeep))
        ));
        assert_eq!(s.head_commit().expect("head"), head);
        assert!(
            s.restore("HEAD", &p("a"), &p("c"))
                .expect("same depth")
                .is_some()
        );
    }
}
