//! Crash consistency: a write storm from several processes, the daemon killed with SIGKILL at a
//! random moment, then a remount. After every round: `git fsck --strict` is clean (dangling
//! objects allowed), every save that was acknowledged (its `close`, `rename`, `unlink`, `mkdir`
//! or `rmdir` returned 0) is in the history in order, the head holds a state the writers could
//! have produced, and the mount works again without repair.
//!
//! Each writer owns one key of the root (`w0`, `w1`, ...) and writes increasing counters, so
//! its subtree after each of its operations is known exactly: replaying its log of
//! acknowledged operations gives states S0, S1, ..., Sn, plus S(n+1) when one operation was
//! under way at the kill. The head must show Sn or S(n+1) for every writer, and the branch's
//! first-parent history, read for one writer's subtree with repeats collapsed, must be exactly
//! S0..Sn (or S0..S(n+1)): nothing acknowledged is missing, nothing is reordered or invented.
//!
//! `VALFS_CRASH_ROUNDS` sets the number of rounds (CI: 4; `scripts/crash-test` runs 50) and
//! `VALFS_CRASH_SEED` replays a run (the seed is printed, and named in every failure).

use crate::mount::harness::Mount;
use serde_json::{Value as J, json};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const WRITERS: usize = 4;

/// One writer: random operations on its own subtree, each logged before (`try`) and after
/// it was acknowledged (`ok`); the first error is logged (`err ERRNO`) and ends the writer.
const WRITER: &str = r#"
import errno, json, os, random, sys, time
d, logp, seed, seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
state = json.loads(sys.argv[5])
rnd = random.Random(seed)
log = open(logp, "w", buffering=1)
deadline = time.time() + 60

def p(*names):
    return os.path.join(d, *names)

def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)

def choose():
    global seq
    seq += 1
    keys = sorted(k for k in state if k.startswith("k"))
    dirs = sorted(k for k in state if k.startswith("d"))
    r = rnd.random()
    j = rnd.randrange(4)
    if r < 0.35:
        return ["save", "k%d" % j, seq]
    if r < 0.50:
        return ["asave", "k%d" % j, seq]
    if r < 0.60 and keys:
        a, b = rnd.choice(keys), "k%d" % j
        if a != b:
            return ["mv", a, b]
    if r < 0.68 and keys:
        return ["rm", rnd.choice(keys)]
    if r < 0.74 and "d%d" % j not in state:
        return ["mkdir", "d%d" % j]
    if r < 0.82 and dirs:
        return ["dsave", rnd.choice(dirs), seq]
    if r < 0.86 and dirs:
        a, b = rnd.choice(dirs), "d%d" % j
        if b not in state:
            return ["mvdir", a, b]
    if r < 0.90 and dirs:
        a = rnd.choice(dirs)
        return ["rmx", a] if state[a] else ["rmdir", a]
    return ["append", "v", seq]

def run(op):
    kind = op[0]
    if kind == "save":
        write(p(op[1]), "%d\n" % op[2]); state[op[1]] = op[2]
    elif kind == "asave":
        write(p("." + op[1] + ".a1B2c3"), "%d\n" % op[2])
        os.rename(p("." + op[1] + ".a1B2c3"), p(op[1])); state[op[1]] = op[2]
    elif kind in ("mv", "mvdir"):
        os.rename(p(op[1]), p(op[2])); state[op[2]] = state.pop(op[1])
    elif kind == "rm":
        os.unlink(p(op[1])); del state[op[1]]
    elif kind == "mkdir":
        os.mkdir(p(op[1])); state[op[1]] = {}
    elif kind == "dsave":
        write(p(op[1], "x"), "%d\n" % op[2]); state[op[1]]["x"] = op[2]
    elif kind == "rmx":
        os.unlink(p(op[1], "x")); del state[op[1]]["x"]
    elif kind == "rmdir":
        os.rmdir(p(op[1])); del state[op[1]]
    elif kind == "append":
        write(p("v", str(len(state["v"]))), "%d\n" % op[2]); state["v"].append(op[2])

while time.time() < deadline:
    op = choose()
    log.write("try " + json.dumps(op) + "\n")
    try:
        run(op)
    except OSError as e:
        log.write("err %d %s\n" % (e.errno or 0, e))
        sys.exit(0)
    log.write("ok\n")
log.write("timeout\n")
"#;

