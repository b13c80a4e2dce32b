//! Renames: moves, replacing, RENAME_NOREPLACE and RENAME_EXCHANGE, and the renames of
//! editors' and tools' saves (a backup name and back, a temporary file over a key).

use super::*;

const DOC: &str = r#"{"name": "Joe", "age": 41, "sub": {"x": 1}, "empty": {}, "v": [1, 2, 3]}"#;

#[test]
fn mv_moves_keys_and_subtrees_one_commit_each() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let sub = f.ino("sub");
    let x = f.ino("sub/x");
    f.st.rename(ROOT, "name", ROOT, "first", false, false)
        .expect("mv name first");
    assert_eq!(f.messages()[0], "mv name -> first");
    f.st.rename(sub, "x", ROOT, "x", false, false)
        .expect("mv sub/x x");
    assert_eq!(f.ino("x"), x, "the file keeps its number");
    let v = f.ino("v");
    f.st.rename(ROOT, "age", v, "3", false, false)
        .expect("mv age v/3: appends");
    assert_eq!(f.commits(), before + 3);
    assert_eq!(
        f.value(),
        serde_json::json!({"first": "Joe", "x": 1, "sub": {}, "empty": {}, "v": [1, 2, 3, 41]})
    );
    assert!(matches!(f.st.lookup(ROOT, "name"), Err(FsError::NotFound)));
    // Onto itself: nothing to do.
    f.st.rename(ROOT, "x", ROOT, "x", false, false)
        .expect("mv x x");
    assert_eq!(f.commits(), before + 3);
    // A vector grows only at its end; a bad name is no key.
    assert!(matches!(
        f.st.rename(ROOT, "x", v, "9", false, false),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        f.st.rename(ROOT, "x", ROOT, "a%zz", false, false),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        f.st.rename(ROOT, "nosuch", ROOT, "y", false, false),
        Err(FsError::NotFound)
    ));
    assert_eq!(f.commits(), before + 3);
}

#[test]
fn mv_over_a_key_replaces_it_unless_noreplace() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    assert!(matches!(
        f.st.rename(ROOT, "name", ROOT, "age", true, false),
        Err(FsError::Exists)
    ));
    assert_eq!(f.commits(), before);
    f.st.rename(ROOT, "name", ROOT, "age", false, false)
        .expect("mv over");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["age"], serde_json::json!("Joe"));
    assert!(f.value().get("name").is_none());
    assert_eq!(f.read("age"), "\"Joe\"\n");
    // A folder lands on an empty folder, not on one with entries.
    assert!(matches!(
        f.st.rename(ROOT, "empty", ROOT, "sub", false, false),
        Err(FsError::NotEmpty)
    ));
    f.st.rename(ROOT, "sub", ROOT, "empty", false, false)
        .expect("mv sub empty");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value()["empty"], serde_json::json!({"x": 1}));
    assert_eq!(f.names(""), ["age", "empty", "v"]);
}

#[test]
fn exchange_swaps_two_entries_in_one_commit() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let inval =
        f.st.rename(ROOT, "name", ROOT, "sub", false, true)
            .expect("exchange");
    assert!(inval.epoch);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["name"], serde_json::json!({"x": 1}));
    assert_eq!(f.value()["sub"], serde_json::json!("Joe"));
    assert!(f.attr("name").is_dir);
    assert_eq!(f.read("sub"), "\"Joe\"\n");
    assert_eq!(f.messages()[0], "exchange name <-> sub");
    assert!(matches!(
        f.st.rename(ROOT, "age", ROOT, "nosuch", false, true),
        Err(FsError::NotFound)
    ));
    assert_eq!(f.commits(), before + 1);
}

