//! EDN text <-> value.
//!
//! The parser is strict (exactly one value; whitespace, commas, `;` comments and `#_` discards
//! around it) and iterative, so no input can overflow the stack: nesting (collections and tags)
//! deeper than [`MAX_DEPTH`] is [`CodecError::TooDeep`]. Duplicate set members or map keys are
//! syntax errors, as in Clojure's reader. The printers are iterative too.
//!
//! Rules of the text, chosen so that `parse(print(v)) == v` and printing is canonical:
//! - Numbers keep their text exactly as written (`+5`, `-0`, `42N`, `1.5M`, `1.`) and print it
//!   back, so `print(parse(x))` is stable; `+5` and `5` are distinct values, as `1`, `1N`, `1.0`
//!   and `1M` are. Integers are `[+-]?(0|[1-9][0-9]*)N?`; a float adds a fraction (`.` and
//!   digits), an exponent or an `M` suffix (`1M` is a BigDecimal, so a float). No leading zeros,
//!   hex, radix or ratios (they are not EDN).
//! - Strings escape `"`, `\` and control characters (`\n \t \r \b \f` by name, others as
//!   `\uXXXX`); everything else, non-ASCII included, is written as itself.
//! - Characters print as `\newline \space \tab \return \backspace \formfeed`, as `\uXXXX` for
//!   other control and whitespace characters, and as `\c` otherwise.
//! - Maps and sets print in the value's derived `Ord` order, elements separated by one space
//!   and no commas: `{:a 1 :b 2}`, `#{1 2}`, `#inst "2020"`.
//! - Symbols and keywords are written as their text, which must be a valid EDN name (every
//!   parsed one is): ASCII letters, digits, `.*+!-_?$%&=<>:#` and any other non-space,
//!   non-control character, with at most one `/` between two non-empty parts.

use super::{CodecError, MAX_DEPTH};
use crate::value::Value;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

const FORMAT: &str = "EDN";
/// `print_pretty` keeps a collection on one line while it ends before this column.
const WIDTH: usize = 80;
/// Characters written by name: `\newline`.
const CHAR_NAMES: [(char, &str); 6] = [
    ('\n', "newline"),
    (' ', "space"),
    ('\t', "tab"),
    ('\r', "return"),
    ('\u{8}', "backspace"),
    ('\u{c}', "formfeed"),
];
/// Characters escaped by a letter in strings: `\n`.
const STRING_ESCAPES: [(char, char); 7] = [
    ('"', '"'),
    ('\\', '\\'),
    ('\n', 'n'),
    ('\t', 't'),
    ('\r', 'r'),
    ('\u{8}', 'b'),
    ('\u{c}', 'f'),
];

/// Parses one EDN value, strictly.
pub fn parse(text: &str) -> Result<Value, CodecError> {
    Parser {
        text,
        ..Parser::default()
    }
    .run()
}

/// The canonical compact text of a value.
pub fn print(value: &Value) -> String {
    Printer::new(false, usize::MAX).run(value)
}

/// Indented text for people: a collection whose compact text does not fit before column 80 puts
/// one element (or map entry) per line, aligned after its opening bracket. Parses back to the
/// same value.
pub fn print_pretty(value: &Value) -> String {
    Printer::new(true, usize::MAX).run(value)
}

enum Kind {
    List,
    Vector,
    Set,
    Map,
    Tag(String),
}

/// An open collection or tag: its items so far, and how many `#_` wait for a form.
struct Frame {
    kind: Kind,
    start: usize,
    items: Vec<(usize, Value)>,
    discard: usize,
}

#[derive(Default)]
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    stack: Vec<Frame>,
    root: Option<Value>,
    root_discard: usize,
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == ','
}

/// Characters that end a token (a number, symbol, keyword, tag or character name).
fn is_terminator(c: char) -> bool {
    is_space(c) || "\";()[]{}\\".contains(c)
}

fn is_constituent(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ".*+!-_?$%&=<>:#".contains(c)
        || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
}

