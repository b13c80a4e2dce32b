//! The index of versions behind `.history`: kept incrementally, oldest first.

use crate::store::{Result, Store};
use git2::Oid;

/// One listed version.
#[derive(Clone, Copy, Debug)]
pub struct Version {
    pub commit: Oid,
    pub time: i64,
}

impl Version {
    /// `YYYY-MM-DDTHHMMSSZ-<short hash>`, in UTC, so names sort oldest first.
    pub fn name(&self) -> String {
        let (y, mo, d, h, mi, s) = crate::value::civil_from_unix(self.time);
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}{mi:02}{s:02}Z-{}",
            &self.commit.to_string()[..7]
        )
    }
}

/// The first-parent history of the mounted branch.
#[derive(Default)]
pub struct HistoryIndex {
    tip: Option<Oid>,
    versions: Vec<Version>,
}

/// The saved index: this header, then 28 bytes a version (the commit's id, its time as a
/// little-endian i64), oldest first.
const SAVED_HEADER: &[u8] = b"valfs history index 1\n";
const RECORD: usize = 28;

impl HistoryIndex {
    /// Brings the index up to `head`, walking only the commits it has not seen (or all of
    /// them again if the branch was rewritten).
    pub fn refresh(&mut self, store: &Store, head: Oid) -> Result<()> {
        if self.tip == Some(head) {
            return Ok(());
        }
        let odb = store.repo().odb()?;
        let mut fresh = Vec::new();
        let mut cur = Some(head);
        let mut reached_tip = false;
        while let Some(oid) = cur {
            if Some(oid) == self.tip {
                reached_tip = true;
                break;
            }
            let (time, parent) = commit_header(&odb, oid)?;
            fresh.push(Version { commit: oid, time });
            cur = parent;
        }
        if !reached_tip {
            self.versions.clear();
        }
        fresh.reverse();
        self.versions.extend(fresh);
        self.tip = Some(head);
        Ok(())
    }

    /// Whether this index is behind `other` (has seen less of the branch).
    pub fn is_behind(&self, other: &HistoryIndex) -> bool {
        self.versions.len() < other.versions.len()
    }

    /// Where a branch's index is kept between mounts: inside the repository.
    pub fn saved_path(store: &Store, branch: &str) -> std::path::PathBuf {
        store
            .path()
            .join("valfs")
            .join(format!("history-{}", branch.replace('/', "%2F")))
    }

    /// Reads a saved index; `None` when there is none or it does not fit the repository (its
    /// newest version must be a commit with that time). A branch that moved on since is
    /// caught up by [`HistoryIndex::refresh`].
    pub fn load(store: &Store, path: &std::path::Path) -> Option<HistoryIndex> {
        let bytes = std::fs::read(path).ok()?;
        let body = bytes.strip_prefix(SAVED_HEADER)?;
        if body.is_empty() || body.len() % RECORD != 0 {
            return None;
        }
        let versions: Vec<Version> = body
            .chunks_exact(RECORD)
            .map(|r| {
                let commit = Oid::from_bytes(&r[..20]).ok()?;
                let time = i64::from_le_bytes(r[20..].try_into().ok()?);
                Some(Version { commit, time })
            })
            .collect::<Option<_>>()?;
        let last = *versions.last()?;
        let odb = store.repo().odb().ok()?;
        match commit_header(&odb, last.commit) {
            Ok((time, _)) if time == last.time => Some(HistoryIndex {
                tip: Some(last.commit),
                versions,
            }),
            _ => None,
        }
    }

    /// Builds the index of a repository's branch with a handle of its own (so that a mount
    /// builds it outside its lock), starting from the saved one, and saves it again.
    pub fn build(repo: &std::path::Path, branch: &str) -> Result<HistoryIndex> {
        let store = Store::open(repo, branch)?;
        let path = HistoryIndex::saved_path(&store, branch);
        let mut index = HistoryIndex::load(&store, &path).unwrap_or_default();
        index.refresh(&store, store.head_commit()?)?;
        if let Err(e) = index.save(&path) {
            log::debug!("saving the history index {}: {e}", path.display());
        }
        Ok(index)
    }

    /// Saves the index for the next mount (atomically: a temporary file renamed over).
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = Vec::with_capacity(SAVED_HEADER.len() + self.versions.len() * RECORD);
        out.extend_from_slice(SAVED_HEADER);
        for v in &self.versions {
            out.extend_from_slice(v.commit.as_bytes());
            out.extend_from_slice(&v.time.to_le_bytes());
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, path)
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The commit a name in `.history` stands for: a listed name, a hash or a revision.
    pub fn resolve(&self, store: &Store, name: &str) -> Option<Oid> {
        // `HEAD~N` (or `BRANCH~N`) of the indexed branch: counted in the index rather than
        // walked commit by commit.
        if let Some((rev, n)) = name.split_once('~')
            && (rev == "HEAD" || rev == store.branch())
            && let Ok(n) = n.parse::<usize>()
            && self.tip.is_some()
            && store.head_commit().ok() == self.tip
        {
            let len = self.versions.len();
            return (n < len).then(|| self.versions[len - 1 - n].commit);
        }
        if let Some((stamp, hash)) = name.rsplit_once('-')
            && stamp.len() == 18
            && stamp.ends_with('Z')
            && let Ok(oid) = store.resolve(hash)
        {
            let v = self.versions.iter().find(|v| v.commit == oid);
            if v.is_some_and(|v| v.name() == name) {
                return Some(oid);
            }
            return None;
        }
        store.resolve(name).ok()
    }
}

/// A commit's committer time and first parent, read from its raw object (no full parse: the
/// index reads every commit of the branch once).
fn commit_header(odb: &git2::Odb<'_>, oid: Oid) -> Result<(i64, Option<Oid>)> {
    let obj = odb.read(oid)?;
    let bad = || crate::store::StoreError::Corrupt(format!("commit {oid} is unreadable"));
    if obj.kind() != git2::ObjectType::Commit {
        return Err(bad());
    }
    let mut parent = None;
    for line in obj.data().split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"parent ") {
            if parent.is_none() {
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                parent = Some(Oid::from_str(hex).map_err(|_| bad())?);
            }
        } else if let Some(who) = line.strip_prefix(b"committer ") {
            // `Name <email> 1700000000 +0000`: the time is the second field from the end.
            let time = who
                .rsplit(|&b| b == b' ')
                .nth(1)
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?;
            return Ok((time, parent));
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time() {
        let oid = Oid::from_str("1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d").unwrap();
        let a = Version {
            commit: oid,
            time: 1_795_255_200,
        }
        .name();
        assert_eq!(a, "2026-11-21T100000Z-1a2b3c4");
        let b = Version {
            commit: oid,
            time: 1_795_255_200 + 86_400 * 40,
        }
        .name();
        assert!(a < b);
    }
}
