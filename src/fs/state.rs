//! The mount's state and every operation on it, free of fuser: each returns a `Result`.
//!
//! This file holds the state's types and its setup; the operations are in the child modules,
//! one responsibility each: `view` (the folder trees the mount shows) and `history` (the
//! `.history` view), `resolve` (names and paths against the value), `listing` (lookups,
//! forgetting, kept listings, vector gaps), `attr` (times, attributes, extended attributes),
//! `handles` (open files and their saves), `namespace` (create, mkdir, remove, symlink),
//! `rename`, `commit` (edits applied and committed, at once or by the caller outside the
//! lock), `open` (descriptors as on a disk), `perms` (modes and owners kept by path),
//! `scratch_files` (scratch files as real files), `squash` (an unlink completed by the same
//! name's save).

use super::error::{FsError, MAX_FILE, Result};
use super::inode::{Ino, Inode, Place, ROOT, ScratchFile, Table};
use super::scratch::Scratch;
use crate::codec::{self, name};
use crate::store::HistoryIndex;
use crate::store::Oid;
use crate::store::{Edit, Node, Session, Store};
use crate::value::{CollKind, Path, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod attr;
mod commit;
mod conflicts;
mod handles;
mod history;
mod listing;
mod namespace;
mod open;
mod perms;
mod rename;
mod resolve;
mod scratch_files;
mod squash;
mod sync_view;
mod view;
pub use commit::Deferred;
pub use perms::Creator;
pub use view::{Cache, Naming};

/// Mount settings.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub scratch: Scratch,
    /// Batch commit points that come within this much quiet into one commit.
    pub coalesce: Option<Duration>,
    pub read_only: bool,
    pub uid: u32,
    pub gid: u32,
    /// `--uid`/`--gid` were given: every entry shows that owner unless chown'ed, new ones
    /// too (otherwise a new entry belongs to the user who made it).
    pub owner_forced: bool,
    pub umask: u16,
}

/// What an inode is, resolved against the current value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obj {
    /// A view's own folder (see `view`): what it lists is the view's.
    Folder,
    Dir {
        tree: Oid,
        kind: CollKind,
    },
    File {
        blob: Oid,
    },
    /// A file created (or rewritten) but not yet committed: its bytes are in the open buffer.
    Pending,
    Scratch,
}

/// The attributes the adapter turns into a `FileAttr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub size: u64,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub read_only: bool,
    /// How long the kernel may cache them (the inode's view says).
    pub cache: Cache,
    /// No name leads to it any more (a descriptor still open on a removed file): nlink 0.
    pub unlinked: bool,
    /// A folder's subfolders, when known cheaply (its nlink is 2 more; 1 when not known, as
    /// on btrfs).
    pub subdirs: Option<u32>,
}

/// The shared buffer of an open live file.
/// Files at least this big are parsed and their objects written without the lock at their
/// save: reads of the mount go on meanwhile.
pub const HEAVY_SAVE: usize = 256 << 10;

/// The heavy half of saving a big file: its bytes, and the repository to write them to.
pub struct Prepared {
    /// Shared with the open file, not copied: a write meanwhile copies the buffer instead.
    data: Arc<Vec<u8>>,
    /// The open file's version when prepared: the save completes only if it is still that.
    version: u64,
    repo: std::path::PathBuf,
    branch: String,
}

/// A big file parsed and written to the object database, not yet in the value.
pub struct Written {
    version: u64,
    node: Node,
    depth: usize,
    is_dir: bool,
}

impl Prepared {
    /// Parses the file's text and writes its objects (in one pack), on a repository handle
    /// of its own.
    pub fn write(self) -> Result<Written> {
        let store = Store::open(&self.repo, &self.branch)?;
        let value = codec::parse_file_text(store.format(), &self.data)?;
        let node = store.write_value_packed(&value, &mut |_| {})?;
        Ok(Written {
            depth: crate::store::depth_below(&value),
            is_dir: value.is_collection(),
            node,
            version: self.version,
        })
    }
}

