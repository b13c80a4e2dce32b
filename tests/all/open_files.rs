//! Open files behave as on a disk: a descriptor keeps reading, writing and `fstat`ing the file
//! it opened when the name goes away (unlinked, renamed over, removed by another writer), its
//! size is the size of what it reads (also after `fsync`, also through `mmap`), a new file whose
//! first save is refused leaves nothing behind, and names too long for any entry get
//! ENAMETOOLONG from every call.

use crate::mount::harness::Mount;
use serde_json::json;

const DOC: &str = r#"{"name": "Joe", "age": 41, "sub": {"a": 1}}"#;
const ENAMETOOLONG: i32 = 36;

/// Runs Python code (asserts included) in the mount; it must succeed.
fn py(m: &Mount, code: &str) {
    m.python_ok(&format!("import os, mmap, subprocess, time\n{code}"));
}

#[test]
fn an_unlinked_file_still_reads_writes_and_fstats() {
    let m = Mount::new(DOC);
    let commits = m.commits();
    py(
        &m,
        "fd = os.open('age', os.O_RDWR)
os.write(fd, b'hello')
os.unlink('age')
assert os.pread(fd, 10, 0) == b'hello', os.pread(fd, 10, 0)
assert os.fstat(fd).st_size == 5, os.fstat(fd)
os.pwrite(fd, b'J', 0)
os.write(fd, b'!')
assert os.pread(fd, 10, 0) == b'Jello!', os.pread(fd, 10, 0)
assert os.fstat(fd).st_size == 6, os.fstat(fd)
os.ftruncate(fd, 2)
assert os.pread(fd, 10, 0) == b'Je'
os.fsync(fd)
assert os.fstat(fd).st_size == 2
assert not os.path.exists('age')
os.close(fd)
assert not os.path.exists('age')
assert 'age' not in os.listdir('.')",
    );
    assert_eq!(m.head_value(), json!({"name": "Joe", "sub": {"a": 1}}));
    assert_eq!(m.commits(), commits + 1, "the unlink only");
    m.fsck();
}

#[test]
fn an_unlinked_new_file_still_reads_writes_and_leaves_nothing() {
    let m = Mount::new(DOC);
    let commits = m.commits();
    py(
        &m,
        "fd = os.open('sub/new', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'12')
os.unlink('sub/new')
assert os.pread(fd, 10, 0) == b'12'
os.write(fd, b'3')
assert os.fstat(fd).st_size == 3
assert os.pread(fd, 10, 0) == b'123'
os.close(fd)
assert os.listdir('sub') == ['a'], os.listdir('sub')",
    );
    assert_eq!(
        m.head_value(),
        json!({"name": "Joe", "age": 41, "sub": {"a": 1}})
    );
    assert_eq!(m.commits(), commits, "nothing was saved");
}

#[test]
fn a_file_renamed_over_keeps_its_bytes_for_its_descriptor() {
    let m = Mount::new(DOC);
    py(
        &m,
        "fd = os.open('name', os.O_RDWR)
assert os.pread(fd, 10, 0) == b'\"Joe\"\\n'
os.rename('age', 'name')
assert os.pread(fd, 10, 0) == b'\"Joe\"\\n', os.pread(fd, 10, 0)
assert os.fstat(fd).st_size == 6
os.pwrite(fd, b'\"Ann\"\\n', 0)
assert os.pread(fd, 10, 0) == b'\"Ann\"\\n'
os.close(fd)
assert open('name').read() == '41\\n'",
    );
    assert_eq!(m.head_value(), json!({"name": 41, "sub": {"a": 1}}));
    m.fsck();
}

#[test]
fn a_file_renamed_away_is_saved_under_its_new_name() {
    let m = Mount::new(DOC);
    py(
        &m,
        "fd = os.open('age', os.O_RDWR)
os.rename('age', 'sub/years')
os.pwrite(fd, b'42\\n', 0)
assert os.pread(fd, 10, 0) == b'42\\n'
assert os.fstat(fd).st_size == 3
os.close(fd)",
    );
    assert_eq!(
        m.head_value(),
        json!({"name": "Joe", "sub": {"a": 1, "years": 42}})
    );
    m.fsck();
}

#[test]
fn a_key_another_writer_removed_still_reads_for_its_descriptor_and_stays_removed() {
    let m = Mount::new(DOC);
    py(
        &m,
        "fd = os.open('age', os.O_RDWR)
assert os.pread(fd, 10, 0) == b'41\\n'
subprocess.run([os.environ['VALFS'], '--repo', os.environ['REPO'], 'rm', 'age'], check=True)
for _ in range(100):
    if 'age' not in os.listdir('.'):
        break
    time.sleep(0.05)
assert 'age' not in os.listdir('.')
assert os.pread(fd, 10, 0) == b'41\\n', os.pread(fd, 10, 0)
assert os.fstat(fd).st_size == 3
os.pwrite(fd, b'99\\n', 0)
assert os.pread(fd, 10, 0) == b'99\\n'
os.close(fd)
assert 'age' not in os.listdir('.')",
    );
    assert_eq!(m.head_value(), json!({"name": "Joe", "sub": {"a": 1}}));
    m.fsck();
}

