//! Attributes: times, getattr and setattr, and extended attributes (the type, conversions).

use super::*;

impl State {
    /// A path's mtime: when this mount first saw it, or saw its content change. Kept by path,
    /// so an inode the kernel forgot and looks up again keeps its time.
    pub(super) fn times_for(&mut self, ino: Ino, oid: Option<Oid>) -> SystemTime {
        let commit_time = self.base_time;
        if let Some(t) = self.table.get(ino).and_then(|i| i.meta.mtime) {
            return t;
        }
        if self.session.root() == self.first_root && self.seen.is_empty() {
            // Nothing changed since the mount started.
            return self.first_time;
        }
        let (Some(oid), Ok(path)) = (oid, self.store_path(ino)) else {
            return commit_time;
        };
        let key = path.to_string();
        if !self.seen.contains_key(&key)
            && (self.session.root() == self.first_root
                || self
                    .store
                    .node_at(self.first_root, &path)
                    .is_ok_and(|n| n.oid() == oid))
        {
            // Unchanged since the mount started: nothing to remember (a `find` over a million
            // paths would otherwise keep a million entries).
            return self.first_time;
        }
        match self.seen.get(&key) {
            Some(&(seen, t)) if seen == oid => t,
            Some(_) => {
                let now = SystemTime::now();
                self.seen.insert(key, (oid, now));
                now
            }
            None => {
                // Changed since the mount started: later than then, even if committed in the
                // same second or dated before (the kernel compares folders' mtimes to keep
                // their listings).
                let t = commit_time.max(self.first_time + Duration::from_nanos(1));
                self.seen.insert(key, (oid, t));
                t
            }
        }
    }

    /// Gives a folder whose listing changed a new mtime, later than any given before (two
    /// changes in one second included, and a change that leaves its tree as it was, such as a
    /// vector's gap). The kernel compares a folder's mtime with the one it had when it began
    /// caching a listing (FUSE_AUTO_INVAL_DATA): a listing made just before a change and cached
    /// after the change's invalidation is then dropped at the next open.
    pub(super) fn stamp(&mut self, dir: Ino) {
        let Ok(Obj::Dir { tree, .. }) = self.resolve(dir) else {
            return;
        };
        let now = self.next_stamp();
        // Set by touch(1) or utimes(2): a change moves it on, as on any filesystem. (Only
        // then: `meta_mut` gives the inode room for attributes it would otherwise not have.)
        let explicit = self.table.get(dir).is_some_and(|i| i.meta.mtime.is_some());
        if explicit && let Some(m) = self.table.meta_mut(dir) {
            m.mtime = Some(now);
        } else if let Ok(path) = self.store_path(dir) {
            self.seen.insert(path.to_string(), (tree, now));
        }
    }

    /// A time later than any [`State::stamp`] gave before.
    pub(super) fn next_stamp(&mut self) -> SystemTime {
        self.last_stamp = SystemTime::now().max(self.last_stamp + Duration::from_nanos(1));
        self.last_stamp
    }

    pub(super) fn commit_time(&self, commit: Oid) -> SystemTime {
        self.store
            .commit_time(commit)
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
            .unwrap_or(self.started)
    }