/// One side of a `/` in a symbol or keyword. Keywords may start with a digit (`:1`), as in
/// Clojure; symbols may not, nor with `+`, `-` or `.` followed by a digit.
fn valid_part(part: &str, keyword: bool) -> bool {
    let mut chars = part.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !part.chars().all(is_constituent) || matches!(first, ':' | '#') {
        return false;
    }
    let second_digit = chars.next().is_some_and(|c| c.is_ascii_digit());
    keyword || !(first.is_ascii_digit() || ("+-.".contains(first) && second_digit))
}

fn valid_name(name: &str, keyword: bool) -> bool {
    match name.split_once('/') {
        _ if name == "/" => !keyword,
        Some((ns, name)) => {
            valid_part(ns, keyword) && !name.contains('/') && valid_part(name, keyword)
        }
        None => valid_part(name, keyword),
    }
}

/// The value of a number token, or `None` if it is not a valid EDN number.
fn number(tok: &str) -> Option<Value> {
    let b = tok.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let sign = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let mut i = digits(sign);
    if i == sign || (b.get(sign) == Some(&b'0') && i > sign + 1) {
        return None; // no digits, or a leading zero
    }
    if i == b.len() || (i + 1 == b.len() && b.get(i) == Some(&b'N')) {
        return Some(Value::Integer(tok.to_owned()));
    }
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let start = i + 1 + usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        i = digits(start);
        if i == start {
            return None;
        }
    }
    i += usize::from(b.get(i) == Some(&b'M'));
    (i == b.len()).then(|| Value::Float(tok.to_owned()))
}

/// Four hex digits at the start of `s`.
fn hex4(s: &str) -> Option<u32> {
    let hex = s
        .get(..4)
        .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))?;
    u32::from_str_radix(hex, 16).ok()
}

