//! `valfs mount --sync SECONDS` (`-o sync=SECONDS`): the mount syncs the branch with every
//! remote of the store by itself — every SECONDS, and soon after a local save — on a thread and
//! a repository handle of its own. Saves never wait for it: a sync moves the branch by the same
//! compare-and-swap as any other writer, and what it brings in reaches the mount as another
//! writer's commit does (the mount follows the branch within a fraction of a second). A remote
//! that is down is logged once when it starts failing and once when it works again. At
//! unmount, one last sync with a short timeout; if it fails, the local commits are still all
//! in the store, for the next sync.

use crate::store::Store;
use crate::store::remote::{self, Op, Options, Pulled, Pushed, Report, Turn};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long after a local save the sync comes (saves in a burst go in one sync).
const SOON: Duration = Duration::from_secs(1);
/// How often the loop looks at the branch.
const LOOK: Duration = Duration::from_millis(250);
/// The limit of each git run in the loop, and of the last sync at unmount.
const LOOP_TIMEOUT: Duration = Duration::from_secs(20);
const LAST_TIMEOUT: Duration = Duration::from_secs(5);

/// The running sync loop.
pub struct Syncer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    repo: PathBuf,
    branch: String,
}

/// Starts the loop (it syncs at once, then every `every` and soon after local saves).
pub fn start(repo: PathBuf, branch: String, every: Duration) -> Syncer {
    let stop = Arc::new(AtomicBool::new(false));
    let (r, b, s) = (repo.clone(), branch.clone(), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("valfs-sync".into())
        .spawn(move || match Store::open(&r, &b) {
            Ok(store) => run(&store, every, &s),
            Err(e) => log::error!("sync: cannot open the store: {e}"),
        })
        .map_err(|e| log::error!("cannot start the sync thread: {e}"))
        .ok();
    Syncer {
        stop,
        thread,
        repo,
        branch,
    }
}

impl Syncer {
    /// Stops the loop, then syncs one last time with a short timeout.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match Store::open(&self.repo, &self.branch) {
            Ok(store) => {
                log::info!("syncing one last time");
                sync_all(&store, LAST_TIMEOUT, &mut Vec::new());
            }
            Err(e) => log::error!("last sync: cannot open the store: {e}"),
        }
    }
}

fn run(store: &Store, every: Duration, stop: &AtomicBool) {
    let mut last = None::<Instant>;
    let mut seen = store.head_commit().ok();
    let mut changed: Option<Instant> = None;
    let mut failing = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let head = store.head_commit().ok();
        if head != seen {
            seen = head;
            changed = Some(Instant::now());
        }
        let periodic = last.is_none_or(|t| t.elapsed() >= every);
        let after_save = changed.is_some_and(|t| t.elapsed() >= SOON);
        if periodic || after_save {
            sync_all(store, LOOP_TIMEOUT, &mut failing);
            last = Some(Instant::now());
            changed = None;
            // What the sync itself committed (a merge) needs no sync of its own.
            seen = store.head_commit().ok();
        }
        std::thread::sleep(LOOK);
    }
}

/// Syncs with every remote in turn; logs an error when a remote starts failing and when it
/// works again (`failing`: the remotes failing now), not at every retry.
fn sync_all(store: &Store, timeout: Duration, failing: &mut Vec<String>) {
    let remotes = match remote::list(store) {
        Ok(r) => r,
        Err(e) => {
            log::error!("sync: reading the remotes: {e}");
            return;
        }
    };
    let opts = Options {
        timeout: Some(timeout),
        ..Options::default()
    };
    for r in remotes {
        let (result, turn) = remote::run(store, Op::Sync, &r.name, &opts);
        match (&result, turn) {
            (Err(e), Some(Turn::Failing)) => log::error!("sync with {}: {e}", r.name),
            (Err(e), _) if !failing.contains(&r.name) => {
                log::error!("sync with {}: {e}", r.name)
            }
            (Err(e), _) => log::debug!("sync with {}: {e}", r.name),
            (Ok(report), Some(Turn::Working)) => {
                log::info!("sync with {} works again: {report}", r.name)
            }
            (Ok(report), _) if quiet(report) => log::debug!("{report}"),
            (Ok(report), _) => log::info!("{report}"),
        }
        failing.retain(|n| n != &r.name);
        if result.is_err() {
            failing.push(r.name);
        }
    }
}

/// A sync that brought nothing in and sent nothing out.
fn quiet(r: &Report) -> bool {
    matches!(r.pulled, None | Some(Pulled::UpToDate))
        && matches!(r.pushed, None | Some(Pushed::UpToDate))
}
