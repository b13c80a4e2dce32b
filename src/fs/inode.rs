//! The inode table: which name in which directory each inode number stands for.
//!
//! Live inodes stand for *paths*, not stored objects: the value under a path changes with every
//! commit, and the inode follows it. Version inodes (under `.history`) stand for a path in one
//! commit and never change. Scratch inodes hold a temporary file's bytes in memory.
//!
//! A walk over a mounted value makes the kernel keep an inode for every path it looked up (`find`
//! looks up every directory, `du` or `ls -lR` every file too: 800,000 for a 10 MB document), so an
//! inode costs the daemon about 40 bytes, all told:
//! - a 40-byte `Slot` in a chunk of `CHUNK`: its place is the inode's *id* inside the table. A
//!   removed inode's place goes to the next new one, the lowest free chunk first, so the live
//!   inodes stay packed and a chunk they all left is given back at [`Table::shrink`];
//! - the inode's *number*, what the kernel and `stat` see, is a hash of its parent's number and
//!   its name (see [`natural`]): an entry keeps its number while it exists at its path, also
//!   after the kernel forgot it and at the next mount, `d_ino` in a listing is the number a
//!   lookup gives, and versions under `.history` (other parents) get numbers of their own. A
//!   number is never given to another entry while the kernel holds it: when the natural number
//!   is taken (an entry renamed keeps its number, so `NAME` renamed to `NAME~` still holds
//!   `NAME`'s), the next free one in a fixed sequence is taken and remembered for that path
//!   (`moved`) until the entry leaves it;
//! - a name is a number in `Names`, where each distinct name is kept once;
//! - the index by (parent, name) holds only slot numbers, and compares through the slots;
//! - what few inodes have (a version's commit, a scratch file's bytes, attributes set by chmod,
//!   touch or setxattr) is behind one pointer, `Rare`.
//!
//! Reusing places is safe because an inode is removed only once the kernel forgot it and no
//! state keeps its number.

mod names;

use crate::store::Oid;
use hashbrown::HashTable;
use names::Names;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::time::SystemTime;

pub type Ino = u64;
pub const ROOT: Ino = 1;
/// The numbers of the views' own folders at the root (see `state::view`): this one and the
/// next few, below the first slot's.
pub const FIRST_VIEW: Ino = 2;

/// The number of the first slot (room for four views' folders).
const FIRST: Ino = FIRST_VIEW + 4;
/// Slots per chunk (32 KiB).
const CHUNK: usize = 1024;

/// Where an inode lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Place {
    #[default]
    Live,
    /// In a past version (the commit) under `.history`.
    Version(Oid),
    /// In a frozen tree another view shows (a conflict's sides under `.conflicts`).
    Tree(Oid),
    /// A text (the blob) a view shows (`.sync/status`).
    Text(Oid),
}

/// A temporary file or symlink that is never part of the value: its bytes are a real file
/// (see [`super::scratch::Files`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScratchFile {
    pub symlink: bool,
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

/// What an inode without attributes of its own shows.
static NO_META: Meta = Meta {
    mode: None,
    uid: None,
    gid: None,
    atime: None,
    mtime: None,
    xattrs: BTreeMap::new(),
};

