//! What an inode stands for: resolving names and paths against the current value.

use super::*;

impl State {
    /// The cached resolution of a directory, if still valid: from the bounded cache, or from
    /// the print of its last listing while nothing changed since.
    pub(super) fn cached_dir(&mut self, ino: Ino) -> Option<(Oid, CollKind)> {
        let era = self.era();
        if let Some(d) = self.dir_cache.get(&ino) {
            return Some(*d);
        }
        let p = self.listed.get(&ino)?;
        (p.era == era).then_some((p.tree, p.kind))
    }

    pub(super) fn cache_dir(&mut self, ino: Ino, tree: Oid, kind: CollKind) {
        if self.dir_cache.len() >= 1 << 16 {
            self.dir_cache.clear();
        }
        self.dir_cache.insert(ino, (tree, kind));
    }

    pub(super) fn kind(&mut self, tree: Oid) -> Result<CollKind> {
        Ok(self.dir_facts(tree)?.0)
    }

    /// How many subfolders a collection has (`None` when not counted: a split one).
    pub(super) fn subdirs(&mut self, tree: Oid) -> Option<u32> {
        self.dir_facts(tree).ok()?.1
    }

    /// A collection's kind and subfolder count, read once per tree.
    fn dir_facts(&mut self, tree: Oid) -> Result<(CollKind, Option<u32>)> {
        if let Some(f) = self.kinds.get(&tree) {
            return Ok(*f);
        }
        let kind = self.store.dir_kind(tree)?;
        let subdirs = self
            .store
            .subdir_count(tree)?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX - 3));
        if self.kinds.len() > 100_000 {
            self.kinds.clear();
        }
        self.kinds.insert(tree, (kind, subdirs));
        Ok((kind, subdirs))
    }

    pub(super) fn inode(&self, ino: Ino) -> Result<Inode<'_>> {
        self.table.get(ino).ok_or(FsError::NotFound)
    }

    pub(super) fn place(&self, ino: Ino) -> Result<Place> {
        match ino {
            // The root and the views' own folders are in no view's tree.
            ROOT => Ok(Place::Live),
            _ if view::folder_view(ino).is_some() => Ok(Place::Live),
            _ => Ok(self.inode(ino)?.place),
        }
    }

    pub(super) fn writable(&self, ino: Ino) -> Result<()> {
        ro_if(self.opts.read_only || !self.view(ino)?.writable())
    }

    /// The committed index of a view index in a live vector directory.
    pub(super) fn committed_index(&self, dir: Ino, view: usize) -> Option<usize> {
        match self.gaps.get(&dir) {
            Some(g) if g.contains(&view) => None,
            Some(g) => Some(view - g.range(..view).count()),
            None => Some(view),
        }
    }

    /// The git entry name of `name` in directory `dir` of the given kind.
    pub(super) fn git_name(
        &self,
        dir: Ino,
        kind: CollKind,
        name: &str,
        place: Place,
    ) -> Result<Option<String>> {
        if kind.is_sequence() {
            let Some(view) = crate::store::parse_index(name) else {
                return Ok(None);
            };
            if place != Place::Live {
                return Ok(Some(view.to_string()));
            }
            return Ok(self.committed_index(dir, view).map(|i| i.to_string()));
        }
        if name::unescape(name).is_err() || name == ".valfs" {
            return Ok(None);
        }
        Ok(Some(name.to_owned()))
    }

    /// What an inode stands for now.
    pub fn resolve(&mut self, ino: Ino) -> Result<Obj> {
        if ino == ROOT {
            let kind = self.kind(self.session.root())?;
            return Ok(Obj::Dir {
                tree: self.session.root(),
                kind,
            });
        }
        if view::folder_view(ino).is_some() {
            return Ok(Obj::Folder);
        }
        if let Some((tree, kind)) = self.cached_dir(ino) {
            return Ok(Obj::Dir { tree, kind });
        }
        let inode = self.inode(ino)?;
        if inode.scratch.is_some() {
            return Ok(Obj::Scratch);
        }
        if self.open.get(&ino).is_some_and(|o| o.dirty) {
            return Ok(Obj::Pending);
        }
        if let Some(obj) = self.orphan_obj(ino) {
            return Ok(obj);
        }
        let (parent, name, place, is_dir) = (
            inode.parent,
            inode.name.to_owned(),
            inode.place,
            inode.is_dir,
        );
        let node = if let Some(v) = view::folder_view(parent) {
            v.entry_node(self, place)?
        } else {
            if parent == 0 {
                return Err(FsError::NotFound);
            }
            let Obj::Dir { tree, kind } = self.resolve(parent)? else {
                return Err(FsError::NotFound);
            };
            let git = self
                .git_name(parent, kind, &name, place)?
                .ok_or(FsError::NotFound)?;
            self.store
                .lookup(tree, kind, &git)?
                .ok_or(FsError::NotFound)?
                .node
        };
        if node.is_dir() != is_dir {
            return Err(FsError::NotFound);
        }
        Ok(match node {
            Node::Dir(tree) => {
                let kind = self.kind(tree)?;
                self.cache_dir(ino, tree, kind);
                Obj::Dir { tree, kind }
            }
            Node::Leaf(blob) => Obj::File { blob },
        })
    }

    /// The path of a live inode as the store addresses it (committed indices).
    pub(super) fn store_path(&mut self, ino: Ino) -> Result<Path> {
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let i = self.inode(cur)?;
            if i.parent == 0 || i.place != Place::Live {
                return Err(FsError::NotFound);
            }
            names.push((i.parent, i.name.to_owned()));
            cur = i.parent;
        }
        let mut path = Vec::with_capacity(names.len());
        for (parent, name) in names.into_iter().rev() {
            path.push(self.child_git_name(parent, &name)?);
        }
        Ok(Path(path))
    }

    pub(super) fn child_git_name(&mut self, parent: Ino, name: &str) -> Result<String> {
        let Obj::Dir { kind, .. } = self.resolve(parent)? else {
            return Err(FsError::NotADirectory);
        };
        if kind.is_sequence() {
            // A name past the end (an append) maps past the committed end.
            let view =
                crate::store::parse_index(name).ok_or_else(|| FsError::Invalid(name.into()))?;
            return Ok(self
                .committed_index(parent, view)
                .unwrap_or(view)
                .to_string());
        }
        Ok(name.to_owned())
    }

    pub(super) fn child_path(&mut self, parent: Ino, name: &str) -> Result<Path> {
        let p = self.store_path(parent)?;
        Ok(p.child(&self.child_git_name(parent, name)?))
    }

    /// The canonical form of a name typed in a directory (indices lose their padding).
    pub(super) fn canonical(&mut self, parent: Ino, name: &str) -> Result<String> {
        if let Ok(Obj::Dir { kind, .. }) = self.resolve(parent)
            && kind.is_sequence()
            && !self.is_scratch_name_in(parent, name)
            && let Some(i) = crate::store::parse_index(name)
        {
            return Ok(i.to_string());
        }
        Ok(name.to_owned())
    }

    pub(super) fn is_scratch_name_in(&self, parent: Ino, name: &str) -> bool {
        self.opts.scratch.matches(name)
            && self.extras.get(&parent).is_some_and(|e| e.contains(name))
            || self
                .table
                .find(parent, name)
                .and_then(|i| self.table.get(i))
                .is_some_and(|i| i.scratch.is_some())
    }

    /// Whether a new entry named `name` in `parent` is a scratch file: a built-in or user
    /// pattern, or `KEY.tmp` beside a key `KEY` (the `NAME.tmp` + rename idiom of scripts;
    /// `report.tmp` alone is a key).
    pub(super) fn is_scratch_name(&mut self, parent: Ino, name: &str) -> bool {
        if self.opts.scratch.matches(name) {
            return true;
        }
        let Some(stem) = name.strip_suffix(".tmp").filter(|s| !s.is_empty()) else {
            return false;
        };
        self.lookup_ino(parent, stem)
            .and_then(|i| self.resolve(i))
            .is_ok_and(|o| matches!(o, Obj::File { .. } | Obj::Dir { .. }))
    }
}
