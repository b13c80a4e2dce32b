//! How a sequence changed (its splices against the base), and how two sides' splices combine.
//!
//! A splice replaces the base's elements `start..end` by `ins`. Each side's splices come from a
//! diff of the elements' node ids (the common prefix and suffix, then Myers' algorithm on what
//! is left), so an element edited in place is a splice that keeps the length, an insertion
//! has an empty range and a removal inserts nothing. Two sides' splices combine when their
//! base ranges do not overlap, as Noms merges lists (docs/FORMAT.md, "Merging").

use crate::store::layout::Node;
use std::collections::HashSet;
use std::ops::Range;

/// The base's elements `start..end` replaced by `ins`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Splice {
    pub start: usize,
    pub end: usize,
    pub ins: Vec<Node>,
}

impl Splice {
    fn is_insertion(&self) -> bool {
        self.start == self.end
    }

    /// An edit in place: as many elements come in as go out.
    fn keeps_length(&self) -> bool {
        self.end - self.start == self.ins.len()
    }
}

/// How far the diff looks for the fewest insertions and removals before it gives up (its
/// memory grows with the square of this): past it, a side that kept the length is taken as
/// edits in place, and any other as one splice over what changed.
const MAX_EDITS: usize = 256;

/// The splices that turn `base` into `new`, in order, none touching another.
pub(super) fn splices(base: &[Node], new: &[Node]) -> Vec<Splice> {
    let pre = base.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (b, n) = (&base[pre..], &new[pre..]);
    let suf = b
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (b, n) = (&b[..b.len() - suf], &n[..n.len() - suf]);
    if b.is_empty() && n.is_empty() {
        return Vec::new();
    }
    let found = if b.is_empty() || n.is_empty() {
        Some(Vec::new())
    } else {
        matches(b, n, MAX_EDITS)
    };
    let mut out = match found {
        Some(m) => from_matches(b, n, &m),
        None if b.len() == n.len() => in_place(b, n),
        None => vec![Splice {
            start: 0,
            end: b.len(),
            ins: n.to_vec(),
        }],
    };
    for s in &mut out {
        s.start += pre;
        s.end += pre;
    }
    out
}

/// The splices between matched elements (pairs of indices, increasing).
fn from_matches(b: &[Node], n: &[Node], matches: &[(usize, usize)]) -> Vec<Splice> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    for &(x, y) in matches.iter().chain([(b.len(), n.len())].iter()) {
        if x > i || y > j {
            out.push(Splice {
                start: i,
                end: x,
                ins: n[j..y].to_vec(),
            });
        }
        (i, j) = (x + 1, y + 1);
    }
    out
}

/// Runs of differing elements of two sequences of one length, as edits in place.
fn in_place(b: &[Node], n: &[Node]) -> Vec<Splice> {
    let mut out: Vec<Splice> = Vec::new();
    for i in (0..b.len()).filter(|&i| b[i] != n[i]) {
        match out.last_mut() {
            Some(s) if s.end == i => {
                s.end += 1;
                s.ins.push(n[i]);
            }
            _ => out.push(Splice {
                start: i,
                end: i + 1,
                ins: vec![n[i]],
            }),
        }
    }
    out
}

/// The matched elements of a shortest edit script from `a` to `b` (Myers' greedy algorithm,
/// keeping each round's furthest points to walk back), or `None` when it takes more than
/// `max` insertions and removals.
fn matches(a: &[Node], b: &[Node], max: usize) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let snake = |mut x: isize, k: isize| {
        while x < n && x - k < m && a[x as usize] == b[(x - k) as usize] {
            x += 1;
        }
        x
    };
    // rounds[d][k + d]: the furthest x reached on diagonal k (x - y) with d edits.
    let mut rounds: Vec<Vec<Option<isize>>> = vec![vec![Some(snake(0, 0))]];
    let done = |x: isize, k: isize| x == n && x - k == m;
    if done(rounds[0][0].unwrap_or(0), 0) {
        return Some(walk_back(&rounds, n, m));
    }
    for d in 1..=(max.min(a.len() + b.len()) as isize) {
        let prev = &rounds[(d - 1) as usize];
        let mut round = vec![None; (2 * d + 1) as usize];
        let mut k = -d;
        while k <= d {
            if let Some((x, _)) = step(prev, d, k, n, m) {
                let x = snake(x, k);
                round[(k + d) as usize] = Some(x);
                if done(x, k) {
                    rounds.push(round);
                    return Some(walk_back(&rounds, n, m));
                }
            }
            k += 2;
        }
        rounds.push(round);
    }
    None
}

