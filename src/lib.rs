//! valfs mounts a persistent value — a JSON or EDN document kept in a git repository — as a
//! directory tree, and makes every save a git commit.
//!
//! The model, layer by layer:
//!
//! - [`value`]: a value is maps, vectors (and EDN's lists, sets) and scalars; numbers keep
//!   their exact text.
//! - [`codec`]: text <-> value for each format, the rules for a scalar file's text, and the
//!   reversible escaping of keys into file names.
//! - [`store`]: value -> git. A collection is a tree (its kind recorded in a `.valfs` marker
//!   blob), a scalar a blob of its canonical text. An edit rewrites the changed blob and its
//!   ancestor trees only, commits, and moves the branch by compare-and-swap, merging
//!   structurally when another writer moved it first.
//! - `fs`: the mount, where each save is a commit and `.history` shows every version.
//!
//! # Limitations
//!
//! - The root value must be a collection (a map or a vector); a bare scalar cannot be mounted.
//! - Nesting deeper than [`codec::MAX_DEPTH`] levels is refused.
//! - On a true merge conflict the later save wins that entry; the other version stays in history.

pub mod cli;
pub mod codec;
pub mod daemon;
pub mod fs;
pub mod store;
pub mod sys;
pub mod value;
