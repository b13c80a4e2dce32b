//! Scratch files: real files outside the value, any bytes, kept across remounts, moving with
//! their folder, and an orphan's bytes while a descriptor has it open.

use super::*;

/// The scratch folder's files, relative to it (orphans included).
fn real_files(f: &Fixture) -> Vec<String> {
    let root = f.repo().join("valfs").join("scratch-main");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).expect("below").to_string_lossy();
                out.push(rel.into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_scratch_file_holds_any_bytes_and_commits_nothing() {
    let mut f = Fixture::new(r#"{"d": {"a": 1}}"#);
    let before = f.commits();
    let d = f.ino("d");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let (_, fh) =
        f.st.create(d, ".a.swp", ROOT_USER, true, false, false)
            .expect("create");
    f.st.write(fh, 0, &bytes).expect("write");
    f.st.write(fh, 5000, b"tail").expect("write at the end");
    f.st.flush(fh).expect("flush");
    assert_eq!(f.st.read(fh, 4998, 10).expect("read"), b"\x86\x87tail");
    f.st.release(fh);
    assert_eq!(f.attr("d/.a.swp").size, 5004);
    assert_eq!(f.commits(), before);
    assert_eq!(real_files(&f), ["d/.a.swp"]);
    assert_eq!(f.names("d"), ["a", ".a.swp"]);
    // Truncated by setattr and by an O_TRUNC open, on the real file.
    let swp = f.ino("d/.a.swp");
    let a =
        f.st.setattr(
            swp,
            SetAttr {
                size: Some(10),
                mode: Some(0o600),
                ..SetAttr::default()
            },
        )
        .expect("truncate");
    assert_eq!((a.size, a.perm), (10, 0o600));
    let fh = f.open_trunc("d/.a.swp");
    assert_eq!(f.attr("d/.a.swp").size, 0);
    f.st.release(fh);
    assert_eq!(f.commits(), before);
}

#[test]
fn scratch_files_survive_a_remount() {
    let mut f = Fixture::new(r#"{"d": {"a": 1}}"#);
    f.write("d", ".a.swp", "swap\n");
    f.st.symlink(ROOT, "link~", b"d/a", ROOT_USER)
        .expect("symlink");
    f.remount();
    assert_eq!(f.names("d"), ["a", ".a.swp"]);
    assert_eq!(f.read("d/.a.swp"), "swap\n");
    let link = f.attr("link~");
    assert!(link.is_symlink);
    assert_eq!(f.st.readlink(link.ino).expect("readlink"), b"d/a");
}

#[test]
fn a_scratch_file_in_a_folder_the_value_lost_is_kept_not_shown() {
    let mut f = Fixture::new(r#"{"d": {"a": 1}}"#);
    f.write("d", ".a.swp", "swap\n");
    f.other_writer(&[Edit::Remove(Path(vec!["d".into()]))]);
    f.remount();
    assert_eq!(f.names(""), Vec::<String>::new());
    assert_eq!(real_files(&f), ["d/.a.swp"], "never lost");
}

#[test]
fn scratch_files_move_with_their_folder() {
    let mut f = Fixture::new(r#"{"d": {"a": 1}}"#);
    f.write("d", ".a.swp", "swap\n");
    f.st.rename(ROOT, "d", ROOT, "e", false, false).expect("mv");
    assert_eq!(f.read("e/.a.swp"), "swap\n");
    assert_eq!(real_files(&f), ["e/.a.swp"]);
    assert_eq!(f.value(), serde_json::json!({"e": {"a": 1}}));
}

#[test]
fn an_unlinked_scratch_file_keeps_its_bytes_until_its_last_descriptor_goes() {
    let mut f = Fixture::new(r#"{}"#);
    f.write("", "x~", "kept\n");
    let x = f.ino("x~");
    let fh = f.st.open(x, false, false, false).expect("open").fh;
    f.st.remove(ROOT, "x~", false).expect("rm");
    assert!(matches!(f.st.lookup(ROOT, "x~"), Err(FsError::NotFound)));
    assert_eq!(f.read_fh(fh), "kept\n");
    assert_eq!(real_files(&f).len(), 1, "waiting as an orphan");
    f.st.release(fh);
    assert!(real_files(&f).is_empty());
}
