//! Commits: made at once, left to the caller (as the daemon makes them, outside the lock),
//! coalesced, and another writer's commits followed.

use super::*;
use crate::store::StoreError;

/// A commit that fails as one does when another git process holds the branch's lock.
fn locked() -> crate::store::Result<Option<Oid>> {
    Err(StoreError::Locked("refs/heads/main.lock".into()))
}

#[test]
fn a_deferred_save_is_committed_once_by_the_caller() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.st.defer_commits();
    f.write("", "a", "2\n");
    assert_eq!(f.commits(), before, "left to the caller");
    // The view already shows the save.
    assert_eq!(f.read("a"), "2\n");
    let d = f.st.take_deferred().expect("a deferred commit");
    let made = d.run(&f.st.store);
    assert_eq!(f.commits(), before + 1);
    f.st.finish_deferred(d, made).expect("finish");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 2}));
    assert_eq!(f.st.pending_work(), (0, 0));
    // Commits are made at once again.
    assert!(f.st.take_deferred().is_none());
    f.write("", "a", "3\n");
    assert_eq!(f.commits(), before + 2);
}

#[test]
fn a_failed_deferred_commit_puts_the_view_back_and_leaves_the_file_unsaved() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.st.defer_commits();
    let fh = f.open_trunc("a");
    f.st.write(fh, 0, b"2\n").expect("write");
    f.st.flush(fh).expect("flush");
    let d = f.st.take_deferred().expect("a deferred commit");
    assert!(f.st.finish_deferred(d, locked()).is_err());
    assert_eq!(f.commits(), before);
    assert_eq!(f.value(), serde_json::json!({"a": 1}));
    assert_eq!(f.st.pending_work(), (0, 1), "the file is unsaved again");
    // The kernel must drop all it cached of what the edit showed.
    assert!(f.st.take_inval().epoch);
    // A new reader sees what is committed.
    let ino = f.ino("a");
    let store = f.st.store.head_commit().expect("head");
    assert_eq!(f.text_at(store), r#"{"a":1}"#);
    assert!(matches!(f.st.resolve(ino), Ok(Obj::Pending)));
    // The next close saves it.
    f.st.flush(fh).expect("flush again");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 2}));
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
}

#[test]
fn a_new_file_whose_deferred_commit_failed_is_still_listed_and_saved_at_release() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.st.defer_commits();
    let (_, fh) =
        f.st.create(ROOT, "n", ROOT_USER, false, true, false)
            .expect("create");
    f.st.write(fh, 0, b"5\n").expect("write");
    f.st.flush(fh).expect("flush");
    let d = f.st.take_deferred().expect("a deferred commit");
    assert!(f.st.finish_deferred(d, locked()).is_err());
    assert_eq!(f.commits(), before);
    assert_eq!(f.names(""), ["a", "n"]);
    assert_eq!(f.attr("n").size, 2);
    f.st.release(fh);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 1, "n": 5}));
}

#[test]
fn a_commit_left_to_the_caller_is_made_before_the_next_edit() {
    let mut f = Fixture::new(r#"{"a": 1, "b": 1}"#);
    let before = f.commits();
    f.st.defer_commits();
    f.write("", "a", "2\n");
    f.write("", "b", "2\n");
    assert_eq!(f.commits(), before + 1, "a's commit came first");
    let d = f.st.take_deferred().expect("b's commit");
    let made = d.run(&f.st.store);
    f.st.finish_deferred(d, made).expect("finish");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.messages()[..2], ["write b", "write a"]);
    assert_eq!(f.value(), serde_json::json!({"a": 2, "b": 2}));
}

#[test]
fn coalesced_saves_wait_for_quiet_and_make_one_commit() {
    let mut f = Fixture::with(Format::Json, r#"{"a": 1, "b": 1}"#, |o| {
        o.coalesce = Some(Duration::from_secs(3600));
    });
    let before = f.commits();
    f.write("", "a", "2\n");
    f.write("", "b", "2\n");
    assert_eq!(f.commits(), before);
    assert_eq!(f.st.pending_work(), (2, 0));
    assert_eq!(f.read("b"), "2\n", "the view shows them");
    f.st.tick().expect("tick");
    assert_eq!(f.commits(), before, "not quiet long enough");
    f.st.commit_pending().expect("commit");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.messages()[0], "2 changes");
    assert_eq!(f.value(), serde_json::json!({"a": 2, "b": 2}));
    assert_eq!(f.st.pending_work(), (0, 0));

    let mut f = Fixture::with(Format::Json, r#"{"a": 1}"#, |o| {
        o.coalesce = Some(Duration::ZERO);
    });
    let before = f.commits();
    f.write("", "a", "2\n");
    f.st.tick().expect("tick");
    assert_eq!(f.commits(), before + 1);
}

#[test]
fn another_writers_commit_is_followed_and_everything_cached_goes() {
    let mut f = Fixture::new(r#"{"a": 1, "b": {"c": 1}}"#);
    let c = f.ino("b/c");
    let _ = f.st.take_inval();
    f.other_writer(&[
        Edit::Set(Path(vec!["new".into()]), Value::Integer("7".into())),
        Edit::Remove(Path(vec!["a".into()])),
    ]);
    f.st.follow_head().expect("follow");
    let inval = f.st.take_inval();
    assert!(inval.epoch);
    assert!(inval.listings.contains(&ROOT));
    assert_eq!(f.names(""), ["b", "new"]);
    assert_eq!(f.read("new"), "7\n");
    assert!(matches!(f.st.lookup(ROOT, "a"), Err(FsError::NotFound)));
    assert_eq!(f.ino("b/c"), c, "what did not move keeps its number");
    // A save then commits on top of it.
    f.write("", "a", "3\n");
    assert_eq!(
        f.value(),
        serde_json::json!({"a": 3, "b": {"c": 1}, "new": 7})
    );
}
