//! Restoring a subtree from an earlier version. It reuses the stored trees and blobs by id:
//! only the ancestors of what changes are written.

use super::layout::Node;
use super::{Edit, Result, Store, StoreError};
use crate::codec::{CodecError, MAX_DEPTH};
use crate::value::Path;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;
    use crate::value::Value;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        (dir, store)
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
