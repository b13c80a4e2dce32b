//! What each remote's syncs came to: the last success of each kind and the last error, kept
//! in the repository beside the other valfs files (`valfs/sync-BRANCH.json`), and shown with
//! the ahead/behind counts by `valfs status` (and, later, by a mount).

use super::super::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The record of one remote, for one branch. Times are seconds since the epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The last full sync (pull and push) that succeeded.
    pub synced: Option<i64>,
    /// The last pull (fetch and integrate) that succeeded, alone or within a sync.
    pub pulled: Option<i64>,
    /// The last push that succeeded, alone or within a sync.
    pub pushed: Option<i64>,
    /// The last time the remote's branch was seen (fetched, or pushed to): what ahead/behind
    /// are counted against.
    pub seen: Option<i64>,
    /// The last failure, kept after later successes (its time tells).
    pub error: Option<Failure>,
    /// When the failures going on now began; `None` once an operation succeeded since.
    pub failing_since: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub time: i64,
    pub message: String,
}

/// Which operation a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Sync,
    Pull,
    Push,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct File {
    remotes: BTreeMap<String, Record>,
}

/// The file of a store's branch.
fn file_of(store: &Store, branch: &str) -> PathBuf {
    store.path().join("valfs").join(format!(
        "sync-{}.json",
        branch.replace('%', "%25").replace('/', "%2F")
    ))
}

