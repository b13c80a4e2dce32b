//! The data model: a value is a tree of collections and scalars.
//!
//! One enum carries both formats. JSON uses null, booleans, numbers, strings, vectors and maps
//! with string keys; EDN adds keywords, symbols, characters, lists, sets, tagged elements and
//! maps whose keys are any value. Numbers keep their exact source text (`1e400`, `-0`,
//! `12345678901234567890`, EDN's `42N` and `1.5M`), so nothing is rounded on the way through.
//! Maps and sets are ordered by the derived `Ord`, which makes the canonical printers
//! deterministic: the same value always prints the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A JSON or EDN value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Null,
    Bool(bool),
    /// An integer, by its exact text (EDN's `N` suffix included).
    Integer(String),
    /// A floating-point or decimal number, by its exact text (EDN's `M` suffix included).
    Float(String),
    String(String),
    /// An EDN keyword, without its leading colon (`ns/name` or `name`).
    Keyword(String),
    /// An EDN symbol.
    Symbol(String),
    /// An EDN character.
    Char(char),
    /// An EDN tagged element: `#tag value`.
    Tagged(String, Box<Value>),
    Vector(Vec<Value>),
    /// An EDN list.
    List(Vec<Value>),
    /// An EDN set.
    Set(BTreeSet<Value>),
    Map(BTreeMap<Value, Value>),
}

/// The kind of a collection: what a directory in the mount, and a tree in git, holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CollKind {
    #[default]
    Map,
    Vector,
    List,
    Set,
}

impl CollKind {
    /// The word used in the repository and in `user.valfs.type`.
    pub fn name(self) -> &'static str {
        match self {
            CollKind::Map => "map",
            CollKind::Vector => "vector",
            CollKind::List => "list",
            CollKind::Set => "set",
        }
    }

    pub fn from_name(name: &str) -> Option<CollKind> {
        Some(match name {
            "map" => CollKind::Map,
            "vector" => CollKind::Vector,
            "list" => CollKind::List,
            "set" => CollKind::Set,
            _ => return None,
        })
    }

    /// Vectors and lists name their entries by index.
    pub fn is_sequence(self) -> bool {
        matches!(self, CollKind::Vector | CollKind::List)
    }

    /// An empty collection of this kind.
    pub fn empty(self) -> Value {
        match self {
            CollKind::Map => Value::Map(BTreeMap::new()),
            CollKind::Vector => Value::Vector(Vec::new()),
            CollKind::List => Value::List(Vec::new()),
            CollKind::Set => Value::Set(BTreeSet::new()),
        }
    }
}

impl fmt::Display for CollKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn int(i: i64) -> Value {
        Value::Integer(i.to_string())
    }

    /// The collection kind, or `None` for a scalar.
    pub fn coll_kind(&self) -> Option<CollKind> {
        Some(match self {
            Value::Map(_) => CollKind::Map,
            Value::Vector(_) => CollKind::Vector,
            Value::List(_) => CollKind::List,
            Value::Set(_) => CollKind::Set,
            _ => return None,
        })
    }

    pub fn is_collection(&self) -> bool {
        self.coll_kind().is_some()
    }

    /// The type name shown as the `user.valfs.type` extended attribute.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Keyword(_) => "keyword",
            Value::Symbol(_) => "symbol",
            Value::Char(_) => "char",
            Value::Tagged(..) => "tagged",
            Value::Vector(_) => "vector",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
        }
    }

    /// Number of scalars and collections in the value, itself included.
    pub fn node_count(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            n += 1;
            match v {
                Value::Vector(items) | Value::List(items) => stack.extend(items),
                Value::Set(items) => stack.extend(items),
                Value::Map(m) => stack.extend(m.values()),
                _ => {}
            }
        }
        n
    }
}

/// A path into a value: the names of the entries walked from the root, exactly as they
/// appear in the mount (`users/0/name`). Vector indices may be spelled with or without
/// leading zeros.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<String>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// Parses slash-separated names; empty and `/` are the root. Empty segments
    /// (`a//b`, a trailing slash) are ignored, as a shell would.
    pub fn parse(text: &str) -> Path {
        Path(
            text.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parent(&self) -> Option<(Path, &str)> {
        let (last, init) = self.0.split_last()?;
        Some((Path(init.to_vec()), last))
    }

    pub fn child(&self, name: &str) -> Path {
        let mut p = self.0.clone();
        p.push(name.to_owned());
        Path(p)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        f.write_str(&self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parse_ignores_empty_segments() {
        assert_eq!(Path::parse("/"), Path::root());
        assert_eq!(Path::parse(""), Path::root());
        assert_eq!(Path::parse("a//b/"), Path(vec!["a".into(), "b".into()]));
        assert_eq!(Path::parse("users/0/name").to_string(), "users/0/name");
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_ne!(Value::Integer("1".into()), Value::Float("1.0".into()));
        assert_eq!(Value::Integer("-0".into()).type_name(), "integer");
    }

    #[test]
    fn node_count_counts_everything() {
        let v = Value::Vector(vec![Value::Null, Value::Vector(vec![Value::Bool(true)])]);
        assert_eq!(v.node_count(), 4);
    }
}

/// Splits seconds since the epoch into UTC (year, month, day, hour, minute, second).
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Seconds since the epoch of a UTC date and time (the inverse of [`civil_from_unix`]; fields
/// out of range are not checked: 2026-02-30 is 2026-03-02).
pub fn unix_from_civil(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    // Howard Hinnant's days-from-civil algorithm.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if mo > 2 { mo - 3 } else { mo + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(
            super::civil_from_unix(1_795_262_400),
            (2026, 11, 21, 12, 0, 0)
        );
        assert_eq!(super::civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn civil_round_trips() {
        for secs in [
            0,
            951_782_400,
            1_795_262_400,
            -86_401,
            4_102_444_799,
            1_709_164_800,
        ] {
            let (y, mo, d, h, mi, s) = super::civil_from_unix(secs);
            assert_eq!(super::unix_from_civil(y, mo, d, h, mi, s), secs, "{secs}");
        }
    }
}
