//! EDN stores end to end: a real mount of an EDN value driven by shell tools, and the CLI's
//! import/export between EDN and JSON. Every mount test also checks what git recorded.

use crate::mount::harness::Mount;

/// A document with every EDN kind, nested.
const DOC: &str = r#"{users [{:name "Joe" :age 40 :status :active :roles #{:admin :dev}}]
 :since #inst "2026-11-21T10:00:00.000-00:00"
 :id #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
 :point #my/point [1 2]
 :steps (1 2.5 3N 4.0M)
 42 "the answer"
 [1 2] :pair
 \c :char
 :ns/kw sym
 :nothing nil}"#;

const EINVAL: i32 = 22;

/// The value at the head of the branch, as `valfs export` prints it (canonical EDN).
fn export(m: &Mount, path: &str) -> String {
    m.valfs_ok(&["export", path]).trim_end().to_owned()
}

fn type_of(m: &Mount, path: &str) -> String {
    m.sh_ok(&format!(
        "getfattr --only-values -n user.valfs.type -- '{path}'"
    ))
}

#[test]
fn edn_scalars_keys_and_kinds_show_as_edn_text() {
    let m = Mount::edn(DOC);
    assert_eq!(m.cat("users/0/:name"), "\"Joe\"\n");
    assert_eq!(m.cat("users/0/:status"), ":active\n");
    assert_eq!(m.cat(":since"), "#inst \"2026-11-21T10:00:00.000-00:00\"\n");
    assert_eq!(m.cat("42"), "\"the answer\"\n");
    assert_eq!(m.cat("[1 2]"), ":pair\n");
    assert_eq!(m.cat(":ns%2Fkw"), "sym\n");
    assert_eq!(m.ls("users/0"), [":age", ":name", ":roles", ":status"]);
    assert_eq!(
        m.ls(""),
        [
            "42", ":id", ":nothing", ":ns%2Fkw", ":point", ":since", ":steps", "[1 2]", "\\c",
            "users"
        ]
    );
    for (path, ty) in [
        ("users", "vector"),
        ("users/0", "map"),
        ("users/0/:roles", "set"),
        ("users/0/:status", "keyword"),
        ("users/0/:age", "integer"),
        (":steps", "list"),
        (":steps/2", "integer"),
        (":steps/3", "float"),
        (":since", "tagged"),
        (":point", "tagged"),
        ("\\c", "keyword"),
        (":ns%2Fkw", "symbol"),
        (":nothing", "null"),
    ] {
        assert_eq!(type_of(&m, path), ty, "{path}");
    }
    assert_eq!(m.cat(":steps/2"), "3N\n");
    assert_eq!(m.cat(":steps/3"), "4.0M\n");
    // A set's members are entries named by their text, holding it.
    assert_eq!(m.ls("users/0/:roles"), [":admin", ":dev"]);
    assert_eq!(m.cat("users/0/:roles/:dev"), ":dev\n");
    // Plain git reads the same bytes.
    assert_eq!(m.git(&["show", "HEAD:users/0/:name"]), "\"Joe\"\n");
    m.fsck();
}

#[test]
fn writing_edn_text_stores_edn_values() {
    let m = Mount::edn(DOC);
    m.one_save("echo :inactive > users/0/:status", &["users/0/:status"]);
    assert_eq!(type_of(&m, "users/0/:status"), "keyword");
    assert_eq!(m.git(&["show", "HEAD:users/0/:status"]), ":inactive\n");
    assert_eq!(
        export(&m, "users/0"),
        "{:age 40 :name \"Joe\" :roles #{:admin :dev} :status :inactive}"
    );
    // The file's text is read as EDN: a bare word is a symbol, quotes make a string, text
    // that is not one EDN value is a string, a collection's text makes a folder.
    m.one_save("echo Bob > users/0/:name", &["users/0/:name"]);
    assert_eq!(type_of(&m, "users/0/:name"), "symbol");
    m.one_save("echo '\"Bob\"' > users/0/:name", &["users/0/:name"]);
    assert_eq!(m.cat("users/0/:name"), "\"Bob\"\n");
    m.one_save("echo Bob Smith > users/0/:name", &["users/0/:name"]);
    assert_eq!(m.cat("users/0/:name"), "\"Bob Smith\"\n");
    m.one_save("echo '41N' > users/0/:age", &["users/0/:age"]);
    assert_eq!(m.cat("users/0/:age"), "41N\n");
    m.one_save(
        "echo '#{1 2} ; a comment' > users/0/:ids",
        &["users/0/:ids/.valfs", "users/0/:ids/1", "users/0/:ids/2"],
    );
    assert_eq!(type_of(&m, "users/0/:ids"), "set");
    m.one_save(
        "echo '(:a #_ :gone :b)' > users/0/:l",
        &["users/0/:l/.valfs", "users/0/:l/0", "users/0/:l/1"],
    );
    assert_eq!(export(&m, "users/0/:l"), "(:a :b)");
    m.one_save("echo '\\u00e9' > users/0/:c", &["users/0/:c"]);
    assert_eq!(type_of(&m, "users/0/:c"), "char");
    assert_eq!(m.cat("users/0/:c"), "\\é\n");
    // The type attribute converts a symbol to the string of its text.
    m.one_save("echo Ann > users/0/:name", &["users/0/:name"]);
    m.one_save(
        "setfattr -n user.valfs.type -v string users/0/:name",
        &["users/0/:name"],
    );
    assert_eq!(m.cat("users/0/:name"), "\"Ann\"\n");
    // .history shows the old EDN.
    assert_eq!(
        m.cat(".history/HEAD~10/users/0/:status"),
        ":active\n",
        "{}",
        m.git(&["log", "--oneline"])
    );
    m.fsck();
}

