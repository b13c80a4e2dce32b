//! The filesystem's logic without a kernel mount: a `State` over a real store in a temporary
//! directory, driven by the calls the FUSE handlers make. Editors' save sequences, renames and
//! vector gaps run here in milliseconds (the mount tests run the same with real tools).

use super::*;
use crate::codec::{Format, edn, json};

mod attr;
mod commit;
mod handles;
mod history;
mod listing;
mod namespace;
mod open;
mod perms;
mod rename;
mod resolve;
mod scratch_files;
mod squash;
mod view;

/// A `State` over a real store in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    opts: Options,
    st: State,
}

/// Who creates files in most tests: root, with the usual umask, asking for 0666.
const ROOT_USER: Creator = Creator {
    mode: 0o100666,
    umask: 0o022,
    uid: 0,
    gid: 0,
};

/// Who makes folders in most tests (`mkdir` asks for 0777).
const ROOT_DIR: Creator = Creator {
    mode: 0o40777,
    ..ROOT_USER
};

/// What `Fixture::new` shows for a file and a folder nobody changed the mode of.
const FILE_MODE: u16 = 0o644;
const DIR_MODE: u16 = 0o755;

impl Fixture {
    /// A state over a new JSON store holding `doc`.
    fn new(doc: &str) -> Fixture {
        Fixture::with(Format::Json, doc, |_| {})
    }

    /// A state over a new EDN store holding `doc`.
    fn edn(doc: &str) -> Fixture {
        Fixture::with(Format::Edn, doc, |_| {})
    }

