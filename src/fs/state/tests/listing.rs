//! Listings: kept by number for the kernel's reads past their first part, vector gaps closed
//! at the next listing, inode numbers, forgetting.

use super::*;

fn names_of(l: &[Listed]) -> Vec<String> {
    l.iter().map(|l| l.name.clone()).collect()
}

#[test]
fn a_kept_listing_is_read_to_its_end_by_number_after_a_change() {
    let mut f = Fixture::new(r#"{"d": {"a": 1, "b": 2}}"#);
    let d = f.ino("d");
    let (first, l) = f.st.listing(d, None).expect("listing");
    assert_eq!(names_of(l), ["a", "b"]);
    f.write("d", "c", "3\n");
    // A reader half-way through the first listing goes on with it.
    let (no, l) = f.st.listing(d, Some(first)).expect("kept");
    assert_eq!((no, names_of(l)), (first, vec!["a".into(), "b".into()]));
    // A read from the start gets a new listing, under a new number.
    let (second, l) = f.st.listing(d, None).expect("new");
    assert_ne!(second, first);
    assert_eq!(names_of(l), ["a", "b", "c"]);
    // A number not kept (or never given) starts over.
    let (third, l) = f.st.listing(d, Some(9999)).expect("unknown");
    assert!(third != first && third != second);
    assert_eq!(names_of(l).len(), 3);
}

#[test]
fn each_folder_keeps_its_two_latest_listings() {
    let mut f = Fixture::new(r#"{"d": {"a": 1}, "e": {}}"#);
    let (d, e) = (f.ino("d"), f.ino("e"));
    let (one, _) = f.st.listing(d, None).expect("1");
    let (in_e, _) = f.st.listing(e, None).expect("e");
    f.st.listing_read(d, one);
    let (two, _) = f.st.listing(d, None).expect("2");
    let (three, _) = f.st.listing(d, None).expect("3");
    // The one read to its end went first; the others are still there.
    assert_eq!(f.st.listing(d, Some(three)).expect("kept").0, three);
    assert_eq!(f.st.listing(d, Some(two)).expect("kept").0, two);
    assert_eq!(f.st.listing(e, Some(in_e)).expect("other folder").0, in_e);
    assert_ne!(f.st.listing(d, Some(one)).expect("gone").0, one);
}

#[test]
fn rm_of_every_element_empties_a_vector_while_names_stay_put() {
    // `rm v/*`: the shell expanded the names before the first removal.
    let mut f = Fixture::new(r#"{"v": [10, 11, 12, 13]}"#);
    let before = f.commits();
    let v = f.ino("v");
    for name in f.names("v") {
        f.st.remove(v, &name, false).expect(&name);
    }
    assert_eq!(f.commits(), before + 4);
    assert_eq!(f.value(), serde_json::json!({"v": []}));
    assert!(f.names("v").is_empty());
}

#[test]
fn a_gap_closes_at_the_next_listing_and_names_shift_with_their_inodes() {
    let mut f = Fixture::new(r#"{"v": [10, 11, 12, 13]}"#);
    let v = f.ino("v");
    let three = f.ino("v/3");
    f.st.remove(v, "1", false).expect("rm v/1");
    assert_eq!(f.value(), serde_json::json!({"v": [10, 12, 13]}));
    let _ = f.st.take_epoch();
    // Until listed, 3 still names 13 and the next index is 4.
    assert_eq!(f.read("v/3"), "13\n");
    assert!(matches!(f.st.lookup(v, "1"), Err(FsError::NotFound)));
    assert_eq!(f.names("v"), ["0", "1", "2"]);
    assert!(f.st.take_epoch(), "the kernel must check its names again");
    assert_eq!(f.read("v/2"), "13\n");
    assert_eq!(f.ino("v/2"), three, "the element keeps its inode");
    assert!(matches!(f.st.lookup(v, "3"), Err(FsError::NotFound)));
    // Appending after the listing uses the closed numbering.
    let (_, fh) =
        f.st.create(v, "3", ROOT_USER, true, false, false)
            .expect("append");
    f.st.write(fh, 0, b"14\n").expect("write");
    f.st.flush(fh).expect("flush");
    f.st.release(fh);
    assert_eq!(f.value(), serde_json::json!({"v": [10, 12, 13, 14]}));
}

#[test]
fn indices_are_padded_to_one_width_and_any_spelling_finds_an_element() {
    let mut f = Fixture::new(r#"{"v": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}"#);
    let names = f.names("v");
    assert_eq!(names.first().map(String::as_str), Some("00"));
    assert_eq!(names.last().map(String::as_str), Some("10"));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names, "plain ls sorts them in element order");
    assert_eq!(f.ino("v/3"), f.ino("v/03"));
    assert_eq!(f.read("v/03"), "3\n");
    let v = f.ino("v");
    assert_eq!(f.st.lookup(v, "3").expect("3").1, Naming::Shifts);
}

#[test]
fn listed_numbers_are_the_lookups_and_survive_a_forget() {
    let mut f = Fixture::new(r#"{"d": {"a": 1, "b": {"c": 2}}}"#);
    let d = f.ino("d");
    let listed: Vec<(String, Ino, bool)> = {
        let (_, l) = f.st.listing(d, None).expect("listing");
        l.iter()
            .map(|l| (l.name.clone(), l.ino, l.is_dir))
            .collect()
    };
    for (name, ino, is_dir) in &listed {
        let (a, naming) = f.st.lookup(d, name).expect("lookup");
        assert_eq!((a.ino, a.is_dir, naming), (*ino, *is_dir, Naming::Stable));
    }
    let b = f.ino("d/b");
    let c = f.ino("d/b/c");
    // The kernel forgets them all: the same paths get the same numbers again.
    f.st.forget(c, 1);
    f.st.forget(b, 2);
    assert_eq!(f.ino("d/b/c"), c);
    assert_eq!(f.ino("d/b"), b);
}

#[test]
fn a_file_written_into_a_gap_is_inserted_there() {
    // `rm v/1; echo 99 > v/1`: two commits, and the element after the gap stays.
    let mut f = Fixture::new(r#"{"v": [10, 11, 12]}"#);
    let before = f.commits();
    let v = f.ino("v");
    f.st.remove(v, "1", false).expect("rm");
    f.write("v", "1", "99\n");
    assert_eq!(f.commits(), before + 2);
    assert_eq!(f.value(), serde_json::json!({"v": [10, 99, 12]}));
    assert_eq!(f.names("v"), ["0", "1", "2"]);
    assert_eq!(f.read("v/2"), "12\n");
}

#[test]
fn mkdir_into_a_gap_inserts_a_map_there() {
    let mut f = Fixture::new(r#"{"v": [10, 11, 12]}"#);
    let before = f.commits();
    let v = f.ino("v");
    f.st.remove(v, "1", false).expect("rm");
    let a = f.st.mkdir(v, "1", ROOT_DIR).expect("mkdir v/1");
    assert!(a.is_dir);
    assert_eq!(f.value(), serde_json::json!({"v": [10, {}, 12]}));
    assert_eq!(f.commits(), before + 2);
}

#[test]
fn mv_into_a_gap_inserts_there() {
    let mut f = Fixture::new(r#"{"v": [10, 11, 12], "x": "X"}"#);
    let v = f.ino("v");
    f.st.remove(v, "1", false).expect("rm");
    f.st.rename(ROOT, "x", v, "1", false, false)
        .expect("mv x v/1");
    assert_eq!(f.value(), serde_json::json!({"v": [10, "X", 12]}));

    let mut f = Fixture::new(r#"{"v": [10, 11, 12]}"#);
    let v = f.ino("v");
    f.st.remove(v, "1", false).expect("rm");
    f.write("v", "tmpab12cd34", "99\n");
    f.st.rename(v, "tmpab12cd34", v, "1", false, false)
        .expect("mv tmp v/1");
    assert_eq!(f.value(), serde_json::json!({"v": [10, 99, 12]}));
}