    pub fn getattr(&mut self, ino: Ino) -> Result<Attr> {
        let obj = self.resolve(ino)?;
        let place = self.place(ino)?;
        let view = self.view(ino)?;
        let read_only = self.opts.read_only || !view.writable();
        // A scratch file's attributes are its real file's: one lstat.
        let scratch = match obj {
            Obj::Scratch => Some(self.scratch_stat(ino)?),
            _ => None,
        };
        let (is_dir, size, oid) = self.content_facts(ino, obj, scratch.map(|s| s.0));
        let mut mtime = match (view.mtime(self, ino, place), obj) {
            (Some(t), _) => t,
            // Stable between changes: the kernel drops a file's pages when its mtime moves.
            (None, Obj::Pending) => self.open.get(&ino).map_or(self.started, |o| o.modified),
            (None, Obj::Scratch) => scratch.map_or(self.started, |s| s.1),
            (None, _) => self.times_for(ino, oid),
        };
        let meta = self
            .table
            .get(ino)
            .map(|i| i.meta.clone())
            .unwrap_or_default();
        if let Some(t) = meta.mtime {
            mtime = t;
        }
        let (set, ctime) = if view.writable() {
            self.shown(ino, scratch)
        } else {
            Default::default()
        };
        let base_perm = if is_dir { 0o777 } else { 0o666 };
        let perm = if read_only {
            if is_dir { 0o555 } else { 0o444 }
        } else {
            set.mode.unwrap_or(base_perm & !self.opts.umask & 0o777)
        };
        let is_symlink =
            matches!(obj, Obj::Scratch) && self.inode(ino)?.scratch.is_some_and(|s| s.symlink);
        Ok(Attr {
            ino,
            is_dir,
            is_symlink,
            size,
            perm,
            uid: set.uid.unwrap_or(self.opts.uid),
            gid: set.gid.unwrap_or(self.opts.gid),
            atime: meta.atime.unwrap_or(mtime),
            mtime,
            ctime: ctime.map_or(mtime, |c| c.max(mtime)),
            read_only,
            // Nothing changes through a read-only mount (another writer's commit still drops
            // everything the kernel cached).
            cache: match view.cache(ino) {
                Cache::Announced if self.opts.read_only => Cache::Frozen,
                c => c,
            },
            unlinked: self.table.get(ino).is_some_and(|i| i.parent == 0),
            subdirs: match obj {
                // The root also holds the views' folders.
                Obj::Dir { tree, .. } => self.subdirs(tree).map(|n| {
                    let folders = if ino == ROOT {
                        self.root_folders().len()
                    } else {
                        0
                    };
                    n.saturating_add(folders as u32)
                }),
                _ => None,
            },
        })
    }

    /// Whether an inode is a folder, its size, and the object it stands for (none for what is
    /// not committed). A scratch file's size is its real file's (`scratch_size`).
    fn content_facts(
        &self,
        ino: Ino,
        obj: Obj,
        scratch_size: Option<u64>,
    ) -> (bool, u64, Option<Oid>) {
        match obj {
            Obj::Folder => (true, 0, None),
            Obj::Dir { tree, .. } => (true, 0, Some(tree)),
            Obj::File { blob } => {
                let size = match self.open.get(&ino) {
                    // Nothing pending: the saved text, which a new reader reads (see open);
                    // after an fsync, the bytes the descriptors read until closed.
                    Some(o) if o.dirty || o.held => o.data.len() as u64,
                    // A damaged blob still has attributes: reading it fails (EIO), and
                    // overwriting it (which needs not the old bytes) repairs the value.
                    _ => self.store.blob_size(blob).unwrap_or_else(|e| {
                        log::error!("blob {blob}: {e}");
                        0
                    }),
                };
                (false, size, Some(blob))
            }
            Obj::Pending => (
                false,
                self.open.get(&ino).map_or(0, |o| o.data.len() as u64),
                None,
            ),
            Obj::Scratch => (false, scratch_size.unwrap_or(0), None),
        }
    }

