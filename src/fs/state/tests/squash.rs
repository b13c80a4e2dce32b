//! An unlink completed by the same name's exclusive create and save (coreutils `mv` from
//! another filesystem) is one commit; a user's `rm` then `echo >` stays two.

use super::*;

/// `mv` from another filesystem onto DIR/NAME: unlink, create with O_EXCL, write, close.
fn mv_from_elsewhere(f: &mut Fixture, dir: &str, name: &str, text: &str) {
    let d = f.ino(dir);
    f.st.remove(d, name, false).expect("unlink");
    let (_, fh) =
        f.st.create(d, name, ROOT_USER, true, false, false)
            .expect("create O_EXCL");
    f.st.write(fh, 0, text.as_bytes()).expect("write");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
}

#[test]
fn unlink_then_exclusive_create_and_save_is_one_commit() {
    let mut f = Fixture::new(r#"{"a": 1, "b": 2}"#);
    let before = f.commits();
    mv_from_elsewhere(&mut f, "", "a", "9\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 9, "b": 2}));
    // No version on the branch lacks the key.
    for v in f.all_values().iter().take(2) {
        assert!(v.get("a").is_some(), "{v}");
    }
}

#[test]
fn rm_then_a_plain_write_of_the_name_stays_two_commits() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.st.remove(ROOT, "a", false).expect("rm");
    f.write("", "a", "9\n");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.messages()[..2], ["write a", "rm a"]);
    assert_eq!(f.value(), serde_json::json!({"a": 9}));
}

#[test]
fn unlink_then_another_names_save_stays_two_commits() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    f.st.remove(ROOT, "a", false).expect("rm");
    let (_, fh) =
        f.st.create(ROOT, "b", ROOT_USER, true, false, false)
            .expect("create");
    f.st.write(fh, 0, b"2\n").expect("write");
    f.st.flush(fh).expect("close");
    f.st.release(fh);
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value(), serde_json::json!({"b": 2}));
}

#[test]
fn replacing_a_vector_element_from_another_filesystem_is_one_commit() {
    let mut f = Fixture::new(r#"{"v": [10, 11, 12]}"#);
    let before = f.commits();
    mv_from_elsewhere(&mut f, "v", "1", "21\n");
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"v": [10, 21, 12]}));
    assert_eq!(f.names("v"), ["0", "1", "2"]);
}

#[test]
fn the_squash_holds_when_the_caller_makes_the_commits() {
    // As the daemon runs them: each operation's commit made outside the lock.
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let before = f.commits();
    let deferred = |f: &mut Fixture| {
        if let Some(d) = f.st.take_deferred() {
            let made = d.run(&f.st.store);
            f.st.finish_deferred(d, made).expect("commit");
        }
    };
    f.st.defer_commits();
    f.st.remove(ROOT, "a", false).expect("unlink");
    deferred(&mut f);
    assert_eq!(f.commits(), before + 1);
    f.st.defer_commits();
    let (_, fh) =
        f.st.create(ROOT, "a", ROOT_USER, true, false, false)
            .expect("create O_EXCL");
    deferred(&mut f);
    f.st.defer_commits();
    f.st.write(fh, 0, b"9\n").expect("write");
    f.st.flush(fh).expect("close");
    deferred(&mut f);
    f.st.defer_commits();
    f.st.release(fh);
    deferred(&mut f);
    assert_eq!(f.commits(), before + 1);
    assert_eq!(f.value(), serde_json::json!({"a": 9}));
}
