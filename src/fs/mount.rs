//! Mounting: what to mount and how (one value, built by the command line from `valfs mount` or
//! mount(8)'s `valfs SOURCE MOUNTPOINT -o OPTIONS`), the FUSE session that serves it, the
//! daemon's background work on the mounted filesystem, and taking a FUSE mount down.

use super::scratch::Scratch;
use super::{FsError, Options, State, ValFs};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The log levels when `RUST_LOG` says none: warnings, and only errors from fuser itself.
pub const LOG_FILTER: &str = "warn,fuser=error";

/// A mount: the store and branch, the mountpoint, and the filesystem's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MountConfig {
    /// The repository holding the value.
    pub repo: PathBuf,
    /// Create the store if missing (the embedded default store and named stores).
    pub create: bool,
    /// Mount a repository or branch valfs did not make (see [`crate::store::Store::check_ours`]).
    pub adopt: bool,
    pub branch: String,
    pub mountpoint: PathBuf,
    /// Refuse every change.
    pub read_only: bool,
    /// Let other users in (their access is checked against the modes shown).
    pub allow_other: bool,
    /// Owner of every entry, new ones included (default: the mounting user).
    pub uid: Option<u32>,
    /// Group of every entry, new ones included (default: the mounting user's group).
    pub gid: Option<u32>,
    /// Permission bits to clear (default: the process umask).
    pub umask: Option<u16>,
    /// Batch commit points that come within this much quiet into one commit.
    pub coalesce: Option<Duration>,
    /// Globs of further names kept as scratch files.
    pub scratch: Vec<String>,
    /// Generic mount flags for the kernel (`noexec`, `nosuid`, ...).
    pub kernel_flags: Vec<String>,
    /// Sync with the store's remotes this often, and soon after local saves.
    pub sync: Option<Duration>,
    /// Serve the mount from a detached child, started with these arguments (after the program
    /// name) to run this mount again in the foreground, and return once it is usable.
    pub detach: Option<Vec<OsString>>,
}

impl MountConfig {
    /// A read-write mount of `branch` of the existing repository `repo` on `mountpoint`, served
    /// in the foreground, with every setting at its default.
    pub fn new(repo: PathBuf, branch: &str, mountpoint: PathBuf) -> MountConfig {
        MountConfig {
            repo,
            create: false,
            adopt: false,
            branch: branch.to_owned(),
            mountpoint,
            read_only: false,
            allow_other: false,
            uid: None,
            gid: None,
            umask: None,
            coalesce: None,
            scratch: Vec::new(),
            kernel_flags: Vec::new(),
            sync: None,
            detach: None,
        }
    }

    /// The filesystem's options; an owner, group or umask not given is this process's.
    pub fn fs_options(&self) -> Options {
        Options {
            scratch: Scratch::new(&self.scratch),
            coalesce: self.coalesce,
            read_only: self.read_only,
            owner_forced: self.uid.is_some() || self.gid.is_some(),
            uid: self.uid.unwrap_or_else(crate::sys::uid),
            gid: self.gid.unwrap_or_else(crate::sys::gid),
            umask: self.umask.unwrap_or_else(crate::sys::umask),
        }
    }

    /// The repository's absolute path (as given if it has none): the mount's name.
    pub fn absolute_repo(&self) -> PathBuf {
        std::path::absolute(&self.repo).unwrap_or_else(|_| self.repo.clone())
    }
}

/// A mounted filesystem, served by [`Mounted::run`] until it is unmounted.
pub struct Mounted {
    fs: ValFs,
    session: fuser::Session<ValFs>,
    mountpoint: PathBuf,
}

/// Mounts `state` as `config` says, on the mountpoint with its links resolved, named after the
/// repository (`valfs:/abs/repo.git`, type `fuse.valfs` in the mount table).
pub fn mount(config: &MountConfig, state: State) -> io::Result<Mounted> {
    let mountpoint = config
        .mountpoint
        .canonicalize()
        .unwrap_or_else(|_| config.mountpoint.clone());
    let fsname = format!("valfs:{}", config.absolute_repo().display());
    let fs = ValFs::new(state);
    let mut cfg = ValFs::config(config.read_only, config.allow_other, &fsname);
    cfg.mount_options
        .extend(config.kernel_flags.iter().filter_map(|f| kernel_flag(f)));
    if crate::sys::uid() == 0 {
        // fuser mounts directly as root and passes the subtype to fusermount3 only; tell the
        // kernel too, so the mount table says `fuse.valfs` (for findmnt -t, umount -t).
        cfg.mount_options
            .push(fuser::MountOption::CUSTOM("subtype=valfs".into()));
    }
    let session = fuser::Session::new(fs.clone(), &mountpoint, &cfg).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot mount on {}: {e}", mountpoint.display()),
        )
    })?;
    fs.set_notifier(session.notifier());
    Ok(Mounted {
        fs,
        session,
        mountpoint,
    })
}

impl Mounted {
    /// The filesystem, for the daemon's threads.
    pub fn fs(&self) -> &ValFs {
        &self.fs
    }

    /// Where it is mounted (links resolved).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A handle that unmounts from another thread, ending [`Mounted::run`].
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.session.unmount_callable())
    }

    /// Serves the kernel's requests until the filesystem is unmounted.
    pub fn run(self) -> io::Result<()> {
        self.session.run()
    }
}

