//! The mount's lifecycle: checks, logging, readiness, signals, the registry of running mounts
//! and a clean unmount that commits what is pending.

pub mod registry;
mod status;
mod sync;

pub use registry::{is_mounted, log_file};
pub use status::status;

use crate::fs::{MountConfig, State, UnmountError, Unmounter, ValFs};
use crate::store::Store;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Fs(#[from] crate::fs::FsError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Sets up logging once: `RUST_LOG` levels, no timestamps under journald.
pub fn init_logging() {
    let mut b = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(crate::fs::LOG_FILTER),
    );
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.format_timestamp(None);
    }
    let _ = b.try_init();
}

/// Why a mountpoint cannot be used, if it cannot. A missing mountpoint is created.
pub fn check_mountpoint(path: &Path) -> Result<(), DaemonError> {
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(DaemonError::Setup(format!(
            "{}: a stale mount is left behind by a daemon that died (Transport endpoint is not connected); \
             clear it with `valfs umount {}`",
            path.display(),
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(path).map_err(|e| {
            DaemonError::Setup(format!(
                "{}: cannot create the mountpoint: {e}",
                path.display()
            ))
        }),
        Err(e) => Err(DaemonError::Setup(format!("{}: {e}", path.display()))),
        Ok(m) if !m.is_dir() => Err(DaemonError::Setup(format!(
            "{}: not a directory",
            path.display()
        ))),
        Ok(_) if is_mounted(path) => Err(DaemonError::Setup(format!(
            "{}: something is already mounted there",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// Why FUSE cannot be used here, if it cannot.
pub fn check_fuse_device() -> Result<(), DaemonError> {
    match std::fs::metadata("/dev/fuse") {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DaemonError::Setup(
            "/dev/fuse is missing: load the fuse kernel module (`modprobe fuse`), or give \
             this container the device (e.g. `--device /dev/fuse`)"
                .into(),
        )),
        Err(e) => Err(DaemonError::Setup(format!("/dev/fuse: {e}"))),
    }
}

/// Mounts and serves until unmounted or signalled. With `detach`, returns once the mount is
/// usable in a detached child, or with the child's error.
pub fn mount(args: &MountConfig) -> Result<(), DaemonError> {
    check_mountpoint(&args.mountpoint)?;
    check_fuse_device()?;
    if let Some(argv) = &args.detach {
        return spawn_daemon(&args.mountpoint, argv);
    }
    let ready_fd = std::env::var("VALFS_READY_FD")
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    let mut ready = ready_fd.map(crate::sys::owned_fd).map(std::fs::File::from);
    let result = serve(args, &mut ready);
    if let (Err(e), Some(f)) = (&result, ready.as_mut()) {
        let _ = writeln!(f, "{e}");
    }
    result
}

fn serve(args: &MountConfig, ready: &mut Option<std::fs::File>) -> Result<(), DaemonError> {
    crate::sys::big_thread_stacks();
    let signals = crate::sys::block_signals();
    let state = open_state(args)?;
    let mut mounted =
        crate::fs::mount(args, state).map_err(|e| DaemonError::Setup(e.to_string()))?;
    let mountpoint = mounted.mountpoint().to_path_buf();
    let repo = args.absolute_repo();
    let reg = Arc::new(Mutex::new(registry::Registration::new(registry::Entry {
        pid: std::process::id() as i32,
        mountpoint: mountpoint.to_string_lossy().into_owned(),
        repo: repo.to_string_lossy().into_owned(),
        branch: args.branch.clone(),
        ..registry::Entry::default()
    })));
    stop_on_signal(
        signals,
        mounted.fs().clone(),
        mounted.unmounter(),
        mountpoint.clone(),
    );
    keep_up(mounted.fs().clone(), Arc::clone(&reg));
    log::info!(
        "mounted {} ({}) on {}",
        repo.display(),
        args.branch,
        mountpoint.display()
    );
    if let Some(f) = ready.as_mut() {
        let _ = writeln!(f, "ready");
    }
    *ready = None;
    notify_systemd("READY=1");
    let syncer = args
        .sync
        .map(|every| sync::start(repo.clone(), args.branch.clone(), every));
    let result = mounted.run();
    notify_systemd("STOPPING=1");
    if let Some(s) = syncer {
        s.finish();
    }
    if let Ok(mut r) = reg.lock() {
        r.close();
    }
    log::info!("unmounted {}", mountpoint.display());
    result.map_err(DaemonError::Io)
}

/// Opens the store as the mount asks and makes the filesystem's state, its `.history` index
/// included.
fn open_state(args: &MountConfig) -> Result<State, DaemonError> {
    crate::store::cache::configure();
    let store = if args.create {
        Store::open_or_init(&args.repo, &args.branch)?
    } else {
        Store::open(&args.repo, &args.branch)?
    };
    if !args.adopt {
        store.check_ours()?;
    }
    store.head_commit()?;
    store.clear_stale_lock(Duration::from_secs(2))?;
    let mut state = State::new(store, args.fs_options())?;
    // The .history index, before the mount is ready: read from the repository where an
    // earlier mount saved it (milliseconds for 100,000 versions), else built (a first mount of
    // a long history walks it once).
    match crate::fs::HistoryIndex::build(&args.repo, &args.branch) {
        Ok(index) => state.offer_history(index),
        Err(e) => log::warn!("indexing history: {e}"),
    }
    crate::sys::trim_heap();
    Ok(state)
}

/// Stops on SIGTERM/SIGINT: commits what is pending, then unmounts.
fn stop_on_signal(signals: libc::sigset_t, fs: ValFs, mut unmounter: Unmounter, mnt: PathBuf) {
    std::thread::spawn(move || {
        let sig = crate::sys::wait_signal(&signals);
        log::info!("signal {sig}: committing and unmounting {}", mnt.display());
        if let Err(e) = fs.settle() {
            log::error!("committing pending changes failed: {e}");
        }
        if let Err(e) = unmounter.unmount() {
            log::warn!("unmount: {e}; detaching lazily");
            let _ = crate::sys::umount(&mnt, true);
        }
    });
}

/// Follows other writers, commits coalesced edits, and publishes what is pending.
fn keep_up(fs: ValFs, reg: Arc<Mutex<registry::Registration>>) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let pending = fs.tick();
            if let Ok(mut r) = reg.lock() {
                r.set_pending(pending.0, pending.1);
            }
        }
    });
}

/// Re-runs this mount in the foreground in a detached child and waits until it reports that
/// the mount is usable (or why it is not).
fn spawn_daemon(mountpoint: &Path, argv: &[OsString]) -> Result<(), DaemonError> {
    let (read, write) = crate::sys::pipe()?;
    let exe = std::env::current_exe()?;
    use std::os::unix::process::CommandExt;
    // The daemon's log goes to a file beside its registry entry: an inherited stderr would
    // keep a caller's pipe open (`out=$(valfs mount --daemon d 2>&1)` would never return).
    let _ = std::fs::create_dir_all(registry::dir());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(mountpoint))?;
    let mut child = std::process::Command::new(exe)
        .args(argv)
        .env("VALFS_READY_FD", crate::sys::raw(&write).to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()?;
    drop(write);
    let mut answer = String::new();
    io::Read::read_to_string(&mut std::fs::File::from(read), &mut answer)?;
    match answer.lines().next() {
        Some("ready") => Ok(()),
        Some(msg) => Err(DaemonError::Setup(msg.to_owned())),
        None => {
            let status = child.wait()?;
            Err(DaemonError::Setup(format!(
                "the mount daemon exited before the mount was ready ({status})"
            )))
        }
    }
}

/// Sends a state line to systemd when run as a `Type=notify` service.
fn notify_systemd(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let r = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = r {
        log::warn!("sd_notify: {e}");
    }
}

/// Unmounts: the daemon commits what is pending and exits; waits for it. Clears a stale mount
/// left by a daemon that died. With `only_stale`, clears a stale mount and leaves anything
/// else alone (for a service about to mount there again).
pub fn umount(mountpoint: &Path, only_stale: bool) -> Result<(), DaemonError> {
    let pid = registry::read(mountpoint).map(|e| e.pid);
    if let Some(pid) = pid.filter(|&p| p > 0 && crate::sys::dead(p)) {
        return clear_dead_mount(mountpoint, pid);
    }
    let stale = registry::is_stale(mountpoint);
    if only_stale && !stale {
        return Ok(());
    }
    if !stale && !is_mounted(mountpoint) {
        return Err(DaemonError::Setup(format!(
            "{}: not mounted",
            mountpoint.display()
        )));
    }
    crate::fs::unmount_path(mountpoint, stale)
        .map_err(|e| DaemonError::Setup(e.describe(mountpoint)))?;
    if let Some(pid) = pid.filter(|&p| p > 0 && p != std::process::id() as i32) {
        wait_for_daemon(mountpoint, pid);
    }
    Ok(())
}

/// Clears the mount of a daemon that died. Never touches the mount (a request would wait
/// forever on a daemon stuck as a zombie): aborts its connection, then detaches it.
fn clear_dead_mount(mountpoint: &Path, pid: i32) -> Result<(), DaemonError> {
    let abs = std::path::absolute(mountpoint)?;
    let _ = crate::sys::abort_mount(&abs);
    match crate::fs::unmount_path(&abs, true) {
        Ok(()) | Err(UnmountError::HelperFailed) => {}
        Err(UnmountError::Refused(e)) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(UnmountError::Refused(e)) => {
            return Err(DaemonError::Setup(format!(
                "umount {}: {e}",
                mountpoint.display()
            )));
        }
        Err(UnmountError::NoHelper(e)) => return Err(DaemonError::Io(e)),
    }
    let _ = std::fs::remove_file(registry::file(mountpoint));
    log::info!("cleared the mount of daemon {pid}, which had died");
    Ok(())
}

/// Waits up to 30 s for the daemon to commit and exit, then drops its registry entry.
fn wait_for_daemon(mountpoint: &Path, pid: i32) {
    for _ in 0..600 {
        if !crate::sys::alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !crate::sys::alive(pid) {
        let _ = std::fs::remove_file(registry::file(mountpoint));
    }
}
