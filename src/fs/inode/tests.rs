use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

#[test]
fn insert_find_rename_detach() {
    let mut t = Table::default();
    let a = t.insert(ROOT, "a", Place::Live, false);
    assert_eq!(t.find(ROOT, "a"), Some(a));
    let b = t.insert(ROOT, "b", Place::Live, false);
    t.rename(a, ROOT, "b");
    assert_eq!(t.find(ROOT, "b"), Some(a));
    assert_eq!(t.find(ROOT, "a"), None);
    assert_eq!(t.get(b).map(|i| i.parent), Some(0));
    t.remove(a);
    assert_eq!(t.find(ROOT, "b"), None);
    assert_eq!(t.len(), 1);
}

#[test]
fn a_directory_counts_the_inodes_named_in_it() {
    let mut t = Table::default();
    let d = t.insert(ROOT, "d", Place::Live, true);
    let e = t.insert(ROOT, "e", Place::Live, true);
    let a = t.insert(d, "a", Place::Live, false);
    let b = t.insert(d, "b", Place::Live, false);
    let children = |t: &Table, i| t.get(i).map(|i| i.children);
    assert_eq!(children(&t, d), Some(2));
    t.rename(a, e, "a");
    assert_eq!((children(&t, d), children(&t, e)), (Some(1), Some(1)));
    t.insert(e, "a", Place::Live, false);
    assert_eq!(children(&t, e), Some(1));
    t.detach(d, "b");
    assert_eq!(children(&t, d), Some(0));
    assert_eq!(t.remove(b), None);
    let c = t.insert(d, "c", Place::Live, false);
    assert_eq!(t.remove(c), Some(d));
    assert_eq!(children(&t, d), Some(0));
}

#[test]
fn a_removed_inodes_place_goes_to_the_next_new_one_and_starts_afresh() {
    let mut t = Table::default();
    let d = t.insert(ROOT, "d", Place::Live, true);
    let a = t.insert(d, "a", Place::Live, false);
    let place = t.place(a);
    if let Some(n) = t.nlookup_mut(a) {
        *n = 3;
    }
    t.set_scratch(a, Some(ScratchFile::default()));
    if let Some(m) = t.meta_mut(a) {
        m.mode = Some(0o600);
    }
    assert_eq!(t.remove(a), Some(d));
    assert_eq!(t.get(a).map(|i| i.name), None);
    let b = t.insert(ROOT, "b", Place::Live, true);
    assert_eq!(t.place(b), place);
    assert_ne!(b, a);
    let i = t.get(b).expect("inserted");
    assert_eq!(
        (i.parent, i.name, i.is_dir, i.nlookup),
        (ROOT, "b", true, 0)
    );
    assert!(i.scratch.is_none() && i.meta.mode.is_none());
    assert_eq!((t.find(d, "a"), t.find(ROOT, "b")), (None, Some(b)));
    assert_eq!(t.get(d).map(|i| i.children), Some(0));
    let c = t.insert(ROOT, "c", Place::Live, false);
    assert_eq!(t.place(c), t.place(b).map(|p| p + 1));
}

#[test]
fn the_lowest_free_place_is_taken_first() {
    let mut t = Table::default();
    let inos: Vec<Ino> = (0..3 * CHUNK)
        .map(|i| t.insert(ROOT, &i.to_string(), Place::Live, false))
        .collect();
    assert_eq!(t.place(inos[0]), Some(0));
    let (low, high) = (t.place(inos[5]), t.place(inos[2 * CHUNK + 7]));
    t.remove(inos[2 * CHUNK + 7]);
    t.remove(inos[5]);
    let x = t.insert(ROOT, "x", Place::Live, false);
    assert_eq!(t.place(x), low);
    let y = t.insert(ROOT, "y", Place::Live, false);
    assert_eq!(t.place(y), high);
    let z = t.insert(ROOT, "z", Place::Live, false);
    assert_eq!(t.place(z), Some(3 * CHUNK));
}

