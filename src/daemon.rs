//! The mount's lifecycle: checks, logging, readiness, signals, the registry of running mounts
//! and a clean unmount that commits what is pending.

use crate::fs::{Options, State, ValFs};
use crate::store::Store;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountArgs {
    pub repo: PathBuf,
    /// Create the store if missing (the embedded default store and named stores).
    pub create: bool,
    pub branch: String,
    pub mountpoint: PathBuf,
    pub daemon: bool,
    pub allow_other: bool,
    pub opts: Options,
}

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
        env_logger::Env::default().default_filter_or("warn,fuser=error"),
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

/// Whether a path is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize().or_else(|_| std::path::absolute(path)) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|l| {
        l.split(' ').nth(4).map(unescape_mountinfo).as_deref()
            == Some(canon.to_string_lossy().as_ref())
    })
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Where running mounts record themselves (for `valfs umount` and `valfs status`).
fn registry_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("valfs"),
        None => std::env::temp_dir().join(format!("valfs-{}", crate::sys::uid())),
    }
}

fn registry_file(mountpoint: &Path) -> PathBuf {
    let abs = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    registry_dir().join(
        abs.to_string_lossy()
            .replace('%', "%25")
            .replace('/', "%2F"),
    )
}

/// Where a `--daemon` mount logs.
pub fn log_file(mountpoint: &Path) -> PathBuf {
    let mut p = registry_file(mountpoint).into_os_string();
    p.push(".log");
    PathBuf::from(p)
}