/// Truncating a set member changes its text, so its name: through an open file it is saved
/// under its new name at close, and the set's listing (cached by the kernel) shows it at once;
/// by path (no open file to save) it is refused and nothing changes.
#[test]
fn a_truncated_set_member_is_listed_under_its_new_text() {
    let m = Mount::edn(DOC);
    let roles = "users/0/:roles";
    assert_eq!(m.ls(roles), [":admin", ":dev"]);
    let head = m.head();
    assert_eq!(m.errno(&format!("os.truncate('{roles}/:dev', 2)")), EINVAL);
    assert_eq!(m.head(), head);
    assert_eq!(m.ls(roles), [":admin", ":dev"]);
    m.sh_ok(&format!("truncate -s 2 {roles}/:dev"));
    assert_eq!(m.ls(roles), [":admin", ":d"]);
    assert_eq!(export(&m, roles), "#{:admin :d}");
}

#[test]
fn set_members_are_added_and_removed_with_shell_tools() {
    let m = Mount::edn(DOC);
    let roles = "users/0/:roles";
    m.one_save(&format!("rm {roles}/:admin"), &[&format!("{roles}/:admin")]);
    assert_eq!(m.ls(roles), [":dev"]);
    assert_eq!(export(&m, roles), "#{:dev}");
    // touch adds the member its name reads as; so does writing its text. (touch writes
    // nothing, so the save comes at RELEASE, after close(2) returned: see mount.rs.)
    let before = m.commits();
    m.sh_ok(&format!("touch {roles}/:ops"));
    assert!(
        m.wait_for(std::time::Duration::from_secs(10), || m.commits()
            == before + 1)
    );
    assert_eq!(m.last_diff_names(), [format!("{roles}/:ops")]);
    assert_eq!(m.cat(&format!("{roles}/:ops")), ":ops\n");
    m.one_save(
        &format!("echo :qa > {roles}/:qa"),
        &[&format!("{roles}/:qa")],
    );
    // Rewriting a member with its own text changes nothing.
    let before = m.commits();
    m.sh_ok(&format!("echo :qa > {roles}/:qa"));
    assert_eq!(m.commits(), before);
    // mkdir adds a member that is a collection, named by its text.
    m.one_save(
        &format!("mkdir '{roles}/[1 2]'"),
        &[
            &format!("{roles}/[1 2]/.valfs"),
            &format!("{roles}/[1 2]/0"),
            &format!("{roles}/[1 2]/1"),
        ],
    );
    assert_eq!(m.ls(&format!("'{roles}/[1 2]'")), ["0", "1"]);
    assert_eq!(export(&m, roles), "#{:dev :ops :qa [1 2]}");
    // A name that is not a member's canonical text, or mkdir of a scalar, is refused.
    let head = m.head();
    assert_eq!(m.errno(&format!("os.mkdir('{roles}/ops')")), EINVAL);
    assert_eq!(m.errno(&format!("open('{roles}/[1  2]', 'w')")), EINVAL);
    assert_eq!(m.errno(&format!("os.mkdir('{roles}/[1,2]')")), EINVAL);
    assert_eq!(m.head(), head);
    // A member cannot change in place (its name is its text): nothing inside it can be
    // written, created, removed or renamed; rmdir removes the whole member.
    for code in [
        "open('users/0/:roles/[1 2]/0', 'w')",
        "open('users/0/:roles/[1 2]/2', 'w')",
        "os.mkdir('users/0/:roles/[1 2]/2')",
        "os.unlink('users/0/:roles/[1 2]/0')",
        "os.rename('users/0/:roles/[1 2]/0', 'users/0/:roles/[1 2]/1')",
        "os.truncate('users/0/:roles/[1 2]/0', 0)",
        "os.setxattr('users/0/:roles/:qa', 'user.valfs.type', b'string')",
    ] {
        assert_eq!(m.errno(code), EINVAL, "{code}");
    }
    assert_eq!(m.head(), head);
    m.one_save(
        &format!("rmdir '{roles}/[1 2]'"),
        &[
            &format!("{roles}/[1 2]/.valfs"),
            &format!("{roles}/[1 2]/0"),
            &format!("{roles}/[1 2]/1"),
        ],
    );
    m.one_save(&format!("rm {roles}/:qa"), &[&format!("{roles}/:qa")]);
    assert_eq!(export(&m, roles), "#{:dev :ops}");
    m.fsck();
}

