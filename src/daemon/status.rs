//! `valfs status`: the active valfs mounts, with store, branch, head commit and pending state.

use super::DaemonError;
use super::registry::{self, Entry};
use crate::store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prints one block per valfs mount this user runs (from the registry) and per other valfs
/// mount visible here (mounted through mount(8) or by another user). Entries of daemons that
/// died are shown as stale while their mount is left behind, and pruned once it is gone.
pub fn status(out: &mut dyn Write) -> Result<(), DaemonError> {
    let mounts = registry::mounts();
    let mut shown: Vec<PathBuf> = Vec::new();
    for (file, e) in registry::all() {
        let mnt = PathBuf::from(&e.mountpoint);
        let mounted = mounts.iter().any(|m| m.mountpoint == mnt);
        // A zombie counts as dead: it can no longer serve its mount.
        let alive = !crate::sys::dead(e.pid);
        if !mounted && !alive {
            let _ = std::fs::remove_file(&file);
            continue;
        }
        let state = match (alive, mounted) {
            (true, true) => format!("running (pid {})", e.pid),
            (false, _) => stale_state(&mnt, Some(e.pid)),
            (true, false) => format!("starting or stopping (pid {})", e.pid),
        };
        block(out, &mnt, &e.repo, &e.branch, &state, Some(&e))?;
        shown.push(mnt);
    }
    for m in mounts {
        let Some(repo) = m.source.strip_prefix("valfs:") else {
            continue;
        };
        if shown.contains(&m.mountpoint) {
            continue;
        }
        // Not probed: a stat of another user's mount, or of one whose daemon is stuck, could
        // hang this command or keep that mount busy while its owner unmounts it.
        let state: String = "mounted (not registered by this user: mounted through mount(8), a \
             service without this $XDG_RUNTIME_DIR, or another user; `valfs umount` clears \
             it if stale)"
            .into();
        // The branch is known only to the daemon.
        block(out, &m.mountpoint, repo, "", &state, None)?;
        shown.push(m.mountpoint);
    }
    if shown.is_empty() {
        writeln!(out, "no valfs mounts")?;
    }
    Ok(())
}

fn stale_state(mnt: &Path, pid: Option<i32>) -> String {
    let who = match pid {
        Some(p) => format!("its daemon (pid {p}) died"),
        None => "its daemon died".into(),
    };
    format!(
        "stale: {who}; clear it with `valfs umount {}`",
        mnt.display()
    )
}

fn block(
    out: &mut dyn Write,
    mnt: &Path,
    repo: &str,
    branch: &str,
    state: &str,
    entry: Option<&Entry>,
) -> std::io::Result<()> {
    writeln!(out, "{}", mnt.display())?;
    writeln!(out, "  store:   {repo}")?;
    if !branch.is_empty() {
        writeln!(out, "  branch:  {branch}")?;
        writeln!(out, "  head:    {}", head(repo, branch))?;
        writeln!(out, "  scratch: {}", scratch(repo, branch))?;
    }
    if let Some(e) = entry {
        writeln!(out, "  pending: {}", e.pending())?;
    } else {
        writeln!(out, "  pending: unknown")?;
    }
    writeln!(out, "  state:   {state}")
}

/// The branch head as `hash time summary`, read from the repository (not from the daemon).
fn head(repo: &str, branch: &str) -> String {
    let entry = Store::open(Path::new(repo), branch)
        .and_then(|s| s.log(&crate::value::Path::root(), Some(1)));
    match entry {
        Ok(log) => match log.first() {
            Some(e) => {
                let (y, mo, d, h, mi, s) = crate::value::civil_from_unix(e.time);
                format!(
                    "{} {y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z {}",
                    &e.commit.to_string()[..12],
                    e.summary
                )
            }
            None => "no commits".into(),
        },
        Err(e) => format!("unreadable ({e})"),
    }
}

/// How many scratch files the branch keeps beside the value (editors' temporary files).
fn scratch(repo: &str, branch: &str) -> String {
    match Store::open(Path::new(repo), branch) {
        Ok(store) => match crate::fs::scratch::Files::of(&store).count() {
            0 => "none".into(),
            1 => "1 file kept beside the value (never committed)".into(),
            n => format!("{n} files kept beside the value (never committed)"),
        },
        Err(e) => format!("unreadable ({e})"),
    }
}
