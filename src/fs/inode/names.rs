//! Each distinct name once: inodes hold a name's number, not its text.
//!
//! A value's keys repeat across its records (`email` in each of a million users, `0`..`2` in
//! each of their vectors), so a walk over it names a million inodes with a few hundred names.

use hashbrown::HashTable;
use std::hash::{BuildHasher, RandomState};

/// Names by number and by text. A name stays until the whole set is built again from the names
/// still in use (see [`Names::len`]).
pub struct Names {
    /// The names one after another.
    text: String,
    /// Where name `n` starts in `text`; it ends where name `n + 1` starts.
    starts: Vec<usize>,
    /// The numbers, found by the text they stand for.
    ids: HashTable<u32>,
    hasher: RandomState,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            text: String::new(),
            starts: vec![0],
            ids: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

/// The text of name `id` (empty for a number never given).
fn span<'a>(text: &'a str, starts: &[usize], id: u32) -> &'a str {
    let id = id as usize;
    match (starts.get(id), starts.get(id + 1)) {
        (Some(&start), Some(&end)) => text.get(start..end).unwrap_or_default(),
        _ => "",
    }
}

impl Names {
    /// How many names there are, used or not.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn get(&self, id: u32) -> &str {
        span(&self.text, &self.starts, id)
    }

    /// The number of a name, if it has one.
    pub fn find(&self, name: &str) -> Option<u32> {
        let (text, starts) = (&self.text, &self.starts);
        self.ids
            .find(self.hasher.hash_one(name), |&id| {
                span(text, starts, id) == name
            })
            .copied()
    }

    /// The number of a name, given one if it has none yet.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.find(name) {
            return id;
        }
        let id = u32::try_from(self.len()).expect("a name per inode at most: fewer than 2^32");
        self.text.push_str(name);
        self.starts.push(self.text.len());
        let (text, starts, hasher) = (&self.text, &self.starts, &self.hasher);
        self.ids.insert_unique(hasher.hash_one(name), id, |&id| {
            hasher.hash_one(span(text, starts, id))
        });
        id
    }

    /// The bytes held, for tests of the table's size.
    #[cfg(test)]
    pub fn heap_size(&self) -> usize {
        self.text.capacity()
            + self.starts.capacity() * std::mem::size_of::<usize>()
            + self.ids.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_number() {
        let mut n = Names::default();
        let email = n.intern("email");
        let zero = n.intern("0");
        assert_ne!(email, zero);
        assert_eq!(n.intern("email"), email);
        assert_eq!((n.get(email), n.get(zero)), ("email", "0"));
        assert_eq!(n.find("0"), Some(zero));
        assert_eq!(n.find("1"), None);
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn names_survive_the_table_growing() {
        let mut n = Names::default();
        let ids: Vec<u32> = (0..10_000).map(|i| n.intern(&format!("k{i}"))).collect();
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(n.find(&format!("k{i}")), Some(id));
            assert_eq!(n.get(id), format!("k{i}"));
        }
        assert_eq!(n.find(""), None);
        let empty = n.intern("");
        assert_eq!(
            (n.get(empty), n.find(""), n.len()),
            ("", Some(empty), 10_001)
        );
    }

    #[test]
    fn a_number_never_given_has_no_text() {
        assert_eq!(Names::default().get(7), "");
    }
}
