//! Open files: open, read, write, flush, fsync, release, and saving a file's bytes.

use super::*;

impl State {
    pub(super) fn new_fh(&mut self) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        fh
    }

    /// Opens a file: the handle, whether the kernel may keep the pages it cached of the file
    /// (they hold exactly what a read would return now), and bytes to give the kernel's page
    /// cache before the reply (see `Opened::fill`).
    pub fn open(&mut self, ino: Ino, write: bool, truncate: bool, append: bool) -> Result<Opened> {
        let obj = self.resolve(ino)?;
        let writing = write || truncate;
        if writing {
            self.writable(ino)?;
            if matches!(obj, Obj::File { .. }) {
                let parent = self.inode(ino)?.parent;
                self.not_inside_member(parent)?;
            }
        }
        let (frozen, mut cacheable) = self.open_bytes(ino, obj, writing, truncate)?;
        let counted = self.open.contains_key(&ino);
        let mut fill = None;
        if let Obj::File { blob } = obj
            && !cacheable
        {
            (cacheable, fill) = self.pages_at_open(ino, blob, writing, frozen.as_ref());
        }
        if let Some(o) = self.open.get_mut(&ino) {
            o.handles += 1;
            if writing {
                o.writers += 1;
            }
            if truncate {
                o.data = Arc::default();
                o.version += 1;
                o.dirty = true;
                o.too_big = false;
                o.modified = SystemTime::now();
            }
        }
        let fh = self.new_fh();
        self.handles.insert(
            fh,
            Handle {
                ino,
                append,
                write: writing && counted,
                frozen,
                counted,
            },
        );
        Ok(Opened {
            fh,
            keep: cacheable,
            fill,
        })
    }

    /// What an open reads: bytes fixed for the handle (a frozen view's file, or what is saved
    /// while another descriptor's buffer holds what it wrote), or the shared open buffer (made
    /// here if the file is not open yet). True when the kernel's pages may stay (a frozen file).
    fn open_bytes(
        &mut self,
        ino: Ino,
        obj: Obj,
        writing: bool,
        truncate: bool,
    ) -> Result<(Option<Arc<Vec<u8>>>, bool)> {
        Ok(match obj {
            Obj::Dir { .. } | Obj::Folder => return Err(FsError::IsADirectory),
            // Past versions never change: their pages may stay cached.
            Obj::File { blob } if self.view(ino)?.cache(ino) == Cache::Frozen => {
                (Some(Arc::new(self.store.read_blob(blob)?)), true)
            }
            // Open already with nothing pending: most often a descriptor that was just closed
            // (close(2) commits; the kernel releases the handle later, on its own). Its buffer
            // holds the bytes written, which may read differently from the value they saved
            // (`Bob` is saved as `"Bob"`). A reader sees what is saved, as it would once that
            // handle is gone: `echo Bob > name; cat name` shows `"Bob"`, always. A writer
            // still shares the buffer, as descriptors on one file do; so does a reader while
            // an fsync holds the buffer (see `open::hold`).
            Obj::File { blob }
                if !writing && self.open.contains_key(&ino) && !self.shows_buffer(ino) =>
            {
                (Some(Arc::new(self.store.read_blob(blob)?)), false)
            }
            Obj::Scratch => {
                if truncate {
                    self.scratch_truncate(ino, 0)?;
                }
                (None, false)
            }
            Obj::File { blob } => {
                if !self.open.contains_key(&ino) {
                    // A truncating open needs not the old bytes: a damaged blob can be overwritten.
                    let data = if truncate {
                        Vec::new()
                    } else {
                        self.store.read_blob(blob)?
                    };
                    self.open.insert(ino, OpenFile::new(data));
                }
                (None, false)
            }
            Obj::Pending => (None, false),
        })
    }

    /// Whether the kernel's pages of a file hold what an open reads now (it may keep them),
    /// else the bytes to give it (a small file opened with no writer).
    fn pages_at_open(
        &mut self,
        ino: Ino,
        blob: Oid,
        writing: bool,
        frozen: Option<&Arc<Vec<u8>>>,
    ) -> (bool, Option<Fill>) {
        let writers = self.open.get(&ino).map_or(0, |o| o.writers) + usize::from(writing);
        let mark = pages_mark(blob);
        if writers > 0 {
            self.table.set_pages(ino, 0);
            return (false, None);
        }
        if self.table.pages(ino) == mark {
            return (true, None);
        }
        self.table.set_pages(ino, mark);
        let era = self.era();
        let data = frozen.or(self.open.get(&ino).map(|o| &o.data));
        let fill = data.filter(|d| d.len() <= MAX_FILL).map(|d| Fill {
            data: Arc::clone(d),
            mark,
            era,
        });
        (false, fill)
    }

    /// Whether bytes given to the kernel at an open are still the file's: no save or other
    /// change came between (a change after this check drops the kernel's pages itself).
    pub fn still_filled(&mut self, ino: Ino, fill: &Fill) -> bool {
        self.table.pages(ino) == fill.mark && self.era() == fill.era
    }

    pub fn read(&mut self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let h = self.handles.get(&fh).ok_or(FsError::NotFound)?;
        let slice = |d: &[u8]| {
            let start = (offset as usize).min(d.len());
            let end = start.saturating_add(size as usize).min(d.len());
            d[start..end].to_vec()
        };
        if let Some(f) = &h.frozen {
            return Ok(slice(f));
        }
        let ino = h.ino;
        if let Some(o) = self.open.get(&ino) {
            return Ok(slice(&o.data));
        }
        match self.inode(ino)?.scratch {
            Some(_) => self.scratch_read(ino, offset, size),
            None => Err(FsError::NotFound),
        }
    }

    pub fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let h = self.handles.get(&fh).ok_or(FsError::NotFound)?;
        if h.frozen.is_some() {
            return Err(FsError::ReadOnly);
        }
        let (ino, append) = (h.ino, h.append);
        if !self.open.contains_key(&ino) && self.inode(ino)?.scratch.is_some() {
            return self.scratch_write(ino, offset, data, append);
        }
        let buf = match self.open.get_mut(&ino) {
            Some(o) => {
                o.dirty = true;
                o.wrote = true;
                o.version += 1;
                o.modified = SystemTime::now();
                Arc::make_mut(&mut o.data)
            }
            None => return Err(FsError::NotFound),
        };
        let at = if append { buf.len() } else { offset as usize };
        let Some(end) = at.checked_add(data.len()).filter(|&end| end <= MAX_FILE) else {
            if let Some(o) = self.open.get_mut(&ino) {
                o.too_big = true;
            }
            return Err(FsError::TooBig);
        };
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[at..end].copy_from_slice(data);
        Ok(data.len() as u32)
    }

    /// The heavy half of a flush of a big file, to be done without the lock (so reads go on
    /// meanwhile): `None` when the flush has nothing heavy to do.
    pub fn prepare_flush(&self, fh: u64) -> Option<Prepared> {
        let ino = self.handles.get(&fh)?.ino;
        let o = self.open.get(&ino)?;
        if !o.wrote || !o.dirty || o.insert || o.data.len() < HEAVY_SAVE {
            return None;
        }
        Some(Prepared {
            data: o.data.clone(),
            version: o.version,
            repo: self.store.path().to_owned(),
            branch: self.store.branch().to_owned(),
        })
    }

    /// Completes a flush whose file was parsed and written by [`Prepared::write`]; a plain
    /// flush if the file changed since (or the heavy half failed).
    pub fn finish_flush(&mut self, fh: u64, written: Result<Written>) -> Result<Inval> {
        let w = written?;
        let Some(ino) = self.handles.get(&fh).map(|h| h.ino) else {
            return Ok(Inval::default());
        };
        let parent = self.inode(ino)?.parent;
        if !self
            .open
            .get(&ino)
            .is_some_and(|o| o.wrote && !o.insert && o.version == w.version)
            || self.is_set(parent)
        {
            return self.flush(fh);
        }
        let mut inval = self.save_as(ino, Some(&w))?;
        self.let_go(ino, &mut inval);
        Ok(inval)
    }

    /// Commits a dirty open file (at flush, fsync and the last release).
    pub fn flush(&mut self, fh: u64) -> Result<Inval> {
        let Some(h) = self.handles.get(&fh) else {
            return Ok(Inval::default());
        };
        let ino = h.ino;
        let mut inval = if self.open.get(&ino).is_some_and(|o| o.wrote) {
            self.save(ino)?
        } else {
            Inval::default()
        };
        self.let_go(ino, &mut inval);
        Ok(inval)
    }

    /// Commits a dirty open file and syncs the repository. The file's descriptors go on
    /// reading the bytes they wrote (see `open::hold`).
    pub fn fsync(&mut self, fh: u64) -> Result<Inval> {
        let inval = match self.handles.get(&fh).map(|h| h.ino) {
            Some(ino) => {
                let dirty = self.open.get(&ino).is_some_and(|o| o.dirty);
                let mut inval = self.save(ino)?;
                self.hold(ino, dirty, &mut inval);
                inval
            }
            None => Inval::default(),
        };
        self.commit_pending()?;
        self.store.sync()?;
        Ok(inval)
    }

    /// Whether releasing a handle may save: a writer's, or one on a file with changes not
    /// saved yet.
    pub fn release_saves(&self, fh: u64) -> bool {
        self.handles.get(&fh).is_some_and(|h| {
            h.write
                || self
                    .open
                    .get(&h.ino)
                    .is_some_and(|o| o.dirty || o.writers > 0)
        })
    }

    pub fn release(&mut self, fh: u64) -> Inval {
        let Some(h) = self.handles.remove(&fh) else {
            return Inval::default();
        };
        let ino = h.ino;
        self.scratch_released(ino);
        let mut inval = Inval::default();
        let last = h.counted
            && self.open.get_mut(&ino).is_some_and(|o| {
                if h.write {
                    o.writers = o.writers.saturating_sub(1);
                }
                o.handles = o.handles.saturating_sub(1);
                o.handles == 0
            });
        if last {
            let saved = match self.save(ino) {
                Ok(i) => {
                    inval = i;
                    true
                }
                Err(e) => {
                    log::error!("save at release failed, the change is lost: {e}");
                    false
                }
            };
            self.open.remove(&ino);
            // A new file whose save was refused is gone with its buffer: the kernel must forget
            // the name too, or opening it again (O_CREAT included) reaches this dead inode.
            if !saved {
                self.drop_refused(ino, &mut inval);
            }
            self.forget(ino, 0);
        }
        inval
    }

    /// The edit that saves a file: an element inserted back into its vector's gap, a value
    /// set at its path, or a value already written (`written`) put there.
    fn save_edit(
        &mut self,
        ino: Ino,
        parent: Ino,
        name: &str,
        insert: bool,
        value: Option<Value>,
        written: Option<&Written>,
    ) -> Result<()> {
        match (insert, crate::store::parse_index(name), value) {
            (true, Some(v), Some(value)) => {
                let before = self.gaps.get(&parent).map_or(0, |g| g.range(..v).count());
                let path = self.store_path(parent)?.child(&(v - before).to_string());
                self.gap_saved(ino, &path);
                self.edit(
                    vec![Edit::Insert(path.clone(), value)],
                    format!("write {path}"),
                )?;
                if let Some(g) = self.gaps.get_mut(&parent) {
                    g.remove(&v);
                    self.gaps_generation += 1;
                }
                if let Some(o) = self.open.get_mut(&ino) {
                    o.insert = false;
                }
            }
            (_, _, Some(value)) => {
                let path = self.child_path(parent, name)?;
                self.edit(
                    vec![Edit::Set(path.clone(), value)],
                    format!("write {path}"),
                )?;
            }
            (_, _, None) => {
                let w = written.ok_or(FsError::Invalid("nothing to save".into()))?;
                let path = self.child_path(parent, name)?;
                if path.names().len() + w.depth > codec::MAX_DEPTH {
                    return Err(codec::CodecError::TooDeep.into());
                }
                self.edit(
                    vec![Edit::Put(path.clone(), w.node)],
                    format!("write {path}"),
                )?;
            }
        }
        Ok(())
    }

    /// Commits the open buffer of `ino` if it changed.
    pub(super) fn save(&mut self, ino: Ino) -> Result<Inval> {
        self.save_as(ino, None)
    }

    /// Commits the open buffer of `ino` if it changed: parsed here, or already parsed and
    /// written to the object database (`written`).
    pub(super) fn save_as(&mut self, ino: Ino, written: Option<&Written>) -> Result<Inval> {
        let Some(o) = self.open.get(&ino) else {
            return Ok(Inval::default());
        };
        if !o.dirty {
            return Ok(Inval::default());
        }
        if o.too_big {
            return Err(FsError::TooBig);
        }
        let inode = self.inode(ino)?;
        if inode.parent == 0 {
            // Unlinked while open: nothing to save.
            if let Some(o) = self.open.get_mut(&ino) {
                o.dirty = false;
            }
            return Ok(Inval::default());
        }
        let (parent, name, was_dir) = (inode.parent, inode.name.to_owned(), inode.is_dir);
        let insert = o.insert;
        let (value, is_dir, renamed) = match written {
            Some(w) => (None, w.is_dir, false),
            None => {
                let data = o.data.clone();
                let value = self.file_value(parent, &name, &data)?;
                let is_dir = value.is_collection();
                // In a set, a file is named by its member: text naming another member moves
                // the file.
                let renamed =
                    self.is_set(parent) && name::key_name(self.store.format(), &value) != name;
                (Some(value), is_dir, renamed)
            }
        };
        self.save_edit(ino, parent, &name, insert, value, written)?;
        if let Some(o) = self.open.get_mut(&ino) {
            o.dirty = false;
            o.wrote = false;
        }
        self.hidden.remove(&(parent, name.clone()));
        let listed = self
            .extras
            .get_mut(&parent)
            .is_some_and(|e| e.remove(&name));
        self.note_saved(ino, parent, &name, listed);
        let mut inval = Inval::default();
        if is_dir != was_dir || renamed {
            // The file became a folder: a new inode will stand for the path.
            self.table.detach(parent, &name);
            self.open.remove(&ino);
            inval.entries.push((parent, name));
        } else {
            // The saved text may read differently from the bytes written (`Bob` is saved as
            // `"Bob"`): the kernel's pages and size of the file must go.
            inval.inodes.push(ino);
        }
        self.touched.push(parent);
        Ok(inval)
    }
}
