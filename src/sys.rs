//! The few direct system calls valfs makes.
#![allow(unsafe_code)] // each block below is one libc call, with its SAFETY argument

use std::io;
use std::path::Path;

/// Flushes the whole filesystem holding `path` to disk: one call instead of an fsync per
/// object and ref written.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the lifetime of `file`.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether standard error is a terminal (for progress output).
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// The real user id.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// The real group id.
pub fn gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// The process umask.
pub fn umask() -> u16 {
    // SAFETY: umask cannot fail; it is set straight back.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u16
    }
}

/// A pipe whose write end is inherited by children (the read end is not).
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (r, w) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: setting FD_CLOEXEC on a descriptor we own.
    unsafe { libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok((r, w))
}

pub fn raw(fd: &std::os::fd::OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Takes ownership of a descriptor inherited from the parent process.
pub fn owned_fd(fd: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: the parent passed this descriptor to us alone (VALFS_READY_FD); we close it once.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: as above.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so one thread
/// can wait for them.
pub fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only fill and apply it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the blocked signals.
pub fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: set was initialised by block_signals; sig is a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// Unmounts a filesystem (lazily for a stale mount).
pub fn umount(path: &Path, lazy: bool) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Aborts a FUSE mount's connection (`umount -f`): every request waiting on it fails, so
/// whatever waits on a dead daemon wakes up. The mount itself may stay (busy); detach it after.
pub fn abort_mount(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_FORCE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a process is gone or a zombie: a daemon killed while one of its threads was stuck
/// in the kernel stays a zombie, holding its FUSE connection open, until that is aborted.
pub fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => !alive(pid),
    }
}

/// Kills (SIGKILL) every process of the process group `pgid`: a child started as the leader of
/// its own group, with the helpers it started.
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    // SAFETY: kill takes no pointers; a negative pid names the group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Whether a process exists (also one of another user, which we may not signal).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Bounds libgit2's object cache to `bytes` for the process, keeping trees up to `tree_limit`
/// bytes and no blobs (the policy: [`crate::store::cache`]).
pub fn limit_git_cache(bytes: usize, tree_limit: usize) {
    // SAFETY: sets a global libgit2 option; called once before the mount serves requests.
    if let Err(e) = unsafe { git2::opts::set_cache_max_size(bytes as libc::ssize_t) } {
        log::warn!("cannot limit the git object cache: {e}");
    }
    for (kind, limit) in [
        (git2::ObjectType::Tree, tree_limit),
        (git2::ObjectType::Blob, 0),
    ] {
        // SAFETY: as above.
        if let Err(e) = unsafe { git2::opts::set_cache_object_limit(kind, limit) } {
            log::warn!("cannot set the git object cache's size limits: {e}");
        }
    }
}

/// The bytes libgit2 holds in the object caches of all repository handles of the process.
pub fn cached_git_bytes() -> isize {
    // SAFETY: reads two global counters.
    unsafe { git2::opts::get_cached_memory() }.map_or(0, |(current, _)| current)
}

/// Returns freed heap memory to the system (after dropping a large listing).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

/// Gives threads started from now on (the FUSE session's workers) big stacks: deep values are walked
/// recursively, and a stack overflow would take the whole mount down.
pub fn big_thread_stacks() {
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: called by the daemon before it starts any thread.
        unsafe { std::env::set_var("RUST_MIN_STACK", (32usize << 20).to_string()) };
    }
}

/// The home directory of the real user, from the password database.
pub fn passwd_home() -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain data that getpwuid_r fills.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pw's fields.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points to a NUL-terminated string inside buf.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    Some(std::ffi::OsStr::from_bytes(dir.to_bytes()).into())
}

/// Sets `HOME` (before any thread is started).
pub fn set_home(dir: &Path) {
    // SAFETY: called while the command line is parsed, before the program starts a thread.
    unsafe { std::env::set_var("HOME", dir) };
}

/// A copy of descriptor `fd` (close-on-exec), whatever it is: for a descriptor this process
/// holds but does not own (a library's).
pub fn dup(fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl takes no pointers; a closed `fd` fails with EBADF. Numbers below 3 are left
    // to the standard streams, as std's `try_clone` does.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` was just created and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) })
}

/// Writes `buf` to a descriptor in one write(2); returns how many bytes it took.
pub fn write(fd: std::os::fd::BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the buffer is live for the call and the descriptor is borrowed, so open.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Lowers the CPU priority of the calling thread (nice +`by`): for bulk work (importing,
/// parsing a big save) that must not delay the mount's reads on a busy machine. Unprivileged
/// threads cannot raise it back, so call it on threads made for the work.
pub fn lower_priority(by: i32) {
    // SAFETY: gettid and setpriority take no pointers; on Linux, PRIO_PROCESS with a thread id
    // changes that thread only.
    let rc = unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + by)
    };
    if rc != 0 {
        log::debug!("setpriority: {}", io::Error::last_os_error());
    }
}

/// An exclusive lock on a file (flock), held until dropped; the file is created if missing.
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    pub fn take(path: &Path) -> io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(FileLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// An inotify instance (close-on-exec), watching what [`inotify_watch`] adds.
pub fn inotify() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: inotify_init1 takes no pointers.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Adds `path` to an inotify instance for the events in `mask` (`libc::IN_*`).
pub fn inotify_watch(fd: std::os::fd::BorrowedFd<'_>, path: &Path, mask: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string live for the call; the descriptor is borrowed.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What [`wait_readable`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// The descriptor waited on has something to read.
    Readable,
    /// The other descriptor was hung up on (a pipe whose reader went away).
    HungUp,
    /// Neither, within the timeout.
    TimedOut,
}

/// Sleeps until `fd` is readable, `hangup` (when given) reports an error or a hang-up, or
/// `timeout_ms` passes (-1: no limit). Nothing runs while it sleeps.
pub fn wait_readable(
    fd: Option<std::os::fd::BorrowedFd<'_>>,
    hangup: Option<std::os::fd::BorrowedFd<'_>>,
    timeout_ms: i32,
) -> io::Result<Ready> {
    use std::os::fd::AsRawFd;
    // A negative descriptor is skipped by poll(2).
    let mut fds = [
        libc::pollfd {
            fd: fd.map_or(-1, |f| f.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: hangup.map_or(-1, |f| f.as_raw_fd()),
            // Errors and hang-ups are reported whatever is asked for.
            events: 0,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is live for the call and holds exactly the two entries passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if fds[1].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        return Ok(Ready::HungUp);
    }
    if fds[0].revents != 0 {
        return Ok(Ready::Readable);
    }
    Ok(Ready::TimedOut)
}

/// Reads what a descriptor has into `buf` in one read(2); returns how many bytes came.
pub fn read(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the buffer is live and writable for the call and the descriptor is borrowed.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
