//! A property test of sync's promise (docs/FORMAT.md "Merging" and "Conflicts"): three stores
//! share one bare hub and are edited apart — store 0 through a real mount and the CLI, the
//! others through the CLI — with random syncs, pulls and pushes, while random partitions cut
//! them off (a remote pointed at a missing path; store 1 reaches the hub through a git daemon
//! that is stopped and started). After a final round of syncs (each store twice, in order):
//!
//! - every head is the same commit, and the hub's;
//! - every commit any store's branch ever pointed at is an ancestor of it (nothing made anywhere
//!   was dropped from history);
//! - every edit that met no conflict is in the value, and every conflict is listed by
//!   `valfs conflicts` with its kind, base, ours and theirs;
//! - `git fsck --strict` is clean in every repository.
//!
//! What "met no conflict" means is judged by a model of each store, of the hub and of the merge
//! rules as docs/FORMAT.md states them: a store's edits count by what they changed since its
//! last sync (its merge base), so the model predicts every merge's value and conflicts exactly;
//! the real stores must agree with it after every step (the value by `valfs export`, the
//! conflicts by `valfs conflicts --long`, and the mount by a walk of its files and of
//! `.conflicts/`), and every sync that cannot reach the hub must fail with one line, leaving its
//! branch as it was. Conflicts are resolved by `valfs resolve`, by `rm -r .conflicts/NAME`, and
//! by a save in the mount, which resolves those at, inside or above the paths it touches.
//!
//! The values: a map of keys `a`..`d` holding scalars or maps (keys `x`, `y`), and a vector `v`
//! that is only appended to, each element new (its merges keep both sides' insertions at each
//! place, ours first; after a merge, an append of one side is an insertion before the other's).
//!
//! `VALFS_SYNC_MODEL_CASES` (default 10) sets the number of cases, `VALFS_SYNC_MODEL_OPS` the
//! most operations per case (default 40), `VALFS_SYNC_MODEL_SHRINK` the shrinking steps after a
//! failure (default 8: every step replays a case with real processes).

use crate::common::fsck;
use crate::mount::harness::{Mount, VALFS};
use crate::servers::{GitDaemon, bare};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value as J, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
/// How many stores: 0 is mounted, 1 reaches the hub through the git daemon, 2 by path.
const STORES: usize = 3;
/// The store whose remote is the git daemon.
const VIA_DAEMON: usize = 1;

type P = Vec<String>;

fn show(p: &[String]) -> String {
    if p.is_empty() {
        "/".into()
    } else {
        p.join("/")
    }
}

fn path(names: &[&str]) -> P {
    names.iter().map(|s| s.to_string()).collect()
}

// ----- values -----

fn get<'a>(v: &'a J, p: &[String]) -> Option<&'a J> {
    p.iter().try_fold(v, |v, name| match v {
        J::Object(m) => m.get(name),
        J::Array(a) => a.get(name.parse::<usize>().ok()?),
        _ => None,
    })
}

fn is_map(v: &J, p: &[String]) -> bool {
    matches!(get(v, p), Some(J::Object(_)))
}

/// Sets a key (its parent a map), or appends to a vector (the index one past the end).
fn set(v: &mut J, p: &[String], x: J) {
    let (last, parent) = p.split_last().unwrap();
    let mut at = v;
    for name in parent {
        at = match at {
            J::Object(m) => m.get_mut(name).unwrap(),
            J::Array(a) => &mut a[name.parse::<usize>().unwrap()],
            _ => panic!("set {} in a scalar", show(p)),
        };
    }
    match at {
        J::Object(m) => {
            m.insert(last.clone(), x);
        }
        J::Array(a) if last.parse::<usize>() == Ok(a.len()) => a.push(x),
        _ => panic!("set {} in {at}", show(p)),
    }
}

/// Removes a key (never an element: `v` is only appended to).
fn remove(v: &mut J, p: &[String]) -> J {
    let (last, parent) = p.split_last().unwrap();
    let mut at = v;
    for name in parent {
        at = at.get_mut(name.as_str()).unwrap();
    }
    at.as_object_mut().unwrap().remove(last).unwrap()
}

/// The entries under the keys `a`..`d` (not `v`), parents first.
fn entries(v: &J) -> Vec<P> {
    fn go(v: &J, p: &mut P, out: &mut Vec<P>) {
        if let J::Object(m) = v {
            for (k, c) in m {
                p.push(k.clone());
                out.push(p.clone());
                go(c, p, out);
                p.pop();
            }
        }
    }
    let mut out = Vec::new();
    for k in KEYS {
        if let Some(c) = v.get(k) {
            let mut p = path(&[k]);
            out.push(p.clone());
            go(c, &mut p, &mut out);
        }
    }
    out
}

fn within(a: &[String], b: &[String]) -> bool {
    a.starts_with(b)
}

/// The twelve places edits aim at: `k`, `k/x`, `k/y` for each key.
fn place(i: u8) -> P {
    let k = KEYS[(i as usize / 3) % KEYS.len()];
    match i % 3 {
        0 => path(&[k]),
        1 => path(&[k, "x"]),
        _ => path(&[k, "y"]),
    }
}

/// A scalar from a small set, so that sides often make the same edit.
fn scalar(n: u8) -> J {
    match n % 5 {
        4 => json!("s"),
        k => json!(k),
    }
}

/// A scalar, or now and then a map (a retyping).
fn value(n: u8) -> J {
    if n % 6 == 5 {
        json!({ "x": n % 3 })
    } else {
        scalar(n)
    }
}

// ----- the model: stores, hub, and the merge rules of docs/FORMAT.md -----

