//! The FUSE adapter: the only module that names fuser. `ValFs` holds the state, the locks and
//! the kernel's caches' bookkeeping; its handlers (`handlers`) each call one state operation
//! returning `Result` and turn the result into a reply.

mod error;
mod handlers;
pub mod inode;
mod kernel;
mod mount;
pub mod scratch;
mod state;

pub use crate::store::HistoryIndex;
pub use error::{FsError, errno, save_errno};
pub use mount::{LOG_FILTER, MountConfig, Mounted, UnmountError, Unmounter, mount, unmount_path};
pub use state::{Attr, Cache, Naming, Options, Prepared, SetAttr, State, Written};

use crate::store::Store;
use fuser::{Config, Errno, INodeNo, MountOption, Notifier};
use state::Inval;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How long the kernel may cache live attributes; changes by other writers show within this
/// (and are invalidated explicitly as well).
const LIVE_TTL: Duration = Duration::from_secs(1);
/// How long the kernel may cache live names and attributes when it can be told that names
/// changed meaning (see [`ValFs::new_epoch`]): every change is then announced (new epochs,
/// and the attributes of what changed and of its ancestors), so they stay cached until then
/// and a walk over a big tree is served by the kernel the second time.
const LONG_TTL: Duration = Duration::from_secs(3600);
/// How long after a change the kernel's listings of the changed directories are dropped again.
const RELIST_AFTER: Duration = Duration::from_millis(100);
/// Versions under `.history` never change.
const FROZEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The filesystem: shared state plus the kernel notifier (set once the session exists).
#[derive(Clone)]
pub struct ValFs {
    state: Arc<Mutex<State>>,
    notifier: Arc<OnceLock<Notifier>>,
    /// The connection's device, for the notification fuser has no call for.
    device: Arc<OnceLock<Option<OwnedFd>>>,
    /// Whether the kernel takes epoch notifications (probed at the first lookup).
    epochs: Arc<OnceLock<bool>>,
    /// Whether the kernel opens directories without asking (it then caches every listing
    /// until told it changed): set at init.
    silent_opendir: Arc<std::sync::atomic::AtomicBool>,
    /// Directories whose listings are dropped again a moment later (see `start_relisting`).
    relist: Arc<OnceLock<std::sync::mpsc::Sender<Vec<inode::Ino>>>>,
    /// Invalidations sent after the reply, in order, by one worker (see `invalidate_later`).
    later: Arc<OnceLock<std::sync::mpsc::Sender<Inval>>>,
    /// Held while a file's bytes are given to the kernel (see `fill`).
    filling: Arc<Mutex<()>>,
    /// Held by the operations that may change the value, from before they lock the state
    /// until their commit is made (see `run_write`): writers serialise on the branch while
    /// readers only wait for the state. Holds the repository handle commits are made with.
    writer: Arc<Mutex<Option<Store>>>,
}

impl ValFs {
    pub fn new(state: State) -> ValFs {
        ValFs {
            state: Arc::new(Mutex::new(state)),
            notifier: Arc::new(OnceLock::new()),
            device: Arc::new(OnceLock::new()),
            epochs: Arc::new(OnceLock::new()),
            silent_opendir: Arc::default(),
            relist: Arc::new(OnceLock::new()),
            later: Arc::new(OnceLock::new()),
            filling: Arc::default(),
            writer: Arc::default(),
        }
    }

