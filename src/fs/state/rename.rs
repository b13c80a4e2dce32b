//! rename(2): a key moved within the value, two entries exchanged, a scratch file or a new
//! file's buffer saved onto a key (an editor's save), and a key renamed onto a scratch name
//! (Vim's and Emacs's backup `NAME` -> `NAME~`).

use super::*;

/// One rename, as resolved: the source, and the target folder and name.
struct Rename<'a> {
    src: Ino,
    src_obj: Obj,
    parent: Ino,
    src_name: String,
    newparent: Ino,
    newname: &'a str,
    /// The entry the target name stands for now, if any.
    dst: Option<Ino>,
    dst_kind: CollKind,
}

impl State {
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &str,
        newparent: Ino,
        newname: &str,
        noreplace: bool,
        exchange: bool,
    ) -> Result<Inval> {
        self.writable(parent)?;
        self.writable(newparent)?;
        self.touched.extend([parent, newparent]);
        self.not_inside_member(parent)?;
        self.not_inside_member(newparent)?;
        let src = self.lookup_ino(parent, name)?;
        let dst = self.lookup_ino(newparent, newname).ok();
        // A view's own folder is listed but is no entry of the value.
        self.writable(src)?;
        if let Some(d) = dst {
            self.writable(d)?;
        }
        let src_name = self.inode(src)?.name.to_owned();
        if dst.is_some() && noreplace {
            return Err(FsError::Exists);
        }
        if dst == Some(src) {
            return Ok(Inval::default());
        }
        let src_obj = self.resolve(src)?;
        let Obj::Dir { kind: dst_kind, .. } = self.resolve(newparent)? else {
            return Err(FsError::NotADirectory);
        };
        let r = Rename {
            src,
            src_obj,
            parent,
            src_name,
            newparent,
            newname,
            dst,
            dst_kind,
        };
        if exchange {
            return self.exchange(&r);
        }
        let dst_is_key = dst.is_some_and(|d| !matches!(self.resolve(d), Ok(Obj::Scratch)));
        let dst_scratch = !dst_is_key
            && self.is_scratch_name(newparent, newname)
            && !self.is_next_index(newparent, dst_kind, newname);
        let mut inval = Inval::default();
        match src_obj {
            Obj::Scratch if dst_scratch => {
                self.scratch_rename(src, newparent, newname)?;
                self.move_extra(parent, &r.src_name, newparent, newname);
                self.table.rename(src, newparent, newname);
            }
            // A key open with changes not saved yet moves as a key; its buffer follows it and
            // is saved under the new name at its close.
            Obj::Pending if self.is_committed(src)? => self.move_key(&r, &mut inval)?,
            Obj::Scratch | Obj::Pending => self.save_onto_key(&r, &mut inval)?,
            Obj::File { blob } if dst_scratch => self.key_to_backup(&r, blob)?,
            _ => self.move_key(&r, &mut inval)?,
        }
        self.touch_ctime(src);
        // The kernel keeps the moved entry under the name as typed (`v/03`), with the source's
        // lifetime: in a vector that spelling must be dropped as well as the canonical name.
        if newname != inval.entries.last().map_or(newname, |(_, n)| n.as_str())
            && self.names_shift(newparent)
        {
            inval.entries.push((newparent, newname.to_owned()));
        }
        Ok(inval)
    }

    /// RENAME_EXCHANGE: the two entries swap places in one commit.
    fn exchange(&mut self, r: &Rename) -> Result<Inval> {
        let dst = r.dst.ok_or(FsError::NotFound)?;
        let (a, b) = (self.store_path(r.src)?, self.store_path(dst)?);
        let (na, nb) = (
            self.store.node_at(self.session.root(), &a)?,
            self.store.node_at(self.session.root(), &b)?,
        );
        self.edit(
            vec![Edit::Put(a.clone(), nb), Edit::Put(b.clone(), na)],
            format!("exchange {a} <-> {b}"),
        )?;
        let dst_name = self.inode(dst)?.name.to_owned();
        self.table.detach(r.parent, &r.src_name);
        self.table.detach(r.newparent, &dst_name);
        Ok(Inval {
            entries: vec![(r.parent, r.src_name.clone()), (r.newparent, dst_name)],
            epoch: true,
            ..Inval::default()
        })
    }

    /// A scratch file or a new file's buffer renamed onto a key: an editor's save, committed
    /// as the key's new value.
    fn save_onto_key(&mut self, r: &Rename, inval: &mut Inval) -> Result<()> {
        let src = r.src;
        let data = match r.src_obj {
            Obj::Scratch => {
                if self.inode(src)?.scratch.is_some_and(|s| s.symlink) {
                    return Err(FsError::Invalid("a symlink cannot become a key".into()));
                }
                self.scratch_bytes(src)?
            }
            _ => self
                .open
                .get(&src)
                .map(|o| o.data.to_vec())
                .unwrap_or_default(),
        };
        let canonical = match r.dst {
            Some(d) => self.inode(d)?.name.to_owned(),
            None => self.new_key_name(r.newparent, r.dst_kind, r.newname)?,
        };
        let value = self.file_value(r.newparent, &canonical, &data)?;
        let is_dir = value.is_collection();
        if let Some(path) = self.gap_insert(r.newparent, &canonical)? {
            // Into a vector's gap: inserted there.
            let own = self.perm_of(src);
            self.perms_due
                .push(super::perms::Due::InsertElement(path.clone(), own));
            self.edit(
                vec![Edit::Insert(path.clone(), value)],
                format!("write {path}"),
            )?;
            self.gap_filled(r.newparent, &canonical);
        } else {
            let path = self.child_path(r.newparent, &canonical)?;
            self.perms_onto_key(src, &path)?;
            self.edit(
                vec![Edit::Set(path.clone(), value)],
                format!("write {path}"),
            )?;
        }
        let listed = self
            .extras
            .get_mut(&r.parent)
            .is_some_and(|e| e.remove(&r.src_name));
        self.note_saved(src, r.parent, &r.src_name, listed);
        self.hidden.remove(&(r.newparent, canonical.clone()));
        self.drop_backup(src)?;
        if let Some(o) = self.open.get_mut(&src) {
            o.dirty = false;
        }
        if matches!(r.src_obj, Obj::Scratch) {
            // Its bytes are the key's now.
            self.scratch_unlink(src)?;
        }
        self.table.rename(src, r.newparent, &canonical);
        self.table.set_scratch(src, None);
        self.table.set_dir(src, is_dir);
        if is_dir {
            self.table.detach(r.newparent, &canonical);
        }
        inval.entries.push((r.newparent, canonical));
        Ok(())
    }

    /// `NAME` -> `NAME~`: the key is hidden, its removal pending until the save completes; the
    /// backup is a scratch file holding what the key had.
    fn key_to_backup(&mut self, r: &Rename, blob: Oid) -> Result<()> {
        let src = r.src;
        let data = self.store.read_blob(blob)?;
        // The backup shows what the key had (a 600 file's copy stays 600).
        let perm = self.perm_of(src);
        let mode = perm.mode.unwrap_or(0o666 & !self.opts.umask & 0o777);
        let mut rel = self.mount_path(r.newparent)?;
        rel.push(r.newname.to_owned());
        self.files.write_all(&self.files.path(&rel), &data, mode)?;
        self.unlink_perms(src, false)?;
        self.hidden.insert((r.parent, r.src_name.clone()), src);
        self.extras
            .entry(r.newparent)
            .or_default()
            .insert(r.newname.to_owned());
        self.table.rename(src, r.newparent, r.newname);
        self.table
            .set_scratch(src, Some(ScratchFile { symlink: false }));
        let owners = crate::store::meta::Perm {
            mode: None,
            uid: Some(perm.uid.unwrap_or(self.opts.uid)),
            gid: Some(perm.gid.unwrap_or(self.opts.gid)),
        };
        self.set_perm(src, owners)?;
        self.open.remove(&src);
        Ok(())
    }

    /// A key (or folder) moved within the value, replacing what the target held.
    fn move_key(&mut self, r: &Rename, inval: &mut Inval) -> Result<()> {
        let from = self.store_path(r.src)?;
        let canonical = match r.dst {
            Some(d) => self.inode(d)?.name.to_owned(),
            None => self.new_key_name(r.newparent, r.dst_kind, r.newname)?,
        };
        if let Some(to) = self.gap_insert(r.newparent, &canonical)? {
            self.move_into_gap(r, &from, &to)?;
            self.gap_filled(r.newparent, &canonical);
            self.removed(r.parent, &r.src_name)?;
            self.table.rename(r.src, r.newparent, &canonical);
            inval.entries.push((r.newparent, canonical));
            return Ok(());
        }
        let to = self.child_path(r.newparent, &canonical)?;
        if let Some(d) = r.dst
            && let (Ok(Obj::Dir { tree, .. }), true) =
                (self.resolve(d), matches!(r.src_obj, Obj::Dir { .. }))
            && self.store.entry_count(tree)? > 0
        {
            return Err(FsError::NotEmpty);
        }
        self.edit(
            vec![Edit::Move(from.clone(), to.clone())],
            format!("mv {from} -> {to}"),
        )?;
        if matches!(r.src_obj, Obj::Dir { .. }) {
            self.scratch_dir_moved(r.src, r.newparent, &canonical);
        }
        self.removed(r.parent, &r.src_name)?;
        self.table.rename(r.src, r.newparent, &canonical);
        inval.entries.push((r.newparent, canonical));
        Ok(())
    }

    /// A key moved into a gap a removal left in another vector: inserted at the gap's committed
    /// index, then removed, in one commit. (From within that vector the insert would shift
    /// the source: refused rather than guessed.)
    fn move_into_gap(&mut self, r: &Rename, from: &Path, to: &Path) -> Result<()> {
        let vector = &to.names()[..to.names().len() - 1];
        if r.parent == r.newparent || from.names().starts_with(vector) {
            return Err(FsError::Invalid(
                "moving an element into a gap of its own vector: list the folder first".into(),
            ));
        }
        let node = self.store.node_at(self.session.root(), from)?;
        let value = self.store.read_value(node)?;
        let own = self.perm_of(r.src);
        self.perms_due
            .push(super::perms::Due::InsertElement(to.clone(), own));
        self.edit(
            vec![Edit::Insert(to.clone(), value), Edit::Remove(from.clone())],
            format!("mv {from} -> {to}"),
        )
    }

    /// Whether an inode's path holds a committed entry (an open file with changes not saved
    /// may be a key, or a new file not in the value yet).
    fn is_committed(&mut self, ino: Ino) -> Result<bool> {
        let Ok(path) = self.store_path(ino) else {
            return Ok(false);
        };
        Ok(self.store.node_at(self.session.root(), &path).is_ok())
    }
}
