//! One save, one commit, also when a tool saves by removing a file and writing it anew:
//! coreutils `mv` from another filesystem (its rename fails with EXDEV) unlinks the target,
//! then creates it exclusively (`O_EXCL`) and writes it. The unlink is committed when it
//! returns, as every unlink is (a crash right after it never brings the file back); when the
//! same name is then created exclusively and saved at once, the save's commit takes the
//! unlink's place on the branch (same parent), so the history has no version without the
//! file. A user's `rm f; echo x > f` (no `O_EXCL`) stays two commits, as typed.

use super::{Edit, Path, State};
use crate::store::Oid;
use std::time::{Duration, Instant};

/// How soon after the unlink the save must come.
const WITHIN: Duration = Duration::from_secs(2);

/// An unlink this mount just committed.
#[derive(Debug)]
pub(super) struct Unlinked {
    commit: Oid,
    parent: Oid,
    path: Path,
    at: Instant,
    /// The name was created again exclusively since.
    recreated: bool,
}

impl State {
    /// After an unlink's commit (the base moved from `parent` to its commit).
    pub(super) fn unlinked(&mut self, parent: Oid, path: Path) {
        let base = self.session.base();
        self.recent_unlink = (base != parent && self.opts.coalesce.is_none()).then(|| Unlinked {
            commit: base,
            parent,
            path,
            at: Instant::now(),
            recreated: false,
        });
    }

    /// A new key at `path` was created exclusively (`O_EXCL`), as `mv` does after its unlink.
    pub(super) fn created_exclusively(&mut self, path: &Path) {
        if let Some(u) = self.recent_unlink.as_mut()
            && u.path == *path
        {
            u.recreated = true;
        }
    }

    /// Before edits are committed: whether they are the save that completes the unlink just
    /// made (then the commit to replace, and its parent). Any other edit ends the chance.
    pub(super) fn completes_unlink(&mut self, edits: &[Edit]) -> Option<(Oid, Oid)> {
        let u = self.recent_unlink.take()?;
        let same = match edits {
            [Edit::Set(p, _) | Edit::Insert(p, _) | Edit::Put(p, _)] => *p == u.path,
            _ => false,
        };
        (same
            && u.recreated
            && u.commit == self.session.base()
            && self.session.pending() == 0
            && u.at.elapsed() < WITHIN)
            .then_some((u.commit, u.parent))
    }

    /// Commits the pending edit in place of the unlink commit `replaced`. Returns false when
    /// the branch moved meanwhile (the caller commits as usual).
    pub(super) fn commit_replacing(&mut self, replaced: Oid, parent: Oid) -> super::Result<bool> {
        let Some(commit) = self
            .session
            .commit_replacing(&self.store, replaced, parent)?
        else {
            return Ok(false);
        };
        self.perms_after_commit();
        self.base_time = self.commit_time(commit);
        self.new_commit = true;
        Ok(true)
    }
}
