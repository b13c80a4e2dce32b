//! Edits: each checks the value after, and that a failing edit leaves the branch alone.

use crate::common::{Repo, kp, v};
use valfs::codec::{CodecError, MAX_DEPTH};
use valfs::store::{Edit, StoreError};
use valfs::value::{Path, Value};

const DOC: &str = r#"{"users":[{"name":"Joe","age":41},{"name":"Ann"},{"name":"Bob"}],
    "config":{"theme":"dark","size":12},"list":[0,1,2,3,4,5,6,7,8,9,10,11],"empty":{}}"#;

fn repo() -> Repo {
    let repo = Repo::new();
    repo.import(&v(DOC));
    repo
}

fn set(path: &[&str], value: &str) -> Edit {
    Edit::Set(kp(path), v(value))
}

fn mv(from: &[&str], to: &[&str]) -> Edit {
    Edit::Move(kp(from), kp(to))
}

fn rm(path: &[&str]) -> Edit {
    Edit::Remove(kp(path))
}

/// Applies one edit as one commit whose parent is the old head; returns the value after.
fn edit(repo: &Repo, e: Edit) -> Value {
    let before = repo.head();
    let commit = repo.apply(&[e]).unwrap().expect("a commit");
    assert_eq!(repo.head(), commit);
    let parent = repo.store.repo().find_commit(commit).unwrap().parent_id(0);
    assert_eq!(parent.unwrap(), before);
    repo.value()
}

fn get(value: &Value, path: &[&str]) -> Value {
    let mut v = value;
    for seg in path {
        v = match v {
            Value::Map(m) => &m[&Value::string(*seg)],
            Value::Vector(items) => &items[seg.parse::<usize>().unwrap()],
            other => panic!("{seg} in a scalar {other:?}"),
        };
    }
    v.clone()
}