#[test]
fn shrink_gives_back_the_chunks_no_inode_is_left_in() {
    let mut t = Table::default();
    let inos: Vec<Ino> = (0..4 * CHUNK)
        .map(|i| t.insert(ROOT, &format!("n{i}"), Place::Live, false))
        .collect();
    let kept = [inos[1], inos[2 * CHUNK + 1]];
    for &ino in inos.iter().filter(|i| !kept.contains(i)) {
        t.remove(ino);
    }
    t.shrink();
    assert_eq!(t.chunks.len(), 3);
    assert_eq!(t.chunks.iter().filter(|c| c.is_some()).count(), 2);
    assert_eq!(t.names.len(), 2);
    for (i, &ino) in inos.iter().enumerate().filter(|(_, i)| kept.contains(i)) {
        assert_eq!(t.find(ROOT, &format!("n{i}")), Some(ino));
        assert_eq!(t.get(ino).map(|i| i.name.to_owned()), Some(format!("n{i}")));
    }
    // The places in the chunks given back are handed out again, lowest chunk first.
    let places = |t: &Table, inos: &[Ino]| -> Vec<usize> {
        let mut p: Vec<usize> = inos.iter().filter_map(|&i| t.place(i)).collect();
        p.sort_unstable();
        p
    };
    let kept_places = places(&t, &kept);
    let again: Vec<Ino> = (0..3 * CHUNK)
        .map(|i| t.insert(ROOT, &format!("m{i}"), Place::Live, false))
        .collect();
    let chunk0: Vec<usize> = (0..CHUNK).filter(|&p| p != kept_places[0]).collect();
    assert_eq!(places(&t, &again[..CHUNK - 1]), chunk0);
    assert!(!again.contains(&kept[0]) && !again.contains(&kept[1]));
    assert_eq!(again.last().and_then(|&i| t.place(i)), Some(3 * CHUNK + 1));
    assert_eq!(t.len(), 3 * CHUNK + 2);
}

#[test]
fn a_name_is_kept_once_however_many_inodes_have_it() {
    let mut t = Table::default();
    for u in 0..1000 {
        let user = t.insert(ROOT, &format!("u{u}"), Place::Live, true);
        for key in ["name", "email", "0", "1"] {
            t.insert(user, key, Place::Live, false);
        }
    }
    assert_eq!(t.names.len(), 1004);
    assert_eq!(t.len(), 5000);
}

#[test]
fn names_no_inode_has_go_as_they_pile_up() {
    let mut t = Table::default();
    let d = t.insert(ROOT, "d", Place::Live, true);
    for i in 0..50_000 {
        let tmp = t.insert(d, &format!("tmp.{i}"), Place::Live, false);
        t.remove(tmp);
        assert!(t.names.len() <= 2 * t.len() + 4096 + 1);
    }
    assert_eq!(t.find(ROOT, "d"), Some(d));
    let kept = t.insert(d, "kept", Place::Live, false);
    t.shrink();
    assert_eq!(t.names.len(), 2);
    assert_eq!(
        (t.find(d, "kept"), t.find(ROOT, "d")),
        (Some(kept), Some(d))
    );
}

#[test]
fn rare_parts_are_made_on_demand_and_dropped_when_empty() {
    let mut t = Table::default();
    let oid = Oid::from_bytes(&[7; 20]).expect("20 bytes");
    let v = t.insert(FIRST_VIEW, "v", Place::Version(oid), true);
    let f = t.insert(ROOT, "f", Place::Live, false);
    assert_eq!(t.get(v).map(|i| i.place), Some(Place::Version(oid)));
    assert!(t.slot(f).is_some_and(|s| s.rare.is_none()));
    t.set_scratch(f, Some(ScratchFile { symlink: true }));
    assert_eq!(
        t.get(f).and_then(|i| i.scratch).map(|s| s.symlink),
        Some(true)
    );
    assert_eq!(t.live_inos(), Vec::<Ino>::new());
    t.set_scratch(f, None);
    assert!(t.slot(f).is_some_and(|s| s.rare.is_none()));
    assert_eq!(t.live_inos(), vec![f]);
    if let Some(m) = t.meta_mut(f) {
        m.xattrs.insert("user.a".into(), b"1".to_vec());
    }
    assert_eq!(t.get(f).map(|i| i.meta.xattrs.len()), Some(1));
}

/// The bytes the table holds on the heap (chunks, index, names, chunk list).
fn heap_size(t: &Table) -> usize {
    let chunk = CHUNK * std::mem::size_of::<Option<Slot>>();
    t.chunks.iter().flatten().count() * chunk
        + t.chunks.capacity() * std::mem::size_of::<Option<Chunk>>()
        + t.index.allocation_size()
        + t.numbers.allocation_size()
        + t.names.heap_size()
}

#[test]
fn an_inode_costs_well_under_80_bytes_all_told() {
    assert_eq!(std::mem::size_of::<Option<Slot>>(), 40);
    // The shape of `scripts/gen-doc`: records with keys, short vectors and nested maps.
    let mut t = Table::default();
    let users = t.insert(ROOT, "users", Place::Live, true);
    for u in 0..4000 {
        let user = t.insert(users, &u.to_string(), Place::Live, true);
        for key in ["id", "name", "email", "age", "score", "active", "note"] {
            t.insert(user, key, Place::Live, false);
        }
        for (dir, n) in [("tags", 3), ("address", 2), ("history", 3)] {
            let d = t.insert(user, dir, Place::Live, true);
            for i in 0..n {
                t.insert(d, &i.to_string(), Place::Live, false);
            }
        }
    }
    let per_inode = heap_size(&t) / t.len();
    assert!(per_inode <= 64, "{per_inode} bytes per inode");
}

