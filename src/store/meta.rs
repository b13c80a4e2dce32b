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
    /// The changes the file holds (it is rewritten once they far outnumber the entries).
    lines: usize,
    /// The length of the file's whole lines when its last one was cut short (read so).
    whole: Option<u64>,
}

/// The key of a path: its names joined by `/` (the root is "").
pub(crate) fn key(path: &Path) -> String {
    path.0.join("/")
}

/// Whether `k` is `prefix` or below it.
pub(crate) fn under(k: &str, prefix: &str) -> bool {
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
        store.path().join("valfs").join(format!(
            "meta-{}",
            store.branch().replace('%', "%25").replace('/', "%2F")
        ))
    }

    /// Reads the entries of the store's branch (none when there is no file yet).
    pub fn open(store: &Store) -> Result<Perms> {
        let mut p = Perms {
            file: Perms::file_of(store),
            entries: BTreeMap::new(),
            seen: None,
            lines: 0,
            whole: None,
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
        let (entries, lines) = replay(&text).map_err(|line| {
            super::StoreError::Corrupt(format!("{}: bad line {line:?}", self.file.display()))
        })?;
        self.entries = entries;
        self.lines = lines;
        // A last line cut short (a crash, a full disk): where the whole lines end.
        self.whole = (!text.is_empty() && !text.ends_with('\n'))
            .then(|| text.rfind('\n').map_or(0, |i| i as u64 + 1));
        self.seen = seen;
        Ok(())
    }

    /// Lays `perm` over what is set on `path`.
    pub fn set(&mut self, path: &Path, perm: Perm) -> Result<()> {
        let k = key(path);
        self.change(|entries| {
            let old = entries.get(&k).copied().unwrap_or_default();
            let now = old.with(perm);
            (now != old || !entries.contains_key(&k)).then(|| Op::Set(k.clone(), now))
        })
    }

    /// Copies the entries of `from` and below to `to`, replacing what was set at `to` and
    /// below (the first half of a move: the source's go once the move is committed).
    pub fn copy(&mut self, from: &Path, to: &Path) -> Result<()> {
        let (from, to) = (key(from), key(to));
        if from == to {
            return Ok(());
        }
        self.change(|entries| {
            (has_under(entries, &from) || has_under(entries, &to))
                .then(|| Op::Copy(from.clone(), to.clone()))
        })
    }

    /// Drops the entries of `path` and below.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        let k = key(path);
        self.change(|entries| has_under(entries, &k).then(|| Op::Remove(k.clone())))
    }

    /// After element `path` left its sequence: drops its entries and moves those of the later
    /// elements down by one, as their indices did.
    pub fn remove_element(&mut self, path: &Path) -> Result<()> {
        let Some(last) = path.0.last() else {
            return Ok(());
        };
        if super::parse_index(last).is_none() {
            return self.remove(path);
        }
        let k = key(path);
        self.change(|entries| {
            let parent = k.rsplit_once('/').map_or("", |(p, _)| p);
            has_under(entries, parent).then(|| Op::RemoveElement(k.clone()))
        })
    }

    /// After an element was inserted into its sequence at `path`: the entries of the elements
    /// from there on move up by one, as their indices did.
    pub fn insert_element(&mut self, path: &Path) -> Result<()> {
        let Some(last) = path.0.last() else {
            return Ok(());
        };
        if super::parse_index(last).is_none() {
            return Ok(());
        }
        let k = key(path);
        self.change(|entries| {
            let parent = k.rsplit_once('/').map_or("", |(p, _)| p);
            has_under(entries, parent).then(|| Op::InsertElement(k.clone()))
        })
    }

    /// Drops the entries whose path the value does not hold (left by a crash between a
    /// change's commit and its entries' update).
    pub fn prune(&mut self, exists: impl Fn(&Path) -> bool) -> Result<usize> {
        // The root ("") always exists; dropping it would drop everything below it.
        let gone: Vec<Path> = self
            .entries
            .keys()
            .filter(|k| !k.is_empty())
            .map(|k| Path(k.split('/').map(str::to_owned).collect()))
            .filter(|p| !exists(p))
            .collect();
        for p in &gone {
            self.remove(p)?;
        }
        Ok(gone.len())
    }

    /// Makes one change under the file's lock, on top of what the file holds now: `f` says
    /// what it is (`None`: nothing to do). It is appended to the file as one line before this
    /// returns, so a killed process never loses it (a power loss: the mount's `fsync` syncs
    /// the filesystem); the file is written afresh once most of its lines are history.
    fn change(&mut self, f: impl Fn(&BTreeMap<String, Perm>) -> Option<Op>) -> Result<()> {
        if self.entries.is_empty() && self.seen.is_none() && f(&self.entries).is_none() {
            // Nothing was ever set, and this sets nothing: no lock, no file (the common case).
            return Ok(());
        }
        let dir = self.file.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir)?;
        let lock = crate::sys::FileLock::take(&beside(&self.file, ".lock"))?;
        self.refresh()?;
        let Some(op) = f(&self.entries) else {
            return Ok(());
        };
        apply(&mut self.entries, &op);
        // A line cut short ends the file: cut it off before appending, or the next line would
        // be joined to it.
        if let Some(end) = self.whole.take() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.file)?
                .set_len(end)?;
        }
        if self.lines > 2 * self.entries.len() + 256 {
            self.compact()?;
        } else {
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.file)?;
            let mut text = String::new();
            if out.metadata()?.len() == 0 {
                text.push_str(HEADER);
            }
            text.push_str(&op.line());
            if let Err(e) = out.write_all(text.as_bytes()) {
                // Part of the line may be there: the next change reads the file again.
                self.seen = None;
                return Err(e.into());
            }
            self.lines += 1;
        }
        self.seen = identity(&self.file);
        drop(lock);
        Ok(())
    }

    /// Writes the entries as a fresh file (synced, then renamed over the old one).
    fn compact(&mut self) -> Result<()> {
        let mut text = String::from(HEADER);
        for (k, p) in &self.entries {
            text.push_str(&Op::Set(k.clone(), *p).line());
        }
        let tmp = beside(&self.file, ".tmp");
        {
            let mut out = std::fs::File::create(&tmp)?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &self.file)?;
        if let Some(dir) = self.file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.lines = self.entries.len();
        Ok(())
    }
}

