//! Modes, owners and change times that users set, kept by path: the durable ones in the
//! store's [`Perms`] (they survive forgets, renames and remounts), change times in memory.
//! An inode holds a copy of what was set on it, for a file still open after its unlink.

use super::scratch_files::ScratchStat;
use super::{Edit, Ino, Options, Path, Result, State};
use crate::store::meta::{Perm, Perms, key, under as is_under};
use std::collections::HashMap;
use std::time::SystemTime;

/// Who asks for a new entry, and with what mode (`open(O_CREAT)`, `mkdir`).
#[derive(Clone, Copy, Debug)]
pub struct Creator {
    pub mode: u32,
    pub umask: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What a change to the value means for the entries set on its paths, once committed.
#[derive(Debug)]
pub(super) enum Due {
    /// Drop the entries of a path (a removal, the source of a move).
    Remove(Path),
    /// Drop the entries of an element and move the later elements' down.
    RemoveElement(Path),
    /// Move the entries from an inserted element's index on up, then set its own.
    InsertElement(Path, Perm),
}

/// The in-memory half: change times by path.
#[derive(Debug, Default)]
pub(super) struct Ctimes(HashMap<String, SystemTime>);

impl Ctimes {
    fn moved(&mut self, from: &str, to: &str) {
        let keys: Vec<String> = self
            .0
            .keys()
            .filter(|k| is_under(k, from) || is_under(k, to))
            .cloned()
            .collect();
        let mut carried = Vec::new();
        for k in keys {
            if let Some(t) = self.0.remove(&k)
                && is_under(&k, from)
            {
                carried.push((format!("{to}{}", &k[from.len()..]), t));
            }
        }
        self.0.extend(carried);
    }

    fn removed(&mut self, path: &str) {
        if !self.0.is_empty() {
            self.0.retain(|k, _| !is_under(k, path));
        }
    }
}

/// What a new entry records: the mode it was asked for less the caller's umask, and its
/// creator as owner, where they differ from what the mount shows by default (and the owner
/// only when the mount does not force one).
pub fn created(opts: &Options, who: Creator, is_dir: bool) -> Perm {
    let mode = (who.mode & !who.umask & 0o7777) as u16;
    let default = (if is_dir { 0o777 } else { 0o666 }) & !opts.umask & 0o777;
    Perm {
        mode: (mode != default).then_some(mode),
        uid: (!opts.owner_forced && who.uid != opts.uid).then_some(who.uid),
        gid: (!opts.owner_forced && who.gid != opts.gid).then_some(who.gid),
    }
}

impl State {
    /// Whether an inode is a file created in a vector's gap, not inserted yet.
    pub(super) fn inserting(&self, ino: Ino) -> bool {
        self.open.get(&ino).is_some_and(|o| o.insert)
    }

    /// A file created in a vector's gap keeps what it was created with on its inode: its path
    /// still names the element after it until the insert is saved.
    pub(super) fn gap_created(&mut self, ino: Ino, who: Creator) {
        let perm = created(&self.opts, who, false);
        if let Some(m) = self.table.meta_mut(ino) {
            (m.mode, m.uid, m.gid) = (perm.mode, perm.uid, perm.gid);
        }
    }

    /// The insert of a file created in a gap is about to be committed at `path`: once it is,
    /// the later elements' entries move up and its own go at `path`.
    pub(super) fn gap_saved(&mut self, ino: Ino, path: &Path) {
        let own = self.perm_of(ino);
        self.perms_due.push(Due::InsertElement(path.clone(), own));
    }

    /// What was set on a live inode's path (or on the inode, once unlinked).
    pub(super) fn perm_of(&mut self, ino: Ino) -> Perm {
        if self.table.get(ino).is_some_and(|i| i.scratch.is_some()) {
            match self.scratch_stat(ino) {
                Ok(s) => return self.shown(ino, Some(s)).0,
                Err(_) => return self.own_perm(ino),
            }
        }
        self.shown(ino, None).0
    }

    /// What the inode itself holds of what was set on it.
    fn own_perm(&self, ino: Ino) -> Perm {
        self.table.get(ino).map_or(Perm::default(), |i| Perm {
            mode: i.meta.mode,
            uid: i.meta.uid,
            gid: i.meta.gid,
        })
    }

    /// Lays `perm` over what the inode itself holds.
    fn keep_on_inode(&mut self, ino: Ino, perm: Perm) {
        if let Some(m) = self.table.meta_mut(ino) {
            m.mode = perm.mode.or(m.mode);
            m.uid = perm.uid.or(m.uid);
            m.gid = perm.gid.or(m.gid);
        }
    }

