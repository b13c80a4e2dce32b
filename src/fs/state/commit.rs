//! Changing the value: edits are applied to the session's view, then committed — at once, by
//! the caller after the operation (outside the state's lock, so reads go on meanwhile), or
//! once quiet when coalescing. One save, one commit: a commit left to the caller is made
//! before the next edit.

use super::*;
use crate::store::Job;

/// A commit left to the caller of an operation (see [`State::defer_commits`]): made with
/// [`Deferred::run`] on a repository handle of its own while the state is unlocked, and
/// completed by [`State::finish_deferred`].
pub struct Deferred {
    job: Job,
    /// The view's root before the edit: the view again if the commit fails.
    before: Oid,
    /// Open files the edit saved (inode, folder, name, listed as a new file before): unsaved
    /// again if the commit fails.
    saved: Vec<(Ino, Ino, String, bool)>,
    /// The edit is an unlink (its base and path), which the same name's save may complete
    /// once it is committed (see `squash`).
    unlink: Option<(Oid, Path)>,
}

impl Deferred {
    /// Makes the commit (see [`Job::run`]).
    pub fn run(&self, store: &Store) -> crate::store::Result<Option<Oid>> {
        self.job.run(store)
    }
}

impl State {
    /// Leaves the commits of the next edits to the caller, until [`State::take_deferred`]:
    /// the caller serialises the writers of the branch and makes the commit outside the
    /// state's lock, so that lookups and reads of what is committed go on meanwhile.
    pub fn defer_commits(&mut self) {
        self.defer = true;
    }

    /// The commit left to the caller, if an edit left one; commits are made at once again.
    pub fn take_deferred(&mut self) -> Option<Deferred> {
        self.defer = false;
        self.deferred.take()
    }

    /// Completes a commit left to the caller with what `Deferred::run` gave. If it failed,
    /// the view is what it was before the edit and the files it saved are unsaved again, as
    /// when a commit made at once fails.
    pub fn finish_deferred(
        &mut self,
        d: Deferred,
        made: crate::store::Result<Option<Oid>>,
    ) -> Result<()> {
        match self.session.finish(&self.store, &d.job, made) {
            Ok(c) => {
                self.committed(c);
                if let Some((parent, path)) = d.unlink {
                    self.unlinked(parent, path);
                }
                Ok(())
            }
            Err(e) => {
                self.session.abandon(d.before);
                self.perms_due.clear();
                for (ino, parent, name, listed) in d.saved {
                    if let Some(o) = self.open.get_mut(&ino) {
                        o.dirty = true;
                        o.wrote = true;
                    }
                    if listed {
                        self.extras.entry(parent).or_default().insert(name);
                    }
                }
                // The kernel may have cached what the edit showed.
                self.all_stale = true;
                Err(e.into())
            }
        }
    }

    /// Notes that the edit left to the caller is an unlink made on `parent` (see `squash`).
    /// False when there is none: the edit was committed.
    pub(super) fn note_unlink(&mut self, parent: Oid, path: &Path) -> bool {
        match &mut self.deferred {
            Some(d) => {
                d.unlink = Some((parent, path.clone()));
                true
            }
            None => false,
        }
    }

    /// Notes that the pending edit saved an open file (see [`Deferred::saved`]).
    pub(super) fn note_saved(&mut self, ino: Ino, parent: Ino, name: &str, listed: bool) {
        if let Some(d) = &mut self.deferred {
            d.saved.push((ino, parent, name.to_owned(), listed));
        }
    }

    /// Applies edits to the view and commits them (or queues them when coalescing, or leaves
    /// the commit to the caller).
    pub(super) fn edit(&mut self, edits: Vec<Edit>, message: String) -> Result<()> {
        self.commit_deferred()?;
        let edits = self.with_resolutions(edits);
        let Some(new_root) = self.session.apply(&self.store, &edits)? else {
            return Ok(());
        };
        self.perms_before(&edits)?;
        let replacing = self.completes_unlink(&edits);
        let old = self.session.record(new_root, message);
        if self.opts.coalesce.is_some() {
            return Ok(());
        }
        if let Some((replaced, parent)) = replacing {
            match self.commit_replacing(replaced, parent) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => log::debug!("completing the unlink's commit: {e}"),
            }
        }
        if self.defer
            && let Some(job) = self.session.job()
        {
            self.deferred = Some(Deferred {
                job,
                before: old,
                saved: Vec::new(),
                unlink: None,
            });
            return Ok(());
        }
        if let Err(e) = self.commit_pending() {
            self.session.abandon(old);
            self.perms_due.clear();
            return Err(e);
        }
        Ok(())
    }

    /// Makes the commit left to the caller now, under the lock (another edit comes first).
    fn commit_deferred(&mut self) -> Result<()> {
        if let Some(d) = self.deferred.take() {
            let made = d.run(&self.store);
            self.finish_deferred(d, made)?;
        }
        Ok(())
    }

    /// Commits queued edits, if any.
    pub fn commit_pending(&mut self) -> Result<()> {
        if self.deferred.is_some() {
            return self.commit_deferred();
        }
        if let Some(c) = self.session.commit(&self.store)? {
            self.committed(c);
        }
        Ok(())
    }

    /// What a commit means for the rest of the state.
    fn committed(&mut self, c: crate::store::Committed) {
        self.perms_after_commit();
        self.base_time = self.commit_time(c.base);
        self.new_commit = true;
        // Merged with another writer's commit: the kernel saw none of its changes.
        self.all_stale |= c.merged;
    }

    /// Bases the view on a commit: its tree, and its time for the mtimes of what is unchanged.
    pub(super) fn set_base(&mut self, commit: Oid) -> Result<()> {
        self.session.rebase(&self.store, commit)?;
        self.base_time = self.commit_time(commit);
        Ok(())
    }

    /// Commits coalesced edits once they have been quiet long enough.
    pub fn tick(&mut self) -> Result<()> {
        if let Some(quiet) = self.opts.coalesce
            && self.session.due(quiet)
        {
            self.commit_pending()?;
        }
        Ok(())
    }

    /// Follows commits made by other writers (everything the kernel cached is then stale:
    /// see [`State::take_inval`]).
    pub fn follow_head(&mut self) -> Result<()> {
        self.refresh_perms();
        let Some(head) = self.session.follow(&self.store)? else {
            return Ok(());
        };
        self.base_time = self.commit_time(head);
        self.new_commit = true;
        self.all_stale = true;
        Ok(())
    }
}