    /// chmod, chown, utimensat and truncate.
    pub fn setattr(&mut self, ino: Ino, set: SetAttr) -> Result<Attr> {
        let obj = self.resolve(ino)?;
        self.writable(ino)?;
        if let Some(size) = set.size {
            self.table.set_pages(ino, 0);
            // Its folder too: in a set, a member truncated is listed under its new text.
            let parent = self.table.get(ino).map_or(0, |i| i.parent);
            self.touched.extend([ino, parent]);
            if size > MAX_FILE as u64 {
                return Err(FsError::TooBig);
            }
            if matches!(obj, Obj::File { .. }) {
                let parent = self.inode(ino)?.parent;
                self.not_inside_member(parent)?;
            }
            match obj {
                Obj::Dir { .. } | Obj::Folder => return Err(FsError::IsADirectory),
                Obj::Scratch => self.scratch_truncate(ino, size)?,
                _ => {
                    if let Some(o) = self.open.get_mut(&ino).filter(|o| o.handles > 0) {
                        if o.data.len() as u64 != size {
                            Arc::make_mut(&mut o.data).resize(size as usize, 0);
                            o.version += 1;
                            o.dirty = true;
                            o.wrote = true;
                            o.modified = SystemTime::now();
                        }
                        o.too_big = false;
                    } else if let Obj::File { blob } = obj {
                        let mut data = self.store.read_blob(blob)?;
                        let changed = data.len() as u64 != size;
                        data.resize(size as usize, 0);
                        let inode = self.inode(ino)?;
                        let (parent, name) = (inode.parent, inode.name.to_owned());
                        // A member's name is its text: truncated, it is another member, and
                        // this inode would name nothing (an open file is saved under its new
                        // name at close instead).
                        if changed && self.is_set(parent) {
                            return Err(FsError::Invalid(
                                "a set member cannot change in place: replace it".into(),
                            ));
                        }
                        let value = self.file_value(parent, &name, &data)?;
                        let path = self.child_path(parent, &name)?;
                        self.edit(
                            vec![Edit::Set(path.clone(), value)],
                            format!("truncate {path}"),
                        )?;
                    }
                }
            }
        }
        // Modes and owners are kept by path, on disk, before the reply.
        let perm = crate::store::meta::Perm {
            mode: set.mode.map(|m| (m & 0o7777) as u16),
            uid: set.uid,
            gid: set.gid,
        };
        if !perm.is_empty() {
            self.set_perm(ino, perm)?;
            self.touch_ctime(ino);
        }
        // Only an inode given times keeps them (they are made on demand); a scratch file's
        // go on its real file.
        if matches!(obj, Obj::Scratch) {
            self.scratch_times(ino, set.atime, set.mtime);
        } else if (set.atime.is_some() || set.mtime.is_some())
            && let Some(m) = self.table.meta_mut(ino)
        {
            m.atime = set.atime.or(m.atime);
            m.mtime = set.mtime.or(m.mtime);
        }
        self.getattr(ino)
    }

    pub const TYPE_XATTR: &'static str = "user.valfs.type";

    pub fn getxattr(&mut self, ino: Ino, name: &str) -> Result<Vec<u8>> {
        if name == Self::TYPE_XATTR {
            return Ok(self.type_name(ino)?.into_bytes());
        }
        self.resolve(ino)?;
        self.table
            .get(ino)
            .and_then(|i| i.meta.xattrs.get(name).cloned())
            .ok_or(FsError::NoAttribute)
    }

    pub(super) fn type_name(&mut self, ino: Ino) -> Result<String> {
        Ok(match self.resolve(ino)? {
            Obj::Folder => return Err(FsError::NoAttribute),
            Obj::Dir { kind, .. } => kind.name().to_owned(),
            Obj::File { blob } => self.store.read_scalar(blob)?.type_name().to_owned(),
            Obj::Pending => {
                let data = self
                    .open
                    .get(&ino)
                    .map(|o| o.data.clone())
                    .unwrap_or_default();
                let inode = self.inode(ino)?;
                let (parent, name) = (inode.parent, inode.name.to_owned());
                self.file_value(parent, &name, &data)?
                    .type_name()
                    .to_owned()
            }
            Obj::Scratch => "scratch".to_owned(),
        })
    }

    pub fn listxattr(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if !matches!(self.resolve(ino)?, Obj::Folder) {
            out.extend_from_slice(Self::TYPE_XATTR.as_bytes());
            out.push(0);
        }
        if let Some(i) = self.table.get(ino) {
            for k in i.meta.xattrs.keys() {
                out.extend_from_slice(k.as_bytes());
                out.push(0);
            }
        }
        Ok(out)
    }

    pub fn setxattr(&mut self, ino: Ino, name: &str, value: &[u8]) -> Result<()> {
        self.resolve(ino)?;
        self.writable(ino)?;
        if name.starts_with("system.") {
            return Err(FsError::NotSupported);
        }
        let scratch = matches!(self.resolve(ino)?, Obj::Scratch);
        self.touch_ctime(ino);
        if name == Self::TYPE_XATTR && scratch {
            // A scratch file's type is its name's; what it becomes is read from its text when
            // it is renamed onto a key (rsync -X types its temporary files).
            return Ok(());
        }
        if name == Self::TYPE_XATTR {
            return self.convert(
                ino,
                std::str::from_utf8(value)
                    .map_err(|_| FsError::Invalid("type".into()))?
                    .trim(),
            );
        }
        if let Some(m) = self.table.meta_mut(ino) {
            m.xattrs.insert(name.to_owned(), value.to_vec());
        }
        Ok(())
    }

