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