    /// A state over a new store holding `doc`, mounted with options changed by `opts`.
    fn with(format: Format, doc: &str, opts: impl FnOnce(&mut Options)) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::init(&dir.path().join("repo.git"), format, "main").expect("init");
        let value = match format {
            Format::Json => json::parse(doc),
            Format::Edn => edn::parse(doc),
        }
        .expect("document");
        store
            .apply(&[Edit::Set(Path::root(), value)], "import")
            .expect("import");
        let mut o = Options {
            umask: 0o022,
            ..Options::default()
        };
        opts(&mut o);
        let st = State::new(
            Store::open(&dir.path().join("repo.git"), "main").expect("open"),
            o.clone(),
        )
        .expect("state");
        Fixture { dir, opts: o, st }
    }

    fn repo(&self) -> std::path::PathBuf {
        self.dir.path().join("repo.git")
    }

    /// Unmounts (committing what is pending, as the daemon does) and mounts the same
    /// repository again: a new state that knows only what the repository keeps.
    fn remount(&mut self) {
        self.st.settle().expect("settle");
        let store = Store::open(&self.repo(), "main").expect("open");
        self.st = State::new(store, self.opts.clone()).expect("state");
    }

    /// Another writer (the CLI, another mount) commits `edits` on the branch.
    fn other_writer(&self, edits: &[Edit]) {
        Store::open(&self.repo(), "main")
            .expect("open")
            .apply(edits, "another writer")
            .expect("apply")
            .expect("a commit");
    }

    /// The commits on the branch.
    fn commits(&self) -> usize {
        self.messages().len()
    }

    /// The branch's commit messages (first lines), newest first.
    fn messages(&self) -> Vec<String> {
        self.st
            .store
            .log(&Path::root(), None)
            .expect("log")
            .into_iter()
            .map(|e| e.summary)
            .collect()
    }

    /// The committed value (JSON stores).
    fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.text()).expect("JSON")
    }

    /// The committed value as the store's format prints it.
    fn text(&self) -> String {
        let head = self.st.store.head_commit().expect("head");
        self.text_at(head)
    }

    /// The value at a commit as the store's format prints it.
    fn text_at(&self, commit: Oid) -> String {
        let root = self.st.store.commit_root(commit).expect("root");
        let v = self.st.store.read_value(Node::Dir(root)).expect("value");
        self.st.store.format().print(&v).expect("print")
    }

    /// The values of every commit of the branch, newest first.
    fn all_values(&self) -> Vec<serde_json::Value> {
        self.st
            .store
            .log(&Path::root(), None)
            .expect("log")
            .into_iter()
            .map(|e| serde_json::from_str(&self.text_at(e.commit)).expect("JSON"))
            .collect()
    }

    /// The inode at a path, looked up name by name from the root as the kernel does.
    fn ino(&mut self, path: &str) -> Ino {
        let mut ino = ROOT;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            ino = self.st.lookup(ino, name).expect(path).0.ino;
        }
        ino
    }

    /// `stat PATH`.
    fn attr(&mut self, path: &str) -> Attr {
        let ino = self.ino(path);
        self.st.getattr(ino).expect(path)
    }

    /// `echo TEXT > NAME` in DIR: create (or truncate), write, flush, release.
    fn write(&mut self, dir: &str, name: &str, text: &str) {
        let d = self.ino(dir);
        let (_, fh) = self
            .st
            .create(d, name, ROOT_USER, false, true, false)
            .expect("create");
        self.st.write(fh, 0, text.as_bytes()).expect("write");
        self.st.flush(fh).expect("flush");
        self.st.release(fh);
    }

    /// `open(PATH, O_WRONLY|O_TRUNC)` of an existing file.
    fn open_trunc(&mut self, path: &str) -> u64 {
        let ino = self.ino(path);
        self.st.open(ino, true, true, false).expect("open").fh
    }

    /// Everything a handle reads from offset 0.
    fn read_fh(&mut self, fh: u64) -> String {
        let data = self.st.read(fh, 0, 1 << 20).expect("read");
        String::from_utf8(data).expect("text")
    }

    /// `cat PATH`: open for reading, read, release.
    fn read(&mut self, path: &str) -> String {
        let ino = self.ino(path);
        let fh = self.st.open(ino, false, false, false).expect("open").fh;
        let text = self.read_fh(fh);
        self.st.release(fh);
        text
    }

    /// `ls -a DIR` without `.history`.
    fn names(&mut self, dir: &str) -> Vec<String> {
        let d = self.ino(dir);
        let (_, l) = self.st.listing(d, None).expect("listing");
        l.iter()
            .map(|l| l.name.clone())
            .filter(|n| n != ".history")
            .collect()
    }
}

#[test]
fn a_write_is_one_commit_that_sets_the_key() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.write("", "a", "2\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 2}));
}

#[test]
fn vims_rename_mode_save_is_one_commit_whose_diff_is_the_edit() {
    let mut f = Fixture::new(r#"{"name": "Joe", "age": 41}"#);
    let before = f.commits();
    // rename(NAME, NAME~), create NAME, write, close, unlink(NAME~).
    f.st.rename(ROOT, "name", ROOT, "name~", false, false)
        .expect("backup");
    f.write("", "name", "\"Jim\"\n");
    f.st.remove(ROOT, "name~", false).expect("unlink backup");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"name": "Jim", "age": 41}));
}

#[test]
fn sed_style_temp_then_rename_is_one_commit_and_the_temp_name_never_committed() {
    let mut f = Fixture::new(r#"{"cfg": {"port": 80}}"#);
    let before = f.commits();
    f.write("cfg", "sedAb12Cd", "8080\n");
    let cfg = f.ino("cfg");
    f.st.rename(cfg, "sedAb12Cd", cfg, "port", false, false)
        .expect("rename over");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"cfg": {"port": 8080}}));
}

