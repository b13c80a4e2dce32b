use super::*;
use crate::codec::{Format, edn, json};
use git2::ObjectType;
use proptest::prelude::any;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeSet;

fn store(format: Format) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::init(&dir.path().join("r.git"), format, "main").expect("init");
    (dir, store)
}

/// The reference: the edits applied one at a time.
fn one_by_one(store: &Store, mut root: Oid, edits: &[Edit]) -> Result<Oid> {
    for edit in edits {
        root = store.apply_one(root, edit)?;
    }
    Ok(root)
}

/// The batch gives the root (or the error) the edits give one at a time.
fn assert_same(store: &Store, root: Oid, edits: &[Edit]) -> Option<Oid> {
    let expected = one_by_one(store, root, edits).map_err(|e| e.to_string());
    let got = store.apply_to_tree(root, edits).map_err(|e| e.to_string());
    assert_eq!(got, expected, "{edits:#?}");
    got.ok()
}

/// A value from JSON text, or EDN text (for sets, lists and symbol keys).
fn parse(text: &str) -> Value {
    json::parse(text)
        .or_else(|_| edn::parse(text))
        .expect("test JSON or EDN")
}

fn write(store: &Store, text: &str) -> Oid {
    store.write_value(&parse(text)).expect("write").oid()
}

/// A map of `n` keys, or a vector of `n` elements, as JSON text.
fn big(n: usize, vector: bool) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            if vector {
                format!("{i}")
            } else {
                format!("\"k{i}\":{i}")
            }
        })
        .collect();
    let (open, close) = if vector { ("[", "]") } else { ("{", "}") };
    format!("{open}{}{close}", items.join(","))
}

/// Choices from a seed (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A random path to an existing entry (not the root), if the value has one.
fn pick_entry(store: &Store, root: Oid, r: &mut Rng) -> Option<Path> {
    let mut path = Path::root();
    let mut tree = root;
    loop {
        let dir = store.read_dir(tree).expect("read");
        if dir.entries.is_empty() {
            return (!path.is_root()).then_some(path);
        }
        let child = &dir.entries[r.below(dir.entries.len())];
        path = path.child(&child.name);
        match child.node {
            Node::Dir(t) if r.chance(60) => tree = t,
            _ => return Some(path),
        }
    }
}

/// A random collection: its path, kind and number of entries.
fn pick_coll(store: &Store, root: Oid, r: &mut Rng) -> (Path, CollKind, usize) {
    let mut path = Path::root();
    let mut tree = root;
    loop {
        let dir = store.read_dir(tree).expect("read");
        let dirs: Vec<_> = dir.entries.iter().filter(|c| c.node.is_dir()).collect();
        if dirs.is_empty() || r.chance(35) {
            return (path, dir.kind, dir.entries.len());
        }
        let child = dirs[r.below(dirs.len())];
        path = path.child(&child.name);
        tree = child.node.oid();
    }
}

fn random_value(store: &Store, r: &mut Rng) -> Value {
    let n = r.below(40);
    let edn = store.format == Format::Edn;
    let text = match r.below(if edn { 7 } else { 5 }) {
        0 | 1 => format!("{n}"),
        2 => format!("\"s{n}\""),
        3 => format!("{{\"x\":{n},\"y\":[{n},1]}}"),
        4 => format!("[{n},{{\"z\":{n}}}]"),
        5 => format!("#{{{n} :a}}"),
        _ => format!("({n} ({n}))"),
    };
    parse(&text)
}

/// A name for a new entry of a collection of `kind` holding `len` entries.
fn new_name(kind: CollKind, len: usize, r: &mut Rng) -> String {
    if kind.is_sequence() {
        return (if r.chance(70) { len } else { r.below(len + 1) }).to_string();
    }
    format!("n{}", r.below(60))
}

