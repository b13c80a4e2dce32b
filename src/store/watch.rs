//! The change feed: what each commit of the branch changed, as one line a path, and a wait
//! for the branch to move that costs nothing while it does not.
//!
//! Every writer (a mount, the CLI, plain git, a sync) ends by moving the branch's ref, so the
//! feed follows the ref, not the writers: it sleeps on inotify on the directories holding the
//! ref (`refs/heads/...`, and the repository's own for `packed-refs`), and when one of them
//! changes reads the ref and walks only the commits new since the last look. Each commit is
//! told by comparing its tree with its first parent's (see [`Store::diff`]).

use super::{Result, Store};
use crate::value::{Path, Value};
use git2::Oid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// What happened at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A value was set or replaced (a scalar, or a collection with its contents).
    Write,
    /// An entry was removed.
    Rm,
    /// An empty collection was made.
    Mkdir,
    /// An entry moved (from [`Event::from`]).
    Mv,
    /// A merge commit (a sync) brought this path's change in.
    Merge,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Rm => "rm",
            Op::Mkdir => "mkdir",
            Op::Mv => "mv",
            Op::Merge => "merge",
        }
    }
}

/// One changed path of one commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub commit: Oid,
    /// The commit's time, in seconds since the epoch.
    pub time: i64,
    pub op: Op,
    pub path: Path,
    /// Where a move came from.
    pub from: Option<Path>,
}

impl Event {
    /// Whether this change touches `filter`: at it, below it, or above it (a removal or
    /// replacement of a collection holding it).
    pub fn touches(&self, filter: &Path) -> bool {
        let related = |p: &Path| p.0.starts_with(&filter.0) || filter.0.starts_with(&p.0);
        related(&self.path) || self.from.as_ref().is_some_and(related)
    }
}

/// The source and target of a commit made by a move (`mv A -> B`, as [`super::Edit::describe`]
/// writes it), when that is all its message says.
fn moved(message: &str) -> Option<(Path, Path)> {
    let rest = message.trim_end().strip_prefix("mv ")?;
    if rest.contains('\n') {
        return None;
    }
    let (a, b) = rest.split_once(" -> ")?;
    Some((Path::parse(a), Path::parse(b)))
}

impl Store {
    /// The commits of the branch after `since` up to `head`, oldest first: the first-parent
    /// chain from `head` down to the first commit `since` reaches (`git log --first-parent
    /// since..head`). Without `since`, `head`'s whole first-parent chain.
    pub fn commits_between(&self, since: Option<Oid>, head: Oid) -> Result<Vec<Oid>> {
        let mut walk = self.repo.revwalk()?;
        walk.push(head)?;
        if let Some(since) = since {
            walk.hide(since)?;
        }
        walk.simplify_first_parent()?;
        let mut out = walk.collect::<std::result::Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// What `commit` changed, one event a path, compared with its first parent. A commit
    /// without parents wrote the whole value (one `write` of the root).
    pub fn changes(&self, commit: Oid) -> Result<Vec<Event>> {
        let c = self.repo.find_commit(commit)?;
        let time = c.time().seconds();
        let event = |op, path, from| Event {
            commit,
            time,
            op,
            path,
            from,
        };
        let Ok(parent) = c.parent_id(0) else {
            return Ok(vec![event(Op::Write, Path::root(), None)]);
        };
        let message = String::from_utf8_lossy(c.message_bytes());
        if c.parent_count() == 1
            && let Some((from, to)) = moved(&message)
        {
            return Ok(vec![event(Op::Mv, to, Some(from))]);
        }
        let merge = c.parent_count() > 1;
        let changes = self.diff(self.commit_root(parent)?, c.tree_id())?;
        Ok(changes
            .into_iter()
            .map(|ch| {
                let op = match (&ch.old, &ch.new) {
                    _ if merge => Op::Merge,
                    (_, None) => Op::Rm,
                    (None, Some(v)) if is_empty_collection(v) => Op::Mkdir,
                    _ => Op::Write,
                };
                event(op, ch.path, None)
            })
            .collect())
    }
}

fn is_empty_collection(v: &Value) -> bool {
    v.is_collection() && v.node_count() <= 1
}

/// How long the fallback (no inotify) waits between looks at the ref's files.
const STAT_EVERY: Duration = Duration::from_millis(200);

/// Waits for a branch's ref to change, without looking at it while nothing happens.
pub struct RefWait {
    inotify: Option<OwnedFd>,
    /// The files whose stamps the fallback compares.
    files: Vec<std::path::PathBuf>,
    stamps: Vec<Option<(u64, i64, i64, u64)>>,
}

/// Why [`RefWait::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// Something in the ref's directories changed: read the ref again.
    Changed,
    /// The descriptor given to watch for a hang-up was hung up on.
    HungUp,
}

