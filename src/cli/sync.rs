//! Several machines: `valfs remote`, `clone`, `sync`, `pull` and `push`, each remote's state
//! in `valfs status`, and the conflicts merges leave (`valfs conflicts`, `valfs resolve`). The
//! work is done by [`crate::store::remote`] and [`crate::store::conflicts`].

use super::{Cli, CliError};
use crate::codec::Format;
use crate::store::remote::{self, CloneOptions, Op, Options, RemoteError};
use crate::store::{Conflict, Node, Store, parse_index};
use crate::value::Path;
use clap::{Args, Subcommand};
use std::io::Write;
use std::time::Duration;

/// `valfs remote ...`.
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Add a remote: a path, or an ssh://, https://, git:// or HOST:PATH URL, as for git.
    ///
    /// It is a plain git remote of the store (`remote.NAME.url` in its config); a relative
    /// path is kept absolute. Nothing is fetched until `valfs sync` or `valfs pull`.
    Add { name: String, url: String },
    /// Remove a remote, with what was fetched from it and its sync records.
    #[command(visible_alias = "rm")]
    Remove { name: String },
    /// List the remotes: NAME URL, one a line.
    List,
}

/// The arguments of `valfs sync`, `pull` and `push`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The remote (default: every remote of the store, in turn).
    pub remote: Option<String>,
    /// Stop a fetch or push that takes longer than SECONDS (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = remote::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
}

/// The arguments of `valfs clone`.
#[derive(Args, Debug)]
pub struct CloneArgs {
    /// The remote repository: a path, or an ssh://, https://, git:// or HOST:PATH URL.
    pub url: String,
    /// The store's format (default: EDN when the value shows EDN: a list, a set, a keyword
    /// key, a scalar JSON cannot hold; else JSON).
    #[arg(long, value_parser = ["json", "edn"])]
    pub format: Option<String>,
    /// Stop the fetch if it takes longer than SECONDS (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = remote::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
}

/// The arguments of `valfs conflicts`.
#[derive(Args, Debug)]
pub struct ConflictsArgs {
    /// Also print each conflict's kind and the base's, ours and theirs versions.
    #[arg(long, short = 'l')]
    pub long: bool,
}

/// The arguments of `valfs resolve`.
#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// The conflicted paths, as `valfs conflicts` lists them (`/` for the root); an index may
    /// be padded as in the mount (`v/03`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

