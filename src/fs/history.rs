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

impl HistoryIndex {
    /// Brings the index up to `head`, walking only the commits it has not seen (or all of
    /// them again if the branch was rewritten).
    pub fn refresh(&mut self, store: &Store, head: Oid) -> Result<()> {
        if self.tip == Some(head) {
            return Ok(());
        }
        let repo = store.repo();
        let mut fresh = Vec::new();
        let mut cur = Some(head);
        let mut reached_tip = false;
        while let Some(oid) = cur {
            if Some(oid) == self.tip {
                reached_tip = true;
                break;
            }
            let commit = repo.find_commit(oid)?;
            fresh.push(Version {
                commit: oid,
                time: commit.time().seconds(),
            });
            cur = commit.parent_ids().next();
        }
        if !reached_tip {
            self.versions.clear();
        }
        fresh.reverse();
        self.versions.extend(fresh);
        self.tip = Some(head);
        Ok(())
    }

    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The commit a name in `.history` stands for: a listed name, a hash or a revision.
    pub fn resolve(&self, store: &Store, name: &str) -> Option<Oid> {
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
