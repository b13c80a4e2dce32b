//! The merge rules, case by case (docs/FORMAT.md, "Merging").

use super::*;
use crate::codec::{Format, edn, json};
use crate::store::Edit;
use crate::value::Value;

fn store_of(format: Format) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::init(&dir.path().join("r.git"), format, "main").expect("init");
    (dir, store)
}

fn store() -> (tempfile::TempDir, Store) {
    store_of(Format::Json)
}

fn v(text: &str) -> Value {
    json::parse(text).expect("test JSON")
}

fn root(store: &Store, text: &str) -> Oid {
    store.write_value(&v(text)).expect("write").oid()
}

/// What the value reads as, and the conflicts (path, kind) a merge met.
type Outcome = (Value, Vec<(String, ConflictKind)>);

fn outcome(store: &Store, merged: &Merged) -> Outcome {
    let value = store.read_value(Node::Dir(merged.tree)).expect("read");
    let mut conflicts: Vec<(String, ConflictKind)> = merged
        .conflicts
        .iter()
        .map(|c| (c.path.to_string(), c.kind))
        .collect();
    conflicts.sort();
    // Every conflict met is recorded in the tree, and only those (none were open before).
    let recorded = store.conflicts_in(merged.tree).expect("conflicts");
    assert_eq!(recorded.len(), merged.conflicts.len());
    (value, conflicts)
}

/// Merges three JSON values (another branch into ours).
fn merge3(base: &str, ours: &str, theirs: &str) -> Outcome {
    let (_d, s) = store();
    let (b, o, t) = (root(&s, base), root(&s, ours), root(&s, theirs));
    let merged = merge_recording(&s, b, o, t).expect("merge");
    outcome(&s, &merged)
}

fn clean(value: &str) -> Outcome {
    (v(value), Vec::new())
}

fn conflicted(value: &str, at: &[(&str, ConflictKind)]) -> Outcome {
    let at = at.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect();
    (v(value), at)
}

#[test]
fn a_change_on_one_side_takes_that_side() {
    let base = r#"{"a":1,"b":{"x":[1,2]},"c":3}"#;
    let changed = r#"{"a":1,"b":{"x":[1,2,3]},"d":4}"#;
    assert_eq!(merge3(base, changed, base), clean(changed));
    assert_eq!(merge3(base, base, changed), clean(changed));
    // The same change on both sides is no conflict.
    assert_eq!(merge3(base, changed, changed), clean(changed));
}