    /// Locks the state; a panic elsewhere must not take the mount down with it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_notifier(&self, n: Notifier) {
        let _ = self.notifier.set(n);
        let _ = self.device.set(kernel::fuse_device());
        self.start_relisting();
        self.start_invalidating();
    }

    /// Tells the kernel that cached names may mean other entries now: each is looked up again
    /// at its next use. Synchronous and lock-free in the kernel, so it is done before the reply
    /// of the operation that changed the names, from any handler.
    fn new_epoch(&self) -> bool {
        let Some(Some(dev)) = self.device.get() else {
            return false;
        };
        match kernel::fuse_inc_epoch(dev) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("epoch notification: {e}");
                false
            }
        }
    }

    /// Whether names can be cached for long: the kernel takes epoch notifications. Probed at the
    /// first lookup (the connection is initialized by then); without them, names in vectors are
    /// not cached at all and other names for a second.
    fn long_names(&self) -> bool {
        *self.epochs.get_or_init(|| {
            let ok = self.new_epoch();
            log::debug!("kernel epoch notifications: {ok}");
            ok
        })
    }

    /// How long the kernel may cache a name.
    fn entry_ttl(&self, a: &Attr, naming: Naming) -> &'static Duration {
        match (a.cache, naming) {
            (_, Naming::Moves) => &Duration::ZERO,
            (Cache::Frozen, _) => &FROZEN_TTL,
            _ if self.long_names() => &LONG_TTL,
            (_, Naming::Shifts) => &Duration::ZERO,
            _ => &LIVE_TTL,
        }
    }

    /// Announces a new epoch if the kernel takes them (known once the first lookup probed it).
    fn announce_epoch(&self, due: bool) {
        if due && self.epochs.get() == Some(&true) {
            self.new_epoch();
        }
    }

    /// Tells the kernel to forget cached entries and attributes (never while the state is locked).
    /// Attributes only (a negative offset) and epochs take no lock in the kernel: safe before
    /// the reply of any operation.
    pub fn invalidate(&self, inval: &Inval) {
        self.announce_epoch(inval.epoch);
        notify(&self.notifier, &self.relist, inval);
    }

    /// Starts the one worker that sends the invalidations of `invalidate_later`, in the order
    /// the operations made them.
    fn start_invalidating(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<Inval>();
        if self.later.set(tx).is_err() {
            return;
        }
        let (notifier, relist) = (Arc::clone(&self.notifier), Arc::clone(&self.relist));
        let spawned = std::thread::Builder::new()
            .name("valfs-inval".into())
            .spawn(move || {
                while let Ok(inval) = rx.recv() {
                    notify(&notifier, &relist, &inval);
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the invalidation thread: {e}");
        }
    }

    /// Drops the kernel's listings of directories once more, a moment after a change: a
    /// listing the daemon made just before the change may reach the kernel's cache after the
    /// first invalidation (the kernel fills its cache when the reader wakes up, not when the
    /// reply is written).
    fn start_relisting(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<inode::Ino>>();
        if self.relist.set(tx).is_err() {
            return;
        }
        let notifier = Arc::clone(&self.notifier);
        let spawned = std::thread::Builder::new()
            .name("valfs-relist".into())
            .spawn(move || {
                while let Ok(mut dirs) = rx.recv() {
                    std::thread::sleep(RELIST_AFTER);
                    while let Ok(more) = rx.try_recv() {
                        dirs.extend(more);
                    }
                    dirs.sort_unstable();
                    dirs.dedup();
                    let Some(n) = notifier.get() else { continue };
                    for ino in dirs {
                        if let Err(e) = n.inval_inode(INodeNo(ino), 0, 0) {
                            log::debug!("inval_inode {ino} (listing, again): {e}");
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the listing invalidation thread: {e}");
        }
    }

    /// Invalidates after the reply, on the one invalidation worker (in the order operations
    /// made them): for handlers during which the kernel holds directory locks. A new epoch
    /// needs no lock: it is announced at once, before the reply.
    fn invalidate_later(&self, mut inval: Inval) {
        self.announce_epoch(std::mem::take(&mut inval.epoch));
        if inval.is_empty() {
            return;
        }
        // Without a session (no worker yet) the kernel caches nothing.
        if let Some(tx) = self.later.get()
            && let Err(e) = tx.send(inval)
        {
            log::debug!("invalidation worker gone: {e}");
        }
    }

    /// Runs an operation that does not change the value.
    fn run<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut State) -> Result<T, FsError>,
    ) -> Result<T, Errno> {
        let mut st = self.lock();
        let r = f(&mut st).map_err(|e| {
            log::debug!("{op}: {e}");
            errno(&e)
        });
        let inval = st.take_inval();
        st.bound_git_cache();
        drop(st);
        self.invalidate(&inval);
        r
    }

    /// Runs an operation that may change the value, with the branch's writer lock. Its
    /// commit is made after it, with the state unlocked: lookups, attributes, listings and
    /// reads go on meanwhile (they see the edit as soon as it is in the view).
    fn run_write<T>(
        &self,
        op: &str,
        f: impl FnOnce(&mut State) -> Result<T, FsError>,
    ) -> Result<T, Errno> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        st.defer_commits();
        let mut r = f(&mut st);
        if let Some(d) = st.take_deferred() {
            let made = match writer_store(&mut writer, st.store()) {
                Ok(store) => {
                    drop(st);
                    let made = d.run(store);
                    st = self.lock();
                    made
                }
                // No handle of its own: made under the lock, as before.
                Err(_) => d.run(st.store()),
            };
            let finished = st.finish_deferred(d, made);
            r = r.and_then(|v| finished.map(|()| v));
        }
        let r = r.map_err(|e| {
            log::debug!("{op}: {e}");
            errno(&e)
        });
        let inval = st.take_inval();
        st.bound_git_cache();
        drop(st);
        drop(writer);
        self.invalidate(&inval);
        r
    }

    /// Runs `f` on the state as a writer (see `run_write`), committing at once: for the
    /// daemon's own work (following the branch, coalesced commits, the last commit).
    pub fn background<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut self.lock())
    }

    /// Gives a file's bytes to the kernel's page cache (never while the state is locked: the
    /// kernel may wait on pages a pending READ holds). True when the pages hold them and the
    /// open may keep them: nothing changed the file meanwhile.
    ///
    /// One fill at a time, and none while another runs: a store waits for pages that a
    /// reader's pending READ holds, and a handler thread must stay free to answer it. Being
    /// alone also keeps an old open's bytes from landing after a newer open's: the bytes are
    /// checked to be still the file's before the store as well as after it.
    fn fill(&self, ino: INodeNo, fill: &state::Fill) -> bool {
        let Some(n) = self.notifier.get() else {
            return false;
        };
        let Ok(_alone) = self.filling.try_lock() else {
            return false;
        };
        if !self.lock().still_filled(ino.0, fill) {
            return false;
        }
        if let Err(e) = n.store(ino, 0, &fill.data) {
            log::debug!("store {}: {e}", ino.0);
            return false;
        }
        self.lock().still_filled(ino.0, fill)
    }

    /// How long the kernel may cache these attributes.
    fn attr_ttl(&self, a: &Attr) -> &'static Duration {
        match a.cache {
            Cache::Frozen => &FROZEN_TTL,
            Cache::Announced if self.long_names() => &LONG_TTL,
            Cache::Announced | Cache::Short => &LIVE_TTL,
        }
    }

    /// The mount options for fuser.
    pub fn config(read_only: bool, allow_other: bool, fsname: &str) -> Config {
        let mut cfg = Config::default();
        cfg.mount_options = vec![
            MountOption::FSName(fsname.to_owned()),
            MountOption::Subtype("valfs".into()),
        ];
        if read_only {
            cfg.mount_options.push(MountOption::RO);
        }
        if allow_other {
            cfg.acl = fuser::SessionACL::All;
            cfg.mount_options.push(MountOption::DefaultPermissions);
        }
        // Readers go on while writers wait for the branch: more threads than writers.
        cfg.n_threads = Some(8);
        cfg
    }
}

