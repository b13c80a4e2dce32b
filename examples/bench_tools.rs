//! The small programs `scripts/bench` drives: the baselines it measures valfs against, and
//! timing loops that would be dominated by process start if written in the shell.
//!
//! ```text
//! bench_tools git2-set REPO FROM_BRANCH TO_BRANCH PATH N   the git2 limit for a one-scalar save
//! bench_tools lib-set REPO PATH N                          the same change through valfs's store
//! bench_tools lib-batch REPO PATH EDITS N                  one commit setting EDITS keys of a folder
//! bench_tools save FILE N                                  open(O_TRUNC) + write + close, timed
//! bench_tools ops FILE SECONDS                             warm cat and stat operations per second
//! bench_tools lat FILE -- CMD ARGS...                      cat latency idle, then while CMD runs
//! bench_tools memfs DIR MOUNTPOINT                         a minimal in-memory FUSE filesystem
//! ```
//!
//! Times are printed as one JSON object per command on standard output, in milliseconds.
//! PATH is a path as the mount shows it (vector indices may be padded); `git2-set` finds the
//! blob it names in whatever tree layout the repository has.

use std::collections::HashMap;
use std::error::Error;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant, SystemTime};

type Res<T> = Result<T, Box<dyn Error>>;

/// Saves made before timing starts (caches, allocator, CPU frequency); `BENCH_WARMUP`
/// overrides it for the slow workloads.
fn warmup() -> usize {
    std::env::var("BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}; see the module docs").into())
    };
    match a(0)? {
        "git2-set" => git2_set(FsPath::new(a(1)?), a(2)?, a(3)?, a(4)?, a(5)?.parse()?),
        "lib-set" => lib_set(FsPath::new(a(1)?), a(2)?, a(3)?.parse()?),
        "lib-batch" => lib_batch(FsPath::new(a(1)?), a(2)?, a(3)?.parse()?, a(4)?.parse()?),
        "save" => save(FsPath::new(a(1)?), a(2)?.parse()?),
        "ops" => ops(FsPath::new(a(1)?), a(2)?.parse()?),
        "lat" => lat(FsPath::new(a(1)?), &args[3..]),
        "memfs" => memfs::run(FsPath::new(a(1)?), FsPath::new(a(2)?)),
        other => Err(format!("unknown command {other}").into()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn samples_json(v: &[Duration]) -> String {
    let parts: Vec<String> = v.iter().map(|d| format!("{:.4}", ms(*d))).collect();
    format!("[{}]", parts.join(","))
}

/// A distinct scalar text per iteration, so every save is a real change.
fn text(i: usize) -> String {
    format!("{}\n", 7_000_000 + i)
}

/// The git path of the blob at a mount path: each component as named, or unpadded (vector
/// indices), or else found under a subtree that is not itself named in the path (a layout that
/// splits large collections into buckets).
fn git_path(repo: &git2::Repository, tree: &git2::Tree, comps: &[&str]) -> Res<Vec<String>> {
    let Some((first, rest)) = comps.split_first() else {
        return Ok(Vec::new());
    };
    let unpadded = first.trim_start_matches('0');
    let unpadded = if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() {
        if unpadded.is_empty() { "0" } else { unpadded }
    } else {
        first
    };
    for name in [*first, unpadded] {
        if let Some(e) = tree.get_name(name) {
            if rest.is_empty() {
                return Ok(vec![name.to_owned()]);
            }
            let sub = repo.find_tree(e.id())?;
            let mut p = vec![name.to_owned()];
            p.extend(git_path(repo, &sub, rest)?);
            return Ok(p);
        }
    }
    for e in tree.iter() {
        if e.kind() == Some(git2::ObjectType::Tree) {
            let sub = repo.find_tree(e.id())?;
            if let Ok(found) = git_path(repo, &sub, comps) {
                let mut p = vec![String::from_utf8_lossy(e.name_bytes()).into_owned()];
                p.extend(found);
                return Ok(p);
            }
        }
    }
    Err(format!("{first}: not found").into())
}

/// The git2 limit: write the blob, rewrite its ancestor trees, commit, move the branch.
fn git2_set(repo_path: &FsPath, from: &str, to: &str, path: &str, n: usize) -> Res<()> {
    let repo = git2::Repository::open_bare(repo_path)?;
    let start = repo
        .revparse_single(&format!("refs/heads/{from}"))?
        .peel_to_commit()?;
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let gpath = git_path(&repo, &start.tree()?, &comps)?.join("/");
    let refname = format!("refs/heads/{to}");
    repo.reference(&refname, start.id(), true, "bench: start")?;
    let sig = git2::Signature::now("valfs bench", "bench@localhost")?;
    let odb = repo.odb()?;
    let mut parent = start;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup() + n {
        let t = Instant::now();
        let blob = odb.write(git2::ObjectType::Blob, text(i).as_bytes())?;
        let base = parent.tree()?;
        let tree_id = git2::build::TreeUpdateBuilder::new()
            .upsert(gpath.as_str(), blob, git2::FileMode::Blob)
            .create_updated(&repo, &base)?;
        let tree = repo.find_tree(tree_id)?;
        let id = repo.commit(
            Some(&refname),
            &sig,
            &sig,
            &format!("write {path}"),
            &tree,
            &[&parent],
        )?;
        if i >= warmup() {
            samples.push(t.elapsed());
        }
        parent = repo.find_commit(id)?;
    }
    println!(
        "{{\"git_path\":\"{gpath}\",\"samples\":{}}}",
        samples_json(&samples)
    );
    Ok(())
}

/// The same change through valfs's store, without FUSE: where a save's time goes.
fn lib_set(repo: &FsPath, path: &str, n: usize) -> Res<()> {
    use valfs::store::{Edit, Store};
    use valfs::value::{Path, Value};
    let store = Store::open(repo, "main")?;
    let unpadded: Vec<String> = path
        .split('/')
        .map(|c| {
            if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) {
                c.parse::<u64>().map(|n| n.to_string()).unwrap_or(c.into())
            } else {
                c.to_owned()
            }
        })
        .collect();
    let p = Path::parse(&unpadded.join("/"));
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup() + n {
        let edit = Edit::Set(p.clone(), Value::int(8_000_000 + i as i64));
        let t = Instant::now();
        store.apply(&[edit], "bench set")?;
        if i >= warmup() {
            samples.push(t.elapsed());
        }
    }
    println!("{{\"samples\":{}}}", samples_json(&samples));
    Ok(())
}

/// One commit of `edits` keys set in the map folder at `path` (made when missing), as a
/// coalesced `cp -r` or a save of many files makes it: how the tree editor scales with a batch.
fn lib_batch(repo: &FsPath, path: &str, edits: usize, n: usize) -> Res<()> {
    use valfs::store::{Edit, Store};
    use valfs::value::{Path, Value};
    let store = Store::open(repo, "main")?;
    let folder = Path::parse(path);
    let root = store.commit_root(store.head_commit()?)?;
    if store.node_at(root, &folder).is_err() {
        store.apply(
            &[Edit::Set(folder.clone(), Value::Map(Default::default()))],
            "mkdir",
        )?;
    }
    let mut samples = Vec::with_capacity(n);
    for round in 0..warmup() + n {
        let batch: Vec<Edit> = (0..edits)
            .map(|i| {
                let value = Value::int((round * edits + i) as i64);
                Edit::Set(folder.child(&format!("k{i}")), value)
            })
            .collect();
        let t = Instant::now();
        store.apply(&batch, "bench batch")?;
        if round >= warmup() {
            samples.push(t.elapsed());
        }
    }
    println!("{{\"samples\":{}}}", samples_json(&samples));
    Ok(())
}

/// A save as an editor or `echo > file` makes it: open with O_TRUNC, write, close.
fn save(file: &FsPath, n: usize) -> Res<()> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup() + n {
        let t = Instant::now();
        let mut f = std::fs::File::create(file)?;
        f.write_all(text(i).as_bytes())?;
        drop(f);
        if i >= warmup() {
            samples.push(t.elapsed());
        }
    }
    println!("{{\"samples\":{}}}", samples_json(&samples));
    Ok(())
}

