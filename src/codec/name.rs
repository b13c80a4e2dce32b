//! Keys <-> entry names: the reversible escaping shared by the git layout and the mount.
//!
//! A key's *text* is the string itself for string keys, and the key's canonical EDN text
//! otherwise (`:name`, `42`, `[1 2]`). The text becomes a name by escaping `%`, `/` and NUL
//! as `%XX`, and by these whole-name rules, so that every name is a valid file name and keeps
//! `git fsck --strict` clean:
//!
//! | text | name |
//! |---|---|
//! | empty | `%` |
//! | `.` / `..` | `%2E` / `%2E%2E` |
//! | starting with `.git` (any case), `.valfs`, or exactly `.history`, `.conflicts` or `.sync` | leading `.` as `%2E` |
//! | an NTFS short name of `.git`, `.gitmodules` or `.gitattributes` (`git~1`, `git~1.`, `gitmod~1`, `gi7eba~2`, …, any case) | first letter as `%67` or `%47` |
//! | longer than 255 bytes after escaping | first 200 bytes, then `%~` and 16 hex digits of a hash |
//!
//! Long names cannot be reversed from the name alone: the store keeps their full keys in the
//! collection's marker. Every other name decodes back to its key, and only the canonical
//! spelling of a name is accepted, so two names never mean the same key.

use super::{Format, edn};
use crate::value::Value;

/// The longest entry name, as Linux and git allow.
pub const NAME_MAX: usize = 255;
const LONG_PREFIX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name {0:?} is not a valid escaped key")]
    Invalid(String),
}

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The key's text.
    Text(String),
    /// A shortened name for a key of more than 255 bytes; its key is in the collection's marker.
    Long,
}

/// The text a key shows as (before escaping).
pub fn key_text(format: Format, key: &Value) -> String {
    match (format, key) {
        (Format::Json, Value::String(s)) => s.clone(),
        (Format::Edn, Value::String(s)) if edn::parse(s).is_err() => s.clone(),
        (Format::Edn, other) => edn::print(other),
        (Format::Json, other) => edn::print(other),
    }
}

/// The key a text stands for: the inverse of [`key_text`].
pub fn text_key(format: Format, text: &str) -> Value {
    match format {
        Format::Json => Value::String(text.to_owned()),
        Format::Edn => edn::parse(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    }
}

/// The entry name of a key.
pub fn key_name(format: Format, key: &Value) -> String {
    escape(&key_text(format, key))
}

fn is_hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

fn needs_dot_escape(text: &str) -> bool {
    if !text.starts_with('.') {
        return false;
    }
    let folded: String = text
        .chars()
        .filter(|&c| !is_hfs_ignorable(c))
        .flat_map(char::to_lowercase)
        .collect();
    folded.starts_with(".git") || folded.starts_with(".valfs") || VIEW_NAMES.contains(&text)
}

/// The names of the mount's own folders at the root (`.history`, `.conflicts`, `.sync`): a key
/// never takes one.
const VIEW_NAMES: &[&str] = &[".history", ".conflicts", ".sync"];

/// Escapes a key's text into an entry name of at most 255 bytes.
pub fn escape(text: &str) -> String {
    match text {
        "" => return "%".into(),
        "." => return "%2E".into(),
        ".." => return "%2E%2E".into(),
        _ => {}
    }
    let mut out = String::with_capacity(text.len());
    if needs_dot_escape(text) {
        out.push_str("%2E");
        push_escaped(&mut out, &text[1..]);
    } else if is_ntfs_git_name(text) {
        out.push_str(&format!("%{:02X}", text.as_bytes()[0]));
        push_escaped(&mut out, &text[1..]);
    } else {
        push_escaped(&mut out, text);
    }
    if out.len() > NAME_MAX {
        return long_name(&out, text);
    }
    out
}

/// Whether NTFS could take a name for `.git`, `.gitmodules` or `.gitattributes` through an 8.3
/// short name, by the rules of git's `is_ntfs_dotgit` and `is_ntfs_dot_generic`: `git~1`,
/// `gitmod~1`..`gitmod~4`, `gi7eba~N` (and `gitatt~`, `gi7d29~` for `.gitattributes`), each
/// optionally followed by dots and spaces, then the end or a `:stream`. `git fsck` refuses the
/// first kind (hasDotgit) and checks the others' blobs as those files.
fn is_ntfs_git_name(text: &str) -> bool {
    let b = text.as_bytes();
    let dotgit =
        b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"git~1") && ntfs_trailer(&b[5..], true);
    dotgit || ntfs_short_name(b, b"gitmod", b"gi7eba") || ntfs_short_name(b, b"gitatt", b"gi7d29")
}

