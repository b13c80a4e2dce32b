//! A reference model: random sequences of filesystem operations are applied through a real mount
//! and to a plain in-memory `serde_json::Value`, and must agree after every step — the files the
//! mount shows, `valfs export` of the branch head, the errno of every refused operation and the
//! number of commits. Every version seen on the way (`.history/<hash>`) must keep showing exactly
//! what it showed when it was made.
//!
//! The operations run in one Python process per case (errnos of `open`, `write` and `close`
//! alike, no process per step). Vector semantics as the README states them: removing an element
//! leaves its name a gap until the vector is listed again, so `rm v/03 v/05` (one listing, then
//! two unlinks) removes the elements that were listed under those names; the walk after every
//! step lists every directory, which closes the gaps.
//!
//! `VALFS_MODEL_CASES` (default 12) sets the number of cases, `VALFS_MODEL_OPS` the most
//! operations per case (default 48, 24 on average), `VALFS_MODEL_SHRINK` the shrinking steps after a failure.

use crate::mount::harness::Mount;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOTEMPTY: i32 = 39;

/// Map keys: few, so operations often meet existing keys.
const KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// Runs operations in the mount: one JSON command a line in, one JSON answer a line out.
const SERVER: &str = r#"
import json, os, shutil, stat, sys

def walk(p, top):
    st = os.lstat(p)
    t = os.getxattr(p, 'user.valfs.type').decode()
    if stat.S_ISDIR(st.st_mode):
        names = sorted(n for n in os.listdir(p) if not (top and n == '.history'))
        return {'t': t, 'e': [[n, walk(os.path.join(p, n), False)] for n in names]}
    with open(p, 'rb') as f:
        data = f.read()
    return {'t': t, 'x': data.decode('utf-8', 'backslashreplace'), 'size': st.st_size}

def remove(p):
    if stat.S_ISDIR(os.lstat(p).st_mode):
        shutil.rmtree(p)
    else:
        os.unlink(p)

def run(c):
    op = c['op']
    if op == 'write':
        f = open(c['path'], 'wb')
        try:
            f.write(c['text'].encode())
        finally:
            f.close()
    elif op == 'recreate':
        os.unlink(c['path'])
        f = open(c['path'], 'xb')
        try:
            f.write(c['text'].encode())
        finally:
            f.close()
    elif op == 'mkdir':
        os.mkdir(c['path'])
    elif op == 'unlink':
        os.unlink(c['path'])
    elif op == 'rmdir':
        os.rmdir(c['path'])
    elif op == 'rmr':
        remove(c['path'])
    elif op == 'rename':
        os.rename(c['from'], c['to'])
    elif op == 'rmmany':
        listed = os.listdir(c['dir'])
        for n in c['names']:
            if n not in listed:
                return 'not listed: ' + n
            remove(os.path.join(c['dir'], n))
    elif op == 'walk':
        return walk(c['path'], c['path'] == '.')
    return None

for line in sys.stdin:
    c = json.loads(line)
    try:
        out = {'ok': run(c)}
    except OSError as e:
        out = {'errno': e.errno, 'msg': str(e)}
    print(json.dumps(out), flush=True)
"#;

/// The Python server, killed (by its PID) when dropped: before the mount is unmounted.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    last_error: String,
}

impl Server {
    fn start(m: &Mount) -> Server {
        let mut child = m
            .cmd("python3")
            .args(["-c", SERVER])
            .current_dir(&m.mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Server {
            child,
            stdin,
            stdout,
            last_error: String::new(),
        }
    }

    /// Sends a command; `Ok(answer)` or `Err(errno)`.
    fn call(&mut self, cmd: &Value) -> Result<Value, i32> {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let out: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the server answered {line:?} to {cmd}: {e}"));
        match out.get("errno") {
            Some(e) => {
                self.last_error = out["msg"].as_str().unwrap_or("").to_owned();
                Err(e.as_i64().unwrap() as i32)
            }
            None => Ok(out["ok"].clone()),
        }
    }

    fn walk(&mut self, path: &str) -> Result<Value, String> {
        self.call(&json!({"op": "walk", "path": path}))
            .map_err(|e| format!("walking {path}: errno {e}: {}", self.last_error))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- the model -----

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, s| match (v, s) {
        (Value::Object(m), Seg::Key(k)) => m.get(k),
        (Value::Array(a), Seg::Idx(i)) => a.get(*i),
        _ => None,
    })
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match (v, s) {
        (Value::Object(m), Seg::Key(k)) => m.get_mut(k),
        (Value::Array(a), Seg::Idx(i)) => a.get_mut(*i),
        _ => None,
    })
}

