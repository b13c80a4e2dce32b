//! Structural sharing, counted: one scalar changed three names deep in a value of a million
//! scalars writes exactly one blob, three trees and one commit.

use crate::common::{Repo, all_objects, count_objects, kp, loose_objects};
use std::collections::BTreeMap;
use std::time::Instant;
use valfs::store::Edit;
use valfs::value::Value;

/// `n` x `n` x `n` maps keyed `k00`..; leaves are distinct integers, none of them small (so
/// that setting a small number really writes a new blob).
fn cube(n: usize) -> Value {
    let key = |i: usize| Value::string(format!("k{i:02}"));
    let mut top = BTreeMap::new();
    for i in 0..n {
        let mut mid = BTreeMap::new();
        for j in 0..n {
            let leaves = (0..n)
                .map(|k| {
                    let id = 1_000_000 + (i * n + j) * n + k;
                    (key(k), Value::Integer(id.to_string()))
                })
                .collect();
            mid.insert(key(j), Value::Map(leaves));
        }
        top.insert(key(i), Value::Map(mid));
    }
    Value::Map(top)
}

fn check_one_leaf_commit(n: usize) {
    let repo = Repo::new();
    let path = repo.path();

    let start = Instant::now();
    let value = cube(n);
    let built = start.elapsed();
    repo.import(&value);
    eprintln!(
        "structural sharing: {} scalars built in {built:.1?}, imported in {:.1?}",
        n * n * n,
        start.elapsed() - built
    );

    let loose_before = loose_objects(&path);
    let packed_before = count_objects(&path, "in-pack");
    let started = Instant::now();
    let commit = repo
        .apply(&[Edit::Set(kp(&["k01", "k02", "k03"]), Value::int(42))])
        .unwrap()
        .unwrap();
    eprintln!(
        "structural sharing: one-leaf set took {:.1?}",
        started.elapsed()
    );

    let new: Vec<String> = loose_objects(&path)
        .difference(&loose_before)
        .cloned()
        .collect();
    assert_eq!(count_objects(&path, "in-pack"), packed_before);
    let mut types: Vec<String> = new
        .iter()
        .map(|id| repo.git(&["cat-file", "-t", id]).trim().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["blob", "commit", "tree", "tree", "tree"],
        "new objects {new:?}"
    );
    assert!(new.contains(&commit.to_string()));
    for (tree, entries) in [
        ("HEAD^{tree}", n + 1),
        ("HEAD:k01", n + 1),
        ("HEAD:k01/k02", n + 1),
    ] {
        let id = repo.git(&["rev-parse", tree]).trim().to_owned();
        assert!(new.contains(&id), "{tree} was not rewritten");
        let listing = repo.git(&["ls-tree", &id]);
        assert_eq!(listing.lines().count(), entries, "{tree}");
    }
    let blob = repo
        .git(&["rev-parse", "HEAD:k01/k02/k03"])
        .trim()
        .to_owned();
    assert!(new.contains(&blob));
    assert_eq!(repo.git(&["cat-file", "-p", &blob]), "42\n");
    // Untouched siblings are shared with the previous commit, by id.
    let last = format!("k{:02}", n - 1);
    for shared in ["k00", "k01/k01", "k01/k02/k04", &last] {
        assert_eq!(
            repo.git(&["rev-parse", &format!("HEAD~1:{shared}")]),
            repo.git(&["rev-parse", &format!("HEAD:{shared}")]),
            "{shared}"
        );
    }

    let stat = repo.git(&["diff", "--stat", "HEAD~1", "HEAD"]);
    let last = stat.lines().last().unwrap();
    assert!(last.trim_start().starts_with("1 file changed"), "{stat}");
    assert!(stat.contains("k01/k02/k03"), "{stat}");
    let names = repo.git(&["diff", "--name-only", "HEAD~1", "HEAD"]);
    assert_eq!(names, "k01/k02/k03\n");
}

#[test]
fn one_leaf_in_small_cube_writes_five_objects() {
    check_one_leaf_commit(10);
}

#[test]
fn one_leaf_in_a_million_scalars_writes_five_objects() {
    check_one_leaf_commit(100);
}

#[test]
fn import_writes_each_distinct_object_once() {
    let repo = Repo::new();
    let before = all_objects(&repo.path());
    // 2 x 2 maps of the same leaves: the inner maps are one tree, stored once.
    let value = crate::common::v(r#"{"a":{"x":1,"y":2},"b":{"x":1,"y":2}}"#);
    repo.import(&value);
    let after = all_objects(&repo.path());
    let new: Vec<_> = after.difference(&before).collect();
    let count = |ty: &str| new.iter().filter(|(_, t)| t == ty).count();
    // Blobs: "1\n", "2\n" (the "map\n" marker existed already); trees: inner, root; commit.
    assert_eq!(
        (count("blob"), count("tree"), count("commit")),
        (2, 2, 1),
        "{new:?}"
    );
}
