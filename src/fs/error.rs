//! The mount's errors, and the one function that turns them into errnos.

use crate::codec::CodecError;
use crate::store::StoreError;
use fuser::Errno;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such entry")]
    NotFound,
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    #[error("already exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("invalid name or operation: {0}")]
    Invalid(String),
    #[error("name too long")]
    NameTooLong,
    #[error("read-only")]
    ReadOnly,
    #[error("no such attribute")]
    NoAttribute,
    #[error("operation not supported")]
    NotSupported,
    #[error("file too large: a file in the mount holds at most {} MiB", MAX_FILE >> 20)]
    TooBig,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A scratch file's real file failed: its errno is the reply.
    #[error("scratch file: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon itself failed (a thread could not start).
    #[error("{0}")]
    Daemon(String),
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// The largest file the mount holds: an open file lives in the daemon's memory until it is
/// committed, and its text is parsed and written again as a blob.
pub const MAX_FILE: usize = 64 << 20;

/// What a save (close, fsync, fsyncdir) reports: what the user can act on — text that is
/// not a value (EINVAL), a read-only mount (EROFS), a file too big (EFBIG), a full disk
/// (ENOSPC) — and EIO for anything else (logged with its cause where it arose, by [`errno`]):
/// an application checking close(2) knows only that its data is not saved.
pub fn save_errno(e: Errno) -> Errno {
    if [Errno::EINVAL, Errno::EROFS, Errno::EFBIG, Errno::ENOSPC].contains(&e) {
        e
    } else {
        Errno::EIO
    }
}

/// The errno for an error. Everything unexpected is EIO, logged with its cause.
pub fn errno(e: &FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::NotADirectory => Errno::ENOTDIR,
        FsError::IsADirectory => Errno::EISDIR,
        FsError::Exists => Errno::EEXIST,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::Invalid(_) => Errno::EINVAL,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
        FsError::ReadOnly => Errno::EROFS,
        FsError::NoAttribute => Errno::NO_XATTR,
        FsError::NotSupported => Errno::EOPNOTSUPP,
        FsError::Daemon(why) => {
            log::error!("{why}");
            Errno::EIO
        }
        FsError::TooBig => Errno::EFBIG,
        FsError::Codec(CodecError::NotUtf8 | CodecError::TooDeep | CodecError::NotJson { .. }) => {
            Errno::EINVAL
        }
        FsError::Store(s) => match s {
            StoreError::NotFound(_) => Errno::ENOENT,
            StoreError::NotADirectory(_) => Errno::ENOTDIR,
            StoreError::IsADirectory(_) => Errno::EISDIR,
            StoreError::Exists(_) => Errno::EEXIST,
            StoreError::NotEmpty(_) => Errno::ENOTEMPTY,
            StoreError::InvalidName(_) | StoreError::Invalid(_) => Errno::EINVAL,
            StoreError::Codec(
                CodecError::NotUtf8 | CodecError::TooDeep | CodecError::NotJson { .. },
            ) => Errno::EINVAL,
            other if no_space(other) => {
                log::error!("{other}");
                Errno::ENOSPC
            }
            other => {
                log::error!("{other}");
                Errno::EIO
            }
        },
        FsError::Codec(other) => {
            log::error!("{other}");
            Errno::EIO
        }
        FsError::Io(io) => match io.raw_os_error() {
            Some(n) => Errno::from_i32(n),
            None => {
                log::error!("{io}");
                Errno::EIO
            }
        },
    }
}

/// Whether the repository's disk (or quota) is full: the save fails with ENOSPC, as a write
/// on a full disk does. libgit2 reports the OS's error in its message only.
fn no_space(e: &StoreError) -> bool {
    const NO_SPACE: &str = "No space left on device";
    match e {
        StoreError::Io(io) => {
            io.raw_os_error() == Some(libc::ENOSPC) || io.to_string().contains(NO_SPACE)
        }
        StoreError::Git(g) => g.message().contains(NO_SPACE),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let table: Vec<(FsError, Errno)> = vec![
            (FsError::NotFound, Errno::ENOENT),
            (FsError::NotADirectory, Errno::ENOTDIR),
            (FsError::IsADirectory, Errno::EISDIR),
            (FsError::Exists, Errno::EEXIST),
            (FsError::NotEmpty, Errno::ENOTEMPTY),
            (FsError::Invalid("x".into()), Errno::EINVAL),
            (FsError::NameTooLong, Errno::ENAMETOOLONG),
            (FsError::ReadOnly, Errno::EROFS),
            (FsError::NoAttribute, Errno::NO_XATTR),
            (FsError::TooBig, Errno::EFBIG),
            (
                FsError::Store(StoreError::Locked("refs/heads/main.lock".into())),
                Errno::EIO,
            ),
            (FsError::Codec(CodecError::NotUtf8), Errno::EINVAL),
            (
                FsError::Store(StoreError::NotFound("a".into())),
                Errno::ENOENT,
            ),
            (
                FsError::Store(StoreError::InvalidName("a".into())),
                Errno::EINVAL,
            ),
            (FsError::Store(StoreError::Corrupt("x".into())), Errno::EIO),
            (FsError::Store(StoreError::Contended(3)), Errno::EIO),
            (
                FsError::Store(StoreError::Io(std::io::Error::from_raw_os_error(
                    libc::ENOSPC,
                ))),
                Errno::ENOSPC,
            ),
            (
                FsError::Store(StoreError::Git(git2::Error::new(
                    git2::ErrorCode::GenericError,
                    git2::ErrorClass::Os,
                    "failed to write object: No space left on device",
                ))),
                Errno::ENOSPC,
            ),
            (
                FsError::Store(StoreError::Io(std::io::Error::from_raw_os_error(
                    libc::EACCES,
                ))),
                Errno::EIO,
            ),
            (
                FsError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
                Errno::ENOSPC,
            ),
        ];
        for (e, want) in table {
            assert_eq!(errno(&e), want, "{e:?}");
        }
    }

    #[test]
    fn a_save_reports_what_the_user_can_act_on_and_eio_for_the_rest() {
        for e in [Errno::EINVAL, Errno::EROFS, Errno::EFBIG, Errno::ENOSPC] {
            assert_eq!(save_errno(e), e);
        }
        for e in [
            Errno::ENOENT,
            Errno::EISDIR,
            Errno::EEXIST,
            Errno::EIO,
            Errno::ENOTDIR,
        ] {
            assert_eq!(save_errno(e), Errno::EIO);
        }
        assert_eq!(errno(&FsError::Daemon("a thread died".into())), Errno::EIO);
    }
}
