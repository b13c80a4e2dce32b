//! The `.history` view: a read-only folder listing every version of the branch, oldest first,
//! each a frozen copy of the value as it was then. Names are `YYYY-MM-DDTHHMMSSZ-NN-<hash>`
//! (and hashes, and revisions such as `HEAD~1` or `@TIME`, which are looked up but not
//! listed). The index of versions is kept in store (`crate::store::HistoryIndex`).

use super::view::{Cache, Naming, View};
use super::*;

/// The number of the `.history` folder.
const FOLDER: Ino = super::super::inode::FIRST_VIEW;

/// The view's state in the mount.
#[derive(Default)]
pub(super) struct Versions {
    index: HistoryIndex,
    /// The folder's mtime: stamped at every new version.
    time: Option<SystemTime>,
}

pub(super) struct History;

impl View for History {
    fn folder(&self) -> Option<(&'static str, Ino)> {
        Some((".history", FOLDER))
    }

    fn writable(&self) -> bool {
        false
    }

    fn cache(&self, ino: Ino) -> Cache {
        // The folder gains a version at every commit; what is in a version never changes.
        if ino == FOLDER {
            Cache::Short
        } else {
            Cache::Frozen
        }
    }

    fn lookup(&self, st: &mut State, name: &str) -> Result<(Ino, Naming)> {
        // Listed names and hashes always mean the same commit; revisions such as HEAD~1
        // move with the branch, so they are resolved again at every lookup.
        let naming = if is_version_name(name) {
            Naming::Stable
        } else {
            Naming::Moves
        };
        if let Some(ino) = st.table.find(FOLDER, name)
            && naming == Naming::Stable
        {
            return Ok((ino, naming));
        }
        st.refresh_history()?;
        let commit = st
            .history
            .index
            .resolve(&st.store, name)
            .ok_or(FsError::NotFound)?;
        // A revision's inode is that of the commit it named then: a process inside
        // `.history/HEAD` keeps reading that version after HEAD moves on.
        let key = match naming {
            Naming::Moves => format!("{name}\0{commit}"),
            _ => name.to_owned(),
        };
        Ok((
            st.view_entry(FOLDER, &key, Place::Version(commit), true),
            naming,
        ))
    }

    fn list(&self, st: &mut State) -> Result<Vec<Listed>> {
        st.refresh_history()?;
        let names: Vec<String> = st
            .history
            .index
            .versions()
            .iter()
            .map(|v| v.name())
            .collect();
        Ok(names
            .into_iter()
            .map(|name| Listed {
                ino: st.table.number_for(FOLDER, &name),
                name,
                is_dir: true,
            })
            .collect())
    }

    fn entry_node(&self, st: &mut State, place: Place) -> Result<Node> {
        let Place::Version(commit) = place else {
            return Err(FsError::NotFound);
        };
        Ok(Node::Dir(st.store.commit_root(commit)?))
    }

    fn mtime(&self, st: &State, ino: Ino, place: Place) -> Option<SystemTime> {
        match place {
            Place::Version(c) => Some(st.commit_time(c)),
            Place::Live if ino == FOLDER => Some(st.history.time.unwrap_or(st.base_time)),
            Place::Live | Place::Tree(_) | Place::Text(_) => None,
        }
    }

    fn take_inval(&self, st: &mut State, committed: bool, inval: &mut Inval) {
        if committed {
            inval.listings.push(FOLDER);
            st.history.time = Some(st.next_stamp());
        }
    }
}

impl State {
    /// Installs a `.history` index built outside the lock, unless this one has seen more.
    pub fn offer_history(&mut self, index: HistoryIndex) {
        if self.history.index.is_behind(&index) {
            self.history.index = index;
        }
    }

    /// Brings the `.history` index up to the branch head.
    pub fn refresh_history(&mut self) -> Result<()> {
        let head = self.store.head_commit()?;
        self.history.index.refresh(&self.store, head)?;
        Ok(())
    }

    /// Keeps the `.history` index for the next mount (best effort: the repository may be
    /// read-only).
    pub(super) fn save_history(&mut self) {
        if self.refresh_history().is_ok() {
            let path = HistoryIndex::saved_path(&self.store, self.store.branch());
            if let Err(e) = self.history.index.save(&path) {
                log::debug!("saving the history index {}: {e}", path.display());
            }
        }
    }
}

/// Whether a name under `.history` always names the same commit: a listed
/// `YYYY-MM-DDTHHMMSSZ-NN-<hash>` name or a hash (not a revision like `HEAD~1`).
fn is_version_name(name: &str) -> bool {
    let hash = name.rsplit_once('-').map_or(name, |(_, h)| h);
    hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}
