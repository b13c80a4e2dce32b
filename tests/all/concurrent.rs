//! Several writers on one branch at once: two mounts, the CLI and plain git (a clone that
//! commits and pushes). Every committed change survives, nobody deadlocks, and both mounts
//! show the merged value.

use crate::mount::harness::{Mount, VALFS};
use serde_json::json;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const N: usize = 25;

/// Waits for a writer (killed by its PID after `limit`: a deadlock fails the test).
fn finish(name: &str, mut child: Child, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                st.success(),
                "{name} failed ({st}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {limit:?}: a deadlock?");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_mounts_the_cli_and_git_write_at_once_and_nothing_is_lost() {
    let m = Mount::new(r#"{"shared": 0}"#);
    let mnt2 = m.out.join("mnt2");
    let second = m
        .cmd(VALFS)
        .arg("--repo")
        .arg(&m.repo)
        .args(["mount", "--daemon"])
        .arg(&mnt2)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "second mount: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Unmounted on drop, also when the test fails.
    struct Unmount<'a>(&'a Mount, std::path::PathBuf);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.valfs(&["umount", self.1.to_str().unwrap()]);
        }
    }
    let _second = Unmount(&m, mnt2.clone());

    let clone = m.out.join("clone");
    let st = m
        .cmd("git")
        .args(["clone", "-q", "-b", "main"])
        .arg(&m.repo)
        .arg(&clone)
        .status()
        .unwrap();
    assert!(st.success());

    let spawn = |script: String| {
        m.cmd("bash")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let started = Instant::now();
    let writers = vec![
        (
            "mount 1",
            spawn(format!(
                "cd {} && for i in $(seq 1 {N}); do echo $i > a$i; echo $i > shared; done",
                m.mnt.display()
            )),
        ),
        (
            "mount 2",
            spawn(format!(
                "cd {} && for i in $(seq 1 {N}); do echo $i > b$i; mkdir d$i; done",
                mnt2.display()
            )),
        ),
        (
            "the CLI",
            spawn(format!(
                "for i in $(seq 1 {N}); do \"$VALFS\" --repo \"$REPO\" set c$i $i || exit 1; done"
            )),
        ),
        (
            "git",
            spawn(format!(
                "cd {} && git config user.name t && git config user.email t@t && \
                 for i in $(seq 1 {N}); do echo $i > g$i && git add g$i && git commit -qm g$i || exit 1; \
                   for try in $(seq 1 50); do git push -q origin main 2>/dev/null && break; \
                     git pull -q --rebase origin main || exit 1; done; \
                 done; git push -q origin main",
                clone.display()
            )),
        ),
    ];
    for (name, child) in writers {
        finish(name, child, Duration::from_secs(120));
    }
    eprintln!(
        "4 writers x {N} changes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let v = m.head_value();
    for i in 1..=N {
        for k in ["a", "b", "c", "g"] {
            assert_eq!(v[format!("{k}{i}")], json!(i), "{k}{i} in {v}");
        }
        assert_eq!(v[format!("d{i}")], json!({}));
    }
    assert_eq!(v["shared"], json!(N));
    m.fsck();
    // Every change is in the history, none was rewritten away: 5 N commits by the mounts, N
    // by the CLI and N by git (plus the shared key's N).
    assert!(m.commits() >= 6 * N, "{} commits", m.commits());

    // Both mounts show the merged value (other writers show within a second or so).
    for mnt in [&m.mnt, &mnt2] {
        let ok = m.wait_for(Duration::from_secs(5), || {
            ["a", "b", "c", "g"].iter().all(|k| {
                std::fs::read_to_string(mnt.join(format!("{k}{N}"))).ok() == Some(format!("{N}\n"))
            })
        });
        assert!(ok, "{} does not show the merged value", mnt.display());
    }
}