    pub fn removexattr(&mut self, ino: Ino, name: &str) -> Result<()> {
        self.resolve(ino)?;
        self.writable(ino)?;
        if name == Self::TYPE_XATTR {
            return Err(FsError::Invalid("the type cannot be removed".into()));
        }
        match self.table.meta_mut(ino).and_then(|m| m.xattrs.remove(name)) {
            Some(_) => Ok(()),
            None => Err(FsError::NoAttribute),
        }
    }

    /// Setting `user.valfs.type`: a scalar becomes a string of its text, or a string
    /// becomes the scalar its text reads as, when that has the asked type; a map whose names
    /// are the indices `0..n-1` becomes that vector (or list), see [`Store::as_sequence`].
    pub(super) fn convert(&mut self, ino: Ino, to: &str) -> Result<()> {
        let current = self.type_name(ino)?;
        if current == to {
            return Ok(());
        }
        if let Obj::Dir { tree, .. } = self.resolve(ino)? {
            return self.convert_folder(ino, tree, &current, to);
        }
        let Obj::File { .. } = self.resolve(ino)? else {
            return Err(FsError::Invalid(format!(
                "cannot convert a {current} to {to}"
            )));
        };
        self.convert_scalar(ino, &current, to)
    }

    /// A folder retyped: a map of indices becomes the vector it was copied from.
    fn convert_folder(&mut self, ino: Ino, tree: Oid, current: &str, to: &str) -> Result<()> {
        // A map copied from a vector (`cp -a` makes folders and files `00`, `01`, …) turns
        // back into that vector; its elements are shared, not rewritten.
        if ino != ROOT {
            let parent = self.inode(ino)?.parent;
            if self.is_set(parent) {
                return Err(FsError::Invalid(
                    "a set member cannot change in place".into(),
                ));
            }
            self.not_inside_member(parent)?;
        }
        let node = match CollKind::from_name(to) {
            Some(kind) => self.store.as_sequence(tree, kind)?,
            None => None,
        }
        .ok_or_else(|| FsError::Invalid(format!("cannot convert this {current} to {to}")))?;
        let old = self.store.read_dir(tree)?.entries;
        let path = self.store_path(ino)?;
        self.edit(
            vec![Edit::Put(path.clone(), node)],
            format!("retype {path} as {to}"),
        )?;
        // What was set on the padded names (`cp -a` sets modes on `00`, `01`, …) goes to
        // the indices that name the elements now.
        for c in &old {
            if let Some(i) = crate::store::parse_index(&c.name)
                && i.to_string() != c.name
            {
                let (from, to) = (path.child(&c.name), path.child(&i.to_string()));
                self.perms.copy(&from, &to)?;
                self.perms.remove(&from)?;
            }
        }
        // The elements are named by index now: new inodes stand for them.
        for c in old {
            self.table.detach(ino, &c.name);
        }
        self.touched.push(ino);
        Ok(())
    }

    /// A scalar retyped: a string holding another type's text becomes that value, a value
    /// becomes the string of its text.
    fn convert_scalar(&mut self, ino: Ino, current: &str, to: &str) -> Result<()> {
        let parent = self.inode(ino)?.parent;
        if self.is_set(parent) {
            // A member's name is its text: a converted member is another member.
            return Err(FsError::Invalid(
                "a set member cannot change in place".into(),
            ));
        }
        self.not_inside_member(parent)?;
        let Obj::File { blob } = self.resolve(ino)? else {
            return Err(FsError::NotFound);
        };
        let value = self.store.read_scalar(blob)?;
        let format = self.store.format();
        let new = match (&value, to) {
            (Value::String(s), _) => format.parse(s).ok().filter(|v| v.type_name() == to),
            (_, "string") => Some(Value::String(format.print(&value)?)),
            _ => None,
        }
        .ok_or_else(|| FsError::Invalid(format!("cannot convert this {current} to {to}")))?;
        let inode = self.inode(ino)?;
        let (parent, name) = (inode.parent, inode.name.to_owned());
        let path = self.child_path(parent, &name)?;
        let is_dir = new.is_collection();
        self.edit(
            vec![Edit::Set(path.clone(), new)],
            format!("retype {path} as {to}"),
        )?;
        self.touched.push(parent);
        if is_dir {
            self.table.detach(parent, &name);
        }
        Ok(())
    }
}