#[derive(Debug)]
struct OpenFile {
    data: Arc<Vec<u8>>,
    /// Counts the changes to `data`.
    version: u64,
    /// Handles open for writing: while any is, the kernel's pages of the file may hold bytes
    /// not saved.
    writers: usize,
    /// Differs from what is committed.
    dirty: bool,
    /// Written (not only truncated by `O_TRUNC`) since the last save. A flush commits only
    /// then: the shell's `echo x > f` flushes once right after the truncating open (when it
    /// closes the descriptor it dup'ed), and that empty state is not a save.
    wrote: bool,
    handles: usize,
    /// Created in a gap a removal left in a vector (an unlink then a create, as `mv` from
    /// another filesystem does): saved by inserting the element back at its place.
    insert: bool,
    /// A write went past [`MAX_FILE`]: the content is incomplete and is never committed.
    too_big: bool,
    /// Opened or last changed then: the mtime of a file not saved yet.
    modified: SystemTime,
    /// Saved by `fsync` and not closed since: the buffer, not the saved text, is what the file
    /// shows (see the `open` module).
    held: bool,
}

impl OpenFile {
    /// A file opened with these bytes, nothing written yet.
    fn new(data: Vec<u8>) -> OpenFile {
        OpenFile {
            data: Arc::new(data),
            dirty: false,
            wrote: false,
            handles: 0,
            writers: 0,
            version: 0,
            insert: false,
            too_big: false,
            modified: SystemTime::now(),
            held: false,
        }
    }
}

/// An open file, as the kernel is told of it.
pub struct Opened {
    pub fh: u64,
    /// The kernel's pages of the file hold what a read returns now: it may keep them.
    pub keep: bool,
    /// The file's bytes, for the kernel's page cache, when it holds none or old ones (a small
    /// file opened for reading only). Given before the reply, they spare the READ round trip,
    /// and a read from the page cache leaves the cached attributes valid (a READ marks the
    /// access time stale, so the next `stat` would ask the daemon).
    pub fill: Option<Fill>,
}

pub struct Fill {
    pub data: Arc<Vec<u8>>,
    mark: u32,
    era: u64,
}

/// How many listings are kept for the kernel's reads past their first part (one per reader
/// of a directory at once).
const RECENT_LISTINGS: usize = 16;
/// A listing of more entries than this is forgotten once read to its end (its memory).
const BIG_LISTING: usize = 10_000;

/// The largest file whose bytes an open gives the kernel (larger ones are read on demand).
const MAX_FILL: usize = 64 * 1024;

#[derive(Debug)]
struct Handle {
    ino: Ino,
    append: bool,
    write: bool,
    /// Bytes fixed at open: a file of a view that never changes, or a later reader's snapshot.
    frozen: Option<std::sync::Arc<Vec<u8>>>,
    /// Counted in its open file's `handles`. A handle opened on a scratch file is not: if the
    /// file is renamed onto a key and opened again before the kernel releases that handle, its
    /// release must not close the new open file (it did: the next write got ENOENT).
    counted: bool,
}

/// A listing kept for the kernel's reads past its first entries.
struct Kept {
    ino: Ino,
    /// Its number, which the offsets given to the kernel carry.
    no: u32,
    entries: Vec<Listed>,
    /// The kernel read it to its end (a reader of its cached copy may still come back).
    read: bool,
}

/// What a directory's last listing was made of.
#[derive(Clone, Copy, Debug)]
struct Print {
    /// [`State::era`] then: while it is still the era, the directory is still this tree (so
    /// the prints also resolve directories, when the bounded `dir_cache` forgot them).
    era: u64,
    tree: Oid,
    kind: CollKind,
}

/// One directory entry as listed.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub ino: Ino,
    pub is_dir: bool,
}