/// One random edit of the value at `root`; mostly valid, now and then one that fails.
fn random_edit(store: &Store, root: Oid, r: &mut Rng) -> Option<Edit> {
    let edit = match r.below(12) {
        0..=2 => Edit::Set(pick_entry(store, root, r)?, random_value(store, r)),
        3 => {
            let (path, kind, len) = pick_coll(store, root, r);
            Edit::Set(path.child(&new_name(kind, len, r)), random_value(store, r))
        }
        4 => Edit::Remove(pick_entry(store, root, r)?),
        5 => {
            let (path, kind, len) = pick_coll(store, root, r);
            if !kind.is_sequence() && r.chance(80) {
                return None;
            }
            Edit::Insert(
                path.child(&r.below(len + 1).to_string()),
                random_value(store, r),
            )
        }
        6 => {
            let from = pick_entry(store, root, r)?;
            let (path, kind, len) = pick_coll(store, root, r);
            Edit::Move(from, path.child(&new_name(kind, len, r)))
        }
        7 => Edit::Move(pick_entry(store, root, r)?, pick_entry(store, root, r)?),
        8 => {
            let node = store
                .node_at(root, &pick_entry(store, root, r)?)
                .expect("node");
            let (path, kind, len) = pick_coll(store, root, r);
            Edit::Put(path.child(&new_name(kind, len, r)), node)
        }
        10 | 11 => {
            // Around the size where the big collection is split, in either direction.
            let big = Path::parse("big");
            let dir = store.read_dir(store.node_at(root, &big).ok()?.oid()).ok()?;
            let n = dir.entries.len();
            let name = if dir.kind.is_sequence() {
                r.below(n + 1).to_string()
            } else if r.chance(50) {
                format!("n{}", r.below(8))
            } else {
                format!("k{}", r.below(n))
            };
            match (r.chance(50), dir.kind.is_sequence()) {
                (true, _) => Edit::Remove(big.child(&name)),
                (false, true) => Edit::Insert(big.child(&name), Value::int(-1)),
                (false, false) => Edit::Set(big.child(&name), Value::int(-1)),
            }
        }
        _ => {
            let p = pick_entry(store, root, r)?;
            match r.below(3) {
                0 => Edit::Move(p.clone(), p),
                1 => Edit::Remove(p.child("missing")),
                _ => Edit::Set(p.child("99999"), Value::int(1)),
            }
        }
    };
    Some(edit)
}

/// Edits from `seeds`, each valid on the value the ones before leave; now and then the batch
/// ends with one that fails.
fn random_edits(store: &Store, mut root: Oid, seeds: &[u64]) -> Vec<Edit> {
    let mut edits = Vec::new();
    for &seed in seeds {
        let mut r = Rng(seed);
        let Some(edit) = random_edit(store, root, &mut r) else {
            continue;
        };
        match store.apply_one(root, &edit) {
            Ok(next) => root = next,
            Err(_) if r.chance(90) => continue,
            Err(_) => {
                edits.push(edit);
                break;
            }
        }
        edits.push(edit);
    }
    edits
}

const STARTS: [&str; 3] = [
    r#"{"m":{"a":1,"b":[1,2,{"c":3}],"d":{}},"v":[1,[2],{"d":4},5],"s":"x"}"#,
    r#"{"m":{"a":1},"v":[1,{"e":[2]}],"big":BIG}"#,
    r#"{"w":[0,{"a":1}],"big":BIG}"#,
];

/// Randomized batches give the root the same edits give one by one: maps, vectors, EDN sets
/// and lists, nested collections, and collections around the size where they are split into
/// buckets (so that a batch crosses it, both ways).
#[test]
fn a_batch_gives_the_root_the_edits_give_one_by_one() {
    let (_dir, json_store) = store(Format::Json);
    let (_dir2, edn_store) = store(Format::Edn);
    let starts = |store: &Store| -> Vec<Oid> {
        let mut roots = vec![write(store, STARTS[0])];
        for (n, vector) in [(1023, false), (1026, false), (1023, true), (1026, true)] {
            roots.push(write(store, &STARTS[1].replace("BIG", &big(n, vector))));
            roots.push(write(store, &STARTS[2].replace("BIG", &big(n, vector))));
        }
        roots.push(write(store, "{s #{1 2 (3 4) #{5}} l (1 [2 3] {:k 4})}"));
        roots
    };
    let json_roots = starts(&json_store);
    let edn_roots = starts(&edn_store);
    let cases = 48;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        any::<bool>(),
        any::<usize>(),
        proptest::collection::vec(any::<u64>(), 1..40),
    );
    runner
        .run(&strategy, |(edn, start, seeds)| {
            let (store, roots) = if edn {
                (&edn_store, &edn_roots)
            } else {
                (&json_store, &json_roots)
            };
            let root = roots[start % roots.len()];
            let edits = random_edits(store, root, &seeds);
            assert_same(store, root, &edits);
            Ok(())
        })
        .expect("batch and edit by edit agree");
}