/// The table as it was before it was made compact: the reference the table must agree with.
#[derive(Default)]
struct Model {
    inodes: HashMap<Ino, (Ino, String, bool, u32)>,
    names: HashMap<(Ino, String), Ino>,
    next: Ino,
    generation: u64,
    renamed: bool,
}

impl Model {
    fn count_child(&mut self, parent: Ino, delta: i32) {
        if let Some(p) = self.inodes.get_mut(&parent) {
            p.3 = p.3.saturating_add_signed(delta);
        }
    }

    fn insert(&mut self, parent: Ino, name: &str, is_dir: bool) -> Ino {
        let ino = self.next.max(FIRST);
        self.next = ino + 1;
        self.detach(parent, name);
        self.inodes
            .insert(ino, (parent, name.to_owned(), is_dir, 0));
        self.names.insert((parent, name.to_owned()), ino);
        self.count_child(parent, 1);
        ino
    }

    fn detach(&mut self, parent: Ino, name: &str) -> Option<Ino> {
        let ino = self.names.remove(&(parent, name.to_owned()))?;
        self.count_child(parent, -1);
        self.generation += 1;
        self.renamed = true;
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.0 = 0;
        }
        Some(ino)
    }

    fn rename(&mut self, ino: Ino, parent: Ino, name: &str) {
        self.generation += 1;
        self.renamed = true;
        if let Some(i) = self.inodes.get(&ino) {
            let old = (i.0, i.1.clone());
            if self.names.get(&old) == Some(&ino) {
                self.names.remove(&old);
                self.count_child(old.0, -1);
            }
        }
        self.detach(parent, name);
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.0 = parent;
            i.1 = name.to_owned();
        }
        self.names.insert((parent, name.to_owned()), ino);
        self.count_child(parent, 1);
    }

    fn remove(&mut self, ino: Ino) -> Option<Ino> {
        let i = self.inodes.remove(&ino)?;
        let key = (i.0, i.1);
        if self.names.get(&key) == Some(&ino) {
            self.names.remove(&key);
            self.count_child(key.0, -1);
            return Some(key.0);
        }
        None
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, usize, bool),
    Detach(usize, usize),
    Rename(usize, usize, usize),
    Remove(usize),
    Shrink,
}

const NAMES: [&str; 6] = ["a", "b", "0", "1", "email", "a~"];

