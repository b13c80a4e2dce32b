//! Lookups and listings: names to inodes, forgetting, kept listings, vector gaps closed.

use super::*;

impl State {
    /// Whether the names in `dir` can come to mean other entries while the kernel caches them:
    /// the elements of a live vector (a removal shifts the later ones at the next listing, a
    /// written collection replaces a file, and `3`, `03` name one element, so an invalidation
    /// by name cannot reach every spelling). The kernel must ask again at every use.
    pub(super) fn names_shift(&mut self, dir: Ino) -> bool {
        self.place(dir).is_ok_and(|p| p == Place::Live)
            && matches!(self.resolve(dir), Ok(Obj::Dir { kind, .. }) if kind.is_sequence())
    }

    /// An entry by name, and how the kernel may cache the name.
    pub fn lookup(&mut self, parent: Ino, name: &str) -> Result<(Attr, Naming)> {
        let (ino, naming) = match view::folder_view(parent) {
            Some(v) => v.lookup(self, name)?,
            None => {
                let ino = self.lookup_ino(parent, name)?;
                (ino, self.naming(parent))
            }
        };
        let attr = self.getattr(ino)?;
        if let Some(n) = self.table.nlookup_mut(ino) {
            *n += 1;
        }
        Ok((attr, naming))
    }

    /// How the kernel may cache the names of a new entry in `dir`.
    pub fn naming(&mut self, dir: Ino) -> Naming {
        if self.names_shift(dir) {
            Naming::Shifts
        } else {
            Naming::Stable
        }
    }

