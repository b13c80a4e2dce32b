//! The command line: arguments -> store calls, and for `valfs mount` -> a
//! [`crate::fs::MountConfig`].

mod mount;
pub mod sync;
mod watch;

pub use mount::MountArgs;

use crate::codec::{self, Format};
use crate::store::{self, Edit, Store, StoreError};
use crate::value::{Path, Value};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "valfs",
    version,
    about = "Mount a JSON or EDN value kept in git; every save is a commit."
)]
pub struct Cli {
    /// The repository (default: the embedded store under $XDG_DATA_HOME/valfs/).
    #[arg(
        long,
        global = true,
        env = "VALFS_REPO",
        value_name = "PATH",
        conflicts_with = "store"
    )]
    pub repo: Option<PathBuf>,
    /// A named store, $XDG_DATA_HOME/valfs/NAME.git, created on first use.
    #[arg(long, global = true, env = "VALFS_STORE", value_name = "NAME", value_parser = parse_store_name)]
    pub store: Option<String>,
    /// The branch holding the value.
    #[arg(long, global = true, default_value = store::DEFAULT_BRANCH, value_name = "NAME")]
    pub branch: String,
    /// Also use a repository or branch valfs did not make (refused without it).
    ///
    /// That is a git repository with a work tree, or a branch whose commits are not valfs
    /// values (its root has no `.valfs` marker): commits then go onto that branch. `init`
    /// never writes into an existing repository or non-empty directory, even with --adopt.
    #[arg(long, global = true)]
    pub adopt: bool,
    #[command(subcommand)]
    pub command: Command,
    /// The arguments this was parsed from, without the program name (mount(8)'s form
    /// translated): what `--daemon` runs again in the foreground.
    #[arg(skip)]
    pub args: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a store holding an empty map.
    Init {
        #[arg(long, default_value = "json", value_parser = ["json", "edn"])]
        format: String,
    },
    /// Replace the value (or the subtree at PATH) with a document.
    Import {
        /// A file, or - for standard input.
        file: String,
        #[arg(default_value = "")]
        path: String,
        /// The document's format (default: by the file's extension, .json or .edn, else the
        /// store's).
        #[arg(long, value_parser = ["json", "edn"])]
        format: Option<String>,
    },
    /// Print the value (or the subtree at PATH).
    Export {
        #[arg(long, value_name = "REV")]
        at: Option<String>,
        #[arg(long)]
        pretty: bool,
        /// Print in this format instead of the store's.
        #[arg(long, value_parser = ["json", "edn"])]
        format: Option<String>,
        #[arg(default_value = "")]
        path: String,
    },
    /// Print one key's value.
    Get {
        #[arg(long, value_name = "REV")]
        at: Option<String>,
        path: String,
    },
    /// Set a key from TEXT, read as a file's text (`Bob` is the string "Bob" in a JSON store,
    /// the symbol Bob in an EDN store).
    Set { path: String, text: String },
    /// Remove a key or element.
    Rm { path: String },
    /// Move or rename a key, replacing what is at the target.
    Mv { from: String, to: String },
    /// List the commits (that changed PATH), newest first.
    Log {
        #[arg(default_value = "")]
        path: String,
        #[arg(short = 'n', long)]
        max_count: Option<usize>,
    },
    /// Show the paths changed between two versions (the second defaults to HEAD).
    Diff { rev: String, rev2: Option<String> },
    /// Restore the value of REV as a new commit.
    Revert { rev: String },
    /// Restore the subtree at PATH as it was at REV, to TO (default: PATH), as one commit:
    /// exact (vectors stay vectors), replacing what is at TO. PATH empty or / is the root.
    Restore {
        rev: String,
        path: String,
        to: Option<String>,
    },
    /// Pack the repository and drop unreachable objects (runs `git gc`).
    Gc,
    /// Mount the value at MOUNTPOINT (in the foreground; --daemon detaches once it is usable).
    ///
    /// mount(8) and fstab run `valfs SOURCE MOUNTPOINT -o OPTIONS` (through fuse3's
    /// mount.fuse3), where SOURCE is a store name or a repository path (one with a `/`); that
    /// form mounts as `--daemon` does.
    Mount(MountArgs),
    /// Unmount: pending changes are committed first. Also clears a stale mount.
    Umount {
        mountpoint: PathBuf,
        /// Only clear a stale mount (its daemon died); leave anything else alone.
        #[arg(long)]
        if_stale: bool,
    },
    /// List the active valfs mounts (store, branch, head commit, what is pending), then each
    /// remote of the store: ahead/behind, the last sync, the last error.
    Status,
    /// Add, remove or list the remotes the store syncs with (plain git remotes).
    #[command(subcommand)]
    Remote(sync::RemoteCommand),
    /// Make a new store from a remote's valfs branch (at --store NAME, --repo PATH, or the
    /// default store's path; --branch picks the branch).
    ///
    /// The remote becomes the store's `origin`. The path must not exist yet, or be an empty
    /// directory. A branch that does not hold a valfs value is refused (unless --adopt), and a
    /// clone that fails leaves nothing behind.
    Clone(sync::CloneArgs),
    /// Fetch, bring the remote's branch in, and push the result, with each remote in turn.
    ///
    /// Bringing in is a fast-forward when only one side has new commits. The push is a plain
    /// git push, fast-forward only and never forced; one that loses a race with another
    /// machine's push is fetched, brought in and pushed again. When a remote cannot be reached
    /// this fails with one line and leaves the branch as it was. Transport is the system git:
    /// credential helpers, ssh keys and agents, ~/.ssh/config and proxies work as for git.
    Sync(sync::SyncArgs),
    /// Fetch the remote's branch and bring it in (the first half of sync).
    Pull(sync::SyncArgs),
    /// Push the branch to the remote, fast-forward only (the second half of sync).
    ///
    /// A remote whose branch has commits this store lacks is refused: pull or sync first.
    Push(sync::SyncArgs),
    /// List the open conflicts of the branch head, one path a line (nothing when none).
    ///
    /// A merge that met two different edits of one entry keeps ours in the value and records
    /// the conflict with the base's, ours and theirs versions; it stays open until resolved.
    Conflicts(sync::ConflictsArgs),
    /// Resolve conflicts (remove their records) as one commit; the value stays as it is.
    ///
    /// Set the path first (`valfs set`) if the value should hold another version.
    Resolve(sync::ResolveArgs),
    /// Print every change that reaches the branch (from a mount, the CLI, git or a sync), one
    /// JSON object a line, oldest first, until killed.
    Watch(watch::WatchArgs),
}

