//! The git store: a value as trees and blobs on a branch, edits as commits.
//!
//! Layout (docs/FORMAT.md): a collection is a tree holding a `.valfs` marker blob (its kind,
//! plus the full keys of any shortened long names) and one entry per key or element; a scalar
//! is a blob holding its canonical text and a newline. Edits rewrite only the changed entries
//! and their ancestor trees. The branch moves only by compare-and-swap; when another writer
//! moved it, the edit is merged onto the new head (see [`merge`]). A merge's conflicts are
//! recorded in the root tree beside the value (see [`conflicts`]).

pub mod cache;
pub mod conflicts;
mod edit;
mod history;
mod import;
mod layout;
pub mod merge;
pub mod meta;
pub mod remote;
mod restore;
mod session;
mod tree_edit;
mod trust;
mod versions;
pub mod watch;

pub use conflicts::{CONFLICTS, Conflict, ConflictKind};
pub use edit::{Edit, depth_below};
/// Object ids, as the layers above name commits, trees and blobs.
pub use git2::Oid;
pub use history::{Change, LogEntry};
pub use layout::{Child, Dir, Node, SPLIT_OVER, parse_index};
pub use merge::{MergeOutcome, Merged, merge_recording};
pub use session::{Committed, Job, Session};
pub use versions::HistoryIndex;

use crate::codec::{CodecError, Format};
use git2::{ErrorCode, Repository, Signature};
use std::path::{Path as FsPath, PathBuf};

fn open_repo(path: &FsPath) -> Result<Repository> {
    Repository::open_bare(path)
        .or_else(|_| Repository::open(path))
        .map_err(|_| StoreError::NoRepository(path.display().to_string()))
}

/// The branch used when none is named.
pub const DEFAULT_BRANCH: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}: no such key")]
    NotFound(String),
    #[error("{0}: not a collection")]
    NotADirectory(String),
    #[error("{0}: is a collection")]
    IsADirectory(String),
    #[error("{0}: already exists")]
    Exists(String),
    #[error("{0}: collection not empty")]
    NotEmpty(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid operation: {0}")]
    Invalid(String),
    #[error("{0}: no valfs repository there (run `valfs init`)")]
    NoRepository(String),
    #[error("unknown revision {0:?}")]
    UnknownRevision(String),
    #[error("{1}: branch {0:?} has no commits")]
    NoHead(String, String),
    #[error("the branch kept moving: gave up after {0} attempts")]
    Contended(usize),
    #[error(
        "{0} exists: another git process is moving the branch, or one died doing it \
         (remove the file if no git or valfs process is running)"
    )]
    Locked(String),
    #[error(
        "{0}: a git repository with a work tree, not a valfs store (valfs writes only to the \
         bare repositories it makes; --adopt to use this one anyway)"
    )]
    WorkTree(String),
    #[error("{path}: {branch:?} is not a valfs branch ({why}; --adopt to use it anyway)")]
    NotValfsBranch {
        branch: String,
        path: String,
        why: String,
    },
    #[error("{0}: {1} (`valfs init` makes a new store where nothing is, or in an empty directory)")]
    InitTarget(String, String),
    #[error("repository is damaged: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a commit waits for another writer's ref lock before it gives up (a live writer
/// holds it for milliseconds; one still there after this was left by a process that died).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// An open store: one repository, one branch.
pub struct Store {
    repo: Repository,
    path: PathBuf,
    branch: String,
    format: Format,
    /// Parsed collection markers (most collections share a handful of marker blobs), so that
    /// libgit2 need not cache blobs at all (see [`Store::bound_cache`]).
    markers: std::cell::RefCell<std::collections::HashMap<Oid, layout::Marker>>,
    /// libgit2's cached bytes (counted for the whole process) when this handle was opened.
    cache_floor: isize,
    bound_calls: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("branch", &self.branch)
            .finish()
    }
}