fn load(path: &std::path::Path) -> File {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Rewrites the file under a lock (a mount's sync and the CLI may finish at once), replacing
/// it atomically so a reader never sees half of it.
fn update(store: &Store, branch: &str, change: impl FnOnce(&mut File)) -> std::io::Result<()> {
    let path = file_of(store, branch);
    let dir = path.parent().unwrap_or(store.path());
    std::fs::create_dir_all(dir)?;
    let mut lock_name = path.as_os_str().to_owned();
    lock_name.push(".lock");
    let _lock = crate::sys::FileLock::take(std::path::Path::new(&lock_name))?;
    let mut file = load(&path);
    change(&mut file);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A change between working and failing, for logging an error once when it starts and once
/// when it ends rather than at every retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// The first failure after a success (or ever).
    Failing,
    /// The first success after failures.
    Working,
}

/// Records how an operation with `remote` ended (`error`: `None` for a success): a success sets its time and ends a run of
/// failures; a failure is kept with its message. Says when this turned from working to
/// failing or back. Never fails the operation: a record that cannot be written is logged.
pub(super) fn record(store: &Store, remote: &str, op: Op, error: Option<&str>) -> Option<Turn> {
    let time = now();
    let mut turn = None;
    let written = update(store, store.branch(), |file| {
        let r = file.remotes.entry(remote.to_owned()).or_default();
        match error {
            None => {
                match op {
                    Op::Sync => {
                        r.synced = Some(time);
                        r.pulled = Some(time);
                        r.pushed = Some(time);
                    }
                    Op::Pull => r.pulled = Some(time),
                    Op::Push => r.pushed = Some(time),
                }
                if r.failing_since.take().is_some() {
                    turn = Some(Turn::Working);
                }
            }
            Some(message) => {
                r.error = Some(Failure {
                    time,
                    message: message.to_owned(),
                });
                if r.failing_since.is_none() {
                    r.failing_since = Some(time);
                    turn = Some(Turn::Failing);
                }
            }
        }
    });
    if let Err(e) = written {
        log::warn!("recording the sync with {remote}: {e}");
    }
    turn
}

/// Records that the remote's branch was just seen (fetched or pushed to).
pub(super) fn seen(store: &Store, remote: &str) {
    let time = now();
    let written = update(store, store.branch(), |file| {
        file.remotes.entry(remote.to_owned()).or_default().seen = Some(time);
    });
    if let Err(e) = written {
        log::warn!("recording the sync with {remote}: {e}");
    }
}

/// The record of `remote` on the store's branch (empty when it never synced).
pub(super) fn read(store: &Store, remote: &str) -> Record {
    load(&file_of(store, store.branch()))
        .remotes
        .remove(remote)
        .unwrap_or_default()
}

/// Drops a removed remote's records, on every branch.
pub(super) fn forget(store: &Store, remote: &str) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(store.path().join("valfs")) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(branch) = name
            .strip_prefix("sync-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let branch = branch.replace("%2F", "/").replace("%25", "%");
        update(store, &branch, |file| {
            file.remotes.remove(remote);
        })?;
    }
    Ok(())
}

/// What `valfs status` shows of one remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStatus {
    pub name: String,
    pub url: String,
    /// Commits on the branch that the remote's branch lacks, and the other way round, as of
    /// the last fetch; `None` before the first one (or when either branch has no commits).
    pub ahead_behind: Option<(usize, usize)>,
    pub record: Record,
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn utc(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::value::civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn commits(n: usize) -> String {
    if n == 1 {
        "1 commit".into()
    } else {
        format!("{n} commits")
    }
}

impl fmt::Display for RemoteStatus {
    /// A few lines: the remote and its URL, then indented: ahead/behind, the last sync, the
    /// last error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.record;
        writeln!(f, "remote {}: {}", self.name, self.url)?;
        match self.ahead_behind {
            Some((0, 0)) => write!(f, "  ahead 0, behind 0: in step")?,
            Some((a, b)) => write!(
                f,
                "  ahead {a}, behind {b}: {} to push, {} to pull",
                commits(a),
                commits(b)
            )?,
            None => write!(f, "  ahead, behind: unknown (never fetched)")?,
        }
        match r.seen {
            Some(t) => writeln!(f, " (as seen there at {})", utc(t))?,
            None => writeln!(f)?,
        }
        match r.synced {
            Some(t) => writeln!(f, "  last sync:  {}", utc(t))?,
            None => writeln!(f, "  last sync:  never")?,
        }
        match (&r.error, r.failing_since) {
            (None, _) => write!(f, "  last error: none"),
            (Some(e), Some(since)) => write!(
                f,
                "  last error: {} {} (failing since {})",
                utc(e.time),
                e.message,
                utc(since)
            ),
            (Some(e), None) => write!(
                f,
                "  last error: {} {} (it worked since)",
                utc(e.time),
                e.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    #[test]
    fn successes_and_failures_are_recorded_per_remote_and_branch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::init(&dir.path().join("s.git"), Format::Json, "a/b").expect("init");
        assert_eq!(read(&store, "origin"), Record::default());
        let turn = record(&store, "origin", Op::Pull, Some("origin: down"));
        assert_eq!(turn, Some(Turn::Failing));
        let r = read(&store, "origin");
        let since = r.failing_since.expect("failing");
        assert_eq!(
            r.error.as_ref().map(|e| e.message.as_str()),
            Some("origin: down")
        );
        assert_eq!(
            record(&store, "origin", Op::Push, Some("origin: still down")),
            None
        );
        let r = read(&store, "origin");
        assert_eq!(r.failing_since, Some(since), "a failure goes on");
        assert!(r.pushed.is_none() && r.synced.is_none());
        assert_eq!(
            record(&store, "origin", Op::Sync, None),
            Some(Turn::Working)
        );
        let r = read(&store, "origin");
        assert!(r.synced.is_some() && r.pulled == r.synced && r.pushed == r.synced);
        assert_eq!(r.failing_since, None);
        assert_eq!(
            r.error.map(|e| e.message),
            Some("origin: still down".into()),
            "the last error stays to be seen"
        );
        assert!(
            dir.path().join("s.git/valfs/sync-a%2Fb.json").exists(),
            "beside the other valfs files"
        );
        record(&store, "backup", Op::Push, None);
        forget(&store, "origin").expect("forget");
        assert_eq!(read(&store, "origin"), Record::default());
        assert!(read(&store, "backup").pushed.is_some());
    }

    #[test]
    fn the_status_of_a_remote_reads_in_a_few_lines() {
        let mut s = RemoteStatus {
            name: "origin".into(),
            url: "git://h/x.git".into(),
            ahead_behind: Some((2, 1)),
            record: Record {
                seen: Some(0),
                error: Some(Failure {
                    time: 60,
                    message: "origin: unable to connect".into(),
                }),
                failing_since: Some(60),
                ..Record::default()
            },
        };
        assert_eq!(
            s.to_string(),
            "remote origin: git://h/x.git\n  ahead 2, behind 1: 2 commits to push, 1 commit to \
             pull (as seen there at 1970-01-01T00:00:00Z)\n  last sync:  never\n  last \
             error: 1970-01-01T00:01:00Z origin: unable to connect (failing since \
             1970-01-01T00:01:00Z)"
        );
        s.ahead_behind = None;
        s.record = Record::default();
        assert!(s.to_string().contains("unknown (never fetched)"));
        assert!(s.to_string().ends_with("last error: none"));
    }
}