/// Edits the random test may not draw often: a folder opened but not changed after it was set
/// in the batch, a changed folder moved (into a set too), the root replaced mid-batch, a
/// sequence's elements shifting while held open, a move onto its source's parent.
#[test]
fn batches_of_chosen_edits_give_the_root_the_edits_give_one_by_one() {
    let (_dir, store) = store(Format::Edn);
    let p = Path::parse;
    let root = write(&store, "{m {a 1} v [{x 1} {y 2} {z 3}] s #{1}}");
    let v = parse;
    let batches = [
        vec![
            Edit::Set(p("m"), v("{a 2}")),
            Edit::Move(p("m/a"), p("m/a")),
        ],
        vec![
            Edit::Set(p("v/1/q"), v("5")),
            Edit::Move(p("v/1"), p("m/moved")),
            Edit::Set(p("m/moved/r"), v("6")),
        ],
        vec![
            Edit::Set(p("m/b"), v("2")),
            Edit::Move(p("m"), p("s/anything")),
        ],
        vec![
            Edit::Set(p("v/2/w"), v("7")),
            Edit::Insert(p("v/0"), v("0")),
            Edit::Remove(p("v/1")),
            Edit::Move(p("v/2"), p("v/0")),
            Edit::Set(p("v/0/w2"), v("8")),
        ],
        vec![
            Edit::Set(p("m/b"), v("2")),
            Edit::Set(Path::root(), v("{m {c 3}}")),
            Edit::Set(p("m/d"), v("4")),
        ],
        vec![Edit::Set(p("v/0/x"), v("9")), Edit::Set(p("v/0/x"), v("1"))],
        // The source's parent replaced by what is moved: the source is resolved again.
        vec![
            Edit::Set(p("v/1/y"), v("{y 5 q 6}")),
            Edit::Move(p("v/1/y"), p("v/01")),
            Edit::Set(p("v/1/r"), v("7")),
        ],
        vec![Edit::Move(p("v/1/y"), p("v/01"))],
        // Held open unchanged, then moved: written where it went.
        vec![
            Edit::Move(p("v/0/x"), p("v/0/x")),
            Edit::Insert(p("v/0"), v("0")),
        ],
        vec![Edit::Move(p("v/1/y"), p("v/1/y")), Edit::Remove(p("v/0"))],
        vec![
            Edit::Move(p("v/0/x"), p("v/0/x")),
            Edit::Move(p("v/0"), p("m/moved")),
        ],
        // Git orders a tree's entries as if a subtree's name ended in '/': "a-b" < "a" < "a0".
        vec![
            Edit::Set(p("m/a"), v("{q 1}")),
            Edit::Set(p("m/a-b"), v("1")),
            Edit::Set(p("m/a0"), v("2")),
        ],
    ];
    for edits in batches {
        assert_same(&store, root, &edits);
    }
}