#[test]
fn a_removal_in_a_vector_leaves_a_gap_until_the_next_listing() {
    let mut f = Fixture::new(r#"{"v": [10, 11, 12]}"#);
    let v = f.ino("v");
    f.st.remove(v, "1", false).expect("rm");
    assert_eq!(f.value(), serde_json::json!({"v": [10, 12]}));
    // Until listed again, 2 still names the element it named.
    assert!(f.st.lookup(v, "1").is_err());
    let two = f.st.lookup(v, "2").expect("2").0.ino;
    let (_, fh) =
        f.st.create(v, "2", ROOT_USER, false, true, false)
            .expect("open");
    f.st.write(fh, 0, b"13\n").expect("write");
    f.st.flush(fh).expect("flush");
    f.st.release(fh);
    assert_eq!(f.value(), serde_json::json!({"v": [10, 13]}));
    assert_eq!(f.names("v"), ["0", "1"]);
    // The element keeps its inode under its new name.
    assert_eq!(f.st.lookup(v, "1").expect("1").0.ino, two);
}

#[test]
fn a_subtree_renamed_keeps_its_numbers_and_modes() {
    let mut f = Fixture::new(r#"{"d": {"x": 1}}"#);
    let x = f.ino("d/x");
    f.st.setattr(
        x,
        SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        },
    )
    .expect("chmod");
    f.st.rename(ROOT, "d", ROOT, "e", false, false).expect("mv");
    assert_eq!(f.ino("e/x"), x);
    let e = f.ino("e");
    let (a, _) = f.st.lookup(e, "x").expect("x");
    assert_eq!(a.perm, 0o600);
    assert_eq!(f.value(), serde_json::json!({"e": {"x": 1}}));
}

#[test]
fn the_history_view_shows_every_version_frozen_and_takes_no_changes() {
    let mut f = Fixture::new(r#"{"a": 1, "v": [1, 2]}"#);
    f.write("", "a", "2\n");
    let (_, root) = f.st.listing(ROOT, None).expect("root listing");
    assert!(root.iter().any(|l| l.name == ".history" && l.is_dir));
    let his = f.ino(".history");
    let (_, versions) = f.st.listing(his, None).expect(".history listing");
    let versions: Vec<String> = versions.iter().map(|l| l.name.clone()).collect();
    assert_eq!(versions.len(), f.commits());
    let read = |f: &mut Fixture, path: &str| {
        let ino = f.ino(path);
        let o = f.st.open(ino, false, false, false).expect("open");
        let data = f.st.read(o.fh, 0, 100).expect("read");
        f.st.release(o.fh);
        String::from_utf8(data).expect("text")
    };
    let (first, last) = (&versions[versions.len() - 2], &versions[versions.len() - 1]);
    assert_eq!(read(&mut f, &format!(".history/{first}/a")), "1\n");
    assert_eq!(read(&mut f, &format!(".history/{last}/a")), "2\n");

    // How the kernel may cache each: the folder for a moment, a version for ever, the live
    // value until told; a listed name is stable, a revision moves, a live element shifts.
    let (a, naming) = f.st.lookup(ROOT, ".history").expect(".history");
    assert_eq!(
        (a.cache, a.read_only, naming),
        (Cache::Short, true, Naming::Stable)
    );
    let (a, naming) = f.st.lookup(his, last).expect("version");
    assert_eq!((a.cache, naming), (Cache::Frozen, Naming::Stable));
    let (_, naming) = f.st.lookup(his, "HEAD").expect("HEAD");
    assert_eq!(naming, Naming::Moves);
    let v = f.ino("v");
    let (a, naming) = f.st.lookup(v, "1").expect("element");
    assert_eq!(
        (a.cache, a.read_only, naming),
        (Cache::Announced, false, Naming::Shifts)
    );

    let version = f.ino(&format!(".history/{last}"));
    let before = f.commits();
    assert!(matches!(
        f.st.create(version, "b", ROOT_USER, false, true, false),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        f.st.mkdir(his, "new", ROOT_USER),
        Err(FsError::ReadOnly)
    ));
    let a = f.ino(&format!(".history/{last}/a"));
    assert!(f.st.open(a, true, false, false).is_err());
    assert_eq!(f.commits(), before);
}