#[test]
fn set_scalar() {
    let repo = repo();
    let after = edit(&repo, set(&["users", "0", "age"], "42"));
    assert_eq!(get(&after, &["users", "0", "age"]), v("42"));
    assert_eq!(repo.git(&["show", "HEAD:users/0/age"]), "42\n");
    let after = edit(&repo, set(&["config", "new key"], r#""added""#));
    assert_eq!(get(&after, &["config", "new key"]), v(r#""added""#));
    // A padded index spells the same element.
    let after = edit(&repo, set(&["list", "03"], "true"));
    assert_eq!(get(&after, &["list", "3"]), v("true"));
    repo.fsck();
}

#[test]
fn replace_scalar_with_collection_and_back() {
    let repo = repo();
    let after = edit(
        &repo,
        set(&["config", "theme"], r#"{"fg":"white","bg":[0,0,0]}"#),
    );
    assert_eq!(
        get(&after, &["config", "theme"]),
        v(r#"{"fg":"white","bg":[0,0,0]}"#)
    );
    assert_eq!(repo.git(&["cat-file", "-t", "HEAD:config/theme"]), "tree\n");
    let after = edit(&repo, set(&["config", "theme"], r#""light""#));
    assert_eq!(get(&after, &["config", "theme"]), v(r#""light""#));
    let after = edit(&repo, set(&["users"], "[]"));
    assert_eq!(get(&after, &["users"]), v("[]"));
    repo.fsck();
}

#[test]
fn set_the_root() {
    let repo = repo();
    assert_eq!(edit(&repo, Edit::Set(Path::root(), v("[1]"))), v("[1]"));
    assert!(matches!(
        repo.apply_fails(Edit::Set(Path::root(), v("1"))),
        StoreError::Invalid(_)
    ));
}

#[test]
fn remove_from_map() {
    let repo = repo();
    let after = edit(&repo, rm(&["config", "theme"]));
    assert_eq!(get(&after, &["config"]), v(r#"{"size":12}"#));
    let after = edit(&repo, rm(&["users"]));
    assert!(matches!(&after, Value::Map(m) if !m.contains_key(&Value::string("users"))));
    assert!(matches!(
        repo.apply_fails(rm(&["nope"])),
        StoreError::NotFound(p) if p == "nope"
    ));
    assert!(matches!(
        repo.apply_fails(rm(&["nope", "deeper"])),
        StoreError::NotFound(p) if p == "nope"
    ));
    repo.fsck();
}

#[test]
fn remove_from_vector_keeps_it_dense() {
    let repo = repo();
    let after = edit(&repo, rm(&["list", "2"]));
    assert_eq!(get(&after, &["list"]), v("[0,1,3,4,5,6,7,8,9,10,11]"));
    let after = edit(&repo, rm(&["list", "0"]));
    assert_eq!(get(&after, &["list"]), v("[1,3,4,5,6,7,8,9,10,11]"));
    let after = edit(&repo, rm(&["list", "9"]));
    assert_eq!(get(&after, &["list"]), v("[1,3,4,5,6,7,8,9,10]"));
    let after = edit(&repo, rm(&["users", "1"]));
    assert_eq!(
        get(&after, &["users"]),
        v(r#"[{"name":"Joe","age":41},{"name":"Bob"}]"#)
    );
    // The git entries are renumbered 0..n-1.
    let names = repo.git(&["ls-tree", "--name-only", "HEAD:list"]);
    let mut names: Vec<&str> = names.lines().filter(|n| *n != ".valfs").collect();
    names.sort_by_key(|n| n.parse::<usize>().unwrap());
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
    assert!(matches!(
        repo.apply_fails(rm(&["list", "9"])),
        StoreError::NotFound(_)
    ));
    // Emptying a vector element by element.
    for _ in 0..2 {
        edit(&repo, rm(&["users", "0"]));
    }
    assert_eq!(get(&repo.value(), &["users"]), v("[]"));
    repo.fsck();
}

#[test]
fn append_by_setting_the_length() {
    let repo = repo();
    let after = edit(&repo, set(&["list", "12"], "12"));
    assert_eq!(get(&after, &["list"]), v("[0,1,2,3,4,5,6,7,8,9,10,11,12]"));
    let after = edit(&repo, set(&["users", "3"], r#"{"name":"Eve"}"#));
    assert_eq!(get(&after, &["users", "3", "name"]), v(r#""Eve""#));
    edit(&repo, set(&["empty"], "[]"));
    let after = edit(&repo, set(&["empty", "0"], "null"));
    assert_eq!(get(&after, &["empty"]), v("[null]"));
}

#[test]
fn setting_past_the_end_fails() {
    let repo = repo();
    assert!(matches!(
        repo.apply_fails(set(&["list", "13"], "1")),
        StoreError::InvalidName(_)
    ));
    assert!(matches!(
        repo.apply_fails(set(&["list", "x"], "1")),
        StoreError::InvalidName(_)
    ));
    assert!(matches!(
        repo.apply_fails(set(&["users", "0", "name", "deeper"], "1")),
        StoreError::NotADirectory(p) if p == "users/0/name"
    ));
    assert!(matches!(
        repo.apply_fails(set(&["nope", "x"], "1")),
        StoreError::NotFound(p) if p == "nope"
    ));
    // A name that is not the canonical escape of any key.
    assert!(matches!(
        repo.apply_fails(Edit::Set(Path::parse("config/%zz"), v("1"))),
        StoreError::InvalidName(_)
    ));
    assert!(matches!(
        repo.apply_fails(Edit::Set(Path::parse("config/.valfs"), v("1"))),
        StoreError::InvalidName(_)
    ));
}

#[test]
fn a_failing_edit_in_a_batch_commits_nothing() {
    let repo = repo();
    let head = repo.head();
    let err = repo
        .apply(&[set(&["config", "size"], "13"), rm(&["nope"])])
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    assert_eq!(repo.head(), head);
    assert_eq!(get(&repo.value(), &["config", "size"]), v("12"));
}

#[test]
fn rename_within_a_map() {
    let repo = repo();
    let after = edit(
        &repo,
        mv(&["users", "0", "name"], &["users", "0", "full_name"]),
    );
    assert_eq!(
        get(&after, &["users", "0"]),
        v(r#"{"full_name":"Joe","age":41}"#)
    );
    let after = edit(&repo, mv(&["config"], &["settings"]));
    assert_eq!(
        get(&after, &["settings"]),
        v(r#"{"theme":"dark","size":12}"#)
    );
    assert!(matches!(&after, Value::Map(m) if !m.contains_key(&Value::string("config"))));
    repo.fsck();
}

#[test]
fn move_across_parents() {
    let repo = repo();
    let after = edit(&repo, mv(&["config", "theme"], &["empty", "theme"]));
    assert_eq!(get(&after, &["config"]), v(r#"{"size":12}"#));
    assert_eq!(get(&after, &["empty"]), v(r#"{"theme":"dark"}"#));
    // Out of a vector into a map: the vector closes the gap.
    let after = edit(&repo, mv(&["users", "0"], &["joe"]));
    assert_eq!(get(&after, &["joe"]), v(r#"{"name":"Joe","age":41}"#));
    assert_eq!(
        get(&after, &["users"]),
        v(r#"[{"name":"Ann"},{"name":"Bob"}]"#)
    );
    // Out of a map into a vector, appending.
    let after = edit(&repo, mv(&["joe"], &["users", "2"]));
    assert_eq!(
        get(&after, &["users"]),
        v(r#"[{"name":"Ann"},{"name":"Bob"},{"name":"Joe","age":41}]"#)
    );
    // From one vector into another.
    let after = edit(&repo, mv(&["list", "11"], &["users", "0"]));
    assert_eq!(get(&after, &["users", "0"]), v("11"));
    assert_eq!(get(&after, &["list"]), v("[0,1,2,3,4,5,6,7,8,9,10]"));
    repo.fsck();
}

#[test]
fn move_onto_an_existing_key_replaces_it() {
    let repo = repo();
    let after = edit(&repo, mv(&["config", "size"], &["config", "theme"]));
    assert_eq!(get(&after, &["config"]), v(r#"{"theme":12}"#));
    let after = edit(&repo, mv(&["users"], &["config"]));
    assert_eq!(
        get(&after, &["config"]),
        v(r#"[{"name":"Joe","age":41},{"name":"Ann"},{"name":"Bob"}]"#)
    );
}

#[test]
fn move_into_itself_fails() {
    let repo = repo();
    assert!(matches!(
        repo.apply_fails(mv(&["config"], &["config", "inner"])),
        StoreError::Invalid(_)
    ));
    assert!(matches!(
        repo.apply_fails(mv(&["users"], &["users", "0", "x"])),
        StoreError::Invalid(_)
    ));
    assert!(matches!(
        repo.apply_fails(Edit::Move(Path::root(), kp(&["x"]))),
        StoreError::Invalid(_)
    ));
    assert!(matches!(
        repo.apply_fails(mv(&["nope"], &["x"])),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        repo.apply_fails(mv(&["config"], &["nope", "x"])),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        repo.apply_fails(mv(&["config"], &["list", "13"])),
        StoreError::InvalidName(_)
    ));
}

#[test]
fn move_onto_itself_changes_nothing() {
    let repo = repo();
    let head = repo.head();
    assert_eq!(repo.apply(&[mv(&["config"], &["config"])]).unwrap(), None);
    assert_eq!(
        repo.apply(&[mv(&["list", "3"], &["list", "03"])]).unwrap(),
        None
    );
    assert_eq!(repo.head(), head);
}

#[test]
fn move_within_a_vector() {
    let repo = repo();
    // mv v/i v/j: element i lands on j (replacing it), then the gap at i closes.
    let after = edit(&repo, mv(&["list", "0"], &["list", "2"]));
    assert_eq!(get(&after, &["list"]), v("[1,0,3,4,5,6,7,8,9,10,11]"));
    let after = edit(&repo, mv(&["list", "10"], &["list", "1"]));
    assert_eq!(get(&after, &["list"]), v("[1,11,3,4,5,6,7,8,9,10]"));
    // Onto the length: move to the end.
    let after = edit(&repo, mv(&["list", "0"], &["list", "10"]));
    assert_eq!(get(&after, &["list"]), v("[11,3,4,5,6,7,8,9,10,1]"));
    assert!(matches!(
        repo.apply_fails(mv(&["list", "0"], &["list", "11"])),
        StoreError::InvalidName(_)
    ));
    repo.fsck();
}

#[test]
fn setting_the_same_value_makes_no_commit() {
    let repo = repo();
    let head = repo.head();
    assert_eq!(
        repo.apply(&[set(&["users", "0", "age"], "41")]).unwrap(),
        None
    );
    assert_eq!(
        repo.apply(&[set(&["config"], r#"{"size":12,"theme":"dark"}"#)])
            .unwrap(),
        None
    );
    assert_eq!(
        repo.apply(&[Edit::Set(Path::root(), v(DOC))]).unwrap(),
        None
    );
    // A change and its undo in one batch.
    assert_eq!(
        repo.apply(&[
            set(&["config", "size"], "1"),
            set(&["config", "size"], "12")
        ])
        .unwrap(),
        None
    );
    assert_eq!(repo.head(), head);
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]), "2\n");
}

#[test]
fn every_past_version_stays_readable() {
    let repo = repo();
    let mut versions = vec![(repo.head(), repo.value())];
    for i in 0..10 {
        edit(
            &repo,
            set(&["list", &i.to_string()], &format!("{}", 100 + i)),
        );
        edit(&repo, rm(&["list", "11"]));
        edit(&repo, set(&["list", "11"], "\"back\""));
        versions.push((repo.head(), repo.value()));
    }
    for (commit, value) in versions {
        assert_eq!(crate::common::value_at(&repo.store, commit), value);
    }
    repo.fsck();
}

#[test]
fn remove_and_move_in_a_mixed_vector() {
    let repo = Repo::new();
    repo.import(&v(r#"{"v":[1,{"a":1},"s",[2],null,{}]}"#));
    let after = edit(&repo, rm(&["v", "0"]));
    assert_eq!(get(&after, &["v"]), v(r#"[{"a":1},"s",[2],null,{}]"#));
    let after = edit(&repo, mv(&["v", "4"], &["v", "1"]));
    assert_eq!(get(&after, &["v"]), v(r#"[{"a":1},{},[2],null]"#));
    let after = edit(&repo, set(&["v", "3"], "[3]"));
    assert_eq!(get(&after, &["v"]), v(r#"[{"a":1},{},[2],[3]]"#));
    let after = edit(&repo, set(&["v"], "0"));
    assert_eq!(after, v(r#"{"v":0}"#));
    repo.fsck();
}

/// Regression: a set below the root could nest the value deeper than MAX_DEPTH; it was
/// committed and the whole value could no longer be read.
#[test]
fn a_set_nesting_too_deep_is_refused() {
    let repo = Repo::new();
    repo.import(&v(r#"{"a":{"b":{}}}"#));
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let err = repo.apply_fails(set(&["a", "b", "c"], &deep(MAX_DEPTH - 1)));
    assert!(
        matches!(err, StoreError::Codec(CodecError::TooDeep)),
        "{err}"
    );
    // One level less fits: the innermost vector then sits at depth 3 + 997 = 1000.
    let value = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            repo.apply(&[set(&["a", "b", "c"], &deep(MAX_DEPTH - 2))])
                .unwrap();
            repo.value()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(value, Value::Map(_)));
}