/// Vim's save with `backupcopy=no` (rename mode): the permission probe, `NAME` -> `NAME~`, a
/// new `NAME` written and fsync'ed, the backup removed.
fn vim_save(f: &mut Fixture, dir: &str, name: &str, text: &str) {
    let d = f.ino(dir);
    let (_, fh) =
        f.st.create(d, "4913", ROOT_USER, true, false, false)
            .expect("probe");
    f.st.release(fh);
    f.st.remove(d, "4913", false).expect("rm probe");
    let backup = format!("{name}~");
    f.st.rename(d, name, d, &backup, false, false)
        .expect("backup");
    let (_, fh) =
        f.st.create(d, name, ROOT_USER, false, true, false)
            .expect("create");
    f.st.write(fh, 0, text.as_bytes()).expect("write");
    f.st.fsync(fh).expect("fsync");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    f.st.remove(d, &backup, false).expect("rm backup");
}

#[test]
fn vims_backup_rename_then_write_is_one_commit_without_an_intermediate_state() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    vim_save(&mut f, "", "name", "\"Jim\"\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["name"], serde_json::json!("Jim"));
    assert_eq!(f.messages()[0], "write name");
    // No scratch name was ever committed.
    for v in f.all_values() {
        assert!(v.get("name~").is_none() && v.get("4913").is_none(), "{v}");
    }
    assert_eq!(f.names(""), ["age", "empty", "name", "sub", "v"]);
    // The same in a folder and in a vector, where the element stays in its place.
    vim_save(&mut f, "sub", "x", "2\n");
    vim_save(&mut f, "v", "1", "20\n");
    assert_eq!(f.commits(), before + 3);
    assert_eq!(f.value()["sub"], serde_json::json!({"x": 2}));
    assert_eq!(f.value()["v"], serde_json::json!([1, 20, 3]));
}

#[test]
fn a_backup_renamed_back_leaves_the_value_as_it_was() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    let name = f.ino("name");
    f.st.setattr(
        name,
        SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        },
    )
    .expect("chmod");
    f.st.rename(ROOT, "name", ROOT, "name~", false, false)
        .expect("backup");
    assert_eq!(
        f.attr("name~").perm,
        0o600,
        "the backup shows the key's mode"
    );
    assert!(!f.names("").contains(&"name".to_owned()));
    // The write failed: Vim puts the backup back.
    f.st.rename(ROOT, "name~", ROOT, "name", false, false)
        .expect("restore");
    assert_eq!(f.commits(), before);
    assert_eq!(f.read("name"), "\"Joe\"\n");
    assert_eq!(f.attr("name").perm, 0o600);
    assert!(!f.names("").contains(&"name~".to_owned()));
    f.st.settle().expect("unmount");
    assert_eq!(f.commits(), before);
    assert_eq!(f.value()["name"], serde_json::json!("Joe"));
}

#[test]
fn a_temporary_file_renamed_over_a_key_is_one_commit() {
    let mut f = Fixture::new(DOC);
    let before = f.commits();
    // Python's mkstemp + os.replace, in a folder.
    f.write("sub", "tmpab12cd34", "{\"y\": true}\n");
    assert_eq!(f.commits(), before, "a scratch name");
    let sub = f.ino("sub");
    f.st.rename(sub, "tmpab12cd34", sub, "x", false, false)
        .expect("replace");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["sub"], serde_json::json!({"x": {"y": true}}));
    assert_eq!(f.messages()[0], "write sub/x");
    assert!(f.attr("sub/x").is_dir);
    assert_eq!(f.names("sub"), ["x"]);
    // A script's `KEY.tmp`, onto a new key.
    f.write("", "age.tmp", "42\n");
    f.st.rename(ROOT, "age.tmp", ROOT, "age2", false, false)
        .expect("mv");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value()["age2"], serde_json::json!(42));
    assert!(!f.names("").contains(&"age.tmp".to_owned()));
    // Between scratch names nothing is committed.
    f.write("", "a.swp", "x");
    f.st.rename(ROOT, "a.swp", ROOT, "b.swp", false, false)
        .expect("mv");
    assert_eq!(f.read("b.swp"), "x");
    assert_eq!(f.commits(), before + 2);
}

