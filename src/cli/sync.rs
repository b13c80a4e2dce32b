//! Several machines: `valfs remote`, `clone`, `sync`, `pull` and `push`, and each remote's
//! state in `valfs status`. The work is done by [`crate::store::remote`].

use super::{Cli, CliError};
use crate::codec::Format;
use crate::store::Store;
use crate::store::remote::{self, CloneOptions, Op, Options, RemoteError};
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
