//! `valfs mount --sync SECONDS`: the mount syncs with the store's remotes by itself, soon after
//! a save and every SECONDS; what another machine pushed appears in the mount; saves go on at
//! full speed while the remote is unreachable, and nothing is lost; `.sync/status` shows the
//! remotes' state.

use crate::mount::harness::Mount;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::valfs_ok as valfs;

fn git_head(repo: &Path) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "main"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// A mounted store with a hub remote, remounted with `--sync 1`.
fn synced_mount(hub: &Path) -> Mount {
    let mut m = Mount::new(r#"{"name": "Joe", "age": 41}"#);
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&m.repo)
        .arg(hub)
        .status()
        .unwrap();
    assert!(st.success());
    m.valfs_ok(&["remote", "add", "origin", hub.to_str().unwrap()]);
    m.unmount();
    m.set_args(&["--sync", "1"]);
    m.spawn();
    m
}

#[test]
fn a_mount_with_sync_sends_its_saves_and_shows_what_others_pushed() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = tmp.path().join("hub.git");
    let m = synced_mount(&hub);
    m.sh_ok("echo 42 > age");
    let mine = m.head();
    assert!(
        until(Duration::from_secs(10), || git_head(&hub) == mine),
        "the save reached the hub"
    );
    // Another machine edits and pushes; the mount shows it soon.
    let other = tmp.path().join("other.git");
    valfs(&other, &["clone", hub.to_str().unwrap()]);
    valfs(&other, &["set", "name", "\"Jim\""]);
    valfs(&other, &["sync"]);
    assert!(
        until(Duration::from_secs(10), || m.cat("name") == "\"Jim\"\n"),
        "the other machine's edit shows in the mount: {}",
        m.cat("name")
    );
    assert_eq!(m.cat("age"), "42\n");
    assert!(m.ls("-a").contains(&".sync".to_owned()));
    let status = m.cat(".sync/status");
    assert!(
        status.contains("remote origin:") && status.contains("last sync:  2"),
        "{status}"
    );
    m.fsck();
}

#[test]
fn saves_go_on_while_the_remote_is_unreachable_and_reach_it_once_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = tmp.path().join("hub.git");
    let m = synced_mount(&hub);
    let away = tmp.path().join("hub-away.git");
    std::fs::rename(&hub, &away).unwrap();
    let before = m.commits();
    let t = Instant::now();
    m.sh_ok("for i in $(seq 50); do echo $i > age; done");
    let took = t.elapsed();
    assert_eq!(
        m.commits(),
        before + 50,
        "every save is a commit, offline too"
    );
    assert!(
        took < Duration::from_secs(20),
        "saves did not wait: {took:?}"
    );
    assert!(
        until(Duration::from_secs(10), || m
            .cat(".sync/status")
            .contains("failing since")),
        "{}",
        m.cat(".sync/status")
    );
    assert!(
        m.log().matches("sync with origin").count() <= 2,
        "an error is logged when it starts, not at every retry:\n{}",
        m.log_tail()
    );
    std::fs::rename(&away, &hub).unwrap();
    let mine = m.head();
    assert!(
        until(Duration::from_secs(10), || git_head(&hub) == mine),
        "the saves reached the hub once it was back"
    );
    m.fsck();
}