impl Store {
    /// Creates a bare repository holding an empty value of the given format on `branch`.
    /// Initialising an existing store is an error that changes nothing, and so is a path that
    /// holds anything but an empty directory (an existing project must not get a bare
    /// repository's files scattered among its own).
    pub fn init(path: &FsPath, format: Format, branch: &str) -> Result<Store> {
        if Repository::open_bare(path).is_ok() {
            return Err(StoreError::Exists(path.display().to_string()));
        }
        trust::check_init_target(path)?;
        let repo = Repository::init_opts(
            path,
            git2::RepositoryInitOptions::new()
                .bare(true)
                .initial_head(branch)
                .mkpath(true),
        )?;
        {
            let mut config = repo.config()?;
            config.set_str("valfs.format", format.name())?;
            // Bare repositories keep no reflog by default; `main@{2}` and recovery need one.
            config.set_bool("core.logAllRefUpdates", true)?;
        }
        let store = Store::from_repo(repo, path, branch)?;
        let root = store.write_value(&crate::value::Value::Map(Default::default()))?;
        store.commit_tree(root.oid(), None, "init")?;
        Ok(store)
    }

    /// Opens an existing repository, whoever made it: for handles on a store already checked.
    /// A user's command opens with [`Store::open_checked`].
    pub fn open(path: &FsPath, branch: &str) -> Result<Store> {
        Store::from_repo(open_repo(path)?, path, branch)
    }

    /// Takes a fresh repository handle: libgit2's object cache and its maps of the packs
    /// (resident pages, after a walk) go with the old one.
    pub fn reopen(&mut self) -> Result<()> {
        self.repo = open_repo(&self.path)?;
        self.markers.borrow_mut().clear();
        self.cache_floor = crate::sys::cached_git_bytes();
        Ok(())
    }

    /// Empties libgit2's object cache (by reopening) once this handle's share grew past its
    /// budget (see [`cache`]). libgit2 bounds the cache itself, but it evicts by scanning its table from
    /// the start: once a walk keeps the cache full, every object stored scans further (a fifth
    /// of the daemon's time in a `grep -r` over a big document). Emptying it at once costs
    /// only the misses that follow.
    pub fn bound_cache(&mut self) {
        // Looked at every 16th call: most operations read a few objects at most.
        self.bound_calls = self.bound_calls.wrapping_add(1);
        if self.bound_calls.is_multiple_of(16)
            && crate::sys::cached_git_bytes() - self.cache_floor > cache::HANDLE_BUDGET
            && let Err(e) = self.reopen()
        {
            log::debug!("reopening the repository: {e}");
        }
    }