/// The writer's own handle of the mount's repository, opened at the first commit.
fn writer_store<'a>(slot: &'a mut Option<Store>, mount: &Store) -> crate::store::Result<&'a Store> {
    if slot.is_none() {
        *slot = Some(Store::open(mount.path(), mount.branch())?);
    }
    slot.as_ref()
        .ok_or_else(|| crate::store::StoreError::Invalid("no repository handle".into()))
}

/// Tells the kernel to forget what `inval` names (entries, pages, attributes, listings), and
/// queues the listings to be dropped once more a moment later.
fn notify(
    notifier: &OnceLock<Notifier>,
    relist: &OnceLock<std::sync::mpsc::Sender<Vec<inode::Ino>>>,
    inval: &Inval,
) {
    let Some(n) = notifier.get() else { return };
    for (parent, name) in &inval.entries {
        if let Err(e) = n.inval_entry(INodeNo(*parent), OsStr::new(name)) {
            log::debug!("inval_entry {parent}/{name}: {e}");
        }
    }
    for ino in &inval.inodes {
        if let Err(e) = n.inval_inode(INodeNo(*ino), 0, 0) {
            log::debug!("inval_inode {ino}: {e}");
        }
    }
    for ino in &inval.attrs {
        if let Err(e) = n.inval_inode(INodeNo(*ino), -1, 0) {
            log::debug!("inval_inode {ino} (attributes): {e}");
        }
    }
    for ino in &inval.listings {
        if let Err(e) = n.inval_inode(INodeNo(*ino), 0, 0) {
            log::debug!("inval_inode {ino} (listing): {e}");
        }
    }
    if !inval.listings.is_empty()
        && let Some(again) = relist.get()
    {
        let _ = again.send(inval.listings.clone());
    }
}