/// A conflict record as `valfs conflicts --long` shows it.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    kind: String,
    base: Option<J>,
    ours: Option<J>,
    theirs: Option<J>,
}

type Records = BTreeMap<String, Record>;

/// What a commit holds: the value and the open conflicts.
#[derive(Clone, Debug, PartialEq)]
struct State {
    value: J,
    records: Records,
}

/// The model of the stores: what each head holds, what each commit holds (commits are
/// content-addressed, so two stores making the same edit on the same parent in the same
/// second make one commit: the commit graph is read from git, the values are the model's).
#[derive(Clone, Debug)]
struct Model {
    now: Vec<State>,
    /// What each commit a head pointed at holds.
    states: BTreeMap<String, State>,
    /// Each store's remote points at a missing path.
    cut: Vec<bool>,
    daemon_up: bool,
}

struct Merger {
    conflicts: Vec<(String, Record)>,
}

impl Merger {
    fn conflict(&mut self, kind: &str, p: &[String], b: Option<&J>, o: Option<&J>, t: Option<&J>) {
        let record = Record {
            kind: kind.into(),
            base: b.cloned(),
            ours: o.cloned(),
            theirs: t.cloned(),
        };
        self.conflicts.push((show(p), record));
    }

    fn node(
        &mut self,
        b: Option<&J>,
        o: Option<&J>,
        t: Option<&J>,
        p: &mut P,
    ) -> Result<Option<J>, String> {
        if o == t || t == b {
            return Ok(o.cloned());
        }
        if o == b {
            return Ok(t.cloned());
        }
        let (Some(ov), Some(tv)) = (o, t) else {
            self.conflict("edit/remove", p, b, o, t);
            return Ok(o.cloned());
        };
        let shape = |v: &J| match v {
            J::Object(_) => 1,
            J::Array(_) => 2,
            _ => 0,
        };
        if shape(ov) != shape(tv) {
            self.conflict("type/edit", p, b, o, t);
            return Ok(o.cloned());
        }
        match (b, ov, tv) {
            (_, J::Object(om), J::Object(tm)) => {
                let empty = Map::new();
                let bm = b.and_then(J::as_object).unwrap_or(&empty);
                let mut names: Vec<&String> = bm.keys().chain(om.keys()).chain(tm.keys()).collect();
                names.sort();
                names.dedup();
                let mut out = Map::new();
                for name in names {
                    p.push(name.clone());
                    let merged = self.node(bm.get(name), om.get(name), tm.get(name), p)?;
                    p.pop();
                    if let Some(x) = merged {
                        out.insert(name.clone(), x);
                    }
                }
                Ok(Some(J::Object(out)))
            }
            (Some(J::Array(ba)), J::Array(oa), J::Array(ta)) => {
                // Elements are only ever added, each one new: both sides' insertions at each
                // place between the base's elements, ours first (the same insertion once).
                let (Some(og), Some(tg)) = (gaps(ba, oa), gaps(ba, ta)) else {
                    return Err(format!(
                        "model: {} lost an element ({ba:?} {oa:?} {ta:?})",
                        show(p)
                    ));
                };
                let mut out = Vec::new();
                for (g, (o, t)) in og.into_iter().zip(tg).enumerate() {
                    let same = o == t;
                    out.extend(o);
                    if !same {
                        out.extend(t);
                    }
                    out.extend(ba.get(g).cloned());
                }
                Ok(Some(J::Array(out)))
            }
            _ => {
                self.conflict("edit/edit", p, b, o, t);
                Ok(o.cloned())
            }
        }
    }
}

/// What a side inserted into a sequence: the new elements before each of the base's elements
/// and after the last; `None` unless the base's elements are all there, in order.
fn gaps(base: &[J], side: &[J]) -> Option<Vec<Vec<J>>> {
    let mut out = vec![Vec::new()];
    let mut next = base.iter().peekable();
    for x in side {
        if next.peek() == Some(&x) {
            next.next();
            out.push(Vec::new());
        } else {
            out.last_mut().unwrap().push(x.clone());
        }
    }
    next.peek().is_none().then_some(out)
}

/// The conflict sets merge path by path: a record one side changed and the other left alone
/// takes that change; both changed it: a record beats none, ours beats theirs.
fn merge_records(b: &Records, o: &Records, t: &Records) -> Records {
    if o == t || t == b {
        return o.clone();
    }
    if o == b {
        return t.clone();
    }
    let mut names: Vec<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Records::new();
    for name in names {
        let (rb, ro, rt) = (b.get(name), o.get(name), t.get(name));
        let kept = if ro == rt || rt == rb {
            ro
        } else if ro == rb {
            rt
        } else {
            ro.or(rt)
        };
        if let Some(r) = kept {
            out.insert(name.clone(), r.clone());
        }
    }
    out
}

/// A store's branch merged with the hub's: the merged state and how many conflicts it met.
fn merge(base: &State, ours: &State, theirs: &State) -> Result<(State, usize), String> {
    let mut m = Merger {
        conflicts: Vec::new(),
    };
    let value = m
        .node(
            Some(&base.value),
            Some(&ours.value),
            Some(&theirs.value),
            &mut P::new(),
        )?
        .unwrap_or_else(|| ours.value.clone());
    let mut records = merge_records(&base.records, &ours.records, &theirs.records);
    let met = m.conflicts.len();
    records.extend(m.conflicts);
    Ok((State { value, records }, met))
}

impl Model {
    fn reachable(&self, s: usize) -> bool {
        !self.cut[s] && (s != VIA_DAEMON || self.daemon_up)
    }

