//! The service side, as a user meets it: scripts/install and scripts/uninstall, the systemd
//! unit (verified by systemd-analyze, its exact Exec lines run the way systemd runs them),
//! mount(8) and fstab through fuse3's mount.fuse3, `valfs status`, and how
//! `valfs mount --daemon` fails.
//!
//! Needs root, /dev/fuse, fuse3 (mount.fuse3), util-linux (mount, unshare, findmnt) and
//! systemd-analyze. Tests that must not touch the machine's /usr/local/bin or /dev run their
//! part in a private mount namespace (`unshare -m`).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const VALFS: &str = env!("CARGO_BIN_EXE_valfs");
const SOURCE: &str = env!("CARGO_MANIFEST_DIR");

/// A private HOME and runtime dir under /var/tmp. Dropping it lazily unmounts whatever is
/// still mounted under it, which ends those daemons.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let base = if Path::new("/var/tmp").is_dir() {
            PathBuf::from("/var/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("valfs-svc-")
            .tempdir_in(base)
            .unwrap();
        let sb = Sandbox { dir };
        std::fs::create_dir(sb.home()).unwrap();
        std::fs::create_dir(sb.run()).unwrap();
        std::fs::set_permissions(sb.run(), std::fs::Permissions::from_mode(0o700)).unwrap();
        sb
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    fn run(&self) -> PathBuf {
        self.root().join("run")
    }

    fn store(&self, name: &str) -> PathBuf {
        self.home().join(format!(".local/share/valfs/{name}.git"))
    }

    /// A command with only this sandbox's environment: no bus or manager of the real user can
    /// be reached, and nothing of the caller's valfs settings leaks in. XDG_DATA_HOME is
    /// spelled out (it is the default) because mount(8) drops HOME but keeps it.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.run())
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("VALFS", VALFS)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(self.root())
            .stdin(Stdio::null());
        c
    }

    fn valfs(&self, args: &[&str]) -> Output {
        self.cmd(VALFS).args(args).output().unwrap()
    }

    fn valfs_ok(&self, args: &[&str]) -> String {
        let out = self.valfs(args);
        assert!(out.status.success(), "valfs {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a bash script in a private mount namespace; returns its output (it must succeed).
    fn private_script(&self, script: &str) -> String {
        let out = self
            .cmd("unshare")
            .args(["-m", "--propagation", "private", "bash", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "script failed:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every mount under the sandbox.
    fn mounts(&self) -> Vec<PathBuf> {
        let root = self.root();
        mountpoints()
            .into_iter()
            .filter(|m| m.starts_with(&root))
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for m in self.mounts().iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The mount points this process sees (live or stale).
fn mountpoints() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

fn is_mounted(path: &Path) -> bool {
    mountpoints().iter().any(|m| m == path)
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Waits for a child; kills it by its PID when it is still running after `limit`.
fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn commits(repo: &Path) -> usize {
    git(repo, &["rev-list", "--count", "main"])
        .trim()
        .parse()
        .unwrap()
}

// ----- the systemd unit -----

/// A unit file's `Key=value` lines, in order.
struct Unit {
    entries: Vec<(String, String)>,
}

impl Unit {
    fn load(path: &Path) -> Unit {
        let text = std::fs::read_to_string(path).unwrap();
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
            .map(|l| {
                assert!(
                    !l.ends_with('\\'),
                    "continuation lines are not handled: {l}"
                );
                let (k, v) = l.split_once('=').unwrap();
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Unit { entries }
    }

    fn values(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn value(&self, key: &str) -> &str {
        let v = self.values(key);
        assert_eq!(v.len(), 1, "{key}");
        v[0]
    }
}

/// A template instance run the way the user manager runs it.
struct Service<'a> {
    sb: &'a Sandbox,
    unit: Unit,
    instance: String,
    notify: UnixDatagram,
    notify_path: PathBuf,
    main: Option<Child>,
    log: PathBuf,
}

impl<'a> Service<'a> {
    fn new(sb: &'a Sandbox, unit_file: &Path, instance: &str) -> Service<'a> {
        let notify_path = sb.run().join(format!("notify-{instance}"));
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Service {
            sb,
            unit: Unit::load(unit_file),
            instance: instance.to_owned(),
            notify,
            notify_path,
            main: None,
            log: sb.root().join(format!("{instance}.journal")),
        }
    }

    /// %i, %h, %E and %% as the user manager expands them; any other specifier fails the test.
    fn specifiers(&self, s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('i') => out.push_str(&self.instance),
                Some('h') => out.push_str(self.sb.home().to_str().unwrap()),
                Some('E') => out.push_str(self.sb.home().join(".config").to_str().unwrap()),
                Some('%') => out.push('%'),
                other => panic!("specifier %{other:?} in {s:?} is not expanded by this test"),
            }
        }
        out
    }

    /// Environment=, then EnvironmentFile= (which overrides it), as systemd reads them.
    fn environment(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for v in self.unit.values("Environment") {
            let v = self.specifiers(v);
            let (k, val) = v.split_once('=').unwrap();
            env.insert(k.to_owned(), val.to_owned());
        }
        for f in self.unit.values("EnvironmentFile") {
            let (optional, f) = match f.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, f),
            };
            let path = self.specifiers(f);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(_) if optional => continue,
                Err(e) => panic!("{path}: {e}"),
            };
            for l in text.lines().map(str::trim) {
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let (k, val) = l.split_once('=').unwrap();
                env.insert(k.to_owned(), val.trim_matches('"').to_owned());
            }
        }
        env
    }

    /// The command lines of an Exec key: specifiers expanded, `${X}` as one word, `$X` split
    /// into words (none when empty). Returns (ignore failure, argv) per line.
    fn exec(&self, key: &str) -> Vec<(bool, Vec<String>)> {
        let env = self.environment();
        self.unit
            .values(key)
            .into_iter()
            .map(|line| {
                assert!(
                    !line.contains(['"', '\'']),
                    "quoting is not handled: {line}"
                );
                let line = self.specifiers(line);
                let mut argv = Vec::new();
                for w in line.split_whitespace() {
                    if let Some(name) = w.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                        argv.push(env.get(name).cloned().unwrap_or_default());
                    } else if let Some(name) = w.strip_prefix('$') {
                        let v = env.get(name).cloned().unwrap_or_default();
                        argv.extend(v.split_whitespace().map(str::to_owned));
                    } else {
                        assert!(!w.contains('$'), "{w}");
                        argv.push(w.to_owned());
                    }
                }
                let ignore = argv[0].starts_with('-');
                argv[0] = argv[0].trim_start_matches('-').to_owned();
                assert!(
                    !argv[0].starts_with(['@', '+', '!', ':']),
                    "prefix not handled: {line}"
                );
                (ignore, argv)
            })
            .collect()
    }

    fn command(&self, argv: &[String]) -> Command {
        let mut c = self.sb.cmd(&argv[0]);
        c.args(&argv[1..]).envs(self.environment());
        c
    }

    fn mountpoint(&self) -> PathBuf {
        PathBuf::from(&self.environment()["VALFS_MOUNTPOINT"])
    }

    /// ExecStartPre lines, then ExecStart with NOTIFY_SOCKET and JOURNAL_STREAM set; returns
    /// once the daemon sent READY=1.
    fn start(&mut self) {
        assert_eq!(self.unit.value("Type"), "notify");
        for (ignore, argv) in self.exec("ExecStartPre") {
            let out = self.command(&argv).output().unwrap();
            assert!(ignore || out.status.success(), "{argv:?}: {}", text(&out));
        }
        let mut start = self.exec("ExecStart");
        assert_eq!(start.len(), 1);
        let (_, argv) = start.remove(0);
        let log = std::fs::File::create(&self.log).unwrap();
        let child = self
            .command(&argv)
            .env("NOTIFY_SOCKET", &self.notify_path)
            .env("JOURNAL_STREAM", "8:12345")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.main = Some(child);
        let msg = self.receive();
        assert_eq!(msg, "READY=1", "log:\n{}", self.journal());
    }

    fn receive(&self) -> String {
        let mut buf = [0u8; 4096];
        match self.notify.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!("no notification ({e}); log:\n{}", self.journal()),
        }
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What a failed mount check needs: the mountinfo lines under the sandbox, whether the
    /// main process still runs, and the journal.
    fn explain(&mut self) -> String {
        let root = self.sb.root();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let lines: Vec<&str> = info
            .lines()
            .filter(|l| l.contains(root.to_str().unwrap()))
            .collect();
        let main = match self.main.as_mut().map(|c| (c.id(), c.try_wait())) {
            Some((pid, Ok(None))) => format!("running (pid {pid})"),
            Some((pid, Ok(Some(st)))) => format!("exited (pid {pid}): {st}"),
            Some((pid, Err(e))) => format!("pid {pid}: {e}"),
            None => "not started".to_owned(),
        };
        format!(
            "mountinfo under {}:\n{}\nmain process: {main}\njournal:\n{}",
            root.display(),
            lines.join("\n"),
            self.journal()
        )
    }

    fn pid(&self) -> u32 {
        self.main.as_ref().unwrap().id()
    }

    /// ExecStop lines; the main process must exit 0 on its own. It is reaped while ExecStop
    /// runs, as systemd does: `valfs umount` waits until the daemon's PID is gone, and an
    /// exited child stays a zombie until its parent waits for it.
    fn stop(&mut self) {
        let mut main = self.main.take().unwrap();
        let mut status = None;
        for (ignore, argv) in self.exec("ExecStop") {
            let mut stop = self
                .command(&argv)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let start = Instant::now();
            while stop.try_wait().unwrap().is_none() {
                if status.is_none() {
                    status = main.try_wait().unwrap();
                }
                assert!(start.elapsed() < Duration::from_secs(60), "{argv:?} hangs");
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = stop.wait_with_output().unwrap();
            assert!(ignore || out.status.success(), "{argv:?}: {}", text(&out));
        }
        let st = match status {
            Some(st) => st,
            None => wait_child(&mut main, Duration::from_secs(20))
                .expect("the daemon did not exit within 20 s of ExecStop"),
        };
        assert!(st.success(), "{st}\n{}", self.journal());
        assert_eq!(self.receive(), "STOPPING=1");
    }

    /// SIGKILL to the main process (by its PID), as a crash would.
    fn kill9(&mut self) {
        let mut main = self.main.take().unwrap();
        main.kill().unwrap();
        main.wait().unwrap();
    }
}

impl Drop for Service<'_> {
    fn drop(&mut self) {
        if let Some(mut main) = self.main.take() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.mountpoint())
                .status();
            wait_child(&mut main, Duration::from_secs(10));
        }
    }
}

/// `scripts/install --bin VALFS` (never a release build) with the sandbox's environment.
fn install(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb
        .cmd(Path::new(SOURCE).join("scripts/install"))
        .args(["--bin", VALFS])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "install {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn uninstall(sb: &Sandbox, args: &[&str]) {
    let out = sb
        .cmd(Path::new(SOURCE).join("scripts/uninstall"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "uninstall {args:?}: {}", text(&out));
}

/// `systemd-analyze --user verify` must pass and print nothing (no warnings either).
fn verify(sb: &Sandbox, home: &Path, unit: &Path, in_namespace: Option<&str>) {
    let mut c = match in_namespace {
        Some(script) => {
            let mut c = sb.cmd("unshare");
            c.args(["-m", "--propagation", "private", "bash", "-c"])
                .arg(format!(
                    "{script}\nexec systemd-analyze --user verify \"$UNIT\""
                ));
            c
        }
        None => {
            let mut c = sb.cmd("systemd-analyze");
            c.args(["--user", "verify"]).arg(unit);
            c
        }
    };
    let out = c.env("HOME", home).env("UNIT", unit).output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify {}: {}",
        unit.display(),
        text(&out)
    );
}

#[test]
fn the_unit_passes_systemd_analyze_verify_as_installed() {
    let sb = Sandbox::new();
    // For a user: the unit names %h/.local/bin/valfs.
    install(&sb, &[]);
    let unit = sb.home().join(".config/systemd/user/valfs@.service");
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        std::fs::read_to_string(Path::new(SOURCE).join("systemd/valfs@.service")).unwrap()
    );
    verify(&sb, &sb.home(), &unit, None);
    uninstall(&sb, &[]);

    // For every user: the unit names /usr/local/bin/valfs, which the staged tree provides in a
    // private mount namespace.
    let stage = sb.root().join("stage");
    install(&sb, &["--system", "--destdir", stage.to_str().unwrap()]);
    let unit = stage.join("usr/local/lib/systemd/user/valfs@.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/valfs --store %i mount"));
    assert!(!text.contains("%h/.local/bin"));
    let bind = format!(
        "set -e; mount --bind {} /usr/local/bin",
        stage.join("usr/local/bin").display()
    );
    verify(&sb, &sb.home(), &unit, Some(&bind));
}

