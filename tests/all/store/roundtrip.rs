//! Import/export round trips of real-world documents, each checked with `git fsck --strict`,
//! and property tests over random values and edit histories.

use crate::common::{Repo, kp, v};
use proptest::prelude::*;
use std::collections::BTreeMap;
use valfs::codec::{MAX_DEPTH, json, name};
use valfs::store::{Edit, Node};
use valfs::value::{CollKind, Path, Value};

/// Imports `value` two ways (one pack + `Put`, and loose objects via `Set` at the root), reads
/// it back, checks both give the same tree and that fsck is clean.
fn round_trip(value: &Value) -> Repo {
    let packed = Repo::new();
    packed.import(value);
    assert_eq!(&packed.value(), value);
    assert_eq!(
        json::print(&packed.value()).unwrap(),
        json::print(value).unwrap()
    );
    packed.fsck();

    let loose = Repo::new();
    loose
        .apply(&[Edit::Set(Path::root(), value.clone())])
        .unwrap();
    assert_eq!(&loose.value(), value);
    assert_eq!(loose.root(), packed.root(), "same value, different trees");
    loose.fsck();
    packed
}

fn round_trip_text(text: &str) -> Repo {
    round_trip(&v(text))
}

fn nested_maps(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

#[test]
fn deep_nesting_200_levels() {
    round_trip_text(&nested_maps(200));
    round_trip_text(&format!("{}{}", "[".repeat(200), "]".repeat(200)));
    let mixed = format!("{}{}", r#"{"m":[{"k":["#.repeat(50), "]}]}".repeat(50));
    round_trip_text(&mixed);
}

/// Writing nests one call per level: at the limit, a debug build needs 3-4 MiB of stack, more
/// than a test thread's 2 MiB. Run it on 8 MiB, what the `valfs` binary's main thread has.
#[test]
fn nesting_up_to_the_limit_round_trips() {
    let text = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            round_trip_text(&text);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn unicode_keys_and_strings() {
    let repo = round_trip_text(
        r#"{"ключ":"значение","日本語":"テキスト","emoji 😀":"🎉🎉",
            "é":"precomposed","e\u0301":"combining","\u00a0":"nbsp","ß":"ss",
            "mixed":["Ελληνικά","עברית","中文", "\u2028\u2029", "\ufeff"]}"#,
    );
    assert_eq!(repo.git(&["show", "HEAD:ключ"]), "\"значение\"\n");
}

#[test]
fn escapes_in_strings() {
    let repo = round_trip_text(
        r#"{"s":"quote \" backslash \\ slash \/ \b\f\n\r\t \u0001\u001f\u007f",
            "pair":"\ud83d\ude00","nul":"a\u0000b"}"#,
    );
    assert_eq!(
        repo.git(&["show", "HEAD:nul"]),
        "\"a\\u0000b\"\n",
        "control characters are escaped in the blob"
    );
}

#[test]
fn numbers_keep_their_exact_text() {
    let repo = round_trip_text(
        r#"{"big":12345678901234567890,"neg":-123456789012345678901234567890,
            "huge":1e400,"tiny":1e-400,"negzero":-0.0,"intzero":-0,"exp":1E+2,
            "frac":0.1,"one":1.0,"e":2.5E-3,"list":[1,1.0,1e0,10E-1]}"#,
    );
    for (key, text) in [
        ("big", "12345678901234567890"),
        ("huge", "1e400"),
        ("negzero", "-0.0"),
        ("exp", "1E+2"),
    ] {
        assert_eq!(
            repo.git(&["show", &format!("HEAD:{key}")]),
            format!("{text}\n")
        );
    }
}

#[test]
fn empty_collections() {
    round_trip_text("{}");
    round_trip_text("[]");
    let repo = round_trip_text(r#"{"m":{},"v":[],"nested":[[],{},[[]],{"x":{}}]}"#);
    assert_eq!(repo.git(&["show", "HEAD:m/.valfs"]), "map\n");
    assert_eq!(repo.git(&["show", "HEAD:v/.valfs"]), "vector\n");
}

#[test]
fn awkward_keys_are_escaped_and_fsck_clean() {
    let repo = round_trip_text(
        r#"{"":1,".":2,"..":3,"...":4,"a/b":5,".git":6,".GIT":7,"%":8,"50%":9,
            "git~1":10,"GIT~1":11,".gitmodules":12,".valfs":13,".history":14,
            "nul\u0000":15,"new\nline":16,"tab\tkey":17,"back\\slash":18,
            ".g\u200cit":19,"%2E":20,"\"":22,"*":23," ":24,"-":25}"#,
    );
    let names = repo.git(&["ls-tree", "--name-only", "-z", "HEAD"]);
    let names: Vec<&str> = names.split('\0').filter(|n| !n.is_empty()).collect();
    for expected in [
        "%", "%2E", "%2E%2E", "a%2Fb", "%2Egit", "%2EGIT", "%25", "%67it~1",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.eq_ignore_ascii_case(".git")));
}