/// Sets a key, replaces an element, or appends (the index one past the end).
fn set(root: &mut Value, path: &[Seg], value: Value) {
    let (last, parent) = path.split_last().unwrap();
    match (get_mut(root, parent).unwrap(), last) {
        (Value::Object(m), Seg::Key(k)) => {
            m.insert(k.clone(), value);
        }
        (Value::Array(a), Seg::Idx(i)) if *i == a.len() => a.push(value),
        (Value::Array(a), Seg::Idx(i)) => a[*i] = value,
        (p, s) => panic!("set {s:?} in {p}"),
    }
}

fn remove(root: &mut Value, path: &[Seg]) -> Value {
    let (last, parent) = path.split_last().unwrap();
    match (get_mut(root, parent).unwrap(), last) {
        (Value::Object(m), Seg::Key(k)) => m.remove(k).unwrap(),
        (Value::Array(a), Seg::Idx(i)) => a.remove(*i),
        (p, s) => panic!("remove {s:?} from {p}"),
    }
}

/// Every collection's path, the root first.
fn dirs(v: &Value) -> Vec<Vec<Seg>> {
    fn go(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        let children: Vec<(Seg, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (Seg::Key(k.clone()), c)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (Seg::Idx(i), c))
                .collect(),
            _ => return,
        };
        out.push(path.clone());
        for (s, c) in children {
            path.push(s);
            go(c, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// Files and folders in a subtree, itself included: the commits its `rm -r` makes.
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(nodes).sum(),
        Value::Array(a) => a.iter().map(nodes).sum(),
        _ => 0,
    }
}

/// The path in the mount; `pad` spells indices with a leading zero (`03`: any spelling works).
fn mount_path(path: &[Seg], pad: bool) -> String {
    if path.is_empty() {
        return ".".into();
    }
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Idx(i) if pad => format!("{i:02}"),
            Seg::Idx(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map",
        Value::Array(_) => "vector",
        Value::String(_) => "string",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}

/// Whether `a` is `b` or lies under it.
fn within(a: &[Seg], b: &[Seg]) -> bool {
    a.starts_with(b)
}

// ----- operations -----

/// What is written into a file, and the value it stands for.
#[derive(Clone, Debug)]
struct Text {
    text: String,
    value: Value,
}

#[derive(Clone, Debug)]
enum Op {
    /// `dir` and `key` select among the collections and keys of the model when applied: a map
    /// takes `KEYS[key % 4]`, a vector the index `key % (len + 2)` (one past the append).
    Write {
        dir: usize,
        key: usize,
        text: Text,
        pad: bool,
    },
    /// `unlink` then a new file of the same name (`mv` from another filesystem): in a vector
    /// the name is a gap in between, and the new element takes the old one's place.
    Recreate {
        dir: usize,
        key: usize,
        text: Text,
    },
    Mkdir {
        dir: usize,
        key: usize,
    },
    Unlink {
        dir: usize,
        key: usize,
        pad: bool,
    },
    Rmdir {
        dir: usize,
        key: usize,
    },
    RmR {
        dir: usize,
        key: usize,
    },
    Rename {
        dir: usize,
        key: usize,
        to_dir: usize,
        to_key: usize,
        pad: bool,
    },
    /// One listing, then several removals: `rm v/03 v/05`.
    RmSeveral {
        dir: usize,
        picks: Vec<usize>,
    },
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-20i64..100).prop_map(Value::from),
        prop_oneof![Just(4.5), Just(-0.25)].prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        prop_oneof![
            Just(""),
            Just("s"),
            Just("Bob"),
            Just("two words"),
            Just("42x")
        ]
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((0..KEYS.len(), inner), 0..4).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (KEYS[k].to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn doc() -> impl Strategy<Value = Value> {
    vec((0..KEYS.len(), value()), 1..5).prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (KEYS[k].to_owned(), v))
                .collect(),
        )
    })
}

