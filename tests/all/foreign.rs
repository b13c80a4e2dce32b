//! Someone else's repository: valfs writes only into repositories and branches it made (bare,
//! every head a valfs value), unless told `--adopt`. Without it, every command and the mount
//! refuse with one line and leave the repository byte for byte as it was; `valfs init` never
//! scatters a bare repository's files into an existing directory.

use crate::common::git;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_valfs");

/// A temp dir (under /var/tmp, so that it can hold a mountpoint) with a private HOME,
/// XDG_DATA_HOME and XDG_RUNTIME_DIR.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let base = if Path::new("/var/tmp").is_dir() {
            PathBuf::from("/var/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("valfs-foreign-")
            .tempdir_in(base)
            .unwrap();
        for d in ["home", "xdg", "run"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().canonicalize().unwrap().join(name)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_DATA_HOME", self.path("xdg"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn valfs(&self, args: &[&str]) -> Output {
        self.cmd(BIN).args(args).output().unwrap()
    }

    /// Runs valfs for `limit` at most: a foreground mount that succeeded runs until unmounted,
    /// so it is then ended (by its PID, SIGTERM: it unmounts) and reported as a success.
    fn valfs_limited(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = self
            .cmd(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > limit {
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                let mut out = child.wait_with_output().unwrap();
                out.status = std::os::unix::process::ExitStatusExt::from_raw(0);
                return out;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    fn valfs_ok(&self, args: &[&str]) -> String {
        let out = self.valfs(args);
        assert!(
            out.status.success(),
            "valfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs valfs, which must fail with one line naming `needle`; returns that line.
    fn valfs_fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.valfs(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "valfs {args:?} succeeded");
        assert_eq!(err.lines().count(), 1, "valfs {args:?}: {err:?}");
        assert!(
            err.starts_with("valfs: ") && err.contains(needle),
            "valfs {args:?}: {err:?} does not say {needle:?}"
        );
        assert!(!err.contains("damaged"), "{err}");
        err
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .cmd("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An ordinary project: a non-bare repository with source files committed on `master`.
    fn project(&self) -> PathBuf {
        let p = self.path("project");
        std::fs::create_dir(&p).unwrap();
        self.git_in(&p, &["init", "-q", "-b", "master"]);
        std::fs::create_dir(p.join("src")).unwrap();
        std::fs::write(p.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(p.join("README.md"), "# project\n").unwrap();
        self.git_in(&p, &["add", "."]);
        self.git_in(&p, &["commit", "-q", "-m", "first"]);
        p
    }

    /// A bare repository whose `master` holds plain files (no valfs marker), as a server's
    /// mirror of a project would.
    fn foreign_bare(&self) -> PathBuf {
        let project = self.project();
        let bare = self.path("foreign.git");
        self.git_in(
            self.dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                project.to_str().unwrap(),
                "foreign.git",
            ],
        );
        bare
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes (and every directory): the proof that nothing wrote.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), None);
                todo.push(p);
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn set_on_a_project_repositorys_master_is_refused_and_changes_nothing() {
    let env = Env::new();
    let p = env.project();
    let before = snapshot(&p);
    let dot_git = p.join(".git");
    for repo in [&p, &dot_git] {
        for args in [
            &["set", "x", "1"][..],
            &["rm", "README.md"],
            &["mv", "README.md", "x"],
            &["import", "-", "y"],
            &["revert", "HEAD"],
            &["get", "README.md"],
            &["export"],
            &["log"],
            &["gc"],
        ] {
            let mut all = vec!["--repo", s(repo), "--branch", "master"];
            all.extend_from_slice(args);
            let err = env.valfs_fails(&all, "not a valfs store");
            assert!(err.contains("--adopt"), "{err}");
        }
        // Its default branch name too: main does not exist there, but the repository is refused
        // before the branch is looked at.
        env.valfs_fails(&["--repo", s(repo), "set", "x", "1"], "not a valfs store");
    }
    assert_eq!(snapshot(&p), before, "the project repository was written");
    assert_eq!(env.git_in(&p, &["status", "--porcelain"]), "");
}

#[test]
fn init_into_an_existing_repository_or_non_empty_directory_writes_nothing() {
    let env = Env::new();
    let p = env.project();
    let before = snapshot(&p);
    env.valfs_fails(&["--repo", s(&p), "init"], "already a git repository");
    env.valfs_fails(
        &["--repo", s(&p), "--adopt", "init"],
        "already a git repository",
    );
    env.valfs_fails(&["--repo", s(&p.join(".git")), "init"], "already exists");
    assert_eq!(snapshot(&p), before, "init wrote into the project");

    let dir = env.path("notes");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("todo.txt"), "buy milk\n").unwrap();
    let before = snapshot(&dir);
    env.valfs_fails(&["--repo", s(&dir), "init"], "not empty");
    assert_eq!(snapshot(&dir), before);

    let file = env.path("file");
    std::fs::write(&file, "x").unwrap();
    env.valfs_fails(&["--repo", s(&file), "init"], "not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // A new path, and an empty directory, still get a store.
    let fresh = env.path("a/b/fresh.git");
    env.valfs_ok(&["--repo", s(&fresh), "init"]);
    assert_eq!(env.valfs_ok(&["--repo", s(&fresh), "export"]), "{}\n");
    let empty = env.path("empty");
    std::fs::create_dir(&empty).unwrap();
    env.valfs_ok(&["--repo", s(&empty), "init", "--format", "edn"]);
    env.valfs_ok(&["--repo", s(&empty), "set", "x", "1"]);
    assert_eq!(env.valfs_ok(&["--repo", s(&empty), "export"]), "{x 1}\n");
}

#[test]
fn a_branch_that_is_not_a_valfs_value_is_refused_as_not_a_valfs_branch() {
    let env = Env::new();
    let bare = env.foreign_bare();
    let head = git(&bare, &["rev-parse", "master"]);
    for args in [&["set", "x", "1"][..], &["export"], &["log"]] {
        let mut all = vec!["--repo", s(&bare), "--branch", "master"];
        all.extend_from_slice(args);
        let err = env.valfs_fails(&all, "not a valfs branch");
        assert!(
            err.contains("\"master\"") && err.contains("--adopt"),
            "{err}"
        );
    }
    assert_eq!(git(&bare, &["rev-parse", "master"]), head);

    // A valfs store with someone's source branch pushed into it: that branch is refused, the
    // value's branch is not.
    let store = env.path("store.git");
    env.valfs_ok(&["--repo", s(&store), "init"]);
    env.valfs_ok(&["--repo", s(&store), "set", "a", "1"]);
    git(&store, &["fetch", "-q", s(&bare), "master:src"]);
    let src = git(&store, &["rev-parse", "src"]);
    env.valfs_fails(
        &["--repo", s(&store), "--branch", "src", "set", "x", "1"],
        "not a valfs branch",
    );
    assert_eq!(git(&store, &["rev-parse", "src"]), src);
    env.valfs_ok(&["--repo", s(&store), "set", "b", "2"]);

    // A root whose .valfs marker is not one valfs writes.
    let junk = git_stdin(&store, &["hash-object", "-w", "--stdin"], "bogus\n");
    let tree = git_stdin(
        &store,
        &["mktree"],
        &format!("100644 blob {junk}\t.valfs\n"),
    );
    let commit = git(&store, &["commit-tree", &tree, "-m", "junk"]);
    git(&store, &["update-ref", "refs/heads/junk", commit.trim()]);
    env.valfs_fails(
        &["--repo", s(&store), "--branch", "junk", "get", "x"],
        "not a valfs branch",
    );
}

fn git_stdin(repo: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut c = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn adopt_uses_a_foreign_repository_when_asked() {
    let env = Env::new();
    let p = env.project();
    let head = env.git_in(&p, &["rev-parse", "master"]);
    env.valfs_ok(&[
        "--repo",
        s(&p),
        "--branch",
        "master",
        "--adopt",
        "set",
        "x",
        "1",
    ]);
    assert_eq!(
        env.valfs_ok(&["--adopt", "--repo", s(&p), "--branch", "master", "get", "x"]),
        "1\n"
    );
    let parent = env.git_in(&p, &["rev-parse", "master~1"]);
    assert_eq!(parent, head, "one commit on top of the project's master");
    assert_eq!(env.git_in(&p, &["show", "master:README.md"]), "# project\n");

    let bare = env.foreign_bare_named("mirror.git");
    env.valfs_ok(&[
        "--repo",
        s(&bare),
        "--branch",
        "master",
        "--adopt",
        "set",
        "y",
        "2",
    ]);
    assert_eq!(git(&bare, &["show", "master:y"]), "2\n");
}

impl Env {
    fn foreign_bare_named(&self, name: &str) -> PathBuf {
        let src = self.path("src-for-mirror");
        std::fs::create_dir(&src).unwrap();
        self.git_in(&src, &["init", "-q", "-b", "master"]);
        std::fs::write(src.join("notes.txt"), "hi\n").unwrap();
        self.git_in(&src, &["add", "."]);
        self.git_in(&src, &["commit", "-q", "-m", "first"]);
        self.git_in(
            self.dir.path(),
            &["clone", "-q", "--bare", src.to_str().unwrap(), name],
        );
        self.path(name)
    }
}

#[test]
fn a_new_branch_and_a_bare_clone_of_a_valfs_store_are_valfs_branches() {
    let env = Env::new();
    let store = env.path("store.git");
    env.valfs_ok(&["--repo", s(&store), "init"]);
    env.valfs_ok(&["--repo", s(&store), "set", "a", "1"]);
    git(&store, &["branch", "dev", "main"]);
    env.valfs_ok(&["--repo", s(&store), "--branch", "dev", "set", "b", "2"]);
    assert_eq!(
        env.valfs_ok(&["--repo", s(&store), "--branch", "dev", "export"]),
        "{\"a\":1,\"b\":2}\n"
    );
    // A clone has no valfs.format (git does not copy config), but its branches are values.
    env.git_in(
        env.dir.path(),
        &["clone", "-q", "--bare", s(&store), "copy.git"],
    );
    let copy = env.path("copy.git");
    env.valfs_ok(&["--repo", s(&copy), "set", "c", "3"]);
    assert_eq!(
        env.valfs_ok(&["--repo", s(&copy), "export"]),
        "{\"a\":1,\"c\":3}\n"
    );
    // The embedded default store and a named store are created and used as before.
    env.valfs_ok(&["set", "d", "4"]);
    env.valfs_ok(&["--store", "notes", "set", "e", "5"]);
    assert_eq!(env.valfs_ok(&["get", "d"]), "4\n");
}

/// Whether `dir` is a mountpoint now.
fn is_mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = dir.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// Unmounts on drop, whatever the test did.
struct Unmount<'a>(&'a Env, PathBuf);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if is_mounted(&self.1) {
            let _ = self.0.valfs(&["umount", s(&self.1)]);
        }
        if is_mounted(&self.1) {
            let _ = Command::new("umount").arg("-l").arg(&self.1).status();
        }
    }
}

#[test]
fn the_mount_refuses_a_foreign_repository_unless_adopted() {
    let env = Env::new();
    let p = env.project();
    let bare = env.foreign_bare_named("mirror.git");
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let guard = Unmount(&env, mnt.clone());
    let before = snapshot(&p);
    let m = s(&mnt);
    for (args, needle) in [
        (
            vec!["--repo", s(&p), "--branch", "master", "mount", m],
            "not a valfs store",
        ),
        (
            vec![
                "--repo",
                s(&p),
                "--branch",
                "master",
                "mount",
                "--daemon",
                m,
            ],
            "not a valfs store",
        ),
        (
            vec!["--repo", s(&p), "mount", "-o", "ro,branch=master", m],
            "not a valfs store",
        ),
        // The form mount(8) runs through mount.fuse3: `valfs SOURCE MOUNTPOINT -o OPTIONS`.
        (vec![s(&p), m, "-o", "branch=master"], "not a valfs store"),
        (
            vec![s(&bare), m, "-o", "branch=master"],
            "not a valfs branch",
        ),
    ] {
        let out = env.valfs_limited(&args, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} mounted");
        assert!(
            err.lines()
                .any(|l| l.starts_with("valfs: ") && l.contains(needle)),
            "{args:?}: {err}"
        );
        assert!(!err.contains("damaged"), "{err}");
        assert!(!is_mounted(&mnt), "{args:?} left a mount");
    }
    assert_eq!(snapshot(&p), before);

    // Asked to: mount(8)'s form with -o adopt, and --adopt.
    env.valfs_ok(&[s(&bare), m, "-o", "branch=master,adopt"]);
    let start = Instant::now();
    while !is_mounted(&mnt) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(mnt.join("notes.txt")).unwrap(),
        "hi\n"
    );
    env.valfs_ok(&["umount", m]);
    assert!(!is_mounted(&mnt));
    env.valfs_ok(&[
        "--repo",
        s(&p),
        "--branch",
        "master",
        "--adopt",
        "mount",
        "--daemon",
        m,
    ]);
    assert_eq!(
        std::fs::read_to_string(mnt.join("README.md")).unwrap(),
        "# project\n"
    );
    std::fs::write(mnt.join("x"), "1\n").unwrap();
    env.valfs_ok(&["umount", m]);
    assert_eq!(env.git_in(&p, &["show", "master:x"]), "1\n");
    drop(guard);
}
