//! Syncing a store's branch with git remotes: any bare repository reached by path, ssh://,
//! https://, git:// or a hosting service.
//!
//! Remotes are plain git remotes in the store's config (`remote.NAME.url`). Fetch and push run
//! the system `git`, so credentials and ssh behave exactly as for git. A pull fetches
//! the remote's branch into `refs/remotes/NAME/BRANCH` and brings it into the local branch by
//! compare-and-swap; a push sends the local head with a plain, fast-forward-only push (never
//! forced), and one the remote rejects because it moved on meanwhile (a race) is fetched,
//! brought in and sent again. Every ref moves atomically, so the store stays a valid
//! repository for plain git at every moment, and a failed transfer leaves the branch as it was.

mod clone;
mod git;
mod status;
mod transfer;

pub use clone::{CloneOptions, clone};
pub use status::{Failure, Op, Record, RemoteStatus, Turn};
pub use transfer::fetch;

use super::{Oid, Store, StoreError};
use crate::value::Path;
use std::fmt;
use std::time::Duration;

/// How long one git run (a fetch, a push) may take before it is stopped.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How many times a push the remote rejected because it moved on is fetched and tried again.
const PUSH_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("no remote {0:?} (`valfs remote list` shows them)")]
    NoSuchRemote(String),
    #[error("remote {0:?} already exists")]
    Exists(String),
    #[error("{0:?} is not a valid remote name")]
    InvalidName(String),
    #[error("no remotes (add one with `valfs remote add NAME URL`)")]
    NoRemotes,
    /// Git could not reach the remote, or refused: its complaint on one line.
    #[error("{remote}: {message}")]
    Transport { remote: String, message: String },
    #[error("{remote}: git {op} gave no answer within {secs} s and was stopped (see --timeout)")]
    Timeout {
        remote: String,
        op: &'static str,
        secs: u64,
    },
    #[error("{remote} has no branch {branch:?}")]
    NoBranch { remote: String, branch: String },
    #[error("{label} is not a valfs branch (its head {why}; --adopt to take it anyway)")]
    NotValfs { label: String, why: String },
    #[error(
        "{remote}: its branch has commits this store lacks (`valfs pull {remote}` or \
         `valfs sync {remote}` brings them in first)"
    )]
    Behind { remote: String },
    #[error("{remote}: push rejected: {reason}")]
    Rejected { remote: String, reason: String },
    #[error("{remote}: its branch kept moving: gave up after {attempts} pushes")]
    KeptMoving { remote: String, attempts: usize },
    #[error("cannot run git (sync needs it installed): {0}")]
    NoGit(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<git2::Error> for RemoteError {
    fn from(e: git2::Error) -> RemoteError {
        RemoteError::Store(e.into())
    }
}

impl From<std::io::Error> for RemoteError {
    fn from(e: std::io::Error) -> RemoteError {
        RemoteError::Store(e.into())
    }
}

pub type Result<T, E = RemoteError> = std::result::Result<T, E>;

/// A remote of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub url: String,
}

/// How fetches and pushes run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The limit of each git run; `None` for none.
    pub timeout: Option<Duration>,
    /// Take in a remote branch whose head is not a valfs value.
    pub adopt: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Some(DEFAULT_TIMEOUT),
            adopt: false,
        }
    }
}

