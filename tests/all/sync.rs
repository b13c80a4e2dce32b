//! Several machines: stores syncing through bare repositories by path and through real
//! servers (git daemon, smart http behind lighttpd, sshd) with `valfs remote`, `clone`,
//! `sync`, `pull`, `push` and `status`.

use crate::common::{fsck, git, git_output, v};
use crate::servers::{GitDaemon, Http, Ssh, bare};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use valfs::value::Value;

const BIN: &str = env!("CARGO_BIN_EXE_valfs");

/// One machine: a temp dir with its own `$HOME` and `$XDG_DATA_HOME`, and a store path.
struct Machine {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// A machine with a store holding `doc`.
    fn with(doc: &str) -> Machine {
        let m = Machine::new();
        m.ok(&["init"]);
        let file = m.dir.path().join("doc.json");
        std::fs::write(&file, doc).unwrap();
        m.ok(&["import", file.to_str().unwrap()]);
        m
    }

    /// The same with `GIT_SSH_COMMAND` for the test's sshd.
    fn via_ssh(mut self, ssh: &Ssh) -> Machine {
        self.env.push(("GIT_SSH_COMMAND".into(), ssh.command()));
        self
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("store.git")
    }

    /// `valfs` on this machine's store.
    fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.env("VALFS_REPO", self.repo());
        cmd
    }

    /// `valfs` with no store chosen (for `--store NAME`).
    fn bare_command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs `valfs` with no store chosen; it must succeed. Returns stdout.
    fn named(&self, args: &[&str]) -> String {
        let out = self.bare_command().args(args).output().unwrap();
        assert!(out.status.success(), "valfs {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs a command that must succeed with nothing on stderr; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "valfs {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with one line naming `needle` on stderr and leave the
    /// branch where it was; returns that line.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let before = self.head();
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "valfs {args:?} succeeded");
        assert_eq!(stderr.lines().count(), 1, "valfs {args:?}: {stderr:?}");
        assert!(
            stderr.starts_with("valfs: ") && stderr.contains(needle),
            "valfs {args:?}: {stderr:?} does not name {needle:?}"
        );
        assert_eq!(self.head(), before, "valfs {args:?} moved the branch");
        stderr
    }

    fn head(&self) -> String {
        head(&self.repo())
    }

    fn value(&self) -> Value {
        v(&self.ok(&["export"]))
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.repo(), args)
    }

    /// This store's section of `valfs status` (other tests' mounts are listed before it).
    fn status(&self) -> String {
        let out = self.ok(&["status"]);
        let start = out
            .find(&format!("{} (branch main)", self.repo().display()))
            .unwrap_or_else(|| panic!("no section of the store in {out}"));
        out[start..].to_owned()
    }
}

