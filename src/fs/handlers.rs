//! The kernel's requests: each handler takes the locks its operation needs (see
//! [`ValFs::run`] and [`ValFs::run_write`]), calls one state operation returning `Result`,
//! and turns the result into a reply.

use super::*;
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

/// A name from the kernel as text. No entry has a name over 255 bytes (longer keys get short
/// names, see [`crate::codec::name`]): a longer one is ENAMETOOLONG, whatever the call.
fn name_str(name: &OsStr) -> Result<&str, Errno> {
    if name.len() > crate::codec::name::NAME_MAX {
        return Err(errno(&FsError::NameTooLong));
    }
    std::str::from_utf8(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

fn file_attr(a: &Attr) -> FileAttr {
    let kind = if a.is_dir {
        FileType::Directory
    } else if a.is_symlink {
        FileType::Symlink
    } else {
        FileType::RegularFile
    };
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind,
        perm: a.perm,
        nlink: match (a.unlinked, a.is_dir, a.subdirs) {
            (true, _, _) => 0,
            (false, true, Some(n)) => n.saturating_add(2),
            (false, true, None) => 1,
            (false, false, _) => 1,
        },
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for ValFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        // The kernel checks a folder's mtime before it serves a cached listing and drops the
        // listing if the mtime moved since it began caching it (every change moves it, see
        // State::stamp): the proof against a listing made just before a change reaching the
        // cache after the change's invalidation. Files' pages are dropped on an mtime change
        // too, as the daemon's own invalidations do.
        let _ = config.add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA);
        // The daemon keeps nothing per open directory: the kernel may open them without a
        // round trip (and the matching release), keeping each listing until the daemon drops
        // it (every change to a directory does, see State::take_inval).
        let silent = config
            .add_capabilities(InitFlags::FUSE_NO_OPENDIR_SUPPORT)
            .is_ok();
        self.silent_opendir
            .store(silent, std::sync::atomic::Ordering::Relaxed);
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.background(State::settle) {
            log::error!("committing pending changes at unmount failed: {e}");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let n = match name_str(name) {
            Ok(n) => n,
            Err(e) if e == Errno::ENAMETOOLONG => return reply.error(e),
            // No entry has a name that is not UTF-8.
            Err(_) => return reply.error(Errno::ENOENT),
        };
        match self.run("lookup", |s| s.lookup(parent.0, n)) {
            Ok((a, naming)) => reply.entry_with_ttls(
                self.attr_ttl(&a),
                self.entry_ttl(&a, naming),
                &file_attr(&a),
                Generation(0),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.run("getattr", |s| s.getattr(ino.0)) {
            Ok(a) => reply.attr(self.attr_ttl(&a), &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        match self.run_write("setattr", |s| s.setattr(ino.0, set)) {
            Ok(a) => reply.attr(self.attr_ttl(&a), &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.run("readlink", |s| s.readlink(ino.0)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let who = creator(req, mode, umask);
        let r = name_str(name).and_then(|n| {
            self.run_write("mkdir", |s| {
                Ok((s.mkdir(parent.0, n, who)?, s.naming(parent.0)))
            })
        });
        match r {
            Ok((a, naming)) => reply.entry_with_ttls(
                self.attr_ttl(&a),
                self.entry_ttl(&a, naming),
                &file_attr(&a),
                Generation(0),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r =
            name_str(name).and_then(|n| self.run_write("unlink", |s| s.remove(parent.0, n, false)));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r =
            name_str(name).and_then(|n| self.run_write("rmdir", |s| s.remove(parent.0, n, true)));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = name_str(link_name).and_then(|n| {
            self.run_write("symlink", |s| {
                s.symlink(
                    parent.0,
                    n,
                    target.as_os_str().as_bytes(),
                    creator(req, 0o777, 0),
                )
            })
        });
        match r {
            Ok(a) => reply.entry(self.attr_ttl(&a), &file_attr(&a), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        let r = name_str(name).and_then(|a| {
            name_str(newname).and_then(|b| {
                self.run_write("rename", |s| {
                    s.rename(parent.0, a, newparent.0, b, noreplace, exchange)
                })
            })
        });
        match r {
            Ok(inval) => {
                reply.ok();
                self.invalidate_later(inval);
            }
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let acc = flags.0 & libc::O_ACCMODE;
        let write = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let append = flags.0 & libc::O_APPEND != 0;
        // A reader's close has nothing to save: the kernel need not send a flush for it.
        let noflush = if write || truncate {
            FopenFlags::empty()
        } else {
            FopenFlags::FOPEN_NOFLUSH
        };
        let open = |s: &mut State| s.open(ino.0, write, truncate, append);
        let opened = if write || truncate {
            self.run_write("open", open)
        } else {
            self.run("open", open)
        };
        match opened {
            Ok(o) => {
                let keep = o.keep || o.fill.is_some_and(|f| self.fill(ino, &f));
                // Without keep, the kernel drops what it cached of the file and reads it again.
                let keep = if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(o.fh), keep | noflush);
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.run("read", |s| s.read(fh.0, offset, size)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.run("write", |s| s.write(fh.0, offset, data)) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // A big file is parsed and written without the lock, then committed with it.
        let prepared = self.lock().prepare_flush(fh.0);
        let result = match prepared {
            Some(p) => {
                // On a thread of lower priority: on a busy machine, reads of the mount go first.
                let written = std::thread::Builder::new()
                    .name("valfs-save".into())
                    .spawn(move || {
                        crate::sys::lower_priority(10);
                        p.write()
                    })
                    .map_err(|e| FsError::Daemon(e.to_string()))
                    .and_then(|t| {
                        t.join()
                            .unwrap_or_else(|_| Err(FsError::Daemon("the save panicked".into())))
                    });
                self.run_write("flush", |s| s.finish_flush(fh.0, written))
            }
            None => self.run_write("flush", |s| s.flush(fh.0)),
        };
        match result {
            Ok(inval) => {
                // close(2) holds no directory lock: safe to invalidate before replying, so the
                // next lookup already sees a file that became a folder.
                self.invalidate(&inval);
                reply.ok();
            }
            Err(e) => reply.error(save_errno(e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let release = |st: &mut State| {
            let mut inval = st.release(fh.0);
            inval.absorb(st.take_inval());
            inval
        };
        // A reader's release saves nothing and needs only the state; the last release of a
        // file with changes not saved saves them: a writer, committing at once.
        let plain = self.lock();
        let inval = if plain.release_saves(fh.0) {
            drop(plain);
            self.background(release)
        } else {
            let mut st = plain;
            let inval = release(&mut st);
            st.bound_git_cache();
            inval
        };
        // The epoch at once, the rest on another thread.
        self.invalidate_later(inval);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.run_write("fsync", |s| s.fsync(fh.0)) {
            Ok(inval) => {
                reply.ok();
                self.invalidate_later(inval);
            }
            Err(e) => reply.error(save_errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self
            .silent_opendir
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // The kernel opens directories by itself from now on, caching their listings.
            return reply.error(Errno::ENOSYS);
        }
        // A kernel without that: it reads each listing again at every open.
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.lock();
        let mut added = false;
        // An offset is the listing's number and a position in it (see State::listing).
        let (no, at) = (
            (offset >> 32) as u32,
            (offset & u64::from(u32::MAX)) as usize,
        );
        let listed = st
            .listing(ino.0, (offset != 0).then_some(no))
            .map(|(no, entries)| {
                let dots = [(ino.0, ".", true), (ino.0, "..", true)];
                let head = dots.iter().copied().enumerate().skip(at);
                let rest = entries
                    .iter()
                    .enumerate()
                    .skip(at.saturating_sub(2))
                    .map(|(i, l)| (i + 2, (l.ino, l.name.as_str(), l.is_dir)));
                for (i, (child, name, is_dir)) in head.chain(rest) {
                    let kind = if is_dir {
                        FileType::Directory
                    } else {
                        FileType::RegularFile
                    };
                    let next = (u64::from(no) << 32) | (i + 1) as u64;
                    if reply.add(INodeNo(child), next, kind, name) {
                        break;
                    }
                    added = true;
                }
                no
            });
        if let Ok(no) = listed
            && !added
        {
            // The kernel reads past the end once it has all: the listing may go.
            st.listing_read(ino.0, no);
        }
        // A listing closes a vector's gaps: the names after them changed meaning.
        let inval = st.take_inval();
        st.bound_git_cache();
        drop(st);
        // The kernel holds the folder's lock: the epoch now, the rest on another thread.
        self.invalidate_later(inval);
        match listed {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.run_write("fsyncdir", |s| {
            s.commit_pending().and_then(|_| Ok(s.store().sync()?))
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(save_errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let files = self.lock().inodes_in_use();
        reply.statfs(
            1 << 24,
            1 << 23,
            1 << 23,
            files + (1 << 20),
            1 << 20,
            4096,
            255,
            4096,
        );
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let r = name_str(name)
            .and_then(|n| self.run_write("setxattr", |s| s.setxattr(ino.0, n, value)));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = name_str(name).and_then(|n| self.run("getxattr", |s| s.getxattr(ino.0, n)));
        reply_xattr(r, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        reply_xattr(self.run("listxattr", |s| s.listxattr(ino.0)), size, reply);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r =
            name_str(name).and_then(|n| self.run_write("removexattr", |s| s.removexattr(ino.0, n)));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.run("access", |s| s.getattr(ino.0)) {
            Ok(a) if a.read_only && mask.contains(AccessFlags::W_OK) => reply.error(Errno::EROFS),
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let who = creator(req, mode, umask);
        let exclusive = flags & libc::O_EXCL != 0;
        let truncate = flags & libc::O_TRUNC != 0;
        let append = flags & libc::O_APPEND != 0;
        let r = name_str(name).and_then(|n| {
            self.run_write("create", |s| {
                let (a, fh) = s.create(parent.0, n, who, exclusive, truncate, append)?;
                Ok((a, fh, s.naming(parent.0)))
            })
        });
        match r {
            // One TTL for the entry and the attributes here: the name's (zero in a vector when
            // the kernel cannot be told of shifted names, see lookup).
            Ok((a, fh, naming)) => reply.created(
                self.entry_ttl(&a, naming).min(self.attr_ttl(&a)),
                &file_attr(&a),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

fn reply_xattr(r: Result<Vec<u8>, Errno>, size: u32, reply: ReplyXattr) {
    match r {
        Ok(d) if size == 0 => reply.size(d.len() as u32),
        Ok(d) if d.len() <= size as usize => reply.data(&d),
        Ok(_) => reply.error(Errno::ERANGE),
        Err(e) => reply.error(e),
    }
}

/// Who asks for a new entry: the mode less the caller's umask, the caller's user and group.
fn creator(req: &Request, mode: u32, umask: u32) -> state::Creator {
    state::Creator {
        mode,
        umask,
        uid: req.uid(),
        gid: req.gid(),
    }
}
