//! Conflicts in the mount: a sync that meets another store's edit of the same key keeps this
//! store's version, shows both sides under `.conflicts/`, and `rm -r` of the conflict's folder or
//! a save of its path resolves it in one commit.

use crate::mount::harness::Mount;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::valfs_ok as valfs;

/// A mount whose `age` conflicts with another store's edit after a sync: ours 60, theirs 50.
fn conflicted(tmp: &Path) -> Mount {
    let m = Mount::new(r#"{"name": "Joe", "age": 41}"#);
    let hub = tmp.join("hub.git");
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&m.repo)
        .arg(&hub)
        .status()
        .unwrap();
    assert!(st.success());
    let other = tmp.join("other.git");
    valfs(&other, &["clone", hub.to_str().unwrap()]);
    valfs(&other, &["set", "age", "50"]);
    valfs(&other, &["sync"]);
    m.valfs_ok(&["remote", "add", "origin", hub.to_str().unwrap()]);
    m.sh_ok("echo 60 > age");
    m.valfs_ok(&["sync"]);
    assert!(
        m.wait_for(Duration::from_secs(5), || m
            .ls("-a")
            .contains(&".conflicts".to_owned())),
        "the root lists .conflicts once there is one: {:?}",
        m.ls("-a")
    );
    m
}

#[test]
fn a_conflict_shows_its_sides_and_rm_r_resolves_it_in_one_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let m = conflicted(tmp.path());
    assert_eq!(m.cat("age"), "60\n", "the value holds ours meanwhile");
    assert_eq!(m.ls(".conflicts"), ["age"]);
    assert_eq!(
        m.ls(".conflicts/age"),
        ["base", "kind", "ours", "path", "theirs"]
    );
    assert_eq!(m.cat(".conflicts/age/base"), "41\n");
    assert_eq!(m.cat(".conflicts/age/ours"), "60\n");
    assert_eq!(m.cat(".conflicts/age/theirs"), "50\n");
    assert_eq!(m.cat(".conflicts/age/kind"), "\"edit/edit\"\n");
    // Read-only but for resolving.
    assert_ne!(m.sh("echo 1 > .conflicts/age/ours").0, 0);
    assert_ne!(m.sh("mv .conflicts/age .conflicts/x").0, 0);
    let before = m.commits();
    m.sh_ok("rm -r .conflicts/age");
    assert_eq!(m.commits(), before + 1, "one commit resolves it");
    assert!(!m.ls("-a").contains(&".conflicts".to_owned()));
    assert_eq!(m.sh("ls .conflicts/age").0, 2);
    assert_eq!(m.cat("age"), "60\n");
    let tree = m.git(&["ls-tree", "--name-only", "main"]);
    assert!(!tree.contains(".valfs-conflicts"), "{tree}");
    m.fsck();
}

#[test]
fn saving_a_conflicted_path_resolves_it_in_the_same_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let m = conflicted(tmp.path());
    let before = m.commits();
    m.sh_ok("echo 55 > age");
    assert_eq!(
        m.commits(),
        before + 1,
        "the save and its resolution are one commit"
    );
    assert_eq!(m.head_value()["age"], serde_json::json!(55));
    let tree = m.git(&["ls-tree", "--name-only", "main"]);
    assert!(!tree.contains(".valfs-conflicts"), "{tree}");
    assert!(
        m.wait_for(Duration::from_secs(3), || !m
            .ls("-a")
            .contains(&".conflicts".to_owned())),
        "{:?}",
        m.ls("-a")
    );
    m.fsck();
}