/// The store's remotes, by name.
pub fn list(store: &Store) -> Result<Vec<Remote>> {
    let names = store.repo.remotes()?;
    let mut out = Vec::new();
    for name in names.iter() {
        // A name that is not UTF-8 cannot be named on the command line either.
        let Some(name) = name? else { continue };
        let remote = store.repo.find_remote(name)?;
        out.push(Remote {
            name: name.to_owned(),
            url: remote.url().unwrap_or_default().to_owned(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The remote called `name`.
pub fn find(store: &Store, name: &str) -> Result<Remote> {
    list(store)?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| RemoteError::NoSuchRemote(name.to_owned()))
}

/// Adds a remote (a relative path is kept absolute); fetching from it maps its branches to
/// `refs/remotes/NAME/*`, as `git remote add` does.
pub fn add(store: &Store, name: &str, url: &str) -> Result<Remote> {
    if !git2::Remote::is_valid_name(name) {
        return Err(RemoteError::InvalidName(name.to_owned()));
    }
    if find(store, name).is_ok() {
        return Err(RemoteError::Exists(name.to_owned()));
    }
    let url = git::kept_url(url)?;
    store.repo.remote(name, &url)?;
    Ok(Remote {
        name: name.to_owned(),
        url,
    })
}

/// Removes a remote, its remote-tracking refs and its sync records.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    find(store, name)?;
    store.repo.remote_delete(name)?;
    status::forget(store, name)?;
    Ok(())
}

/// Where the last fetch from `remote` left its copy of `branch`.
fn tracking_ref(remote: &str, branch: &str) -> String {
    format!("refs/remotes/{remote}/{branch}")
}

/// What a pull brought into the branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pulled {
    /// The remote has no such branch yet (a push creates it).
    NoBranch,
    /// The branch already holds everything the remote's has.
    UpToDate,
    /// The branch moved forward to the remote's head, which had `commits` more.
    FastForward { to: Oid, commits: usize },
    /// Both had new commits: a two-parent merge commit; each conflicted path is recorded.
    Merged { commit: Oid, conflicts: Vec<Path> },
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The remote's branch already was the local head.
    UpToDate,
    /// The remote's branch now is `commit`; `commits` new ones, when the remote's branch was
    /// known before (`None`: the push created it).
    Sent { commit: Oid, commits: Option<usize> },
}

/// What one sync, pull or push with a remote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub remote: String,
    pub pulled: Option<Pulled>,
    pub pushed: Option<Pushed>,
}

fn commits(n: usize) -> String {
    if n == 1 {
        "1 commit".into()
    } else {
        format!("{n} commits")
    }
}

fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_owned()
}

impl fmt::Display for Report {
    /// One line: `origin: pulled 2 commits (fast-forward to 1a2b3c4); pushed 1 commit (…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match &self.pulled {
            Some(Pulled::NoBranch) => parts.push("it has no such branch yet".to_owned()),
            Some(Pulled::FastForward { to, commits: n }) => parts.push(format!(
                "pulled {} (fast-forward to {})",
                commits(*n),
                short(*to)
            )),
            Some(Pulled::Merged { commit, conflicts }) => parts.push(match conflicts.len() {
                0 => format!("merged ({})", short(*commit)),
                n => format!(
                    "merged ({}) with {n} conflict{} (`valfs conflicts` lists them)",
                    short(*commit),
                    if n == 1 { "" } else { "s" }
                ),
            }),
            Some(Pulled::UpToDate) | None => {}
        }
        match &self.pushed {
            Some(Pushed::Sent { commit, commits: n }) => parts.push(match n {
                Some(n) => format!("pushed {} ({})", commits(*n), short(*commit)),
                None => format!("pushed {}", short(*commit)),
            }),
            Some(Pushed::UpToDate) | None => {}
        }
        if parts.is_empty() {
            parts.push("up to date".into());
        }
        write!(f, "{}: {}", self.remote, parts.join("; "))
    }
}

/// Runs one sync, pull or push with the remote `name` and records how it ended (see
/// [`status`]). Also says when this turned that remote from working to failing or back, so
/// that a caller retrying in a loop logs an error when it starts and when it ends.
pub fn run(store: &Store, op: Op, name: &str, opts: &Options) -> (Result<Report>, Option<Turn>) {
    let remote = match find(store, name) {
        Ok(r) => r,
        Err(e) => return (Err(e), None),
    };
    let result = match op {
        Op::Sync => transfer::sync(store, &remote, opts),
        Op::Pull => transfer::pull(store, &remote, opts).map(|pulled| Report {
            remote: remote.name.clone(),
            pulled: Some(pulled),
            pushed: None,
        }),
        Op::Push => transfer::push(store, &remote, opts),
    };
    let error = result.as_ref().err().map(ToString::to_string);
    let turn = status::record(store, &remote.name, op, error.as_deref());
    (result, turn)
}

/// Each remote's state as `valfs status` shows it: ahead/behind as of the last fetch, the last
/// sync, the last error.
pub fn status(store: &Store) -> Result<Vec<RemoteStatus>> {
    let head = store.head()?;
    let mut out = Vec::new();
    for remote in list(store)? {
        let tracking = store
            .repo
            .refname_to_id(&tracking_ref(&remote.name, store.branch()))
            .ok();
        let ahead_behind = match (head, tracking) {
            (Some(h), Some(t)) => Some(store.repo.graph_ahead_behind(h, t)?),
            _ => None,
        };
        out.push(RemoteStatus {
            record: status::read(store, &remote.name),
            name: remote.name,
            url: remote.url,
            ahead_behind,
        });
    }
    Ok(out)
}
