//! The commit session of one branch: the commit the view is based on, the root of the view
//! (the base with the edits not committed yet), the edits' messages, and the one way they
//! reach the branch (compare-and-swap, merging onto whatever another writer committed).
//!
//! The mount keeps one session; what it edits is visible in the view at once and committed at
//! each save, or once quiet when coalescing. Another writer's commit becomes the base when
//! nothing is pending ([`Session::follow`]).

use super::{Edit, Oid, Result, Store};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Session {
    base: Oid,
    root: Oid,
    /// The messages of the edits not committed yet, oldest first.
    pending: Vec<String>,
    last_edit: Instant,
}

/// What a commit of the pending edits did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The new base: the commit made, or the head when the edits changed nothing there.
    pub base: Oid,
    /// Another writer had committed meanwhile: the view now holds their changes too.
    pub merged: bool,
}

/// A commit of a session's pending edits, made apart from the session (see [`Session::job`]).
#[derive(Debug, Clone)]
pub struct Job {
    base: Oid,
    root: Oid,
    message: String,
}

impl Job {
    /// Makes the commit: the edits' root on the base, merged onto the head if the branch moved.
    /// `None` when they change nothing on the head.
    pub fn run(&self, store: &Store) -> Result<Option<Oid>> {
        let base_root = store.commit_root(self.base)?;
        store.commit_onto(self.base, base_root, self.root, &self.message)
    }
}

impl Session {
    /// A session on the branch head.
    pub fn start(store: &Store) -> Result<Session> {
        let base = store.head_commit()?;
        Ok(Session {
            base,
            root: store.commit_root(base)?,
            pending: Vec::new(),
            last_edit: Instant::now(),
        })
    }

    /// The commit the view is based on.
    pub fn base(&self) -> Oid {
        self.base
    }

    /// The root tree of the view.
    pub fn root(&self) -> Oid {
        self.root
    }

    /// How many edits wait for a commit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The view's root after `edits`, or `None` when they change nothing.
    pub fn apply(&self, store: &Store, edits: &[Edit]) -> Result<Option<Oid>> {
        let root = store.apply_to_tree(self.root, edits)?;
        Ok((root != self.root).then_some(root))
    }

    /// Makes `root` (from [`Session::apply`]) the view, pending under `message`. Returns the
    /// root before, for [`Session::abandon`].
    pub fn record(&mut self, root: Oid, message: String) -> Oid {
        let before = std::mem::replace(&mut self.root, root);
        self.pending.push(message);
        self.last_edit = Instant::now();
        before
    }

    /// Gives up the pending edits (their commit failed): the view is `root` again.
    pub fn abandon(&mut self, root: Oid) {
        self.root = root;
        self.pending.clear();
    }

    /// Whether coalesced edits have been quiet for `quiet`.
    pub fn due(&self, quiet: Duration) -> bool {
        !self.pending.is_empty() && self.last_edit.elapsed() >= quiet
    }

    /// Commits the pending edits as one commit, merged onto the branch if it moved. `None`
    /// when nothing was pending.
    pub fn commit(&mut self, store: &Store) -> Result<Option<Committed>> {
        let Some(job) = self.job() else {
            return Ok(None);
        };
        let made = job.run(store);
        self.finish(store, &job, made).map(Some)
    }

    /// The commit of the pending edits, to be made by [`Job::run`] (on any handle of the
    /// repository, while the view is read) and completed by [`Session::finish`]. The caller
    /// keeps other edits and commits of this session out until then. `None` when nothing is
    /// pending.
    pub fn job(&self) -> Option<Job> {
        let message = match self.pending.as_slice() {
            [] => return None,
            [one] => one.clone(),
            many => format!("{} changes\n\n{}", many.len(), many.join("\n")),
        };
        Some(Job {
            base: self.base,
            root: self.root,
            message,
        })
    }

