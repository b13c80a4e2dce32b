//! The editor and tool matrix: each editor and tool saves through a real mount, driven so that
//! it makes the system calls it makes for a user (Vim's `4913` probe and backup, Emacs's lock
//! symlink, auto-save file and backup, nano's lock file under Debian's `/etc/nanorc`, the
//! temporary names of `sed -i`, `perl -i`, rsync, JetBrains and Python). For every tool, each
//! save must be exactly one commit whose diff is the edit, no name other than the value's may
//! ever appear in the history, and a file chmod-ed to 600 and chown-ed to 65534 first ends with
//! the mode and owner the same tool leaves on a local disk.
//!
//! Every step runs the same script on a copy of the file in a plain directory (`$OUT/disk`),
//! which is the reference for the mode, the owner and the bytes. A tool's test reports every
//! difference it finds, not only the first.
//!
//! Needs vim, nvim (neovim), emacs (emacs-nox), nano, tmux, perl, rsync and python3.

use crate::mount::harness::{self, Mount, is_scratch_path};
use serde_json::json;
use std::collections::BTreeSet;

/// The value every tool starts from: a key, a nested key, a vector and a key to chmod.
const DOC: &str = r#"{
  "name": "Joe",
  "sub": {"deep": {"text": "Joe here"}},
  "v": ["Ann", "Bob", "Cid"],
  "secret": "s3cret"
}"#;

/// Drives nano in a detached tmux session on its own socket, as a user at a terminal would:
/// nano reads Debian's /etc/nanorc (`set locking`), makes its lock file, and checks the file's
/// inode number and mtime before writing. `nano_edit FILE LINE...` replaces the file's one line
/// with each LINE in turn, saving after each (one session);
/// `$NANO_MEANWHILE` runs while nano has the file open.
const NANO: &str = r#"
nano_edit() {
  local T="tmux -S $OUT/tmux.sock" dir base
  dir=$(dirname "$1"); base=$(basename "$1")
  screen_shows() {
    for _ in $(seq 200); do
      $T capture-pane -p 2>/dev/null | grep -qF -- "$1" && return 0
      sleep 0.05
    done
    echo "nano never showed '$1'; the screen:" >&2; $T capture-pane -p >&2; $T kill-server
    return 1
  }
  $T new-session -d -x 120 -y 30 "nano '$1'" || return 1
  screen_shows 'Read 1 line' || return 1
  eval "${NANO_MEANWHILE:-}"
  [ -e "$dir/.$base.swp" ] || { echo "no lock file: set locking is not in effect" >&2; $T kill-server; return 1; }
  shift
  for line in "$@"; do
    $T send-keys C-k
    $T send-keys -l "$line"
    $T send-keys C-o
    # The prompt replaces the last "Wrote" message: the next one is this save's.
    screen_shows 'File Name to Write' || return 1
    $T send-keys Enter
    screen_shows 'Wrote 1 line' || return 1
  done
  $T send-keys C-x
  for _ in $(seq 200); do
    $T has-session 2>/dev/null || return 0
    sleep 0.05
  done
  echo "nano did not exit" >&2; $T kill-server; return 1
}
"#;

/// A tool and how it saves a file. In `script`, `{F}` is the file (relative to the current
/// directory), `{FROM}` a word in it to replace with `{TO}`, and `{NEW}` the file's whole new
/// line (for the tools that write a whole file).
struct Tool {
    name: &'static str,
    script: &'static str,
    /// Whether the save gives the file a new inode on a disk (a rename mode) or keeps it (an
    /// in-place write): proves the mode that was meant is the one that ran.
    new_inode: Option<bool>,
}

const VIM_RENAME: Tool = Tool {
    name: "vim, backupcopy=auto (rename mode)",
    script: "vim -Es -N -u DEFAULTS -c 'set backupcopy=auto' -c '%s/{FROM}/{TO}/' -c wq '{F}'",
    new_inode: Some(true),
};

const VIM_COPY: Tool = Tool {
    name: "vim, backupcopy=yes (copy mode)",
    script: "vim -Es -N -u DEFAULTS -c 'set backupcopy=yes' -c '%s/{FROM}/{TO}/' -c wq '{F}'",
    new_inode: Some(false),
};

const NEOVIM: Tool = Tool {
    name: "neovim",
    script: "nvim -Es -u NONE -c '%s/{FROM}/{TO}/' -c wq '{F}'",
    new_inode: Some(true),
};