/// A short form of a token or value for an error message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl<'a> Parser<'a> {
    fn fail<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, CodecError> {
        Err(CodecError::syntax(FORMAT, self.text, pos, message))
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// "the `[` at line L, column C": an opener, for messages that point back at it.
    fn opener(&self, frame: &Frame) -> String {
        let open = match &frame.kind {
            Kind::List => "(",
            Kind::Vector => "[",
            Kind::Set => "#{",
            Kind::Map => "{",
            Kind::Tag(tag) => tag,
        };
        let before = self.text.get(..frame.start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("the `{open}` at line {line}, column {column}")
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c == ';' {
                let rest = self.rest();
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if is_space(c) {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(is_terminator).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    fn run(&mut self) -> Result<Value, CodecError> {
        loop {
            self.skip_space();
            let start = self.pos;
            let Some(c) = self.peek() else {
                return self.finish();
            };
            let next = self.rest().get(1..).and_then(|r| r.chars().next());
            let kind = match (c, next) {
                (')' | ']' | '}', _) => {
                    self.close(c, start)?;
                    continue;
                }
                ('#', Some('_')) => {
                    self.pos += 2;
                    match self.stack.last_mut() {
                        Some(frame) => frame.discard += 1,
                        None => self.root_discard += 1,
                    }
                    continue;
                }
                _ if self.stack.is_empty() && self.root.is_some() && self.root_discard == 0 => {
                    return self.fail(start, "expected end of input after the value");
                }
                ('(', _) => Kind::List,
                ('[', _) => Kind::Vector,
                ('{', _) => Kind::Map,
                ('#', Some('{')) => {
                    self.pos += 1;
                    Kind::Set
                }
                ('#', Some(t)) if t.is_alphabetic() => {
                    self.pos += 1;
                    let tag = self.token();
                    if !valid_name(tag, false) {
                        return self.fail(start, format!("invalid tag `#{}`", clip(tag)));
                    }
                    self.open(Kind::Tag(tag.to_owned()), start)?;
                    continue;
                }
                ('#', _) => return self.fail(start, "`#` must be followed by `{`, `_` or a tag"),
                _ => {
                    let value = match c {
                        '"' => Value::String(self.string()?),
                        '\\' => Value::Char(self.character()?),
                        _ => self.atom(start)?,
                    };
                    self.deliver(value, start);
                    continue;
                }
            };
            self.pos += 1;
            self.open(kind, start)?;
        }
    }

    fn open(&mut self, kind: Kind, start: usize) -> Result<(), CodecError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(CodecError::TooDeep);
        }
        let (items, discard) = (Vec::new(), 0);
        self.stack.push(Frame {
            kind,
            start,
            items,
            discard,
        });
        Ok(())
    }

    /// A finished form: dropped by a pending `#_`, wrapped by an open tag, or added.
    fn deliver(&mut self, mut value: Value, mut pos: usize) {
        while let Some(frame) = self.stack.last_mut() {
            if frame.discard > 0 {
                frame.discard -= 1;
                return;
            }
            let Kind::Tag(tag) = &mut frame.kind else {
                frame.items.push((pos, value));
                return;
            };
            value = Value::Tagged(std::mem::take(tag), Box::new(value));
            pos = frame.start;
            self.stack.pop();
        }
        if self.root_discard > 0 {
            self.root_discard -= 1;
        } else {
            self.root = Some(value);
        }
    }

    fn close(&mut self, c: char, at: usize) -> Result<(), CodecError> {
        let Some(frame) = self.stack.pop() else {
            return self.fail(at, format!("unmatched `{c}`"));
        };
        if frame.discard > 0 {
            return self.fail(at, format!("`#_` has no form to discard before `{c}`"));
        }
        let close = match frame.kind {
            Kind::List => ')',
            Kind::Vector => ']',
            Kind::Set | Kind::Map => '}',
            Kind::Tag(_) => ' ',
        };
        if c != close {
            let message = match &frame.kind {
                Kind::Tag(tag) => format!("tag `#{tag}` has no value before `{c}`"),
                _ => format!(
                    "expected `{close}` to close {}, found `{c}`",
                    self.opener(&frame)
                ),
            };
            return self.fail(at, message);
        }
        self.pos += 1;
        let items = frame.items.into_iter();
        let value = match frame.kind {
            Kind::List => Value::List(items.map(|(_, v)| v).collect()),
            Kind::Vector => Value::Vector(items.map(|(_, v)| v).collect()),
            Kind::Set => {
                let mut set = BTreeSet::new();
                for (pos, v) in items {
                    if let Some(dup) = set.replace(v) {
                        let message = format!("duplicate set element `{}`", clip(&print(&dup)));
                        return self.fail(pos, message);
                    }
                }
                Value::Set(set)
            }
            _ => {
                let mut map = BTreeMap::new();
                let mut items = items;
                while let Some((pos, k)) = items.next() {
                    let Some((_, v)) = items.next() else {
                        return self.fail(at, "map has a key without a value");
                    };
                    match map.entry(k) {
                        Entry::Vacant(e) => _ = e.insert(v),
                        Entry::Occupied(e) => {
                            let message = format!("duplicate map key `{}`", clip(&print(e.key())));
                            return self.fail(pos, message);
                        }
                    }
                }
                Value::Map(map)
            }
        };
        self.deliver(value, frame.start);
        Ok(())
    }

    fn finish(&mut self) -> Result<Value, CodecError> {
        let at = self.pos;
        match self.stack.last() {
            Some(Frame {
                kind: Kind::Tag(tag),
                ..
            }) => self.fail(at, format!("end of input: tag `#{tag}` has no value")),
            Some(frame) => self.fail(
                at,
                format!("end of input: {} is never closed", self.opener(frame)),
            ),
            None if self.root_discard > 0 => {
                self.fail(at, "end of input: `#_` has no form to discard")
            }
            None => match self.root.take() {
                Some(value) => Ok(value),
                None => self.fail(at, "expected a value, found end of input"),
            },
        }
    }

    /// A number, `nil`, `true`, `false`, keyword or symbol.
    fn atom(&mut self, start: usize) -> Result<Value, CodecError> {
        let tok = self.token();
        let b = tok.as_bytes();
        let signed = matches!(b.first(), Some(b'+' | b'-'));
        if b.get(usize::from(signed)).is_some_and(u8::is_ascii_digit) {
            let message = || format!("invalid number `{}`", clip(tok));
            return number(tok).map_or_else(|| self.fail(start, message()), Ok);
        }
        match tok {
            "" => self.fail(start, "unexpected character"),
            "nil" => Ok(Value::Null),
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => match tok.strip_prefix(':') {
                Some(body) if valid_name(body, true) => Ok(Value::Keyword(body.to_owned())),
                Some(_) => self.fail(start, format!("invalid keyword `{}`", clip(tok))),
                None if valid_name(tok, false) => Ok(Value::Symbol(tok.to_owned())),
                None => self.fail(start, format!("invalid symbol `{}`", clip(tok))),
            },
        }
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.fail(start, "string is never closed");
            };
            self.pos += c.len_utf8();
            if c == '"' {
                return Ok(out);
            } else if c != '\\' {
                out.push(c);
                continue;
            }
            let at = self.pos - 1;
            let Some(e) = self.peek() else {
                return self.fail(start, "string is never closed");
            };
            self.pos += e.len_utf8();
            match STRING_ESCAPES.iter().find(|(_, letter)| *letter == e) {
                Some((plain, _)) => out.push(*plain),
                None if e == 'u' => out.push(self.unicode_escape(at)?),
                None => return self.fail(at, format!("unsupported escape `\\{e}` in string")),
            }
        }
    }

    /// The rest of a `\uXXXX` string escape; a surrogate pair is two escapes.
    fn unicode_escape(&mut self, at: usize) -> Result<char, CodecError> {
        let mut code = hex4(self.rest());
        self.pos += 4;
        if let Some(high @ 0xD800..0xDC00) = code {
            let low = self.rest().strip_prefix("\\u").and_then(hex4);
            self.pos += 6;
            code = low
                .filter(|low| (0xDC00..0xE000).contains(low))
                .map(|low| 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        match code.and_then(char::from_u32) {
            Some(c) => Ok(c),
            None => self.fail(
                at,
                "`\\u` must be followed by four hex digits of a character",
            ),
        }
    }

    fn character(&mut self) -> Result<char, CodecError> {
        let start = self.pos;
        self.pos += 1;
        let Some(first) = self.peek().filter(|c| !c.is_whitespace()) else {
            return self.fail(start, "expected a character after `\\`");
        };
        self.pos += first.len_utf8();
        if self.token().is_empty() {
            return Ok(first);
        }
        let name = self.text.get(start + 1..self.pos).unwrap_or("");
        let named = CHAR_NAMES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c);
        let hex = name
            .strip_prefix('u')
            .filter(|hex| hex.len() == 4)
            .and_then(hex4);
        match named.or_else(|| hex.and_then(char::from_u32)) {
            Some(c) => Ok(c),
            None => self.fail(start, format!("unsupported character `\\{}`", clip(name))),
        }
    }
}

enum Work<'a> {
    Val(&'a Value),
    Text(&'static str),
    Break(usize),
}

/// Prints iteratively (any depth); `limit` stops a compact print once past that column.
struct Printer {
    out: String,
    col: usize,
    pretty: bool,
    limit: usize,
}

/// The text of a scalar; `None` for a collection or tag.
fn scalar_text(v: &Value) -> Option<String> {
    let mut out = String::new();
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(t) | Value::Float(t) | Value::Symbol(t) => out.push_str(t),
        Value::Keyword(k) => out.extend([":", k]),
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match STRING_ESCAPES.iter().find(|(plain, _)| *plain == c) {
                    Some((_, letter)) => out.extend(['\\', *letter]),
                    None if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                    None => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Char(c) => {
            out.push('\\');
            match CHAR_NAMES.iter().find(|(plain, _)| plain == c) {
                Some((_, name)) => out.push_str(name),
                // Every control or whitespace character is in the BMP: four digits suffice.
                None if c.is_control() || c.is_whitespace() => {
                    out.push_str(&format!("u{:04x}", u32::from(*c)));
                }
                None => out.push(*c),
            }
        }
        _ => return None,
    }
    Some(out)
}

impl Printer {
    fn new(pretty: bool, limit: usize) -> Printer {
        let (out, col) = (String::new(), 0);
        Printer {
            out,
            col,
            pretty,
            limit,
        }
    }

    fn write(&mut self, s: &str) {
        self.out.push_str(s);
        self.col += s.chars().count();
    }

    fn run(mut self, value: &Value) -> String {
        let mut work = vec![Work::Val(value)];
        while let Some(w) = work.pop().filter(|_| self.col <= self.limit) {
            match w {
                Work::Text(s) => self.write(s),
                Work::Break(indent) => {
                    self.out.push('\n');
                    self.out.extend(std::iter::repeat_n(' ', indent));
                    self.col = indent;
                }
                Work::Val(v) => self.value(v, &mut work),
            }
        }
        self.out
    }

    fn value<'a>(&mut self, v: &'a Value, work: &mut Vec<Work<'a>>) {
        let (open, close, items): (_, _, Vec<&Value>) = match v {
            Value::Vector(xs) => ("[", "]", xs.iter().collect()),
            Value::List(xs) => ("(", ")", xs.iter().collect()),
            Value::Set(xs) => ("#{", "}", xs.iter().collect()),
            Value::Map(m) => ("{", "}", m.iter().flat_map(|(k, v)| [k, v]).collect()),
            Value::Tagged(tag, inner) => {
                self.write(&format!("#{tag} "));
                return work.push(Work::Val(inner));
            }
            scalar => return self.write(&scalar_text(scalar).unwrap_or_default()),
        };
        self.write(open);
        if let Some(line) = self.one_line(&items, close) {
            return self.write(&line);
        }
        let indent = self.col;
        work.push(Work::Text(close));
        for (i, item) in items.iter().enumerate().rev() {
            work.push(Work::Val(item));
            let key_value = matches!(v, Value::Map(_)) && i % 2 == 1;
            if self.pretty && !key_value && i > 0 {
                work.push(Work::Break(indent));
            } else if i > 0 {
                work.push(Work::Text(" "));
            }
        }
    }

    /// Pretty printing: the items and closing bracket on one line, if they fit before `WIDTH`.
    fn one_line(&self, items: &[&Value], close: &str) -> Option<String> {
        let room = WIDTH.checked_sub(self.col + close.len())?;
        if !self.pretty || items.is_empty() {
            return None;
        }
        let mut line = String::new();
        for item in items {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&Printer::new(false, room).run(item));
            if line.chars().count() > room {
                return None;
            }
        }
        line.push_str(close);
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// The syntax error for `text`, as "line:column message".
    fn err(text: &str) -> String {
        match parse(text) {
            Err(CodecError::Syntax {
                line,
                column,
                message,
                ..
            }) => {
                format!("{line}:{column} {message}")
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    fn rejects(texts: &[&str], fragment: &str) {
        for text in texts {
            let e = err(text);
            assert!(e.contains(fragment), "{text:?}: {e}");
        }
    }

    fn int(t: &str) -> Value {
        Value::Integer(t.into())
    }
    fn kw(t: &str) -> Value {
        Value::Keyword(t.into())
    }
    fn sym(t: &str) -> Value {
        Value::Symbol(t.into())
    }
    fn tag(t: &str, v: Value) -> Value {
        Value::Tagged(t.into(), Box::new(v))
    }

    #[test]
    fn scalars_and_numbers_keep_their_text() {
        assert_eq!(ok("nil"), Value::Null);
        assert_eq!(ok(" true "), Value::Bool(true));
        assert_eq!(ok("false"), Value::Bool(false));
        assert_eq!(ok("nil?"), sym("nil?"));
        for t in ["0", "-0", "+5", "42", "42N", "-7N", "12345678901234567890"] {
            assert_eq!((ok(t), print(&ok(t))), (int(t), t.to_owned()));
        }
        for t in ["1.0", "1M", "1.5M", "1e10", "-1.5E-3", "2e+5M", "1.", "0.5"] {
            assert_eq!(
                (ok(t), print(&ok(t))),
                (Value::Float(t.into()), t.to_owned())
            );
        }
        let kinds: BTreeSet<Value> = ["1", "1N", "1.0", "1M"].map(ok).into();
        assert_eq!(kinds.len(), 4);
        let bad = [
            "01", "-01", "1a", "1.2.3", "1e", "1N5", "1.5N", "0x1F", "1/2", "+1e",
        ];
        rejects(&bad, "invalid number");
    }

    #[test]
    fn strings_and_escapes() {
        let v = ok(r#""q\" b\\ n\n t\t r\r b\b f\f \u00e9 \ud83d\ude00 é""#);
        assert_eq!(v, Value::string("q\" b\\ n\n t\t r\r b\u{8} f\u{c} é 😀 é"));
        assert_eq!(print(&v), r#""q\" b\\ n\n t\t r\r b\b f\f é 😀 é""#);
        assert_eq!(print(&Value::string("\u{1}\u{7f}")), r#""\u0001\u007f""#);
        assert_eq!(ok("\"two\nlines\""), Value::string("two\nlines"));
        rejects(&[r#""\x""#, r#""\/""#], "unsupported escape");
        rejects(
            &[r#""\ud800""#, r#""\udc00 ""#, r#""\u12""#, r#""\u+123""#],
            "four hex",
        );
        assert_eq!(err("  \"abc"), "1:3 string is never closed");
        assert_eq!(err("\"abc\\"), "1:1 string is never closed");
    }

    #[test]
    fn characters() {
        let texts = [
            r"\a",
            r"\newline",
            r"\space",
            r"\tab",
            r"\return",
            r"\backspace",
        ];
        let more = [
            r"\formfeed",
            r"\u00e9",
            r"\é",
            r"\\",
            r#"\""#,
            r"\,",
            r"\u",
            r"\(",
        ];
        let chars: Vec<char> = "a\n \t\r\u{8}\u{c}éé\\\",u(".chars().collect();
        assert_eq!(chars.len(), texts.len() + more.len());
        for (text, c) in texts.into_iter().chain(more).zip(chars) {
            assert_eq!(ok(text), Value::Char(c), "{text}");
            assert_eq!(ok(&print(&Value::Char(c))), Value::Char(c));
        }
        let chars = ['a', 'b', ']'].map(Value::Char).to_vec();
        assert_eq!(ok(r"[\a\b \]]"), Value::Vector(chars));
        let printed = ['\n', 'é', '\u{0}', '\u{a0}', '\u{c}'].map(|c| print(&Value::Char(c)));
        assert_eq!(
            printed,
            [r"\newline", r"\é", r"\u0000", r"\u00a0", r"\formfeed"]
        );
        rejects(&[r"\abc", r"\ud800", r"\u00e", "\\", "\\ x"], "character");
    }

    #[test]
    fn symbols_and_keywords() {
        let good = [
            "a", "a/b", "/", "-foo", "+", "-", ".", ".bar", "a.b/c?", "<=>", "a:b#", "é",
        ];
        for t in good {
            assert_eq!(ok(t), sym(t), "{t}");
        }
        for t in ["a", "ns/name", "1", "a.b/c"] {
            assert_eq!(ok(&format!(":{t}")), kw(t));
        }
        assert_eq!(print(&kw("ns/name")), ":ns/name");
        rejects(
            &["a/b/c", "/a", "a/", "a@b", "a'b", ".5x", "a/1", "@"],
            "invalid symbol",
        );
        rejects(&[":/", "::a", ":", ":a/", ":#a"], "invalid keyword");
    }

    #[test]
    fn collections_print_in_order() {
        let v = ok("(1 [2 3] {:a #{4 5}, \"k\" nil} #{})");
        let map = BTreeMap::from([
            (kw("a"), Value::Set(BTreeSet::from([int("4"), int("5")]))),
            (Value::string("k"), Value::Null),
        ]);
        let want = vec![
            int("1"),
            Value::Vector(vec![int("2"), int("3")]),
            Value::Map(map),
            Value::Set(BTreeSet::new()),
        ];
        assert_eq!(v, Value::List(want));
        assert_eq!(print(&v), "(1 [2 3] {\"k\" nil :a #{4 5}} #{})");
        assert_eq!(
            print(&ok("{[1] 2, {:x 1} 3 :b 2 :a 1}")),
            "{:a 1 :b 2 [1] 2 {:x 1} 3}"
        );
        assert_eq!(print(&ok("#{:b :a 3}")), "#{3 :a :b}");
        assert_eq!(print(&ok("[ ] ")), "[]");
        assert_eq!(err("#{1 2 1}"), "1:7 duplicate set element `1`");
        assert_eq!(err("{:a 1 :a 2}"), "1:7 duplicate map key `:a`");
        assert_eq!(ok("#{1 1N 1.0}").node_count(), 4);
    }

    #[test]
    fn tagged_elements() {
        let inst = ok("#inst \"1985-04-12T23:20:50.52Z\"");
        assert_eq!(inst, tag("inst", Value::string("1985-04-12T23:20:50.52Z")));
        assert_eq!(print(&inst), "#inst \"1985-04-12T23:20:50.52Z\"");
        let uuid = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        assert_eq!(
            ok(&format!("#uuid\"{uuid}\"")),
            tag("uuid", Value::string(uuid))
        );
        let nested = ok("#my/tag #other [1 #_ 2]");
        assert_eq!(
            nested,
            tag("my/tag", tag("other", Value::Vector(vec![int("1")])))
        );
        assert_eq!(print(&nested), "#my/tag #other [1]");
        rejects(&["#1 x", "#\"re\"", "##Inf", "#"], "`#` must be followed");
        assert_eq!(err("#a/b/c 1"), "1:1 invalid tag `#a/b/c`");
        assert_eq!(err("#foo"), "1:5 end of input: tag `#foo` has no value");
        assert_eq!(err("[#foo]"), "1:6 tag `#foo` has no value before `]`");
    }

    #[test]
    fn comments_discards_and_commas() {
        assert_eq!(ok("; c\n,, [1, 2 ; x\n 3] ; end"), ok("[1 2 3]"));
        assert_eq!(ok("#_ 1 2"), int("2"));
        assert_eq!(ok("#_ #_ 1 2 3"), int("3"));
        assert_eq!(ok("[1 #_ [2 #_ 3 4] 5]"), ok("[1 5]"));
        assert_eq!(ok("{:a #_ :b 1}"), ok("{:a 1}"));
        assert_eq!(ok("1 #_ 2 ; c"), int("1"));
        assert_eq!(ok("#_ #tag x y"), sym("y"));
        assert_eq!(ok("#tag #_ x y"), tag("tag", sym("y")));
        assert_eq!(err("[1 #_]"), "1:6 `#_` has no form to discard before `]`");
        assert_eq!(err("1 #_"), "1:5 end of input: `#_` has no form to discard");
        assert_eq!(err("#_ 1"), "1:5 expected a value, found end of input");
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err(""), "1:1 expected a value, found end of input");
        assert_eq!(err(" ; only\n"), "2:1 expected a value, found end of input");
        assert_eq!(err("1 2"), "1:3 expected end of input after the value");
        assert_eq!(err("[1]]"), "1:4 unmatched `]`");
        let mismatch = "2:6 expected `)` to close the `(` at line 2, column 2, found `]`";
        assert_eq!(err("[\n (1 2]"), mismatch);
        assert_eq!(err("{:a 1 :b}"), "1:9 map has a key without a value");
        assert_eq!(
            err("#{1"),
            "1:4 end of input: the `#{` at line 1, column 1 is never closed"
        );
        rejects(&["x\u{0}", "a~b", "`a"], "invalid symbol");
    }

    #[test]
    fn depth_is_limited() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(parse(&nested(MAX_DEPTH + 1)), Err(CodecError::TooDeep));
        for open in ["[", "(", "{", "#{", "#a ", "[#_ ", "{:a "] {
            assert_eq!(
                parse(&open.repeat(100_000)),
                Err(CodecError::TooDeep),
                "{open}"
            );
        }
        let tags = format!("{}1", "#t ".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&tags), Err(CodecError::TooDeep));
        let mut deep = Value::Null;
        for _ in 0..5000 {
            deep = Value::Vector(vec![deep]);
        }
        assert_eq!(print(&deep).len(), 5000 * 2 + 3);
        assert_eq!(print_pretty(&deep), print(&deep));
        while let Value::Vector(mut xs) = deep {
            deep = xs.pop().unwrap_or(Value::Null); // drop without deep recursion
        }
    }

    #[test]
    fn pretty_printing() {
        let text = r#"{:name "valfs" :tags #{:a :b} :deps [{:id 1 :v "x"} {:id 2 :v [1 2]}] :t #i "2"
                       :list ["a long string that takes up much of the line" "and another string, longer"]}"#;
        let want = r#"{:deps [{:id 1 :v "x"} {:id 2 :v [1 2]}]
 :list ["a long string that takes up much of the line"
        "and another string, longer"]
 :name "valfs"
 :t #i "2"
 :tags #{:a :b}}"#;
        assert_eq!(print_pretty(&ok(text)), want);
        assert_eq!(print_pretty(&ok("[1 {:a [2]}]")), "[1 {:a [2]}]");
        let long = Value::Vector((0..40).map(|i| Value::int(i * 1000)).collect());
        assert_eq!(print_pretty(&long).lines().count(), 40);
        for v in [ok(text), long] {
            assert_eq!(parse(&print_pretty(&v)), Ok(v));
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z*!_?$%&=<>][a-zA-Z0-9.*+!_?$%&=<>:#-]{0,6}",
            "[a-z]{1,4}/[a-z][a-z0-9-]{0,4}",
            prop::sample::select(vec!["-foo", "+", ".bar", "/", "é"]).prop_map(String::from),
        ]
        .prop_filter("reserved", |s| {
            !["nil", "true", "false"].contains(&s.as_str())
        })
    }

    fn value() -> impl Strategy<Value = Value> {
        let float =
            r"[+-]?(0|[1-9][0-9]{0,4})(\.[0-9]{0,3}([eE][+-]?[0-9]{1,3})?M?|[eE][0-9]{1,2}|M)";
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "[+-]?(0|[1-9][0-9]{0,20})N?".prop_map(Value::Integer),
            float.prop_map(Value::Float),
            any::<String>().prop_map(Value::String),
            name()
                .prop_filter("not /", |n| n != "/")
                .prop_map(Value::Keyword),
            name().prop_map(Value::Symbol),
            any::<char>().prop_map(Value::Char),
        ];
        scalar.prop_recursive(3, 24, 4, |inner| {
            use prop::collection::{btree_map, btree_set, vec};
            prop_oneof![
                ("[a-z][a-z0-9-]{0,4}(/[a-z]{1,3})?", inner.clone()).prop_map(|(t, v)| tag(&t, v)),
                vec(inner.clone(), 0..4).prop_map(Value::Vector),
                vec(inner.clone(), 0..4).prop_map(Value::List),
                btree_set(inner.clone(), 0..4).prop_map(Value::Set),
                btree_map(inner.clone(), inner, 0..4).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn print_round_trips(v in value()) {
            let text = print(&v);
            prop_assert_eq!(parse(&text), Ok(v.clone()));
            prop_assert_eq!(parse(&print_pretty(&v)), Ok(v.clone()));
            prop_assert_eq!(parse(&text).map(|p| print(&p)), Ok(text));
            let wide = Value::List(vec![v.clone(), Value::string("w".repeat(70)), v]);
            prop_assert_eq!(parse(&print_pretty(&wide)), Ok(wide));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse(&s);
        }

        #[test]
        fn edn_like_text_never_panics_and_round_trips(
            s in r#"[\[\](){}#_\\"; :a-z0-9.+/NM\n,eéu-]{0,40}"#
        ) {
            if let Ok(v) = parse(&s) {
                prop_assert_eq!(parse(&print(&v)), Ok(v.clone()));
                prop_assert_eq!(parse(&print_pretty(&v)), Ok(v));
            }
        }
    }
}
