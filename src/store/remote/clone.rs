//! `valfs clone`: a new store from a remote's valfs branch.
//!
//! The store is built in a scratch directory beside its path and renamed into place once the
//! branch is fetched and found to be a valfs value, so a clone that fails (the remote is down,
//! the branch is missing, it holds something else) leaves nothing behind.

use super::super::layout::Node;
use super::super::{Store, StoreError, trust};
use super::transfer::check_value;
use super::{Op, Options, Remote, RemoteError, Result, fetch, git, status};
use crate::codec::{Format, json};
use crate::value::CollKind;
use git2::{Oid, Repository};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What `valfs clone` makes.
#[derive(Clone, Debug)]
pub struct CloneOptions {
    /// The branch to take (also the new store's branch).
    pub branch: String,
    /// The store's format; `None` finds it from the value (see `detect_format`).
    pub format: Option<Format>,
    pub transfer: Options,
}

/// Makes a new store at `path` holding the remote's branch, with the remote as `origin`.
/// `path` must not exist yet or be an empty directory, as for `valfs init`.
pub fn clone(url: &str, path: &Path, opts: &CloneOptions) -> Result<(Store, Format)> {
    if Repository::open_bare(path).is_ok() {
        return Err(StoreError::Exists(path.display().to_string()).into());
    }
    trust::check_init_target(path)?;
    let url = git::kept_url(url)?;
    let scratch = Scratch::beside(path)?;
    let format = build(&url, &scratch.dir, opts)?;
    std::fs::rename(&scratch.dir, path)?;
    scratch.keep();
    Ok((Store::open(path, &opts.branch)?, format))
}

/// Builds the store in `dir`: fetch, check, configure, start the branch.
fn build(url: &str, dir: &Path, opts: &CloneOptions) -> Result<Format> {
    let repo = Repository::init_opts(
        dir,
        git2::RepositoryInitOptions::new()
            .bare(true)
            .initial_head(&opts.branch)
            .mkpath(true),
    )?;
    repo.config()?.set_bool("core.logAllRefUpdates", true)?;
    repo.remote("origin", url)?;
    let store = Store::from_repo(repo, dir, &opts.branch)?;
    let origin = Remote {
        name: "origin".into(),
        url: url.to_owned(),
    };
    let theirs = fetch(&store, &origin, &opts.transfer)?.ok_or_else(|| RemoteError::NoBranch {
        remote: url.to_owned(),
        branch: opts.branch.clone(),
    })?;
    let foreign = store.not_a_value(theirs)?.is_some();
    if foreign && !opts.transfer.adopt {
        check_value(&store, theirs, &format!("{url} {}", opts.branch))?;
    }
    let format = match opts.format {
        Some(f) => f,
        // Someone else's files are read as JSON, as in a store without valfs.format.
        None if foreign => Format::Json,
        None => detect_format(&store, theirs),
    };
    store
        .repo
        .config()?
        .set_str("valfs.format", format.name())?;
    if !store.start_at(theirs, &format!("clone from {url}"))? {
        return Err(StoreError::Exists(format!("branch {:?}", opts.branch)).into());
    }
    status::record(&store, "origin", Op::Sync, None);
    Ok(format)
}

/// The format of the value at `commit`: EDN when it holds a list or a set, a map key named as
/// EDN names keywords (`:k`) or quoted strings (`"users"`), or a scalar whose text is not JSON
/// (`nil`, `:keyword`, `42N`, a symbol); else JSON. Stops at the first sign of EDN; a value it
/// cannot read is taken as JSON.
pub fn detect_format(store: &Store, commit: Oid) -> Format {
    match holds_edn(store, commit) {
        Ok(true) => Format::Edn,
        Ok(false) => Format::Json,
        Err(e) => {
            log::debug!("finding the format of {commit}: {e}");
            Format::Json
        }
    }
}

fn holds_edn(store: &Store, commit: Oid) -> Result<bool, StoreError> {
    let mut seen = HashSet::new();
    let mut stack = vec![Node::Dir(store.commit_root(commit)?)];
    while let Some(node) = stack.pop() {
        if !seen.insert(node) {
            continue;
        }
        match node {
            Node::Dir(tree) => {
                let dir = store.read_dir(tree)?;
                if matches!(dir.kind, CollKind::List | CollKind::Set) {
                    return Ok(true);
                }
                // EDN names a keyword key `:k` and quotes a string key that reads as a symbol
                // (`"users"`); JSON keys rarely start so.
                if dir.kind == CollKind::Map
                    && dir.entries.iter().any(|c| c.name.starts_with([':', '"']))
                {
                    return Ok(true);
                }
                stack.extend(dir.entries.iter().map(|c| c.node));
            }
            Node::Leaf(blob) => {
                let bytes = store.read_blob(blob)?;
                let text = String::from_utf8_lossy(&bytes);
                if json::parse(text.strip_suffix('\n').unwrap_or(&text)).is_err() {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The directory a store is built in, beside its final path; removed (with the parent
/// directories made for it) unless kept.
struct Scratch {
    dir: PathBuf,
    /// The first directory made for it, if its parent did not exist.
    made: Option<PathBuf>,
    keep: bool,
}

impl Scratch {
    fn beside(path: &Path) -> Result<Scratch> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let made = parent
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .last()
            .map(Path::to_path_buf);
        std::fs::create_dir_all(&parent)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let dir = parent.join(format!(".{name}.{}.clone.tmp", std::process::id()));
        Ok(Scratch {
            dir,
            made,
            keep: false,
        })
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(made) = &self.made {
            let _ = std::fs::remove_dir_all(made);
        }
    }
}
