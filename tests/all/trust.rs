//! Regression tests of the trust issue: what a user sets (modes, owners) and who an entry is
//! (its inode number) survive the kernel forgetting inodes, renames and remounts; a second,
//! unprivileged user on an `--allow-other` mount is kept out by what the first one set.

use crate::mount::harness::{self, Mount};
use std::time::{Duration, Instant};

const DOC: &str = r#"{"cfg": {"a": 1, "b": 2}, "v": [10, 11, 12], "name": "Joe"}"#;

/// Waits until the kernel holds no inode of the mount but its root (it forgot the rest).
fn wait_forgotten(m: &Mount) {
    let in_use = || m.sh_ok("echo $(( $(stat -f -c '%c - %d' .) ))");
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_use() != "0\n" {
        assert!(Instant::now() < deadline, "the kernel kept {} inodes", in_use());
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ----- identity -----

#[test]
fn an_entry_keeps_its_number_after_the_kernel_forgets_it() {
    let held = harness::hold_caches();
    let m = Mount::new(DOC);
    let a = m.sh_ok("stat -c %i cfg/a");
    harness::drop_caches_held(&held);
    wait_forgotten(&m);
    // nano's lock file, made first after the drop, must not take `a`'s number.
    let out = m.sh_ok("echo x > cfg/.new.swp; stat -c %i cfg/.new.swp cfg/a");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], a.trim(), "cfg/a changed number");
    assert_ne!(lines[0], a.trim(), ".new.swp took a's number");
}

#[test]
fn numbers_stay_the_same_whatever_order_paths_are_looked_up_in() {
    let held = harness::hold_caches();
    let mut m = Mount::new(DOC);
    let numbers = |m: &Mount, order: &str| -> Vec<String> {
        m.sh_ok(&format!(
            "find . -path ./.history -prune -o -print | sort {order} | while read -r f; do stat -c '%i %n' \"$f\"; done | sort -k2"
        ))
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let before = numbers(&m, "");
    harness::drop_caches_held(&held);
    wait_forgotten(&m);
    assert_eq!(numbers(&m, "-r"), before);
    // And at the next mount.
    m.unmount();
    m.spawn();
    assert_eq!(numbers(&m, "-r"), before);
}

#[test]
fn listings_give_the_numbers_stat_gives() {
    let m = Mount::new(DOC);
    // os.scandir's inode() is the listing's d_ino; os.stat asks for the attributes.
    let script = r#"
import os, sys
bad = []
for top in [".", "cfg", "v", ".history", ".history/HEAD", ".history/HEAD/cfg"]:
    for e in os.scandir(top):
        if e.inode() != os.stat(e.path, follow_symlinks=False).st_ino:
            bad.append(e.path)
print(" ".join(bad))
"#;
    // Listed before and after the entries were looked up.
    for _ in 0..2 {
        let out = m
            .cmd("python3")
            .args(["-c", script])
            .current_dir(&m.mnt)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "d_ino != st_ino");
    }
}

#[test]
fn history_entries_have_numbers_of_their_own() {
    let m = Mount::new(DOC);
    m.one_save("echo 2 > cfg/a", &["cfg/a"]);
    let out = m.sh_ok("find . .history/HEAD .history/HEAD~1 -printf '%i %p\\n' 2>/dev/null | grep -v '^[0-9]* \\./\\.history'");
    let mut inos: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let n = inos.len();
    inos.sort_unstable();
    inos.dedup();
    assert_eq!(inos.len(), n, "numbers shared:\n{out}");
    // cp takes files with one number for hard links: every element is copied.
    m.sh_ok(r#"cp -a .history/HEAD~1/v "$OUT/v" && cp -r .history/HEAD/cfg "$OUT/cfg""#);
    assert_eq!(m.sh_ok(r#"ls "$OUT/v" "$OUT/cfg" | tr '\n' ' '"#), format!("{}/cfg:\na\nb\n\n{}/v:\n0\n1\n2\n", m.out.display(), m.out.display()).replace('\n', " "));
}
