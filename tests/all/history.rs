//! `.history` in commit order and `.history/@TIME`, on a real mount: versions made within one
//! second, and a clock that went back, list in commit order under both the C and the
//! en_US.UTF-8 collation, and a time opens the version that was the head then.

use crate::mount::harness::Mount;

const DOC: &str = r#"{"age": 41, "name": "Joe"}"#;
const ENOENT: i32 = 2;
const EROFS: i32 = 30;

/// 2026-11-21T10:00:00Z.
const T: i64 = 1_795_255_200;

/// Whether glibc has the en_US.UTF-8 locale (scripts/test generates it when it can).
fn have_en_us(m: &Mount) -> bool {
    m.sh_ok("locale -a")
        .lines()
        .any(|l| l.eq_ignore_ascii_case("en_US.utf8") || l == "en_US.UTF-8")
}

/// The branch's first-parent history, oldest first, as full hashes.
fn commits(m: &Mount) -> Vec<String> {
    m.git(&["rev-list", "--first-parent", "--reverse", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `ls .history` under a locale must be the branch's versions in commit order, and its last
/// line the head.
fn assert_listed_in_commit_order(m: &Mount) {
    let commits = commits(m);
    let mut locales = vec!["C"];
    if have_en_us(m) {
        locales.push("en_US.UTF-8");
    } else {
        eprintln!("en_US.UTF-8 is not available: only the C collation is checked");
    }
    for locale in locales {
        let listed: Vec<String> = m
            .sh_ok(&format!("LC_ALL={locale} ls -1 .history"))
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(listed.len(), commits.len(), "{locale}: {listed:?}");
        for (i, (name, commit)) in listed.iter().zip(&commits).enumerate() {
            assert!(
                name.ends_with(&format!("-{}", &commit[..7])),
                "{locale}: version {i} is listed as {name}, the commit is {commit}\n{listed:#?}"
            );
        }
        let last = m.sh_ok(&format!("LC_ALL={locale} ls .history | tail -1"));
        assert!(
            last.trim_end().ends_with(&commits[commits.len() - 1][..7]),
            "{locale}: tail -1 is {last}"
        );
        // The shell's own sort (globbing) agrees.
        let globbed = m.sh_ok(&format!(
            "export LC_ALL={locale}; cd .history && printf '%s\\n' *"
        ));
        assert_eq!(
            globbed.lines().collect::<Vec<_>>(),
            listed,
            "{locale}: glob"
        );
    }
}

/// Commits made by the mount as fast as a shell loop writes (several a second).
#[test]
fn history_of_fast_saves_lists_in_commit_order() {
    let m = Mount::new(DOC);
    m.sh_ok("for i in $(seq 15); do echo $i > age; done");
    assert_eq!(m.commits(), 17);
    assert_listed_in_commit_order(&m);
    // Some of them did share a second (init and import always do).
    let listed = m.ls(".history");
    assert!(
        listed.iter().any(|n| n.contains("Z-01-")),
        "no two versions in one second: {listed:?}"
    );
}

/// The versions' committer times, as offsets from `T`: a first one 100 s before, three in one
/// second, one alone, 110 in one second (more than the two digits of the sequence field hold),
/// one whose clock went back a second, and one after.
fn controlled_times() -> Vec<i64> {
    let mut t = vec![-100, 0, 0, 0, 1];
    t.extend(std::iter::repeat_n(2, 110));
    t.extend([1, 3]);
    t
}

/// Rewrites the (unmounted) branch into one version per time of `controlled_times`, version
/// `i` with `age` = `i` (the first keeps the imported 41).
fn make_controlled_history(m: &Mount) {
    let times = controlled_times();
    let script = format!(
        r#"set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
g() {{ git --git-dir "$REPO" "$@"; }}
times=({times})
at() {{ echo "@$(( {T} + $1 )) +0000"; }}
p=$(GIT_COMMITTER_DATE=$(at ${{times[0]}}) GIT_AUTHOR_DATE=$(at ${{times[0]}}) \
    g commit-tree -m first "$(g rev-parse 'main^{{tree}}')")
g update-ref refs/heads/main "$p"
for ((i = 1; i < ${{#times[@]}}; i++)); do
  "$VALFS" --repo "$REPO" set age "$i" >/dev/null
  d=$(at ${{times[$i]}})
  p=$(GIT_COMMITTER_DATE=$d GIT_AUTHOR_DATE=$d g commit-tree -p "$p" -m "age $i" "$(g rev-parse 'main^{{tree}}')")
  g update-ref refs/heads/main "$p"
done
"#,
        times = times
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
    m.sh_ok(&script);
}

#[test]
fn history_names_keep_commit_order_within_a_second_and_when_the_clock_goes_back() {
    let mut m = Mount::new(DOC);
    m.unmount();
    make_controlled_history(&m);
    m.spawn();
    let commits = commits(&m);
    let times = controlled_times();
    assert_eq!(commits.len(), times.len());
    let short = |i: usize| commits[i][..7].to_owned();
    assert_listed_in_commit_order(&m);

    // The names: the second, then the place within that second (two digits; past 98 an
    // escape that still sorts after), then the short hash.
    let served = m.ls("-U .history");
    assert_eq!(served[0], format!("2026-11-21T095820Z-00-{}", short(0)));
    assert_eq!(served[1], format!("2026-11-21T100000Z-00-{}", short(1)));
    assert_eq!(served[3], format!("2026-11-21T100000Z-02-{}", short(3)));
    assert_eq!(served[4], format!("2026-11-21T100001Z-00-{}", short(4)));
    assert_eq!(
        served[5 + 98],
        format!("2026-11-21T100002Z-98-{}", short(103))
    );
    assert_eq!(
        served[5 + 99],
        format!("2026-11-21T100002Z-99010-{}", short(104))
    );
    assert_eq!(
        served[5 + 109],
        format!("2026-11-21T100002Z-990210-{}", short(114))
    );
    // The clock went back: the name keeps the second before, its mtime is its own time.
    assert_eq!(
        served[115],
        format!("2026-11-21T100002Z-990211-{}", short(115))
    );
    assert_eq!(
        m.sh_ok(&format!("stat -c %Y .history/{}", served[115])),
        format!("{}\n", T + 1)
    );
    assert_eq!(served[116], format!("2026-11-21T100003Z-00-{}", short(116)));

    // Every listed name opens its version; so do the names of before (second and hash) and
    // hashes. A listed-looking name with the wrong place in its second does not.
    for i in [0, 3, 4, 104, 115, 116] {
        let want = if i == 0 {
            "41\n".to_owned()
        } else {
            format!("{i}\n")
        };
        assert_eq!(
            m.cat(&format!(".history/{}/age", served[i])),
            want,
            "{}",
            served[i]
        );
        assert_eq!(m.cat(&format!(".history/{}/age", short(i))), want);
    }
    assert_eq!(
        m.cat(&format!(".history/2026-11-21T100000Z-{}/age", short(2))),
        "2\n",
        "the older name form"
    );
    assert_eq!(
        m.cat(&format!(".history/2026-11-21T100001Z-{}/age", short(115))),
        "115\n",
        "the older name form has the commit's own time"
    );
    for wrong in [
        format!("2026-11-21T100000Z-01-{}", short(3)),
        format!("2026-11-21T100000Z-1-{}", short(2)),
        format!("2026-11-21T100002Z-99-{}", short(104)),
        format!("2026-11-21T100002Z-{}", short(115)),
    ] {
        assert_eq!(
            m.errno(&format!("os.listdir('.history/{wrong}')")),
            ENOENT,
            "{wrong}"
        );
    }

    // The same names after a remount (read from the saved index).
    m.unmount();
    m.spawn();
    assert_eq!(m.ls("-U .history"), served);
}

#[test]
fn history_at_time_opens_the_head_of_that_time() {
    let mut m = Mount::new(DOC);
    m.unmount();
    make_controlled_history(&m);
    m.spawn();
    let commits = commits(&m);
    let age = |name: &str| m.cat(&format!(".history/{name}/age"));
    assert_eq!(
        age("@2026-11-21T10:00:00Z"),
        "3\n",
        "the last of three in that second"
    );
    assert_eq!(age("@2026-11-21T10:00Z"), "3\n");
    assert_eq!(age("@2026-11-21T100000Z"), "3\n", "as the names write it");
    assert_eq!(age("@2026-11-21T10:00:01Z"), "4\n");
    assert_eq!(
        age("@2026-11-21T10:00:02Z"),
        "115\n",
        "the version whose clock went back counts from where it is listed"
    );
    assert_eq!(age("@2026-11-21T09:59:59Z"), "41\n");
    assert_eq!(age("@2026-11-21T09:58:20Z"), "41\n");
    assert_eq!(age("@2026-11-22"), "116\n", "a date is its first second");
    assert_eq!(age("@2099-01-01T00:00:00Z"), "116\n");
    assert_eq!(
        m.sh_ok("stat -c %Y .history/@2026-11-21T10:00:01Z"),
        format!("{}\n", T + 1)
    );
    for none in [
        "@2026-11-21T09:58:19Z",
        "@2026-11-21",
        "@1970-01-01",
        "@",
        "@yesterday",
        "@2026-13-01",
        "@2026-11-31",
        "@2026-11-21T25:00Z",
        "@2026-11-21T10:00:00+01:00",
    ] {
        assert_eq!(
            m.errno(&format!("os.listdir('.history/{none}')")),
            ENOENT,
            "{none}"
        );
    }
    // Not listed; read-only like every version.
    assert!(m.ls("-a .history").iter().all(|n| !n.starts_with('@')));
    assert_eq!(m.errno("open('.history/@2026-11-22/age', 'w')"), EROFS);
    assert_eq!(m.errno("os.mkdir('.history/@2026-11-22/x')"), EROFS);
    assert_eq!(commits.len(), 117);
}