/// A store name is one path component: no `/`, not empty, not starting with `.`.
fn parse_store_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') || s.starts_with('.') || s.contains('\0') {
        return Err(format!(
            "{s:?}: a store name is a plain name (no `/`, not starting with `.`); use --repo for a path"
        ));
    }
    Ok(s.to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Remote(#[from] store::remote::RemoteError),
}

impl Cli {
    /// Parses this program's command line, exiting with clap's message on a mistake (and for
    /// `--help`). mount(8)'s form, `valfs SOURCE MOUNTPOINT -o OPTIONS`, is read as the
    /// `mount` it means. Call it before the program starts a thread: that form sets `HOME`.
    pub fn from_env() -> Cli {
        let mut argv: Vec<OsString> = std::env::args_os().collect();
        let program = if argv.is_empty() {
            "valfs".into()
        } else {
            argv.remove(0)
        };
        let (args, from_mount) = mount::helper_args(argv);
        if from_mount && let Some(home) = crate::sys::passwd_home() {
            // mount(8) drops HOME and mount.fuse3 then sets /root, also for a user's mount
            // (fstab `user`): named stores are found from the user's real home.
            crate::sys::set_home(&home);
        }
        let mut cli = Cli::parse_from(std::iter::once(program).chain(args.iter().cloned()));
        cli.args = args;
        cli
    }

    /// The repository this invocation works on.
    pub fn repo_path(&self) -> PathBuf {
        match (&self.repo, &self.store) {
            (Some(path), _) => path.clone(),
            (None, Some(name)) => store::named_store(name),
            (None, None) => store::named_store("default"),
        }
    }

    /// Opens the store; the embedded default store and named stores are created on first use.
    /// A repository or branch valfs did not make is refused without `--adopt`.
    pub fn open(&self) -> Result<Store, StoreError> {
        let store = match &self.repo {
            Some(path) => Store::open(path, &self.branch)?,
            None => Store::open_or_init(&self.repo_path(), &self.branch)?,
        };
        if !self.adopt {
            store.check_ours()?;
        }
        Ok(store)
    }
}

/// Runs a subcommand other than `mount`/`umount`, writing its output to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match &cli.command {
        Command::Init { format } => init(cli, format, out),
        Command::Import { file, path, format } => import(cli, file, path, format.as_deref()),
        Command::Export {
            at,
            pretty,
            format,
            path,
        } => export(cli, at.as_deref(), *pretty, format.as_deref(), path, out),
        Command::Get { at, path } => get(cli, at.as_deref(), path, out),
        Command::Set { path, text } => set(cli, path, text),
        Command::Rm { path } => rm(cli, path),
        Command::Mv { from, to } => mv(cli, from, to),
        Command::Log { path, max_count } => log(cli, path, *max_count, out),
        Command::Diff { rev, rev2 } => diff(cli, rev, rev2.as_deref(), out),
        Command::Revert { rev } => revert(cli, rev),
        Command::Restore { rev, path, to } => restore(cli, rev, path, to.as_deref()),
        Command::Remote(cmd) => sync::remote(cli, cmd, out),
        Command::Clone(args) => sync::clone(cli, args, out),
        Command::Sync(args) => sync::transfer(cli, store::remote::Op::Sync, args, out),
        Command::Pull(args) => sync::transfer(cli, store::remote::Op::Pull, args, out),
        Command::Push(args) => sync::transfer(cli, store::remote::Op::Push, args, out),
        Command::Conflicts(args) => sync::conflicts(cli, args, out),
        Command::Resolve(args) => sync::resolve(cli, args),
        Command::Mount(_) | Command::Umount { .. } | Command::Status => Err(CliError::Message(
            "mount and umount are run by the daemon".into(),
        )),
        Command::Gc => gc(cli),
        Command::Watch(args) => watch::watch(cli, args, out),
    }
}