/// git refuses (hasDotgit) or parses as `.gitmodules`/`.gitattributes` every name NTFS could
/// treat as those files: `git~1.`, `GIT~1 `, `git~1:stream`, `gitmod~1`, `gi7eba~1`,
/// `gitatt~1`. Such keys must be escaped like `git~1`, or `git fsck --strict` fails.
#[test]
fn ntfs_short_names_of_git_files_keep_fsck_clean() {
    let long_line = "x".repeat(3000);
    let mut map = BTreeMap::new();
    for key in [
        "git~1.",
        "GIT~1 ",
        "git~1. .",
        "git~1:x",
        "git~1\\x",
        "gitmod~1",
        "GITMOD~4",
        "gitmod~1..",
        "gi7eba~1",
        "gi7eba~12",
        "gitatt~1",
        "gi7d29~1",
        ".gitmodules ",
    ] {
        map.insert(Value::string(key), Value::string(long_line.clone()));
    }
    // Names that only look similar stay as they are.
    for key in ["git~1abc", "git~2", "gitmod~5", "gitmod~1x"] {
        map.insert(Value::string(key), Value::string("plain"));
    }
    let repo = round_trip(&Value::Map(map));
    let names = repo.git(&["ls-tree", "--name-only", "HEAD"]);
    for plain in ["git~1abc", "git~2", "gitmod~5", "gitmod~1x"] {
        assert!(names.lines().any(|n| n == plain), "{plain} was escaped");
    }
}

#[test]
fn long_keys() {
    let k300 = "k".repeat(300);
    let shared = "p".repeat(250);
    let (a, b) = (
        format!("{shared}{}", "a".repeat(50)),
        format!("{shared}{}", "b".repeat(50)),
    );
    let slashes = "/".repeat(300);
    let wide = "é".repeat(150);
    let mut map = BTreeMap::new();
    for (i, k) in [&k300, &a, &b, &slashes, &wide].into_iter().enumerate() {
        map.insert(Value::string(k.clone()), Value::int(i as i64));
    }
    map.insert(
        Value::string("inner"),
        Value::Map([(Value::string(k300.clone()), v("[1,2]"))].into()),
    );
    let repo = round_trip(&Value::Map(map));
    let names = repo.git(&["ls-tree", "--name-only", "-z", "HEAD"]);
    let names: Vec<&str> = names.split_terminator('\0').collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(names.iter().all(|n| n.len() <= 255), "{names:?}");
    // The full keys live in the marker.
    let marker = repo.git(&["show", "HEAD:.valfs"]);
    assert!(marker.starts_with("map\n") && marker.contains(&a) && marker.contains(&b));
}

/// A long key's shortened name keeps its first 200 bytes; a tab or newline there broke the
/// marker's `name<TAB>key` lines, so the whole map became unreadable.
#[test]
fn long_key_with_tab_or_newline_reads_back() {
    for bad in ["\t", "\n", "\r\n", "a\tb\nc"] {
        let key = format!("{bad}{}", "k".repeat(300));
        let mut map = BTreeMap::new();
        map.insert(Value::string(key), Value::int(1));
        map.insert(Value::string("other"), Value::int(2));
        round_trip(&Value::Map(map));
    }
}

#[test]
fn numeric_keys_stay_a_map() {
    let repo = round_trip_text(r#"{"0":"zero","1":"one"}"#);
    assert!(matches!(repo.value(), Value::Map(_)));
    assert_eq!(repo.store.dir_kind(repo.root()).unwrap(), CollKind::Map);
    let repo = round_trip_text(r#"{"v":{"0":[],"1":{}}}"#);
    assert_eq!(repo.value(), v(r#"{"v":{"0":[],"1":{}}}"#));
}

#[test]
fn vector_of_maps_and_long_vectors_keep_their_order() {
    round_trip_text(r#"[{"name":"Joe","age":41,"tags":["a","b"]},{"name":"Ann","age":null},{}]"#);
    let items: Vec<Value> = (0..1000).map(|i| Value::int(999 - i)).collect();
    let repo = round_trip(&Value::Vector(items));
    assert_eq!(repo.git(&["show", "HEAD:10"]), "989\n");
}

#[test]
fn a_realistic_document() {
    round_trip_text(
        r#"{
          "name": "valfs", "version": "0.1.0", "private": true,
          "scripts": {"test": "cargo test", "build": "cargo build --release"},
          "dependencies": {"@scope/pkg": "^1.2.3", "left-pad": "1.0.0"},
          "type": "FeatureCollection",
          "features": [
            {"type": "Feature", "properties": {"name": "Zürich", "pop": 421878},
             "geometry": {"type": "Point", "coordinates": [8.5417, 47.3769]}},
            {"type": "Feature", "properties": {}, "geometry": null}
          ],
          "matrix": [[1,0,0],[0,1,0],[0,0,1]],
          "flags": [true, false, null]
        }"#,
    );
}

// ---- property tests ----

fn number() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        "(0|[1-9][0-9]{0,24})",
        proptest::option::of("[0-9]{1,6}"),
        proptest::option::of("[eE][+-]?[0-9]{1,3}"),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let float = frac.is_some() || exp.is_some();
            let mut text = if neg { "-".to_owned() } else { String::new() };
            text.push_str(&int);
            if let Some(f) = frac {
                text.push('.');
                text.push_str(&f);
            }
            text.push_str(&exp.unwrap_or_default());
            if float {
                Value::Float(text)
            } else {
                Value::Integer(text)
            }
        })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "", ".", "..", "/", "%", "%2E", ".git", ".GIT", "git~1", ".valfs", ".history", "0",
            "00", "é",
        ])
        .prop_map(str::to_owned),
        "[a-z%/.~0-9]{1,6}",
        "\\PC{0,8}",
        "[\\x00-\\x1f\"\\\\]{1,3}",
    ]
}