/// Only dots and spaces up to the end, a `:` (and, for `.git`, a backslash).
fn ntfs_trailer(rest: &[u8], backslash_ends: bool) -> bool {
    for &c in rest {
        match c {
            b'.' | b' ' => {}
            b':' => return true,
            b'\\' if backslash_ends => return true,
            _ => return false,
        }
    }
    true
}

/// `prefix~1`..`prefix~4`, or the fall-back short name: up to six letters of `hashed` then
/// `~` and a number, eight characters in all.
fn ntfs_short_name(b: &[u8], prefix: &[u8], hashed: &[u8]) -> bool {
    if b.len() >= 8
        && b[..6].eq_ignore_ascii_case(prefix)
        && b[6] == b'~'
        && (b'1'..=b'4').contains(&b[7])
    {
        return ntfs_trailer(&b[8..], false);
    }
    let mut i = 0;
    let mut saw_tilde = false;
    while i < 8 {
        let Some(&c) = b.get(i) else {
            return false;
        };
        if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            if !matches!(b.get(i), Some(b'1'..=b'9')) {
                return false;
            }
            saw_tilde = true;
        } else if i >= 6 || c.to_ascii_lowercase() != hashed[i] {
            return false;
        }
        i += 1;
    }
    ntfs_trailer(&b[i..], false)
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
}