#[test]
fn maps_merge_key_by_key_recursively() {
    assert_eq!(
        merge3(
            r#"{"m":{"x":1,"y":1,"z":{"deep":1}},"k":1,"gone":1}"#,
            r#"{"m":{"x":2,"y":1,"z":{"deep":1,"a":1}},"k":1,"new":1}"#,
            r#"{"m":{"x":1,"y":3,"z":{"deep":2}},"k":1}"#,
        ),
        clean(r#"{"m":{"x":2,"y":3,"z":{"deep":2,"a":1}},"k":1,"new":1}"#)
    );
    // Maps both sides made where there was none merge key by key too.
    assert_eq!(
        merge3("{}", r#"{"m":{"a":1}}"#, r#"{"m":{"b":2}}"#),
        clean(r#"{"m":{"a":1,"b":2}}"#)
    );
}

#[test]
fn sets_merge_member_by_member() {
    let (_d, s) = store_of(Format::Edn);
    let r = |t: &str| {
        let value = edn::parse(t).expect("test EDN");
        s.write_value(&value).expect("write").oid()
    };
    let merged = merge_recording(
        &s,
        r("{:s #{1 2 3} :t #{:a}}"),
        r("{:s #{1 2 3 4} :t #{:a}}"),
        r("{:s #{2 3 5} :t #{:a :b}}"),
    )
    .expect("merge");
    let (value, conflicts) = outcome(&s, &merged);
    assert_eq!(
        value,
        edn::parse("{:s #{2 3 4 5} :t #{:a :b}}").expect("EDN")
    );
    assert!(conflicts.is_empty());
}

#[test]
fn vectors_of_the_base_length_merge_element_by_element() {
    assert_eq!(
        merge3(
            r#"[{"n":0},{"n":1},{"n":2},3]"#,
            r#"[{"n":10},{"n":1},{"n":2,"k":true},3]"#,
            r#"[{"n":0},{"n":1},{"n":2,"j":1},30]"#,
        ),
        clean(r#"[{"n":10},{"n":1},{"n":2,"k":true,"j":1},30]"#)
    );
    // One element, one scalar, edited differently on both sides: a conflict there only.
    assert_eq!(
        merge3(r#"{"v":[1,2,3]}"#, r#"{"v":[1,5,4]}"#, r#"{"v":[0,6,3]}"#),
        conflicted(r#"{"v":[0,5,4]}"#, &[("v/1", ConflictKind::BothEdited)])
    );
}

#[test]
fn both_sides_appends_are_kept_ours_first() {
    assert_eq!(
        merge3(
            r#"{"v":[1,2]}"#,
            r#"{"v":[1,2,"o1","o2"]}"#,
            r#"{"v":[1,2,"t"]}"#
        ),
        clean(r#"{"v":[1,2,"o1","o2","t"]}"#)
    );
    // The same append on both sides is kept once.
    assert_eq!(
        merge3(r#"{"v":[1]}"#, r#"{"v":[1,2]}"#, r#"{"v":[1,2]}"#),
        clean(r#"{"v":[1,2]}"#)
    );
    // A save merged onto another writer's commit: that commit's elements keep their places.
    let (_d, s) = store();
    let (b, o, t) = (
        root(&s, r#"{"v":[1,2]}"#),
        root(&s, r#"{"v":[1,2,"save"]}"#),
        root(&s, r#"{"v":[1,2,"other"]}"#),
    );
    let merged = merge_roots(&s, Some(b), o, t, Order::TheirsFirst).expect("merge");
    assert_eq!(outcome(&s, &merged), clean(r#"{"v":[1,2,"other","save"]}"#));
}

#[test]
fn insertions_and_removals_that_do_not_overlap_merge() {
    // Ours removes 2 and appends 6; theirs inserts 0 in front and edits 4.
    assert_eq!(
        merge3(
            r#"{"v":[1,2,3,4,5]}"#,
            r#"{"v":[1,3,4,5,6]}"#,
            r#"{"v":[0,1,2,3,40,5]}"#,
        ),
        clean(r#"{"v":[0,1,3,40,5,6]}"#)
    );
    // A queue: ours takes the first element off and appends; theirs edits the second in place.
    assert_eq!(
        merge3(
            r#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#,
            r#"[{"id":"b"},{"id":"c"},{"id":"d"}]"#,
            r#"[{"id":"a"},{"id":"b","done":true},{"id":"c"}]"#,
        ),
        clean(r#"[{"id":"b","done":true},{"id":"c"},{"id":"d"}]"#)
    );
    // Insertions at one place keep both, ours first; both removing one element removes it once.
    assert_eq!(
        merge3(
            r#"{"v":[1,2,3]}"#,
            r#"{"v":["o",1,3]}"#,
            r#"{"v":["t",1,3]}"#
        ),
        clean(r#"{"v":["o","t",1,3]}"#)
    );
    // Overlapping removals remove what either removed.
    assert_eq!(
        merge3(r#"{"v":[1,2,3,4]}"#, r#"{"v":[3,4]}"#, r#"{"v":[1,4]}"#),
        clean(r#"{"v":[4]}"#)
    );
    // An element edited inside, on both sides, in a vector that also grew elsewhere.
    assert_eq!(
        merge3(
            r#"{"v":[{"a":1},2,3]}"#,
            r#"{"v":[{"a":1,"b":1},2,3,4]}"#,
            r#"{"v":[{"a":1,"c":1},2,0,3]}"#,
        ),
        clean(r#"{"v":[{"a":1,"b":1,"c":1},2,0,3,4]}"#)
    );
}

#[test]
fn two_different_edits_of_one_scalar_conflict() {
    let (_d, s) = store();
    let (b, o, t) = (
        root(&s, r#"{"a":1,"b":1}"#),
        root(&s, r#"{"a":2,"b":1}"#),
        root(&s, r#"{"a":3,"b":5}"#),
    );
    let merged = merge_recording(&s, b, o, t).expect("merge");
    assert_eq!(
        outcome(&s, &merged),
        conflicted(r#"{"a":2,"b":5}"#, &[("a", ConflictKind::BothEdited)])
    );
    let c = &merged.conflicts[0];
    let read = |n: Option<Node>| s.read_value(n.expect("a node")).expect("read");
    assert_eq!(
        (read(c.base), read(c.ours), read(c.theirs)),
        (v("1"), v("2"), v("3"))
    );
    // New scalars both sides added at one key conflict too (no base).
    assert_eq!(
        merge3("{}", r#"{"a":1}"#, r#"{"a":2}"#),
        conflicted(r#"{"a":1}"#, &[("a", ConflictKind::BothEdited)])
    );
    // So do vectors both made where there was none.
    assert_eq!(
        merge3(r#"{"a":null}"#, r#"{"a":[1]}"#, r#"{"a":[2]}"#),
        conflicted(r#"{"a":[1]}"#, &[("a", ConflictKind::BothEdited)])
    );
}

#[test]
fn an_edit_against_a_removal_conflicts_and_ours_stays() {
    let base = r#"{"a":{"x":1},"k":1}"#;
    assert_eq!(
        merge3(base, r#"{"k":1}"#, r#"{"a":{"x":2},"k":1}"#),
        conflicted(r#"{"k":1}"#, &[("a", ConflictKind::EditRemoved)])
    );
    assert_eq!(
        merge3(base, r#"{"a":{"x":2},"k":1}"#, r#"{"k":1}"#),
        conflicted(
            r#"{"a":{"x":2},"k":1}"#,
            &[("a", ConflictKind::EditRemoved)]
        )
    );
    // Recorded with what each side had: nothing for the side that removed.
    let (_d, s) = store();
    let merged = merge_recording(
        &s,
        root(&s, base),
        root(&s, r#"{"k":1}"#),
        root(&s, r#"{"a":{"x":2},"k":1}"#),
    )
    .expect("merge");
    let c = &merged.conflicts[0];
    assert!(c.base.is_some() && c.ours.is_none());
    let theirs = c.theirs.expect("theirs");
    assert_eq!(s.read_value(theirs).expect("read"), v(r#"{"x":2}"#));
}

#[test]
fn a_type_change_against_an_edit_conflicts() {
    assert_eq!(
        merge3(r#"{"a":1}"#, r#"{"a":[1]}"#, r#"{"a":2}"#),
        conflicted(r#"{"a":[1]}"#, &[("a", ConflictKind::TypeChanged)])
    );
    assert_eq!(
        merge3(r#"{"a":{"x":1}}"#, r#"{"a":{"x":2}}"#, r#"{"a":[1]}"#),
        conflicted(r#"{"a":{"x":2}}"#, &[("a", ConflictKind::TypeChanged)])
    );
    // Even at the root: the value stays ours.
    assert_eq!(
        merge3(r#"{"a":1}"#, r#"[1]"#, r#"{"a":2}"#),
        conflicted("[1]", &[("/", ConflictKind::TypeChanged)])
    );
}

#[test]
fn overlapping_splices_conflict_and_the_sequence_stays_ours() {
    // Ours replaces 2,3 by 9; theirs edits 3 in place.
    assert_eq!(
        merge3(
            r#"{"v":[1,2,3,4],"k":1}"#,
            r#"{"v":[1,9,4],"k":1}"#,
            r#"{"v":[1,2,8,4],"k":2}"#,
        ),
        conflicted(r#"{"v":[1,9,4],"k":2}"#, &[("v", ConflictKind::Splices)])
    );
    // An edit of an element the other side removed.
    assert_eq!(
        merge3(r#"{"v":[1,2,3]}"#, r#"{"v":[1,3]}"#, r#"{"v":[1,20,3]}"#),
        conflicted(r#"{"v":[1,3]}"#, &[("v", ConflictKind::Splices)])
    );
    // An element edited on one side, and on the other edited with an insertion right beside
    // it: which new element is the edited one cannot be told by ids.
    assert_eq!(
        merge3(
            r#"{"v":[{"a":1},2]}"#,
            r#"{"v":[{"a":1,"b":1},2]}"#,
            r#"{"v":[0,{"a":1,"c":1},2]}"#,
        ),
        conflicted(
            r#"{"v":[{"a":1,"b":1},2]}"#,
            &[("v", ConflictKind::Splices)]
        )
    );
}

#[test]
fn untouched_subtrees_are_shared_and_the_layout_is_canonical() {
    let (_d, s) = store();
    let big: String = (0..1500).map(|i| format!("\"k{i}\":{i},")).collect();
    let long = "l".repeat(300);
    let base = format!(
        r#"{{{big}"keep":{{"deep":[1,2,3]}},"v":[{}]}}"#,
        "0,".repeat(1500) + "0"
    );
    let ours = base.replace("\"k7\":7", "\"k7\":70").replacen(
        "\"keep\"",
        &format!("\"{long}\":1,\"keep\""),
        1,
    );
    let theirs = base
        .replace("\"k9\":9", "\"k9\":90")
        .replace("0]}", "0,1]}");
    let (b, o, t) = (root(&s, &base), root(&s, &ours), root(&s, &theirs));
    let merged = merge_recording(&s, b, o, t).expect("merge");
    assert!(merged.conflicts.is_empty());
    let want = base
        .replace("\"k7\":7", "\"k7\":70")
        .replace("\"k9\":9", "\"k9\":90")
        .replace("0]}", "0,1]}")
        .replacen("\"keep\"", &format!("\"{long}\":1,\"keep\""), 1);
    // The same tree as writing the merged value afresh: split buckets, long keys and all.
    assert_eq!(
        Node::Dir(merged.tree),
        s.write_value(&v(&want)).expect("write")
    );
    let keep = |root: Oid| s.node_at(root, &Path::parse("keep")).expect("keep");
    assert_eq!(keep(merged.tree), keep(b));
}

#[test]
fn a_save_merged_onto_another_writers_commit_records_its_conflicts() {
    let (_d, s) = store();
    let set = |k: &str, val: &str| Edit::Set(Path::parse(k), v(val));
    s.apply(&[set("a", "1"), set("v", "[1]")], "start")
        .expect("start");
    let head = s.head_commit().expect("head");
    let base = s.commit_root(head).expect("root");
    // Another writer commits first.
    s.apply(&[set("a", "2"), set("v/1", r#""other""#)], "other")
        .expect("other");
    let ours = s
        .apply_to_tree(base, &[set("a", "3"), set("v/1", r#""save""#)])
        .expect("ours");
    let commit = s
        .commit_onto(head, base, ours, "save")
        .expect("commit")
        .expect("made");
    // The save wins the conflict and the other writer's append keeps its place.
    let value = s.read_value(Node::Dir(s.commit_root(commit).expect("root")));
    assert_eq!(value.expect("read"), v(r#"{"a":3,"v":[1,"other","save"]}"#));
    let open = s.conflicts().expect("conflicts");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].path.to_string(), open[0].kind),
        ("a".into(), ConflictKind::BothEdited)
    );
    let read = |n: Option<Node>| s.read_value(n.expect("a node")).expect("read");
    assert_eq!((read(open[0].ours), read(open[0].theirs)), (v("3"), v("2")));
}
