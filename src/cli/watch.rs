//! `valfs watch`: the change feed, one JSON object a line. The work is done by
//! [`crate::store::watch`].

use super::{Cli, CliError, utc_timestamp};
use crate::store::watch::{self, Event};
use crate::value::Path;
use clap::Args;
use std::io::Write;

/// The arguments of `valfs watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Only changes at PATH, below it, or to a collection holding it (default: all).
    #[arg(default_value = "")]
    pub path: String,
    /// First print every change after REV (the first-parent commits from REV to the head,
    /// oldest first): a consumer that restarts from the last commit it saw misses nothing.
    #[arg(long, value_name = "REV")]
    pub since: Option<String>,
}

/// One line of the feed, its fields in this order.
#[derive(serde::Serialize)]
struct Line<'a> {
    commit: String,
    time: String,
    op: &'a str,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

fn path_text(p: &Path) -> String {
    p.0.join("/")
}

fn line(e: &Event) -> Line<'static> {
    Line {
        commit: e.commit.to_string(),
        time: utc_timestamp(e.time),
        op: e.op.name(),
        path: path_text(&e.path),
        from: e.from.as_ref().map(path_text),
    }
}

/// `valfs watch`: prints the changes that reach the branch until killed, or until the reader
/// of its output goes away (then quietly).
pub(super) fn watch(cli: &Cli, args: &WatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut store = cli.open()?;
    let since = args
        .since
        .as_deref()
        .map(|r| store.resolve(r))
        .transpose()?;
    let filter = Path::parse(&args.path);
    // A pipe whose reader went away is noticed while idle too, not at the next change.
    let stdout = std::io::stdout();
    let hangup = std::os::fd::AsFd::as_fd(&stdout);
    let mut failed = None;
    watch::follow(&mut store, since, Some(hangup), |e| {
        if !e.touches(&filter) {
            return true;
        }
        let written = serde_json::to_writer(&mut *out, &line(e))
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
