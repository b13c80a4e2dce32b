//! The `valfs` binary end to end, without mounting.

use crate::common::{fsck, git, v};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use valfs::value::Value;

const BIN: &str = env!("CARGO_BIN_EXE_valfs");

/// A temp dir with a private `$XDG_DATA_HOME` and `$HOME`, and a repository path in it.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An `Env` with an initialised store at `repo()`.
    fn init() -> Env {
        let env = Env::new();
        env.ok(&["init"]);
        env
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("store.git")
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// `valfs` with no repository chosen: only the environment of this test.
    fn bare_command(&self) -> Command {
        self.program(BIN)
    }

    /// Any program, with this env's environment (no repository chosen).
    fn program(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_DATA_HOME", self.xdg())
            .current_dir(self.dir.path());
        cmd
    }

    /// `valfs` on this env's repository (through `VALFS_REPO`).
    fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.env("VALFS_REPO", self.repo());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs a command that must succeed quietly; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "valfs {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "valfs {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with a one-line message containing `needle` and leave the
    /// branch where it was.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let before = self.head();
        let out = self.run(args);
        expect_failure(&out, args, needle);
        assert_eq!(self.head(), before, "valfs {args:?} moved the branch");
        String::from_utf8(out.stderr).unwrap()
    }

    fn head(&self) -> Option<String> {
        let out = crate::common::git_output(
            &self.repo(),
            &["rev-parse", "--verify", "-q", "refs/heads/main"],
        );
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    fn value(&self) -> Value {
        v(&self.ok(&["export"]))
    }

    fn git(&self, args: &[&str]) -> String {
        git(&self.repo(), args)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn expect_failure(out: &Output, args: &[&str], needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "valfs {args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "valfs {args:?}: {stderr:?}");
    assert!(
        stderr.starts_with("valfs: ") && stderr.contains(needle),
        "valfs {args:?}: {stderr:?} does not name {needle:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "valfs {args:?} printed {:?}",
        out.stdout
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const DOC: &str = r#"{"users":[{"name":"Joe","age":41},{"name":"Ann"}],
  "big":12345678901234567890,"f":1e400,"odd keys":{"a/b":1,"":2,".git":3}}"#;

#[test]
fn init_import_export_round_trip() {
    let env = Env::new();
    let out = env.ok(&["init"]);
    assert!(out.contains(s(&env.repo())), "{out}");
    assert_eq!(env.ok(&["export"]), "{}\n");
    env.fails(&["init"], "already exists");

    let file = env.write("doc.json", DOC);
    assert_eq!(env.ok(&["import", s(&file)]), "");
    assert_eq!(env.value(), v(DOC));
    let pretty = env.ok(&["export", "--pretty"]);
    assert!(pretty.lines().count() > 5, "{pretty}");
    assert_eq!(v(&pretty), v(DOC));
    assert_eq!(
        env.ok(&["export", "users/0"]),
        "{\"age\":41,\"name\":\"Joe\"}\n"
    );
    assert_eq!(
        env.ok(&["export", "odd keys"]),
        r#"{"":2,".git":3,"a/b":1}"#.to_owned() + "\n"
    );
    assert_eq!(env.git(&["show", "HEAD:odd keys/a%2Fb"]), "1\n");

    // Import into a subtree, and from standard input.
    let sub = env.write("sub.json", r#"[true,false]"#);
    env.ok(&["import", s(&sub), "users/1/flags"]);
    assert_eq!(env.ok(&["get", "users/1/flags/1"]), "false\n");
    let mut child = env
        .command()
        .args(["import", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"from":"stdin"}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(env.value(), v(r#"{"from":"stdin"}"#));
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "4\n");
    fsck(&env.repo());
}

#[test]
fn get_set_rm_mv() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DOC))]);
    assert_eq!(env.ok(&["get", "users/0/name"]), "\"Joe\"\n");
    assert_eq!(env.ok(&["get", "/users/00/age"]), "41\n");
    assert_eq!(env.ok(&["get", "big"]), "12345678901234567890\n");
    assert_eq!(env.ok(&["get", "f"]), "1e400\n");
    assert_eq!(env.ok(&["get", "users/1"]), "{\"name\":\"Ann\"}\n");

    env.ok(&["set", "users/0/age", "42"]);
    assert_eq!(env.ok(&["get", "users/0/age"]), "42\n");
    env.ok(&["set", "users/2", r#"{"name":"Eve"}"#]);
    assert_eq!(env.ok(&["get", "users/2/name"]), "\"Eve\"\n");

    env.ok(&["rm", "users/1"]);
    assert_eq!(env.ok(&["get", "users/1/name"]), "\"Eve\"\n");
    env.ok(&["mv", "users/0/name", "users/0/full_name"]);
    assert_eq!(
        env.ok(&["export", "users/0"]),
        "{\"age\":42,\"full_name\":\"Joe\"}\n"
    );
    env.ok(&["mv", "odd keys", "odd"]);
    assert_eq!(env.ok(&["get", "odd/%2Egit"]), "3\n");
    assert_eq!(env.ok(&["get", "odd/%"]), "2\n");
    assert_eq!(env.ok(&["get", "odd/a%2Fb"]), "1\n");
    env.ok(&["rm", "odd/a%2Fb"]);
    assert_eq!(env.ok(&["export", "odd"]), "{\"\":2,\".git\":3}\n");
    fsck(&env.repo());
}

#[test]
fn set_reads_text_as_a_file() {
    let env = Env::init();
    env.ok(&["set", "name", "Bob"]);
    assert_eq!(env.ok(&["get", "name"]), "\"Bob\"\n");
    assert_eq!(env.git(&["show", "HEAD:name"]), "\"Bob\"\n");
    env.ok(&["set", "x", r#"{"a":[1,2]}"#]);
    assert_eq!(env.git(&["cat-file", "-t", "HEAD:x"]), "tree\n");
    assert_eq!(env.git(&["cat-file", "-t", "HEAD:x/a"]), "tree\n");
    assert_eq!(env.git(&["show", "HEAD:x/a/1"]), "2\n");
    assert_eq!(env.ok(&["get", "x/a/1"]), "2\n");
    for (text, json) in [
        ("41", "41"),
        ("\"41\"", "\"41\""),
        ("4.50", "4.50"),
        ("true", "true"),
        ("null", "null"),
        ("two words", "\"two words\""),
        ("line\n", "\"line\""),
        ("", "\"\""),
        ("[1,", "\"[1,\""),
        ("[]", "[]"),
    ] {
        env.ok(&["set", "t", text]);
        assert_eq!(env.ok(&["get", "t"]), format!("{json}\n"), "set t {text:?}");
    }
}

#[test]
fn log_diff_revert() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DOC))]);
    env.ok(&["set", "users/0/age", "42"]);
    env.ok(&["set", "other", "1"]);

    let log = env.ok(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[0].ends_with(" set other"), "{log}");
    assert!(lines[1].ends_with(" set users/0/age"), "{log}");
    assert!(lines[3].ends_with(" init"), "{log}");
    let (hash, rest) = lines[0].split_once(' ').unwrap();
    assert_eq!(hash.len(), 12);
    assert!(env.git(&["rev-parse", "HEAD"]).starts_with(hash));
    assert!(rest.len() > 20 && rest.as_bytes()[19] == b'Z', "{rest}");
    let age_log = env.ok(&["log", "users/0/age"]);
    assert_eq!(age_log.lines().count(), 2, "{age_log}");
    assert_eq!(env.ok(&["log", "-n", "1"]).lines().count(), 1);

    assert_eq!(
        env.ok(&["diff", "HEAD~2", "HEAD~1"]),
        "~ users/0/age: 41 -> 42\n"
    );
    assert_eq!(
        env.ok(&["diff", "HEAD~2"]),
        "+ other: 1\n~ users/0/age: 41 -> 42\n"
    );
    assert_eq!(env.ok(&["diff", "HEAD", "HEAD"]), "");
    env.ok(&["rm", "users/1"]);
    assert_eq!(
        env.ok(&["diff", "HEAD~1"]),
        "- users/1: {\"name\":\"Ann\"}\n"
    );

    let before = env.value();
    env.ok(&["revert", "HEAD~3"]);
    assert_eq!(env.value(), v(DOC));
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "6\n");
    assert!(env.ok(&["log", "-n", "1"]).contains("revert to "));
    assert_eq!(v(&env.ok(&["export", "--at", "HEAD~1"])), before);
    assert_eq!(env.ok(&["get", "--at", "HEAD~4", "users/0/age"]), "41\n");
    // Reverting to what is already there changes nothing.
    env.ok(&["revert", "HEAD"]);
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "6\n");
    fsck(&env.repo());
}