/// File text: a scalar's JSON text, a bare word (a string), or a collection's text.
fn text() -> impl Strategy<Value = Text> {
    let bare =
        prop_oneof![Just("Bob"), Just("two words"), Just("42x"), Just("")].prop_map(|w| Text {
            text: w.to_owned(),
            value: Value::from(w),
        });
    let json = prop_oneof![3 => scalar(), 1 => value()].prop_map(|v| Text {
        text: v.to_string(),
        value: v,
    });
    (prop_oneof![1 => bare, 3 => json], any::<bool>()).prop_map(|(mut t, newline)| {
        // Never an empty text: a truncation without a write is committed at RELEASE, which
        // the kernel sends after close(2) returned (README), so the step could not be checked
        // at once.
        if newline || t.text.is_empty() {
            t.text.push('\n');
        }
        t
    })
}

fn op() -> impl Strategy<Value = Op> {
    let sel = || 0usize..64;
    prop_oneof![
        4 => (sel(), sel(), text(), any::<bool>())
            .prop_map(|(dir, key, text, pad)| Op::Write { dir, key, text, pad }),
        1 => (sel(), sel(), text()).prop_map(|(dir, key, text)| Op::Recreate { dir, key, text }),
        1 => (sel(), sel()).prop_map(|(dir, key)| Op::Mkdir { dir, key }),
        2 => (sel(), sel(), any::<bool>()).prop_map(|(dir, key, pad)| Op::Unlink { dir, key, pad }),
        1 => (sel(), sel()).prop_map(|(dir, key)| Op::Rmdir { dir, key }),
        1 => (sel(), sel()).prop_map(|(dir, key)| Op::RmR { dir, key }),
        3 => (sel(), sel(), sel(), sel(), any::<bool>()).prop_map(
            |(dir, key, to_dir, to_key, pad)| Op::Rename { dir, key, to_dir, to_key, pad }
        ),
        1 => (sel(), vec(sel(), 1..4)).prop_map(|(dir, picks)| Op::RmSeveral { dir, picks }),
    ]
}

/// The path a (dir, key) selection names in the model.
fn target(model: &Value, dir: usize, key: usize) -> Vec<Seg> {
    let ds = dirs(model);
    let mut p = ds[dir % ds.len()].clone();
    match get(model, &p).unwrap() {
        Value::Object(_) => p.push(Seg::Key(KEYS[key % KEYS.len()].to_owned())),
        Value::Array(a) => p.push(Seg::Idx(key % (a.len() + 2))),
        _ => unreachable!("dirs() lists collections"),
    }
    p
}

/// Whether the name at `path` is past the end of a vector plus one (never creatable).
fn past_append(model: &Value, path: &[Seg]) -> bool {
    let (last, parent) = path.split_last().unwrap();
    matches!((get(model, parent), last), (Some(Value::Array(a)), Seg::Idx(i)) if *i > a.len())
}

/// One step as planned on the model: the command for the server, the errno expected (0: it
/// succeeds), and the commits it makes.
struct Step {
    cmd: Value,
    errno: i32,
    commits: usize,
}

