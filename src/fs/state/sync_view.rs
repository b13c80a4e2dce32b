//! The `.sync` view: a read-only folder, listed while the store has remotes, whose `status`
//! file shows what `valfs status` shows per remote — ahead/behind as of the last fetch, the last
//! successful sync, the last error — read afresh at every open.

use super::super::inode::FIRST_VIEW;
use super::view::{Cache, Naming, View};
use super::*;
use crate::store::remote;

/// The number of the `.sync` folder.
const FOLDER: Ino = FIRST_VIEW + 2;
const STATUS: &str = "status";
/// How long whether the store has remotes is taken as known.
const RECHECK: Duration = Duration::from_secs(1);

pub(super) struct Sync;

impl View for Sync {
    fn folder(&self) -> Option<(&'static str, Ino)> {
        Some((".sync", FOLDER))
    }

    fn writable(&self) -> bool {
        false
    }

    fn cache(&self, _ino: Ino) -> Cache {
        Cache::Short
    }

    fn lookup(&self, st: &mut State, name: &str) -> Result<(Ino, Naming)> {
        if name != STATUS {
            return Err(FsError::NotFound);
        }
        // Each text is a blob of its own: a new text is a new inode, so no reader is shown a
        // page of the old one.
        let blob = st.store.write_text(status_text(&st.store).as_bytes())?;
        Ok((
            st.view_entry(FOLDER, STATUS, Place::Text(blob), false),
            Naming::Moves,
        ))
    }

    fn list(&self, st: &mut State) -> Result<Vec<Listed>> {
        Ok(vec![Listed {
            name: STATUS.to_owned(),
            ino: st.table.number_for(FOLDER, STATUS),
            is_dir: false,
        }])
    }

    fn entry_node(&self, _st: &mut State, place: Place) -> Result<Node> {
        match place {
            Place::Text(blob) => Ok(Node::Leaf(blob)),
            _ => Err(FsError::NotFound),
        }
    }

    fn mtime(&self, _st: &State, _ino: Ino, _place: Place) -> Option<SystemTime> {
        Some(SystemTime::now())
    }

    fn take_inval(&self, _st: &mut State, _committed: bool, _inval: &mut Inval) {}

    fn listed(&self, st: &mut State) -> bool {
        // Asked at every getattr and listing of the root: the store's remotes (its git config)
        // are read again once a second at most.
        if let Some((at, has)) = st.sync_listed
            && at.elapsed() < RECHECK
        {
            return has;
        }
        let has = remote::list(&st.store).is_ok_and(|r| !r.is_empty());
        st.sync_listed = Some((std::time::Instant::now(), has));
        has
    }
}

/// The status of every remote, as `valfs status` prints it.
fn status_text(store: &Store) -> String {
    match remote::status(store) {
        Ok(all) if all.is_empty() => "no remotes (`valfs remote add NAME URL`)\n".to_owned(),
        Ok(all) => all.iter().map(|r| format!("{r}\n")).collect(),
        Err(e) => format!("cannot read the remotes' status: {e}\n"),
    }
}
