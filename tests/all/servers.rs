//! Real git servers on loopback for the sync tests, each on a free port and stopped when
//! dropped (also when a test fails): `git daemon` (git://), `git http-backend` behind lighttpd
//! (smart http, push enabled) and sshd with a generated host key and user key (ssh://).
//! scripts/test installs lighttpd and openssh-server.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server process listening on `port`; killed and reaped on drop.
pub struct Server {
    what: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts `program ARGS` and waits until it accepts connections on `port`; its stderr goes
    /// to `log`, shown if it does not come up.
    fn start(
        what: &'static str,
        program: PathBuf,
        args: Vec<OsString>,
        port: u16,
        log: PathBuf,
    ) -> Server {
        let mut server = Server {
            what,
            program,
            args,
            port,
            log,
            child: None,
        };
        server.restart();
        server
    }

    /// Starts it (again, on the same port) after [`Server::stop`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.what);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} ({}): {e}", self.what, self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().unwrap());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                self.stop();
                panic!(
                    "{} did not come up on port {} ({exited:?}):\n{log}",
                    self.what, self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it; nothing listens on its port afterwards.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where git keeps its helper programs (git-daemon, git-http-backend).
fn exec_path() -> PathBuf {
    let out = Command::new("git").arg("--exec-path").output().unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A program from `PATH`, or from the sbin directories (sshd) that a user's `PATH` may lack.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (scripts/test installs it)"))
}

/// A bare repository `NAME` in `base`, on branch `main`, empty.
pub fn bare(base: &Path, name: &str) -> PathBuf {
    let path = base.join(name);
    let out = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    path
}

/// `git daemon` serving (and accepting pushes to) every repository under a directory.
pub struct GitDaemon {
    pub server: Server,
}

impl GitDaemon {
    pub fn start(base: &Path, logs: &Path) -> GitDaemon {
        let port = free_port();
        let args: Vec<OsString> = vec![
            "--export-all".into(),
            "--enable=receive-pack".into(),
            "--reuseaddr".into(),
            "--informative-errors".into(),
            "--listen=127.0.0.1".into(),
            format!("--port={port}").into(),
            format!("--base-path={}", base.display()).into(),
            base.into(),
        ];
        let daemon = exec_path().join("git-daemon");
        GitDaemon {
            server: Server::start(
                "git daemon",
                daemon,
                args,
                port,
                logs.join("git-daemon.log"),
            ),
        }
    }

    /// The URL of the repository `name` under the base directory.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.server.port)
    }
}

/// lighttpd running `git http-backend` for every repository under a directory: smart http,
/// pushes allowed (the backend takes pushes from an authenticated user; REMOTE_USER is set).
pub struct Http {
    pub server: Server,
}

impl Http {
    pub fn start(base: &Path, logs: &Path) -> Http {
        let port = free_port();
        let backend = exec_path().join("git-http-backend");
        let conf = logs.join("lighttpd.conf");
        let text = format!(
            r#"server.document-root = "{base}"
server.port = {port}
server.bind = "127.0.0.1"
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.errorlog = "{logs}/lighttpd-error.log"
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "",
                            "REMOTE_USER" => "valfs-test")
}}
"#,
            base = base.display(),
            logs = logs.display(),
            backend = backend.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let args = vec!["-D".into(), "-f".into(), conf.into()];
        Http {
            server: Server::start(
                "lighttpd",
                program("lighttpd"),
                args,
                port,
                logs.join("lighttpd.log"),
            ),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.server.port)
    }
}

/// sshd with a host key and one user key made for it, letting that key in as the user running
/// the tests; git reaches it through `GIT_SSH_COMMAND` ([`Ssh::command`]).
pub struct Ssh {
    pub server: Server,
    user: String,
    key: PathBuf,
}

impl Ssh {
    pub fn start(logs: &Path) -> Ssh {
        let keygen = |file: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        };
        let (host_key, key) = (logs.join("host_key"), logs.join("user_key"));
        keygen(&host_key);
        keygen(&key);
        let authorized = logs.join("authorized_keys");
        std::fs::copy(logs.join("user_key.pub"), &authorized).unwrap();
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let conf = logs.join("sshd_config");
        let text = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
             PidFile {logs}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host = host_key.display(),
            auth = authorized.display(),
            logs = logs.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let args = vec!["-D".into(), "-e".into(), "-f".into(), conf.into()];
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        Ssh {
            server: Server::start("sshd", program("sshd"), args, port, logs.join("sshd.log")),
            user,
            key,
        }
    }

    /// The ssh:// URL of a repository at an absolute path.
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.server.port,
            path.display()
        )
    }

    /// `GIT_SSH_COMMAND`: this key only, no config, no prompts, the host key taken as is.
    pub fn command(&self) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes \
             -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.key.display()
        )
    }
}