fn key() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => text(),
        1 => "[a-z/%\\t\\n]{250,300}",
    ]
    .prop_map(Value::String)
}

fn value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    scalar.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Vector),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(Value::Map),
        ]
    })
}

fn root_map() -> impl Strategy<Value = BTreeMap<Value, Value>> {
    prop::collection::btree_map(key(), value(), 0..8)
}

fn root() -> impl Strategy<Value = Value> {
    prop_oneof![
        root_map().prop_map(Value::Map),
        prop::collection::vec(value(), 0..8).prop_map(Value::Vector),
    ]
}

fn key_text(k: &Value) -> &str {
    let Value::String(s) = k else {
        panic!("JSON keys are strings")
    };
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn written_values_read_back(value in root()) {
        let repo = Repo::new();
        repo.import(&value);
        prop_assert_eq!(repo.value(), value.clone());
        let printed = json::print(&value).unwrap();
        prop_assert_eq!(json::parse(&printed).unwrap(), value);
    }

    /// The same value gives the same root tree whatever edits built it: one import, or
    /// key-by-key sets (in reverse order, over placeholders) followed by removals of extra
    /// keys, a long one included.
    #[test]
    fn same_value_same_tree_whatever_the_history(map in root_map()) {
        let value = Value::Map(map.clone());
        let imported = Repo::new();
        imported.import(&value);

        let edited = Repo::new();
        let extra_long = "x".repeat(300);
        // Long names cannot be created by name: start from a root that holds them.
        let mut start: BTreeMap<Value, Value> = map
            .keys()
            .filter(|k| name::is_long_name(&name::escape(key_text(k))))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        start.insert(Value::string(extra_long.clone()), v("[0]"));
        edited.apply(&[Edit::Set(Path::root(), Value::Map(start))]).unwrap();
        edited.apply(&[Edit::Set(kp(&["extra"]), v(r#"{"a":1}"#))]).unwrap();
        for (k, val) in map.iter().rev() {
            edited.apply(&[Edit::Set(kp(&[key_text(k)]), Value::Null)]).unwrap();
            edited.apply(&[Edit::Set(kp(&[key_text(k)]), val.clone())]).unwrap();
        }
        edited.apply(&[Edit::Remove(kp(&["extra"]))]).unwrap();
        edited.apply(&[Edit::Remove(kp(&[&extra_long]))]).unwrap();

        prop_assert_eq!(edited.value(), value);
        prop_assert_eq!(edited.root(), imported.root());
    }

    #[test]
    fn appended_vector_equals_imported_vector(items in prop::collection::vec(value(), 0..8)) {
        let value = Value::Vector(items.clone());
        let imported = Repo::new();
        imported.import(&value);
        let edited = Repo::new();
        edited.apply(&[Edit::Set(Path::root(), v("[]"))]).unwrap();
        for (i, item) in items.iter().enumerate() {
            edited.apply(&[Edit::Set(kp(&[&i.to_string()]), item.clone())]).unwrap();
        }
        // Append one more and remove it again.
        edited.apply(&[Edit::Set(kp(&[&items.len().to_string()]), v("{}"))]).unwrap();
        edited.apply(&[Edit::Remove(kp(&[&items.len().to_string()]))]).unwrap();
        prop_assert_eq!(edited.value(), value);
        prop_assert_eq!(edited.root(), imported.root());
    }
}

#[test]
fn packed_and_loose_nodes_agree() {
    let repo = Repo::new();
    let value = v(r#"{"a":[1,{"b":"c"}]}"#);
    let packed = repo.store.write_value_packed(&value, &mut |_| {}).unwrap();
    let loose = repo.store.write_value(&value).unwrap();
    assert_eq!(packed, loose);
    assert!(matches!(packed, Node::Dir(_)));
    assert_eq!(repo.store.read_value(packed).unwrap(), value);
}