fn op() -> impl Strategy<Value = Op> {
    let (i, n) = (0..64usize, 0..NAMES.len());
    prop_oneof![
        4 => (i.clone(), n.clone(), any::<bool>()).prop_map(|(p, n, d)| Op::Insert(p, n, d)),
        1 => (i.clone(), n.clone()).prop_map(|(p, n)| Op::Detach(p, n)),
        2 => (i.clone(), i.clone(), n).prop_map(|(x, p, n)| Op::Rename(x, p, n)),
        2 => i.prop_map(Op::Remove),
        1 => Just(Op::Shrink),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random changes leave the table and the model agreeing on every name, parent, count and
    /// generation, the numbers aside (the table gives removed numbers again).
    #[test]
    fn the_table_behaves_as_the_map_based_one_did(ops in proptest::collection::vec(op(), 1..150)) {
        let (mut t, mut m) = (Table::default(), Model::default());
        // Model numbers to table numbers.
        let mut num: HashMap<Ino, Ino> = HashMap::from([(0, 0), (ROOT, ROOT), (FIRST_VIEW, FIRST_VIEW)]);
        for op in ops {
            let mut live: Vec<Ino> = m.inodes.keys().copied().collect();
            live.sort_unstable();
            let mut dirs = vec![ROOT, FIRST_VIEW];
            dirs.extend(&live);
            let dir = |i: usize| dirs[i % dirs.len()];
            match op {
                Op::Insert(p, n, d) => {
                    let p = dir(p);
                    let ino = m.insert(p, NAMES[n], d);
                    num.insert(ino, t.insert(num[&p], NAMES[n], Place::Live, d));
                }
                Op::Detach(p, n) => {
                    let p = dir(p);
                    prop_assert_eq!(m.detach(p, NAMES[n]).map(|i| num[&i]), t.detach(num[&p], NAMES[n]));
                }
                Op::Rename(x, p, n) if !live.is_empty() => {
                    let (x, p) = (live[x % live.len()], dir(p));
                    m.rename(x, p, NAMES[n]);
                    t.rename(num[&x], num[&p], NAMES[n]);
                }
                // As the state does: only an inode no other is named in goes.
                Op::Remove(x) if !live.is_empty() => {
                    let x = live[x % live.len()];
                    if m.inodes[&x].3 == 0 {
                        let parent = m.remove(x);
                        prop_assert_eq!(parent.map(|p| num[&p]), t.remove(num[&x]));
                        num.remove(&x);
                    }
                }
                Op::Shrink => t.shrink(),
                _ => {}
            }
            prop_assert_eq!(t.len(), m.inodes.len());
            prop_assert_eq!(t.generation(), m.generation);
            prop_assert_eq!(t.take_renamed(), std::mem::take(&mut m.renamed));
            for (ino, (parent, name, is_dir, children)) in &m.inodes {
                let i = t.get(num[ino]).expect("a live inode is in the table");
                prop_assert_eq!((i.parent, i.name, i.is_dir, i.children), (num[parent], name.as_str(), *is_dir, *children));
            }
            for &p in m.inodes.keys().chain(&[ROOT, FIRST_VIEW]) {
                for name in NAMES {
                    prop_assert_eq!(m.names.get(&(p, name.to_owned())).map(|i| num[i]), t.find(num[&p], name));
                }
                let mut want: Vec<(Ino, String)> = m.inodes.iter().filter(|(_, i)| i.0 == p).map(|(&n, i)| (num[&n], i.1.clone())).collect();
                let mut got = t.children(num[&p]);
                want.sort();
                got.sort();
                prop_assert_eq!(want, got);
            }
        }
    }
}

#[test]
fn an_entry_keeps_its_number_at_its_path_after_the_kernel_forgot_it() {
    let mut t = Table::default();
    let cfg = t.insert(ROOT, "cfg", Place::Live, true);
    let a = t.insert(cfg, "a", Place::Live, false);
    t.remove(a);
    // Another entry made meanwhile does not take it (the reproduction of nano's save).
    let swp = t.insert(cfg, ".new.swp", Place::Live, false);
    assert_ne!(swp, a);
    assert_eq!(t.insert(cfg, "a", Place::Live, false), a);
    assert_eq!(
        t.number_for(cfg, "b"),
        t.insert(cfg, "b", Place::Live, false)
    );
    // The same names elsewhere (a version under .history) get other numbers.
    let v = t.insert(FIRST_VIEW, "HEAD", Place::Live, true);
    let va = t.insert(v, "a", Place::Live, false);
    assert!(![cfg, a, swp].contains(&va) && va != v);
}

#[test]
fn a_renamed_entry_keeps_its_number_and_the_new_one_at_its_old_name_gets_another() {
    let mut t = Table::default();
    let d = t.insert(ROOT, "d", Place::Live, true);
    let a = t.insert(d, "a", Place::Live, false);
    // Vim's rename mode: `a` -> `a~`, a new `a`, `a~` removed.
    t.rename(a, d, "a~");
    assert_eq!(t.find(d, "a~"), Some(a));
    let new = t.insert(d, "a", Place::Live, false);
    assert_ne!(new, a);
    assert_eq!(t.number_for(d, "a"), new);
    t.detach(d, "a~");
    t.remove(a);
    // Forgotten and looked up again, each keeps the number it has at its path.
    t.remove(new);
    assert_eq!(t.insert(d, "a", Place::Live, false), new);
    let b = t.insert(d, "b", Place::Live, false);
    t.rename(b, d, "c");
    t.remove(b);
    assert_eq!(t.insert(d, "c", Place::Live, false), b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Numbers stay unique among the inodes the table holds, whatever happens.
    #[test]
    fn no_two_inodes_share_a_number(ops in proptest::collection::vec(op(), 1..150)) {
        let mut t = Table::default();
        let mut live: Vec<Ino> = Vec::new();
        for op in ops {
            let mut dirs = vec![ROOT, FIRST_VIEW];
            dirs.extend(&live);
            let dir = |i: usize| dirs[i % dirs.len()];
            match op {
                Op::Insert(p, n, d) => live.push(t.insert(dir(p), NAMES[n], Place::Live, d)),
                Op::Detach(p, n) => {
                    t.detach(dir(p), NAMES[n]);
                }
                Op::Rename(x, p, n) if !live.is_empty() => t.rename(live[x % live.len()], dir(p), NAMES[n]),
                Op::Remove(x) if !live.is_empty() => {
                    let x = live[x % live.len()];
                    if t.get(x).is_some_and(|i| i.children == 0) {
                        t.remove(x);
                        live.retain(|&i| i != x);
                    }
                }
                Op::Shrink => t.shrink(),
                _ => {}
            }
            let mut numbers = t.live_inos();
            let n = numbers.len();
            numbers.sort_unstable();
            numbers.dedup();
            prop_assert_eq!(numbers.len(), n);
            prop_assert!(numbers.iter().all(|&i| i > FIRST_VIEW));
        }
    }
}
