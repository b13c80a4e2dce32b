//! Names of editors' and tools' temporary files: usable in the mount, never part of the value,
//! and the folder that keeps them.

use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The built-in patterns (listed in README): the exact forms Vim, Emacs, nano, sed, perl,
/// rsync, GNOME, JetBrains, LibreOffice, Office, Python's tempfile, macOS, NFS and libfuse
/// make. A key that has one of these names is kept as a scratch file (a real file, never
/// lost), not in the value.
pub const BUILTIN: &[&str] = &[
    "*~",
    "*.swp",
    "*.swo",
    "*.swn",
    "*.swx",
    ".*.sw?",
    ".*.swpx",
    ".sw?",
    ".swpx",
    "4913",
    ".#*",
    "#*#",
    "sed??????",
    ".goutputstream-*",
    "*___jb_tmp___",
    "*___jb_old___",
    ".~lock.*#",
    "~$*",
    "._*",
    ".DS_Store",
    ".fuse_hidden*",
    ".nfs*",
    "XX??????",
    "*.save",
    "*.save.*",
    "tmp.??????????",
    "tmp??????",
    "tmp????????",
    ".*.??????",
];

/// A set of glob patterns (`*` and `?`).
#[derive(Clone, Debug)]
pub struct Scratch {
    patterns: Vec<String>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new(&[])
    }
}

impl Scratch {
    /// The built-in patterns plus the user's.
    pub fn new(extra: &[String]) -> Scratch {
        let mut patterns: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
        patterns.extend(extra.iter().cloned());
        Scratch { patterns }
    }

