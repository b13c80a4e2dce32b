//! Views: the folder trees the mount shows. The live value is one; `.history` and the versions
//! in it are another (see `history`). Whatever differs between them — the names of a view's
//! own folder, what its entries stand for, their times, whether they take changes, how long
//! the kernel may cache them, what it must forget after a commit — is asked of the inode's
//! view here, and nowhere else: adding a virtual folder (next `.branches/`) is one more view
//! in [`FOLDERS`].

use super::*;

/// How long the kernel may cache what a view shows (the adapter turns it into TTLs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// Never changes (a past version).
    Frozen,
    /// Every change is announced to the kernel when it happens (the live value).
    Announced,
    /// Changes without a notice for every cached copy: cached for a moment only (a view's own
    /// folder, such as `.history` when a version is added).
    Short,
}

/// How the kernel may cache a name it looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// Means the same entry until a change the kernel is told of.
    Stable,
    /// Its meaning shifts without a notice by name (the elements of a live vector: a removal
    /// shifts the later ones at the next listing, and `3` and `03` name one element).
    Shifts,
    /// Names another entry after the next commit (a revision such as `HEAD~1`).
    Moves,
}

/// A folder tree shown in the mount. An inode's view is that of its place (see [`State::view`]).
pub(super) trait View: Sync {
    /// The view's own folder at the mount root, if it has one: its name and number.
    fn folder(&self) -> Option<(&'static str, Ino)>;

    /// Whether its entries take changes.
    fn writable(&self) -> bool;

    /// How long the kernel may cache an inode of the view.
    fn cache(&self, ino: Ino) -> Cache;

    /// An entry of the view's own folder, and how the kernel may cache its name.
    fn lookup(&self, st: &mut State, name: &str) -> Result<(Ino, Naming)>;

    /// The listing of the view's own folder.
    fn list(&self, st: &mut State) -> Result<Vec<Listed>>;

    /// What an entry of the view's own folder stands for (its place says which).
    fn entry_node(&self, st: &mut State, place: Place) -> Result<Node>;

    /// The mtime of an inode of the view, when the view decides it (else the live value's
    /// rules apply).
    fn mtime(&self, st: &State, ino: Ino, place: Place) -> Option<SystemTime>;

    /// After an operation: what the kernel must forget of the view (its folder's listing after
    /// a commit, say). `committed`: a commit was made or followed since the views last heard.
    fn take_inval(&self, st: &mut State, committed: bool, inval: &mut Inval);

    /// unlink or rmdir of `name` in `dir`, a folder of the view (which takes no other change).
    fn remove(&self, _st: &mut State, _dir: Ino, _name: &str) -> Result<()> {
        Err(FsError::ReadOnly)
    }

    /// Whether the root lists the view's own folder now (it is looked up either way).
    fn listed(&self, _st: &mut State) -> bool {
        true
    }

    /// Whether an entry of `dir` is left out of its listing.
    fn hides(&self, _st: &State, _dir: Ino, _name: &str) -> bool {
        false
    }
}

/// The live value: writable, its changes announced, its folders trees of the branch's value.
/// It has no folder of its own (its root is the mount's root).
pub(super) struct Live;

impl View for Live {
    fn folder(&self) -> Option<(&'static str, Ino)> {
        None
    }

    fn writable(&self) -> bool {
        true
    }

    fn cache(&self, _ino: Ino) -> Cache {
        Cache::Announced
    }

    fn lookup(&self, _st: &mut State, _name: &str) -> Result<(Ino, Naming)> {
        Err(FsError::NotFound)
    }

    fn list(&self, _st: &mut State) -> Result<Vec<Listed>> {
        Err(FsError::NotADirectory)
    }

    fn entry_node(&self, st: &mut State, _place: Place) -> Result<Node> {
        Ok(Node::Dir(st.session.root()))
    }

    fn mtime(&self, _st: &State, _ino: Ino, _place: Place) -> Option<SystemTime> {
        None
    }

    fn take_inval(&self, _st: &mut State, _committed: bool, _inval: &mut Inval) {}
}

/// The views with a folder of their own at the mount root, in the order the root lists them.
pub(super) const FOLDERS: &[&dyn View] = &[
    &super::history::History,
    &super::conflicts::Conflicts,
    &super::sync_view::Sync,
];

/// The view whose own folder has number `ino`.
pub(super) fn folder_view(ino: Ino) -> Option<&'static dyn View> {
    FOLDERS
        .iter()
        .copied()
        .find(|v| v.folder().is_some_and(|(_, n)| n == ino))
}

/// The view an inode placed at `place` belongs to.
fn place_view(place: Place) -> &'static dyn View {
    match place {
        Place::Live => &Live,
        Place::Version(_) => &super::history::History,
        Place::Tree(_) => &super::conflicts::Conflicts,
        Place::Text(_) => &super::sync_view::Sync,
    }
}

impl State {
    /// The view an inode belongs to.
    pub(super) fn view(&self, ino: Ino) -> Result<&'static dyn View> {
        if let Some(v) = folder_view(ino) {
            return Ok(v);
        }
        Ok(place_view(self.place(ino)?))
    }

    /// A view's folder named `name` at the root.
    pub(super) fn root_folder(name: &str) -> Option<Ino> {
        FOLDERS
            .iter()
            .filter_map(|v| v.folder())
            .find(|&(n, _)| n == name)
            .map(|(_, ino)| ino)
    }

    /// The views' folders, whether listed or not.
    pub(super) fn view_folders() -> impl Iterator<Item = Ino> {
        FOLDERS
            .iter()
            .filter_map(|v| v.folder())
            .map(|(_, ino)| ino)
    }

    /// The views' folders the root lists now.
    pub(super) fn root_folders(&mut self) -> Vec<Listed> {
        let mut out = Vec::new();
        for v in FOLDERS {
            if let Some((name, ino)) = v.folder()
                && v.listed(self)
            {
                out.push(Listed {
                    name: name.to_owned(),
                    ino,
                    is_dir: true,
                });
            }
        }
        out
    }

    /// The inode of an entry of a view's own folder that stands for `place`: the one there if
    /// it still does, else a new one.
    pub(super) fn view_entry(&mut self, folder: Ino, key: &str, place: Place, is_dir: bool) -> Ino {
        if let Some(ino) = self.table.find(folder, key)
            && self.table.get(ino).is_some_and(|i| i.place == place)
        {
            return ino;
        }
        self.table.insert(folder, key, place, is_dir)
    }

    /// What the views' folders must have the kernel forget after an operation.
    pub(super) fn views_inval(&mut self, inval: &mut Inval) {
        let committed = std::mem::take(&mut self.new_commit);
        for v in FOLDERS {
            v.take_inval(self, committed, inval);
        }
    }
}
