//! `valfs watch`: a feed started before the changes prints those of every writer (a mount,
//! the CLI, a git push) in order, filters by path, replays from a commit, costs nothing while
//! idle, and leaves nothing behind when killed or when its reader goes away.

use crate::common::{git, valfs_ok};
use crate::mount::harness::{Mount, VALFS};
use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A running `valfs watch`, its lines read on a thread; killed and reaped on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    /// Starts `valfs --repo REPO watch ARGS` and waits until it sleeps on its inotify
    /// descriptor (so that it has read the head: later changes are news to it).
    fn start(repo: &Path, args: &[&str]) -> Watch {
        let mut child = Command::new(VALFS)
            .arg("--repo")
            .arg(repo)
            .arg("watch")
            .args(args)
            .env_remove("VALFS_REPO")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let w = Watch { child, lines };
        w.wait_idle();
        w
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (10 s at most) until the process holds an inotify descriptor and sleeps in poll.
    fn wait_idle(&self) {
        let proc = PathBuf::from(format!("/proc/{}", self.pid()));
        let start = Instant::now();
        loop {
            let inotify = std::fs::read_dir(proc.join("fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|l| l.to_string_lossy().contains("inotify"))
                })
            });
            let wchan = std::fs::read_to_string(proc.join("wchan")).unwrap_or_default();
            if inotify && wchan.contains("poll") {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "watch did not start (wchan {wchan:?}, inotify {inotify})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next line, parsed (10 s at most).
    fn next(&self) -> Json {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from valfs watch");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// The next `n` lines as (op, path, from).
    fn take(&self, n: usize) -> Vec<(String, String, Option<String>)> {
        (0..n).map(|_| brief(&self.next())).collect()
    }

    /// No line comes within `wait`.
    fn quiet(&self, wait: Duration) {
        match self.lines.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            other => panic!("expected no line, got {other:?}"),
        }
    }

    /// utime + stime of the process, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which is in parentheses): state is the 3rd field,
        // utime and stime the 14th and 15th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn brief(j: &Json) -> (String, String, Option<String>) {
    (
        j["op"].as_str().unwrap().to_owned(),
        j["path"].as_str().unwrap().to_owned(),
        j.get("from").map(|f| f.as_str().unwrap().to_owned()),
    )
}

fn ch(op: &str, path: &str) -> (String, String, Option<String>) {
    (op.to_owned(), path.to_owned(), None)
}

/// A store in a temp dir made by `valfs init`, holding `doc`.
fn store(doc: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo.git");
    valfs_ok(&repo, &["init"]);
    let input = dir.path().join("in.json");
    std::fs::write(&input, doc).unwrap();
    valfs_ok(&repo, &["import", input.to_str().unwrap()]);
    (dir, repo)
}

fn rev(repo: &Path, spec: &str) -> String {
    git(repo, &["rev-parse", spec]).trim().to_owned()
}

#[test]
fn a_feed_prints_the_changes_of_a_mount_the_cli_a_git_push_and_a_sync_in_order() {
    let m = Mount::new(r#"{"users": [{"name": "Ann", "age": 30}], "cfg": {}}"#);
    let w = Watch::start(&m.repo, &[]);
    let commits = |n| {
        let want = n;
        assert!(
            m.wait_for(Duration::from_secs(10), || m.commits() == want),
            "{} commits, not {want}",
            m.commits()
        );
    };
    let start = m.commits();
    m.sh_ok("echo 31 > users/0/age");
    commits(start + 1);
    m.valfs_ok(&["set", "cfg/x", "1"]);
    m.sh_ok("mkdir cfg/d");
    commits(start + 3);
    m.sh_ok("mv cfg/x cfg/y");
    commits(start + 4);
    m.sh_ok("rm cfg/y");
    commits(start + 5);
    // Another machine's copy moves on, then a plain `git push` fast-forwards the branch.
    let other = m.out.join("other.git");
    let (repo, copy) = (m.repo.to_str().unwrap(), other.to_str().unwrap());
    m.git(&["clone", "--quiet", "--bare", repo, copy]);
    valfs_ok(&other, &["set", "users/0/name", "Bob"]);
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&other)
        .args(["push", "--quiet", m.repo.to_str().unwrap(), "main"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A third store syncs with this one (its remote): the sync's push moves the branch too.
    let third = m.out.join("third.git");
    valfs_ok(&third, &["clone", m.repo.to_str().unwrap()]);
    valfs_ok(&third, &["set", "cfg/s", "2"]);
    valfs_ok(&third, &["sync"]);
    let lines: Vec<Json> = (0..7).map(|_| w.next()).collect();
    let got: Vec<_> = lines.iter().map(brief).collect();
    assert_eq!(
        got,
        vec![
            ch("write", "users/0/age"),
            ch("write", "cfg/x"),
            ch("mkdir", "cfg/d"),
            ("mv".into(), "cfg/y".into(), Some("cfg/x".into())),
            ch("rm", "cfg/y"),
            ch("write", "users/0/name"),
            ch("write", "cfg/s"),
        ]
    );
    // One line a commit here, in the branch's order, each naming its full commit.
    let log = m.git(&["rev-list", "--first-parent", "--reverse", "-n", "7", "main"]);
    let hashes: Vec<&str> = lines
        .iter()
        .map(|j| j["commit"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, log.lines().collect::<Vec<_>>());
    let time = lines[0]["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    w.quiet(Duration::from_millis(300));
}

#[test]
fn a_path_filters_to_itself_what_is_below_and_what_holds_it() {
    let (_dir, repo) = store(r#"{"users": {"ann": {"age": 30}}, "cfg": {"x": 1}}"#);
    let w = Watch::start(&repo, &["users/ann"]);
    valfs_ok(&repo, &["set", "cfg/x", "2"]);
    valfs_ok(&repo, &["set", "users/ann/age", "31"]);
    valfs_ok(&repo, &["set", "users/bob", "{}"]);
    valfs_ok(&repo, &["rm", "users"]);
    assert_eq!(
        w.take(2),
        vec![ch("write", "users/ann/age"), ch("rm", "users")]
    );
    w.quiet(Duration::from_millis(300));
}

#[test]
fn since_replays_exactly_the_changes_after_a_commit_then_follows() {
    let (_dir, repo) = store(r#"{"a": 1}"#);
    valfs_ok(&repo, &["set", "a", "2"]);
    let from = rev(&repo, "main");
    valfs_ok(&repo, &["set", "b", "{}"]);
    valfs_ok(&repo, &["mv", "a", "c"]);
    // A merge commit (as a sync makes): its lines are the paths it changed on the branch.
    let side = valfs_ok(&repo, &["export"]);
    assert_eq!(side.trim(), r#"{"b":{},"c":2}"#);
    git(&repo, &["branch", "side", "main"]);
    valfs_ok(&repo, &["--branch", "side", "set", "d", "4"]);
    let tree = rev(&repo, "side^{tree}");
    let merge = git(
        &repo,
        &[
            "commit-tree",
            &tree,
            "-p",
            "main",
            "-p",
            "side",
            "-m",
            "merge side",
        ],
    );
    git(&repo, &["update-ref", "refs/heads/main", merge.trim()]);

    let w = Watch::start(&repo, &["--since", &from]);
    assert_eq!(
        w.take(3),
        vec![
            ch("mkdir", "b"),
            ("mv".into(), "c".into(), Some("a".into())),
            ch("merge", "d"),
        ]
    );
    w.quiet(Duration::from_millis(300));
    valfs_ok(&repo, &["set", "e", "5"]);
    assert_eq!(w.take(1), vec![ch("write", "e")]);
    // From the head itself: nothing to replay.
    let head = rev(&repo, "main");
    let again = Watch::start(&repo, &["--since", &head]);
    again.quiet(Duration::from_millis(300));
}

#[test]
fn an_idle_feed_costs_no_cpu() {
    let (_dir, repo) = store(r#"{"a": 1}"#);
    let w = Watch::start(&repo, &[]);
    let before = w.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.cpu_ticks() - before, 0, "CPU ticks spent in 2 s idle");
    // It is still awake to changes.
    valfs_ok(&repo, &["set", "a", "2"]);
    assert_eq!(w.take(1), vec![ch("write", "a")]);
}

/// The repository's files (not under objects/): what a watch could have left behind.
fn files(repo: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(repo)
        .args(["-not", "-path", "*/objects/*"])
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_feed_leaves_nothing_behind_and_a_closed_pipe_ends_it_quietly() {
    let (_dir, repo) = store(r#"{"a": 1}"#);
    let before = files(&repo);
    let mut w = Watch::start(&repo, &[]);
    valfs_ok(&repo, &["set", "a", "2"]);
    assert_eq!(w.take(1), vec![ch("write", "a")]);
    let pid = w.pid();
    w.child.kill().unwrap();
    w.child.wait().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let after = files(&repo);
    // The set added its reflog line and moved the ref; nothing else is new.
    assert_eq!(before, after);
    crate::common::fsck(&repo);

    // The reader goes away while the feed is idle: it ends by itself, silently.
    let mut child = Command::new(VALFS)
        .arg("--repo")
        .arg(&repo)
        .arg("watch")
        .env_remove("VALFS_REPO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(child.stdout.take());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watch kept running after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "");
}

/// `inotifywait -m -r MNT` until killed; its lines once stopped.
struct Inotify(Option<Child>, PathBuf);

impl Inotify {
    fn start(m: &Mount) -> Inotify {
        let out = m.out.join("inotify.txt");
        let file = std::fs::File::create(&out).unwrap();
        let mut child = Command::new("inotifywait")
            .args(["-m", "-r", "--format", "%e %w%f"])
            .arg(&m.mnt)
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("inotifywait (inotify-tools) is installed by scripts/test");
        // It prints "Watches established." on stderr once ready.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("Watches established") {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "inotifywait ended");
        }
        Inotify(Some(child), out)
    }

    /// Stops it and returns the events seen, without the reads' OPEN/ACCESS/CLOSE_NOWRITE.
    fn events(mut self, m: &Mount) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mnt = format!("{}/", m.mnt.display());
        std::fs::read_to_string(&self.1)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("OPEN") && !l.contains("ACCESS") && !l.contains("NOWRITE"))
            .map(|l| l.replace(&mnt, ""))
            .collect()
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// README's table ("inotify on a mount"), as `inotifywait -m -r` sees it.
#[test]
fn inotify_hears_changes_through_the_mount_and_nothing_of_other_writers() {
    let m = Mount::new(r#"{"users": {"ann": {"age": 30}}, "cfg": {"x": 1, "z": 2}}"#);
    let ino = Inotify::start(&m);
    m.sh_ok("echo 31 > users/ann/age");
    m.sh_ok("echo 5 > cfg/n");
    m.sh_ok("mkdir cfg/d");
    m.sh_ok("mv cfg/x cfg/y");
    m.sh_ok("rm cfg/y");
    let seen = ino.events(&m);
    for want in [
        "MODIFY users/ann/age",
        "CLOSE_WRITE,CLOSE users/ann/age",
        "CREATE cfg/n",
        "CREATE,ISDIR cfg/d",
        "MOVED_FROM cfg/x",
        "MOVED_TO cfg/y",
        "DELETE cfg/y",
    ] {
        assert!(seen.iter().any(|l| l == want), "{want} not in {seen:?}");
    }

    let ino = Inotify::start(&m);
    m.valfs_ok(&["set", "users/ann/age", "40"]);
    m.valfs_ok(&["set", "cfg/new", "1"]);
    m.valfs_ok(&["rm", "cfg/z"]);
    m.valfs_ok(&["mv", "users/ann", "users/bob"]);
    assert!(
        m.wait_for(Duration::from_secs(5), || m.sh("cat users/bob/age").1
            == "40\n"),
        "the mount shows the other writer's commits"
    );
    assert_eq!(
        ino.events(&m),
        Vec::<String>::new(),
        "nothing fires for another writer"
    );
}
