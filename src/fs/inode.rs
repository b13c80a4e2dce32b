//! The inode table: which name in which directory each inode number stands for.
//!
//! Live inodes stand for *paths*, not stored objects: the value under a path changes with every
//! commit, and the inode follows it. Version inodes (under `.history`) stand for a path in one
//! commit and never change. Scratch inodes hold a temporary file's bytes in memory.

use git2::Oid;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

pub type Ino = u64;
pub const ROOT: Ino = 1;
pub const HISTORY: Ino = 2;

/// Where an inode lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Live,
    Version(Oid),
}

/// A temporary file or symlink that is never part of the value.
#[derive(Clone, Debug, Default)]
pub struct ScratchFile {
    pub data: Vec<u8>,
    pub link: Option<Vec<u8>>,
}

/// Attributes set by chmod, chown, touch and setxattr: accepted and remembered for the life
/// of the mount, never committed.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// An inode as the table shows it.
#[derive(Clone, Copy, Debug)]
pub struct Inode<'a> {
    pub parent: Ino,
    /// The canonical name: an escaped key, an index without padding, or a scratch name.
    pub name: &'a str,
    pub place: Place,
    pub is_dir: bool,
    pub nlookup: u64,
    /// Inodes named in this one: it lives while they do, so that what is kept by inode
    /// (a vector's gaps, files not yet saved) is found again along the path.
    pub children: u32,
    pub scratch: Option<&'a ScratchFile>,
    pub meta: &'a Meta,
}

#[derive(Clone, Debug)]
struct Entry {
    parent: Ino,
    name: String,
    place: Place,
    is_dir: bool,
    nlookup: u64,
    children: u32,
    scratch: Option<ScratchFile>,
    meta: Meta,
}

/// Inodes by number and by (parent, name).
pub struct Table {
    inodes: HashMap<Ino, Entry>,
    names: HashMap<(Ino, String), Ino>,
    next: Ino,
    /// Counts the changes that make a name mean another inode (detach, rename).
    generation: u64,
    /// A name came to mean another inode since [`Table::take_renamed`] was last called.
    renamed: bool,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            inodes: HashMap::new(),
            names: HashMap::new(),
            next: HISTORY + 1,
            generation: 0,
            renamed: false,
        }
    }
}

impl Table {
    /// Changes with every detach and rename: what was resolved by name before may differ.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a name came to mean another inode (or none) since the last call: the kernel's
    /// cached names must then be checked again.
    pub fn take_renamed(&mut self) -> bool {
        std::mem::take(&mut self.renamed)
    }

    /// The named children of a directory (a scan of the whole table: for rare events only).
    pub fn children(&self, parent: Ino) -> Vec<(Ino, String)> {
        self.inodes
            .iter()
            .filter(|(_, i)| i.parent == parent)
            .map(|(&n, i)| (n, i.name.clone()))
            .collect()
    }