/// One change, as a line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// What is set on a path now (replaces its entry; nothing set removes it).
    Set(String, Perm),
    /// A path and what is below it go.
    Remove(String),
    /// A subtree's entries are copied to another path, replacing what was there.
    Copy(String, String),
    /// An element left its sequence: the later elements' entries move down by one.
    RemoveElement(String),
    /// An element was inserted: the entries of the elements from its index on move up by one.
    InsertElement(String),
}

/// `file` with `suffix` appended to its name (`meta-v1.x` -> `meta-v1.x.lock`: never replacing
/// an extension, which a branch name may look like it has).
fn beside(file: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn quoted(k: &str) -> String {
    serde_json::Value::String(k.to_owned()).to_string()
}

/// A JSON string at the start of `s`, and where it ends.
fn json_string(s: &str) -> Option<(String, usize)> {
    let mut de = serde_json::Deserializer::from_str(s).into_iter::<String>();
    let v = de.next()?.ok()?;
    Some((v, de.byte_offset()))
}

/// `s` as one JSON string and nothing else.
fn only_string(s: &str) -> Option<String> {
    let (v, at) = json_string(s)?;
    s[at..].is_empty().then_some(v)
}

impl Op {
    fn line(&self) -> String {
        match self {
            Op::Set(k, p) => {
                let opt = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
                let mode = p.mode.map_or("-".to_owned(), |m| format!("{m:04o}"));
                format!("{mode} {} {} {}\n", opt(p.uid), opt(p.gid), quoted(k))
            }
            Op::Remove(k) => format!("rm {}\n", quoted(k)),
            Op::Copy(a, b) => format!("cp {} {}\n", quoted(a), quoted(b)),
            Op::RemoveElement(k) => format!("rmel {}\n", quoted(k)),
            Op::InsertElement(k) => format!("insel {}\n", quoted(k)),
        }
    }

    fn parse(line: &str) -> Option<Op> {
        if let Some(rest) = line.strip_prefix("rm ") {
            return Some(Op::Remove(only_string(rest)?));
        }
        if let Some(rest) = line.strip_prefix("rmel ") {
            return Some(Op::RemoveElement(only_string(rest)?));
        }
        if let Some(rest) = line.strip_prefix("insel ") {
            return Some(Op::InsertElement(only_string(rest)?));
        }
        if let Some(rest) = line.strip_prefix("cp ") {
            let (a, at) = json_string(rest)?;
            let b = only_string(rest[at..].strip_prefix(' ')?)?;
            return Some(Op::Copy(a, b));
        }
        let mut parts = line.splitn(4, ' ');
        let (mode, uid, gid, path) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let num = |s: &str| -> Option<Option<u32>> {
            if s == "-" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        let mode = if mode == "-" {
            None
        } else {
            Some(u16::from_str_radix(mode, 8).ok()?)
        };
        Some(Op::Set(
            only_string(path)?,
            Perm {
                mode,
                uid: num(uid)?,
                gid: num(gid)?,
            },
        ))
    }
}

fn has_under(entries: &BTreeMap<String, Perm>, k: &str) -> bool {
    entries
        .range(k.to_owned()..)
        .next()
        .is_some_and(|(e, _)| under(e, k))
}

fn apply(entries: &mut BTreeMap<String, Perm>, op: &Op) {
    match op {
        Op::Set(k, p) => {
            if p.is_empty() {
                entries.remove(k);
            } else {
                entries.insert(k.clone(), *p);
            }
        }
        Op::Remove(k) => entries.retain(|e, _| !under(e, k)),
        Op::Copy(from, to) => {
            let moved: Vec<(String, Perm)> = entries
                .iter()
                .filter(|(k, _)| under(k, from))
                .map(|(k, p)| (format!("{to}{}", &k[from.len()..]), *p))
                .collect();
            entries.retain(|k, _| !under(k, to) || under(k, from));
            entries.extend(moved);
        }
        Op::InsertElement(k) => shift(entries, k, Shift::Up),
        Op::RemoveElement(k) => shift(entries, k, Shift::Down),
    }
}

enum Shift {
    /// An element was inserted at the index: it and the later ones move up.
    Up,
    /// The element at the index left: its entries go, the later ones move down.
    Down,
}

/// Moves the entries of the elements from the index `k` ends in on, as the indices moved.
fn shift(entries: &mut BTreeMap<String, Perm>, k: &str, how: Shift) {
    let (parent, last) = k.rsplit_once('/').unwrap_or(("", k));
    let Some(index) = super::parse_index(last) else {
        if let Shift::Down = how {
            entries.retain(|e, _| !under(e, k));
        }
        return;
    };
    let prefix = if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    };
    for (e, p) in std::mem::take(entries) {
        let moved = e.strip_prefix(&prefix).and_then(|rest| {
            let (first, tail) = rest
                .split_once('/')
                .map_or((rest, None), |(f, t)| (f, Some(t)));
            let i = super::parse_index(first)?;
            (i >= index).then_some((i, tail))
        });
        let to = match (moved, &how) {
            (None, _) => Some(e),
            (Some((i, _)), Shift::Down) if i == index => None,
            (Some((i, tail)), _) => {
                let i = match how {
                    Shift::Up => i + 1,
                    Shift::Down => i - 1,
                };
                let tail = tail.map_or(String::new(), |t| format!("/{t}"));
                Some(format!("{prefix}{i}{tail}"))
            }
        };
        if let Some(to) = to {
            entries.insert(to, p);
        }
    }
}

/// The entries a file's text holds, and its number of lines after the header; `Err(line)`
/// names the first line that is not a change. A last line cut short (a crash mid-append) is
/// left out: the change it was never returned.
fn replay(text: &str) -> std::result::Result<(BTreeMap<String, Perm>, usize), String> {
    let mut entries = BTreeMap::new();
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        None => return Ok((entries, 0)),
        Some(h) if h == HEADER => {}
        Some(h) => return Err(h.to_owned()),
    }
    let mut n = 0;
    for line in lines {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let op = Op::parse(line).ok_or_else(|| line.to_owned())?;
        apply(&mut entries, &op);
        n += 1;
    }
    Ok((entries, n))
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
            lines: 0,
            whole: None,
        };
        (dir, perms)
    }

    fn again(p: &Perms) -> Perms {
        let mut q = Perms {
            file: p.file.clone(),
            entries: BTreeMap::new(),
            seen: None,
            lines: 0,
            whole: None,
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
            lines: 0,
            whole: None,
        };
        assert!(q.reload().is_err());
    }

    /// Appends the start of an `rm "a"` line, as a crash in the middle of a write leaves it.
    fn tear(t: &Perms) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&t.file)
            .expect("open");
        f.write_all(b"rm \"a").expect("torn line");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_left_out() {
        let (_d, mut t) = perms();
        t.set(&p("a"), SECRET).expect("set");
        tear(&t);
        assert_eq!(again(&t).get(&p("a")), Some(SECRET));
    }

    #[test]
    fn each_change_is_one_line_and_the_file_is_rewritten_when_mostly_history() {
        let (_d, mut t) = perms();
        t.set(&p("keep"), SECRET).expect("set");
        for i in 0..300 {
            t.set(&p(&format!("tmp/{i}")), SECRET).expect("set");
            t.remove(&p(&format!("tmp/{i}"))).expect("remove");
        }
        let text = std::fs::read_to_string(&t.file).expect("read");
        assert!(text.lines().count() < 300, "{} lines", text.lines().count());
        let q = again(&t);
        assert_eq!(q.entries.keys().collect::<Vec<_>>(), ["keep"]);
        // Names with spaces, quotes and newlines read back.
        t.set(&p("a b/\"q\"\n"), SECRET).expect("set");
        t.copy(&p("a b"), &p("c d")).expect("copy");
        assert_eq!(again(&t).get(&p("c d/\"q\"\n")), Some(SECRET));
    }

    #[test]
    fn inserting_an_element_moves_the_later_ones_up() {
        let (_d, mut t) = perms();
        for k in ["v/0", "v/1", "v/1/k", "v/9", "w/1"] {
            t.set(&p(k), SECRET).expect("set");
        }
        t.insert_element(&p("v/1")).expect("insert");
        let keys: Vec<String> = again(&t).entries.into_keys().collect();
        assert_eq!(keys, ["v/0", "v/10", "v/2", "v/2/k", "w/1"]);
    }

    #[test]
    fn prune_never_drops_the_root_or_through_it_everything() {
        let (_d, mut t) = perms();
        t.set(&Path::root(), SECRET).expect("set root");
        t.set(&p("secret"), SECRET).expect("set");
        assert_eq!(t.prune(|_| true).expect("prune"), 0);
        let q = again(&t);
        assert_eq!(q.get(&Path::root()), Some(SECRET));
        assert_eq!(q.get(&p("secret")), Some(SECRET));
    }

    #[test]
    fn a_change_after_a_torn_line_is_read_back() {
        let (_d, mut t) = perms();
        t.set(&p("a"), SECRET).expect("set");
        tear(&t);
        // Another process's view: it reads the torn file, then changes something.
        let mut other = again(&t);
        other.set(&p("b"), SECRET).expect("set after the torn line");
        let q = again(&t);
        assert_eq!(
            (q.get(&p("a")), q.get(&p("b"))),
            (Some(SECRET), Some(SECRET))
        );
    }

    #[test]
    fn branch_names_that_look_like_extensions_keep_their_own_files() {
        assert_eq!(
            beside(std::path::Path::new("valfs/meta-v1.x"), ".lock"),
            PathBuf::from("valfs/meta-v1.x.lock")
        );
    }

    #[test]
    fn nothing_set_writes_nothing() {
        let (_d, mut t) = perms();
        t.remove(&p("a")).expect("remove");
        t.copy(&p("a"), &p("b")).expect("copy");
        t.remove_element(&p("v/1")).expect("remove");
        assert!(!t.file.exists());
    }
}