/// Regression: `HEAD` was replaced by the branch in any revision starting with it, so a tag or
/// branch called `HEADLINE` or `HEADS` was an unknown revision.
#[test]
fn revisions_starting_with_head_are_not_head() {
    let env = Env::init();
    env.ok(&["set", "a", "1"]);
    env.ok(&["set", "a", "2"]);
    env.git(&["tag", "HEADLINE", "main~1"]);
    env.git(&["branch", "HEADS", "main~2"]);
    for (rev, value) in [
        ("HEADLINE", "{\"a\":1}"),
        ("HEADS", "{}"),
        ("HEAD", "{\"a\":2}"),
        ("HEAD~1", "{\"a\":1}"),
        ("HEAD^", "{\"a\":1}"),
        ("HEAD@{2}", "{}"),
        ("main~2", "{}"),
    ] {
        assert_eq!(
            env.ok(&["export", "--at", rev]),
            format!("{value}\n"),
            "{rev}"
        );
    }
}

#[test]
fn global_options_go_anywhere() {
    let env = Env::new();
    let repo = env.repo();
    let run = |args: &[&str]| {
        let out = env.bare_command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init", "--repo", s(&repo), "--branch", "dev"]);
    run(&["set", "a", "1", "--repo", s(&repo), "--branch", "dev"]);
    run(&["--repo", s(&repo), "set", "--branch", "dev", "b", "2"]);
    assert_eq!(
        run(&["get", "a", "--branch", "dev", "--repo", s(&repo)]),
        "1\n"
    );
    assert_eq!(
        run(&["export", "--repo", s(&repo), "--branch=dev"]),
        "{\"a\":1,\"b\":2}\n"
    );
    assert_eq!(git(&repo, &["show", "refs/heads/dev:b"]), "2\n");
    // --repo beats VALFS_REPO.
    let out = env
        .bare_command()
        .env("VALFS_REPO", "/nonexistent/elsewhere")
        .args(["get", "a", "--branch", "dev", "--repo", s(&repo)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    // Nothing went to the default store.
    assert!(!env.xdg().exists());
}

#[test]
fn the_default_store_is_created_on_first_use() {
    let env = Env::new();
    let default = env.xdg().join("valfs/default.git");
    assert!(!default.exists());
    let out = env.bare_command().args(["export"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{}\n");
    assert!(default.join("HEAD").is_file());
    assert_eq!(
        git(&default, &["rev-parse", "--is-bare-repository"]),
        "true\n"
    );
    let out = env.bare_command().args(["set", "a", "1"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(git(&default, &["show", "main:a"]), "1\n");
    // It is used again, not recreated.
    let out = env.bare_command().args(["get", "a"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n");
    assert_eq!(git(&default, &["rev-list", "--count", "main"]), "2\n");
    fsck(&default);
}

/// Regression: processes using the default store for the first time at once raced to create it
/// (most failed on git's lock files, or found it without a commit yet).
#[test]
fn the_default_store_is_created_once_by_racing_processes() {
    for _ in 0..5 {
        let env = Env::new();
        let children: Vec<_> = (0..4)
            .map(|i| {
                env.bare_command()
                    .args(["set", &format!("k{i}"), "1"])
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let store = env.xdg().join("valfs");
        assert_eq!(
            git(&store.join("default.git"), &["rev-list", "--count", "main"]),
            "5\n"
        );
        let left: Vec<_> = std::fs::read_dir(&store)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["default.git"], "scratch directories left behind");
    }
}

#[test]
fn errors_are_one_line_and_change_nothing() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DOC))]);

    let bad = env.write("bad.json", "{\"a\": [1, 2,]}");
    let msg = env.fails(&["import", s(&bad)], "bad.json");
    assert!(msg.contains("line 1"), "{msg}");
    env.fails(&["import", "no-such-file.json"], "no-such-file.json");
    env.fails(&["import", s(&env.write("scalar.json", "42"))], "root");

    env.fails(&["get", "users/9/name"], "users/9: no such key");
    env.fails(&["get", "nope"], "nope: no such key");
    env.fails(&["get", "users/0/name/deeper"], "users/0/name");
    env.fails(&["set", "nope/x", "1"], "nope");
    env.fails(&["set", "users/5", "1"], "users/5");
    env.fails(&["set", "users/x", "1"], "users/x: not an index");
    env.fails(&["set", "%zz", "1"], "%zz");
    env.fails(&["set", "", "1"], "root");
    env.fails(&["rm", "nope"], "nope");
    env.fails(&["rm", ""], "root");
    env.fails(&["mv", "users", "users/0/x"], "itself");
    env.fails(&["mv", "nope", "x"], "nope");

    env.fails(&["export", "--at", "nosuchrev"], "nosuchrev");
    env.fails(&["get", "--at", "HEAD~99", "users"], "HEAD~99");
    env.fails(&["diff", "nosuchrev"], "nosuchrev");
    env.fails(&["diff", "HEAD", "deadbeef"], "deadbeef");
    env.fails(&["revert", "nosuchrev"], "nosuchrev");
    env.fails(&["log", "--branch", "nosuchbranch"], "nosuchbranch");

    let missing = env.dir.path().join("missing.git");
    for args in [
        vec!["get", "a"],
        vec!["set", "a", "1"],
        vec!["export"],
        vec!["log"],
    ] {
        let out = env
            .bare_command()
            .arg("--repo")
            .arg(&missing)
            .args(&args)
            .output()
            .unwrap();
        expect_failure(&out, &args, "missing.git");
        assert!(!missing.exists(), "valfs {args:?} created the repository");
    }
    assert_eq!(env.value(), v(DOC));
    fsck(&env.repo());
}

#[test]
fn gc_keeps_the_value() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DOC))]);
    env.ok(&["set", "a", "1"]);
    env.ok(&["gc"]);
    assert_eq!(env.ok(&["get", "a"]), "1\n");
    assert_eq!(env.ok(&["get", "--at", "HEAD~1", "users/0/age"]), "41\n");
    fsck(&env.repo());
}

