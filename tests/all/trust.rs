//! Regression tests of the trust issue: what a user sets (modes, owners) and who an entry is
//! (its inode number) survive the kernel forgetting inodes, renames and remounts; a second,
//! unprivileged user on an `--allow-other` mount is kept out by what the first one set.

use crate::mount::harness::{self, Mount};
use crate::mount::type_of;
use std::time::Duration;

const DOC: &str = r#"{"cfg": {"a": 1, "b": 2}, "v": [10, 11, 12], "name": "Joe"}"#;

// ----- identity -----

#[test]
fn an_entry_keeps_its_number_after_the_kernel_forgets_it() {
    let held = harness::hold_caches();
    let m = Mount::new(DOC);
    let a = m.sh_ok("stat -c %i cfg/a");
    harness::drop_caches_held(&held);
    m.wait_forgotten();
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
    m.wait_forgotten();
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
        assert_eq!(m.python_ok(script).trim(), "", "d_ino != st_ino");
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
    assert_eq!(
        m.sh_ok(r#"ls "$OUT/v" "$OUT/cfg" | tr '\n' ' '"#),
        format!(
            "{}/cfg:\na\nb\n\n{}/v:\n0\n1\n2\n",
            m.out.display(),
            m.out.display()
        )
        .replace('\n', " ")
    );
}

// ----- modes and owners -----

/// A mount other users can reach: `--allow-other`, and the test's directory open to them.
fn shared_mount() -> Mount {
    let m = Mount::with_args(DOC, &["--allow-other"]);
    use std::os::unix::fs::PermissionsExt;
    let root = m.mnt.parent().unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

/// Runs a script as the unprivileged user 65534 (nobody): (status, stdout + stderr).
fn as_nobody(m: &Mount, script: &str) -> (i32, String) {
    let (st, out, err) = m.sh(&format!(
        "setpriv --reuid 65534 --regid 65534 --clear-groups bash -c '{}'",
        script.replace('\'', "'\\''")
    ));
    (st, format!("{out}{err}"))
}

#[test]
fn chmod_600_keeps_other_users_out_after_the_kernel_forgets_the_inode() {
    let held = harness::hold_caches();
    let m = shared_mount();
    m.sh_ok("echo s3cret > secret; chmod 600 secret");
    let (st, out) = as_nobody(&m, "cat secret");
    assert_ne!(st, 0, "nobody read it: {out}");
    harness::drop_caches_held(&held);
    m.wait_forgotten();
    assert_eq!(m.sh_ok("stat -c '%a %U' secret"), "600 root\n");
    let (st, out) = as_nobody(&m, "cat secret");
    assert_ne!(st, 0, "nobody read it after the drop: {out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn modes_and_owners_follow_mv_and_go_with_rm() {
    let m = shared_mount();
    m.sh_ok("echo 1 > f; chmod 600 f; chown 65534 f; mv f g");
    assert_eq!(m.sh_ok("stat -c '%a %u:%g' g"), "600 65534:0\n");
    m.sh_ok("mkdir d; echo 1 > d/x; chmod 640 d/x; chmod 750 d; mv d e");
    assert_eq!(m.sh_ok("stat -c '%a' e e/x"), "750\n640\n");
    // Gone with rm: a new entry of that name starts afresh.
    m.sh_ok("rm g; echo 2 > g; rm -r e; mkdir e; echo 3 > e/x");
    assert_eq!(m.sh_ok("stat -c '%a %u' g e e/x"), "644 0\n755 0\n644 0\n");
}

#[test]
fn a_folder_keeps_its_mode_when_its_last_entry_goes() {
    let m = shared_mount();
    m.sh_ok("mkdir d; echo 1 > d/a; chmod 700 d; rm d/a");
    assert_eq!(m.sh_ok("stat -c %a d"), "700\n");
}

#[test]
fn modes_survive_a_remount_and_a_kill_9_right_after_chmod() {
    let mut m = shared_mount();
    m.sh_ok("chmod 600 name; chown 65534:65534 cfg/a; chmod 711 cfg");
    m.unmount();
    m.spawn();
    assert_eq!(
        m.sh_ok("stat -c '%a %u %g' name cfg/a cfg"),
        "600 0 0\n644 65534 65534\n711 0 0\n"
    );
    m.sh_ok("chmod 640 name");
    m.kill9();
    let (st, out, err) = m.valfs(&["umount", m.mnt.to_str().unwrap()]);
    assert_eq!(st, 0, "{out}{err}");
    m.spawn();
    assert_eq!(m.sh_ok("stat -c %a name"), "640\n");
}

#[test]
fn modes_live_beside_the_value_not_in_it() {
    let m = shared_mount();
    let tree = m.git(&["rev-parse", "HEAD^{tree}"]);
    let commits = m.commits();
    m.sh_ok("chmod 600 name; chown 65534 cfg/a");
    assert_eq!(m.git(&["rev-parse", "HEAD^{tree}"]), tree);
    assert_eq!(m.commits(), commits, "chmod made a commit");
    let file = m.repo.join("valfs").join("meta-main");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("0600 - - \"name\""), "{text}");
}

#[test]
fn creation_honours_the_umask_and_the_creating_user() {
    let m = shared_mount();
    m.sh_ok("(umask 077; echo x > f; mkdir d)");
    assert_eq!(m.sh_ok("stat -c %a f d"), "600\n700\n");
    // Another user's new entries are theirs: they can chmod them.
    m.sh_ok("mkdir pub; chmod 777 pub");
    let (st, out) = as_nobody(
        &m,
        "echo 1 > pub/mine && mkdir pub/dir && chmod 600 pub/mine && stat -c \"%a %u %g\" pub/mine pub/dir",
    );
    assert_eq!(st, 0, "{out}");
    assert_eq!(out, "600 65534 65534\n755 65534 65534\n");
}

#[test]
fn forced_owners_own_new_entries_too() {
    let m = Mount::with_args(DOC, &["--allow-other", "--uid", "4242", "--gid", "4343"]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        m.mnt.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    m.sh_ok("echo 1 > f");
    assert_eq!(m.sh_ok("stat -c '%u %g' f name"), "4242 4343\n4242 4343\n");
}

#[test]
fn chmod_chown_and_rename_move_ctime_and_new_names_get_new_times() {
    let m = Mount::new(DOC);
    let times = |p: &str| m.sh_ok(&format!("stat -c '%Y %Z' {p}"));
    m.one_save("echo 1 > f", &["f"]);
    let t0 = times("f");
    std::thread::sleep(Duration::from_millis(1100));
    m.sh_ok("chmod 600 f");
    let t1 = times("f");
    let (m0, c0) = t0.trim().split_once(' ').unwrap();
    let (m1, c1) = t1.trim().split_once(' ').unwrap();
    assert_eq!(m0, m1, "chmod moved mtime");
    assert!(c1 > c0, "chmod did not move ctime: {t0} {t1}");
    std::thread::sleep(Duration::from_millis(1100));
    m.sh_ok("mv f g");
    let (_, c2) = times("g")
        .trim()
        .split_once(' ')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    assert!(c2.as_str() > c1, "rename did not move ctime");
    // Removed, then made again with the same text: new times (also for a key the mount
    // started with).
    for k in ["g", "name"] {
        let before = m.sh_ok(&format!("stat -c %Y {k}"));
        let text = m.cat(k);
        m.sh_ok(&format!("rm {k}"));
        std::thread::sleep(Duration::from_millis(1100));
        m.one_save(&format!("printf '%s\\n' '{}' > {k}", text.trim_end()), &[k]);
        assert_eq!(m.cat(k), text);
        let after = m.sh_ok(&format!("stat -c %Y {k}"));
        assert!(
            after > before,
            "the new {k} has the old one's mtime: {before} {after}"
        );
    }
}

// ----- scratch files -----

#[test]
fn keys_with_scratch_names_are_kept_across_remounts_and_never_committed() {
    let mut m = Mount::new(DOC);
    let names = [
        ".env.sample",
        "tmpconfig",
        "draft~",
        "sed123456",
        "cfg/.a.swp",
    ];
    for n in names {
        m.sh_ok(&format!("printf 'text of {n}\\n' > '{n}'"));
    }
    // Any bytes, any size.
    m.sh_ok("head -c 300000 /dev/urandom > .big.swp; cp .big.swp \"$OUT/big\"");
    assert_eq!(
        m.sh_ok("getfattr --only-values -n user.valfs.type draft~"),
        "scratch"
    );
    m.unmount();
    m.spawn();
    for n in names {
        assert_eq!(m.cat(n), format!("text of {n}\n"), "{n} after remount");
    }
    m.sh_ok("cmp .big.swp \"$OUT/big\"");
    assert!(m.ls("-A").contains(&".env.sample".to_owned()));
    let ever = m.all_paths_ever();
    for n in names {
        assert!(!ever.iter().any(|p| p == n), "{n} was committed: {ever:?}");
    }
    let (_, status, _) = m.valfs(&["status"]);
    assert!(status.contains("scratch: 6 files"), "{status}");
    // Removed, it is gone for good.
    m.sh_ok("rm draft~ .big.swp");
    m.unmount();
    m.spawn();
    assert!(!m.ls("-A").contains(&"draft~".to_owned()));
}

#[test]
fn a_swap_file_survives_a_crash_for_vims_recovery() {
    let mut m = Mount::new(DOC);
    m.sh_ok(
        "head -c 8192 /dev/urandom > .name.swp; cp .name.swp \"$OUT/swp\"; ln -s ghost '.#name'",
    );
    m.kill9();
    let (st, out, err) = m.valfs(&["umount", m.mnt.to_str().unwrap()]);
    assert_eq!(st, 0, "{out}{err}");
    m.spawn();
    m.sh_ok("cmp .name.swp \"$OUT/swp\"");
    assert_eq!(m.sh_ok("readlink '.#name'"), "ghost\n");
}

#[test]
fn scratch_files_map_and_keep_their_mode() {
    let mut m = Mount::new(DOC);
    m.sh_ok("printf 'abcdef' > x.swp; chmod 600 x.swp");
    let py = r#"
import mmap, os
fd = os.open("x.swp", os.O_RDWR)
mm = mmap.mmap(fd, 6)
mm[0:3] = b"XYZ"
mm.flush(); mm.close(); os.close(fd)
"#;
    m.python_ok(py);
    m.unmount();
    m.spawn();
    assert_eq!(m.cat("x.swp"), "XYZdef");
    assert_eq!(m.sh_ok("stat -c %a x.swp"), "600\n");
}

#[test]
fn perl_in_place_and_nanos_save_file_are_one_commit_and_scratch() {
    let m = Mount::new(DOC);
    m.one_save("perl -pi -e s/Joe/Jim/ name", &["name"]);
    assert_eq!(m.cat("name"), "\"Jim\"\n");
    let before = m.commits();
    m.sh_ok("echo draft > name.save; echo x > report.tmp");
    assert_eq!(
        m.commits(),
        before + 1,
        "report.tmp is a key, name.save scratch"
    );
    assert_eq!(m.head_value()["report.tmp"], serde_json::json!("x"));
    assert!(m.head_value().get("name.save").is_none());
}

#[test]
fn a_key_renamed_to_a_backup_name_keeps_its_mode_on_the_backup() {
    let m = shared_mount();
    m.sh_ok("echo s3cret > secret; chmod 600 secret; mv secret secret~");
    assert_eq!(m.sh_ok("stat -c %a secret~"), "600\n");
    let (st, out) = as_nobody(&m, "cat secret~");
    assert_ne!(st, 0, "nobody read the backup: {out}");
}

#[test]
fn the_clis_mv_and_rm_carry_the_modes_the_mount_shows() {
    let m = shared_mount();
    m.sh_ok("chmod 600 name; chmod 640 cfg/a");
    m.valfs_ok(&["mv", "name", "secret"]);
    m.valfs_ok(&["rm", "cfg/a"]);
    assert!(
        m.wait_for(Duration::from_secs(5), || m.sh("stat -c %a secret").1
            == "600\n")
    );
    m.valfs_ok(&["set", "cfg/a", "3"]);
    assert!(m.wait_for(Duration::from_secs(5), || m.sh("cat cfg/a").1 == "3\n"));
    assert_eq!(m.sh_ok("stat -c %a secret cfg/a"), "600\n644\n");
}

#[test]
fn link_counts_are_a_disks_folders_count_subfolders_and_a_removed_open_file_has_none() {
    let m = Mount::new(DOC);
    m.sh_ok("mkdir d; mkdir d/e d/f; echo 1 > d/x");
    assert_eq!(m.sh_ok("stat -c %h d d/e d/x"), "4\n2\n1\n");
    let py = r#"
import os
fd = os.open("d/x", os.O_RDONLY)
os.unlink("d/x")
print(os.fstat(fd).st_nlink)
"#;
    assert_eq!(m.python_ok(py), "0\n");
    m.sh_ok("rmdir d/f");
    assert_eq!(m.sh_ok("stat -c %h d"), "3\n");
}

/// `scripts/fsx` (an fsx-style exerciser: reads, writes, mmap reads and writes with msync,
/// truncations, fsyncs on one open file, each checked against a model) on a key and, with any
/// bytes, on a scratch file. The issue's 100,000-operation run is the same script.
#[test]
fn an_fsx_run_on_one_open_file_is_clean() {
    let m = Mount::new(DOC);
    let fsx = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fsx");
    for args in [
        &["k", "--ops", "1500", "--seed", "7"][..],
        &[".k.swp", "--ops", "5000", "--binary"][..],
    ] {
        let out = m.cmd(fsx).args(args).current_dir(&m.mnt).output().unwrap();
        assert!(
            out.status.success(),
            "fsx {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_set_group_id_folder_gives_its_group_to_what_is_made_in_it() {
    let m = shared_mount();
    m.sh_ok("mkdir shared; chown 0:4242 shared; chmod 2777 shared");
    let (st, out) = as_nobody(
        &m,
        "echo 1 > shared/f && mkdir shared/d && stat -c \"%a %u %g\" shared/f shared/d",
    );
    assert_eq!(st, 0, "{out}");
    assert_eq!(out, "644 65534 4242\n2755 65534 4242\n");
}

// ----- found by review -----

/// The root's entry is the empty path: pruning took it for a path the value lacks, and its
/// removal (`rm ""`) dropped every mode at the next mount.
#[test]
fn a_chmod_of_the_mount_root_keeps_every_mode_across_remounts() {
    let mut m = shared_mount();
    m.sh_ok("chmod 600 name; chmod 700 .");
    m.unmount();
    m.spawn();
    assert_eq!(m.sh_ok("stat -c %a . name"), "700\n600\n");
}

/// A scratch symlink must never lead a scratch file's bytes out of the store's scratch folder,
/// whatever renames made of the folders around it.
#[test]
fn a_scratch_symlink_never_leads_writes_outside_the_scratch_folder() {
    let m = Mount::new(r#"{"a": {}, "b": {}}"#);
    let outside = m.out.join("escape");
    std::fs::create_dir(&outside).unwrap();
    m.sh_ok(&format!("mkdir a/e~; ln -s '{}' b/e~", outside.display()));
    let py = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
if libc.renameat2(-100, b"a", -100, b"b", RENAME_EXCHANGE) != 0:
    raise OSError(ctypes.get_errno(), "renameat2")
try:
    with open("b/e~/XXabcdef", "w") as f:
        f.write("x")
except OSError as e:
    print("refused", e.errno)
"#;
    m.python_ok(py);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "a file was written outside"
    );
}

/// With coalescing, a removal's modes were dropped at the commit, after the name was made
/// again: `rm a; (umask 077; echo 2 > a)` showed 644 once committed.
#[test]
fn coalesced_removal_then_creation_keeps_the_new_entrys_mode() {
    let mut m = Mount::with_args(r#"{"a": 1, "b": 2}"#, &["--coalesce", "200"]);
    m.sh_ok("chmod 640 a; rm a; (umask 077; echo 2 > a); mv b c; mv c b; chmod 600 b");
    std::thread::sleep(Duration::from_millis(800));
    m.unmount();
    m.spawn();
    assert_eq!(m.sh_ok("stat -c %a a b"), "600\n600\n");
}

/// A swap file in a vector's element follows the element when a removal before it closes
/// its gap (it was left under the old index: ENOENT, and at the next mount under another
/// element).
#[test]
fn scratch_files_in_a_vector_element_follow_it_when_indices_shift() {
    let mut m = Mount::new(r#"{"v": [{"x": 0}, {"x": 1}, {"x": 2}]}"#);
    m.sh_ok("echo swap > v/2/.x.swp; rm -r v/0; ls v >/dev/null");
    assert_eq!(m.cat("v/1/x"), "2\n");
    assert_eq!(m.cat("v/1/.x.swp"), "swap\n");
    m.unmount();
    m.spawn();
    assert_eq!(m.cat("v/1/.x.swp"), "swap\n");
    assert!(!m.ls("-A v/0").contains(&".x.swp".to_owned()));
}

/// A file created in a vector's gap (mv from another filesystem onto an element) took the
/// next element's mode at the next mount: the journal had no insert to move it back up.
#[test]
fn an_element_written_into_a_gap_leaves_the_next_elements_mode_alone() {
    let mut m = shared_mount();
    m.sh_ok(r#"echo '[10, 11, 12]' > v2; chmod 600 v2/2; (umask 077; printf '7\n' > "$OUT/b"); mv "$OUT/b" v2/1"#);
    assert_eq!(m.head_value()["v2"], serde_json::json!([10, 7, 12]));
    assert_eq!(m.sh_ok("stat -c %a v2/1 v2/2 v2/0"), "600\n600\n644\n");
    m.unmount();
    m.spawn();
    assert_eq!(m.sh_ok("stat -c %a v2/1 v2/2 v2/0"), "600\n600\n644\n");
}

/// A name shaped like a listed version but not one (an impossible time) sent resolution
/// between the store and the index until the stack overflowed: the CLI aborted and the mount
/// died.
#[test]
fn a_malformed_version_name_is_unknown_not_a_crash() {
    let m = Mount::new(DOC);
    for name in [
        "2026-13-01T000000Z-00-1234567",
        "2026-02-30T000000Z-x",
        "2026-11-21T100000Zx",
    ] {
        assert_eq!(m.errno(&format!("os.stat('.history/{name}')")), 2, "{name}");
        let (st, _, err) = m.valfs(&["get", "--at", name, "name"]);
        assert_eq!(st, 1, "{name}: {err}");
        assert!(err.contains("unknown revision"), "{err}");
    }
    assert_eq!(m.cat("name"), "\"Joe\"\n");
}

/// `cp -a` sets modes on the padded names (`00`, `01`, …) it copies; once the folder is a
/// vector again they belong to the elements' indices (a later removal shifted stale entries
/// onto the wrong elements).
#[test]
fn modes_copied_onto_padded_names_follow_the_elements_when_retyped_as_a_vector() {
    let m = shared_mount();
    m.sh_ok("echo '[0,1,2,3,4,5,6,7,8,9,10,11]' > big");
    let rev = m.head();
    m.sh_ok(&format!(
        "cp -a .history/{}/big copy && setfattr -n user.valfs.type -v vector copy",
        &rev[..12]
    ));
    assert_eq!(type_of(&m, "copy"), "vector");
    let modes = |m: &Mount| m.sh_ok("stat -c %a copy/* | sort | uniq -c | tr -s ' '");
    assert_eq!(modes(&m), " 12 444\n");
    m.sh_ok("rm copy/3; ls copy >/dev/null");
    assert_eq!(modes(&m), " 11 444\n");
}