fn limit(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// `valfs remote add|remove|list`.
pub(super) fn remote(cli: &Cli, cmd: &RemoteCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let store = cli.open()?;
    match cmd {
        RemoteCommand::Add { name, url } => {
            remote::add(&store, name, url)?;
        }
        RemoteCommand::Remove { name } => remote::remove(&store, name)?,
        RemoteCommand::List => {
            for r in remote::list(&store)? {
                writeln!(out, "{} {}", r.name, r.url)?;
            }
        }
    }
    Ok(())
}

/// `valfs sync`, `pull`, `push`: with each remote named (all of them by default), one line of
/// what it did on stdout. The failures of all of them make one line (the error), after the
/// others were done.
pub(super) fn transfer(
    cli: &Cli,
    op: Op,
    args: &SyncArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = cli.open()?;
    let names = match &args.remote {
        Some(name) => vec![name.clone()],
        None => remote::list(&store)?.into_iter().map(|r| r.name).collect(),
    };
    if names.is_empty() {
        return Err(RemoteError::NoRemotes.into());
    }
    let opts = Options {
        timeout: limit(args.timeout),
        adopt: cli.adopt,
    };
    let mut failed = Vec::new();
    for name in &names {
        match remote::run(&store, op, name, &opts).0 {
            Ok(report) => writeln!(out, "{report}")?,
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        0 => Ok(()),
        1 => Err(failed.remove(0).into()),
        _ => Err(CliError::Message(
            failed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// `valfs clone URL`: a new store at `--repo PATH`, `--store NAME` or the default store's
/// path, holding the remote's `--branch`.
pub(super) fn clone(cli: &Cli, args: &CloneArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = cli.repo_path();
    let opts = CloneOptions {
        branch: cli.branch.clone(),
        format: args.format.as_deref().and_then(Format::from_name),
        transfer: Options {
            timeout: limit(args.timeout),
            adopt: cli.adopt,
        },
    };
    let (store, format) = remote::clone(&args.url, &path, &opts)?;
    let head = store.head_commit()?;
    writeln!(
        out,
        "cloned {} ({}) into {} ({format}, remote origin)",
        cli.branch,
        &head.to_string()[..7],
        path.display()
    )?;
    Ok(())
}

/// `valfs status`: the mounts, then each remote of the command line's store (when it exists
/// and has remotes): ahead/behind as of the last fetch, the last sync, the last error.
pub fn status(cli: &Cli, out: &mut dyn Write) -> Result<(), CliError> {
    crate::daemon::status(out).map_err(|e| CliError::Message(e.to_string()))?;
    let path = cli.repo_path();
    // Opened, never created: a status must not make the default store.
    let Ok(store) = Store::open(&path, &cli.branch) else {
        return Ok(());
    };
    let remotes = remote::status(&store)?;
    if remotes.is_empty() {
        return Ok(());
    }
    writeln!(out, "{} (branch {})", path.display(), cli.branch)?;
    for r in remotes {
        for line in r.to_string().lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// `valfs conflicts`: the open conflicts of the branch head, one path a line as the mount
/// names it (unpadded indices, escaped keys; `/` for the root). With `--long`, each path is
/// followed by its kind and the three versions in the store's format, indented:
///
/// ```text
/// users/0/age edit/edit
///   base:   41
///   ours:   42
///   theirs: 43
/// ```
///
/// A side that has nothing at the path (it never had, or removed it) shows `(none)`.
pub(super) fn conflicts(
    cli: &Cli,
    args: &ConflictsArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = cli.open()?;
    for c in store.conflicts()? {
        if !args.long {
            writeln!(out, "{}", c.path)?;
            continue;
        }
        writeln!(out, "{} {}", c.path, c.kind)?;
        for (side, node) in [
            ("base:  ", c.base),
            ("ours:  ", c.ours),
            ("theirs:", c.theirs),
        ] {
            writeln!(out, "  {side} {}", version_text(&store, node)?)?;
        }
    }
    Ok(())
}

/// One side's version of a conflicted path, on one line in the store's format.
fn version_text(store: &Store, node: Option<Node>) -> Result<String, CliError> {
    let Some(node) = node else {
        return Ok("(none)".into());
    };
    let value = store.read_value(node)?;
    Ok(store.format().print(&value)?)
}

/// Whether a path as typed (indices maybe padded: `v/03`) names a recorded conflict's path.
fn names_conflict(typed: &Path, c: &Conflict) -> bool {
    let (t, r) = (typed.names(), c.path.names());
    t.len() == r.len()
        && t.iter()
            .zip(r)
            .all(|(t, r)| t == r || parse_index(t).is_some_and(|i| parse_index(r) == Some(i)))
}

/// `valfs resolve PATH...`: removes the conflicts' records as one commit, leaving the value as
/// it is. A path with no open conflict fails the whole command (nothing is committed).
pub(super) fn resolve(cli: &Cli, args: &ResolveArgs) -> Result<(), CliError> {
    let store = cli.open()?;
    let open = store.conflicts()?;
    let mut recorded = Vec::new();
    let mut missing = Vec::new();
    for typed in &args.paths {
        match open.iter().find(|c| names_conflict(&Path::parse(typed), c)) {
            // The recorded path, so that the commit names it as `valfs conflicts` does.
            Some(c) if !recorded.contains(&c.path) => recorded.push(c.path.clone()),
            Some(_) => {}
            None => missing.push(typed.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(CliError::Message(format!(
            "no open conflict at {} (`valfs conflicts` lists them)",
            missing.join(", ")
        )));
    }
    store.resolve_conflicts(&recorded)?;
    Ok(())
}
