//! The `.conflicts` view: one read-only folder per open conflict of the value (docs/FORMAT.md,
//! "Conflicts"), named by its path escaped as a key (`users%2F0%2Fage`), holding `base`, `ours`
//! and `theirs` (what each side had at the path, absent where it had nothing), `kind` and
//! `path`. The value holds `ours` meanwhile. Removing a conflict's folder (`rm -r`, `rmdir`)
//! resolves it, as one commit; so does saving its path (or a path inside or above it) in the
//! live value (see [`State::with_resolutions`]).

use super::super::inode::FIRST_VIEW;
use super::view::{Cache, Naming, View};
use super::*;
use crate::store::Conflict;
use std::collections::BTreeMap;

/// The number of the `.conflicts` folder.
const FOLDER: Ino = FIRST_VIEW + 1;

/// The view's state in the mount.
#[derive(Default)]
pub(super) struct Shown {
    /// The root tree the conflicts were read from.
    root: Option<Oid>,
    /// The open conflicts by folder name, each with the tree its folder shows (made on demand).
    by_name: BTreeMap<String, (Conflict, Option<Oid>)>,
    /// The folder names the kernel was last told of.
    told: BTreeSet<String>,
    /// Entries removed inside conflicts' folders (`rm -r` empties a folder before it removes
    /// it): no longer listed.
    hidden: HashSet<(Ino, String)>,
}

pub(super) struct Conflicts;

impl View for Conflicts {
    fn folder(&self) -> Option<(&'static str, Ino)> {
        Some((".conflicts", FOLDER))
    }

    fn writable(&self) -> bool {
        false
    }

    fn cache(&self, _ino: Ino) -> Cache {
        // A conflict goes when it is resolved, here or by another writer.
        Cache::Short
    }

    fn lookup(&self, st: &mut State, name: &str) -> Result<(Ino, Naming)> {
        let tree = st.conflict_tree(name)?;
        Ok((
            st.view_entry(FOLDER, name, Place::Tree(tree), true),
            Naming::Moves,
        ))
    }

    fn list(&self, st: &mut State) -> Result<Vec<Listed>> {
        st.refresh_conflicts()?;
        let names: Vec<String> = st.conflicts.by_name.keys().cloned().collect();
        Ok(names
            .into_iter()
            .map(|name| Listed {
                ino: st.table.number_for(FOLDER, &name),
                name,
                is_dir: true,
            })
            .collect())
    }

    fn entry_node(&self, _st: &mut State, place: Place) -> Result<Node> {
        match place {
            Place::Tree(t) => Ok(Node::Dir(t)),
            _ => Err(FsError::NotFound),
        }
    }

    fn mtime(&self, st: &State, _ino: Ino, _place: Place) -> Option<SystemTime> {
        Some(st.base_time)
    }

    fn take_inval(&self, st: &mut State, committed: bool, inval: &mut Inval) {
        if !committed {
            return;
        }
        // The conflicts that went (resolved here or elsewhere) and those that came.
        if st.refresh_conflicts().is_err() {
            return;
        }
        // Names are looked up again at every use (see `lookup`): the listings only. (An entry
        // invalidation here would wait for the folder's lock, which the kernel holds while it
        // removes a conflict's folder.)
        let now: BTreeSet<String> = st.conflicts.by_name.keys().cloned().collect();
        if now != st.conflicts.told {
            inval.listings.push(FOLDER);
            if now.is_empty() != st.conflicts.told.is_empty() {
                // The root lists the folder only while there are conflicts.
                inval.listings.push(ROOT);
            }
            st.conflicts.told = now;
        }
    }

    fn remove(&self, st: &mut State, parent: Ino, name: &str) -> Result<()> {
        if parent == FOLDER {
            st.refresh_conflicts()?;
            let (c, _) = st
                .conflicts
                .by_name
                .get(name)
                .cloned()
                .ok_or(FsError::NotFound)?;
            let path = c.path.clone();
            st.edit(vec![Edit::Resolve(path.clone())], format!("resolve {path}"))?;
            st.conflicts.hidden.clear();
            return Ok(());
        }
        // Inside a conflict: gone from its listing; the conflict goes with its folder.
        st.lookup_ino(parent, name)?;
        st.conflicts.hidden.insert((parent, name.to_owned()));
        Ok(())
    }

    fn listed(&self, st: &mut State) -> bool {
        // Listed while there is something to resolve.
        st.refresh_conflicts().is_ok() && !st.conflicts.by_name.is_empty()
    }

    fn hides(&self, st: &State, dir: Ino, name: &str) -> bool {
        st.conflicts.hidden.contains(&(dir, name.to_owned()))
    }
}

impl State {
    /// Reads the open conflicts of the view's root again if it changed.
    fn refresh_conflicts(&mut self) -> Result<()> {
        let root = self.session.root();
        if self.conflicts.root == Some(root) {
            return Ok(());
        }
        let mut by_name = BTreeMap::new();
        for c in self.store.conflicts_in(root)? {
            let name = name::escape(&c.path.to_string());
            let tree = self
                .conflicts
                .by_name
                .get(&name)
                .filter(|(old, _)| *old == c)
                .and_then(|(_, t)| *t);
            by_name.insert(name, (c, tree));
        }
        self.conflicts.by_name = by_name;
        self.conflicts.root = Some(root);
        Ok(())
    }

    /// The tree a conflict's folder shows: a map of `base`, `ours`, `theirs` (those present),
    /// `kind` and `path`.
    fn conflict_tree(&mut self, name: &str) -> Result<Oid> {
        self.refresh_conflicts()?;
        let (c, tree) = self.conflicts.by_name.get(name).ok_or(FsError::NotFound)?;
        if let Some(t) = tree {
            return Ok(*t);
        }
        let c = c.clone();
        let at = |k: &str| Path(vec![k.to_owned()]);
        let mut edits = vec![
            Edit::Set(at("kind"), Value::String(c.kind.name().to_owned())),
            Edit::Set(at("path"), Value::String(c.path.to_string())),
        ];
        for (side, node) in [("base", c.base), ("ours", c.ours), ("theirs", c.theirs)] {
            if let Some(n) = node {
                edits.push(Edit::Put(at(side), n));
            }
        }
        let empty = self
            .store
            .write_value(&Value::Map(Default::default()))?
            .oid();
        let tree = self.store.apply_to_tree(empty, &edits)?;
        if let Some(e) = self.conflicts.by_name.get_mut(name) {
            e.1 = Some(tree);
        }
        Ok(tree)
    }

    /// `edits` and the resolutions they make: saving a conflicted path, or a path inside or
    /// above it, resolves its conflict in the same commit.
    pub(super) fn with_resolutions(&mut self, mut edits: Vec<Edit>) -> Vec<Edit> {
        if self.refresh_conflicts().is_err() || self.conflicts.by_name.is_empty() {
            return edits;
        }
        let touched: Vec<Path> = edits
            .iter()
            .flat_map(|e| match e {
                Edit::Set(p, _) | Edit::Put(p, _) | Edit::Remove(p) | Edit::Insert(p, _) => {
                    vec![p.clone()]
                }
                Edit::Move(a, b) => vec![a.clone(), b.clone()],
                Edit::Resolve(_) => Vec::new(),
            })
            .collect();
        let related = |a: &Path, b: &Path| {
            let (a, b) = (a.names(), b.names());
            a.starts_with(b) || b.starts_with(a)
        };
        for (c, _) in self.conflicts.by_name.values() {
            if touched.iter().any(|p| related(p, &c.path)) {
                edits.push(Edit::Resolve(c.path.clone()));
            }
        }
        edits
    }
}
