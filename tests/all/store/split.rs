//! Large collections are split into buckets of subtrees: a save in a collection of 100,000
//! entries rewrites a few small trees; the tree of a value is the same whatever edits led to
//! it, also across the split threshold; everything reads back as one flat collection.

use crate::common::{Repo, kp, loose_objects, v};
use std::collections::{BTreeMap, BTreeSet};
use valfs::codec::{Format, name};
use valfs::store::{Edit, Node, SPLIT_OVER};
use valfs::value::{Path, Value};

fn map(n: usize) -> Value {
    Value::Map(
        (0..n)
            .map(|i| (Value::string(format!("k{i}")), Value::int(i as i64 + 1000)))
            .collect(),
    )
}

fn vector(n: usize) -> Value {
    Value::Vector((0..n).map(|i| Value::int(i as i64 + 1000)).collect())
}

fn set(n: usize) -> Value {
    Value::Set((0..n).map(|i| Value::string(format!("m{i}"))).collect())
}

/// The root tree of the head equals the tree written fresh from the same value.
fn assert_canonical(repo: &Repo, what: &str) {
    let value = repo.value();
    let fresh = repo.store.write_value(&value).unwrap();
    assert_eq!(
        Node::Dir(repo.root()),
        fresh,
        "{what}: not the canonical tree"
    );
}

fn under(value: Value) -> Value {
    Value::Map(BTreeMap::from([(Value::string("c"), value)]))
}

/// Entries added one by one across the threshold and removed again: after each save the tree
/// is the one a fresh write of the value gives, and the value is right.
#[test]
fn crossing_the_threshold_keeps_the_canonical_tree() {
    let start = SPLIT_OVER - 2;
    for (kind, value) in [
        ("map", map(start)),
        ("vector", vector(start)),
        ("set", set(start)),
    ] {
        let repo = Repo::new();
        repo.import(&under(value.clone()));
        let mut expected = value;
        for i in 0..5 {
            let edit = match &mut expected {
                Value::Map(m) => {
                    m.insert(Value::string(format!("new{i}")), Value::int(i));
                    Edit::Set(kp(&["c", &format!("new{i}")]), Value::int(i))
                }
                Value::Vector(items) => {
                    items.push(Value::int(i));
                    let idx = items.len() - 1;
                    Edit::Set(kp(&["c", &idx.to_string()]), Value::int(i))
                }
                Value::Set(s) => {
                    let m = Value::string(format!("new{i}"));
                    s.insert(m.clone());
                    let name = name::key_name(Format::Json, &m);
                    Edit::Set(Path(vec!["c".into(), name]), m)
                }
                _ => unreachable!(),
            };
            repo.apply(&[edit]).unwrap().unwrap();
            assert_eq!(repo.value(), under(expected.clone()), "{kind} add {i}");
            assert_canonical(&repo, &format!("{kind} add {i}"));
        }
        for i in 0..6 {
            let name = match &mut expected {
                Value::Map(m) => {
                    m.remove(&Value::string(format!("k{i}")));
                    format!("k{i}")
                }
                Value::Vector(items) => {
                    items.remove(7);
                    "7".to_owned()
                }
                Value::Set(s) => {
                    let member = Value::string(format!("m{i}"));
                    s.remove(&member);
                    name::key_name(Format::Json, &member)
                }
                _ => unreachable!(),
            };
            repo.apply(&[Edit::Remove(kp(&["c", &name]))])
                .unwrap()
                .unwrap();
            assert_eq!(repo.value(), under(expected.clone()), "{kind} remove {i}");
            assert_canonical(&repo, &format!("{kind} remove {i}"));
        }
        repo.fsck();
    }
}

/// The new objects of the last commit, by type.
fn new_objects(repo: &Repo, before: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let mut by_type = BTreeMap::new();
    for id in loose_objects(&repo.path()).difference(before) {
        let t = repo.git(&["cat-file", "-t", id]).trim().to_owned();
        *by_type.entry(t).or_insert(0) += 1;
    }
    by_type
}

