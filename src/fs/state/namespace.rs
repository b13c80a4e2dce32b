//! Namespace operations: create, mkdir, remove, rename, symlink, and settling at unmount.

use super::*;

impl State {
    /// Creates a file (a scratch file, or a key committed at close).
    pub fn create(
        &mut self,
        parent: Ino,
        name: &str,
        who: Creator,
        exclusive: bool,
        truncate: bool,
        append: bool,
    ) -> Result<(Attr, u64)> {
        self.writable(parent)?;
        self.not_inside_member(parent)?;
        match self.lookup_ino(parent, name) {
            Ok(ino) => {
                if exclusive {
                    return Err(FsError::Exists);
                }
                let fh = self.open(ino, true, truncate, append)?.fh;
                let attr = self.getattr(ino)?;
                self.bump(ino);
                return Ok((attr, fh));
            }
            Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let Obj::Dir { kind, .. } = self.resolve(parent)? else {
            return Err(FsError::NotADirectory);
        };
        let ino = if self.is_scratch_name(parent, name) && !self.is_next_index(parent, kind, name) {
            let mode = self.created_mode(who, false);
            self.new_scratch(parent, name, &[], None, mode)?
        } else {
            let canonical = self.new_key_name(parent, kind, name)?;
            let insert = kind.is_sequence()
                && crate::store::parse_index(&canonical)
                    .is_some_and(|i| self.gaps.get(&parent).is_some_and(|g| g.contains(&i)));
            let ino = self.table.insert(parent, &canonical, Place::Live, false);
            self.open.insert(
                ino,
                OpenFile {
                    dirty: true,
                    insert,
                    ..OpenFile::new(Vec::new())
                },
            );
            ino
        };
        let listed = self.inode(ino)?.name.to_owned();
        self.extras.entry(parent).or_default().insert(listed);
        if self.inode(ino)?.scratch.is_some() {
            self.scratch_created(ino, who)?;
        } else if self.inserting(ino) {
            // In a vector's gap: its path is the later element's until the insert is saved.
            self.gap_created(ino, who);
            let path = self.store_path(ino)?;
            if exclusive {
                self.created_exclusively(&path);
            }
        } else {
            let path = self.store_path(ino)?;
            self.set_created(&path, who, false)?;
            if exclusive {
                self.created_exclusively(&path);
            }
        }
        let fh = self.open(ino, true, false, append)?.fh;
        let attr = self.getattr(ino)?;
        self.bump(ino);
        Ok((attr, fh))
    }

    pub(super) fn bump(&mut self, ino: Ino) {
        if let Some(n) = self.table.nlookup_mut(ino) {
            *n += 1;
        }
    }

    pub(super) fn view_len(&mut self, dir: Ino) -> Result<usize> {
        let Obj::Dir { tree, .. } = self.resolve(dir)? else {
            return Err(FsError::NotADirectory);
        };
        let committed = self.store.entry_count(tree)?;
        Ok(committed + self.gaps.get(&dir).map_or(0, BTreeSet::len))
    }

    pub(super) fn is_next_index(&mut self, dir: Ino, kind: CollKind, name: &str) -> bool {
        kind.is_sequence()
            && crate::store::parse_index(name).is_some_and(|i| self.view_len(dir).ok() == Some(i))
    }

    /// Checks a name for a new key and returns its canonical form.
    pub(super) fn new_key_name(
        &mut self,
        parent: Ino,
        kind: CollKind,
        name: &str,
    ) -> Result<String> {
        if kind.is_sequence() {
            let i = crate::store::parse_index(name)
                .ok_or_else(|| FsError::Invalid(format!("{name:?} is not an index")))?;
            // The next index appends; an index whose element was renamed onto a scratch name
            // (Vim's `03` -> `03~`) or just removed (a gap) is written back in its place.
            let back = self.hidden.contains_key(&(parent, i.to_string()))
                || self.gaps.get(&parent).is_some_and(|g| g.contains(&i));
            if i != self.view_len(parent)? && !back {
                return Err(FsError::Invalid(format!(
                    "{name}: a vector grows only at its end"
                )));
            }
            return Ok(i.to_string());
        }
        if name.len() > name::NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        if kind == CollKind::Set {
            self.member_of_name(name)?;
            return Ok(name.to_owned());
        }
        match name::unescape(name) {
            Ok(name::Decoded::Text(_)) if name != ".valfs" => Ok(name.to_owned()),
            _ => Err(FsError::Invalid(format!(
                "{name:?} is not a valid key name (see docs/FORMAT.md)"
            ))),
        }
    }

    pub(super) fn is_set(&mut self, dir: Ino) -> bool {
        matches!(
            self.resolve(dir),
            Ok(Obj::Dir {
                kind: CollKind::Set,
                ..
            })
        )
    }

    /// Refuses a change in `dir` when `dir` is (inside) a collection member of a set: a member
    /// is named by its text, so it cannot change in place; replace it instead (`rmdir` it, add
    /// the new one).
    pub(super) fn not_inside_member(&mut self, dir: Ino) -> Result<()> {
        let mut ino = dir;
        while ino != ROOT {
            let parent = self.inode(ino)?.parent;
            if parent == 0 {
                break;
            }
            if self.is_set(parent) {
                return Err(FsError::Invalid(
                    "a set member cannot change in place: replace it".into(),
                ));
            }
            ino = parent;
        }
        Ok(())
    }

    /// The member a name in a set stands for (`:x`, `[1 2]`, `%` for `""`). Only the member's
    /// canonical name is accepted, so one member never has two names.
    pub(super) fn member_of_name(&self, name: &str) -> Result<Value> {
        let format = self.store.format();
        let Ok(name::Decoded::Text(text)) = name::unescape(name) else {
            return Err(FsError::Invalid(format!(
                "{name:?} is not a valid member name (see docs/FORMAT.md)"
            )));
        };
        let member = name::text_key(format, &text);
        let canonical = name::key_name(format, &member);
        if canonical != name {
            return Err(FsError::Invalid(format!(
                "{name:?}: a set member is named by its canonical text, {canonical:?}"
            )));
        }
        Ok(member)
    }

    /// The value the bytes of file `name` in `parent` stand for (SPEC §3). In a set, an empty
    /// file (`touch set/:x`) stands for the member its name reads as.
    pub(super) fn file_value(&mut self, parent: Ino, name: &str, data: &[u8]) -> Result<Value> {
        if matches!(data, b"" | b"\n") && self.is_set(parent) {
            return self.member_of_name(name);
        }
        Ok(codec::parse_file_text(self.store.format(), data)?)
    }

    pub fn mkdir(&mut self, parent: Ino, name: &str, who: Creator) -> Result<Attr> {
        self.writable(parent)?;
        self.touched.push(parent);
        self.not_inside_member(parent)?;
        if self.lookup_ino(parent, name).is_ok() {
            return Err(FsError::Exists);
        }
        let Obj::Dir { kind, .. } = self.resolve(parent)? else {
            return Err(FsError::NotADirectory);
        };
        let canonical = self.new_key_name(parent, kind, name)?;
        let value = if kind == CollKind::Set {
            // A set's folder is a member that is a collection, named by its text: `[1 2]`.
            Some(self.member_of_name(&canonical)?)
                .filter(Value::is_collection)
                .ok_or_else(|| {
                    FsError::Invalid(format!(
                        "{name}: a folder in a set is a collection member, named by its text"
                    ))
                })?
        } else {
            Value::Map(Default::default())
        };
        if let Some(path) = self.gap_insert(parent, &canonical)? {
            // Into a vector's gap: inserted there, the later elements keep their names.
            let own = super::perms::created(&self.opts, who, true);
            self.perms_due
                .push(super::perms::Due::InsertElement(path.clone(), own));
            self.edit(
                vec![Edit::Insert(path.clone(), value)],
                format!("mkdir {path}"),
            )?;
            self.gap_filled(parent, &canonical);
            return Ok(self.lookup(parent, &canonical)?.0);
        }
        let path = self.child_path(parent, &canonical)?;
        self.set_created(&path, who, true)?;
        self.edit(
            vec![Edit::Set(path.clone(), value)],
            format!("mkdir {path}"),
        )?;
        Ok(self.lookup(parent, &canonical)?.0)
    }

    /// Where an entry named `canonical` in `parent` is inserted, when the name is a gap a
    /// removal left in a live vector (the later elements keep their names until the next
    /// listing): its committed index. `None` for any other name.
    pub(super) fn gap_insert(&mut self, parent: Ino, canonical: &str) -> Result<Option<Path>> {
        let Some(v) = crate::store::parse_index(canonical) else {
            return Ok(None);
        };
        let Some(below) = self
            .gaps
            .get(&parent)
            .filter(|g| g.contains(&v))
            .map(|g| g.range(..v).count())
        else {
            return Ok(None);
        };
        Ok(Some(
            self.store_path(parent)?.child(&(v - below).to_string()),
        ))
    }

    /// The gap `canonical` names in `parent` holds an element again.
    pub(super) fn gap_filled(&mut self, parent: Ino, canonical: &str) {
        if let Some(v) = crate::store::parse_index(canonical)
            && let Some(g) = self.gaps.get_mut(&parent)
            && g.remove(&v)
        {
            self.gaps_generation += 1;
        }
    }

    /// Removes a key (`dir` says whether rmdir or unlink was asked for).
    pub fn remove(&mut self, parent: Ino, name: &str, dir: bool) -> Result<()> {
        let view = self.view(parent)?;
        if !view.writable() && !self.opts.read_only {
            return view.remove(self, parent, name);
        }
        self.writable(parent)?;
        self.touched.push(parent);
        self.not_inside_member(parent)?;
        let ino = self.lookup_ino(parent, name)?;
        // A view's own folder is listed but is no entry of the value.
        self.writable(ino)?;
        let canonical = self.inode(ino)?.name.to_owned();
        match self.resolve(ino)? {
            Obj::Scratch => {
                self.unlink_perms(ino, true)?;
                self.scratch_unlink(ino)?;
                self.table.detach(parent, &canonical);
                if let Some(e) = self.extras.get_mut(&parent) {
                    e.remove(&canonical);
                }
                self.drop_backup(ino)?;
                self.forget(ino, 0);
                return Ok(());
            }
            Obj::Pending
                if self
                    .extras
                    .get(&parent)
                    .is_some_and(|e| e.contains(&canonical)) =>
            {
                self.unlink_perms(ino, true)?;
                self.table.detach(parent, &canonical);
                if let Some(e) = self.extras.get_mut(&parent) {
                    e.remove(&canonical);
                }
                return Ok(());
            }
            Obj::Dir { tree, .. } => {
                if !dir {
                    return Err(FsError::IsADirectory);
                }
                // A set's collection member is one value: rmdir removes it whole.
                if !self.is_set(parent)
                    && (self.store.entry_count(tree)? > 0
                        || self.extras.get(&ino).is_some_and(|e| !e.is_empty()))
                {
                    return Err(FsError::NotEmpty);
                }
            }
            _ if dir => return Err(FsError::NotADirectory),
            _ => {}
        }
        let path = self.child_path(parent, &canonical)?;
        self.unlink_perms(ino, false)?;
        let verb = if dir { "rmdir" } else { "rm" };
        let before = self.session.base();
        self.edit(vec![Edit::Remove(path.clone())], format!("{verb} {path}"))?;
        if !dir && !self.note_unlink(before, &path) {
            self.unlinked(before, path.clone());
        }
        self.removed(parent, &canonical)?;
        if let Some(o) = self.open.get_mut(&ino) {
            o.dirty = false;
        }
        Ok(())
    }

    /// Bookkeeping after a key left a directory: a vector keeps a gap until listed again.
    pub(super) fn removed(&mut self, parent: Ino, canonical: &str) -> Result<()> {
        self.table.detach(parent, canonical);
        if let Obj::Dir { kind, .. } = self.resolve(parent)?
            && kind.is_sequence()
            && let Some(i) = crate::store::parse_index(canonical)
        {
            self.gaps.entry(parent).or_default().insert(i);
            self.gaps_generation += 1;
        }
        Ok(())
    }

    /// A scratch file that held a hidden key went away: the key's removal is committed unless
    /// the key was written again meanwhile.
    pub(super) fn drop_backup(&mut self, scratch: Ino) -> Result<()> {
        let hidden: Vec<(Ino, String)> = self
            .hidden
            .iter()
            .filter(|(_, s)| **s == scratch)
            .map(|(k, _)| k.clone())
            .collect();
        for (parent, name) in hidden {
            self.hidden.remove(&(parent, name.clone()));
            let rewritten = self
                .table
                .find(parent, &name)
                .is_some_and(|i| self.open.get(&i).is_some_and(|o| o.dirty));
            if !rewritten {
                let path = self.child_path(parent, &name)?;
                if self.store.node_at(self.session.root(), &path).is_ok() {
                    self.edit(vec![Edit::Remove(path.clone())], format!("rm {path}"))?;
                    self.removed(parent, &name)?;
                    self.touched.push(parent);
                }
            }
        }
        Ok(())
    }

    /// Commits the removal of keys still hidden behind a scratch name and unsaved buffers
    /// (at unmount). Returns what the kernel must forget, for a mount that lives on lazily.
    pub fn settle(&mut self) -> Result<Inval> {
        let mut inval = Inval::default();
        let inos: HashSet<Ino> = self.hidden.values().copied().collect();
        for ino in inos {
            self.drop_backup(ino)?;
        }
        let dirty: Vec<Ino> = self
            .open
            .iter()
            .filter(|(_, o)| o.dirty)
            .map(|(&i, _)| i)
            .collect();
        for ino in dirty {
            inval.absorb(self.save(ino)?);
        }
        self.commit_pending()?;
        self.save_history();
        inval.absorb(self.take_inval());
        Ok(inval)
    }

    pub(super) fn move_extra(&mut self, parent: Ino, name: &str, newparent: Ino, newname: &str) {
        if let Some(e) = self.extras.get_mut(&parent) {
            e.remove(name);
        }
        self.extras
            .entry(newparent)
            .or_default()
            .insert(newname.to_owned());
    }

    pub fn symlink(
        &mut self,
        parent: Ino,
        name: &str,
        target: &[u8],
        who: Creator,
    ) -> Result<Attr> {
        self.writable(parent)?;
        if !self.is_scratch_name(parent, name) {
            return Err(FsError::Invalid(
                "only scratch names can be symlinks".into(),
            ));
        }
        if self.lookup_ino(parent, name).is_ok() {
            return Err(FsError::Exists);
        }
        let ino = self.new_scratch(parent, name, &[], Some(target), 0o777)?;
        self.scratch_created(ino, who)?;
        Ok(self.lookup(parent, name)?.0)
    }

    pub fn readlink(&mut self, ino: Ino) -> Result<Vec<u8>> {
        if !self.inode(ino)?.scratch.is_some_and(|s| s.symlink) {
            return Err(FsError::Invalid("not a symlink".into()));
        }
        self.scratch_link(ino)
    }
}