/// A small deterministic generator (xorshift64*): the test needs only a few random choices,
/// and a seed that replays them.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Applies one logged operation to a writer's subtree (the checker's own model, independent
/// of the writer's).
fn apply(state: &mut J, op: &J) {
    let kind = op[0].as_str().unwrap();
    let key = |i: usize| op[i].as_str().unwrap().to_owned();
    let m = state.as_object_mut().unwrap();
    match kind {
        "save" | "asave" => {
            m.insert(key(1), op[2].clone());
        }
        "mv" | "mvdir" => {
            let v = m.remove(&key(1)).expect("mv of a missing key");
            m.insert(key(2), v);
        }
        "rm" | "rmdir" => {
            m.remove(&key(1)).expect("rm of a missing key");
        }
        "mkdir" => {
            m.insert(key(1), json!({}));
        }
        "dsave" => {
            m[&key(1)]
                .as_object_mut()
                .unwrap()
                .insert("x".into(), op[2].clone());
        }
        "rmx" => {
            m[&key(1)].as_object_mut().unwrap().remove("x").unwrap();
        }
        "append" => m["v"].as_array_mut().unwrap().push(op[2].clone()),
        other => panic!("unknown operation {other}"),
    }
}

/// What one writer's log says: the operations acknowledged, the one under way at the kill
/// (if any), and how it ended.
struct WriterLog {
    acked: Vec<J>,
    in_flight: Option<J>,
    end: String,
}

fn read_log(path: &Path) -> WriterLog {
    let text = std::fs::read_to_string(path).unwrap();
    let mut acked = Vec::new();
    let mut tried: Option<J> = None;
    let mut end = String::new();
    for line in text.lines() {
        if let Some(op) = line.strip_prefix("try ") {
            assert!(tried.is_none(), "{}: two tries in a row", path.display());
            tried = Some(serde_json::from_str(op).unwrap());
        } else if line == "ok" {
            acked.push(tried.take().expect("ok without try"));
        } else {
            end = line.to_owned();
        }
    }
    WriterLog {
        acked,
        in_flight: tried,
        end,
    }
}

/// The value of the branch at a commit, as JSON.
fn json_at(store: &valfs::store::Store, commit: git2::Oid) -> J {
    let v = crate::common::value_at(store, commit);
    serde_json::from_str(&valfs::codec::json::print(&v).unwrap()).unwrap()
}

/// The first-parent chain from `to` back to `from` (both included), oldest first.
fn chain(store: &valfs::store::Store, from: git2::Oid, to: git2::Oid) -> Vec<git2::Oid> {
    let mut out = vec![to];
    let mut cur = to;
    while cur != from {
        let c = store.repo().find_commit(cur).unwrap();
        assert_eq!(c.parent_count(), 1, "commit {cur} has no single parent");
        cur = c.parent_id(0).unwrap();
        out.push(cur);
    }
    out.reverse();
    out
}

/// `git fsck --strict`: clean but for dangling objects (what a killed commit leaves).
fn fsck_clean(m: &Mount) -> Result<(), String> {
    let out = m
        .cmd("git")
        .arg("--git-dir")
        .arg(&m.repo)
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("git fsck --strict: {}\n{text}", out.status))
    }
}