/// Things the kernel must forget after an operation: done by the adapter once the state's
/// lock is released.
#[derive(Debug, Default)]
pub struct Inval {
    pub entries: Vec<(Ino, String)>,
    pub inodes: Vec<Ino>,
    /// Inodes whose attributes only are stale (their pages, a directory's cached listing,
    /// stay).
    pub attrs: Vec<Ino>,
    /// Directories whose cached listing (and attributes) are stale.
    pub listings: Vec<Ino>,
    /// Every cached name must be checked again (see [`State::take_epoch`]).
    pub epoch: bool,
}

impl Inval {
    /// Adds another's to this.
    pub fn absorb(&mut self, o: Inval) {
        self.entries.extend(o.entries);
        self.inodes.extend(o.inodes);
        self.attrs.extend(o.attrs);
        self.listings.extend(o.listings);
        self.epoch |= o.epoch;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.inodes.is_empty()
            && self.attrs.is_empty()
            && self.listings.is_empty()
            && !self.epoch
    }
}

pub struct State {
    store: Store,
    opts: Options,
    /// The commit session: the commit the view is based on, and the view's root tree (ahead
    /// of it only while coalesced edits wait for their commit).
    session: Session,
    /// The base's commit time (the mtime of what did not change since).
    base_time: SystemTime,
    table: Table,
    open: HashMap<Ino, OpenFile>,
    handles: HashMap<u64, Handle>,
    /// The latest listings made, for the kernel's reads past their first entries, the most
    /// recently used last (see [`State::listing`]).
    listings: Vec<Kept>,
    /// The number of the latest listing made.
    listing_no: u32,
    /// A commit was made or followed since the views last heard (see [`State::take_inval`]).
    new_commit: bool,
    /// The value changed in ways the kernel did not see (a merge with another writer's
    /// commit): everything it cached must go.
    all_stale: bool,
    /// What each directory's last listing was made of (see `Print`): it resolves the
    /// directory while nothing changed since.
    listed: HashMap<Ino, Print>,
    /// Resolved directories, valid for `dir_cache_key` (root, table generation, gaps
    /// generation): a path is walked from the root once, not at every operation.
    dir_cache: HashMap<Ino, (Oid, CollKind)>,
    dir_cache_key: (Oid, u64, u64),
    /// A hash of `dir_cache_key`, kept in listing prints (see [`State::era`]; 0 stands for the
    /// first key).
    era: u64,
    gaps_generation: u64,
    /// Names changed meaning in a way the kernel did not see: announce a new epoch.
    epoch_due: bool,
    /// Directories in which the value changed: the kernel must drop their listings and
    /// attributes, and their ancestors' attributes (the mtimes); see [`State::take_inval`].
    touched: Vec<Ino>,
    next_fh: u64,
    /// Indices removed from a live vector since it was last listed: names stay put until then,
    /// so `rm v/*` removes every element.
    gaps: HashMap<Ino, BTreeSet<usize>>,
    /// Names in a live directory that are not (yet) keys: scratch files and created files.
    extras: HashMap<Ino, BTreeSet<String>>,
    /// Keys renamed onto a scratch name (Vim's and Emacs's `NAME` -> `NAME~`): hidden, their
    /// removal pending until the save completes; value = the scratch inode.
    hidden: HashMap<(Ino, String), Ino>,
    /// Each collection tree's kind and count of subfolders (`None`: split, not counted).
    kinds: HashMap<Oid, (CollKind, Option<u32>)>,
    /// The object last seen at each visited path, and its mtime.
    seen: HashMap<String, (Oid, SystemTime)>,
    /// The latest mtime given to a changed folder (see [`State::stamp`]).
    last_stamp: SystemTime,
    /// The `.history` and `.conflicts` views' states.
    history: history::Versions,
    conflicts: conflicts::Shown,
    /// When the store was last seen to have remotes or not (see `sync_view`).
    sync_listed: Option<(std::time::Instant, bool)>,
    started: SystemTime,
    /// The value and its commit time when the mount started: a path unchanged since has that
    /// time as its mtime, without an entry in `seen`.
    first_root: Oid,
    first_time: SystemTime,
    /// The most inodes in the table since memory was last given back.
    peak_inodes: usize,
    /// Modes and owners users set, by path, on disk (see [`crate::store::meta`]).
    perms: crate::store::meta::Perms,
    /// Change times set by chmod, chown and rename, by path.
    ctimes: perms::Ctimes,
    /// What the next commit means for `perms`.
    perms_due: Vec<perms::Due>,
    /// Where scratch files keep their bytes.
    files: super::scratch::Files,
    /// The unlink this mount just committed, which the same name's save may complete.
    recent_unlink: Option<squash::Unlinked>,
    /// Scratch files unlinked while open: where their bytes wait for the last handle.
    unlinked_scratch: HashMap<Ino, std::path::PathBuf>,
    /// Edits' commits are left to the caller (see [`State::defer_commits`]).
    defer: bool,
    /// The commit left to the caller.
    deferred: Option<Deferred>,
}

