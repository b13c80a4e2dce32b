//! Bad input, tried systematically through a real mount: names, contents and repositories
//! holding what valfs does not write. Each gets a defined errno or message; the daemon never
//! panics or hangs, the branch keeps only what was accepted, and the mount keeps serving.

use crate::mount::harness::Mount;
use serde_json::json;

const DOC: &str = r#"{"name": "Joe", "age": 41, "v": [0, 1, 2]}"#;
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const EROFS: i32 = 30;
const ENAMETOOLONG: i32 = 36;

/// The daemon is alive, serves, and the repository is sound.
fn still_fine(m: &Mount) {
    assert_eq!(m.cat("name"), "\"Joe\"\n");
    m.fsck();
    let log = m.log();
    assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
}

#[test]
fn bad_names_get_defined_errnos() {
    let m = Mount::new(DOC);
    let head = m.head();
    let cases: &[(&str, i32)] = &[
        // The kernel refuses these before they reach valfs.
        ("open('a' * 256, 'w')", ENAMETOOLONG),
        ("open('', 'w')", ENOENT),
        ("os.mkdir('.')", EEXIST),
        ("os.mkdir('..')", EEXIST),
        // Not UTF-8: never a key.
        ("open(b'\\xff\\xfe', 'w')", EINVAL),
        ("os.mkdir(b'a\\xff')", EINVAL),
        ("os.rename('name', b'\\xff')", EINVAL),
        // Reserved names and names that are not the canonical escaping of a key.
        ("open('.valfs', 'w')", EINVAL),
        ("open('.git', 'w')", EINVAL),
        ("open('.GIT', 'w')", EINVAL),
        ("os.mkdir('.history')", EEXIST),
        ("open('.history/x', 'w')", EROFS),
        ("open('%41', 'w')", EINVAL),
        ("open('50%', 'w')", EINVAL),
        ("open('%zz', 'w')", EINVAL),
        // Vectors take indices only, and grow only at their end.
        ("open('v/x', 'w')", EINVAL),
        ("open('v/-1', 'w')", EINVAL),
        ("open('v/9', 'w')", EINVAL),
        ("os.mkdir('v/name')", EINVAL),
        ("os.rename('name', 'v/x')", EINVAL),
    ];
    for (code, want) in cases {
        assert_eq!(m.errno(code), *want, "{code}");
    }
    assert_eq!(m.head(), head, "a refused name made a commit");
    // The escaped spellings of the same keys work.
    for (code, key) in [
        ("open('%', 'w').write('1')", ""),
        ("open('%2E', 'w').write('2')", "."),
        ("open('%2E%2E', 'w').write('3')", ".."),
        ("open('%2Egit', 'w').write('4')", ".git"),
        ("open('a%2Fb', 'w').write('5')", "a/b"),
        ("open('a' * 255, 'w').write('6')", &"a".repeat(255)),
    ] {
        assert_eq!(m.errno(code), 0, "{code}");
        assert!(m.head_value().get(key).is_some(), "{code}: no key {key:?}");
    }
    still_fine(&m);
}

/// Python that writes `data` (a Python bytes expression) to `path` and closes.
fn write(path: &str, data: &str) -> String {
    format!(
        "fd = os.open('{path}', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\nos.write(fd, {data})\nos.close(fd)"
    )
}

#[test]
fn bad_contents_get_defined_errnos() {
    let m = Mount::new(DOC);
    let head = m.head();
    // Not UTF-8: refused at close; nothing committed.
    assert_eq!(m.errno(&write("age", "b'\\xff\\xfe\\n'")), EINVAL);
    assert_eq!(m.errno(&write("new", "b'ok\\x80'")), EINVAL);
    // 100,000 levels of nesting in one file: a clear refusal, no stack overflow.
    let deep = "b'[' * 100000 + b']' * 100000";
    assert_eq!(m.errno(&write("deep", deep)), EINVAL);
    let deep_map = "b'{\"a\":' * 100000 + b'1' + b'}' * 100000";
    assert_eq!(m.errno(&write("deep2", deep_map)), EINVAL);
    assert_eq!(m.head(), head, "a refused content made a commit");
    assert_eq!(m.cat("age"), "41\n");

    // NUL bytes are text like any other: a string holding them.
    assert_eq!(m.errno(&write("nul", "b'a\\x00b\\n'")), 0);
    assert_eq!(m.head_value()["nul"], json!("a\u{0}b"));
    assert_eq!(m.cat("nul"), "\"a\\u0000b\"\n");
    // Deep but within the limit is fine.
    assert_eq!(m.errno(&write("d", "b'[' * 500 + b']' * 500")), 0);
    still_fine(&m);
}

