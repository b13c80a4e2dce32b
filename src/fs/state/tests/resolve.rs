//! Resolving: what names and inodes stand for in the current value (escaped keys, indices,
//! scratch names, entries that changed kind or went away).

use super::*;

#[test]
fn escaped_key_names_resolve_to_their_keys_and_bad_escapes_to_nothing() {
    // `/`, the empty key and `.` cannot be file names as they are.
    let mut f = Fixture::new(r#"{"a/b": 1, "": 2, ".": 3, "plain": 4}"#);
    let names = f.names("");
    assert_eq!(names.len(), 4, "{names:?}");
    for name in &names {
        let text = f.read(name);
        assert!(
            ["1\n", "2\n", "3\n", "4\n"].contains(&text.as_str()),
            "{name}"
        );
    }
    assert!(matches!(f.st.lookup(ROOT, "a%zz"), Err(FsError::NotFound)));
    assert!(matches!(
        f.st.lookup(ROOT, ".valfs"),
        Err(FsError::NotFound)
    ));
    // Writing through an escaped name sets the key it stands for.
    let slash = names
        .iter()
        .find(|n| n.starts_with('a') && n.as_str() != "plain")
        .expect("the a/b key")
        .clone();
    f.write("", &slash, "5\n");
    assert_eq!(f.value()["a/b"], serde_json::json!(5));
}

#[test]
fn a_path_through_a_file_or_a_missing_key_resolves_to_nothing() {
    let mut f = Fixture::new(r#"{"a": 1, "d": {"x": 1}}"#);
    let a = f.ino("a");
    assert!(matches!(f.st.lookup(a, "x"), Err(FsError::NotADirectory)));
    assert!(matches!(f.st.listing(a, None), Err(FsError::NotADirectory)));
    assert!(matches!(f.st.lookup(ROOT, "b"), Err(FsError::NotFound)));
    let d = f.ino("d");
    assert!(matches!(
        f.st.open(d, false, false, false),
        Err(FsError::IsADirectory)
    ));
    // Removed by another writer: the old inode resolves to nothing.
    let x = f.ino("d/x");
    f.other_writer(&[Edit::Remove(Path(vec!["d".into()]))]);
    f.st.follow_head().expect("follow");
    assert!(matches!(f.st.getattr(x), Err(FsError::NotFound)));
    assert!(matches!(f.st.getattr(d), Err(FsError::NotFound)));
}

#[test]
fn an_entry_that_changed_kind_is_a_new_inode() {
    let mut f = Fixture::new(r#"{"a": {"x": 1}}"#);
    let a = f.ino("a");
    f.other_writer(&[Edit::Set(
        Path(vec!["a".into()]),
        Value::String("now a file".into()),
    )]);
    f.st.follow_head().expect("follow");
    let _ = f.st.take_inval();
    assert!(matches!(f.st.getattr(a), Err(FsError::NotFound)));
    let now = f.attr("a");
    assert!(!now.is_dir);
    assert_ne!(now.ino, a);
    assert_eq!(f.read("a"), "\"now a file\"\n");
}

#[test]
fn a_folders_resolution_follows_a_save_below_it() {
    // The directory cache must not serve a folder's old tree after a change inside it.
    let mut f = Fixture::new(r#"{"d": {"e": {"x": 1}}}"#);
    assert_eq!(f.names("d/e"), ["x"]);
    f.write("d/e", "y", "2\n");
    assert_eq!(f.names("d/e"), ["x", "y"]);
    assert_eq!(f.read("d/e/y"), "2\n");
    let e = f.ino("d/e");
    f.st.remove(e, "x", false).expect("rm");
    assert_eq!(f.names("d/e"), ["y"]);
    assert!(matches!(f.st.lookup(e, "x"), Err(FsError::NotFound)));
    assert_eq!(f.value(), serde_json::json!({"d": {"e": {"y": 2}}}));
}

#[test]
fn dot_tmp_is_scratch_only_beside_its_key() {
    let mut f = Fixture::new(r#"{"cfg": 1, "d": {}}"#);
    let before = f.commits();
    f.write("", "cfg.tmp", "2\n");
    f.write("", "d.tmp", "3\n");
    assert_eq!(f.commits(), before, "beside a key or a folder: scratch");
    let cfg_tmp = f.ino("cfg.tmp");
    assert!(matches!(f.st.resolve(cfg_tmp), Ok(Obj::Scratch)));
    f.write("", "other.tmp", "4\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(
        f.value(),
        serde_json::json!({"cfg": 1, "d": {}, "other.tmp": 4})
    );
}
