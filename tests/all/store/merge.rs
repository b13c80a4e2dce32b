//! Compare-and-swap with a structural merge: a second handle on the same repository moves the
//! branch between our read of the head and our commit.

use crate::common::{Repo, kp, v, value_at};
use git2::Oid;
use valfs::store::{Edit, Store};
use valfs::value::Value;

/// A repository holding `doc`, and a second handle on it playing the other writer.
fn setup(doc: &str) -> (Repo, Store) {
    let repo = Repo::new();
    repo.import(&v(doc));
    let other = repo.open_again();
    (repo, other)
}

/// Computes our edit from the head as it was at `head` and commits it after the other writer
/// moved the branch. Returns our commit.
fn commit_stale(repo: &Repo, head: Oid, edits: &[Edit]) -> Option<Oid> {
    let base = repo.store.commit_root(head).unwrap();
    let ours = repo.store.apply_to_tree(base, edits).unwrap();
    repo.store.commit_onto(head, base, ours, "ours").unwrap()
}

fn set(path: &[&str], value: &str) -> Edit {
    Edit::Set(kp(path), v(value))
}

fn parent(repo: &Repo, commit: Oid) -> Oid {
    let c = repo.store.repo().find_commit(commit).unwrap();
    assert_eq!(c.parent_count(), 1, "merges are linear: one parent");
    c.parent_id(0).unwrap()
}

#[test]
fn different_keys_both_survive() {
    let (repo, other) = setup(r#"{"a":1,"b":2,"m":{"x":1,"y":1}}"#);
    let old = repo.head();
    let theirs = other
        .apply(&[set(&["a"], "10"), set(&["m", "x"], "10")], "theirs")
        .unwrap()
        .unwrap();
    let ours = commit_stale(&repo, old, &[set(&["b"], "20"), set(&["m", "y"], "20")]).unwrap();
    assert_eq!(repo.head(), ours);
    assert_eq!(parent(&repo, ours), theirs);
    assert_eq!(repo.value(), v(r#"{"a":10,"b":20,"m":{"x":10,"y":20}}"#));
    // The merged commit's diff against its parent is only our change.
    let names = repo.git(&["diff", "--name-only", "HEAD~1", "HEAD"]);
    assert_eq!(names, "b\nm/y\n");
    repo.fsck();
}

#[test]
fn same_key_ours_wins_and_theirs_stays_in_history() {
    let (repo, other) = setup(r#"{"a":1,"b":2}"#);
    let old = repo.head();
    let theirs = other
        .apply(&[set(&["a"], "10")], "theirs")
        .unwrap()
        .unwrap();
    let ours = commit_stale(&repo, old, &[set(&["a"], "30")]).unwrap();
    assert_eq!(repo.value(), v(r#"{"a":30,"b":2}"#));
    assert_eq!(parent(&repo, ours), theirs);
    assert_eq!(value_at(&repo.store, theirs), v(r#"{"a":10,"b":2}"#));
    assert_eq!(repo.store.resolve("HEAD~1").unwrap(), theirs);
    repo.fsck();
}

#[test]
fn both_append_to_one_vector() {
    let (repo, other) = setup(r#"{"v":[1,2],"w":[]}"#);
    let old = repo.head();
    other
        .apply(
            &[set(&["v", "2"], r#""theirs""#), set(&["w", "0"], "1")],
            "theirs",
        )
        .unwrap()
        .unwrap();
    commit_stale(
        &repo,
        old,
        &[
            set(&["v", "2"], r#""ours""#),
            set(&["v", "3"], r#""ours too""#),
        ],
    )
    .unwrap();
    assert_eq!(
        repo.value(),
        v(r#"{"v":[1,2,"theirs","ours","ours too"],"w":[1]}"#)
    );
    repo.fsck();
}

#[test]
fn element_changes_in_one_vector_merge_by_index() {
    let (repo, other) = setup(r#"[{"n":0},{"n":1},{"n":2}]"#);
    let old = repo.head();
    other.apply(&[set(&["0", "n"], "10")], "theirs").unwrap();
    commit_stale(
        &repo,
        old,
        &[set(&["2", "n"], "12"), set(&["1", "k"], "true")],
    )
    .unwrap();
    assert_eq!(repo.value(), v(r#"[{"n":10},{"n":1,"k":true},{"n":12}]"#));
}

#[test]
fn removal_and_change_of_different_keys() {
    let (repo, other) = setup(r#"{"a":{"deep":[1]},"b":2,"c":3}"#);
    let old = repo.head();
    other.apply(&[Edit::Remove(kp(&["c"]))], "theirs").unwrap();
    commit_stale(
        &repo,
        old,
        &[
            Edit::Move(kp(&["b"]), kp(&["bb"])),
            set(&["a", "deep", "1"], "2"),
        ],
    )
    .unwrap();
    assert_eq!(repo.value(), v(r#"{"a":{"deep":[1,2]},"bb":2}"#));
}

#[test]
fn the_same_change_on_both_sides_makes_no_second_commit() {
    let (repo, other) = setup(r#"{"a":1}"#);
    let old = repo.head();
    let theirs = other.apply(&[set(&["a"], "2")], "theirs").unwrap().unwrap();
    assert_eq!(commit_stale(&repo, old, &[set(&["a"], "2")]), None);
    assert_eq!(repo.head(), theirs);
}

#[test]
fn several_writers_in_threads_lose_nothing() {
    let repo = Repo::new();
    let path = repo.path();
    std::thread::scope(|s| {
        for t in 0..4 {
            let path = path.clone();
            s.spawn(move || {
                let store = Store::open(&path, "main").unwrap();
                for i in 0..25 {
                    let key = format!("t{t}-{i}");
                    store
                        .apply(&[Edit::Set(kp(&[&key]), Value::int(i))], &key)
                        .unwrap()
                        .unwrap();
                }
            });
        }
    });
    let Value::Map(m) = repo.value() else {
        panic!("root is a map")
    };
    assert_eq!(m.len(), 100);
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]), "101\n");
    repo.fsck();
}