impl Meta {
    fn is_empty(&self) -> bool {
        let Meta {
            mode,
            uid,
            gid,
            atime,
            mtime,
            xattrs,
        } = self;
        mode.is_none()
            && uid.is_none()
            && gid.is_none()
            && atime.is_none()
            && mtime.is_none()
            && xattrs.is_empty()
    }
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

/// What every inode has. Ids fit in 32 bits: a slot's id is its place plus [`FIRST`], and 2^32
/// slots would not fit in memory.
struct Slot {
    nlookup: u64,
    /// The inode's number, as the kernel knows it.
    number: Ino,
    rare: Option<Box<Rare>>,
    /// The id of the inode it is named in (reserved numbers are their own ids); 0 once
    /// detached. An inode is in the index exactly when this is not 0.
    parent: u32,
    /// A number in [`Names`].
    name: u32,
    /// The count of inodes named in this one, and [`DIR`] for a directory.
    children: u32,
    /// What the kernel's page cache holds of the file: see [`Table::pages`]; [`NO_PAGES`]
    /// when nothing is known (non-zero, so that `Option<Slot>` stays 32 bytes).
    pages: std::num::NonZeroU32,
}

/// No mark: marks are odd.
const NO_PAGES: std::num::NonZeroU32 = std::num::NonZeroU32::new(2).unwrap();

/// The bit of [`Slot::children`] that says the inode is a directory (keeps a slot at 32 bytes).
const DIR: u32 = 1 << 31;

/// What few inodes have.
#[derive(Default)]
struct Rare {
    place: Place,
    scratch: Option<ScratchFile>,
    meta: Meta,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.place == Place::Live && self.scratch.is_none() && self.meta.is_empty()
    }
}

/// [`CHUNK`] slots, filled in order, then where inodes were removed.
struct Chunk {
    slots: Vec<Option<Slot>>,
    /// The empty places in `slots`.
    free: Vec<u16>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            slots: Vec::with_capacity(CHUNK),
            free: Vec::new(),
        }
    }

    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < CHUNK
    }

    /// Puts a slot in an empty place (there is one), and returns the place.
    fn put(&mut self, slot: Slot) -> usize {
        if let Some(at) = self.free.pop() {
            let at = usize::from(at);
            if let Some(s) = self.slots.get_mut(at) {
                *s = Some(slot);
                return at;
            }
        }
        self.slots.push(Some(slot));
        self.slots.len() - 1
    }

    fn take(&mut self, at: usize) -> Option<Slot> {
        let slot = self.slots.get_mut(at)?.take()?;
        self.free
            .push(u16::try_from(at).expect("a place in a chunk is below CHUNK"));
        Some(slot)
    }
}

/// The slot at a place.
fn slot_at(chunks: &[Option<Chunk>], at: usize) -> Option<&Slot> {
    chunks
        .get(at / CHUNK)?
        .as_ref()?
        .slots
        .get(at % CHUNK)?
        .as_ref()
}

fn place_of(id: u32) -> Option<usize> {
    usize::try_from(Ino::from(id).checked_sub(FIRST)?).ok()
}

fn id_at(at: usize) -> u32 {
    u32::try_from(at as Ino + FIRST).expect("2^32 inodes do not fit in memory")
}

/// The numbers kept for the kernel's own use and ours: 0 (none), [`ROOT`], the views' folders.
fn reserved(n: Ino) -> bool {
    n < FIRST
}

/// The number an entry named `name` in the directory numbered `parent` gets, unless taken: a
/// hash (FNV-1a, then SplitMix64's finalizer) fixed across mounts and builds, below 2^63 (some
/// programs print numbers as signed).
pub fn natural(parent: Ino, name: &str) -> Ino {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parent.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let n = finalize(h);
    if reserved(n) { n + FIRST } else { n }
}

/// The number tried after `n` when `n` is taken.
fn after(n: Ino) -> Ino {
    let n = finalize(n.wrapping_add(1));
    if reserved(n) { n + FIRST } else { n }
}

fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & (u64::MAX >> 1)
}