/// Emacs in batch mode turns neither backups nor auto-saving on by itself: both are asked for,
/// so that the lock symlink `.#F`, the auto-save file `#F#` and the backup `F~` are all made
/// as in an interactive session.
const EMACS: Tool = Tool {
    name: "emacs",
    script: r#"emacs --batch -Q --eval '(progn (setq make-backup-files t) (find-file "{F}") (auto-save-mode 1) (goto-char (point-min)) (while (search-forward "{FROM}" nil t) (replace-match "{TO}" t t)) (do-auto-save) (save-buffer))'"#,
    new_inode: None,
};

const EMACS_PRECIOUS: Tool = Tool {
    name: "emacs, file-precious-flag",
    script: r#"emacs --batch -Q --eval '(progn (setq make-backup-files t file-precious-flag t) (find-file "{F}") (auto-save-mode 1) (goto-char (point-min)) (while (search-forward "{FROM}" nil t) (replace-match "{TO}" t t)) (do-auto-save) (save-buffer))'"#,
    new_inode: Some(true),
};

const NANO_TOOL: Tool = Tool {
    name: "nano, Debian's /etc/nanorc",
    script: "nano_edit '{F}' '{NEW}'",
    new_inode: Some(false),
};

const SED: Tool = Tool {
    name: "sed -i",
    script: "sed -i 's/{FROM}/{TO}/' '{F}'",
    new_inode: Some(true),
};

const PERL: Tool = Tool {
    name: "perl -pi -e",
    script: "perl -pi -e 's/{FROM}/{TO}/' '{F}'",
    new_inode: Some(true),
};

/// `-I`: rsync's quick check compares mtimes in whole seconds, and the steps share seconds.
const RSYNC: Tool = Tool {
    name: "rsync",
    script: r#"printf '%s\n' '{NEW}' > "$OUT/src" && rsync -I "$OUT/src" '{F}'"#,
    new_inode: Some(true),
};

const RSYNC_INPLACE: Tool = Tool {
    name: "rsync --inplace",
    script: r#"printf '%s\n' '{NEW}' > "$OUT/src" && rsync -I --inplace "$OUT/src" '{F}'"#,
    new_inode: Some(false),
};

const CP: Tool = Tool {
    name: "cp",
    script: r#"printf '%s\n' '{NEW}' > "$OUT/src" && cp "$OUT/src" '{F}'"#,
    new_inode: Some(false),
};

/// From outside the mount, so across filesystems: mv copies (the file, its mode and owner)
/// and removes the source. On the reference disk it is a rename.
const MV: Tool = Tool {
    name: "mv from another filesystem",
    script: r#"printf '%s\n' '{NEW}' > "$OUT/src" && mv "$OUT/src" '{F}'"#,
    new_inode: Some(true),
};

/// The shell's atomic save: mktemp(1)'s `tmp.XXXXXXXXXX` in the file's folder, renamed over it.
const MKTEMP_MV: Tool = Tool {
    name: "mktemp in the folder + mv",
    script: r#"t=$(mktemp -p "$(dirname '{F}')") && printf '%s\n' '{NEW}' > "$t" && mv "$t" '{F}'"#,
    new_inode: Some(true),
};

/// IntelliJ's safe write, step by step.
const JETBRAINS: Tool = Tool {
    name: "JetBrains safe write",
    script: r#"python3 -c '
import os, sys
f, new = sys.argv[1], sys.argv[2]
with open(f + "___jb_tmp___", "w") as t:
    t.write(new + "\n")
os.rename(f, f + "___jb_old___")
os.rename(f + "___jb_tmp___", f)
os.unlink(f + "___jb_old___")' '{F}' '{NEW}'"#,
    new_inode: Some(true),
};

const PYTHON_MKSTEMP: Tool = Tool {
    name: "python mkstemp + os.replace",
    script: r#"python3 -c '
import os, sys, tempfile
f, new = sys.argv[1], sys.argv[2]
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(f) or ".")
os.write(fd, (new + "\n").encode()); os.fsync(fd); os.close(fd)
os.replace(tmp, f)' '{F}' '{NEW}'"#,
    new_inode: Some(true),
};

const PYTHON_DOT_TMP: Tool = Tool {
    name: "python NAME.tmp + os.replace",
    script: r#"python3 -c '
import os, sys
f, new = sys.argv[1], sys.argv[2]
with open(f + ".tmp", "w") as t:
    t.write(new + "\n"); t.flush(); os.fsync(t.fileno())
os.replace(f + ".tmp", f)' '{F}' '{NEW}'"#,
    new_inode: Some(true),
};

/// One save: `file`'s word `from` becomes `to`; `diff` is the path the commit must change.
struct Step {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    diff: &'static str,
}

