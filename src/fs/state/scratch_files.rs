//! Scratch files as the mount uses them: an inode marked scratch in the table, its bytes a
//! real file in [`Files`] at the path the inode has in the mount.

use super::{FsError, Ino, MAX_FILE, Place, ROOT, Result, State};
use crate::fs::inode::ScratchFile;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::SystemTime;

/// A scratch file's size, mtime, mode, uid and gid, as its real file has them.
pub(super) type ScratchStat = (u64, SystemTime, u16, u32, u32);

impl State {
    /// The names from the root to an inode, as the table holds them.
    pub(super) fn mount_path(&self, ino: Ino) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let i = self.inode(cur)?;
            if i.parent == 0 || i.place != Place::Live {
                return Err(FsError::NotFound);
            }
            names.push(i.name.to_owned());
            cur = i.parent;
        }
        names.reverse();
        Ok(names)
    }

    /// The real file of a scratch inode (where it went if unlinked while open).
    pub(super) fn scratch_file(&self, ino: Ino) -> Result<PathBuf> {
        if let Some(p) = self.unlinked_scratch.get(&ino) {
            return Ok(p.clone());
        }
        Ok(self.files.path(&self.mount_path(ino)?))
    }

    /// Makes a scratch file (or a symlink) at (parent, name) holding `data`.
    pub(super) fn new_scratch(
        &mut self,
        parent: Ino,
        name: &str,
        data: &[u8],
        link: Option<&[u8]>,
        mode: u16,
    ) -> Result<Ino> {
        let mut rel = self.mount_path(parent)?;
        rel.push(name.to_owned());
        let path = self.files.path(&rel);
        if data.is_empty() || link.is_some() {
            self.files.create(&path, link, mode)?;
        } else {
            self.files.write_all(&path, data, mode)?;
        }
        let ino = self.table.insert(parent, name, Place::Live, false);
        self.table.set_scratch(
            ino,
            Some(ScratchFile {
                symlink: link.is_some(),
            }),
        );
        self.extras
            .entry(parent)
            .or_default()
            .insert(name.to_owned());
        Ok(ino)
    }

    pub(super) fn scratch_read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>> {
        Ok(self.files.read(&self.scratch_file(ino)?, offset, size)?)
    }

    pub(super) fn scratch_write(
        &mut self,
        ino: Ino,
        offset: u64,
        data: &[u8],
        append: bool,
    ) -> Result<u32> {
        let path = self.scratch_file(ino)?;
        if !self
            .files
            .write(&path, offset, data, append, MAX_FILE as u64)?
        {
            return Err(FsError::TooBig);
        }
        Ok(data.len() as u32)
    }

    pub(super) fn scratch_truncate(&mut self, ino: Ino, size: u64) -> Result<()> {
        Ok(self.files.set_len(&self.scratch_file(ino)?, size)?)
    }

    pub(super) fn scratch_bytes(&self, ino: Ino) -> Result<Vec<u8>> {
        Ok(self.files.read_all(&self.scratch_file(ino)?)?)
    }

    pub(super) fn scratch_link(&self, ino: Ino) -> Result<Vec<u8>> {
        Ok(self.files.readlink(&self.scratch_file(ino)?)?)
    }

    /// Size, mtime, mode, uid and gid of a scratch file, as its real file has them.
    pub(super) fn scratch_stat(&self, ino: Ino) -> Result<ScratchStat> {
        let m = self.files.stat(&self.scratch_file(ino)?)?;
        let mtime = m.modified().unwrap_or(self.started);
        Ok((m.len(), mtime, (m.mode() & 0o7777) as u16, m.uid(), m.gid()))
    }

    /// chmod and chown of a scratch file, on its real file.
    pub(super) fn scratch_perm(&mut self, ino: Ino, perm: crate::store::meta::Perm) -> Result<()> {
        let path = self.scratch_file(ino)?;
        if let Some(mode) = perm.mode {
            self.files.chmod(&path, mode)?;
        }
        if (perm.uid.is_some() || perm.gid.is_some())
            && let Err(e) = self.files.chown(&path, perm.uid, perm.gid)
        {
            // Not root: the real file cannot change hands; the inode shows it meanwhile.
            log::debug!("chown {}: {e}", path.display());
        }
        Ok(())
    }

    pub(super) fn scratch_times(
        &mut self,
        ino: Ino,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) {
        if let Ok(path) = self.scratch_file(ino) {
            self.files.set_times(&path, atime, mtime);
        }
    }

    /// A scratch file leaves its name: its file goes, or waits in the orphans folder while a
    /// descriptor still has it open.
    pub(super) fn scratch_unlink(&mut self, ino: Ino) -> Result<()> {
        let path = self.scratch_file(ino)?;
        if self.handles.values().any(|h| h.ino == ino) {
            let to = self.files.orphan_path(ino);
            self.files.rename(&path, &to)?;
            self.unlinked_scratch.insert(ino, to);
        } else {
            self.files.remove(&path)?;
        }
        Ok(())
    }

    /// The last handle of an inode went: an orphan's file goes with it.
    pub(super) fn scratch_released(&mut self, ino: Ino) {
        if self.handles.values().any(|h| h.ino == ino) {
            return;
        }
        if let Some(path) = self.unlinked_scratch.remove(&ino)
            && let Err(e) = self.files.remove(&path)
        {
            log::error!("removing {}: {e}", path.display());
        }
    }

    /// A scratch file takes another name (its inode is renamed after).
    pub(super) fn scratch_rename(&mut self, ino: Ino, newparent: Ino, newname: &str) -> Result<()> {
        let from = self.scratch_file(ino)?;
        let mut rel = self.mount_path(newparent)?;
        rel.push(newname.to_owned());
        self.files.rename(&from, &self.files.path(&rel))?;
        Ok(())
    }

    /// A folder moved: the scratch files under it move along.
    pub(super) fn scratch_dir_moved(&mut self, dir: Ino, newparent: Ino, newname: &str) {
        let (Ok(from), Ok(mut to)) = (self.mount_path(dir), self.mount_path(newparent)) else {
            return;
        };
        to.push(newname.to_owned());
        self.files.move_dir(&from, &to);
    }

    /// Shows the scratch files a former mount left (after an unmount or a crash): each in
    /// its folder, if the value still has that folder.
    pub(super) fn load_scratch(&mut self) {
        self.files.clear_orphans();
        for rel in self.files.all() {
            let Some((name, dirs)) = rel.split_last() else {
                continue;
            };
            let mut parent = ROOT;
            let mut found = true;
            for d in dirs {
                match self.lookup_ino(parent, d) {
                    Ok(i) if self.table.get(i).is_some_and(|i| i.is_dir) => parent = i,
                    _ => {
                        found = false;
                        break;
                    }
                }
            }
            if !found || self.lookup_ino(parent, name).is_ok() {
                log::warn!(
                    "scratch file {} has no folder in the value: kept, not shown",
                    rel.join("/")
                );
                continue;
            }
            let symlink = self
                .files
                .stat(&self.files.path(&rel))
                .is_ok_and(|m| m.file_type().is_symlink());
            let ino = self.table.insert(parent, name, Place::Live, false);
            self.table.set_scratch(ino, Some(ScratchFile { symlink }));
            self.extras.entry(parent).or_default().insert(name.clone());
        }
    }
}