/// Where round `d` starts on diagonal `k`, from the furthest points of round `d - 1`: down
/// from diagonal `k + 1` (an insertion, `true`) or right from `k - 1` (a removal), whichever
/// gets further inside the grid (down on a tie). `None` when neither is inside.
fn step(prev: &[Option<isize>], d: isize, k: isize, n: isize, m: isize) -> Option<(isize, bool)> {
    let at = |k: isize| {
        if k.abs() > d - 1 {
            return None;
        }
        prev[(k + d - 1) as usize]
    };
    let down = at(k + 1).filter(|&x| x - k <= m);
    let right = at(k - 1).map(|x| x + 1).filter(|&x| x <= n);
    match (down, right) {
        (Some(x), Some(r)) if r > x => Some((r, false)),
        (Some(x), _) => Some((x, true)),
        (None, r) => r.map(|r| (r, false)),
    }
}

/// The matches along the path that reached `(n, m)` in the last round.
fn walk_back(rounds: &[Vec<Option<isize>>], n: isize, m: isize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..rounds.len() as isize).rev() {
        let k = x - y;
        let Some((start, from_down)) = step(&rounds[(d - 1) as usize], d, k, n, m) else {
            break;
        };
        while x > start {
            x -= 1;
            y -= 1;
            out.push((x as usize, y as usize));
        }
        if from_down {
            y -= 1;
        } else {
            x -= 1;
        }
    }
    // Round 0 is the common start: a diagonal from (0, 0).
    while x > 0 && y > 0 {
        x -= 1;
        y -= 1;
        out.push((x as usize, y as usize));
    }
    out.reverse();
    out
}

/// A part of the merged sequence.
#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    /// The base's elements, unchanged.
    Base(Range<usize>),
    /// One side's elements (or none: a removal).
    Nodes(Vec<Node>),
    /// Elements both sides edited in place: merged one by one (base, ours, theirs).
    Each(Vec<(Node, Node, Node)>),
}

/// Combines both sides' splices of `base`, or `None` when two of them overlap (a conflict).
/// Identical splices count once. Insertions at one place keep both sides' elements, the side
/// `ours_first` names first. Overlapping edits in place merge element by element; overlapping
/// removals remove what either removed.
pub(super) fn plan(
    base: &[Node],
    ours: Vec<Splice>,
    theirs: Vec<Splice>,
    ours_first: bool,
) -> Option<Vec<Piece>> {
    let same: HashSet<&Splice> = ours.iter().collect();
    let theirs: Vec<Splice> = theirs.into_iter().filter(|s| !same.contains(s)).collect();
    let mut all: Vec<(bool, Splice)> = ours
        .into_iter()
        .map(|s| (true, s))
        .chain(theirs.into_iter().map(|s| (false, s)))
        .collect();
    // By place; an insertion goes before a range that starts where it is (it lands before
    // that element); at one place, the side named first goes first.
    all.sort_by_key(|(is_ours, s)| (s.start, !s.is_insertion(), *is_ours != ours_first));
    let mut clusters: Vec<Cluster> = Vec::new();
    for (is_ours, s) in all {
        match clusters.last_mut() {
            Some(c) if c.overlaps(&s) => {
                c.end = c.end.max(s.end);
                c.members.push((is_ours, s));
            }
            _ => clusters.push(Cluster {
                start: s.start,
                end: s.end,
                members: vec![(is_ours, s)],
            }),
        }
    }
    let mut out = Vec::new();
    let mut pos = 0;
    for c in clusters {
        if c.start > pos {
            out.push(Piece::Base(pos..c.start));
            pos = c.start;
        }
        let end = c.end;
        out.push(c.piece(base)?);
        pos = pos.max(end);
    }
    if pos < base.len() {
        out.push(Piece::Base(pos..base.len()));
    }
    Some(out)
}

