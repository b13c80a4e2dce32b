//! Namespace operations: create, mkdir, rmdir, unlink, symlink, and settling at unmount.

use super::*;

const DOC: &str = r#"{"name": "Joe", "sub": {"deep": {"x": 1}}, "empty": {}, "v": [1, 2, 3]}"#;

#[test]
fn mkdir_adds_an_empty_map_and_rmdir_removes_it_one_commit_each() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let a = f.st.mkdir(ROOT, "m", ROOT_DIR).expect("mkdir");
    assert!(a.is_dir);
    assert_eq!(a.perm, DIR_MODE);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.messages()[0], "mkdir m");
    assert_eq!(f.value()["m"], serde_json::json!({}));
    assert!(f.names("").contains(&"m".to_owned()));
    f.st.remove(ROOT, "m", true).expect("rmdir");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.messages()[0], "rmdir m");
    assert!(f.value().get("m").is_none());
    assert!(!f.names("").contains(&"m".to_owned()));
    // In a vector, mkdir of the next index appends a map.
    let v = f.ino("v");
    f.st.mkdir(v, "3", ROOT_DIR).expect("mkdir v/3");
    assert_eq!(f.value()["v"], serde_json::json!([1, 2, 3, {}]));
}

#[test]
fn failed_namespace_operations_get_their_errors_and_commit_nothing() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let name = f.ino("name");
    let v = f.ino("v");
    assert!(matches!(
        f.st.mkdir(ROOT, "sub", ROOT_DIR),
        Err(FsError::Exists)
    ));
    assert!(matches!(
        f.st.mkdir(ROOT, "name", ROOT_DIR),
        Err(FsError::Exists)
    ));
    assert!(matches!(f.st.mkdir(v, "1", ROOT_DIR), Err(FsError::Exists)));
    assert!(matches!(
        f.st.mkdir(name, "x", ROOT_DIR),
        Err(FsError::NotADirectory)
    ));
    assert!(matches!(
        f.st.remove(ROOT, "sub", true),
        Err(FsError::NotEmpty)
    ));
    assert!(matches!(
        f.st.remove(ROOT, "name", true),
        Err(FsError::NotADirectory)
    ));
    assert!(matches!(
        f.st.remove(ROOT, "sub", false),
        Err(FsError::IsADirectory)
    ));
    assert!(matches!(
        f.st.remove(ROOT, "nosuch", false),
        Err(FsError::NotFound)
    ));
    assert!(matches!(
        f.st.create(ROOT, "name", ROOT_USER, true, false, false),
        Err(FsError::Exists)
    ));
    // Names that are no key: a bad escape, the reserved `.valfs`; a vector grows only at its
    // end.
    for bad in ["a%zz", ".valfs"] {
        assert!(
            matches!(
                f.st.create(ROOT, bad, ROOT_USER, false, true, false),
                Err(FsError::Invalid(_))
            ),
            "{bad}"
        );
        assert!(matches!(
            f.st.mkdir(ROOT, bad, ROOT_DIR),
            Err(FsError::Invalid(_))
        ));
    }
    assert!(matches!(
        f.st.create(v, "5", ROOT_USER, false, true, false),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        f.st.create(v, "x", ROOT_USER, false, true, false),
        Err(FsError::Invalid(_))
    ));
    assert_eq!(f.commits(), before);
    assert_eq!(f.names(""), ["empty", "name", "sub", "v"]);
}

#[test]
fn unlink_removes_a_key_and_rmdir_an_empty_collection() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    f.st.remove(ROOT, "name", false).expect("rm");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.messages()[0], "rm name");
    assert!(matches!(f.st.lookup(ROOT, "name"), Err(FsError::NotFound)));
    f.st.remove(ROOT, "empty", true).expect("rmdir");
    let deep = f.ino("sub/deep");
    f.st.remove(deep, "x", false).expect("rm x");
    let sub = f.ino("sub");
    f.st.remove(sub, "deep", true).expect("rmdir deep");
    assert_eq!(f.commits(), before + 4);
    assert_eq!(f.value(), serde_json::json!({"sub": {}, "v": [1, 2, 3]}));
}

#[test]
fn touch_makes_an_empty_string_at_release_and_a_new_file_removed_unsaved_leaves_nothing() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let (_, fh) =
        f.st.create(ROOT, "newf", ROOT_USER, false, false, false)
            .expect("create");
    assert!(
        f.names("").contains(&"newf".to_owned()),
        "listed before it is saved"
    );
    f.st.flush(fh).expect("close");
    assert_eq!(f.commits(), before, "nothing written: the release saves it");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["newf"], serde_json::json!(""));

    let (_, fh) =
        f.st.create(ROOT, "gone", ROOT_USER, true, false, false)
            .expect("create");
    f.st.remove(ROOT, "gone", false)
        .expect("rm before the save");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert!(f.value().get("gone").is_none());
    assert!(!f.names("").contains(&"gone".to_owned()));
}

