//! Which repositories and branches are valfs's to write: the ones it made.
//!
//! A valfs store is a bare repository (valfs never has a work tree to keep in step), and each
//! of its branches holds a value: the head commit's root tree carries a `.valfs` marker that
//! names a collection kind (docs/FORMAT.md, "Recognising a store"). Anything else — a project's
//! checkout, a mirror of its sources, a branch pushed into a store from elsewhere — belongs to
//! someone else; the entry points (the CLI and the mount) refuse it unless the user adopts it
//! explicitly (`--adopt`, `-o adopt`). `valfs init` makes a new repository only where there is
//! nothing yet, so it never scatters a bare repository's files into an existing directory.

use super::layout::{MARKER, parse_marker};
use super::{Result, Store, StoreError};
use git2::Repository;
use std::path::Path as FsPath;

/// Why a branch is not a valfs value, for [`StoreError::NotValfsBranch`].
fn not_ours(store: &Store, why: String) -> StoreError {
    StoreError::NotValfsBranch {
        branch: store.branch.clone(),
        path: store.path.display().to_string(),
        why,
    }
}

/// Whether a repository has a work tree (opened at its top, or at its `.git` directory).
fn has_work_tree(repo: &Repository) -> bool {
    !repo.is_bare()
        || repo
            .config()
            .and_then(|c| c.get_bool("core.bare"))
            .is_ok_and(|bare| !bare)
}

impl Store {
    /// Refuses a repository or branch valfs did not make: a repository with a work tree, or a
    /// branch whose head is not a valfs value. A branch with no commits yet passes (every
    /// read and write of it fails on its own with [`StoreError::NoHead`]).
    pub fn check_ours(&self) -> Result<()> {
        if has_work_tree(&self.repo) {
            return Err(StoreError::WorkTree(self.path.display().to_string()));
        }
        let Some(head) = self.head()? else {
            return Ok(());
        };
        match self.not_a_value(head)? {
            Some(why) => Err(not_ours(self, format!("its head {why}"))),
            None => Ok(()),
        }
    }

    /// Why `commit` does not hold a valfs value (`1a2b3c4 has no .valfs marker`), or `None`
    /// when its root tree has a marker valfs writes: for a branch's head, and for what a
    /// remote's branch brings before it is taken in.
    pub(crate) fn not_a_value(&self, commit: git2::Oid) -> Result<Option<String>> {
        let short = &commit.to_string()[..7];
        let root = self.repo.find_commit(commit)?.tree()?;
        let Some(entry) = root.get_name(MARKER) else {
            return Ok(Some(format!("{short} has no {MARKER} marker")));
        };
        let marker = entry
            .to_object(&self.repo)
            .ok()
            .and_then(|o| o.into_blob().ok())
            .and_then(|b| parse_marker(b.content()).ok());
        Ok(marker
            .is_none()
            .then(|| format!("{short}'s {MARKER} marker is not one valfs writes")))
    }

    /// Opens a store for a user's command: with `adopt` false, only one valfs made (see
    /// [`Store::check_ours`]).
    pub fn open_checked(path: &FsPath, branch: &str, adopt: bool) -> Result<Store> {
        let store = Store::open(path, branch)?;
        if !adopt {
            store.check_ours()?;
        }
        Ok(store)
    }
}

/// Refuses to make a store at `path` unless nothing is there or an empty directory.
pub(super) fn check_init_target(path: &FsPath) -> Result<()> {
    let refuse = |what: &str| StoreError::InitTarget(path.display().to_string(), what.to_owned());
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
        Ok(m) if m.is_dir() => {
            if path.join(".git").exists() {
                Err(refuse("already a git repository"))
            } else if std::fs::read_dir(path)?.next().is_some() {
                Err(refuse("not empty"))
            } else {
                Ok(())
            }
        }
        Ok(_) => Err(refuse("not a directory")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    #[test]
    fn a_store_valfs_made_is_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.git");
        let store = Store::init(&path, Format::Json, "main").expect("init");
        store.check_ours().expect("ours");
        // A branch with no commits yet is left to fail where it is used.
        Store::open_checked(&path, "none", false).expect("no head yet");
    }

    #[test]
    fn init_wants_nothing_or_an_empty_directory_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        check_init_target(&dir.path().join("new")).expect("nothing there");
        check_init_target(dir.path()).expect("empty");
        std::fs::write(dir.path().join("f"), "x").expect("write");
        assert!(matches!(
            check_init_target(dir.path()),
            Err(StoreError::InitTarget(_, what)) if what == "not empty"
        ));
        assert!(matches!(
            check_init_target(&dir.path().join("f")),
            Err(StoreError::InitTarget(_, what)) if what == "not a directory"
        ));
    }
}