/// Applies `op` to the model and says what the mount must do.
fn plan(model: &mut Value, op: &Op) -> Step {
    let before = model.clone();
    let step = |cmd: Value, errno: i32| Step {
        cmd,
        errno,
        commits: 0,
    };
    let mut s = match op {
        Op::Write {
            dir,
            key,
            text,
            pad,
        } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "write", "path": mount_path(&p, *pad), "text": text.text});
            match get(model, &p) {
                _ if past_append(model, &p) => step(cmd, EINVAL),
                Some(Value::Object(_) | Value::Array(_)) => step(cmd, EISDIR),
                _ => {
                    set(model, &p, text.value.clone());
                    step(cmd, 0)
                }
            }
        }
        Op::Recreate { dir, key, text } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "recreate", "path": mount_path(&p, true), "text": text.text});
            match get(model, &p) {
                None => step(cmd, ENOENT),
                Some(Value::Object(_) | Value::Array(_)) => step(cmd, EISDIR),
                // An unlink then an exclusive create, as `mv` from another filesystem does: one
                // save, one commit (none if the value is the same).
                Some(_) => {
                    set(model, &p, text.value.clone());
                    step(cmd, 0)
                }
            }
        }
        Op::Mkdir { dir, key } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "mkdir", "path": mount_path(&p, false)});
            match get(model, &p) {
                Some(_) => step(cmd, EEXIST),
                None if past_append(model, &p) => step(cmd, EINVAL),
                None => {
                    set(model, &p, json!({}));
                    step(cmd, 0)
                }
            }
        }
        Op::Unlink { dir, key, pad } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "unlink", "path": mount_path(&p, *pad)});
            match get(model, &p) {
                None => step(cmd, ENOENT),
                Some(Value::Object(_) | Value::Array(_)) => step(cmd, EISDIR),
                Some(_) => {
                    remove(model, &p);
                    step(cmd, 0)
                }
            }
        }
        Op::Rmdir { dir, key } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "rmdir", "path": mount_path(&p, false)});
            match get(model, &p) {
                None => step(cmd, ENOENT),
                Some(Value::Object(m)) if !m.is_empty() => step(cmd, ENOTEMPTY),
                Some(Value::Array(a)) if !a.is_empty() => step(cmd, ENOTEMPTY),
                Some(Value::Object(_) | Value::Array(_)) => {
                    remove(model, &p);
                    step(cmd, 0)
                }
                Some(_) => step(cmd, ENOTDIR),
            }
        }
        Op::RmR { dir, key } => {
            let p = target(model, *dir, *key);
            let cmd = json!({"op": "rmr", "path": mount_path(&p, false)});
            match get(model, &p) {
                None => step(cmd, ENOENT),
                Some(_) => {
                    let gone = remove(model, &p);
                    Step {
                        cmd,
                        errno: 0,
                        commits: nodes(&gone),
                    }
                }
            }
        }
        Op::Rename {
            dir,
            key,
            to_dir,
            to_key,
            pad,
        } => {
            let from = target(model, *dir, *key);
            let to = target(model, *to_dir, *to_key);
            let cmd = json!({
                "op": "rename",
                "from": mount_path(&from, *pad),
                "to": mount_path(&to, !*pad),
            });
            let src = get(model, &from).cloned();
            let dst = get(model, &to).cloned();
            let is_dir = |v: &Value| v.is_object() || v.is_array();
            match (src, dst) {
                (None, _) => step(cmd, ENOENT),
                _ if from == to => step(cmd, 0),
                // The kernel refuses these before valfs sees them.
                _ if within(&to, &from) => step(cmd, EINVAL),
                _ if within(&from, &to) => step(cmd, ENOTEMPTY),
                (Some(s), Some(d)) if is_dir(&s) && !is_dir(&d) => step(cmd, ENOTDIR),
                (Some(s), Some(d)) if !is_dir(&s) && is_dir(&d) => step(cmd, EISDIR),
                (Some(_), Some(d)) if nodes(&d) > 1 => step(cmd, ENOTEMPTY),
                (Some(_), None) if past_append(model, &to) => step(cmd, EINVAL),
                (Some(s), _) => {
                    // Replace (or append) at the target, then close the source's place.
                    set(model, &to, s);
                    remove(model, &from);
                    step(cmd, 0)
                }
            }
        }
        Op::RmSeveral { dir, picks } => {
            let ds = dirs(model);
            let d = ds[dir % ds.len()].clone();
            let mut chosen: Vec<Seg> = match get(model, &d).unwrap() {
                Value::Array(a) if a.is_empty() => vec![],
                Value::Array(a) => picks.iter().map(|p| Seg::Idx(p % a.len())).collect(),
                Value::Object(m) => picks
                    .iter()
                    .map(|p| KEYS[p % KEYS.len()].to_owned())
                    .filter(|k| m.contains_key(k))
                    .map(Seg::Key)
                    .collect(),
                _ => unreachable!(),
            };
            chosen.dedup();
            let mut uniq: Vec<Seg> = Vec::new();
            for c in chosen {
                if !uniq.contains(&c) {
                    uniq.push(c);
                }
            }
            // Names as listed: indices padded to the vector's width.
            let names: Vec<String> = match get(model, &d).unwrap() {
                Value::Array(a) => {
                    let w = a.len().saturating_sub(1).to_string().len();
                    uniq.iter()
                        .map(|s| match s {
                            Seg::Idx(i) => format!("{i:0w$}"),
                            Seg::Key(k) => k.clone(),
                        })
                        .collect()
                }
                _ => uniq
                    .iter()
                    .map(|s| match s {
                        Seg::Key(k) => k.clone(),
                        Seg::Idx(i) => i.to_string(),
                    })
                    .collect(),
            };
            let cmd = json!({"op": "rmmany", "dir": mount_path(&d, false), "names": names});
            // Remove the highest indices first so the others keep their place.
            let mut order = uniq.clone();
            order.sort_by_key(|s| match s {
                Seg::Idx(i) => std::cmp::Reverse(*i),
                Seg::Key(_) => std::cmp::Reverse(0),
            });
            let mut commits = 0;
            for s in order {
                let mut p = d.clone();
                p.push(s);
                commits += nodes(&remove(model, &p));
            }
            Step {
                cmd,
                errno: 0,
                commits,
            }
        }
    };
    if s.errno == 0 && s.commits == 0 && *model != before {
        s.commits = 1;
    }
    s
}

