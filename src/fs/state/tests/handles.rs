//! Open files: open, read, write, flush, fsync, release, truncation, and the save they make.

use super::*;

#[test]
fn echo_into_a_new_key_is_one_commit_and_a_reader_sees_the_saved_text() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    let (a, fh) =
        f.st.create(ROOT, "name", ROOT_USER, false, true, false)
            .expect("create");
    assert_eq!((a.size, a.is_dir, a.perm), (0, false, FILE_MODE));
    // The shell's dup'ed descriptor is closed before the write: that flush saves nothing.
    f.st.flush(fh).expect("early flush");
    assert_eq!(f.commits(), before);
    assert_eq!(f.st.write(fh, 0, b"Bob\n").expect("write"), 4);
    f.st.flush(fh).expect("close");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.messages()[0], "write name");
    assert_eq!(f.value(), serde_json::json!({"a": 1, "name": "Bob"}));
    // The kernel releases the handle later: a reader meanwhile sees what is saved, not the
    // bytes written.
    assert_eq!(f.read("name"), "\"Bob\"\n");
    f.st.release(fh);
    assert_eq!(
        f.commits(),
        before + 1,
        "the release has nothing left to save"
    );
    assert_eq!(f.read("name"), "\"Bob\"\n");
}

#[test]
fn writes_at_offsets_and_appends_change_the_buffer_until_close() {
    let mut f = Fixture::new(r#"{"n": 12345}"#);
    let before = f.commits();
    let n = f.ino("n");
    let fh = f.st.open(n, true, false, false).expect("open").fh;
    assert_eq!(f.read_fh(fh), "12345\n");
    f.st.write(fh, 1, b"9").expect("write at 1");
    let app = f.st.open(n, true, false, true).expect("open O_APPEND").fh;
    // Appends go at the end, whatever the offset.
    f.st.write(app, 0, b"6").expect("append");
    assert_eq!(f.read_fh(fh), "19345\n6", "descriptors share the buffer");
    assert_eq!(f.attr("n").size, 7);
    assert_eq!(f.commits(), before, "nothing is saved before a close");
    f.st.release(app);
    assert_eq!(f.commits(), before, "another handle is still open");
    f.st.setattr(
        n,
        SetAttr {
            size: Some(6),
            ..SetAttr::default()
        },
    )
    .expect("ftruncate");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"n": 19345}));
}

#[test]
fn an_open_with_o_trunc_then_a_write_is_one_commit() {
    let mut f = Fixture::new(r#"{"n": 1}"#);
    let before = f.commits();
    let fh = f.open_trunc("n");
    assert_eq!(f.attr("n").size, 0, "truncated at open");
    assert_eq!(f.read_fh(fh), "");
    f.st.write(fh, 0, b"2\n").expect("write");
    f.st.flush(fh).expect("flush");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"n": 2}));
    // A truncating open that is closed without a write saves the empty text at release
    // (`: > n`).
    let fh = f.open_trunc("n");
    f.st.flush(fh).expect("flush");
    assert_eq!(f.commits(), before + 1);
    f.st.release(fh);
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value(), serde_json::json!({"n": ""}));
}

#[test]
fn fsync_commits_and_the_descriptor_reads_its_bytes_until_closed() {
    let mut f = Fixture::new(r#"{"name": "Joe"}"#);
    let before = f.commits();
    let fh = f.open_trunc("name");
    f.st.write(fh, 0, b"Bob").expect("write");
    f.st.fsync(fh).expect("fsync");
    assert_eq!(f.commits(), before + 1, "fsync returns after the commit");
    assert_eq!(f.value(), serde_json::json!({"name": "Bob"}));
    assert_eq!(f.read_fh(fh), "Bob");
    assert_eq!(f.attr("name").size, 3);
    // A second fsync with nothing new commits nothing.
    f.st.fsync(fh).expect("fsync again");
    assert_eq!(f.commits(), before + 1);
    f.st.flush(fh).expect("close");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.read("name"), "\"Bob\"\n");
    assert_eq!(f.attr("name").size, 6);
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
}

#[test]
fn collection_text_turns_the_file_into_a_folder() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let old = f.ino("a");
    let fh = f.open_trunc("a");
    f.st.write(fh, 0, br#"{"x": [1, 2]}"#).expect("write");
    let inval = f.st.flush(fh).expect("flush");
    f.st.release(fh);
    assert_eq!(
        inval.entries,
        [(ROOT, "a".to_owned())],
        "the kernel forgets the name"
    );
    assert_eq!(f.value(), serde_json::json!({"a": {"x": [1, 2]}}));
    let a = f.attr("a");
    assert!(a.is_dir);
    // A new inode stands for the folder: the kernel still knows the file's number.
    assert_ne!(a.ino, old);
    assert!(matches!(f.st.getattr(old), Err(FsError::NotFound)));
    assert_eq!(f.names("a/x"), ["0", "1"]);
}

#[test]
fn a_write_past_the_size_limit_fails_and_its_file_is_never_saved() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    let fh = f.open_trunc("a");
    assert!(matches!(
        f.st.write(fh, MAX_FILE as u64, b"x"),
        Err(FsError::TooBig)
    ));
    assert!(matches!(f.st.flush(fh), Err(FsError::TooBig)));
    f.st.release(fh);
    assert_eq!(f.commits(), before);
    assert_eq!(f.value(), serde_json::json!({"a": 1}));
    // Reads and writes of a released handle find nothing.
    assert!(matches!(f.st.read(fh, 0, 10), Err(FsError::NotFound)));
    assert!(matches!(f.st.write(fh, 0, b"1"), Err(FsError::NotFound)));
}

#[test]
fn a_big_file_is_parsed_and_written_outside_the_lock_and_saved_in_one_commit() {
    let mut f = Fixture::new(r#"{"big": 0}"#);
    let before = f.commits();
    // Two long strings: the file becomes a folder of two elements.
    let (x, y) = ("x".repeat(HEAVY_SAVE / 2), "y".repeat(HEAVY_SAVE / 2));
    let text = format!("[\"{x}\", \"{y}\"]\n");
    assert!(text.len() >= HEAVY_SAVE);
    let fh = f.open_trunc("big");
    f.st.write(fh, 0, text.as_bytes()).expect("write");
    let prepared = f.st.prepare_flush(fh).expect("a heavy save");
    let written = prepared.write();
    let inval = f.st.finish_flush(fh, written).expect("finish");
    assert_eq!(inval.entries, [(ROOT, "big".to_owned())], "a folder now");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value()["big"], serde_json::json!([x, y]));
    assert_eq!(f.read("big/1").len(), y.len() + 3);
    // A small file has nothing heavy to do.
    let (_, fh) =
        f.st.create(ROOT, "small", ROOT_USER, false, true, false)
            .expect("create");
    f.st.write(fh, 0, b"1\n").expect("write");
    assert!(f.st.prepare_flush(fh).is_none());
    f.st.flush(fh).expect("flush");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value()["small"], serde_json::json!(1));
}