/// A blob's mark for [`Table::pages`](super::inode::Table::pages): 31 bits of its hash, never 0.
/// Marks of two blobs agree by chance once in 2^31; even then the kernel's pages are right
/// unless an invalidation was also missed (every save and every other writer's commit drops
/// them).
fn pages_mark(blob: Oid) -> u32 {
    let b = blob.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) | 1
}

fn ro_if(read_only: bool) -> Result<()> {
    if read_only {
        Err(FsError::ReadOnly)
    } else {
        Ok(())
    }
}

impl State {
    pub fn new(store: Store, opts: Options) -> Result<State> {
        let session = Session::start(&store)?;
        let (base, root) = (session.base(), session.root());
        let perms = perms::open(&store)?;
        let files = super::scratch::Files::of(&store);
        let mut state = State {
            store,
            opts,
            session,
            base_time: SystemTime::UNIX_EPOCH,
            table: Table::default(),
            open: HashMap::new(),
            handles: HashMap::new(),
            listings: Vec::new(),
            listing_no: 0,
            new_commit: false,
            all_stale: false,
            listed: HashMap::new(),
            dir_cache: HashMap::new(),
            dir_cache_key: (root, 0, 0),
            era: 0,
            gaps_generation: 0,
            epoch_due: false,
            touched: Vec::new(),
            next_fh: 1,
            gaps: HashMap::new(),
            extras: HashMap::new(),
            hidden: HashMap::new(),
            kinds: HashMap::new(),
            seen: HashMap::new(),
            last_stamp: SystemTime::UNIX_EPOCH,
            history: history::Versions::default(),
            conflicts: conflicts::Shown::default(),
            sync_listed: None,
            started: SystemTime::now(),
            first_root: root,
            first_time: SystemTime::UNIX_EPOCH,
            peak_inodes: 0,
            perms,
            ctimes: perms::Ctimes::default(),
            perms_due: Vec::new(),
            files,
            recent_unlink: None,
            unlinked_scratch: HashMap::new(),
            defer: false,
            deferred: None,
        };
        state.set_base(base)?;
        state.first_time = state.base_time;
        state.prune_perms();
        state.load_scratch();
        Ok(state)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Keeps libgit2's object cache within its budget (`store::cache`): after each operation.
    pub fn bound_git_cache(&mut self) {
        self.store.bound_cache();
    }

    /// Whether names changed meaning since the last call in a way the kernel did not see
    /// itself (a vector's indices shifting at a listing, a file becoming a folder, another
    /// writer's commit, an index removed under one of its spellings): the adapter then tells
    /// the kernel to look every cached name up again before it replies.
    pub fn take_epoch(&mut self) -> bool {
        let renamed = self.table.take_renamed();
        std::mem::take(&mut self.epoch_due) | renamed
    }

    /// What the kernel must forget since the last call: the listings of the directories where
    /// the value changed, the attributes of the folders above them (their mtimes follow their
    /// content), what the views' folders list after a commit, everything after a merge.
    pub fn take_inval(&mut self) -> Inval {
        let mut inval = Inval {
            epoch: self.take_epoch(),
            ..Inval::default()
        };
        let touched = std::mem::take(&mut self.touched);
        for &ino in &touched {
            if !inval.listings.contains(&ino) {
                inval.listings.push(ino);
                self.stamp(ino);
            }
        }
        for mut ino in touched {
            while ino != ROOT && ino != 0 {
                ino = self.table.get(ino).map_or(0, |i| i.parent);
                if ino == 0 || inval.listings.contains(&ino) || inval.attrs.contains(&ino) {
                    break;
                }
                inval.attrs.push(ino);
            }
        }
        self.views_inval(&mut inval);
        if std::mem::take(&mut self.all_stale) {
            self.reload_open();
            // Every listing (the root's too: the table holds no slot for it) and every file.
            let (dirs, files): (Vec<Ino>, Vec<Ino>) = self
                .table
                .live_inos()
                .into_iter()
                .partition(|&i| self.table.get(i).is_some_and(|i| i.is_dir));
            inval.listings.push(ROOT);
            inval.listings.extend(Self::view_folders().chain(dirs));
            inval.listings.sort_unstable();
            inval.listings.dedup();
            inval.inodes = files;
            inval.epoch = true;
        }
        inval
    }

    /// After another writer's commit: open files with nothing pending read what it saved. The
    /// kernel's pages of a file are shared by all its readers, and a reader still reading the
    /// old bytes would put them back after the kernel dropped them.
    fn reload_open(&mut self) {
        self.orphan_removed();
        // What readers hold of live files: open buffers with nothing pending and no writer (a
        // writer's buffer holds the bytes it wrote, which may read differently from what was
        // saved), and the snapshots of later readers.
        let mut inos: Vec<Ino> = self
            .open
            .iter()
            .filter(|(_, o)| !o.dirty && !o.held && o.writers == 0)
            .map(|(&ino, _)| ino)
            .chain(
                self.handles
                    .values()
                    .filter(|h| h.frozen.is_some())
                    .map(|h| h.ino),
            )
            .collect();
        inos.sort_unstable();
        inos.dedup();
        for ino in inos {
            // Versions never change. Gone, or a folder now: the old bytes stay (they are
            // nobody's value any more).
            if !matches!(self.place(ino), Ok(Place::Live)) {
                continue;
            }
            let Ok(Obj::File { blob }) = self.resolve(ino) else {
                continue;
            };
            let Ok(data) = self.store.read_blob(blob) else {
                continue;
            };
            let data = Arc::new(data);
            if let Some(o) = self.open.get_mut(&ino)
                && !o.dirty
                && !o.held
                && o.writers == 0
                && o.data != data
            {
                o.data = Arc::clone(&data);
                o.version += 1;
                o.modified = SystemTime::now();
            }
            for h in self.handles.values_mut().filter(|h| h.ino == ino) {
                if let Some(f) = &mut h.frozen
                    && *f != data
                {
                    *f = Arc::clone(&data);
                }
            }
        }
    }

    /// Changes whenever what any directory resolves to or lists may have changed: the value, a
    /// name's meaning, a vector's gaps. Clears the directory cache when it changes.
    fn era(&mut self) -> u64 {
        use std::hash::{Hash, Hasher};
        let key = (
            self.session.root(),
            self.table.generation(),
            self.gaps_generation,
        );
        if key != self.dir_cache_key {
            self.dir_cache.clear();
            self.dir_cache_key = key;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            key.0.as_bytes().hash(&mut h);
            (key.1, key.2).hash(&mut h);
            self.era = h.finish();
        }
        self.era
    }

    /// How many inodes the mount holds (for statfs).
    pub fn inodes_in_use(&self) -> u64 {
        self.table.len() as u64
    }

    /// What is not committed yet, for `valfs status`: queued (coalesced) edits, and files
    /// open with writes not saved yet.
    pub fn pending_work(&self) -> (usize, usize) {
        let unsaved = self.open.values().filter(|o| o.dirty).count();
        (self.session.pending(), unsaved)
    }
}

/// What setattr was asked to change.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

#[cfg(test)]
mod tests;