/// One scalar set in a flat map or vector of 100,000 entries writes one blob, the trees on
/// its bucket path and the commit: no tree of 100,000 entries is rewritten.
#[test]
fn a_save_in_a_collection_of_100000_writes_a_few_small_trees() {
    let n = 100_000;
    // Maps of 100,000 split one level deep, vectors two (chunks of 256 under 256).
    for (value, path, trees) in [(map(n), "k4242", 2), (vector(n), "4242", 3)] {
        let repo = Repo::new();
        repo.import(&under(value));
        let before = loose_objects(&repo.path());
        repo.apply(&[Edit::Set(kp(&["c", path]), Value::int(7))])
            .unwrap()
            .unwrap();
        let mut expected = BTreeMap::new();
        expected.insert("blob".to_owned(), 1);
        // The root map, the collection's tree and its buckets on the path.
        expected.insert("tree".to_owned(), trees + 1);
        expected.insert("commit".to_owned(), 1);
        assert_eq!(new_objects(&repo, &before), expected, "set c/{path}");
        let biggest = repo.git(&["ls-tree", "HEAD:c"]).lines().count();
        assert!(
            biggest <= 257,
            "the collection's own tree has {biggest} entries"
        );
        assert_eq!(
            repo.store
                .read_value(repo.store.node_at(repo.root(), &kp(&["c", path])).unwrap())
                .unwrap(),
            Value::int(7)
        );
        if path == "4242" {
            // The example of FORMAT.md.
            assert_eq!(repo.git(&["show", "HEAD:c/%%01/%%11/70000"]), "71000\n");
        }
        assert_canonical(&repo, path);
        repo.fsck();
    }
}

/// Appending to, inserting into and removing from a split vector; a padded index finds its
/// element; moving an entry out of a split map into a small one.
#[test]
fn edits_of_split_collections_read_back_right() {
    let repo = Repo::new();
    let n = 3000;
    repo.import(&v(&format!(
        r#"{{"v":{},"m":{},"small":{{}}}}"#,
        valfs::codec::json::print(&vector(n)).unwrap(),
        valfs::codec::json::print(&map(n)).unwrap(),
    )));
    let mut vec_expected: Vec<Value> = (0..n).map(|i| Value::int(i as i64 + 1000)).collect();
    repo.apply(&[Edit::Insert(kp(&["v", "0"]), Value::int(-1))])
        .unwrap();
    vec_expected.insert(0, Value::int(-1));
    repo.apply(&[Edit::Remove(kp(&["v", "1500"]))]).unwrap();
    vec_expected.remove(1500);
    repo.apply(&[Edit::Set(kp(&["v", &n.to_string()]), Value::int(-2))])
        .unwrap();
    vec_expected.push(Value::int(-2));
    repo.apply(&[Edit::Move(kp(&["m", "k17"]), kp(&["small", "k17"]))])
        .unwrap();
    let value = repo.value();
    let Value::Map(top) = &value else { panic!() };
    let padded = Path(vec!["v".into(), "0002999".into()]);
    let node = repo.store.node_at(repo.root(), &padded).unwrap();
    assert_eq!(repo.store.read_value(node).unwrap(), vec_expected[2999]);
    assert_eq!(top[&Value::string("v")], Value::Vector(vec_expected));
    let Value::Map(m) = &top[&Value::string("m")] else {
        panic!()
    };
    assert_eq!(m.len(), n - 1);
    assert!(!m.contains_key(&Value::string("k17")));
    assert_eq!(top[&Value::string("small")], v(r#"{"k17":1017}"#));
    assert_canonical(&repo, "after the edits");
    repo.fsck();
}

/// Removing every entry of one bucket leaves no empty tree behind.
#[test]
fn emptying_a_bucket_removes_it() {
    let repo = Repo::new();
    repo.import(&under(map(2000)));
    let names: Vec<String> = repo
        .git(&["ls-tree", "--name-only", "HEAD:c/%%00"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        repo.apply(&[Edit::Remove(kp(&["c", name]))])
            .unwrap()
            .unwrap();
    }
    let top = repo.git(&["ls-tree", "--name-only", "HEAD:c"]);
    assert!(!top.lines().any(|l| l == "%%00"), "{top}");
    assert_canonical(&repo, "bucket emptied");
    repo.fsck();
}