#[test]
fn releasing_a_renamed_temporary_file_leaves_the_keys_new_handle_alone() {
    let mut f = Fixture::new(DOC);
    let (_, tmp) =
        f.st.create(ROOT, "name.tmp", ROOT_USER, true, false, false)
            .expect("create");
    f.st.write(tmp, 0, b"\"Ann\"\n").expect("write");
    f.st.flush(tmp).expect("close");
    // The kernel releases the temporary file's handle only after the rename and a new open.
    f.st.rename(ROOT, "name.tmp", ROOT, "name", false, false)
        .expect("mv");
    assert_eq!(f.value()["name"], serde_json::json!("Ann"));
    let fh = f.open_trunc("name");
    f.st.release(tmp);
    f.st.write(fh, 0, b"\"Bea\"\n")
        .expect("the new handle still writes");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.value()["name"], serde_json::json!("Bea"));
}

#[test]
fn mv_within_a_vector_keeps_it_dense() {
    let mut f = Fixture::new(r#"{"v": ["a", "b", "c"]}"#);
    let v = f.ino("v");
    f.st.rename(v, "0", v, "3", false, false)
        .expect("mv v/0 v/3");
    assert_eq!(f.value()["v"], serde_json::json!(["b", "c", "a"]));
    assert_eq!(f.names("v"), ["0", "1", "2"]);
    f.st.rename(v, "2", v, "0", false, false)
        .expect("mv v/2 v/0");
    assert_eq!(f.value()["v"], serde_json::json!(["a", "c"]));
}

#[test]
fn an_open_file_in_a_moved_folder_is_saved_under_the_new_path() {
    let mut f = Fixture::new(r#"{"d": {"x": 1}}"#);
    let x = f.ino("d/x");
    let fh = f.st.open(x, true, false, false).expect("open").fh;
    f.st.write(fh, 0, b"5\n").expect("write");
    let d = f.ino("d");
    let (_, new) =
        f.st.create(d, "n", ROOT_USER, true, false, false)
            .expect("create d/n");
    f.st.write(new, 0, b"6\n").expect("write");
    f.st.rename(ROOT, "d", ROOT, "e", false, false)
        .expect("mv d e");
    for fh in [fh, new] {
        f.st.flush(fh).expect("close");
        f.st.release(fh);
    }
    assert_eq!(f.value(), serde_json::json!({"e": {"x": 5, "n": 6}}));
}

#[test]
fn a_scratch_file_renamed_onto_a_key_in_another_folder_commits_its_text_there() {
    let mut f = Fixture::new(r#"{"d": {}, "e": {}}"#);
    let before = f.commits();
    f.write("d", ".x.swp", "7\n");
    let (d, e) = (f.ino("d"), f.ino("e"));
    f.st.rename(d, ".x.swp", e, "x", false, false).expect("mv");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"d": {}, "e": {"x": 7}}));
    assert!(f.names("d").is_empty());
    assert_eq!(f.read("e/x"), "7\n");
}

#[test]
fn rename_moves_the_ctime() {
    let mut f = Fixture::new(DOC);
    let before = f.attr("name");
    f.st.rename(ROOT, "name", ROOT, "first", false, false)
        .expect("mv");
    let after = f.attr("first");
    assert!(after.ctime > before.ctime);
    assert!(after.ctime >= after.mtime);
}

#[test]
#[ignore = "bug: mv gives the moved entry and everything under it a new mtime (the commit's)"]
fn rename_keeps_the_mtimes_of_what_moved() {
    let mut f = Fixture::new(DOC);
    let (name, x) = (f.attr("name").mtime, f.attr("sub/x").mtime);
    f.st.rename(ROOT, "name", ROOT, "first", false, false)
        .expect("mv name first");
    f.st.rename(ROOT, "sub", ROOT, "sub2", false, false)
        .expect("mv sub sub2");
    assert_eq!(f.attr("first").mtime, name);
    assert_eq!(f.attr("sub2/x").mtime, x);
}
