//! What valfs tells the kernel over its FUSE connection that fuser has no call for: the epoch
//! notice (`FUSE_NOTIFY_INC_EPOCH`), written on the wire by hand.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// The notify code of `FUSE_NOTIFY_INC_EPOCH` (Linux 6.16), sent in the header's error field.
const FUSE_NOTIFY_INC_EPOCH: i32 = 8;

/// A descriptor of this process's FUSE connection (`/dev/fuse`), duplicated so it stays valid
/// whatever the session does with its own: for notifications fuser has no call for.
/// The daemon runs one mount per process, so any `/dev/fuse` descriptor is that mount's.
pub(super) fn fuse_device() -> Option<OwnedFd> {
    let is_fuse = |fd: i32| {
        std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|t| t == Path::new("/dev/fuse"))
    };
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if is_fuse(fd) {
            // The descriptor may have been closed (or its number reused) since: the copy is
            // checked again.
            return crate::sys::dup(fd)
                .ok()
                .filter(|d| is_fuse(crate::sys::raw(d)));
        }
    }
    None
}

/// Tells the kernel that every name it caches on this FUSE connection may now mean something
/// else (`FUSE_NOTIFY_INC_EPOCH`, Linux 6.16): each cached entry is looked up again at its next
/// use. It takes no lock in the kernel, so it is safe from inside any request handler. Fails
/// (EINVAL) on kernels without it.
pub(super) fn fuse_inc_epoch(dev: &OwnedFd) -> io::Result<()> {
    crate::sys::write(dev.as_fd(), &inc_epoch_notice())?;
    Ok(())
}

/// The notice: a bare `struct fuse_out_header { u32 len; i32 error (the notify code); u64
/// unique (0) }`, in the machine's byte order.
fn inc_epoch_notice() -> [u8; 16] {
    let mut header = [0u8; 16];
    header[0..4].copy_from_slice(&16u32.to_ne_bytes());
    header[4..8].copy_from_slice(&FUSE_NOTIFY_INC_EPOCH.to_ne_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_notice_is_a_bare_out_header_with_the_notify_code() {
        let n = inc_epoch_notice();
        assert_eq!(u32::from_ne_bytes(n[0..4].try_into().unwrap()), 16);
        assert_eq!(i32::from_ne_bytes(n[4..8].try_into().unwrap()), 8);
        assert_eq!(&n[8..], &[0; 8], "unique is 0 for a notification");
    }
}