/// The commit `main` points at in a repository ("" when it has none).
fn head(repo: &Path) -> String {
    let out = git_output(repo, &["rev-parse", "--verify", "-q", "refs/heads/main"]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory for bare repositories (a server's base path) and one for server files.
fn places() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
}

#[test]
fn remotes_are_plain_git_remotes_added_listed_and_removed() {
    let m = Machine::with(r#"{"a":1}"#);
    assert_eq!(m.ok(&["remote", "list"]), "");
    m.fails(
        &["sync"],
        "no remotes (add one with `valfs remote add NAME URL`)",
    );
    let hub = bare(m.dir.path(), "hub.git");
    std::fs::create_dir(m.dir.path().join("sub")).unwrap();
    // A relative path is kept absolute: git would read it from wherever the next command runs.
    let mut add = m.command();
    add.current_dir(m.dir.path().join("sub"))
        .args(["remote", "add", "origin", "../hub.git"]);
    let out = add.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    m.ok(&["remote", "add", "backup", "git://example.invalid/x.git"]);
    assert_eq!(
        m.ok(&["remote", "list"]),
        format!(
            "backup git://example.invalid/x.git\norigin {}\n",
            hub.display()
        )
    );
    assert_eq!(m.git(&["config", "remote.origin.url"]).trim(), s(&hub));
    assert_eq!(
        m.git(&["config", "remote.origin.fetch"]).trim(),
        "+refs/heads/*:refs/remotes/origin/*"
    );
    m.fails(&["remote", "add", "origin", "/elsewhere"], "already exists");
    m.fails(&["remote", "add", "a..b", "/x"], "not a valid remote name");
    m.fails(&["sync", "nowhere"], "no remote \"nowhere\"");

    m.ok(&["sync", "origin"]);
    assert_eq!(
        m.git(&["rev-parse", "refs/remotes/origin/main"]),
        m.head() + "\n"
    );
    m.ok(&["remote", "remove", "origin"]);
    assert_eq!(
        m.ok(&["remote", "list"]),
        "backup git://example.invalid/x.git\n"
    );
    assert!(
        git_output(
            &m.repo(),
            &["rev-parse", "-q", "--verify", "refs/remotes/origin/main"]
        )
        .stdout
        .is_empty(),
        "what was fetched from it goes with it"
    );
    m.fails(&["remote", "rm", "origin"], "no remote \"origin\"");
    fsck(&m.repo());
}

/// A edits and syncs, B clones and syncs, and each change reaches the other by fast-forward,
/// both ways, through the hub at `url` (each machine reaching it by its own URL).
fn two_stores_sync_both_ways(a: &Machine, a_url: &str, b: &Machine, b_url: &str, hub: &Path) {
    a.ok(&["remote", "add", "origin", a_url]);
    let out = a.ok(&["sync"]);
    assert!(
        out.starts_with("origin: it has no such branch yet; pushed "),
        "{out}"
    );
    assert_eq!(head(hub), a.head());

    let out = b.ok(&["clone", b_url]);
    assert!(out.contains("(json, remote origin)"), "{out}");
    assert_eq!(b.head(), a.head());
    assert_eq!(b.value(), a.value());
    assert_eq!(b.git(&["config", "remote.origin.url"]).trim(), b_url);
    assert_eq!(b.ok(&["sync"]), "origin: up to date\n");

    b.ok(&["set", "b", "2"]);
    b.ok(&["set", "c", "3"]);
    assert_eq!(
        b.ok(&["sync"]),
        format!("origin: pushed 2 commits ({})\n", &b.head()[..7])
    );
    assert_eq!(
        a.ok(&["sync"]),
        format!(
            "origin: pulled 2 commits (fast-forward to {})\n",
            &b.head()[..7]
        )
    );
    assert_eq!(a.value(), v(r#"{"a":1,"b":2,"c":3}"#));

    a.ok(&["rm", "c"]);
    a.ok(&["push"]);
    assert_eq!(head(hub), a.head());
    b.ok(&["pull"]);
    assert_eq!(b.head(), a.head());
    assert_eq!(b.value(), v(r#"{"a":1,"b":2}"#));
    for repo in [a.repo(), b.repo(), hub.to_path_buf()] {
        fsck(&repo);
    }
}

#[test]
fn two_stores_sync_through_a_bare_repository_by_path() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let (a, b) = (Machine::with(r#"{"a":1}"#), Machine::new());
    two_stores_sync_both_ways(&a, s(&hub), &b, s(&hub), &hub);
}

#[test]
fn two_stores_sync_through_git_daemon() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let daemon = GitDaemon::start(base.path(), logs.path());
    let (a, b) = (Machine::with(r#"{"a":1}"#), Machine::new());
    two_stores_sync_both_ways(&a, &daemon.url("hub.git"), &b, &daemon.url("hub.git"), &hub);
}

#[test]
fn two_stores_sync_through_smart_http() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let http = Http::start(base.path(), logs.path());
    let (a, b) = (Machine::with(r#"{"a":1}"#), Machine::new());
    two_stores_sync_both_ways(&a, &http.url("hub.git"), &b, &http.url("hub.git"), &hub);
}

#[test]
fn two_stores_sync_through_ssh() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let ssh = Ssh::start(logs.path());
    let a = Machine::with(r#"{"a":1}"#).via_ssh(&ssh);
    let b = Machine::new().via_ssh(&ssh);
    two_stores_sync_both_ways(&a, &ssh.url(&hub), &b, &ssh.url(&hub), &hub);
}

#[test]
fn clone_over_every_transport_and_from_a_path() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let a = Machine::with(r#"{"users":[{"name":"Joe"}],"n":1}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["push"]);
    let daemon = GitDaemon::start(base.path(), logs.path());
    let http = Http::start(base.path(), logs.path());
    let ssh = Ssh::start(logs.path());
    let urls = [
        s(&hub).to_owned(),
        daemon.url("hub.git"),
        http.url("hub.git"),
        ssh.url(&hub),
    ];
    for url in &urls {
        let m = Machine::new().via_ssh(&ssh);
        // A named store, made where named stores live.
        let out = m.named(&["--store", "notes", "clone", url]);
        let path = m.dir.path().join("xdg/valfs/notes.git");
        assert!(out.contains(s(&path)), "{out}");
        assert_eq!(head(&path), a.head(), "{url}");
        assert_eq!(
            v(&m.named(&["--store", "notes", "export"])),
            a.value(),
            "{url}"
        );
        assert_eq!(git(&path, &["config", "valfs.format"]), "json\n");
        assert_eq!(git(&path, &["config", "remote.origin.url"]).trim(), url);
        let status = m.named(&["--store", "notes", "status"]);
        assert!(status.contains("ahead 0, behind 0: in step"), "{status}");
        fsck(&path);
    }
}

#[test]
fn a_push_that_loses_a_race_is_fetched_and_sent_again() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::with(r#"{"x":1}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["sync"]);
    // C builds on A's next commit and pushes first: from A's pre-push hook, once A has seen
    // the hub's head and decided to push.
    a.ok(&["set", "x", "2"]);
    let c = Machine::new();
    c.ok(&["clone", s(&hub)]);
    c.git(&[
        "fetch",
        "-q",
        s(&a.repo()),
        "+refs/heads/main:refs/heads/main",
    ]);
    c.ok(&["set", "y", "3"]);
    let hook = a.repo().join("hooks/pre-push");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nrm -f \"$0\"\ngit --git-dir '{}' push -q '{}' main:main >&2\n",
            c.repo().display(),
            hub.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", s(&hook)])
        .status()
        .unwrap();
    let out = a.ok(&["sync"]);
    assert!(!hook.exists(), "the hook ran");
    assert_eq!(
        out,
        format!(
            "origin: pulled 1 commit (fast-forward to {})\n",
            &c.head()[..7]
        )
    );
    assert_eq!(a.head(), c.head());
    assert_eq!(head(&hub), c.head());
    assert_eq!(a.value(), v(r#"{"x":2,"y":3}"#));
    fsck(&a.repo());
}

#[test]
fn a_push_race_with_commits_on_both_sides_merges_and_pushes() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::with(r#"{"x":1}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["sync"]);
    let c = Machine::new();
    c.ok(&["clone", s(&hub)]);
    c.ok(&["set", "y", "3"]);
    a.ok(&["set", "x", "2"]);
    let hook = a.repo().join("hooks/pre-push");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nrm -f \"$0\"\ngit --git-dir '{}' push -q '{}' main:main >&2\n",
            c.repo().display(),
            hub.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", s(&hook)])
        .status()
        .unwrap();
    a.ok(&["sync"]);
    assert_eq!(head(&hub), a.head());
    assert_eq!(a.value(), v(r#"{"x":2,"y":3}"#));
    let parents = a.git(&["rev-list", "--parents", "-n", "1", "main"]);
    assert_eq!(parents.split_whitespace().count(), 3, "a two-parent merge");
    fsck(&a.repo());
}

#[test]
fn edits_on_both_sides_while_apart_merge_on_sync() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let daemon = GitDaemon::start(base.path(), logs.path());
    let a = Machine::with(r#"{"a":1,"b":1}"#);
    a.ok(&["remote", "add", "origin", &daemon.url("hub.git")]);
    a.ok(&["sync"]);
    let b = Machine::new();
    b.ok(&["clone", s(&hub)]);
    a.ok(&["set", "a", "2"]);
    b.ok(&["set", "b", "2"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(a.head(), b.head());
    assert_eq!(head(&hub), a.head());
    assert_eq!(a.value(), v(r#"{"a":2,"b":2}"#));
    for repo in [a.repo(), b.repo(), hub] {
        fsck(&repo);
    }
}

#[test]
fn a_remote_that_is_down_fails_with_one_line_and_works_once_it_is_up() {
    let (base, logs) = places();
    let hub = bare(base.path(), "hub.git");
    let mut daemon = GitDaemon::start(base.path(), logs.path());
    let a = Machine::with(r#"{"x":1}"#);
    a.ok(&["remote", "add", "origin", &daemon.url("hub.git")]);
    a.ok(&["sync"]);
    let synced = head(&hub);

    daemon.server.stop();
    a.ok(&["set", "x", "2"]);
    for op in ["sync", "pull", "push"] {
        let line = a.fails(&[op], "origin: unable to connect to 127.0.0.1");
        assert!(line.contains("Connection refused"), "{line}");
    }
    assert_eq!(a.value(), v(r#"{"x":2}"#), "local saves go on");
    let status = a.status();
    assert!(
        status.contains("  remote origin: git://127.0.0.1:")
            && status.contains("ahead 1, behind 0")
            && status.contains("last error: 20")
            && status.contains("Connection refused (failing since 20"),
        "{status}"
    );
    assert_eq!(head(&hub), synced);

    daemon.server.restart();
    let out = a.ok(&["sync"]);
    assert_eq!(
        out,
        format!("origin: pushed 1 commit ({})\n", &a.head()[..7])
    );
    assert_eq!(head(&hub), a.head());
    let status = a.status();
    assert!(
        status.contains("ahead 0, behind 0: in step")
            && status.contains("Connection refused (it worked since)"),
        "{status}"
    );
    fsck(&a.repo());
}

#[test]
fn a_remote_that_never_answers_is_stopped_at_the_timeout() {
    // Takes connections and says nothing, like a host that hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((c, _)) = listener.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let a = Machine::with(r#"{"x":1}"#);
    a.ok(&[
        "remote",
        "add",
        "origin",
        &format!("git://127.0.0.1:{port}/x.git"),
    ]);
    let start = Instant::now();
    a.fails(
        &["sync", "--timeout", "1"],
        "origin: git fetch gave no answer within 1 s and was stopped (see --timeout)",
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(a.status().contains("gave no answer within 1 s"));
    // Over http the waiting is done by a helper of git's (git-remote-http): stopped as well.
    a.ok(&[
        "remote",
        "add",
        "web",
        &format!("http://127.0.0.1:{port}/x.git"),
    ]);
    let start = Instant::now();
    a.fails(
        &["pull", "web", "--timeout", "1"],
        "web: git fetch gave no answer within 1 s",
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    held.join().unwrap();
}

#[test]
fn a_clone_of_a_branch_that_is_not_a_valfs_value_is_refused_leaving_nothing() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "project.git");
    // A project's branch: a README at its root, no .valfs marker.
    let blob = Command::new("git")
        .args(["--git-dir", s(&hub), "hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"# project\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '100644 blob {}\\tREADME.md\\n' | git --git-dir '{}' mktree",
            blob.trim(),
            hub.display()
        ))
        .output()
        .unwrap();
    let tree = String::from_utf8(tree.stdout).unwrap();
    let commit = git(&hub, &["commit-tree", tree.trim(), "-m", "readme"]);
    git(&hub, &["update-ref", "refs/heads/main", commit.trim()]);

    let m = Machine::new();
    let into = m.dir.path().join("new/deep/copy.git");
    let line = m.fails(
        &["--repo", s(&into), "clone", s(&hub)],
        "main is not a valfs branch (its head",
    );
    assert!(line.contains("has no .valfs marker; --adopt"), "{line}");
    assert!(!m.dir.path().join("new").exists(), "nothing is left behind");
    let line = m.fails(&["clone", s(&hub)], "not a valfs branch");
    assert!(line.contains("main"), "{line}");
    let listed: Vec<_> = std::fs::read_dir(m.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        listed
            .iter()
            .all(|n| n != "store.git" && !n.to_string_lossy().ends_with(".tmp")),
        "{listed:?}"
    );
    m.fails(
        &["--branch", "dev", "clone", s(&hub)],
        "has no branch \"dev\"",
    );
    assert!(!m.repo().exists());

    // A valfs store's branch, into a path that holds a store already: refused too.
    let a = Machine::with(r#"{"x":1}"#);
    let store = bare(hubs.path(), "store.git");
    a.ok(&["remote", "add", "origin", s(&store)]);
    a.ok(&["push"]);
    a.fails(&["clone", s(&store)], "already exists");

    // Pulling such a branch into a store is refused as well, the branch untouched.
    a.ok(&["remote", "add", "project", s(&hub)]);
    a.fails(&["pull", "project"], "project/main is not a valfs branch");
    // --adopt takes it anyway.
    m.ok(&["--adopt", "clone", s(&hub)]);
    assert_eq!(m.head(), commit.trim());
}

#[test]
fn a_clone_of_an_edn_store_is_an_edn_store() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::new();
    a.ok(&["init", "--format", "edn"]);
    a.ok(&["set", ":status", ":active"]);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["push"]);
    let b = Machine::new();
    assert!(b.ok(&["clone", s(&hub)]).contains("(edn, remote origin)"));
    assert_eq!(b.git(&["config", "valfs.format"]), "edn\n");
    assert_eq!(b.ok(&["get", ":status"]), ":active\n");
    // Keyword keys tell too, when every scalar would also read as JSON.
    let k = Machine::new();
    k.ok(&["init", "--format", "edn"]);
    k.ok(&["set", ":n", "1"]);
    let edn_hub = bare(hubs.path(), "k.git");
    k.ok(&["remote", "add", "origin", s(&edn_hub)]);
    k.ok(&["push"]);
    let k2 = Machine::new();
    assert!(
        k2.ok(&["clone", s(&edn_hub)])
            .contains("(edn, remote origin)")
    );
    assert_eq!(k2.ok(&["export"]), "{:n 1}\n");
    // --format says it when the value cannot tell (here it holds JSON only).
    let c = Machine::new();
    let json_hub = bare(hubs.path(), "json.git");
    let j = Machine::with(r#"{"n":1}"#);
    j.ok(&["remote", "add", "origin", s(&json_hub)]);
    j.ok(&["push"]);
    assert!(
        c.ok(&["clone", "--format", "edn", s(&json_hub)])
            .contains("(edn, remote origin)")
    );
}

#[test]
fn status_shows_ahead_behind_the_last_sync_and_the_last_error() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::with(r#"{"x":1}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    let status = a.status();
    assert!(
        status.contains(&format!("  remote origin: {}\n", hub.display()))
            && status.contains("ahead, behind: unknown (never fetched)")
            && status.contains("last sync:  never")
            && status.contains("last error: none"),
        "{status}"
    );
    a.ok(&["sync"]);
    let b = Machine::new();
    b.ok(&["clone", s(&hub)]);
    b.ok(&["set", "y", "1"]);
    b.ok(&["sync"]);
    a.ok(&["set", "x", "2"]);
    a.ok(&["set", "x", "3"]);
    // A push alone does not take what the hub has; its fetch tells how far apart they are.
    a.fails(&["push"], "origin: its branch has commits this store lacks");
    let status = a.status();
    let today = &Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap()
        .stdout;
    let today = String::from_utf8_lossy(today).trim().to_owned();
    assert!(
        status.contains(&format!("last sync:  {today}T"))
            && status.contains(&format!("last error: {today}T"))
            && status.contains("origin: its branch has commits this store lacks"),
        "{status}"
    );
    assert!(status.contains("(failing since"), "{status}");
    // A pull brings the hub's commit in (a merge): 2 commits and the merge to push.
    a.ok(&["pull"]);
    let status = a.status();
    assert!(
        status.contains("ahead 3, behind 0: 3 commits to push, 0 commits to pull"),
        "{status}"
    );
    // Another remote has a section of its own.
    a.ok(&[
        "remote",
        "add",
        "backup",
        s(&bare(hubs.path(), "backup.git")),
    ]);
    a.ok(&["push", "backup"]);
    let status = a.status();
    let backup =
        &status[status.find("remote backup").unwrap()..status.find("remote origin").unwrap()];
    assert!(
        backup.contains("ahead 0, behind 0: in step")
            && backup.contains("last sync:  never")
            && backup.contains("last error: none"),
        "{backup}"
    );
}

/// Runs `valfs sync`, which may warn on stderr about the conflicts it met; it must succeed.
/// Returns stdout.
fn sync_meeting_conflicts(m: &Machine) -> String {
    let out = m.run(&["sync"]);
    assert!(out.status.success(), "valfs sync: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn conflicts_of_two_stores_are_listed_shown_and_resolved_as_one_commit() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::with(r#"{"users":[{"name":"Joe","age":41}],"port":80,"v":[1,2]}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["sync"]);
    let b = Machine::new();
    b.ok(&["clone", s(&hub)]);
    assert_eq!(a.ok(&["conflicts"]), "", "none yet: empty");
    assert_eq!(a.ok(&["conflicts", "--long"]), "");

    // Apart: both edit the age, one removes the name the other edits, both edit the port alike
    // (no conflict), and each edits a different element of v (no conflict either).
    a.ok(&["set", "users/0/age", "42"]);
    a.ok(&["set", "users/0/name", "Bob"]);
    a.ok(&["set", "port", "8080"]);
    a.ok(&["set", "v/0", "10"]);
    b.ok(&["set", "users/0/age", "43"]);
    b.ok(&["rm", "users/0/name"]);
    b.ok(&["set", "port", "8080"]);
    b.ok(&["set", "v/1", "20"]);
    a.ok(&["sync"]);
    let out = sync_meeting_conflicts(&b);
    assert!(
        out.contains("merged (") && out.contains("with 2 conflicts (`valfs conflicts` lists them)"),
        "{out}"
    );
    // B's merge keeps B's side (ours) where they disagree.
    assert_eq!(
        b.value(),
        v(r#"{"users":[{"age":43}],"port":8080,"v":[10,20]}"#)
    );
    assert_eq!(b.ok(&["conflicts"]), "users/0/age\nusers/0/name\n");
    assert_eq!(
        b.ok(&["conflicts", "--long"]),
        "users/0/age edit/edit\n  base:   41\n  ours:   43\n  theirs: 42\n\
         users/0/name edit/remove\n  base:   \"Joe\"\n  ours:   (none)\n  theirs: \"Bob\"\n"
    );
    // The record travels with the branch: A lists the same conflicts after its sync (B's 4
    // commits and the merge).
    assert_eq!(
        a.ok(&["sync"]),
        format!(
            "origin: pulled 5 commits (fast-forward to {})\n",
            &b.head()[..7]
        )
    );
    assert_eq!(a.ok(&["conflicts"]), b.ok(&["conflicts"]));

    // A path with no open conflict is refused with one line, and nothing is committed (also
    // when other paths named with it are open).
    b.fails(&["resolve", "port"], "no open conflict at port");
    b.fails(
        &["resolve", "users/0/age", "users/0/nope"],
        "no open conflict at users/0/nope (`valfs conflicts` lists them)",
    );
    let out = b.run(&["resolve"]);
    assert!(!out.status.success(), "resolve needs a path");
    assert_eq!(b.ok(&["conflicts"]), "users/0/age\nusers/0/name\n");

    // B settles the age on 42 and resolves both (typed as the mount pads them): one commit,
    // which changes no value and names the paths as they are recorded.
    b.ok(&["set", "users/0/age", "42"]);
    let before = b.head();
    let value = b.value();
    assert_eq!(b.ok(&["resolve", "users/00/age", "users/0/name"]), "");
    assert_eq!(b.ok(&["conflicts"]), "");
    assert_eq!(b.value(), value);
    assert_eq!(b.git(&["rev-parse", "main~1"]).trim(), before);
    assert_eq!(
        b.git(&["log", "-1", "--format=%s"]).trim(),
        "resolve users/0/age users/0/name"
    );
    // The record is gone from the commit's root, and only the record changed.
    let names = b.git(&["diff", "--name-only", "main~1", "main"]);
    assert!(
        names.lines().all(|l| l.starts_with(".valfs-conflicts/")),
        "{names}"
    );
    assert!(
        !b.git(&["ls-tree", "--name-only", "main"])
            .contains(".valfs-conflicts")
    );

    // The resolution wins over the same records left open on A, once synced.
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    assert_eq!(a.head(), b.head());
    assert_eq!(a.ok(&["conflicts"]), "");
    assert_eq!(
        a.value(),
        v(r#"{"users":[{"age":42}],"port":8080,"v":[10,20]}"#)
    );
    for repo in [a.repo(), b.repo(), hub] {
        fsck(&repo);
    }
}

#[test]
fn a_conflict_at_a_type_change_shows_each_side_in_the_store_format() {
    let hubs = tempfile::tempdir().unwrap();
    let hub = bare(hubs.path(), "hub.git");
    let a = Machine::with(r#"{"cfg":{"host":"db"}}"#);
    a.ok(&["remote", "add", "origin", s(&hub)]);
    a.ok(&["sync"]);
    let b = Machine::new();
    b.ok(&["clone", s(&hub)]);
    a.ok(&["set", "cfg", "off"]);
    b.ok(&["set", "cfg/host", "db2"]);
    a.ok(&["sync"]);
    sync_meeting_conflicts(&b);
    assert_eq!(
        b.ok(&["conflicts", "-l"]),
        "cfg type/edit\n  base:   {\"host\":\"db\"}\n  ours:   {\"host\":\"db2\"}\n  \
         theirs: \"off\"\n"
    );
    b.ok(&["resolve", "cfg"]);
    assert_eq!(b.ok(&["conflicts"]), "");
    assert_eq!(b.value(), v(r#"{"cfg":{"host":"db2"}}"#));
}