fn cat(file: &FsPath, buf: &mut Vec<u8>) -> Res<()> {
    buf.clear();
    std::fs::File::open(file)?.read_to_end(buf)?;
    Ok(())
}

/// Warm `cat` (open, read, close) and `stat` of one file: operations per second.
fn ops(file: &FsPath, secs: f64) -> Res<()> {
    let mut buf = Vec::new();
    for _ in 0..100 {
        cat(file, &mut buf)?;
    }
    let budget = Duration::from_secs_f64(secs);
    let (mut cats, t) = (0u64, Instant::now());
    while t.elapsed() < budget {
        cat(file, &mut buf)?;
        cats += 1;
    }
    let cat_rate = cats as f64 / t.elapsed().as_secs_f64();
    let (mut stats, t) = (0u64, Instant::now());
    while t.elapsed() < budget {
        std::hint::black_box(std::fs::metadata(file)?);
        stats += 1;
    }
    let stat_rate = stats as f64 / t.elapsed().as_secs_f64();
    println!("{{\"cat_per_s\":{cat_rate:.0},\"stat_per_s\":{stat_rate:.0}}}");
    Ok(())
}

/// Latency of `cat` of one file, idle and then while a command runs (a large save, an
/// import): reads should not wait behind writes.
fn lat(file: &FsPath, cmd: &[String]) -> Res<()> {
    let (prog, rest) = cmd.split_first().ok_or("lat: no command")?;
    let mut buf = Vec::new();
    let pause = Duration::from_millis(2);
    let mut idle = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        cat(file, &mut buf)?;
        idle.push(t.elapsed());
        std::thread::sleep(pause);
    }
    let started = Instant::now();
    let mut child = std::process::Command::new(prog).args(rest).spawn()?;
    let mut busy = Vec::new();
    let status = loop {
        let t = Instant::now();
        cat(file, &mut buf)?;
        busy.push(t.elapsed());
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(pause);
    };
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("{prog}: {status}").into());
    }
    println!(
        "{{\"idle\":{},\"busy\":{},\"cmd_ms\":{:.1}}}",
        samples_json(&idle),
        samples_json(&busy),
        ms(took)
    );
    Ok(())
}

