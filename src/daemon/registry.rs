//! The registry of running mounts: one small JSON file per mount in `$XDG_RUNTIME_DIR/valfs/`
//! (or `$TMPDIR/valfs-UID`), written by the daemon and read by `valfs umount` and
//! `valfs status`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a running daemon says about its mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub pid: i32,
    pub mountpoint: String,
    pub repo: String,
    pub branch: String,
    /// Edits made in the mount that are not committed yet (while coalescing).
    pub pending_edits: usize,
    /// Files open for writing whose new text is not saved yet.
    pub unsaved_files: usize,
}

impl Entry {
    /// How the pending state reads in `valfs status`.
    pub fn pending(&self) -> String {
        let mut parts = Vec::new();
        if self.pending_edits > 0 {
            parts.push(format!(
                "{} edit{} waiting to be committed",
                self.pending_edits,
                plural(self.pending_edits)
            ));
        }
        if self.unsaved_files > 0 {
            parts.push(format!(
                "{} file{} open with unsaved writes",
                self.unsaved_files,
                plural(self.unsaved_files)
            ));
        }
        if parts.is_empty() {
            "nothing (every change is committed)".into()
        } else {
            parts.join(", ")
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Where running mounts record themselves.
pub fn dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("valfs"),
        None => std::env::temp_dir().join(format!("valfs-{}", crate::sys::uid())),
    }
}

/// The registry file of a mountpoint: its absolute path with `/` escaped.
pub fn file(mountpoint: &Path) -> PathBuf {
    dir().join(
        canonical(mountpoint)
            .to_string_lossy()
            .replace('%', "%25")
            .replace('/', "%2F"),
    )
}

/// Reads the entry of a mountpoint, if a daemon registered one.
pub fn read(mountpoint: &Path) -> Option<Entry> {
    read_file(&file(mountpoint))
}

fn read_file(path: &Path) -> Option<Entry> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Every registered entry, with its file.
pub fn all() -> Vec<(PathBuf, Entry)> {
    let Ok(rd) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Entry)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with(".log") && !name.ends_with(".tmp")
        })
        .filter_map(|p| read_file(&p).map(|e| (p, e)))
        .collect();
    out.sort_by(|a, b| a.1.mountpoint.cmp(&b.1.mountpoint));
    out
}

/// A daemon's entry, kept up to date while it runs and removed by [`Registration::close`].
pub struct Registration {
    path: PathBuf,
    entry: Entry,
    closed: bool,
}

impl Registration {
    pub fn new(entry: Entry) -> Registration {
        let path = file(Path::new(&entry.mountpoint));
        let reg = Registration {
            path,
            entry,
            closed: false,
        };
        if let Err(e) = reg.write() {
            log::warn!("cannot register the mount in {}: {e}", dir().display());
        }
        reg
    }

    /// Publishes the pending state when it changed.
    pub fn set_pending(&mut self, edits: usize, files: usize) {
        if self.closed || (self.entry.pending_edits, self.entry.unsaved_files) == (edits, files) {
            return;
        }
        self.entry.pending_edits = edits;
        self.entry.unsaved_files = files;
        if let Err(e) = self.write() {
            log::debug!("updating the registry: {e}");
        }
    }

    /// Removes the entry (only our own: a new daemon may have taken the mountpoint over).
    pub fn close(&mut self) {
        self.closed = true;
        if read_file(&self.path).is_some_and(|e| e.pid == self.entry.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Writes the entry whole (to a temporary name, then renamed), so a reader never sees a
    /// half-written file.
    fn write(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(dir())?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let text = serde_json::to_string(&self.entry).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Where a `--daemon` mount logs: beside its registry entry.
pub fn log_file(mountpoint: &Path) -> PathBuf {
    let mut p = file(mountpoint).into_os_string();
    p.push(".log");
    PathBuf::from(p)
}

/// One line of /proc/self/mountinfo: the mountpoint, the filesystem type and the source.
#[derive(Clone, Debug, PartialEq)]
pub struct MountInfo {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// The mounts this process sees.
pub fn mounts() -> Vec<MountInfo> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mountpoint = unescape(left.split(' ').nth(4)?);
            let mut r = right.split(' ');
            let fstype = unescape(r.next()?);
            let source = unescape(r.next()?);
            Some(MountInfo {
                mountpoint: PathBuf::from(mountpoint),
                fstype,
                source,
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A path with symbolic links resolved, as /proc/self/mountinfo shows it; also for a stale
/// mount, which cannot itself be resolved (its parent can).
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    }
}

/// Whether a path is a mount point (per /proc/self/mountinfo), live or stale.
pub fn is_mounted(path: &Path) -> bool {
    let canon = canonical(path);
    mounts().iter().any(|m| m.mountpoint == canon)
}

/// Whether a path is a mount whose daemon is gone ("Transport endpoint is not connected").
pub fn is_stale(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mountpoint_type_and_source() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - fuse valfs:/r.git rw,user_id=0\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/a b"));
        assert_eq!(m[0].fstype, "fuse");
        assert_eq!(m[0].source, "valfs:/r.git");
        assert_eq!(m[1].fstype, "proc");
    }

    #[test]
    fn pending_state_reads_plainly() {
        let mut e = Entry::default();
        assert_eq!(e.pending(), "nothing (every change is committed)");
        e.pending_edits = 3;
        e.unsaved_files = 1;
        assert_eq!(
            e.pending(),
            "3 edits waiting to be committed, 1 file open with unsaved writes"
        );
    }
}