/// `valfs init`: a store holding an empty map.
fn init(cli: &Cli, format: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let format = Format::from_name(format).unwrap_or(Format::Json);
    let path = cli.repo_path();
    Store::init(&path, format, &cli.branch)?;
    writeln!(
        out,
        "initialised an empty {format} store in {}",
        path.display()
    )?;
    Ok(())
}

/// `valfs import`: a document replaces the value (or the subtree at `path`) in one commit.
fn import(cli: &Cli, file: &str, path: &str, format: Option<&str>) -> Result<(), CliError> {
    // Bulk work: on a busy machine, the mounts' reads go first.
    crate::sys::lower_priority(10);
    let store = cli.open()?;
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(file).map_err(|e| CliError::Message(format!("{file}: {e}")))?;
    }
    let format = import_format(format, file, store.format());
    let value = format
        .parse(&text)
        .map_err(|e| CliError::Message(format!("{file}: {e} (read as {format}; see --format)")))?;
    let path = Path::parse(path);
    if path.is_root() && !value.is_collection() {
        return Err(CliError::Message(format!(
            "{file}: the root value must be a map or a vector"
        )));
    }
    let total = value.node_count();
    let mut progress = Progress::new(total);
    let node = store.write_value_packed(&value, &mut |n| progress.add(n))?;
    progress.done();
    let msg = format!("import {path}");
    store.apply(&[Edit::Put(path, node)], &msg)?;
    Ok(())
}

/// The commit `rev` names, or the branch head without one.
fn commit_at(store: &Store, rev: Option<&str>) -> Result<store::Oid, StoreError> {
    match rev {
        Some(rev) => store.resolve(rev),
        None => store.head_commit(),
    }
}

/// The value at `path` in the commit `at` names (default: the head).
fn value_at(store: &Store, at: Option<&str>, path: &str) -> Result<Value, StoreError> {
    let commit = commit_at(store, at)?;
    let node = store.node_at(store.commit_root(commit)?, &Path::parse(path))?;
    store.read_value(node)
}

/// `valfs export`: the value (or a subtree), in the store's format or another.
fn export(
    cli: &Cli,
    at: Option<&str>,
    pretty: bool,
    format: Option<&str>,
    path: &str,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = cli.open()?;
    let value = value_at(&store, at, path)?;
    let format = format.and_then(Format::from_name).unwrap_or(store.format());
    writeln!(
        out,
        "{}",
        if pretty {
            format.print_pretty(&value)?
        } else {
            format.print(&value)?
        }
    )?;
    Ok(())
}

/// `valfs get`: one key's value.
fn get(cli: &Cli, at: Option<&str>, path: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let store = cli.open()?;
    let value = value_at(&store, at, path)?;
    writeln!(out, "{}", store.format().print(&value)?)?;
    Ok(())
}

/// `valfs set`: a key from a file's text.
fn set(cli: &Cli, path: &str, text: &str) -> Result<(), CliError> {
    let store = cli.open()?;
    let value = codec::parse_file_text(store.format(), text.as_bytes())?;
    let path = Path::parse(path);
    let edit = Edit::Set(path, value);
    store.apply(std::slice::from_ref(&edit), &edit.describe())?;
    Ok(())
}

/// `valfs rm`: a key or element goes, with the modes and owners set on it.
fn rm(cli: &Cli, path: &str) -> Result<(), CliError> {
    let store = cli.open()?;
    let path = Path::parse(path);
    if path.is_root() {
        return Err(CliError::Message("cannot remove the root".into()));
    }
    let edit = Edit::Remove(path);
    apply_with_perms(&store, &edit)
}

/// `valfs mv`: a key moves, with the modes and owners set on it.
fn mv(cli: &Cli, from: &str, to: &str) -> Result<(), CliError> {
    let store = cli.open()?;
    let (from, to) = (Path::parse(from), Path::parse(to));
    let edit = Edit::Move(from, to);
    apply_with_perms(&store, &edit)
}