    pub fn get(&self, ino: Ino) -> Option<Inode<'_>> {
        self.inodes.get(&ino).map(|i| Inode {
            parent: i.parent,
            name: &i.name,
            place: i.place,
            is_dir: i.is_dir,
            nlookup: i.nlookup,
            children: i.children,
            scratch: i.scratch.as_ref(),
            meta: &i.meta,
        })
    }

    /// The kernel's count of lookups of an inode.
    pub fn nlookup_mut(&mut self, ino: Ino) -> Option<&mut u64> {
        self.inodes.get_mut(&ino).map(|i| &mut i.nlookup)
    }

    pub fn set_dir(&mut self, ino: Ino, is_dir: bool) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.is_dir = is_dir;
        }
    }

    /// The bytes of a scratch inode.
    pub fn scratch_mut(&mut self, ino: Ino) -> Option<&mut ScratchFile> {
        self.inodes.get_mut(&ino)?.scratch.as_mut()
    }

    /// Makes an inode a scratch file (or symlink), or a key again (`None`).
    pub fn set_scratch(&mut self, ino: Ino, scratch: Option<ScratchFile>) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.scratch = scratch;
        }
    }

    pub fn meta_mut(&mut self, ino: Ino) -> Option<&mut Meta> {
        self.inodes.get_mut(&ino).map(|i| &mut i.meta)
    }

    pub fn find(&self, parent: Ino, name: &str) -> Option<Ino> {
        self.names.get(&(parent, name.to_owned())).copied()
    }

    /// Releases the memory of removed entries.
    pub fn shrink(&mut self) {
        self.inodes.shrink_to_fit();
        self.names.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inodes.is_empty()
    }

    /// Adds an inode under (parent, name), replacing any other inode there.
    pub fn insert(&mut self, parent: Ino, name: &str, place: Place, is_dir: bool) -> Ino {
        let ino = self.next;
        self.next += 1;
        self.detach(parent, name);
        self.inodes.insert(
            ino,
            Entry {
                parent,
                name: name.to_owned(),
                place,
                is_dir,
                nlookup: 0,
                children: 0,
                scratch: None,
                meta: Meta::default(),
            },
        );
        self.names.insert((parent, name.to_owned()), ino);
        self.count_child(parent, 1);
        ino
    }

    fn count_child(&mut self, parent: Ino, delta: i32) {
        if let Some(p) = self.inodes.get_mut(&parent) {
            p.children = p.children.saturating_add_signed(delta);
        }
    }

    /// Unlinks the inode at (parent, name) from its name; it lives on while the kernel or an
    /// open file still refers to it, but no longer resolves.
    pub fn detach(&mut self, parent: Ino, name: &str) -> Option<Ino> {
        let ino = self.names.remove(&(parent, name.to_owned()))?;
        self.count_child(parent, -1);
        self.generation += 1;
        self.renamed = true;
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.parent = 0;
        }
        Some(ino)
    }

    /// Gives an inode a new name, replacing what was there.
    pub fn rename(&mut self, ino: Ino, parent: Ino, name: &str) {
        self.generation += 1;
        self.renamed = true;
        if let Some(i) = self.inodes.get(&ino) {
            let old = (i.parent, i.name.clone());
            if self.names.get(&old) == Some(&ino) {
                self.names.remove(&old);
                self.count_child(old.0, -1);
            }
        }
        self.detach(parent, name);
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.parent = parent;
            i.name = name.to_owned();
        }
        self.names.insert((parent, name.to_owned()), ino);
        self.count_child(parent, 1);
    }

    /// Drops an inode entirely. Returns the parent it was named in, if any.
    pub fn remove(&mut self, ino: Ino) -> Option<Ino> {
        let i = self.inodes.remove(&ino)?;
        let key = (i.parent, i.name);
        if self.names.get(&key) == Some(&ino) {
            self.names.remove(&key);
            self.count_child(key.0, -1);
            return Some(key.0);
        }
        None
    }

    /// All inode numbers (for invalidation after another writer's commit).
    pub fn live_inos(&self) -> Vec<Ino> {
        self.inodes
            .iter()
            .filter(|(_, i)| i.place == Place::Live && i.scratch.is_none())
            .map(|(&n, _)| n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_rename_detach() {
        let mut t = Table::default();
        let a = t.insert(ROOT, "a", Place::Live, false);
        assert_eq!(t.find(ROOT, "a"), Some(a));
        let b = t.insert(ROOT, "b", Place::Live, false);
        t.rename(a, ROOT, "b");
        assert_eq!(t.find(ROOT, "b"), Some(a));
        assert_eq!(t.find(ROOT, "a"), None);
        assert_eq!(t.get(b).map(|i| i.parent), Some(0));
        t.remove(a);
        assert_eq!(t.find(ROOT, "b"), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_directory_counts_the_inodes_named_in_it() {
        let mut t = Table::default();
        let d = t.insert(ROOT, "d", Place::Live, true);
        let e = t.insert(ROOT, "e", Place::Live, true);
        let a = t.insert(d, "a", Place::Live, false);
        let b = t.insert(d, "b", Place::Live, false);
        let children = |t: &Table, i| t.get(i).map(|i| i.children);
        assert_eq!(children(&t, d), Some(2));
        t.rename(a, e, "a");
        assert_eq!((children(&t, d), children(&t, e)), (Some(1), Some(1)));
        t.insert(e, "a", Place::Live, false);
        assert_eq!(children(&t, e), Some(1));
        t.detach(d, "b");
        assert_eq!(children(&t, d), Some(0));
        assert_eq!(t.remove(b), None);
        let c = t.insert(d, "c", Place::Live, false);
        assert_eq!(t.remove(c), Some(d));
        assert_eq!(children(&t, d), Some(0));
    }
}