fn long_name(escaped: &str, text: &str) -> String {
    // The prefix only hints at the key: the collection's marker keeps the whole key on a line
    // `name<TAB>key`, so a tab or newline in the name would break the marker. Escape control
    // characters here too.
    let mut hint = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        if c.is_ascii_control() {
            hint.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            hint.push(c);
        }
    }
    let escaped = hint.as_str();
    let mut cut = LONG_PREFIX;
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    // Do not split a %XX escape.
    if let Some(p) = escaped[..cut].rfind('%')
        && p + 3 > cut
    {
        cut = p;
    }
    format!("{}%~{:016x}", &escaped[..cut], fnv1a(text.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether a name is the shortened form of a long key.
pub fn is_long_name(name: &str) -> bool {
    name.len() >= 18
        && name.len() <= NAME_MAX
        && name.is_char_boundary(name.len() - 18)
        && name[name.len() - 18..].starts_with("%~")
        && name[name.len() - 16..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Decodes an entry name. Only the canonical spelling is accepted.
pub fn unescape(name: &str) -> Result<Decoded, NameError> {
    let invalid = || NameError::Invalid(name.to_owned());
    if name == "%" {
        return Ok(Decoded::Text(String::new()));
    }
    if is_long_name(name) {
        return Ok(Decoded::Long);
    }
    if name.is_empty() || name.len() > NAME_MAX || name.contains('/') || name.contains('\0') {
        return Err(invalid());
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3).ok_or_else(invalid)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| invalid())?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| invalid())?;
    if escape(&text) != name {
        return Err(invalid());
    }
    Ok(Decoded::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) {
        let name = escape(text);
        assert!(name.len() <= NAME_MAX, "{name}");
        assert!(
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('\0')
        );
        if text.len() <= LONG_PREFIX {
            assert_eq!(
                unescape(&name),
                Ok(Decoded::Text(text.to_owned())),
                "{text:?} -> {name:?}"
            );
        }
    }

    #[test]
    fn escaping_table() {
        let table = [
            ("name", "name"),
            ("", "%"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("...", "..."),
            ("a/b", "a%2Fb"),
            ("50%", "50%25"),
            ("nul\0", "nul%00"),
            (".git", "%2Egit"),
            (".GIT", "%2EGIT"),
            (".gitmodules", "%2Egitmodules"),
            (".valfs", "%2Evalfs"),
            (".history", "%2Ehistory"),
            (".hidden", ".hidden"),
            ("GIT~1", "%47IT~1"),
            ("git~1", "%67it~1"),
            (":kw", ":kw"),
            ("é", "é"),
        ];
        for (text, name) in table {
            assert_eq!(escape(text), name, "{text:?}");
            round(text);
        }
    }

    /// `git fsck --strict` refused `git~1.` (hasDotgit) and parsed `gitmod~1`, `gitatt~1` and
    /// their hashed short names as `.gitmodules`/`.gitattributes`: only `git~1` was escaped.
    #[test]
    fn ntfs_short_names_of_git_files_are_escaped() {
        for (text, name) in [
            ("git~1.", "%67it~1."),
            ("GIT~1 .", "%47IT~1 ."),
            ("git~1:stream", "%67it~1:stream"),
            ("git~1\\x", "%67it~1\\x"),
            ("gitmod~1", "%67itmod~1"),
            ("GITMOD~4..", "%47ITMOD~4.."),
            ("gitmod~2:x", "%67itmod~2:x"),
            ("gi7eba~1", "%67i7eba~1"),
            ("gi7e~123", "%67i7e~123"),
            ("gitatt~1", "%67itatt~1"),
            ("gi7d29~9", "%67i7d29~9"),
        ] {
            assert_eq!(escape(text), name, "{text:?}");
            round(text);
        }
        for plain in [
            "git~1abc",
            "git~2",
            "gitmod~5",
            "gitmod~1x",
            "gi7eba~0",
            "gi7eba~12",
            "gi7eba",
            "g~",
        ] {
            assert_eq!(escape(plain), plain);
        }
    }

    #[test]
    fn hfs_ignorable_dotgit_is_escaped() {
        assert!(escape(".g\u{200c}it").starts_with("%2E"));
    }

    #[test]
    fn long_keys_get_short_stable_names() {
        let key = "k".repeat(300);
        let name = escape(&key);
        assert!(name.len() <= NAME_MAX);
        assert!(is_long_name(&name));
        assert_eq!(unescape(&name), Ok(Decoded::Long));
        assert_eq!(escape(&key), name);
        assert_ne!(escape(&"k".repeat(301)), name);
        let slashes = "/".repeat(100);
        let name = escape(&slashes);
        assert!(name.len() <= NAME_MAX && is_long_name(&name));
        assert!(
            name.trim_end_matches(|c: char| c.is_ascii_hexdigit())
                .ends_with("%2F%~")
        );
    }

    /// A tab or newline in the first 200 bytes of a long key went into its shortened name and
    /// broke the marker line that maps the name back to the key: the map became unreadable.
    #[test]
    fn long_names_hold_no_control_characters() {
        for head in ["\t", "\n", "\r\n", "a\tb\nc", "\u{1}\u{7f}"] {
            let key = format!("{head}{}", "k".repeat(300));
            let name = escape(&key);
            assert!(is_long_name(&name), "{name:?}");
            assert!(!name.chars().any(|c| c.is_control()), "{name:?}");
        }
    }

    #[test]
    fn non_canonical_names_are_refused() {
        for bad in ["%41", "%2e", "%zz", "a%", "%2", ".git", "%2F%", ""] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_keys_are_their_own_text() {
        assert_eq!(key_name(Format::Json, &Value::string("0")), "0");
        assert_eq!(text_key(Format::Json, ":a"), Value::string(":a"));
    }
}
