//! Restoring from `.history` in a mount: `cp -a` of a version's subtree, and
//! `user.valfs.type` set to `vector` on a map of indices (what `cp` makes of a vector).

use crate::mount::harness::Mount;
use serde_json::json;

const EINVAL: i32 = 22;

/// `db` holds vectors of maps holding vectors, one of them long enough for padded names.
const DOC: &str = r#"{
  "db": {
    "users": [
      {"name": "Joe", "tags": ["a", "b"], "n": 12345678901234567890},
      {"name": "Ann", "tags": []},
      {"name": "Bob", "tags": [[1, 2], {"k": null}], "f": 4.50}
    ],
    "ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    "empty": [],
    "deep": {"x": [[["y"]]]}
  },
  "idx": {"00": {"a": 1}, "01": 2, "02": [3]},
  "plain": {"0": true, "1": false},
  "gap": {"0": 1, "2": 2},
  "dup": {"0": 1, "00": 2},
  "named": {"0": 1, "a": 2}
}"#;

fn type_of(m: &Mount, path: &str) -> String {
    m.sh_ok(&format!(
        "getfattr --only-values -n user.valfs.type -- '{path}'"
    ))
}

fn export(m: &Mount, path: &str) -> serde_json::Value {
    serde_json::from_str(&m.valfs_ok(&["export", path])).unwrap()
}

#[test]
fn setting_vector_on_a_map_of_indices_makes_it_that_vector() {
    let m = Mount::new(DOC);
    let before = m.commits();
    m.sh_ok("setfattr -n user.valfs.type -v vector idx");
    assert_eq!(m.commits(), before + 1, "one commit");
    assert_eq!(export(&m, "idx"), json!([{"a": 1}, 2, [3]]));
    assert_eq!(type_of(&m, "idx"), "vector");
    // The elements are shared: the subtree at 00 is the tree now at 0.
    assert_eq!(
        m.git(&["rev-parse", "HEAD:idx/0"]),
        m.git(&["rev-parse", "HEAD~1:idx/00"])
    );
    // The mount shows the vector at once, by index.
    assert_eq!(m.ls("idx"), ["0", "1", "2"]);
    assert_eq!(m.cat("idx/1"), "2\n");
    assert_eq!(m.cat("idx/0/a"), "1\n");
    m.one_save("echo 4 > idx/3", &["idx/3"]);
    m.one_save(
        "setfattr -n user.valfs.type -v vector plain",
        &["plain/.valfs"],
    );
    assert_eq!(export(&m, "plain"), json!([true, false]));

    // Other maps are refused and change nothing; a JSON store has no lists.
    let before = m.commits();
    for (path, ty) in [
        ("gap", "vector"),
        ("dup", "vector"),
        ("named", "vector"),
        ("db", "vector"),
        ("named", "list"),
        ("db/users", "list"),
        ("db/users", "set"),
    ] {
        assert_eq!(
            m.errno(&format!(
                "os.setxattr('{path}', 'user.valfs.type', b'{ty}')"
            )),
            EINVAL,
            "{path} as {ty}"
        );
    }
    assert_eq!(m.commits(), before);
    // Under .history nothing changes.
    assert_eq!(
        m.errno("os.setxattr('.history/HEAD~1/idx', 'user.valfs.type', b'vector')"),
        30
    );
    m.fsck();
}

#[test]
fn cp_a_out_of_history_restores_a_subtree_exactly() {
    let m = Mount::new(DOC);
    let db = export(&m, "db");
    let rev = m.git(&["rev-parse", "--short", "main"]).trim().to_owned();
    m.sh_ok("rm -r db");
    m.sh_ok(&format!("cp -a .history/{rev}/db db2"));
    assert_eq!(export(&m, "db2"), db, "cp -a");
    m.sh_ok(&format!("cp -r --preserve=xattr .history/{rev}/db db3"));
    assert_eq!(export(&m, "db3"), db, "cp -r --preserve=xattr");
    assert_eq!(type_of(&m, "db2/ids"), "vector");
    assert_eq!(m.ls("db2/ids").len(), 12);
    m.fsck();
}

#[test]
fn list_on_a_map_of_indices_in_an_edn_store() {
    let m = Mount::edn(r#"{:m {0 :a 1 [:b]} :s #{0 1}}"#);
    let before = m.commits();
    m.sh_ok("setfattr -n user.valfs.type -v list :m");
    assert_eq!(m.commits(), before + 1);
    assert_eq!(m.valfs_ok(&["export", ":m"]).trim(), "(:a [:b])");
    m.sh_ok("setfattr -n user.valfs.type -v vector :m");
    assert_eq!(m.valfs_ok(&["export", ":m"]).trim(), "[:a [:b]]");
    assert_eq!(
        m.errno("os.setxattr(':s', 'user.valfs.type', b'vector')"),
        EINVAL
    );
}

/// At some thousands of entries cp skipped entries under `.history` as cycles ("cannot copy
/// cyclic symbolic link"): directories there showed the inode number of one of their
/// ancestors, before numbers became a hash of the path.
#[test]
fn cp_a_out_of_history_restores_a_big_subtree_exactly() {
    let users: Vec<String> = (0..60)
        .map(|i| format!(r#"{{"name":"u{i}","tags":["a",[{i},{{"z":[{i}]}}]],"e":[],"m":{{}}}}"#))
        .collect();
    let doc = format!(
        r#"{{"db":{{"users":[{}],"ids":[{}]}}}}"#,
        users.join(","),
        {
            (0..120)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    );
    let m = Mount::new(&doc);
    let db = export(&m, "db");
    let rev = m.git(&["rev-parse", "--short", "main"]).trim().to_owned();
    m.valfs_ok(&["rm", "db"]);
    for (cp, to) in [("cp -a", "db2"), ("cp -r --preserve=xattr", "db3")] {
        m.sh_ok(&format!("{cp} .history/{rev}/db {to}"));
        assert_eq!(export(&m, to), db, "{cp}");
    }
}
