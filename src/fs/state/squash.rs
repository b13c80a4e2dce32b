//! One save, one commit, also when a tool saves by removing a file and writing it anew:
//! coreutils `mv` from another filesystem (its rename fails with EXDEV) unlinks the target,
//! then creates and writes it. The unlink is committed when it returns, as every unlink is
//! (a crash right after it never brings the file back); when the same name's save follows at
//! once, its commit takes the unlink's place on the branch (same parent), so the history has
//! no version without the file.

use super::{Edit, Path, State};
use git2::Oid;
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
}

impl State {
    /// After an unlink's commit (the base moved from `parent` to its commit).
    pub(super) fn unlinked(&mut self, parent: Oid, path: Path) {
        self.recent_unlink =
            (self.base != parent && self.opts.coalesce.is_none()).then(|| Unlinked {
                commit: self.base,
                parent,
                path,
                at: Instant::now(),
            });
    }

    /// Before edits are committed: whether they are the save that completes the unlink just
    /// made (then the commit to replace, and its parent). Any other edit ends the chance.
    pub(super) fn completes_unlink(&mut self, edits: &[Edit]) -> Option<(Oid, Oid)> {
        let u = self.recent_unlink.take()?;
        let same = match edits {
            [Edit::Set(p, _) | Edit::Insert(p, _) | Edit::Put(p, _)] => *p == u.path,
            _ => false,
        };
        (same && u.commit == self.base && self.pending.is_empty() && u.at.elapsed() < WITHIN)
            .then_some((u.commit, u.parent))
    }

    /// Commits the pending edit in place of the unlink commit `replaced`. Returns false when
    /// the branch moved meanwhile (the caller commits as usual).
    pub(super) fn commit_replacing(&mut self, replaced: Oid, parent: Oid) -> super::Result<bool> {
        let message = self.pending.join("\n");
        let Some(commit) = self
            .store
            .commit_replacing(replaced, parent, self.root, &message)?
        else {
            return Ok(false);
        };
        self.pending.clear();
        self.perms_after_commit();
        self.set_base(commit)?;
        self.history_moved = true;
        Ok(true)
    }
}