// ----- checking -----

/// Whether a walk of the mount shows exactly `model`.
fn agrees(walk: &Value, model: &Value, at: &str) -> Result<(), String> {
    let t = walk["t"].as_str().unwrap_or("?");
    if t != type_name(model) {
        return Err(format!("{at}: type {t}, model {model}"));
    }
    match model {
        Value::Object(_) | Value::Array(_) => {
            let Some(entries) = walk["e"].as_array() else {
                return Err(format!("{at}: a file, model {model}"));
            };
            let want: Vec<(String, &Value)> = match model {
                Value::Object(m) => {
                    let mut v: Vec<(String, &Value)> =
                        m.iter().map(|(k, c)| (k.clone(), c)).collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                }
                Value::Array(a) => {
                    let w = a.len().saturating_sub(1).to_string().len();
                    a.iter()
                        .enumerate()
                        .map(|(i, c)| (format!("{i:0w$}"), c))
                        .collect()
                }
                _ => unreachable!(),
            };
            let names: Vec<&str> = entries.iter().map(|e| e[0].as_str().unwrap()).collect();
            let want_names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
            if names != want_names {
                return Err(format!("{at}: lists {names:?}, model {model}"));
            }
            for (e, (n, c)) in entries.iter().zip(&want) {
                agrees(&e[1], c, &format!("{at}/{n}"))?;
            }
            Ok(())
        }
        scalar => {
            let want = format!("{scalar}\n");
            let got = walk["x"].as_str().unwrap_or("<a folder>");
            if got != want {
                return Err(format!("{at}: holds {got:?}, model {want:?}"));
            }
            if walk["size"].as_u64() != Some(want.len() as u64) {
                return Err(format!("{at}: size {}, text {want:?}", walk["size"]));
            }
            Ok(())
        }
    }
}

/// A version seen during a case: its commit, and what its folder showed when first walked.
struct Seen {
    commit: String,
    walk: Value,
}

fn check_history(server: &mut Server, seen: &[Seen]) -> Result<(), String> {
    for s in seen {
        let now = server.walk(&format!(".history/{}", s.commit))?;
        if now != s.walk {
            return Err(format!(
                ".history/{} changed:\nwas {}\nnow {}",
                s.commit, s.walk, now
            ));
        }
    }
    Ok(())
}

