//! Open files as on a disk: descriptors that outlive their name (orphans), and the bytes a
//! file held by fsync shows.

use super::*;

#[test]
fn a_file_unlinked_while_open_still_reads_writes_and_stats_and_saves_nothing() {
    let mut f = Fixture::new(r#"{"a": "old", "b": 1}"#);
    let before = f.commits();
    let a = f.ino("a");
    let fh = f.st.open(a, true, false, false).expect("open");
    let fh = fh.fh;
    f.st.remove(ROOT, "a", false).expect("rm");
    assert_eq!(f.commits(), before + 1);
    assert!(matches!(f.st.lookup(ROOT, "a"), Err(FsError::NotFound)));
    assert_eq!(f.read_fh(fh), "\"old\"\n");
    f.st.write(fh, 0, b"\"new\"\n").expect("write");
    assert_eq!(f.read_fh(fh), "\"new\"\n");
    let attr = f.st.getattr(a).expect("fstat");
    assert!(attr.unlinked);
    assert_eq!(attr.size, 6);
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1, "a removed key is not brought back");
    assert_eq!(f.value(), serde_json::json!({"b": 1}));
    assert_eq!(f.names(""), ["b"]);
}

#[test]
fn a_new_file_unlinked_before_its_save_leaves_nothing() {
    let mut f = Fixture::new(r#"{"b": 1}"#);
    let before = f.commits();
    let (_, fh) =
        f.st.create(ROOT, "n", ROOT_USER, true, false, false)
            .expect("create");
    f.st.write(fh, 0, b"1\n").expect("write");
    f.st.remove(ROOT, "n", false).expect("rm");
    assert_eq!(f.read_fh(fh), "1\n");
    f.st.write(fh, 2, b"2\n").expect("write after rm");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.commits(), before);
    assert_eq!(f.names(""), ["b"]);
}

#[test]
fn a_file_renamed_over_keeps_its_bytes_for_its_descriptor() {
    let mut f = Fixture::new(r#"{"a": 1, "b": 2}"#);
    let before = f.commits();
    let a = f.ino("a");
    let fh = f.st.open(a, false, false, false).expect("open").fh;
    f.st.rename(ROOT, "b", ROOT, "a", false, false)
        .expect("mv b a");
    assert_eq!(f.read_fh(fh), "1\n");
    assert_eq!(f.read("a"), "2\n");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 2}));
}

#[test]
fn a_file_renamed_away_while_open_is_saved_under_its_new_name() {
    let mut f = Fixture::new(r#"{"a": 1, "d": {}}"#);
    let before = f.commits();
    let a = f.ino("a");
    let fh = f.st.open(a, true, false, false).expect("open O_RDWR").fh;
    let d = f.ino("d");
    f.st.rename(ROOT, "a", d, "z", false, false)
        .expect("mv a d/z");
    assert_eq!(f.commits(), before + 1);
    f.st.write(fh, 0, b"42\n").expect("write");
    assert_eq!(f.read_fh(fh), "42\n");
    assert_eq!(f.st.getattr(a).expect("fstat").size, 3);
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value(), serde_json::json!({"d": {"z": 42}}));
}

#[test]
fn a_file_with_unsaved_changes_renamed_away_leaves_no_copy_behind() {
    // `exec 3>a; mv a z; echo 9 >&3; exec 3>&-`
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    let fh = f.open_trunc("a");
    f.st.rename(ROOT, "a", ROOT, "z", false, false)
        .expect("mv a z");
    assert!(matches!(f.st.lookup(ROOT, "a"), Err(FsError::NotFound)));
    f.st.write(fh, 0, b"9\n").expect("write");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.value(), serde_json::json!({"z": 9}));
    assert_eq!(f.commits(), before + 2);
}

#[test]
fn a_key_another_writer_removed_still_reads_for_its_descriptor_and_stays_removed() {
    let mut f = Fixture::new(r#"{"a": 1, "b": 2}"#);
    let a = f.ino("a");
    let fh = f.st.open(a, false, false, false).expect("open").fh;
    f.other_writer(&[Edit::Remove(Path(vec!["a".into()]))]);
    f.st.follow_head().expect("follow");
    let _ = f.st.take_inval();
    let commits = f.commits();
    assert_eq!(f.read_fh(fh), "1\n");
    assert!(f.st.getattr(a).expect("fstat").unlinked);
    assert!(matches!(f.st.lookup(ROOT, "a"), Err(FsError::NotFound)));
    f.st.release(fh);
    assert_eq!(f.commits(), commits);
    assert_eq!(f.value(), serde_json::json!({"b": 2}));
}

#[test]
fn after_fsync_readers_share_the_writers_bytes_until_it_closes() {
    let mut f = Fixture::new(r#"{"name": "Joe"}"#);
    let fh = f.open_trunc("name");
    f.st.write(fh, 0, b"Bob").expect("write");
    f.st.fsync(fh).expect("fsync");
    // Held: a new reader reads the bytes written, as descriptors of one file do.
    assert_eq!(f.read("name"), "Bob");
    f.st.flush(fh).expect("close");
    assert_eq!(f.read("name"), "\"Bob\"\n");
    f.st.release(fh);
    assert_eq!(f.read("name"), "\"Bob\"\n");
}
