//! The mount's state and every operation on it, free of fuser: each returns a `Result`.

use super::error::{FsError, MAX_FILE, Result};
use super::inode::{HISTORY, Ino, Inode, Place, ROOT, ScratchFile, Table};
use super::scratch::Scratch;
use crate::codec::{self, name};
use crate::store::HistoryIndex;
use crate::store::Oid;
use crate::store::{Edit, Node, Store};
use crate::value::{CollKind, Path, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod open;
mod perms;
mod scratch_files;
mod squash;
pub use perms::Creator;

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
    HistoryRoot,
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
    /// Bytes of an immutable file under `.history`.
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
    /// The commit the view is based on, and the view's root tree (ahead of it only while
    /// coalesced edits wait for their commit).
    base: Oid,
    root: Oid,
    base_time: SystemTime,
    pending: Vec<String>,
    last_edit: Instant,
    table: Table,
    open: HashMap<Ino, OpenFile>,
    handles: HashMap<u64, Handle>,
    /// The latest listings made, for the kernel's reads past their first entries, the most
    /// recently used last (see [`State::listing`]).
    listings: Vec<Kept>,
    /// The number of the latest listing made.
    listing_no: u32,
    /// A commit was made or followed: `.history` lists one more version.
    history_moved: bool,
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
    kinds: HashMap<Oid, CollKind>,
    /// The object last seen at each visited path, and its mtime.
    seen: HashMap<String, (Oid, SystemTime)>,
    /// The latest mtime given to a changed folder (see [`State::stamp`]).
    last_stamp: SystemTime,
    /// `.history`'s mtime: stamped at every new version.
    history_time: Option<SystemTime>,
    history: HistoryIndex,
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
        let base = store.head_commit()?;
        let root = store.commit_root(base)?;
        let perms = perms::open(&store)?;
        let files = super::scratch::Files::of(&store);
        let mut state = State {
            store,
            opts,
            base,
            root,
            base_time: SystemTime::UNIX_EPOCH,
            pending: Vec::new(),
            last_edit: Instant::now(),
            table: Table::default(),
            open: HashMap::new(),
            handles: HashMap::new(),
            listings: Vec::new(),
            listing_no: 0,
            history_moved: false,
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
            history_time: None,
            history: HistoryIndex::default(),
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

    pub fn inode_count(&self) -> usize {
        self.table.len()
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
    /// content), `.history`'s listing after a commit, everything after a merge.
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
        if std::mem::take(&mut self.history_moved) {
            inval.listings.push(HISTORY);
            self.history_time = Some(self.next_stamp());
        }
        if std::mem::take(&mut self.all_stale) {
            self.reload_open();
            // Every listing (the root's too: the table holds no slot for it) and every file.
            let (dirs, files): (Vec<Ino>, Vec<Ino>) = self
                .table
                .live_inos()
                .into_iter()
                .partition(|&i| self.table.get(i).is_some_and(|i| i.is_dir));
            inval
                .listings
                .extend([ROOT, HISTORY].into_iter().chain(dirs));
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
        let key = (self.root, self.table.generation(), self.gaps_generation);
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

    /// The cached resolution of a directory, if still valid: from the bounded cache, or from
    /// the print of its last listing while nothing changed since.
    fn cached_dir(&mut self, ino: Ino) -> Option<(Oid, CollKind)> {
        let era = self.era();
        if let Some(d) = self.dir_cache.get(&ino) {
            return Some(*d);
        }
        let p = self.listed.get(&ino)?;
        (p.era == era).then_some((p.tree, p.kind))
    }

    fn cache_dir(&mut self, ino: Ino, tree: Oid, kind: CollKind) {
        if self.dir_cache.len() >= 1 << 16 {
            self.dir_cache.clear();
        }
        self.dir_cache.insert(ino, (tree, kind));
    }

    fn kind(&mut self, tree: Oid) -> Result<CollKind> {
        if let Some(k) = self.kinds.get(&tree) {
            return Ok(*k);
        }
        let k = self.store.dir_kind(tree)?;
        if self.kinds.len() > 100_000 {
            self.kinds.clear();
        }
        self.kinds.insert(tree, k);
        Ok(k)
    }

    fn inode(&self, ino: Ino) -> Result<Inode<'_>> {
        self.table.get(ino).ok_or(FsError::NotFound)
    }

    fn place(&self, ino: Ino) -> Result<Place> {
        match ino {
            ROOT | HISTORY => Ok(Place::Live),
            _ => Ok(self.inode(ino)?.place),
        }
    }

    fn writable(&self, ino: Ino) -> Result<()> {
        ro_if(self.opts.read_only || ino == HISTORY || self.place(ino)? != Place::Live)
    }

    // ----- resolution -----

    /// The committed index of a view index in a live vector directory.
    fn committed_index(&self, dir: Ino, view: usize) -> Option<usize> {
        match self.gaps.get(&dir) {
            Some(g) if g.contains(&view) => None,
            Some(g) => Some(view - g.range(..view).count()),
            None => Some(view),
        }
    }

    /// The git entry name of `name` in directory `dir` of the given kind.
    fn git_name(
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
            let kind = self.kind(self.root)?;
            return Ok(Obj::Dir {
                tree: self.root,
                kind,
            });
        }
        if ino == HISTORY {
            return Ok(Obj::HistoryRoot);
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
        let node = if parent == HISTORY {
            let Place::Version(commit) = place else {
                return Err(FsError::NotFound);
            };
            Node::Dir(self.store.commit_root(commit)?)
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
    fn store_path(&mut self, ino: Ino) -> Result<Path> {
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let i = self.inode(cur)?;
            if i.parent == 0 || i.parent == HISTORY || i.place != Place::Live {
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

    fn child_git_name(&mut self, parent: Ino, name: &str) -> Result<String> {
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

    fn child_path(&mut self, parent: Ino, name: &str) -> Result<Path> {
        let p = self.store_path(parent)?;
        Ok(p.child(&self.child_git_name(parent, name)?))
    }

    /// The canonical form of a name typed in a directory (indices lose their padding).
    fn canonical(&mut self, parent: Ino, name: &str) -> Result<String> {
        if let Ok(Obj::Dir { kind, .. }) = self.resolve(parent)
            && kind.is_sequence()
            && !self.is_scratch_name_in(parent, name)
            && let Some(i) = crate::store::parse_index(name)
        {
            return Ok(i.to_string());
        }
        Ok(name.to_owned())
    }

    fn is_scratch_name_in(&self, parent: Ino, name: &str) -> bool {
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
    fn is_scratch_name(&mut self, parent: Ino, name: &str) -> bool {
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

    // ----- attributes -----

    /// A path's mtime: when this mount first saw it, or saw its content change. Kept by path,
    /// so an inode the kernel forgot and looks up again keeps its time.
    fn times_for(&mut self, ino: Ino, oid: Option<Oid>) -> SystemTime {
        let commit_time = self.base_time;
        if let Some(t) = self.table.get(ino).and_then(|i| i.meta.mtime) {
            return t;
        }
        if self.root == self.first_root && self.seen.is_empty() {
            // Nothing changed since the mount started.
            return self.first_time;
        }
        let (Some(oid), Ok(path)) = (oid, self.store_path(ino)) else {
            return commit_time;
        };
        let key = path.to_string();
        if !self.seen.contains_key(&key)
            && (self.root == self.first_root
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
    fn stamp(&mut self, dir: Ino) {
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
    fn next_stamp(&mut self) -> SystemTime {
        self.last_stamp = SystemTime::now().max(self.last_stamp + Duration::from_nanos(1));
        self.last_stamp
    }

    fn commit_time(&self, commit: Oid) -> SystemTime {
        self.store
            .commit_time(commit)
            .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64))
            .unwrap_or(self.started)
    }

    pub fn getattr(&mut self, ino: Ino) -> Result<Attr> {
        let obj = self.resolve(ino)?;
        let place = self.place(ino)?;
        let read_only = self.opts.read_only || place != Place::Live || ino == HISTORY;
        let (is_dir, size, oid) = match obj {
            Obj::HistoryRoot => (true, 0, None),
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
            Obj::Scratch => (false, self.scratch_stat(ino)?.0, None),
        };
        let mut mtime = match (place, obj) {
            (Place::Version(c), _) => self.commit_time(c),
            (_, Obj::HistoryRoot) => self.history_time.unwrap_or(self.base_time),
            // Stable between changes: the kernel drops a file's pages when its mtime moves.
            (_, Obj::Pending) => self.open.get(&ino).map_or(self.started, |o| o.modified),
            (_, Obj::Scratch) => self.scratch_stat(ino)?.1,
            _ => self.times_for(ino, oid),
        };
        let meta = self
            .table
            .get(ino)
            .map(|i| i.meta.clone())
            .unwrap_or_default();
        if let Some(t) = meta.mtime {
            mtime = t;
        }
        let (set, ctime) = if place == Place::Live && ino != HISTORY {
            (self.perm_of(ino), self.ctime_of(ino))
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
            unlinked: ino != ROOT
                && ino != HISTORY
                && self.table.get(ino).is_some_and(|i| i.parent == 0),
            subdirs: match obj {
                Obj::Dir { tree, .. } => {
                    self.store.subdir_count(tree).ok().flatten().map(|n| {
                        u32::try_from(n + usize::from(ino == ROOT)).unwrap_or(u32::MAX - 2)
                    })
                }
                _ => None,
            },
        })
    }

    // ----- lookup and listing -----

    /// Whether the names in `dir` can come to mean other entries while the kernel caches them:
    /// the elements of a live vector (a removal shifts the later ones at the next listing, a
    /// written collection replaces a file, and `3`, `03` name one element, so an invalidation
    /// by name cannot reach every spelling). The kernel must ask again at every use.
    pub fn names_shift(&mut self, dir: Ino) -> bool {
        self.place(dir).is_ok_and(|p| p == Place::Live)
            && matches!(self.resolve(dir), Ok(Obj::Dir { kind, .. }) if kind.is_sequence())
    }

    pub fn lookup(&mut self, parent: Ino, name: &str) -> Result<Attr> {
        let ino = self.lookup_ino(parent, name)?;
        let attr = self.getattr(ino)?;
        if let Some(n) = self.table.nlookup_mut(ino) {
            *n += 1;
        }
        Ok(attr)
    }

    fn lookup_ino(&mut self, parent: Ino, name: &str) -> Result<Ino> {
        if parent == ROOT && name == ".history" {
            return Ok(HISTORY);
        }
        if parent == HISTORY {
            // Listed names and hashes always mean the same commit; revisions such as HEAD~1
            // move with the branch, so they are resolved again at every lookup.
            let fixed = is_version_name(name);
            if let Some(ino) = self.table.find(HISTORY, name)
                && fixed
            {
                return Ok(ino);
            }
            self.refresh_history()?;
            let commit = self
                .history
                .resolve(&self.store, name)
                .ok_or(FsError::NotFound)?;
            if let Some(ino) = self.table.find(HISTORY, name)
                && self
                    .table
                    .get(ino)
                    .is_some_and(|i| i.place == Place::Version(commit))
            {
                return Ok(ino);
            }
            return Ok(self
                .table
                .insert(HISTORY, name, Place::Version(commit), true));
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
    fn unused(&self, ino: Ino) -> bool {
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

    /// Installs a `.history` index built outside the lock, unless this one has seen more.
    pub fn offer_history(&mut self, index: HistoryIndex) {
        if self.history.is_behind(&index) {
            self.history = index;
        }
    }

    /// Brings the `.history` index up to the branch head.
    pub fn refresh_history(&mut self) -> Result<()> {
        let head = self.store.head_commit()?;
        self.history.refresh(&self.store, head)?;
        Ok(())
    }

    /// What a directory's listing is made of now (`None` if it is not a directory).
    fn print(&mut self, ino: Ino) -> Result<Option<Print>> {
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

    fn forget_listing(&mut self, at: usize) {
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
            if ino != HISTORY
                && !self.gaps.contains_key(&ino)
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

    fn list(&mut self, ino: Ino) -> Result<Vec<Listed>> {
        let obj = self.resolve(ino)?;
        if obj == Obj::HistoryRoot {
            self.refresh_history()?;
            return Ok(self
                .history
                .versions()
                .iter()
                .map(|v| {
                    let name = v.name();
                    Listed {
                        ino: self.table.number_for(HISTORY, &name),
                        name,
                        is_dir: true,
                    }
                })
                .collect());
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
            out.push(Listed {
                name: ".history".into(),
                ino: HISTORY,
                is_dir: true,
            });
        }
        let width = if kind.is_sequence() {
            dir.entries.len().saturating_sub(1).to_string().len()
        } else {
            0
        };
        for c in &dir.entries {
            if self.hidden.contains_key(&(ino, c.name.clone())) {
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
    fn close_gaps(&mut self, dir: Ino) {
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
                self.table.rename(ino, dir, &(view - below).to_string());
            }
        }
        self.epoch_due = true;
    }

    // ----- open, read, write -----

    fn new_fh(&mut self) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        fh
    }

    /// Opens a file: the handle, whether the kernel may keep the pages it cached of the file
    /// (they hold exactly what a read would return now), and bytes to give the kernel's page
    /// cache before the reply (see `Opened::fill`).
    pub fn open(&mut self, ino: Ino, write: bool, truncate: bool, append: bool) -> Result<Opened> {
        let obj = self.resolve(ino)?;
        if write || truncate {
            self.writable(ino)?;
            if matches!(obj, Obj::File { .. }) {
                let parent = self.inode(ino)?.parent;
                self.not_inside_member(parent)?;
            }
        }
        // Past versions never change: their pages may stay cached.
        let mut cacheable = false;
        let frozen = match obj {
            Obj::Dir { .. } | Obj::HistoryRoot => return Err(FsError::IsADirectory),
            Obj::File { blob } if self.place(ino)? != Place::Live => {
                cacheable = true;
                Some(std::sync::Arc::new(self.store.read_blob(blob)?))
            }
            // Open already with nothing pending: most often a descriptor that was just closed
            // (close(2) commits; the kernel releases the handle later, on its own). Its buffer
            // holds the bytes written, which may read differently from the value they saved
            // (`Bob` is saved as `"Bob"`). A reader sees what is saved, as it would once that
            // handle is gone: `echo Bob > name; cat name` shows `"Bob"`, always. A writer
            // still shares the buffer, as descriptors on one file do; so does a reader while
            // an fsync holds the buffer (see `open::hold`).
            Obj::File { blob }
                if !write
                    && !truncate
                    && self.open.contains_key(&ino)
                    && !self.shows_buffer(ino) =>
            {
                Some(std::sync::Arc::new(self.store.read_blob(blob)?))
            }
            Obj::Scratch => {
                if truncate {
                    self.scratch_truncate(ino, 0)?;
                }
                None
            }
            Obj::File { blob } => {
                if !self.open.contains_key(&ino) {
                    // A truncating open needs not the old bytes: a damaged blob can be overwritten.
                    let data = if truncate {
                        Vec::new()
                    } else {
                        self.store.read_blob(blob)?
                    };
                    self.open.insert(
                        ino,
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
                        },
                    );
                }
                None
            }
            Obj::Pending => None,
        };
        let counted = self.open.contains_key(&ino);
        let writing = write || truncate;
        let mut fill = None;
        if let Obj::File { blob } = obj
            && !cacheable
        {
            let writers = self.open.get(&ino).map_or(0, |o| o.writers) + usize::from(writing);
            let mark = pages_mark(blob);
            if writers > 0 {
                self.table.set_pages(ino, 0);
            } else if self.table.pages(ino) == mark {
                cacheable = true;
            } else {
                self.table.set_pages(ino, mark);
                let data = frozen.as_ref().or(self.open.get(&ino).map(|o| &o.data));
                if let Some(d) = data.filter(|d| d.len() <= MAX_FILL) {
                    fill = Some(Fill {
                        data: Arc::clone(d),
                        mark,
                        era: self.era(),
                    });
                }
            }
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

    /// Commits the open buffer of `ino` if it changed.
    fn save(&mut self, ino: Ino) -> Result<Inval> {
        self.save_as(ino, None)
    }

    /// Commits the open buffer of `ino` if it changed: parsed here, or already parsed and
    /// written to the object database (`written`).
    fn save_as(&mut self, ino: Ino, written: Option<&Written>) -> Result<Inval> {
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
        match (insert, crate::store::parse_index(&name), value) {
            (true, Some(v), Some(value)) => {
                let before = self.gaps.get(&parent).map_or(0, |g| g.range(..v).count());
                let path = self.store_path(parent)?.child(&(v - before).to_string());
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
                let path = self.child_path(parent, &name)?;
                self.edit(
                    vec![Edit::Set(path.clone(), value)],
                    format!("write {path}"),
                )?;
            }
            (_, _, None) => {
                let w = written.ok_or(FsError::Invalid("nothing to save".into()))?;
                let path = self.child_path(parent, &name)?;
                if path.names().len() + w.depth > codec::MAX_DEPTH {
                    return Err(codec::CodecError::TooDeep.into());
                }
                self.edit(
                    vec![Edit::Put(path.clone(), w.node)],
                    format!("write {path}"),
                )?;
            }
        }
        if let Some(o) = self.open.get_mut(&ino) {
            o.dirty = false;
            o.wrote = false;
        }
        self.hidden.remove(&(parent, name.clone()));
        if let Some(e) = self.extras.get_mut(&parent) {
            e.remove(&name);
        }
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

    // ----- changing the value -----

    /// Applies edits to the view and commits them (or queues them when coalescing).
    fn edit(&mut self, edits: Vec<Edit>, message: String) -> Result<()> {
        let new_root = self.store.apply_to_tree(self.root, &edits)?;
        if new_root == self.root {
            return Ok(());
        }
        self.perms_before(&edits)?;
        let replacing = self.completes_unlink(&edits);
        let old = self.root;
        self.root = new_root;
        self.pending.push(message);
        self.last_edit = Instant::now();
        if self.opts.coalesce.is_some() {
            return Ok(());
        }
        if let Some((replaced, parent)) = replacing {
            match self.commit_replacing(replaced, parent) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => log::debug!("completing the unlink's commit: {e}"),
            }
        }
        if let Err(e) = self.commit_pending() {
            self.root = old;
            self.pending.clear();
            self.perms_due.clear();
            return Err(e);
        }
        Ok(())
    }

    /// Commits queued edits, if any.
    pub fn commit_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let message = if self.pending.len() == 1 {
            self.pending[0].clone()
        } else {
            format!(
                "{} changes\n\n{}",
                self.pending.len(),
                self.pending.join("\n")
            )
        };
        let base_root = self.store.commit_root(self.base)?;
        let result = self
            .store
            .commit_onto(self.base, base_root, self.root, &message)?;
        self.pending.clear();
        self.perms_after_commit();
        let base = match result {
            Some(c) => c,
            None => self.store.head_commit()?,
        };
        let ours = self.root;
        self.set_base(base)?;
        self.history_moved = true;
        // Merged with another writer's commit: the kernel saw none of its changes.
        self.all_stale |= self.root != ours;
        Ok(())
    }

    /// Bases the view on a commit: its tree, and its time for the mtimes of what is unchanged.
    fn set_base(&mut self, commit: Oid) -> Result<()> {
        self.base = commit;
        self.root = self.store.commit_root(commit)?;
        self.base_time = self.commit_time(commit);
        Ok(())
    }

    /// Commits coalesced edits once they have been quiet long enough.
    pub fn tick(&mut self) -> Result<()> {
        if let Some(quiet) = self.opts.coalesce
            && !self.pending.is_empty()
            && self.last_edit.elapsed() >= quiet
        {
            self.commit_pending()?;
        }
        Ok(())
    }

    /// Follows commits made by other writers (everything the kernel cached is then stale:
    /// see [`State::take_inval`]).
    pub fn follow_head(&mut self) -> Result<()> {
        self.refresh_perms();
        let head = self.store.head_commit()?;
        if head == self.base || !self.pending.is_empty() {
            return Ok(());
        }
        self.set_base(head)?;
        self.history_moved = true;
        self.all_stale = true;
        Ok(())
    }

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
                    data: Arc::default(),
                    dirty: true,
                    wrote: false,
                    handles: 0,
                    writers: 0,
                    version: 0,
                    insert,
                    too_big: false,
                    modified: SystemTime::now(),
                    held: false,
                },
            );
            ino
        };
        let listed = self.inode(ino)?.name.to_owned();
        self.extras.entry(parent).or_default().insert(listed);
        if self.inode(ino)?.scratch.is_some() {
            self.scratch_created(ino, who)?;
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

    fn bump(&mut self, ino: Ino) {
        if let Some(n) = self.table.nlookup_mut(ino) {
            *n += 1;
        }
    }

    fn view_len(&mut self, dir: Ino) -> Result<usize> {
        let Obj::Dir { tree, .. } = self.resolve(dir)? else {
            return Err(FsError::NotADirectory);
        };
        let committed = self.store.entry_count(tree)?;
        Ok(committed + self.gaps.get(&dir).map_or(0, BTreeSet::len))
    }

    fn is_next_index(&mut self, dir: Ino, kind: CollKind, name: &str) -> bool {
        kind.is_sequence()
            && crate::store::parse_index(name).is_some_and(|i| self.view_len(dir).ok() == Some(i))
    }

    /// Checks a name for a new key and returns its canonical form.
    fn new_key_name(&mut self, parent: Ino, kind: CollKind, name: &str) -> Result<String> {
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

    fn is_set(&mut self, dir: Ino) -> bool {
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
    fn not_inside_member(&mut self, dir: Ino) -> Result<()> {
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
    fn member_of_name(&self, name: &str) -> Result<Value> {
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
    fn file_value(&mut self, parent: Ino, name: &str, data: &[u8]) -> Result<Value> {
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
        let path = self.child_path(parent, &canonical)?;
        self.set_created(&path, who, true)?;
        self.edit(
            vec![Edit::Set(path.clone(), value)],
            format!("mkdir {path}"),
        )?;
        self.lookup(parent, &canonical)
    }

    /// Removes a key (`dir` says whether rmdir or unlink was asked for).
    pub fn remove(&mut self, parent: Ino, name: &str, dir: bool) -> Result<()> {
        self.writable(parent)?;
        self.touched.push(parent);
        self.not_inside_member(parent)?;
        let ino = self.lookup_ino(parent, name)?;
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
        let before = self.base;
        self.edit(vec![Edit::Remove(path.clone())], format!("{verb} {path}"))?;
        if !dir {
            self.unlinked(before, path.clone());
        }
        self.removed(parent, &canonical)?;
        if let Some(o) = self.open.get_mut(&ino) {
            o.dirty = false;
        }
        Ok(())
    }

    /// Bookkeeping after a key left a directory: a vector keeps a gap until listed again.
    fn removed(&mut self, parent: Ino, canonical: &str) -> Result<()> {
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
    fn drop_backup(&mut self, scratch: Ino) -> Result<()> {
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
                if self.store.node_at(self.root, &path).is_ok() {
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
        // Keep the .history index for the next mount (best effort: the repository may be
        // read-only).
        if self.refresh_history().is_ok() {
            let path = HistoryIndex::saved_path(&self.store, self.store.branch());
            if let Err(e) = self.history.save(&path) {
                log::debug!("saving the history index {}: {e}", path.display());
            }
        }
        inval.absorb(self.take_inval());
        Ok(inval)
    }

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
        let src_name = self.inode(src)?.name.to_owned();
        let dst = self.lookup_ino(newparent, newname).ok();
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
        if exchange {
            let dst = dst.ok_or(FsError::NotFound)?;
            let (a, b) = (self.store_path(src)?, self.store_path(dst)?);
            let (na, nb) = (
                self.store.node_at(self.root, &a)?,
                self.store.node_at(self.root, &b)?,
            );
            self.edit(
                vec![Edit::Put(a.clone(), nb), Edit::Put(b.clone(), na)],
                format!("exchange {a} <-> {b}"),
            )?;
            let dst_name = self.inode(dst)?.name.to_owned();
            self.table.detach(parent, &src_name);
            self.table.detach(newparent, &dst_name);
            return Ok(Inval {
                entries: vec![(parent, src_name), (newparent, dst_name)],
                epoch: true,
                ..Inval::default()
            });
        }
        let dst_is_key = dst.is_some_and(|d| !matches!(self.resolve(d), Ok(Obj::Scratch)));
        let dst_scratch = !dst_is_key
            && self.is_scratch_name(newparent, newname)
            && !self.is_next_index(newparent, dst_kind, newname);
        let mut inval = Inval::default();
        match src_obj {
            Obj::Scratch if dst_scratch => {
                self.scratch_rename(src, newparent, newname)?;
                self.move_extra(parent, &src_name, newparent, newname);
                self.table.rename(src, newparent, newname);
            }
            Obj::Scratch | Obj::Pending => {
                let data = match src_obj {
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
                let canonical = match dst {
                    Some(d) => self.inode(d)?.name.to_owned(),
                    None => self.new_key_name(newparent, dst_kind, newname)?,
                };
                let value = self.file_value(newparent, &canonical, &data)?;
                let path = self.child_path(newparent, &canonical)?;
                self.perms_onto_key(src, &path)?;
                let is_dir = value.is_collection();
                self.edit(
                    vec![Edit::Set(path.clone(), value)],
                    format!("write {path}"),
                )?;
                if let Some(e) = self.extras.get_mut(&parent) {
                    e.remove(&src_name);
                }
                self.hidden.remove(&(newparent, canonical.clone()));
                self.drop_backup(src)?;
                if let Some(o) = self.open.get_mut(&src) {
                    o.dirty = false;
                }
                if matches!(src_obj, Obj::Scratch) {
                    // Its bytes are the key's now.
                    self.scratch_unlink(src)?;
                }
                self.table.rename(src, newparent, &canonical);
                self.table.set_scratch(src, None);
                self.table.set_dir(src, is_dir);
                if is_dir {
                    self.table.detach(newparent, &canonical);
                }
                inval.entries.push((newparent, canonical));
            }
            Obj::File { blob } if dst_scratch => {
                // `NAME` -> `NAME~`: the key is hidden, its removal pending until the save completes.
                let data = self.store.read_blob(blob)?;
                // The backup shows what the key had (a 600 file's copy stays 600).
                let perm = self.perm_of(src);
                let mode = perm.mode.unwrap_or(0o666 & !self.opts.umask & 0o777);
                let mut rel = self.mount_path(newparent)?;
                rel.push(newname.to_owned());
                self.files.write_all(&self.files.path(&rel), &data, mode)?;
                self.unlink_perms(src, false)?;
                self.hidden.insert((parent, src_name.clone()), src);
                self.extras
                    .entry(newparent)
                    .or_default()
                    .insert(newname.to_owned());
                self.table.rename(src, newparent, newname);
                self.table
                    .set_scratch(src, Some(ScratchFile { symlink: false }));
                let owners = crate::store::meta::Perm {
                    mode: None,
                    uid: Some(perm.uid.unwrap_or(self.opts.uid)),
                    gid: Some(perm.gid.unwrap_or(self.opts.gid)),
                };
                self.set_perm(src, owners)?;
                self.open.remove(&src);
            }
            _ => {
                let from = self.store_path(src)?;
                let canonical = match dst {
                    Some(d) => self.inode(d)?.name.to_owned(),
                    None => self.new_key_name(newparent, dst_kind, newname)?,
                };
                let to = self.child_path(newparent, &canonical)?;
                if let Some(d) = dst
                    && let (Ok(Obj::Dir { tree, .. }), true) =
                        (self.resolve(d), matches!(src_obj, Obj::Dir { .. }))
                    && self.store.entry_count(tree)? > 0
                {
                    return Err(FsError::NotEmpty);
                }
                self.edit(
                    vec![Edit::Move(from.clone(), to.clone())],
                    format!("mv {from} -> {to}"),
                )?;
                if matches!(src_obj, Obj::Dir { .. }) {
                    self.scratch_dir_moved(src, newparent, &canonical);
                }
                self.removed(parent, &src_name)?;
                self.table.rename(src, newparent, &canonical);
                inval.entries.push((newparent, canonical));
            }
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

    fn move_extra(&mut self, parent: Ino, name: &str, newparent: Ino, newname: &str) {
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
        self.lookup(parent, name)
    }

    pub fn readlink(&mut self, ino: Ino) -> Result<Vec<u8>> {
        if !self.inode(ino)?.scratch.is_some_and(|s| s.symlink) {
            return Err(FsError::Invalid("not a symlink".into()));
        }
        self.scratch_link(ino)
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
                Obj::Dir { .. } | Obj::HistoryRoot => return Err(FsError::IsADirectory),
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

    // ----- extended attributes -----

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

    fn type_name(&mut self, ino: Ino) -> Result<String> {
        Ok(match self.resolve(ino)? {
            Obj::HistoryRoot => return Err(FsError::NoAttribute),
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
        if !matches!(self.resolve(ino)?, Obj::HistoryRoot) {
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
    fn convert(&mut self, ino: Ino, to: &str) -> Result<()> {
        let current = self.type_name(ino)?;
        if current == to {
            return Ok(());
        }
        if let Obj::Dir { tree, .. } = self.resolve(ino)? {
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
            // The elements are named by index now: new inodes stand for them.
            for c in old {
                self.table.detach(ino, &c.name);
            }
            self.touched.push(ino);
            return Ok(());
        }
        let Obj::File { .. } = self.resolve(ino)? else {
            return Err(FsError::Invalid(format!(
                "cannot convert a {current} to {to}"
            )));
        };
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

    /// How many inodes the mount holds (for statfs).
    pub fn inodes_in_use(&self) -> u64 {
        self.table.len() as u64
    }

    /// What is not committed yet, for `valfs status`: queued (coalesced) edits, and files
    /// open with writes not saved yet.
    pub fn pending_work(&self) -> (usize, usize) {
        let unsaved = self.open.values().filter(|o| o.dirty).count();
        (self.pending.len(), unsaved)
    }
}

/// Whether a name under `.history` always names the same commit: a listed
/// `YYYY-MM-DDTHHMMSSZ-<hash>` name or a hash (not a revision like `HEAD~1`).
pub fn is_version_name(name: &str) -> bool {
    let hash = name.rsplit_once('-').map_or(name, |(_, h)| h);
    hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit())
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
