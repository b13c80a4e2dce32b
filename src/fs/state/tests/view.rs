//! Views: the live value at the root, and the views' own folders (`.history`) beside its keys.

use super::*;

#[test]
fn the_root_lists_the_history_folder_then_the_keys() {
    let mut f = Fixture::new(r#"{"b": 1, "a": {"x": 1}}"#);
    let (_, l) = f.st.listing(ROOT, None).expect("root listing");
    let listed: Vec<(&str, bool)> = l.iter().map(|l| (l.name.as_str(), l.is_dir)).collect();
    assert_eq!(listed, [(".history", true), ("a", true), ("b", false)]);
    let his = l[0].ino;
    let (a, naming) = f.st.lookup(ROOT, ".history").expect(".history");
    assert_eq!(a.ino, his, "d_ino is st_ino");
    assert_eq!(naming, Naming::Stable);
    assert!(a.is_dir && a.read_only);
    assert_eq!(a.perm, 0o555);
    assert_eq!(a.cache, Cache::Short);
    let root = f.st.getattr(ROOT).expect("root");
    assert!(root.is_dir && !root.read_only);
    assert_eq!((root.perm, root.cache), (DIR_MODE, Cache::Announced));
}

#[test]
fn live_entries_are_announced_and_their_names_stable_except_in_vectors() {
    let mut f = Fixture::new(r#"{"m": {"k": 1}, "v": [1]}"#);
    let m = f.ino("m");
    let (a, naming) = f.st.lookup(m, "k").expect("k");
    assert_eq!(
        (a.cache, a.read_only, naming),
        (Cache::Announced, false, Naming::Stable)
    );
    assert_eq!(f.st.naming(m), Naming::Stable);
    let v = f.ino("v");
    assert_eq!(f.st.naming(v), Naming::Shifts);
    assert_eq!(f.st.naming(ROOT), Naming::Stable);
}

#[test]
fn the_history_folder_itself_cannot_be_changed() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    let his = f.ino(".history");
    assert!(matches!(
        f.st.mkdir(ROOT, ".history", ROOT_DIR),
        Err(FsError::Exists)
    ));
    assert!(matches!(
        f.st.create(ROOT, ".history", ROOT_USER, true, false, false),
        Err(FsError::Exists)
    ));
    assert!(matches!(
        f.st.create(his, "x", ROOT_USER, false, true, false),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        f.st.rename(ROOT, "a", his, "a", false, false),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        f.st.setattr(
            his,
            SetAttr {
                mode: Some(0o777),
                ..SetAttr::default()
            }
        ),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        f.st.open(his, false, false, false),
        Err(FsError::IsADirectory)
    ));
    assert_eq!(f.commits(), before);
    assert_eq!(f.names(""), ["a"]);
    assert!(f.st.lookup(ROOT, ".history").is_ok());
}

#[test]
fn the_history_folder_cannot_be_removed_or_renamed() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    // Whatever the errno, nothing changes and the folder stays.
    assert!(f.st.remove(ROOT, ".history", true).is_err(), "rmdir");
    assert!(f.st.remove(ROOT, ".history", false).is_err(), "unlink");
    assert!(
        f.st.rename(ROOT, ".history", ROOT, "h", false, false)
            .is_err(),
        "mv"
    );
    assert!(
        f.st.rename(ROOT, "a", ROOT, ".history", false, false)
            .is_err(),
        "mv over"
    );
    assert_eq!(f.commits(), before);
    assert_eq!(f.value(), serde_json::json!({"a": 1}));
    assert!(f.st.lookup(ROOT, ".history").expect(".history").0.is_dir);
}

#[test]
fn a_commit_makes_the_kernel_drop_the_history_listing_and_moves_its_mtime() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let his = f.ino(".history");
    let _ = f.st.take_inval();
    let t0 = f.st.getattr(his).expect("attr").mtime;
    assert!(
        !f.st.take_inval().listings.contains(&his),
        "nothing new yet"
    );
    f.write("", "a", "2\n");
    let inval = f.st.take_inval();
    assert!(inval.listings.contains(&his));
    assert!(
        inval.listings.contains(&ROOT),
        "the folder the save changed"
    );
    assert!(f.st.getattr(his).expect("attr").mtime > t0);
    assert!(!f.st.take_inval().listings.contains(&his), "told once");
}

#[test]
fn changing_the_history_folder_itself_is_erofs() {
    let mut f = Fixture::new(r#"{"a": 1, "d": {}}"#);
    let ro = |r: Result<()>| matches!(r, Err(FsError::ReadOnly));
    assert!(ro(f.st.remove(ROOT, ".history", true)), "rmdir");
    assert!(ro(f.st.remove(ROOT, ".history", false)), "unlink");
    assert!(ro(f
        .st
        .rename(ROOT, ".history", ROOT, "h", false, false)
        .map(drop)));
    assert!(ro(f
        .st
        .rename(ROOT, "d", ROOT, ".history", false, false)
        .map(drop)));
}
