//! Helpers shared by the store and CLI tests: temp stores, JSON literals, plain git.

use git2::Oid;
use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Command, Output};
use valfs::codec::{Format, json, name};
use valfs::store::{Edit, Store, StoreError};
use valfs::value::{Path, Value};

/// Parses a JSON literal.
pub fn v(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| panic!("bad test JSON {text:?}: {e}"))
}

/// A path from keys (escaped into names as the mount shows them) and indices.
pub fn kp(keys: &[&str]) -> Path {
    Path(keys.iter().map(|k| name::escape(k)).collect())
}

/// A store in a temp dir, removed on drop.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl Repo {
    /// A new JSON store on `main` holding `{}`.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join("repo.git"), Format::Json, "main").unwrap();
        Repo { dir, store }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo.git")
    }

    /// A second handle on the same repository.
    pub fn open_again(&self) -> Store {
        Store::open(&self.path(), "main").unwrap()
    }

    pub fn head(&self) -> Oid {
        self.store.head_commit().unwrap()
    }

    /// The root tree of the branch head.
    pub fn root(&self) -> Oid {
        self.store.commit_root(self.head()).unwrap()
    }

    /// The whole value at the branch head.
    pub fn value(&self) -> Value {
        value_at(&self.store, self.head())
    }

    /// Replaces the value the way `valfs import` does: one pack, then one `Put` at the root.
    pub fn import(&self, value: &Value) -> Option<Oid> {
        let node = self.store.write_value_packed(value, &mut |_| {}).unwrap();
        self.store
            .apply(&[Edit::Put(Path::root(), node)], "import")
            .unwrap()
    }

    pub fn apply(&self, edits: &[Edit]) -> Result<Option<Oid>, StoreError> {
        self.store.apply(edits, "test edit")
    }

    /// Applies one edit that must fail, and checks it left the branch and value alone.
    pub fn apply_fails(&self, edit: Edit) -> StoreError {
        let (head, value) = (self.head(), self.value());
        let err = self
            .apply(std::slice::from_ref(&edit))
            .expect_err(&format!("{edit:?} should fail"));
        assert_eq!(self.head(), head, "{edit:?} moved the branch");
        assert_eq!(self.value(), value);
        err
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path(), args)
    }

    pub fn fsck(&self) {
        fsck(&self.path());
    }
}

/// The value of a commit.
pub fn value_at(store: &Store, commit: Oid) -> Value {
    let root = store.commit_root(commit).unwrap();
    store.read_value(valfs::store::Node::Dir(root)).unwrap()
}

/// Runs plain git on a bare repository; it must succeed. Returns stdout.
/// `valfs --repo REPO ARGS`, which must succeed; returns what it printed.
pub fn valfs_ok(repo: &FsPath, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_valfs"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "valfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git(repo: &FsPath, args: &[&str]) -> String {
    let out = git_output(repo, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn git_output(repo: &FsPath, args: &[&str]) -> Output {
    Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .unwrap()
}

/// `git fsck --strict` must exit 0 and print nothing on stderr (no errors, no warnings).
pub fn fsck(repo: &FsPath) {
    let out = git_output(repo, &["fsck", "--strict", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "git fsck --strict of {}: {}\n{stderr}",
        repo.display(),
        out.status
    );
}

/// Every object in the repository, loose or packed, with its type.
pub fn all_objects(repo: &FsPath) -> BTreeSet<(String, String)> {
    git(
        repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    )
    .lines()
    .map(|l| {
        let (id, ty) = l.split_once(' ').unwrap();
        (id.to_owned(), ty.to_owned())
    })
    .collect()
}

/// The ids of the loose objects (one file each under `objects/??/`).
pub fn loose_objects(repo: &FsPath) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in std::fs::read_dir(repo.join("objects")).unwrap() {
        let dir = dir.unwrap();
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap() {
            out.insert(format!(
                "{prefix}{}",
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// A field of `git count-objects -v` (`count`, `in-pack`, ...).
pub fn count_objects(repo: &FsPath, field: &str) -> u64 {
    let text = git(repo, &["count-objects", "-v"]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}: ")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .parse()
        .unwrap()
}