/// Unmounts a [`Mounted`] from another thread.
pub struct Unmounter(fuser::SessionUnmounter);

impl Unmounter {
    pub fn unmount(&mut self) -> io::Result<()> {
        self.0.unmount()
    }
}

/// The daemon's work on a mounted filesystem, each done as a writer (it may commit).
impl ValFs {
    /// Commits what is pending, then tells the kernel what that changed: processes still in a
    /// lazily detached mount see it. The last commit before an unmount.
    pub fn settle(&self) -> Result<(), FsError> {
        let inval = self.background(State::settle)?;
        self.invalidate(&inval);
        Ok(())
    }

    /// Commits coalesced edits whose quiet has come, follows other writers of the branch, and
    /// tells the kernel what changed. Returns what is pending: (edits, files).
    pub fn tick(&self) -> (usize, usize) {
        let (inval, pending) = self.background(|st| {
            if let Err(e) = st.tick() {
                log::error!("coalesced commit failed: {e}");
            }
            if let Err(e) = st.follow_head() {
                log::debug!("following the branch: {e}");
            }
            (st.take_inval(), st.pending_work())
        });
        self.invalidate(&inval);
        pending
    }
}

/// A generic mount flag for the kernel (`noexec`, `nosuid`, ...); None for another name.
fn kernel_flag(name: &str) -> Option<fuser::MountOption> {
    use fuser::MountOption as M;
    Some(match name {
        "dev" => M::Dev,
        "nodev" => M::NoDev,
        "suid" => M::Suid,
        "nosuid" => M::NoSuid,
        "exec" => M::Exec,
        "noexec" => M::NoExec,
        "atime" => M::Atime,
        "noatime" => M::NoAtime,
        "sync" => M::Sync,
        "async" => M::Async,
        "dirsync" => M::DirSync,
        _ => return None,
    })
}

/// Why a FUSE mount was not taken down.
#[derive(Debug)]
pub enum UnmountError {
    /// umount(2) failed (`EBUSY`: files are open there; `EINVAL`: nothing is mounted there).
    Refused(io::Error),
    /// umount(2) is not permitted, and fuse3's set-uid helper cannot run.
    NoHelper(io::Error),
    /// fuse3's set-uid helper ran and failed.
    HelperFailed,
}

impl UnmountError {
    /// What went wrong unmounting `mountpoint`, for the user.
    pub fn describe(&self, mountpoint: &Path) -> String {
        let mnt = mountpoint.display();
        match self {
            UnmountError::Refused(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                format!("{mnt}: busy (files are open there; close them, or leave the directory)")
            }
            UnmountError::Refused(e) => format!("umount {mnt}: {e}"),
            UnmountError::NoHelper(e) => format!(
                "umount {mnt}: not permitted, and fusermount3 (package fuse3) cannot run: {e}"
            ),
            UnmountError::HelperFailed => format!("fusermount3 -u {mnt} failed"),
        }
    }
}

/// Takes the FUSE mount on `mountpoint` down (with `lazy`, detaches it even while in use).
/// Where umount(2) is not permitted (not root), fuse3's set-uid helper unmounts what this user
/// mounted.
pub fn unmount_path(mountpoint: &Path, lazy: bool) -> Result<(), UnmountError> {
    match crate::sys::umount(mountpoint, lazy) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let mut cmd = std::process::Command::new("fusermount3");
            cmd.arg("-u");
            if lazy {
                cmd.arg("-z");
            }
            let status = cmd
                .arg(mountpoint)
                .status()
                .map_err(UnmountError::NoHelper)?;
            if status.success() {
                Ok(())
            } else {
                Err(UnmountError::HelperFailed)
            }
        }
        Err(e) => Err(UnmountError::Refused(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_given_is_forced_and_the_rest_is_this_process() {
        let mut c = MountConfig::new("r.git".into(), "main", "m".into());
        // (The umask is set so that the test does not change the process's for a moment.)
        c.umask = Some(0o22);
        let o = c.fs_options();
        assert!(!o.owner_forced && !o.read_only);
        assert_eq!((o.uid, o.gid), (crate::sys::uid(), crate::sys::gid()));
        c.gid = Some(100);
        c.umask = Some(0o27);
        c.coalesce = Some(Duration::from_millis(500));
        let o = c.fs_options();
        assert!(o.owner_forced);
        assert_eq!((o.uid, o.gid, o.umask), (crate::sys::uid(), 100, 0o27));
        assert_eq!(o.coalesce, Some(Duration::from_millis(500)));
    }

    #[test]
    fn generic_flags_reach_the_kernel_and_other_names_do_not() {
        assert!(matches!(
            kernel_flag("noexec"),
            Some(fuser::MountOption::NoExec)
        ));
        assert!(matches!(
            kernel_flag("dirsync"),
            Some(fuser::MountOption::DirSync)
        ));
        assert!(kernel_flag("noauto").is_none());
        assert!(kernel_flag("ro").is_none());
    }

    #[test]
    fn an_unmount_refused_while_busy_says_why() {
        let busy = UnmountError::Refused(io::Error::from_raw_os_error(libc::EBUSY));
        assert!(busy.describe(Path::new("m")).starts_with("m: busy"));
        let failed = UnmountError::HelperFailed.describe(Path::new("m"));
        assert_eq!(failed, "fusermount3 -u m failed");
    }
}
