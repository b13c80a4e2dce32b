//! libgit2's object cache, in one place: how big it may grow for the process, which objects
//! it keeps, and when a long-lived handle (the mount's) empties its share.
//!
//! libgit2 counts a cached object by its raw size, and a small tree costs about 4 times that
//! resident: the handle's budget of 4 MiB is about 15 MB. Directories are resolved from
//! valfs's own caches (listing prints), so a bigger cache bought little speed for its memory
//! (BENCHMARKS.md). The process-wide bound is only for a single operation that reads a great
//! many trees; the mount empties the cache well before it ([`super::Store::bound_cache`]).

/// libgit2's bound for the whole process (its default is 256 MiB).
const PROCESS_LIMIT: usize = 16 << 20;

/// The largest tree libgit2 keeps (its default, 4 KiB, made every lookup in a folder of more
/// than about 100 entries parse its tree again): a full bucket. Blobs are not kept: a file's
/// bytes are read once per open, and the collection markers are kept parsed by the store.
const TREE_LIMIT: usize = 64 << 10;

/// The bytes of cache a long-lived handle may add before it empties them.
pub(super) const HANDLE_BUDGET: isize = 4 << 20;

/// Sets the process-wide bounds: once, before a long-lived process (the mount) serves.
pub fn configure() {
    crate::sys::limit_git_cache(PROCESS_LIMIT, TREE_LIMIT);
}