#[test]
fn the_units_exec_lines_start_ready_and_stop_clean() {
    let sb = Sandbox::new();
    install(&sb, &[]);
    let unit_file = sb.home().join(".config/systemd/user/valfs@.service");

    // valfs@notes: the default mountpoint, the store created on first use.
    let mut svc = Service::new(&sb, &unit_file, "notes");
    let mnt = svc.mountpoint();
    assert_eq!(mnt, sb.home().join("valfs/notes"));
    svc.start();
    // Usable as soon as READY=1 came: no polling.
    assert!(
        is_mounted(&mnt),
        "READY=1 came but {} is not mounted; {}",
        mnt.display(),
        svc.explain()
    );
    std::fs::write(mnt.join("title"), "Notes\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(mnt.join("title")).unwrap(),
        "\"Notes\"\n",
        "{}",
        svc.explain()
    );
    let store = sb.store("notes");
    assert!(git(&store, &["log", "-1", "--format=%s"]).contains("title"));
    svc.stop();
    assert!(!is_mounted(&mnt));
    // The journal adds timestamps: the daemon's lines have none.
    let journal = svc.journal();
    assert!(journal.contains("mounted"), "{journal}");
    for line in journal.lines() {
        assert!(
            line.starts_with("[INFO ") || line.starts_with("[WARN ") || line.starts_with("[ERROR "),
            "a log line with a timestamp or no level: {line:?}"
        );
    }
    drop(svc);

    // valfs@work: mountpoint and options from the instance's environment file; ExecStop
    // commits what is pending.
    let elsewhere = sb.root().join("elsewhere/work");
    std::fs::create_dir_all(sb.home().join(".config/valfs")).unwrap();
    std::fs::write(
        sb.home().join(".config/valfs/work.env"),
        format!(
            "VALFS_MOUNTPOINT={}\nVALFS_OPTIONS=-o coalesce=60000\n",
            elsewhere.display()
        ),
    )
    .unwrap();
    let mut svc = Service::new(&sb, &unit_file, "work");
    assert_eq!(svc.mountpoint(), elsewhere);
    svc.start();
    let store = sb.store("work");
    let before = commits(&store);
    std::fs::write(elsewhere.join("todo"), "ship it\n").unwrap();
    assert_eq!(commits(&store), before, "coalesced: still pending");
    svc.stop();
    assert_eq!(
        commits(&store),
        before + 1,
        "ExecStop committed the pending edit"
    );
    assert_eq!(git(&store, &["show", "main:todo"]), "\"ship it\"\n");
    assert!(!is_mounted(&elsewhere));

    // A crash leaves a dead mount; the next start (Restart=on-failure) clears it and mounts.
    assert_eq!(svc.unit.value("Restart"), "on-failure");
    svc.start();
    svc.kill9();
    assert!(is_mounted(&elsewhere), "kill -9 leaves the mount behind");
    assert!(
        std::fs::metadata(&elsewhere).is_err(),
        "a dead mount cannot be read"
    );
    svc.start();
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("todo")).unwrap(),
        "\"ship it\"\n"
    );
    let pid = svc.pid();
    svc.stop();
    assert!(!is_mounted(&elsewhere));
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