/// The same file twice, a nested file, an element of a vector folder, and `secret` (which
/// [`run_matrix`] chmods to 600 and chowns to 65534 first).
const STEPS: [Step; 5] = [
    Step {
        file: "name",
        from: "Joe",
        to: "Jim",
        diff: "name",
    },
    Step {
        file: "name",
        from: "Jim",
        to: "Kim",
        diff: "name",
    },
    Step {
        file: "sub/deep/text",
        from: "here",
        to: "there",
        diff: "sub/deep/text",
    },
    Step {
        file: "v/1",
        from: "Bob",
        to: "Bea",
        diff: "v/1",
    },
    Step {
        file: "secret",
        from: "s3cret",
        to: "t0ps3cret",
        diff: "secret",
    },
];

/// The value after all of [`STEPS`].
fn edited() -> serde_json::Value {
    json!({
        "name": "Kim",
        "sub": {"deep": {"text": "Joe there"}},
        "v": ["Ann", "Bea", "Cid"],
        "secret": "t0ps3cret"
    })
}

fn render(tool: &Tool, step: &Step, new: &str) -> String {
    let body = tool
        .script
        .replace("{F}", step.file)
        .replace("{FROM}", step.from)
        .replace("{TO}", step.to)
        .replace("{NEW}", new);
    format!("{NANO}\n{body}")
}

/// `stat -c '%i %a %u %g'` of a file: (inode, "mode uid gid").
fn stat(m: &Mount, dir: &str, file: &str) -> (String, String) {
    let out = m.sh_ok(&format!("cd {dir} && stat -c '%i %a %u %g' '{file}'"));
    let (ino, rest) = out.trim().split_once(' ').unwrap();
    (ino.to_owned(), rest.to_owned())
}