#[test]
fn fstat_after_fsync_is_the_size_of_what_the_descriptor_reads() {
    let m = Mount::new(DOC);
    py(
        &m,
        "fd = os.open('name', os.O_RDWR | os.O_TRUNC)
os.write(fd, b'hello')
os.fsync(fd)
assert os.fstat(fd).st_size == 5, os.fstat(fd)
assert os.stat('name').st_size == 5
assert os.pread(fd, 10, 0) == b'hello'
os.write(fd, b' world')
os.fsync(fd)
assert os.fstat(fd).st_size == 11, os.fstat(fd)
assert os.pread(fd, 20, 0) == b'hello world'
os.close(fd)",
    );
    assert_eq!(m.head_value()["name"], json!("hello world"));
    assert_eq!(m.cat("name"), "\"hello world\"\n", "canonical once closed");
}

#[test]
fn mmap_writes_and_msync_keep_the_descriptor_consistent() {
    let m = Mount::new(DOC);
    py(
        &m,
        "fd = os.open('name', os.O_RDWR | os.O_TRUNC)
os.write(fd, b'hello')
os.fsync(fd)
mm = mmap.mmap(fd, 5)
assert mm[:] == b'hello'
mm[0:1] = b'j'
mm.flush()
assert os.fstat(fd).st_size == 5, os.fstat(fd)
assert os.pread(fd, 10, 0) == b'jello', os.pread(fd, 10, 0)
os.ftruncate(fd, 8)
mm.resize(8)
mm[5:8] = b'!!!'
mm.flush()
assert os.fstat(fd).st_size == 8, os.fstat(fd)
assert os.pread(fd, 10, 0) == b'jello!!!'
assert mm[:] == b'jello!!!'
mm.close()
os.close(fd)",
    );
    assert_eq!(m.head_value()["name"], json!("jello!!!"));
}

#[test]
fn a_new_file_whose_first_save_was_refused_leaves_nothing_behind() {
    let m = Mount::new(DOC);
    let commits = m.commits();
    m.sh_ok(
        "mkdir e
printf '\\377\\376' > e/f || true
head -c100 /dev/urandom > e/g || true
[ -z \"$(ls -A e)\" ] || { ls -A e; exit 1; }
rmdir e
[ ! -e e ]",
    );
    assert_eq!(
        m.head_value(),
        json!({"name": "Joe", "age": 41, "sub": {"a": 1}})
    );
    assert_eq!(m.commits(), commits + 2, "mkdir and rmdir");
}

#[test]
fn a_name_over_255_bytes_gives_enametoolong_from_every_call() {
    let m = Mount::new(DOC);
    let long = "x".repeat(256);
    for call in [
        "os.stat(L)",
        "os.lstat('sub/' + L)",
        "os.unlink(L)",
        "os.rmdir(L)",
        "os.chmod(L, 0o600)",
        "os.truncate(L, 0)",
        "os.rename(L, 'b')",
        "os.rename('name', L)",
        "os.rename('name', 'sub/' + L)",
        "open(L, 'w')",
        "open(L)",
        "os.mkdir(L)",
        "os.symlink('name', L)",
        "os.link('name', L)",
        "os.getxattr(L, 'user.valfs.type')",
        "os.setxattr(L, 'user.x', b'1')",
        "os.utime(L)",
        "os.chown(L, 0, 0)",
    ] {
        assert_eq!(
            m.errno(&format!("L = '{long}'\n{call}")),
            ENAMETOOLONG,
            "{call}"
        );
    }
    // 255 bytes is a name like any other.
    let ok = "y".repeat(255);
    m.sh_ok(&format!(
        "echo 1 > {ok} && [ \"$(cat {ok})\" = 1 ] && rm {ok}"
    ));
    assert_eq!(
        m.head_value(),
        json!({"name": "Joe", "age": 41, "sub": {"a": 1}})
    );
}

#[test]
fn a_refused_fsync_leaves_the_descriptor_consistent_and_a_later_save_works() {
    let m = Mount::new(DOC);
    let commits = m.commits();
    py(
        &m,
        "fd = os.open('name', os.O_RDWR | os.O_TRUNC)
os.write(fd, b'ab')
mm = mmap.mmap(fd, 2)
mm[0:1] = b'\\xff'
try:
    mm.flush()
    raise SystemExit('msync of bytes that are not text saved them')
except OSError as e:
    assert e.errno == 22, e
assert os.fstat(fd).st_size == 2
assert os.pread(fd, 10, 0) == b'\\xffb'
assert mm[:] == b'\\xffb'
mm[0:1] = b'a'
mm.flush()
assert os.fstat(fd).st_size == 2
assert os.pread(fd, 10, 0) == b'ab'
mm.close()
os.close(fd)",
    );
    assert_eq!(m.head_value()["name"], json!("ab"));
    assert_eq!(m.commits(), commits + 1);
}