/// The seed's perdure session (a vector of maps, conj, update-in), done with shell tools.
#[test]
fn the_perdure_demo_with_shell_tools() {
    let m = Mount::edn("[]");
    m.one_save(
        "echo '{:name \"Joe\" :age 40}' > 0",
        &["0/.valfs", "0/:age", "0/:name"],
    );
    m.one_save(
        "echo '{:name \"Bob\" :age 20}' > $(ls | wc -l)",
        &["1/.valfs", "1/:age", "1/:name"],
    );
    m.one_save("echo $(( $(cat 0/:age) + 1 )) > 0/:age", &["0/:age"]);
    assert_eq!(
        export(&m, ""),
        "[{:age 41 :name \"Joe\"} {:age 20 :name \"Bob\"}]"
    );
    let diff = m.git(&["diff", "HEAD^", "HEAD"]);
    assert!(
        diff.contains("--- a/0/:age\n+++ b/0/:age\n@@ -1 +1 @@\n-40\n+41\n"),
        "{diff}"
    );
    assert_eq!(
        m.git(&["log", "--format=%s", "-3"]),
        "write 0/:age\nwrite 1\nwrite 0\n"
    );
    m.fsck();
}

// ----- the command line -----

#[test]
fn import_then_export_round_trips_every_kind() {
    let m = Mount::edn("{}");
    let file = m.out.join("doc.edn");
    std::fs::write(&file, DOC).unwrap();
    m.valfs_ok(&["import", file.to_str().unwrap()]);
    let once = export(&m, "");
    assert_eq!(
        valfs::codec::edn::parse(&once).unwrap(),
        valfs::codec::edn::parse(DOC).unwrap()
    );
    std::fs::write(&file, &once).unwrap();
    m.valfs_ok(&["import", file.to_str().unwrap()]);
    assert_eq!(export(&m, ""), once);
    let pretty = m.valfs_ok(&["export", "--pretty"]);
    std::fs::write(&file, &pretty).unwrap();
    m.valfs_ok(&["import", file.to_str().unwrap()]);
    assert_eq!(export(&m, ""), once);
}

#[test]
fn json_goes_into_an_edn_store_and_back_where_it_can() {
    let m = Mount::edn("{}");
    let json = r#"{"users":[{"name":"Joe","age":40,"ok":true,"x":null,"f":1.5e3}]}"#;
    // By extension, by --format, and from standard input with --format.
    let file = m.out.join("doc.json");
    std::fs::write(&file, json).unwrap();
    m.valfs_ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        export(&m, ""),
        r#"{"users" [{"age" 40 "f" 1.5e3 "name" "Joe" "ok" true "x" nil}]}"#
    );
    assert_eq!(
        m.valfs_ok(&["export", "--format", "json"]).trim(),
        r#"{"users":[{"age":40,"f":1.5e3,"name":"Joe","ok":true,"x":null}]}"#
    );
    let txt = m.out.join("doc.txt");
    std::fs::write(&txt, r#"{"a":[1]}"#).unwrap();
    let (st, _, err) = m.valfs(&["import", txt.to_str().unwrap()]);
    assert_ne!(st, 0);
    assert!(
        err.contains("invalid EDN") && err.contains("--format"),
        "{err}"
    );
    m.valfs_ok(&["import", "--format", "json", txt.to_str().unwrap()]);
    assert_eq!(export(&m, ""), r#"{"a" [1]}"#);
    // What JSON cannot hold is named, with its path.
    // String keys that would read as other EDN (`a` is a symbol) show quoted.
    assert_eq!(m.valfs_ok(&["get", "\"a\"/0"]), "1\n");
    m.valfs_ok(&["set", "\"a\"/1", ":kw"]);
    let (st, out, err) = m.valfs(&["export", "--format", "json"]);
    assert_ne!(st, 0);
    assert_eq!(out, "");
    assert_eq!(
        err.trim(),
        "valfs: the keyword :kw at \"a\"/1 cannot be written as JSON"
    );
}