/// Runs one case; the error says which step disagreed and how.
fn run_case(doc: &Value, ops: &[Op]) -> Result<(), String> {
    let m = Mount::new(&doc.to_string());
    let mut server = Server::start(&m);
    let mut model = doc.clone();
    let mut commits = m.commits();
    let mut seen = vec![Seen {
        commit: m.head(),
        walk: server.walk(&format!(".history/{}", m.head()))?,
    }];
    agrees(&seen[0].walk, &model, ".history/HEAD")?;
    for (n, op) in ops.iter().enumerate() {
        let before = model.clone();
        let step = plan(&mut model, op);
        let ctx = |msg: String| {
            format!(
                "step {n}: {op:?}\n  command {}\n  model before {before}\n  model after {model}\n  {msg}\n  log:\n{}",
                step.cmd,
                m.log_tail()
            )
        };
        let got = match server.call(&step.cmd) {
            Ok(Value::String(s)) => return Err(ctx(s)),
            Ok(_) => 0,
            Err(e) => e,
        };
        if got != step.errno {
            return Err(ctx(format!("errno {got}, model {}", step.errno)));
        }
        let live = server.walk(".").map_err(ctx)?;
        agrees(&live, &model, "mount").map_err(ctx)?;
        let head = m.head_value();
        if head != model {
            return Err(ctx(format!("valfs export: {head}")));
        }
        let now = m.commits();
        if now != commits + step.commits {
            return Err(ctx(format!(
                "{} commits, model {}",
                now as i64 - commits as i64,
                step.commits
            )));
        }
        commits = now;
        if step.commits > 0 {
            let commit = m.head();
            let walk = server.walk(&format!(".history/{commit}")).map_err(ctx)?;
            agrees(&walk, &model, &format!(".history/{commit}")).map_err(ctx)?;
            seen.push(Seen { commit, walk });
        }
        if n % 10 == 9 {
            check_history(&mut server, &seen).map_err(ctx)?;
        }
    }
    check_history(&mut server, &seen)?;
    drop(server);
    m.fsck();
    let log = m.log();
    if log.contains("panicked") {
        return Err(format!("the daemon panicked:\n{log}"));
    }
    Ok(())
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_operations_agree_with_a_model() {
    let cases = env_number("VALFS_MODEL_CASES", 12);
    let max_ops = env_number("VALFS_MODEL_OPS", 48).max(1) as usize;
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: env_number("VALFS_MODEL_SHRINK", 64),
        failure_persistence: None,
        ..Config::default()
    });
    let ran = std::cell::Cell::new((0usize, 0usize));
    let result = runner.run(&(doc(), vec(op(), 1..=max_ops)), |(doc, ops)| {
        let (c, o) = ran.get();
        ran.set((c + 1, o + ops.len()));
        run_case(&doc, &ops).map_err(TestCaseError::fail)
    });
    let (c, o) = ran.get();
    eprintln!("model: {c} cases, {o} operations (shrinking included)");
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ----- regressions the model found -----

/// The kernel cached `b/00` as the file created there; the save made it a folder and
/// invalidated only the canonical name `b/0`, so `b/00` stayed a dead file (ENOENT, ENOTDIR).
#[test]
fn a_collection_written_under_a_padded_index_is_a_folder_there() {
    let m = Mount::new(r#"{"b": []}"#);
    m.sh_ok(r#"ls -R > /dev/null && printf '{"a":[]}' > b/00 && ls -R > /dev/null"#);
    m.sh_ok("test -d b/00 && echo '[[1]]' > b/00/a/00");
    assert_eq!(m.head_value(), json!({"b": [{"a": [[[1]]]}]}));
}

/// After `rm a/00` and a listing, each later name means the next element: the kernel must not
/// keep `a/01` as the file it was (ENOTDIR for `a/01/c`) nor `a/03` as the folder it was.
#[test]
fn names_in_a_vector_follow_the_shift_after_a_listing() {
    let m = Mount::new(r#"{"a": [1, 5, {"c": 2}, []]}"#);
    m.sh_ok(
        "find . -type f -exec cat {} + > /dev/null && ls -d a/03 && rm a/00 && ls -R > /dev/null",
    );
    assert_eq!(m.cat("a/01/c"), "2\n");
    m.sh_ok("test -f a/00 && test -d a/01 && test -d a/02 && ! test -e a/03");
    let (st, _, err) = m.sh("mv a/00 a/01/d");
    assert_eq!(st, 0, "{err}");
    assert_eq!(m.head_value(), json!({"a": [{"c": 2, "d": 5}, []]}));
}

/// `mv b a/03`: the kernel moved its entry for `b` to `a/03` as typed; once `a/3` is removed
/// and the vector listed, `a/03` must not stay the file that was moved there.
#[test]
fn a_padded_rename_target_in_a_vector_follows_the_shift() {
    let m = Mount::new(r#"{"a": [0, 1, 2], "b": 5}"#);
    m.sh_ok("mv b a/03 && mkdir a/4 && rm a/3 && ls a > /dev/null && ls a/03 > /dev/null");
    m.sh_ok("test -d a/03 && mkdir a/03/d");
    assert_eq!(m.head_value(), json!({"a": [0, 1, 2, {"d": {}}]}));
}