#[test]
fn two_processes_setting_at_once_lose_nothing() {
    let env = Env::init();
    let script = r#"for i in $(seq 100); do "$VALFS" set "$1-$i" "$i" || exit 1; done"#;
    let children: Vec<_> = ["left", "right"]
        .iter()
        .map(|side| {
            env.program("sh")
                .env("VALFS_REPO", env.repo())
                .env("VALFS", BIN)
                .args(["-c", script, "sh", side])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let Value::Map(m) = env.value() else {
        panic!("root is a map")
    };
    assert_eq!(m.len(), 200);
    for side in ["left", "right"] {
        for i in 1..=100 {
            assert_eq!(m[&Value::string(format!("{side}-{i}"))], Value::int(i));
        }
    }
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "201\n");
    fsck(&env.repo());
}

/// A document whose subtree `db` holds vectors of maps holding vectors: what `cp -r` out of
/// `.history` used to turn into maps.
const DB: &str = r#"{"db":{"users":[{"name":"Joe","tags":["a","b"]},{"name":"Ann","tags":[]},
  {"name":"Bob","tags":[[1,2],{"k":null}]}],"n":12345678901234567890},"other":1}"#;

#[test]
fn restore_puts_a_subtree_back_exactly() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DB))]);
    let original = env.value();
    env.ok(&["set", "db/users/0/tags", "{}"]);
    env.ok(&["rm", "db/users/1"]);
    env.ok(&["set", "other", "2"]);
    let commits = |env: &Env| env.git(&["rev-list", "--count", "HEAD"]);
    assert_eq!(commits(&env), "5\n");

    // In place: one commit, the very tree the subtree had (nothing re-encoded), the rest kept.
    assert_eq!(env.ok(&["restore", "HEAD~3", "db"]), "");
    assert_eq!(commits(&env), "6\n");
    let mut want = original.clone();
    if let valfs::value::Value::Map(m) = &mut want {
        m.insert(
            valfs::value::Value::string("other"),
            valfs::value::Value::int(2),
        );
    }
    assert_eq!(env.value(), want);
    assert_eq!(
        env.git(&["rev-parse", "HEAD:db"]),
        env.git(&["rev-parse", "HEAD~4:db"])
    );
    assert!(env.ok(&["log", "-n", "1"]).contains("restore db from "));
    let diff = env.ok(&["diff", "HEAD~1", "HEAD"]);
    assert!(diff.lines().all(|l| l[2..].starts_with("db/")), "{diff}");

    // Elsewhere, and an element by its padded name: vectors stay vectors.
    env.ok(&["restore", "HEAD~4", "db/users/002", "copy"]);
    assert_eq!(
        env.ok(&["export", "copy"]),
        "{\"name\":\"Bob\",\"tags\":[[1,2],{\"k\":null}]}\n"
    );
    env.ok(&["restore", "HEAD~5", "db/users", "db/users/1"]);
    assert_eq!(
        env.ok(&["export", "db/users/1/1"]),
        "{\"name\":\"Ann\",\"tags\":[]}\n"
    );
    assert_eq!(commits(&env), "8\n");
    // Restoring what is already there makes no commit.
    env.ok(&["restore", "HEAD", "db"]);
    assert_eq!(commits(&env), "8\n");
    fsck(&env.repo());
}

