//! What to mount and how: one value, built by the command line (`valfs mount`, or mount(8)'s
//! `valfs SOURCE MOUNTPOINT -o OPTIONS`), that the daemon mounts.

use super::Options;
use super::scratch::Scratch;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
}
