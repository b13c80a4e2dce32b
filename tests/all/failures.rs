//! Failed commits: a full disk, a read-only repository, a damaged object, a locked ref. Each
//! time the save fails at `close` (or `fsync`) with ENOSPC for a full disk and EIO otherwise,
//! the log names the cause, the branch and everything committed stay intact, reads keep
//! working, and saves work again once the cause is gone.

use crate::common::Repo;
use crate::mount::harness::Mount;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DOC: &str = r#"{"name": "Joe", "age": 41, "sub": {"deep": {"text": "here"}}, "v": [1, 2]}"#;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Python that saves `age` and closes: its errno is what `close` returned.
fn save_age(n: u32) -> String {
    format!("fd = os.open('age', os.O_WRONLY | os.O_TRUNC)\nos.write(fd, b'{n}\\n')\nos.close(fd)")
}

/// A filesystem mounted over a path for one test; detached on drop (also on failure).
struct Over(PathBuf);

impl Drop for Over {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn sh(script: &str) {
    let out = Command::new("bash").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts, moves the repository onto a tmpfs of `size` mounted in its place, remounts.
fn repo_on_tmpfs(m: &mut Mount, size: &str) -> Over {
    m.unmount();
    let r = m.repo.display();
    sh(&format!("mv {r} {r}.orig && mkdir {r}"));
    sh(&format!("mount -t tmpfs -o size={size} valfs-test {r}"));
    let over = Over(m.repo.clone());
    sh(&format!("cp -a {r}.orig/. {r}/"));
    m.spawn();
    over
}

/// The branch did not move, the value reads as before (through the mount and git), and
/// `git fsck --strict` is clean.
fn intact(m: &Mount, head: &str, value: &serde_json::Value) {
    assert_eq!(m.head(), head, "the branch moved");
    assert_eq!(&m.head_value(), value);
    assert_eq!(m.cat("name"), "\"Joe\"\n", "reads keep working");
    assert_eq!(m.cat("sub/deep/text"), "\"here\"\n");
    m.fsck();
}

#[test]
fn a_full_disk_fails_the_save_with_enospc_until_space_is_freed() {
    let mut m = Mount::new(DOC);
    let _tmpfs = repo_on_tmpfs(&mut m, "2m");
    // Saves made before the disk filled up.
    for n in 1..=3 {
        assert_eq!(m.errno(&save_age(n)), 0);
    }
    let earlier: Vec<String> = m
        .git(&["rev-list", "main"])
        .lines()
        .map(str::to_owned)
        .collect();
    let (head, value) = (m.head(), m.head_value());
    let filler = m.repo.join("filler");
    sh(&format!(
        "dd if=/dev/zero of={} bs=4k 2>/dev/null; true",
        filler.display()
    ));
    assert_eq!(
        m.errno(&save_age(5)),
        ENOSPC,
        "close of a save on a full disk"
    );
    assert_eq!(
        m.errno(
            "fd = os.open('sub/x', os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'1')\nos.fsync(fd)"
        ),
        ENOSPC,
        "fsync of a save on a full disk"
    );
    assert!(
        m.log().contains("No space left on device"),
        "the cause is logged:\n{}",
        m.log_tail()
    );
    intact(&m, &head, &value);
    assert_eq!(m.cat("age"), "3\n", "the failed save is not shown as saved");
    // Every earlier save survives, readable at its commit.
    for (i, c) in earlier.iter().take(3).enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(&m.valfs_ok(&["export", "--at", c])).unwrap();
        assert_eq!(v["age"], json!(3 - i), "save {c} survives");
    }

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(m.errno(&save_age(6)), 0);
    assert_eq!(m.head_value()["age"], json!(6));
    m.fsck();
}

#[test]
fn a_read_only_repository_fails_the_save_with_eio_until_writable() {
    let m = Mount::new(DOC);
    let (head, value) = (m.head(), m.head_value());
    let r = m.repo.display();
    // Root ignores file modes: only a read-only mount stops it.
    sh(&format!("mount --bind {r} {r}"));
    let ro = Over(m.repo.clone());
    sh(&format!("mount -o remount,bind,ro {r}"));
    assert_eq!(m.errno(&save_age(5)), EIO);
    assert_eq!(m.errno("os.mkdir('newdir')"), EIO, "mkdir commits at once");
    assert_eq!(m.errno("os.unlink('name')"), EIO);
    assert!(
        m.log().contains("Read-only file system"),
        "the cause is logged:\n{}",
        m.log_tail()
    );
    intact(&m, &head, &value);
    assert_eq!(
        m.ls(""),
        ["age", "name", "sub", "v"],
        "the failed edits left no trace"
    );

    drop(ro);
    assert_eq!(m.errno(&save_age(6)), 0);
    assert_eq!(m.errno("os.mkdir('newdir')"), 0);
    assert_eq!(m.head_value()["age"], json!(6));
    assert_eq!(m.head_value()["newdir"], json!({}));
    m.fsck();
}

#[test]
fn a_locked_ref_fails_the_save_with_eio_until_unlocked() {
    let m = Mount::new(DOC);
    let (head, value) = (m.head(), m.head_value());
    let lock = m.repo.join("refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    assert_eq!(m.errno(&save_age(5)), EIO, "close");
    let fsync =
        "fd = os.open('age', os.O_WRONLY | os.O_TRUNC)\nos.write(fd, b'7\\n')\nos.fsync(fd)";
    assert_eq!(m.errno(fsync), EIO, "fsync");
    assert!(
        m.log().contains("main.lock exists"),
        "the cause is logged:\n{}",
        m.log_tail()
    );
    let (st, _, err) = m.valfs(&["set", "age", "8"]);
    assert_ne!(st, 0);
    assert!(
        err.contains("main.lock exists"),
        "the CLI names the lock: {err}"
    );
    assert!(lock.exists(), "a live lock is never removed");
    intact(&m, &head, &value);

    std::fs::remove_file(&lock).unwrap();
    assert_eq!(m.errno(&save_age(6)), 0);
    assert_eq!(m.head_value()["age"], json!(6));
    m.fsck();
}

#[test]
fn a_ref_lock_left_by_a_killed_writer_is_cleared_at_mount() {
    let mut m = Mount::new(DOC);
    m.unmount();
    let lock = m.repo.join("refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    m.spawn();
    assert!(!lock.exists());
    assert!(
        m.log().contains("removed the stale lock"),
        "{}",
        m.log_tail()
    );
    assert_eq!(m.errno(&save_age(6)), 0);
    assert_eq!(m.head_value()["age"], json!(6));
    m.fsck();
}

#[test]
fn clear_stale_lock_spares_a_lock_that_is_released() {
    let repo = Repo::new();
    let lock = repo.path().join("refs/heads/main.lock");
    assert!(!repo.store.clear_stale_lock(Duration::ZERO).unwrap());
    std::fs::write(&lock, "").unwrap();
    let l = lock.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::remove_file(l).unwrap();
    });
    assert!(!repo.store.clear_stale_lock(Duration::from_secs(5)).unwrap());
    t.join().unwrap();
    std::fs::write(&lock, "").unwrap();
    assert!(
        repo.store
            .clear_stale_lock(Duration::from_millis(100))
            .unwrap()
    );
    assert!(!lock.exists());
}

/// The loose object file of an object.
fn object_file(repo: &Path, id: &str) -> PathBuf {
    repo.join("objects").join(&id[..2]).join(&id[2..])
}

#[test]
fn a_damaged_object_gives_eio_where_it_is_needed_and_nowhere_else() {
    let mut m = Mount::new(DOC);
    // Make the objects of sub/deep loose (the import packed everything).
    m.sh_ok("echo '\"there\"' > sub/deep/text");
    let blob = m
        .git(&["rev-parse", "main:sub/deep/text"])
        .trim()
        .to_owned();
    let tree = m.git(&["rev-parse", "main:sub/deep"]).trim().to_owned();
    m.unmount();
    let (blob_file, tree_file) = (object_file(&m.repo, &blob), object_file(&m.repo, &tree));
    let (blob_bytes, tree_bytes) = (
        std::fs::read(&blob_file).unwrap(),
        std::fs::read(&tree_file).unwrap(),
    );
    // A corrupt blob (same length, garbage bytes) and a missing tree.
    std::fs::remove_file(&blob_file).unwrap();
    std::fs::write(&blob_file, vec![0x55; blob_bytes.len()]).unwrap();
    std::fs::remove_file(&tree_file).unwrap();
    let head = m.head();
    // A fresh daemon: nothing is in its object cache.
    m.spawn();

    assert_eq!(m.errno("os.listdir('sub/deep')"), EIO, "a missing tree");
    assert_eq!(
        m.errno("open('sub/deep/new', 'w').write('1')"),
        EIO,
        "a save into a missing tree"
    );
    assert_eq!(m.head(), head);
    assert!(
        m.log().contains(&tree),
        "the log names the object:\n{}",
        m.log_tail()
    );
    // Everything else works: reads, saves.
    assert_eq!(m.cat("name"), "\"Joe\"\n");
    assert_eq!(m.errno(&save_age(6)), 0);
    assert_eq!(m.cat("age"), "6\n");

    std::fs::write(&tree_file, &tree_bytes).unwrap();
    assert_eq!(
        m.errno("open('sub/deep/text').read()"),
        EIO,
        "a corrupt blob"
    );
    assert_eq!(
        m.errno("os.listdir('sub/deep')"),
        0,
        "the tree is back:\n{}",
        m.log_tail()
    );
    // Overwriting the damaged file needs not its old bytes: it repairs the value.
    assert_eq!(m.errno("open('sub/deep/text', 'w').write('\"again\"')"), 0);
    assert_eq!(m.cat("sub/deep/text"), "\"again\"\n");
    assert_eq!(m.errno("open('sub/deep/new', 'w').write('1')"), 0);

    // The old commits still hold the corrupt blob: put it back, and git is satisfied.
    std::fs::remove_file(&blob_file).unwrap();
    std::fs::write(&blob_file, &blob_bytes).unwrap();
    m.fsck();
    assert_eq!(
        m.head_value()["sub"],
        json!({"deep": {"text": "again", "new": 1}})
    );
}