#[test]
fn restore_of_the_root_is_a_revert() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DB))]);
    env.ok(&["set", "db/users", "[]"]);
    env.ok(&["restore", "HEAD~1", "/"]);
    assert_eq!(env.value(), v(DB));
    env.ok(&["set", "x", "1"]);
    env.ok(&["restore", "HEAD~2", ""]);
    assert_eq!(
        env.value(),
        v("{\"db\":{\"users\":[],\"n\":12345678901234567890},\"other\":1}")
    );
    assert_eq!(
        env.git(&["rev-parse", "HEAD^{tree}"]),
        env.git(&["rev-parse", "HEAD~3^{tree}"])
    );
    assert_eq!(env.git(&["rev-list", "--count", "HEAD"]), "6\n");
    fsck(&env.repo());
}

#[test]
fn restore_of_what_was_not_there_is_an_error_that_changes_nothing() {
    let env = Env::init();
    env.ok(&["import", s(&env.write("d.json", DB))]);
    env.ok(&["set", "new", "1"]);
    env.fails(&["restore", "HEAD~1", "new"], "HEAD~1:new: no such key");
    env.fails(
        &["restore", "HEAD", "db/users/9"],
        "db/users/9: no such key",
    );
    env.fails(&["restore", "HEAD", "other/x"], "other/x");
    env.fails(&["restore", "nosuchrev", "db"], "nosuchrev");
    env.fails(&["restore", "HEAD~1", "db", "nope/db"], "nope");
    env.fails(&["restore", "HEAD~1", "other", "/"], "root");
    env.fails(&["restore", "HEAD~1", "db", "db/users/7"], "db/users/7");
    fsck(&env.repo());
}

