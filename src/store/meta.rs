//! Modes and owners set by users, kept durably beside the value, never in its trees.
//!
//! A value's tree hash depends on the value alone, and a clone of the branch is the value; so
//! what `chmod`, `chown` or a creation under a umask set lives in a file of the repository,
//! `valfs/meta-BRANCH` (see docs/FORMAT.md), keyed by the entry's path in the value. Every
//! change is on disk (written, synced, renamed into place) before the call that made it
//! returns, so a `chmod 600` survives the kernel forgetting the inode, a remount and a daemon
//! killed right after. Moves carry their subtree's entries, removals drop them: the mount
//! copies a move's entries to the target before it commits and drops the source's after, so
//! a crash in between leaves an extra entry (stricter), never a loosened one; entries whose
//! path is not in the value are dropped when a mount starts ([`Perms::prune`]).

use super::{Result, Store};
use crate::value::Path;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// What a user set on one entry; `None` where nothing was set (the mount's default shows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perm {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Perm {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.uid.is_none() && self.gid.is_none()
    }

    /// This one with what `other` sets laid over it.
    pub fn with(self, other: Perm) -> Perm {
        Perm {
            mode: other.mode.or(self.mode),
            uid: other.uid.or(self.uid),
            gid: other.gid.or(self.gid),
        }
    }
}

const HEADER: &str = "valfs-meta 1\n";

/// The entries of one branch, as the file holds them.
#[derive(Debug)]
pub struct Perms {
    file: PathBuf,
    entries: BTreeMap<String, Perm>,
    /// The file's identity when last read or written (inode, size, mtime): another process's
    /// change shows as a new identity.
    seen: Option<(u64, u64, i128)>,
}

/// The key of a path: its names joined by `/` (the root is "").
fn key(path: &Path) -> String {
    path.0.join("/")
}

/// Whether `k` is `prefix` or below it.
fn under(k: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || k == prefix
        || (k.len() > prefix.len() && k.starts_with(prefix) && k.as_bytes()[prefix.len()] == b'/')
}

