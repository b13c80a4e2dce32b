//! Revisions, log and structural diff.

use super::layout::Node;
use super::{Result, Store, StoreError};
use crate::value::{Path, Value};
use git2::Oid;
use std::collections::BTreeMap;

/// One commit as `valfs log` shows it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub commit: Oid,
    /// Seconds since the epoch (commit time).
    pub time: i64,
    pub summary: String,
}

/// One changed path between two versions.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub path: Path,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl Store {
    /// Resolves git revision syntax to a commit. `HEAD` means this store's branch.
    pub fn resolve(&self, rev: &str) -> Result<Oid> {
        // Only HEAD itself, not a branch or tag whose name starts with HEAD (`HEADLINE`).
        let spec = match rev.strip_prefix("HEAD") {
            Some(rest) if rest.is_empty() || rest.starts_with(['~', '^', '@', ':']) => {
                format!("refs/heads/{}{rest}", self.branch)
            }
            _ => rev.to_owned(),
        };
        let unknown = || StoreError::UnknownRevision(rev.to_owned());
        if let Ok(obj) = self.repo.revparse_single(&spec) {
            return Ok(obj.peel_to_commit().map_err(|_| unknown())?.id());
        }
        // The names `.history` gives: a time (`@2026-11-21T10:00Z`) or a listed version name
        // (`2026-11-21T100000Z-01-1a2b3c4`), resolved through the branch's index of versions
        // (which answers these forms itself, without coming back here).
        let listed = rev.len() > 18 && rev.as_bytes().get(17) == Some(&b'Z');
        if rev.starts_with('@') || listed {
            let index = super::HistoryIndex::current(self)?;
            return index.resolve(self, rev).ok_or_else(unknown);
        }
        Err(unknown())
    }

    /// Commits of the branch, newest first, that changed `path` (all of them for the root).
    pub fn log(&self, path: &Path, limit: Option<usize>) -> Result<Vec<LogEntry>> {
        let mut walk = self.repo.revwalk()?;
        walk.push(self.head_commit()?)?;
        walk.simplify_first_parent()?;
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid?;
            let commit = self.repo.find_commit(oid)?;
            if !path.is_root() {
                let here = self.node_at(commit.tree_id(), path).ok();
                let before = match commit.parent_ids().next() {
                    Some(p) => self.node_at(self.commit_root(p)?, path).ok(),
                    None => None,
                };
                if here == before {
                    continue;
                }
            }
            out.push(LogEntry {
                commit: oid,
                time: commit.time().seconds(),
                summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                    .into_owned(),
            });
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// The paths that differ between two root trees, with their old and new values.
    pub fn diff(&self, old_root: Oid, new_root: Oid) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        self.diff_nodes(
            Some(Node::Dir(old_root)),
            Some(Node::Dir(new_root)),
            &Path::root(),
            &mut out,
        )?;
        Ok(out)
    }

    fn diff_nodes(
        &self,
        old: Option<Node>,
        new: Option<Node>,
        path: &Path,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        if let (Some(Node::Dir(a)), Some(Node::Dir(b))) = (old, new) {
            let (da, db) = (self.read_dir(a)?, self.read_dir(b)?);
            if da.kind == db.kind {
                let mut pairs: BTreeMap<String, (Option<Node>, Option<Node>)> = BTreeMap::new();
                for c in da.entries {
                    pairs.entry(c.name).or_default().0 = Some(c.node);
                }
                for c in db.entries {
                    pairs.entry(c.name).or_default().1 = Some(c.node);
                }
                let mut pairs: Vec<_> = pairs.into_iter().collect();
                if da.kind.is_sequence() {
                    pairs.sort_by_key(|(n, _)| super::layout::parse_index(n));
                }
                for (name, (a, b)) in pairs {
                    self.diff_nodes(a, b, &path.child(&name), out)?;
                }
                return Ok(());
            }
        }
        out.push(Change {
            path: path.clone(),
            old: old.map(|n| self.read_value(n)).transpose()?,
            new: new.map(|n| self.read_value(n)).transpose()?,
        });
        Ok(())
    }
}