#[test]
fn a_one_gib_write_stops_at_the_file_limit_and_commits_nothing() {
    let m = Mount::new(DOC);
    let head = m.head();
    // 1 GiB in 1 MiB writes: EFBIG once past the limit, and the close refuses the torn file.
    let code = "fd = os.open('big', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n\
                chunk = b'a' * (1 << 20)\n\
                try:\n    for i in range(1024):\n        os.write(fd, chunk)\n\
                finally:\n    os.close(fd)";
    assert_eq!(m.errno(code), EFBIG);
    // A sparse 1 GiB file (truncate) is refused the same way, at once.
    assert_eq!(m.errno("os.truncate('age', 1 << 30)"), EFBIG);
    let fd_trunc = "fd = os.open('name', os.O_WRONLY)\ntry:\n    os.ftruncate(fd, 1 << 30)\nfinally:\n    os.close(fd)";
    assert_eq!(m.errno(fd_trunc), EFBIG);
    assert_eq!(m.head(), head, "nothing was committed");
    assert_eq!(
        m.errno("os.stat('big')"),
        ENOENT,
        "the refused file is gone"
    );
    assert_eq!(m.cat("age"), "41\n");
    // The daemon's memory stayed bounded by the limit, not by what was written.
    let status = std::fs::read_to_string(format!("/proc/{}/status", m.pid())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    eprintln!("daemon peak RSS after a 1 GiB write: {} MiB", hwm_kib >> 10);
    assert!(hwm_kib < 512 << 10, "peak RSS {} MiB", hwm_kib >> 10);
    // A file just under the limit is saved.
    let under = "fd = os.open('big', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n\
                 os.write(fd, b'b' * ((64 << 20) - 1))\nos.close(fd)";
    assert_eq!(m.errno(under), 0);
    assert_eq!(
        m.git(&["cat-file", "-s", "main:big"]).trim(),
        ((64 << 20) + 2).to_string(),
        "the string's text: quotes and a newline"
    );
    still_fine(&m);
}

#[test]
fn a_repository_holding_unexpected_objects_is_read_without_harm() {
    let mut m = Mount::new(DOC);
    m.unmount();
    // Beside the value: a symlink, a submodule, a tree without its kind marker, a blob that
    // is not a scalar's canonical text, and a name that is not a canonical escaping.
    let git_in = |args: &[&str], input: &str| -> String {
        use std::io::Write;
        let mut c = m
            .cmd("git")
            .arg("--git-dir")
            .arg(&m.repo)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let blob = |text: &str| git_in(&["hash-object", "-w", "--stdin"], text);
    let one = blob("1\n");
    let bare = git_in(&["mktree"], &format!("100644 blob {one}\tx\n"));
    let head = m.head();
    let mut root = m.git(&["ls-tree", "main"]);
    root.push_str(&format!("120000 blob {}\tlink\n", blob("/etc/passwd")));
    root.push_str(&format!("160000 commit {head}\tmodule\n"));
    root.push_str(&format!("040000 tree {bare}\tbare\n"));
    root.push_str(&format!("100644 blob {}\tforeign\n", blob("not json")));
    root.push_str(&format!("100644 blob {}\t%41\n", blob("2\n")));
    let tree = git_in(&["mktree"], &root);
    let commit = m.git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit-tree",
        &tree,
        "-p",
        &head,
        "-m",
        "foreign",
    ]);
    m.git(&["update-ref", "refs/heads/main", commit.trim()]);
    m.spawn();

    let ls = m.ls("");
    assert!(
        !ls.contains(&"link".to_owned()),
        "a symlink is never followed: {ls:?}"
    );
    assert!(!ls.contains(&"module".to_owned()), "{ls:?}");
    assert_eq!(m.errno("os.stat('link')"), ENOENT);
    assert_eq!(m.errno("open('link').read()"), ENOENT);
    assert_eq!(
        m.ls("bare"),
        ["x"],
        "a tree without a marker reads as a map"
    );
    assert_eq!(m.cat("bare/x"), "1\n");
    assert_eq!(
        m.cat("foreign"),
        "not json",
        "a foreign blob reads as its bytes"
    );
    // A blob that is not a scalar's text: the CLI names it rather than guess.
    let (st, _, err) = m.valfs(&["export"]);
    assert_ne!(st, 0);
    assert!(
        err.contains("repository is damaged: blob") && err.contains("invalid JSON"),
        "{err}"
    );
    m.sh_ok("rm foreign");
    let (st, _, err) = m.valfs(&["export"]);
    assert_ne!(st, 0);
    assert!(
        err.contains("entry name \"%41\" is not an escaped key"),
        "{err}"
    );
    assert_eq!(m.valfs_ok(&["get", "bare"]).trim(), r#"{"x":1}"#);

    // Saves around them work and keep what valfs does not understand.
    m.sh_ok("echo 5 > age; echo 2 > bare/y");
    assert_eq!(m.valfs_ok(&["get", "age"]).trim(), "5");
    assert_eq!(m.valfs_ok(&["get", "bare"]).trim(), r#"{"x":1,"y":2}"#);
    let after = m.git(&["ls-tree", "main"]);
    assert!(
        after.contains("\tlink\n") && after.contains("\tmodule\n"),
        "{after}"
    );
    still_fine(&m);
}

/// After a new file's save is refused at close, opening the same name again (its dentry still
/// cached) gave ENOENT once RELEASE dropped the unsaved file.
#[test]
fn retrying_a_refused_save_of_a_new_file_works() {
    let m = Mount::new(DOC);
    assert_eq!(m.errno(&write("new", "b'ok\\x80'")), EINVAL);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(m.errno(&write("new", "b'ok'")), 0);
    assert_eq!(m.head_value()["new"], json!("ok"));
}

/// A new file whose save is refused is gone from its folder's listing too, though the kernel
/// cached a listing that showed it while it was open.
#[test]
fn a_refused_new_file_leaves_the_listing() {
    let m = Mount::new(DOC);
    let out = m.sh_ok(
        r#"python3 -c '
import os, time
fd = os.open("new", os.O_WRONLY | os.O_CREAT)
os.write(fd, b"ok\x80")
print("new" in os.listdir("."))
try:
    os.close(fd)
except OSError as e:
    print(e.errno)
for _ in range(40):
    if "new" not in os.listdir("."):
        break
    time.sleep(0.05)
print("new" in os.listdir("."))
'"#,
    );
    assert_eq!(
        out, "True\n22\nFalse\n",
        "listed while open, EINVAL at close, then gone"
    );
}

/// Runs Python as user `nobody` in the mount; returns the errno it got, or 0.
fn errno_as_nobody(m: &Mount, code: &str) -> i32 {
    let script = "import os, sys\ntry:\n    exec(sys.argv[1])\n    print(0)\nexcept OSError as e:\n    print(e.errno)\n";
    let out = m
        .cmd("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            // The system's Python: a per-user install may not be readable by nobody.
            "/usr/bin/python3",
            "-c",
            script,
            code,
        ])
        .current_dir("/")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{code}: {}", String::from_utf8_lossy(&out.stderr)))
}

const EACCES: i32 = 13;

#[test]
fn the_mount_is_private_unless_allow_other_and_then_modes_hold() {
    let m = Mount::new(DOC);
    let stat = format!("os.stat('{}/name')", m.mnt.display());
    assert_eq!(
        errno_as_nobody(&m, &stat),
        EACCES,
        "another user is kept out"
    );
    drop(m);

    let m = Mount::with_args(DOC, &["--allow-other"]);
    let mnt = m.mnt.display();
    assert_eq!(
        errno_as_nobody(&m, &format!("open('{mnt}/name').read()")),
        0
    );
    // default_permissions: the kernel checks modes (files 0644 under the default umask).
    assert_eq!(
        errno_as_nobody(&m, &format!("open('{mnt}/name', 'w').write('x')")),
        EACCES
    );
    m.sh_ok("chmod 666 name");
    assert_eq!(
        errno_as_nobody(&m, &format!("open('{mnt}/name', 'w').write('\"Ann\"')")),
        0,
        "chmod is enforced both ways"
    );
    assert_eq!(m.head_value()["name"], json!("Ann"));
    assert_eq!(
        errno_as_nobody(&m, &format!("os.mkdir('{mnt}/.history/x')")),
        EACCES
    );
    still_fine_name(&m, "\"Ann\"\n");
}

fn still_fine_name(m: &Mount, name: &str) {
    assert_eq!(m.cat("name"), name);
    m.fsck();
}

#[test]
fn symlinks_live_only_in_scratch_names_and_never_become_keys() {
    let m = Mount::new(DOC);
    let head = m.head();
    assert_eq!(m.errno("os.symlink('/etc/passwd', 'link')"), EINVAL);
    assert_eq!(m.errno("os.symlink('../../..', 'up')"), EINVAL);
    assert_eq!(m.errno("os.symlink('/etc/passwd', 'name~')"), 0);
    assert_eq!(m.errno("os.rename('name~', 'age')"), EINVAL);
    assert_eq!(m.errno("os.symlink('/etc', 'v/x~')"), 0);
    assert_eq!(m.errno("os.rename('v/x~', 'v/3')"), EINVAL);
    assert_eq!(m.head(), head, "no symlink reached the value");
    assert_eq!(m.cat("age"), "41\n");
    assert!(
        !m.all_paths_ever()
            .iter()
            .any(|p| p.contains('~') || p.contains(".tmp"))
    );
    m.fsck();
}