/// A restore reuses the old subtree by id: however big it is, the commit writes only the
/// trees above the target and itself.
#[test]
fn restore_writes_only_the_ancestors_of_the_target() {
    use crate::common::loose_objects;
    let env = Env::init();
    let users: Vec<String> = (0..3000)
        .map(|i| format!(r#"{{"name":"u{i}","tags":["t{i}",[{i}]]}}"#))
        .collect();
    let doc = format!(
        r#"{{"db":{{"users":[{}],"n":1}},"x":{{"y":1}}}}"#,
        users.join(",")
    );
    env.ok(&["import", s(&env.write("big.json", &doc))]);
    env.ok(&["rm", "db/users"]);
    let before = loose_objects(&env.repo());
    env.ok(&["restore", "HEAD~1", "db/users", "x/users"]);
    let new: Vec<String> = loose_objects(&env.repo())
        .difference(&before)
        .cloned()
        .collect();
    // The commit, the root and x.
    assert_eq!(new.len(), 3, "{new:?}");
    let mut kinds: Vec<String> = new
        .iter()
        .map(|id| env.git(&["cat-file", "-t", id]).trim().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["commit", "tree", "tree"]);
    assert_eq!(
        env.git(&["rev-parse", "HEAD:x/users"]),
        env.git(&["rev-parse", "HEAD~2:db/users"])
    );
    assert_eq!(env.ok(&["get", "x/users/2999/tags/1/0"]), "2999\n");
    fsck(&env.repo());
}

#[test]
fn restore_is_in_the_help() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    assert!(help.contains("restore"), "{help}");
    let help = env.ok(&["restore", "--help"]);
    assert!(
        help.contains("REV") && help.contains("PATH") && help.contains("[TO]"),
        "{help}"
    );
}

/// A ref lock left by a process that died: every command that moves the branch gives up
/// within seconds with one line naming the lock, writes no commit objects while waiting, and
/// leaves the branch alone (`valfs revert` looped forever, writing a commit each turn).
#[test]
fn a_stale_ref_lock_fails_revert_and_set_within_seconds() {
    let env = Env::init();
    env.ok(&["set", "a", "1"]);
    env.ok(&["set", "a", "2"]);
    std::fs::write(env.repo().join("refs/heads/main.lock"), "").unwrap();
    let objects = || crate::common::loose_objects(&env.repo()).len();
    let before = objects();
    for args in [&["revert", "HEAD~1"][..], &["set", "a", "3"][..]] {
        let start = std::time::Instant::now();
        env.fails(args, "main.lock exists");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "valfs {args:?} took {:?}",
            start.elapsed()
        );
    }
    // At most the new tree of `set` and its parents; no commit object per retry.
    assert!(
        objects() <= before + 4,
        "{} objects written",
        objects() - before
    );
    std::fs::remove_file(env.repo().join("refs/heads/main.lock")).unwrap();
    env.ok(&["revert", "HEAD~1"]);
    assert_eq!(env.value(), v(r#"{"a": 1}"#));
}

/// The names `.history` gives work as revisions on the command line too: `@TIME` (the last
/// version at or before a UTC time).
#[test]
fn at_time_revisions_work_in_the_cli() {
    let env = Env::init();
    env.ok(&["set", "a", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, mo, d, h, mi, s) = valfs::value::civil_from_unix(secs);
    let at = format!("@{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.ok(&["set", "a", "2"]);
    assert_eq!(env.ok(&["get", "--at", &at, "a"]), "1\n");
    assert_eq!(env.ok(&["get", "a"]), "2\n");
    env.fails(&["get", "--at", "@1999-01-01", "a"], "unknown revision");
    env.ok(&["restore", &at, "a"]);
    assert_eq!(env.value(), v(r#"{"a": 1}"#));
}