    /// Completes `job` with what [`Job::run`] gave: the view is then based on the commit made
    /// (or on the head, when the edits changed nothing there). On an error the edits stay
    /// pending.
    pub fn finish(
        &mut self,
        store: &Store,
        job: &Job,
        made: Result<Option<Oid>>,
    ) -> Result<Committed> {
        let base = match made? {
            Some(c) => c,
            None => store.head_commit()?,
        };
        self.pending.clear();
        self.rebase(store, base)?;
        Ok(Committed {
            base,
            merged: self.root != job.root,
        })
    }

    /// Commits the pending edits in place of the head `replaced`, on its parent `parent` (see
    /// [`Store::commit_replacing`]). `None` when the branch moved meanwhile.
    pub fn commit_replacing(
        &mut self,
        store: &Store,
        replaced: Oid,
        parent: Oid,
    ) -> Result<Option<Oid>> {
        let message = self.pending.join("\n");
        let Some(commit) = store.commit_replacing(replaced, parent, self.root, &message)? else {
            return Ok(None);
        };
        self.pending.clear();
        self.rebase(store, commit)?;
        Ok(Some(commit))
    }

    /// Bases the view on `commit`.
    pub fn rebase(&mut self, store: &Store, commit: Oid) -> Result<()> {
        self.base = commit;
        self.root = store.commit_root(commit)?;
        Ok(())
    }

    /// Takes another writer's commit as the base when nothing is pending: the new head, or
    /// `None` when there is none to take.
    pub fn follow(&mut self, store: &Store) -> Result<Option<Oid>> {
        let head = store.head_commit()?;
        if head == self.base || !self.pending.is_empty() {
            return Ok(None);
        }
        self.rebase(store, head)?;
        Ok(Some(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Format, json};
    use crate::value::Path;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
        (dir, store)
    }

    fn set(k: &str, v: &str) -> Vec<Edit> {
        vec![Edit::Set(
            Path(vec![k.to_owned()]),
            json::parse(v).expect("JSON"),
        )]
    }

    #[test]
    fn edits_show_in_the_view_and_commit_as_one() {
        let (_d, store) = store();
        let mut s = Session::start(&store).expect("start");
        let head = store.head_commit().expect("head");
        for (k, v) in [("a", "1"), ("b", "2")] {
            let root = s
                .apply(&store, &set(k, v))
                .expect("apply")
                .expect("a change");
            s.record(root, format!("set {k}"));
        }
        assert_eq!(s.pending(), 2);
        assert_eq!(store.head_commit().expect("head"), head);
        let c = s.commit(&store).expect("commit").expect("made");
        assert!(!c.merged);
        assert_eq!(store.head_commit().expect("head"), c.base);
        assert_eq!(s.pending(), 0);
        assert!(s.apply(&store, &set("a", "1")).expect("apply").is_none());
    }

    #[test]
    fn only_a_commit_made_on_the_given_parent_is_replaced() {
        let (_d, store) = store();
        let c0 = store.head_commit().expect("head");
        store
            .apply(&set("other", "1"), "other")
            .expect("other writer");
        let u = store
            .apply(&set("mine", "2"), "mine")
            .expect("mine")
            .expect("made");
        let tree = store.commit_root(u).expect("root");
        // `u` was made on the other writer's commit, not on c0: it stays.
        assert_eq!(
            store.commit_replacing(u, c0, tree, "x").expect("replace"),
            None
        );
        assert_eq!(store.head_commit().expect("head"), u);
    }

    #[test]
    fn another_writers_commit_is_merged_or_followed() {
        let (_d, store) = store();
        let mut s = Session::start(&store).expect("start");
        store
            .apply(&set("other", "1"), "other")
            .expect("other writer");
        let root = s
            .apply(&store, &set("mine", "2"))
            .expect("apply")
            .expect("a change");
        s.record(root, "set mine".into());
        let c = s.commit(&store).expect("commit").expect("made");
        assert!(c.merged, "the other writer's key came in");
        store
            .apply(&set("later", "3"), "later")
            .expect("other writer");
        assert!(s.follow(&store).expect("follow").is_some());
        assert_eq!(s.base(), store.head_commit().expect("head"));
    }
}