    fn state(&self, commit: &str) -> Result<&State, String> {
        self.states
            .get(commit)
            .ok_or_else(|| format!("model: no state known for commit {commit}"))
    }

    /// Store `s`'s head is now `commit`, holding `state` (a commit holds one state only).
    fn at(&mut self, s: usize, commit: &str, state: State) -> Result<(), String> {
        if let Some(known) = self.states.get(commit)
            && *known != state
        {
            return Err(format!(
                "commit {commit} of store {s} holds {state:?}, and before {known:?}"
            ));
        }
        self.states.insert(commit.to_owned(), state.clone());
        self.now[s] = state;
        Ok(())
    }
}

// ----- operations -----

#[derive(Clone, Debug)]
enum Op {
    /// `valfs set` of a place (a key's value, or a sub key's when the key is a map).
    Set {
        store: usize,
        at: u8,
        value: u8,
    },
    /// `valfs rm` of an existing entry.
    Rm {
        store: usize,
        pick: u8,
    },
    /// `valfs mv` of an existing entry to a place (replacing what is there).
    Mv {
        store: usize,
        pick: u8,
        to: u8,
    },
    /// `valfs set v/N` appending to `v`.
    Append {
        store: usize,
    },
    /// `valfs resolve` of an open conflict.
    Resolve {
        store: usize,
        pick: u8,
    },
    /// Writing a file in store 0's mount (a scalar's or a map's text).
    Write {
        at: u8,
        value: u8,
    },
    /// mkdir in the mount: a new empty map.
    Mkdir {
        at: u8,
    },
    /// `rm -r` in the mount.
    RmR {
        pick: u8,
    },
    /// rename(2) in the mount, to a place that holds nothing.
    Rename {
        pick: u8,
        to: u8,
    },
    /// A new file `v/N` in the mount: an append.
    AppendFile,
    /// Writing a file at a conflicted path in the mount (or the nearest place there is for a
    /// file: above it, or inside it when it is a folder): the save resolves the conflict.
    SaveConflicted {
        pick: u8,
        value: u8,
    },
    /// `rm -r .conflicts/NAME` in the mount: resolves the conflict, the value as it is.
    RmConflict {
        pick: u8,
    },
    Sync {
        store: usize,
    },
    Pull {
        store: usize,
    },
    Push {
        store: usize,
    },
    /// The store's remote points at a missing path until healed.
    Cut {
        store: usize,
    },
    Heal {
        store: usize,
    },
    DaemonStop,
    DaemonStart,
}

fn op() -> impl Strategy<Value = Op> {
    let store = 0..STORES;
    prop_oneof![
        4 => (store.clone(), any::<u8>(), any::<u8>())
            .prop_map(|(store, at, value)| Op::Set { store, at, value }),
        1 => (store.clone(), any::<u8>()).prop_map(|(store, pick)| Op::Rm { store, pick }),
        1 => (store.clone(), any::<u8>(), any::<u8>())
            .prop_map(|(store, pick, to)| Op::Mv { store, pick, to }),
        1 => store.clone().prop_map(|store| Op::Append { store }),
        2 => (store.clone(), any::<u8>()).prop_map(|(store, pick)| Op::Resolve { store, pick }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(at, value)| Op::Write { at, value }),
        1 => any::<u8>().prop_map(|at| Op::Mkdir { at }),
        1 => any::<u8>().prop_map(|pick| Op::RmR { pick }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(pick, to)| Op::Rename { pick, to }),
        1 => Just(Op::AppendFile),
        1 => any::<u8>().prop_map(|pick| Op::RmConflict { pick }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(pick, value)| Op::SaveConflicted { pick, value }),
        6 => store.clone().prop_map(|store| Op::Sync { store }),
        1 => store.clone().prop_map(|store| Op::Pull { store }),
        1 => store.clone().prop_map(|store| Op::Push { store }),
        2 => store.clone().prop_map(|store| Op::Cut { store }),
        1 => store.prop_map(|store| Op::Heal { store }),
        2 => Just(Op::DaemonStop),
        1 => Just(Op::DaemonStart),
    ]
}

/// The first value: some of the keys, each a scalar or a map; `v` empty.
fn doc() -> impl Strategy<Value = J> {
    vec(proptest::option::of(any::<u8>()), KEYS.len()).prop_map(|vals| {
        let mut m = Map::new();
        for (k, x) in KEYS.iter().zip(vals) {
            if let Some(x) = x {
                m.insert((*k).to_owned(), value(x));
            }
        }
        m.insert("v".into(), json!([]));
        J::Object(m)
    })
}

// ----- the real stores -----

/// Runs operations in the mount: one JSON command a line in, one JSON answer a line out.
const SHELL: &str = r#"
import json, os, shutil, stat, sys

def walk(p):
    if stat.S_ISDIR(os.lstat(p).st_mode):
        names = [n for n in os.listdir(p) if not (p == '.' and n.startswith('.'))]
        if os.getxattr(p, 'user.valfs.type').decode() == 'vector':
            return [walk(os.path.join(p, n)) for n in sorted(names, key=int)]
        return {n: walk(os.path.join(p, n)) for n in sorted(names)}
    with open(p, 'rb') as f:
        return json.loads(f.read())

def run(c):
    op = c['op']
    if op == 'write':
        with open(c['path'], 'wb') as f:
            f.write(c['text'].encode())
    elif op == 'mkdir':
        os.mkdir(c['path'])
    elif op == 'rmr':
        if stat.S_ISDIR(os.lstat(c['path']).st_mode):
            shutil.rmtree(c['path'])
        else:
            os.unlink(c['path'])
    elif op == 'rename':
        os.rename(c['from'], c['to'])
    elif op == 'walk':
        try:
            shown = sorted(os.listdir('.conflicts'))
        except FileNotFoundError:
            shown = []
        return {'value': walk('.'), 'conflicts': shown}

