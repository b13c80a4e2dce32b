//! The conflict record, its resolution, and merging branches and stores.

use super::*;
use crate::codec::{Format, json};
use crate::store::{MergeOutcome, StoreError};
use crate::value::Value;
use std::path::Path as FsPath;

fn v(text: &str) -> Value {
    json::parse(text).expect("test JSON")
}

fn set(store: &Store, path: &str, value: &str) -> Oid {
    let edit = Edit::Set(Path::parse(path), v(value));
    store
        .apply(&[edit], &format!("set {path}"))
        .expect("apply")
        .expect("a change")
}

fn value(store: &Store) -> Value {
    let root = store
        .commit_root(store.head_commit().expect("head"))
        .expect("root");
    store.read_value(Node::Dir(root)).expect("read")
}

fn open(store: &Store) -> Vec<(String, ConflictKind)> {
    let all = store.conflicts().expect("conflicts");
    all.into_iter()
        .map(|c| (c.path.to_string(), c.kind))
        .collect()
}

fn git(repo: &FsPath, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env_remove("GIT_DIR")
        .output()
        .expect("git")
}

fn fsck(store: &Store) {
    let out = git(store.path(), &["fsck", "--strict", "--no-progress"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    store.check_ours().expect("still a valfs value");
}

/// A store holding `doc` on `main`, and a handle on a branch `other` made from it.
fn branches(doc: &str) -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.git");
    let main = Store::init(&path, Format::Json, "main").expect("init");
    set(&main, "/", doc);
    let head = main.repo().find_commit(main.head_commit().expect("head"));
    main.repo()
        .branch("other", &head.expect("commit"), false)
        .expect("branch");
    let other = Store::open(&path, "other").expect("open");
    (dir, main, other)
}

/// Brings `from`'s branch into `into` as a fetch would, and returns its head.
fn fetch(into: &Store, from: &Store) -> Oid {
    let url = from.path().to_str().expect("UTF-8 path");
    let mut remote = into.repo().remote_anonymous(url).expect("remote");
    let spec = format!("+refs/heads/{}:refs/remotes/peer/main", from.branch());
    remote.fetch(&[spec.as_str()], None, None).expect("fetch");
    into.repo()
        .refname_to_id("refs/remotes/peer/main")
        .expect("fetched")
}

/// A second store made from `from` as a clone: its branch is `from`'s.
fn clone_of(from: &Store, dir: &FsPath) -> Store {
    let path = dir.join("clone.git");
    let repo = git2::Repository::init_bare(&path).expect("init");
    repo.config()
        .expect("config")
        .set_str("valfs.format", "json")
        .expect("set");
    let store = Store::open(&path, "main").expect("open");
    let head = fetch(&store, from);
    store
        .repo()
        .reference("refs/heads/main", head, false, "clone")
        .expect("ref");
    store.repo().set_head("refs/heads/main").expect("HEAD");
    store
}

#[test]
fn merging_a_commit_already_in_the_history_or_ahead_of_it() {
    let (_d, main, other) = branches(r#"{"a":1}"#);
    let start = main.head_commit().expect("head");
    assert_eq!(
        main.merge_into_branch(start, "other").expect("merge"),
        MergeOutcome::UpToDate
    );
    let ahead = set(&other, "b", "2");
    assert_eq!(
        main.merge_into_branch(ahead, "other").expect("merge"),
        MergeOutcome::FastForward(ahead)
    );
    assert_eq!(main.head_commit().expect("head"), ahead);
    assert_eq!(
        main.merge_into_branch(start, "other").expect("merge"),
        MergeOutcome::UpToDate
    );
    // A branch with no commits takes theirs as it is.
    let fresh = Store::open(main.path(), "fresh").expect("open");
    assert_eq!(
        fresh.merge_into_branch(ahead, "other").expect("merge"),
        MergeOutcome::FastForward(ahead)
    );
}

#[test]
fn diverged_branches_make_one_merge_commit_with_two_parents() {
    let (_d, main, other) = branches(r#"{"a":1,"b":1,"v":[1]}"#);
    let ours = set(&main, "a", "2");
    set(&other, "b", "2");
    let theirs = set(&other, "v/1", "2");
    let outcome = main.merge_into_branch(theirs, "origin").expect("merge");
    let MergeOutcome::Merged { commit, conflicts } = outcome else {
        panic!("a merge commit: {outcome:?}");
    };
    assert!(conflicts.is_empty());
    let c = main.repo().find_commit(commit).expect("commit");
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![ours, theirs]);
    let short = &theirs.to_string()[..7];
    assert_eq!(
        c.message().ok(),
        Some(format!("merge {short} from origin").as_str())
    );
    assert_eq!(value(&main), v(r#"{"a":2,"b":2,"v":[1,2]}"#));
    // Now theirs is in the history: nothing more to merge.
    assert_eq!(
        main.merge_into_branch(theirs, "origin").expect("merge"),
        MergeOutcome::UpToDate
    );
    fsck(&main);
}

#[test]
fn conflicts_are_recorded_in_the_merge_and_listed_in_path_order() {
    let doc = r#"{"a":1,"gone":{"x":1},"v":[0,1,2,3,4,5,6,7,8,9,10,11]}"#;
    let (_d, main, other) = branches(doc);
    for (k, val) in [("a", "2"), ("v/2", "20"), ("v/10", "100")] {
        set(&main, k, val);
    }
    main.apply(&[Edit::Remove(Path::parse("gone"))], "rm gone")
        .expect("rm");
    for (k, val) in [("a", "3"), ("v/2", "21"), ("v/10", "101"), ("gone/x", "2")] {
        set(&other, k, val);
    }
    let theirs = other.head_commit().expect("head");
    let MergeOutcome::Merged { conflicts, .. } =
        main.merge_into_branch(theirs, "other").expect("merge")
    else {
        panic!("a merge commit");
    };
    assert_eq!(conflicts.len(), 4);
    let kinds = open(&main);
    let want = [
        ("a", "edit/edit"),
        ("gone", "edit/remove"),
        ("v/2", "edit/edit"),
        ("v/10", "edit/edit"),
    ];
    let got: Vec<(&str, String)> = kinds
        .iter()
        .map(|(p, k)| (p.as_str(), k.to_string()))
        .collect();
    assert_eq!(got, want.map(|(p, k)| (p, k.to_owned())));
    // The value holds ours meanwhile, and no reader sees the record.
    let expected = r#"{"a":2,"v":[0,1,20,3,4,5,6,7,8,9,100,11]}"#;
    assert_eq!(value(&main), v(expected));
    let root = main
        .commit_root(main.head_commit().expect("head"))
        .expect("root");
    let dir = main.read_dir(root).expect("dir");
    assert!(dir.entries.iter().all(|c| !c.name.starts_with(".valfs")));
    assert_eq!(main.entry_count(root).expect("count"), 2);
    assert_eq!(main.subdir_count(root).expect("dirs"), Some(1));
    assert!(matches!(
        main.node_at(root, &Path::parse(".valfs-conflicts")),
        Err(StoreError::NotFound(_))
    ));
    // Plain git shows the record.
    let out = git(main.path(), &["show", "HEAD:.valfs-conflicts/v%2F10/kind"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "edit/edit\n");
    let out = git(
        main.path(),
        &["show", "HEAD:.valfs-conflicts/v%2F10/theirs"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "101\n");
    fsck(&main);
}

/// A store on `main` whose head has an edit/edit conflict at `a`, and the other branch.
fn conflicted(doc: &str) -> (tempfile::TempDir, Store, Store) {
    let (d, main, other) = branches(doc);
    set(&main, "a", "2");
    let theirs = set(&other, "a", "3");
    main.merge_into_branch(theirs, "other").expect("merge");
    assert_eq!(open(&main), vec![("a".into(), ConflictKind::BothEdited)]);
    (d, main, other)
}

#[test]
fn resolving_is_one_commit_and_only_of_open_conflicts() {
    let (_d, main, _other) = conflicted(r#"{"a":1,"b":1}"#);
    let before = main.head_commit().expect("head");
    let commit = main
        .resolve_conflicts(&[Path::parse("a")])
        .expect("resolve")
        .expect("a commit");
    let c = main.repo().find_commit(commit).expect("commit");
    assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![before]);
    assert_eq!(c.message().ok(), Some("resolve a"));
    assert!(open(&main).is_empty());
    assert_eq!(value(&main), v(r#"{"a":2,"b":1}"#));
    assert_eq!(
        main.resolve_conflicts(&[Path::parse("a")]).expect("again"),
        None
    );
    assert_eq!(main.resolve_conflicts(&[]).expect("none"), None);
    fsck(&main);
}

#[test]
fn saving_a_conflicted_path_can_resolve_it_in_the_same_commit() {
    let (_d, main, _other) = conflicted(r#"{"a":1,"v":[1,2,3]}"#);
    let before = main.head_commit().expect("head");
    let edits = [
        Edit::Set(Path::parse("a"), v("7")),
        Edit::Resolve(Path::parse("a")),
    ];
    let commit = main.apply(&edits, "write a").expect("apply").expect("made");
    assert_eq!(
        main.repo()
            .find_commit(commit)
            .expect("c")
            .parent_id(0)
            .ok(),
        Some(before)
    );
    assert_eq!(value(&main), v(r#"{"a":7,"v":[1,2,3]}"#));
    assert!(open(&main).is_empty());
}

#[test]
fn a_padded_index_resolves_the_element_it_names() {
    let (_d, main, other) = branches(r#"{"a":1,"v":[1,2,3]}"#);
    set(&main, "v/2", "30");
    let theirs = set(&other, "v/2", "31");
    main.merge_into_branch(theirs, "other").expect("merge");
    assert_eq!(open(&main), vec![("v/2".into(), ConflictKind::BothEdited)]);
    main.resolve_conflicts(&[Path::parse("v/02")])
        .expect("resolve")
        .expect("a commit");
    assert!(open(&main).is_empty());
}

#[test]
fn edits_keep_the_open_conflicts_and_put_back_values_bring_none() {
    let (_d, main, _other) = conflicted(r#"{"a":1,"m":{"x":1}}"#);
    let with_conflict = main.head_commit().expect("head");
    set(&main, "b", "1");
    main.apply(&[Edit::Remove(Path::parse("m"))], "rm m")
        .expect("rm");
    main.apply(&[Edit::Move(Path::parse("b"), Path::parse("c"))], "mv")
        .expect("mv");
    // The whole value replaced (an import).
    set(&main, "/", r#"{"z":1}"#);
    assert_eq!(open(&main), vec![("a".into(), ConflictKind::BothEdited)]);
    // Resolved, then the old root put back whole (a restore of `/`, a revert): the
    // resolution stays.
    main.resolve_conflicts(&[Path::parse("a")])
        .expect("resolve")
        .expect("made");
    main.restore(&with_conflict.to_string(), &Path::root(), &Path::root())
        .expect("restore");
    assert_eq!(value(&main), v(r#"{"a":2,"m":{"x":1}}"#));
    assert!(open(&main).is_empty());
    set(&main, "/", r#"{"y":1}"#);
    let old_root = main.commit_root(with_conflict).expect("root");
    main.commit_root_tree(old_root, "revert").expect("revert");
    assert_eq!(value(&main), v(r#"{"a":2,"m":{"x":1}}"#));
    assert!(open(&main).is_empty());
    fsck(&main);
}

#[test]
fn a_root_at_the_split_size_with_a_record_splits_as_the_value_says() {
    let keys: String = (0..1023).map(|i| format!("\"k{i}\":{i},")).collect();
    let doc = format!(r#"{{{keys}"a":1}}"#);
    let (_d, main, _other) = conflicted(&doc);
    // 1,024 keys, then 1,025: the value's tree is the one its value alone gives.
    for key in ["x", "y"] {
        set(&main, key, "1");
        let root = main
            .commit_root(main.head_commit().expect("head"))
            .expect("root");
        let fresh = main.write_value(&value(&main)).expect("write");
        assert_eq!(Node::Dir(split(&main, root).expect("split").value), fresh);
        assert_eq!(open(&main).len(), 1);
    }
    let root = main
        .commit_root(main.head_commit().expect("head"))
        .expect("root");
    assert_eq!(main.entry_count(root).expect("count"), 1026);
    fsck(&main);
}

#[test]
fn a_new_conflict_at_a_path_replaces_its_record() {
    let (_d, main, other) = conflicted(r#"{"a":1}"#);
    // Both sides edit `a` again after the first merge.
    let merged = main.head_commit().expect("head");
    other
        .repo()
        .reference("refs/heads/other", merged, true, "follow")
        .expect("move other");
    set(&main, "a", "4");
    let theirs = set(&other, "a", "5");
    main.merge_into_branch(theirs, "other").expect("merge");
    let all = main.conflicts().expect("conflicts");
    assert_eq!(all.len(), 1);
    let read = |n: Option<Node>| main.read_value(n.expect("node")).expect("read");
    assert_eq!(
        (read(all[0].base), read(all[0].ours), read(all[0].theirs)),
        (v("2"), v("4"), v("5"))
    );
}

#[test]
fn two_stores_merge_their_conflicts_and_a_resolution_wins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Store::init(&dir.path().join("a.git"), Format::Json, "main").expect("init");
    set(&a, "/", r#"{"x":0,"y":0,"z":0}"#);
    let b = clone_of(&a, dir.path());
    // Apart: both edit x; then each merges the other and both see one conflict at x.
    set(&a, "x", "1");
    set(&b, "x", "2");
    let theirs = fetch(&a, &b);
    a.merge_into_branch(theirs, "b").expect("merge");
    let theirs = fetch(&b, &a);
    assert!(matches!(
        b.merge_into_branch(theirs, "a").expect("merge"),
        MergeOutcome::FastForward(_)
    ));
    assert_eq!(open(&b), vec![("x".into(), ConflictKind::BothEdited)]);
    assert_eq!(value(&b), v(r#"{"x":1,"y":0,"z":0}"#));
    // Apart again: b resolves x and meets a conflict at y with a third store's change...
    let c = clone_of(&b, &dir.path().join("c"));
    set(&c, "y", "3");
    set(&b, "y", "4");
    b.resolve_conflicts(&[Path::parse("x")])
        .expect("resolve")
        .expect("made");
    let theirs = fetch(&b, &c);
    b.merge_into_branch(theirs, "c").expect("merge");
    assert_eq!(open(&b), vec![("y".into(), ConflictKind::BothEdited)]);
    // ...while a edits z, which conflicts with nothing.
    set(&a, "z", "5");
    // a merges b: x's resolution wins over a's unchanged record, y's conflict comes along.
    let theirs = fetch(&a, &b);
    let MergeOutcome::Merged { conflicts, .. } = a.merge_into_branch(theirs, "b").expect("merge")
    else {
        panic!("a merge commit");
    };
    assert!(conflicts.is_empty(), "nothing new conflicts: {conflicts:?}");
    assert_eq!(open(&a), vec![("y".into(), ConflictKind::BothEdited)]);
    assert_eq!(value(&a), v(r#"{"x":1,"y":4,"z":5}"#));
    // b takes it all as a fast-forward: both stores hold one value and one conflict set.
    let theirs = fetch(&b, &a);
    b.merge_into_branch(theirs, "a").expect("merge");
    assert_eq!(b.head_commit().expect("b"), a.head_commit().expect("a"));
    for s in [&a, &b, &c] {
        fsck(s);
    }
}

#[test]
fn conflict_sets_of_both_sides_merge_path_by_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::init(&dir.path().join("r.git"), Format::Json, "main").expect("init");
    let r = |t: &str| s.write_value(&v(t)).expect("write").oid();
    let base = r(r#"{"x":0,"y":0}"#);
    let with_x =
        super::super::merge_recording(&s, base, r(r#"{"x":1,"y":0}"#), r(r#"{"x":2,"y":0}"#))
            .expect("merge x");
    let with_y =
        super::super::merge_recording(&s, base, r(r#"{"x":0,"y":1}"#), r(r#"{"x":0,"y":2}"#))
            .expect("merge y");
    let both = super::super::merge_recording(&s, base, with_x.tree, with_y.tree).expect("merge");
    assert!(both.conflicts.is_empty());
    let paths: Vec<String> = s
        .conflicts_in(both.tree)
        .expect("conflicts")
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(paths, ["x", "y"]);
    assert_eq!(
        s.read_value(Node::Dir(both.tree)).expect("read"),
        v(r#"{"x":1,"y":1}"#)
    );
    // One side resolves x, the other leaves the record alone: the resolution wins.
    let resolved = s
        .apply_to_tree(both.tree, &[Edit::Resolve(Path::parse("x"))])
        .expect("resolve");
    let untouched = s
        .apply_to_tree(both.tree, &[Edit::Set(Path::parse("z"), v("1"))])
        .expect("edit");
    let after = super::super::merge_recording(&s, both.tree, untouched, resolved).expect("merge");
    let paths: Vec<String> = s
        .conflicts_in(after.tree)
        .expect("conflicts")
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(paths, ["y"]);
}

#[test]
fn stores_that_share_no_history_merge_as_if_from_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Store::init(&dir.path().join("a.git"), Format::Json, "main").expect("init");
    let b = Store::init(&dir.path().join("b.git"), Format::Json, "main").expect("init");
    set(&a, "/", r#"{"a":1,"same":0}"#);
    set(&b, "/", r#"{"a":2,"b":2,"same":0}"#);
    let theirs = fetch(&a, &b);
    let MergeOutcome::Merged { conflicts, .. } = a.merge_into_branch(theirs, "b").expect("merge")
    else {
        panic!("a merge commit");
    };
    assert_eq!(conflicts, vec![Path::parse("a")]);
    assert_eq!(value(&a), v(r#"{"a":1,"b":2,"same":0}"#));
    let c = &a.conflicts().expect("conflicts")[0];
    assert_eq!(c.base, None);
    fsck(&a);
}

#[test]
fn a_commit_that_is_not_a_value_is_not_merged() {
    let (_d, main, _other) = branches(r#"{"a":1}"#);
    let repo = main.repo();
    let empty = repo
        .treebuilder(None)
        .expect("builder")
        .write()
        .expect("tree");
    let sig = git2::Signature::now("t", "t@t").expect("sig");
    let tree = repo.find_tree(empty).expect("tree");
    let foreign = repo
        .commit(None, &sig, &sig, "not a value", &tree, &[])
        .expect("commit");
    let before = main.head_commit().expect("head");
    assert!(matches!(
        main.merge_into_branch(foreign, "elsewhere"),
        Err(StoreError::NotValfsBranch { .. })
    ));
    assert_eq!(main.head_commit().expect("head"), before);
}