fn identity(file: &std::path::Path) -> Option<(u64, u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file).ok()?;
    Some((
        m.ino(),
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

impl Perms {
    /// The file of a store's branch.
    pub fn file_of(store: &Store) -> PathBuf {
        store
            .path()
            .join("valfs")
            .join(format!("meta-{}", store.branch().replace('/', "%2F")))
    }

    /// Reads the entries of the store's branch (none when there is no file yet).
    pub fn open(store: &Store) -> Result<Perms> {
        let mut p = Perms {
            file: Perms::file_of(store),
            entries: BTreeMap::new(),
            seen: None,
        };
        p.reload()?;
        Ok(p)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, path: &Path) -> Option<Perm> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries.get(&key(path)).copied()
    }

    /// Reads the file again if another process changed it since. Returns whether it did.
    pub fn refresh(&mut self) -> Result<bool> {
        if identity(&self.file) == self.seen {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    fn reload(&mut self) -> Result<()> {
        let seen = identity(&self.file);
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        self.entries = parse(&text).map_err(|line| {
            super::StoreError::Corrupt(format!("{}: bad line {line:?}", self.file.display()))
        })?;
        self.seen = seen;
        Ok(())
    }

    /// Lays `perm` over what is set on `path`, durably.
    pub fn set(&mut self, path: &Path, perm: Perm) -> Result<()> {
        self.change(|entries| {
            let k = key(path);
            let now = entries.get(&k).copied().unwrap_or_default().with(perm);
            entries.insert(k, now).is_none_or(|old| old != now)
        })
    }

    /// Copies the entries of `from` and below to `to`, replacing what was set at `to` and
    /// below (the first half of a move: the source's go once the move is committed).
    pub fn copy(&mut self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (key(from), key(to));
        if from == to || (!self.has_under(&from) && !self.has_under(&to)) {
            return Ok(());
        }
        self.change(|entries| {
            let moved: Vec<(String, Perm)> = entries
                .iter()
                .filter(|(k, _)| under(k, &from))
                .map(|(k, p)| (format!("{to}{}", &k[from.len()..]), *p))
                .collect();
            entries.retain(|k, _| !under(k, &to) || under(k, &from));
            entries.extend(moved);
            true
        })
    }

    /// Drops the entries of `path` and below.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        let k = key(path);
        if !self.has_under(&k) {
            return Ok(());
        }
        self.change(|entries| {
            entries.retain(|e, _| !under(e, &k));
            true
        })
    }

    /// After element `path` left its sequence: drops its entries and moves those of the later
    /// elements down by one, as their indices did.
    pub fn remove_element(&mut self, path: &Path) -> Result<()> {
        let (Some((last, parent)), true) = (path.0.split_last(), !self.entries.is_empty()) else {
            return Ok(());
        };
        let Some(index) = super::parse_index(last) else {
            return self.remove(path);
        };
        let parent = parent.join("/");
        let prefix = if parent.is_empty() {
            String::new()
        } else {
            format!("{parent}/")
        };
        let shifted = |k: &str| -> Option<Option<String>> {
            let rest = k.strip_prefix(&prefix)?;
            let (first, tail) = rest.split_once('/').map_or((rest, ""), |(f, t)| (f, t));
            let i = super::parse_index(first)?;
            if i < index {
                return None;
            }
            if i == index {
                return Some(None);
            }
            let sep = if tail.is_empty() { "" } else { "/" };
            Some(Some(format!("{prefix}{}{sep}{tail}", i - 1)))
        };
        if !self.entries.keys().any(|k| shifted(k).is_some()) {
            return Ok(());
        }
        self.change(|entries| {
            let old = std::mem::take(entries);
            for (k, p) in old {
                match shifted(&k) {
                    None => {
                        entries.insert(k, p);
                    }
                    Some(Some(to)) => {
                        entries.insert(to, p);
                    }
                    Some(None) => {}
                }
            }
            true
        })
    }

    /// Drops the entries whose path the value does not hold (left by a crash between a
    /// change's commit and its entries' update).
    pub fn prune(&mut self, exists: impl Fn(&Path) -> bool) -> Result<usize> {
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !exists(&Path(k.split('/').map(str::to_owned).collect())))
            .cloned()
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        self.change(|entries| {
            for k in &gone {
                entries.remove(k);
            }
            true
        })?;
        Ok(gone.len())
    }

    fn has_under(&self, k: &str) -> bool {
        self.entries
            .range(k.to_owned()..)
            .next()
            .is_some_and(|(e, _)| under(e, k))
    }

    /// Changes the entries under the file's lock, on top of what the file holds now, and
    /// writes them back durably when `f` says it changed something.
    fn change(&mut self, f: impl FnOnce(&mut BTreeMap<String, Perm>) -> bool) -> Result<()> {
        let dir = self.file.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir)?;
        let lock = crate::sys::FileLock::take(&self.file.with_extension("lock"))?;
        self.refresh()?;
        if !f(&mut self.entries) {
            return Ok(());
        }
        let mut text = String::from(HEADER);
        for (k, p) in &self.entries {
            text.push_str(&format_line(k, p));
        }
        let tmp = self.file.with_extension("tmp");
        {
            let mut out = std::fs::File::create(&tmp)?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &self.file)?;
        std::fs::File::open(&dir)?.sync_all()?;
        self.seen = identity(&self.file);
        drop(lock);
        Ok(())
    }
}

fn format_line(k: &str, p: &Perm) -> String {
    let opt = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
    let mode = p.mode.map_or("-".to_owned(), |m| format!("{m:04o}"));
    let path = serde_json::to_string(k).unwrap_or_default();
    format!("{mode} {} {} {path}\n", opt(p.uid), opt(p.gid))
}

/// The entries of a file's text; `Err(line)` names the first line that is not one.
fn parse(text: &str) -> std::result::Result<BTreeMap<String, Perm>, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    match lines.next() {
        None => return Ok(out),
        Some(h) if format!("{h}\n") == HEADER => {}
        Some(h) => return Err(h.to_owned()),
    }
    for line in lines {
        let bad = || line.to_owned();
        let mut parts = line.splitn(4, ' ');
        let (Some(mode), Some(uid), Some(gid), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let num = |s: &str| -> std::result::Result<Option<u32>, String> {
            if s == "-" {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad())
            }
        };
        let mode = if mode == "-" {
            None
        } else {
            Some(u16::from_str_radix(mode, 8).map_err(|_| bad())?)
        };
        let path: String = serde_json::from_str(path).map_err(|_| bad())?;
        out.insert(
            path,
            Perm {
                mode,
                uid: num(uid)?,
                gid: num(gid)?,
            },
        );
    }
    Ok(out)
}

