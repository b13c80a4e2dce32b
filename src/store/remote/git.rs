//! Running the system `git` on a store: the transport of fetch and push, so that credential
//! helpers, ssh keys and agents, `~/.ssh/config` and proxies behave exactly as they do for git.
//!
//! Every run has a time limit (the process is killed past it), never prompts (a prompt would
//! wait forever under a mount's background sync), and its failure becomes one line.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a finished git run printed.
#[derive(Debug)]
pub(super) struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Git's complaint on one line (see [`one_line`]), or its exit status when it said nothing.
    pub fn complaint(&self) -> String {
        let line = one_line(&self.stderr);
        if line.is_empty() {
            format!("git failed ({})", self.status)
        } else {
            line
        }
    }
}

/// Why a git run did not finish.
#[derive(Debug)]
pub(super) enum Failed {
    /// The executable could not be started.
    Spawn(std::io::Error),
    /// It ran past its time limit and was killed.
    Timeout(Duration),
}

/// Runs `git --git-dir REPO ARGS...` with no prompts of git's own and the C locale (its
/// messages are read), killing it after `limit`. Standard input is empty.
pub(super) fn run<S: AsRef<OsStr>>(
    repo: &Path,
    args: &[S],
    limit: Option<Duration>,
) -> Result<Ran, Failed> {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Without a terminal (a mount's daemon, cron), git and its helpers (ssh,
    // git-remote-https) get a process group of their own, so that a timeout stops them all. On
    // a terminal they stay in the foreground group: ssh can ask there (a new host's key, a
    // passphrase) and Ctrl-C stops them; a timeout then stops git, and its helpers end when
    // their pipes close.
    let own_group = std::fs::File::open("/dev/tty").is_err();
    if own_group {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(Failed::Spawn)?;
    let (tx, rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(pipe) = child.stdout.take() {
        readers += reader(pipe, 0, tx.clone());
    }
    if let Some(pipe) = child.stderr.take() {
        readers += reader(pipe, 1, tx);
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(Failed::Spawn(e)),
        }
        if let Some(limit) = limit
            && start.elapsed() >= limit
        {
            if own_group {
                crate::sys::kill_group(child.id());
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failed::Timeout(limit));
        }
        std::thread::sleep(pause);
        // Short pauses: a push that ends is noticed within 5 ms, not 50.
        pause = (pause * 2).min(Duration::from_millis(5));
    };
    // A helper git left behind (an ssh connection kept open) may hold the pipes: what was read
    // once git exited, and shortly after, is enough.
    let mut texts = [String::new(), String::new()];
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, text)) => texts[i] = text,
            Err(_) => break,
        }
    }
    let [stdout, stderr] = texts;
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end on a thread of its own and sends the text, tagged `i`; how many
/// threads it started (0 when none could be: that text stays empty).
fn reader(
    mut pipe: impl Read + Send + 'static,
    i: usize,
    tx: mpsc::Sender<(usize, String)>,
) -> usize {
    let started = std::thread::Builder::new()
        .name("git-output".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send((i, String::from_utf8_lossy(&bytes).into_owned()));
        });
    usize::from(started.is_ok())
}

/// Git's stderr as one line: its messages without the `fatal: `/`error: ` prefixes, hints,
/// blank lines and the advice every transport failure carries, joined by `; ` (by a space
/// after a line ending in `:`), at most 400 characters.
pub(super) fn one_line(stderr: &str) -> String {
    const MAX: usize = 400;
    let mut parts: Vec<&str> = Vec::new();
    for line in stderr.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("hint:") {
            continue;
        }
        let line = ["fatal: ", "error: ", "remote: "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .unwrap_or(line)
            .trim();
        if !line.is_empty() && !parts.contains(&line) {
            parts.push(line);
        }
    }
    // The advice git adds to every failure of a transport says nothing the line before did not.
    const BOILERPLATE: [&str; 3] = [
        "Could not read from remote repository.",
        "Please make sure you have the correct access rights",
        "and the repository exists.",
    ];
    if parts.iter().any(|p| !BOILERPLATE.contains(p)) {
        parts.retain(|p| !BOILERPLATE.contains(p));
    }
    // A message git wrapped after a colon continues on its next line.
    let mut text = String::new();
    for part in parts {
        if !text.is_empty() {
            text.push_str(if text.ends_with(':') { " " } else { "; " });
        }
        text.push_str(part);
    }
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Whether a remote URL names a local path (git's rule: no `://`, and no `:` before the first
/// `/`, which would make it `host:path` for ssh).
pub(super) fn is_local(url: &str) -> bool {
    if url.contains("://") {
        return false;
    }
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// A remote URL as it is kept: a relative local path made absolute (git would read it relative
/// to wherever the next command runs), anything else as given.
pub(super) fn kept_url(url: &str) -> std::io::Result<String> {
    if is_local(url) && !url.starts_with('/') {
        let path = std::fs::canonicalize(url).or_else(|_| std::path::absolute(url))?;
        Ok(path.to_string_lossy().into_owned())
    } else {
        Ok(url.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_complaints_become_one_line() {
        let stderr = "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: \
                      errno=Connection refused\n\n";
        assert_eq!(
            one_line(stderr),
            "unable to connect to 127.0.0.1: 127.0.0.1[0: 127.0.0.1]: errno=Connection refused"
        );
        let stderr = "error: failed to push some refs to 'x'\nhint: Updates were rejected\n\
                      hint: pull first\n";
        assert_eq!(one_line(stderr), "failed to push some refs to 'x'");
        let stderr = "ssh: connect to host h port 22: Connection refused\r\nfatal: Could not \
                      read from remote repository.\n\nPlease make sure you have the correct access \
                      rights\nand the repository exists.\n";
        assert_eq!(
            one_line(stderr),
            "ssh: connect to host h port 22: Connection refused"
        );
        assert_eq!(one_line(""), "");
        let long = "é".repeat(500);
        assert!(one_line(&long).chars().count() <= 401);
    }

    #[test]
    fn local_paths_are_told_from_urls() {
        for url in ["/srv/x.git", "x.git", "../x", "./a:b", "file:x"] {
            assert_eq!(is_local(url), url != "file:x", "{url}");
        }
        for url in [
            "git://h/x",
            "ssh://h/x",
            "https://h/x",
            "host:x.git",
            "me@host:x",
        ] {
            assert!(!is_local(url), "{url}");
        }
        assert_eq!(kept_url("/srv/x.git").unwrap(), "/srv/x.git");
        assert_eq!(kept_url("host:x").unwrap(), "host:x");
        assert!(kept_url("x.git").unwrap().starts_with('/'));
    }
}