/// Batches that take a collection across the size where it is split into buckets, up, down,
/// and up then down again.
#[test]
fn batches_across_the_split_size_give_the_root_the_edits_give_one_by_one() {
    let (_dir, store) = store(Format::Json);
    let p = Path::parse;
    let set = |name: &str| Edit::Set(p(&format!("big/{name}")), Value::int(-1));
    let rm = |name: &str| Edit::Remove(p(&format!("big/{name}")));
    let insert = || Edit::Insert(p("big/0"), Value::int(-1));
    for (n, vector) in [(1023, false), (1026, false), (1023, true), (1026, true)] {
        let root = write(&store, &format!(r#"{{"big":{},"o":1}}"#, big(n, vector)));
        let batches = if vector {
            [
                vec![insert(), insert(), insert(), set("5")],
                vec![rm("0"), rm("0"), rm("0"), set("5")],
                vec![insert(), insert(), rm("0"), rm("3"), set("7")],
            ]
        } else {
            [
                vec![set("n0"), set("n1"), set("n2"), set("k5")],
                vec![rm("k0"), rm("k1"), rm("k2"), set("k5")],
                vec![set("n0"), set("n1"), rm("n0"), rm("k3"), set("k7")],
            ]
        };
        for edits in batches {
            assert_same(&store, root, &edits).expect("applies");
        }
    }
}

/// A tree valfs did not write (a vector with padded indices, a symlink in a map) is edited the
/// edit-by-edit way, with the same outcome; one found once a move has begun (its source reached
/// through what it put) takes the whole batch that way.
#[test]
fn trees_valfs_did_not_write_are_edited_as_edit_by_edit() {
    let (_dir, store) = store(Format::Json);
    let repo = store.repo();
    let blob = |t: &str| store.write_blob(t.as_bytes()).expect("blob");
    let tree = |entries: &[(&str, Oid, i32)]| {
        let mut b = repo.treebuilder(None).expect("builder");
        for (name, id, mode) in entries {
            b.insert(name, *id, *mode).expect("insert");
        }
        b.write().expect("tree")
    };
    let padded = tree(&[
        (MARKER, blob("vector\n"), MODE_BLOB),
        ("00", blob("1\n"), MODE_BLOB),
        ("01", blob("2\n"), MODE_BLOB),
    ]);
    let with_link = tree(&[
        (MARKER, blob("map\n"), MODE_BLOB),
        ("a", blob("1\n"), MODE_BLOB),
        ("l", blob("a"), 0o120000),
    ]);
    let other = write(&store, r#"{"x":1}"#);
    // [0, {"k": {"k": 1, "l": a symlink}}]: `mv hv/1/k hv/01` puts the foreign tree where the
    // source's parent was, and the source is found in it.
    let inner = tree(&[
        (MARKER, blob("map\n"), MODE_BLOB),
        ("k", blob("1\n"), MODE_BLOB),
        ("l", blob("k"), 0o120000),
    ]);
    let holder = tree(&[(MARKER, blob("map\n"), MODE_BLOB), ("k", inner, MODE_TREE)]);
    let hv = tree(&[
        (MARKER, blob("vector\n"), MODE_BLOB),
        ("0", blob("0\n"), MODE_BLOB),
        ("1", holder, MODE_TREE),
    ]);
    let root = tree(&[
        (MARKER, blob("map\n"), MODE_BLOB),
        ("v", padded, MODE_TREE),
        ("m", with_link, MODE_TREE),
        ("o", other, MODE_TREE),
        ("hv", hv, MODE_TREE),
        ("nm", tree(&[("a", blob("1\n"), MODE_BLOB)]), MODE_TREE),
    ]);
    let p = Path::parse;
    let batches = [
        vec![
            Edit::Set(p("o/y"), Value::int(2)),
            Edit::Set(p("v/0"), Value::int(5)),
            Edit::Set(p("o/z"), Value::int(3)),
        ],
        vec![
            Edit::Set(p("m/l"), Value::int(4)),
            Edit::Remove(p("m/a")),
            Edit::Insert(p("v/1"), Value::int(6)),
            Edit::Remove(p("v/0")),
            Edit::Set(p("o/x"), Value::int(7)),
        ],
        vec![
            Edit::Set(p("o/y"), Value::int(2)),
            Edit::Move(p("hv/1/k"), p("hv/01")),
            Edit::Set(p("o/z"), Value::int(3)),
        ],
        // A map without a marker (as another tool may write one) is one valfs reads the same.
        vec![
            Edit::Set(p("nm/b"), Value::int(2)),
            Edit::Remove(p("nm/a")),
            Edit::Set(p("o/z"), Value::int(3)),
        ],
    ];
    for edits in batches {
        assert_same(&store, root, &edits);
    }
}

/// The loose objects of a store.
fn objects(store: &Store) -> BTreeSet<Oid> {
    let mut out = BTreeSet::new();
    let dir = store.repo().path().join("objects");
    for d in std::fs::read_dir(dir).expect("objects") {
        let d = d.expect("entry");
        let prefix = d.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 {
            continue;
        }
        for f in std::fs::read_dir(d.path()).expect("dir") {
            let name = f.expect("entry").file_name().to_string_lossy().into_owned();
            out.insert(Oid::from_str(&format!("{prefix}{name}")).expect("oid"));
        }
    }
    out
}

/// How many trees the batch writes: the new loose trees.
fn trees_written(store: &Store, root: Oid, edits: &[Edit]) -> (Oid, usize) {
    let before = objects(store);
    let after = store.apply_to_tree(root, edits).expect("batch");
    let odb = store.repo().odb().expect("odb");
    let trees = (objects(store).difference(&before))
        .filter(|id| odb.read_header(**id).expect("header").1 == ObjectType::Tree)
        .count();
    assert_eq!(
        Ok(after),
        one_by_one(store, root, edits).map_err(|e| e.to_string())
    );
    (after, trees)
}

/// A batch of sets in one folder writes the folder and each of its ancestors once (edit by
/// edit, each set rewrote all of them: 3 trees a set here).
#[test]
fn a_batch_of_sets_in_one_folder_writes_each_changed_tree_once() {
    let (_dir, store) = store(Format::Json);
    let root = write(&store, r#"{"a":{"b":{"x":0},"c":[1]},"d":{"e":1}}"#);
    let edits: Vec<Edit> = (0..100)
        .map(|i| Edit::Set(Path::parse(&format!("a/b/k{i}")), Value::int(1000 + i)))
        .collect();
    let (_, trees) = trees_written(&store, root, &edits);
    assert_eq!(trees, 3, "a/b, a and the root");
}

/// In a collection split into buckets, each bucket a batch changes is written once: sets of
/// keys, and inserts at the front of a vector (which shift every element).
#[test]
fn a_batch_in_a_split_collection_writes_each_changed_bucket_once() {
    let (_dir, store) = store(Format::Json);
    let root = write(
        &store,
        &format!(
            r#"{{"a":{{"m":{},"v":{}}}}}"#,
            big(2000, false),
            big(1100, true)
        ),
    );
    let keys: Vec<String> = (0..30).map(|i| format!("k{}", i * 61)).collect();
    let edits: Vec<Edit> = (keys.iter().enumerate())
        .map(|(i, k)| Edit::Set(Path::parse(&format!("a/m/{k}")), Value::int(-(i as i64))))
        .collect();
    let levels = layout::levels(CollKind::Map, 2000);
    let buckets: BTreeSet<String> = (keys.iter())
        .map(|k| layout::bucket_path(CollKind::Map, k, levels))
        .collect();
    let (_, trees) = trees_written(&store, root, &edits);
    assert_eq!(trees, buckets.len() + 3, "the buckets, a/m, a and the root");

    let edits: Vec<Edit> = (0..10)
        .map(|i| Edit::Insert(Path::parse("a/v/0"), Value::int(-i)))
        .collect();
    let (_, trees) = trees_written(&store, root, &edits);
    // 1110 elements in 5 chunks of 256, all shifted.
    assert_eq!(trees, 5 + 3, "the 5 chunks, a/v, a and the root");

    // A bucket emptied goes, as libgit2's tree updates drop it edit by edit.
    let bucket = layout::bucket_path(CollKind::Map, "k0", levels);
    let edits: Vec<Edit> = (0..2000)
        .map(|i| format!("k{i}"))
        .filter(|k| layout::bucket_path(CollKind::Map, k, levels) == bucket)
        .map(|k| Edit::Remove(Path::parse(&format!("a/m/{k}"))))
        .collect();
    let (after, _) = trees_written(&store, root, &edits);
    let m = store.node_at(after, &Path::parse("a/m")).expect("a/m");
    let top = store.repo().find_tree(m.oid()).expect("tree");
    assert!(top.get_name(bucket.trim_end_matches('/')).is_none());
}

/// Keys too long for a name keep their full text in the marker: a batch that removes one,
/// moves another and adds short keys leaves the marker edit by edit would.
#[test]
fn a_batch_keeps_the_marker_of_long_keys_as_edit_by_edit() {
    let (_dir, store) = store(Format::Json);
    let (long, other) = ("k".repeat(300), "o".repeat(300));
    let root = write(
        &store,
        &format!(r#"{{"m":{{"{long}":1,"{other}":2,"a":3}}}}"#),
    );
    let path = |key: &str| Path(vec!["m".into(), name::escape(key)]);
    let batches = [
        vec![
            Edit::Remove(path(&long)),
            Edit::Set(path("b"), Value::int(4)),
        ],
        vec![
            Edit::Move(path(&long), path("c")),
            Edit::Remove(path(&other)),
            Edit::Set(path("a"), Value::int(5)),
        ],
        vec![
            Edit::Set(path("a"), Value::int(6)),
            Edit::Remove(path(&other)),
        ],
    ];
    for edits in batches {
        assert_same(&store, root, &edits).expect("applies");
    }
}