/// Whether the entry at `path` is an element of a vector or list in the value `root` (its
/// removal then moves the later elements down).
pub fn in_sequence(store: &Store, root: git2::Oid, path: &Path) -> bool {
    path.0.split_last().is_some_and(|(_, parent)| {
        matches!(
            store.node_at(root, &Path(parent.to_vec())),
            Ok(super::Node::Dir(t)) if store.dir_kind(t).is_ok_and(|k| k.is_sequence())
        )
    })
}

/// What the CLI's `rm` and `mv` do to the entries: `before` copies a move's to its target,
/// `after` (once committed) drops the source's.
pub fn edit_before(perms: &mut Perms, edit: &super::Edit) -> Result<()> {
    if let super::Edit::Move(from, to) = edit {
        perms.copy(from, to)?;
    }
    Ok(())
}

pub fn edit_after(perms: &mut Perms, edit: &super::Edit, in_sequence: bool) -> Result<()> {
    let (super::Edit::Move(path, _) | super::Edit::Remove(path)) = edit else {
        return Ok(());
    };
    if in_sequence {
        perms.remove_element(path)
    } else {
        perms.remove(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path(
            s.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    fn perms() -> (tempfile::TempDir, Perms) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("valfs").join("meta-main");
        let perms = Perms {
            file,
            entries: BTreeMap::new(),
            seen: None,
        };
        (dir, perms)
    }

    fn again(p: &Perms) -> Perms {
        let mut q = Perms {
            file: p.file.clone(),
            entries: BTreeMap::new(),
            seen: None,
        };
        q.reload().expect("reads back");
        q
    }

    const SECRET: Perm = Perm {
        mode: Some(0o600),
        uid: Some(65534),
        gid: None,
    };

    #[test]
    fn what_is_set_is_read_back_by_another_handle() {
        let (_d, mut t) = perms();
        t.set(&p("a/secret\nname"), SECRET).expect("set");
        t.set(
            &p("a/secret\nname"),
            Perm {
                gid: Some(7),
                ..Perm::default()
            },
        )
        .expect("set");
        let want = Perm {
            gid: Some(7),
            ..SECRET
        };
        assert_eq!(again(&t).get(&p("a/secret\nname")), Some(want));
        assert_eq!(again(&t).get(&p("a")), None);
    }

    #[test]
    fn moves_carry_the_subtree_and_removals_drop_it() {
        let (_d, mut t) = perms();
        for k in ["d", "d/x", "d/x/y", "dd", "e/old"] {
            t.set(&p(k), SECRET).expect("set");
        }
        t.copy(&p("d"), &p("e")).expect("copy");
        t.remove(&p("d")).expect("remove");
        let keys: Vec<String> = again(&t).entries.into_keys().collect();
        assert_eq!(keys, ["dd", "e", "e/x", "e/x/y"]);
    }

    #[test]
    fn removing_an_element_moves_the_later_ones_down() {
        let (_d, mut t) = perms();
        for k in ["v/0", "v/1", "v/2/k", "v/10", "w/2"] {
            t.set(&p(k), SECRET).expect("set");
        }
        t.remove_element(&p("v/1")).expect("remove");
        let keys: Vec<String> = again(&t).entries.into_keys().collect();
        assert_eq!(keys, ["v/0", "v/1/k", "v/9", "w/2"]);
    }

    #[test]
    fn prune_drops_what_the_value_does_not_hold() {
        let (_d, mut t) = perms();
        t.set(&p("kept"), SECRET).expect("set");
        t.set(&p("gone"), SECRET).expect("set");
        assert_eq!(t.prune(|path| key(path) == "kept").expect("prune"), 1);
        assert_eq!(again(&t).len(), 1);
    }

    #[test]
    fn another_processes_change_is_seen_at_refresh() {
        let (_d, mut t) = perms();
        t.set(&p("a"), SECRET).expect("set");
        let mut other = again(&t);
        other.remove(&p("a")).expect("remove");
        assert!(t.refresh().expect("refresh"));
        assert_eq!(t.get(&p("a")), None);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_table() {
        let (_d, t) = perms();
        std::fs::create_dir_all(t.file.parent().expect("dir")).expect("dir");
        std::fs::write(&t.file, "valfs-meta 1\n0600 x - \"a\"\n").expect("write");
        let mut q = Perms {
            file: t.file.clone(),
            entries: BTreeMap::new(),
            seen: None,
        };
        assert!(q.reload().is_err());
    }
}
