//! JSON text <-> value.
//!
//! The parser keeps every number's exact text and refuses anything RFC 8259 does not allow
//! (trailing commas, comments, lone surrogates, leading zeros). Duplicate keys keep the last
//! value, as most readers do. The printer is canonical: keys in sorted order, no spaces, only
//! the escapes JSON requires (`"`, `\`, control characters).

use super::{CodecError, MAX_DEPTH};
use crate::value::Value;
use std::collections::BTreeMap;

pub fn parse(text: &str) -> Result<Value, CodecError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return Err(p.err("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> CodecError {
        CodecError::syntax("JSON", self.text, self.pos, message)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), CodecError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, CodecError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unexpected character"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, CodecError> {
        match self.peek() {
            None => Err(self.err("unexpected end of text")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::TooDeep);
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Vector(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Vector(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(CodecError::TooDeep);
        }
        self.pos += 1;
        let mut map = BTreeMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Map(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let v = self.value(depth)?;
            map.insert(Value::String(key), v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Map(map));
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, CodecError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 {
            return Err(self.err("expected a digit"));
        }
        if n > 1 && self.bytes[int_start] == b'0' {
            return Err(CodecError::syntax(
                "JSON",
                self.text,
                int_start,
                "leading zero in a number",
            ));
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            float = true;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            float = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        let text = self.text[start..self.pos].to_owned();
        Ok(if float {
            Value::Float(text)
        } else {
            Value::Integer(text)
        })
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let hex = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("expected four hex digits"))?;
        self.pos += 4;
        u32::from_str_radix(hex, 16).map_err(|_| self.err("expected four hex digits"))
    }

    fn string(&mut self) -> Result<String, CodecError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, CodecError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.bytes[self.pos..].starts_with(b"\\u") {
                return Err(self.err("unpaired surrogate"));
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err("unpaired surrogate"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("unpaired surrogate"))
    }
}

/// The canonical compact text.
pub fn print(value: &Value) -> Result<String, CodecError> {
    let mut out = String::new();
    write(&mut out, value, None, 0, &mut Vec::new())?;
    Ok(out)
}

/// Two-space indented text.
pub fn print_pretty(value: &Value) -> Result<String, CodecError> {
    let mut out = String::new();
    write(&mut out, value, Some(2), 0, &mut Vec::new())?;
    Ok(out)
}

/// Appends a JSON string literal.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn newline(out: &mut String, indent: Option<usize>, depth: usize) {
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * depth));
    }
}

/// The error for the first value JSON cannot hold, naming it by its EDN text (cut short).
fn not_json(what: &str, value: &Value, path: &[String]) -> CodecError {
    let mut text = super::edn::print(value);
    if let Some((cut, _)) = text.char_indices().nth(40) {
        text.truncate(cut);
        text.push('…');
    }
    CodecError::NotJson {
        what: format!("{what} {text}"),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.join("/")
        },
    }
}

fn write(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    depth: usize,
    path: &mut Vec<String>,
) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::TooDeep);
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(t) | Value::Float(t) => {
            if !is_json_number(t) {
                return Err(not_json("the number", value, path));
            }
            out.push_str(t)
        }
        Value::String(s) => write_string(out, s),
        Value::Vector(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                path.push(i.to_string());
                write(out, item, indent, depth + 1, path)?;
                path.pop();
            }
            if !items.is_empty() {
                newline(out, indent, depth);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                let Value::String(k) = k else {
                    return Err(not_json("the key", k, path));
                };
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_string(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                // Only EDN values fail to print as JSON: name the path as an EDN store shows it.
                path.push(super::name::key_name(
                    super::Format::Edn,
                    &Value::String(k.clone()),
                ));
                write(out, v, indent, depth + 1, path)?;
                path.pop();
            }
            if !map.is_empty() {
                newline(out, indent, depth);
            }
            out.push('}');
        }
        Value::Keyword(_) => return Err(not_json("the keyword", value, path)),
        Value::Symbol(_) => return Err(not_json("the symbol", value, path)),
        Value::Char(_) => return Err(not_json("the character", value, path)),
        Value::Tagged(..) => return Err(not_json("the tagged element", value, path)),
        Value::List(_) => return Err(not_json("the list", value, path)),
        Value::Set(_) => return Err(not_json("the set", value, path)),
    }
    Ok(())
}

/// Whether a number's text is valid JSON (EDN's `N`/`M` suffixes and `+` signs are not).
fn is_json_number(t: &str) -> bool {
    matches!(parse(t), Ok(Value::Integer(_) | Value::Float(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        print(&parse(text).unwrap()).unwrap()
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        for n in [
            "12345678901234567890",
            "1e400",
            "0.1",
            "-0",
            "1.0",
            "1E+2",
            "-0.0e-0",
        ] {
            assert_eq!(round(n), n);
        }
        assert_eq!(parse("1").unwrap(), Value::Integer("1".into()));
        assert_eq!(parse("1.0").unwrap(), Value::Float("1.0".into()));
    }

    #[test]
    fn canonical_printing_sorts_keys_and_drops_space() {
        assert_eq!(
            round(r#" { "b" : [1, 2] , "a" : {} , "c": [] } "#),
            r#"{"a":{},"b":[1,2],"c":[]}"#
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            round(r#""a\"b\\c\/d\u00e9\ud83d\ude00\n\u0001""#),
            "\"a\\\"b\\\\c/dé😀\\n\\u0001\""
        );
    }

    #[test]
    fn invalid_json_is_refused() {
        for bad in [
            "",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\ud800\"",
            "[1 2]",
            "{a:1}",
            "\"x",
            "1 2",
            "nan",
            "\"\t\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = parse("{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid JSON at line 2, column 8: unexpected character"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse(&deep), Err(CodecError::TooDeep));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn pretty_parses_back() {
        let v = parse(r#"{"a":[1,{"b":null}],"c":"x","e":[],"f":{}}"#).unwrap();
        let p = print_pretty(&v).unwrap();
        assert!(p.contains("\n  \"a\": [\n"));
        assert_eq!(parse(&p).unwrap(), v);
    }

    #[test]
    fn edn_only_values_name_their_path() {
        let mut m = BTreeMap::new();
        m.insert(
            Value::string("k"),
            Value::Vector(vec![Value::Keyword("x".into())]),
        );
        let e = print(&Value::Map(m)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the keyword :x at \"k\"/0 cannot be written as JSON"
        );
        assert_eq!(
            print(&Value::Integer("1N".into())).unwrap_err().to_string(),
            "the number 1N at / cannot be written as JSON"
        );
        let v = crate::codec::edn::parse(r#"{"a/b" {:k 1} "c" {"d" :x}}"#).unwrap();
        assert_eq!(
            print(&v).unwrap_err().to_string(),
            "the key :k at \"a%2Fb\" cannot be written as JSON"
        );
        let v = crate::codec::edn::parse(r#"{"c" {"d" :x}}"#).unwrap();
        assert_eq!(
            print(&v).unwrap_err().to_string(),
            "the keyword :x at \"c\"/\"d\" cannot be written as JSON"
        );
        let long =
            crate::codec::edn::parse(&format!("{{\"s\" #{{\"{}\"}}}}", "x".repeat(99))).unwrap();
        let e = print(&long).unwrap_err().to_string();
        assert!(
            e.starts_with("the set #{\"xxx") && e.contains("… at \"s\" "),
            "{e}"
        );
    }
}