    /// What getattr shows of what was set on a live inode: its modes and owners (a scratch
    /// file's from `scratch`, its real file's attributes), and its change time, by one path.
    pub(super) fn shown(
        &mut self,
        ino: Ino,
        scratch: Option<ScratchStat>,
    ) -> (Perm, Option<SystemTime>) {
        let own = self.own_perm(ino);
        if self.inserting(ino) {
            return (own, None);
        }
        if let Some((_, _, mode, uid, gid)) = scratch {
            // Kept on its real file; owners too when the daemon may give files away.
            let root = crate::sys::uid() == 0;
            let perm = Perm {
                mode: Some(mode),
                uid: if root { Some(uid) } else { own.uid },
                gid: if root { Some(gid) } else { own.gid },
            };
            return (perm, None);
        }
        if self.perms.is_empty() && self.ctimes.0.is_empty() {
            return (own, None);
        }
        let Ok(path) = self.store_path(ino) else {
            return (own, None);
        };
        let perm = if self.perms.is_empty() {
            own
        } else {
            self.perms.get(&path).unwrap_or_default()
        };
        (perm, self.ctimes.0.get(&key(&path)).copied())
    }

    /// Records `perm` on an inode's path, durably before it returns, and on the inode.
    pub(super) fn set_perm(&mut self, ino: Ino, perm: Perm) -> Result<()> {
        self.keep_on_inode(ino, perm);
        // A scratch file's go on its real file, as its bytes do.
        let scratch = self.table.get(ino).is_some_and(|i| i.scratch.is_some());
        if scratch {
            return self.scratch_perm(ino, perm);
        }
        if perm.is_empty() || self.inserting(ino) {
            return Ok(());
        }
        let path = self.store_path(ino)?;
        self.perms.set(&path, perm)?;
        Ok(())
    }

    /// Records what a new entry at `path` was created with. A name removed and made again is
    /// a new entry: nothing of the old one's stays.
    pub(super) fn set_created(&mut self, path: &Path, who: Creator, is_dir: bool) -> Result<()> {
        self.settle_due(path)?;
        self.ctimes.removed(&key(path));
        self.perms.remove(path)?;
        let mut perm = created(&self.opts, who, is_dir);
        self.inherit_group(path, is_dir, &mut perm);
        if !perm.is_empty() {
            self.perms.set(path, perm)?;
        }
        Ok(())
    }

    /// The mode a new scratch file gets, and its owners (on its inode, and on its real file
    /// when the daemon may give files away).
    pub(super) fn scratch_created(&mut self, ino: Ino, who: Creator) -> Result<()> {
        let mut perm = created(&self.opts, who, false);
        if let Ok(path) = self.mount_path(ino) {
            let path = Path(path);
            self.inherit_group(&path, false, &mut perm);
        }
        let owners = Perm {
            mode: None,
            uid: Some(perm.uid.unwrap_or(self.opts.uid)),
            gid: Some(perm.gid.unwrap_or(self.opts.gid)),
        };
        self.set_perm(ino, owners)
    }

    /// In a folder with the set-group-ID bit, a new entry belongs to the folder's group (and
    /// a new folder gets the bit too), as on Linux filesystems: shared folders stay shared.
    fn inherit_group(&self, path: &Path, is_dir: bool, perm: &mut Perm) {
        let Some((_, parent)) = path.0.split_last() else {
            return;
        };
        let parent = self.perms.get(&Path(parent.to_vec())).unwrap_or_default();
        if parent.mode.is_none_or(|m| m & 0o2000 == 0) {
            return;
        }
        let gid = parent.gid.unwrap_or(self.opts.gid);
        // The mount's own group is what an entry shows when nothing is recorded.
        perm.gid = (gid != self.opts.gid).then_some(gid);
        if is_dir {
            let default = 0o777 & !self.opts.umask & 0o777;
            perm.mode = Some(perm.mode.unwrap_or(default) | 0o2000);
        }
    }

    /// The mode a new entry gets from its creator.
    pub(super) fn created_mode(&self, who: Creator, is_dir: bool) -> u16 {
        let default = (if is_dir { 0o777 } else { 0o666 }) & !self.opts.umask & 0o777;
        created(&self.opts, who, is_dir).mode.unwrap_or(default)
    }

    /// A scratch file or an uncommitted one becomes the key at `to`: what was set on it
    /// replaces what was set there.
    pub(super) fn perms_onto_key(&mut self, src: Ino, to: &Path) -> Result<()> {
        self.settle_due(to)?;
        let scratch = self.table.get(src).is_some_and(|i| i.scratch.is_some());
        let from = if scratch {
            None
        } else {
            self.store_path(src).ok()
        };
        if let Some(from) = from {
            self.perms.copy(&from, to)?;
            self.ctimes.moved(&key(&from), &key(to));
            if &from != to {
                self.perms.remove(&from)?;
            }
            return Ok(());
        }
        let mut own = self.perm_of(src);
        let default = 0o666 & !self.opts.umask & 0o777;
        own.mode = own.mode.filter(|&m| m != default);
        own.uid = own.uid.filter(|&u| u != self.opts.uid);
        own.gid = own.gid.filter(|&g| g != self.opts.gid);
        self.perms.remove(to)?;
        if !own.is_empty() {
            self.perms.set(to, own)?;
        }
        Ok(())
    }