/// Mounts and serves until unmounted or signalled. With `daemon`, returns once the mount is
/// usable in a detached child, or with the child's error.
pub fn mount(args: &MountArgs) -> Result<(), DaemonError> {
    check_mountpoint(&args.mountpoint)?;
    if args.daemon {
        return spawn_daemon(&args.mountpoint);
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

fn serve(args: &MountArgs, ready: &mut Option<std::fs::File>) -> Result<(), DaemonError> {
    crate::sys::big_thread_stacks();
    let signals = crate::sys::block_signals();
    crate::sys::limit_git_cache(16 << 20);
    let store = if args.create {
        Store::open_or_init(&args.repo, &args.branch)?
    } else {
        Store::open(&args.repo, &args.branch)?
    };
    store.head_commit()?;
    store.clear_stale_lock(Duration::from_secs(2))?;
    let fsname = format!("valfs:{}", args.repo.display());
    let fs = ValFs::new(State::new(store, args.opts.clone())?);
    let cfg = ValFs::config(args.opts.read_only, args.allow_other, &fsname);
    let mut session = fuser::Session::new(fs.clone(), &args.mountpoint, &cfg).map_err(|e| {
        DaemonError::Setup(format!(
            "cannot mount on {}: {e}",
            args.mountpoint.display()
        ))
    })?;
    fs.set_notifier(session.notifier());
    let mut unmounter = session.unmount_callable();

    // Stop on SIGTERM/SIGINT: commit what is pending, then unmount.
    let fs_sig = fs.clone();
    let mountpoint = args.mountpoint.clone();
    std::thread::spawn(move || {
        let sig = crate::sys::wait_signal(&signals);
        log::info!(
            "signal {sig}: committing and unmounting {}",
            mountpoint.display()
        );
        if let Err(e) = fs_sig.lock().settle() {
            log::error!("committing pending changes failed: {e}");
        }
        if let Err(e) = unmounter.unmount() {
            log::warn!("unmount: {e}; detaching lazily");
            let _ = crate::sys::umount(&mountpoint, true);
        }
    });

    // Follow other writers and commit coalesced edits.
    let fs_watch = fs.clone();
    std::thread::spawn(move || {
        // Build the .history index now rather than at the first listing.
        if let Err(e) = fs_watch.lock().refresh_history() {
            log::warn!("indexing history: {e}");
        }
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let moved = {
                let mut st = fs_watch.lock();
                if let Err(e) = st.tick() {
                    log::error!("coalesced commit failed: {e}");
                }
                st.follow_head()
            };
            match moved {
                Ok(Some(inos)) => fs_watch.invalidate(&crate::fs::state_inval(inos)),
                Ok(None) => {}
                Err(e) => log::debug!("following the branch: {e}"),
            }
        }
    });

    let reg = registry_file(&args.mountpoint);
    let _ = std::fs::create_dir_all(registry_dir());
    let _ = std::fs::write(
        &reg,
        format!(
            "{}\n{}\n{}\n",
            std::process::id(),
            args.repo.display(),
            args.branch
        ),
    );
    log::info!(
        "mounted {} ({}) on {}",
        args.repo.display(),
        args.branch,
        args.mountpoint.display()
    );
    if let Some(f) = ready.as_mut() {
        let _ = writeln!(f, "ready");
    }
    *ready = None;
    notify_systemd("READY=1");
    let result = session.run();
    notify_systemd("STOPPING=1");
    let _ = std::fs::remove_file(&reg);
    log::info!("unmounted {}", args.mountpoint.display());
    result.map_err(DaemonError::Io)
}

/// Re-runs this command without `--daemon` in a detached child and waits until it reports
/// that the mount is usable (or why it is not).
fn spawn_daemon(mountpoint: &Path) -> Result<(), DaemonError> {
    let (read, write) = crate::sys::pipe()?;
    let exe = std::env::current_exe()?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--daemon")
        .collect();
    use std::os::unix::process::CommandExt;
    // The daemon's log goes to a file beside its registry entry: an inherited stderr would
    // keep a caller's pipe open (`out=$(valfs mount --daemon d 2>&1)` would never return).
    let _ = std::fs::create_dir_all(registry_dir());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(mountpoint))?;
    let mut child = std::process::Command::new(exe)
        .args(args)
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
/// left by a daemon that died.
pub fn umount(mountpoint: &Path) -> Result<(), DaemonError> {
    let reg = registry_file(mountpoint);
    let pid = std::fs::read_to_string(&reg)
        .ok()
        .and_then(|s| s.lines().next()?.parse::<i32>().ok());
    if let Some(pid) = pid.filter(|&p| p > 0 && crate::sys::dead(p)) {
        // The daemon died: never touch the mount (a request would wait forever on a daemon
        // stuck as a zombie). Abort its connection, then detach it.
        let abs = std::path::absolute(mountpoint)?;
        let _ = crate::sys::abort_mount(&abs);
        match crate::sys::umount(&abs, true) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                std::process::Command::new("fusermount3")
                    .arg("-uz")
                    .arg(&abs)
                    .status()?;
            }
            Err(e) => {
                return Err(DaemonError::Setup(format!(
                    "umount {}: {e}",
                    mountpoint.display()
                )));
            }
        }
        let _ = std::fs::remove_file(&reg);
        log::info!("cleared the mount of daemon {pid}, which had died");
        return Ok(());
    }
    let stale =
        matches!(std::fs::metadata(mountpoint), Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
    if !stale && !is_mounted(mountpoint) {
        return Err(DaemonError::Setup(format!(
            "{}: not mounted",
            mountpoint.display()
        )));
    }
    if let Err(e) = crate::sys::umount(mountpoint, stale) {
        if e.raw_os_error() == Some(libc::EBUSY) {
            return Err(DaemonError::Setup(format!(
                "{}: busy (files are open there)",
                mountpoint.display()
            )));
        }
        if e.raw_os_error() == Some(libc::EPERM) {
            let st = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg(mountpoint)
                .status()?;
            if !st.success() {
                return Err(DaemonError::Setup(format!(
                    "fusermount3 -u {} failed",
                    mountpoint.display()
                )));
            }
        } else {
            return Err(DaemonError::Setup(format!(
                "umount {}: {e}",
                mountpoint.display()
            )));
        }
    }
    if let Some(pid) = pid.filter(|&p| p > 0 && p != std::process::id() as i32) {
        for _ in 0..600 {
            if !crate::sys::alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_file(&reg);
    Ok(())
}