/// FUSE itself: the files of a directory, loaded into memory and served read-only with the
/// same kernel caching valfs asks for (1 s entry/attribute timeouts, page cache kept on open).
/// Its per-operation cost is the floor for any FUSE filesystem on this machine.
mod memfs {
    use super::*;
    use fuser::{
        Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
        LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry,
        ReplyOpen, Request,
    };

    const TTL: Duration = Duration::from_secs(1);

    enum Body {
        File(Vec<u8>),
        Dir {
            entries: Vec<(String, u64)>,
            index: HashMap<String, u64>,
        },
    }

    struct Node {
        parent: u64,
        body: Body,
    }

    pub struct MemFs {
        nodes: Vec<Node>,
        born: SystemTime,
    }

    impl MemFs {
        fn load(dir: &FsPath) -> Res<MemFs> {
            let mut fs = MemFs {
                nodes: vec![
                    // Inode numbers are indices; 0 is unused and 1 is the root.
                    Node {
                        parent: 0,
                        body: Body::File(Vec::new()),
                    },
                ],
                born: SystemTime::now(),
            };
            fs.add(dir, 1)?;
            Ok(fs)
        }

        fn add(&mut self, path: &FsPath, parent: u64) -> Res<u64> {
            let ino = self.nodes.len() as u64;
            if path.is_dir() {
                self.nodes.push(Node {
                    parent,
                    body: Body::Dir {
                        entries: Vec::new(),
                        index: HashMap::new(),
                    },
                });
                let mut names: Vec<PathBuf> = std::fs::read_dir(path)?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()?;
                names.sort();
                let mut entries = Vec::with_capacity(names.len());
                for p in names {
                    let child = self.add(&p, ino)?;
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    entries.push((name, child));
                }
                let index = entries.iter().cloned().collect();
                self.nodes[ino as usize].body = Body::Dir { entries, index };
            } else {
                self.nodes.push(Node {
                    parent,
                    body: Body::File(std::fs::read(path)?),
                });
            }
            Ok(ino)
        }