#[test]
fn symlinks_are_scratch_files_only() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    assert!(matches!(
        f.st.symlink(ROOT, "link", b"name", ROOT_USER),
        Err(FsError::Invalid(_))
    ));
    let a =
        f.st.symlink(ROOT, "link~", b"name", ROOT_USER)
            .expect("symlink");
    assert!(a.is_symlink && !a.is_dir);
    assert_eq!(f.st.readlink(a.ino).expect("readlink"), b"name");
    assert!(matches!(
        f.st.symlink(ROOT, "link~", b"other", ROOT_USER),
        Err(FsError::Exists)
    ));
    let name = f.ino("name");
    assert!(matches!(f.st.readlink(name), Err(FsError::Invalid(_))));
    assert!(f.names("").contains(&"link~".to_owned()));
    // A symlink never becomes a key.
    assert!(matches!(
        f.st.rename(ROOT, "link~", ROOT, "link", false, false),
        Err(FsError::Invalid(_))
    ));
    f.st.remove(ROOT, "link~", false).expect("rm");
    assert!(!f.names("").contains(&"link~".to_owned()));
    assert_eq!(f.commits(), before);
}

#[test]
fn scratch_names_are_usable_and_never_committed() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    // Vim's probe, a swap file, an Emacs lock, a backup, a sed temp.
    for name in ["4913", ".name.swp", ".#name", "name~", "sedAb12Cd"] {
        f.write("sub", name, "any bytes\n");
        let sub = f.ino("sub");
        let ino = f.ino(&format!("sub/{name}"));
        let ty = f.st.getxattr(ino, State::TYPE_XATTR).expect("type");
        assert_eq!(ty, b"scratch", "{name}");
        assert_eq!(f.read(&format!("sub/{name}")), "any bytes\n", "{name}");
        f.st.remove(sub, name, false).expect("rm");
    }
    // `KEY.tmp` beside a key is scratch; `report.tmp` alone is a key.
    f.write("", "name.tmp", "x\n");
    assert_eq!(f.commits(), before);
    f.write("", "report.tmp", "x\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["report.tmp"], serde_json::json!("x"));
    assert!(f.value().get("name.tmp").is_none());
    assert!(f.names("").contains(&"name.tmp".to_owned()));
}

#[test]
fn a_key_renamed_onto_a_backup_name_and_never_written_back_goes_at_unmount() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    f.st.rename(ROOT, "name", ROOT, "name~", false, false)
        .expect("backup");
    assert_eq!(f.commits(), before, "pending until the save completes");
    assert!(matches!(f.st.lookup(ROOT, "name"), Err(FsError::NotFound)));
    assert_eq!(f.read("name~"), "\"Joe\"\n");
    f.st.settle().expect("unmount");
    assert_eq!(f.commits(), before + 1);
    assert!(f.value().get("name").is_none());
    assert_eq!(f.read("name~"), "\"Joe\"\n", "the backup is a scratch file");
}

#[test]
fn set_members_are_added_by_name_and_removed_whole() {
    let mut f = Fixture::edn("{:s #{:a [1 2]}}");
    let before = f.commits();
    let s = f.ino(":s");
    // `touch s/:b` adds the member its name reads as.
    let (_, fh) =
        f.st.create(s, ":b", ROOT_USER, false, false, false)
            .expect("create");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.text(), "{:s #{:a :b [1 2]}}");
    // Only a member's canonical name, and a folder only for a collection member.
    assert!(matches!(
        f.st.create(s, ":b ", ROOT_USER, false, false, false),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        f.st.mkdir(s, ":c", ROOT_DIR),
        Err(FsError::Invalid(_))
    ));
    f.st.mkdir(s, "[3]", ROOT_DIR)
        .expect("mkdir a vector member");
    assert_eq!(f.commits(), before + 2);
    // A member cannot change in place: rmdir removes it whole.
    let m = f.ino(":s/[1 2]");
    assert!(matches!(
        f.st.create(m, "2", ROOT_USER, false, false, false),
        Err(FsError::Invalid(_))
    ));
    f.st.remove(s, "[1 2]", true).expect("rmdir a member");
    f.st.remove(s, ":a", false).expect("rm a member");
    assert_eq!(f.commits(), before + 4);
    assert_eq!(f.text(), "{:s #{:b [3]}}");
}

#[test]
fn a_folder_holding_a_scratch_file_is_not_empty() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    f.write("empty", ".x.swp", "swap");
    assert!(matches!(
        f.st.remove(ROOT, "empty", true),
        Err(FsError::NotEmpty)
    ));
    let empty = f.ino("empty");
    f.st.remove(empty, ".x.swp", false).expect("rm");
    f.st.remove(ROOT, "empty", true).expect("rmdir");
    assert_eq!(f.commits(), before + 1);
    assert!(f.value().get("empty").is_none());
}

#[test]
fn unmount_saves_what_open_files_hold_unsaved() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let fh = f.open_trunc("name");
    f.st.write(fh, 0, b"\"Ann\"\n").expect("write");
    let inval = f.st.settle().expect("unmount");
    assert_eq!(inval.inodes, [f.ino("name")]);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["name"], serde_json::json!("Ann"));
}