for line in sys.stdin:
    c = json.loads(line)
    try:
        out = {'ok': run(c)}
    except (OSError, ValueError) as e:
        out = {'error': repr(e)}
    print(json.dumps(out), flush=True)
"#;

/// The Python process working in the mount, killed (by its PID) when dropped: before the mount
/// is unmounted.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Shell {
    fn start(m: &Mount) -> Shell {
        let mut child = m
            .cmd("python3")
            .args(["-c", SHELL])
            .current_dir(&m.mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Shell {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, cmd: J) -> Result<J, String> {
        writeln!(self.stdin, "{cmd}").map_err(|e| format!("the mount's shell: {e}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("the mount's shell: {e}"))?;
        let out: J = serde_json::from_str(&line)
            .map_err(|e| format!("the mount's shell answered {line:?} to {cmd}: {e}"))?;
        match out.get("error") {
            Some(e) => Err(format!("{cmd} in the mount: {e}")),
            None => Ok(out["ok"].clone()),
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store of the CLI only: a temp dir with its own `$HOME`.
struct Peer {
    dir: tempfile::TempDir,
}

impl Peer {
    fn repo(&self) -> PathBuf {
        self.dir.path().join("store.git")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(VALFS);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }
}

/// A case's machines. Fields drop in order: the shell (its working directory is in the mount),
/// then the mount (unmounted), the peers, the daemon (stopped), the hub's directory.
struct World {
    shell: Shell,
    mount: Mount,
    peers: Vec<Peer>,
    daemon: GitDaemon,
    /// The daemon's log.
    _logs: tempfile::TempDir,
    hubs: tempfile::TempDir,
    model: Model,
    /// Each store's real remote URL.
    urls: Vec<String>,
    /// Every head any branch had after a step, with where it was seen.
    seen: Vec<(String, String)>,
    /// What happened, for the failure message.
    log: Vec<String>,
    /// How many of each kind of step ran, over the case.
    stats: BTreeMap<String, usize>,
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn head_of(repo: &Path) -> String {
    let repo = git2::Repository::open_bare(repo).unwrap();
    repo.refname_to_id("refs/heads/main")
        .map(|o| o.to_string())
        .unwrap_or_default()
}

impl World {
    fn new(doc: &J) -> Result<World, String> {
        let hubs = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let hub = bare(hubs.path(), "hub.git");
        let daemon = GitDaemon::start(hubs.path(), logs.path());
        let mount = Mount::new(&doc.to_string());
        let shell = Shell::start(&mount);
        let hub_path = hub.to_str().unwrap().to_owned();
        let urls = vec![hub_path.clone(), daemon.url("hub.git"), hub_path];
        mount.valfs_ok(&["remote", "add", "origin", &urls[0]]);
        mount.valfs_ok(&["push"]);
        let mut peers = Vec::new();
        for url in &urls[1..] {
            let peer = Peer {
                dir: tempfile::tempdir().unwrap(),
            };
            let out = peer
                .command()
                .args(["--repo", peer.repo().to_str().unwrap(), "clone", url])
                .output()
                .unwrap();
            if !out.status.success() {
                return Err(format!("valfs clone {url}: {}", text(&out.stderr)));
            }
            peers.push(peer);
        }
        let first = State {
            value: doc.clone(),
            records: Records::new(),
        };
        let model = Model {
            now: vec![first; STORES],
            states: BTreeMap::new(),
            cut: vec![false; STORES],
            daemon_up: true,
        };
        let mut w = World {
            shell,
            mount,
            peers,
            daemon,
            _logs: logs,
            hubs,
            model,
            urls,
            seen: Vec::new(),
            log: Vec::new(),
            stats: BTreeMap::new(),
        };
        for s in 0..STORES {
            let (head, state) = (w.head(s), w.model.now[s].clone());
            w.model.at(s, &head, state)?;
            w.check_store(s, "at the start")?;
            w.note_head(s);
        }
        Ok(w)
    }

    fn repo(&self, s: usize) -> PathBuf {
        match s {
            0 => self.mount.repo.clone(),
            _ => self.peers[s - 1].repo(),
        }
    }

    fn hub(&self) -> PathBuf {
        self.hubs.path().join("hub.git")
    }

    fn valfs(&self, s: usize, args: &[&str]) -> Output {
        let mut cmd = match s {
            0 => self.mount.cmd(VALFS),
            _ => self.peers[s - 1].command(),
        };
        cmd.arg("--repo").arg(self.repo(s)).args(args);
        cmd.output().unwrap()
    }

    /// A command that must succeed (a merge may warn about its conflicts on stderr).
    fn valfs_ok(&self, s: usize, args: &[&str]) -> Result<String, String> {
        let out = self.valfs(s, args);
        if !out.status.success() {
            return Err(format!(
                "store {s}: valfs {args:?} failed: {}",
                text(&out.stderr)
            ));
        }
        Ok(text(&out.stdout))
    }

    fn head(&self, s: usize) -> String {
        head_of(&self.repo(s))
    }

    fn note_head(&mut self, s: usize) {
        let head = self.head(s);
        self.seen.push((head, format!("store {s}")));
    }

    /// The store's value and open conflicts must be the model's.
    fn check_store(&self, s: usize, when: &str) -> Result<(), String> {
        let value: J = serde_json::from_str(&self.valfs_ok(s, &["export"])?)
            .map_err(|e| format!("store {s}: export: {e}"))?;
        let records = self.conflicts(s)?;
        let want = &self.model.now[s];
        if value != want.value {
            return Err(format!(
                "store {s} {when}: the value is {value}, the model says {}",
                want.value
            ));
        }
        if records != want.records {
            return Err(format!(
                "store {s} {when}: valfs conflicts lists {records:?}, the model says {:?}",
                want.records
            ));
        }
        Ok(())
    }

    /// `valfs conflicts --long`, read back.
    fn conflicts(&self, s: usize) -> Result<Records, String> {
        let out = self.valfs_ok(s, &["conflicts", "--long"])?;
        let short = self.valfs_ok(s, &["conflicts"])?;
        let mut records = Records::new();
        let mut at: Option<String> = None;
        for line in out.lines() {
            if let Some(side) = line.strip_prefix("  ") {
                let (label, t) = side
                    .split_once(':')
                    .ok_or_else(|| format!("store {s}: conflicts --long: {line:?}"))?;
                let t = t.trim();
                let x = if t == "(none)" {
                    None
                } else {
                    Some(serde_json::from_str(t).map_err(|e| format!("{line:?}: {e}"))?)
                };
                let r = records.get_mut(at.as_ref().unwrap()).unwrap();
                match label {
                    "base" => r.base = x,
                    "ours" => r.ours = x,
                    "theirs" => r.theirs = x,
                    _ => return Err(format!("store {s}: conflicts --long: {line:?}")),
                }
            } else {
                let (p, kind) = line
                    .rsplit_once(' ')
                    .ok_or_else(|| format!("store {s}: conflicts --long: {line:?}"))?;
                records.insert(
                    p.to_owned(),
                    Record {
                        kind: kind.to_owned(),
                        base: None,
                        ours: None,
                        theirs: None,
                    },
                );
                at = Some(p.to_owned());
            }
        }
        let listed: Vec<&str> = short.lines().collect();
        let mut names: Vec<&str> = records.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        if sorted != names {
            return Err(format!(
                "store {s}: valfs conflicts lists {listed:?}, --long {names:?}"
            ));
        }
        Ok(records)
    }

    /// Waits until the mount shows store 0's value and conflicts (`.conflicts/`: each path
    /// escaped as a key); it follows its branch five times a second.
    fn mount_follows(&mut self) -> Result<(), String> {
        let now = &self.model.now[0];
        let names: Vec<String> = now.records.keys().map(|p| p.replace('/', "%2F")).collect();
        let want = json!({"value": now.value, "conflicts": names});
        let start = Instant::now();
        loop {
            // A walk that meets the change halfway may find an entry gone: walk again.
            let seen = self.shell.call(json!({"op": "walk"}));
            if seen.as_ref() == Ok(&want) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "the mount shows {seen:?} 5 s after its branch became {want}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After a local edit on store `s` that the model made `want`: one commit or more when the
    /// state changed, none when it did not; the store agrees with the model. `saved`: the paths a
    /// save in the mount touched, which resolves each conflict at, inside or above one of them
    /// in the same commit (docs/FORMAT.md, "Conflicts").
    fn edited(
        &mut self,
        s: usize,
        before: &str,
        mut want: State,
        saved: Option<&[P]>,
    ) -> Result<(), String> {
        if let Some(touched) = saved {
            let open = want.records.len();
            want.records.retain(|c, _| {
                let c = path_of(c);
                !touched.iter().any(|t| within(t, &c) || within(&c, t))
            });
            *self
                .stats
                .entry("conflicts resolved by saves".into())
                .or_default() += open - want.records.len();
        }
        let changed = want != self.model.now[s];
        let moved = self.head(s) != before;
        if moved != changed {
            return Err(format!(
                "store {s}: the branch {} though the state {}",
                if moved { "moved" } else { "stayed" },
                if changed { "changed" } else { "did not change" }
            ));
        }
        let kind = if saved.is_some() {
            "mount edits"
        } else {
            "CLI edits"
        };
        *self.stats.entry(kind.into()).or_default() += usize::from(changed);
        let head = self.head(s);
        self.model.at(s, &head, want)?;
        self.check_store(s, "after the edit")?;
        self.note_head(s);
        if s == 0 && saved.is_none() {
            self.mount_follows()?;
        }
        Ok(())
    }

    /// The places a mount write may aim at: not a folder (and its parent a map).
    fn file_place(v: &J, at: u8) -> P {
        let mut p = place(at);
        if p.len() == 2 && !is_map(v, &p[..1]) {
            p.truncate(1);
        } else if p.len() == 1 && is_map(v, &p) {
            p.push("x".into());
        }
        p
    }

    /// Where an entry may move: a place that is neither inside it nor holds it, whose parent
    /// is a map; `empty`: only places that hold nothing.
    fn move_targets(v: &J, from: &[String], empty: bool) -> Vec<P> {
        (0..12)
            .map(place)
            .filter(|to| {
                !within(to, from)
                    && !within(from, to)
                    && (to.len() == 1 || is_map(v, &to[..1]))
                    && !(empty && get(v, to).is_some())
            })
            .collect()
    }

    fn run(&mut self, op: &Op) -> Result<(), String> {
        self.log.push(format!("{op:?}"));
        match *op {
            Op::Set {
                store,
                at,
                value: n,
            } => {
                let now = self.model.now[store].clone();
                let mut p = place(at);
                if p.len() == 2 && !is_map(&now.value, &p[..1]) {
                    p.truncate(1);
                }
                let x = if p.len() == 1 { value(n) } else { scalar(n) };
                let before = self.head(store);
                self.valfs_ok(store, &["set", &show(&p), &x.to_string()])?;
                let mut want = now;
                set(&mut want.value, &p, x);
                self.edited(store, &before, want, None)
            }
            Op::Rm { store, pick } => {
                let now = self.model.now[store].clone();
                let all = entries(&now.value);
                if all.is_empty() {
                    return Ok(());
                }
                let p = &all[pick as usize % all.len()];
                let before = self.head(store);
                self.valfs_ok(store, &["rm", &show(p)])?;
                let mut want = now;
                remove(&mut want.value, p);
                self.edited(store, &before, want, None)
            }
            Op::Mv { store, pick, to } => {
                let now = self.model.now[store].clone();
                let all = entries(&now.value);
                if all.is_empty() {
                    return Ok(());
                }
                let from = &all[pick as usize % all.len()];
                let targets = World::move_targets(&now.value, from, false);
                if targets.is_empty() {
                    return Ok(());
                }
                let to = &targets[to as usize % targets.len()];
                let before = self.head(store);
                self.valfs_ok(store, &["mv", &show(from), &show(to)])?;
                let mut want = now;
                let x = remove(&mut want.value, from);
                set(&mut want.value, to, x);
                self.edited(store, &before, want, None)
            }
            Op::Append { store } => {
                let now = self.model.now[store].clone();
                let n = now.value["v"].as_array().unwrap().len();
                let x = json!(format!("{store}-{}", self.log.len()));
                let before = self.head(store);
                self.valfs_ok(store, &["set", &format!("v/{n}"), &x.to_string()])?;
                let mut want = now;
                want.value["v"].as_array_mut().unwrap().push(x);
                self.edited(store, &before, want, None)
            }
            Op::Resolve { store, pick } => {
                // The store, or the next one that has a conflict open.
                let Some(store) = (0..STORES)
                    .map(|i| (store + i) % STORES)
                    .find(|&s| !self.model.now[s].records.is_empty())
                else {
                    return Ok(());
                };
                let now = self.model.now[store].clone();
                let open: Vec<&String> = now.records.keys().collect();
                let paths: Vec<&str> = match pick % 4 {
                    // Now and then all of them at once.
                    0 => open.iter().map(|p| p.as_str()).collect(),
                    _ => vec![open[pick as usize % open.len()].as_str()],
                };
                let before = self.head(store);
                let mut args = vec!["resolve"];
                args.extend(&paths);
                self.valfs_ok(store, &args)?;
                let mut want = now.clone();
                for p in &paths {
                    want.records.remove(*p);
                }
                *self.stats.entry("conflicts resolved".into()).or_default() += paths.len();
                self.edited(store, &before, want, None)
            }
            Op::Write { at, value: n } => {
                let now = self.model.now[0].clone();
                let p = World::file_place(&now.value, at);
                if is_map(&now.value, &p) {
                    return Ok(()); // a map moved under a sub key: a folder there
                }
                let x = if p.len() == 1 { value(n) } else { scalar(n) };
                let before = self.head(0);
                self.shell
                    .call(json!({"op": "write", "path": show(&p), "text": format!("{x}\n")}))?;
                let mut want = now;
                set(&mut want.value, &p, x);
                self.edited(0, &before, want, Some(&[p]))
            }
            Op::Mkdir { at } => {
                let now = self.model.now[0].clone();
                let p = place(at);
                if get(&now.value, &p).is_some() || (p.len() == 2 && !is_map(&now.value, &p[..1])) {
                    return Ok(());
                }
                let before = self.head(0);
                self.shell.call(json!({"op": "mkdir", "path": show(&p)}))?;
                let mut want = now;
                set(&mut want.value, &p, json!({}));
                self.edited(0, &before, want, Some(&[p]))
            }
            Op::RmR { pick } => {
                let now = self.model.now[0].clone();
                let all = entries(&now.value);
                if all.is_empty() {
                    return Ok(());
                }
                let p = all[pick as usize % all.len()].clone();
                let before = self.head(0);
                self.shell.call(json!({"op": "rmr", "path": show(&p)}))?;
                let mut want = now;
                remove(&mut want.value, &p);
                self.edited(0, &before, want, Some(&[p]))
            }
            Op::Rename { pick, to } => {
                let now = self.model.now[0].clone();
                let all = entries(&now.value);
                if all.is_empty() {
                    return Ok(());
                }
                let from = all[pick as usize % all.len()].clone();
                let targets = World::move_targets(&now.value, &from, true);
                if targets.is_empty() {
                    return Ok(());
                }
                let to = targets[to as usize % targets.len()].clone();
                let before = self.head(0);
                self.shell
                    .call(json!({"op": "rename", "from": show(&from), "to": show(&to)}))?;
                let mut want = now;
                let x = remove(&mut want.value, &from);
                set(&mut want.value, &to, x);
                self.edited(0, &before, want, Some(&[from, to]))
            }
            Op::AppendFile => {
                let now = self.model.now[0].clone();
                let n = now.value["v"].as_array().unwrap().len();
                let x = json!(format!("m-{}", self.log.len()));
                let before = self.head(0);
                let p = path(&["v", &n.to_string()]);
                self.shell
                    .call(json!({"op": "write", "path": show(&p), "text": format!("{x}\n")}))?;
                let mut want = now;
                want.value["v"].as_array_mut().unwrap().push(x);
                self.edited(0, &before, want, Some(&[p]))
            }
            Op::SaveConflicted { pick, value: n } => {
                let now = self.model.now[0].clone();
                let open: Vec<&String> = now.records.keys().collect();
                if open.is_empty() {
                    return Ok(());
                }
                let mut p = path_of(open[pick as usize % open.len()]);
                while p.len() > 1 && !is_map(&now.value, &p[..p.len() - 1]) {
                    p.pop();
                }
                if is_map(&now.value, &p) {
                    p.push("x".into());
                }
                let x = scalar(n);
                let before = self.head(0);
                self.shell
                    .call(json!({"op": "write", "path": show(&p), "text": format!("{x}\n")}))?;
                let mut want = now;
                set(&mut want.value, &p, x);
                self.edited(0, &before, want, Some(&[p]))
            }
            Op::RmConflict { pick } => {
                let now = self.model.now[0].clone();
                let open: Vec<&String> = now.records.keys().collect();
                if open.is_empty() {
                    return Ok(());
                }
                let p = open[pick as usize % open.len()].clone();
                let before = self.head(0);
                let folder = format!(".conflicts/{}", p.replace('/', "%2F"));
                self.shell.call(json!({"op": "rmr", "path": folder}))?;
                let mut want = now.clone();
                want.records.remove(&p);
                *self.stats.entry("conflicts resolved".into()).or_default() += 1;
                self.edited(0, &before, want, None)
            }
            Op::Sync { store } => self.transfer(store, "sync"),
            Op::Pull { store } => self.transfer(store, "pull"),
            Op::Push { store } => self.transfer(store, "push"),
            Op::Cut { store } => {
                let missing = self.hubs.path().join("missing.git");
                self.set_url(store, missing.to_str().unwrap());
                self.model.cut[store] = true;
                Ok(())
            }
            Op::Heal { store } => {
                let url = self.urls[store].clone();
                self.set_url(store, &url);
                self.model.cut[store] = false;
                Ok(())
            }
            Op::DaemonStop => {
                if self.model.daemon_up {
                    self.daemon.server.stop();
                    self.model.daemon_up = false;
                }
                Ok(())
            }
            Op::DaemonStart => {
                if !self.model.daemon_up {
                    self.daemon.server.restart();
                    self.model.daemon_up = true;
                }
                Ok(())
            }
        }
    }

    fn set_url(&self, s: usize, url: &str) {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.repo(s))
            .args(["config", "remote.origin.url", url])
            .output()
            .unwrap();
        assert!(out.status.success(), "git config: {out:?}");
    }

    /// `valfs sync`, `pull` or `push` on store `s`, against the model: the pull brings nothing
    /// when the hub's head is in the store's history, fast-forwards when the store's head is in
    /// the hub's, else merges from their merge base (git's, as valfs takes it); the push is
    /// refused when the hub has commits the store lacks.
    fn transfer(&mut self, s: usize, what: &str) -> Result<(), String> {
        let before = self.head(s);
        let hub_before = head_of(&self.hub());
        let reachable = self.model.reachable(s);
        let hub_in_store = contains(&self.repo(s), &before, &hub_before);
        let store_in_hub = contains(&self.hub(), &hub_before, &before);
        let ok = reachable && (what != "push" || hub_in_store);
        let out = self.valfs(s, &[what]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let said = format!("store {s}: valfs {what}: {}{stdout}{stderr}", out.status);
        if out.status.success() != ok {
            return Err(format!(
                "{said}\n(the model expected {}: reachable {reachable}, the hub's head in the \
                 store's history {hub_in_store})",
                if ok { "success" } else { "a failure" }
            ));
        }
        let outcome = if ok { "done" } else { "refused" };
        let plural = if what == "push" {
            "pushes"
        } else {
            &format!("{what}s")
        };
        *self.stats.entry(format!("{plural} {outcome}")).or_default() += 1;
        if !ok {
            if stderr.lines().count() != 1 || !stderr.starts_with("valfs: ") {
                return Err(format!("{said}\n(a failure says one line)"));
            }
            if self.head(s) != before || head_of(&self.hub()) != hub_before {
                return Err(format!("{said}\n(a failed {what} moved a branch)"));
            }
        } else if what != "push" && !hub_in_store {
            let want = if store_in_hub {
                self.model.state(&hub_before)?.clone()
            } else {
                let base = merge_base(&self.repo(s), &before, &hub_before);
                let (merged, n) = merge(
                    self.model.state(&base)?,
                    &self.model.now[s],
                    self.model.state(&hub_before)?,
                )?;
                *self.stats.entry("merges".into()).or_default() += 1;
                *self.stats.entry("conflicts met".into()).or_default() += n;
                let says = match n {
                    0 => !stdout.contains("conflict"),
                    1 => stdout.contains("with 1 conflict ("),
                    n => stdout.contains(&format!("with {n} conflicts (")),
                };
                if !stdout.contains("merged (") || !says {
                    return Err(format!(
                        "{said}\n(the model: a merge from {base} meeting {n} conflicts)"
                    ));
                }
                merged
            };
            let head = self.head(s);
            self.model.at(s, &head, want)?;
        }
        self.check_store(s, &format!("after valfs {what}"))?;
        if ok && what != "pull" && head_of(&self.hub()) != self.head(s) {
            return Err(format!(
                "{said}\n(the hub is not at the store's head after it)"
            ));
        }
        self.note_head(s);
        let hub = head_of(&self.hub());
        self.seen.push((hub, "the hub".into()));
        if s == 0 {
            self.mount_follows()?;
        }
        Ok(())
    }

    /// Heals every partition, then each store syncs twice, in order, and the promise is checked.
    fn finish(&mut self) -> Result<(), String> {
        self.log.push("final round".into());
        for s in 0..STORES {
            self.run(&Op::Heal { store: s })?;
        }
        self.run(&Op::DaemonStart)?;
        for _ in 0..2 {
            for s in 0..STORES {
                self.run(&Op::Sync { store: s })?;
            }
        }
        let head = head_of(&self.hub());
        for s in 0..STORES {
            if self.head(s) != head {
                return Err(format!(
                    "after the final round store {s} is at {}, the hub at {head}",
                    self.head(s)
                ));
            }
        }
        // Every commit any branch ever pointed at is in the final history.
        let mut checked = std::collections::BTreeSet::new();
        for (commit, where_) in &self.seen {
            if commit.is_empty() || !checked.insert(commit.clone()) {
                continue;
            }
            let out = Command::new("git")
                .arg("--git-dir")
                .arg(self.hub())
                .args(["merge-base", "--is-ancestor", commit, &head])
                .output()
                .unwrap();
            if !out.status.success() {
                return Err(format!(
                    "{commit} (a head of {where_}) is not an ancestor of the final head {head}: {}",
                    text(&out.stderr)
                ));
            }
        }
        // The promise, in the model's terms: every edit that met no conflict is in the value,
        // every conflict is listed (check_store compared both after every step; say which).
        let value: J = serde_json::from_str(&self.valfs_ok(0, &["export"])?).unwrap();
        let listed = self.conflicts(0)?;
        let want = self.model.now[STORES - 1].clone();
        let mut places = entries(&want.value);
        places.extend(entries(&value));
        places.push(path(&["v"]));
        for p in &places {
            let conflicted = listed
                .keys()
                .any(|c| within(p, &path_of(c)) || within(&path_of(c), p));
            if !conflicted && get(&value, p) != get(&want.value, p) {
                return Err(format!(
                    "an edit that met no conflict is lost at {}: {:?}, the edits made it {:?}",
                    show(p),
                    get(&value, p),
                    get(&want.value, p)
                ));
            }
        }
        for (p, r) in &want.records {
            if listed.get(p) != Some(r) {
                return Err(format!(
                    "the conflict at {p} is not listed as {r:?}: {:?}",
                    listed.get(p)
                ));
            }
        }
        for s in 0..STORES {
            self.check_store(s, "at the end")?;
        }
        self.mount_follows()?;
        // A save in the mount resolves a conflict, store 1 resolves all of them meanwhile, and
        // the resolutions reach every store.
        if !listed.is_empty() {
            self.log.push("resolving every conflict".into());
            self.run(&Op::SaveConflicted { pick: 0, value: 3 })?;
            self.run(&Op::Sync { store: 0 })?;
            self.run(&Op::Resolve { store: 1, pick: 0 })?;
            for s in [1, 0, 2] {
                self.run(&Op::Sync { store: s })?;
            }
            for s in 0..STORES {
                if !self.model.now[s].records.is_empty() || self.head(s) != self.head(1) {
                    return Err(format!(
                        "store {s} is not where store 1 resolved every conflict"
                    ));
                }
            }
        }
        for s in 0..STORES {
            fsck(&self.repo(s));
        }
        fsck(&self.hub());
        Ok(())
    }
}

/// Whether `repo` has `commit` in the history of `head`.
fn contains(repo: &Path, head: &str, commit: &str) -> bool {
    let repo = git2::Repository::open_bare(repo).unwrap();
    let (Ok(h), Ok(c)) = (git2::Oid::from_str(head), git2::Oid::from_str(commit)) else {
        return false;
    };
    h == c || (repo.find_commit(c).is_ok() && repo.graph_descendant_of(h, c).unwrap())
}

/// The merge base of two commits of `repo`, as valfs's merge takes it.
fn merge_base(repo: &Path, a: &str, b: &str) -> String {
    let repo = git2::Repository::open_bare(repo).unwrap();
    let (a, b) = (
        git2::Oid::from_str(a).unwrap(),
        git2::Oid::from_str(b).unwrap(),
    );
    repo.merge_base(a, b).unwrap().to_string()
}

fn path_of(shown: &str) -> P {
    shown
        .split('/')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs one case; the error says which step disagreed and how, after the steps taken.
fn run_case(doc: &J, ops: &[Op]) -> Result<BTreeMap<String, usize>, String> {
    let mut w = World::new(doc)?;
    let result = ops
        .iter()
        .try_for_each(|op| w.run(op))
        .and_then(|()| w.finish());
    match result {
        Ok(()) => Ok(std::mem::take(&mut w.stats)),
        Err(e) => Err(format!(
            "{e}\nfrom {doc} after:\n  {}\nmount log tail:\n{}",
            w.log.join("\n  "),
            w.mount.log_tail()
        )),
    }
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn stores_edited_apart_and_synced_lose_nothing_and_list_every_conflict() {
    let cases = env_number("VALFS_SYNC_MODEL_CASES", 10);
    let max_ops = env_number("VALFS_SYNC_MODEL_OPS", 40).max(1) as usize;
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: env_number("VALFS_SYNC_MODEL_SHRINK", 8),
        failure_persistence: None,
        ..Config::default()
    });
    let stats = std::cell::RefCell::new(BTreeMap::<String, usize>::new());
    let start = Instant::now();
    let result = runner.run(&(doc(), vec(op(), 1..=max_ops)), |(doc, ops)| {
        let counts = run_case(&doc, &ops).map_err(TestCaseError::fail)?;
        let mut all = stats.borrow_mut();
        *all.entry("cases".into()).or_default() += 1;
        *all.entry("operations".into()).or_default() += ops.len();
        for (k, n) in counts {
            *all.entry(k).or_default() += n;
        }
        Ok(())
    });
    let line: Vec<String> = stats
        .borrow()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    eprintln!(
        "sync model, {:.1} s: {} (cases that passed)",
        start.elapsed().as_secs_f64(),
        line.join(", ")
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