    pub fn matches(&self, name: &str) -> bool {
        is_vim_probe(name)
            || self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// Vim's permission probe: 4913, then 5036, 5159, ... in steps of 123.
fn is_vim_probe(name: &str) -> bool {
    match name.parse::<u32>() {
        Ok(n) => n >= 4913 && (n - 4913) % 123 == 0 && n < 100_000 && !name.starts_with('0'),
        Err(_) => false,
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Where scratch files live: real files in a folder of the repository
/// (`valfs/scratch-BRANCH/`), at the path they have in the mount, so that they keep any
/// bytes, survive unmount and crashes (Vim's swap files recover) and never enter the value.
/// A file unlinked while open is moved to `.orphans/` until its last handle goes.
#[derive(Debug)]
pub struct Files {
    root: PathBuf,
}

/// An orphan's folder in [`Files`]: no mount path starts with a name the mount refuses.
const ORPHANS: &str = ".valfs-orphans";

impl Files {
    pub fn new(root: PathBuf) -> Files {
        Files { root }
    }

    /// The folder of a store's branch.
    pub fn of(store: &crate::store::Store) -> Files {
        Files::new(store.path().join("valfs").join(format!(
            "scratch-{}",
            store.branch().replace('%', "%25").replace('/', "%2F")
        )))
    }

    pub fn path(&self, rel: &[String]) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(rel);
        p
    }

    /// Where the file of inode `ino` goes once unlinked while open.
    pub fn orphan_path(&self, ino: u64) -> PathBuf {
        self.root.join(ORPHANS).join(ino.to_string())
    }

    /// Refuses a path whose folders below the root are not all real folders: a scratch
    /// symlink (Emacs's locks are symlinks) must never lead a file operation out of the
    /// scratch folder, whatever a rename made of the value's folders around it.
    fn check(&self, path: &Path) -> io::Result<()> {
        let rel = path
            .strip_prefix(&self.root)
            .map_err(|_| io::Error::from_raw_os_error(libc::EXDEV))?;
        let mut dir = self.root.clone();
        let mut parts = rel.components().peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                break;
            }
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens a scratch file itself, never what a symlink there points at.
    fn open(&self, path: &Path, write: bool) -> io::Result<std::fs::File> {
        self.check(path)?;
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }

    fn parent_dirs(&self, path: &Path) -> io::Result<()> {
        self.check(path)?;
        match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
    }

    /// Makes an empty file (or a symlink to `link`) with `mode`, replacing a file that was
    /// there (never a folder: it holds the scratch files of a folder of that name).
    pub fn create(&self, path: &Path, link: Option<&[u8]>, mode: u16) -> io::Result<()> {
        self.parent_dirs(path)?;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
            Ok(_) => std::fs::remove_file(path)?,
            Err(_) => {}
        }
        match link {
            Some(target) => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path)?;
            }
            None => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .mode(u32::from(mode))
                    .open(path)?;
                f.set_permissions(std::fs::Permissions::from_mode(u32::from(mode)))?;
            }
        }
        Ok(())
    }

    pub fn read(&self, path: &Path, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let f = self.open(path, false)?;
        let mut buf = vec![0; size as usize];
        let mut got = 0;
        while got < buf.len() {
            let n = f.read_at(&mut buf[got..], offset + got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        Ok(buf)
    }

    /// Writes at `offset` (at the end with `append`); the file never grows past `max`.
    pub fn write(
        &self,
        path: &Path,
        offset: u64,
        data: &[u8],
        append: bool,
        max: u64,
    ) -> io::Result<bool> {
        let f = self.open(path, true)?;
        let at = if append { f.metadata()?.len() } else { offset };
        if at.saturating_add(data.len() as u64) > max {
            return Ok(false);
        }
        f.write_all_at(data, at)?;
        Ok(true)
    }

    pub fn set_len(&self, path: &Path, size: u64) -> io::Result<()> {
        self.open(path, true)?.set_len(size)
    }

    pub fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut self.open(path, false)?, &mut out)?;
        Ok(out)
    }

    /// Replaces the file's bytes (a key's text kept under a scratch name).
    pub fn write_all(&self, path: &Path, data: &[u8], mode: u16) -> io::Result<()> {
        self.create(path, None, mode)?;
        io::Write::write_all(&mut self.open(path, true)?, data)
    }

    pub fn readlink(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check(path)?;
        Ok(std::fs::read_link(path)?.into_os_string().into_vec())
    }

    pub fn stat(&self, path: &Path) -> io::Result<std::fs::Metadata> {
        self.check(path)?;
        std::fs::symlink_metadata(path)
    }

    pub fn chmod(&self, path: &Path, mode: u16) -> io::Result<()> {
        if self.stat(path)?.file_type().is_symlink() {
            return Ok(());
        }
        self.open(path, false)?
            .set_permissions(std::fs::Permissions::from_mode(u32::from(mode)))
    }

    pub fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        self.check(path)?;
        std::os::unix::fs::lchown(path, uid, gid)
    }

    pub fn set_times(&self, path: &Path, atime: Option<SystemTime>, mtime: Option<SystemTime>) {
        let Ok(f) = self.open(path, true) else {
            return;
        };
        let mut t = std::fs::FileTimes::new();
        if let Some(a) = atime {
            t = t.set_accessed(a);
        }
        if let Some(m) = mtime {
            t = t.set_modified(m);
        }
        if let Err(e) = f.set_times(t) {
            log::debug!("times of {}: {e}", path.display());
        }
    }

    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(from)?;
        self.parent_dirs(to)?;
        std::fs::rename(from, to)?;
        self.prune_dirs(from);
        Ok(())
    }

    pub fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(path)?;
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.prune_dirs(path);
        Ok(())
    }

    /// Removes the folders left empty above a file that went (not the root).
    fn prune_dirs(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&self.root) && *d != self.root) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Moves the files under a folder of the mount that moved.
    pub fn move_dir(&self, from: &[String], to: &[String]) {
        let (a, b) = (self.path(from), self.path(to));
        if self.check(&a).is_err() || self.check(&b).is_err() {
            return;
        }
        if !std::fs::symlink_metadata(&a).is_ok_and(|m| m.is_dir()) {
            return;
        }
        if let Err(e) = self.parent_dirs(&b).and_then(|()| std::fs::rename(&a, &b)) {
            log::error!(
                "moving scratch files {} -> {}: {e}",
                a.display(),
                b.display()
            );
        }
        self.prune_dirs(&a);
    }

    /// Removes the files of descriptors a crash left open.
    pub fn clear_orphans(&self) {
        let _ = std::fs::remove_dir_all(self.root.join(ORPHANS));
    }

    /// Every scratch file kept, by its path in the mount.
    pub fn all(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![(self.root.clone(), Vec::<String>::new())];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if rel.is_empty() && name == ORPHANS {
                    continue;
                }
                let mut r = rel.clone();
                r.push(name);
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push((e.path(), r)),
                    Ok(_) => out.push(r),
                    Err(_) => {}
                }
            }
        }
        out.sort();
        out
    }

    /// How many scratch files there are (for `valfs status`).
    pub fn count(&self) -> usize {
        self.all().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_names_are_scratch() {
        let s = Scratch::default();
        for name in [
            "name~",
            ".name.swp",
            ".name.swpx",
            ".name.swx",
            "4913",
            "5036",
            ".#name",
            "#name#",
            "sedAb12Cd",
            ".goutputstream-XYZ123",
            "name___jb_tmp___",
            "name___jb_old___",
            ".~lock.name#",
            "._name",
            ".DS_Store",
            ".fuse_hidden0001",
            ".nfs1234",
            "XXtraElf",
            "tmp.MNaVjBDFJA",
            "name.save",
            "name.save.1",
            ".name.a1B2c3",
            "tmpAbCdEf",
        ] {
            assert!(s.matches(name), "{name}");
        }
        for name in [
            "name",
            "age",
            "0",
            "12",
            "4914",
            "sed",
            ".hidden",
            "users",
            "a.swpx",
            "report.tmp",
            "XXL",
        ] {
            assert!(!s.matches(name), "{name}");
        }
    }

    #[test]
    fn user_patterns_add() {
        let s = Scratch::new(&["*.bak".into()]);
        assert!(s.matches("x.bak"));
    }
}