    /// An inode leaves its path: it keeps what was set on it (for a descriptor still open),
    /// and with `drop`, the path's entries go now (a scratch file or an uncommitted one:
    /// a committed key's go with its removal's commit).
    pub(super) fn unlink_perms(&mut self, ino: Ino, drop: bool) -> Result<()> {
        let perm = self.perm_of(ino);
        self.keep_on_inode(ino, perm);
        if drop && let Ok(path) = self.store_path(ino) {
            self.ctimes.removed(&key(&path));
            self.perms.remove(&path)?;
        }
        Ok(())
    }

    /// The entry's status changed now (chmod, chown, rename, xattrs).
    pub(super) fn touch_ctime(&mut self, ino: Ino) {
        if let Ok(path) = self.store_path(ino) {
            self.ctimes.0.insert(key(&path), SystemTime::now());
        }
    }

    /// Before edits are applied: a move's entries are copied to its target (so the target is
    /// never shown with less than was set), and what must follow the commit is noted.
    pub(super) fn perms_before(&mut self, edits: &[Edit]) -> Result<()> {
        for e in edits {
            match e {
                Edit::Move(from, to) => {
                    self.settle_due(to)?;
                    self.perms.copy(from, to)?;
                    self.ctimes.moved(&key(from), &key(to));
                    self.forget_times(from);
                    let due = self.removal(from);
                    self.perms_due.push(due);
                }
                Edit::Remove(p) => {
                    self.ctimes.removed(&key(p));
                    self.forget_times(p);
                    let due = self.removal(p);
                    self.perms_due.push(due);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A path's entry is gone: an entry made there later is new, with new times (not those
    /// the mount kept for the path, nor the mount's start for a text it had then).
    fn forget_times(&mut self, path: &Path) {
        let k = path.to_string();
        self.seen.retain(|s, _| !is_under(s, &k));
        self.seen
            .insert(k, (crate::store::Oid::ZERO_SHA1, SystemTime::now()));
    }

    fn removal(&self, path: &Path) -> Due {
        if crate::store::meta::in_sequence(&self.store, self.session.root(), path) {
            Due::RemoveElement(path.clone())
        } else {
            Due::Remove(path.clone())
        }
    }

    /// After a commit: the entries of what it removed go.
    pub(super) fn perms_after_commit(&mut self) {
        for due in std::mem::take(&mut self.perms_due) {
            self.apply_due(due);
        }
    }

    fn apply_due(&mut self, due: Due) {
        let r = match &due {
            Due::Remove(p) => self.perms.remove(p),
            Due::RemoveElement(p) => self.perms.remove_element(p),
            Due::InsertElement(p, perm) => self.perms.insert_element(p).and_then(|()| {
                if perm.is_empty() {
                    Ok(())
                } else {
                    self.perms.set(p, *perm)
                }
            }),
        };
        if let Err(e) = r {
            // The commit stands; the extra entry is stricter, never looser, and goes at the
            // next mount (prune).
            log::error!("updating the modes after {due:?}: {e}");
        }
    }

    /// Before something is set at `path` or below it: a removal there still waiting for its
    /// commit (coalescing) is applied first, or it would later drop what is set now
    /// (`rm a; echo x > a`, `mv a b; mv b a` within one coalesced commit).
    pub(super) fn settle_due(&mut self, path: &Path) -> Result<()> {
        if self.perms_due.is_empty() {
            return Ok(());
        }
        let k = key(path);
        let (now, later): (Vec<Due>, Vec<Due>) = std::mem::take(&mut self.perms_due)
            .into_iter()
            .partition(|d| {
                let (Due::Remove(p) | Due::RemoveElement(p) | Due::InsertElement(p, _)) = d;
                let d = key(p);
                is_under(&d, &k) || is_under(&k, &d)
            });
        self.perms_due = later;
        for due in now {
            self.apply_due(due);
        }
        Ok(())
    }

    /// Drops entries whose path the value does not hold (at mount).
    pub(super) fn prune_perms(&mut self) {
        if self.perms.is_empty() || self.opts.read_only {
            return;
        }
        let (store, root) = (&self.store, self.session.root());
        match self.perms.prune(|p| store.node_at(root, p).is_ok()) {
            Ok(0) => {}
            Ok(n) => log::info!("dropped the modes of {n} paths the value no longer holds"),
            Err(e) => log::error!("pruning the modes: {e}"),
        }
    }

    /// Reads the modes again if another writer (the CLI) changed them: the kernel must then
    /// forget every attribute.
    pub(super) fn refresh_perms(&mut self) {
        match self.perms.refresh() {
            Ok(true) => self.all_stale = true,
            Ok(false) => {}
            Err(e) => log::error!("reading the modes: {e}"),
        }
    }
}

pub(super) fn open(store: &crate::store::Store) -> Result<Perms> {
    Ok(Perms::open(store)?)
}