    pub(super) fn lookup_ino(&mut self, parent: Ino, name: &str) -> Result<Ino> {
        if parent == ROOT
            && let Some(ino) = Self::root_folder(name)
        {
            return Ok(ino);
        }
        if let Some(v) = view::folder_view(parent) {
            return Ok(v.lookup(self, name)?.0);
        }
        let canonical = self.canonical(parent, name)?;
        if let Some(ino) = self.table.find(parent, &canonical) {
            match self.resolve(ino) {
                Ok(_) => return Ok(ino),
                Err(FsError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if self.hidden.contains_key(&(parent, canonical.clone())) {
            return Err(FsError::NotFound);
        }
        let Obj::Dir { tree, kind } = self.resolve(parent)? else {
            return Err(FsError::NotADirectory);
        };
        let place = self.place(parent)?;
        let git = self
            .git_name(parent, kind, &canonical, place)?
            .ok_or(FsError::NotFound)?;
        let child = self
            .store
            .lookup(tree, kind, &git)?
            .ok_or(FsError::NotFound)?;
        Ok(self
            .table
            .insert(parent, &canonical, place, child.node.is_dir()))
    }

    pub fn forget(&mut self, ino: Ino, n: u64) {
        let Some(nlookup) = self.table.nlookup_mut(ino) else {
            return;
        };
        *nlookup = nlookup.saturating_sub(n);
        // Drop it if nothing needs it, then its parents that were kept only for it.
        let mut next = Some(ino);
        while let Some(ino) = next.filter(|&i| self.unused(i)) {
            next = self.table.remove(ino);
            self.listed.remove(&ino);
            self.dir_cache.remove(&ino);
            self.extras.remove(&ino);
        }
        // Give memory back once the kernel forgot most of what a big walk looked up.
        let len = self.table.len();
        self.peak_inodes = self.peak_inodes.max(len);
        if self.peak_inodes > 10_000 && len < self.peak_inodes / 4 {
            self.peak_inodes = len;
            self.table.shrink();
            self.listed.shrink_to_fit();
            self.kinds.shrink_to_fit();
            self.dir_cache = HashMap::new();
            if let Err(e) = self.store.reopen() {
                log::debug!("reopening the repository: {e}");
            }
            crate::sys::trim_heap();
        }
    }

    /// Whether nothing needs an inode any more: the kernel forgot it, and no state names its
    /// number. (The table gives a removed inode's number to the next new one: a number still
    /// kept here would then mean that other inode.)
    pub(super) fn unused(&self, ino: Ino) -> bool {
        let Some(i) = self.table.get(ino) else {
            return false;
        };
        !(i.nlookup > 0
            || i.children > 0
            || (i.scratch.is_some() && i.parent != 0)
            || self.open.contains_key(&ino)
            || self.gaps.contains_key(&ino)
            || self.extras.get(&ino).is_some_and(|e| !e.is_empty())
            || self.hidden.iter().any(|(&(p, _), &s)| p == ino || s == ino))
    }

    /// What a directory's listing is made of now (`None` if it is not a directory).
    pub(super) fn print(&mut self, ino: Ino) -> Result<Option<Print>> {
        let Obj::Dir { tree, kind } = self.resolve(ino)? else {
            return Ok(None);
        };
        Ok(Some(Print {
            era: self.era(),
            tree,
            kind,
        }))
    }

    /// The kernel read a listing to its end. A big one is forgotten at once (its memory); a
    /// small one stays a while, for a reader of the kernel's cached copy that the kernel sends
    /// back to the daemon mid-way (the cache was dropped after a change).
    pub fn listing_read(&mut self, ino: Ino, no: u32) {
        if let Some(at) = self
            .listings
            .iter()
            .position(|k| (k.ino, k.no) == (ino, no))
        {
            self.listings[at].read = true;
            if self.listings[at].entries.len() > BIG_LISTING {
                self.forget_listing(at);
            }
        }
    }

    pub(super) fn forget_listing(&mut self, at: usize) {
        if self.listings.remove(at).entries.len() > BIG_LISTING {
            crate::sys::trim_heap();
        }
    }

    /// A directory's listing and its number: the one made under that number if it is still
    /// kept (the kernel reads a listing in parts, and the offsets it is given carry the
    /// number), else one made afresh (a read from the start). Each reader thus reads one
    /// listing to its end, even if another reader started the folder over after a change.
    /// (The kernel opens directories without telling the daemon, and caches the listings
    /// until told they changed.)
    pub fn listing(&mut self, ino: Ino, no: Option<u32>) -> Result<(u32, &[Listed])> {
        let kept = no.and_then(|no| {
            self.listings
                .iter()
                .position(|k| (k.ino, k.no) == (ino, no))
        });
        if let Some(at) = kept {
            // The most recently used go last.
            let k = self.listings.remove(at);
            self.listings.push(k);
        } else {
            let entries = self.list(ino)?;
            if !self.gaps.contains_key(&ino)
                && let Ok(Some(p)) = self.print(ino)
            {
                self.listed.insert(ino, p);
            }
            // Two per folder (a reader started before the latest change, and the latest), and
            // RECENT_LISTINGS in all; the ones read to their end go first, then the oldest.
            let evict = |l: &[Kept], mine: bool| {
                let of = |k: &&Kept| !mine || k.ino == ino;
                l.iter()
                    .position(|k| of(&k) && k.read)
                    .or_else(|| l.iter().position(|k| of(&k)))
            };
            if self.listings.iter().filter(|k| k.ino == ino).count() >= 2 {
                if let Some(at) = evict(&self.listings, true) {
                    self.forget_listing(at);
                }
            } else if self.listings.len() >= RECENT_LISTINGS
                && let Some(at) = evict(&self.listings, false)
            {
                self.forget_listing(at);
            }
            // Offsets are (number << 32 | position) and stay positive: numbers below 2^31.
            self.listing_no = self.listing_no % (i32::MAX as u32) + 1;
            self.listings.push(Kept {
                ino,
                no: self.listing_no,
                entries,
                read: false,
            });
        }
        let k = self.listings.last().ok_or(FsError::NotFound)?;
        Ok((k.no, &k.entries))
    }

    pub(super) fn list(&mut self, ino: Ino) -> Result<Vec<Listed>> {
        let obj = self.resolve(ino)?;
        if obj == Obj::Folder {
            return self.view(ino)?.list(self);
        }
        let Obj::Dir { tree, kind } = obj else {
            return Err(FsError::NotADirectory);
        };
        let place = self.place(ino)?;
        // A new listing of a vector closes the gaps left by removals.
        if place == Place::Live {
            self.close_gaps(ino);
        }
        let dir = self.store.read_dir(tree)?;
        let mut out = Vec::with_capacity(dir.entries.len() + 1);
        if ino == ROOT {
            out.extend(self.root_folders());
        }
        let width = if kind.is_sequence() {
            dir.entries.len().saturating_sub(1).to_string().len()
        } else {
            0
        };
        let view = self.view(ino)?;
        for c in &dir.entries {
            if self.hidden.contains_key(&(ino, c.name.clone())) || view.hides(self, ino, &c.name) {
                continue;
            }
            let shown = if kind.is_sequence() {
                format!("{:0>width$}", c.name)
            } else {
                c.name.clone()
            };
            out.push(Listed {
                ino: self.table.number_for(ino, &c.name),
                name: shown,
                is_dir: c.node.is_dir(),
            });
        }
        if let Some(extra) = self.extras.get(&ino) {
            for name in extra {
                let Some(e) = self.table.find(ino, name) else {
                    continue;
                };
                let is_dir = self.table.get(e).is_some_and(|i| i.is_dir);
                if !out.iter().any(|l| &l.name == name) {
                    out.push(Listed {
                        name: name.clone(),
                        ino: e,
                        is_dir,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Closes the gaps removals left in a live vector: later elements take their committed
    /// indices as names. Their inodes follow them (an open file stays on its element, and
    /// what the kernel caches of its content stays right); the kernel's names are checked
    /// again through a new epoch.
    pub(super) fn close_gaps(&mut self, dir: Ino) {
        let Some(gaps) = self.gaps.remove(&dir) else {
            return;
        };
        self.gaps_generation += 1;
        let mut moved: Vec<(usize, Ino)> = self
            .table
            .children(dir)
            .into_iter()
            .filter_map(|(ino, name)| {
                let view = crate::store::parse_index(&name)?;
                (view.to_string() == name && !gaps.contains(&view)).then_some((view, ino))
            })
            .collect();
        moved.sort_unstable();
        // A file created in a gap and not saved yet keeps that index until it is inserted
        // there; the elements then keep their view names (they read as committed indices).
        let pending_insert = gaps
            .iter()
            .any(|g| self.table.find(dir, &g.to_string()).is_some());
        if pending_insert {
            moved.clear();
        }
        for (view, ino) in moved {
            let below = gaps.range(..view).count();
            if below > 0 {
                let name = (view - below).to_string();
                // Scratch files in the element (a swap file) move with it.
                if self
                    .table
                    .get(ino)
                    .is_some_and(|i| i.is_dir && i.children > 0)
                {
                    self.scratch_dir_moved(ino, dir, &name);
                }
                self.table.rename(ino, dir, &name);
            }
        }
        self.epoch_due = true;
    }
}