/// `valfs log`: the commits (that changed `path`), newest first.
fn log(
    cli: &Cli,
    path: &str,
    max_count: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = cli.open()?;
    for e in store.log(&Path::parse(path), max_count)? {
        writeln!(
            out,
            "{} {} {}",
            &e.commit.to_string()[..12],
            utc_timestamp(e.time),
            e.summary
        )?;
    }
    Ok(())
}

/// `valfs diff`: the paths changed between two versions (the second defaults to the head).
fn diff(cli: &Cli, rev: &str, rev2: Option<&str>, out: &mut dyn Write) -> Result<(), CliError> {
    let store = cli.open()?;
    let a = store.commit_root(store.resolve(rev)?)?;
    let b = store.commit_root(commit_at(&store, rev2)?)?;
    let f = store.format();
    for c in store.diff(a, b)? {
        match (&c.old, &c.new) {
            (Some(o), Some(n)) => {
                writeln!(out, "~ {}: {} -> {}", c.path, f.print(o)?, f.print(n)?)?
            }
            (None, Some(n)) => writeln!(out, "+ {}: {}", c.path, f.print(n)?)?,
            (Some(o), None) => writeln!(out, "- {}: {}", c.path, f.print(o)?)?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// `valfs revert`: the value of `rev` as a new commit.
fn revert(cli: &Cli, rev: &str) -> Result<(), CliError> {
    let store = cli.open()?;
    let commit = store.resolve(rev)?;
    let short = &commit.to_string()[..7];
    store.commit_root_tree(store.commit_root(commit)?, &format!("revert to {short}"))?;
    Ok(())
}

/// `valfs restore`: the subtree at `path` as it was at `rev`, to `to` (default: `path`).
fn restore(cli: &Cli, rev: &str, path: &str, to: Option<&str>) -> Result<(), CliError> {
    let store = cli.open()?;
    let from = Path::parse(path);
    let to = to.map_or_else(|| from.clone(), Path::parse);
    store.restore(rev, &from, &to)?;
    Ok(())
}

/// `valfs gc`: `git gc` on the repository.
fn gc(cli: &Cli) -> Result<(), CliError> {
    let store = cli.open()?;
    let status = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store.path())
        .args(["gc", "--quiet"])
        .status()
        .map_err(|e| CliError::Message(format!("gc needs git installed: {e}")))?;
    if !status.success() {
        return Err(CliError::Message(format!("git gc failed ({status})")));
    }
    Ok(())
}

/// The format of a document to import: `--format`, else the file's extension (`.json`, `.edn`),
/// else the store's.
fn import_format(flag: Option<&str>, file: &str, store: Format) -> Format {
    let ext = std::path::Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    flag.and_then(Format::from_name)
        .or_else(|| ext.as_deref().and_then(Format::from_name))
        .unwrap_or(store)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time in seconds since the epoch.
pub fn utc_timestamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::value::civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Import progress on a terminal.
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    last: std::time::Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            tty: crate::sys::stderr_is_tty(),
            last: std::time::Instant::now(),
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n;
        if self.tty && self.last.elapsed().as_millis() >= 200 {
            self.last = std::time::Instant::now();
            eprint!("\rwriting objects: {} of {} values", self.done, self.total);
        }
    }

    fn done(&self) {
        if self.tty && self.total > 10_000 {
            eprintln!("\rwriting objects: done ({} values)          ", self.total);
        }
    }
}

/// Applies a removal or a move as one commit; the modes and owners set on its paths follow
/// (copied to a move's target before, the source's dropped after).
fn apply_with_perms(store: &Store, edit: &Edit) -> Result<(), CliError> {
    use crate::store::meta;
    let mut perms = meta::Perms::open(store)?;
    let (Edit::Move(path, _) | Edit::Remove(path)) = edit else {
        store.apply(std::slice::from_ref(edit), &edit.describe())?;
        return Ok(());
    };
    let root = store.commit_root(store.head_commit()?)?;
    let in_sequence = meta::in_sequence(store, root, path);
    meta::edit_before(&mut perms, edit)?;
    store.apply(std::slice::from_ref(edit), &edit.describe())?;
    meta::edit_after(&mut perms, edit, in_sequence)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_format_is_the_flag_then_the_extension_then_the_store() {
        assert_eq!(
            import_format(Some("edn"), "a.json", Format::Json),
            Format::Edn
        );
        assert_eq!(import_format(None, "a.JSON", Format::Edn), Format::Json);
        assert_eq!(import_format(None, "a.edn", Format::Json), Format::Edn);
        assert_eq!(import_format(None, "-", Format::Edn), Format::Edn);
        assert_eq!(import_format(None, "doc.txt", Format::Json), Format::Json);
    }
}