    /// Opens the store, creating it (as JSON) when nothing is there yet.
    ///
    /// Several processes may do this at once on first use: the store is built in a scratch
    /// directory beside `path` and renamed into place, so the others see either nothing or a
    /// complete store, and whoever loses the race opens the winner's.
    pub fn open_or_init(path: &FsPath, branch: &str) -> Result<Store> {
        let exists = |p: &FsPath| p.join("HEAD").exists() || p.join(".git").exists();
        if !exists(path) {
            static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let scratch = path.with_file_name(format!(
                ".{name}.{}-{}.tmp",
                std::process::id(),
                SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let built = Store::init(&scratch, Format::Json, branch)
                .map(drop)
                .and_then(|()| Ok(std::fs::rename(&scratch, path)?));
            if built.is_err() {
                let _ = std::fs::remove_dir_all(&scratch);
                if !exists(path) {
                    built?;
                }
            }
        }
        Store::open(path, branch)
    }

    fn from_repo(repo: Repository, path: &FsPath, branch: &str) -> Result<Store> {
        if git2::Branch::name_is_valid(branch).ok() != Some(true) {
            return Err(StoreError::InvalidName(format!("branch {branch:?}")));
        }
        let format = match repo.config()?.get_string("valfs.format") {
            Ok(name) => Format::from_name(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown valfs.format {name:?}")))?,
            Err(_) => Format::Json,
        };
        Ok(Store {
            repo,
            path: path.to_path_buf(),
            branch: branch.to_owned(),
            format,
            markers: Default::default(),
            cache_floor: crate::sys::cached_git_bytes(),
            bound_calls: 0,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn path(&self) -> &FsPath {
        &self.path
    }

    /// The repository itself, for tests and tools that inspect it: the layers above store go
    /// through its methods (fs never touches git).
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    fn refname(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The commit the branch points at, if it has one.
    pub fn head(&self) -> Result<Option<Oid>> {
        match self.repo.refname_to_id(&self.refname()) {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The branch head, which must exist.
    pub fn head_commit(&self) -> Result<Oid> {
        self.head()?
            .ok_or_else(|| StoreError::NoHead(self.branch.clone(), self.path.display().to_string()))
    }

    /// A commit's time, in seconds since the epoch (its committer's).
    pub fn commit_time(&self, commit: Oid) -> Result<i64> {
        Ok(self.repo.find_commit(commit)?.time().seconds())
    }

    /// The root tree of a commit.
    pub fn commit_root(&self, commit: Oid) -> Result<Oid> {
        Ok(self.repo.find_commit(commit)?.tree_id())
    }

    fn signature(&self) -> Result<Signature<'static>> {
        match self.repo.signature() {
            Ok(sig) => Ok(sig),
            Err(_) => Ok(Signature::now("valfs", "valfs@localhost")?),
        }
    }

    /// Commits `tree` on top of `parent` in place of the head `replaced` (whose parent is
    /// `parent`), moving the branch from `replaced` to it by compare-and-swap: a save that
    /// completes the change the head began (an unlink, then the same name written: `mv` from
    /// another filesystem) is one commit. Returns `Ok(None)` if the branch was no longer at
    /// `replaced`; the replaced commit stays in the reflog.
    pub fn commit_replacing(
        &self,
        replaced: Oid,
        parent: Oid,
        tree: Oid,
        message: &str,
    ) -> Result<Option<Oid>> {
        // Only the commit made on `parent` is replaced: one merged onto another writer's commit
        // has that commit as its parent, which must stay in the history.
        if self.repo.find_commit(replaced)?.parent_id(0).ok() != Some(parent) {
            return Ok(None);
        }
        let sig = self.signature()?;
        let tree_obj = self.repo.find_tree(tree)?;
        let parent_obj = self.repo.find_commit(parent)?;
        // The two together changed nothing: the branch goes back to before them.
        let commit = if parent_obj.tree_id() == tree {
            parent
        } else {
            self.repo
                .commit(None, &sig, &sig, message, &tree_obj, &[&parent_obj])?
        };
        let log = format!(
            "valfs: {} (completes the commit before)",
            message.lines().next().unwrap_or("")
        );
        let moved = self
            .repo
            .reference_matching(&self.refname(), commit, true, replaced, &log);
        if !swapped(moved)? {
            return Ok(None);
        }
        log::info!(
            "commit {} {} (in place of {})",
            &commit.to_string()[..7],
            message.lines().next().unwrap_or(""),
            &replaced.to_string()[..7]
        );
        Ok(Some(commit))
    }

    /// Commits `tree` on top of `parent` and moves the branch from `parent` to it by
    /// compare-and-swap. Returns `Ok(None)` if the branch was no longer at `parent`.
    fn commit_tree(&self, tree: Oid, parent: Option<Oid>, message: &str) -> Result<Option<Oid>> {
        let sig = self.signature()?;
        let tree_obj = self.repo.find_tree(tree)?;
        let parent_obj = parent.map(|p| self.repo.find_commit(p)).transpose()?;
        let parents: Vec<&git2::Commit<'_>> = parent_obj.iter().collect();
        let commit = self
            .repo
            .commit(None, &sig, &sig, message, &tree_obj, &parents)?;
        let log = format!("valfs: {}", message.lines().next().unwrap_or(""));
        let moved = match parent {
            Some(p) => self
                .repo
                .reference_matching(&self.refname(), commit, true, p, &log),
            None => self.repo.reference(&self.refname(), commit, false, &log),
        };
        Ok(swapped(moved)?.then_some(commit))
    }

    /// Applies edits to the branch head as one commit. Returns the new commit, or `None` if
    /// the edits changed nothing. If another writer moves the branch meanwhile, the change is
    /// merged onto its head (see [`merge`]) and the swap retried.
    pub fn apply(&self, edits: &[Edit], message: &str) -> Result<Option<Oid>> {
        let head = self.head_commit()?;
        let base = self.commit_root(head)?;
        let ours = self.apply_to_tree(base, edits)?;
        self.commit_onto(head, base, ours, message)
    }

    /// Commits the root tree `ours`, computed from `base` (the root of commit `head`), onto the
    /// branch; merges with whatever the branch holds when it moved on since `head`. That merge
    /// keeps this save's version of a conflicted entry and records the conflict in the commit
    /// (see [`conflicts`]); the other writer's elements inserted at the same place come first.
    pub fn commit_onto(
        &self,
        head: Oid,
        base: Oid,
        ours: Oid,
        message: &str,
    ) -> Result<Option<Oid>> {
        const ATTEMPTS: usize = 100;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut parent = head;
        let mut tree = ours;
        for attempt in 0..ATTEMPTS {
            self.wait_unlocked(deadline)?;
            if tree == self.commit_root(parent)? {
                return Ok(None);
            }
            if let Some(commit) = self.commit_tree(tree, Some(parent), message)? {
                log::info!(
                    "commit {} {}",
                    &commit.to_string()[..7],
                    message.lines().next().unwrap_or("")
                );
                return Ok(Some(commit));
            }
            // The branch moved underneath: merge our change onto its new head.
            parent = self.head_commit()?;
            let theirs = self.commit_root(parent)?;
            tree =
                merge::merge_roots(self, Some(base), ours, theirs, merge::Order::TheirsFirst)?.tree;
            std::thread::sleep(std::time::Duration::from_micros(
                200 * (attempt as u64 % 10 + 1),
            ));
        }
        if self.ref_lock().exists() {
            return Err(StoreError::Locked(self.ref_lock().display().to_string()));
        }
        Err(StoreError::Contended(ATTEMPTS))
    }

    /// The lock file git and libgit2 create beside the branch's ref while they move it.
    fn ref_lock(&self) -> PathBuf {
        self.repo.path().join(format!("{}.lock", self.refname()))
    }

    /// Removes the branch's ref lock if it is stale. A writer holds the lock for milliseconds,
    /// so a lock still there and unchanged after `grace` was left by a process that died while
    /// moving the branch (a daemon killed mid-commit); left alone, it would fail every save.
    /// Returns whether a lock was removed.
    pub fn clear_stale_lock(&self, grace: std::time::Duration) -> Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let lock = self.ref_lock();
        let stamp = |m: &std::fs::Metadata| (m.ino(), m.mtime(), m.mtime_nsec(), m.len());
        let Ok(first) = std::fs::metadata(&lock) else {
            return Ok(false);
        };
        let mut seen = stamp(&first);
        let mut since = std::time::Instant::now();
        while since.elapsed() < grace {
            std::thread::sleep(std::time::Duration::from_millis(50));
            match std::fs::metadata(&lock) {
                Err(_) => return Ok(false),
                Ok(m) if stamp(&m) != seen => {
                    seen = stamp(&m);
                    since = std::time::Instant::now();
                }
                Ok(_) => {}
            }
        }
        match std::fs::remove_file(&lock) {
            Ok(()) => {
                log::warn!(
                    "removed the stale lock {} (left by a writer that died mid-commit)",
                    lock.display()
                );
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the whole value with the tree of `tree` as a new commit (used by revert). The
    /// head's open conflicts stay open (and those recorded in `tree` do not come back).
    pub fn commit_root_tree(&self, tree: Oid, message: &str) -> Result<Option<Oid>> {
        const ATTEMPTS: usize = 100;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        for _ in 0..ATTEMPTS {
            self.wait_unlocked(deadline)?;
            let head = self.head_commit()?;
            let tree = conflicts::keep_reserved(self, tree, self.commit_root(head)?)?;
            if self.commit_root(head)? == tree {
                return Ok(None);
            }
            if let Some(c) = self.commit_tree(tree, Some(head), message)? {
                log::info!("commit {} {}", &c.to_string()[..7], message);
                return Ok(Some(c));
            }
        }
        Err(StoreError::Contended(ATTEMPTS))
    }

    /// Waits while the branch's ref lock exists (a writer holds it for milliseconds), so that
    /// no commit object is written for a swap that cannot happen; a lock still there at
    /// `deadline` was left by a process that died: a clear error, the branch untouched.
    fn wait_unlocked(&self, deadline: std::time::Instant) -> Result<()> {
        while self.ref_lock().exists() {
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Locked(self.ref_lock().display().to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    /// Flushes the repository's files to disk (objects, refs, reflog).
    pub fn sync(&self) -> Result<()> {
        crate::sys::syncfs(&self.path)?;
        Ok(())
    }
}

/// Whether a compare-and-swap of the branch's ref happened: `false` when another writer moved
/// the branch or holds its lock (the caller merges or waits), an error for anything else.
fn swapped(moved: std::result::Result<git2::Reference<'_>, git2::Error>) -> Result<bool> {
    match moved {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::Modified | ErrorCode::Locked | ErrorCode::Exists
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Where the embedded default store and named stores live: `$XDG_DATA_HOME/valfs/`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("valfs");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/valfs")
}

/// The path of the embedded default store, or of the store called `name`.
pub fn named_store(name: &str) -> PathBuf {
    data_dir().join(format!("{name}.git"))
}