/// Every path under `root` with its type, mode, owner and content (or link target).
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let what = if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_owned()
        } else if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else {
            let hash = std::fs::read(&p)
                .unwrap()
                .iter()
                .fold(0xcbf29ce484222325u64, |h, &b| {
                    (h ^ b as u64).wrapping_mul(0x100000001b3)
                });
            format!("file {hash:x}")
        };
        out.push(format!("{rel} {what} {:o} {}", m.mode(), m.uid()));
    }
    out.sort();
    out
}

#[test]
fn install_twice_then_uninstall_leaves_the_tree_as_before() {
    let sb = Sandbox::new();
    // Something of the user's own in the directories install shares.
    std::fs::create_dir_all(sb.home().join(".local/bin")).unwrap();
    std::fs::write(sb.home().join(".local/bin/other-tool"), "#!/bin/sh\n").unwrap();
    std::fs::create_dir_all(sb.home().join(".config")).unwrap();
    let before = snapshot(&sb.root());

    let said = install(&sb, &[]);
    assert!(
        said.contains("systemctl --user enable --now valfs@NAME"),
        "{said}"
    );
    let first = snapshot(&sb.root());
    install(&sb, &[]);
    assert_eq!(
        snapshot(&sb.root()),
        first,
        "a second install changes nothing"
    );
    let bin = sb.home().join(".local/bin/valfs");
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(VALFS).unwrap());
    assert_eq!(bin.metadata().unwrap().mode() & 0o777, 0o755);
    assert!(
        sb.home()
            .join(".config/systemd/user/valfs@.service")
            .is_file()
    );
    // `systemctl --user enable valfs@notes` makes a link; uninstall removes it too.
    let wants = sb.home().join(".config/systemd/user/default.target.wants");
    std::fs::create_dir(&wants).unwrap();
    std::os::unix::fs::symlink(
        sb.home().join(".config/systemd/user/valfs@.service"),
        wants.join("valfs@notes.service"),
    )
    .unwrap();
    uninstall(&sb, &[]);
    assert_eq!(snapshot(&sb.root()), before);

    // For every user, staged under a directory.
    let stage = sb.root().join("stage");
    let d = stage.to_str().unwrap();
    install(&sb, &["--system", "--destdir", d]);
    install(&sb, &["--system", "--destdir", d]);
    for f in [
        "usr/local/bin/valfs",
        "usr/local/lib/systemd/user/valfs@.service",
    ] {
        assert!(stage.join(f).is_file(), "{f}");
    }
    uninstall(&sb, &["--system", "--destdir", d]);
    assert_eq!(snapshot(&sb.root()), before);
}