fn wait_writer(mut child: Child, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match child.try_wait().unwrap() {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(format!("a writer exited with {st}")),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("a writer hung for {limit:?} after the kill"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Runs `rounds` rounds; returns the total of acknowledged operations.
fn storm(rounds: usize, seed: u64) -> usize {
    let mut rng = Rng(seed | 1);
    let initial: serde_json::Map<String, J> = (0..WRITERS)
        .map(|w| (format!("w{w}"), json!({"v": []})))
        .collect();
    let mut m = Mount::new(&J::Object(initial).to_string());
    let store = valfs::store::Store::open(&m.repo, "main").unwrap();
    let mut total = 0;
    let mut zombies = 0;
    for round in 0..rounds {
        let ctx = format!("seed {seed}, round {round}");
        let start_head = store.head_commit().unwrap();
        let start = json_at(&store, start_head);

        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let log = m.out.join(format!("w{w}.log"));
            let _ = std::fs::remove_file(&log);
            let child = m
                .cmd("python3")
                .arg("-c")
                .arg(WRITER)
                .arg(m.mnt.join(format!("w{w}")))
                .arg(&log)
                .arg(rng.next().to_string())
                .arg(((round + 1) * 1_000_000).to_string())
                .arg(start[format!("w{w}")].to_string())
                .spawn()
                .unwrap();
            writers.push(child);
        }
        // Kill at a random moment once every writer is under way.
        let logs: Vec<_> = (0..WRITERS)
            .map(|w| m.out.join(format!("w{w}.log")))
            .collect();
        let ready = m.wait_for(Duration::from_secs(20), || {
            logs.iter()
                .all(|l| std::fs::read_to_string(l).is_ok_and(|t| t.contains("ok")))
        });
        assert!(ready, "{ctx}: the writers did not get going");
        std::thread::sleep(Duration::from_millis(rng.below(1000)));
        let st = Command::new("kill")
            .args(["-KILL", &m.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        // The dead mount is cleared by valfs umount, whatever the daemon left behind: a stale
        // mount, or (killed while a thread waited in the kernel for a directory lock held by a
        // writer waiting on the daemon) a zombie holding the connection open.
        std::thread::sleep(Duration::from_millis(100));
        // A killed daemon whose threads are gone is an ordinary zombie until reaped; one that
        // still has a thread (stuck in the kernel) holds the FUSE connection open.
        let tasks = std::fs::read_dir(format!("/proc/{}/task", m.pid())).map_or(0, |d| d.count());
        if tasks > 1 {
            zombies += 1;
        }
        let (st, out, err) = m.valfs(&["umount", m.mnt.to_str().unwrap()]);
        assert_eq!(st, 0, "{ctx}: valfs umount of the dead mount: {out}{err}");
        assert!(!m.is_mounted(), "{ctx}: still mounted");
        assert!(
            m.wait_child(Duration::from_secs(10)).is_some(),
            "{ctx}: the killed daemon did not go away"
        );
        for child in writers {
            wait_writer(child, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }

        fsck_clean(&m).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let head = store.head_commit().unwrap();
        let history: Vec<J> = chain(&store, start_head, head)
            .into_iter()
            .map(|c| json_at(&store, c))
            .collect();
        let now = history.last().unwrap().clone();

        for w in 0..WRITERS {
            let key = format!("w{w}");
            let log = read_log(&m.out.join(format!("{key}.log")));
            // The writers end only by the kill: ENOTCONN or ECONNABORTED. Any other error was
            // returned by a live daemon, which is a bug.
            assert!(
                log.end.starts_with("err 107 ") || log.end.starts_with("err 103 "),
                "{ctx}: writer {w} ended with {:?} after {} operations (in flight: {:?}; last \
                 acknowledged: {:?})\nlog tail:\n{}",
                log.end,
                log.acked.len(),
                log.in_flight,
                &log.acked[log.acked.len().saturating_sub(6)..],
                m.log_tail()
            );
            total += log.acked.len();
            let mut states = vec![start[&key].clone()];
            for op in &log.acked {
                let mut s = states.last().unwrap().clone();
                apply(&mut s, op);
                states.push(s);
            }
            let mut maybe = states.clone();
            if let Some(op) = &log.in_flight {
                let mut s = states.last().unwrap().clone();
                apply(&mut s, op);
                maybe.push(s);
            }
            let mut seen: Vec<J> = Vec::new();
            for v in &history {
                if seen.last() != Some(&v[&key]) {
                    seen.push(v[&key].clone());
                }
            }
            assert!(
                seen == states || seen == maybe,
                "{ctx}: writer {w}: the history of {key} is not its acknowledged states\n\
                 acknowledged: {}\nin flight: {:?}\nhistory ({} states): {}\nexpected: {}",
                log.acked.len(),
                log.in_flight,
                seen.len(),
                J::Array(seen.clone()),
                J::Array(maybe.clone()),
            );
        }
        let mut keys: Vec<String> = now.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let mut want: Vec<String> = (0..WRITERS).map(|w| format!("w{w}")).collect();
        if round > 0 {
            want.push("round".into());
        }
        want.sort();
        assert_eq!(keys, want, "{ctx}: the head's keys");

        // The mount comes back without repair: it shows the head and takes a save.
        m.spawn();
        let stale_locks = m.log().matches("removed the stale lock").count();
        eprintln!(
            "round {round}: {} commits, {total} acknowledged so far; stale ref locks cleared: \
             {stale_locks}, daemons stuck holding the mount: {zombies}",
            history.len() - 1,
        );
        for w in 0..WRITERS {
            let listed = m.ls(&format!("w{w}"));
            let mut want: Vec<String> = now[format!("w{w}")]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            want.sort();
            assert_eq!(listed, want, "{ctx}: listing w{w} after the remount");
        }
        let before = m.commits();
        m.sh_ok(&format!("echo {round} > round"));
        assert_eq!(
            (m.commits(), m.head_value()["round"].clone()),
            (before + 1, json!(round)),
            "{ctx}: a save after the remount\nlog tail:\n{}",
            m.log_tail()
        );
    }
    let _ = m.unmount();
    fsck_clean(&m).unwrap();
    total
}

#[test]
fn sigkill_during_a_write_storm_loses_no_acknowledged_save() {
    let rounds = std::env::var("VALFS_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let seed = std::env::var("VALFS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: {rounds} rounds, VALFS_CRASH_SEED={seed}");
    let started = Instant::now();
    let acked = storm(rounds, seed);
    eprintln!(
        "crash test: {rounds} rounds passed, {acked} acknowledged operations checked, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(acked > 0, "no operation was acknowledged in any round");
}

#[test]
fn the_checker_model_replays_operations() {
    let mut s = json!({"v": []});
    for op in [
        json!(["save", "k0", 1]),
        json!(["mv", "k0", "k1"]),
        json!(["mkdir", "d2"]),
        json!(["dsave", "d2", 3]),
        json!(["mvdir", "d2", "d0"]),
        json!(["append", "v", 4]),
        json!(["rmx", "d0"]),
    ] {
        apply(&mut s, &op);
    }
    assert_eq!(s, json!({"v": [4], "k1": 1, "d0": {}}));
}
