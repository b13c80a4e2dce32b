//! Key escaping: every key's name is one valid path component that git accepts (libgit2's own
//! check of tree entry names) and that decodes back to the key (for names not shortened); only
//! canonical names decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valfs::codec::name::{self, Decoded, NAME_MAX};
use valfs::codec::{Format, edn};
use valfs::value::Value;

thread_local! {
    /// A repository (and a blob in it) to ask libgit2 whether a name may be a tree entry.
    static REPO: (tempfile::TempDir, git2::Repository, git2::Oid) = {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = git2::Repository::init_bare(dir.path()).expect("git init");
        let blob = repo.blob(b"1\n").expect("a blob");
        (dir, repo, blob)
    };
}

fn check_name(text: &str) {
    let n = name::escape(text);
    assert!(!n.is_empty() && n.len() <= NAME_MAX, "{n:?}");
    assert!(!n.contains('/') && !n.contains('\0'), "{n:?}");
    assert!(
        n != "." && n != ".." && n != ".valfs" && n != ".history",
        "{n:?}"
    );
    assert!(!n.to_lowercase().starts_with(".git"), "{n:?}");
    REPO.with(|(_, repo, blob)| {
        let mut tb = repo.treebuilder(None).expect("treebuilder");
        tb.insert(&n, *blob, 0o100644)
            .unwrap_or_else(|e| panic!("git refuses the name {n:?}: {e}"));
    });
    match name::unescape(&n) {
        Ok(Decoded::Text(t)) => assert_eq!(t, text, "{n:?}"),
        Ok(Decoded::Long) => assert!(name::is_long_name(&n)),
        Err(e) => panic!("{n:?} does not decode: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_name(text);
    // Any text taken as a name decodes only if it is the canonical name of what it decodes to.
    if let Ok(Decoded::Text(t)) = name::unescape(text) {
        assert_eq!(name::escape(&t), text, "a second spelling of {t:?}");
    }
    // Keys of an EDN store show as their EDN text, and that text reads back as the key.
    let key = edn::parse(text).unwrap_or_else(|_| Value::String(text.into()));
    for (format, key) in [
        (Format::Json, Value::String(text.into())),
        (Format::Edn, key),
    ] {
        let t = name::key_text(format, &key);
        check_name(&t);
        assert_eq!(name::text_key(format, &t), key, "{format}: {t:?}");
    }
});