// ----- mount(8) and fstab -----

#[test]
fn mount_t_fuse_valfs_and_an_fstab_line_work_through_mount_fuse3() {
    let sb = Sandbox::new();
    let bin = sb.root().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(VALFS, bin.join("valfs")).unwrap();
    let repo = sb.root().join("shared.git");
    sb.valfs_ok(&["--repo", repo.to_str().unwrap(), "init"]);
    sb.valfs_ok(&["--repo", repo.to_str().unwrap(), "set", "greeting", "hello"]);
    git(&repo, &["branch", "other", "main"]);
    sb.valfs_ok(&[
        "--repo",
        repo.to_str().unwrap(),
        "--branch",
        "other",
        "set",
        "greeting",
        "from other",
    ]);
    for d in ["a", "b", "c"] {
        std::fs::create_dir(sb.root().join(d)).unwrap();
    }
    std::fs::write(
        sb.root().join("fstab"),
        format!(
            "# a scratch fstab\n{} {} fuse.valfs noauto,user,branch=other,uid=1234 0 0\n",
            repo.display(),
            sb.root().join("c").display()
        ),
    )
    .unwrap();
    // mount(8) runs mount.fuse3 with its own PATH (where /usr/local/bin is): the installed
    // binary is put there in this namespace only.
    let script = format!(
        r#"set -euo pipefail
cleanup() {{ for m in a b c; do mountpoint -q {root}/$m && umount -l {root}/$m; done; return 0; }}
trap cleanup EXIT
mount --bind {bin} /usr/local/bin
cd {root}

# A store by name, created on first use; noauto and user are fstab's business.
mount -t fuse.valfs notes {root}/a -o noauto,user,coalesce=60000
findmnt -n -o FSTYPE,SOURCE {root}/a
echo '{{"x": 1}}' > a/doc
cat a/doc/x
for i in $(seq 100); do grep -q pending.*1.edit <(/usr/local/bin/valfs status) && break; sleep 0.1; done
/usr/local/bin/valfs status
umount {root}/a
# umount(8) returns once the kernel let go; the daemon then commits what is pending and exits
# (`valfs umount` is the command that waits for that).
last() {{ git --git-dir "$XDG_DATA_HOME/valfs/notes.git" log -1 --format=%s; }}
for i in $(seq 100); do [ "$(last)" = "write doc" ] && break; sleep 0.1; done
echo "after umount: $(last)"

# A repository path, read-only, allow_other.
mount -t fuse.valfs {repo} {root}/b -o ro,allow_other
cat b/greeting
if echo bye > b/greeting 2>/dev/null; then echo "wrote to a ro mount"; exit 1; fi
findmnt -n -o OPTIONS {root}/b
umount {root}/b

# The fstab line: another branch, our own uid= option.
mount -T {root}/fstab {root}/c
cat c/greeting
stat -c 'owner %u' c/greeting
umount {root}/c
echo done
"#,
        root = sb.root().display(),
        bin = bin.display(),
        repo = repo.display(),
    );
    let out = sb.private_script(&script);
    let a_store = sb.store("notes");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("fuse.valfs valfs:{}", a_store.display()),
        "{out}"
    );
    assert_eq!(lines[1], "1", "{out}");
    assert!(
        out.contains(&format!(
            "{}\n  store:   {}",
            sb.root().join("a").display(),
            a_store.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("pending: 1 edit waiting to be committed"),
        "{out}"
    );
    assert!(
        out.contains("after umount: write doc"),
        "umount committed: {out}"
    );
    assert!(out.contains("\"hello\"\n"), "{out}");
    assert!(out.contains("ro,"), "{out}");
    assert!(out.contains("\"from other\"\nowner 1234\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    assert_eq!(git(&a_store, &["show", "main:doc/x"]), "1\n");
    assert!(sb.mounts().is_empty());
}

// ----- valfs status, and how --daemon fails -----

fn status_block(status: &str, mnt: &Path) -> String {
    let head = format!("{}\n", mnt.display());
    let start = status
        .find(&head)
        .unwrap_or_else(|| panic!("{} not in:\n{status}", mnt.display()));
    status[start..]
        .lines()
        .take_while({
            let mut first = true;
            move |l| std::mem::take(&mut first) || l.starts_with("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn status_shows_store_branch_head_and_pending_then_a_stale_mount_until_umount() {
    let sb = Sandbox::new();
    let mnt = sb.root().join("mnt");
    let m = mnt.to_str().unwrap();
    sb.valfs_ok(&[
        "--store",
        "s",
        "mount",
        "--daemon",
        m,
        "-o",
        "coalesce=60000",
    ]);
    let store = sb.store("s");
    std::fs::write(mnt.join("k"), "1\n").unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        sb.valfs_ok(&["status"]).contains("1 edit waiting")
    }));
    let block = status_block(&sb.valfs_ok(&["status"]), &mnt);
    let head = git(&store, &["rev-parse", "main"]);
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(
        lines[1],
        format!("  store:   {}", store.display()),
        "{block}"
    );
    assert_eq!(lines[2], "  branch:  main", "{block}");
    assert!(
        lines[3].starts_with(&format!("  head:    {} ", &head[..12])),
        "{block}"
    );
    assert!(lines[3].ends_with(" init"), "{block}");
    assert_eq!(
        lines[4], "  pending: 1 edit waiting to be committed",
        "{block}"
    );
    assert!(lines[5].starts_with("  state:   running (pid "), "{block}");

    // kill -9: the mount is stale; status says so and how to clear it; valfs umount does.
    let pid: i32 = lines[5]
        .trim_start_matches("  state:   running (pid ")
        .trim_end_matches(')')
        .parse()
        .unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(wait_for(Duration::from_secs(10), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    assert!(is_mounted(&mnt));
    let block = status_block(&sb.valfs_ok(&["status"]), &mnt);
    assert!(
        block.contains(&format!(
            "state:   stale: its daemon (pid {pid}) died; clear it with `valfs umount {m}`"
        )),
        "{block}"
    );
    // Mounting again explains the same.
    let out = sb.valfs(&["--store", "s", "mount", "--daemon", m]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Transport endpoint is not connected") && err.contains("valfs umount"),
        "{err}"
    );
    sb.valfs_ok(&["umount", m]);
    assert!(!is_mounted(&mnt));
    assert!(!sb.valfs_ok(&["status"]).contains(&format!("{m}\n")));
    // The dead daemon's entry is gone from the registry (only logs stay).
    for e in std::fs::read_dir(sb.run().join("valfs")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(name.ends_with(".log"), "{name} left in the registry");
    }
    // And the mountpoint works again.
    sb.valfs_ok(&["--store", "s", "mount", "--daemon", m]);
    std::fs::write(mnt.join("k"), "2\n").unwrap();
    assert_eq!(git(&store, &["show", "main:k"]), "2\n");
    sb.valfs_ok(&["umount", m]);
}

/// `valfs ARGS` must fail before detaching, with a one-line message containing `needle`, and
/// leave nothing mounted.
fn fails(sb: &Sandbox, args: &[&str], needle: &str) {
    let out = sb.valfs(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "valfs {args:?} succeeded");
    assert!(
        err.starts_with("valfs: ") && err.contains(needle) && err.lines().count() == 1,
        "valfs {args:?}: {err}"
    );
}

#[test]
fn daemon_mount_failures_are_named_before_detaching() {
    let sb = Sandbox::new();
    let mnt = sb.root().join("mnt");
    let m = mnt.to_str().unwrap();
    // Busy: something is mounted there already.
    sb.valfs_ok(&["--store", "s", "mount", "--daemon", m]);
    fails(
        &sb,
        &["--store", "s", "mount", "--daemon", m],
        "already mounted",
    );
    sb.valfs_ok(&["umount", m]);

    // Missing: a mountpoint whose parent does not exist (a missing leaf is created).
    let missing = sb.root().join("no/such/dir");
    fails(
        &sb,
        &[
            "--store",
            "s",
            "mount",
            "--daemon",
            missing.to_str().unwrap(),
        ],
        &format!(
            "{}: cannot create the mountpoint: No such file or directory",
            missing.display()
        ),
    );
    let file = sb.root().join("file");
    std::fs::write(&file, "").unwrap();
    fails(
        &sb,
        &["--store", "s", "mount", "--daemon", file.to_str().unwrap()],
        "file: not a directory",
    );

    // A bad repository.
    let nothing = sb.root().join("nothing.git");
    fails(
        &sb,
        &["--repo", nothing.to_str().unwrap(), "mount", "--daemon", m],
        &format!("{}: no valfs repository there", nothing.display()),
    );
    // A bad option, named.
    fails(
        &sb,
        &["--store", "s", "mount", "--daemon", m, "-o", "bogus"],
        "bogus",
    );

    // No /dev/fuse (in a private namespace whose /dev lacks it).
    let script = format!(
        r#"set -u
dev={root}/dev
mkdir -p $dev && mount -t tmpfs tmpfs $dev
for f in null zero random urandom; do touch $dev/$f; mount --bind /dev/$f $dev/$f; done
mount --bind $dev /dev
"$VALFS" --store s mount --daemon {m}
echo "exit $?"
"#,
        root = sb.root().display(),
    );
    let out = sb
        .cmd("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "exit 1\n", "{stderr}");
    assert!(
        stderr.starts_with("valfs: /dev/fuse is missing") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(sb.mounts().is_empty());
}
