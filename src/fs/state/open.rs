//! Open files as on a disk: what a descriptor keeps when its name goes away, and which bytes
//! an open file shows.
//!
//! - An **orphan** is an open file whose name went away while it was open: unlinked, renamed
//!   over, or removed by another writer. Its descriptors keep reading, writing and `fstat`ing
//!   its buffer, as on a disk they would the unlinked inode; nothing they write is ever saved
//!   (a key removed is not brought back by a descriptor that outlived it), and the buffer goes
//!   with the last descriptor. An orphan is an open file whose inode has no parent.
//! - A file **held** by `fsync` shows its buffer, not the text its save committed: that text
//!   is canonical and may read differently (`hello` is saved as `"hello"`), but the descriptor
//!   stays self-consistent (what it reads, its size, its `mmap`) until it is closed. `close`
//!   (a flush) lets go: from then on the file shows what is saved.

use super::{FsError, Ino, Inval, Obj, Place, State};

impl State {
    /// An open file whose name went away (see the module's documentation).
    pub(super) fn is_orphan(&self, ino: Ino) -> bool {
        self.open.contains_key(&ino) && self.table.get(ino).is_some_and(|i| i.parent == 0)
    }

    /// Open files whose key another writer removed become orphans: their descriptors keep
    /// the bytes they had, and a later lookup of the name (should the key come back) gets a
    /// new inode. Files with changes pending are left alone: their save re-creates the key, as
    /// any concurrent edit saved after another is applied after it.
    pub(super) fn orphan_removed(&mut self) {
        let clean: Vec<Ino> = self
            .open
            .iter()
            .filter(|(_, o)| !o.dirty)
            .map(|(&ino, _)| ino)
            .collect();
        for ino in clean {
            let Some(i) = self.table.get(ino) else {
                continue;
            };
            if i.parent == 0 || i.scratch.is_some() || i.place != Place::Live {
                continue;
            }
            let (parent, name) = (i.parent, i.name.to_owned());
            if !matches!(self.resolve(ino), Err(FsError::NotFound)) {
                continue;
            }
            // The modes set on the key stay with the descriptors, as an unlink keeps them.
            if let Err(e) = self.unlink_perms(ino, false) {
                log::debug!("keeping the modes of {name}: {e}");
            }
            self.table.detach(parent, &name);
        }
    }

    /// After `fsync` saved an open file: its buffer stays what the inode shows (see the
    /// module's documentation), so the kernel keeps its pages; only the attributes (the
    /// mtime) change.
    pub(super) fn hold(&mut self, ino: Ino, saved: bool, inval: &mut Inval) {
        let Some(o) = self.open.get_mut(&ino) else {
            return;
        };
        if saved {
            o.held = true;
        }
        if o.held {
            inval.inodes.retain(|&i| i != ino);
            inval.attrs.push(ino);
        }
    }

    /// At a flush (`close`): an open file held by `fsync` shows what is saved again; the
    /// kernel's pages and size of it must go.
    pub(super) fn let_go(&mut self, ino: Ino, inval: &mut Inval) {
        if let Some(o) = self.open.get_mut(&ino)
            && std::mem::take(&mut o.held)
        {
            inval.inodes.push(ino);
        }
    }

    /// A new file whose first save was refused (at its last release): it leaves nothing
    /// behind, neither its name in the listing nor the modes it was created with. Called once
    /// its buffer is gone.
    pub(super) fn drop_refused(&mut self, ino: Ino, inval: &mut Inval) {
        if !matches!(self.resolve(ino), Err(FsError::NotFound)) {
            return;
        }
        let Some(i) = self.table.get(ino) else {
            return;
        };
        if i.parent == 0 || i.scratch.is_some() {
            return;
        }
        let (parent, name) = (i.parent, i.name.to_owned());
        if let Err(e) = self.unlink_perms(ino, true) {
            log::debug!("dropping the modes of {name}: {e}");
        }
        self.table.detach(parent, &name);
        if let Some(e) = self.extras.get_mut(&parent) {
            e.remove(&name);
        }
        inval.entries.push((parent, name));
        self.touched.push(parent);
    }

    /// What a file open with nothing pending shows: its buffer when it is an orphan or held,
    /// else the saved text (`None`).
    pub(super) fn shows_buffer(&self, ino: Ino) -> bool {
        self.open.get(&ino).is_some_and(|o| o.dirty || o.held) || self.is_orphan(ino)
    }

    /// The object an orphan stands for: its buffer.
    pub(super) fn orphan_obj(&self, ino: Ino) -> Option<Obj> {
        self.is_orphan(ino).then_some(Obj::Pending)
    }
}