/// Inodes by number and by (parent, name).
pub struct Table {
    chunks: Vec<Option<Chunk>>,
    /// The chunks with an empty slot (those given back included), lowest first: a new inode
    /// takes the lowest free number.
    roomy: BTreeSet<usize>,
    len: usize,
    names: Names,
    /// The places of the named inodes, by (parent, name) as their slots hold them.
    index: HashTable<u32>,
    /// The places of all inodes, by number.
    numbers: HashTable<u32>,
    /// Paths whose entry has a number other than its natural one (it was taken, or the entry
    /// was renamed there), by (parent's number, name). Kept after the kernel forgot the entry,
    /// so it keeps its number; dropped when the entry leaves the path.
    moved: std::collections::HashMap<(Ino, Box<str>), Ino>,
    hasher: RandomState,
    /// Counts the changes that make a name mean another inode (detach, rename).
    generation: u64,
    /// A name came to mean another inode since [`Table::take_renamed`] was last called.
    renamed: bool,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            chunks: Vec::new(),
            roomy: BTreeSet::new(),
            len: 0,
            names: Names::default(),
            index: HashTable::new(),
            numbers: HashTable::new(),
            moved: std::collections::HashMap::new(),
            hasher: RandomState::new(),
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

    /// Every inode with its id.
    fn slots(&self) -> impl Iterator<Item = (u32, &Slot)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().flat_map(move |chunk| {
                chunk
                    .slots
                    .iter()
                    .enumerate()
                    .filter_map(move |(at, s)| Some((id_at(c * CHUNK + at), s.as_ref()?)))
            })
        })
    }

    /// The place of the inode with a number.
    fn place(&self, ino: Ino) -> Option<usize> {
        let chunks = &self.chunks;
        self.numbers
            .find(self.number_hash(ino), |&at| {
                slot_at(chunks, at as usize).is_some_and(|s| s.number == ino)
            })
            .map(|&at| at as usize)
    }

    fn number_hash(&self, ino: Ino) -> u64 {
        self.hasher.hash_one(ino)
    }

    /// The id of the inode with a number (reserved numbers are their own; 0: none).
    fn id(&self, ino: Ino) -> u32 {
        match ino {
            n if reserved(n) => n as u32,
            _ => self.place(ino).map_or(0, id_at),
        }
    }

    /// The number of the inode with an id.
    fn number(&self, id: u32) -> Ino {
        match Ino::from(id) {
            n if reserved(n) => n,
            _ => place_of(id)
                .and_then(|at| slot_at(&self.chunks, at))
                .map_or(0, |s| s.number),
        }
    }

    fn slot(&self, ino: Ino) -> Option<&Slot> {
        slot_at(&self.chunks, self.place(ino)?)
    }

    fn slot_mut(&mut self, ino: Ino) -> Option<&mut Slot> {
        let at = self.place(ino)?;
        self.slot_at_mut(at)
    }

    fn slot_at_mut(&mut self, at: usize) -> Option<&mut Slot> {
        self.chunks
            .get_mut(at / CHUNK)?
            .as_mut()?
            .slots
            .get_mut(at % CHUNK)?
            .as_mut()
    }

    /// The named children of a directory (a scan of the whole table: for rare events only).
    pub fn children(&self, parent: Ino) -> Vec<(Ino, String)> {
        let parent = self.id(parent);
        if parent == 0 {
            return Vec::new();
        }
        self.slots()
            .filter(|(_, s)| s.parent == parent)
            .map(|(_, s)| (s.number, self.names.get(s.name).to_owned()))
            .collect()
    }

    pub fn get(&self, ino: Ino) -> Option<Inode<'_>> {
        let s = self.slot(ino)?;
        let rare = s.rare.as_deref();
        Some(Inode {
            parent: self.number(s.parent),
            name: self.names.get(s.name),
            place: rare.map_or(Place::Live, |r| r.place),
            is_dir: s.children & DIR != 0,
            nlookup: s.nlookup,
            children: s.children & !DIR,
            scratch: rare.and_then(|r| r.scratch.as_ref()),
            meta: rare.map_or(&NO_META, |r| &r.meta),
        })
    }

    /// The kernel's count of lookups of an inode.
    pub fn nlookup_mut(&mut self, ino: Ino) -> Option<&mut u64> {
        self.slot_mut(ino).map(|s| &mut s.nlookup)
    }

    /// A mark of the blob whose text the kernel holds in its page cache for a file (0: none
    /// known): set when an open lets the kernel read the file afresh, cleared when a writer
    /// opens it. An open keeps the kernel's pages only when the mark is the file's blob's.
    pub fn pages(&self, ino: Ino) -> u32 {
        match self.slot(ino) {
            Some(s) if s.pages != NO_PAGES => s.pages.get(),
            _ => 0,
        }
    }

    pub fn set_pages(&mut self, ino: Ino, mark: u32) {
        if let Some(s) = self.slot_mut(ino) {
            s.pages = std::num::NonZeroU32::new(mark).unwrap_or(NO_PAGES);
        }
    }

    pub fn set_dir(&mut self, ino: Ino, is_dir: bool) {
        if let Some(s) = self.slot_mut(ino) {
            s.children = if is_dir {
                s.children | DIR
            } else {
                s.children & !DIR
            };
        }
    }

    /// The bytes of a scratch inode.
    pub fn scratch_mut(&mut self, ino: Ino) -> Option<&mut ScratchFile> {
        self.slot_mut(ino)?.rare.as_mut()?.scratch.as_mut()
    }

    /// Makes an inode a scratch file (or symlink), or a key again (`None`).
    pub fn set_scratch(&mut self, ino: Ino, scratch: Option<ScratchFile>) {
        let Some(s) = self.slot_mut(ino) else {
            return;
        };
        if scratch.is_none() && s.rare.is_none() {
            return;
        }
        s.rare.get_or_insert_default().scratch = scratch;
        if s.rare.as_ref().is_some_and(|r| r.is_empty()) {
            s.rare = None;
        }
    }

    /// The attributes of an inode, made for it if it has none.
    pub fn meta_mut(&mut self, ino: Ino) -> Option<&mut Meta> {
        Some(&mut self.slot_mut(ino)?.rare.get_or_insert_default().meta)
    }

    fn key_hash(&self, parent: u32, name: u32) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    pub fn find(&self, parent: Ino, name: &str) -> Option<Ino> {
        let (parent, name) = (self.id(parent), self.names.find(name)?);
        let chunks = &self.chunks;
        let &at = self.index.find(self.key_hash(parent, name), |&at| {
            slot_at(chunks, at as usize).is_some_and(|s| (s.parent, s.name) == (parent, name))
        })?;
        slot_at(chunks, at as usize).map(|s| s.number)
    }

    /// The number of the entry at (parent, name): the one it has, or the one a lookup would
    /// give it now (for `d_ino` in listings).
    pub fn number_for(&self, parent: Ino, name: &str) -> Ino {
        self.find(parent, name)
            .unwrap_or_else(|| self.free_number(parent, name))
    }

    /// The number a new entry at (parent, name) gets: the one remembered for the path, else
    /// its natural one; the next in sequence while taken.
    fn free_number(&self, parent: Ino, name: &str) -> Ino {
        let mut n = self
            .moved
            .get(&(parent, Box::from(name)))
            .copied()
            .unwrap_or_else(|| natural(parent, name));
        while self.place(n).is_some() {
            n = after(n);
        }
        n
    }

    /// Remembers the number of the entry now at (parent, name) if it is not the natural one.
    fn note_number(&mut self, parent: Ino, name: &str, n: Ino) {
        if n == natural(parent, name) {
            self.moved.remove(&(parent, Box::from(name)));
        } else {
            self.moved.insert((parent, Box::from(name)), n);
        }
    }

    fn index_number(&mut self, at: usize) {
        let Some(n) = slot_at(&self.chunks, at).map(|s| s.number) else {
            return;
        };
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let at = u32::try_from(at).expect("a place fits in 32 bits, as its id does");
        self.numbers.insert_unique(hasher.hash_one(n), at, |&at| {
            slot_at(chunks, at as usize).map_or(0, |s| hasher.hash_one(s.number))
        });
    }

    fn unindex_number(&mut self, at: usize) {
        let Some(n) = slot_at(&self.chunks, at).map(|s| s.number) else {
            return;
        };
        let hash = self.number_hash(n);
        if let Ok(e) = self.numbers.find_entry(hash, |&p| p as usize == at) {
            e.remove();
        }
    }

    /// Takes the inode at (parent, name) out of the index (only if it is at place `only`, when
    /// given); returns its place. Its slot must still hold that (parent, name).
    fn unindex(&mut self, parent: u32, name: u32, only: Option<usize>) -> Option<usize> {
        let hash = self.key_hash(parent, name);
        let chunks = &self.chunks;
        let entry = self
            .index
            .find_entry(hash, |&at| {
                let at = at as usize;
                only.is_none_or(|o| o == at)
                    && slot_at(chunks, at).is_some_and(|s| (s.parent, s.name) == (parent, name))
            })
            .ok()?;
        Some(entry.remove().0 as usize)
    }

    /// Puts the inode at a place in the index, under the (parent, name) its slot holds.
    fn index(&mut self, at: usize) {
        let Some(s) = slot_at(&self.chunks, at).filter(|s| s.parent != 0) else {
            return;
        };
        let hash = self.key_hash(s.parent, s.name);
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let at = u32::try_from(at).expect("a place fits in 32 bits, as its number does");
        self.index.insert_unique(hash, at, |&at| {
            slot_at(chunks, at as usize).map_or(0, |s| hasher.hash_one((s.parent, s.name)))
        });
    }

    /// Builds the names again from those in use, once most of them are not: a mount that makes
    /// and removes temporary files all day must not keep every name it ever saw.
    fn drop_unused_names(&mut self, always: bool) {
        if !always && self.names.len() <= 2 * self.len + 4096 {
            return;
        }
        let old = std::mem::take(&mut self.names);
        for s in self
            .chunks
            .iter_mut()
            .flatten()
            .flat_map(|c| c.slots.iter_mut().flatten())
        {
            s.name = self.names.intern(old.get(s.name));
        }
        // Names have new numbers, which the index hashes: it is built again.
        let named = || self.slots().filter(|(_, s)| s.parent != 0);
        let mut index = HashTable::with_capacity(named().count());
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        for (id, s) in named() {
            let at = u32::try_from(Ino::from(id) - FIRST).expect("a place fits in 32 bits");
            index.insert_unique(hasher.hash_one((s.parent, s.name)), at, |&at| {
                slot_at(chunks, at as usize).map_or(0, |s| hasher.hash_one((s.parent, s.name)))
            });
        }
        self.index = index;
    }

    /// Releases the memory of removed entries: chunks no inode is left in, names no inode has.
    pub fn shrink(&mut self) {
        for chunk in &mut self.chunks {
            if chunk.as_ref().is_some_and(|c| c.live() == 0) {
                *chunk = None;
            }
        }
        while self.chunks.last().is_some_and(Option::is_none) {
            self.chunks.pop();
        }
        self.chunks.shrink_to_fit();
        let end = self.chunks.len();
        self.roomy.retain(|&c| c < end);
        self.drop_unused_names(true);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the lowest free place for a slot.
    fn alloc(&mut self, slot: Slot) -> usize {
        let c = match self.roomy.first() {
            Some(&c) => c,
            None => {
                self.chunks.push(None);
                self.roomy.insert(self.chunks.len() - 1);
                self.chunks.len() - 1
            }
        };
        let chunk = self
            .chunks
            .get_mut(c)
            .expect("a chunk with room is in the list")
            .get_or_insert_with(Chunk::new);
        let at = chunk.put(slot);
        if !chunk.has_room() {
            self.roomy.remove(&c);
        }
        self.len += 1;
        let at = c * CHUNK + at;
        id_at(at);
        at
    }

    /// Adds an inode under (parent, name), replacing any other inode there.
    pub fn insert(&mut self, parent: Ino, name: &str, place: Place, is_dir: bool) -> Ino {
        self.detach(parent, name);
        self.drop_unused_names(false);
        let number = self.free_number(parent, name);
        if number != natural(parent, name) {
            self.note_number(parent, name, number);
        }
        let slot = Slot {
            nlookup: 0,
            number,
            rare: (place != Place::Live).then(|| {
                Box::new(Rare {
                    place,
                    ..Rare::default()
                })
            }),
            parent: self.id(parent),
            name: self.names.intern(name),
            children: if is_dir { DIR } else { 0 },
            pages: NO_PAGES,
        };
        let at = self.alloc(slot);
        self.index(at);
        self.index_number(at);
        self.count_child(parent, 1);
        number
    }

    fn count_child(&mut self, parent: Ino, delta: i32) {
        if let Some(p) = self.slot_mut(parent) {
            let n = (p.children & !DIR).saturating_add_signed(delta).min(!DIR);
            p.children = (p.children & DIR) | n;
        }
    }

    /// Unlinks the inode at (parent, name) from its name; it lives on while the kernel or an
    /// open file still refers to it, but no longer resolves.
    pub fn detach(&mut self, parent: Ino, name: &str) -> Option<Ino> {
        let text = name;
        let name = self.names.find(name)?;
        let at = self.unindex(self.id(parent), name, None)?;
        self.count_child(parent, -1);
        self.generation += 1;
        self.renamed = true;
        self.moved.remove(&(parent, Box::from(text)));
        let s = self.slot_at_mut(at)?;
        s.parent = 0;
        Some(s.number)
    }

    /// Gives an inode a new name, replacing what was there (an inode that is gone stays gone).
    pub fn rename(&mut self, ino: Ino, parent: Ino, name: &str) {
        self.generation += 1;
        self.renamed = true;
        let Some(at) = self.place(ino) else {
            return;
        };
        let Some(&Slot {
            parent: old_parent,
            name: old_name,
            ..
        }) = self.slot(ino)
        else {
            return;
        };
        if old_parent != 0 && self.unindex(old_parent, old_name, Some(at)).is_some() {
            let old_parent = self.number(old_parent);
            self.count_child(old_parent, -1);
            let old_name = Box::from(self.names.get(old_name));
            self.moved.remove(&(old_parent, old_name));
        }
        if let Some(s) = self.slot_mut(ino) {
            s.parent = 0;
        }
        self.detach(parent, name);
        self.drop_unused_names(false);
        self.note_number(parent, name, ino);
        let name = self.names.intern(name);
        let parent_id = self.id(parent);
        if let Some(s) = self.slot_mut(ino) {
            s.parent = parent_id;
            s.name = name;
        }
        self.index(at);
        self.count_child(parent, 1);
    }

    /// Drops an inode entirely. Returns the parent it was named in, if any. Its number goes to
    /// a later inode: only an inode the kernel forgot, that no other is named in (`children` is
    /// 0) and that no state keeps may go.
    pub fn remove(&mut self, ino: Ino) -> Option<Ino> {
        let at = self.place(ino)?;
        let &Slot { parent, name, .. } = self.slot(ino)?;
        let named = parent != 0 && self.unindex(parent, name, Some(at)).is_some();
        let parent = self.number(parent);
        self.unindex_number(at);
        self.chunks
            .get_mut(at / CHUNK)?
            .as_mut()?
            .take(at % CHUNK)?;
        self.roomy.insert(at / CHUNK);
        self.len -= 1;
        if named {
            self.count_child(parent, -1);
            return Some(parent);
        }
        None
    }

    /// All inode numbers (for invalidation after another writer's commit).
    pub fn live_inos(&self) -> Vec<Ino> {
        self.slots()
            .filter(|(_, s)| {
                s.rare
                    .as_ref()
                    .is_none_or(|r| r.place == Place::Live && r.scratch.is_none())
            })
            .map(|(_, s)| s.number)
            .collect()
    }
}

#[cfg(test)]
mod tests;
