//! Open files behave as on a disk: a descriptor keeps reading, writing and `fstat`ing the file
//! it opened when the name goes away (unlinked, renamed over, removed by another writer), its
//! size is the size of what it reads (also after `fsync`, also through `mmap`), a new file whose
//! first save is refused leaves nothing behind, and names too long for any entry get
//! ENAMETOOLONG from every call.

use crate::mount::harness::Mount;
use serde_json::json;

const DOC: &str = r#"{"name": "Joe", "age": 41, "sub": {"a": 1}}"#;
const ENAMETOOLONG: i32 = 36;

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
