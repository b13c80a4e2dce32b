//! The `.history` view: every version, oldest first, frozen and read-only; revisions, hashes
//! and times name versions too.

use super::*;

/// The listed version names, oldest first.
fn versions(f: &mut Fixture) -> Vec<String> {
    let his = f.ino(".history");
    let (_, l) = f.st.listing(his, None).expect(".history listing");
    l.iter().map(|l| l.name.clone()).collect()
}

#[test]
fn every_commit_is_listed_in_commit_order_with_its_value() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    f.write("", "a", "2\n");
    f.write("", "a", "3\n");
    let names = versions(&mut f);
    assert_eq!(names.len(), f.commits());
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names, "plain ls lists them oldest first");
    let n = names.len();
    for (name, text) in names[n - 3..].iter().zip(["1\n", "2\n", "3\n"]) {
        assert_eq!(f.read(&format!(".history/{name}/a")), text, "{name}");
        // Named by time and hash: YYYY-MM-DDTHHMMSSZ-NN-<hash>.
        assert_eq!(name.as_bytes()[17], b'Z', "{name}");
        let hash = name.rsplit('-').next().expect("hash");
        assert!(hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[test]
fn revisions_hashes_and_times_name_versions() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    f.write("", "a", "2\n");
    let names = versions(&mut f);
    let last = names.last().expect("a version").clone();
    assert_eq!(f.read(".history/HEAD/a"), "2\n");
    assert_eq!(f.read(".history/HEAD~1/a"), "1\n");
    let hash = last.rsplit('-').next().expect("hash").to_owned();
    assert_eq!(f.read(&format!(".history/{hash}/a")), "2\n");
    assert_eq!(f.read(".history/@2999-01-01/a"), "2\n");
    let his = f.ino(".history");
    for unknown in ["nosuch", "@1970-01-01", "HEAD~99"] {
        assert!(
            matches!(f.st.lookup(his, unknown), Err(FsError::NotFound)),
            "{unknown}"
        );
    }
    // Revisions are looked up but not listed.
    assert!(!versions(&mut f).iter().any(|n| n.starts_with("HEAD")));
}

#[test]
fn head_follows_new_commits_and_a_version_stays_frozen() {
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let his = f.ino(".history");
    let old = f.ino(".history/HEAD");
    let old_a = f.ino(".history/HEAD/a");
    let fh = f.st.open(old_a, false, false, false).expect("open").fh;
    assert!(
        f.st.open(old_a, false, false, false).expect("open").keep,
        "cached for ever"
    );
    f.write("", "a", "2\n");
    assert_eq!(f.st.lookup(his, "HEAD").expect("HEAD").1, Naming::Moves);
    assert_ne!(f.ino(".history/HEAD"), old);
    assert_eq!(f.read(".history/HEAD/a"), "2\n");
    assert_eq!(f.read_fh(fh), "1\n", "an open version never changes");
    f.st.release(fh);
    // A listed name keeps its version.
    let first = versions(&mut f)[f.commits() - 2].clone();
    let listed = f.ino(&format!(".history/{first}"));
    f.write("", "a", "3\n");
    assert_eq!(f.ino(&format!(".history/{first}")), listed);
    assert_eq!(f.read(&format!(".history/{first}/a")), "1\n");
}

#[test]
fn entries_looked_up_under_a_revision_stay_readable_after_it_moves() {
    // `cd .history/HEAD; git commit…; cat a`: the kernel still holds the old HEAD's inodes.
    let mut f = Fixture::new(r#"{"a": 1}"#);
    let old = f.ino(".history/HEAD");
    let old_a = f.ino(".history/HEAD/a");
    f.write("", "a", "2\n");
    let _ = f.ino(".history/HEAD");
    assert!(f.st.getattr(old).expect("the old HEAD folder").is_dir);
    assert_eq!(
        f.st.lookup(old, "a").expect("a in the old HEAD").0.ino,
        old_a
    );
    let fh = f.st.open(old_a, false, false, false).expect("open").fh;
    assert_eq!(f.read_fh(fh), "1\n");
    f.st.release(fh);
}

#[test]
fn a_version_is_read_only_with_read_only_modes_and_its_commit_time() {
    let mut f = Fixture::new(r#"{"a": 1, "d": {"x": 1}, "v": [1, 2]}"#);
    let last = versions(&mut f).last().expect("version").clone();
    let head = f.st.store.head_commit().expect("head");
    let time = SystemTime::UNIX_EPOCH
        + Duration::from_secs(f.st.store.commit_time(head).expect("time") as u64);
    let a = f.attr(&format!(".history/{last}/a"));
    assert_eq!(
        (a.perm, a.read_only, a.mtime, a.cache),
        (0o444, true, time, Cache::Frozen)
    );
    let d = f.attr(&format!(".history/{last}/d"));
    assert_eq!((d.perm, d.mtime), (0o555, time));
    assert_eq!(f.names(&format!(".history/{last}/v")), ["0", "1"]);
    let v = f.ino(&format!(".history/{last}/v"));
    assert_eq!(
        f.st.getxattr(v, State::TYPE_XATTR).expect("type"),
        b"vector"
    );
    assert_eq!(
        f.st.naming(v),
        Naming::Stable,
        "a version's elements never shift"
    );

    let before = f.commits();
    let version = f.ino(&format!(".history/{last}"));
    let dir = f.ino(&format!(".history/{last}/d"));
    let ro = |r: Result<()>| matches!(r, Err(FsError::ReadOnly));
    assert!(ro(f.st.remove(version, "a", false)));
    assert!(ro(f.st.remove(dir, "x", false)));
    assert!(ro(f.st.remove(version, "d", true)));
    assert!(ro(f
        .st
        .rename(version, "a", version, "b", false, false)
        .map(drop)));
    assert!(ro(f
        .st
        .rename(version, "a", ROOT, "b", false, false)
        .map(drop)));
    assert!(ro(f.st.mkdir(dir, "y", ROOT_DIR).map(drop)));
    assert!(ro(f.st.symlink(dir, "y~", b"x", ROOT_USER).map(drop)));
    assert!(ro(f.st.setattr(a.ino, SetAttr::default()).map(drop)));
    assert!(ro(f.st.setxattr(a.ino, "user.x", b"1")));
    assert!(ro(f.st.setxattr(a.ino, State::TYPE_XATTR, b"string")));
    assert!(ro(f.st.open(a.ino, false, true, false).map(drop)));
    assert_eq!(f.commits(), before);
}