/// Splices whose base ranges overlap, and the range they cover together.
struct Cluster {
    start: usize,
    end: usize,
    members: Vec<(bool, Splice)>,
}

impl Cluster {
    /// Whether `s` (which starts at or after this cluster) overlaps it: ranges that share an
    /// element, or an insertion strictly inside the range (at either end it is beside it).
    fn overlaps(&self, s: &Splice) -> bool {
        if self.start == self.end {
            return false;
        }
        if s.is_insertion() {
            self.start < s.start && s.start < self.end
        } else {
            s.start < self.end
        }
    }

    fn piece(self, base: &[Node]) -> Option<Piece> {
        if self.members.len() == 1 {
            return self
                .members
                .into_iter()
                .next()
                .map(|(_, s)| Piece::Nodes(s.ins));
        }
        if self.members.iter().all(|(_, s)| s.ins.is_empty()) {
            return Some(Piece::Nodes(Vec::new()));
        }
        if !self.members.iter().all(|(_, s)| s.keeps_length()) {
            return None;
        }
        let range = &base[self.start..self.end];
        let side = |ours: bool| {
            let mut v = range.to_vec();
            for (_, s) in self.members.iter().filter(|(o, _)| *o == ours) {
                v[s.start - self.start..s.end - self.start].copy_from_slice(&s.ins);
            }
            v
        };
        let (o, t) = (side(true), side(false));
        Some(Piece::Each(
            range
                .iter()
                .zip(o)
                .zip(t)
                .map(|((b, o), t)| (*b, o, t))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Oid;

    /// Distinct leaves named by small numbers.
    fn ids(v: &[u8]) -> Vec<Node> {
        v.iter()
            .map(|&b| {
                let mut bytes = [0u8; 20];
                bytes[19] = b;
                Node::Leaf(Oid::from_bytes(&bytes).expect("20 bytes"))
            })
            .collect()
    }

    fn sp(start: usize, end: usize, ins: &[u8]) -> Splice {
        Splice {
            start,
            end,
            ins: ids(ins),
        }
    }

    fn apply(base: &[Node], splices: &[Splice]) -> Vec<Node> {
        let mut out = Vec::new();
        let mut pos = 0;
        for s in splices {
            out.extend_from_slice(&base[pos..s.start]);
            out.extend_from_slice(&s.ins);
            pos = s.end;
        }
        out.extend_from_slice(&base[pos..]);
        out
    }

    #[test]
    fn splices_are_the_fewest_changes() {
        let base = ids(&[1, 2, 3, 4, 5]);
        let cases: &[(&[u8], Vec<Splice>)] = &[
            (&[1, 2, 3, 4, 5], vec![]),
            (&[1, 2, 3, 4, 5, 6], vec![sp(5, 5, &[6])]),
            (&[0, 1, 2, 3, 4, 5], vec![sp(0, 0, &[0])]),
            (&[1, 3, 4, 5], vec![sp(1, 2, &[])]),
            (&[1, 9, 3, 4, 5], vec![sp(1, 2, &[9])]),
            // Scattered: one removal and one insertion, not a splice over all between.
            (&[2, 3, 4, 5, 6], vec![sp(0, 1, &[]), sp(5, 5, &[6])]),
            (
                &[0, 1, 2, 4, 5, 6],
                vec![sp(0, 0, &[0]), sp(2, 3, &[]), sp(5, 5, &[6])],
            ),
            (&[], vec![sp(0, 5, &[])]),
        ];
        for (new, want) in cases {
            let new = ids(new);
            let got = splices(&base, &new);
            assert_eq!(apply(&base, &got), new);
            assert_eq!(&got, want, "{new:?}");
        }
    }

    #[test]
    fn the_diff_stays_right_on_repeated_elements_and_past_its_limit() {
        let cases: &[(&[u8], &[u8])] = &[
            (&[1, 1, 1], &[1, 1, 1, 1]),
            (&[1, 2, 1, 2], &[2, 1, 2, 1]),
            (&[1, 2, 3], &[3, 2, 1]),
            (&[1, 1, 2, 2], &[2, 2, 1, 1, 3]),
            (&[1], &[2, 3, 4, 1, 5]),
        ];
        for (b, n) in cases {
            let (b, n) = (ids(b), ids(n));
            assert_eq!(apply(&b, &splices(&b, &n)), n);
        }
        // Past the limit: edits in place when the length is kept, else one splice.
        let base: Vec<u8> = (0..100).collect();
        let kept: Vec<u8> = base
            .iter()
            .map(|&x| if x % 2 == 0 { x + 100 } else { x })
            .collect();
        let (b, k) = (ids(&base), ids(&kept));
        assert!(matches(&b, &k, 10).is_none());
        assert_eq!(apply(&b, &in_place(&b, &k)), k);
        assert_eq!(apply(&b, &splices(&b, &k)), k);
        let shorter = ids(&kept[1..]);
        assert_eq!(apply(&b, &splices(&b, &shorter)), shorter);
    }

    #[test]
    fn splices_that_do_not_overlap_combine() {
        let base = ids(&[1, 2, 3, 4]);
        let merged = |o: Vec<Splice>, t: Vec<Splice>, ours_first: bool| {
            let pieces = plan(&base, o, t, ours_first)?;
            let mut out = Vec::new();
            for p in pieces {
                match p {
                    Piece::Base(r) => out.extend_from_slice(&base[r]),
                    Piece::Nodes(n) => out.extend(n),
                    Piece::Each(_) => return None,
                }
            }
            Some(out)
        };
        // Appends on both sides: the side named first first.
        let (o, t) = (vec![sp(4, 4, &[5])], vec![sp(4, 4, &[6])]);
        assert_eq!(
            merged(o.clone(), t.clone(), true),
            Some(ids(&[1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(merged(o, t, false), Some(ids(&[1, 2, 3, 4, 6, 5])));
        // The same insertion once.
        assert_eq!(
            merged(vec![sp(4, 4, &[5])], vec![sp(4, 4, &[5])], true),
            Some(ids(&[1, 2, 3, 4, 5]))
        );
        // A removal beside an insertion at either end of it.
        assert_eq!(
            merged(
                vec![sp(1, 3, &[])],
                vec![sp(1, 1, &[7]), sp(3, 3, &[8])],
                true
            ),
            Some(ids(&[1, 7, 8, 4]))
        );
        // An insertion before an element the other side replaced.
        assert_eq!(
            merged(vec![sp(2, 3, &[9])], vec![sp(2, 2, &[7])], true),
            Some(ids(&[1, 2, 7, 9, 4]))
        );
        // Overlapping removals remove both.
        assert_eq!(
            merged(vec![sp(0, 2, &[])], vec![sp(1, 3, &[])], true),
            Some(ids(&[4]))
        );
        // An insertion inside a removed range, or two replacements of one range: overlap.
        assert_eq!(
            merged(vec![sp(0, 3, &[])], vec![sp(1, 1, &[7])], true),
            None
        );
        assert_eq!(
            merged(vec![sp(1, 3, &[8])], vec![sp(2, 4, &[9])], true),
            None
        );
        // Overlapping edits in place are merged element by element.
        let pieces = plan(
            &base,
            vec![sp(0, 2, &[5, 6])],
            vec![sp(1, 3, &[7, 8])],
            true,
        );
        let b = ids(&[1, 2, 3]);
        let (o, t) = (ids(&[5, 6, 3]), ids(&[1, 7, 8]));
        assert_eq!(
            pieces,
            Some(vec![
                Piece::Each((0..3).map(|i| (b[i], o[i], t[i])).collect()),
                Piece::Base(3..4),
            ])
        );
    }
}