impl RefWait {
    /// Starts watching the ref of `store`'s branch. Set up before the ref is first read, so
    /// that no move is missed between the read and the first wait.
    pub fn new(store: &Store) -> RefWait {
        let git_dir = store.repo.path().to_path_buf();
        let refname = store.refname();
        let ref_file = git_dir.join(&refname);
        let mut dirs = vec![git_dir.clone(), git_dir.join("refs/heads")];
        if let Some(parent) = ref_file.parent()
            && !dirs.iter().any(|d| d == parent)
        {
            dirs.push(parent.to_path_buf());
        }
        let mask = libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE | libc::IN_DELETE | libc::IN_CREATE;
        let inotify = crate::sys::inotify().and_then(|fd| {
            for d in &dirs {
                // A branch in a folder (`team/x`) whose folder does not exist yet shows up as a
                // creation in `refs/heads`.
                if d.is_dir() {
                    crate::sys::inotify_watch(fd.as_fd(), d, mask)?;
                }
            }
            Ok(fd)
        });
        let inotify = match inotify {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::info!(
                    "inotify unavailable ({e}): looking at the ref every {} ms",
                    STAT_EVERY.as_millis()
                );
                None
            }
        };
        let files = vec![ref_file, git_dir.join("packed-refs")];
        let stamps = files.iter().map(|f| stamp(f)).collect();
        RefWait {
            inotify,
            files,
            stamps,
        }
    }

    /// Whether the wait sleeps on inotify (else it looks at the ref's files every 200 ms).
    pub fn uses_inotify(&self) -> bool {
        self.inotify.is_some()
    }

    /// Sleeps until the ref's directories change, or `hangup` is hung up on.
    pub fn wait(&mut self, hangup: Option<BorrowedFd<'_>>) -> std::io::Result<Woken> {
        use crate::sys::Ready;
        loop {
            let Some(fd) = &self.inotify else {
                let every = i32::try_from(STAT_EVERY.as_millis()).unwrap_or(200);
                if crate::sys::wait_readable(None, hangup, every)? == Ready::HungUp {
                    return Ok(Woken::HungUp);
                }
                let now: Vec<_> = self.files.iter().map(|f| stamp(f)).collect();
                if now != self.stamps {
                    self.stamps = now;
                    return Ok(Woken::Changed);
                }
                continue;
            };
            match crate::sys::wait_readable(Some(fd.as_fd()), hangup, -1)? {
                Ready::HungUp => return Ok(Woken::HungUp),
                Ready::TimedOut => continue,
                Ready::Readable => {
                    // The events themselves do not matter: the ref is read again.
                    let mut buf = [0u8; 4096];
                    crate::sys::read(fd.as_fd(), &mut buf)?;
                    return Ok(Woken::Changed);
                }
            }
        }
    }
}

/// A file's identity and change stamp (inode, mtime, its nanoseconds, size), if it exists.
fn stamp(path: &std::path::Path) -> Option<(u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

/// Follows the branch: calls `emit` with every change of every commit after `since` (the head
/// when `None`) in order, then with those of each commit that reaches the branch, until `emit`
/// returns `false` or `hangup` is hung up on. Each batch of commits is walked once.
pub fn follow(
    store: &mut Store,
    since: Option<Oid>,
    hangup: Option<BorrowedFd<'_>>,
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<()> {
    let mut wait = RefWait::new(store);
    let mut seen = match since {
        Some(rev) => Some(rev),
        None => store.head()?,
    };
    loop {
        if let Some(head) = store.head()?
            && Some(head) != seen
        {
            for commit in store.commits_between(seen, head)? {
                for event in store.changes(commit)? {
                    if !emit(&event) {
                        return Ok(());
                    }
                }
            }
            seen = Some(head);
            store.bound_cache();
        }
        if wait.wait(hangup)? == Woken::HungUp {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_told_by_its_message_alone() {
        assert_eq!(
            moved("mv a/b -> c"),
            Some((Path::parse("a/b"), Path::parse("c")))
        );
        assert_eq!(moved("set a"), None);
        assert_eq!(moved("2 changes\n\nmv a -> b\nset c"), None);
    }

    #[test]
    fn an_event_touches_its_path_what_is_below_and_what_is_above() {
        let e = Event {
            commit: Oid::ZERO_SHA1,
            time: 0,
            op: Op::Rm,
            path: Path::parse("users/0"),
            from: None,
        };
        assert!(e.touches(&Path::parse("users")));
        assert!(e.touches(&Path::parse("users/0/age")));
        assert!(e.touches(&Path::root()));
        assert!(!e.touches(&Path::parse("users/1")));
        assert!(!e.touches(&Path::parse("groups")));
        let mv = Event {
            op: Op::Mv,
            from: Some(Path::parse("old")),
            ..e
        };
        assert!(mv.touches(&Path::parse("old/x")));
    }
}