        fn attr(&self, ino: u64) -> Option<FileAttr> {
            let node = self.nodes.get(ino as usize)?;
            let (kind, size, perm) = match &node.body {
                Body::File(d) => (FileType::RegularFile, d.len() as u64, 0o644),
                Body::Dir { .. } => (FileType::Directory, 0, 0o755),
            };
            Some(FileAttr {
                ino: INodeNo(ino),
                size,
                blocks: size.div_ceil(512),
                atime: self.born,
                mtime: self.born,
                ctime: self.born,
                crtime: self.born,
                kind,
                perm,
                nlink: if kind == FileType::Directory { 2 } else { 1 },
                uid: 0,
                gid: 0,
                rdev: 0,
                blksize: 4096,
                flags: 0,
            })
        }
    }

    impl Filesystem for MemFs {
        fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
            let found = match self.nodes.get(parent.0 as usize).map(|n| &n.body) {
                Some(Body::Dir { index, .. }) => std::str::from_utf8(name.as_bytes())
                    .ok()
                    .and_then(|n| index.get(n).copied()),
                _ => None,
            };
            match found.and_then(|i| self.attr(i)) {
                Some(a) => reply.entry(&TTL, &a, Generation(0)),
                None => reply.error(Errno::ENOENT),
            }
        }

        fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
            match self.attr(ino.0) {
                Some(a) => reply.attr(&TTL, &a),
                None => reply.error(Errno::ENOENT),
            }
        }

        fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
        }

        fn read(
            &self,
            _req: &Request,
            ino: INodeNo,
            _fh: FileHandle,
            offset: u64,
            size: u32,
            _flags: OpenFlags,
            _lock_owner: Option<LockOwner>,
            reply: ReplyData,
        ) {
            match self.nodes.get(ino.0 as usize).map(|n| &n.body) {
                Some(Body::File(d)) => {
                    let start = (offset as usize).min(d.len());
                    let end = (start + size as usize).min(d.len());
                    reply.data(&d[start..end]);
                }
                _ => reply.error(Errno::EISDIR),
            }
        }

        fn readdir(
            &self,
            _req: &Request,
            ino: INodeNo,
            _fh: FileHandle,
            offset: u64,
            mut reply: ReplyDirectory,
        ) {
            let Some(node) = self.nodes.get(ino.0 as usize) else {
                return reply.error(Errno::ENOENT);
            };
            let Body::Dir { entries, .. } = &node.body else {
                return reply.error(Errno::ENOTDIR);
            };
            let parent = if node.parent == 0 { ino.0 } else { node.parent };
            let dots = [(ino.0, "."), (parent, "..")];
            let all = dots
                .iter()
                .map(|(i, n)| (*i, *n))
                .chain(entries.iter().map(|(n, i)| (*i, n.as_str())));
            for (k, (child, name)) in all.enumerate().skip(offset as usize) {
                let kind = match self.nodes.get(child as usize).map(|n| &n.body) {
                    Some(Body::File(_)) => FileType::RegularFile,
                    _ => FileType::Directory,
                };
                if reply.add(INodeNo(child), (k + 1) as u64, kind, name) {
                    break;
                }
            }
            reply.ok();
        }
    }

    pub fn run(dir: &FsPath, mountpoint: &FsPath) -> Res<()> {
        let fs = MemFs::load(dir)?;
        eprintln!("memfs: {} inodes loaded", fs.nodes.len() - 1);
        let mut cfg = Config::default();
        cfg.mount_options = vec![MountOption::FSName("memfs".into()), MountOption::RO];
        cfg.n_threads = Some(4);
        fuser::mount(fs, mountpoint, &cfg)?;
        Ok(())
    }
}