/// Runs every step of [`STEPS`] with `tool` on a fresh mount and on the reference disk and
/// returns every way the mount fell short (nothing when the tool works).
fn run_matrix(tool: &Tool) -> Vec<String> {
    let m = Mount::new(DOC);
    let mut problems = Vec::new();
    // The reference: the same files in a plain directory beside the mount.
    m.sh_ok(
        r#"mkdir -p "$OUT/disk/sub/deep" "$OUT/disk/v"
        for f in name sub/deep/text v/0 v/1 v/2 secret; do cat "$f" > "$OUT/disk/$f"; done"#,
    );
    let chmod = "chmod 600 secret && chown 65534:65534 secret";
    let before = m.commits();
    m.sh_ok(chmod);
    m.sh_ok(&format!(r#"cd "$OUT/disk" && {chmod}"#));
    if m.commits() != before {
        problems.push("chmod/chown made a commit".into());
    }
    let value_paths: BTreeSet<String> = m.all_paths_ever().into_iter().collect();

    for step in &STEPS {
        let old = m.cat(step.file);
        let new_text = old.replace(step.from, step.to);
        let new_line = new_text.trim_end_matches('\n');
        let script = render(tool, step, new_line);
        let what = format!("{} of {}", step.from, step.file);
        let (ino_before, _) = stat(&m, ".", step.file);
        let (disk_ino_before, _) = stat(&m, "\"$OUT/disk\"", step.file);

        let disk = m.sh(&format!("cd \"$OUT/disk\" && {script}"));
        assert_eq!(
            disk.0, 0,
            "{}: on the disk: {}{}",
            tool.name, disk.1, disk.2
        );

        let commits = m.commits();
        let (st, out, err) = m.sh(&script);
        let made = m.commits() - commits;
        if st != 0 {
            problems.push(format!("{what}: exit {st}: {out}{err}"));
        }
        if made != 1 {
            problems.push(format!(
                "{what}: {made} commits instead of 1:\n{}",
                m.git(&[
                    "log",
                    "--stat",
                    "--format=%h %s",
                    &format!("-{}", made.max(1))
                ])
            ));
        } else if m.last_diff_names() != [step.diff] {
            problems.push(format!(
                "{what}: the commit changed {:?}, not [{:?}]",
                m.last_diff_names(),
                step.diff
            ));
        }
        let shown = m.cat(step.file);
        let on_disk = m.sh_ok(&format!("cat \"$OUT/disk/{}\"", step.file));
        if shown != on_disk || shown != new_text {
            problems.push(format!(
                "{what}: the mount shows {shown:?}, the disk {on_disk:?}, wanted {new_text:?}"
            ));
        }
        let (ino_after, meta) = stat(&m, ".", step.file);
        let (disk_ino_after, disk_meta) = stat(&m, "\"$OUT/disk\"", step.file);
        eprintln!(
            "{}: {what}: mode uid gid {meta} (disk: {disk_meta})",
            tool.name
        );
        if meta != disk_meta {
            problems.push(format!(
                "{what}: mode uid gid {meta} in the mount, {disk_meta} on a disk"
            ));
        }
        if let Some(renames) = tool.new_inode {
            // Not a check of the mount: of the test, that it drives the mode meant.
            assert_eq!(
                disk_ino_after != disk_ino_before,
                renames,
                "{}: on the disk the inode {disk_ino_before} -> {disk_ino_after}",
                tool.name
            );
            // An in-place write keeps the inode number, as nano's "modified since you opened
            // it" check expects.
            if !renames && ino_after != ino_before {
                problems.push(format!(
                    "{what}: inode {ino_before} -> {ino_after} in the mount, \
                     {disk_ino_before} -> {disk_ino_after} on a disk"
                ));
            }
        }
    }

    // What is left beside the value (Emacs's backups) is what a disk keeps.
    let list = "find . -path ./.history -prune -o -print | LC_ALL=C sort";
    let listed = m.sh_ok(list);
    let listed_on_disk = m.sh_ok(&format!("cd \"$OUT/disk\" && {list}"));
    if listed != listed_on_disk {
        problems.push(format!(
            "the mount lists\n{listed}while the disk lists\n{listed_on_disk}"
        ));
    }
    if m.head_value() != edited() {
        problems.push(format!("the value is {}", m.head_value()));
    }
    let ever: BTreeSet<String> = m.all_paths_ever().into_iter().collect();
    let strays: Vec<&String> = ever.difference(&value_paths).collect();
    if !strays.is_empty() {
        problems.push(format!(
            "names in the history that were never keys: {strays:?}"
        ));
    }
    let scratch: Vec<&String> = ever.iter().filter(|p| is_scratch_path(p)).collect();
    if !scratch.is_empty() {
        problems.push(format!("scratch names in the history: {scratch:?}"));
    }
    m.fsck();
    if !problems.is_empty() {
        problems.push(format!("daemon log:\n{}", m.log()));
    }
    problems
}

fn check(tool: &Tool) {
    let problems = run_matrix(tool);
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        tool.name,
        problems.join("\n")
    );
}

#[test]
fn vim_rename_mode() {
    check(&VIM_RENAME);
}

#[test]
fn vim_copy_mode() {
    check(&VIM_COPY);
}

#[test]
fn neovim() {
    check(&NEOVIM);
}

#[test]
fn emacs() {
    check(&EMACS);
}

#[test]
fn emacs_precious() {
    check(&EMACS_PRECIOUS);
}

#[test]
fn nano_with_debians_nanorc() {
    check(&NANO_TOOL);
}

#[test]
fn sed_in_place() {
    check(&SED);
}

#[test]
fn perl_in_place() {
    check(&PERL);
}

#[test]
fn rsync() {
    check(&RSYNC);
}

#[test]
fn rsync_inplace() {
    check(&RSYNC_INPLACE);
}

#[test]
fn cp() {
    check(&CP);
}

#[test]
fn mv_from_another_filesystem() {
    check(&MV);
}

#[test]
fn jetbrains_safe_write() {
    check(&JETBRAINS);
}

#[test]
fn python_mkstemp_and_replace() {
    check(&PYTHON_MKSTEMP);
}

#[test]
fn python_dot_tmp_and_replace() {
    check(&PYTHON_DOT_TMP);
}

#[test]
fn mktemp_and_mv() {
    check(&MKTEMP_MV);
}

/// nano keeps the inode number and mtime it saw at open and asks "File was modified since you
/// opened it" when they differ at save: the kernel forgetting the file meanwhile, and another
/// file made meanwhile, must change neither.
#[test]
fn nano_saves_after_the_kernel_forgot_the_file() {
    let _held = harness::hold_caches();
    let m = Mount::new(DOC);
    m.one_save(
        &format!(
            "{NANO}\nNANO_MEANWHILE='sync; echo 2 > /proc/sys/vm/drop_caches; echo x > .other.swp' \
             nano_edit name '\"Nan\"'"
        ),
        &["name"],
    );
    assert_eq!(m.head_value()["name"], json!("Nan"));
    assert!(!m.all_paths_ever().iter().any(|p| is_scratch_path(p)));
}

/// `rsync -aX` of a subtree: out of `.history` into a new folder (exact, vectors included),
/// then a local copy edited and synced back, which is one commit for the one file changed.
#[test]
fn rsync_ax_of_a_subtree() {
    let m = Mount::new(
        r#"{"db": {"users": [{"name": "Joe", "tags": ["a", "b"]}, {"name": "Ann", "tags": []}],
            "ids": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "cfg": {"port": 5432}}}"#,
    );
    let db = m.head_value()["db"].clone();
    let rev = m.git(&["rev-parse", "--short", "main"]).trim().to_owned();
    let before = m.commits();
    m.sh_ok(&format!("rsync -aX .history/{rev}/db/ db2/"));
    assert_eq!(m.head_value()["db2"], db, "rsync -aX out of .history");
    // One commit per file written, folder made and folder retyped as a vector, each touching
    // only what it made.
    let made = m.commits() - before;
    eprintln!("rsync -aX out of .history: {made} commits");
    let subjects = m.git(&["log", "--format=%s", &format!("-{made}")]);
    for s in subjects.lines() {
        assert!(
            s.starts_with("write db2/")
                || s.starts_with("mkdir db2")
                || s.starts_with("retype db2"),
            "{s}"
        );
    }
    // Out to a local folder, one element edited there (to another size: rsync's quick check
    // compares sizes and whole-second mtimes), and back.
    m.sh_ok(r#"rsync -aX db2/ "$OUT/db/" && printf '"Beatrice"\n' > "$OUT/db/users/1/name""#);
    m.one_save(r#"rsync -aX "$OUT/db/" db2/"#, &["db2/users/1/name"]);
    assert_eq!(m.head_value()["db2"]["users"][1]["name"], json!("Beatrice"));
    let ever = m.all_paths_ever();
    let strays: Vec<&String> = ever
        .iter()
        .filter(|p| !p.starts_with("db/") && !p.starts_with("db2/") && *p != ".valfs")
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    assert!(!ever.iter().any(|p| is_scratch_path(p)));
    m.fsck();
}

// ----- two saves in one editing session -----

/// Runs an editor session that saves `name` twice (Joe -> Jim, then Jim -> Kim): two commits,
/// each changing `name` only. The editor must not find the file changed behind its back
/// between the saves (Vim, Emacs and nano compare the mtime, nano the inode number too).
fn two_saves_in_one_session(script: &str) {
    let m = Mount::new(DOC);
    let before = m.commits();
    let (st, out, err) = m.sh(&format!("{NANO}\n{script}"));
    assert_eq!(st, 0, "{script}: {out}{err}\n{}", m.log_tail());
    let log = m.git(&["log", "--stat", "--format=%h %s", "-3"]);
    assert_eq!(m.commits(), before + 2, "{script}:\n{log}");
    for (rev, text) in [("HEAD~1", "\"Jim\"\n"), ("HEAD", "\"Kim\"\n")] {
        let names = m.git(&[
            "diff",
            "--no-renames",
            "--name-only",
            &format!("{rev}~1"),
            rev,
        ]);
        assert_eq!(names, "name\n", "{script}: {rev}:\n{log}");
        assert_eq!(m.git(&["show", &format!("{rev}:name")]), text, "{script}");
    }
    assert!(!m.all_paths_ever().iter().any(|p| is_scratch_path(p)));
}

#[test]
fn vim_saves_twice_in_one_session() {
    for mode in ["auto", "yes"] {
        two_saves_in_one_session(&format!(
            "vim -Es -N -u DEFAULTS -c 'set backupcopy={mode}' \
             -c 's/Joe/Jim/' -c w -c 's/Jim/Kim/' -c wq name"
        ));
    }
}

#[test]
fn neovim_saves_twice_in_one_session() {
    two_saves_in_one_session("nvim -Es -u NONE -c 's/Joe/Jim/' -c w -c 's/Jim/Kim/' -c wq name");
}

#[test]
fn emacs_saves_twice_in_one_session() {
    for precious in ["nil", "t"] {
        two_saves_in_one_session(&format!(
            r#"emacs --batch -Q --eval '(progn (setq make-backup-files t file-precious-flag {precious})
                (find-file "name") (auto-save-mode 1)
                (goto-char (point-min)) (search-forward "Joe") (replace-match "Jim" t t)
                (do-auto-save) (save-buffer)
                (goto-char (point-min)) (search-forward "Jim") (replace-match "Kim" t t)
                (do-auto-save) (save-buffer))'"#
        ));
    }
}

#[test]
fn nano_saves_twice_in_one_session() {
    two_saves_in_one_session(r#"nano_edit name '"Jim"' '"Kim"'"#);
}
